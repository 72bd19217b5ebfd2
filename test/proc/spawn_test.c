/*
 * The spawn path itself (src/proc/clone.c, the asynchronous exec, and its posix_spawnp
 * fallback: the same binary runs again with WEFT_SPAWN=posix_spawn, test/CMakeLists.txt):
 * 200 tasks spawning at once (all reaped, no fd left behind), the loop running other tasks while
 * a child execs, the errors of posix_spawnp (missing program, no execute permission, the PATH
 * search's EACCES, ENOEXEC, a bad cwd), a task cancelled while its child execs (no child, no
 * zombie, no fd left), the child's signal dispositions and mask (a handler of the parent's is
 * never inherited; SIG_IGN is, but SIGPIPE's), env and cwd, a spawn from a loop callback, and
 * two loops in two threads spawning at once.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proctest.h"

static bool async_spawn(void)
{
    const char *s = getenv("WEFT_SPAWN");
    return s == NULL || strcmp(s, "posix_spawn") != 0;
}

/* ---- many at once ---- */

#define MANY 200

static int spawn_true(void *arg)
{
    (void)arg;
    char *t[] = {"/bin/true", NULL};
    weft_proc_t *p;
    int r = weft_proc_spawn(&p, t, NULL);
    if (r < 0)
        return r;
    int rc = -1;
    r = weft_proc_wait(p, &rc);
    weft_proc_release(p);
    return r < 0 ? r : rc;
}

static int many_main(void *arg)
{
    (void)arg;
    weft_task_t *ts[MANY];
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(weft_spawn(&ts[i], spawn_true, NULL), 0);
    for (int i = 0; i < MANY; i++) {
        CHECK_EQ(weft_join(ts[i]), 0);
        weft_task_release(ts[i]);
    }
    return 0;
}

static void test_200_at_once(void)
{
    int fds = test_count_fds(), kids = pt_children(true);
    CHECK_EQ(weft_run(many_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
    CHECK_EQ(pt_children(true), kids);
}

/* ---- the loop runs while a child execs ---- */

static int ticks;

static int ticker(void *arg)
{
    (void)arg;
    for (;;) {
        ticks++;
        int r = weft_yield();
        if (r < 0)
            return r;
    }
}

static int overlap_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    int before = ticks;
    char *sh[] = {"sh", "-c", "exit 5", NULL};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, sh, NULL), 0);
    /* The asynchronous exec suspends the task until the child exec'd: the ticker ran. */
    if (async_spawn())
        CHECK(ticks > before);
    else
        CHECK_EQ(ticks, before);
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 5);
    weft_proc_release(p);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    return 0;
}

static void test_loop_runs_during_exec(void)
{
    CHECK_EQ(weft_run(overlap_main, NULL), 0);
}

