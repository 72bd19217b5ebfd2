/*
 * Barrier: ports of CPython 3.13 test_locks.py BarrierTests (checklist item 45): indexes are a
 * permutation of 0..N-1, cancelled waiters leave, reset and abort break current waiters.
 */
#include "test.h"
#include "sync/sync.h"

#define N 5

static weft_barrier_t barrier, barrier2;

static int state_of(weft_barrier_t *b)
{
    return ((struct weft__barrier *)b)->state;
}

static int count_of(weft_barrier_t *b)
{
    return ((struct weft__barrier *)b)->count;
}

/* Spawn n tasks running fn(arg), join them all, store their results. */
static void gather(int n, weft_task_fn fn, void *arg, int *res)
{
    weft_task_t *t[16];
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_spawn(&t[i], fn, arg), 0);
    for (int i = 0; i < n; i++) {
        int r = weft_join(t[i]);
        if (res != NULL)
            res[i] = r;
        weft_task_release(t[i]);
    }
}

static void check_permutation(const int *res, int n)
{
    int seen[16] = {0};
    for (int i = 0; i < n; i++) {
        CHECK(res[i] >= 0 && res[i] < n);
        CHECK(!seen[res[i]]);
        seen[res[i]] = 1;
    }
}

static int plain_wait(void *arg)
{
    return weft_barrier_wait(arg);
}

static int results1, results2, results3;

static void test_barrier_parties(void)
{
    CHECK_EQ(weft_barrier_init(&barrier, 0), -EINVAL);
    CHECK_EQ(weft_barrier_init(&barrier, -4), -EINVAL);
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    CHECK_EQ(weft_barrier_parties(&barrier), N);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    weft_barrier_t zero = {{0}};
    CHECK_EQ(weft_barrier_wait(&zero), -EINVAL);
}

static int context_manager_main(void *arg)
{
    (void)arg;
    int res[3];
    CHECK_EQ(weft_barrier_init(&barrier, 3), 0);
    gather(3, plain_wait, &barrier, res);
    check_permutation(res, 3);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    return 0;
}

static void test_context_manager(void)
{
    CHECK_EQ(run_virtual(context_manager_main, NULL), 0);
}

static int filling_one_task_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_barrier_init(&barrier, 1), 0);
    CHECK_EQ(weft_barrier_wait(&barrier), 0); /* trips at once */
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_spawn(&t1, plain_wait, &barrier), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK_EQ(weft_spawn(&t2, plain_wait, &barrier), 0);
    weft_yield();
    CHECK(weft_task_done(t1) && weft_task_done(t2));
    CHECK_EQ(weft_task_result(t1), 0);
    CHECK_EQ(weft_task_result(t2), 0);
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_filling_one_task(void)
{
    CHECK_EQ(run_virtual(filling_one_task_main, NULL), 0);
}

static int filling_task_by_task_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_barrier_init(&barrier, 3), 0);
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_spawn(&t[i], plain_wait, &barrier), 0);
        weft_yield();
        if (i < 2) {
            CHECK_EQ(weft_barrier_n_waiting(&barrier), i + 1);
            CHECK_EQ(state_of(&barrier), WEFT__BAR_FILLING);
        }
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), i);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    return 0;
}

static void test_filling_task_by_task(void)
{
    CHECK_EQ(run_virtual(filling_task_by_task_main, NULL), 0);
}

static int wait_twice(void *arg)
{
    (void)arg;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    results1++;
    int i = weft_barrier_wait(&barrier);
    CHECK(i >= 0);
    results2++;
    return i;
}

static int check_return_value_main(void *arg)
{
    (void)arg;
    results1 = results2 = 0;
    int res[N];
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, wait_twice, NULL, res);
    CHECK_EQ(results1, N);
    CHECK_EQ(results2, N);
    check_permutation(res, N);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    return 0;
}

static void test_filling_tasks_check_return_value(void)
{
    CHECK_EQ(run_virtual(check_return_value_main, NULL), 0);
}

static int draining_seen[N];
static int ndraining;

static int draining_coro(void *arg)
{
    (void)arg;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    draining_seen[ndraining++] = state_of(&barrier) == WEFT__BAR_DRAINING;
    return 0;
}

static int draining_state_main(void *arg)
{
    (void)arg;
    ndraining = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, draining_coro, NULL, NULL);
    CHECK_EQ(ndraining, N);
    for (int i = 0; i < N - 1; i++)
        CHECK(draining_seen[i]);
    CHECK(!draining_seen[N - 1]); /* the last task out ends the draining */
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    return 0;
}

