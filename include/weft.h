/*
 * weft: asyncio for C. One event loop per thread, tasks written as straight-line code on their
 * own stacks, and asyncio's rules for cancellation, timeouts and structured concurrency.
 *
 * Conventions used by every call in this header:
 * - A fallible call returns an int: >= 0 is success (0 or a count or a value), < 0 is a negative
 *   errno (-ECANCELED, -ETIMEDOUT, -EINVAL, ...). weft_strerror() names any of them.
 * - A call documented as "suspends" is a suspension point: it may only be made from inside a task
 *   (-EPERM otherwise) and it may return -ECANCELED when the task is cancelled. Calls ending in
 *   `_dl` take an absolute deadline in nanoseconds of weft_time() and return -ETIMEDOUT when it
 *   passes; WEFT_NO_DEADLINE (-1) waits forever.
 * - Nothing is thread-safe unless its comment says so. weft_call_soon_threadsafe() is the one
 *   call another thread may make on a loop.
 * - NULL: a NULL pointer where a call needs an object (a loop, task, future, primitive, stream,
 *   server, group, output pointer, function) is never dereferenced. A call returning an int
 *   returns -EINVAL (a count, such as a semaphore's value or the callbacks removed, is 0; freeing
 *   or releasing NULL does nothing and succeeds), one returning a handle or pointer returns NULL
 *   (weft_task_name() returns a printable placeholder), a size or count 0, a predicate false, a
 *   time WEFT_NO_DEADLINE, and a void call does nothing. Arguments documented as optional ("may
 *   be NULL") keep their documented meaning; an output array with a capacity may be NULL (then
 *   only the count is returned).
 *
 * This file is long on purpose: the whole public API is one header (like uv.h), in banner
 * sections (errors, loop, time, runner, tasks, futures, fds, structured concurrency, sync,
 * queues, thread pool and DNS, networking, signals and subprocesses), each call with its doc
 * comment.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include "weft/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_EXTERN __attribute__((visibility("default")))
#else
#define WEFT_EXTERN
#endif

/* ============================================================================================
 * Errors
 * ========================================================================================== */

/*
 * weft's own error codes, in the range libuv also reserves (near -4095) so they never clash with
 * an errno value.
 */
#define WEFT_EOF -4095 /* end of stream */
#define WEFT_ELIMIT -4094 /* a stream's buffer limit was exceeded (asyncio's LimitOverrunError) */

/* Name resolution failures (weft_getaddrinfo, weft_getnameinfo: see "Thread pool and DNS"). */
#define WEFT_EAI_NONAME -4080  /* unknown host or service name (EAI_NONAME) */
#define WEFT_EAI_SERVICE -4081 /* service not available for the socket type (EAI_SERVICE) */
#define WEFT_EAI_FAIL -4082    /* non-recoverable name server failure (EAI_FAIL) */

/* TLS failures (the weft-tls module, include/weft/tls.h; the OpenSSL reason and the certificate
 * verification result of a failed stream are in weft_tls_reason / weft_tls_verify_result). */
#define WEFT_ETLS -4070         /* TLS protocol error (a bad record, a handshake failure) */
#define WEFT_ETLS_VERIFY -4071  /* the peer's certificate failed verification */
#define WEFT_ETLS_EOF -4072     /* the peer closed without close_notify (truncated) */
#define WEFT_ETLS_NOT_TLS -4073 /* the peer does not speak TLS (plaintext, HTTP) */
#define WEFT_ETLS_ALERT -4074   /* the peer ended the connection with a TLS alert */
#define WEFT_ETLS_CONFIG -4075  /* bad TLS configuration (certificate, key, CA, ALPN) */

/*
 * Return a static English description of an error code (negative errno or WEFT_E*), e.g.
 * "operation canceled". Never NULL; unknown codes give "unknown error". Thread-safe.
 */
WEFT_EXTERN const char *weft_strerror(int err);

/*
 * Return the symbolic name of an error code, e.g. "ECANCELED" for -ECANCELED, or "UNKNOWN".
 * Never NULL. Thread-safe.
 */
WEFT_EXTERN const char *weft_err_name(int err);

/*
 * Route every allocation weft makes through these functions (all three required). Call it before
 * creating any loop; memory allocated before the switch must not be freed by the new allocator.
 * Returns 0 or -EINVAL.
 */
