/*
 * Servers and connections: echo over TCP (IPv4, IPv6, all interfaces) and Unix sockets, close /
 * wait_closed / serve_forever / close_clients, refused connects with a descriptive error,
 * Happy Eyeballs against a black-holed address, and EMFILE on accept.
 */
#include "nettest.h"

#include <netdb.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* The handler: echo lines until the end of the stream. */
static int handled;

static int echo_handler(weft_stream_t *s, void *arg)
{
    (void)arg;
    handled++;
    for (;;) {
        const char *d;
        size_t n;
        int r = weft_stream_readline(s, &d, &n);
        if (r < 0)
            return r;
        if (n == 0)
            return 0;
        r = weft_stream_write(s, d, n);
        if (r == 0)
            r = weft_stream_drain(s);
        if (r < 0)
            return r;
    }
}

/* One line through a connected stream. */
static void roundtrip(weft_stream_t *c, const char *line)
{
    CHECK_EQ(weft_stream_write(c, line, strlen(line)), 0);
    CHECK_EQ(weft_stream_drain(c), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_readline(c, &d, &n), 0);
    CHECK_EQ(n, strlen(line));
    CHECK(memcmp(d, line, n) == 0);
}

static int tcp_echo_main(void *arg)
{
    const char *host = arg;
    weft_server_t *srv;
    handled = 0;
    CHECK_EQ(weft_server_start(&srv, echo_handler, NULL, host, 0, NULL), 0);
    CHECK(weft_server_is_serving(srv));
    int port = weft_server_port(srv);
    CHECK(port > 0);
    weft_stream_t *c[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_stream_connect(&c[i], host, port, NULL), 0);
    for (int i = 0; i < 3; i++)
        roundtrip(c[i], "hello world!\n");
    CHECK_EQ(handled, 3);
    CHECK_EQ(weft_server_connections(srv), 3);
    /* close() stops listening; the connections keep working. */
    weft_server_close(srv);
    CHECK(!weft_server_is_serving(srv));
    weft_stream_t *late;
    CHECK_EQ(weft_stream_connect(&late, host, port, NULL), -ECONNREFUSED);
    roundtrip(c[1], "still here\n");
    /* wait_closed waits for the handlers too. */
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(0.05)), -ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        weft_stream_close(c[i]);
        CHECK_EQ(weft_stream_wait_closed(c[i]), 0);
        weft_stream_release(c[i]);
    }
    CHECK_EQ(weft_server_wait_closed(srv), 0);
    CHECK_EQ(weft_server_connections(srv), 0);
    weft_server_release(srv);
    return 0;
}

static void test_tcp4_echo(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(tcp_echo_main, "127.0.0.1"), 0));
}

/* Compact connection tasks: a handler keeps the line in a local buffer across its waits while
 * many other compact handlers take the shared stack in between. */
static int compact_handler(weft_stream_t *s, void *arg)
{
    (void)arg;
    handled++;
    for (;;) {
        char line[256];
        const char *d;
        size_t n;
        int r = weft_stream_readline(s, &d, &n);
        if (r < 0)
            return r;
        if (n == 0)
            return 0;
        if (n > sizeof(line))
            return -EMSGSIZE;
        memcpy(line, d, n);
        r = weft_yield(); /* let the others run over the shared stack */
        if (r == 0)
            r = weft_sleep(0.001);
        if (r == 0)
            r = weft_stream_write(s, line, n);
        if (r == 0)
            r = weft_stream_drain(s);
        if (r < 0)
            return r;
    }
}

enum { COMPACT_CONNS = 64, COMPACT_ROUNDS = 4 };
static int compact_port;

/* Send a line and check it comes back: 0 or a negative errno (-EBADMSG: not the same). */
static int compact_echo_once(weft_stream_t *c, const char *line, size_t len)
{
    int r = weft_stream_write(c, line, len);
    if (r == 0)
        r = weft_stream_drain(c);
    const char *d;
    size_t n;
    if (r == 0)
        r = weft_stream_readline(c, &d, &n);
    if (r == 0 && (n != len || memcmp(d, line, n) != 0))
        r = -EBADMSG;
    return r;
}

/* A server on 127.0.0.1 whose connection tasks are compact; its port goes to compact_port. */
static weft_server_t *compact_server(void)
{
    weft_server_t *srv;
    struct weft_server_opts so = {.stack_mode = WEFT_STACK_COMPACT};
    CHECK_EQ(weft_server_start(&srv, compact_handler, NULL, "127.0.0.1", 0, &so), 0);
    compact_port = weft_server_port(srv);
    return srv;
}

