/*
 * TaskGroup (weft_group_*), ported from CPython 3.13's test_taskgroups.py. Exceptions map to
 * errors: ZeroDivisionError -EDOM, MyExc -EBADMSG, ValueError -ERANGE, RuntimeError -EIO; an
 * ExceptionGroup is WEFT_EGROUP with a weft_errgroup_t. Virtual clock throughout.
 */
#include <signal.h>

#include "test.h"

#define MS 1000000LL

static int NUM;
static int nreports;

static void count_reports(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)info;
    (void)arg;
    nreports++;
}

/* True if every entry of eg (not nested) has error `err`, and there are `n` of them. */
static bool all_errors(const weft_errgroup_t *eg, int err, size_t n)
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

static int job(void *arg)
{
    struct job *j = arg;
    int r = weft_sleep(j->ms / 1000.0);
    return r < 0 ? r : j->value;
}

/* sleep 10 s; on cancellation count it and fail with `arg` (0: pass the cancel on) */
static int sleep_then_fail_on_cancel(void *arg)
{
    int err = (int)(long)arg;
    int r = weft_sleep(10);
    if (r == -ECANCELED) {
        NUM += 1;
        return err != 0 ? err : r;
    }
    return 0;
}

/* ---- 21 ---- */

static int test_taskgroup_01_main(void *arg)
{
    (void)arg;
    struct job j1 = {100, 42}, j2 = {200, 11};
    weft_group_t g;
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &t1, job, &j1), 0);
    CHECK_EQ(weft_group_spawn(&g, &t2, job, &j2), 0);
    CHECK_EQ(weft_group_size(&g), 2);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    CHECK_EQ(weft_time(NULL), 200 * MS);
    CHECK_EQ(weft_task_result(t1), 42);
    CHECK_EQ(weft_task_result(t2), 11);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_taskgroup_01(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_01_main, NULL), 0);
}

static int test_taskgroup_02_main(void *arg)
{
    (void)arg;
    struct job j1 = {100, 42}, j2 = {200, 11};
    weft_group_t g;
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &t1, job, &j1), 0);
    int r = weft_sleep(0.15);
    CHECK_EQ(weft_group_spawn(&g, &t2, job, &j2), 0);
    CHECK_EQ(weft_group_exit(&g, r, NULL), 0);
    CHECK_EQ(weft_time(NULL), 350 * MS);
    CHECK_EQ(weft_task_result(t1), 42);
    CHECK_EQ(weft_task_result(t2), 11);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_taskgroup_02(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_02_main, NULL), 0);
}

static int test_taskgroup_03_main(void *arg)
{
    (void)arg;
    struct job j1 = {1000, 42}, j2 = {200, 11};
    weft_group_t g;
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &t1, job, &j1), 0);
    int r = weft_sleep(0.15);
    weft_task_cancel(t1, NULL); /* explicitly: everything else goes on as usual */
    CHECK_EQ(weft_group_spawn(&g, &t2, job, &j2), 0);
    CHECK_EQ(weft_group_exit(&g, r, NULL), 0);
    CHECK(weft_task_cancelled(t1));
    CHECK_EQ(weft_task_result(t2), 11);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_taskgroup_03(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_03_main, NULL), 0);
}

/* ---- 22 ---- */

static bool t2_cancel, runner_cancel;
static weft_errgroup_t *runner_eg;

static int foo2_sleep5(void *arg)
{
    (void)arg;
    int r = weft_sleep(5);
    if (r == -ECANCELED) {
        t2_cancel = true;
        return r;
    }
    NUM += 1;
    return 0;
}

static int cancel_children_runner(void *arg)
{
    (void)arg;
    static struct job j = {100, -EDOM};
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_group_spawn(&g, NULL, job, &j), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, foo2_sleep5, NULL), 0);
    int r = weft_sleep(10);
    if (r == -ECANCELED)
        runner_cancel = true;
    r = weft_group_exit(&g, r, &runner_eg);
    if (r < 0)
        return r; /* the code after the block does not run */
    NUM += 10;
    return 0;
}

