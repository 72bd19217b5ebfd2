/*
 * 1,000 queries over a pool of 10 PostgreSQL connections, then the same 1,000 one by one on one
 * connection, with both times. The conninfo comes from argv[1] ("host=/run/postgresql
 * dbname=app", a URI) or, without it, from the PG* environment variables (PGHOST, PGUSER...).
 *   build/examples/pg_queries "host=/var/run/postgresql user=postgres"
 */
#include <stdio.h>
#include <weft.h>
#include <weft/pg.h>

#define QUERIES 1000
#define POOL    10

static const char *conninfo = "";
static weft_pg_pool_t *pool;

/* Each new connection prepares the statement once (the pool runs this before its first use; it
 * also warms the backend's caches before the clock starts). */
static int prepare(weft_pg_t *c, void *arg)
{
    (void)arg;
    return weft_pg_prepare(c, "plus1", "SELECT $1::int4 + 1", 0, NULL);
}

/* One query: the prepared SELECT $1 + 1 on a connection from the pool. */
static int one_query(void *arg)
{
    int i = (int)(intptr_t)arg;
    weft_pg_t *c;
    int r = weft_pg_pool_acquire(pool, &c, weft_deadline_in(30));
    if (r < 0)
        return r;
    weft_pg_param_t p[1] = {weft_pg_int4(i)};
    weft_pg_result_t *res;
    r = weft_pg_query_prepared(c, "plus1", p, 1, &res);
    weft_pg_pool_release(pool, c);
    if (r < 0)
        return r;
    int64_t v;
    r = weft_pg_get_int(res, 0, 0, &v);
    weft_pg_result_free(res);
    return r < 0 ? r : (v == i + 1 ? 0 : -EPROTO);
}

static int main_task(void *arg)
{
    (void)arg;
    struct weft_pg_pool_opts o = {
        .conninfo = conninfo, .min_size = POOL, .max_size = POOL, .on_connect = prepare};
    int r = weft_pg_pool_new(&pool, &o);
    if (r < 0) {
        fprintf(stderr, "pool: %s\n", weft_pg_strerror(r));
        return r;
    }
    /* Concurrently: 1,000 tasks share the 10 connections. */
    static weft_task_t *tasks[QUERIES];
    int64_t t0 = weft_time(NULL);
    for (int i = 0; i < QUERIES; i++)
        weft_spawn(&tasks[i], one_query, (void *)(intptr_t)i);
    r = weft_gather(tasks, QUERIES, NULL, 0);
    for (int i = 0; i < QUERIES; i++)
        weft_task_release(tasks[i]);
    int64_t t1 = weft_time(NULL);
    if (r < 0) {
        fprintf(stderr, "query: %s\n", weft_pg_strerror(r));
        weft_pg_pool_close(pool, WEFT_NO_DEADLINE);
        return r;
    }
    printf("%d queries over a pool of %d: %.3f s\n", QUERIES, POOL, (t1 - t0) / 1e9);

    /* One by one: the same queries, each waiting for the previous. */
    int64_t t2 = weft_time(NULL);
    for (int i = 0; i < QUERIES && r >= 0; i++)
        r = one_query((void *)(intptr_t)i);
    int64_t t3 = weft_time(NULL);
    weft_pg_pool_close(pool, WEFT_NO_DEADLINE);
    if (r < 0) {
        fprintf(stderr, "query: %s\n", weft_pg_strerror(r));
        return r;
    }
    printf("%d queries one by one:   %.3f s\n", QUERIES, (t3 - t2) / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        conninfo = argv[1];
    return weft_run(main_task, NULL) < 0;
}
