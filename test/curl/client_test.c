/*
 * weft-curl against Python's http.server (py_server.py, started here): requests and responses,
 * bodies in and out, gzip, errors (refused, unknown host, closed mid-response), deadlines and
 * timeout scopes on a stalled body, the body limit against an endless and a 10 GiB body,
 * redirects and redirect loops, the per-host limit, cancellation of requests in flight, a pooled
 * connection the server closes while it is idle (a server task of the test's own), streams;
 * then examples/fetch_urls, and weft's own HTTP server (examples/http_hello) as the server.
 */
#include "curltest.h"

#include <sys/resource.h>

static struct ct_py py;
static bool py_up;

static void py_down(void)
{
    if (py_up)
        ct_py_stop(&py);
    py_up = false;
}

static void need_py(void)
{
    if (!py_up) {
        ct_py_start(&py);
        py_up = true;
        atexit(py_down);
    }
}

static char *url(const char *path)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];
    ct_url(b, sizeof(buf[0]), "http", py.port, path);
    return b;
}

static weft_curl_client_t *client(long per_host)
{
    weft_curl_client_t *c;
    struct weft_curl_client_opts o = {.max_host_connections = per_host};
    CHECK_EQ(weft_curl_client_new(&c, &o), 0);
    return c;
}

static int get(weft_curl_client_t *c, const char *u, struct weft_curl_response *r)
{
    struct weft_curl_request q = {.url = u};
    return weft_curl_request(c, &q, r);
}

/* ---- basics ---- */

