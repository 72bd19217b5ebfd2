/*
 * weft_stream_sendfile: a file range sent on a socket stream after the output already queued,
 * before what is written meanwhile; waits for socket space; deadlines, cancel, errors.
 * (Registered once per file engine like every file test; sendfile itself uses neither.)
 */
#include "test.h"
#include "net/transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILE_LEN (1 << 20)
#define HEAD_LEN (300 << 10)

static char path[256];
static int file_fd;

static void make_file(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/weft-sendfile-XXXXXX", tmp != NULL ? tmp : "/tmp");
    file_fd = mkstemp(path);
    CHECK(file_fd >= 0);
    unlink(path);
    char *b = malloc(FILE_LEN);
    for (int i = 0; i < FILE_LEN; i++)
        b[i] = (char)('A' + (i * 7 + i / 4096) % 26);
    CHECK_EQ(pwrite(file_fd, b, FILE_LEN, 0), FILE_LEN);
    free(b);
}

struct sink {
    weft_stream_t *s;
    size_t want;
    char *got;
};

static int sink_task(void *arg)
{
    struct sink *k = arg;
    size_t n = 0;
    while (n < k->want) {
        ssize_t r = weft_stream_read(k->s, k->got + n, k->want - n);
        if (r <= 0)
            return (int)(r < 0 ? r : -EIO);
        n += (size_t)r;
    }
    return 0;
}

static int late_writer(void *arg)
{
    CHECK_EQ(weft_yield(), 0); /* runs while the sendfile waits for socket space */
    return weft_stream_write(arg, "tail", 4);
}

static int order_main(void *arg)
{
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a, *b;
    CHECK_EQ(weft_stream_new(&a, sv[0], NULL), 0);
    CHECK_EQ(weft_stream_new(&b, sv[1], NULL), 0);
    size_t off0 = 1000, len = FILE_LEN - 2000;
    size_t total = HEAD_LEN + len + 4;
    struct sink k = {b, total, malloc(total)};
    weft_task_t *t;
    /* head: more than the socket takes, so part of it is queued */
    char *head = malloc(HEAD_LEN);
    memset(head, 'h', HEAD_LEN);
    CHECK_EQ(weft_stream_write(a, head, HEAD_LEN), 0);
    free(head);
    CHECK(weft_stream_write_buffered(a) > 0);
    CHECK_EQ(weft_spawn(&t, sink_task, &k), 0);
    int64_t off = (int64_t)off0;
    weft_task_t *w;
    CHECK_EQ(weft_spawn(&w, late_writer, a), 0);
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, len), (ssize_t)len);
    CHECK(weft_task_done(w)); /* it wrote during the sendfile */
    CHECK_EQ(weft_join(w), 0);
    weft_task_release(w);
    CHECK_EQ(off, (int64_t)(off0 + len));
    CHECK_EQ(lseek(file_fd, 0, SEEK_CUR), 0); /* the position is left alone */
    CHECK_EQ(weft_stream_drain(a), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    for (size_t i = 0; i < HEAD_LEN; i++)
        CHECK_EQ(k.got[i], 'h');
    char *want = malloc(len);
    CHECK_EQ(pread(file_fd, want, len, (off_t)off0), (ssize_t)len);
    CHECK(memcmp(k.got + HEAD_LEN, want, len) == 0);
    CHECK(memcmp(k.got + HEAD_LEN + len, "tail", 4) == 0);
    free(want);
    free(k.got);
    /* at the end of the file: 0; past it too */
    off = FILE_LEN;
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 10), 0);
    /* the file position: NULL offset */
    CHECK_EQ(lseek(file_fd, FILE_LEN - 3, SEEK_SET), FILE_LEN - 3);
    CHECK_EQ(weft_stream_sendfile(a, file_fd, NULL, 100), 3);
    CHECK_EQ(lseek(file_fd, 0, SEEK_CUR), FILE_LEN);
    char three[3];
    CHECK_EQ(weft_stream_readexactly(b, three, 3, NULL), 0);
    /* errors */
    CHECK_EQ(weft_stream_sendfile(a, -1, NULL, 1), -EBADF);
    off = -1;
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 1), -EINVAL);
    CHECK_EQ(weft_stream_sendfile(NULL, file_fd, NULL, 1), -EINVAL);
    int dfd = open("/", O_RDONLY | O_DIRECTORY);
    off = 0;
    CHECK(weft_stream_sendfile(a, dfd, &off, 1) < 0);
    close(dfd);
    CHECK_EQ(weft_stream_write(a, "ok", 2), 0); /* a refused fd does not break the stream */
    char two[2];
    CHECK_EQ(weft_stream_readexactly(b, two, 2, NULL), 0);
    /* the peer gone: -EPIPE, never SIGPIPE */
    weft_stream_release(b);
    b = NULL;
    off = 0;
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 1), -EPIPE);
    weft_stream_close(a);
    off = 0;
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 1), -EPIPE);
    weft_stream_release(a);
    weft_stream_release(b);
    return 0;
}

