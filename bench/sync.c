/*
 * weft-bench-sync: costs of the synchronisation primitives and queues.
 *   weft-bench-sync [lock|sem|event|queue|queue64|lock-handoff|all] [N]
 * lock: uncontended acquire+release (ns/op); queue: put+get hand-off of one item between two
 * tasks through a maxsize-1 queue (ns per item); the others for context. One OS thread; prints
 * one "RESULT key=value" line per mode, the best of 5 runs measured in thread CPU time. Run it
 * pinned: taskset -c 0 weft-bench-sync.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

/*
 * The thread's CPU time: on a shared machine the wall clock also counts the time other processes
 * ran on our core, which says nothing about weft. (On an idle core both agree.)
 */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long n_ops = 20000000;

/* Best of a few runs, so a preempted run on a shared machine does not count. */
#define REPEATS 5

static int lock_bench(void *arg)
{
    (void)arg;
    weft_lock_t lock;
    weft_lock_init(&lock);
    double best = 1e9;
    for (int rep = 0; rep < REPEATS; rep++) {
        double t0 = now_s();
        for (long i = 0; i < n_ops; i++) {
            if (weft_lock_acquire(&lock) != 0 || weft_lock_release(&lock) != 0)
                return -EINVAL;
        }
        double ns = (now_s() - t0) * 1e9 / (double)n_ops;
        best = ns < best ? ns : best;
    }
    printf("RESULT lock_ns_per_acquire_release=%.2f\n", best);
    return 0;
}

static int sem_bench(void *arg)
{
    (void)arg;
    weft_sem_t sem;
    weft_sem_init(&sem, 1);
    double best = 1e9;
    for (int rep = 0; rep < REPEATS; rep++) {
        double t0 = now_s();
        for (long i = 0; i < n_ops; i++) {
            if (weft_sem_acquire(&sem) != 0 || weft_sem_release(&sem) != 0)
                return -EINVAL;
        }
        double ns = (now_s() - t0) * 1e9 / (double)n_ops;
        best = ns < best ? ns : best;
    }
    printf("RESULT sem_ns_per_acquire_release=%.2f\n", best);
    return 0;
}

/* ---- two tasks ---- */

static weft_queue_t *q;
static long n_items;

static int producer(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_items; i++) {
        int err = weft_queue_put(q, (void *)(intptr_t)i);
        if (err < 0)
            return err;
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_items; i++) {
        void *item;
        int err = weft_queue_get(q, &item);
        if (err < 0)
            return err;
        if ((intptr_t)item != i)
            return -EINVAL;
    }
    return 0;
}

static int queue_run(size_t maxsize, const char *key)
{
    n_items = n_ops / 4;
    double best = 1e9;
    for (int rep = 0; rep < REPEATS; rep++) {
        if (weft_queue_new(&q, maxsize) < 0)
            return -ENOMEM;
        weft_task_t *p, *c;
        double t0 = now_s();
        weft_spawn(&c, consumer, NULL);
        weft_spawn(&p, producer, NULL);
        int rp = weft_join(p), rc = weft_join(c);
        double ns = (now_s() - t0) * 1e9 / (double)n_items;
        weft_task_release(p);
        weft_task_release(c);
        weft_queue_free(q);
        if (rp < 0 || rc < 0)
            return rp < 0 ? rp : rc;
        best = ns < best ? ns : best;
    }
    printf("RESULT %s=%.2f\n", key, best);
    return 0;
}

/* maxsize 1: every item makes both tasks switch (asyncio has no direct hand-off). */
static int queue_bench(void *arg)
{
    (void)arg;
    return queue_run(1, "queue_ns_per_handoff");
}

/* maxsize 64: the producer runs ahead, switches are shared by many items. */
static int queue_stream_bench(void *arg)
{
    (void)arg;
    return queue_run(64, "queue64_ns_per_item");
}

/* Two tasks taking turns through a pair of events (bench/tasks.c pingpong). */
static weft_event_t turn[2];

static int pinger(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < n_items; i++) {
        int err = weft_event_wait(&turn[me]);
        if (err < 0)
            return err;
        weft_event_clear(&turn[me]);
        weft_event_set(&turn[!me]);
    }
    return 0;
}

static int event_bench(void *arg)
{
    (void)arg;
    n_items = n_ops / 8;
    double best = 1e9;
    for (int rep = 0; rep < REPEATS; rep++) {
        weft_event_init(&turn[0]);
        weft_event_init(&turn[1]);
        weft_task_t *a, *b;
        double t0 = now_s();
        weft_spawn(&a, pinger, (void *)0);
        weft_spawn(&b, pinger, (void *)1);
        weft_event_set(&turn[0]);
        int ra = weft_join(a), rb = weft_join(b);
        double ns = (now_s() - t0) * 1e9 / (double)(2 * n_items);
        weft_task_release(a);
        weft_task_release(b);
        if (ra < 0 || rb < 0)
            return ra < 0 ? ra : rb;
        best = ns < best ? ns : best;
    }
    printf("RESULT event_ns_per_handoff=%.2f\n", best);
    return 0;
}

/* Two tasks passing a contended lock back and forth (release wakes the other, FIFO). */
static weft_lock_t hot;

static int locker(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_items; i++) {
        int err = weft_lock_acquire(&hot);
        if (err < 0)
            return err;
        err = weft_yield(); /* hold it across a switch so the other one queues */
        weft_lock_release(&hot);
        if (err < 0)
            return err;
    }
    return 0;
}

static int lock_handoff_bench(void *arg)
{
    (void)arg;
    n_items = n_ops / 8;
    double best = 1e9;
    for (int rep = 0; rep < REPEATS; rep++) {
        weft_lock_init(&hot);
        weft_task_t *a, *b;
        double t0 = now_s();
        weft_spawn(&a, locker, NULL);
        weft_spawn(&b, locker, NULL);
        int ra = weft_join(a), rb = weft_join(b);
        double ns = (now_s() - t0) * 1e9 / (double)(2 * n_items);
        weft_task_release(a);
        weft_task_release(b);
        if (ra < 0 || rb < 0)
            return ra < 0 ? ra : rb;
        best = ns < best ? ns : best;
    }
    printf("RESULT lock_ns_per_contended_acquire=%.2f\n", best);
    return 0;
}

static const struct {
    const char *name;
    weft_task_fn fn;
} modes[] = {
    {"lock", lock_bench},   {"sem", sem_bench},
    {"event", event_bench}, {"queue", queue_bench},
    {"queue64", queue_stream_bench}, {"lock-handoff", lock_handoff_bench},
};

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    if (argc > 2)
        n_ops = atol(argv[2]);
    if (n_ops < 8) {
        fprintf(stderr, "N must be at least 8\n");
        return 2;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, "all") != 0 && strcmp(mode, modes[i].name) != 0)
            continue;
        int r = weft_run(modes[i].fn, NULL);
        if (r < 0) {
            fprintf(stderr, "weft-bench-sync %s: %s\n", modes[i].name, weft_strerror(r));
            return 1;
        }
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "usage: %s [lock|sem|event|queue|queue64|lock-handoff|all] [N]\n", argv[0]);
        return 2;
    }
    return 0;
}