static int basic_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    struct weft_curl_response r;
    CHECK_EQ(get(c, url("/bytes?n=1024"), &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.http_version, 11);
    CHECK_EQ(r.body_len, 1024);
    CHECK_EQ(r.body[1023], 'x');
    CHECK_EQ(r.body[1024], '\0');
    CHECK_EQ(r.new_connections, 1);
    size_t len;
    const char *v = weft_curl_header_find(r.headers, r.headers_len, "content-length", &len);
    CHECK(v != NULL && len == 4 && memcmp(v, "1024", 4) == 0);
    CHECK(strncmp(r.headers, "HTTP/1.1 200", 12) == 0);
    weft_curl_response_free(&r);
    CHECK(r.body == NULL);

    /* The kept-alive connection is reused, by this task and by another one. */
    CHECK_EQ(get(c, url("/bytes?n=0"), &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 0);
    CHECK(r.body != NULL && r.body[0] == '\0');
    CHECK_EQ(r.new_connections, 0);
    weft_curl_response_free(&r);

    /* A 404 is a response, not an error. */
    CHECK_EQ(get(c, url("/nothing-here"), &r), 0);
    CHECK_EQ(r.status, 404);
    CHECK_EQ(r.new_connections, 0);
    weft_curl_response_free(&r);

    /* HEAD: headers only. */
    struct weft_curl_request q = {.url = url("/bytes?n=5"), .method = "HEAD"};
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 0);
    weft_curl_response_free(&r);

    /* gzip: asked for (Accept-Encoding) and decoded. */
    CHECK_EQ(get(c, url("/gzip"), &r), 0);
    CHECK_EQ(r.body_len, 100000);
    CHECK(memcmp(r.body, "weft weft ", 10) == 0);
    CHECK(weft_curl_header_find(r.headers, r.headers_len, "Content-Encoding", &len) != NULL);
    weft_curl_response_free(&r);

    CHECK_EQ(weft_curl_client_active(c), 0);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void basic(void)
{
    need_py();
    CHECK_EQ(weft_run(basic_main, NULL), 0);
}

/* ---- request bodies ---- */

struct src {
    const char *data;
    size_t len, off;
    int fail_at; /* > 0: return -EIO once this many bytes were given */
};

static ssize_t src_read(void *buf, size_t n, void *arg)
{
    struct src *s = arg;
    if (s->fail_at > 0 && s->off >= (size_t)s->fail_at)
        return -EIO;
    size_t k = s->len - s->off < n ? s->len - s->off : n;
    if (k > 1000)
        k = 1000; /* in small pieces */
    memcpy(buf, s->data + s->off, k);
    s->off += k;
    return (ssize_t)k;
}

static int body_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    struct weft_curl_response r;
    const char *hdrs[] = {"X-Test: hello", "Content-Type: text/plain"};
    struct weft_curl_request q = {
        .url = url("/echo"), .body = "ping body", .body_len = 9, .headers = hdrs, .nheaders = 2};
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_STR(r.body, "ping body");
    size_t len;
    const char *m = weft_curl_header_find(r.headers, r.headers_len, "x-method", &len);
    CHECK(m != NULL && len == 4 && memcmp(m, "POST", 4) == 0);
    m = weft_curl_header_find(r.headers, r.headers_len, "x-got-header", &len);
    CHECK(m != NULL && len == 5 && memcmp(m, "hello", 5) == 0);
    weft_curl_response_free(&r);

    /* Another method with a body. */
    q.method = "PUT";
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    m = weft_curl_header_find(r.headers, r.headers_len, "x-method", &len);
    CHECK(m != NULL && len == 3 && memcmp(m, "PUT", 3) == 0);
    weft_curl_response_free(&r);

    /* A body read piece by piece, of unknown length (chunked). */
    static char big[50000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    struct src s = {big, sizeof(big), 0, 0};
    struct weft_curl_request q2 = {
        .url = url("/echo"), .body_read = src_read, .body_arg = &s, .body_size = -1};
    CHECK_EQ(weft_curl_request(c, &q2, &r), 0);
    CHECK_EQ(r.body_len, sizeof(big));
    CHECK(memcmp(r.body, big, sizeof(big)) == 0);
    weft_curl_response_free(&r);

    /* ... and of known length. */
    s = (struct src){big, sizeof(big), 0, 0};
    q2.body_size = sizeof(big);
    CHECK_EQ(weft_curl_request(c, &q2, &r), 0);
    CHECK_EQ(r.body_len, sizeof(big));
    weft_curl_response_free(&r);

    /* The read function's error aborts the request with that error. */
    s = (struct src){big, sizeof(big), 0, 5000};
    q2.body_size = -1;
    CHECK_EQ(weft_curl_request(c, &q2, &r), -EIO);
    CHECK(r.curl_code != 0);
    CHECK(r.body == NULL);

    /* Bad requests. */
    struct weft_curl_request bad = {.url = NULL};
    CHECK_EQ(weft_curl_request(c, &bad, &r), -EINVAL);
    bad.url = "ftp://127.0.0.1/";
    CHECK_EQ(weft_curl_request(c, &bad, &r), -EINVAL);
    bad.url = "http://[::1";
    CHECK_EQ(weft_curl_request(c, &bad, &r), -EINVAL);
    CHECK_EQ(weft_curl_client_active(c), 0);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void bodies(void)
{
    need_py();
    CHECK_EQ(weft_run(body_main, NULL), 0);
}

/* ---- errors ---- */

static int errors_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    struct weft_curl_response r;
    char u[128];
    ct_url(u, sizeof(u), "http", test_free_port(), "/");
    CHECK_EQ(get(c, u, &r), -ECONNREFUSED);
    CHECK_EQ(r.curl_code, CURLE_COULDNT_CONNECT);
    CHECK(r.error[0] != '\0');
    CHECK_STR(weft_curl_err_name(-ECONNREFUSED), "ECONNREFUSED");

    CHECK_EQ(get(c, "http://no-such-host.invalid/", &r), WEFT_EAI_NONAME);
    CHECK_EQ(r.curl_code, CURLE_COULDNT_RESOLVE_HOST);

    /* The server closes the connection 100 bytes into a 1000-byte body. */
    CHECK_EQ(get(c, url("/close"), &r), WEFT_CURL_EPARTIAL);
    CHECK_STR(weft_curl_err_name(WEFT_CURL_EPARTIAL), "EPARTIAL");
    CHECK(strlen(weft_curl_strerror(WEFT_CURL_EPARTIAL)) > 10);

    /* TLS to a plain HTTP server: the handshake fails. (Not under valgrind: loading the
     * system's CA bundle costs seconds there; nginx_test covers TLS failures.) */
    if (!ct_slow_env()) {
        ct_url(u, sizeof(u), "https", py.port, "/");
        int e = get(c, u, &r);
        CHECK(e == WEFT_CURL_ETLS || e == -ECONNRESET);
    }

    /* The client still works after all that. */
    CHECK_EQ(get(c, url("/bytes?n=3"), &r), 0);
    CHECK_STR(r.body, "xxx");
    weft_curl_response_free(&r);
    CHECK_EQ(weft_curl_client_free(c), 0);
    CHECK(weft_curl_async_dns());
    return 0;
}

static void errors(void)
{
    need_py();
    CHECK_EQ(weft_run(errors_main, NULL), 0);
}

/* ---- deadlines, timeout scopes, body limits ---- */

static weft_curl_client_t *stall_client;

static int stall_body(void *arg)
{
    struct weft_curl_response *r = arg;
    return get(stall_client, url("/stall"), r);
}

static int limits_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    struct weft_curl_response r;

    /* A server that stalls mid-body: the deadline ends the request, and the transfer. */
    int64_t t0 = weft_time(NULL);
    struct weft_curl_request q = {.url = url("/stall")};
    CHECK_EQ(weft_curl_request_dl(c, &q, &r, weft_deadline_in(0.3)), -ETIMEDOUT);
    double took = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(took >= 0.29 && took < 5.0);
    CHECK_EQ(weft_curl_client_active(c), 0);

    /* The same through a timeout scope. */
    stall_client = c;
    CHECK_EQ(weft_timeout_call(0.2, stall_body, &r), -ETIMEDOUT);
    CHECK_EQ(weft_curl_client_active(c), 0);

    /* An endless body (no length) against a 1 MiB limit, then a 10 GiB one. */
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    t0 = weft_time(NULL);
    struct weft_curl_request big = {.url = url("/forever"), .max_body = 1 << 20};
    CHECK_EQ(weft_curl_request(c, &big, &r), -EFBIG);
    big.url = url("/huge");
    CHECK_EQ(weft_curl_request(c, &big, &r), -EFBIG); /* refused from Content-Length */
    CHECK_EQ(r.curl_code, CURLE_FILESIZE_EXCEEDED);
    took = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(took < 10.0);
    getrusage(RUSAGE_SELF, &ru1);
    CHECK(ru1.ru_maxrss - ru0.ru_maxrss < 64 * 1024); /* KiB: memory stayed bounded */

    /* Exactly at the limit is fine. */
    big.url = url("/bytes?n=1000");
    big.max_body = 1000;
    CHECK_EQ(weft_curl_request(c, &big, &r), 0);
    weft_curl_response_free(&r);
    big.url = url("/bytes?n=1001");
    CHECK_EQ(weft_curl_request(c, &big, &r), -EFBIG);

    CHECK_EQ(weft_curl_client_active(c), 0);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void limits(void)
{
    need_py();
    CHECK_EQ(weft_run(limits_main, NULL), 0);
}

/* ---- redirects ---- */

static int redirects_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    struct weft_curl_response r;
    /* Off by default: the 302 is the response. */
    CHECK_EQ(get(c, url("/redirect?n=3"), &r), 0);
    CHECK_EQ(r.status, 302);
    CHECK_EQ(r.redirects, 0);
    size_t len;
    CHECK(weft_curl_header_find(r.headers, r.headers_len, "Location", &len) != NULL);
    weft_curl_response_free(&r);

    struct weft_curl_request q = {.url = url("/redirect?n=3"), .follow_redirects = true};
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.redirects, 3);
    CHECK_STR(r.body, "arrived");
    CHECK(weft_curl_header_find(r.headers, r.headers_len, "Location", &len) == NULL);
    weft_curl_response_free(&r);

    q.max_redirects = 2;
    CHECK_EQ(weft_curl_request(c, &q, &r), WEFT_CURL_EREDIRECTS);
    q.url = url("/loop");
    q.max_redirects = 0;
    CHECK_EQ(weft_curl_request(c, &q, &r), WEFT_CURL_EREDIRECTS);
    CHECK_EQ(r.curl_code, CURLE_TOO_MANY_REDIRECTS);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void redirects(void)
{
    need_py();
    CHECK_EQ(weft_run(redirects_main, NULL), 0);
}

