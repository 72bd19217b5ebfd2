/*
 * Streaming a statement's rows (libpq's single-row mode): each row is handed to the caller's
 * function as it arrives, so memory stays at one row however long the answer is.
 */
#include "pg_internal.h"

#include <limits.h>

int weft_pg_query_rows(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n,
                       int flags, weft_pg_row_fn on_row, void *arg, int64_t deadline)
{
    if (on_row == NULL)
        return -EINVAL;
    int r = weft__pg_begin(c);
    if (r < 0)
        return r;
    r = weft__pg_send(c, SEND_PARAMS, sql, params, n, flags, NULL);
    if (r < 0)
        return weft__pg_leave(c, r);
    /* Right after the send, before any result: libpq only refuses it then if it is broken. */
    if (!PQsetSingleRowMode(c->pq)) {
        weft__pg_set_errmsg(c, "libpq refused single-row mode");
        weft__pg_recover(c);
        return weft__pg_leave(c, -EPROTO);
    }
    c->read_since_send = false;
    r = weft__pg_flush(c, deadline);
    int rows = 0, rc = 0;
    while (r >= 0) {
        r = weft__pg_wait_result(c, deadline);
        if (r < 0)
            break;
        PGresult *res = PQgetResult(c->pq);
        if (res == NULL)
            break;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && rc == 0) {
            weft_pg_result_t row = {0};
            weft__pg_result_init(&row, res);
            int u = on_row(&row, arg);
            weft__pg_result_clear(&row);
            /* The rows may all be in libpq's buffer already, so no wait would notice a deadline
             * that passed while on_row ran: look. */
            if (u >= 0 && deadline >= 0 && weft_time(NULL) >= deadline)
                u = -ETIMEDOUT;
            if (u < 0) {
                r = u; /* stop: the rest of the statement is cancelled below */
                break;
            }
            if (rows < INT_MAX)
                rows++;
        } else if (st == PGRES_FATAL_ERROR && rc == 0) {
            rc = weft__pg_set_err_result(c, res);
        } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(res);
            weft__pg_set_errmsg(c, "a COPY needs weft_pg_copy_in_begin/copy_out_begin");
            c->copy_out = st == PGRES_COPY_OUT; /* the recovery below ends the COPY */
            c->copy_in = st == PGRES_COPY_IN;
            r = WEFT_PG_ESTATE;
            break;
        } else {
            PQclear(res); /* the zero-row end of the rows, a command's result */
        }
    }
    if (r < 0) {
        /* Cut off (deadline, cancellation), stopped by on_row, or a COPY: cancel what is left
         * on the server and drain, or close the connection. */
        weft__pg_recover(c);
        return weft__pg_leave(c, r);
    }
    return weft__pg_leave(c, rc < 0 ? rc : rows);
}
