/*
 * The HTTP server tests' shared parts (server_test.c, limits_test.c, shutdown_test.c): the
 * server's handler dispatching on the path, a client written on weft streams (connect, send,
 * read one response), and the harness that runs a case against a server on 127.0.0.1.
 */
#ifndef WEFT_SRVTEST_H
#define WEFT_SRVTEST_H

#include "net/nettest.h"

#include <weft/http.h>

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

static int reports;

static inline void count_reports(weft_loop_t *loop, const struct weft_error_info *info,
                                 void *arg)
{
    (void)loop;
    (void)info;
    (void)arg;
    reports++;
}

static int file_fd = -1;

/* The server side: one handler dispatching on the path. */
static inline int handler(weft_http_request_t *req, void *arg)
{
    (void)arg;
    const struct weft_http_head *h = weft_http_request_head(req);
    char buf[256];
    if (weft_http_str_eq(h->path, "/hello"))
        return weft_http_respond(req, 200, "Hello, World!", 13);
    if (weft_http_str_eq(h->path, "/echo")) {
        const char *d;
        size_t n;
        int r = weft_http_body_all(req, &d, &n);
        if (r < 0)
            return r;
        weft_http_header_add(req, "X-Method", "yes");
        return weft_http_respond(req, 200, d, n);
    }
    if (weft_http_str_eq(h->path, "/count")) {
        /* Reads the body in small pieces; answers its length. */
        size_t total = 0;
        char piece[7];
        ssize_t k;
        while ((k = weft_http_body_read(req, piece, sizeof(piece))) > 0)
            total += (size_t)k;
        if (k < 0)
            return (int)k;
        int n = snprintf(buf, sizeof(buf), "%zu", total);
        return weft_http_respond(req, 200, buf, (size_t)n);
    }
    if (weft_http_str_eq(h->path, "/path")) {
        int n = snprintf(buf, sizeof(buf), "%.*s|%.*s|%d", (int)h->path.n, h->path.p,
                         (int)h->query.n, h->query.p ? h->query.p : "", (int)h->nheaders);
        return weft_http_respond(req, 200, buf, (size_t)n);
    }
    if (weft_http_str_eq(h->path, "/fail"))
        return -EIO;
    if (weft_http_str_eq(h->path, "/noanswer"))
        return 0;
    if (weft_http_str_eq(h->path, "/fail-late")) {
        weft_http_respond_start(req, 200);
        weft_http_respond_chunk(req, "part", 4);
        return -EIO;
    }
    if (weft_http_str_eq(h->path, "/chunks")) {
        weft_http_header_add(req, "Content-Type", "text/plain");
        int r = weft_http_respond_start(req, 200);
        for (int i = 0; r == 0 && i < 3; i++)
            r = weft_http_respond_chunk(req, "abc", 3);
        return r < 0 ? r : weft_http_respond_end(req);
    }
    if (weft_http_str_eq(h->path, "/file"))
        return weft_http_respond_file(req, 200, file_fd, 0, 100000);
    if (weft_http_str_eq(h->path, "/slow")) {
        int r = weft_sleep(h->query.p ? atof(h->query.p) : 0.3);
        if (r < 0)
            return r;
        return weft_http_respond(req, 200, "slow", 4);
    }
    if (weft_http_str_eq(h->path, "/len")) {
        /* A body of `query` bytes (Content-Length's digits); HEAD /len?huge: a file's head
         * promising 1234567890 bytes. */
        static char xs[200000];
        memset(xs, 'x', sizeof(xs));
        if (h->query.p != NULL && weft_http_str_eq(h->query, "huge")) {
            int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            int r = weft_http_respond_file(req, 200, fd, 0, 1234567890);
            close(fd);
            return r;
        }
        size_t n = h->query.p ? (size_t)atol(h->query.p) : 0;
        return weft_http_respond(req, n == 7 ? 201 : 200, xs, n < sizeof(xs) ? n : sizeof(xs));
    }
    if (weft_http_str_eq(h->path, "/hdr")) {
        /* Adds "X-Val: QUERY", answers "ok" (or QUERY's length of 'x' after "n=", as /len). */
        int n = snprintf(buf, sizeof(buf), "%.*s", (int)h->query.n, h->query.p ? h->query.p : "");
        weft_http_header_add(req, "X-Val", buf);
        return weft_http_respond(req, n > 0 && buf[0] == '4' ? 404 : 200, "ok", 2);
    }
    if (weft_http_str_eq(h->path, "/inject"))
        return weft_http_header_add(req, "X", "a\r\nSet-Cookie: x") == -EINVAL
                   ? weft_http_respond(req, 200, "refused", 7)
                   : -EIO;
    return weft_http_respond(req, 404, "nope", 4);
}

/* ---- the client side ---- */

