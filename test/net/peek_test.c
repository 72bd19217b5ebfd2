/*
 * weft_stream_peek / weft_stream_consume (a zero-copy view for incremental parsers) and the
 * server's max_clients (connections past the limit wait in the backlog).
 */
#include "nettest.h"

static int feeder(void *arg)
{
    weft_stream_t *s = arg;
    weft_sleep(0.01);
    weft_stream_feed(s, "de", 2);
    weft_sleep(0.01);
    weft_stream_feed(s, "fgh", 3);
    weft_sleep(0.01);
    weft_stream_feed_eof(s);
    return 0;
}

static int peek_main(void *arg)
{
    (void)arg;
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, -1, NULL), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_peek(NULL, 1, &d, &n), -EINVAL);
    CHECK_EQ(weft_stream_feed(s, "abc", 3), 0);
    /* Enough is buffered: no wait, nothing consumed. */
    CHECK_EQ(weft_stream_peek(s, 2, &d, &n), 0);
    CHECK(n == 3 && memcmp(d, "abc", 3) == 0);
    CHECK_EQ(weft_stream_peek(s, 0, &d, &n), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(weft_stream_consume(s, 4), -EINVAL);
    CHECK_EQ(weft_stream_consume(s, 1), 0);
    CHECK_EQ(weft_stream_buffered(s, NULL), 2);
    /* A timeout consumes nothing. */
    CHECK_EQ(weft_stream_peek_dl(s, 3, &d, &n, weft_deadline_in(0.001)), -ETIMEDOUT);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_stream_buffered(s, NULL), 2);
    /* Waits across feeds until min bytes are there. */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, feeder, s), 0);
    CHECK_EQ(weft_stream_peek(s, 5, &d, &n), 0);
    CHECK(n >= 5 && memcmp(d, "bcdef", 5) == 0);
    CHECK_EQ(weft_stream_consume(s, n), 0);
    /* The end of the stream with fewer bytes: WEFT_EOF and the view of what is there. */
    CHECK_EQ(weft_stream_peek(s, 100, &d, &n), WEFT_EOF);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    weft_stream_release(s);
    return 0;
}

static void test_peek_consume(void)
{
    CHECK_EQ(run_virtual(peek_main, NULL), 0);
}

/* A socket pair: peek receives into the buffer, as many bytes as asked, over several reads. */
static int peek_sock_main(void *arg)
{
    (void)arg;
    int sfd;
    int cfd = nt_tcp_pair("127.0.0.1", &sfd);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sfd, NULL), 0);
    static char big[100000];
    memset(big, 'x', sizeof(big));
    size_t sent;
    CHECK_EQ(weft_sock_sendall(cfd, big, sizeof(big), &sent), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_peek(s, sizeof(big), &d, &n), 0);
    CHECK_EQ(n, sizeof(big));
    CHECK_EQ(weft_stream_consume(s, n), 0);
    weft_close(cfd);
    CHECK_EQ(weft_stream_peek(s, 1, &d, &n), WEFT_EOF);
    weft_stream_release(s);
    return 0;
}

static void test_peek_socket(void)
{
    CHECK_EQ(weft_run(peek_sock_main, NULL), 0);
}

static int late_sender(void *arg)
{
    int fd = *(int *)arg;
    size_t sent;
    weft_sleep(0.02);
    CHECK_EQ(weft_sock_sendall(fd, "c", 1, &sent), 0);
    weft_sleep(0.02);
    CHECK_EQ(weft_sock_sendall(fd, "de", 2, &sent), 0);
    weft_sleep(0.02);
    CHECK_EQ(weft_sock_sendall(fd, "f", 1, &sent), 0);
    return 0;
}

/* Peek on a socket the last short receive drained (a server waiting for its next request): the
 * wait-and-receive fast path, its fallback when fewer than `min` bytes come, its timeout (nothing
 * consumed, the stream still usable) and the end of the stream. */
static int peek_drained_main(void *arg)
{
    (void)arg;
    int sfd;
    int cfd = nt_tcp_pair("127.0.0.1", &sfd);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sfd, NULL), 0);
    size_t sent;
    const char *d;
    size_t n;
    CHECK_EQ(weft_sock_sendall(cfd, "ab", 2, &sent), 0);
    CHECK_EQ(weft_stream_peek(s, 1, &d, &n), 0); /* a short receive: the socket is drained */
    CHECK(n == 2 && memcmp(d, "ab", 2) == 0);
    CHECK_EQ(weft_stream_consume(s, 2), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, late_sender, &cfd), 0);
    CHECK_EQ(weft_stream_peek(s, 1, &d, &n), 0); /* waits, then receives in one step */
    CHECK(n == 1 && d[0] == 'c');
    CHECK_EQ(weft_stream_consume(s, 1), 0);
    CHECK_EQ(weft_stream_peek(s, 3, &d, &n), 0); /* "de" first: the general loop waits on */
    CHECK(n == 3 && memcmp(d, "def", 3) == 0);
    CHECK_EQ(weft_stream_consume(s, 3), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(weft_stream_peek_dl(s, 1, &d, &n, weft_deadline_in(0.02)), -ETIMEDOUT);
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_sock_sendall(cfd, "g", 1, &sent), 0);
    CHECK_EQ(weft_stream_peek(s, 1, &d, &n), 0);
    CHECK(n == 1 && d[0] == 'g');
    CHECK_EQ(weft_stream_consume(s, 1), 0);
    weft_close(cfd);
    CHECK_EQ(weft_stream_peek(s, 1, &d, &n), WEFT_EOF);
    CHECK_EQ(n, 0);
    weft_stream_release(s);
    return 0;
}

static void test_peek_drained(void)
{
    CHECK_EQ(weft_run(peek_drained_main, NULL), 0);
}

static int held;

static int holding_handler(weft_stream_t *s, void *arg)
{
    (void)arg;
    held++;
    char c;
    weft_stream_read(s, &c, 1); /* until the client closes */
    held--;
    return 0;
}

static int maxclients_main(void *arg)
{
    (void)arg;
    weft_server_t *srv;
    struct weft_server_opts o = {.max_clients = 1};
    CHECK_EQ(weft_server_start(&srv, holding_handler, NULL, "127.0.0.1", 0, &o), 0);
    int port = weft_server_port(srv);
    weft_stream_t *a, *b;
    CHECK_EQ(weft_stream_connect(&a, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_stream_connect(&b, "127.0.0.1", port, NULL), 0); /* the kernel's backlog */
    weft_sleep(0.05);
    CHECK_EQ(weft_server_connections(srv), 1);
    CHECK_EQ(held, 1);
    weft_stream_release(a); /* its handler returns: the second one is accepted */
    for (int i = 0; i < 100 && held != 1; i++)
        weft_sleep(0.01);
    weft_sleep(0.05);
    CHECK_EQ(held, 1);
    CHECK_EQ(weft_server_connections(srv), 1);
    weft_stream_release(b);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);
    return 0;
}

static void test_max_clients(void)
{
    int fds = test_count_fds();
    CHECK_EQ(weft_run(maxclients_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

TEST_MAIN(test_peek_consume, test_peek_socket, test_peek_drained, test_max_clients)
