/*
 * Tasks: stackful coroutines scheduled by the loop. A task is a future (its outcome) plus a
 * function, a stack it gets when it first runs and gives back when it ends, and the park: the one
 * way any weft call suspends. Cancellation follows asyncio 3.13: a counted request, delivered once
 * as -ECANCELED at the current or next suspension point, forwarded to an awaited task or future.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define STACK_MIN ((size_t)16 << 10)
#define STACK_MAX ((size_t)1 << 30)
#ifdef WEFT_ASAN
#define STACK_DEFAULT ((size_t)512 << 10) /* ASan frames are larger */
#else
#define STACK_DEFAULT ((size_t)256 << 10)
#endif

static atomic_size_t default_stack = STACK_DEFAULT;
/* Ids are handed to loops in blocks: a spawn then takes no locked instruction. */
#define ID_BLOCK 1024
static atomic_uint_fast64_t next_id = 1;

size_t weft_default_stack_size(void)
{
    return atomic_load(&default_stack);
}

int weft_set_default_stack_size(size_t bytes)
{
    if (bytes < STACK_MIN || bytes > STACK_MAX)
        return -EINVAL;
    atomic_store(&default_stack, weft__stack_round(bytes));
    return 0;
}

/* ---- switching ----
 *
 * The loop runs the items of an iteration's batch in order. When a task suspends and the next
 * item of the batch is a task too, the suspending task switches straight to it instead of going
 * through the loop: the order is the same, with one context switch per hand-off instead of two.
 * A finished task cannot give back the stack it is running on, so it leaves itself in
 * loop->reap and whoever runs next (a task or the loop) returns the stack.
 */

#ifdef WEFT_TSAN
/* A fiber for a task: one a finished task left, else a new one. Reusing a fiber orders the new
 * task after the old one, which ran on the same thread anyway. */
static void *tsan_fiber_get(weft_loop_t *l)
{
    if (l->ntsan_free > 0)
        return l->tsan_free[--l->ntsan_free];
    return __tsan_create_fiber(0);
}

static void tsan_fiber_put(weft_loop_t *l, void *f)
{
    if (l->ntsan_free < WEFT__TSAN_FIBERS_KEPT)
        l->tsan_free[l->ntsan_free++] = f;
    else
        __tsan_destroy_fiber(f);
}

void weft__tsan_fibers_fini(weft_loop_t *l)
{
    while (l->ntsan_free > 0)
        __tsan_destroy_fiber(l->tsan_free[--l->ntsan_free]);
}
#endif

static void task_unref(weft_task_t *t)
{
    if (--t->fut.refs == 0)
        weft__task_free(t);
}

/* Record the outcome: the function's result or error, or cancelled (see below). */
static void task_finish(weft_loop_t *l, weft_task_t *t, int r)
{
    /* A pending request replaces a result, not an error: asyncio cancels a task whose coroutine
     * returns in the step it was cancelled in, but an exception escaping it is set as is. */
    bool cancelled = r == -ECANCELED || (t->must_cancel && r >= 0);
    t->must_cancel = 0;
    t->state = WEFT__T_DONE;
    l->ntasks--;
    weft__future_complete(&t->fut, cancelled ? WEFT__F_CANCELLED : WEFT__F_DONE,
                          cancelled ? -ECANCELED : r);
}

static inline void reap(weft_loop_t *l)
{
    weft_task_t *dead = l->reap;
    if (dead != NULL) {
        l->reap = NULL;
        if (dead->compact)
            weft__compact_drop(l, dead);
        else
            weft__stack_give(&l->stacks, dead->stack);
        dead->stack = NULL;
#ifdef WEFT_TSAN
        tsan_fiber_put(l, dead->tsan_fiber);
        dead->tsan_fiber = NULL;
#endif
        task_unref(dead);
    }
}

/* A new task ends without running its function: its owner's cleanup runs instead. */
static void unstarted_cleanup(weft_task_t *t)
{
    if (t->cold != NULL && t->cold->unstarted != NULL) {
        void (*fn)(void *) = t->cold->unstarted;
        t->cold->unstarted = NULL;
        fn(t->arg);
    }
}

