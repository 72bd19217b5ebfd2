/*
 * The floor: raw posix_spawn + waitpid of /bin/true, no event loop. `par` keeps 64 children in
 * flight (waitpid(-1) reaps any, then the next is started). Usage as weft-bench-spawn.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>

/* CPU seconds used so far by this process and its reaped children (user + system). */
static double cpu_seconds(void)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec + c.ru_stime.tv_sec) +
           (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec +
                    c.ru_stime.tv_usec) / 1e6;
}

extern char **environ;

static pid_t start(void)
{
    static char *const argv[] = {"/bin/true", NULL};
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        exit(1);
    return pid;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int par = strcmp(argv[1], "par") == 0, n = atoi(argv[2]);
    size_t heap = (size_t)atol(argv[3]) << 20;
    char *mem = heap ? malloc(heap) : NULL;
    if (mem)
        memset(mem, 1, heap);
    struct timespec a, b;
    double cpu0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (!par) {
        for (int i = 0; i < n; i++)
            waitpid(start(), NULL, 0);
    } else {
        int started = 0, done = 0;
        while (started < n && started < 64) {
            start();
            started++;
        }
        while (done < n) {
            if (waitpid(-1, NULL, 0) > 0) {
                done++;
                if (started < n) {
                    start();
                    started++;
                }
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double cpu = (cpu_seconds() - cpu0) * 1e6 / n;
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    printf("floor %s heap=%s n=%d wall %.1f cpu %.1f us/spawn\n", argv[1], argv[3], n, us, cpu);
    free(mem);
    return 0;
}
