/*
 * Condition (asyncio 3.13): wait releases the lock, parks on the condition's own list, and always
 * re-acquires the lock before returning, retrying through cancellations (gh-112202); a waiter that
 * was notified but returns an error passes one notification on.
 */
#include "sync/sync.h"

#include <limits.h>

static inline struct weft__cond *impl(weft_cond_t *cond)
{
    return (struct weft__cond *)cond;
}

static inline struct weft__lock *lock_of(struct weft__cond *c)
{
    return c->lock != NULL ? c->lock : &c->own;
}

void weft_cond_init(weft_cond_t *cond, weft_lock_t *lock)
{
    if (cond == NULL)
        return;
    struct weft__cond *c = impl(cond);
    weft__list_init(&c->own.waiters);
    c->own.state = WEFT__LOCK_FREE;
    c->lock = (struct weft__lock *)lock;
    weft__list_init(&c->waiters);
}

int weft_cond_acquire_dl(weft_cond_t *cond, int64_t deadline)
{
    if (cond == NULL)
        return -EINVAL;
    return weft__lock_acquire(lock_of(impl(cond)), deadline);
}

int weft_cond_acquire(weft_cond_t *cond)
{
    return weft_cond_acquire_dl(cond, WEFT_NO_DEADLINE);
}

int weft_cond_release(weft_cond_t *cond)
{
    if (cond == NULL)
        return -EINVAL;
    return weft__lock_release(lock_of(impl(cond)));
}

bool weft_cond_locked(const weft_cond_t *cond)
{
    if (cond == NULL)
        return false;
    return lock_of((struct weft__cond *)cond)->state == WEFT__LOCK_HELD;
}

int weft_cond_wait_dl(weft_cond_t *cond, int64_t deadline)
{
    if (cond == NULL)
        return -EINVAL;
    struct weft__cond *c = impl(cond);
    struct weft__lock *l = lock_of(c);
    if (l->state != WEFT__LOCK_HELD)
        return -EPERM;
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    if (WEFT__UNLIKELY(weft__wl_foreign(&c->waiters)))
        return -EINVAL;
    err = weft__lock_release(l);
    if (err < 0)
        return err;
    struct weft__waiter w;
    int r = weft__wl_wait(t, &c->waiters, &w, c, deadline);
    /* The lock is held again on every way out; a cancellation meanwhile is reported after. */
    for (;;) {
        int a = weft__lock_acquire(l, WEFT_NO_DEADLINE);
        if (a == 0)
            break;
        if (a != -ECANCELED)
            return a; /* cannot wait at all (another loop's waiters): give up */
        r = -ECANCELED;
    }
    if (r < 0 && w.woken)
        weft__wl_wake_n(&c->waiters, 1); /* our notification must not be lost */
    return r;
}

int weft_cond_wait(weft_cond_t *cond)
{
    return weft_cond_wait_dl(cond, WEFT_NO_DEADLINE);
}

int weft_cond_wait_for_dl(weft_cond_t *cond, bool (*pred)(void *arg), void *arg,
                          int64_t deadline)
{
    if (cond == NULL || pred == NULL)
        return -EINVAL;
    while (!pred(arg)) {
        int r = weft_cond_wait_dl(cond, deadline);
        if (r < 0)
            return r;
    }
    return 0;
}

int weft_cond_wait_for(weft_cond_t *cond, bool (*pred)(void *arg), void *arg)
{
    return weft_cond_wait_for_dl(cond, pred, arg, WEFT_NO_DEADLINE);
}

int weft_cond_notify(weft_cond_t *cond, int n)
{
    if (cond == NULL)
        return -EINVAL;
    struct weft__cond *c = impl(cond);
    if (lock_of(c)->state != WEFT__LOCK_HELD)
        return -EPERM;
    if (n <= 0)
        return 0;
    if (WEFT__UNLIKELY(weft__wl_foreign(&c->waiters)))
        return -EINVAL;
    return weft__wl_wake_n(&c->waiters, n);
}

int weft_cond_notify_all(weft_cond_t *cond)
{
    return weft_cond_notify(cond, INT_MAX);
}
