/*
 * Spawning and waiting with real programs: return codes (exit status, -N for a signal), a missing
 * or non-executable program failing at spawn, waits with deadlines and cancellation (the child
 * keeps running), several waiters, signals to exited children, no zombies after a release
 * without a wait, and an application's SIGCHLD handler that keeps running. The same binary runs
 * a second time with WEFT_NO_PIDFD=1 (the SIGCHLD mode: test/CMakeLists.txt).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctest.h"

/* Spawn argv and wait; returns the return code. */
static int run_rc(char *const argv[])
{
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, argv, NULL), 0);
    int rc = -1000;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    int again = -1000;
    CHECK(weft_proc_returncode(p, &again));
    CHECK_EQ(again, rc);
    weft_proc_release(p);
    return rc;
}

static int codes_main(void *arg)
{
    (void)arg;
    char *t[] = {"true", NULL}, *f[] = {"false", NULL};
    char *seven[] = {"sh", "-c", "exit 7", NULL};
    char *selfkill[] = {"sh", "-c", "kill -9 $$", NULL};
    CHECK_EQ(run_rc(t), 0);
    CHECK_EQ(run_rc(f), 1);
    CHECK_EQ(run_rc(seven), 7);
    CHECK_EQ(run_rc(selfkill), -9);
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn_shell(&p, "exit 3", NULL), 0);
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 3);
    weft_proc_release(p);
    return 0;
}

static void test_return_codes(void)
{
    int fds = test_count_fds();
    CHECK_EQ(weft_run(codes_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

static int missing_main(void *arg)
{
    (void)arg;
    weft_proc_t *p = (weft_proc_t *)1;
    char *nope[] = {"weft-no-such-program-xyz", NULL};
    CHECK_EQ(weft_proc_spawn(&p, nope, NULL), -ENOENT);
    CHECK(p == NULL);
    char *abs[] = {"/nonexistent/prog", NULL};
    CHECK_EQ(weft_proc_spawn(&p, abs, NULL), -ENOENT);
    /* A file without the execute bit. */
    char path[] = "/tmp/weft-noexec-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0644);
    char *noexec[] = {path, NULL};
    int r = weft_proc_spawn(&p, noexec, NULL);
    unlink(path);
    if (geteuid() != 0)
        CHECK_EQ(r, -EACCES);
    else
        CHECK(r == -EACCES || r == 0 || r == -ENOEXEC); /* root may execute anything */
    if (r == 0) {
        weft_proc_wait(p, NULL);
        weft_proc_release(p);
    }
    char *none[] = {NULL};
    CHECK_EQ(weft_proc_spawn(&p, none, NULL), -EINVAL);
    CHECK_EQ(weft_proc_spawn(&p, NULL, NULL), -EINVAL);
    char *t[] = {"true", NULL};
    struct weft_proc_opts o = {.stdin_mode = 99};
    CHECK_EQ(weft_proc_spawn(&p, t, &o), -EINVAL);
    struct weft_proc_opts o2 = {.stdout_mode = WEFT_STDIO_STDOUT};
    CHECK_EQ(weft_proc_spawn(&p, t, &o2), -EINVAL);
    struct weft_proc_opts o3 = {.cwd = "/nonexistent/dir"};
    CHECK_EQ(weft_proc_spawn(&p, t, &o3), -ENOENT);
    return 0;
}

static void test_missing_program(void)
{
    int fds = test_count_fds();
    CHECK_EQ(weft_run(missing_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

static int waiter(void *arg)
{
    int rc;
    int r = weft_proc_wait(arg, &rc);
    return r < 0 ? r : rc + 100;
}

static int deadline_main(void *arg)
{
    (void)arg;
    char *cat[] = {"cat", NULL};
    struct weft_proc_opts o = {.stdin_mode = WEFT_STDIO_PIPE};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, cat, &o), 0);
    /* cat waits for input: the wait times out, the child is untouched. */
    CHECK_EQ(weft_proc_wait_dl(p, NULL, weft_deadline_in(0.05)), -ETIMEDOUT);
    CHECK(!weft_proc_returncode(p, NULL));
    /* A cancelled waiter leaves the child running too (asyncio). */
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, waiter, p), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(w, NULL));
    CHECK_EQ(weft_join(w), -ECANCELED);
    weft_task_release(w);
    CHECK_EQ(kill(weft_proc_pid(p), 0), 0);
    /* Three waiters see the same exit. */
    weft_task_t *ws[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&ws[i], waiter, p), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_stream_close(weft_proc_stdin(p)); /* end of input: cat exits 0 */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(ws[i]), 100);
        weft_task_release(ws[i]);
    }
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 0);
    /* Signals to an exited child: nothing is sent, no error. */
    CHECK_EQ(weft_proc_kill(p), 0);
    CHECK_EQ(weft_proc_terminate(p), 0);
    CHECK_EQ(weft_proc_send_signal(p, -1), -EINVAL);
    weft_proc_release(p);
    return 0;
}

