/*
 * The process-wide thread pool shared by every loop (like libuv's): threads start lazily, one at
 * a time as work arrives, up to min(32, cpus + 4); each class of work has its own FIFO and a cap
 * on the threads it may occupy, so slow DNS cannot starve general work nor the reverse. Threads
 * pick the oldest job whose class is under its cap. weft_pool_shutdown() drains and joins them;
 * at process exit idle threads are joined so nothing leaks.
 */
#include "pool/pool.h"

#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_SIZE 1024u

struct worker {
    struct weft__list link; /* in P.workers until joined */
    pthread_t tid;
    bool started; /* reached its loop (pool lock) */
    bool idle;    /* waiting for work (pool lock) */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* idle threads wait here */
    struct weft__list queue[WEFT__POOL_NCLASS];
    unsigned queued[WEFT__POOL_NCLASS];
    unsigned running[WEFT__POOL_NCLASS];
    unsigned cap[WEFT__POOL_NCLASS];
    unsigned size;          /* bound on threads; 0 until first needed */
    unsigned nthreads;      /* alive: started or starting, not exited */
    unsigned nidle;         /* waiting on `cond` */
    unsigned nsignalled;    /* of those, signalled and not yet awake */
    unsigned nstarting;     /* created, not yet at their first pick */
    atomic_uint nspin;      /* looking for work without the lock before they sleep (changed
                             * under the lock; read without it by weft__pool_awake) */
    unsigned spin_max;      /* bound on nspin: 0 with a single CPU */
    atomic_uint avail;      /* queued jobs, mirrored for the spinners (written under the lock) */
    atomic_uint nreturning; /* running jobs that said they are ending (weft__pool_returning) */
    unsigned stopping;      /* weft_pool_shutdown() calls in progress */
    bool exiting;           /* the process is exiting: no new work starts */
    bool atexit_set;
    uint64_t seq;
    struct weft__list workers;
} P = {
    .lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
    .cond = PTHREAD_COND_INITIALIZER,
    .queue = {{&P.queue[0], &P.queue[0]}, {&P.queue[1], &P.queue[1]}},
    .workers = {&P.workers, &P.workers},
};

_Static_assert(WEFT__POOL_NCLASS == 2, "queue initialisers");

static _Thread_local bool in_pool_thread;
static _Thread_local bool returning; /* this thread called weft__pool_returning() */

/* asyncio's default executor size: min(32, cpus + 4), cpus being those this process may use. */
static unsigned default_size(void)
{
    long cpus = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus <= 0)
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus <= 0)
        cpus = 1;
    return cpus + 4 < 32 ? (unsigned)cpus + 4 : 32;
}

/* Set the size (0 = default) and the class caps. Pool lock held. */
static void set_size(unsigned n)
{
    P.size = n != 0 ? n : default_size();
    P.spin_max = default_size() > 5 ? 1 : 0; /* cpus + 4: two CPUs or more */
    P.cap[WEFT__POOL_SLOW] = (P.size + 1) / 2;
    P.cap[WEFT__POOL_WORK] = P.size > 1 ? P.size - 1 : 1;
}

static void ensure_size(void)
{
    if (P.size == 0)
        set_size(0);
}

/* The queued count for the spinners. Pool lock held. */
static void avail_update(void)
{
    atomic_store_explicit(&P.avail, P.queued[0] + P.queued[1], memory_order_relaxed);
}

/* Take the oldest job whose class is under its cap, or NULL. Pool lock held. */
static struct weft__job *pick(void)
{
    struct weft__job *best = NULL;
    for (int c = 0; c < WEFT__POOL_NCLASS; c++) {
        if (weft__list_empty(&P.queue[c]) || P.running[c] >= P.cap[c])
            continue;
        struct weft__job *j = weft__container_of(P.queue[c].next, struct weft__job, link);
        if (best == NULL || j->seq < best->seq)
            best = j;
    }
    if (best != NULL) {
        weft__list_remove(&best->link);
        P.queued[best->cls]--;
        avail_update();
        P.running[best->cls]++;
        best->state = WEFT__J_RUNNING;
    }
    return best;
}

/* Jobs that could start now if a thread were free. Pool lock held. */
static unsigned startable(void)
{
    unsigned n = 0;
    for (int c = 0; c < WEFT__POOL_NCLASS; c++) {
        if (P.running[c] < P.cap[c]) {
            unsigned room = P.cap[c] - P.running[c];
            n += P.queued[c] < room ? P.queued[c] : room;
        }
    }
    return n;
}

static void *worker_main(void *arg);
static void pool_atexit(void);

