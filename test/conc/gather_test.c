/*
 * weft_gather, ported from CPython's GatherTests in test_tasks.py (futures become tasks awaiting
 * those futures, since weft's gather takes tasks). Virtual clock.
 */
#include "test.h"

#define MS 1000000LL

static int nreports;

static void count_reports(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)info;
    (void)arg;
    nreports++;
}

static int await_future(void *arg)
{
    return weft_future_await(arg);
}

/* n futures and n tasks, task i awaiting future i. */
struct kids {
    size_t n;
    weft_future_t *f[8];
    weft_task_t *t[8];
};

static void kids_new(struct kids *k, size_t n)
{
    k->n = n;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(weft_future_new(&k->f[i]), 0);
        CHECK_EQ(weft_spawn(&k->t[i], await_future, k->f[i]), 0);
    }
}

static void kids_free(struct kids *k)
{
    for (size_t i = 0; i < k->n; i++) {
        weft_task_release(k->t[i]);
        weft_future_release(k->f[i]);
    }
}

/* A task running weft_gather over kids. */
struct gathering {
    struct kids *k;
    int flags;
    int results[8];
    int ret;
    bool returned;
};

static int gather_task(void *arg)
{
    struct gathering *g = arg;
    g->ret = weft_gather(g->k->t, g->k->n, g->results, g->flags);
    g->returned = true;
    return g->ret;
}

static int test_constructor_empty_sequence_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_gather(NULL, 0, NULL, 0), 0);
    CHECK_EQ(weft_gather(NULL, 0, NULL, WEFT_GATHER_RETURN_ERRORS), 0);
    CHECK_EQ(weft_time(NULL), t0);
    return 0;
}

static void test_constructor_empty_sequence(void)
{
    CHECK_EQ(run_virtual(test_constructor_empty_sequence_main, NULL), 0);
}

static int test_result_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 4);
    struct gathering g = {.k = &k};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    /* Complete them in reverse order: the results still come in argument order. */
    for (int i = 3; i >= 0; i--) {
        weft_future_set_result(k.f[i], 10 + i);
        for (int j = 0; j < 3; j++)
            CHECK_EQ(weft_yield(), 0);
        CHECK_EQ(g.returned, i == 0);
    }
    CHECK_EQ(weft_join(gt), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(g.results[i], 10 + i);
    weft_task_release(gt);
    kids_free(&k);
    return 0;
}

static void test_result(void)
{
    CHECK_EQ(run_virtual(test_result_main, NULL), 0);
}

static int test_return_exceptions_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 4);
    struct gathering g = {.k = &k, .flags = WEFT_GATHER_RETURN_ERRORS};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_future_set_error(k.f[0], -EDOM);
    weft_future_set_result(k.f[1], 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_yield(), 0);
    CHECK(!g.returned); /* the outer completes only after the last child */
    weft_future_set_error(k.f[3], -ERANGE);
    weft_future_set_result(k.f[2], 3);
    CHECK_EQ(weft_join(gt), 0);
    CHECK_EQ(g.results[0], -EDOM);
    CHECK_EQ(g.results[1], 1);
    CHECK_EQ(g.results[2], 3);
    CHECK_EQ(g.results[3], -ERANGE);
    weft_task_release(gt);
    kids_free(&k);
    CHECK_EQ(nreports, 0); /* errors delivered in results are read */
    return 0;
}

static void test_return_exceptions(void)
{
    nreports = 0;
    CHECK_EQ(run_virtual(test_return_exceptions_main, NULL), 0);
}

