/*
 * The file API's entry points and the engine choice. A loop's engine is decided by its first file
 * call: the loop option, else WEFT_FILE_ENGINE, else io_uring when the process-wide probe says the
 * kernel allows it. A loop that gets io_uring makes its ring then; if that fails (a memory limit)
 * the loop quietly uses the pool.
 */
#include "fs/fs.h"
#include "pool/pool.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

/* WEFT_FILE_ENGINE, read once per process: 0 (unset or unknown), WEFT_FILE_POOL, WEFT_FILE_URING. */
static int env_engine(void)
{
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0)
        return v;
    const char *e = getenv("WEFT_FILE_ENGINE");
    v = WEFT_FILE_AUTO;
    if (e != NULL && strcmp(e, "pool") == 0)
        v = WEFT_FILE_POOL;
    else if (e != NULL && (strcmp(e, "uring") == 0 || strcmp(e, "io_uring") == 0))
        v = WEFT_FILE_URING;
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

static struct weft__files *files_of(weft_loop_t *l)
{
    struct weft__files *f = l->files;
    if (WEFT__LIKELY(f != NULL))
        return f;
    f = weft__calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    int want = l->file_engine != WEFT_FILE_AUTO ? l->file_engine : env_engine();
    f->offload_max = weft__fs_offload_max;
    const char *e = getenv("WEFT_FILE_OFFLOAD"); /* docs/files.md: for benchmarks */
    if (e != NULL && *e >= '0' && *e <= '9')
        f->offload_max = atoi(e);
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) < 2)
        f->offload_max = 0; /* no second core to use */
    f->engine = WEFT_FILE_POOL;
    if (want != WEFT_FILE_POOL && weft__uring_probe() == 0 && weft__uring_new(l, &f->ring) == 0)
        f->engine = WEFT_FILE_URING;
    l->files = f;
    return f;
}

void weft__files_fini(weft_loop_t *l)
{
    struct weft__files *f = l->files;
    if (f == NULL)
        return;
    if (f->ring != NULL)
        weft__uring_free(l, f->ring);
    if (f->drain != NULL)
        weft__drain_close(f->drain);
    weft__free(f);
    l->files = NULL;
}

int weft_file_engine(void)
{
    weft_loop_t *l = weft__tls_loop;
    if (l == NULL)
        return -EPERM;
    struct weft__files *f = files_of(l);
    return f == NULL ? -ENOMEM : f->engine;
}

/*
 * The pool engine's reads try the page cache first, on the loop's thread: preadv2(RWF_NOWAIT)
 * never waits for the device (it fails with EAGAIN instead), so a cached read costs one system
 * call and no hand-off, as io_uring does internally. Anything else (not cached, a pipe without
 * data, a filesystem without RWF_NOWAIT) goes to the pool; a read that found only its first
 * part cached gets the rest from the pool.
 */
bool weft__fs_no_nowait;

ssize_t weft__fs_read_nowait(int fd, void *buf, size_t len, int64_t off, bool *rest)
{
    *rest = false;
    struct iovec v = {buf, len};
    ssize_t n = preadv2(fd, &v, 1, off < 0 ? -1 : off, RWF_NOWAIT);
    if (n == (ssize_t)len || n == 0)
        return n; /* all of it, or the end of the file */
    if (n < 0)
        return -errno;
    /* Short: the end of the file (a read of a whole small file asks for one byte more than it
     * has), or the rest is not all cached. Another attempt tells which before any hand-off:
     * 0 is the end; EAGAIN leaves the rest to the pool. */
    for (;;) {
        struct iovec w = {(char *)buf + n, len - (size_t)n};
        ssize_t k = preadv2(fd, &w, 1, off < 0 ? -1 : off + n, RWF_NOWAIT);
        if (k < 0)
            break;
        n += k;
        if (k == 0 || n == (ssize_t)len)
            return n;
    }
    *rest = errno == EAGAIN || errno == EOPNOTSUPP; /* else an error after some bytes: the bytes */
    return n;
}

