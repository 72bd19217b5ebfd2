/*
 * Many mostly-idle tasks: N tasks (default 100,000) each sleep one second, as compact tasks
 * (WEFT_STACK_COMPACT: they share one stack and a sleeping one keeps only its few hundred bytes
 * of frames). Prints the wall time and the memory each sleeping task cost.
 *   many_sleepers [N] [own]      "own": stacks of their own instead (about 4 KiB each)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static long resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * 4096;
}

struct job {
    long n;
    int stack_mode;
};

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(1.0); /* suspends this task only */
}

static int main_task(void *arg)
{
    struct job *job = arg;
    weft_task_t **t = calloc((size_t)job->n, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    const struct weft_task_opts opts = {.stack_mode = job->stack_mode};
    long rss0 = resident_bytes();
    int64_t t0 = weft_time(NULL);
    int err = 0;
    long spawned = 0;
    for (; spawned < job->n && err == 0; spawned++)
        err = weft_spawn_opts(&t[spawned], sleeper, NULL, &opts);
    if (err == 0)
        err = weft_yield(); /* every task runs up to its sleep */
    long rss1 = resident_bytes();
    for (long i = 0; i < spawned; i++) {
        if (t[i] == NULL)
            continue;
        int r = weft_join(t[i]);
        if (r < 0 && err == 0)
            err = r;
        weft_task_release(t[i]);
    }
    double wall = (double)(weft_time(NULL) - t0) / 1e9;
    free(t);
    if (err < 0) {
        fprintf(stderr, "many_sleepers: %s\n", weft_strerror(err));
        return err;
    }
    printf("%ld %s tasks slept 1 s in %.2f s; %.0f bytes of memory per sleeping task\n", job->n,
           job->stack_mode == WEFT_STACK_COMPACT ? "compact" : "own-stack", wall,
           (double)(rss1 - rss0) / (double)job->n);
    return 0;
}

int main(int argc, char **argv)
{
    struct job job = {.n = 100000, .stack_mode = WEFT_STACK_COMPACT};
    if (argc > 1)
        job.n = atol(argv[1]);
    if (argc > 2 && strcmp(argv[2], "own") == 0)
        job.stack_mode = WEFT_STACK_OWN;
    if (job.n <= 0) {
        fprintf(stderr, "usage: %s [N] [own]\n", argv[0]);
        return 2;
    }
    return weft_run(main_task, &job) < 0;
}