static void compact_server_end(weft_server_t *srv)
{
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed(srv), 0);
    weft_server_release(srv);
}

static int compact_close(weft_stream_t *c, int r)
{
    weft_stream_close(c);
    weft_stream_wait_closed(c);
    weft_stream_release(c);
    return r;
}

static int compact_client(void *arg)
{
    int id = (int)(intptr_t)arg;
    weft_stream_t *c;
    int r = weft_stream_connect(&c, "127.0.0.1", compact_port, NULL);
    if (r < 0)
        return r;
    for (int k = 0; k < COMPACT_ROUNDS && r == 0; k++) {
        char line[64];
        int len = snprintf(line, sizeof(line), "client %d round %d %s\n", id, k,
                           k % 2 ? "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" : "y");
        r = compact_echo_once(c, line, (size_t)len);
    }
    return compact_close(c, r);
}

static int compact_echo_main(void *arg)
{
    (void)arg;
    handled = 0;
    weft_server_t *srv = compact_server();
    weft_task_t *t[COMPACT_CONNS];
    /* The clients are compact too: both ends of every connection share the stack. */
    struct weft_task_opts co = {.stack_mode = WEFT_STACK_COMPACT};
    for (int i = 0; i < COMPACT_CONNS; i++)
        CHECK_EQ(weft_spawn_opts(&t[i], compact_client, (void *)(intptr_t)i, &co), 0);
    for (int i = 0; i < COMPACT_CONNS; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(handled, COMPACT_CONNS);
    compact_server_end(srv);
    return 0;
}

static void test_compact_connections(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(compact_echo_main, NULL), 0));
}

/* A compact task resolving a name (the thread pool) and racing addresses with Happy Eyeballs
 * (racer tasks that report to the caller while it waits): nothing of it lives on the caller's
 * stack, so other compact tasks running meanwhile disturb nothing. */
static int compact_named_client(void *arg)
{
    (void)arg;
    struct weft_connect_opts o;
    memset(&o, 0, sizeof(o));
    o.happy_eyeballs_delay = 0.05;
    weft_stream_t *c;
    int r = weft_stream_connect(&c, "localhost", compact_port, &o);
    if (r < 0)
        return r;
    char line[] = "named\n";
    return compact_close(c, compact_echo_once(c, line, sizeof(line) - 1));
}

static int compact_named_main(void *arg)
{
    (void)arg;
    weft_server_t *srv = compact_server();
    struct weft_task_opts co = {.stack_mode = WEFT_STACK_COMPACT};
    weft_task_t *t[4], *b;
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn_opts(&t[i], compact_named_client, NULL, &co), 0);
    CHECK_EQ(weft_spawn_opts(&b, compact_client, (void *)(intptr_t)99, &co), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(b);
    compact_server_end(srv);
    return 0;
}

static void test_compact_named_connect(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(compact_named_main, NULL), 0));
}

static void test_tcp6_echo(void)
{
    if (!nt_have_ipv6()) {
        fprintf(stderr, "no IPv6 loopback: skipped\n");
        return;
    }
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(tcp_echo_main, "::1"), 0));
}

static int any_main(void *arg)
{
    (void)arg;
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, echo_handler, NULL, NULL, 0, NULL), 0);
    int fds[4];
    size_t n = weft_server_sockets(srv, fds, 4);
    CHECK(n >= 1);
    /* Every socket gets its own port when port 0 is asked for; take the first one's. */
    int port = weft_server_port(srv);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    roundtrip(c, "any\n");
    weft_stream_release(c);
    weft_server_release(srv);
    return 0;
}

static void test_all_interfaces(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(any_main, NULL), 0));
}

/* ---- Unix sockets ---- */

static char path[108];

static int unix_main(void *arg)
{
    (void)arg;
    /* A stale socket file is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    CHECK_EQ(bind(stale, (struct sockaddr *)&un, sizeof(un)), 0);
    close(stale);
    weft_server_t *srv;
    CHECK_EQ(weft_server_start_unix(&srv, echo_handler, NULL, path, NULL), 0);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect_unix(&c, path, NULL), 0);
    roundtrip(c, "over unix\n");
    weft_stream_release(c);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    weft_server_close(srv);
    CHECK(stat(path, &st) < 0); /* removed on close (cleanup_socket) */
    CHECK_EQ(weft_stream_connect_unix(&c, path, NULL), -ENOENT);
    CHECK_EQ(weft_server_wait_closed(srv), 0);
    weft_server_release(srv);

    /* The abstract namespace. */
    char abs[64];
    snprintf(abs, sizeof(abs), "@weft-test-%d", (int)getpid());
    CHECK_EQ(weft_server_start_unix(&srv, echo_handler, NULL, abs, NULL), 0);
    CHECK_EQ(weft_stream_connect_unix(&c, abs, NULL), 0);
    roundtrip(c, "abstract\n");
    weft_stream_release(c);
    weft_server_release(srv);
    CHECK_EQ(weft_stream_connect_unix(&c, abs, NULL), -ECONNREFUSED);
    return 0;
}

