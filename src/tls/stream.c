/*
 * weft-tls: TLS streams on OpenSSL 3. A TLS stream is a core stream with a transport
 * (net/transport.h): its reader and writer call tls_read / tls_write instead of recv / send, and
 * those call SSL_read_ex / SSL_write_ex on an SSL object whose BIO does non-blocking recv/send on
 * the stream's socket (MSG_NOSIGNAL: no SIGPIPE). A want-read or want-write becomes EAGAIN plus
 * the direction the stream must wait for, so reads and writes wait independently (a read that
 * needs to write waits for writability, and the other way round).
 *
 * Contexts (one SSL_CTX each, shared by every connection) are in ctx.c. The handshake is driven
 * here with weft_wait_fd_dl, so it honours deadlines, timeout scopes and cancellation.
 */
#define _GNU_SOURCE
#include "tls/tls_int.h"

/* Test hook: the most bytes one recv/send of a TLS stream moves (0: no bound). Read when a
 * stream starts TLS, so a test can run a handshake through 1-byte reads and writes. */
size_t weft__tls_test_io_max;

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
            c->drained = (size_t)k < n;
            *done = (size_t)k;
            return 1;
        }
        c->drained = 0;
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

BIO_METHOD *weft__tls_bio_method(void)
{
    pthread_once(&bio_once, bio_method_init);
    return bio_method;
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

/*
 * A short recv() drained the socket (a stream socket gives all it holds, up to the length asked),
 * and data that comes after it is a new readiness that weft_wait_fd() remembers: so when OpenSSL
 * holds nothing either (no record, not even part of one), the next read waits first instead of
 * paying a recv() that would find nothing (the plain stream's sys_read does the same).
 */
static ssize_t tls_read(weft_stream_t *s, void *buf, size_t n)
{
    struct conn *c = s->tpctx;
    if (c->drained) {
        c->drained = 0;
        if (!SSL_has_pending(c->ssl)) {
            s->tp_rwait = WEFT_READABLE;
            errno = EAGAIN;
            return -1;
        }
    }
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
        SSL_SESSION *sess = weft__tls_find_session(c->ctx, key);
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
            SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
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
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err = -ENOMEM;
        goto out;
    }
    c->fd = s->fd;
    c->io_max = weft__tls_test_io_max;
    c->ctx = weft_tls_ctx_retain(ctx);
    c->ssl = SSL_new(ctx->ssl);
    BIO_METHOD *meth = weft__tls_bio_method();
    BIO *bio = meth != NULL ? BIO_new(meth) : NULL;
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
    SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
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