WEFT_EXTERN int weft_set_allocator(void *(*malloc_fn)(size_t),
                                   void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

/* ============================================================================================
 * Loop
 * ========================================================================================== */

typedef struct weft_loop weft_loop_t;
typedef struct weft_task weft_task_t;
typedef struct weft_future weft_future_t;

/* No deadline: wait forever. */
#define WEFT_NO_DEADLINE ((int64_t)-1)

/* Options for a loop; zero-initialise and set what you need. */
/* The engine of a loop's file calls (weft_loop_opts.file_engine; docs/files.md). */
enum weft_file_engine {
    WEFT_FILE_AUTO = 0,  /* WEFT_FILE_ENGINE from the environment, else io_uring if usable */
    WEFT_FILE_POOL = 1,  /* the thread pool */
    WEFT_FILE_URING = 2, /* the loop's io_uring ring; the pool where the kernel refuses it */
};

struct weft_loop_opts {
    size_t stack_size;  /* default task stack size in bytes; 0 = weft_default_stack_size() */
    bool virtual_clock; /* test mode: time starts at 0 and jumps to the next timer when idle */
    bool compact_tasks; /* tasks default to WEFT_STACK_COMPACT (weft_run's main task never) */
    int file_engine;    /* enum weft_file_engine: the engine of the file calls (docs/files.md);
                         * 0 = WEFT_FILE_AUTO */
    /* Naps: 0 (the default) = off, else a length in ns, at most 1 s. When the loop runs out of
     * work, it first sleeps for this long without being woken by I/O (a nanosleep; the loop
     * lowers its thread's timer slack to a tenth of the nap until weft_loop_close(), as the
     * kernel lengthens each sleep by that slack, 50 us by default), then takes everything
     * that came meanwhile in one poll; if the nap found nothing, the loop sleeps in the poll as
     * usual, and it naps again only after a sleep in the poll shorter than a nap (so an idle
     * loop, or answers further apart than a nap, cost no wasted naps); a nap that found a single
     * event batched nothing, so the loop then sleeps in the poll for its next 1, 2, 4 ... 32 idle
     * moments, until a nap finds two events or more. Never past a due timer.
     * For a program with many requests in flight to a peer on another core (a database client
     * with a pool): the peer no longer wakes this thread for each answer, which costs it CPU,
     * and this loop handles answers in batches. The price is latency: an event that comes during
     * a nap waits for its end (docs/core.md, "Naps"). */
    int64_t nap_ns;
};

/*
 * Information handed to an error handler: something failed where no caller could see it (a task
 * error nobody retrieved, an error during weft_run() shutdown).
 */
struct weft_error_info {
    const char *message; /* what happened, e.g. "task error never retrieved" */
    int error;           /* the negative errno involved */
    weft_task_t *task;   /* the task involved, or NULL; borrowed for the call only */
};

typedef void (*weft_error_handler_fn)(weft_loop_t *loop, const struct weft_error_info *info,
                                      void *arg);

/*
 * Create a loop for the calling thread. The loop is bound to this thread for its whole life.
 * `opts` may be NULL. Returns 0, -ENOMEM, or the error of the backend set-up (e.g. -EMFILE).
 * The caller owns *out and frees it with weft_loop_close().
 */
WEFT_EXTERN int weft_loop_new(weft_loop_t **out, const struct weft_loop_opts *opts);

/*
 * Run the loop until weft_loop_stop() is called (asyncio's run_forever). The calling thread must
 * be the one that created the loop. Returns 0, -EBUSY if this thread is already running a loop,
 * -EINVAL if `loop` belongs to another thread. Does not suspend (it is what runs the tasks).
 */
WEFT_EXTERN int weft_loop_run(weft_loop_t *loop);

/*
 * Ask a running loop to return from weft_loop_run() after the current iteration: callbacks and
 * tasks already ready in this iteration still run. Called before weft_loop_run(), it makes the
 * next run do one iteration with a zero poll timeout and return.
 */
WEFT_EXTERN void weft_loop_stop(weft_loop_t *loop);

/*
 * Close a loop that is not running: cancels nothing and runs nothing; remaining callbacks are
 * dropped, tasks that never finished are freed (their stacks too) and their handles become
 * inert (still valid to query and release). Returns 0, or -EBUSY if the loop is running.
 */
WEFT_EXTERN int weft_loop_close(weft_loop_t *loop);

/* The loop running on (or created by) this thread, or NULL. */
WEFT_EXTERN weft_loop_t *weft_loop_current(void);

/* True while weft_loop_run() (or weft_run()) is executing this loop. */
WEFT_EXTERN bool weft_loop_is_running(const weft_loop_t *loop);

/*
 * Install the handler for errors nobody could observe; NULL restores the default, which prints
 * one line to stderr. `arg` is passed through.
 */
WEFT_EXTERN void weft_loop_set_error_handler(weft_loop_t *loop, weft_error_handler_fn fn,
                                             void *arg);

/* Report `info` through the loop's error handler (asyncio's call_exception_handler). */
WEFT_EXTERN void weft_loop_report(weft_loop_t *loop, const struct weft_error_info *info);

/* ============================================================================================
 * Time and callbacks
 * ========================================================================================== */

/*
 * The present on the loop's clock, in nanoseconds: CLOCK_MONOTONIC read at this call (like
 * asyncio's loop.time()), or the virtual clock in virtual-clock mode. Every relative delay
 * (weft_sleep, weft_deadline_in, weft_call_later, weft_timeout_enter, weft_wait_for) counts from
 * this present, whatever ran before it in the same iteration. `loop` NULL means the current
 * thread's loop; without one, the raw monotonic clock is returned. Never suspends.
 */
WEFT_EXTERN int64_t weft_time(const weft_loop_t *loop);

/*
 * Testing aid for virtual-clock loops (weft_loop_opts.virtual_clock): move the clock forward by
 * `ns`, as if the running step had taken that long (Trio's MockClock.jump). Delays asked after it
 * count from the new time, and the loop sees the time passed when its next iteration starts:
 * timers due by then fire, exactly as after a long step on the real clock. `loop` NULL means the
 * current thread's loop. Returns 0, or -EINVAL for a real-clock loop, another thread's loop, or
 * `ns` < 0. Never suspends.
 */
WEFT_EXTERN int weft_clock_advance(weft_loop_t *loop, int64_t ns);

/* Seconds (as a double) to nanoseconds; NaN gives -EINVAL, negative gives 0, +inf gives INT64_MAX. */
WEFT_EXTERN int64_t weft_seconds_to_ns(double seconds);

/* The deadline `seconds` from now on the current loop's clock (WEFT_NO_DEADLINE for +inf/NaN). */
WEFT_EXTERN int64_t weft_deadline_in(double seconds);

typedef void (*weft_callback_fn)(void *arg);

/*
 * A timer handle in caller storage, for weft_call_at()/weft_call_later(). Initialise it with
 * weft_timer_init(); it must stay valid and unmoved while armed.
 */
typedef struct weft_timer {
    uint64_t opaque[12];
} weft_timer_t;

/* Prepare `timer` for use (not armed). */
WEFT_EXTERN void weft_timer_init(weft_timer_t *timer);

/*
 * Run `cb(arg)` from the loop, after the callbacks already queued (FIFO). Never runs it inline.
 * Returns 0 or -ENOMEM. Not thread-safe: use weft_call_soon_threadsafe() from other threads.
 */
WEFT_EXTERN int weft_call_soon(weft_loop_t *loop, weft_callback_fn cb, void *arg);

/*
 * Thread-safe call_soon: any thread (including a signal-free context of another thread) may call
 * it; the loop wakes up if it is sleeping. Returns 0, -ENOMEM, or -EINVAL for a closed loop.
 * The loop must not be closed concurrently with this call.
 */
WEFT_EXTERN int weft_call_soon_threadsafe(weft_loop_t *loop, weft_callback_fn cb, void *arg);

/*
 * Run `cb(arg)` when the loop clock reaches `when` (ns, absolute). Timers with equal deadlines
 * run in the order they were armed. `timer` may be NULL (fire and forget, allocated inside) or a
 * caller-storage handle that can then be cancelled; arming an armed timer re-arms it.
 * Returns 0, -EINVAL (bad `when`), -ENOMEM.
 */
WEFT_EXTERN int weft_call_at(weft_loop_t *loop, weft_timer_t *timer, int64_t when,
                             weft_callback_fn cb, void *arg);

/* weft_call_at() with a delay in seconds from now (negative = now, NaN = -EINVAL). */
WEFT_EXTERN int weft_call_later(weft_loop_t *loop, weft_timer_t *timer, double delay,
                                weft_callback_fn cb, void *arg);

/* Disarm a caller-storage timer. Returns true if it was armed (and now will not run). */
WEFT_EXTERN bool weft_timer_cancel(weft_timer_t *timer);

/* The deadline of an armed timer, or WEFT_NO_DEADLINE. */
WEFT_EXTERN int64_t weft_timer_when(const weft_timer_t *timer);

/* ============================================================================================
 * Runner
 * ========================================================================================== */

/*
 * A task's body: returns >= 0 as its result, or a negative errno as its error. Returning
 * -ECANCELED ends the task cancelled; so does returning a result (>= 0) while a cancellation
 * request is still undelivered (it cancelled itself and returned without suspending, as asyncio's
 * test_cancel_at_end). An error returned then is kept as the task's error (asyncio sets the
 * exception).
 */
typedef int (*weft_task_fn)(void *arg);

/*
 * asyncio.run(): create a fresh loop, run `main(arg)` as a task until it finishes, then cancel
 * every task still alive and wait for them, report (through the error handler) any that ended
 * with an error other than cancellation, run one more iteration (callbacks already scheduled,
 * such as done callbacks of the tasks that just ended, run), and close the loop.
 * Returns main's result: its value, its error, or -ECANCELED; -EBUSY if called while a loop is
 * running on this thread; -EINVAL if main is NULL; -ENOMEM.
 * Ctrl+C: on the main thread, when SIGINT has its default action, the first SIGINT cancels the
 * main task (its cleanup runs, other tasks are cancelled at shutdown as usual) and weft_run()
 * then returns -EINTR (asyncio raises KeyboardInterrupt); if code had cancelled the main task
 * too, -ECANCELED. A second SIGINT kills the process (the default action, taken inside the signal
 * handler: the loop may be stuck). Built on weft_signal_add(); a handler the program adds for
 * SIGINT replaces this. The previous disposition is restored.
 */
WEFT_EXTERN int weft_run(weft_task_fn main, void *arg);

/* weft_run() with loop options (stack size, virtual clock). `opts` may be NULL. */
WEFT_EXTERN int weft_run_opts(weft_task_fn main, void *arg, const struct weft_loop_opts *opts);

/* ============================================================================================
 * Tasks
 * ========================================================================================== */

/*
 * Where a task's stack lives (weft_task_opts.stack_mode).
 *
 * WEFT_STACK_OWN: a stack of its own (the default). A sleeping task costs the stack pages it
 * touched (at least one 4 KiB page) plus its task struct; switches cost no copy.
 *
 * WEFT_STACK_COMPACT: for very many mostly-idle tasks. Compact tasks share one stack of the
 * loop's stack size; when another compact task needs it, a sleeping one's frames are copied out
 * to a heap image of exactly their size (typically a few hundred bytes) and copied back before
 * it resumes. The price is a copy when compact tasks take turns, and one rule: **while a compact
 * task is suspended, nothing may use memory on its stack.** Its waits in weft's own calls are
 * safe (weft moves their bookkeeping with the image), but a pointer to a local variable lent to
 * another task, a thread or a callback (a buffer, a primitive, a TaskGroup, a timeout scope)
 * must point elsewhere: heap or static storage. weft refuses a timer, timeout scope or
 * TaskGroup placed on a compact task's stack with -EINVAL. The stack_size option does not apply.
 * If the image cannot be allocated the process aborts with a message, as on a stack overflow.
 */
enum weft_stack_mode {
    WEFT_STACK_DEFAULT = 0, /* the loop's choice (weft_loop_opts.compact_tasks) */
    WEFT_STACK_OWN = 1,
    WEFT_STACK_COMPACT = 2,
};

/* Options for one task; zero-initialise and set what you need. */
struct weft_task_opts {
    const char *name;  /* copied; NULL = "Task-N" */
    size_t stack_size; /* 0 = the loop's default (stacks of their own only) */
    int stack_mode;    /* enum weft_stack_mode; 0 = the loop's choice */
};

/*
 * Create a task running `fn(arg)` on the current loop (asyncio.create_task). It is scheduled
 * FIFO after what is already ready and never runs before this call returns. With `out` non-NULL
 * the caller receives a handle it owns and must drop with weft_task_release() (the task runs to
 * completion either way); with `out` NULL the task is detached, and an error it ends with is
 * reported through the loop's error handler.
 * Returns 0, -EPERM (no loop on this thread), -EINVAL (fn NULL or bad stack size), -ENOMEM.
 * Does not suspend.
 */
WEFT_EXTERN int weft_spawn(weft_task_t **out, weft_task_fn fn, void *arg);

/* weft_spawn() with options. `opts` may be NULL. */
WEFT_EXTERN int weft_spawn_opts(weft_task_t **out, weft_task_fn fn, void *arg,
                                const struct weft_task_opts *opts);

/* Take another reference to a task handle. */
WEFT_EXTERN weft_task_t *weft_task_retain(weft_task_t *task);

/*
 * Drop a reference. When the last reference goes and the task is done, it is freed; if it ended
 * with an error that was never read (by join, result, or the gather family), that error is
 * reported through the error handler first. Releasing a running task's handle detaches it.
 */
WEFT_EXTERN void weft_task_release(weft_task_t *task);

/*
 * Wait for `task` to finish and return its outcome: its result (>= 0), its error, or -ECANCELED
 * if it ended cancelled (asyncio's `await task`). Suspends. If the caller is cancelled while
 * waiting, the request is forwarded to `task` and the caller's fate follows `task`'s outcome.
 * Returns -EDEADLK when joining yourself, -EPERM outside a task, -EINVAL for NULL.
 */
WEFT_EXTERN int weft_join(weft_task_t *task);

/* weft_join() with a deadline: -ETIMEDOUT when it passes (the task keeps running). */
WEFT_EXTERN int weft_join_dl(weft_task_t *task, int64_t deadline);

/*
 * asyncio.shield(): wait for `task` like weft_join(), but a cancellation of the caller is NOT
 * forwarded: the caller gets -ECANCELED and `task` keeps running. Suspends.
 */
WEFT_EXTERN int weft_shield(weft_task_t *task);

/*
 * Request cancellation (Task.cancel): false if the task is done; otherwise the request counter
 * goes up by one and true is returned. The task sees -ECANCELED at its current suspension point
 * (or its next one if it is running); if it waits on another task or future, the request is
 * forwarded there instead. A task not started yet ends cancelled without running. `msg` (may be
 * NULL) is copied and readable with weft_task_cancel_message(). Does not suspend.
 */
WEFT_EXTERN bool weft_task_cancel(weft_task_t *task, const char *msg);

/* The number of pending cancellation requests (Task.cancelling). */
WEFT_EXTERN int weft_task_cancelling(const weft_task_t *task);

/*
 * Decrement the request counter (not below 0) and return the new value (Task.uncancel). When it
 * reaches 0 a cancellation not yet delivered is withdrawn.
 */
WEFT_EXTERN int weft_task_uncancel(weft_task_t *task);

/* True when the task finished (result, error or cancelled). */
WEFT_EXTERN bool weft_task_done(const weft_task_t *task);

/* True when the task ended cancelled. */
WEFT_EXTERN bool weft_task_cancelled(const weft_task_t *task);

/*
 * The outcome of a finished task: result, error, or -ECANCELED. -EINVAL while it is not done
 * (check weft_task_done() first when the task may itself return -EINVAL). Marks the error read.
 */
WEFT_EXTERN int weft_task_result(weft_task_t *task);

/* The message of the cancellation that ended the task, or of the last request; NULL if none. */
WEFT_EXTERN const char *weft_task_cancel_message(const weft_task_t *task);

/* The task's name ("Task-N" unless set). Valid until the name changes or the task is freed. */
WEFT_EXTERN const char *weft_task_name(weft_task_t *task);

/* Rename a task (copied). Returns 0, -EINVAL, -ENOMEM. */
WEFT_EXTERN int weft_task_set_name(weft_task_t *task, const char *name);

/* An id unique in the process and increasing within a loop (the N of "Task-N"). */
WEFT_EXTERN uint64_t weft_task_id(const weft_task_t *task);

/* The task running now, or NULL outside a task. Borrowed. */
WEFT_EXTERN weft_task_t *weft_current_task(void);

/*
 * Fill `out` with up to `cap` borrowed handles of the loop's tasks that are not done (asyncio's
 * all_tasks) and return how many there are in total (which may exceed `cap`). The handles are
 * valid until the calling task next suspends: retain them to keep them longer (a released task's
 * slot is reused, and weft does not detect a stale handle). `loop` NULL means
 * the current loop; `out` NULL counts only.
 */
WEFT_EXTERN size_t weft_all_tasks(weft_loop_t *loop, weft_task_t **out, size_t cap);

/*
 * The task as a future: the same object seen through the future calls (done callbacks, await,
 * cancel). Setting its result through the future calls is refused with -EINVAL. Borrowed.
 */
WEFT_EXTERN weft_future_t *weft_task_future(weft_task_t *task);

/*
 * Suspend for `seconds` (asyncio.sleep). 0 or negative yields exactly one trip through the loop;
 * NaN gives -EINVAL; +inf sleeps until cancelled. Returns 0 or -ECANCELED. Suspends.
 */
WEFT_EXTERN int weft_sleep(double seconds);

/* Suspend until the loop clock reaches `deadline` (ns). Returns 0 or -ECANCELED. Suspends. */
WEFT_EXTERN int weft_sleep_until(int64_t deadline);

/* weft_sleep(0): let every other ready task and callback run once. Suspends. */
WEFT_EXTERN int weft_yield(void);

/* The default task stack size for new loops (256 KiB unless changed). Thread-safe. */
WEFT_EXTERN size_t weft_default_stack_size(void);

/*
 * Change the default task stack size for loops created afterwards. Rounded up to whole pages;
 * must be between 16 KiB and 1 GiB. Returns 0 or -EINVAL. Thread-safe.
 */
WEFT_EXTERN int weft_set_default_stack_size(size_t bytes);

/* ============================================================================================
 * Futures
 * ========================================================================================== */

/*
 * Create a pending future on the current loop. The caller owns one reference (release with
 * weft_future_release()). Returns 0, -EPERM (no loop on this thread), -ENOMEM.
 */
WEFT_EXTERN int weft_future_new(weft_future_t **out);

WEFT_EXTERN weft_future_t *weft_future_retain(weft_future_t *fut);
WEFT_EXTERN void weft_future_release(weft_future_t *fut);

/*
 * Complete a pending future with a result (>= 0) or an error (< 0; -ECANCELED is refused, use
 * weft_future_cancel()). Waiting tasks and done callbacks are scheduled, never run inline.
 * Returns 0, -EALREADY if already done, -EINVAL if `fut` is a task's future, a bad value, or
 * its loop is closed or not this thread's (a future is used on its loop's thread only). A future
 * may outlive its loop: it can still be read and released.
 */
WEFT_EXTERN int weft_future_set_result(weft_future_t *fut, int value);
WEFT_EXTERN int weft_future_set_error(weft_future_t *fut, int err);

/*
 * Cancel a pending future (Future.cancel); for a task's future this is weft_task_cancel().
 * Returns false if already done, or if its loop is closed or not this thread's.
 */
WEFT_EXTERN bool weft_future_cancel(weft_future_t *fut, const char *msg);

WEFT_EXTERN bool weft_future_done(const weft_future_t *fut);
WEFT_EXTERN bool weft_future_cancelled(const weft_future_t *fut);

/* Outcome of a done future (value, error, -ECANCELED); -EINVAL while pending. Marks it read. */
WEFT_EXTERN int weft_future_result(weft_future_t *fut);

/*
 * Wait until the future is done and return its outcome. Suspends. Cancelling the waiting task
 * cancels the future (the task then gets -ECANCELED).
 */
WEFT_EXTERN int weft_future_await(weft_future_t *fut);

/* weft_future_await() with a deadline: -ETIMEDOUT when it passes; the future is not cancelled. */
WEFT_EXTERN int weft_future_await_dl(weft_future_t *fut, int64_t deadline);

/* Wait for the future without forwarding the caller's cancellation to it (asyncio.shield). */
WEFT_EXTERN int weft_future_await_shielded(weft_future_t *fut);

typedef void (*weft_future_cb)(weft_future_t *fut, void *arg);

/*
 * Call `cb(fut, arg)` from the loop once the future is done (scheduled right away if it already
 * is). Callbacks are never run inline. Returns 0, -ENOMEM, or -EINVAL (NULL argument, or the
 * future's loop is closed or not this thread's).
 */
WEFT_EXTERN int weft_future_add_done_callback(weft_future_t *fut, weft_future_cb cb, void *arg);

/* Remove every registration of (cb, arg) not yet scheduled; returns how many were removed. */
WEFT_EXTERN int weft_future_remove_done_callback(weft_future_t *fut, weft_future_cb cb,
                                                 void *arg);

/* ============================================================================================
 * File descriptors (the base of all I/O)
 * ========================================================================================== */

#define WEFT_READABLE 1
#define WEFT_WRITABLE 2

/*
 * Wait until `fd` becomes readable and/or writable (`events`: WEFT_READABLE | WEFT_WRITABLE).
 * The contract is edge-style: call it after an operation on the non-blocking fd returned EAGAIN
 * (or after a short read, which drained it); it returns when new readiness arrives. Readiness
 * that arrived while no task waited for it, and the end of a direction (which lasts), are
 * reported at once without suspending, so a wake-up is never lost but may be spurious: retry the
 * operation. The peer's half-close ends only the input (WEFT_READABLE lasts; a wait for
 * WEFT_WRITABLE still parks until there is room); a hang-up or error ends both directions.
 * Several tasks may wait on one fd. Returns the ready events (> 0), -ETIMEDOUT, -ECANCELED,
 * -EBADF if the fd was closed with weft_close() meanwhile, -EPERM (fd kind not pollable, or
 * outside a task), -EINVAL. Suspends (unless readiness is already known).
 */
WEFT_EXTERN int weft_wait_fd_dl(int fd, int events, int64_t deadline);
WEFT_EXTERN int weft_wait_fd(int fd, int events);

/*
 * Close an fd that weft may be watching: wakes every task waiting on it with -EBADF and forgets
 * it before the number can be reused, then closes it. Returns 0 or the negative errno of close().
 * Usable outside tasks too.
 */
WEFT_EXTERN int weft_close(int fd);

/* ============================================================================================
 * Structured concurrency (gather, wait, as_completed, wait_for, timeout scopes, TaskGroup)
 * ========================================================================================== */

/* (section: structured) */

/*
 * Timeout scopes (asyncio.timeout / timeout_at). A scope is a stretch of code in one task with a
 * deadline: when the deadline passes, the task is cancelled exactly as weft_task_cancel() would
 * (so EVERY suspension point inside, of any weft call, returns -ECANCELED), and the scope's exit
 * turns that cancellation into -ETIMEDOUT. Usage:
 *
 *     weft_timeout_t to = {{0}};
 *     int r = weft_timeout_enter(&to, 1.5);
 *     if (r == 0)
 *         r = weft_timeout_exit(&to, do_work());   (do_work returns -ECANCELED when cut off)
 *
 * At entry the scope records the task's weft_task_cancelling() as its baseline; at exit, if it
 * fired, it calls weft_task_uncancel(): only when the count is back to the baseline and the body
 * ended with -ECANCELED does the scope answer -ETIMEDOUT. A cancellation from someone else, or
 * from an outer scope with the same deadline, passes through as -ECANCELED, so nested scopes work
 * and an outside cancel stays a cancel. A body that swallows the cancel and returns a value keeps
 * its value (weft_timeout_expired() still tells it fired).
 *
 * The storage is the caller's (usually the task's stack): zero it before its first enter (enter
 * reads it to refuse a scope already entered; valgrind reports that read on uninitialised
 * storage, and garbage that happens to look entered gives -EINVAL), it must stay valid and
 * unmoved from enter to exit, and every successful enter must be paired with an exit by the same task before
 * the storage goes away (the scope owns an armed timer). Not thread-safe.
 */
typedef struct weft_timeout {
    uint64_t opaque[16];
} weft_timeout_t;

/*
 * Enter a scope that expires `seconds` from now (0 or negative: at the next loop iteration; +inf:
 * never, until rescheduled). Does not suspend.
 * Returns 0, -EPERM outside a task, -EINVAL for NaN, NULL or a scope already entered and not
 * exited, -ENOMEM.
 */
WEFT_EXTERN int weft_timeout_enter(weft_timeout_t *to, double seconds);

/*
 * Enter a scope that expires when the loop clock reaches `when` (ns of weft_time(); a deadline in
 * the past expires at the next iteration; WEFT_NO_DEADLINE or any negative value: never).
 * Returns 0, -EPERM outside a task, -EINVAL (NULL, already entered), -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_timeout_enter_at(weft_timeout_t *to, int64_t when);

/*
 * Leave the scope; `body_result` is what the code inside ended with. Returns -ETIMEDOUT when the
 * scope expired, the cancellation it caused is the only one pending beyond the baseline, and
 * `body_result` is -ECANCELED; otherwise `body_result` unchanged. -EINVAL if the scope is not
 * entered or the caller is not the task that entered it. Does not suspend; must be called by the
 * task that entered the scope.
 */
WEFT_EXTERN int weft_timeout_exit(weft_timeout_t *to, int body_result);

/*
 * Move the deadline of an entered scope that has not expired to `when` (ns; WEFT_NO_DEADLINE
 * disables it; a time in the past expires at the next iteration). May be called from any task of
 * the same loop or a callback. Returns 0, -EINVAL if the scope is not entered or already
 * expired, -ENOMEM.
 */
WEFT_EXTERN int weft_timeout_reschedule(weft_timeout_t *to, int64_t when);

/* True once the scope's deadline has fired (during the body or after exit). */
WEFT_EXTERN bool weft_timeout_expired(const weft_timeout_t *to);

/* The scope's current deadline (ns), or WEFT_NO_DEADLINE when disabled. */
WEFT_EXTERN int64_t weft_timeout_when(const weft_timeout_t *to);

/*
 * Run `fn(arg)` in the calling task inside a scope of `seconds`: the block form of a scope.
 * Returns what weft_timeout_exit() gives for fn's result, or the error of entering.
 * Suspends if fn does.
 */
WEFT_EXTERN int weft_timeout_call(double seconds, weft_task_fn fn, void *arg);

/*
 * asyncio.wait_for (3.12+): wait for `task` at most `seconds`. On expiry the task is cancelled
 * and waited for until it has finished its cleanup, then -ETIMEDOUT is returned; if it swallows
 * the cancel and returns a value (or fails with another error) that outcome is returned instead.
 * With `seconds` <= 0 a task that is not done is cancelled at once (a task that has not started
 * never runs) and waited for the same way. +inf waits like weft_join(). Cancelling the caller
 * cancels `task` (use a scope around weft_shield() to keep it running).
 * Returns the task's result or error, -ETIMEDOUT, -ECANCELED, -EINVAL (NULL, NaN, other loop),
 * -EDEADLK (the caller itself), -EPERM outside a task. Suspends. Marks the task's error read.
 */
WEFT_EXTERN int weft_wait_for(weft_task_t *task, double seconds);

/* weft_wait_for() with an absolute deadline (ns of weft_time(); negative: no deadline). */
WEFT_EXTERN int weft_wait_for_at(weft_task_t *task, int64_t when);

/* weft_gather() flag: collect every outcome instead of stopping at the first error. */
#define WEFT_GATHER_RETURN_ERRORS 1

/*
 * asyncio.gather over tasks: wait for `tasks[0..n)` (borrowed; the same task may appear twice)
 * and fill `results[i]` (may be NULL) with the outcome of tasks[i]: its result, its error, or
 * -ECANCELED; a task still running when the gather ends gets -EINPROGRESS.
 * Without WEFT_GATHER_RETURN_ERRORS the first child that fails or ends cancelled ends the gather
 * at once with that error (-ECANCELED for a cancelled child); the other children keep running
 * and are not cancelled (their later errors are marked read). With it, the gather waits for
 * every child and returns 0; each error sits in its slot.
 * Cancelling the calling task while it waits cancels every unfinished child (with the caller's
 * cancel message); the gather then still waits for the outcome as above and returns -ECANCELED
 * when all children ended (with return-errors) or the first one ended cancelled; a child error
 * arriving first is returned instead. A gather that already ended cancels nothing.
 * Returns 0, the first error, -ECANCELED, -EINVAL (NULL task, bad flags, task of another loop),
 * -EDEADLK (the caller is among the tasks), -EPERM outside a task, -ENOMEM. n == 0 returns 0
 * without suspending. Suspends. Marks the errors it reports (in results or as its result) read.
 */
WEFT_EXTERN int weft_gather(weft_task_t *const *tasks, size_t n, int *results, int flags);

/* weft_wait() conditions (asyncio's return_when). */
#define WEFT_FIRST_COMPLETED 1 /* return when any task finishes */
#define WEFT_FIRST_EXCEPTION 2 /* when any task fails (cancellation does not count), else all */
#define WEFT_ALL_COMPLETED   3 /* when every task has finished */

/*
 * asyncio.wait over tasks: suspend until `return_when` holds for `tasks[0..n)` (borrowed), then
 * store the tasks that are done in `done` and the others in `pending` (each may be NULL, else
 * has room for n handles; borrowed handles, in argument order; a task listed twice appears
 * twice). Never cancels anything and never reads or marks the tasks' errors.
 * Returns the number of done tasks (the pending ones are the other n minus that), -EINVAL
 * (n == 0, NULL task, bad return_when, task of another loop), -EDEADLK (the caller is among
 * the tasks), -ECANCELED (the caller was cancelled; the tasks are untouched), -EPERM outside a
 * task, -ENOMEM. Suspends (at least one loop iteration, even if every task is already done).
 */
WEFT_EXTERN int weft_wait(weft_task_t *const *tasks, size_t n, int return_when, weft_task_t **done,
                          weft_task_t **pending);

/*
 * weft_wait() bounded by `deadline` (ns of weft_time(); WEFT_NO_DEADLINE = none). When it passes
 * the call returns normally with what is done so far: a timeout is not an error here.
 */
WEFT_EXTERN int weft_wait_dl(weft_task_t *const *tasks, size_t n, int return_when,
                             weft_task_t **done, weft_task_t **pending, int64_t deadline);

/* An iterator over tasks in completion order (asyncio.as_completed). */
typedef struct weft_as_completed weft_as_completed_t;

/*
 * Start iterating `tasks[0..n)` (copied; each task is retained until weft_as_completed_free())
 * in the order they finish. `deadline` (ns of weft_time(), WEFT_NO_DEADLINE = none) bounds the
 * whole iteration. Does not suspend; needs a running loop. Returns 0, -EPERM (no loop), -EINVAL
 * (NULL task, task of another loop), -EDEADLK (the current task is among them), -ENOMEM.
 * The caller owns *out and frees it with weft_as_completed_free().
 */
WEFT_EXTERN int weft_as_completed_new(weft_as_completed_t **out, weft_task_t *const *tasks,
                                      size_t n, int64_t deadline);

/*
 * Take the next step: suspend until another task has finished and return its index in the
 * original array, storing the task in *task (borrowed, may be NULL). Each input slot is yielded
 * once. Once the deadline has passed, every remaining step returns -ETIMEDOUT (tasks that had
 * finished before it are still yielded first); nothing is cancelled.
 * Returns the index (>= 0), WEFT_EOF after n steps, -ETIMEDOUT, -ECANCELED (the step can be
 * retried), -EPERM outside a task, -EINVAL. Suspends. Does not read the task's outcome.
 */
WEFT_EXTERN int weft_as_completed_next(weft_as_completed_t *ac, weft_task_t **task);

/* Stop iterating and free the iterator (tasks not yet yielded keep running). NULL is ignored. */
WEFT_EXTERN void weft_as_completed_free(weft_as_completed_t *ac);

/*
 * TaskGroup (asyncio 3.13). A group is a stretch of code in one task (the parent) that starts
 * children and does not end before they all have:
 *
 *     weft_group_t g = {{0}};
 *     weft_errgroup_t *eg;
 *     int r = weft_group_enter(&g);
 *     if (r == 0) {
 *         weft_group_spawn(&g, NULL, fetch, "a");
 *         weft_group_spawn(&g, NULL, fetch, "b");
 *         r = weft_group_exit(&g, body(), &eg);   (0, -ECANCELED or WEFT_EGROUP)
 *     }
 *
 * Children may be added while the group runs, by the body or by the children themselves. The
 * first child that fails (ends with an error other than -ECANCELED) cancels every other child
 * and, once, the parent, so the body's current suspension point returns -ECANCELED; exit takes
 * that request back (the parent's weft_task_cancelling() is back where it was). Children that
 * end cancelled are simply forgotten. Errors are collected into an error group (which child,
 * which error); they win over an outside cancellation of the parent, which then stays pending
 * for the parent's next suspension point. A group failing inside a child or inside the body of
 * another group becomes a nested error group of the outer one.
 *
 * The storage is the caller's (usually the parent's stack): zero it before its first enter (enter
 * reads it to refuse a group already entered; valgrind reports that read on uninitialised
 * storage), valid and unmoved from enter until exit returns; every successful enter must be paired with an exit by the same task. Nothing
 * here is thread-safe.
 */
typedef struct weft_group {
    uint64_t opaque[16];
} weft_group_t;

/* The result of weft_group_exit() when children (or the body) failed: see the error group. */
#define WEFT_EGROUP (-4090)

/* The errors of a task group: a refcounted list of (task, error, nested group) entries. */
typedef struct weft_errgroup weft_errgroup_t;

/*
 * Enter a group whose parent is the calling task. Returns 0, -EPERM outside a task, -EINVAL
 * (NULL, or a group already entered and not exited), -ENOMEM. Does not suspend. The memory an
 * error group needs is reserved here and by each spawn (-ENOMEM then), never at a failure: a
 * child's or the body's error is never lost to an allocation failure.
 */
WEFT_EXTERN int weft_group_enter(weft_group_t *g);

/*
 * Start a child `fn(arg)` in the group (TaskGroup.create_task); it is scheduled like
 * weft_spawn(). With `out` non-NULL the caller also gets a handle it must release; the group
 * keeps its own. May be called by the parent or by any task of the same loop (children too).
 * Returns 0, -EINVAL (NULL fn, group not entered or finished, other loop), -ESHUTDOWN (the group
 * is aborting after a failure or a cancel), -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_group_spawn(weft_group_t *g, weft_task_t **out, weft_task_fn fn, void *arg);

/* weft_group_spawn() with task options (name, stack size). */
WEFT_EXTERN int weft_group_spawn_opts(weft_group_t *g, weft_task_t **out, weft_task_fn fn,
                                      void *arg, const struct weft_task_opts *opts);

/* The number of children still running (or whose end the group has not handled yet). */
WEFT_EXTERN size_t weft_group_size(const weft_group_t *g);

/*
 * Leave the group: `body_result` is how the code between enter and exit ended (>= 0, an error,
 * or -ECANCELED). An error or a cancellation of the body cancels the children first. Then wait
 * for every child; a cancellation of the parent meanwhile cancels the children and the wait
 * goes on. Returns:
 *   WEFT_EGROUP  children failed, or the body failed with an error other than -ECANCELED: *errors
 *                (if `errors` is not NULL) receives the error group, owned by the caller
 *                (weft_errgroup_release()); an entry with no task is the body's own error;
 *   -ECANCELED   the parent was cancelled from outside and nothing failed;
 *   body_result  otherwise (0 if the body ended with the group's own cancellation);
 *   -EINVAL      not entered, already exited, or not called by the parent.
 * Suspends (unless no child is left); must be called by the parent. Children's errors are read.
 */
WEFT_EXTERN int weft_group_exit(weft_group_t *g, int body_result, weft_errgroup_t **errors);

/* The number of entries. */
WEFT_EXTERN size_t weft_errgroup_count(const weft_errgroup_t *eg);

/* Entry i's error (WEFT_EGROUP when it carries a nested group), or -EINVAL if out of range. */
WEFT_EXTERN int weft_errgroup_error(const weft_errgroup_t *eg, size_t i);

/* Entry i's failed child (borrowed, valid while `eg` lives), or NULL for the body's error. */
WEFT_EXTERN weft_task_t *weft_errgroup_task(const weft_errgroup_t *eg, size_t i);

/* Entry i's nested error group (borrowed), or NULL. */
WEFT_EXTERN const weft_errgroup_t *weft_errgroup_nested(const weft_errgroup_t *eg, size_t i);

/* True if `err` is the error of an entry of `eg` or of any nested group (except*'s match). */
WEFT_EXTERN bool weft_errgroup_contains(const weft_errgroup_t *eg, int err);

/* Take another reference. */
WEFT_EXTERN weft_errgroup_t *weft_errgroup_retain(weft_errgroup_t *eg);

/* Drop a reference; the last one frees the group and releases its tasks. NULL is ignored. */
WEFT_EXTERN void weft_errgroup_release(weft_errgroup_t *eg);

/* ============================================================================================
 * Synchronization primitives (Lock, Event, Condition, Semaphore, Barrier)
 * ========================================================================================== */

/* (section: synchronization) */

/*
 * asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier. They live in caller
 * storage (no allocation): declare one, initialise it with its _init call, and do not move or
 * copy it while it is in use. None of them is thread-safe: a primitive belongs to one loop at a
 * time; a task of another loop that tries to wait on it while it has waiters gets -EINVAL, and so
 * does a wake-up call made from another thread. Waiters are served strictly in arrival order.
 * A wait that would not block returns at once without suspending (and without noticing a pending
 * cancellation, like asyncio); such calls also work outside a task. A call that has to wait
 * suspends, and may only do so inside a task (-EPERM otherwise).
 */

/*
 * Lock (asyncio.Lock): not reentrant and not owned, any task may release it. Acquisition is
 * FIFO without barging: a newcomer takes an unlocked lock at once only when nobody is queued.
 * An all-zero weft_lock_t is a valid unlocked lock (so `static weft_lock_t l;` needs no init).
 */
typedef struct weft_lock {
    uint64_t opaque[4];
} weft_lock_t;

/* Initialise `lock` unlocked. */
WEFT_EXTERN void weft_lock_init(weft_lock_t *lock);

/*
 * Acquire `lock`, waiting in line if it is held or others already wait. Suspends only when it
 * has to wait. Returns 0 (the caller holds the lock), -ECANCELED, -ETIMEDOUT (_dl; the deadline
 * is checked only when waiting), -EPERM (must wait outside a task), -EINVAL (NULL, other loop).
 * A waiter that is handed the lock but cancelled before it runs passes the lock on to the next.
 */
WEFT_EXTERN int weft_lock_acquire(weft_lock_t *lock);
WEFT_EXTERN int weft_lock_acquire_dl(weft_lock_t *lock, int64_t deadline);

/*
 * Release `lock` and wake the first waiter, which takes it when it runs. Returns 0, -EPERM if
 * the lock is not held, -EINVAL (NULL, or waiters of another thread's loop). Does not suspend.
 */
WEFT_EXTERN int weft_lock_release(weft_lock_t *lock);

/* True while the lock is held (asyncio's locked()). */
WEFT_EXTERN bool weft_lock_locked(const weft_lock_t *lock);

/*
 * Event (asyncio.Event): a flag tasks can wait for. An all-zero weft_event_t is a valid unset
 * event.
 */
typedef struct weft_event {
    uint64_t opaque[4];
} weft_event_t;

/* Initialise `ev` unset. */
WEFT_EXTERN void weft_event_init(weft_event_t *ev);

/*
 * Set the flag and wake every task waiting for it; setting a set event does nothing.
 * Returns 0, or -EINVAL (NULL, or waiters of another thread's loop). Does not suspend.
 */
WEFT_EXTERN int weft_event_set(weft_event_t *ev);

/* Reset the flag. Tasks already woken by weft_event_set() still return 0. Does not suspend. */
WEFT_EXTERN void weft_event_clear(weft_event_t *ev);

/* True while the flag is set. */
WEFT_EXTERN bool weft_event_is_set(const weft_event_t *ev);

/*
 * Wait until the flag is set (asyncio's wait() returning True). Returns 0 at once if it is set;
 * otherwise suspends and returns 0 once woken by weft_event_set(), even if the event was cleared
 * again before the caller ran; or -ECANCELED, -ETIMEDOUT (_dl), -EPERM, -EINVAL.
 */
WEFT_EXTERN int weft_event_wait(weft_event_t *ev);
WEFT_EXTERN int weft_event_wait_dl(weft_event_t *ev, int64_t deadline);

/*
 * Condition (asyncio.Condition): a wait list tied to a lock, either a lock of the caller's or one
 * inside the condition. An all-zero weft_cond_t is a valid condition with its own lock.
 */
typedef struct weft_cond {
    uint64_t opaque[8];
} weft_cond_t;

/*
 * Initialise `cond` over `lock` (borrowed; it must outlive the condition), or over a lock of its
 * own when `lock` is NULL.
 */
WEFT_EXTERN void weft_cond_init(weft_cond_t *cond, weft_lock_t *lock);

/* The condition's lock: weft_lock_acquire(_dl) / weft_lock_release / weft_lock_locked on it. */
WEFT_EXTERN int weft_cond_acquire(weft_cond_t *cond);
WEFT_EXTERN int weft_cond_acquire_dl(weft_cond_t *cond, int64_t deadline);
WEFT_EXTERN int weft_cond_release(weft_cond_t *cond);
WEFT_EXTERN bool weft_cond_locked(const weft_cond_t *cond);

/*
 * Release the lock, wait to be notified, and re-acquire the lock. The caller must hold the lock
 * (-EPERM otherwise). Suspends. The lock is held again when this returns, whatever the outcome:
 * 0 (notified), -ECANCELED (cancelled while waiting or while re-acquiring; the re-acquisition is
 * retried until it succeeds, then the cancellation is reported), -ETIMEDOUT (_dl: the deadline
 * bounds the wait for a notification, not the re-acquisition). Without the lock held: -EPERM
 * (also outside a task), -EINVAL (NULL, or waiters of another loop). A waiter that was notified
 * but returns an error passes its notification on to another waiter, so a notification is never
 * lost; in exchange a wake-up may be spurious: re-check the condition in a loop
 * (weft_cond_wait_for does).
 */
WEFT_EXTERN int weft_cond_wait(weft_cond_t *cond);
WEFT_EXTERN int weft_cond_wait_dl(weft_cond_t *cond, int64_t deadline);

/*
 * Wait until `pred(arg)` is true (asyncio's wait_for): checks it first and returns 0 at once if
 * it holds (lock held or not); otherwise waits and re-checks after every wake-up. Returns 0 with
 * the predicate true, or an error of weft_cond_wait_dl() (with the lock held, except for -EPERM
 * and -EINVAL). `pred` runs with the lock held once it has waited. Suspends when it waits.
 */
WEFT_EXTERN int weft_cond_wait_for(weft_cond_t *cond, bool (*pred)(void *arg), void *arg);
WEFT_EXTERN int weft_cond_wait_for_dl(weft_cond_t *cond, bool (*pred)(void *arg), void *arg,
                                      int64_t deadline);

/*
 * Wake up to `n` waiters (the first ones not yet woken). The caller must hold the lock. Returns
 * the number woken, -EPERM (lock not held), -EINVAL. Does not suspend.
 */
WEFT_EXTERN int weft_cond_notify(weft_cond_t *cond, int n);

/* Wake every waiter; weft_cond_notify() with no limit. */
WEFT_EXTERN int weft_cond_notify_all(weft_cond_t *cond);

/*
 * Semaphore and BoundedSemaphore (asyncio 3.13): a counter, acquire takes one unit and waits while
 * none is free. Strictly FIFO: a newcomer waits behind queued waiters even when units are free.
 */
typedef struct weft_sem {
    uint64_t opaque[4];
} weft_sem_t;

/* Initialise `sem` with `value` free units. Returns 0 or -EINVAL (value < 0). */
WEFT_EXTERN int weft_sem_init(weft_sem_t *sem, int value);

/*
 * Initialise a bounded semaphore: like weft_sem_init(), and releasing more units than were
 * acquired is an error. Returns 0 or -EINVAL (value < 0).
 */
WEFT_EXTERN int weft_sem_init_bounded(weft_sem_t *sem, int value);

/*
 * Take one unit, waiting in line if none is free or others wait. Suspends only when it waits.
 * Returns 0, -ECANCELED, -ETIMEDOUT (_dl), -EPERM, -EINVAL. A waiter that was given a unit but is
 * cancelled before it runs gives the unit back (it goes to the next waiter).
 */
WEFT_EXTERN int weft_sem_acquire(weft_sem_t *sem);
WEFT_EXTERN int weft_sem_acquire_dl(weft_sem_t *sem, int64_t deadline);

/*
 * Give back one unit, handing it to the first waiter. Returns 0, -EINVAL (bounded semaphore
 * released more often than acquired, NULL, or waiters of another thread's loop), -EOVERFLOW
 * (counter at INT_MAX). Does not suspend.
 */
WEFT_EXTERN int weft_sem_release(weft_sem_t *sem);

/* True when an acquire would wait: no unit is free, or tasks are queued (asyncio's locked()). */
WEFT_EXTERN bool weft_sem_locked(const weft_sem_t *sem);

/* The number of free units (asyncio's private _value). */
WEFT_EXTERN int weft_sem_value(const weft_sem_t *sem);

/*
 * Barrier (asyncio.Barrier): `parties` tasks wait until all of them have arrived, then all go on.
 * Broken barriers (reset, abort) make waits fail with -EPIPE (asyncio's BrokenBarrierError).
 */
typedef struct weft_barrier {
    uint64_t opaque[4];
} weft_barrier_t;

/* Initialise `barrier` for `parties` tasks. Returns 0 or -EINVAL (parties < 1). */
WEFT_EXTERN int weft_barrier_init(weft_barrier_t *barrier, int parties);

/*
 * Arrive and wait for the others. Returns this caller's arrival index, 0 .. parties-1 (the last
 * arrival trips the barrier and does not suspend), or -EPIPE (the barrier was reset or aborted
 * while waiting, or is broken), -ECANCELED or -ETIMEDOUT (_dl; the caller leaves the barrier),
 * -EPERM, -EINVAL. Callers arriving while the previous round still drains or resets wait for it.
 * Suspends.
 */
WEFT_EXTERN int weft_barrier_wait(weft_barrier_t *barrier);
WEFT_EXTERN int weft_barrier_wait_dl(weft_barrier_t *barrier, int64_t deadline);

/*
 * Return the barrier to its empty state: tasks waiting now get -EPIPE, later ones use it
 * normally. Returns 0 or -EINVAL. Does not suspend (asyncio's reset() is a coroutine only
 * because it takes an internal lock).
 */
WEFT_EXTERN int weft_barrier_reset(weft_barrier_t *barrier);

/* Break the barrier for good: current and future waits get -EPIPE. Returns 0 or -EINVAL. */
WEFT_EXTERN int weft_barrier_abort(weft_barrier_t *barrier);

/* The number of parties. */
WEFT_EXTERN int weft_barrier_parties(const weft_barrier_t *barrier);

/* The number of tasks waiting for the barrier to fill (0 while it drains or resets). */
WEFT_EXTERN int weft_barrier_n_waiting(const weft_barrier_t *barrier);

/* True once weft_barrier_abort() was called. */
WEFT_EXTERN bool weft_barrier_broken(const weft_barrier_t *barrier);

/* ============================================================================================
 * Queues
 * ========================================================================================== */

/* (section: queues) */

/*
 * asyncio's Queue, LifoQueue and PriorityQueue (3.13, with shutdown) of `void *` items. A queue is
 * a heap object (it holds a growing buffer); items are the caller's pointers, stored and handed
 * back as they are: the queue never dereferences or frees them. Not thread-safe: a queue belongs
 * to one loop while tasks wait on it (a task of another loop gets -EINVAL). Waiters are woken in
 * FIFO order and re-check the queue when they run (no direct hand-off, as in asyncio): a
 * cancelled or timed-out put never leaves its item behind, and a cancelled get loses no item.
 */
typedef struct weft_queue weft_queue_t;

/*
 * Priority order: negative when item `a` comes out before `b`, positive when after, 0 when equal
 * (equal items come out in the order they were put). `arg` is the one given at creation.
 */
typedef int (*weft_queue_cmp_fn)(const void *a, const void *b, void *arg);

/*
 * Create a FIFO queue holding at most `maxsize` items (0 = unbounded). The caller owns *out and
 * frees it with weft_queue_free(). Returns 0 or -ENOMEM. Does not suspend; needs no loop.
 */
WEFT_EXTERN int weft_queue_new(weft_queue_t **out, size_t maxsize);

/* weft_queue_new() for a LIFO queue (asyncio.LifoQueue): the last item put comes out first. */
WEFT_EXTERN int weft_queue_new_lifo(weft_queue_t **out, size_t maxsize);

/*
 * weft_queue_new() for a priority queue (asyncio.PriorityQueue): the smallest item by `cmp`
 * comes out first. Returns 0, -EINVAL (cmp NULL), -ENOMEM.
 */
WEFT_EXTERN int weft_queue_new_priority(weft_queue_t **out, size_t maxsize, weft_queue_cmp_fn cmp,
                                        void *arg);

/*
 * Free a queue. Items still in it are not touched (drain them first if they own memory).
 * Returns 0, or -EBUSY (nothing freed) while a task is inside a blocking call on it. NULL is a
 * no-op.
 */
WEFT_EXTERN int weft_queue_free(weft_queue_t *q);

/*
 * Put `item` at the tail (asyncio's put_nowait): never suspends. Returns 0, -EAGAIN (full,
 * asyncio's QueueFull), -ESHUTDOWN, -ENOMEM, -EINVAL. Wakes the first waiting getter.
 */
WEFT_EXTERN int weft_queue_put_nowait(weft_queue_t *q, void *item);

/*
 * Put `item`, waiting while the queue is full (backpressure). Suspends only when full. Returns 0,
 * -ESHUTDOWN (the queue was shut down before or while waiting), -ECANCELED, -ETIMEDOUT (_dl),
 * -ENOMEM, -EPERM, -EINVAL. On any error the item was not put.
 */
WEFT_EXTERN int weft_queue_put(weft_queue_t *q, void *item);
WEFT_EXTERN int weft_queue_put_dl(weft_queue_t *q, void *item, int64_t deadline);

/*
 * Take the next item into *item (asyncio's get_nowait): never suspends. Returns 0, -EAGAIN
 * (empty, asyncio's QueueEmpty), -ESHUTDOWN (shut down and empty), -EINVAL. Wakes the first
 * waiting putter.
 */
WEFT_EXTERN int weft_queue_get_nowait(weft_queue_t *q, void **item);

/*
 * Take the next item into *item, waiting while the queue is empty. Suspends only when empty.
 * Returns 0, -ESHUTDOWN (shut down and empty, or shut down immediately), -ECANCELED, -ETIMEDOUT
 * (_dl), -EPERM, -EINVAL. On any error *item is untouched and no item was taken.
 */
WEFT_EXTERN int weft_queue_get(weft_queue_t *q, void **item);
WEFT_EXTERN int weft_queue_get_dl(weft_queue_t *q, void **item, int64_t deadline);

/*
 * Mark one item taken with get as processed. Returns 0, or -EINVAL when called more times than
 * items were put (asyncio's ValueError). When the count of unfinished items reaches 0, every
 * weft_queue_join() waiter is woken. Does not suspend.
 */
WEFT_EXTERN int weft_queue_task_done(weft_queue_t *q);

/*
 * Wait until every item put has been marked done with weft_queue_task_done() (returns at once
 * when none is unfinished). Returns 0, -ECANCELED, -ETIMEDOUT (_dl), -EPERM, -EINVAL. Suspends
 * when it waits.
 */
WEFT_EXTERN int weft_queue_join(weft_queue_t *q);
WEFT_EXTERN int weft_queue_join_dl(weft_queue_t *q, int64_t deadline);

/*
 * Shut the queue down (asyncio 3.13): puts fail with -ESHUTDOWN from now on, gets return the
 * remaining items and then -ESHUTDOWN; every blocked put and get is woken to see it. With
 * `immediate` the remaining items are discarded (each counts as done for join, which may wake
 * joiners) and gets fail at once. Returns 0 or -EINVAL. Does not suspend.
 */
WEFT_EXTERN int weft_queue_shutdown(weft_queue_t *q, bool immediate);

/*
 * weft_queue_shutdown(q, true) that first hands each discarded item to `drop(item, arg)` (e.g.
 * to free it), in queue order. `drop` must not call back into the queue.
 */
WEFT_EXTERN int weft_queue_shutdown_drop(weft_queue_t *q, void (*drop)(void *item, void *arg),
                                         void *arg);

/* The number of items in the queue. */
WEFT_EXTERN size_t weft_queue_qsize(const weft_queue_t *q);

/* The maximum size given at creation (0 = unbounded). */
WEFT_EXTERN size_t weft_queue_maxsize(const weft_queue_t *q);

/* True when the queue holds no item. */
WEFT_EXTERN bool weft_queue_empty(const weft_queue_t *q);

/* True when a bounded queue holds maxsize items (never for an unbounded one). */
WEFT_EXTERN bool weft_queue_full(const weft_queue_t *q);

/* True once weft_queue_shutdown() was called. */
WEFT_EXTERN bool weft_queue_is_shutdown(const weft_queue_t *q);

/* The number of items put and not yet marked done (asyncio's unfinished tasks). */
WEFT_EXTERN size_t weft_queue_unfinished(const weft_queue_t *q);

/* ============================================================================================
 * Thread pool and DNS
 * ========================================================================================== */

/* (section: thread) */

#include <netdb.h>
#include <sys/socket.h>

/* Declared here too: strict ISO C modes (-std=c11) hide it in <netdb.h>. */
struct addrinfo;

/*
 * One process-wide pool of threads runs blocking work for every loop (like libuv's). It starts
 * lazily, one thread at a time as work arrives, up to weft_pool_size() threads (asyncio's
 * default: min(32, cpus + 4)). Work comes in two classes with their own FIFO queues and caps so
 * that neither can take every thread: general work (weft_to_thread) may occupy size - 1 threads
 * (all of them when size is 1), DNS lookups (size + 1) / 2. Results come back to the waiting
 * task's loop through weft_call_soon_threadsafe(). Details: docs/threadpool.md.
 *
 * Ownership when the waiter leaves early. Cancelling the waiting task (or passing its deadline)
 * makes the call return -ECANCELED (or -ETIMEDOUT) at once. Work not started yet is removed and
 * never runs; work already running is not interrupted: it finishes on its thread and its result
 * is dropped. So with weft_to_thread() and weft_to_thread_dl(), `arg` and everything fn uses must
 * stay valid until fn returns even after the call returned -ECANCELED/-ETIMEDOUT, which the
 * caller cannot observe: use them only with static or otherwise long-lived data. With the _ex
 * variants the rule depends on the return value alone: when the call returns -ECANCELED or
 * -ETIMEDOUT (including when fn itself returned one of them), `drop(arg, result)` is called
 * exactly once and owns `arg` (result is fn's result, or -ECANCELED if fn never ran); with any
 * other return value drop is never called and `arg` is the caller's again. drop runs on the pool
 * thread that ran fn when fn finishes after the waiter left, and otherwise on the loop's thread
 * before the call returns; it must not block for long and may use only thread-safe weft calls.
 *
 * A loop must not be closed with weft_loop_close() while one of its tasks is still suspended in a
 * pool call: cancel such tasks and let them finish first (weft_run() does so).
 * The allocator (weft_set_allocator) must be thread-safe: pool threads free memory.
 * Not fork-safe: do not use the pool in a child forked while pool threads exist.
 */

/*
 * Run fn(arg) on a pool thread and suspend the calling task until it has run (asyncio.to_thread,
 * run_in_executor with the default executor). fn must not call weft functions other than
 * weft_call_soon_threadsafe(). Suspends.
 * Returns fn's result (>= 0 or a negative errno), -ECANCELED (task cancelled: see the ownership
 * rules above), -EPERM (outside a task), -EINVAL (fn NULL), -ENOMEM, -EAGAIN (no thread could be
 * started), -ESHUTDOWN (the process is exiting).
 */
WEFT_EXTERN int weft_to_thread(int (*fn)(void *arg), void *arg);

/* weft_to_thread() with a deadline (ns of weft_time): -ETIMEDOUT when it passes first. */
WEFT_EXTERN int weft_to_thread_dl(int (*fn)(void *arg), void *arg, int64_t deadline);

/*
 * weft_to_thread() with a clean-up callback for when the waiter leaves early: see the ownership
 * rules above (drop may be NULL). Suspends.
 */
WEFT_EXTERN int weft_to_thread_ex(int (*fn)(void *arg), void *arg,
                                  void (*drop)(void *arg, int result));

/* weft_to_thread_ex() with a deadline: -ETIMEDOUT when it passes first. */
WEFT_EXTERN int weft_to_thread_ex_dl(int (*fn)(void *arg), void *arg,
                                     void (*drop)(void *arg, int result), int64_t deadline);

/*
 * Resolve `host` and/or `service` with getaddrinfo() on the pool's DNS queue, suspending the
 * calling task meanwhile. host, service and hints (may be NULL; only ai_flags, ai_family,
 * ai_socktype and ai_protocol are read) are copied: the caller's buffers are borrowed only for
 * the call. Suspends.
 * Returns 0 with *res set (the caller frees it with freeaddrinfo()), or a negative error with
 * *res NULL. getaddrinfo's EAI_* codes map to: EAI_NONAME -> WEFT_EAI_NONAME, EAI_SERVICE ->
 * WEFT_EAI_SERVICE, EAI_FAIL -> WEFT_EAI_FAIL, EAI_AGAIN -> -EAGAIN, EAI_MEMORY -> -ENOMEM,
 * EAI_FAMILY -> -EAFNOSUPPORT, EAI_SOCKTYPE -> -ESOCKTNOSUPPORT, EAI_BADFLAGS -> -EINVAL,
 * EAI_NODATA -> -ENODATA, EAI_ADDRFAMILY -> -EADDRNOTAVAIL, EAI_OVERFLOW -> -EOVERFLOW,
 * EAI_SYSTEM -> -errno (-EIO if errno is 0), anything else -> WEFT_EAI_FAIL.
 * Also -ECANCELED (returned at once; a late result is freed by whoever sees it last), -EPERM
 * (outside a task), -EINVAL (res NULL), -ENOMEM, -EAGAIN, -ESHUTDOWN as weft_to_thread().
 */
WEFT_EXTERN int weft_getaddrinfo(const char *host, const char *service,
                                 const struct addrinfo *hints, struct addrinfo **res);

/* weft_getaddrinfo() with a deadline: -ETIMEDOUT when it passes first (the result is freed). */
WEFT_EXTERN int weft_getaddrinfo_dl(const char *host, const char *service,
                                    const struct addrinfo *hints, struct addrinfo **res,
                                    int64_t deadline);

/*
 * getnameinfo() on the pool's DNS queue, suspending the calling task meanwhile. `sa` is copied;
 * the lookup writes into a private buffer and the answer is copied into `host`/`serv` only when
 * the caller is still waiting (with buffers of hostlen/servlen bytes, either may be NULL/0 when
 * not wanted), so a cancelled caller's buffers are never touched. Suspends.
 * Returns 0, the EAI mapping of weft_getaddrinfo() (EAI_OVERFLOW -> -EOVERFLOW when a buffer is
 * too small), -ECANCELED, -EPERM, -EINVAL (sa NULL, salen 0 or larger than a sockaddr_storage),
 * -ENOMEM, -EAGAIN, -ESHUTDOWN.
 */
WEFT_EXTERN int weft_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                                 size_t hostlen, char *serv, size_t servlen, int flags);