static int test_cancel_children_on_child_error_main(void *arg)
{
    (void)arg;
    NUM = 0;
    t2_cancel = runner_cancel = false;
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, cancel_children_runner, NULL), 0);
    CHECK_EQ(weft_join(r), WEFT_EGROUP);
    CHECK(all_errors(runner_eg, -EDOM, 3));
    CHECK(weft_errgroup_task(runner_eg, 0) != NULL);
    CHECK_EQ(NUM, 0);
    CHECK(t2_cancel);
    CHECK(runner_cancel);
    CHECK_EQ(weft_task_cancelling(r), 0);
    CHECK_EQ(weft_time(NULL), 100 * MS);
    weft_errgroup_release(runner_eg);
    weft_task_release(r);
    return 0;
}

static void test_cancel_children_on_child_error(void)
{
    CHECK_EQ(run_virtual(test_cancel_children_on_child_error_main, NULL), 0);
}

/* test_taskgroup_04: the same with a sibling that has not failed */
static int test_taskgroup_04_main(void *arg)
{
    (void)arg;
    struct job j1 = {100, -EDOM};
    weft_group_t g;
    weft_task_t *t2;
    NUM = 0;
    t2_cancel = false;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &j1), 0);
    CHECK_EQ(weft_group_spawn(&g, &t2, foo2_sleep5, NULL), 0);
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_exit(&g, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EDOM, 1));
    CHECK_EQ(NUM, 0);
    CHECK(t2_cancel);
    CHECK(weft_task_cancelled(t2));
    weft_errgroup_release(eg);
    weft_task_release(t2);
    return 0;
}

static void test_taskgroup_04(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_04_main, NULL), 0);
}

/* ---- 23: an outside cancel gives a plain -ECANCELED ---- */

static bool body_waits;

static int five_sleepers_runner(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_group_spawn(&g, NULL, sleep_then_fail_on_cancel, (void *)0L), 0);
    int r = 0;
    if (body_waits) {
        r = weft_sleep(10);
        if (r == -ECANCELED)
            NUM += 10;
    }
    return weft_group_exit(&g, r, NULL);
}

static int test_cancellation_main(void *arg)
{
    (void)arg;
    bool waits[2] = {false, true}; /* test_cancellation, test_taskgroup_07 */
    for (int i = 0; i < 2; i++) {
        NUM = 0;
        body_waits = waits[i];
        weft_task_t *r;
        CHECK_EQ(weft_spawn(&r, five_sleepers_runner, NULL), 0);
        CHECK_EQ(weft_sleep(0.1), 0);
        CHECK(!weft_task_done(r));
        weft_task_cancel(r, "test");
        CHECK_EQ(weft_join(r), -ECANCELED);
        CHECK(weft_task_cancelled(r));
        CHECK_STR(weft_task_cancel_message(r), "test");
        CHECK_EQ(NUM, body_waits ? 15 : 5);
        weft_task_release(r);
    }
    return 0;
}

static void test_cancellation(void)
{
    CHECK_EQ(run_virtual(test_cancellation_main, NULL), 0);
}

static int two_jobs_runner(void *arg)
{
    (void)arg;
    static struct job j1 = {1000, 42}, j2 = {2000, 11};
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &j1), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &j2), 0);
    return weft_group_exit(&g, 0, NULL);
}

static int test_taskgroup_22_main(void *arg)
{
    (void)arg;
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, two_jobs_runner, NULL), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    weft_task_cancel(r, NULL);
    CHECK_EQ(weft_join(r), -ECANCELED);
    CHECK_EQ(weft_time(NULL), 50 * MS);
    weft_task_release(r);
    return 0;
}

static void test_taskgroup_22(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_22_main, NULL), 0);
}

static int body_only_runner(void *arg)
{
    int on_cancel = (int)(long)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    int r = weft_sleep(10);
    if (r == -ECANCELED) {
        NUM += 10;
        if (on_cancel != 0)
            r = on_cancel; /* "this isn't a good idea, but we have to support it" */
    }
    return weft_group_exit(&g, r, &runner_eg);
}

