/*
 * weft-bench-taskgroup: one TaskGroup runs N trivial children (default 1,000,000); prints the
 * cost per child from weft_group_enter() to the end of weft_group_exit(), spawning included, in
 * wall-clock time and in CPU time of the thread (the latter is what counts on a shared core).
 *   weft-bench-taskgroup [N [BATCH]]   (run it pinned: taskset -c 0 weft-bench-taskgroup)
 * BATCH 0 (default) spawns every child before any runs, so all N are alive at once (memory
 * grows to N tasks); BATCH k > 0 yields after every k spawns, so children finish as the body
 * goes on and their memory is reused (the steady state of a long-running group).
 * One OS thread; prints one line "RESULT key=value ...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft.h>

static long arg_n = 1000000;
static long arg_batch; /* 0: spawn all children first; else yield after every `batch` spawns */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of this thread: what the benchmark costs even when the core is shared. */
static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int bench(void *arg)
{
    (void)arg;
    weft_group_t g;
    double c0 = cpu_s();
    double t0 = now_s();
    int r = weft_group_enter(&g);
    if (r < 0)
        return r;
    for (long i = 0; i < arg_n && r == 0; i++) {
        r = weft_group_spawn(&g, NULL, nothing, NULL);
        if (arg_batch > 0 && (i + 1) % arg_batch == 0 && r == 0)
            r = weft_yield(); /* let the children run: their memory is reused */
    }
    double t1 = now_s();
    r = weft_group_exit(&g, r, NULL);
    double t2 = now_s();
    double c2 = cpu_s();
    if (r < 0)
        return r;
    double n = (double)arg_n;
    printf("RESULT children=%ld batch=%ld ns_per_child=%.1f spawn_ns_per_child=%.1f "
           "cpu_ns_per_child=%.1f wall_s=%.4f\n",
           arg_n, arg_batch, (t2 - t0) * 1e9 / n, (t1 - t0) * 1e9 / n, (c2 - c0) * 1e9 / n,
           t2 - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        arg_n = atol(argv[1]);
    if (argc > 2)
        arg_batch = atol(argv[2]);
    if (arg_n <= 0 || arg_batch < 0) {
        fprintf(stderr, "usage: %s [N > 0 [BATCH >= 0]]\n", argv[0]);
        return 2;
    }
    int r = weft_run(bench, NULL);
    if (r < 0) {
        fprintf(stderr, "weft-bench-taskgroup: %s\n", weft_strerror(r));
        return 1;
    }
    return 0;
}
