/*
 * TLS streams, weft against weft in one loop (virtual clock: deadlines are exact and instant):
 * every stream call over TLS, ALPN, SNI, resumption, verification failures, a 1-byte transport,
 * start_tls after plaintext (with the ClientHello already in the plaintext reader's buffer),
 * deadlines, timeout scopes and cancellation in handshakes and reads, clean close vs truncation.
 */
#include "tlstest.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/ssl.h>

/* ---- an echo server: lines back until "QUIT\n" or the end ---- */

struct srv_stats {
    int served;
    int last; /* the handler's last result */
    char sni[64];
    char alpn[32];
};

static int echo_lines(weft_stream_t *s, void *arg)
{
    struct srv_stats *st = arg;
    const char *p;
    size_t n;
    const char *sni = weft_tls_server_name(s);
    snprintf(st->sni, sizeof(st->sni), "%s", sni ? sni : "");
    const char *alpn = weft_tls_alpn(s);
    snprintf(st->alpn, sizeof(st->alpn), "%s", alpn ? alpn : "");
    int r;
    for (;;) {
        r = weft_stream_readline(s, &p, &n);
        if (r < 0 || n == 0)
            break;
        if (n == 5 && memcmp(p, "QUIT\n", 5) == 0)
            break;
        r = weft_stream_write(s, p, n);
        if (r == 0)
            r = weft_stream_drain(s);
        if (r < 0)
            break;
    }
    st->served++;
    st->last = r;
    return 0;
}

static weft_server_t *start_echo(weft_tls_ctx_t *sctx, struct srv_stats *st)
{
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, echo_lines, st, "127.0.0.1", 0, NULL), 0);
    return srv;
}

static void stop(weft_server_t *srv)
{
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(10)), 0);
    weft_server_release(srv);
}

/* ---- every stream call over TLS ---- */

