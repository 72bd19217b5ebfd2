/*
 * The load generator of the TLS benchmarks (bench/tls_compare.sh), over weft-tls:
 *   weft-bench-tls_load echo PORT CONNS SIZE SECONDS   CONNS keep-alive connections, each
 *       writing SIZE bytes and reading them back, again and again; prints "rps=N"
 *   weft-bench-tls_load hs PORT CONNS SECONDS full|resume   CONNS tasks each connecting,
 *       handshaking (resume: offering the last session), sending a request line and reading the
 *       first bytes of the answer, then closing; prints "hs=N resumed=N"
 * The server's certificate is not verified (its CPU is what is measured, not ours).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft/tls.h>

static int port, size, seconds;
static long ops, resumed;
static weft_tls_ctx_t *ctx;

static int echo_task(void *arg)
{
    (void)arg;
    weft_stream_t *s;
    int r = weft_tls_connect(&s, ctx, "127.0.0.1", port, NULL);
    if (r < 0) {
        fprintf(stderr, "connect: %s\n", weft_strerror(r));
        return r;
    }
    char *buf = malloc((size_t)size), *back = malloc((size_t)size);
    memset(buf, 'x', (size_t)size);
    for (;;) {
        if (weft_stream_write(s, buf, (size_t)size) < 0 ||
            weft_stream_readexactly(s, back, (size_t)size, NULL) < 0)
            break;
        ops++;
    }
    return 0;
}

static int hs_task(void *arg)
{
    (void)arg;
    char buf[256];
    for (;;) {
        weft_stream_t *s;
        int r = weft_tls_connect(&s, ctx, "127.0.0.1", port, NULL);
        if (r < 0) {
            fprintf(stderr, "connect: %s\n", weft_strerror(r));
            weft_sleep(0.01);
            continue;
        }
        if (weft_tls_session_reused(s))
            resumed++;
        if (weft_stream_write(s, "GET / HTTP/1.0\r\n\r\n", 18) == 0 &&
            weft_stream_read(s, buf, sizeof(buf)) > 0)
            ops++;
        weft_stream_release(s);
    }
    return 0;
}

static int main_task(void *arg)
{
    char **argv = arg;
    bool hs = strcmp(argv[1], "hs") == 0;
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    if (hs)
        seconds = atoi(argv[4]);
    else {
        size = atoi(argv[4]);
        seconds = atoi(argv[5]);
    }
    struct weft_tls_opts o = {.no_verify = true,
                              .no_session_cache = hs && strcmp(argv[5], "full") == 0};
    int r = weft_tls_client_ctx_new(&ctx, &o);
    if (r < 0)
        return r;
    for (int i = 0; i < conns; i++)
        weft_spawn(NULL, hs ? hs_task : echo_task, NULL);
    weft_sleep(1); /* warm up */
    long o0 = ops, r0 = resumed;
    weft_sleep(seconds);
    if (hs)
        printf("hs=%.1f resumed=%ld\n", (double)(ops - o0) / seconds, resumed - r0);
    else
        printf("rps=%.1f\n", (double)(ops - o0) / seconds);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: weft-bench-tls_load echo PORT CONNS SIZE SECONDS\n"
                        "       weft-bench-tls_load hs PORT CONNS SECONDS full|resume\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, argv) < 0;
}
