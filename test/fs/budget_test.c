/*
 * The inline budget (docs/files.md, "The inline budget"), once per engine like every file test:
 * a task reading a cached file in a tight loop completes its reads without suspending (a
 * page-cache read on the loop's thread), and must still let the other tasks, the timers and the
 * I/O poll run. Before the budget, such a task starved its loop for as long as it read.
 */
#define _GNU_SOURCE /* preadv2 */
#include "fstest.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static char path[300];
static int want_engine;

#define FILE_SIZE (256 << 10)

/* ---- a reader, a sleeper and a yielder on the real clock ---- */

static int fd;
static volatile bool slept, yielded;
static int64_t sleep_late;  /* ns after its deadline that the sleeper woke */
static long reads_at_sleep; /* the reader's count when the sleeper woke */
static long reads;

static int reader(void *arg)
{
    char buf[4096];
    int64_t cap = test_mono_ns() + 5000000000; /* the old code read this long, then failed */
    long off = 0;
    while (!(slept && yielded) && test_mono_ns() < cap) {
        CHECK_EQ(weft_file_pread(fd, buf, sizeof(buf), off), sizeof(buf));
        off = (off + 4096) % FILE_SIZE;
        reads++;
    }
    return 0;
}

static int sleeper(void *arg)
{
    int64_t due = test_mono_ns() + 2000000; /* 2 ms */
    CHECK_EQ(weft_sleep(0.002), 0);
    sleep_late = test_mono_ns() - due;
    reads_at_sleep = reads;
    slept = true;
    return 0;
}

static int yielder(void *arg)
{
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(weft_yield(), 0);
    yielded = true;
    return 0;
}

static int timers_main(void *arg)
{
    ft_check_engine(want_engine);
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    /* The sleeper and the yielder start first: the sleeper's timer is armed before the
     * reader's first read. */
    weft_task_t *t[3];
    CHECK_EQ(weft_spawn(&t[0], sleeper, NULL), 0);
    CHECK_EQ(weft_spawn(&t[1], yielder, NULL), 0);
    CHECK_EQ(weft_spawn(&t[2], reader, NULL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_file_close(fd), 0);
    fprintf(stderr, "reads %ld, sleeper woke %.3f ms late after %ld reads\n", reads,
            (double)sleep_late / 1e6, reads_at_sleep);
    /* The other tasks ran while the reader read: it stopped because both were done. */
    CHECK(slept && yielded);
    CHECK(reads > reads_at_sleep);
    /* A generous bound: the budget keeps the lateness to one of the reader's turns (tens of
     * us); a loaded machine adds its own. The old code: the whole 5 s of reading. */
    CHECK(sleep_late < 500000000);
    return 0;
}

static void test_timers_and_tasks_run(void)
{
    slept = yielded = false;
    reads = 0;
    CHECK_EQ(weft_run(timers_main, NULL), 0);
}

/* ---- the budget's count, exactly ---- */

static long ticks; /* the other task's turns */
static bool stop;

static int ticker(void *arg)
{
    while (!stop) {
        ticks++;
        CHECK_EQ(weft_yield(), 0);
    }
    return 0;
}

/* The most reads of `size` bytes the reader made in a row without the ticker running, over
 * `n` reads; `*after_yield`: in a row right after a yield of its own (a new turn). */
static long longest_run(size_t size, int n, long *after_yield)
{
    char *buf = malloc(size);
    CHECK(buf != NULL);
    long best = 0, run = 0, seen = ticks;
    long off = 0;
    for (int i = 0; i < n; i++) {
        CHECK_EQ(weft_file_pread(fd, buf, size, off), (ssize_t)size);
        off = (off + (long)size) % FILE_SIZE;
        if (ticks != seen) {
            seen = ticks;
            run = 0;
        }
        run++;
        if (run > best)
            best = run;
    }
    /* A yield starts a new turn: a full budget again. */
    CHECK_EQ(weft_yield(), 0);
    seen = ticks;
    *after_yield = 0;
    while (*after_yield < 10 * WEFT__FS_BUDGET) {
        CHECK_EQ(weft_file_pread(fd, buf, size, 0), (ssize_t)size);
        if (ticks != seen)
            break; /* this read came after the ticker's turn */
        (*after_yield)++;
    }
    free(buf);
    return best;
}

static bool nowait_works(void)
{
    char b[16];
    struct iovec v = {b, sizeof(b)};
    return preadv2(fd, &v, 1, 0, RWF_NOWAIT) == (ssize_t)sizeof(b);
}

static int count_main(void *arg)
{
    ft_check_engine(want_engine);
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    stop = false;
    ticks = 0;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    long after;
    /* 4 KiB reads cost one unit each: at most a budget of them in a row. */
    long r4 = longest_run(4096, 2000, &after);
    fprintf(stderr, "4 KiB reads in a row: at most %ld, after a yield %ld\n", r4, after);
    CHECK(r4 >= 1 && r4 <= WEFT__FS_BUDGET);
    CHECK(after >= 1 && after <= WEFT__FS_BUDGET);
    /* Where the pool engine's cached reads complete inline (io_uring may punt some to its
     * workers, which suspends the task too), the budget is used to the full, and refilled
     * by a suspension. */
    if (want_engine == WEFT_FILE_POOL && nowait_works()) {
        CHECK_EQ(r4, WEFT__FS_BUDGET);
        CHECK_EQ(after, WEFT__FS_BUDGET);
    }
    /* 64 KiB reads cost 1 + 8 units: four fill the budget. */
    long r64 = longest_run(65536, 200, &after);
    fprintf(stderr, "64 KiB reads in a row: at most %ld, after a yield %ld\n", r64, after);
    CHECK(r64 >= 1 && r64 <= (WEFT__FS_BUDGET + 8) / 9);
    stop = true;
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_budget_count(void)
{
    /* Every cached read inline (none handed to the pool while the ticker is ready): the
     * count is then the budget's alone. */
    int cap = weft__fs_offload_max;
    weft__fs_offload_max = 0;
    CHECK_EQ(run_virtual(count_main, NULL), 0);
    weft__fs_offload_max = cap;
}

/* ---- a lone reader: never more than a yield per budget ---- */

static int lone_main(void *arg)
{
    ft_check_engine(want_engine);
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    char buf[4096];
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(weft_file_pread(fd, buf, sizeof(buf), (i * 4096) % FILE_SIZE), 4096);
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_lone_reader(void)
{
    CHECK_EQ(run_virtual(lone_main, NULL), 0);
}

static void setup(void)
{
    want_engine = ft_engine_wanted();
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/weft-budget-XXXXXX", tmp != NULL ? tmp : "/tmp");
    int f = mkstemp(path);
    CHECK(f >= 0);
    char *b = malloc(FILE_SIZE);
    CHECK(b != NULL);
    for (int i = 0; i < FILE_SIZE; i++)
        b[i] = (char)i;
    CHECK_EQ(write(f, b, FILE_SIZE), FILE_SIZE);
    free(b);
    close(f);
}

static void test_all(void)
{
    setup();
    const char *only = getenv("FS_CASE");
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"timers_and_tasks_run", test_timers_and_tasks_run},
        {"budget_count", test_budget_count},
        {"lone_reader", test_lone_reader},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s (%s)\n", cases[i].name,
                want_engine == WEFT_FILE_URING ? "uring" : "pool");
        cases[i].fn();
    }
    unlink(path);
}

TEST_MAIN(test_all)
