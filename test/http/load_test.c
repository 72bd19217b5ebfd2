#define _GNU_SOURCE
/*
 * Load: slowloris (2,000 connections dripping a request head byte by byte) while a normal
 * client still gets prompt answers, and every dripping connection is answered 408 and closed at
 * the header timeout; then 10,000 keep-alive connections to a server on a thread (and loop) of
 * its own, each answering two requests while all are open (the fd limit is raised, to 65,536
 * where the process may, else to its hard limit; fewer connections if that cannot hold them,
 * said on stderr).
 */
#include "net/spawn.h"

#include <weft/http.h>

#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>

static int hello(weft_http_request_t *req, void *arg)
{
    (void)arg;
    return weft_http_respond(req, 200, "Hello, World!", 13);
}

static size_t raise_fd_limit(void)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    struct rlimit want = {65536, 65536}; /* root (CI) may raise the hard limit too */
    if (rl.rlim_max >= want.rlim_max || setrlimit(RLIMIT_NOFILE, &want) < 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return (size_t)rl.rlim_cur;
}

/* Read one response with a Content-Length body; returns its status or a negative error. */
static int read_response(weft_stream_t *s, int64_t dl)
{
    const char *d;
    size_t n;
    int r = weft_stream_readuntil_dl(s, "\r\n\r\n", 4, &d, &n, dl);
    if (r < 0)
        return r;
    int status = atoi(d + 9);
    const char *cl = memmem(d, n, "Content-Length: ", 16);
    size_t len = cl != NULL ? (size_t)atol(cl + 16) : 0;
    char body[256];
    CHECK(len <= sizeof(body));
    r = weft_stream_readexactly_dl(s, body, len, NULL, dl);
    return r < 0 ? r : status;
}

/* A plain blocking connect() (loopback completes it in the kernel), then a stream over it. */
static int fast_connect(weft_stream_t **out, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return weft_stream_new(out, fd, NULL);
}

