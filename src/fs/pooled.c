/*
 * The thread-pool engine. A task copies what a pool thread needs (paths, the iovec array) into
 * a job, queues it in the pool's general class and parks. The caller's data buffer is shared
 * with the thread under a small state machine, so that a task leaving early (cancel, deadline)
 * never returns while the thread may still touch it:
 *   FREE    the thread has not touched the buffer: the leaving task marks it GONE and goes;
 *   USER    the thread reads or writes it directly (regular files and block devices, whose I/O
 *           always ends): the leaving task waits for the job;
 *   COPYING the thread claimed the job and looks at the fd (fstat), duplicates it and copies
 *           the data to be written into a private buffer (a few µs): the leaving task waits
 *           for USER or PRIV;
 *   PRIV    the thread works on its private buffer and a duplicate of the fd (fds that may
 *           block forever: pipes, FIFOs, sockets, terminals): the leaving task abandons the
 *           job, the thread frees it; the caller may close its fd at once.
 * Operations without a data buffer work on the job's copies only and are abandoned freely; an
 * open that succeeds after its caller left is closed by the thread.
 */
#include "fs/fs.h"
#include "pool/pool.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { B_FREE = 0, B_USER, B_COPYING, B_PRIV, B_GONE };

struct pjob {
    struct weft__job job; /* first: the pool frees the job, which is the whole block */
    struct weft__fsop op; /* paths point into path_copy, st at stbuf, iov at iov_copy */
    atomic_int bstate;    /* B_*, for operations with a data buffer */
    const struct iovec *user_iov; /* the caller's buffers: (buf, len) or its iovec array */
    int user_iovcnt;
    struct iovec one;     /* READ/WRITE as a one-element vector */
    void *bounce;         /* PRIV: the private buffer (thread-owned until delivered) */
    struct stat stbuf;
    struct iovec *iov_copy;
    char path_copy[];
};

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++) {
        t += iov[i].iov_len;
        if (t > WEFT__FS_MAX_RW)
            return WEFT__FS_MAX_RW;
    }
    return t;
}

/* Copy between a flat buffer and a vector, up to `n` bytes. */
static void scatter(const struct iovec *iov, int cnt, const char *src, size_t n)
{
    for (int i = 0; i < cnt && n > 0; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        memcpy(iov[i].iov_base, src, k);
        src += k;
        n -= k;
    }
}

static void gather(char *dst, const struct iovec *iov, int cnt, size_t n)
{
    for (int i = 0; i < cnt && n > 0; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        memcpy(dst, iov[i].iov_base, k);
        dst += k;
        n -= k;
    }
}

static int sys_rw(uint8_t code, int fd, const struct iovec *iov, int cnt, int64_t off)
{
    ssize_t r;
    bool rd = code == WEFT__FS_READ || code == WEFT__FS_READV;
    if (cnt == 1) {
        size_t n = iov[0].iov_len > WEFT__FS_MAX_RW ? WEFT__FS_MAX_RW : iov[0].iov_len;
        if (rd)
            r = off < 0 ? read(fd, iov[0].iov_base, n) : pread(fd, iov[0].iov_base, n, off);
        else
            r = off < 0 ? write(fd, iov[0].iov_base, n) : pwrite(fd, iov[0].iov_base, n, off);
    } else if (rd) {
        r = off < 0 ? readv(fd, iov, cnt) : preadv(fd, iov, cnt, off);
    } else {
        r = off < 0 ? writev(fd, iov, cnt) : pwritev(fd, iov, cnt, off);
    }
    return r < 0 ? -errno : (int)r;
}

/* An operation without a data buffer, on the job's own copies. */
static int sys_other(struct weft__fsop *op)
{
    int r;
    switch (op->code) {
    case WEFT__FS_OPEN:
        r = open(op->path, op->flags, op->mode);
        break;
    case WEFT__FS_CLOSE:
        r = close(op->fd);
        if (r < 0 && errno == EINTR)
            r = 0; /* Linux closed it anyway */
        break;
    case WEFT__FS_FSYNC:
        r = fsync(op->fd);
        break;
    case WEFT__FS_FDATASYNC:
        r = fdatasync(op->fd);
        break;
    case WEFT__FS_FTRUNCATE:
        r = ftruncate(op->fd, op->off);
        break;
    case WEFT__FS_FSTAT:
        r = fstat(op->fd, op->st);
        break;
    case WEFT__FS_STAT:
        r = stat(op->path, op->st);
        break;
    case WEFT__FS_RENAME:
        r = rename(op->path, op->path2);
        break;
    case WEFT__FS_UNLINK:
        r = unlink(op->path);
        break;
    case WEFT__FS_MKDIR:
        r = mkdir(op->path, op->mode);
        break;
    case WEFT__FS_RMDIR:
        r = rmdir(op->path);
        break;
    default:
        return -EINVAL;
    }
    return r < 0 ? -errno : r;
}

