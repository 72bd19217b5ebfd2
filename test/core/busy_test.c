/*
 * The loop under load (issue 13): relative delays count from the present, whatever ran before
 * them in the same iteration, and while tasks keep the loop busy, due timers fire and I/O is seen
 * within one iteration, however long or short the steps. The virtual-clock cases make steps
 * "take" time with weft_clock_advance() and check exact times; the real-clock cases check lower
 * bounds (never early) and loose upper bounds (far below the defects' delays).
 */
#include "test.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define S  1000000000LL

/* Compute for `ns` of real time without suspending. */
static void spin(int64_t ns)
{
    int64_t end = test_mono_ns() + ns;
    while (test_mono_ns() < end) {
    }
}

/* ---- defect 1: delays count from the present ---- */

static int64_t slept_from, slept_to;

static int long_step(void *arg)
{
    CHECK_EQ(weft_clock_advance(NULL, (int64_t)(long)arg), 0);
    return 0;
}

static int sleeper_v(void *arg)
{
    (void)arg;
    slept_from = weft_time(NULL);
    CHECK_EQ(weft_sleep(1.0), 0);
    slept_to = weft_time(NULL);
    return 0;
}

static int64_t later_at;

static void note_time(void *arg)
{
    *(int64_t *)arg = weft_time(NULL);
}

static int delays_virtual_main(void *arg)
{
    (void)arg;
    /* One task computes 500 ms; the next one in the same iteration asks for a 1 s sleep. */
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, long_step, (void *)(long)(500 * MS)), 0);
    CHECK_EQ(weft_spawn(&b, sleeper_v, NULL), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_join(a), 0);
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(slept_from, 500 * MS);
    CHECK_EQ(slept_to - slept_from, 1 * S);

    /* The same inside one step: deadline_in, call_later and a timeout scope after a long step. */
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_clock_advance(NULL, 300 * MS), 0);
    CHECK_EQ(weft_time(NULL), t0 + 300 * MS);
    CHECK_EQ(weft_deadline_in(1.0), t0 + 1300 * MS);
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.25, note_time, &later_at), 0);
    weft_timeout_t to = {{0}};
    CHECK_EQ(weft_timeout_enter(&to, 1.0), 0);
    CHECK_EQ(weft_timeout_when(&to), t0 + 1300 * MS);
    int r = weft_timeout_exit(&to, weft_sleep(10.0));
    CHECK_EQ(r, -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), t0 + 1300 * MS);
    CHECK_EQ(later_at, t0 + 550 * MS);
    return 0;
}

/* A 1 s sleep or timeout asked after a long step lasts 1 s of virtual time, never less. */
static void test_delay_after_long_step_virtual(void)
{
    CHECK_EQ(run_virtual(delays_virtual_main, NULL), 0);
}

static int64_t real_from, real_to;

static int spin_step(void *arg)
{
    (void)weft_time(NULL); /* the case: read the time, then compute */
    spin((int64_t)(long)arg);
    return 0;
}

static int sleeper_r(void *arg)
{
    (void)arg;
    real_from = test_mono_ns();
    CHECK_EQ(weft_sleep(0.4), 0);
    real_to = test_mono_ns();
    return 0;
}

static int timeout_body(void *arg)
{
    (void)arg;
    return weft_sleep(10.0);
}

static int delays_real_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, spin_step, (void *)(long)(300 * MS)), 0);
    CHECK_EQ(weft_spawn(&b, sleeper_r, NULL), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_join(a), 0);
    weft_task_release(a);
    weft_task_release(b);
    CHECK(real_to - real_from >= 400 * MS);

    /* A timeout scope entered after a long step in the same iteration. */
    CHECK_EQ(weft_spawn(&a, spin_step, (void *)(long)(300 * MS)), 0);
    CHECK_EQ(weft_yield(), 0); /* runs a: the clock's last reading is now 300 ms old */
    weft_task_release(a);
    spin(100 * MS);
    int64_t t0 = test_mono_ns();
    CHECK_EQ(weft_timeout_call(0.3, timeout_body, NULL), -ETIMEDOUT);
    CHECK(test_mono_ns() - t0 >= 300 * MS);
    return 0;
}

