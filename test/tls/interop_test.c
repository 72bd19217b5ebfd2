/*
 * TLS against peers nobody here wrote: CPython's ssl module (client and server), `openssl
 * s_client` (including a TLS 1.2 renegotiation attempt, refused) and `openssl s_server`, curl,
 * and the tls_echo example. Every child is bounded in time; a missing program skips its case.
 */
#include "tlstest.h"

#include <signal.h>

#define CHILD_SECONDS 30.0

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Run `sh -c cmd` and collect its stdout. Returns its exit status. */
static int run_sh(const char *cmd, char *out, size_t cap)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    int fd;
    pid_t pid = sp_spawn(argv, &fd);
    sp_read_all(fd, out, cap, weft_deadline_in(CHILD_SECONDS));
    return sp_wait(pid, weft_deadline_in(CHILD_SECONDS));
}

/* ---- CPython ssl as the client ---- */

static int py_client_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", "http/1.1");
    struct tt_srv_stats st = {0};
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, tt_echo_lines, &st, "127.0.0.1", 0, NULL), 0);
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof(cmd), "python3 %s/py_tls_peer.py client 127.0.0.1 %d %s",
             sp_srcdir(__FILE__), weft_server_port(srv), tt_path("ca.pem"));
    CHECK_EQ(run_sh(cmd, out, sizeof(out)), 0);
    fprintf(stderr, "%s", out);
    CHECK(strstr(out, "OK TLSv1.3 http/1.1 False\nOK TLSv1.3 http/1.1 True\n") != NULL);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);
    CHECK_EQ(st.served, 2);
    CHECK_EQ(st.last, 0); /* unwrap(): close_notify, a clean end */
    CHECK_STR(st.alpn, "http/1.1");
    weft_tls_ctx_release(sctx);
    return 0;
}

static void test_python_client(void)
{
    sp_require("python3");
    CHECK_EQ(weft_run(py_client_main, NULL), 0);
}

/* ---- CPython ssl as the server ---- */

static int py_server_main(void *arg)
{
    (void)arg;
    char script[1024];
    snprintf(script, sizeof(script), "%s/py_tls_peer.py", sp_srcdir(__FILE__));
    char *argv[] = {"python3", script, "server", (char *)tt_path("server.pem"),
                    (char *)tt_path("server.key"), "3", NULL};
    int fd;
    pid_t pid = sp_spawn(argv, &fd);
    weft_stream_t *out;
    CHECK_EQ(weft_stream_new(&out, fd, NULL), 0);
    const char *p;
    size_t n;
    CHECK_EQ(weft_stream_readline_dl(out, &p, &n, weft_deadline_in(CHILD_SECONDS)), 0);
    CHECK(n > 5 && memcmp(p, "PORT ", 5) == 0);
    int port = atoi(p + 5);
    weft_tls_ctx_t *cctx = tt_client_ctx("h2,http/1.1");
    for (int i = 0; i < 3; i++) {
        weft_stream_t *c;
        CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", port, NULL), 0);
        CHECK_EQ(weft_tls_session_reused(c), i > 0);
        CHECK_STR(weft_tls_alpn(c), "http/1.1");
        CHECK_EQ(weft_stream_write(c, "ping\n", 5), 0);
        CHECK_EQ(weft_stream_readline(c, &p, &n), 0);
        CHECK(n == 5 && memcmp(p, "ping\n", 5) == 0);
        if (i < 2)
            CHECK_EQ(weft_tls_shutdown_dl(c, weft_deadline_in(CHILD_SECONDS)), 0);
        else
            weft_stream_abort(c); /* no close_notify: python sees a truncation */
        weft_stream_release(c);
    }
    const char *all;
    CHECK_EQ(weft_stream_read_all_dl(out, &all, &n, weft_deadline_in(CHILD_SECONDS)), 0);
    fprintf(stderr, "%.*s", (int)n, all);
    CHECK(n == 22 && memcmp(all, "clean\nclean\ntruncated\n", 22) == 0);
    weft_stream_release(out);
    CHECK_EQ(sp_wait(pid, weft_deadline_in(CHILD_SECONDS)), 0);
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_python_server(void)
{
    sp_require("python3");
    CHECK_EQ(weft_run(py_server_main, NULL), 0);
}

/* ---- openssl s_client: echo, then a renegotiation attempt that the server refuses ---- */

static int s_client_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", NULL);
    struct tt_srv_stats st = {0};
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, tt_echo_lines, &st, "127.0.0.1", 0, NULL), 0);
    int port = weft_server_port(srv);
    char in[300], cmd[2048], out[16384];
    snprintf(in, sizeof(in), "%s", tt_path("s_client.in"));
    write_file(in, "hello from s_client\nQUIT\n");
    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s "
             "-verify_return_error -quiet < %s 2>/dev/null",
             port, tt_path("ca.pem"), in);
    CHECK_EQ(run_sh(cmd, out, sizeof(out)), 0);
    CHECK(strstr(out, "hello from s_client\n") != NULL);

    /* TLS 1.2 and "R": s_client asks to renegotiate; the server refuses and stays healthy */
    write_file(in, "R\n");
    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s "
             "-tls1_2 < %s 2>&1",
             port, tt_path("ca.pem"), in);
    run_sh(cmd, out, sizeof(out));
    CHECK(strstr(out, "RENEGOTIATING") != NULL);
    fprintf(stderr, "  renegotiation: %s\n",
            strstr(out, "no renegotiation") ? "refused (no_renegotiation alert)" : "not done");
    CHECK(strstr(out, "no renegotiation") != NULL || strstr(out, "alert") != NULL);
    /* the server still serves */
    write_file(in, "still here\nQUIT\n");
    snprintf(cmd, sizeof(cmd),
             "openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s "
             "-verify_return_error -quiet < %s 2>/dev/null",
             port, tt_path("ca.pem"), in);
    CHECK_EQ(run_sh(cmd, out, sizeof(out)), 0);
    CHECK(strstr(out, "still here\n") != NULL);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);
    CHECK_EQ(st.served, 3);
    weft_tls_ctx_release(sctx);
    return 0;
}

