/*
 * wait (asyncio.wait over tasks): park until the first completion, the first error, or all of
 * them, optionally bounded by a deadline, then report which tasks are done and which are still
 * pending. It never cancels anything and never fails because of the deadline.
 */
#include "conc/conc.h"

/* Does the completion of `t` (the `seen`-th of n) end a wait in `mode`? */
static bool ends_wait(int mode, weft_task_t *t, uint32_t seen, size_t n)
{
    if (mode == WEFT_FIRST_COMPLETED || seen == n)
        return true;
    return mode == WEFT_FIRST_EXCEPTION && !weft_task_cancelled(t) && t->fut.result < 0;
}

int weft_wait_dl(weft_task_t *const *tasks, size_t n, int return_when, weft_task_t **done,
                 weft_task_t **pending, int64_t deadline)
{
    int err;
    weft_task_t *cur = weft__conc_current(NULL, &err);
    if (cur == NULL)
        return err;
    if (n == 0 || (return_when != WEFT_FIRST_COMPLETED && return_when != WEFT_FIRST_EXCEPTION &&
                   return_when != WEFT_ALL_COMPLETED))
        return -EINVAL;
    err = weft__conc_check_tasks(cur, tasks, n);
    if (err < 0)
        return err;
    struct weft__watch *w = weft__watch_new(tasks, n, 0, &err);
    if (w == NULL)
        return err;
    uint32_t seen = 0;
    bool finished = false;
    while (!finished) {
        while (seen < w->ndone && !finished) {
            weft_task_t *t = tasks[w->order[seen++]];
            finished = ends_wait(return_when, t, seen, n);
        }
        if (finished)
            break;
        err = weft__watch_park(w, cur, seen, deadline);
        if (err == -ETIMEDOUT)
            break;
        if (err < 0) {
            weft__watch_detach(w, tasks);
            return err;
        }
    }
    weft__watch_detach(w, tasks);
    int nd = 0, np = 0;
    for (size_t i = 0; i < n; i++) {
        if (weft_task_done(tasks[i])) {
            if (done != NULL)
                done[nd] = tasks[i];
            nd++;
        } else {
            if (pending != NULL)
                pending[np] = tasks[i];
            np++;
        }
    }
    return nd;
}

int weft_wait(weft_task_t *const *tasks, size_t n, int return_when, weft_task_t **done,
              weft_task_t **pending)
{
    return weft_wait_dl(tasks, n, return_when, done, pending, WEFT_NO_DEADLINE);
}
