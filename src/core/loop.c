/*
 * The event loop: one per thread. An iteration starts by taking cross-thread calls, polling I/O
 * and firing due timers as the policy in internal.h (weft__loop_start) says, then runs exactly
 * the tasks and callbacks that were ready at that moment; whatever they make ready runs in the
 * next iteration. Cross-thread calls go through a locked queue and wake the loop with the
 * backend's wake-up only while it sleeps in the poll.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "io/backend.h"

#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

_Thread_local weft_loop_t *weft__tls_loop __attribute__((tls_model("initial-exec")));

_Static_assert(offsetof(weft_task_t, rkind) - offsetof(weft_task_t, rlink) ==
                   offsetof(struct weft__rnode, kind),
               "task ready-node layout");
_Static_assert(offsetof(struct weft__handle, kind) == offsetof(struct weft__rnode, kind),
               "handle ready-node layout");

/* With naps on, the loop's thread gets a timer slack of a tenth of the nap (if its slack was
 * larger: 50 us by default, which would stretch a 50 us nap to 100 us, and napping clients too
 * long leave their peer idle); weft_loop_close() gives the thread its slack back. */
static void nap_slack_set(weft_loop_t *l)
{
#ifdef PR_SET_TIMERSLACK
    int old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    unsigned long want = (unsigned long)(l->nap_ns / 10);
    if (want < 1)
        want = 1; /* 0 would mean "the default" */
    if (old > 0 && (unsigned long)old > want && prctl(PR_SET_TIMERSLACK, want, 0, 0, 0) == 0)
        l->nap_old_slack = (unsigned long)old;
#else
    (void)l;
#endif
}

static void nap_slack_restore(weft_loop_t *l)
{
#ifdef PR_SET_TIMERSLACK
    if (l->nap_old_slack != 0 && pthread_equal(l->owner, pthread_self()))
        prctl(PR_SET_TIMERSLACK, l->nap_old_slack, 0, 0, 0);
#endif
    l->nap_old_slack = 0;
}

