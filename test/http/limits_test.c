/*
 * The HTTP server's timeouts and limits over loopback sockets (client and harness: srvtest.h):
 * the header, keep-alive idle and body timeouts (real clock), the keep-alive idle close on the
 * virtual clock (at keepalive_timeout, never before, at most two ticks after), and
 * max_connections (the others wait in the backlog).
 */
#include "srvtest.h"

static void timeouts_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    /* A head trickled too slowly: 408 at header_timeout, though bytes keep coming. */
    weft_stream_t *s = cconnect(port);
    int64_t t0 = weft_time(NULL);
    const char *part = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    int e = 0;
    for (size_t i = 0; part[i] != '\0' && e == 0; i++) {
        e = weft_stream_write(s, part + i, 1);
        weft_sleep(0.02);
    }
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    double dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* A connection that never sends anything is closed at header_timeout, silently. */
    s = cconnect(port);
    t0 = weft_time(NULL);
    check_closed(s);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* Keep-alive idle: closed after keepalive_timeout. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    t0 = weft_time(NULL);
    check_closed(s);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.15 && dt < 2.0);
    weft_stream_release(s);
    /* A later request of a connection: its head's deadline starts once its first bytes did
     * not hold all of it. In two pieces 0.05 s apart: answered; trickled past header_timeout
     * (and past keepalive_timeout, which no longer applies once bytes came): 408. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    csends(s, "GET /hello HTTP/1.1\r\n");
    weft_sleep(0.05);
    csends(s, "Host: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 200);
    t0 = weft_time(NULL);
    e = 0;
    for (size_t i = 0; part[i] != '\0' && e == 0; i++) {
        e = weft_stream_write(s, part + i, 1);
        weft_sleep(0.02);
    }
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    dt = (double)(weft_time(NULL) - t0) / 1e9;
    CHECK(dt >= 0.25 && dt < 2.0);
    weft_stream_release(s);
    /* A body that stops coming: 408 after body_timeout. */
    s = cconnect(port);
    csends(s, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(r.status, 408);
    CHECK(r.close);
    weft_stream_release(s);
    free(r.body);
}

static void test_timeouts(void)
{
    struct weft_http_server_opts o = {
        .header_timeout = 0.3, .keepalive_timeout = 0.2, .body_timeout = 0.2};
    run_with(timeouts_fn, &o);
}

/* ---- keep-alive idle on the virtual clock: closed at keepalive_timeout, never before ---- */

#define KA_NS   5000000000LL  /* the keep-alive timeout of these cases: 5 s */
#define KA_TICK (KA_NS / 16)  /* the server's tick for it (server.c, the wheel) */

/* One GET /hello answered on `s`; returns the virtual time of the answer. */
static int64_t ask_hello(weft_stream_t *s, struct resp *r)
{
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, r), 0);
    CHECK_EQ(r->status, 200);
    return weft_time(NULL);
}

/* Wait for the server to close `s`: the time it did (nothing else happens on the clock). */
static int64_t closed_at(weft_stream_t *s)
{
    char ch;
    CHECK_EQ(weft_stream_read_dl(s, &ch, 1, weft_deadline_in(60)), 0);
    return weft_time(NULL);
}

/* The close of a connection idle since `t0`: not before the timeout, at most two ticks after. */
static void check_idle_close(weft_stream_t *s, int64_t t0)
{
    int64_t dt = closed_at(s) - t0;
    if (dt < KA_NS || dt > KA_NS + 2 * KA_TICK)
        fprintf(stderr, "idle close after %lld ns\n", (long long)dt);
    CHECK(dt >= KA_NS);
    CHECK(dt <= KA_NS + 2 * KA_TICK);
}

static int idle_port;

/* One connection of the staggered case: starts `i` sevenths of a tick after the others, asks
 * again 1 ns before the timeout (answered), then is left idle (closed in time). */
