/*
 * PostgreSQL connections on libpq's asynchronous API: connecting (names resolved by weft first),
 * entering and leaving a call, breaking, closing, and what a connection tells about itself.
 *
 * The socket. libpq owns its socket and closes it itself (on PQfinish, and when a connection
 * attempt moves on to the next address), while weft's fd table remembers every fd it watches until
 * weft_close(). So weft never watches libpq's fd number: it watches a dup of it (the same socket,
 * so the same readiness), closed with weft_close() whenever libpq's socket changes or goes away.
 */
#include "pg_internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CANCEL_NS (5 * 1000000000LL)

/* ---- the socket ---- */

/* Follow libpq's socket: a new socket gets a new dup, a closed one closes ours. */
static int sync_fd(weft_pg_t *c)
{
    int s = c->pq != NULL ? PQsocket(c->pq) : -1;
    if (s == c->pqfd && (s < 0 || c->fd >= 0))
        return 0;
    if (c->fd >= 0)
        weft_close(c->fd);
    c->fd = -1;
    c->pqfd = s;
    if (s >= 0) {
        c->fd = fcntl(s, F_DUPFD_CLOEXEC, 3);
        if (c->fd < 0)
            return -errno;
    }
    return 0;
}

/* Break the connection for good: remember why, close the socket, free libpq's side. */
int weft__pg_break(weft_pg_t *c, int err)
{
    if (c->pq != NULL && c->errmsg == NULL)
        weft__pg_set_errmsg(c, PQerrorMessage(c->pq));
    if (c->fd >= 0)
        weft_close(c->fd);
    c->fd = -1;
    c->pqfd = -1;
    if (c->pq != NULL)
        PQfinish(c->pq);
    c->pq = NULL;
    c->broken = true;
    c->copy_in = c->copy_out = c->pipeline = false;
    return err;
}

/* libpq reported a failure on the socket: the server is gone. */
int weft__pg_lost(weft_pg_t *c)
{
    weft__pg_clear_err(c);
    return weft__pg_break(c, -ECONNRESET);
}

/*
 * Notices: libpq's default prints them to stderr; so do we, except a FATAL one, which the server
 * sends outside any query just before it closes the connection (administrator command, shutdown):
 * it marks the connection as going away.
 */
static void pg_notice(void *arg, const PGresult *res)
{
    weft_pg_t *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
        c->fatal_notice = true;
        if (c->errmsg == NULL)
            weft__pg_set_errmsg(c, PQresultErrorMessage(res));
        return;
    }
    fprintf(stderr, "%s", PQresultErrorMessage(res));
}

/* ---- connecting ---- */

static const char *opt_val(const PQconninfoOption *o, const char *kw)
{
    for (; o->keyword != NULL; o++)
        if (strcmp(o->keyword, kw) == 0)
            return o->val;
    return NULL;
}

/* A growing comma-separated list. */
struct strlist {
    char *s;
    size_t len, cap;
    int n;
};

static int sl_add(struct strlist *l, const char *v)
{
    size_t vl = strlen(v);
    if (l->len + vl + 2 > l->cap) {
        size_t cap = (l->cap + vl + 2) * 2;
        char *s = realloc(l->s, cap);
        if (s == NULL)
            return -ENOMEM;
        l->s = s;
        l->cap = cap;
    }
    if (l->n > 0)
        l->s[l->len++] = ',';
    memcpy(l->s + l->len, v, vl);
    l->len += vl;
    l->s[l->len] = '\0';
    l->n++;
    return 0;
}

/* Item `i` of a comma-separated list into buf (the last item repeats; "" if none). */
static void list_item(const char *list, int i, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (list == NULL)
        return;
    const char *p = list;
    for (int k = 0;; k++) {
        size_t n = strcspn(p, ",");
        if (k == i || p[n] == '\0') {
            snprintf(buf, cap, "%.*s", (int)n, p);
            return;
        }
        p += n + 1;
    }
}