static void test_unix_echo(void)
{
    nt_unix_path(path, sizeof(path), "srv");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(unix_main, NULL), 0));
}

/* ---- serve_forever, close_clients, handler errors, start_fd ---- */

static weft_server_t *the_server;
static int reported;

static void count_reports(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)arg;
    if (info->error == -EPROTO)
        reported++;
}

static int failing_handler(weft_stream_t *s, void *arg)
{
    (void)s;
    (void)arg;
    return -EPROTO;
}

static int serve_forever_task(void *arg)
{
    (void)arg;
    return weft_server_serve_forever(the_server);
}

static int forever_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    int port;
    int lfd = nt_listen("127.0.0.1", &port);
    CHECK_EQ(weft_server_start_fd(&the_server, echo_handler, NULL, lfd, NULL), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, serve_forever_task, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_server_serve_forever(the_server), -EBUSY);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    roundtrip(c, "x\n");
    /* close_clients: the handler's readline sees the end; our side sees it too. */
    weft_server_close_clients(the_server);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_readline(c, &d, &n), 0);
    CHECK_EQ(n, 0);
    weft_stream_release(c);
    /* close() ends serve_forever with 0. */
    weft_server_close(the_server);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_server_serve_forever(the_server), -EINVAL);
    CHECK_EQ(weft_server_wait_closed(the_server), 0);
    weft_server_release(the_server);

    /* Cancelling serve_forever closes the server. A failing handler is reported. */
    CHECK_EQ(weft_server_start(&the_server, failing_handler, NULL, "127.0.0.1", 0, NULL), 0);
    port = weft_server_port(the_server);
    CHECK_EQ(weft_spawn(&t, serve_forever_task, NULL), 0);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_stream_read_all(c, &d, &n), 0); /* the server closed it */
    CHECK_EQ(reported, 1);
    weft_stream_release(c);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK(!weft_server_is_serving(the_server));
    weft_server_release(the_server);
    CHECK_EQ(weft_server_start_fd(&the_server, echo_handler, NULL, 0, NULL), -EINVAL);
    return 0;
}

static void test_serve_forever(void)
{
    reported = 0;
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(forever_main, NULL), 0));
}

/* ---- refused connects, errors that say what failed ---- */

static int refused_main(void *arg)
{
    (void)arg;
    char err[256];
    struct weft_connect_opts o = {.errbuf = err, .errlen = sizeof(err)};
    int port = test_free_port();
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, &o), -ECONNREFUSED);
    CHECK(c == NULL);
    char want[128];
    snprintf(want, sizeof(want), "127.0.0.1:%d: connection refused", port);
    CHECK_STR(err, want);
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", 70000, &o), -EINVAL);
    CHECK_EQ(weft_stream_connect(&c, NULL, 1, &o), -EINVAL);
    CHECK_EQ(weft_server_start(&the_server, echo_handler, NULL, "127.0.0.1", -1, NULL), -EINVAL);
    /* Binding a port in use fails and leaves nothing open. */
    int lfd = nt_listen("127.0.0.1", &port);
    struct weft_server_opts so = {.no_reuse_address = true};
    CHECK_EQ(weft_server_start(&the_server, echo_handler, NULL, "127.0.0.1", port, &so),
             -EADDRINUSE);
    CHECK_EQ(weft_close(lfd), 0);
    return 0;
}

static void test_connect_refused(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(refused_main, NULL), 0));
}

/* ---- Happy Eyeballs ---- */

/* A loopback address whose connects hang: a listener with a full backlog drops SYNs. */
struct blackhole {
    int lfd;
    int filler;
    struct sockaddr_in addr;
};

