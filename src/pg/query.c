/*
 * Running PostgreSQL statements: sending one to libpq, collecting its results, the query, exec and
 * prepare calls, and transactions.
 */
#include "pg_internal.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* libpq's four parameter arrays, on the stack for a few parameters. */
#define SMALL_PARAMS 16
struct pq_params {
    const char *vals[SMALL_PARAMS];
    int lens[SMALL_PARAMS];
    int fmts[SMALL_PARAMS];
    Oid types[SMALL_PARAMS];
    const char **v;
    int *l, *f;
    Oid *t;
};

static int params_make(struct pq_params *pp, const weft_pg_param_t *params, int n)
{
    if (n < 0 || (n > 0 && params == NULL))
        return -EINVAL;
    if (n <= SMALL_PARAMS) {
        pp->v = pp->vals;
        pp->l = pp->lens;
        pp->f = pp->fmts;
        pp->t = pp->types;
    } else {
        pp->v = malloc((size_t)n * sizeof(*pp->v));
        pp->l = malloc((size_t)n * sizeof(*pp->l));
        pp->f = malloc((size_t)n * sizeof(*pp->f));
        pp->t = malloc((size_t)n * sizeof(*pp->t));
        if (!pp->v || !pp->l || !pp->f || !pp->t) {
            free(pp->v);
            free(pp->l);
            free(pp->f);
            free(pp->t);
            return -ENOMEM;
        }
    }
    for (int i = 0; i < n; i++) {
        const weft_pg_param_t *p = &params[i];
        if (p->value != NULL)
            pp->v[i] = p->value;
        else if (p->length > 0 && p->length <= (int)sizeof(p->inl))
            pp->v[i] = (const char *)p->inl;
        else
            pp->v[i] = NULL;
        pp->l[i] = p->length < 0 ? 0 : p->length;
        pp->f[i] = p->format != 0;
        pp->t[i] = p->type;
    }
    return 0;
}

static void params_free(struct pq_params *pp)
{
    if (pp->v != pp->vals) {
        free(pp->v);
        free(pp->l);
        free(pp->f);
        free(pp->t);
    }
}

/* Hand one statement to libpq (no waiting). Returns 0 or an error. */
int weft__pg_send(weft_pg_t *c, int kind, const char *sql, const weft_pg_param_t *params, int n,
                  int flags, const uint32_t *types)
{
    if (sql == NULL)
        return -EINVAL;
    int ok;
    (void)types;
    if (kind == SEND_SIMPLE) {
        ok = PQsendQuery(c->pq, sql);
    } else {
        struct pq_params pp;
        int r = params_make(&pp, params, n);
        if (r < 0)
            return r;
        int rf = (flags & WEFT_PG_BINARY) ? 1 : 0;
        if (kind == SEND_PARAMS)
            ok = PQsendQueryParams(c->pq, sql, n, pp.t, pp.v, pp.l, pp.f, rf);
        else
            ok = PQsendQueryPrepared(c->pq, sql, n, pp.v, pp.l, pp.f, rf);
        params_free(&pp);
    }
    if (!ok) {
        if (PQstatus(c->pq) != CONNECTION_OK)
            return weft__pg_lost(c);
        weft__pg_set_errmsg(c, PQerrorMessage(c->pq));
        return -EINVAL;
    }
    return 0;
}

/* The row count a statement reports: rows returned, or affected per its command tag. */
static int result_count(PGresult *res)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return PQntuples(res);
    const char *t = PQcmdTuples(res);
    if (t == NULL || *t == '\0')
        return 0;
    long long v = strtoll(t, NULL, 10);
    return v > INT_MAX ? INT_MAX : (int)v;
}

/*
 * Read every result of the statement(s) sent: keep the last good one (or the first error), until
 * PQgetResult gives NULL. A COPY the caller did not ask for is ended with an error.
 */
int weft__pg_collect(weft_pg_t *c, PGresult **out, int64_t dl)
{
    PGresult *last = NULL;
    int rc = 0;
    for (;;) {
        int r = weft__pg_wait_result(c, dl);
        if (r < 0) {
            PQclear(last);
            return r;
        }
        PGresult *res = PQgetResult(c->pq);
        if (res == NULL)
            break;
        switch (PQresultStatus(res)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            if (rc == 0) {
                PQclear(last);
                last = res;
            } else {
                PQclear(res);
            }
            break;
        case PGRES_FATAL_ERROR:
            if (rc == 0)
                rc = weft__pg_set_err_result(c, res);
            else
                PQclear(res);
            break;
        case PGRES_COPY_IN:
            PQclear(res);
            weft__pg_set_errmsg(c, "COPY FROM STDIN needs weft_pg_copy_in_begin()");
            rc = WEFT_PG_ESTATE;
            if (PQputCopyEnd(c->pq, "COPY FROM STDIN needs weft_pg_copy_in_begin()") < 0 ||
                (r = weft__pg_flush(c, dl)) < 0) {
                PQclear(last);
                return r < 0 ? r : weft__pg_lost(c);
            }
            break;
        case PGRES_COPY_OUT:
            PQclear(res);
            weft__pg_set_errmsg(c, "COPY TO STDOUT needs weft_pg_copy_out_begin()");
            rc = WEFT_PG_ESTATE;
            c->copy_out = true;
            if ((r = weft__pg_discard_copy_out(c, dl)) < 0) {
                PQclear(last);
                return r;
            }
            break;
        default:
            weft__pg_set_errmsg(c, PQresultErrorMessage(res));
            PQclear(res);
            if (rc == 0)
                rc = -EPROTO;
            break;
        }
    }
    if (rc < 0) {
        PQclear(last);
        return rc;
    }
    int count = last != NULL ? result_count(last) : 0;
    if (out != NULL)
        *out = last;
    else
        PQclear(last);
    return count;
}

