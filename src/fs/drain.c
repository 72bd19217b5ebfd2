/*
 * The reader: a loop's cached reads handed to one pool thread in batches (docs/files.md, "Using
 * a second core"). Handing one read at a time to the pool costs a lock, a queue and a wake-up
 * on the way there, and a lock and a wake-up on the way back, for a read of 1-2 us. Here:
 *
 * - while the reader's pool job (a detached job, pool.h) runs, a task pushes its read on the
 *   reader's list (one compare-and-swap, no lock, no wake-up) and parks; otherwise the loop
 *   starts the job (when a pool thread is awake to take it, or now and then) and reads inline
 *   meanwhile, so no read waits behind other pool work and a steady stream of reads costs one
 *   pool submission in all;
 * - the reader takes the whole list at once (one exchange), makes each read with
 *   weft__fs_read_nowait() (RWF_NOWAIT: it never waits for a device, so a leaving task waits for
 *   a claimed read at most a memory copy), and posts the batch's completions to the loop with
 *   one lock and at most one wake-up (weft__post_threadsafe_list); then it looks again;
 * - what NOWAIT cannot read (not cached, a pipe without data) comes back to the task, which
 *   hands it to the pool as any read (weft__fs_read_finish).
 *
 * Each read is FREE until the reader claims it (USER: it reads into the caller's buffer now) or
 * its task leaves (cancel, deadline) and marks it GONE: the reader frees a GONE read unread.
 * The reader ends its job when the list stays empty for DRAIN_WAIT_NS, and gives its thread up
 * to other queued work (WEFT__POOL_AGAIN: back of the queue) after DRAIN_SLICE reads, so that a
 * flood of reads holds one pool thread per loop and takes turns with weft_to_thread() work. The
 * reader's state outlives the loop while its job runs: the loop's close marks it closed and the
 * job's end frees it.
 */
#include "fs/fs.h"
#include "pool/pool.h"

#include <stdalign.h>
#include <string.h>

enum { R_FREE = 0, R_USER, R_GONE };

struct dread {
    struct dread *next;       /* in the reader's list */
    struct weft__handle done; /* the completion, posted with the batch */
    weft_task_t *task;
    int fd;
    bool rest;         /* the reader's answer: the rest is not cached */
    uint8_t delivered; /* the completion ran (loop thread) */
    atomic_int state;  /* R_* */
    void *buf;
    size_t len;
    int64_t off;
    ssize_t n; /* the reader's answer (weft__fs_read_nowait) */
};

/* Reads the reader makes before it gives its thread up, when other work is queued. */
#define DRAIN_SLICE 256
/* How long the reader looks for more reads before its job ends. */
#define DRAIN_WAIT_NS 30000
/* Reads kept inline between two starts of the reader on a sleeping pool thread. */
#define WEFT__FS_WAKE_EVERY 64

struct weft__drain {
    struct weft__job job; /* the reader's pool job (detached) */
    weft_loop_t *loop;
    pthread_mutex_t lock; /* the job's end against the loop's close */
    bool closed;          /* the loop is gone: the job's end frees the state */
    /* Written by both sides at every hand-over: a line of their own. */
    alignas(64) _Atomic(struct dread *) list; /* pushed by the loop, taken whole by the reader */
    atomic_uint queued;                       /* handed over and not yet made nor taken back */
    atomic_int running;                       /* the job takes reads: a hand-over is made at once */
    atomic_int active; /* the job is queued or running (its struct is in the pool's hands) */
};

static void drain_free(struct weft__drain *d)
{
    /* Reads left on the list were taken back (GONE) by their tasks. */
    struct dread *e = atomic_load(&d->list);
    while (e != NULL) {
        struct dread *next = e->next;
        weft__free(e);
        e = next;
    }
    pthread_mutex_destroy(&d->lock);
    weft__free_line(d);
}

atomic_ulong weft__fs_drain_reads;

/* Take every read on the list and make it; the completions go to the loop in one post.
 * Returns how many were made. */
