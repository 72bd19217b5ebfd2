/*
 * Timeout scopes (weft_timeout_*) around the primitives' waits: a scope cuts a wait off through
 * cancellation, the scope turns it into -ETIMEDOUT, and a wake-up received just before the scope
 * fired is passed on. The primitives need nothing scope-specific; these tests check that.
 */
#include "test.h"

static weft_lock_t lock;
static weft_cond_t cond;
static weft_queue_t *q;
static weft_timeout_t scope1;

static int lock_in_scope(void *arg)
{
    weft_timeout_t *to = arg;
    weft_timeout_t local;
    if (to == NULL)
        to = &local;
    int r = weft_timeout_enter(to, 1.0);
    if (r < 0)
        return r;
    r = weft_lock_acquire(&lock);
    r = weft_timeout_exit(to, r);
    if (r == 0)
        CHECK_EQ(weft_lock_release(&lock), 0);
    return r;
}

static int lock_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, lock_in_scope, NULL), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_join(t), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, 1000000000);
    weft_task_release(t);
    /* The lock still works and nobody is queued. */
    CHECK_EQ(weft_lock_release(&lock), 0);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static void test_lock_acquire_in_scope(void)
{
    CHECK_EQ(run_virtual(lock_main, NULL), 0);
}

static void release_cb(void *arg)
{
    CHECK_EQ(weft_lock_release(arg), 0);
}

static int plain_locker(void *arg)
{
    (void)arg;
    int r = weft_lock_acquire(&lock);
    if (r == 0)
        CHECK_EQ(weft_lock_release(&lock), 0);
    return r;
}

/*
 * Woken by a release, then the scope fires before the task runs: the lock goes to the next.
 * The release is a timer callback due at the scope's deadline and armed before it, so in that
 * iteration the release runs first and the scope's cancellation second.
 */
static int woken_then_scope_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_timer_t tm;
    weft_timer_init(&tm);
    CHECK_EQ(weft_call_at(weft_loop_current(), &tm, weft_time(NULL) + 1000000000, release_cb,
                          &lock),
             0);
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_spawn(&t1, lock_in_scope, &scope1), 0); /* scope due with the release */
    CHECK_EQ(weft_spawn(&t2, plain_locker, NULL), 0);
    CHECK_EQ(weft_join(t1), -ETIMEDOUT);
    CHECK_EQ(weft_join_dl(t2, weft_deadline_in(5.0)), 0); /* got the hand-off t1 could not use */
    CHECK(!weft_lock_locked(&lock));
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_woken_then_scope_expired(void)
{
    CHECK_EQ(run_virtual(woken_then_scope_main, NULL), 0);
}

static int cond_in_scope(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.5), 0);
    int r = weft_timeout_exit(&to, weft_cond_wait(&cond));
    CHECK(weft_cond_locked(&cond)); /* re-acquired before the scope saw the result */
    CHECK_EQ(weft_cond_release(&cond), 0);
    return r;
}

static int cond_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, cond_in_scope, NULL), 0);
    CHECK_EQ(weft_join(t), -ETIMEDOUT);
    weft_task_release(t);
    CHECK(!weft_cond_locked(&cond));
    return 0;
}

static void test_cond_wait_in_scope(void)
{
    CHECK_EQ(run_virtual(cond_main, NULL), 0);
}

static int get_in_scope(void *arg)
{
    (void)arg;
    void *item;
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.25), 0);
    return weft_timeout_exit(&to, weft_queue_get(q, &item));
}

static int put_in_scope(void *arg)
{
    weft_timeout_t to;
    CHECK_EQ(weft_timeout_enter(&to, 0.25), 0);
    return weft_timeout_exit(&to, weft_queue_put(q, arg));
}

static int queue_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_queue_new(&q, 1), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, get_in_scope, NULL), 0);
    CHECK_EQ(weft_join(t), -ETIMEDOUT);
    weft_task_release(t);
    CHECK_EQ(weft_queue_put_nowait(q, (void *)1), 0);
    CHECK_EQ(weft_spawn(&t, put_in_scope, (void *)2), 0);
    CHECK_EQ(weft_join(t), -ETIMEDOUT);
    weft_task_release(t);
    CHECK_EQ(weft_queue_qsize(q), 1); /* the timed-out put left nothing behind */
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK(item == (void *)1);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_queue_in_scope(void)
{
    CHECK_EQ(run_virtual(queue_main, NULL), 0);
}

TEST_MAIN(test_lock_acquire_in_scope, test_woken_then_scope_expired, test_cond_wait_in_scope,
          test_queue_in_scope)