/* The same on the real clock: lower bounds only (a loaded machine may be late, never early). */
static void test_delay_after_long_step_real(void)
{
    CHECK_EQ(weft_run(delays_real_main, NULL), 0);
}

/* ---- defect 2: timers and I/O while tasks keep the loop busy ---- */

static volatile int busy_stop;
static int64_t step_ns; /* how long each busy step takes */
static int busy_steps;
static int write_fd = -1;
static int64_t write_at; /* loop time at which a busy task writes the line; 0: no line */
static int64_t written_at = -1;
static bool virt;

static void take_time(int64_t ns)
{
    if (virt)
        CHECK_EQ(weft_clock_advance(NULL, ns), 0);
    else
        spin(ns);
}

/* Computes step_ns, yields, again, until told to stop; writes the line when its time comes. */
static int busy(void *arg)
{
    (void)arg;
    while (!busy_stop) {
        take_time(step_ns);
        busy_steps++;
        if (write_at > 0 && written_at < 0 && weft_time(NULL) >= write_at) {
            CHECK_EQ(write(write_fd, "hello\n", 6), 6);
            written_at = weft_time(NULL);
        }
        int r = weft_yield();
        if (r < 0)
            return r;
    }
    return 0;
}

struct reading {
    weft_stream_t *s;
    int64_t deadline;
    int result;
    int64_t at;
};

static int reader(void *arg)
{
    struct reading *rd = arg;
    const char *line;
    size_t len;
    rd->result = weft_stream_readline_dl(rd->s, &line, &len, rd->deadline);
    rd->at = weft_time(NULL);
    if (rd->result == 0)
        CHECK(len == 6 && memcmp(line, "hello\n", 6) == 0);
    busy_stop = 1;
    return 0;
}

static int64_t fired_at;

static int timer_busy_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_time(NULL);
    fired_at = -1;
    busy_stop = 0;
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, busy, NULL), 0);
    CHECK_EQ(weft_spawn(&b, busy, NULL), 0);
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.2, note_time, &fired_at), 0);
    /* Never reads the clock itself (that would refresh the loop's reading): at most 200
     * iterations of 40 ms. */
    for (int i = 0; fired_at < 0 && i < 200; i++)
        CHECK_EQ(weft_yield(), 0);
    busy_stop = 1;
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(a);
    weft_task_release(b);
    CHECK(fired_at >= t0 + 200 * MS); /* never early */
    /* Due at the first iteration whose start is past 200 ms, and run in it (behind the two busy
     * tasks and this one): one iteration is three steps of 20 ms. */
    if (virt)
        CHECK(fired_at <= t0 + 200 * MS + 3 * step_ns);
    else
        CHECK(fired_at <= t0 + 1 * S); /* was 2.6 s: every 128 steps */
    return 0;
}

/* Two tasks computing 20 ms per step: call_later(0.2) fires within one iteration of 0.2 s. */
static void test_timer_fires_while_busy_virtual(void)
{
    virt = true;
    step_ns = 20 * MS;
    CHECK_EQ(run_virtual(timer_busy_main, NULL), 0);
}

static void test_timer_fires_while_busy_real(void)
{
    virt = false;
    step_ns = 20 * MS;
    CHECK_EQ(weft_run(timer_busy_main, NULL), 0);
}

static int io_busy_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct reading rd = {0};
    CHECK_EQ(weft_stream_new(&rd.s, sv[0], NULL), 0);
    int64_t t0 = weft_time(NULL);
    rd.deadline = t0 + 1 * S;
    write_fd = sv[1];
    write_at = t0 + 200 * MS;
    written_at = -1;
    busy_stop = 0;
    busy_steps = 0;
    weft_task_t *r, *a, *b;
    CHECK_EQ(weft_spawn(&r, reader, &rd), 0);
    CHECK_EQ(weft_yield(), 0); /* the reader waits for its line */
    CHECK_EQ(weft_spawn(&a, busy, NULL), 0);
    CHECK_EQ(weft_spawn(&b, busy, NULL), 0);
    CHECK_EQ(weft_join(r), 0);
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(r);
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(rd.result, 0); /* read before its 1 s deadline: it was a timeout */
    CHECK(written_at >= write_at);
    /* Seen at the next iteration's start (the writer's step ends the batch's first half, the
     * other busy task's step follows), then read in the iteration after: within 3 steps. */
    if (virt)
        CHECK(rd.at <= written_at + 3 * step_ns);
    else
        CHECK(rd.at < rd.deadline);
    weft_stream_close(rd.s);
    weft_stream_release(rd.s);
    weft_close(sv[1]);
    write_at = 0;
    return 0;
}

