/*
 * weft-bench-clock: what it costs to know how much time passed, and to poll (docs/core.md,
 * section 2): CLOCK_MONOTONIC through the vDSO, CLOCK_MONOTONIC_COARSE, the TSC (x86-64), and a
 * zero-timeout epoll_wait on an idle epoll set. Prints ns per call, best of 5 rounds.
 *   weft-bench-clock [N]      (N calls per round, default 2,000,000)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static volatile int64_t sink;

static double per_call(int which, long n, int ep)
{
    struct epoll_event evs[64];
    struct timespec ts;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        switch (which) {
        case 0:
            clock_gettime(CLOCK_MONOTONIC, &ts);
            sink += ts.tv_nsec;
            break;
        case 1:
            clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
            sink += ts.tv_nsec;
            break;
        case 2:
#if defined(__x86_64__)
            sink += (int64_t)__rdtsc();
#endif
            break;
        case 3:
            sink += epoll_wait(ep, evs, 64, 0);
            break;
        }
    }
    return (double)(now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n <= 0)
        n = 2000000;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    if (ep < 0 || efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0) {
        perror("epoll");
        return 1;
    }
    static const char *const names[] = {"clock_gettime(CLOCK_MONOTONIC)",
                                        "clock_gettime(CLOCK_MONOTONIC_COARSE)", "rdtsc",
                                        "epoll_wait(timeout 0), nothing ready"};
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    for (int w = 0; w < 4; w++) {
#if !defined(__x86_64__)
        if (w == 2)
            continue;
#endif
        long calls = w == 3 ? n / 10 : n;
        double best = 1e18;
        for (int r = 0; r < 5; r++) {
            double d = per_call(w, calls, ep);
            if (d < best)
                best = d;
        }
        printf("%-40s %8.1f ns\n", names[w], best);
    }
    printf("CLOCK_MONOTONIC_COARSE resolution %ld ns\n", (long)res.tv_nsec);
    close(efd);
    close(ep);
    return 0;
}
