/*
 * Timers: call_at / call_later ordering by (deadline, arming order), weft_timer_t cancel, when and
 * re-arm, a timer cancelled after it expired but before it ran, argument errors. Virtual clock.
 */
#include "test.h"

static int64_t fired_at[256];
static int fired[256];
static int nfired;

static void record(void *arg)
{
    fired_at[nfired] = weft_time(NULL);
    fired[nfired++] = (int)(long)arg;
}

#define MS 1000000LL

static int order_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    nfired = 0;
    /* Armed out of order; three share the deadline 20 ms and must fire in arming order. */
    CHECK_EQ(weft_call_at(l, NULL, 30 * MS, record, (void *)5), 0);
    CHECK_EQ(weft_call_at(l, NULL, 20 * MS, record, (void *)2), 0);
    CHECK_EQ(weft_call_at(l, NULL, 10 * MS, record, (void *)1), 0);
    CHECK_EQ(weft_call_at(l, NULL, 20 * MS, record, (void *)3), 0);
    CHECK_EQ(weft_call_later(l, NULL, 0.020, record, (void *)4), 0);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fired[i], i + 1);
    CHECK_EQ(fired_at[0], 10 * MS);
    CHECK_EQ(fired_at[1], 20 * MS);
    CHECK_EQ(fired_at[3], 20 * MS);
    CHECK_EQ(fired_at[4], 30 * MS);
    return 0;
}

static void test_timer_order(void)
{
    CHECK_EQ(run_virtual(order_main, NULL), 0);
}

/* Many timers with pseudo-random deadlines (lots of ties): the heap must give a sorted,
 * tie-stable sequence, also when some are cancelled in between. */
static weft_timer_t many[200];
static int64_t many_when[200];

static int heap_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    uint32_t x = 12345;
    nfired = 0;
    for (int i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        many_when[i] = 1 + (int64_t)((x >> 16) % 50) * MS;
        weft_timer_init(&many[i]);
        CHECK_EQ(weft_call_at(l, &many[i], many_when[i], record, (void *)(long)i), 0);
        CHECK_EQ(weft_timer_when(&many[i]), many_when[i]);
    }
    for (int i = 0; i < 200; i += 3)
        CHECK(weft_timer_cancel(&many[i]));
    CHECK_EQ(weft_sleep(1.0), 0);
    int expect = 200 - 67;
    CHECK_EQ(nfired, expect);
    for (int k = 0; k < nfired; k++) {
        int i = fired[k];
        CHECK(i % 3 != 0);
        CHECK_EQ(fired_at[k], many_when[i]);
        if (k > 0) {
            int j = fired[k - 1];
            CHECK(many_when[j] < many_when[i] || (many_when[j] == many_when[i] && j < i));
        }
    }
    return 0;
}

static void test_timer_heap_many(void)
{
    CHECK_EQ(run_virtual(heap_main, NULL), 0);
}

/* Mostly in-order deadlines (the in-order lane) with earlier ones mixed in (the heap), ties
 * across the two, cancels in both: the merged order is still (deadline, arming order). */
static int lane_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    uint32_t x = 777;
    nfired = 0;
    for (int i = 0; i < 200; i++) {
        x = x * 1103515245u + 12345u;
        many_when[i] = 1 + (int64_t)(i / 4) * MS; /* in order, four per deadline */
        if (i % 7 == 3)
            many_when[i] = 1 + (int64_t)((x >> 16) % (unsigned)(i / 4 + 1)) * MS; /* earlier */
        weft_timer_init(&many[i]);
        CHECK_EQ(weft_call_at(l, &many[i], many_when[i], record, (void *)(long)i), 0);
    }
    int cancelled = 0;
    for (int i = 0; i < 200; i += 5) {
        CHECK(weft_timer_cancel(&many[i]));
        cancelled++;
    }
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 200 - cancelled);
    for (int k = 0; k < nfired; k++) {
        int i = fired[k];
        CHECK(i % 5 != 0);
        CHECK_EQ(fired_at[k], many_when[i]);
        if (k > 0) {
            int j = fired[k - 1];
            CHECK(many_when[j] < many_when[i] || (many_when[j] == many_when[i] && j < i));
        }
    }
    return 0;
}

