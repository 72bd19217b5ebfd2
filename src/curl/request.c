/*
 * Requests and streams: each transfer is an easy handle on the client's multi handle and a heap
 * object (never on the task's stack, so compact tasks may make requests). The requesting task
 * parks on the transfer's event; the driver (client.c) sets it when curl reports the transfer
 * done, and for a stream also when headers or body bytes arrive. A task that leaves early
 * (cancelled, deadline, timeout scope) removes its easy handle from the multi handle itself,
 * at once, and frees everything.
 */
#define _GNU_SOURCE
#include "curl_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Grow *buf to hold `need` bytes plus a NUL: at least `first` bytes the first time, then at
 * least double. False when out of memory. */
static bool grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need + 1 <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : first;
    if (n < need + 1)
        n = need + 1;
    char *p = realloc(*buf, n);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = n;
    return true;
}

/*
 * CURLOPT_WRITEFUNCTION: keep body bytes up to the maximum (past it, stop the transfer: curl
 * fails it with CURLE_WRITE_ERROR, reported as -EFBIG). A stream holds at most a window
 * unread: beyond it the transfer is paused (curl keeps this piece and hands it again on resume).
 */
static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct weft_curl_stream *r = ud;
    size_t n = size * nmemb;
    if (r->streaming) {
        if (r->off == r->len)
            r->off = r->len = 0;
        if (r->len > r->off && r->len - r->off + n > WC_WINDOW) {
            r->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (r->off > 0 && r->len + n + 1 > r->cap) {
            memmove(r->body, r->body + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
    }
    if (n > r->max - r->total) {
        r->too_big = true;
        return 0;
    }
    if (r->cap == 0 && !r->streaming) {
        /* One allocation of the announced size (a compressed body grows past it). */
        curl_off_t cl = -1;
        curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        size_t first = cl >= (curl_off_t)n && (size_t)cl <= r->max ? (size_t)cl + 1 : 1024;
        if (!grow(&r->body, &r->cap, n, first))
            return 0;
    }
    if (!grow(&r->body, &r->cap, r->len + n, 1024))
        return 0;
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->total += n;
    if (r->streaming) {
        r->headers_ready = true;
        weft_event_set(&r->ev);
    }
    return n;
}

/*
 * CURLOPT_HEADERFUNCTION: keep the header block of the latest response (a redirect or a 1xx
 * starts a new one). A stream's headers are ready at the end of a block that curl will not
 * follow.
 */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct weft_curl_stream *r = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->hlen = 0;
    if (r->hlen + n > r->hmax) {
        r->hdr_too_big = true;
        return 0;
    }
    if (!grow(&r->hdr, &r->hcap, r->hlen + n, 512))
        return 0;
    memcpy(r->hdr + r->hlen, p, n);
    r->hlen += n;
    r->hdr[r->hlen] = '\0';
    bool end = (n == 2 && p[0] == '\r') || (n == 1 && p[0] == '\n');
    if (end && r->streaming && !r->headers_ready) {
        long st = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
        size_t ll;
        bool redirect = r->follow && st >= 300 && st < 400 &&
                        weft_curl_header_find(r->hdr, r->hlen, "location", &ll) != NULL;
        if (st >= 200 && !redirect) {
            r->headers_ready = true;
            weft_event_set(&r->ev);
        }
    }
    return n;
}

/* CURLOPT_READFUNCTION over the caller's body_read. */
static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct weft_curl_stream *r = ud;
    ssize_t n = r->body_read(buf, size * nmemb, r->body_arg);
    if (n < 0) {
        r->read_err = (int)n;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)n > size * nmemb ? size * nmemb : (size_t)n;
}

static void req_free(struct weft_curl_stream *r)
{
    weft_curl_client_t *c = r->c;
    if (r->in_multi)
        curl_multi_remove_handle(c->multi, r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r->hdr);
    c->active--;
    weft__curl_req_put(c, r);
}

static int check_caller(weft_curl_client_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (weft_current_task() == NULL || weft_loop_current() != c->loop)
        return -EPERM;
    if (c->closed || c->driver_gone)
        return -ESHUTDOWN;
    return 0;
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                             \
            goto bad;                                                                              \
    } while (0)

