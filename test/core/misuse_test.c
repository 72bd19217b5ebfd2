/*
 * Errors and misuse: weft_strerror / weft_err_name, and every misuse returning an error instead
 * of crashing: -EPERM (blocking call outside a task), -EDEADLK (self-wait), -EBUSY (a loop in a
 * running loop), -EINVAL (bad arguments). Also the allocator hook and allocation failures.
 */
#include "test.h"

#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

static void test_strerror_names(void)
{
    CHECK_STR(weft_err_name(-ECANCELED), "ECANCELED");
    CHECK_STR(weft_strerror(-ECANCELED), "operation canceled");
    CHECK_STR(weft_err_name(-ETIMEDOUT), "ETIMEDOUT");
    CHECK_STR(weft_strerror(-ETIMEDOUT), "operation timed out");
    CHECK_STR(weft_err_name(-EINVAL), "EINVAL");
    CHECK_STR(weft_strerror(-EINVAL), "invalid argument");
    CHECK_STR(weft_err_name(-EPERM), "EPERM");
    CHECK_STR(weft_err_name(-EDEADLK), "EDEADLK");
    CHECK_STR(weft_err_name(-EBUSY), "EBUSY");
    CHECK_STR(weft_err_name(-EBADF), "EBADF");
    CHECK_STR(weft_strerror(-EBADF), "bad file descriptor");
    CHECK_STR(weft_err_name(-EALREADY), "EALREADY");
    CHECK_STR(weft_err_name(-ENOMEM), "ENOMEM");
    CHECK_STR(weft_err_name(-ECONNRESET), "ECONNRESET");
    CHECK_STR(weft_err_name(WEFT_EOF), "EOF");
    CHECK_STR(weft_strerror(WEFT_EOF), "end of file");
    CHECK_STR(weft_err_name(0), "OK");
    CHECK_STR(weft_err_name(5), "OK");
    CHECK_STR(weft_strerror(0), "success");
    CHECK_STR(weft_err_name(-99999), "UNKNOWN");
    CHECK_STR(weft_strerror(-99999), "unknown error");
    CHECK_STR(weft_err_name(-2147483647 - 1), "UNKNOWN");
    /* Every code weft returns has a name and a message of its own. */
    static const int codes[] = {-EPERM,     -ENOENT,    -EINTR,    -EBADF,        -EAGAIN,
                                -ENOMEM,    -EBUSY,     -EINVAL,   -EPIPE,        -EDEADLK,
                                -ETIMEDOUT, -ECANCELED, -EALREADY, -ECONNREFUSED, WEFT_EOF};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        CHECK(strcmp(weft_err_name(codes[i]), "UNKNOWN") != 0);
        CHECK(strcmp(weft_strerror(codes[i]), "unknown error") != 0);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(weft_err_name(codes[i]), weft_err_name(codes[k])) != 0);
    }
}

/* ---- -EPERM: blocking calls outside a task ---- */

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static void noop_cb(void *arg)
{
    (void)arg;
}

static void check_blocking_calls_eperm(weft_task_t *t, weft_future_t *f)
{
    CHECK_EQ(weft_sleep(1), -EPERM);
    CHECK_EQ(weft_sleep(0), -EPERM);
    CHECK_EQ(weft_sleep_until(1), -EPERM);
    CHECK_EQ(weft_yield(), -EPERM);
    if (t != NULL) {
        CHECK_EQ(weft_join(t), -EPERM);
        CHECK_EQ(weft_join_dl(t, 0), -EPERM);
        CHECK_EQ(weft_shield(t), -EPERM);
    }
    if (f != NULL) {
        CHECK_EQ(weft_future_await(f), -EPERM);
        CHECK_EQ(weft_future_await_dl(f, 0), -EPERM);
        CHECK_EQ(weft_future_await_shielded(f), -EPERM);
    }
    CHECK_EQ(weft_wait_fd(0, WEFT_READABLE), -EPERM);
    CHECK_EQ(weft_wait_fd_dl(0, WEFT_READABLE, 0), -EPERM);
}

static weft_task_t *cb_task;
static weft_future_t *cb_fut;
static int cb_ran;

static void from_callback(void *arg)
{
    (void)arg;
    /* A callback runs on the loop, not in a task: blocking is refused there too. */
    check_blocking_calls_eperm(cb_task, cb_fut);
    CHECK(weft_current_task() == NULL);
    cb_ran = 1;
}

