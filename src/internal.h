/*
 * Declarations shared by weft's translation units (never installed); _GNU_SOURCE comes first,
 * from arch/cc.h. The core's invariants live in docs/design.md: one way to wait (the park),
 * a FIFO ready queue, timers in a (deadline, sequence) min-heap, one loop per thread.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include "arch/cc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weft.h"
#include "core/alloc.h"
#include "core/list.h"
#include "arch/switch.h"

/* ---- ready queue nodes ---- */
enum {
    WEFT__RN_TASK = 1,   /* a task to resume */
    WEFT__RN_HANDLE = 2, /* a callback handle */
};

enum {
    WEFT__H_NONE = 0,   /* caller storage */
    WEFT__H_PLAIN = 1,  /* weft__malloc'd handle */
    WEFT__H_UTIMER = 2, /* inside a weft__malloc'd struct weft__utimer */
    WEFT__H_FENTRY = 3, /* a future's done callback (future.c owns it) */
};

/* The common head of everything on the ready queue: a list node and its kind. */
struct weft__rnode {
    struct weft__list link;
    uint8_t kind;
};

/* A callback queued on the ready list. */
struct weft__handle {
    struct weft__list link; /* in loop->ready while queued */
    uint8_t kind;           /* WEFT__RN_HANDLE */
    uint8_t heap;           /* WEFT__H_*: how to free it once it ran */
    weft_callback_fn cb;
    void *arg;
};

/* ---- timers (timer.c) ---- */
enum {
    WEFT__TN_TASK = 1, /* a parked task's deadline */
    WEFT__TN_USER = 2, /* a weft_timer_t */
};

struct weft__tnode {
    int64_t when; /* absolute deadline, ns */
    uint64_t seq; /* arming order, breaks ties */
    uint32_t idx; /* position in the heap, WEFT__TN_LANE, or WEFT__TN_IDLE when not armed */
    uint8_t kind; /* WEFT__TN_* */
    struct weft__list link; /* in the lane */
};
#define WEFT__TN_IDLE UINT32_MAX
#define WEFT__TN_LANE (UINT32_MAX - 1)

/* A heap slot carries its node's key, so ordering the heap reads no node (1M timers are 1M
 * cache misses apart); the node is touched only to record its new position. */
struct weft__hent {
    int64_t when;
    uint64_t seq;
    struct weft__tnode *node;
};

/*
 * Armed timers. Most programs arm timers in deadline order (sleeps and timeouts of one length):
 * a timer due no earlier than the lane's last one is appended to the lane, a FIFO that is sorted
 * by construction (O(1) in and out, no other node touched); the rest go to the heap. Expiry
 * merges the two by (when, seq).
 */
struct weft__heap {
    struct weft__hent *a; /* a 4-ary min-heap on (when, seq) */
    uint32_t n;
    uint32_t cap;
    struct weft__list lane; /* struct weft__tnode, by (when, seq) */
};

/* What a weft_timer_t holds. */
struct weft__utimer {
    struct weft__tnode tn;
    struct weft__handle h;
    weft_loop_t *loop;
    uint8_t heap; /* fire-and-forget: freed after running */
};

int weft__timer_arm(weft_loop_t *loop, struct weft__tnode *tn, int64_t when);
void weft__timer_disarm(weft_loop_t *loop, struct weft__tnode *tn);
void weft__timer_moved(weft_loop_t *loop, struct weft__tnode *to);
static inline bool weft__timer_armed(const struct weft__tnode *tn)
{
    return tn->idx != WEFT__TN_IDLE;
}
void weft__timers_expire(weft_loop_t *loop, int64_t now);
void weft__heap_init(struct weft__heap *h);
void weft__heap_fini(struct weft__heap *h);

static inline bool weft__timers_any(const struct weft__heap *h)
{
    return h->n > 0 || h->lane.next != &h->lane;
}

/* The earliest deadline armed, or INT64_MAX. */
static inline int64_t weft__timers_first(const struct weft__heap *h)
{
    int64_t w = h->n > 0 ? h->a[0].when : INT64_MAX;
    if (h->lane.next != &h->lane) {
        const struct weft__tnode *f =
            (const struct weft__tnode *)((const char *)h->lane.next -
                                         offsetof(struct weft__tnode, link));
        if (f->when < w)
            w = f->when;
    }
    return w;
}

