/*
 * The client: one curl multi handle per client, driven by the loop. libcurl says which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when its timer is due (CURLMOPT_TIMERFUNCTION). The sockets
 * go into a level-triggered epoll set of the client's own; a driver task waits on that set's fd
 * with weft_wait_fd() (weft's readiness is edge-style, and curl does not always read a socket
 * dry, so the level-triggered inner set is what keeps a wake-up from being lost), hands every
 * ready socket to curl_multi_socket_action(), and completes the transfers curl reports done. The
 * timer is a weft timer whose callback runs curl's timeouts. Nothing polls; no thread is added.
 *
 * Keep-alive without epoll_ctl: libcurl tells the socket callback to forget a socket (REMOVE)
 * whenever its transfer ends, and to watch it again when the next transfer takes the pooled
 * connection, two epoll_ctl calls per request for nothing. The client opens and closes curl's
 * connection sockets itself (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION, set on every
 * transfer), so it knows when an fd number starts and stops meaning that connection; such a
 * socket, watched for reading only, stays in the set when curl forgets it ("parked"), and the
 * next transfer's request for EPOLLIN finds it registered already. A parked socket that turns
 * readable (the server closed the idle connection, or sent something unasked) leaves the set
 * then, so the level-triggered set cannot spin on it; curl sees the closed connection itself
 * when it next picks it. Sockets curl opens otherwise (the threaded resolver's socket pair)
 * are registered and removed as curl says.
 */
#define _GNU_SOURCE
#include "curl_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Hand every finished transfer back to its task: remove it from the multi handle (its
 * connection goes back to the pool at once) and set its event. */
static int collect_done(weft_curl_client_t *c)
{
    int woken = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        int code = (int)m->data.result;
        struct weft_curl_stream *r = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(c->multi, e); /* m is invalid from here on */
        if (r == NULL)
            continue;
        r->in_multi = false;
        r->done = true;
        r->code = code;
        weft_event_set(&r->ev);
        woken++;
    }
    return woken;
}

static void on_timer(void *arg)
{
    weft_curl_client_t *c = arg;
    int running;
    c->timer_now = false;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 disarms, 0 means as soon as possible (never inline: curl forbids
 * calling back into the multi handle from here). Every new transfer asks for 0; while the timer
 * is armed for "as soon as possible" already, that changes nothing (no clock read, no re-arm). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    weft_curl_client_t *c = userp;
    if (timeout_ms < 0) {
        c->timer_now = false;
        weft_timer_cancel(&c->timer);
        return 0;
    }
    if (timeout_ms == 0 && c->timer_now)
        return 0;
    int64_t when = weft_time(c->loop) + (int64_t)timeout_ms * 1000000;
    if (weft_call_at(c->loop, &c->timer, when, on_timer, c) != 0) {
        c->timer_now = false;
        return -1;
    }
    c->timer_now = timeout_ms == 0;
    return 0;
}

/* ---- sockets ---- */

/* The client's record of fd `s`, the table grown to hold it; NULL when out of memory. */
static struct wc_sock *sock_slot(weft_curl_client_t *c, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    if (s >= c->nsocks) {
        int n = c->nsocks ? c->nsocks : 64;
        while (n <= s)
            n *= 2;
        struct wc_sock *t = realloc(c->socks, (size_t)n * sizeof(*t));
        if (t == NULL)
            return NULL;
        memset(t + c->nsocks, 0, (size_t)(n - c->nsocks) * sizeof(*t));
        c->socks = t;
        c->nsocks = n;
    }
    return &c->socks[s];
}

