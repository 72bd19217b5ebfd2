/*
 * The loop side of the thread pool: weft_to_thread() and friends. A task queues a job, parks,
 * and is woken by the job's completion callback (posted with weft_call_soon_threadsafe). A task
 * that leaves early (cancel, deadline) removes a job that has not started, abandons a running one
 * to its thread (which calls drop), or waits the one loop trip for a completion already posted.
 */
#include "pool/pool.h"

void weft__job_complete(void *arg)
{
    struct weft__job *j = arg;
    j->delivered = 1;
    weft__wake(j->waiter, 0);
}

/*
 * The completion is posted (or about to be): wait for it to run, so that the job is never
 * freed under a queued callback. `r` is the outcome so far; a cancel arriving meanwhile turns
 * it into -ECANCELED, and a second one stays pending for the task's next suspension point.
 */
static int await_delivery(weft_task_t *t, struct weft__job *j, int r)
{
    bool again = false;
    while (!j->delivered) {
        if (weft__park(t, WEFT__P_PRIM, j, NULL, WEFT_NO_DEADLINE) == -ECANCELED) {
            if (r == -ECANCELED)
                again = true;
            r = -ECANCELED;
        }
    }
    if (again)
        t->must_cancel = 1;
    return r;
}

/*
 * The job is done and delivered: return fn's result, unless the task was cancelled after the
 * completion arrived (then the result is dropped). Whenever the call returns -ECANCELED or
 * -ETIMEDOUT, drop gets the arguments, so the caller's ownership rule depends on the return
 * value alone.
 */
static int collect(struct weft__job *j, int r)
{
    int result = j->result;
    int ret = r == -ECANCELED ? -ECANCELED : result;
    if ((ret == -ECANCELED || ret == -ETIMEDOUT) && j->drop != NULL)
        j->drop(j->arg, result);
    weft__free(j);
    return ret;
}

/* fn never ran and the call gives up with `r` (-ECANCELED or -ETIMEDOUT). */
static int never_ran(void *arg, weft__drop_fn drop, int r)
{
    if (drop != NULL)
        drop(arg, -ECANCELED);
    return r;
}

int weft__pool_call(int cls, weft__job_fn fn, void *arg, weft__drop_fn drop, int64_t deadline)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (fn == NULL || cls < 0 || cls >= WEFT__POOL_NCLASS)
        return -EINVAL;
    if (t->must_cancel) {
        t->must_cancel = 0;
        return never_ran(arg, drop, -ECANCELED);
    }
    if (deadline < 0)
        deadline = WEFT_NO_DEADLINE;
    else if (deadline <= weft__now(t->fut.loop))
        return never_ran(arg, drop, -ETIMEDOUT);

    struct weft__job *j = weft__malloc(sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    weft__list_init(&j->link);
    j->fn = fn;
    j->arg = arg;
    j->drop = drop;
    j->loop = t->fut.loop;
    j->waiter = t;
    j->result = 0;
    j->cls = (uint8_t)cls;
    j->delivered = 0;
    j->detached = 0;
    j->done.kind = WEFT__RN_HANDLE;
    j->done.heap = WEFT__H_NONE;
    j->done.cb = weft__job_complete;
    j->done.arg = j;
    err = weft__pool_submit(j);
    if (err < 0) {
        weft__free(j);
        return err;
    }

    int r = weft__park(t, WEFT__P_PRIM, j, NULL, deadline);
    if (j->delivered)
        return collect(j, r);
    /* Leaving early. -ENOMEM means the deadline timer could not be armed and the task never
     * suspended: take the job back if it has not started, else wait for it after all. */
    bool abandon = r != -ENOMEM;
    switch (weft__pool_leave(j, abandon)) {
    case WEFT__J_QUEUED:
        weft__free(j);
        return abandon ? never_ran(arg, drop, r) : r;
    case WEFT__J_RUNNING:
        if (abandon)
            return r; /* the pool thread calls drop and frees the job */
        return collect(j, await_delivery(t, j, 0));
    default: /* WEFT__J_POSTED */
        return collect(j, await_delivery(t, j, abandon ? r : 0));
    }
}

/* ---- public calls ---- */

int weft_to_thread(int (*fn)(void *arg), void *arg)
{
    return weft__pool_call(WEFT__POOL_WORK, fn, arg, NULL, WEFT_NO_DEADLINE);
}

int weft_to_thread_dl(int (*fn)(void *arg), void *arg, int64_t deadline)
{
    return weft__pool_call(WEFT__POOL_WORK, fn, arg, NULL, deadline);
}

int weft_to_thread_ex(int (*fn)(void *arg), void *arg, void (*drop)(void *arg, int result))
{
    return weft__pool_call(WEFT__POOL_WORK, fn, arg, drop, WEFT_NO_DEADLINE);
}

int weft_to_thread_ex_dl(int (*fn)(void *arg), void *arg, void (*drop)(void *arg, int result),
                         int64_t deadline)
{
    return weft__pool_call(WEFT__POOL_WORK, fn, arg, drop, deadline);
}
