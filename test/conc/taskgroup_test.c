/*
 * TaskGroup (weft_group_*), ported from CPython 3.13's test_taskgroups.py (sections 21-25:
 * children's errors, outside cancels, the body's own error, nested groups). Exceptions map to
 * errors: ZeroDivisionError -EDOM, MyExc -EBADMSG, ValueError -ERANGE, RuntimeError -EIO; an
 * ExceptionGroup is WEFT_EGROUP with a weft_errgroup_t. Virtual clock throughout.
 * Ctrl+C, misuse, cancel counts, spawning children: taskgroup_lifecycle_test.c.
 */
#include "taskgroup.h"

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
          test_taskgroup_14, test_nested_group_in_child, test_loop_closed_inside_group)
