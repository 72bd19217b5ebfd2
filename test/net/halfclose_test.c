/*
 * Issue 14, item 1: a peer that half-closes (shutdown(SHUT_WR)) and then stops reading must not
 * freeze the loop. A half-close ends the peer's output only; our side's writes still wait for
 * room. Each case measures the loop thread's CPU time (getrusage) while a writer waits, and
 * counts the ticks of another task, instead of relying on wall-clock sleeps: a spinning wait
 * burns about one CPU second per second and starves the ticker; a parked one burns almost none.
 */
#define _GNU_SOURCE
#include "nettest.h"

#include <sys/resource.h>
#include <time.h>

#define WAIT_S 0.3 /* how long each writer is kept waiting */

static double cpu_now(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_THREAD, &ru), 0);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A task ticking every 10 ms until stopped: ~30 ticks in WAIT_S if the loop is not hogged. */
struct ticker {
    int ticks;
    bool stop;
};

static int ticker_main(void *arg)
{
    struct ticker *k = arg;
    while (!k->stop) {
        int r = weft_sleep(0.01);
        if (r < 0)
            return r;
        k->ticks++;
    }
    return 0;
}

/* Shrink both buffers so that a few hundred KiB fill the connection. */
static void small_buffers(int fd)
{
    int v = 16384;
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
}

/* Fill `fd`'s send path until the kernel says EAGAIN. */
static void fill(int fd)
{
    static char junk[65536];
    while (send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
        ;
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Our side reads a request to its end, from a raw fd or through a stream. */
struct req_reader {
    int fd;
    weft_stream_t *s;
    size_t got;
};

static int req_reader_main(void *arg)
{
    struct req_reader *q = arg;
    if (q->s != NULL) {
        const char *data;
        int r = weft_stream_read_all(q->s, &data, &q->got);
        return r;
    }
    char b[100];
    for (;;) {
        ssize_t r = weft_sock_recv(q->fd, b, sizeof(b));
        if (r <= 0)
            return (int)r;
        q->got += (size_t)r;
    }
}

/*
 * The peer sends a request and half-closes while our side waits for it, then reads once; our
 * side reads the request to its end (as a server reads a request before answering). The wait
 * makes the loop learn of the half-close from the backend, as it does in a real server.
 */
static void half_close_peer(int fd, weft_stream_t *s, int peer)
{
    struct req_reader q = {.fd = fd, .s = s};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, req_reader_main, &q), 0);
    CHECK_EQ(weft_yield(), 0); /* the reader runs and waits for the request */
    CHECK_EQ(send(peer, "request", 7, MSG_NOSIGNAL), 7);
    CHECK_EQ(shutdown(peer, SHUT_WR), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(q.got, 7);
    char b[100];
    ssize_t r = recv(peer, b, sizeof(b), MSG_DONTWAIT);
    (void)r;
}

/* Check a wait of `wall` seconds that used `cpu` seconds, while the ticker ticked. */
static void check_parked(double wall, double cpu, const struct ticker *k)
{
    fprintf(stderr, "   waited %.3f s wall, %.3f s CPU, %d ticks\n", wall, cpu, k->ticks);
    CHECK(wall >= WAIT_S * 0.9); /* the deadline holds: no early return */
    CHECK(wall < WAIT_S + 2.0);  /* and is honoured */
    CHECK(cpu < wall * 0.3);     /* parked, not spinning (a spin is ~1.0) */
    CHECK(k->ticks >= 5);        /* the rest of the loop runs (~30 expected) */
}

/* ---- the stream writer: write + drain to a half-closed, non-reading peer ---- */

static int stream_main(void *arg)
{
    (void)arg;
    int sfd;
    int peer = nt_tcp_pair("127.0.0.1", &sfd);
    small_buffers(sfd);
    small_buffers(peer);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sfd, NULL), 0);
    half_close_peer(sfd, s, peer);
    CHECK_EQ(weft_stream_set_write_limits(s, 65536, -1), 0);
    size_t n = 1 << 20;
    char *big = calloc(1, n);
    CHECK_EQ(weft_stream_write(s, big, n), 0);
    CHECK(weft_stream_write_buffered(s) > 65536);

    struct ticker k = {0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker_main, &k), 0);
    double w0 = wall_now(), c0 = cpu_now();
    CHECK_EQ(weft_stream_drain_dl(s, weft_deadline_in(WAIT_S)), -ETIMEDOUT);
    double wall = wall_now() - w0, cpu = cpu_now() - c0;
    k.stop = true;
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    check_parked(wall, cpu, &k);
    CHECK(weft_stream_write_buffered(s) > 65536); /* nothing was lost or dropped meanwhile */

    weft_stream_abort(s);
    weft_stream_release(s);
    free(big);
    CHECK_EQ(weft_close(peer), 0);
    return 0;
}

