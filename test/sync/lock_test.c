/*
 * Lock and Event: ports of CPython 3.13 test_locks.py LockTests / EventTests (checklist items
 * 40, 41, 44), plus deadlines, misuse and zero-initialised storage.
 */
#include "synctest.h"

/* The private layouts behind the public storage, read the way the library reads them. */
static int lock_waiters(void *lk)
{
    return nlinked(&((struct weft__lock *)lk)->waiters);
}

static int event_waiters(void *ev)
{
    return nlinked(&((struct weft__event *)ev)->waiters);
}

#define LOCK_WAITERS(lk) lock_waiters(lk)
#define EVENT_WAITERS(ev) event_waiters(ev)

static void cancel_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
}

static int result[16];
static int nresult;

/* ---- Lock ---- */

static weft_lock_t lock;

struct acq {
    int tag;
    int hold; /* release right after acquiring */
};

static int acquirer(void *arg)
{
    struct acq *a = arg;
    int r = weft_lock_acquire(&lock);
    if (r < 0)
        return r;
    result[nresult++] = a->tag;
    if (a->hold == 0)
        CHECK_EQ(weft_lock_release(&lock), 0);
    return 1;
}

static int acquire_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    struct acq a1 = {1, 1}, a2 = {2, 1}, a3 = {3, 1};
    weft_task_t *t1, *t2, *t3;
    CHECK_EQ(weft_spawn(&t1, acquirer, &a1), 0);
    CHECK_EQ(weft_spawn(&t2, acquirer, &a2), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK_EQ(result[0], 1);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK_EQ(weft_spawn(&t3, acquirer, &a3), 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    weft_yield();
    CHECK_EQ(nresult, 2);
    CHECK_EQ(result[1], 2);
    CHECK_EQ(weft_lock_release(&lock), 0);
    weft_yield();
    CHECK_EQ(nresult, 3);
    CHECK_EQ(result[2], 3);
    weft_task_t *ts[3] = {t1, t2, t3};
    for (int i = 0; i < 3; i++) {
        CHECK(weft_task_done(ts[i]));
        CHECK_EQ(weft_task_result(ts[i]), 1);
        weft_task_release(ts[i]);
    }
    CHECK(weft_lock_locked(&lock));
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static void test_acquire(void)
{
    CHECK_EQ(run_virtual(acquire_main, NULL), 0);
}

static int plain_acquire(void *arg)
{
    return weft_lock_acquire(arg);
}

static int acquire_cancel_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, plain_acquire, &lock), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, t), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(weft_task_cancelled(t));
    weft_task_release(t);
    CHECK_EQ(LOCK_WAITERS(&lock), 0);
    CHECK(weft_lock_locked(&lock));
    return 0;
}

static void test_acquire_cancel(void)
{
    CHECK_EQ(run_virtual(acquire_cancel_main, NULL), 0);
}

/* lockit(name, blocker): acquire, wait for the blocker future (if any), release. */
static int lockit(void *arg)
{
    weft_future_t *blocker = arg;
    int r = weft_lock_acquire(&lock);
    if (r < 0)
        return r;
    if (blocker != NULL)
        weft_future_await(blocker);
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static int cancel_race_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    weft_future_t *fa;
    CHECK_EQ(weft_future_new(&fa), 0);
    weft_task_t *ta, *tb, *tc;
    CHECK_EQ(weft_spawn(&ta, lockit, fa), 0);
    weft_yield();
    CHECK(weft_lock_locked(&lock));
    CHECK_EQ(weft_spawn(&tb, lockit, NULL), 0);
    weft_yield();
    CHECK_EQ(LOCK_WAITERS(&lock), 1);
    CHECK_EQ(weft_spawn(&tc, lockit, NULL), 0);
    weft_yield();
    CHECK_EQ(LOCK_WAITERS(&lock), 2);
    /* A is released and B cancelled at the same time: the lock must reach C. */
    CHECK_EQ(weft_future_set_result(fa, 0), 0);
    CHECK(weft_task_cancel(tb, NULL));
    weft_yield();
    CHECK(!weft_lock_locked(&lock));
    CHECK(weft_task_done(ta));
    CHECK(weft_task_cancelled(tb));
    CHECK_EQ(weft_join(tc), 0);
    CHECK(!weft_lock_locked(&lock));
    weft_task_release(ta);
    weft_task_release(tb);
    weft_task_release(tc);
    weft_future_release(fa);
    return 0;
}

