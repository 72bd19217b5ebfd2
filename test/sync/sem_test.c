/*
 * Semaphore and BoundedSemaphore: ports of CPython 3.13 test_locks.py SemaphoreTests (checklist
 * items 41 and 42), plus deadlines and the woken-then-cancelled unit give-back.
 */
#include "synctest.h"

/* asyncio's len(sem._waiters): queued nodes plus woken waiters that have not run yet. */
static int sem_waiters(weft_sem_t *sem)
{
    struct weft__sem *s = (struct weft__sem *)sem;
    return nlinked(&s->waiters) + (int)s->nwoken;
}

static weft_sem_t sem;
static char result[16][8];
static int nresult;

static void put_result(const char *s)
{
    snprintf(result[nresult++], sizeof(result[0]), "%s", s);
}

static int plain_acquire(void *arg)
{
    (void)arg;
    return weft_sem_acquire(&sem);
}

static int tagged_acquire(void *arg)
{
    int r = weft_sem_acquire(&sem);
    if (r < 0)
        return r;
    put_result(arg);
    return 1;
}

static void test_initial_value_zero(void)
{
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    CHECK(weft_sem_locked(&sem));
}

static void test_semaphore_value(void)
{
    CHECK_EQ(weft_sem_init(&sem, -1), -EINVAL);
    CHECK_EQ(weft_sem_init_bounded(&sem, -1), -EINVAL);
    CHECK_EQ(weft_sem_init(NULL, 1), -EINVAL);
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    CHECK(!weft_sem_locked(&sem));
    CHECK_EQ(weft_sem_value(&sem), 1);
}

static int acquire_main(void *arg)
{
    (void)arg;
    nresult = 0;
    CHECK_EQ(weft_sem_init(&sem, 3), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    CHECK(!weft_sem_locked(&sem));
    weft_task_t *t1, *t2, *t3, *t4;
    CHECK_EQ(weft_spawn(&t1, tagged_acquire, "1"), 0);
    CHECK_EQ(weft_spawn(&t2, tagged_acquire, "2"), 0);
    CHECK_EQ(weft_spawn(&t3, tagged_acquire, "3"), 0);
    weft_yield();
    CHECK_EQ(nresult, 1);
    CHECK_STR(result[0], "1");
    CHECK(weft_sem_locked(&sem));
    CHECK_EQ(sem_waiters(&sem), 2);
    CHECK_EQ(weft_sem_value(&sem), 0);
    CHECK_EQ(weft_spawn(&t4, tagged_acquire, "4"), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_value(&sem), 0);
    weft_yield();
    CHECK_EQ(weft_sem_value(&sem), 0);
    CHECK_EQ(nresult, 3);
    CHECK(weft_sem_locked(&sem));
    CHECK_EQ(sem_waiters(&sem), 1);
    CHECK(weft_task_done(t1));
    CHECK_EQ(weft_task_result(t1), 1);
    int done = 0;
    weft_task_t *race[3] = {t2, t3, t4};
    for (int i = 0; i < 3; i++)
        done += weft_task_done(race[i]) && weft_task_result(race[i]) == 1;
    CHECK_EQ(done, 2);
    CHECK_EQ(weft_sem_release(&sem), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(race[i]), 1);
        weft_task_release(race[i]);
    }
    weft_task_release(t1);
    return 0;
}

static void test_acquire(void)
{
    CHECK_EQ(run_virtual(acquire_main, NULL), 0);
}

static void cancel_cb(void *arg)
{
    weft_task_cancel(arg, NULL);
}

static int acquire_cancel_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, plain_acquire, NULL), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), cancel_cb, t), 0);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK_EQ(sem_waiters(&sem), 0);
    CHECK_EQ(weft_sem_value(&sem), 0);
    return 0;
}

static void test_acquire_cancel(void)
{
    CHECK_EQ(run_virtual(acquire_cancel_main, NULL), 0);
}

static int cancel_before_awoken_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    weft_task_t *t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn(&t[i], plain_acquire, NULL), 0);
    weft_yield();
    weft_task_cancel(t[0], NULL);
    weft_task_cancel(t[1], NULL);
    CHECK_EQ(weft_sem_release(&sem), 0);
    weft_yield();
    weft_yield();
    CHECK(weft_task_done(t[2]));  /* the release skipped the cancelled waiters */
    CHECK(!weft_task_done(t[3])); /* and was consumed only once */
    weft_task_cancel(t[2], NULL);
    weft_task_cancel(t[3], NULL);
    weft_yield();
    for (int i = 0; i < 4; i++) {
        CHECK(weft_task_done(t[i]));
        CHECK_EQ(weft_task_result(t[i]), i == 2 ? 0 : -ECANCELED);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_sem_value(&sem), 0);
    return 0;
}

