/*
 * Helpers shared by the networking tests: loopback listeners, IPv6 detection, and a check that
 * a test leaves no fd behind.
 */
#ifndef WEFT_NETTEST_H
#define WEFT_NETTEST_H

#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A listening TCP socket on host:0 (numeric host); its port goes to *port. */
static inline int nt_listen(const char *host, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse(host, 0, &ss, &len), 0);
    int fd = weft_socket(ss.ss_family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int one = 1;
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(listen(fd, 64), 0);
    len = sizeof(ss);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port = weft_addr_port((struct sockaddr *)&ss);
    return fd;
}

/* True when this machine can bind ::1 (IPv6 loopback). */
static inline bool nt_have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A unique Unix socket path under /tmp (the caller unlinks it). */
static inline void nt_unix_path(char *buf, size_t cap, const char *tag)
{
    static int seq;
    snprintf(buf, cap, "/tmp/weft-%s-%d-%d.sock", tag, (int)getpid(), seq++);
    unlink(buf);
}

struct nt_acceptor {
    int lfd;
    int fd;
};

static inline int nt_accept_task(void *arg)
{
    struct nt_acceptor *a = arg;
    a->fd = weft_sock_accept(a->lfd, NULL, NULL);
    return a->fd < 0 ? a->fd : 0;
}

/* A connected TCP pair over `host` (numeric loopback): returns the client, the server in *sfd. */
static inline int nt_tcp_pair(const char *host, int *sfd)
{
    int port;
    struct nt_acceptor a = {.fd = -1};
    a.lfd = nt_listen(host, &port);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, nt_accept_task, &a), 0);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse(host, port, &ss, &len), 0);
    int c = weft_socket(ss.ss_family, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK_EQ(weft_sock_connect(c, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_close(a.lfd), 0);
    *sfd = a.fd;
    return c;
}

/* Close `fd` with a TCP reset (SO_LINGER 0). */
static inline void nt_reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(weft_close(fd), 0);
}

/* Run `fn` as a test body and check that it closes every fd it opened. */
#define NT_NO_FD_LEAK(stmt)                                                                        \
    do {                                                                                           \
        int fds_before_ = test_count_fds();                                                        \
        stmt;                                                                                      \
        CHECK_EQ(test_count_fds(), fds_before_);                                                   \
    } while (0)

#endif /* WEFT_NETTEST_H */
