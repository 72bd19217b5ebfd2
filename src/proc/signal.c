/*
 * Signals (asyncio's add_signal_handler): a loop's handler runs as an ordinary loop callback,
 * never inside the signal handler. weft installs one sigaction handler per signal for the whole
 * process while any loop wants the signal; it only sets the signal's bit in each such loop's
 * `sigpending`, sets `ts_pending` and wakes the loop through its cross-thread wake-up (an eventfd
 * write): async-signal-safe operations only. The loop's cross-thread drain then queues one
 * callback that runs the handlers and wakes the tasks waiting for the signals.
 * signalfd is not used: it needs the signal blocked in every thread, which a library cannot
 * promise. The disposition found when the first loop took a signal is restored when the last one
 * gives it up. For SIGCHLD the handler found is called after weft's (chained, never clobbered).
 */

#include "internal.h"

#include <sched.h>
#include <signal.h>
#include <string.h>

#define MAX_LOOPS 64 /* loops handling signals at once */

_Static_assert(NSIG - 1 <= 64, "one bit per signal in an unsigned long long");

/* A task waiting for a signal (on its own stack). */
struct sigwaiter {
    struct weft__list link;
    weft_task_t *task;
};

/* One signal on one loop. */
struct sigent {
    weft_signal_fn fn; /* the application's handler (or weft_run's Ctrl+C), or NULL */
    void *arg;
    weft_signal_fn ifn; /* weft's own (SIGCHLD reaping), or NULL */
    void *iarg;
    struct weft__list waiters; /* struct sigwaiter */
    uint32_t nwait;
};

struct weft__sigs {
    atomic_ullong wanted;  /* signals this loop catches, bit sig - 1 (read by the handler) */
    struct weft__handle h; /* the dispatch callback, queued at most once */
    uint8_t queued;
    int slot; /* index in `loops`, or -1 */
    struct sigent ent[NSIG];
};

/* The process-wide side, changed under `glock`, read by the handler without it. */
static pthread_mutex_t glock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction gold[NSIG]; /* the disposition before weft's handler */
static int gusers[NSIG];            /* loops that want the signal */
static weft_loop_t *_Atomic loops[MAX_LOOPS];
static atomic_int gactive;       /* handlers reading `loops` now */
static atomic_ullong gsecond;    /* signals whose second delivery takes the default action */
static atomic_ullong gseen;      /* of those, the ones delivered once already */

static inline unsigned long long bit_of(int sig)
{
    return 1ull << (sig - 1);
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    int saved = errno;
    unsigned long long bit = bit_of(sig);
    if ((atomic_load(&gsecond) & bit) && (atomic_fetch_or(&gseen, bit) & bit)) {
        /* weft_run's Ctrl+C, the second time: the loop may be stuck, so act here. */
        signal(sig, SIG_DFL);
        raise(sig); /* blocked while this handler runs: delivered when it returns */
        errno = saved;
        return;
    }
    atomic_fetch_add(&gactive, 1);
    for (int i = 0; i < MAX_LOOPS; i++) {
        weft_loop_t *l = atomic_load(&loops[i]);
        if (l == NULL || !(atomic_load(&l->sigs->wanted) & bit))
            continue;
        atomic_fetch_or(&l->sigpending, bit);
        atomic_store(&l->ts_pending, 1);
        if (atomic_load(&l->polling))
            weft__loop_wake(l); /* an eventfd write */
    }
    atomic_fetch_sub(&gactive, 1);
    if (sig == SIGCHLD) {
        const struct sigaction *o = &gold[sig];
        if (o->sa_flags & SA_SIGINFO) {
            if (o->sa_sigaction != NULL)
                o->sa_sigaction(sig, info, uc);
        } else if (o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN && o->sa_handler) {
            o->sa_handler(sig);
        }
    }
    errno = saved;
}

static bool sig_valid(int sig)
{
    return sig >= 1 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV &&
           sig != SIGBUS && sig != SIGFPE && sig != SIGILL;
}

