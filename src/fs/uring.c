/*
 * The io_uring engine, on raw system calls (no liburing): one ring per loop, no SQPOLL thread.
 * A task fills a submission entry, submits it at once (io_uring_enter) and looks at the
 * completion queue: page-cache hits complete during the submission, so the task goes on without
 * parking. Otherwise it parks on its operation; the ring's fd is watched by the loop's backend
 * (epoll) as a completion source (internal.h), whose events reap the completion queue and wake
 * the tasks. A task leaving early submits IORING_OP_ASYNC_CANCEL for its operation and waits for
 * the operation's completion: only then may its buffers go back to the caller. The ring itself
 * (setup, entries, submission, the completion queue) is src/io/ioring.c, which knows nothing of
 * tasks: this file is the layer that parks and wakes them.
 *
 * Probe (once per process): io_uring_setup must work (EPERM: seccomp or
 * kernel.io_uring_disabled; ENOSYS; ENOMEM: a memlock limit), the kernel must have native io-wq
 * workers (5.12+) and read/write at the file position, and IORING_REGISTER_PROBE must list the
 * read/write/fsync/cancel opcodes; others (openat, close, statx, renameat, unlinkat, mkdirat) are
 * used when listed, the pool runs them otherwise.
 */
#include "fs/fs.h"
#include "io/ioring.h"

#include <fcntl.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SQ_ENTRIES 256
#define CQ_ENTRIES 4096
#define CAP        (CQ_ENTRIES - 64) /* completions outstanding at most (cancels included) */

/* One operation in flight: what the completion handler needs. */
struct uop {
    struct uop *next; /* free list */
    struct uop *all;  /* every uop of the ring, to free them */
    weft_task_t *task;
    int res;
    uint8_t done;
};

struct slotwaiter {
    struct weft__list link;
    weft_task_t *task;
};

struct weft__ring {
    struct weft__fdsource src; /* first: aligned on a line */
    weft_loop_t *loop;
    struct weft__ioring io;
    unsigned pending; /* completions not reaped yet */
    bool closing;     /* the loop closes: wake nobody */
    struct uop *free;
    struct uop *all;
    struct weft__list slot_waiters; /* struct slotwaiter */
};

/* ---- the probe ---- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_err = -ENOSYS;
static uint8_t op_ok[256];

static const uint8_t code_op[WEFT__FS_NOPS] = {
    [WEFT__FS_OPEN] = IORING_OP_OPENAT,   [WEFT__FS_CLOSE] = IORING_OP_CLOSE,
    [WEFT__FS_READ] = IORING_OP_READ,     [WEFT__FS_WRITE] = IORING_OP_WRITE,
    [WEFT__FS_READV] = IORING_OP_READV,   [WEFT__FS_WRITEV] = IORING_OP_WRITEV,
    [WEFT__FS_FSYNC] = IORING_OP_FSYNC,   [WEFT__FS_FDATASYNC] = IORING_OP_FSYNC,
    [WEFT__FS_FSTAT] = IORING_OP_STATX,   [WEFT__FS_STAT] = IORING_OP_STATX,
    [WEFT__FS_RENAME] = IORING_OP_RENAMEAT, [WEFT__FS_UNLINK] = IORING_OP_UNLINKAT,
    [WEFT__FS_MKDIR] = IORING_OP_MKDIRAT, [WEFT__FS_RMDIR] = IORING_OP_UNLINKAT,
    /* FTRUNCATE: only since 6.9, and rare: always the pool */
};

static void do_probe(void)
{
    uint32_t features = 0;
    int e = weft__ioring_probe(&features, op_ok);
    if (e < 0) {
        probe_err = e;
        return;
    }
    if (!(features & IORING_FEAT_NATIVE_WORKERS) || !(features & IORING_FEAT_RW_CUR_POS) ||
        !(features & IORING_FEAT_NODROP) || !(features & IORING_FEAT_SUBMIT_STABLE)) {
        probe_err = -ENOSYS;
        return;
    }
    static const uint8_t need[] = {IORING_OP_READ,  IORING_OP_WRITE, IORING_OP_READV,
                                   IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_ASYNC_CANCEL};
    for (size_t i = 0; i < sizeof(need); i++) {
        if (!op_ok[need[i]]) {
            probe_err = -ENOSYS;
            return;
        }
    }
    probe_err = 0;
}

int weft__uring_probe(void)
{
    pthread_once(&probe_once, do_probe);
    return probe_err;
}

bool weft__uring_supports(uint8_t code)
{
    return code < WEFT__FS_NOPS && code_op[code] != 0 && op_ok[code_op[code]];
}

/* ---- the ring ---- */

static inline void on_cqe(void *ctx, uint64_t user_data, int res)
{
    struct weft__ring *r = ctx;
    struct uop *u = (struct uop *)(uintptr_t)user_data;
    if (u != NULL) {
        u->res = res;
        u->done = 1;
        if (!r->closing && weft__parked_on(u->task) == u)
            weft__wake(u->task, 0);
    }
}