ssize_t weft__fs_read_finish(weft_task_t *t, const struct weft__fsop *op, ssize_t n, bool rest,
                             int64_t deadline)
{
    if (n < 0)
        return weft__fs_pool_run(t, op, deadline);
    if (!rest)
        return n;
    struct weft__fsop more = *op;
    more.buf = (char *)op->buf + n;
    more.len = op->len - (size_t)n;
    more.off = op->off < 0 ? -1 : op->off + n;
    ssize_t m = weft__fs_pool_run(t, &more, deadline);
    if (m == -ECANCELED)
        t->must_cancel = 1; /* the bytes read are reported; the cancel waits for the next point */
    return m > 0 ? n + m : n;
}

static ssize_t read_cached(weft_task_t *t, struct weft__fsop *op, int64_t deadline)
{
    bool rest;
    ssize_t n = weft__fs_read_nowait(op->fd, op->buf, op->len, op->off, &rest);
    return weft__fs_read_finish(t, op, n, rest, deadline);
}

/*
 * The pool engine's opens try the dentry cache first, as io_uring's do: openat2 with
 * RESOLVE_CACHED (5.12+) fails with EAGAIN instead of reading a directory from the device, and
 * O_NONBLOCK (cleared again afterwards unless asked for) keeps a FIFO's open from waiting for
 * its other end. Creating or truncating opens always go to the pool.
 */
static int open_cached(const struct weft__fsop *op)
{
    static atomic_int unsupported;
    if ((op->flags & (O_CREAT | O_TRUNC | __O_TMPFILE)) != 0 ||
        atomic_load_explicit(&unsupported, memory_order_relaxed))
        return -EAGAIN;
    struct open_how how = {.flags = (uint64_t)(op->flags | O_NONBLOCK),
                           .resolve = RESOLVE_CACHED};
    int fd = (int)syscall(__NR_openat2, AT_FDCWD, op->path, &how, sizeof(how));
    if (fd < 0) {
        int e = errno;
        if (e == ENOSYS || (e == EINVAL && !(op->flags & O_DIRECTORY)))
            atomic_store_explicit(&unsupported, 1, memory_order_relaxed); /* before 5.12 */
        /* EAGAIN: not cached; ENXIO: a FIFO without a reader (the pool waits for one); any
         * other error is retried on the pool too, which reports the kernel's own answer. */
        return -EAGAIN;
    }
    if (!(op->flags & O_NONBLOCK)) {
        /* A FIFO opened without O_NONBLOCK waits for its other end: the pool does that open. */
        struct stat st;
        if (fstat(fd, &st) < 0 || S_ISFIFO(st.st_mode)) {
            close(fd);
            return -EAGAIN;
        }
        /* F_SETFL changes only the status flags (O_APPEND, O_DIRECT, O_NOATIME, O_NONBLOCK...):
         * the open's own flags without O_NONBLOCK are what open(2) would have left (it ignores
         * O_ASYNC). */
        if (fcntl(fd, F_SETFL, op->flags & ~(O_NONBLOCK | O_ASYNC)) < 0) {
            close(fd);
            return -EAGAIN;
        }
    }
    return fd;
}

/*
 * The inline budget. A page-cache read, a cached open or a read-only close completes on the
 * loop's thread without suspending the task (either engine): a task reading a cached file in a
 * loop would never let the others, the timers or the I/O poll run. So, as Tokio's cooperative
 * budget does, what a task's file calls complete without suspending is counted, in units of
 * about a 4 KiB cached read (1-2 us): each call costs one, plus one per 8 KiB it moved. Once a
 * task has spent WEFT__FS_BUDGET units since its turn began (the loop's iteration counter has
 * not moved: every resumption follows an iteration start), its next file call first yields
 * (the task goes to the back of the ready queue; the loop's policy decides when the clock is
 * read, the timers fire and I/O is polled). A call that suspends (the pool, a ring's wait)
 * starts a new turn: the budget is full again.
 */
