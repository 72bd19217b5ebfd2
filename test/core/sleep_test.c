/*
 * weft_sleep / weft_sleep_until / weft_yield: 0 (and negative) is exactly one trip through the
 * loop, NaN is -EINVAL, +inf sleeps until cancelled, timed sleeps are exact on the virtual clock.
 */
#include "test.h"

static int result;

static void inc_result(void *arg)
{
    result += (int)(long)arg;
}

static void inc_and_queue(void *arg)
{
    inc_result(arg);
    weft_call_soon(weft_loop_current(), inc_result, (void *)1000);
}

/* CPython test_sleep_zero: sleep(0) lets exactly one already-queued callback run. */
static int sleep_zero_main(void *arg)
{
    (void)arg;
    result = 0;
    CHECK_EQ(weft_call_soon(weft_loop_current(), inc_result, (void *)1), 0);
    CHECK_EQ(result, 0);
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(result, 1); /* inc'ed by call_soon */
    /* Exactly one pass: what that callback queues runs after us. */
    CHECK_EQ(weft_call_soon(weft_loop_current(), inc_and_queue, (void *)10), 0);
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(result, 11);
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(result, 1011);
    return 0;
}

static void test_sleep_zero(void)
{
    CHECK_EQ(weft_run(sleep_zero_main, NULL), 0);
}

/* Negative is the same as 0; weft_yield too. None of them moves the virtual clock. */
static int negative_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    result = 0;
    CHECK_EQ(weft_call_soon(l, inc_and_queue, (void *)1), 0);
    CHECK_EQ(weft_sleep(-5.0), 0);
    CHECK_EQ(result, 1);
    CHECK_EQ(weft_sleep(-1e300), 0);
    CHECK_EQ(result, 1001);
    CHECK_EQ(weft_call_soon(l, inc_and_queue, (void *)1), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(result, 1002);
    CHECK_EQ(weft_time(NULL), 0);
    CHECK_EQ(weft_sleep_until(0), 0); /* a deadline already reached: returns, time stays */
    CHECK_EQ(weft_time(NULL), 0);
    return 0;
}

static void test_sleep_negative(void)
{
    CHECK_EQ(run_virtual(negative_main, NULL), 0);
}

static int nan_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(0.0 / 0.0), -EINVAL);
    CHECK_EQ(weft_time(NULL), 0);
    return 0;
}

static void test_sleep_nan(void)
{
    CHECK_EQ(run_virtual(nan_main, NULL), 0);
}

/* Timed sleeps wake in deadline order at exactly their deadlines. */
static int64_t woke_at[8];
static int woke[8];
static int nwoke;

static int sleep_for(void *arg)
{
    long ms = (long)arg;
    int r = weft_sleep(ms / 1000.0);
    woke_at[nwoke] = weft_time(NULL);
    woke[nwoke++] = (int)ms;
    return r;
}

static int order_main(void *arg)
{
    (void)arg;
    static const long ms[] = {300, 100, 200, 100, 50};
    weft_task_t *t[5];
    nwoke = 0;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_spawn(&t[i], sleep_for, (void *)ms[i]), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    static const int want[] = {50, 100, 100, 200, 300};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(woke[i], want[i]);
        CHECK_EQ(woke_at[i], want[i] * 1000000LL);
    }
    return 0;
}

static void test_sleep_order(void)
{
    CHECK_EQ(run_virtual(order_main, NULL), 0);
}

/* A one-hour sleep on the virtual clock is instant and advances time by exactly one hour. */
static int hour_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sleep(3600), 0);
    CHECK_EQ(weft_time(NULL) - t0, 3600LL * 1000000000);
    CHECK_EQ(weft_sleep_until(weft_time(NULL) + 1), 0);
    CHECK_EQ(weft_time(NULL) - t0, 3600LL * 1000000000 + 1);
    return 0;
}

static void test_sleep_hour_virtual(void)
{
    CHECK_EQ(run_virtual(hour_main, NULL), 0);
}

/* +inf sleeps until cancelled. */
static int forever(void *arg)
{
    (void)arg;
    return weft_sleep(1.0 / 0.0);
}

static int inf_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, forever, NULL), 0);
    CHECK_EQ(weft_sleep(1e6), 0); /* a million seconds later it still sleeps */
    CHECK(!weft_task_done(t));
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK_EQ(weft_time(NULL), 1000000LL * 1000000000);
    return 0;
}

static void test_sleep_inf(void)
{
    CHECK_EQ(run_virtual(inf_main, NULL), 0);
}

/* Real clock: a short sleep really waits at least that long. */
static int real_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sleep(0.02), 0);
    CHECK(weft_time(NULL) - t0 >= 20000000);
    return 0;
}

static void test_sleep_real_clock(void)
{
    CHECK_EQ(weft_run(real_main, NULL), 0);
}

static void test_sleep_outside_task(void)
{
    CHECK_EQ(weft_sleep(1.0), -EPERM);
    CHECK_EQ(weft_sleep(0), -EPERM);
    CHECK_EQ(weft_sleep_until(5), -EPERM);
    CHECK_EQ(weft_yield(), -EPERM);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_sleep(1.0), -EPERM); /* a loop but no task */
    CHECK_EQ(weft_yield(), -EPERM);
    CHECK_EQ(weft_loop_close(l), 0);
}

TEST_MAIN(test_sleep_zero, test_sleep_negative, test_sleep_nan, test_sleep_order,
          test_sleep_hour_virtual, test_sleep_inf, test_sleep_real_clock, test_sleep_outside_task)
