/*
 * Sending a file on a stream with sendfile(2): the kernel copies from the page cache to the
 * socket, no byte passes through user space. Output already queued on the stream goes first: the
 * call waits for the background flush to end, then acts as the stream's flusher while it sends,
 * so that writes made meanwhile queue behind the file and are flushed after it.
 */
#include "net/net.h"

#include <signal.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define MAX_CHUNK 0x7ffff000u

static int refused(const weft_stream_t *s)
{
    if (s->closing)
        return -EPIPE;
    if (s->eof_req)
        return -ESHUTDOWN;
    if (s->cerr != 0)
        return s->cerr;
    if (s->fd < 0)
        return -ENOTCONN;
    return 0;
}

/* sendfile(2) without SIGPIPE (it has no MSG_NOSIGNAL): blocked around the call, and one the
 * call raised (EPIPE, none pending before) is taken before the mask is restored, as
 * weft__write_nosigpipe does for write(). */
static ssize_t sendfile_nosigpipe(int out, int in, off_t *off, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t r = sendfile(out, in, off, n);
    int e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

ssize_t weft_stream_sendfile_dl(weft_stream_t *s, int fd, int64_t *offset, size_t count,
                                int64_t deadline)
{
    if (s == NULL || fd < 0 || (offset != NULL && *offset < 0))
        return s == NULL ? -EINVAL : (fd < 0 ? -EBADF : -EINVAL);
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (t->must_cancel) {
        t->must_cancel = 0;
        return -ECANCELED;
    }
    if (deadline >= 0 && deadline <= weft__now(t->fut.loop))
        return -ETIMEDOUT;
    if ((err = refused(s)) != 0)
        return err;
    if (s->tp != NULL)
        return -EOPNOTSUPP; /* a transport (TLS) must see the bytes: no zero copy */
    if (s->sending)
        return -EBUSY;
    weft_stream_retain(s);
    s->sending = 1;
    s->handover = 0;
    ssize_t r = 0;
    size_t sent = 0;
    bool flusher = false;
    if (s->flushing) {
        /* The flush task sends what was queued before this call, then hands over. */
        s->sendq = weft__stream_queued(s);
        while (!s->handover) {
            r = weft__nwaiters_park(&s->flushwait, t, s, deadline);
            if (r < 0 && !s->handover) {
                s->sending = 0; /* the flush task goes on as before */
                s->sendq = 0;
                weft_stream_release(s);
                return r;
            }
        }
        flusher = true;
        if (r < 0)
            goto out;
    } else {
        s->flushing = 1; /* writes queue behind the file from now on */
        flusher = true;
    }
    if ((r = refused(s)) != 0)
        goto out;
    off_t off = offset != NULL ? (off_t)*offset : 0;
    while (sent < count) {
        size_t n = count - sent > MAX_CHUNK ? MAX_CHUNK : count - sent;
        ssize_t k = sendfile_nosigpipe(s->fd, fd, offset != NULL ? &off : NULL, n);
        if (k > 0) {
            sent += (size_t)k;
            if (offset != NULL)
                *offset = off;
            continue;
        }
        if (k == 0)
            break; /* end of file */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            /* The socket is full (or the file's pages are being read). */
            r = weft_wait_fd_dl(s->fd, WEFT_WRITABLE, deadline);
            if (r < 0)
                goto out;
            if (s->closed) {
                r = s->cerr != 0 ? s->cerr : -EPIPE;
                goto out;
            }
            r = 0;
            continue;
        }
        r = -errno;
        if (r != -EBADF && r != -EINVAL && r != -ESPIPE && r != -EOVERFLOW)
            weft__stream_fail(s, r); /* the connection broke */
        goto out;
    }
out:
    s->sending = 0;
    if (flusher) {
        s->flushing = 0;
        weft__stream_kick(s);
    }
    weft_stream_release(s);
    if (r < 0)
        return r;
    return (ssize_t)sent;
}

ssize_t weft_stream_sendfile(weft_stream_t *s, int fd, int64_t *offset, size_t count)
{
    return weft_stream_sendfile_dl(s, fd, offset, count, WEFT_NO_DEADLINE);
}
