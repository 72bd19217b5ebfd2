/*
 * Tasks: spawn is FIFO and never eager, join gives the result or error, names (Task-N, options,
 * set_name), current task, all_tasks, task handles and reports of errors nobody read.
 */
#include "test.h"

#include <pthread.h>

static int ran;

static int ret_arg(void *arg)
{
    ran++;
    return (int)(long)arg;
}

static int spawn_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    ran = 0;
    CHECK_EQ(weft_spawn(&a, ret_arg, (void *)11), 0);
    CHECK_EQ(weft_spawn(&b, ret_arg, (void *)-EIO), 0);
    CHECK_EQ(ran, 0); /* never eager */
    CHECK(!weft_task_done(a));
    CHECK_EQ(weft_task_result(a), -EINVAL); /* not done yet */
    CHECK_EQ(weft_join(b), -EIO);
    CHECK_EQ(weft_join(a), 11);
    CHECK_EQ(ran, 2);
    CHECK(weft_task_done(a));
    CHECK(!weft_task_cancelled(a));
    CHECK(!weft_task_cancelled(b));
    CHECK_EQ(weft_task_result(a), 11);
    CHECK_EQ(weft_task_result(b), -EIO);
    CHECK_EQ(weft_join(a), 11);        /* joining a done task again: same outcome */
    CHECK(!weft_task_cancel(a, NULL)); /* done: refused */
    CHECK_EQ(weft_task_cancelling(a), 0);
    weft_task_release(a);
    weft_task_release(b);
    return 3;
}

static void test_spawn_join(void)
{
    CHECK_EQ(weft_run(spawn_main, NULL), 3);
}

/* ---- names, ids, current task ---- */

static weft_task_t *self_seen[3];

static int whoami(void *arg)
{
    self_seen[(long)arg] = weft_current_task();
    return 0;
}

static int names_main(void *arg)
{
    (void)arg;
    weft_task_t *me = weft_current_task();
    CHECK(me != NULL);
    char want[64];
    snprintf(want, sizeof(want), "Task-%llu", (unsigned long long)weft_task_id(me));
    CHECK_STR(weft_task_name(me), want);

    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_spawn(&a, whoami, (void *)0), 0);
    CHECK_EQ(weft_spawn_opts(&b, whoami, (void *)1, &(struct weft_task_opts){.name = "worker"}), 0);
    CHECK_EQ(weft_spawn_opts(&c, whoami, (void *)2, NULL), 0);
    CHECK(weft_task_id(a) > weft_task_id(me));
    CHECK_EQ(weft_task_id(b), weft_task_id(a) + 1); /* unique, increasing */
    CHECK_EQ(weft_task_id(c), weft_task_id(b) + 1);
    snprintf(want, sizeof(want), "Task-%llu", (unsigned long long)weft_task_id(a));
    CHECK_STR(weft_task_name(a), want);
    CHECK_STR(weft_task_name(b), "worker");
    CHECK_EQ(weft_task_set_name(a, "renamed"), 0);
    CHECK_STR(weft_task_name(a), "renamed");
    CHECK_EQ(weft_task_set_name(a, NULL), -EINVAL);
    CHECK_STR(weft_task_name(a), "renamed");
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_join(c), 0);
    CHECK(self_seen[0] == a);
    CHECK(self_seen[1] == b);
    CHECK(self_seen[2] == c);
    CHECK(weft_current_task() == me);
    CHECK_STR(weft_task_name(b), "worker"); /* still readable once done */
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

static void test_names_and_current(void)
{
    CHECK(weft_current_task() == NULL);
    CHECK_EQ(weft_run(names_main, NULL), 0);
    CHECK(weft_current_task() == NULL);
}

/* ---- all_tasks ---- */

static int sleeper(void *arg)
{
    return weft_sleep((double)(long)arg);
}

