/*
 * weft HTTP/1.1 server module (libweft-http, pkg-config weft-http): a strict, zero-copy,
 * incremental request parser; a server with keep-alive, pipelining, bodies as streams, limits and
 * timeouts, graceful shutdown; and a small router. See docs/http-server.md.
 *
 * Conventions: calls return >= 0 on success and a negative errno on failure, as in weft.h. The
 * parser returns the negated HTTP status it would answer with (-400, -414, -431, -501, -505).
 * Strings from requests are slices (pointer and length, NOT NUL-terminated) into the
 * connection's buffer: valid until the handler returns.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <weft.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================
 * The parser (usable on its own: no loop, no allocation)
 * ============================================================================================ */

/* A slice of the request's bytes. */
struct weft_http_str {
    const char *p;
    size_t n;
};

/* One header field as received: name and value (without surrounding whitespace). */
struct weft_http_header {
    struct weft_http_str name;
    struct weft_http_str value;
};

/* Limits of a parse; 0 picks the default. */
struct weft_http_limits {
    size_t max_target;       /* request-target bytes: beyond them 414 (default 8 KiB) */
    size_t max_header_bytes; /* the header section's bytes (after the request line): 431 (8 KiB) */
    size_t max_headers;      /* header fields: beyond them 431 (default 100) */
};

#define WEFT_HTTP_MAX_TARGET       8192
#define WEFT_HTTP_MAX_HEADER_BYTES 8192
#define WEFT_HTTP_MAX_HEADERS      100

/* A parsed request head. Everything points into the parsed buffer. */
struct weft_http_head {
    struct weft_http_str method; /* a token, e.g. "GET" (case-sensitive, as RFC 9110 says) */
    struct weft_http_str target; /* the request-target as sent */
    struct weft_http_str path;   /* the target's path ("/a/b"; "*" for OPTIONS *) */
    struct weft_http_str query;  /* after '?', without it; p == NULL when there is no '?' */
    int minor;                   /* HTTP/1.<minor>: 0 or 1 */
    struct weft_http_header *headers; /* the caller's array, in the order received */
    size_t nheaders;
    /* What the parser derived from the headers: */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* by version and Connection */
    bool expect_continue;   /* Expect: 100-continue */
    bool upgrade;           /* Connection: upgrade with an Upgrade field (not served: answered) */
};

/*
 * An incremental parser: call weft_http_parse() with the bytes received so far (the same
 * prefix, growing; the buffer may move between calls); each call looks only at new complete
 * lines, so a peer trickling bytes costs O(n) in all. Zero-initialise (or weft_http_parser_init)
 * before each request.
 */
struct weft_http_parser {
    struct weft_http_limits lim;
    /* private: */
    size_t pos;        /* offset of the first line not parsed yet */
    size_t scan;       /* how far the search for a line end got */
    size_t line_start; /* offset of the header section */
    const char *base;  /* the buffer of the last call (to re-base slices when it moved) */
    int state;         /* 0 request line, 1 headers */
    struct {
        bool te, te_chunked, te_other, te_bad;
        bool conn_close, conn_keep, conn_upgrade, has_upgrade;
        int hosts;
        int expect;
    } f;
};

/* Reset `p` for a new request, with `lim` (NULL: defaults). */
WEFT_EXTERN void weft_http_parser_init(struct weft_http_parser *p, const struct weft_http_limits *lim);

/*
 * Parse a request head from buf[0..len). `head->headers` must point at an array of `cap`
 * entries (cap >= the max_headers limit to get 431 rather than fewer fields; cap below it lowers
 * the limit). Returns the head's length (> 0: the body, if any, starts at buf + that) once the
 * empty line is seen; 0 when more bytes are needed; or a negated HTTP status on a bad request:
 * -400 (malformed, or ambiguous framing: what request smuggling uses), -414 (target too long),
 * -431 (header section too large or too many fields), -501 (a transfer coding other than
 * chunked), -505 (an HTTP version other than 1.0 and 1.1), -417 (an Expect other than
 * 100-continue). After an error, the connection must be closed. Does not suspend.
 */
