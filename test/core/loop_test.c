/*
 * The event loop: FIFO ready queue, one batch per iteration, the clock as the present,
 * stop (finish the iteration; stop before run = one iteration), loop life cycle and errors.
 */
#include "test.h"

#include <time.h>
#include <unistd.h>

static int log_[64];
static int nlog;

static void push(void *arg)
{
    log_[nlog++] = (int)(long)arg;
}

/* ---- ready queue ---- */

static weft_loop_t *cur;

static void push_then_queue(void *arg)
{
    push(arg);
    /* Made ready by a callback of this batch: runs in the next iteration, after the batch. */
    weft_call_soon(cur, push, (void *)(100 + (long)arg));
}

static void test_call_soon_fifo(void)
{
    weft_loop_t *l;
    nlog = 0;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    cur = l;
    for (long i = 0; i < 5; i++)
        CHECK_EQ(weft_call_soon(l, push_then_queue, (void *)i), 0);
    CHECK_EQ(nlog, 0); /* never inline */
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0);
    /* Stop before run: exactly one iteration, i.e. exactly the five queued callbacks. */
    CHECK_EQ(nlog, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(log_[i], i);
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(nlog, 10);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(log_[5 + i], 100 + i);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK(weft_loop_current() == NULL);
}

/* Tasks and callbacks share the one FIFO queue. */
static int task_push(void *arg)
{
    push(arg);
    return 0;
}

static int mixed_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    weft_task_t *t1, *t2;
    nlog = 0;
    CHECK_EQ(weft_call_soon(l, push, (void *)1), 0);
    CHECK_EQ(weft_spawn(&t1, task_push, (void *)2), 0);
    CHECK_EQ(weft_call_soon(l, push, (void *)3), 0);
    CHECK_EQ(weft_spawn(&t2, task_push, (void *)4), 0);
    CHECK_EQ(weft_call_soon(l, push, (void *)5), 0);
    CHECK_EQ(weft_yield(), 0); /* one trip: everything queued before it runs first */
    CHECK_EQ(nlog, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(log_[i], i + 1);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_tasks_and_callbacks_fifo(void)
{
    CHECK_EQ(weft_run(mixed_main, NULL), 0);
}

/* ---- stop ---- */

static void stopper(void *arg)
{
    push(arg);
    weft_loop_stop(cur);
    weft_call_soon(cur, push, (void *)99); /* next iteration: must not run */
}

static void test_stop_finishes_iteration(void)
{
    weft_loop_t *l;
    nlog = 0;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    cur = l;
    CHECK_EQ(weft_call_soon(l, push, (void *)1), 0);
    CHECK_EQ(weft_call_soon(l, stopper, (void *)2), 0);
    CHECK_EQ(weft_call_soon(l, push, (void *)3), 0); /* same batch as the stop: still runs */
    CHECK(!weft_loop_is_running(l));
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK(!weft_loop_is_running(l));
    CHECK_EQ(nlog, 3);
    CHECK_EQ(log_[0], 1);
    CHECK_EQ(log_[1], 2);
    CHECK_EQ(log_[2], 3);
    /* The callback queued after the stop runs on the next run. */
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(nlog, 4);
    CHECK_EQ(log_[3], 99);
    /* Closing drops what is still queued without running it (no leak under valgrind/ASan). */
    CHECK_EQ(weft_call_soon(l, push, (void *)7), 0);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(nlog, 4);
}

/* Tasks that suspend when the batch is used up start the next iteration themselves (the poll
 * included) and may never hand the loop's own context a turn: a stop must still end the run. */
static int ticks;

static int ticker(void *arg)
{
    (void)arg;
    while (weft_sleep(0.001) == 0)
        ticks++;
    return 0;
}

static int stop_at(void *arg)
{
    CHECK_EQ(weft_sleep_until((int64_t)(long)arg), 0);
    weft_loop_stop(cur);
    /* Suspend (not finish) after the stop: the run ends before this sleep does. */
    return weft_sleep(0.0005);
}

static void test_stop_while_tasks_iterate(void)
{
    weft_loop_t *l;
    const struct weft_loop_opts o = {.virtual_clock = true};
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    cur = l;
    ticks = 0;
    weft_task_t *a, *b, *s;
    CHECK_EQ(weft_spawn(&a, ticker, NULL), 0);
    CHECK_EQ(weft_spawn(&b, ticker, NULL), 0);
    CHECK_EQ(weft_spawn(&s, stop_at, (void *)10500000L), 0);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(weft_time(l), 10500000);
    CHECK_EQ(ticks, 20);
    CHECK(!weft_task_done(s) && !weft_task_done(a) && !weft_task_done(b));
    /* The next run goes on where this one stopped. */
    weft_task_t *s2;
    CHECK_EQ(weft_spawn(&s2, stop_at, (void *)12500000L), 0);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(weft_time(l), 12500000);
    CHECK_EQ(ticks, 24);
    CHECK(weft_task_done(s) && weft_task_result(s) == 0);
    weft_task_release(s);
    CHECK(weft_task_cancel(s2, NULL));
    weft_task_release(s2);
    CHECK(weft_task_cancel(a, NULL));
    CHECK(weft_task_cancel(b, NULL));
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0); /* one iteration: both see their cancel */
    CHECK(weft_task_done(a) && weft_task_done(b));
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* Stop before run with nothing queued: one iteration with a zero poll timeout, no blocking. */
static void test_stop_before_run_empty(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0); /* would hang forever if it polled with no timeout */
    CHECK_EQ(weft_loop_close(l), 0);
}

