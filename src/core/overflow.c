/*
 * Naming the task that overflowed its stack. A SIGSEGV/SIGBUS handler, on an alternate signal
 * stack set up for each loop thread, checks whether the faulting address lies in the guard page
 * of the running task's stack; if so it prints the task's name, its stack size and a backtrace,
 * then aborts. Faults elsewhere go to the handler that was there before (or the default action).
 */
#include "internal.h"

#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_BYTES ((size_t)64 << 10)

static struct sigaction old_segv;
static struct sigaction old_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void weft__overflow_report(weft_task_t *t, const char *how)
{
    char line[256];
    char name[32];
    /* No allocation here: we may be in a signal handler. */
    const char *given = t->cold != NULL ? t->cold->name : NULL;
    if (given == NULL)
        snprintf(name, sizeof(name), "Task-%llu", (unsigned long long)t->id);
    snprintf(line, sizeof(line), "weft: task '%s' (id %llu) %s its %zu KiB stack\n",
             given != NULL ? given : name, (unsigned long long)t->id, how,
             weft__stack_nominal(t->stack) >> 10);
    say(line);
    say("weft: raise the size with weft_task_opts.stack_size or weft_set_default_stack_size()\n");
    void *frames[64];
    int n = backtrace(frames, 64);
    say("weft: backtrace:\n");
    backtrace_symbols_fd(frames, n, 2);
    abort();
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction != NULL) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return, so the faulting instruction faults again. */
    signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    weft_loop_t *l = weft__tls_loop;
    weft_task_t *t = l != NULL ? l->current : NULL;
    if (t != NULL && t->stack != NULL) {
        char *addr = si->si_addr;
        char *lo = t->stack->lo;
        uintptr_t sp = weft__fault_sp(uc);
        bool in_guard = t->stack->guarded && addr >= lo - weft__page_size() && addr < lo;
        /* Unguarded stacks (and frames big enough to jump the guard) fault further away:
         * a stack pointer below the stack's bottom says the same thing. */
        bool sp_below = sp != 0 && sp < (uintptr_t)lo && sp + ((uintptr_t)1 << 26) > (uintptr_t)lo;
        if (in_guard || sp_below) {
            char line[128];
            snprintf(line, sizeof(line), "weft: fault at %p, stack pointer %p, stack bottom %p\n",
                     (void *)addr, (void *)sp, (void *)lo);
            say(line);
            weft__overflow_report(t, "overflowed");
        }
    }
    chain(sig, si, uc);
}

static void install(void)
{
    /* backtrace() loads libgcc on first use; do it now rather than inside the handler. */
    void *frames[2];
    backtrace(frames, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

int weft__overflow_thread_init(void)
{
    if (getenv("WEFT_NO_OVERFLOW_HANDLER") != NULL)
        return 0;
    pthread_once(&install_once, install);
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return 0; /* the thread has one already (a sanitizer's, or the program's) */
    void *m = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
    if (m == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = m, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        int err = -errno;
        munmap(m, ALTSTACK_BYTES);
        return err;
    }
    return 0;
}