/* ---- futures (future.c) ---- */
enum {
    WEFT__F_PENDING = 0,
    WEFT__F_DONE = 1,
    WEFT__F_CANCELLED = 2,
};

/*
 * One registration on a future: a parked task (on that task's stack) or a done callback
 * (allocated). Kept in registration order; completion walks them in that order.
 */
struct weft__fentry {
    struct weft__list link;
    weft_task_t *task; /* a waiter, or NULL for a callback */
    weft_future_cb cb;
    void *arg;
    struct weft__handle h; /* callbacks: what goes on the ready queue */
    weft_future_t *fut;    /* callbacks: reference held until it ran */
};

struct weft_future {
    uint32_t refs;
    uint8_t state;     /* WEFT__F_* */
    uint8_t is_task;   /* this is the head of a struct weft_task */
    uint8_t retrieved; /* an error was read (or nobody needs to hear of it) */
    int result;
    int wake_result;   /* a task's: what its weft__park() returns (weft__wake); kept here, in
                        * padding, so a wake-up writes one line of the task and not its stack */
    weft_loop_t *loop;
    struct weft__list entries; /* struct weft__fentry */
};

/* What weft_future_new() allocates: a future and the message of the cancel that ended it. (A
 * task keeps its message with its cold parts.) */
struct weft__pfuture {
    struct weft_future fut;
    char *cancel_msg;
};

void weft__future_init(weft_future_t *f, weft_loop_t *loop, bool is_task);
void weft__future_complete(weft_future_t *f, uint8_t state, int result);
void weft__future_drop_entries(weft_future_t *f);
void weft__fentry_drop(struct weft__handle *h);
int weft__future_wait(weft_future_t *f, uint8_t kind, int64_t deadline);

/* ---- stacks (stack.c) ---- */
struct weft__stack {
    struct weft__stack *next; /* pool link */
    char *lo;                 /* lowest usable byte (the canary lives here) */
    size_t size;              /* usable bytes, lo .. this descriptor */
    char *map;                /* mapping to unmap for a stack of its own, NULL in a slab */
    size_t maplen;
    uint8_t guarded; /* a PROT_NONE page sits right below lo */
    uint8_t dirty;   /* pooled and not yet trimmed */
};

struct weft__stackpool {
    size_t size;             /* usable size of pooled stacks */
    struct weft__stack *hot; /* recently used, untouched */
    uint32_t nhot;
    struct weft__stack *dirty; /* to be trimmed when the loop goes idle */
    struct weft__stack *clean; /* trimmed: only the top page resident */
    struct weft__slab *slabs;
    char *carve;   /* next free slot in the newest slab */
    uint32_t left; /* slots left there */
};

void weft__stackpool_init(struct weft__stackpool *p, size_t size);
void weft__stackpool_fini(struct weft__stackpool *p);
struct weft__stack *weft__stack_get(struct weft__stackpool *p, size_t size);
void weft__stack_put(struct weft__stackpool *p, struct weft__stack *s);
void weft__stackpool_trim(struct weft__stackpool *p);

#define WEFT__STACK_HOT_MAX 64 /* pooled stacks kept without trimming */

/* weft__stack_get/put for the common case, inline: a default-size stack from or to the hot few. */
static inline struct weft__stack *weft__stack_take(struct weft__stackpool *p, size_t size)
{
#ifndef WEFT_ASAN /* weft__stack_get() unpoisons the stack */
    struct weft__stack *s = p->hot;
    if (WEFT__LIKELY(s != NULL && size == p->size)) {
        p->hot = s->next;
        p->nhot--;
        s->next = NULL;
        return s;
    }
#endif
    return weft__stack_get(p, size);
}

