/*
 * weft-bench-server: the echo and http contracts of the peers harness
 * (../shared/bench/peers/README.md), built on weft's streams.
 *   weft-bench-server echo PORT   TCP echo server on 127.0.0.1:PORT
 *   weft-bench-server http PORT   HTTP/1.1 keep-alive "Hello, World!" server on 127.0.0.1:PORT
 * One thread, one task per connection, until SIGTERM (or SIGINT): a task reads the signal from
 * a signalfd, closes the server and the connections, and the program exits cleanly.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <weft.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
                           "\r\nHello, World!";

static int echo_handler(weft_stream_t *s, void *arg)
{
    (void)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = weft_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            return 0;
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            return 0;
    }
}

/* Answer every request (a head ending in an empty line; no bodies: GETs). */
static int http_handler(weft_stream_t *s, void *arg)
{
    (void)arg;
    for (;;) {
        const char *req;
        size_t len;
        if (weft_stream_readuntil(s, "\r\n\r\n", 4, &req, &len) < 0)
            return 0;
        if (weft_stream_write(s, RESP, sizeof(RESP) - 1) < 0 || weft_stream_drain(s) < 0)
            return 0;
    }
}

struct ctx {
    weft_stream_handler_fn handler;
    int port;
};

static int main_task(void *arg)
{
    struct ctx *c = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        return -errno;
    weft_server_t *srv;
    struct weft_server_opts o = {.backlog = 1024};
    /* WEFT_BENCH_STACK=compact: connection tasks share one stack (WEFT_STACK_COMPACT). */
    const char *mode = getenv("WEFT_BENCH_STACK");
    if (mode != NULL && strcmp(mode, "compact") == 0)
        o.stack_mode = WEFT_STACK_COMPACT;
    int err = weft_server_start(&srv, c->handler, NULL, "127.0.0.1", c->port, &o);
    if (err < 0) {
        fprintf(stderr, "weft-bench-server: listen on 127.0.0.1:%d: %s\n", c->port,
                weft_strerror(err));
        weft_close(sfd);
        return err;
    }
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof(si));
        if (n == (ssize_t)sizeof(si))
            break;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (weft_wait_fd(sfd, WEFT_READABLE) < 0)
            break;
    }
    weft_close(sfd);
    weft_server_close(srv);
    weft_server_close_clients(srv);
    weft_server_wait_closed_dl(srv, weft_deadline_in(2.0));
    weft_server_release(srv);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "http") != 0)) {
        fprintf(stderr, "usage: weft-bench-server echo|http PORT\n");
        return 2;
    }
    struct ctx c = {strcmp(argv[1], "echo") == 0 ? echo_handler : http_handler,
                    (int)strtol(argv[2], NULL, 10)};
    if (c.port <= 0 || c.port > 65535) {
        fprintf(stderr, "weft-bench-server: bad port %s\n", argv[2]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int r = weft_run(main_task, &c);
    return r < 0 ? 1 : 0;
}
