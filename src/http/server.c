/*
 * The HTTP/1.1 server: one weft task per connection (weft_server_start's handler) that loops over
 * the connection's requests: read a head (zero-copy, parsed in the stream's buffer with
 * weft_stream_peek), call the handler, finish the response and the body, decide whether the
 * connection stays open. One task per connection rather than per request: requests of a
 * connection are answered in order anyway (pipelining), and the hot path spawns nothing.
 * Responses are built and written in respond.c.
 */
#include "http_internal.h"

#ifdef WEFT_HTTP_WITH_TLS
#include <weft/tls.h>
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEF_MAX_BODY     (1024 * 1024)
#define DEF_HEADER_TO    10.0
#define DEF_KEEPALIVE_TO 5.0
#define DEF_BODY_TO      30.0
#define DEF_WRITE_TO     30.0
#define DEF_MAX_CONNS    10000
#define DEF_BACKLOG      1024
#define DISCARD_MAX      (64 * 1024) /* unread body bytes we read and drop to keep a connection */
#define LINGER_MAX       (256 * 1024)
#define LINGER_SECONDS   2.0

/* ---- the server object ---- */

static void hs_unref(weft_http_server_t *hs)
{
    if (--hs->refs > 0)
        return;
    weft_timer_cancel(&hs->ka_timer);
    weft_server_release(hs->srv);
    free(hs);
}

static double opt_or(double v, double def)
{
    return v > 0 ? v : def;
}

/* A timeout in ns, -1 for none (as weft_deadline_in treats +inf). */
static int64_t secs_ns(double seconds)
{
    return seconds >= 9.2e9 ? -1 : weft_seconds_to_ns(seconds);
}

const struct weft_http_head *weft_http_request_head(const weft_http_request_t *req)
{
    return req != NULL ? &req->head : NULL;
}

bool weft_http_request_header(const weft_http_request_t *req, const char *name, size_t index,
                              struct weft_http_str *value)
{
    if (req == NULL || name == NULL)
        return false;
    for (size_t i = 0; i < req->head.nheaders; i++) {
        if (weft_http_str_caseeq(req->head.headers[i].name, name) && index-- == 0) {
            if (value != NULL)
                *value = req->head.headers[i].value;
            return true;
        }
    }
    return false;
}

weft_stream_t *weft_http_request_stream(const weft_http_request_t *req)
{
    return req != NULL ? req->c->s : NULL;
}

/* Before the first body read: the head's slices point into the stream's buffer, which a read
 * may compact or move, so copy the head out (only requests with a body pay this). */
static int keep_head(weft_http_request_t *req)
{
    if (req->head_kept)
        return 0;
    struct conn *c = req->c;
    c->headcopy.len = 0;
    if (weft__hbuf_add(&c->headcopy, req->head_ptr, req->head_len) < 0)
        return -ENOMEM;
    uintptr_t old = (uintptr_t)req->head_ptr;
    const char *nb = c->headcopy.p;
#define MOVE(s)                                                                                    \
    do {                                                                                           \
        uintptr_t a_ = (uintptr_t)(s).p;                                                           \
        if ((s).p != NULL && a_ >= old && a_ <= old + req->head_len)                               \
            (s).p = nb + (a_ - old);                                                               \
    } while (0)
    MOVE(req->head.method);
    MOVE(req->head.target);
    MOVE(req->head.path);
    MOVE(req->head.query);
    for (size_t i = 0; i < req->head.nheaders; i++) {
        MOVE(req->head.headers[i].name);
        MOVE(req->head.headers[i].value);
    }
    for (size_t i = 0; i < req->nparams; i++)
        MOVE(req->params[i].value);
#undef MOVE
    req->head_ptr = nb;
    req->head_kept = true;
    return 0;
}

static int body_fail(weft_http_request_t *req, int err, int status)
{
    req->body_err = err;
    req->err_status = status;
    req->close_after = true;
    return err;
}

