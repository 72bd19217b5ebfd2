/*
 * weft_call_soon_threadsafe: another thread (pthread) wakes a loop sleeping in its poll, with
 * and without timers, on the real and the virtual clock; many threads, many calls, none lost,
 * each thread's calls in order.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static weft_loop_t *loop;
static pid_t loop_tid;
static weft_future_t *done_fut;
static atomic_int ran_on_loop_thread;

/* Wait (bounded) until the loop thread is asleep in the kernel: state 'S' in its stat. */
static void wait_loop_asleep(void)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)loop_tid);
    for (int i = 0; i < 100000; i++) {
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (p != NULL && p[1] == ' ' && p[2] == 'S')
            return;
        sched_yield();
    }
}

static void set_done(void *arg)
{
    if ((pid_t)syscall(SYS_gettid) == loop_tid)
        atomic_store(&ran_on_loop_thread, 1);
    CHECK_EQ(weft_future_set_result(done_fut, (int)(long)arg), 0);
}

static void *poke(void *arg)
{
    (void)arg;
    wait_loop_asleep();
    CHECK_EQ(weft_call_soon_threadsafe(loop, set_done, (void *)77), 0);
    return NULL;
}

static int wake_main(void *arg)
{
    long with_timer = (long)arg;
    loop = weft_loop_current();
    loop_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&ran_on_loop_thread, 0);
    CHECK_EQ(weft_future_new(&done_fut), 0);
    weft_timer_t tm;
    weft_timer_init(&tm);
    if (with_timer) /* a far timer: the poll sleeps with a timeout instead of forever */
        CHECK_EQ(weft_call_later(loop, &tm, 3600, set_done, (void *)1), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, poke, NULL), 0);
    int64_t t0 = test_mono_ns();
    CHECK_EQ(weft_future_await(done_fut), 77);
    CHECK(test_mono_ns() - t0 < 30LL * 1000000000); /* woken by the call, not by a timer */
    CHECK_EQ(atomic_load(&ran_on_loop_thread), 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    weft_timer_cancel(&tm);
    weft_future_release(done_fut);
    return 0;
}

static void test_threadsafe_wakes_sleeping_loop(void)
{
    CHECK_EQ(weft_run(wake_main, (void *)0), 0);
    CHECK_EQ(weft_run(wake_main, (void *)1), 0);
}

/* Virtual clock with no timer: the loop blocks in the poll; the call must still wake it. With
 * a timer, virtual time would jump instead, so only the timer-less case is meaningful. */
static void test_threadsafe_wakes_virtual_loop(void)
{
    CHECK_EQ(run_virtual(wake_main, (void *)0), 0);
}

/* ---- many threads, many calls ---- */

#define NTHREADS 4
#define NCALLS   5000

static int counts[NTHREADS];
static int last_seq[NTHREADS];
static int total;
static int out_of_order;

static void count_call(void *arg)
{
    long v = (long)arg;
    int th = (int)(v / NCALLS), seq = (int)(v % NCALLS);
    if (seq != last_seq[th] + 1)
        out_of_order++;
    last_seq[th] = seq;
    counts[th]++;
    if (++total == NTHREADS * NCALLS)
        CHECK_EQ(weft_future_set_result(done_fut, total), 0);
}

static void *flood(void *arg)
{
    long th = (long)arg;
    for (long i = 0; i < NCALLS; i++) {
        CHECK_EQ(weft_call_soon_threadsafe(loop, count_call, (void *)(th * NCALLS + i)), 0);
        if (i % 512 == 0)
            sched_yield();
    }
    return NULL;
}

static int flood_main(void *arg)
{
    (void)arg;
    loop = weft_loop_current();
    total = out_of_order = 0;
    for (int i = 0; i < NTHREADS; i++) {
        counts[i] = 0;
        last_seq[i] = -1;
    }
    CHECK_EQ(weft_future_new(&done_fut), 0);
    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, flood, (void *)i), 0);
    CHECK_EQ(weft_future_await(done_fut), NTHREADS * NCALLS);
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
        CHECK_EQ(counts[i], NCALLS);
    }
    CHECK_EQ(out_of_order, 0); /* each thread's calls run in the order it made them */
    weft_future_release(done_fut);
    return 0;
}

static void test_threadsafe_many_threads(void)
{
    CHECK_EQ(weft_run(flood_main, NULL), 0);
}

/* From the loop thread itself it works too, FIFO with the other calls. */
static int order[4];
static int norder;

static void note(void *arg)
{
    order[norder++] = (int)(long)arg;
}

static int same_thread_main(void *arg)
{
    (void)arg;
    weft_loop_t *l = weft_loop_current();
    norder = 0;
    CHECK_EQ(weft_call_soon_threadsafe(l, note, (void *)1), 0);
    CHECK_EQ(weft_call_soon_threadsafe(l, note, (void *)2), 0);
    CHECK_EQ(norder, 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    return 0;
}

static void test_threadsafe_same_thread(void)
{
    CHECK_EQ(weft_run(same_thread_main, NULL), 0);
}

static void test_threadsafe_errors(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_call_soon_threadsafe(NULL, note, NULL), -EINVAL);
    CHECK_EQ(weft_loop_new(&l, NULL), 0);
    CHECK_EQ(weft_call_soon_threadsafe(l, NULL, NULL), -EINVAL);
    /* Queued and never run: freed when the loop closes. */
    CHECK_EQ(weft_call_soon_threadsafe(l, note, NULL), 0);
    CHECK_EQ(weft_loop_close(l), 0);
}

/* Each thread has its own loop: loops on two threads run at the same time. */
static int64_t slept_ns;

static int thread_main(void *arg)
{
    (void)arg;
    CHECK(weft_loop_current() != loop);
    int64_t t0 = weft_time(NULL);
    CHECK_EQ(weft_sleep(2), 0);
    slept_ns = weft_time(NULL) - t0;
    return 5;
}

static void *run_other_loop(void *arg)
{
    (void)arg;
    CHECK(weft_loop_current() == NULL); /* per thread */
    CHECK_EQ(run_virtual(thread_main, NULL), 5);
    return NULL;
}

static int two_loops_main(void *arg)
{
    (void)arg;
    loop = weft_loop_current();
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, run_other_loop, NULL), 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(slept_ns, 2000000000);
    return 0;
}

static void test_loop_per_thread(void)
{
    CHECK_EQ(weft_run(two_loops_main, NULL), 0);
}

TEST_MAIN(test_threadsafe_wakes_sleeping_loop, test_threadsafe_wakes_virtual_loop,
          test_threadsafe_many_threads, test_threadsafe_same_thread, test_threadsafe_errors,
          test_loop_per_thread)