/* weft_getnameinfo() with a deadline: -ETIMEDOUT when it passes first. */
WEFT_EXTERN int weft_getnameinfo_dl(const struct sockaddr *sa, socklen_t salen, char *host,
                                    size_t hostlen, char *serv, size_t servlen, int flags,
                                    int64_t deadline);

/*
 * Set the number of pool threads (1 to 1024; 0 restores the default min(32, cpus + 4)). Only
 * while no pool thread exists: before the first use or after weft_pool_shutdown(). The class
 * caps follow the size. Returns 0, -EINVAL, -EBUSY. Thread-safe.
 */
WEFT_EXTERN int weft_pool_set_size(unsigned threads);

/* The bound on pool threads (the default until set). Thread-safe. */
WEFT_EXTERN unsigned weft_pool_size(void);

/*
 * Stop the pool and join its threads: work already queued still runs and its results are
 * delivered or dropped as usual, so this blocks the calling thread until all of it has finished
 * (including fn's that outlived a cancelled waiter, and their drop callbacks). The pool starts
 * again lazily on the next use. weft_run() does not call it: work whose waiter left never touches
 * the loop again. At process exit idle threads are joined automatically and threads still running
 * work are not waited for. Returns 0, -EDEADLK (called from a pool thread), -EBUSY (called while
 * this thread's loop is running, e.g. from a task). Thread-safe.
 */