/* Make the transfer for `q` and add it to the multi handle. */
static int req_start(weft_curl_client_t *c, const struct weft_curl_request *q, bool streaming,
                     struct weft_curl_stream **out)
{
    if (q == NULL || q->url == NULL || (q->body != NULL && q->body_read != NULL))
        return -EINVAL;
    struct weft_curl_stream *r = weft__curl_req_get(c);
    if (r == NULL)
        return -ENOMEM;
    r->c = c;
    c->active++;
    weft_event_init(&r->ev);
    r->streaming = streaming;
    r->follow = q->follow_redirects;
    r->max = q->max_body ? q->max_body : c->max_body;
    r->hmax = c->max_header;
    for (size_t i = 0; i < q->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->hdrs, q->headers[i]);
        if (l == NULL) {
            req_free(r);
            return -ENOMEM;
        }
        r->hdrs = l;
    }
    CURL *e = r->easy;
    bool https = strncasecmp(q->url, "https:", 6) == 0;
    /* A plain GET (the common case) on an easy handle whose last transfer was one too keeps
     * every option: only the URL (and the size limit) change. Anything else starts afresh. */
    int kind = q->method == NULL && q->body == NULL && q->body_read == NULL && q->nheaders == 0 &&
                       !q->follow_redirects && !q->insecure && q->ca_file == NULL &&
                       !q->http1_only && !c->verbose
                   ? 1 + https
                   : 0;
    if (kind != 0 && kind == r->kind) {
        SET(CURLOPT_URL, q->url);
        if (r->set_max != r->max)
            SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(r->max > INT64_MAX ? INT64_MAX : r->max));
        r->set_max = r->max;
        goto add;
    }
    if (r->kind != -1)
        curl_easy_reset(e); /* a recycled handle: forget its last transfer's options */
    r->kind = kind;
    r->set_max = r->max;
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    /* Cancelling a transfer while its name is being resolved must not join the resolver thread
     * (libcurl 7.88 waits for getaddrinfo() there otherwise): let the thread finish alone. */
    SET(CURLOPT_QUICK_EXIT, 1L);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, r);
    /* The client opens and closes the connection sockets (client.c: keep-alive without
     * epoll_ctl). */
    SET(CURLOPT_OPENSOCKETFUNCTION, weft__curl_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, c);
    SET(CURLOPT_CLOSESOCKETFUNCTION, weft__curl_close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, c);
    if (c->verbose)
        SET(CURLOPT_VERBOSE, 1L); /* WEFT_CURL_VERBOSE=1: libcurl's trace on stderr */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* every decoding curl has (gzip, deflate, br, zstd) */
    /* Over TLS (where HTTP/2 comes through ALPN) wait for a connection that may multiplex
     * rather than opening one per request. Never for plain HTTP: there a waiting transfer would
     * sit until another one ends. */
    if (!q->http1_only && https)
        SET(CURLOPT_PIPEWAIT, 1L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(r->max > INT64_MAX ? INT64_MAX : r->max));
    SET(CURLOPT_SSL_VERIFYPEER, q->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, q->insecure ? 0L : 2L);
    if (q->ca_file != NULL)
        SET(CURLOPT_CAINFO, q->ca_file);
    SET(CURLOPT_HTTP_VERSION,
        q->http1_only ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
    if (q->follow_redirects) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, q->max_redirects > 0 ? q->max_redirects : 10L);
    }
    bool has_body = q->body != NULL || q->body_read != NULL;
    if (q->body != NULL) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        SET(CURLOPT_POSTFIELDS, q->body);
    } else if (q->body_read != NULL) {
        r->body_read = q->body_read;
        r->body_arg = q->body_arg;
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_READDATA, r);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body_size >= 0 ? q->body_size : -1));
    }
    if (q->method != NULL) {
        if (strcmp(q->method, "HEAD") == 0)
            SET(CURLOPT_NOBODY, 1L);
        else if (strcmp(q->method, has_body ? "POST" : "GET") != 0)
            SET(CURLOPT_CUSTOMREQUEST, q->method);
    }
    if (has_body) {
        /* No "Expect: 100-continue" round trip (curl waits up to a second for it). */
        struct curl_slist *l = curl_slist_append(r->hdrs, "Expect:");
        if (l == NULL) {
            req_free(r);
            return -ENOMEM;
        }
        r->hdrs = l;
    }
    if (r->hdrs != NULL)
        SET(CURLOPT_HTTPHEADER, r->hdrs);
add:
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        req_free(r);
        return -ENOMEM;
    }
    r->in_multi = true;
    *out = r;
    return 0;
