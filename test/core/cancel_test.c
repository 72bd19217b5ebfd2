/*
 * Cancellation as asyncio 3.13: ports of CPython's test_tasks.py cases (checklist items 1-7 of
 * the asyncio-semantics reference, named after the CPython tests), plus counted requests,
 * messages, cleanup after -ECANCELED, forwarding to awaited tasks, shield, unstarted tasks.
 * "run_briefly" is one weft_yield() of the main task: one trip through the loop.
 */
#include "test.h"

static weft_future_t *fut1, *fut2, *fut3;
static weft_task_t *t;

static void new_futs(void)
{
    CHECK_EQ(weft_future_new(&fut1), 0);
    CHECK_EQ(weft_future_new(&fut2), 0);
    CHECK_EQ(weft_future_new(&fut3), 0);
}

static void free_futs(void)
{
    weft_future_release(fut1);
    weft_future_release(fut2);
    weft_future_release(fut3);
}

/* ---- 1. test_cancel_task_catching ---- */

static int catching(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_await(fut1), 0);
    if (weft_future_await(fut2) == -ECANCELED)
        return 42;
    return 0;
}

static int catching_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, catching, NULL), 0);
    CHECK_EQ(weft_yield(), 0); /* t waits on fut1 */
    CHECK_EQ(weft_future_set_result(fut1, 0), 0);
    CHECK_EQ(weft_yield(), 0); /* t waits on fut2 */
    CHECK(!weft_future_done(fut2));
    CHECK(weft_task_cancel(t, NULL));
    CHECK(weft_future_cancelled(fut2)); /* forwarded to the awaited future */
    CHECK_EQ(weft_join(t), 42);
    CHECK(!weft_task_cancelled(t));
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_cancel_task_catching(void)
{
    CHECK_EQ(run_virtual(catching_main, NULL), 0);
}

/* ---- 2. test_cancel_task_ignoring ---- */

static int ignoring(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_await(fut1), 0);
    CHECK_EQ(weft_future_await(fut2), -ECANCELED); /* swallowed */
    return weft_future_await(fut3);
}

static int ignoring_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, ignoring, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_set_result(fut1, 0), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK(weft_future_cancelled(fut2));
    CHECK_EQ(weft_yield(), 0); /* t now waits on fut3 */
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_future_set_result(fut3, 42), 0);
    CHECK_EQ(weft_join(t), 42);
    CHECK(!weft_future_cancelled(fut3));
    CHECK(!weft_task_cancelled(t));
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_cancel_task_ignoring(void)
{
    CHECK_EQ(run_virtual(ignoring_main, NULL), 0);
}

/* ---- 3. test_cancel_at_end (and test_cancel_current_task) ---- */

static int cancel_self_at_end(void *arg)
{
    (void)arg;
    CHECK(weft_task_cancel(weft_current_task(), NULL));
    CHECK_EQ(weft_task_cancelling(weft_current_task()), 1);
    return 12;
}

static int cancel_self_then_sleep(void *arg)
{
    (void)arg;
    CHECK(weft_task_cancel(weft_current_task(), NULL));
    /* The sleep is cancelled immediately (at the next suspension point). */
    CHECK_EQ(weft_sleep(100), -ECANCELED);
    CHECK_EQ(weft_time(NULL), 0);
    return -ECANCELED;
}

static int at_end_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&t, cancel_self_at_end, NULL), 0);
    CHECK(!weft_task_cancelled(t));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_done(t));
    CHECK(weft_task_cancelled(t));
    CHECK(!weft_task_cancel(t, NULL));
    weft_task_release(t);

    CHECK_EQ(weft_spawn(&t, cancel_self_then_sleep, NULL), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK(!weft_task_cancel(t, NULL));
    weft_task_release(t);
    return 0;
}

static void test_cancel_at_end(void)
{
    CHECK_EQ(run_virtual(at_end_main, NULL), 0);
}

/* ---- 4. test_cancel_inner_future / test_cancel_both_task_and_inner_future ---- */

static int await_fut1_then_12(void *arg)
{
    (void)arg;
    int r = weft_future_await(fut1);
    if (r < 0)
        return r;
    return 12;
}

