/*
 * PostgreSQL pipeline mode: many statements sent before their results are read.
 */
#include "pg_internal.h"

int weft_pg_pipeline_queue(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n)
{
    if (c == NULL)
        return -EINVAL;
    if (!c->pipeline || c->synced)
        return WEFT_PG_ESTATE;
    return weft__pg_send(c, SEND_PARAMS, sql, params, n, 0, NULL);
}

int weft_pg_pipeline_queue_prepared(weft_pg_t *c, const char *name,
                                    const weft_pg_param_t *params, int n)
{
    if (c == NULL)
        return -EINVAL;
    if (!c->pipeline || c->synced)
        return WEFT_PG_ESTATE;
    return weft__pg_send(c, SEND_PREPARED, name, params, n, 0, NULL);
}

#define PIPE_FLUSH_EVERY 64

int weft_pg_pipeline(weft_pg_t *c, size_t n, int (*queue)(weft_pg_t *c, size_t i, void *arg),
                     int (*on_result)(weft_pg_t *c, size_t i, weft_pg_result_t *r, void *arg),
                     void *arg, int64_t deadline)
{
    if (queue == NULL)
        return -EINVAL;
    int r = weft__pg_begin(c);
    if (r < 0)
        return r;
    if (!PQenterPipelineMode(c->pq))
        return weft__pg_leave(c, WEFT_PG_ESTATE);
    c->pipeline = true;
    c->synced = false;
    c->sync_seen = false;
    size_t sent = 0, got = 0;
    bool stop = false, in_query = false;
    int rc = 0, since_flush = 0;
    for (;;) {
        /* Queue while the socket takes it, then the Sync. */
        int f = 0;
        while (!c->synced) {
            if (sent < n && !stop) {
                int q = queue(c, sent, arg);
                if (q < 0) {
                    if (rc == 0)
                        rc = q;
                    stop = true;
                    if (c->broken)
                        return weft__pg_leave(c, -ECONNRESET);
                    continue;
                }
                sent++;
                if (++since_flush >= PIPE_FLUSH_EVERY) {
                    since_flush = 0;
                    f = PQflush(c->pq);
                    if (f != 0)
                        break;
                }
            } else {
                c->synced = true;
                if (!PQpipelineSync(c->pq))
                    return weft__pg_leave(c, weft__pg_lost(c));
            }
        }
        if (f == 0)
            f = PQflush(c->pq);
        if (f < 0)
            return weft__pg_leave(c, weft__pg_lost(c));

        /* Take every result already read. */
        while ((got < sent || !c->sync_seen) && !PQisBusy(c->pq)) {
            if (got == sent && !c->synced)
                break;
            PGresult *res = PQgetResult(c->pq);
            if (res == NULL) { /* the end of one statement's results */
                if (!in_query)
                    break; /* nothing more to take now */
                got++;
                in_query = false;
                continue;
            }
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_PIPELINE_SYNC) {
                c->sync_seen = true;
                PQclear(res);
                continue;
            }
            in_query = true;
            if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                if (on_result != NULL && rc == 0) {
                    weft_pg_result_t wr = {.blobs = NULL};
                    weft__pg_result_init(&wr, res);
                    int cr = on_result(c, got, &wr, arg);
                    weft__pg_result_clear(&wr);
                    res = NULL;
                    if (cr < 0) {
                        rc = cr;
                        stop = true;
                    }
                }
                PQclear(res);
            } else if (st == PGRES_FATAL_ERROR) {
                if (rc == 0)
                    rc = weft__pg_set_err_result(c, res);
                else
                    PQclear(res);
                stop = true;
            } else {
                PQclear(res); /* PGRES_PIPELINE_ABORTED after an error */
            }
        }
        if (got >= sent && c->sync_seen)
            break;

        /* Wait for the socket: readable for results, writable while output is pending. */
        int ev = WEFT_READABLE | (f == 1 ? WEFT_WRITABLE : 0);
        int w = weft__pg_wait(c, ev, deadline);
        if (w < 0) {
            rc = w;
            break;
        }
        if ((w & WEFT_READABLE) && weft__pg_consume(c) < 0)
            return weft__pg_leave(c, -ECONNRESET);
    }
    if (weft__pg_cut_off(rc) && !c->sync_seen) {
        weft__pg_recover(c);
    } else if (c->pipeline) {
        PQexitPipelineMode(c->pq);
        c->pipeline = false;
    }
    return weft__pg_leave(c, rc);
}