WEFT_EXTERN ssize_t weft_http_parse(struct weft_http_parser *p, const char *buf, size_t len,
                                    struct weft_http_head *head, size_t cap);

/* The chunked transfer coding's decoder (incremental, zero-copy). Zero-initialise. */
struct weft_http_chunked {
    int state;
    uint64_t remaining;   /* bytes left in the current chunk */
    size_t trailer_bytes; /* bytes of trailer section seen (bounded like headers) */
    size_t max_trailer;   /* 0 = WEFT_HTTP_MAX_HEADER_BYTES */
    bool done;            /* the last chunk and the trailers were read */
};

/*
 * Decode from buf[0..len): returns how many bytes to consume (>= 0) and points *data / *dlen at
 * body bytes inside them (possibly none). Call again with the rest; 0 with *dlen 0 and not
 * c->done means more bytes are needed. -400 for a malformed chunk (bad size, size overflow,
 * missing CRLF, bad trailer), -431 for an over-long trailer section. Does not suspend.
 */
WEFT_EXTERN ssize_t weft_http_chunked_decode(struct weft_http_chunked *c, const char *buf,
                                             size_t len, const char **data, size_t *dlen);

/* ---- small helpers on slices ---- */

/* True when `s` equals the NUL-terminated `lit`, exactly / ignoring ASCII case. */
WEFT_EXTERN bool weft_http_str_eq(struct weft_http_str s, const char *lit);
WEFT_EXTERN bool weft_http_str_caseeq(struct weft_http_str s, const char *lit);

/*
 * Percent-decode src[0..n) into dst (cap bytes, NUL-terminated). '+' is left as is (paths).
 * Returns the decoded length, -EINVAL for a bad escape or an encoded NUL, -ENOSPC if it does
 * not fit.
 */
WEFT_EXTERN ssize_t weft_http_pct_decode(const char *src, size_t n, char *dst, size_t cap);

/* The standard reason phrase of `status` ("OK", "Not Found", ...; "" when unknown). */
WEFT_EXTERN const char *weft_http_reason(int status);

/* ============================================================================================
 * The server
 * ============================================================================================ */

typedef struct weft_http_request weft_http_request_t;
typedef struct weft_http_server weft_http_server_t;

/*
 * A request handler. It runs in the connection's task, once per request, requests of one
 * connection one after another (pipelined requests are answered in order). It answers with one
 * of the weft_http_respond* calls. Returning a negative value (or not answering) before the
 * response began gives a 500 (413 or 400 if a body read failed so) and the error is reported
 * through the loop's error handler; after the response began, the connection is closed.
 */
typedef int (*weft_http_handler_fn)(weft_http_request_t *req, void *arg);

/* Server options; zero-initialise and set what you need (0 = the default in brackets). */
struct weft_http_server_opts {
    struct weft_http_limits limits; /* [8 KiB target, 8 KiB header section, 100 fields] */
    size_t max_body;          /* body bytes: a larger Content-Length gets 413 [1 MiB] */
    double header_timeout;    /* seconds for the whole request head, from its first byte (and
                               * for the first request, from accept): 408 and close [10] */
    double keepalive_timeout; /* idle seconds between requests before closing [5] */
    double body_timeout;      /* seconds a body read may wait for the next bytes [30] */
    double write_timeout;     /* seconds a response write may wait for the peer [30] */
    size_t max_connections;   /* connections served at once; more wait in the backlog [10000] */
    size_t max_requests;      /* requests per connection before closing it [0: no limit] */
    const char *server_name;  /* the Server header; NULL: none */
    int backlog;              /* listen() backlog [1024] */
    bool reuse_port;          /* SO_REUSEPORT */
    size_t stack_size;        /* connection task stack [the loop's default] */
    /* HTTPS: a server context of the TLS module (weft_tls_ctx_t *, include/weft/tls.h), when
     * libweft-http was built with that module (weft-http.pc then requires weft-tls): each
     * connection makes its handshake first (weft_tls_server_start). Borrowed: the server takes
     * its own reference. In a build without the TLS module, a non-NULL value makes
     * weft_http_server_start() fail with -EPROTONOSUPPORT. NULL: plain HTTP. */
    void *tls;
};

