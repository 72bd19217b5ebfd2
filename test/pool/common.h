/*
 * Shared helpers of the pool tests: a gate that holds pool jobs until the test opens it, and a
 * pipe through which jobs announce that they started, read by the loop without blocking it.
 */
#ifndef WEFT_TEST_POOL_COMMON_H
#define WEFT_TEST_POOL_COMMON_H

#define _GNU_SOURCE
#include "pool/pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "test.h"

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_is_open;
static int start_pipe[2] = {-1, -1};
static pthread_t loop_thread;

/* Start a test case: gate closed, fresh start pipe, pool stopped and sized `threads`. */
static inline void setup(unsigned threads)
{
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(weft_pool_set_size(threads), 0);
    gate_is_open = false;
    CHECK_EQ(pipe2(start_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    loop_thread = pthread_self();
}

/* End a test case: every pool thread joined (so drops have run), nothing left behind. */
static inline void teardown(void)
{
    CHECK_EQ(weft_pool_shutdown(), 0);
    struct weft__pool_stats s;
    weft__pool_stats(&s);
    CHECK_EQ(s.threads, 0);
    CHECK_EQ(s.queued[0] + s.queued[1] + s.running[0] + s.running[1], 0);
    weft_close(start_pipe[0]);
    weft_close(start_pipe[1]);
}

static inline void gate_open(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_is_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* On a pool thread: wait until the test opens the gate. */
static inline void gate_wait(void)
{
    pthread_mutex_lock(&gate_lock);
    while (!gate_is_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static inline bool gate_closed(void)
{
    pthread_mutex_lock(&gate_lock);
    bool closed = !gate_is_open;
    pthread_mutex_unlock(&gate_lock);
    return closed;
}

/* On a pool thread: tell the loop one more job started. */
static inline void announce(int fd)
{
    char c = 1;
    CHECK_EQ(write(fd, &c, 1), 1);
}

/* In a task: wait until `n` announcements arrived on the read end `fd`. */
static inline void await_announcements(int fd, int n)
{
    while (n > 0) {
        char buf[64];
        ssize_t r = read(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
        if (r > 0) {
            n -= (int)r;
            continue;
        }
        CHECK(r < 0 && errno == EAGAIN);
        CHECK(weft_wait_fd(fd, WEFT_READABLE) > 0);
    }
}

/* In a task: the loop thread blocks (on purpose) until a completion was posted to its loop. */
static inline void await_posted(void)
{
    weft_loop_t *l = weft_loop_current();
    while (!atomic_load(&l->ts_pending))
        sched_yield();
}

static inline struct weft__pool_stats stats(void)
{
    struct weft__pool_stats s;
    weft__pool_stats(&s);
    return s;
}

#endif /* WEFT_TEST_POOL_COMMON_H */
