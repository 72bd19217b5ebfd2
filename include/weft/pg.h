/*
 * weft-pg: PostgreSQL on libpq's asynchronous API (module libweft-pg, pkg-config weft-pg).
 *
 * Every wait of every call here is a weft_wait_fd_dl() on the connection's socket, so deadlines
 * (the _dl variants), timeout scopes and cancellation work everywhere. Connections are in libpq's
 * non-blocking mode; host names are resolved with weft_getaddrinfo() and handed to libpq as
 * `hostaddr`, so libpq never blocks the loop on DNS. A query cut off by a cancellation or a
 * deadline sends a cancel request to the server from weft's thread pool (libpq 15's PQcancel
 * blocks), drains the connection and leaves it usable; if that does not finish within the
 * connection's cancel timeout (or the task is cancelled again meanwhile), the connection is
 * closed instead. Either way the caller sees -ECANCELED (or -ETIMEDOUT) promptly.
 *
 * Conventions are weft's (weft.h): >= 0 success, a negative errno or a WEFT_PG_E* code on
 * failure. One task at a time may use a connection (-EBUSY otherwise). Nothing is thread-safe;
 * a connection belongs to the loop of the thread that opened it.
 * Docs: docs/postgres.md.
 */
#ifndef WEFT_PG_H
#define WEFT_PG_H

#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes of this module, in a range of their own below the core's (-4095..-4080) so that
 * neither clashes with errno values nor with the core. weft_strerror() does not know them:
 * weft_pg_strerror() names them and falls back to weft_strerror() for every other code.
 */
#define WEFT_PG_ESERVER  -4200 /* the server reported an error: see weft_pg_error_field() */
#define WEFT_PG_ECONNECT -4201 /* connecting failed: the message is in weft_pg_errmsg() / errbuf */
#define WEFT_PG_ESTATE   -4202 /* the connection is not in a state for this call (e.g. no COPY) */

/* weft_strerror() for this module's codes too. Never NULL. Thread-safe. */
WEFT_EXTERN const char *weft_pg_strerror(int err);

typedef struct weft_pg weft_pg_t;               /* one connection */
typedef struct weft_pg_result weft_pg_result_t; /* one query's result */
typedef struct weft_pg_pool weft_pg_pool_t;     /* a pool of connections */

/* libpq's own handles, for what this API does not cover (declared, not included). */
struct pg_conn;
struct pg_result;

/* ---- connections ---- */

/* Options of weft_pg_connect_opts(); zero-initialise and set what you need. */
struct weft_pg_connect_opts {
    char *errbuf;          /* if not NULL: receives why connecting failed (libpq's message, */
    size_t errlen;         /* e.g. 'FATAL:  password authentication failed for user "u"') */
    double cancel_timeout; /* seconds a cut-off query may take to cancel and drain before the
                            * connection is closed instead; 0 = 5 s */
};

/*
 * Open a connection from a conninfo string ("host=/run/postgresql dbname=app") or URI
 * ("postgresql://user:pw@db.example/app"); libpq's defaults and PG* environment variables apply.
 * Host names (in the string or PGHOST) are resolved with weft_getaddrinfo_dl() first and given to
 * libpq as hostaddr (one entry per address, tried in order); Unix socket directories and numeric
 * addresses are used as they are. The caller owns *out (weft_pg_close). `opts` may be NULL.
 * Returns 0, WEFT_PG_ECONNECT (refused, authentication failed, unknown database...: the server's
 * or libpq's message goes to opts->errbuf), a resolver error (WEFT_EAI_NONAME, ...), -EINVAL (a
 * malformed conninfo; message in errbuf), -ENOMEM, -ETIMEDOUT, -ECANCELED (nothing is left open).
 * Suspends.
 */
WEFT_EXTERN int weft_pg_connect(weft_pg_t **out, const char *conninfo);
WEFT_EXTERN int weft_pg_connect_dl(weft_pg_t **out, const char *conninfo, int64_t deadline);
WEFT_EXTERN int weft_pg_connect_opts(weft_pg_t **out, const char *conninfo,
                                     const struct weft_pg_connect_opts *opts, int64_t deadline);

