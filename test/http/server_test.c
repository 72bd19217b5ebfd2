/*
 * The HTTP server over loopback sockets, with a client written on weft streams: keep-alive,
 * pipelining in order, HEAD, Content-Length and chunked bodies, 100-continue, HTTP/1.0 rules,
 * Connection: close, the malformed/smuggling corpus over the wire (status, then close), 413,
 * handler failures (500, or a dropped connection once the response began; both reported),
 * chunked and file responses, timeouts (header, keep-alive idle, body), max_connections,
 * graceful shutdown (idle closed at once, in-flight finished, the rest cancelled), the router.
 */
#include "net/nettest.h"

#include <weft/http.h>

#include "corpus.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>

static int reports;

static void count_reports(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)info;
    (void)arg;
    reports++;
}

static int file_fd = -1;

/* The server side: one handler dispatching on the path. */
static int handler(weft_http_request_t *req, void *arg)
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

static weft_stream_t *cconnect(int port)
{
    weft_stream_t *s;
    CHECK_EQ(weft_stream_connect(&s, "127.0.0.1", port, NULL), 0);
    return s;
}

static void csend(weft_stream_t *s, const char *d, size_t n)
{
    CHECK_EQ(weft_stream_write(s, d, n), 0);
    CHECK_EQ(weft_stream_drain(s), 0);
}

static void csends(weft_stream_t *s, const char *d)
{
    csend(s, d, strlen(d));
}

/* The value of header `name` in a response head, or NULL. */
static const char *hval(const char *head, const char *name, char *out, size_t cap)
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
static int cread_x(weft_stream_t *s, struct resp *r, bool head_req)
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

static int cread(weft_stream_t *s, struct resp *r)
{
    return cread_x(s, r, false);
}

/* The server closed the connection: the next read sees the end. */
static void check_closed(weft_stream_t *s)
{
    char c;
    CHECK_EQ(weft_stream_read_dl(s, &c, 1, weft_deadline_in(5)), 0);
}

static bool body_is(const struct resp *r, const char *lit)
{
    return r->blen == strlen(lit) && memcmp(r->body, lit, r->blen) == 0;
}

/* ---- the harness: a server on 127.0.0.1:free with `opts`, then `fn(port, srv)` ---- */

struct harness {
    void (*fn)(int port, weft_http_server_t *srv);
    struct weft_http_server_opts opts;
};

static int harness_main(void *arg)
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