/* CURLOPT_OPENSOCKETFUNCTION: every connection socket of the client's transfers. */
curl_socket_t weft__curl_open_socket(void *client, curlsocktype purpose,
                                     struct curl_sockaddr *addr)
{
    (void)purpose;
    weft_curl_client_t *c = client;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    struct wc_sock *st = sock_slot(c, fd);
    if (st != NULL)
        *st = (struct wc_sock){.ours = true}; /* a new file: nothing of it is in the set */
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: closing the fd takes it out of the set too. */
int weft__curl_close_socket(void *client, curl_socket_t s)
{
    weft_curl_client_t *c = client;
    if (s >= 0 && s < c->nsocks)
        c->socks[s] = (struct wc_sock){0};
    return close(s);
}

/* Take fd `s` out of the set. */
static void sock_del(weft_curl_client_t *c, curl_socket_t s, struct wc_sock *st)
{
    if (st == NULL || st->reg)
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
    if (st != NULL)
        st->reg = st->parked = false;
}

/* CURLMOPT_SOCKETFUNCTION: keep the epoll set in step with what curl wants of each socket (with
 * the parking described above). Without a table entry (out of memory) every change is made. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    weft_curl_client_t *c = userp;
    struct wc_sock *st = sock_slot(c, s);
    if (what == CURL_POLL_REMOVE) {
        if (st != NULL && st->ours && st->reg && st->mask == EPOLLIN)
            st->parked = true;
        else
            sock_del(c, s, st);
        return 0;
    }
    uint8_t mask = 0;
    if (what & CURL_POLL_IN)
        mask |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        mask |= EPOLLOUT;
    if (st != NULL) {
        st->parked = false;
        if (st->ours && st->reg && st->mask == mask)
            return 0;
    }
    struct epoll_event ev = {.events = mask, .data.fd = s};
    int op = st != NULL && st->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->epfd, op, s, &ev) < 0) {
        /* Not what the table says (a socket closed behind its back, or no table). */
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(c->epfd, op, s, &ev) < 0) {
            if (st != NULL)
                st->reg = false;
            return -1;
        }
    }
    if (st != NULL) {
        st->reg = true;
        st->mask = mask;
    }
    return 0;
}

/*
 * The driver: wait until a socket of the set is ready, give each ready socket to curl, collect
 * finished transfers, and look at the set again at once (it is level-triggered: what curl left
 * unread shows up again) until it is quiet. It yields after a round that finished transfers, so
 * that their tasks run (and start their next requests) before more responses are read: with
 * many requests in flight, reading every response first and letting the tasks start the next
 * ones afterwards makes libcurl free a whole round's buffers (16 KiB per transfer) and allocate
 * them again, and glibc gives the freed top of the heap back to the kernel and faults it in again
 * each time (brk, page faults: a tenth of the CPU time per request). It also yields after a few
 * busy rounds in a row, so that sockets curl keeps busy (a fast body) cannot starve the loop.
 */
static int driver(void *arg)
{
    weft_curl_client_t *c = arg;
    struct epoll_event evs[64];
    int busy = 0;
    for (;;) {
        if (c->closed)
            break;
        int n = epoll_wait(c->epfd, evs, 64, 0);
        if (n > 0) {
            int running;
            for (int i = 0; i < n; i++) {
                int fd = evs[i].data.fd;
                if (fd < c->nsocks && c->socks[fd].parked) {
                    sock_del(c, fd, &c->socks[fd]); /* an idle connection closed or spoke */
                    continue;
                }
                int mask = 0;
                if (evs[i].events & EPOLLIN)
                    mask |= CURL_CSELECT_IN;
                if (evs[i].events & EPOLLOUT)
                    mask |= CURL_CSELECT_OUT;
                if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    mask |= CURL_CSELECT_ERR;
                curl_multi_socket_action(c->multi, fd, mask, &running);
            }
            if (collect_done(c) > 0 || ++busy >= 4) {
                busy = 0;
                if (weft_yield() == -ECANCELED)
                    break;
            }
            continue;
        }
        busy = 0;
        int r = weft_wait_fd(c->epfd, WEFT_READABLE);
        if (r == -ECANCELED || r == -EBADF)
            break;
    }
    return 0;
}

/* The driver's end, whether it ran or was cancelled before its first step (a shutdown that
 * cancels every task): later requests fail with -ESHUTDOWN, and its reference is dropped. */
static void driver_done(weft_future_t *fut, void *arg)
{
    (void)fut;
    weft_curl_client_t *c = arg;
    c->driver_gone = true;
    weft__curl_client_unref(c);
}

