/*
 * Waiting for fd readiness: weft_wait_fd_dl returns the ready events, -ETIMEDOUT at its
 * deadline, -EBADF when another task weft_close()s the fd, -ECANCELED when cancelled; several
 * waiters on one fd are all woken; edge-style contract; argument and misuse errors.
 */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEC 1000000000LL

static int p[2];

static void nonblock(int fd)
{
    CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

static void make_pipe(void)
{
    CHECK_EQ(pipe(p), 0);
    nonblock(p[0]);
    nonblock(p[1]);
}

/* Run `fn` as the main task of a virtual-clock loop; it must succeed and leave no fd open. */
static void run_leaving_no_fd(weft_task_fn fn)
{
    int before = test_count_fds();
    CHECK_EQ(run_virtual(fn, NULL), 0);
    CHECK_EQ(test_count_fds(), before);
}

static int64_t woke_at;

static int reader(void *arg)
{
    int64_t dl = (int64_t)(long)arg;
    int r = weft_wait_fd_dl(p[0], WEFT_READABLE, dl);
    woke_at = weft_time(NULL);
    return r;
}

static int writer_after_1s(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(1), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    return 0;
}

static int readable_main(void *arg)
{
    (void)arg;
    weft_task_t *r, *w;
    make_pipe();
    char c;
    CHECK_EQ(read(p[0], &c, 1), -1); /* EAGAIN: now wait */
    CHECK_EQ(weft_spawn(&r, reader, (void *)(long)(5 * SEC)), 0);
    CHECK_EQ(weft_spawn(&w, writer_after_1s, NULL), 0);
    CHECK_EQ(weft_join(r), WEFT_READABLE);
    CHECK_EQ(woke_at, 1 * SEC);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(weft_join(w), 0);
    weft_task_release(r);
    weft_task_release(w);

    /* Edge-style: drained, a new wait blocks until new data; here it times out. */
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(2)), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), 3 * SEC);
    /* WRITABLE on an empty pipe's write end: ready at once. */
    CHECK_EQ(weft_wait_fd_dl(p[1], WEFT_WRITABLE, weft_deadline_in(2)), WEFT_WRITABLE);
    CHECK_EQ(weft_close(p[0]), 0);
    CHECK_EQ(weft_close(p[1]), 0);
    return 0;
}

static void test_wait_readable(void)
{
    run_leaving_no_fd(readable_main);
}

static int timeout_main(void *arg)
{
    (void)arg;
    make_pipe();
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, 2 * SEC), -ETIMEDOUT);
    CHECK_EQ(weft_time(NULL), 2 * SEC);
    /* A deadline already past: -ETIMEDOUT without new data. */
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, 0), -ETIMEDOUT);
    /* After a timeout the fd still works. */
    CHECK_EQ(write(p[1], "y", 1), 1);
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(1)), WEFT_READABLE);
    weft_close(p[0]);
    weft_close(p[1]);
    return 0;
}

static void test_wait_timeout(void)
{
    CHECK_EQ(run_virtual(timeout_main, NULL), 0);
}

/* ---- close while others wait; many waiters ---- */

static int closer(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_sleep(1), 0);
    return weft_close(p[0]);
}

static int close_main(void *arg)
{
    (void)arg;
    weft_task_t *r[3], *c;
    make_pipe();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&r[i], reader, (void *)(long)WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_spawn(&c, closer, NULL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(r[i]), -EBADF);
        weft_task_release(r[i]);
    }
    CHECK_EQ(woke_at, 1 * SEC);
    CHECK_EQ(weft_join(c), 0);
    weft_task_release(c);
    CHECK_EQ(weft_close(p[1]), 0);
    /* The number may be reused at once: a new pipe on it is watched afresh. */
    make_pipe();
    CHECK_EQ(write(p[1], "z", 1), 1);
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(1)), WEFT_READABLE);
    weft_close(p[0]);
    weft_close(p[1]);
    return 0;
}

static void test_close_wakes_waiters_ebadf(void)
{
    run_leaving_no_fd(close_main);
}

static int many_main(void *arg)
{
    (void)arg;
    weft_task_t *r[5];
    make_pipe();
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_spawn(&r[i], reader, (void *)(long)(10 * SEC)), 0);
    CHECK_EQ(weft_yield(), 0); /* all five wait */
    CHECK_EQ(write(p[1], "x", 1), 1);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(weft_join(r[i]), WEFT_READABLE); /* every waiter is woken */
        weft_task_release(r[i]);
    }
    CHECK_EQ(weft_time(NULL), 0);
    weft_close(p[0]);
    weft_close(p[1]);
    return 0;
}

static void test_several_waiters_all_woken(void)
{
    CHECK_EQ(run_virtual(many_main, NULL), 0);
}

/* ---- several waiters: woken in arrival order, whichever one left ---- */