/*
 * Listen on `host` (NULL: all interfaces) and `port` (0: a free one) and serve HTTP/1.1 with
 * `handler(req, arg)` for every request. The caller owns *out (weft_http_server_release).
 * Returns 0, or the errors of weft_server_start(), -EINVAL, -ENOMEM, -EPROTONOSUPPORT (tls set).
 * Suspends only to resolve a host name.
 */
WEFT_EXTERN int weft_http_server_start(weft_http_server_t **out, weft_http_handler_fn handler,
                                       void *arg, const char *host, int port,
                                       const struct weft_http_server_opts *opts);

/* The local port (after port 0), or a negative errno. */
WEFT_EXTERN int weft_http_server_port(const weft_http_server_t *srv);

/* The number of connections open now. */
WEFT_EXTERN size_t weft_http_server_connections(const weft_http_server_t *srv);

/*
 * Graceful shutdown: stop accepting at once, close idle keep-alive connections at once, let
 * requests in flight finish (their responses say Connection: close) until `grace` seconds have
 * passed, then cancel the handlers still running (a cancelled one gets a 500 if its response had
 * not begun) and wait for them. Returns the number of connections that had to be cancelled
 * (>= 0), or -ECANCELED (the caller was cancelled: everything is cancelled before returning),
 * -EINVAL. Suspends.
 */
WEFT_EXTERN int weft_http_server_shutdown(weft_http_server_t *srv, double grace);

/* Wait until the server is shut down (or closed) and every connection ended. Suspends. */
WEFT_EXTERN int weft_http_server_wait_closed(weft_http_server_t *srv);

/* Stop accepting, close the idle connections, and drop the caller's reference, without waiting:
 * requests in flight still run, and still use `arg`; call weft_http_server_shutdown() first to
 * know when they are done. The memory goes once the last connection ended. Does not suspend. */
WEFT_EXTERN void weft_http_server_release(weft_http_server_t *srv);

/* ---- requests ---- */

/* The parsed head of the request (method, target, path, query, headers, framing). Borrowed. */
WEFT_EXTERN const struct weft_http_head *weft_http_request_head(const weft_http_request_t *req);

/*
 * The value of header `name` (case-insensitive), the `index`-th occurrence (0 = the first), so a
 * repeated header can be read in full. Returns true and sets *value, false if absent.
 */
WEFT_EXTERN bool weft_http_request_header(const weft_http_request_t *req, const char *name,
                                          size_t index, struct weft_http_str *value);

/* The connection's stream (for the peer's address, weft_stream_fd). Borrowed. */
WEFT_EXTERN weft_stream_t *weft_http_request_stream(const weft_http_request_t *req);

/*
 * The next piece of the request body, zero-copy: points *data / *len at bytes valid until the
 * next body call or the end of the handler. *len 0 means the body ended (or there is none).
 * The first call sends "100 Continue" when the client asked for it. Returns 0, or -EFBIG (the
 * body exceeds max_body: the server answers 413), -EPROTO (malformed chunked coding or the
 * body ended early: 400), -ETIMEDOUT (body_timeout: 408), the stream's error, -ECANCELED.
 * Suspends.
 */
WEFT_EXTERN int weft_http_body_next(weft_http_request_t *req, const char **data, size_t *len);

/* Copy up to `n` body bytes into `buf`: the count, 0 at the end of the body, or the errors of
 * weft_http_body_next(). Suspends. */