static void run_with(void (*fn)(int, weft_http_server_t *), const struct weft_http_server_opts *o)
{
    struct harness hn = {.fn = fn};
    if (o != NULL)
        hn.opts = *o;
    reports = 0;
    int fds = test_count_fds();
    CHECK_EQ(weft_run(harness_main, &hn), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- cases ---- */

static void keepalive_fn(int port, weft_http_server_t *srv)
{
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    for (int i = 0; i < 3; i++) {
        csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_EQ(cread(s, &r), 0);
        CHECK_EQ(r.status, 200);
        CHECK(body_is(&r, "Hello, World!"));
        CHECK(!r.close);
        char v[64];
        CHECK(hval(r.head, "Date", v, sizeof(v)) != NULL && strstr(v, " GMT") != NULL);
    }
    CHECK_EQ(weft_http_server_connections(srv), 1);
    /* Connection: close is honoured. */
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(r.close);
    check_closed(s);
    weft_stream_release(s);
    free(r.body);
}

static void test_keepalive(void)
{
    run_with(keepalive_fn, NULL);
}

/* A Date line as RFC 9110 5.6.7 writes it: "Sun, 06 Nov 1994 08:49:37 GMT". */
static bool imf_fixdate(const char *v)
{
    static const char *const days = "Mon Tue Wed Thu Fri Sat Sun ";
    static const char *const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec ";
    if (strlen(v) != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' ||
        v[16] != ' ' || v[19] != ':' || v[22] != ':' || strcmp(v + 25, " GMT") != 0)
        return false;
    char d[5] = {v[0], v[1], v[2], ' ', 0}, m[5] = {v[8], v[9], v[10], ' ', 0};
    if (strstr(days, d) == NULL || strstr(months, m) == NULL)
        return false;
    static const int digits[] = {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24};
    for (size_t i = 0; i < sizeof(digits) / sizeof(digits[0]); i++)
        if (!isdigit((unsigned char)v[digits[i]]))
            return false;
    return true;
}

/* The response head's pieces: status lines (the cached 200 one and others), Date, and
 * Content-Length of every digit count (the head is built without a formatting call). */
static void head_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    char v[64], req[128];
    static const size_t lens[] = {0, 1, 7, 9, 10, 99, 100, 999, 1000, 12345, 99999, 100000,
                                  199999};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        snprintf(req, sizeof(req), "GET /len?%zu HTTP/1.1\r\nHost: x\r\n\r\n", lens[i]);
        csends(s, req);
        CHECK_EQ(cread(s, &r), 0);
        const char *line =
            lens[i] == 7 ? "HTTP/1.1 201 Created\r\nDate: " : "HTTP/1.1 200 OK\r\nDate: ";
        CHECK(strncmp(r.head, line, strlen(line)) == 0);
        CHECK(hval(r.head, "Date", v, sizeof(v)) != NULL && imf_fixdate(v));
        CHECK(hval(r.head, "Content-Length", v, sizeof(v)) != NULL);
        snprintf(req, sizeof(req), "%zu", lens[i]);
        CHECK(strcmp(v, req) == 0);
        CHECK_EQ(r.blen, lens[i]);
        CHECK(strstr(r.head, "\r\n\r\n") == r.head + strlen(r.head) - 4);
    }
    csends(s, "HEAD /len?huge HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread_x(s, &r, true), 0);
    CHECK(hval(r.head, "Content-Length", v, sizeof(v)) != NULL && strcmp(v, "1234567890") == 0);
    csends(s, "GET /none HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(strncmp(r.head, "HTTP/1.1 404 Not Found\r\nDate: ", 30) == 0);
    CHECK(hval(r.head, "Date", v, sizeof(v)) != NULL && imf_fixdate(v));
    CHECK(body_is(&r, "nope"));
    weft_stream_release(s);
    free(r.body);
}

static void test_response_head(void)
{
    run_with(head_fn, NULL);
}

static void pipeline_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    weft_stream_t *s = cconnect(port);
    /* Five requests in one write, one of them with a body and one slow: answered in order. */
    csends(s, "GET /path?1 HTTP/1.1\r\nHost: x\r\n\r\n"
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              "GET /slow?0.05 HTTP/1.1\r\nHost: x\r\n\r\n"
              "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /path?5 HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp r = {0};
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "/path|1|1"));
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "hello"));
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "slow"));
    CHECK_EQ(cread_x(s, &r, true), 0);
    char v[32];
    CHECK_STR(hval(r.head, "Content-Length", v, sizeof(v)), "13"); /* HEAD: GET's length */
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "/path|5|1"));
    weft_stream_release(s);
    free(r.body);
}

static void test_pipelining_head(void)
{
    run_with(pipeline_fn, NULL);
}