static int all_main(void *arg)
{
    (void)arg;
    weft_task_t *out[8];
    weft_task_t *me = weft_current_task();
    CHECK_EQ(weft_all_tasks(NULL, out, 8), 1);
    CHECK(out[0] == me);
    weft_task_t *t[4];
    for (long i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn(&t[i], sleeper, (void *)(i + 1)), 0);
    CHECK_EQ(weft_all_tasks(weft_loop_current(), out, 8), 5);
    for (int i = 0; i < 4; i++) {
        bool found = false;
        for (int k = 0; k < 5; k++)
            found |= out[k] == t[i];
        CHECK(found);
    }
    CHECK_EQ(weft_all_tasks(NULL, out, 2), 5); /* the total, even past cap */
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), 5);
    CHECK_EQ(weft_sleep(2.5), 0); /* two of them are done now */
    CHECK_EQ(weft_all_tasks(NULL, out, 8), 3);
    for (int k = 0; k < 3; k++)
        CHECK(out[k] != t[0] && out[k] != t[1]);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_all_tasks(NULL, out, 8), 1);
    return 0;
}

static void test_all_tasks(void)
{
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), 0); /* no loop */
    CHECK_EQ(run_virtual(all_main, NULL), 0);
}

/* ---- handles and error reports ---- */

static int reports;
static int report_err;
static char report_msg[128];
static char report_task[64];

static void on_error(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)arg;
    reports++;
    report_err = info->error;
    snprintf(report_msg, sizeof(report_msg), "%s", info->message);
    snprintf(report_task, sizeof(report_task), "%s",
             info->task ? weft_task_name(info->task) : "(none)");
}

static int fail_eio(void *arg)
{
    (void)arg;
    return -EIO;
}

static int detached_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), on_error, NULL);
    reports = 0;
    /* Detached: nobody can read its error, so it is reported when it ends. */
    CHECK_EQ(weft_spawn_opts(NULL, fail_eio, NULL, &(struct weft_task_opts){.name = "lost"}), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(reports, 1);
    CHECK_EQ(report_err, -EIO);
    CHECK_STR(report_msg, "task error never retrieved");
    CHECK_STR(report_task, "lost");
    /* A handle dropped without reading the error: reported at release. */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, fail_eio, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_done(t));
    CHECK_EQ(reports, 1);
    weft_task_release(t);
    CHECK_EQ(reports, 2);
    /* Read by join, or by result: not reported. */
    CHECK_EQ(weft_spawn(&t, fail_eio, NULL), 0);
    CHECK_EQ(weft_join(t), -EIO);
    weft_task_release(t);
    CHECK_EQ(weft_spawn(&t, fail_eio, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_task_result(t), -EIO);
    weft_task_release(t);
    /* Released while still running: detached, runs to completion, its error reported then. */
    CHECK_EQ(weft_spawn(&t, fail_eio, NULL), 0);
    weft_task_release(t);
    CHECK_EQ(reports, 2);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(reports, 3);
    /* Cancelled and successful tasks are never reported. */
    CHECK_EQ(weft_spawn(NULL, ret_arg, (void *)1), 0);
    CHECK_EQ(weft_spawn(&t, sleeper, (void *)5L), 0);
    weft_task_cancel(t, NULL);
    weft_task_release(t);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(reports, 3);
    return 0;
}

static void test_detached_and_reports(void)
{
    CHECK_EQ(run_virtual(detached_main, NULL), 0);
}

/* retain/release: the task lives until the last reference goes. */
static int retain_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ret_arg, (void *)5), 0);
    CHECK(weft_task_retain(t) == t);
    CHECK_EQ(weft_join(t), 5);
    weft_task_release(t);
    CHECK_EQ(weft_task_result(t), 5); /* one reference left: still valid */
    CHECK_STR(weft_task_name(t), weft_task_name(t));
    weft_task_release(t);
    CHECK(weft_task_retain(NULL) == NULL);
    weft_task_release(NULL);
    return 0;
}

static void test_retain_release(void)
{
    CHECK_EQ(run_virtual(retain_main, NULL), 0);
}

/* Tasks spawning tasks, deep chains of joins. */
static int chain(void *arg)
{
    long n = (long)arg;
    if (n == 0)
        return 0;
    weft_task_t *t;
    int err = weft_spawn(&t, chain, (void *)(n - 1));
    if (err < 0)
        return err;
    int r = weft_join(t);
    weft_task_release(t);
    return r < 0 ? r : r + 1;
}

static void test_nested_spawn_chain(void)
{
    CHECK_EQ(run_virtual(chain, (void *)200L), 200);
}

/* A function returning -ECANCELED ends cancelled (asyncio: raising CancelledError). */
static int self_cancel(void *arg)
{
    (void)arg;
    return -ECANCELED;
}

