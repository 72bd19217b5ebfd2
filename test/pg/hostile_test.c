/*
 * weft-pg against servers that misbehave (no PostgreSQL here: a fake server of the test's own on
 * 127.0.0.1, a thread per connection, speaking just enough of the protocol): one that never
 * answers, one that answers the startup with an HTTP error, one that hangs up at once; and, after
 * a proper startup, one that never answers a query, one that answers with a message type that
 * does not exist and then stalls, one that announces a 2 GB row, one that cuts a message in the
 * middle and hangs up. Every call returns an error within its deadline, or at once when the
 * connection is lost (-ECONNRESET, not a server error the server never sent); the connection is
 * then closed and says so; no file descriptor is left behind.
 */
#include "test.h"

#include <weft/pg.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define S 1000000000LL

enum mode {
    SILENT,        /* reads the startup, never answers */
    HTTP_ERROR,    /* answers the startup with an HTTP error, then hangs up */
    HANG_UP,       /* hangs up at once */
    QUERY_SILENT,  /* a proper startup; never answers a query */
    QUERY_GARBAGE, /* a proper startup; answers a query with an unknown message type, stalls */
    QUERY_HUGE,    /* a proper startup; announces a 2 GB DataRow (libpq refuses it) */
    QUERY_CUT,     /* a proper startup; half a message, then hangs up */
};

static int lfd = -1, port;
static _Atomic enum mode mode; /* read by the server's threads */
static atomic_int cancels;     /* cancel requests received */

static bool read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r <= 0)
            return;
        p += r;
        n -= (size_t)r;
    }
}

/* One protocol message: type byte, then a length that counts itself, then the body. */
static void put_msg(int fd, char type, const void *body, uint32_t len)
{
    char hdr[5] = {type};
    uint32_t l = htonl(len + 4);
    memcpy(hdr + 1, &l, 4);
    write_all(fd, hdr, 5);
    if (len > 0)
        write_all(fd, body, len);
}

static void put_param(int fd, const char *name, const char *value)
{
    char b[128];
    size_t n = (size_t)snprintf(b, sizeof(b), "%s%c%s", name, '\0', value) + 1;
    put_msg(fd, 'S', b, (uint32_t)n);
}

/* Drain until EOF (the client hung up or was closed). */
static void until_eof(int fd)
{
    char b[4096];
    while (read(fd, b, sizeof(b)) > 0) {
    }
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) { /* the startup packet, after any SSL or GSS request */
        uint32_t len, code;
        if (!read_all(fd, &len, 4) || !read_all(fd, &code, 4))
            goto out;
        len = ntohl(len);
        code = ntohl(code);
        if (len < 8 || len > 10000)
            goto out;
        char rest[10000];
        if (!read_all(fd, rest, len - 8))
            goto out;
        if (code == 80877103 || code == 80877104) { /* SSLRequest, GSSENCRequest: no */
            write_all(fd, "N", 1);
            continue;
        }
        if (code == 80877102) { /* CancelRequest */
            atomic_fetch_add(&cancels, 1);
            goto out;
        }
        break;
    }
    switch (mode) {
    case SILENT:
        until_eof(fd);
        goto out;
    case HTTP_ERROR: {
        const char *h = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        write_all(fd, h, strlen(h));
        goto out;
    }
    case HANG_UP:
        goto out;
    default:
        break;
    }
    /* A proper startup: authentication OK, the key for cancels, the parameters, ready. */
    uint32_t zero = 0, key[2] = {htonl(4242), htonl(77)};
    put_msg(fd, 'R', &zero, 4);
    put_msg(fd, 'K', key, 8);
    put_param(fd, "server_version", "15.0");
    put_param(fd, "server_encoding", "UTF8");
    put_param(fd, "client_encoding", "UTF8");
    put_param(fd, "standard_conforming_strings", "on");
    put_param(fd, "integer_datetimes", "on");
    put_msg(fd, 'Z', "I", 1);
    /* Read the client's messages until a Sync or a simple Query ends a statement. */
    for (;;) {
        char type;
        uint32_t len;
        if (!read_all(fd, &type, 1) || !read_all(fd, &len, 4))
            goto out;
        len = ntohl(len);
        if (len < 4 || len > 1000000)
            goto out;
        static _Thread_local char body[1000000];
        if (!read_all(fd, body, len - 4))
            goto out;
        if (type == 'X') /* Terminate */
            goto out;
        if (type == 'S' || type == 'Q')
            break;
    }
    switch (mode) {
    case QUERY_GARBAGE:
        put_msg(fd, '!', "??", 2);
        break;
    case QUERY_HUGE: {
        char hdr[5] = {'D'};
        uint32_t l = htonl(0x7ffffff0u);
        memcpy(hdr + 1, &l, 4);
        write_all(fd, hdr, 5);
        break;
    }
    case QUERY_CUT: {
        char hdr[7] = {'T', 0, 0, 0, 100, 0, 1}; /* a RowDescription of 100 bytes: 2 of them */
        write_all(fd, hdr, sizeof(hdr));
        goto out;
    }
    default:
        break;
    }
    until_eof(fd);