WEFT_EXTERN int weft_pool_shutdown(void);

/* ============================================================================================
 * Networking (sockets, streams, servers)
 * ========================================================================================== */

/* (section: networking) */

/*
 * Sockets, streams and servers on top of weft_wait_fd(). Every fd weft creates here is
 * non-blocking and close-on-exec; close it with weft_close() so that tasks waiting on it wake up
 * (with -EBADF) before the number can be reused. Byte counts are returned as ssize_t: >= 0 is a
 * count, < 0 a negative errno, as everywhere else. No call here is thread-safe.
 */
#include <sys/types.h>
#include <sys/socket.h>

/* ---- low-level socket calls (asyncio's loop.sock_*) ---- */

/*
 * Create a socket, always non-blocking and close-on-exec (SOCK_NONBLOCK | SOCK_CLOEXEC are added
 * to `type`). Returns the fd or a negative errno. Does not suspend.
 */
WEFT_EXTERN int weft_socket(int domain, int type, int protocol);

/* socketpair() with both ends non-blocking and close-on-exec. Returns 0 or a negative errno. */
WEFT_EXTERN int weft_socketpair(int domain, int type, int protocol, int sv[2]);

/*
 * Receive up to `n` bytes into `buf` (sock_recv / sock_recv_into): waits until at least one byte
 * or the end of the stream is there. Returns the count, 0 at end of stream (or for n == 0), or a
 * negative errno (-ECONNRESET, -EBADF if the fd was closed with weft_close() meanwhile, -ETIMEDOUT,
 * -ECANCELED: nothing was received then). Borrows `buf` until it returns. Suspends.
 */