static __attribute__((noinline)) bool task_never_runs(weft_loop_t *l, weft_task_t *t, int r)
{
    unstarted_cleanup(t);
    task_finish(l, t, r);
    task_unref(t);
    return false;
}

/*
 * Make `t` (just taken off the batch) runnable: a new task gets its stack and first frame.
 * Returns false when it ended without running (cancelled before its first step, or no stack).
 */
static bool task_prepare(weft_loop_t *l, weft_task_t *t)
{
    if (t->state != WEFT__T_NEW)
        return true;
    if (t->must_cancel) {
        /* Cancelled before its first step: the function never runs (asyncio throws the
         * CancelledError into the coroutine before its first line). */
        return task_never_runs(l, t, -ECANCELED);
    }
    if (!t->compact) {
        t->stack = weft__stack_take(&l->stacks, t->stack_size);
        if (t->stack == NULL)
            return task_never_runs(l, t, -ENOMEM);
        t->stack_lo = weft__stack_tag(t->stack);
        t->ctx = weft__ctx_make(t->stack->lo + t->stack->size, weft__task_entry);
    } else if (l->cstack == NULL) {
        /* Its first frame is made when it takes the shared stack (weft__compact_enter). */
        l->cstack = weft__stack_get(&l->stacks, l->stack_size);
        if (l->cstack == NULL)
            return task_never_runs(l, t, -ENOMEM);
    }
#ifdef WEFT_TSAN
    t->tsan_fiber = tsan_fiber_get(l);
#endif
    return true;
}

void weft__task_run(weft_loop_t *l, weft_task_t *t)
{
    if (!task_prepare(l, t))
        return;
    if (t->compact)
        weft__compact_enter(l, t); /* cannot fail: the shared stack exists */
    t->state = WEFT__T_RUNNING;
    l->current = t;
#ifdef WEFT_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, t->stack->lo, t->stack->size);
#endif
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    weft__ctx_switch(&l->main_ctx, t->ctx, t);
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    l->current = NULL;
    reap(l);
}

#ifndef WEFT_FIBER_SANITIZER
/*
 * The next runnable task, taken off the batch; NULL when the loop must run next (a callback is
 * first, or an I/O poll is due). When the batch is used up, the next iteration starts right
 * here if it would not poll: exactly what the loop would do, without a switch to get there.
 */
static inline __attribute__((always_inline)) weft_task_t *next_runnable(weft_loop_t *l,
                                                                     const weft_task_t *cur)
{
    for (;;) {
        struct weft__list *n = l->batch.next;
        if (n == &l->batch) {
            if (l->stopping)
                return NULL;
            if (!weft__loop_start(l)) {
                /* A poll is due (the policy: weft__loop_start in internal.h). */
                if (!l->tasks_iterate || cur->state == WEFT__T_DONE ||
                    (uintptr_t)__builtin_frame_address(0) <
                        (cur->stack_lo & ~(uintptr_t)1) + WEFT__ITERATE_ROOM)
                    return NULL;
                /* The next iteration, poll included, on this stack: no switch to the loop and
                 * back, and none at all when the poll wakes this task. */
                weft__loop_poll(l);
                continue;
            }
            n = l->batch.next;
        }
        if (((struct weft__rnode *)n)->kind != WEFT__RN_TASK)
            return NULL;
        weft_task_t *next = weft__container_of(n, weft_task_t, rlink);
        /* A compact task cannot rewrite the stack it runs on: the loop makes that switch. */
        if (cur->compact && next->compact && next != cur)
            return NULL;
        weft__list_remove(n);
        if (task_prepare(l, next))
            return next;
    }
}
#endif

/* Leave the running task `t` (its state already says why) for the next task or the loop.
 * Inlined into its three callers: a resumed task returns through one frame fewer, and each
 * return after a switch or a poll is a mispredicted one. */