static void bodies_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    /* Chunked upload, trickled a few bytes at a time, with extensions and a trailer. */
    const char *up = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
    for (size_t i = 0; i < strlen(up); i += 7) {
        size_t k = strlen(up) - i < 7 ? strlen(up) - i : 7;
        csend(s, up + i, k);
        weft_sleep(0.001);
    }
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK(body_is(&r, "abc0123456789abcdef"));
    /* A body read in 7-byte pieces; then an unread body is skipped to keep the connection. */
    static char big[50000];
    memset(big, 'z', sizeof(big));
    char head[128];
    snprintf(head, sizeof(head), "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
             sizeof(big));
    csends(s, head);
    csend(s, big, sizeof(big));
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "50000"));
    snprintf(head, sizeof(head), "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
             sizeof(big));
    csends(s, head);
    csend(s, big, sizeof(big));
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "Hello, World!") && !r.close);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    /* 100-continue: the interim answer comes when the handler reads the body. */
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 100);
    csends(s, "data");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK(body_is(&r, "data"));
    /* 100-continue with a handler that does not read the body: no 100, and the connection
     * closes after the answer (the client may not send the body). */
    csends(s, "POST /hello HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    check_closed(s);
    weft_stream_release(s);

    /* Over max_body: 413 before reading it; chunked: 413 once it gets there. */
    s = cconnect(port);
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 413);
    CHECK(r.close);
    weft_stream_release(s);
    s = cconnect(port);
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char chunk[70000];
    int n = snprintf(chunk, sizeof(chunk), "%x\r\n", 65536);
    memset(chunk + n, 'q', 65536);
    memcpy(chunk + n + 65536, "\r\n", 2);
    for (int i = 0; i < 17; i++)
        if (weft_stream_write(s, chunk, (size_t)n + 65538) < 0 || weft_stream_drain(s) < 0)
            break;
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 413);
    weft_stream_release(s);
    /* A malformed chunk: 400. */
    s = cconnect(port);
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 400);
    check_closed(s);
    weft_stream_release(s);
    free(r.body);
}

static void test_bodies(void)
{
    run_with(bodies_fn, NULL);
}

static void http10_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    weft_stream_t *s = cconnect(port);
    csends(s, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(r.close && body_is(&r, "Hello, World!"));
    check_closed(s);
    weft_stream_release(s);
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    char v[32];
    CHECK_STR(hval(r.head, "Connection", v, sizeof(v)), "keep-alive");
    /* A streamed answer to HTTP/1.0 is delimited by the close. */
    csends(s, "GET /chunks HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(r.close && body_is(&r, "abcabcabc"));
    weft_stream_release(s);
    /* HTTP/1.1 gets it chunked. */
    s = cconnect(port);
    csends(s, "GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(!r.close && body_is(&r, "abcabcabc"));
    CHECK_STR(hval(r.head, "Transfer-Encoding", v, sizeof(v)), "chunked");
    csends(s, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.blen, 100000);
    CHECK(r.body[0] == 'f' && r.body[99999] == 'f');
    csends(s, "GET /inject HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK(body_is(&r, "refused"));
    weft_stream_release(s);
    free(r.body);
}

static void test_http10_chunked_file(void)
{
    char path[] = "/tmp/weft-http-file-XXXXXX";
    file_fd = mkstemp(path);
    CHECK(file_fd >= 0);
    unlink(path);
    static char data[100000];
    memset(data, 'f', sizeof(data));
    CHECK_EQ(write(file_fd, data, sizeof(data)), (ssize_t)sizeof(data));
    run_with(http10_fn, NULL);
    close(file_fd);
}

static void corpus_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    for (size_t i = 0; i < N_BAD; i++) {
        const struct bad_request *b = &bad_corpus[i];
        weft_stream_t *s = cconnect(port);
        csend(s, b->req, bad_len(b));
        /* A second, valid request behind it must NOT be answered (no smuggling). */
        csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_EQ(cread(s, &r), 0);
        if (r.status != b->status) {
            fprintf(stderr, "corpus %s: status %d, want %d\n", b->name, r.status, b->status);
            CHECK(0);
        }
        CHECK(r.close);
        check_closed(s);
        weft_stream_release(s);
    }
    /* 414 and 431 over the wire. */
    static char big[20000];
    weft_stream_t *s = cconnect(port);
    int n = snprintf(big, sizeof(big), "GET /");
    memset(big + n, 'a', 10000);
    csend(s, big, (size_t)n + 10000);
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 414);
    weft_stream_release(s);
    s = cconnect(port);
    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    memset(big + n, 'a', 10000);
    csend(s, big, (size_t)n + 10000);
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 431);
    weft_stream_release(s);
    free(r.body);
}

