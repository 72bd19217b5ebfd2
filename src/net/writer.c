/*
 * The writer half of a stream (asyncio's StreamWriter over its transport). write() sends
 * straight to the socket while nothing is queued and copies only what the socket did not take;
 * a background task then flushes the queue, waiting for writability, and resumes drainers when
 * the queue falls to the low-water mark. The queue is a byte buffer with a send offset.
 */
#include "net/net.h"
#include "net/transport.h"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static inline size_t queued(const weft_stream_t *s)
{
    return s->wend - s->wpos;
}

static ssize_t sys_write(weft_stream_t *s, const void *buf, size_t n)
{
    if (s->is_sock)
        return weft__send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (WEFT__UNLIKELY(s->tp != NULL)) /* a transport (TLS): its streams are not is_sock */
        return s->tp->write(s, buf, n);
    return weft__write_nosigpipe(s->fd, buf, n); /* a pipe whose reader left: -EPIPE only */
}

/* write_eof's shutdown(SHUT_WR), or the transport's (TLS: close_notify first). */
static int shut_wr(weft_stream_t *s)
{
    if (s->tp != NULL)
        return s->tp->shutdown(s);
    return shutdown(s->fd, SHUT_WR) < 0 ? -errno : 0;
}

void weft__nwaiters_wake_all(struct weft__list *list, int result)
{
    while (!weft__list_empty(list)) {
        struct weft__nwaiter *w = weft__container_of(list->next, struct weft__nwaiter, link);
        weft__list_remove(&w->link);
        weft__wake(w->task, result);
    }
}

int weft__nwaiters_park(struct weft__list *list, weft_task_t *t, void *obj, int64_t deadline)
{
    struct weft__nwaiter w = {.task = t};
    weft__list_append(list, &w.link);
    return weft__park(t, WEFT__P_PRIM, obj, &w.link, deadline);
}

/* The queue dropped to the low-water mark: resume the drainers. */
static void maybe_resume(weft_stream_t *s)
{
    if (s->paused && queued(s) <= s->wlow) {
        s->paused = 0;
        weft__nwaiters_wake_all(&s->drainers, 0);
    }
}

void weft__stream_fail(weft_stream_t *s, int err)
{
    if (s->cerr == 0)
        s->cerr = err;
    s->wpos = s->wend = 0;
    s->paused = 0;
    weft__nwaiters_wake_all(&s->drainers, s->cerr);
}

/* The flush ends (its queue sent, or lost): what is due then, and its reference dropped. */
static void flush_end(weft_stream_t *s)
{
    if (s->sending) {
        /* A sendfile waits: it becomes the flusher (flushing stays set), sends the file, then
         * starts a flush for what was written meanwhile (weft__stream_kick). */
        s->handover = 1;
        weft__nwaiters_wake_all(&s->flushwait, 0);
        weft_stream_release(s);
        return;
    }
    s->flushing = 0;
    if (s->closed || s->cerr != 0)
        s->wpos = s->wend = 0;
    maybe_resume(s);
    if (s->eof_req && !s->eof_done && !s->closed && s->cerr == 0) {
        s->eof_done = 1;
        shut_wr(s);
    }
    if (s->closing)
        weft__stream_do_close(s);
    weft_stream_release(s);
}

/* Send the queue until it is empty, the stream is closed, or the connection fails. */
static int flush_task(void *arg)
{
    weft_stream_t *s = arg;
    while (queued(s) > 0 && !s->closed && s->cerr == 0) {
        size_t n = queued(s);
        if (s->sending) { /* a sendfile waits: send only what was queued before its call */
            if (s->sendq == 0)
                break;
            if (n > s->sendq)
                n = s->sendq;
        }
        ssize_t k = sys_write(s, s->wbuf + s->wpos, n);
        if (k > 0) {
            if (s->sending)
                s->sendq -= (size_t)k;
            s->wpos += (size_t)k;
            if (s->wpos == s->wend)
                s->wpos = s->wend = 0;
            maybe_resume(s);
            if ((size_t)k == n)
                continue;
            errno = EAGAIN; /* a short write: the socket buffer is full */
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0 || errno == EAGAIN) {
            int r = weft_wait_fd(s->fd, s->tp != NULL ? s->tp_wwait : WEFT_WRITABLE);
            if (r == -ECANCELED)
                weft__stream_fail(s, -ECANCELED); /* the loop is shutting down */
            else if (r < 0 && !s->closed)
                weft__stream_fail(s, r);
            continue;
        }
        weft__stream_fail(s, -errno);
    }
    flush_end(s);
    return 0;
}

/* The flush task was cancelled before its first step (or had no stack): the queue is lost as
 * if its first wait had been cancelled, and the stream is released as the task would have. */
static void flush_unstarted(void *arg)
{
    weft_stream_t *s = arg;
    weft__stream_fail(s, -ECANCELED);
    flush_end(s);
}

/* Copy `n` bytes to the queue. */
static int enqueue(weft_stream_t *s, const char *p, size_t n)
{
    if (s->wpos == s->wend)
        s->wpos = s->wend = 0;
    if (s->wcap - s->wend < n) {
        size_t used = queued(s);
        if (s->wpos > 0 && s->wcap - used >= n && used <= s->wcap / 2) {
            memmove(s->wbuf, s->wbuf + s->wpos, used);
        } else {
            size_t cap = s->wcap ? s->wcap : 4096;
            while (cap - used < n) {
                if (cap > SIZE_MAX / 2)
                    return -ENOMEM;
                cap *= 2;
            }
            if (s->wpos > 0)
                memmove(s->wbuf, s->wbuf + s->wpos, used);
            char *nb = weft__realloc(s->wbuf, cap);
            if (nb == NULL) {
                s->wend = used; /* the compaction above already happened */
                s->wpos = 0;
                return -ENOMEM;
            }
            s->wbuf = nb;
            s->wcap = cap;
        }
        s->wpos = 0;
        s->wend = used;
    }
    memcpy(s->wbuf + s->wend, p, n);
    s->wend += n;
    return 0;
}