/* ---- errors ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    CHECK_EQ(chmod(path, mode), 0);
}

static int errors_main(void *arg)
{
    (void)arg;
    weft_proc_t *p = (weft_proc_t *)1;
    char *nope[] = {"weft-no-such-program-xyz", NULL};
    CHECK_EQ(weft_proc_spawn(&p, nope, NULL), -ENOENT);
    CHECK(p == NULL);
    char *abs[] = {"/nonexistent/prog", NULL};
    CHECK_EQ(weft_proc_spawn(&p, abs, NULL), -ENOENT);
    char *notdir[] = {"/etc/passwd/x", NULL};
    CHECK_EQ(weft_proc_spawn(&p, notdir, NULL), -ENOTDIR);
    char longname[400];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char *toolong[] = {longname, NULL};
    CHECK_EQ(weft_proc_spawn(&p, toolong, NULL), -ENAMETOOLONG);

    char dir[] = "/tmp/weft-spawn-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char noexec[64], garbage[64], path[256];
    snprintf(noexec, sizeof(noexec), "%s/noexec", dir);
    snprintf(garbage, sizeof(garbage), "%s/garbage", dir);
    write_file(noexec, "#!/bin/sh\nexit 0\n", 0644);
    write_file(garbage, "\x01\x02\x03 not a program\n", 0755);
    bool root = geteuid() == 0;
    /* A file without the execute bit: EACCES (root may run it: then it is no error). */
    char *ne[] = {noexec, NULL};
    int r = weft_proc_spawn(&p, ne, NULL);
    if (!root)
        CHECK_EQ(r, -EACCES);
    if (r == 0) {
        CHECK_EQ(weft_proc_wait(p, NULL), 0);
        weft_proc_release(p);
    }
    /* Neither a script nor a binary: ENOEXEC, no shell tried (posix_spawn). */
    char *gb[] = {garbage, NULL};
    CHECK_EQ(weft_proc_spawn(&p, gb, NULL), -ENOEXEC);
    /* The PATH search: found but not executable in one directory, missing in the others:
     * EACCES; found in a later directory: runs. */
    const char *old = getenv("PATH");
    char *saved = strdup(old != NULL ? old : "/usr/bin:/bin");
    snprintf(path, sizeof(path), "/nonexistent:%s:/usr/bin", dir);
    CHECK_EQ(setenv("PATH", path, 1), 0);
    char *bare[] = {"noexec", NULL};
    r = weft_proc_spawn(&p, bare, NULL);
    if (!root)
        CHECK_EQ(r, -EACCES);
    if (r == 0) {
        CHECK_EQ(weft_proc_wait(p, NULL), 0);
        weft_proc_release(p);
    }
    char *tr[] = {"true", NULL};
    CHECK_EQ(weft_proc_spawn(&p, tr, NULL), 0);
    int rc = -1;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 0);
    weft_proc_release(p);
    /* An empty entry is the current directory. */
    snprintf(path, sizeof(path), "/nonexistent::/usr/bin");
    CHECK_EQ(setenv("PATH", path, 1), 0);
    struct weft_proc_opts here = {.cwd = dir};
    char *dot[] = {"./noexec", NULL};
    char *cwdrel[] = {"garbage", NULL};
    /* The search happens in the child, after its chdir (as with posix_spawnp's actions). */
    CHECK_EQ(weft_proc_spawn(&p, cwdrel, &here), -ENOEXEC);
    CHECK_EQ(weft_proc_spawn(&p, cwdrel, NULL), -ENOENT);
    CHECK_EQ(chdir(dir), 0);
    CHECK_EQ(weft_proc_spawn(&p, cwdrel, NULL), -ENOEXEC);
    r = weft_proc_spawn(&p, dot, NULL);
    if (!root)
        CHECK_EQ(r, -EACCES);
    if (r == 0) {
        CHECK_EQ(weft_proc_wait(p, NULL), 0);
        weft_proc_release(p);
    }
    CHECK_EQ(chdir("/"), 0);
    CHECK_EQ(setenv("PATH", saved, 1), 0);
    free(saved);
    /* A cwd that does not exist. */
    struct weft_proc_opts bad = {.cwd = "/nonexistent/dir"};
    CHECK_EQ(weft_proc_spawn(&p, tr, &bad), -ENOENT);
    unlink(noexec);
    unlink(garbage);
    rmdir(dir);
    return 0;
}

static void test_errors(void)
{
    int fds = test_count_fds(), kids = pt_children(true);
    CHECK_EQ(weft_run(errors_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
    CHECK_EQ(pt_children(true), kids);
}

/* ---- cancelled while the child execs ---- */

static int cancel_main(void *arg)
{
    (void)arg;
    int kids = pt_children(true);
    int cancelled = 0;
    for (int i = 0; i < 40; i++) {
        weft_proc_t *p = NULL;
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, pt_spawn_sleeper, &p), 0);
        CHECK_EQ(weft_yield(), 0); /* it runs: clone, then it waits for the exec */
        if (i % 2)
            CHECK_EQ(weft_yield(), 0);
        weft_task_cancel(t, NULL);
        int r = weft_join(t);
        weft_task_release(t);
        if (r == -ECANCELED) {
            CHECK(p == NULL);
            cancelled++;
            CHECK_EQ(pt_children(true), kids); /* killed and reaped before the spawn returned */
        } else {
            CHECK_EQ(r, 0);
            CHECK_EQ(weft_proc_kill(p), 0);
            CHECK_EQ(weft_proc_wait(p, NULL), 0);
            weft_proc_release(p);
        }
    }
    if (async_spawn())
        CHECK(cancelled > 0);
    CHECK_EQ(pt_children(true), kids);
    return 0;
}

