/*
 * Streams over real sockets: write-through and the background flush, drain above the
 * high-water mark (many drainers at once, checklist 54), a peer that closes or resets while we
 * write or read, write_eof, close flushing the queue, abort, and close waking a waiting reader.
 */
#include "nettest.h"

#define BIG (2u << 20)

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 13 + 1);
    return p;
}

static weft_stream_t *wrap(int fd)
{
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, fd, NULL), 0);
    return s;
}

/* Read `n` bytes from a raw fd and check them against pattern(). */
struct sink {
    int fd;
    size_t n;
    size_t got;
};

static int sink_main(void *arg)
{
    struct sink *k = arg;
    unsigned char buf[5000];
    while (k->got < k->n) {
        ssize_t r = weft_sock_recv(k->fd, buf, sizeof(buf));
        if (r <= 0)
            return r == 0 ? -EPIPE : (int)r;
        for (ssize_t i = 0; i < r; i++)
            CHECK_EQ(buf[i], (unsigned char)((k->got + (size_t)i) * 13 + 1));
        k->got += (size_t)r;
    }
    return 0;
}

/* ---- write-through, then backpressure and drain ---- */

static int write_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *s = wrap(sv[0]);
    CHECK_EQ(weft_stream_write(s, "hi", 2), 0);
    CHECK_EQ(weft_stream_write_buffered(s), 0); /* went straight to the socket */
    CHECK_EQ(weft_stream_drain(s), 0);
    char b[4];
    CHECK_EQ(weft_sock_recv(sv[1], b, sizeof(b)), 2);

    unsigned char *big = pattern(BIG);
    CHECK_EQ(weft_stream_write(s, big, BIG), 0);
    CHECK(weft_stream_write_buffered(s) > WEFT_STREAM_HIGH_WATER); /* the socket took some */
    /* Nobody reads: drain waits (a deadline shows it). */
    CHECK_EQ(weft_stream_drain_dl(s, weft_deadline_in(0.05)), -ETIMEDOUT);
    struct sink k = {sv[1], BIG, 0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, sink_main, &k), 0);
    CHECK_EQ(weft_stream_drain(s), 0);
    CHECK(weft_stream_write_buffered(s) <= WEFT_STREAM_HIGH_WATER / 4);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(k.got, BIG);
    CHECK_EQ(weft_stream_write_buffered(s), 0);
    free(big);
    weft_stream_close(s);
    CHECK_EQ(weft_stream_wait_closed(s), 0);
    weft_stream_release(s);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_write_through_and_drain(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(write_main, NULL), 0));
}

/* ---- checklist 54: test_multiple_drain ---- */

static int drained;

static int drainer(void *arg)
{
    for (int i = 0; i < 128; i++)
        CHECK_EQ(weft_stream_drain(arg), 0);
    drained++;
    return 0;
}

static int multiple_drain_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *s = wrap(sv[0]);
    unsigned char *big = pattern(BIG);
    CHECK_EQ(weft_stream_write(s, big, BIG), 0);
    drained = 0;
    weft_task_t *t[10];
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_spawn(&t[i], drainer, s), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(drained, 0); /* all waiting */
    struct sink k = {sv[1], BIG, 0};
    weft_task_t *st;
    CHECK_EQ(weft_spawn(&st, sink_main, &k), 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(drained, 10);
    CHECK_EQ(weft_join(st), 0);
    weft_task_release(st);
    free(big);
    weft_stream_release(s);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_multiple_drain(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(multiple_drain_main, NULL), 0));
}

/* ---- checklist 54: test_drain_raises (the peer closed; no endless loop) ---- */

static int drain_raises_main(void *arg)
{
    (void)arg;
    int sfd, c = nt_tcp_pair("127.0.0.1", &sfd);
    CHECK_EQ(weft_close(sfd), 0);
    weft_stream_t *s = wrap(c);
    int r = 0, rounds = 0;
    while (r == 0 && rounds < 100000) {
        r = weft_stream_write(s, "foo\n", 4);
        if (r == 0)
            r = weft_stream_drain(s);
        rounds++;
    }
    CHECK(r == -ECONNRESET || r == -EPIPE);
    /* The error sticks: later writes and drains report it, and so does wait_closed. */
    CHECK_EQ(weft_stream_write(s, "x", 1), r);
    CHECK_EQ(weft_stream_drain(s), r);
    weft_stream_close(s);
    CHECK_EQ(weft_stream_wait_closed(s), r);
    weft_stream_release(s);
    return 0;
}