static int inner_future_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, await_fut1_then_12, NULL), 0);
    CHECK_EQ(weft_yield(), 0); /* start task */
    CHECK(weft_future_cancel(fut1, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_future_cancelled(fut1));
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_cancel_inner_future(void)
{
    CHECK_EQ(run_virtual(inner_future_main, NULL), 0);
}

static int both_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, await_fut1_then_12, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_future_cancel(fut1, NULL));
    CHECK(weft_task_cancel(t, NULL)); /* t is ready (woken by fut1), not done: accepted */
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_done(t));
    CHECK(weft_future_cancelled(fut1));
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_cancel_both_task_and_inner_future(void)
{
    CHECK_EQ(run_virtual(both_main, NULL), 0);
}

/* ---- 5. test_task_awaits_on_itself ---- */

static int await_self(void *arg)
{
    (void)arg;
    weft_task_t *me = weft_current_task();
    CHECK_EQ(weft_join(me), -EDEADLK);
    CHECK_EQ(weft_join_dl(me, 5), -EDEADLK);
    CHECK_EQ(weft_shield(me), -EDEADLK);
    CHECK_EQ(weft_future_await(weft_task_future(me)), -EDEADLK);
    CHECK_EQ(weft_future_await_shielded(weft_task_future(me)), -EDEADLK);
    return weft_future_await_dl(weft_task_future(me), WEFT_NO_DEADLINE);
}

static void test_task_awaits_on_itself(void)
{
    CHECK_EQ(run_virtual(await_self, NULL), -EDEADLK);
}

/* ---- 6. test_cancelling / test_uncancel_basic ---- */

static int sleep10(void *arg)
{
    (void)arg;
    return weft_sleep(10);
}

static int cancelling_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&t, sleep10, NULL), 0);
    CHECK_EQ(weft_task_cancelling(t), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK(weft_task_cancel(t, NULL)); /* every request counts and is accepted */
    CHECK_EQ(weft_task_cancelling(t), 2);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    return 0;
}

static void test_cancelling(void)
{
    CHECK_EQ(run_virtual(cancelling_main, NULL), 0);
}

static int uncancel_task(void *arg)
{
    (void)arg;
    int r = weft_sleep(10);
    if (r == -ECANCELED) {
        CHECK_EQ(weft_task_uncancel(weft_current_task()), 0);
        r = weft_sleep(10);
    }
    return r;
}

static int uncancel_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&t, uncancel_task, NULL), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    /* Cancel the first sleep. */
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK(!weft_task_cancelled(t)); /* still not complete */
    CHECK_EQ(weft_sleep(0.01), 0);
    /* After uncancel(). */
    CHECK_EQ(weft_task_cancelling(t), 0);
    CHECK(!weft_task_cancelled(t));
    CHECK(!weft_task_done(t));
    /* Cancel the second sleep. */
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK(!weft_task_cancelled(t));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK(weft_task_done(t));
    CHECK_EQ(weft_time(NULL), 20000000); /* neither 10 s sleep ran to its end */
    /* uncancel is no longer effective after the task is complete. */
    weft_task_uncancel(t);
    CHECK(weft_task_cancelled(t));
    CHECK(weft_task_done(t));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    return 0;
}

static void test_uncancel_basic(void)
{
    CHECK_EQ(run_virtual(uncancel_main, NULL), 0);
}

/* ---- 7. test_uncancel_resets_must_cancel ---- */

static int await_fut1_42(void *arg)
{
    (void)arg;
    int r = weft_future_await(fut1);
    if (r < 0)
        return r;
    return 42;
}

static int resets_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, await_fut1_42, NULL), 0);
    CHECK_EQ(weft_sleep(0), 0);                   /* get task waiting for fut1 */
    CHECK_EQ(weft_future_set_result(fut1, 0), 0); /* make task runnable */
    CHECK(weft_task_cancel(t, NULL));             /* enter cancelled state */
    CHECK_EQ(weft_task_cancelling(t), 1);
    CHECK_EQ(weft_task_uncancel(t), 0); /* undo the cancellation */
    CHECK_EQ(weft_task_cancelling(t), 0);
    CHECK_EQ(weft_join(t), 42);
    CHECK(!weft_task_cancelled(t));
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_uncancel_resets_must_cancel(void)
{
    CHECK_EQ(run_virtual(resets_main, NULL), 0);
}