WEFT_EXTERN ssize_t weft_http_body_read(weft_http_request_t *req, void *buf, size_t n);

/* The whole body (at most max_body bytes) in memory owned by the request (freed after the
 * handler): returns 0 with *data / *len, or the errors of weft_http_body_next(). Suspends. */
WEFT_EXTERN int weft_http_body_all(weft_http_request_t *req, const char **data, size_t *len);

/* ---- responses ---- */

/*
 * Add a response header (before the response begins): `name` and `value` are copied; CR, LF and
 * NUL in them give -EINVAL (no header injection). Date, Content-Length, Transfer-Encoding and
 * Connection are written by the server. Returns 0, -EINVAL, -EALREADY (response begun),
 * -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_http_header_add(weft_http_request_t *req, const char *name,
                                     const char *value);

/*
 * Send a whole response: status, the added headers, Content-Length and `body` (borrowed during
 * the call; no body bytes for HEAD, 204 and 304). Returns 0, -EALREADY (already answered), the
 * stream's error, -ETIMEDOUT (write_timeout), -ECANCELED. Suspends (backpressure).
 */
WEFT_EXTERN int weft_http_respond(weft_http_request_t *req, int status, const void *body,
                                  size_t len);

/*
 * Begin a response whose body is produced in pieces: chunked for HTTP/1.1, or delimited by the
 * close of the connection for HTTP/1.0. Then weft_http_respond_chunk() any number of times and
 * weft_http_respond_end(). Returns as weft_http_respond(). Suspends.
 */
WEFT_EXTERN int weft_http_respond_start(weft_http_request_t *req, int status);
WEFT_EXTERN int weft_http_respond_chunk(weft_http_request_t *req, const void *data, size_t len);
WEFT_EXTERN int weft_http_respond_end(weft_http_request_t *req);

/*
 * Send `len` bytes of the open file `fd` from `offset` as the body (Content-Length: len), with
 * sendfile(2). Borrows `fd`. Returns as weft_http_respond(), or the error reading the file
 * (the connection is then closed: the length was already promised). Suspends.
 */
WEFT_EXTERN int weft_http_respond_file(weft_http_request_t *req, int status, int fd, off_t offset,
                                       size_t len);

/* True once the response began (its head was written). */
WEFT_EXTERN bool weft_http_response_started(const weft_http_request_t *req);

/* ============================================================================================
 * The router
 * ============================================================================================ */

typedef struct weft_http_router weft_http_router_t;

/* Make an empty router. Returns 0 or -ENOMEM. The caller owns *out. Does not suspend. */
WEFT_EXTERN int weft_http_router_new(weft_http_router_t **out);
WEFT_EXTERN void weft_http_router_free(weft_http_router_t *r);

/*
 * Route `method` ("GET", ...; "*" for any) and `pattern` to `fn(req, arg)`. A pattern is a path
 * of literal segments and `{name}` segments, each of which matches one non-empty segment of the
 * (still percent-encoded) path: "/users/{id}/posts". Routes are tried in the order added.
 * GET routes also answer HEAD. Returns 0, -EINVAL (bad pattern), -ENOMEM. Does not suspend.
 */
WEFT_EXTERN int weft_http_route(weft_http_router_t *r, const char *method, const char *pattern,
                                weft_http_handler_fn fn, void *arg);

/*
 * A weft_http_handler_fn that dispatches through the router given as `arg`: the first route
 * whose pattern and method match runs; a path that some route matches with another method gets
 * 405 with Allow; no match 404.
 */
WEFT_EXTERN int weft_http_router_handler(weft_http_request_t *req, void *router);

/* The value of the route parameter `name` for this request (raw, percent-encoded). Returns true
 * and sets *value, false if the route has no such parameter. */
WEFT_EXTERN bool weft_http_param(const weft_http_request_t *req, const char *name,
                                 struct weft_http_str *value);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_HTTP_H */