static inline void weft__stack_give(struct weft__stackpool *p, struct weft__stack *s)
{
    if (WEFT__LIKELY(s->map == NULL && p->nhot < WEFT__STACK_HOT_MAX)) {
        s->next = p->hot;
        p->hot = s;
        p->nhot++;
        return;
    }
    weft__stack_put(p, s);
}
/*
 * What a task keeps of its stack (stack_lo) so that its park never reads the descriptor: the
 * lowest usable address (page-aligned) with bit 0 set when a guard page lies below it. A task
 * suspending within WEFT__STACK_REDZONE of an unguarded stack's end is reported (a guarded one
 * faults instead; reading the stack's bottom bytes would cost a page fault per task), and so is
 * one suspending below a guarded stack's bottom (a frame that stepped over the guard page).
 */
#define WEFT__STACK_REDZONE 256
static inline uintptr_t weft__stack_tag(const struct weft__stack *s)
{
    return (uintptr_t)s->lo | (s->guarded ? 1u : 0u);
}
size_t weft__page_size(void);
size_t weft__stack_round(size_t size);
size_t weft__stack_nominal(const struct weft__stack *s);

/* ---- overflow reporting (overflow.c) ---- */
int weft__overflow_thread_init(void);
void weft__overflow_report(weft_task_t *t, const char *how) __attribute__((noreturn));
uintptr_t weft__fault_sp(const void *ucontext); /* arch/fault.c */

/* ---- tasks (task.c) ---- */
enum {
    WEFT__T_NEW = 0, /* queued, never ran, owns no stack */
    WEFT__T_READY,   /* queued to resume */
    WEFT__T_RUNNING, /* the current task */
    WEFT__T_PARKED,  /* suspended in weft__park() */
    WEFT__T_DONE,    /* finished; its future holds the outcome */
    WEFT__T_FREE,    /* a free slot of the loop's task memory (taskmem.c) */
};

/* What a parked task waits on: tells cancel() whether to forward the request. */
enum {
    WEFT__P_NONE = 0,
    WEFT__P_SLEEP,  /* a deadline only */
    WEFT__P_FUTURE, /* a future: cancel forwards to it */
    WEFT__P_JOIN,   /* a task: cancel forwards to it */
    WEFT__P_SHIELD, /* a task or future, without forwarding */
    WEFT__P_FD,     /* fd readiness */
    WEFT__P_PRIM,   /* a synchronisation primitive's wait list */
};

/*
 * A task's rarely used parts, allocated on first need: most tasks have no name of their own, are
 * never cancelled with a message, and run on a stack of their own. A compact task's saved frames
 * follow the header (compact.c), so it grows as they do.
 */
struct weft__tcold {
    char *name;       /* NULL = "Task-<id>" */
    char *cancel_msg; /* the last weft_task_cancel() message, or NULL */
    void (*unstarted)(void *arg); /* weft__spawn_owned(): cleanup if fn never runs, or NULL */
    uint32_t len;     /* compact: bytes of saved frames, [ctx, top of the shared stack) */
    uint32_t cap;     /* bytes[] allocated */
    _Alignas(16) char bytes[];
};
struct weft__tcold *weft__task_cold(weft_task_t *t);

/* A parked task's deadline. */
struct weft__ptimer {
    struct weft__tnode tn; /* kind WEFT__TN_TASK; idx WEFT__TN_IDLE when none */
    weft_task_t *task;
};

/*
 * What a parked task waits on. It lives in weft__park()'s frame, which outlasts the wait (the
 * wait ends there, or weft__task_orphan() undoes it): only a waiting task needs one, so a task
 * carries a pointer, not the record. A compact task's record moves with its frames (compact.c).
 */
struct weft__park {
    uint8_t kind;            /* WEFT__P_* */
    void *obj;               /* what it waits on */
    struct weft__list *link; /* its node in that object's wait list, or NULL */
    struct weft__ptimer timer; /* its deadline */
};

