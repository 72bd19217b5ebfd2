/*
 * Lock (asyncio 3.13): FIFO, no barging, not reentrant. Release does not give the lock to a
 * waiter directly: it marks it promised (HANDOFF) and wakes the first waiter, which takes it when
 * it runs; a waiter cancelled after being woken hands the promise to the next one.
 */
#include "sync/sync.h"

static inline struct weft__lock *impl(weft_lock_t *lock)
{
    return (struct weft__lock *)lock;
}

void weft_lock_init(weft_lock_t *lock)
{
    if (lock == NULL)
        return;
    struct weft__lock *l = impl(lock);
    weft__list_init(&l->waiters);
    l->state = WEFT__LOCK_FREE;
}

/* Every queued waiter is cancelled or timed out (about to leave): a newcomer may go first. */
static bool all_leaving(struct weft__lock *l)
{
    return weft__wl_first_parked(&l->waiters) == NULL;
}

/* Promise the free lock to the first waiter still parked, if any. */
static void wake_first(struct weft__lock *l)
{
    struct weft__waiter *w = weft__wl_first_parked(&l->waiters);
    if (w != NULL) {
        l->state = WEFT__LOCK_HANDOFF;
        weft__waiter_wake(w);
    }
}

int weft__lock_acquire(struct weft__lock *l, int64_t deadline)
{
    if (WEFT__LIKELY(l->state == WEFT__LOCK_FREE && weft__wl_empty(&l->waiters))) {
        l->state = WEFT__LOCK_HELD;
        return 0;
    }
    if (l->state == WEFT__LOCK_FREE && all_leaving(l)) {
        l->state = WEFT__LOCK_HELD;
        return 0;
    }
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    struct weft__waiter w;
    int r = weft__wl_wait(t, &l->waiters, &w, l, deadline);
    if (w.woken && r == 0) {
        l->state = WEFT__LOCK_HELD;
        return 0;
    }
    if (w.woken)
        l->state = WEFT__LOCK_FREE; /* give the promise back */
    if (r != -EINVAL && l->state == WEFT__LOCK_FREE)
        wake_first(l);
    return r;
}

int weft__lock_release(struct weft__lock *l)
{
    if (l->state != WEFT__LOCK_HELD)
        return -EPERM;
    if (WEFT__UNLIKELY(weft__wl_foreign(&l->waiters)))
        return -EINVAL;
    l->state = WEFT__LOCK_FREE;
    if (!weft__wl_empty(&l->waiters))
        wake_first(l);
    return 0;
}

int weft_lock_acquire_dl(weft_lock_t *lock, int64_t deadline)
{
    if (WEFT__UNLIKELY(lock == NULL))
        return -EINVAL;
    return weft__lock_acquire(impl(lock), deadline);
}

int weft_lock_acquire(weft_lock_t *lock)
{
    return weft_lock_acquire_dl(lock, WEFT_NO_DEADLINE);
}

int weft_lock_release(weft_lock_t *lock)
{
    if (WEFT__UNLIKELY(lock == NULL))
        return -EINVAL;
    return weft__lock_release(impl(lock));
}

bool weft_lock_locked(const weft_lock_t *lock)
{
    return lock != NULL && ((const struct weft__lock *)lock)->state == WEFT__LOCK_HELD;
}
