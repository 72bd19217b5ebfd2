/*
 * wait_for with asyncio 3.12+ semantics, ported from CPython's test_waitfor.py (tasks only: weft
 * has no bare coroutines, so each coroutine of the original becomes a task). Virtual clock.
 */
#include <math.h>

#include "test.h"

#define MS 1000000LL

static int64_t now(void)
{
    return weft_time(NULL);
}

/* A task that sleeps 10 s; records whether it started and whether its cleanup ran. */
struct foo {
    bool started;
    bool running;
    bool cleaned;
    double cleanup; /* seconds its cleanup takes after a cancel */
    int on_cancel;  /* what it returns when cancelled (0 = pass the cancellation on) */
};

static int foo(void *arg)
{
    struct foo *f = arg;
    f->started = true;
    f->running = true;
    int r = weft_sleep(10);
    if (r == -ECANCELED && f->cleanup > 0)
        weft_sleep(f->cleanup); /* cleanup that itself suspends */
    f->running = false;
    f->cleaned = true;
    if (r == -ECANCELED && f->on_cancel != 0)
        return f->on_cancel;
    return r < 0 ? r : 7;
}

static int test_wait_for_main(void *arg)
{
    (void)arg;
    struct foo f = {0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, foo, &f), 0);
    int64_t t0 = now();
    CHECK_EQ(weft_wait_for(t, 0.1), -ETIMEDOUT);
    CHECK_EQ(now() - t0, 100 * MS);
    CHECK(weft_task_done(t));
    CHECK(weft_task_cancelled(t)); /* cancelled because of the timeout */
    CHECK(!f.running);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_task_release(t);
    /* Finishing in time gives the result. */
    CHECK_EQ(weft_spawn(&t, foo, &f), 0);
    CHECK_EQ(weft_wait_for(t, 11), 7);
    weft_task_release(t);
    return 0;
}

static void test_wait_for(void)
{
    CHECK_EQ(run_virtual(test_wait_for_main, NULL), 0);
}

static int done_value(void *arg)
{
    (void)arg;
    return 42;
}

static int test_wait_for_timeout_less_then_0_or_0_future_done_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, done_value, NULL), 0);
    CHECK_EQ(weft_join(t), 42);
    int64_t t0 = now();
    CHECK_EQ(weft_wait_for(t, 0), 42);
    CHECK_EQ(weft_wait_for(t, -1), 42);
    CHECK_EQ(now(), t0);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_timeout_less_then_0_or_0_future_done(void)
{
    CHECK_EQ(run_virtual(test_wait_for_timeout_less_then_0_or_0_future_done_main, NULL), 0);
}

static int test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started_main(void *arg)
{
    (void)arg;
    double timeouts[] = {0, -1};
    for (int i = 0; i < 2; i++) {
        struct foo f = {0};
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, foo, &f), 0);
        int64_t t0 = now();
        CHECK_EQ(weft_wait_for(t, timeouts[i]), -ETIMEDOUT);
        CHECK_EQ(now(), t0);
        CHECK(!f.started); /* never ran */
        CHECK(weft_task_cancelled(t));
        weft_task_release(t);
    }
    return 0;
}

static void test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started(void)
{
    CHECK_EQ(
        run_virtual(test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started_main, NULL), 0);
}

static int test_wait_for_timeout_less_then_0_or_0_main(void *arg)
{
    (void)arg;
    double timeouts[] = {0, -1};
    for (int i = 0; i < 2; i++) {
        struct foo f = {0};
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, foo, &f), 0);
        CHECK_EQ(weft_yield(), 0);
        CHECK(f.running);
        int64_t t0 = now();
        CHECK_EQ(weft_wait_for(t, timeouts[i]), -ETIMEDOUT);
        CHECK(weft_task_done(t));
        CHECK(weft_task_cancelled(t));
        CHECK(!f.running);
        CHECK_EQ(now(), t0);
        weft_task_release(t);
    }
    return 0;
}

static void test_wait_for_timeout_less_then_0_or_0(void)
{
    CHECK_EQ(run_virtual(test_wait_for_timeout_less_then_0_or_0_main, NULL), 0);
}

static int test_wait_for_blocking_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, done_value, NULL), 0);
    CHECK_EQ(weft_wait_for(t, INFINITY), 42); /* timeout=None */
    weft_task_release(t);
    return 0;
}

