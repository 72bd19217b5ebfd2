/*
 * http_hello: a small HTTP/1.1 server answering "Hello, World!" to every request.
 *   http_hello [PORT] [HOST]         (default 8080 on 127.0.0.1; try: curl -v 127.0.0.1:8080/)
 * Keep-alive as HTTP/1.1 says (HTTP/1.0 closes unless it asks to keep the connection), request
 * bodies with Content-Length are skipped, anything malformed gets a 400 and a close. The parsing
 * is minimal on purpose: the request line and the two headers that matter.
 * Slow or idle clients are dropped by deadlines: 10 s to send a request head, 60 s idle between
 * requests. Stops cleanly on SIGINT / SIGTERM.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <weft.h>

#define HEAD_SECONDS 10.0
#define IDLE_SECONDS 60.0
#define MAX_HEADERS  100

static const char HELLO[] = "Hello, World!\n";

struct request {
    bool keep_alive;
    long long body; /* Content-Length, or 0 */
    bool head;      /* a HEAD request: no body in the answer */
};

/* Does the header line `line` (no CRLF) have the name `name`? Then *value is its value. */
static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

/* Strip the line ending ("\r\n" or "\n") off a line from readline. */
static size_t trim(const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return len;
}

/*
 * Read one request head. Returns 1 with *rq filled, 0 when the client closed between
 * requests, or a negative errno (-EPROTO: malformed).
 */
static int read_request(weft_stream_t *s, struct request *rq)
{
    const char *line;
    size_t len;
    /* Idle between requests, then a bounded time for the whole head. */
    int r = weft_stream_readline_dl(s, &line, &len, weft_deadline_in(IDLE_SECONDS));
    if (r < 0)
        return r;
    if (len == 0)
        return 0;
    int64_t deadline = weft_deadline_in(HEAD_SECONDS);
    len = trim(line, len);
    /* METHOD SP TARGET SP HTTP/1.x */
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (sp1 == NULL || sp2 == NULL || line + len - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7))
        return -EPROTO;
    char minor = sp2[8];
    rq->keep_alive = minor == '1';
    rq->head = sp1 - line == 4 && memcmp(line, "HEAD", 4) == 0;
    rq->body = 0;
    for (int i = 0;; i++) {
        if (i == MAX_HEADERS)
            return -EPROTO;
        r = weft_stream_readline_dl(s, &line, &len, deadline);
        if (r < 0)
            return r;
        if (len == 0)
            return -EPROTO; /* the end of the stream inside a head */
        len = trim(line, len);
        if (len == 0)
            return 1; /* the empty line: end of the head */
        const char *v;
        size_t vl;
        if (header_is(line, len, "Connection", &v, &vl)) {
            if (vl == 5 && strncasecmp(v, "close", 5) == 0)
                rq->keep_alive = false;
            else if (vl == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                rq->keep_alive = true;
        } else if (header_is(line, len, "Content-Length", &v, &vl)) {
            char num[24];
            if (vl == 0 || vl >= sizeof(num))
                return -EPROTO;
            memcpy(num, v, vl);
            num[vl] = '\0';
            char *end;
            rq->body = strtoll(num, &end, 10);
            if (*end != '\0' || rq->body < 0)
                return -EPROTO;
        } else if (header_is(line, len, "Transfer-Encoding", &v, &vl)) {
            return -EPROTO; /* chunked request bodies: not in this example */
        }
    }
}

/* Read and drop `n` bytes of request body. */
static int skip_body(weft_stream_t *s, long long n)
{
    char buf[4096];
    while (n > 0) {
        size_t want = n < (long long)sizeof(buf) ? (size_t)n : sizeof(buf);
        int r = weft_stream_readexactly_dl(s, buf, want, NULL, weft_deadline_in(HEAD_SECONDS));
        if (r < 0)
            return r;
        n -= (long long)want;
    }
    return 0;
}

static int respond(weft_stream_t *s, int status, const char *reason, const char *body,
                   bool keep_alive, bool head)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, reason, strlen(body), keep_alive ? "keep-alive" : "close");
    int r = weft_stream_write(s, hdr, (size_t)n);
    if (r == 0 && !head)
        r = weft_stream_write(s, body, strlen(body));
    if (r == 0)
        r = weft_stream_drain(s);
    return r;
}

static int serve(weft_stream_t *s, void *arg)
{
    (void)arg;
    for (;;) {
        struct request rq = {0};
        int r = read_request(s, &rq);
        if (r == 0 || r == -ETIMEDOUT || r == -ECONNRESET || r == WEFT_ELIMIT || r == -EPROTO) {
            if (r == -EPROTO || r == WEFT_ELIMIT)
                respond(s, 400, "Bad Request", "bad request\n", false, false);
            return 0; /* the server closes the stream when we return */
        }
        if (r < 0)
            return r;
        if (skip_body(s, rq.body) < 0)
            return 0;
        if (respond(s, 200, "OK", HELLO, rq.keep_alive, rq.head) < 0 || !rq.keep_alive)
            return 0;
    }
}

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
    weft_server_t *srv;
    /* Request heads over 8 KiB are refused (readline's limit): a 400, not unbounded memory. */
    struct weft_server_opts o = {.stream.limit = 8192, .backlog = 512};
    int err = weft_server_start(&srv, serve, NULL, a->host, a->port, &o);
    if (err < 0) {
        fprintf(stderr, "http_hello: %s:%d: %s\n", a->host, a->port, weft_strerror(err));
        return err;
    }
    printf("http_hello: serving on http://%s:%d/\n", a->host, weft_server_port(srv));
    fflush(stdout);
    wait_for_signal();
    weft_server_close(srv);
    weft_server_close_clients(srv);
    weft_server_wait_closed_dl(srv, weft_deadline_in(5.0));
    weft_server_release(srv);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {argc > 2 ? argv[2] : "127.0.0.1",
                     argc > 1 ? (int)strtol(argv[1], NULL, 10) : 8080};
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, &a) < 0 ? 1 : 0;
}
