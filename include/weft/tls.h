/*
 * weft-tls: TLS streams on OpenSSL 3 (library libweft-tls, pkg-config weft-tls). A TLS stream is
 * an ordinary weft_stream_t: every stream call (read, readexactly, readuntil, readline, read_all,
 * write, drain, write_eof, close, abort, wait_closed) works on it unchanged, with the same limits,
 * deadlines, timeout scopes and cancellation. See docs/tls.md for the model and the defaults.
 *
 * Contexts hold the configuration (certificates, trust, ALPN, versions) and one OpenSSL SSL_CTX
 * that every connection made with them shares; they are refcounted and may be shared by loops on
 * several threads (the context's calls are thread-safe; the streams are not, as everywhere).
 *
 * Errors: the calls return >= 0 or a negative code: a negative errno, or one of weft.h's
 * WEFT_ETLS* codes (WEFT_ETLS protocol error, WEFT_ETLS_VERIFY, WEFT_ETLS_EOF truncated,
 * WEFT_ETLS_NOT_TLS plaintext peer, WEFT_ETLS_ALERT, WEFT_ETLS_CONFIG), named by weft_strerror().
 * The OpenSSL reason and the certificate verification result of a stream stay readable with
 * weft_tls_reason() / weft_tls_verify_result() until it is released.
 */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_tls_ctx weft_tls_ctx_t;

#define WEFT_TLS1_2 0x0303 /* protocol versions for weft_tls_opts.min_version / max_version */
#define WEFT_TLS1_3 0x0304

/* Options of a context; zero-initialise and set what you need. Strings are copied or loaded at
 * creation: the caller's buffers are borrowed only for the call. */
struct weft_tls_opts {
    /* Our certificate (a server's, or a client certificate): a PEM file of the certificate
     * followed by its chain, and the private key; or the same PEM text in memory. */
    const char *cert_file;
    const char *key_file;
    const char *cert_pem;
    const char *key_pem;
    /* Trusted CAs for verifying the peer: a PEM file, a hashed directory and/or PEM text. With
     * none of them, the system store (/etc/ssl/certs). */
    const char *ca_file;
    const char *ca_path;
    const char *ca_pem;
    bool no_verify;     /* client: do NOT verify the server (insecure; tests only) */
    bool verify_client; /* server: require a client certificate that verifies against the CAs */
    /* ALPN protocols in preference order, comma-separated ("h2,http/1.1"); NULL: no ALPN. A
     * server picks its first one the client offers, and continues without ALPN if none. */
    const char *alpn;
    int min_version; /* 0: OpenSSL's default (TLS 1.2 on Debian), or WEFT_TLS1_2 / WEFT_TLS1_3 */
    int max_version; /* 0: the newest (TLS 1.3) */
    const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax); NULL: OpenSSL's */
    const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's */
    /* client: sessions kept for resumption, one per server name and port (the newest); 0: 256;
     * no_session_cache turns resumption off. */
    size_t session_cache_size;
    bool no_session_cache;
    /* The handshake's own time limit in seconds when the caller gives no earlier deadline;
     * 0: 60 (asyncio's ssl_handshake_timeout); < 0: none. */
    double handshake_timeout;
    char *errbuf;  /* if not NULL: receives why creating the context failed, */
    size_t errlen; /* e.g. "cert.pem: no such file" or OpenSSL's reason */
};

/*
 * Make a client context (verification on against the system store or opts' CAs, hostname check
 * and SNI, TLS 1.2 and 1.3, session cache) or a server context (opts must give a certificate and
 * its key). `opts` may be NULL for a client. The caller owns one reference. Does not suspend.
 * Returns 0, WEFT_ETLS_CONFIG (a file that does not load, a key that does not match the
 * certificate, bad ALPN or cipher strings: details in opts->errbuf), -EINVAL, -ENOMEM.
 * Thread-safe.
 */
WEFT_EXTERN int weft_tls_client_ctx_new(weft_tls_ctx_t **out, const struct weft_tls_opts *opts);
WEFT_EXTERN int weft_tls_server_ctx_new(weft_tls_ctx_t **out, const struct weft_tls_opts *opts);

/* Take / drop a reference (every stream and server using the context holds one). Thread-safe. */
WEFT_EXTERN weft_tls_ctx_t *weft_tls_ctx_retain(weft_tls_ctx_t *ctx);
WEFT_EXTERN void weft_tls_ctx_release(weft_tls_ctx_t *ctx);

/* The context's OpenSSL SSL_CTX (borrowed), to set what these options do not cover. */
WEFT_EXTERN void *weft_tls_ctx_openssl(weft_tls_ctx_t *ctx);

/* The number of sessions in a client context's cache. Thread-safe. */
WEFT_EXTERN size_t weft_tls_ctx_sessions(weft_tls_ctx_t *ctx);

/* Options of weft_tls_connect(); zero-initialise and set what you need. */
struct weft_tls_connect_opts {
    struct weft_connect_opts connect; /* the TCP connection's; its errbuf also receives the TLS
                                       * failure ("certificate verify failed: Hostname
                                       * mismatch") */
    const char *server_hostname;      /* the name to send (SNI) and to verify; NULL: `host`;
                                       * "": no SNI and no hostname check (asyncio's '') */
};

