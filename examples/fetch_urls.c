/*
 * fetch_urls: fetch many URLs at once with weft-curl, at most CONCURRENCY in flight and a timeout
 * each, inside a TaskGroup. One line per URL as it finishes:
 *     STATUS BYTES SECONDS URL        (any HTTP status is a response)
 *     ERR NAME SECONDS URL            (no response: the others go on)
 * and a total line. Exit status 0 when every URL gave a response, 1 otherwise, 2 on bad usage.
 *
 *     fetch_urls [-c CONCURRENCY] [-t SECONDS] URL...
 *     fetch_urls [-c CONCURRENCY] [-t SECONDS] < urls.txt     (one URL a line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft/curl.h>

struct job {
    const char *url;
    weft_curl_client_t *client;
    weft_sem_t *slots;
    double timeout;
};

static int nok, nfail;
static size_t total_bytes;

static int fetch(void *arg)
{
    struct job *j = arg;
    int r = weft_sem_acquire(j->slots); /* at most CONCURRENCY past this point */
    if (r < 0)
        return r;
    int64_t t0 = weft_time(NULL);
    struct weft_curl_request req = {.url = j->url};
    struct weft_curl_response resp;
    r = weft_curl_request_dl(j->client, &req, &resp, weft_deadline_in(j->timeout));
    double secs = (double)(weft_time(NULL) - t0) / 1e9;
    weft_sem_release(j->slots);
    if (r == 0) {
        printf("%d %zu %.3f %s\n", resp.status, resp.body_len, secs, j->url);
        total_bytes += resp.body_len;
        nok++;
        weft_curl_response_free(&resp);
    } else {
        printf("ERR %s %.3f %s\n", weft_curl_err_name(r), secs, j->url);
        nfail++;
    }
    fflush(stdout);
    return 0; /* a failed URL does not stop the group */
}

struct args {
    char **urls;
    size_t n;
    int concurrency;
    double timeout;
};

static int main_task(void *arg)
{
    struct args *a = arg;
    weft_curl_client_t *client;
    struct weft_curl_client_opts copts = {.max_connections = a->concurrency};
    int r = weft_curl_client_new(&client, &copts);
    if (r < 0) {
        fprintf(stderr, "fetch_urls: %s\n", weft_curl_strerror(r));
        return r;
    }
    weft_sem_t slots;
    weft_sem_init(&slots, a->concurrency);
    struct job *jobs = calloc(a->n ? a->n : 1, sizeof(*jobs));
    if (jobs == NULL)
        return -ENOMEM;
    int64_t t0 = weft_time(NULL);
    weft_group_t g = {0}; /* valgrind: weft_group_enter reads the storage before setting it */
    r = weft_group_enter(&g);
    if (r == 0) {
        for (size_t i = 0; i < a->n && r == 0; i++) {
            jobs[i] = (struct job){a->urls[i], client, &slots, a->timeout};
            r = weft_group_spawn(&g, NULL, fetch, &jobs[i]);
        }
        r = weft_group_exit(&g, r, NULL);
    }
    printf("TOTAL %zu urls, %d responses, %d errors, %zu bytes, %.3f s\n", a->n, nok, nfail,
           total_bytes, (double)(weft_time(NULL) - t0) / 1e9);
    free(jobs);
    weft_curl_client_free(client);
    return r;
}

static void usage(void)
{
    fprintf(stderr, "usage: fetch_urls [-c CONCURRENCY] [-t SECONDS] URL...\n"
                    "       (without URLs: one URL a line on stdin)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct args a = {.concurrency = 10, .timeout = 30.0};
    int opt;
    while ((opt = getopt(argc, argv, "c:t:h")) != -1) {
        char *end;
        switch (opt) {
        case 'c':
            a.concurrency = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || a.concurrency < 1)
                usage();
            break;
        case 't':
            a.timeout = strtod(optarg, &end);
            if (*end != '\0' || !(a.timeout > 0))
                usage();
            break;
        default:
            usage();
        }
    }
    a.urls = argv + optind;
    a.n = (size_t)(argc - optind);
    char **lines = NULL;
    if (a.n == 0) {
        size_t cap = 0;
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, stdin)) > 0) {
            while (len > 0 &&
                   (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
                line[--len] = '\0';
            if (len == 0 || line[0] == '#')
                continue;
            if (a.n == cap) {
                cap = cap ? cap * 2 : 64;
                char **p = realloc(lines, cap * sizeof(*p));
                if (p == NULL)
                    return 1;
                lines = p;
            }
            lines[a.n++] = strdup(line);
        }
        free(line);
        a.urls = lines;
    }
    int r = weft_run(main_task, &a);
    for (size_t i = 0; lines != NULL && i < a.n; i++)
        free(lines[i]);
    free(lines);
    if (r < 0 && r != WEFT_EGROUP)
        return 1;
    return nfail == 0 ? 0 : 1;
}
