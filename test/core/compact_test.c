/*
 * Compact tasks (WEFT_STACK_COMPACT): tasks sharing one stack keep their locals across every
 * kind of wait while other compact tasks run in between (their frames are copied out and back),
 * wait-list nodes on a sleeping task's stack keep working (woken, cancelled, timed out), storage
 * that would be read while the frames are out is refused, and the loop cleans up parked ones.
 */
#include "test.h"

#include <errno.h>
#include <unistd.h>

static const struct weft_task_opts compact = {.stack_mode = WEFT_STACK_COMPACT};
static const struct weft_task_opts own = {.stack_mode = WEFT_STACK_OWN};

static int spawn_c(weft_task_t **t, weft_task_fn fn, void *arg)
{
    return weft_spawn_opts(t, fn, arg, &compact);
}

/* Fill a local array with a pattern of `seed` and check it is still there. */
#define PAT_WORDS 48
static void pat_fill(volatile unsigned *a, unsigned seed)
{
    for (unsigned i = 0; i < PAT_WORDS; i++)
        a[i] = seed * 2654435761u + i;
}

static int pat_ok(const volatile unsigned *a, unsigned seed)
{
    for (unsigned i = 0; i < PAT_WORDS; i++) {
        if (a[i] != seed * 2654435761u + i)
            return 0;
    }
    return 1;
}

/* ---- locals survive sleeps and yields among many compact and own-stack tasks ---- */

static int nchecked;

static int sleeper(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    volatile unsigned a[PAT_WORDS];
    volatile unsigned *self = a; /* a pointer into its own frames stays valid too */
    pat_fill(a, seed);
    for (int round = 0; round < 5; round++) {
        int err = (seed + (unsigned)round) % 3 == 0 ? weft_yield()
                                                    : weft_sleep(0.001 * ((seed * 7 + round) % 5));
        CHECK_EQ(err, 0);
        CHECK(self == a);
        CHECK(pat_ok(self, seed));
        nchecked++;
    }
    return (int)(seed & 0xffff);
}

static int sleepers_main(void *arg)
{
    (void)arg;
    enum { N = 300 };
    weft_task_t *t[N];
    for (unsigned i = 0; i < N; i++) {
        /* Every third task has a stack of its own: mixed switches in both directions. */
        CHECK_EQ(weft_spawn_opts(&t[i], sleeper, (void *)(uintptr_t)(i + 1),
                                 i % 3 == 2 ? &own : &compact),
                 0);
    }
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(weft_join(t[i]), (int)((i + 1) & 0xffff));
        weft_task_release(t[i]);
    }
    CHECK_EQ(nchecked, N * 5);
    return 0;
}

static void test_compact_locals_survive(void)
{
    nchecked = 0;
    CHECK_EQ(run_virtual(sleepers_main, NULL), 0);
}

/* ---- a deep stack is saved whole ---- */

static int deep(int depth, unsigned seed)
{
    volatile unsigned a[PAT_WORDS];
    pat_fill(a, seed + (unsigned)depth);
    int r = 0;
    if (depth > 0) {
        r = deep(depth - 1, seed);
    } else {
        CHECK_EQ(weft_sleep(0.01), 0);
        CHECK_EQ(weft_yield(), 0);
    }
    CHECK(pat_ok(a, seed + (unsigned)depth));
    return r + 1;
}

static int deep_task(void *arg)
{
    return deep(60, (unsigned)(uintptr_t)arg); /* ~60 frames of >= 200 bytes */
}

static int deep_main(void *arg)
{
    (void)arg;
    weft_task_t *t[4];
    for (unsigned i = 0; i < 4; i++)
        CHECK_EQ(spawn_c(&t[i], deep_task, (void *)(uintptr_t)(i * 1000)), 0);
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(t[i]), 61);
        weft_task_release(t[i]);
    }
    return 0;
}

static void test_compact_deep_stack(void)
{
    CHECK_EQ(run_virtual(deep_main, NULL), 0);
}

/* ---- wait-list nodes on a compact stack: woken, cancelled, timed out while copied out ---- */

static weft_event_t ev;
static weft_lock_t lock;
static weft_queue_t *queue;
static weft_future_t *fut;
static int pipefd[2];

