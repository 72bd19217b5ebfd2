/*
 * The pg tests' own harness (pgtest.h): a test process that dies without running its exit
 * handlers (a crash, a CI timeout's SIGKILL) takes its PostgreSQL server with it. The server gets
 * SIGQUIT through the parent-death signal, which a change of credentials clears: as root the
 * server runs as `postgres`, so the signal must be set after that switch (it was not, and killed
 * tests left their servers running).
 */
#include "pgtest.h"

#include <sys/wait.h>

/* Is `pid` gone (or a zombie waiting for whoever reaps orphans)? */
static bool gone(pid_t pid)
{
    char path[64], st[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    bool zombie = fgets(st, sizeof(st), f) != NULL && strstr(st, ") Z ") != NULL;
    fclose(f);
    return zombie;
}

/* What the child tells the parent: its server's pid, its directory. */
struct started {
    pid_t server;
    char dir[sizeof(pgt_dir)];
};

static void test_server_dies_with_test(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(p[0]);
        pgt_setup();
        struct started m = {.server = pgt_pid};
        memcpy(m.dir, pgt_dir, sizeof(m.dir));
        if (write(p[1], &m, sizeof(m)) != (ssize_t)sizeof(m))
            _exit(1);
        raise(SIGKILL); /* no atexit, no cleanup: only the parent-death signal is left */
        _exit(1);
    }
    close(p[1]);
    struct started m = {.server = -1};
    ssize_t n = read(p[0], &m, sizeof(m));
    close(p[0]);
    pid_t server = m.server;
    int st;
    CHECK_EQ(waitpid(child, &st, 0), child);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        exit(77); /* no server binaries: skipped, as pgt_setup says */
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_EQ(n, (ssize_t)sizeof(m));
    CHECK(server > 0);
    /* Immediate shutdown takes the postmaster well under a second; allow 20 on a loaded machine. */
    int64_t t0 = test_mono_ns();
    while (!gone(server) && test_mono_ns() - t0 < 20 * 1000000000LL) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bool dead = gone(server);
    if (!dead)
        kill(server, SIGQUIT); /* do not leave it behind either way */
    /* The directory the killed test could not remove. */
    if (m.dir[0] != '\0' && getenv("WEFT_PG_KEEP") == NULL)
        nftw(m.dir, pgt_rm, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(dead);
}

TEST_MAIN(test_server_dies_with_test)
