/*
 * Signal handlers run by the loop: a handler runs as a loop callback after the signal handler
 * returned (deliveries before it runs merge), tasks wait for signals, dispositions are restored on
 * removal and at loop close, two loops in two threads each see a signal (labelled tsan too), and
 * Ctrl+C typed on a pseudo-terminal into a weft_run() program: the first cancels the main task,
 * whose cleanup runs and which exits cleanly; a second one kills a program that ignores the first.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static int calls, last_sig;
static pthread_t handler_thread;

static void on_usr(int sig, void *arg)
{
    calls++;
    last_sig = sig;
    handler_thread = pthread_self();
    CHECK_EQ(weft_call_soon(weft_loop_current(), (weft_callback_fn)free, malloc(8)), 0);
    (void)arg;
}

static int handler_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    calls = 0;
    CHECK_EQ(weft_signal_add(l, SIGUSR1, on_usr, NULL), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(calls, 0); /* not inside the signal handler */
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(calls, 1);
    CHECK_EQ(last_sig, SIGUSR1);
    CHECK(pthread_equal(handler_thread, pthread_self()));
    /* Two deliveries before the loop looks: one call. */
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(calls, 2);
    /* Adding again replaces; removing reports whether there was one. */
    CHECK_EQ(weft_signal_add(l, SIGUSR1, on_usr, NULL), 0);
    CHECK_EQ(weft_signal_remove(l, SIGUSR1), 1);
    CHECK_EQ(weft_signal_remove(l, SIGUSR1), 0);
    return 0;
}

static void test_handler_is_a_callback(void)
{
    CHECK_EQ(weft_run(handler_main, NULL), 0);
}

static void prev_handler(int sig)
{
    (void)sig;
}

static int restore_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    struct sigaction sa;
    CHECK_EQ(weft_signal_add(l, SIGUSR2, on_usr, NULL), 0);
    CHECK_EQ(sigaction(SIGUSR2, NULL, &sa), 0);
    CHECK(sa.sa_handler != prev_handler);
    CHECK_EQ(weft_signal_remove(l, SIGUSR2), 1);
    CHECK_EQ(sigaction(SIGUSR2, NULL, &sa), 0);
    CHECK(sa.sa_handler == prev_handler);
    /* Left registered: the loop's close restores it. */
    CHECK_EQ(weft_signal_add(l, SIGUSR2, on_usr, NULL), 0);
    CHECK_EQ(weft_signal_add(l, SIGHUP, on_usr, NULL), 0);
    /* Bad signals. */
    CHECK_EQ(weft_signal_add(l, SIGKILL, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(l, SIGSTOP, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(l, SIGSEGV, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(l, 0, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(l, NSIG, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(l, SIGUSR1, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_signal_add(NULL, SIGUSR1, on_usr, NULL), -EINVAL);
    CHECK_EQ(weft_signal_wait(SIGKILL), -EINVAL);
    return 0;
}

static void test_dispositions_restored(void)
{
    signal(SIGUSR2, prev_handler);
    CHECK_EQ(weft_run(restore_main, NULL), 0);
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGUSR2, NULL, &sa), 0);
    CHECK(sa.sa_handler == prev_handler);
    CHECK_EQ(sigaction(SIGHUP, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    CHECK_EQ(weft_signal_wait(SIGUSR1), -EPERM); /* outside a task */
}

static int sender(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(1), 0);
    kill(getpid(), SIGUSR1);
    return 0;
}

static int wait_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_signal_wait_dl(SIGUSR1, weft_deadline_in(5)), -ETIMEDOUT);
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGUSR1, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL); /* no waiter left: given back */
    CHECK_EQ(weft_spawn(NULL, sender, NULL), 0);
    CHECK_EQ(weft_signal_wait_dl(SIGUSR1, weft_deadline_in(100)), SIGUSR1);
    CHECK_EQ(weft_time(NULL), 6000000000); /* virtual clock: 5 s timed out, woken at the send 1 s later */
    return 0;
}

static void test_task_waits_for_signal(void)
{
    CHECK_EQ(run_virtual(wait_main, NULL), 0);
}

/* ---- two loops in two threads ---- */

static atomic_int ready_loops;

static void noop(int sig, void *arg)
{
    (void)sig;
    (void)arg;
}

static int thread_loop_main(void *arg)
{
    int *got = arg;
    /* Caught from here on; a delivery before the wait below parks is dispatched only after
     * it parked (this task does not suspend in between), so it is not lost. */
    CHECK_EQ(weft_signal_add(weft_loop_current(), SIGUSR1, noop, NULL), 0);
    atomic_fetch_add(&ready_loops, 1);
    *got = weft_signal_wait_dl(SIGUSR1, weft_deadline_in(20));
    return 0;
}

static void *thread_main(void *arg)
{
    CHECK_EQ(weft_run(thread_loop_main, arg), 0);
    return NULL;
}

static void test_two_loops_two_threads(void)
{
    int got[2] = {0, 0};
    pthread_t th[2];
    atomic_store(&ready_loops, 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thread_main, &got[i]), 0);
    while (atomic_load(&ready_loops) < 2) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK_EQ(kill(getpid(), SIGUSR1), 0); /* one delivery, to any thread: both loops see it */
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_EQ(got[0], SIGUSR1);
    CHECK_EQ(got[1], SIGUSR1);
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGUSR1, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL);
}