int weft_loop_new(weft_loop_t **out, const struct weft_loop_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (weft__tls_loop != NULL)
        return -EBUSY;
    size_t ss = weft_default_stack_size();
    if (opts != NULL && opts->stack_size != 0) {
        if (opts->stack_size < ((size_t)16 << 10) || opts->stack_size > ((size_t)1 << 30))
            return -EINVAL;
        ss = weft__stack_round(opts->stack_size);
    }
    if (opts != NULL && (opts->file_engine < 0 || opts->file_engine > WEFT_FILE_URING))
        return -EINVAL;
    if (opts != NULL && (opts->nap_ns < 0 || opts->nap_ns > 1000000000))
        return -EINVAL;
    weft_loop_t *l = weft__calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    weft__list_init(&l->ready);
    weft__list_init(&l->batch);
    weft__list_init(&l->ts_queue);
    weft__heap_init(&l->timers);
    l->virtual_clock = opts != NULL && opts->virtual_clock;
    l->compact_default = opts != NULL && opts->compact_tasks;
    l->file_engine = opts != NULL ? (uint8_t)opts->file_engine : 0;
    l->nap_ns = opts != NULL ? opts->nap_ns : 0;
    l->nap_next = true;
    l->now = l->virtual_clock ? 0 : weft__clock();
    l->last_poll = WEFT__POLL_UNTIMED;
    l->owner = pthread_self();
    l->stack_size = ss;
    weft__stackpool_init(&l->stacks, ss);
    atomic_init(&l->ts_pending, 0);
    atomic_init(&l->polling, 0);
    atomic_init(&l->sigpending, 0);
    weft__list_init(&l->procs);
    /* Adaptive: pool threads posting completions while the loop drains them hold it briefly;
     * a short spin beats a futex sleep and wake-up on either side. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&l->ts_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    l->backend = &weft__backend_epoll;
    int err = l->backend->init(&l->backend_data, weft__io_event, l);
    if (err < 0) {
        pthread_mutex_destroy(&l->ts_lock);
        weft__free(l);
        return err;
    }
    weft__overflow_thread_init();
    if (l->nap_ns > 0)
        nap_slack_set(l);
#ifdef WEFT_TSAN
    l->tsan_main = __tsan_get_current_fiber();
#endif
    weft__tls_loop = l;
    *out = l;
    return 0;
}

weft_loop_t *weft_loop_current(void)
{
    return weft__tls_loop;
}

bool weft_loop_is_running(const weft_loop_t *loop)
{
    return loop != NULL && loop->running;
}

/* ---- errors nobody could see ---- */

void weft_loop_set_error_handler(weft_loop_t *loop, weft_error_handler_fn fn, void *arg)
{
    if (loop == NULL)
        return;
    loop->on_error = fn;
    loop->on_error_arg = arg;
}

void weft_loop_report(weft_loop_t *loop, const struct weft_error_info *info)
{
    if (info == NULL)
        return;
    if (loop != NULL && loop->on_error != NULL) {
        loop->on_error(loop, info, loop->on_error_arg);
        return;
    }
    /* To stderr in one write that cannot raise SIGPIPE (stderr may be a pipe nobody reads). */
    char line[512];
    int n = snprintf(line, sizeof(line), "weft: %s: %s (%s)%s%s\n",
                     info->message ? info->message : "error", weft_err_name(info->error),
                     weft_strerror(info->error), info->task != NULL ? " in " : "",
                     info->task != NULL ? weft_task_name(info->task) : "");
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    if (n > 0) {
        ssize_t w = weft__write_nosigpipe(2, line, (size_t)n);
        (void)w; /* nowhere left to say it otherwise */
    }
}

void weft__report(weft_loop_t *loop, const char *message, int err, weft_task_t *task)
{
    struct weft_error_info info = {message, err, task};
    weft_loop_report(loop, &info);
}

/* ---- callbacks ---- */

/* A handle the loop frees once it ran; *err says why there is none. */
static struct weft__handle *new_handle(weft_loop_t *loop, weft_callback_fn cb, void *arg, int *err)
{
    if (loop == NULL || cb == NULL || loop->closed) {
        *err = -EINVAL;
        return NULL;
    }
    struct weft__handle *h = weft__malloc(sizeof(*h));
    if (h == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    h->kind = WEFT__RN_HANDLE;
    h->heap = WEFT__H_PLAIN;
    h->cb = cb;
    h->arg = arg;
    return h;
}

int weft_call_soon(weft_loop_t *loop, weft_callback_fn cb, void *arg)
{
    int err;
    struct weft__handle *h = new_handle(loop, cb, arg, &err);
    if (h == NULL)
        return err;
    weft__enqueue_handle(loop, h);
    return 0;
}

int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_fn cb, void *arg)
{
    int err;
    struct weft__handle *h = new_handle(loop, cb, arg, &err);
    if (h == NULL)
        return err;
    weft__post_threadsafe(loop, h);
    return 0;
}

/* Queue what the caller linked at the tail of ts_queue and wake the loop. ts_lock held. */
static void posted(weft_loop_t *loop)
{
    atomic_store(&loop->ts_pending, 1);
    /* Pairs with the loop's store to `polling` before it re-checks ts_pending. Taking the flag
     * makes one caller wake a sleeping loop and the others (pool threads finishing together)
     * skip the eventfd write: the loop is awake and drains every callback queued by then.
     * Done before the unlock: once the loop can see the callback, the caller no longer touches
     * the loop, so the callback may be the last thing before the loop is closed and freed. */
    if (atomic_load(&loop->polling) && atomic_exchange(&loop->polling, 0))
        loop->backend->wake(loop->backend_data);
}

void weft__post_threadsafe(weft_loop_t *loop, struct weft__handle *h)
{
    pthread_mutex_lock(&loop->ts_lock);
    weft__list_append(&loop->ts_queue, &h->link);
    posted(loop);
    pthread_mutex_unlock(&loop->ts_lock);
}

void weft__post_threadsafe_list(weft_loop_t *loop, struct weft__list *hs)
{
    if (weft__list_empty(hs))
        return;
    pthread_mutex_lock(&loop->ts_lock);
    struct weft__list *q = &loop->ts_queue;
    hs->next->prev = q->prev;
    q->prev->next = hs->next;
    hs->prev->next = q;
    q->prev = hs->prev;
    weft__list_init(hs);
    posted(loop);
    pthread_mutex_unlock(&loop->ts_lock);
}

void weft__loop_wake(weft_loop_t *loop)
{
    loop->backend->wake(loop->backend_data);
}

static void drain_threadsafe(weft_loop_t *l)
{
    pthread_mutex_lock(&l->ts_lock);
    atomic_store_explicit(&l->ts_pending, 0, memory_order_relaxed);
    while (!weft__list_empty(&l->ts_queue)) {
        struct weft__list *n = l->ts_queue.next;
        weft__list_remove(n);
        weft__list_append(&l->ready, n);
    }
    pthread_mutex_unlock(&l->ts_lock);
    /* After ts_pending is cleared: a signal flagged later sets it again (signal.c). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&l->sigpending, memory_order_relaxed))
        weft__signal_dispatch(l);
}

/* ---- one iteration ---- */

static void run_handle(struct weft__handle *h)
{
    weft_callback_fn cb = h->cb;
    void *arg = h->arg;
    if (h->heap == WEFT__H_PLAIN)
        weft__free(h);
    else if (h->heap == WEFT__H_UTIMER)
        weft__free(weft__container_of(h, struct weft__utimer, h));
    cb(arg);
}

/* Most idle polls a loop sleeps through without napping after naps that each found one event. */
#define NAP_BACKOFF_MAX 32

/* A nap (weft_loop_opts.nap_ns): sleep off the backend's wait queue (the fds' peers do not wake
 * this thread), for the nap or until the timer *timeout (ns, -1 = none) is due, then look once.
 * True if something came or the timer is due: the caller need not sleep; else *timeout is what
 * is left of it. A signal cuts the nap short (EINTR); cross-thread calls wait for its end.
 * A nap that found a single event batched nothing: sleeping in the poll would have taken that
 * event as soon as it came, and costs this thread less than a timed sleep (the peer pays for the
 * wake-up). Then the loop sleeps in the poll for its next 1, 2, 4 ... 32 idle moments before it
 * tries a nap again; a nap that finds two or more events ends the back-off. */
static bool nap(weft_loop_t *l, int64_t *timeout)
{
    int64_t d = l->nap_ns;
    bool timer_due = *timeout > 0 && *timeout <= d;
    if (timer_due)
        d = *timeout;
    struct timespec ts = {.tv_sec = d / 1000000000, .tv_nsec = d % 1000000000};
    nanosleep(&ts, NULL);
    int n = l->backend->wait(l->backend_data, 0);
    if (n >= 2) {
        l->nap_backoff = 0;
    } else if (n == 1) {
        int b = l->nap_backoff * 2;
        l->nap_backoff = (uint8_t)(b == 0 ? 1 : b > NAP_BACKOFF_MAX ? NAP_BACKOFF_MAX : b);
        l->nap_skip = l->nap_backoff;
    }
    if (n > 0 || atomic_load(&l->ts_pending) || timer_due)
        return true;
    if (*timeout > 0)
        *timeout -= d;
    return false;
}

/* With naps on: nap if the last sleep in the poll was shorter than a nap (and no back-off is
 * running), then, if nothing came and no timer is due, sleep in the poll for what is left of
 * `timeout`. Nap next time only if this sleep ends within a nap's length: what woke it would have
 * been caught by a nap; answers further apart make every nap a wasted wake-up. */
static void nap_then_wait(weft_loop_t *l, int64_t timeout)
{
    if (l->nap_skip > 0)
        l->nap_skip--;
    else if (l->nap_next && nap(l, &timeout))
        return;
    int64_t t0 = weft__clock();
    l->backend->wait(l->backend_data, timeout);
    l->nap_next = weft__clock() - t0 < l->nap_ns;
}

/* Sleep in the backend for up to `timeout` ns (-1 = no limit), unless a cross-thread call is
 * already waiting. Pooled stacks are trimmed first: the loop is idle. */
static void block_poll(weft_loop_t *l, int64_t timeout)
{
    if (l->stacks.dirty != NULL)
        weft__stackpool_trim(&l->stacks);
    atomic_store(&l->polling, 1);
    if (atomic_load(&l->ts_pending))
        timeout = 0;
    if (l->nap_ns > 0 && timeout != 0)
        nap_then_wait(l, timeout);
    else
        l->backend->wait(l->backend_data, timeout);
    /* A caller that still sees 1 only wakes the backend once more for nothing. */
    atomic_store_explicit(&l->polling, 0, memory_order_relaxed);
}

/* Poll I/O: wait until the earliest timer when nothing is ready, else only look. */
static void poll_io(weft_loop_t *l, bool have_ready)
{
    int64_t timeout;
    if (have_ready || l->stopping) {
        timeout = 0;
    } else if (weft__timers_any(&l->timers)) {
        int64_t d = weft__timers_first(&l->timers) - weft__now(l);
        timeout = d < 0 ? 0 : d;
    } else {
        timeout = -1;
    }
    if (timeout == 0) {
        l->backend->wait(l->backend_data, 0);
    } else if (!l->virtual_clock) {
        block_poll(l, timeout);
    } else {
        /* Virtual clock: look for I/O without waiting; if nothing at all happened, time jumps
         * to the next timer instead of passing. */
        int n = l->backend->wait(l->backend_data, 0);
        if (n == 0 && weft__list_empty(&l->ready) && !atomic_load(&l->ts_pending)) {
            if (weft__timers_any(&l->timers)) {
                int64_t first = weft__timers_first(&l->timers);
                if (first > l->now)
                    l->now = first;
            } else {
                block_poll(l, -1);
            }
        }
    }
}

/*
 * The iteration start that polls (the policy is described at weft__loop_start() in
 * internal.h): cross-thread calls, then, unless the loop is busy and no poll is due after all,
 * the poll, the clock and the due timers; the ready queue becomes the batch.
 */
void weft__loop_poll(weft_loop_t *l)
{
    if (atomic_load_explicit(&l->ts_pending, memory_order_relaxed))
        drain_threadsafe(l);
    bool have_ready = !weft__list_empty(&l->ready);
    int64_t polled_at = WEFT__POLL_UNTIMED;
    if (have_ready && !l->stopping) {
        if (weft__loop_busy_start(l))
            return;
        polled_at = l->now; /* a poll is due: the busy start read the clock just now */
    }
    poll_io(l, have_ready);
    if (atomic_load_explicit(&l->ts_pending, memory_order_relaxed))
        drain_threadsafe(l);
    if (weft__timers_any(&l->timers)) {
        l->last_poll = weft__now(l);
        weft__timers_expire(l, l->now);
    } else {
        /* Without timers the time of a blocking poll is not read (it would cost a clock read
         * per poll on a server's path): a busy iteration that needs it polls first. */
        l->last_poll = l->virtual_clock ? l->now : polled_at;
    }
    weft__loop_begin_batch(l);
}

/*
 * One iteration: its start (weft__loop_start(), or weft__loop_poll() when a poll is due), then
 * the batch in order. A task that suspends when the batch is used up may start the next
 * iteration itself (next_runnable() in task.c), so that the loop's own context is entered only
 * for callbacks and to stop.
 */
void weft__loop_iterate(weft_loop_t *l)
{
    if (!weft__loop_start(l))
        weft__loop_poll(l);
    while (!weft__list_empty(&l->batch)) {
        struct weft__list *n = l->batch.next;
        weft__list_remove(n);
        if (((struct weft__rnode *)n)->kind == WEFT__RN_TASK)
            weft__task_run(l, weft__container_of(n, weft_task_t, rlink));
        else
            run_handle((struct weft__handle *)n);
    }
}

int weft_loop_run(weft_loop_t *loop)
{
    if (loop == NULL || loop->closed)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    if (weft__tls_loop != loop || !pthread_equal(loop->owner, pthread_self()))
        return -EINVAL;
    loop->running = 1;
    loop->tasks_iterate = 1; /* nothing but `stopping` ends this run */
    do {
        weft__loop_iterate(loop);
    } while (!loop->stopping);
    loop->tasks_iterate = 0;
    loop->stopping = 0;
    loop->running = 0;
    return 0;
}

void weft_loop_stop(weft_loop_t *loop)
{
    if (loop != NULL)
        loop->stopping = 1;
}

static void drop_handle(struct weft__handle *h)
{
    if (h->heap == WEFT__H_PLAIN)
        weft__free(h);
    else if (h->heap == WEFT__H_UTIMER)
        weft__free(weft__container_of(h, struct weft__utimer, h));
    else if (h->heap == WEFT__H_FENTRY)
        weft__fentry_drop(h);
}

static void drop_queue(struct weft__list *q)
{
    while (!weft__list_empty(q)) {
        struct weft__list *n = q->next;
        weft__list_remove(n);
        if (((struct weft__rnode *)n)->kind == WEFT__RN_HANDLE)
            drop_handle((struct weft__handle *)n);
    }
}

int weft_loop_close(weft_loop_t *loop)
{
    if (loop == NULL)
        return -EINVAL;
    if (loop->running)
        return -EBUSY;
    loop->closed = 1;
    weft__task_mem_orphan_all(loop);
    /* Orphaned tasks may have queued more callbacks; drop until both queues stay empty. */
    while (!weft__list_empty(&loop->ready) || !weft__list_empty(&loop->ts_queue) ||
           !weft__list_empty(&loop->batch)) {
        drop_queue(&loop->ready);
        drop_queue(&loop->batch);
        pthread_mutex_lock(&loop->ts_lock);
        drop_queue(&loop->ts_queue);
        pthread_mutex_unlock(&loop->ts_lock);
    }
    weft__signal_loop_fini(loop);
    weft__proc_loop_fini(loop);
    weft__heap_fini(&loop->timers);
    weft__files_fini(loop);
    weft__fd_fini(loop);
    loop->backend->fini(loop->backend_data);
    loop->backend_data = NULL;
    weft__compact_fini(loop);
    weft__stackpool_fini(&loop->stacks);
    weft__task_mem_fini(loop);
#ifdef WEFT_TSAN
    weft__tsan_fibers_fini(loop);
#endif
    pthread_mutex_destroy(&loop->ts_lock);
    nap_slack_restore(loop);
    if (weft__tls_loop == loop)
        weft__tls_loop = NULL;
    weft__free(loop);
    return 0;
}