static int eperm_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&cb_task, nothing, NULL), 0);
    CHECK_EQ(weft_future_new(&cb_fut), 0);
    CHECK_EQ(weft_call_soon(weft_loop_current(), from_callback, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(cb_ran, 1);
    CHECK_EQ(weft_join(cb_task), 0);
    weft_task_release(cb_task);
    weft_future_release(cb_fut);
    return 0;
}

static void test_blocking_outside_task_eperm(void)
{
    /* No loop at all. */
    check_blocking_calls_eperm(NULL, NULL);
    weft_task_t *t;
    weft_future_t *f;
    CHECK_EQ(weft_spawn(&t, nothing, NULL), -EPERM);
    CHECK_EQ(weft_future_new(&f), -EPERM);
    /* A loop, but not inside one of its tasks. */
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_spawn(&t, nothing, NULL), 0);
    CHECK_EQ(weft_future_new(&f), 0);
    check_blocking_calls_eperm(t, f);
    weft_future_release(f);
    CHECK_EQ(weft_loop_close(l), 0);
    weft_task_release(t);
    /* In a callback of a running loop. */
    CHECK_EQ(weft_run(eperm_main, NULL), 0);
}

/* ---- -EDEADLK, -EBUSY ---- */

static int deadlk_main(void *arg)
{
    (void)arg;
    weft_task_t *me = weft_current_task();
    CHECK_EQ(weft_join(me), -EDEADLK);
    CHECK_EQ(weft_join_dl(me, weft_deadline_in(1)), -EDEADLK);
    CHECK_EQ(weft_shield(me), -EDEADLK);
    CHECK_EQ(weft_future_await(weft_task_future(me)), -EDEADLK);
    CHECK_EQ(weft_run(nothing, NULL), -EBUSY);
    CHECK_EQ(weft_loop_run(weft_loop_current()), -EBUSY);
    CHECK_EQ(weft_loop_close(weft_loop_current()), -EBUSY);
    return 0;
}

static void test_deadlk_busy(void)
{
    CHECK_EQ(weft_run(deadlk_main, NULL), 0);
}

/* A task of another thread's loop cannot be waited for from this loop: -EINVAL. */
static weft_task_t *foreign;
static sem_t published, checked;

static int foreign_sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(1);
}

static int owner_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(&foreign, foreign_sleeper, NULL), 0);
    sem_post(&published);
    while (sem_wait(&checked) != 0) {
    }
    CHECK_EQ(weft_join(foreign), 0);
    weft_task_release(foreign);
    return 0;
}

static void *owner_thread(void *arg)
{
    (void)arg;
    CHECK_EQ(run_virtual(owner_main, NULL), 0);
    return NULL;
}

static int foreign_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_join(foreign), -EINVAL);
    CHECK_EQ(weft_join_dl(foreign, weft_deadline_in(1)), -EINVAL);
    CHECK_EQ(weft_future_await(weft_task_future(foreign)), -EINVAL);
    return 0;
}

static void test_join_foreign_loop(void)
{
    pthread_t th;
    CHECK_EQ(sem_init(&published, 0, 0), 0);
    CHECK_EQ(sem_init(&checked, 0, 0), 0);
    CHECK_EQ(pthread_create(&th, NULL, owner_thread, NULL), 0);
    while (sem_wait(&published) != 0) {
    }
    CHECK_EQ(weft_run(foreign_main, NULL), 0);
    sem_post(&checked);
    CHECK_EQ(pthread_join(th, NULL), 0);
    sem_destroy(&published);
    sem_destroy(&checked);
}

/* ---- -EINVAL: bad arguments ---- */

static int einval_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    weft_task_t *t;
    weft_timer_t tm;
    weft_timer_init(&tm);
    CHECK_EQ(weft_spawn(&t, NULL, NULL), -EINVAL);
    CHECK_EQ(weft_spawn_opts(&t, nothing, NULL, &(struct weft_task_opts){.stack_size = 1}),
             -EINVAL);
    CHECK_EQ(
        weft_spawn_opts(&t, nothing, NULL, &(struct weft_task_opts){.stack_size = (size_t)2 << 30}),
        -EINVAL);
    CHECK_EQ(weft_call_at(l, &tm, -5, noop_cb, NULL), -EINVAL);
    CHECK_EQ(weft_call_at(l, NULL, -1, noop_cb, NULL), -EINVAL);
    CHECK_EQ(weft_call_later(l, &tm, 0.0 / 0.0, noop_cb, NULL), -EINVAL);
    CHECK_EQ(weft_sleep(0.0 / 0.0), -EINVAL);
    CHECK_EQ(weft_join(NULL), -EINVAL);
    CHECK_EQ(weft_shield(NULL), -EINVAL);
    CHECK_EQ(weft_future_await(NULL), -EINVAL);
    CHECK_EQ(weft_wait_fd(-3, WEFT_READABLE), -EINVAL);
    CHECK_EQ(weft_wait_fd(0, 0), -EINVAL);
    CHECK_EQ(weft_task_set_name(weft_current_task(), NULL), -EINVAL);
    CHECK_EQ(weft_task_set_name(NULL, "x"), -EINVAL);
    return 0;
}