static void test_timer_lane_and_heap(void)
{
    CHECK_EQ(run_virtual(lane_main, NULL), 0);
}

/* A tie where the heap's timer was armed first: the lane's last timer went away (cancelled),
 * so a later timer with the same deadline joins the lane, yet fires second. */
static int tie_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    nfired = 0;
    for (int i = 0; i < 3; i++)
        weft_timer_init(&many[i]);
    CHECK_EQ(weft_call_at(l, &many[0], 10 * MS, record, (void *)0L), 0); /* lane */
    CHECK_EQ(weft_call_at(l, &many[1], 5 * MS, record, (void *)1L), 0);  /* heap */
    CHECK(weft_timer_cancel(&many[0]));
    CHECK_EQ(weft_call_at(l, &many[2], 5 * MS, record, (void *)2L), 0); /* lane again */
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 2);
    CHECK_EQ(fired[0], 1);
    CHECK_EQ(fired[1], 2);
    return 0;
}

static void test_timer_tie_lane_heap(void)
{
    CHECK_EQ(run_virtual(tie_main, NULL), 0);
}

/* ---- weft_timer_t: cancel, when, re-arm ---- */

static weft_timer_t ta, tb;

static int handle_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    nfired = 0;
    weft_timer_init(&ta);
    CHECK_EQ(weft_timer_when(&ta), WEFT_NO_DEADLINE);
    CHECK(!weft_timer_cancel(&ta)); /* never armed */
    CHECK_EQ(weft_call_later(l, &ta, 5.0, record, (void *)1), 0);
    CHECK_EQ(weft_timer_when(&ta), 5000 * MS);
    CHECK(weft_timer_cancel(&ta));
    CHECK(!weft_timer_cancel(&ta)); /* second cancel: nothing armed */
    CHECK_EQ(weft_timer_when(&ta), WEFT_NO_DEADLINE);

    /* Re-arming an armed timer moves it (it fires once, at the new time). */
    CHECK_EQ(weft_call_at(l, &ta, 10 * MS, record, (void *)2), 0);
    CHECK_EQ(weft_call_at(l, &ta, 30 * MS, record, (void *)3), 0);
    CHECK_EQ(weft_timer_when(&ta), 30 * MS);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 1);
    CHECK_EQ(fired[0], 3);
    CHECK_EQ(fired_at[0], 30 * MS);
    CHECK_EQ(weft_timer_when(&ta), WEFT_NO_DEADLINE); /* fired: no longer armed */
    CHECK(!weft_timer_cancel(&ta));

    /* A fired timer can be armed again. */
    CHECK_EQ(weft_call_later(l, &ta, 0.5, record, (void *)4), 0);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 2);
    CHECK_EQ(fired[1], 4);
    CHECK_EQ(fired_at[1], 1500 * MS);
    return 0;
}

static void test_timer_cancel_when_rearm(void)
{
    CHECK_EQ(run_virtual(handle_main, NULL), 0);
}

/* A callback that cancels a timer which expired in the same iteration but has not run yet:
 * it must not run (asyncio's TimerHandle.cancel() on a handle already in _ready). */
static void cancel_b(void *arg)
{
    record(arg);
    CHECK(weft_timer_cancel(&tb));
    CHECK(!weft_timer_cancel(&tb));
}

static int expired_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    nfired = 0;
    weft_timer_init(&ta);
    weft_timer_init(&tb);
    CHECK_EQ(weft_call_at(l, &ta, 10 * MS, cancel_b, (void *)1), 0);
    CHECK_EQ(weft_call_at(l, &tb, 10 * MS, record, (void *)2), 0);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 1);
    CHECK_EQ(fired[0], 1);

    /* The same from a task: the timer expired (queued) while the task was ready. */
    CHECK_EQ(weft_call_at(l, &tb, weft_time(NULL), record, (void *)3), 0);
    /* Due timers are queued behind what is already ready (as asyncio's _run_once): in the next
     * iteration this task runs first, the timer right after it. */
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nfired, 1);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(nfired, 2);
    CHECK_EQ(fired[1], 3);
    return 0;
}

