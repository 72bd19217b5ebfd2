/*
 * The connection pool against a real server (pgtest.h): limits, acquire deadlines, FIFO hand-over,
 * reset on release, health checks; 1,000 tasks acquiring from a pool of 10 while random ones are
 * cancelled at random points (no connection lost: the pool's counts and the server's agree at the
 * end); the server stopped (immediate shutdown) in the middle of queries, then restarted.
 * WEFT_SKIP_SLOW=1 (valgrind) runs 200 tasks instead of 1,000.
 */
#include "pgtest.h"

static char pool_ci[1200];

static const char *ci_app(void)
{
    snprintf(pool_ci, sizeof(pool_ci), "%s application_name=weftpool", pgt_conninfo());
    return pool_ci;
}

static long long server_conns(void)
{
    return pgt_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weftpool'");
}

/*
 * The server's count once it is `want`, or after 2 s. A backend leaves pg_stat_activity only when
 * its process has exited, a moment after the client closed the socket (slower under valgrind).
 */
static long long server_conns_become(long long want)
{
    for (int i = 0; i < 200 && server_conns() != want; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    return server_conns();
}

static struct weft_pg_pool_stats stats(weft_pg_pool_t *p)
{
    struct weft_pg_pool_stats st;
    weft_pg_pool_stats(p, &st);
    return st;
}

/* Wait (bounded) until no background reset is running. */
static void settle(weft_pg_pool_t *p)
{
    for (int i = 0; i < 500 && stats(p).resetting > 0; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(stats(p).resetting, 0);
}

/* ---- basics ---- */

static int prepare_conn(weft_pg_t *c, void *arg)
{
    (*(int *)arg)++;
    return weft_pg_prepare(c, "one", "SELECT 1", 0, NULL);
}

struct holder {
    weft_pg_pool_t *p;
    int got;
};

static int acquire_one(void *arg)
{
    struct holder *h = arg;
    weft_pg_t *c;
    int r = weft_pg_pool_acquire(h->p, &c, weft_deadline_in(5));
    if (r < 0)
        return r;
    h->got++;
    weft_pg_pool_release(h->p, c);
    return 0;
}

static int basic_main(void *arg)
{
    (void)arg;
    int inits = 0;
    struct weft_pg_pool_opts o = {.conninfo = ci_app(),
                                  .min_size = 2,
                                  .max_size = 3,
                                  .on_connect = prepare_conn,
                                  .arg = &inits};
    weft_pg_pool_t *p;
    CHECK_EQ(weft_pg_pool_new(&p, &o), 0);
    CHECK_EQ(stats(p).open, 2);
    CHECK_EQ(stats(p).idle, 2);
    CHECK_EQ(inits, 2);
    CHECK_EQ(server_conns(), 2);

    weft_pg_t *c[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_pg_pool_acquire(p, &c[i], WEFT_NO_DEADLINE), 0);
    CHECK_EQ(inits, 3);
    CHECK_EQ(weft_pg_query_prepared(c[2], "one", NULL, 0, NULL), 1);
    CHECK_EQ(stats(p).in_use, 3);
    /* Full: a deadline passes. */
    weft_pg_t *x = (weft_pg_t *)1;
    CHECK_EQ(weft_pg_pool_acquire(p, &x, weft_deadline_in(0.05)), -ETIMEDOUT);
    CHECK(x == NULL);
    CHECK_EQ(stats(p).waiting, 0);
    /* A waiter gets the next connection released. */
    struct holder h = {.p = p};
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, acquire_one, &h), 0);
    CHECK_EQ(weft_sleep(0.02), 0);
    CHECK_EQ(stats(p).waiting, 1);
    CHECK_EQ(weft_pg_pool_release(p, c[0]), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    CHECK_EQ(h.got, 1);
    CHECK_EQ(weft_pg_pool_release(p, c[0]), -EINVAL); /* not checked out any more */

    /* Released inside a transaction: rolled back before reuse. */
    CHECK_EQ(weft_pg_exec(c[1], "CREATE TABLE IF NOT EXISTS pt (v int)"), 0);
    CHECK_EQ(weft_pg_exec(c[1], "BEGIN; INSERT INTO pt VALUES (1)"), 1);
    CHECK_EQ(weft_pg_txn_status(c[1]), 2);
    CHECK_EQ(weft_pg_pool_release(p, c[1]), 0);
    CHECK_EQ(stats(p).resetting, 1);
    settle(p);
    /* And one in a failed transaction. */
    CHECK_EQ(weft_pg_exec(c[2], "BEGIN; SELECT 1/0"), WEFT_PG_ESERVER);
    CHECK_EQ(weft_pg_txn_status(c[2]), 3);
    CHECK_EQ(weft_pg_pool_release(p, c[2]), 0);
    settle(p);
    CHECK_EQ(stats(p).idle, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_pg_pool_acquire(p, &c[i], WEFT_NO_DEADLINE), 0);
        CHECK_EQ(weft_pg_txn_status(c[i]), 0);
    }
    CHECK_EQ(weft_pg_query(c[0], "SELECT * FROM pt", NULL, 0, NULL), 0);
    /* A broken connection released is discarded and replaced on the next acquire. */
    long long pid = weft_pg_backend_pid(c[0]);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT pg_terminate_backend(%lld)) t", pid);
    CHECK_EQ(pgt_scalar(sql), 1);
    CHECK(weft_pg_query(c[0], "SELECT 1", NULL, 0, NULL) < 0);
    CHECK(!weft_pg_ok(c[0]));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_pg_pool_release(p, c[i]), 0);
    CHECK_EQ(stats(p).open, 2);
    CHECK_EQ(stats(p).discarded, 1);
    /* An idle connection killed on the server side is noticed at acquire (no query lost). */
    weft_pg_t *a;
    CHECK_EQ(weft_pg_pool_acquire(p, &a, WEFT_NO_DEADLINE), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT pg_terminate_backend(%d)) t",
             weft_pg_backend_pid(a));
    CHECK_EQ(weft_pg_pool_release(p, a), 0);
    CHECK_EQ(pgt_scalar(sql), 1);
    for (int i = 0; i < 100 && server_conns() > 1; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK_EQ(weft_sleep(0.002), 0); /* idle for over 1 ms: the cheap check runs at acquire */
    CHECK_EQ(weft_pg_pool_acquire(p, &a, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_query(a, "SELECT 1", NULL, 0, NULL), 1);
    CHECK_EQ(weft_pg_pool_release(p, a), 0);
    CHECK_EQ(stats(p).discarded, 2);
    CHECK_EQ(weft_pg_pool_close(p, weft_deadline_in(5)), 0);
    CHECK_EQ(server_conns_become(0), 0);
    return 0;
}

static void test_pool_basics(void)
{
    pgt_setup();
    int fds = test_count_fds();
    CHECK_EQ(weft_run(basic_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- 1,000 tasks, random cancellations ---- */

struct storm {
    weft_pg_pool_t *p;
    weft_task_t **tasks;
    int n;
    int ok, cancelled, timedout, other;
    unsigned seed;
};

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static int storm_txn(weft_pg_t *c, void *arg)
{
    (void)arg;
    int r = weft_pg_exec(c, "INSERT INTO storm VALUES (1)");
    if (r < 0)
        return r;
    return weft_pg_exec(c, "SELECT pg_sleep(0.002)");
}

static int storm_task(void *arg)
{
    struct storm *s = arg;
    unsigned k = rnd(&s->seed);
    weft_pg_t *c;
    int r = weft_pg_pool_acquire(s->p, &c, (k % 7 == 0) ? weft_deadline_in(0.01) : weft_deadline_in(30));
    if (r < 0)
        return r;
    switch (k % 4) {
    case 0:
        r = weft_pg_query(c, "SELECT 1", NULL, 0, NULL);
        break;
    case 1:
        r = weft_pg_query(c, "SELECT pg_sleep(0.003)", NULL, 0, NULL);
        break;
    case 2:
        r = weft_pg_transaction(c, NULL, storm_txn, NULL);
        break;
    default: /* left inside a transaction: the pool rolls it back */
        r = weft_pg_exec(c, "BEGIN; INSERT INTO storm VALUES (2); SELECT pg_sleep(0.001)");
        break;
    }
    weft_pg_pool_release(s->p, c);
    return r < 0 ? r : 0;
}

static int canceller(void *arg)
{
    struct storm *s = arg;
    for (int i = 0; i < s->n / 3; i++) {
        int r = weft_sleep((rnd(&s->seed) % 100) / 100000.0);
        if (r < 0)
            return r;
        weft_task_cancel(s->tasks[rnd(&s->seed) % s->n], "storm");
    }
    return 0;
}

static int storm_main(void *arg)
{
    (void)arg;
    struct storm s = {.n = pgt_slow_env() ? 200 : 1000, .seed = 12345};
    struct weft_pg_pool_opts o = {.conninfo = ci_app(), .max_size = 10, .check_idle = 0.05};
    CHECK_EQ(weft_pg_pool_new(&s.p, &o), 0);
    weft_pg_t *c;
    CHECK_EQ(weft_pg_pool_acquire(s.p, &c, WEFT_NO_DEADLINE), 0);
    CHECK_EQ(weft_pg_exec(c, "CREATE TABLE storm (v int)"), 0);
    weft_pg_pool_release(s.p, c);

    s.tasks = calloc((size_t)s.n, sizeof(*s.tasks));
    for (int i = 0; i < s.n; i++)
        CHECK_EQ(weft_spawn(&s.tasks[i], storm_task, &s), 0);
    weft_task_t *ct;
    CHECK_EQ(weft_spawn(&ct, canceller, &s), 0);
    int *res = calloc((size_t)s.n, sizeof(int));
    CHECK_EQ(weft_gather(s.tasks, (size_t)s.n, res, WEFT_GATHER_RETURN_ERRORS), 0);
    CHECK_EQ(weft_join(ct), 0);
    weft_task_release(ct);
    for (int i = 0; i < s.n; i++) {
        if (res[i] == 0)
            s.ok++;
        else if (res[i] == -ECANCELED)
            s.cancelled++;
        else if (res[i] == -ETIMEDOUT)
            s.timedout++;
        else {
            fprintf(stderr, "task %d: %s\n", i, weft_pg_strerror(res[i]));
            s.other++;
        }
        weft_task_release(s.tasks[i]);
    }
    settle(s.p);
    struct weft_pg_pool_stats st = stats(s.p);
    fprintf(stderr,
            "%d tasks: %d ok, %d cancelled, %d timed out, %d other; pool: open %d idle %d "
            "in_use %d created %llu discarded %llu; server: %lld\n",
            s.n, s.ok, s.cancelled, s.timedout, s.other, st.open, st.idle, st.in_use,
            (unsigned long long)st.created, (unsigned long long)st.discarded, server_conns());
    CHECK_EQ(s.other, 0);
    CHECK(s.cancelled > 0 && s.ok > s.n / 4);
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.connecting, 0);
    CHECK_EQ(st.waiting, 0);
    CHECK_EQ(st.open, st.idle);
    CHECK(st.open >= 1 && st.open <= 10);
    CHECK_EQ((long long)st.created - (long long)st.discarded, st.open);
    CHECK_EQ(server_conns_become(st.open), st.open);
    /* Every slot is free: 10 acquires succeed at once, an 11th would wait. */
    weft_pg_t *all[10];
    for (int i = 0; i < 10; i++)
        CHECK_EQ(weft_pg_pool_acquire(s.p, &all[i], weft_deadline_in(5)), 0);
    CHECK_EQ(weft_pg_pool_acquire(s.p, &c, weft_deadline_in(0.01)), -ETIMEDOUT);
    /* Nothing left in a transaction: only whole transactions committed (value 1). */
    weft_pg_result_t *r;
    CHECK_EQ(weft_pg_query(all[0], "SELECT count(*) FROM storm WHERE v = 2", NULL, 0, &r), 1);
    CHECK_STR(weft_pg_value(r, 0, 0, NULL), "0");
    weft_pg_result_free(r);
    CHECK_EQ(weft_pg_exec(all[0], "DROP TABLE storm"), 0);
    for (int i = 0; i < 10; i++)
        weft_pg_pool_release(s.p, all[i]);
    CHECK_EQ(weft_pg_pool_close(s.p, weft_deadline_in(10)), 0);
    CHECK_EQ(server_conns_become(0), 0);
    free(s.tasks);
    free(res);
    return 0;
}

static void test_pool_cancel_storm(void)
{
    pgt_setup();
    int fds = test_count_fds();
    CHECK_EQ(weft_run(storm_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- the server goes away mid-query, then comes back ---- */

struct worker {
    weft_pg_pool_t *p;
    bool stop;
    int ok, failed;
};

static int worker(void *arg)
{
    struct worker *w = arg;
    while (!w->stop) {
        weft_pg_t *c;
        int r = weft_pg_pool_acquire(w->p, &c, weft_deadline_in(10));
        if (r < 0) {
            w->failed++;
            if (weft_sleep(0.005) < 0)
                return 0;
            continue;
        }
        r = weft_pg_query(c, "SELECT pg_sleep(0.002)", NULL, 0, NULL);
        if (r >= 0)
            w->ok++;
        else
            w->failed++;
        weft_pg_pool_release(w->p, c);
        if (r < 0 && weft_sleep(0.005) < 0)
            return 0;
    }
    return 0;
}

static int restart_main(void *arg)
{
    (void)arg;
    struct weft_pg_pool_opts o = {.conninfo = ci_app(), .max_size = 4, .connect_timeout = 2};
    struct worker w = {0};
    CHECK_EQ(weft_pg_pool_new(&w.p, &o), 0);
    weft_task_t *t[6];
    for (int i = 0; i < 6; i++)
        CHECK_EQ(weft_spawn(&t[i], worker, &w), 0);
    while (w.ok < 50)
        CHECK_EQ(weft_sleep(0.01), 0);
    /* Immediate shutdown while queries run. */
    pgt_stop_immediate();
    int failed0 = w.failed;
    for (int i = 0; i < 500 && w.failed < failed0 + 6; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK(w.failed >= failed0 + 6);
    fprintf(stderr, "server stopped: %d queries ok, %d failed\n", w.ok, w.failed);
    /* While it is down every acquire fails with a connect error, and no slot is lost. */
    weft_pg_t *c;
    CHECK_EQ(weft_pg_pool_acquire(w.p, &c, weft_deadline_in(5)), WEFT_PG_ECONNECT);
    pgt_restart();
    int ok0 = w.ok;
    for (int i = 0; i < 1000 && w.ok < ok0 + 50; i++)
        CHECK_EQ(weft_sleep(0.01), 0);
    CHECK(w.ok >= ok0 + 50);
    w.stop = true;
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    settle(w.p);
    struct weft_pg_pool_stats st = stats(w.p);
    fprintf(stderr, "after the restart: %d ok; pool open %d idle %d discarded %llu\n", w.ok,
            st.open, st.idle, (unsigned long long)st.discarded);
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.open, st.idle);
    CHECK_EQ(server_conns_become(st.open), st.open);
    CHECK_EQ(weft_pg_pool_close(w.p, weft_deadline_in(5)), 0);
    return 0;
}

static void test_server_restart(void)
{
    pgt_setup();
    CHECK_EQ(weft_run(restart_main, NULL), 0);
}

/* ---- a reset task cancelled before its first step (regression) ---- */

/* Cancel every task named `name` that the loop knows; returns how many. */
static int cancel_named(const char *name)
{
    weft_task_t *all[64];
    size_t n = weft_all_tasks(NULL, all, 64);
    int hit = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        if (strcmp(weft_task_name(all[i]), name) == 0 && weft_task_cancel(all[i], NULL))
            hit++;
    }
    return hit;
}

static int unstarted_reset_main(void *arg)
{
    (void)arg;
    struct weft_pg_pool_opts o = {.conninfo = ci_app(), .max_size = 1};
    weft_pg_pool_t *p;
    CHECK_EQ(weft_pg_pool_new(&p, &o), 0);
    weft_pg_t *c;
    CHECK_EQ(weft_pg_pool_acquire(p, &c, weft_deadline_in(5)), 0);
    CHECK_EQ(weft_pg_exec(c, "BEGIN"), 0);
    /* Released inside a transaction: a reset task is spawned; a shutdown-style sweep cancels it
     * before it runs. Its connection must not be lost: discarded, its slot given back. */
    CHECK_EQ(weft_pg_pool_release(p, c), 0);
    CHECK_EQ(stats(p).resetting, 1);
    CHECK_EQ(cancel_named("weft-pg-reset"), 1);
    settle(p);
    struct weft_pg_pool_stats st = stats(p);
    CHECK_EQ(st.open, 0);
    CHECK_EQ(st.discarded, 1);
    /* The pool's only slot is free again: the next acquire opens a new connection at once. */
    CHECK_EQ(weft_pg_pool_acquire(p, &c, weft_deadline_in(5)), 0);
    CHECK_EQ(weft_pg_txn_status(c), 0);
    CHECK_EQ(weft_pg_pool_release(p, c), 0);
    CHECK_EQ(weft_pg_pool_close(p, weft_deadline_in(5)), 0);
    CHECK_EQ(server_conns_become(0), 0);
    return 0;
}

static void test_unstarted_reset(void)
{
    pgt_setup();
    int fds = test_count_fds();
    CHECK_EQ(weft_run(unstarted_reset_main, NULL), 0);
    CHECK_EQ(test_count_fds(), fds);
}

TEST_MAIN(test_pool_basics, test_pool_cancel_storm, test_server_restart, test_unstarted_reset)
