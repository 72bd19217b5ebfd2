/*
 * The file API, run once per engine: ctest runs this binary with WEFT_FILE_ENGINE=pool and
 * again with WEFT_FILE_ENGINE=uring (exit 77, skipped, where the kernel refuses io_uring).
 * Covers each call's success and error paths, cancellation and deadlines in the middle of reads
 * and writes (a FIFO makes them block), 1,000 operations in flight, offsets past 4 GiB (sparse),
 * and the atomic write surviving a crash before its rename.
 */
#include "fstest.h"
#include "pool/pool.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static int want_engine; /* WEFT_FILE_POOL or WEFT_FILE_URING */

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* Run `fn` as a main task (real clock). */
static int run_real(weft_task_fn fn, void *arg)
{
    return weft_run(fn, arg);
}

static void rm_rf(const char *p)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    CHECK(system(cmd) == 0);
}

/* ---- every call, success and errors ---- */

static int basic_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300], q[300], d[300];
    path_of(p, sizeof(p), "a.txt");
    path_of(q, sizeof(q), "b.txt");
    path_of(d, sizeof(d), "sub");

    int fd = weft_file_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_EQ(weft_file_write(fd, "hello ", 6), 6);
    CHECK_EQ(weft_file_write(fd, "world\n", 6), 6);
    CHECK_EQ(weft_file_pwrite(fd, "W", 1, 6), 1);
    char buf[64] = {0};
    CHECK_EQ(weft_file_pread(fd, buf, sizeof(buf), 0), 12);
    CHECK(memcmp(buf, "hello World\n", 12) == 0);
    CHECK_EQ(weft_file_read(fd, buf, sizeof(buf)), 0); /* the position is at the end */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(weft_file_read(fd, buf, 5), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 5);
    /* vectors */
    char a[3], b[4];
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    CHECK_EQ(weft_file_readv(fd, iov, 2, 0), 7);
    CHECK(memcmp(a, "hel", 3) == 0 && memcmp(b, "lo W", 4) == 0);
    CHECK_EQ(weft_file_readv(fd, iov, 2, -1), 7); /* from the position, 5 */
    CHECK(memcmp(a, " Wo", 3) == 0);
    struct iovec w[2] = {{"ab", 2}, {"cd", 2}};
    CHECK_EQ(weft_file_writev(fd, w, 2, 20), 4);
    CHECK_EQ(weft_file_pread(fd, buf, 4, 20), 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    CHECK_EQ(weft_file_readv(fd, iov, 2000, 0), -EINVAL);
    /* metadata */
    struct stat st, st2;
    CHECK_EQ(weft_file_fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, 24);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(stat(p, &st2), 0);
    CHECK_EQ(st.st_ino, st2.st_ino);
    CHECK_EQ(st.st_dev, st2.st_dev);
    CHECK_EQ(st.st_mtim.tv_sec, st2.st_mtim.tv_sec);
    CHECK_EQ(st.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
    CHECK_EQ(weft_file_ftruncate(fd, 5), 0);
    CHECK_EQ(weft_file_stat(p, &st), 0);
    CHECK_EQ(st.st_size, 5);
    CHECK_EQ(weft_file_fsync(fd), 0);
    CHECK_EQ(weft_file_fdatasync(fd), 0);
    CHECK_EQ(weft_file_close(fd), 0);
    /* errors are the kernel's */
    CHECK_EQ(weft_file_read(fd, buf, 1), -EBADF);
    CHECK_EQ(weft_file_write(fd, buf, 1), -EBADF);
    CHECK_EQ(weft_file_fsync(fd), -EBADF);
    CHECK_EQ(weft_file_fstat(fd, &st), -EBADF);
    CHECK_EQ(weft_file_close(fd), -EBADF);
    CHECK_EQ(weft_file_close(-1), -EBADF);
    CHECK_EQ(weft_file_pread(0, buf, 1, -5), -EINVAL);
    CHECK_EQ(weft_file_ftruncate(0, -1), -EINVAL);
    char nope[300];
    path_of(nope, sizeof(nope), "missing/x");
    CHECK_EQ(weft_file_open(nope, O_RDONLY, 0), -ENOENT);
    CHECK_EQ(weft_file_stat(nope, &st), -ENOENT);
    CHECK_EQ(weft_file_unlink(nope), -ENOENT);
    CHECK_EQ(weft_file_rename(nope, q), -ENOENT);
    CHECK_EQ(weft_file_open(p, O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);
    int ro = weft_file_open(p, O_RDONLY, 0);
    CHECK(ro >= 0);
    CHECK_EQ(weft_file_write(ro, "x", 1), -EBADF);
    CHECK_EQ(weft_file_close(ro), 0);
    /* rename, directories, listing */
    CHECK_EQ(weft_file_rename(p, q), 0);
    CHECK_EQ(weft_file_stat(p, &st), -ENOENT);
    CHECK_EQ(weft_file_mkdir(d, 0755), 0);
    CHECK_EQ(weft_file_mkdir(d, 0755), -EEXIST);
    int dfd = weft_file_open(d, O_RDONLY | O_DIRECTORY, 0);
    CHECK(dfd >= 0);
    CHECK_EQ(weft_file_read(dfd, buf, 1), -EISDIR);
    CHECK_EQ(weft_file_close(dfd), 0);
    char in[320];
    snprintf(in, sizeof(in), "%s/z", d);
    fd = weft_file_open(in, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(weft_file_close(fd), 0);
    CHECK_EQ(weft_file_rmdir(d), -ENOTEMPTY);
    CHECK_EQ(weft_file_unlink(d), -EISDIR);
    char **names;
    size_t count;
    CHECK_EQ(weft_file_listdir(dir, &names, &count), 0);
    int seen = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            CHECK(strcmp(names[i - 1], names[i]) < 0); /* sorted */
        seen += strcmp(names[i], "b.txt") == 0 || strcmp(names[i], "sub") == 0;
        CHECK(strcmp(names[i], ".") != 0 && strcmp(names[i], "..") != 0);
    }
    CHECK_EQ(seen, 2);
    CHECK(names[count] == NULL);
    weft_file_free(names);
    CHECK_EQ(weft_file_listdir(nope, &names, &count), -ENOENT);
    CHECK_EQ(weft_file_unlink(in), 0);
    CHECK_EQ(weft_file_rmdir(d), 0);
    CHECK_EQ(weft_file_rmdir(d), -ENOENT);
    CHECK_EQ(weft_file_unlink(q), 0);
    /* a cancel already pending: nothing is done */
    weft_task_cancel(weft_current_task(), NULL);
    CHECK_EQ(weft_file_open(p, O_RDWR | O_CREAT, 0644), -ECANCELED);
    CHECK_EQ(weft_file_stat(p, &st), -ENOENT);
    /* a pipe whose reader left: -EPIPE, never SIGPIPE */
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    close(pp[0]);
    CHECK_EQ(weft_file_write(pp[1], "x", 1), -EPIPE);
    struct iovec pv = {"y", 1};
    CHECK_EQ(weft_file_writev(pp[1], &pv, 1, -1), -EPIPE);
    close(pp[1]);
    /* a passed deadline: nothing is done */
    CHECK_EQ(weft_file_read_dl(0, buf, 1, weft_time(NULL) - 1), -ETIMEDOUT);
    return 0;
}

static void test_basic(void)
{
    int before = test_count_fds();
    CHECK_EQ(run_real(basic_main, NULL), 0);
    CHECK_EQ(test_count_fds(), before);
}

static int outside_main(void)
{
    char b[1];
    return (int)weft_file_read(0, b, 1);
}

static void test_outside_task(void)
{
    CHECK_EQ(outside_main(), -EPERM);
    CHECK_EQ(weft_file_engine(), -EPERM);
    struct weft_loop_opts o = {.file_engine = 7};
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, &o), -EINVAL);
}