static void test_drain_raises(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(drain_raises_main, NULL), 0));
}

/* ---- a reset while drainers wait ---- */

static int drain_task(void *arg)
{
    return weft_stream_drain(arg);
}

static int reset_during_drain_main(void *arg)
{
    (void)arg;
    int sfd, c = nt_tcp_pair("127.0.0.1", &sfd);
    weft_stream_t *s = wrap(c);
    unsigned char *big = pattern(8u << 20);
    CHECK_EQ(weft_stream_write(s, big, 8u << 20), 0);
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], drain_task, s), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    nt_reset_close(sfd);
    for (int i = 0; i < 3; i++) {
        int r = weft_join(t[i]);
        CHECK(r == -ECONNRESET || r == -EPIPE);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_stream_write_buffered(s), 0); /* the queue was dropped, not leaked */
    free(big);
    weft_stream_release(s);
    return 0;
}

static void test_reset_during_drain(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(reset_during_drain_main, NULL), 0));
}

/* ---- peer closes or resets mid-read ---- */

static int mid_read_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *s = wrap(sv[0]);
    CHECK_EQ(weft_sock_sendall(sv[1], "partial", 7, NULL), 0);
    CHECK_EQ(weft_close(sv[1]), 0);
    char buf[16];
    size_t got;
    CHECK_EQ(weft_stream_readexactly(s, buf, 10, &got), WEFT_EOF);
    CHECK_EQ(got, 7);
    CHECK(memcmp(buf, "partial", 7) == 0);
    CHECK(weft_stream_at_eof(s));
    CHECK_EQ(weft_stream_read(s, buf, sizeof(buf)), 0);
    weft_stream_release(s);

    int sfd, c = nt_tcp_pair("127.0.0.1", &sfd);
    s = wrap(c);
    CHECK_EQ(weft_sock_sendall(sfd, "abc", 3, NULL), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_readuntil(s, "c", 1, &d, &n), 0);
    nt_reset_close(sfd);
    CHECK_EQ(weft_stream_readline(s, &d, &n), -ECONNRESET);
    CHECK_EQ(weft_stream_error(s), -ECONNRESET);
    CHECK_EQ(weft_stream_read(s, buf, 1), -ECONNRESET); /* every read reports it */
    CHECK_EQ(weft_stream_drain(s), -ECONNRESET);
    weft_stream_close(s);
    CHECK_EQ(weft_stream_wait_closed(s), -ECONNRESET);
    weft_stream_release(s);
    return 0;
}

static void test_peer_gone_mid_read(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(mid_read_main, NULL), 0));
}

/* ---- write_eof, close flushing the queue, abort ---- */

static int read_all_task(void *arg)
{
    const char *d;
    size_t n;
    int r = weft_stream_read_all(arg, &d, &n);
    if (r < 0)
        return r;
    unsigned char *want = pattern(n);
    int ok = memcmp(d, want, n) == 0;
    free(want);
    return ok ? (int)(n >> 10) : -EIO;
}

