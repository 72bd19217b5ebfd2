/*
 * Randomised stress of Lock, Semaphore, Condition and the three queues on the virtual clock, with
 * a fixed-seed PRNG: many tasks, random naps, deadlines and cancellations (a chaos task). Checks
 * that no item is lost, duplicated or reordered (against a shadow model updated at the same
 * instant as the queue), that locks and semaphores are exclusive and strictly FIFO, and that no
 * waiter is left stuck: at odd microseconds (when every other task is parked, since all other
 * timers fall on even ones) nobody may be parked on a primitive that could serve them.
 */
#include "test.h"
#include "sync/sync.h"

#include <stdint.h>

#define US 1000LL

static uint64_t rng;

static uint64_t rnd(void)
{
    rng += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd_below(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

/* The next even microsecond at least `us_max` ... 0 us from now (0: one trip through the loop). */
static int64_t even_time(int us_max)
{
    int64_t now = weft_time(NULL);
    int64_t us = now / US + rnd_below(us_max + 1);
    us += us & 1;
    return us * US;
}

static int nap(int us_max)
{
    if (rnd_below(4) == 0)
        return weft_yield();
    return weft_sleep_until(even_time(us_max));
}

/* A random deadline for a blocking call: none, or an even microsecond soon. */
static int64_t deadline(void)
{
    if (rnd_below(3) == 0)
        return WEFT_NO_DEADLINE;
    return even_time(30);
}

/* For consumers: mostly none, so that they sit parked and a lost wake-up shows. */
static int64_t long_deadline(void)
{
    if (rnd_below(4) != 0)
        return WEFT_NO_DEADLINE;
    return even_time(60);
}

/* A task that got -ECANCELED carries on (asyncio: catch CancelledError and uncancel()). */
static void absorb(int r)
{
    weft_task_t *self = weft_current_task();
    if (r == -ECANCELED) {
        while (weft_task_cancelling(self) > 0)
            weft_task_uncancel(self);
    }
}

static int parked_on(struct weft__list *l)
{
    int n = 0;
    if (weft__wl_empty(l))
        return 0;
    for (struct weft__list *p = l->next; p != l; p = p->next)
        n += weft__waiter_parked(weft__waiter_of(p));
    return n;
}

/* ---- chaos and checker ---- */

#define MAXT 16

static weft_task_t *victims[MAXT];
static int nvictims;
static int stop_chaos;
static int ncancels;
static int nready_hits;
static void (*check_fn)(void);
static int nchecks;
static int prod_nap, cons_nap; /* producers or consumers are the slow side, per run */

static void pick_speeds(void)
{
    int slow = rnd_below(2);
    prod_nap = slow ? 24 : 4;
    cons_nap = slow ? 4 : 24;
}

static int chaos(void *arg)
{
    (void)arg;
    while (!stop_chaos) {
        if (weft_sleep_until(even_time(12)) < 0)
            return 0;
        /* Half the time prefer a task woken in this iteration that has not run yet: the
         * woken-then-cancelled race every primitive must survive. */
        weft_task_t *v = victims[rnd_below(nvictims)];
        if (rnd_below(2) == 0) {
            for (int i = 0, at = rnd_below(nvictims); i < nvictims; i++) {
                weft_task_t *w = victims[(at + i) % nvictims];
                if (w->state == WEFT__T_READY) {
                    v = w;
                    nready_hits++;
                    break;
                }
            }
        }
        if (!weft_task_done(v) && weft_task_cancel(v, "chaos"))
            ncancels++;
    }
    return 0;
}

static int checker(void *arg)
{
    (void)arg;
    while (!stop_chaos) {
        int64_t us = weft_time(NULL) / US + 1 + rnd_below(20);
        us |= 1; /* odd: every other task is parked or asleep now */
        if (weft_sleep_until(us * US) < 0)
            return 0;
        check_fn();
        nchecks++;
    }
    return 0;
}

static void start_helpers(weft_task_t **c, weft_task_t **k)
{
    stop_chaos = 0;
    pick_speeds();
    ncancels = 0;
    nready_hits = 0;
    nchecks = 0;
    CHECK_EQ(weft_spawn(c, chaos, NULL), 0);
    CHECK_EQ(weft_spawn(k, checker, NULL), 0);
}

/* Join every task with a generous virtual deadline: a stuck waiter fails here. */
static void join_all(weft_task_t **t, int n)
{
    for (int i = 0; i < n; i++) {
        int r = weft_join_dl(t[i], weft_deadline_in(10.0));
        CHECK(r != -ETIMEDOUT);
        CHECK(weft_task_done(t[i]));
    }
}

static void stop_helpers(weft_task_t *c, weft_task_t *k)
{
    stop_chaos = 1;
    weft_task_cancel(c, NULL);
    weft_task_cancel(k, NULL);
    weft_join(c);
    weft_join(k);
    weft_task_release(c);
    weft_task_release(k);
    CHECK(ncancels > 10);
    CHECK(nready_hits > 5);
    CHECK(nchecks > 10);
    if (getenv("STRESS_VERBOSE"))
        fprintf(stderr, "cancels %d (woken-not-run %d), checks %d\n", ncancels, nready_hits,
                nchecks);
}

/* ---- Lock and Semaphore: exclusion, FIFO tickets ---- */

static weft_lock_t lock;
static weft_sem_t sem;
static int use_sem;
static int holders, max_holders;
static uint64_t next_ticket, last_ticket;
static int acquired, failed;

static int locker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 150; i++) {
        uint64_t ticket = ++next_ticket;
        int r = use_sem ? weft_sem_acquire_dl(&sem, deadline())
                        : weft_lock_acquire_dl(&lock, deadline());
        if (r < 0) {
            CHECK(r == -ECANCELED || r == -ETIMEDOUT);
            absorb(r);
            failed++;
        } else {
            CHECK(ticket > last_ticket); /* served strictly in arrival order */
            last_ticket = ticket;
            acquired++;
            holders++;
            CHECK(holders <= max_holders);
            absorb(nap(6)); /* may be cancelled while holding */
            holders--;
            CHECK_EQ(use_sem ? weft_sem_release(&sem) : weft_lock_release(&lock), 0);
        }
        absorb(nap(8));
    }
    return 0;
}