static void test_timer_cancel_after_expiry(void)
{
    CHECK_EQ(run_virtual(expired_main, NULL), 0);
}

/*
 * A task cancels a timer that expired in the same iteration as the task's own wake-up but is
 * queued behind it: the timer must not run. The task's deadline is armed first, the timer second
 * (same deadline), so the task runs first in that batch.
 */
static void arm_ta(void *arg)
{
    CHECK_EQ(weft_call_at(weft_loop_current(), &ta, *(int64_t *)arg, record, (void *)1), 0);
}

static int task_cancel_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    static int64_t dl;
    nfired = 0;
    weft_timer_init(&ta);
    dl = weft_time(NULL) + 5 * MS;
    CHECK_EQ(weft_call_soon(l, arm_ta, &dl), 0);
    CHECK_EQ(weft_sleep_until(dl), 0);
    CHECK_EQ(weft_time(NULL), dl);
    CHECK_EQ(weft_timer_when(&ta), WEFT_NO_DEADLINE); /* expired... */
    CHECK_EQ(nfired, 0);                              /* ...but not run yet */
    CHECK(weft_timer_cancel(&ta));
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sleep(1.0), 0);
    CHECK_EQ(nfired, 0);
    return 0;
}

static void test_timer_cancel_expired_from_task(void)
{
    CHECK_EQ(run_virtual(task_cancel_main, NULL), 0);
}

static void test_timer_errors(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, &test_vclock), 0);
    weft_timer_init(&ta);
    CHECK_EQ(weft_call_at(l, &ta, -1, record, NULL), -EINVAL);
    CHECK_EQ(weft_call_at(l, &ta, 5, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_call_at(NULL, &ta, 5, record, NULL), -EINVAL);
    CHECK_EQ(weft_call_later(l, &ta, 0.0 / 0.0, record, NULL), -EINVAL);
    CHECK_EQ(weft_call_later(NULL, &ta, 1.0, record, NULL), -EINVAL);
    CHECK_EQ(weft_timer_when(&ta), WEFT_NO_DEADLINE);
    /* Negative delay = now: runs in the next iteration. */
    nfired = 0;
    CHECK_EQ(weft_call_later(l, &ta, -5.0, record, (void *)9), 0);
    CHECK_EQ(weft_timer_when(&ta), 0);
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0);
    CHECK_EQ(nfired, 1);
    CHECK_EQ(fired[0], 9);
    /* Fire-and-forget timers still armed when the loop closes are freed (checked by ASan and
     * valgrind); so are armed caller-storage ones left alone. */
    CHECK_EQ(weft_call_later(l, NULL, 100.0, record, NULL), 0);
    CHECK_EQ(weft_call_later(l, &ta, 100.0, record, NULL), 0);
    CHECK_EQ(weft_loop_close(l), 0);
    CHECK_EQ(nfired, 1);
}

/* A periodic timer: its callback re-arms the same handle. */
static int ticks;

static void tick(void *arg)
{
    weft_loop_t *l = arg;
    fired_at[ticks++] = weft_time(l);
    if (ticks < 5)
        CHECK_EQ(weft_call_later(l, &ta, 0.25, tick, l), 0);
}

static int periodic_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    ticks = 0;
    weft_timer_init(&ta);
    CHECK_EQ(weft_call_later(l, &ta, 0.25, tick, l), 0);
    CHECK_EQ(weft_sleep(10.0), 0);
    CHECK_EQ(ticks, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fired_at[i], (i + 1) * 250 * MS);
    return 0;
}

static void test_timer_periodic(void)
{
    CHECK_EQ(run_virtual(periodic_main, NULL), 0);
}

TEST_MAIN(test_timer_order, test_timer_heap_many, test_timer_lane_and_heap,
          test_timer_tie_lane_heap, test_timer_cancel_when_rearm, test_timer_cancel_after_expiry,
          test_timer_cancel_expired_from_task, test_timer_errors, test_timer_periodic)