static void test_corpus_wire(void)
{
    run_with(corpus_fn, NULL);
}

static void failures_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    weft_stream_t *s = cconnect(port);
    csends(s, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 500);
    CHECK(r.close);
    check_closed(s);
    weft_stream_release(s);
    CHECK_EQ(reports, 1);
    s = cconnect(port);
    csends(s, "GET /noanswer HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 500);
    weft_stream_release(s);
    CHECK_EQ(reports, 2);
    /* Failing after the response began: the connection is dropped (the client sees a
     * truncated chunked body, never a complete one). */
    s = cconnect(port);
    csends(s, "GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\n");
    int e = cread(s, &r);
    CHECK(e < 0);
    weft_stream_release(s);
    CHECK_EQ(reports, 3);
    free(r.body);
}

static void test_handler_failures(void)
{
    run_with(failures_fn, NULL);
}

static void timeouts_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    /* A head trickled too slowly: 408 at header_timeout, though bytes keep coming. */
    weft_stream_t *s = cconnect(port);
    int64_t t0 = weft_time(NULL);
    const char *part = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    int e = 0;
    for (size_t i = 0; part[i] != '\0' && e == 0; i++) {
        e = weft_stream_write(s, part + i, 1);
        weft_sleep(0.02);
    }
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    double dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* A connection that never sends anything is closed at header_timeout, silently. */
    s = cconnect(port);
    t0 = weft_time(NULL);
    check_closed(s);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* Keep-alive idle: closed after keepalive_timeout. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    t0 = weft_time(NULL);
    check_closed(s);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.15 && dt < 2.0);
    weft_stream_release(s);
    /* A later request of a connection: its head's deadline starts once its first bytes did
     * not hold all of it. In two pieces 0.05 s apart: answered; trickled past header_timeout
     * (and past keepalive_timeout, which no longer applies once bytes came): 408. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    csends(s, "GET /hello HTTP/1.1\r\n");
    weft_sleep(0.05);
    csends(s, "Host: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    t0 = weft_time(NULL);
    e = 0;
    for (size_t i = 0; part[i] != '\0' && e == 0; i++) {
        e = weft_stream_write(s, part + i, 1);
        weft_sleep(0.02);
    }
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* A body that stops coming: 408 after body_timeout. */
    s = cconnect(port);
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    CHECK(r.close);
    weft_stream_release(s);
    free(r.body);
}

static void test_timeouts(void)
{
    struct weft_http_server_opts o = {
        .header_timeout = 0.3, .keepalive_timeout = 0.2, .body_timeout = 0.2};
    run_with(timeouts_fn, &o);
}

/* ---- keep-alive idle on the virtual clock: closed at keepalive_timeout, never before ---- */

#define KA_NS   5000000000LL  /* the keep-alive timeout of these cases: 5 s */
#define KA_TICK (KA_NS / 16)  /* the server's tick for it (server.c, the wheel) */

/* One GET /hello answered on `s`; returns the virtual time of the answer. */
static int64_t ask_hello(weft_stream_t *s, struct resp *r)
{
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, r), 0);
    CHECK_EQ(r->status, 200);
    return weft_time(NULL);
}

/* Wait for the server to close `s`: the time it did (nothing else happens on the clock). */
static int64_t closed_at(weft_stream_t *s)
{
    char ch;
    CHECK_EQ(weft_stream_read_dl(s, &ch, 1, weft_deadline_in(60)), 0);
    return weft_time(NULL);
}

