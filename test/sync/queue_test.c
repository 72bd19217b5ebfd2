/*
 * Queue, LifoQueue, PriorityQueue: ports of CPython 3.13 test_queues.py put/get tests (checklist
 * items 46-48): order, backpressure, cancellation safety of put and get. Join, shutdown and
 * storage are in queue_shutdown_test.c.
 */
#include "synctest.h"

#include <stdint.h>

static weft_queue_t *q;

static int getter(void *arg)
{
    (void)arg;
    void *item;
    int r = weft_queue_get(q, &item);
    return r < 0 ? r : P2I(item);
}

static int putter(void *arg)
{
    return weft_queue_put(q, arg);
}

/* ---- basics ---- */

static int empty_full_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    CHECK(weft_queue_empty(q));
    CHECK_EQ(weft_queue_put(q, I2P(1)), 0);
    CHECK(!weft_queue_empty(q));
    void *item;
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 1);
    CHECK(weft_queue_empty(q));
    CHECK(!weft_queue_full(q));
    CHECK_EQ(weft_queue_free(q), 0);
    q = make(FIFO, 1);
    CHECK_EQ(weft_queue_put(q, I2P(1)), 0);
    CHECK(weft_queue_full(q));
    CHECK_EQ(weft_queue_maxsize(q), 1);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_empty_full(void)
{
    CHECK_EQ(run_virtual(empty_full_main, NULL), 0);
}

static int order_main(void *arg)
{
    (void)arg;
    static const int want[3][3] = {{1, 3, 2}, {2, 3, 1}, {1, 2, 3}};
    for (int kind = FIFO; kind <= PRIO; kind++) {
        q = make(kind, 0);
        int in[3] = {1, 3, 2};
        for (int i = 0; i < 3; i++)
            CHECK_EQ(weft_queue_put(q, I2P(in[i])), 0);
        for (int i = 0; i < 3; i++) {
            void *item;
            CHECK_EQ(weft_queue_get(q, &item), 0);
            CHECK_EQ(P2I(item), want[kind][i]);
        }
        CHECK_EQ(weft_queue_free(q), 0);
    }
    return 0;
}

static void test_order(void)
{
    CHECK_EQ(run_virtual(order_main, NULL), 0);
}

static int have_been_put[3];
static int nput;

static int maxsize_putter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_queue_put(q, I2P(i)), 0);
        have_been_put[nput++] = i;
    }
    return 1;
}

static int maxsize_main(void *arg)
{
    (void)arg;
    nput = 0;
    q = make(FIFO, 2);
    CHECK_EQ(weft_queue_maxsize(q), 2);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, maxsize_putter, NULL), 0);
    weft_yield();
    weft_yield();
    CHECK_EQ(nput, 2); /* blocked after putting two items */
    void *item;
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 0);
    weft_yield();
    CHECK_EQ(nput, 3);
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 1);
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 2);
    CHECK(weft_task_done(t));
    CHECK_EQ(weft_task_result(t), 1);
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_maxsize(void)
{
    CHECK_EQ(run_virtual(maxsize_main, NULL), 0);
}

/* ---- get ---- */

static void put_one_cb(void *arg)
{
    CHECK_EQ(weft_queue_put_nowait(q, arg), 0);
}

static int blocking_get_wait_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, getter, NULL), 0);
    weft_yield();
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.01, put_one_cb, I2P(1)), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_join(t), 1);
    CHECK_EQ(weft_time(NULL) - t0, 10000000);
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_blocking_get_wait(void)
{
    CHECK_EQ(run_virtual(blocking_get_wait_main, NULL), 0);
}

static void test_nonblocking_get(void)
{
    q = make(FIFO, 0);
    void *item = I2P(77);
    CHECK_EQ(weft_queue_get_nowait(q, &item), -EAGAIN);
    CHECK_EQ(P2I(item), 77);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 1);
    CHECK_EQ(weft_queue_get(q, &item), -EPERM); /* would wait outside a task */
    CHECK_EQ(weft_queue_free(q), 0);
}

