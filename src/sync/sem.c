/*
 * Semaphore and BoundedSemaphore (asyncio 3.13, gh-111693): strict FIFO. A release hands its unit
 * to the first parked waiter at wake time (the value drops then); a waiter cancelled after being
 * woken gives the unit back, and every acquirer that leaves wakes as many waiters as units allow.
 */
#include "sync/sync.h"

#include <limits.h>

static inline struct weft__sem *impl(weft_sem_t *sem)
{
    return (struct weft__sem *)sem;
}

static int init(weft_sem_t *sem, int value, bool bounded)
{
    if (sem == NULL || value < 0)
        return -EINVAL;
    struct weft__sem *s = impl(sem);
    weft__list_init(&s->waiters);
    s->value = value;
    s->bound = value;
    s->nwoken = 0;
    s->bounded = bounded;
    return 0;
}

int weft_sem_init(weft_sem_t *sem, int value)
{
    return init(sem, value, false);
}

int weft_sem_init_bounded(weft_sem_t *sem, int value)
{
    return init(sem, value, true);
}

/* asyncio's locked(): no free unit, or someone is queued (woken or still parked). */
static bool locked(struct weft__sem *s)
{
    return s->value <= 0 || s->nwoken > 0 || weft__wl_first_parked(&s->waiters) != NULL;
}

/* Give one unit to the first parked waiter. Returns false if there is none. */
static bool wake_next(struct weft__sem *s)
{
    struct weft__waiter *w = weft__wl_first_parked(&s->waiters);
    if (w == NULL)
        return false;
    s->value--;
    s->nwoken++;
    weft__waiter_wake(w);
    return true;
}

int weft_sem_acquire_dl(weft_sem_t *sem, int64_t deadline)
{
    if (WEFT__UNLIKELY(sem == NULL))
        return -EINVAL;
    struct weft__sem *s = impl(sem);
    if (WEFT__LIKELY(s->value > 0 && s->nwoken == 0 && weft__wl_empty(&s->waiters))) {
        s->value--;
        return 0;
    }
    if (!locked(s)) {
        s->value--;
        return 0;
    }
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    struct weft__waiter w;
    int r = weft__wl_wait(t, &s->waiters, &w, s, deadline);
    if (r == -EINVAL)
        return r; /* another loop's waiters: nothing changed */
    if (w.woken) {
        s->nwoken--;
        if (r < 0)
            s->value++; /* woken, then cancelled: the unit goes back */
    }
    /* Newcomers may have queued behind us while units were free: wake as many as allowed. */
    while (s->value > 0 && wake_next(s)) {
    }
    return r;
}

int weft_sem_acquire(weft_sem_t *sem)
{
    return weft_sem_acquire_dl(sem, WEFT_NO_DEADLINE);
}

int weft_sem_release(weft_sem_t *sem)
{
    if (WEFT__UNLIKELY(sem == NULL))
        return -EINVAL;
    struct weft__sem *s = impl(sem);
    /* Units handed to woken waiters are taken: releasing them again would exceed the bound. */
    if (s->bounded && (int64_t)s->value + s->nwoken >= s->bound)
        return -EINVAL;
    if (s->value == INT32_MAX)
        return -EOVERFLOW;
    if (WEFT__UNLIKELY(weft__wl_foreign(&s->waiters)))
        return -EINVAL;
    s->value++;
    if (!weft__wl_empty(&s->waiters))
        wake_next(s);
    return 0;
}

bool weft_sem_locked(const weft_sem_t *sem)
{
    return sem != NULL && locked((struct weft__sem *)sem);
}

int weft_sem_value(const weft_sem_t *sem)
{
    return sem != NULL ? ((const struct weft__sem *)sem)->value : 0;
}