static int test_one_exception_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    struct kids k;
    kids_new(&k, 5);
    struct gathering g = {.k = &k};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_future_set_result(k.f[0], 1);
    weft_future_set_error(k.f[1], -EDOM);
    CHECK_EQ(weft_join(gt), -EDOM);
    CHECK_EQ(g.results[0], 1);
    CHECK_EQ(g.results[1], -EDOM);
    CHECK_EQ(g.results[2], -EINPROGRESS);
    /* The others keep running, nothing was cancelled; what they do next is ignored. */
    for (int i = 2; i < 5; i++)
        CHECK(!weft_task_done(k.t[i]));
    weft_future_set_result(k.f[2], 3);
    weft_future_cancel(k.f[3], NULL);
    weft_future_set_error(k.f[4], -ERANGE);
    CHECK_EQ(weft_join(k.t[2]), 3);
    CHECK_EQ(weft_join(k.t[3]), -ECANCELED);
    CHECK_EQ(weft_join(k.t[4]), -ERANGE);
    weft_task_release(gt);
    kids_free(&k);
    CHECK_EQ(nreports, 0);
    return 0;
}

static void test_one_exception(void)
{
    nreports = 0;
    CHECK_EQ(run_virtual(test_one_exception_main, NULL), 0);
}

static int test_one_cancellation_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 5);
    struct gathering g = {.k = &k};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_future_set_result(k.f[0], 1);
    weft_task_cancel(k.t[1], NULL);
    CHECK_EQ(weft_join(gt), -ECANCELED);
    /* The gathering task was not cancelled itself: -ECANCELED is the gather's outcome. */
    CHECK_EQ(weft_task_cancelling(gt), 0);
    CHECK_EQ(g.results[0], 1);
    CHECK_EQ(g.results[1], -ECANCELED);
    for (int i = 2; i < 5; i++)
        CHECK(!weft_task_done(k.t[i]));
    /* Does nothing. */
    weft_future_set_result(k.f[2], 3);
    weft_future_cancel(k.f[3], NULL);
    weft_future_set_error(k.f[4], -ERANGE);
    CHECK_EQ(weft_join(k.t[4]), -ERANGE);
    CHECK_EQ(weft_join(k.t[2]), 3);
    weft_task_release(gt);
    kids_free(&k);
    return 0;
}

static void test_one_cancellation(void)
{
    CHECK_EQ(run_virtual(test_one_cancellation_main, NULL), 0);
}

static int test_result_exception_one_cancellation_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 6);
    struct gathering g = {.k = &k, .flags = WEFT_GATHER_RETURN_ERRORS};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_future_set_result(k.f[0], 1);
    weft_future_set_error(k.f[1], -EDOM);
    weft_future_cancel(k.f[2], NULL);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!g.returned);
    weft_future_set_result(k.f[3], 3);
    weft_task_cancel(k.t[4], NULL);
    weft_future_set_error(k.f[5], -ERANGE);
    CHECK_EQ(weft_join(gt), 0);
    int want[6] = {1, -EDOM, -ECANCELED, 3, -ECANCELED, -ERANGE};
    for (int i = 0; i < 6; i++)
        CHECK_EQ(g.results[i], want[i]);
    weft_task_release(gt);
    kids_free(&k);
    return 0;
}

static void test_result_exception_one_cancellation(void)
{
    CHECK_EQ(run_virtual(test_result_exception_one_cancellation_main, NULL), 0);
}

static int proof;

static int inner_proof(void *arg)
{
    int r = weft_future_await(arg);
    if (r < 0)
        return r;
    proof += 1;
    return 0;
}

static int outer_proof(void *arg)
{
    weft_task_t **children = arg;
    int r = weft_gather(children, 2, NULL, 0);
    if (r < 0)
        return r;
    proof += 100;
    return 0;
}

static int test_cancellation_broadcast_main(void *arg)
{
    (void)arg;
    proof = 0;
    weft_future_t *waiter;
    CHECK_EQ(weft_future_new(&waiter), 0);
    weft_task_t *children[2], *f;
    CHECK_EQ(weft_spawn(&children[0], inner_proof, waiter), 0);
    CHECK_EQ(weft_spawn(&children[1], inner_proof, waiter), 0);
    CHECK_EQ(weft_spawn(&f, outer_proof, children), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(f, NULL));
    CHECK_EQ(weft_join(f), -ECANCELED);
    CHECK(weft_future_cancelled(waiter));
    CHECK(weft_task_cancelled(children[0]));
    CHECK(weft_task_cancelled(children[1]));
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(proof, 0);
    weft_task_release(f);
    weft_task_release(children[0]);
    weft_task_release(children[1]);
    weft_future_release(waiter);
    return 0;
}

