/*
 * The HTTP server's requests over loopback sockets (client and harness: srvtest.h): keep-alive,
 * pipelining in order, HEAD, Content-Length and chunked bodies, 100-continue, HTTP/1.0 rules,
 * Connection: close, the malformed/smuggling corpus over the wire (status, then close), 413,
 * handler failures (500, or a dropped connection once the response began; both reported),
 * chunked and file responses, the router. Timeouts and limits: limits_test.c; graceful
 * shutdown: shutdown_test.c.
 */
#include "srvtest.h"

#include "corpus.h"

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
    /* Heads of the same shape one after another, alike but for a byte of an added header or
     * the status: each must say what its own response is (the connection's head buffer is
     * reused). */
    static const char *const vals[] = {"aaa", "aaa", "bbb", "bbb", "4aa", "4aa", "aaa",
                                       "abcdefghijklmnopq", "abcdefghijklmnopr", "aaa"};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        snprintf(req, sizeof(req), "GET /hdr?%s HTTP/1.1\r\nHost: x\r\n\r\n", vals[i]);
        csends(s, req);
        CHECK_EQ(cread(s, &r), 0);
        CHECK_EQ(r.status, vals[i][0] == '4' ? 404 : 200);
        CHECK(hval(r.head, "X-Val", v, sizeof(v)) != NULL && strcmp(v, vals[i]) == 0);
        CHECK(hval(r.head, "Content-Length", v, sizeof(v)) != NULL && strcmp(v, "2") == 0);
        CHECK(hval(r.head, "Connection", v, sizeof(v)) == NULL);
        CHECK(body_is(&r, "ok"));
        if (i == 5) {
            /* The same again over HTTP/1.0 with keep-alive: now a Connection line. */
            csends(s, "GET /hdr?4aa HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            CHECK_EQ(cread(s, &r), 0);
            CHECK(hval(r.head, "Connection", v, sizeof(v)) != NULL &&
                  strcmp(v, "keep-alive") == 0);
        }
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
          test_http10_chunked_file, test_corpus_wire, test_handler_failures, test_router)