static void test_cancel_race(void)
{
    CHECK_EQ(run_virtual(cancel_race_main, NULL), 0);
}

static int lock_count, call_count;
static weft_task_t *race_t1;

static int lockit_count(void *arg)
{
    (void)arg;
    call_count++;
    int r = weft_lock_acquire(&lock);
    if (r < 0)
        return r;
    lock_count++;
    return 0;
}

static void trigger(void *arg)
{
    (void)arg;
    weft_task_cancel(race_t1, NULL);
    CHECK_EQ(weft_lock_release(&lock), 0);
}

static int cancel_release_race_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    lock_count = call_count = 0;
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_task_t *t2, *t3;
    CHECK_EQ(weft_spawn(&race_t1, lockit_count, NULL), 0);
    CHECK_EQ(weft_spawn(&t2, lockit_count, NULL), 0);
    CHECK_EQ(weft_spawn(&t3, lockit_count, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_call_soon(weft_loop_current(), trigger, NULL), 0);
    CHECK_EQ(weft_join(race_t1), -ECANCELED);
    CHECK_EQ(lock_count, 1); /* only one acquisition */
    CHECK_EQ(call_count, 3);
    CHECK(weft_task_cancelled(race_t1) && weft_task_done(t2));
    weft_task_cancel(t3, NULL);
    weft_yield();
    CHECK(weft_task_cancelled(t3));
    weft_task_release(race_t1);
    weft_task_release(t2);
    weft_task_release(t3);
    return 0;
}

static void test_cancel_release_race(void)
{
    CHECK_EQ(run_virtual(cancel_release_race_main, NULL), 0);
}

static int finished_waiter_cancelled_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_task_t *tb, *tc;
    CHECK_EQ(weft_spawn(&tb, plain_acquire, &lock), 0);
    weft_yield();
    CHECK_EQ(LOCK_WAITERS(&lock), 1);
    /* A second waiter, then wake the first and cancel it: the second must get the lock. */
    CHECK_EQ(weft_spawn(&tc, plain_acquire, &lock), 0);
    weft_task_cancel(tb, NULL);
    CHECK_EQ(weft_lock_release(&lock), 0);
    weft_yield();
    CHECK(weft_lock_locked(&lock));
    CHECK(weft_task_cancelled(tb));
    CHECK_EQ(weft_join(tc), 0);
    weft_task_release(tb);
    weft_task_release(tc);
    return 0;
}

static void test_finished_waiter_cancelled(void)
{
    CHECK_EQ(run_virtual(finished_waiter_cancelled_main, NULL), 0);
}