/* ---- life cycle errors ---- */

static weft_loop_t *outer;
static int nested_result = 1;
static int close_result = 1;

static void try_nested(void *arg)
{
    (void)arg;
    CHECK(weft_loop_is_running(outer));
    CHECK(weft_loop_current() == outer);
    nested_result = weft_loop_run(outer);
    close_result = weft_loop_close(outer);
    weft_loop_stop(outer);
}

static void test_loop_errors(void)
{
    weft_loop_t *l, *l2;
    CHECK_EQ(weft_loop_new(NULL, NULL), -EINVAL);
    CHECK_EQ(weft_loop_new(&l, &(struct weft_loop_opts){.stack_size = 1024}), -EINVAL);
    CHECK(l == NULL);
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK(weft_loop_current() == l);
    CHECK_EQ(weft_loop_new(&l2, NULL), -EBUSY); /* one loop per thread */
    CHECK(l2 == NULL);
    outer = l;
    CHECK_EQ(weft_call_soon(l, try_nested, NULL), 0);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(nested_result, -EBUSY);
    CHECK_EQ(close_result, -EBUSY);
    CHECK_EQ(weft_call_soon(l, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_call_soon(NULL, push, NULL), -EINVAL);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(weft_loop_close(NULL), -EINVAL);
    CHECK_EQ(weft_loop_run(NULL), -EINVAL);
    /* A new loop can be made once the old one is closed. */
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* ---- the clock ---- */

static int clock_main(void *arg)
{
    (void)arg;
    int64_t a = weft_time(NULL);
    /* Spin until the real clock has clearly moved: the loop's clock is the present, like
     * asyncio's loop.time(), not a reading cached for the iteration. */
    int64_t r0 = test_mono_ns();
    while (test_mono_ns() - r0 < 2000000) {
    }
    int64_t b = weft_time(NULL);
    CHECK(b >= a + 2000000);
    CHECK(weft_time(weft_loop_current()) >= b);
    /* It is CLOCK_MONOTONIC. */
    int64_t c = weft_time(NULL);
    CHECK(c <= test_mono_ns());
    CHECK(c > test_mono_ns() - 1000000000);
    return 0;
}

static void test_time_is_present(void)
{
    CHECK_EQ(weft_run(clock_main, NULL), 0);
    /* Without a loop: the raw monotonic clock. */
    int64_t r = test_mono_ns();
    int64_t t = weft_time(NULL);
    CHECK(t >= r && t < r + 1000000000);
}

static int vclock_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_time(NULL), 0); /* virtual time starts at 0 */
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_time(NULL), 0); /* and only moves when the loop is idle */
    CHECK_EQ(weft_sleep(3600.0), 0);
    CHECK_EQ(weft_time(NULL), 3600LL * 1000000000);
    CHECK_EQ(weft_sleep_until(3600LL * 1000000000 + 7), 0);
    CHECK_EQ(weft_time(NULL), 3600LL * 1000000000 + 7);
    CHECK_EQ(weft_deadline_in(1.5), 3600LL * 1000000000 + 7 + 1500000000);
    CHECK_EQ(weft_deadline_in(1.0 / 0.0), WEFT_NO_DEADLINE);
    return 0;
}