static void test_cancellation_broadcast(void)
{
    CHECK_EQ(run_virtual(test_cancellation_broadcast_main, NULL), 0);
}

static weft_task_t *to_cancel;

static void cancelling_callback(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    weft_task_cancel(to_cancel, NULL);
}

static int test_cancel_gather_1_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 1);
    struct gathering g = {.k = &k};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    to_cancel = gt;
    CHECK_EQ(weft_future_add_done_callback(k.f[0], cancelling_callback, NULL), 0);
    weft_future_set_result(k.f[0], 42); /* the callback runs after the child finished */
    int r = weft_join(gt);
    /* The child had finished: the cancel reaches no child and the result [42] is kept. weft's
     * gather is the waiting task itself, so that task reports its own cancellation. */
    CHECK(!weft_task_cancelled(k.t[0]));
    CHECK_EQ(g.results[0], 42);
    CHECK_EQ(r, -ECANCELED);
    /* Cancelling after the gather returned does nothing to the children. */
    struct gathering g2 = {.k = &k};
    weft_task_t *gt2;
    CHECK_EQ(weft_spawn(&gt2, gather_task, &g2), 0);
    CHECK_EQ(weft_join(gt2), 0);
    CHECK(!weft_task_cancel(gt2, NULL));
    CHECK_EQ(g2.results[0], 42);
    CHECK(!weft_task_cancelled(k.t[0]));
    weft_task_release(gt);
    weft_task_release(gt2);
    kids_free(&k);
    return 0;
}

static void test_cancel_gather_1(void)
{
    CHECK_EQ(run_virtual(test_cancel_gather_1_main, NULL), 0);
}

static int sleep_05(void *arg)
{
    (void)arg;
    return weft_sleep(0.05);
}

static weft_task_t *last_child;

static int gather_loop(void *arg)
{
    (void)arg;
    double time = 0;
    for (;;) {
        time += 0.05;
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, sleep_05, NULL), 0);
        weft_task_release(last_child);
        last_child = t;
        int r = weft_gather(&t, 1, NULL, WEFT_GATHER_RETURN_ERRORS);
        if (r < 0)
            return r;
        if (time > 1)
            return 0;
    }
}

static int test_cancel_gather_2_main(void *arg)
{
    (void)arg;
    const char *msgs[] = {NULL, "my message"};
    for (int i = 0; i < 2; i++) {
        last_child = NULL;
        weft_task_t *qwe;
        CHECK_EQ(weft_spawn(&qwe, gather_loop, NULL), 0);
        CHECK_EQ(weft_sleep(0.225), 0); /* mid-way through a child's sleep */
        weft_task_cancel(qwe, msgs[i]);
        CHECK_EQ(weft_join(qwe), -ECANCELED);
        CHECK(weft_task_cancelled(qwe));
        CHECK(weft_task_cancelled(last_child));
        if (msgs[i] == NULL) {
            CHECK(weft_task_cancel_message(qwe) == NULL);
        } else {
            CHECK_STR(weft_task_cancel_message(qwe), msgs[i]);
            CHECK_STR(weft_task_cancel_message(last_child), msgs[i]);
        }
        weft_task_release(qwe);
        weft_task_release(last_child);
    }
    return 0;
}

static void test_cancel_gather_2(void)
{
    CHECK_EQ(run_virtual(test_cancel_gather_2_main, NULL), 0);
}

static int fail_after(void *arg)
{
    int r = weft_future_await(arg);
    if (r < 0)
        return r;
    return -EIO; /* raise RuntimeError('should not be ignored') */
}