struct resp {
    int status;
    char head[8192];
    char *body;
    size_t blen;
    bool close; /* Connection: close */
};

static inline weft_stream_t *cconnect(int port)
{
    weft_stream_t *s;
    CHECK_EQ(weft_stream_connect(&s, "127.0.0.1", port, NULL), 0);
    return s;
}

static inline void csend(weft_stream_t *s, const char *d, size_t n)
{
    CHECK_EQ(weft_stream_write(s, d, n), 0);
    CHECK_EQ(weft_stream_drain(s), 0);
}

static inline void csends(weft_stream_t *s, const char *d)
{
    csend(s, d, strlen(d));
}

/* The value of header `name` in a response head, or NULL. */
static inline const char *hval(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

/* Read one response (not HEAD's). Returns 0, or the read's error (WEFT_EOF: closed). */
static inline int cread_x(weft_stream_t *s, struct resp *r, bool head_req)
{
    const char *d;
    size_t n;
    int64_t dl = weft_deadline_in(10);
    free(r->body);
    memset(r, 0, sizeof(*r));
    int e = weft_stream_readuntil_dl(s, "\r\n\r\n", 4, &d, &n, dl);
    if (e < 0)
        return e;
    CHECK(n < sizeof(r->head));
    memcpy(r->head, d, n);
    r->head[n] = '\0';
    CHECK(strncmp(r->head, "HTTP/1.1 ", 9) == 0);
    r->status = atoi(r->head + 9);
    char v[64];
    r->close = hval(r->head, "Connection", v, sizeof(v)) != NULL && strcasecmp(v, "close") == 0;
    r->body = malloc(1 << 20);
    if (head_req || r->status == 204 || r->status == 304 || r->status / 100 == 1)
        return 0;
    if (hval(r->head, "Content-Length", v, sizeof(v)) != NULL) {
        size_t len = (size_t)atol(v);
        size_t got;
        e = weft_stream_readexactly_dl(s, r->body, len, &got, dl);
        r->blen = got;
        return e;
    }
    if (hval(r->head, "Transfer-Encoding", v, sizeof(v)) != NULL) {
        CHECK(strcasecmp(v, "chunked") == 0);
        for (;;) {
            e = weft_stream_readuntil_dl(s, "\r\n", 2, &d, &n, dl);
            if (e < 0)
                return e;
            size_t len = strtoul(d, NULL, 16);
            if (len == 0) {
                e = weft_stream_readuntil_dl(s, "\r\n", 2, &d, &n, dl);
                return e;
            }
            e = weft_stream_readexactly_dl(s, r->body + r->blen, len, NULL, dl);
            if (e < 0)
                return e;
            r->blen += len;
            e = weft_stream_readuntil_dl(s, "\r\n", 2, &d, &n, dl);
            if (e < 0)
                return e;
        }
    }
    /* Delimited by the close. */
    ssize_t k;
    while ((k = weft_stream_read_dl(s, r->body + r->blen, (1 << 20) - r->blen, dl)) > 0)
        r->blen += (size_t)k;
    return (int)k;
}

static inline int cread(weft_stream_t *s, struct resp *r)
{
    return cread_x(s, r, false);
}

/* The server closed the connection: the next read sees the end. */
static inline void check_closed(weft_stream_t *s)
{
    char c;
    CHECK_EQ(weft_stream_read_dl(s, &c, 1, weft_deadline_in(5)), 0);
}

static inline bool body_is(const struct resp *r, const char *lit)
{
    return r->blen == strlen(lit) && memcmp(r->body, lit, r->blen) == 0;
}

/* ---- the harness: a server on 127.0.0.1:free with `opts`, then `fn(port, srv)` ---- */

struct harness {
    void (*fn)(int port, weft_http_server_t *srv);
    struct weft_http_server_opts opts;
};

static inline int harness_main(void *arg)
{
    struct harness *hn = arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    weft_http_server_t *srv;
    CHECK_EQ(weft_http_server_start(&srv, handler, NULL, "127.0.0.1", 0, &hn->opts), 0);
    int port = weft_http_server_port(srv);
    CHECK(port > 0);
    hn->fn(port, srv);
    CHECK(weft_http_server_shutdown(srv, 1.0) >= 0);
    CHECK_EQ(weft_http_server_connections(srv), 0);
    weft_http_server_release(srv);
    return 0;
}

static inline void run_with(void (*fn)(int, weft_http_server_t *),
                            const struct weft_http_server_opts *o)
{
    struct harness hn = {.fn = fn};
    if (o != NULL)
        hn.opts = *o;
    reports = 0;
    int fds = test_count_fds();
    CHECK_EQ(weft_run(harness_main, &hn), 0);
    CHECK_EQ(test_count_fds(), fds);
}

#endif /* WEFT_SRVTEST_H */