static void test_openssl_s_client(void)
{
    sp_require("openssl");
    CHECK_EQ(weft_run(s_client_main, NULL), 0);
}

/* ---- openssl s_server -www: a weft client fetches its status page ---- */

static int s_server_main(void *arg)
{
    (void)arg;
    int port = test_free_port();
    char portarg[16];
    snprintf(portarg, sizeof(portarg), "%d", port);
    char *argv[] = {"openssl", "s_server", "-accept", portarg, "-cert",
                    (char *)tt_path("server.pem"), "-key", (char *)tt_path("server.key"),
                    "-www", "-quiet", "-alpn", "http/1.1", NULL};
    pid_t pid = sp_spawn(argv, NULL);
    weft_tls_ctx_t *cctx = tt_client_ctx("http/1.1");
    weft_stream_t *c = NULL;
    int64_t deadline = weft_deadline_in(CHILD_SECONDS);
    int r;
    while ((r = weft_tls_connect(&c, cctx, "localhost", port, NULL)) == -ECONNREFUSED &&
           weft_time(NULL) < deadline)
        weft_sleep(0.02);
    CHECK_EQ(r, 0);
    for (int i = 0; i < 2; i++) {
        if (i == 1)
            CHECK_EQ(weft_tls_connect(&c, cctx, "localhost", port, NULL), 0);
        CHECK_STR(weft_tls_alpn(c), "http/1.1");
        CHECK_EQ(weft_stream_write(c, "GET / HTTP/1.0\r\n\r\n", 18), 0);
        const char *p;
        size_t n;
        CHECK_EQ(weft_stream_read_all_dl(c, &p, &n, deadline), 0);
        CHECK(n > 20 && memcmp(p, "HTTP/1.0 200 ok", 15) == 0);
        CHECK(memmem(p, n, "TLSv1.3", 7) != NULL);
        if (i == 1)
            CHECK(weft_tls_session_reused(c));
        weft_stream_release(c);
    }
    kill(pid, SIGTERM);
    sp_wait(pid, weft_deadline_in(5));
    weft_tls_ctx_release(cctx);
    return 0;
}

static void test_openssl_s_server(void)
{
    sp_require("openssl");
    CHECK_EQ(weft_run(s_server_main, NULL), 0);
}

