/*
 * Helpers shared by the structured-concurrency calls: argument checks for the task arrays they
 * wait on, and a shielded "wait until this future is done" on the park.
 */
#include "conc/conc.h"

#include <string.h>

weft_task_t *weft__conc_current(const weft_task_t *t, int *err)
{
    weft_task_t *cur = weft__task_check_current(err);
    if (cur == NULL)
        return NULL;
    if (t != NULL && t->fut.loop != NULL && t->fut.loop != cur->fut.loop) {
        *err = -EINVAL;
        return NULL;
    }
    if (t == cur) {
        *err = -EDEADLK;
        return NULL;
    }
    return cur;
}

int weft__conc_check_tasks(weft_task_t *cur, weft_task_t *const *tasks, size_t n)
{
    if (n > 0 && tasks == NULL)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (tasks[i] == NULL)
            return -EINVAL;
        if (tasks[i] == cur)
            return -EDEADLK;
        if (tasks[i]->fut.loop != weft_loop_current())
            return -EINVAL;
    }
    return 0;
}

int weft__conc_wait_done(weft_task_t *cur, weft_future_t *f, int64_t deadline)
{
    if (f->state != WEFT__F_PENDING)
        return 0;
    struct weft__fentry e;
    memset(&e, 0, sizeof(e));
    e.task = cur;
    weft__list_append(&f->entries, &e.link);
    f->refs++;
    int r = weft__park(cur, WEFT__P_SHIELD, f, &e.link, deadline);
    weft_future_release(f);
    return r;
}
