/*
 * weft-pg against a real PostgreSQL 15 server (pgtest.h starts one for this binary): connection
 * errors, server errors with their fields, every supported type and NULL round-tripped as text and
 * binary, prepared statements, transactions, a statement cut off by a timeout or a cancel (and
 * the connection usable after), LISTEN/NOTIFY, a connection closed under a waiting task.
 */
#include "pgtest.h"

#include <math.h>

static weft_pg_t *must_connect(const char *ci)
{
    weft_pg_t *c = pgt_connect(ci, 10);
    CHECK(weft_pg_ok(c));
    return c;
}

/* ---- connecting ---- */

static int connect_errors_main(void *arg)
{
    (void)arg;
    char ci[1200], err[512];
    struct weft_pg_connect_opts o = {.errbuf = err, .errlen = sizeof(err)};
    weft_pg_t *c = (weft_pg_t *)1;

    /* Wrong password: the server's message. */
    snprintf(ci, sizeof(ci), "host=%s user=weft password=wrong dbname=postgres", pgt_dir);
    CHECK_EQ(weft_pg_connect_opts(&c, ci, &o, weft_deadline_in(10)), WEFT_PG_ECONNECT);
    CHECK(c == NULL);
    CHECK(strstr(err, "password authentication failed for user \"weft\"") != NULL);

    /* Unknown database. */
    snprintf(ci, sizeof(ci), "host=%s user=postgres dbname=nosuchdb", pgt_dir);
    CHECK_EQ(weft_pg_connect_opts(&c, ci, &o, weft_deadline_in(10)), WEFT_PG_ECONNECT);
    CHECK(strstr(err, "database \"nosuchdb\" does not exist") != NULL);

    /* A malformed conninfo. */
    CHECK_EQ(weft_pg_connect_opts(&c, "host=x nosuchoption=1", &o, WEFT_NO_DEADLINE), -EINVAL);
    CHECK(strstr(err, "nosuchoption") != NULL);

    /* A host name goes through weft's resolver and reaches libpq as an address. */
    CHECK_EQ(weft_pg_connect_opts(&c, "host=localhost port=1 user=x", &o, weft_deadline_in(10)),
             WEFT_PG_ECONNECT);
    CHECK((strstr(err, "127.0.0.1") != NULL || strstr(err, "::1") != NULL) &&
          strstr(err, "refused") != NULL);

    /* The right password, and a URI. */
    c = must_connect(pgt_conninfo_user());
    weft_pg_close(c);
    snprintf(ci, sizeof(ci), "postgresql://weft:secret@/postgres?host=%s", pgt_dir);
    c = must_connect(ci);
    CHECK(weft_pg_backend_pid(c) > 0);
    CHECK_EQ(weft_pg_txn_status(c), 0);
    weft_pg_close(c);

    /* A deadline that passed: nothing is left open. */
    CHECK_EQ(weft_pg_connect_dl(&c, pgt_conninfo(), weft_time(NULL) - 1), -ETIMEDOUT);
    return 0;
}

