/*
 * A PostgreSQL 15 server of the test's own: initdb into a temporary directory, then the postmaster
 * as a child of this process listening on a Unix socket in that directory only (no TCP), with
 * fsync off. One server per test binary, started by the first pgt_setup() and stopped at exit
 * (atexit; the postmaster also gets SIGQUIT if this process dies, through PR_SET_PDEATHSIG).
 * postgres refuses to run as root: as root, initdb and postgres run as the `postgres` user that
 * Debian's package creates, and the directory is handed to it.
 * Without the server binaries the test is skipped (77), except under CI (CI=true), where that is
 * a failure: scripts/deps.sh installs them. WEFT_PG_BINDIR overrides where they are.
 *
 * Conninfo strings: pgt_conninfo() connects as the superuser `postgres` (trust);
 * pgt_conninfo_user() as the role `weft` whose password is "secret" (scram-sha-256).
 *
 * TLS (pgt_setup_tls() instead of pgt_setup()): the server also listens on 127.0.0.1, on a free
 * port, with ssl=on and a self-signed certificate made with the openssl command, and accepts the
 * superuser there over TLS only (hostssl, trust); pgt_conninfo_tls() connects that way
 * (sslmode=require). libpq does TLS over TCP only, hence the one TCP listener, on loopback.
 */
#ifndef WEFT_PGTEST_H
#define WEFT_PGTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif

#include "test.h"

#include <weft/pg.h>

#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char pgt_dir[256];
static char pgt_bindir[256];
static char pgt_ci[1024];
static char pgt_cu[1024];
static char pgt_ct[1024]; /* over TLS (pgt_setup_tls) */
static int pgt_port = 5432;
static bool pgt_tls;
static pid_t pgt_pid = -1;
static uid_t pgt_uid;
static gid_t pgt_gid;
static bool pgt_drop; /* run the server's programs as `postgres` */

static inline bool pgt_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && *ci != '\0' && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0;
}

/* True when the heavy cases should be scaled down (valgrind and emulation stages). */
static inline bool pgt_slow_env(void)
{
    const char *s = getenv("WEFT_SKIP_SLOW");
    return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

static inline void pgt_missing(const char *what)
{
    if (pgt_in_ci()) {
        fprintf(stderr, "pgtest: %s is missing under CI: scripts/deps.sh modules installs it\n",
                what);
        exit(1);
    }
    fprintf(stderr, "pgtest: %s is missing: skipped\n", what);
    exit(77);
}

/* Fork and exec argv (a program in the bindir) as the server's user; returns the pid. */
static inline pid_t pgt_spawn(char *const argv[], bool deathsig)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", pgt_bindir, argv[0]);
    char log[300];
    snprintf(log, sizeof(log), "%s/tools.log", pgt_dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        pid_t parent = getppid();
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (pgt_drop && (setgid(pgt_gid) != 0 || setuid(pgt_uid) != 0))
            _exit(126);
        /* Immediate shutdown if the test dies. After the setuid: a change of credentials clears
         * the parent-death signal. */
        if (deathsig && (prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || getppid() != parent))
            _exit(125);
        execv(path, argv);
        _exit(127);
    }
    return pid;
}

