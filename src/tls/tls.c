/*
 * weft-tls: TLS streams on OpenSSL 3. A TLS stream is a core stream with a transport
 * (net/transport.h): its reader and writer call tls_read / tls_write instead of recv / send, and
 * those call SSL_read_ex / SSL_write_ex on an SSL object whose BIO does non-blocking recv/send on
 * the stream's socket (MSG_NOSIGNAL: no SIGPIPE). A want-read or want-write becomes EAGAIN plus
 * the direction the stream must wait for, so reads and writes wait independently (a read that
 * needs to write waits for writability, and the other way round).
 *
 * One SSL_CTX per context, shared by every connection (OpenSSL 3.0 pays its algorithm fetches
 * per SSL_CTX, not per connection then); a client context keeps a session cache keyed by server
 * name and port for resumption. The handshake is driven here with weft_wait_fd_dl, so it honours
 * deadlines, timeout scopes and cancellation.
 */
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
size_t weft__tls_test_io_max;

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
    char *pre;            /* bytes the plaintext reader had buffered before start_tls */
    size_t prepos, prelen;
    size_t io_max;
    char *cache_key; /* client: where its session goes in the ctx's cache */
    char *alpn;      /* the protocol agreed on (NUL-ended copy), or NULL */
    long verify;
    char reason[200];
};

static const struct weft__transport tls_transport;

static inline struct conn *conn_of(const weft_stream_t *s)
{
    return s != NULL && s->tp == &tls_transport ? s->tpctx : NULL;
}

/* SSL_get_error() needs an empty error queue before each call: another library on this
 * thread may have left something there. Peeking is cheap; clearing only when needed. */
static inline void clear_errors(void)
{
    if (WEFT__UNLIKELY(ERR_peek_error() != 0))
        ERR_clear_error();
}

/* ---- the BIO: non-blocking recv/send on the stream's socket ---- */

static int bio_write(BIO *b, const char *buf, size_t n, size_t *done)
{
    struct conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *done = 0;
    if (c->io_max != 0 && n > c->io_max)
        n = c->io_max;
    for (;;) {
        ssize_t k = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k >= 0) {
            *done = (size_t)k;
            return 1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        else
            c->sys_err = errno;
        return 0;
    }
}