static void check_lock(void)
{
    struct weft__lock *l = (struct weft__lock *)&lock;
    CHECK(l->state != WEFT__LOCK_HANDOFF);
    if (l->state == WEFT__LOCK_FREE)
        CHECK_EQ(parked_on(&l->waiters), 0);
}

static void check_sem(void)
{
    struct weft__sem *s = (struct weft__sem *)&sem;
    CHECK_EQ(s->nwoken, 0);
    CHECK(s->value >= 0);
    if (s->value > 0)
        CHECK_EQ(parked_on(&s->waiters), 0);
}

static int lock_stress_main(void *arg)
{
    use_sem = (int)(long)arg;
    weft_lock_init(&lock);
    CHECK_EQ(weft_sem_init_bounded(&sem, 3), 0);
    max_holders = use_sem ? 3 : 1;
    holders = acquired = failed = 0;
    next_ticket = last_ticket = 0;
    check_fn = use_sem ? check_sem : check_lock;
    nvictims = 8;
    for (int i = 0; i < nvictims; i++)
        CHECK_EQ(weft_spawn(&victims[i], locker, NULL), 0);
    weft_task_t *c, *k;
    start_helpers(&c, &k);
    join_all(victims, nvictims);
    stop_helpers(c, k);
    for (int i = 0; i < nvictims; i++) {
        CHECK_EQ(weft_task_result(victims[i]), 0);
        weft_task_release(victims[i]);
    }
    CHECK_EQ(acquired + failed, 8 * 150);
    CHECK(acquired > 100 && failed > 50);
    CHECK_EQ(holders, 0);
    if (use_sem) {
        CHECK_EQ(weft_sem_value(&sem), 3);
        CHECK(!weft_sem_locked(&sem));
    } else {
        CHECK(!weft_lock_locked(&lock));
    }
    return 0;
}

static void test_lock_stress(void)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        rng = seed;
        CHECK_EQ(run_virtual(lock_stress_main, (void *)0L), 0);
    }
}

static void test_semaphore_stress(void)
{
    for (uint64_t seed = 101; seed <= 108; seed++) {
        rng = seed;
        CHECK_EQ(run_virtual(lock_stress_main, (void *)1L), 0);
    }
}

/* ---- Condition: every produced unit is consumed, no consumer sleeps through one ---- */

static weft_cond_t cond;
static int units, produced, consumed, producers_done;

static bool have_unit(void *arg)
{
    (void)arg;
    return units > 0 || producers_done;
}

