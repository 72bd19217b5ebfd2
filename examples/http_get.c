/*
 * http_get: fetch several URLs at once over plain HTTP/1.1, one task per URL.
 *   http_get [-b] URL...        e.g. http_get http://127.0.0.1:8080/ http://[::1]:8080/x
 * Each fetch resolves the host, connects with Happy Eyeballs, sends a GET and reads the answer
 * (Content-Length, chunked, or up to the end of the stream), all under one 10 s deadline.
 * Prints one line per URL in the order given ("-b" adds the bodies); exits 1 if any failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <weft.h>

#define FETCH_SECONDS 10.0
#define MAX_BODY      (64u << 20)

struct fetch {
    const char *url;
    char host[256];
    int port;
    const char *path;
    int status;
    char reason[64];
    char *body;
    size_t len;
    int err;
    char errtext[512];
};

/* Split "http://host[:port][/path]" (host may be "[v6]"). Returns 0 or -EINVAL. */
static int parse_url(struct fetch *f)
{
    const char *p = f->url;
    if (strncmp(p, "http://", 7) != 0)
        return -EINVAL;
    p += 7;
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (hend == NULL)
            return -EINVAL;
        p++;
    } else {
        hend = p + strcspn(p, ":/");
    }
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof(f->host))
        return -EINVAL;
    memcpy(f->host, p, hl);
    f->host[hl] = '\0';
    p = hend + (*hend == ']');
    f->port = 80;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535)
            return -EINVAL;
        f->port = (int)port;
        p = end;
    }
    f->path = *p == '/' ? p : "/";
    return *p == '\0' || *p == '/' ? 0 : -EINVAL;
}

static int append(struct fetch *f, const char *data, size_t n)
{
    if (f->len + n > MAX_BODY)
        return -EFBIG;
    char *b = realloc(f->body, f->len + n + 1);
    if (b == NULL)
        return -ENOMEM;
    memcpy(b + f->len, data, n);
    f->body = b;
    f->len += n;
    b[f->len] = '\0';
    return 0;
}

/*
 * Read one line into `buf` as a C string without its line ending (lines from the stream are not
 * NUL-terminated). Returns its length, WEFT_EOF at the end of the stream, or a negative errno.
 */
static int get_line(weft_stream_t *s, char *buf, size_t cap, int64_t dl)
{
    const char *line;
    size_t len;
    int r = weft_stream_readline_dl(s, &line, &len, dl);
    if (r < 0)
        return r;
    if (len == 0)
        return WEFT_EOF;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= cap)
        return -EPROTO;
    memcpy(buf, line, len);
    buf[len] = '\0';
    return (int)len;
}

/* Read exactly `n` body bytes. */
static int read_n(weft_stream_t *s, struct fetch *f, size_t n, int64_t dl)
{
    char buf[8192];
    while (n > 0) {
        size_t want = n < sizeof(buf) ? n : sizeof(buf);
        int r = weft_stream_readexactly_dl(s, buf, want, NULL, dl);
        if (r < 0)
            return r;
        if ((r = append(f, buf, want)) < 0)
            return r;
        n -= want;
    }
    return 0;
}

static int read_chunked(weft_stream_t *s, struct fetch *f, int64_t dl)
{
    char line[1024];
    for (;;) {
        int r = get_line(s, line, sizeof(line), dl);
        if (r < 0)
            return r;
        char *end;
        unsigned long n = strtoul(line, &end, 16);
        if (end == line)
            return -EPROTO;
        if (n == 0)
            break;
        if ((r = read_n(s, f, n, dl)) < 0)
            return r;
        if ((r = get_line(s, line, sizeof(line), dl)) != 0) /* the CRLF after the data */
            return r < 0 ? r : -EPROTO;
    }
    for (;;) { /* trailers, up to the empty line */
        int r = get_line(s, line, sizeof(line), dl);
        if (r <= 0)
            return r;
    }
}

