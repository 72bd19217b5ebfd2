/*
 * Opening connections (asyncio's open_connection / create_connection): resolve, then try the
 * addresses one after another, or race them with Happy Eyeballs (RFC 8305): the addresses are
 * interleaved by family and a new attempt starts every `delay` or as soon as one fails; the
 * first connected socket wins and the other attempts are cancelled and closed. When every
 * attempt fails, the caller gets the first error and a text naming each address and its error.
 */
#include "net/net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

/* Append "addr: error" to the caller's error text. */
static void note(const struct weft_connect_opts *o, const struct sockaddr *sa, socklen_t len,
                 int err)
{
    if (o == NULL || o->errbuf == NULL || o->errlen == 0)
        return;
    size_t used = strnlen(o->errbuf, o->errlen);
    if (used + 1 >= o->errlen)
        return;
    char addr[128];
    if (sa == NULL || weft_addr_format(sa, len, addr, sizeof(addr)) < 0)
        snprintf(addr, sizeof(addr), "?");
    snprintf(o->errbuf + used, o->errlen - used, "%s%s: %s", used > 0 ? "; " : "", addr,
             weft_strerror(err));
}

/* One attempt: a socket connected to `ai`, or a negative errno (nothing left open). */
static int attempt(const struct addrinfo *ai, const struct weft_connect_opts *o, int64_t deadline)
{
    int fd = weft_socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int err = 0;
    if (o != NULL && o->local_host != NULL) {
        struct sockaddr_storage ls;
        socklen_t llen;
        err = weft_addr_parse(o->local_host, o->local_port, &ls, &llen);
        if (err == 0 && ls.ss_family != ai->ai_family)
            err = -EAFNOSUPPORT;
        if (err == 0 && bind(fd, (struct sockaddr *)&ls, llen) < 0)
            err = -errno;
    }
    if (err == 0)
        err = weft_sock_connect_dl(fd, ai->ai_addr, ai->ai_addrlen, deadline);
    if (err < 0) {
        weft_close(fd);
        return err;
    }
    return fd;
}

/* ---- Happy Eyeballs ---- */

struct race;

struct racer {
    const struct addrinfo *ai;
    struct race *race;
    weft_task_t *task;
    int fd;  /* connected socket, or -1 */
    int err; /* the attempt's error */
    bool done;
};

/* Off the stack (with the racers): a compact caller's frames move while it waits. */
struct race {
    struct weft_connect_opts opts; /* a copy: the caller's may live on its stack */
    weft_task_t *waiter;           /* the coordinating task, woken when an attempt ends... */
    bool parked; /* ...if it is parked in the race (not in a join, for instance) */
};

static int racer_main(void *arg)
{
    struct racer *r = arg;
    int fd = attempt(r->ai, &r->race->opts, WEFT_NO_DEADLINE);
    if (fd >= 0)
        r->fd = fd;
    else
        r->err = fd;
    r->done = true;
    if (r->race->parked)
        weft__wake(r->race->waiter, 0);
    return 0;
}

/* Cancelled before its first step: report a cancelled attempt, as if it had started. */
static void racer_unstarted(void *arg)
{
    struct racer *r = arg;
    r->err = -ECANCELED;
    r->done = true;
    if (r->race->parked)
        weft__wake(r->race->waiter, 0);
}

/* The next node from `ai` on whose family is (same) or is not (!same) `fam`. */
static const struct addrinfo *next_fam(const struct addrinfo *ai, int fam, bool same)
{
    while (ai != NULL && (ai->ai_family == fam) != same)
        ai = ai->ai_next;
    return ai;
}

/* RFC 8305 section 4: `first` addresses of the first family, then alternate families. */
static size_t interleave(const struct addrinfo *res, const struct addrinfo **out, int first)
{
    int fam = res->ai_family;
    const struct addrinfo *a = next_fam(res, fam, true), *b = next_fam(res, fam, false);
    size_t k = 0;
    for (int i = 0; i < first && a != NULL; i++) {
        out[k++] = a;
        a = next_fam(a->ai_next, fam, true);
    }
    while (a != NULL || b != NULL) {
        if (b != NULL) {
            out[k++] = b;
            b = next_fam(b->ai_next, fam, false);
        }
        if (a != NULL) {
            out[k++] = a;
            a = next_fam(a->ai_next, fam, true);
        }
    }
    return k;
}