static void test_connect_errors(void)
{
    pgt_setup();
    int fds = test_count_fds();
    CHECK_EQ(weft_run(connect_errors_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- server errors ---- */

static int errors_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    CHECK_EQ(weft_pg_query(c, "SELEC 1", NULL, 0, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "42601");
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SEVERITY), "ERROR");
    CHECK(strstr(weft_pg_error_field(c, WEFT_PG_MESSAGE), "syntax error") != NULL);
    CHECK(strstr(weft_pg_errmsg(c), "syntax error at or near \"SELEC\"") != NULL);

    /* The connection is fine after an error; the error is gone after a success. */
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    CHECK(weft_pg_error_field(c, WEFT_PG_SQLSTATE) == NULL);
    CHECK_STR(weft_pg_errmsg(c), "");

    /* Detail and hint. */
    CHECK(weft_pg_exec(c, "CREATE TEMP TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)") >= 0);
    CHECK_EQ(weft_pg_query(c, "INSERT INTO u VALUES (1)", NULL, 0, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "23505");
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_DETAIL), "Key (id)=(1) already exists.");
    CHECK_EQ(weft_pg_query(c, "SELECT nosuchfunc(1)", NULL, 0, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "42883");
    CHECK(strstr(weft_pg_error_field(c, WEFT_PG_HINT), "No function matches") != NULL);
    CHECK_EQ(weft_pg_query(c, "SELECT 1/0", NULL, 0, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "22012");

    /* A script stops at its first error. */
    CHECK_EQ(weft_pg_exec(c, "INSERT INTO u VALUES (2); SELECT 1/0; INSERT INTO u VALUES (3)"),
             WEFT_PG_ESERVER);
    CHECK_EQ(weft_pg_query(c, "SELECT id FROM u", NULL, 0, NULL), 1);

    /* Wrong parameter count is the server's error too; a COPY through query is refused. */
    weft_pg_param_t p[1] = {weft_pg_int4(1)};
    CHECK_EQ(weft_pg_query(c, "SELECT $1::int, $2::int", p, 1, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "08P01");
    CHECK_EQ(weft_pg_query(c, "COPY u TO STDOUT", NULL, 0, NULL), WEFT_PG_ESTATE);
    CHECK_EQ(weft_pg_query(c, "COPY u FROM STDIN", NULL, 0, NULL), WEFT_PG_ESTATE);
    CHECK_EQ(weft_pg_query(c, "SELECT count(*) FROM u", NULL, 0, NULL), 1);

    CHECK_STR(weft_pg_strerror(WEFT_PG_ESERVER), "the PostgreSQL server reported an error");
    CHECK_STR(weft_pg_strerror(-ECANCELED), "operation canceled");
    weft_pg_close(c);
    return 0;
}

static void test_server_errors(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(errors_main, NULL), 0);
}

/* ---- types ---- */

static void check_row(weft_pg_result_t *r, const unsigned char *blob, size_t bloblen)
{
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t n;
    const void *bp;
    CHECK_EQ(weft_pg_nrows(r), 1);
    CHECK_EQ(weft_pg_ncols(r), 11);
    CHECK_STR(weft_pg_colname(r, 0), "i4");
    CHECK_EQ(weft_pg_colnum(r, "txt"), 3);
    CHECK_EQ(weft_pg_colnum(r, "nope"), -1);
    CHECK_EQ(weft_pg_coltype(r, 0), 23);
    CHECK_EQ(weft_pg_coltype(r, 1), 20);
    CHECK_EQ(weft_pg_coltype(r, 4), 17);
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &i), 0);
    CHECK_EQ(i, -2147483647 - 1);
    CHECK_EQ(weft_pg_get_int(r, 0, 1, &i), 0);
    CHECK_EQ(i, INT64_MAX);
    CHECK_EQ(weft_pg_get_double(r, 0, 2, &d), 0);
    CHECK(d == -1.5e300);
    CHECK_EQ(weft_pg_get_text(r, 0, 3, &s, &n), 0);
    CHECK_STR(s, "héllo, 'world'\t\\");
    CHECK_EQ(n, strlen("héllo, 'world'\t\\"));
    CHECK_EQ(weft_pg_get_bytea(r, 0, 4, &bp, &n), 0);
    CHECK_EQ(n, bloblen);
    CHECK(memcmp(bp, blob, bloblen) == 0);
    CHECK_EQ(weft_pg_get_bool(r, 0, 5, &b), 0);
    CHECK(b);
    /* NULLs */
    CHECK(weft_pg_isnull(r, 0, 6));
    CHECK_EQ(weft_pg_get_int(r, 0, 6, &i), -ENODATA);
    CHECK_EQ(weft_pg_get_text(r, 0, 7, &s, &n), -ENODATA);
    CHECK(weft_pg_value(r, 0, 7, &n) == NULL);
    CHECK(!weft_pg_isnull(r, 0, 8));
    CHECK_EQ(weft_pg_get_double(r, 0, 8, &d), 0);
    CHECK(isnan(d));
    /* An empty text is not a NULL; an oid is unsigned (4 bytes in binary). */
    CHECK(!weft_pg_isnull(r, 0, 9));
    CHECK_EQ(weft_pg_get_text(r, 0, 9, &s, &n), 0);
    CHECK_STR(s, "");
    CHECK_EQ(n, 0);
    CHECK_EQ(weft_pg_get_int(r, 0, 10, &i), 0);
    CHECK_EQ(i, 4294967295LL);
    /* Out of range and wrong kinds. */
    CHECK_EQ(weft_pg_get_int(r, 1, 0, &i), -EINVAL);
    CHECK_EQ(weft_pg_get_int(r, 0, 11, &i), -EINVAL);
    CHECK(weft_pg_isnull(r, 5, 5));
}