static int list_count(const char *list)
{
    if (list == NULL || *list == '\0')
        return 0;
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

static void put_err(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf == NULL || errlen == 0)
        return;
    snprintf(errbuf, errlen, "%s", msg);
    size_t n = strlen(errbuf);
    while (n > 0 && errbuf[n - 1] == '\n')
        errbuf[--n] = '\0';
}

/*
 * Turn `hosts` into host/hostaddr/port lists libpq can use without resolving: socket directories
 * and numeric addresses stay, names become one entry per address from weft_getaddrinfo_dl().
 */
static int resolve_hosts(const char *hosts, const char *ports, struct strlist *h,
                         struct strlist *a, struct strlist *p, int64_t dl)
{
    int nh = list_count(hosts);
    int np = list_count(ports);
    for (int i = 0; i < nh; i++) {
        char host[1024], port[64];
        list_item(hosts, i, host, sizeof(host));
        list_item(ports, np > 1 ? i : 0, port, sizeof(port));
        unsigned char tmp[sizeof(struct in6_addr)];
        bool numeric = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
        if (host[0] == '\0' || host[0] == '/' || host[0] == '@' || numeric) {
            if (sl_add(h, host) < 0 || sl_add(a, numeric ? host : "") < 0 || sl_add(p, port) < 0)
                return -ENOMEM;
            continue;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int r = weft_getaddrinfo_dl(host, NULL, &hints, &res, dl);
        if (r < 0)
            return r;
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            char num[INET6_ADDRSTRLEN];
            const void *src = ai->ai_family == AF_INET
                                  ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                  : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                inet_ntop(ai->ai_family, src, num, sizeof(num)) == NULL)
                continue;
            if (sl_add(h, host) < 0 || sl_add(a, num) < 0 || sl_add(p, port) < 0) {
                freeaddrinfo(res);
                return -ENOMEM;
            }
        }
        freeaddrinfo(res);
    }
    return 0;
}

static int connect_poll(weft_pg_t *c, int64_t dl)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        int r = sync_fd(c);
        if (r < 0)
            return r;
        if (st == PGRES_POLLING_OK)
            return 0;
        if (st == PGRES_POLLING_FAILED)
            return WEFT_PG_ECONNECT;
        r = weft__pg_wait(c, st == PGRES_POLLING_READING ? WEFT_READABLE : WEFT_WRITABLE, dl);
        if (r < 0)
            return r;
        st = PQconnectPoll(c->pq);
    }
}

