/*
 * Thread pool: results, lazy start and sizing, the concurrency bound, cancellation before and
 * after a job started (drop callbacks, no leaks), deadlines, separate queues, several loops.
 * Jobs are held by a gate the test opens; nothing sleeps to let something happen.
 */
#include "common.h"

static atomic_int active, max_active, finished;

static void reset_counters(void)
{
    atomic_store(&active, 0);
    atomic_store(&max_active, 0);
    atomic_store(&finished, 0);
}

/* A job that announces itself, waits at the gate and returns its argument. */
static int gated_job(void *arg)
{
    int a = atomic_fetch_add(&active, 1) + 1;
    int m = atomic_load(&max_active);
    while (a > m && !atomic_compare_exchange_weak(&max_active, &m, a))
        ;
    announce(start_pipe[1]);
    gate_wait();
    atomic_fetch_sub(&active, 1);
    atomic_fetch_add(&finished, 1);
    return (int)(intptr_t)arg;
}

struct square {
    int x;
    pthread_t ran_on;
};

static int square_job(void *arg)
{
    struct square *s = arg;
    s->ran_on = pthread_self();
    return s->x * s->x;
}

static int fail_job(void *arg)
{
    (void)arg;
    return -EIO;
}

static int shutdown_job(void *arg)
{
    (void)arg;
    return weft_pool_shutdown(); /* a pool thread cannot join itself */
}

/* ---- results ---- */

static int result_main(void *arg)
{
    (void)arg;
    struct square s = {7, pthread_self()};
    CHECK_EQ(weft_to_thread(square_job, &s), 49);
    CHECK(!pthread_equal(s.ran_on, pthread_self()));
    CHECK_EQ(weft_to_thread(fail_job, NULL), -EIO);
    CHECK_EQ(weft_to_thread(shutdown_job, NULL), -EDEADLK);
    CHECK_EQ(weft_to_thread(NULL, NULL), -EINVAL);
    CHECK_EQ(weft_to_thread_dl(square_job, &s, weft_deadline_in(100.0)), 49);
    CHECK_EQ(weft_pool_shutdown(), -EBUSY); /* would block the running loop */
    return 0;
}

static void test_result(void)
{
    setup(0);
    CHECK_EQ(weft_to_thread(fail_job, NULL), -EPERM); /* outside a task */
    CHECK_EQ(weft_run(result_main, NULL), 0);
    teardown();
}

/* ---- lazy start, size ---- */

static unsigned expected_default(void)
{
    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    unsigned n = (unsigned)CPU_COUNT(&set) + 4;
    return n < 32 ? n : 32;
}

static int one_job_main(void *arg)
{
    struct square s = {3, pthread_self()};
    CHECK_EQ(weft_to_thread(square_job, &s), 9);
    *(unsigned *)arg = stats().threads;
    return 0;
}

static void test_lazy_start(void)
{
    setup(0);
    CHECK_EQ(weft_pool_size(), expected_default());
    CHECK_EQ(stats().threads, 0); /* nothing started before the first job */
    CHECK_EQ(weft_pool_set_size(3), 0);
    CHECK_EQ(weft_pool_size(), 3);
    struct weft__pool_stats s = stats();
    CHECK_EQ(s.cap[WEFT__POOL_WORK], 2);
    CHECK_EQ(s.cap[WEFT__POOL_SLOW], 2);
    unsigned threads = 0;
    CHECK_EQ(weft_run(one_job_main, &threads), 0);
    CHECK_EQ(threads, 1); /* one job, one thread */
    CHECK_EQ(weft_pool_set_size(5), -EBUSY);
    CHECK_EQ(weft_pool_set_size(100000), -EINVAL);
    CHECK_EQ(weft_pool_shutdown(), 0);
    CHECK_EQ(stats().threads, 0);
    CHECK_EQ(weft_pool_set_size(1), 0);
    s = stats();
    CHECK_EQ(s.cap[WEFT__POOL_WORK], 1);
    CHECK_EQ(s.cap[WEFT__POOL_SLOW], 1);
    CHECK_EQ(weft_run(one_job_main, &threads), 0); /* restarts after a shutdown */
    CHECK_EQ(threads, 1);
    teardown();
    CHECK_EQ(weft_pool_set_size(0), 0);
    CHECK_EQ(weft_pool_size(), expected_default());
}