static void test_wait_for_blocking(void)
{
    CHECK_EQ(run_virtual(test_wait_for_blocking_main, NULL), 0);
}

static int await_future(void *arg)
{
    return weft_future_await(arg);
}

static void set_ok(void *arg)
{
    weft_future_set_result(arg, 5);
}

static int test_wait_for_race_condition_main(void *arg)
{
    (void)arg;
    weft_future_t *fut;
    CHECK_EQ(weft_future_new(&fut), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, await_future, fut), 0);
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.1, set_ok, fut), 0);
    CHECK_EQ(weft_wait_for(t, 0.2), 5);
    CHECK_EQ(now(), 100 * MS);
    weft_task_release(t);
    weft_future_release(fut);
    return 0;
}

static void test_wait_for_race_condition(void)
{
    CHECK_EQ(run_virtual(test_wait_for_race_condition_main, NULL), 0);
}

static int swallow_then_one(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(1), -ECANCELED);
    return 1;
}

static int test_wait_for_cancellation_race_condition_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, swallow_then_one, NULL), 0);
    CHECK_EQ(weft_wait_for(t, 0.01), 1);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_cancellation_race_condition(void)
{
    CHECK_EQ(run_virtual(test_wait_for_cancellation_race_condition_main, NULL), 0);
}

static int test_wait_for_waits_for_task_cancellation_main(void *arg)
{
    (void)arg;
    struct foo f = {.cleanup = 0.5};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, foo, &f), 0);
    int64_t t0 = now();
    CHECK_EQ(weft_wait_for(t, 0.0001), -ETIMEDOUT);
    CHECK(f.cleaned); /* the timeout is reported only after the cleanup finished */
    CHECK_EQ(now() - t0, 100000 + 500 * MS);
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    return 0;
}

static void test_wait_for_waits_for_task_cancellation(void)
{
    CHECK_EQ(run_virtual(test_wait_for_waits_for_task_cancellation_main, NULL), 0);
}

static int test_wait_for_waits_for_task_cancellation_w_timeout_0_main(void *arg)
{
    (void)arg;
    struct foo f = {.cleanup = 0.0001};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, foo, &f), 0);
    CHECK_EQ(weft_sleep(0.0001), 0);
    CHECK_EQ(weft_wait_for(t, 0), -ETIMEDOUT);
    CHECK(f.cleaned);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_waits_for_task_cancellation_w_timeout_0(void)
{
    CHECK_EQ(run_virtual(test_wait_for_waits_for_task_cancellation_w_timeout_0_main, NULL), 0);
}

static int test_wait_for_reraises_exception_during_cancellation_main(void *arg)
{
    (void)arg;
    struct foo f = {.on_cancel = -EBADMSG};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, foo, &f), 0);
    CHECK_EQ(weft_wait_for(t, 0.0001), -EBADMSG);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_reraises_exception_during_cancellation(void)
{
    CHECK_EQ(run_virtual(test_wait_for_reraises_exception_during_cancellation_main, NULL), 0);
}

static int stubborn(void *arg)
{
    (void)arg;
    if (weft_sleep(0.3) == -ECANCELED) {
        if (weft_sleep(0.3) == -ECANCELED)
            weft_sleep(0.3);
    }
    return 42;
}

static int wait_for_it(void *arg)
{
    return weft_wait_for(arg, 0.1);
}

static int test_wait_for_self_cancellation_main(void *arg)
{
    (void)arg;
    weft_task_t *inner, *w;
    CHECK_EQ(weft_spawn(&inner, stubborn, NULL), 0);
    CHECK_EQ(weft_spawn(&w, wait_for_it, inner), 0);
    weft_task_cancel(w, NULL);
    CHECK_EQ(weft_join(w), -ECANCELED);
    CHECK_EQ(weft_join(inner), 42);
    weft_task_release(inner);
    weft_task_release(w);
    return 0;
}

static void test_wait_for_self_cancellation(void)
{
    CHECK_EQ(run_virtual(test_wait_for_self_cancellation_main, NULL), 0);
}

static int block_forever(void *arg)
{
    (void)arg;
    weft_future_t *fut;
    CHECK_EQ(weft_future_new(&fut), 0);
    int r = weft_future_await(fut);
    weft_future_release(fut);
    return r;
}

struct wf {
    weft_task_t *task;
    double timeout;
};

static int wait_for_task(void *arg)
{
    struct wf *w = arg;
    return weft_wait_for(w->task, w->timeout);
}

