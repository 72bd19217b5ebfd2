/*
 * Issue 14, item 6: a pool job's completion reaches its waiter even while every allocation
 * fails. What the completion needs (its handle on the loop's cross-thread queue) is made with the
 * job, so posting it cannot fail; the old post retried every millisecond for as long as memory
 * ran out, and the waiter hung. The job itself turns allocation failure on; the waiter checks it
 * was resumed while allocations still failed. A watchdog thread ends the failure after a few
 * seconds only if the completion never arrives (the old behaviour), so that the case fails
 * instead of hanging.
 */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static atomic_bool fail_all;

static void *t_malloc(size_t n)
{
    return atomic_load(&fail_all) ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return atomic_load(&fail_all) ? NULL : realloc(p, n);
}

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond = PTHREAD_COND_INITIALIZER;
static bool wd_done;

static void *watchdog(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&wd_lock);
    while (!wd_done) {
        if (pthread_cond_timedwait(&wd_cond, &wd_lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wd_lock);
    atomic_store(&fail_all, false); /* too late: the case fails below */
    return NULL;
}

static int job(void *arg)
{
    (void)arg;
    atomic_store(&fail_all, true); /* from now on every allocation fails */
    return 42;
}

static int main_task(void *arg)
{
    (void)arg;
    int r = weft_to_thread(job, NULL);
    bool still_failing = atomic_load(&fail_all);
    atomic_store(&fail_all, false);
    CHECK_EQ(r, 42);
    CHECK(still_failing); /* delivered while memory was still out */
    return 0;
}

static void test_pool_completion_without_memory(void)
{
    CHECK_EQ(weft_set_allocator(t_malloc, t_realloc, free), 0);
    pthread_t wd;
    CHECK_EQ(pthread_create(&wd, NULL, watchdog, NULL), 0);
    int r = weft_run(main_task, NULL);
    pthread_mutex_lock(&wd_lock);
    wd_done = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    CHECK_EQ(pthread_join(wd, NULL), 0);
    CHECK_EQ(r, 0);
    CHECK_EQ(weft_pool_shutdown(), 0);
}

TEST_MAIN(test_pool_completion_without_memory)