WEFT_EXTERN ssize_t weft_sock_recv(int fd, void *buf, size_t n);
WEFT_EXTERN ssize_t weft_sock_recv_dl(int fd, void *buf, size_t n, int64_t deadline);

/*
 * Send up to `n` bytes: waits until the socket takes at least one, and returns how many it took
 * (a single send(); never raises SIGPIPE). Returns the count or a negative errno (-EPIPE,
 * -ECONNRESET, -EBADF, -ETIMEDOUT, -ECANCELED: nothing was sent then). Suspends.
 */
WEFT_EXTERN ssize_t weft_sock_send(int fd, const void *buf, size_t n);
WEFT_EXTERN ssize_t weft_sock_send_dl(int fd, const void *buf, size_t n, int64_t deadline);

/*
 * Send all `n` bytes (sock_sendall), waiting as often as needed. Returns 0 once everything went
 * out, or a negative errno; then `*sent` (if not NULL) tells how many bytes were sent before the
 * error, so a cancelled or timed-out call loses nothing (it is set on success too). Borrows `buf`
 * until it returns. Suspends.
 */
WEFT_EXTERN int weft_sock_sendall(int fd, const void *buf, size_t n, size_t *sent);
WEFT_EXTERN int weft_sock_sendall_dl(int fd, const void *buf, size_t n, size_t *sent,
                                     int64_t deadline);

/*
 * Accept a connection on a listening socket (sock_accept). The new fd is non-blocking and
 * close-on-exec; the caller owns it. `addr`/`addrlen` may be NULL (as for accept()).
 * Returns the fd or a negative errno (-EMFILE when out of fds: the connection stays queued,
 * -EBADF, -ETIMEDOUT, -ECANCELED). Suspends.
 */
WEFT_EXTERN int weft_sock_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
WEFT_EXTERN int weft_sock_accept_dl(int fd, struct sockaddr *addr, socklen_t *addrlen,
                                    int64_t deadline);

/*
 * Connect a socket (sock_connect) and wait until the connection is established. Returns 0 or a
 * negative errno (-ECONNREFUSED, -ENETUNREACH, -ETIMEDOUT, -ECANCELED, ...). After a failure,
 * timeout or cancellation the socket is in an unspecified state: close it. Suspends.
 */
WEFT_EXTERN int weft_sock_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
WEFT_EXTERN int weft_sock_connect_dl(int fd, const struct sockaddr *addr, socklen_t addrlen,
                                     int64_t deadline);

/*
 * Receive one datagram (sock_recvfrom): up to `n` bytes (the rest of a longer datagram is
 * dropped, as with recvfrom()), the sender's address in `from` / `*fromlen` (both may be NULL).
 * Returns the count or a negative errno. Suspends.
 */
WEFT_EXTERN ssize_t weft_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *from,
                                       socklen_t *fromlen);
WEFT_EXTERN ssize_t weft_sock_recvfrom_dl(int fd, void *buf, size_t n, struct sockaddr *from,
                                          socklen_t *fromlen, int64_t deadline);

