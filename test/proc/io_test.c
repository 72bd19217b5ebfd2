/*
 * Pipes and communicate with real programs (cat, sort, head, yes, sh): every stdio mode, the
 * pipes as ordinary weft streams (limits included), communicate feeding stdin while draining
 * stdout and stderr (100 MB through cat without deadlock, skipped under WEFT_SKIP_SLOW), output
 * limits, a child that closes stdout early, a write to the stdin of a child that exited (-EPIPE,
 * no SIGPIPE), env and cwd, process groups and sessions, the fds a child inherits (only 0, 1, 2),
 * and the run helper stopping a child and its group on cancellation, deadline and timeout scope.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test.h"

static bool slow_skipped(void)
{
    const char *s = getenv("WEFT_SKIP_SLOW");
    if (s != NULL && strcmp(s, "1") == 0) {
        fprintf(stderr, "   (skipped: WEFT_SKIP_SLOW=1)\n");
        return true;
    }
    return false;
}

static const struct weft_proc_opts piped = {
    .stdin_mode = WEFT_STDIO_PIPE, .stdout_mode = WEFT_STDIO_PIPE, .stderr_mode = WEFT_STDIO_PIPE};

static int communicate_main(void *arg)
{
    (void)arg;
    weft_proc_t *p;
    char *sort[] = {"sort", NULL};
    CHECK_EQ(weft_proc_spawn(&p, sort, &piped), 0);
    struct weft_proc_io io = {.input = "pear\napple\nfig\n", .input_len = 15};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_STR(io.out, "apple\nfig\npear\n");
    CHECK_EQ(io.out_len, 15);
    CHECK_EQ(io.err_len, 0);
    CHECK_EQ(io.returncode, 0);
    weft_proc_io_free(&io);
    weft_proc_release(p);

    /* stdout and stderr both read at once; stderr merged into stdout. */
    CHECK_EQ(weft_proc_spawn_shell(&p, "echo out; echo err >&2; exit 4", &piped), 0);
    struct weft_proc_io io2 = {0};
    CHECK_EQ(weft_proc_communicate(p, &io2), 0);
    CHECK_STR(io2.out, "out\n");
    CHECK_STR(io2.err, "err\n");
    CHECK_EQ(io2.returncode, 4);
    weft_proc_io_free(&io2);
    weft_proc_release(p);
    struct weft_proc_opts merged = {.stdout_mode = WEFT_STDIO_PIPE,
                                    .stderr_mode = WEFT_STDIO_STDOUT};
    CHECK_EQ(weft_proc_spawn_shell(&p, "echo a; echo b >&2; echo c", &merged), 0);
    CHECK(weft_proc_stderr(p) == NULL && weft_proc_stdin(p) == NULL);
    struct weft_proc_io io3 = {0};
    CHECK_EQ(weft_proc_communicate(p, &io3), 0);
    CHECK_STR(io3.out, "a\nb\nc\n");
    weft_proc_io_free(&io3);
    weft_proc_release(p);
    return 0;
}