static int ecanceled_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, self_cancel, NULL), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK(weft_future_cancelled(weft_task_future(t)));
    weft_task_release(t);
    return 0;
}

static void test_return_ecanceled_is_cancelled(void)
{
    CHECK_EQ(run_virtual(ecanceled_main, NULL), 0);
}

static void test_spawn_misuse(void)
{
    weft_task_t *t = (weft_task_t *)1;
    CHECK_EQ(weft_spawn(&t, ret_arg, NULL), -EPERM); /* no loop on this thread */
    CHECK(t == NULL);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_spawn(&t, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_join(NULL), -EINVAL);
    CHECK_EQ(weft_task_result(NULL), -EINVAL);
    CHECK(!weft_task_cancel(NULL, NULL));
    CHECK(!weft_task_done(NULL));
    CHECK(weft_task_future(NULL) == NULL);
    /* A task spawned on a loop that closes without running it: handle inert but valid. */
    CHECK_EQ(weft_spawn(&t, ret_arg, NULL), 0);
    CHECK_EQ(weft_join(t), -EPERM); /* outside a task */
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK(weft_task_done(t));
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
}

/*
 * Task structs come from chunks the loop owns (taskmem.c). Handles kept past the loop's close,
 * scattered over many chunks (done, never run, reused slots), stay readable, and the chunks go
 * back only with the last of them (ASan and valgrind see any slip).
 */
#define OUTLIVE_N 20000
static weft_task_t *outlive[OUTLIVE_N];

static int outlive_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < OUTLIVE_N; i++) {
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, ret_arg, (void *)i), 0);
        if (i % 3 == 0)
            outlive[i] = t;
        else
            weft_task_release(t);
        if (i % 1000 == 999)
            CHECK_EQ(weft_yield(), 0); /* some finish: their slots are reused */
    }
    return 0;
}

static void test_handles_outlive_loop(void)
{
    ran = 0;
    CHECK_EQ(weft_run(outlive_main, NULL), 0);
    /* weft_run() closed the loop: the tasks that never ran were cancelled. */
    int done = 0, cancelled = 0;
    for (long i = 0; i < OUTLIVE_N; i += 3) {
        CHECK(weft_task_done(outlive[i]));
        if (weft_task_cancelled(outlive[i])) {
            cancelled++;
        } else {
            CHECK_EQ(weft_task_result(outlive[i]), (int)i);
            done++;
        }
    }
    CHECK_EQ(done + cancelled, (OUTLIVE_N + 2) / 3);
    CHECK(done > 0);
    /* Released in an order unlike allocation order, across a second loop's life. */
    for (long i = 0; i < OUTLIVE_N; i += 6)
        weft_task_release(outlive[i]);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ret_arg, NULL), 0);
    for (long i = 3; i < OUTLIVE_N; i += 6)
        weft_task_release(outlive[i]);
    CHECK_EQ(weft_loop_close(l), 0);
    weft_task_release(t);
}

/* Ids are unique across threads and increasing within one (docs/core.md). */
#define ID_N 5000
static uint64_t ids[2 * ID_N]; /* thread i's in [i * ID_N, (i + 1) * ID_N) */

static int no_op(void *arg)
{
    (void)arg;
    return 0;
}

static int ids_main(void *arg)
{
    uint64_t *out = arg;
    for (int i = 0; i < ID_N; i++) {
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, no_op, NULL), 0);
        out[i] = weft_task_id(t);
        if (i > 0)
            CHECK(out[i] > out[i - 1]);
        CHECK_EQ(weft_join(t), 0);
        weft_task_release(t);
    }
    return 0;
}

static void *ids_thread(void *arg)
{
    CHECK_EQ(weft_run(ids_main, arg), 0);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_ids_unique_across_threads(void)
{
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, ids_thread, &ids[i * ID_N]), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    qsort(ids, 2 * ID_N, sizeof(uint64_t), cmp_u64);
    for (int i = 1; i < 2 * ID_N; i++)
        CHECK(ids[i] != ids[i - 1]);
}

TEST_MAIN(test_spawn_join, test_names_and_current, test_all_tasks, test_detached_and_reports,
          test_retain_release, test_nested_spawn_chain, test_return_ecanceled_is_cancelled,
          test_spawn_misuse, test_handles_outlive_loop, test_ids_unique_across_threads)