/* The close of a connection idle since `t0`: not before the timeout, at most two ticks after. */
static void check_idle_close(weft_stream_t *s, int64_t t0)
{
    int64_t dt = closed_at(s) - t0;
    if (dt < KA_NS || dt > KA_NS + 2 * KA_TICK)
        fprintf(stderr, "idle close after %lld ns\n", (long long)dt);
    CHECK(dt >= KA_NS);
    CHECK(dt <= KA_NS + 2 * KA_TICK);
}

static int idle_port;

/* One connection of the staggered case: starts `i` sevenths of a tick after the others, asks
 * again 1 ns before the timeout (answered), then is left idle (closed in time). */
static int staggered_conn(void *arg)
{
    int i = (int)(intptr_t)arg;
    struct resp r = {0};
    CHECK_EQ(weft_sleep_until(weft_time(NULL) + i * KA_TICK / 7), 0);
    weft_stream_t *s = cconnect(idle_port);
    int64_t t0 = ask_hello(s, &r);
    CHECK_EQ(weft_sleep_until(t0 + KA_NS - 1), 0);
    t0 = ask_hello(s, &r);
    check_idle_close(s, t0);
    weft_stream_release(s);
    free(r.body);
    return 0;
}

static void idle_virtual_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    /* Alone: closed between the timeout and two ticks after it. */
    weft_stream_t *s = cconnect(port);
    check_idle_close(s, ask_hello(s, &r));
    weft_stream_release(s);
    /* Requests 0.9 timeouts apart for over five timeouts: the wait that began with each answer
     * counts from that answer, so none is cut; then the last wait's close is in time. */
    s = cconnect(port);
    int64_t t0 = ask_hello(s, &r);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(weft_sleep_until(t0 + KA_NS * 9 / 10), 0);
        t0 = ask_hello(s, &r);
    }
    check_idle_close(s, t0);
    weft_stream_release(s);
    /* Twenty connections whose waits begin at every phase of the ticks (a seventh of a tick
     * apart) and of the ticker's life: each asks again 1 ns before its timeout (answered), then
     * each is closed in time. */
    idle_port = port;
    weft_task_t *t[20];
    for (int i = 0; i < 20; i++)
        CHECK_EQ(weft_spawn(&t[i], staggered_conn, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    /* A pipelined pair is answered whole (the second head is buffered: no wait), then the
     * connection is closed in time. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(cread(s, &r), 0);
    check_idle_close(s, weft_time(NULL));
    weft_stream_release(s);
    free(r.body);
}

static int harness_virtual(void *arg)
{
    return harness_main(arg);
}

static void test_keepalive_idle_virtual(void)
{
    struct harness hn = {.fn = idle_virtual_fn,
                         .opts = {.keepalive_timeout = (double)KA_NS / 1e9,
                                  .header_timeout = 30}};
    reports = 0;
    int fds = test_count_fds();
    int64_t real0 = weft_time(NULL);
    CHECK_EQ(run_virtual(harness_virtual, &hn), 0);
    CHECK_EQ(test_count_fds(), fds);
    CHECK(weft_time(NULL) - real0 < 5000000000LL); /* virtual minutes, real instants */
}

static int connect_and_ask(void *arg)
{
    int port = *(int *)arg;
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    int e = cread(s, &r);
    weft_stream_release(s);
    free(r.body);
    return e == 0 ? r.status : e;
}

static void maxconn_fn(int port, weft_http_server_t *srv)
{
    weft_stream_t *a = cconnect(port), *b = cconnect(port);
    struct resp r = {0};
    csends(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(a, &r), 0);
    csends(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(b, &r), 0);
    CHECK_EQ(weft_http_server_connections(srv), 2);
    /* A third one waits in the backlog (connected by the kernel, not served)... */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, connect_and_ask, &port), 0);
    weft_sleep(0.2);
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_http_server_connections(srv), 2);
    /* ...and is served once one closes. */
    weft_stream_release(a);
    CHECK_EQ(weft_join(t), 200);
    weft_task_release(t);
    weft_stream_release(b);
    free(r.body);
}