static void cancel_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
}

static int test_cancel_wait_for_main(void *arg)
{
    double timeouts[] = {INFINITY, 60.0}; /* test_cancel_blocking_wait_for, test_cancel_wait_for */
    (void)arg;
    for (int i = 0; i < 2; i++) {
        struct wf w = {.timeout = timeouts[i]};
        CHECK_EQ(weft_spawn(&w.task, block_forever, NULL), 0);
        weft_task_t *waiter;
        CHECK_EQ(weft_spawn(&waiter, wait_for_task, &w), 0);
        CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, waiter), 0);
        CHECK_EQ(weft_join(waiter), -ECANCELED);
        CHECK(weft_task_cancelled(w.task)); /* bpo-23219: the inner task is cancelled too */
        weft_task_release(waiter);
        weft_task_release(w.task);
    }
    return 0;
}

static void test_cancel_wait_for(void)
{
    CHECK_EQ(run_virtual(test_cancel_wait_for_main, NULL), 0);
}

static int return_42(void *arg)
{
    (void)arg;
    if (weft_sleep(10) == -ECANCELED)
        return 42;
    return 0;
}

static int test_wait_for_cancel_suppressed_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, return_42, NULL), 0);
    CHECK_EQ(weft_wait_for(t, 0.1), 42);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_cancel_suppressed(void)
{
    CHECK_EQ(run_virtual(test_wait_for_cancel_suppressed_main, NULL), 0);
}

static bool reached_end;

static int quick(void *arg)
{
    (void)arg;
    return 0;
}

static int wait_for_coro(void *arg)
{
    weft_task_t *inner = arg;
    int r = weft_wait_for(inner, 100);
    if (r < 0)
        return r;
    r = weft_sleep(1);
    if (r < 0)
        return r;
    reached_end = true;
    return 0;
}

static int test_wait_for_issue86296_main(void *arg)
{
    (void)arg;
    weft_task_t *inner, *t;
    CHECK_EQ(weft_spawn(&inner, quick, NULL), 0);
    CHECK_EQ(weft_spawn(&t, wait_for_coro, inner), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_task_done(t));
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_done(inner));
    CHECK_EQ(weft_join(inner), 0);
    CHECK(!reached_end);
    weft_task_release(inner);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_issue86296(void)
{
    CHECK_EQ(run_virtual(test_wait_for_issue86296_main, NULL), 0);
}

static int sleep_done(void *arg)
{
    (void)arg;
    int r = weft_sleep(0.2);
    return r < 0 ? r : 9;
}

static int test_shielded_timeout_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, sleep_done, NULL), 0);
    /* wait_for(shield(t), 0.1) is a scope around the shielded wait. */
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_shield(t)), -ETIMEDOUT);
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_join(t), 9);
    CHECK_EQ(now(), 200 * MS);
    weft_task_release(t);
    return 0;
}

static void test_shielded_timeout(void)
{
    CHECK_EQ(run_virtual(test_shielded_timeout_main, NULL), 0);
}

static int test_wait_for_errors_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_wait_for(NULL, 1), -EINVAL);
    CHECK_EQ(weft_wait_for(weft_current_task(), 1), -EDEADLK);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, quick, NULL), 0);
    CHECK_EQ(weft_wait_for(t, NAN), -EINVAL);
    CHECK_EQ(weft_wait_for_at(t, now() + 5 * MS), 0);
    weft_task_release(t);
    return 0;
}

static void test_wait_for_errors(void)
{
    weft_task_t *none = NULL;
    CHECK_EQ(weft_wait_for(none, 1), -EINVAL);
    CHECK_EQ(run_virtual(test_wait_for_errors_main, NULL), 0);
}

TEST_MAIN(test_wait_for, test_wait_for_timeout_less_then_0_or_0_future_done,
          test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started,
          test_wait_for_timeout_less_then_0_or_0, test_wait_for_blocking,
          test_wait_for_race_condition, test_wait_for_cancellation_race_condition,
          test_wait_for_waits_for_task_cancellation,
          test_wait_for_waits_for_task_cancellation_w_timeout_0,
          test_wait_for_reraises_exception_during_cancellation, test_wait_for_self_cancellation,
          test_cancel_wait_for, test_wait_for_cancel_suppressed, test_wait_for_issue86296,
          test_shielded_timeout, test_wait_for_errors)
