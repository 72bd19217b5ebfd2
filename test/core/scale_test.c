/*
 * Scale: 1,000,000 concurrent sleeping tasks on a stock kernel (vm.max_map_count 65530), on the
 * virtual clock; all are joined and checked. Prints the resident bytes per sleeping task
 * (RSS from /proc/self/statm). 100,000 tasks under ASan; skipped (77) under valgrind, TSan or
 * with WEFT_SKIP_SLOW=1 (the valgrind and qemu stages of scripts/test.sh). WEFT_SCALE_TASKS=N
 * forces the count. The same with compact tasks (WEFT_STACK_COMPACT), whose sleeping frames
 * live in exact-size heap images: there it also checks they cost under 1 KiB each.
 *
 * Each sleeping task touches one fresh page (the top of its stack), so the run costs one page
 * fault per task. On virtual machines a fault can cost 50+ microseconds instead of under one,
 * which would put 1,000,000 tasks past the test timeout: the count is then lowered to what fits
 * TIME_BUDGET_S (never below MIN_COUNT) and the reduction is printed.
 */
#include "test.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TIME_BUDGET_S 25.0
#define PER_TASK_NS   4000.0 /* everything but the page faults, generously */
#if defined(__SANITIZE_ADDRESS__)
#define FULL_COUNT      100000
#define MIN_COUNT       10000
#define FAULTS_PER_TASK 30.0 /* + the stack's shadow, unpoisoned when a task takes it */
#else
#define FULL_COUNT      1000000
#define MIN_COUNT       100000
#define FAULTS_PER_TASK 1.0
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static long ntasks;
static bool compact;
static weft_task_t **tasks;
static int woke;

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;
    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The cost of one page fault on a fresh anonymous page, in ns (sparse, like task stacks). */
static double fault_ns(void)
{
    const size_t n = 2048, stride = (size_t)264 << 10;
    char *m = mmap(NULL, n * stride, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        m[i * stride] = 1;
    double t = (now_s() - t0) * 1e9 / (double)n;
    munmap(m, n * stride);
    return t;
}

static int sleeper(void *arg)
{
    /* Deadlines spread over 1000 distinct values: the timer heap holds them all. */
    long i = (long)arg;
    int r = weft_sleep(10.0 + (double)(i % 1000) * 1e-3);
    if (r == 0)
        woke++;
    return r;
}

static int scale_main(void *arg)
{
    (void)arg;
    long rss0 = test_rss_bytes();
    for (long i = 0; i < ntasks; i++) {
        const struct weft_task_opts o = {.stack_mode =
                                             compact ? WEFT_STACK_COMPACT : WEFT_STACK_OWN};
        int err = weft_spawn_opts(&tasks[i], sleeper, (void *)i, &o);
        if (err < 0) {
            fprintf(stderr, "spawn %ld failed: %s\n", i, weft_strerror(err));
            CHECK(0);
        }
    }
    CHECK_EQ(weft_yield(), 0); /* one pass: every task runs until it sleeps */
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), (size_t)ntasks + 1);
    CHECK_EQ(woke, 0);
    long rss1 = test_rss_bytes();
    int maps = count_maps();
    double per_task = (double)(rss1 - rss0) / (double)ntasks;
    fprintf(stderr, "%ld sleeping %s tasks: %.0f bytes of RSS each, %d mappings\n", ntasks,
            compact ? "compact" : "own-stack", per_task, maps);
    CHECK(maps < 65530);
#if !defined(__SANITIZE_ADDRESS__)
    if (compact)
        CHECK(per_task < 1024); /* a task struct, a timer slot and a few hundred bytes of frames */
#endif
    for (long i = 0; i < ntasks; i++) {
        CHECK_EQ(weft_join(tasks[i]), 0);
        CHECK(weft_task_done(tasks[i]));
        weft_task_release(tasks[i]);
    }
    CHECK_EQ(woke, ntasks);
    CHECK_EQ(weft_time(NULL), 10999000000LL); /* the last deadline, exactly */
    CHECK_EQ(weft_all_tasks(NULL, NULL, 0), 1);
    return 0;
}

static void run_scale(bool compact_tasks)
{
    compact = compact_tasks;
    const char *skip = getenv("WEFT_SKIP_SLOW");
    bool valgrind = false;
#ifdef HAVE_VALGRIND_H
    valgrind = RUNNING_ON_VALGRIND;
#endif
#if defined(__SANITIZE_THREAD__)
    valgrind = true; /* TSan: as slow, and this test has no threads to check */
#endif
    if ((skip != NULL && strcmp(skip, "0") != 0) || valgrind) {
        fprintf(stderr, "skipped (WEFT_SKIP_SLOW, valgrind or TSan)\n");
        exit(77);
    }
    ntasks = FULL_COUNT;
    const char *n = getenv("WEFT_SCALE_TASKS");
    if (n != NULL && atol(n) > 0) {
        ntasks = atol(n);
    } else {
        double fault = fault_ns();
        double faults = compact ? 0.25 : FAULTS_PER_TASK; /* ~1 KiB or less each */
        long fits = (long)(TIME_BUDGET_S * 1e9 / (fault * faults + PER_TASK_NS));
        if (fits < ntasks) {
            ntasks = fits < MIN_COUNT ? MIN_COUNT : fits;
            fprintf(stderr,
                    "page faults cost %.1f us here: %ld tasks instead of %d "
                    "(WEFT_SCALE_TASKS=N forces a count)\n",
                    fault / 1000, ntasks, FULL_COUNT);
        }
    }
    tasks = calloc((size_t)ntasks, sizeof(*tasks));
    CHECK(tasks != NULL);
    memset(tasks, 1, (size_t)ntasks * sizeof(*tasks)); /* resident before the baseline */
    woke = 0;
    CHECK_EQ(run_virtual(scale_main, NULL), 0);
    free(tasks);
}

static void test_million_sleeping_tasks(void)
{
    run_scale(false);
}

static void test_million_compact_tasks(void)
{
    run_scale(true);
}

TEST_MAIN(test_million_sleeping_tasks, test_million_compact_tasks)
