/*
 * gather over tasks (asyncio.gather). The gathering task watches its children in completion
 * order: without WEFT_GATHER_RETURN_ERRORS the first error or cancellation of a child decides
 * the outcome at once (the other children keep running; their later errors are marked read);
 * otherwise it waits for all. Cancelling the gathering task cancels every unfinished child.
 */
#include "conc/conc.h"

#define PENDING 1 /* no outcome yet (outcomes are <= 0) */

static int check_args(weft_task_t *const *tasks, size_t n, int flags, weft_task_t **cur)
{
    int err;
    *cur = weft__conc_current(NULL, &err);
    if (*cur == NULL)
        return err;
    if ((flags & ~WEFT_GATHER_RETURN_ERRORS) != 0)
        return -EINVAL;
    return weft__conc_check_tasks(*cur, tasks, n);
}

/* Cancel every child not done yet; true if one accepted (asyncio's _GatheringFuture.cancel). */
static bool cancel_children(weft_task_t *const *tasks, size_t n, const char *msg)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!weft_task_done(tasks[i]) && weft_task_cancel(tasks[i], msg))
            any = true;
    }
    return any;
}

int weft_gather(weft_task_t *const *tasks, size_t n, int *results, int flags)
{
    weft_task_t *cur;
    int err = check_args(tasks, n, flags, &cur);
    if (err < 0 || n == 0)
        return err;
    struct weft__watch *w = weft__watch_new(tasks, n, 0, &err);
    if (w == NULL)
        return err;
    bool all = (flags & WEFT_GATHER_RETURN_ERRORS) != 0;
    w->mark_late = !all;
    bool cancel_requested = false; /* a child accepted the caller's cancellation */
    bool self_cancelled = false;   /* the caller was cancelled and no child took it */
    int outcome = PENDING;
    uint32_t seen = 0;
    for (;;) {
        while (seen < w->ndone && outcome == PENDING) {
            weft_task_t *t = tasks[w->order[seen++]];
            if (!all && weft_task_cancelled(t))
                outcome = -ECANCELED;
            else if (!all && weft_task_result(t) < 0)
                outcome = weft_task_result(t);
            else if (seen == n)
                outcome = cancel_requested ? -ECANCELED : 0;
        }
        if (outcome != PENDING)
            break;
        if (weft__watch_park(w, cur, seen, WEFT_NO_DEADLINE) == -ECANCELED) {
            if (cancel_children(tasks, n, weft_task_cancel_message(cur)))
                cancel_requested = true;
            else
                self_cancelled = true;
        }
    }
    if (results != NULL) {
        for (size_t i = 0; i < n; i++)
            results[i] = weft_task_done(tasks[i]) ? weft_task_result(tasks[i]) : -EINPROGRESS;
    }
    weft__watch_detach(w, tasks);
    return self_cancelled ? -ECANCELED : outcome;
}