/*
 * Close the connection and free it (libpq sends the server a Terminate message). Pending
 * notifications are dropped. If a task is still inside a call on `c`, that call fails with
 * -EBADF and the memory goes when it returns. NULL is ignored. Does not suspend.
 */
WEFT_EXTERN void weft_pg_close(weft_pg_t *c);

/*
 * True while the connection is usable: open and not broken by a lost server or a cancel that
 * could not drain. A broken connection fails every call with -ECONNRESET; close it.
 */
WEFT_EXTERN bool weft_pg_ok(const weft_pg_t *c);

/*
 * The transaction state as libpq's PQtransactionStatus: 0 idle, 1 active (a query runs),
 * 2 in a transaction block, 3 in a failed transaction block, 4 unknown (broken).
 */
WEFT_EXTERN int weft_pg_txn_status(const weft_pg_t *c);

/* The server's process id for this connection (pg_backend_pid()), or 0. */
WEFT_EXTERN int weft_pg_backend_pid(const weft_pg_t *c);

/* The libpq connection, borrowed (to call libpq directly while no weft-pg call runs on it). */
WEFT_EXTERN struct pg_conn *weft_pg_libpq(weft_pg_t *c);

/* ---- errors ---- */

/*
 * The full message of the last error on `c` (a server error's "ERROR:  ..." text, or libpq's for
 * a connection problem), or "" if none. Valid until the next call on `c`.
 */
WEFT_EXTERN const char *weft_pg_errmsg(const weft_pg_t *c);

/*
 * One field of the last server error on `c` (WEFT_PG_ESERVER), or NULL if it has none: `field`
 * is one of libpq's PG_DIAG_* codes, e.g. WEFT_PG_SQLSTATE ("42601"), WEFT_PG_MESSAGE (the
 * primary message), WEFT_PG_DETAIL, WEFT_PG_HINT, WEFT_PG_SEVERITY. Valid until the next call.
 */
#define WEFT_PG_SEVERITY 'S'
#define WEFT_PG_SQLSTATE 'C'
#define WEFT_PG_MESSAGE  'M'
#define WEFT_PG_DETAIL   'D'
#define WEFT_PG_HINT     'H'
WEFT_EXTERN const char *weft_pg_error_field(const weft_pg_t *c, int field);

/* ---- parameters ---- */

/*
 * One query parameter. Build them with the helpers below. `value` NULL with `length` <= 0 is SQL
 * NULL; `value` NULL with `length` > 0 means the bytes are in `inl` (the helpers for fixed-size
 * binary values do that, so a parameter array needs no other storage). Text parameters
 * (format 0) are NUL-terminated strings; binary ones (format 1) are `length` bytes in the
 * server's binary format. `type` is the parameter's type OID, 0 to let the server infer it.
 * Borrowed only during the call that takes them.
 */
typedef struct weft_pg_param {
    const void *value;
    int length;
    int format;
    uint32_t type;
    unsigned char inl[8];
} weft_pg_param_t;

WEFT_EXTERN weft_pg_param_t weft_pg_null(void);                        /* SQL NULL */
WEFT_EXTERN weft_pg_param_t weft_pg_text(const char *s);               /* text, type inferred */
WEFT_EXTERN weft_pg_param_t weft_pg_int4(int32_t v);                   /* binary int4 */
WEFT_EXTERN weft_pg_param_t weft_pg_int8(int64_t v);                   /* binary int8 */
WEFT_EXTERN weft_pg_param_t weft_pg_float8(double v);                  /* binary float8 */
WEFT_EXTERN weft_pg_param_t weft_pg_bool(bool v);                      /* binary bool */
WEFT_EXTERN weft_pg_param_t weft_pg_bytea(const void *p, size_t n);    /* binary bytea */

/* ---- queries ---- */

/* weft_pg_query_ex() flag: ask for results in binary format (the typed getters read both). */
#define WEFT_PG_BINARY 1

