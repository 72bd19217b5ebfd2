/*
 * weft-pg internals shared by its files: conn.c (connecting, a call's entry and exit, closing),
 * error.c (the last error), wait.c (the socket's waits), cancel.c (recovering a cut-off call),
 * param.c, query.c (statements and their results), result.c (the getters), copy.c, notify.c,
 * pipeline.c and pool.c.
 */
#ifndef WEFT_PG_INTERNAL_H
#define WEFT_PG_INTERNAL_H

#include <weft/pg.h>

#include <libpq-fe.h>
#include <stdlib.h>

/* Where a pool's connection is (pool.c). */
enum pg_pool_state { PGP_NONE, PGP_IDLE, PGP_IN_USE, PGP_RESETTING };

struct weft_pg {
    PGconn *pq;          /* NULL once broken or closed */
    int fd;              /* our dup of libpq's socket: the fd weft watches (see conn.c) */
    int pqfd;            /* libpq's socket number the dup was made from */
    bool busy;           /* a task is inside a call */
    bool close_pending;  /* weft_pg_close() ran while busy: free on the way out */
    bool broken;         /* server gone or cancel failed: every call fails with -ECONNRESET */
    bool copy_in;        /* between copy_in_begin and copy_in_end */
    bool copy_out;       /* between copy_out_begin and the read that returned 0 */
    bool pipeline;       /* in libpq's pipeline mode */
    bool synced;         /* pipeline: the Sync was queued */
    bool sync_seen;      /* pipeline: its PGRES_PIPELINE_SYNC was read */
    bool read_since_send; /* input was read since the last statement went out (wait.c) */
    bool fatal_notice;   /* the server sent a FATAL message outside a query: it is leaving */
    int64_t cancel_ns;   /* bound on cancel + drain */
    PGresult *err;       /* the last server error */
    char *errmsg;        /* the last error's full text (malloc), or NULL */
    char *copybuf;       /* the row weft_pg_copy_out_read() returned last (PQfreemem) */

    /* pool bookkeeping (pool.c) */
    weft_pg_pool_t *pool;
    weft_pg_t *next;     /* in the pool's idle list */
    int pool_state;      /* enum pg_pool_state */
    int64_t idle_since;  /* weft_time() when it became idle */
};

struct weft_pg_result {
    PGresult *res;
    struct pg_blob *blobs; /* bytea values decoded by weft_pg_get_bytea() */
    int nrows, ncols;      /* PQntuples, PQnfields: read once (the getters check every cell) */
    bool all_binary;       /* every column in binary format (PQbinaryTuples) */
    bool direct;           /* cells read from libpq's row array (result.c), not PQgetvalue */
    uint64_t oid_cols;     /* bit c: column c (< 64) is of type oid */
};

/* Tests: read cells through libpq's calls only (false), or directly where that is safe (true,
 * the default). Applies to results made after the call. Returns whether direct reads are safe
 * with this libpq (result.c's probe passed). */
bool weft__pg_direct_cells(bool on);

/* ---- errors (error.c) ---- */

/* Forget the last error. */
static inline void weft__pg_clear_err(weft_pg_t *c)
{
    if (c->err != NULL) {
        PQclear(c->err);
        c->err = NULL;
    }
    free(c->errmsg);
    c->errmsg = NULL;
}
/* Keep `msg` (trailing newlines dropped) as the connection's last error text. */
void weft__pg_set_errmsg(weft_pg_t *c, const char *msg);
/* Take `res` (a PGRES_FATAL_ERROR) as the last error. Returns WEFT_PG_ESERVER, or -ECONNRESET
 * when libpq made it while dropping the connection (error.c). */
int weft__pg_set_err_result(weft_pg_t *c, PGresult *res);

/* ---- the connection (conn.c) ---- */

/* Free the connection and everything it holds. */
void weft__pg_free(weft_pg_t *c);

/*
 * Every call runs between these two (inline: a query runs them once each). Enter: -EINVAL,
 * -EBUSY (another task is in a call), -ECONNRESET (broken), or 0 with the last error forgotten.
 * Leave: `r`, or -EBADF if the connection was closed meanwhile (it is freed then).
 */
static inline int weft__pg_enter(weft_pg_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    if (c->broken || c->pq == NULL)
        return -ECONNRESET;
    c->busy = true;
    weft__pg_clear_err(c);
    return 0;
}

