/*
 * weft-curl: an HTTP client for weft tasks on libcurl's multi-socket API (libweft-curl,
 * pkg-config weft-curl). Docs: docs/http-client.md.
 *
 * A client (aiohttp's ClientSession) owns one curl multi handle: its connection pool (keep-alive
 * and HTTP/2 connections shared by every request of the client, across tasks), its limits (total
 * connections, connections per host) and its defaults. The loop drives it: libcurl tells the
 * client which sockets to watch and when its timer is due; a driver task of the client waits on
 * them with weft_wait_fd() and a weft timer. No extra thread, no polling. A request suspends only
 * its task, and is cancelled, bounded by a deadline or a timeout scope like any weft call.
 *
 * Name resolution uses libcurl's threaded resolver (Debian's libcurl4-openssl-dev is built with
 * it: weft_curl_async_dns()), so a lookup never blocks the loop.
 *
 * Conventions are weft's: >= 0 is success, < 0 a negative errno or a WEFT_* / WEFT_CURL_* code
 * (weft_curl_strerror() and weft_curl_err_name() name both). A client belongs to the loop whose
 * task created it; nothing here is thread-safe.
 */
#ifndef WEFT_CURL_H
#define WEFT_CURL_H

#include <weft.h>

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Errors of this module (beside negative errnos: -ETIMEDOUT, -ECONNREFUSED, -EFBIG, ...). */
#define WEFT_CURL_ETLSVERIFY -4200 /* the server's certificate or name did not verify */
#define WEFT_CURL_ETLS       -4201 /* the TLS handshake failed otherwise */
#define WEFT_CURL_EREDIRECTS -4202 /* more redirects than allowed (a loop) */
#define WEFT_CURL_EPARTIAL   -4203 /* the server closed the connection before the response ended */
#define WEFT_CURL_EOTHER     -4204 /* another libcurl error: see weft_curl_response.curl_code */

/* A client (connection pool, limits and defaults); see weft_curl_client_new(). */
typedef struct weft_curl_client weft_curl_client_t;

/* Options of a client; zero-initialise and set what you need. */
struct weft_curl_client_opts {
    long max_connections;      /* open connections in all; 0 = 100 (aiohttp's limit), < 0 = none */
    long max_host_connections; /* connections per host:port; 0 = none (aiohttp's limit_per_host) */
    size_t max_body;           /* default maximum response body in bytes; 0 = 64 MiB */
    size_t max_header_bytes;   /* maximum response header block; 0 = 64 KiB */
    long idle_connections;     /* idle connections kept for reuse; 0 = curl's default (4 x limit) */
};

/*
 * Create a client on the current loop and start its driver task. `opts` may be NULL. The caller
 * owns *out and frees it with weft_curl_client_free(); any task of the same loop may use it.
 * Returns 0, -EPERM (no loop on this thread), -ENOMEM, -EMFILE (no fd for its epoll set),
 * WEFT_CURL_EOTHER (libcurl failed to initialise). Does not suspend.
 */
WEFT_EXTERN int weft_curl_client_new(weft_curl_client_t **out,
                                     const struct weft_curl_client_opts *opts);

/*
 * Close the client's connections and free it. Requests still running must have returned first:
 * -EBUSY (nothing freed) otherwise. NULL is a no-op returning 0. Does not suspend; the driver
 * task ends at its next step.
 */
WEFT_EXTERN int weft_curl_client_free(weft_curl_client_t *c);

/* The number of requests (and open streams) of the client not finished yet. */
WEFT_EXTERN size_t weft_curl_client_active(const weft_curl_client_t *c);

/* True when libcurl resolves names asynchronously (CURL_VERSION_ASYNCHDNS: a resolver thread). */
WEFT_EXTERN bool weft_curl_async_dns(void);

/*
 * A request body read piece by piece: copy up to `n` bytes into `buf` and return how many (0 at
 * the end), or a negative errno to abort the request with that error. Called from the loop (not
 * the requesting task) whenever libcurl can send; it must not suspend.
 */
typedef ssize_t (*weft_curl_read_fn)(void *buf, size_t n, void *arg);

/* One request; zero-initialise and set what you need. Everything is borrowed for the call. */
struct weft_curl_request {
    const char *url;            /* required: http:// or https:// */
    const char *method;         /* NULL: GET, or POST when a body is given; "HEAD" sends no body */
    const char *const *headers; /* "Name: value" lines (curl's rules: "Name:" removes one) */
    size_t nheaders;
    const void *body; /* a body in memory, body_len bytes ... */
    size_t body_len;
    weft_curl_read_fn body_read; /* ... or read from this function (body NULL) */
    void *body_arg;
    int64_t body_size;     /* with body_read: its length, or -1 (unknown: chunked) */
    size_t max_body;       /* maximum response body; 0 = the client's (over it: -EFBIG) */
    bool follow_redirects; /* follow 3xx Location (off by default) */
    long max_redirects;    /* with follow_redirects; 0 = 10 (over it: WEFT_CURL_EREDIRECTS) */
    bool insecure;         /* do NOT verify the TLS certificate and host name */
    const char *ca_file;   /* PEM CA bundle to verify with; NULL = the system's */
    bool http1_only;       /* never HTTP/2 (by default HTTP/2 when the server offers it) */
};

