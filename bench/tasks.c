/*
 * weft-bench-tasks: the tasks contract of the peers harness (../shared/bench/peers/README.md).
 *   weft-bench-tasks fanout N | spawn-seq N | spawn-all N | switch SECS | pingpong SECS
 * One OS thread; prints one line "RESULT key=value ...".
 * fanout runs its sleepers as compact tasks (WEFT_STACK_COMPACT: the mode meant for very many
 * mostly-idle tasks), the other modes on stacks of their own. WEFT_BENCH_STACK=own or =compact
 * in the environment picks one mode for every workload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long arg_n;
static double arg_secs;
static struct weft_task_opts task_opts; /* .stack_mode: see main() */

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(1.0);
}

static int fanout(void *arg)
{
    (void)arg;
    long n = arg_n;
    weft_task_t **t = malloc((size_t)n * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int err = weft_spawn_opts(&t[i], sleeper, NULL, &task_opts);
        if (err < 0)
            return err;
    }
    double t1 = now_s();
    for (long i = 0; i < n; i++) {
        int r = weft_join(t[i]);
        if (r < 0)
            return r;
        weft_task_release(t[i]);
    }
    double t2 = now_s();
    printf("RESULT wall_s=%.4f spawn_s=%.4f\n", t2 - t0, t1 - t0);
    free(t);
    return 0;
}

static int spawn_seq(void *arg)
{
    (void)arg;
    long n = arg_n;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        weft_task_t *t;
        int err = weft_spawn_opts(&t, nothing, NULL, &task_opts);
        if (err < 0)
            return err;
        weft_join(t);
        weft_task_release(t);
    }
    double t1 = now_s();
    printf("RESULT ns_per_task=%.1f\n", (t1 - t0) * 1e9 / (double)n);
    return 0;
}

static int spawn_all(void *arg)
{
    (void)arg;
    long n = arg_n;
    weft_task_t **t = malloc((size_t)n * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int err = weft_spawn_opts(&t[i], nothing, NULL, &task_opts);
        if (err < 0)
            return err;
    }
    for (long i = 0; i < n; i++) {
        weft_join(t[i]);
        weft_task_release(t[i]);
    }
    double t1 = now_s();
    printf("RESULT ns_per_task=%.1f\n", (t1 - t0) * 1e9 / (double)n);
    free(t);
    return 0;
}

static volatile int stop_flag;
static long yields[2];

static int yielder(void *arg)
{
    long *count = arg;
    while (!stop_flag) {
        for (int i = 0; i < 64; i++)
            weft_yield();
        *count += 64;
    }
    return 0;
}

static int switch_bench(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    double t0 = now_s();
    weft_spawn_opts(&a, yielder, &yields[0], &task_opts);
    weft_spawn_opts(&b, yielder, &yields[1], &task_opts);
    /* The timer is checked between iterations; it fires while both yield. */
    weft_sleep(arg_secs);
    stop_flag = 1;
    weft_join(a);
    weft_join(b);
    double t1 = now_s();
    weft_task_release(a);
    weft_task_release(b);
    printf("RESULT ns_per_switch=%.2f\n", (t1 - t0) * 1e9 / (double)(yields[0] + yields[1]));
    return 0;
}

/*
 * pingpong: two tasks hand a token back and forth through the library's wake-up primitive, a
 * pair of events: each waits for its own, clears it, and sets the other's.
 */
static weft_event_t slot[2];
static long handoffs;

static int pinger(void *arg)
{
    int me = (int)(long)arg;
    for (;;) {
        int r = weft_event_wait(&slot[me]);
        weft_event_clear(&slot[me]);
        if (r < 0 || stop_flag) {
            weft_event_set(&slot[!me]);
            return 0;
        }
        handoffs++;
        weft_event_set(&slot[!me]);
    }
}

static int pingpong(void *arg)
{
    (void)arg;
    weft_event_init(&slot[0]);
    weft_event_init(&slot[1]);
    weft_task_t *a, *b;
    double t0 = now_s();
    weft_spawn_opts(&a, pinger, (void *)0L, &task_opts);
    weft_spawn_opts(&b, pinger, (void *)1L, &task_opts);
    weft_event_set(&slot[0]);
    weft_sleep(arg_secs);
    stop_flag = 1;
    weft_join(a);
    weft_join(b);
    double t1 = now_s();
    weft_task_release(a);
    weft_task_release(b);
    printf("RESULT ns_per_switch=%.2f\n", (t1 - t0) * 1e9 / (double)handoffs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s fanout N | spawn-seq N | spawn-all N | switch SECS | pingpong SECS\n",
                argv[0]);
        return 2;
    }
    weft_task_fn fn;
    const char *mode = argv[1];
    arg_n = atol(argv[2]);
    arg_secs = atof(argv[2]);
    const char *env = getenv("WEFT_BENCH_STACK");
    task_opts.stack_mode = strcmp(mode, "fanout") == 0 ? WEFT_STACK_COMPACT : WEFT_STACK_OWN;
    if (env != NULL && strcmp(env, "own") == 0)
        task_opts.stack_mode = WEFT_STACK_OWN;
    else if (env != NULL && strcmp(env, "compact") == 0)
        task_opts.stack_mode = WEFT_STACK_COMPACT;
    if (strcmp(mode, "fanout") == 0)
        fn = fanout;
    else if (strcmp(mode, "spawn-seq") == 0)
        fn = spawn_seq;
    else if (strcmp(mode, "spawn-all") == 0)
        fn = spawn_all;
    else if (strcmp(mode, "switch") == 0)
        fn = switch_bench;
    else if (strcmp(mode, "pingpong") == 0)
        fn = pingpong;
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    int r = weft_run(fn, NULL);
    if (r < 0) {
        fprintf(stderr, "weft-bench-tasks: %s\n", weft_strerror(r));
        return 1;
    }
    return 0;
}