/* ---- many at once: the per-host limit, and cancellation in flight ---- */

static int perhost_main(void *arg)
{
    (void)arg;
    int n = ct_slow_env() ? 100 : 1000;
    struct ct_many m = {.c = client(10), .q = {.url = url("/bytes?n=100")}};
    struct weft_curl_response r;
    CHECK_EQ(get(m.c, url("/conns"), &r), 0);
    int before = atoi(r.body);
    weft_curl_response_free(&r);
    CHECK_EQ(ct_run_many(&m, n), 0);
    CHECK_EQ(m.ok, n);
    CHECK(m.connects >= 1 && m.connects <= 10);
    /* The server's own count: at most 10 connections more than before (the /conns one reused). */
    CHECK_EQ(get(m.c, url("/conns"), &r), 0);
    CHECK(atoi(r.body) - before <= 10);
    weft_curl_response_free(&r);
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    return 0;
}

static void per_host_limit(void)
{
    need_py();
    CHECK_EQ(weft_run(perhost_main, NULL), 0);
}

/* A request in flight whose arrival on the wire is known: a stream on /stall, open (headers and
 * the first bytes came) and then waiting for the rest. */
static int on_wire;
static weft_event_t wire_full;

static int streamer(void *arg)
{
    struct ct_many *m = arg;
    weft_curl_stream_t *s;
    struct weft_curl_request q = {.url = m->q.url};
    int e = weft_curl_open(m->c, &q, &s, NULL);
    if (e < 0)
        return e;
    if (++on_wire == 10)
        weft_event_set(&wire_full);
    char buf[4096];
    ssize_t n;
    while ((n = weft_curl_stream_read(s, buf, sizeof(buf))) > 0)
        ;
    weft_curl_stream_close(s);
    if (n == -ECANCELED)
        m->cancelled++;
    return (int)n;
}