static void test_cancel_during_exec(void)
{
    int fds = test_count_fds();
    CHECK_EQ(weft_run(cancel_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* A loop closed while a task waits for its child's exec: the child is killed and reaped. */
static void test_loop_closed_during_exec(void)
{
    int fds = test_count_fds(), kids = pt_children(true);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    weft_proc_t *p = NULL;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, pt_spawn_sleeper, &p), 0);
    weft_loop_stop(l);
    CHECK_EQ(weft_loop_run(l), 0); /* one iteration: the task starts its child and waits */
    CHECK_EQ(weft_loop_close(l), 0);
    weft_task_release(t);
    if (async_spawn()) {
        CHECK(p == NULL);
    } else {
        CHECK(p != NULL); /* posix_spawnp returned at once: an ordinary child */
        CHECK_EQ(weft_proc_kill(p), 0);
        weft_proc_release(p); /* reaped by the orphan thread */
        for (int i = 0; i < 500 && pt_children(true) > kids; i++)
            usleep(2000);
        fds++; /* the orphan thread's eventfd, made once */
    }
    CHECK_EQ(pt_children(true), kids);
    CHECK(test_count_fds() <= fds);
}

/* ---- signals, env, cwd ---- */

static pid_t parent_pid;
static atomic_int in_child; /* the handler ran in a child (sharing our memory before its exec) */
static atomic_int stop_spam;

static void on_usr1(int sig)
{
    (void)sig;
    if ((pid_t)syscall(SYS_getpid) != parent_pid)
        atomic_fetch_add(&in_child, 1);
}

static void on_noop(int sig)
{
    (void)sig;
}

/* SIGUSR1 to our process group (us and our children) over and over. */
static void *spam(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_spam)) {
        kill(0, SIGUSR1);
        usleep(20);
    }
    return NULL;
}

/* The hex mask on the line starting with `key` in a /proc/PID/status text. */
static unsigned long long status_mask(const char *text, const char *key)
{
    const char *s = strstr(text, key);
    CHECK(s != NULL);
    return strtoull(s + strlen(key), NULL, 16);
}

#define BIT(sig) (1ULL << ((sig)-1))

static int signals_main(void *arg)
{
    (void)arg;
    struct sigaction sa, o1, o2, o3, oc;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_noop;
    CHECK_EQ(sigaction(SIGUSR1, &sa, &o1), 0);
    CHECK_EQ(sigaction(SIGCHLD, &sa, &oc), 0);
    sa.sa_handler = SIG_IGN;
    CHECK_EQ(sigaction(SIGUSR2, &sa, &o2), 0);
    CHECK_EQ(sigaction(SIGPIPE, &sa, &o3), 0);
    sigset_t blk, oldmask;
    sigemptyset(&blk);
    sigaddset(&blk, SIGTERM);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &blk, &oldmask), 0);

    struct weft_proc_opts o = {.stdout_mode = WEFT_STDIO_PIPE};
    char *cat[] = {"cat", "/proc/self/status", NULL};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, cat, &o), 0);
    struct weft_proc_io io = {0};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_EQ(io.returncode, 0);
    unsigned long long cgt = status_mask(io.out, "SigCgt:"), ign = status_mask(io.out, "SigIgn:"),
                       blkd = status_mask(io.out, "SigBlk:");
    CHECK((cgt & (BIT(SIGUSR1) | BIT(SIGCHLD))) == 0); /* handlers: default in the child */
    CHECK((ign & BIT(SIGUSR2)) != 0);                  /* ignored stays ignored (exec) */
    CHECK((ign & BIT(SIGPIPE)) == 0);                  /* but SIGPIPE is reset */
    CHECK_EQ(blkd, 0ULL);                              /* an empty mask */
    weft_proc_io_free(&io);
    weft_proc_release(p);

    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &oldmask, NULL), 0);
    sigaction(SIGUSR1, &o1, NULL);
    sigaction(SIGUSR2, &o2, NULL);
    sigaction(SIGPIPE, &o3, NULL);
    sigaction(SIGCHLD, &oc, NULL);
    return 0;
}

static void test_signal_dispositions(void)
{
    CHECK_EQ(weft_run(signals_main, NULL), 0);
}

static int storm_main(void *arg)
{
    (void)arg;
    int killed = 0;
    for (int i = 0; i < 100; i++) {
        char *t[] = {"/bin/true", NULL};
        weft_proc_t *p;
        int r;
        do
            r = weft_proc_spawn(&p, t, NULL);
        while (r == -EINTR);
        CHECK_EQ(r, 0);
        int rc = -1000;
        CHECK_EQ(weft_proc_wait(p, &rc), 0);
        CHECK(rc == 0 || rc == -SIGUSR1);
        killed += rc == -SIGUSR1;
        weft_proc_release(p);
    }
    return killed;
}

/* Signals that reach a child between its clone and its exec take the default action: the
 * parent's handler never runs in the child (where it would write the parent's memory). */
