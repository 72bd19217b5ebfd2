/*
 * The HTTP example and the bench server against real clients: curl (keep-alive reuse, HTTP/1.0,
 * a request body, an oversized header, a clean SIGTERM) and a short wrk load (wrk -t1 -c10 -d1s,
 * no errors). Skipped (77) without curl or wrk.
 */
#include "spawn.h"

#define CHILD_SECONDS 30.0

/* Start a built server program on a free port; returns its pid and the port in *port. */
static pid_t start_server(const char *rel, const char *mode, int *port)
{
    char path[4096];
    sp_built(rel, path, sizeof(path));
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "%s not built: skipped\n", path);
        exit(77);
    }
    *port = test_free_port();
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", *port);
    char *argv[] = {path, mode != NULL ? (char *)mode : ps, mode != NULL ? ps : NULL, NULL};
    int out;
    pid_t pid = sp_spawn(argv, &out);
    close(out); /* its banner is not needed; a closed pipe costs it nothing (SIGPIPE ignored) */
    CHECK(sp_wait_port(*port, weft_deadline_in(CHILD_SECONDS)));
    return pid;
}

/* Stop it with SIGTERM: it must exit 0, promptly. */
static void stop_server(pid_t pid)
{
    CHECK_EQ(kill(pid, SIGTERM), 0);
    CHECK_EQ(sp_wait(pid, weft_deadline_in(10)), 0);
}

/* Run a command, capture its stdout into buf; returns its exit status. */
static int run(char *const argv[], char *buf, size_t cap)
{
    int out;
    pid_t pid = sp_spawn(argv, &out);
    int64_t dl = weft_deadline_in(CHILD_SECONDS);
    sp_read_all(out, buf, cap, dl);
    return sp_wait(pid, dl);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static char out[65536];

static int curl_main(void *arg)
{
    (void)arg;
    int port;
    pid_t pid = start_server("examples/http_hello", NULL, &port);
    char u1[64], u2[64];
    snprintf(u1, sizeof(u1), "http://127.0.0.1:%d/", port);
    snprintf(u2, sizeof(u2), "http://127.0.0.1:%d/second?x=1", port);

    /* Two URLs on one command line: curl reuses the kept-alive connection for the second. */
    char *a1[] = {"curl", "-sS", "-i", "--max-time", "10", "-w", "connects=%{num_connects}\n",
                  u1,     u2,    NULL};
    CHECK_EQ(run(a1, out, sizeof(out)), 0);
    CHECK_EQ(count(out, "HTTP/1.1 200 OK"), 2);
    CHECK_EQ(count(out, "Hello, World!"), 2);
    CHECK_EQ(count(out, "Connection: keep-alive"), 2);
    CHECK(strstr(out, "connects=1") != NULL && strstr(out, "connects=0") != NULL);

    /* HTTP/1.0: the answer closes the connection. */
    char *a2[] = {"curl", "-sS", "-i", "-0", "--max-time", "10", u1, NULL};
    CHECK_EQ(run(a2, out, sizeof(out)), 0);
    CHECK(strstr(out, "Connection: close") != NULL);
    CHECK(strstr(out, "Hello, World!") != NULL);

    /* A request body is skipped and the connection still serves the next request. */
    char *a3[] = {"curl",
                  "-sS",
                  "--max-time",
                  "10",
                  "-d",
                  "some=form&data=1",
                  u1,
                  "--next",
                  "-sS",
                  "-w",
                  "connects=%{num_connects}\n",
                  u2,
                  NULL};
    CHECK_EQ(run(a3, out, sizeof(out)), 0);
    CHECK_EQ(count(out, "Hello, World!"), 2);
    CHECK(strstr(out, "connects=0") != NULL);

    /* A header line over the 8 KiB limit gets a 400, not a crash or a hang. */
    static char big[9100];
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'x', sizeof(big) - 8);
    big[sizeof(big) - 1] = '\0';
    char *a4[] = {"curl", "-sS", "-i", "--max-time", "10", "-H", big, u1, NULL};
    CHECK_EQ(run(a4, out, sizeof(out)), 0);
    CHECK(strstr(out, "HTTP/1.1 400 Bad Request") != NULL);

    /* Garbage from a raw client: a 400 and a close. */
    weft_stream_t *c;
    CHECK_EQ(weft_stream_connect(&c, "127.0.0.1", port, NULL), 0);
    CHECK_EQ(weft_stream_write(c, "NONSENSE\r\n\r\n", 12), 0);
    const char *d;
    size_t n;
    CHECK_EQ(weft_stream_read_all_dl(c, &d, &n, weft_deadline_in(10)), 0);
    CHECK(n > 12 && memcmp(d, "HTTP/1.1 400", 12) == 0);
    weft_stream_release(c);

    stop_server(pid);

    /* The bench server answers curl too. */
    pid = start_server("bench/weft-bench-server", "http", &port);
    snprintf(u1, sizeof(u1), "http://127.0.0.1:%d/", port);
    char *a5[] = {"curl", "-sS", "--max-time", "10", u1, u1, NULL};
    CHECK_EQ(run(a5, out, sizeof(out)), 0);
    CHECK_EQ(count(out, "Hello, World!"), 2);
    stop_server(pid);
    return 0;
}

static void test_curl(void)
{
    sp_require("curl");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(curl_main, NULL), 0));
}

/* wrk -t1 -c10 -d1s: requests served, no socket errors, no non-2xx answers. */
static void check_wrk(const char *rel, const char *mode)
{
    int port;
    pid_t pid = start_server(rel, mode, &port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    char *a[] = {"wrk", "-t1", "-c10", "-d1s", url, NULL};
    CHECK_EQ(run(a, out, sizeof(out)), 0);
    const char *rps = strstr(out, "Requests/sec:");
    CHECK(rps != NULL);
    CHECK(atof(rps + 13) > 100);
    CHECK(strstr(out, "Socket errors") == NULL);
    CHECK(strstr(out, "Non-2xx") == NULL);
    stop_server(pid);
}

static int wrk_main(void *arg)
{
    (void)arg;
    check_wrk("examples/http_hello", NULL);
    check_wrk("bench/weft-bench-server", "http");
    return 0;
}

static void test_wrk(void)
{
    sp_require("wrk");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(wrk_main, NULL), 0));
}

TEST_MAIN(test_curl, test_wrk)