static void test_order(void)
{
    CHECK_EQ(weft_run(order_main, NULL), 0);
}

/* Nobody reads: the socket fills and the call waits, until its deadline or a cancel. */
static weft_stream_t *stuck;
static int64_t stuck_off;

static int stuck_sender(void *arg)
{
    return (int)weft_stream_sendfile(stuck, file_fd, &stuck_off, FILE_LEN);
}

static int deadline_main(void *arg)
{
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a, *b;
    CHECK_EQ(weft_stream_new(&a, sv[0], NULL), 0);
    CHECK_EQ(weft_stream_new(&b, sv[1], NULL), 0);
    int64_t off = 0;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_stream_sendfile_dl(a, file_fd, &off, FILE_LEN, t0 + 1000000000), -ETIMEDOUT);
    CHECK(off > 0 && off < FILE_LEN); /* how far it got */
    /* cancel, and -EBUSY for a second sender meanwhile */
    stuck = a;
    stuck_off = off;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, stuck_sender, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 1), -EBUSY);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    /* the reader now drains everything sent, in order */
    char *got = malloc(FILE_LEN);
    char *want = malloc(FILE_LEN);
    CHECK_EQ(pread(file_fd, want, FILE_LEN, 0), FILE_LEN);
    weft_stream_close(a);
    size_t n = 0;
    for (;;) {
        ssize_t r = weft_stream_read(b, got + n, FILE_LEN - n);
        CHECK(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    CHECK_EQ(n, stuck_off);
    CHECK(memcmp(got, want, n) == 0);
    free(got);
    free(want);
    weft_stream_release(a);
    weft_stream_release(b);
    return 0;
}

static void test_deadline_cancel(void)
{
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
}

/* A stream with a transport (as TLS sets) refuses: the bytes must pass through it. */
static ssize_t tp_read(weft_stream_t *s, void *buf, size_t n)
{
    errno = EIO;
    return -1;
}
static ssize_t tp_write(weft_stream_t *s, const void *buf, size_t n)
{
    return (ssize_t)n;
}
static int tp_shutdown(weft_stream_t *s)
{
    return 0;
}
static void tp_close(weft_stream_t *s, bool graceful)
{
}
static void tp_free(weft_stream_t *s)
{
}
static const struct weft__transport dummy_tp = {tp_read, tp_write, tp_shutdown, tp_close,
                                                tp_free};

static int transport_main(void *arg)
{
    int sv[2];
    CHECK_EQ(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_stream_t *a;
    CHECK_EQ(weft_stream_new(&a, sv[0], NULL), 0);
    weft__stream_set_transport(a, &dummy_tp, NULL);
    int64_t off = 0;
    CHECK_EQ(weft_stream_sendfile(a, file_fd, &off, 100), -EOPNOTSUPP);
    CHECK_EQ(off, 0);
    weft_stream_release(a);
    weft_close(sv[1]);
    return 0;
}

static void test_transport(void)
{
    CHECK_EQ(weft_run(transport_main, NULL), 0);
}

static void test_setup(void)
{
    make_file();
}

TEST_MAIN(test_setup, test_order, test_deadline_cancel, test_transport)