static int close_flush_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a = wrap(sv[0]), *b = wrap(sv[1]);
    /* write_eof: the peer sees the end, and can still answer (half-close). */
    CHECK_EQ(weft_stream_write(a, "question", 8), 0);
    CHECK_EQ(weft_stream_write_eof(a), 0);
    CHECK_EQ(weft_stream_write(a, "more", 4), -ESHUTDOWN);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_read_all(b, &d, &n), 0);
    CHECK_EQ(n, 8);
    CHECK_EQ(weft_stream_write(b, "answer", 6), 0);
    weft_stream_close(b);
    CHECK_EQ(weft_stream_read_all(a, &d, &n), 0);
    CHECK_EQ(n, 6);
    CHECK_EQ(weft_stream_wait_closed(b), 0);
    weft_stream_release(a);
    weft_stream_release(b);

    /* close() with a queue: everything arrives, then the end of the stream. */
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a = wrap(sv[0]);
    b = wrap(sv[1]);
    unsigned char *big = pattern(BIG);
    CHECK_EQ(weft_stream_write(a, big, BIG), 0);
    CHECK(weft_stream_write_buffered(a) > 0);
    weft_stream_close(a);
    CHECK_EQ(weft_stream_write(a, "x", 1), -EPIPE);
    CHECK(weft_stream_fd(a) >= 0); /* still flushing */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, read_all_task, b), 0);
    CHECK_EQ(weft_stream_wait_closed(a), 0);
    CHECK_EQ(weft_stream_fd(a), -1);
    CHECK_EQ(weft_join(t), (int)(BIG >> 10));
    weft_task_release(t);
    /* drain after close: the connection is gone. */
    CHECK_EQ(weft_stream_drain(a), -ECONNRESET);
    weft_stream_release(a);
    weft_stream_release(b);

    /* Releasing with a queue still flushes it (the flush holds its own reference). */
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a = wrap(sv[0]);
    b = wrap(sv[1]);
    CHECK_EQ(weft_stream_write(a, big, BIG), 0);
    weft_stream_release(a);
    CHECK_EQ(weft_spawn(&t, read_all_task, b), 0);
    CHECK_EQ(weft_join(t), (int)(BIG >> 10));
    weft_task_release(t);
    weft_stream_release(b);

    /* abort() drops the queue at once. */
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a = wrap(sv[0]);
    b = wrap(sv[1]);
    CHECK_EQ(weft_stream_write(a, big, BIG), 0);
    weft_stream_abort(a);
    CHECK_EQ(weft_stream_fd(a), -1);
    CHECK_EQ(weft_stream_write_buffered(a), 0);
    CHECK_EQ(weft_stream_wait_closed(a), 0);
    CHECK_EQ(weft_spawn(&t, read_all_task, b), 0);
    int r = weft_join(t);
    CHECK(r >= 0 ? (size_t)r < (BIG >> 10) : r == -ECONNRESET);
    weft_task_release(t);
    weft_stream_release(a);
    weft_stream_release(b);
    free(big);
    return 0;
}

static void test_write_eof_close_abort(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(close_flush_main, NULL), 0));
}

/* ---- close() wakes a reader waiting on the socket ---- */

static int readline_task(void *arg)
{
    const char *d;
    size_t n;
    int r = weft_stream_readline(arg, &d, &n);
    return r < 0 ? r : (int)n;
}

static int close_wakes_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a = wrap(sv[0]);
    CHECK_EQ(weft_sock_send(sv[1], "half", 4), 4);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, readline_task, a), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK(!weft_task_done(t));
    weft_stream_close(a);
    CHECK_EQ(weft_join(t), 4); /* end of stream: the partial line */
    weft_task_release(t);
    CHECK_EQ(weft_stream_wait_closed(a), 0);
    weft_stream_release(a);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_close_wakes_reader(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(close_wakes_main, NULL), 0));
}

/* ---- limits: zero high-water drains to empty; a slow peer and deadlines ---- */

static int trickle_peer(void *arg)
{
    int fd = *(int *)arg;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(weft_sleep(1), 0);
        CHECK_EQ(weft_sock_send(fd, "x", 1), 1);
    }
    return 0;
}

static int slow_client_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a = wrap(sv[0]);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, trickle_peer, &sv[1]), 0);
    /* One byte a second, and a per-line deadline of 2.5 s: the read gives up in time, and the
     * two bytes that did arrive stay buffered. */
    const char *d;
    size_t n;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_stream_readline_dl(a, &d, &n, t0 + 2500000000), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, 2500000000);
    CHECK_EQ(weft_stream_buffered(a, NULL), 2);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    char buf[8];
    CHECK_EQ(weft_stream_readexactly(a, buf, 5, NULL), 0);
    CHECK(memcmp(buf, "xxxxx", 5) == 0);

    CHECK_EQ(weft_stream_set_write_limits(a, 0, -1), 0);
    CHECK_EQ(weft_stream_write(a, "y", 1), 0);
    CHECK_EQ(weft_stream_drain(a), 0);
    weft_stream_release(a);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_slow_client_deadline(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(slow_client_main, NULL), 0));
}

/* A pipe works too (no socket: read/write instead of recv/send). */
static int pipe_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    weft_stream_t *r = wrap(p[0]), *w = wrap(p[1]);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK_EQ(weft_stream_write(w, "a\nb", 3), 0);
    weft_stream_close(w);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_readline(r, &d, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(weft_stream_readline(r, &d, &n), 0);
    CHECK_EQ(n, 1);
    CHECK(weft_stream_at_eof(r));
    weft_stream_release(r);
    weft_stream_release(w);
    /* Datagram sockets are refused. */
    int u = weft_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(weft_stream_new(&r, u, NULL), -EINVAL);
    CHECK_EQ(weft_close(u), 0);
    return 0;
}