static int test_taskgroup_17_main(void *arg)
{
    (void)arg;
    NUM = 0;
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, body_only_runner, (void *)0L), 0);
    CHECK_EQ(weft_sleep(0.1), 0);
    weft_task_cancel(r, NULL);
    CHECK_EQ(weft_join(r), -ECANCELED);
    CHECK_EQ(NUM, 10);
    weft_task_release(r);
    /* test_taskgroup_18: the body turns the cancel into MyExc -> an error group. */
    NUM = 0;
    CHECK_EQ(weft_spawn(&r, body_only_runner, (void *)(long)-EBADMSG), 0);
    CHECK_EQ(weft_sleep(0.1), 0);
    weft_task_cancel(r, NULL);
    CHECK_EQ(weft_join(r), WEFT_EGROUP);
    CHECK(all_errors(runner_eg, -EBADMSG, 1));
    CHECK(weft_errgroup_task(runner_eg, 0) == NULL); /* the body's own error */
    CHECK_EQ(NUM, 10);
    weft_errgroup_release(runner_eg);
    weft_task_release(r);
    return 0;
}

static void test_taskgroup_17(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_17_main, NULL), 0);
}

/* ---- 24: children failing around an outside cancel: the error group wins ---- */

static int cleanup_crash_runner(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_group_spawn(&g, NULL, sleep_then_fail_on_cancel, (void *)(long)-EDOM), 0);
    return weft_group_exit(&g, weft_sleep(10), &runner_eg);
}

static int test_taskgroup_08_main(void *arg)
{
    (void)arg;
    NUM = 0;
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, cleanup_crash_runner, NULL), 0);
    CHECK_EQ(weft_sleep(0.1), 0);
    CHECK(!weft_task_done(r));
    weft_task_cancel(r, NULL);
    CHECK_EQ(weft_join(r), WEFT_EGROUP);
    CHECK(!weft_task_cancelled(r));
    CHECK(all_errors(runner_eg, -EDOM, 5));
    weft_errgroup_release(runner_eg);
    weft_task_release(r);
    return 0;
}

static void test_taskgroup_08(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_08_main, NULL), 0);
}

static int crash_soon_runner(void *arg)
{
    (void)arg;
    static struct job crash = {300, -EDOM};
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &crash), 0);
    int r = weft_sleep(10);
    if (r == -ECANCELED) {
        weft_sleep(0.5); /* cleanup that suspends; the group's cancel cuts it short */
        r = -ECANCELED;
    }
    return weft_group_exit(&g, r, &runner_eg);
}

static int join_it(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, crash_soon_runner, NULL), 0);
    int r = weft_join(t);
    weft_task_release(t);
    return r;
}

static int test_taskgroup_15_main(void *arg)
{
    (void)arg;
    weft_task_fn runners[2] = {crash_soon_runner, join_it}; /* test_taskgroup_15, _16 */
    for (int i = 0; i < 2; i++) {
        int64_t t0 = weft_time(NULL);
        weft_task_t *r;
        CHECK_EQ(weft_spawn(&r, runners[i], NULL), 0);
        CHECK_EQ(weft_sleep(0.1), 0);
        CHECK(!weft_task_done(r));
        weft_task_cancel(r, NULL);
        CHECK_EQ(weft_join(r), WEFT_EGROUP);
        CHECK(all_errors(runner_eg, -EDOM, 1));
        CHECK_EQ(weft_time(NULL) - t0, 300 * MS);
        weft_errgroup_release(runner_eg);
        weft_task_release(r);
    }
    return 0;
}

static void test_taskgroup_15(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_15_main, NULL), 0);
}

/* ---- the body's own error ---- */

static weft_task_t *t1, *t2;

static int body_error_runner(void *arg)
{
    int sleep_first = (int)(long)arg;
    static struct job j1 = {1000, 42}, j2 = {2000, 11};
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &t1, job, &j1), 0);
    CHECK_EQ(weft_group_spawn(&g, &t2, job, &j2), 0);
    if (sleep_first)
        CHECK_EQ(weft_sleep(0.1), 0);
    return weft_group_exit(&g, -EDOM, &runner_eg); /* 1 / 0 */
}