static int test_exception_marking_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    weft_future_t *a, *b;
    CHECK_EQ(weft_future_new(&a), 0);
    CHECK_EQ(weft_future_new(&b), 0);
    weft_task_t *t[2];
    CHECK_EQ(weft_spawn(&t[0], fail_after, a), 0);
    CHECK_EQ(weft_spawn(&t[1], fail_after, b), 0);
    struct kids k = {.n = 2, .t = {t[0], t[1]}};
    struct gathering g = {.k = &k};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_future_set_result(a, 0);
    CHECK_EQ(weft_join(gt), -EIO);
    weft_future_set_result(b, 0);
    weft_task_release(gt);
    weft_task_release(t[0]);
    weft_task_release(t[1]); /* still running: the loop reports its error when it is freed */
    weft_future_release(a);
    weft_future_release(b);
    CHECK_EQ(weft_sleep(0.1), 0);
    CHECK_EQ(nreports, 0); /* the second error was marked read */
    return 0;
}

static void test_exception_marking(void)
{
    nreports = 0;
    CHECK_EQ(run_virtual(test_exception_marking_main, NULL), 0);
    CHECK_EQ(nreports, 0);
}

static int test_duplicate_tasks_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 2);
    weft_task_t *dup[3] = {k.t[0], k.t[1], k.t[0]};
    weft_future_set_result(k.f[0], 5);
    weft_future_set_result(k.f[1], 6);
    int res[3];
    CHECK_EQ(weft_gather(dup, 3, res, 0), 0);
    CHECK_EQ(res[0], 5);
    CHECK_EQ(res[1], 6);
    CHECK_EQ(res[2], 5);
    kids_free(&k);
    return 0;
}

static void test_duplicate_tasks(void)
{
    CHECK_EQ(run_virtual(test_duplicate_tasks_main, NULL), 0);
}

static int shield_gather(void *arg)
{
    return weft_shield(arg);
}

static int test_shield_gather_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 2);
    struct gathering g = {.k = &k};
    weft_task_t *parent, *outer;
    CHECK_EQ(weft_spawn(&parent, gather_task, &g), 0);
    CHECK_EQ(weft_spawn(&outer, shield_gather, parent), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_task_cancel(outer, NULL);
    CHECK_EQ(weft_join(outer), -ECANCELED);
    weft_future_set_result(k.f[0], 1);
    weft_future_set_result(k.f[1], 2);
    CHECK_EQ(weft_join(parent), 0);
    CHECK_EQ(g.results[0], 1);
    CHECK_EQ(g.results[1], 2);
    weft_task_release(parent);
    weft_task_release(outer);
    kids_free(&k);
    return 0;
}

static void test_shield_gather(void)
{
    CHECK_EQ(run_virtual(test_shield_gather_main, NULL), 0);
}

static int test_gather_shield_main(void *arg)
{
    (void)arg;
    struct kids k;
    kids_new(&k, 2);
    weft_task_t *inner[2];
    CHECK_EQ(weft_spawn(&inner[0], shield_gather, k.t[0]), 0);
    CHECK_EQ(weft_spawn(&inner[1], shield_gather, k.t[1]), 0);
    struct kids ik = {.n = 2, .t = {inner[0], inner[1]}};
    struct gathering g = {.k = &ik};
    weft_task_t *parent;
    CHECK_EQ(weft_spawn(&parent, gather_task, &g), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_task_cancel(parent, NULL);
    /* This cancels inner1 and inner2 but not child1 and child2. */
    CHECK_EQ(weft_join(parent), -ECANCELED);
    CHECK(weft_task_cancelled(inner[0]));
    CHECK(weft_task_cancelled(inner[1]));
    CHECK(!weft_task_done(k.t[0]));
    weft_future_set_result(k.f[0], 1);
    weft_future_set_result(k.f[1], 2);
    CHECK_EQ(weft_join(k.t[0]), 1);
    CHECK_EQ(weft_join(k.t[1]), 2);
    weft_task_release(parent);
    weft_task_release(inner[0]);
    weft_task_release(inner[1]);
    kids_free(&k);
    return 0;
}

static void test_gather_shield(void)
{
    CHECK_EQ(run_virtual(test_gather_shield_main, NULL), 0);
}

/* A child that swallows the first cancel and returns 5 after another 0.1 s. */
static int swallow(void *arg)
{
    (void)arg;
    if (weft_sleep(10) == -ECANCELED)
        weft_sleep(0.1);
    return 5;
}

static int sleeper(void *arg)
{
    return weft_sleep(*(double *)arg);
}

static int test_cancel_waits_for_children_main(void *arg)
{
    (void)arg;
    /* With return-errors, a cancelled gather still waits until every child has ended, then
     * reports the cancellation. */
    weft_task_t *t[2];
    double ten = 10;
    CHECK_EQ(weft_spawn(&t[0], swallow, NULL), 0);
    CHECK_EQ(weft_spawn(&t[1], sleeper, &ten), 0);
    struct kids k = {.n = 2, .t = {t[0], t[1]}};
    struct gathering g = {.k = &k, .flags = WEFT_GATHER_RETURN_ERRORS};
    weft_task_t *gt;
    CHECK_EQ(weft_spawn(&gt, gather_task, &g), 0);
    CHECK_EQ(weft_sleep(1), 0);
    weft_task_cancel(gt, NULL);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_join(gt), -ECANCELED);
    CHECK_EQ(weft_time(NULL) - t0, 100 * MS);
    CHECK_EQ(g.results[0], 5);
    CHECK_EQ(g.results[1], -ECANCELED);
    weft_task_release(gt);
    weft_task_release(t[0]);
    weft_task_release(t[1]);
    return 0;
}