/*
 * Open a TCP connection (as weft_stream_connect) and make a TLS client handshake on it with
 * `ctx` (a client context). The handshake ends by the deadline, or by the context's
 * handshake_timeout. On success *out is a TLS stream the caller owns.
 * Returns 0, the connection's errors (see weft_stream_connect), WEFT_ETLS_VERIFY, WEFT_ETLS,
 * WEFT_ETLS_ALERT, WEFT_ETLS_NOT_TLS, WEFT_ETLS_EOF (the server closed during the handshake),
 * -ECONNRESET, -EINVAL (a server context), -ETIMEDOUT, -ECANCELED; nothing is left open then.
 * Suspends.
 */
WEFT_EXTERN int weft_tls_connect(weft_stream_t **out, weft_tls_ctx_t *ctx, const char *host,
                                 int port, const struct weft_tls_connect_opts *opts);
WEFT_EXTERN int weft_tls_connect_dl(weft_stream_t **out, weft_tls_ctx_t *ctx, const char *host,
                                    int port, const struct weft_tls_connect_opts *opts,
                                    int64_t deadline);

/*
 * Upgrade an open plaintext stream to TLS in place (asyncio's start_tls / StreamWriter.start_tls):
 * as the client with a client context (server_hostname as in weft_tls_connect_opts: NULL or "":
 * no SNI and no hostname check), as the server with a server context (server_hostname ignored).
 * It first waits until the write queue is flushed. Bytes the reader already buffered are taken
 * as the first TLS bytes. After success every stream call speaks TLS.
 * Returns 0, the handshake's errors (see weft_tls_connect; the stream is aborted then and its
 * reason stays readable), -EINVAL (not a socket stream, already TLS, closing, at end of stream
 * or failed), -EBUSY (a task waits in a reader call), -ETIMEDOUT, -ECANCELED, -EPERM. Suspends.
 */
WEFT_EXTERN int weft_tls_start(weft_stream_t *s, weft_tls_ctx_t *ctx, const char *server_hostname);
WEFT_EXTERN int weft_tls_start_dl(weft_stream_t *s, weft_tls_ctx_t *ctx,
                                  const char *server_hostname, int64_t deadline);

/*
 * A TLS server (asyncio's start_server(ssl=...)): as weft_server_start, but each connection's
 * task first makes the server handshake with `ctx` (bounded by its handshake_timeout) and only
 * then calls handler(stream, arg) with the TLS stream. A connection whose handshake fails is
 * closed without calling the handler (serve with weft_server_start and call weft_tls_start in the
 * handler to see why). The server holds a reference to ctx; opts->arg_free, if set, is called
 * with `arg` once the server is freed. Returns as weft_server_start, and -EINVAL for a client context.
 * Suspends only to resolve a name.
 */
WEFT_EXTERN int weft_tls_server_start(weft_server_t **out, weft_tls_ctx_t *ctx,
                                      weft_stream_handler_fn handler, void *arg, const char *host,
                                      int port, const struct weft_server_opts *opts);

/*
 * Close a TLS stream the polite way (asyncio's close() then wait_closed() on an SSL transport):
 * flush the write queue, send close_notify, wait for the peer's close_notify (application data
 * still arriving is discarded, as is what the reader holds unread), then close the stream.
 * Returns 0 (both sides closed cleanly), WEFT_ETLS_EOF (the peer closed without close_notify),
 * the connection's error, -EINVAL (not a TLS stream), -ETIMEDOUT, -ECANCELED (the stream is
 * aborted then). The caller still releases the stream. Suspends.
 */
WEFT_EXTERN int weft_tls_shutdown(weft_stream_t *s);
WEFT_EXTERN int weft_tls_shutdown_dl(weft_stream_t *s, int64_t deadline);

/* ---- what a TLS stream negotiated (valid until the stream is released) ---- */

/* True if `s` is a TLS stream (its handshake may have failed: see weft_tls_reason). */
WEFT_EXTERN bool weft_tls_is_tls(const weft_stream_t *s);

/* The ALPN protocol agreed on, or NULL (none, or not TLS). Borrowed. */
WEFT_EXTERN const char *weft_tls_alpn(const weft_stream_t *s);

/* "TLSv1.3", "TLSv1.2", or NULL. Static. */
WEFT_EXTERN const char *weft_tls_version(const weft_stream_t *s);

/* The cipher suite's name ("TLS_AES_256_GCM_SHA384"), or NULL. Static. */
WEFT_EXTERN const char *weft_tls_cipher(const weft_stream_t *s);

/* True if the handshake resumed an earlier session. */
WEFT_EXTERN bool weft_tls_session_reused(const weft_stream_t *s);

/* The server name the client sent (SNI), as seen by either side, or NULL. Borrowed. */
WEFT_EXTERN const char *weft_tls_server_name(const weft_stream_t *s);

/* The result of verifying the peer's certificate: 0 (X509_V_OK) when it verified or was not
 * verified, else OpenSSL's X509_V_ERR_* code (10 expired, 19 self-signed in chain, 20 unknown
 * issuer, 62 hostname mismatch, ...); -1 if `s` is not a TLS stream. */
WEFT_EXTERN long weft_tls_verify_result(const weft_stream_t *s);

/* Why the TLS stream failed, in words: OpenSSL's reason ("certificate verify failed: Hostname
 * mismatch", "http request", "unexpected eof while reading"), or "" while nothing failed.
 * Never NULL. Borrowed, valid until the stream is released. */
WEFT_EXTERN const char *weft_tls_reason(const weft_stream_t *s);

/* The stream's OpenSSL SSL object (borrowed), or NULL if it is not TLS. */
WEFT_EXTERN void *weft_tls_openssl(const weft_stream_t *s);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TLS_H */
