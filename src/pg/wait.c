/*
 * Waiting on a PostgreSQL connection's socket: for input, for output to drain, for a result.
 *
 * Edge-style waits. weft_wait_fd() reports new readiness, but PQconsumeInput() reads once, not
 * until EAGAIN, so data may stay in the socket after it. Before waiting, pg_ready_now() polls the
 * socket with a zero timeout; only when nothing is there does the task park (readiness arriving
 * after that poll is kept by weft for the next wait, so nothing is lost).
 * The two a query runs in its loop, weft__pg_read_more() and weft__pg_wait_result(), are inline
 * in pg_internal.h.
 */
#include "pg_internal.h"

#include <poll.h>

/* Without waiting: is the socket ready for `events` now (or hung up)? */
static bool pg_ready_now(int fd, int events)
{
    struct pollfd p = {.fd = fd, .events = 0};
    if (events & WEFT_READABLE)
        p.events |= POLLIN;
    if (events & WEFT_WRITABLE)
        p.events |= POLLOUT;
    return poll(&p, 1, 0) > 0;
}

/* Wait for `events`: at once if they are there already. Returns the events or an error. */
int weft__pg_wait(weft_pg_t *c, int events, int64_t dl)
{
    if (c->fd < 0)
        return -EBADF;
    if (pg_ready_now(c->fd, events))
        return events;
    return weft_wait_fd_dl(c->fd, events, dl);
}

/* Read what has arrived into libpq. Returns 0 or -ECONNRESET. */
int weft__pg_consume(weft_pg_t *c)
{
    c->read_since_send = true;
    if (!PQconsumeInput(c->pq))
        return weft__pg_lost(c);
    return 0;
}

/* Send what libpq has buffered, reading meanwhile (the server may be writing to us). */
int weft__pg_flush(weft_pg_t *c, int64_t dl)
{
    for (;;) {
        int f = PQflush(c->pq);
        if (f == 0)
            return 0;
        if (f < 0)
            return weft__pg_lost(c);
        int r = weft__pg_wait(c, WEFT_READABLE | WEFT_WRITABLE, dl);
        if (r < 0)
            return r;
        if ((r & WEFT_READABLE) && weft__pg_consume(c) < 0)
            return -ECONNRESET;
    }
}

bool weft__pg_idle_dead(weft_pg_t *c)
{
    if (c->broken || c->pq == NULL || c->fd < 0 || PQstatus(c->pq) != CONNECTION_OK ||
        c->fatal_notice)
        return true;
    if (!pg_ready_now(c->fd, WEFT_READABLE))
        return false;
    /* Something came while idle: a notification, or the server's goodbye (an error, EOF). */
    if (!PQconsumeInput(c->pq) || (PQisBusy(c->pq), false) || /* PQisBusy parses it */
        PQstatus(c->pq) != CONNECTION_OK || c->fatal_notice) {
        weft__pg_lost(c);
        return true;
    }
    PGresult *res;
    while (!PQisBusy(c->pq) && (res = PQgetResult(c->pq)) != NULL) {
        /* An unsolicited error (e.g. FATAL "terminating connection due to administrator
         * command") means the server is about to close it. */
        PQclear(res);
        weft__pg_break(c, -ECONNRESET);
        return true;
    }
    return false;
}
