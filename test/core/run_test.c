/*
 * weft_run = asyncio.run: a fresh loop per call, main's outcome returned, leftover tasks
 * cancelled and awaited at exit with their errors reported (CPython test_runners.py items 56 and
 * 58 of the checklist), nested runs refused with -EBUSY.
 */
#include "test.h"

static weft_task_t *lo_task;

/* ---- test_asyncio_run_cancels_hanging_tasks ---- */

static int leftover(void *arg)
{
    (void)arg;
    return weft_sleep(0.1);
}

static int hanging_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&lo_task, leftover, NULL), 0);
    return 123;
}

static void test_asyncio_run_cancels_hanging_tasks(void)
{
    CHECK_EQ(weft_run(hanging_main, NULL), 123);
    CHECK(weft_task_done(lo_task));
    CHECK(weft_task_cancelled(lo_task));
    weft_task_release(lo_task);
    CHECK(weft_loop_current() == NULL); /* the loop is closed */
}

/* ---- test_asyncio_run_reports_hanging_tasks_errors ---- */

static int reports;
static int report_err;
static weft_task_t *report_task;
static char report_msg[128];

static void on_error(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)arg;
    reports++;
    report_err = info->error;
    report_task = info->task;
    snprintf(report_msg, sizeof(report_msg), "%s", info->message);
}

static int leftover_raises(void *arg)
{
    (void)arg;
    if (weft_sleep(0.1) == -ECANCELED)
        return -EDOM; /* 1 / 0 */
    return 0;
}

static int reports_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), on_error, NULL);
    CHECK_EQ(weft_spawn(&lo_task, leftover_raises, NULL), 0);
    return 123;
}

static void test_asyncio_run_reports_hanging_tasks_errors(void)
{
    reports = 0;
    CHECK_EQ(weft_run(reports_main, NULL), 123);
    CHECK(weft_task_done(lo_task));
    CHECK_EQ(reports, 1);
    CHECK_STR(report_msg, "unhandled error during weft_run() shutdown");
    CHECK(report_task == lo_task);
    CHECK_EQ(report_err, -EDOM);
    CHECK_EQ(weft_task_result(lo_task), -EDOM);
    weft_task_release(lo_task); /* already reported: not reported again */
    CHECK_EQ(reports, 1);
}

/* Detached leftovers too; each error is reported exactly once. Cleanup that blocks again is
 * waited for. */
static int cleanup_finished;

static int leftover_slow_cleanup(void *arg)
{
    (void)arg;
    int r = weft_sleep(100);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_sleep(5), 0); /* cleanup after -ECANCELED may block */
    cleanup_finished = 1;
    return -ECANCELED;
}

static int detached_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), on_error, NULL);
    CHECK_EQ(weft_spawn(NULL, leftover_raises, NULL), 0);
    CHECK_EQ(weft_spawn(NULL, leftover_slow_cleanup, NULL), 0);
    CHECK_EQ(weft_spawn(NULL, leftover, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    return -EPIPE; /* main's error is returned, not reported */
}

static void test_run_shutdown_detached(void)
{
    reports = 0;
    cleanup_finished = 0;
    CHECK_EQ(run_virtual(detached_main, NULL), -EPIPE);
    CHECK_EQ(reports, 1);
    CHECK_EQ(report_err, -EDOM);
    CHECK_EQ(cleanup_finished, 1);
}

/* ---- test_asyncio_run_from_running_loop / test_recursive_run ---- */

static int inner_main(void *arg)
{
    (void)arg;
    return 1;
}

static int nested_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_run(inner_main, NULL), -EBUSY);
    CHECK_EQ(weft_run_opts(inner_main, NULL, &test_vclock), -EBUSY);
    CHECK_EQ(weft_loop_run(weft_loop_current()), -EBUSY);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), -EBUSY);
    CHECK(weft_loop_is_running(weft_loop_current()));
    return 0;
}

static void test_asyncio_run_from_running_loop(void)
{
    CHECK_EQ(weft_run(nested_main, NULL), 0);
}

/* A thread that already has a loop (not running) cannot weft_run() either. */
static void test_recursive_run(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_run(inner_main, NULL), -EBUSY);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(weft_run(inner_main, NULL), 1);
}

/* ---- main's outcome ---- */

static int main_cancels_itself(void *arg)
{
    (void)arg;
    weft_task_cancel(weft_current_task(), NULL);
    return 5;
}

static int main_fails(void *arg)
{
    (void)arg;
    return -ENOENT;
}

static int main_loop_check(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    CHECK(l != NULL);
    CHECK(weft_loop_is_running(l));
    CHECK(weft_current_task() != NULL);
    return 0;
}

