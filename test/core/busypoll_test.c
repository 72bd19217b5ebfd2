/*
 * Busy polling (weft_loop_opts.busy_poll_ns): the loop looks for I/O without sleeping for up to
 * the window before it sleeps. What must hold: timers are never late by the window (a timer due
 * within it ends the look at its time; one due later is slept for what is left), I/O and
 * cross-thread calls that come during the window are taken at once, out-of-range windows are
 * refused. Real clock (a virtual clock never sleeps): lower bounds exact, upper bounds loose
 * (a loaded 2-core machine), far below what each defect would give.
 */
#define _GNU_SOURCE /* pipe2 */
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static int64_t raw_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int run_busy(weft_task_fn fn, int64_t window)
{
    struct weft_loop_opts o = {.busy_poll_ns = window};
    return weft_run_opts(fn, NULL, &o);
}

/* ---- options ---- */

static void test_busy_poll_range(void)
{
    weft_loop_t *l;
    struct weft_loop_opts o = {.busy_poll_ns = -1};
    CHECK_EQ(weft_loop_new(&l, &o), -EINVAL);
    o.busy_poll_ns = 1000000001LL;
    CHECK_EQ(weft_loop_new(&l, &o), -EINVAL);
    o.busy_poll_ns = 1000000000LL;
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* ---- timers ---- */

static int sleeps_main(void *arg)
{
    (void)arg;
    /* Due within the 200 ms window: the look ends when it is due, not at the window's end. */
    int64_t t0 = raw_ns();
    CHECK_EQ(weft_sleep(0.05), 0);
    int64_t d = raw_ns() - t0;
    CHECK(d >= 50 * MS);
    CHECK(d < 180 * MS);
    /* Due after it: 200 ms of looking, then a sleep for the 100 ms left (not 300 more). */
    t0 = raw_ns();
    CHECK_EQ(weft_sleep(0.3), 0);
    d = raw_ns() - t0;
    CHECK(d >= 300 * MS);
    CHECK(d < 480 * MS);
    return 0;
}

static void test_busy_poll_timers_on_time(void)
{
    CHECK_EQ(run_busy(sleeps_main, 200 * MS), 0);
}

/* ---- I/O and cross-thread calls during the window ---- */

static int pfd[2];
static weft_loop_t *the_loop;
static weft_future_t *called;

static void *write_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * MS};
    nanosleep(&ts, NULL);
    CHECK_EQ(write(pfd[1], "x", 1), 1);
    return NULL;
}

static void on_call(void *arg)
{
    (void)arg;
    weft_future_set_result(called, 7);
}

static void *call_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * MS};
    nanosleep(&ts, NULL);
    CHECK_EQ(weft_call_soon_threadsafe(the_loop, on_call, NULL), 0);
    return NULL;
}

static int arrivals_main(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    /* The loop looks for 1 s before sleeping; what comes meanwhile ends the look at once. */
    pthread_t th;
    int64_t t0 = raw_ns();
    CHECK_EQ(pthread_create(&th, NULL, write_later, NULL), 0);
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(5)), WEFT_READABLE);
    CHECK(raw_ns() - t0 < 600 * MS);
    pthread_join(th, NULL);

    the_loop = weft_loop_current();
    CHECK_EQ(weft_future_new(&called), 0);
    t0 = raw_ns();
    CHECK_EQ(pthread_create(&th, NULL, call_later, NULL), 0);
    CHECK_EQ(weft_future_await_dl(called, weft_deadline_in(5)), 7);
    CHECK(raw_ns() - t0 < 600 * MS);
    pthread_join(th, NULL);
    weft_future_release(called);
    CHECK_EQ(weft_close(pfd[0]), 0);
    CHECK_EQ(weft_close(pfd[1]), 0);
    return 0;
}

static void test_busy_poll_arrivals(void)
{
    CHECK_EQ(run_busy(arrivals_main, 1000 * MS), 0);
}

TEST_MAIN(test_busy_poll_range, test_busy_poll_timers_on_time, test_busy_poll_arrivals)
