/*
 * The stream reader's buffer logic on fed streams (no fd), ported from CPython's
 * test_streams.py: checklist items 50-55 (limits, IncompleteRead, read to EOF, errors waking a
 * waiter, multi-separator readuntil) plus the O(n) rescanning of a trickling readuntil.
 */
#include "nettest.h"

#include <time.h>

static const char DATA[] = "line1\nline2\nline3\n"; /* CPython's StreamTests.DATA, 18 bytes */

static weft_stream_t *fed(size_t limit)
{
    weft_stream_t *s;
    struct weft_stream_opts o = {.limit = limit};
    CHECK_EQ(weft_stream_new(&s, -1, &o), 0);
    return s;
}

static void feed(weft_stream_t *s, const char *str)
{
    CHECK_EQ(weft_stream_feed(s, str, strlen(str)), 0);
}

/* The reader's buffer equals `want`. */
static void check_buffer(weft_stream_t *s, const char *want)
{
    const char *b;
    size_t n = weft_stream_buffered(s, &b);
    CHECK_EQ(n, strlen(want));
    CHECK(memcmp(b, want, n) == 0);
}

static void check_chunk(const char *data, size_t len, const char *want)
{
    CHECK_EQ(len, strlen(want));
    CHECK(memcmp(data, want, len) == 0);
}

/* ---- a task feeding a stream after the reader started waiting (loop.call_soon(cb)) ---- */

struct feeder {
    weft_stream_t *s;
    const char *chunks[4];
    bool eof;
    int err;
};

static int feeder_main(void *arg)
{
    struct feeder *f = arg;
    for (int i = 0; i < 4 && f->chunks[i] != NULL; i++)
        feed(f->s, f->chunks[i]);
    if (f->eof)
        weft_stream_feed_eof(f->s);
    if (f->err != 0)
        CHECK_EQ(weft_stream_set_error(f->s, f->err), 0);
    return 0;
}

static weft_task_t *start_feeder(struct feeder *f)
{
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, feeder_main, f), 0);
    return t;
}

static void finish(weft_task_t *t)
{
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
}

/* ---- 50: test_readline_limit / test_readline_limit_with_existing_data ---- */

static int readline_limit_main(void *arg)
{
    (void)arg;
    const char *d;
    size_t n;
    weft_stream_t *s = fed(7);
    struct feeder f = {s, {"chunk1", "chunk2", "chunk3\n"}, true, 0};
    weft_task_t *t = start_feeder(&f);
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, ""); /* the one line was dropped */
    finish(t);
    weft_stream_release(s);

    s = fed(7);
    struct feeder f2 = {s, {"chunk1", "chunk2\n", "chunk3\n"}, true, 0};
    t = start_feeder(&f2);
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, "chunk3\n");
    finish(t);
    weft_stream_release(s);

    /* Strictness: a line of exactly `limit` bytes plus its newline is fine. */
    s = fed(7);
    feed(s, "1234567\n");
    CHECK_EQ(weft_stream_readline(s, &d, &n), 0);
    check_chunk(d, n, "1234567\n");
    check_buffer(s, "");
    feed(s, "12345678\n");
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, "");
    feed(s, "12345678");
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, "");
    weft_stream_release(s);

    /* With the data already there. */
    s = fed(3);
    feed(s, "li");
    feed(s, "ne1\nline2\n");
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, "line2\n");
    weft_stream_release(s);
    s = fed(3);
    feed(s, "li");
    feed(s, "ne1");
    feed(s, "li");
    CHECK_EQ(weft_stream_readline(s, &d, &n), WEFT_ELIMIT);
    check_buffer(s, "");
    weft_stream_release(s);
    return 0;
}

static void test_readline_limit(void)
{
    CHECK_EQ(run_virtual(readline_limit_main, NULL), 0);
}

