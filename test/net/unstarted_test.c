/*
 * Issue 14, item 2: weft's own tasks cancelled before their first step. The asyncio shutdown
 * idiom "cancel every other task" (weft_all_tasks + weft_task_cancel) catches a server's
 * connection task or a stream's flush task before it starts; the task then ends without running
 * its body, and its cleanup must run anyway: no socket, stream or queue leaks, and the waits for
 * the close complete. (ASan's leak check covers the memory; fd counts cover the sockets.)
 */
#include "nettest.h"

/* Cancel every task of this loop but the caller; returns how many were cancelled. */
static int cancel_all_others(void)
{
    weft_task_t *all[64];
    size_t n = weft_all_tasks(NULL, all, 64);
    CHECK(n <= 64);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i] != weft_current_task() && weft_task_cancel(all[i], NULL))
            k++;
    }
    return k;
}

/* ---- a server's connection task ---- */

static bool handler_ran;

static int handler(weft_stream_t *s, void *arg)
{
    (void)s;
    (void)arg;
    handler_ran = true;
    return 0;
}

static int server_main(void *arg)
{
    (void)arg;
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, handler, NULL, "127.0.0.1", 0, NULL), 0);
    int lfd;
    CHECK_EQ(weft_server_sockets(srv, &lfd, 1), 1);
    CHECK_EQ(weft_yield(), 0); /* the accept task runs and waits on the listener */
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(weft_addr_parse("127.0.0.1", weft_server_port(srv), &ss, &len), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(c, (struct sockaddr *)&ss, len), 0); /* loopback: done at once */
    /* Wait on the listener behind the accept task: the event wakes it first, then this task,
     * in one batch. It accepts and spawns the connection's task, which runs in the next
     * iteration: this task sees it before its first step and cancels it (and the rest). */
    CHECK_EQ(weft_wait_fd(lfd, WEFT_READABLE), WEFT_READABLE);
    CHECK_EQ(weft_server_connections(srv), 1);
    CHECK(cancel_all_others() >= 2); /* the accept task and the connection's */
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    CHECK(!handler_ran); /* it was caught before its first step */
    CHECK_EQ(weft_server_connections(srv), 0);
    weft_server_release(srv);
    /* The accepted socket was closed: the client sees the end of the stream. */
    char b[4];
    CHECK_EQ(weft_sock_recv_dl(c, b, sizeof(b), weft_deadline_in(5)), 0);
    CHECK_EQ(weft_close(c), 0);
    return 0;
}

static void test_unstarted_server_connection(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(server_main, NULL), 0));
}

/* ---- a stream's flush task ---- */

#define BIG ((size_t)4 << 20)

static int flush_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sv[0], NULL), 0);
    char *big = calloc(1, BIG);
    CHECK_EQ(weft_stream_write(s, big, BIG), 0); /* the socket takes part: the rest is queued */
    free(big);
    CHECK(weft_stream_write_buffered(s) > 0);
    CHECK_EQ(cancel_all_others(), 1); /* the flush task, not started yet */
    weft_stream_close(s);
    /* The queue is lost as if the flush had been cancelled in its first wait. */
    CHECK_EQ(weft_stream_wait_closed_dl(s, weft_deadline_in(5)), -ECANCELED);
    CHECK_EQ(weft_stream_write_buffered(s), 0);
    CHECK_EQ(weft_stream_fd(s), -1);
    weft_stream_release(s);
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_unstarted_stream_flush(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(flush_main, NULL), 0));
}

/* A drainer waiting on a queue whose flush task never starts is woken with the loss. */
static int drain_main(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, sv[0], NULL), 0);
    char *big = calloc(1, BIG);
    CHECK_EQ(weft_stream_write(s, big, BIG), 0);
    free(big);
    CHECK_EQ(cancel_all_others(), 1);
    CHECK_EQ(weft_stream_drain_dl(s, weft_deadline_in(5)), -ECANCELED);
    weft_stream_release(s); /* the last reference: the stream closes and is freed */
    CHECK_EQ(weft_close(sv[1]), 0);
    return 0;
}

static void test_unstarted_flush_wakes_drain(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(drain_main, NULL), 0));
}

/* An accept task cancelled before its first step drops its reference to the server (the
 * server's memory is then freed with its last reference: ASan's leak check sees it). */
static int accept_main(void *arg)
{
    (void)arg;
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, handler, NULL, "127.0.0.1", 0, NULL), 0);
    CHECK_EQ(cancel_all_others(), 1);
    CHECK_EQ(weft_yield(), 0);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);
    return 0;
}

static void test_unstarted_accept_task(void)
{
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(accept_main, NULL), 0));
}

/* The loop closes under a flush task that never ran (weft_loop_close orphans it). */
static int orphan_main(void *arg)
{
    int *fds = arg;
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, fds[0], NULL), 0);
    char *big = calloc(1, BIG);
    CHECK_EQ(weft_stream_write(s, big, BIG), 0);
    free(big);
    weft_stream_release(s);
    weft_loop_stop(weft_loop_current()); /* the flush task stays queued */
    return 0;
}

static void test_unstarted_flush_at_loop_close(void)
{
    int before = test_count_fds();
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, orphan_main, sv), 0);
    weft_loop_run(l);
    CHECK(weft_task_done(t));
    weft_task_release(t);
    CHECK_EQ(weft_loop_close(l), 0);
    close(sv[1]);
    CHECK_EQ(test_count_fds(), before);
}

TEST_MAIN(test_unstarted_server_connection, test_unstarted_stream_flush,
          test_unstarted_flush_wakes_drain, test_unstarted_accept_task,
          test_unstarted_flush_at_loop_close)