/* ---- past 4 GiB, sparse ---- */

static int big_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "sparse");
    int fd = weft_file_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    int64_t off = (int64_t)5 << 30; /* 5 GiB */
    CHECK_EQ(weft_file_pwrite(fd, "far", 3, off), 3);
    char b[8] = {0};
    CHECK_EQ(weft_file_pread(fd, b, sizeof(b), off - 2), 5);
    CHECK(memcmp(b, "\0\0far", 5) == 0);
    struct iovec v = {b, 3};
    CHECK_EQ(weft_file_readv(fd, &v, 1, off), 3);
    CHECK_EQ(weft_file_pread(fd, b, sizeof(b), off + 3), 0);
    struct stat st;
    CHECK_EQ(weft_file_fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, off + 3);
    CHECK_EQ(weft_file_ftruncate(fd, off + 1), 0);
    CHECK_EQ(weft_file_stat(p, &st), 0);
    CHECK_EQ(st.st_size, off + 1);
    CHECK_EQ(weft_file_close(fd), 0);
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

static void test_big_offset(void)
{
    CHECK_EQ(run_real(big_main, NULL), 0);
}

/* ---- 1,000 operations in flight ---- */

#if defined(__SANITIZE_THREAD__)
#define NOPS 100 /* a TSan fiber per task costs ~20 ms: 1,000 would take 20 s */
#else
#define NOPS 1000
#endif
#define BLK  512
static int shared_fd;

