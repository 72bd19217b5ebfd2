/*
 * Condition: ports of CPython 3.13 test_locks.py ConditionTests (checklist item 43): the lock is
 * held again whenever wait returns, cancellation keeps its message, notifications are not lost.
 */
#include "synctest.h"

/* The private layout behind the public storage, read the way the library reads it. */
static int cond_waiters(void *c)
{
    return nlinked(&((struct weft__cond *)c)->waiters);
}

#define COND_WAITERS(c) cond_waiters(c)

static weft_cond_t cond;
static int result[8];
static int nresult;

static void cancel_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
}

static void release_cb(void *arg)
{
    CHECK_EQ(weft_cond_release(arg), 0);
}

/* acquire, wait, record the tag; keeps the lock (test_wait) or releases it (release != 0). */
struct waiter_arg {
    int tag;
    int release;
};

static int cond_waiter(void *arg)
{
    struct waiter_arg *a = arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    int r = weft_cond_wait(&cond);
    CHECK(weft_cond_locked(&cond));
    if (r == 0)
        result[nresult++] = a->tag;
    if (a->release)
        CHECK_EQ(weft_cond_release(&cond), 0);
    return r < 0 ? r : 1;
}

static int wait_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_cond_init(&cond, NULL);
    struct waiter_arg a[3] = {{1, 0}, {2, 0}, {3, 0}};
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], cond_waiter, &a[i]), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK(!weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK_EQ(result[0], 1);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_notify(&cond, 2), 2);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 2);
    CHECK_EQ(result[1], 2);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 3);
    CHECK_EQ(result[2], 3);
    CHECK(weft_cond_locked(&cond));
    for (int i = 0; i < 3; i++) {
        CHECK(weft_task_done(t[i]));
        CHECK_EQ(weft_task_result(t[i]), 1);
        weft_task_release(t[i]);
    }
    return 0;
}

static void test_wait(void)
{
    CHECK_EQ(run_virtual(wait_main, NULL), 0);
}

static int plain_wait(void *arg)
{
    (void)arg;
    return weft_cond_wait(&cond);
}

static int wait_cancel_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, plain_wait, NULL), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, t), 0);
    /* Locks are not owned: the task waits on the lock we hold (releasing it), then is cancelled. */
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK_EQ(COND_WAITERS(&cond), 0);
    CHECK(weft_cond_locked(&cond));
    return 0;
}

static void test_wait_cancel(void)
{
    CHECK_EQ(run_virtual(wait_cancel_main, NULL), 0);
}

/* The waiter in test_wait_cancel needs the lock to wait: it acquires first. */
static int acquire_and_wait(void *arg)
{
    (void)arg;
    int r = weft_cond_acquire(&cond);
    if (r < 0)
        return r;
    r = weft_cond_wait(&cond);
    CHECK(weft_cond_locked(&cond));
    return r;
}

static int wait_cancel_waiting_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, acquire_and_wait, NULL), 0);
    weft_yield();
    CHECK_EQ(COND_WAITERS(&cond), 1);
    CHECK(!weft_cond_locked(&cond));
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, t), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK_EQ(COND_WAITERS(&cond), 0);
    CHECK(weft_cond_locked(&cond)); /* re-acquired by the cancelled waiter, never released */
    return 0;
}

static void test_wait_cancel_while_waiting(void)
{
    CHECK_EQ(run_virtual(wait_cancel_waiting_main, NULL), 0);
}

static int wait_cancel_contested_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, acquire_and_wait, NULL), 0);
    weft_yield();
    CHECK(!weft_cond_locked(&cond));
    /* Notify, but contest the lock before cancelling. */
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    weft_loop_t *loop = weft_loop_current();
    CHECK_EQ(weft_call_soon(loop, cancel_cb, t), 0);
    CHECK_EQ(weft_call_soon(loop, release_cb, &cond), 0);
    int r = weft_join(t);
    CHECK(r == 0 || r == -ECANCELED);
    CHECK(weft_cond_locked(&cond));
    weft_task_release(t);
    return 0;
}