static int readline_basic_main(void *arg)
{
    (void)arg;
    const char *d;
    size_t n;
    weft_stream_t *s = fed(0);
    struct feeder f = {s, {"chunk1 ", "chunk2 ", "chunk3 \n"}, false, 0};
    weft_task_t *t = start_feeder(&f);
    CHECK_EQ(weft_stream_readline(s, &d, &n), 0);
    check_chunk(d, n, "chunk1 chunk2 chunk3 \n");
    finish(t);
    /* At EOF: the partial line, then nothing. */
    feed(s, "tail");
    weft_stream_feed_eof(s);
    CHECK_EQ(weft_stream_readline(s, &d, &n), 0);
    check_chunk(d, n, "tail");
    CHECK_EQ(weft_stream_readline(s, &d, &n), 0);
    CHECK_EQ(n, 0);
    CHECK(weft_stream_at_eof(s));
    weft_stream_release(s);
    return 0;
}

static void test_readline(void)
{
    CHECK_EQ(run_virtual(readline_basic_main, NULL), 0);
}

/* ---- 51: test_readuntil_limit_found_sep / test_readuntil_eof ---- */

static int readuntil_limit_main(void *arg)
{
    (void)arg;
    const char *d;
    size_t n;
    weft_stream_t *s = fed(3);
    feed(s, "some dataAA");
    CHECK_EQ(weft_stream_readuntil(s, "AAA", 3, &d, &n), WEFT_ELIMIT);
    CHECK_EQ(n, 9); /* "not found": scanned up to here */
    CHECK(memcmp(d + n, "AAA", 2) == 0 && n + 3 > weft_stream_buffered(s, NULL));
    check_buffer(s, "some dataAA"); /* the data stays */
    feed(s, "A");
    CHECK_EQ(weft_stream_readuntil(s, "AAA", 3, &d, &n), WEFT_ELIMIT);
    CHECK_EQ(n, 9); /* "is found", at 9 */
    CHECK(memcmp(d + n, "AAA", 3) == 0);
    check_buffer(s, "some dataAAA");
    weft_stream_release(s);

    s = fed(0);
    feed(s, "some dataAA");
    weft_stream_feed_eof(s);
    CHECK_EQ(weft_stream_readuntil(s, "AAA", 3, &d, &n), WEFT_EOF);
    check_chunk(d, n, "some dataAA"); /* IncompleteReadError.partial, expected None */
    check_buffer(s, "");
    weft_stream_release(s);

    s = fed(0);
    CHECK_EQ(weft_stream_readuntil(s, "", 0, &d, &n), -EINVAL);
    CHECK_EQ(weft_stream_readuntil_any(s, NULL, 0, &d, &n), -EINVAL);
    weft_stream_release(s);
    return 0;
}

static void test_readuntil_limit(void)
{
    CHECK_EQ(run_virtual(readuntil_limit_main, NULL), 0);
}

/* ---- 52: test_readexactly_eof (and test_readexactly) ---- */

static int readexactly_main(void *arg)
{
    (void)arg;
    char buf[64];
    size_t got = 99;
    weft_stream_t *s = fed(0);
    struct feeder f = {s, {DATA, DATA, DATA}, false, 0};
    weft_task_t *t = start_feeder(&f);
    CHECK_EQ(weft_stream_readexactly(s, buf, 36, &got), 0);
    CHECK_EQ(got, 36);
    CHECK(memcmp(buf, DATA, 18) == 0 && memcmp(buf + 18, DATA, 18) == 0);
    check_buffer(s, DATA);
    finish(t);
    CHECK_EQ(weft_stream_readexactly(s, buf, 0, &got), 0);
    CHECK_EQ(got, 0);
    check_buffer(s, DATA);
    weft_stream_release(s);

    s = fed(0);
    struct feeder f2 = {s, {DATA}, true, 0};
    t = start_feeder(&f2);
    CHECK_EQ(weft_stream_readexactly(s, buf, 36, &got), WEFT_EOF);
    CHECK_EQ(got, 18); /* "18 bytes read on a total of 36 expected bytes" */
    CHECK(memcmp(buf, DATA, 18) == 0);
    check_buffer(s, "");
    finish(t);
    weft_stream_release(s);

    /* test_readexactly_exception */
    s = fed(0);
    feed(s, "line\n");
    CHECK_EQ(weft_stream_readexactly(s, buf, 2, &got), 0);
    CHECK(memcmp(buf, "li", 2) == 0);
    CHECK_EQ(weft_stream_set_error(s, -EIO), 0);
    CHECK_EQ(weft_stream_readexactly(s, buf, 2, &got), -EIO);
    CHECK_EQ(weft_stream_error(s), -EIO);
    weft_stream_release(s);
    return 0;
}

