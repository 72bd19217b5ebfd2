/*
 * The floor of the TLS benchmarks: a hand-written epoll + OpenSSL echo server in C, one thread,
 * with the same OpenSSL and the same settings as weft-tls (one SSL_CTX, read-ahead, partial
 * writes, released buffers, no renegotiation, one TLS 1.3 ticket per handshake, sessions in
 * OpenSSL's server cache, the server's suite order: AES-128-GCM first). Edge-triggered; each
 * connection reads until OpenSSL wants more and writes everything back before reading again.
 *   weft-bench-tls_floor PORT CERT KEY       (127.0.0.1; runs until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn {
    int fd;
    SSL *ssl;
    int established;
    size_t pos, len; /* pending echo bytes in buf */
    char buf[32768];
};

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->established)
        SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    close(c->fd);
    free(c);
    ERR_clear_error();
}

/* Returns 0 to keep the connection, -1 to drop it. */
static int serve(struct conn *c)
{
    if (!c->established) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        c->established = 1;
        SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    }
    for (;;) {
        while (c->pos < c->len) { /* finish the pending echo first */
            size_t k;
            int r = SSL_write_ex(c->ssl, c->buf + c->pos, c->len - c->pos, &k);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
            }
            c->pos += k;
        }
        c->pos = c->len = 0;
        size_t n;
        int r = SSL_read_ex(c->ssl, c->buf, sizeof(c->buf), &n);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        c->len = n;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: weft-bench-tls_floor PORT CERT KEY\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"floor", 5);
    /* weft-tls's server defaults (docs/tls.md), plain configuration: one TLS 1.3 ticket per
     * handshake holding a session id (stateful sessions), the server's suite order with
     * AES-128-GCM first (ChaCha20 first for a client that asks for it first). */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* sessions in OpenSSL's server cache */
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                  "TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c = malloc(sizeof(*c));
                    c->fd = fd;
                    c->established = 0;
                    c->pos = c->len = 0;
                    c->ssl = SSL_new(ctx);
                    SSL_set_fd(c->ssl, fd);
                    SSL_set_accept_state(c->ssl);
                    SSL_set_read_ahead(c->ssl, 1);
                    SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS); /* until handshaken */
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                    if (serve(c) < 0)
                        drop(ep, c);
                }
                continue;
            }
            if (serve(c) < 0)
                drop(ep, c);
        }
    }
}