static inline int pgt_wait_pid(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        CHECK(errno == EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline void pgt_dump_log(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "tail -n 30 %s/tools.log >&2", pgt_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pgtest: no log\n");
}

/* Start the postmaster (the data directory exists). Does not wait for it. */
static inline void pgt_start_server(void)
{
    char data[300], sockdir[300], port[40], crt[340], key[340];
    snprintf(data, sizeof(data), "%s/data", pgt_dir);
    snprintf(sockdir, sizeof(sockdir), "unix_socket_directories=%s", pgt_dir);
    snprintf(port, sizeof(port), "port=%d", pgt_port);
    snprintf(crt, sizeof(crt), "ssl_cert_file=%s/server.crt", pgt_dir);
    snprintf(key, sizeof(key), "ssl_key_file=%s/server.key", pgt_dir);
    char *argv[] = {"postgres", "-D", data, "-c", "listen_addresses=", "-c", sockdir,
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
                    "full_page_writes=off", "-c", "shared_buffers=16MB", "-c",
                    "max_connections=60", "-c", "max_wal_size=1GB", "-c", port,
                    NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (pgt_tls) {
        argv[4] = "listen_addresses=127.0.0.1";
        char *extra[] = {"-c", "ssl=on", "-c", crt, "-c", key};
        memcpy(&argv[21], extra, sizeof(extra));
    }
    pgt_pid = pgt_spawn(argv, true);
}

/* Wait (blocking, bounded) until the server accepts connections. */
static inline void pgt_wait_ready(void)
{
    for (int i = 0; i < 1500; i++) {
        if (PQping(pgt_ci) == PQPING_OK)
            return;
        int st;
        if (waitpid(pgt_pid, &st, WNOHANG) == pgt_pid) {
            pgt_pid = -1;
            pgt_dump_log();
            CHECK(!"the postgres server exited");
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pgt_dump_log();
    CHECK(!"the postgres server did not start within 30 s");
}

/* Stop the server at once (SIGQUIT: immediate shutdown, as pg_ctl stop -m immediate). */
static inline void pgt_stop_immediate(void)
{
    if (pgt_pid > 0) {
        kill(pgt_pid, SIGQUIT);
        pgt_wait_pid(pgt_pid);
        pgt_pid = -1;
    }
}

static inline int pgt_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void pgt_cleanup(void)
{
    pgt_stop_immediate();
    if (pgt_dir[0] != '\0' && getenv("WEFT_PG_KEEP") == NULL)
        nftw(pgt_dir, pgt_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The server's self-signed certificate and key, owned by the server's user (it refuses a key
 * that others can read). */
static inline void pgt_make_cert(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-keyout %s/server.key -out %s/server.crt >%s/openssl.log 2>&1",
             pgt_dir, pgt_dir, pgt_dir);
    if (system(cmd) != 0)
        pgt_missing("the openssl command (a certificate for the TLS server)");
    snprintf(cmd, sizeof(cmd), "%s/server.key", pgt_dir);
    CHECK_EQ(chmod(cmd, 0600), 0);
    if (pgt_drop)
        CHECK_EQ(chown(cmd, pgt_uid, pgt_gid), 0);
}

/* Start this binary's server once (blocking; call before weft_run). */
static inline void pgt_setup(void)
{
    if (pgt_pid > 0)
        return;
    const char *bindir = getenv("WEFT_PG_BINDIR");
    snprintf(pgt_bindir, sizeof(pgt_bindir), "%s",
             bindir != NULL ? bindir : "/usr/lib/postgresql/15/bin");
    char p[512];
    snprintf(p, sizeof(p), "%s/initdb", pgt_bindir);
    if (access(p, X_OK) != 0)
        pgt_missing(p);
    snprintf(p, sizeof(p), "%s/postgres", pgt_bindir);
    if (access(p, X_OK) != 0)
        pgt_missing(p);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL)
            pgt_missing("the postgres user (postgres refuses to run as root)");
        pgt_uid = pw->pw_uid;
        pgt_gid = pw->pw_gid;
        pgt_drop = true;
    }
    snprintf(pgt_dir, sizeof(pgt_dir), "/tmp/weft-pg-XXXXXX");
    CHECK(mkdtemp(pgt_dir) != NULL);
    if (pgt_drop)
        CHECK_EQ(chown(pgt_dir, pgt_uid, pgt_gid), 0);
    atexit(pgt_cleanup);

    char data[300];
    snprintf(data, sizeof(data), "%s/data", pgt_dir);
    char *init[] = {"initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--locale=C", "--no-sync", NULL};
    if (pgt_wait_pid(pgt_spawn(init, false)) != 0) {
        pgt_dump_log();
        CHECK(!"initdb failed");
    }
    /* The superuser by trust, every other role by password. */
    char hba[400];
    snprintf(hba, sizeof(hba), "%s/pg_hba.conf", data);
    FILE *f = fopen(hba, "w");
    CHECK(f != NULL);
    fprintf(f, "local all postgres trust\nlocal all all scram-sha-256\n");
    if (pgt_tls)
        fprintf(f, "hostssl all postgres 127.0.0.1/32 trust\n");
    fclose(f);
    if (pgt_tls) {
        pgt_make_cert();
        pgt_port = test_free_port();
    }

    snprintf(pgt_ci, sizeof(pgt_ci), "host=%s port=%d user=postgres dbname=postgres", pgt_dir,
             pgt_port);
    snprintf(pgt_cu, sizeof(pgt_cu),
             "host=%s port=%d user=weft password=secret dbname=postgres", pgt_dir, pgt_port);
    snprintf(pgt_ct, sizeof(pgt_ct),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=require", pgt_port);
    pgt_start_server();
    pgt_wait_ready();

    PGconn *c = PQconnectdb(pgt_ci);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, "CREATE ROLE weft LOGIN PASSWORD 'secret'");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

static inline const char *pgt_conninfo(void)
{
    return pgt_ci;
}

static inline const char *pgt_conninfo_user(void)
{
    return pgt_cu;
}

/* Connect within `secs` seconds; on failure print why and fail the test. */
static inline weft_pg_t *pgt_connect(const char *ci, double secs)
{
    weft_pg_t *c = NULL;
    char err[512] = "";
    struct weft_pg_connect_opts o = {.errbuf = err, .errlen = sizeof(err)};
    int r = weft_pg_connect_opts(&c, ci, &o, weft_deadline_in(secs));
    if (r != 0)
        fprintf(stderr, "connect: %s: %s\n", weft_pg_strerror(r), err);
    CHECK_EQ(r, 0);
    return c;
}

/* pgt_setup() with the TLS listener (above). */
static inline void pgt_setup_tls(void)
{
    pgt_tls = true;
    pgt_setup();
}

static inline const char *pgt_conninfo_tls(void)
{
    return pgt_ct;
}

/* Restart the server after pgt_stop_immediate() (from a task: blocks the loop until ready). */
static inline void pgt_restart(void)
{
    pgt_start_server();
    pgt_wait_ready();
}

/* A blocking query on a connection of its own (test checks from outside the code under test). */
static inline long long pgt_scalar(const char *sql)
{
    PGconn *c = PQconnectdb(pgt_ci);
    CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "pgt_scalar(%s): %s\n", sql, PQresultErrorMessage(r));
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Peak resident set size of this process so far, in KiB. */
static inline long pgt_maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

#endif /* WEFT_PGTEST_H */