static int bio_read(BIO *b, char *buf, size_t n, size_t *done)
{
    struct conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *done = 0;
    if (c->io_max != 0 && n > c->io_max)
        n = c->io_max;
    if (WEFT__UNLIKELY(c->prepos < c->prelen)) {
        size_t k = c->prelen - c->prepos < n ? c->prelen - c->prepos : n;
        memcpy(buf, c->pre + c->prepos, k);
        c->prepos += k;
        if (c->prepos == c->prelen) {
            free(c->pre);
            c->pre = NULL;
            c->prepos = c->prelen = 0;
        }
        *done = k;
        return 1;
    }
    for (;;) {
        ssize_t k = recv(c->fd, buf, n, MSG_DONTWAIT);
        if (k > 0) {
            *done = (size_t)k;
            return 1;
        }
        if (k == 0) {
            c->eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        else
            c->sys_err = errno;
        return 0;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return c != NULL && c->eof;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft socket");
    if (m == NULL)
        return;
    BIO_meth_set_write_ex(m, bio_write);
    BIO_meth_set_read_ex(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    bio_method = m;
}

/* ---- errors ---- */

static void set_reason(struct conn *c, const char *fmt, const char *a, const char *b)
{
    snprintf(c->reason, sizeof(c->reason), fmt, a, b);
}

/*
 * An SSL call failed with SSL_get_error() `e` (not a want): record why, make the weft code.
 * Clears the error queue.
 */
static int fail_code(struct conn *c, int e)
{
    int code;
    if (e == SSL_ERROR_ZERO_RETURN) {
        code = WEFT_ETLS_EOF; /* close_notify in the middle of a handshake */
        set_reason(c, "%s%s", "the peer closed during the handshake", "");
    } else if (e == SSL_ERROR_SYSCALL) {
        if (c->sys_err != 0) {
            code = -c->sys_err;
            set_reason(c, "%s%s", weft_strerror(code), "");
        } else {
            code = WEFT_ETLS_EOF;
            set_reason(c, "%s%s", "unexpected eof while reading", "");
        }
    } else if (e == SSL_ERROR_SSL) {
        unsigned long err = ERR_peek_last_error();
        int reason = ERR_GET_REASON(err);
        const char *text = ERR_reason_error_string(err);
        char num[32];
        if (text == NULL) {
            snprintf(num, sizeof(num), "error %#lx", err);
            text = num;
        }
        c->verify = SSL_get_verify_result(c->ssl);
        if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            code = WEFT_ETLS_VERIFY;
            set_reason(c, "%s: %s", text, X509_verify_cert_error_string(c->verify));
        } else {
            if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                code = WEFT_ETLS_EOF;
            else if (!c->handshaken &&
                     (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST ||
                      reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_UNKNOWN_PROTOCOL ||
                      reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
                      reason == SSL_R_RECORD_LENGTH_MISMATCH))
                code = WEFT_ETLS_NOT_TLS;
            else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
                code = WEFT_ETLS_ALERT;
            else if (ERR_GET_LIB(err) == ERR_LIB_SYS)
                code = -ERR_GET_REASON(err);
            else
                code = WEFT_ETLS;
            set_reason(c, "%s%s", text, "");
        }
    } else {
        code = WEFT_ETLS;
        set_reason(c, "%s%s", "unexpected OpenSSL state", "");
    }
    if (code >= 0)
        code = WEFT_ETLS;
    c->fatal = 1;
    ERR_clear_error();
    return code;
}

/* ---- the transport ---- */

static ssize_t tls_read(weft_stream_t *s, void *buf, size_t n)
{
    struct conn *c = s->tpctx;
    clear_errors();
    size_t got;
    int r = SSL_read_ex(c->ssl, buf, n, &got);
    if (WEFT__LIKELY(r == 1))
        return (ssize_t)got;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        s->tp_rwait = e == SSL_ERROR_WANT_READ ? WEFT_READABLE : WEFT_WRITABLE;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: the clean end */
    errno = -fail_code(c, e);
    return -1;
}

static ssize_t tls_write(weft_stream_t *s, const void *buf, size_t n)
{
    struct conn *c = s->tpctx;
    clear_errors();
    size_t done;
    int r = SSL_write_ex(c->ssl, buf, n, &done);
    if (WEFT__LIKELY(r == 1))
        return (ssize_t)done;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        s->tp_wwait = e == SSL_ERROR_WANT_READ ? WEFT_READABLE : WEFT_WRITABLE;
        errno = EAGAIN;
        return -1;
    }
    errno = -fail_code(c, e);
    return -1;
}

/* Send close_notify once (non-blocking); remembers whether it is still pending. */
static void send_close_notify(struct conn *c)
{
    if (c->shut_sent || c->fatal || !c->handshaken)
        return;
    c->shut_sent = 1;
    clear_errors();
    int r = SSL_shutdown(c->ssl);
    if (r < 0) {
        int e = SSL_get_error(c->ssl, r);
        c->shut_pending = e == SSL_ERROR_WANT_WRITE;
    }
    ERR_clear_error();
}

static int tls_shutdown(weft_stream_t *s)
{
    struct conn *c = s->tpctx;
    send_close_notify(c);
    /* A real half-close once the alert is out; the reader keeps working (TLS 1.3 allows it). */
    if (!c->shut_pending && shutdown(c->fd, SHUT_WR) < 0)
        return -errno;
    return 0;
}

static void tls_close(weft_stream_t *s, bool graceful)
{
    struct conn *c = s->tpctx;
    if (graceful)
        send_close_notify(c);
}

static void tls_free(weft_stream_t *s)
{
    struct conn *c = s->tpctx;
    s->tpctx = NULL;
    SSL_free(c->ssl); /* and its BIO */
    weft_tls_ctx_release(c->ctx);
    free(c->pre);
    free(c->cache_key);
    free(c->alpn);
    free(c);
}

static const struct weft__transport tls_transport = {
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .free = tls_free,
};

/* ---- contexts ---- */

static int cfg_fail(const struct weft_tls_opts *o, const char *what)
{
    if (o != NULL && o->errbuf != NULL && o->errlen > 0) {
        unsigned long e = ERR_peek_last_error();
        const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
        snprintf(o->errbuf, o->errlen, "%s%s%s", what, r ? ": " : "", r ? r : "");
    }
    ERR_clear_error();
    return WEFT_ETLS_CONFIG;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1" */
static int alpn_wire(const char *list, unsigned char **out, size_t *len)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 1);
    if (w == NULL)
        return -ENOMEM;
    size_t k = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t m = strcspn(p, ",");
        if (m == 0 || m > 255) {
            free(w);
            return -EINVAL;
        }
        w[k++] = (unsigned char)m;
        memcpy(w + k, p, m);
        k += m;
        p += m + (p[m] == ',');
    }
    if (k == 0) {
        free(w);
        return -EINVAL;
    }
    *out = w;
    *len = k;
    return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    weft_tls_ctx_t *ctx = arg;
    /* The server's preference first: its list is the "server" argument of SSL_select_next_proto. */
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN (as CPython) */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct conn *c = SSL_get_app_data(ssl);
    if (c == NULL || c->cache_key == NULL)
        return 0;
    weft_tls_ctx_t *ctx = c->ctx;
    pthread_mutex_lock(&ctx->lock);
    struct sess_entry *e = NULL;
    for (size_t i = 0; i < ctx->ncache; i++)
        if (strcmp(ctx->cache[i].key, c->cache_key) == 0)
            e = &ctx->cache[i];
    if (e == NULL && ctx->ncache < ctx->cache_cap) {
        char *k = strdup(c->cache_key);
        if (k == NULL) {
            pthread_mutex_unlock(&ctx->lock);
            return 0;
        }
        e = &ctx->cache[ctx->ncache++];
        e->key = k;
        e->sess = NULL;
    } else if (e == NULL) {
        e = &ctx->cache[0]; /* the least recently used goes */
        for (size_t i = 1; i < ctx->ncache; i++)
            if (ctx->cache[i].used < e->used)
                e = &ctx->cache[i];
        char *k = strdup(c->cache_key);
        if (k == NULL) {
            pthread_mutex_unlock(&ctx->lock);
            return 0;
        }
        free(e->key);
        e->key = k;
    }
    if (e->sess != NULL)
        SSL_SESSION_free(e->sess);
    e->sess = sess; /* returning 1 hands us the reference */
    e->used = ++ctx->tick;
    pthread_mutex_unlock(&ctx->lock);
    return 1;
}

