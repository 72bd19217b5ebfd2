/*
 * weft-tls contexts: one SSL_CTX per context, shared by every connection (OpenSSL 3.0 pays its
 * algorithm fetches per SSL_CTX, not per connection then), with weft's defaults (docs/tls.md),
 * and a client context's session cache keyed by server name and port, for resumption.
 */
#define _GNU_SOURCE
#include "tls/tls_int.h"

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

SSL_SESSION *weft__tls_find_session(weft_tls_ctx_t *ctx, const char *key)
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
    if (weft__tls_bio_method() == NULL)
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
