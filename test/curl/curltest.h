/*
 * Servers for weft-curl's tests, started by the tests themselves and stopped at the end:
 * py_server.py (Python's http.server, threaded, HTTP/1.1) and nginx (plain HTTP/1.1, and TLS
 * with HTTP/2 under a throwaway CA made with the openssl command). Set-up and tear-down block
 * the thread: call them outside weft_run(). A missing python3, nginx or openssl skips (77).
 */
#ifndef WEFT_CURLTEST_H
#define WEFT_CURLTEST_H

#define _GNU_SOURCE
#include "test.h"

#include <weft/curl.h>

#include <curl/curl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* WEFT_SKIP_SLOW=1 (valgrind, emulation): heavy cases scale down. */
static inline bool ct_slow_env(void)
{
    const char *s = getenv("WEFT_SKIP_SLOW");
    return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

static inline bool ct_have(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : ""; *p != '\0';) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

static inline void ct_require(const char *prog)
{
    if (!ct_have(prog)) {
        fprintf(stderr, "%s is not installed: skipped\n", prog);
        exit(77);
    }
}

/* Spawn argv with stdin/stdout redirected (either may be -1: inherit). */
static inline pid_t ct_spawn(char *const argv[], int in, int out)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0)
        posix_spawn_file_actions_adddup2(&fa, in, 0);
    if (out >= 0)
        posix_spawn_file_actions_adddup2(&fa, out, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    CHECK_EQ(rc, 0);
    return pid;
}

