/*
 * weft_wait and weft_as_completed, ported from CPython's test_tasks.py (test_wait*,
 * test_as_completed*). Virtual clock: every timing below is exact.
 */
#include "test.h"

#define MS 1000000LL

static int64_t t0;

static int64_t elapsed(void)
{
    return weft_time(NULL) - t0;
}

/* A child that sleeps `ms` and then returns `value` (>= 0) or fails with it (< 0). */
struct step {
    int ms;
    int value;
};

static int child(void *arg)
{
    struct step *s = arg;
    int r = weft_sleep(s->ms / 1000.0);
    return r < 0 ? r : s->value;
}

static void spawn_steps(weft_task_t **t, struct step *s, int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_spawn(&t[i], child, &s[i]), 0);
}

static void release_all(weft_task_t **t, int n)
{
    for (int i = 0; i < n; i++) {
        if (weft_task_done(t[i]))
            weft_task_result(t[i]);
        weft_task_release(t[i]);
    }
}

static int test_wait_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{150, 2}, {100, 1}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_ALL_COMPLETED, done, pending), 2);
    CHECK_EQ(elapsed(), 150 * MS);
    CHECK(done[0] == t[0] && done[1] == t[1]); /* argument order */
    CHECK_EQ(weft_task_result(t[0]), 2);
    /* Waiting again on done tasks returns at once (after one trip through the loop). */
    CHECK_EQ(weft_wait(t, 2, WEFT_ALL_COMPLETED, NULL, NULL), 2);
    CHECK_EQ(elapsed(), 150 * MS);
    release_all(t, 2);
    return 0;
}

static void test_wait(void)
{
    CHECK_EQ(run_virtual(test_wait_main, NULL), 0);
}

static int test_wait_first_completed_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{10000, 1}, {100, 2}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_FIRST_COMPLETED, done, pending), 1);
    CHECK(done[0] == t[1]);
    CHECK(pending[0] == t[0]);
    CHECK_EQ(elapsed(), 100 * MS);
    CHECK(!weft_task_done(t[0]));
    CHECK(!weft_task_cancelled(t[0])); /* wait never cancels */
    weft_task_cancel(t[0], NULL);
    CHECK_EQ(weft_join(t[0]), -ECANCELED);
    release_all(t, 2);
    return 0;
}

static void test_wait_first_completed(void)
{
    CHECK_EQ(run_virtual(test_wait_first_completed_main, NULL), 0);
}

static int test_wait_really_done_main(void *arg)
{
    (void)arg;
    /* Two tasks finishing in the same iteration are both reported done. */
    struct step s[2] = {{0, 1}, {0, 2}};
    weft_task_t *t[2], *done[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_FIRST_COMPLETED, done, NULL), 2);
    release_all(t, 2);
    return 0;
}

static void test_wait_really_done(void)
{
    CHECK_EQ(run_virtual(test_wait_really_done_main, NULL), 0);
}

static int test_wait_first_exception_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{10000, 1}, {0, -EDOM}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_FIRST_EXCEPTION, done, pending), 1);
    CHECK(done[0] == t[1]);
    CHECK(pending[0] == t[0]);
    CHECK_EQ(elapsed(), 0);
    weft_task_cancel(t[0], NULL);
    weft_join(t[0]);
    release_all(t, 2);
    return 0;
}

static void test_wait_first_exception(void)
{
    CHECK_EQ(run_virtual(test_wait_first_exception_main, NULL), 0);
}

static int test_wait_first_exception_in_wait_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{10000, 1}, {10, -EDOM}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_FIRST_EXCEPTION, done, pending), 1);
    CHECK(done[0] == t[1]);
    CHECK_EQ(elapsed(), 10 * MS);
    /* A cancellation is not an exception: FIRST_EXCEPTION keeps waiting past it. */
    struct step s2[2] = {{300, 3}, {500, 4}};
    weft_task_t *u[2];
    spawn_steps(u, s2, 2);
    weft_task_cancel(u[0], NULL);
    CHECK_EQ(weft_wait(u, 2, WEFT_FIRST_EXCEPTION, done, pending), 2);
    CHECK_EQ(elapsed(), 510 * MS);
    weft_task_cancel(t[0], NULL);
    weft_join(t[0]);
    release_all(t, 2);
    release_all(u, 2);
    return 0;
}