static int get_cancelled_race_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    weft_task_t *t1, *t2;
    CHECK_EQ(weft_spawn(&t1, getter, NULL), 0);
    CHECK_EQ(weft_spawn(&t2, getter, NULL), 0);
    weft_yield();
    weft_task_cancel(t1, NULL);
    weft_yield();
    CHECK(weft_task_done(t1));
    CHECK_EQ(weft_queue_put(q, I2P('a')), 0);
    weft_yield();
    CHECK_EQ(weft_join(t2), 'a');
    CHECK_EQ(weft_join(t1), -ECANCELED);
    weft_task_release(t1);
    weft_task_release(t2);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_get_cancelled_race(void)
{
    CHECK_EQ(run_virtual(get_cancelled_race_main, NULL), 0);
}

static int get_with_waiting_putters_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, putter, I2P('a')), 0);
    CHECK_EQ(weft_spawn(&b, putter, I2P('b')), 0);
    void *item;
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 'a');
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(P2I(item), 'b');
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_get_with_waiting_putters(void)
{
    CHECK_EQ(run_virtual(get_with_waiting_putters_main, NULL), 0);
}

static int consumer_n(void *arg)
{
    for (long i = 0; i < (long)arg; i++) {
        void *item;
        CHECK_EQ(weft_queue_get(q, &item), 0);
        CHECK_EQ(P2I(item), i);
    }
    return 0;
}

static int producer_n(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        CHECK_EQ(weft_queue_put(q, I2P(i)), 0);
    return 0;
}

static int getters_waiting_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    weft_task_t *p, *c;
    CHECK_EQ(weft_spawn(&p, producer_n, (void *)5L), 0);
    CHECK_EQ(weft_spawn(&c, consumer_n, (void *)5L), 0);
    CHECK_EQ(weft_join(p), 0);
    CHECK_EQ(weft_join(c), 0);
    weft_task_release(p);
    weft_task_release(c);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_why_are_getters_waiting(void)
{
    CHECK_EQ(run_virtual(getters_waiting_main, NULL), 0);
}

static int getters_not_held_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 5);
    void *item;
    CHECK_EQ(weft_queue_get_dl(q, &item, weft_deadline_in(0.1)), -ETIMEDOUT);
    CHECK_EQ(nlinked(&q->getters), 0);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_cancelled_getters_not_being_held_in_self_getters(void)
{
    CHECK_EQ(run_virtual(getters_not_held_main, NULL), 0);
}

static int get_cancel_drop_one_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    weft_task_t *reader;
    CHECK_EQ(weft_spawn(&reader, getter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(2)), 0);
    weft_task_cancel(reader, NULL);
    int r = weft_join(reader);
    weft_task_release(reader);
    if (r == -ECANCELED) { /* try again */
        CHECK_EQ(weft_spawn(&reader, getter, NULL), 0);
        r = weft_join(reader);
        weft_task_release(reader);
    }
    CHECK_EQ(r, 1); /* 2 would mean 1 got dropped */
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_get_cancel_drop_one_pending_reader(void)
{
    CHECK_EQ(run_virtual(get_cancel_drop_one_main, NULL), 0);
}

static int get_cancel_drop_many_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    weft_task_t *r1, *r2, *r3;
    CHECK_EQ(weft_spawn(&r1, getter, NULL), 0);
    CHECK_EQ(weft_spawn(&r2, getter, NULL), 0);
    CHECK_EQ(weft_spawn(&r3, getter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(2)), 0);
    weft_task_cancel(r1, NULL);
    CHECK_EQ(weft_join(r1), -ECANCELED);
    int a = weft_join(r3), b = weft_join(r2);
    CHECK((a == 1 && b == 2) || (a == 2 && b == 1));
    weft_task_release(r1);
    weft_task_release(r2);
    weft_task_release(r3);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_get_cancel_drop_many_pending_readers(void)
{
    CHECK_EQ(run_virtual(get_cancel_drop_many_main, NULL), 0);
}

/* ---- put ---- */

static int blocking_put_wait_putter(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_queue_put(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put(q, I2P(2)), 0);
    return 1;
}

static void get_one_cb(void *arg)
{
    (void)arg;
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
}

