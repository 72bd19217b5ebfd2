/*
 * TLS streams, weft against weft in one loop (virtual clock: deadlines are exact and instant):
 * every stream call over TLS, back-pressure, a 1-byte transport, start_tls after plaintext (with
 * the ClientHello already in the plaintext reader's buffer), deadlines, timeout scopes and
 * cancellation in handshakes and reads, clean close vs truncation, many concurrent handshakes.
 * Contexts and verification: ctx_test.c; hostile peers and servers: hostile_test.c.
 */
#include "tlstest.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/ssl.h>

/* ---- every stream call over TLS ---- */

static int calls_main(void *arg)
{
    (void)arg;
    int fds = test_count_fds();
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", "http/1.1,h2");
    weft_tls_ctx_t *cctx = tt_client_ctx("h2,http/1.1");
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    CHECK(weft_tls_is_tls(c));
    CHECK_STR(weft_tls_version(c), "TLSv1.3");
    CHECK_STR(weft_tls_alpn(c), "http/1.1"); /* the server's preference wins */
    CHECK(weft_tls_cipher(c) != NULL);
    CHECK_EQ(weft_tls_verify_result(c), 0);
    CHECK_STR(weft_tls_reason(c), "");
    /* record buffers are released between reads once the handshake is done (docs/tls.md) */
    CHECK((SSL_get_mode(weft_tls_openssl(c)) & SSL_MODE_RELEASE_BUFFERS) != 0);

    CHECK_EQ(weft_stream_write(c, "hello\nworld\n", 12), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    const char *p;
    size_t n;
    CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
    CHECK(n == 6 && memcmp(p, "hello\n", 6) == 0);
    char buf[64];
    size_t got;
    CHECK_EQ(weft_stream_readexactly(c, buf, 3, &got), 0);
    CHECK(memcmp(buf, "wor", 3) == 0);
    CHECK_EQ(weft_stream_readuntil(c, "\n", 1, &p, &n), 0);
    CHECK(n == 3 && memcmp(p, "ld\n", 3) == 0);
    CHECK_STR(st.sni, "localhost");
    CHECK_STR(st.alpn, "http/1.1");

    /* the limit applies as on a plain stream */
    weft_stream_t *c2;
    struct weft_tls_connect_opts co = {.connect.stream.limit = 16};
    CHECK_EQ(weft_tls_connect(&c2, cctx, "127.0.0.1", weft_server_port(srv), &co), 0);
    CHECK_EQ(weft_stream_write(c2, "0123456789012345678901234567890123456789\nend\n", 45), 0);
    CHECK_EQ(weft_stream_readline(c2, &p, &n), WEFT_ELIMIT);
    CHECK_EQ(weft_stream_readline(c2, &p, &n), 0);
    CHECK(n == 4 && memcmp(p, "end\n", 4) == 0);
    /* read: whatever is there */
    CHECK_EQ(weft_stream_write(c2, "abc\n", 4), 0);
    ssize_t k = weft_stream_read(c2, buf, sizeof(buf));
    CHECK(k >= 1 && k <= 4 && memcmp(buf, "abc\n", (size_t)k) == 0);
    /* write_eof sends close_notify: the server sees a clean end, then closes its side */
    CHECK_EQ(weft_stream_write_eof(c2), 0);
    CHECK_EQ(weft_stream_read_all(c2, &p, &n), 0);
    weft_stream_close(c2);
    CHECK_EQ(weft_stream_wait_closed_dl(c2, weft_deadline_in(5)), 0);
    weft_stream_release(c2);

    /* a clean close from our side: the server reads a clean end (0), not a truncation */
    CHECK_EQ(weft_stream_write(c, "bye\n", 4), 0);
    CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
    weft_stream_close(c);
    CHECK_EQ(weft_stream_wait_closed(c), 0);
    weft_stream_release(c);
    tt_stop(srv);
    CHECK_EQ(st.served, 2);
    CHECK_EQ(st.last, 0);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    CHECK_EQ(test_count_fds(), fds);
    return 0;
}

static void test_stream_calls(void)
{
    CHECK_EQ(run_virtual(calls_main, NULL), 0);
}

/* ---- a large transfer both ways with backpressure ---- */

static int bulk_server(weft_stream_t *s, void *arg)
{
    (void)arg;
    char buf[20000];
    for (;;) {
        ssize_t n = weft_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            return n < 0 ? (int)n : 0;
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            return -EPIPE;
    }
}

struct bulk {
    weft_stream_t *c;
    size_t total;
};

static int bulk_writer(void *arg)
{
    struct bulk *b = arg;
    char *chunk = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        chunk[i] = (char)(i * 7 + 1);
    for (size_t sent = 0; sent < b->total; sent += 65536) {
        CHECK_EQ(weft_stream_write(b->c, chunk, 65536), 0);
        CHECK_EQ(weft_stream_drain(b->c), 0);
    }
    free(chunk);
    return weft_stream_write_eof(b->c);
}

static int bulk_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    weft_server_t *srv;
    struct weft_server_opts so = {.stream.write_high = 8192};
    CHECK_EQ(weft_tls_server_start(&srv, sctx, bulk_server, NULL, "127.0.0.1", 0, &so), 0);
    struct bulk b = {.total = tt_small() ? 1u << 20 : 8u << 20};
    CHECK_EQ(weft_tls_connect(&b.c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, bulk_writer, &b), 0);
    char *buf = malloc(100000);
    size_t got = 0;
    for (;;) {
        ssize_t n = weft_stream_read(b.c, buf, 100000);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            CHECK_EQ((unsigned char)buf[i], (unsigned char)((got + (size_t)i) % 65536 * 7 + 1));
        got += (size_t)n;
    }
    CHECK_EQ(got, b.total);
    CHECK_EQ(weft_join(w), 0);
    weft_task_release(w);
    free(buf);
    weft_stream_release(b.c);
    tt_stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_bulk_backpressure(void)
{
    CHECK_EQ(run_virtual(bulk_main, NULL), 0);
}

/* ---- a 1-byte transport: every recv and send moves one byte, handshake included ---- */

static int tiny_main(void *arg)
{
    (void)arg;
    weft__tls_test_io_max = 1;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    for (int i = 0; i < 2; i++) { /* a full handshake, then a resumed one */
        weft_stream_t *c;
        CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
        CHECK_EQ(weft_tls_session_reused(c), i == 1);
        char line[3000];
        memset(line, 'a' + i, sizeof(line));
        line[sizeof(line) - 1] = '\n';
        CHECK_EQ(weft_stream_write(c, line, sizeof(line)), 0);
        const char *p;
        size_t n;
        CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
        CHECK(n == sizeof(line) && memcmp(p, line, n) == 0);
        CHECK_EQ(weft_tls_shutdown_dl(c, weft_deadline_in(10)), 0);
        weft_stream_release(c);
    }
    tt_stop(srv);
    CHECK_EQ(st.served, 2);
    CHECK_EQ(st.last, 0);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    weft__tls_test_io_max = 0;
    return 0;
}

static void test_one_byte_transport(void)
{
    CHECK_EQ(run_virtual(tiny_main, NULL), 0);
}

/* ---- start_tls after a plaintext exchange ---- */

struct starttls {
    weft_tls_ctx_t *sctx;
    int result;
    bool early; /* the client sends its ClientHello without waiting for "OK" */
};

static int starttls_server(weft_stream_t *s, void *arg)
{
    struct starttls *t = arg;
    const char *p;
    size_t n;
    if (t->early) {
        /* Let the ClientHello arrive behind the command, so that readline buffers part of it. */
        for (int i = 0; i < 10000; i++) {
            char peek[64];
            ssize_t k = recv(weft_stream_fd(s), peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
            if (k >= 20)
                break;
            weft_yield();
        }
    }
    CHECK_EQ(weft_stream_readline(s, &p, &n), 0);
    CHECK(n == 9 && memcmp(p, "STARTTLS\n", 9) == 0);
    if (t->early)
        CHECK(weft_stream_buffered(s, NULL) > 0); /* TLS bytes in the plaintext buffer */
    if (!t->early) {
        CHECK_EQ(weft_stream_write(s, "OK\n", 3), 0);
    }
    t->result = weft_tls_start(s, t->sctx, NULL);
    if (t->result < 0)
        return 0;
    return tt_echo_lines(s, &(struct tt_srv_stats){0});
}

static int starttls_main(void *arg)
{
    (void)arg;
    for (int early = 0; early < 2; early++) {
        struct starttls t = {.sctx = tt_server_ctx("server.pem", "server.key", NULL),
                             .early = early};
        weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
        weft_server_t *srv;
        CHECK_EQ(weft_server_start(&srv, starttls_server, &t, "127.0.0.1", 0, NULL), 0);
        weft_stream_t *c;
        CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", weft_server_port(srv), NULL), 0);
        CHECK(!weft_tls_is_tls(c));
        CHECK_EQ(weft_stream_write(c, "STARTTLS\n", 9), 0);
        const char *p;
        size_t n;
        if (!early) {
            CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
            CHECK(n == 3);
        }
        CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
        CHECK(weft_tls_is_tls(c));
        CHECK_EQ(weft_stream_write(c, "secret\n", 7), 0);
        CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
        CHECK(n == 7 && memcmp(p, "secret\n", 7) == 0);
        CHECK_EQ(weft_tls_start(c, cctx, "localhost"), -EINVAL); /* already TLS */
        weft_stream_release(c);
        tt_stop(srv);
        CHECK_EQ(t.result, 0);
        weft_tls_ctx_release(t.sctx);
        weft_tls_ctx_release(cctx);
    }
    return 0;
}

static void test_start_tls(void)
{
    CHECK_EQ(run_virtual(starttls_main, NULL), 0);
}

/* ---- deadlines, timeout scopes and cancellation ---- */

struct hs_args {
    weft_tls_ctx_t *ctx;
    int port;
    int64_t deadline;
};

static int hs_task(void *arg)
{
    struct hs_args *a = arg;
    weft_stream_t *c = NULL;
    int r = weft_tls_connect_dl(&c, a->ctx, "localhost", a->port, NULL, a->deadline);
    CHECK(c == NULL || r == 0);
    weft_stream_release(c);
    return r;
}

static int reader_task(void *arg)
{
    char buf[16];
    return (int)weft_stream_read(arg, buf, sizeof(buf));
}

static int deadlines_main(void *arg)
{
    (void)arg;
    int fds = test_count_fds();
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    /* a listener that never answers: the kernel completes the TCP handshake, nobody speaks */
    int port;
    int lfd = nt_listen("127.0.0.1", &port);
    struct hs_args a = {.ctx = cctx, .port = port, .deadline = weft_deadline_in(2)};
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(hs_task(&a), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, weft_seconds_to_ns(2));

    /* a timeout scope around the handshake */
    weft_timeout_t to = {0};
    CHECK_EQ(weft_timeout_enter(&to, 1.5), 0);
    a.deadline = WEFT_NO_DEADLINE;
    int r = hs_task(&a);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);

    /* cancellation in the handshake */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, hs_task, &a), 0);
    CHECK_EQ(weft_sleep(1), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);

    /* the context's own handshake timeout */
    weft_tls_ctx_t *quick;
    struct weft_tls_opts qo = {.ca_file = tt_path("ca.pem"), .handshake_timeout = 3};
    CHECK_EQ(weft_tls_client_ctx_new(&quick, &qo), 0);
    a.ctx = quick;
    t0 = weft_time(NULL);
    CHECK_EQ(hs_task(&a), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, weft_seconds_to_ns(3));
    weft_tls_ctx_release(quick);
    close(lfd);

    /* deadlines and cancellation in reads of an established TLS stream */
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    char buf[16];
    CHECK_EQ(weft_stream_read_dl(c, buf, sizeof(buf), weft_deadline_in(5)), -ETIMEDOUT);
    const char *p;
    size_t n;
    CHECK_EQ(weft_stream_readline_dl(c, &p, &n, weft_deadline_in(5)), -ETIMEDOUT);
    CHECK_EQ(weft_spawn(&t, reader_task, c), 0);
    CHECK_EQ(weft_sleep(1), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    /* the stream still works */
    CHECK_EQ(weft_stream_write(c, "after\n", 6), 0);
    CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
    CHECK(n == 6);
    /* shutdown honours its deadline too: a peer that never answers close_notify... the echo
     * server does answer, so this one is clean */
    CHECK_EQ(weft_tls_shutdown_dl(c, weft_deadline_in(5)), 0);
    weft_stream_release(c);
    tt_stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    CHECK_EQ(test_count_fds(), fds);
    return 0;
}