static void test_run_outcomes(void)
{
    CHECK_EQ(weft_run(NULL, NULL), -EINVAL);
    CHECK_EQ(weft_run(main_cancels_itself, NULL), -ECANCELED);
    CHECK_EQ(weft_run(main_fails, NULL), -ENOENT);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_run(main_loop_check, NULL), 0);
        CHECK(weft_loop_current() == NULL);
    }
    CHECK_EQ(weft_run_opts(main_fails, NULL, NULL), -ENOENT);
    CHECK_EQ(weft_run_opts(main_fails, NULL, &(struct weft_loop_opts){.stack_size = 100}), -EINVAL);
}

/* ---- leftovers that keep making work during shutdown ---- */

static int spawner_count;

static int spawns_on_cancel(void *arg)
{
    (void)arg;
    if (weft_sleep(100) == -ECANCELED) {
        /* Spawned during shutdown: not waited for; freed when the loop closes. */
        for (int i = 0; i < 3; i++)
            CHECK_EQ(weft_spawn(NULL, leftover, NULL), 0);
        spawner_count++;
    }
    return -ECANCELED;
}

static weft_future_t *pending_fut;

static int awaits_forever(void *arg)
{
    (void)arg;
    return weft_future_await(pending_fut);
}

static int joins_forever(void *arg)
{
    return weft_join(arg);
}

static int spawns_waiters_on_cancel(void *arg)
{
    (void)arg;
    if (weft_sleep(100) == -ECANCELED) {
        /* Spawned during shutdown and parked on a future and a task when the loop closes. */
        weft_task_t *sleeper;
        CHECK_EQ(weft_spawn(&sleeper, leftover, NULL), 0);
        CHECK_EQ(weft_spawn(NULL, joins_forever, sleeper), 0);
        weft_task_release(sleeper);
        CHECK_EQ(weft_spawn(NULL, awaits_forever, NULL), 0);
        CHECK_EQ(weft_yield(), 0);
    }
    return -ECANCELED;
}

static int busy_shutdown_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(NULL, spawns_on_cancel, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    return 9;
}

static int waiters_shutdown_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_new(&pending_fut), 0);
    CHECK_EQ(weft_spawn(NULL, spawns_waiters_on_cancel, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    return 10;
}

static void test_run_shutdown_spawns_more(void)
{
    spawner_count = 0;
    CHECK_EQ(run_virtual(busy_shutdown_main, NULL), 9);
    CHECK_EQ(spawner_count, 1);
}

/* Tasks still parked on a future or a task when the loop closes are freed with the loop, and
 * the references their waits held are dropped (no leak under ASan/valgrind). */
static void test_run_close_frees_parked_waiters(void)
{
    CHECK_EQ(run_virtual(waiters_shutdown_main, NULL), 10);
    weft_future_release(pending_fut);
    pending_fut = NULL; /* a reference still held would now show up as a leak */
}

/* ---- test_run_shutdown_runs_done_callbacks ---- */

static int done_cb_ran;

static void on_leftover_done(weft_future_t *fut, void *arg)
{
    (void)fut;
    (void)arg;
    done_cb_ran++;
}

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(100);
}

static int quick(void *arg)
{
    (void)arg;
    return 0;
}

static int callbacks_main(void *arg)
{
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, arg != NULL ? sleeper : quick, NULL), 0);
    CHECK_EQ(weft_future_add_done_callback(weft_task_future(t), on_leftover_done, NULL), 0);
    weft_task_release(t);
    if (arg != NULL)
        CHECK_EQ(weft_yield(), 0); /* the sleeper is left to the shutdown's cancel */
    /* else the quick task ends in main's last iteration, its callback scheduled as the loop
     * stops, with no task left for the shutdown to cancel */
    return 0;
}

/* Done callbacks of tasks that end as main ends, or that the shutdown cancels, run before
 * weft_run() returns (asyncio.run runs loop iterations after main: the gather of the cancelled
 * tasks, shutdown_asyncgens). */
static void test_run_shutdown_runs_done_callbacks(void)
{
    done_cb_ran = 0;
    CHECK_EQ(run_virtual(callbacks_main, NULL), 0);
    CHECK_EQ(done_cb_ran, 1);
    done_cb_ran = 0;
    CHECK_EQ(run_virtual(callbacks_main, (void *)1), 0);
    CHECK_EQ(done_cb_ran, 1);
}

TEST_MAIN(test_asyncio_run_cancels_hanging_tasks, test_asyncio_run_reports_hanging_tasks_errors,
          test_run_shutdown_detached, test_asyncio_run_from_running_loop, test_recursive_run,
          test_run_outcomes, test_run_shutdown_spawns_more, test_run_close_frees_parked_waiters,
          test_run_shutdown_runs_done_callbacks)