static void test_readexactly(void)
{
    CHECK_EQ(run_virtual(readexactly_main, NULL), 0);
}

/* ---- 53: test_read_limit / test_readexactly_limit / test_read_until_eof ---- */

static int read_limit_main(void *arg)
{
    (void)arg;
    char buf[16];
    const char *d;
    size_t n;
    weft_stream_t *s = fed(3);
    feed(s, "chunk");
    CHECK_EQ(weft_stream_read(s, buf, 5), 5);
    CHECK(memcmp(buf, "chunk", 5) == 0);
    check_buffer(s, "");
    feed(s, "chunk");
    CHECK_EQ(weft_stream_readexactly(s, buf, 5, NULL), 0);
    CHECK(memcmp(buf, "chunk", 5) == 0);
    check_buffer(s, "");
    weft_stream_release(s);

    s = fed(0);
    struct feeder f = {s, {"chunk1\n", "chunk2"}, true, 0};
    weft_task_t *t = start_feeder(&f);
    CHECK_EQ(weft_stream_read_all(s, &d, &n), 0);
    check_chunk(d, n, "chunk1\nchunk2");
    check_buffer(s, "");
    finish(t);
    CHECK_EQ(weft_stream_read(s, buf, sizeof(buf)), 0); /* EOF */
    CHECK_EQ(weft_stream_read(s, buf, 0), 0);
    weft_stream_release(s);

    /* read(n) returns what is there, at least one byte. */
    s = fed(0);
    struct feeder f2 = {s, {DATA}, false, 0};
    t = start_feeder(&f2);
    CHECK_EQ(weft_stream_read(s, buf, 5), 5);
    CHECK(memcmp(buf, "line1", 5) == 0);
    finish(t);
    CHECK_EQ(weft_stream_read(s, buf, sizeof(buf)), 13);
    weft_stream_release(s);
    return 0;
}

static void test_read_limit(void)
{
    CHECK_EQ(run_virtual(read_limit_main, NULL), 0);
}

/* ---- 54: test_exception_waiter / test_exception_cancel; one waiter at a time ---- */

static int readline_task(void *arg)
{
    const char *d;
    size_t n;
    return weft_stream_readline(arg, &d, &n);
}

static int exception_main(void *arg)
{
    (void)arg;
    weft_stream_t *s = fed(0);
    CHECK_EQ(weft_stream_error(s), 0);
    weft_task_t *t1;
    CHECK_EQ(weft_spawn(&t1, readline_task, s), 0);
    struct feeder f = {s, {NULL}, false, -EPROTO};
    weft_task_t *t2 = start_feeder(&f);
    CHECK_EQ(weft_join(t1), -EPROTO);
    weft_task_release(t1);
    finish(t2);
    CHECK_EQ(weft_stream_set_error(s, 0), -EINVAL);
    weft_stream_release(s);

    /* A cancelled reader leaves no stale waiter behind. */
    s = fed(0);
    CHECK_EQ(weft_spawn(&t1, readline_task, s), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(t1, NULL));
    CHECK_EQ(weft_join(t1), -ECANCELED);
    weft_task_release(t1);
    CHECK_EQ(weft_stream_set_error(s, -EIO), 0);
    CHECK_EQ(weft_yield(), 0);
    weft_stream_release(s);

    /* A second task waiting for data at the same time is refused (asyncio's RuntimeError). */
    s = fed(0);
    CHECK_EQ(weft_spawn(&t1, readline_task, s), 0);
    CHECK_EQ(weft_yield(), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_readline(s, &d, &n), -EBUSY);
    feed(s, "x\n");
    CHECK_EQ(weft_join(t1), 0);
    weft_task_release(t1);
    weft_stream_release(s);
    return 0;
}

