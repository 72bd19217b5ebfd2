/*
 * weft-pg internals shared by conn.c (connections, queries, COPY, NOTIFY, pipeline) and pool.c.
 */
#ifndef WEFT_PG_INTERNAL_H
#define WEFT_PG_INTERNAL_H

#include <weft/pg.h>

#include <libpq-fe.h>

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
    bool read_since_send; /* input was read since the last statement went out (conn.c) */
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
    uint64_t oid_cols;     /* bit c: column c (< 64) is of type oid */
};

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