out:
    close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL; /* the listener was shut down */
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, serve, (void *)(intptr_t)fd), 0);
        pthread_detach(th);
    }
}

static pthread_t acc;

static void start_fake(void)
{
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    port = ntohs(a.sin_port);
    CHECK_EQ(listen(lfd, 64), 0);
    CHECK_EQ(pthread_create(&acc, NULL, acceptor, NULL), 0);
}

static void stop_fake(void)
{
    shutdown(lfd, SHUT_RDWR);
    pthread_join(acc, NULL);
    close(lfd);
}

static char ci[256];
static char err[512];

static int try_connect(weft_pg_t **c, double secs)
{
    struct weft_pg_connect_opts o = {.errbuf = err, .errlen = sizeof(err), .cancel_timeout = 1};
    err[0] = '\0';
    return weft_pg_connect_opts(c, ci, &o, weft_deadline_in(secs));
}

/* Run `fn` on a loop against a fresh fake server (conninfo in `ci`, with `extra` appended), then
 * check that no file descriptor was left behind. */
static void against_fake(weft_task_fn fn, const char *extra)
{
    int fds = test_count_fds();
    start_fake();
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1 port=%d user=u dbname=d sslmode=disable gssencmode=disable %s", port,
             extra);
    atomic_store(&cancels, 0);
    CHECK_EQ(weft_run(fn, NULL), 0);
    stop_fake();
    CHECK_EQ(test_count_fds(), fds);
}

/* ---- at the startup ---- */

static int startup_main(void *arg)
{
    (void)arg;
    weft_pg_t *c = (weft_pg_t *)1;
    /* Silent: the deadline, not libpq's connect_timeout (30 s in the conninfo). */
    mode = SILENT;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(try_connect(&c, 0.3), -ETIMEDOUT);
    CHECK(c == NULL);
    CHECK(weft_time(NULL) - t0 < 2 * S);
    /* An HTTP error where the startup's answer should be: a clear refusal, at once. */
    mode = HTTP_ERROR;
    t0 = weft_time(NULL);
    CHECK_EQ(try_connect(&c, 10), WEFT_PG_ECONNECT);
    CHECK(err[0] != '\0');
    CHECK(weft_time(NULL) - t0 < 2 * S);
    /* A hang-up. */
    mode = HANG_UP;
    t0 = weft_time(NULL);
    CHECK_EQ(try_connect(&c, 10), WEFT_PG_ECONNECT);
    CHECK(strstr(err, "closed") != NULL || strstr(err, "terminated") != NULL);
    CHECK(weft_time(NULL) - t0 < 2 * S);
    return 0;
}

static void test_hostile_startup(void)
{
    against_fake(startup_main, "connect_timeout=30");
}