static void test_exception_waiter(void)
{
    CHECK_EQ(run_virtual(exception_main, NULL), 0);
}

/* ---- 55: test_readuntil_multi_separator (+ _limit, _negative_offset) ---- */

static int multi_sep_main(void *arg)
{
    (void)arg;
    const char *d;
    size_t n;
    weft_stream_t *s = fed(0);
    struct weft_sep crlf[] = {{"\r", 1}, {"\n", 1}};
    feed(s, "line 1\nline 2\r");
    CHECK_EQ(weft_stream_readuntil_any(s, crlf, 2, &d, &n), 0);
    check_chunk(d, n, "line 1\n");
    CHECK_EQ(weft_stream_readuntil_any(s, crlf, 2, &d, &n), 0);
    check_chunk(d, n, "line 2\r");
    check_buffer(s, "");
    /* The first END position wins, even for a longer separator. */
    struct weft_sep two[] = {{"DEF", 3}, {"BCDE", 4}};
    feed(s, "ABCDEFG");
    CHECK_EQ(weft_stream_readuntil_any(s, two, 2, &d, &n), 0);
    check_chunk(d, n, "ABCDE");
    check_buffer(s, "FG");
    weft_stream_release(s);

    /* On equal ends the shortest separator counts for the limit. */
    s = fed(3);
    feed(s, "some dataA");
    struct weft_sep lim[] = {{"A", 1}, {"ome dataA", 9}};
    CHECK_EQ(weft_stream_readuntil_any(s, lim, 2, &d, &n), WEFT_ELIMIT);
    CHECK_EQ(n, 9);
    check_buffer(s, "some dataA");
    weft_stream_release(s);

    /* The scan offset never goes negative with a long separator. */
    s = fed(0);
    feed(s, "data");
    struct feeder f = {s, {"Z", "Aaaa"}, false, 0};
    weft_task_t *t = start_feeder(&f);
    struct weft_sep neg[] = {{"A", 1}, {"long sep", 8}};
    CHECK_EQ(weft_stream_readuntil_any(s, neg, 2, &d, &n), 0);
    check_chunk(d, n, "dataZA");
    check_buffer(s, "aaa");
    finish(t);
    weft_stream_release(s);
    return 0;
}

static void test_readuntil_multi_separator(void)
{
    CHECK_EQ(run_virtual(multi_sep_main, NULL), 0);
}

/* Separators of every compare path (1-3 bytes, 4-8, longer), each after near misses that share
 * its first byte, its first four bytes or all but its last. */
static int sep_lengths_main(void *arg)
{
    (void)arg;
    static const char *const seps[] = {"|", "<>", "\r\n", "\r\n\r\n", "ABCDE", "ABCDEFGH",
                                       "ABCDEFGHI", "ABCDEFGHIJKLMNOP"};
    for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++) {
        const char *sep = seps[i];
        size_t len = strlen(sep);
        char msg[256]; /* up to 1 + 2 + ... + 15 + 15 + 16 + 4 bytes */
        size_t m = 0;
        for (size_t cut = 1; cut < len; cut++) { /* the first `cut` bytes, then a different one */
            memcpy(msg + m, sep, cut);
            m += cut;
            msg[m++] = '#';
        }
        memcpy(msg + m, sep, len);
        m += len;
        memcpy(msg + m, "tail", 4);
        weft_stream_t *s = fed(0);
        CHECK_EQ(weft_stream_feed(s, msg, m + 4), 0);
        const char *d;
        size_t n;
        CHECK_EQ(weft_stream_readuntil(s, sep, len, &d, &n), 0);
        CHECK_EQ(n, m);

        CHECK(memcmp(d, msg, m) == 0);
        check_buffer(s, "tail");
        weft_stream_release(s);
    }
    return 0;
}

static void test_readuntil_separator_lengths(void)
{
    CHECK_EQ(run_virtual(sep_lengths_main, NULL), 0);
}

/* ---- a peer trickling one byte at a time: readuntil stays linear ---- */

