/*
 * Futures: one-shot outcomes; done callbacks always run from the loop (never inline, even when
 * added to a future that is already done), in registration order; result, error, cancelled;
 * reading a pending future, setting twice, removing callbacks, awaiting with a deadline.
 */
#include "test.h"

static int calls[16];
static int ncalls;
static weft_future_t *seen_fut;

static void cb(weft_future_t *f, void *arg)
{
    seen_fut = f;
    CHECK(weft_future_done(f)); /* only ever called once done */
    calls[ncalls++] = (int)(long)arg;
}

static int basic_main(void *arg)
{
    (void)arg;
    weft_future_t *f;
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK(!weft_future_done(f));
    CHECK(!weft_future_cancelled(f));
    CHECK_EQ(weft_future_result(f), -EINVAL); /* pending */
    CHECK_EQ(weft_future_set_result(f, -1), -EINVAL);
    CHECK_EQ(weft_future_set_error(f, 5), -EINVAL);
    CHECK_EQ(weft_future_set_error(f, -ECANCELED), -EINVAL); /* use weft_future_cancel */
    CHECK_EQ(weft_future_set_result(f, 17), 0);
    CHECK(weft_future_done(f));
    CHECK(!weft_future_cancelled(f));
    CHECK_EQ(weft_future_result(f), 17);
    CHECK_EQ(weft_future_result(f), 17); /* reading does not consume */
    /* One-shot: every further completion is refused and changes nothing. */
    CHECK_EQ(weft_future_set_result(f, 18), -EALREADY);
    CHECK_EQ(weft_future_set_error(f, -EIO), -EALREADY);
    CHECK(!weft_future_cancel(f, NULL));
    CHECK_EQ(weft_future_result(f), 17);
    CHECK_EQ(weft_future_await(f), 17); /* done: no suspension needed */
    weft_future_release(f);

    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_set_error(f, -EPIPE), 0);
    CHECK_EQ(weft_future_result(f), -EPIPE);
    CHECK(!weft_future_cancelled(f));
    CHECK_EQ(weft_future_set_result(f, 1), -EALREADY);
    weft_future_release(f);

    CHECK_EQ(weft_future_new(&f), 0);
    CHECK(weft_future_cancel(f, "bye"));
    CHECK(weft_future_done(f));
    CHECK(weft_future_cancelled(f));
    CHECK_EQ(weft_future_result(f), -ECANCELED);
    CHECK(!weft_future_cancel(f, NULL));
    CHECK_EQ(weft_future_set_result(f, 1), -EALREADY);
    CHECK_EQ(weft_future_await(f), -ECANCELED);
    weft_future_release(f);
    return 0;
}

static void test_future_basic(void)
{
    CHECK_EQ(run_virtual(basic_main, NULL), 0);
}

static int callbacks_main(void *arg)
{
    (void)arg;
    weft_future_t *f;
    ncalls = 0;
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)1), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)2), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)3), 0);
    CHECK_EQ(weft_future_set_result(f, 5), 0);
    CHECK_EQ(ncalls, 0); /* never inline */
    /* Added to a done future: scheduled, still not inline, after the first three. */
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)4), 0);
    CHECK_EQ(ncalls, 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(ncalls, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(calls[i], i + 1);
    CHECK(seen_fut == f);
    /* The callbacks hold their own reference: releasing before they run is fine. */
    ncalls = 0;
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)5), 0);
    weft_future_release(f);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(ncalls, 1);
    CHECK_EQ(calls[0], 5);
    return 0;
}

static void test_future_callbacks_never_inline(void)
{
    CHECK_EQ(run_virtual(callbacks_main, NULL), 0);
}

static int remove_main(void *arg)
{
    (void)arg;
    weft_future_t *f;
    ncalls = 0;
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)1), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)2), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)1), 0);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)3), 0);
    CHECK_EQ(weft_future_remove_done_callback(f, cb, (void *)1), 2); /* every registration */
    CHECK_EQ(weft_future_remove_done_callback(f, cb, (void *)1), 0);
    CHECK_EQ(weft_future_remove_done_callback(f, cb, (void *)9), 0);
    CHECK(weft_future_cancel(f, NULL));
    /* Once scheduled it can no longer be removed. */
    CHECK_EQ(weft_future_remove_done_callback(f, cb, (void *)2), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(ncalls, 2);
    CHECK_EQ(calls[0], 2);
    CHECK_EQ(calls[1], 3);
    weft_future_release(f);
    return 0;
}

