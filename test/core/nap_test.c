/*
 * Naps (weft_loop_opts.nap_ns): out of work, the loop sleeps for the nap off the backend's wait
 * queue, then takes what came in one poll; if the nap found nothing it sleeps in the poll as
 * usual, and it naps again only after a sleep in the poll shorter than a nap; after naps that
 * found a single event it sleeps in the poll for 1, 2, 4 ... idle moments (a back-off), until a
 * nap finds two or more. What must hold: timers are never late because of a nap (a timer due
 * within it ends the nap at its time; one due later is slept for what is left), I/O and
 * cross-thread calls that come during a nap are taken at its end, an idle loop naps once and then
 * sleeps (no wake-up per nap), naps back off while they batch nothing, out-of-range lengths are
 * refused. Real clock (a virtual clock never sleeps): lower bounds exact, upper bounds loose (a
 * loaded 2-core machine), far below what each defect would give.
 */
#define _GNU_SOURCE /* pipe2 */
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static int run_napping(weft_task_fn fn, int64_t nap)
{
    struct weft_loop_opts o = {.nap_ns = nap};
    return weft_run_opts(fn, NULL, &o);
}

/* ---- options ---- */

static void test_nap_range(void)
{
    weft_loop_t *l;
    struct weft_loop_opts o = {.nap_ns = -1};
    CHECK_EQ(weft_loop_new(&l, &o), -EINVAL);
    o.nap_ns = 1000000001LL;
    CHECK_EQ(weft_loop_new(&l, &o), -EINVAL);
    o.nap_ns = 1000000000LL;
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* ---- timers ---- */

static int sleeps_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) { /* every time the loop runs out of work */
        /* Due within the 200 ms nap: the nap ends when it is due. */
        int64_t t0 = test_mono_ns();
        CHECK_EQ(weft_sleep(0.05), 0);
        int64_t d = test_mono_ns() - t0;
        CHECK(d >= 50 * MS);
        CHECK(d < 180 * MS);
    }
    /* Due after it: a 200 ms nap, then a sleep for the 100 ms left (not 300 more). */
    int64_t t0 = test_mono_ns();
    CHECK_EQ(weft_sleep(0.3), 0);
    int64_t d = test_mono_ns() - t0;
    CHECK(d >= 300 * MS);
    CHECK(d < 480 * MS);
    return 0;
}

static void test_nap_timers_on_time(void)
{
    CHECK_EQ(run_napping(sleeps_main, 200 * MS), 0);
}

/* ---- I/O and cross-thread calls during a nap ---- */

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
    /* A byte written 20 ms into a 100 ms nap is taken when the nap ends: not before, not lost. */
    pthread_t th;
    int64_t t0 = test_mono_ns();
    CHECK_EQ(pthread_create(&th, NULL, write_later, NULL), 0);
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(5)), WEFT_READABLE);
    int64_t d = test_mono_ns() - t0;
    CHECK(d >= 100 * MS);
    CHECK(d < 600 * MS);
    pthread_join(th, NULL);
    CHECK_EQ(weft_close(pfd[0]), 0);
    CHECK_EQ(weft_close(pfd[1]), 0);
    return 0;
}

/* The same for a call from another thread (on a loop of its own: that nap found one event, so
 * the loop above sleeps in the poll at its next idle moment). */
static int calls_main(void *arg)
{
    (void)arg;
    pthread_t th;
    the_loop = weft_loop_current();
    CHECK_EQ(weft_future_new(&called), 0);
    int64_t t0 = test_mono_ns();
    CHECK_EQ(pthread_create(&th, NULL, call_later, NULL), 0);
    CHECK_EQ(weft_future_await_dl(called, weft_deadline_in(5)), 7);
    int64_t d = test_mono_ns() - t0;
    CHECK(d >= 100 * MS);
    CHECK(d < 600 * MS);
    pthread_join(th, NULL);
    weft_future_release(called);
    return 0;
}

static void test_nap_arrivals(void)
{
    CHECK_EQ(run_napping(arrivals_main, 100 * MS), 0);
    CHECK_EQ(run_napping(calls_main, 100 * MS), 0);
}

/* ---- an idle loop naps once ---- */

static long switches(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static int idle_main(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    /* 300 ms with nothing to do on a 50 us nap: one nap, then a sleep in the poll until the
     * deadline (a loop that napped again after each empty nap would sleep ~6,000 times). */
    long s0 = switches();
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(0.3)), -ETIMEDOUT);
    CHECK(switches() - s0 < 100);
    CHECK_EQ(weft_close(pfd[0]), 0);
    CHECK_EQ(weft_close(pfd[1]), 0);
    return 0;
}

static void test_nap_idle_sleeps(void)
{
    CHECK_EQ(run_napping(idle_main, 50000), 0);
}

/* ---- naps only while answers come within a nap ---- */

