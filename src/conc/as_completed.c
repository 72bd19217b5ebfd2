/*
 * as_completed: an iterator that yields tasks in the order they finish, each input slot once.
 * A deadline fixed at creation cuts it short: completions recorded before it are still yielded,
 * every later step fails with -ETIMEDOUT, and nothing is cancelled.
 */
#include "conc/conc.h"

struct weft_as_completed {
    struct weft__watch *w; /* NULL when there are no tasks */
    size_t n;
    uint32_t yielded; /* steps taken */
    uint32_t limit;   /* completions that count: all until the deadline fires */
    uint8_t timed_out;
    weft_timer_t timer;
    weft_task_t *tasks[]; /* retained */
};

static void ac_timeout(void *arg)
{
    struct weft_as_completed *ac = arg;
    ac->timed_out = 1;
    ac->limit = ac->w->ndone;
    weft_task_t *t = ac->w->waiter;
    if (t != NULL && weft__parked_on(t) == ac->w)
        weft__wake(t, 0);
}

int weft_as_completed_new(weft_as_completed_t **out, weft_task_t *const *tasks, size_t n,
                          int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    weft_loop_t *l = weft_loop_current();
    if (l == NULL)
        return -EPERM;
    int err = weft__conc_check_tasks(weft_current_task(), tasks, n);
    if (err < 0)
        return err;
    if (n > UINT32_MAX / 2)
        return -ENOMEM;
    struct weft_as_completed *ac = weft__calloc(1, sizeof(*ac) + n * sizeof(ac->tasks[0]));
    if (ac == NULL)
        return -ENOMEM;
    ac->n = n;
    ac->limit = UINT32_MAX;
    weft_timer_init(&ac->timer);
    if (n > 0) {
        ac->w = weft__watch_new(tasks, n, 0, &err);
        if (ac->w == NULL) {
            weft__free(ac);
            return err;
        }
        if (deadline >= 0) {
            err = weft_call_at(l, &ac->timer, deadline, ac_timeout, ac);
            if (err < 0) {
                weft__watch_detach(ac->w, tasks);
                weft__free(ac);
                return err;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        ac->tasks[i] = weft_task_retain(tasks[i]);
    *out = ac;
    return 0;
}

int weft_as_completed_next(weft_as_completed_t *ac, weft_task_t **task)
{
    if (task != NULL)
        *task = NULL;
    if (ac == NULL)
        return -EINVAL;
    int err;
    weft_task_t *cur = weft__conc_current(NULL, &err);
    if (cur == NULL)
        return err;
    if (ac->yielded >= ac->n)
        return WEFT_EOF;
    struct weft__watch *w = ac->w;
    for (;;) {
        uint32_t avail = w->ndone < ac->limit ? w->ndone : ac->limit;
        if (ac->yielded < avail) {
            uint32_t idx = w->order[ac->yielded++];
            if (task != NULL)
                *task = ac->tasks[idx];
            return (int)idx;
        }
        if (ac->timed_out) {
            ac->yielded++;
            return -ETIMEDOUT;
        }
        err = weft__watch_park(w, cur, avail, WEFT_NO_DEADLINE);
        if (err < 0)
            return err;
    }
}

void weft_as_completed_free(weft_as_completed_t *ac)
{
    if (ac == NULL)
        return;
    weft_timer_cancel(&ac->timer);
    if (ac->w != NULL)
        weft__watch_detach(ac->w, ac->tasks);
    for (size_t i = 0; i < ac->n; i++)
        weft_task_release(ac->tasks[i]);
    weft__free(ac);
}
