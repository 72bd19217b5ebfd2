/*
 * examples/http_server against real clients nobody here wrote: curl (keep-alive reuse, chunked
 * upload, Expect: 100-continue, HEAD, HTTP/1.0), Python's http.client and the aiohttp client
 * (test/http/py_clients.py), wrk (a short load, no errors); and path escapes on the example
 * ("..", "%2e%2e", symlinks out of ROOT). Without curl skipped (77), without python3, aiohttp
 * or wrk that part skipped; under CI (CI=true), where scripts/deps.sh installs them all, a
 * missing one is a failure.
 */
#include "net/spawn.h"

#include <sys/stat.h>

#define CHILD_SECONDS 30.0

static char root[] = "/tmp/weft-http-root-XXXXXX";
static char secret[] = "/tmp/weft-http-secret-XXXXXX";
static char out[1 << 16];

static bool in_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && *ci != '\0' && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0;
}

/* A client is not installed: that part is skipped, except under CI. */
static void missing(const char *what)
{
    fprintf(stderr, "%s missing: %s\n", what,
            in_ci() ? "a failure under CI (scripts/deps.sh modules installs it)" : "skipped");
    CHECK(!in_ci());
}

static void write_file(const char *dir, const char *name, const char *data)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs(data, f);
    fclose(f);
}

static void make_tree(void)
{
    CHECK(mkdtemp(root) != NULL);
    CHECK(mkdtemp(secret) != NULL);
    write_file(root, "a.txt", "hello\n");
    write_file(root, "index.html", "<p>index</p>\n");
    write_file(secret, "s.txt", "TOPSECRET\n");
    char p[4096], t[4096];
    snprintf(p, sizeof(p), "%s/sub", root);
    CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/out", root); /* a symlink leaving ROOT */
    snprintf(t, sizeof(t), "%s/s.txt", secret);
    CHECK_EQ(symlink(t, p), 0);
    snprintf(p, sizeof(p), "%s/outdir", root); /* a relative one, through a directory */
    snprintf(t, sizeof(t), "../%s", strrchr(secret, '/') + 1);
    CHECK_EQ(symlink(t, p), 0);
    snprintf(p, sizeof(p), "%s/sub/in", root); /* one that stays inside: allowed */
    CHECK_EQ(symlink("../a.txt", p), 0);
}

static void remove_tree(void)
{
    char p[4096];
    const char *files[] = {"a.txt", "index.html", "out", "outdir", "sub/in"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/sub", root);
    rmdir(p);
    rmdir(root);
    snprintf(p, sizeof(p), "%s/s.txt", secret);
    unlink(p);
    rmdir(secret);
}

static pid_t start_example(int *port)
{
    char path[4096];
    sp_built("../../examples/http_server", path, sizeof(path));
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "%s not built: skipped\n", path);
        exit(77);
    }
    *port = test_free_port();
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", *port);
    char *argv[] = {path, ps, root, NULL};
    int o;
    pid_t pid = sp_spawn(argv, &o);
    close(o);
    CHECK(sp_wait_port(*port, weft_deadline_in(CHILD_SECONDS)));
    return pid;
}

static int run(char *const argv[], char *buf, size_t cap)
{
    int o;
    pid_t pid = sp_spawn(argv, &o);
    int64_t dl = weft_deadline_in(CHILD_SECONDS);
    sp_read_all(o, buf, cap, dl);
    return sp_wait(pid, dl);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int port;

static void url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
}