struct weft_task {
    struct weft_future fut;       /* first: a task is a future */
    struct weft__list rlink;      /* ready queue */
    uint8_t rkind;                /* WEFT__RN_TASK */
    uint8_t state;                /* WEFT__T_* */
    uint8_t must_cancel;          /* a request waits for the next suspension point */
    uint8_t compact;              /* runs on the loop's shared stack (compact.c) */
    int cancel_count;             /* Task.cancelling() */
    struct weft__park *park;      /* from weft__park() until it returns, else NULL */
    union {
        weft__ctx_t ctx;   /* saved stack pointer while suspended; NULL before a compact
                            * task's first run */
        size_t stack_size; /* before an own-stack task's first run: the stack to get */
    };
    struct weft__stack *stack;
    uintptr_t stack_lo;   /* weft__stack_tag(stack), kept here: the park checks it */
    weft_task_fn fn;
    union {
        void *arg;                     /* fn's argument */
        weft_task_t *free_next;        /* WEFT__T_FREE: the loop's free list */
        struct weft__orphans *orphans; /* a handle that outlived its loop: its memory */
    };
    uint64_t id;
    struct weft__tcold *cold; /* name, cancel message, compact image; NULL: none yet */
#ifdef WEFT_TSAN
    void *tsan_fiber;
#endif
};

/*
 * Suspend the current task `t` (the one way every weft call waits). `kind` and `obj` say what it
 * waits on, so a cancel can forward or undo the wait; `link` (may be NULL) is the caller's node in
 * that object's wait list, unlinked here on return if the waker did not unlink it. `deadline`
 * (ns, or WEFT_NO_DEADLINE) arms a timer that wakes it with -ETIMEDOUT.
 * Returns the waker's result (weft__wake), -ECANCELED (now or a pending request: the caller then
 * undoes or passes on what it was woken for), -ETIMEDOUT, or -ENOMEM.
 */
int weft__park(weft_task_t *t, uint8_t kind, void *obj, struct weft__list *link, int64_t deadline);
void weft__wake(weft_task_t *t, int result);

/* What `t` is parked on, or NULL when it is not parked. */
static inline void *weft__parked_on(const weft_task_t *t)
{
    return t->state == WEFT__T_PARKED ? t->park->obj : NULL;
}
void weft__task_run(weft_loop_t *loop, weft_task_t *t);

/*
 * Tasks woken by I/O have usually been out of the cache since their last turn. A poll starts
 * loading what such a task touches first when it resumes as soon as an event wakes it, all at
 * once and without reading the task: the fd's state says where the task's stack was when it
 * parked and what else it will read (weft__fd_wait). A task woken from an fd's waiter list (not
 * the usual lone waiter) gets weft__stack_prefetch(): its top frames, found in its second line.
 * Prefetches never fault.
 */
#define WEFT__PREFETCH_LINES 8
static inline void weft__stack_prefetch(const weft_task_t *t)
{
    const char *sp = (const char *)t->ctx;
    for (int i = 0; i < WEFT__PREFETCH_LINES; i++)
        __builtin_prefetch(sp + 64 * i);
}
void weft__task_entry(void *arg);

/*
 * weft_spawn_opts() for a task of weft's own whose body holds the cleanup of what it was given
 * (a server's connection, a stream's flush): when the task ends without its first step
 * (cancelled before it, e.g. by the "cancel every other task" shutdown idiom; no stack for it;
 * its loop closed first), `unstarted(arg)` runs instead of `fn`, on whichever stack makes that
 * decision (it must not suspend), before the task's end is recorded. Errors as weft_spawn_opts().
 */
int weft__spawn_owned(weft_task_t **out, weft_task_fn fn, void (*unstarted)(void *arg), void *arg,
                      const struct weft_task_opts *opts);

/* ---- compact tasks (compact.c) ---- */
int weft__compact_enter(weft_loop_t *l, weft_task_t *t);
void weft__compact_drop(weft_loop_t *l, weft_task_t *t);
void weft__compact_fini(weft_loop_t *l);
void weft__task_free(weft_task_t *t);
void weft__task_orphan(weft_task_t *t);
#ifdef WEFT_TSAN
void weft__tsan_fibers_fini(weft_loop_t *l);
#endif

/* ---- task memory (taskmem.c) ---- */
/* Task structs are carved from per-loop chunks and recycled through a free list: no allocator
 * call per spawn, no allocator header per task, and dense memory (a first touch of a page costs
 * more than everything else a spawn does). */