static int blocking_put_wait_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    CHECK_EQ(weft_call_later(weft_loop_current(), NULL, 0.01, get_one_cb, NULL), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, blocking_put_wait_putter, NULL), 0);
    weft_yield();
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_join(t), 1);
    CHECK_EQ(weft_queue_qsize(q), 1);
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_blocking_put_wait(void)
{
    CHECK_EQ(run_virtual(blocking_put_wait_main, NULL), 0);
}

static void test_nonblocking_put(void)
{
    q = make(FIFO, 1);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(2)), -EAGAIN); /* test_nonblocking_put_exception */
    CHECK_EQ(weft_queue_put(q, I2P(2)), -EPERM);
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 1);
    CHECK_EQ(weft_queue_free(q), 0);
}

static int put_cancel_drop_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, putter, I2P(2)), 0); /* has to block */
    weft_yield();
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 1);
    weft_task_cancel(w, NULL);
    int r = weft_join(w);
    weft_task_release(w);
    if (r == -ECANCELED) {
        CHECK_EQ(weft_spawn(&w, putter, I2P(2)), 0);
        CHECK_EQ(weft_join(w), 0);
        weft_task_release(w);
    }
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 2);
    CHECK_EQ(weft_queue_qsize(q), 0);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_put_cancel_drop(void)
{
    CHECK_EQ(run_virtual(put_cancel_drop_main, NULL), 0);
}

static int put_cancelled_race_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_spawn(&a, putter, I2P('a')), 0);
    CHECK_EQ(weft_spawn(&b, putter, I2P('b')), 0);
    CHECK_EQ(weft_spawn(&c, putter, I2P('X')), 0);
    weft_yield();
    CHECK(weft_task_done(a));
    CHECK(!weft_task_done(b));
    weft_task_cancel(c, NULL);
    weft_yield();
    CHECK(weft_task_done(c));
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 'a');
    weft_yield();
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 'b');
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_join(c), -ECANCELED);
    CHECK_EQ(weft_queue_qsize(q), 0); /* no stale 'X' */
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_put_cancelled_race(void)
{
    CHECK_EQ(run_virtual(put_cancelled_race_main, NULL), 0);
}

static int put_with_waiting_getters_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, getter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_queue_put(q, I2P('a')), 0);
    CHECK_EQ(weft_join(t), 'a');
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_put_with_waiting_getters(void)
{
    CHECK_EQ(run_virtual(put_with_waiting_getters_main, NULL), 0);
}

static int drain_getter(void *arg)
{
    (void)arg;
    weft_yield();
    size_t n = weft_queue_qsize(q);
    for (size_t i = 0; i < n; i++) {
        void *item;
        CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    }
    return 0;
}

static int putters_waiting_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 2);
    weft_task_t *t[5];
    CHECK_EQ(weft_spawn(&t[0], drain_getter, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn(&t[i + 1], putter, I2P(i)), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_queue_qsize(q), 2);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_why_are_putters_waiting(void)
{
    CHECK_EQ(run_virtual(putters_waiting_main, NULL), 0);
}

static int puts_not_held_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, putter, I2P(1)), 0);
    weft_yield();
    CHECK_EQ(nlinked(&q->putters), 1);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_EQ(nlinked(&q->putters), 0);
    weft_task_release(t);
    /* test_cancelled_put_silence_value_error_exception: woken by a get, then cancelled. */
    CHECK_EQ(weft_spawn(&t, putter, I2P(1)), 0);
    weft_yield();
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_EQ(weft_queue_qsize(q), 0);
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_cancelled_puts_not_being_held_in_self_putters(void)
{
    CHECK_EQ(run_virtual(puts_not_held_main, NULL), 0);
}

/* A putter woken for a free slot and then cancelled passes the slot to the next putter. */
static int woken_putter_cancelled_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, putter, I2P(2)), 0);
    CHECK_EQ(weft_spawn(&b, putter, I2P(3)), 0);
    weft_yield();
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0); /* wakes a */
    weft_task_cancel(a, NULL);
    CHECK_EQ(weft_join(a), -ECANCELED);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(P2I(item), 3);
    weft_task_release(a);
    weft_task_release(b);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_woken_putter_cancelled(void)
{
    CHECK_EQ(run_virtual(woken_putter_cancelled_main, NULL), 0);
}

/* ---- hand-off between two tasks (put and get share one wait routine) ---- */

