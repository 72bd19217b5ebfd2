/*
 * io_uring on raw system calls (ioring.h): setup, mapping, probe, submission, waiting.
 */
#include "io/ioring.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned submit, unsigned min, unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, fd, submit, min, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

int weft__ioring_probe(uint32_t *features, uint8_t ok[256])
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    memset(ok, 0, 256);
    int fd = sys_setup(4, &p);
    if (fd < 0)
        return -errno;
    *features = p.features;
    size_t sz = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
    struct io_uring_probe *pr = weft__calloc(1, sz);
    if (pr == NULL) {
        close(fd);
        return -ENOMEM;
    }
    int r = sys_register(fd, IORING_REGISTER_PROBE, pr, 256);
    int e = errno;
    close(fd);
    if (r < 0) {
        weft__free(pr);
        return -e;
    }
    for (unsigned i = 0; i < pr->ops_len && i < 256; i++)
        ok[i] = (pr->ops[i].flags & IO_URING_OP_SUPPORTED) != 0;
    weft__free(pr);
    return 0;
}

int weft__ioring_init(struct weft__ioring *r, unsigned sq, unsigned cq)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    memset(r, 0, sizeof(*r));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = cq;
    int fd = sys_setup(sq, &p);
    if (fd < 0)
        return -errno;
    r->fd = fd;
    r->sq_entries = p.sq_entries;
    r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && r->cq_len > r->sq_len)
        r->sq_len = r->cq_len;
    int err = 0;
    r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                     IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) {
        err = -errno;
        r->sq_map = NULL;
        goto fail;
    }
    if (single) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                         IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED) {
            err = -errno;
            r->cq_map = NULL;
            goto fail;
        }
    }
    r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) {
        err = -errno;
        r->sqes = NULL;
        goto fail;
    }
    char *sqm = r->sq_map, *cqm = r->cq_map;
    r->ksq_head = (unsigned *)(sqm + p.sq_off.head);
    r->ksq_tail = (unsigned *)(sqm + p.sq_off.tail);
    r->ksq_mask = (unsigned *)(sqm + p.sq_off.ring_mask);
    r->ksq_array = (unsigned *)(sqm + p.sq_off.array);
    r->sq_tail = *r->ksq_tail;
    r->kcq_head = (unsigned *)(cqm + p.cq_off.head);
    r->kcq_tail = (unsigned *)(cqm + p.cq_off.tail);
    r->kcq_mask = (unsigned *)(cqm + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cqm + p.cq_off.cqes);
    return 0;
fail:
    weft__ioring_fini(r);
    return err;
}

void weft__ioring_fini(struct weft__ioring *r)
{
    if (r->sqes != NULL)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map != NULL && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_len);
    if (r->sq_map != NULL)
        munmap(r->sq_map, r->sq_len);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

int weft__ioring_submit(struct weft__ioring *r)
{
    __atomic_store_n(r->ksq_tail, r->sq_tail, __ATOMIC_RELEASE);
    for (;;) {
        unsigned n = r->sq_tail - __atomic_load_n(r->ksq_head, __ATOMIC_ACQUIRE);
        if (n == 0)
            return 0;
        int k = sys_enter(r->fd, n, 0, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EAGAIN;
    }
}

int weft__ioring_wait(struct weft__ioring *r)
{
    for (;;) {
        if (sys_enter(r->fd, 0, 1, IORING_ENTER_GETEVENTS) >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}