static int ev_waiter(void *arg)
{
    volatile unsigned a[PAT_WORDS];
    pat_fill(a, (unsigned)(uintptr_t)arg);
    int r = weft_event_wait(&ev);
    CHECK(pat_ok(a, (unsigned)(uintptr_t)arg));
    return r;
}

static int ev_waiter_dl(void *arg)
{
    (void)arg;
    return weft_event_wait_dl(&ev, weft_time(NULL) + 5000000); /* 5 ms */
}

static int lock_waiter(void *arg)
{
    int *order = arg;
    int err = weft_lock_acquire(&lock);
    if (err < 0)
        return err;
    *order = (*order * 10) + 1;
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    return 0;
}

static int q_getter(void *arg)
{
    (void)arg;
    void *item = NULL;
    int err = weft_queue_get(queue, &item);
    return err < 0 ? err : (int)(intptr_t)item;
}

static int fut_waiter(void *arg)
{
    (void)arg;
    return weft_future_await(fut);
}

static int fd_waiter(void *arg)
{
    (void)arg;
    int r = weft_wait_fd(pipefd[0], WEFT_READABLE);
    if (r < 0)
        return r;
    char c;
    return read(pipefd[0], &c, 1) == 1 ? c : -EIO;
}

static int busy(void *arg)
{
    /* Other compact tasks taking the shared stack in between: every waiter is copied out. */
    for (int i = 0; i < (int)(intptr_t)arg; i++)
        CHECK_EQ(weft_yield(), 0);
    return 0;
}

static int waits_main(void *arg)
{
    (void)arg;
    weft_event_init(&ev);
    weft_lock_init(&lock);
    CHECK_EQ(weft_queue_new(&queue, 0), 0);
    CHECK_EQ(weft_future_new(&fut), 0);
    CHECK_EQ(pipe(pipefd), 0);

    weft_task_t *e[4], *edl, *lk[3], *qg[3], *fw[2], *fdw, *b[3];
    int order = 0;
    for (unsigned i = 0; i < 4; i++)
        CHECK_EQ(spawn_c(&e[i], ev_waiter, (void *)(uintptr_t)(i + 7)), 0);
    CHECK_EQ(spawn_c(&edl, ev_waiter_dl, NULL), 0);
    CHECK_EQ(weft_lock_acquire(&lock), 0);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(spawn_c(&lk[i], lock_waiter, &order), 0);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(spawn_c(&qg[i], q_getter, NULL), 0);
    for (unsigned i = 0; i < 2; i++)
        CHECK_EQ(spawn_c(&fw[i], fut_waiter, NULL), 0);
    CHECK_EQ(spawn_c(&fdw, fd_waiter, NULL), 0);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(spawn_c(&b[i], busy, (void *)(intptr_t)20), 0);
    CHECK_EQ(weft_sleep(0.001), 0); /* all parked now; the busy ones ran over them */

    /* Cancel a waiter in the middle of each list: its neighbours must stay linked. */
    CHECK(weft_task_cancel(e[1], NULL));
    CHECK(weft_task_cancel(lk[1], NULL));
    CHECK(weft_task_cancel(qg[1], NULL));
    CHECK_EQ(weft_sleep(0.01), 0); /* the deadline waiter times out meanwhile */
    CHECK_EQ(weft_join(edl), -ETIMEDOUT);

    CHECK_EQ(weft_event_set(&ev), 0);
    CHECK_EQ(weft_lock_release(&lock), 0);
    CHECK_EQ(weft_queue_put_nowait(queue, (void *)(intptr_t)11), 0);
    CHECK_EQ(weft_queue_put_nowait(queue, (void *)(intptr_t)22), 0);
    CHECK_EQ(weft_future_set_result(fut, 42), 0);
    CHECK_EQ(write(pipefd[1], "x", 1), 1);

    CHECK_EQ(weft_join(e[0]), 0);
    CHECK_EQ(weft_join(e[1]), -ECANCELED);
    CHECK_EQ(weft_join(e[2]), 0);
    CHECK_EQ(weft_join(e[3]), 0);
    CHECK_EQ(weft_join(lk[0]), 0);
    CHECK_EQ(weft_join(lk[1]), -ECANCELED);
    CHECK_EQ(weft_join(lk[2]), 0);
    CHECK_EQ(order, 11); /* the two that stayed got it, once each */
    CHECK_EQ(weft_join(qg[0]), 11);
    CHECK_EQ(weft_join(qg[1]), -ECANCELED);
    CHECK_EQ(weft_join(qg[2]), 22); /* FIFO: nothing lost to the cancelled one */
    CHECK_EQ(weft_join(fw[0]), 42);
    CHECK_EQ(weft_join(fw[1]), 42);
    CHECK_EQ(weft_join(fdw), 'x');
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ(weft_join(b[i]), 0);

    weft_task_t *all[] = {e[0],  e[1],  e[2],  e[3],  edl, lk[0], lk[1], lk[2], qg[0],
                          qg[1], qg[2], fw[0], fw[1], fdw, b[0],  b[1],  b[2]};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        weft_task_release(all[i]);
    weft_future_release(fut);
    CHECK_EQ(weft_queue_free(queue), 0);
    CHECK_EQ(weft_close(pipefd[0]), 0);
    close(pipefd[1]);
    return 0;
}