static int cancel_main(void *arg)
{
    (void)arg;
    int fds0 = test_count_fds();
    char stall[128], bytes[128];
    ct_url(stall, sizeof(stall), "http", py.port, "/stall");
    ct_url(bytes, sizeof(bytes), "http", py.port, "/bytes?n=10");
    struct ct_many m = {.c = client(10), .q = {.url = stall}};
    weft_task_t *t[100];
    weft_event_init(&wire_full);
    /* 10 requests on the wire (the per-host limit), 90 more queued for a connection. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_spawn(&t[i], streamer, &m), 0);
    CHECK_EQ(weft_event_wait(&wire_full), 0);
    for (int i = 10; i < 100; i++)
        CHECK_EQ(weft_spawn(&t[i], ct_one, &m), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_curl_client_active(m.c), 100);
    /* Cancel them all: each returns at once, its transfer removed and freed. */
    for (int i = 0; i < 100; i++)
        weft_task_cancel(t[i], NULL);
    CHECK_EQ(weft_gather(t, 100, NULL, WEFT_GATHER_RETURN_ERRORS), 0);
    for (int i = 0; i < 100; i++)
        weft_task_release(t[i]);
    CHECK_EQ(m.cancelled, 100);
    CHECK_EQ(weft_curl_client_active(m.c), 0);

    /* 100 more on the same client share at most 10 connections. */
    m.q.url = bytes;
    CHECK_EQ(ct_run_many(&m, 100), 0);
    CHECK_EQ(m.ok, 100);
    CHECK(m.connects >= 1 && m.connects <= 10);
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    CHECK_EQ(test_count_fds(), fds0); /* nothing leaked */
    return 0;
}

static void cancel_in_flight(void)
{
    need_py();
    CHECK_EQ(weft_run(cancel_main, NULL), 0);
}

