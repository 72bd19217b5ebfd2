/*
 * weft-curl against nginx (started here with a config in a temp dir): TLS verified with a
 * throwaway CA (and refused without it), HTTP/2 multiplexing over one TLS connection, 1,000
 * concurrent requests over at most 10 connections (per-host limit, HTTP/1.1), and 100 HTTP/2
 * requests cancelled in flight followed by 100 more that reuse the same connection.
 */
#include "curltest.h"

static struct ct_nginx ngx;
static bool ngx_up;

static void ngx_down(void)
{
    if (ngx_up)
        ct_nginx_stop(&ngx);
    ngx_up = false;
}

static void need_nginx(void)
{
    if (!ngx_up) {
        ct_nginx_start(&ngx);
        ngx_up = true;
        atexit(ngx_down);
    }
}

static char *url(const char *scheme, const char *path)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];
    ct_url(b, sizeof(buf[0]), scheme, strcmp(scheme, "https") == 0 ? ngx.tls_port : ngx.port, path);
    return b;
}

static int tls_main(void *arg)
{
    (void)arg;
    weft_curl_client_t *c;
    CHECK_EQ(weft_curl_client_new(&c, NULL), 0);
    struct weft_curl_response r;
    struct weft_curl_request q = {.url = url("https", "/1k"), .ca_file = ngx.ca};
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.http_version, 20); /* offered through ALPN, taken */
    CHECK_EQ(r.body_len, 1024);
    CHECK(strncmp(r.headers, "HTTP/2 200", 10) == 0);
    weft_curl_response_free(&r);

    /* The name in the URL is checked too: localhost is in the certificate. */
    char u[128];
    snprintf(u, sizeof(u), "https://localhost:%d/1k", ngx.tls_port);
    q.url = u;
    int e = weft_curl_request(c, &q, &r);
    if (e == 0) /* localhost may resolve to ::1 first, where nothing listens: curl falls back */
        weft_curl_response_free(&r);
    else
        CHECK_EQ(e, -ECONNREFUSED);

    /* HTTP/1.1 over TLS when asked. */
    q.url = url("https", "/1k");
    q.http1_only = true;
    CHECK_EQ(weft_curl_request(c, &q, &r), 0);
    CHECK_EQ(r.http_version, 11);
    weft_curl_response_free(&r);

    /* With another CA: refused. */
    struct weft_curl_request q2 = {.url = url("https", "/1k"), .ca_file = ngx.other_ca};
    CHECK_EQ(weft_curl_request(c, &q2, &r), WEFT_CURL_ETLSVERIFY);
    CHECK_EQ(r.curl_code, CURLE_PEER_FAILED_VERIFICATION);
    CHECK(r.error[0] != '\0');
    /* With the system's CAs (verification is on by default): refused too. Not under valgrind,
     * where loading the system bundle costs seconds. */
    q2.ca_file = NULL;
    if (!ct_slow_env())
        CHECK_EQ(weft_curl_request(c, &q2, &r), WEFT_CURL_ETLSVERIFY);
    /* ... unless told not to verify. */
    q2.insecure = true;
    CHECK_EQ(weft_curl_request(c, &q2, &r), 0);
    CHECK_EQ(r.status, 200);
    weft_curl_response_free(&r);
    CHECK_EQ(weft_curl_client_free(c), 0);
    return 0;
}

static void tls(void)
{
    need_nginx();
    CHECK_EQ(weft_run(tls_main, NULL), 0);
}

static int h2_main(void *arg)
{
    (void)arg;
    struct ct_many m = {.q = {.url = url("https", "/1k"), .ca_file = ngx.ca}};
    CHECK_EQ(weft_curl_client_new(&m.c, NULL), 0);
    CHECK_EQ(ct_run_many(&m, 100), 0);
    CHECK_EQ(m.ok, 100);
    CHECK_EQ(m.connects, 1); /* 100 streams multiplexed on one connection */
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    return 0;
}

static void h2_multiplex(void)
{
    need_nginx();
    CHECK_EQ(weft_run(h2_main, NULL), 0);
}

static int perhost_main(void *arg)
{
    (void)arg;
    int n = ct_slow_env() ? 200 : 1000;
    struct ct_many m = {.q = {.url = url("http", "/1k")}};
    struct weft_curl_client_opts o = {.max_host_connections = 10};
    CHECK_EQ(weft_curl_client_new(&m.c, &o), 0);
    CHECK_EQ(ct_run_many(&m, n), 0);
    CHECK_EQ(m.ok, n);
    CHECK(m.connects >= 1 && m.connects <= 10);
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    return 0;
}

static void per_host_limit(void)
{
    need_nginx();
    CHECK_EQ(weft_run(perhost_main, NULL), 0);
}

/* A request known to be in flight: its stream is open (headers came), its body trickles
 * (limit_rate) and it waits for more. */
static int on_wire;
static weft_event_t wire_full;

static char slow_url[256];

static int streamer(void *arg)
{
    struct ct_many *m = arg;
    weft_curl_stream_t *s;
    struct weft_curl_request q = {.url = slow_url, .ca_file = ngx.ca};
    struct weft_curl_response info;
    int e = weft_curl_open(m->c, &q, &s, &info);
    if (e < 0)
        return e;
    m->connects += info.new_connections;
    if (++on_wire == 100)
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
    struct ct_many m = {.q = {.url = url("https", "/1k"), .ca_file = ngx.ca}};
    CHECK_EQ(weft_curl_client_new(&m.c, NULL), 0);
    weft_task_t *t[100];
    weft_event_init(&wire_full);
    on_wire = 0;
    ct_url(slow_url, sizeof(slow_url), "https", ngx.tls_port, "/slow/100k");
    for (int i = 0; i < 100; i++)
        CHECK_EQ(weft_spawn(&t[i], streamer, &m), 0);
    CHECK_EQ(weft_event_wait(&wire_full), 0);
    CHECK_EQ(m.connects, 1);
    for (int i = 0; i < 100; i++)
        weft_task_cancel(t[i], NULL);
    CHECK_EQ(weft_gather(t, 100, NULL, WEFT_GATHER_RETURN_ERRORS), 0);
    for (int i = 0; i < 100; i++)
        weft_task_release(t[i]);
    CHECK_EQ(m.cancelled, 100);
    CHECK_EQ(weft_curl_client_active(m.c), 0);

    /* The streams were reset, the connection stays: 100 more reuse it. */
    m.connects = 0;
    CHECK_EQ(ct_run_many(&m, 100), 0);
    CHECK_EQ(m.ok, 100);
    CHECK_EQ(m.connects, 0);
    CHECK_EQ(weft_curl_client_free(m.c), 0);
    CHECK_EQ(test_count_fds(), fds0);
    return 0;
}

static void cancel_reuse(void)
{
    need_nginx();
    CHECK_EQ(weft_run(cancel_main, NULL), 0);
}

TEST_MAIN(tls, h2_multiplex, per_host_limit, cancel_reuse)
