/*
 * Issue 14, item 5: a TaskGroup never loses an error to an allocation failure. Whichever
 * allocation fails, weft_group_enter/spawn report -ENOMEM up front, or weft_group_exit returns
 * WEFT_EGROUP with the failed child's (or the body's) error in the group: never an empty group,
 * never the raw error (which exit's doc comment does not list). The allocator fails the k-th
 * allocation from a point on, for every k, and then every allocation after a point on.
 */
#include "test.h"

#include <stdatomic.h>

static atomic_long countdown = -1; /* allocations left before failing; -1: never fail */
static atomic_bool fail_all;

static bool should_fail(void)
{
    if (atomic_load(&fail_all))
        return true;
    long v = atomic_load(&countdown);
    if (v < 0)
        return false;
    return atomic_fetch_sub(&countdown, 1) == 0;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

/* Every case installs the failing allocator first (before any loop exists). */
static void setup(void)
{
    CHECK_EQ(weft_set_allocator(t_malloc, t_realloc, free), 0);
}

static int failing_child(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_yield(), 0);
    return -EIO;
}

static int fine_child(void *arg)
{
    (void)arg;
    return weft_yield();
}

/* Check what exit said: an error group holding `want`, or a clean -ENOMEM earlier. */
static void check_outcome(int r, weft_errgroup_t *eg, int want)
{
    if (r != WEFT_EGROUP) {
        fprintf(stderr, "exit returned %d (%s)\n", r, weft_err_name(r));
        CHECK(0);
    }
    CHECK(eg != NULL);
    CHECK(weft_errgroup_count(eg) >= 1);
    CHECK(weft_errgroup_contains(eg, want));
    weft_errgroup_release(eg);
}

/* Enter, spawn a failing child and a fine one, exit: with allocation k failing. */
static int child_error_main(void *arg)
{
    long k = *(long *)arg;
    weft_group_t g;
    atomic_store(&countdown, k);
    int r = weft_group_enter(&g);
    if (r < 0) {
        CHECK_EQ(r, -ENOMEM);
        atomic_store(&countdown, -1);
        return 0;
    }
    int s1 = weft_group_spawn(&g, NULL, failing_child, NULL);
    int s2 = weft_group_spawn(&g, NULL, fine_child, NULL);
    CHECK(s1 == 0 || s1 == -ENOMEM);
    CHECK(s2 == 0 || s2 == -ENOMEM);
    weft_errgroup_t *eg = NULL;
    r = weft_group_exit(&g, 0, &eg);
    atomic_store(&countdown, -1);
    if (s1 == 0)
        check_outcome(r, eg, -EIO);
    else
        CHECK(r == 0 || r == WEFT_EGROUP); /* the failing child never existed */
    if (r == WEFT_EGROUP && s1 != 0)
        weft_errgroup_release(eg);
    return 0;
}

static void test_group_oom_child_error_kept(void)
{
    setup();
    for (long k = 0; k < 40; k++) {
        int r = run_virtual(child_error_main, &k);
        CHECK(r == 0 || r == -ENOMEM); /* the runner itself may lack memory */
    }
}

/* Every allocation fails once the children are running: the child's error still comes back. */
static int fail_all_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, failing_child, NULL), 0);
    CHECK_EQ(weft_group_spawn(&g, NULL, fine_child, NULL), 0);
    atomic_store(&fail_all, true);
    weft_errgroup_t *eg = NULL;
    int r = weft_group_exit(&g, 0, &eg);
    atomic_store(&fail_all, false);
    check_outcome(r, eg, -EIO);
    return 0;
}

static void test_group_oom_fail_all(void)
{
    setup();
    CHECK_EQ(run_virtual(fail_all_main, NULL), 0);
}

/* The body's own error, with no child at all and no memory at exit. */
static int body_error_main(void *arg)
{
    (void)arg;
    weft_group_t g;
    CHECK_EQ(weft_group_enter(&g), 0);
    atomic_store(&fail_all, true);
    weft_errgroup_t *eg = NULL;
    int r = weft_group_exit(&g, -EBADMSG, &eg);
    atomic_store(&fail_all, false);
    check_outcome(r, eg, -EBADMSG);
    return 0;
}

static void test_group_oom_body_error_kept(void)
{
    setup();
    CHECK_EQ(run_virtual(body_error_main, NULL), 0);
}

TEST_MAIN(test_group_oom_child_error_kept, test_group_oom_fail_all,
          test_group_oom_body_error_kept)
