/*
 * Private declarations of the structured-concurrency calls (src/conc): the caller-storage layouts
 * behind weft_timeout_t and weft_group_t, the error group, and the completion "watch" that
 * gather, wait and as_completed share to learn, in completion order, which tasks finished.
 */
#ifndef WEFT_CONC_H
#define WEFT_CONC_H

#include "internal.h"

/* ---- shared helpers (common.c) ---- */

/*
 * Wait until `f` is done without forwarding the caller's cancellation to it (the caller parks as
 * a shielded waiter). Returns 0 once `f` is done, or -ECANCELED / -ETIMEDOUT for the caller.
 */
int weft__conc_wait_done(weft_task_t *cur, weft_future_t *f, int64_t deadline);

/*
 * Check an array of tasks to wait on: -EINVAL for NULL entries (or a NULL array with n > 0) and
 * tasks of another loop, -EDEADLK if `cur` (may be NULL) is among them.
 */
int weft__conc_check_tasks(weft_task_t *cur, weft_task_t *const *tasks, size_t n);

/* The current task of the current loop, checking that `t` (if not NULL) may be waited on. */
weft_task_t *weft__conc_current(const weft_task_t *t, int *err);

/* ---- timeout scopes (timeout.c) ---- */

enum {
    WEFT__TO_ENTERED = 1,  /* armed (or disabled), not fired */
    WEFT__TO_EXPIRING = 2, /* fired: the task was cancelled, exit not reached yet */
    WEFT__TO_EXPIRED = 3,  /* exited after firing */
    WEFT__TO_EXITED = 4,   /* exited without firing */
};

struct weft__timeout {
    weft_timer_t timer;
    weft_task_t *task; /* the task that entered the scope */
    int64_t when;      /* deadline in ns, or WEFT_NO_DEADLINE */
    int baseline;      /* task's cancelling() at entry */
    uint32_t magic;    /* WEFT__TO_MAGIC while entered or expiring */
    uint8_t state;     /* WEFT__TO_* */
};
#define WEFT__TO_MAGIC 0x7e0f7e0fu

/* ---- completion watch (watch.c) ---- */

struct weft__watch;

struct weft__watch_slot {
    struct weft__watch *w;
    uint32_t idx;
    uint8_t ran; /* its done callback has run */
};

/*
 * A set of tasks observed through done callbacks, shared by gather, wait and as_completed. Each
 * completion appends the task's index to `order` and wakes the consumer if it is parked on the
 * watch. A callback still queued when the consumer leaves keeps the watch alive (references).
 */
struct weft__watch {
    uint32_t refs;
    uint32_t n;           /* watched tasks */
    uint32_t nregistered; /* callbacks registered (n unless registration failed) */
    uint32_t ndone;       /* completions recorded in order[] */
    uint8_t detached;     /* the consumer has left */
    uint8_t mark_late;    /* completions after detaching mark the task's error read (gather) */
    weft_task_t *waiter;  /* the consumer while it is parked on the watch */
    uint32_t *order;      /* indexes in completion order */
    struct weft__watch_slot slots[];
};

/*
 * Watch `n` > 0 tasks (`tasks` borrowed for the call). `extra` zeroed bytes for the consumer
 * follow the watch (weft__watch_extra()). Returns the watch holding one reference for the
 * consumer, or NULL with *err = -ENOMEM.
 */
struct weft__watch *weft__watch_new(weft_task_t *const *tasks, size_t n, size_t extra, int *err);
void *weft__watch_extra(struct weft__watch *w);

/*
 * Park the consumer `cur` until a completion beyond the first `seen` is recorded or `deadline`
 * passes. Returns 0 at once if one already is, else 0 when woken by one, -ECANCELED,
 * -ETIMEDOUT.
 */
int weft__watch_park(struct weft__watch *w, weft_task_t *cur, uint32_t seen, int64_t deadline);

/*
 * The consumer leaves: callbacks not yet scheduled are removed from `tasks` (the same array,
 * still valid); with mark_late each removed one is replaced by a callback that only marks the
 * task's error read. Drops the consumer's reference.
 */
void weft__watch_detach(struct weft__watch *w, weft_task_t *const *tasks);

/* ---- error groups (errgroup.c) ---- */

struct weft__errentry {
    weft_task_t *task;       /* the failed child (a reference), NULL for the group's body */
    int error;               /* its error; WEFT_EGROUP when `nested` holds a group's errors */
    weft_errgroup_t *nested; /* a reference, or NULL */
};

struct weft_errgroup {
    uint32_t refs;
    uint32_t n;
    uint32_t cap;
    struct weft__errentry *e;
};

/*
 * Make room for `room` more entries in *eg (created if NULL, with no entry). Returns 0 or
 * -ENOMEM; *eg is unchanged on failure (never a group without its entry array).
 */
int weft__errgroup_reserve(weft_errgroup_t **eg, size_t room);

/*
 * Append an entry to *eg (created on first use), taking `nested` (may be NULL) and retaining
 * `task` (may be NULL). Returns 0 or -ENOMEM (then `nested` is released); cannot fail when room
 * was reserved.
 */
int weft__errgroup_add(weft_errgroup_t **eg, weft_task_t *task, int error, weft_errgroup_t *nested);

/* ---- TaskGroup (group.c) ---- */

struct weft__gchild;

struct weft__group {
    uint32_t magic;           /* WEFT__G_ENTERED / WEFT__G_DONE */
    uint8_t exiting;          /* weft_group_exit() is waiting for the children */
    uint8_t aborting;         /* a failure or a cancel: children are being cancelled */
    uint8_t parent_cancelled; /* the group cancelled its parent once (to stop the body) */
    uint8_t waiting;          /* the parent is parked in exit */
    weft_task_t *parent;      /* the task that entered the group */
    weft_loop_t *loop;
    size_t nchildren;             /* children whose end the group has not handled yet */
    struct weft__list children;   /* struct weft__gchild */
    /* Children's errors, in the order they were handled. Made at enter, and room is reserved
     * for one entry per child not ended yet plus the body's, so an error is never lost to an
     * allocation failure (a spawn fails with -ENOMEM instead). */
    weft_errgroup_t *errors;
    weft_errgroup_t *body_nested; /* errors of a group that failed inside the body */
    uint32_t nspare;
    struct weft__gchild *spare; /* child records to reuse, freed at exit */
};
#define WEFT__G_ENTERED 0x67726f75u
#define WEFT__G_DONE    0x646f6e65u

#endif /* WEFT_CONC_H */