static void test_communicate(void)
{
    int fds = test_count_fds();
    CHECK_EQ(weft_run(communicate_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

static int streams_main(void *arg)
{
    (void)arg;
    weft_proc_t *p;
    char *cat[] = {"cat", NULL};
    struct weft_proc_opts o = piped;
    o.stream.limit = 16;
    CHECK_EQ(weft_proc_spawn(&p, cat, &o), 0);
    weft_stream_t *in = weft_proc_stdin(p), *out = weft_proc_stdout(p);
    CHECK_EQ(weft_stream_write(in, "hello\n", 6), 0);
    CHECK_EQ(weft_stream_drain(in), 0);
    const char *line;
    size_t len;
    CHECK_EQ(weft_stream_readline(out, &line, &len), 0);
    CHECK_EQ(len, 6);
    CHECK(memcmp(line, "hello\n", 6) == 0);
    /* The stream's limit holds on a pipe. */
    CHECK_EQ(weft_stream_write(in, "a line longer than sixteen bytes\n", 33), 0);
    CHECK_EQ(weft_stream_readline(out, &line, &len), WEFT_ELIMIT);
    CHECK_EQ(weft_stream_write_eof(in), 0); /* on a pipe: closes it, once flushed */
    CHECK_EQ(weft_stream_readline(out, &line, &len), 0);
    CHECK_EQ(len, 0); /* end of stream */
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 0);
    weft_proc_release(p);
    return 0;
}

static void test_pipes_are_streams(void)
{
    CHECK_EQ(weft_run(streams_main, NULL), 0);
}

static int epipe_main(void *arg)
{
    (void)arg;
    weft_proc_t *p;
    char *t[] = {"true", NULL};
    struct weft_proc_opts o = {.stdin_mode = WEFT_STDIO_PIPE};
    CHECK_EQ(weft_proc_spawn(&p, t, &o), 0);
    CHECK_EQ(weft_proc_wait(p, NULL), 0);
    /* The reader is gone: -EPIPE, and this process is still alive. */
    int r = weft_stream_write(weft_proc_stdin(p), "x", 1);
    CHECK_EQ(r, -EPIPE);
    CHECK_EQ(weft_stream_write(weft_proc_stdin(p), "y", 1), -EPIPE);
    weft_proc_release(p);

    /* head closes its stdin (and exits) early: communicate's feed ends quietly. */
    char *head[] = {"head", "-c", "10", NULL};
    CHECK_EQ(weft_proc_spawn(&p, head, &piped), 0);
    size_t n = 4 << 20;
    char *big = malloc(n);
    memset(big, 'z', n);
    struct weft_proc_io io = {.input = big, .input_len = n};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_EQ(io.out_len, 10);
    CHECK_EQ(io.returncode, 0);
    weft_proc_io_free(&io);
    weft_proc_release(p);
    free(big);

    /* We close yes's stdout early: yes dies of SIGPIPE (the child's default was restored). */
    char *yes[] = {"yes", NULL};
    struct weft_proc_opts yo = {.stdout_mode = WEFT_STDIO_PIPE};
    CHECK_EQ(weft_proc_spawn(&p, yes, &yo), 0);
    char buf[100];
    CHECK_EQ(weft_stream_readexactly(weft_proc_stdout(p), buf, sizeof(buf), NULL), 0);
    CHECK(memcmp(buf, "y\ny\n", 4) == 0);
    weft_stream_close(weft_proc_stdout(p));
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, -SIGPIPE);
    weft_proc_release(p);
    return 0;
}

static void test_epipe_and_early_close(void)
{
    CHECK_EQ(weft_run(epipe_main, NULL), 0);
}

static int limit_main(void *arg)
{
    (void)arg;
    weft_proc_t *p;
    CHECK_EQ(weft_proc_spawn_shell(&p, "head -c 100000 /dev/zero", &piped), 0);
    struct weft_proc_io io = {.out_limit = 1000};
    CHECK_EQ(weft_proc_communicate(p, &io), WEFT_ELIMIT);
    CHECK_EQ(io.out_len, 1000);
    weft_proc_io_free(&io);
    weft_proc_kill(p);
    CHECK_EQ(weft_proc_wait(p, NULL), 0);
    weft_proc_release(p);
    /* Exactly at the limit is fine. */
    CHECK_EQ(weft_proc_spawn_shell(&p, "printf 12345", &piped), 0);
    struct weft_proc_io io2 = {.out_limit = 5};
    CHECK_EQ(weft_proc_communicate(p, &io2), 0);
    CHECK_STR(io2.out, "12345");
    weft_proc_io_free(&io2);
    weft_proc_release(p);
    return 0;
}

static void test_output_limit(void)
{
    CHECK_EQ(weft_run(limit_main, NULL), 0);
}

static int big_main(void *arg)
{
    (void)arg;
    size_t n = 100u << 20;
    char *in = malloc(n);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    weft_proc_t *p;
    char *cat[] = {"cat", NULL};
    CHECK_EQ(weft_proc_spawn(&p, cat, &piped), 0);
    struct weft_proc_io io = {.input = in, .input_len = n};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_EQ(io.out_len, n);
    CHECK(memcmp(io.out, in, n) == 0);
    CHECK_EQ(io.returncode, 0);
    weft_proc_io_free(&io);
    weft_proc_release(p);
    free(in);
    return 0;
}

static void test_100mb_through_cat(void)
{
    if (slow_skipped())
        return;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    CHECK_EQ(weft_run(big_main, NULL), 0);
    getrusage(RUSAGE_SELF, &after);
    /* Input (100 MB) + output buffer (at most 2 x 100 MB while growing) + little else. */
    CHECK(after.ru_maxrss < 400 * 1024);
}

static int env_main(void *arg)
{
    (void)arg;
    weft_proc_t *p;
    char *env[] = {"WEFT_TEST_VAR=forty-two", NULL};
    struct weft_proc_opts o = {.stdout_mode = WEFT_STDIO_PIPE, .env = env, .cwd = "/tmp"};
    CHECK_EQ(weft_proc_spawn_shell(&p, "echo $WEFT_TEST_VAR; pwd", &o), 0);
    struct weft_proc_io io = {0};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_STR(io.out, "forty-two\n/tmp\n");
    weft_proc_io_free(&io);
    weft_proc_release(p);

    /* /dev/null and an fd of ours. */
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    struct weft_proc_opts o2 = {.stdin_mode = WEFT_STDIO_DEVNULL,
                                .stdout_mode = WEFT_STDIO_FD,
                                .stdout_fd = pfd[1]};
    char *cat[] = {"cat", NULL};
    CHECK_EQ(weft_proc_spawn(&p, cat, &o2), 0);
    int rc;
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    CHECK_EQ(rc, 0);
    weft_proc_release(p);
    CHECK_EQ(weft_proc_spawn_shell(&p, "echo via-fd", &o2), 0);
    CHECK_EQ(weft_proc_wait(p, &rc), 0);
    weft_proc_release(p);
    close(pfd[1]);
    char buf[64] = {0};
    CHECK_EQ(read(pfd[0], buf, sizeof(buf)), 7);
    CHECK_STR(buf, "via-fd\n");
    close(pfd[0]);

    /* A new process group, a new session. */
    char *sl[] = {"sleep", "100", NULL};
    struct weft_proc_opts g = {.new_pgroup = true};
    CHECK_EQ(weft_proc_spawn(&p, sl, &g), 0);
    CHECK_EQ(getpgid(weft_proc_pid(p)), weft_proc_pid(p));
    CHECK(getsid(weft_proc_pid(p)) == getsid(0));
    weft_proc_kill(p);
    CHECK_EQ(weft_proc_wait(p, NULL), 0);
    weft_proc_release(p);
    struct weft_proc_opts s = {.new_session = true};
    CHECK_EQ(weft_proc_spawn(&p, sl, &s), 0);
    CHECK_EQ(getsid(weft_proc_pid(p)), weft_proc_pid(p));
    weft_proc_kill(p);
    CHECK_EQ(weft_proc_wait(p, NULL), 0);
    weft_proc_release(p);
    return 0;
}

static void test_env_cwd_fds_groups(void)
{
    CHECK_EQ(weft_run(env_main, NULL), 0);
}

static int leak_main(void *arg)
{
    (void)arg;
    /* fds the program left without close-on-exec must not reach the child either. */
    int stray = open("/dev/null", O_RDONLY);
    CHECK(stray > 2);
    weft_proc_t *p;
    char *self[] = {"/proc/self/exe", "--list-fds", NULL};
    CHECK_EQ(weft_proc_spawn(&p, self, &piped), 0);
    struct weft_proc_io io = {0};
    CHECK_EQ(weft_proc_communicate(p, &io), 0);
    CHECK_STR(io.out, "0 1 2 ");
    CHECK_EQ(io.returncode, 0);
    weft_proc_io_free(&io);
    weft_proc_release(p);
    close(stray);
    return 0;
}

static void test_no_fd_leak(void)
{
    CHECK_EQ(weft_run(leak_main, NULL), 0);
}

/* The child side of test_no_fd_leak: print the fds it has, except the directory's own. */
static int list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 1;
    int dfd = dirfd(d);
    int fds[64], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (e->d_name[0] != '.' && atoi(e->d_name) != dfd)
            fds[n++] = atoi(e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* sorted, small */
        for (int j = i + 1; j < n; j++)
            if (fds[j] < fds[i]) {
                int x = fds[i];
                fds[i] = fds[j];
                fds[j] = x;
            }
    for (int i = 0; i < n; i++)
        printf("%d ", fds[i]);
    return 0;
}

static int run_cancel_target(void *arg)
{
    /* A shell in its own group, with a grandchild: both must be gone after the run. */
    struct weft_proc_opts o = {.stdout_mode = WEFT_STDIO_PIPE, .new_pgroup = true,
                               .kill_grace = 0.2};
    char *sh[] = {"sh", "-c", "sleep 100 & echo $!; wait", NULL};
    struct weft_proc_io io = {0};
    int r = weft_proc_run(sh, &o, &io);
    if (io.out != NULL)
        *(int *)arg = atoi(io.out);
    weft_proc_io_free(&io);
    return r;
}

static int run_main(void *arg)
{
    (void)arg;
    /* Finishing normally. */
    char *echo[] = {"echo", "hi", NULL};
    struct weft_proc_opts o = {.stdout_mode = WEFT_STDIO_PIPE};
    struct weft_proc_io io = {0};
    CHECK_EQ(weft_proc_run(echo, &o, &io), 0);
    CHECK_STR(io.out, "hi\n");
    CHECK_EQ(io.returncode, 0);
    weft_proc_io_free(&io);
    /* A deadline: the child is stopped (SIGTERM) and reaped before the call returns. */
    char *sl[] = {"sleep", "100", NULL};
    struct weft_proc_io io2 = {0};
    CHECK_EQ(weft_proc_run_dl(sl, &o, &io2, weft_deadline_in(0.05)), -ETIMEDOUT);
    CHECK_EQ(io2.returncode, -SIGTERM);
    weft_proc_io_free(&io2);
    /* Cancellation: the group goes, grandchild included; the stdout pipe the grandchild holds
     * open does not keep the call waiting. */
    int grandchild = 0;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, run_cancel_target, &grandchild), 0);
    CHECK_EQ(weft_sleep(0.2), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    (void)grandchild;
    /* A timeout scope around the run helper. */
    weft_timeout_t scope = {0};
    CHECK_EQ(weft_timeout_enter(&scope, 0.05), 0);
    int r = weft_proc_run(sl, NULL, NULL);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_timeout_exit(&scope, r), -ETIMEDOUT);
    return 0;
}

static void test_run_helper_stops_child(void)
{
    CHECK_EQ(weft_run(run_main, NULL), 0);
}

static const test_case_fn cases[] = {test_communicate,      test_pipes_are_streams,
                                     test_epipe_and_early_close, test_output_limit,
                                     test_100mb_through_cat, test_env_cwd_fds_groups,
                                     test_no_fd_leak,       test_run_helper_stops_child};
static const char *const names[] = {"test_communicate",      "test_pipes_are_streams",
                                    "test_epipe_and_early_close", "test_output_limit",
                                    "test_100mb_through_cat", "test_env_cwd_fds_groups",
                                    "test_no_fd_leak",       "test_run_helper_stops_child"};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list-fds") == 0)
        return list_fds();
    return test_main(argc, argv, names, cases, sizeof(cases) / sizeof(cases[0]));
}