/* Without the uncancel, the same ready task gets -ECANCELED instead of the future's value. */
static int ready_cancel_main(void *arg)
{
    (void)arg;
    new_futs();
    CHECK_EQ(weft_spawn(&t, await_fut1_42, NULL), 0);
    CHECK_EQ(weft_sleep(0), 0);
    CHECK_EQ(weft_future_set_result(fut1, 0), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK(!weft_future_cancelled(fut1)); /* it was done already: not touched */
    weft_task_release(t);
    free_futs();
    return 0;
}

static void test_cancel_ready_task(void)
{
    CHECK_EQ(run_virtual(ready_cancel_main, NULL), 0);
}

/* An uncancel after the request was delivered to a parked sleep does not take it back: the
 * sleep was already interrupted (asyncio: the sleep's future is cancelled at once). */
static int sleep10_result;

static int sleep10_record(void *arg)
{
    (void)arg;
    sleep10_result = weft_sleep(10);
    return 0;
}

static int delivered_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&t, sleep10_record, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_task_uncancel(t), 0);
    CHECK_EQ(weft_join(t), 0);
    CHECK_EQ(sleep10_result, -ECANCELED);
    CHECK(!weft_task_cancelled(t)); /* it swallowed the cancel and returned 0 */
    weft_task_release(t);
    return 0;
}

static void test_uncancel_after_delivery(void)
{
    CHECK_EQ(run_virtual(delivered_main, NULL), 0);
}

/* ---- messages and counting ---- */

static int msg_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&t, sleep10, NULL), 0);
    CHECK(weft_task_cancel_message(t) == NULL);
    CHECK(weft_task_cancel(t, "first"));
    CHECK(weft_task_cancel(t, NULL));
    CHECK(weft_task_cancel(t, "third"));
    CHECK_EQ(weft_task_cancelling(t), 3);
    CHECK_STR(weft_task_cancel_message(t), "third");
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_STR(weft_task_cancel_message(t), "third");
    CHECK_EQ(weft_task_cancelling(t), 3);
    CHECK(!weft_task_cancel(t, "late")); /* done: refused, nothing recorded */
    CHECK_EQ(weft_task_cancelling(t), 3);
    CHECK_STR(weft_task_cancel_message(t), "third");
    weft_task_release(t);
    return 0;
}

static void test_cancel_message_and_count(void)
{
    CHECK_EQ(run_virtual(msg_main, NULL), 0);
}

/* ---- one request = one -ECANCELED; cleanup may block again; swallow and go on ---- */

static int64_t cleanup_done_at;

static int cleanup_task(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(10), -ECANCELED);
    /* Cleanup: more blocking calls work normally. */
    CHECK_EQ(weft_sleep(1), 0);
    CHECK_EQ(weft_yield(), 0);
    cleanup_done_at = weft_time(NULL);
    return -ECANCELED; /* re-raise */
}

static int swallow_task(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(10), -ECANCELED);
    CHECK_EQ(weft_sleep(2), 0);
    return 5; /* swallowed: the task goes on and ends normally */
}