struct weft__tchunk {
    struct weft__tchunk *next;
    size_t bytes;    /* the whole chunk, this header included */
    uint32_t carved; /* slots handed out so far */
    uint8_t mapped;  /* mmap'd (else weft__malloc_line'd) */
};
/* Chunks of a closed loop that handles still point into, freed with the last of them. */
struct weft__orphans {
    atomic_size_t live;
    struct weft__tchunk *chunks;
};
weft_task_t *weft__task_mem_grow(weft_loop_t *l);

/*
 * Put a fresh slot in the state every task leaves its slot in when it is freed (no waits, no
 * stack, no timer, no name or message, no registrations): a spawn then sets only what differs
 * per task. Whoever adds a field that a task's life changes must reset it by the task's end.
 */
static inline void weft__task_rest(weft_task_t *t)
{
    t->fut.is_task = 1;
    weft__list_init(&t->fut.entries);
    weft__list_init(&t->rlink);
    t->rkind = WEFT__RN_TASK;
    t->must_cancel = 0;
    t->park = NULL;
    t->stack = NULL;
    t->cold = NULL;
#ifdef WEFT_TSAN
    t->tsan_fiber = NULL;
#endif
}
void weft__task_mem_put(weft_task_t *t);
void weft__task_mem_fini(weft_loop_t *l);
size_t weft__task_mem_live(weft_loop_t *l, weft_task_t **out, size_t cap);
void weft__task_mem_orphan_all(weft_loop_t *l);

/* ---- the loop (loop.c) ---- */

/* While the loop is busy and a task waits for I/O, a poll is due when the last one is
 * WEFT__POLL_NS old (the whole policy: weft__loop_start()). */
#define WEFT__POLL_NS      50000
#define WEFT__POLL_UNTIMED INT64_MIN /* last_poll: when the poll happened is not known */
/* Stack a suspending task must have left to run an iteration's poll and timers itself. */
#define WEFT__ITERATE_ROOM 8192
struct weft__fdstate {
    /* Waiters in arrival order: the oldest may sit in `first` (taken only while the list is
     * empty), so that the usual lone waiter costs no list node on its stack and an event reaches
     * it without reading that stack. */
    weft_task_t *first;
    const void *first_hint;     /* what `first` reads first when it resumes (a stream), or NULL */
    const char *first_frame;    /* `first`'s frame when it parked: its stack is just below */
    struct weft__list waiters;  /* struct weft__fdwaiter, all younger than `first` */
    uint8_t first_events;       /* what `first` waits for */
    uint8_t registered;         /* known to the backend */
    uint8_t pending;            /* readiness that came while no task waited for it */
    uint8_t hup; /* lasting readiness, never an edge: WEFT_READABLE once the peer's input ended
                  * (EPOLLRDHUP), both directions once the fd hung up (EPOLLHUP) */
    uint8_t watched; /* directions the backend reports: WEFT_READABLE, and WEFT_WRITABLE from a
                      * wait for output until an output edge comes that nobody waits for */
    int fd;          /* the fd this state is for, while registered */
} __attribute__((aligned(64))); /* one line: an event reads only this line of the table */

struct weft__fdwaiter {
    struct weft__list link;
    weft_task_t *task;
    int events;
};