static void test_acquire_cancel_before_awoken(void)
{
    CHECK_EQ(run_virtual(cancel_before_awoken_main, NULL), 0);
}

static int acquire_hang_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_spawn(&t1, plain_acquire, NULL), 0);
    CHECK_EQ(weft_spawn(&t2, plain_acquire, NULL), 0);
    weft_yield();
    weft_task_cancel(t1, NULL);
    CHECK_EQ(weft_sem_release(&sem), 0);
    weft_yield();
    weft_yield();
    CHECK(weft_sem_locked(&sem));
    CHECK(weft_task_done(t2));
    CHECK_EQ(weft_task_result(t2), 0);
    CHECK(weft_task_cancelled(t1));
    weft_task_release(t1);
    weft_task_release(t2);
    return 0;
}

static void test_acquire_hang(void)
{
    CHECK_EQ(run_virtual(acquire_hang_main, NULL), 0);
}

static weft_task_t *no_hang_t2;

static int no_hang_c1(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    weft_yield();
    CHECK_EQ(weft_sem_release(&sem), 0);
    weft_task_cancel(no_hang_t2, NULL); /* woken by the release, cancelled before it runs */
    return 0;
}

static int no_hang_c2(void *arg)
{
    (void)arg;
    int r = weft_sem_acquire(&sem);
    CHECK(r < 0); /* never acquires */
    return r;
}

static int acquire_no_hang_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    weft_task_t *t1;
    CHECK_EQ(weft_spawn(&t1, no_hang_c1, NULL), 0);
    CHECK_EQ(weft_spawn(&no_hang_t2, no_hang_c2, NULL), 0);
    CHECK_EQ(weft_join(t1), 0);
    CHECK_EQ(weft_join(no_hang_t2), -ECANCELED);
    weft_task_release(t1);
    weft_task_release(no_hang_t2);
    CHECK_EQ(weft_sem_acquire_dl(&sem, weft_deadline_in(1.0)), 0);
    CHECK_EQ(weft_sem_value(&sem), 0);
    return 0;
}

static void test_acquire_no_hang(void)
{
    CHECK_EQ(run_virtual(acquire_no_hang_main, NULL), 0);
}

static void test_release_not_acquired(void)
{
    CHECK_EQ(weft_sem_init_bounded(&sem, 1), 0);
    CHECK_EQ(weft_sem_release(&sem), -EINVAL);
    CHECK_EQ(weft_sem_value(&sem), 1);
    CHECK_EQ(weft_sem_init_bounded(&sem, 0), 0);
    CHECK_EQ(weft_sem_release(&sem), -EINVAL);
    /* A plain semaphore may go above its initial value. */
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_value(&sem), 2);
}

/* A unit handed to a woken waiter that has not run yet counts as taken for the bound. */
static int bounded_woken_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init_bounded(&sem, 1), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, plain_acquire, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_sem_release(&sem), 0); /* to t, which has not run */
    CHECK_EQ(weft_sem_release(&sem), -EINVAL);
    CHECK_EQ(weft_join(t), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), -EINVAL);
    weft_task_release(t);
    return 0;
}

static void test_bounded_woken_counts_as_held(void)
{
    CHECK_EQ(run_virtual(bounded_woken_main, NULL), 0);
}

static int release_no_waiters_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    CHECK(weft_sem_locked(&sem));
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK(!weft_sem_locked(&sem));
    return 0;
}

static void test_release_no_waiters(void)
{
    CHECK_EQ(run_virtual(release_no_waiters_main, NULL), 0);
}

static int fifo_coro(void *arg)
{
    char tag[8];
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    snprintf(tag, sizeof(tag), "%s_1", (const char *)arg);
    put_result(tag);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    snprintf(tag, sizeof(tag), "%s_2", (const char *)arg);
    put_result(tag);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    return 0;
}

static int fifo_order_main(void *arg)
{
    (void)arg;
    nresult = 0;
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    const char *tags[3] = {"c1", "c2", "c3"};
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], fifo_coro, (void *)tags[i]), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    const char *want[6] = {"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"};
    CHECK_EQ(nresult, 6);
    for (int i = 0; i < 6; i++)
        CHECK_STR(result[i], want[i]);
    return 0;
}

static void test_acquire_fifo_order(void)
{
    CHECK_EQ(run_virtual(fifo_order_main, NULL), 0);
}

static int fifo2_c2(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    put_result("2");
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    put_result("4");
    return 1;
}

static int fifo_order_2_main(void *arg)
{
    (void)arg;
    nresult = 0;
    CHECK_EQ(weft_sem_init(&sem, 1), 0);
    weft_task_t *t[3];
    CHECK_EQ(weft_spawn(&t[0], tagged_acquire, "1"), 0);
    CHECK_EQ(weft_spawn(&t[1], fifo2_c2, NULL), 0);
    CHECK_EQ(weft_spawn(&t[2], tagged_acquire, "3"), 0);
    weft_yield();
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 1);
        weft_task_release(t[i]);
    }
    CHECK_EQ(nresult, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(result[i][0], '1' + i);
    return 0;
}

