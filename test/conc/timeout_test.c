/*
 * Timeout scopes (asyncio.timeout / timeout_at), ported from CPython's test_timeouts.py; every
 * case runs on the virtual clock, so deadlines are exact.
 */
#include <math.h>
#include <unistd.h>

#include "test.h"

#define MS 1000000LL

static int64_t now(void)
{
    return weft_time(NULL);
}

static int test_timeout_basic_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    int64_t t0 = now();
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    CHECK_EQ(weft_timeout_when(&to), t0 + 10 * MS);
    int r = weft_sleep(10);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);
    CHECK(weft_timeout_expired(&to));
    CHECK_EQ(now() - t0, 10 * MS);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_timeout_basic(void)
{
    CHECK_EQ(run_virtual(test_timeout_basic_main, NULL), 0);
}

static int test_timeout_at_basic_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    int64_t deadline = now() + 10 * MS;
    CHECK_EQ(weft_timeout_enter_at(&to, deadline), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(10)), -ETIMEDOUT);
    CHECK(weft_timeout_expired(&to));
    CHECK_EQ(weft_timeout_when(&to), deadline);
    CHECK_EQ(now(), deadline);
    return 0;
}

static void test_timeout_at_basic(void)
{
    CHECK_EQ(run_virtual(test_timeout_at_basic_main, NULL), 0);
}

static int test_nested_timeouts_main(void *arg)
{
    (void)arg;
    weft_timeout_t cm1, cm2;
    int64_t deadline = now() + 10 * MS;
    CHECK_EQ(weft_timeout_enter_at(&cm1, deadline), 0);
    CHECK_EQ(weft_timeout_enter_at(&cm2, deadline), 0);
    int r = weft_timeout_exit(&cm2, weft_sleep(10));
    CHECK_EQ(r, -ECANCELED); /* only the outermost scope converts */
    CHECK_EQ(weft_timeout_exit(&cm1, r), -ETIMEDOUT);
    CHECK(weft_timeout_expired(&cm1));
    CHECK(weft_timeout_expired(&cm2));
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_nested_timeouts(void)
{
    CHECK_EQ(run_virtual(test_nested_timeouts_main, NULL), 0);
}

static int test_waiter_cancelled_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    bool cancelled = false;
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    int r = weft_sleep(10);
    if (r == -ECANCELED)
        cancelled = true; /* the body sees a plain cancellation */
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);
    CHECK(cancelled);
    return 0;
}

static void test_waiter_cancelled(void)
{
    CHECK_EQ(run_virtual(test_waiter_cancelled_main, NULL), 0);
}

static int test_timeout_not_called_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 10), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(0.01)), 0);
    CHECK(!weft_timeout_expired(&to));
    CHECK(weft_timeout_when(&to) > now());
    /* The disarmed timer must not cancel anything later. */
    CHECK_EQ(weft_sleep(20), 0);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_timeout_not_called(void)
{
    CHECK_EQ(run_virtual(test_timeout_not_called_main, NULL), 0);
}

static int test_timeout_disabled_main(void *arg)
{
    (void)arg;
    weft_timeout_t a, b;
    CHECK_EQ(weft_timeout_enter(&a, INFINITY), 0);
    CHECK_EQ(weft_timeout_exit(&a, weft_sleep(0.01)), 0);
    CHECK(!weft_timeout_expired(&a));
    CHECK_EQ(weft_timeout_when(&a), WEFT_NO_DEADLINE);
    /* test_timeout_at_disabled */
    CHECK_EQ(weft_timeout_enter_at(&b, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_timeout_exit(&b, weft_sleep(0.01)), 0);
    CHECK(!weft_timeout_expired(&b));
    CHECK_EQ(weft_timeout_when(&b), WEFT_NO_DEADLINE);
    return 0;
}

static void test_timeout_disabled(void)
{
    CHECK_EQ(run_virtual(test_timeout_disabled_main, NULL), 0);
}

static int test_timeout_zero_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    int64_t t0 = now();
    CHECK_EQ(weft_timeout_enter(&to, 0), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(10)), -ETIMEDOUT);
    int64_t t1 = now();
    CHECK(weft_timeout_expired(&to));
    CHECK(t0 <= weft_timeout_when(&to) && weft_timeout_when(&to) <= t1);
    CHECK_EQ(t1, t0);
    return 0;
}

static void test_timeout_zero(void)
{
    CHECK_EQ(run_virtual(test_timeout_zero_main, NULL), 0);
}