static void blackhole_open(struct blackhole *b)
{
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    b->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
    CHECK_EQ(bind(b->lfd, (struct sockaddr *)&b->addr, sizeof(b->addr)), 0);
    CHECK_EQ(listen(b->lfd, 0), 0);
    socklen_t len = sizeof(b->addr);
    CHECK_EQ(getsockname(b->lfd, (struct sockaddr *)&b->addr, &len), 0);
    b->filler = weft_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(weft_sock_connect(b->filler, (struct sockaddr *)&b->addr, sizeof(b->addr)), 0);
}

static void blackhole_close(struct blackhole *b)
{
    CHECK_EQ(weft_close(b->filler), 0);
    close(b->lfd);
}

static void link_ai(struct addrinfo *ai, struct sockaddr_in *sa, struct addrinfo *next)
{
    *ai = (struct addrinfo){.ai_family = AF_INET,
                            .ai_socktype = SOCK_STREAM,
                            .ai_addr = (struct sockaddr *)sa,
                            .ai_addrlen = sizeof(*sa),
                            .ai_next = next};
}

static int he_main(void *arg)
{
    (void)arg;
    struct blackhole bh;
    blackhole_open(&bh);
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL), 0);
    struct sockaddr_in good = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(0x7f000001),
                               .sin_port = htons((uint16_t)weft_server_port(srv))};
    struct addrinfo a2, a1;
    link_ai(&a2, &good, NULL);
    link_ai(&a1, &bh.addr, &a2);

    /* Staggered: the black hole hangs, the second attempt starts after the delay and wins. */
    struct weft_connect_opts o = {.happy_eyeballs_delay = 0.1};
    int64_t t0 = weft_time(NULL);
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect_addrinfo(&c, &a1, &o), 0);
    int64_t took = weft_time(NULL) - t0;
    CHECK(took >= 100000000 && took < 900000000);
    roundtrip(c, "eyeballs\n");
    weft_stream_release(c);

    /* Without Happy Eyeballs the first address holds everything up until the deadline. */
    CHECK_EQ(weft_stream_connect_addrinfo_dl(&c, &a1, NULL, weft_deadline_in(0.2)), -ETIMEDOUT);

    /* A failure starts the next attempt at once, long before the delay. */
    struct sockaddr_in refused = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(0x7f000001),
                                  .sin_port = htons((uint16_t)test_free_port())};
    link_ai(&a1, &refused, &a2);
    o.happy_eyeballs_delay = 5;
    t0 = weft_time(NULL);
    CHECK_EQ(weft_stream_connect_addrinfo(&c, &a1, &o), 0);
    CHECK(weft_time(NULL) - t0 < 1000000000);
    weft_stream_release(c);

    /* All fail: the first error, and every attempt described. */
    char err[256];
    struct addrinfo r2;
    struct sockaddr_in refused2 = refused;
    refused2.sin_addr.s_addr = htonl(0x7f000003);
    link_ai(&r2, &refused2, NULL);
    link_ai(&a1, &refused, &r2);
    o = (struct weft_connect_opts){
        .happy_eyeballs_delay = 0.05, .errbuf = err, .errlen = sizeof(err)};
    CHECK_EQ(weft_stream_connect_addrinfo(&c, &a1, &o), -ECONNREFUSED);
    CHECK(strstr(err, "127.0.0.1:") != NULL && strstr(err, "127.0.0.3:") != NULL);
    CHECK(strstr(err, "connection refused; ") != NULL);

    /* Cancelled mid-race: every attempt is cancelled and closed. */
    link_ai(&a1, &bh.addr, NULL);
    struct addrinfo b2 = a1;
    a1.ai_next = &b2;
    o = (struct weft_connect_opts){.happy_eyeballs_delay = 0.01};
    CHECK_EQ(weft_stream_connect_addrinfo_dl(&c, &a1, &o, weft_deadline_in(0.1)), -ETIMEDOUT);

    weft_server_release(srv);
    blackhole_close(&bh);
    return 0;
}

static void test_happy_eyeballs(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(he_main, NULL), 0));
}