static int fetch_on(weft_stream_t *s, struct fetch *f, int64_t dl)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: weft-http_get\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     f->path, f->host, f->port);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    int r = weft_stream_write(s, req, (size_t)n);
    if (r == 0)
        r = weft_stream_drain_dl(s, dl);
    if (r < 0)
        return r;
    char line[8192];
    if ((r = get_line(s, line, sizeof(line), dl)) < 0)
        return r == WEFT_EOF ? -EPROTO : r;
    if (r < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return -EPROTO;
    f->status = (int)strtol(line + 9, NULL, 10);
    snprintf(f->reason, sizeof(f->reason), "%.*s", (int)sizeof(f->reason) - 1,
             r > 13 ? line + 13 : "");
    long long clen = -1;
    bool chunked = false;
    for (;;) {
        if ((r = get_line(s, line, sizeof(line), dl)) < 0)
            return r == WEFT_EOF ? -EPROTO : r;
        if (r == 0)
            break;
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            chunked = true;
    }
    if (chunked)
        return read_chunked(s, f, dl);
    if (clen >= 0)
        return read_n(s, f, (size_t)clen, dl);
    const char *all;
    size_t len;
    if ((r = weft_stream_read_all_dl(s, &all, &len, dl)) < 0)
        return r;
    return append(f, all, len);
}

static int fetch_main(void *arg)
{
    struct fetch *f = arg;
    if (parse_url(f) < 0) {
        snprintf(f->errtext, sizeof(f->errtext), "not an http:// URL");
        return f->err = -EINVAL;
    }
    int64_t dl = weft_deadline_in(FETCH_SECONDS);
    struct weft_connect_opts o = {
        .happy_eyeballs_delay = 0.25, .errbuf = f->errtext, .errlen = sizeof(f->errtext)};
    weft_stream_t *s;
    int r = weft_stream_connect_dl(&s, f->host, f->port, &o, dl);
    if (r < 0)
        return f->err = r;
    r = fetch_on(s, f, dl);
    weft_stream_close(s);
    weft_stream_release(s);
    if (r < 0)
        snprintf(f->errtext, sizeof(f->errtext), "%s", weft_strerror(r));
    return f->err = r;
}

struct job {
    struct fetch *f;
    int n;
    bool bodies;
};

static int main_task(void *arg)
{
    struct job *j = arg;
    weft_task_t **t = calloc((size_t)j->n, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (int i = 0; i < j->n; i++) {
        int r = weft_spawn(&t[i], fetch_main, &j->f[i]); /* all fetches run at once */
        if (r < 0) {
            j->f[i].err = r;
            snprintf(j->f[i].errtext, sizeof(j->f[i].errtext), "%s", weft_strerror(r));
        }
    }
    int failed = 0;
    for (int i = 0; i < j->n; i++) {
        struct fetch *f = &j->f[i];
        if (t[i] != NULL) {
            weft_join(t[i]);
            weft_task_release(t[i]);
        }
        if (f->err < 0) {
            printf("%s -> error: %s\n", f->url, f->errtext);
            failed = 1;
        } else {
            printf("%s -> %d %s, %zu bytes\n", f->url, f->status, f->reason, f->len);
            if (j->bodies && f->len > 0)
                fwrite(f->body, 1, f->len, stdout);
        }
        free(f->body);
    }
    free(t);
    return failed;
}

int main(int argc, char **argv)
{
    struct job j = {0};
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "-b") == 0) {
        j.bodies = true;
        first = 2;
    }
    j.n = argc - first;
    if (j.n <= 0) {
        fprintf(stderr, "usage: http_get [-b] http://host[:port]/path ...\n");
        return 2;
    }
    j.f = calloc((size_t)j.n, sizeof(*j.f));
    if (j.f == NULL)
        return 1;
    for (int i = 0; i < j.n; i++)
        j.f[i].url = argv[first + i];
    int r = weft_run(main_task, &j);
    free(j.f);
    return r != 0 ? 1 : 0;
}