static void test_wait_cancel_contested(void)
{
    CHECK_EQ(run_virtual(wait_cancel_contested_main, NULL), 0);
}

static int waited;

static int wait_on_cond(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    waited = 1;
    int r = weft_cond_wait(&cond);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_release(&cond), 0);
    return r;
}

static int wait_cancel_after_notify_main(void *arg)
{
    (void)arg;
    waited = 0;
    weft_cond_init(&cond, NULL);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, wait_on_cond, NULL), 0);
    weft_yield(); /* start waiting */
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    weft_yield(); /* get to acquire() */
    weft_task_cancel(w, NULL);
    weft_yield(); /* activate the cancellation */
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield(); /* the cancellation surfaces */
    CHECK(weft_task_cancelled(w));
    CHECK(waited);
    CHECK(!weft_cond_locked(&cond));
    weft_task_release(w);
    return 0;
}

static void test_wait_cancel_after_notify(void)
{
    CHECK_EQ(run_virtual(wait_cancel_after_notify_main, NULL), 0);
}

static bool pred_false(void *arg)
{
    (void)arg;
    return false;
}

static bool pred_true(void *arg)
{
    (void)arg;
    return true;
}

static int wait_unacquired_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    CHECK_EQ(weft_cond_wait(&cond), -EPERM);
    /* wait_for checks the predicate first */
    CHECK_EQ(weft_cond_wait_for(&cond, pred_true, NULL), 0);
    CHECK_EQ(weft_cond_wait_for(&cond, pred_false, NULL), -EPERM);
    CHECK_EQ(weft_cond_wait(NULL), -EINVAL);
    CHECK_EQ(weft_cond_wait_for(&cond, NULL, NULL), -EINVAL);
    return 0;
}

static void test_wait_unacquired(void)
{
    CHECK_EQ(run_virtual(wait_unacquired_main, NULL), 0);
}

static bool presult;

static bool get_presult(void *arg)
{
    (void)arg;
    return presult;
}

static int wait_for_c1(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_wait_for(&cond, get_presult, NULL), 0);
    result[nresult++] = 1;
    CHECK_EQ(weft_cond_release(&cond), 0);
    return 1;
}

static int wait_for_main(void *arg)
{
    (void)arg;
    nresult = 0;
    presult = false;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, wait_for_c1, NULL), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    presult = true;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK(weft_task_done(t));
    CHECK_EQ(weft_task_result(t), 1);
    weft_task_release(t);
    return 0;
}

static void test_wait_for(void)
{
    CHECK_EQ(run_virtual(wait_for_main, NULL), 0);
}

static int notify_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_cond_init(&cond, NULL);
    struct waiter_arg a[3] = {{1, 1}, {2, 1}, {3, 1}};
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], cond_waiter, &a[i]), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    CHECK_EQ(weft_cond_notify(&cond, 2048), 1);
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(result[i], i + 1);
        CHECK_EQ(weft_join(t[i]), 1);
        weft_task_release(t[i]);
    }
    return 0;
}

static void test_notify(void)
{
    CHECK_EQ(run_virtual(notify_main, NULL), 0);
}

static int notify_all_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_cond_init(&cond, NULL);
    struct waiter_arg a[2] = {{1, 1}, {2, 1}};
    weft_task_t *t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_spawn(&t[i], cond_waiter, &a[i]), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify_all(&cond), 2);
    CHECK_EQ(weft_cond_release(&cond), 0);
    weft_yield();
    CHECK_EQ(nresult, 2);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(result[i], i + 1);
        CHECK_EQ(weft_join(t[i]), 1);
        weft_task_release(t[i]);
    }
    return 0;
}

static void test_notify_all(void)
{
    CHECK_EQ(run_virtual(notify_all_main, NULL), 0);
}

static void test_notify_unacquired(void)
{
    weft_cond_init(&cond, NULL);
    CHECK_EQ(weft_cond_notify(&cond, 1), -EPERM);
    CHECK_EQ(weft_cond_notify_all(&cond), -EPERM);
}

