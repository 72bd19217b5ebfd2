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

/*
 * Ctrl+C, as asyncio.run does it since 3.11: while weft_run() runs on the main thread and SIGINT
 * has its default action, the first SIGINT cancels the main task (so its cleanup runs); a second
 * one kills the process the default way. Built on the loop's signal handlers (proc/signal.c): the
 * first runs as a loop callback, the second acts inside the signal handler, since the loop may be
 * stuck. A weft_signal_add(SIGINT) by the program replaces it.
 */
static int sigint_count; /* cancels of the main task by Ctrl+C */

static void on_sigint(int sig, void *arg)
{
    (void)sig;
    weft_loop_t *l = arg;
    if (l->main_task != NULL && weft_task_cancel(l->main_task, "interrupted (SIGINT)"))
        sigint_count++;
}

static bool sigint_install(weft_loop_t *l)
{
    struct sigaction old;
    if (getpid() != (pid_t)syscall(SYS_gettid))
        return false;
    if (sigaction(SIGINT, NULL, &old) < 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return false;
    sigint_count = 0;
    return weft__signal_internal(l, SIGINT, on_sigint, l, true) == 0;
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
    bool catching = sigint_install(l);
    while (!weft_task_done(t))
        weft_loop_run(l);
    int result = weft_task_result(t);
    /* Cancelled because of Ctrl+C (and by nobody else): say so, like KeyboardInterrupt. */
    if (catching && sigint_count > 0 && result == -ECANCELED && weft_task_uncancel(t) == 0)
        result = -EINTR;
    l->main_task = NULL;
    weft_task_release(t);
    shutdown_tasks(l);
    /* Callbacks already scheduled (done callbacks of tasks that ended in the last iterations,
     * the cancelled ones' included) run before the loop closes: one more iteration with a zero
     * poll timeout, as asyncio.run() runs more iterations (the gather of the cancelled tasks,
     * shutdown_asyncgens) before it closes its loop. */
    weft_loop_stop(l);
    weft_loop_run(l);
    if (catching)
        weft_signal_remove(l, SIGINT);
    weft_loop_close(l);
    return result;
}

int weft_run(weft_task_fn main, void *arg)
{
    return weft_run_opts(main, arg, NULL);
}