static int order[8], norder;

static int tagged_reader(void *arg)
{
    int r = weft_wait_fd_dl(p[0], WEFT_READABLE, 10 * SEC);
    order[norder++] = (int)(long)arg;
    return r;
}

static int order_main(void *arg)
{
    (void)arg;
    weft_task_t *r[4];
    make_pipe();
    norder = 0;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&r[i], tagged_reader, (void *)(long)i), 0);
    CHECK_EQ(weft_yield(), 0); /* 0, 1, 2 wait, in that order */
    CHECK(weft_task_cancel(r[0], NULL)); /* the oldest leaves */
    CHECK_EQ(weft_join(r[0]), -ECANCELED);
    CHECK_EQ(weft_spawn(&r[3], tagged_reader, (void *)(long)3), 0);
    CHECK_EQ(weft_yield(), 0); /* 3 waits behind 1 and 2 */
    CHECK_EQ(write(p[1], "x", 1), 1);
    for (int i = 1; i < 4; i++)
        CHECK_EQ(weft_join(r[i]), WEFT_READABLE);
    CHECK_EQ(norder, 4);
    CHECK_EQ(order[0], 0);
    CHECK_EQ(order[1], 1);
    CHECK_EQ(order[2], 2);
    CHECK_EQ(order[3], 3);
    for (int i = 0; i < 4; i++)
        weft_task_release(r[i]);
    /* Everyone left: a lone waiter later is woken again, and by a close too. */
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(weft_spawn(&r[0], tagged_reader, (void *)(long)5), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_close(p[0]), 0);
    CHECK_EQ(weft_join(r[0]), -EBADF);
    weft_task_release(r[0]);
    CHECK_EQ(weft_close(p[1]), 0);
    return 0;
}

static void test_waiters_in_arrival_order(void)
{
    CHECK_EQ(run_virtual(order_main, NULL), 0);
}

/* ---- socketpair: readers and writers on one fd get only their events ---- */

static int sv[2];

static int wait_sv0(void *arg)
{
    return weft_wait_fd_dl(sv[0], (int)(long)arg, weft_deadline_in(10));
}

static int socket_main(void *arg)
{
    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    nonblock(sv[0]);
    nonblock(sv[1]);
    /* Fill sv[0]'s send buffer so it is not writable. */
    static char buf[65536];
    size_t filled = 0;
    for (;;) {
        ssize_t n = write(sv[0], buf, sizeof(buf));
        if (n < 0)
            break;
        filled += (size_t)n;
    }
    CHECK(filled > 0);
    weft_task_t *rd, *wr;
    CHECK_EQ(weft_spawn(&rd, wait_sv0, (void *)(long)WEFT_READABLE), 0);
    CHECK_EQ(weft_spawn(&wr, wait_sv0, (void *)(long)WEFT_WRITABLE), 0);
    CHECK_EQ(weft_yield(), 0);
    /* Data for sv[0]: only the reader wakes. */
    CHECK_EQ(write(sv[1], "hi", 2), 2);
    CHECK_EQ(weft_join(rd), WEFT_READABLE);
    CHECK(!weft_task_done(wr));
    /* Drain the peer: sv[0] becomes writable. */
    size_t drained = 0;
    while (drained < filled) {
        ssize_t n = read(sv[1], buf, sizeof(buf));
        if (n <= 0) {
            CHECK_EQ(weft_wait_fd_dl(sv[1], WEFT_READABLE, weft_deadline_in(1)), WEFT_READABLE);
            continue;
        }
        drained += (size_t)n;
    }
    CHECK_EQ(weft_join(wr), WEFT_WRITABLE);
    weft_task_release(rd);
    weft_task_release(wr);
    /* Readiness that came while nobody waited for it is reported at once, and only once; then,
     * edge-style, no new readiness means no wake-up although data is pending and it is
     * writable. */
    int64_t t0 = weft_time(NULL);
    CHECK(weft_wait_fd_dl(sv[0], WEFT_READABLE | WEFT_WRITABLE, weft_deadline_in(1)) > 0);
    CHECK_EQ(weft_time(NULL), t0);
    while (weft_wait_fd_dl(sv[0], WEFT_READABLE | WEFT_WRITABLE, weft_deadline_in(1)) > 0)
        CHECK_EQ(weft_time(NULL), t0); /* at most one more remembered direction */
    CHECK_EQ(weft_time(NULL) - t0, 1000000000LL); /* the last wait timed out */
    /* Both directions in one wait: new data wakes it with (at least) READABLE. */
    CHECK_EQ(write(sv[1], "!", 1), 1);
    int r = weft_wait_fd_dl(sv[0], WEFT_READABLE | WEFT_WRITABLE, weft_deadline_in(1));
    CHECK(r > 0 && (r & WEFT_READABLE));
    /* Peer hang-up wakes a reader. */
    CHECK_EQ(read(sv[0], buf, sizeof(buf)), 3);
    CHECK_EQ(weft_spawn(&rd, wait_sv0, (void *)(long)WEFT_READABLE), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_close(sv[1]), 0);
    CHECK(weft_join(rd) & WEFT_READABLE);
    weft_task_release(rd);
    CHECK_EQ(weft_close(sv[0]), 0);
    return 0;
}

