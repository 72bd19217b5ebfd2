/*
 * Declarations shared by the networking files (src/net): the stream object with its reader and
 * writer halves, the wait lists its calls park on, and the resolver entry point.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include "internal.h"
#include "arch/sys.h"

#include <netdb.h>
#include <sys/socket.h>

/* A task parked on one of a stream's or server's wait lists (lives on the task's stack). */
struct weft__nwaiter {
    struct weft__list link;
    weft_task_t *task;
};

/* The fields a request's read and write touch come first: a stream starts on a cache line, so
 * the usual request reads and writes one line of it. */
struct weft_stream {
    uint32_t refs;
    int fd;           /* -1: no fd (fed by hand), or closed */
    uint8_t is_sock;  /* send/recv with flags, else write/read */
    uint8_t rdrained; /* the last recv() was short: the socket is drained, wait before the next */
    uint8_t eof;      /* reader: end of stream seen or fed */
    uint8_t closing;  /* close() or abort() was called */
    uint8_t closed;   /* the fd is released */
    uint8_t eof_req;  /* write_eof() was called */
    uint8_t eof_done; /* shutdown(SHUT_WR) was made */
    uint8_t paused;   /* writer above high-water, until it drops to low-water */
    uint8_t flushing; /* the background flush task runs (and holds a reference) */
    uint8_t aborted;  /* abort() was called: a transport closes without its goodbye */
    uint8_t tp_rwait; /* with a transport: what its last EAGAIN read waits for (WEFT_*ABLE) */
    uint8_t tp_wwait; /* with a transport: what its last EAGAIN write waits for */
    int rerr;         /* reader error: every reader call returns it */
    int cerr;         /* the connection's error (first fatal read or write error) */
    /* reader */
    weft_task_t *rtask; /* the task waiting for data, to wake it from feed/close/set_error */
    struct weft__fdstate *rst; /* the fd's waiters in the loop's table, once a read waited */
    size_t rpos; /* first unconsumed byte */
    size_t rend; /* end of buffered bytes */
    char *rbuf;
    size_t rcap;
    size_t limit;
    /* writer */
    char *wbuf;
    size_t wcap;
    size_t wpos;
    size_t wend;
    size_t whigh;
    size_t wlow;
    struct weft__list drainers; /* struct weft__nwaiter */
    struct weft__list closers;  /* wait_closed() callers */
    /* a server's connection */
    struct weft__list slink; /* in the server's list while its handler runs */
    weft_server_t *server;   /* that server, or NULL */
    /* a transport over the fd (net/transport.h), or NULL for the plain fd */
    const struct weft__transport *tp;
    void *tpctx; /* the transport's per-stream state */
    /* sendfile (sendfile.c) */
    uint8_t sending;             /* a weft_stream_sendfile() call runs */
    uint8_t handover;            /* the flush task stopped for it: it is the flusher now */
    size_t sendq;                /* queued bytes the flush task still sends before the file */
    struct weft__list flushwait; /* the sendfile waits here for the handover */
};

/* Drop a reference a call took for its wait: inline unless it is the last (then
 * weft_stream_release() closes and frees the stream). */
static inline void weft__stream_unref(weft_stream_t *s)
{
    if (WEFT__LIKELY(s->refs > 1))
        s->refs--;
    else
        weft_stream_release(s);
}

/* Resolve host/port into a list to free with freeaddrinfo(). Suspends only for real names. */
int weft__net_resolve(const char *host, int port, int family, int socktype, int flags,
                      struct addrinfo **res, int64_t deadline);

/* Make a stream of a connected socket we created (non-blocking already). Takes `fd`. */
int weft__stream_wrap(weft_stream_t **out, int fd, bool is_sock, size_t limit, size_t write_high);

/* Release the fd now and wake everything waiting for the close. */
void weft__stream_do_close(weft_stream_t *s);

/* Record a fatal connection error: the queue is dropped and drainers wake with it. */
void weft__stream_fail(weft_stream_t *s, int err);

/* Fill a Unix address for `path` ("@name": abstract namespace). */
struct sockaddr_un;
int weft__unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len);

/* Wake every task on `list` with `result`. */
void weft__nwaiters_wake_all(struct weft__list *list, int result);

/* Park the current task `t` on `list` until woken or `deadline`. */
int weft__nwaiters_park(struct weft__list *list, weft_task_t *t, void *obj, int64_t deadline);

/* Wake a task waiting in a reader call so that it notices a close. */
void weft__stream_wake_reader(weft_stream_t *s);

/* After a sendfile: start the background flush for what was queued meanwhile, or finish a
 * write_eof / close that waited for the writer (writer.c). */
void weft__stream_kick(weft_stream_t *s);

/* Bytes queued in the writer. */
static inline size_t weft__stream_queued(const weft_stream_t *s)
{
    return s->wend - s->wpos;
}

/* Free the buffers of a stream (reader and writer) and the stream itself. */
void weft__stream_free(weft_stream_t *s);

#endif /* WEFT_NET_H */