static int staggered_conn(void *arg)
{
    int i = (int)(intptr_t)arg;
    struct resp r = {0};
    CHECK_EQ(weft_sleep_until(weft_time(NULL) + i * KA_TICK / 7), 0);
    weft_stream_t *s = cconnect(idle_port);
    int64_t t0 = ask_hello(s, &r);
    CHECK_EQ(weft_sleep_until(t0 + KA_NS - 1), 0);
    t0 = ask_hello(s, &r);
    check_idle_close(s, t0);
    weft_stream_release(s);
    free(r.body);
    return 0;
}

static void idle_virtual_fn(int port, weft_http_server_t *srv)
{
    (void)srv;
    struct resp r = {0};
    /* Alone: closed between the timeout and two ticks after it. */
    weft_stream_t *s = cconnect(port);
    check_idle_close(s, ask_hello(s, &r));
    weft_stream_release(s);
    /* Requests 0.9 timeouts apart for over five timeouts: the wait that began with each answer
     * counts from that answer, so none is cut; then the last wait's close is in time. */
    s = cconnect(port);
    int64_t t0 = ask_hello(s, &r);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(weft_sleep_until(t0 + KA_NS * 9 / 10), 0);
        t0 = ask_hello(s, &r);
    }
    check_idle_close(s, t0);
    weft_stream_release(s);
    /* Twenty connections whose waits begin at every phase of the ticks (a seventh of a tick
     * apart) and of the ticker's life: each asks again 1 ns before its timeout (answered), then
     * each is closed in time. */
    idle_port = port;
    weft_task_t *t[20];
    for (int i = 0; i < 20; i++)
        CHECK_EQ(weft_spawn(&t[i], staggered_conn, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    /* A pipelined pair is answered whole (the second head is buffered: no wait), then the
     * connection is closed in time. */
    s = cconnect(port);
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(s, &r), 0);
    CHECK_EQ(cread(s, &r), 0);
    check_idle_close(s, weft_time(NULL));
    weft_stream_release(s);
    free(r.body);
}

static int harness_virtual(void *arg)
{
    return harness_main(arg);
}

static void test_keepalive_idle_virtual(void)
{
    struct harness hn = {.fn = idle_virtual_fn,
                         .opts = {.keepalive_timeout = (double)KA_NS / 1e9,
                                  .header_timeout = 30}};
    reports = 0;
    int fds = test_count_fds();
    int64_t real0 = weft_time(NULL);
    CHECK_EQ(run_virtual(harness_virtual, &hn), 0);
    CHECK_EQ(test_count_fds(), fds);
    CHECK(weft_time(NULL) - real0 < 5000000000LL); /* virtual minutes, real instants */
}

static int connect_and_ask(void *arg)
{
    int port = *(int *)arg;
    weft_stream_t *s = cconnect(port);
    struct resp r = {0};
    csends(s, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    int e = cread(s, &r);
    weft_stream_release(s);
    free(r.body);
    return e == 0 ? r.status : e;
}

static void maxconn_fn(int port, weft_http_server_t *srv)
{
    weft_stream_t *a = cconnect(port), *b = cconnect(port);
    struct resp r = {0};
    csends(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(a, &r), 0);
    csends(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(b, &r), 0);
    CHECK_EQ(weft_http_server_connections(srv), 2);
    /* A third one waits in the backlog (connected by the kernel, not served)... */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, connect_and_ask, &port), 0);
    weft_sleep(0.2);
    CHECK(!weft_task_done(t));
    CHECK_EQ(weft_http_server_connections(srv), 2);
    /* ...and is served once one closes. */
    weft_stream_release(a);
    CHECK_EQ(weft_join(t), 200);
    weft_task_release(t);
    weft_stream_release(b);
    free(r.body);
}

static void test_max_connections(void)
{
    struct weft_http_server_opts o = {.max_connections = 2};
    run_with(maxconn_fn, &o);
}

TEST_MAIN(test_timeouts, test_keepalive_idle_virtual, test_max_connections)