static int types_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    unsigned char blob[256];
    for (int i = 0; i < 256; i++)
        blob[i] = (unsigned char)i;
    const char *sql = "SELECT $1::int4 AS i4, $2::int8 AS i8, $3::float8 AS f8, $4::text AS txt, "
                      "$5::bytea AS b, $6::bool AS bo, $7::int4 AS n1, $8::text AS n2, "
                      "'NaN'::float8 AS nan, ''::text AS empty, 4294967295::oid AS o";
    /* Binary parameters of each kind, and text ones. */
    weft_pg_param_t p[8] = {weft_pg_int4(INT32_MIN), weft_pg_int8(INT64_MAX),
                            weft_pg_float8(-1.5e300), weft_pg_text("héllo, 'world'\t\\"),
                            weft_pg_bytea(blob, sizeof(blob)), weft_pg_bool(true),
                            weft_pg_null(), weft_pg_null()};
    for (int fmt = 0; fmt < 2; fmt++) {
        weft_pg_result_t *r = NULL;
        CHECK_EQ(weft_pg_query_ex(c, sql, p, 8, fmt ? WEFT_PG_BINARY : 0, &r, WEFT_NO_DEADLINE),
                 1);
        check_row(r, blob, sizeof(blob));
        CHECK_STR(weft_pg_cmd_tag(r), "SELECT 1");
        weft_pg_result_free(r);
    }
    weft_pg_param_t t[8] = {weft_pg_text("-2147483648"), weft_pg_text("9223372036854775807"),
                            weft_pg_text("-1.5e300"), weft_pg_text("héllo, 'world'\t\\"),
                            weft_pg_bytea(blob, sizeof(blob)), weft_pg_text("t"),
                            weft_pg_null(), weft_pg_null()};
    weft_pg_result_t *r = NULL;
    CHECK_EQ(weft_pg_query(c, sql, t, 8, &r), 1);
    check_row(r, blob, sizeof(blob));
    weft_pg_result_free(r);

    /* Command tags and affected rows. */
    CHECK_EQ(weft_pg_exec(c, "CREATE TEMP TABLE t (id int, v text)"), 0);
    CHECK_EQ(weft_pg_query(c, "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 3) g", NULL,
                           0, &r),
             3);
    CHECK_STR(weft_pg_cmd_tag(r), "INSERT 0 3");
    CHECK_EQ(weft_pg_affected(r), 3);
    weft_pg_result_free(r);
    CHECK_EQ(weft_pg_query(c, "UPDATE t SET v = 'y' WHERE id >= 2", NULL, 0, NULL), 2);
    CHECK_EQ(weft_pg_query(c, "DELETE FROM t WHERE id = 1", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM t WHERE id > 100", NULL, 0, &r), 0);
    CHECK_EQ(weft_pg_nrows(r), 0);
    CHECK_EQ(weft_pg_ncols(r), 2);
    weft_pg_result_free(r);
    /* An int4 column read as int and double; out of range for the getter. */
    CHECK_EQ(weft_pg_query(c, "SELECT 7::int2, 99999999999999999999::numeric, 'abc', 1.25::float4",
                           NULL, 0, &r),
             1);
    int64_t i;
    double d;
    CHECK_EQ(weft_pg_get_int(r, 0, 0, &i), 0);
    CHECK_EQ(i, 7);
    CHECK_EQ(weft_pg_get_int(r, 0, 1, &i), -ERANGE);
    CHECK_EQ(weft_pg_get_double(r, 0, 1, &d), 0);
    CHECK(d > 9.9e19);
    CHECK_EQ(weft_pg_get_int(r, 0, 2, &i), -EINVAL);
    CHECK_EQ(weft_pg_get_double(r, 0, 3, &d), 0);
    CHECK(d == 1.25);
    weft_pg_result_free(r);
    weft_pg_close(c);
    return 0;
}

/*
 * Every cell of a mixed answer (NULLs, empty and long text, binary integers, many rows) reads the
 * same through weft's getters as through libpq's own calls: the same bytes at the same address,
 * the same length and NULL-ness.
 */
static int cells_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    const char *sql = "SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || i END AS t, "
                      "CASE WHEN i % 5 = 0 THEN '' ELSE repeat('x', i % 300) END AS e, "
                      "CASE WHEN i % 7 = 0 THEN NULL ELSE i::int8 * 1000000007 END AS b "
                      "FROM generate_series(1, 2000) AS i";
    for (int fmt = 0; fmt < 2; fmt++) {
        weft_pg_result_t *r = NULL;
        CHECK_EQ(weft_pg_query_ex(c, sql, NULL, 0, fmt ? WEFT_PG_BINARY : 0, &r,
                                  WEFT_NO_DEADLINE),
                 2000);
        PGresult *pq = (PGresult *)weft_pg_result_libpq(r);
        CHECK_EQ(weft_pg_nrows(r), PQntuples(pq));
        for (int row = 0; row < 2000; row++) {
            for (int col = 0; col < 4; col++) {
                size_t n = 99;
                const char *v = weft_pg_value(r, row, col, &n);
                bool null = PQgetisnull(pq, row, col);
                CHECK_EQ(weft_pg_isnull(r, row, col), null);
                CHECK(null ? v == NULL && n == 0
                           : v == PQgetvalue(pq, row, col) &&
                                 n == (size_t)PQgetlength(pq, row, col));
                const char *s = NULL;
                CHECK_EQ(weft_pg_get_text(r, row, col, &s, &n), null ? -ENODATA : 0);
                CHECK(null || (s == v && n == (size_t)PQgetlength(pq, row, col)));
            }
            int64_t i, b;
            CHECK_EQ(weft_pg_get_int(r, row, 0, &i), 0);
            CHECK_EQ(i, row + 1);
            int e = weft_pg_get_int(r, row, 3, &b);
            CHECK_EQ(e, (row + 1) % 7 == 0 ? -ENODATA : 0);
            CHECK(e < 0 || b == (int64_t)(row + 1) * 1000000007);
        }
        int64_t i;
        CHECK_EQ(weft_pg_get_int(r, 2000, 0, &i), -EINVAL);
        CHECK_EQ(weft_pg_get_int(r, -1, 0, &i), -EINVAL);
        CHECK_EQ(weft_pg_get_int(r, 0, 4, &i), -EINVAL);
        CHECK(weft_pg_value(r, 0, -1, NULL) == NULL);
        weft_pg_result_free(r);
    }
    weft_pg_close(c);
    return 0;
}