/* Wait for every started racer to end, even if this task is cancelled meanwhile. */
static bool join_all(struct racer *rs, size_t started)
{
    bool cancelled = false;
    for (size_t i = 0; i < started; i++) {
        while (!weft_task_done(rs[i].task)) {
            if (weft_shield(rs[i].task) == -ECANCELED && !weft_task_done(rs[i].task))
                cancelled = true;
        }
        weft_task_release(rs[i].task);
    }
    return cancelled;
}

static int race(const struct addrinfo **addrs, size_t n, const struct weft_connect_opts *o,
                int64_t deadline)
{
    int err;
    weft_task_t *self = weft__task_check_current(&err);
    if (self == NULL)
        return err;
    struct racer *rs = weft__calloc(1, n * sizeof(*rs) + sizeof(struct race));
    if (rs == NULL)
        return -ENOMEM;
    struct race *rc = (struct race *)&rs[n];
    rc->opts = *o;
    rc->waiter = self;
    int64_t delay = weft_seconds_to_ns(o->happy_eyeballs_delay);
    size_t started = 0, done_at_start = 0;
    int winner = -1, result = 0;
    int64_t next_start = 0;
    for (;;) {
        /* Look at the attempts first: a wake-up may have come while we were not parked. */
        size_t ndone = 0;
        for (size_t i = 0; i < started; i++) {
            if (rs[i].done && rs[i].fd >= 0 && winner < 0)
                winner = (int)i;
            ndone += rs[i].done;
        }
        if (winner >= 0)
            break;
        /* The next attempt starts after the delay, or at once when one failed meanwhile. */
        int64_t now = weft_time(NULL);
        if (started < n && (started == 0 || now >= next_start || ndone > done_at_start)) {
            rs[started] = (struct racer){.ai = addrs[started], .race = rc, .fd = -1};
            err = weft__spawn_owned(&rs[started].task, racer_main, racer_unstarted,
                                    &rs[started], NULL);
            if (err < 0) {
                result = err;
                break;
            }
            started++;
            done_at_start = ndone;
            next_start = now + delay;
            continue;
        }
        if (ndone == started) {
            result = 1; /* every address failed */
            break;
        }
        int64_t until = started < n ? next_start : WEFT_NO_DEADLINE;
        if (deadline >= 0 && (until < 0 || deadline < until))
            until = deadline;
        rc->parked = true;
        int r = weft__park(self, WEFT__P_PRIM, rc, NULL, until);
        rc->parked = false;
        if (r == -ECANCELED || (r == -ETIMEDOUT && deadline >= 0 && weft_time(NULL) >= deadline)) {
            result = r;
            break;
        }
    }
    for (size_t i = 0; i < started; i++) {
        if ((int)i != winner)
            weft_task_cancel(rs[i].task, NULL);
    }
    bool cancelled = join_all(rs, started);
    for (size_t i = 0; i < started; i++) {
        if ((int)i != winner && rs[i].fd >= 0)
            weft_close(rs[i].fd); /* also connected, but lost the race */
    }
    if (winner >= 0 && (cancelled || result < 0)) {
        weft_close(rs[winner].fd);
        winner = -1;
    }
    if (winner >= 0) {
        result = rs[winner].fd;
    } else if (cancelled && result >= 0) {
        result = -ECANCELED;
    } else if (result == 1) {
        result = rs[0].err;
        for (size_t i = 0; i < started; i++)
            note(o, rs[i].ai->ai_addr, rs[i].ai->ai_addrlen, rs[i].err);
    }
    weft__free(rs);
    return result;
}

static int sequential(const struct addrinfo **addrs, size_t n, const struct weft_connect_opts *o,
                      int64_t deadline)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = attempt(addrs[i], o, deadline);
        if (fd >= 0)
            return fd;
        if (fd == -ECANCELED || fd == -ETIMEDOUT)
            return fd;
        note(o, addrs[i]->ai_addr, addrs[i]->ai_addrlen, fd);
        if (first == 0)
            first = fd;
    }
    return first;
}