/* Families interleave: with two IPv6 and two IPv4 addresses, v6 first, the order alternates. */
static int interleave_main(void *arg)
{
    (void)arg;
    if (!nt_have_ipv6())
        return 0;
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, echo_handler, NULL, "127.0.0.1", 0, NULL), 0);
    int port = weft_server_port(srv);
    struct sockaddr_in6 v6a = {.sin6_family = AF_INET6,
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT,
                               .sin6_port = htons((uint16_t)test_free_port())};
    struct sockaddr_in6 v6b = v6a;
    struct sockaddr_in v4 = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(0x7f000001),
                             .sin_port = htons((uint16_t)port)};
    struct addrinfo x4, x6b, x6a;
    link_ai(&x4, &v4, NULL);
    x6b = (struct addrinfo){.ai_family = AF_INET6,
                            .ai_socktype = SOCK_STREAM,
                            .ai_addr = (struct sockaddr *)&v6b,
                            .ai_addrlen = sizeof(v6b),
                            .ai_next = &x4};
    x6a = x6b;
    x6a.ai_addr = (struct sockaddr *)&v6a;
    x6a.ai_next = &x6b;
    char err[256];
    struct weft_connect_opts o = {.interleave = 1, .errbuf = err, .errlen = sizeof(err)};
    weft_stream_t *c;
    /* Sequential but interleaved: [::1] refused, then 127.0.0.1 connects (before [::1] #2). */
    CHECK_EQ(weft_stream_connect_addrinfo(&c, &x6a, &o), 0);
    CHECK(strstr(err, "[::1]") != NULL && strstr(err, "; ") == NULL);
    weft_stream_release(c);
    weft_server_release(srv);
    return 0;
}

static void test_interleave(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(interleave_main, NULL), 0));
}

/* ---- EMFILE on accept: the server pauses and serves again once fds free up ---- */

static int emfile_reports;

static void count_emfile(weft_loop_t *loop, const struct weft_error_info *info, void *arg)
{
    (void)loop;
    (void)arg;
    if (info->error == -EMFILE)
        emfile_reports++;
}

static int emfile_main(void *arg)
{
    (void)arg;
    weft_loop_set_error_handler(weft_loop_current(), count_emfile, NULL);
    struct weft_server_opts so = {.accept_retry_delay = 0.5};
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, echo_handler, NULL, "127.0.0.1", 0, &so), 0);
    int port = weft_server_port(srv);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse("127.0.0.1", port, &ss, &len), 0);
    int c = weft_socket(AF_INET, SOCK_STREAM, 0);
    /* Use up every fd, then connect: the kernel completes it, accept() gets EMFILE. */
    struct rlimit old, low;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(c + 40);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[64], nfill = 0;
    while (nfill < 64) {
        int f = dup(c);
        if (f < 0)
            break;
        fill[nfill++] = f;
    }
    CHECK_EQ(errno, EMFILE);
    CHECK_EQ(weft_sock_connect(c, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(weft_sock_sendall(c, "ping\n", 5, NULL), 0);
    CHECK_EQ(weft_sleep(1.2), 0);
    CHECK(emfile_reports >= 1);
    CHECK_EQ(weft_server_connections(srv), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    /* Served once fds are back, nothing lost. */
    char buf[8];
    ssize_t n = weft_sock_recv(c, buf, sizeof(buf));
    CHECK_EQ(n, 5);
    CHECK(memcmp(buf, "ping\n", 5) == 0);
    CHECK_EQ(weft_close(c), 0);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed(srv), 0);
    weft_server_release(srv);
    return 0;
}

static void test_emfile_on_accept(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(run_virtual(emfile_main, NULL), 0));
}

/* ---- the loop ends under a running server: handlers are cancelled, nothing leaks ---- */

static weft_server_t *left_server;
static weft_stream_t *left_client;

static int shutdown_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_server_start(&left_server, echo_handler, NULL, "127.0.0.1", 0, NULL), 0);
    CHECK_EQ(weft_stream_connect(&left_client, "127.0.0.1", weft_server_port(left_server), NULL),
             0);
    roundtrip(left_client, "before the end\n");
    /* Queue output nobody reads, so a background flush is running too. */
    static char big[1 << 20];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(weft_stream_write(left_client, big, sizeof(big)), 0);
    CHECK_EQ(weft_server_connections(left_server), 1);
    return 0; /* weft_run cancels the handler, the accept task and the flush */
}

static void test_loop_ends_under_server(void)
{
    NT_NO_FD_LEAK({
        CHECK_EQ(weft_run(shutdown_main, NULL), 0);
        CHECK_EQ(weft_server_connections(left_server), 0);
        weft_server_release(left_server); /* outside any loop: closes and frees */
        weft_stream_release(left_client);
    });
}

TEST_MAIN(test_tcp4_echo, test_compact_connections, test_compact_named_connect, test_tcp6_echo,
          test_all_interfaces, test_unix_echo, test_serve_forever, test_connect_refused,
          test_happy_eyeballs, test_interleave, test_emfile_on_accept, test_loop_ends_under_server)
