/*
 * Helpers of the TLS tests: a throwaway PKI made with the openssl command in a temp dir
 * (mkcerts.sh, removed at exit), contexts over it, and the scale of the heavy cases (small under
 * valgrind or WEFT_SKIP_SLOW=1).
 */
#ifndef WEFT_TLSTEST_H
#define WEFT_TLSTEST_H

#define _GNU_SOURCE
#include "../net/spawn.h"

#include <ftw.h>
#include <weft/tls.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TT_VALGRIND() RUNNING_ON_VALGRIND
#else
#define TT_VALGRIND() 0
#endif

/* The test hook of src/tls/stream.c: the most bytes one recv/send of a TLS stream moves. */
extern size_t weft__tls_test_io_max;

static char tt_dir[64];

static int tt_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void tt_cleanup(void)
{
    if (tt_dir[0] != '\0')
        nftw(tt_dir, tt_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* The path of file `name` of the test PKI (made on first use). */
static inline const char *tt_path(const char *name)
{
    static char buf[8][256];
    static int k;
    if (tt_dir[0] == '\0') {
        if (!sp_have("openssl")) {
            fprintf(stderr, "openssl is not installed: skipped\n");
            exit(77);
        }
        snprintf(tt_dir, sizeof(tt_dir), "/tmp/weft-tls-XXXXXX");
        CHECK(mkdtemp(tt_dir) != NULL);
        atexit(tt_cleanup);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "sh %s/mkcerts.sh %s", sp_srcdir(__FILE__), tt_dir);
        CHECK_EQ(system(cmd), 0);
    }
    char *b = buf[k++ % 8];
    snprintf(b, 256, "%s/%s", tt_dir, name);
    return b;
}

/* True when the heavy cases should run small (valgrind, qemu, WEFT_SKIP_SLOW=1). */
static inline bool tt_small(void)
{
    const char *s = getenv("WEFT_SKIP_SLOW");
    return TT_VALGRIND() || (s != NULL && strcmp(s, "1") == 0);
}

/* A server context with `cert` (server or expired or other) and extra options. */
static inline weft_tls_ctx_t *tt_server_ctx(const char *cert, const char *key, const char *alpn)
{
    weft_tls_ctx_t *ctx;
    char err[256];
    struct weft_tls_opts o = {.cert_file = tt_path(cert), .key_file = tt_path(key), .alpn = alpn,
                              .errbuf = err, .errlen = sizeof(err)};
    int r = weft_tls_server_ctx_new(&ctx, &o);
    if (r != 0)
        fprintf(stderr, "server ctx: %s\n", err);
    CHECK_EQ(r, 0);
    return ctx;
}

/* A client context trusting the test CA. */
static inline weft_tls_ctx_t *tt_client_ctx(const char *alpn)
{
    weft_tls_ctx_t *ctx;
    struct weft_tls_opts o = {.ca_file = tt_path("ca.pem"), .alpn = alpn};
    CHECK_EQ(weft_tls_client_ctx_new(&ctx, &o), 0);
    return ctx;
}

/* An echo server for the TLS tests: lines back until "QUIT\n" or the end. */

struct tt_srv_stats {
    int served;
    int last; /* the handler's last result */
    char sni[64];
    char alpn[32];
};

static inline int tt_echo_lines(weft_stream_t *s, void *arg)
{
    struct tt_srv_stats *st = arg;
    const char *p;
    size_t n;
    const char *sni = weft_tls_server_name(s);
    snprintf(st->sni, sizeof(st->sni), "%s", sni ? sni : "");
    const char *alpn = weft_tls_alpn(s);
    snprintf(st->alpn, sizeof(st->alpn), "%s", alpn ? alpn : "");
    int r;
    for (;;) {
        r = weft_stream_readline(s, &p, &n);
        if (r < 0 || n == 0)
            break;
        if (n == 5 && memcmp(p, "QUIT\n", 5) == 0)
            break;
        r = weft_stream_write(s, p, n);
        if (r == 0)
            r = weft_stream_drain(s);
        if (r < 0)
            break;
    }
    st->served++;
    st->last = r;
    return 0;
}

static inline weft_server_t *tt_start_echo(weft_tls_ctx_t *sctx, struct tt_srv_stats *st)
{
    weft_server_t *srv;
    CHECK_EQ(weft_tls_server_start(&srv, sctx, tt_echo_lines, st, "127.0.0.1", 0, NULL), 0);
    return srv;
}

static inline void tt_stop(weft_server_t *srv)
{
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(10)), 0);
    weft_server_release(srv);
}

#endif /* WEFT_TLSTEST_H */
