/*
 * communicate (asyncio's Process.communicate) and the run helper (Trio's run_process). The three
 * pipes are served at once, each by its own task: the input is fed in slices, each drained
 * before the next (the writer's queue stays near one slice however large the input), while stdout
 * and stderr are read to their end into growing buffers. A child that writes a lot before it
 * reads all its input therefore never deadlocks against its parent.
 */
#include "proc/proc.h"

#include <signal.h>
#include <string.h>

#define FEED_SLICE (256 * 1024)
#define READ_MIN   (64 * 1024)

/* One pipe's work, on the heap: the caller may be a compact task whose stack moves. */
struct pipe_job {
    weft_stream_t *s;
    const char *input; /* feed: what is left to write */
    size_t left;
    size_t limit;      /* read: the most bytes to keep, 0 = none */
    int64_t deadline;
    char *buf;         /* read: what came, NUL-terminated */
    size_t len, cap;
};

static int feed(void *arg)
{
    struct pipe_job *j = arg;
    int r = 0;
    while (j->left > 0) {
        size_t n = j->left < FEED_SLICE ? j->left : FEED_SLICE;
        r = weft_stream_write(j->s, j->input, n);
        if (r < 0)
            break;
        j->input += n;
        j->left -= n;
        r = weft_stream_drain_dl(j->s, j->deadline);
        if (r < 0)
            break;
    }
    if (r == -EPIPE || r == -ECONNRESET)
        r = 0; /* the child stopped reading: not an error (asyncio ignores BrokenPipeError) */
    if (r == 0)
        weft_stream_close(j->s); /* end of input */
    return r;
}

static int drain(void *arg)
{
    struct pipe_job *j = arg;
    for (;;) {
        if (j->cap - j->len < READ_MIN / 2) {
            size_t cap = j->cap ? j->cap * 2 : READ_MIN;
            if (j->limit != 0 && cap > j->limit + 2)
                cap = j->limit + 2; /* room for one byte too many, and the NUL */
            if (cap <= j->len + 1 || cap < j->cap)
                cap = j->len + 2;
            char *nb = weft__realloc(j->buf, cap);
            if (nb == NULL)
                return -ENOMEM;
            j->buf = nb;
            j->cap = cap;
        }
        ssize_t n = weft_stream_read_dl(j->s, j->buf + j->len, j->cap - j->len - 1, j->deadline);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        j->len += (size_t)n;
        j->buf[j->len] = '\0';
        if (j->limit != 0 && j->len > j->limit) {
            j->len = j->limit;
            j->buf[j->len] = '\0';
            return WEFT_ELIMIT;
        }
    }
}

/* Run `fn(job)` in a helper task. */
static int helper(weft_task_t **out, weft_task_fn fn, struct pipe_job *j, const char *name)
{
    const struct weft_task_opts o = {.name = name, .stack_mode = WEFT_STACK_OWN};
    return weft_spawn_opts(out, fn, j, &o);
}

int weft_proc_communicate_dl(weft_proc_t *p, struct weft_proc_io *io, int64_t deadline)
{
    if (p == NULL || io == NULL)
        return -EINVAL;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (p->loop != t->fut.loop)
        return -EINVAL;
    io->out = io->err = NULL;
    io->out_len = io->err_len = 0;
    struct pipe_job *jobs = weft__calloc(3, sizeof(*jobs));
    if (jobs == NULL)
        return -ENOMEM;
    p->refs++;
    weft_task_t *tasks[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        jobs[i].s = p->io[i];
        jobs[i].deadline = deadline;
    }
    jobs[0].input = io->input;
    jobs[0].left = io->input != NULL ? io->input_len : 0;
    jobs[1].limit = io->out_limit;
    jobs[2].limit = io->err_limit;
    int r = 0;
    if (p->io[0] != NULL && !weft_stream_is_closing(p->io[0])) {
        if (jobs[0].left == 0)
            weft_stream_close(p->io[0]);
        else
            r = helper(&tasks[0], feed, &jobs[0], "weft-proc-stdin");
    }
    if (r == 0 && p->io[2] != NULL && p->io[1] != NULL)
        r = helper(&tasks[2], drain, &jobs[2], "weft-proc-stderr");
    /* The caller reads one output itself. */
    int own = p->io[1] != NULL ? 1 : p->io[2] != NULL ? 2 : -1;
    if (r == 0 && own >= 0)
        r = drain(&jobs[own]);
    if (r < 0) {
        for (int i = 0; i < 3; i++) {
            if (tasks[i] != NULL)
                weft_task_cancel(tasks[i], NULL);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (tasks[i] == NULL)
            continue;
        int hr;
        do {
            hr = weft_join(tasks[i]); /* a cancel of ours goes to the helper; it ends soon */
        } while (!weft_task_done(tasks[i]));
        if (hr == -ECANCELED && weft_task_cancelling(t) > 0)
            r = r < 0 ? r : -ECANCELED;
        if (r == 0 && hr < 0)
            r = hr;
        weft_task_release(tasks[i]);
    }
    io->out = jobs[1].buf;
    io->out_len = jobs[1].len;
    io->err = jobs[2].buf;
    io->err_len = jobs[2].len;
    weft__free(jobs);
    if (r == 0)
        r = weft__proc_wait(p, t, deadline, true);
    if (r == 0)
        io->returncode = p->returncode;
    weft_proc_release(p);
    return r;
}

int weft_proc_communicate(weft_proc_t *p, struct weft_proc_io *io)
{
    return weft_proc_communicate_dl(p, io, WEFT_NO_DEADLINE);
}

void weft_proc_io_free(struct weft_proc_io *io)
{
    if (io == NULL)
        return;
    weft__free(io->out);
    weft__free(io->err);
    io->out = io->err = NULL;
    io->out_len = io->err_len = 0;
}

/*
 * Stop a child the run helper gave up on: SIGTERM to its group, `grace` seconds, SIGKILL, reap.
 * Cancellations that come meanwhile are held back: the child must not outlive the call.
 */
static void stop_child(weft_proc_t *p, weft_task_t *t, double grace)
{
    if (grace == 0)
        grace = 5.0;
    if (grace > 0) {
        weft__proc_signal_group(p, SIGTERM);
        int64_t dl = weft_deadline_in(grace);
        while (weft__proc_wait(p, t, dl, false) == -ECANCELED) {
        }
    }
    /* The child is at most a zombie now or still running: its group id is still reserved, so
     * what the group left behind can be killed too. */
    weft__proc_signal_group(p, SIGKILL);
    int r;
    do {
        r = weft__proc_wait(p, t, WEFT_NO_DEADLINE, true);
    } while (r == -ECANCELED || r == -ENOMEM);
}

int weft_proc_run_dl(char *const argv[], const struct weft_proc_opts *opts,
                     struct weft_proc_io *io, int64_t deadline)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    weft_proc_t *p;
    err = weft_proc_spawn(&p, argv, opts);
    if (err < 0)
        return err;
    int r = io != NULL ? weft_proc_communicate_dl(p, io, deadline)
                       : weft_proc_wait_dl(p, NULL, deadline);
    if (r < 0) {
        stop_child(p, t, opts != NULL ? opts->kill_grace : 0);
        if (io != NULL)
            io->returncode = p->returncode;
    }
    weft_proc_release(p);
    return r;
}

int weft_proc_run(char *const argv[], const struct weft_proc_opts *opts, struct weft_proc_io *io)
{
    return weft_proc_run_dl(argv, opts, io, WEFT_NO_DEADLINE);
}