static SSL_SESSION *find_session(weft_tls_ctx_t *ctx, const char *key)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < ctx->ncache; i++) {
        if (strcmp(ctx->cache[i].key, key) == 0) {
            s = ctx->cache[i].sess;
            ctx->cache[i].used = ++ctx->tick;
            SSL_SESSION_up_ref(s);
            break;
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

static void ctx_free(weft_tls_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->ncache; i++) {
        free(ctx->cache[i].key);
        SSL_SESSION_free(ctx->cache[i].sess);
    }
    free(ctx->cache);
    SSL_CTX_free(ctx->ssl);
    free(ctx->alpn);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static int load_pem_chain(SSL_CTX *ssl, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return -ENOMEM;
    int ok = 0;
    X509 *x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    if (x != NULL && SSL_CTX_use_certificate(ssl, x) == 1) {
        ok = 1;
        X509 *ca;
        while ((ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            if (SSL_CTX_add0_chain_cert(ssl, ca) != 1) {
                X509_free(ca);
                ok = 0;
                break;
            }
        }
        if (ok)
            ERR_clear_error(); /* the end of the PEM text reads as "no start line" */
    }
    X509_free(x);
    BIO_free(b);
    return ok ? 0 : WEFT_ETLS_CONFIG;
}

static int load_pem_key(SSL_CTX *ssl, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return -ENOMEM;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    int ok = k != NULL && SSL_CTX_use_PrivateKey(ssl, k) == 1;
    EVP_PKEY_free(k);
    BIO_free(b);
    return ok ? 0 : WEFT_ETLS_CONFIG;
}

static int load_pem_cas(SSL_CTX *ssl, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (b == NULL)
        return -ENOMEM;
    X509_STORE *st = SSL_CTX_get_cert_store(ssl);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(b);
    if (n == 0)
        return WEFT_ETLS_CONFIG;
    ERR_clear_error();
    return 0;
}

static int ctx_new(weft_tls_ctx_t **out, bool server, const struct weft_tls_opts *o)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    static const struct weft_tls_opts none;
    if (o == NULL)
        o = &none;
    if (o->errbuf != NULL && o->errlen > 0)
        o->errbuf[0] = '\0';
    if (server && o->cert_file == NULL && o->cert_pem == NULL)
        return cfg_fail(o, "a server context needs a certificate (cert_file or cert_pem)");
    if ((o->cert_file != NULL || o->cert_pem != NULL) && o->key_file == NULL && o->key_pem == NULL)
        return cfg_fail(o, "a certificate needs its private key (key_file or key_pem)");
    pthread_once(&bio_once, bio_method_init);
    if (bio_method == NULL)
        return -ENOMEM;
    weft_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return -ENOMEM;
    atomic_init(&ctx->refs, 1);
    ctx->server = server;
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->handshake_timeout = o->handshake_timeout != 0 ? o->handshake_timeout : 60.0;
    ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    int err = 0;
    if (ctx->ssl == NULL) {
        err = -ENOMEM;
        goto fail;
    }
    SSL_CTX *sc = ctx->ssl;
    SSL_CTX_set_app_data(sc, ctx);
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
    if ((o->min_version != 0 && SSL_CTX_set_min_proto_version(sc, o->min_version) != 1) ||
        (o->max_version != 0 && SSL_CTX_set_max_proto_version(sc, o->max_version) != 1)) {
        err = cfg_fail(o, "unsupported protocol version");
        goto fail;
    }
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(sc, o->ciphers) != 1) {
        err = cfg_fail(o, "bad cipher list");
        goto fail;
    }
    if (o->ciphersuites != NULL && SSL_CTX_set_ciphersuites(sc, o->ciphersuites) != 1) {
        err = cfg_fail(o, "bad TLS 1.3 cipher suites");
        goto fail;
    }
    if (server) {
        /* The server picks the suite in its own order (docs/tls.md, "Defaults"): by default
         * AES-128-GCM first (TLS 1.3's mandatory suite: SHA-256 in the key schedule and 10 AES
         * rounds instead of SHA-384 and 14, as Go's servers and Mozilla's configurations), then
         * AES-256-GCM, then ChaCha20, which moves to the top for a client that asks for it first
         * (one without AES instructions). */
        if (o->ciphersuites == NULL &&
            SSL_CTX_set_ciphersuites(sc, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                         "TLS_CHACHA20_POLY1305_SHA256") != 1) {
            err = cfg_fail(o, "TLS 1.3 cipher suites");
            goto fail;
        }
        SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    }
    /* our certificate and key */
    if (o->cert_file != NULL && SSL_CTX_use_certificate_chain_file(sc, o->cert_file) != 1) {
        err = cfg_fail(o, o->cert_file);
        goto fail;
    }
    if (o->cert_pem != NULL && (err = load_pem_chain(sc, o->cert_pem)) < 0) {
        err = cfg_fail(o, "cert_pem");
        goto fail;
    }
    if (o->key_file != NULL && SSL_CTX_use_PrivateKey_file(sc, o->key_file, SSL_FILETYPE_PEM) != 1) {
        err = cfg_fail(o, o->key_file);
        goto fail;
    }
    if (o->key_pem != NULL && (err = load_pem_key(sc, o->key_pem)) < 0) {
        err = cfg_fail(o, "key_pem");
        goto fail;
    }
    if ((o->cert_file != NULL || o->cert_pem != NULL) && SSL_CTX_check_private_key(sc) != 1) {
        err = cfg_fail(o, "the private key does not match the certificate");
        goto fail;
    }
    /* trust */
    bool verify = server ? o->verify_client : !o->no_verify;
    if (o->ca_file != NULL || o->ca_path != NULL) {
        if (SSL_CTX_load_verify_locations(sc, o->ca_file, o->ca_path) != 1) {
            err = cfg_fail(o, o->ca_file != NULL ? o->ca_file : o->ca_path);
            goto fail;
        }
    }
    if (o->ca_pem != NULL && (err = load_pem_cas(sc, o->ca_pem)) < 0) {
        err = cfg_fail(o, "ca_pem holds no certificate");
        goto fail;
    }
    if (verify && o->ca_file == NULL && o->ca_path == NULL && o->ca_pem == NULL &&
        SSL_CTX_set_default_verify_paths(sc) != 1) {
        err = cfg_fail(o, "cannot load the system's trusted CAs");
        goto fail;
    }
    if (verify)
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    else
        SSL_CTX_set_verify(sc, SSL_VERIFY_NONE, NULL);
    /* ALPN */
    if (o->alpn != NULL) {
        err = alpn_wire(o->alpn, &ctx->alpn, &ctx->alpn_len);
        if (err < 0) {
            err = err == -ENOMEM ? err : cfg_fail(o, "bad ALPN list");
            goto fail;
        }
        if (server)
            SSL_CTX_set_alpn_select_cb(sc, alpn_select, ctx);
        else if (SSL_CTX_set_alpn_protos(sc, ctx->alpn, (unsigned)ctx->alpn_len) != 0) {
            err = cfg_fail(o, "bad ALPN list");
            goto fail;
        }
    }
    /* sessions */
    if (server) {
        SSL_CTX_set_session_id_context(sc, (const unsigned char *)"weft", 4);
        /* One TLS 1.3 ticket per handshake, not OpenSSL's two after a full one: a client
         * resumes with one ticket per connection (weft's, CPython's and curl's keep the newest
         * only), a resumed handshake brings the next, and each ticket costs the server a session
         * copy, its encoding, encryption, MAC and a key derivation (~6 % of a full handshake). */
        SSL_CTX_set_num_tickets(sc, 1);
        /* Sessions stay in the context (OpenSSL's server cache: up to 20,480, the oldest go
         * first, 2 hours; ~1.1-1.6 KB each) and the ticket a client gets is only their id
         * (SSL_OP_NO_TICKET, as Mozilla's recommended server configurations): no ticket
         * encryption key living as long as the context, and the server does not encode,
         * encrypt and MAC each session into a ticket nor decrypt it back (~5 % of a full
         * handshake, ~7 % of a resumed one). TLS 1.2 clients resume by id from the same cache. */
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
    } else if (!o->no_session_cache) {
        ctx->cache_cap = o->session_cache_size != 0 ? o->session_cache_size : 256;
        ctx->cache = calloc(ctx->cache_cap, sizeof(*ctx->cache));
        if (ctx->cache == NULL) {
            err = -ENOMEM;
            goto fail;
        }
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(sc, new_session);
    } else {
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    }
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    ctx_free(ctx);
    return err;
}

int weft_tls_client_ctx_new(weft_tls_ctx_t **out, const struct weft_tls_opts *opts)
{
    return ctx_new(out, false, opts);
}

int weft_tls_server_ctx_new(weft_tls_ctx_t **out, const struct weft_tls_opts *opts)
{
    if (opts == NULL) {
        if (out != NULL)
            *out = NULL;
        return -EINVAL;
    }
    return ctx_new(out, true, opts);
}

weft_tls_ctx_t *weft_tls_ctx_retain(weft_tls_ctx_t *ctx)
{
    if (ctx != NULL)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void weft_tls_ctx_release(weft_tls_ctx_t *ctx)
{
    if (ctx != NULL && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        ctx_free(ctx);
}

void *weft_tls_ctx_openssl(weft_tls_ctx_t *ctx)
{
    return ctx != NULL ? ctx->ssl : NULL;
}

size_t weft_tls_ctx_sessions(weft_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return 0;
    pthread_mutex_lock(&ctx->lock);
    size_t n = ctx->ncache;
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

/* ---- starting TLS on a stream ---- */

static bool is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Set up the client side: SNI, hostname or IP check, a cached session. */
static int client_setup(struct conn *c, const char *name)
{
    SSL *ssl = c->ssl;
    SSL_set_connect_state(ssl);
    bool verify = SSL_CTX_get_verify_mode(c->ctx->ssl) != SSL_VERIFY_NONE;
    if (name != NULL && *name != '\0') {
        if (is_ip_literal(name)) {
            if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
                return -EINVAL;
        } else {
            if (SSL_set_tlsext_host_name(ssl, name) != 1)
                return -EINVAL;
            if (verify && SSL_set1_host(ssl, name) != 1)
                return -EINVAL;
        }
    }
    if (c->ctx->cache != NULL) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char addr[96];
        if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0 ||
            weft_addr_format((struct sockaddr *)&ss, len, addr, sizeof(addr)) < 0)
            return 0; /* no key: no resumption */
        char key[400];
        if (name != NULL && *name != '\0')
            snprintf(key, sizeof(key), "%s:%d", name, weft_addr_port((struct sockaddr *)&ss));
        else
            snprintf(key, sizeof(key), "%s", addr);
        c->cache_key = strdup(key);
        if (c->cache_key == NULL)
            return -ENOMEM;
        SSL_SESSION *sess = find_session(c->ctx, key);
        if (sess != NULL) {
            SSL_set_session(ssl, sess);
            SSL_SESSION_free(sess);
        }
    }
    return 0;
}

static int do_handshake(struct conn *c, int64_t deadline)
{
    for (;;) {
        clear_errors();
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            c->handshaken = 1;
            const unsigned char *p;
            unsigned len;
            SSL_get0_alpn_selected(c->ssl, &p, &len);
            if (p != NULL && len > 0 && (c->alpn = malloc(len + 1)) != NULL) {
                memcpy(c->alpn, p, len);
                c->alpn[len] = '\0';
            }
            return 0;
        }
        int e = SSL_get_error(c->ssl, r);
        int ev;
        if (e == SSL_ERROR_WANT_READ)
            ev = WEFT_READABLE;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev = WEFT_WRITABLE;
        else
            return fail_code(c, e);
        int w = weft_wait_fd_dl(c->fd, ev, deadline);
        if (w < 0) {
            set_reason(c, "handshake: %s%s", weft_strerror(w), "");
            return w;
        }
    }
}

/* Wait until nothing is queued for writing (the marks at 0 make drain wait for all of it). */
static int flush_all(weft_stream_t *s, int64_t deadline)
{
    if (weft_stream_write_buffered(s) == 0)
        return 0;
    size_t high = s->whigh, low = s->wlow;
    weft_stream_set_write_limits(s, 0, 0);
    int r = weft_stream_drain_dl(s, deadline);
    if (!s->closed)
        weft_stream_set_write_limits(s, (ssize_t)high, (ssize_t)low);
    return r;
}

static int64_t hs_deadline(weft_tls_ctx_t *ctx, int64_t deadline)
{
    if (ctx->handshake_timeout < 0)
        return deadline;
    int64_t d = weft_deadline_in(ctx->handshake_timeout);
    return deadline < 0 || d < deadline ? d : deadline;
}

int weft_tls_start_dl(weft_stream_t *s, weft_tls_ctx_t *ctx, const char *server_hostname,
                      int64_t deadline)
{
    if (s == NULL || ctx == NULL)
        return -EINVAL;
    if (s->tp != NULL || s->fd < 0 || !s->is_sock || s->closing || s->eof || s->eof_req ||
        s->rerr != 0 || s->cerr != 0)
        return -EINVAL;
    if (s->rtask != NULL)
        return -EBUSY;
    if (weft_current_task() == NULL)
        return -EPERM;
    weft_stream_retain(s);
    int err = flush_all(s, deadline);
    if (err < 0)
        goto out;
    if (s->tp != NULL || s->closing || s->fd < 0 || s->cerr != 0) {
        err = s->cerr != 0 ? s->cerr : -EINVAL;
        goto out;
    }
    pthread_once(&bio_once, bio_method_init);
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err = -ENOMEM;
        goto out;
    }
    c->fd = s->fd;
    c->io_max = weft__tls_test_io_max;
    c->ctx = weft_tls_ctx_retain(ctx);
    c->ssl = SSL_new(ctx->ssl);
    BIO *bio = bio_method != NULL ? BIO_new(bio_method) : NULL;
    if (c->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        SSL_free(c->ssl);
        weft_tls_ctx_release(c->ctx);
        free(c);
        ERR_clear_error();
        err = -ENOMEM;
        goto out;
    }
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio);
    SSL_set_app_data(c->ssl, c);
    SSL_set_read_ahead(c->ssl, 1);
    /* What the plaintext reader already holds is the start of the TLS stream. */
    size_t have = s->rend - s->rpos;
    if (have > 0) {
        c->pre = malloc(have);
        if (c->pre == NULL) {
            SSL_free(c->ssl);
            weft_tls_ctx_release(c->ctx);
            free(c);
            err = -ENOMEM;
            goto out;
        }
        memcpy(c->pre, s->rbuf + s->rpos, have);
        c->prelen = have;
    }
    s->rpos = s->rend = 0;
    weft__stream_set_transport(s, &tls_transport, c);
    if (ctx->server)
        SSL_set_accept_state(c->ssl);
    else if ((err = client_setup(c, server_hostname)) < 0)
        goto failed;
    err = do_handshake(c, hs_deadline(ctx, deadline));
    if (err == 0)
        goto out;