static void test_draining_state(void)
{
    CHECK_EQ(run_virtual(draining_state_main, NULL), 0);
}

static int rewait_n;

static int blocking_coro(void *arg)
{
    (void)arg;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    if (rewait_n > 0) {
        rewait_n--;
        CHECK(weft_barrier_wait(&barrier) >= 0);
    } else {
        CHECK(weft_barrier_wait(&barrier2) >= 0); /* N - rewait tasks */
        CHECK(weft_barrier_wait(&barrier) >= 0);
    }
    return 0;
}

static int blocking_while_draining_main(void *arg)
{
    (void)arg;
    rewait_n = 2;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    CHECK_EQ(weft_barrier_init(&barrier2, N - 2), 0);
    gather(N, blocking_coro, NULL, NULL);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK_EQ(weft_barrier_n_waiting(&barrier2), 0);
    return 0;
}

static void test_blocking_tasks_while_draining(void)
{
    CHECK_EQ(run_virtual(blocking_while_draining_main, NULL), 0);
}

static int cancel_one_coro(void *arg)
{
    (void)arg;
    int r = weft_barrier_wait(&barrier);
    if (r < 0)
        return r;
    results1++;
    return 0;
}

static int cancel_one_main(void *arg)
{
    (void)arg;
    results1 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, 3), 0);
    weft_task_t *t1, *t2, *t3, *t4;
    CHECK_EQ(weft_spawn(&t1, cancel_one_coro, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 1);
    CHECK_EQ(weft_spawn(&t2, cancel_one_coro, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 2);
    weft_task_cancel(t1, NULL);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 1);
    CHECK_EQ(weft_join(t1), -ECANCELED);
    CHECK(weft_task_cancelled(t1));
    CHECK_EQ(weft_spawn(&t3, cancel_one_coro, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 2);
    CHECK_EQ(weft_spawn(&t4, cancel_one_coro, NULL), 0);
    CHECK_EQ(weft_join(t2), 0);
    CHECK_EQ(weft_join(t3), 0);
    CHECK_EQ(weft_join(t4), 0);
    CHECK_EQ(results1, 3);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    weft_task_release(t1);
    weft_task_release(t2);
    weft_task_release(t3);
    weft_task_release(t4);
    return 0;
}

static void test_filling_tasks_cancel_one(void)
{
    CHECK_EQ(run_virtual(cancel_one_main, NULL), 0);
}

static void test_reset_barrier(void)
{
    CHECK_EQ(weft_barrier_init(&barrier, 1), 0);
    CHECK_EQ(weft_barrier_reset(&barrier), 0);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(!weft_barrier_broken(&barrier));
    CHECK_EQ(weft_barrier_reset(NULL), -EINVAL);
}

static int broken_counter(void *arg)
{
    (void)arg;
    int r = weft_barrier_wait(&barrier);
    if (r == -EPIPE)
        results1++;
    return r;
}

static int reset_while_waiting_main(void *arg)
{
    (void)arg;
    results1 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    weft_task_t *t[N - 1];
    for (int i = 0; i < N - 1; i++)
        CHECK_EQ(weft_spawn(&t[i], broken_counter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), N - 1);
    CHECK_EQ(weft_barrier_reset(&barrier), 0);
    CHECK_EQ(state_of(&barrier), WEFT__BAR_RESETTING);
    for (int i = 0; i < N - 1; i++) {
        CHECK_EQ(weft_join(t[i]), -EPIPE);
        weft_task_release(t[i]);
    }
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(state_of(&barrier) != WEFT__BAR_RESETTING);
    CHECK(!weft_barrier_broken(&barrier));
    /* Reusable: a full round passes again. */
    int res[N];
    gather(N, plain_wait, &barrier, res);
    check_permutation(res, N);
    return 0;
}

static void test_reset_barrier_while_tasks_waiting(void)
{
    CHECK_EQ(run_virtual(reset_while_waiting_main, NULL), 0);
}

static int half_draining_coro(void *arg)
{
    (void)arg;
    int r = weft_barrier_wait(&barrier);
    if (r == -EPIPE) {
        results1++; /* still inside when the reset came */
        return 0;
    }
    CHECK(r >= 0);
    if (count_of(&barrier) == N / 2)
        CHECK_EQ(weft_barrier_reset(&barrier), 0);
    return 0;
}

static int reset_half_draining_main(void *arg)
{
    (void)arg;
    results1 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, half_draining_coro, NULL, NULL);
    CHECK_EQ(results1, N / 2);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(state_of(&barrier) != WEFT__BAR_RESETTING);
    CHECK(!weft_barrier_broken(&barrier));
    return 0;
}