static void test_halfclose_stream_drain_parks(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(stream_main, NULL), 0));
}

/* ---- weft_wait_fd on a half-closed fd ---- */

static int wait_fd_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    half_close_peer(sv[0], NULL, sv[1]);
    fill(sv[0]);
    /* Input ended: readable at once, and again (a lasting state, not an edge). */
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE), WEFT_READABLE);
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE), WEFT_READABLE);
    /* No room to write: the wait parks until its deadline. A writability edge seen earlier
     * (none consumed it) may end the first wait: the send that follows says EAGAIN, and the
     * next wait must park. */
    struct ticker k = {0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker_main, &k), 0);
    int64_t deadline = weft_deadline_in(WAIT_S);
    double w0 = wall_now(), c0 = cpu_now();
    int r, early = 0;
    while ((r = weft_wait_fd_dl(sv[0], WEFT_WRITABLE, deadline)) == WEFT_WRITABLE && early < 100) {
        early++;
        CHECK_EQ(send(sv[0], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL), -1);
        CHECK(errno == EAGAIN);
    }
    double wall = wall_now() - w0, cpu = cpu_now() - c0;
    CHECK(early <= 1);
    CHECK_EQ(r, -ETIMEDOUT);
    k.stop = true;
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    check_parked(wall, cpu, &k);
    /* Asking for both reports only what is true: readable. */
    CHECK_EQ(weft_wait_fd(sv[0], WEFT_READABLE | WEFT_WRITABLE), WEFT_READABLE);
    /* Once the peer reads, room comes back and the wait returns writable. */
    char b[65536];
    while (recv(sv[1], b, sizeof(b), MSG_DONTWAIT) > 0)
        ;
    CHECK_EQ(weft_wait_fd_dl(sv[0], WEFT_WRITABLE, weft_deadline_in(5)), WEFT_WRITABLE);
    /* A full hang-up (the peer closes) still ends every wait at once, in both directions. */
    fill(sv[0]);
    CHECK_EQ(weft_close(sv[1]), 0);
    CHECK((weft_wait_fd_dl(sv[0], WEFT_WRITABLE, weft_deadline_in(5)) & WEFT_WRITABLE) != 0);
    CHECK_EQ(weft_close(sv[0]), 0);
    return 0;
}

static void test_halfclose_wait_fd(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(wait_fd_main, NULL), 0));
}

/* ---- weft_sock_sendall_dl with a deadline ---- */

static int sendall_main(void *arg)
{
    (void)arg;
    int sfd;
    int peer = nt_tcp_pair("127.0.0.1", &sfd);
    small_buffers(sfd);
    small_buffers(peer);
    half_close_peer(sfd, NULL, peer);
    fill(sfd);
    size_t n = 4 << 20, sent = 0;
    char *big = calloc(1, n);
    struct ticker k = {0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker_main, &k), 0);
    double w0 = wall_now(), c0 = cpu_now();
    int r = weft_sock_sendall_dl(sfd, big, n, &sent, weft_deadline_in(WAIT_S));
    double wall = wall_now() - w0, cpu = cpu_now() - c0;
    CHECK_EQ(r, -ETIMEDOUT);
    CHECK(sent < n);
    k.stop = true;
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    check_parked(wall, cpu, &k);
    free(big);
    CHECK_EQ(weft_close(sfd), 0);
    CHECK_EQ(weft_close(peer), 0);
    return 0;
}

static void test_halfclose_sendall_deadline(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(sendall_main, NULL), 0));
}

/* ---- a half-closed peer that later reads everything: all data delivered ---- */

#define TOTAL ((size_t)3 << 20)

struct late_reader {
    int fd;
    size_t got;
    bool bad;
    bool pause_done;
};

