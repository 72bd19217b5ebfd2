/*
 * Timeout scopes (asyncio.timeout / timeout_at) and wait_for. A scope is built on cancellation
 * only: its timer cancels the task like any other request, so every suspension point of every
 * weft call honours it; at exit the scope withdraws its own request and compares the count with
 * the baseline recorded at entry to tell its timeout from someone else's cancel.
 */
#include "conc/conc.h"

#include <math.h>
#include <string.h>

_Static_assert(sizeof(struct weft__timeout) <= sizeof(weft_timeout_t), "weft_timeout_t too small");
_Static_assert(_Alignof(struct weft__timeout) <= _Alignof(weft_timeout_t), "weft_timeout_t align");

static inline struct weft__timeout *S(weft_timeout_t *to)
{
    return (struct weft__timeout *)to;
}

/* The timer callback: the deadline passed while the scope was entered. */
static void fire(void *arg)
{
    struct weft__timeout *s = arg;
    if (s->state != WEFT__TO_ENTERED)
        return;
    s->state = WEFT__TO_EXPIRING;
    weft_task_cancel(s->task, NULL);
}

/*
 * Arm the scope's timer for `when`. A deadline already reached is queued right away behind what
 * is ready now, like asyncio's call_soon(on_timeout): a body that only yields once still sees it.
 */
static int arm(struct weft__timeout *s, int64_t when)
{
    weft_timer_cancel(&s->timer);
    s->when = when < 0 ? WEFT_NO_DEADLINE : when;
    if (s->when == WEFT_NO_DEADLINE)
        return 0;
    weft_loop_t *l = s->task->fut.loop;
    int err = weft_call_at(l, &s->timer, s->when, fire, s);
    if (err < 0 || s->when > weft__now(l))
        return err;
    struct weft__utimer *u = (struct weft__utimer *)&s->timer;
    weft__timer_disarm(l, &u->tn);
    weft__enqueue_handle(l, &u->h);
    return 0;
}

int weft_timeout_enter_at(weft_timeout_t *to, int64_t when)
{
    if (to == NULL)
        return -EINVAL;
    struct weft__timeout *s = S(to);
    if (s->magic == WEFT__TO_MAGIC)
        return -EINVAL; /* already entered and not exited */
    int err;
    weft_task_t *cur = weft__task_check_current(&err);
    if (cur == NULL)
        return err;
    if (weft__on_cstack(cur->fut.loop, to))
        return -EINVAL; /* its timer would be read while the frames are copied out */
    memset(s, 0, sizeof(*s));
    weft_timer_init(&s->timer);
    s->when = WEFT_NO_DEADLINE;
    s->task = cur;
    s->baseline = weft_task_cancelling(cur);
    err = arm(s, when);
    if (err < 0)
        return err;
    s->state = WEFT__TO_ENTERED;
    s->magic = WEFT__TO_MAGIC;
    return 0;
}

/* now + seconds on the loop clock, clamped to [0, INT64_MAX); +inf gives WEFT_NO_DEADLINE. */
static int64_t deadline_of(double seconds)
{
    if (isinf(seconds) && seconds > 0)
        return WEFT_NO_DEADLINE;
    double when = (double)weft_time(NULL) + seconds * 1e9;
    if (when <= 0)
        return 0;
    if (when >= 9.2e18)
        return WEFT_NO_DEADLINE;
    return (int64_t)when;
}

int weft_timeout_enter(weft_timeout_t *to, double seconds)
{
    if (isnan(seconds))
        return -EINVAL;
    if (weft_loop_current() == NULL)
        return weft_timeout_enter_at(to, WEFT_NO_DEADLINE); /* reports -EPERM */
    return weft_timeout_enter_at(to, deadline_of(seconds));
}