static void test_bad_arguments_einval(void)
{
    CHECK_EQ(run_virtual(einval_main, NULL), 0);
    CHECK_EQ(weft_run(NULL, NULL), -EINVAL);
    CHECK_EQ(weft_set_default_stack_size(0), -EINVAL);
    CHECK_EQ(weft_set_default_stack_size(((size_t)16 << 10) - 1), -EINVAL);
    CHECK_EQ(weft_set_default_stack_size(((size_t)1 << 30) + 1), -EINVAL);
    CHECK_EQ(weft_set_allocator(NULL, realloc, free), -EINVAL);
    CHECK_EQ(weft_set_allocator(malloc, NULL, free), -EINVAL);
    CHECK_EQ(weft_set_allocator(malloc, realloc, NULL), -EINVAL);
}

/* ---- the allocator hook: everything goes through it; failures are errors, not crashes ---- */

static long nalloc;       /* allocation attempts */
static long live;         /* blocks handed out and not freed */
static long fail_at = -1; /* the attempt that fails, -1 = none */

static void *count_malloc(size_t n)
{
    if (nalloc++ == fail_at)
        return NULL;
    void *p = malloc(n);
    if (p != NULL)
        live++;
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    if (p == NULL)
        return count_malloc(n);
    if (nalloc++ == fail_at)
        return NULL;
    return realloc(p, n);
}

static void count_free(void *p)
{
    if (p != NULL)
        live--;
    free(p);
}

static int sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(1);
}

static int workload(void *arg)
{
    (void)arg;
    weft_task_t *t[4];
    int n = 0, err = 0;
    for (int i = 0; i < 4; i++) {
        err = weft_spawn_opts(&t[n], sleeper, NULL, &(struct weft_task_opts){.name = "w"});
        if (err < 0)
            break;
        n++;
    }
    weft_future_t *f = NULL;
    if (err == 0)
        err = weft_future_new(&f);
    if (err == 0)
        err = weft_call_later(weft_loop_current(), NULL, 0.5, noop_cb, NULL);
    for (int i = 0; i < n; i++) {
        int r = weft_join(t[i]);
        if (r < 0 && err == 0)
            err = r;
        weft_task_release(t[i]);
    }
    if (f != NULL) {
        CHECK_EQ(weft_future_set_result(f, 1), 0);
        weft_future_release(f);
    }
    return err;
}

static void test_allocator_and_failures(void)
{
    CHECK_EQ(weft_set_allocator(count_malloc, count_realloc, count_free), 0);
    /* The normal run: weft allocated through the hook and freed all of it. */
    nalloc = live = 0;
    fail_at = -1;
    CHECK_EQ(run_virtual(workload, NULL), 0);
    long counted = nalloc;
    CHECK(counted > 5);
    CHECK_EQ(live, 0);
    /* Make each allocation in turn fail: an error comes back, nothing crashes or leaks. */
    for (long k = 0; k < counted + 2; k++) {
        nalloc = live = 0;
        fail_at = k;
        int r = run_virtual(workload, NULL);
        if (r != 0 && r != -ENOMEM) {
            fprintf(stderr, "allocation %ld failing: result %d\n", k, r);
            CHECK(0);
        }
        if (live != 0) {
            fprintf(stderr, "allocation %ld failing: %ld blocks leaked\n", k, live);
            CHECK(0);
        }
    }
    fail_at = -1;
    CHECK_EQ(weft_set_allocator(malloc, realloc, free), 0);
}

TEST_MAIN(test_strerror_names, test_blocking_outside_task_eperm, test_deadlk_busy,
          test_join_foreign_loop, test_bad_arguments_einval, test_allocator_and_failures)