static int reader(void *arg)
{
    intptr_t i = (intptr_t)arg;
    char *b = malloc(BLK);
    CHECK(b != NULL);
    ssize_t n = weft_file_pread(shared_fd, b, BLK, (int64_t)i * BLK);
    CHECK_EQ(n, BLK);
    for (int k = 0; k < BLK; k++)
        CHECK_EQ((unsigned char)b[k], (unsigned char)(i * 7 + k));
    free(b);
    return 0;
}

static int many_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "many");
    int fd = weft_file_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char *all = malloc((size_t)NOPS * BLK);
    for (int i = 0; i < NOPS; i++)
        for (int k = 0; k < BLK; k++)
            all[i * BLK + k] = (char)(i * 7 + k);
    CHECK_EQ(weft_file_pwrite(fd, all, (size_t)NOPS * BLK, 0), NOPS * BLK);
    free(all);
    shared_fd = fd;
    weft_task_t *t[NOPS];
    for (int i = 0; i < NOPS; i++)
        CHECK_EQ(weft_spawn(&t[i], reader, (void *)(intptr_t)i), 0);
    CHECK_EQ(weft_gather(t, NOPS, NULL, 0), 0);
    for (int i = 0; i < NOPS; i++)
        weft_task_release(t[i]);
    /* (cached reads complete at once on both engines: the FIFO case below has them all in
     * flight together) */
    CHECK_EQ(weft_file_close(fd), 0);
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

/* 1,000 reads of a FIFO, all waiting at once, then fed one byte each. */
static int fifo_many_fd;
static int one_byte(void *arg)
{
    unsigned char *c = malloc(1); /* not on a compact task's moving stack */
    ssize_t n = weft_file_read(fifo_many_fd, c, 1);
    int r = n == 1 ? *c : (int)(n < 0 ? n : -EIO);
    free(c);
    return r;
}

