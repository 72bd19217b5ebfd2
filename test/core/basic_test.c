/* Smoke tests of the core: spawn, join, sleep on the virtual clock, FIFO order. */
#include "test.h"

static int order[8];
static int norder;

static int record(void *arg)
{
    order[norder++] = (int)(long)arg;
    return (int)(long)arg;
}

static int spawn_fifo_main(void *arg)
{
    (void)arg;
    weft_task_t *t[4];
    for (long i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn(&t[i], record, (void *)i), 0);
    CHECK_EQ(norder, 0); /* never run eagerly */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(t[i]), i);
        weft_task_release(t[i]);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(order[i], i);
    return 7;
}

static void test_spawn_fifo(void)
{
    norder = 0;
    CHECK_EQ(weft_run(spawn_fifo_main, NULL), 7);
}

static int sleep_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sleep(10.0), 0);
    CHECK_EQ(weft_time(NULL) - t0, 10000000000LL);
    return 0;
}

static void test_virtual_sleep(void)
{
    CHECK_EQ(run_virtual(sleep_main, NULL), 0);
}

TEST_MAIN(test_spawn_fifo, test_virtual_sleep)
