/*
 * Cut-off calls. When a wait fails with -ECANCELED or -ETIMEDOUT while the server works on a
 * statement, weft__pg_recover() aborts a COPY FROM, sends a cancel request from the thread pool
 * (PQcancel blocks in libpq 15), drains the results and leaves pipeline mode, all within the
 * connection's cancel timeout; if that fails or the task is cancelled again, the connection is
 * closed (the server then rolls back what it had started).
 */
#include "pg_internal.h"

#include <stdlib.h>

struct cancel_job {
    PGcancel *pc;
    char err[256];
};

static int cancel_fn(void *arg)
{
    struct cancel_job *j = arg;
    return PQcancel(j->pc, j->err, (int)sizeof(j->err)) ? 0 : -EIO;
}

static void cancel_drop(void *arg, int result)
{
    (void)result;
    struct cancel_job *j = arg;
    PQfreeCancel(j->pc);
    free(j);
}

/* Ask the server to cancel what it runs, from a pool thread (PQcancel blocks). */
static int pg_send_cancel(weft_pg_t *c, int64_t dl)
{
    struct cancel_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    j->pc = PQgetCancel(c->pq);
    if (j->pc == NULL) {
        free(j);
        return -ENOMEM;
    }
    int r = weft_to_thread_ex_dl(cancel_fn, j, cancel_drop, dl);
    if (r != -ECANCELED && r != -ETIMEDOUT)
        cancel_drop(j, r);
    return r;
}

/* Discard COPY TO data until its end. */
int weft__pg_discard_copy_out(weft_pg_t *c, int64_t dl)
{
    for (;;) {
        char *buf;
        int n = PQgetCopyData(c->pq, &buf, 1);
        if (n > 0) {
            PQfreemem(buf);
        } else if (n == 0) {
            int r = weft__pg_read_more(c, dl);
            if (r < 0)
                return r;
        } else {
            c->copy_out = false;
            return n == -1 ? 0 : weft__pg_lost(c);
        }
    }
}

/*
 * Read and drop results until the connection is idle (outside pipeline mode: PQgetResult gives
 * NULL) or, in pipeline mode, until the Sync's result. With `nowait`, stop with 1 when that would
 * need to wait; 0 when done.
 */
int weft__pg_drain(weft_pg_t *c, bool nowait, int64_t dl)
{
    for (;;) {
        if (c->pipeline && c->sync_seen)
            return 0;
        if (PQisBusy(c->pq)) {
            if (nowait)
                return 1;
            int r = weft__pg_read_more(c, dl);
            if (r < 0)
                return r;
            continue;
        }
        PGresult *res = PQgetResult(c->pq);
        if (res == NULL) {
            if (!c->pipeline)
                return 0;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_COPY_IN) {
            if (nowait)
                return 1;
            if (PQputCopyEnd(c->pq, "canceled") < 0)
                return weft__pg_lost(c);
            int r = weft__pg_flush(c, dl);
            if (r < 0)
                return r;
        } else if (st == PGRES_COPY_OUT) {
            if (nowait)
                return 1;
            int r = weft__pg_discard_copy_out(c, dl);
            if (r < 0)
                return r;
        } else if (st == PGRES_PIPELINE_SYNC) {
            c->sync_seen = true;
        } else if (st == PGRES_COPY_BOTH) {
            return weft__pg_break(c, -EPROTO);
        }
    }
}

/*
 * Bring a connection whose call was cut off back to idle, or close it. Runs within the cancel
 * timeout; the caller's cancellation was already delivered, so these waits work unless the task
 * is cancelled again.
 */
void weft__pg_recover(weft_pg_t *c)
{
    if (c->broken || c->pq == NULL)
        return;
    int64_t dl = weft_time(NULL) + c->cancel_ns;
    int r = 0;
    if (c->copy_in) {
        c->copy_in = false;
        if (PQputCopyEnd(c->pq, "canceled") < 0) {
            weft__pg_lost(c);
            return;
        }
    }
    if (c->pipeline && !c->synced) {
        c->synced = true;
        if (!PQpipelineSync(c->pq)) {
            weft__pg_lost(c);
            return;
        }
    }
    r = weft__pg_flush(c, dl);
    if (r >= 0 && PQconsumeInput(c->pq))
        r = weft__pg_drain(c, true, dl); /* all there already? then nothing to cancel */
    if (r == 1) {
        r = pg_send_cancel(c, dl);
        if (r >= 0 || r == -EIO)
            r = weft__pg_drain(c, false, dl);
    }
    if (r >= 0 && c->pipeline) {
        PQexitPipelineMode(c->pq);
        c->pipeline = false;
    }
    c->copy_out = false;
    if (r < 0 && !c->broken) {
        PGresult *keep = c->err;
        char *msg = c->errmsg;
        c->err = NULL;
        c->errmsg = NULL;
        weft__pg_break(c, r);
        free(c->errmsg);
        c->err = keep;
        c->errmsg = msg;
    }
}
