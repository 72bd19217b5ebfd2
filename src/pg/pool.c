/*
 * A pool of PostgreSQL connections whose acquire and release lose nothing to cancellation.
 *
 * The pool's max_size is a FIFO semaphore of slots. Holding a slot entitles a task to one
 * connection: an idle one if there is any, else a new one (there is always room then: idle
 * connections hold no slot, every other connection holds one). The semaphore gives back a slot
 * whose waiter was cancelled after being handed it, so waiting is cancel-safe; the steps after it
 * (checking an idle connection, opening a new one) either finish, or put the connection back
 * (checked one) or close it (new one) and give the slot back before returning -ECANCELED.
 * Release never suspends: a connection that needs a ROLLBACK (or the reset statement) is reset
 * by a task of the pool, which holds the slot until the connection is idle again or closed.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

struct weft_pg_pool {
    char *conninfo;
    char *reset_sql;
    int max_size;
    int64_t check_ns;   /* < 0: never */
    int64_t connect_ns;
    int (*on_connect)(weft_pg_t *c, void *arg);
    void *arg;

    weft_sem_t slots;
    weft_pg_t *idle; /* LIFO: the most recently used first (its backend's caches are warm) */
    int nidle, in_use, resetting, connecting, waiting;
    uint64_t created, discarded;
    bool closed;
    weft_event_t drained; /* set when closed and nothing is out */
};

static int pool_busy(const weft_pg_pool_t *p)
{
    return p->in_use + p->resetting + p->connecting + p->waiting;
}

static void maybe_drained(weft_pg_pool_t *p)
{
    if (p->closed && pool_busy(p) == 0)
        weft_event_set(&p->drained);
}

static void put_idle(weft_pg_pool_t *p, weft_pg_t *c)
{
    c->pool_state = PGP_IDLE;
    c->idle_since = weft_time(NULL);
    c->next = p->idle;
    p->idle = c;
    p->nidle++;
}

static void discard(weft_pg_pool_t *p, weft_pg_t *c)
{
    c->pool_state = PGP_NONE;
    c->pool = NULL;
    p->discarded++;
    weft_pg_close(c);
}

int weft_pg_pool_new(weft_pg_pool_t **out, const struct weft_pg_pool_opts *opts)
{
    if (out == NULL || opts == NULL || opts->max_size < 0 || opts->min_size < 0)
        return -EINVAL;
    *out = NULL;
    int max = opts->max_size > 0 ? opts->max_size : 10;
    if (opts->min_size > max)
        return -EINVAL;
    weft_pg_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->conninfo = strdup(opts->conninfo != NULL ? opts->conninfo : "");
    p->reset_sql = opts->reset_sql != NULL ? strdup(opts->reset_sql) : NULL;
    if (p->conninfo == NULL || (opts->reset_sql != NULL && p->reset_sql == NULL)) {
        free(p->conninfo);
        free(p->reset_sql);
        free(p);
        return -ENOMEM;
    }
    p->max_size = max;
    p->check_ns = opts->check_idle < 0    ? -1
                  : opts->check_idle == 0 ? weft_seconds_to_ns(5.0)
                                          : weft_seconds_to_ns(opts->check_idle);
    p->connect_ns = weft_seconds_to_ns(opts->connect_timeout > 0 ? opts->connect_timeout : 10.0);
    p->on_connect = opts->on_connect;
    p->arg = opts->arg;
    weft_sem_init(&p->slots, max);
    weft_event_init(&p->drained);

    /* Open min_size connections, each through acquire/release. */
    weft_pg_t **first = calloc((size_t)opts->min_size + 1, sizeof(*first));
    if (first == NULL) {
        weft_pg_pool_close(p, WEFT_NO_DEADLINE);
        return -ENOMEM;
    }
    int r = 0, got = 0;
    for (; got < opts->min_size; got++) {
        r = weft_pg_pool_acquire(p, &first[got], WEFT_NO_DEADLINE);
        if (r < 0)
            break;
    }
    for (int i = 0; i < got; i++)
        weft_pg_pool_release(p, first[i]);
    free(first);
    if (r < 0) {
        weft_pg_pool_close(p, WEFT_NO_DEADLINE);
        return r;
    }
    *out = p;
    return 0;
}