static inline int weft__pg_leave(weft_pg_t *c, int r)
{
    c->busy = false;
    if (c->close_pending) {
        weft__pg_free(c);
        return -EBADF;
    }
    return r;
}
/* Break the connection for good: remember why, close the socket, free libpq's side. Returns err. */
int weft__pg_break(weft_pg_t *c, int err);
/* libpq reported a failure on the socket: the server is gone. Returns -ECONNRESET. */
int weft__pg_lost(weft_pg_t *c);

/* ---- waiting on the socket (wait.c) ---- */

/* Wait for `events`: at once if they are there already. Returns the events or an error. */
int weft__pg_wait(weft_pg_t *c, int events, int64_t dl);
/* Read what has arrived into libpq. Returns 0 or -ECONNRESET. */
int weft__pg_consume(weft_pg_t *c);
/*
 * Wait for more input and read it. The zero-timeout poll is needed only once this call has read:
 * right after a statement was sent, everything the server had sent before was read to its end
 * (ReadyForQuery), so a reply can only come as new data, which weft reports.
 */
static inline int weft__pg_read_more(weft_pg_t *c, int64_t dl)
{
    int r = c->read_since_send || c->fd < 0 ? weft__pg_wait(c, WEFT_READABLE, dl)
                                            : weft_wait_fd_dl(c->fd, WEFT_READABLE, dl);
    if (r < 0)
        return r;
    return weft__pg_consume(c);
}
/* Wait until a result can be taken without blocking (PQisBusy false). */
static inline int weft__pg_wait_result(weft_pg_t *c, int64_t dl)
{
    while (PQisBusy(c->pq)) {
        int r = weft__pg_read_more(c, dl);
        if (r < 0)
            return r;
    }
    return 0;
}
/* Send what libpq has buffered, reading meanwhile (the server may be writing to us). */
int weft__pg_flush(weft_pg_t *c, int64_t dl);

/* ---- cut-off calls (cancel.c) ---- */

/* Did a wait end because the task was cancelled or its deadline passed? */
static inline bool weft__pg_cut_off(int r)
{
    return r == -ECANCELED || r == -ETIMEDOUT;
}

/* Bring a connection whose call was cut off back to idle, or close it. */
void weft__pg_recover(weft_pg_t *c);
/* Read and drop results until idle (or the pipeline's Sync); with `nowait`, 1 if that would wait. */
int weft__pg_drain(weft_pg_t *c, bool nowait, int64_t dl);
/* Discard COPY TO data until its end. */
int weft__pg_discard_copy_out(weft_pg_t *c, int64_t dl);
/* A call other than the COPY ones while a COPY is open ends the COPY first. */
static inline int weft__pg_end_copy(weft_pg_t *c)
{
    if (!c->copy_in && !c->copy_out)
        return 0;
    weft__pg_recover(c);
    return c->broken ? -ECONNRESET : 0;
}

/* Enter a call that is not a COPY one: weft__pg_enter, then end a COPY left open (leaving
 * again if that fails). Returns 0 or an error, as weft__pg_enter and weft__pg_leave. */
static inline int weft__pg_begin(weft_pg_t *c)
{
    int r = weft__pg_enter(c);
    if (r < 0)
        return r;
    r = weft__pg_end_copy(c);
    return r < 0 ? weft__pg_leave(c, r) : 0;
}

/* ---- statements (query.c) ---- */

enum pg_send_kind { SEND_PARAMS, SEND_PREPARED, SEND_SIMPLE, SEND_PREPARE };

/* Hand one statement to libpq (no waiting). Returns 0 or an error. */
int weft__pg_send(weft_pg_t *c, int kind, const char *sql, const weft_pg_param_t *params, int n,
                  int flags, const uint32_t *types);
/* Read every result of the statement(s) sent; keep the last good one in *out (if not NULL). */
int weft__pg_collect(weft_pg_t *c, PGresult **out, int64_t dl);

/* ---- results (result.c) ---- */

/* Wrap `res` in `r` (result.c). */
void weft__pg_result_init(weft_pg_result_t *r, PGresult *res);

/* Opened and closed by pool.c through these. */
int weft__pg_connect(weft_pg_t **out, const char *conninfo, char *errbuf, size_t errlen,
                     double cancel_timeout, int64_t deadline);
/* True if the idle connection's socket shows the server hung up or sent something: read it. */
bool weft__pg_idle_dead(weft_pg_t *c);

/* Free a result's contents (its PGresult and decoded bytea values), not the struct (result.c). */
void weft__pg_result_clear(weft_pg_result_t *r);

#endif /* WEFT_PG_INTERNAL_H */
