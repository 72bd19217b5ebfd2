/*
 * Issue 14, item 3: no weft call raises SIGPIPE, whatever the fd kind. A stream over a pipe
 * whose reader is gone reports -EPIPE (write-through and background flush alike) with SIGPIPE at
 * its default action (which would kill the process); a SIGPIPE that was already pending stays
 * pending, and the thread's signal mask is left as it was. The loop's default error report
 * writes to stderr, which may be a pipe nobody reads either.
 */
#define _GNU_SOURCE
#include "nettest.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

static void default_sigpipe(void)
{
    signal(SIGPIPE, SIG_DFL);
}

static bool sigpipe_blocked(void)
{
    sigset_t cur;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
    return sigismember(&cur, SIGPIPE);
}

static bool sigpipe_pending(void)
{
    sigset_t p;
    CHECK_EQ(sigpending(&p), 0);
    return sigismember(&p, SIGPIPE);
}

/* Write-through: the reader is gone before the first write. */
static int through_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, p[1], NULL), 0);
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(weft_stream_write(s, "hello", 5), -EPIPE);
    CHECK_EQ(weft_stream_drain(s), -EPIPE);
    CHECK(!sigpipe_blocked());
    CHECK(!sigpipe_pending());
    weft_stream_close(s);
    weft_stream_release(s);
    return 0;
}

static void test_sigpipe_pipe_write_through(void)
{
    default_sigpipe();
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(through_main, NULL), 0));
}

/* The background flush: the pipe is full, then its reader goes away. */
static int flush_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, p[1], NULL), 0);
    size_t n = 1 << 20;
    char *big = calloc(1, n);
    CHECK_EQ(weft_stream_write(s, big, n), 0); /* the pipe takes 64 KiB, the rest is queued */
    CHECK(weft_stream_write_buffered(s) > 0);
    CHECK_EQ(weft_yield(), 0); /* the flush task waits for room */
    CHECK_EQ(close(p[0]), 0);  /* the reader goes: the flush's next write gets EPIPE */
    CHECK_EQ(weft_stream_drain_dl(s, weft_deadline_in(5)), -EPIPE);
    CHECK(!sigpipe_blocked());
    CHECK(!sigpipe_pending());
    weft_stream_close(s);
    CHECK_EQ(weft_stream_wait_closed(s), -EPIPE);
    weft_stream_release(s);
    free(big);
    return 0;
}

static void test_sigpipe_pipe_flush(void)
{
    default_sigpipe();
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(flush_main, NULL), 0));
}

/* A SIGPIPE pending before the call (blocked by the program) is not weft's to take. */
static int pending_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, p[1], NULL), 0);
    CHECK_EQ(close(p[0]), 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    CHECK_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);
    CHECK(sigpipe_pending());
    CHECK_EQ(weft_stream_write(s, "x", 1), -EPIPE);
    CHECK(sigpipe_pending()); /* still there */
    CHECK(sigpipe_blocked()); /* and the mask is the program's */
    static const struct timespec zero = {0, 0};
    CHECK_EQ(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    weft_stream_release(s);
    return 0;
}

static void test_sigpipe_pending_kept(void)
{
    default_sigpipe();
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(pending_main, NULL), 0));
}

/* The default error report, to a stderr that is a pipe whose reader is gone. */
static int failing(void *arg)
{
    (void)arg;
    return -EIO;
}

static int report_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, failing, NULL), 0);
    while (!weft_task_done(t))
        CHECK_EQ(weft_yield(), 0);
    weft_task_release(t); /* its error never retrieved: reported to stderr */
    return 0;
}

static void test_sigpipe_error_report(void)
{
    default_sigpipe();
    fflush(stderr);
    int saved = dup(2);
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(dup2(p[1], 2), 2);
    CHECK_EQ(close(p[1]), 0);
    CHECK_EQ(close(p[0]), 0);
    int r = weft_run(report_main, NULL);
    CHECK_EQ(dup2(saved, 2), 2);
    CHECK_EQ(close(saved), 0);
    CHECK_EQ(r, 0);
    CHECK(!sigpipe_pending());
}

TEST_MAIN(test_sigpipe_pipe_write_through, test_sigpipe_pipe_flush, test_sigpipe_pending_kept,
          test_sigpipe_error_report)
