/*
 * Private layout of the synchronisation primitives and queues, and the wait-list helpers they
 * share. A waiter is a node on the waiting task's stack, linked into the primitive's FIFO list and
 * parked with weft__park(); a waker unlinks it, marks it woken and wakes the task, so a waiter
 * that is cancelled or times out afterwards knows it must pass on what it was woken for.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "internal.h"

/* One task waiting on a primitive (lives on that task's stack). */
struct weft__waiter {
    struct weft__list link;
    weft_task_t *task;
    uint8_t woken; /* set by the waker, which also unlinked the node */
};

enum {
    WEFT__LOCK_FREE = 0,
    WEFT__LOCK_HELD = 1,
    WEFT__LOCK_HANDOFF = 2, /* free, but promised to a woken waiter that has not run yet */
};

struct weft__lock {
    struct weft__list waiters; /* next == NULL: zero-initialised, empty */
    uint32_t state;            /* WEFT__LOCK_* */
};

struct weft__event {
    struct weft__list waiters;
    uint32_t value;
};

struct weft__sem {
    struct weft__list waiters;
    int32_t value;   /* free units */
    int32_t bound;   /* bounded semaphores: the initial value */
    uint32_t nwoken; /* woken waiters holding a unit that have not run yet */
    uint8_t bounded;
};

struct weft__cond {
    struct weft__lock own;   /* used when lock == NULL */
    struct weft__lock *lock; /* the caller's lock, or NULL */
    struct weft__list waiters;
};

enum {
    WEFT__BAR_FILLING = 0,
    WEFT__BAR_DRAINING,  /* tripped: the round's tasks are leaving */
    WEFT__BAR_RESETTING, /* reset while tasks were inside: they leave with -EPIPE */
    WEFT__BAR_BROKEN,    /* aborted */
};

struct weft__barrier {
    struct weft__list waiters; /* tasks blocked at the entry and tasks waiting to trip */
    int32_t parties;
    int32_t count; /* tasks inside wait() past the entry */
    uint8_t state; /* WEFT__BAR_* */
};

enum {
    WEFT__Q_FIFO = 0,
    WEFT__Q_LIFO,
    WEFT__Q_PRIO,
};

/* A priority queue entry: the sequence number keeps equal items in put order. */
struct weft__qent {
    void *item;
    uint64_t seq;
};

struct weft_queue {
    size_t count;   /* items held */
    size_t cap;     /* slots allocated */
    size_t head;    /* FIFO: index of the oldest item in the ring */
    size_t maxsize; /* 0 = unbounded */
    void **ring;    /* FIFO (a ring) and LIFO (a stack) */
    struct weft__qent *heap; /* priority: a binary min-heap */
    weft_queue_cmp_fn cmp;
    void *cmp_arg;
    uint64_t seq;
    size_t unfinished;          /* put and not yet task_done() */
    struct weft__list getters;  /* woken waiters are unlinked: they re-check when they run */
    struct weft__list putters;
    struct weft__list joiners;
    uint32_t nbusy;             /* tasks inside a blocking call (free() refuses then) */
    uint8_t kind;               /* WEFT__Q_* */
    uint8_t shutdown;
};

_Static_assert(sizeof(struct weft__lock) <= sizeof(weft_lock_t), "weft_lock_t too small");
_Static_assert(sizeof(struct weft__event) <= sizeof(weft_event_t), "weft_event_t too small");
_Static_assert(sizeof(struct weft__sem) <= sizeof(weft_sem_t), "weft_sem_t too small");
_Static_assert(sizeof(struct weft__cond) <= sizeof(weft_cond_t), "weft_cond_t too small");
_Static_assert(sizeof(struct weft__barrier) <= sizeof(weft_barrier_t), "weft_barrier_t too small");

#define weft__waiter_of(n) weft__container_of(n, struct weft__waiter, link)

/* A list head that may still be all zero: make it a proper empty list. */
static inline void weft__wl_ready(struct weft__list *l)
{
    if (WEFT__UNLIKELY(l->next == NULL))
        weft__list_init(l);
}

static inline bool weft__wl_empty(const struct weft__list *l)
{
    return l->next == NULL || l->next == l;
}

/* Still parked: neither woken by us nor (pending) cancelled or timed out. */
static inline bool weft__waiter_parked(const struct weft__waiter *w)
{
    return w->task->state == WEFT__T_PARKED;
}

/* The first node of a non-empty wait list belongs to another thread's loop. */
static inline bool weft__wl_foreign(const struct weft__list *l)
{
    if (weft__wl_empty(l))
        return false;
    return weft__waiter_of(l->next)->task->fut.loop != weft__tls_loop;
}

/* Hand the wake-up to `w`: unlink it, mark it woken, schedule its task. */
static inline void weft__waiter_wake(struct weft__waiter *w)
{
    weft__list_remove(&w->link);
    w->woken = 1;
    weft__wake(w->task, 0);
}

/* Wake every waiter still parked on `l` and empty the list. Returns how many were woken. */
int weft__wl_wake_all(struct weft__list *l);

/* Wake the first `n` waiters of `l` still parked (n < 0: all). Returns how many were woken. */
int weft__wl_wake_n(struct weft__list *l, int n);

/* The first waiter of `l` still parked and not woken, or NULL. */
struct weft__waiter *weft__wl_first_parked(struct weft__list *l);

/* The running task (weft__task_check_current() inlined for the wait paths). */
static inline weft_task_t *weft__sync_current(int *err)
{
    weft_loop_t *l = weft__tls_loop;
    if (WEFT__UNLIKELY(l == NULL || l->current == NULL)) {
        *err = -EPERM;
        return NULL;
    }
    return l->current;
}

/*
 * Queue the current task `t` at the tail of `l` as `w` and park it until a waker hands it a
 * wake-up, it is cancelled, or `deadline` passes. Returns 0 (woken: w->woken is set), -ECANCELED,
 * -ETIMEDOUT, -ENOMEM, or -EINVAL when `l` holds waiters of another loop. On return `w` is
 * unlinked.
 */
static inline int weft__wl_wait(weft_task_t *t, struct weft__list *l, struct weft__waiter *w,
                                void *obj, int64_t deadline)
{
    w->task = t;
    w->woken = 0;
    weft__wl_ready(l);
    if (!weft__list_empty(l) && WEFT__UNLIKELY(weft__waiter_of(l->next)->task->fut.loop !=
                                               t->fut.loop)) {
        weft__list_init(&w->link);
        return -EINVAL;
    }
    weft__list_append(l, &w->link);
    int r = weft__park(t, WEFT__P_PRIM, obj, &w->link, deadline < 0 ? WEFT_NO_DEADLINE : deadline);
    if (WEFT__UNLIKELY(weft__list_linked(&w->link)))
        weft__list_remove(&w->link); /* park returned before suspending */
    return r;
}

/* The lock primitives Condition builds on (lock.c). */
int weft__lock_acquire(struct weft__lock *l, int64_t deadline);
int weft__lock_release(struct weft__lock *l);

#endif /* WEFT_SYNC_H */