/*
 * Send one datagram to `to` (sock_sendto; `to` NULL for a connected socket), waiting while the
 * socket buffer is full. Returns the count sent or a negative errno (-EMSGSIZE, ...). Suspends.
 */
WEFT_EXTERN ssize_t weft_sock_sendto(int fd, const void *buf, size_t n, const struct sockaddr *to,
                                     socklen_t tolen);
WEFT_EXTERN ssize_t weft_sock_sendto_dl(int fd, const void *buf, size_t n,
                                        const struct sockaddr *to, socklen_t tolen,
                                        int64_t deadline);

/* ---- addresses ---- */

/*
 * Fill `out` with the numeric address `host` ("127.0.0.1", "::1", "fe80::1%eth0") and `port`
 * (0-65535); `host` NULL gives the IPv4 wildcard. Names are not resolved here (see
 * weft_getaddrinfo). Returns 0 and sets *len, or -EINVAL. Does not suspend.
 */
WEFT_EXTERN int weft_addr_parse(const char *host, int port, struct sockaddr_storage *out,
                                socklen_t *len);

/*
 * Write `addr` as text into `buf` (cap bytes, always NUL-terminated when cap > 0):
 * "127.0.0.1:80", "[::1]:80", a Unix socket's path, or "@name" for an abstract one.
 * Returns the length it needed (like snprintf) or -EINVAL / -EAFNOSUPPORT.
 */
WEFT_EXTERN int weft_addr_format(const struct sockaddr *addr, socklen_t len, char *buf, size_t cap);

/* The port of an AF_INET / AF_INET6 address, or -EAFNOSUPPORT. */
WEFT_EXTERN int weft_addr_port(const struct sockaddr *addr);

/* ---- streams (asyncio's StreamReader and StreamWriter over one connection) ---- */

/*
 * A stream: one connection's reader and writer halves in one heap object, refcounted. The reader
 * pulls from the socket only when a read needs data: a read() until EAGAIN, then
 * weft_wait_fd(), so the socket is never read ahead of the reader by more than one read (the
 * buffer holds at most 2 x limit unless a read asks for more, so asyncio's pause above 2 x limit
 * holds). The writer writes straight to the socket while nothing is queued and queues only what
 * the socket does not take; a helper task then flushes the queue in the background.
 * Only one task may wait in a reader call at a time (-EBUSY otherwise, asyncio's RuntimeError);
 * any number may write and drain.
 */
typedef struct weft_stream weft_stream_t;

#define WEFT_STREAM_LIMIT      (64 * 1024) /* default reader limit (asyncio's 64 KiB) */
#define WEFT_STREAM_HIGH_WATER (64 * 1024) /* default writer high-water mark; low = high / 4 */

/* Options of a stream; zero-initialise and set what you need. */
struct weft_stream_opts {
    size_t limit;      /* reader limit for readuntil/readline; 0 = WEFT_STREAM_LIMIT */
    size_t write_high; /* writer high-water mark; 0 = WEFT_STREAM_HIGH_WATER (low = high / 4) */
};

/* One separator for weft_stream_readuntil_any(). */
struct weft_sep {
    const void *data;
    size_t len;
};

/*
 * Wrap a connected socket (or pipe) in a stream. The stream takes ownership of `fd` (made
 * non-blocking here) and closes it with weft_close(). Its writes never raise SIGPIPE: a pipe
 * whose reader is gone is -EPIPE, as a socket. `fd` -1 makes a stream with no fd whose
 * reader is fed by hand (weft_stream_feed / feed_eof / set_error), as asyncio's bare
 * StreamReader; its writer refuses writes with -ENOTCONN. `opts` may be NULL. The caller owns
 * one reference. Returns 0, -EINVAL, -ENOMEM, -EPERM (no loop on this thread). Does not suspend.
 */
WEFT_EXTERN int weft_stream_new(weft_stream_t **out, int fd, const struct weft_stream_opts *opts);

/* Take another reference. */
WEFT_EXTERN weft_stream_t *weft_stream_retain(weft_stream_t *s);

/*
 * Drop a reference. Dropping the last one closes the stream as weft_stream_close() does (queued
 * output is still flushed in the background) and frees it once nothing uses it.
 */
WEFT_EXTERN void weft_stream_release(weft_stream_t *s);

/* The stream's fd (for getpeername, setsockopt...), or -1 (none, or closed). Borrowed. */
WEFT_EXTERN int weft_stream_fd(const weft_stream_t *s);

/* -- reader -- */

/*
 * Read up to `n` bytes into `buf` (StreamReader.read(n)): waits until at least one byte is
 * buffered or the stream ends. Returns the count, 0 at end of stream (or for n == 0), or a
 * negative errno: the stream's error (see weft_stream_set_error; a connection reset gives
 * -ECONNRESET), -EBUSY (another task is waiting in a reader call), -ETIMEDOUT, -ECANCELED
 * (nothing consumed then). Not subject to the limit. Suspends.
 */
WEFT_EXTERN ssize_t weft_stream_read(weft_stream_t *s, void *buf, size_t n);
WEFT_EXTERN ssize_t weft_stream_read_dl(weft_stream_t *s, void *buf, size_t n, int64_t deadline);

/*
 * Read exactly `n` bytes into `buf` (readexactly). Returns 0 with all `n` bytes there, or
 * WEFT_EOF when the stream ended first (asyncio's IncompleteReadError): then the `*got` bytes
 * that were there are in `buf` and the reader's buffer is empty. Other errors (-ETIMEDOUT,
 * -ECANCELED, ...) consume nothing: the bytes stay buffered and *got is 0. `got` may be NULL.
 * Not subject to the limit. Suspends.
 */
WEFT_EXTERN int weft_stream_readexactly(weft_stream_t *s, void *buf, size_t n, size_t *got);
WEFT_EXTERN int weft_stream_readexactly_dl(weft_stream_t *s, void *buf, size_t n, size_t *got,
                                           int64_t deadline);

/*
 * Read up to and including the separator `sep` (readuntil). On success returns 0 and points
 * `*data` at the chunk (separator included) and `*len` at its length; the bytes live in the
 * stream's buffer and stay valid until the next reader call on `s` (read*, feed*) or its release.
 * Errors, as asyncio:
 * - WEFT_ELIMIT (LimitOverrunError): the separator is not within the limit (*len = how far the
 *   scan got, asyncio's `consumed`), or is found beyond it (*len = its offset). The data STAYS
 *   buffered; *data points at it so it can be inspected or read again.
 * - WEFT_EOF (IncompleteReadError): the stream ended without a separator; *data / *len give all
 *   that was buffered (partial, maybe empty), which is consumed.
 * - -EINVAL (empty separator), the stream's error, -EBUSY, -ETIMEDOUT, -ECANCELED: nothing is
 *   consumed and *len is 0.
 * Scanning resumes where it stopped, so a peer trickling bytes costs O(n) in all. Suspends.
 */
WEFT_EXTERN int weft_stream_readuntil(weft_stream_t *s, const void *sep, size_t seplen,
                                      const char **data, size_t *len);
WEFT_EXTERN int weft_stream_readuntil_dl(weft_stream_t *s, const void *sep, size_t seplen,
                                         const char **data, size_t *len, int64_t deadline);

/*
 * readuntil with several separators (asyncio 3.13's tuple): the chunk returned is the shortest
 * that ends with any of them. For the limit, the shortest separator counts. Returns as
 * weft_stream_readuntil(); -EINVAL also for nseps == 0.
 */
WEFT_EXTERN int weft_stream_readuntil_any(weft_stream_t *s, const struct weft_sep *seps,
                                          size_t nseps, const char **data, size_t *len);
WEFT_EXTERN int weft_stream_readuntil_any_dl(weft_stream_t *s, const struct weft_sep *seps,
                                             size_t nseps, const char **data, size_t *len,
                                             int64_t deadline);

/*
 * Read one line ending in '\n' (readline). Returns 0 with the line (newline included) in
 * *data / *len, valid as for readuntil. At end of stream the partial last line is returned, and
 * *len is 0 once everything was read. A line longer than the limit (the newline not counted)
 * gives WEFT_ELIMIT and, as in asyncio (its ValueError), is DISCARDED: through its newline if
 * that was buffered, else the whole buffer. Other errors as readuntil. Suspends.
 */
WEFT_EXTERN int weft_stream_readline(weft_stream_t *s, const char **data, size_t *len);
WEFT_EXTERN int weft_stream_readline_dl(weft_stream_t *s, const char **data, size_t *len,
                                        int64_t deadline);

/*
 * Read everything up to the end of the stream (StreamReader.read() with no size): returns 0 with
 * all of it in *data / *len (valid as for readuntil; the limit does not apply, the buffer grows).
 * On an error or timeout nothing is lost: what arrived stays buffered. Suspends.
 */
WEFT_EXTERN int weft_stream_read_all(weft_stream_t *s, const char **data, size_t *len);
WEFT_EXTERN int weft_stream_read_all_dl(weft_stream_t *s, const char **data, size_t *len,
                                        int64_t deadline);

/*
 * Wait until at least `min` bytes are buffered, then point *data / *len at ALL the buffered bytes
 * without consuming them (a zero-copy view for incremental parsers: look, then
 * weft_stream_consume() what was parsed). The view stays valid until the next reader call on `s`
 * (consume excepted) or its release. `min` is not bounded by the limit: the caller bounds it.
 * Returns 0, WEFT_EOF when the stream ended with fewer than `min` bytes (the view then holds
 * what there is), the stream's error, -EBUSY, -ETIMEDOUT, -ECANCELED (nothing consumed; *len is
 * 0), -EINVAL. Suspends (only while fewer than `min` bytes are buffered).
 */
WEFT_EXTERN int weft_stream_peek(weft_stream_t *s, size_t min, const char **data, size_t *len);
WEFT_EXTERN int weft_stream_peek_dl(weft_stream_t *s, size_t min, const char **data, size_t *len,
                                    int64_t deadline);

/* Drop the first `n` buffered bytes (after weft_stream_peek). Returns 0, or -EINVAL when fewer
 * than `n` are buffered. Does not suspend. */
WEFT_EXTERN int weft_stream_consume(weft_stream_t *s, size_t n);

/*
 * The bytes buffered in the reader (not consumed), and with `data` non-NULL a pointer to them
 * (valid as for readuntil). Does not read from the fd.
 */
WEFT_EXTERN size_t weft_stream_buffered(const weft_stream_t *s, const char **data);

/* True when the end of stream was seen and the buffer is empty (StreamReader.at_eof). */
WEFT_EXTERN bool weft_stream_at_eof(const weft_stream_t *s);

/* The reader's error (StreamReader.exception()), or 0. */
WEFT_EXTERN int weft_stream_error(const weft_stream_t *s);

/*
 * Append bytes to the reader's buffer and wake a waiting reader (feed_data). Meant for streams
 * with no fd, and for tests. Returns 0, -EINVAL after feed_eof, -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_stream_feed(weft_stream_t *s, const void *data, size_t n);

/* Mark the end of the fed data and wake a waiting reader (feed_eof). */
WEFT_EXTERN void weft_stream_feed_eof(weft_stream_t *s);

/*
 * Make every reader call fail with `err` (< 0) from now on, and wake a waiting one with it
 * (set_exception); drain() reports it too. Returns 0 or -EINVAL.
 */
WEFT_EXTERN int weft_stream_set_error(weft_stream_t *s, int err);

/* -- writer -- */

/*
 * Queue `n` bytes for sending (StreamWriter.write): when nothing is queued they go straight to
 * the socket, and only what it does not take is copied and sent later by a background flush. Never
 * waits: call weft_stream_drain() to apply backpressure. Returns 0, or a negative errno instead of
 * asyncio's silent drop: the connection's error once it failed (-EPIPE, -ECONNRESET),
 * -ESHUTDOWN after write_eof, -EPIPE after close, -ENOTCONN (no fd), -ENOMEM. Borrows `data`
 * only during the call. Does not suspend.
 */
WEFT_EXTERN int weft_stream_write(weft_stream_t *s, const void *data, size_t n);

/*
 * Wait until the write queue is at or below the low-water mark if it went above the high-water
 * mark (StreamWriter.drain). Any number of tasks may drain at once; all resume together.
 * Returns 0, the reader's error if it has one, the connection's error when the peer is gone
 * (-EPIPE, -ECONNRESET; also when it goes away during the wait), -ECONNRESET once the stream is
 * closed, -ETIMEDOUT, -ECANCELED. Suspends (only while above the mark, or once after close).
 */
WEFT_EXTERN int weft_stream_drain(weft_stream_t *s);
WEFT_EXTERN int weft_stream_drain_dl(weft_stream_t *s, int64_t deadline);

/*
 * Set the writer's marks (set_write_buffer_limits): `high` < 0 means the default (64 KiB, or
 * 4 x low when low >= 0), `low` < 0 means high / 4. Returns 0, or -EINVAL unless high >= low.
 */
WEFT_EXTERN int weft_stream_set_write_limits(weft_stream_t *s, ssize_t high, ssize_t low);

/* Bytes queued in the writer and not yet taken by the socket (get_write_buffer_size). */
WEFT_EXTERN size_t weft_stream_write_buffered(const weft_stream_t *s);

/*
 * Send `count` bytes of the file `fd` on the stream with sendfile(2) (zero copy: the kernel moves
 * them from the page cache to the socket). They start at `*offset`, which is advanced by what was
 * sent, also when the call fails midway (the file position is left alone); `offset` NULL reads
 * at the file position and advances it. Output already queued on the stream is sent first (the
 * call waits for the flush); writes made while it runs are queued behind the file. Waits for
 * socket space as needed. Returns the count sent (less than `count` only at the end of the
 * file), or a negative errno: the connection's error (-EPIPE, -ECONNRESET), the stream refusing
 * writes as weft_stream_write() does, -EBUSY (another sendfile runs on this stream),
 * -EOPNOTSUPP (a stream with a transport, e.g. TLS: the bytes must pass through it), sendfile's
 * own errors (-EINVAL, -ESPIPE: `fd` cannot be sent this way), -ETIMEDOUT, -ECANCELED (then
 * `*offset` tells how far it got). Pages not in the cache are read by the kernel while the loop
 * waits in the call, as nginx's sendfile does. Borrows `fd`. Suspends.
 */
