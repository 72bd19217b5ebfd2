/*
 * Low-level socket calls (asyncio's loop.sock_*): each tries the operation first and waits on
 * the fd only after EAGAIN, so a socket with data or room costs one system call. MSG_DONTWAIT
 * keeps even a blocking fd from stalling the loop. Waiting goes through weft_wait_fd_dl(), which
 * makes every call cancellable and lets weft_close() wake it with -EBADF.
 */
#include "net/net.h"

#include <sys/socket.h>
#include <unistd.h>

int weft_socket(int domain, int type, int protocol)
{
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    return fd < 0 ? -errno : fd;
}

int weft_socketpair(int domain, int type, int protocol, int sv[2])
{
    if (sv == NULL)
        return -EINVAL;
    if (socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol, sv) < 0)
        return -errno;
    return 0;
}

/*
 * A non-blocking call on `fd` just failed (errno set): 0 when it should be tried again (EINTR, or
 * the fd became ready after EAGAIN), else the error to return (-errno, or the wait's error).
 */
static int retry(int fd, int events, int64_t deadline)
{
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN)
        return -errno;
    int w = weft_wait_fd_dl(fd, events, deadline);
    return w < 0 ? w : 0;
}

ssize_t weft_sock_recv_dl(int fd, void *buf, size_t n, int64_t deadline)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    for (;;) {
        ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        int e = retry(fd, WEFT_READABLE, deadline);
        if (e < 0)
            return e;
    }
}

ssize_t weft_sock_recv(int fd, void *buf, size_t n)
{
    return weft_sock_recv_dl(fd, buf, n, WEFT_NO_DEADLINE);
}

ssize_t weft_sock_send_dl(int fd, const void *buf, size_t n, int64_t deadline)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    for (;;) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r >= 0)
            return r;
        int e = retry(fd, WEFT_WRITABLE, deadline);
        if (e < 0)
            return e;
    }
}

ssize_t weft_sock_send(int fd, const void *buf, size_t n)
{
    return weft_sock_send_dl(fd, buf, n, WEFT_NO_DEADLINE);
}

int weft_sock_sendall_dl(int fd, const void *buf, size_t n, size_t *sent, int64_t deadline)
{
    size_t off = 0;
    int err = 0;
    if (buf == NULL && n > 0)
        err = -EINVAL;
    while (err == 0 && off < n) {
        ssize_t r = weft_sock_send_dl(fd, (const char *)buf + off, n - off, deadline);
        if (r < 0)
            err = (int)r;
        else
            off += (size_t)r;
    }
    if (sent != NULL)
        *sent = off;
    return err;
}

int weft_sock_sendall(int fd, const void *buf, size_t n, size_t *sent)
{
    return weft_sock_sendall_dl(fd, buf, n, sent, WEFT_NO_DEADLINE);
}

int weft_sock_accept_dl(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline)
{
    for (;;) {
        int c = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno == ECONNABORTED)
            continue;
        int e = retry(fd, WEFT_READABLE, deadline);
        if (e < 0)
            return e;
    }
}

int weft_sock_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return weft_sock_accept_dl(fd, addr, addrlen, WEFT_NO_DEADLINE);
}

/* The outcome of a non-blocking connect once the socket reported writable. */
static int connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

int weft_sock_connect_dl(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    if (addr == NULL)
        return -EINVAL;
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    /* EAGAIN (a Unix listener with a full backlog) is returned as it is, as connect() does. */
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    for (;;) {
        int w = weft_wait_fd_dl(fd, WEFT_WRITABLE, deadline);
        if (w < 0)
            return w;
        int r = connect_result(fd);
        if (r < 0)
            return r;
        /* Writable and no error: connected, unless the edge was a stale one. */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 || errno != ENOTCONN)
            return 0;
    }
}

int weft_sock_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    return weft_sock_connect_dl(fd, addr, addrlen, WEFT_NO_DEADLINE);
}

ssize_t weft_sock_recvfrom_dl(int fd, void *buf, size_t n, struct sockaddr *from,
                              socklen_t *fromlen, int64_t deadline)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    for (;;) {
        ssize_t r = recvfrom(fd, buf, n, MSG_DONTWAIT, from, fromlen);
        if (r >= 0)
            return r;
        int e = retry(fd, WEFT_READABLE, deadline);
        if (e < 0)
            return e;
    }
}

ssize_t weft_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *from, socklen_t *fromlen)
{
    return weft_sock_recvfrom_dl(fd, buf, n, from, fromlen, WEFT_NO_DEADLINE);
}

ssize_t weft_sock_sendto_dl(int fd, const void *buf, size_t n, const struct sockaddr *to,
                            socklen_t tolen, int64_t deadline)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    for (;;) {
        ssize_t r = sendto(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT, to, to != NULL ? tolen : 0);
        if (r >= 0)
            return r;
        int e = retry(fd, WEFT_WRITABLE, deadline);
        if (e < 0)
            return e;
    }
}

ssize_t weft_sock_sendto(int fd, const void *buf, size_t n, const struct sockaddr *to,
                         socklen_t tolen)
{
    return weft_sock_sendto_dl(fd, buf, n, to, tolen, WEFT_NO_DEADLINE);
}