static int calls_main(void *arg)
{
    (void)arg;
    int fds = test_count_fds();
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", "http/1.1,h2");
    weft_tls_ctx_t *cctx = tt_client_ctx("h2,http/1.1");
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    CHECK(weft_tls_is_tls(c));
    CHECK_STR(weft_tls_version(c), "TLSv1.3");
    CHECK_STR(weft_tls_alpn(c), "http/1.1"); /* the server's preference wins */
    CHECK(weft_tls_cipher(c) != NULL);
    CHECK_EQ(weft_tls_verify_result(c), 0);
    CHECK_STR(weft_tls_reason(c), "");

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
    stop(srv);
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
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_bulk_backpressure(void)
{
    CHECK_EQ(run_virtual(bulk_main, NULL), 0);
}

/* ---- resumption: the second connection resumes the first's session ---- */

/* Counts the TLS 1.3 NewSessionTicket messages a client receives (OpenSSL's message callback). */
static int tickets_seen;

static void count_tickets(int write_p, int version, int content_type, const void *buf, size_t len,
                          SSL *ssl, void *arg)
{
    (void)version, (void)ssl, (void)arg;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const unsigned char *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
        tickets_seen++;
}

static int resume_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    SSL_CTX_set_msg_callback(weft_tls_ctx_openssl(cctx), count_tickets);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    for (int i = 0; i < 3; i++) {
        weft_stream_t *c;
        tickets_seen = 0;
        CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
        CHECK_EQ(weft_tls_session_reused(c), i > 0);
        /* The server's suite order: AES-128-GCM, though OpenSSL's client lists AES-256 first. */
        CHECK_STR(weft_tls_cipher(c), "TLS_AES_128_GCM_SHA256");
        CHECK_EQ(weft_stream_write(c, "x\n", 2), 0);
        const char *p;
        size_t n;
        CHECK_EQ(weft_stream_readline(c, &p, &n), 0); /* the tickets come with it */
        CHECK_EQ(tickets_seen, 1); /* one ticket per handshake, full or resumed */
        CHECK_EQ(weft_tls_ctx_sessions(cctx), 1);
        weft_stream_release(c);
        /* The server keeps the sessions (the tickets are ids): one more per handshake. */
        CHECK_EQ(SSL_CTX_sess_number(weft_tls_ctx_openssl(sctx)), i + 1);
    }
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_resumption(void)
{
    CHECK_EQ(run_virtual(resume_main, NULL), 0);
}

/* ---- the server's suite order: its own, ChaCha20 first for a client that asks for it ---- */

static const char *negotiated_suite(const char *server_suites, const char *client_suites)
{
    static char got[64];
    weft_tls_ctx_t *sctx, *cctx;
    struct weft_tls_opts so = {.cert_file = tt_path("server.pem"),
                               .key_file = tt_path("server.key"),
                               .ciphersuites = server_suites};
    struct weft_tls_opts co = {.ca_file = tt_path("ca.pem"), .ciphersuites = client_suites};
    CHECK_EQ(weft_tls_server_ctx_new(&sctx, &so), 0);
    CHECK_EQ(weft_tls_client_ctx_new(&cctx, &co), 0);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    snprintf(got, sizeof(got), "%s", weft_tls_cipher(c));
    weft_stream_release(c);
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return got;
}

static int suites_main(void *arg)
{
    (void)arg;
    CHECK_STR(negotiated_suite(NULL, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
              "TLS_AES_128_GCM_SHA256");
    CHECK_STR(negotiated_suite(NULL, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"),
              "TLS_CHACHA20_POLY1305_SHA256");
    CHECK_STR(negotiated_suite(NULL, "TLS_AES_256_GCM_SHA384"), "TLS_AES_256_GCM_SHA384");
    /* a server's own list is taken in its order */
    CHECK_STR(negotiated_suite("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", NULL),
              "TLS_AES_256_GCM_SHA384");
    return 0;
}

static void test_server_suite_order(void)
{
    CHECK_EQ(run_virtual(suites_main, NULL), 0);
}

/* ---- verification failures ---- */

static int verify_case(const char *cert, const char *key, const char *host, const char *sni,
                       long want_verify, int want)
{
    int fds = test_count_fds();
    weft_tls_ctx_t *sctx = tt_server_ctx(cert, key, NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_stream_t *c = (weft_stream_t *)1;
    char err[256] = "";
    struct weft_tls_connect_opts co = {.server_hostname = sni,
                                       .connect = {.errbuf = err, .errlen = sizeof(err)}};
    int r = weft_tls_connect(&c, cctx, host, weft_server_port(srv), &co);
    fprintf(stderr, "  %s as %s: %s (%s)\n", cert, sni ? sni : host, weft_strerror(r), err);
    CHECK_EQ(r, want);
    CHECK(c == NULL);
    if (want == WEFT_ETLS_VERIFY) {
        CHECK(strstr(err, "certificate verify failed") != NULL);
        (void)want_verify;
    }
    stop(srv);
    CHECK_EQ(st.served, 0); /* the handler never ran */
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    CHECK_EQ(test_count_fds(), fds);
    return 0;
}

/* The verification result of a failed start_tls stays readable on the stream. */
static int verify_result_case(const char *cert, const char *key, const char *name, long want)
{
    weft_tls_ctx_t *sctx = tt_server_ctx(cert, key, NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", weft_server_port(srv), NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, name), WEFT_ETLS_VERIFY);
    CHECK_EQ(weft_tls_verify_result(c), want);
    CHECK(strstr(weft_tls_reason(c), "certificate verify failed") != NULL);
    CHECK_EQ(weft_stream_read(c, &st, 1), WEFT_ETLS_VERIFY); /* the stream carries the error */
    CHECK_EQ(weft_stream_write(c, "x", 1), -EPIPE); /* aborted */
    weft_stream_release(c);
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    return 0;
}

static int verify_main(void *arg)
{
    (void)arg;
    verify_case("server.pem", "server.key", "127.0.0.1", "example.com", 62, WEFT_ETLS_VERIFY);
    verify_case("other.pem", "other.key", "localhost", NULL, 20, WEFT_ETLS_VERIFY);
    verify_case("expired.pem", "server.key", "localhost", NULL, 10, WEFT_ETLS_VERIFY);
    verify_result_case("server.pem", "server.key", "wrong.example", 62); /* hostname mismatch */
    verify_result_case("other.pem", "other.key", "localhost", 20);       /* unknown issuer */
    verify_result_case("expired.pem", "server.key", "localhost", 10);    /* expired */
    /* the IP address is checked against the certificate's IP SANs */
    verify_case("server.pem", "server.key", "127.0.0.1", "10.1.2.3", 64, WEFT_ETLS_VERIFY);
    return 0;
}

static void test_verification_failures(void)
{
    CHECK_EQ(run_virtual(verify_main, NULL), 0);
}

/* Client certificates: required by the server, refused without one. */
static int client_cert_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx;
    struct weft_tls_opts so = {.cert_file = tt_path("server.pem"),
                               .key_file = tt_path("server.key"),
                               .ca_file = tt_path("ca.pem"),
                               .verify_client = true};
    CHECK_EQ(weft_tls_server_ctx_new(&sctx, &so), 0);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_tls_ctx_t *with, *without = tt_client_ctx(NULL);
    struct weft_tls_opts co = {.ca_file = tt_path("ca.pem"),
                               .cert_file = tt_path("client.pem"),
                               .key_file = tt_path("client.key")};
    CHECK_EQ(weft_tls_client_ctx_new(&with, &co), 0);
    weft_stream_t *c;
    const char *p;
    size_t n;
    CHECK_EQ(weft_tls_connect(&c, with, "localhost", weft_server_port(srv), NULL), 0);
    CHECK_EQ(weft_stream_write(c, "hi\n", 3), 0);
    CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
    CHECK_EQ(n, 3);
    weft_stream_release(c);
    /* TLS 1.3: the client learns of the refusal on its first read (an alert) */
    int r = weft_tls_connect(&c, without, "localhost", weft_server_port(srv), NULL);
    if (r == 0) {
        CHECK_EQ(weft_stream_write(c, "hi\n", 3), 0);
        r = weft_stream_readline(c, &p, &n);
        fprintf(stderr, "  no client certificate: %s (%s)\n", weft_strerror(r), weft_tls_reason(c));
        weft_stream_release(c);
    }
    CHECK(r == WEFT_ETLS_ALERT || r == -ECONNRESET); /* the alert, or a reset racing it */
    stop(srv);
    CHECK_EQ(st.served, 1);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(with);
    weft_tls_ctx_release(without);
    return 0;
}

static void test_client_certificates(void)
{
    CHECK_EQ(run_virtual(client_cert_main, NULL), 0);
}

/* ---- TLS 1.2 and bad configurations ---- */

static int args_freed;

static void free_arg(void *p)
{
    free(p);
    args_freed++;
}

static int tls12_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", "h2");
    weft_tls_ctx_t *cctx;
    struct weft_tls_opts o = {.ca_file = tt_path("ca.pem"), .max_version = WEFT_TLS1_2,
                              .alpn = "x-other"};
    CHECK_EQ(weft_tls_client_ctx_new(&cctx, &o), 0);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    for (int i = 0; i < 2; i++) {
        weft_stream_t *c;
        CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
        CHECK_STR(weft_tls_version(c), "TLSv1.2");
        CHECK(weft_tls_alpn(c) == NULL); /* no common protocol: none */
        CHECK_EQ(weft_tls_session_reused(c), i == 1);
        weft_stream_release(c);
    }
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);

    /* configuration errors */
    char err[256];
    struct weft_tls_opts bad = {.cert_file = "/nonexistent.pem", .key_file = "/nonexistent.key",
                                .errbuf = err, .errlen = sizeof(err)};
    weft_tls_ctx_t *x = (weft_tls_ctx_t *)1;
    CHECK_EQ(weft_tls_server_ctx_new(&x, &bad), WEFT_ETLS_CONFIG);
    CHECK(x == NULL && strstr(err, "/nonexistent.pem") != NULL);
    struct weft_tls_opts mismatch = {.cert_file = tt_path("server.pem"),
                                     .key_file = tt_path("other.key"), .errbuf = err,
                                     .errlen = sizeof(err)};
    CHECK_EQ(weft_tls_server_ctx_new(&x, &mismatch), WEFT_ETLS_CONFIG);
    struct weft_tls_opts noalpn = {.alpn = "h2,,x", .errbuf = err, .errlen = sizeof(err)};
    CHECK_EQ(weft_tls_client_ctx_new(&x, &noalpn), WEFT_ETLS_CONFIG);
    struct weft_tls_opts nocert = {0};
    CHECK_EQ(weft_tls_server_ctx_new(&x, &nocert), WEFT_ETLS_CONFIG);
    /* bad input */
    weft_tls_ctx_t *cc = tt_client_ctx(NULL), *sc = tt_server_ctx("server.pem", "server.key", NULL);
    weft_stream_t *fed;
    CHECK_EQ(weft_stream_new(&fed, -1, NULL), 0);
    CHECK_EQ(weft_tls_start(fed, cc, "localhost"), -EINVAL); /* no socket */
    CHECK_EQ(weft_tls_start(NULL, cc, NULL), -EINVAL);
    CHECK_EQ(weft_tls_start(fed, NULL, NULL), -EINVAL);
    CHECK(!weft_tls_is_tls(fed) && weft_tls_verify_result(fed) == -1);
    CHECK_STR(weft_tls_reason(fed), "");
    CHECK_EQ(weft_tls_shutdown(fed), -EINVAL);
    weft_stream_release(fed);
    weft_stream_t *none = (weft_stream_t *)1;
    CHECK_EQ(weft_tls_connect(&none, sc, "127.0.0.1", 1, NULL), -EINVAL); /* a server context */
    CHECK(none == NULL);
    weft_server_t *srv2;
    CHECK_EQ(weft_tls_server_start(&srv2, cc, echo_lines, NULL, "127.0.0.1", 0, NULL), -EINVAL);
    /* the server frees the handler's arg through opts.arg_free once it is gone */
    struct weft_server_opts fo = {.arg_free = free_arg};
    int *boxed = malloc(sizeof(int));
    CHECK_EQ(weft_tls_server_start(&srv2, sc, echo_lines, boxed, "127.0.0.1", 0, &fo), 0);
    stop(srv2);
    for (int i = 0; i < 10 && args_freed == 0; i++)
        weft_yield(); /* the accept task lets go of the server on its next step */
    CHECK_EQ(args_freed, 1); /* (and valgrind/ASan would see the leak) */
    weft_tls_ctx_release(cc);
    weft_tls_ctx_release(sc);
    CHECK_STR(weft_err_name(WEFT_ETLS_EOF), "ETLS_EOF");
    CHECK(strstr(weft_strerror(WEFT_ETLS_EOF), "close_notify") != NULL);
    return 0;
}

static void test_tls12_and_config(void)
{
    CHECK_EQ(run_virtual(tls12_main, NULL), 0);
}

/* ---- from memory: PEM text instead of files ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char *b = calloc(1, 65536);
    size_t n = fread(b, 1, 65535, f);
    CHECK(n > 0);
    fclose(f);
    return b;
}

static int pem_main(void *arg)
{
    (void)arg;
    char *cert = slurp(tt_path("server.pem")), *key = slurp(tt_path("server.key"));
    char *ca = slurp(tt_path("ca.pem"));
    weft_tls_ctx_t *sctx, *cctx;
    struct weft_tls_opts so = {.cert_pem = cert, .key_pem = key};
    CHECK_EQ(weft_tls_server_ctx_new(&sctx, &so), 0);
    struct weft_tls_opts co = {.ca_pem = ca};
    CHECK_EQ(weft_tls_client_ctx_new(&cctx, &co), 0);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    weft_stream_release(c);
    stop(srv);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(cctx);
    free(cert);
    free(key);
    free(ca);
    return 0;
}

static void test_pem_in_memory(void)
{
    CHECK_EQ(run_virtual(pem_main, NULL), 0);
}

/* ---- a 1-byte transport: every recv and send moves one byte, handshake included ---- */

static int tiny_main(void *arg)
{
    (void)arg;
    weft__tls_test_io_max = 1;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
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
    stop(srv);
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
    return echo_lines(s, &(struct srv_stats){0});
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
        stop(srv);
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

/* ---- hostile and broken peers (raw sockets on the other side) ---- */

struct capture {
    weft_tls_ctx_t *ctx;
    int hs;      /* the handshake's result */
    int rd;      /* the first read's result after it */
    char reason[200];
    weft_event_t done;
};

/* A plain server whose handler starts TLS and records what happens. */
static int capture_server(weft_stream_t *s, void *arg)
{
    struct capture *cp = arg;
    cp->hs = weft_tls_start(s, cp->ctx, NULL);
    if (cp->hs == 0) {
        char buf[256];
        cp->rd = (int)weft_stream_read(s, buf, sizeof(buf));
        if (cp->rd > 0) /* the first line is fine: read again */
            cp->rd = (int)weft_stream_read(s, buf, sizeof(buf));
    }
    snprintf(cp->reason, sizeof(cp->reason), "%s", weft_tls_reason(s));
    weft_event_set(&cp->done);
    return 0;
}

static int raw_send(weft_stream_t *c, const void *p, size_t n)
{
    return weft_sock_sendall(weft_stream_fd(c), p, n, NULL);
}

static int hostile_main(void *arg)
{
    (void)arg;
    int fds = test_count_fds();
    struct capture cp = {.ctx = tt_server_ctx("server.pem", "server.key", NULL)};
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, capture_server, &cp, "127.0.0.1", 0, NULL), 0);
    int port = weft_server_port(srv);
    weft_stream_t *c;
    const char *p;
    size_t n;

    /* a plaintext HTTP client */
    weft_event_init(&cp.done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_stream_write(c, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    fprintf(stderr, "  plaintext client: %s (%s)\n", weft_strerror(cp.hs), cp.reason);
    CHECK_EQ(cp.hs, WEFT_ETLS_NOT_TLS);
    CHECK(strstr(cp.reason, "http request") != NULL);
    CHECK_EQ(weft_stream_read_all(c, &p, &n), 0); /* the server closed */
    weft_stream_release(c);

    /* a truncated handshake: half a ClientHello, then the end */
    weft_event_init(&cp.done);
    static const unsigned char hello_start[] = {0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00,
                                                0x00, 0xec, 0x03, 0x03, 0x11, 0x22};
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(raw_send(c, hello_start, sizeof(hello_start)), 0);
    CHECK_EQ(weft_stream_write_eof(c), 0);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    fprintf(stderr, "  truncated handshake: %s (%s)\n", weft_strerror(cp.hs), cp.reason);
    CHECK_EQ(cp.hs, WEFT_ETLS_EOF);
    weft_stream_release(c);

    /* garbage in the middle of the stream */
    weft_event_init(&cp.done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
    CHECK_EQ(weft_stream_write(c, "fine\n", 5), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    CHECK_EQ(raw_send(c, "\x17\x03\x03\x00\x20garbage garbage garbage garbage!", 37), 0);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    fprintf(stderr, "  garbage mid-stream: %s (%s)\n", weft_strerror(cp.rd), cp.reason);
    CHECK_EQ(cp.hs, 0);
    CHECK_EQ(cp.rd, WEFT_ETLS);
    CHECK(cp.reason[0] != '\0');
    /* we get the server's alert */
    ssize_t k = weft_stream_read(c, (char[16]){0}, 16);
    CHECK(k == WEFT_ETLS_ALERT || k == WEFT_ETLS_EOF || k == -ECONNRESET);
    weft_stream_release(c);

    /* a peer that vanishes mid-record */
    weft_event_init(&cp.done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
    CHECK_EQ(weft_stream_write(c, "fine\n", 5), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    CHECK_EQ(raw_send(c, "\x17\x03\x03\x01\x00" "0123456789", 15), 0);
    CHECK_EQ(shutdown(weft_stream_fd(c), SHUT_WR), 0);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    fprintf(stderr, "  vanished mid-record: %s (%s)\n", weft_strerror(cp.rd), cp.reason);
    CHECK_EQ(cp.rd, WEFT_ETLS_EOF);
    weft_stream_release(c);

    /* a peer that closes between records without close_notify (abort), vs a clean close */
    weft_event_init(&cp.done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
    CHECK_EQ(weft_stream_write(c, "fine\n", 5), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    weft_stream_abort(c);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    CHECK_EQ(cp.rd, WEFT_ETLS_EOF);
    weft_stream_release(c);
    weft_event_init(&cp.done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
    CHECK_EQ(weft_stream_write(c, "fine\n", 5), 0);
    weft_stream_close(c);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    CHECK_EQ(cp.rd, 0); /* a clean end */
    weft_stream_release(c);

    stop(srv);
    weft_tls_ctx_release(cp.ctx);
    weft_tls_ctx_release(cctx);
    CHECK_EQ(test_count_fds(), fds);
    return 0;
}

static void test_hostile_peers(void)
{
    CHECK_EQ(run_virtual(hostile_main, NULL), 0);
}

/* A TLS client against servers that are not TLS or stop in the middle of the handshake. */
static int bad_server(weft_stream_t *s, void *arg)
{
    int mode = *(int *)arg;
    char buf[4096];
    if (mode == 0)
        return weft_stream_write(s, "220 plain SMTP here\r\n", 21);
    /* read the ClientHello (everything that came), then close without answering */
    CHECK(weft_stream_read(s, buf, sizeof(buf)) > 0);
    while (recv(weft_stream_fd(s), buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    return 0;
}

static int bad_server_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *cctx = tt_client_ctx(NULL);
    for (int mode = 0; mode < 2; mode++) {
        weft_server_t *srv;
        CHECK_EQ(weft_server_start(&srv, bad_server, &mode, "127.0.0.1", 0, NULL), 0);
        weft_stream_t *c;
        char err[256];
        struct weft_tls_connect_opts co = {.connect = {.errbuf = err, .errlen = sizeof(err)}};
        int r = weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), &co);
        fprintf(stderr, "  %s server: %s (%s)\n", mode == 0 ? "plaintext" : "silent-closing",
                weft_strerror(r), err);
        CHECK_EQ(r, mode == 0 ? WEFT_ETLS_NOT_TLS : WEFT_ETLS_EOF);
        stop(srv);
    }
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_bad_servers(void)
{
    CHECK_EQ(run_virtual(bad_server_main, NULL), 0);
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
    struct srv_stats st = {0};
    weft_server_t *srv = start_echo(sctx, &st);
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
    stop(srv);
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
    struct srv_stats st = {0};
    weft_server_t *srv;
    struct weft_server_opts so = {.backlog = 2048};
    CHECK_EQ(weft_tls_server_start(&srv, sctx, echo_lines, &st, "127.0.0.1", 0, &so), 0);
    m.port = weft_server_port(srv);
    weft_task_t **ts = calloc((size_t)count, sizeof(*ts));
    for (int i = 0; i < count; i++)
        CHECK_EQ(weft_spawn(&ts[i], many_client, &m), 0);
    CHECK_EQ(weft_gather(ts, (size_t)count, NULL, 0), 0);
    for (int i = 0; i < count; i++)
        weft_task_release(ts[i]);
    free(ts);
    CHECK_EQ(m.ok, count);
    stop(srv);
    CHECK_EQ(st.served, count);
    weft_tls_ctx_release(sctx);
    weft_tls_ctx_release(m.cctx);
    return 0;
}

static void test_concurrent_handshakes(void)
{
    CHECK_EQ(weft_run(many_main, NULL), 0);
}

TEST_MAIN(test_stream_calls, test_bulk_backpressure, test_resumption, test_server_suite_order,
          test_verification_failures,
          test_client_certificates, test_tls12_and_config, test_pem_in_memory,
          test_one_byte_transport, test_start_tls, test_hostile_peers, test_bad_servers,
          test_deadlines_and_cancel, test_shutdown_deadline, test_concurrent_handshakes)
