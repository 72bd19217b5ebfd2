/*
 * weft_run(): asyncio.run for C. A fresh loop runs the main task; afterwards every task still
 * alive is cancelled and awaited, errors they end with are reported, and the loop is closed.
 */
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io/backend.h"

/*
 * Ctrl+C, as asyncio.run does it since 3.11: while weft_run() runs on the main thread and SIGINT
 * has its default action, the first SIGINT cancels the main task (so its cleanup runs); a second
 * one kills the process the default way. The handler only sets flags and wakes the loop.
 */
static weft_loop_t *_Atomic sigint_loop;
static volatile sig_atomic_t sigint_count;

static void on_sigint(int sig)
{
    weft_loop_t *l = atomic_load(&sigint_loop);
    if (++sigint_count > 1 || l == NULL) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    atomic_store(&l->sigint, 1);
    atomic_store(&l->ts_pending, 1);
    if (atomic_load(&l->polling))
        l->backend->wake(l);
}

static bool sigint_install(weft_loop_t *l, struct sigaction *old)
{
    if (getpid() != (pid_t)syscall(SYS_gettid))
        return false;
    if (sigaction(SIGINT, NULL, old) < 0 || (old->sa_flags & SA_SIGINFO) ||
        old->sa_handler != SIG_DFL)
        return false;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigint_count = 0;
    atomic_store(&sigint_loop, l);
    return sigaction(SIGINT, &sa, NULL) == 0;
}

static void sigint_restore(const struct sigaction *old)
{
    sigaction(SIGINT, old, NULL);
    atomic_store(&sigint_loop, NULL);
}

static void stop_loop(weft_future_t *f, void *arg)
{
    (void)f;
    weft_loop_stop(arg);
}

/* Cancel what is left and run the loop until those tasks are done (asyncio's
 * _cancel_all_tasks). Tasks spawned meanwhile are not waited for: closing frees them. */
static void shutdown_tasks(weft_loop_t *l)
{
    size_t n = l->ntasks;
    if (n == 0)
        return;
    weft_task_t **left = weft__malloc(n * sizeof(*left));
    if (left == NULL) {
        weft__report(l, "no memory to cancel the remaining tasks", -ENOMEM, NULL);
        return;
    }
    n = weft_all_tasks(l, left, n);
    for (size_t i = 0; i < n; i++)
        weft_task_retain(left[i]);
    for (size_t i = 0; i < n; i++)
        weft_task_cancel(left[i], NULL);
    l->running = 1;
    for (size_t i = 0; i < n; i++) {
        while (!weft_task_done(left[i]))
            weft__loop_iterate(l);
    }
    l->running = 0;
    for (size_t i = 0; i < n; i++) {
        weft_task_t *t = left[i];
        if (!weft_task_cancelled(t) && t->fut.result < 0)
            weft__report(l, "unhandled error during weft_run() shutdown", t->fut.result, t);
        t->fut.retrieved = 1;
        weft_task_release(t);
    }
    weft__free(left);
}

int weft_run_opts(weft_task_fn main, void *arg, const struct weft_loop_opts *opts)
{
    if (main == NULL)
        return -EINVAL;
    if (weft__tls_loop != NULL)
        return -EBUSY;
    weft_loop_t *l;
    int err = weft_loop_new(&l, opts);
    if (err < 0)
        return err;
    weft_task_t *t;
    /* The main task keeps a stack of its own: its locals are what it hands its children. */
    const struct weft_task_opts mopts = {.stack_mode = WEFT_STACK_OWN};
    err = weft_spawn_opts(&t, main, arg, &mopts);
    if (err < 0) {
        weft_loop_close(l);
        return err;
    }
    err = weft_future_add_done_callback(&t->fut, stop_loop, l);
    if (err < 0) {
        weft_task_release(t);
        weft_loop_close(l);
        return err;
    }
    l->main_task = t;
    struct sigaction old_sigint;
    bool catching = sigint_install(l, &old_sigint);
    while (!weft_task_done(t))
        weft_loop_run(l);
    int result = weft_task_result(t);
    /* Cancelled because of Ctrl+C (and by nobody else): say so, like KeyboardInterrupt. */
    if (catching && sigint_count > 0 && result == -ECANCELED && weft_task_uncancel(t) == 0)
        result = -EINTR;
    l->main_task = NULL;
    weft_task_release(t);
    shutdown_tasks(l);
    if (catching)
        sigint_restore(&old_sigint);
    weft_loop_close(l);
    return result;
}

int weft_run(weft_task_fn main, void *arg)
{
    return weft_run_opts(main, arg, NULL);
}