static int test_timeout_zero_sleep_zero_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    int64_t t0 = now();
    CHECK_EQ(weft_timeout_enter(&to, 0), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(0)), -ETIMEDOUT);
    CHECK(weft_timeout_expired(&to));
    CHECK(t0 <= weft_timeout_when(&to) && weft_timeout_when(&to) <= now());
    return 0;
}

static void test_timeout_zero_sleep_zero(void)
{
    CHECK_EQ(run_virtual(test_timeout_zero_sleep_zero_main, NULL), 0);
}

static int test_timeout_in_the_past_sleep_zero_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(20), 0);
    weft_timeout_t to;
    int64_t t0 = now();
    CHECK_EQ(weft_timeout_enter(&to, -11), 0);
    CHECK_EQ(weft_timeout_when(&to), t0 - 11000 * MS);
    CHECK_EQ(weft_timeout_exit(&to, weft_yield()), -ETIMEDOUT);
    CHECK(weft_timeout_expired(&to));
    return 0;
}

static void test_timeout_in_the_past_sleep_zero(void)
{
    CHECK_EQ(run_virtual(test_timeout_in_the_past_sleep_zero_main, NULL), 0);
}

static int test_foreign_exception_passed_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&to, -EIO), -EIO);
    CHECK(!weft_timeout_expired(&to));
    return 0;
}

static void test_foreign_exception_passed(void)
{
    CHECK_EQ(run_virtual(test_foreign_exception_passed_main, NULL), 0);
}

/* try: sleep(1) finally: 1/0 -- the cleanup's own error replaces the cancellation. */
static int crash(void *arg)
{
    (void)arg;
    weft_sleep(1);
    return -EDOM;
}

static int test_foreign_exception_on_timeout_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_timeout_call(0.01, crash, NULL), -EDOM);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_foreign_exception_on_timeout(void)
{
    CHECK_EQ(run_virtual(test_foreign_exception_on_timeout_main, NULL), 0);
}

static int test_foreign_cancel_doesnt_timeout_if_not_expired_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 10), 0);
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(10)), -ECANCELED);
    CHECK(!weft_timeout_expired(&to));
    return 0;
}

static void test_foreign_cancel_doesnt_timeout_if_not_expired(void)
{
    CHECK_EQ(run_virtual(test_foreign_cancel_doesnt_timeout_if_not_expired_main, NULL), 0);
}

static int outer(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.001), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(10)), -ETIMEDOUT);
    return 0; /* the TimeoutError was handled */
}

static int test_outer_task_is_not_cancelled_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, outer, NULL), 0);
    CHECK_EQ(weft_join(t), 0);
    CHECK(!weft_task_cancelled(t));
    CHECK(weft_task_done(t));
    weft_task_release(t);
    return 0;
}

static void test_outer_task_is_not_cancelled(void)
{
    CHECK_EQ(run_virtual(test_outer_task_is_not_cancelled_main, NULL), 0);
}

static int test_nested_timeouts_concurrent_main(void *arg)
{
    (void)arg;
    weft_timeout_t a, b;
    CHECK_EQ(weft_timeout_enter(&a, 0.002), 0);
    CHECK_EQ(weft_timeout_enter(&b, 0.1), 0);
    int r = weft_timeout_exit(&b, weft_sleep(1));
    CHECK_EQ(r, -ECANCELED); /* the inner scope did not expire: not its timeout */
    CHECK(!weft_timeout_expired(&b));
    CHECK_EQ(weft_timeout_exit(&a, r), -ETIMEDOUT);
    CHECK_EQ(now(), 2 * MS);
    return 0;
}

static void test_nested_timeouts_concurrent(void)
{
    CHECK_EQ(run_virtual(test_nested_timeouts_concurrent_main, NULL), 0);
}

/* A "busy" stretch: a child that ignores cancellation until 200 ms have passed. */
static int busy(void *arg)
{
    (void)arg;
    int64_t end = now() + 200 * MS;
    bool cancelled = false;
    while (now() < end) {
        if (weft_sleep_until(end) == -ECANCELED)
            cancelled = true;
    }
    return cancelled ? -ECANCELED : 0;
}