static void curl_cases(void)
{
    char u1[128], u2[128];
    url(u1, sizeof(u1), "/a.txt");
    url(u2, sizeof(u2), "/api/echo?x=1");
    /* Keep-alive: the second URL reuses the connection. */
    char *a1[] = {"curl", "-sS", "-i", "--max-time", "10", "-w", "connects=%{num_connects}\n",
                  u1,     u2,    NULL};
    CHECK_EQ(run(a1, out, sizeof(out)), 0);
    CHECK_EQ(count(out, "HTTP/1.1 200 OK"), 2);
    CHECK(strstr(out, "hello\n") != NULL && strstr(out, "\"query\":\"x=1\"") != NULL);
    CHECK(strstr(out, "connects=1") != NULL && strstr(out, "connects=0") != NULL);
    /* HEAD. */
    char *a2[] = {"curl", "-sS", "-I", "--max-time", "10", u1, NULL};
    CHECK_EQ(run(a2, out, sizeof(out)), 0);
    CHECK(strstr(out, "Content-Length: 6") != NULL && strstr(out, "hello") == NULL);
    /* Chunked upload with Expect: 100-continue: curl waits for the 100 before the body. */
    char u3[128];
    url(u3, sizeof(u3), "/api/echo");
    char *a3[] = {"curl", "-sS", "--max-time", "10", "--trace-ascii", "-",
                  "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                  "--data-binary", "0123456789abcdef0123456789", u3, NULL};
    CHECK_EQ(run(a3, out, sizeof(out)), 0);
    CHECK(strstr(out, "HTTP/1.1 100 Continue") != NULL);
    CHECK(strstr(out, "\"body_length\":26") != NULL);
    /* HTTP/1.0. */
    char *a4[] = {"curl", "-sS", "-i", "-0", "--max-time", "10", u1, NULL};
    CHECK_EQ(run(a4, out, sizeof(out)), 0);
    CHECK(strstr(out, "Connection: close") != NULL && strstr(out, "hello") != NULL);
    /* A directory serves its index.html. */
    char u5[128];
    url(u5, sizeof(u5), "/");
    char *a5[] = {"curl", "-sS", "--max-time", "10", u5, NULL};
    CHECK_EQ(run(a5, out, sizeof(out)), 0);
    CHECK_STR(out, "<p>index</p>\n");
}

static void escapes(void)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "/../%s/s.txt", strrchr(secret, '/') + 1);
    char enc[256];
    snprintf(enc, sizeof(enc), "/%%2e%%2e/%s/s.txt", strrchr(secret, '/') + 1);
    char enc2[256];
    snprintf(enc2, sizeof(enc2), "/sub/%%2E%%2E/%%2e%%2e/%s/s.txt", strrchr(secret, '/') + 1);
    char enc3[256];
    snprintf(enc3, sizeof(enc3), "/..%%2f%s%%2fs.txt", strrchr(secret, '/') + 1);
    const char *paths[] = {rel, enc, enc2, enc3, "/out", "/outdir/s.txt",
                           "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                           "/sub/../../etc/passwd", "/a.txt%00.html"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char u[512];
        url(u, sizeof(u), paths[i]);
        char *a[] = {"curl", "-sS", "--path-as-is", "--max-time", "10", "-w", "\ncode=%{http_code}",
                     u, NULL};
        CHECK_EQ(run(a, out, sizeof(out)), 0);
        if (strstr(out, "TOPSECRET") != NULL || strstr(out, "root:") != NULL ||
            strstr(out, "code=200") != NULL) {
            fprintf(stderr, "escape %s: %s\n", paths[i], out);
            CHECK(0);
        }
    }
    /* A symlink that stays inside ROOT is served. */
    char u[128];
    url(u, sizeof(u), "/sub/in");
    char *a[] = {"curl", "-sS", "--max-time", "10", u, NULL};
    CHECK_EQ(run(a, out, sizeof(out)), 0);
    CHECK_STR(out, "hello\n");
}

static void python_clients(void)
{
    char script[4096], ps[16];
    snprintf(script, sizeof(script), "%s/py_clients.py", sp_srcdir(__FILE__));
    snprintf(ps, sizeof(ps), "%d", port);
    if (!sp_have("python3")) {
        missing("python3 (http.client and aiohttp)");
        return;
    }
    char *a1[] = {"python3", script, ps, "http.client", NULL};
    int st = run(a1, out, sizeof(out));
    if (st != 0)
        fprintf(stderr, "http.client: %s\n", out);
    CHECK_EQ(st, 0);
    /* aiohttp comes from Debian (python3-aiohttp): prefer the system interpreter. */
    char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char *a2[] = {py, script, ps, "aiohttp", NULL};
    st = run(a2, out, sizeof(out));
    if (st == 77) {
        missing("aiohttp (python3-aiohttp)");
        return;
    }
    if (st != 0)
        fprintf(stderr, "aiohttp: %s\n", out);
    CHECK_EQ(st, 0);
}

static void wrk_load(void)
{
    if (!sp_have("wrk")) {
        missing("wrk");
        return;
    }
    char u[128];
    url(u, sizeof(u), "/a.txt");
    char *a[] = {"wrk", "-t1", "-c20", "-d1s", u, NULL};
    CHECK_EQ(run(a, out, sizeof(out)), 0);
    if (strstr(out, "Non-2xx") != NULL || strstr(out, "Socket errors") != NULL ||
        strstr(out, "Requests/sec") == NULL) {
        fprintf(stderr, "wrk: %s\n", out);
        CHECK(0);
    }
}

static int main_task(void *arg)
{
    (void)arg;
    pid_t pid = start_example(&port);
    curl_cases();
    escapes();
    python_clients();
    wrk_load();
    CHECK_EQ(kill(pid, SIGTERM), 0);
    CHECK_EQ(sp_wait(pid, weft_deadline_in(10)), 0);
    return 0;
}

static void test_real_clients(void)
{
    make_tree();
    int r = weft_run(main_task, NULL);
    remove_tree();
    CHECK_EQ(r, 0);
}

int main(int argc, char **argv)
{
    if (!sp_have("curl")) {
        missing("curl");
        return in_ci() ? 1 : 77;
    }
    static const test_case_fn fns[] = {test_real_clients};
    static const char *const names[] = {"test_real_clients"};
    return test_main(argc, argv, names, fns, 1);
}
