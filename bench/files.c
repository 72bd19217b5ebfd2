/*
 * File read benchmark for weft's two file engines (bench/files.sh runs it beside fio, Node and
 * Tokio). One loop, one thread:
 *
 *   weft-bench-files rand4k DEPTH SECS FILE   random 4 KiB preads, DEPTH tasks each keeping one in
 *                                        flight -> RESULT iops=.. mib_s=..
 *   weft-bench-files seq1m  DEPTH SECS FILE   sequential 1 MiB preads (DEPTH tasks take the next
 *                                        1 MiB block in turn, wrapping at the end)
 *
 * The engine comes from WEFT_FILE_ENGINE (pool | uring); the line says which one ran.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <weft.h>

static int fd;
static int64_t nblocks, bs;
static int64_t end_ns;
static bool seq;
static int64_t next_block;
static uint64_t done_ops;

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static int worker(void *arg)
{
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, (size_t)bs) != 0)
        return -ENOMEM;
    uint64_t n = 0;
    while (1) {
        int64_t blk;
        if (seq) {
            blk = next_block++;
            if (next_block == nblocks)
                next_block = 0;
        } else {
            x ^= x << 13; /* xorshift64 */
            x ^= x >> 7;
            x ^= x << 17;
            blk = (int64_t)(x % (uint64_t)nblocks);
        }
        ssize_t r = weft_file_pread(fd, buf, (size_t)bs, blk * bs);
        if (r != bs) {
            fprintf(stderr, "pread: %s\n", r < 0 ? weft_strerror((int)r) : "short");
            free(buf);
            return -EIO;
        }
        n++;
        if ((n & 15) == 0 && now_ns() >= end_ns)
            break;
    }
    done_ops += n;
    free(buf);
    return 0;
}

struct args {
    int depth;
    double secs;
    const char *path;
};

static int main_task(void *arg)
{
    struct args *a = arg;
    fd = weft_file_open(a->path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    int e = weft_file_fstat(fd, &st);
    if (e < 0)
        return e;
    nblocks = st.st_size / bs;
    if (nblocks < 1)
        return -EINVAL;
    weft_task_t **t = calloc((size_t)a->depth, sizeof(*t));
    int64_t t0 = now_ns();
    int64_t loop0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    end_ns = t0 + (int64_t)(a->secs * 1e9);
    for (int i = 0; i < a->depth; i++)
        if ((e = weft_spawn(&t[i], worker, (void *)(uintptr_t)(i + 1))) < 0)
            return e;
    e = weft_gather(t, (size_t)a->depth, NULL, 0);
    double el = (double)(now_ns() - t0) / 1e9;
    double loop_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - loop0);
    double cpu_ns = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
    for (int i = 0; i < a->depth; i++)
        weft_task_release(t[i]);
    free(t);
    if (e < 0)
        return e;
    double iops = (double)done_ops / el;
    /* CPU time per read: of the loop's thread, and of the whole process (pool threads too). */
    printf("RESULT engine=%s depth=%d iops=%.0f mib_s=%.1f loop_ns_op=%.0f cpu_ns_op=%.0f\n",
           weft_file_engine() == WEFT_FILE_URING ? "uring" : "pool", a->depth, iops,
           iops * (double)bs / (1 << 20), done_ops ? loop_ns / (double)done_ops : 0,
           done_ops ? cpu_ns / (double)done_ops : 0);
    return weft_file_close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "rand4k") != 0 && strcmp(argv[1], "seq1m") != 0)) {
        fprintf(stderr, "usage: weft-bench-files rand4k|seq1m DEPTH SECS FILE\n");
        return 2;
    }
    seq = strcmp(argv[1], "seq1m") == 0;
    bs = seq ? 1 << 20 : 4096;
    struct args a = {atoi(argv[2]), atof(argv[3]), argv[4]};
    if (a.depth < 1)
        return 2;
    int e = weft_run(main_task, &a);
    if (e < 0) {
        fprintf(stderr, "files_bench: %s\n", weft_strerror(e));
        return 1;
    }
    return 0;
}