static void test_deadlines_and_cancel(void)
{
    CHECK_EQ(run_virtual(deadlines_main, NULL), 0);
}

/* A shutdown whose peer never sends close_notify ends at its deadline. */
static int mute_server(weft_stream_t *s, void *arg)
{
    (void)arg;
    char buf[64];
    while (weft_stream_read(s, buf, sizeof(buf)) > 0) {
    }
    /* got close_notify: keep the connection open without answering */
    return weft_sleep(100);
}

static int shutdown_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, mute_server, NULL, "127.0.0.1", 0, NULL), 0);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_tls_shutdown_dl(c, weft_deadline_in(4)), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, weft_seconds_to_ns(4));
    CHECK(weft_stream_is_closing(c));
    weft_stream_release(c);
    weft_server_close(srv);
    weft_server_abort_clients(srv);
    weft_server_release(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_shutdown_deadline(void)
{
    CHECK_EQ(run_virtual(shutdown_main, NULL), 0);
}

/* ---- many concurrent handshakes ---- */

struct many {
    weft_tls_ctx_t *cctx;
    int port;
    int ok;
};

static int many_client(void *arg)
{
    struct many *m = arg;
    weft_stream_t *c;
    struct weft_tls_connect_opts co = {.server_hostname = "localhost"}; /* no DNS */
    int r = weft_tls_connect(&c, m->cctx, "127.0.0.1", m->port, &co);
    if (r < 0)
        return r;
    const char *p;
    size_t n;
    r = weft_stream_write(c, "ping\n", 5);
    if (r == 0)
        r = weft_stream_readline(c, &p, &n);
    if (r == 0 && n == 5)
        m->ok++;
    weft_stream_release(c);
    return r;
}

static int many_main(void *arg)
{
    (void)arg;
    int count = tt_small() ? 40 : 1000;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    struct many m = {.cctx = tt_client_ctx(NULL)};
    struct tt_srv_stats st = {0};
    weft_server_t *srv;
    struct weft_server_opts so = {.backlog = 2048};
    CHECK_EQ(weft_tls_server_start(&srv, sctx, tt_echo_lines, &st, "127.0.0.1", 0, &so), 0);
    m.port = weft_server_port(srv);
    weft_task_t **ts = calloc((size_t)count, sizeof(*ts));
    for (int i = 0; i < count; i++)
        CHECK_EQ(weft_spawn(&ts[i], many_client, &m), 0);
    CHECK_EQ(weft_gather(ts, (size_t)count, NULL, 0), 0);
    for (int i = 0; i < count; i++)
        weft_task_release(ts[i]);
    free(ts);
    CHECK_EQ(m.ok, count);
    tt_stop(srv);
    CHECK_EQ(st.served, count);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(m.cctx);
    return 0;
}

static void test_concurrent_handshakes(void)
{
    CHECK_EQ(weft_run(many_main, NULL), 0);
}

TEST_MAIN(test_stream_calls, test_bulk_backpressure, test_one_byte_transport, test_start_tls, test_deadlines_and_cancel, test_shutdown_deadline, test_concurrent_handshakes)