static void test_pipe_stream(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(pipe_main, NULL), 0));
}

/* ---- readuntil on a socket its last receive drained: a server's request path ---- */

struct halves {
    int fd;
    const char *first, *second;
};

/* Send one half, let the reader take it (it waits again: the separator is not complete), then
 * the other half. */
static int send_halves(void *arg)
{
    struct halves *h = arg;
    CHECK_EQ(weft_sock_sendall(h->fd, h->first, strlen(h->first), NULL), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_sock_sendall(h->fd, h->second, strlen(h->second), NULL), 0);
    return 0;
}

static int readuntil_drained_main(void *arg)
{
    (void)arg;
    static const char head[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct weft_stream_opts o = {.limit = 4096};
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sv[0], &o), 0);
    const char *d;
    size_t n;
    for (int i = 0; i < 3; i++) { /* a head per receive */
        CHECK_EQ(weft_sock_sendall(sv[1], head, sizeof(head) - 1, NULL), 0);
        CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
        CHECK_EQ(n, sizeof(head) - 1);
        CHECK(memcmp(d, head, n) == 0);
        CHECK_EQ(weft_stream_buffered(s, NULL), 0);
    }
    /* The separator split across two receives. */
    struct halves h = {sv[1], "GET /2\r\n\r", "\n"};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, send_halves, &h), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
    CHECK_EQ(n, 10);
    CHECK(memcmp(d, "GET /2\r\n\r\n", 10) == 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    /* Two heads in one receive: the second is served from the buffer. */
    CHECK_EQ(weft_sock_sendall(sv[1], "A\r\n\r\nBB\r\n\r\n", 11, NULL), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
    CHECK_EQ(n, 5);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
    CHECK_EQ(n, 6);
    CHECK(memcmp(d, "BB", 2) == 0);
    /* A separator past the limit in one receive: ELIMIT, the bytes stay buffered. */
    static char big[6004];
    memset(big, 'x', 6000);
    memcpy(big + 6000, "\r\n\r\n", 4);
    CHECK_EQ(weft_sock_sendall(sv[1], big, sizeof(big), NULL), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), WEFT_ELIMIT);
    CHECK_EQ(n, 6000);
    size_t got;
    CHECK_EQ(weft_stream_readexactly(s, big, sizeof(big), &got), 0);
    CHECK(memcmp(big + 6000, "\r\n\r\n", 4) == 0);
    /* A deadline passes while it waits: then the head that comes is read whole. */
    CHECK_EQ(weft_stream_readuntil_dl(s, "\r\n\r\n", 4, &d, &n, weft_deadline_in(5.0)),
             -ETIMEDOUT);
    CHECK_EQ(weft_sock_sendall(sv[1], head, sizeof(head) - 1, NULL), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
    CHECK_EQ(n, sizeof(head) - 1);
    /* The peer closes while it waits: end of stream, nothing read. */
    CHECK_EQ(weft_close(sv[1]), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), WEFT_EOF);
    CHECK_EQ(n, 0);
    weft_stream_release(s);

    /* The peer resets while it waits: the error is reported, and kept. */
    int sfd, c = nt_tcp_pair("127.0.0.1", &sfd);
    s = wrap(c);
    CHECK_EQ(weft_sock_sendall(sfd, head, sizeof(head) - 1, NULL), 0);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), 0);
    nt_reset_close(sfd);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), -ECONNRESET);
    CHECK_EQ(weft_stream_error(s), -ECONNRESET);
    CHECK_EQ(weft_stream_readuntil(s, "\r\n\r\n", 4, &d, &n), -ECONNRESET);
    weft_stream_release(s);
    return 0;
}

static void test_readuntil_drained_socket(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(readuntil_drained_main, NULL), 0));
}

TEST_MAIN(test_readuntil_drained_socket, test_write_through_and_drain, test_multiple_drain, test_drain_raises,
          test_reset_during_drain, test_peer_gone_mid_read, test_write_eof_close_abort,
          test_close_wakes_reader, test_slow_client_deadline, test_pipe_stream)