/* ---- the bound ---- */

#define NJOBS 12

static int call_gated(void *arg)
{
    return weft_to_thread(gated_job, arg);
}

static int bounded_main(void *arg)
{
    (void)arg;
    weft_task_t *t[NJOBS];
    for (intptr_t i = 0; i < NJOBS; i++)
        CHECK_EQ(weft_spawn(&t[i], call_gated, (void *)i), 0);
    await_announcements(start_pipe[0], 3); /* size 4: general work may use 3 threads */
    struct weft__pool_stats s = stats();
    CHECK_EQ(s.running[WEFT__POOL_WORK], 3);
    CHECK_EQ(s.queued[WEFT__POOL_WORK], NJOBS - 3);
    CHECK(s.threads <= 4);
    CHECK_EQ(atomic_load(&finished), 0);
    gate_open();
    for (int i = 0; i < NJOBS; i++) {
        CHECK_EQ(weft_join(t[i]), i);
        weft_task_release(t[i]);
    }
    await_announcements(start_pipe[0], NJOBS - 3);
    CHECK_EQ(atomic_load(&finished), NJOBS);
    CHECK_EQ(atomic_load(&max_active), 3);
    CHECK(stats().threads <= 4);
    return 0;
}

static void test_bounded(void)
{
    setup(4);
    reset_counters();
    CHECK_EQ(weft_run(bounded_main, NULL), 0);
    teardown();
}

/* ---- cancellation ---- */

struct dropped {
    atomic_int calls;
    int result;
    pthread_t thread;
    int notify; /* fd to write to when dropped, or -1 */
};

static struct dropped dropped;

static void drop_record(void *arg, int result)
{
    dropped.result = result;
    dropped.thread = pthread_self();
    atomic_fetch_add(&dropped.calls, 1);
    weft__free(arg); /* arg is an allocation the waiter handed over */
    if (dropped.notify >= 0)
        announce(dropped.notify);
}

static atomic_int never_ran;

static int must_not_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&never_ran, 1);
    return 0;
}

static int call_never(void *arg)
{
    (void)arg;
    void *owned = weft__malloc(32);
    return weft_to_thread_ex(must_not_run, owned, drop_record);
}

static int cancel_queued_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, call_gated, (void *)5), 0);
    await_announcements(start_pipe[0], 1); /* size 2: the one general thread is busy */
    CHECK_EQ(weft_spawn(&b, call_never, NULL), 0);
    CHECK_EQ(weft_yield(), 0); /* b queues its job and parks */
    CHECK_EQ(stats().queued[WEFT__POOL_WORK], 1);
    CHECK(weft_task_cancel(b, NULL));
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK(gate_closed()); /* returned at once */
    CHECK_EQ(stats().queued[WEFT__POOL_WORK], 0);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    CHECK_EQ(dropped.result, -ECANCELED); /* fn never ran */
    CHECK(pthread_equal(dropped.thread, loop_thread));
    gate_open();
    CHECK_EQ(weft_join(a), 5);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_cancel_before_start(void)
{
    setup(2);
    memset(&dropped, 0, sizeof(dropped));
    dropped.notify = -1;
    atomic_store(&never_ran, 0);
    CHECK_EQ(weft_run(cancel_queued_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&never_ran), 0);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
}

/* The job owns a heap block that only drop frees: a leak checker sees a missed drop. */
struct owned_job {
    int value;
    char *buf;
};

static int owned_gated_job(void *arg)
{
    struct owned_job *o = arg;
    return gated_job((void *)(intptr_t)o->value);
}

static void drop_owned(void *arg, int result)
{
    struct owned_job *o = arg;
    weft__free(o->buf);
    drop_record(o, result);
}