/* Start one thread. Pool lock held. Returns 0 or a negative errno. */
static int spawn(void)
{
    struct worker *w = weft__calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    if (!P.atexit_set) {
        if (atexit(pool_atexit) != 0) {
            weft__free(w);
            return -ENOMEM;
        }
        P.atexit_set = true;
    }
    /* Pool threads take no signals: they belong to the loops' threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&w->tid, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        weft__free(w);
        return -err;
    }
    weft__list_append(&P.workers, &w->link);
    P.nthreads++;
    P.nstarting++;
    return 0;
}

/*
 * Make sure some thread is on its way for every job that could start now: wake an idle thread
 * or start a new one (one per call; each thread that picks a job calls this again, so a burst
 * fans out). Pool lock held. Returns 0 or the error of starting a thread.
 */
static int kick(void)
{
    if (P.exiting || startable() <= P.nsignalled + P.nstarting + P.nspin +
                                        atomic_load_explicit(&P.nreturning, memory_order_relaxed))
        return 0;
    if (P.nidle > P.nsignalled) {
        P.nsignalled++;
        pthread_cond_signal(&P.cond);
        return 0;
    }
    if (P.nthreads < P.size)
        return spawn();
    return 0;
}

/* Hand a finished job's result to its loop through the handle made with the job (no memory
 * needed now, so it cannot fail). No lock held. */
static void post(struct weft__job *j)
{
    weft__post_threadsafe(j->loop, &j->done);
}

static void run_job(struct weft__job *j)
{
    int r = j->fn(j->arg);
    pthread_mutex_lock(&P.lock);
    P.running[j->cls]--;
    if (j->detached) {
        if (r == WEFT__POOL_AGAIN && !P.exiting) {
            /* Behind what was queued meanwhile: this thread picks the oldest job next. */
            j->seq = P.seq++;
            j->state = WEFT__J_QUEUED;
            weft__list_append(&P.queue[j->cls], &j->link);
            P.queued[j->cls]++;
            avail_update();
            pthread_mutex_unlock(&P.lock);
            return;
        }
        pthread_mutex_unlock(&P.lock);
        j->drop(j->arg, r); /* the last use of j: its owner's again */
        return;
    }
    if (j->state == WEFT__J_ABANDONED) {
        pthread_mutex_unlock(&P.lock);
        if (j->drop != NULL)
            j->drop(j->arg, r);
        weft__free(j);
        return;
    }
    j->result = r;
    j->state = WEFT__J_POSTED;
    pthread_mutex_unlock(&P.lock);
    post(j);
}

/*
 * A thread that found no work looks for more, without the lock, for up to POOL_SPIN_NS before
 * it sleeps: a loop that hands work over at a steady rate (the file engine's reads) then finds
 * a thread awake, and neither side pays a futex call and a wake-up. At most spin_max threads
 * spin (none on one CPU); kick() counts them as on their way. An idle pool spins once, then
 * sleeps.
 */
#define POOL_SPIN_NS 50000

/* A plain loop on the flag and the clock: PAUSE, in a guest, can exit to the hypervisor. */
static void spin_for_work(void)
{
    int64_t end = weft__clock() + POOL_SPIN_NS;
    while (atomic_load_explicit(&P.avail, memory_order_relaxed) == 0 && weft__clock() < end)
        ;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    in_pool_thread = true;
    pthread_setname_np(pthread_self(), "weft-pool");
    pthread_mutex_lock(&P.lock);
    P.nstarting--;
    w->started = true;
    bool spun = false;
    while (!P.exiting) {
        if (returning) {
            returning = false;
            atomic_fetch_sub_explicit(&P.nreturning, 1, memory_order_relaxed);
        }
        struct weft__job *j = pick();
        if (j == NULL) {
            if (P.stopping > 0)
                break;
            if (!spun && P.nspin < P.spin_max) {
                spun = true;
                atomic_fetch_add_explicit(&P.nspin, 1, memory_order_relaxed);
                w->idle = true; /* the exit joins it: it stops within POOL_SPIN_NS */
                pthread_mutex_unlock(&P.lock);
                spin_for_work();
                pthread_mutex_lock(&P.lock);
                w->idle = false;
                atomic_fetch_sub_explicit(&P.nspin, 1, memory_order_relaxed);
                continue;
            }
            w->idle = true;
            P.nidle++;
            pthread_cond_wait(&P.cond, &P.lock);
            P.nidle--;
            w->idle = false;
            if (P.nsignalled > 0)
                P.nsignalled--;
            continue;
        }
        spun = false;
        kick();
        pthread_mutex_unlock(&P.lock);
        run_job(j);
        pthread_mutex_lock(&P.lock);
    }
    if (returning) {
        returning = false;
        atomic_fetch_sub_explicit(&P.nreturning, 1, memory_order_relaxed);
    }
    P.nthreads--;
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

bool weft__pool_awake(void)
{
    return atomic_load_explicit(&P.nspin, memory_order_relaxed) +
               atomic_load_explicit(&P.nreturning, memory_order_relaxed) >
           atomic_load_explicit(&P.avail, memory_order_relaxed);
}

bool weft__pool_others_queued(void)
{
    return atomic_load_explicit(&P.avail, memory_order_relaxed) != 0;
}

void weft__pool_returning(void)
{
    if (in_pool_thread && !returning) {
        returning = true;
        atomic_fetch_add_explicit(&P.nreturning, 1, memory_order_relaxed);
    }
}

int weft__pool_submit(struct weft__job *j)
{
    pthread_mutex_lock(&P.lock);
    if (P.exiting) {
        pthread_mutex_unlock(&P.lock);
        return -ESHUTDOWN;
    }
    ensure_size();
    j->seq = P.seq++;
    j->state = WEFT__J_QUEUED;
    weft__list_append(&P.queue[j->cls], &j->link);
    P.queued[j->cls]++;
    avail_update();
    int err = kick();
    if (err < 0 && P.nthreads == 0) {
        weft__list_remove(&j->link);
        P.queued[j->cls]--;
        avail_update();
        pthread_mutex_unlock(&P.lock);
        return err;
    }
    pthread_mutex_unlock(&P.lock);
    return 0;
}

int weft__pool_leave(struct weft__job *j, bool abandon)
{
    pthread_mutex_lock(&P.lock);
    int s = j->state;
    if (s == WEFT__J_QUEUED) {
        weft__list_remove(&j->link);
        P.queued[j->cls]--;
        avail_update();
    } else if (s == WEFT__J_RUNNING && abandon) {
        j->state = WEFT__J_ABANDONED;
    }
    pthread_mutex_unlock(&P.lock);
    return s;
}

void weft__pool_stats(struct weft__pool_stats *s)
{
    pthread_mutex_lock(&P.lock);
    ensure_size();
    s->size = P.size;
    s->threads = P.nthreads;
    s->idle = P.nidle;
    for (int c = 0; c < WEFT__POOL_NCLASS; c++) {
        s->cap[c] = P.cap[c];
        s->running[c] = P.running[c];
        s->queued[c] = P.queued[c];
    }
    pthread_mutex_unlock(&P.lock);
}

/* ---- size and shutdown ---- */

int weft_pool_set_size(unsigned threads)
{
    if (threads > POOL_MAX_SIZE)
        return -EINVAL;
    pthread_mutex_lock(&P.lock);
    int err = 0;
    if (P.nthreads > 0 || !weft__list_empty(&P.workers))
        err = -EBUSY;
    else
        set_size(threads);
    pthread_mutex_unlock(&P.lock);
    return err;
}

unsigned weft_pool_size(void)
{
    pthread_mutex_lock(&P.lock);
    ensure_size();
    unsigned n = P.size;
    pthread_mutex_unlock(&P.lock);
    return n;
}

int weft_pool_shutdown(void)
{
    if (in_pool_thread)
        return -EDEADLK;
    if (weft_loop_is_running(weft_loop_current()))
        return -EBUSY;
    pthread_mutex_lock(&P.lock);
    P.stopping++;
    pthread_cond_broadcast(&P.cond);
    while (!weft__list_empty(&P.workers)) {
        struct worker *w = weft__container_of(P.workers.next, struct worker, link);
        weft__list_remove(&w->link);
        pthread_mutex_unlock(&P.lock);
        pthread_join(w->tid, NULL);
        weft__free(w);
        pthread_mutex_lock(&P.lock);
    }
    P.stopping--;
    pthread_mutex_unlock(&P.lock);
    return 0;
}

/*
 * Process exit: no new work starts; threads waiting for work (or not started yet) are joined.
 * A thread still running a job is left alone: exit never waits for user code (which may wait
 * for something the exiting program will never do).
 */
static void pool_atexit(void)
{
    struct weft__list gone;
    weft__list_init(&gone);
    pthread_mutex_lock(&P.lock);
    P.exiting = true;
    pthread_cond_broadcast(&P.cond);
    struct weft__list *n = P.workers.next;
    while (n != &P.workers) {
        struct weft__list *next = n->next;
        struct worker *w = weft__container_of(n, struct worker, link);
        if (w->idle || !w->started) {
            weft__list_remove(&w->link);
            weft__list_append(&gone, &w->link);
        }
        n = next;
    }
    pthread_mutex_unlock(&P.lock);
    while (!weft__list_empty(&gone)) {
        struct worker *w = weft__container_of(gone.next, struct worker, link);
        weft__list_remove(&w->link);
        pthread_join(w->tid, NULL);
        weft__free(w);
    }
}