/* The loop's signal state, made on first use. */
static struct weft__sigs *sigs_of(weft_loop_t *l)
{
    if (l->sigs != NULL)
        return l->sigs;
    struct weft__sigs *ss = weft__calloc(1, sizeof(*ss));
    if (ss == NULL)
        return NULL;
    atomic_init(&ss->wanted, 0);
    ss->slot = -1;
    for (int i = 0; i < NSIG; i++)
        weft__list_init(&ss->ent[i].waiters);
    l->sigs = ss;
    return ss;
}

/* Take a slot in `loops` (the handler then sees this loop). Under glock. */
static int slot_take(weft_loop_t *l)
{
    for (int i = 0; i < MAX_LOOPS; i++) {
        if (atomic_load(&loops[i]) == NULL) {
            atomic_store(&loops[i], l);
            l->sigs->slot = i;
            return 0;
        }
    }
    return -EBUSY;
}

/* Leave `loops` and wait until no handler can still be reading this loop. Under glock. */
static void slot_drop(weft_loop_t *l)
{
    if (l->sigs->slot < 0)
        return;
    atomic_store(&loops[l->sigs->slot], NULL);
    l->sigs->slot = -1;
    while (atomic_load(&gactive) != 0)
        sched_yield();
}

/* Start catching `sig` for loop `l` (its bit is not set yet). Under glock. */
static int catch_sig(weft_loop_t *l, int sig)
{
    struct weft__sigs *ss = l->sigs;
    if (ss->slot < 0) {
        int err = slot_take(l);
        if (err < 0)
            return err;
    }
    atomic_fetch_or(&ss->wanted, bit_of(sig));
    if (gusers[sig]++ > 0)
        return 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, NULL, &old) < 0)
        goto fail;
    if (sig == SIGCHLD)
        sa.sa_flags |= old.sa_flags & SA_NOCLDSTOP;
    gold[sig] = old; /* before the handler can run and chain to it */
    if (sigaction(sig, &sa, NULL) == 0)
        return 0;
fail:;
    int err = -errno;
    gusers[sig]--;
    atomic_fetch_and(&ss->wanted, ~bit_of(sig));
    if (atomic_load(&ss->wanted) == 0)
        slot_drop(l);
    return err;
}

/* Stop catching `sig` for `l`. Under glock. */
static void release_sig(weft_loop_t *l, int sig)
{
    struct weft__sigs *ss = l->sigs;
    atomic_fetch_and(&ss->wanted, ~bit_of(sig));
    if (--gusers[sig] == 0)
        sigaction(sig, &gold[sig], NULL);
    if (atomic_load(&ss->wanted) == 0)
        slot_drop(l);
}

/* Catch `sig` exactly while something on `l` needs it. */
static int update(weft_loop_t *l, int sig)
{
    struct weft__sigs *ss = l->sigs;
    struct sigent *e = &ss->ent[sig];
    bool want = e->fn != NULL || e->ifn != NULL || e->nwait > 0;
    bool have = (atomic_load(&ss->wanted) & bit_of(sig)) != 0;
    if (want == have)
        return 0;
    pthread_mutex_lock(&glock);
    int err = 0;
    if (want)
        err = catch_sig(l, sig);
    else
        release_sig(l, sig);
    pthread_mutex_unlock(&glock);
    return err;
}

static void set_second(int sig, bool on)
{
    if (on) {
        atomic_fetch_and(&gseen, ~bit_of(sig));
        atomic_fetch_or(&gsecond, bit_of(sig));
    } else {
        atomic_fetch_and(&gsecond, ~bit_of(sig));
    }
}

/* Set the application-level handler of `sig` on `l` (fn NULL: remove it). */
static int set_handler(weft_loop_t *l, int sig, weft_signal_fn fn, void *arg, bool second_kills)
{
    if (l == NULL || !sig_valid(sig))
        return -EINVAL;
    if (weft__tls_loop != l || l->closed)
        return -EINVAL;
    struct weft__sigs *ss = sigs_of(l);
    if (ss == NULL)
        return -ENOMEM;
    struct sigent *e = &ss->ent[sig];
    bool had = e->fn != NULL;
    weft_signal_fn ofn = e->fn;
    void *oarg = e->arg;
    e->fn = fn;
    e->arg = arg;
    int err = update(l, sig);
    if (err < 0) {
        e->fn = ofn;
        e->arg = oarg;
        return err;
    }
    set_second(sig, fn != NULL && second_kills);
    return had ? 1 : 0;
}