int weft_http_body_next(weft_http_request_t *req, const char **data, size_t *len)
{
    if (req == NULL || data == NULL || len == NULL)
        return -EINVAL;
    *data = NULL;
    *len = 0;
    if (req->body_err < 0)
        return req->body_err;
    if (req->body_done)
        return 0;
    struct conn *c = req->c;
    int r = keep_head(req);
    if (r < 0)
        return r;
    if (req->head.expect_continue && !req->continue_sent && !req->started) {
        req->continue_sent = true;
        r = weft_stream_write(c->s, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        if (r < 0)
            return body_fail(req, r, 0);
    }
    int64_t dl = weft_deadline_in(c->hs->body_to);
    const char *d;
    size_t n;
    if (!req->head.chunked) {
        r = weft_stream_peek_dl(c->s, 1, &d, &n, dl);
        if (r == WEFT_EOF)
            return body_fail(req, -EPROTO, 400); /* the body ended early */
        if (r < 0)
            return body_fail(req, r, r == -ETIMEDOUT ? 408 : 0);
        size_t k = n < req->body_left ? n : (size_t)req->body_left;
        weft_stream_consume(c->s, k); /* the bytes stay put until the next reader call */
        req->body_left -= k;
        if (req->body_left == 0)
            req->body_done = true;
        *data = d;
        *len = k;
        return 0;
    }
    size_t min = 1;
    for (;;) {
        r = weft_stream_peek_dl(c->s, min, &d, &n, dl);
        if (r == WEFT_EOF)
            return body_fail(req, -EPROTO, 400);
        if (r < 0)
            return body_fail(req, r, r == -ETIMEDOUT ? 408 : 0);
        const char *piece;
        size_t plen;
        ssize_t used = weft_http_chunked_decode(&req->chunk, d, n, &piece, &plen);
        if (used < 0)
            return body_fail(req, -EPROTO, (int)-used);
        weft_stream_consume(c->s, (size_t)used);
        if (plen > 0) {
            req->body_total += plen;
            if (req->body_total > c->hs->max_body)
                return body_fail(req, -EFBIG, 413);
            *data = piece;
            *len = plen;
            return 0;
        }
        if (req->chunk.done) {
            req->body_done = true;
            return 0;
        }
        min = n - (size_t)used + 1;
    }
}

ssize_t weft_http_body_read(weft_http_request_t *req, void *buf, size_t n)
{
    if (req == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (n == 0)
        return 0;
    /* Copy what is left of the last piece first. */
    if (req->piece_len == 0) {
        int r = weft_http_body_next(req, &req->piece, &req->piece_len);
        if (r < 0)
            return r;
    }
    size_t k = req->piece_len < n ? req->piece_len : n;
    if (k > 0)
        memcpy(buf, req->piece, k);
    req->piece += k;
    req->piece_len -= k;
    return (ssize_t)k;
}

int weft_http_body_all(weft_http_request_t *req, const char **data, size_t *len)
{
    if (req == NULL || data == NULL || len == NULL)
        return -EINVAL;
    req->owned.len = 0;
    if (req->piece_len > 0) {
        if (weft__hbuf_add(&req->owned, req->piece, req->piece_len) < 0)
            return -ENOMEM;
        req->piece_len = 0;
    }
    for (;;) {
        const char *d;
        size_t n;
        int r = weft_http_body_next(req, &d, &n);
        if (r < 0)
            return r;
        if (n == 0)
            break;
        if (weft__hbuf_add(&req->owned, d, n) < 0)
            return -ENOMEM;
    }
    if (weft__hbuf_reserve(&req->owned, 1) < 0)
        return -ENOMEM;
    req->owned.p[req->owned.len] = '\0'; /* handy for text bodies; not counted */
    *data = req->owned.p;
    *len = req->owned.len;
    return 0;
}

/* ---- the connection loop ---- */

/* Answer an error status on a connection that will close. */
static void error_response(struct conn *c, weft_http_request_t *req, int status)
{
    static const char *const body = "";
    req->close_after = true;
    req->hdrs.len = 0;
    weft_http_header_add(req, "Content-Type", "text/plain");
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "%d %s\n", status, weft_http_reason(status));
    (void)body;
    weft__http_respond_impl(req, status, msg, (size_t)n);
    (void)c;
}

/* Close after an error answer: stop writing once flushed, then read and drop what the client
 * still sends for a while, so that our answer is not destroyed by a reset (a close with unread
 * data makes the kernel send RST). */
static void linger_close(struct conn *c)
{
    weft_stream_write_eof(c->s);
    int64_t dl = weft_deadline_in(LINGER_SECONDS);
    size_t total = 0;
    char tmp[4096];
    while (total < LINGER_MAX) {
        ssize_t n = weft_stream_read_dl(c->s, tmp, sizeof(tmp), dl);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* The peer went away: nothing worth reporting. */
static bool peer_gone(int err)
{
    return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN || err == -ESHUTDOWN ||
           err == -ECONNABORTED;
}

static void report(const char *msg, int err)
{
    if (peer_gone(err))
        return;
    struct weft_error_info info = {.message = msg, .error = err, .task = weft_current_task()};
    weft_loop_report(weft_loop_current(), &info);
}

/* The deadline `ns` (-1: none) from now on the loop's clock: weft_deadline_in() with the
 * seconds converted once, at the server's start. */
static inline int64_t deadline_ns(int64_t ns)
{
    if (ns < 0)
        return WEFT_NO_DEADLINE;
    int64_t now = weft_time(NULL);
    return ns > INT64_MAX - now ? WEFT_NO_DEADLINE : now + ns;
}

/* ---- keep-alive idle: the wheel ----
 *
 * A connection between requests must be closed once it has waited keepalive_timeout, never
 * before. A deadline per wait would read the clock and arm and disarm a timer for every request;
 * instead the server ticks: one timer, every ka_tick_ns (the timeout / 16, at least 1 ms), and
 * a connection that begins its wait notes the tick count (its stamp) and sits in the wheel's
 * slot for that tick, which costs a comparison when the stamp is already the current one (under
 * load, nearly always) and a list move otherwise.
 *
 * Why it is never early: tick m+1's callback runs after every wait stamped m began (the count
 * was still m then), and each tick reads the clock and arms the next for that reading plus the
 * period, so tick m+1+k reads a time at least k periods later. Tick m+1+ka_ticks, with ka_ticks
 * the periods that make a timeout (rounded up), therefore finds every wait stamped m at least
 * keepalive_timeout old: the slot of stamp m is due then. Each tick takes only that slot: its
 * connections still in that wait are woken with -ETIMEDOUT (weft_stream_set_error: the wait
 * ends as a deadline's would), the others (they have begun a request since) leave the wheel
 * until their next wait. How late: at most two periods (one for the stamp's position within its
 * tick, one for the rounding), 1/8 of the timeout, plus the loop's own lateness. The timer runs
 * only while the wheel holds connections. */

static void ka_tick(void *arg)
{
    weft_http_server_t *hs = arg;
    int64_t now = weft_time(hs->loop);
    uint64_t m = ++hs->ka_tick;
    if (m > hs->ka_ticks) {
        uint64_t due = m - hs->ka_ticks - 1;
        struct hlist *slot = &hs->ka_slot[due % WEFT__HTTP_KA_SLOTS];
        struct hlist *n = slot->next;
        while (n != slot) {
            struct hlist *next = n->next;
            struct conn *c = (struct conn *)(void *)((char *)n - offsetof(struct conn, ka_link));
            /* A later stamp in this slot would be more than a wheel's turn ahead: impossible;
             * every earlier one left at its own tick. */
            if (c->ka_stamp == due) {
                weft__http_list_remove(n);
                hs->ka_count--;
                c->ka_stamp = UINT64_MAX;
                if (c->idle)
                    weft_stream_set_error(c->s, -ETIMEDOUT); /* its wait ends, as at a deadline */
            }
            n = next;
        }
    }
    hs->ka_running = false;
    if (hs->ka_count > 0 &&
        weft_call_at(hs->loop, &hs->ka_timer, now + hs->ka_tick_ns, ka_tick, hs) == 0)
        hs->ka_running = true;
}

/* A keep-alive wait begins in a later tick than this connection's last one: move it to the
 * current tick's slot, and start the ticks if they are stopped. Returns 0 or -ENOMEM (the
 * caller then waits with a deadline of its own). */
static __attribute__((noinline)) int ka_enter(struct conn *c)
{
    weft_http_server_t *hs = c->hs;
    if (!hs->ka_running) {
        int64_t when = weft_time(hs->loop) + hs->ka_tick_ns;
        if (weft_call_at(hs->loop, &hs->ka_timer, when, ka_tick, hs) < 0)
            return -ENOMEM;
        hs->ka_running = true;
    }
    if (c->ka_link.next != &c->ka_link)
        weft__http_list_remove(&c->ka_link);
    else
        hs->ka_count++;
    weft__http_list_add(&hs->ka_slot[hs->ka_tick % WEFT__HTTP_KA_SLOTS], &c->ka_link);
    c->ka_stamp = hs->ka_tick;
    return 0;
}

static void ka_leave(struct conn *c)
{
    if (c->ka_link.next != &c->ka_link) {
        weft__http_list_remove(&c->ka_link);
        c->hs->ka_count--;
    }
}

/* Read one request head. Returns the head's length, 0 for "close quietly", or -status.
 * The clock is read once per request at most: for the idle wait when nothing is buffered yet,
 * and for the head's own deadline only when its first bytes did not hold all of it (counted
 * from then: a little after its first byte came, never before). */
static ssize_t read_head(struct conn *c, weft_http_request_t *req, struct weft_http_header *hdrs,
                         size_t cap, const char **headp)
{
    weft_http_server_t *hs = c->hs;
    const char *d;
    size_t n;
    /* Wait for the first byte: the idle (keep-alive) timeout, or for the first request of a
     * connection the header timeout from the accept. A pipelined request is there already. */
    int64_t dl = c->first_dl;
    if (c->nreq > 0) {
        dl = WEFT_NO_DEADLINE; /* a pipelined request is there already: no wait */
        if (hs->keepalive_ns >= 0 && weft_stream_buffered(c->s, NULL) == 0 &&
            WEFT__HTTP_UNLIKELY(c->ka_stamp != hs->ka_tick) && ka_enter(c) < 0)
            dl = deadline_ns(hs->keepalive_ns);
    }
    c->idle = true;
    int r = weft_stream_peek_dl(c->s, 1, &d, &n, dl);
    c->idle = false;
    if (r < 0 || hs->shutting)
        return 0; /* idle timeout, end of stream, shutdown, an error: close without a word */
    bool head_dl = c->nreq == 0; /* dl is the head's deadline already */
    c->reading = true;
    struct weft_http_parser *p = &c->parser;
    p->pos = p->scan = p->line_start = 0; /* parser_init's reset without its limits' copy */
    p->base = NULL;
    p->state = 0;
    req->head.headers = hdrs;
    for (;;) {
        ssize_t h = weft_http_parse(p, d, n, &req->head, cap);
        if (h != 0) {
            c->reading = false;
            *headp = d;
            return h;
        }
        if (!head_dl) {
            dl = deadline_ns(hs->header_ns);
            head_dl = true;
        }
        r = weft_stream_peek_dl(c->s, n + 1, &d, &n, dl);
        if (r == -ETIMEDOUT) {
            c->reading = false;
            return -408;
        }
        if (r < 0 || hs->shutting) {
            c->reading = false;
            return 0; /* the client went away mid-head (or we shut down): nothing to answer */
        }
    }
}

/* Drop what is left of the request body, if that is cheap; false if the connection must close. */
static bool finish_body(weft_http_request_t *req)
{
    if (req->body_done)
        return true;
    if (req->body_err < 0 || req->close_after)
        return false;
    if (req->head.expect_continue && !req->continue_sent)
        return false; /* the client may or may not send it: do not guess */
    if (!req->head.chunked && req->body_left > DISCARD_MAX)
        return false;
    size_t dropped = 0;
    const char *d;
    size_t n;
    while (!req->body_done) {
        if (weft_http_body_next(req, &d, &n) < 0)
            return false;
        dropped += n;
        if (dropped > DISCARD_MAX)
            return false;
    }
    return true;
}

static void req_reset(weft_http_request_t *req)
{
    /* The head is the parser's to reset; the buffers are kept, emptied. */
    req->hdrs.len = 0;
    req->owned.len = 0;
    size_t from = offsetof(struct weft_http_request, head_ptr);
    weft__http_zero(&req->head_ptr, offsetof(struct weft_http_request, params) - from);
}

static int conn_main(weft_stream_t *s, void *arg)
{
    weft_http_server_t *hs = arg;
    struct conn c = {.hs = hs, .s = s, .task = weft_current_task(), .ka_stamp = UINT64_MAX};
    weft__http_list_init(&c.ka_link);
    c.first_dl = deadline_ns(hs->header_ns);
    weft_http_parser_init(&c.parser, &hs->opts.limits);
    hs->refs++;
    weft__http_list_add(&hs->conns, &c.link);
    hs->nconns++;

    size_t cap = hs->opts.limits.max_headers;
    struct weft_http_header *hdrs = malloc(cap * sizeof(*hdrs));
    weft_http_request_t req;
    memset(&req, 0, sizeof(req));
    req.c = &c;
    int result = 0;

    while (hdrs != NULL && !hs->shutting) {
        req_reset(&req);
        const char *headp = NULL;
        ssize_t h = read_head(&c, &req, hdrs, cap, &headp);
        if (h == 0)
            break;
        c.nreq++;
        if (h < 0) {
            req.head.minor = 1;
            req.head.keep_alive = false;
            error_response(&c, &req, (int)-h);
            linger_close(&c);
            break;
        }
        weft_stream_consume(s, (size_t)h);
        req.head_ptr = headp;
        req.head_len = (size_t)h;
        req.is_head = req.head.method.n == 4 && memcmp(req.head.method.p, "HEAD", 4) == 0;
        if (req.head.chunked) {
            req.chunk.max_trailer = hs->opts.limits.max_header_bytes;
        } else if (req.head.content_length > 0) {
            req.body_left = (uint64_t)req.head.content_length;
        } else {
            req.body_done = true;
        }
        if (req.head.content_length > (int64_t)hs->max_body) {
            /* Refused before reading it (with Expect, the client never sends it). */
            error_response(&c, &req, 413);
            linger_close(&c);
            break;
        }

        int r = hs->handler(&req, hs->arg);
        bool cancelled = weft_task_cancelling(c.task) > 0;
        if (!req.started) {
            int status = req.err_status > 0 ? req.err_status : 500;
            if (r < 0 && req.err_status == 0)
                report("HTTP handler failed", r);
            else if (r >= 0 && req.err_status == 0)
                report("HTTP handler returned without a response", -EPROTO);
            req.close_after = req.close_after || r < 0 || cancelled;
            req.hdrs.len = 0;
            error_response(&c, &req, status);
        } else if (!req.ended) {
            if (r < 0 || cancelled) {
                report("HTTP handler failed after its response began", r < 0 ? r : -ECANCELED);
                req.abort = true;
            } else {
                weft_http_respond_end(&req);
            }
        } else if (r < 0 && r != -ECANCELED) {
            report("HTTP handler failed after responding", r);
        }
        if (req.abort) {
            weft_stream_abort(s);
            result = 0;
            break;
        }
        if (cancelled)
            break;
        if (req.close_after || !finish_body(&req) || weft__http_will_close(&req)) {
            /* Unread request bytes at close() make the kernel send a reset, which can destroy
             * the answer in flight: read and drop them for a while first. */
            if (req.err_status != 0 || !req.body_done)
                linger_close(&c);
            break;
        }
    }

    free(hdrs);
    weft__hbuf_free(&req.hdrs);
    weft__hbuf_free(&req.owned);
    weft__hbuf_free(&c.out);
    weft__hbuf_free(&c.headcopy);
    ka_leave(&c);
    weft__http_list_remove(&c.link);
    hs->nconns--;
    hs_unref(hs);
    return result;
}

/* ---- starting and stopping ---- */

int weft_http_server_start(weft_http_server_t **out, weft_http_handler_fn handler, void *arg,
                           const char *host, int port, const struct weft_http_server_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (handler == NULL)
        return -EINVAL;
#ifndef WEFT_HTTP_WITH_TLS
    if (opts != NULL && opts->tls != NULL)
        return -EPROTONOSUPPORT; /* built without the TLS module: see docs/http-server.md */
#endif
    weft_http_server_t *hs = calloc(1, sizeof(*hs));
    if (hs == NULL)
        return -ENOMEM;
    if (opts != NULL)
        hs->opts = *opts;
    struct weft_http_limits *lim = &hs->opts.limits;
    if (lim->max_target == 0)
        lim->max_target = WEFT_HTTP_MAX_TARGET;
    if (lim->max_header_bytes == 0)
        lim->max_header_bytes = WEFT_HTTP_MAX_HEADER_BYTES;
    if (lim->max_headers == 0)
        lim->max_headers = WEFT_HTTP_MAX_HEADERS;
    if (lim->max_headers > 1000)
        lim->max_headers = 1000; /* the array lives on the connection's stack */
    hs->max_body = hs->opts.max_body ? hs->opts.max_body : DEF_MAX_BODY;
    hs->header_to = opt_or(hs->opts.header_timeout, DEF_HEADER_TO);
    hs->keepalive_to = opt_or(hs->opts.keepalive_timeout, DEF_KEEPALIVE_TO);
    hs->body_to = opt_or(hs->opts.body_timeout, DEF_BODY_TO);
    hs->write_to = opt_or(hs->opts.write_timeout, DEF_WRITE_TO);
    hs->header_ns = secs_ns(hs->header_to);
    hs->keepalive_ns = secs_ns(hs->keepalive_to);
    hs->loop = weft_loop_current();
    weft_timer_init(&hs->ka_timer);
    for (size_t i = 0; i < WEFT__HTTP_KA_SLOTS; i++)
        weft__http_list_init(&hs->ka_slot[i]);
    if (hs->keepalive_ns >= 0) {
        int64_t tick = hs->keepalive_ns / WEFT__HTTP_KA_TICKS +
                       (hs->keepalive_ns % WEFT__HTTP_KA_TICKS != 0);
        hs->ka_tick_ns = tick > 1000000 ? tick : 1000000;
        hs->ka_ticks = (uint64_t)((hs->keepalive_ns + hs->ka_tick_ns - 1) / hs->ka_tick_ns);
    }
    if (hs->opts.server_name != NULL) {
        int n = snprintf(hs->server_line, sizeof(hs->server_line), "Server: %s\r\n",
                         hs->opts.server_name);
        if (n < 0 || (size_t)n >= sizeof(hs->server_line) ||
            strpbrk(hs->opts.server_name, "\r\n") != NULL) {
            free(hs);
            return -EINVAL;
        }
        hs->server_len = (size_t)n;
    }
    hs->handler = handler;
    hs->arg = arg;
    hs->refs = 1;
    weft__http_list_init(&hs->conns);

    struct weft_server_opts so = {0};
    /* The head must fit the stream's limit-bound read-ahead (peek asks up to the head's size). */
    so.stream.limit = lim->max_target + lim->max_header_bytes + 1024;
    so.backlog = hs->opts.backlog > 0 ? hs->opts.backlog : DEF_BACKLOG;
    so.reuse_port = hs->opts.reuse_port;
    so.stack_size = hs->opts.stack_size;
    /* Each connection's state (struct conn) lives on its task's stack and is linked from the
     * server (the connection list, the keep-alive wheel): a compact task's stack moves. */
    so.stack_mode = WEFT_STACK_OWN;
    so.max_clients = hs->opts.max_connections ? hs->opts.max_connections : DEF_MAX_CONNS;
    int r;
#ifdef WEFT_HTTP_WITH_TLS
    if (hs->opts.tls != NULL)
        r = weft_tls_server_start(&hs->srv, (weft_tls_ctx_t *)hs->opts.tls, conn_main, hs, host,
                                  port, &so);
    else
#endif
        r = weft_server_start(&hs->srv, conn_main, hs, host, port, &so);
    if (r < 0) {
        free(hs);
        return r;
    }
    *out = hs;
    return 0;
}

int weft_http_server_port(const weft_http_server_t *hs)
{
    return hs != NULL ? weft_server_port(hs->srv) : -EINVAL;
}

size_t weft_http_server_connections(const weft_http_server_t *hs)
{
    return hs != NULL ? hs->nconns : 0;
}

/* Stop accepting and close the connections that wait for a request (not those in one). */
static void begin_shutdown(weft_http_server_t *hs)
{
    hs->shutting = true;
    weft_server_close(hs->srv);
    for (struct hlist *n = hs->conns.next; n != &hs->conns; n = n->next) {
        struct conn *c = weft__http_conn_of(n);
        if (c->idle || c->reading)
            weft_stream_close(c->s); /* its read wakes with the end of the stream */
    }
}

static int cancel_all(weft_http_server_t *hs)
{
    int n = 0;
    for (struct hlist *l = hs->conns.next; l != &hs->conns; l = l->next) {
        struct conn *c = weft__http_conn_of(l);
        if (weft_task_cancel(c->task, "HTTP server shutdown"))
            n++;
    }
    return n;
}

int weft_http_server_shutdown(weft_http_server_t *hs, double grace)
{
    if (hs == NULL)
        return -EINVAL;
    hs->refs++;
    begin_shutdown(hs);
    int r = weft_server_wait_closed_dl(hs->srv, weft_deadline_in(grace > 0 ? grace : 0));
    int cancelled = 0;
    if (r == -ETIMEDOUT || r == -ECANCELED) {
        cancelled = cancel_all(hs);
        int w = weft_server_wait_closed(hs->srv);
        if (w == -ECANCELED)
            r = w;
    }
    hs_unref(hs);
    return r == -ECANCELED ? -ECANCELED : cancelled;
}

int weft_http_server_wait_closed(weft_http_server_t *hs)
{
    if (hs == NULL)
        return -EINVAL;
    hs->refs++;
    int r = weft_server_wait_closed(hs->srv);
    hs_unref(hs);
    return r;
}

void weft_http_server_release(weft_http_server_t *hs)
{
    if (hs == NULL)
        return;
    begin_shutdown(hs);
    hs_unref(hs);
}