static void free_owned(struct owned_job *o)
{
    weft__free(o->buf);
    weft__free(o);
}

static int call_owned(void *arg)
{
    struct owned_job *o = weft__malloc(sizeof(*o));
    o->value = (int)(intptr_t)arg;
    o->buf = weft__malloc(100);
    int r = weft_to_thread_ex(owned_gated_job, o, drop_owned);
    if (r != -ECANCELED && r != -ETIMEDOUT)
        free_owned(o);
    return r;
}

static int cancel_running_main(void *arg)
{
    (void)arg;
    int dp[2];
    CHECK_EQ(pipe2(dp, O_NONBLOCK | O_CLOEXEC), 0);
    dropped.notify = dp[1];
    weft_task_t *b;
    CHECK_EQ(weft_spawn(&b, call_owned, (void *)77), 0);
    await_announcements(start_pipe[0], 1); /* running, held at the gate */
    CHECK(weft_task_cancel(b, "bye"));
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK(weft_task_cancelled(b));
    CHECK(gate_closed()); /* returned at once, the job still runs */
    CHECK_EQ(atomic_load(&dropped.calls), 0);
    CHECK_EQ(stats().running[WEFT__POOL_WORK], 1);
    gate_open();
    await_announcements(dp[0], 1);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    CHECK_EQ(dropped.result, 77);                       /* fn's result, dropped */
    CHECK(!pthread_equal(dropped.thread, loop_thread)); /* on the pool thread */
    weft_task_release(b);
    weft_close(dp[0]);
    weft_close(dp[1]);
    dropped.notify = -1;
    return 0;
}