/* The pool thread's part. */
static int pjob_run(void *arg)
{
    struct pjob *p = arg;
    struct weft__fsop *op = &p->op;
    if (!weft__fsop_moves(op->code))
        return sys_other(op);
    /* Claim the job first: from here the caller waits for USER or PRIV (a few µs), so the fd
     * and the buffer are the caller's while they are looked at. */
    int exp = B_FREE;
    if (!atomic_compare_exchange_strong(&p->bstate, &exp, B_COPYING))
        return -ECANCELED;
    struct stat sb;
    bool direct = fstat(op->fd, &sb) != 0 || S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode);
    if (direct) {
        atomic_store(&p->bstate, B_USER);
        return sys_rw(op->code, op->fd, p->user_iov, p->user_iovcnt, op->off);
    }
    size_t n = iov_total(p->user_iov, p->user_iovcnt);
    char *b = weft__malloc(n ? n : 1);
    /* The caller may close its fd (and the number be reused) once it left: work on a
     * duplicate. */
    int dfd = b != NULL ? fcntl(op->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (dfd < 0) {
        int e = b == NULL ? -ENOMEM : -errno;
        weft__free(b);
        atomic_store(&p->bstate, B_PRIV); /* nothing of the caller's is used any more */
        return e;
    }
    p->bounce = b;
    bool rd = op->code == WEFT__FS_READ || op->code == WEFT__FS_READV;
    if (!rd)
        gather(b, p->user_iov, p->user_iovcnt, n);
    atomic_store(&p->bstate, B_PRIV);
    struct iovec v = {b, n};
    int r = sys_rw(op->code, dfd, &v, 1, op->off);
    close(dfd);
    return r;
}

/* Free what the job holds besides itself; an fd opened for nobody is closed. Either side. */
static void pjob_clear(struct pjob *p, int result)
{
    if (p->op.code == WEFT__FS_OPEN && result >= 0)
        close(result);
    weft__free(p->bounce);
    p->bounce = NULL;
    weft__free(p->iov_copy);
    p->iov_copy = NULL;
}

/* Pool thread, the waiter gone: the pool frees the job itself afterwards. */
static void pjob_drop(void *arg, int result)
{
    pjob_clear(arg, result);
}

static struct pjob *pjob_new(const struct weft__fsop *op)
{
    size_t l1 = op->path ? strlen(op->path) + 1 : 0;
    size_t l2 = op->path2 ? strlen(op->path2) + 1 : 0;
    struct pjob *p = weft__malloc(sizeof(*p) + l1 + l2);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    p->op = *op;
    atomic_init(&p->bstate, B_FREE);
    if (op->path != NULL) {
        memcpy(p->path_copy, op->path, l1);
        p->op.path = p->path_copy;
    }
    if (op->path2 != NULL) {
        memcpy(p->path_copy + l1, op->path2, l2);
        p->op.path2 = p->path_copy + l1;
    }
    if (op->st != NULL)
        p->op.st = &p->stbuf;
    if (op->code == WEFT__FS_READ || op->code == WEFT__FS_WRITE) {
        p->one.iov_base = op->buf;
        p->one.iov_len = op->len;
        p->user_iov = &p->one;
        p->user_iovcnt = 1;
    } else if (op->code == WEFT__FS_READV || op->code == WEFT__FS_WRITEV) {
        if (op->iovcnt > 0) {
            p->iov_copy = weft__malloc((size_t)op->iovcnt * sizeof(struct iovec));
            if (p->iov_copy == NULL) {
                weft__free(p);
                return NULL;
            }
            memcpy(p->iov_copy, op->iov, (size_t)op->iovcnt * sizeof(struct iovec));
        }
        p->user_iov = p->iov_copy;
        p->user_iovcnt = op->iovcnt;
    }
    return p;
}