#define TRICKLE 400000

static int trickle_feeder(void *arg)
{
    weft_stream_t *s = arg;
    for (int i = 0; i < TRICKLE; i++) {
        CHECK_EQ(weft_stream_feed(s, i == TRICKLE - 1 ? "\n" : "x", 1), 0);
        CHECK_EQ(weft_yield(), 0);
    }
    return 0;
}

static int trickle_main(void *arg)
{
    (void)arg;
    weft_stream_t *s = fed(1 << 20);
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, trickle_feeder, s), 0);
    const char *d;
    size_t n;
    /* "\r\n" is never there. Rescanning the buffer on every byte would compare ~8e10 bytes
     * (many seconds); resuming where the scan stopped takes well under one. */
    clock_t c0 = clock();
    struct weft_sep seps[] = {{"\r\n", 2}, {"\n", 1}};
    CHECK_EQ(weft_stream_readuntil_any(s, seps, 2, &d, &n), 0);
    CHECK_EQ(n, TRICKLE);
    CHECK_EQ(d[n - 1], '\n');
    CHECK((double)(clock() - c0) / CLOCKS_PER_SEC < 3.0);
    finish(t);
    weft_stream_release(s);
    return 0;
}

static void test_readuntil_trickle_linear(void)
{
    CHECK_EQ(run_virtual(trickle_main, NULL), 0);
}

/* ---- deadlines and cancellation lose nothing ---- */

static int deadline_main(void *arg)
{
    (void)arg;
    char buf[8];
    const char *d;
    size_t n, got;
    weft_stream_t *s = fed(0);
    feed(s, "abc");
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_stream_readexactly_dl(s, buf, 5, &got, t0 + 1000000000), -ETIMEDOUT);
    CHECK_EQ(got, 0);
    CHECK_EQ(weft_time(NULL) - t0, 1000000000);
    check_buffer(s, "abc");
    CHECK_EQ(weft_stream_readline_dl(s, &d, &n, weft_deadline_in(1)), -ETIMEDOUT);
    check_buffer(s, "abc");
    CHECK_EQ(weft_stream_read_all_dl(s, &d, &n, weft_deadline_in(1)), -ETIMEDOUT);
    check_buffer(s, "abc");
    feed(s, "de\n");
    CHECK_EQ(weft_stream_readline_dl(s, &d, &n, weft_deadline_in(1)), 0);
    check_chunk(d, n, "abcde\n");
    weft_stream_release(s);
    return 0;
}

static void test_deadlines_keep_data(void)
{
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
}

static void test_outside_loop(void)
{
    weft_stream_t *s;
    CHECK_EQ(weft_stream_new(&s, -1, NULL), -EPERM);
    CHECK_EQ(weft_stream_new(NULL, -1, NULL), -EINVAL);
}

static int writer_no_fd_main(void *arg)
{
    (void)arg;
    weft_stream_t *s = fed(0);
    CHECK_EQ(weft_stream_write(s, "x", 1), -ENOTCONN);
    CHECK_EQ(weft_stream_drain(s), 0);
    CHECK_EQ(weft_stream_set_write_limits(s, 10, 20), -EINVAL);
    CHECK_EQ(weft_stream_set_write_limits(s, -1, 100), 0);
    CHECK_EQ(weft_stream_fd(s), -1);
    weft_stream_close(s);
    CHECK(weft_stream_is_closing(s));
    CHECK_EQ(weft_stream_wait_closed(s), 0);
    CHECK_EQ(weft_stream_write(s, "x", 1), -EPIPE);
    weft_stream_release(s);
    return 0;
}

static void test_writer_without_fd(void)
{
    CHECK_EQ(run_virtual(writer_no_fd_main, NULL), 0);
}

TEST_MAIN(test_readline_limit, test_readline, test_readuntil_limit, test_readexactly,
          test_read_limit, test_exception_waiter, test_readuntil_multi_separator,
          test_readuntil_separator_lengths,
          test_readuntil_trickle_linear, test_deadlines_keep_data, test_outside_loop,
          test_writer_without_fd)