static int test_taskgroup_09_main(void *arg)
{
    (void)arg;
    for (long sleep_first = 1; sleep_first >= 0; sleep_first--) { /* _09, _10 */
        CHECK_EQ(body_error_runner((void *)sleep_first), WEFT_EGROUP);
        CHECK(all_errors(runner_eg, -EDOM, 1));
        CHECK(weft_errgroup_task(runner_eg, 0) == NULL);
        CHECK(weft_task_cancelled(t1));
        CHECK(weft_task_cancelled(t2));
        weft_errgroup_release(runner_eg);
        weft_task_release(t1);
        weft_task_release(t2);
    }
    return 0;
}

static void test_taskgroup_09(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_09_main, NULL), 0);
}

static int nested_mexc(void *arg)
{
    (void)arg;
    weft_sleep(10);
    return -EBADMSG; /* finally: raise MyExc */
}

static int test_taskgroup_19_main(void *arg)
{
    (void)arg;
    struct job crash = {100, -EDOM};
    weft_group_t g;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &crash), 0);
    CHECK_EQ(weft_group_exit(&g, nested_mexc(NULL), &eg), WEFT_EGROUP);
    CHECK_EQ(weft_errgroup_count(eg), 2);
    CHECK_EQ(weft_errgroup_error(eg, 0), -EDOM);
    CHECK(weft_errgroup_task(eg, 0) != NULL);
    CHECK_EQ(weft_errgroup_error(eg, 1), -EBADMSG);
    CHECK(weft_errgroup_task(eg, 1) == NULL);
    CHECK(weft_errgroup_contains(eg, -EBADMSG));
    CHECK(!weft_errgroup_contains(eg, -EIO));
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_errgroup_release(eg);
    return 0;
}

static void test_taskgroup_19(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_19_main, NULL), 0);
}

/* ---- 25: nested groups nest their error groups ---- */

static int nested_runner(void *arg)
{
    long with_outer_child = (long)arg;
    weft_group_t g1, g2;
    CHECK_EQ(weft_group_enter(&g1), 0);
    if (with_outer_child) {
        static struct job long_sleep = {10000, 0};
        CHECK_EQ(weft_group_spawn(&g1, NULL, job, &long_sleep), 0);
    }
    CHECK_EQ(weft_group_enter(&g2), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_group_spawn(&g2, NULL, sleep_then_fail_on_cancel, (void *)(long)-EDOM), 0);
    int r = weft_group_exit(&g2, weft_sleep(10), NULL);
    return weft_group_exit(&g1, r, &runner_eg);
}

static int test_taskgroup_11_main(void *arg)
{
    (void)arg;
    for (long outer_child = 0; outer_child < 2; outer_child++) { /* _11, _12 */
        weft_task_t *r;
        CHECK_EQ(weft_spawn(&r, nested_runner, (void *)outer_child), 0);
        CHECK_EQ(weft_sleep(0.1), 0);
        CHECK(!weft_task_done(r));
        weft_task_cancel(r, NULL);
        CHECK_EQ(weft_join(r), WEFT_EGROUP);
        CHECK(all_errors(runner_eg, WEFT_EGROUP, 1));
        CHECK(weft_errgroup_task(runner_eg, 0) == NULL); /* from the outer body */
        const weft_errgroup_t *inner = weft_errgroup_nested(runner_eg, 0);
        CHECK(all_errors(inner, -EDOM, 5));
        CHECK(weft_errgroup_contains(runner_eg, -EDOM));
        weft_errgroup_release(runner_eg);
        weft_task_release(r);
    }
    return 0;
}

static void test_taskgroup_11(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_11_main, NULL), 0);
}

static int crash_after_runner(void *arg)
{
    int *ms = arg; /* ms[0]: the outer group's child, ms[1]: the inner one's */
    struct job j1 = {ms[0], -ERANGE}, j2 = {ms[1], -ERANGE};
    weft_group_t g1, g2;
    CHECK_EQ(weft_group_enter(&g1), 0);
    CHECK_EQ(weft_group_spawn(&g1, NULL, job, &j1), 0);
    CHECK_EQ(weft_group_enter(&g2), 0);
    CHECK_EQ(weft_group_spawn(&g2, NULL, job, &j2), 0);
    int r = weft_group_exit(&g2, 0, NULL);
    return weft_group_exit(&g1, r, &runner_eg);
}

