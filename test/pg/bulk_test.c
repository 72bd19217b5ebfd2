/*
 * Bulk transfers against a real server (pgtest.h): a 100 MB COPY both ways with bounded memory,
 * a COPY cut off in the middle, 10,000 inserts in pipeline mode (one failing batch rolled back as
 * a whole), and rows streamed one at a time (weft_pg_query_rows: 200,000 rows in bounded memory,
 * stopped early, an error in the middle, a deadline in the middle, a command, a COPY).
 * WEFT_SKIP_SLOW=1 (valgrind) scales them down to 4 MB, 1,000 inserts and 20,000 rows.
 */
#include "pgtest.h"

static weft_pg_t *must_connect(void)
{
    return pgt_connect(pgt_conninfo(), 10);
}

/* ---- COPY ---- */

#define ROW_PAYLOAD 1000

static size_t copy_bytes(void)
{
    return pgt_slow_env() ? (4u << 20) : (100u << 20);
}

static int copy_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect();
    CHECK_EQ(weft_pg_exec(c, "CREATE UNLOGGED TABLE bulk (id int, payload text)"), 0);
    long rss0 = pgt_maxrss_kb();

    /* In: rows of ~1 KB, sent in 64 KiB pieces. */
    CHECK_EQ(weft_pg_copy_in_begin(c, "COPY bulk FROM STDIN", WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM bulk", NULL, 0, NULL), 0); /* ends the COPY */
    CHECK_EQ(weft_pg_copy_in_begin(c, "COPY bulk FROM STDIN", WEFT_NO_DEADLINE), 0);
    static char buf[65536];
    size_t want = copy_bytes(), sent = 0, len = 0;
    long rows = 0;
    char payload[ROW_PAYLOAD + 1];
    memset(payload, 'x', ROW_PAYLOAD);
    payload[ROW_PAYLOAD] = '\0';
    while (sent < want) {
        int n = snprintf(buf + len, sizeof(buf) - len, "%ld\t%s\n", rows, payload);
        if ((size_t)n >= sizeof(buf) - len) {
            CHECK_EQ(weft_pg_copy_in_write(c, buf, len, WEFT_NO_DEADLINE), 0);
            sent += len;
            len = 0;
            continue;
        }
        len += (size_t)n;
        rows++;
    }
    CHECK_EQ(weft_pg_copy_in_write(c, buf, len, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_copy_in_end(c, NULL, WEFT_NO_DEADLINE), rows);
    CHECK_EQ(weft_pg_copy_in_write(c, "x", 1, WEFT_NO_DEADLINE), WEFT_PG_ESTATE);

    /* Out: every row back. */
    CHECK_EQ(weft_pg_copy_out_begin(c, "COPY bulk TO STDOUT", WEFT_NO_DEADLINE), 0);
    long got = 0;
    size_t bytes = 0;
    const char *d;
    ssize_t n;
    while ((n = weft_pg_copy_out_read(c, &d, WEFT_NO_DEADLINE)) > 0) {
        CHECK(d[n - 1] == '\n');
        got++;
        bytes += (size_t)n;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(got, rows);
    CHECK(bytes >= want);
    long grown = pgt_maxrss_kb() - rss0;
    fprintf(stderr, "COPY %zu MB in and out, %ld rows; peak RSS grew by %ld KiB\n", bytes >> 20,
            rows, grown);
#ifndef __SANITIZE_ADDRESS__ /* ASan keeps freed memory in quarantine: RSS says nothing there */
    CHECK(grown < 32 * 1024);
#endif

    /* Bad data: the server's error, the connection usable after. */
    CHECK_EQ(weft_pg_copy_in_begin(c, "COPY bulk FROM STDIN", WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_copy_in_write(c, "notanumber\tx\n", 13, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_copy_in_end(c, NULL, WEFT_NO_DEADLINE), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "22P02");
    /* Aborted by the client. */
    CHECK_EQ(weft_pg_copy_in_begin(c, "COPY bulk FROM STDIN", WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_copy_in_write(c, "1\tx\n", 4, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_copy_in_end(c, "changed my mind", WEFT_NO_DEADLINE), WEFT_PG_ESERVER);
    CHECK(strstr(weft_pg_errmsg(c), "changed my mind") != NULL);
    /* Not a COPY of that direction. */
    CHECK_EQ(weft_pg_copy_out_begin(c, "COPY bulk FROM STDIN", WEFT_NO_DEADLINE), WEFT_PG_ESTATE);
    CHECK_EQ(weft_pg_copy_in_begin(c, "SELECT 1", WEFT_NO_DEADLINE), WEFT_PG_ESTATE);

    /* A COPY TO cut off by a deadline: cancelled on the server, connection usable. */
    CHECK_EQ(weft_pg_copy_out_begin(c, "COPY (SELECT g, pg_sleep(0.001) FROM "
                                       "generate_series(1, 100000) g) TO STDOUT",
                                    WEFT_NO_DEADLINE),
             0);
    int64_t dl = weft_deadline_in(0.1);
    while ((n = weft_pg_copy_out_read(c, &d, dl)) > 0)
        ;
    CHECK_EQ(n, -ETIMEDOUT);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_query(c, "SELECT count(*) FROM bulk", NULL, 0, NULL), 1);
    /* Stopping a COPY TO early and running a query ends it. */
    CHECK_EQ(weft_pg_copy_out_begin(c, "COPY bulk TO STDOUT", WEFT_NO_DEADLINE), 0);
    CHECK(weft_pg_copy_out_read(c, &d, WEFT_NO_DEADLINE) > 0);
    weft_pg_result_t *r;
    CHECK_EQ(weft_pg_query(c, "SELECT count(*) FROM bulk", NULL, 0, &r), 1);
    int64_t count;
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &count), 0);
    CHECK_EQ(count, rows);
    weft_pg_result_free(r);
    CHECK_EQ(weft_pg_exec(c, "DROP TABLE bulk"), 0);
    weft_pg_close(c);
    return 0;
}

static void test_copy(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(copy_main, NULL), 0);
}

/* ---- pipeline ---- */

struct batch {
    size_t fail_at; /* (size_t)-1: none */
    size_t results;
};

static int queue_insert(weft_pg_t *c, size_t i, void *arg)
{
    struct batch *b = arg;
    if (i == b->fail_at)
        return weft_pg_pipeline_queue(c, "INSERT INTO pipe VALUES (1/0)", NULL, 0);
    weft_pg_param_t p[2] = {weft_pg_int4((int32_t)i), weft_pg_text("row")};
    return weft_pg_pipeline_queue_prepared(c, "ins", p, 2);
}

static int on_result(weft_pg_t *c, size_t i, weft_pg_result_t *r, void *arg)
{
    (void)c;
    struct batch *b = arg;
    CHECK_EQ(i, b->results);
    CHECK_STR(weft_pg_cmd_tag(r), "INSERT 0 1");
    b->results++;
    return 0;
}

static int queue_sleep(weft_pg_t *c, size_t i, void *arg)
{
    (void)i;
    (void)arg;
    return weft_pg_pipeline_queue(c, "SELECT pg_sleep(0.2)", NULL, 0);
}

static int pipeline_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect();
    size_t n = pgt_slow_env() ? 1000 : 10000;
    CHECK_EQ(weft_pg_exec(c, "CREATE TABLE pipe (id int, v text)"), 0);
    CHECK_EQ(weft_pg_prepare(c, "ins", "INSERT INTO pipe VALUES ($1, $2)", 2, NULL), 0);
    CHECK_EQ(weft_pg_pipeline_queue(c, "SELECT 1", NULL, 0), WEFT_PG_ESTATE);

    struct batch b = {.fail_at = (size_t)-1};
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_pg_pipeline(c, n, queue_insert, on_result, &b, WEFT_NO_DEADLINE), 0);
    int64_t t1 = weft_time(NULL);
    CHECK_EQ(b.results, n);
    weft_pg_result_t *r;
    int64_t count;
    CHECK_EQ(weft_pg_query(c, "SELECT count(*), count(DISTINCT id) FROM pipe", NULL, 0, &r), 1);
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &count), 0);
    CHECK_EQ(count, (int64_t)n);
    CHECK_EQ(weft_pg_get_int(r, 0, 1, &count), 0);
    CHECK_EQ(count, (int64_t)n);
    weft_pg_result_free(r);

    /* A tenth of them one by one, for the record (bench/pg measures it properly). */
    int64_t t2 = weft_time(NULL);
    for (size_t i = 0; i < n / 10; i++) {
        weft_pg_param_t p[2] = {weft_pg_int4((int32_t)i), weft_pg_text("row")};
        CHECK_EQ(weft_pg_query_prepared(c, "ins", p, 2, NULL), 1);
    }
    int64_t t3 = weft_time(NULL);
    fprintf(stderr, "%zu inserts: pipeline %.3f s; %zu one by one %.3f s\n", n, (t1 - t0) / 1e9,
            n / 10, (t3 - t2) / 1e9);

    /* One failing statement: the whole batch is rolled back, the error is the statement's. */
    b = (struct batch){.fail_at = n / 2};
    CHECK_EQ(weft_pg_pipeline(c, n, queue_insert, on_result, &b, WEFT_NO_DEADLINE),
             WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "22012");
    CHECK_EQ(b.results, n / 2);
    CHECK_EQ(weft_pg_query(c, "SELECT count(*) FROM pipe", NULL, 0, &r), 1);
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &count), 0);
    CHECK_EQ(count, (int64_t)(n + n / 10));
    weft_pg_result_free(r);

    /* A pipeline cut off by a deadline: cancelled, out of pipeline mode, usable. */
    int64_t t4 = weft_time(NULL);
    CHECK_EQ(weft_pg_pipeline(c, 50, queue_sleep, NULL, NULL, weft_deadline_in(0.1)),
             -ETIMEDOUT);
    CHECK(weft_time(NULL) - t4 < 500 * 1000000LL);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_exec(c, "DROP TABLE pipe"), 0);
    weft_pg_close(c);
    return 0;
}