static bool cut_off(int r)
{
    return r == -ECANCELED || r == -ETIMEDOUT;
}

/* Open a new connection for a task holding a slot. */
static int open_new(weft_pg_pool_t *p, weft_pg_t **out, int64_t deadline)
{
    int64_t now = weft_time(NULL);
    int64_t dl = now + p->connect_ns;
    if (deadline >= 0 && deadline < dl)
        dl = deadline;
    p->connecting++;
    weft_pg_t *c = NULL;
    int r = weft__pg_connect(&c, p->conninfo, NULL, 0, 0, dl);
    if (r >= 0 && p->on_connect != NULL) {
        r = p->on_connect(c, p->arg);
        if (r < 0) {
            weft_pg_close(c);
            c = NULL;
        }
    }
    p->connecting--;
    if (r >= 0 && p->closed) {
        weft_pg_close(c);
        r = -ESHUTDOWN;
    }
    if (r < 0)
        return r;
    p->created++;
    c->pool = p;
    c->pool_state = PGP_IN_USE;
    p->in_use++;
    *out = c;
    return 0;
}

int weft_pg_pool_acquire(weft_pg_pool_t *p, weft_pg_t **out, int64_t deadline)
{
    if (p == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    if (p->closed)
        return -ESHUTDOWN;
    p->waiting++;
    int r = weft_sem_acquire_dl(&p->slots, deadline);
    p->waiting--;
    if (r < 0) {
        maybe_drained(p);
        return r;
    }
    if (p->closed) {
        weft_sem_release(&p->slots);
        maybe_drained(p);
        return -ESHUTDOWN;
    }
    while (p->idle != NULL) {
        weft_pg_t *c = p->idle;
        p->idle = c->next;
        c->next = NULL;
        p->nidle--;
        /* The cheap check costs a poll(): skip it for a connection back for under 1 ms (a
         * busy pool); a server that died within that millisecond shows at the first query. */
        int64_t idle_ns = weft_time(NULL) - c->idle_since;
        if ((idle_ns >= 1000000 || !weft_pg_ok(c)) && weft__pg_idle_dead(c)) {
            discard(p, c);
            continue;
        }
        c->pool_state = PGP_IN_USE;
        p->in_use++;
        if (p->check_ns >= 0 && idle_ns > p->check_ns) {
            /* Idle for long: one round trip (an empty query) to be sure it still works. */
            r = weft_pg_exec_dl(c, "", deadline);
            if (r < 0) {
                p->in_use--;
                if (cut_off(r) && weft_pg_ok(c) && !p->closed)
                    put_idle(p, c);
                else
                    discard(p, c);
                if (cut_off(r) || p->closed) {
                    weft_sem_release(&p->slots);
                    maybe_drained(p);
                    return p->closed && !cut_off(r) ? -ESHUTDOWN : r;
                }
                continue;
            }
        }
        *out = c;
        return 0;
    }
    r = open_new(p, out, deadline);
    if (r < 0) {
        weft_sem_release(&p->slots);
        maybe_drained(p);
    }
    return r;
}

/* A released connection's reset, in a task of its own. The job outlives the task: its done
 * callback frees it, and gives the connection's slot back if the task ended without running (it
 * was cancelled before its first step, for example by a shutdown that cancels every task). */
struct reset_job {
    weft_pg_t *c;
    bool ran;
    bool no_callback; /* the callback could not be added (no memory): the task frees the job */
};

static int reset_task(void *arg)
{
    struct reset_job *job = arg;
    job->ran = true;
    weft_pg_t *c = job->c;
    if (job->no_callback)
        free(job);
    weft_pg_pool_t *p = c->pool;
    int64_t dl = weft_time(NULL) + c->cancel_ns;
    int r = 0;
    if (weft_pg_txn_status(c) != PQTRANS_IDLE || c->copy_in || c->copy_out)
        r = weft_pg_exec_dl(c, "ROLLBACK", dl);
    if (r >= 0 && p->reset_sql != NULL)
        r = weft_pg_exec_dl(c, p->reset_sql, dl);
    p->resetting--;
    if (r >= 0 && weft_pg_ok(c) && !p->closed && weft_pg_txn_status(c) == PQTRANS_IDLE)
        put_idle(p, c);
    else
        discard(p, c);
    weft_sem_release(&p->slots);
    maybe_drained(p);
    return 0;
}

static void reset_done(weft_future_t *fut, void *arg)
{
    (void)fut;
    struct reset_job *job = arg;
    if (!job->ran) {
        weft_pg_t *c = job->c;
        weft_pg_pool_t *p = c->pool;
        p->resetting--;
        discard(p, c);
        weft_sem_release(&p->slots);
        maybe_drained(p);
    }
    free(job);
}

static int spawn_reset(weft_pg_t *c)
{
    struct reset_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -ENOMEM;
    job->c = c;
    struct weft_task_opts o = {.name = "weft-pg-reset"};
    weft_task_t *t;
    int r = weft_spawn_opts(&t, reset_task, job, &o);
    if (r < 0) {
        free(job);
        return r;
    }
    if (weft_future_add_done_callback(weft_task_future(t), reset_done, job) < 0)
        job->no_callback = true; /* the task has not run yet: it frees the job when it does */
    weft_task_release(t);
    return 0;
}

int weft_pg_pool_release(weft_pg_pool_t *p, weft_pg_t *c)
{
    if (p == NULL || c == NULL || c->pool != p || c->pool_state != PGP_IN_USE)
        return -EINVAL;
    p->in_use--;
    if (p->closed || c->busy || !weft_pg_ok(c)) {
        discard(p, c);
    } else if (weft_pg_txn_status(c) != PQTRANS_IDLE || c->copy_in || c->copy_out ||
               p->reset_sql != NULL) {
        c->pool_state = PGP_RESETTING;
        p->resetting++;
        if (spawn_reset(c) == 0)
            return 0;
        p->resetting--;
        discard(p, c);
    } else {
        put_idle(p, c);
    }
    weft_sem_release(&p->slots);
    maybe_drained(p);
    return 0;
}

void weft_pg_pool_stats(const weft_pg_pool_t *p, struct weft_pg_pool_stats *st)
{
    if (p == NULL || st == NULL)
        return;
    st->idle = p->nidle;
    st->in_use = p->in_use;
    st->resetting = p->resetting;
    st->connecting = p->connecting;
    st->waiting = p->waiting;
    st->open = p->nidle + p->in_use + p->resetting + p->connecting;
    st->created = p->created;
    st->discarded = p->discarded;
}

int weft_pg_pool_close(weft_pg_pool_t *p, int64_t deadline)
{
    if (p == NULL)
        return 0;
    if (!p->closed) {
        p->closed = true;
        /* Wake every waiter: each sees the pool closed and gives its slot back. */
        for (int i = 0; i < p->waiting; i++)
            weft_sem_release(&p->slots);
    }
    while (p->idle != NULL) {
        weft_pg_t *c = p->idle;
        p->idle = c->next;
        p->nidle--;
        discard(p, c);
    }
    while (pool_busy(p) > 0) {
        weft_event_clear(&p->drained);
        int r = weft_event_wait_dl(&p->drained, deadline);
        if (r < 0)
            return r;
    }
    free(p->conninfo);
    free(p->reset_sql);
    free(p);
    return 0;
}
