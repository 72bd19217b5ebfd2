/*
 * PostgreSQL connections on libpq's asynchronous API.
 *
 * The socket. libpq owns its socket and closes it itself (on PQfinish, and when a connection
 * attempt moves on to the next address), while weft's fd table remembers every fd it watches until
 * weft_close(). So weft never watches libpq's fd number: it watches a dup of it (the same socket,
 * so the same readiness), closed with weft_close() whenever libpq's socket changes or goes away.
 *
 * Edge-style waits. weft_wait_fd() reports new readiness, but PQconsumeInput() reads once, not
 * until EAGAIN, so data may stay in the socket after it. Before waiting, pg_ready_now() polls the
 * socket with a zero timeout; only when nothing is there does the task park (readiness arriving
 * after that poll is kept by weft for the next wait, so nothing is lost).
 *
 * Cut-off calls. When a wait fails with -ECANCELED or -ETIMEDOUT while the server works on a
 * statement, pg_recover() aborts a COPY FROM, sends a cancel request from the thread pool
 * (PQcancel blocks in libpq 15), drains the results and leaves pipeline mode, all within the
 * connection's cancel timeout; if that fails or the task is cancelled again, the connection is
 * closed (the server then rolls back what it had started).
 */
#include "pg_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CANCEL_NS (5 * 1000000000LL)

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

static void clear_err(weft_pg_t *c)
{
    if (c->err != NULL) {
        PQclear(c->err);
        c->err = NULL;
    }
    free(c->errmsg);
    c->errmsg = NULL;
}

/* Keep `msg` (trailing newlines dropped) as the connection's last error text. */
static void set_errmsg(weft_pg_t *c, const char *msg)
{
    free(c->errmsg);
    c->errmsg = strdup(msg != NULL ? msg : "");
    if (c->errmsg != NULL) {
        size_t n = strlen(c->errmsg);
        while (n > 0 && c->errmsg[n - 1] == '\n')
            c->errmsg[--n] = '\0';
    }
}

