/*
 * The reader half of a stream (asyncio's StreamReader): a growable buffer with a read offset,
 * compacted only when the tail has no room. Data is pulled from the fd on demand (a recv until
 * EAGAIN, then weft_wait_fd), never more than one read ahead of the reader, so the buffer holds
 * at most 2 x limit unless a call asks for more. readuntil remembers how far it scanned.
 */
#include "net/net.h"
#include "net/transport.h"

#include <string.h>
#include <unistd.h>

#define MIN_READ  4096u
#define FIRST_CAP 8192u

/* Make at least `want` bytes free after rend (compacting or growing). */
static int reserve(weft_stream_t *s, size_t want)
{
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
    if (s->rcap - s->rend >= want)
        return 0;
    size_t used = s->rend - s->rpos;
    if (s->rpos > 0 && s->rcap - used >= want && used <= s->rcap / 2) {
        memmove(s->rbuf, s->rbuf + s->rpos, used);
        s->rpos = 0;
        s->rend = used;
        return 0;
    }
    size_t cap = s->rcap ? s->rcap : FIRST_CAP;
    while (cap - used < want) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    if (s->rpos > 0) {
        memmove(s->rbuf, s->rbuf + s->rpos, used);
        s->rpos = 0;
        s->rend = used;
    }
    char *nb = weft__realloc(s->rbuf, cap);
    if (nb == NULL)
        return -ENOMEM;
    s->rbuf = nb;
    s->rcap = cap;
    return 0;
}

static inline size_t buffered(const weft_stream_t *s)
{
    return s->rend - s->rpos;
}

/*
 * Wait for the fd to become readable, or (no fd) for a feed; feed/close/set_error wake it. The
 * first wait of a call takes a reference (*held) that the call drops when it returns, so the
 * stream outlives a release by another task while this one is suspended.
 */
/* Park the running task `t` until the stream's fd is readable (it watches the fd on first use
 * and keeps its state), as the stream's reader: feed/close/set_error wake it through rtask. */
static inline int wait_readable(weft_stream_t *s, weft_task_t *t, int events, int64_t deadline)
{
    if (WEFT__UNLIKELY(s->rst == NULL)) {
        int err;
        s->rst = weft__fd_watch(t->fut.loop, s->fd, WEFT_READABLE, &err);
        if (s->rst == NULL)
            return err;
    }
    s->rtask = t;
    /* The poll that wakes it prefetches the stream with its frames. */
    int r = weft__fd_wait(t, s->rst, events, deadline, s);
    s->rtask = NULL;
    return r;
}

/* Whether a wait's result `r` ends the reader call: any error but the -EBADF of this stream's
 * own close (the call then reports what the closed stream holds). */
static inline bool wait_failed(const weft_stream_t *s, int r)
{
    return r < 0 && !(r == -EBADF && s->closing);
}

/* Nothing buffered, and the fd healthy: where the fast paths on a drained socket start, and what
 * they expect to find after their wait. */
static inline bool healthy_empty(const weft_stream_t *s)
{
    return s->rpos == s->rend && s->fd >= 0 && s->rerr == 0 && !s->eof && !s->closing;
}

static inline bool in_task(void)
{
    return weft__tls_loop != NULL && weft__tls_loop->current != NULL;
}

/*
 * The wait of a fast path on a socket the last short recv() drained (the caller holds a stream
 * reference for it). Returns 1 when data came and nothing else changed (receive now), 0 when the
 * general path must look again, or the wait's error.
 */
static inline int wait_drained(weft_stream_t *s, int64_t deadline)
{
    s->rdrained = 0;
    int w = wait_readable(s, weft__tls_loop->current, WEFT_READABLE, deadline);
    if (WEFT__LIKELY(w >= 0 && healthy_empty(s)))
        return 1;
    return wait_failed(s, w) ? w : 0;
}

