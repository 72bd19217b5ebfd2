/*
 * The I/O backend seam: everything the core needs from the OS's readiness interface, in seven
 * operations. A backend is the bottom layer: it knows fds, event bits and an opaque token per
 * fd, nothing of tasks or loops. The core (core/fdwait.c) keeps the fd table and its waiters
 * above it and hands the backend, at init, the one function through which events come back.
 * Completion sources (the io_uring file engine's ring) are fds like any other here: their
 * tokens lead the core to a handler instead of waiters. epoll is the only backend today.
 * This header includes nothing of the core's (the allocator aside); keep it so.
 */
#ifndef WEFT_IO_BACKEND_H
#define WEFT_IO_BACKEND_H

#include "arch/cc.h"

#include <stdint.h>

/* Event bits a backend reports. IN and OUT are WEFT_READABLE and WEFT_WRITABLE (the core checks
 * this). HUP: both directions are dead for good (a hang-up); RDHUP: only the input ended (the
 * peer's shutdown of its writing side says nothing about ours). An error alone is reported as
 * IN | OUT, once (an edge): it may pass. */
#define WEFT__IO_IN    0x1
#define WEFT__IO_OUT   0x2
#define WEFT__IO_HUP   0x100
#define WEFT__IO_RDHUP 0x200

/* How a backend reports an event: `ctx` as given to init, `token` as given to watch. */
typedef void (*weft__io_report_fn)(void *ctx, void *token, int events);

struct weft__backend {
    const char *name;
    /* Make the backend's state in *data; events will be reported as report(ctx, token,
     * events). Returns 0 or a negative errno. */
    int (*init)(void **data, weft__io_report_fn report, void *ctx);
    /* Release everything init made. */
    void (*fini)(void *data);
    /* Start reporting readiness of `fd` (edge-triggered) in the directions `events` names
     * (WEFT__IO_IN and/or WEFT__IO_OUT; hang-ups and errors always), handing `token` back with
     * each event. Watching a watched fd again replaces its token and directions. -EPERM: not
     * pollable. */
    int (*watch)(void *data, int fd, void *token, int events);
    /* Change the directions a watched `fd` reports; a direction turned on reports its current
     * readiness at once (as a fresh watch would). Returns 0 or a negative errno. */
    int (*modify)(void *data, int fd, void *token, int events);
    /* Stop reporting `fd` (before it is closed). */
    void (*unwatch)(void *data, int fd);
    /* Wait up to `timeout` ns (0 = poll, -1 = forever) and report what came. Returns the number
     * of fd events reported. Not reentrant: a report must not call wait. */
    int (*wait)(void *data, int64_t timeout);
    /* Make a concurrent or future wait() return. Thread-safe and async-signal-safe. */
    void (*wake)(void *data);
};

extern const struct weft__backend weft__backend_epoll;

#endif /* WEFT_IO_BACKEND_H */