/* The peer: half-close, read once, stop reading for a while, then read to the end. */
static int late_reader_main(void *arg)
{
    struct late_reader *p = arg;
    unsigned char b[8192];
    ssize_t r = weft_sock_recv(p->fd, b, 100);
    CHECK(r > 0);
    for (ssize_t i = 0; i < r; i++)
        p->bad |= b[i] != (unsigned char)(i * 7 + 3);
    p->got = (size_t)r;
    CHECK_EQ(weft_sleep(WAIT_S), 0); /* the scenario: the peer stops reading */
    p->pause_done = true;
    for (;;) {
        r = weft_sock_recv(p->fd, b, sizeof(b));
        CHECK(r >= 0);
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            p->bad |= b[i] != (unsigned char)((p->got + (size_t)i) * 7 + 3);
        p->got += (size_t)r;
    }
    return 0;
}

static int late_main(void *arg)
{
    (void)arg;
    int sfd;
    int peer = nt_tcp_pair("127.0.0.1", &sfd);
    small_buffers(sfd);
    small_buffers(peer);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sfd, NULL), 0);
    half_close_peer(sfd, s, peer);
    struct late_reader p = {.fd = peer};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, late_reader_main, &p), 0);
    CHECK_EQ(weft_stream_set_write_limits(s, 65536, -1), 0);
    unsigned char *chunk = malloc(65536);
    double c0 = cpu_now();
    for (size_t off = 0; off < TOTAL; off += 65536) {
        for (size_t i = 0; i < 65536; i++)
            chunk[i] = (unsigned char)((off + i) * 7 + 3);
        CHECK_EQ(weft_stream_write(s, chunk, 65536), 0);
        CHECK_EQ(weft_stream_drain(s), 0);
    }
    CHECK(p.pause_done); /* the writer really had to wait for the paused peer */
    weft_stream_close(s);
    CHECK_EQ(weft_stream_wait_closed(s), 0); /* the queue was flushed, then the fd closed */
    weft_stream_release(s);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    double cpu = cpu_now() - c0;
    fprintf(stderr, "   delivered %zu bytes, %.3f s CPU\n", p.got, cpu);
    CHECK_EQ(p.got, TOTAL);
    CHECK(!p.bad);
    CHECK(cpu < WAIT_S / 2); /* the pause cost no spinning (a spin is >= WAIT_S) */
    free(chunk);
    CHECK_EQ(weft_close(peer), 0);
    return 0;
}

static void test_halfclose_peer_reads_later(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(late_main, NULL), 0));
}

/* ---- an error that passes: a UDP socket's ICMP error is not a lasting state ---- */

static int udp_sender(void *arg)
{
    return weft_sock_send(*(int *)arg, "x", 1) == 1 ? 0 : -EIO;
}

static int udp_main(void *arg)
{
    (void)arg;
    /* A connected UDP socket to a port nobody listens on: the send draws an ICMP "port
     * unreachable", the socket reports it once (EPOLLERR), and the next recv gets it. */
    int fd = weft_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse("127.0.0.1", test_free_port(), &ss, &len), 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&ss, len), 0);
    char b[16];
    /* The receive waits when the error arrives, so the loop hears of it (EPOLLERR). */
    int send_fd = fd;
    weft_task_t *snd;
    CHECK_EQ(weft_spawn(&snd, udp_sender, &send_fd), 0);
    CHECK_EQ(weft_sock_recv_dl(fd, b, sizeof(b), weft_deadline_in(5)), -ECONNREFUSED);
    CHECK_EQ(weft_join(snd), 0);
    weft_task_release(snd);
    /* The error was consumed: the next receive parks until its deadline. */
    struct ticker k = {0};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, ticker_main, &k), 0);
    double w0 = wall_now(), c0 = cpu_now();
    ssize_t r = weft_sock_recv_dl(fd, b, sizeof(b), weft_deadline_in(WAIT_S));
    double wall = wall_now() - w0, cpu = cpu_now() - c0;
    CHECK_EQ(r, -ETIMEDOUT);
    k.stop = true;
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    check_parked(wall, cpu, &k);
    CHECK_EQ(weft_close(fd), 0);
    return 0;
}

static void test_udp_error_not_lasting(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(udp_main, NULL), 0));
}

/* A spinning wait never suspends, so its deadline never fires: end such a run quickly. */
static void watchdog(void)
{
    alarm(60);
}

TEST_MAIN(watchdog, test_halfclose_stream_drain_parks, test_halfclose_wait_fd, test_halfclose_sendall_deadline,
          test_halfclose_peer_reads_later, test_udp_error_not_lasting)