/* Wait (not cancellable) for the job's completion callback; a cancel meanwhile stays pending. */
static void await_delivery(weft_task_t *t, struct pjob *p)
{
    bool again = false;
    while (!p->job.delivered)
        if (weft__park(t, WEFT__P_PRIM, &p->job, NULL, WEFT_NO_DEADLINE) == -ECANCELED)
            again = true;
    if (again)
        t->must_cancel = 1;
}

/* The job was delivered: hand its result to the caller and free it. `left` is why the caller
 * tried to leave (-ECANCELED, -ETIMEDOUT) or 0. */
static ssize_t finish(weft_task_t *t, struct pjob *p, const struct weft__fsop *op, int left)
{
    int r = p->job.result;
    if (left != 0 && r == -ECANCELED) {
        r = left; /* the thread saw GONE: nothing happened */
    } else {
        if (left == -ECANCELED)
            t->must_cancel = 1; /* it happened anyway: report it, the cancel stays pending */
        if (r >= 0 && p->bounce != NULL &&
            (op->code == WEFT__FS_READ || op->code == WEFT__FS_READV))
            scatter(p->user_iov, p->user_iovcnt, p->bounce, (size_t)r);
        if (r >= 0 && op->st != NULL)
            *op->st = p->stbuf;
    }
    pjob_clear(p, -1); /* an opened fd is the caller's now */
    weft__free(p);
    return r;
}

ssize_t weft__fs_pool_run(weft_task_t *t, const struct weft__fsop *op, int64_t deadline)
{
    struct pjob *p = pjob_new(op);
    if (p == NULL)
        return -ENOMEM;
    p->job.fn = pjob_run;
    p->job.arg = p;
    p->job.drop = pjob_drop;
    p->job.loop = t->fut.loop;
    p->job.waiter = t;
    p->job.cls = WEFT__POOL_WORK;
    p->job.done.kind = WEFT__RN_HANDLE; /* the completion, posted without allocating */
    p->job.done.heap = WEFT__H_NONE;
    p->job.done.cb = weft__job_complete;
    p->job.done.arg = &p->job;
    weft__list_init(&p->job.link);
    int err = weft__pool_submit(&p->job);
    if (err < 0) {
        pjob_clear(p, -1);
        weft__free(p);
        return err;
    }
    int r = weft__park(t, WEFT__P_PRIM, &p->job, NULL, deadline);
    if (p->job.delivered)
        return finish(t, p, op, r == -ECANCELED ? -ECANCELED : 0);
    if (r == -ENOMEM) {
        /* The deadline timer could not be armed: the task never suspended. Wait it out. */
        await_delivery(t, p);
        return finish(t, p, op, 0);
    }
    /* Leaving early (r is -ECANCELED or -ETIMEDOUT): may the thread still touch the buffer? */
    bool can_leave = true;
    if (weft__fsop_moves(op->code)) {
        for (;;) {
            int s = B_FREE;
            if (atomic_compare_exchange_strong(&p->bstate, &s, B_GONE))
                break; /* no thread will touch it any more */
            if (s == B_PRIV)
                break;
            if (s == B_USER) {
                can_leave = false;
                break;
            }
            sched_yield(); /* B_COPYING: an fstat, a dup and a memcpy away from USER or PRIV */
        }
    } else if (op->code != WEFT__FS_OPEN) {
        /* fsync, ftruncate, rename...: once running, they finish (bounded by the device) and
         * report what they did, as on io_uring, where they cannot be cancelled either; left
         * alone, one could also reach a file that took over a closed fd's number. An open may
         * wait forever (a FIFO without its other end): it is abandoned, its fd closed. */
        can_leave = false;
    }
    switch (weft__pool_leave(&p->job, can_leave)) {
    case WEFT__J_QUEUED:
        pjob_clear(p, -1);
        weft__free(p);
        return r;
    case WEFT__J_RUNNING:
        if (can_leave)
            return r; /* the thread drops and frees the job */
        await_delivery(t, p);
        return finish(t, p, op, r);
    default: /* WEFT__J_POSTED: the result is on its way; take it */
        await_delivery(t, p);
        return finish(t, p, op, r);
    }
}