static int cond_producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100;) {
        int r = weft_cond_acquire_dl(&cond, deadline());
        if (r < 0) {
            absorb(r);
            continue;
        }
        units++;
        produced++;
        i++;
        CHECK(weft_cond_notify(&cond, 1) >= 0);
        CHECK_EQ(weft_cond_release(&cond), 0);
        absorb(nap(prod_nap));
    }
    return 0;
}

static int cond_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        int r = weft_cond_acquire_dl(&cond, deadline());
        if (r < 0) {
            absorb(r);
            continue;
        }
        r = weft_cond_wait_for_dl(&cond, have_unit, NULL, long_deadline());
        CHECK(weft_cond_locked(&cond)); /* held on every way out */
        if (r == 0 && units > 0) {
            units--;
            consumed++;
        }
        bool done = producers_done && units == 0;
        CHECK_EQ(weft_cond_release(&cond), 0);
        absorb(r);
        if (done)
            return 0;
        absorb(nap(cons_nap));
    }
}

static void check_cond(void)
{
    struct weft__cond *c = (struct weft__cond *)&cond;
    CHECK(c->own.state != WEFT__LOCK_HANDOFF);
    if (c->own.state == WEFT__LOCK_FREE)
        CHECK_EQ(parked_on(&c->own.waiters), 0);
    if (units > 0)
        CHECK_EQ(parked_on(&c->waiters), 0); /* a notification was lost */
}

static int cond_stress_main(void *arg)
{
    (void)arg;
    weft_cond_init(&cond, NULL);
    units = produced = consumed = producers_done = 0;
    check_fn = check_cond;
    nvictims = 8;
    for (int i = 0; i < nvictims; i++)
        CHECK_EQ(weft_spawn(&victims[i], i < 4 ? cond_producer : cond_consumer, NULL), 0);
    weft_task_t *c, *k;
    start_helpers(&c, &k);
    join_all(victims, 4);
    CHECK_EQ(weft_cond_acquire(&cond), 0);
    producers_done = 1;
    CHECK(weft_cond_notify_all(&cond) >= 0);
    CHECK_EQ(weft_cond_release(&cond), 0);
    join_all(victims + 4, 4);
    stop_helpers(c, k);
    for (int i = 0; i < nvictims; i++)
        weft_task_release(victims[i]);
    CHECK_EQ(produced, 400);
    CHECK_EQ(consumed, 400);
    CHECK_EQ(units, 0);
    CHECK(!weft_cond_locked(&cond));
    return 0;
}

static void test_condition_stress(void)
{
    for (uint64_t seed = 201; seed <= 208; seed++) {
        rng = seed;
        CHECK_EQ(run_virtual(cond_stress_main, NULL), 0);
    }
}

/* ---- Queues: a shadow model checks every item leaving ---- */

#define NPROD 4
#define NCONS 4
#define PER_PRODUCER 250
#define MAXITEMS (NPROD * PER_PRODUCER)

static weft_queue_t *q;
static int qkind; /* 0 FIFO, 1 LIFO, 2 priority */

/* item = priority << 16 | producer << 12 | sequence (priority only matters for kind 2) */
static int item_prio(intptr_t item)
{
    return (int)(item >> 16);
}

static int prio_cmp(const void *a, const void *b, void *arg)
{
    (void)arg;
    int x = item_prio((intptr_t)a), y = item_prio((intptr_t)b);
    return x < y ? -1 : x > y;
}

static intptr_t model[MAXITEMS];
static int model_n;
static int seen[MAXITEMS];
static int put_ok, got_ok;

static void model_put(intptr_t item)
{
    model[model_n++] = item; /* in put order */
}

/* Remove and return what the queue must hand out next. */
static intptr_t model_get(void)
{
    int at;
    if (qkind == 0) {
        at = 0;
    } else if (qkind == 1) {
        at = model_n - 1;
    } else {
        at = 0; /* the smallest priority, earliest put among equals */
        for (int i = 1; i < model_n; i++)
            if (item_prio(model[i]) < item_prio(model[at]))
                at = i;
    }
    intptr_t item = model[at];
    for (int i = at; i + 1 < model_n; i++)
        model[i] = model[i + 1];
    model_n--;
    return item;
}

