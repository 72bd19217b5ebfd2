/*
 * weft_run(): asyncio.run for C. A fresh loop runs the main task; afterwards every task still
 * alive is cancelled and awaited, errors they end with are reported, and the loop is closed.
 */
#include "internal.h"

#include <stdlib.h>

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
    err = weft_spawn(&t, main, arg);
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
    while (!weft_task_done(t))
        weft_loop_run(l);
    int result = weft_task_result(t);
    weft_task_release(t);
    shutdown_tasks(l);
    weft_loop_close(l);
    return result;
}

int weft_run(weft_task_fn main, void *arg)
{
    return weft_run_opts(main, arg, NULL);
}