/*
 * No direct hand-off, as in asyncio: a put to a waiting getter leaves the item in the queue until
 * that getter runs, so the queue stays full, another task may take the item first, and the woken
 * getter then waits again for the next one.
 */
static int no_direct_handoff_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    weft_task_t *g;
    CHECK_EQ(weft_spawn(&g, getter, NULL), 0);
    weft_yield();
    CHECK_EQ(weft_queue_put(q, I2P('a')), 0); /* wakes g */
    CHECK_EQ(weft_queue_qsize(q), 1);
    CHECK(weft_queue_full(q));
    CHECK_EQ(weft_queue_put_nowait(q, I2P('x')), -EAGAIN);
    void *item;
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0); /* taken before g runs */
    CHECK_EQ(P2I(item), 'a');
    weft_yield();
    CHECK(!weft_task_done(g)); /* re-checked, found nothing, waits again */
    CHECK_EQ(nlinked(&q->getters), 1);
    CHECK_EQ(weft_queue_put(q, I2P('b')), 0);
    CHECK_EQ(weft_join(g), 'b');
    weft_task_release(g);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_no_direct_handoff(void)
{
    CHECK_EQ(run_virtual(no_direct_handoff_main, NULL), 0);
}

enum { HANDOFF_N = 40 };

static int handoff_producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HANDOFF_N; i++) {
        /* Descending, so the priority queue's order is the put order too. */
        CHECK_EQ(weft_queue_put_dl(q, I2P(HANDOFF_N - i), weft_deadline_in(60)), 0);
        CHECK(weft_queue_qsize(q) <= 1); /* never more than maxsize ahead */
    }
    return 0;
}

static int handoff_consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HANDOFF_N; i++) {
        void *item;
        CHECK_EQ(weft_queue_get_dl(q, &item, weft_deadline_in(60)), 0);
        CHECK_EQ(P2I(item), HANDOFF_N - i);
    }
    /* Nothing left: a timed-out get through the same routine takes nothing and leaves no node. */
    void *item = I2P(-1);
    CHECK_EQ(weft_queue_get_dl(q, &item, weft_deadline_in(0.001)), -ETIMEDOUT);
    CHECK_EQ(P2I(item), -1);
    CHECK_EQ(nlinked(&q->getters), 0);
    return 0;
}

static int handoff_kinds_main(void *arg)
{
    (void)arg;
    for (int kind = FIFO; kind <= PRIO; kind++) {
        q = make(kind, 1);
        weft_task_t *p, *c;
        CHECK_EQ(weft_spawn(&c, handoff_consumer, NULL), 0);
        CHECK_EQ(weft_spawn(&p, handoff_producer, NULL), 0);
        CHECK_EQ(weft_join(p), 0);
        CHECK_EQ(weft_join(c), 0);
        weft_task_release(p);
        weft_task_release(c);
        CHECK_EQ(weft_queue_unfinished(q), HANDOFF_N);
        /* A put that times out on a full queue leaves no node behind either. */
        CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
        CHECK_EQ(weft_queue_put_dl(q, I2P(2), weft_deadline_in(0.001)), -ETIMEDOUT);
        CHECK_EQ(nlinked(&q->putters), 0);
        CHECK_EQ(weft_queue_qsize(q), 1);
        CHECK_EQ(weft_queue_free(q), 0);
    }
    return 0;
}

static void test_handoff_kinds(void)
{
    CHECK_EQ(run_virtual(handoff_kinds_main, NULL), 0);
}

TEST_MAIN(test_empty_full, test_order, test_maxsize, test_blocking_get_wait, test_nonblocking_get,
          test_get_cancelled_race, test_get_with_waiting_putters, test_why_are_getters_waiting,
          test_cancelled_getters_not_being_held_in_self_getters,
          test_get_cancel_drop_one_pending_reader, test_get_cancel_drop_many_pending_readers,
          test_blocking_put_wait, test_nonblocking_put, test_put_cancel_drop,
          test_put_cancelled_race, test_put_with_waiting_getters, test_why_are_putters_waiting,
          test_cancelled_puts_not_being_held_in_self_putters, test_woken_putter_cancelled,
          test_no_direct_handoff, test_handoff_kinds)
