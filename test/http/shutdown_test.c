/*
 * The HTTP server's graceful shutdown (client and harness: srvtest.h): idle connections closed
 * at once, requests in flight finished within the deadline, the rest cancelled and reported.
 */
#include "srvtest.h"

#define NSLOW 3

struct sd {
    int port;
    weft_http_server_t *srv;
    double grace;
    int result;
};

struct slow {
    struct sd *d;
    double secs; /* how long the handler takes */
};

static int slow_client(void *arg)
{
    struct slow *c = arg;
    weft_stream_t *s = cconnect(c->d->port);
    struct resp r = {0};
    char req[96];
    snprintf(req, sizeof(req), "GET /slow?%.2f HTTP/1.1\r\nHost: x\r\n\r\n", c->secs);
    csends(s, req);
    int e = cread(s, &r);
    int st = e == 0 ? r.status : e;
    if (e == 0 && r.status == 200) {
        CHECK(r.close); /* in flight at shutdown: answered, then closed */
        CHECK(body_is(&r, "slow"));
    }
    weft_stream_release(s);
    free(r.body);
    return st;
}

static int shutdown_main(void *arg)
{
    struct sd *d = arg;
    weft_loop_set_error_handler(weft_loop_current(), count_reports, NULL);
    CHECK_EQ(weft_http_server_start(&d->srv, handler, NULL, "127.0.0.1", 0, NULL), 0);
    d->port = weft_http_server_port(d->srv);
    /* An idle keep-alive connection, and several requests in flight (on connections of their
     * own, each ending at a different time). */
    weft_stream_t *idle = cconnect(d->port);
    struct resp r = {0};
    csends(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cread(idle, &r), 0);
    weft_task_t *t[NSLOW];
    struct slow sl[NSLOW];
    for (int i = 0; i < NSLOW; i++) {
        sl[i] = (struct slow){d, 0.2 + 0.1 * i};
        CHECK_EQ(weft_spawn(&t[i], slow_client, &sl[i]), 0);
    }
    weft_sleep(0.1);
    CHECK_EQ(weft_http_server_connections(d->srv), (size_t)NSLOW + 1);
    int64_t t0 = weft_time(NULL);
    d->result = weft_http_server_shutdown(d->srv, d->grace);
    double dt = (double)(weft_time(NULL) - t0) / 1e9;
    if (d->grace > 1)
        CHECK(dt > 0.15 && dt < 1.0); /* waited for the slowest one only */
    else
        CHECK(dt < 0.5);
    check_closed(idle); /* closed at once */
    weft_stream_release(idle);
    for (int i = 0; i < NSLOW; i++) {
        int st = weft_join(t[i]);
        CHECK_EQ(st, d->grace > 1 ? 200 : 500);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_http_server_connections(d->srv), 0u);
    /* Not accepting any more. */
    weft_stream_t *s;
    CHECK(weft_stream_connect(&s, "127.0.0.1", d->port, NULL) < 0);
    weft_http_server_release(d->srv);
    free(r.body);
    return 0;
}

static void test_graceful_shutdown(void)
{
    struct sd d = {.grace = 5};
    int fds = test_count_fds();
    reports = 0;
    CHECK_EQ(weft_run(shutdown_main, &d), 0);
    CHECK_EQ(d.result, 0);
    CHECK_EQ(reports, 0);
    CHECK_EQ(test_count_fds(), fds);
    /* A deadline shorter than the requests: they are cancelled (500) and counted. */
    d = (struct sd){.grace = 0.05};
    reports = 0;
    CHECK_EQ(weft_run(shutdown_main, &d), 0);
    CHECK_EQ(d.result, NSLOW);
    CHECK_EQ(reports, NSLOW);
    CHECK_EQ(test_count_fds(), fds);
}

TEST_MAIN(test_graceful_shutdown)
