/*
 * weft-pg over TLS: libpq's sslmode=require to a server of the test's own with ssl=on (pgtest.h,
 * pgt_setup_tls: a self-signed certificate, the one TCP listener on 127.0.0.1). The waits see
 * the socket, not what OpenSSL has decrypted and holds, so these cases read answers whose TLS
 * records are larger and smaller than libpq's buffer (single values of 9 KB to 2 MB, many small
 * rows, binary bytea), stream COPY both ways, cancel a statement, and share a pool; every call
 * has a deadline, so a read left waiting for bytes that OpenSSL already holds fails the test
 * instead of hanging it.
 */
#include "pgtest.h"

#define S 1000000000LL

static weft_pg_t *must_connect_tls(void)
{
    weft_pg_t *c = pgt_connect(pgt_conninfo_tls(), 20);
    CHECK_EQ(PQsslInUse((PGconn *)weft_pg_libpq(c)), 1);
    return c;
}

/* ---- answers of every size ---- */

static int answers_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect_tls();
    static const int sizes[] = {9000, 16000, 16384, 20000, 65536, 100000, 1000000, 2000000};
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            weft_pg_param_t p[1] = {weft_pg_int4(sizes[k])};
            weft_pg_result_t *r = NULL;
            CHECK_EQ(
                weft_pg_query_dl(c, "SELECT repeat('x', $1::int4)", p, 1, &r, weft_deadline_in(10)),
                1);
            const char *s;
            size_t n;
            CHECK_EQ(weft_pg_get_text(r, 0, 0, &s, &n), 0);
            CHECK_EQ(n, (size_t)sizes[k]);
            CHECK(s[0] == 'x' && s[n - 1] == 'x');
            weft_pg_result_free(r);
            /* The same bytes as binary bytea. */
            CHECK_EQ(weft_pg_query_ex(c, "SELECT decode(repeat('ab', $1::int4 / 2), 'hex')", p, 1,
                                      WEFT_PG_BINARY, &r, weft_deadline_in(10)),
                     1);
            const void *b;
            CHECK_EQ(weft_pg_get_bytea(r, 0, 0, &b, &n), 0);
            CHECK_EQ(n, (size_t)(sizes[k] / 2));
            CHECK(((const unsigned char *)b)[n - 1] == 0xab);
            weft_pg_result_free(r);
        }
        /* Many rows of varied widths: answers cut at every place. */
        weft_pg_result_t *r = NULL;
        CHECK_EQ(weft_pg_query_ex(c,
                                  "SELECT i, repeat('y', (i * 37) % 3000) FROM "
                                  "generate_series(1, 3000) AS i",
                                  NULL, 0, WEFT_PG_BINARY, &r, weft_deadline_in(10)),
                 3000);
        for (int row = 0; row < 3000; row++) {
            int64_t i;
            const char *s;
            size_t n;
            CHECK_EQ(weft_pg_get_int(r, row, 0, &i), 0);
            CHECK_EQ(i, row + 1);
            CHECK_EQ(weft_pg_get_text(r, row, 1, &s, &n), 0);
            CHECK_EQ(n, (size_t)(((row + 1) * 37) % 3000));
        }
        weft_pg_result_free(r);
    }
    weft_pg_close(c);
    return 0;
}

static void test_tls_answers(void)
{
    pgt_setup_tls();
    CHECK_EQ(weft_run(answers_main, NULL), 0);
}

/* ---- COPY both ways, a cancelled statement ---- */