static void test_max_connections(void)
{
    struct weft_http_server_opts o = {.max_connections = 2};
    run_with(maxconn_fn, &o);
}

#define NSLOW 3

struct sd {
    int port;
    weft_http_server_t *srv;
    double grace;
    int result;
};

struct slow {
    struct sd *d;
    double secs; /* how long the handler takes */
};

static int slow_client(void *arg)
{
    struct slow *c = arg;
    weft_stream_t *s = cconnect(c->d->port);
    struct resp r = {0};
    char req[96];
    snprintf(req, sizeof(req), "GET /slow?%.2f HTTP/1.1\r\nHost: x\r\n\r\n", c->secs);
    csends(s, req);
    int e = cread(s, &r);
    int st = e == 0 ? r.status : e;
    if (e == 0 && r.status == 200) {
        CHECK(r.close); /* in flight at shutdown: answered, then closed */
        CHECK(body_is(&r, "slow"));
    }
    weft_stream_release(s);
    free(r.body);
    return st;
}

static int shutdown_main(void *arg)
{
    struct sd *d = arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    CHECK_EQ(weft_http_server_start(&d->srv, handler, NULL, "127.0.0.1", 0, NULL), 0);
    d->port = weft_http_server_port(d->srv);
    /* An idle keep-alive connection, and several requests in flight (on connections of their
     * own, each ending at a different time). */
    weft_stream_t *idle = cconnect(d->port);
    struct resp r = {0};
    csends(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(idle, &r), 0);
    weft_task_t *t[NSLOW];
    struct slow sl[NSLOW];
    for (int i = 0; i < NSLOW; i++) {
        sl[i] = (struct slow){d, 0.2 + 0.1 * i};
        CHECK_EQ(weft_spawn(&t[i], slow_client, &sl[i]), 0);
    }
    weft_sleep(0.1);
    CHECK_EQ(weft_http_server_connections(d->srv), (size_t)NSLOW + 1);
    int64_t t0 = weft_time(NULL);
    d->result = weft_http_server_shutdown(d->srv, d->grace);
    double dt = (double)(weft_time(NULL) - t0) / 1e9;
    if (d->grace > 1)
        CHECK(dt > 0.15 && dt < 1.0); /* waited for the slowest one only */
    else
        CHECK(dt < 0.5);
    check_closed(idle); /* closed at once */
    weft_stream_release(idle);
    for (int i = 0; i < NSLOW; i++) {
        int st = weft_join(t[i]);
        CHECK_EQ(st, d->grace > 1 ? 200 : 500);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_http_server_connections(d->srv), 0u);
    /* Not accepting any more. */
    weft_stream_t *s;
    CHECK(weft_stream_connect(&s, "127.0.0.1", d->port, NULL) < 0);
    weft_http_server_release(d->srv);
    free(r.body);
    return 0;
}