bad:
    r->kind = 0; /* half set up: reset before the next use */
    req_free(r);
    return -EINVAL;
}

int weft__curl_map_error(struct weft_curl_stream *r)
{
    if (r->read_err < 0)
        return r->read_err;
    if (r->too_big)
        return -EFBIG;
    if (r->hdr_too_big)
        return -EMSGSIZE;
    long oserr = 0;
    switch ((CURLcode)r->code) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return WEFT_EAI_NONAME;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
        if (oserr > 0)
            return -(int)oserr;
        return r->code == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -ECONNRESET;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return -EFBIG;
    case CURLE_PEER_FAILED_VERIFICATION:
        return WEFT_CURL_ETLSVERIFY;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return WEFT_CURL_ETLS;
    case CURLE_TOO_MANY_REDIRECTS:
        return WEFT_CURL_EREDIRECTS;
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        return WEFT_CURL_EPARTIAL;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return r->code == CURLE_UNSUPPORTED_PROTOCOL ? -EINVAL : -EPROTO;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return -EINVAL;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR: /* our write callback refuses only when out of memory */
        return -ENOMEM;
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return -EIO;
    default:
        return WEFT_CURL_EOTHER;
    }
}

/* Describe a failure in `info` (curl_code, error). */
static void describe(struct weft_curl_response *info, struct weft_curl_stream *r, int err)
{
    if (info == NULL)
        return;
    info->curl_code = r->code;
    const char *msg = r->errbuf[0] ? r->errbuf
                      : r->code    ? curl_easy_strerror((CURLcode)r->code)
                                   : weft_curl_strerror(err);
    snprintf(info->error, sizeof(info->error), "%s", msg);
}

/* Wait for `r` to be done (or, streaming, for its headers); on an early exit stop it. */
static int wait_for(struct weft_curl_stream *r, int64_t deadline)
{
    while (!r->done && !(r->streaming && r->headers_ready)) {
        weft_event_clear(&r->ev);
        int e = weft_event_wait_dl(&r->ev, deadline);
        if (e < 0)
            return e;
    }
    return 0;
}

static void fill_info(struct weft_curl_response *resp, struct weft_curl_stream *r)
{
    long v = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &v);
    resp->status = (int)v;
    v = 0;
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v);
    resp->http_version = v == CURL_HTTP_VERSION_1_0   ? 10
                         : v == CURL_HTTP_VERSION_1_1 ? 11
                         : v == CURL_HTTP_VERSION_2_0 ? 20
                         : v == CURL_HTTP_VERSION_3   ? 30
                                                      : 0;
    v = 0;
    curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_COUNT, &v);
    resp->redirects = v;
    v = 0;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &v);
    resp->new_connections = v;
}

int weft_curl_request_dl(weft_curl_client_t *c, const struct weft_curl_request *req,
                         struct weft_curl_response *resp, int64_t deadline)
{
    if (resp == NULL)
        return -EINVAL;
    memset(resp, 0, sizeof(*resp));
    int err = check_caller(c);
    if (err < 0)
        return err;
    struct weft_curl_stream *r;
    err = req_start(c, req, false, &r);
    if (err < 0)
        return err;
    err = wait_for(r, deadline);
    if (err == 0)
        err = weft__curl_map_error(r);
    if (err < 0) {
        describe(resp, r, err);
        req_free(r);
        return err;
    }
    fill_info(resp, r);
    if (!grow(&r->body, &r->cap, r->len, 1) || !grow(&r->hdr, &r->hcap, r->hlen, 1)) {
        req_free(r);
        return -ENOMEM;
    }
    r->body[r->len] = '\0';
    r->hdr[r->hlen] = '\0';
    resp->body = r->body;
    resp->body_len = r->len;
    resp->headers = r->hdr;
    resp->headers_len = r->hlen;
    r->body = r->hdr = NULL;
    req_free(r);
    return 0;
}

int weft_curl_request(weft_curl_client_t *c, const struct weft_curl_request *req,
                      struct weft_curl_response *resp)
{
    return weft_curl_request_dl(c, req, resp, WEFT_NO_DEADLINE);
}

void weft_curl_response_free(struct weft_curl_response *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof(*resp));
}

const char *weft_curl_header_find(const char *h, size_t hlen, const char *name, size_t *len)
{
    if (h == NULL || name == NULL)
        return NULL;
    size_t nl = strlen(name);
    const char *end = h + hlen;
    const char *p = memchr(h, '\n', hlen); /* skip the status line */
    while (p != NULL && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (len != NULL)
                *len = (size_t)(ve - v);
            return v;
        }
        p = eol < end ? eol : NULL;
    }
    return NULL;
}