static void test_pipeline(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(pipeline_main, NULL), 0);
}

/* ---- rows one at a time ---- */

struct rows_seen {
    int n;         /* rows received */
    int stop_at;   /* return -1234 at this row (0: never) */
    double nap;    /* seconds to sleep per row */
    bool in_order; /* row i held i + 1 */
    long rss_max;  /* the largest resident size seen every 10,000 rows, KiB */
};

static int take_row(weft_pg_result_t *row, void *arg)
{
    struct rows_seen *s = arg;
    int64_t v;
    if (weft_pg_nrows(row) != 1 || weft_pg_get_int(row, 0, 0, &v) != 0 || v != s->n + 1)
        s->in_order = false;
    s->n++;
    if (s->n % 10000 == 0) {
        long r = test_rss_bytes() / 1024;
        if (r > s->rss_max)
            s->rss_max = r;
    }
    if (s->stop_at > 0 && s->n == s->stop_at)
        return -1234;
    if (s->nap > 0) {
        int e = weft_sleep(s->nap);
        if (e < 0)
            return e;
    }
    return 0;
}

static int rows_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect();
    int want = pgt_slow_env() ? 20000 : 200000;
    weft_pg_param_t p[1] = {weft_pg_int4(want)};
    /* Every row, in order, with memory bounded by a row, not by the answer (~40 MB whole). */
    long rss0 = test_rss_bytes() / 1024;
    struct rows_seen s = {.in_order = true, .rss_max = rss0};
    CHECK_EQ(weft_pg_query_rows(c, "SELECT i, repeat('r', 200) FROM generate_series(1, $1) i", p,
                                1, WEFT_PG_BINARY, take_row, &s, weft_deadline_in(60)),
             want);
    CHECK_EQ(s.n, want);
    CHECK(s.in_order);
    fprintf(stderr, "%d rows streamed; RSS grew by at most %ld KiB\n", want, s.rss_max - rss0);
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine, valgrind's own heap: RSS says nothing there */
    if (!pgt_slow_env())
        CHECK(s.rss_max - rss0 < 16 * 1024);