static void test_graceful_shutdown(void)
{
    struct sd d = {.grace = 5};
    int fds = test_count_fds();
    reports = 0;
    CHECK_EQ(weft_run(shutdown_main, &d), 0);
    CHECK_EQ(d.result, 0);
    CHECK_EQ(reports, 0);
    CHECK_EQ(test_count_fds(), fds);
    /* A deadline shorter than the requests: they are cancelled (500) and counted. */
    d = (struct sd){.grace = 0.05};
    reports = 0;
    CHECK_EQ(weft_run(shutdown_main, &d), 0);
    CHECK_EQ(d.result, NSLOW);
    CHECK_EQ(reports, NSLOW);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- the router ---- */

static int user_post(weft_http_request_t *req, void *arg)
{
    (void)arg;
    struct weft_http_str id, pid;
    CHECK(weft_http_param(req, "id", &id));
    CHECK(weft_http_param(req, "post", &pid));
    char b[64];
    int n = snprintf(b, sizeof(b), "user %.*s post %.*s", (int)id.n, id.p, (int)pid.n, pid.p);
    return weft_http_respond(req, 200, b, (size_t)n);
}

static int user_get(weft_http_request_t *req, void *arg)
{
    struct weft_http_str id;
    CHECK(weft_http_param(req, "id", &id));
    CHECK(!weft_http_param(req, "post", NULL));
    char b[64];
    int n = snprintf(b, sizeof(b), "%s %.*s", (const char *)arg, (int)id.n, id.p);
    return weft_http_respond(req, 200, b, (size_t)n);
}

static int rest(weft_http_request_t *req, void *arg)
{
    (void)arg;
    struct weft_http_str p;
    CHECK(weft_http_param(req, "rest", &p));
    char b[64];
    int n = snprintf(b, sizeof(b), "rest=%.*s", (int)p.n, p.p);
    return weft_http_respond(req, 200, b, (size_t)n);
}

static weft_http_router_t *router;

static int router_main(void *arg)
{
    (void)arg;
    weft_http_server_t *srv;
    CHECK_EQ(weft_http_server_start(&srv, weft_http_router_handler, router, "127.0.0.1", 0, NULL),
             0);
    int port = weft_http_server_port(srv);
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    struct {
        const char *req;
        int status;
        const char *body;
        const char *allow;
    } cases[] = {
        {"GET /users/42 HTTP/1.1\r\nHost: x\r\n\r\n", 200, "get 42", NULL},
        {"PUT /users/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, "put 42", NULL},
        {"GET /users/7/posts/9 HTTP/1.1\r\nHost: x\r\n\r\n", 200, "user 7 post 9", NULL},
        {"DELETE /users/42 HTTP/1.1\r\nHost: x\r\n\r\n", 405, NULL, "GET, HEAD, PUT"},
        {"GET /users/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL, NULL},
        {"GET /users/1/2 HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL, NULL},
        {"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, NULL, NULL},
        {"GET /static/a/b/c.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200, "rest=a/b/c.txt", NULL},
        {"GET /static HTTP/1.1\r\nHost: x\r\n\r\n", 200, "rest=", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        csends(s, cases[i].req);
        CHECK_EQ(cread(s, &r), 0);
        CHECK_EQ(r.status, cases[i].status);
        if (cases[i].body != NULL)
            CHECK(body_is(&r, cases[i].body));
        char v[64];
        if (cases[i].allow != NULL)
            CHECK_STR(hval(r.head, "Allow", v, sizeof(v)), cases[i].allow);
    }
    weft_stream_release(s);
    free(r.body);
    weft_http_server_shutdown(srv, 1);
    weft_http_server_release(srv);
    return 0;
}

static void test_router(void)
{
    CHECK_EQ(weft_http_router_new(&router), 0);
    CHECK_EQ(weft_http_route(router, "GET", "/users/{id}", user_get, "get"), 0);
    CHECK_EQ(weft_http_route(router, "PUT", "/users/{id}", user_get, "put"), 0);
    CHECK_EQ(weft_http_route(router, "GET", "/users/{id}/posts/{post}", user_post, NULL), 0);
    CHECK_EQ(weft_http_route(router, "GET", "/static/{rest*}", rest, NULL), 0);
    CHECK_EQ(weft_http_route(router, "GET", "/x/{a*}/y", rest, NULL), -EINVAL);
    CHECK_EQ(weft_http_route(router, "GET", "/x/{}", rest, NULL), -EINVAL);
    CHECK_EQ(weft_http_route(router, "GET", "x", rest, NULL), -EINVAL);
    CHECK_EQ(weft_run(router_main, NULL), 0);
    weft_http_router_free(router);
}

TEST_MAIN(test_keepalive, test_response_head, test_pipelining_head, test_bodies,
          test_http10_chunked_file, test_corpus_wire, test_handler_failures, test_timeouts,
          test_keepalive_idle_virtual, test_max_connections, test_graceful_shutdown, test_router)