static void test_signal_storm(void)
{
    if (getpgrp() != getpid() && setpgid(0, 0) != 0) {
        fprintf(stderr, "   (skipped: cannot lead a process group)\n");
        return;
    }
    parent_pid = getpid();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&stop_spam, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, spam, NULL), 0);
    int killed = weft_run(storm_main, NULL);
    atomic_store(&stop_spam, 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(killed >= 0);
    CHECK_EQ(atomic_load(&in_child), 0);
    sigaction(SIGUSR1, &old, NULL);
    fprintf(stderr, "   (%d of 100 children ended by SIGUSR1)\n", killed);
}

static int env_main(void *arg)
{
    (void)arg;
    char *env[] = {"WEFT_A=one", "WEFT_B=two words", NULL};
    struct weft_proc_opts o = {.stdout_mode = WEFT_STDIO_PIPE, .env = env, .cwd = "/tmp"};
    char *sh[] = {"/bin/sh", "-c", "echo \"$WEFT_A|$WEFT_B|$(pwd)|${HOME:-none}\"", NULL};
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn(&p, sh, &o), 0);
    struct weft_proc_io io = {0};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_STR(io.out, "one|two words|/tmp|none\n");
    weft_proc_io_free(&io);
    weft_proc_release(p);
    /* The parent's environment (a copy taken at the spawn), changed by another task meanwhile. */
    CHECK_EQ(setenv("WEFT_SPAWN_TEST", "parent", 1), 0);
    struct weft_proc_opts o2 = {.stdout_mode = WEFT_STDIO_PIPE};
    char *sh2[] = {"sh", "-c", "echo $WEFT_SPAWN_TEST", NULL};
    CHECK_EQ(weft_proc_spawn(&p, sh2, &o2), 0);
    for (int i = 0; i < 200; i++) { /* grows environ's array: glibc moves it */
        char name[32];
        snprintf(name, sizeof(name), "WEFT_SPAWN_FILL_%d", i);
        setenv(name, "x", 1);
    }
    struct weft_proc_io io2 = {0};
    CHECK_EQ(weft_proc_communicate(p, &io2), 0);
    CHECK_STR(io2.out, "parent\n");
    weft_proc_io_free(&io2);
    weft_proc_release(p);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "WEFT_SPAWN_FILL_%d", i);
        unsetenv(name);
    }
    unsetenv("WEFT_SPAWN_TEST");
    return 0;
}

static void test_env_cwd(void)
{
    CHECK_EQ(weft_run(env_main, NULL), 0);
}

/* ---- from a loop callback (no task: posix_spawnp) ---- */

struct cb_state {
    weft_proc_t *p;
    int r;
};

static void spawn_cb(void *arg)
{
    struct cb_state *s = arg;
    char *f[] = {"false", NULL};
    s->r = weft_proc_spawn(&s->p, f, NULL);
}

static int callback_main(void *arg)
{
    (void)arg;
    struct cb_state s = {NULL, -1000};
    CHECK_EQ(weft_call_soon(weft_loop_current(), spawn_cb, &s), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(s.r, 0);
    int rc;
    CHECK_EQ(weft_proc_wait(s.p, &rc), 0);
    CHECK_EQ(rc, 1);
    weft_proc_release(s.p);
    return 0;
}

static void test_spawn_from_callback(void)
{
    CHECK_EQ(weft_run(callback_main, NULL), 0);
}

/* ---- two loops, two threads ---- */

#define PER_THREAD 40

static int thread_main(void *arg)
{
    (void)arg;
    weft_task_t *ts[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++)
        CHECK_EQ(weft_spawn(&ts[i], spawn_true, NULL), 0);
    int bad = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (weft_join(ts[i]) != 0)
            bad++;
        weft_task_release(ts[i]);
    }
    return bad;
}

static void *thread_fn(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_run(thread_main, NULL);
}

static void test_two_threads(void)
{
    int fds = test_count_fds(), kids = pt_children(true);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thread_fn, NULL), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        CHECK_EQ(pthread_join(th[i], &r), 0);
        CHECK_EQ((int)(intptr_t)r, 0);
    }
    CHECK_EQ(test_count_fds(), fds);
    CHECK_EQ(pt_children(true), kids);
}

TEST_MAIN(test_200_at_once, test_loop_runs_during_exec, test_errors, test_cancel_during_exec,
          test_loop_closed_during_exec, test_signal_dispositions, test_signal_storm, test_env_cwd,
          test_spawn_from_callback, test_two_threads)