static void test_cancel_waits_for_children(void)
{
    CHECK_EQ(run_virtual(test_cancel_waits_for_children_main, NULL), 0);
}

static int test_gather_in_timeout_main(void *arg)
{
    (void)arg;
    weft_task_t *t[3];
    double d[3] = {0.1, 5, 7};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], sleeper, &d[i]), 0);
    weft_timeout_t to;
    int res[3];
    CHECK_EQ(weft_timeout_enter(&to, 1), 0);
    CHECK_EQ(weft_timeout_exit(&to, weft_gather(t, 3, res, 0)), -ETIMEDOUT);
    CHECK_EQ(res[0], 0);
    CHECK(weft_task_cancelled(t[1]));
    CHECK(weft_task_cancelled(t[2]));
    CHECK_EQ(weft_time(NULL), 1000 * MS);
    for (int i = 0; i < 3; i++)
        weft_task_release(t[i]);
    return 0;
}

static void test_gather_in_timeout(void)
{
    CHECK_EQ(run_virtual(test_gather_in_timeout_main, NULL), 0);
}

static int quick(void *arg)
{
    (void)arg;
    return 1;
}

static int test_gather_errors_main(void *arg)
{
    (void)arg;
    weft_task_t *t[2] = {NULL, NULL};
    CHECK_EQ(weft_gather(t, 2, NULL, 0), -EINVAL);
    CHECK_EQ(weft_gather(NULL, 2, NULL, 0), -EINVAL);
    CHECK_EQ(weft_spawn(&t[0], quick, NULL), 0);
    t[1] = weft_current_task();
    CHECK_EQ(weft_gather(t, 2, NULL, 0), -EDEADLK);
    CHECK_EQ(weft_gather(t, 1, NULL, 42), -EINVAL);
    CHECK_EQ(weft_gather(t, 1, NULL, 0), 0);
    weft_task_release(t[0]);
    return 0;
}

static void test_gather_errors(void)
{
    CHECK_EQ(weft_gather(NULL, 0, NULL, 0), -EPERM);
    CHECK_EQ(run_virtual(test_gather_errors_main, NULL), 0);
}

TEST_MAIN(test_constructor_empty_sequence, test_result, test_return_exceptions, test_one_exception,
          test_one_cancellation, test_result_exception_one_cancellation,
          test_cancellation_broadcast, test_cancel_gather_1, test_cancel_gather_2,
          test_exception_marking, test_duplicate_tasks, test_shield_gather, test_gather_shield,
          test_cancel_waits_for_children, test_gather_in_timeout, test_gather_errors)