static void test_wait_deadline_cancel(void)
{
    CHECK_EQ(weft_run(deadline_main, NULL), 0);
}

static int signal_main(void *arg)
{
    (void)arg;
    char *sl[] = {"sleep", "100", NULL};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, sl, NULL), 0);
    CHECK_EQ(weft_proc_terminate(p), 0);
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, -SIGTERM);
    weft_proc_release(p);
    CHECK_EQ(weft_proc_spawn(&p, sl, NULL), 0);
    CHECK_EQ(weft_proc_kill(p), 0);
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, -9);
    weft_proc_release(p);
    return 0;
}

static void test_kill_returncode(void)
{
    CHECK_EQ(weft_run(signal_main, NULL), 0);
}

/* Whether `pid` is gone (reaped), waiting up to 10 s for a background reaper. */
static bool reaped_soon(pid_t pid)
{
    for (int i = 0; i < 10000; i++) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return false;
}

static pid_t orphan_pid;

static int orphan_main(void *arg)
{
    (void)arg;
    char *cat[] = {"cat", NULL};
    struct weft_proc_opts o = {.stdin_mode = WEFT_STDIO_PIPE};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, cat, &o), 0);
    orphan_pid = weft_proc_pid(p);
    weft_stream_t *in = weft_stream_retain(weft_proc_stdin(p));
    weft_proc_release(p); /* running: reaped in the background once it exits */
    CHECK_EQ(kill(orphan_pid, 0), 0);
    weft_stream_close(in);
    weft_stream_release(in);
    /* An exited child released without a wait is reaped at once. */
    char *t[] = {"true", NULL};
    CHECK_EQ(weft_proc_spawn(&p, t, NULL), 0);
    pid_t pid2 = weft_proc_pid(p);
    CHECK_EQ(weft_sleep(0.05), 0);
    weft_proc_release(p);
    CHECK(reaped_soon(pid2));
    return 0;
}

static void test_release_reaps(void)
{
    CHECK_EQ(weft_run(orphan_main, NULL), 0);
    CHECK(reaped_soon(orphan_pid)); /* after the loop closed, too */
}

static volatile sig_atomic_t app_sigchld;

static void app_handler(int sig)
{
    (void)sig;
    app_sigchld++;
}

static int app_main(void *arg)
{
    (void)arg;
    char *t[] = {"true", NULL};
    for (int i = 0; i < 3; i++) {
        weft_proc_t *p;
        CHECK_EQ(weft_proc_spawn(&p, t, NULL), 0);
        int rc;
        CHECK_EQ(weft_proc_wait(p, &rc), 0);
        CHECK_EQ(rc, 0);
        weft_proc_release(p);
    }
    /* A child of the program's own, not weft's: weft never reaps it. */
    pid_t own = fork();
    if (own == 0)
        _exit(5);
    CHECK(own > 0);
    for (int i = 0; i < 100 && app_sigchld < 4; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    int st;
    CHECK_EQ(waitpid(own, &st, 0), own);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    return 0;
}

static void test_app_sigchld_handler(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = app_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGCHLD, &sa, &old), 0);
    app_sigchld = 0;
    CHECK_EQ(weft_run(app_main, NULL), 0);
    CHECK(app_sigchld >= 4);
    struct sigaction now;
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    CHECK(now.sa_handler == app_handler); /* still the program's */
    sigaction(SIGCHLD, &old, NULL);
}

/* ---- a task cancelled around its spawn: no child is left behind ---- */

static int spawn_cancel_main(void *arg)
{
    (void)arg;
    int base = pt_children(false);
    int cancelled = 0;
    for (int i = 0; i < 20; i++) {
        weft_proc_t *p = NULL;
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, pt_spawn_sleeper, &p), 0);
        for (int k = 0; k < i % 4; k++)
            CHECK_EQ(weft_yield(), 0); /* cancel before the task starts, or after its spawn */
        weft_task_cancel(t, NULL);
        int r = weft_join(t);
        weft_task_release(t);
        if (r == -ECANCELED) {
            CHECK(p == NULL); /* cancelled before it ran: no child, nothing handed out */
            cancelled++;
        } else {
            CHECK_EQ(r, 0); /* the spawn finished before the cancel was seen */
            CHECK(p != NULL);
            CHECK_EQ(weft_proc_kill(p), 0);
            CHECK_EQ(weft_proc_wait(p, NULL), 0);
            weft_proc_release(p);
        }
    }
    CHECK(cancelled > 0);
    /* No child left running: each cancelled one was killed and is reaped in the background. */
    for (int i = 0; i < 1000 && pt_children(false) > base; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(pt_children(false), base);
    return 0;
}

static void test_spawn_cancelled(void)
{
    CHECK_EQ(weft_run(spawn_cancel_main, NULL), 0);
}

TEST_MAIN(test_return_codes, test_missing_program, test_wait_deadline_cancel, test_kill_returncode,
          test_release_reaps, test_app_sigchld_handler, test_spawn_cancelled)