/* ---- curl against a weft HTTPS server ---- */

static int http_once(weft_stream_t *s, void *arg)
{
    struct tt_srv_stats *st = arg;
    const char *alpn = weft_tls_alpn(s);
    snprintf(st->alpn, sizeof(st->alpn), "%s", alpn ? alpn : "");
    const char *p;
    size_t n;
    int r = weft_stream_readuntil(s, "\r\n\r\n", 4, &p, &n);
    if (r < 0)
        return r;
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello, curl\n";
    r = weft_stream_write(s, resp, sizeof(resp) - 1);
    st->served++;
    return r;
}

static int curl_main(void *arg)
{
    (void)arg;
    weft_tls_ctx_t *sctx = tt_server_ctx("server.pem", "server.key", "h2,http/1.1");
    struct tt_srv_stats st = {0};
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, http_once, &st, "127.0.0.1", 0, NULL), 0);
    int port = weft_server_port(srv);
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof(cmd),
             "curl -sS --http1.1 --max-time 20 --cacert %s --resolve localhost:%d:127.0.0.1 "
             "https://localhost:%d/ https://localhost:%d/again",
             tt_path("ca.pem"), port, port, port);
    CHECK_EQ(run_sh(cmd, out, sizeof(out)), 0);
    CHECK_STR(out, "hello, curl\nhello, curl\n");
    CHECK_STR(st.alpn, "http/1.1");
    /* and curl refuses us without the CA (its verification, not ours, fails) */
    snprintf(cmd, sizeof(cmd),
             "curl -sS --max-time 20 --resolve localhost:%d:127.0.0.1 https://localhost:%d/ "
             "2>/dev/null",
             port, port);
    CHECK(run_sh(cmd, out, sizeof(out)) != 0);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);
    CHECK_EQ(st.served, 2);
    weft_tls_ctx_release(sctx);
    return 0;
}

static void test_curl(void)
{
    sp_require("curl");
    CHECK_EQ(weft_run(curl_main, NULL), 0);
}

/* ---- the example: tls_echo server and client ---- */

static int example_main(void *arg)
{
    (void)arg;
    char exe[4096];
    sp_built("../../examples/tls_echo", exe, sizeof(exe));
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "  %s not built: skipped\n", exe);
        return 0;
    }
    char *argv[] = {exe, "server", "0", (char *)tt_path("server.pem"),
                    (char *)tt_path("server.key"), NULL};
    int fd;
    pid_t pid = sp_spawn(argv, &fd);
    weft_stream_t *out;
    CHECK_EQ(weft_stream_new(&out, fd, NULL), 0);
    const char *p;
    size_t n;
    CHECK_EQ(weft_stream_readline_dl(out, &p, &n, weft_deadline_in(CHILD_SECONDS)), 0);
    const char *colon = memrchr(p, ':', n);
    CHECK(colon != NULL);
    int port = atoi(colon + 1);
    char in[300], cmd[8192], got[4096];
    snprintf(in, sizeof(in), "%s", tt_path("example.in"));
    write_file(in, "one\ntwo two\nthree\n");
    snprintf(cmd, sizeof(cmd), "%s client localhost %d %s < %s", exe, port, tt_path("ca.pem"), in);
    CHECK_EQ(run_sh(cmd, got, sizeof(got)), 0);
    CHECK_STR(got, "one\ntwo two\nthree\n");
    /* a client that does not trust the server's CA fails verification */
    snprintf(cmd, sizeof(cmd), "%s client localhost %d %s < %s 2>&1", exe, port,
             tt_path("other-ca.pem"), in);
    CHECK(run_sh(cmd, got, sizeof(got)) != 0);
    CHECK(strstr(got, "verif") != NULL);
    kill(pid, SIGTERM);
    CHECK_EQ(sp_wait(pid, weft_deadline_in(CHILD_SECONDS)), 0);
    weft_stream_release(out);
    return 0;
}

static void test_example_tls_echo(void)
{
    CHECK_EQ(weft_run(example_main, NULL), 0);
}

TEST_MAIN(test_python_client, test_python_server, test_openssl_s_client, test_openssl_s_server,
          test_curl, test_example_tls_echo)