void weft__curl_client_unref(weft_curl_client_t *c)
{
    if (--c->refs > 0)
        return;
    free(c->socks);
    free(c);
}

/* A transfer object: a recycled one (its easy handle and options kept) or a new one. */
struct weft_curl_stream *weft__curl_req_get(weft_curl_client_t *c)
{
    struct weft_curl_stream *r;
    if (c->nspare > 0) {
        r = c->spare[--c->nspare];
        CURL *e = r->easy;
        int kind = r->kind;
        size_t set_max = r->set_max;
        memset(r, 0, sizeof(*r));
        r->easy = e;
        r->kind = kind;
        r->set_max = set_max;
        return r;
    }
    r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->easy = curl_easy_init();
        r->kind = -1; /* a fresh handle: nothing to reset */
    }
    if (r != NULL && r->easy == NULL) {
        free(r);
        r = NULL;
    }
    return r;
}

/* Recycle a finished transfer (out of the multi handle, its buffers freed). */
void weft__curl_req_put(weft_curl_client_t *c, struct weft_curl_stream *r)
{
    if (c->nspare < WC_SPARE && !c->closed) {
        c->spare[c->nspare++] = r;
        return;
    }
    curl_easy_cleanup(r->easy);
    free(r);
}

bool weft_curl_async_dns(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v != NULL && (v->features & CURL_VERSION_ASYNCHDNS) != 0;
}

int weft_curl_client_new(weft_curl_client_t **out, const struct weft_curl_client_opts *opts)
{
    static const struct weft_curl_client_opts none;
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (opts == NULL)
        opts = &none;
    weft_loop_t *loop = weft_loop_current();
    if (loop == NULL)
        return -EPERM;
    /* Process-wide, idempotent and reference counted from 7.84 on; the first call is not
     * thread-safe before that. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return WEFT_CURL_EOTHER;
    weft_curl_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->refs = 1;
    const char *v = getenv("WEFT_CURL_VERBOSE");
    c->verbose = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
    c->max_body = opts->max_body ? opts->max_body : 64u << 20;
    c->max_header = opts->max_header_bytes ? opts->max_header_bytes : 64u << 10;
    weft_timer_init(&c->timer);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        int e = -errno;
        free(c);
        return e;
    }
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        close(c->epfd);
        free(c);
        return -ENOMEM;
    }
    long total = opts->max_connections == 0 ? 100 : opts->max_connections;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (total > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, total);
    if (opts->max_host_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections);
    if (opts->idle_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, opts->idle_connections);
    else if (total > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, total);

    struct weft_task_opts to = {.name = "weft-curl-driver", .stack_mode = WEFT_STACK_OWN};
    weft_task_t *t;
    int e = weft_spawn_opts(&t, driver, c, &to);
    if (e == 0) {
        e = weft_future_add_done_callback(weft_task_future(t), driver_done, c);
        if (e < 0)
            weft_task_cancel(t, NULL); /* not started yet: it ends without running */
        weft_task_release(t);
    }
    if (e < 0) {
        curl_multi_cleanup(c->multi);
        close(c->epfd);
        free(c->socks);
        free(c);
        return e;
    }
    c->refs++;
    *out = c;
    return 0;
}

int weft_curl_client_free(weft_curl_client_t *c)
{
    if (c == NULL)
        return 0;
    if (c->active > 0)
        return -EBUSY;
    c->closed = true;
    for (int i = 0; i < c->nspare; i++) {
        curl_easy_cleanup(c->spare[i]->easy);
        free(c->spare[i]);
    }
    c->nspare = 0;
    curl_multi_cleanup(c->multi); /* closes the pooled connections */
    c->multi = NULL;
    weft_timer_cancel(&c->timer);
    weft_close(c->epfd); /* wakes the driver, which sees `closed` and ends */
    c->epfd = -1;
    weft__curl_client_unref(c);
    return 0;
}

size_t weft_curl_client_active(const weft_curl_client_t *c)
{
    return c != NULL ? c->active : 0;
}