static int explicit_lock_check(weft_lock_t *lock, weft_cond_t *c)
{
    CHECK(!weft_lock_locked(lock));
    CHECK(!weft_cond_locked(c));
    CHECK_EQ(weft_cond_acquire(c), 0);
    CHECK(weft_lock_locked(lock));
    CHECK(weft_cond_locked(c));
    CHECK_EQ(weft_cond_release(c), 0);
    CHECK(!weft_lock_locked(lock));
    CHECK(!weft_cond_locked(c));
    CHECK_EQ(weft_lock_acquire(lock), 0);
    CHECK(weft_lock_locked(lock));
    CHECK(weft_cond_locked(c));
    CHECK_EQ(weft_lock_release(lock), 0);
    CHECK(!weft_cond_locked(c));
    return 0;
}

static weft_cond_t zero_cond;

static int explicit_lock_main(void *arg)
{
    (void)arg;
    weft_lock_t lock;
    weft_cond_t c1, c2;
    weft_lock_init(&lock);
    weft_cond_init(&c1, &lock);
    weft_cond_init(&c2, &lock);
    explicit_lock_check(&lock, &c1);
    explicit_lock_check(&lock, &c2);
    /* Two conditions on one lock: waiting on one and notifying it through the other's lock. */
    CHECK_EQ(weft_cond_acquire(&c1), 0);
    CHECK_EQ(weft_cond_notify(&c2, 1), 0);
    CHECK_EQ(weft_cond_release(&c2), 0);
    /* A zero-initialised condition works with its own lock. */
    CHECK(!weft_cond_locked(&zero_cond));
    CHECK_EQ(weft_cond_acquire(&zero_cond), 0);
    CHECK_EQ(weft_cond_wait_dl(&zero_cond, weft_time(NULL) + 5), -ETIMEDOUT);
    CHECK(weft_cond_locked(&zero_cond));
    CHECK_EQ(weft_cond_release(&zero_cond), 0);
    return 0;
}

static void test_explicit_lock(void)
{
    CHECK_EQ(run_virtual(explicit_lock_main, NULL), 0);
}

static int timeout_in_block_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_cond_wait_dl(&cond, weft_deadline_in(0.5)), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, 500000000);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(COND_WAITERS(&cond), 0);
    CHECK_EQ(weft_cond_release(&cond), 0);
    return 0;
}

static void test_timeout_in_block(void)
{
    CHECK_EQ(run_virtual(timeout_in_block_main, NULL), 0);
}

static bool wake;

static bool get_wake(void *arg)
{
    (void)arg;
    return wake;
}

static int cancelled_func(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    int r = weft_cond_wait_for(&cond, get_wake, NULL);
    CHECK_EQ(r, -ECANCELED);
    CHECK(weft_cond_locked(&cond));
    CHECK_EQ(weft_cond_release(&cond), 0);
    return r;
}

static int cancelled_error_wakeup_main(void *arg)
{
    (void)arg;
    wake = false;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, cancelled_func, NULL), 0);
    weft_yield();
    weft_task_cancel(t, "foo"); /* cancelled while waiting on the condition */
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_STR(weft_task_cancel_message(t), "foo");
    weft_task_release(t);
    return 0;
}

static void test_cancelled_error_wakeup(void)
{
    CHECK_EQ(run_virtual(cancelled_error_wakeup_main, NULL), 0);
}

