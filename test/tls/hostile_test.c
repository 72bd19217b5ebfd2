/*
 * TLS against hostile peers and bad servers: a plaintext client, garbage mid-stream, a truncated
 * handshake, a peer that vanishes mid-record; servers that are not TLS or misbehave.
 */
#include "tlstest.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/ssl.h>

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

/* A TLS client that has sent the capture server a good line ("fine\n"), with the capture's
 * event reset for the next connection. */
static weft_stream_t *fine_client(struct capture *cp, int port, weft_tls_ctx_t *cctx)
{
    weft_stream_t *c;
    weft_event_init(&cp->done);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_tls_start(c, cctx, "localhost"), 0);
    CHECK_EQ(weft_stream_write(c, "fine\n", 5), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    return c;
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
    c = fine_client(&cp, port, cctx);
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
    c = fine_client(&cp, port, cctx);
    CHECK_EQ(raw_send(c, "\x17\x03\x03\x01\x00" "0123456789", 15), 0);
    CHECK_EQ(shutdown(weft_stream_fd(c), SHUT_WR), 0);
    CHECK_EQ(weft_event_wait(&cp.done), 0);
    fprintf(stderr, "  vanished mid-record: %s (%s)\n", weft_strerror(cp.rd), cp.reason);
    CHECK_EQ(cp.rd, WEFT_ETLS_EOF);
    weft_stream_release(c);

    /* a peer that closes between records without close_notify (abort), vs a clean close */
    c = fine_client(&cp, port, cctx);
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

    tt_stop(srv);
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
        tt_stop(srv);
    }
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_bad_servers(void)
{
    CHECK_EQ(run_virtual(bad_server_main, NULL), 0);
}

TEST_MAIN(test_hostile_peers, test_bad_servers)