/* ---- a pooled connection the server closes while it is idle ---- */

/* A one-request-per-connection server in the test's loop: it answers each connection's request
 * (keep-alive), then keeps the connection open until `close_now` is set. */
struct idle_srv {
    int lfd;
    int accepted;
    weft_event_t close_now;
};

static int idle_server(void *arg)
{
    struct idle_srv *s = arg;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (;;) {
        int fd = weft_sock_accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return 0;
        s->accepted++;
        char buf[4096];
        size_t have = 0;
        while (memmem(buf, have, "\r\n\r\n", 4) == NULL && have < sizeof(buf)) {
            ssize_t n = weft_sock_recv(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (weft_sock_sendall(fd, resp, sizeof(resp) - 1, NULL) == 0)
            weft_event_wait(&s->close_now);
        weft_event_clear(&s->close_now);
        weft_close(fd);
    }
}

static double thread_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int idle_close_main(void *arg)
{
    (void)arg;
    struct idle_srv srv = {.lfd = weft_socket(AF_INET, SOCK_STREAM, 0)};
    weft_event_init(&srv.close_now);
    CHECK(srv.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    CHECK_EQ(bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(srv.lfd, 8), 0);
    CHECK_EQ(getsockname(srv.lfd, (struct sockaddr *)&sa, &sl), 0);
    weft_task_t *st;
    CHECK_EQ(weft_spawn(&st, idle_server, &srv), 0);
    char u[128];
    ct_url(u, sizeof(u), "http", ntohs(sa.sin_port), "/");
    weft_curl_client_t *c = client(0);
    struct weft_curl_request q = {.url = u};
    struct weft_curl_response r;
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(weft_curl_request_dl(c, &q, &r, weft_deadline_in(10)), 0);
        CHECK_EQ(r.status, 200);
        CHECK_STR(r.body, "ok");
        CHECK_EQ(r.new_connections, 1);
        weft_curl_response_free(&r);
        CHECK_EQ(srv.accepted, round + 1);
        /* The connection goes back to curl's pool and stays in the client's epoll set; now
         * the server closes it. The client must take it out of its (level-triggered) set
         * instead of waking up for it again and again: the loop stays idle. */
        weft_event_set(&srv.close_now);
        double t0 = thread_cpu();
        CHECK_EQ(weft_sleep(0.25), 0);
        CHECK(thread_cpu() - t0 < 0.06);
        /* The next request finds the pooled connection dead and opens another one (whose fd
         * is most likely the same number: it must be registered afresh). */
    }
    CHECK_EQ(weft_curl_client_free(c), 0);
    weft_task_cancel(st, NULL);
    weft_join(st);
    weft_task_release(st);
    weft_close(srv.lfd);
    return 0;
}

static void idle_close(void)
{
    CHECK_EQ(weft_run(idle_close_main, NULL), 0);
}

/* ---- streams ---- */

static int stream_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c = client(0);
    weft_curl_stream_t *s;
    struct weft_curl_response info;
    struct weft_curl_request q = {.url = url("/bytes?n=1000000")};
    CHECK_EQ(weft_curl_open(c, &q, &s, &info), 0);
    CHECK_EQ(info.status, 200);
    CHECK_EQ(weft_curl_stream_status(s), 200);
    size_t hl;
    const char *h = weft_curl_stream_headers(s, &hl);
    CHECK(weft_curl_header_find(h, hl, "Content-Length", NULL) != NULL);
    /* Read it slowly in small pieces: curl is paused and resumed along the way. */
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    int turns = 0;
    while ((n = weft_curl_stream_read(s, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            CHECK_EQ(buf[i], 'x');
        total += (size_t)n;
        if (++turns % 8 == 0)
            CHECK_EQ(weft_yield(), 0);
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(total, 1000000);
    CHECK_EQ(weft_curl_stream_read(s, buf, sizeof(buf)), 0);
    weft_curl_stream_close(s);

    /* A stalled body: the first 100 bytes, then the read's deadline. */
    q.url = url("/stall");
    CHECK_EQ(weft_curl_open(c, &q, &s, NULL), 0);
    total = 0;
    while (total < 100) {
        n = weft_curl_stream_read(s, buf, sizeof(buf));
        CHECK(n > 0);
        total += (size_t)n;
    }
    CHECK_EQ(weft_curl_stream_read_dl(s, buf, sizeof(buf), weft_deadline_in(0.2)), -ETIMEDOUT);
    CHECK_EQ(weft_curl_stream_read(s, buf, sizeof(buf)), -ETIMEDOUT); /* sticky */
    weft_curl_stream_close(s);

    /* An endless body: the limit counts the bytes read. */
    q.url = url("/forever");
    q.max_body = 300000;
    CHECK_EQ(weft_curl_open(c, &q, &s, NULL), 0);
    total = 0;
    while ((n = weft_curl_stream_read(s, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    CHECK_EQ(n, -EFBIG);
    CHECK(total <= 300000);
    weft_curl_stream_close(s);

    /* Open fails like a request; close of an unfinished stream stops it. */
    q.url = url("/close");
    q.max_body = 0;
    CHECK_EQ(weft_curl_open(c, &q, &s, NULL), 0);
    while ((n = weft_curl_stream_read(s, buf, sizeof(buf))) > 0)
        ;
    CHECK_EQ(n, WEFT_CURL_EPARTIAL);
    weft_curl_stream_close(s);
    char u[128];
    ct_url(u, sizeof(u), "http", test_free_port(), "/");
    q.url = u;
    CHECK_EQ(weft_curl_open(c, &q, &s, &info), -ECONNREFUSED);
    CHECK(s == NULL && info.curl_code == CURLE_COULDNT_CONNECT);
    q.url = url("/forever");
    CHECK_EQ(weft_curl_open(c, &q, &s, NULL), 0);
    CHECK_EQ(weft_curl_client_active(c), 1);
    CHECK_EQ(weft_curl_client_free(c), -EBUSY);
    weft_curl_stream_close(s);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void streams(void)
{
    need_py();
    CHECK_EQ(weft_run(stream_main, NULL), 0);
}

/* ---- misuse ---- */

static int misuse_main(void *arg)
{
    weft_curl_client_t **out = arg;
    return weft_curl_client_new(out, NULL);
}

static void misuse(void)
{
    weft_curl_client_t *c = NULL;
    struct weft_curl_response r;
    struct weft_curl_request q = {.url = "http://127.0.0.1:1/"};
    CHECK_EQ(weft_curl_client_new(&c, NULL), -EPERM); /* no loop */
    CHECK_EQ(weft_run(misuse_main, &c), 0);
    /* Its loop is gone: the client refuses requests, and can still be freed. */
    CHECK_EQ(weft_curl_request(c, &q, &r), -EPERM);
    CHECK_EQ(weft_curl_client_free(c), 0);
    CHECK_EQ(weft_curl_client_free(NULL), 0);
}

/* ---- the driver task cancelled before its first step (regression) ---- */

static int driver_unstarted_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c;
    CHECK_EQ(weft_curl_client_new(&c, NULL), 0);
    /* A sweep that cancels every task (a shutdown) reaches the client's driver before it ran. */
    weft_task_t *all[16];
    size_t n = weft_all_tasks(NULL, all, 16);
    int hit = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(weft_task_name(all[i]), "weft-curl-driver") == 0 &&
            weft_task_cancel(all[i], NULL))
            hit++;
    }
    CHECK_EQ(hit, 1);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_yield(), 0); /* the driver's end is seen from the loop */
    /* Nothing drives transfers any more: a request is refused at once, and the client is freed
     * whole (ASan's leak check: the driver's reference used to stay). */
    struct weft_curl_request q = {.url = "http://127.0.0.1:1/"};
    struct weft_curl_response r;
    CHECK_EQ(weft_curl_request_dl(c, &q, &r, weft_deadline_in(5)), -ESHUTDOWN);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void driver_unstarted(void)
{
    CHECK_EQ(weft_run(driver_unstarted_main, NULL), 0);
}

/* ---- examples/fetch_urls ---- */

/* Run fetch_urls with `argv` (and `input` on its stdin); its stdout goes to `out`. */
static int run_fetch_urls(char **argv, const char *input, char *out, size_t cap)
{
    int in[2], o[2];
    CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(o, O_CLOEXEC), 0);
    pid_t pid = ct_spawn(argv, in[0], o[1]);
    close(in[0]);
    close(o[1]);
    if (input != NULL)
        CHECK_EQ(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(o[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(o[0]);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void fetch_urls(void)
{
    char exe[4096], prog[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(prog, sizeof(prog), "%s/../../examples/fetch_urls", dirname(exe));
    if (access(prog, X_OK) != 0) {
        fprintf(stderr, "fetch_urls not built: case skipped\n");
        return;
    }
    need_py();
    static char out[8192];
    char *ok[] = {prog, "-c", "2", "-t", "5", url("/bytes?n=1024"), url("/nothing"), NULL};
    CHECK_EQ(run_fetch_urls(ok, NULL, out, sizeof(out)), 0);
    CHECK(strstr(out, "200 1024 ") != NULL);
    CHECK(strstr(out, "404 ") != NULL);
    CHECK(strstr(out, "TOTAL 2 urls, 2 responses, 0 errors") != NULL);

    /* URLs on stdin; a failure and a timeout do not stop the others, and make the status 1. */
    char input[1024];
    char refused[128];
    ct_url(refused, sizeof(refused), "http", test_free_port(), "/");
    snprintf(input, sizeof(input), "%s\n%s\n%s\n%s\n", url("/bytes?n=5"), refused, url("/stall"),
             url("/redirect?n=1"));
    char *in[] = {prog, "-t", "0.5", NULL};
    CHECK_EQ(run_fetch_urls(in, input, out, sizeof(out)), 1);
    CHECK(strstr(out, "200 5 ") != NULL);
    CHECK(strstr(out, "ERR ECONNREFUSED ") != NULL);
    CHECK(strstr(out, "ERR ETIMEDOUT ") != NULL);
    CHECK(strstr(out, "302 0 ") != NULL);
    CHECK(strstr(out, "TOTAL 4 urls, 2 responses, 2 errors") != NULL);

    char *bad[] = {prog, "-c", "0", NULL};
    CHECK_EQ(run_fetch_urls(bad, NULL, out, sizeof(out)), 2);
}

/* ---- weft's own HTTP server (examples/http_hello) ---- */

static int hello_port;

static int hello_main(void *arg)
{
    (void)arg;
    struct ct_many m = {.c = client(4)};
    char u[128];
    ct_url(u, sizeof(u), "http", hello_port, "/hello");
    m.q.url = u;
    CHECK_EQ(ct_run_many(&m, 200), 0);
    CHECK_EQ(m.ok, 200);
    CHECK(m.connects >= 1 && m.connects <= 4); /* keep-alive */
    struct weft_curl_response r;
    CHECK_EQ(get(m.c, u, &r), 0);
    CHECK_STR(r.body, "Hello, World!\n");
    CHECK_EQ(r.new_connections, 0);
    weft_curl_response_free(&r);
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    return 0;
}

static void weft_server(void)
{
    char exe[4096], prog[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(prog, sizeof(prog), "%s/../../examples/http_hello", dirname(exe));
    if (access(prog, X_OK) != 0) {
        fprintf(stderr, "http_hello not built: case skipped\n");
        return;
    }
    hello_port = test_free_port();
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", hello_port);
    char *argv[] = {prog, ps, NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = ct_spawn(argv, -1, devnull);
    close(devnull);
    CHECK(ct_wait_port(hello_port));
    CHECK_EQ(weft_run(hello_main, NULL), 0);
    kill(pid, SIGTERM);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
}

TEST_MAIN(basic, bodies, errors, limits, redirects, per_host_limit, cancel_in_flight, idle_close,
          streams, misuse, driver_unstarted, fetch_urls, weft_server)
