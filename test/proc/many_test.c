/*
 * 1,000 children alive at once (each a `cat` blocked on its stdin pipe: 1,000 pidfds and 1,000
 * pipes in one loop), then all ended and reaped. Skipped under WEFT_SKIP_SLOW=1. Its own file:
 * the time is the machine's spawn cost (about 1 ms a spawn on an idle machine).
 */
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test.h"

#define MANY 1000

static int many_main(void *arg)
{
    (void)arg;
    weft_proc_t **ps = calloc(MANY, sizeof(*ps));
    char *cat[] = {"cat", NULL};
    struct weft_proc_opts o = {.stdin_mode = WEFT_STDIO_PIPE};
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(weft_proc_spawn(&ps[i], cat, &o), 0);
    /* All 1,000 are alive (blocked reading): end their input, then wait for all. */
    for (int i = 0; i < MANY; i++) {
        CHECK_EQ(kill(weft_proc_pid(ps[i]), 0), 0);
        weft_stream_close(weft_proc_stdin(ps[i]));
    }
    for (int i = 0; i < MANY; i++) {
        int rc;
        CHECK_EQ(weft_proc_wait(ps[i], &rc), 0);
        CHECK_EQ(rc, 0);
        weft_proc_release(ps[i]);
    }
    free(ps);
    return 0;
}

static void test_1000_children(void)
{
    const char *s = getenv("WEFT_SKIP_SLOW");
    if (s != NULL && strcmp(s, "1") == 0) {
        fprintf(stderr, "   (skipped: WEFT_SKIP_SLOW=1)\n");
        return;
    }
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4 * MANY) {
        rl.rlim_cur = rl.rlim_max < 4 * MANY ? rl.rlim_max : 4 * MANY;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    CHECK_EQ(weft_run(many_main, NULL), 0);
}

TEST_MAIN(test_1000_children)