static void test_future_remove_done_callback(void)
{
    CHECK_EQ(run_virtual(remove_main, NULL), 0);
}

/* ---- awaiting ---- */

static weft_future_t *shared;

static int awaiter(void *arg)
{
    (void)arg;
    return weft_future_await(shared);
}

static void set_later(void *arg)
{
    CHECK_EQ(weft_future_set_result(shared, (int)(long)arg), 0);
}

static int await_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    weft_task_t *t[3];
    CHECK_EQ(weft_future_new(&shared), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], awaiter, NULL), 0);
    CHECK_EQ(weft_call_later(l, NULL, 2.0, set_later, (void *)33), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 33); /* every waiter gets the outcome */
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_time(NULL), 2000000000LL);
    weft_future_release(shared);

    /* await_dl: -ETIMEDOUT, and the future is left alone (not cancelled). */
    CHECK_EQ(weft_future_new(&shared), 0);
    CHECK_EQ(weft_future_await_dl(shared, weft_deadline_in(1.0)), -ETIMEDOUT);
    CHECK(!weft_future_done(shared));
    CHECK_EQ(weft_time(NULL), 3000000000LL);
    CHECK_EQ(weft_call_later(l, NULL, 1.0, set_later, (void *)4), 0);
    CHECK_EQ(weft_future_await_dl(shared, weft_deadline_in(5.0)), 4);
    /* A deadline already past on a done future still gives the outcome. */
    CHECK_EQ(weft_future_await_dl(shared, 0), 4);
    weft_future_release(shared);

    /* An error outcome is returned to the awaiter. */
    CHECK_EQ(weft_future_new(&shared), 0);
    weft_task_t *a;
    CHECK_EQ(weft_spawn(&a, awaiter, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_future_set_error(shared, -ECONNRESET), 0);
    CHECK_EQ(weft_join(a), -ECONNRESET);
    weft_task_release(a);
    weft_future_release(shared);
    return 0;
}

static void test_future_await(void)
{
    CHECK_EQ(run_virtual(await_main, NULL), 0);
}

/* Cancelling a task that awaits a future cancels the future (asyncio forwards the cancel). */
static int cancel_fwd_main(void *arg)
{
    (void)arg;
    weft_task_t *a;
    CHECK_EQ(weft_future_new(&shared), 0);
    CHECK_EQ(weft_spawn(&a, awaiter, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(a, "stop"));
    CHECK(weft_future_cancelled(shared)); /* forwarded at once */
    CHECK_EQ(weft_join(a), -ECANCELED);
    CHECK(weft_task_cancelled(a));
    weft_task_release(a);
    weft_future_release(shared);
    return 0;
}

static void test_future_cancel_forwarded(void)
{
    CHECK_EQ(run_virtual(cancel_fwd_main, NULL), 0);
}

/* An error nobody read is reported when the last reference goes; one that was read is not. */
static int reports;

static void on_error(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)arg;
    CHECK_STR(info->message, "future error never retrieved");
    CHECK_EQ(info->error, -EIO);
    reports++;
}

static int unretrieved_main(void *arg)
{
    (void)arg;
    weft_future_t *f;
    weft_loop_set_error_handler(weft_loop_current(), on_error, NULL);
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_set_error(f, -EIO), 0);
    weft_future_release(f);
    CHECK_EQ(reports, 1);
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_set_error(f, -EIO), 0);
    CHECK_EQ(weft_future_result(f), -EIO);
    weft_future_release(f);
    CHECK_EQ(reports, 1);
    return 0;
}

static void test_future_error_never_retrieved(void)
{
    CHECK_EQ(run_virtual(unretrieved_main, NULL), 0);
}

/* A task's future: observable with the future calls; only the task's end may complete it. */
static int seven(void *arg)
{
    (void)arg;
    return 7;
}