static void test_compact_waits(void)
{
    CHECK_EQ(run_virtual(waits_main, NULL), 0);
}

/* ---- a compact task joining, gathering, and using wait_for ---- */

static int child(void *arg)
{
    CHECK_EQ(weft_sleep(0.002), 0);
    return (int)(intptr_t)arg;
}

static int slow_child(void *arg)
{
    (void)arg;
    return weft_sleep(10);
}

static int parent(void *arg)
{
    (void)arg;
    weft_task_t *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(spawn_c(&t[i], child, (void *)(intptr_t)(i + 1)), 0);
    int res[3];
    CHECK_EQ(weft_gather(t, 3, res, 0), 0);
    CHECK_EQ(res[0] + res[1] + res[2], 6);
    for (int i = 0; i < 3; i++)
        weft_task_release(t[i]);
    /* wait_for keeps its scope off the shared stack. */
    weft_task_t *s;
    CHECK_EQ(spawn_c(&s, slow_child, NULL), 0);
    CHECK_EQ(weft_wait_for(s, 0.005), -ETIMEDOUT);
    CHECK(weft_task_cancelled(s));
    weft_task_release(s);
    CHECK_EQ(weft_spawn_opts(&s, child, (void *)(intptr_t)9, &compact), 0);
    CHECK_EQ(weft_wait_for(s, 1.0), 9);
    weft_task_release(s);
    CHECK_EQ(weft_timeout_call(0.001, slow_child, NULL), -ETIMEDOUT);
    return 5;
}