/* ---- Ctrl+C on a pseudo-terminal ---- */

static int ctrlc_stubborn;

static int ctrlc_child_main(void *arg)
{
    (void)arg;
    printf("ready\n");
    fflush(stdout);
    int r = weft_sleep(100);
    printf("main task: %s\n", weft_err_name(r));
    fflush(stdout);
    if (ctrlc_stubborn) {
        weft_task_uncancel(weft_current_task());
        printf("ready again\n");
        fflush(stdout);
        weft_sleep(100);
    }
    printf("cleanup ran\n");
    fflush(stdout);
    return r;
}

/* The child side: the pseudo-terminal becomes our controlling terminal, then weft_run(). */
static int ctrlc_child(bool stubborn)
{
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        return 3;
    ctrlc_stubborn = stubborn;
    int r = weft_run(ctrlc_child_main, NULL);
    printf("weft_run: %s\n", weft_err_name(r));
    return r == -EINTR ? 0 : 4;
}

/* Read from the terminal until `want` appears (or the end); true if it did. */
static bool read_until(weft_stream_t *s, char *acc, size_t cap, size_t *len, const char *want)
{
    while (strstr(acc, want) == NULL) {
        if (*len + 1 >= cap)
            return false;
        ssize_t n = weft_stream_read_dl(s, acc + *len, cap - 1 - *len, weft_deadline_in(20));
        if (n <= 0)
            return false; /* EIO once the child closed the terminal */
        *len += (size_t)n;
        acc[*len] = '\0';
    }
    return true;
}

static int pty_main(void *arg)
{
    bool stubborn = arg != NULL;
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(master >= 0);
    CHECK_EQ(grantpt(master), 0);
    CHECK_EQ(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    CHECK(slave >= 0);
    struct weft_proc_opts o = {.stdin_mode = WEFT_STDIO_FD, .stdin_fd = slave,
                               .stdout_mode = WEFT_STDIO_FD, .stdout_fd = slave,
                               .stderr_mode = WEFT_STDIO_FD, .stderr_fd = slave,
                               .new_session = true};
    char *self[] = {"/proc/self/exe", stubborn ? "--ctrlc-stubborn" : "--ctrlc-child", NULL};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, self, &o), 0);
    close(slave);
    weft_stream_t *term;
    CHECK_EQ(weft_stream_new(&term, master, NULL), 0);
    char acc[4096] = {0};
    size_t len = 0;
    CHECK(read_until(term, acc, sizeof(acc), &len, "ready"));
    CHECK_EQ(weft_stream_write(term, "\003", 1), 0); /* Ctrl+C */
    if (stubborn) {
        CHECK(read_until(term, acc, sizeof(acc), &len, "ready again"));
        CHECK_EQ(weft_stream_write(term, "\003", 1), 0);
    }
    read_until(term, acc, sizeof(acc), &len, "weft_run: ");
    int rc;
    CHECK_EQ(weft_proc_wait_dl(p, &rc, weft_deadline_in(20)), 0);
    read_until(term, acc, sizeof(acc), &len, "\n\n\n"); /* the rest, up to EIO */
    weft_stream_release(term);
    weft_proc_release(p);
    CHECK(strstr(acc, "main task: ECANCELED") != NULL);
    if (stubborn) {
        CHECK_EQ(rc, -SIGINT); /* the second Ctrl+C killed it */
        CHECK(strstr(acc, "cleanup ran") == NULL);
    } else {
        CHECK(strstr(acc, "cleanup ran") != NULL);
        CHECK(strstr(acc, "weft_run: EINTR") != NULL);
        CHECK_EQ(rc, 0);
    }
    return 0;
}

static void test_ctrl_c_on_a_terminal(void)
{
    CHECK_EQ(weft_run(pty_main, NULL), 0);
}

static void test_second_ctrl_c_kills(void)
{
    CHECK_EQ(weft_run(pty_main, (void *)1), 0);
}

static const test_case_fn cases[] = {test_handler_is_a_callback, test_dispositions_restored,
                                     test_task_waits_for_signal, test_two_loops_two_threads,
                                     test_ctrl_c_on_a_terminal, test_second_ctrl_c_kills};
static const char *const names[] = {"test_handler_is_a_callback", "test_dispositions_restored",
                                    "test_task_waits_for_signal", "test_two_loops_two_threads",
                                    "test_ctrl_c_on_a_terminal", "test_second_ctrl_c_kills"};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--ctrlc-child") == 0)
        return ctrlc_child(false);
    if (argc > 1 && strcmp(argv[1], "--ctrlc-stubborn") == 0)
        return ctrlc_child(true);
    return test_main(argc, argv, names, cases, sizeof(cases) / sizeof(cases[0]));
}
