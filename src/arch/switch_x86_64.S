/*
 * Context switch for x86-64 System V. The suspended context is its stack pointer; below it sit
 * MXCSR and the x87 control word, then r15 r14 r13 r12 rbx rbp and the return address.
 */
    .text

    .globl  weft__ctx_switch
    .hidden weft__ctx_switch
    .type   weft__ctx_switch, @function
    .p2align 4
/* void *weft__ctx_switch(weft__ctx_t *from = rdi, weft__ctx_t to = rsi, void *arg = rdx) */
weft__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movl    (%rsp), %r8d
    movzwl  4(%rsp), %r9d
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    /* Load the saved control words only when they differ from the current ones (ldmxcsr and
     * fldcw stall the pipeline; tasks almost never change rounding or exception masks). MXCSR's
     * status flags (bits 0-5) are not preserved across calls by the ABI, so they are ignored. */
    xorl    (%rsp), %r8d
    testl   $0xffc0, %r8d
    jnz     2f
    cmpw    4(%rsp), %r9w
    jne     2f
1:
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    movq    %rdx, %rax
    ret
2:
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    jmp     1b
    .cfi_endproc
    .size   weft__ctx_switch, .-weft__ctx_switch

    .globl  weft__ctx_make
    .hidden weft__ctx_make
    .type   weft__ctx_make, @function
    .p2align 4
/* weft__ctx_t weft__ctx_make(void *top = rdi, void (*entry)(void *) = rsi) */
weft__ctx_make:
    .cfi_startproc
    movq    %rdi, %rax
    andq    $-16, %rax
    subq    $80, %rax
    stmxcsr (%rax)
    fnstcw  4(%rax)
    movq    $0, 8(%rax)
    movq    $0, 16(%rax)
    movq    $0, 24(%rax)
    movq    %rsi, 32(%rax)
    movq    $0, 40(%rax)
    movq    $0, 48(%rax)
    leaq    weft__ctx_trampoline(%rip), %rcx
    movq    %rcx, 56(%rax)
    movq    $0, 64(%rax)
    movq    $0, 72(%rax)
    ret
    .cfi_endproc
    .size   weft__ctx_make, .-weft__ctx_make

    .type   weft__ctx_trampoline, @function
    .p2align 4
/*
 * First code of every task: entry (in r12) gets the switch's arg (in rax). Entered with a jump
 * over a zero return address, not a call: the entry never returns, and a call left unmatched
 * here would shift the CPU's return-stack predictions by one, so that every return of the task
 * that resumes next (the spawner's join, say) would be mispredicted down its whole call chain.
 */
weft__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq    %rax, %rdi
    pushq   $0
    jmpq    *%r12
    .cfi_endproc
    .size   weft__ctx_trampoline, .-weft__ctx_trampoline

    .section .note.GNU-stack, "", @progbits
