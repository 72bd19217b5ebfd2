/*
 * The pool engine's reader (src/fs/drain.c; docs/files.md, "Using a second core"): cached reads
 * handed to one pool thread in batches, through a lock-free list, with their completions posted
 * to the loop in one go. Checked here:
 *   - batched reads return the right bytes into the right buffers (random offsets and lengths,
 *     short reads at the end of the file, reads past it, reads at the file position);
 *   - what RWF_NOWAIT cannot read (an empty pipe) comes back to the task and goes to the pool;
 *   - reads waiting on the reader's list (its job queued behind other pool work) are taken back
 *     at once by a cancel or a deadline, their buffers untouched, while the reads around them in
 *     the same batch complete, in the order they were handed over;
 *   - the loop may close while the reader's queued job still holds reads taken back (ASan);
 *   - a flood of reads takes turns with weft_to_thread() work on a pool with one general thread;
 *   - once the reads stop, the reader and the pool threads sleep: an idle loop uses no CPU.
 * The reads are handed over even where the engine would keep them inline (a lone task, one CPU):
 * weft__fs_offload_always. The io_uring run of the file tests is skipped (exit 77): the reader
 * is the pool engine's.
 */
#include "test.h"
#include "fs/fs.h"

#include <fcntl.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

static char path[300];

#define FILE_SIZE ((1 << 20) + 100) /* not a whole number of blocks: short reads at the end */

static uint8_t pattern(int64_t i)
{
    return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ 0x5a);
}

static bool same(const uint8_t *b, int64_t off, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        if (b[i] != pattern(off + i))
            return false;
    return true;
}

static const struct weft_loop_opts pool_opts = {.file_engine = WEFT_FILE_POOL};

static int run_pool(weft_task_fn fn, void *arg)
{
    weft__fs_offload_always = true;
    int r = weft_run_opts(fn, arg, &pool_opts);
    weft__fs_offload_always = false;
    return r;
}

/* A pool with one general thread: the reader and weft_to_thread() work share it. */
static void small_pool(void)
{
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(weft_pool_set_size(2), 0);
}

static void default_pool(void)
{
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(weft_pool_set_size(0), 0);
}

/* ---- many readers, random offsets and lengths ---- */

static int fd;
static long bad;

static int random_reader(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    uint8_t buf[9000];
    for (int i = 0; i < 150; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t off = (int64_t)(x % (FILE_SIZE + 5000)); /* some past the end */
        size_t len = 1 + (size_t)((x >> 32) % sizeof(buf));
        memset(buf, 0xee, sizeof(buf));
        ssize_t n = weft_file_pread(fd, buf, len, off);
        int64_t want = off >= FILE_SIZE                 ? 0
                       : (int64_t)len < FILE_SIZE - off ? (int64_t)len
                                                        : FILE_SIZE - off;
        if (n != want || !same(buf, off, n) || (n < (ssize_t)len && buf[n] != 0xee))
            bad++;
    }
    return 0;
}

/* One task reads the whole file at its position (offset -1) while the others read around it. */
static int positional_reader(void *arg)
{
    (void)arg;
    int f2 = weft_file_open(path, O_RDONLY, 0);
    CHECK(f2 >= 0);
    uint8_t buf[1000];
    int64_t off = 0;
    for (;;) {
        ssize_t n = weft_file_read(f2, buf, sizeof(buf));
        CHECK(n >= 0);
        if (n == 0)
            break;
        CHECK(same(buf, off, n));
        off += n;
    }
    CHECK_EQ(off, FILE_SIZE);
    CHECK_EQ(weft_file_close(f2), 0);
    return 0;
}

static int batches_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_file_engine(), WEFT_FILE_POOL);
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    unsigned long before = atomic_load(&weft__fs_drain_reads);
    enum { N = 48 };
    weft_task_t *t[N + 1];
    for (int i = 0; i < N; i++)
        CHECK_EQ(weft_spawn(&t[i], random_reader, (void *)(uintptr_t)(i + 1)), 0);
    CHECK_EQ(weft_spawn(&t[N], positional_reader, NULL), 0);
    for (int i = 0; i <= N; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(bad, 0);
    unsigned long made = atomic_load(&weft__fs_drain_reads) - before;
    fprintf(stderr, "reads made by the reader: %lu of %d\n", made, N * 150 + FILE_SIZE / 1000);
    CHECK(made >= (unsigned long)N * 150); /* every read went through it */
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_reader_batches(void)
{
    CHECK_EQ(run_pool(batches_main, NULL), 0);
}

/* ---- an empty pipe: NOWAIT cannot read it, the pool waits for the data ---- */

static int pp[2];

static int pipe_writer(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(write(pp[1], "hello", 5), 5);
    return 0;
}

static int pipe_main(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe(pp), 0);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, pipe_writer, NULL), 0);
    char buf[16];
    CHECK_EQ(weft_file_read(pp[0], buf, sizeof(buf)), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(weft_join(w), 0);
    weft_task_release(w);
    close(pp[0]);
    close(pp[1]);
    return 0;
}