static int test_taskgroup_13_main(void *arg)
{
    (void)arg;
    int ms13[2] = {100, 10000};
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, crash_after_runner, ms13), 0);
    CHECK_EQ(weft_join(r), WEFT_EGROUP);
    CHECK(all_errors(runner_eg, -ERANGE, 1)); /* the inner group was only cancelled */
    CHECK(weft_errgroup_nested(runner_eg, 0) == NULL);
    weft_errgroup_release(runner_eg);
    weft_task_release(r);
    return 0;
}

static void test_taskgroup_13(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_13_main, NULL), 0);
}

static int test_taskgroup_14_main(void *arg)
{
    (void)arg;
    int ms14[2] = {10000, 100};
    weft_task_t *r;
    CHECK_EQ(weft_spawn(&r, crash_after_runner, ms14), 0);
    CHECK_EQ(weft_join(r), WEFT_EGROUP);
    CHECK(all_errors(runner_eg, WEFT_EGROUP, 1));
    CHECK(all_errors(weft_errgroup_nested(runner_eg, 0), -ERANGE, 1));
    weft_errgroup_release(runner_eg);
    weft_task_release(r);
    return 0;
}

static void test_taskgroup_14(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_14_main, NULL), 0);
}

/* A child that runs a group of its own which fails: the outer entry nests it. */
static int child_with_group(void *arg)
{
    (void)arg;
    static struct job crash = {50, -EIO};
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &crash), 0);
    return weft_group_exit(&g, 0, NULL);
}

static int test_nested_group_in_child_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_task_t *c;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &c, child_with_group, NULL), 0);
    CHECK_EQ(weft_group_exit(&g, 0, &eg), WEFT_EGROUP);
    CHECK_EQ(weft_errgroup_count(eg), 1);
    CHECK(weft_errgroup_task(eg, 0) == c);
    CHECK_EQ(weft_errgroup_error(eg, 0), WEFT_EGROUP);
    const weft_errgroup_t *inner = weft_errgroup_nested(eg, 0);
    CHECK(all_errors(inner, -EIO, 1));
    CHECK(weft_errgroup_task(inner, 0) != NULL);
    CHECK(weft_errgroup_task(inner, 0) != c);
    CHECK(weft_errgroup_contains(eg, -EIO));
    weft_errgroup_release(eg);
    weft_task_release(c);
    return 0;
}

static void test_nested_group_in_child(void)
{
    CHECK_EQ(run_virtual(test_nested_group_in_child_main, NULL), 0);
}

/* ---- 26: KeyboardInterrupt's C analogue, Ctrl+C ---- */

static int raise_sigint(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(0.1), 0);
    raise(SIGINT);
    return weft_sleep(10);
}

static int sigint_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_task_t *a, *b;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &a, raise_sigint, NULL), 0);
    CHECK_EQ(weft_group_spawn(&g, &b, sleep_then_fail_on_cancel, (void *)0L), 0);
    int r = weft_group_exit(&g, weft_sleep(10), NULL);
    CHECK_EQ(r, -ECANCELED); /* a plain cancellation through the group */
    CHECK(weft_task_cancelled(a));
    CHECK(weft_task_cancelled(b));
    weft_task_release(a);
    weft_task_release(b);
    return r;
}

static void test_taskgroup_20(void)
{
    struct sigaction old;
    sigaction(SIGINT, NULL, &old);
    if (old.sa_handler != SIG_DFL) {
        fprintf(stderr, "SIGINT is not at its default action here: skipped\n");
        return;
    }
    CHECK_EQ(run_virtual(sigint_main, NULL), -EINTR);
}

/* ---- 27: misuse ---- */

static weft_group_t *shared_g;
static int spawn_after_failure;

static int crash_fast(void *arg)
{
    (void)arg;
    weft_sleep(0.001);
    return -EDOM;
}

