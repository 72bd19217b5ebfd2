/*
 * An io_uring instance on raw system calls (no liburing), for a layer above (the file engine,
 * src/fs/uring.c): setup and mapping, submission entries, submission, and the completion queue.
 * Like the readiness backends beside it, it knows only fds, entries and completions (a 64-bit
 * user_data and a result): nothing of tasks or loops. One thread uses an instance; no SQPOLL.
 */
#ifndef WEFT_IO_IORING_H
#define WEFT_IO_IORING_H

#include "arch/cc.h"

#include <linux/io_uring.h>
#include <stdint.h>
#include <string.h>

struct weft__ioring {
    int fd;
    unsigned sq_entries;
    unsigned sq_tail; /* ours, published to *ksq_tail by submit */
    unsigned *ksq_head, *ksq_tail, *ksq_mask, *ksq_array;
    struct io_uring_sqe *sqes;
    unsigned *kcq_head, *kcq_tail, *kcq_mask;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
};

/*
 * Make a 4-entry ring and ask the kernel what it offers: its IORING_FEAT_* bits in *features,
 * and ok[op] = 1 for every opcode IORING_REGISTER_PROBE lists as supported. Returns 0 or the
 * setup's or the probe's negative errno (EPERM: seccomp or kernel.io_uring_disabled; ENOSYS;
 * ENOMEM: a memlock limit).
 */
int weft__ioring_probe(uint32_t *features, uint8_t ok[256]);

/* Set up `r` with `sq` submission and at least `cq` completion entries (clamped by the kernel),
 * mapped and ready. Returns 0 or a negative errno (then nothing is left to free). */
int weft__ioring_init(struct weft__ioring *r, unsigned sq, unsigned cq);
/* Unmap and close. Operations still running in the kernel must have completed first (their
 * buffers are the caller's business). */
void weft__ioring_fini(struct weft__ioring *r);

/* A zeroed entry at the tail (queued, not yet submitted), or NULL when the queue is full. */
static inline struct io_uring_sqe *weft__ioring_sqe(struct weft__ioring *r)
{
    unsigned head = __atomic_load_n(r->ksq_head, __ATOMIC_ACQUIRE);
    if (r->sq_tail - head >= r->sq_entries)
        return NULL;
    unsigned idx = r->sq_tail & *r->ksq_mask;
    struct io_uring_sqe *sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof(*sqe));
    r->ksq_array[idx] = idx;
    r->sq_tail++;
    return sqe;
}

/* Take back the last entry got, which the kernel did not take (submit failed). */
static inline void weft__ioring_withdraw(struct weft__ioring *r)
{
    r->sq_tail--;
    __atomic_store_n(r->ksq_tail, r->sq_tail, __ATOMIC_RELEASE);
}

/* Hand every queued entry to the kernel. Returns 0 or a negative errno (-EAGAIN, -ENOMEM...:
 * then the entries the kernel did not take stay queued). */
int weft__ioring_submit(struct weft__ioring *r);

/* Block until at least one completion is there. Returns 0 or a negative errno (not EINTR). */
int weft__ioring_wait(struct weft__ioring *r);

/* Hand every completion there to fn(ctx, user_data, res), oldest first, and free their slots.
 * Returns how many there were. Inline, so that a constant `fn` is a direct call. */
static inline unsigned weft__ioring_reap(struct weft__ioring *r,
                                         void (*fn)(void *ctx, uint64_t user_data, int res),
                                         void *ctx)
{
    unsigned head = *r->kcq_head;
    unsigned tail = __atomic_load_n(r->kcq_tail, __ATOMIC_ACQUIRE);
    if (head == tail)
        return 0;
    unsigned n = tail - head;
    while (head != tail) {
        const struct io_uring_cqe *c = &r->cqes[head & *r->kcq_mask];
        fn(ctx, c->user_data, c->res);
        head++;
    }
    __atomic_store_n(r->kcq_head, head, __ATOMIC_RELEASE);
    return n;
}

#endif /* WEFT_IO_IORING_H */