void weft__stream_kick(weft_stream_t *s)
{
    if (s->flushing || (queued(s) == 0 && !s->closing && !s->eof_req))
        return;
    /* The flush task sends what is queued, then makes a pending shutdown or close. */
    int err = weft__spawn_owned(NULL, flush_task, flush_unstarted, s, NULL);
    if (err < 0) {
        weft__stream_fail(s, err);
        if (s->closing)
            weft__stream_do_close(s);
        return;
    }
    s->flushing = 1;
    weft_stream_retain(s);
}

/* Why a write is refused, if it is. */
static int write_refused(const weft_stream_t *s)
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

/* The rest of a write: try the socket unless it is known `full`, queue what it leaves. */
static __attribute__((noinline)) int write_slow(weft_stream_t *s, const char *p, size_t n,
                                                bool full)
{
    if (!s->flushing && !full) {
        /* Nothing queued: write through. A short write means the socket buffer is full. */
        for (;;) {
            ssize_t k = sys_write(s, p, n);
            if (k > 0) {
                p += k;
                n -= (size_t)k;
                if (n == 0)
                    return 0;
                break;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && errno != EAGAIN) {
                weft__stream_fail(s, -errno);
                return s->cerr;
            }
            break;
        }
    }
    int err = enqueue(s, p, n);
    if (err < 0)
        return err;
    if (!s->flushing) {
        err = weft__spawn_owned(NULL, flush_task, flush_unstarted, s, NULL);
        if (err < 0) {
            weft__stream_fail(s, err);
            return err;
        }
        s->flushing = 1;
        weft_stream_retain(s);
    }
    if (queued(s) > s->whigh)
        s->paused = 1;
    return 0;
}

int weft_stream_write(weft_stream_t *s, const void *data, size_t n)
{
    if (WEFT__UNLIKELY(s == NULL || (data == NULL && n > 0)))
        return -EINVAL;
    int err = write_refused(s);
    if (WEFT__UNLIKELY(err != 0))
        return err;
    if (WEFT__UNLIKELY(n == 0))
        return 0;
    /* The common case: nothing queued and the socket takes it all. */
    if (WEFT__LIKELY(!s->flushing)) {
        ssize_t k = sys_write(s, data, n);
        if (WEFT__LIKELY(k == (ssize_t)n))
            return 0;
        if (k > 0) /* a short write: the socket buffer is full */
            return write_slow(s, (const char *)data + k, n - (size_t)k, true);
        if (errno != EAGAIN && errno != EINTR) {
            weft__stream_fail(s, -errno);
            return s->cerr;
        }
        return write_slow(s, data, n, errno == EAGAIN);
    }
    return write_slow(s, data, n, true);
}

/* drain() when there may be something to wait for. */
static __attribute__((noinline)) int drain_slow(weft_stream_t *s, int64_t deadline)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    weft_stream_retain(s);
    int r = 0;
    if (s->closing) {
        /* asyncio yields once so that the close can complete, then reports the loss. */
        r = weft_yield();
        if (r < 0)
            goto out;
        if (s->closed) {
            r = s->cerr != 0 ? s->cerr : -ECONNRESET;
            goto out;
        }
    }
    if (s->cerr != 0) {
        r = s->cerr;
        goto out;
    }
    if (s->paused)
        r = weft__nwaiters_park(&s->drainers, t, s, deadline);
out:
    weft_stream_release(s);
    return r;
}

int weft_stream_drain_dl(weft_stream_t *s, int64_t deadline)
{
    if (WEFT__UNLIKELY(s == NULL))
        return -EINVAL;
    if (WEFT__UNLIKELY(s->rerr != 0))
        return s->rerr;
    if (WEFT__LIKELY(!s->paused && !s->closing && s->cerr == 0))
        return 0; /* below the high-water mark: nothing to wait for */
    return drain_slow(s, deadline);
}

int weft_stream_drain(weft_stream_t *s)
{
    return weft_stream_drain_dl(s, WEFT_NO_DEADLINE);
}

int weft_stream_set_write_limits(weft_stream_t *s, ssize_t high, ssize_t low)
{
    if (s == NULL)
        return -EINVAL;
    if (high < 0)
        high = low >= 0 ? 4 * low : WEFT_STREAM_HIGH_WATER;
    if (low < 0)
        low = high / 4;
    if (high < low)
        return -EINVAL;
    s->whigh = (size_t)high;
    s->wlow = (size_t)low;
    if (queued(s) > s->whigh)
        s->paused = 1;
    maybe_resume(s);
    return 0;
}

size_t weft_stream_write_buffered(const weft_stream_t *s)
{
    return s != NULL ? queued(s) : 0;
}

int weft_stream_write_eof(weft_stream_t *s)
{
    if (s == NULL)
        return -EINVAL;
    if (s->eof_req || s->closing)
        return 0;
    if (s->fd < 0)
        return -ENOTCONN;
    struct stat st;
    if (!s->is_sock && s->tp == NULL && fstat(s->fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        /* A pipe has no half-close: the end of its input is the close of its write end. */
        weft_stream_close(s);
        return 0;
    }
    s->eof_req = 1;
    if (!s->flushing && s->cerr == 0) {
        s->eof_done = 1;
        int err = shut_wr(s);
        if (err < 0 && err != -ENOTCONN)
            return err;
    }
    return 0;
}
