/*
 * The HTTP module's private declarations: the server, a connection, a request.
 */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <weft/http.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define WEFT__HTTP_LIKELY(x)   __builtin_expect(!!(x), 1)
#define WEFT__HTTP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* tchar (RFC 9110 5.6.2): 1 for a token byte (parse.c). */
extern const unsigned char weft__http_tchar[256] __attribute__((visibility("hidden")));

/* ASCII lower case of one byte. */
static inline char weft__http_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* The value of a hex digit, or -1. */
static inline int weft__http_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = weft__http_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copy n bytes: up to 32 with two (possibly overlapping) moves of 4, 8 or 16 bytes, inline
 * (the heads' short names, values and bodies; a libc call costs more than the copy), more
 * with memcpy. */
static inline void weft__http_copy(char *d, const char *s, size_t n)
{
    if (n >= 16 && n <= 32) {
        char a[16], b[16];
        __builtin_memcpy(a, s, 16);
        __builtin_memcpy(b, s + n - 16, 16);
        __builtin_memcpy(d, a, 16);
        __builtin_memcpy(d + n - 16, b, 16);
    } else if (n >= 8 && n < 16) {
        uint64_t a, b;
        __builtin_memcpy(&a, s, 8);
        __builtin_memcpy(&b, s + n - 8, 8);
        __builtin_memcpy(d, &a, 8);
        __builtin_memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        __builtin_memcpy(&a, s, 4);
        __builtin_memcpy(&b, s + n - 4, 4);
        __builtin_memcpy(d, &a, 4);
        __builtin_memcpy(d + n - 4, &b, 4);
    } else if (n > 0) {
        __builtin_memcpy(d, s, n);
    }
}

/* Zero n >= 16 bytes with 16-byte stores (SSE2) or memset: gcc makes a memset of a mid-sized
 * struct `rep stos`, whose start-up costs more than the few stores (the request's and the head's
 * resets, once per request). */
static inline void weft__http_zero(void *p, size_t n)
{
#if defined(__SSE2__)
    char *c = p;
    size_t i = 0;
#pragma GCC unroll 16
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(void *)(c + i), _mm_setzero_si128());
    if (i < n)
        _mm_storeu_si128((__m128i *)(void *)(c + n - 16), _mm_setzero_si128());
#else
    memset(p, 0, n);
#endif
}

/* A growable byte buffer (malloc'd). */
struct hbuf {
    char *p;
    size_t len, cap;
};

/* A doubly linked list node. */
struct hlist {
    struct hlist *next, *prev;
};

static inline void weft__http_list_init(struct hlist *l)
{
    l->next = l->prev = l;
}

static inline void weft__http_list_add(struct hlist *l, struct hlist *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void weft__http_list_remove(struct hlist *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Slots of the keep-alive wheel: at least the ticks of a timeout plus two (server.c). */
#define WEFT__HTTP_KA_TICKS 16
#define WEFT__HTTP_KA_SLOTS (WEFT__HTTP_KA_TICKS + 2)

struct weft_http_server {
    uint32_t refs;
    bool shutting;
    weft_server_t *srv;
    weft_http_handler_fn handler;
    void *arg;
    struct weft_http_server_opts opts;
    size_t max_body;
    double header_to, keepalive_to, body_to, write_to;
    int64_t header_ns, keepalive_ns; /* the same in ns, -1 for none (the per-request ones) */
    char server_line[128];           /* "Server: name\r\n", or empty */
    size_t server_len;
    struct hlist conns; /* struct conn.link */
    size_t nconns;
    /* The keep-alive wheel (server.c, "keep-alive idle"): connections waiting for their next
     * request, in the slot of the tick they began waiting in; one timer ticks for all. */
    weft_loop_t *loop;
    weft_timer_t ka_timer;
    uint64_t ka_tick;       /* ticks so far (a connection's stamp) */
    int64_t ka_tick_ns;     /* the tick's period: keepalive_ns / 16, at least 1 ms */
    uint64_t ka_ticks;      /* ticks that make a timeout: ceil(keepalive_ns / ka_tick_ns) */
    size_t ka_count;        /* connections in the wheel */
    bool ka_running;        /* ka_timer is armed */
    struct hlist ka_slot[WEFT__HTTP_KA_SLOTS];
};

/* One connection (on its task's stack). */
struct conn {
    struct hlist link;
    weft_http_server_t *hs;
    weft_stream_t *s;
    weft_task_t *task;
    int64_t first_dl; /* the first request's head deadline (from the accept) */
    size_t nreq;
    bool idle;                      /* waiting for a request's first byte */
    struct hlist ka_link;           /* in hs->ka_slot[ka_stamp % slots], or alone */
    uint64_t ka_stamp;              /* hs->ka_tick when its keep-alive wait began (or ~0) */
    bool reading;                   /* reading a request head */
    struct hbuf out;                /* the response head being built */
    struct hbuf headcopy;           /* the request head, once a body read must move it */
    struct weft_http_parser parser; /* its limits set once; reset for each request */
};

static inline struct conn *weft__http_conn_of(struct hlist *n)
{
    return (struct conn *)(void *)((char *)n - offsetof(struct conn, link));
}

#define WEFT_HTTP_MAX_PARAMS 16

struct weft_http_request {
    struct weft_http_head head; /* reset by the parser for each request */
    struct conn *c;
    struct hbuf owned; /* body_all's copy (kept across requests, emptied) */
    struct hbuf hdrs;  /* added response headers, "Name: value\r\n" each (kept, emptied) */
    /* A new request resets everything from here to params. */
    const char *head_ptr; /* the head's bytes (stream buffer, or headcopy once kept) */
    size_t head_len;
    bool head_kept;
    bool is_head;
    /* body */
    uint64_t body_left; /* Content-Length bytes left */
    size_t body_total;  /* chunked bytes so far */
    struct weft_http_chunked chunk;
    bool body_done;
    bool continue_sent;
    int body_err;      /* the body's failure, once it failed */
    int err_status;    /* the status that failure calls for (400, 408, 413), or 0 */
    const char *piece; /* body_read's rest of the last piece */
    size_t piece_len;
    /* response */
    int status;
    bool started, ended, chunked_out;
    bool close_after; /* the connection closes after this response */
    bool abort;       /* the response cannot be completed: drop the connection */
    size_t nparams;
    /* router (last: a new request does not reset it; nparams says what is set) */
    struct {
        const char *name;
        size_t nlen;
        struct weft_http_str value;
    } params[WEFT_HTTP_MAX_PARAMS];
};

/* Growable buffers (respond.c): room for `more` bytes, append, free. 0 or -ENOMEM. */
int weft__hbuf_reserve(struct hbuf *b, size_t more);
int weft__hbuf_add(struct hbuf *b, const void *d, size_t n);
void weft__hbuf_free(struct hbuf *b);

/* Answer `req` with `status` and a whole body (respond.c; weft_http_respond without its checks). */
int weft__http_respond_impl(weft_http_request_t *req, int status, const void *body, size_t len);

/* The request's connection will close after this response. */
static inline bool weft__http_will_close(weft_http_request_t *req)
{
    struct conn *c = req->c;
    return req->close_after || !req->head.keep_alive || c->hs->shutting ||
           (c->hs->opts.max_requests > 0 && c->nreq >= c->hs->opts.max_requests);
}

#endif /* WEFT_HTTP_INTERNAL_H */