static void test_reset_barrier_when_tasks_half_draining(void)
{
    CHECK_EQ(run_virtual(reset_half_draining_main, NULL), 0);
}

static int hdhb_count;

static int hdhb_coro(void *arg)
{
    (void)arg;
    int r = weft_barrier_wait(&barrier);
    if (r == -EPIPE) {
        results1++;
        CHECK(weft_barrier_wait(&barrier) >= 0); /* wait again to reach the parties */
        return 0;
    }
    CHECK(r >= 0);
    hdhb_count++;
    if (hdhb_count > N / 2) {
        CHECK_EQ(weft_barrier_reset(&barrier), 0); /* breaks the waiting tasks */
        CHECK(weft_barrier_wait(&barrier) >= 0);
    } else {
        if (weft_barrier_wait(&barrier) == -EPIPE)
            results2++; /* blocked tasks wait for the drain, never broken */
    }
    return 0;
}

static int reset_hdhb_main(void *arg)
{
    (void)arg;
    results1 = results2 = hdhb_count = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, hdhb_coro, NULL, NULL);
    CHECK_EQ(results1, N / 2);
    CHECK_EQ(results2, 0);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(state_of(&barrier) != WEFT__BAR_RESETTING);
    CHECK(!weft_barrier_broken(&barrier));
    return 0;
}

static void test_reset_barrier_when_tasks_half_draining_half_blocking(void)
{
    CHECK_EQ(run_virtual(reset_hdhb_main, NULL), 0);
}

static int again_coro1(void *arg)
{
    (void)arg;
    if (weft_barrier_wait(&barrier) == -EPIPE)
        results1++;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    results2++;
    return 0;
}

static int again_coro2(void *arg)
{
    (void)arg;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    results2++;
    return 0;
}

static int reset_waiting_again_main(void *arg)
{
    (void)arg;
    results1 = results2 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    weft_task_t *t[N - 1], *last;
    for (int i = 0; i < N - 1; i++)
        CHECK_EQ(weft_spawn(&t[i], again_coro1, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_reset(&barrier), 0);
    weft_yield();
    CHECK_EQ(weft_spawn(&last, again_coro2, NULL), 0);
    for (int i = 0; i < N - 1; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_join(last), 0);
    weft_task_release(last);
    CHECK(!weft_barrier_broken(&barrier));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, N);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    return 0;
}

static void test_reset_barrier_while_tasks_waiting_and_waiting_again(void)
{
    CHECK_EQ(run_virtual(reset_waiting_again_main, NULL), 0);
}

static int draining_count;

static int reset_draining_coro(void *arg)
{
    (void)arg;
    CHECK(weft_barrier_wait(&barrier) >= 0);
    draining_count++;
    if (draining_count == N) {
        CHECK_EQ(weft_barrier_reset(&barrier), 0); /* the last task out resets */
        CHECK(weft_barrier_wait(&barrier) >= 0);
    } else {
        if (weft_barrier_wait(&barrier) >= 0)
            results1++;
        else
            results2++;
    }
    CHECK(weft_barrier_wait(&barrier) >= 0);
    results3++;
    return 0;
}

static int reset_draining_main(void *arg)
{
    (void)arg;
    results1 = results2 = results3 = draining_count = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, reset_draining_coro, NULL, NULL);
    CHECK(!weft_barrier_broken(&barrier));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, 0);
    CHECK_EQ(results3, N);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    return 0;
}

static void test_reset_barrier_while_tasks_draining(void)
{
    CHECK_EQ(run_virtual(reset_draining_main, NULL), 0);
}

static void test_abort_barrier(void)
{
    CHECK_EQ(weft_barrier_init(&barrier, 1), 0);
    CHECK_EQ(weft_barrier_abort(&barrier), 0);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(weft_barrier_broken(&barrier));
    CHECK_EQ(weft_barrier_wait(&barrier), -EPIPE);
}

static int abort_hdhb_count;

static int abort_hdhb_coro(void *arg)
{
    (void)arg;
    int r = weft_barrier_wait(&barrier);
    if (r == -EPIPE) {
        results1++; /* waiting to drain */
        return 0;
    }
    CHECK(r >= 0);
    abort_hdhb_count++;
    if (abort_hdhb_count > N / 2) {
        CHECK_EQ(weft_barrier_abort(&barrier), 0);
    } else if (weft_barrier_wait(&barrier) == -EPIPE) {
        results2++; /* blocked tasks, already drained */
    }
    return 0;
}