static const char GET[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";

/* The server runs on a thread (and loop) of its own, so that it has its own CPU time and the
 * clients' streams do not run in its loop. */
static _Atomic int kport;
static _Atomic size_t kconns;
static int stop_fd = -1;

static struct weft_http_server_opts kopts;

static int kserver_main(void *arg)
{
    (void)arg;
    weft_http_server_t *srv;
    CHECK_EQ(weft_http_server_start(&srv, hello, NULL, "127.0.0.1", 0, &kopts), 0);
    kport = weft_http_server_port(srv);
    uint64_t v;
    while (read(stop_fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
        kconns = weft_http_server_connections(srv);
        weft_wait_fd_dl(stop_fd, WEFT_READABLE, weft_deadline_in(0.05));
    }
    CHECK(weft_http_server_shutdown(srv, 1) >= 0);
    weft_http_server_release(srv);
    return 0;
}

static void *kserver_thread(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_run(kserver_main, NULL), 0);
    return NULL;
}

static pthread_t kthread;

static void kserver_start(const struct weft_http_server_opts *o)
{
    kopts = *o;
    kport = 0;
    stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(stop_fd >= 0);
    CHECK_EQ(pthread_create(&kthread, NULL, kserver_thread, NULL), 0);
    for (int i = 0; i < 500 && kport == 0; i++)
        usleep(10000);
    CHECK(kport > 0);
}

static void kserver_stop(void)
{
    uint64_t one = 1;
    CHECK_EQ(write(stop_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
    CHECK_EQ(pthread_join(kthread, NULL), 0);
    close(stop_fd);
}

/* ---- slowloris ---- */

#define SLOW (getenv("SLOW") ? atoi(getenv("SLOW")) : 2000)

static weft_stream_t *slow[20000];

static bool dripping;

/* Drip one more byte of a request head into every slow connection every 200 ms. */
static int drip_main(void *arg)
{
    (void)arg;
    const char *head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (size_t pos = 0; dripping; pos++) {
        char c = pos < strlen(head) ? head[pos] : 'a';
        for (int i = 0; i < SLOW; i++)
            weft_stream_write(slow[i], &c, 1); /* fails once the server closed it: fine */
        weft_sleep(0.2);
    }
    return 0;
}

static int slowloris_main(void *arg)
{
    (void)arg;
    int port = kport;
    for (int i = 0; i < SLOW; i++) {
        CHECK_EQ(fast_connect(&slow[i], port), 0);
        if (i % 100 == 99)
            weft_sleep(0); /* let the server accept */
    }
    /* All accepted and waiting for their heads before the clock starts. */
    for (int i = 0; i < 3000 && kconns < (size_t)SLOW; i++)
        weft_sleep(0.01);
    CHECK(kconns >= (size_t)SLOW);
    dripping = true;
    weft_task_t *drip;
    CHECK_EQ(weft_spawn(&drip, drip_main, NULL), 0);
    /* A normal client, one request per connection, for 1.5 s while the others drip. */
    int64_t start = weft_time(NULL);
    double worst = 0;
    int answered = 0;
    while (weft_time(NULL) - start < (int64_t)1500000000) {
        int64_t t0 = weft_time(NULL);
        weft_stream_t *s;
        CHECK_EQ(weft_stream_connect(&s, "127.0.0.1", port, NULL), 0);
        CHECK_EQ(weft_stream_write(s, GET, strlen(GET)), 0);
        CHECK_EQ(read_response(s, weft_deadline_in(5)), 200);
        weft_stream_release(s);
        double dt = (double)(weft_time(NULL) - t0) / 1e9;
        worst = dt > worst ? dt : worst;
        answered++;
    }
    CHECK(kconns >= (size_t)SLOW); /* all still held */
    fprintf(stderr, "slowloris: %d normal requests answered, worst %.3f s, %d dripping\n",
            answered, worst, SLOW);
    CHECK(answered >= 5);
    CHECK(worst < 1.0); /* far below the header timeout: never starved */
    /* Every dripping connection gets 408 at its header timeout and is closed. */
    int got408 = 0;
    for (int i = 0; i < SLOW; i++) {
        int st = read_response(slow[i], weft_deadline_in(10));
        got408 += st == 408;
    }
    dripping = false;
    CHECK_EQ(weft_join(drip), 0);
    weft_task_release(drip);
    for (int i = 0; i < SLOW; i++)
        weft_stream_release(slow[i]);
    CHECK_EQ(got408, SLOW);
    return 0;
}

static void test_slowloris(void)
{
    CHECK(raise_fd_limit() >= (size_t)(2 * SLOW + 100));
    struct weft_http_server_opts o = {.header_timeout = 8.0, .backlog = 4096};
    kserver_start(&o);
    int r = weft_run(slowloris_main, NULL);
    kserver_stop();
    CHECK_EQ(r, 0);
}

/* ---- 10,000 keep-alive connections ---- */

static size_t nconns;
static weft_stream_t **conns;

static int keepalive_main(void *arg)
{
    (void)arg;
    int port = kport;
    int64_t t0 = weft_time(NULL);
    /* Round 1: connections opened in batches of 1,000, each answered, all kept open. */
    for (size_t b = 0; b < nconns; b += 1000) {
        size_t e = b + 1000 < nconns ? b + 1000 : nconns;
        for (size_t i = b; i < e; i++) {
            int r = fast_connect(&conns[i], port);
            if (r < 0) {
                fprintf(stderr, "connect %zu: %s\n", i, weft_strerror(r));
                CHECK(0);
            }
            CHECK_EQ(weft_stream_write(conns[i], GET, strlen(GET)), 0);
        }
        for (size_t i = b; i < e; i++)
            CHECK_EQ(read_response(conns[i], weft_deadline_in(30)), 200);

    }
    double t1 = (double)(weft_time(NULL) - t0) / 1e9;
    /* Round 2: a request on every one of them at once, answered on the same connections. */
    for (size_t i = 0; i < nconns; i++)
        CHECK_EQ(weft_stream_write(conns[i], GET, strlen(GET)), 0);
    for (size_t i = 0; i < nconns; i++) {
        int st = read_response(conns[i], weft_deadline_in(30));
        if (st != 200) {
            fprintf(stderr, "round 2 conn %zu: %d\n", i, st);
            CHECK(0);
        }
    }
    weft_sleep(0.2);
    size_t held = kconns;
    fprintf(stderr, "%zu keep-alive connections (server holds %zu): opened and answered in "
            "%.2f s, all answered again in %.2f s\n", nconns, held, t1,
            (double)(weft_time(NULL) - t0) / 1e9 - t1 - 0.2);
    CHECK_EQ(held, nconns);
    for (size_t i = 0; i < nconns; i++)
        weft_stream_release(conns[i]);
    return 0;
}

static void test_10k_keepalive(void)
{
    size_t lim = raise_fd_limit();
    nconns = 10000;
    if (lim < 2 * nconns + 64) {
        nconns = lim > 264 ? (lim - 64) / 2 : 100;
        fprintf(stderr, "fd limit %zu: %zu connections instead of 10,000\n", lim, nconns);
    }
    conns = calloc(nconns, sizeof(*conns));
    struct weft_http_server_opts o = {.keepalive_timeout = 120, .header_timeout = 120,
                                      .max_connections = 20000, .backlog = 4096};
    kserver_start(&o);
    int r = weft_run(keepalive_main, NULL);
    kserver_stop();
    free(conns);
    CHECK_EQ(r, 0);
}

TEST_MAIN(test_slowloris, test_10k_keepalive)