/*
 * Run one SQL statement with parameters $1..$n (extended protocol; `params` may be NULL when n is
 * 0) and wait for its result. With `res` non-NULL the caller receives the result and frees it
 * with weft_pg_result_free(); on an error *res is NULL.
 * Returns the number of rows returned (SELECT, ... RETURNING) or affected (INSERT, UPDATE,
 * DELETE, COPY), capped at INT_MAX, else 0; or WEFT_PG_ESERVER (SQLSTATE, message, detail and
 * hint in weft_pg_error_field()), -ECONNRESET (the server went away, or libpq dropped the
 * connection because it could not follow the protocol; why is in weft_pg_errmsg()), -EBUSY
 * (another task uses the connection), -EINVAL, -ENOMEM, -ETIMEDOUT, -ECANCELED (the statement was
 * cancelled on the server and the connection drained, or the connection closed: check
 * weft_pg_ok()). Suspends.
 */
WEFT_EXTERN int weft_pg_query(weft_pg_t *c, const char *sql, const weft_pg_param_t *params,
                              int n, weft_pg_result_t **res);
WEFT_EXTERN int weft_pg_query_dl(weft_pg_t *c, const char *sql, const weft_pg_param_t *params,
                                 int n, weft_pg_result_t **res, int64_t deadline);
WEFT_EXTERN int weft_pg_query_ex(weft_pg_t *c, const char *sql, const weft_pg_param_t *params,
                                 int n, int flags, weft_pg_result_t **res, int64_t deadline);

/*
 * Run a script of one or more statements separated by ';' (simple protocol, no parameters) and
 * discard the results. Returns what weft_pg_query() returns for the last statement, or the first
 * error (the statements after it do not run). Suspends.
 */
WEFT_EXTERN int weft_pg_exec(weft_pg_t *c, const char *sql);
WEFT_EXTERN int weft_pg_exec_dl(weft_pg_t *c, const char *sql, int64_t deadline);

/*
 * Prepare statement `name` ("" for the unnamed one) from `sql` with `n` parameters whose type
 * OIDs are `types` (NULL or 0 entries: inferred). Returns 0 or an error as weft_pg_query().
 * Suspends.
 */
WEFT_EXTERN int weft_pg_prepare(weft_pg_t *c, const char *name, const char *sql, int n,
                                const uint32_t *types);
WEFT_EXTERN int weft_pg_prepare_dl(weft_pg_t *c, const char *name, const char *sql, int n,
                                   const uint32_t *types, int64_t deadline);

/* Run prepared statement `name` with parameters: returns as weft_pg_query(). Suspends. */
WEFT_EXTERN int weft_pg_query_prepared(weft_pg_t *c, const char *name,
                                       const weft_pg_param_t *params, int n,
                                       weft_pg_result_t **res);
WEFT_EXTERN int weft_pg_query_prepared_ex(weft_pg_t *c, const char *name,
                                          const weft_pg_param_t *params, int n, int flags,
                                          weft_pg_result_t **res, int64_t deadline);

/*
 * A function that receives one row of weft_pg_query_rows(): `row` is a one-row result, valid only
 * during the call (the getters read it; do not free it). Return >= 0 for the next row, or a
 * negative value to stop: the rest of the statement is cancelled and the value becomes the call's
 * return. It may suspend, but must not use the connection (that returns -EBUSY).
 */
typedef int (*weft_pg_row_fn)(weft_pg_result_t *row, void *arg);

/*
 * Run one SQL statement like weft_pg_query_ex() and hand its rows to `on_row` one at a time as
 * they arrive (libpq's single-row mode): memory stays at one row however long the answer, at
 * the price of a libpq result per row (use weft_pg_query for answers that fit in memory). `flags`:
 * WEFT_PG_BINARY or 0. Rows reach `on_row` until the end, an error, or `on_row` stops them; an
 * error after some rows (a division by zero in row 500) comes after those rows were handed over.
 * Returns the number of rows handed over; or on_row's negative value; or an error as
 * weft_pg_query() (-ETIMEDOUT, -ECANCELED: the statement is cancelled on the server and the
 * connection drained, or closed: check weft_pg_ok()). WEFT_PG_ESTATE for a COPY. Suspends.
 */
