/*
 * PostgreSQL errors: the module's error names, and the last error a connection keeps (the server's
 * error result, for its fields, and its full text).
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

const char *weft_pg_strerror(int err)
{
    switch (err) {
    case WEFT_PG_ESERVER:
        return "the PostgreSQL server reported an error";
    case WEFT_PG_ECONNECT:
        return "could not connect to the PostgreSQL server";
    case WEFT_PG_ESTATE:
        return "the PostgreSQL connection is not in a state for this call";
    default:
        return weft_strerror(err);
    }
}

/* ---- errors ---- */

/* Keep `msg` (trailing newlines dropped) as the connection's last error text. */
void weft__pg_set_errmsg(weft_pg_t *c, const char *msg)
{
    free(c->errmsg);
    c->errmsg = strdup(msg != NULL ? msg : "");
    if (c->errmsg != NULL) {
        size_t n = strlen(c->errmsg);
        while (n > 0 && c->errmsg[n - 1] == '\n')
            c->errmsg[--n] = '\0';
    }
}

/*
 * Take `res` (a PGRES_FATAL_ERROR) as the last error. Returns WEFT_PG_ESERVER; or -ECONNRESET when
 * libpq made the error itself (no SQLSTATE) because it dropped the connection: it lost track of
 * the protocol (a message it cannot read or place, such as one claiming 2 GB) and the server did
 * not report anything. The message stays readable (weft_pg_errmsg).
 */
int weft__pg_set_err_result(weft_pg_t *c, PGresult *res)
{
    weft__pg_clear_err(c);
    c->err = res;
    weft__pg_set_errmsg(c, PQresultErrorMessage(res));
    if (PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL && c->pq != NULL &&
        PQstatus(c->pq) == CONNECTION_BAD)
        return -ECONNRESET;
    return WEFT_PG_ESERVER;
}

const char *weft_pg_errmsg(const weft_pg_t *c)
{
    return c != NULL && c->errmsg != NULL ? c->errmsg : "";
}

const char *weft_pg_error_field(const weft_pg_t *c, int field)
{
    if (c == NULL || c->err == NULL)
        return NULL;
    return PQresultErrorField(c->err, field);
}
