/*
 * The HTTP module's benchmark server: weft-bench-http PORT ROOT, on 127.0.0.1, one thread:
 *   /        "Hello, World!" (13 bytes, text/plain)      -- the peers' hello contract
 *   /json    a 1 KiB JSON document (application/json)
 *   /FILE    a static file from ROOT (e.g. a 64 KiB one), sendfile
 * until SIGTERM / SIGINT. weft-bench-http PORT ROOT CERT KEY serves HTTPS (when libweft-http was
 * built with the TLS module): bench/tls_compare.sh's `weft-http` row, beside nginx's http module.
 */
#include <weft.h>
#include <weft/http.h>
#ifdef WEFT_HTTP_WITH_TLS
#include <weft/tls.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

static char json[1024];
static int root_fd;
static const char *cert, *key;

static int handler(weft_http_request_t *req, void *arg)
{
    (void)arg;
    const struct weft_http_head *h = weft_http_request_head(req);
    if (h->path.n == 1) {
        weft_http_header_add(req, "Content-Type", "text/plain");
        return weft_http_respond(req, 200, "Hello, World!", 13);
    }
    if (weft_http_str_eq(h->path, "/json")) {
        weft_http_header_add(req, "Content-Type", "application/json");
        return weft_http_respond(req, 200, json, sizeof(json));
    }
    char name[256];
    if (h->path.n > 200 || memchr(h->path.p, '.', h->path.n) != NULL)
        return weft_http_respond(req, 404, "", 0);
    snprintf(name, sizeof(name), "%.*s", (int)h->path.n - 1, h->path.p + 1);
    int fd = openat(root_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return weft_http_respond(req, 404, "", 0);
    }
    weft_http_header_add(req, "Content-Type", "application/octet-stream");
    int r = weft_http_respond_file(req, 200, fd, 0, (size_t)st.st_size);
    close(fd);
    return r;
}

static int main_task(void *arg)
{
    int port = *(int *)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    weft_http_server_t *srv;
    struct weft_http_server_opts o = {.keepalive_timeout = 60, .backlog = 4096};
    int r;
#ifdef WEFT_HTTP_WITH_TLS
    weft_tls_ctx_t *ctx = NULL;
    if (cert != NULL) {
        struct weft_tls_opts to = {.cert_file = cert, .key_file = key};
        if ((r = weft_tls_server_ctx_new(&ctx, &to)) < 0) {
            fprintf(stderr, "weft-bench-http: %s: %s\n", cert, weft_strerror(r));
            return r;
        }
        o.tls = ctx;
    }
#else
    if (cert != NULL) {
        fprintf(stderr, "weft-bench-http: built without the TLS module\n");
        return -EPROTONOSUPPORT;
    }
#endif
    r = weft_http_server_start(&srv, handler, NULL, "127.0.0.1", port, &o);
    if (r < 0) {
        fprintf(stderr, "weft-bench-http: %s\n", weft_strerror(r));
        return r;
    }
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        if (weft_wait_fd(sfd, WEFT_READABLE) < 0)
            break;
    weft_close(sfd);
    weft_http_server_shutdown(srv, 1);
    weft_http_server_release(srv);
#ifdef WEFT_HTTP_WITH_TLS
    weft_tls_ctx_release(ctx);
#endif
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc == 4 || argc > 5) {
        fprintf(stderr, "usage: weft-bench-http PORT [ROOT [CERT KEY]]\n");
        return 2;
    }
    if (argc == 5) {
        cert = argv[3];
        key = argv[4];
    }
    int port = atoi(argv[1]);
    root_fd = open(argc > 2 ? argv[2] : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int n = snprintf(json, sizeof(json), "{\"items\":[");
    for (int i = 0; n < (int)sizeof(json) - 40; i++)
        n += snprintf(json + n, sizeof(json) - (size_t)n, "%s{\"id\":%d,\"ok\":true}", i ? "," : "", i);
    while (n < (int)sizeof(json) - 2)
        json[n++] = ' ';
    json[n++] = ']';
    json[n++] = '}';
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, &port) < 0 ? 1 : 0;
}
