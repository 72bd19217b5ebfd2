/*
 * Servers (asyncio's start_server and Server): listening sockets on every resolved address,
 * one accept task per socket, and one detached task per connection running the handler. The
 * server object is refcounted: the owner, each accept task and each connection task hold a
 * reference, so it outlives close() until the last handler returned.
 */
#include "net/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct listener {
    int fd;
    uint8_t tcp; /* set TCP_NODELAY on accepted sockets */
    weft_server_t *srv;
};

struct weft_server {
    uint32_t refs;
    uint8_t closed;
    weft_stream_handler_fn handler;
    void *arg;
    void (*arg_free)(void *arg); /* opts.arg_free once started */
    struct weft_server_opts opts;
    struct listener *ls;
    size_t nls;
    size_t nconns;
    struct weft__list conns;   /* streams whose handler runs (weft_stream.slink) */
    struct weft__list closers; /* wait_closed() callers */
    struct weft__list forever; /* the serve_forever() caller */
    struct weft__list slots;   /* accept tasks waiting below max_clients */
    weft_task_t *forever_task;
    char *unix_path; /* a socket file to remove on close, or NULL */
    dev_t unix_dev;
    ino_t unix_ino;
};

static void server_unref(weft_server_t *srv)
{
    if (--srv->refs > 0)
        return;
    if (srv->arg_free != NULL)
        srv->arg_free(srv->arg);
    weft__free(srv->ls);
    weft__free(srv->unix_path);
    weft__free(srv);
}

static void maybe_wake_closers(weft_server_t *srv)
{
    if (srv->closed && srv->nconns == 0)
        weft__nwaiters_wake_all(&srv->closers, 0);
}

/* ---- connections ---- */

/* A connection's end, whether its handler ran or not: the stream and the server let go. */
static void conn_end(weft_stream_t *s)
{
    weft_server_t *srv = s->server;
    weft_stream_close(s);
    weft__list_remove(&s->slink);
    s->server = NULL;
    weft_stream_release(s);
    srv->nconns--;
    if (srv->opts.max_clients > 0)
        weft__nwaiters_wake_all(&srv->slots, 0);
    maybe_wake_closers(srv);
    server_unref(srv);
}

static int conn_main(void *arg)
{
    weft_stream_t *s = arg;
    weft_server_t *srv = s->server;
    int r = srv->handler(s, srv->arg);
    if (r < 0 && r != -ECANCELED)
        weft__report(weft__tls_loop, "unhandled error in a connection handler", r,
                     weft_current_task());
    conn_end(s);
    return r == -ECANCELED ? r : 0;
}

/* Cancelled before its first step (the handler never runs, as in asyncio), or no stack. */
static void conn_unstarted(void *arg)
{
    conn_end(arg);
}

static void start_conn(struct listener *L, int fd)
{
    weft_server_t *srv = L->srv;
    if (L->tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    weft_stream_t *s;
    int err = weft__stream_wrap(&s, fd, true, srv->opts.stream.limit, srv->opts.stream.write_high);
    if (err < 0) {
        close(fd);
        weft__report(weft__tls_loop, "cannot serve an accepted connection", err, NULL);
        return;
    }
    struct weft_task_opts to = {.stack_size = srv->opts.stack_size,
                                .stack_mode = srv->opts.stack_mode};
    err = weft__spawn_owned(NULL, conn_main, conn_unstarted, s, &to);
    if (err < 0) {
        weft_stream_release(s);
        weft__report(weft__tls_loop, "cannot serve an accepted connection", err, NULL);
        return;
    }
    s->server = srv;
    srv->refs++;
    srv->nconns++;
    weft__list_append(&srv->conns, &s->slink);
}

/* Accept until the socket is closed. Out of fds (or memory), pause and retry, as asyncio does:
 * the connections wait in the backlog meanwhile and the server serves again once fds free up. */
static int accept_main(void *arg)
{
    struct listener *L = arg;
    weft_server_t *srv = L->srv;
    while (L->fd >= 0) {
        if (srv->opts.max_clients > 0 && srv->nconns >= srv->opts.max_clients) {
            /* At the limit: leave new connections in the backlog until a handler returns. */
            int r = weft__nwaiters_park(&srv->slots, weft_current_task(), srv, WEFT_NO_DEADLINE);
            if (r < 0 && L->fd >= 0)
                break;
            continue;
        }
        int fd = accept4(L->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            start_conn(L, fd);
            continue;
        }
        int e = errno;
        if (e == EINTR || e == ECONNABORTED || e == EPROTO)
            continue;
        int r;
        if (e == EAGAIN) {
            r = weft_wait_fd(L->fd, WEFT_READABLE);
        } else if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
            weft__report(weft__tls_loop, "accept failed; retrying after a pause", -e, NULL);
            double d = srv->opts.accept_retry_delay > 0 ? srv->opts.accept_retry_delay : 1.0;
            r = weft_sleep(d);
        } else {
            /* asyncio logs other accept errors and keeps the socket; so do we. */
            weft__report(weft__tls_loop, "accept failed", -e, NULL);
            r = weft_wait_fd(L->fd, WEFT_READABLE);
        }
        if (r < 0 && r != -EBADF && L->fd >= 0)
            break; /* cancelled: the loop is shutting down */
    }
    server_unref(srv);
    return 0;
}

