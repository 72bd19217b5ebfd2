/*
 * Stream objects: creation around an fd (or none), references, and closing. A stream is kept
 * alive by its owner's reference, by the background flush while output is queued, and by each
 * call that suspends on it, so closing or releasing it under a waiting task is safe.
 */
#include "net/net.h"
#include "net/transport.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

int weft__stream_wrap(weft_stream_t **out, int fd, bool is_sock, size_t limit, size_t write_high)
{
    weft_stream_t *s = weft__malloc_line(sizeof(*s)); /* starts on a line: see net.h */
    if (s == NULL)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->refs = 1;
    s->fd = fd;
    s->is_sock = is_sock;
    s->limit = limit != 0 ? limit : WEFT_STREAM_LIMIT;
    s->whigh = write_high != 0 ? write_high : WEFT_STREAM_HIGH_WATER;
    s->wlow = s->whigh / 4;
    weft__list_init(&s->drainers);
    weft__list_init(&s->flushwait);
    weft__list_init(&s->closers);
    weft__list_init(&s->slink);
    *out = s;
    return 0;
}

int weft_stream_new(weft_stream_t **out, int fd, const struct weft_stream_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (weft__tls_loop == NULL)
        return -EPERM;
    if (fd < -1)
        return -EINVAL;
    bool is_sock = false;
    if (fd >= 0) {
        int type;
        socklen_t len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
            if (type != SOCK_STREAM)
                return -EINVAL;
            is_sock = true;
        } else if (errno != ENOTSOCK) {
            return -errno;
        }
        /* Sockets use MSG_DONTWAIT; other fds need O_NONBLOCK. */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return -errno;
        if (!is_sock && !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
    }
    return weft__stream_wrap(out, fd, is_sock, opts != NULL ? opts->limit : 0,
                             opts != NULL ? opts->write_high : 0);
}

weft_stream_t *weft_stream_retain(weft_stream_t *s)
{
    if (s != NULL)
        s->refs++;
    return s;
}

void weft__stream_free(weft_stream_t *s)
{
    if (s->tp != NULL)
        s->tp->free(s);
    weft__free(s->rbuf);
    weft__free(s->wbuf);
    weft__free_line(s);
}

void weft_stream_release(weft_stream_t *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    /* Nothing is queued (the flush would hold a reference) and nobody waits on it. */
    s->closing = 1;
    weft__stream_do_close(s);
    weft__stream_free(s);
}

int weft_stream_fd(const weft_stream_t *s)
{
    return s != NULL && !s->closed ? s->fd : -1;
}

void weft__stream_do_close(weft_stream_t *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    if (s->fd >= 0) {
        if (s->tp != NULL)
            s->tp->close(s, !s->aborted && s->cerr == 0);
        int fd = s->fd;
        s->fd = -1;
        weft_close(fd);
    }
    s->wpos = s->wend = 0;
    s->paused = 0;
    weft__stream_wake_reader(s);
    weft__nwaiters_wake_all(&s->drainers, s->cerr);
    weft__nwaiters_wake_all(&s->closers, s->cerr);
}

void weft_stream_close(weft_stream_t *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    weft__stream_wake_reader(s);
    if (!s->flushing)
        weft__stream_do_close(s);
}

void weft_stream_abort(weft_stream_t *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    s->aborted = 1;
    weft__stream_do_close(s);
}

bool weft_stream_is_closing(const weft_stream_t *s)
{
    return s != NULL && s->closing;
}

int weft_stream_wait_closed_dl(weft_stream_t *s, int64_t deadline)
{
    if (s == NULL)
        return -EINVAL;
    if (s->closed)
        return s->cerr;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    weft_stream_retain(s);
    int r = weft__nwaiters_park(&s->closers, t, s, deadline);
    weft_stream_release(s);
    return r;
}

int weft_stream_wait_closed(weft_stream_t *s)
{
    return weft_stream_wait_closed_dl(s, WEFT_NO_DEADLINE);
}