static inline uint32_t budget_cost(uint8_t code, ssize_t r)
{
    if (!weft__fsop_moves(code) || r <= 0)
        return 1;
    return 1 + (uint32_t)((size_t)r >> 13);
}

/*
 * Using the second core. With the file cached, every read of the pool engine completes inline,
 * on one core. While other tasks are ready to run (so the loop has other work meanwhile), a read
 * goes to the reader instead (drain.c: a pool thread taking the loop's reads in batches) while it
 * runs, as long as fewer than `offload_max` reads handed over are still to be made
 * (WEFT__FS_OFFLOAD by default; WEFT_FILE_OFFLOAD=N for benchmarks, 0: none; none when the
 * process has one CPU). A lone task reads inline: handing its read over would leave the loop
 * idle until it came back.
 */
#define WEFT__FS_OFFLOAD 64
int weft__fs_offload_max = WEFT__FS_OFFLOAD;
bool weft__fs_offload_always;

static inline bool offload(const weft_loop_t *l, const struct weft__files *f)
{
    return weft__fs_offload_always ||
           (f->offload_max != 0 && (!weft__list_empty(&l->batch) || !weft__list_empty(&l->ready)));
}

/* Run `op` on the loop's engine (the checks are done). */
static ssize_t engine_run(weft_task_t *t, weft_loop_t *l, struct weft__files *f,
                          struct weft__fsop *op, int64_t deadline)
{
    if (f->engine == WEFT_FILE_URING && weft__uring_supports(op->code)) {
        /* A write that io_uring tries inline on a pipe whose reader left raises SIGPIPE in
         * this thread (the default action ends the process): writes to anything but files
         * and block devices go to the pool, whose threads block every signal. */
        struct stat st;
        if ((op->code != WEFT__FS_WRITE && op->code != WEFT__FS_WRITEV) ||
            (fstat(op->fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))))
            return weft__fs_uring_run(t, f->ring, op, deadline);
        return weft__fs_pool_run(t, op, deadline);
    }
    if (op->code == WEFT__FS_READ && op->len > 0 && !weft__fs_no_nowait) {
        if (offload(l, f)) {
            bool handed;
            ssize_t r = weft__fs_drain_run(t, f, op, deadline, &handed);
            if (handed)
                return r;
        }
        return read_cached(t, op, deadline);
    }
    if (op->code == WEFT__FS_CLOSE && !weft__fs_no_nowait) {
        /* A read-only fd has nothing to flush: closed here, no hand-off. */
        int fl = fcntl(op->fd, F_GETFL);
        if (fl < 0)
            return -errno;
        if ((fl & O_ACCMODE) == O_RDONLY && (fl & O_PATH) == 0)
            return close(op->fd) < 0 && errno != EINTR ? -errno : 0;
    }
    if (op->code == WEFT__FS_OPEN && !weft__fs_no_nowait) {
        int fd = open_cached(op);
        if (fd >= 0)
            return fd;
    }
    return weft__fs_pool_run(t, op, deadline);
}