#endif
    /* Stopped by the function after 10 of ten million rows: its value, at once; usable after. */
    int pid = weft_pg_backend_pid(c);
    int64_t t0 = weft_time(NULL);
    s = (struct rows_seen){.stop_at = 10, .in_order = true};
    CHECK_EQ(weft_pg_query_rows(c, "SELECT i FROM generate_series(1, 10000000) i", NULL, 0, 0,
                                take_row, &s, weft_deadline_in(30)),
             -1234);
    CHECK_EQ(s.n, 10);
    CHECK(weft_time(NULL) - t0 < 5 * 1000000000LL);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_backend_pid(c), pid);
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    /* An error in the middle: the rows before it, then the server's error. */
    s = (struct rows_seen){.in_order = true};
    CHECK_EQ(weft_pg_query_rows(c, "SELECT i / (500 - i) + i - i / (500 - i) FROM "
                                   "generate_series(1, 1000) i",
                                NULL, 0, 0, take_row, &s, weft_deadline_in(30)),
             WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "22012");
    CHECK_EQ(s.n, 499);
    CHECK(s.in_order);
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    /* A deadline while the function sleeps: -ETIMEDOUT soon, the connection kept. */
    t0 = weft_time(NULL);
    s = (struct rows_seen){.nap = 0.01, .in_order = true};
    CHECK_EQ(weft_pg_query_rows(c, "SELECT i FROM generate_series(1, 100000) i", NULL, 0, 0,
                                take_row, &s, weft_deadline_in(0.2)),
             -ETIMEDOUT);
    CHECK(s.n >= 1 && s.n < 100);
    CHECK(weft_time(NULL) - t0 < 2 * 1000000000LL);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    /* A command: no rows, no calls. A COPY: refused, and the connection usable after. */
    s = (struct rows_seen){.in_order = true};
    CHECK_EQ(weft_pg_query_rows(c, "CREATE TEMP TABLE r (i int)", NULL, 0, 0, take_row, &s,
                                weft_deadline_in(30)),
             0);
    CHECK_EQ(s.n, 0);
    CHECK_EQ(weft_pg_query_rows(c, "COPY (SELECT 1) TO STDOUT", NULL, 0, 0, take_row, &s,
                                weft_deadline_in(30)),
             WEFT_PG_ESTATE);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_query_rows(c, "SELECT 1", NULL, 0, 0, NULL, NULL, WEFT_NO_DEADLINE),
             -EINVAL);
    weft_pg_close(c);
    return 0;
}

static void test_rows(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(rows_main, NULL), 0);
}

TEST_MAIN(test_copy, test_pipeline, test_rows)
