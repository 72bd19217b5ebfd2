/*
 * The transport seam of a stream: how a module (src/tls) puts a protocol between a stream's
 * reader/writer and its fd without the core knowing it. A stream with a transport (s->tp != NULL)
 * is not `is_sock`, so none of the socket fast paths of reader.c/writer.c see it: plain sockets
 * pay nothing, and a stream over a pipe pays one predicted branch in its read and write.
 *
 * The core calls the transport instead of the system calls:
 * - read(s, buf, n): as read(2): > 0 bytes, 0 at the (clean) end of the stream, or -1 with errno:
 *   EAGAIN when it must wait, after setting s->tp_rwait to what it waits for (WEFT_READABLE, or
 *   WEFT_WRITABLE when reading needs to write first); EINTR to be called again; any other value
 *   is the connection's error as -errno, which may be a weft code's negation (errno =
 *   -WEFT_ETLS_EOF makes the reader report WEFT_ETLS_EOF).
 * - write(s, buf, n): as write(2) / send(MSG_NOSIGNAL): > 0 bytes taken, or -1 with errno
 *   (EAGAIN after setting s->tp_wwait). A write that returned EAGAIN is retried with the same
 *   bytes first (the writer queues them and its flush starts with them; the count may be larger).
 * - shutdown(s): write_eof once the queue is flushed (0 or a negative errno). Does not suspend.
 * - close(s, graceful): just before the core closes the fd (close, release, abort, an error);
 *   graceful is false after abort() or a connection error. Does not suspend.
 * - free(s): when the stream's memory goes (after close); frees s->tpctx.
 * None of them may suspend: the core calls them from any of its paths, also outside tasks.
 */
#ifndef WEFT_NET_TRANSPORT_H
#define WEFT_NET_TRANSPORT_H

#include "net/net.h"

struct weft__transport {
    ssize_t (*read)(weft_stream_t *s, void *buf, size_t n);
    ssize_t (*write)(weft_stream_t *s, const void *buf, size_t n);
    int (*shutdown)(weft_stream_t *s);
    void (*close)(weft_stream_t *s, bool graceful);
    void (*free)(weft_stream_t *s);
};

/*
 * Put `tp` (with per-stream state `ctx`) between the stream and its fd. The caller checked that
 * nothing is queued for writing and no task waits in a reader call. Bytes already in the reader's
 * buffer stay there (the caller takes them for the transport first if they belong to it).
 * Inline on purpose: modules link the shared core, which exports only the public API.
 */
static inline void weft__stream_set_transport(weft_stream_t *s, const struct weft__transport *tp,
                                              void *ctx)
{
    s->tp = tp;
    s->tpctx = ctx;
    s->is_sock = 0; /* the transport does its own I/O on the fd */
    s->rdrained = 0;
    s->tp_rwait = WEFT_READABLE;
    s->tp_wwait = WEFT_WRITABLE;
}

#endif /* WEFT_NET_TRANSPORT_H */
