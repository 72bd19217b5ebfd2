/*
 * Context switch for AArch64 (AAPCS64). The suspended context is its stack pointer; the frame
 * holds x19-x30, d8-d15 and FPCR (176 bytes, 16-byte aligned).
 */
    .text

    .globl  weft__ctx_switch
    .hidden weft__ctx_switch
    .type   weft__ctx_switch, %function
    .p2align 4
/* void *weft__ctx_switch(weft__ctx_t *from = x0, weft__ctx_t to = x1, void *arg = x2) */
weft__ctx_switch:
    .cfi_startproc
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    mov     x0, x2
    ret
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

    .globl  weft__ctx_make
    .hidden weft__ctx_make
    .type   weft__ctx_make, %function
    .p2align 4
/* weft__ctx_t weft__ctx_make(void *top = x0, void (*entry)(void *) = x1) */
weft__ctx_make:
    .cfi_startproc
    bic     x0, x0, #15
    sub     x0, x0, #176
    stp     xzr, xzr, [x0, #0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    stp     xzr, xzr, [x0, #64]
    stp     xzr, xzr, [x0, #80]
    stp     xzr, xzr, [x0, #96]
    stp     xzr, xzr, [x0, #112]
    stp     xzr, xzr, [x0, #128]
    stp     xzr, xzr, [x0, #144]
    str     x1, [x0, #0]
    adr     x9, weft__ctx_trampoline
    str     x9, [x0, #88]
    mrs     x9, fpcr
    str     x9, [x0, #160]
    ret
    .cfi_endproc
    .size   weft__ctx_make, .-weft__ctx_make

    .type   weft__ctx_trampoline, %function
    .p2align 4
/* First code of every task: entry (in x19) gets the switch's arg (already in x0). A branch
 * with a zero link register, not a call: the entry never returns, and an unmatched call would
 * throw the return-stack predictions of the task resumed next off by one (see the x86-64 one). */
weft__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x29, #0
    mov     x30, #0
    br      x19
    .cfi_endproc
    .size   weft__ctx_trampoline, .-weft__ctx_trampoline

    .section .note.GNU-stack, "", %progbits