struct weft_loop {
    struct weft__list ready; /* FIFO of tasks and handles */
    struct weft__list batch; /* this iteration's items not yet run */
    weft_task_t *reap;       /* finished task whose stack is still to be given back */
    struct weft__heap timers;
    uint64_t timer_seq;
    int64_t now;   /* the clock's last reading (the virtual clock itself, when virtual) */
    uint8_t virtual_clock;
    uint8_t running;
    uint8_t stopping;
    uint8_t tasks_iterate; /* a suspending task may start the next iteration (weft_loop_run) */
    uint8_t closed;
    uint32_t io_waiters; /* tasks parked in weft__fd_wait() */
    uint32_t iter;       /* iterations started (wraps): a task that sees it unchanged has not
                          * suspended meanwhile (every resumption follows an iteration start) */
    int64_t last_poll;   /* loop time of the last I/O poll, or WEFT__POLL_UNTIMED */
    weft_task_t *current;
    weft__ctx_t main_ctx;
    pthread_t owner;
    /* tasks */
    size_t ntasks; /* tasks not done (taskmem.c finds them) */
    size_t stack_size;
    weft_task_t *tfree;          /* free task slots (taskmem.c) */
    char *tcarve;                /* next uncarved slot in the newest chunk */
    uint32_t tleft;              /* slots left there */
    struct weft__tchunk *tchunks; /* newest first */
    size_t tchunk_next;          /* bytes of the next chunk */
    uint64_t id_next;            /* task ids reserved for this loop: [id_next, id_end) */
    uint64_t id_end;
    struct weft__stackpool stacks;
    struct weft__stack *cstack; /* the stack compact tasks share (compact.c), or NULL */
    weft_task_t *cowner;        /* the compact task whose frames are on it, or NULL */
    uint8_t compact_default;    /* tasks are compact unless their options say otherwise */
    /* I/O */
    const struct weft__backend *backend;
    void *backend_data;
    struct weft__fdstate **fdchunks; /* fd table in fixed chunks (fdwait.c) */
    uint32_t nfdchunks;
    /* files (src/fs) */
    uint8_t file_engine; /* weft_loop_opts.file_engine */
    void *files;         /* the loop's file engine state, made on first use, or NULL */
    /* naps before sleeping in the poll (loop.c; cold: read only when the loop is idle) */
    int64_t nap_ns;      /* weft_loop_opts.nap_ns */
    bool nap_next;       /* nap at the next idle poll: the last sleep in the poll was shorter */
    uint8_t nap_skip;    /* idle polls left to sleep through without a nap (a lone-event nap) */
    uint8_t nap_backoff; /* what nap_skip was set to last: doubles while naps find one event */
    unsigned long nap_old_slack; /* the thread's timer slack before the loop lowered it, or 0 */
    /* cross-thread calls */
    pthread_mutex_t ts_lock;
    struct weft__list ts_queue;
    atomic_int ts_pending;
    atomic_int polling;
    atomic_ullong sigpending; /* signals delivered, not yet dispatched: bit sig - 1 (signal.c) */
    struct weft__sigs *sigs; /* signal handlers and waiters (signal.c), or NULL */
    struct weft__list procs; /* children started here (process.c) */
    weft_task_t *main_task; /* weft_run's main task, or NULL */
    /* errors */
    weft_error_handler_fn on_error;
    void *on_error_arg;
#ifdef WEFT_ASAN
    const void *main_stack_bottom;
    size_t main_stack_size;
#endif
#ifdef WEFT_TSAN
    void *tsan_main; /* the loop thread's own fiber */
    /* Fibers of finished tasks kept for the next ones: making a TSan fiber clears a large
     * thread state, milliseconds per task under TSan. */
#define WEFT__TSAN_FIBERS_KEPT 256
    void *tsan_free[WEFT__TSAN_FIBERS_KEPT];
    uint32_t ntsan_free;
#endif
};

extern _Thread_local weft_loop_t *weft__tls_loop __attribute__((tls_model("initial-exec")));

/* The running task, or NULL with *err = -EPERM (a blocking call outside a task). */
static inline weft_task_t *weft__task_check_current(int *err)
{
    weft_loop_t *l = weft__tls_loop;
    if (WEFT__UNLIKELY(l == NULL || l->current == NULL)) {
        *err = -EPERM;
        return NULL;
    }
    return l->current;
}

static inline void weft__enqueue_task(weft_loop_t *loop, weft_task_t *t)
{
    weft__list_append(&loop->ready, &t->rlink);
}

static inline void weft__enqueue_handle(weft_loop_t *loop, struct weft__handle *h)
{
    weft__list_append(&loop->ready, &h->link);
}

/* Whether `p` lies on the loop's shared stack (storage that moves while its task sleeps). */
static inline bool weft__on_cstack(const weft_loop_t *l, const void *p)
{
    const struct weft__stack *s = l->cstack;
    return s != NULL && (const char *)p >= s->lo && (const char *)p < s->lo + s->size;
}

/*
 * weft_call_soon_threadsafe() with a handle the caller made (kind WEFT__RN_HANDLE, heap
 * WEFT__H_NONE, cb and arg set) and keeps valid until the callback ran or the loop closed:
 * cannot fail, so what must reach the loop (a pool job's completion) reserves its handle early.
 */
