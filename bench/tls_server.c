/*
 * The weft TLS echo server of the TLS benchmarks (bench/tls_compare.sh): every connection's task
 * reads what comes and writes it back (keep-alive), over weft-tls with one shared context.
 *   weft-bench-tls_server PORT CERT KEY       (127.0.0.1; runs until killed)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>
#include <weft/tls.h>

static char **args;

static int echo(weft_stream_t *s, void *arg)
{
    (void)arg;
    char buf[32768];
    for (;;) {
        ssize_t n = weft_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            return 0;
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            return 0;
    }
}

static int main_task(void *arg)
{
    (void)arg;
    struct weft_tls_opts o = {.cert_file = args[2], .key_file = args[3]};
    weft_tls_ctx_t *ctx;
    int r = weft_tls_server_ctx_new(&ctx, &o);
    if (r < 0)
        return r;
    weft_server_t *srv;
    struct weft_server_opts so = {.backlog = 4096};
    r = weft_tls_server_start(&srv, ctx, echo, NULL, "127.0.0.1", atoi(args[1]), &so);
    if (r < 0)
        return r;
    return weft_server_serve_forever(srv);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: weft-bench-tls_server PORT CERT KEY\n");
        return 2;
    }
    args = argv;
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, NULL) < 0;
}