static unsigned drain_batch(struct weft__drain *d)
{
    struct dread *e = atomic_exchange(&d->list, NULL);
    struct dread *fifo = NULL; /* pushed newest first: made in the order handed over */
    while (e != NULL) {
        struct dread *next = e->next;
        e->next = fifo;
        fifo = e;
        e = next;
    }
    struct weft__list posts;
    weft__list_init(&posts);
    unsigned made = 0;
    for (e = fifo; e != NULL;) {
        struct dread *next = e->next;
        int s = R_FREE;
        if (!atomic_compare_exchange_strong(&e->state, &s, R_USER)) {
            weft__free(e); /* GONE: its task took it back and counted it out */
        } else {
            e->n = weft__fs_read_nowait(e->fd, e->buf, e->len, e->off, &e->rest);
            atomic_fetch_sub_explicit(&d->queued, 1, memory_order_relaxed);
            weft__list_append(&posts, &e->done.link);
            made++;
        }
        e = next;
    }
    atomic_fetch_add_explicit(&weft__fs_drain_reads, made, memory_order_relaxed);
    /* The tasks wait for these, so the loop is there; once they are posted, neither the loop
     * nor the reads are touched again. */
    weft__post_threadsafe_list(d->loop, &posts);
    return made;
}

/* The pool thread's part. */
static int drain_job(void *arg)
{
    struct weft__drain *d = arg;
    atomic_store(&d->running, 1);
    unsigned made = 0;
    int ret = 0;
    for (;;) {
        if (atomic_load_explicit(&d->list, memory_order_relaxed) != NULL) {
            made += drain_batch(d);
            if (made >= DRAIN_SLICE && weft__pool_others_queued()) {
                ret = WEFT__POOL_AGAIN; /* take turns with the work queued meanwhile */
                break;
            }
            continue;
        }
        /* The loop hands reads over as its tasks run: wait a little for the next ones before
         * the job ends (a plain loop, no PAUSE: see pool.c). */
        int64_t end = weft__clock() + DRAIN_WAIT_NS;
        while (atomic_load_explicit(&d->list, memory_order_relaxed) == NULL && weft__clock() < end)
            ;
        if (atomic_load_explicit(&d->list, memory_order_relaxed) == NULL)
            break;
    }
    /* Stopping: from here the loop hands nothing over (it reads inline, or takes back a read it
     * pushed as this stopped); what it pushed before is on the list (both sides sequentially
     * consistent: the loop pushes, then looks at `running`). */
    atomic_store(&d->running, 0);
    drain_batch(d);
    return ret;
}

/* The job ended (the pool's last use of it). */
static void drain_drop(void *arg, int result)
{
    (void)result;
    struct weft__drain *d = arg;
    pthread_mutex_lock(&d->lock);
    if (d->closed) {
        pthread_mutex_unlock(&d->lock);
        drain_free(d);
        return;
    }
    /* A read pushed for a job that was queued (weft__fs_offload_always) may have come after
     * the last batch: then the job starts again (pairs with the loop's push, then load of
     * `active`). Reads taken back (GONE) are freed by the next batch or the loop's close. */
    atomic_store(&d->active, 0);
    int idle = 0;
    if (atomic_load(&d->list) == NULL || !atomic_compare_exchange_strong(&d->active, &idle, 1)) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    pthread_mutex_unlock(&d->lock);
    weft__pool_returning(); /* this thread takes it: the submission wakes none */
    if (weft__pool_submit(&d->job) < 0) {
        /* The process is exiting: nobody waits for these reads any more. */
        pthread_mutex_lock(&d->lock);
        bool closed = d->closed;
        atomic_store(&d->active, 0);
        pthread_mutex_unlock(&d->lock);
        if (closed)
            drain_free(d);
    }
}

static struct weft__drain *drain_new(weft_loop_t *l)
{
    struct weft__drain *d = weft__malloc_line(sizeof(*d));
    if (d == NULL)
        return NULL;
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
    d->loop = l;
    atomic_init(&d->list, NULL);
    atomic_init(&d->queued, 0);
    atomic_init(&d->running, 0);
    atomic_init(&d->active, 0);
    weft__list_init(&d->job.link);
    d->job.fn = drain_job;
    d->job.arg = d;
    d->job.drop = drain_drop;
    d->job.cls = WEFT__POOL_WORK;
    d->job.detached = 1;
    return d;
}

void weft__drain_close(struct weft__drain *d)
{
    pthread_mutex_lock(&d->lock);
    bool running = atomic_load(&d->active) != 0;
    d->closed = true;
    pthread_mutex_unlock(&d->lock);
    if (!running)
        drain_free(d);
}

static void dread_done(void *arg)
{
    struct dread *e = arg;
    e->delivered = 1;
    weft__wake(e->task, 0);
}

/* Wait (not cancellable) for the read's completion; a cancel meanwhile stays pending. */
static void await_delivery(weft_task_t *t, struct dread *e)
{
    bool again = false;
    while (!e->delivered)
        if (weft__park(t, WEFT__P_PRIM, e, NULL, WEFT_NO_DEADLINE) == -ECANCELED)
            again = true;
    if (again)
        t->must_cancel = 1;
}

