/*
 * The client: one curl multi handle per client, driven by the loop. libcurl says which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when its timer is due (CURLMOPT_TIMERFUNCTION). The sockets
 * go into a level-triggered epoll set of the client's own; a driver task waits on that set's fd
 * with weft_wait_fd() (weft's readiness is edge-style, and curl does not always read a socket
 * dry, so the level-triggered inner set is what keeps a wake-up from being lost), hands every
 * ready socket to curl_multi_socket_action(), and completes the transfers curl reports done. The
 * timer is a weft timer whose callback runs curl's timeouts. Nothing polls; no thread is added.
 */
#define _GNU_SOURCE
#include "curl_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Hand every finished transfer back to its task: remove it from the multi handle (its
 * connection goes back to the pool at once) and set its event. */
static void collect_done(weft_curl_client_t *c)
{
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
    }
}

static void on_timer(void *arg)
{
    weft_curl_client_t *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 disarms, 0 means as soon as possible (never inline: curl forbids
 * calling back into the multi handle from here). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    weft_curl_client_t *c = userp;
    if (timeout_ms < 0) {
        weft_timer_cancel(&c->timer);
        return 0;
    }
    int64_t when = weft_time(c->loop) + (int64_t)timeout_ms * 1000000;
    return weft_call_at(c->loop, &c->timer, when, on_timer, c) == 0 ? 0 : -1;
}

/* CURLMOPT_SOCKETFUNCTION: keep the epoll set in step with what curl wants of each socket. A
 * socket curl closed has already left the set (close removes it); EBADF/ENOENT are harmless. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    weft_curl_client_t *c = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = 0, .data.fd = s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    int op = socketp != NULL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->epfd, op, s, &ev) < 0) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(c->epfd, op, s, &ev) < 0)
            return -1;
    }
    if (socketp == NULL)
        curl_multi_assign(c->multi, s, (void *)1);
    return 0;
}

/*
 * The driver: wait until a socket of the set is ready, give each ready socket to curl, collect
 * finished transfers, and look at the set again at once (it is level-triggered: what curl left
 * unread shows up again) until it is quiet. After a few busy rounds in a row it yields once, so
 * that sockets curl keeps busy (a fast body) cannot starve the loop.
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
                int mask = 0;
                if (evs[i].events & EPOLLIN)
                    mask |= CURL_CSELECT_IN;
                if (evs[i].events & EPOLLOUT)
                    mask |= CURL_CSELECT_OUT;
                if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    mask |= CURL_CSELECT_ERR;
                curl_multi_socket_action(c->multi, evs[i].data.fd, mask, &running);
            }
            collect_done(c);
            if (++busy >= 4) {
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
    c->driver_gone = true;
    weft__curl_client_unref(c);
    return 0;
}

void weft__curl_client_unref(weft_curl_client_t *c)
{
    if (--c->refs > 0)
        return;
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
    int e = weft_spawn_opts(NULL, driver, c, &to);
    if (e < 0) {
        curl_multi_cleanup(c->multi);
        close(c->epfd);
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