static int test_nested_timeouts_loop_busy_main(void *arg)
{
    (void)arg;
    int64_t t0 = now();
    weft_timeout_t a, b;
    /* Handled inner timeout: the outer one still interrupts the long sleep that follows. */
    CHECK_EQ(weft_timeout_enter(&a, 0.1), 0);
    CHECK_EQ(weft_timeout_enter(&b, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&b, weft_sleep(1)), -ETIMEDOUT);
    CHECK_EQ(weft_timeout_exit(&a, weft_sleep(10)), -ETIMEDOUT);
    CHECK_EQ(now() - t0, 100 * MS);
    /* Busy past both deadlines: both fire before the body sees anything; the inner scope lets
     * the cancellation through and the outer one reports the timeout, as in asyncio. */
    t0 = now();
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, busy, NULL), 0);
    CHECK_EQ(weft_timeout_enter(&a, 0.1), 0);
    CHECK_EQ(weft_timeout_enter(&b, 0.01), 0);
    int r = weft_timeout_exit(&b, weft_join(t));
    CHECK_EQ(r, -ECANCELED);
    CHECK(weft_timeout_expired(&b));
    if (r == -ECANCELED || weft_sleep(10) == -ECANCELED)
        r = -ECANCELED;
    CHECK_EQ(weft_timeout_exit(&a, r), -ETIMEDOUT);
    CHECK(now() - t0 <= 1000 * MS);
    weft_task_release(t);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_nested_timeouts_loop_busy(void)
{
    CHECK_EQ(run_virtual(test_nested_timeouts_loop_busy_main, NULL), 0);
}

static weft_timeout_t *shared_cm;
static bool cm_expired;

static int reschedule_child(void *arg)
{
    weft_future_t *fut = arg;
    weft_timeout_t cm;
    CHECK_EQ(weft_timeout_enter_at(&cm, now() + 10000 * MS), 0);
    shared_cm = &cm;
    weft_future_set_result(fut, 0);
    int r = weft_timeout_exit(&cm, weft_sleep(50));
    cm_expired = weft_timeout_expired(&cm);
    shared_cm = NULL;
    return r;
}

static int test_reschedule_main(void *arg)
{
    (void)arg;
    weft_future_t *fut;
    CHECK_EQ(weft_future_new(&fut), 0);
    int64_t deadline1 = now() + 10000 * MS;
    int64_t deadline2 = deadline1 + 20000 * MS;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, reschedule_child, fut), 0);
    CHECK_EQ(weft_future_await(fut), 0);
    CHECK_EQ(weft_timeout_when(shared_cm), deadline1);
    CHECK_EQ(weft_timeout_reschedule(shared_cm, deadline2), 0);
    CHECK_EQ(weft_timeout_when(shared_cm), deadline2);
    CHECK_EQ(weft_timeout_reschedule(shared_cm, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_timeout_when(shared_cm), WEFT_NO_DEADLINE);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(!cm_expired);
    /* Rescheduling to an earlier time makes it fire then. */
    weft_timeout_t to;
    int64_t t0 = now();
    CHECK_EQ(weft_timeout_enter(&to, 100), 0);
    CHECK_EQ(weft_timeout_reschedule(&to, t0 + 5 * MS), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(100)), -ETIMEDOUT);
    CHECK_EQ(now() - t0, 5 * MS);
    /* test_timeout_finished: no rescheduling after exit. */
    CHECK_EQ(weft_timeout_reschedule(&to, t0), -EINVAL);
    CHECK_EQ(weft_timeout_exit(&to, 0), -EINVAL);
    weft_task_release(t);
    weft_future_release(fut);
    return 0;
}

static void test_reschedule(void)
{
    CHECK_EQ(run_virtual(test_reschedule_main, NULL), 0);
}

static int test_nested_timeout_in_finally_main(void *arg)
{
    (void)arg;
    weft_timeout_t a, b;
    CHECK_EQ(weft_timeout_enter(&a, 0.01), 0);
    int r = weft_sleep(1);
    CHECK_EQ(r, -ECANCELED);
    /* finally: a new scope entered while the task is being cancelled still works. */
    CHECK_EQ(weft_timeout_enter(&b, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&b, weft_sleep(10)), -ETIMEDOUT);
    CHECK_EQ(weft_timeout_exit(&a, r), -ETIMEDOUT);
    CHECK_EQ(now(), 20 * MS);
    return 0;
}

static void test_nested_timeout_in_finally(void)
{
    CHECK_EQ(run_virtual(test_nested_timeout_in_finally_main, NULL), 0);
}

static int test_timeout_after_cancellation_main(void *arg)
{
    (void)arg;
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_sleep(1), -ECANCELED); /* caught, not uncancelled */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(1)), -ETIMEDOUT);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 1);
    return 0;
}

static void test_timeout_after_cancellation(void)
{
    CHECK_EQ(run_virtual(test_timeout_after_cancellation_main, NULL), 0);
}

static int test_cancel_in_timeout_after_cancellation_main(void *arg)
{
    (void)arg;
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_sleep(1), -ECANCELED);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 1.0), 0);
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(2)), -ECANCELED);
    CHECK(!weft_timeout_expired(&to));
    return 0;
}