WEFT_EXTERN int weft_pg_query_rows(weft_pg_t *c, const char *sql, const weft_pg_param_t *params,
                                   int n, int flags, weft_pg_row_fn on_row, void *arg,
                                   int64_t deadline);

/* ---- results (none of these suspends; indexes start at 0) ---- */

/* Free a result. NULL is ignored. */
WEFT_EXTERN void weft_pg_result_free(weft_pg_result_t *r);

WEFT_EXTERN int weft_pg_nrows(const weft_pg_result_t *r);
WEFT_EXTERN int weft_pg_ncols(const weft_pg_result_t *r);
/* A column's name (borrowed from r), or NULL out of range. */
WEFT_EXTERN const char *weft_pg_colname(const weft_pg_result_t *r, int col);
/* The index of the column named `name`, or -1. */
WEFT_EXTERN int weft_pg_colnum(const weft_pg_result_t *r, const char *name);
/* A column's type OID (23 int4, 20 int8, 25 text, 17 bytea, 701 float8, ...), or 0. */
WEFT_EXTERN uint32_t weft_pg_coltype(const weft_pg_result_t *r, int col);
/* The command tag ("SELECT 3", "INSERT 0 1", "COPY 10"), borrowed from r. */
WEFT_EXTERN const char *weft_pg_cmd_tag(const weft_pg_result_t *r);
/* Rows affected by INSERT/UPDATE/DELETE/COPY/SELECT... per the command tag, or 0. */
WEFT_EXTERN int64_t weft_pg_affected(const weft_pg_result_t *r);

/* True for SQL NULL (and for a cell out of range). */
WEFT_EXTERN bool weft_pg_isnull(const weft_pg_result_t *r, int row, int col);
/*
 * The cell as the server sent it (text, NUL-terminated; binary-format cells are raw bytes), NULL
 * for SQL NULL or out of range; borrowed from r. *len (may be NULL) receives its length.
 */
WEFT_EXTERN const char *weft_pg_value(const weft_pg_result_t *r, int row, int col, size_t *len);

/*
 * Typed getters: read a cell of a suitable type, in text or binary format. Return 0, -ENODATA
 * for SQL NULL, -EINVAL (row/col out of range or a value that is not of that kind), -ERANGE.
 * get_int reads int2/int4/int8 (and any integer text); get_double float4/float8/numeric and
 * integers; get_bool bool; get_bytea decodes bytea (hex text or binary) into memory owned by `r`
 * (valid until it is freed); get_text is weft_pg_value() as a getter.
 */
WEFT_EXTERN int weft_pg_get_int(weft_pg_result_t *r, int row, int col, int64_t *out);
WEFT_EXTERN int weft_pg_get_double(weft_pg_result_t *r, int row, int col, double *out);
WEFT_EXTERN int weft_pg_get_bool(weft_pg_result_t *r, int row, int col, bool *out);
WEFT_EXTERN int weft_pg_get_text(weft_pg_result_t *r, int row, int col, const char **out,
                                 size_t *len);
WEFT_EXTERN int weft_pg_get_bytea(weft_pg_result_t *r, int row, int col, const void **out,
                                  size_t *len);

/* The libpq result, borrowed. */
WEFT_EXTERN struct pg_result *weft_pg_result_libpq(weft_pg_result_t *r);

/* ---- transactions ---- */

/*
 * Run `fn(c, arg)` in a transaction: `begin` (NULL = "BEGIN"; e.g. "BEGIN ISOLATION LEVEL
 * SERIALIZABLE"), then COMMIT if fn returned >= 0, else ROLLBACK (also when fn ended with
 * -ECANCELED or -ETIMEDOUT: the rollback still runs, and if it cannot, the connection is closed so
 * that the server rolls back). Returns fn's result, or the error of BEGIN or COMMIT (a COMMIT that
 * fails rolls back: e.g. a serialization failure gives WEFT_PG_ESERVER with SQLSTATE 40001).
 * Suspends.
 */
WEFT_EXTERN int weft_pg_transaction(weft_pg_t *c, const char *begin,
                                    int (*fn)(weft_pg_t *c, void *arg), void *arg);

