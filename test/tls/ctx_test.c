/*
 * TLS contexts, weft against weft in one loop: session resumption, the server's suite order,
 * verification failures (wrong name, unknown CA, expired), client certificates, TLS 1.2 and
 * configuration errors, certificates and keys from memory.
 */
#include "tlstest.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/ssl.h>

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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
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
    tt_stop(srv);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    snprintf(got, sizeof(got), "%s", weft_tls_cipher(c));
    weft_stream_release(c);
    tt_stop(srv);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
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
    tt_stop(srv);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", weft_server_port(srv), NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, name), WEFT_ETLS_VERIFY);
    CHECK_EQ(weft_tls_verify_result(c), want);
    CHECK(strstr(weft_tls_reason(c), "certificate verify failed") != NULL);
    CHECK_EQ(weft_stream_read(c, &st, 1), WEFT_ETLS_VERIFY); /* the stream carries the error */
    CHECK_EQ(weft_stream_write(c, "x", 1), -EPIPE); /* aborted */
    weft_stream_release(c);
    tt_stop(srv);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
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
    tt_stop(srv);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    for (int i = 0; i < 2; i++) {
        weft_stream_t *c;
        CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
        CHECK_STR(weft_tls_version(c), "TLSv1.2");
        CHECK(weft_tls_alpn(c) == NULL); /* no common protocol: none */
        CHECK_EQ(weft_tls_session_reused(c), i == 1);
        weft_stream_release(c);
    }
    tt_stop(srv);
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
    CHECK_EQ(weft_tls_server_start(&srv2, cc, tt_echo_lines, NULL, "127.0.0.1", 0, NULL), -EINVAL);
    /* the server frees the handler's arg through opts.arg_free once it is gone */
    struct weft_server_opts fo = {.arg_free = free_arg};
    int *boxed = malloc(sizeof(int));
    CHECK_EQ(weft_tls_server_start(&srv2, sc, tt_echo_lines, boxed, "127.0.0.1", 0, &fo), 0);
    tt_stop(srv2);
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
    struct tt_srv_stats st = {0};
    weft_server_t *srv = tt_start_echo(sctx, &st);
    weft_stream_t *c;
    CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", weft_server_port(srv), NULL), 0);
    weft_stream_release(c);
    tt_stop(srv);
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

TEST_MAIN(test_resumption, test_server_suite_order, test_verification_failures, test_client_certificates, test_tls12_and_config, test_pem_in_memory)