/* A one-hour sleep on the virtual clock finishes at once and moves time by exactly an hour. */
static void test_virtual_clock_hour(void)
{
    int64_t r0 = test_mono_ns();
    CHECK_EQ(run_virtual(vclock_main, NULL), 0);
    CHECK(test_mono_ns() - r0 < 5000000000LL);
}

static void test_seconds_to_ns(void)
{
    CHECK_EQ(weft_seconds_to_ns(1.5), 1500000000);
    CHECK_EQ(weft_seconds_to_ns(0), 0);
    CHECK_EQ(weft_seconds_to_ns(-3), 0);
    CHECK_EQ(weft_seconds_to_ns(0.0 / 0.0), -EINVAL);
    CHECK_EQ(weft_seconds_to_ns(1.0 / 0.0), INT64_MAX);
    CHECK_EQ(weft_deadline_in(0.0 / 0.0), WEFT_NO_DEADLINE);
}

/* ---- busy loops still poll I/O ---- */

static int spin_stop;
static int spin_iters;

static int spinner(void *arg)
{
    (void)arg;
    while (!spin_stop) {
        spin_iters++;
        if (weft_yield() < 0)
            return -1;
    }
    return 0;
}

static int busy_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    weft_task_t *s;
    CHECK_EQ(weft_spawn(&s, spinner, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    int64_t w = test_mono_ns();
    /* The ready queue never drains (the spinner yields), yet the fd event must be seen: at the
     * first iteration 50 us after the last poll (a loaded machine may stall us much longer). */
    int r = weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(10.0));
    CHECK_EQ(r, WEFT_READABLE);
    CHECK(test_mono_ns() - w < 2000000000LL);
    spin_stop = 1;
    CHECK_EQ(weft_join(s), 0);
    weft_task_release(s);
    CHECK(spin_iters > 0);
    weft_close(p[0]);
    weft_close(p[1]);
    return 0;
}

static void test_busy_loop_polls_io(void)
{
    CHECK_EQ(weft_run(busy_main, NULL), 0);
}

/* ---- the error handler ---- */

static int handled;
static int handled_err;
static char handled_msg[128];

static void on_error(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    CHECK_EQ((long)arg, 42);
    handled++;
    handled_err = info->error;
    snprintf(handled_msg, sizeof(handled_msg), "%s", info->message);
}

static void test_error_handler(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    weft_loop_set_error_handler(l, on_error, (void *)42L);
    struct weft_error_info info = {"custom", -EIO, NULL};
    weft_loop_report(l, &info);
    CHECK_EQ(handled, 1);
    CHECK_EQ(handled_err, -EIO);
    CHECK_STR(handled_msg, "custom");
    weft_loop_set_error_handler(l, NULL, NULL); /* back to the default: prints to stderr */
    weft_loop_report(l, &info);
    CHECK_EQ(handled, 1);
    CHECK_EQ(weft_loop_close(l), 0);
}

TEST_MAIN(test_call_soon_fifo, test_tasks_and_callbacks_fifo, test_stop_finishes_iteration,
          test_stop_while_tasks_iterate, test_stop_before_run_empty, test_loop_errors, test_time_is_present,
          test_virtual_clock_hour, test_seconds_to_ns, test_busy_loop_polls_io, test_error_handler)