static int many_fifo_main(void *arg)
{
    char p[300];
    path_of(p, sizeof(p), "fifo-many");
    CHECK_EQ(mkfifo(p, 0600), 0);
    fifo_many_fd = weft_file_open(p, O_RDWR, 0);
    CHECK(fifo_many_fd >= 0);
    weft_task_t *t[NOPS];
    for (int i = 0; i < NOPS; i++)
        CHECK_EQ(weft_spawn(&t[i], one_byte, NULL), 0);
    for (int k = 0; k < 3; k++)
        CHECK_EQ(weft_yield(), 0);
    for (int i = 0; i < NOPS; i++)
        CHECK(!weft_task_done(t[i])); /* all in flight */
    unsigned char bytes[NOPS];
    int hist[256] = {0};
    for (int i = 0; i < NOPS; i++) {
        bytes[i] = (unsigned char)(i * 13);
        hist[bytes[i]]++;
    }
    CHECK_EQ(write(fifo_many_fd, bytes, NOPS), NOPS);
    for (int i = 0; i < NOPS; i++) {
        int c = weft_join(t[i]);
        CHECK(c >= 0 && c < 256);
        hist[c]--;
        weft_task_release(t[i]);
    }
    for (int i = 0; i < 256; i++)
        CHECK_EQ(hist[i], 0);
    CHECK_EQ(weft_file_close(fifo_many_fd), 0);
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

static void test_many_in_flight(void)
{
    /* Compact tasks: 1,000 stacks would cost more than the reads (under TSan above all). */
    struct weft_loop_opts o = {.compact_tasks = true};
    CHECK_EQ(weft_run_opts(many_main, NULL, &o), 0);
    CHECK_EQ(weft_run_opts(many_fifo_main, NULL, &o), 0);
}

/* ---- cancellation and deadlines in the middle of a read or write (a FIFO blocks) ---- */

#define CANARY 0x5a
static int fifo_fd;
static char *fifo_buf;

static int fifo_reader(void *arg)
{
    return (int)weft_file_read(fifo_fd, fifo_buf, 64);
}

/* Wait until the pool has the job running (the pool engine) or the ring holds it (io_uring:
 * the task parked after submitting). Bounded. */
static void until_in_flight(void)
{
    for (int i = 0; i < 5000; i++) {
        CHECK_EQ(weft_yield(), 0);
        if (want_engine == WEFT_FILE_URING)
            return; /* submitted and parked after one turn */
        struct weft__pool_stats s;
        weft__pool_stats(&s);
        if (s.running[WEFT__POOL_WORK] >= 1)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(!"the read never started");
}

static int fifo_cancel_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "fifo");
    CHECK_EQ(mkfifo(p, 0600), 0);
    fifo_fd = weft_file_open(p, O_RDWR, 0); /* never blocks; a read waits for data */
    CHECK(fifo_fd >= 0);
    fifo_buf = malloc(64);
    memset(fifo_buf, CANARY, 64);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, fifo_reader, NULL), 0);
    until_in_flight();
    CHECK(!weft_task_done(t));
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    /* The buffer is the caller's again: data arriving now never reaches it. */
    CHECK_EQ(write(fifo_fd, "xyz", 3), 3);
    return 0;
}

static void test_fifo_cancel(void)
{
    CHECK_EQ(run_real(fifo_cancel_main, NULL), 0);
    CHECK_EQ(weft_pool_shutdown(), 0); /* an abandoned pool read has ended */
    for (int i = 0; i < 64; i++)
        CHECK_EQ((unsigned char)fifo_buf[i], CANARY);
    free(fifo_buf);
    close(fifo_fd);
}

