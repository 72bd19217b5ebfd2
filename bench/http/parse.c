/*
 * Parser throughput: weft_http_parse against libhttp-parser 2.9 (http_parser_execute up to the
 * end of the head, with the callbacks a server needs: url, header fields and values) on the same
 * corpus of requests, in one process, one after the other, best of 5 rounds each.
 *   weft-bench-http-parse [SECONDS_PER_ROUND]
 * Prints ns per request and MB/s for each, and the ratio.
 *   weft-bench-http-parse -n ROUNDS
 * Parses the corpus ROUNDS times with each parser (run_weft, then run_hp) and prints nothing
 * timed: for instruction counts under callgrind, which do not depend on the machine's load:
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out weft-bench-http-parse -n 20000
 *   callgrind_annotate --inclusive=yes cg.out | grep -E 'run_(weft|hp)'
 * (instructions per request = the function's count / (ROUNDS * 4)).
 */
#include <weft/http.h>

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const reqs[] = {
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "GET /plaintext HTTP/1.1\r\nHost: server\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
    "Gecko/20130501 Firefox/30.0 AppleWebKit/600.00 Chrome/30.0.0000.0 Trident/10.0 "
    "Safari/600.00\r\nCookie: uid=12345678901234567890; __utma=1.1234567890.1234567890."
    "1234567890.1234567890.12; wd=2560x1600\r\nAccept: text/html,application/xhtml+xml,"
    "application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: "
    "keep-alive\r\n\r\n",
    "POST /api/items?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\n"
    "Content-Length: 27\r\nAccept: */*\r\n\r\n",
    "GET /static/app.js HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip, deflate, br\r\n"
    "If-None-Match: \"abc123\"\r\nReferer: https://example.com/\r\n\r\n",
};
#define NREQ (sizeof(reqs) / sizeof(reqs[0]))

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile size_t sink;

static int cb_data(http_parser *p, const char *at, size_t n)
{
    (void)p;
    sink += n + (size_t)(unsigned char)at[0];
    return 0;
}

static int cb_done(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings settings = {
    .on_url = cb_data, .on_header_field = cb_data, .on_header_value = cb_data,
    .on_headers_complete = cb_done};

static struct weft_http_header hdrs[WEFT_HTTP_MAX_HEADERS];

/* One pass over the corpus with each parser: the timed loops and the -n mode share them. */
__attribute__((noinline)) static void run_weft(const size_t *lens)
{
    for (size_t i = 0; i < NREQ; i++) {
        struct weft_http_parser p;
        struct weft_http_head h = {.headers = hdrs};
        weft_http_parser_init(&p, NULL);
        ssize_t r = weft_http_parse(&p, reqs[i], lens[i], &h, WEFT_HTTP_MAX_HEADERS);
        if (r <= 0)
            abort();
        sink += h.nheaders;
    }
}

__attribute__((noinline)) static void run_hp(const size_t *lens)
{
    for (size_t i = 0; i < NREQ; i++) {
        http_parser p;
        http_parser_init(&p, HTTP_REQUEST);
        size_t used = http_parser_execute(&p, &settings, reqs[i], lens[i]);
        if (HTTP_PARSER_ERRNO(&p) != HPE_PAUSED || used == 0)
            abort();
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        size_t lens[NREQ];
        for (size_t i = 0; i < NREQ; i++)
            lens[i] = strlen(reqs[i]);
        long rounds = atol(argv[2]);
        for (long k = 0; k < rounds; k++)
            run_weft(lens);
        for (long k = 0; k < rounds; k++)
            run_hp(lens);
        printf("%ld rounds of %zu requests with each parser\n", rounds, (size_t)NREQ);
        return 0;
    }
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    size_t lens[NREQ], bytes = 0;
    for (size_t i = 0; i < NREQ; i++)
        bytes += lens[i] = strlen(reqs[i]);
    double best_w = 1e9, best_h = 1e9;
    for (int round = 0; round < 5; round++) {
        size_t n = 0;
        double t0 = now(), t;
        do {
            for (int k = 0; k < 1000; k++)
                run_weft(lens);
            n += 1000 * NREQ;
        } while ((t = now()) - t0 < secs);
        double ns = (t - t0) * 1e9 / (double)n;
        best_w = ns < best_w ? ns : best_w;

        n = 0;
        t0 = now();
        do {
            for (int k = 0; k < 1000; k++)
                run_hp(lens);
            n += 1000 * NREQ;
        } while ((t = now()) - t0 < secs);
        ns = (t - t0) * 1e9 / (double)n;
        best_h = ns < best_h ? ns : best_h;
    }
    double avg = (double)bytes / NREQ;
    printf("weft_http_parse     %7.1f ns/request  %7.0f MB/s\n", best_w, avg / best_w * 1e3);
    printf("libhttp-parser 2.9  %7.1f ns/request  %7.0f MB/s\n", best_h, avg / best_h * 1e3);
    printf("ratio (libhttp-parser / weft): %.2fx\n", best_h / best_w);
    return 0;
}