static int coro2(void *arg)
{
    (void)arg;
    int r = weft_sleep(1);
    if (r == -ECANCELED)
        spawn_after_failure = weft_group_spawn(shared_g, NULL, crash_fast, NULL);
    return 0;
}

static int test_taskgroup_no_create_task_after_failure_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_errgroup_t *eg;
    shared_g = &g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, crash_fast, NULL), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, coro2, NULL), 0);
    CHECK_EQ(weft_group_exit(&g, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EDOM, 1));
    CHECK_EQ(spawn_after_failure, -ESHUTDOWN);
    weft_errgroup_release(eg);
    return 0;
}

static void test_taskgroup_no_create_task_after_failure(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_no_create_task_after_failure_main, NULL), 0);
}

static int test_taskgroup_finished_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    memset(&g, 0, sizeof(g));
    /* test_taskgroup_not_entered */
    CHECK_EQ(weft_group_spawn(&g, NULL, crash_fast, NULL), -EINVAL);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), -EINVAL);
    CHECK_EQ(weft_group_enter(&g), 0);
    /* test_taskgroup_already_entered */
    CHECK_EQ(weft_group_enter(&g), -EINVAL);
    CHECK_EQ(weft_group_spawn(&g, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    /* test_taskgroup_finished */
    CHECK_EQ(weft_group_spawn(&g, NULL, crash_fast, NULL), -EINVAL);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), -EINVAL);
    CHECK_EQ(weft_group_size(&g), 0);
    /* The storage can be entered again after exit. */
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_exit(&g, 7, NULL), 7);
    return 0;
}

static void test_taskgroup_finished(void)
{
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), -EPERM); /* test_taskgroup_without_parent_task */
    CHECK_EQ(weft_group_enter(NULL), -EINVAL);
    CHECK_EQ(run_virtual(test_taskgroup_finished_main, NULL), 0);
}

static int exit_from(void *arg)
{
    return weft_group_exit(arg, 0, NULL);
}

static int test_taskgroup_exit_by_other_task_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, exit_from, &g), 0);
    CHECK_EQ(weft_join(t), -EINVAL);
    weft_task_release(t);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    return 0;
}

static void test_taskgroup_exit_by_other_task(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_exit_by_other_task_main, NULL), 0);
}

/* ---- 28: the parent's cancel count ---- */

static int test_cancelling_level_preserved_main(void *arg)
{
    (void)arg;
    struct job raise_after = {0, -EIO};
    weft_group_t g;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &raise_after), 0);
    CHECK_EQ(weft_group_exit(&g, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EIO, 1));
    weft_errgroup_release(eg);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    CHECK_EQ(weft_sleep(0.1), 0); /* no stray cancel left behind */
    return 0;
}

static void test_cancelling_level_preserved(void)
{
    CHECK_EQ(run_virtual(test_cancelling_level_preserved_main, NULL), 0);
}

static int test_nested_groups_both_cancelled_main(void *arg)
{
    (void)arg;
    struct job rt = {0, -EIO}, ve = {0, -ERANGE};
    weft_group_t outer, inner;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&outer), 0);
    CHECK_EQ(weft_group_enter(&inner), 0);
    CHECK_EQ(weft_group_spawn(&inner, NULL, job, &rt), 0);
    CHECK_EQ(weft_group_spawn(&outer, NULL, job, &ve), 0);
    CHECK_EQ(weft_group_exit(&inner, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EIO, 1)); /* except* RuntimeError: pass */
    weft_errgroup_release(eg);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 1);
    CHECK_EQ(weft_group_exit(&outer, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -ERANGE, 1)); /* except* ValueError: pass */
    weft_errgroup_release(eg);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_nested_groups_both_cancelled(void)
{
    CHECK_EQ(run_virtual(test_nested_groups_both_cancelled_main, NULL), 0);
}

static weft_future_t *event;

static int raise_error(void *arg)
{
    (void)arg;
    weft_future_set_result(event, 0);
    weft_yield();
    return -EIO;
}

static bool after_group_cancelled;

