/*
 * weft-bench-pg: the weft client of bench/pg/run.py (the MagicStack pgbench workload shape).
 *   weft-bench-pg QUERY SECONDS CONCURRENCY CONNINFO
 *     QUERY: select1 (1 row), series (1,000 rows of generate_series), insert (one row).
 *     A pool of CONCURRENCY connections, as many tasks each running QUERY in a loop (prepared
 *     statements, prepared on each new connection); one second of warm-up, then SECONDS counted.
 *     Prints "queries N seconds S total T cpu C" (T counts the warm-up too; C is the CPU
 *     seconds of the counted window).
 *     With WEFT_BENCH_NAP_NS=N in the environment the loop naps N ns before it sleeps
 *     (weft_loop_opts.nap_ns).
 *   weft-bench-pg pipeline N CONNINFO
 *     N inserts in pipeline mode, then N one by one; prints both times and the ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <weft.h>
#include <weft/pg.h>

static const char *query, *conninfo;
static double seconds;
static int conc;
static weft_pg_pool_t *pool;
static int64_t t_start, t_end;
static long counted, total;
static double cpu0;

/* This process's CPU time (user + system) in seconds. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void mark_cpu(void *arg)
{
    (void)arg;
    cpu0 = cpu_now();
}

static const char *sql_of(const char *q)
{
    if (strcmp(q, "select1") == 0)
        return "SELECT $1::int AS a, 'hello'::text AS b";
    if (strcmp(q, "series") == 0)
        return "SELECT i, 'row ' || i AS t FROM generate_series(1, 1000) AS i";
    if (strcmp(q, "insert") == 0)
        return "INSERT INTO bench_ins (a, b) VALUES ($1, $2)";
    return NULL;
}

static int prepare(weft_pg_t *c, void *arg)
{
    (void)arg;
    return weft_pg_prepare(c, "q", sql_of(query), 0, NULL);
}

static int worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    long i = 0;
    for (;;) {
        int64_t now = weft_time(NULL);
        if (now >= t_end)
            return 0;
        weft_pg_t *c;
        int r = weft_pg_pool_acquire(pool, &c, WEFT_NO_DEADLINE);
        if (r < 0)
            return r;
        weft_pg_result_t *res = NULL;
        /* Results in binary format, as pgx and asyncpg ask for them (pgbench reads text). */
        if (strcmp(query, "series") == 0) {
            r = weft_pg_query_prepared_ex(c, "q", NULL, 0, WEFT_PG_BINARY, &res,
                                          WEFT_NO_DEADLINE);
        } else if (strcmp(query, "select1") == 0) {
            weft_pg_param_t p[1] = {weft_pg_int4((int32_t)(i & 0xffff))};
            r = weft_pg_query_prepared_ex(c, "q", p, 1, WEFT_PG_BINARY, &res, WEFT_NO_DEADLINE);
        } else {
            weft_pg_param_t p[2] = {weft_pg_int4(id), weft_pg_text("hello")};
            r = weft_pg_query_prepared(c, "q", p, 2, NULL);
        }
        if (r < 0)
            fprintf(stderr, "query: %s: %s\n", weft_pg_strerror(r), weft_pg_errmsg(c));
        weft_pg_pool_release(pool, c);
        if (r < 0)
            return r;
        if (res != NULL) { /* read every value, as the other clients decode them */
            int n = weft_pg_nrows(res);
            for (int row = 0; row < n; row++) {
                int64_t v;
                const char *s;
                size_t len;
                if (weft_pg_get_int(res, row, 0, &v) < 0 ||
                    weft_pg_get_text(res, row, 1, &s, &len) < 0)
                    return -EPROTO;
            }
            weft_pg_result_free(res);
        }
        total++;
        if (now >= t_start)
            counted++;
        i++;
    }
}

static int run_main(void *arg)
{
    (void)arg;
    struct weft_pg_pool_opts o = {.conninfo = conninfo,
                                  .min_size = conc,
                                  .max_size = conc,
                                  .check_idle = -1,
                                  .on_connect = prepare};
    int r = weft_pg_pool_new(&pool, &o);
    if (r < 0) {
        fprintf(stderr, "pool: %s\n", weft_pg_strerror(r));
        return r;
    }
    t_start = weft_time(NULL) + weft_seconds_to_ns(1.0);
    t_end = t_start + weft_seconds_to_ns(seconds);
    weft_call_at(weft_loop_current(), NULL, t_start, mark_cpu, NULL);
    weft_task_t **t = calloc((size_t)conc, sizeof(*t));
    for (int i = 0; i < conc; i++)
        weft_spawn(&t[i], worker, (void *)(intptr_t)i);
    r = weft_gather(t, (size_t)conc, NULL, 0);
    double cpu = cpu_now() - cpu0;
    for (int i = 0; i < conc; i++)
        weft_task_release(t[i]);
    free(t);
    weft_pg_pool_close(pool, WEFT_NO_DEADLINE);
    printf("queries %ld seconds %.3f total %ld cpu %.4f\n", counted, seconds, total, cpu);
    return r;
}

static long npipe;

static int queue_insert(weft_pg_t *c, size_t i, void *arg)
{
    (void)arg;
    weft_pg_param_t p[2] = {weft_pg_int4((int32_t)i), weft_pg_text("hello")};
    return weft_pg_pipeline_queue_prepared(c, "ins", p, 2);
}

static int pipeline_main(void *arg)
{
    (void)arg;
    weft_pg_t *c;
    int r = weft_pg_connect(&c, conninfo);
    if (r < 0)
        return r;
    r = weft_pg_prepare(c, "ins", "INSERT INTO bench_ins (a, b) VALUES ($1, $2)", 0, NULL);
    int64_t t0 = weft_time(NULL);
    if (r >= 0)
        r = weft_pg_pipeline(c, (size_t)npipe, queue_insert, NULL, NULL, WEFT_NO_DEADLINE);
    int64_t t1 = weft_time(NULL);
    for (long i = 0; i < npipe && r >= 0; i++) {
        weft_pg_param_t p[2] = {weft_pg_int4((int32_t)i), weft_pg_text("hello")};
        r = weft_pg_query_prepared(c, "ins", p, 2, NULL);
    }
    int64_t t2 = weft_time(NULL);
    weft_pg_close(c);
    if (r < 0) {
        fprintf(stderr, "pipeline: %s\n", weft_pg_strerror(r));
        return r;
    }
    printf("pipeline %ld inserts %.4f s; one by one %.4f s; ratio %.1f\n", npipe, (t1 - t0) / 1e9,
           (t2 - t1) / 1e9, (double)(t2 - t1) / (double)(t1 - t0));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "pipeline") == 0) {
        npipe = atol(argv[2]);
        conninfo = argv[3];
        return weft_run(pipeline_main, NULL) < 0;
    }
    if (argc != 5 || sql_of(argv[1]) == NULL) {
        fprintf(stderr, "usage: %s select1|series|insert SECONDS CONCURRENCY CONNINFO\n"
                        "       %s pipeline N CONNINFO\n", argv[0], argv[0]);
        return 2;
    }
    query = argv[1];
    seconds = atof(argv[2]);
    conc = atoi(argv[3]);
    conninfo = argv[4];
    const char *nap = getenv("WEFT_BENCH_NAP_NS");
    struct weft_loop_opts o = {.nap_ns = nap != NULL ? atoll(nap) : 0};
    return weft_run_opts(run_main, NULL, &o) < 0;
}