static int producer(void *arg)
{
    int p = (int)(long)arg;
    for (int i = 0; i < PER_PRODUCER;) {
        intptr_t item = (intptr_t)rnd_below(4) << 16 | (intptr_t)p << 12 | i;
        int r;
        if (rnd_below(5) == 0) {
            r = weft_queue_put_nowait(q, (void *)item);
            CHECK(r == 0 || r == -EAGAIN);
        } else {
            r = weft_queue_put_dl(q, (void *)item, deadline());
            CHECK(r == 0 || r == -ECANCELED || r == -ETIMEDOUT);
        }
        if (r == 0) {
            model_put(item);
            put_ok++;
            i++;
        }
        absorb(r);
        absorb(nap(prod_nap));
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (;;) {
        void *item;
        int r;
        if (rnd_below(5) == 0) {
            r = weft_queue_get_nowait(q, &item);
            CHECK(r == 0 || r == -EAGAIN || r == -ESHUTDOWN);
        } else {
            r = weft_queue_get_dl(q, &item, long_deadline());
            CHECK(r == 0 || r == -ECANCELED || r == -ETIMEDOUT || r == -ESHUTDOWN);
        }
        if (r == -ESHUTDOWN)
            return 0;
        if (r == 0) {
            intptr_t want = model_get();
            CHECK_EQ((intptr_t)item, want); /* not lost, not reordered */
            int id = (int)(((intptr_t)item >> 12 & 0xf) * PER_PRODUCER + ((intptr_t)item & 0xfff));
            CHECK(!seen[id]); /* not duplicated */
            seen[id] = 1;
            got_ok++;
            CHECK_EQ(weft_queue_task_done(q), 0);
        }
        absorb(r);
        absorb(nap(cons_nap));
    }
}

static void check_queue(void)
{
    CHECK_EQ((int)weft_queue_qsize(q), model_n);
    if (q->count > 0)
        CHECK_EQ(parked_on(&q->getters), 0);
    if (!weft_queue_full(q))
        CHECK_EQ(parked_on(&q->putters), 0);
    if (q->unfinished == 0)
        CHECK_EQ(parked_on(&q->joiners), 0);
}

static int queue_stress_main(void *arg)
{
    (void)arg;
    size_t maxsize = (size_t)rnd_below(4); /* 0 = unbounded */
    if (qkind == 0)
        CHECK_EQ(weft_queue_new(&q, maxsize), 0);
    else if (qkind == 1)
        CHECK_EQ(weft_queue_new_lifo(&q, maxsize), 0);
    else
        CHECK_EQ(weft_queue_new_priority(&q, maxsize, prio_cmp, NULL), 0);
    model_n = put_ok = got_ok = 0;
    memset(seen, 0, sizeof(seen));
    check_fn = check_queue;
    nvictims = NPROD + NCONS;
    for (int i = 0; i < nvictims; i++)
        CHECK_EQ(weft_spawn(&victims[i], i < NPROD ? producer : consumer, (void *)(long)i), 0);
    weft_task_t *c, *k;
    start_helpers(&c, &k);
    join_all(victims, NPROD);
    /* Everything put gets processed: join returns (retrying through chaos on us? no: we are
     * not a victim), then shut down so that the consumers leave. */
    CHECK_EQ(weft_queue_join_dl(q, weft_deadline_in(10.0)), 0);
    CHECK_EQ(got_ok, put_ok);
    CHECK_EQ(weft_queue_shutdown(q, false), 0);
    join_all(victims + NPROD, NCONS);
    stop_helpers(c, k);
    for (int i = 0; i < nvictims; i++) {
        CHECK_EQ(weft_task_result(victims[i]), 0);
        weft_task_release(victims[i]);
    }
    CHECK_EQ(put_ok, MAXITEMS);
    CHECK_EQ(got_ok, MAXITEMS);
    CHECK_EQ(model_n, 0);
    for (int i = 0; i < MAXITEMS; i++)
        CHECK(seen[i]);
    CHECK_EQ(weft_queue_unfinished(q), 0);
    CHECK_EQ(weft_queue_free(q), 0);
    return 0;
}

static void queue_stress(int kind, uint64_t seed0)
{
    qkind = kind;
    for (uint64_t seed = seed0; seed < seed0 + 6; seed++) {
        rng = seed;
        CHECK_EQ(run_virtual(queue_stress_main, NULL), 0);
    }
}

static void test_queue_stress(void)
{
    queue_stress(0, 301);
}

static void test_lifo_queue_stress(void)
{
    queue_stress(1, 401);
}

static void test_priority_queue_stress(void)
{
    queue_stress(2, 501);
}

TEST_MAIN(test_lock_stress, test_semaphore_stress, test_condition_stress, test_queue_stress,
          test_lifo_queue_stress, test_priority_queue_stress)