/* A response: owned by the caller after a successful request; free with weft_curl_response_free. */
struct weft_curl_response {
    int status;       /* HTTP status code, e.g. 200 */
    int http_version; /* 10, 11, 20 */
    char *headers;    /* the final response's header block: "HTTP/1.1 200 OK\r\nName: ..."
                       * NUL-terminated */
    size_t headers_len;
    char *body; /* the body (decoded when the server compressed it), NUL-terminated
                 * (the NUL is not counted), never NULL after success */
    size_t body_len;
    long redirects;       /* redirects followed */
    long new_connections; /* connections this request opened (0: it reused one) */
    int curl_code;        /* the CURLcode of a failure (also filled when the call fails) */
    char error[256];      /* libcurl's description of a failure, or "" */
};

/*
 * Send a request and wait for the whole response (aiohttp's session.request + read()).
 * Suspends the calling task only. Every status is a response (a 404 is not an error).
 * Returns 0 with `resp` filled (the caller frees it), or an error, with resp->curl_code and
 * resp->error describing it and nothing to free:
 *   WEFT_EAI_NONAME (unknown host), -ECONNREFUSED and other connect errnos, -EFBIG (body over
 *   max_body: the transfer is stopped at once, memory stays bounded), WEFT_CURL_ETLSVERIFY,
 *   WEFT_CURL_ETLS, WEFT_CURL_EREDIRECTS, WEFT_CURL_EPARTIAL (connection closed mid-response),
 *   -ECONNRESET, -EPROTO (malformed response), -EINVAL (bad request or URL), -ENOMEM,
 *   -ETIMEDOUT (_dl), -ECANCELED, -EPERM (outside a task, or `c` of another loop),
 *   WEFT_CURL_EOTHER.
 * On -ECANCELED and -ETIMEDOUT (also from a timeout scope) the transfer is removed from the
 * client at once: its connection is closed, or kept for reuse when libcurl can (HTTP/2).
 */
WEFT_EXTERN int weft_curl_request(weft_curl_client_t *c, const struct weft_curl_request *req,
                                  struct weft_curl_response *resp);
WEFT_EXTERN int weft_curl_request_dl(weft_curl_client_t *c, const struct weft_curl_request *req,
                                     struct weft_curl_response *resp, int64_t deadline);

/* Free what a response owns (headers, body) and zero it. NULL is ignored. */
WEFT_EXTERN void weft_curl_response_free(struct weft_curl_response *resp);

/*
 * Find header `name` (case-insensitive) in a header block (`headers`, as in a response) and
 * return a pointer to its value (not NUL-terminated) with its length in *len, or NULL.
 */
WEFT_EXTERN const char *weft_curl_header_find(const char *headers, size_t headers_len,
                                              const char *name, size_t *len);

/* ---- streaming a response body ---- */

/* A response whose body is read piece by piece (aiohttp's response.content). */
typedef struct weft_curl_stream weft_curl_stream_t;

/*
 * Send a request and wait for its response headers; the body is then read with
 * weft_curl_stream_read(). At most a window (64 KiB) of body is buffered: libcurl is paused
 * while the reader does not keep up. max_body applies to the bytes read. Suspends.
 * Returns 0 and *out (the caller closes it with weft_curl_stream_close()), or the errors of
 * weft_curl_request() (`info` may be NULL; when given, curl_code and error are filled on failure).
 */
WEFT_EXTERN int weft_curl_open(weft_curl_client_t *c, const struct weft_curl_request *req,
                               weft_curl_stream_t **out, struct weft_curl_response *info);
WEFT_EXTERN int weft_curl_open_dl(weft_curl_client_t *c, const struct weft_curl_request *req,
                                  weft_curl_stream_t **out, struct weft_curl_response *info,
                                  int64_t deadline);

/* The HTTP status of an open stream. */
WEFT_EXTERN int weft_curl_stream_status(const weft_curl_stream_t *s);

/* The header block of an open stream (borrowed, valid until close); *len gets its length. */
WEFT_EXTERN const char *weft_curl_stream_headers(const weft_curl_stream_t *s, size_t *len);

/*
 * Read up to `n` bytes of the body into `buf`. Returns the count (> 0), 0 at the end of the body,
 * or an error as weft_curl_request() (then every later read returns it too; -ECANCELED and
 * -ETIMEDOUT stop the transfer). Suspends while nothing is buffered.
 */
WEFT_EXTERN ssize_t weft_curl_stream_read(weft_curl_stream_t *s, void *buf, size_t n);
WEFT_EXTERN ssize_t weft_curl_stream_read_dl(weft_curl_stream_t *s, void *buf, size_t n,
                                             int64_t deadline);

/* Stop the transfer if it still runs and free the stream. NULL is ignored. Does not suspend. */
WEFT_EXTERN void weft_curl_stream_close(weft_curl_stream_t *s);

/* ---- errors ---- */

/* weft_strerror() that also knows WEFT_CURL_* codes. Never NULL. */
WEFT_EXTERN const char *weft_curl_strerror(int err);

/* weft_err_name() that also knows WEFT_CURL_* codes ("ETLSVERIFY", ...). Never NULL. */
WEFT_EXTERN const char *weft_curl_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CURL_H */
