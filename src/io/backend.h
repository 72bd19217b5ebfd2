/*
 * The I/O backend seam: everything the core needs from the OS's readiness or completion
 * interface, in seven operations. The core keeps per-fd waiters itself (core/fdwait.c); a backend only
 * registers fds, sleeps, reports events through weft__io_event(), and wakes a sleeping loop from
 * another thread. epoll is the only backend today; io_uring can come in beside it.
 */
#ifndef WEFT_IO_BACKEND_H
#define WEFT_IO_BACKEND_H

#include "internal.h"

struct weft__backend {
    const char *name;
    /* Set up loop->backend_data. Returns 0 or a negative errno. */
    int (*init)(weft_loop_t *loop);
    /* Release everything init made. */
    void (*fini)(weft_loop_t *loop);
    /* Start reporting readiness of `fd` (edge-triggered, both directions), handing `st` (the fd's
     * state in the loop's table, which never moves) back with each event. -EPERM: not pollable. */
    int (*watch)(weft_loop_t *loop, int fd, struct weft__fdstate *st);
    /* Stop reporting `fd` (before it is closed). */
    void (*unwatch)(weft_loop_t *loop, int fd);
    /* Wait up to `timeout` ns (0 = poll, -1 = forever); report events with weft__io_event().
     * Returns the number of fd events reported. */
    int (*wait)(weft_loop_t *loop, int64_t timeout);
    /* Make a concurrent or future wait() return. Thread-safe. */
    void (*wake)(weft_loop_t *loop);
};

extern const struct weft__backend weft__backend_epoll;

#endif /* WEFT_IO_BACKEND_H */