static void test_reader_pipe(void)
{
    CHECK_EQ(run_pool(pipe_main, NULL), 0);
}

/* ---- reads waiting on the list: cancel, deadline, order ---- */

static sem_t release;
static atomic_int blocking;

static int block_fn(void *arg)
{
    (void)arg;
    atomic_store(&blocking, 1);
    while (sem_wait(&release) != 0)
        ;
    return 0;
}

static int blocker(void *arg)
{
    (void)arg;
    return weft_to_thread(block_fn, NULL);
}

/* Wait until the pool's one general thread runs block_fn. */
static void block_pool(weft_task_t **b)
{
    atomic_store(&blocking, 0);
    CHECK_EQ(weft_spawn(b, blocker, NULL), 0);
    while (!atomic_load(&blocking))
        CHECK_EQ(weft_sleep(0.001), 0);
}

struct rd {
    int64_t off;
    int64_t deadline; /* or WEFT_NO_DEADLINE */
    uint8_t buf[4096];
    ssize_t n;
};

static int order[16], norder;

static struct rd rds[10];

static int ordered_reader(void *arg)
{
    int i = (int)(uintptr_t)arg;
    struct rd *r = &rds[i];
    memset(r->buf, 0xaa, sizeof(r->buf));
    r->n = weft_file_pread_dl(fd, r->buf, sizeof(r->buf), r->off, r->deadline);
    order[norder++] = i;
    return 0;
}

static bool untouched(const uint8_t *b)
{
    for (int i = 0; i < 4096; i++)
        if (b[i] != 0xaa)
            return false;
    return true;
}

