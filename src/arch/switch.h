/*
 * The context switch. A suspended context is one stack pointer: the callee-saved registers and
 * the FPU control words sit on the suspended stack itself.
 */
#ifndef WEFT_SWITCH_H
#define WEFT_SWITCH_H

typedef void *weft__ctx_t;

/*
 * Save the current context into *from, resume `to`, and hand it `arg`: the resumed side sees
 * `arg` as the return value of its own weft__ctx_switch() (or as the argument of its entry).
 * Returns the `arg` passed by whoever switches back here.
 */
void *weft__ctx_switch(weft__ctx_t *from, weft__ctx_t to, void *arg);

/*
 * Prepare a fresh context on the stack whose highest address is `top`: the first switch to it
 * calls entry(arg) with the switch's `arg`. `entry` must never return.
 */
weft__ctx_t weft__ctx_make(void *top, void (*entry)(void *arg));

#endif /* WEFT_SWITCH_H */
