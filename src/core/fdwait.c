/*
 * Waiting on file descriptors. The loop keeps a table indexed by fd: whether the backend watches
 * it, and the tasks parked on it (any number, each for read and/or write; the oldest in a slot of
 * the state, the others in a list). Readiness is edge-style: a task waits after its operation
 * returned EAGAIN and is woken by the next event.
 * weft_close() wakes every waiter with -EBADF and forgets the fd before the number can be reused.
 * Output readiness is reported only while it may be waited for: an fd is registered for input
 * (and output if its first wait is for output), output is added by the first wait for it, and
 * dropped again when an output edge comes that nobody waits for. A Unix socket signals output
 * each time its peer reads (the kernel's unix_write_space has no "a writer was refused" test, as
 * TCP's has), so a client that waits for replies only would be woken, and its peer made to pay
 * for the wake-up, once more per request (PostgreSQL's backends: issue 20).
 * This is the core's side of I/O, beside the park it uses; the backends below it (src/io) see
 * only fds, event bits and the opaque token each fd is watched with (docs/core.md, "I/O").
 */
#include "internal.h"
#include "io/backend.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(WEFT__IO_IN == WEFT_READABLE && WEFT__IO_OUT == WEFT_WRITABLE, "event bits");

#define CHUNK_SHIFT 10
#define CHUNK       (1u << CHUNK_SHIFT)

/* The table grows in chunks that never move: parked tasks keep pointers into the lists. */
static struct weft__fdstate *fd_lookup(weft_loop_t *l, int fd)
{
    uint32_t c = (uint32_t)fd >> CHUNK_SHIFT;
    if (c >= l->nfdchunks || l->fdchunks[c] == NULL)
        return NULL;
    return &l->fdchunks[c][(uint32_t)fd & (CHUNK - 1)];
}

static struct weft__fdstate *fd_state(weft_loop_t *l, int fd)
{
    uint32_t c = (uint32_t)fd >> CHUNK_SHIFT;
    if (c >= l->nfdchunks) {
        uint32_t n = l->nfdchunks ? l->nfdchunks : 4;
        while (n <= c)
            n *= 2;
        struct weft__fdstate **a = weft__realloc(l->fdchunks, (size_t)n * sizeof(*a));
        if (a == NULL)
            return NULL;
        memset(a + l->nfdchunks, 0, (size_t)(n - l->nfdchunks) * sizeof(*a));
        l->fdchunks = a;
        l->nfdchunks = n;
    }
    if (l->fdchunks[c] == NULL) {
        /* Entries are a cache line each, so the chunk starts on one. */
        struct weft__fdstate *chunk = weft__malloc_line(CHUNK * sizeof(*chunk));
        if (chunk == NULL)
            return NULL;
        for (uint32_t i = 0; i < CHUNK; i++) {
            chunk[i].first = NULL;
            weft__list_init(&chunk[i].waiters);
            chunk[i].registered = 0;
            chunk[i].pending = 0;
            chunk[i].hup = 0;
            chunk[i].watched = 0;
            chunk[i].fd = -1;
        }
        l->fdchunks[c] = chunk;
    }
    return &l->fdchunks[c][(uint32_t)fd & (CHUNK - 1)];
}

