/*
 * PostgreSQL COPY FROM STDIN and COPY TO STDOUT, streamed.
 */
#include "pg_internal.h"

#include <stdlib.h>

/* Send `sql` and wait for its first result, which must have status `want`. */
static int copy_begin(weft_pg_t *c, const char *sql, ExecStatusType want, int64_t dl)
{
    int r = weft__pg_begin(c);
    if (r < 0)
        return r;
    r = weft__pg_send(c, SEND_PARAMS, sql, NULL, 0, 0, NULL);
    if (r >= 0)
        r = weft__pg_flush(c, dl);
    if (r >= 0)
        r = weft__pg_wait_result(c, dl);
    if (r >= 0) {
        PGresult *res = PQgetResult(c->pq);
        ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
        if (st == want) {
            PQclear(res);
            if (want == PGRES_COPY_IN)
                c->copy_in = true;
            else
                c->copy_out = true;
            return weft__pg_leave(c, 0);
        }
        /* Not the COPY asked for: read it to the end and report. */
        if (st == PGRES_FATAL_ERROR) {
            weft__pg_set_err_result(c, res);
            r = weft__pg_drain(c, false, dl);
            if (r >= 0)
                r = WEFT_PG_ESERVER;
        } else {
            PQclear(res);
            weft__pg_set_errmsg(c, "not a COPY of this direction");
            r = weft__pg_drain(c, false, dl);
            if (r >= 0)
                r = WEFT_PG_ESTATE;
        }
    }
    if (weft__pg_cut_off(r))
        weft__pg_recover(c);
    return weft__pg_leave(c, r);
}

int weft_pg_copy_in_begin(weft_pg_t *c, const char *sql, int64_t deadline)
{
    return copy_begin(c, sql, PGRES_COPY_IN, deadline);
}

int weft_pg_copy_out_begin(weft_pg_t *c, const char *sql, int64_t deadline)
{
    return copy_begin(c, sql, PGRES_COPY_OUT, deadline);
}

int weft_pg_copy_in_write(weft_pg_t *c, const void *data, size_t n, int64_t deadline)
{
    if (c == NULL || (data == NULL && n > 0))
        return -EINVAL;
    int r = weft__pg_enter(c);
    if (r < 0)
        return r;
    if (!c->copy_in)
        return weft__pg_leave(c, WEFT_PG_ESTATE);
    const char *p = data;
    while (n > 0 && r >= 0) {
        int chunk = n > (1u << 20) ? (1 << 20) : (int)n;
        int k = PQputCopyData(c->pq, p, chunk);
        if (k < 0) {
            r = weft__pg_lost(c);
        } else if (k == 0) {
            r = weft__pg_flush(c, deadline); /* libpq's buffer is full: send it first */
        } else {
            p += chunk;
            n -= (size_t)chunk;
            r = weft__pg_flush(c, deadline);
        }
    }
    if (weft__pg_cut_off(r))
        weft__pg_recover(c);
    return weft__pg_leave(c, r < 0 ? r : 0);
}

int weft_pg_copy_in_end(weft_pg_t *c, const char *abort_msg, int64_t deadline)
{
    int r = weft__pg_enter(c);
    if (r < 0)
        return r;
    if (!c->copy_in)
        return weft__pg_leave(c, WEFT_PG_ESTATE);
    for (;;) {
        int k = PQputCopyEnd(c->pq, abort_msg);
        if (k > 0)
            break;
        r = k < 0 ? weft__pg_lost(c) : weft__pg_flush(c, deadline);
        if (r < 0)
            break;
    }
    if (r >= 0) {
        c->copy_in = false;
        r = weft__pg_flush(c, deadline);
        if (r >= 0)
            r = weft__pg_collect(c, NULL, deadline);
    }
    if (weft__pg_cut_off(r))
        weft__pg_recover(c);
    return weft__pg_leave(c, r);
}

ssize_t weft_pg_copy_out_read(weft_pg_t *c, const char **data, int64_t deadline)
{
    if (data == NULL)
        return -EINVAL;
    *data = NULL;
    int r = weft__pg_enter(c);
    if (r < 0)
        return r;
    if (c->copybuf != NULL) {
        PQfreemem(c->copybuf);
        c->copybuf = NULL;
    }
    if (!c->copy_out)
        return weft__pg_leave(c, WEFT_PG_ESTATE);
    for (;;) {
        char *buf;
        int k = PQgetCopyData(c->pq, &buf, 1);
        if (k > 0) {
            c->copybuf = buf;
            *data = buf;
            return weft__pg_leave(c, k);
        }
        if (k == 0) {
            r = weft__pg_read_more(c, deadline);
            if (r < 0)
                break;
            continue;
        }
        if (k == -2) {
            r = weft__pg_lost(c);
            break;
        }
        c->copy_out = false;
        r = weft__pg_collect(c, NULL, deadline);
        if (r > 0)
            r = 0;
        break;
    }
    if (weft__pg_cut_off(r))
        weft__pg_recover(c);
    return weft__pg_leave(c, r);
}
