/*
 * Interoperation with CPython's asyncio: its open_connection client against a weft server (TCP
 * and Unix), and a weft client against its start_server. The python scripts sit beside this
 * file; every child is bounded in time. Skipped (77) without python3.
 */
#include "spawn.h"

#define CHILD_SECONDS 30.0

/* The server side: echo raw bytes until the end of the stream. */
static int echo_raw(weft_stream_t *s, void *arg)
{
    int *served = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = weft_stream_read(s, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (weft_stream_write(s, buf, (size_t)n) < 0 || weft_stream_drain(s) < 0)
            return -EPIPE;
    }
    (*served)++;
    return 0;
}

static int run_py_client(char *host, char *port)
{
    char script[4096];
    snprintf(script, sizeof(script), "%s/py_echo_client.py", sp_srcdir(__FILE__));
    char *argv[] = {"python3", script, host, port, NULL};
    pid_t pid = sp_spawn(argv, NULL);
    return sp_wait(pid, weft_deadline_in(CHILD_SECONDS));
}

static int py_client_main(void *arg)
{
    (void)arg;
    int served = 0;
    weft_server_t *srv;
    CHECK_EQ(weft_server_start(&srv, echo_raw, &served, "127.0.0.1", 0, NULL), 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", weft_server_port(srv));
    CHECK_EQ(run_py_client("127.0.0.1", port), 0);
    CHECK_EQ(served, 1);
    weft_server_close(srv);
    CHECK_EQ(weft_server_wait_closed_dl(srv, weft_deadline_in(5)), 0);
    weft_server_release(srv);

    /* The same over a Unix socket. */
    char path[108];
    nt_unix_path(path, sizeof(path), "py");
    CHECK_EQ(weft_server_start_unix(&srv, echo_raw, &served, path, NULL), 0);
    CHECK_EQ(run_py_client("unix", path), 0);
    CHECK_EQ(served, 2);
    weft_server_release(srv);
    return 0;
}

static void test_asyncio_client_weft_server(void)
{
    sp_require("python3");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(py_client_main, NULL), 0));
}

static int py_server_main(void *arg)
{
    (void)arg;
    char script[4096];
    snprintf(script, sizeof(script), "%s/py_echo_server.py", sp_srcdir(__FILE__));
    char *argv[] = {"python3", script, NULL};
    int out;
    pid_t pid = sp_spawn(argv, &out);
    int64_t dl = weft_deadline_in(CHILD_SECONDS);
    /* Its first line is the port. */
    weft_stream_t *po;
    CHECK_EQ(weft_stream_new(&po, out, NULL), 0);
    const char *line;
    size_t len;
    CHECK_EQ(weft_stream_readline_dl(po, &line, &len, dl), 0);
    CHECK(len > 1 && len < 16);
    char num[16];
    memcpy(num, line, len);
    num[len] = '\0';
    int port = (int)strtol(num, NULL, 10);
    CHECK(port > 0);

    char err[256];
    struct weft_connect_opts o = {.errbuf = err, .errlen = sizeof(err)};
    weft_stream_t *c[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_stream_connect_dl(&c[i], "127.0.0.1", port, &o, dl), 0);
    /* Interleave lines over three connections; asyncio echoes each. */
    for (int k = 0; k < 50; k++) {
        for (int i = 0; i < 3; i++) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "conn %d line %d\n", i, k);
            CHECK_EQ(weft_stream_write(c[i], msg, (size_t)n), 0);
            CHECK_EQ(weft_stream_drain(c[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "conn %d line %d\n", i, k);
            CHECK_EQ(weft_stream_readline_dl(c[i], &line, &len, dl), 0);
            CHECK_EQ(len, (size_t)n);
            CHECK(memcmp(line, msg, len) == 0);
        }
    }
    /* readuntil across a line sent in pieces. */
    CHECK_EQ(weft_stream_write(c[0], "abc", 3), 0);
    CHECK_EQ(weft_stream_write(c[0], "def\n", 4), 0);
    CHECK_EQ(weft_stream_readuntil_dl(c[0], "de", 2, &line, &len, dl), 0);
    CHECK_EQ(len, 5);
    char rest[2];
    CHECK_EQ(weft_stream_readexactly_dl(c[0], rest, 2, NULL, dl), 0);
    CHECK(memcmp(rest, "f\n", 2) == 0);
    /* Closing our side: asyncio's handler sees EOF and closes; we read the end. */
    CHECK_EQ(weft_stream_write_eof(c[1]), 0);
    CHECK_EQ(weft_stream_read_all_dl(c[1], &line, &len, dl), 0);
    CHECK_EQ(len, 0);
    CHECK_EQ(weft_stream_write(c[2], "QUIT\n", 5), 0);
    CHECK_EQ(weft_stream_drain(c[2]), 0);
    CHECK_EQ(sp_wait(pid, dl), 0);
    for (int i = 0; i < 3; i++) {
        weft_stream_close(c[i]);
        weft_stream_wait_closed(c[i]);
        weft_stream_release(c[i]);
    }
    weft_stream_release(po);
    return 0;
}

static void test_weft_client_asyncio_server(void)
{
    sp_require("python3");
    NT_NO_FD_LEAK(CHECK_EQ(weft_run(py_server_main, NULL), 0));
}

TEST_MAIN(test_asyncio_client_weft_server, test_weft_client_asyncio_server)
