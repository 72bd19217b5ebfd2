/*
 * Subprocesses: run several commands at once and capture their output, feed one its input, and
 * stop a stuck one with a timeout. The Python equivalent:
 *
 *     async def run(cmd):
 *         p = await asyncio.create_subprocess_shell(cmd, stdout=PIPE, stderr=PIPE)
 *         out, err = await p.communicate()
 *         return p.returncode, out
 *
 *     results = await asyncio.gather(*(run(c) for c in commands))
 *     async with asyncio.timeout(0.5):
 *         await run("sleep 30")          # TimeoutError; here the child is killed too
 */
#include <stdio.h>
#include <string.h>
#include <weft.h>

struct job {
    const char *cmd;
    struct weft_proc_io io;
    int err;
};

static int run_one(void *arg)
{
    struct job *j = arg;
    const struct weft_proc_opts opts = {.stdout_mode = WEFT_STDIO_PIPE,
                                        .stderr_mode = WEFT_STDIO_PIPE,
                                        .stdin_mode = WEFT_STDIO_PIPE};
    char *argv[] = {"/bin/sh", "-c", (char *)j->cmd, NULL};
    /* spawn + communicate + wait; on an error (or cancellation) the child is stopped */
    j->err = weft_proc_run(argv, &opts, &j->io);
    return j->err;
}

static int main_task(void *arg)
{
    (void)arg;
    /* 1. Several commands at once. */
    struct job jobs[] = {
        {.cmd = "echo hello from $$; sleep 0.2"},
        {.cmd = "uname -s; sleep 0.2"},
        {.cmd = "sort", .io = {.input = "pear\napple\nfig\n", .input_len = 15}},
        {.cmd = "echo oops >&2; exit 3"},
    };
    enum { N = sizeof(jobs) / sizeof(jobs[0]) };
    weft_task_t *t[N];
    int64_t t0 = weft_time(NULL);
    for (int i = 0; i < N; i++)
        weft_spawn(&t[i], run_one, &jobs[i]);
    weft_gather(t, N, NULL, 0);
    for (int i = 0; i < N; i++) {
        struct job *j = &jobs[i];
        printf("$ %s\n  returncode %d, stdout %zu bytes, stderr %zu bytes\n", j->cmd,
               j->io.returncode, j->io.out_len, j->io.err_len);
        if (j->io.out_len > 0)
            printf("  out: %.*s", (int)j->io.out_len, j->io.out);
        if (j->io.err_len > 0)
            printf("  err: %.*s", (int)j->io.err_len, j->io.err);
        weft_proc_io_free(&j->io);
        weft_task_release(t[i]);
    }
    printf("all %d in %.2f s (one after the other: > 0.4 s)\n\n", N,
           (double)(weft_time(NULL) - t0) / 1e9);

    /* 2. A stuck child and a timeout: the run helper kills it before returning. */
    weft_timeout_t to = {0};
    weft_timeout_enter(&to, 0.5);
    struct job stuck = {.cmd = "sleep 30"};
    int r = weft_timeout_exit(&to, run_one(&stuck));
    printf("$ sleep 30  (with a 0.5 s timeout)\n  %s, child stopped with returncode %d\n",
           weft_err_name(r), stuck.io.returncode);
    weft_proc_io_free(&stuck.io);

    /* 3. A long-lived child as streams: talk to `cat` line by line. */
    weft_proc_t *p;
    char *cat[] = {"cat", NULL};
    const struct weft_proc_opts po = {.stdin_mode = WEFT_STDIO_PIPE,
                                      .stdout_mode = WEFT_STDIO_PIPE};
    if (weft_proc_spawn(&p, cat, &po) == 0) {
        const char *line;
        size_t len;
        weft_stream_write(weft_proc_stdin(p), "ping\n", 5);
        if (weft_stream_readline(weft_proc_stdout(p), &line, &len) == 0)
            printf("\ncat echoed: %.*s", (int)len, line);
        weft_stream_close(weft_proc_stdin(p));
        int rc;
        weft_proc_wait(p, &rc);
        printf("cat exited with %d\n", rc);
        weft_proc_release(p);
    }
    return 0;
}

int main(void)
{
    return weft_run(main_task, NULL) < 0;
}