ssize_t weft__fs_run(struct weft__fsop *op, int64_t deadline)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    if (deadline < 0)
        deadline = WEFT_NO_DEADLINE;
    else if (deadline <= weft__now(t->fut.loop))
        return -ETIMEDOUT;
    weft_loop_t *l = t->fut.loop;
    if (op->code == WEFT__FS_READ || op->code == WEFT__FS_WRITE) {
        if (op->buf == NULL && op->len > 0)
            return -EFAULT;
        if (op->len > WEFT__FS_MAX_RW)
            op->len = WEFT__FS_MAX_RW;
        /* A compact task's stack moves while it sleeps: the kernel cannot write there. */
        if (weft__on_cstack(l, op->buf))
            return -EINVAL;
    } else if (op->code == WEFT__FS_READV || op->code == WEFT__FS_WRITEV) {
        for (int i = 0; i < op->iovcnt; i++)
            if (op->iov[i].iov_len > 0 && weft__on_cstack(l, op->iov[i].iov_base))
                return -EINVAL;
    }
    struct weft__files *f = files_of(l);
    if (f == NULL)
        return -ENOMEM;
    /* The budget: a task whose file calls completed without suspending for a whole budget
     * since its turn began yields first, as weft_yield() does. */
    if (WEFT__UNLIKELY(f->bused >= WEFT__FS_BUDGET) && f->btask == t && f->biter == l->iter) {
        int y = weft_yield();
        if (y < 0)
            return y;
        if (deadline != WEFT_NO_DEADLINE && deadline <= weft__now(l))
            return -ETIMEDOUT;
    }
    uint32_t it = l->iter;
    ssize_t r = engine_run(t, l, f, op, deadline);
    if (l->iter == it) {
        /* Completed without suspending: charged to the task's turn. */
        if (f->btask != t || f->biter != it) {
            f->btask = t;
            f->biter = it;
            f->bused = 0;
        }
        f->bused += budget_cost(op->code, r);
    }
    return r;
}

/* ---- public calls ---- */

int weft_file_open(const char *path, int flags, mode_t mode)
{
    if (path == NULL)
        return -EFAULT;
    struct weft__fsop op = {.code = WEFT__FS_OPEN, .path = path, .flags = flags | O_CLOEXEC,
                            .mode = mode, .fd = -1};
    return (int)weft__fs_run(&op, WEFT_NO_DEADLINE);
}

int weft_file_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    weft_loop_t *l = weft__tls_loop;
    if (l == NULL || l->current == NULL)
        return -EPERM;
    /* Pipes, FIFOs, sockets, terminals may have tasks waiting on them (weft_wait_fd) and a
     * place in the loop's fd table: weft_close() wakes those, forgets the fd and closes it
     * (such a close flushes nothing to a disk). Files and directories go to the engine. */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode))
        return weft_close(fd);
    struct weft__fsop op = {.code = WEFT__FS_CLOSE, .fd = fd};
    return (int)weft__fs_run(&op, WEFT_NO_DEADLINE);
}

static ssize_t rw(uint8_t code, int fd, const void *buf, size_t n, int64_t off, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (off < -1)
        return -EINVAL;
    struct weft__fsop op = {.code = code, .fd = fd, .buf = (void *)buf, .len = n, .off = off};
    return weft__fs_run(&op, deadline);
}

ssize_t weft_file_read_dl(int fd, void *buf, size_t n, int64_t deadline)
{
    return rw(WEFT__FS_READ, fd, buf, n, -1, deadline);
}

ssize_t weft_file_read(int fd, void *buf, size_t n)
{
    return rw(WEFT__FS_READ, fd, buf, n, -1, WEFT_NO_DEADLINE);
}

ssize_t weft_file_pread_dl(int fd, void *buf, size_t n, int64_t offset, int64_t deadline)
{
    return offset < 0 ? -EINVAL : rw(WEFT__FS_READ, fd, buf, n, offset, deadline);
}

ssize_t weft_file_pread(int fd, void *buf, size_t n, int64_t offset)
{
    return weft_file_pread_dl(fd, buf, n, offset, WEFT_NO_DEADLINE);
}

ssize_t weft_file_write_dl(int fd, const void *buf, size_t n, int64_t deadline)
{
    return rw(WEFT__FS_WRITE, fd, buf, n, -1, deadline);
}

ssize_t weft_file_write(int fd, const void *buf, size_t n)
{
    return rw(WEFT__FS_WRITE, fd, buf, n, -1, WEFT_NO_DEADLINE);
}

ssize_t weft_file_pwrite_dl(int fd, const void *buf, size_t n, int64_t offset, int64_t deadline)
{
    return offset < 0 ? -EINVAL : rw(WEFT__FS_WRITE, fd, buf, n, offset, deadline);
}