static int64_t wait_byte(void)
{
    pthread_t th;
    int64_t t0 = test_mono_ns();
    CHECK_EQ(pthread_create(&th, NULL, write_later, NULL), 0);
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(5)), WEFT_READABLE);
    int64_t d = test_mono_ns() - t0;
    pthread_join(th, NULL);
    char c;
    CHECK_EQ(read(pfd[0], &c, 1), 1);
    return d;
}

static int adapt_main(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    /* A long idle spell (a nap that found nothing, then 700 ms asleep in the poll): the next
     * time the loop runs out of work it sleeps in the poll at once, and a byte written 20 ms
     * later is taken when it comes, not at the end of a 300 ms nap. */
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(1.0)), -ETIMEDOUT);
    CHECK(wait_byte() < 250 * MS);
    /* That sleep was shorter than a nap: the loop naps again, and the next byte waits for the
     * nap's end. */
    CHECK(wait_byte() >= 300 * MS);
    CHECK_EQ(weft_close(pfd[0]), 0);
    CHECK_EQ(weft_close(pfd[1]), 0);
    return 0;
}

static void test_nap_adapts(void)
{
    CHECK_EQ(run_napping(adapt_main, 300 * MS), 0);
}

/* ---- naps that batch nothing back off ---- */

static int qfd[2];

static void *write_two_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * MS};
    nanosleep(&ts, NULL);
    CHECK_EQ(write(pfd[1], "x", 1), 1);
    CHECK_EQ(write(qfd[1], "y", 1), 1);
    return NULL;
}

static int wait_q(void *arg)
{
    (void)arg;
    return weft_wait_fd_dl(qfd[0], WEFT_READABLE, weft_deadline_in(5));
}

/* Like wait_byte(), with a byte on each of two pipes, written together: two events. */
static int64_t wait_two(void)
{
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, wait_q, NULL), 0);
    pthread_t th;
    int64_t t0 = test_mono_ns();
    CHECK_EQ(pthread_create(&th, NULL, write_two_later, NULL), 0);
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(5)), WEFT_READABLE);
    int64_t d = test_mono_ns() - t0;
    CHECK_EQ(weft_join(t), WEFT_READABLE);
    weft_task_release(t);
    pthread_join(th, NULL);
    char c;
    CHECK_EQ(read(pfd[0], &c, 1), 1);
    CHECK_EQ(read(qfd[0], &c, 1), 1);
    return d;
}

static int backoff_main(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(pipe2(qfd, O_NONBLOCK | O_CLOEXEC), 0);
    /* Out of the napping regime (a long idle spell), then back in (a byte within a nap). */
    CHECK_EQ(weft_wait_fd_dl(pfd[0], WEFT_READABLE, weft_deadline_in(1.0)), -ETIMEDOUT);
    CHECK(wait_byte() < 250 * MS);
    /* A nap that finds one event: the next idle moment sleeps in the poll instead. */
    CHECK(wait_byte() >= 300 * MS);
    CHECK(wait_byte() < 250 * MS);
    /* The next nap finds one event again: the back-off doubles (two idle moments). */
    CHECK(wait_byte() >= 300 * MS);
    CHECK(wait_byte() < 250 * MS);
    CHECK(wait_byte() < 250 * MS);
    /* A nap that finds two events ends the back-off: the loop naps at its next idle moment. */
    CHECK(wait_two() >= 300 * MS);
    CHECK(wait_byte() >= 300 * MS);
    CHECK_EQ(weft_close(pfd[0]), 0);
    CHECK_EQ(weft_close(pfd[1]), 0);
    CHECK_EQ(weft_close(qfd[0]), 0);
    CHECK_EQ(weft_close(qfd[1]), 0);
    return 0;
}

static void test_nap_backs_off(void)
{
    CHECK_EQ(run_napping(backoff_main, 300 * MS), 0);
}

/* A loop with naps lowers its thread's timer slack to a tenth of the nap while it lives (the
 * kernel would stretch each nap by the slack: 50 us by default) and gives it back when closed;
 * a loop without naps, or on a thread whose slack is already smaller, leaves it alone. */
static void test_nap_timer_slack(void)
{
    if (prctl(PR_SET_TIMERSLACK, 50000UL, 0, 0, 0) != 0)
        return; /* no timer slack here (an emulator): nothing to check */
    weft_loop_t *l;
    struct weft_loop_opts o = {.nap_ns = 50000};
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 5000);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000);
    o.nap_ns = 0;
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0), 0);
    o.nap_ns = 50000;
    CHECK_EQ(weft_loop_new(&l, &o), 0);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1000);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1000);
    CHECK_EQ(prctl(PR_SET_TIMERSLACK, 50000UL, 0, 0, 0), 0);
}

TEST_MAIN(test_nap_range, test_nap_timer_slack, test_nap_timers_on_time, test_nap_arrivals,
          test_nap_idle_sleeps, test_nap_adapts, test_nap_backs_off)
