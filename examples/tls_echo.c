/*
 * tls_echo: a TLS line echo, server and client (the weft-tls module).
 *   tls_echo server PORT CERT KEY      serve on 127.0.0.1:PORT (0: any free port, printed) until
 *                                      SIGINT / SIGTERM: every line comes back
 *   tls_echo client HOST PORT CAFILE   send the lines of standard input, print the replies;
 *                                      the server must verify against CAFILE as HOST
 * docs/tls.md shows how to make a test CA and a certificate with the openssl command.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <weft.h>
#include <weft/tls.h>

#define IDLE_SECONDS 300.0

static int echo(weft_stream_t *s, void *arg)
{
    (void)arg;
    for (;;) {
        const char *line;
        size_t n;
        int r = weft_stream_readline_dl(s, &line, &n, weft_deadline_in(IDLE_SECONDS));
        if (r == WEFT_ELIMIT)
            continue; /* an over-long line is dropped, as asyncio does */
        if (r < 0 || n == 0)
            return 0; /* the end (clean or not), a timeout, or a broken peer */
        r = weft_stream_write(s, line, n);
        if (r == 0)
            r = weft_stream_drain(s);
        if (r < 0)
            return 0;
    }
}

/* Wait for SIGINT or SIGTERM in this task (a signalfd read through weft_wait_fd). */
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

static char **args;

static int server_main(void *arg)
{
    (void)arg;
    int port = (int)strtol(args[2], NULL, 10);
    char err[256] = "";
    struct weft_tls_opts o = {.cert_file = args[3], .key_file = args[4], .errbuf = err,
                              .errlen = sizeof(err)};
    weft_tls_ctx_t *ctx;
    int r = weft_tls_server_ctx_new(&ctx, &o);
    if (r < 0) {
        fprintf(stderr, "tls_echo: %s: %s\n", weft_strerror(r), err);
        return r;
    }
    weft_server_t *srv;
    r = weft_tls_server_start(&srv, ctx, echo, NULL, "127.0.0.1", port, NULL);
    weft_tls_ctx_release(ctx); /* the server holds its own reference */
    if (r < 0) {
        fprintf(stderr, "tls_echo: port %d: %s\n", port, weft_strerror(r));
        return r;
    }
    printf("tls_echo: serving on 127.0.0.1:%d\n", weft_server_port(srv));
    fflush(stdout);
    int sig = wait_for_signal();
    printf("tls_echo: signal %d, closing\n", sig);
    weft_server_close(srv);
    weft_server_close_clients(srv); /* their reads see the end; close sends close_notify */
    weft_server_wait_closed_dl(srv, weft_deadline_in(5.0));
    weft_server_release(srv);
    return 0;
}

static int client_main(void *arg)
{
    (void)arg;
    const char *host = args[2];
    int port = (int)strtol(args[3], NULL, 10);
    struct weft_tls_opts o = {.ca_file = args[4]};
    weft_tls_ctx_t *ctx;
    int r = weft_tls_client_ctx_new(&ctx, &o);
    if (r < 0) {
        fprintf(stderr, "tls_echo: %s: %s\n", args[4], weft_strerror(r));
        return r;
    }
    char err[512] = "";
    struct weft_tls_connect_opts co = {.connect = {.errbuf = err, .errlen = sizeof(err)}};
    weft_stream_t *s;
    r = weft_tls_connect(&s, ctx, host, port, &co);
    weft_tls_ctx_release(ctx);
    if (r < 0) {
        fprintf(stderr, "tls_echo: %s (%s)\n", weft_strerror(r), err);
        return r;
    }
    /* Standard input through a stream too, so that a slow pipe never blocks the loop. */
    weft_stream_t *in;
    r = weft_stream_new(&in, dup(0), NULL);
    while (r == 0) {
        const char *line, *reply;
        size_t n, m;
        r = weft_stream_readline(in, &line, &n);
        if (r == WEFT_ELIMIT) {
            r = 0;
            continue;
        }
        if (r < 0 || n == 0)
            break;
        r = weft_stream_write(s, line, n);
        if (r == 0 && line[n - 1] != '\n')
            r = weft_stream_write(s, "\n", 1); /* the last line had no newline */
        if (r == 0)
            r = weft_stream_readline(s, &reply, &m);
        if (r == 0 && m == 0)
            r = WEFT_EOF; /* the server went away */
        if (r == 0)
            fwrite(reply, 1, m, stdout);
    }
    fflush(stdout);
    if (r < 0)
        fprintf(stderr, "tls_echo: %s (%s)\n", weft_strerror(r), weft_tls_reason(s));
    int c = weft_tls_shutdown_dl(s, weft_deadline_in(5.0)); /* close_notify both ways */
    weft_stream_release(s);
    weft_stream_release(in);
    return r < 0 ? r : c;
}

int main(int argc, char **argv)
{
    args = argv;
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "server") == 0)
        return weft_run(server_main, NULL) < 0 ? 1 : 0;
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return weft_run(client_main, NULL) < 0 ? 1 : 0;
    fprintf(stderr, "usage: tls_echo server PORT CERT KEY\n"
                    "       tls_echo client HOST PORT CAFILE\n");
    return 2;
}