static int parents_main(void *arg)
{
    (void)arg;
    weft_task_t *p[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(spawn_c(&p[i], parent, NULL), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(weft_join(p[i]), 5);
        weft_task_release(p[i]);
    }
    return 0;
}

static void test_compact_join_gather_wait_for(void)
{
    CHECK_EQ(run_virtual(parents_main, NULL), 0);
}

/* ---- storage that would be read while the frames are out is refused ---- */

static void nop(void *arg)
{
    (void)arg;
}

static int refuser(void *arg)
{
    (void)arg;
    weft_timeout_t to;
    memset(&to, 0, sizeof(to));
    CHECK_EQ(weft_timeout_enter(&to, 1.0), -EINVAL);
    weft_group_t g;
    memset(&g, 0, sizeof(g));
    CHECK_EQ(weft_group_enter(&g), -EINVAL);
    weft_timer_t tm;
    weft_timer_init(&tm);
    CHECK_EQ(weft_call_later(weft_loop_current(), &tm, 1.0, nop, NULL), -EINVAL);
    /* The same from the heap is fine. */
    weft_timeout_t *hto = calloc(1, sizeof(*hto));
    CHECK(hto != NULL);
    CHECK_EQ(weft_timeout_enter(hto, 1.0), 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    CHECK_EQ(weft_timeout_exit(hto, 0), 0);
    free(hto);
    return 0;
}

static int refuse_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(spawn_c(&t, refuser, NULL), 0);
    CHECK_EQ(weft_join(t), 0);
    weft_task_release(t);
    /* An own-stack task may keep a scope on its stack as always. */
    weft_timeout_t to;
    memset(&to, 0, sizeof(to));
    CHECK_EQ(weft_timeout_enter(&to, 1.0), 0);
    CHECK_EQ(weft_timeout_exit(&to, 0), 0);
    return 0;
}

static void test_compact_refuses_lent_storage(void)
{
    CHECK_EQ(run_virtual(refuse_main, NULL), 0);
}

/* ---- the loop option, bad options ---- */

static int is_compact_probe(void *arg)
{
    /* A local's address tells which stack a task is on: all compact ones share one. */
    volatile int local = 0;
    *(const volatile void **)arg = &local;
    return weft_yield();
}

static int loop_default_main(void *arg)
{
    (void)arg;
    const volatile void *where[3] = {0};
    weft_task_t *t[3];
    CHECK_EQ(weft_spawn(&t[0], is_compact_probe, (void *)&where[0]), 0);
    CHECK_EQ(weft_spawn(&t[1], is_compact_probe, (void *)&where[1]), 0);
    CHECK_EQ(weft_spawn_opts(&t[2], is_compact_probe, (void *)&where[2], &own), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK(where[0] == where[1]); /* same frame, same shared stack */
    CHECK(where[2] != where[0]);
    /* The main task has a stack of its own: its locals above were usable by the children. */
    struct weft_task_opts bad = {.stack_mode = 7};
    weft_task_t *x = (weft_task_t *)1;
    CHECK_EQ(weft_spawn_opts(&x, is_compact_probe, NULL, &bad), -EINVAL);
    CHECK(x == NULL);
    return 0;
}

static void test_compact_loop_default(void)
{
    struct weft_loop_opts o = {.virtual_clock = true, .compact_tasks = true};
    CHECK_EQ(weft_run_opts(loop_default_main, NULL, &o), 0);
}

/* ---- closing a loop with compact tasks parked, one of them on the shared stack ---- */

static int park_forever(void *arg)
{
    (void)arg;
    weft_event_t *e = arg;
    return weft_event_wait(e);
}

static void stop_loop(void *arg)
{
    weft_loop_stop(arg);
}

static void test_compact_loop_close(void)
{
    weft_loop_t *l;
    CHECK_EQ(weft_loop_new(&l, &test_vclock), 0);
    static weft_event_t e;
    weft_event_init(&e);
    weft_task_t *t[5];
    for (int i = 0; i < 5; i++)
        CHECK_EQ(weft_spawn_opts(&t[i], park_forever, &e, &compact), 0);
    weft_timer_t tm;
    weft_timer_init(&tm);
    CHECK_EQ(weft_call_later(l, &tm, 1.0, stop_loop, l), 0);
    CHECK_EQ(weft_loop_run(l), 0);
    for (int i = 0; i < 5; i++)
        CHECK(!weft_task_done(t[i]));
    CHECK_EQ(weft_loop_close(l), 0); /* orphans them; nothing leaks (ASan, valgrind) */
    for (int i = 0; i < 5; i++) {
        CHECK(weft_task_cancelled(t[i]));
        weft_task_release(t[i]);
    }
}

/*
 * A park's deadline node lives in weft__park()'s frame, so a sleeping compact task's timer node is
 * copied out with its frames and back: the heap slot (deadlines armed out of order) or the lane
 * (in order) must follow each copy. Sleepers wake in deadline order, each exactly once.
 */
#define DL_N 24
static int dl_order[DL_N];
static int dl_woken;

static int dl_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    volatile unsigned pat[PAT_WORDS];
    pat_fill(pat, (unsigned)i);
    /* Odd ones arm in reverse deadline order (the heap), even ones in order (the lane). */
    int64_t ms = i % 2 ? 100 - i : 200 + i;
    int r = weft_sleep_until(weft_time(NULL) + ms * 1000000);
    CHECK(pat_ok(pat, (unsigned)i));
    if (r == -ECANCELED)
        return r; /* left sleeping at the end: weft_run() cancels it */
    CHECK_EQ(r, 0);
    dl_order[dl_woken++] = i;
    return 0;
}

static int dl_busy(void *arg)
{
    (void)arg;
    for (int k = 0; k < 50; k++) {
        volatile unsigned pat[PAT_WORDS];
        pat_fill(pat, 7);
        CHECK_EQ(weft_sleep(0.005), 0); /* takes the shared stack from the sleepers */
        CHECK(pat_ok(pat, 7));
    }
    return 0;
}

static int deadlines_main(void *arg)
{
    (void)arg;
    weft_task_t *t[DL_N], *b;
    dl_woken = 0;
    for (int i = 0; i < DL_N; i++)
        CHECK_EQ(spawn_c(&t[i], dl_sleeper, (void *)(intptr_t)i), 0);
    CHECK_EQ(spawn_c(&b, dl_busy, NULL), 0);
    for (int i = 0; i < DL_N; i++) {
        CHECK_EQ(weft_join(t[i]), 0);
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_join(b), 0);
    weft_task_release(b);
    CHECK_EQ(dl_woken, DL_N);
    for (int k = 1; k < DL_N; k++) {
        int a = dl_order[k - 1], c = dl_order[k];
        int64_t da = a % 2 ? 100 - a : 200 + a, dc = c % 2 ? 100 - c : 200 + c;
        CHECK(da < dc);
    }
    /* Left sleeping at the end (frames copied out, timers armed): cancelled and cleaned up. */
    for (int i = 0; i < DL_N; i++)
        CHECK_EQ(spawn_c(NULL, dl_sleeper, (void *)(intptr_t)i), 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    return 0;
}

static void test_compact_deadlines_follow_copies(void)
{
    CHECK_EQ(run_virtual(deadlines_main, NULL), 0);
}

/*
 * A task's name and cancel message share one allocation with a compact task's saved frames:
 * growing the frames' room keeps them, and so does the task's end (the frames go, they stay).
 */
static int deep_sleeper(void *arg)
{
    (void)arg;
    volatile char big[3000];
    memset((char *)big, 5, sizeof(big));
    int r = weft_sleep(1.0);
    CHECK_EQ(big[2999], 5);
    return r;
}

static int small_sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(1.0);
}

static int cold_main(void *arg)
{
    (void)arg;
    const struct weft_task_opts named = {.stack_mode = WEFT_STACK_COMPACT, .name = "frost"};
    weft_task_t *a, *b, *c;
    CHECK_EQ(weft_spawn_opts(&a, small_sleeper, NULL, &named), 0);
    CHECK_EQ(spawn_c(&b, small_sleeper, NULL), 0);
    CHECK_EQ(weft_sleep(0.001), 0); /* a's small frames saved when b took the stack */
    CHECK(weft_task_cancel(a, "first"));
    CHECK(weft_task_cancel(b, "second"));
    CHECK_EQ(weft_join(a), -ECANCELED);
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK_STR(weft_task_name(a), "frost");
    CHECK_STR(weft_task_cancel_message(a), "first");
    CHECK_STR(weft_task_cancel_message(b), "second");
    /* Named, then frames grow past the first image's room. */
    CHECK_EQ(spawn_c(&c, small_sleeper, NULL), 0);
    CHECK_EQ(weft_task_set_name(c, "thaw"), 0);
    weft_task_t *d;
    CHECK_EQ(spawn_c(&d, deep_sleeper, NULL), 0);
    CHECK_EQ(weft_sleep(0.001), 0);
    CHECK(weft_task_cancel(d, "big"));
    CHECK(weft_task_cancel(c, "small"));
    CHECK_EQ(weft_join(d), -ECANCELED);
    CHECK_EQ(weft_join(c), -ECANCELED);
    CHECK_STR(weft_task_name(c), "thaw");
    CHECK_STR(weft_task_cancel_message(c), "small");
    CHECK_STR(weft_task_cancel_message(d), "big");
    weft_task_release(a);
    weft_task_release(b);
    weft_task_release(c);
    weft_task_release(d);
    return 0;
}

static void test_compact_name_and_message_kept(void)
{
    CHECK_EQ(run_virtual(cold_main, NULL), 0);
}

/* ---- randomized: every kind of wait, deadlines and cancels, frames checked after each ---- */

enum { ST_TASKS = 120, ST_STEPS = 40 };
static weft_lock_t st_lock;
static weft_event_t st_event;
static weft_queue_t *st_queue;
static long st_put, st_got, st_ok_steps;
static int st_in_lock;
static uint32_t st_rng = 2463534242u;

static uint32_t st_rand(void)
{
    st_rng ^= st_rng << 13;
    st_rng ^= st_rng >> 17;
    st_rng ^= st_rng << 5;
    return st_rng;
}

static int st_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    volatile unsigned a[PAT_WORDS];
    pat_fill(a, seed);
    for (int step = 0; step < ST_STEPS; step++) {
        int64_t dl = weft_time(NULL) + (int64_t)(st_rand() % 3000000); /* up to 3 ms */
        int r = 0;
        switch (st_rand() % 5) {
        case 0:
            r = weft_sleep((double)(st_rand() % 2000) * 1e-6);
            break;
        case 1:
            r = weft_lock_acquire_dl(&st_lock, dl);
            if (r == 0) {
                CHECK_EQ(st_in_lock, 0);
                st_in_lock = 1;
                int y = weft_yield(); /* hold it across a switch */
                st_in_lock = 0;
                CHECK_EQ(weft_lock_release(&st_lock), 0);
                r = y;
            }
            break;
        case 2: {
            void *item = NULL;
            r = weft_queue_get_dl(st_queue, &item, dl);
            if (r == 0) {
                CHECK((uintptr_t)item == 0x5eed);
                st_got++;
            }
            break;
        }
        case 3:
            if (weft_queue_put_nowait(st_queue, (void *)(uintptr_t)0x5eed) == 0)
                st_put++;
            r = weft_yield();
            break;
        default:
            r = weft_event_wait_dl(&st_event, dl);
            break;
        }
        CHECK(r == 0 || r == -ETIMEDOUT || r == -ECANCELED);
        CHECK(pat_ok(a, seed));
        st_ok_steps++;
    }
    return 0;
}