/* Take `res` (a PGRES_FATAL_ERROR) as the last error. Returns WEFT_PG_ESERVER. */
static int set_err_result(weft_pg_t *c, PGresult *res)
{
    clear_err(c);
    c->err = res;
    set_errmsg(c, PQresultErrorMessage(res));
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
static int pg_break(weft_pg_t *c, int err)
{
    if (c->pq != NULL && c->errmsg == NULL)
        set_errmsg(c, PQerrorMessage(c->pq));
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
static int pg_lost(weft_pg_t *c)
{
    clear_err(c);
    return pg_break(c, -ECONNRESET);
}

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
static int pg_wait(weft_pg_t *c, int events, int64_t dl)
{
    if (c->fd < 0)
        return -EBADF;
    if (pg_ready_now(c->fd, events))
        return events;
    return weft_wait_fd_dl(c->fd, events, dl);
}

/* Read what has arrived into libpq. Returns 0 or -ECONNRESET. */
static int pg_consume(weft_pg_t *c)
{
    c->read_since_send = true;
    if (!PQconsumeInput(c->pq))
        return pg_lost(c);
    return 0;
}

/*
 * Wait for more input and read it. The zero-timeout poll is needed only once this call has read:
 * right after a statement was sent, everything the server had sent before was read to its end
 * (ReadyForQuery), so a reply can only come as new data, which weft reports.
 */
static int pg_read_more(weft_pg_t *c, int64_t dl)
{
    int r = c->read_since_send || c->fd < 0 ? pg_wait(c, WEFT_READABLE, dl)
                                            : weft_wait_fd_dl(c->fd, WEFT_READABLE, dl);
    if (r < 0)
        return r;
    return pg_consume(c);
}

/* Wait until a result can be taken without blocking (PQisBusy false). */
static int pg_wait_result(weft_pg_t *c, int64_t dl)
{
    while (PQisBusy(c->pq)) {
        int r = pg_read_more(c, dl);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Send what libpq has buffered, reading meanwhile (the server may be writing to us). */
static int pg_flush(weft_pg_t *c, int64_t dl)
{
    for (;;) {
        int f = PQflush(c->pq);
        if (f == 0)
            return 0;
        if (f < 0)
            return pg_lost(c);
        int r = pg_wait(c, WEFT_READABLE | WEFT_WRITABLE, dl);
        if (r < 0)
            return r;
        if ((r & WEFT_READABLE) && pg_consume(c) < 0)
            return -ECONNRESET;
    }
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
            set_errmsg(c, PQresultErrorMessage(res));
        return;
    }
    fprintf(stderr, "%s", PQresultErrorMessage(res));
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
        pg_lost(c);
        return true;
    }
    PGresult *res;
    while (!PQisBusy(c->pq) && (res = PQgetResult(c->pq)) != NULL) {
        /* An unsolicited error (e.g. FATAL "terminating connection due to administrator
         * command") means the server is about to close it. */
        PQclear(res);
        pg_break(c, -ECONNRESET);
        return true;
    }
    return false;
}

/* ---- cancel and drain ---- */

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
static int pg_discard_copy_out(weft_pg_t *c, int64_t dl)
{
    for (;;) {
        char *buf;
        int n = PQgetCopyData(c->pq, &buf, 1);
        if (n > 0) {
            PQfreemem(buf);
        } else if (n == 0) {
            int r = pg_read_more(c, dl);
            if (r < 0)
                return r;
        } else {
            c->copy_out = false;
            return n == -1 ? 0 : pg_lost(c);
        }
    }
}

/*
 * Read and drop results until the connection is idle (outside pipeline mode: PQgetResult gives
 * NULL) or, in pipeline mode, until the Sync's result. With `nowait`, stop with 1 when that would
 * need to wait; 0 when done.
 */
static int pg_drain(weft_pg_t *c, bool nowait, int64_t dl)
{
    for (;;) {
        if (c->pipeline && c->sync_seen)
            return 0;
        if (PQisBusy(c->pq)) {
            if (nowait)
                return 1;
            int r = pg_read_more(c, dl);
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
                return pg_lost(c);
            int r = pg_flush(c, dl);
            if (r < 0)
                return r;
        } else if (st == PGRES_COPY_OUT) {
            if (nowait)
                return 1;
            int r = pg_discard_copy_out(c, dl);
            if (r < 0)
                return r;
        } else if (st == PGRES_PIPELINE_SYNC) {
            c->sync_seen = true;
        } else if (st == PGRES_COPY_BOTH) {
            return pg_break(c, -EPROTO);
        }
    }
}

/*
 * Bring a connection whose call was cut off back to idle, or close it. Runs within the cancel
 * timeout; the caller's cancellation was already delivered, so these waits work unless the task
 * is cancelled again.
 */
static void pg_recover(weft_pg_t *c)
{
    if (c->broken || c->pq == NULL)
        return;
    int64_t dl = weft_time(NULL) + c->cancel_ns;
    int r = 0;
    if (c->copy_in) {
        c->copy_in = false;
        if (PQputCopyEnd(c->pq, "canceled") < 0) {
            pg_lost(c);
            return;
        }
    }
    if (c->pipeline && !c->synced) {
        c->synced = true;
        if (!PQpipelineSync(c->pq)) {
            pg_lost(c);
            return;
        }
    }
    r = pg_flush(c, dl);
    if (r >= 0 && PQconsumeInput(c->pq))
        r = pg_drain(c, true, dl); /* all there already? then nothing to cancel */
    if (r == 1) {
        r = pg_send_cancel(c, dl);
        if (r >= 0 || r == -EIO)
            r = pg_drain(c, false, dl);
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
        pg_break(c, r);
        free(c->errmsg);
        c->err = keep;
        c->errmsg = msg;
    }
}

static bool cut_off(int r)
{
    return r == -ECANCELED || r == -ETIMEDOUT;
}

/* ---- entering and leaving a call ---- */

static void pg_free(weft_pg_t *c);

static int pg_enter(weft_pg_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->busy)
        return -EBUSY;
    if (c->broken || c->pq == NULL)
        return -ECONNRESET;
    c->busy = true;
    clear_err(c);
    return 0;
}

static int pg_leave(weft_pg_t *c, int r)
{
    c->busy = false;
    if (c->close_pending) {
        pg_free(c);
        return -EBADF;
    }
    return r;
}

/* A call other than the COPY ones while a COPY is open ends the COPY first. */
static int pg_end_copy(weft_pg_t *c)
{
    if (!c->copy_in && !c->copy_out)
        return 0;
    pg_recover(c);
    return c->broken ? -ECONNRESET : 0;
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
        r = pg_wait(c, st == PGRES_POLLING_READING ? WEFT_READABLE : WEFT_WRITABLE, dl);
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
        else if (cut_off(r))
            put_err(errbuf, errlen, r == -ECANCELED ? "cancelled" : "timed out");
        pg_break(c, r);
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

static void pg_free(weft_pg_t *c)
{
    if (c->copybuf != NULL)
        PQfreemem(c->copybuf);
    c->copybuf = NULL;
    clear_err(c);
    pg_break(c, 0);
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
    pg_free(c);
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

/* ---- parameters ---- */

weft_pg_param_t weft_pg_null(void)
{
    weft_pg_param_t p = {.value = NULL, .length = -1};
    return p;
}

weft_pg_param_t weft_pg_text(const char *s)
{
    weft_pg_param_t p = {.value = s, .length = -1};
    return p;
}

static weft_pg_param_t be_param(uint64_t v, int len, uint32_t type)
{
    weft_pg_param_t p = {.value = NULL, .length = len, .format = 1, .type = type};
    for (int i = 0; i < len; i++)
        p.inl[i] = (unsigned char)(v >> (8 * (len - 1 - i)));
    return p;
}

weft_pg_param_t weft_pg_int4(int32_t v)
{
    return be_param((uint32_t)v, 4, 23);
}

weft_pg_param_t weft_pg_int8(int64_t v)
{
    return be_param((uint64_t)v, 8, 20);
}

weft_pg_param_t weft_pg_float8(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return be_param(u, 8, 701);
}

weft_pg_param_t weft_pg_bool(bool v)
{
    return be_param(v ? 1 : 0, 1, 16);
}

weft_pg_param_t weft_pg_bytea(const void *ptr, size_t n)
{
    static const char empty[1];
    weft_pg_param_t p = {.value = ptr != NULL ? ptr : empty,
                         .length = n > INT_MAX ? INT_MAX : (int)n,
                         .format = 1,
                         .type = 17};
    return p;
}

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

/* ---- running statements ---- */

enum send_kind { SEND_PARAMS, SEND_PREPARED, SEND_SIMPLE, SEND_PREPARE };

/* Hand one statement to libpq (no waiting). Returns 0 or an error. */
static int pg_send(weft_pg_t *c, int kind, const char *sql, const weft_pg_param_t *params, int n,
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
            return pg_lost(c);
        set_errmsg(c, PQerrorMessage(c->pq));
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
static int pg_collect(weft_pg_t *c, PGresult **out, int64_t dl)
{
    PGresult *last = NULL;
    int rc = 0;
    for (;;) {
        int r = pg_wait_result(c, dl);
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
                rc = set_err_result(c, res);
            else
                PQclear(res);
            break;
        case PGRES_COPY_IN:
            PQclear(res);
            set_errmsg(c, "COPY FROM STDIN needs weft_pg_copy_in_begin()");
            rc = WEFT_PG_ESTATE;
            if (PQputCopyEnd(c->pq, "COPY FROM STDIN needs weft_pg_copy_in_begin()") < 0 ||
                (r = pg_flush(c, dl)) < 0) {
                PQclear(last);
                return r < 0 ? r : pg_lost(c);
            }
            break;
        case PGRES_COPY_OUT:
            PQclear(res);
            set_errmsg(c, "COPY TO STDOUT needs weft_pg_copy_out_begin()");
            rc = WEFT_PG_ESTATE;
            c->copy_out = true;
            if ((r = pg_discard_copy_out(c, dl)) < 0) {
                PQclear(last);
                return r;
            }
            break;
        default:
            set_errmsg(c, PQresultErrorMessage(res));
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
    int r = pg_enter(c);
    if (r < 0)
        return r;
    r = pg_end_copy(c);
    if (r < 0)
        return pg_leave(c, r);
    if (kind == SEND_PREPARE) {
        if (n < 0 || sql == NULL || prep_name == NULL)
            return pg_leave(c, -EINVAL);
        if (!PQsendPrepare(c->pq, prep_name, sql, n, (const Oid *)params)) {
            if (PQstatus(c->pq) != CONNECTION_OK)
                return pg_leave(c, pg_lost(c));
            set_errmsg(c, PQerrorMessage(c->pq));
            return pg_leave(c, -EINVAL);
        }
    } else {
        r = pg_send(c, kind, sql, params, n, flags, NULL);
        if (r < 0)
            return pg_leave(c, r);
    }
    c->read_since_send = false;
    r = pg_flush(c, dl);
    PGresult *out = NULL;
    if (r >= 0)
        r = pg_collect(c, res != NULL ? &out : NULL, dl);
    if (cut_off(r))
        pg_recover(c);
    if (r >= 0 && res != NULL) {
        int w = wrap_result(out, res);
        if (w < 0)
            r = w;
    }
    return pg_leave(c, r);
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
        pg_break(c, r); /* the server rolls back when the connection goes */
    clear_err(c);
    c->err = keep;
    c->errmsg = msg;
    return fr;
}

/* ---- COPY ---- */

/* Send `sql` and wait for its first result, which must have status `want`. */
static int copy_begin(weft_pg_t *c, const char *sql, ExecStatusType want, int64_t dl)
{
    int r = pg_enter(c);
    if (r < 0)
        return r;
    r = pg_end_copy(c);
    if (r < 0)
        return pg_leave(c, r);
    r = pg_send(c, SEND_PARAMS, sql, NULL, 0, 0, NULL);
    if (r >= 0)
        r = pg_flush(c, dl);
    if (r >= 0)
        r = pg_wait_result(c, dl);
    if (r >= 0) {
        PGresult *res = PQgetResult(c->pq);
        ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
        if (st == want) {
            PQclear(res);
            if (want == PGRES_COPY_IN)
                c->copy_in = true;
            else
                c->copy_out = true;
            return pg_leave(c, 0);
        }
        /* Not the COPY asked for: read it to the end and report. */
        if (st == PGRES_FATAL_ERROR) {
            set_err_result(c, res);
            r = pg_drain(c, false, dl);
            if (r >= 0)
                r = WEFT_PG_ESERVER;
        } else {
            PQclear(res);
            set_errmsg(c, "not a COPY of this direction");
            r = pg_drain(c, false, dl);
            if (r >= 0)
                r = WEFT_PG_ESTATE;
        }
    }
    if (cut_off(r))
        pg_recover(c);
    return pg_leave(c, r);
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
    int r = pg_enter(c);
    if (r < 0)
        return r;
    if (!c->copy_in)
        return pg_leave(c, WEFT_PG_ESTATE);
    const char *p = data;
    while (n > 0 && r >= 0) {
        int chunk = n > (1u << 20) ? (1 << 20) : (int)n;
        int k = PQputCopyData(c->pq, p, chunk);
        if (k < 0) {
            r = pg_lost(c);
        } else if (k == 0) {
            r = pg_flush(c, deadline); /* libpq's buffer is full: send it first */
        } else {
            p += chunk;
            n -= (size_t)chunk;
            r = pg_flush(c, deadline);
        }
    }
    if (cut_off(r))
        pg_recover(c);
    return pg_leave(c, r < 0 ? r : 0);
}

int weft_pg_copy_in_end(weft_pg_t *c, const char *abort_msg, int64_t deadline)
{
    int r = pg_enter(c);
    if (r < 0)
        return r;
    if (!c->copy_in)
        return pg_leave(c, WEFT_PG_ESTATE);
    for (;;) {
        int k = PQputCopyEnd(c->pq, abort_msg);
        if (k > 0)
            break;
        r = k < 0 ? pg_lost(c) : pg_flush(c, deadline);
        if (r < 0)
            break;
    }
    if (r >= 0) {
        c->copy_in = false;
        r = pg_flush(c, deadline);
        if (r >= 0)
            r = pg_collect(c, NULL, deadline);
    }
    if (cut_off(r))
        pg_recover(c);
    return pg_leave(c, r);
}

ssize_t weft_pg_copy_out_read(weft_pg_t *c, const char **data, int64_t deadline)
{
    if (data == NULL)
        return -EINVAL;
    *data = NULL;
    int r = pg_enter(c);
    if (r < 0)
        return r;
    if (c->copybuf != NULL) {
        PQfreemem(c->copybuf);
        c->copybuf = NULL;
    }
    if (!c->copy_out)
        return pg_leave(c, WEFT_PG_ESTATE);
    for (;;) {
        char *buf;
        int k = PQgetCopyData(c->pq, &buf, 1);
        if (k > 0) {
            c->copybuf = buf;
            *data = buf;
            return pg_leave(c, k);
        }
        if (k == 0) {
            r = pg_read_more(c, deadline);
            if (r < 0)
                break;
            continue;
        }
        if (k == -2) {
            r = pg_lost(c);
            break;
        }
        c->copy_out = false;
        r = pg_collect(c, NULL, deadline);
        if (r > 0)
            r = 0;
        break;
    }
    if (cut_off(r))
        pg_recover(c);
    return pg_leave(c, r);
}

/* ---- LISTEN / NOTIFY ---- */

int weft_pg_notify_wait(weft_pg_t *c, weft_pg_notify_t **out, int64_t deadline)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    int r = pg_enter(c);
    if (r < 0)
        return r;
    r = pg_end_copy(c);
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
        r = pg_read_more(c, deadline);
    }
    return pg_leave(c, r < 0 ? r : 0);
}

void weft_pg_notify_free(weft_pg_notify_t *n)
{
    free(n);
}

/* ---- pipeline mode ---- */

int weft_pg_pipeline_queue(weft_pg_t *c, const char *sql, const weft_pg_param_t *params, int n)
{
    if (c == NULL)
        return -EINVAL;
    if (!c->pipeline || c->synced)
        return WEFT_PG_ESTATE;
    return pg_send(c, SEND_PARAMS, sql, params, n, 0, NULL);
}

int weft_pg_pipeline_queue_prepared(weft_pg_t *c, const char *name,
                                    const weft_pg_param_t *params, int n)
{
    if (c == NULL)
        return -EINVAL;
    if (!c->pipeline || c->synced)
        return WEFT_PG_ESTATE;
    return pg_send(c, SEND_PREPARED, name, params, n, 0, NULL);
}

#define PIPE_FLUSH_EVERY 64

int weft_pg_pipeline(weft_pg_t *c, size_t n, int (*queue)(weft_pg_t *c, size_t i, void *arg),
                     int (*on_result)(weft_pg_t *c, size_t i, weft_pg_result_t *r, void *arg),
                     void *arg, int64_t deadline)
{
    if (queue == NULL)
        return -EINVAL;
    int r = pg_enter(c);
    if (r < 0)
        return r;
    r = pg_end_copy(c);
    if (r < 0)
        return pg_leave(c, r);
    if (!PQenterPipelineMode(c->pq))
        return pg_leave(c, WEFT_PG_ESTATE);
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
                        return pg_leave(c, -ECONNRESET);
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
                    return pg_leave(c, pg_lost(c));
            }
        }
        if (f == 0)
            f = PQflush(c->pq);
        if (f < 0)
            return pg_leave(c, pg_lost(c));

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
                    rc = set_err_result(c, res);
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
        int w = pg_wait(c, ev, deadline);
        if (w < 0) {
            rc = w;
            break;
        }
        if ((w & WEFT_READABLE) && pg_consume(c) < 0)
            return pg_leave(c, -ECONNRESET);
    }
    if (cut_off(rc) && !c->sync_seen) {
        pg_recover(c);
    } else if (c->pipeline) {
        PQexitPipelineMode(c->pq);
        c->pipeline = false;
    }
    return pg_leave(c, rc);
}
