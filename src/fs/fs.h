/*
 * The file API's private parts (src/fs). A public call fills a struct weft__fsop and hands it to
 * the loop's engine: the thread pool (pool.c) or the loop's io_uring ring (uring.c), chosen once
 * per loop (engine.c). Either engine returns only once the kernel and the pool threads can no
 * longer touch the caller's buffers (docs/files.md, "Buffers and cancellation").
 */
#ifndef WEFT_FS_H
#define WEFT_FS_H

#include "internal.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Operations. */
enum {
    WEFT__FS_OPEN = 1,
    WEFT__FS_CLOSE,
    WEFT__FS_READ,   /* buf, len, off (-1: the file position) */
    WEFT__FS_WRITE,
    WEFT__FS_READV,  /* iov, iovcnt, off */
    WEFT__FS_WRITEV,
    WEFT__FS_FSYNC,
    WEFT__FS_FDATASYNC,
    WEFT__FS_FTRUNCATE, /* off = length */
    WEFT__FS_FSTAT,     /* st */
    WEFT__FS_STAT,      /* path, st */
    WEFT__FS_RENAME,    /* path, path2 */
    WEFT__FS_UNLINK,
    WEFT__FS_MKDIR,     /* path, mode */
    WEFT__FS_RMDIR,
    WEFT__FS_NOPS
};

/* The largest count one read or write moves (Linux's MAX_RW_COUNT): results fit an int. */
#define WEFT__FS_MAX_RW 0x7ffff000u

struct weft__fsop {
    uint8_t code;
    int fd;
    int flags;
    mode_t mode;
    const char *path;
    const char *path2;
    void *buf; /* READ/WRITE; the caller's */
    size_t len;
    const struct iovec *iov; /* READV/WRITEV; the caller's */
    int iovcnt;
    int64_t off;
    struct stat *st; /* FSTAT/STAT: filled on success */
};

/* True for the operations that move bytes through a caller's buffer. */
static inline bool weft__fsop_moves(uint8_t code)
{
    return code >= WEFT__FS_READ && code <= WEFT__FS_WRITEV;
}

/* Engines (the public WEFT_FILE_* values). */
struct weft__ring;

/* Run `op` for the current task `t` on the pool / the loop's ring. Returns the kernel's result
 * (>= 0, or a negative errno), -ECANCELED or -ETIMEDOUT (then the operation did not happen or was
 * undone by the kernel and nothing of it is reported), -ENOMEM. */
ssize_t weft__fs_pool_run(weft_task_t *t, const struct weft__fsop *op, int64_t deadline);
ssize_t weft__fs_uring_run(weft_task_t *t, struct weft__ring *r, const struct weft__fsop *op,
                           int64_t deadline);

/* Run `op` on the current loop's engine (engine.c). */
ssize_t weft__fs_run(struct weft__fsop *op, int64_t deadline);

/* The io_uring engine (uring.c). */
int weft__uring_probe(void); /* once per process: 0 usable, else why not (negative errno) */
bool weft__uring_supports(uint8_t code); /* after a successful probe */
int weft__uring_new(weft_loop_t *loop, struct weft__ring **out);
void weft__uring_free(weft_loop_t *loop, struct weft__ring *r);

/* The loop's file state (weft_loop.files). */
struct weft__files {
    int engine; /* WEFT_FILE_POOL or WEFT_FILE_URING */
    struct weft__ring *ring;
    /* The inline budget (engine.c): what `btask` spent (`bused` units) on operations that
     * completed without suspending since iteration `biter` began. */
    weft_task_t *btask;
    uint32_t biter;
    uint32_t bused;
    /* Cached reads handed to a pool thread (drain.c; the pool engine, two CPUs or more). */
    struct weft__drain *drain; /* made with the first hand-over, or NULL */
    int offload_max;           /* the cap on reads handed over and not yet made (0: none) */
    uint32_t unwoken;          /* reads kept inline since the reader was last started */
};

/*
 * A read from the page cache that never waits for a device (preadv2 RWF_NOWAIT, retried after
 * a short count), on whichever thread: returns the bytes read (the end of the file or an error
 * after some bytes stops it), or a negative errno when the first attempt failed (not cached, a
 * pipe without data, no NOWAIT support: the whole read belongs to the pool). *rest is set when
 * some bytes were read and the rest is not cached (engine.c).
 */
ssize_t weft__fs_read_nowait(int fd, void *buf, size_t len, int64_t off, bool *rest);

/* The task's end of a read that weft__fs_read_nowait() answered with (n, rest): the pool reads
 * what was not cached (engine.c). */
ssize_t weft__fs_read_finish(weft_task_t *t, const struct weft__fsop *op, ssize_t n, bool rest,
                             int64_t deadline);

/*
 * The reader (drain.c): a loop's cached reads handed to one pool thread in batches. While the
 * reader runs, the task pushes its read on a list without a lock and parks; the reader takes the
 * whole list at once, makes each read with weft__fs_read_nowait() (never waiting for a device)
 * and posts the batch's completions to the loop under one lock. Returns what the read returns,
 * with *handed set; *handed false (nothing done: the caller reads inline) when the reader is
 * not running (it may have been started), at the cap, or memory is missing.
 */
ssize_t weft__fs_drain_run(weft_task_t *t, struct weft__files *f, struct weft__fsop *op,
                           int64_t deadline, bool *handed);
/* The loop's file state goes: the reader frees its part when its job ends. */
void weft__drain_close(struct weft__drain *d);

/* Convert a statx result (uring.c). */
struct statx;
void weft__statx_to_stat(const struct statx *x, struct stat *st);

/* The inline budget, in units: a file call costs one, plus one per 8 KiB it moved (engine.c). */
#define WEFT__FS_BUDGET 32

/* The pool engine's cap on this loop's reads handed to the reader and not yet made (engine.c;
 * tests set 0: every cached read inline). */
extern int weft__fs_offload_max;

/* Tests: every pool-engine read is handed to the reader (a lone task's too, past the cap, with
 * one CPU), which is started for it and waits in the pool's queue like any job when no thread
 * is free. */
extern bool weft__fs_offload_always;

/* Reads the reader made, in every loop (tests). */
extern atomic_ulong weft__fs_drain_reads;

/* Tests: the pool engine's reads skip the page-cache attempt (engine.c). */
extern bool weft__fs_no_nowait;

/* Tests: called by weft_file_write_atomic between the temporary file's fsync and the rename. */
extern void (*weft__fs_atomic_hook)(void);

#endif /* WEFT_FS_H */
