/*
 * The floor for weft-curl's benchmark: raw libcurl multi-socket over a hand-written epoll loop
 * (level-triggered; curl's timer is a one-shot deadline that bounds the epoll_wait timeout, as
 * CURLMOPT_TIMERFUNCTION asks: once it fired it is disarmed until curl sets it again), no tasks,
 * no per-request set-up beyond re-adding the same easy handle. N GETs of URL with INFLIGHT at a
 * time, keep-alive. The request is the one weft-curl sends by default: Accept-Encoding with
 * every coding libcurl has (CURLOPT_ACCEPT_ENCODING ""); FLOOR_BARE=1 in the environment
 * leaves that header out (libcurl's bare GET: "floor-bare" in run.sh).
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
#include <time.h>

static int epfd;
static double deadline = -1; /* curl's timer: when it is due (CLOCK_MONOTONIC seconds), or -1 */
static size_t bytes;

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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: weft-bench-curl-floor URL [N] [INFLIGHT]\n");
        return 2;
    }
    const char *url = argv[1];
    const char *bare = getenv("FLOOR_BARE");
    bool encodings = bare == NULL || *bare == '\0' || strcmp(bare, "0") == 0;
    long n = argc > 2 ? atol(argv[2]) : 10000;
    long inflight = argc > 3 ? atol(argv[3]) : 100;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
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
        if (encodings)
            curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
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
            int mask = 0;
            if (evs[i].events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi, evs[i].data.fd, mask, &running);
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
           encodings ? "floor" : "floor-bare", done, bad, bytes, wall, c, c * 1e6 / done);
    curl_multi_cleanup(multi);
    return bad != 0;
}