static int st_chaos(void *arg)
{
    weft_task_t **t = arg;
    for (int i = 0; i < 400; i++) {
        CHECK_EQ(weft_sleep((double)(st_rand() % 500) * 1e-6), 0);
        weft_task_t *victim = t[st_rand() % ST_TASKS];
        if (weft_task_cancel(victim, NULL))
            weft_task_uncancel(victim); /* one -ECANCELED, then it carries on */
        if (st_rand() % 4 == 0) {
            weft_event_set(&st_event);
            weft_event_clear(&st_event);
        }
    }
    return 0;
}

static int stress_main(void *arg)
{
    (void)arg;
    weft_lock_init(&st_lock);
    weft_event_init(&st_event);
    CHECK_EQ(weft_queue_new(&st_queue, 0), 0);
    st_put = st_got = st_ok_steps = 0;
    static weft_task_t *t[ST_TASKS];
    for (unsigned i = 0; i < ST_TASKS; i++) {
        /* One in five on a stack of its own: switches both ways between the two kinds. */
        CHECK_EQ(weft_spawn_opts(&t[i], st_worker, (void *)(uintptr_t)(i * 7919 + 1),
                                 i % 5 == 4 ? &own : &compact),
                 0);
    }
    weft_task_t *chaos;
    CHECK_EQ(weft_spawn_opts(&chaos, st_chaos, t, &compact), 0);
    for (unsigned i = 0; i < ST_TASKS; i++) {
        int r = weft_join(t[i]);
        CHECK(r == 0 || r == -ECANCELED); /* cancelled at its very end, or before it started */
        weft_task_release(t[i]);
    }
    CHECK_EQ(weft_join(chaos), 0);
    weft_task_release(chaos);
    CHECK_EQ(st_put - st_got, (long)weft_queue_qsize(st_queue)); /* nothing lost or doubled */
    fprintf(stderr, "%ld steps, %ld put, %ld got, t=%lld ns\n", st_ok_steps, st_put, st_got,
            (long long)weft_time(NULL));
    CHECK(st_ok_steps > ST_TASKS * ST_STEPS / 2);
    CHECK_EQ(weft_queue_free(st_queue), 0);
    return 0;
}

static void test_compact_random_waits(void)
{
    CHECK_EQ(run_virtual(stress_main, NULL), 0);
}

TEST_MAIN(test_compact_random_waits, test_compact_locals_survive, test_compact_deep_stack,
          test_compact_waits, test_compact_join_gather_wait_for, test_compact_refuses_lent_storage,
          test_compact_loop_default, test_compact_loop_close, test_compact_deadlines_follow_copies,
          test_compact_name_and_message_kept)