static void test_wait_first_exception_in_wait(void)
{
    CHECK_EQ(run_virtual(test_wait_first_exception_in_wait_main, NULL), 0);
}

static int test_wait_with_exception_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{100, 1}, {150, -EDOM}};
    weft_task_t *t[2], *done[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait(t, 2, WEFT_ALL_COMPLETED, done, NULL), 2);
    CHECK_EQ(elapsed(), 150 * MS);
    CHECK_EQ(weft_task_result(t[1]), -EDOM);
    release_all(t, 2);
    return 0;
}

static void test_wait_with_exception(void)
{
    CHECK_EQ(run_virtual(test_wait_with_exception_main, NULL), 0);
}

static int test_wait_with_timeout_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{100, 1}, {150, 2}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_wait_dl(t, 2, WEFT_ALL_COMPLETED, done, pending, t0 + 110 * MS), 1);
    CHECK(done[0] == t[0]);
    CHECK(pending[0] == t[1]);
    CHECK_EQ(elapsed(), 110 * MS);
    CHECK(!weft_task_cancelled(t[1]));
    CHECK_EQ(weft_join(t[1]), 2); /* the pending task was left alone */
    release_all(t, 2);
    return 0;
}

static void test_wait_with_timeout(void)
{
    CHECK_EQ(run_virtual(test_wait_with_timeout_main, NULL), 0);
}

static int test_wait_concurrent_complete_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{100, 1}, {150, 2}};
    weft_task_t *t[2], *done[2], *pending[2];
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_yield(), 0); /* the children arm their timers before the wait does (asyncio) */
    CHECK_EQ(weft_wait_dl(t, 2, WEFT_ALL_COMPLETED, done, pending, t0 + 100 * MS), 1);
    CHECK(done[0] == t[0]);
    CHECK(pending[0] == t[1]);
    CHECK_EQ(weft_join(t[1]), 2);
    release_all(t, 2);
    return 0;
}

static void test_wait_concurrent_complete(void)
{
    CHECK_EQ(run_virtual(test_wait_concurrent_complete_main, NULL), 0);
}

static int waiter(void *arg)
{
    return weft_wait(arg, 2, WEFT_ALL_COMPLETED, NULL, NULL);
}

static int test_wait_cancelled_caller_main(void *arg)
{
    (void)arg;
    struct step s[2] = {{100, 1}, {150, 2}};
    weft_task_t *t[2], *w;
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_spawn(&w, waiter, t), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    weft_task_cancel(w, NULL);
    CHECK_EQ(weft_join(w), -ECANCELED);
    CHECK(!weft_task_cancelled(t[0])); /* nothing is cancelled */
    CHECK_EQ(weft_join(t[0]), 1);
    CHECK_EQ(weft_join(t[1]), 2);
    weft_task_release(w);
    release_all(t, 2);
    return 0;
}

static void test_wait_cancelled_caller(void)
{
    CHECK_EQ(run_virtual(test_wait_cancelled_caller_main, NULL), 0);
}

static int test_wait_errors_main(void *arg)
{
    (void)arg;
    struct step s[1] = {{0, 1}};
    weft_task_t *t[2];
    spawn_steps(t, s, 1);
    CHECK_EQ(weft_wait(t, 0, WEFT_ALL_COMPLETED, NULL, NULL), -EINVAL); /* empty set */
    CHECK_EQ(weft_wait(t, 1, 0, NULL, NULL), -EINVAL);                  /* bad return_when */
    CHECK_EQ(weft_wait(t, 1, 4, NULL, NULL), -EINVAL);
    t[1] = NULL;
    CHECK_EQ(weft_wait(t, 2, WEFT_ALL_COMPLETED, NULL, NULL), -EINVAL);
    t[1] = weft_current_task();
    CHECK_EQ(weft_wait(t, 2, WEFT_ALL_COMPLETED, NULL, NULL), -EDEADLK);
    CHECK_EQ(weft_wait(t, 1, WEFT_ALL_COMPLETED, NULL, NULL), 1);
    release_all(t, 1);
    return 0;
}

static void test_wait_errors(void)
{
    weft_task_t *none[1] = {NULL};
    CHECK_EQ(weft_wait(none, 1, WEFT_ALL_COMPLETED, NULL, NULL), -EPERM);
    CHECK_EQ(run_virtual(test_wait_errors_main, NULL), 0);
}