static int cancelled_error_re_aquire_main(void *arg)
{
    (void)arg;
    wake = false;
    weft_cond_init(&cond, NULL);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, cancelled_func, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    wake = true;
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    weft_yield();
    /* The task now waits to re-acquire the lock: cancel it there. */
    weft_task_cancel(t, "foo");
    CHECK_EQ(weft_cond_release(&cond), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_STR(weft_task_cancel_message(t), "foo");
    weft_task_release(t);
    CHECK(!weft_cond_locked(&cond));
    return 0;
}

static void test_cancelled_error_re_aquire(void)
{
    CHECK_EQ(run_virtual(cancelled_error_re_aquire_main, NULL), 0);
}

static int state;

static bool state_nonzero(void *arg)
{
    (void)arg;
    return state != 0;
}

static bool state_zero(void *arg)
{
    (void)arg;
    return state == 0;
}

static int consumer(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    int r;
    for (;;) {
        r = weft_cond_wait_for(&cond, state_nonzero, NULL);
        CHECK(weft_cond_locked(&cond));
        if (r < 0 || state < 0)
            break;
        state--;
    }
    CHECK_EQ(weft_cond_release(&cond), 0);
    return r;
}

/* relock: 0 = cancel while the woken consumer waits to run, 1 = while it re-acquires. */
static int cancelled_wakeup(int relock)
{
    state = 0;
    weft_cond_init(&cond, NULL);
    weft_task_t *c[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_spawn(&c[i], consumer, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    state++;
    CHECK_EQ(weft_cond_notify(&cond, 1), 1);
    if (relock)
        weft_yield(); /* the woken consumer now waits for the lock */
    weft_task_cancel(c[0], NULL);
    /* The item must still be consumed, by the other consumer. */
    int r = weft_cond_wait_for_dl(&cond, state_zero, NULL, weft_deadline_in(0.01));
    CHECK(r == 0 || r == -ETIMEDOUT);
    CHECK_EQ(state, 0);
    state = -1;
    CHECK(weft_cond_notify_all(&cond) >= 1);
    CHECK_EQ(weft_cond_release(&cond), 0);
    CHECK_EQ(weft_join(c[1]), 0);
    CHECK_EQ(weft_join(c[0]), -ECANCELED);
    for (int i = 0; i < 2; i++)
        weft_task_release(c[i]);
    return 0;
}

static int cancelled_wakeup_main(void *arg)
{
    return cancelled_wakeup((int)(long)arg);
}

static void test_cancelled_wakeup(void)
{
    CHECK_EQ(run_virtual(cancelled_wakeup_main, (void *)0L), 0);
}

static void test_cancelled_wakeup_relock(void)
{
    CHECK_EQ(run_virtual(cancelled_wakeup_main, (void *)1L), 0);
}

/* A notified waiter that times out while re-acquiring keeps the notification alive. */
static int dl_consumer(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    int r = weft_cond_wait_dl(&cond, weft_deadline_in(1.0));
    CHECK(weft_cond_locked(&cond));
    if (r == 0)
        result[nresult++] = 1;
    CHECK_EQ(weft_cond_release(&cond), 0);
    return r;
}

static int notified_then_timeout_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_cond_init(&cond, NULL);
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, dl_consumer, NULL), 0);
    CHECK_EQ(weft_spawn(&b, acquire_and_wait, NULL), 0);
    weft_yield();
    CHECK_EQ(COND_WAITERS(&cond), 2);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    CHECK_EQ(weft_cond_notify(&cond, 1), 1); /* to a */
    CHECK_EQ(weft_sleep(2.0), 0);            /* a re-acquires only after its deadline */
    CHECK_EQ(weft_cond_release(&cond), 0);
    CHECK_EQ(weft_join(a), 0); /* the deadline bounds the wait, not the re-acquisition */
    CHECK_EQ(nresult, 1);
    CHECK_EQ(weft_join_dl(b, weft_deadline_in(1.0)), -ETIMEDOUT); /* not notified */
    weft_task_cancel(b, NULL);
    CHECK_EQ(weft_join(b), -ECANCELED);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_notified_then_deadline(void)
{
    CHECK_EQ(run_virtual(notified_then_timeout_main, NULL), 0);
}

TEST_MAIN(test_wait, test_wait_cancel, test_wait_cancel_while_waiting, test_wait_cancel_contested,
          test_wait_cancel_after_notify, test_wait_unacquired, test_wait_for, test_notify,
          test_notify_all, test_notify_unacquired, test_explicit_lock, test_timeout_in_block,
          test_cancelled_error_wakeup, test_cancelled_error_re_aquire, test_cancelled_wakeup,
          test_cancelled_wakeup_relock, test_notified_then_deadline)