/* Run a command to completion (blocking); true when it exited 0. */
static inline bool ct_run(char *const argv[])
{
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int err = dup(2);
    dup2(devnull, 2); /* openssl's chatter */
    pid_t pid = ct_spawn(argv, -1, devnull);
    dup2(err, 2);
    close(err);
    close(devnull);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Connect-probe 127.0.0.1:port until it accepts (at most ~10 s; blocking). */
static inline bool ct_wait_port(int port)
{
    for (int i = 0; i < 1000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (r == 0)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ---- py_server.py ---- */

struct ct_py {
    pid_t pid;
    int stdin_fd; /* closing it makes the server exit */
    int port;
};

static inline void ct_py_start(struct ct_py *s)
{
    /* Debian's python3 when there is one (a version manager's shim on PATH can cost a second). */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    if (python[0] != '/')
        ct_require("python3");
    char here[4096], script[4200];
    snprintf(here, sizeof(here), "%s", __FILE__);
    snprintf(script, sizeof(script), "%s/py_server.py", dirname(here));
    int in[2], out[2];
    CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
    char *argv[] = {(char *)python, script, NULL};
    s->pid = ct_spawn(argv, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    s->stdin_fd = in[1];
    char line[32] = {0};
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        ssize_t k = read(out[0], line + n, 1);
        if (k <= 0 || line[n] == '\n')
            break;
        n++;
    }
    close(out[0]);
    s->port = atoi(line);
    CHECK(s->port > 0);
}

static inline void ct_py_stop(struct ct_py *s)
{
    close(s->stdin_fd);
    kill(s->pid, SIGTERM);
    int st;
    CHECK_EQ(waitpid(s->pid, &st, 0), s->pid);
}

static inline void ct_url(char *buf, size_t cap, const char *scheme, int port, const char *path)
{
    snprintf(buf, cap, "%s://127.0.0.1:%d%s", scheme, port, path);
}

/* ---- nginx ---- */

struct ct_nginx {
    pid_t pid;
    char dir[256];      /* temp dir: config, certificates, logs, pid, the files served */
    int port;           /* plain HTTP/1.1 */
    int tls_port;       /* TLS, HTTP/2 offered through ALPN */
    char ca[300];       /* the throwaway CA's certificate (PEM) */
    char other_ca[300]; /* a CA that signed nothing the server has */
};

static inline void ct_write_file(const char *dir, const char *name, const char *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(data, 1, n, f), n);
    fclose(f);
    chmod(path, 0644);
}

static inline void ct_openssl(const char *dir, char *const args[])
{
    char *argv[32];
    int k = 0;
    argv[k++] = "openssl";
    for (int i = 0; args[i] != NULL; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_EQ(chdir(dir), 0);
    bool ok = ct_run(argv);
    CHECK_EQ(chdir(cwd), 0);
    CHECK(ok);
}

static inline void ct_nginx_start(struct ct_nginx *n)
{
    ct_require("nginx");
    ct_require("openssl");
    snprintf(n->dir, sizeof(n->dir), "/tmp/weft-curl-nginx-XXXXXX");
    CHECK(mkdtemp(n->dir) != NULL);
    chmod(n->dir, 0755);
    char www[300];
    snprintf(www, sizeof(www), "%s/www", n->dir);
    CHECK_EQ(mkdir(www, 0755), 0);
    static char big[100 * 1024];
    memset(big, 'k', sizeof(big));
    ct_write_file(www, "1k", big, 1024);
    ct_write_file(www, "100k", big, sizeof(big));

    /* A throwaway CA and a server certificate for localhost / 127.0.0.1 it signs (P-256). */
    ct_write_file(n->dir, "ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n", 43);
    char *ca[] = {
        "req",    "-x509",   "-newkey",          "ec",   "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca.key",           "-out", "ca.crt",   "-days",
        "2",      "-subj",   "/CN=weft test CA", NULL};
    ct_openssl(n->dir, ca);
    char *csr[] = {"req",    "-newkey",       "ec",      "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-keyout",       "srv.key", "-out",     "srv.csr",
                   "-subj",  "/CN=localhost", NULL};
    ct_openssl(n->dir, csr);
    char *sign[] = {"x509",    "-req",   "-in",    "srv.csr",         "-CA",
                    "ca.crt",  "-CAkey", "ca.key", "-CAcreateserial", "-out",
                    "srv.crt", "-days",  "2",      "-extfile",        "ext.cnf",
                    NULL};
    ct_openssl(n->dir, sign);
    snprintf(n->ca, sizeof(n->ca), "%s/ca.crt", n->dir);
    /* Another CA that signed nothing here: verifying with it fails, as with the system's. */
    char *other[] = {"req",    "-x509",     "-newkey",
                     "ec",     "-pkeyopt",  "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout",   "other.key",
                     "-out",   "other.crt", "-days",
                     "2",      "-subj",     "/CN=weft other CA",
                     NULL};
    ct_openssl(n->dir, other);
    snprintf(n->other_ca, sizeof(n->other_ca), "%s/other.crt", n->dir);

    n->port = test_free_port();
    do
        n->tls_port = test_free_port();
    while (n->tls_port == n->port);
    char conf[4096];
    int len =
        snprintf(conf, sizeof(conf),
                 "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                 "error_log %s/error.log warn;\n"
                 "events { worker_connections 4096; }\n"
                 "http {\n"
                 "  access_log off;\n"
                 "  client_body_temp_path %s/t1; proxy_temp_path %s/t2; fastcgi_temp_path %s/t3;\n"
                 "  uwsgi_temp_path %s/t4; scgi_temp_path %s/t5;\n"
                 "  keepalive_requests 1000000;\n"
                 "  default_type application/octet-stream;\n"
                 "  http2_max_concurrent_streams 256;\n"
                 "  server {\n"
                 "    listen 127.0.0.1:%d;\n"
                 "    listen 127.0.0.1:%d ssl http2;\n"
                 "    ssl_certificate %s/srv.crt;\n    ssl_certificate_key %s/srv.key;\n"
                 "    root %s;\n"
                 "    location /slow/ { limit_rate 2k; alias %s/; }\n"
                 "  }\n"
                 "}\n",
                 n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->port, n->tls_port,
                 n->dir, n->dir, www, www);
    CHECK(len > 0 && (size_t)len < sizeof(conf));
    ct_write_file(n->dir, "nginx.conf", conf, (size_t)len);
    char cpath[300], elog[300];
    snprintf(cpath, sizeof(cpath), "%s/nginx.conf", n->dir);
    snprintf(elog, sizeof(elog), "%s/error.log", n->dir);
    char *argv[] = {"nginx", "-c", cpath, "-p", n->dir, "-e", elog, NULL};
    n->pid = ct_spawn(argv, -1, -1);
    CHECK(ct_wait_port(n->port));
    CHECK(ct_wait_port(n->tls_port));
}

static inline void ct_nginx_stop(struct ct_nginx *n)
{
    kill(n->pid, SIGTERM);
    int st;
    CHECK_EQ(waitpid(n->pid, &st, 0), n->pid);
    char *argv[] = {"rm", "-rf", n->dir, NULL};
    ct_run(argv);
}

/* ---- many requests at once, in a TaskGroup (client_test and nginx_test) ---- */

/* Requests of `q` through `c`, and how they ended. */
struct ct_many {
    weft_curl_client_t *c;
    struct weft_curl_request q;
    int ok, cancelled, other, started;
    long connects;
};

/* One request of m->q: a task body, counted in `m`. */
static inline int ct_one(void *arg)
{
    struct ct_many *m = arg;
    struct weft_curl_response r;
    int e = weft_curl_request(m->c, &m->q, &r);
    if (e == 0) {
        m->ok += r.status == 200;
        m->connects += r.new_connections;
        weft_curl_response_free(&r);
    } else if (e == -ECANCELED) {
        m->cancelled++;
    } else {
        fprintf(stderr, "request: %s (%s)\n", weft_curl_strerror(e), r.error);
        m->other++;
    }
    return e;
}

/* `n` requests of m->q at once in a TaskGroup; the group's outcome. */
static inline int ct_run_many(struct ct_many *m, int n)
{
    weft_group_t g = {0}; /* valgrind: weft_group_enter reads the storage before setting it */
    CHECK_EQ(weft_group_enter(&g), 0);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_group_spawn(&g, NULL, ct_one, m), 0);
    return weft_group_exit(&g, 0, NULL);
}

#endif /* WEFT_CURLTEST_H */