/* Cancelled before its first step: only its reference to the server to drop. */
static void accept_unstarted(void *arg)
{
    struct listener *L = arg;
    server_unref(L->srv);
}

/* ---- creation ---- */

static int server_new(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                      const struct weft_server_opts *opts, size_t nls)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (handler == NULL)
        return -EINVAL;
    if (weft__tls_loop == NULL)
        return -EPERM;
    weft_server_t *srv = weft__calloc(1, sizeof(*srv));
    struct listener *ls = weft__calloc(nls ? nls : 1, sizeof(*ls));
    if (srv == NULL || ls == NULL) {
        weft__free(srv);
        weft__free(ls);
        return -ENOMEM;
    }
    srv->refs = 1;
    srv->handler = handler;
    srv->arg = arg;
    if (opts != NULL)
        srv->opts = *opts;
    srv->ls = ls;
    weft__list_init(&srv->conns);
    weft__list_init(&srv->closers);
    weft__list_init(&srv->forever);
    weft__list_init(&srv->slots);
    *out = srv;
    return 0;
}

/* Start the accept tasks; on failure the server is closed and released. */
static int server_serve(weft_server_t *srv)
{
    for (size_t i = 0; i < srv->nls; i++) {
        srv->ls[i].srv = srv;
        int err = weft__spawn_owned(NULL, accept_main, accept_unstarted, &srv->ls[i], NULL);
        if (err < 0) {
            weft_server_release(srv);
            return err;
        }
        srv->refs++;
    }
    srv->arg_free = srv->opts.arg_free; /* started: the server owns arg now */
    return 0;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, const struct weft_server_opts *o)
{
    int fd = weft_socket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    if (sa->sa_family != AF_UNIX && !o->no_reuse_address &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (o->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (sa->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (bind(fd, sa, len) < 0 || listen(fd, o->backlog > 0 ? o->backlog : 100) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

static bool same_addr(const struct addrinfo *a, const struct addrinfo *b)
{
    return a->ai_addrlen == b->ai_addrlen && memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) == 0;
}

int weft_server_start(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                      const char *host, int port, const struct weft_server_opts *opts)
{
    static const struct weft_server_opts none;
    const struct weft_server_opts *o = opts != NULL ? opts : &none;
    if (out != NULL)
        *out = NULL;
    if (out == NULL || handler == NULL || port < 0 || port > 65535)
        return -EINVAL;
    struct addrinfo *res;
    int err =
        weft__net_resolve(host, port, o->family, SOCK_STREAM, AI_PASSIVE, &res, WEFT_NO_DEADLINE);
    if (err < 0)
        return err;
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    weft_server_t *srv;
    err = server_new(&srv, handler, arg, o, n);
    if (err < 0) {
        freeaddrinfo(res);
        return err;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        bool dup = false;
        for (struct addrinfo *p = res; p != ai; p = p->ai_next)
            dup = dup || same_addr(p, ai);
        if (dup)
            continue;
        int fd = listen_on(ai->ai_addr, ai->ai_addrlen, o);
        if (fd < 0) {
            freeaddrinfo(res);
            weft_server_release(srv);
            return fd;
        }
        srv->ls[srv->nls].fd = fd;
        srv->ls[srv->nls].tcp = 1;
        srv->nls++;
    }
    freeaddrinfo(res);
    err = server_serve(srv);
    if (err == 0)
        *out = srv;
    return err;
}

/* Fill a sockaddr_un for `path` ("@name" = abstract). */
int weft__unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len)
{
    if (path == NULL || path[0] == '\0')
        return -EINVAL;
    size_t n = strlen(path);
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    if (n >= sizeof(un->sun_path))
        return -ENAMETOOLONG;
    memcpy(un->sun_path, path, n);
    if (path[0] == '@') {
        un->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)sizeof(*un);
    }
    return 0;
}

int weft_server_start_unix(weft_server_t **out, weft_stream_handler_fn handler, void *arg,
                           const char *path, const struct weft_server_opts *opts)
{
    static const struct weft_server_opts none;
    const struct weft_server_opts *o = opts != NULL ? opts : &none;
    if (out != NULL)
        *out = NULL;
    struct sockaddr_un un;
    socklen_t len;
    int err = weft__unix_addr(path, &un, &len);
    if (err < 0 || out == NULL || handler == NULL)
        return err < 0 ? err : -EINVAL;
    struct stat st;
    bool abstract = path[0] == '@';
    if (!abstract && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket file, as asyncio removes it */
    weft_server_t *srv;
    err = server_new(&srv, handler, arg, o, 1);
    if (err < 0)
        return err;
    int fd = listen_on((struct sockaddr *)&un, len, o);
    if (fd < 0) {
        weft_server_release(srv);
        return fd;
    }
    srv->ls[0].fd = fd;
    srv->nls = 1;
    if (!abstract && !o->keep_socket_file && stat(path, &st) == 0) {
        srv->unix_path = weft__strdup(path);
        srv->unix_dev = st.st_dev;
        srv->unix_ino = st.st_ino;
    }
    err = server_serve(srv);
    if (err == 0)
        *out = srv;
    return err;
}

int weft_server_start_fd(weft_server_t **out, weft_stream_handler_fn handler, void *arg, int fd,
                         const struct weft_server_opts *opts)
{
    if (out != NULL)
        *out = NULL;
    int type = 0, acc = 0;
    socklen_t len = sizeof(type);
    if (out == NULL || handler == NULL || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        type != SOCK_STREAM)
        return -EINVAL;
    len = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
        return -EINVAL;
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    weft_server_t *srv;
    int err = server_new(&srv, handler, arg, opts, 1);
    if (err < 0)
        return err;
    srv->ls[0].fd = fd;
    srv->ls[0].tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
    srv->nls = 1;
    err = server_serve(srv);
    if (err == 0)
        *out = srv;
    return err;
}

/* ---- closing ---- */

void weft_server_close(weft_server_t *srv)
{
    if (srv == NULL || srv->closed)
        return;
    srv->closed = 1;
    for (size_t i = 0; i < srv->nls; i++) {
        int fd = srv->ls[i].fd;
        srv->ls[i].fd = -1;
        if (fd >= 0)
            weft_close(fd); /* wakes the accept task with -EBADF */
    }
    struct stat st;
    if (srv->unix_path != NULL && stat(srv->unix_path, &st) == 0 && st.st_dev == srv->unix_dev &&
        st.st_ino == srv->unix_ino)
        unlink(srv->unix_path);
    weft__nwaiters_wake_all(&srv->forever, 0);
    weft__nwaiters_wake_all(&srv->slots, 0);
    maybe_wake_closers(srv);
}

static void each_client(weft_server_t *srv, void (*fn)(weft_stream_t *))
{
    struct weft__list *n = srv->conns.next;
    while (n != &srv->conns) {
        struct weft__list *next = n->next;
        fn(weft__container_of(n, weft_stream_t, slink));
        n = next;
    }
}

void weft_server_close_clients(weft_server_t *srv)
{
    if (srv != NULL)
        each_client(srv, weft_stream_close);
}

void weft_server_abort_clients(weft_server_t *srv)
{
    if (srv != NULL)
        each_client(srv, weft_stream_abort);
}

int weft_server_wait_closed_dl(weft_server_t *srv, int64_t deadline)
{
    if (srv == NULL)
        return -EINVAL;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (srv->closed && srv->nconns == 0)
        return 0;
    srv->refs++;
    int r = weft__nwaiters_park(&srv->closers, t, srv, deadline);
    server_unref(srv);
    return r;
}

int weft_server_wait_closed(weft_server_t *srv)
{
    return weft_server_wait_closed_dl(srv, WEFT_NO_DEADLINE);
}

int weft_server_serve_forever(weft_server_t *srv)
{
    if (srv == NULL)
        return -EINVAL;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    if (srv->forever_task != NULL)
        return -EBUSY;
    if (srv->closed)
        return -EINVAL;
    srv->refs++;
    srv->forever_task = t;
    int r = weft__nwaiters_park(&srv->forever, t, srv, WEFT_NO_DEADLINE);
    srv->forever_task = NULL;
    if (r == -ECANCELED) {
        weft_server_close(srv);
        weft_server_wait_closed(srv);
    }
    server_unref(srv);
    return r;
}

bool weft_server_is_serving(const weft_server_t *srv)
{
    return srv != NULL && !srv->closed;
}

size_t weft_server_sockets(const weft_server_t *srv, int *fds, size_t cap)
{
    if (srv == NULL)
        return 0;
    for (size_t i = 0; fds != NULL && i < srv->nls && i < cap; i++)
        fds[i] = srv->ls[i].fd;
    return srv->nls;
}

int weft_server_port(const weft_server_t *srv)
{
    if (srv == NULL || srv->nls == 0)
        return -EINVAL;
    if (srv->ls[0].fd < 0)
        return -EBADF;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(srv->ls[0].fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    return weft_addr_port((struct sockaddr *)&ss);
}

size_t weft_server_connections(const weft_server_t *srv)
{
    return srv != NULL ? srv->nconns : 0;
}

void weft_server_release(weft_server_t *srv)
{
    if (srv == NULL)
        return;
    weft_server_close(srv);
    server_unref(srv);
}