/* ---- as_completed ---- */

static int test_as_completed_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[3] = {{100, 'a'}, {150, 'b'}, {50, 'c'}};
    weft_task_t *t[3], *got;
    spawn_steps(t, s, 3);
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, t, 3, WEFT_NO_DEADLINE), 0);
    const int want[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_as_completed_next(ac, &got), want[i]);
        CHECK(got == t[want[i]]);
        CHECK_EQ(elapsed(), s[want[i]].ms * MS);
        CHECK_EQ(weft_task_result(got), s[want[i]].value);
    }
    CHECK_EQ(weft_as_completed_next(ac, &got), WEFT_EOF);
    CHECK(got == NULL);
    CHECK_EQ(weft_as_completed_next(ac, NULL), WEFT_EOF);
    weft_as_completed_free(ac);
    release_all(t, 3);
    return 0;
}

static void test_as_completed(void)
{
    CHECK_EQ(run_virtual(test_as_completed_main, NULL), 0);
}

static int test_as_completed_with_timeout_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[2] = {{100, 'a'}, {150, 'b'}};
    weft_task_t *t[2], *got;
    spawn_steps(t, s, 2);
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, t, 2, t0 + 120 * MS), 0);
    CHECK_EQ(weft_as_completed_next(ac, &got), 0);
    CHECK_EQ(weft_task_result(got), 'a');
    CHECK_EQ(elapsed(), 100 * MS);
    CHECK_EQ(weft_as_completed_next(ac, &got), -ETIMEDOUT);
    CHECK_EQ(elapsed(), 120 * MS);
    CHECK_EQ(weft_as_completed_next(ac, &got), WEFT_EOF);
    weft_as_completed_free(ac);
    CHECK(!weft_task_cancelled(t[1])); /* nothing is cancelled */
    CHECK_EQ(weft_join(t[1]), 'b');
    release_all(t, 2);
    return 0;
}

static void test_as_completed_with_timeout(void)
{
    CHECK_EQ(run_virtual(test_as_completed_with_timeout_main, NULL), 0);
}

static int test_as_completed_timeout_keeps_finished_main(void *arg)
{
    (void)arg;
    /* Completions recorded before the deadline are still yielded after it; later ones are
     * not, even if they happen before the next step is taken. */
    t0 = weft_time(NULL);
    struct step s[3] = {{10, 1}, {20, 2}, {300, 3}};
    weft_task_t *t[3];
    spawn_steps(t, s, 3);
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, t, 3, t0 + 100 * MS), 0);
    CHECK_EQ(weft_sleep(0.5), 0);
    CHECK(weft_task_done(t[2]));
    CHECK_EQ(weft_as_completed_next(ac, NULL), 0);
    CHECK_EQ(weft_as_completed_next(ac, NULL), 1);
    CHECK_EQ(weft_as_completed_next(ac, NULL), -ETIMEDOUT);
    CHECK_EQ(weft_as_completed_next(ac, NULL), WEFT_EOF);
    weft_as_completed_free(ac);
    release_all(t, 3);
    return 0;
}

static void test_as_completed_timeout_keeps_finished(void)
{
    CHECK_EQ(run_virtual(test_as_completed_timeout_keeps_finished_main, NULL), 0);
}

static int test_as_completed_with_unused_timeout_main(void *arg)
{
    (void)arg;
    t0 = weft_time(NULL);
    struct step s[1] = {{10, 'a'}};
    weft_task_t *t[1];
    spawn_steps(t, s, 1);
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, t, 1, t0 + 200 * MS), 0);
    CHECK_EQ(weft_as_completed_next(ac, NULL), 0);
    CHECK_EQ(weft_as_completed_next(ac, NULL), WEFT_EOF);
    CHECK_EQ(elapsed(), 10 * MS);
    weft_as_completed_free(ac);
    release_all(t, 1);
    return 0;
}

static void test_as_completed_with_unused_timeout(void)
{
    CHECK_EQ(run_virtual(test_as_completed_with_unused_timeout_main, NULL), 0);
}

