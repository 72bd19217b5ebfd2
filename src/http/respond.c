/*
 * Responses of the HTTP/1.1 server: the head (the 200 status line and the Date line cached once a
 * second, Content-Length, the handler's headers), a small body in the same write, chunked
 * responses, files through sendfile, and the growable buffers the server's connections use.
 */
#include "http_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#define SMALL_BODY (16 * 1024) /* bodies up to this go out in one write with the head */

/* ---- the Date header, formatted once a second ---- */

#define DATE_LEN 37 /* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (IMF-fixdate: fixed width) */
#define OK_LEN   17 /* "HTTP/1.1 200 OK\r\n" */

static __thread time_t date_sec = -1;
static __thread char ok_date[OK_LEN + DATE_LEN + 1]; /* the 200 status line and the Date line */

/* The 200 status line followed by the Date line (OK_LEN + DATE_LEN bytes), formatted once a
 * second (time() is the vDSO's coarse read, a few ns). */
static const char *http_ok_date(void)
{
    time_t now = time(NULL);
    if (WEFT__HTTP_UNLIKELY(now != date_sec)) {
        struct tm tm;
        gmtime_r(&now, &tm);
        char t[48];
        size_t n = strftime(t, sizeof(t), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        if (n != DATE_LEN) /* a year past 9999: keep a well-formed line */
            memcpy(t, "Date: Fri, 31 Dec 9999 23:59:59 GMT\r\n", DATE_LEN);
        memcpy(ok_date, "HTTP/1.1 200 OK\r\n", OK_LEN);
        memcpy(ok_date + OK_LEN, t, DATE_LEN);
        date_sec = now;
    }
    return ok_date;
}

/* ---- a growable byte buffer ---- */

int weft__hbuf_reserve(struct hbuf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 512;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int weft__hbuf_add(struct hbuf *b, const void *d, size_t n)
{
    int r = weft__hbuf_reserve(b, n);
    if (r < 0)
        return r;
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

void weft__hbuf_free(struct hbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- writing ---- */

/* Write `n` bytes and apply backpressure within the write timeout. */
static int out_write(struct conn *c, const void *d, size_t n)
{
    int r = weft_stream_write(c->s, d, n);
    if (r < 0)
        return r;
    if (weft_stream_write_buffered(c->s) > 0) {
        r = weft_stream_drain_dl(c->s, weft_deadline_in(c->hs->write_to));
        if (r < 0)
            return r;
    }
    return 0;
}

static bool bodiless_status(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* The digits of `v`, written ending at `end`, two a step; returns where they start. */
static inline char *put_dec(char *end, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        end -= 2;
        end[0] = pairs[k];
        end[1] = pairs[k + 1];
    }
    if (v >= 10) {
        end -= 2;
        end[0] = pairs[v * 2];
        end[1] = pairs[v * 2 + 1];
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

/* Build the response head into c->out (which is emptied first), with room for `extra` more
 * bytes after it (a small body). `clen` < 0: no Content-Length (chunked when `chunked`, else
 * delimited by close). */
static int build_head(weft_http_request_t *req, int status, int64_t clen, bool chunked,
                      size_t extra)
{
    struct conn *c = req->c;
    struct hbuf *o = &c->out;
    o->len = 0;
    if (WEFT__HTTP_UNLIKELY(status < 100 || status > 999))
        return -EINVAL;
    if (clen < 0 && !chunked)
        req->close_after = true; /* the end of the body is the end of the connection */
    bool close = weft__http_will_close(req);
    weft_http_server_t *hs = c->hs;
    /* One reservation for everything: status line (reason included), Date, Server, the added
     * headers, Content-Length or Transfer-Encoding, Connection, the empty line, and `extra`. */
    size_t rlen = 0;
    const char *reason = NULL;
    if (status != 200) {
        reason = weft_http_reason(status);
        rlen = strlen(reason);
    }
    size_t need = 13 + rlen + 2 + DATE_LEN + hs->server_len + req->hdrs.len + 16 + 20 + 2 + 28 +
                  24 + 2 + extra;
    if (WEFT__HTTP_UNLIKELY(o->cap < need) && weft__hbuf_reserve(o, need) < 0)
        return -ENOMEM;
    char *p = o->p;
    const char *okd = http_ok_date();
    if (WEFT__HTTP_LIKELY(status == 200)) {
        memcpy(p, okd, OK_LEN + DATE_LEN); /* one fixed-size copy: status line and Date */
        p += OK_LEN + DATE_LEN;
    } else {
        memcpy(p, "HTTP/1.1 ", 9);
        p[9] = (char)('0' + status / 100);
        p[10] = (char)('0' + status / 10 % 10);
        p[11] = (char)('0' + status % 10);
        p[12] = ' ';
        p += 13;
        memcpy(p, reason, rlen);
        p += rlen;
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, okd + OK_LEN, DATE_LEN);
        p += DATE_LEN;
    }
    if (hs->server_len > 0) {
        memcpy(p, hs->server_line, hs->server_len);
        p += hs->server_len;
    }
    if (req->hdrs.len > 0) {
        weft__http_copy(p, req->hdrs.p, req->hdrs.len);
        p += req->hdrs.len;
    }
    if (clen >= 0 && !(status >= 100 && status < 200) && status != 204) {
        memcpy(p, "Content-Length: ", 16);
        p += 16;
        char t[32]; /* the digits end at t + 24: a fixed 8-byte copy stays inside t */
        char *d = put_dec(t + 24, (uint64_t)clen);
        size_t n = (size_t)(t + 24 - d);
        if (WEFT__HTTP_LIKELY(n <= 8))
            memcpy(p, d, 8); /* one fixed-size copy; the bytes past n are written over next */
        else
            memcpy(p, d, n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    } else if (chunked) {
        memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
        p += 28;
    }
    if (close) {
        memcpy(p, "Connection: close\r\n", 19);
        p += 19;
    } else if (req->head.minor == 0) {
        memcpy(p, "Connection: keep-alive\r\n", 24);
        p += 24;
    }
    *p++ = '\r';
    *p++ = '\n';
    o->len = (size_t)(p - o->p);
    req->close_after = close;
    req->status = status;
    req->started = true;
    return 0;
}

/* The bytes that end a header value given to weft_http_header_add: its NUL, or a CR or LF (an
 * error). */
static const unsigned char vstop[256] = {[0] = 1, ['\r'] = 1, ['\n'] = 1};

int weft_http_header_add(weft_http_request_t *req, const char *name, const char *value)
{
    if (req == NULL || name == NULL || value == NULL)
        return -EINVAL;
    if (req->started)
        return -EALREADY;
    /* The name: token bytes up to its NUL, four a step (each test stops before reading past a
     * non-token byte, the NUL included). */
    const unsigned char *u = (const unsigned char *)name;
    const unsigned char *tc = weft__http_tchar;
    size_t nl = 0;
    while (tc[u[nl]] && tc[u[nl + 1]] && tc[u[nl + 2]] && tc[u[nl + 3]])
        nl += 4;
    while (tc[u[nl]])
        nl++;
    if (nl == 0 || name[nl] != '\0')
        return -EINVAL; /* empty, or not a token */
    /* The value: up to its NUL, no CR or LF (a table test, four bytes a step as for the name,
     * each test before the next byte is read). */
    const unsigned char *v = (const unsigned char *)value;
    size_t vl = 0;
    while (!vstop[v[vl]] && !vstop[v[vl + 1]] && !vstop[v[vl + 2]] && !vstop[v[vl + 3]])
        vl += 4;
    while (!vstop[v[vl]])
        vl++;
    if (value[vl] != '\0')
        return -EINVAL;
    struct hbuf *b = &req->hdrs;
    if (WEFT__HTTP_UNLIKELY(b->cap - b->len < nl + vl + 4) &&
        weft__hbuf_reserve(b, nl + vl + 4) < 0)
        return -ENOMEM;
    char *p = b->p + b->len;
    weft__http_copy(p, name, nl);
    p[nl] = ':';
    p[nl + 1] = ' ';
    weft__http_copy(p + nl + 2, value, vl);
    p[nl + 2 + vl] = '\r';
    p[nl + 3 + vl] = '\n';
    b->len += nl + vl + 4;
    return 0;
}

int weft__http_respond_impl(weft_http_request_t *req, int status, const void *body, size_t len)
{
    if (req->started)
        return -EALREADY;
    bool send_body = len > 0 && !req->is_head && !bodiless_status(status);
    bool small = send_body && len <= SMALL_BODY;
    int r = build_head(req, status, (int64_t)len, false, small ? len : 0);
    if (r < 0)
        return r;
    req->ended = true;
    struct conn *c = req->c;
    if (small) {
        weft__http_copy(c->out.p + c->out.len, body, len); /* build_head made room for it */
        c->out.len += len;
        return out_write(c, c->out.p, c->out.len);
    }
    r = out_write(c, c->out.p, c->out.len);
    if (r < 0 || !send_body)
        return r;
    return out_write(c, body, len);
}

int weft_http_respond(weft_http_request_t *req, int status, const void *body, size_t len)
{
    if (req == NULL || (body == NULL && len > 0))
        return -EINVAL;
    int r = weft__http_respond_impl(req, status, body, len);
    if (r < 0 && r != -EALREADY && r != -EINVAL)
        req->close_after = true;
    return r;
}

int weft_http_respond_start(weft_http_request_t *req, int status)
{
    if (req == NULL)
        return -EINVAL;
    if (req->started)
        return -EALREADY;
    bool chunked = req->head.minor == 1;
    int r = build_head(req, status, -1, chunked, 0);
    if (r < 0)
        return r;
    req->chunked_out = chunked;
    r = out_write(req->c, req->c->out.p, req->c->out.len);
    if (r < 0)
        req->close_after = true;
    return r;
}

int weft_http_respond_chunk(weft_http_request_t *req, const void *data, size_t len)
{
    if (req == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if (!req->started || req->ended)
        return -EINVAL;
    if (len == 0 || req->is_head || bodiless_status(req->status))
        return 0;
    struct conn *c = req->c;
    int r;
    if (req->chunked_out) {
        char sz[24];
        int n = snprintf(sz, sizeof(sz), "%zx\r\n", len);
        r = weft_stream_write(c->s, sz, (size_t)n);
        if (r == 0)
            r = weft_stream_write(c->s, data, len);
        if (r == 0)
            r = out_write(c, "\r\n", 2);
    } else {
        r = out_write(c, data, len);
    }
    if (r < 0)
        req->close_after = true;
    return r;
}

int weft_http_respond_end(weft_http_request_t *req)
{
    if (req == NULL || !req->started)
        return -EINVAL;
    if (req->ended)
        return 0;
    req->ended = true;
    if (!req->chunked_out || req->is_head || bodiless_status(req->status))
        return 0;
    int r = out_write(req->c, "0\r\n\r\n", 5);
    if (r < 0)
        req->close_after = true;
    return r;
}

int weft_http_respond_file(weft_http_request_t *req, int status, int fd, off_t offset, size_t len)
{
    if (req == NULL || fd < 0 || offset < 0)
        return -EINVAL;
    if (req->started)
        return -EALREADY;
    int r = build_head(req, status, (int64_t)len, false, 0);
    if (r < 0)
        return r;
    req->ended = true;
    struct conn *c = req->c;
    r = out_write(c, c->out.p, c->out.len);
    if (r < 0 || req->is_head || bodiless_status(status)) {
        if (r < 0)
            req->close_after = true;
        return r;
    }
    /* sendfile writes to the socket itself: not under TLS, whose bytes go through the stream. */
    int sfd = c->hs->opts.tls == NULL ? weft_stream_fd(c->s) : -1;
    int64_t dl = weft_deadline_in(c->hs->write_to);
    char tmp[16384];
    while (len > 0) {
        if (weft_stream_write_buffered(c->s) == 0 && sfd >= 0) {
            /* Nothing queued: the file goes straight from the page cache to the socket. */
            ssize_t n = sendfile(sfd, fd, &offset, len);
            if (n > 0) {
                len -= (size_t)n;
                dl = weft_deadline_in(c->hs->write_to);
                continue;
            }
            if (n == 0) {
                r = -EIO; /* the file is shorter than promised */
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                r = weft_wait_fd_dl(sfd, WEFT_WRITABLE, dl);
                if (r < 0)
                    break;
                continue;
            }
            if (errno != EINVAL && errno != ENOSYS) {
                r = -errno;
                break;
            }
        }
        /* Something is queued (or no sendfile for this file): copy through the stream. */
        size_t k = len < sizeof(tmp) ? len : sizeof(tmp);
        ssize_t n = pread(fd, tmp, k, offset);
        if (n <= 0) {
            r = n == 0 ? -EIO : -errno;
            break;
        }
        offset += n;
        len -= (size_t)n;
        r = out_write(c, tmp, (size_t)n);
        if (r < 0)
            break;
        r = 0;
    }
    if (r < 0) {
        req->close_after = true;
        req->abort = true; /* the promised length cannot be kept */
    }
    return r < 0 ? r : 0;
}

bool weft_http_response_started(const weft_http_request_t *req)
{
    return req != NULL && req->started;
}

/* ---- requests ---- */