int weft__pg_connect(weft_pg_t **out, const char *conninfo, char *errbuf, size_t errlen,
                     double cancel_timeout, int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &perr);
    if (opts == NULL) {
        put_err(errbuf, errlen, perr != NULL ? perr : "out of memory");
        int r = perr != NULL ? -EINVAL : -ENOMEM;
        PQfreemem(perr);
        return r;
    }
    const char *host = opt_val(opts, "host");
    const char *hostaddr = opt_val(opts, "hostaddr");
    const char *port = opt_val(opts, "port");
    if (host == NULL)
        host = getenv("PGHOST");
    if (hostaddr == NULL)
        hostaddr = getenv("PGHOSTADDR");
    if (port == NULL)
        port = getenv("PGPORT");

    struct strlist h = {0}, a = {0}, p = {0};
    bool resolved = false;
    int r = 0;
    if (host != NULL && *host != '\0' && (hostaddr == NULL || *hostaddr == '\0')) {
        r = resolve_hosts(host, port, &h, &a, &p, deadline);
        if (r < 0) {
            if (r == WEFT_EAI_NONAME)
                put_err(errbuf, errlen, "could not resolve the host name");
            goto out;
        }
        if (h.n == 0) {
            put_err(errbuf, errlen, "the host name has no address");
            r = WEFT_EAI_NONAME;
            goto out;
        }
        resolved = true;
    }

    /* Every option the string set, with host/hostaddr/port replaced when resolved here. */
    size_t nopt = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        nopt++;
    const char **kw = calloc(nopt + 4, sizeof(*kw));
    const char **val = calloc(nopt + 4, sizeof(*val));
    weft_pg_t *c = calloc(1, sizeof(*c));
    if (kw == NULL || val == NULL || c == NULL) {
        free(kw);
        free(val);
        free(c);
        r = -ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (resolved && (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
                         strcmp(o->keyword, "port") == 0))
            continue;
        kw[k] = o->keyword;
        val[k++] = o->val;
    }
    if (resolved) {
        kw[k] = "host";
        val[k++] = h.s;
        kw[k] = "hostaddr";
        val[k++] = a.s;
        kw[k] = "port";
        val[k++] = p.s;
    }
    c->fd = -1;
    c->pqfd = -1;
    c->cancel_ns = cancel_timeout > 0 ? weft_seconds_to_ns(cancel_timeout) : DEFAULT_CANCEL_NS;
    c->pq = PQconnectStartParams(kw, val, 0);
    free(kw);
    free(val);
    if (c->pq == NULL) {
        free(c);
        r = -ENOMEM;
        goto out;
    }
    if (PQstatus(c->pq) == CONNECTION_BAD)
        r = WEFT_PG_ECONNECT;
    else
        r = connect_poll(c, deadline);
    if (r == 0 && PQsetnonblocking(c->pq, 1) != 0)
        r = WEFT_PG_ECONNECT;
    if (r == 0)
        PQsetNoticeReceiver(c->pq, pg_notice, c);
    if (r < 0) {
        if (r == WEFT_PG_ECONNECT)
            put_err(errbuf, errlen, PQerrorMessage(c->pq));
        else if (weft__pg_cut_off(r))
            put_err(errbuf, errlen, r == -ECANCELED ? "cancelled" : "timed out");
        weft__pg_break(c, r);
        free(c->errmsg);
        free(c);
        goto out;
    }
    *out = c;
out:
    free(h.s);
    free(a.s);
    free(p.s);
    PQconninfoFree(opts);
    return r;
}

int weft_pg_connect_opts(weft_pg_t **out, const char *conninfo,
                         const struct weft_pg_connect_opts *opts, int64_t deadline)
{
    return weft__pg_connect(out, conninfo, opts ? opts->errbuf : NULL, opts ? opts->errlen : 0,
                            opts ? opts->cancel_timeout : 0, deadline);
}

int weft_pg_connect_dl(weft_pg_t **out, const char *conninfo, int64_t deadline)
{
    return weft__pg_connect(out, conninfo, NULL, 0, 0, deadline);
}

int weft_pg_connect(weft_pg_t **out, const char *conninfo)
{
    return weft__pg_connect(out, conninfo, NULL, 0, 0, WEFT_NO_DEADLINE);
}

/* Free the connection and everything it holds. */
void weft__pg_free(weft_pg_t *c)
{
    if (c->copybuf != NULL)
        PQfreemem(c->copybuf);
    c->copybuf = NULL;
    weft__pg_clear_err(c);
    weft__pg_break(c, 0);
    free(c->errmsg);
    free(c);
}

void weft_pg_close(weft_pg_t *c)
{
    if (c == NULL)
        return;
    if (c->busy) {
        /* A task is inside a call: wake it with -EBADF; it frees the connection on its way out. */
        c->close_pending = true;
        if (c->fd >= 0)
            weft_close(c->fd);
        c->fd = -1;
        return;
    }
    weft__pg_free(c);
}

bool weft_pg_ok(const weft_pg_t *c)
{
    return c != NULL && !c->broken && c->pq != NULL && PQstatus(c->pq) == CONNECTION_OK;
}

int weft_pg_txn_status(const weft_pg_t *c)
{
    if (c == NULL || c->pq == NULL)
        return PQTRANS_UNKNOWN;
    return (int)PQtransactionStatus(c->pq);
}

int weft_pg_backend_pid(const weft_pg_t *c)
{
    return c != NULL && c->pq != NULL ? PQbackendPID(c->pq) : 0;
}

struct pg_conn *weft_pg_libpq(weft_pg_t *c)
{
    return c != NULL ? c->pq : NULL;
}