static int copy_cancel_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect_tls();
    CHECK_EQ(weft_pg_exec(c, "CREATE TEMP TABLE t (id int, v text)"), 0);
    /* In: 4,000 rows of ~1 KB in 16 KiB pieces. */
    CHECK_EQ(weft_pg_copy_in_begin(c, "COPY t FROM STDIN", weft_deadline_in(10)), 0);
    static char buf[16384];
    char v[1001];
    memset(v, 'v', 1000);
    v[1000] = '\0';
    size_t len = 0;
    for (int i = 0; i < 4000; i++) {
        int n = snprintf(buf + len, sizeof(buf) - len, "%d\t%s\n", i, v);
        if ((size_t)n >= sizeof(buf) - len) {
            CHECK_EQ(weft_pg_copy_in_write(c, buf, len, weft_deadline_in(10)), 0);
            len = 0;
            i--;
            continue;
        }
        len += (size_t)n;
    }
    CHECK_EQ(weft_pg_copy_in_write(c, buf, len, weft_deadline_in(10)), 0);
    CHECK_EQ(weft_pg_copy_in_end(c, NULL, weft_deadline_in(10)), 4000);
    /* Out: every row back. */
    CHECK_EQ(weft_pg_copy_out_begin(c, "COPY t TO STDOUT", weft_deadline_in(10)), 0);
    long rows = 0;
    const char *d;
    ssize_t n;
    while ((n = weft_pg_copy_out_read(c, &d, weft_deadline_in(10))) > 0) {
        CHECK_EQ(n, (ssize_t)(strlen("\t\n") + 1000 + (size_t)snprintf(NULL, 0, "%ld", rows)));
        rows++;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(rows, 4000);

    /* pg_sleep(10) cut off by a deadline: the cancel request goes out, the connection stays. */
    int pid = weft_pg_backend_pid(c);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_pg_exec_dl(c, "SELECT pg_sleep(10)", weft_deadline_in(0.1)), -ETIMEDOUT);
    CHECK(weft_time(NULL) - t0 < 2 * S);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_backend_pid(c), pid);
    CHECK_EQ(weft_pg_query(c, "SELECT count(*) FROM t", NULL, 0, NULL), 1);
    weft_pg_close(c);
    return 0;
}

static void test_tls_copy_cancel(void)
{
    pgt_setup_tls();
    CHECK_EQ(weft_run(copy_cancel_main, NULL), 0);
}

/* ---- a pool ---- */

static weft_pg_pool_t *pool;

static int pooled(void *arg)
{
    int i = (int)(intptr_t)arg;
    weft_pg_t *c;
    CHECK_EQ(weft_pg_pool_acquire(pool, &c, weft_deadline_in(20)), 0);
    weft_pg_param_t p[1] = {weft_pg_int4(i)};
    weft_pg_result_t *r = NULL;
    int e = weft_pg_query_dl(c, "SELECT $1::int4 * 2, repeat('z', $1::int4 * 10)", p, 1, &r,
                             weft_deadline_in(20));
    weft_pg_pool_release(pool, c);
    CHECK_EQ(e, 1);
    int64_t v;
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &v), 0);
    CHECK_EQ(v, 2 * i);
    weft_pg_result_free(r);
    return 0;
}

static int pool_main(void *arg)
{
    (void)arg;
    struct weft_pg_pool_opts o = {.conninfo = pgt_conninfo_tls(), .min_size = 2, .max_size = 5};
    CHECK_EQ(weft_pg_pool_new(&pool, &o), 0);
    enum { N = 200 };
    static weft_task_t *t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(weft_spawn(&t[i], pooled, (void *)(intptr_t)i), 0);
    CHECK_EQ(weft_gather(t, N, NULL, 0), 0);
    for (int i = 0; i < N; i++)
        weft_task_release(t[i]);
    struct weft_pg_pool_stats st;
    weft_pg_pool_stats(pool, &st);
    CHECK_EQ(st.in_use, 0);
    CHECK(st.open <= 5);
    CHECK_EQ(weft_pg_pool_close(pool, weft_deadline_in(10)), 0);
    return 0;
}

static void test_tls_pool(void)
{
    pgt_setup_tls();
    CHECK_EQ(weft_run(pool_main, NULL), 0);
}

TEST_MAIN(test_tls_answers, test_tls_copy_cancel, test_tls_pool)