static void test_cancel_in_timeout_after_cancellation(void)
{
    CHECK_EQ(run_virtual(test_cancel_in_timeout_after_cancellation_main, NULL), 0);
}

static int test_timeout_already_entered_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    CHECK_EQ(weft_timeout_enter(&to, 0.01), -EINVAL);
    CHECK_EQ(weft_timeout_exit(&to, 0), 0);
    /* test_timeout_double_enter: in C the storage may be entered again once exited. */
    CHECK_EQ(weft_timeout_enter(&to, 0.01), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_sleep(1)), -ETIMEDOUT);
    return 0;
}

static void test_timeout_already_entered(void)
{
    CHECK_EQ(run_virtual(test_timeout_already_entered_main, NULL), 0);
}

static void test_timeout_without_task(void)
{
    weft_timeout_t to;
    memset(&to, 0, sizeof(to));
    CHECK_EQ(weft_timeout_enter(&to, 0.01), -EPERM);
    CHECK_EQ(weft_timeout_reschedule(&to, 5), -EINVAL); /* test_timeout_not_entered */
    CHECK_EQ(weft_timeout_exit(&to, 0), -EINVAL);
    CHECK(!weft_timeout_expired(&to));
    CHECK_EQ(weft_timeout_enter(NULL, 1), -EINVAL);
    CHECK_EQ(weft_timeout_call(1, NULL, NULL), -EINVAL);
}

static int test_timeout_nan_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, NAN), -EINVAL);
    return 0;
}

static void test_timeout_nan(void)
{
    CHECK_EQ(run_virtual(test_timeout_nan_main, NULL), 0);
}

/* ---- every blocking call honours a scope, with no support of its own ---- */

static int forever(void *arg)
{
    (void)arg;
    return weft_sleep(INFINITY);
}

static int test_scope_covers_every_wait_main(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    /* A future nobody completes: it is cancelled with the task, as asyncio does. */
    weft_future_t *f;
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_timeout_enter(&to, 1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_future_await(f)), -ETIMEDOUT);
    CHECK(weft_future_cancelled(f));
    weft_future_release(f);
    /* A join: the request is forwarded to the joined task, which ends cancelled. */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, forever, NULL), 0);
    CHECK_EQ(weft_timeout_enter(&to, 1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_join(t)), -ETIMEDOUT);
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    /* A shielded wait: the caller times out, the task keeps running. */
    CHECK_EQ(weft_spawn(&t, forever, NULL), 0);
    CHECK_EQ(weft_timeout_enter(&to, 1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_shield(t)), -ETIMEDOUT);
    CHECK(!weft_task_done(t));
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    /* fd readiness. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(weft_timeout_enter(&to, 1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_wait_fd(p[0], WEFT_READABLE)), -ETIMEDOUT);
    /* A per-call deadline inside a scope: the call's own -ETIMEDOUT is not the scope's. */
    CHECK_EQ(weft_timeout_enter(&to, 10), 0);
    int r = weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(0.5));
    CHECK_EQ(r, -ETIMEDOUT);
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);
    weft_close(p[0]);
    weft_close(p[1]);
    CHECK(!weft_timeout_expired(&to));
    CHECK_EQ(now(), 4500 * MS);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_scope_covers_every_wait(void)
{
    CHECK_EQ(run_virtual(test_scope_covers_every_wait_main, NULL), 0);
}

static int sleep_one(void *arg)
{
    (void)arg;
    return weft_sleep(1);
}

static int test_timeout_call_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_timeout_call(0.5, sleep_one, NULL), -ETIMEDOUT);
    CHECK_EQ(weft_timeout_call(2, sleep_one, NULL), 0);
    CHECK_EQ(now(), 1500 * MS);
    return 0;
}

static void test_timeout_call(void)
{
    CHECK_EQ(run_virtual(test_timeout_call_main, NULL), 0);
}

TEST_MAIN(test_timeout_basic, test_timeout_at_basic, test_nested_timeouts, test_waiter_cancelled,
          test_timeout_not_called, test_timeout_disabled, test_timeout_zero,
          test_timeout_zero_sleep_zero, test_timeout_in_the_past_sleep_zero,
          test_foreign_exception_passed, test_foreign_exception_on_timeout,
          test_foreign_cancel_doesnt_timeout_if_not_expired, test_outer_task_is_not_cancelled,
          test_nested_timeouts_concurrent, test_nested_timeouts_loop_busy, test_reschedule,
          test_nested_timeout_in_finally, test_timeout_after_cancellation,
          test_cancel_in_timeout_after_cancellation, test_timeout_already_entered,
          test_timeout_without_task, test_timeout_nan, test_scope_covers_every_wait,
          test_timeout_call)