static void test_cancel_after_start(void)
{
    setup(2);
    memset(&dropped, 0, sizeof(dropped));
    reset_counters();
    CHECK_EQ(weft_run(cancel_running_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    CHECK_EQ(atomic_load(&finished), 1);
}

/* Without a drop callback the late result is simply dropped; fn still completes. */
static int cancel_plain_main(void *arg)
{
    (void)arg;
    weft_task_t *b;
    CHECK_EQ(weft_spawn(&b, call_gated, (void *)3), 0);
    await_announcements(start_pipe[0], 1);
    weft_task_cancel(b, NULL);
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK(gate_closed());
    weft_task_release(b);
    gate_open();
    return 0;
}

static void test_cancel_plain(void)
{
    setup(2);
    reset_counters();
    CHECK_EQ(weft_run(cancel_plain_main, NULL), 0);
    teardown(); /* joins the thread: the job finished */
    CHECK_EQ(atomic_load(&finished), 1);
}

/* Cancelled after the completion was posted but before the waiter ran: the result is dropped
 * on the loop thread; a second cancel during the internal wait stays pending. */
static int quick_owned_job(void *arg)
{
    struct owned_job *o = arg;
    return o->value;
}

static int second_yield;

static int call_quick_owned(void *arg)
{
    struct owned_job *o = weft__malloc(sizeof(*o));
    o->value = (int)(intptr_t)arg;
    o->buf = weft__malloc(10);
    int r = weft_to_thread_ex(quick_owned_job, o, drop_owned);
    if (r != -ECANCELED && r != -ETIMEDOUT)
        free_owned(o);
    second_yield = weft_yield();
    return r;
}

static int cancel_posted_main(void *arg)
{
    (void)arg;
    weft_task_t *b;
    CHECK_EQ(weft_spawn(&b, call_quick_owned, (void *)11), 0);
    CHECK_EQ(weft_yield(), 0); /* b submits and parks */
    await_posted();            /* the job finished and its completion is queued */
    CHECK(weft_task_cancel(b, NULL));
    CHECK_EQ(weft_yield(), 0); /* b ran, found the completion posted, waits for it */
    CHECK_EQ(atomic_load(&dropped.calls), 0);
    CHECK(weft_task_cancel(b, NULL)); /* lands while b waits for the completion */
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    CHECK_EQ(dropped.result, 11);
    CHECK(pthread_equal(dropped.thread, loop_thread)); /* dropped by the leaving waiter */
    CHECK_EQ(second_yield, -ECANCELED);                /* the second request was kept */
    weft_task_release(b);
    return 0;
}

static void test_cancel_posted(void)
{
    setup(2);
    memset(&dropped, 0, sizeof(dropped));
    dropped.notify = -1;
    CHECK_EQ(weft_run(cancel_posted_main, NULL), 0);
    teardown();
}

/* A cancel that arrives while the task is running, before it calls: nothing is queued. */
static int precancelled_main(void *arg)
{
    (void)arg;
    weft_task_t *self = weft_current_task();
    weft_task_cancel(self, NULL);
    void *owned = weft__malloc(8);
    CHECK_EQ(weft_to_thread_ex(must_not_run, owned, drop_record), -ECANCELED);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    weft_task_uncancel(self);
    return 0;
}

static void test_precancelled(void)
{
    setup(2);
    memset(&dropped, 0, sizeof(dropped));
    dropped.notify = -1;
    atomic_store(&never_ran, 0);
    CHECK_EQ(weft_run(precancelled_main, NULL), 0);
    CHECK_EQ(stats().threads, 0); /* nothing was submitted */
    teardown();
    CHECK_EQ(atomic_load(&never_ran), 0);
}

/* ---- deadlines (virtual clock: time jumps to the deadline while the job is held) ---- */

static int call_owned_dl(void *arg)
{
    struct owned_job *o = weft__malloc(sizeof(*o));
    o->value = (int)(intptr_t)arg;
    o->buf = weft__malloc(100);
    int64_t t0 = weft_time(NULL);
    int r = weft_to_thread_ex_dl(owned_gated_job, o, drop_owned, t0 + 1000000000);
    CHECK_EQ(weft_time(NULL) - t0, 1000000000);
    if (r != -ECANCELED && r != -ETIMEDOUT)
        free_owned(o);
    return r;
}

static int deadline_main(void *arg)
{
    (void)arg;
    int dp[2];
    CHECK_EQ(pipe2(dp, O_NONBLOCK | O_CLOEXEC), 0);
    dropped.notify = dp[1];
    weft_task_t *b;
    CHECK_EQ(weft_spawn(&b, call_owned_dl, (void *)9), 0);
    CHECK_EQ(weft_yield(), 0); /* b submits and parks with its deadline */
    /* Keep the loop busy (so virtual time cannot jump) until the job runs. */
    while (atomic_load(&active) < 1)
        sched_yield();
    CHECK_EQ(weft_join(b), -ETIMEDOUT); /* now the clock jumps to b's deadline */
    weft_task_release(b);
    CHECK(gate_closed());

    /* Queued behind it: removed at the deadline, dropped on the loop thread, never runs. */
    void *owned = weft__malloc(16);
    CHECK_EQ(weft_to_thread_ex_dl(must_not_run, owned, drop_record, weft_deadline_in(2.0)),
             -ETIMEDOUT);
    CHECK_EQ(atomic_load(&dropped.calls), 1);
    CHECK_EQ(dropped.result, -ECANCELED);
    CHECK(pthread_equal(dropped.thread, loop_thread));

    /* A deadline already passed: nothing is queued. */
    owned = weft__malloc(16);
    CHECK_EQ(weft_to_thread_ex_dl(must_not_run, owned, drop_record, weft_time(NULL)), -ETIMEDOUT);
    CHECK_EQ(atomic_load(&dropped.calls), 2);
    CHECK_EQ(stats().queued[WEFT__POOL_WORK], 0);

    gate_open();
    await_announcements(dp[0], 3); /* the held job's drop, after the two above */
    CHECK_EQ(atomic_load(&dropped.calls), 3);
    CHECK_EQ(dropped.result, 9);
    CHECK(!pthread_equal(dropped.thread, loop_thread));
    weft_close(dp[0]);
    weft_close(dp[1]);
    dropped.notify = -1;
    return 0;
}

static void test_deadline(void)
{
    setup(2);
    memset(&dropped, 0, sizeof(dropped));
    atomic_store(&never_ran, 0);
    reset_counters();
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&never_ran), 0);
}

