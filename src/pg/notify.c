/*
 * PostgreSQL LISTEN / NOTIFY: waiting for the next notification.
 */
#include "pg_internal.h"

#include <stdlib.h>
#include <string.h>

int weft_pg_notify_wait(weft_pg_t *c, weft_pg_notify_t **out, int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    int r = weft__pg_enter(c);
    if (r < 0)
        return r;
    r = weft__pg_end_copy(c);
    c->read_since_send = true; /* a notification may sit behind the last reply: poll first */
    while (r >= 0) {
        PGnotify *nt = PQnotifies(c->pq);
        if (nt != NULL) {
            size_t lc = strlen(nt->relname) + 1, lp = strlen(nt->extra) + 1;
            weft_pg_notify_t *n = malloc(sizeof(*n) + lc + lp);
            if (n == NULL) {
                PQfreemem(nt);
                r = -ENOMEM;
                break;
            }
            char *s = (char *)(n + 1);
            memcpy(s, nt->relname, lc);
            memcpy(s + lc, nt->extra, lp);
            n->channel = s;
            n->payload = s + lc;
            n->pid = nt->be_pid;
            PQfreemem(nt);
            *out = n;
            break;
        }
        r = weft__pg_read_more(c, deadline);
    }
    return weft__pg_leave(c, r < 0 ? r : 0);
}

void weft_pg_notify_free(weft_pg_notify_t *n)
{
    free(n);
}