/* ---- COPY ---- */

/*
 * COPY ... FROM STDIN: start it with weft_pg_copy_in_begin(c, "COPY t FROM STDIN"), send the data
 * in pieces of any size with weft_pg_copy_in_write() (each returns once libpq's buffer is flushed
 * to the socket, so memory stays bounded by one piece), then finish with weft_pg_copy_in_end():
 * `abort_msg` NULL commits, else the server aborts the COPY with that message. end returns the
 * number of rows copied or an error (WEFT_PG_ESERVER for bad data). Suspend. begin returns
 * WEFT_PG_ESTATE if the statement is not a COPY FROM STDIN; write and end return it outside one.
 * A cancellation or deadline in the middle aborts the COPY (the connection stays usable if the
 * abort drains in time).
 */
WEFT_EXTERN int weft_pg_copy_in_begin(weft_pg_t *c, const char *sql, int64_t deadline);
WEFT_EXTERN int weft_pg_copy_in_write(weft_pg_t *c, const void *data, size_t n,
                                      int64_t deadline);
WEFT_EXTERN int weft_pg_copy_in_end(weft_pg_t *c, const char *abort_msg, int64_t deadline);

/*
 * COPY ... TO STDOUT: start with weft_pg_copy_out_begin(c, "COPY t TO STDOUT"), then call
 * weft_pg_copy_out_read() until it returns 0: each call gives one row's data in *data (valid until
 * the next call on `c`) and returns its length (> 0); 0 is the end (the COPY succeeded), < 0 an
 * error. Memory stays bounded by libpq's input buffer. Suspend. Stopping early (cancellation,
 * deadline, or simply not reading to the end and calling another query) cancels the COPY.
 */
WEFT_EXTERN int weft_pg_copy_out_begin(weft_pg_t *c, const char *sql, int64_t deadline);
WEFT_EXTERN ssize_t weft_pg_copy_out_read(weft_pg_t *c, const char **data, int64_t deadline);

/* ---- LISTEN / NOTIFY ---- */

/* A notification: heap memory freed with weft_pg_notify_free(). */
typedef struct weft_pg_notify {
    const char *channel;
    const char *payload; /* "" if none */
    int pid;             /* the notifying server process */
} weft_pg_notify_t;

/*
 * Wait for the next notification on a channel this connection LISTENs to (run "LISTEN name"
 * first). Notifications received during other calls are queued and returned first, in order.
 * Returns 0 with *out set, -ECONNRESET, -EBUSY, -ETIMEDOUT, -ECANCELED (no notification is lost:
 * one that arrives later is kept for the next call). Suspends when none is queued.
 */
WEFT_EXTERN int weft_pg_notify_wait(weft_pg_t *c, weft_pg_notify_t **out, int64_t deadline);
WEFT_EXTERN void weft_pg_notify_free(weft_pg_notify_t *n);

/* ---- pipeline mode (batches) ---- */

/*
 * Queue one statement inside a weft_pg_pipeline() `queue` callback (nothing waits). Returns 0,
 * WEFT_PG_ESTATE outside a pipeline, -ENOMEM, -EINVAL.
 */
WEFT_EXTERN int weft_pg_pipeline_queue(weft_pg_t *c, const char *sql,
                                       const weft_pg_param_t *params, int n);
WEFT_EXTERN int weft_pg_pipeline_queue_prepared(weft_pg_t *c, const char *name,
                                                const weft_pg_param_t *params, int n);

/*
 * Send `n` statements in pipeline mode: `queue(c, i, arg)` is called for i = 0..n-1 in order and
 * queues statement i with weft_pg_pipeline_queue*(); they go out in large writes while results
 * come back, with no round trip per statement, and memory stays bounded however large n is.
 * `on_result(c, i, r, arg)` (may be NULL) sees statement i's result (borrowed for the call) as it
 * arrives; a negative return stops queueing and becomes the call's result. The batch ends with one
 * Sync, so it runs as one implicit transaction: the first failing statement aborts the rest and
 * rolls back the earlier ones (unless the batch holds its own BEGIN/COMMIT).
 * Returns 0, the first error (WEFT_PG_ESERVER with the failing statement's fields, a callback's
 * error), -ECONNRESET, -EBUSY, -ETIMEDOUT, -ECANCELED. Suspends.
 */
