/*
 * Private declarations of the structured-concurrency calls (src/conc): the caller-storage layouts
 * behind weft_timeout_t and weft_group_t, and the completion "watch" that gather, wait and
 * as_completed share to learn, in completion order, which of their tasks finished.
 */
#ifndef WEFT_CONC_H
#define WEFT_CONC_H

#include "internal.h"

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

/*
 * Wait until `f` is done without forwarding the caller's cancellation to it (the caller parks as
 * a shielded waiter). Returns 0 once `f` is done, or -ECANCELED / -ETIMEDOUT for the caller.
 */
int weft__conc_wait_done(weft_task_t *cur, weft_future_t *f, int64_t deadline);

/* The current task of the current loop, checking that `t` (if not NULL) may be waited on. */
weft_task_t *weft__conc_current(const weft_task_t *t, int *err);

#endif /* WEFT_CONC_H */