/* ---- at a query ---- */

static int query_main(void *arg)
{
    (void)arg;
    static const struct {
        enum mode m;
        bool quick; /* answered (badly) at once, rather than left to the deadline */
    } cases[] = {
        {QUERY_SILENT, false}, {QUERY_GARBAGE, false}, {QUERY_HUGE, true}, {QUERY_CUT, true}};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        mode = cases[k].m;
        weft_pg_t *c = NULL;
        CHECK_EQ(try_connect(&c, 10), 0);
        CHECK(weft_pg_ok(c));
        int64_t t0 = weft_time(NULL);
        weft_pg_result_t *r = NULL;
        int e = weft_pg_query_dl(c, "SELECT 1", NULL, 0, &r, weft_deadline_in(0.3));
        int64_t took = weft_time(NULL) - t0;
        fprintf(stderr, "case %zu: %s after %.3f s (%s)\n", k, weft_pg_strerror(e), took / 1e9,
                weft_pg_errmsg(c) != NULL ? weft_pg_errmsg(c) : "");
        CHECK(e < 0);
        CHECK(r == NULL);
        if (cases[k].quick) { /* the connection is lost, and libpq knows it */
            CHECK_EQ(e, -ECONNRESET);
            CHECK(took < 1 * S);
        } else {
            CHECK_EQ(e, -ETIMEDOUT);
        }
        /* libpq reports the unknown message type, then waits for the end of the statement
         * (ReadyForQuery) like after any error: this server never sends it, the deadline ends
         * the wait. */
        if (mode == QUERY_GARBAGE)
            CHECK(weft_pg_errmsg(c) != NULL && strstr(weft_pg_errmsg(c), "unexpected") != NULL);
        /* The deadline, plus the bounded cancel (1 s here) for the stalled ones. */
        CHECK(took < 3 * S);
        /* The statement never ends (the cancel changes nothing), or the server hung up: the
         * connection is closed, and says so. */
        CHECK(!weft_pg_ok(c));
        CHECK_EQ(weft_pg_query(c, "SELECT 1", NULL, 0, NULL), -ECONNRESET);
        weft_pg_close(c);
    }
    /* The two stalled queries sent the server a cancel request each. */
    CHECK(atomic_load(&cancels) >= 2);
    return 0;
}

static void test_hostile_query(void)
{
    against_fake(query_main, "");
}

/* ---- a pool whose server never answers ---- */

static int pool_main(void *arg)
{
    (void)arg;
    mode = SILENT;
    weft_pg_pool_t *p;
    struct weft_pg_pool_opts o = {.conninfo = ci, .max_size = 3, .connect_timeout = 0.5};
    CHECK_EQ(weft_pg_pool_new(&p, &o), 0);
    /* The acquire's deadline first, then the pool's bound on one connection. */
    int64_t t0 = weft_time(NULL);
    weft_pg_t *c = NULL;
    CHECK_EQ(weft_pg_pool_acquire(p, &c, weft_deadline_in(0.2)), -ETIMEDOUT);
    CHECK(c == NULL);
    CHECK(weft_time(NULL) - t0 < 2 * S);
    t0 = weft_time(NULL);
    int r = weft_pg_pool_acquire(p, &c, weft_deadline_in(10));
    CHECK(r == -ETIMEDOUT || r == WEFT_PG_ECONNECT);
    CHECK(weft_time(NULL) - t0 < 3 * S);
    struct weft_pg_pool_stats st;
    weft_pg_pool_stats(p, &st);
    CHECK_EQ(st.open, 0);
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.connecting, 0);
    CHECK_EQ(weft_pg_pool_close(p, weft_deadline_in(5)), 0);
    return 0;
}

static void test_hostile_pool(void)
{
    against_fake(pool_main, "");
}

TEST_MAIN(test_hostile_startup, test_hostile_query, test_hostile_pool)
