/*
 * Queue, LifoQueue, PriorityQueue: ports of CPython 3.13 test_queues.py join and shutdown tests
 * (checklist items 48-49) for each kind, plus ring growth, priority stability, deadlines, free and
 * misuse.
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

/* ---- join ---- */

static void test_task_done_underflow(void)
{
    for (int kind = FIFO; kind <= PRIO; kind++) {
        q = make(kind, 0);
        CHECK_EQ(weft_queue_task_done(q), -EINVAL);
        CHECK_EQ(weft_queue_free(q), 0);
    }
}

static int accumulator;
static int running;

static int worker(void *arg)
{
    (void)arg;
    while (running) {
        void *item;
        CHECK_EQ(weft_queue_get(q, &item), 0);
        accumulator += P2I(item);
        CHECK_EQ(weft_queue_task_done(q), 0);
    }
    return 0;
}

static int task_done_main(void *arg)
{
    int kind = (int)(long)arg;
    q = make(kind, 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_queue_put_nowait(q, I2P(i)), 0);
    accumulator = 0;
    running = 1;
    weft_task_t *w[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_spawn(&w[i], worker, NULL), 0);
    CHECK_EQ(weft_queue_join(q), 0);
    CHECK_EQ(accumulator, 4950);
    running = 0;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(weft_queue_put_nowait(q, I2P(0)), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(weft_join(w[i]), 0);
        weft_task_release(w[i]);
    }
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_task_done(void)
{
    for (long kind = FIFO; kind <= PRIO; kind++)
        CHECK_EQ(run_virtual(task_done_main, (void *)kind), 0);
}

static int join_empty_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 0);
    CHECK_EQ(weft_queue_join(q), 0);
    CHECK_EQ(weft_queue_join(q), 0);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_join_empty_queue(void)
{
    CHECK_EQ(run_virtual(join_empty_main, NULL), 0);
}

/* ---- shutdown (each for FIFO, LIFO, priority) ---- */

static int joiner(void *arg)
{
    (void)arg;
    return weft_queue_join(q);
}