static int inner_error_and_cancel(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, raise_error, NULL), 0);
    int r = weft_sleep(1);
    CHECK_EQ(r, -ECANCELED); /* the sleep in the group is cancelled */
    CHECK_EQ(weft_group_exit(&g, r, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EIO, 1));
    weft_errgroup_release(eg);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 1);
    r = weft_sleep(1);
    after_group_cancelled = r == -ECANCELED; /* the outside cancel is still delivered */
    return r;
}

static int test_error_and_cancel_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_new(&event), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, inner_error_and_cancel, NULL), 0);
    CHECK_EQ(weft_future_await(event), 0);
    CHECK_EQ(weft_task_cancelling(t), 0);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK(after_group_cancelled);
    CHECK_EQ(weft_time(NULL), 0);
    weft_task_release(t);
    weft_future_release(event);
    return 0;
}

static void test_error_and_cancel(void)
{
    CHECK_EQ(run_virtual(test_error_and_cancel_main, NULL), 0);
}

static int raise_exc(void *arg)
{
    (void)arg;
    return -EPROTO; /* CustomException */
}

static int test_taskgroup_context_manager_exit_raises_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, raise_exc, NULL), 0);
    int r = weft_sleep(1);
    CHECK_EQ(r, -ECANCELED);
    r = -EPROTO; /* the inner context manager's exit raises CustomException */
    CHECK_EQ(weft_group_exit(&g, r, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EPROTO, 2));
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    weft_errgroup_release(eg);
    return 0;
}

static void test_taskgroup_context_manager_exit_raises(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_context_manager_exit_raises_main, NULL), 0);
}

/* ---- 29: children spawning children ---- */

static int do_job(void *arg)
{
    return weft_sleep(*(double *)arg);
}

static int test_taskgroup_23_main(void *arg)
{
    (void)arg;
    static double d = 0.3;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int count = 0; count < 10; count++) {
        CHECK_EQ(weft_sleep(0.1), 0);
        CHECK_EQ(weft_group_spawn(&g, NULL, do_job, &d), 0);
        if (count == 5)
            CHECK(weft_group_size(&g) < 5);
    }
    CHECK_EQ(weft_sleep(1.35), 0);
    CHECK_EQ(weft_group_size(&g), 0);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    return 0;
}

static void test_taskgroup_23(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_23_main, NULL), 0);
}

static double d01 = 0.1, d02 = 0.2;

static int root(void *arg)
{
    weft_group_t *g = arg;
    int r = weft_sleep(0.1);
    if (r < 0)
        return r;
    CHECK_EQ(weft_group_spawn(g, NULL, do_job, &d01), 0);
    CHECK_EQ(weft_group_spawn(g, NULL, do_job, &d02), 0);
    return 0;
}

static int test_taskgroup_24_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, root, &g), 0);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    CHECK_EQ(weft_time(NULL), 300 * MS); /* the exit waited for the grandchildren */
    return 0;
}

static void test_taskgroup_24(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_24_main, NULL), 0);
}

static int nhydras;

static int hydra(void *arg)
{
    weft_group_t *g = arg;
    nhydras++;
    int r = weft_sleep(0.01);
    if (r < 0)
        return r;
    r = weft_group_spawn(g, NULL, hydra, g);
    if (r == 0)
        r = weft_group_spawn(g, NULL, hydra, g);
    return r;
}

static int hercules(void *arg)
{
    (void)arg;
    while (nhydras < 10) {
        int r = weft_sleep(0.015);
        if (r < 0)
            return r;
    }
    return -EDOM;
}

static int test_taskgroup_25_main(void *arg)
{
    (void)arg;
    nhydras = 0;
    weft_group_t g;
    weft_errgroup_t *eg;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, hydra, &g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, hercules, NULL), 0);
    CHECK_EQ(weft_group_exit(&g, 0, &eg), WEFT_EGROUP);
    CHECK(all_errors(eg, -EDOM, 1));
    CHECK(nhydras >= 10);
    weft_errgroup_release(eg);
    return 0;
}

static void test_taskgroup_25(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_25_main, NULL), 0);
}

