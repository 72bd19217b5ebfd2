/*
 * The floor for weft-curl's benchmark: raw libcurl multi-socket over a hand-written epoll loop
 * (level-triggered; curl's timer is a one-shot deadline that bounds the epoll_wait timeout, as
 * CURLMOPT_TIMERFUNCTION asks: once it fired it is disarmed until curl sets it again), no tasks,
 * no per-request set-up beyond re-adding the same easy handle, a write callback that only counts
 * the body's bytes. N GETs of URL with INFLIGHT at a time, keep-alive.
 *
 * The request is the one weft-curl sends by default: Accept-Encoding with every coding libcurl
 * has (CURLOPT_ACCEPT_ENCODING ""; Go, Node and aiohttp send one too). The socket callback does
 * what libcurl asks, one epoll_ctl per change (two per request: curl forgets a connection's
 * socket when its transfer ends and watches it again when the next transfer takes it).
 * Variants, from the environment (each prints its name on its line):
 *   FLOOR_BARE=1  "floor-bare": no Accept-Encoding (libcurl's bare GET).
 *   FLOOR_PARK=1  "floor-park": the connection sockets are opened and closed by the floor
 *                 (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION) and an idle pooled one stays
 *                 in the epoll set, as weft-curl does, so that keep-alive costs no epoll_ctl.
 *   weft-bench-curl-floor URL [N] [INFLIGHT]
 * Prints requests, wall seconds and the CPU time of the request phase (getrusage).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int epfd;
static double deadline = -1; /* curl's timer: when it is due (CLOCK_MONOTONIC seconds), or -1 */
static size_t bytes;

/* FLOOR_PARK: what the floor knows of each fd (as weft-curl's client.c). */
#define MAXFD 65536
static struct {
    unsigned char mask; /* registered events */
    bool reg, ours, parked;
} socks[MAXFD];

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    bytes += size * n;
    return size * n;
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
    (void)e;
    CURLM *multi = u;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(epfd, sp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0)
        epoll_ctl(epfd, sp ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &ev);
    if (sp == NULL)
        curl_multi_assign(multi, s, (void *)1);
    return 0;
}

/* FLOOR_PARK's socket callback: a connection socket (opened below) that curl forgets while it
 * is watched for reading only stays in the set; the next transfer's EPOLLIN finds it there. */
static int socket_cb_park(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
    if (s < 0 || s >= MAXFD)
        return socket_cb(e, s, what, u, sp);
    if (what == CURL_POLL_REMOVE) {
        if (socks[s].ours && socks[s].reg && socks[s].mask == EPOLLIN) {
            socks[s].parked = true;
        } else {
            epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
            socks[s].reg = socks[s].parked = false;
        }
        return 0;
    }
    unsigned char mask = 0;
    if (what & CURL_POLL_IN)
        mask |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        mask |= EPOLLOUT;
    socks[s].parked = false;
    if (socks[s].ours && socks[s].reg && socks[s].mask == mask)
        return 0;
    struct epoll_event ev = {.events = mask, .data.fd = s};
    int op = socks[s].reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epfd, op, s, &ev) < 0 &&
        epoll_ctl(epfd, op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s, &ev) < 0)
        return -1;
    socks[s].reg = true;
    socks[s].mask = mask;
    return 0;
}

static curl_socket_t open_socket(void *u, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)u;
    (void)purpose;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd >= 0 && fd < MAXFD) {
        socks[fd].reg = socks[fd].parked = false;
        socks[fd].ours = true;
    }
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int close_socket(void *u, curl_socket_t s)
{
    (void)u;
    if (s >= 0 && s < MAXFD)
        socks[s].reg = socks[s].ours = socks[s].parked = false;
    return close(s);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int timer_cb(CURLM *m, long ms, void *u)
{
    (void)m;
    (void)u;
    deadline = ms < 0 ? -1 : now() + ms / 1e3;
    return 0;
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: weft-bench-curl-floor URL [N] [INFLIGHT]\n");
        return 2;
    }
    const char *url = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 10000;
    long inflight = argc > 3 ? atol(argv[3]) : 100;
    bool bare = env_on("FLOOR_BARE"), park = env_on("FLOOR_PARK");
    char name[32];
    snprintf(name, sizeof(name), "floor%s%s", bare ? "-bare" : "", park ? "-park" : "");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, park ? socket_cb_park : socket_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, multi);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, inflight);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, inflight);
    double c0 = cpu(), t0 = now();
    long started = 0, done = 0, bad = 0;
    for (; started < inflight && started < n; started++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (!bare)
            curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        if (park) {
            curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
            curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        }
        curl_multi_add_handle(multi, e);
    }
    int running;
    struct epoll_event evs[64];
    while (done < n) {
        int timeout = -1;
        if (deadline >= 0) {
            double left = deadline - now();
            timeout = left <= 0 ? 0 : (int)(left * 1e3) + 1;
        }
        int k = epoll_wait(epfd, evs, 64, timeout);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (park && fd < MAXFD && socks[fd].parked) {
                /* An idle pooled connection closed or spoke: out of the level-triggered set. */
                epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
                socks[fd].reg = socks[fd].parked = false;
                continue;
            }
            int mask = 0;
            if (evs[i].events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi, fd, mask, &running);
        }
        /* The socket actions ran curl's expired timers too (and re-armed the deadline through
         * timer_cb): only a deadline still due is a timer that fires. */
        if (deadline >= 0 && now() >= deadline) {
            deadline = -1; /* one-shot: curl arms it again when it needs to */
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            long st = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
            bad += m->data.result != CURLE_OK || st != 200;
            done++;
            curl_multi_remove_handle(multi, e);
            if (started < n) {
                started++;
                curl_multi_add_handle(multi, e);
            } else {
                curl_easy_cleanup(e);
            }
        }
    }
    double wall = now() - t0, c = cpu() - c0;
    printf("%s requests=%ld errors=%ld bytes=%zu wall_s=%.3f cpu_s=%.3f cpu_us_per_req=%.2f\n",
           name, done, bad, bytes, wall, c, c * 1e6 / done);
    curl_multi_cleanup(multi);
    return bad != 0;
}