static __attribute__((noinline)) int rwait(weft_stream_t *s, int64_t deadline, bool *held)
{
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (s->rtask != NULL)
        return -EBUSY;
    if (!*held) {
        *held = true;
        s->refs++;
    }
    if (s->fd >= 0 && !s->closing) /* a transport may need the fd writable to read on */
        return wait_readable(s, t, WEFT__UNLIKELY(s->tp != NULL) ? s->tp_rwait : WEFT_READABLE,
                             deadline);
    s->rtask = t;
    int r = weft__park(t, WEFT__P_PRIM, s, NULL, deadline);
    s->rtask = NULL;
    return r;
}

/* At the end of a call that waited: drop the reference rwait() took. */
static inline void done(weft_stream_t *s, bool held)
{
    if (held)
        weft__stream_unref(s);
}

/*
 * One read from the fd. A short read from a socket drained it: the next read goes straight to
 * waiting (reported as EAGAIN) instead of paying a recv() that would say so. The wait cannot
 * miss anything: weft_wait_fd() remembers readiness and hang-ups that came meanwhile.
 */
static ssize_t sys_read(weft_stream_t *s, void *buf, size_t n)
{
    if (!s->is_sock) /* a pipe, or a transport (TLS: its streams are not is_sock) */
        return WEFT__UNLIKELY(s->tp != NULL) ? s->tp->read(s, buf, n) : read(s->fd, buf, n);
    if (s->rdrained) {
        s->rdrained = 0;
        errno = EAGAIN;
        return -1;
    }
    ssize_t r = weft__recv(s->fd, buf, n, MSG_DONTWAIT);
    if (r > 0 && (size_t)r < n)
        s->rdrained = 1;
    return r;
}

/* A read from the fd failed with `err`: the reader and the connection carry it from now on. */
static int read_failed(weft_stream_t *s, int err)
{
    s->rerr = err;
    if (s->cerr == 0)
        s->cerr = err;
    return err;
}

/*
 * Get more bytes into the buffer, aiming for `need` buffered in all (SIZE_MAX: as much as
 * comes). Returns > 0 (bytes may have been added), 0 at end of stream, or a negative errno.
 */
/* How many bytes one read should ask for, after making room for them. */
static __attribute__((noinline)) int make_room(weft_stream_t *s, size_t need, size_t *ask)
{
    size_t have = buffered(s);
    size_t want = MIN_READ;
    if (need == SIZE_MAX)
        want = have > want ? have : want;
    else if (need > have && need - have > want)
        want = need - have;
    int err = reserve(s, want);
    if (err < 0)
        return err;
    /* Never read ahead past 2 x limit, unless the call needs more (asyncio pauses there). */
    size_t room = s->rcap - s->rend;
    size_t ahead = 2 * s->limit > have ? 2 * s->limit - have : 0;
    size_t cap = ahead > want ? ahead : want;
    *ask = room < cap ? room : cap;
    return 0;
}