WEFT_EXTERN ssize_t weft_stream_sendfile(weft_stream_t *s, int fd, int64_t *offset, size_t count);
WEFT_EXTERN ssize_t weft_stream_sendfile_dl(weft_stream_t *s, int fd, int64_t *offset,
                                            size_t count, int64_t deadline);

/*
 * Close the write direction once the queue is flushed (write_eof: shutdown(SHUT_WR)); the reader
 * keeps working. On a pipe, which has no half-close, the stream is closed (weft_stream_close).
 * Returns 0 (also when already done), -ENOTCONN. Does not suspend.
 */
WEFT_EXTERN int weft_stream_write_eof(weft_stream_t *s);

/*
 * Close the stream (StreamWriter.close): stop reading (a waiting reader sees end of stream;
 * buffered data stays readable), flush the write queue in the background, then close the fd.
 * Idempotent. Does not suspend.
 */
WEFT_EXTERN void weft_stream_close(weft_stream_t *s);

/* Close at once, dropping the write queue (transport.abort). Does not suspend. */
WEFT_EXTERN void weft_stream_abort(weft_stream_t *s);

/* True once weft_stream_close() or weft_stream_abort() was called (is_closing). */
WEFT_EXTERN bool weft_stream_is_closing(const weft_stream_t *s);

/*
 * Wait until the stream is closed and its fd released (wait_closed). Returns 0, or the error
 * that broke the connection (-ECONNRESET, -EPIPE, ...), -ETIMEDOUT, -ECANCELED. Suspends.
 */
WEFT_EXTERN int weft_stream_wait_closed(weft_stream_t *s);
WEFT_EXTERN int weft_stream_wait_closed_dl(weft_stream_t *s, int64_t deadline);

/* ---- connecting (asyncio's open_connection / open_unix_connection) ---- */

/* Options of weft_stream_connect(); zero-initialise and set what you need. */
struct weft_connect_opts {
    struct weft_stream_opts stream; /* limit and write high-water of the new stream */
    int family;                     /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    double happy_eyeballs_delay;    /* > 0: RFC 8305 staggered attempts this many seconds
                                     * apart (0.25 recommended); 0: one address after another */
    int interleave;                 /* addresses of the first family before alternating
                                     * families; 0 = 1 with Happy Eyeballs, else no reordering */
    const char *local_host;         /* numeric address to bind before connecting, or NULL */
    int local_port;                 /* with local_host; 0 = any */
    char *errbuf;                   /* if not NULL: receives a description of what failed, */
    size_t errlen;                  /* e.g. "127.0.0.1:9: connection refused; [::1]:9: ..." */
};

/*
 * Open a TCP connection (asyncio.open_connection): resolve `host` (a numeric address resolves at
 * once, a name through weft_getaddrinfo), then try each address in turn, or with Happy Eyeballs
 * (opts->happy_eyeballs_delay > 0) start a new attempt every delay or as soon as one fails; the
 * first to connect wins and the others are cancelled and closed. TCP_NODELAY is set as asyncio
 * does. `opts` may be NULL. On success *out is a stream the caller owns.
 * Returns 0, or: the resolver's error (WEFT_EAI_NONAME, ...), the first attempt's error when all
 * failed (with every attempt described in opts->errbuf), -EINVAL (bad port or host NULL),
 * -ETIMEDOUT, -ECANCELED (nothing is left open then). Suspends.
 */
WEFT_EXTERN int weft_stream_connect(weft_stream_t **out, const char *host, int port,
                                    const struct weft_connect_opts *opts);
WEFT_EXTERN int weft_stream_connect_dl(weft_stream_t **out, const char *host, int port,
                                       const struct weft_connect_opts *opts, int64_t deadline);

/*
 * weft_stream_connect() to addresses already resolved (a list from weft_getaddrinfo() or built by
 * hand; SOCK_STREAM families AF_INET / AF_INET6), tried in order or raced with Happy Eyeballs as
 * `opts` says. Borrows `addrs`. Returns as weft_stream_connect(). Suspends.
 */
struct addrinfo;
WEFT_EXTERN int weft_stream_connect_addrinfo(weft_stream_t **out, const struct addrinfo *addrs,
                                             const struct weft_connect_opts *opts);
WEFT_EXTERN int weft_stream_connect_addrinfo_dl(weft_stream_t **out, const struct addrinfo *addrs,
                                                const struct weft_connect_opts *opts,
                                                int64_t deadline);

/*
 * Connect to a Unix stream socket at `path` ("@name" for the abstract namespace)
 * (open_unix_connection). Returns 0, -ENOENT, -ECONNREFUSED, -EAGAIN (listener's backlog full),
 * -ENAMETOOLONG, -ETIMEDOUT, -ECANCELED. Suspends.
 */
WEFT_EXTERN int weft_stream_connect_unix(weft_stream_t **out, const char *path,
                                         const struct weft_stream_opts *opts);
WEFT_EXTERN int weft_stream_connect_unix_dl(weft_stream_t **out, const char *path,
                                            const struct weft_stream_opts *opts, int64_t deadline);

/* ---- servers (asyncio's start_server / start_unix_server and Server) ---- */

typedef struct weft_server weft_server_t;

/*
 * A connection handler: runs in a task of its own for each accepted connection. It borrows
 * `stream` (weft_stream_retain() it to keep it longer); when it returns, the server closes the
 * stream (queued output is still flushed). A negative result other than -ECANCELED is reported
 * through the loop's error handler, as asyncio logs an exception from client_connected_cb.
 */
typedef int (*weft_stream_handler_fn)(weft_stream_t *stream, void *arg);

/* Options of a server; zero-initialise and set what you need. */
struct weft_server_opts {
    struct weft_stream_opts stream; /* limit and write high-water of each connection's stream */
    int family;                     /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    int backlog;                    /* listen() backlog; 0 = 100 (asyncio's default) */
    bool reuse_port;                /* set SO_REUSEPORT (several servers on one port) */
    bool no_reuse_address;          /* do not set SO_REUSEADDR (set by default, as on Unix) */
    bool keep_socket_file;     /* Unix: leave the socket file on close (cleanup_socket=False) */
    size_t stack_size;         /* stack of each connection task; 0 = the loop's default */
    int stack_mode;            /* enum weft_stack_mode of each connection task: COMPACT serves
                                * many idle connections in a few hundred bytes each */
    double accept_retry_delay; /* pause before accepting again after EMFILE, ENFILE,
                                * ENOBUFS or ENOMEM; 0 = 1 s (asyncio's) */
    void (*arg_free)(void *arg); /* if set: called with the handler's `arg` once the server is
                                  * freed (released and its last handler returned); only after
                                  * a successful start (on failure `arg` stays the caller's) */
    size_t max_clients;        /* 0 = no limit; with that many handlers running the server
                                * stops accepting: new connections wait in the backlog */
};

/*
 * Listen on every address `host` resolves to (asyncio.start_server; host NULL = all interfaces,
 * IPv4 and IPv6), port `port` (0 = a free one, see weft_server_port), and serve at once: each
 * connection gets a task running `handler(stream, arg)`. IPv6 sockets are IPV6_V6ONLY so that
 * both families can share a port. On failure nothing stays open. `opts` may be NULL. The caller
 * owns *out (weft_server_release).
 * Returns 0, the resolver's error, the bind/listen error (-EADDRINUSE, ...), -EINVAL, -ENOMEM,
 * -ECANCELED. Suspends only to resolve a name.
 */
WEFT_EXTERN int weft_server_start(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                                  const char *host, int port, const struct weft_server_opts *opts);

/*
 * Listen on the Unix socket `path` ("@name": abstract namespace) (start_unix_server). A stale
 * socket file at `path` is removed first; on close the file is removed again unless
 * opts->keep_socket_file (3.13's cleanup_socket). Returns as weft_server_start(). Does not
 * suspend.
 */
WEFT_EXTERN int weft_server_start_unix(weft_server_t **out, weft_stream_handler_fn handler,
                                       void *arg, const char *path,
                                       const struct weft_server_opts *opts);

/*
 * Serve on an already listening socket `fd` (start_server(sock=...)); the server takes it.
 * Returns 0, -EINVAL (not a listening stream socket), -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_server_start_fd(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                                     int fd, const struct weft_server_opts *opts);

/*
 * Stop listening (Server.close): the listening sockets are closed at once; connections already
 * accepted keep running. Idempotent. Does not suspend.
 */
WEFT_EXTERN void weft_server_close(weft_server_t *srv);

/* Close every accepted connection's stream (close_clients, 3.13); abort_clients drops their
 * queued output. Handlers see end of stream in their reads. */
WEFT_EXTERN void weft_server_close_clients(weft_server_t *srv);
WEFT_EXTERN void weft_server_abort_clients(weft_server_t *srv);

/*
 * Wait until the server is closed AND every connection handler has returned (wait_closed, as
 * fixed in 3.12.1). Returns 0, -ETIMEDOUT, -ECANCELED. Suspends.
 */
WEFT_EXTERN int weft_server_wait_closed(weft_server_t *srv);
WEFT_EXTERN int weft_server_wait_closed_dl(weft_server_t *srv, int64_t deadline);

/*
 * Serve until the server is closed (serve_forever). Returns 0 once weft_server_close() was
 * called (asyncio raises CancelledError there); if the calling task is cancelled, the server is
 * closed, its connections are awaited (wait_closed) and -ECANCELED is returned. -EBUSY if a task
 * already serves it forever, -EINVAL if it is closed. Suspends.
 */
WEFT_EXTERN int weft_server_serve_forever(weft_server_t *srv);

/* True while the server listens (is_serving). */
WEFT_EXTERN bool weft_server_is_serving(const weft_server_t *srv);

/*
 * Copy up to `cap` listening fds into `fds` (Server.sockets; borrowed, -1 once closed) and
 * return how many there are.
 */
WEFT_EXTERN size_t weft_server_sockets(const weft_server_t *srv, int *fds, size_t cap);

/* The local port of the first listening socket (handy after port 0), or a negative errno. */
WEFT_EXTERN int weft_server_port(const weft_server_t *srv);

/* The number of connection handlers running now. */
WEFT_EXTERN size_t weft_server_connections(const weft_server_t *srv);

/*
 * Drop the caller's reference: closes the server if it is not closed yet. The memory goes once
 * the last connection handler has returned. Does not suspend.
 */
WEFT_EXTERN void weft_server_release(weft_server_t *srv);

/* ============================================================================================
 * Signals and subprocesses
 * ========================================================================================== */

/* (section: signals) */

/*
 * A signal handler run by the loop (asyncio's add_signal_handler): `sig` is the signal that came,
 * `arg` what was registered. It runs as an ordinary loop callback, never inside the signal handler,
 * so it may call any weft function that does not suspend (cancel a task, stop the loop, ...).
 * Deliveries that come before it runs are merged into one call.
 */
typedef void (*weft_signal_fn)(int sig, void *arg);

/*
 * Run `fn(sig, arg)` on `loop` each time `sig` is delivered to the process (any thread). Adding a
 * signal that already has a handler on this loop replaces it. Several loops (threads) may handle
 * the same signal: each runs its own handler. The process's disposition for `sig` is saved when
 * the first loop adds it and restored when the last one removes it (or closes). weft's own
 * sigaction handler only sets a flag and wakes the loop (an eventfd write); for SIGCHLD it also
 * calls the handler installed before it. Returns 0, -EINVAL (no such signal, or SIGKILL, SIGSTOP,
 * or a fault signal: SIGSEGV, SIGBUS, SIGFPE, SIGILL; fn NULL), -ENOMEM, -EBUSY (more than 64
 * loops handle signals at once). Must be called on the loop's thread. Does not suspend.
 */
WEFT_EXTERN int weft_signal_add(weft_loop_t *loop, int sig, weft_signal_fn fn, void *arg);

/*
 * Remove the handler of `sig` on `loop` (remove_signal_handler). Tasks waiting for the signal
 * keep waiting. Returns 1 if there was one, 0 if not, -EINVAL. Does not suspend.
 */
WEFT_EXTERN int weft_signal_remove(weft_loop_t *loop, int sig);

/*
 * Wait until `sig` is delivered (a task's form of a signal handler). While tasks wait for it the
 * loop catches `sig` as weft_signal_add() does (the disposition is restored when the last waiter
 * leaves, unless a handler was added). Every waiter wakes at each delivery. Returns `sig`,
 * -ETIMEDOUT, -ECANCELED, -EINVAL (as weft_signal_add), -ENOMEM, -EPERM. Suspends.
 */
WEFT_EXTERN int weft_signal_wait(int sig);
WEFT_EXTERN int weft_signal_wait_dl(int sig, int64_t deadline);

/* (section: subprocesses) */

/*
 * A child process (asyncio's Process). Children are started without copying the parent's memory
 * (the cost does not grow with the parent's heap): from a task, with an asynchronous exec (a
 * clone sharing the parent's memory; the task waits for the exec, the loop runs on), else with
 * posix_spawn (vfork-style), with every fd above 2 closed in the child, and
 * watched through a pidfd in the loop and reaped with waitid(P_PIDFD): weft never installs a
 * SIGCHLD handler and never reaps a child it did not start. On kernels without pidfds (before
 * 5.3, ENOSYS) a SIGCHLD handler chained to the one installed before it reaps with waitpid(pid),
 * never waitpid(-1). Use a process on the loop that started it; after that loop closed it can
 * only be queried and released.
 */
typedef struct weft_proc weft_proc_t;

/* What each of the child's stdin, stdout and stderr is connected to. */
enum weft_stdio {
    WEFT_STDIO_INHERIT = 0, /* the parent's own fd 0, 1 or 2 */
    WEFT_STDIO_DEVNULL = 1, /* /dev/null */
    WEFT_STDIO_PIPE = 2,    /* a pipe to the parent: a weft stream (weft_proc_stdin, ...) */
    WEFT_STDIO_FD = 3,      /* an fd of the caller's (stdin_fd, ...), borrowed for the call */
    WEFT_STDIO_STDOUT = 4,  /* stderr only: the same as stdout (asyncio's STDOUT) */
};