/* The read was delivered: its result for the caller. `left` is why the task tried to leave
 * (-ECANCELED, -ETIMEDOUT) or 0. */
static ssize_t finish(weft_task_t *t, struct dread *e, const struct weft__fsop *op, int left,
                      int64_t deadline)
{
    ssize_t n = e->n;
    bool rest = e->rest;
    weft__free(e);
    if (left == 0)
        return weft__fs_read_finish(t, op, n, rest, deadline);
    if (n <= 0)
        return left; /* nothing was read */
    if (left == -ECANCELED)
        t->must_cancel = 1; /* the bytes are reported; the cancel waits for the next point */
    return n;
}

/* Start the reader's job. Loop thread; the job is not queued nor running. */
static bool drain_start(struct weft__drain *d)
{
    int idle = 0;
    if (!atomic_compare_exchange_strong(&d->active, &idle, 1))
        return true; /* its end has not been seen yet: it is still there */
    if (weft__pool_submit(&d->job) < 0) {
        atomic_store(&d->active, 0);
        return false;
    }
    return true;
}

/* Take a read back from the list, if the reader has not claimed it. */
static bool take_back(struct weft__drain *d, struct dread *e)
{
    int s = R_FREE;
    if (!atomic_compare_exchange_strong(&e->state, &s, R_GONE))
        return false;
    atomic_fetch_sub_explicit(&d->queued, 1, memory_order_relaxed);
    return true; /* the next batch (or the close) frees it unread */
}

ssize_t weft__fs_drain_run(weft_task_t *t, struct weft__files *f, struct weft__fsop *op,
                           int64_t deadline, bool *handed)
{
    *handed = false;
    struct weft__drain *d = f->drain;
    if (d == NULL && (d = f->drain = drain_new(t->fut.loop)) == NULL)
        return 0;
    bool always = weft__fs_offload_always;
    if (!always &&
        atomic_load_explicit(&d->queued, memory_order_relaxed) >= (unsigned)f->offload_max)
        return 0;
    if (!atomic_load(&d->running)) {
        /* The reader is idle or waits for a pool thread. Starting it costs a submission, and
         * a futex call on each side when the pool thread sleeps: only when a thread is awake
         * to take it, or once per WEFT__FS_WAKE_EVERY reads that could have gone. Meanwhile
         * reads are made inline: none waits behind other pool work. */
        if (atomic_load_explicit(&d->active, memory_order_relaxed) == 0 &&
            (always || weft__pool_awake() || ++f->unwoken >= WEFT__FS_WAKE_EVERY)) {
            f->unwoken = 0;
            if (!drain_start(d))
                return 0;
        }
        if (!always)
            return 0;
    }
    struct dread *e = weft__malloc(sizeof(*e));
    if (e == NULL)
        return 0;
    e->task = t;
    e->fd = op->fd;
    e->buf = op->buf;
    e->len = op->len;
    e->off = op->off;
    e->n = 0;
    e->rest = false;
    e->delivered = 0;
    atomic_init(&e->state, R_FREE);
    e->done.kind = WEFT__RN_HANDLE;
    e->done.heap = WEFT__H_NONE;
    e->done.cb = dread_done;
    e->done.arg = e;
    weft__list_init(&e->done.link);
    atomic_fetch_add_explicit(&d->queued, 1, memory_order_relaxed);
    struct dread *head = atomic_load_explicit(&d->list, memory_order_relaxed);
    do
        e->next = head;
    while (!atomic_compare_exchange_weak(&d->list, &head, e));
    if (always) {
        if (atomic_load(&d->active) == 0 && !drain_start(d) && take_back(d, e))
            return 0;
    } else if (!atomic_load(&d->running) && take_back(d, e)) {
        return 0; /* the reader stopped before it could see this read */
    }
    *handed = true;
    int r = weft__park(t, WEFT__P_PRIM, e, NULL, deadline);
    if (e->delivered)
        return finish(t, e, op, r == -ECANCELED ? -ECANCELED : 0, deadline);
    if (r == -ENOMEM) {
        /* The deadline timer could not be armed: the task never suspended. Wait it out. */
        await_delivery(t, e);
        return finish(t, e, op, 0, deadline);
    }
    /* Leaving early (-ECANCELED, -ETIMEDOUT): a read not yet claimed is taken back at once. */
    if (take_back(d, e))
        return r;
    /* Claimed: the reader is copying from the page cache into the buffer (it never waits for a
     * device); wait for the completion. */
    await_delivery(t, e);
    return finish(t, e, op, r, deadline);
}