failed:
    if (c->reason[0] == '\0')
        set_reason(c, "%s%s", weft_strerror(err), "");
    c->fatal = 1;
    s->rerr = err;
    if (s->cerr == 0)
        s->cerr = err;
    weft_stream_abort(s);
out:
    weft_stream_release(s);
    return err;
}

int weft_tls_start(weft_stream_t *s, weft_tls_ctx_t *ctx, const char *server_hostname)
{
    return weft_tls_start_dl(s, ctx, server_hostname, WEFT_NO_DEADLINE);
}

int weft_tls_connect_dl(weft_stream_t **out, weft_tls_ctx_t *ctx, const char *host, int port,
                        const struct weft_tls_connect_opts *opts, int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (ctx == NULL || ctx->server || host == NULL)
        return -EINVAL;
    const struct weft_connect_opts *co = opts != NULL ? &opts->connect : NULL;
    weft_stream_t *s;
    int err = weft_stream_connect_dl(&s, host, port, co, deadline);
    if (err < 0)
        return err;
    const char *name = opts != NULL && opts->server_hostname != NULL ? opts->server_hostname : host;
    err = weft_tls_start_dl(s, ctx, name, deadline);
    if (err < 0) {
        if (co != NULL && co->errbuf != NULL && co->errlen > 0)
            snprintf(co->errbuf, co->errlen, "%s:%d: %s", host, port, weft_tls_reason(s));
        weft_stream_release(s);
        return err;
    }
    *out = s;
    return 0;
}