static void test_acquire_fifo_order_2(void)
{
    CHECK_EQ(run_virtual(fifo_order_2_main, NULL), 0);
}

static int fifo_order_3_main(void *arg)
{
    (void)arg;
    nresult = 0;
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    weft_task_t *t[3];
    CHECK_EQ(weft_spawn(&t[0], tagged_acquire, "1"), 0);
    CHECK_EQ(weft_spawn(&t[1], tagged_acquire, "2"), 0);
    CHECK_EQ(weft_spawn(&t[2], tagged_acquire, "3"), 0);
    weft_yield();
    weft_task_cancel(t[0], NULL);
    weft_yield();
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_join(t[0]), -ECANCELED);
    CHECK_EQ(weft_join(t[1]), 1);
    CHECK_EQ(weft_join(t[2]), 1);
    for (int i = 0; i < 3; i++)
        weft_task_release(t[i]);
    CHECK_EQ(nresult, 2);
    CHECK_STR(result[0], "2");
    CHECK_STR(result[1], "3");
    return 0;
}

static void test_acquire_fifo_order_3(void)
{
    CHECK_EQ(run_virtual(fifo_order_3_main, NULL), 0);
}

static weft_task_t *fifo4_t4;

static int fifo4_c4(void *arg)
{
    (void)arg;
    put_result("4");
    return 1;
}

static int fifo4_c1(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_value(&sem), 0);
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    /* Every waiter the free units allow is awake now. */
    CHECK_EQ(weft_sem_value(&sem), 0);
    CHECK_EQ(weft_spawn(&fifo4_t4, fifo4_c4, NULL), 0); /* runs after c3, not c2 */
    put_result("1");
    return 1;
}

static int fifo4_c2(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_sem_value(&sem), 2);
    CHECK(weft_sem_locked(&sem)); /* c1 was woken but has not run */
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    put_result("2");
    return 1;
}

static int fifo4_c3(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_acquire(&sem), 0);
    CHECK(weft_sem_locked(&sem));
    put_result("3");
    return 1;
}

static int fifo_order_4_main(void *arg)
{
    (void)arg;
    nresult = 0;
    fifo4_t4 = NULL;
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    weft_task_t *t[3];
    CHECK_EQ(weft_spawn(&t[0], fifo4_c1, NULL), 0);
    CHECK_EQ(weft_spawn(&t[1], fifo4_c2, NULL), 0);
    CHECK_EQ(weft_spawn(&t[2], fifo4_c3, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_sem_value(&sem), 2);
    CHECK_EQ(sem_waiters(&sem), 3);
    weft_yield();
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 1);
        weft_task_release(t[i]);
    }
    CHECK(fifo4_t4 != NULL);
    CHECK_EQ(weft_join(fifo4_t4), 1);
    weft_task_release(fifo4_t4);
    CHECK_EQ(nresult, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(result[i][0], '1' + i);
    return 0;
}

static void test_acquire_fifo_order_4(void)
{
    CHECK_EQ(run_virtual(fifo_order_4_main, NULL), 0);
}

static int dl_acquire(void *arg)
{
    (void)arg;
    return weft_sem_acquire_dl(&sem, weft_deadline_in(2.0));
}

/* Timed-out waiters leave the queue without consuming units; later ones are still served. */
static int deadline_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sem_init(&sem, 0), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sem_acquire_dl(&sem, t0 + 500), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), t0 + 500);
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_spawn(&a, dl_acquire, NULL), 0);
    CHECK_EQ(weft_spawn(&b, plain_acquire, NULL), 0);
    CHECK_EQ(weft_spawn(&c, dl_acquire, NULL), 0);
    CHECK_EQ(weft_sleep(3.0), 0);
    CHECK(weft_task_done(a) && weft_task_done(c));
    CHECK_EQ(weft_task_result(a), -ETIMEDOUT);
    CHECK_EQ(weft_task_result(c), -ETIMEDOUT);
    CHECK(!weft_task_done(b));
    CHECK_EQ(sem_waiters(&sem), 1);
    CHECK_EQ(weft_sem_release(&sem), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_sem_value(&sem), 0);
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    return 0;
}

static void test_acquire_deadline(void)
{
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
}

TEST_MAIN(test_initial_value_zero, test_semaphore_value, test_acquire, test_acquire_cancel,
          test_acquire_cancel_before_awoken, test_acquire_hang, test_acquire_no_hang,
          test_release_not_acquired, test_bounded_woken_counts_as_held, test_release_no_waiters,
          test_acquire_fifo_order, test_acquire_fifo_order_2, test_acquire_fifo_order_3,
          test_acquire_fifo_order_4, test_acquire_deadline)
