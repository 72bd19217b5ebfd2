/*
 * The epoll backend. Every fd is registered once, edge-triggered, the first time a task waits on
 * it, for the directions the core asks (input always; output while it may be waited for: see
 * fdwait.c), so steady-state I/O makes no epoll_ctl calls. An eventfd carries cross-thread
 * wake-ups. Timeouts use epoll_pwait2 (ns) where the kernel has it (5.11+). Knows
 * only fds, epoll's event bits and the tokens (backend.h).
 */
#include "io/backend.h"
#include "arch/sys.h"
#include "core/alloc.h"

#include <errno.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define WAKE_TOKEN UINT64_MAX

struct ep {
    int epfd;
    int evfd;
    int no_pwait2;
    weft__io_report_fn report;
    void *ctx;
    struct epoll_event evs[MAX_EVENTS];
};

static int ep_init(void **data, weft__io_report_fn report, void *ctx)
{
    struct ep *ep = weft__calloc(1, sizeof(*ep));
    if (ep == NULL)
        return -ENOMEM;
    ep->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ep->epfd < 0) {
        int err = -errno;
        weft__free(ep);
        return err;
    }
    ep->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep->evfd < 0) {
        int err = -errno;
        close(ep->epfd);
        weft__free(ep);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
    if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->evfd, &ev) < 0) {
        int err = -errno;
        close(ep->evfd);
        close(ep->epfd);
        weft__free(ep);
        return err;
    }
    ep->report = report;
    ep->ctx = ctx;
    *data = ep;
    return 0;
}

static void ep_fini(void *data)
{
    struct ep *ep = data;
    close(ep->evfd);
    close(ep->epfd);
    weft__free(ep);
}

static uint32_t ep_events(int events)
{
    uint32_t e = EPOLLRDHUP | EPOLLET;
    if (events & WEFT__IO_IN)
        e |= EPOLLIN;
    if (events & WEFT__IO_OUT)
        e |= EPOLLOUT;
    return e;
}

static int ep_watch(void *data, int fd, void *token, int events)
{
    struct ep *ep = data;
    struct epoll_event ev = {
        .events = ep_events(events),
        .data.ptr = token, /* events go straight to the core's state for the fd, no lookup */
    };
    if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    if (errno == EEXIST)
        return epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
    return -errno;
}

static int ep_modify(void *data, int fd, void *token, int events)
{
    struct ep *ep = data;
    struct epoll_event ev = {.events = ep_events(events), .data.ptr = token};
    return epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

static void ep_unwatch(void *data, int fd)
{
    struct ep *ep = data;
    epoll_ctl(ep->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int do_wait(struct ep *ep, int64_t timeout)
{
    if (timeout <= 0)
        return weft__epoll_wait(ep->epfd, ep->evs, MAX_EVENTS, timeout == 0 ? 0 : -1);
    if (!ep->no_pwait2) {
        struct timespec ts = {.tv_sec = timeout / 1000000000, .tv_nsec = timeout % 1000000000};
        int n = epoll_pwait2(ep->epfd, ep->evs, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        ep->no_pwait2 = 1;
    }
    /* Round up, so a timer is never polled for before it is due. */
    int64_t ms = (timeout + 999999) / 1000000;
    return epoll_wait(ep->epfd, ep->evs, MAX_EVENTS, ms > 86400000 ? 86400000 : (int)ms);
}

static int ep_wait(void *data, int64_t timeout)
{
    struct ep *ep = data;
    int n = do_wait(ep, timeout);
    if (n <= 0)
        return 0;
    int reported = 0;
    void *ctx = ep->ctx; /* kept in a register; the function is called through ep */
    for (int i = 0; i < n; i++) {
        uint64_t token = ep->evs[i].data.u64;
        uint32_t e = ep->evs[i].events;
        if (token == WAKE_TOKEN) {
            uint64_t v; /* one read takes the whole count */
            ssize_t r = read(ep->evfd, &v, sizeof(v));
            (void)r;
            continue;
        }
        int events = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
            events |= WEFT__IO_IN;
        if (e & EPOLLOUT)
            events |= WEFT__IO_OUT;
        if (e & (EPOLLERR | EPOLLHUP))
            events |= WEFT__IO_IN | WEFT__IO_OUT;
        /* What lasts: a hang-up ends both directions, a half-close (RDHUP) the input only. An
         * error alone (EPOLLERR) is an edge: the operation it wakes reads the error, and it may
         * pass (a UDP socket's ICMP error), so it must not make later waits return at once. */
        if (e & EPOLLHUP)
            events |= WEFT__IO_HUP;
        else if (e & EPOLLRDHUP)
            events |= WEFT__IO_RDHUP;
        ep->report(ctx, ep->evs[i].data.ptr, events);
        reported++;
    }
    return reported;
}

static void ep_wake(void *data)
{
    struct ep *ep = data;
    uint64_t one = 1;
    ssize_t r = write(ep->evfd, &one, sizeof(one));
    (void)r; /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
}

const struct weft__backend weft__backend_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .watch = ep_watch,
    .modify = ep_modify,
    .unwatch = ep_unwatch,
    .wait = ep_wait,
    .wake = ep_wake,
};