static int abort_hdhb_main(void *arg)
{
    (void)arg;
    results1 = results2 = abort_hdhb_count = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, abort_hdhb_coro, NULL, NULL);
    CHECK(weft_barrier_broken(&barrier));
    CHECK_EQ(results1, N / 2);
    CHECK_EQ(results2, N - N / 2 - 1);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK(state_of(&barrier) != WEFT__BAR_RESETTING);
    return 0;
}

static void test_abort_barrier_when_tasks_half_draining_half_blocking(void)
{
    CHECK_EQ(run_virtual(abort_hdhb_main, NULL), 0);
}

static int abort_exc_coro(void *arg)
{
    (void)arg;
    int i = weft_barrier_wait(&barrier);
    if (i == -EPIPE) {
        results2++;
        return 0;
    }
    CHECK(i >= 0);
    if (i == N / 2) { /* "raise RuntimeError" */
        CHECK_EQ(weft_barrier_abort(&barrier), 0);
        return 0;
    }
    if (weft_barrier_wait(&barrier) == -EPIPE)
        results2++;
    else
        results1++;
    return 0;
}

static int abort_exc_main(void *arg)
{
    (void)arg;
    results1 = results2 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    gather(N, abort_exc_coro, NULL, NULL);
    CHECK(weft_barrier_broken(&barrier));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    return 0;
}

static void test_abort_barrier_when_exception(void)
{
    CHECK_EQ(run_virtual(abort_exc_main, NULL), 0);
}

static int abort_reset_coro(void *arg)
{
    (void)arg;
    int i = weft_barrier_wait(&barrier);
    if (i == -EPIPE) {
        results2++;
    } else if (i == N / 2) {
        CHECK_EQ(weft_barrier_abort(&barrier), 0);
    } else if (weft_barrier_wait(&barrier) == -EPIPE) {
        results2++;
    } else {
        results1++;
    }
    /* Synchronise, reset, synchronise again: everyone left before, nobody entered during. */
    i = weft_barrier_wait(&barrier2);
    CHECK(i >= 0);
    if (i == N / 2)
        CHECK_EQ(weft_barrier_reset(&barrier), 0);
    CHECK(weft_barrier_wait(&barrier2) >= 0);
    CHECK(weft_barrier_wait(&barrier) >= 0);
    results3++;
    return 0;
}

static int abort_reset_main(void *arg)
{
    (void)arg;
    results1 = results2 = results3 = 0;
    CHECK_EQ(weft_barrier_init(&barrier, N), 0);
    CHECK_EQ(weft_barrier_init(&barrier2, N), 0);
    gather(N, abort_reset_coro, NULL, NULL);
    CHECK(!weft_barrier_broken(&barrier));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(results3, N);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    return 0;
}

static void test_abort_barrier_when_exception_then_resetting(void)
{
    CHECK_EQ(run_virtual(abort_reset_main, NULL), 0);
}

static int dl_wait(void *arg)
{
    (void)arg;
    return weft_barrier_wait_dl(&barrier, weft_deadline_in(1.0));
}

/* A waiter whose deadline passes leaves like a cancelled one; the barrier still trips later. */
static int deadline_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_barrier_init(&barrier, 2), 0);
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_spawn(&a, dl_wait, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 1);
    CHECK_EQ(weft_join(a), -ETIMEDOUT);
    CHECK_EQ(weft_barrier_n_waiting(&barrier), 0);
    CHECK_EQ(weft_spawn(&b, plain_wait, &barrier), 0);
    CHECK_EQ(weft_spawn(&c, plain_wait, &barrier), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_join(c), 1);
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

static void test_wait_deadline(void)
{
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
}

TEST_MAIN(test_barrier_parties, test_context_manager, test_filling_one_task,
          test_filling_task_by_task, test_filling_tasks_check_return_value, test_draining_state,
          test_blocking_tasks_while_draining, test_filling_tasks_cancel_one, test_reset_barrier,
          test_reset_barrier_while_tasks_waiting,
          test_reset_barrier_when_tasks_half_draining,
          test_reset_barrier_when_tasks_half_draining_half_blocking,
          test_reset_barrier_while_tasks_waiting_and_waiting_again,
          test_reset_barrier_while_tasks_draining, test_abort_barrier,
          test_abort_barrier_when_tasks_half_draining_half_blocking,
          test_abort_barrier_when_exception, test_abort_barrier_when_exception_then_resetting,
          test_wait_deadline)