void weft__post_threadsafe(weft_loop_t *loop, struct weft__handle *h);
/* The same for a list of such handles (linked through their `link`, in the order they run):
 * one lock and at most one wake-up for all; `hs` is left empty. */
void weft__post_threadsafe_list(weft_loop_t *loop, struct weft__list *hs);
int64_t weft__clock(void);

/* The present on the loop's clock (CLOCK_MONOTONIC read now, or the virtual clock), also kept as
 * loop->now: what every relative delay counts from. */
static inline int64_t weft__now(weft_loop_t *l)
{
    if (!l->virtual_clock)
        l->now = weft__clock();
    return l->now;
}

/* An iteration begins: what is ready now is its batch, and the iteration count moves (a task
 * that finds it unchanged has not suspended: every resumption follows an iteration start). */
static inline void weft__loop_begin_batch(weft_loop_t *l)
{
    weft__list_move_all(&l->ready, &l->batch);
    l->iter++;
}

/*
 * The loop's clock and poll policy, all of it, for every iteration, whoever starts it (the loop
 * in weft__loop_iterate(), or a task that suspends when the batch is used up, in task.c):
 *
 * - Cross-thread calls (and weft_run's SIGINT) pending, nothing ready, or stopping: the
 *   iteration polls I/O (weft__loop_poll(): blocking until the earliest timer when nothing is
 *   ready, else not at all), then reads the clock if a timer is armed and fires what is due.
 * - Busy (something ready): the clock is read only if a timer is armed or a task waits for I/O,
 *   since nothing else depends on the time. Then I/O is polled (zero timeout) if a task waits for
 *   it and the last poll is at least WEFT__POLL_NS old or of unknown time (on the virtual clock:
 *   every iteration), and due timers fire. A timer thus fires within one iteration of its
 *   deadline, and readiness is seen at the first iteration that starts WEFT__POLL_NS after the
 *   last poll, however long or short the steps.
 *
 * weft__loop_start() is the busy case's fast path: it returns true when the iteration started
 * (the ready queue is now the batch) and false, doing nothing, when weft__loop_poll() must run.
 */
static inline bool weft__loop_busy_start(weft_loop_t *l)
{
    if (l->io_waiters != 0 || weft__timers_any(&l->timers)) {
        int64_t now = weft__now(l);
        if (l->io_waiters != 0 &&
            (l->virtual_clock || l->last_poll <= now - WEFT__POLL_NS))
            return false;
        if (weft__timers_first(&l->timers) <= now)
            weft__timers_expire(l, now);
    }
    weft__loop_begin_batch(l);
    return true;
}

static inline bool weft__loop_start(weft_loop_t *l)
{
    if (WEFT__UNLIKELY(atomic_load_explicit(&l->ts_pending, memory_order_relaxed)) ||
        l->stopping || weft__list_empty(&l->ready))
        return false;
    return weft__loop_busy_start(l);
}
void weft__loop_poll(weft_loop_t *loop);
void weft__loop_iterate(weft_loop_t *loop);
/* The backend's report (io/backend.h, weft__io_report_fn), handed to it by weft_loop_new: an
 * event on the fd whose state (or completion source) is `token`, in the loop `loop`. */
void weft__io_event(void *loop, void *token, int events);
/* Make the loop's blocking poll return (the backend's wake-up). Thread- and async-signal-safe. */
void weft__loop_wake(weft_loop_t *loop);

/*
 * The state of `fd` in `loop`'s table, registered with the backend (fdwait.c) for `events` (an
 * fd registered before keeps its directions; weft__fd_wait adds output when waited for); NULL
 * with *err set (-ENOMEM, or the backend's refusal). The pointer stays valid for the loop's
 * life (the table grows in chunks that never move), so a stream may keep it while it owns the
 * fd.
 */
struct weft__fdstate *weft__fd_watch(weft_loop_t *loop, int fd, int events, int *err);
/* Make the backend report `events` on `st` too (a wait for output on an fd watched for input
 * only): 0 or a negative errno (fdwait.c). */
