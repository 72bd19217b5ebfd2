/*
 * A tiny test harness: one binary per test file, test cases as functions, CHECK macros that
 * print the failing expression and exit(1). Run a single case with `./binary case_name`.
 * Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE).
 */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, va_, vb_);                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                                 \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Virtual-clock options: timer tests run instantly and deterministically. */
static const struct weft_loop_opts test_vclock = {.virtual_clock = true};

/* Run `fn(arg)` as the main task of a virtual-clock loop; returns its result. */
static inline int run_virtual(weft_task_fn fn, void *arg)
{
    return weft_run_opts(fn, arg, &test_vclock);
}

/* CLOCK_MONOTONIC now, in ns (the clock weft_time() reads): for tests that check real time. */
static inline int64_t test_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This process's resident set size now, in bytes (-1 if /proc is not there). */
static inline long test_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* The number of open fds of this process (to check tests leave none behind). */
static inline int test_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

/*
 * A TCP port on 127.0.0.1 that nobody listens on now, for a test that wants a refused connection
 * or hands the port to an outside server (nginx, openssl s_server, a Python script). It is taken
 * below the kernel's ephemeral range (32768-60999 by default), at a random place, so that the
 * outgoing connections of tests running beside this one (ctest -j) never get it as their local
 * port between this check and the server's bind (which bind(0) could not promise), and a connect
 * to it can never connect to itself.
 */
static inline int test_free_port(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
    for (int tries = 0; tries < 1000; tries++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000u); /* 20000..31999 */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = bind(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (r == 0)
            return port;
    }
    CHECK(!"no free port in 20000-31999");
    return -1;
}

typedef void (*test_case_fn)(void);

static inline int test_main(int argc, char **argv, const char *const *names,
                            const test_case_fn *fns, size_t n)
{
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], names[i]) != 0)
            continue;
        fprintf(stderr, "-- %s\n", names[i]);
        fns[i]();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test case matched\n");
        return 1;
    }
    fprintf(stderr, "%d cases passed\n", ran);
    return 0;
}

/* At the end of a test file: TEST_MAIN(case1, case2, ...) */
#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const test_case_fn fns_[] = {__VA_ARGS__};                                          \
        static const char names_[] = #__VA_ARGS__;                                                 \
        const char *names[sizeof(fns_) / sizeof(fns_[0])];                                         \
        static char buf_[sizeof(names_)];                                                          \
        memcpy(buf_, names_, sizeof(names_));                                                      \
        size_t k = 0;                                                                              \
        for (char *tok = strtok(buf_, ", \n\t"); tok && k < sizeof(fns_) / sizeof(fns_[0]);        \
             tok = strtok(NULL, ", \n\t"))                                                         \
            names[k++] = tok;                                                                      \
        return test_main(argc, argv, names, fns_, k);                                              \
    }

#endif /* WEFT_TEST_H */