int weft_signal_add(weft_loop_t *loop, int sig, weft_signal_fn fn, void *arg)
{
    if (fn == NULL)
        return -EINVAL;
    int r = set_handler(loop, sig, fn, arg, false);
    return r < 0 ? r : 0;
}

int weft_signal_remove(weft_loop_t *loop, int sig)
{
    if (loop == NULL || !sig_valid(sig))
        return -EINVAL;
    if (loop->sigs == NULL || loop->sigs->ent[sig].fn == NULL)
        return 0;
    return set_handler(loop, sig, NULL, NULL, false);
}

int weft__signal_internal(weft_loop_t *loop, int sig, weft_signal_fn fn, void *arg,
                          bool second_kills)
{
    if (second_kills) {
        int r = set_handler(loop, sig, fn, arg, true);
        return r < 0 ? r : 0;
    }
    struct weft__sigs *ss = sigs_of(loop);
    if (ss == NULL)
        return -ENOMEM;
    struct sigent *e = &ss->ent[sig];
    e->ifn = fn;
    e->iarg = arg;
    int err = update(loop, sig);
    if (err < 0)
        e->ifn = NULL;
    return err;
}

int weft_signal_wait_dl(int sig, int64_t deadline)
{
    if (!sig_valid(sig))
        return -EINVAL;
    int err;
    weft_task_t *t = weft__task_check_current(&err);
    if (t == NULL)
        return err;
    weft_loop_t *l = t->fut.loop;
    struct weft__sigs *ss = sigs_of(l);
    if (ss == NULL)
        return -ENOMEM;
    struct sigent *e = &ss->ent[sig];
    e->nwait++;
    err = update(l, sig);
    if (err < 0) {
        e->nwait--;
        return err;
    }
    struct sigwaiter w = {.task = t};
    weft__list_append(&e->waiters, &w.link);
    int r = weft__park(t, WEFT__P_PRIM, e, &w.link, deadline);
    e->nwait--;
    update(l, sig);
    return r;
}

int weft_signal_wait(int sig)
{
    return weft_signal_wait_dl(sig, WEFT_NO_DEADLINE);
}

/* The dispatch callback: run the handlers of the signals that came, wake their waiters. */
static void run_signals(void *arg)
{
    weft_loop_t *l = arg;
    struct weft__sigs *ss = l->sigs;
    ss->queued = 0;
    unsigned long long bits = atomic_exchange(&l->sigpending, 0);
    while (bits != 0) {
        int sig = __builtin_ctzll(bits) + 1;
        bits &= bits - 1;
        struct sigent *e = &ss->ent[sig];
        while (!weft__list_empty(&e->waiters)) {
            struct sigwaiter *w = weft__container_of(e->waiters.next, struct sigwaiter, link);
            weft__list_remove(&w->link);
            weft__wake(w->task, sig);
        }
        if (e->ifn != NULL)
            e->ifn(sig, e->iarg);
        if (e->fn != NULL)
            e->fn(sig, e->arg);
    }
}

void weft__signal_dispatch(weft_loop_t *l)
{
    struct weft__sigs *ss = l->sigs;
    if (ss == NULL) {
        atomic_store(&l->sigpending, 0);
        return;
    }
    if (!ss->queued) {
        ss->queued = 1;
        ss->h.kind = WEFT__RN_HANDLE;
        ss->h.heap = WEFT__H_NONE;
        ss->h.cb = run_signals;
        ss->h.arg = l;
        weft__enqueue_handle(l, &ss->h);
    }
}

void weft__signal_loop_fini(weft_loop_t *l)
{
    struct weft__sigs *ss = l->sigs;
    if (ss == NULL)
        return;
    pthread_mutex_lock(&glock);
    unsigned long long wanted = atomic_load(&ss->wanted);
    while (wanted != 0) {
        int sig = __builtin_ctzll(wanted) + 1;
        wanted &= wanted - 1;
        if (ss->ent[sig].fn != NULL)
            set_second(sig, false);
        release_sig(l, sig);
    }
    slot_drop(l);
    pthread_mutex_unlock(&glock);
    weft__free(ss);
    l->sigs = NULL;
}
