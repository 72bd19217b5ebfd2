/*
 * HTTPS through the TLS module (when libweft-http was built with it): the server with a TLS
 * context (test/tls/mkcerts.sh's localhost certificate), curl over https (keep-alive reuse, a
 * chunked upload, a file response: no sendfile under TLS), and a weft TLS client pipelining
 * requests. Skipped (77) without the TLS module, curl or openssl.
 */
#include "net/spawn.h"

#include <weft/http.h>

#ifndef WEFT_HTTP_WITH_TLS
int main(void)
{
    fprintf(stderr, "libweft-http built without the TLS module: skipped\n");
    return 77;
}
#else
#include <weft/tls.h>

#include <sys/stat.h>

static char dir[] = "/tmp/weft-https-XXXXXX";
static char out[1 << 16];
static int file_fd = -1;

static int handler(weft_http_request_t *req, void *arg)
{
    (void)arg;
    const struct weft_http_head *h = weft_http_request_head(req);
    if (weft_http_str_eq(h->path, "/file"))
        return weft_http_respond_file(req, 200, file_fd, 0, 100000);
    const char *d;
    size_t n;
    int r = weft_http_body_all(req, &d, &n);
    if (r < 0)
        return r;
    char b[128];
    int k = snprintf(b, sizeof(b), "%.*s %.*s %zu", (int)h->method.n, h->method.p,
                     (int)h->path.n, h->path.p, n);
    return weft_http_respond(req, 200, b, (size_t)k);
}

static int run(char *const argv[], char *buf, size_t cap)
{
    int o;
    pid_t pid = sp_spawn(argv, &o);
    int64_t dl = weft_deadline_in(30);
    sp_read_all(o, buf, cap, dl);
    return sp_wait(pid, dl);
}

static int main_task(void *arg)
{
    (void)arg;
    char cert[256], key[256], ca[256];
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    struct weft_tls_opts to = {.cert_file = cert, .key_file = key};
    weft_tls_ctx_t *ctx;
    CHECK_EQ(weft_tls_server_ctx_new(&ctx, &to), 0);
    struct weft_http_server_opts o = {.tls = ctx};
    weft_http_server_t *srv;
    CHECK_EQ(weft_http_server_start(&srv, handler, NULL, "127.0.0.1", 0, &o), 0);
    int port = weft_http_server_port(srv);
    char u1[128], u2[128], u3[128];
    snprintf(u1, sizeof(u1), "https://localhost:%d/a", port);
    snprintf(u2, sizeof(u2), "https://localhost:%d/b", port);
    snprintf(u3, sizeof(u3), "https://localhost:%d/file", port);
    char resolve[64];
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", port);
    char *a1[] = {"curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", resolve,
                  "-w", "|%{num_connects}\n", u1, "-H", "Transfer-Encoding: chunked",
                  "--data-binary", "0123456789", u2, NULL};
    int st = run(a1, out, sizeof(out));
    if (st != 0)
        fprintf(stderr, "curl: %d %s\n", st, out);
    CHECK_EQ(st, 0);
    /* curl applies the upload options to both URLs; the second reuses the TLS connection. */
    CHECK(strstr(out, "POST /a 10|1") != NULL);
    CHECK(strstr(out, "POST /b 10|0") != NULL);
    char *a2[] = {"curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", resolve,
                  "-o", "/dev/null", "-w", "%{size_download}", u3, NULL};
    CHECK_EQ(run(a2, out, sizeof(out)), 0);
    CHECK_STR(out, "100000");
    /* A weft TLS client: three pipelined requests on one connection. */
    weft_tls_ctx_t *cctx;
    struct weft_tls_opts co = {.ca_file = ca};
    CHECK_EQ(weft_tls_client_ctx_new(&cctx, &co), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_tls_connect(&s, cctx, "localhost", port, NULL), 0);
    const char *reqs = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_EQ(weft_stream_write(s, reqs, strlen(reqs)), 0);
    const char *all;
    size_t n;
    CHECK_EQ(weft_stream_read_all_dl(s, &all, &n, weft_deadline_in(10)), 0);
    CHECK(n < sizeof(out));
    memcpy(out, all, n);
    out[n] = '\0';
    const char *p1 = strstr(out, "GET /1 0"), *p2 = strstr(out, "GET /2 0"),
               *p3 = strstr(out, "GET /3 0");
    CHECK(p1 != NULL && p2 > p1 && p3 > p2);
    weft_stream_release(s);
    weft_tls_ctx_release(cctx);
    CHECK(weft_http_server_shutdown(srv, 1) >= 0);
    weft_http_server_release(srv);
    weft_tls_ctx_release(ctx);
    return 0;
}

int main(void)
{
    if (!sp_have("curl") || !sp_have("openssl")) {
        fprintf(stderr, "curl or openssl missing: skipped\n");
        return 77;
    }
    CHECK(mkdtemp(dir) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sh %s/../tls/mkcerts.sh %s", sp_srcdir(__FILE__), dir);
    CHECK_EQ(system(cmd), 0);
    char path[] = "/tmp/weft-https-file-XXXXXX";
    file_fd = mkstemp(path);
    CHECK(file_fd >= 0);
    unlink(path);
    static char data[100000];
    memset(data, 'f', sizeof(data));
    CHECK_EQ(write(file_fd, data, sizeof(data)), (ssize_t)sizeof(data));
    int r = weft_run(main_task, NULL);
    close(file_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(r, 0);
    fprintf(stderr, "1 cases passed\n");
    return 0;
}
#endif