static int shutdown_empty_main(void *arg)
{
    q = make((int)(long)arg, 0);
    weft_task_t *g;
    CHECK_EQ(weft_spawn(&g, getter, NULL), 0);
    weft_yield(); /* get pending before the shutdown */
    CHECK_EQ(weft_queue_shutdown(q, false), 0);
    CHECK(weft_queue_is_shutdown(q));
    CHECK_EQ(weft_queue_qsize(q), 0);
    CHECK_EQ(weft_queue_join(q), 0);
    weft_yield();
    CHECK(weft_task_done(g));
    CHECK_EQ(weft_task_result(g), -ESHUTDOWN);
    weft_task_release(g);
    void *item;
    CHECK_EQ(weft_queue_put(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get_nowait(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static int shutdown_nonempty_main(void *arg)
{
    q = make((int)(long)arg, 1);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(10)), 0);
    weft_task_t *j, *p;
    CHECK_EQ(weft_spawn(&j, joiner, NULL), 0);
    CHECK_EQ(weft_spawn(&p, putter, I2P(20)), 0);
    weft_yield();
    CHECK(!weft_task_done(p));
    CHECK_EQ(weft_queue_shutdown(q, false), 0);
    CHECK_EQ(weft_queue_qsize(q), 1);
    weft_yield();
    CHECK(weft_task_done(p));
    CHECK_EQ(weft_task_result(p), -ESHUTDOWN);
    void *item;
    CHECK_EQ(weft_queue_get(q, &item), 0); /* remaining items are still gettable */
    CHECK_EQ(P2I(item), 10);
    weft_yield();
    CHECK(!weft_task_done(j));
    CHECK_EQ(weft_queue_put(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get_nowait(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_task_done(q), 0);
    weft_yield();
    CHECK(weft_task_done(j));
    CHECK_EQ(weft_join(j), 0);
    CHECK_EQ(weft_queue_task_done(q), -EINVAL);
    weft_task_release(j);
    weft_task_release(p);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static int shutdown_immediate_main(void *arg)
{
    q = make((int)(long)arg, 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    weft_task_t *j;
    CHECK_EQ(weft_spawn(&j, joiner, NULL), 0);
    weft_yield();
    CHECK(!weft_task_done(j));
    CHECK_EQ(weft_queue_shutdown(q, true), 0);
    CHECK_EQ(weft_queue_qsize(q), 0);
    weft_yield();
    CHECK(weft_task_done(j));
    CHECK_EQ(weft_join(j), 0);
    weft_task_release(j);
    void *item;
    CHECK_EQ(weft_queue_put(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get_nowait(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_task_done(q), -EINVAL);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static int shutdown_immediate_unfinished_main(void *arg)
{
    q = make((int)(long)arg, 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    weft_task_t *j;
    CHECK_EQ(weft_spawn(&j, joiner, NULL), 0);
    void *item;
    CHECK_EQ(weft_queue_get(q, &item), 0);
    CHECK_EQ(weft_queue_shutdown(q, true), 0); /* unfinished 2 -> 1 */
    CHECK_EQ(weft_queue_qsize(q), 0);
    CHECK_EQ(weft_queue_unfinished(q), 1);
    weft_yield();
    CHECK(!weft_task_done(j));
    CHECK_EQ(weft_queue_put(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_get_nowait(q, &item), -ESHUTDOWN);
    CHECK_EQ(weft_queue_task_done(q), 0);
    CHECK_EQ(weft_queue_task_done(q), -EINVAL);
    weft_yield();
    CHECK(weft_task_done(j));
    CHECK_EQ(weft_join(j), 0);
    weft_task_release(j);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void test_shutdown_empty(void)
{
    for (long kind = FIFO; kind <= PRIO; kind++)
        CHECK_EQ(run_virtual(shutdown_empty_main, (void *)kind), 0);
}

static void test_shutdown_nonempty(void)
{
    for (long kind = FIFO; kind <= PRIO; kind++)
        CHECK_EQ(run_virtual(shutdown_nonempty_main, (void *)kind), 0);
}

static void test_shutdown_immediate(void)
{
    for (long kind = FIFO; kind <= PRIO; kind++)
        CHECK_EQ(run_virtual(shutdown_immediate_main, (void *)kind), 0);
}

static void test_shutdown_immediate_with_unfinished(void)
{
    for (long kind = FIFO; kind <= PRIO; kind++)
        CHECK_EQ(run_virtual(shutdown_immediate_unfinished_main, (void *)kind), 0);
}

static int dropped[8];
static int ndropped;

static void drop(void *item, void *arg)
{
    CHECK_EQ(P2I(arg), 42);
    dropped[ndropped++] = P2I(item);
}

static void test_shutdown_drop(void)
{
    ndropped = 0;
    q = make(PRIO, 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(3)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(1)), 0);
    CHECK_EQ(weft_queue_put_nowait(q, I2P(2)), 0);
    CHECK_EQ(weft_queue_shutdown_drop(q, drop, I2P(42)), 0);
    CHECK_EQ(ndropped, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(dropped[i], i + 1);
    CHECK_EQ(weft_queue_unfinished(q), 0);
    CHECK_EQ(weft_queue_free(q), 0);
}

/* ---- storage and misuse ---- */

/* The FIFO ring wraps and grows (also when growth is capped by maxsize) without reordering. */
static void test_ring_growth(void)
{
    size_t maxes[3] = {0, 10, 37};
    for (int m = 0; m < 3; m++) {
        q = make(FIFO, maxes[m]);
        int next_in = 0, next_out = 0;
        for (int round = 0; round < 200; round++) {
            int n = round % 13;
            for (int i = 0; i < n; i++) {
                int r = weft_queue_put_nowait(q, I2P(next_in));
                if (r == -EAGAIN)
                    break;
                CHECK_EQ(r, 0);
                next_in++;
            }
            for (int i = 0; i < round % 7; i++) {
                void *item;
                if (weft_queue_get_nowait(q, &item) == -EAGAIN)
                    break;
                CHECK_EQ(P2I(item), next_out);
                next_out++;
            }
        }
        void *item;
        while (weft_queue_get_nowait(q, &item) == 0)
            CHECK_EQ(P2I(item), next_out++);
        CHECK_EQ(next_out, next_in);
        CHECK_EQ(weft_queue_free(q), 0);
    }
}

/* Equal priorities come out in put order; the heap stays ordered under mixed puts and gets. */
static int mod_cmp(const void *a, const void *b, void *arg)
{
    int m = P2I(arg);
    int x = P2I(a) % m, y = P2I(b) % m;
    return x < y ? -1 : x > y;
}

static void test_priority_stable(void)
{
    CHECK_EQ(weft_queue_new_priority(&q, 0, NULL, NULL), -EINVAL);
    CHECK(q == NULL);
    CHECK_EQ(weft_queue_new_priority(&q, 0, mod_cmp, I2P(5)), 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_queue_put_nowait(q, I2P(i)), 0);
    int last = -1;
    for (int i = 0; i < 100; i++) {
        void *item;
        CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
        int v = P2I(item);
        if (last >= 0 && last % 5 == v % 5)
            CHECK(v > last); /* stable among equals */
        else if (last >= 0)
            CHECK(v % 5 > last % 5);
        last = v;
    }
    CHECK_EQ(weft_queue_free(q), 0);
}

static int dl_main(void *arg)
{
    (void)arg;
    q = make(FIFO, 1);
    int64_t t0 = weft_time(NULL);
    void *item;
    CHECK_EQ(weft_queue_get_dl(q, &item, t0 + 100), -ETIMEDOUT);
    CHECK_EQ(weft_queue_put_dl(q, I2P(1), t0 + 100), 0); /* no wait: deadline unused */
    CHECK_EQ(weft_queue_put_dl(q, I2P(2), t0 + 200), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), t0 + 200);
    CHECK_EQ(weft_queue_qsize(q), 1);
    CHECK_EQ(weft_queue_join_dl(q, t0 + 300), -ETIMEDOUT);
    CHECK_EQ(nlinked(&q->putters) + nlinked(&q->getters) + nlinked(&q->joiners), 0);
    /* free refuses while a task waits on the queue */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, putter, I2P(3)), 0);
    weft_yield();
    CHECK_EQ(weft_queue_free(q), -EBUSY);
    CHECK_EQ(weft_queue_get_nowait(q, &item), 0);
    CHECK_EQ(weft_queue_free(q), -EBUSY); /* woken, not yet run */
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_queue_free(q), 0);
    CHECK_EQ(weft_queue_free(NULL), 0);
    CHECK_EQ(weft_queue_put_nowait(NULL, NULL), -EINVAL);
    CHECK_EQ(weft_queue_get_nowait(NULL, &item), -EINVAL);
    return 0;
}

static void test_deadlines_and_free(void)
{
    CHECK_EQ(run_virtual(dl_main, NULL), 0);
}

TEST_MAIN(test_task_done_underflow, test_task_done, test_join_empty_queue, test_shutdown_empty,
          test_shutdown_nonempty, test_shutdown_immediate,
          test_shutdown_immediate_with_unfinished, test_shutdown_drop, test_ring_growth,
          test_priority_stable, test_deadlines_and_free)