static int test_taskgroup_task_name_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_task_t *t;
    struct weft_task_opts opts = {.name = "yolo"};
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn_opts(&g, &t, do_job, &d01, &opts), 0);
    CHECK_STR(weft_task_name(t), "yolo");
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    weft_task_release(t);
    return 0;
}

static void test_taskgroup_task_name(void)
{
    CHECK_EQ(run_virtual(test_taskgroup_task_name_main, NULL), 0);
}

/* ---- weft additions ---- */

static int test_errors_are_read_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    struct job crash = {10, -EIO}, crash2 = {10, -ERANGE};
    weft_group_t g;
    weft_task_t *t;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &t, job, &crash), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, job, &crash2), 0);
    CHECK_EQ(weft_group_exit(&g, 0, NULL), WEFT_EGROUP); /* errors not wanted: freed */
    weft_task_release(t);
    CHECK_EQ(weft_sleep(0.1), 0);
    CHECK_EQ(nreports, 0); /* the group consumed both errors */
    return 0;
}

static void test_errors_are_read(void)
{
    nreports = 0;
    CHECK_EQ(run_virtual(test_errors_are_read_main, NULL), 0);
    CHECK_EQ(nreports, 0);
}

static int group_in_scope(void *arg)
{
    (void)arg;
    weft_group_t g;
    weft_task_t *a;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, &a, sleep_then_fail_on_cancel, (void *)0L), 0);
    int r = weft_group_exit(&g, weft_sleep(5), NULL);
    CHECK(weft_task_cancelled(a));
    weft_task_release(a);
    return r;
}

static int test_group_in_timeout_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_timeout_call(1, group_in_scope, NULL), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), 1000 * MS);
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 0);
    return 0;
}

static void test_group_in_timeout(void)
{
    CHECK_EQ(run_virtual(test_group_in_timeout_main, NULL), 0);
}

static int test_group_many_children_main(void *arg)
{
    (void)arg;
    static double ds[200];
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int i = 0; i < 200; i++) {
        ds[i] = (i % 7) * 0.01;
        CHECK_EQ(weft_group_spawn(&g, NULL, do_job, &ds[i]), 0);
    }
    CHECK_EQ(weft_group_exit(&g, 0, NULL), 0);
    CHECK_EQ(weft_time(NULL), 60 * MS);
    return 0;
}

static void test_group_many_children(void)
{
    CHECK_EQ(run_virtual(test_group_many_children_main, NULL), 0);
}

static int stuck_in_group(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    weft_loop_stop(weft_loop_current());
    return weft_group_exit(&g, weft_sleep(10), NULL); /* never gets here */
}

static void test_loop_closed_inside_group(void)
{
    /* A loop closed while a task is inside a group (its stack is freed): later groups on this
     * thread still work. */
    weft_loop_t *l;
    weft_task_t *t;
    CHECK_EQ(weft_loop_new(&l, &test_vclock), 0);
    CHECK_EQ(weft_spawn(&t, stuck_in_group, NULL), 0);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_loop_close(l), 0);
    weft_task_release(t);
    CHECK_EQ(run_virtual(test_taskgroup_14_main, NULL), 0);
    CHECK_EQ(run_virtual(test_nested_group_in_child_main, NULL), 0);
}

TEST_MAIN(test_taskgroup_01, test_taskgroup_02, test_taskgroup_03,
          test_cancel_children_on_child_error, test_taskgroup_04, test_cancellation,
          test_taskgroup_22, test_taskgroup_17, test_taskgroup_08, test_taskgroup_15,
          test_taskgroup_09, test_taskgroup_19, test_taskgroup_11, test_taskgroup_13,
          test_taskgroup_14, test_nested_group_in_child, test_taskgroup_20,
          test_taskgroup_no_create_task_after_failure, test_taskgroup_finished,
          test_taskgroup_exit_by_other_task, test_cancelling_level_preserved,
          test_nested_groups_both_cancelled, test_error_and_cancel,
          test_taskgroup_context_manager_exit_raises, test_taskgroup_23, test_taskgroup_24,
          test_taskgroup_25, test_taskgroup_task_name, test_errors_are_read, test_group_in_timeout,
          test_group_many_children, test_loop_closed_inside_group)