static int cleanup_main(void *arg)
{
    (void)arg;
    weft_task_t *s;
    CHECK_EQ(weft_spawn(&t, cleanup_task, NULL), 0);
    CHECK_EQ(weft_spawn(&s, swallow_task, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK(weft_task_cancel(s, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    CHECK_EQ(cleanup_done_at, 1000000000);
    CHECK_EQ(weft_join(s), 5);
    CHECK(!weft_task_cancelled(s));
    CHECK_EQ(weft_task_cancelling(s), 1); /* nobody uncancelled: the count stays */
    CHECK_EQ(weft_time(NULL), 2000000000);
    weft_task_release(t);
    weft_task_release(s);
    return 0;
}

static void test_cancel_cleanup_and_swallow(void)
{
    CHECK_EQ(run_virtual(cleanup_main, NULL), 0);
}

/* ---- forwarding to an awaited task ---- */

static int inner_swallow;
static int inner_saw;

static int inner(void *arg)
{
    (void)arg;
    inner_saw = weft_sleep(10);
    if (inner_saw == -ECANCELED && inner_swallow)
        return 7;
    return inner_saw;
}

static int joiner(void *arg)
{
    return weft_join(arg);
}

static int forward_main(void *arg)
{
    (void)arg;
    weft_task_t *in, *out;
    /* outer joins inner; cancelling outer cancels inner; outer's fate follows inner's. */
    inner_swallow = 0;
    CHECK_EQ(weft_spawn(&in, inner, NULL), 0);
    CHECK_EQ(weft_spawn(&out, joiner, in), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(out, "fwd"));
    CHECK_EQ(weft_task_cancelling(out), 1);
    CHECK_EQ(weft_task_cancelling(in), 1); /* forwarded */
    CHECK_STR(weft_task_cancel_message(in), "fwd");
    CHECK_EQ(weft_join(out), -ECANCELED);
    CHECK_EQ(inner_saw, -ECANCELED);
    CHECK(weft_task_cancelled(in));
    CHECK(weft_task_cancelled(out));
    weft_task_release(in);
    weft_task_release(out);

    /* Inner swallows the cancel and returns 7: outer gets 7 and is not cancelled (asyncio). */
    inner_swallow = 1;
    CHECK_EQ(weft_spawn(&in, inner, NULL), 0);
    CHECK_EQ(weft_spawn(&out, joiner, in), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(out, NULL));
    CHECK_EQ(weft_join(out), 7);
    CHECK(!weft_task_cancelled(out));
    CHECK(!weft_task_cancelled(in));
    weft_task_release(in);
    weft_task_release(out);

    /* A chain: a joins b joins c; cancelling a reaches c. */
    inner_swallow = 0;
    weft_task_t *c, *b, *a;
    CHECK_EQ(weft_spawn(&c, inner, NULL), 0);
    CHECK_EQ(weft_spawn(&b, joiner, c), 0);
    CHECK_EQ(weft_spawn(&a, joiner, b), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(a, NULL));
    CHECK_EQ(weft_task_cancelling(c), 1);
    CHECK_EQ(weft_join(a), -ECANCELED);
    CHECK(weft_task_cancelled(a) && weft_task_cancelled(b) && weft_task_cancelled(c));
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);

    /* Joining with a deadline: -ETIMEDOUT, the joined task keeps running. */
    inner_swallow = 0;
    CHECK_EQ(weft_spawn(&in, inner, NULL), 0);
    CHECK_EQ(weft_join_dl(in, weft_deadline_in(1.0)), -ETIMEDOUT);
    CHECK(!weft_task_done(in));
    CHECK_EQ(weft_task_cancelling(in), 0);
    CHECK_EQ(weft_join(in), 0);
    CHECK_EQ(inner_saw, 0);
    weft_task_release(in);
    return 0;
}

static void test_cancel_forwards_to_awaited_task(void)
{
    CHECK_EQ(run_virtual(forward_main, NULL), 0);
}

/* ---- shield ---- */

static int inner_done;

static int inner_work(void *arg)
{
    (void)arg;
    int r = weft_sleep(5);
    inner_done = 1;
    return r < 0 ? r : 99;
}

static int shielder(void *arg)
{
    return weft_shield(arg);
}

static int shield_main(void *arg)
{
    (void)arg;
    weft_task_t *in, *out;
    inner_done = 0;
    CHECK_EQ(weft_spawn(&in, inner_work, NULL), 0);
    CHECK_EQ(weft_spawn(&out, shielder, in), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(out, NULL));
    CHECK_EQ(weft_task_cancelling(in), 0); /* not forwarded */
    CHECK_EQ(weft_join(out), -ECANCELED);  /* the caller gets -ECANCELED at once */
    CHECK_EQ(weft_time(NULL), 0);
    CHECK(weft_task_cancelled(out));
    CHECK(!weft_task_done(in));
    CHECK_EQ(weft_join(in), 99); /* the inner task keeps running and completes */
    CHECK_EQ(inner_done, 1);
    CHECK_EQ(weft_time(NULL), 5000000000LL);
    weft_task_release(in);
    weft_task_release(out);

    /* test_shield_cancel_inner: cancelling the inner task cancels the shielded caller. */
    CHECK_EQ(weft_spawn(&in, inner_work, NULL), 0);
    CHECK_EQ(weft_spawn(&out, shielder, in), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(in, NULL));
    CHECK_EQ(weft_join(out), -ECANCELED);
    CHECK(weft_task_cancelled(in));
    CHECK(weft_task_cancelled(out));
    weft_task_release(in);
    weft_task_release(out);
    return 0;
}

static void test_shield(void)
{
    CHECK_EQ(run_virtual(shield_main, NULL), 0);
}

static int shielded_await(void *arg)
{
    return weft_future_await_shielded(arg);
}

static int shield_future_main(void *arg)
{
    (void)arg;
    weft_future_t *f;
    weft_task_t *w;
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_spawn(&w, shielded_await, f), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(w, NULL));
    CHECK_EQ(weft_join(w), -ECANCELED);
    CHECK(!weft_future_done(f)); /* not forwarded */
    weft_task_release(w);
    /* Completed normally, the shielded await returns the value. */
    CHECK_EQ(weft_spawn(&w, shielded_await, f), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_set_result(f, 8), 0);
    CHECK_EQ(weft_join(w), 8);
    weft_task_release(w);
    weft_future_release(f);
    return 0;
}

static void test_shield_future(void)
{
    CHECK_EQ(run_virtual(shield_future_main, NULL), 0);
}

/* ---- a task cancelled before it started never runs its function ---- */

static int ran;

static int must_not_run(void *arg)
{
    (void)arg;
    ran = 1;
    return 0;
}

static weft_task_t *later;

static int join_later(void *arg)
{
    (void)arg;
    return weft_join(later);
}

static void cancel_cb(void *arg)
{
    CHECK(weft_task_cancel(arg, NULL));
}

static int unstarted_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    ran = 0;
    CHECK_EQ(weft_spawn(&a, must_not_run, NULL), 0);
    CHECK(weft_task_cancel(a, "early"));
    CHECK(!weft_task_done(a)); /* ends at its first step, not inline */
    CHECK_EQ(weft_join(a), -ECANCELED);
    CHECK_EQ(ran, 0);
    CHECK(weft_task_cancelled(a));
    CHECK_STR(weft_task_cancel_message(a), "early");
    weft_task_release(a);

    /* The joiner is cancelled while it waits for a task that has not started yet: the request
     * is forwarded and that task ends without running. Queue order: b, cancel_b, a. */
    CHECK_EQ(weft_spawn(&b, join_later, NULL), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, b), 0);
    CHECK_EQ(weft_spawn(&a, must_not_run, NULL), 0);
    later = a;
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK_EQ(ran, 0);
    CHECK(weft_task_cancelled(a));
    CHECK(weft_task_cancelled(b));
    weft_task_release(a);
    weft_task_release(b);

    /* Cancel then uncancel before its first step: it runs normally. */
    CHECK_EQ(weft_spawn(&a, must_not_run, NULL), 0);
    CHECK(weft_task_cancel(a, NULL));
    CHECK_EQ(weft_task_uncancel(a), 0);
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(ran, 1);
    CHECK(!weft_task_cancelled(a));
    weft_task_release(a);
    return 0;
}

static void test_cancel_unstarted_task(void)
{
    CHECK_EQ(run_virtual(unstarted_main, NULL), 0);
}

TEST_MAIN(test_cancel_task_catching, test_cancel_task_ignoring, test_cancel_at_end,
          test_cancel_inner_future, test_cancel_both_task_and_inner_future,
          test_task_awaits_on_itself, test_cancelling, test_uncancel_basic,
          test_uncancel_resets_must_cancel, test_cancel_ready_task, test_uncancel_after_delivery,
          test_cancel_message_and_count, test_cancel_cleanup_and_swallow,
          test_cancel_forwards_to_awaited_task, test_shield, test_shield_future,
          test_cancel_unstarted_task)
