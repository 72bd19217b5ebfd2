/*
 * Fixtures of the TaskGroup tests (taskgroup_test.c, taskgroup_lifecycle_test.c), ported from
 * CPython 3.13's test_taskgroups.py.
 */
#ifndef WEFT_TEST_TASKGROUP_H
#define WEFT_TEST_TASKGROUP_H

#include <signal.h>

#include "test.h"

#define MS 1000000LL

static int NUM;
static int nreports;

static inline void count_reports(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)info;
    (void)arg;
    nreports++;
}

/* True if every entry of eg (not nested) has error `err`, and there are `n` of them. */
static inline bool all_errors(const weft_errgroup_t *eg, int err, size_t n)
{
    if (weft_errgroup_count(eg) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (weft_errgroup_error(eg, i) != err)
            return false;
    }
    return true;
}

/* sleep `ms`, then return `value` (or fail with it when negative) */
struct job {
    int ms;
    int value;
};

static inline int job(void *arg)
{
    struct job *j = arg;
    int r = weft_sleep(j->ms / 1000.0);
    return r < 0 ? r : j->value;
}

/* sleep 10 s; on cancellation count it and fail with `arg` (0: pass the cancel on) */
static inline int sleep_then_fail_on_cancel(void *arg)
{
    int err = (int)(long)arg;
    int r = weft_sleep(10);
    if (r == -ECANCELED) {
        NUM += 1;
        return err != 0 ? err : r;
    }
    return 0;
}

#endif /* WEFT_TEST_TASKGROUP_H */
