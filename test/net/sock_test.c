/*
 * Low-level socket calls: TCP over IPv4 and IPv6, Unix stream sockets, UDP, accept/connect,
 * waits woken by weft_close(), refused connects, deadlines and cancellation losing no data.
 */
#include "nettest.h"

#include <signal.h>

struct pair {
    int lfd;
    int port;
    int server_fd;
};

static int accept_one(void *arg)
{
    struct pair *p = arg;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int fd = weft_sock_accept(p->lfd, (struct sockaddr *)&peer, &plen);
    CHECK(fd >= 0);
    CHECK(plen > 0);
    p->server_fd = fd;
    return 0;
}

/* Connect `family` loopback: returns the client fd, the server side in *sfd. */
static int tcp_pair(const char *host, int *sfd)
{
    struct pair p = {.server_fd = -1};
    p.lfd = nt_listen(host, &p.port);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, accept_one, &p), 0);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse(host, p.port, &ss, &len), 0);
    int c = weft_socket(ss.ss_family, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK_EQ(weft_sock_connect(c, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_close(p.lfd), 0);
    *sfd = p.server_fd;
    return c;
}

static void check_flags(int fd)
{
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static int echo_roundtrip(int c, int s)
{
    check_flags(c);
    check_flags(s);
    CHECK_EQ(weft_sock_sendall(c, "hello", 5, NULL), 0);
    char buf[16];
    CHECK_EQ(weft_sock_recv(s, buf, sizeof(buf)), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(weft_sock_send(s, "world!", 6), 6);
    CHECK_EQ(weft_sock_recv(c, buf, sizeof(buf)), 6);
    CHECK(memcmp(buf, "world!", 6) == 0);
    CHECK_EQ(shutdown(c, SHUT_WR), 0);
    CHECK_EQ(weft_sock_recv(s, buf, sizeof(buf)), 0); /* EOF */
    CHECK_EQ(weft_close(c), 0);
    CHECK_EQ(weft_close(s), 0);
    return 0;
}

static int tcp4_main(void *arg)
{
    (void)arg;
    int s, c = tcp_pair("127.0.0.1", &s);
    return echo_roundtrip(c, s);
}

static void test_tcp4(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(tcp4_main, NULL), 0));
}

static int tcp6_main(void *arg)
{
    (void)arg;
    int s, c = tcp_pair("::1", &s);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    CHECK_EQ(getpeername(s, (struct sockaddr *)&ss, &len), 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
    char text[64];
    CHECK(weft_addr_format((struct sockaddr *)&ss, len, text, sizeof(text)) > 0);
    CHECK(strncmp(text, "[::1]:", 6) == 0);
    return echo_roundtrip(c, s);
}

static void test_tcp6(void)
{
    if (!nt_have_ipv6()) {
        fprintf(stderr, "no IPv6 loopback: skipped\n");
        return;
    }
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(tcp6_main, NULL), 0));
}

static char unix_path[108];

static int unix_main(void *arg)
{
    (void)arg;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", unix_path);
    struct pair p = {.server_fd = -1};
    p.lfd = weft_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(p.lfd >= 0);
    CHECK_EQ(bind(p.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(listen(p.lfd, 8), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, accept_one, &p), 0);
    int c = weft_socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_EQ(weft_sock_connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    char text[128];
    CHECK(weft_addr_format((struct sockaddr *)&a, sizeof(a), text, sizeof(text)) > 0);
    CHECK_STR(text, unix_path);
    CHECK_EQ(weft_close(p.lfd), 0);
    unlink(unix_path);
    return echo_roundtrip(c, p.server_fd);
}

static void test_unix(void)
{
    nt_unix_path(unix_path, sizeof(unix_path), "sock");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(unix_main, NULL), 0));
}

static int udp_main(void *arg)
{
    (void)arg;
    struct sockaddr_storage a, b;
    socklen_t alen, blen;
    int fa = weft_socket(AF_INET, SOCK_DGRAM, 0), fb = weft_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fa >= 0 && fb >= 0);
    check_flags(fa);
    CHECK_EQ(weft_addr_parse("127.0.0.1", 0, &a, &alen), 0);
    CHECK_EQ(bind(fa, (struct sockaddr *)&a, alen), 0);
    CHECK_EQ(bind(fb, (struct sockaddr *)&a, alen), 0);
    alen = blen = sizeof(a);
    CHECK_EQ(getsockname(fa, (struct sockaddr *)&a, &alen), 0);
    CHECK_EQ(getsockname(fb, (struct sockaddr *)&b, &blen), 0);
    CHECK_EQ(weft_sock_sendto(fa, "ping", 4, (struct sockaddr *)&b, blen), 4);
    char buf[16];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    CHECK_EQ(weft_sock_recvfrom(fb, buf, sizeof(buf), (struct sockaddr *)&from, &flen), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(weft_addr_port((struct sockaddr *)&from), weft_addr_port((struct sockaddr *)&a));
    CHECK_EQ(weft_sock_sendto(fb, "pong!", 5, (struct sockaddr *)&from, flen), 5);
    CHECK_EQ(weft_sock_recvfrom(fa, buf, sizeof(buf), NULL, NULL), 5);
    CHECK(memcmp(buf, "pong!", 5) == 0);
    /* A datagram waits: nothing there yet, one arrives from another task. */
    CHECK_EQ(weft_sock_recvfrom_dl(fa, buf, sizeof(buf), NULL, NULL, weft_deadline_in(0.05)),
             -ETIMEDOUT);
    CHECK_EQ(weft_close(fa), 0);
    CHECK_EQ(weft_close(fb), 0);
    return 0;
}

