/*
 * libuv's uv_spawn of /bin/true (its SIGCHLD handler reaps, exit_cb starts the next): `seq` one
 * at a time, `par` 64 in flight. Usage as weft-bench-spawn. Build: cc -O2 uv.c -luv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

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

static int n, started, done, inflight;
static uv_loop_t *loop;

static void start(void);

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    (void)status;
    (void)sig;
    uv_close((uv_handle_t *)p, (uv_close_cb)free);
    done++;
    if (started < n)
        start();
}

static void start(void)
{
    static char *argv[] = {"/bin/true", NULL};
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = argv[0];
    o.args = argv;
    o.exit_cb = on_exit_cb;
    uv_process_t *p = malloc(sizeof(*p));
    started++;
    if (uv_spawn(loop, p, &o) != 0)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    inflight = strcmp(argv[1], "par") == 0 ? 64 : 1;
    n = atoi(argv[2]);
    size_t heap = (size_t)atol(argv[3]) << 20;
    char *mem = heap ? malloc(heap) : NULL;
    if (mem)
        memset(mem, 1, heap);
    loop = uv_default_loop();
    struct timespec a, b;
    double cpu0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < inflight && started < n; i++)
        start();
    uv_run(loop, UV_RUN_DEFAULT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double cpu = (cpu_seconds() - cpu0) * 1e6 / n;
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    printf("libuv %s heap=%s n=%d wall %.1f cpu %.1f us/spawn\n", argv[1], argv[3], n, us, cpu);
    free(mem);
    return 0;
}
