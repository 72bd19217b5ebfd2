/*
 * weft-tls internals shared by the module's files: a context (ctx.c) and a TLS stream's state
 * (stream.c).
 */
#ifndef WEFT_TLS_INT_H
#define WEFT_TLS_INT_H

#define _GNU_SOURCE
#include "net/net.h"
#include "net/transport.h"

#include <weft/tls.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Test hook: the most bytes one recv/send of a TLS stream moves (0: no bound). Read when a
 * stream starts TLS, so a test can run a handshake through 1-byte reads and writes. */
extern size_t weft__tls_test_io_max;

struct sess_entry {
    char *key;
    SSL_SESSION *sess;
    uint64_t used;
};

struct weft_tls_ctx {
    atomic_uint refs;
    bool server;
    SSL_CTX *ssl;
    unsigned char *alpn; /* wire format */
    size_t alpn_len;
    double handshake_timeout;
    /* client session cache */
    pthread_mutex_t lock;
    struct sess_entry *cache;
    size_t ncache, cache_cap;
    uint64_t tick;
};

/* A TLS stream's state (s->tpctx). */
struct conn {
    SSL *ssl;
    weft_tls_ctx_t *ctx;
    int fd;
    int sys_err;          /* errno of the last failed recv/send */
    uint8_t eof;          /* recv() saw the end of the TCP stream */
    uint8_t fatal;        /* OpenSSL reported a fatal error: no close_notify then */
    uint8_t handshaken;
    uint8_t shut_sent;    /* SSL_shutdown was called */
    uint8_t shut_pending; /* ... and its close_notify did not fit in the socket yet */
    uint8_t drained;      /* the last recv() was short: the socket held no more then */
    char *pre;            /* bytes the plaintext reader had buffered before start_tls */
    size_t prepos, prelen;
    size_t io_max;
    char *cache_key; /* client: where its session goes in the ctx's cache */
    char *alpn;      /* the protocol agreed on (NUL-ended copy), or NULL */
    long verify;
    char reason[200];
};
/* The BIO method of TLS streams (made once per process); NULL when OpenSSL had no memory. */
BIO_METHOD *weft__tls_bio_method(void);

/* A client context's cached session for `key` (a new reference), or NULL. */
SSL_SESSION *weft__tls_find_session(weft_tls_ctx_t *ctx, const char *key);

#endif