/* Woken by release, then cancelled before it ran: the hand-off goes to the next waiter. */
static int woken_then_cancelled_main(void *arg)
{
    (void)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    weft_task_t *tb, *tc;
    CHECK_EQ(weft_spawn(&tb, plain_acquire, &lock), 0);
    CHECK_EQ(weft_spawn(&tc, plain_acquire, &lock), 0);
    weft_yield();
    CHECK_EQ(LOCK_WAITERS(&lock), 2);
    CHECK_EQ(weft_lock_release(&lock), 0); /* promises the lock to B */
    CHECK(!weft_lock_locked(&lock));
    weft_task_cancel(tb, NULL); /* B was woken but has not run */
    /* A newcomer must not barge in while the hand-off is pending. */
    CHECK_EQ(weft_lock_acquire_dl(&lock, weft_time(NULL) + 1000), -ETIMEDOUT);
    CHECK_EQ(weft_join(tb), -ECANCELED);
    CHECK_EQ(weft_join(tc), 0);
    CHECK(weft_lock_locked(&lock));
    CHECK_EQ(LOCK_WAITERS(&lock), 0);
    weft_task_release(tb);
    weft_task_release(tc);
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static void test_woken_then_cancelled(void)
{
    CHECK_EQ(run_virtual(woken_then_cancelled_main, NULL), 0);
}

static int release_not_acquired_main(void *arg)
{
    (void)arg;
    weft_lock_t l;
    weft_lock_init(&l);
    CHECK_EQ(weft_lock_release(&l), -EPERM);
    CHECK_EQ(weft_lock_acquire(&l), 0);
    CHECK(weft_lock_locked(&l));
    CHECK_EQ(weft_lock_release(&l), 0);
    CHECK(!weft_lock_locked(&l));
    CHECK_EQ(weft_lock_release(&l), -EPERM);
    CHECK_EQ(weft_lock_acquire(NULL), -EINVAL);
    CHECK_EQ(weft_lock_release(NULL), -EINVAL);
    return 0;
}

static void test_release_not_acquired(void)
{
    CHECK_EQ(run_virtual(release_not_acquired_main, NULL), 0);
}

static void test_outside_task(void)
{
    weft_lock_t l;
    weft_lock_init(&l);
    /* The fast path needs no task; waiting does. */
    CHECK_EQ(weft_lock_acquire(&l), 0);
    CHECK_EQ(weft_lock_acquire(&l), -EPERM);
    CHECK_EQ(weft_lock_release(&l), 0);
    weft_event_t ev;
    weft_event_init(&ev);
    CHECK_EQ(weft_event_wait(&ev), -EPERM);
    CHECK_EQ(weft_event_set(&ev), 0);
    CHECK_EQ(weft_event_wait(&ev), 0);
}

/* Deadline and timeout in the queue: the next waiter still gets the lock, in order. */
static int dl_waiter(void *arg)
{
    (void)arg;
    int r = weft_lock_acquire_dl(&lock, weft_time(NULL) + 5000000000LL);
    if (r < 0)
        return r;
    result[nresult++] = 9;
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static int deadline_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_lock_init(&lock);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_lock_acquire_dl(&lock, t0 + 1000000), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, 1000000);
    CHECK_EQ(LOCK_WAITERS(&lock), 0);
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, dl_waiter, NULL), 0);
    CHECK_EQ(weft_spawn(&b, dl_waiter, NULL), 0);
    weft_sleep(6.0); /* both time out at t0+5s */
    CHECK_EQ(weft_join(a), -ETIMEDOUT);
    CHECK_EQ(weft_join(b), -ETIMEDOUT);
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(LOCK_WAITERS(&lock), 0);
    CHECK_EQ(nresult, 0);
    /* A deadline in the past still takes a free lock (no suspension). */
    CHECK_EQ(weft_lock_release(&lock), 0);
    CHECK_EQ(weft_lock_acquire_dl(&lock, 0), 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static void test_acquire_deadline(void)
{
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
}

static weft_lock_t zero_lock;
static weft_event_t zero_event;

static int zero_main(void *arg)
{
    (void)arg;
    CHECK(!weft_lock_locked(&zero_lock));
    CHECK_EQ(weft_lock_acquire(&zero_lock), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, plain_acquire, &zero_lock), 0);
    weft_yield();
    CHECK_EQ(weft_lock_release(&zero_lock), 0);
    CHECK_EQ(weft_join(t), 0);
    CHECK(weft_lock_locked(&zero_lock));
    weft_task_release(t);
    CHECK(!weft_event_is_set(&zero_event));
    CHECK_EQ(weft_event_wait_dl(&zero_event, weft_time(NULL) + 10), -ETIMEDOUT);
    return 0;
}

static void test_zero_initialised(void)
{
    CHECK_EQ(run_virtual(zero_main, NULL), 0);
}

/* ---- Event ---- */

static weft_event_t ev;

static int ev_waiter(void *arg)
{
    int r = weft_event_wait(&ev);
    if (r < 0)
        return r;
    result[nresult++] = (int)(long)arg;
    return 1;
}