int weft_tls_connect(weft_stream_t **out, weft_tls_ctx_t *ctx, const char *host, int port,
                     const struct weft_tls_connect_opts *opts)
{
    return weft_tls_connect_dl(out, ctx, host, port, opts, WEFT_NO_DEADLINE);
}

/* ---- servers ---- */

struct binding {
    weft_tls_ctx_t *ctx;
    weft_stream_handler_fn handler;
    void *arg;
    void (*arg_free)(void *arg);
};

static int tls_conn_main(weft_stream_t *s, void *arg)
{
    struct binding *b = arg;
    int r = weft_tls_start_dl(s, b->ctx, NULL, WEFT_NO_DEADLINE);
    if (r < 0)
        return r == -ECANCELED ? r : 0; /* a failed handshake is the client's problem */
    return b->handler(s, b->arg);
}

static void binding_free(void *arg)
{
    struct binding *b = arg;
    if (b->arg_free != NULL)
        b->arg_free(b->arg);
    weft_tls_ctx_release(b->ctx);
    free(b);
}

int weft_tls_server_start(weft_server_t **out, weft_tls_ctx_t *ctx, weft_stream_handler_fn handler,
                          void *arg, const char *host, int port, const struct weft_server_opts *opts)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || ctx == NULL || !ctx->server || handler == NULL)
        return -EINVAL;
    struct binding *b = malloc(sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    struct weft_server_opts o = {0};
    if (opts != NULL)
        o = *opts;
    b->ctx = weft_tls_ctx_retain(ctx);
    b->handler = handler;
    b->arg = arg;
    b->arg_free = o.arg_free;
    o.arg_free = binding_free;
    int err = weft_server_start(out, tls_conn_main, b, host, port, &o);
    if (err < 0) {
        weft_tls_ctx_release(ctx);
        free(b);
    }
    return err;
}

