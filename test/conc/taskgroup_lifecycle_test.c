/*
 * TaskGroup (weft_group_*), ported from CPython 3.13's test_taskgroups.py (sections 26-29: Ctrl+C,
 * misuse, the parent's cancel count, children spawning children) and weft's additions (errors
 * read, a group in a timeout, many children, the loop closed inside a group). Error mapping as in
 * taskgroup_test.c. Virtual clock throughout.
 */
#include "taskgroup.h"

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

TEST_MAIN(test_taskgroup_20, test_taskgroup_no_create_task_after_failure, test_taskgroup_finished,
          test_taskgroup_exit_by_other_task, test_cancelling_level_preserved,
          test_nested_groups_both_cancelled, test_error_and_cancel,
          test_taskgroup_context_manager_exit_raises, test_taskgroup_23, test_taskgroup_24,
          test_taskgroup_25, test_taskgroup_task_name, test_errors_are_read, test_group_in_timeout,
          test_group_many_children)