static int ev_wait_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_event_init(&ev);
    CHECK(!weft_event_is_set(&ev));
    weft_task_t *t1, *t2, *t3;
    CHECK_EQ(weft_spawn(&t1, ev_waiter, (void *)1L), 0);
    CHECK_EQ(weft_spawn(&t2, ev_waiter, (void *)2L), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(weft_spawn(&t3, ev_waiter, (void *)3L), 0);
    CHECK_EQ(weft_event_set(&ev), 0);
    weft_yield();
    /* t3 had not started: it sees the flag set and goes first. */
    CHECK_EQ(nresult, 3);
    CHECK_EQ(result[0], 3);
    CHECK_EQ(result[1], 1);
    CHECK_EQ(result[2], 2);
    weft_task_t *ts[3] = {t1, t2, t3};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(ts[i]), 1);
        weft_task_release(ts[i]);
    }
    return 0;
}

static void test_wait(void)
{
    CHECK_EQ(run_virtual(ev_wait_main, NULL), 0);
}

static int ev_wait_on_set_main(void *arg)
{
    (void)arg;
    weft_event_init(&ev);
    CHECK_EQ(weft_event_set(&ev), 0);
    CHECK_EQ(weft_event_wait(&ev), 0);
    return 0;
}

static void test_wait_on_set(void)
{
    CHECK_EQ(run_virtual(ev_wait_on_set_main, NULL), 0);
}

static int ev_wait_cancel_main(void *arg)
{
    (void)arg;
    weft_event_init(&ev);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ev_waiter, NULL), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, t), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_EQ(EVENT_WAITERS(&ev), 0);
    weft_task_release(t);
    return 0;
}

static void test_wait_cancel(void)
{
    CHECK_EQ(run_virtual(ev_wait_cancel_main, NULL), 0);
}

static void test_clear(void)
{
    weft_event_init(&ev);
    CHECK(!weft_event_is_set(&ev));
    CHECK_EQ(weft_event_set(&ev), 0);
    CHECK(weft_event_is_set(&ev));
    weft_event_clear(&ev);
    CHECK(!weft_event_is_set(&ev));
}

static int ev_clear_with_waiters_main(void *arg)
{
    (void)arg;
    nresult = 0;
    weft_event_init(&ev);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ev_waiter, (void *)1L), 0);
    weft_yield();
    CHECK_EQ(nresult, 0);
    CHECK_EQ(EVENT_WAITERS(&ev), 1);
    CHECK_EQ(weft_event_set(&ev), 0);
    weft_event_clear(&ev);
    CHECK(!weft_event_is_set(&ev));
    CHECK_EQ(weft_event_set(&ev), 0);
    CHECK_EQ(weft_event_set(&ev), 0);
    weft_yield();
    CHECK_EQ(nresult, 1); /* woken exactly once, with success */
    CHECK_EQ(result[0], 1);
    CHECK_EQ(EVENT_WAITERS(&ev), 0);
    CHECK(weft_task_done(t));
    CHECK_EQ(weft_task_result(t), 1);
    weft_task_release(t);
    return 0;
}

static void test_clear_with_waiters(void)
{
    CHECK_EQ(run_virtual(ev_clear_with_waiters_main, NULL), 0);
}

/* Woken by set(), then cleared and cancelled before running: cancellation wins. */
static int ev_set_then_cancel_main(void *arg)
{
    (void)arg;
    weft_event_init(&ev);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ev_waiter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_event_set(&ev), 0);
    weft_event_clear(&ev);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_event_wait_dl(&ev, t0 + 2000), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), t0 + 2000);
    CHECK_EQ(EVENT_WAITERS(&ev), 0);
    return 0;
}

static void test_set_then_cancel(void)
{
    CHECK_EQ(run_virtual(ev_set_then_cancel_main, NULL), 0);
}

TEST_MAIN(test_acquire, test_acquire_cancel, test_cancel_race, test_cancel_release_race,
          test_finished_waiter_cancelled, test_woken_then_cancelled, test_release_not_acquired,
          test_outside_task, test_acquire_deadline, test_zero_initialised, test_wait,
          test_wait_on_set, test_wait_cancel, test_clear, test_clear_with_waiters,
          test_set_then_cancel)