struct weft__fdstate *weft__fd_watch(weft_loop_t *l, int fd, int events, int *err)
{
    struct weft__fdstate *st = fd_state(l, fd);
    if (st == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    if (!st->registered) {
        events |= WEFT_READABLE;
        int e = l->backend->watch(l->backend_data, fd, st, events);
        if (e < 0) {
            *err = e;
            return NULL;
        }
        st->registered = 1;
        st->watched = (uint8_t)events;
        st->fd = fd;
    }
    return st;
}

int weft__fd_watch_more(weft_loop_t *l, struct weft__fdstate *st, int events)
{
    events |= st->watched;
    int e = l->backend->modify(l->backend_data, st->fd, st, events);
    if (e == 0)
        st->watched = (uint8_t)events;
    return e;
}

/* An output edge nobody waited for: stop reporting output until a task waits for it. */
static __attribute__((noinline, cold)) void fd_drop_output(weft_loop_t *l,
                                                           struct weft__fdstate *st)
{
    if (l->backend->modify(l->backend_data, st->fd, st, WEFT_READABLE) == 0)
        st->watched = WEFT_READABLE;
}

int weft_wait_fd_dl(int fd, int events, int64_t deadline)
{
    if (fd < 0 || events == 0 || (events & ~(WEFT_READABLE | WEFT_WRITABLE)) != 0)
        return -EINVAL;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    struct weft__fdstate *st = weft__fd_watch(t->fut.loop, fd, events, &err);
    if (st == NULL)
        return err;
    return weft__fd_wait(t, st, events, deadline, NULL);
}

int weft_wait_fd(int fd, int events)
{
    return weft_wait_fd_dl(fd, events, WEFT_NO_DEADLINE);
}

/*
 * `first` was just woken: start loading what its resume touches (internal.h), all at once: its
 * second line (the saved stack pointer), its stack from a little above the frame it parked in
 * down past the park's and the switch's frames, and the object it named.
 */
static inline void prefetch_resume(const struct weft__fdstate *st, const weft_task_t *first)
{
    __builtin_prefetch((const char *)first + 64);
    uintptr_t f = (uintptr_t)st->first_frame & ~(uintptr_t)63;
    for (int i = -WEFT__PREFETCH_LINES + 1; i < 2; i++)
        __builtin_prefetch((const void *)(f + (uintptr_t)(64 * (intptr_t)i)));
    uintptr_t h = (uintptr_t)st->first_hint;
    if (h != 0) {
        __builtin_prefetch((const void *)h);
        __builtin_prefetch((const void *)(h + 64));
    }
}

void weft__io_event(void *loop, void *token, int events)
{
    struct weft__fdstate *st = token;
    if (WEFT__UNLIKELY(st->registered == WEFT__FD_SOURCE)) {
        struct weft__fdsource *src = weft__container_of(st, struct weft__fdsource, st);
        src->ready(loop, src);
        return;
    }
    int raw = events;
    if (events & WEFT__IO_HUP)
        st->hup = WEFT_READABLE | WEFT_WRITABLE;
    else if (events & WEFT__IO_RDHUP)
        st->hup |= WEFT_READABLE;
    events &= WEFT_READABLE | WEFT_WRITABLE;
    int delivered = 0;
    weft_task_t *first = st->first;
    if (first != NULL && (st->first_events & events) != 0) {
        delivered = st->first_events & events;
        st->first = NULL;
        weft__wake(first, delivered);
        prefetch_resume(st, first);
    }
    struct weft__list *p = st->waiters.next;
    while (p != &st->waiters) {
        struct weft__list *next = p->next;
        struct weft__fdwaiter *w = weft__container_of(p, struct weft__fdwaiter, link);
        int got = w->events & events;
        if (got != 0) {
            weft__list_remove(&w->link);
            weft__wake(w->task, got);
            weft__stack_prefetch(w->task);
            delivered |= got;
        }
        p = next;
    }
    st->pending |= (uint8_t)(events & ~delivered);
    if (WEFT__UNLIKELY(raw == WEFT__IO_OUT) && (delivered & WEFT_WRITABLE) == 0)
        fd_drop_output(loop, st);
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    weft_loop_t *l = weft__tls_loop;
    struct weft__fdstate *st = l != NULL ? fd_lookup(l, fd) : NULL;
    if (st != NULL) {
        if (st->first != NULL) {
            weft__wake(st->first, -EBADF);
            st->first = NULL;
        }
        while (!weft__list_empty(&st->waiters)) {
            struct weft__fdwaiter *w =
                weft__container_of(st->waiters.next, struct weft__fdwaiter, link);
            weft__list_remove(&w->link);
            weft__wake(w->task, -EBADF);
        }
        if (st->registered) {
            l->backend->unwatch(l->backend_data, fd);
            st->registered = 0;
            st->watched = 0;
        }
        st->pending = 0;
        st->hup = 0;
    }
    return close(fd) < 0 ? -errno : 0;
}

int weft__fd_source_watch(weft_loop_t *l, int fd, struct weft__fdsource *src)
{
    src->st.first = NULL;
    weft__list_init(&src->st.waiters);
    src->st.registered = WEFT__FD_SOURCE;
    return l->backend->watch(l->backend_data, fd, &src->st, WEFT__IO_IN);
}

void weft__fd_source_unwatch(weft_loop_t *l, int fd)
{
    l->backend->unwatch(l->backend_data, fd);
}

ssize_t weft__write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    /* One already pending (sent by someone else) is not ours to take. */
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t r = write(fd, buf, n);
    int e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        /* The write raised it for this thread: take it before unblocking. */
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

void weft__fd_fini(weft_loop_t *l)
{
    for (uint32_t c = 0; c < l->nfdchunks; c++)
        weft__free_line(l->fdchunks[c]);
    weft__free(l->fdchunks);
    l->fdchunks = NULL;
    l->nfdchunks = 0;
}