static int fifo_deadline_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "fifo2");
    CHECK_EQ(mkfifo(p, 0600), 0);
    int fd = weft_file_open(p, O_RDWR, 0);
    CHECK(fd >= 0);
    /* a read with a deadline (the virtual clock jumps to it: nothing else can happen) */
    char *b = malloc(64);
    memset(b, CANARY, 64);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_file_read_dl(fd, b, 64, t0 + 50000000), -ETIMEDOUT);
    CHECK(weft_time(NULL) >= t0 + 50000000);
    free(b); /* ASan: nothing may touch it from here */
    /* a write into a full pipe */
    int wfd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    CHECK(wfd >= 0);
    char fill[4096];
    memset(fill, 'f', sizeof(fill));
    size_t filled = 0;
    for (;;) {
        ssize_t k = write(wfd, fill, sizeof(fill));
        if (k < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        filled += (size_t)k;
    }
    char *wb = malloc(8192);
    memset(wb, 'w', 8192);
    CHECK_EQ(weft_file_write_dl(fd, wb, 8192, weft_time(NULL) + 50000000), -ETIMEDOUT);
    free(wb);
    /* drain: an abandoned pool write may now finish (on its private copy) */
    close(wfd);
    int rfd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    CHECK(rfd >= 0);
    size_t got = 0;
    for (;;) {
        ssize_t k = read(rfd, fill, sizeof(fill));
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            CHECK(fill[i] == 'f' || fill[i] == 'w');
        got += (size_t)k;
    }
    CHECK(got + 64 >= filled); /* an abandoned pool read (above) may take up to 64 bytes */
    /* An abandoned pool job may not have reached its system call yet (a loaded machine can
     * keep its thread off a core through all of the above): a read that starts after the drain
     * waits for data forever (its duplicate fd is also a writer: no end of file), and
     * weft_pool_shutdown() would wait for it. Keep data and room in the pipe until the pool
     * has nothing running. */
    for (int i = 0; i < 60000; i++) {
        struct weft__pool_stats ps;
        weft__pool_stats(&ps);
        if (ps.running[WEFT__POOL_WORK] == 0 && ps.queued[WEFT__POOL_WORK] == 0)
            break;
        while (read(rfd, fill, sizeof(fill)) > 0) /* room for a write */
            ;
        CHECK_EQ(write(fd, fill, 64), 64); /* data for a read */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    close(rfd);
    CHECK_EQ(weft_file_close(fd), 0);
    return 0;
}

static int fifo_waiter(void *arg)
{
    return weft_wait_fd(*(int *)arg, WEFT_READABLE);
}

static int close_wakes_main(void *arg)
{
    char p[300];
    path_of(p, sizeof(p), "fifo3");
    CHECK_EQ(mkfifo(p, 0600), 0);
    int fd = weft_file_open(p, O_RDWR | O_NONBLOCK, 0);
    CHECK(fd >= 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, fifo_waiter, &fd), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_file_close(fd), 0);
    CHECK_EQ(weft_join(t), -EBADF);
    weft_task_release(t);
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

static int fifo_open_main(void *arg)
{
    char p[300];
    path_of(p, sizeof(p), "fifo4");
    CHECK_EQ(mkfifo(p, 0600), 0);
    /* No writer: a reader's open(2) waits for one; a timeout scope ends the wait. */
    weft_timeout_t to = {{0}};
    CHECK_EQ(weft_timeout_enter(&to, 0.05), 0);
    int fd = weft_file_open(p, O_RDONLY, 0);
    int r = weft_timeout_exit(&to, fd);
    if (want_engine == WEFT_FILE_URING && r >= 0) {
        /* io_uring opens with O_NONBLOCK first (then clears it): a FIFO's open does not wait */
        CHECK_EQ(weft_file_close(r), 0);
    } else {
        CHECK_EQ(r, -ETIMEDOUT);
        /* release the abandoned pool open (if it started): it gets an fd, which its thread
         * closes; a writer's non-blocking open succeeds once that reader waits */
        for (int i = 0; i < 60000; i++) { /* until the pool has nothing left (loaded CI) */
            struct weft__pool_stats ps;
            weft__pool_stats(&ps);
            if (ps.running[WEFT__POOL_WORK] == 0 && ps.queued[WEFT__POOL_WORK] == 0)
                break;
            int w = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (w >= 0) {
                close(w);
                break;
            }
            CHECK_EQ(errno, ENXIO);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

static void test_fifo_deadline(void)
{
    CHECK_EQ(run_virtual(fifo_deadline_main, NULL), 0);
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(run_virtual(close_wakes_main, NULL), 0);
    int before = test_count_fds();
    CHECK_EQ(run_real(fifo_open_main, NULL), 0);
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(test_count_fds(), before); /* the late fd was closed */
}

/* A cancel racing a regular-file read at every point: either the read is undone (-ECANCELED,
 * buffer untouched) or it completed and reports its bytes (and the cancel stays pending). */
static int race_fd;
static int race_reader(void *arg)
{
    char *b = arg;
    ssize_t n = weft_file_pread(race_fd, b, 4096, 0);
    if (n == -ECANCELED) {
        for (int i = 0; i < 4096; i++)
            CHECK_EQ((unsigned char)b[i], CANARY);
        return 1;
    }
    CHECK_EQ(n, 4096);
    for (int i = 0; i < 4096; i++)
        CHECK_EQ(b[i], 'r');
    /* a cancel that came during the read was kept for the next suspension point */
    return weft_yield() == -ECANCELED ? 2 : 3;
}

static int race_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "race");
    race_fd = weft_file_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(race_fd >= 0);
    char data[4096];
    memset(data, 'r', sizeof(data));
    CHECK_EQ(weft_file_pwrite(race_fd, data, sizeof(data), 0), 4096);
    char *b = malloc(4096);
    int seen[4] = {0};
    for (int round = 0; round < 200; round++) {
        memset(b, CANARY, 4096);
        weft_task_t *t;
        CHECK_EQ(weft_spawn(&t, race_reader, b), 0);
        for (int k = 0; k < round % 4; k++)
            CHECK_EQ(weft_yield(), 0);
        weft_task_cancel(t, NULL);
        int r = weft_join(t);
        CHECK(r == 1 || r == 2 || r == 3 || r == -ECANCELED);
        seen[r < 0 ? 0 : r]++;
        weft_task_release(t);
    }
    free(b);
    CHECK_EQ(weft_file_close(race_fd), 0);
    CHECK_EQ(weft_file_unlink(p), 0);
    return 0;
}

static void test_cancel_race(void)
{
    CHECK_EQ(run_real(race_main, NULL), 0);
    /* and with every pool read on a pool thread (in place: a leaving task waits for it) */
    weft__fs_no_nowait = true;
    CHECK_EQ(run_real(race_main, NULL), 0);
    CHECK_EQ(run_real(basic_main, NULL), 0);
    weft__fs_no_nowait = false;
}

/* ---- whole files ---- */

static int whole_main(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "whole");
    char *data;
    size_t len;
    CHECK_EQ(weft_file_read_all(p, 100, &data, &len), -ENOENT);
    CHECK_EQ(weft_file_write_atomic(p, "first", 5, 0640), 0);
    struct stat st;
    CHECK_EQ(weft_file_stat(p, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0640 & ~0022 & 0777);
    CHECK_EQ(weft_file_read_all(p, 100, &data, &len), 0);
    CHECK_EQ(len, 5);
    CHECK_STR(data, "first");
    weft_file_free(data);
    CHECK_EQ(weft_file_read_all(p, 5, &data, &len), 0);
    weft_file_free(data);
    CHECK_EQ(weft_file_read_all(p, 4, &data, &len), -EFBIG);
    size_t big = 300000;
    char *many = malloc(big);
    for (size_t i = 0; i < big; i++)
        many[i] = (char)('a' + i % 26);
    CHECK_EQ(weft_file_write_atomic(p, many, big, 0600), 0);
    CHECK_EQ(weft_file_read_all(p, big, &data, &len), 0);
    CHECK_EQ(len, big);
    CHECK(memcmp(data, many, big) == 0);
    weft_file_free(data);
    free(many);
    CHECK_EQ(weft_file_read_all(dir, 100, &data, &len), -EISDIR);
    char **names;
    size_t count;
    CHECK_EQ(weft_file_listdir(dir, &names, &count), 0);
    for (size_t i = 0; i < count; i++) /* no temporary file left behind */
        CHECK(strncmp(names[i], "whole", 5) != 0 || strcmp(names[i], "whole") == 0);
    weft_file_free(names);
    CHECK_EQ(weft_file_unlink(p), 0);
    char nodir[300];
    path_of(nodir, sizeof(nodir), "no/such");
    CHECK_EQ(weft_file_write_atomic(nodir, "x", 1, 0600), -ENOENT);
    return 0;
}

static void test_whole_files(void)
{
    CHECK_EQ(run_real(whole_main, NULL), 0);
}

static void crash_now(void)
{
    _exit(9);
}

static int crash_main(void *arg)
{
    char p[300];
    path_of(p, sizeof(p), "precious");
    weft__fs_atomic_hook = crash_now;
    weft_file_write_atomic(p, "NEW CONTENT", 11, 0644);
    return 1; /* never reached */
}

static int crash_check(void *arg)
{
    ft_check_engine(want_engine);
    char p[300];
    path_of(p, sizeof(p), "precious");
    char *data;
    size_t len;
    CHECK_EQ(weft_file_read_all(p, 1000, &data, &len), 0);
    CHECK_STR(data, "old content");
    weft_file_free(data);
    /* and a complete write replaces it */
    CHECK_EQ(weft_file_write_atomic(p, "NEW CONTENT", 11, 0644), 0);
    CHECK_EQ(weft_file_read_all(p, 1000, &data, &len), 0);
    CHECK_STR(data, "NEW CONTENT");
    weft_file_free(data);
    return 0;
}

static void test_atomic_crash(void)
{
    char p[300];
    path_of(p, sizeof(p), "precious");
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs("old content", f);
    fclose(f);
    /* A fresh process (the pool is not fork-safe): this binary again, told to crash. */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("FS_CRASH_DIR", dir, 1);
        execl("/proc/self/exe", "files_test", (char *)NULL);
        _exit(4);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 9); /* it died between the fsync and the rename */
    CHECK_EQ(run_real(crash_check, NULL), 0);
}

/* ---- engine choice ---- */

static int engine_of(void *arg)
{
    return weft_file_engine();
}

static void test_engine_option(void)
{
    struct weft_loop_opts o = {.file_engine = WEFT_FILE_POOL};
    CHECK_EQ(weft_run_opts(engine_of, NULL, &o), WEFT_FILE_POOL);
    o.file_engine = WEFT_FILE_URING;
    int e = weft_run_opts(engine_of, NULL, &o);
    CHECK_EQ(e, weft__uring_probe() == 0 ? WEFT_FILE_URING : WEFT_FILE_POOL);
}

static void setup(void)
{
    want_engine = ft_engine_wanted();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/weft-fs-XXXXXX", tmp != NULL ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
}

static void test_all(void);

TEST_MAIN(test_all)

static void test_all(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {
        {"outside_task", test_outside_task}, {"basic", test_basic},
        {"big_offset", test_big_offset},     {"many_in_flight", test_many_in_flight},
        {"fifo_cancel", test_fifo_cancel},   {"fifo_deadline", test_fifo_deadline},
        {"cancel_race", test_cancel_race},   {"whole_files", test_whole_files},
        {"atomic_crash", test_atomic_crash}, {"engine_option", test_engine_option},
    };
    const char *crash = getenv("FS_CRASH_DIR");
    if (crash != NULL) {
        snprintf(dir, sizeof(dir), "%s", crash);
        exit(run_real(crash_main, NULL) == 0 ? 0 : 3);
    }
    setup();
    const char *only = getenv("FS_CASE");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only != NULL && strcmp(only, cases[i].name) != 0)
            continue;
        fprintf(stderr, "-- %s (%s)\n", cases[i].name,
                want_engine == WEFT_FILE_URING ? "uring" : "pool");
        cases[i].fn();
    }
    rm_rf(dir);
}
