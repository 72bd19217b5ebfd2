/*
 * The interrupted stack pointer of a signal's ucontext, for the overflow handler: the one place
 * that knows each architecture's ucontext layout.
 */
#include "internal.h"

#include <signal.h>
#include <ucontext.h>

uintptr_t weft__fault_sp(const void *uc)
{
    const ucontext_t *u = uc;
#if defined(__x86_64__)
    return (uintptr_t)u->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)u->uc_mcontext.sp;
#else
    (void)u;
    return 0;
#endif
}