static inline __attribute__((always_inline)) void suspend(weft_loop_t *l, weft_task_t *t)
{
#ifdef WEFT_FIBER_SANITIZER
#ifdef WEFT_ASAN
    void *fake = NULL;
    bool exiting = t->state == WEFT__T_DONE;
    __sanitizer_start_switch_fiber(exiting ? NULL : &fake, l->main_stack_bottom,
                                   l->main_stack_size);
#endif
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(l->tsan_main, 0);
#endif
    weft__ctx_switch(&t->ctx, l->main_ctx, NULL);
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(fake, &l->main_stack_bottom, &l->main_stack_size);
#endif
#else
    weft_task_t *next = next_runnable(l, t);
    if (next == t) {
        t->state = WEFT__T_RUNNING; /* its own turn came up next: no switch at all */
        return;
    }
    if (next != NULL) {
        if (next->compact)
            weft__compact_enter(l, next); /* `t` is not compact: it runs on a stack of its own */
        next->state = WEFT__T_RUNNING;
        l->current = next;
        weft__ctx_switch(&t->ctx, next->ctx, next);
    } else {
        weft__ctx_switch(&t->ctx, l->main_ctx, NULL);
    }
    reap(l);
#endif
}

void weft__task_entry(void *arg)
{
    weft_task_t *t = arg;
    weft_loop_t *l = t->fut.loop;
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(NULL, &l->main_stack_bottom, &l->main_stack_size);
#endif
#ifndef WEFT_FIBER_SANITIZER
    reap(l);
#endif
    int r = t->fn(t->arg);
    task_finish(l, t, r);
    l->reap = t;
    suspend(l, t);
    __builtin_unreachable();
}

/* ---- the park ---- */

static __attribute__((noinline, cold)) void stack_check_slow(weft_task_t *t, uintptr_t frame)
{
    uintptr_t lo = t->stack_lo & ~(uintptr_t)1;
    if (!(t->stack_lo & 1))
        weft__overflow_report(t, "ran past the end of");
    /* A guard page faults when touched, but a frame larger than a page can step over it into
     * whatever lies below (another task's stack) without touching it: the stack pointer is
     * then below the stack's bottom. */
    if (frame < lo)
        weft__overflow_report(t, "jumped the guard page below");
}

/* Check, as `t` suspends with its frame at `frame`, that it is still within its stack: within
 * WEFT__STACK_REDZONE of an unguarded stack's end, or below a guarded stack's bottom, is an
 * overflow (named, then abort). One comparison on the way. */
static inline __attribute__((always_inline)) void stack_check(weft_task_t *t, uintptr_t frame)
{
    if (WEFT__UNLIKELY(frame < (t->stack_lo | 1) + WEFT__STACK_REDZONE))
        stack_check_slow(t, frame);
}

int weft__park(weft_task_t *t, uint8_t kind, void *obj, struct weft__list *link, int64_t deadline)
{
    weft_loop_t *l = t->fut.loop;
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    struct weft__park p;
    p.kind = kind;
    t->fut.wake_result = 0;
    p.obj = obj;
    p.link = link;
    p.timer.tn.idx = WEFT__TN_IDLE;
    if (deadline >= 0) {
        p.timer.tn.kind = WEFT__TN_TASK;
        p.timer.task = t;
        int err = weft__timer_arm(l, &p.timer.tn, deadline);
        if (err < 0)
            return err;
    }
    t->park = &p;
    t->state = WEFT__T_PARKED;
    stack_check(t, (uintptr_t)__builtin_frame_address(0));
    suspend(l, t);
    /* A compact task's frames, `p` among them, are back where they were. */
    t->park = NULL;
    if (weft__timer_armed(&p.timer.tn))
        weft__timer_disarm(l, &p.timer.tn);
    if (link != NULL && weft__list_linked(link))
        weft__list_remove(link);
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    return t->fut.wake_result;
}

void weft__wake(weft_task_t *t, int result)
{
    if (t->state != WEFT__T_PARKED)
        return;
    t->state = WEFT__T_READY;
    t->fut.wake_result = result;
    weft__enqueue_task(t->fut.loop, t);
}

int weft_yield(void)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    weft_loop_t *l = t->fut.loop;
    stack_check(t, (uintptr_t)__builtin_frame_address(0));
    t->state = WEFT__T_READY;
    weft__enqueue_task(l, t);
    suspend(l, t);
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    return 0;
}

int weft_sleep_until(int64_t deadline)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (deadline < 0)
        deadline = WEFT_NO_DEADLINE;
    int r = weft__park(t, WEFT__P_SLEEP, NULL, NULL, deadline);
    return r == -ETIMEDOUT ? 0 : r;
}