/* src/pg/pg_internal.h: read cells through libpq's calls only (false) or, where the probe of
 * libpq's result layout passed, straight from its row array (true, the default); returns whether
 * the probe passed. */
bool weft__pg_direct_cells(bool on);

/* Run `fn` with cells read straight from libpq's row array (the default where the probe passed:
 * it must, with the libpq 15 the tests are built against), then through libpq's getters (what a
 * libpq of unknown layout gets): the same answers. */
static void run_both_ways(weft_task_fn fn)
{
    pgt_setup();
    CHECK(PQlibVersion() < 100000 || PQlibVersion() >= 190000 || weft__pg_direct_cells(true));
    CHECK_EQ(weft_run(fn, NULL), 0);
    weft__pg_direct_cells(false);
    CHECK_EQ(weft_run(fn, NULL), 0);
    weft__pg_direct_cells(true);
}

static void test_types(void)
{
    run_both_ways(types_main);
}

static void test_cells_match_libpq(void)
{
    run_both_ways(cells_main);
}

/* ---- prepared statements ---- */

static int prepared_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    CHECK_EQ(weft_pg_prepare(c, "add", "SELECT $1::int8 + $2::int8", 2, NULL), 0);
    for (int k = 0; k < 50; k++) {
        weft_pg_param_t p[2] = {weft_pg_int8(k), weft_pg_int8(1000)};
        weft_pg_result_t *r;
        CHECK_EQ(weft_pg_query_prepared(c, "add", p, 2, &r), 1);
        int64_t v;
        CHECK_EQ(weft_pg_get_int(r, 0, 0, &v), 0);
        CHECK_EQ(v, k + 1000);
        weft_pg_result_free(r);
    }
    uint32_t types[1] = {25};
    CHECK_EQ(weft_pg_prepare(c, "len", "SELECT length($1)", 1, types), 0);
    weft_pg_param_t p[1] = {weft_pg_text("abcd")};
    weft_pg_result_t *r;
    CHECK_EQ(weft_pg_query_prepared(c, "len", p, 1, &r), 1);
    CHECK_STR(weft_pg_value(r, 0, 0, NULL), "4");
    weft_pg_result_free(r);
    CHECK_EQ(weft_pg_query_prepared(c, "nosuch", NULL, 0, NULL), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "26000");
    CHECK_EQ(weft_pg_prepare(c, "add", "SELECT 1", 0, NULL), WEFT_PG_ESERVER); /* exists */
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "42P05");
    weft_pg_close(c);
    return 0;
}