int weft__fd_watch_more(weft_loop_t *loop, struct weft__fdstate *st, int events);

/*
 * weft_wait_fd_dl() for the running task `t` on a watched fd's state `st` (arguments trusted):
 * readiness that came meanwhile or a lasting hang-up of a direction waited for returns at once,
 * else `t` parks as a waiter.
 */
static inline int weft__fd_wait(weft_task_t *t, struct weft__fdstate *st, int events,
                                int64_t deadline, const void *hint)
{
    int ready = (st->pending | st->hup) & events;
    if (ready != 0) {
        st->pending &= (uint8_t)~ready;
        return ready;
    }
    if (WEFT__UNLIKELY((events & ~st->watched) != 0)) {
        int e = weft__fd_watch_more(t->fut.loop, st, events);
        if (e < 0)
            return e;
    }
    if (WEFT__LIKELY(st->first == NULL && weft__list_empty(&st->waiters))) {
        st->first = t;
        st->first_events = (uint8_t)events;
        st->first_hint = hint;
        st->first_frame = (const char *)__builtin_frame_address(0);
        t->fut.loop->io_waiters++;
        int r = weft__park(t, WEFT__P_FD, NULL, NULL, deadline);
        t->fut.loop->io_waiters--;
        if (st->first == t) /* not woken by an event: a cancel, timeout or close */
            st->first = NULL;
        return r;
    }
    struct weft__fdwaiter w = {.task = t, .events = events};
    weft__list_append(&st->waiters, &w.link);
    t->fut.loop->io_waiters++;
    int r = weft__park(t, WEFT__P_FD, NULL, &w.link, deadline);
    t->fut.loop->io_waiters--;
    return r;
}
void weft__fd_fini(weft_loop_t *loop);

/*
 * write() that never raises SIGPIPE, for fds that are not sockets (sockets use MSG_NOSIGNAL):
 * SIGPIPE is blocked in the calling thread around the write, and a SIGPIPE the write made
 * pending (EPIPE, none pending before) is consumed with sigtimedwait() before the mask is
 * restored. Same contract as write(). Three extra system calls: for pipes, ttys and files.
 */
ssize_t weft__write_nosigpipe(int fd, const void *buf, size_t n);
/* ---- signals (proc/signal.c) and children (proc/process.c) ---- */
/* Signals the loop's sigaction handler flagged (sigpending): queue their dispatch. Called from
 * the loop's cross-thread drain, outside any signal handler. */
void weft__signal_dispatch(weft_loop_t *loop);
/* A weft-internal handler of `sig` beside the application's (one per loop and signal), e.g.
 * process.c's SIGCHLD reaping; NULL removes it. `second_kills`: a second delivery while it is
 * registered takes the default action at once, inside the signal handler (weft_run's Ctrl+C). */
int weft__signal_internal(weft_loop_t *loop, int sig, weft_signal_fn fn, void *arg,
                          bool second_kills);
/* At loop close: restore dispositions, forget the loop (signal.c); detach children (process.c). */
void weft__signal_loop_fini(weft_loop_t *loop);
void weft__proc_loop_fini(weft_loop_t *loop);

/*
 * A completion source: an fd watched by the backend whose events run `ready` instead of waking
 * tasks (the io_uring file engine's ring). Not in the fd table: the owner sets `ready`, watches
 * it with weft__fd_source_watch() and unwatches it before closing the fd (fdwait.c).
 */
#define WEFT__FD_SOURCE 2
struct weft__fdsource {
    struct weft__fdstate st; /* only `registered` is used (WEFT__FD_SOURCE) */
    void (*ready)(weft_loop_t *loop, struct weft__fdsource *src);
};
int weft__fd_source_watch(weft_loop_t *loop, int fd, struct weft__fdsource *src);
void weft__fd_source_unwatch(weft_loop_t *loop, int fd);

/* Release the loop's file engine (src/fs) when the loop closes. */
void weft__files_fini(weft_loop_t *loop);
void weft__report(weft_loop_t *loop, const char *message, int err, weft_task_t *task);

#endif /* WEFT_INTERNAL_H */
