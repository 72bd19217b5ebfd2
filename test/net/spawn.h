/*
 * Running real programs from the networking tests (python3, curl, wrk, the examples): spawn
 * with posix_spawn, read their output through a weft stream, and wait for them through a pidfd
 * so the loop keeps running; every child is bounded in time and killed past its deadline.
 */
#ifndef WEFT_SPAWN_H
#define WEFT_SPAWN_H

#include "nettest.h"

#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

/* True if `prog` is an executable on PATH. */
static inline bool sp_have(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    char buf[4096];
    const char *p = path;
    while (*p != '\0') {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* Skip the whole test program (exit 77) unless `prog` is installed. */
static inline void sp_require(const char *prog)
{
    if (!sp_have(prog)) {
        fprintf(stderr, "%s is not installed: skipped\n", prog);
        exit(77);
    }
}

/* The directory holding this test's sources (for the python scripts). */
static inline const char *sp_srcdir(const char *file)
{
    static char dir[4096];
    snprintf(dir, sizeof(dir), "%s", file);
    return dirname(dir);
}

/* The path of a program built beside this test binary, e.g. "examples/http_hello". */
static inline const char *sp_built(const char *rel, char *buf, size_t cap)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(buf, cap, "%s/%s", dirname(exe), rel);
    return buf;
}

/*
 * Spawn argv (PATH searched); with `out` non-NULL its stdout goes to a pipe whose read end
 * (non-blocking, close-on-exec) is stored there. Returns the pid.
 */
static inline pid_t sp_spawn(char *const argv[], int *out)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int p[2] = {-1, -1};
    if (out != NULL) {
        CHECK_EQ(pipe(p), 0);
        CHECK_EQ(fcntl(p[0], F_SETFD, FD_CLOEXEC), 0);
        CHECK_EQ(fcntl(p[1], F_SETFD, FD_CLOEXEC), 0);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    }
    /* The child must not inherit our blocked signal mask (signalfd users block SIGTERM). */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    CHECK_EQ(rc, 0);
    if (out != NULL) {
        close(p[1]);
        *out = p[0];
    }
    return pid;
}

/*
 * Wait for `pid` to exit without blocking the loop; past `deadline` it is killed. Returns its
 * exit status (0-255), 128 + signal, or -ETIMEDOUT (killed).
 */
static inline int sp_wait(pid_t pid, int64_t deadline)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int st, timed_out = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        CHECK_EQ(r, 0);
        int w = pfd >= 0 ? weft_wait_fd_dl(pfd, WEFT_READABLE, deadline) : (weft_sleep(0.01), 0);
        if (w == -ETIMEDOUT || (deadline >= 0 && weft_time(NULL) >= deadline)) {
            kill(pid, SIGKILL);
            CHECK_EQ(waitpid(pid, &st, 0), pid);
            timed_out = 1;
            break;
        }
    }
    if (pfd >= 0)
        weft_close(pfd);
    if (timed_out)
        return -ETIMEDOUT;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Read a child's whole stdout (until it closes it, or the deadline) into buf (NUL-ended). */
static inline size_t sp_read_all(int fd, char *buf, size_t cap, int64_t deadline)
{
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, fd, NULL), 0);
    const char *d;
    size_t n = 0;
    int r = weft_stream_read_all_dl(s, &d, &n, deadline);
    if (r < 0)
        n = weft_stream_buffered(s, &d);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, d, n);
    buf[n] = '\0';
    weft_stream_release(s);
    return n;
}

/* Poll until something accepts connections on 127.0.0.1:port (bounded). */
static inline bool sp_wait_port(int port, int64_t deadline)
{
    while (weft_time(NULL) < deadline) {
        weft_stream_t *c;
        if (weft_stream_connect(&c, "127.0.0.1", port, NULL) == 0) {
            weft_stream_release(c);
            return true;
        }
        weft_sleep(0.02);
    }
    return false;
}

#endif /* WEFT_SPAWN_H */
