/*
 * fetch_all: fetch several sites at once with gather, bound the wait with a timeout, and let a
 * TaskGroup stop everything when one fetch fails. The "fetches" are sleeps of different lengths.
 */
#include <stdio.h>

#include <weft.h>

struct site {
    const char *name;
    double seconds; /* how long the fetch takes */
    int error;      /* how it fails, or 0 */
};

static struct site sites[] = {
    {"example.org", 0.3, 0},
    {"python.org", 0.5, 0},
    {"slow.example", 3.0, 0},
    {"broken.example", 0.2, -ECONNREFUSED},
};

static int fetch(void *arg)
{
    struct site *s = arg;
    int r = weft_sleep(s->seconds); /* stands for connect, send, receive */
    if (r < 0)
        return r; /* cancelled */
    /* The page's "size", or the site's error. */
    return s->error != 0 ? s->error : (int)(s->seconds * 1000);
}

static double since(int64_t t0)
{
    return (double)(weft_time(NULL) - t0) / 1e9;
}

static int fetch_all(void *arg)
{
    (void)arg;
    weft_task_t *t[3];
    int size[3];
    int64_t t0 = weft_time(NULL);

    /* 1. gather: both fetches run concurrently; results come back in argument order. */
    for (int i = 0; i < 2; i++)
        weft_spawn(&t[i], fetch, &sites[i]);
    int r = weft_gather(t, 2, size, 0);
    printf("gather:  %s %d bytes, %s %d bytes (%.1f s, %s)\n", sites[0].name, size[0],
           sites[1].name, size[1], since(t0), weft_strerror(r));

    /* 2. timeout: the same, with the slow site, limited to one second. */
    t0 = weft_time(NULL);
    weft_spawn(&t[2], fetch, &sites[2]);
    weft_timeout_t to;
    weft_timeout_enter(&to, 1.0);
    r = weft_timeout_exit(&to, weft_gather(&t[2], 1, NULL, 0));
    printf("timeout: %s: %s (%.1f s)\n", sites[2].name, weft_strerror(r), since(t0));
    for (int i = 0; i < 3; i++)
        weft_task_release(t[i]);

    /* 3. TaskGroup: the first failure cancels the other fetches; the errors come back. */
    t0 = weft_time(NULL);
    weft_group_t g;
    weft_errgroup_t *errors;
    weft_group_enter(&g);
    for (int i = 0; i < 4; i++) {
        struct weft_task_opts opts = {.name = sites[i].name};
        weft_group_spawn_opts(&g, NULL, fetch, &sites[i], &opts);
    }
    r = weft_group_exit(&g, 0, &errors);
    printf("group:   %s (%.1f s)\n", weft_strerror(r), since(t0));
    for (size_t i = 0; i < weft_errgroup_count(errors); i++)
        printf("         %s: %s\n", weft_task_name(weft_errgroup_task(errors, i)),
               weft_strerror(weft_errgroup_error(errors, i)));
    weft_errgroup_release(errors);
    return 0;
}

int main(void)
{
    int r = weft_run(fetch_all, NULL);
    return r < 0 ? 1 : 0;
}
