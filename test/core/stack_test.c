/*
 * Task stacks: the default size and its bounds, per-task / per-loop / global sizes really give
 * that much stack, stacks are pooled (sequential tasks do not grow memory) and trimmed when the
 * loop goes idle, the ABI alignment of a fresh stack, and per-task floating-point control state
 * across switches.
 */
#include "test.h"

#include <fenv.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static bool under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

static void test_default_stack_size(void)
{
#if defined(__SANITIZE_ADDRESS__)
    CHECK_EQ(weft_default_stack_size(), 512 * KiB);
#else
    CHECK_EQ(weft_default_stack_size(), 256 * KiB);
#endif
    size_t def = weft_default_stack_size();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    CHECK_EQ(weft_set_default_stack_size(16 * KiB - 1), -EINVAL);
    CHECK_EQ(weft_set_default_stack_size((size_t)1 << 30 | 1), -EINVAL);
    CHECK_EQ(weft_set_default_stack_size(16 * KiB), 0);
    CHECK_EQ(weft_default_stack_size(), 16 * KiB);
    CHECK_EQ(weft_set_default_stack_size((size_t)1 << 30), 0);
    CHECK_EQ(weft_default_stack_size(), (size_t)1 << 30);
    CHECK_EQ(weft_set_default_stack_size(100 * KiB + 1), 0); /* rounded up to whole pages */
    CHECK_EQ(weft_default_stack_size(), (100 * KiB + 1 + page - 1) / page * page);
    CHECK_EQ(weft_set_default_stack_size(def), 0);
    CHECK_EQ(weft_default_stack_size(), def);
}

/* ---- the sizes are real: a task may use most of the stack it asked for ---- */

static volatile char sink;

/* Touch `bytes` of stack in one frame, from the far end first. */
static __attribute__((noinline)) int use_stack(size_t bytes)
{
    volatile char *buf = __builtin_alloca(bytes);
    for (size_t i = bytes; i > 0; i -= 512)
        buf[i - 1] = (char)i;
    buf[0] = 1;
    sink = buf[bytes / 2];
    return 0;
}

static int big_user(void *arg)
{
    size_t bytes = (size_t)arg;
    int r = use_stack(bytes);
    /* Still fine after a switch. */
    if (weft_yield() < 0)
        return -1;
    return r + use_stack(bytes);
}

static int sizes_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    /* Per task: 2 MiB asked, 1.5 MiB used. */
    CHECK_EQ(weft_spawn_opts(&t, big_user, (void *)(1536 * KiB),
                             &(struct weft_task_opts){.stack_size = 2 * MiB}),
             0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    /* Loop-wide (this loop was made with 1 MiB stacks): 700 KiB used. */
    CHECK_EQ(weft_spawn(&t, big_user, (void *)(700 * KiB)), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    /* A small stack for a small task. */
    CHECK_EQ(weft_spawn_opts(&t, big_user, (void *)(8 * KiB),
                             &(struct weft_task_opts){.stack_size = 16 * KiB}),
             0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    return 0;
}

static void test_stack_sizes_usable(void)
{
    struct weft_loop_opts o = {.stack_size = MiB, .virtual_clock = true};
    CHECK_EQ(weft_run_opts(sizes_main, NULL, &o), 0);
}

static int global_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, big_user, (void *)(700 * KiB)), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    return use_stack(8 * KiB); /* the main task has the default too */
}

static void test_global_default_applies_to_new_loops(void)
{
    size_t def = weft_default_stack_size();
    CHECK_EQ(weft_set_default_stack_size(MiB), 0);
    CHECK_EQ(run_virtual(global_main, NULL), 0);
    CHECK_EQ(weft_set_default_stack_size(def), 0);
}

/* ---- pooling and trimming ---- */

static int touch_and_return(void *arg)
{
    return use_stack((size_t)arg);
}

static weft_event_t burst_done;

static int touch_and_park(void *arg)
{
    use_stack((size_t)arg);
    return weft_event_wait(&burst_done);
}