static void reap(struct weft__ring *r)
{
    unsigned n = weft__ioring_reap(&r->io, on_cqe, r);
    if (n == 0)
        return;
    r->pending -= n;
    if (!r->closing && !weft__list_empty(&r->slot_waiters) && r->pending < CAP) {
        struct slotwaiter *w =
            weft__container_of(r->slot_waiters.next, struct slotwaiter, link);
        weft__list_remove(&w->link);
        weft__wake(w->task, 0);
    }
}

static void ring_ready(weft_loop_t *l, struct weft__fdsource *src)
{
    (void)l;
    reap((struct weft__ring *)src);
}

int weft__uring_new(weft_loop_t *l, struct weft__ring **out)
{
    struct weft__ring *r = weft__malloc_line(sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    memset(r, 0, sizeof(*r));
    int err = weft__ioring_init(&r->io, SQ_ENTRIES, CQ_ENTRIES);
    if (err < 0) {
        weft__free_line(r);
        return err;
    }
    r->loop = l;
    weft__list_init(&r->slot_waiters);
    /* The ring's fd is readable while completions wait: the backend reports it to ring_ready. */
    r->src.ready = ring_ready;
    err = weft__fd_source_watch(l, r->io.fd, &r->src);
    if (err < 0) {
        weft__ioring_fini(&r->io);
        weft__free_line(r);
        return err;
    }
    *out = r;
    return 0;
}

void weft__uring_free(weft_loop_t *l, struct weft__ring *r)
{
    /* Operations of tasks the loop never finished (weft_loop_close without weft_run): cancel
     * them and wait, so that the kernel writes into no freed memory after this. */
    r->closing = true;
    reap(r);
    if (r->pending > 0) {
        struct io_uring_sqe *sqe = weft__ioring_sqe(&r->io);
        if (sqe != NULL) {
            sqe->opcode = IORING_OP_ASYNC_CANCEL;
            sqe->fd = -1;
            sqe->cancel_flags = 1u << 1; /* IORING_ASYNC_CANCEL_ANY (5.19) */
            r->pending++;
            if (weft__ioring_submit(&r->io) < 0)
                r->pending--;
        }
        while (r->pending > 0) {
            if (weft__ioring_wait(&r->io) < 0)
                break;
            reap(r);
        }
    }
    weft__fd_source_unwatch(l, r->io.fd);
    weft__ioring_fini(&r->io);
    while (r->all != NULL) {
        struct uop *u = r->all;
        r->all = u->all;
        weft__free(u);
    }
    weft__free_line(r);
}

/* ---- operations ---- */

static void prep(struct io_uring_sqe *sqe, const struct weft__fsop *op, struct statx *stx)
{
    sqe->opcode = code_op[op->code];
    sqe->fd = op->fd;
    switch (op->code) {
    case WEFT__FS_READ:
    case WEFT__FS_WRITE:
        sqe->addr = (uintptr_t)op->buf;
        sqe->len = (uint32_t)op->len;
        sqe->off = op->off < 0 ? (uint64_t)-1 : (uint64_t)op->off;
        break;
    case WEFT__FS_READV:
    case WEFT__FS_WRITEV:
        sqe->addr = (uintptr_t)op->iov;
        sqe->len = (uint32_t)op->iovcnt;
        sqe->off = op->off < 0 ? (uint64_t)-1 : (uint64_t)op->off;
        break;
    case WEFT__FS_FDATASYNC:
        sqe->fsync_flags = IORING_FSYNC_DATASYNC;
        break;
    case WEFT__FS_OPEN:
        sqe->fd = AT_FDCWD;
        sqe->addr = (uintptr_t)op->path;
        sqe->len = op->mode;
        sqe->open_flags = (uint32_t)op->flags;
        break;
    case WEFT__FS_FSTAT:
        sqe->addr = (uintptr_t)"";
        sqe->statx_flags = AT_EMPTY_PATH;
        sqe->len = STATX_BASIC_STATS;
        sqe->off = (uintptr_t)stx;
        break;
    case WEFT__FS_STAT:
        sqe->fd = AT_FDCWD;
        sqe->addr = (uintptr_t)op->path;
        sqe->len = STATX_BASIC_STATS;
        sqe->off = (uintptr_t)stx;
        break;
    case WEFT__FS_RENAME:
        sqe->fd = AT_FDCWD;
        sqe->addr = (uintptr_t)op->path;
        sqe->len = (uint32_t)AT_FDCWD;
        sqe->addr2 = (uintptr_t)op->path2;
        break;
    case WEFT__FS_UNLINK:
    case WEFT__FS_RMDIR:
        sqe->fd = AT_FDCWD;
        sqe->addr = (uintptr_t)op->path;
        sqe->unlink_flags = op->code == WEFT__FS_RMDIR ? AT_REMOVEDIR : 0;
        break;
    case WEFT__FS_MKDIR:
        sqe->fd = AT_FDCWD;
        sqe->addr = (uintptr_t)op->path;
        sqe->len = op->mode;
        break;
    default: /* CLOSE, FSYNC: the fd is all */
        break;
    }
}

void weft__statx_to_stat(const struct statx *x, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
    st->st_ino = x->stx_ino;
    st->st_mode = x->stx_mode;
    st->st_nlink = x->stx_nlink;
    st->st_uid = x->stx_uid;
    st->st_gid = x->stx_gid;
    st->st_rdev = makedev(x->stx_rdev_major, x->stx_rdev_minor);
    st->st_size = (off_t)x->stx_size;
    st->st_blksize = x->stx_blksize;
    st->st_blocks = (blkcnt_t)x->stx_blocks;
    st->st_atim.tv_sec = x->stx_atime.tv_sec;
    st->st_atim.tv_nsec = x->stx_atime.tv_nsec;
    st->st_mtim.tv_sec = x->stx_mtime.tv_sec;
    st->st_mtim.tv_nsec = x->stx_mtime.tv_nsec;
    st->st_ctim.tv_sec = x->stx_ctime.tv_sec;
    st->st_ctim.tv_nsec = x->stx_ctime.tv_nsec;
}

static struct uop *uop_get(struct weft__ring *r)
{
    struct uop *u = r->free;
    if (u != NULL) {
        r->free = u->next;
        return u;
    }
    u = weft__malloc(sizeof(*u));
    if (u != NULL) {
        u->all = r->all;
        r->all = u;
    }
    return u;
}

static void uop_put(struct weft__ring *r, struct uop *u)
{
    u->next = r->free;
    r->free = u;
}

/* Ask the kernel to cancel `u` (best effort: the completion comes either way). */
static void cancel_op(struct weft__ring *r, struct uop *u)
{
    struct io_uring_sqe *sqe = weft__ioring_sqe(&r->io);
    if (sqe == NULL)
        return;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = (uintptr_t)u;
    sqe->user_data = 0;
    r->pending++;
    if (weft__ioring_submit(&r->io) < 0) {
        weft__ioring_withdraw(&r->io); /* not taken */
        r->pending--;
    }
    reap(r);
}

ssize_t weft__fs_uring_run(weft_task_t *t, struct weft__ring *r, const struct weft__fsop *op,
                           int64_t deadline)
{
    while (r->pending >= CAP) {
        struct slotwaiter w = {.task = t};
        weft__list_append(&r->slot_waiters, &w.link);
        int e = weft__park(t, WEFT__P_PRIM, r, &w.link, deadline);
        if (e < 0) {
            if (r->pending < CAP && !weft__list_empty(&r->slot_waiters)) {
                /* pass the free slot on */
                struct slotwaiter *n =
                    weft__container_of(r->slot_waiters.next, struct slotwaiter, link);
                weft__list_remove(&n->link);
                weft__wake(n->task, 0);
            }
            return e;
        }
    }
    struct statx *stx = NULL;
    if (op->code == WEFT__FS_STAT || op->code == WEFT__FS_FSTAT) {
        stx = weft__malloc(sizeof(*stx));
        if (stx == NULL)
            return -ENOMEM;
    }
    struct uop *u = uop_get(r);
    struct io_uring_sqe *sqe = u != NULL ? weft__ioring_sqe(&r->io) : NULL;
    if (sqe == NULL) {
        if (u != NULL)
            uop_put(r, u);
        weft__free(stx);
        return weft__fs_pool_run(t, op, deadline);
    }
    prep(sqe, op, stx);
    sqe->user_data = (uintptr_t)u;
    u->task = t;
    u->done = 0;
    r->pending++;
    if (weft__ioring_submit(&r->io) < 0) {
        /* The kernel took nothing (-EAGAIN, -ENOMEM): withdraw the entry, use the pool. */
        weft__ioring_withdraw(&r->io);
        r->pending--;
        uop_put(r, u);
        weft__free(stx);
        return weft__fs_pool_run(t, op, deadline);
    }
    reap(r);
    int left = 0;
    if (!u->done) {
        int pr = weft__park(t, WEFT__P_PRIM, u, NULL, deadline);
        if (!u->done) {
            if (pr != -ENOMEM) {
                left = pr; /* -ECANCELED or -ETIMEDOUT */
                cancel_op(r, u);
            }
            bool again = false;
            while (!u->done)
                if (weft__park(t, WEFT__P_PRIM, u, NULL, WEFT_NO_DEADLINE) == -ECANCELED)
                    again = true;
            if (again)
                t->must_cancel = 1;
        } else if (pr == -ECANCELED) {
            t->must_cancel = 1; /* done before the cancel: the result wins, the cancel waits */
        }
    }
    int res = u->res;
    uop_put(r, u);
    if (left != 0 && (res == -ECANCELED || res == -EINTR)) {
        res = left;
    } else {
        if (left == -ECANCELED)
            t->must_cancel = 1;
        if (res >= 0 && stx != NULL)
            weft__statx_to_stat(stx, op->st);
    }
    weft__free(stx);
    return res;
}
