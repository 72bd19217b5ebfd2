/*
 * Inside weft-curl: the client (one curl multi handle, its epoll set of curl's sockets, its timer
 * and its driver task) and one transfer (an easy handle with its buffers and the event its task
 * waits on). Only the public weft API is used; the core knows nothing of this module.
 */
#ifndef WEFT_CURL_INT_H
#define WEFT_CURL_INT_H

#include <weft/curl.h>

#include <curl/curl.h>

#define WC_SPARE  32 /* finished transfers (with their easy handles) kept for the next requests */
#define WC_WINDOW (64 * 1024) /* body bytes a stream buffers before pausing curl */

/* What the client knows of one fd in its epoll set (client.c, "sockets"). */
struct wc_sock {
    uint8_t mask; /* EPOLLIN/EPOLLOUT registered in the set (when `reg`) */
    bool reg;     /* in the set */
    bool ours;    /* a connection socket opened by weft__curl_open_socket(): it is closed
                   * through weft__curl_close_socket(), so the client knows when its fd number
                   * is reused */
    bool parked;  /* curl no longer watches it (an idle pooled connection) but it stays in the
                   * set, so that reusing the connection costs no epoll_ctl */
};

struct weft_curl_client {
    CURLM *multi;
    weft_loop_t *loop;
    int epfd;           /* level-triggered epoll set of curl's sockets; weft waits on it */
    struct wc_sock *socks; /* indexed by fd */
    int nsocks;
    weft_timer_t timer; /* curl's timer (CURLMOPT_TIMERFUNCTION) */
    bool timer_now;     /* the timer is armed for "as soon as possible" and has not run yet */
    int refs;           /* the owner, and the driver (dropped by its done callback) */
    bool closed;        /* weft_curl_client_free() was called */
    bool verbose;       /* WEFT_CURL_VERBOSE is set: every transfer traces to stderr */
    bool driver_gone;   /* the driver task ended (cancelled at loop shutdown) */
    size_t active;      /* transfers not freed yet */
    size_t max_body;
    size_t max_header;
    int nspare;
    struct weft_curl_stream *spare[WC_SPARE];
};

/* One transfer: weft_curl_request()'s, or the state behind a weft_curl_stream_t. */
struct weft_curl_stream {
    /* Kept when a finished transfer is recycled: */
    CURL *easy;
    int kind;       /* the easy handle's options: 0 = reset before reuse, else a plain
                     * GET's set (1 http, 2 https) that the next plain GET keeps */
    size_t set_max; /* its CURLOPT_MAXFILESIZE */
    /* Cleared for every transfer: */
    weft_curl_client_t *c;
    struct curl_slist *hdrs;
    weft_event_t ev;    /* set on completion (and, for a stream, on headers and body data) */
    bool in_multi;      /* added to the multi handle and not removed yet */
    bool done;          /* curl reported CURLMSG_DONE */
    bool streaming;     /* weft_curl_open(): body read piece by piece */
    bool headers_ready; /* streaming: the final response's headers are complete */
    bool paused;        /* streaming: the write callback paused the transfer */
    bool too_big;       /* the body went over max */
    bool hdr_too_big;   /* the header block went over max_header */
    bool follow;        /* redirects are followed */
    int code;           /* CURLcode at completion */
    int sticky;         /* streaming: the error every later read returns */
    int read_err;       /* the error the body_read function returned */
    weft_curl_read_fn body_read;
    void *body_arg;
    char *body; /* body bytes [off, len) not yet handed to the reader */
    size_t off, len, cap;
    size_t total; /* body bytes received in all */
    size_t max;
    char *hdr;
    size_t hlen, hcap, hmax;
    char errbuf[CURL_ERROR_SIZE];
};

/* client.c */
void weft__curl_client_unref(weft_curl_client_t *c);
curl_socket_t weft__curl_open_socket(void *client, curlsocktype purpose,
                                     struct curl_sockaddr *addr);
int weft__curl_close_socket(void *client, curl_socket_t s);
struct weft_curl_stream *weft__curl_req_get(weft_curl_client_t *c);
void weft__curl_req_put(weft_curl_client_t *c, struct weft_curl_stream *r);

/* request.c */
int weft__curl_map_error(struct weft_curl_stream *r);

#endif /* WEFT_CURL_INT_H */