static void test_socketpair_directions(void)
{
    run_leaving_no_fd(socket_main);
}

/* ---- cancellation ---- */

static int cancel_main(void *arg)
{
    (void)arg;
    weft_task_t *r;
    make_pipe();
    CHECK_EQ(weft_spawn(&r, reader, (void *)(long)WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(r, NULL));
    CHECK_EQ(weft_join(r), -ECANCELED);
    CHECK(weft_task_cancelled(r));
    weft_task_release(r);
    /* The cancelled waiter is gone: a later event and close find nothing stale. */
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(1)), WEFT_READABLE);
    CHECK_EQ(weft_close(p[0]), 0);
    CHECK_EQ(weft_close(p[1]), 0);
    return 0;
}

static void test_wait_fd_cancel(void)
{
    CHECK_EQ(run_virtual(cancel_main, NULL), 0);
}

/* ---- real clock ---- */

static int real_main(void *arg)
{
    (void)arg;
    make_pipe();
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, weft_deadline_in(0.02)), -ETIMEDOUT);
    CHECK(weft_time(NULL) - t0 >= 20000000);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(weft_wait_fd(p[0], WEFT_READABLE), WEFT_READABLE);
    weft_close(p[0]);
    weft_close(p[1]);
    return 0;
}

static void test_wait_fd_real_clock(void)
{
    CHECK_EQ(weft_run(real_main, NULL), 0);
}

/* ---- errors ---- */

static int errors_main(void *arg)
{
    (void)arg;
    make_pipe();
    CHECK_EQ(weft_wait_fd(p[0], 0), -EINVAL);
    CHECK_EQ(weft_wait_fd(p[0], 4), -EINVAL);
    CHECK_EQ(weft_wait_fd(-1, WEFT_READABLE), -EINVAL);
    /* A regular file cannot be polled. */
    char path[] = "/tmp/weft-fd-test-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    CHECK_EQ(weft_wait_fd_dl(f, WEFT_READABLE, weft_deadline_in(1)), -EPERM);
    CHECK_EQ(weft_close(f), 0);
    /* A closed fd: an error, never a hang. */
    int closed = p[0];
    CHECK_EQ(weft_close(p[0]), 0);
    CHECK(weft_wait_fd_dl(closed, WEFT_READABLE, weft_deadline_in(1)) < 0);
    CHECK_EQ(weft_close(p[1]), 0);
    return 0;
}

static void test_wait_fd_errors(void)
{
    int base_fds = test_count_fds();
    run_leaving_no_fd(errors_main);
    /* Outside a task. */
    make_pipe();
    CHECK_EQ(weft_wait_fd(p[0], WEFT_READABLE), -EPERM);
    CHECK_EQ(weft_wait_fd_dl(p[0], WEFT_READABLE, 0), -EPERM);
    CHECK_EQ(weft_close(p[0]), 0); /* usable without a loop */
    CHECK_EQ(weft_close(p[1]), 0);
    CHECK_EQ(weft_close(-1), -EBADF);
    CHECK_EQ(weft_close(p[1]), -EBADF);
    CHECK_EQ(test_count_fds(), base_fds);
}

/* ---- readiness with no waiter, lasting hang-up ---- */

static int remembered_main(void *arg)
{
    (void)arg;
    int pair[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    char buf[16];
    /* Register pair[0] (it is writable at once), then let data arrive while nobody waits. */
    CHECK(weft_wait_fd(pair[0], WEFT_WRITABLE) & WEFT_WRITABLE);
    CHECK_EQ(write(pair[1], "ab", 2), 2);
    CHECK_EQ(weft_yield(), 0); /* the loop polls and sees the edge: no task waits for it */
    CHECK_EQ(weft_yield(), 0);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_wait_fd_dl(pair[0], WEFT_READABLE, weft_deadline_in(5)), WEFT_READABLE);
    CHECK_EQ(weft_time(NULL), t0); /* not lost, no suspension */
    CHECK_EQ(read(pair[0], buf, sizeof(buf)), 2);
    /* The peer leaves while nobody waits: every later wait reports it at once. */
    CHECK_EQ(weft_close(pair[1]), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_yield(), 0);
    for (int i = 0; i < 3; i++)
        CHECK(weft_wait_fd_dl(pair[0], WEFT_READABLE, weft_deadline_in(5)) & WEFT_READABLE);
    CHECK_EQ(weft_time(NULL), t0);
    CHECK_EQ(read(pair[0], buf, sizeof(buf)), 0);
    CHECK_EQ(weft_close(pair[0]), 0);
    return 0;
}

