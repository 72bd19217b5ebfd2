/*
 * weft-curl's side of the benchmark: INFLIGHT tasks share one client and make N GETs of URL in
 * all, each a straight-line weft_curl_request() (status and body checked, response freed).
 *   weft-bench-curl-weft URL [N] [INFLIGHT]
 * Prints requests, wall seconds and the CPU time of the request phase (getrusage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <weft.h>
#include <weft/curl.h>

static const char *url;
static long n, inflight, next, done, bad;
static size_t bytes;
static weft_curl_client_t *client;

static int worker(void *arg)
{
    (void)arg;
    struct weft_curl_request q = {.url = url};
    while (next < n) {
        next++;
        struct weft_curl_response r;
        int e = weft_curl_request(client, &q, &r);
        done++;
        if (e < 0 || r.status != 200) {
            bad++;
            continue;
        }
        bytes += r.body_len;
        weft_curl_response_free(&r);
    }
    return 0;
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int main_task(void *arg)
{
    (void)arg;
    struct weft_curl_client_opts o = {.max_connections = inflight};
    int e = weft_curl_client_new(&client, &o);
    if (e < 0)
        return e;
    double c0 = cpu();
    int64_t t0 = weft_time(NULL);
    weft_task_t **t = calloc((size_t)inflight, sizeof(*t));
    for (long i = 0; i < inflight; i++)
        weft_spawn(&t[i], worker, NULL);
    weft_gather(t, (size_t)inflight, NULL, 0);
    double wall = (double)(weft_time(NULL) - t0) / 1e9, c = cpu() - c0;
    for (long i = 0; i < inflight; i++)
        weft_task_release(t[i]);
    free(t);
    printf("weft requests=%ld errors=%ld bytes=%zu wall_s=%.3f cpu_s=%.3f cpu_us_per_req=%.2f\n",
           done, bad, bytes, wall, c, c * 1e6 / (double)done);
    weft_curl_client_free(client);
    return bad != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: weft-bench-curl-weft URL [N] [INFLIGHT]\n");
        return 2;
    }
    url = argv[1];
    n = argc > 2 ? atol(argv[2]) : 10000;
    inflight = argc > 3 ? atol(argv[3]) : 100;
    return weft_run(main_task, NULL) != 0;
}