static int task_future_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    ncalls = 0;
    CHECK_EQ(weft_spawn(&t, seven, NULL), 0);
    weft_future_t *f = weft_task_future(t);
    CHECK(f != NULL);
    CHECK_EQ(weft_future_set_result(f, 1), -EINVAL);
    CHECK_EQ(weft_future_set_error(f, -EIO), -EINVAL);
    CHECK_EQ(weft_future_add_done_callback(f, cb, (void *)8), 0);
    CHECK_EQ(weft_future_await(f), 7);
    CHECK(weft_future_done(f));
    CHECK_EQ(weft_future_result(f), 7);
    /* Registrations are served in order: the callback was queued before this waiter. */
    CHECK_EQ(ncalls, 1);
    CHECK(seen_fut == f);
    weft_task_release(t);
    return 0;
}

static void test_task_future(void)
{
    CHECK_EQ(run_virtual(task_future_main, NULL), 0);
}

static void test_future_misuse(void)
{
    weft_future_t *f = (weft_future_t *)1;
    CHECK_EQ(weft_future_new(&f), -EPERM); /* no loop */
    CHECK(f == NULL);
    CHECK_EQ(weft_future_new(NULL), -EINVAL);
    CHECK_EQ(weft_future_await(NULL), -EINVAL);
    CHECK_EQ(weft_future_result(NULL), -EINVAL);
    CHECK(!weft_future_done(NULL));
    CHECK(!weft_future_cancel(NULL, NULL));
    CHECK_EQ(weft_future_remove_done_callback(NULL, cb, NULL), 0);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_future_new(&f), 0);
    CHECK_EQ(weft_future_await(f), -EPERM); /* outside a task */
    CHECK_EQ(weft_future_await_dl(f, 0), -EPERM);
    CHECK_EQ(weft_future_await_shielded(f), -EPERM);
    CHECK_EQ(weft_future_add_done_callback(f, NULL, NULL), -EINVAL);
    /* A callback still registered when the loop closes is freed without running. */
    CHECK_EQ(weft_future_add_done_callback(f, cb, NULL), 0);
    weft_future_release(f);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* A future (and a task) may outlive its loop: releasing it afterwards must not touch the freed
 * loop, even to report an error nobody read. */
static weft_future_t *kept, *kept_pending;
static weft_task_t *kept_task;

static int fail_eio(void *arg)
{
    (void)arg;
    return -EIO;
}

static int outlive_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_future_new(&kept), 0);
    CHECK_EQ(weft_future_set_error(kept, -EIO), 0);
    CHECK_EQ(weft_future_new(&kept_pending), 0);
    CHECK_EQ(weft_future_add_done_callback(kept_pending, cb, NULL), 0);
    CHECK_EQ(weft_spawn(&kept_task, fail_eio, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_done(kept_task));
    return 0;
}

static void test_future_outlives_loop(void)
{
    CHECK_EQ(run_virtual(outlive_main, NULL), 0);
    CHECK(weft_future_done(kept));
    CHECK(weft_task_done(kept_task));
    /* Their loop is gone: nothing can be scheduled on it any more. */
    CHECK_EQ(weft_future_set_result(kept_pending, 1), -EINVAL);
    CHECK(!weft_future_cancel(kept_pending, NULL));
    CHECK(!weft_future_done(kept_pending));
    weft_future_release(kept_pending);
    CHECK_EQ(weft_future_add_done_callback(kept, cb, NULL), -EINVAL);
    CHECK_EQ(weft_future_add_done_callback(weft_task_future(kept_task), cb, NULL), -EINVAL);
    CHECK(!weft_future_cancel(kept, NULL));
    CHECK_EQ(weft_future_result(kept), -EIO);
    CHECK_EQ(weft_task_result(kept_task), -EIO);
    kept_task = weft_task_retain(kept_task);
    weft_task_release(kept_task);
    /* Both errors were never read: reported (to stderr, the loop being gone) at release. */
    weft_future_release(kept);
    weft_task_release(kept_task);
}

TEST_MAIN(test_future_basic, test_future_callbacks_never_inline, test_future_remove_done_callback,
          test_future_await, test_future_cancel_forwarded, test_future_error_never_retrieved,
          test_task_future, test_future_misuse, test_future_outlives_loop)