/* ---- closing ---- */

int weft_tls_shutdown_dl(weft_stream_t *s, int64_t deadline)
{
    struct conn *c = conn_of(s);
    if (c == NULL)
        return -EINVAL;
    if (weft_current_task() == NULL)
        return -EPERM;
    weft_stream_retain(s);
    int r = 0;
    if (!c->handshaken || c->fatal || s->closing) {
        r = s->cerr;
        weft_stream_close(s);
        goto out;
    }
    weft_stream_write_eof(s); /* close_notify once the queue is flushed */
    r = flush_all(s, deadline);
    while (r == 0 && c->shut_pending && !s->closed) {
        r = weft_wait_fd_dl(c->fd, WEFT_WRITABLE, deadline);
        if (r < 0)
            break;
        r = 0;
        clear_errors();
        int k = SSL_shutdown(c->ssl);
        c->shut_pending = k < 0 && SSL_get_error(c->ssl, k) == SSL_ERROR_WANT_WRITE;
        ERR_clear_error();
        if (!c->shut_pending)
            shutdown(c->fd, SHUT_WR);
    }
    /* Read until the peer's close_notify (0) or an error; what comes meanwhile is dropped. */
    char scratch[4096];
    while (r == 0) {
        ssize_t n = weft_stream_read_dl(s, scratch, sizeof(scratch), deadline);
        if (n <= 0) {
            r = (int)n;
            break;
        }
    }
    if (r == -ETIMEDOUT || r == -ECANCELED)
        weft_stream_abort(s);
    else
        weft_stream_close(s);
out:
    weft_stream_release(s);
    return r;
}

int weft_tls_shutdown(weft_stream_t *s)
{
    return weft_tls_shutdown_dl(s, WEFT_NO_DEADLINE);
}

/* ---- what was negotiated ---- */

bool weft_tls_is_tls(const weft_stream_t *s)
{
    return conn_of(s) != NULL;
}

const char *weft_tls_alpn(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL ? c->alpn : NULL;
}

const char *weft_tls_version(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL && c->handshaken ? SSL_get_version(c->ssl) : NULL;
}

const char *weft_tls_cipher(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL && c->handshaken ? SSL_get_cipher_name(c->ssl) : NULL;
}

bool weft_tls_session_reused(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL && c->handshaken && SSL_session_reused(c->ssl);
}

const char *weft_tls_server_name(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

long weft_tls_verify_result(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    if (c == NULL)
        return -1;
    return c->verify != 0 ? c->verify : SSL_get_verify_result(c->ssl);
}

const char *weft_tls_reason(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL ? c->reason : "";
}

void *weft_tls_openssl(const weft_stream_t *s)
{
    struct conn *c = conn_of(s);
    return c != NULL ? c->ssl : NULL;
}