static __attribute__((noinline)) ssize_t fill(weft_stream_t *s, size_t need, int64_t deadline,
                                              bool *held)
{
    for (;;) {
        if (WEFT__UNLIKELY(s->rerr != 0 || s->eof || s->closing)) {
            if (s->rerr != 0)
                return s->rerr;
            s->eof = 1; /* closed locally: no more reads, buffered bytes stay readable */
            return 0;
        }
        if (WEFT__LIKELY(s->fd >= 0)) {
            size_t ask;
            if (s->rpos == s->rend)
                s->rpos = s->rend = 0;
            /* The common case: an empty or roomy buffer, a small need. */
            if (WEFT__LIKELY(s->rcap - s->rend >= MIN_READ && need - buffered(s) <= MIN_READ &&
                             2 * s->limit >= s->rcap)) {
                ask = s->rcap - s->rend;
            } else {
                int err = make_room(s, need, &ask);
                if (err < 0)
                    return err;
            }
            if (s->rdrained && s->is_sock) {
                s->rdrained = 0; /* the last short recv() drained it: wait first */
                int r = rwait(s, deadline, held);
                if (wait_failed(s, r))
                    return r;
                if (s->fd < 0)
                    return 1; /* woken by a feed (or eof, error, close): the caller looks again */
                /* The usual wake-up: data came and nothing else changed, so the room made
                 * above is still there: receive now instead of starting over. */
                if (WEFT__UNLIKELY(s->closing || s->rerr != 0 || s->eof))
                    continue;
            }
            ssize_t n = sys_read(s, s->rbuf + s->rend, ask);
            if (WEFT__LIKELY(n > 0)) {
                s->rend += (size_t)n;
                return n;
            }
            if (n == 0) {
                s->eof = 1;
                return 0;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return read_failed(s, -errno);
        }
        int r = rwait(s, deadline, held);
        if (wait_failed(s, r))
            return r;
        if (s->fd < 0)
            return 1; /* woken by a feed (or eof, error, close): the caller looks again */
    }
}

static inline void consume(weft_stream_t *s, size_t n)
{
    s->rpos += n;
}

/* At the start of a reader call: buffers handed out by the previous call may be reused now. */
static inline void begin(weft_stream_t *s)
{
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
}

/* read() once the fast path did not finish it: `r` is what a first receive returned (errno set),
 * or 0 when none was made. */
static __attribute__((noinline)) ssize_t read_slow(weft_stream_t *s, void *buf, size_t n,
                                                   int64_t deadline, ssize_t r, bool tried)
{
    bool held = false;
    while (buffered(s) == 0) {
        if (s->rerr != 0) {
            r = s->rerr;
            goto out;
        }
        if (s->eof || s->closing) {
            r = 0;
            goto out;
        }
        if (s->fd < 0) {
            r = fill(s, 1, deadline, &held);
            if (r <= 0)
                goto out;
            continue;
        }
        if (!tried)
            r = sys_read(s, buf, n);
        tried = false;
        if (r > 0)
            goto out;
        if (r == 0) {
            s->eof = 1;
            goto out;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            r = read_failed(s, -errno);
            goto out;
        }
        r = rwait(s, deadline, &held);
        if (wait_failed(s, (int)r))
            goto out;
    }
    size_t k = buffered(s) < n ? buffered(s) : n;
    memcpy(buf, s->rbuf + s->rpos, k);
    consume(s, k);
    r = (ssize_t)k;
out:
    done(s, held);
    return r;
}

/*
 * read() on a healthy socket that the last short recv() drained: wait for it to become readable,
 * then receive into the caller's buffer. The request/response pattern of a server: every request
 * comes here, so it skips read_slow's generality (it falls back there for anything unusual).
 */
static ssize_t read_drained(weft_stream_t *s, void *buf, size_t n, int64_t deadline)
{
    if (WEFT__UNLIKELY(s->rtask != NULL))
        return -EBUSY;
    s->refs++; /* the stream outlives a release by another task while this one waits */
    int w = wait_drained(s, deadline);
    ssize_t r;
    if (WEFT__LIKELY(w == 1)) {
        r = weft__recv(s->fd, buf, n, MSG_DONTWAIT);
        if (WEFT__LIKELY(r > 0)) {
            if ((size_t)r < n)
                s->rdrained = 1;
            weft__stream_unref(s);
            return r;
        }
        r = read_slow(s, buf, n, deadline, r, true);
    } else if (w < 0) {
        r = w;
    } else {
        r = read_slow(s, buf, n, deadline, 0, false);
    }
    weft__stream_unref(s);
    return r;
}

ssize_t weft_stream_read_dl(weft_stream_t *s, void *buf, size_t n, int64_t deadline)
{
    if (WEFT__UNLIKELY(s == NULL || buf == NULL || n == 0))
        return s == NULL || (buf == NULL && n > 0) ? -EINVAL : s->rerr;
    /* The common case: nothing buffered, a healthy socket: receive into the caller's buffer. */
    if (WEFT__LIKELY(healthy_empty(s))) {
        if (s->rdrained && s->is_sock && in_task())
            return read_drained(s, buf, n, deadline);
        ssize_t r = sys_read(s, buf, n);
        if (WEFT__LIKELY(r > 0))
            return r;
        return read_slow(s, buf, n, deadline, r, true);
    }
    return read_slow(s, buf, n, deadline, 0, false);
}

ssize_t weft_stream_read(weft_stream_t *s, void *buf, size_t n)
{
    return weft_stream_read_dl(s, buf, n, WEFT_NO_DEADLINE);
}

int weft_stream_readexactly_dl(weft_stream_t *s, void *buf, size_t n, size_t *got, int64_t deadline)
{
    if (got != NULL)
        *got = 0;
    if (s == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (s->rerr != 0)
        return s->rerr;
    if (n == 0)
        return 0;
    begin(s);
    bool held = false;
    int r = 0;
    while (buffered(s) < n) {
        if (s->eof) {
            size_t k = buffered(s);
            memcpy(buf, s->rbuf + s->rpos, k);
            consume(s, k);
            if (got != NULL)
                *got = k;
            r = WEFT_EOF;
            goto out;
        }
        ssize_t f = fill(s, n, deadline, &held);
        if (f < 0) {
            r = (int)f;
            goto out;
        }
    }
    memcpy(buf, s->rbuf + s->rpos, n);
    consume(s, n);
    if (got != NULL)
        *got = n;
out:
    done(s, held);
    return r;
}

int weft_stream_readexactly(weft_stream_t *s, void *buf, size_t n, size_t *got)
{
    return weft_stream_readexactly_dl(s, buf, n, got, WEFT_NO_DEADLINE);
}

/* Whether the `len` bytes at `p` are `sep` (its first byte is known to match). Separators are
 * short: 4 to 8 bytes (an HTTP head's "\r\n\r\n") take two word compares, shorter ones a
 * loop; either beats a call to memcmp. */
static inline bool sep_eq(const char *p, const char *sep, size_t len)
{
    if (len >= 4 && len <= 8) {
        uint32_t a0, b0, a1, b1;
        memcpy(&a0, p, 4);
        memcpy(&b0, sep, 4);
        memcpy(&a1, p + len - 4, 4);
        memcpy(&b1, sep + len - 4, 4);
        return a0 == b0 && a1 == b1;
    }
    if (len > 8)
        return memcmp(p + 1, sep + 1, len - 1) == 0;
    size_t k = 1;
    while (k < len && p[k] == sep[k])
        k++;
    return k == len;
}

/* The first occurrence of sep[0..len) in b[0..n), or NULL: memchr for the first byte (fast for
 * the short separators streams use), then a compare. */
static inline const char *search(const char *b, size_t n, const char *sep, size_t len)
{
    if (n < len)
        return NULL;
    const char *last = b + (n - len); /* the last place a match can start */
    char c = sep[0];
    while (b <= last) {
        const char *p = memchr(b, c, (size_t)(last - b) + 1);
        if (p == NULL)
            return NULL;
        if (sep_eq(p, sep, len))
            return p;
        b = p + 1;
    }
    return NULL;
}

/*
 * Find the earliest-ending separator at or after `from` in `b[0..n)`: returns true with its
 * start and end. On equal ends the shorter separator wins (asyncio tries them shortest first).
 */
static bool find_sep(const char *b, size_t n, size_t from, const struct weft_sep *seps,
                     size_t nseps, size_t *start, size_t *end)
{
    bool found = false;
    size_t best_len = 0;
    for (size_t i = 0; i < nseps; i++) {
        size_t len = seps[i].len;
        /* A match ending after the best one so far cannot win: search only up to it. */
        size_t lim = found ? *end - from : n - from;
        const char *p = search(b + from, lim, seps[i].data, len);
        if (p == NULL)
            continue;
        size_t st = (size_t)(p - b), e = st + len;
        if (!found || e < *end || (e == *end && len < best_len)) {
            found = true;
            *start = st;
            *end = e;
            best_len = len;
        }
    }
    return found;
}

static int readuntil_impl(weft_stream_t *s, const struct weft_sep *seps, size_t nseps,
                          const char **data, size_t *len, int64_t deadline, bool *held)
{
    size_t minlen = SIZE_MAX, maxlen = 0;
    for (size_t i = 0; i < nseps; i++) {
        if (seps[i].len == 0 || seps[i].data == NULL)
            return -EINVAL;
        minlen = seps[i].len < minlen ? seps[i].len : minlen;
        maxlen = seps[i].len > maxlen ? seps[i].len : maxlen;
    }
    if (s->rerr != 0)
        return s->rerr;
    begin(s);
    size_t offset = 0, start = 0, end = 0;
    for (;;) {
        size_t n = buffered(s);
        const char *b = s->rbuf + s->rpos;
        if (n >= offset && n - offset >= minlen) {
            if (find_sep(b, n, offset, seps, nseps, &start, &end))
                break;
            offset = n + 1 > maxlen ? n + 1 - maxlen : 0;
            if (offset > s->limit) {
                *data = b;
                *len = offset;
                return WEFT_ELIMIT;
            }
        }
        if (s->eof) {
            *data = b;
            *len = n;
            consume(s, n);
            return WEFT_EOF;
        }
        ssize_t f = fill(s, n + 1, deadline, held);
        if (f < 0)
            return (int)f;
    }
    *data = s->rbuf + s->rpos;
    if (start > s->limit) {
        *len = start;
        return WEFT_ELIMIT;
    }
    *len = end;
    consume(s, end);
    return 0;
}

int weft_stream_readuntil_any_dl(weft_stream_t *s, const struct weft_sep *seps, size_t nseps,
                                 const char **data, size_t *len, int64_t deadline)
{
    if (data == NULL || len == NULL)
        return -EINVAL;
    *data = NULL;
    *len = 0;
    if (s == NULL || seps == NULL || nseps == 0)
        return -EINVAL;
    bool held = false;
    int r = readuntil_impl(s, seps, nseps, data, len, deadline, &held);
    done(s, held);
    return r;
}

int weft_stream_readuntil_any(weft_stream_t *s, const struct weft_sep *seps, size_t nseps,
                              const char **data, size_t *len)
{
    return weft_stream_readuntil_any_dl(s, seps, nseps, data, len, WEFT_NO_DEADLINE);
}

/*
 * The fast paths' shared step, on a healthy socket that the last short recv() drained, with
 * nothing buffered and a roomy buffer: wait for it to turn readable and receive once into the
 * empty buffer, skipping the general loop's layers (fill, rwait). Returns the bytes received
 * (> 0), 0 when the general loop must go on from the state reached (nothing yet, or the end:
 * s->eof), or an error.
 */
static ssize_t recv_drained(weft_stream_t *s, int64_t deadline, bool *held)
{
    s->rpos = s->rend = 0;
    s->refs++; /* the stream outlives a release by another task while this one waits */
    *held = true;
    int w = wait_drained(s, deadline);
    if (WEFT__UNLIKELY(w != 1))
        return w < 0 ? w : 0;
    size_t ask = s->rcap;
    ssize_t n = weft__recv(s->fd, s->rbuf, ask, MSG_DONTWAIT);
    if (WEFT__LIKELY(n > 0)) {
        s->rend = (size_t)n;
        if ((size_t)n < ask)
            s->rdrained = 1;
        return n;
    }
    if (n == 0)
        s->eof = 1;
    else if (errno != EAGAIN && errno != EINTR)
        return read_failed(s, -errno);
    return 0;
}

/*
 * readuntil() with one separator through recv_drained(): a server's request/response pattern (an
 * HTTP head per call) comes here; anything unusual goes on in readuntil_impl() from the state
 * reached.
 */
static int readuntil_drained(weft_stream_t *s, const struct weft_sep *sep, const char **data,
                             size_t *len, int64_t deadline, bool *held)
{
    ssize_t n = recv_drained(s, deadline, held);
    if (WEFT__UNLIKELY(n < 0))
        return (int)n;
    if (WEFT__LIKELY(n > 0)) {
        const char *p = search(s->rbuf, (size_t)n, sep->data, sep->len);
        if (WEFT__LIKELY(p != NULL && (size_t)(p - s->rbuf) <= s->limit)) {
            *data = s->rbuf;
            *len = (size_t)(p - s->rbuf) + sep->len;
            s->rpos = *len;
            return 0;
        }
    }
    return readuntil_impl(s, sep, 1, data, len, deadline, held);
}

int weft_stream_readuntil_dl(weft_stream_t *s, const void *sep, size_t seplen, const char **data,
                             size_t *len, int64_t deadline)
{
    if (WEFT__UNLIKELY(data == NULL || len == NULL))
        return -EINVAL;
    *data = NULL;
    *len = 0;
    if (WEFT__UNLIKELY(s == NULL || sep == NULL || seplen == 0))
        return -EINVAL;
    struct weft_sep one = {sep, seplen};
    bool held = false;
    int r;
    /* The common case of a server: see readuntil_drained(). */
    if (WEFT__LIKELY(healthy_empty(s) && s->rdrained && s->is_sock && s->rtask == NULL &&
                     s->rcap >= MIN_READ && 2 * s->limit >= s->rcap && in_task()))
        r = readuntil_drained(s, &one, data, len, deadline, &held);
    else
        r = readuntil_impl(s, &one, 1, data, len, deadline, &held);
    done(s, held);
    return r;
}

int weft_stream_readuntil(weft_stream_t *s, const void *sep, size_t seplen, const char **data,
                          size_t *len)
{
    return weft_stream_readuntil_dl(s, sep, seplen, data, len, WEFT_NO_DEADLINE);
}

int weft_stream_readline_dl(weft_stream_t *s, const char **data, size_t *len, int64_t deadline)
{
    int r = weft_stream_readuntil_dl(s, "\n", 1, data, len, deadline);
    if (r == WEFT_EOF)
        return 0; /* the partial last line, or nothing at a clean end */
    if (r == WEFT_ELIMIT) {
        /* asyncio drops the line: through its newline if buffered, else everything. */
        size_t n = buffered(s);
        if (*len < n && s->rbuf[s->rpos + *len] == '\n')
            consume(s, *len + 1);
        else
            consume(s, n);
        *data = NULL;
        *len = 0;
    }
    return r;
}

int weft_stream_readline(weft_stream_t *s, const char **data, size_t *len)
{
    return weft_stream_readline_dl(s, data, len, WEFT_NO_DEADLINE);
}

int weft_stream_read_all_dl(weft_stream_t *s, const char **data, size_t *len, int64_t deadline)
{
    if (data == NULL || len == NULL)
        return -EINVAL;
    *data = NULL;
    *len = 0;
    if (s == NULL)
        return -EINVAL;
    if (s->rerr != 0)
        return s->rerr;
    begin(s);
    bool held = false;
    int r = 0;
    for (;;) {
        ssize_t f = fill(s, SIZE_MAX, deadline, &held);
        if (f < 0) {
            r = (int)f;
            goto out;
        }
        if (f == 0)
            break;
    }
    *data = s->rbuf + s->rpos;
    *len = buffered(s);
    consume(s, *len);
out:
    done(s, held);
    return r;
}

int weft_stream_read_all(weft_stream_t *s, const char **data, size_t *len)
{
    return weft_stream_read_all_dl(s, data, len, WEFT_NO_DEADLINE);
}

size_t weft_stream_buffered(const weft_stream_t *s, const char **data)
{
    if (s == NULL)
        return 0;
    if (data != NULL)
        *data = s->rbuf != NULL ? s->rbuf + s->rpos : "";
    return buffered(s);
}

bool weft_stream_at_eof(const weft_stream_t *s)
{
    return s != NULL && s->eof && buffered(s) == 0;
}

int weft_stream_error(const weft_stream_t *s)
{
    return s != NULL ? s->rerr : -EINVAL;
}

static void wake_reader(weft_stream_t *s, int result)
{
    if (s->rtask != NULL)
        weft__wake(s->rtask, result);
}

int weft_stream_feed(weft_stream_t *s, const void *data, size_t n)
{
    if (s == NULL || (data == NULL && n > 0) || s->eof)
        return -EINVAL;
    if (n == 0)
        return 0;
    int err = reserve(s, n);
    if (err < 0)
        return err;
    memcpy(s->rbuf + s->rend, data, n);
    s->rend += n;
    wake_reader(s, 0);
    return 0;
}

void weft_stream_feed_eof(weft_stream_t *s)
{
    if (s == NULL)
        return;
    s->eof = 1;
    wake_reader(s, 0);
}

int weft_stream_set_error(weft_stream_t *s, int err)
{
    if (s == NULL || err >= 0)
        return -EINVAL;
    s->rerr = err;
    wake_reader(s, err);
    return 0;
}

/* Wake a waiting reader so it notices a close (it then sees end of stream). */
void weft__stream_wake_reader(weft_stream_t *s)
{
    wake_reader(s, 0);
}

/*
 * peek() for a few bytes through recv_drained(): an HTTP server's wait for its next request
 * comes here. Returns 1 when `min` bytes are buffered, 0 when the general loop must go on from
 * the state reached, or an error.
 */
static int peek_drained(weft_stream_t *s, size_t min, int64_t deadline, bool *held)
{
    ssize_t n = recv_drained(s, deadline, held);
    if (WEFT__UNLIKELY(n < 0))
        return (int)n;
    return n > 0 && (size_t)n >= min;
}

int weft_stream_peek_dl(weft_stream_t *s, size_t min, const char **data, size_t *len,
                        int64_t deadline)
{
    if (data == NULL || len == NULL)
        return -EINVAL;
    *data = NULL;
    *len = 0;
    if (s == NULL)
        return -EINVAL;
    if (s->rerr != 0)
        return s->rerr;
    bool held = false;
    int r = 0;
    /* The common case of a server waiting for its next request: see peek_drained(). */
    if (WEFT__LIKELY(min > 0 && min <= MIN_READ && healthy_empty(s) && s->rdrained && s->is_sock &&
                     s->rtask == NULL && s->rcap >= MIN_READ && 2 * s->limit >= s->rcap &&
                     in_task())) {
        int k = peek_drained(s, min, deadline, &held);
        if (k < 0)
            r = k;
    }
    while (r == 0 && buffered(s) < min) {
        if (s->eof) {
            r = WEFT_EOF;
            break;
        }
        if (s->rpos > 0 && s->rpos == s->rend)
            s->rpos = s->rend = 0;
        ssize_t f = fill(s, min, deadline, &held);
        if (f < 0) {
            r = (int)f;
            break;
        }
    }
    if (r == 0 || r == WEFT_EOF) {
        *data = s->rbuf != NULL ? s->rbuf + s->rpos : "";
        *len = buffered(s);
    }
    done(s, held);
    return r;
}

int weft_stream_peek(weft_stream_t *s, size_t min, const char **data, size_t *len)
{
    return weft_stream_peek_dl(s, min, data, len, WEFT_NO_DEADLINE);
}

int weft_stream_consume(weft_stream_t *s, size_t n)
{
    if (s == NULL || n > buffered(s))
        return -EINVAL;
    consume(s, n);
    return 0;
}