static void test_readiness_remembered(void)
{
    run_leaving_no_fd(remembered_main);
}

/* ---- output readiness is watched only while it may be waited for ---- */

/* The loop's epoll fd: the only eventpoll in a core test. */
static int loop_epfd(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int found = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], target[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = 0;
            if (strcmp(target, "anon_inode:[eventpoll]") == 0)
                found = atoi(e->d_name);
        }
    }
    closedir(d);
    CHECK(found >= 0);
    return found;
}

/* The epoll event mask `fd` is registered with (from /proc's fdinfo of the epoll fd), or -1. */
static int epoll_mask(int fd)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", loop_epfd());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int mask = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        int tfd;
        unsigned ev;
        if (sscanf(line, "tfd: %d events: %x", &tfd, &ev) == 2 && tfd == fd)
            mask = (int)ev;
    }
    fclose(f);
    return mask;
}

#define EP_OUT 0x004 /* EPOLLOUT */

/* Let the loop poll once (with nothing else ready, a timed sleep polls before time moves). */
static void poll_once(void)
{
    CHECK_EQ(weft_sleep(0.001), 0);
}

static int out_writer(void *arg)
{
    return weft_wait_fd(*(int *)arg, WEFT_WRITABLE);
}

static int output_interest_main(void *arg)
{
    (void)arg;
    int a[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a), 0);
    char buf[4096] = {0};
    /* Waited for input first: watched for input only. A request / reply exchange (the peer
     * reads, which signals output on a Unix socket) leaves it so. */
    CHECK_EQ(write(a[1], "r", 1), 1);
    CHECK_EQ(weft_wait_fd(a[0], WEFT_READABLE), WEFT_READABLE);
    CHECK_EQ(epoll_mask(a[0]) & EP_OUT, 0);
    CHECK_EQ(read(a[0], buf, 1), 1);
    CHECK_EQ(write(a[0], "q", 1), 1);
    CHECK_EQ(read(a[1], buf, 1), 1);
    poll_once();
    CHECK_EQ(epoll_mask(a[0]) & EP_OUT, 0);

    /* A wait for output adds it, and is woken when the peer makes room. */
    size_t filled = 0;
    while (write(a[0], buf, sizeof(buf)) > 0)
        filled += sizeof(buf);
    CHECK(filled > 0);
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, out_writer, &a[0]), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(epoll_mask(a[0]) & EP_OUT);
    while (read(a[1], buf, sizeof(buf)) > 0)
        ;
    CHECK_EQ(weft_join(w), WEFT_WRITABLE);
    weft_task_release(w);

    /* An output edge nobody waits for (the peer read again) drops it; the readiness it told of
     * is remembered, and a later wait for output that finds none adds it back. */
    CHECK_EQ(write(a[0], "q", 1), 1);
    CHECK_EQ(read(a[1], buf, 1), 1);
    poll_once();
    CHECK_EQ(epoll_mask(a[0]) & EP_OUT, 0);
    CHECK_EQ(weft_wait_fd_dl(a[0], WEFT_WRITABLE, weft_deadline_in(5)), WEFT_WRITABLE);
    while (write(a[0], buf, sizeof(buf)) > 0)
        ;
    CHECK_EQ(weft_spawn(&w, out_writer, &a[0]), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(epoll_mask(a[0]) & EP_OUT);
    while (read(a[1], buf, sizeof(buf)) > 0) /* a Unix socket is writable again at 3/4 free */
        ;
    CHECK_EQ(weft_join(w), WEFT_WRITABLE);
    weft_task_release(w);

    /* Waited for output first (a connect): watched both ways from the start. */
    int b[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b), 0);
    CHECK_EQ(weft_wait_fd(b[0], WEFT_WRITABLE), WEFT_WRITABLE);
    CHECK(epoll_mask(b[0]) & EP_OUT);
    CHECK_EQ(weft_close(a[0]), 0);
    CHECK_EQ(weft_close(a[1]), 0);
    CHECK_EQ(weft_close(b[0]), 0);
    CHECK_EQ(weft_close(b[1]), 0);
    return 0;
}

static void test_output_interest_dropped(void)
{
    run_leaving_no_fd(output_interest_main);
}

TEST_MAIN(test_output_interest_dropped, test_readiness_remembered, test_wait_readable,
          test_wait_timeout, test_close_wakes_waiters_ebadf, test_several_waiters_all_woken, test_waiters_in_arrival_order, test_socketpair_directions,
          test_wait_fd_cancel, test_wait_fd_real_clock, test_wait_fd_errors)
