/*
 * http_server: a static file server on the HTTP module, with a JSON echo endpoint.
 *
 *   http_server PORT ROOT
 *
 * Serves the files under ROOT (GET and HEAD; Content-Type by extension; a directory serves its
 * index.html) and /api/echo, which answers any method with a JSON object holding the request's
 * method, path, query, headers and body length. Nothing above ROOT can be reached: the path is
 * percent-decoded and opened with openat2(RESOLVE_BENEATH), so "..", "%2e%2e" and symlinks
 * leading out of ROOT all fail (404). Listens on 127.0.0.1 (WEFT_HTTP_HOST overrides it).
 * SIGINT / SIGTERM: graceful shutdown (requests in flight get 5 s).
 */
#define _GNU_SOURCE
#include <weft.h>
#include <weft/http.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int root_fd = -1;
static char root_real[PATH_MAX];

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"css", "text/css"},                  {"js", "text/javascript"},
        {"json", "application/json"},         {"txt", "text/plain; charset=utf-8"},
        {"png", "image/png"},                 {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
        {"svg", "image/svg+xml"},             {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},         {"pdf", "application/pdf"},
        {"xml", "application/xml"},           {"webp", "image/webp"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot != NULL && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* Open `rel` under ROOT, never above it: openat2 with RESOLVE_BENEATH refuses "..", absolute
 * symlinks and symlinks whose target leaves ROOT (EXDEV). Without openat2 (Linux < 5.6), the
 * resolved real path must lie under ROOT's. */
static int open_beneath(const char *rel)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS)
        return fd >= 0 ? fd : -errno;
    char full[PATH_MAX * 2], real[PATH_MAX];
    snprintf(full, sizeof(full), "%s/%s", root_real, rel);
    if (realpath(full, real) == NULL)
        return -errno;
    size_t n = strlen(root_real);
    if (strncmp(real, root_real, n) != 0 || (real[n] != '/' && real[n] != '\0'))
        return -EXDEV;
    fd = open(real, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

static int text(weft_http_request_t *req, int status)
{
    char b[64];
    int n = snprintf(b, sizeof(b), "%d %s\n", status, weft_http_reason(status));
    weft_http_header_add(req, "Content-Type", "text/plain");
    return weft_http_respond(req, status, b, (size_t)n);
}

static int serve_file(weft_http_request_t *req, void *arg)
{
    (void)arg;
    const struct weft_http_head *h = weft_http_request_head(req);
    char path[PATH_MAX];
    ssize_t n = weft_http_pct_decode(h->path.p, h->path.n, path, sizeof(path) - 16);
    if (n < 0 || path[0] != '/')
        return text(req, n == -ENOSPC ? 414 : 400);
    const char *rel = path + 1;
    while (*rel == '/')
        rel++;
    if (*rel == '\0')
        rel = ".";
    int fd = open_beneath(rel);
    if (fd < 0)
        return text(req, fd == -EACCES ? 403 : 404);
    struct stat st;
    char idx[PATH_MAX + 16];
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        size_t len = strlen(rel);
        snprintf(idx, sizeof(idx), "%s%sindex.html", rel, rel[len - 1] == '/' ? "" : "/");
        rel = idx;
        fd = open_beneath(rel);
        if (fd < 0)
            return text(req, 404);
        if (fstat(fd, &st) < 0) {
            close(fd);
            return text(req, 404);
        }
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return text(req, 404);
    }
    weft_http_header_add(req, "Content-Type", content_type(rel));
    int r = weft_http_respond_file(req, 200, fd, 0, (size_t)st.st_size);
    close(fd);
    return r;
}

/* ---- /api/echo ---- */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *d, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (p == NULL)
            abort();
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, d, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A JSON string; bytes outside printable ASCII as \u00XX so the output is always valid. */
static void put_json(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", c);
            put(o, e, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
    put(o, "\"", 1);
}

static int echo(weft_http_request_t *req, void *arg)
{
    (void)arg;
    const struct weft_http_head *h = weft_http_request_head(req);
    const char *body;
    size_t blen;
    int r = weft_http_body_all(req, &body, &blen);
    if (r < 0)
        return r;
    struct out o = {0};
    puts_(&o, "{\"method\":");
    put_json(&o, h->method.p, h->method.n);
    puts_(&o, ",\"path\":");
    put_json(&o, h->path.p, h->path.n);
    puts_(&o, ",\"query\":");
    if (h->query.p != NULL)
        put_json(&o, h->query.p, h->query.n);
    else
        puts_(&o, "null");
    puts_(&o, ",\"headers\":[");
    for (size_t i = 0; i < h->nheaders; i++) {
        puts_(&o, i ? ",[" : "[");
        put_json(&o, h->headers[i].name.p, h->headers[i].name.n);
        puts_(&o, ",");
        put_json(&o, h->headers[i].value.p, h->headers[i].value.n);
        puts_(&o, "]");
    }
    char tail[64];
    snprintf(tail, sizeof(tail), "],\"body_length\":%zu}\n", blen);
    puts_(&o, tail);
    weft_http_header_add(req, "Content-Type", "application/json");
    r = weft_http_respond(req, 200, o.p, o.len);
    free(o.p);
    return r;
}

/* ---- main ---- */

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
        int r = weft_wait_fd(fd, WEFT_READABLE);
        if (r < 0) {
            weft_close(fd);
            return r;
        }
    }
    weft_close(fd);
    return (int)si.ssi_signo;
}

struct args {
    const char *host;
    int port;
};

static int main_task(void *arg)
{
    struct args *a = arg;
    weft_http_router_t *router;
    if (weft_http_router_new(&router) < 0 ||
        weft_http_route(router, "*", "/api/echo", echo, NULL) < 0 ||
        weft_http_route(router, "GET", "/{path*}", serve_file, NULL) < 0)
        return -ENOMEM;
    struct weft_http_server_opts o = {.server_name = "weft"};
    weft_http_server_t *srv;
    int err = weft_http_server_start(&srv, weft_http_router_handler, router, a->host, a->port, &o);
    if (err < 0) {
        fprintf(stderr, "http_server: %s:%d: %s\n", a->host, a->port, weft_strerror(err));
        weft_http_router_free(router);
        return err;
    }
    printf("http_server: serving %s on http://%s:%d/\n", root_real, a->host,
           weft_http_server_port(srv));
    fflush(stdout);
    wait_for_signal();
    int n = weft_http_server_shutdown(srv, 5.0);
    if (n > 0)
        fprintf(stderr, "http_server: %d connection(s) cancelled at shutdown\n", n);
    weft_http_server_release(srv);
    weft_http_router_free(router);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: http_server PORT ROOT\n");
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "http_server: bad port '%s'\n", argv[1]);
        return 2;
    }
    root_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0 || realpath(argv[2], root_real) == NULL) {
        fprintf(stderr, "http_server: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    const char *host = getenv("WEFT_HTTP_HOST");
    struct args a = {host != NULL && host[0] ? host : "127.0.0.1", (int)port};
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, &a) < 0 ? 1 : 0;
}