static int pool_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    /* Warm up, then 5000 sequential tasks each dirtying 64 KiB: they reuse pooled stacks. */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(weft_spawn(&t, touch_and_return, (void *)(64 * KiB)), 0);
        CHECK_EQ(weft_join(t), 0);
        weft_task_release(t);
    }
    long rss0 = test_rss_bytes();
    for (int i = 0; i < 5000; i++) {
        CHECK_EQ(weft_spawn(&t, touch_and_return, (void *)(64 * KiB)), 0);
        CHECK_EQ(weft_join(t), 0);
        weft_task_release(t);
    }
    long grew = test_rss_bytes() - rss0;
    if (!under_valgrind())
        CHECK(grew < 4 * (long)MiB); /* 5000 fresh stacks would be 320 MiB */

    /* 400 tasks alive at once, each dirtying 128 KiB (50 MiB), then all done: once the loop
     * goes idle (a real sleep: it blocks in the poll), the pooled stacks beyond the few kept
     * hot are returned to the OS. */
    static weft_task_t *many[400];
    weft_event_init(&burst_done);
    for (int i = 0; i < 400; i++)
        CHECK_EQ(weft_spawn(&many[i], touch_and_park, (void *)(128 * KiB)), 0);
    CHECK_EQ(weft_yield(), 0); /* all 400 have run up to their wait: all alive at once */
    CHECK_EQ(weft_event_set(&burst_done), 0);
    for (int i = 0; i < 400; i++) {
        CHECK_EQ(weft_join(many[i]), 0);
        weft_task_release(many[i]);
    }
    long busy = test_rss_bytes();
    CHECK_EQ(weft_sleep(0.01), 0);
    long idle = test_rss_bytes();
    if (!under_valgrind()) {
        fprintf(stderr, "pool: rss %ld KiB after the burst, %ld KiB once idle\n", busy >> 10,
                idle >> 10);
        CHECK(busy - idle > 20 * (long)MiB);
    }
    return 0;
}

static void test_stack_pool_and_trim(void)
{
    CHECK_EQ(weft_run(pool_main, NULL), 0);
}

/* ---- ABI details of a fresh stack and of the switch ---- */

static int aligned_main(void *arg)
{
    (void)arg;
    alignas(max_align_t) char a[sizeof(max_align_t)];
    alignas(16) double d[2] = {1.5, 2.5};
    CHECK_EQ((uintptr_t)a % alignof(max_align_t), 0);
    CHECK_EQ((uintptr_t)d % 16, 0);
    char buf[64];
    snprintf(buf, sizeof(buf), "%.2f %.2Lf", d[0] + d[1], (long double)d[1]); /* SSE/x87 use */
    CHECK_STR(buf, "4.00 2.50");
    return 0;
}

static int fresh_tasks_main(void *arg)
{
    (void)arg;
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(weft_spawn(&t[i], aligned_main, NULL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    return aligned_main(NULL);
}

static void test_fresh_stack_alignment(void)
{
    CHECK_EQ(run_virtual(fresh_tasks_main, NULL), 0);
}

static int fp_task(void *arg)
{
    int mode = (int)(long)arg;
    CHECK_EQ(fesetround(mode), 0);
    volatile double one = 1.0, three = 3.0;
    double third = one / three; /* rounded by the SSE unit's mode (MXCSR), up or down */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_yield(), 0);
        CHECK_EQ(fegetround(), mode); /* another task's mode did not leak in */
        CHECK(one / three == third);  /* nor into the SSE unit */
    }
    return 0;
}

static int fp_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK_EQ(weft_spawn(&a, fp_task, (void *)(long)FE_UPWARD), 0);
    CHECK_EQ(weft_spawn(&b, fp_task, (void *)(long)FE_DOWNWARD), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK_EQ(weft_join(a), 0);
    CHECK_EQ(weft_join(b), 0);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_fp_control_per_task(void)
{
    CHECK_EQ(run_virtual(fp_main, NULL), 0);
}

TEST_MAIN(test_default_stack_size, test_stack_sizes_usable,
          test_global_default_applies_to_new_loops, test_stack_pool_and_trim,
          test_fresh_stack_alignment, test_fp_control_per_task)