/* The case: a line sent at 0.2 s while two tasks compute 20 ms per step is read at
 * about 0.24 s, not lost to a 1 s timeout. */
static void test_io_seen_while_busy_virtual(void)
{
    virt = true;
    step_ns = 20 * MS;
    CHECK_EQ(run_virtual(io_busy_main, NULL), 0);
}

static void test_io_seen_while_busy_real(void)
{
    virt = false;
    step_ns = 20 * MS;
    CHECK_EQ(weft_run(io_busy_main, NULL), 0);
}

/* Short steps (1 ms, 100 us): readiness is seen within the poll interval, not 128 steps. */
static void test_io_seen_short_steps_virtual(void)
{
    virt = true;
    step_ns = 1 * MS;
    CHECK_EQ(run_virtual(io_busy_main, NULL), 0);
    step_ns = 100000;
    CHECK_EQ(run_virtual(io_busy_main, NULL), 0);
}

/* ---- one long step at a time ---- */

static int64_t seen_at;

static int waiter_fd(void *arg)
{
    int fd = (int)(long)arg;
    CHECK_EQ(weft_wait_fd(fd, WEFT_READABLE), WEFT_READABLE);
    seen_at = weft_time(NULL);
    return 0;
}

static int long_steps_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    seen_at = -1;
    int64_t t0 = weft_time(NULL);
    int64_t timer_at = -1;
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.1, note_time, &timer_at), 0);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, waiter_fd, (void *)(long)p[0]), 0);
    CHECK_EQ(weft_yield(), 0);
    /* This task is CPU-bound and yields once per 500 ms step: the iteration after the step
     * sees the readiness and fires the timer (both queued behind this task). */
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(weft_clock_advance(NULL, 500 * MS), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0); /* a short step: let the waiter and the timer run */
    CHECK_EQ(seen_at, t0 + 500 * MS);
    CHECK_EQ(timer_at, t0 + 500 * MS);
    /* Again, with a timer armed after the long step began. */
    timer_at = -1;
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.1, note_time, &timer_at), 0);
    CHECK_EQ(weft_clock_advance(NULL, 500 * MS), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(timer_at, t0 + 1000 * MS);
    CHECK_EQ(weft_join(w), 0);
    weft_task_release(w);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void test_long_steps_service_timers_and_io(void)
{
    virt = true;
    CHECK_EQ(run_virtual(long_steps_main, NULL), 0);
}

/* ---- the test hook ---- */

static int advance_real_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_clock_advance(NULL, 1), -EINVAL); /* real clocks cannot be moved */
    return 0;
}

static int advance_virtual_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_clock_advance(NULL, -1), -EINVAL);
    CHECK_EQ(weft_clock_advance(NULL, 0), 0);
    CHECK_EQ(weft_time(NULL), 0);
    CHECK_EQ(weft_clock_advance(weft_loop_current(), 7), 0);
    CHECK_EQ(weft_time(NULL), 7);
    return 0;
}

static void test_clock_advance_rules(void)
{
    CHECK_EQ(weft_clock_advance(NULL, 1), -EINVAL); /* no loop */
    CHECK_EQ(weft_run(advance_real_main, NULL), 0);
    CHECK_EQ(run_virtual(advance_virtual_main, NULL), 0);
}

TEST_MAIN(test_delay_after_long_step_virtual, test_delay_after_long_step_real,
          test_timer_fires_while_busy_virtual, test_timer_fires_while_busy_real,
          test_io_seen_while_busy_virtual, test_io_seen_while_busy_real,
          test_io_seen_short_steps_virtual, test_long_steps_service_timers_and_io,
          test_clock_advance_rules)