static int test_as_completed_concurrent_main(void *arg)
{
    (void)arg;
    /* Same deadline: y's timer was armed first, so y finishes first although it is listed
     * second; the iterator follows completion order, not argument order. */
    struct step sy = {50, 'y'}, sx = {50, 'x'};
    weft_task_t *t[2];
    CHECK_EQ(weft_spawn(&t[1], child, &sy), 0);
    CHECK_EQ(weft_spawn(&t[0], child, &sx), 0);
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, t, 2, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_as_completed_next(ac, NULL), 1);
    CHECK_EQ(weft_as_completed_next(ac, NULL), 0);
    weft_as_completed_free(ac);
    release_all(t, 2);
    return 0;
}

static void test_as_completed_concurrent(void)
{
    CHECK_EQ(run_virtual(test_as_completed_concurrent_main, NULL), 0);
}

static int test_as_completed_duplicate_tasks_main(void *arg)
{
    (void)arg;
    struct step s[1] = {{10, 5}};
    weft_task_t *t[1];
    spawn_steps(t, s, 1);
    weft_task_t *dup[2] = {t[0], t[0]};
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, dup, 2, WEFT_NO_DEADLINE), 0);
    int a = weft_as_completed_next(ac, NULL);
    int b = weft_as_completed_next(ac, NULL);
    CHECK_EQ(a + b, 1); /* each slot once */
    CHECK_EQ(weft_as_completed_next(ac, NULL), WEFT_EOF);
    weft_as_completed_free(ac);
    release_all(t, 1);
    return 0;
}

static void test_as_completed_duplicate_tasks(void)
{
    CHECK_EQ(run_virtual(test_as_completed_duplicate_tasks_main, NULL), 0);
}

static weft_as_completed_t *shared_ac;

static int next_step(void *arg)
{
    (void)arg;
    return weft_as_completed_next(shared_ac, NULL);
}

static int test_as_completed_cancel_step_main(void *arg)
{
    (void)arg;
    struct step s[2] = {{100, 1}, {200, 2}};
    weft_task_t *t[2], *w;
    spawn_steps(t, s, 2);
    CHECK_EQ(weft_as_completed_new(&shared_ac, t, 2, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_spawn(&w, next_step, NULL), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    weft_task_cancel(w, NULL);
    CHECK_EQ(weft_join(w), -ECANCELED);
    CHECK(!weft_task_cancelled(t[0]));
    /* The iteration goes on after a cancelled step. */
    CHECK_EQ(weft_as_completed_next(shared_ac, NULL), 0);
    weft_as_completed_free(shared_ac); /* stop early: t[1] keeps running */
    CHECK_EQ(weft_join(t[1]), 2);
    weft_task_release(w);
    release_all(t, 2);
    return 0;
}

static void test_as_completed_cancel_step(void)
{
    CHECK_EQ(run_virtual(test_as_completed_cancel_step_main, NULL), 0);
}

static int test_as_completed_errors_main(void *arg)
{
    (void)arg;
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, NULL, 0, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_as_completed_next(ac, NULL), WEFT_EOF);
    weft_as_completed_free(ac);
    weft_task_t *t[1] = {NULL};
    CHECK_EQ(weft_as_completed_new(&ac, t, 1, WEFT_NO_DEADLINE), -EINVAL);
    CHECK(ac == NULL);
    t[0] = weft_current_task();
    CHECK_EQ(weft_as_completed_new(&ac, t, 1, WEFT_NO_DEADLINE), -EDEADLK);
    CHECK_EQ(weft_as_completed_new(NULL, t, 1, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_EQ(weft_as_completed_next(NULL, NULL), -EINVAL);
    weft_as_completed_free(NULL);
    return 0;
}

static void test_as_completed_errors(void)
{
    weft_as_completed_t *ac;
    CHECK_EQ(weft_as_completed_new(&ac, NULL, 0, WEFT_NO_DEADLINE), -EPERM);
    CHECK_EQ(run_virtual(test_as_completed_errors_main, NULL), 0);
}

TEST_MAIN(test_wait, test_wait_first_completed, test_wait_really_done, test_wait_first_exception,
          test_wait_first_exception_in_wait, test_wait_with_exception, test_wait_with_timeout,
          test_wait_concurrent_complete, test_wait_cancelled_caller, test_wait_errors,
          test_as_completed, test_as_completed_with_timeout,
          test_as_completed_timeout_keeps_finished, test_as_completed_with_unused_timeout,
          test_as_completed_concurrent, test_as_completed_duplicate_tasks,
          test_as_completed_cancel_step, test_as_completed_errors)
