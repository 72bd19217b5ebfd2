/*
 * The process-wide thread pool (private). pool.c owns the threads and the per-class queues;
 * work.c is the loop side: a task hands a job over, parks, and either collects the result or
 * leaves (cancel, deadline) following the rules in docs/threadpool.md.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include "internal.h"

/* Queues: each class has its own FIFO and a cap on the threads it may occupy at once. */
enum {
    WEFT__POOL_WORK = 0, /* weft_to_thread(): general blocking work */
    WEFT__POOL_SLOW = 1, /* DNS and other slow I/O: at most half the pool */
    WEFT__POOL_NCLASS = 2,
};

/* Job states, changed only under the pool lock. */
enum {
    WEFT__J_QUEUED = 0,    /* in its class queue, not started */
    WEFT__J_RUNNING = 1,   /* fn is running on a pool thread */
    WEFT__J_POSTED = 2,    /* fn finished; the completion callback is (being) posted to the loop */
    WEFT__J_ABANDONED = 3, /* fn is running and the waiter left: the thread drops and frees */
};

typedef int (*weft__job_fn)(void *arg);
typedef void (*weft__drop_fn)(void *arg, int result);

/* One piece of work handed to the pool (weft__malloc'd by the loop side). */
struct weft__job {
    struct weft__list link; /* in its class queue while QUEUED */
    uint64_t seq;           /* submission order across classes */
    weft__job_fn fn;
    void *arg;
    weft__drop_fn drop; /* may be NULL */
    weft_loop_t *loop;  /* where the completion goes */
    weft_task_t *waiter;
    int result;
    uint8_t cls;       /* WEFT__POOL_* */
    uint8_t state;     /* WEFT__J_*, pool lock */
    uint8_t delivered; /* the completion ran on the loop (loop thread only) */
    uint8_t detached;  /* no waiter, no completion: see WEFT__POOL_AGAIN */
    struct weft__handle done; /* the completion's handle, made with the job: posting it
                               * needs no memory, so it cannot fail */
};

/*
 * Queue `j` (fields fn, arg, drop, loop, waiter, cls set) and make sure a thread will pick it up,
 * starting one if the pool is below its size. Returns 0, or -EAGAIN / -ENOMEM when no thread
 * exists and none could be started (then `j` is not queued). Never blocks.
 */
int weft__pool_submit(struct weft__job *j);

/*
 * A detached job (`detached` set; loop, waiter and the completion handle unused) belongs to its
 * owner: when fn returns r, the pool's last use of it is drop(arg, r) (required), on the pool
 * thread; nothing is posted and nothing freed, so the owner may submit it again from drop.
 * Returning WEFT__POOL_AGAIN instead puts it at the back of its class queue, behind the work
 * queued meanwhile, and fn runs again later (a long job taking turns with other work). Never
 * left (weft__pool_leave). The file engine's reader (src/fs/drain.c) is one.
 */
#define WEFT__POOL_AGAIN 0x7fffffff

/* Whether jobs wait in a queue for a thread: a hint, read without the lock (a detached job
 * that has run for a while gives its thread up when it is true). */
bool weft__pool_others_queued(void);

/*
 * The waiter leaves `j` (cancelled, deadline passed, or its timer could not be armed) and gets
 * the state it found. QUEUED: `j` was removed and is the caller's again (fn never ran).
 * RUNNING: with `abandon`, `j` is now ABANDONED and belongs to the pool thread, which calls drop
 * and frees it; without, it stays RUNNING and the caller must wait for the completion. POSTED:
 * the completion callback is queued or about to be; the caller must wait for it before freeing.
 */
int weft__pool_leave(struct weft__job *j, bool abandon);

/*
 * Called on a pool thread when what is left of its job is short (no system call that may
 * block): until the thread looks at the queue again, a submission counts it as a thread on its
 * way and wakes none. The file engine's reader calls it before it submits itself again from its
 * drop (src/fs/drain.c), so that its own thread takes it.
 */
void weft__pool_returning(void);

/* Whether a job submitted now would find a thread awake (spinning, or returning) instead of
 * waking one: a hint, read without the lock. */
bool weft__pool_awake(void);

/* Loop side: the completion callback a pool thread posts with weft_call_soon_threadsafe. */
void weft__job_complete(void *arg);

/*
 * Run fn(arg) in class `cls` and wait for it in the current task (the body of weft_to_thread
 * and the DNS calls). Returns fn's result, -ECANCELED, -ETIMEDOUT, -EPERM (outside a task),
 * -EINVAL, -ENOMEM, -EAGAIN. When it returns -ECANCELED or -ETIMEDOUT, `drop` (if any) has been
 * or will be called exactly once with arg and fn's result (-ECANCELED if fn never ran);
 * otherwise `drop` is never called.
 */
int weft__pool_call(int cls, weft__job_fn fn, void *arg, weft__drop_fn drop, int64_t deadline);

/* A snapshot of the pool's counters (tests and docs). */
struct weft__pool_stats {
    unsigned size;    /* the bound on threads */
    unsigned threads; /* threads alive (started and not exited) */
    unsigned idle;    /* threads waiting for work */
    unsigned cap[WEFT__POOL_NCLASS];
    unsigned running[WEFT__POOL_NCLASS];
    unsigned queued[WEFT__POOL_NCLASS];
};

void weft__pool_stats(struct weft__pool_stats *s);

#endif /* WEFT_POOL_H */