static void test_prepared(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(prepared_main, NULL), 0);
}

/* ---- transactions ---- */

static int txn_insert(weft_pg_t *c, void *arg)
{
    int fail = *(int *)arg;
    int r = weft_pg_exec(c, "INSERT INTO tx VALUES (1)");
    if (r < 0)
        return r;
    if (fail == 1)
        return -EIO;
    if (fail == 2)
        return weft_pg_exec(c, "SELECT pg_sleep(10)"); /* cut off by the scope */
    if (fail == 3)
        return weft_pg_exec(c, "INSERT INTO tx VALUES (1/0)");
    return 5;
}

static int txn_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    CHECK_EQ(weft_pg_exec(c, "CREATE TEMP TABLE tx (v int)"), 0);
    int mode = 0;
    CHECK_EQ(weft_pg_transaction(c, NULL, txn_insert, &mode), 5);
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM tx", NULL, 0, NULL), 1);
    mode = 1;
    CHECK_EQ(weft_pg_transaction(c, "BEGIN ISOLATION LEVEL SERIALIZABLE", txn_insert, &mode),
             -EIO);
    CHECK_EQ(weft_pg_txn_status(c), 0);
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM tx", NULL, 0, NULL), 1);
    mode = 3;
    CHECK_EQ(weft_pg_transaction(c, NULL, txn_insert, &mode), WEFT_PG_ESERVER);
    CHECK_STR(weft_pg_error_field(c, WEFT_PG_SQLSTATE), "22012"); /* fn's error is kept */
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM tx", NULL, 0, NULL), 1);
    /* Cut off by a timeout scope in the middle: rolled back, the connection still usable. */
    mode = 2;
    int64_t t0 = weft_time(NULL);
    weft_timeout_t to = {0}; /* zeroed: enter reads it (valgrind would flag that) */
    CHECK_EQ(weft_timeout_enter(&to, 0.1), 0);
    int r = weft_pg_transaction(c, NULL, txn_insert, &mode);
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);
    CHECK(weft_time(NULL) - t0 < 500 * 1000000LL);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_txn_status(c), 0);
    CHECK_EQ(weft_pg_query(c, "SELECT * FROM tx", NULL, 0, NULL), 1);
    weft_pg_close(c);
    return 0;
}

static void test_transaction(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(txn_main, NULL), 0);
}

/* ---- timeouts and cancellation ---- */

static int sleeper(void *arg)
{
    return weft_pg_exec(arg, "SELECT pg_sleep(10)");
}

