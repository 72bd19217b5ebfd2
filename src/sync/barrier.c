/*
 * Barrier (asyncio 3.11+): the state machine of asyncio's Barrier (filling, draining, resetting,
 * broken) on one wait list; every state change wakes all waiters, which re-check their condition
 * (what asyncio does with a Condition and notify_all). Reset and abort need no lock here, so they
 * do not suspend.
 */
#include "sync/sync.h"

static inline struct weft__barrier *impl(weft_barrier_t *b)
{
    return (struct weft__barrier *)b;
}

int weft_barrier_init(weft_barrier_t *barrier, int parties)
{
    if (barrier == NULL || parties < 1)
        return -EINVAL;
    struct weft__barrier *b = impl(barrier);
    weft__list_init(&b->waiters);
    b->parties = parties;
    b->count = 0;
    b->state = WEFT__BAR_FILLING;
    return 0;
}

/* Park until the next state change (or cancellation / deadline). */
static int wait_change(struct weft__barrier *b, int64_t deadline)
{
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    struct weft__waiter w;
    return weft__wl_wait(t, &b->waiters, &w, b, deadline);
}

int weft_barrier_wait_dl(weft_barrier_t *barrier, int64_t deadline)
{
    if (barrier == NULL || impl(barrier)->parties < 1)
        return -EINVAL;
    struct weft__barrier *b = impl(barrier);
    if (WEFT__UNLIKELY(weft__wl_foreign(&b->waiters)))
        return -EINVAL;
    /* Wait while the previous round drains or resets. */
    while (b->state == WEFT__BAR_DRAINING || b->state == WEFT__BAR_RESETTING) {
        int r = wait_change(b, deadline);
        if (r < 0)
            return r;
    }
    if (b->state == WEFT__BAR_BROKEN)
        return -EPIPE;
    int index = b->count++;
    int r = index;
    if (index + 1 == b->parties) {
        b->state = WEFT__BAR_DRAINING; /* trip: release the others */
        weft__wl_wake_all(&b->waiters);
    } else {
        while (b->state == WEFT__BAR_FILLING) {
            int e = wait_change(b, deadline);
            if (e < 0) {
                r = e; /* leave the barrier */
                break;
            }
        }
        if (r >= 0 && (b->state == WEFT__BAR_BROKEN || b->state == WEFT__BAR_RESETTING))
            r = -EPIPE;
    }
    /* The last task out ends the draining or resetting and lets blocked callers in. */
    if (--b->count == 0) {
        if (b->state == WEFT__BAR_DRAINING || b->state == WEFT__BAR_RESETTING)
            b->state = WEFT__BAR_FILLING;
        weft__wl_wake_all(&b->waiters);
    }
    return r;
}

int weft_barrier_wait(weft_barrier_t *barrier)
{
    return weft_barrier_wait_dl(barrier, WEFT_NO_DEADLINE);
}

int weft_barrier_reset(weft_barrier_t *barrier)
{
    if (barrier == NULL || impl(barrier)->parties < 1)
        return -EINVAL;
    struct weft__barrier *b = impl(barrier);
    if (WEFT__UNLIKELY(weft__wl_foreign(&b->waiters)))
        return -EINVAL;
    if (b->count > 0)
        b->state = WEFT__BAR_RESETTING;
    else
        b->state = WEFT__BAR_FILLING;
    weft__wl_wake_all(&b->waiters);
    return 0;
}

int weft_barrier_abort(weft_barrier_t *barrier)
{
    if (barrier == NULL || impl(barrier)->parties < 1)
        return -EINVAL;
    struct weft__barrier *b = impl(barrier);
    if (WEFT__UNLIKELY(weft__wl_foreign(&b->waiters)))
        return -EINVAL;
    b->state = WEFT__BAR_BROKEN;
    weft__wl_wake_all(&b->waiters);
    return 0;
}

int weft_barrier_parties(const weft_barrier_t *barrier)
{
    return barrier != NULL ? ((const struct weft__barrier *)barrier)->parties : 0;
}

int weft_barrier_n_waiting(const weft_barrier_t *barrier)
{
    if (barrier == NULL)
        return 0;
    const struct weft__barrier *b = (const struct weft__barrier *)barrier;
    return b->state == WEFT__BAR_FILLING ? b->count : 0;
}

bool weft_barrier_broken(const weft_barrier_t *barrier)
{
    return barrier != NULL && ((const struct weft__barrier *)barrier)->state == WEFT__BAR_BROKEN;
}