int weft_sleep(double seconds)
{
    int64_t ns = weft_seconds_to_ns(seconds);
    if (ns < 0)
        return -EINVAL;
    if (ns == 0)
        return weft_yield();
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    int64_t now = weft__now(t->fut.loop);
    if (ns == INT64_MAX || ns > INT64_MAX - now)
        return weft_sleep_until(WEFT_NO_DEADLINE);
    return weft_sleep_until(now + ns);
}

/* ---- creation and handles ---- */

/* A slot for a new task: the most recently freed one, else the next of the newest chunk. */
static inline weft_task_t *task_alloc(weft_loop_t *l)
{
    weft_task_t *t = l->tfree;
    if (t != NULL) {
#ifdef WEFT_ASAN
        ASAN_UNPOISON_MEMORY_REGION(t, sizeof(*t));
#endif
        l->tfree = t->free_next;
        return t;
    }
    if (WEFT__LIKELY(l->tleft > 0)) {
        t = (weft_task_t *)l->tcarve;
#ifdef WEFT_ASAN
        ASAN_UNPOISON_MEMORY_REGION(t, sizeof(*t));
#endif
        l->tcarve += sizeof(*t);
        l->tleft--;
        l->tchunks->carved++;
        weft__task_rest(t);
        return t;
    }
    return weft__task_mem_grow(l);
}

int weft_spawn_opts(weft_task_t **out, weft_task_fn fn, void *arg,
                    const struct weft_task_opts *opts)
{
    if (out != NULL)
        *out = NULL;
    weft_loop_t *l = weft__tls_loop;
    if (l == NULL || l->closed)
        return -EPERM;
    if (fn == NULL)
        return -EINVAL;
    size_t ss = l->stack_size;
    bool compact = l->compact_default;
    if (opts != NULL && opts->stack_mode != WEFT_STACK_DEFAULT) {
        if (opts->stack_mode != WEFT_STACK_OWN && opts->stack_mode != WEFT_STACK_COMPACT)
            return -EINVAL;
        compact = opts->stack_mode == WEFT_STACK_COMPACT;
    }
    if (opts != NULL && opts->stack_size != 0) {
        if (opts->stack_size < STACK_MIN || opts->stack_size > STACK_MAX)
            return -EINVAL;
        ss = weft__stack_round(opts->stack_size);
    }
    weft_task_t *t = task_alloc(l);
    if (t == NULL)
        return -ENOMEM;
    /* The slot is at rest (see weft__task_rest): only what differs per task is set. */
    t->fut.refs = out != NULL ? 2 : 1;
    t->fut.state = WEFT__F_PENDING;
    t->fut.retrieved = 0;
    t->fut.result = 0;
    t->fut.loop = l;
    t->state = WEFT__T_NEW;
    t->compact = compact;
    t->cancel_count = 0;
    if (compact)
        t->ctx = NULL;
    else
        t->stack_size = ss;
    t->fn = fn;
    t->arg = arg;
    if (WEFT__UNLIKELY(l->id_next == l->id_end)) {
        l->id_next = atomic_fetch_add_explicit(&next_id, ID_BLOCK, memory_order_relaxed);
        l->id_end = l->id_next + ID_BLOCK;
    }
    t->id = l->id_next++;
    if (opts != NULL && opts->name != NULL) {
        int err = weft_task_set_name(t, opts->name);
        if (err < 0) {
            weft__free(t->cold); /* holds no name: that is what failed */
            t->cold = NULL;
            weft__task_mem_put(t);
            return err;
        }
    }
    l->ntasks++;
    weft__list_append(&l->ready, &t->rlink);
    if (out != NULL)
        *out = t;
    return 0;
}

int weft_spawn(weft_task_t **out, weft_task_fn fn, void *arg)
{
    return weft_spawn_opts(out, fn, arg, NULL);
}