/* Options of weft_proc_spawn(); zero-initialise and set what you need. */
struct weft_proc_opts {
    int stdin_mode;  /* enum weft_stdio; 0 = inherit */
    int stdout_mode;
    int stderr_mode;
    int stdin_fd;    /* with WEFT_STDIO_FD */
    int stdout_fd;
    int stderr_fd;
    const char *cwd;   /* the child's working directory, or NULL */
    char *const *env;  /* the child's environment (NULL-terminated "K=V"), or NULL = ours */
    bool new_pgroup;   /* the child leads a new process group (setpgid(0, 0)) */
    bool new_session;  /* the child leads a new session (setsid(); implies a new group) */
    struct weft_stream_opts stream; /* limit and write high-water of the pipes' streams */
    double kill_grace; /* weft_proc_run: seconds from SIGTERM to SIGKILL; 0 = 5 s; < 0: none */
};

/*
 * Start `argv[0]` with arguments `argv` (NULL-terminated; no shell). A name without '/' is
 * searched in PATH. `opts` may be NULL (all three inherited). The child starts with an empty
 * signal mask and SIGPIPE at its default action; caught signals are reset to their defaults
 * (posix_spawn). On success *out is a process the caller owns (weft_proc_release).
 * Returns 0 or: -ENOENT (no such program), -EACCES (not executable), -ENOEXEC, -ENAMETOOLONG,
 * other errors of the exec or of a file action (a bad cwd: -ENOENT / -ENOTDIR), -EINVAL (argv
 * empty, a bad mode or fd), -EMFILE, -ENOMEM, -EAGAIN, -EPERM (no loop on this thread), and in a
 * task -ECANCELED (the child, if started, is killed and reaped before the call returns). The
 * failure is reported here, never as a child exiting with 127.
 * Suspends in a task until the child exec'd (other tasks run meanwhile, and spawn their own
 * children at the same time); argv, env and cwd must stay valid until it returns. Outside a task
 * (a loop callback) it does not suspend: the thread is blocked until the exec (posix_spawn).
 */
WEFT_EXTERN int weft_proc_spawn(weft_proc_t **out, char *const argv[],
                                const struct weft_proc_opts *opts);

/* weft_proc_spawn() of `/bin/sh -c cmd` (create_subprocess_shell). Returns as weft_proc_spawn. */
WEFT_EXTERN int weft_proc_spawn_shell(weft_proc_t **out, const char *cmd,
                                      const struct weft_proc_opts *opts);

/* The child's process id. */
WEFT_EXTERN int weft_proc_pid(const weft_proc_t *p);

/*
 * The child's stdin (write to it; weft_stream_close() it to send end of file), stdout and stderr
 * (read them) when they are pipes, else NULL. Borrowed: the process owns them and releases them
 * in weft_proc_release() (weft_stream_retain() keeps one longer). Every stream call works on
 * them; a write to the stdin of a child that is gone gives -EPIPE, never SIGPIPE.
 */
WEFT_EXTERN weft_stream_t *weft_proc_stdin(const weft_proc_t *p);
WEFT_EXTERN weft_stream_t *weft_proc_stdout(const weft_proc_t *p);
WEFT_EXTERN weft_stream_t *weft_proc_stderr(const weft_proc_t *p);

/*
 * Whether the child has exited (and was reaped), with its return code in *returncode (may be
 * NULL): the exit status (0-255), or -N when signal N killed it (asyncio's returncode). A child
 * reaped by someone else (SIGCHLD ignored, waitpid(-1) in the program) reports 255.
 */
WEFT_EXTERN bool weft_proc_returncode(const weft_proc_t *p, int *returncode);

/*
 * Wait for the child to exit and reap it (Process.wait); any number of tasks may wait. Returns 0
 * with the return code in *returncode (may be NULL), or -ETIMEDOUT, -ECANCELED (the child keeps
 * running, as in asyncio), -EINVAL, -EPERM. Waiting for a child that writes to a pipe nobody
 * reads can wait forever: read its output, or use weft_proc_communicate(). Suspends.
 */
WEFT_EXTERN int weft_proc_wait(weft_proc_t *p, int *returncode);
WEFT_EXTERN int weft_proc_wait_dl(weft_proc_t *p, int *returncode, int64_t deadline);

/*
 * Send signal `sig` to the child (send_signal; terminate = SIGTERM, kill = SIGKILL). Through the
 * pidfd, so a child already exited gets nothing and no other process can receive it, and it
 * returns 0 then. Returns 0, -EINVAL (bad signal), -EPERM. Does not suspend.
 */
WEFT_EXTERN int weft_proc_send_signal(weft_proc_t *p, int sig);
WEFT_EXTERN int weft_proc_terminate(weft_proc_t *p);
WEFT_EXTERN int weft_proc_kill(weft_proc_t *p);

/*
 * Drop the caller's reference. The pipes' streams are released (closed once their queued output
 * is flushed). A child still running keeps running and is reaped in the background when it
 * exits (no zombie; a small weft thread waits for such orphans). Does not suspend.
 */
WEFT_EXTERN void weft_proc_release(weft_proc_t *p);

/*
 * Input and results of weft_proc_communicate(). Zero-initialise, set the inputs, and free the
 * outputs with weft_proc_io_free().
 */
struct weft_proc_io {
    const void *input;    /* bytes for stdin (borrowed for the call), or NULL */
    size_t input_len;
    size_t out_limit;     /* the most bytes of stdout to keep; 0 = no limit */
    size_t err_limit;     /* the same for stderr */
    char *out;            /* result: stdout (NUL-terminated for convenience), or NULL */
    size_t out_len;
    char *err;            /* result: stderr, or NULL */
    size_t err_len;
    int returncode;       /* result: as weft_proc_returncode() */
};

/*
 * Feed `io->input` to stdin and close it, read stdout and stderr to their end, all at once (so a
 * child writing 100 MB while reading its input never deadlocks), then wait for the exit
 * (Process.communicate). Pipes that are not there are skipped; a stdin pipe without input is just
 * closed. A child that stops reading its input (-EPIPE) is not an error. Returns 0 with the
 * results in `io`, or: WEFT_ELIMIT (an output passed its limit: what fit is kept, the child is left
 * running with its pipe unread: kill it), -ETIMEDOUT, -ECANCELED (the child keeps running: the
 * output read so far stays in `io`), a stream error, -EINVAL, -ENOMEM, -EPERM. Call it once per
 * process. Suspends.
 */
WEFT_EXTERN int weft_proc_communicate(weft_proc_t *p, struct weft_proc_io *io);
WEFT_EXTERN int weft_proc_communicate_dl(weft_proc_t *p, struct weft_proc_io *io,
                                         int64_t deadline);

/* Free the outputs of weft_proc_communicate() (io->out, io->err) and set them to NULL. */
WEFT_EXTERN void weft_proc_io_free(struct weft_proc_io *io);

/*
 * Run a command to completion (Trio's run_process): spawn it, communicate (`io` may be NULL: just
 * wait), and if that fails (cancellation, deadline, WEFT_ELIMIT) stop the child: SIGTERM to its
 * process group (to the child alone unless opts->new_pgroup or new_session), up to
 * opts->kill_grace seconds for it to exit, SIGKILL to the group, then reap it: the child never
 * outlives the call. Returns 0 with io->returncode set, the spawn error, or communicate's error
 * (-ECANCELED, -ETIMEDOUT, WEFT_ELIMIT: the child was stopped). Suspends.
 */
WEFT_EXTERN int weft_proc_run(char *const argv[], const struct weft_proc_opts *opts,
                              struct weft_proc_io *io);
WEFT_EXTERN int weft_proc_run_dl(char *const argv[], const struct weft_proc_opts *opts,
                                 struct weft_proc_io *io, int64_t deadline);

/* ============================================================================================
 * Files
 * ========================================================================================== */

/* (section: files) */

/*
 * File calls that suspend only the calling task (docs/files.md). Each runs on the loop's engine:
 * the thread pool, or the loop's io_uring ring where the kernel allows it (probed once per
 * process; EPERM, ENOSYS, ENOMEM or a missing opcode mean the pool, quietly). The choice:
 * weft_loop_opts.file_engine, else the environment variable WEFT_FILE_ENGINE=pool|uring, else
 * io_uring when usable. Errors are the kernel's, as a negative errno. Every call here suspends
 * (it is a cancellation point: a cancel already pending returns -ECANCELED before anything is
 * done) and must be made from a task (-EPERM otherwise).
 *
 * Buffers: a buffer (or iovec array) passed to a call is borrowed until the call returns and is
 * never touched by the kernel or a pool thread afterwards. A call cancelled or timed out while
 * its operation runs returns -ECANCELED / -ETIMEDOUT only once the operation is undone or can no
 * longer touch the buffer: io_uring cancels it and waits for its completion; the pool waits for
 * the thread (regular files and block devices, whose I/O always ends) or, for fds that may block
 * forever (pipes, FIFOs, sockets, terminals), lets the thread finish alone on a private copy of
 * the buffer. When the operation completed anyway, its result is returned and a cancel stays
 * pending for the task's next suspension point, so no byte read or written goes unreported.
 * Counts are capped at 0x7ffff000 bytes per call (Linux's limit), so results fit an int.
 * Offsets are 64-bit.
 */
#include <sys/stat.h>
#include <sys/uio.h>

/* The engine the current loop's file calls use (WEFT_FILE_POOL or WEFT_FILE_URING; the first
 * call on a loop decides, making its ring), or -EPERM without a loop. Does not suspend. */
WEFT_EXTERN int weft_file_engine(void);

/* open(2): O_CLOEXEC is always added. Returns the fd, or a negative errno. If the call returns
 * -ECANCELED or -ETIMEDOUT, no fd is left open. */
WEFT_EXTERN int weft_file_open(const char *path, int flags, mode_t mode);

/* close(2): of a file or directory on the engine (a close may flush, e.g. on NFS); of anything
 * else (pipe, FIFO, socket, terminal) at once with weft_close(), which first wakes tasks waiting
 * on it with weft_wait_fd() (-EBADF). The fd is closed whatever the result (also -ECANCELED). */
WEFT_EXTERN int weft_file_close(int fd);

/*
 * Read up to `n` bytes into `buf` at the file position (read) or at `offset` (pread, which leaves
 * the position alone). Returns the count (0 at end of file), or a negative errno; -ETIMEDOUT when
 * `deadline` (ns of weft_time()) passes first, -ECANCELED.
 */
WEFT_EXTERN ssize_t weft_file_read(int fd, void *buf, size_t n);
WEFT_EXTERN ssize_t weft_file_read_dl(int fd, void *buf, size_t n, int64_t deadline);
WEFT_EXTERN ssize_t weft_file_pread(int fd, void *buf, size_t n, int64_t offset);
WEFT_EXTERN ssize_t weft_file_pread_dl(int fd, void *buf, size_t n, int64_t offset,
                                       int64_t deadline);

/* Write up to `n` bytes from `buf` (one write(2) / pwrite(2): the count may be short). Returns
 * the count or a negative errno, as the reads. */
WEFT_EXTERN ssize_t weft_file_write(int fd, const void *buf, size_t n);
WEFT_EXTERN ssize_t weft_file_write_dl(int fd, const void *buf, size_t n, int64_t deadline);
WEFT_EXTERN ssize_t weft_file_pwrite(int fd, const void *buf, size_t n, int64_t offset);
WEFT_EXTERN ssize_t weft_file_pwrite_dl(int fd, const void *buf, size_t n, int64_t offset,
                                        int64_t deadline);

/* preadv(2) / pwritev(2): `offset` -1 means the file position (readv / writev). At most 1024
 * buffers (-EINVAL beyond). Returns the count or a negative errno. */
WEFT_EXTERN ssize_t weft_file_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset);
WEFT_EXTERN ssize_t weft_file_readv_dl(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                                       int64_t deadline);
WEFT_EXTERN ssize_t weft_file_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset);
WEFT_EXTERN ssize_t weft_file_writev_dl(int fd, const struct iovec *iov, int iovcnt,
                                        int64_t offset, int64_t deadline);

/* fsync(2), fdatasync(2), ftruncate(2). Return 0 or a negative errno. */
WEFT_EXTERN int weft_file_fsync(int fd);
WEFT_EXTERN int weft_file_fdatasync(int fd);
WEFT_EXTERN int weft_file_ftruncate(int fd, int64_t length);

/* fstat(2) / stat(2) (follows symlinks). `*st` is written only on success. */
WEFT_EXTERN int weft_file_fstat(int fd, struct stat *st);
WEFT_EXTERN int weft_file_stat(const char *path, struct stat *st);

/* rename(2), unlink(2), mkdir(2), rmdir(2). Return 0 or a negative errno. */
WEFT_EXTERN int weft_file_rename(const char *from, const char *to);
WEFT_EXTERN int weft_file_unlink(const char *path);
WEFT_EXTERN int weft_file_mkdir(const char *path, mode_t mode);
WEFT_EXTERN int weft_file_rmdir(const char *path);

/*
 * List the directory `path` (without "." and ".."), sorted by name (strcmp). On success *names
 * points at an array of *count names, NULL-terminated, in one block the caller frees with
 * weft_file_free(). Runs on the pool (io_uring has no getdents). Returns 0 or a negative errno.
 */
WEFT_EXTERN int weft_file_listdir(const char *path, char ***names, size_t *count);

/*
 * Read the whole file `path` into a new buffer (NUL-terminated, not counted in *len) that the
 * caller frees with weft_file_free(). Returns 0, -EFBIG if the file holds more than `limit`
 * bytes (nothing is returned then), or a negative errno. Suspends.
 */
WEFT_EXTERN int weft_file_read_all(const char *path, size_t limit, char **data, size_t *len);

/*
 * Replace `path` with `len` bytes of `data` atomically: they are written to a temporary file in
 * the same directory ("<path>.tmp-XXXXXX"), fsync'ed, renamed over `path`, and the directory is
 * fsync'ed. A crash (or an error, or a cancel) at any point leaves either the old content or the
 * new, never a mix; on failure the temporary file is removed. `mode` is the new file's mode.
 * Returns 0 or a negative errno. Suspends.
 */
WEFT_EXTERN int weft_file_write_atomic(const char *path, const void *data, size_t len,
                                       mode_t mode);

/* Free what weft_file_listdir() or weft_file_read_all() returned (NULL is fine). */
WEFT_EXTERN void weft_file_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_H */