int weft_stream_connect_addrinfo_dl(weft_stream_t **out, const struct addrinfo *addrs,
                                    const struct weft_connect_opts *opts, int64_t deadline)
{
    static const struct weft_connect_opts none;
    const struct weft_connect_opts *o = opts != NULL ? opts : &none;
    if (out != NULL)
        *out = NULL;
    if (out == NULL || addrs == NULL)
        return -EINVAL;
    if (o->errbuf != NULL && o->errlen > 0)
        o->errbuf[0] = '\0';
    int err;
    if (weft__task_check_current(&err) == NULL)
        return err;
    size_t n = 0;
    for (const struct addrinfo *ai = addrs; ai != NULL; ai = ai->ai_next)
        n++;
    const struct addrinfo **list = weft__malloc(n * sizeof(*list));
    if (list == NULL)
        return -ENOMEM;
    bool he = o->happy_eyeballs_delay > 0;
    if (he || o->interleave > 0) {
        n = interleave(addrs, list, o->interleave > 0 ? o->interleave : 1);
    } else {
        n = 0;
        for (const struct addrinfo *ai = addrs; ai != NULL; ai = ai->ai_next)
            list[n++] = ai;
    }
    int fd = he && n > 1 ? race(list, n, o, deadline) : sequential(list, n, o, deadline);
    weft__free(list);
    if (fd < 0)
        return fd;
    err = weft__stream_wrap(out, fd, true, o->stream.limit, o->stream.write_high);
    if (err < 0)
        weft_close(fd);
    return err;
}

int weft_stream_connect_addrinfo(weft_stream_t **out, const struct addrinfo *addrs,
                                 const struct weft_connect_opts *opts)
{
    return weft_stream_connect_addrinfo_dl(out, addrs, opts, WEFT_NO_DEADLINE);
}

int weft_stream_connect_dl(weft_stream_t **out, const char *host, int port,
                           const struct weft_connect_opts *opts, int64_t deadline)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || host == NULL || port < 0 || port > 65535)
        return -EINVAL;
    if (opts != NULL && opts->errbuf != NULL && opts->errlen > 0)
        opts->errbuf[0] = '\0';
    int err;
    if (weft__task_check_current(&err) == NULL)
        return err;
    struct addrinfo *res;
    err = weft__net_resolve(host, port, opts != NULL ? opts->family : AF_UNSPEC, SOCK_STREAM, 0,
                            &res, deadline);
    if (err < 0) {
        if (opts != NULL && opts->errbuf != NULL && opts->errlen > 0)
            snprintf(opts->errbuf, opts->errlen, "%s: %s", host, weft_strerror(err));
        return err;
    }
    err = weft_stream_connect_addrinfo_dl(out, res, opts, deadline);
    freeaddrinfo(res);
    return err;
}

int weft_stream_connect(weft_stream_t **out, const char *host, int port,
                        const struct weft_connect_opts *opts)
{
    return weft_stream_connect_dl(out, host, port, opts, WEFT_NO_DEADLINE);
}

int weft_stream_connect_unix_dl(weft_stream_t **out, const char *path,
                                const struct weft_stream_opts *opts, int64_t deadline)
{
    if (out != NULL)
        *out = NULL;
    struct sockaddr_un un;
    socklen_t len;
    int err = weft__unix_addr(path, &un, &len);
    if (err < 0 || out == NULL)
        return err < 0 ? err : -EINVAL;
    int fd = weft_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    err = weft_sock_connect_dl(fd, (struct sockaddr *)&un, len, deadline);
    if (err == 0)
        err = weft__stream_wrap(out, fd, true, opts != NULL ? opts->limit : 0,
                                opts != NULL ? opts->write_high : 0);
    if (err < 0)
        weft_close(fd);
    return err;
}

int weft_stream_connect_unix(weft_stream_t **out, const char *path,
                             const struct weft_stream_opts *opts)
{
    return weft_stream_connect_unix_dl(out, path, opts, WEFT_NO_DEADLINE);
}