int weft__spawn_owned(weft_task_t **out, weft_task_fn fn, void (*unstarted)(void *arg), void *arg,
                      const struct weft_task_opts *opts)
{
    if (out != NULL)
        *out = NULL;
    /* The hook lives in the task's cold part: made first, so that nothing is left to undo. */
    struct weft__tcold *c = weft__malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->name = NULL;
    c->cancel_msg = NULL;
    c->len = 0;
    c->cap = 0;
    weft_task_t *t;
    int err = weft_spawn_opts(&t, fn, arg, opts);
    if (err < 0) {
        weft__free(c);
        return err;
    }
    if (t->cold != NULL) { /* named by its options */
        weft__free(c);
        c = t->cold;
    }
    c->unstarted = unstarted;
    t->cold = c;
    if (out != NULL)
        *out = t;
    else
        task_unref(t);
    return 0;
}

weft_task_t *weft_task_retain(weft_task_t *task)
{
    if (task != NULL)
        task->fut.refs++;
    return task;
}

void weft_task_release(weft_task_t *task)
{
    if (task != NULL)
        task_unref(task);
}

void weft__task_free(weft_task_t *t)
{
    /* A handle may outlive the loop (weft_run() returned, weft_loop_close()): t->fut.loop is
     * then NULL (taskmem.c). Only the thread's current loop hears of errors. */
    weft_loop_t *l = t->fut.loop == weft__tls_loop ? t->fut.loop : NULL;
    if (t->fut.state == WEFT__F_DONE && t->fut.result < 0 && !t->fut.retrieved)
        weft__report(l, "task error never retrieved", t->fut.result, t);
    if (!weft__list_empty(&t->fut.entries))
        weft__future_drop_entries(&t->fut);
    if (t->cold != NULL) {
        weft__free(t->cold->name);
        weft__free(t->cold->cancel_msg);
        weft__free(t->cold);
        t->cold = NULL;
    }
    weft__task_mem_put(t);
}

struct weft__tcold *weft__task_cold(weft_task_t *t)
{
    if (t->cold == NULL) {
        struct weft__tcold *c = weft__malloc(sizeof(*c));
        if (c == NULL)
            return NULL;
        c->name = NULL;
        c->cancel_msg = NULL;
        c->unstarted = NULL;
        c->len = 0;
        c->cap = 0;
        t->cold = c;
    }
    return t->cold;
}

/*
 * The loop is closing under a task that never finished: give back its stack, drop the loop's
 * reference, and leave the handle inert.
 */
void weft__task_orphan(weft_task_t *t)
{
    weft_loop_t *l = t->fut.loop;
    if (weft__list_linked(&t->rlink))
        weft__list_remove(&t->rlink);
    /* Undo the wait while its record is readable: a compact task's may be in its image. */
    struct weft__park *pk = t->park;
    void *awaited = NULL;
    uint8_t kind = WEFT__P_NONE;
    if (pk != NULL) {
        awaited = pk->obj;
        kind = pk->kind;
        if (weft__timer_armed(&pk->timer.tn))
            weft__timer_disarm(l, &pk->timer.tn);
        if (pk->link != NULL && weft__list_linked(pk->link))
            weft__list_remove(pk->link);
        t->park = NULL;
    }
    if (t->state == WEFT__T_NEW)
        unstarted_cleanup(t); /* it never ran: its owner's cleanup runs now */
    l->ntasks--;
    if (t->compact)
        weft__compact_drop(l, t);
    else if (t->stack != NULL)
        weft__stack_put(&l->stacks, t->stack);
    t->stack = NULL;
#ifdef WEFT_TSAN
    if (t->tsan_fiber != NULL)
        tsan_fiber_put(l, t->tsan_fiber);
    t->tsan_fiber = NULL;
#endif
    t->state = WEFT__T_DONE;
    t->fut.state = WEFT__F_CANCELLED;
    t->fut.result = -ECANCELED;
    /* A wait on a future or task holds a reference to it until the park returns, which now
     * never happens: drop it here. */
    if (awaited != NULL &&
        (kind == WEFT__P_FUTURE || kind == WEFT__P_JOIN || kind == WEFT__P_SHIELD))
        weft_future_release(awaited);
    task_unref(t);
}

/* ---- joining ---- */

/* weft__future_wait() checks the caller (-EPERM), self-waits (-EDEADLK) and foreign loops. */
int weft_join_dl(weft_task_t *task, int64_t deadline)
{
    if (task == NULL)
        return -EINVAL;
    return weft__future_wait(&task->fut, WEFT__P_JOIN, deadline);
}