WEFT_EXTERN int weft_pg_pipeline(weft_pg_t *c, size_t n,
                                 int (*queue)(weft_pg_t *c, size_t i, void *arg),
                                 int (*on_result)(weft_pg_t *c, size_t i, weft_pg_result_t *r,
                                                  void *arg),
                                 void *arg, int64_t deadline);

/* ---- pool ---- */

/* Options of a pool; zero-initialise and set what you need. */
struct weft_pg_pool_opts {
    const char *conninfo;  /* copied */
    int min_size;          /* connections opened by weft_pg_pool_new(); 0 = none */
    int max_size;          /* at most this many open at once; 0 = 10 */
    double check_idle;     /* a connection idle longer than this many seconds is checked with a
                            * round trip before it is handed out; 0 = 5 s, < 0 = never (a cheap
                            * check that the server did not hang up always runs) */
    double connect_timeout; /* bound on opening one connection; 0 = 10 s */
    const char *reset_sql; /* run on release before reuse (e.g. "DISCARD ALL"); NULL = only
                            * ROLLBACK a connection released inside a transaction; copied */
    /* Run on each new connection before first use (prepare statements, SET ...); < 0 discards it. */
    int (*on_connect)(weft_pg_t *c, void *arg);
    void *arg;
};

/*
 * Create a pool and open its min_size connections. The caller owns *out (weft_pg_pool_close).
 * Returns 0, the first connection's error (nothing is left open), -EINVAL, -ENOMEM. Suspends.
 */
WEFT_EXTERN int weft_pg_pool_new(weft_pg_pool_t **out, const struct weft_pg_pool_opts *opts);

/*
 * Take a connection: an idle one (checked as opts.check_idle says; a dead one is discarded and
 * replaced), a new one while fewer than max_size are open, else wait in FIFO order for one to be
 * released. The caller owns *out until weft_pg_pool_release(). Cancellation or the deadline at
 * any point loses nothing: a connection being checked goes back to the pool, one being opened is
 * closed, a slot being waited for passes to the next waiter.
 * Returns 0, -ETIMEDOUT, -ECANCELED, -ESHUTDOWN (pool closed), the connect error. Suspends.
 */
WEFT_EXTERN int weft_pg_pool_acquire(weft_pg_pool_t *p, weft_pg_t **out, int64_t deadline);

/*
 * Give a connection back. Does not suspend: a broken connection is closed (its slot freed); one
 * left inside a transaction (or with reset_sql set) is reset by a background task of the pool
 * (ROLLBACK, reset_sql) before it becomes idle again, or closed if that fails. Returns 0 or
 * -EINVAL (NULL, or a connection that is not this pool's checked-out one).
 */
WEFT_EXTERN int weft_pg_pool_release(weft_pg_pool_t *p, weft_pg_t *c);

/* Counts of the pool's connections. */
struct weft_pg_pool_stats {
    int open;      /* every open connection: idle + in_use + resetting + connecting */
    int idle;
    int in_use;    /* handed out and not released */
    int resetting; /* released, being reset in the background */
    int connecting;
    int waiting;   /* tasks waiting in acquire */
    uint64_t created, discarded; /* totals since the pool was created */
};
WEFT_EXTERN void weft_pg_pool_stats(const weft_pg_pool_t *p, struct weft_pg_pool_stats *st);

/*
 * Close the pool: acquires fail with -ESHUTDOWN from now on, idle connections are closed, then
 * wait (bounded by `deadline`) for the connections in use to be released and the resets to end;
 * each is closed as it comes back. Returns 0 with the pool freed, or -ETIMEDOUT / -ECANCELED with
 * the pool closed but not freed (call again). NULL is ignored. Suspends.
 */
WEFT_EXTERN int weft_pg_pool_close(weft_pg_pool_t *p, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PG_H */