ssize_t weft_file_pwrite(int fd, const void *buf, size_t n, int64_t offset)
{
    return weft_file_pwrite_dl(fd, buf, n, offset, WEFT_NO_DEADLINE);
}

static ssize_t rwv(uint8_t code, int fd, const struct iovec *iov, int cnt, int64_t off,
                   int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (off < -1 || cnt < 0 || cnt > 1024 || (iov == NULL && cnt > 0))
        return -EINVAL;
    struct weft__fsop op = {.code = code, .fd = fd, .iov = iov, .iovcnt = cnt, .off = off};
    return weft__fs_run(&op, deadline);
}

ssize_t weft_file_readv_dl(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                           int64_t deadline)
{
    return rwv(WEFT__FS_READV, fd, iov, iovcnt, offset, deadline);
}

ssize_t weft_file_readv(int fd, const struct iovec *iov, int iovcnt, int64_t offset)
{
    return rwv(WEFT__FS_READV, fd, iov, iovcnt, offset, WEFT_NO_DEADLINE);
}

ssize_t weft_file_writev_dl(int fd, const struct iovec *iov, int iovcnt, int64_t offset,
                            int64_t deadline)
{
    return rwv(WEFT__FS_WRITEV, fd, iov, iovcnt, offset, deadline);
}

ssize_t weft_file_writev(int fd, const struct iovec *iov, int iovcnt, int64_t offset)
{
    return rwv(WEFT__FS_WRITEV, fd, iov, iovcnt, offset, WEFT_NO_DEADLINE);
}

static int fdop(uint8_t code, int fd, int64_t off)
{
    if (fd < 0)
        return -EBADF;
    struct weft__fsop op = {.code = code, .fd = fd, .off = off};
    return (int)weft__fs_run(&op, WEFT_NO_DEADLINE);
}

int weft_file_fsync(int fd)
{
    return fdop(WEFT__FS_FSYNC, fd, 0);
}

int weft_file_fdatasync(int fd)
{
    return fdop(WEFT__FS_FDATASYNC, fd, 0);
}

int weft_file_ftruncate(int fd, int64_t length)
{
    return length < 0 ? -EINVAL : fdop(WEFT__FS_FTRUNCATE, fd, length);
}

int weft_file_fstat(int fd, struct stat *st)
{
    if (fd < 0)
        return -EBADF;
    if (st == NULL)
        return -EFAULT;
    struct weft__fsop op = {.code = WEFT__FS_FSTAT, .fd = fd, .st = st};
    return (int)weft__fs_run(&op, WEFT_NO_DEADLINE);
}

static int pathop(uint8_t code, const char *path, const char *path2, mode_t mode,
                  struct stat *st)
{
    if (path == NULL || (code == WEFT__FS_RENAME && path2 == NULL) ||
        (code == WEFT__FS_STAT && st == NULL))
        return -EFAULT;
    struct weft__fsop op = {.code = code, .fd = -1, .path = path, .path2 = path2, .mode = mode,
                            .st = st};
    return (int)weft__fs_run(&op, WEFT_NO_DEADLINE);
}

int weft_file_stat(const char *path, struct stat *st)
{
    return pathop(WEFT__FS_STAT, path, NULL, 0, st);
}

int weft_file_rename(const char *from, const char *to)
{
    return pathop(WEFT__FS_RENAME, from, to, 0, NULL);
}

int weft_file_unlink(const char *path)
{
    return pathop(WEFT__FS_UNLINK, path, NULL, 0, NULL);
}

int weft_file_mkdir(const char *path, mode_t mode)
{
    return pathop(WEFT__FS_MKDIR, path, NULL, mode, NULL);
}

int weft_file_rmdir(const char *path)
{
    return pathop(WEFT__FS_RMDIR, path, NULL, 0, NULL);
}

void weft_file_free(void *p)
{
    weft__free(p);
}