static int wrap_result(PGresult *res, weft_pg_result_t **out)
{
    if (res == NULL) {
        *out = NULL;
        return 0;
    }
    weft_pg_result_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        PQclear(res);
        *out = NULL;
        return -ENOMEM;
    }
    weft__pg_result_init(r, res);
    *out = r;
    return 0;
}

/* One statement from start to end, with recovery if it is cut off. */
static int pg_run(weft_pg_t *c, int kind, const char *sql, const weft_pg_param_t *params, int n,
                  int flags, const char *prep_name, weft_pg_result_t **res, int64_t dl)
{
    if (res != NULL)
        *res = NULL;
    int r = weft__pg_begin(c);
    if (r < 0)
        return r;
    if (kind == SEND_PREPARE) {
        if (n < 0 || sql == NULL || prep_name == NULL)
            return weft__pg_leave(c, -EINVAL);
        if (!PQsendPrepare(c->pq, prep_name, sql, n, (const Oid *)params)) {
            if (PQstatus(c->pq) != CONNECTION_OK)
                return weft__pg_leave(c, weft__pg_lost(c));
            weft__pg_set_errmsg(c, PQerrorMessage(c->pq));
            return weft__pg_leave(c, -EINVAL);
        }
    } else {
        r = weft__pg_send(c, kind, sql, params, n, flags, NULL);
        if (r < 0)
            return weft__pg_leave(c, r);
    }
    c->read_since_send = false;
    r = weft__pg_flush(c, dl);
    PGresult *out = NULL;
    if (r >= 0)
        r = weft__pg_collect(c, res != NULL ? &out : NULL, dl);
    if (weft__pg_cut_off(r))
        weft__pg_recover(c);
    if (r >= 0 && res != NULL) {
        int w = wrap_result(out, res);
        if (w < 0)
            r = w;
    }
    return weft__pg_leave(c, r);
}

int weft_pg_query_ex(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n,
                     int flags, weft_pg_result_t **res, int64_t deadline)
{
    return pg_run(c, SEND_PARAMS, sql, params, n, flags, NULL, res, deadline);
}

int weft_pg_query_dl(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n,
                     weft_pg_result_t **res, int64_t deadline)
{
    return pg_run(c, SEND_PARAMS, sql, params, n, 0, NULL, res, deadline);
}

int weft_pg_query(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n,
                  weft_pg_result_t **res)
{
    return pg_run(c, SEND_PARAMS, sql, params, n, 0, NULL, res, WEFT_NO_DEADLINE);
}

int weft_pg_exec_dl(weft_pg_t *c, const char *sql, int64_t deadline)
{
    return pg_run(c, SEND_SIMPLE, sql, NULL, 0, 0, NULL, NULL, deadline);
}

int weft_pg_exec(weft_pg_t *c, const char *sql)
{
    return pg_run(c, SEND_SIMPLE, sql, NULL, 0, 0, NULL, NULL, WEFT_NO_DEADLINE);
}

int weft_pg_prepare_dl(weft_pg_t *c, const char *name, const char *sql, int n,
                       const uint32_t *types, int64_t deadline)
{
    static_assert(sizeof(Oid) == sizeof(uint32_t), "Oid is 32 bits");
    int r = pg_run(c, SEND_PREPARE, sql, (const weft_pg_param_t *)(const void *)types, n, 0,
                   name, NULL, deadline);
    return r > 0 ? 0 : r;
}

int weft_pg_prepare(weft_pg_t *c, const char *name, const char *sql, int n,
                    const uint32_t *types)
{
    return weft_pg_prepare_dl(c, name, sql, n, types, WEFT_NO_DEADLINE);
}

int weft_pg_query_prepared_ex(weft_pg_t *c, const char *name, const weft_pg_param_t *params,
                              int n, int flags, weft_pg_result_t **res, int64_t deadline)
{
    return pg_run(c, SEND_PREPARED, name, params, n, flags, NULL, res, deadline);
}

int weft_pg_query_prepared(weft_pg_t *c, const char *name, const weft_pg_param_t *params, int n,
                           weft_pg_result_t **res)
{
    return pg_run(c, SEND_PREPARED, name, params, n, 0, NULL, res, WEFT_NO_DEADLINE);
}

/* ---- transactions ---- */

int weft_pg_transaction(weft_pg_t *c, const char *begin, int (*fn)(weft_pg_t *c, void *arg),
                        void *arg)
{
    if (c == NULL || fn == NULL)
        return -EINVAL;
    int r = weft_pg_exec(c, begin != NULL ? begin : "BEGIN");
    if (r < 0)
        return r;
    int fr = fn(c, arg);
    if (fr >= 0) {
        r = weft_pg_exec(c, "COMMIT");
        if (r >= 0 && weft_pg_txn_status(c) != PQTRANS_IDLE)
            r = -EPROTO;
        return r < 0 ? r : fr;
    }
    if (c->busy)
        return fr; /* fn returned while another task uses c: nothing safe to do */
    /* Keep fn's error (its SQLSTATE) over the rollback's empty one. */
    PGresult *keep = c->err;
    char *msg = c->errmsg;
    c->err = NULL;
    c->errmsg = NULL;
    r = weft_pg_ok(c) ? weft_pg_exec_dl(c, "ROLLBACK", weft_time(NULL) + c->cancel_ns) : 0;
    if (r < 0 && weft_pg_ok(c))
        weft__pg_break(c, r); /* the server rolls back when the connection goes */
    weft__pg_clear_err(c);
    c->err = keep;
    c->errmsg = msg;
    return fr;
}