static void test_udp(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(udp_main, NULL), 0));
}

/* ---- several waiters on one fd, all woken by weft_close() ---- */

static int fd_to_wait;
static int woken;

static int recv_waiter(void *arg)
{
    (void)arg;
    char c;
    ssize_t r = weft_sock_recv(fd_to_wait, &c, 1);
    woken++;
    return (int)r;
}

static int close_wakes_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fd_to_wait = sv[0];
    woken = 0;
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], recv_waiter, NULL), 0);
    CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(woken, 0);
    CHECK_EQ(weft_close(sv[0]), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), -EBADF);
        weft_task_release(t[i]);
    }
    CHECK_EQ(woken, 3);
    /* The number is free again and a new fd with it works normally. */
    int again = weft_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(again >= 0);
    CHECK_EQ(weft_close(again), 0);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_close_wakes_all_waiters(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(close_wakes_main, NULL), 0));
}

/* ---- refused connect ---- */

static int refused_main(void *arg)
{
    (void)arg;
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse("127.0.0.1", test_free_port(), &ss, &len), 0);
    int c = weft_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(weft_sock_connect(c, (struct sockaddr *)&ss, len), -ECONNREFUSED);
    CHECK_EQ(weft_close(c), 0);
    CHECK_EQ(weft_sock_connect(-1, (struct sockaddr *)&ss, len), -EBADF);
    return 0;
}

static void test_connect_refused(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(refused_main, NULL), 0));
}

/* ---- deadlines and cancellation lose nothing ---- */

static int recv_forever(void *arg)
{
    char buf[8];
    return (int)weft_sock_recv(*(int *)arg, buf, sizeof(buf));
}

static int deadline_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[8];
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sock_recv_dl(sv[0], buf, sizeof(buf), t0 + 2000000000), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL) - t0, 2000000000);
    /* A cancelled receive consumes nothing. */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, recv_forever, &sv[0]), 0);
    CHECK_EQ(weft_sleep(1), 0);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK_EQ(weft_sock_send(sv[1], "abc", 3), 3);
    CHECK_EQ(weft_sock_recv(sv[0], buf, sizeof(buf)), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    /* A past deadline still lets a ready operation through. */
    CHECK_EQ(weft_sock_send(sv[1], "d", 1), 1);
    CHECK_EQ(weft_sock_recv_dl(sv[0], buf, sizeof(buf), 0), 1);
    CHECK_EQ(weft_close(sv[0]), 0);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_deadline_and_cancel(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(deadline_main, NULL), 0));
}

/* ---- sendall through a full socket buffer ---- */

#define BIG (4u << 20)

static int slow_reader(void *arg)
{
    int fd = *(int *)arg;
    unsigned char buf[7000];
    size_t total = 0;
    for (;;) {
        ssize_t n = weft_sock_recv(fd, buf, sizeof(buf));
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            CHECK_EQ(buf[i], (unsigned char)((total + (size_t)i) * 7));
        total += (size_t)n;
        CHECK_EQ(weft_yield(), 0);
    }
    return total == BIG ? 0 : -EIO;
}

static int sendall_main(void *arg)
{
    (void)arg;
    int s, c = tcp_pair("127.0.0.1", &s);
    unsigned char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)(i * 7);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, slow_reader, &s), 0);
    size_t sent = 0;
    CHECK_EQ(weft_sock_sendall(c, big, BIG, &sent), 0);
    CHECK_EQ(sent, BIG);
    CHECK_EQ(shutdown(c, SHUT_WR), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    /* Nobody reads now: a deadline stops sendall and says how much went out. Loopback buffers
     * may autotune to more than BIG (tcp_rmem's maximum is 32 MiB here): send until full. */
    int d = 0;
    for (int i = 0; i < 32; i++) {
        d = weft_sock_sendall_dl(s, big, BIG, &sent, weft_deadline_in(0.05));
        if (d != 0)
            break;
        CHECK_EQ(sent, BIG);
    }
    CHECK_EQ(d, -ETIMEDOUT);
    CHECK(sent < BIG);
    /* The peer goes away: the error is EPIPE or ECONNRESET, never SIGPIPE. */
    CHECK_EQ(weft_close(c), 0);
    int r = weft_sock_sendall(s, big, BIG, &sent);
    CHECK(r == -EPIPE || r == -ECONNRESET);
    free(big);
    CHECK_EQ(weft_close(s), 0);
    return 0;
}

static void test_sendall_backpressure(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(sendall_main, NULL), 0));
}

static int misuse_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sock_recv(-1, NULL, 0), -EBADF);
    CHECK_EQ(weft_sock_recv(0, NULL, 4), -EINVAL);
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, NULL), -EINVAL);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse("not-an-address", 1, &ss, &len), -EINVAL);
    CHECK_EQ(weft_addr_parse("127.0.0.1", 70000, &ss, &len), -EINVAL);
    return 0;
}

static void test_misuse(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char c;
    CHECK_EQ(weft_sock_recv(sv[0], &c, 1), -EPERM); /* outside a task: would block */
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(weft_run(misuse_main, NULL), 0);
}

TEST_MAIN(test_tcp4, test_tcp6, test_unix, test_udp, test_close_wakes_all_waiters,
          test_connect_refused, test_deadline_and_cancel, test_sendall_backpressure, test_misuse)
