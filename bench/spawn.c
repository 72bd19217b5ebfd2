/*
 * Spawn + wait of /bin/true with weft (weft_proc_spawn, weft_proc_wait): `seq` one after the
 * other, or `par` with 64 in flight (64 tasks, each spawning and waiting in turn), after touching
 * a parent heap of HEAP MiB (a fork would copy its page tables; posix_spawn does not).
 *   weft-bench-spawn seq|par COUNT HEAP_MIB      -> one line: "weft MODE heap=H n=N us/spawn"
 * Peers doing the same: bench/spawn/ (the posix_spawn+waitpid floor, libuv, Go, asyncio);
 * bench/spawn.sh runs them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <weft.h>

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

#define INFLIGHT 64

static int remaining;

static int one(void)
{
    static char *const argv[] = {"/bin/true", NULL};
    weft_proc_t *p;
    int r = weft_proc_spawn(&p, argv, NULL);
    if (r < 0)
        return r;
    int rc;
    r = weft_proc_wait(p, &rc);
    weft_proc_release(p);
    return r < 0 ? r : rc != 0 ? -EIO : 0;
}

static int worker(void *arg)
{
    (void)arg;
    while (remaining > 0) {
        remaining--;
        int r = one();
        if (r < 0)
            return r;
    }
    return 0;
}

static int par;

static int main_task(void *arg)
{
    (void)arg;
    if (!par)
        return worker(NULL);
    weft_task_t *t[INFLIGHT];
    for (int i = 0; i < INFLIGHT; i++)
        weft_spawn(&t[i], worker, NULL);
    int r = weft_gather(t, INFLIGHT, NULL, 0);
    for (int i = 0; i < INFLIGHT; i++)
        weft_task_release(t[i]);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s seq|par COUNT HEAP_MIB\n", argv[0]);
        return 2;
    }
    par = strcmp(argv[1], "par") == 0;
    int n = atoi(argv[2]);
    size_t heap = (size_t)atol(argv[3]) << 20;
    char *mem = heap ? malloc(heap) : NULL;
    if (heap && mem == NULL)
        return 1;
    if (mem)
        memset(mem, 1, heap);
    remaining = n;
    struct timespec a, b;
    double cpu0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &a);
    int r = weft_run(main_task, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double cpu = (cpu_seconds() - cpu0) * 1e6 / n;
    if (r < 0) {
        fprintf(stderr, "weft-bench-spawn: %s\n", weft_strerror(r));
        return 1;
    }
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    printf("weft %s heap=%s n=%d wall %.1f cpu %.1f us/spawn\n", argv[1], argv[3], n, us, cpu);
    free(mem);
    return 0;
}