static int cancel_main(void *arg)
{
    (void)arg;
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    weft_task_t *b;
    block_pool(&b);
    /* Ten reads handed over in this order; the reader's job waits behind block_fn. Read 3 is
     * cancelled, read 6 has a deadline 250 ms away (TSan makes a task in milliseconds). */
    weft_task_t *t[10];
    norder = 0;
    for (int i = 0; i < 10; i++) {
        rds[i].off = (int64_t)i * 8192 + 3;
        rds[i].deadline = i == 6 ? weft_time(NULL) + 250000000 : WEFT_NO_DEADLINE;
        CHECK_EQ(weft_spawn(&t[i], ordered_reader, (void *)(uintptr_t)i), 0);
    }
    CHECK_EQ(weft_yield(), 0); /* each makes its read: handed over, parked */
    for (int i = 0; i < 10; i++)
        CHECK(!weft_task_done(t[i]));
    unsigned long before = atomic_load(&weft__fs_drain_reads);
    /* Taken back at once, while the reader still cannot run. */
    CHECK(weft_task_cancel(t[3], NULL));
    CHECK_EQ(weft_join(t[3]), 0);
    CHECK_EQ(rds[3].n, -ECANCELED);
    CHECK_EQ(weft_join(t[6]), 0);
    CHECK_EQ(rds[6].n, -ETIMEDOUT);
    CHECK(untouched(rds[3].buf));
    CHECK(untouched(rds[6].buf));
    CHECK_EQ(atomic_load(&weft__fs_drain_reads), before);
    for (int i = 0; i < 10; i++)
        if (i != 3 && i != 6)
            CHECK(!weft_task_done(t[i]));
    /* The reader runs: one batch, completions in the order handed over. */
    CHECK_EQ(sem_post(&release), 0);
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(b);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
        if (i == 3 || i == 6)
            continue;
        CHECK_EQ(rds[i].n, 4096);
        CHECK(same(rds[i].buf, rds[i].off, 4096));
    }
    CHECK(untouched(rds[3].buf));
    CHECK(untouched(rds[6].buf));
    static const int want[] = {3, 6, 0, 1, 2, 4, 5, 7, 8, 9};
    CHECK_EQ(norder, 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(order[i], want[i]);
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_reader_cancel(void)
{
    small_pool();
    CHECK_EQ(run_pool(cancel_main, NULL), 0);
    default_pool();
}

/* ---- the loop closes while the reader's job, still queued, holds a read taken back ---- */

static int close_main(void *arg)
{
    (void)arg;
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    weft_task_t *b, *t;
    block_pool(&b);
    rds[0].off = 0;
    rds[0].deadline = WEFT_NO_DEADLINE;
    CHECK_EQ(weft_spawn(&t, ordered_reader, (void *)(uintptr_t)0), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(!weft_task_done(t));
    weft_task_release(t);
    weft_task_release(b);
    /* weft_run cancels both: the read is taken back, the blocker's job abandoned. The loop
     * closes; the reader's job runs later and frees the read and its own state. */
    return 0;
}

static void test_reader_loop_closes(void)
{
    small_pool();
    CHECK_EQ(run_pool(close_main, NULL), 0);
    CHECK_EQ(rds[0].n, -ECANCELED);
    CHECK(untouched(rds[0].buf));
    close(fd);
    CHECK_EQ(sem_post(&release), 0);
    default_pool(); /* joins the threads: the reader's job has run */
}

/* ---- a flood of reads leaves room for weft_to_thread() ---- */

static atomic_int flood_stop;
static long flood_reads;

static int flooder(void *arg)
{
    (void)arg;
    uint8_t buf[4096];
    int64_t cap = test_mono_ns() + 10000000000; /* 10 s: the work below never ran */
    int64_t off = 0;
    while (!atomic_load(&flood_stop) && test_mono_ns() < cap) {
        CHECK_EQ(weft_file_pread(fd, buf, sizeof(buf), off), 4096);
        off = (off + 4096) % (FILE_SIZE - 4096);
        flood_reads++;
    }
    return 0;
}

/* Always ready: the loop never sleeps, so reads keep coming to the reader. */
static int spinner(void *arg)
{
    (void)arg;
    int64_t cap = test_mono_ns() + 10000000000;
    while (!atomic_load(&flood_stop) && test_mono_ns() < cap)
        CHECK_EQ(weft_yield(), 0);
    return 0;
}

static int quick_fn(void *arg)
{
    (void)arg;
    return 42;
}

static int fair_main(void *arg)
{
    (void)arg;
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    atomic_store(&flood_stop, 0);
    flood_reads = 0;
    enum { N = 17 };
    weft_task_t *t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(weft_spawn(&t[i], i == 0 ? spinner : flooder, NULL), 0);
    /* Until the flood holds the reader (2,000 reads made), then work for the same thread. */
    while (atomic_load(&weft__fs_drain_reads) < 2000)
        CHECK_EQ(weft_sleep(0.001), 0);
    unsigned long at = atomic_load(&weft__fs_drain_reads);
    CHECK_EQ(weft_to_thread(quick_fn, NULL), 42);
    unsigned long more = atomic_load(&weft__fs_drain_reads) - at;
    atomic_store(&flood_stop, 1);
    fprintf(stderr, "weft_to_thread ran after %lu more reads by the reader\n", more);
    /* The reader gives the thread up at the end of its batch (a batch holds at most one read
     * per task); without turns, it kept it while reads came (thousands here). */
    CHECK(more <= 256);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_reader_fair(void)
{
    small_pool();
    int64_t t0 = test_mono_ns();
    CHECK_EQ(run_pool(fair_main, NULL), 0);
    CHECK(test_mono_ns() - t0 < 9000000000); /* the work ran while the flood went on */
    default_pool();
}

/* ---- idle after a flood: the reader and the pool threads sleep ---- */

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int idle_main(void *arg)
{
    (void)arg;
    fd = weft_file_open(path, O_RDONLY, 0);
    CHECK(fd >= 0);
    atomic_store(&flood_stop, 0);
    enum { N = 8 };
    weft_task_t *t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(weft_spawn(&t[i], flooder, NULL), 0);
    unsigned long at = atomic_load(&weft__fs_drain_reads);
    while (atomic_load(&weft__fs_drain_reads) < at + 2000)
        CHECK_EQ(weft_sleep(0.001), 0);
    atomic_store(&flood_stop, 1);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    /* The reader looks for reads for 30 us, a pool thread for work for 50 us: then they sleep.
     * A reader or a pool thread spinning on would use the whole 300 ms. */
    int64_t c0 = cpu_ns();
    CHECK_EQ(weft_sleep(0.3), 0);
    int64_t used = cpu_ns() - c0;
    fprintf(stderr, "CPU used by the process in 300 ms idle: %.2f ms\n", used / 1e6);
    CHECK(used < 30000000);
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static void test_reader_idle(void)
{
    CHECK_EQ(run_pool(idle_main, NULL), 0);
}

/* ---- the file, and the cases ---- */

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/weft-reader-XXXXXX", tmp != NULL ? tmp : "/tmp");
    int f = mkstemp(path);
    CHECK(f >= 0);
    uint8_t *b = malloc(FILE_SIZE);
    CHECK(b != NULL);
    for (int64_t i = 0; i < FILE_SIZE; i++)
        b[i] = pattern(i);
    CHECK_EQ(write(f, b, FILE_SIZE), FILE_SIZE);
    free(b);
    close(f);
    CHECK_EQ(sem_init(&release, 0, 0), 0);
}

static void test_all(void)
{
    const char *e = getenv("WEFT_FILE_ENGINE");
    if (e != NULL && strcmp(e, "uring") == 0) {
        fprintf(stderr, "the reader is the pool engine's: skipped\n");
        exit(77);
    }
    setup();
    const char *only = getenv("FS_CASE");
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"reader_batches", test_reader_batches}, {"reader_pipe", test_reader_pipe},
        {"reader_cancel", test_reader_cancel},   {"reader_loop_closes", test_reader_loop_closes},
        {"reader_fair", test_reader_fair},       {"reader_idle", test_reader_idle},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s\n", cases[i].name);
        cases[i].fn();
    }
    unlink(path);
}

TEST_MAIN(test_all)