int weft_join(weft_task_t *task)
{
    if (task == NULL)
        return -EINVAL;
    return weft__future_wait(&task->fut, WEFT__P_JOIN, WEFT_NO_DEADLINE);
}

int weft_shield(weft_task_t *task)
{
    if (task == NULL)
        return -EINVAL;
    return weft__future_wait(&task->fut, WEFT__P_SHIELD, WEFT_NO_DEADLINE);
}

/* ---- cancellation ---- */

bool weft_task_cancel(weft_task_t *t, const char *msg)
{
    if (t == NULL || t->state >= WEFT__T_DONE) /* done, or a stale handle to a free slot */
        return false;
    t->cancel_count++;
    if (msg != NULL) {
        /* Without memory the request still counts; only its message is lost. */
        struct weft__tcold *c = weft__task_cold(t);
        char *m = c != NULL ? weft__strdup(msg) : NULL;
        if (m != NULL) {
            weft__free(c->cancel_msg);
            c->cancel_msg = m;
        }
    }
    if (t->state == WEFT__T_PARKED) {
        switch (t->park->kind) {
        case WEFT__P_FUTURE:
            if (weft_future_cancel(t->park->obj, msg))
                return true;
            break;
        case WEFT__P_JOIN:
            if (weft_task_cancel(t->park->obj, msg))
                return true;
            break;
        default:
            weft__wake(t, -ECANCELED);
            return true;
        }
    }
    t->must_cancel = 1;
    return true;
}

int weft_task_cancelling(const weft_task_t *t)
{
    return t != NULL ? t->cancel_count : 0;
}

int weft_task_uncancel(weft_task_t *t)
{
    if (t == NULL)
        return 0;
    if (t->cancel_count > 0)
        t->cancel_count--;
    if (t->cancel_count == 0)
        t->must_cancel = 0;
    return t->cancel_count;
}

bool weft_task_done(const weft_task_t *t)
{
    return t != NULL && t->state == WEFT__T_DONE;
}

bool weft_task_cancelled(const weft_task_t *t)
{
    return t != NULL && t->state == WEFT__T_DONE && t->fut.state == WEFT__F_CANCELLED;
}

int weft_task_result(weft_task_t *t)
{
    if (t == NULL || t->state != WEFT__T_DONE)
        return -EINVAL;
    t->fut.retrieved = 1;
    return t->fut.result;
}

const char *weft_task_cancel_message(const weft_task_t *t)
{
    return t != NULL && t->cold != NULL ? t->cold->cancel_msg : NULL;
}

const char *weft_task_name(weft_task_t *t)
{
    if (t == NULL)
        return "(null)";
    if (t->cold == NULL || t->cold->name == NULL) {
        /* Made on first use: most tasks are never asked their name. */
        char buf[32];
        snprintf(buf, sizeof(buf), "Task-%llu", (unsigned long long)t->id);
        if (weft_task_set_name(t, buf) < 0)
            return "Task-?";
    }
    return t->cold->name;
}

int weft_task_set_name(weft_task_t *t, const char *name)
{
    if (t == NULL || name == NULL)
        return -EINVAL;
    struct weft__tcold *c = weft__task_cold(t);
    if (c == NULL)
        return -ENOMEM;
    char *n = weft__strdup(name);
    if (n == NULL)
        return -ENOMEM;
    weft__free(c->name);
    c->name = n;
    return 0;
}

uint64_t weft_task_id(const weft_task_t *t)
{
    return t != NULL ? t->id : 0;
}

weft_task_t *weft_current_task(void)
{
    weft_loop_t *l = weft__tls_loop;
    return l != NULL ? l->current : NULL;
}

size_t weft_all_tasks(weft_loop_t *loop, weft_task_t **out, size_t cap)
{
    if (loop == NULL)
        loop = weft__tls_loop;
    if (loop == NULL)
        return 0;
    return weft__task_mem_live(loop, out, out != NULL ? cap : 0); /* no array: count only */
}

weft_future_t *weft_task_future(weft_task_t *task)
{
    return task != NULL ? &task->fut : NULL;
}