/* ---- streams ---- */

int weft_curl_open_dl(weft_curl_client_t *c, const struct weft_curl_request *req,
                      weft_curl_stream_t **out, struct weft_curl_response *info, int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (info != NULL)
        memset(info, 0, sizeof(*info));
    int err = check_caller(c);
    if (err < 0)
        return err;
    struct weft_curl_stream *r;
    err = req_start(c, req, true, &r);
    if (err < 0)
        return err;
    err = wait_for(r, deadline);
    if (err == 0 && r->done && !r->headers_ready)
        err = weft__curl_map_error(r); /* else the reads return the body, then the error */
    if (err < 0) {
        describe(info, r, err);
        req_free(r);
        return err;
    }
    if (info != NULL)
        fill_info(info, r);
    *out = r;
    return 0;
}

int weft_curl_open(weft_curl_client_t *c, const struct weft_curl_request *req,
                   weft_curl_stream_t **out, struct weft_curl_response *info)
{
    return weft_curl_open_dl(c, req, out, info, WEFT_NO_DEADLINE);
}

int weft_curl_stream_status(const weft_curl_stream_t *s)
{
    long v = 0;
    if (s == NULL)
        return -EINVAL;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &v);
    return (int)v;
}

const char *weft_curl_stream_headers(const weft_curl_stream_t *s, size_t *len)
{
    if (len != NULL)
        *len = s != NULL ? s->hlen : 0;
    return s != NULL && s->hdr != NULL ? s->hdr : "";
}

ssize_t weft_curl_stream_read_dl(weft_curl_stream_t *s, void *buf, size_t n, int64_t deadline)
{
    if (s == NULL || (buf == NULL && n > 0))
        return -EINVAL;
    if (weft_current_task() == NULL)
        return -EPERM;
    for (;;) {
        if (s->sticky < 0)
            return s->sticky;
        if (s->len > s->off) {
            size_t k = s->len - s->off < n ? s->len - s->off : n;
            memcpy(buf, s->body + s->off, k);
            s->off += k;
            if (s->off == s->len) {
                s->off = s->len = 0;
                if (s->paused && s->in_multi) {
                    s->paused = false;
                    curl_easy_pause(s->easy, CURLPAUSE_CONT); /* may call on_write at once */
                }
            }
            return (ssize_t)k;
        }
        if (n == 0)
            return 0;
        if (s->done) {
            int err = weft__curl_map_error(s);
            if (err < 0)
                s->sticky = err;
            return err;
        }
        weft_event_clear(&s->ev);
        int e = weft_event_wait_dl(&s->ev, deadline);
        if (e < 0) {
            if (s->in_multi) {
                curl_multi_remove_handle(s->c->multi, s->easy);
                s->in_multi = false;
            }
            s->sticky = e;
            return e;
        }
    }
}

ssize_t weft_curl_stream_read(weft_curl_stream_t *s, void *buf, size_t n)
{
    return weft_curl_stream_read_dl(s, buf, n, WEFT_NO_DEADLINE);
}

void weft_curl_stream_close(weft_curl_stream_t *s)
{
    if (s != NULL)
        req_free(s);
}

/* ---- errors ---- */

const char *weft_curl_strerror(int err)
{
    switch (err) {
    case WEFT_CURL_ETLSVERIFY:
        return "TLS certificate verification failed";
    case WEFT_CURL_ETLS:
        return "TLS handshake failed";
    case WEFT_CURL_EREDIRECTS:
        return "too many redirects";
    case WEFT_CURL_EPARTIAL:
        return "connection closed before the response ended";
    case WEFT_CURL_EOTHER:
        return "libcurl error";
    default:
        return weft_strerror(err);
    }
}

const char *weft_curl_err_name(int err)
{
    switch (err) {
    case WEFT_CURL_ETLSVERIFY:
        return "ETLSVERIFY";
    case WEFT_CURL_ETLS:
        return "ETLS";
    case WEFT_CURL_EREDIRECTS:
        return "EREDIRECTS";
    case WEFT_CURL_EPARTIAL:
        return "EPARTIAL";
    case WEFT_CURL_EOTHER:
        return "ECURL";
    default:
        return weft_err_name(err);
    }
}