/* ---- separate queues ---- */

static int call_slow_gated(void *arg)
{
    return weft__pool_call(WEFT__POOL_SLOW, gated_job, arg, NULL, WEFT_NO_DEADLINE);
}

static int slow_starve_main(void *arg)
{
    (void)arg;
    weft_task_t *t[5];
    for (intptr_t i = 0; i < 5; i++)
        CHECK_EQ(weft_spawn(&t[i], call_slow_gated, (void *)i), 0);
    await_announcements(start_pipe[0], 2); /* size 4: slow work may use 2 threads */
    struct weft__pool_stats s = stats();
    CHECK_EQ(s.running[WEFT__POOL_SLOW], 2);
    CHECK_EQ(s.queued[WEFT__POOL_SLOW], 3);
    /* General work still runs while the slow queue is full. */
    struct square sq = {6, pthread_self()};
    CHECK_EQ(weft_to_thread(square_job, &sq), 36);
    CHECK_EQ(weft_to_thread(square_job, &sq), 36);
    CHECK(gate_closed());
    CHECK_EQ(stats().queued[WEFT__POOL_SLOW], 3);
    gate_open();
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(weft_join(t[i]), i);
        weft_task_release(t[i]);
    }
    CHECK_EQ(atomic_load(&max_active), 2);
    return 0;
}

static void test_slow_does_not_starve(void)
{
    setup(4);
    reset_counters();
    CHECK_EQ(weft_run(slow_starve_main, NULL), 0);
    teardown();
}

static int work_starve_main(void *arg)
{
    (void)arg;
    weft_task_t *t[4];
    for (intptr_t i = 0; i < 4; i++)
        CHECK_EQ(weft_spawn(&t[i], call_gated, (void *)i), 0);
    await_announcements(start_pipe[0], 3);
    CHECK_EQ(stats().queued[WEFT__POOL_WORK], 1);
    /* A lookup still gets the thread general work may not take. */
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_family = AF_INET};
    struct addrinfo *res;
    CHECK_EQ(weft_getaddrinfo("127.0.0.1", NULL, &hints, &res), 0);
    freeaddrinfo(res);
    CHECK(gate_closed());
    gate_open();
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(t[i]), i);
        weft_task_release(t[i]);
    }
    return 0;
}

static void test_work_does_not_starve_dns(void)
{
    setup(4);
    reset_counters();
    CHECK_EQ(weft_run(work_starve_main, NULL), 0);
    teardown();
}

/* ---- several loops share the pool; each gets its own results back ---- */

struct loop_arg {
    int base;
    int sum;
    weft_loop_t *loop;
};

static int add_job(void *arg)
{
    return *(int *)arg + 1;
}

static int many_calls_main(void *arg)
{
    struct loop_arg *la = arg;
    la->loop = weft_loop_current();
    for (int i = 0; i < 50; i++) {
        int v = la->base + i;
        int r = weft_to_thread(add_job, &v);
        CHECK_EQ(r, v + 1);
        CHECK(weft_loop_current() == la->loop);
        la->sum += r;
    }
    return 0;
}

static void *loop_thread_main(void *arg)
{
    CHECK_EQ(weft_run(many_calls_main, arg), 0);
    return NULL;
}

static void test_several_loops(void)
{
    setup(3);
    struct loop_arg la[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        la[i] = (struct loop_arg){.base = 1000 * i};
        CHECK_EQ(pthread_create(&th[i], NULL, loop_thread_main, &la[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(la[i].sum, 50 * la[i].base + 50 * 51 / 2);
    }
    teardown();
}

TEST_MAIN(test_result, test_lazy_start, test_bounded, test_cancel_before_start,
          test_cancel_after_start, test_cancel_plain, test_cancel_posted, test_precancelled,
          test_deadline, test_slow_does_not_starve, test_work_does_not_starve_dns,
          test_several_loops)