static int timeout_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = must_connect(pgt_conninfo());
    int pid = weft_pg_backend_pid(c);

    /* pg_sleep(10) under a 0.1 s timeout scope: back within 0.5 s, connection usable. */
    int64_t t0 = weft_time(NULL);
    weft_timeout_t to = {0}; /* zeroed: enter reads it (valgrind would flag that) */
    CHECK_EQ(weft_timeout_enter(&to, 0.1), 0);
    int r = weft_pg_query(c, "SELECT pg_sleep(10)", NULL, 0, NULL);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_timeout_exit(&to, r), -ETIMEDOUT);
    int64_t took = weft_time(NULL) - t0;
    fprintf(stderr, "pg_sleep(10) under a 0.1 s timeout returned after %.3f s\n", took / 1e9);
    CHECK(took < 500 * 1000000LL);
    CHECK(weft_pg_ok(c));
    CHECK_EQ(weft_pg_backend_pid(c), pid);
    weft_pg_result_t *res;
    CHECK_EQ(weft_pg_query(c, "SELECT 42", NULL, 0, &res), 1);
    CHECK_STR(weft_pg_value(res, 0, 0, NULL), "42");
    weft_pg_result_free(res);

    /* The same with a deadline: -ETIMEDOUT. */
    t0 = weft_time(NULL);
    CHECK_EQ(weft_pg_exec_dl(c, "SELECT pg_sleep(10)", weft_deadline_in(0.1)), -ETIMEDOUT);
    CHECK(weft_time(NULL) - t0 < 500 * 1000000LL);
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);

    /* Cancelled by another task. */
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, sleeper, c), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), -EBUSY);
    t0 = weft_time(NULL);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    CHECK(weft_time(NULL) - t0 < 500 * 1000000LL);
    CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_backend_pid(c), pid);
    /* The server is not still sleeping on our behalf. */
    CHECK_EQ(pgt_scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                        "'SELECT pg_sleep%' AND state = 'active'"),
             0);

    /* Closed under a waiting task: it gets -EBADF and the memory goes when it returns. */
    CHECK_EQ(weft_spawn(&t, sleeper, c), 0);
    CHECK_EQ(weft_sleep(0.05), 0);
    weft_pg_close(c);
    CHECK_EQ(weft_join(t), -EBADF);
    weft_task_release(t);
    return 0;
}

static void test_timeout_cancel(void)
{
    pgt_setup();
    int fds = test_count_fds();
    CHECK_EQ(weft_run(timeout_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- LISTEN / NOTIFY ---- */

struct listener {
    weft_pg_t *c;
    weft_pg_notify_t *got[2];
};

static int listen_task(void *arg)
{
    struct listener *l = arg;
    for (int i = 0; i < 2; i++) {
        int r = weft_pg_notify_wait(l->c, &l->got[i], weft_deadline_in(10));
        if (r < 0)
            return r;
    }
    return 0;
}

static int notify_main(void *arg)
{
    (void)arg;
    struct listener l = {.c = must_connect(pgt_conninfo())};
    weft_pg_t *n = must_connect(pgt_conninfo());
    CHECK_EQ(weft_pg_exec(l.c, "LISTEN jobs"), 0);

    /* A wait cut off loses nothing. */
    weft_pg_notify_t *x = (weft_pg_notify_t *)1;
    CHECK_EQ(weft_pg_notify_wait(l.c, &x, weft_deadline_in(0.05)), -ETIMEDOUT);
    CHECK(x == NULL);

    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, listen_task, &l), 0);
    CHECK_EQ(weft_sleep(0.02), 0);
    CHECK_EQ(weft_pg_exec(n, "NOTIFY jobs, 'first'"), 0);
    CHECK_EQ(weft_pg_exec(n, "SELECT pg_notify('jobs', 'second')"), 1);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_STR(l.got[0]->channel, "jobs");
    CHECK_STR(l.got[0]->payload, "first");
    CHECK_EQ(l.got[0]->pid, weft_pg_backend_pid(n));
    CHECK_STR(l.got[1]->payload, "second");
    weft_pg_notify_free(l.got[0]);
    weft_pg_notify_free(l.got[1]);

    /* Notifications that arrive during a query are queued for the next wait. */
    CHECK_EQ(weft_pg_exec(n, "NOTIFY jobs"), 0);
    CHECK_EQ(weft_pg_query(l.c, "SELECT pg_sleep(0.05)", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_notify_wait(l.c, &x, weft_deadline_in(5)), 0);
    CHECK_STR(x->payload, "");
    weft_pg_notify_free(x);
    weft_pg_close(n);
    weft_pg_close(l.c);
    return 0;
}

static void test_notify(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(notify_main, NULL), 0);
}

TEST_MAIN(test_connect_errors, test_server_errors, test_types, test_cells_match_libpq,
          test_prepared, test_transaction, test_timeout_cancel, test_notify)
