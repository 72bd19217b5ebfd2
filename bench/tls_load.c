/*
 * The load generator of the TLS benchmarks (bench/tls_compare.sh), over weft-tls:
 *   weft-bench-tls_load echo PORT CONNS SIZE SECONDS   CONNS keep-alive connections, each
 *       writing SIZE bytes and reading them back, again and again; prints "rps=N"
 *   weft-bench-tls_load hs PORT CONNS SECONDS full|resume [COUNT]   CONNS tasks each
 *       connecting, handshaking (resume: offering the last session), sending a request line and
 *       reading the first bytes of the answer, then closing; prints "hs=N resumed=N tls13=N
 *       tls12=N" (handshakes per second, then how many of the measured handshakes resumed a
 *       session and which version they negotiated, so that a run shows what each server really
 *       did). With COUNT: no warm-up, stop after COUNT handshakes (for instruction counts).
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
static long ops, resumed, tls13, tls12, limit;
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
        if (weft_stream_write(s, "GET / HTTP/1.0\r\n\r\n", 18) == 0 &&
            weft_stream_read(s, buf, sizeof(buf)) > 0) {
            ops++;
            resumed += weft_tls_session_reused(s);
            const char *v = weft_tls_version(s);
            tls13 += v != NULL && strcmp(v, "TLSv1.3") == 0;
            tls12 += v != NULL && strcmp(v, "TLSv1.2") == 0;
        }
        weft_stream_release(s);
        if (limit > 0 && ops >= limit) {
            printf("hs=%ld resumed=%ld tls13=%ld tls12=%ld\n", ops, resumed, tls13, tls12);
            fflush(stdout);
            _exit(0);
        }
    }
    return 0;
}

static int main_task(void *arg)
{
    char **argv = arg;
    bool hs = strcmp(argv[1], "hs") == 0;
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    if (hs) {
        seconds = atoi(argv[4]);
        limit = argv[6] != NULL ? atol(argv[6]) : 0;
    }
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
    if (limit > 0) {
        weft_sleep(1e9);
        _exit(1);
    }
    weft_sleep(1); /* warm up */
    long o0 = ops, r0 = resumed, v3 = tls13, v2 = tls12;
    weft_sleep(seconds);
    if (hs)
        printf("hs=%.1f resumed=%ld tls13=%ld tls12=%ld\n", (double)(ops - o0) / seconds,
               resumed - r0, tls13 - v3, tls12 - v2);
    else
        printf("rps=%.1f\n", (double)(ops - o0) / seconds);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: weft-bench-tls_load echo PORT CONNS SIZE SECONDS\n"
                        "       weft-bench-tls_load hs PORT CONNS SECONDS full|resume [COUNT]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, argv) < 0;
}