int weft_timeout_exit(weft_timeout_t *to, int body_result)
{
    if (to == NULL)
        return -EINVAL;
    struct weft__timeout *s = S(to);
    if (s->magic != WEFT__TO_MAGIC || weft_current_task() != s->task)
        return -EINVAL;
    s->magic = 0;
    weft_timer_cancel(&s->timer);
    if (s->state != WEFT__TO_EXPIRING) {
        s->state = WEFT__TO_EXITED;
        return body_result;
    }
    s->state = WEFT__TO_EXPIRED;
    if (weft_task_uncancel(s->task) <= s->baseline && body_result == -ECANCELED)
        return -ETIMEDOUT;
    return body_result;
}

int weft_timeout_reschedule(weft_timeout_t *to, int64_t when)
{
    if (to == NULL)
        return -EINVAL;
    struct weft__timeout *s = S(to);
    if (s->magic != WEFT__TO_MAGIC || s->state != WEFT__TO_ENTERED)
        return -EINVAL;
    return arm(s, when);
}

bool weft_timeout_expired(const weft_timeout_t *to)
{
    const struct weft__timeout *s = (const struct weft__timeout *)to;
    return s != NULL && (s->state == WEFT__TO_EXPIRING || s->state == WEFT__TO_EXPIRED);
}

int64_t weft_timeout_when(const weft_timeout_t *to)
{
    const struct weft__timeout *s = (const struct weft__timeout *)to;
    return s != NULL ? s->when : WEFT_NO_DEADLINE;
}

/*
 * A scope for weft's own calls: on the caller's stack, or on the heap when that is the stack
 * compact tasks share (where a scope may not live). Freed by scope_free().
 */
static weft_timeout_t *scope_new(weft_timeout_t *local)
{
    weft_loop_t *l = weft_loop_current();
    if (l == NULL || !weft__on_cstack(l, local))
        return local;
    return weft__calloc(1, sizeof(*local));
}

static void scope_free(weft_timeout_t *to, weft_timeout_t *local)
{
    if (to != local)
        weft__free(to);
}

int weft_timeout_call(double seconds, weft_task_fn fn, void *arg)
{
    if (fn == NULL)
        return -EINVAL;
    weft_timeout_t local = {{0}};
    weft_timeout_t *to = scope_new(&local);
    if (to == NULL)
        return -ENOMEM;
    int err = weft_timeout_enter(to, seconds);
    if (err >= 0)
        err = weft_timeout_exit(to, fn(arg));
    scope_free(to, &local);
    return err;
}

/* ---- wait_for ---- */

int weft_wait_for_at(weft_task_t *task, int64_t when)
{
    if (task == NULL)
        return -EINVAL;
    int err;
    weft_task_t *cur = weft__conc_current(task, &err);
    if (cur == NULL)
        return err;
    if (when < 0)
        return weft_join(task);
    if (when > weft_time(NULL)) {
        /* asyncio 3.12: `async with timeout_at(when): return await task`. */
        weft_timeout_t local = {{0}};
        weft_timeout_t *to = scope_new(&local);
        if (to == NULL)
            return -ENOMEM;
        err = weft_timeout_enter_at(to, when);
        if (err >= 0)
            err = weft_timeout_exit(to, weft_join(task));
        scope_free(to, &local);
        return err;
    }
    /* No time at all: a finished task gives its outcome; any other is cancelled (one that has not
     * started never runs) and waited for, without forwarding further cancels of the caller. */
    if (!weft_task_done(task)) {
        weft_task_cancel(task, NULL);
        err = weft__conc_wait_done(cur, &task->fut, WEFT_NO_DEADLINE);
        if (err < 0)
            return err;
        int r = weft_task_result(task);
        return r == -ECANCELED ? -ETIMEDOUT : r;
    }
    return weft_task_result(task);
}

int weft_wait_for(weft_task_t *task, double seconds)
{
    if (isnan(seconds))
        return -EINVAL;
    if (task == NULL || weft_loop_current() == NULL)
        return weft_wait_for_at(task, WEFT_NO_DEADLINE);
    return weft_wait_for_at(task, deadline_of(seconds));
}
