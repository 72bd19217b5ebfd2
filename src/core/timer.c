/*
 * Timers: a 4-ary min-heap ordered by (deadline, arming sequence), so equal deadlines fire in
 * the order they were armed. Each node stores its heap index, making cancel O(log n).
 * Also the clock and the user-facing weft_timer_t / call_at calls.
 */
#include "internal.h"

#include <math.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(struct weft__utimer) <= sizeof(weft_timer_t), "weft_timer_t too small");

int64_t weft__clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft_time(const weft_loop_t *loop)
{
    if (loop == NULL)
        loop = weft__tls_loop;
    if (loop == NULL)
        return weft__clock();
    return weft__now((weft_loop_t *)loop);
}

int weft_clock_advance(weft_loop_t *loop, int64_t ns)
{
    if (loop == NULL)
        loop = weft__tls_loop;
    if (loop == NULL || !loop->virtual_clock || ns < 0)
        return -EINVAL;
    if (!pthread_equal(loop->owner, pthread_self()))
        return -EINVAL;
    loop->now = ns > INT64_MAX - loop->now ? INT64_MAX : loop->now + ns;
    return 0;
}

int64_t weft_seconds_to_ns(double seconds)
{
    if (isnan(seconds))
        return -EINVAL;
    if (seconds <= 0)
        return 0;
    if (seconds >= 9.2e9)
        return INT64_MAX;
    return (int64_t)(seconds * 1e9);
}

int64_t weft_deadline_in(double seconds)
{
    if (isnan(seconds) || seconds >= 9.2e9)
        return WEFT_NO_DEADLINE;
    int64_t now = weft_time(NULL);
    int64_t d = weft_seconds_to_ns(seconds);
    if (d > INT64_MAX - now)
        return WEFT_NO_DEADLINE;
    return now + d;
}

/* ---- the heap ----
 * Four children per node: half the depth of a binary heap, and the four keys compared at each
 * level sit in two adjacent cache lines. */

#define ARITY 4

static inline bool before(const struct weft__hent *a, const struct weft__hent *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void place(struct weft__heap *h, uint32_t i, struct weft__hent e)
{
    h->a[i] = e;
    e.node->idx = i;
}

static void sift_up(struct weft__heap *h, uint32_t i, struct weft__hent e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!before(&e, &h->a[parent]))
            break;
        place(h, i, h->a[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(struct weft__heap *h, uint32_t i, struct weft__hent e)
{
    for (;;) {
        uint32_t c = ARITY * i + 1;
        if (c >= h->n)
            break;
        uint32_t end = c + ARITY < h->n ? c + ARITY : h->n;
        uint32_t best = c;
        for (uint32_t k = c + 1; k < end; k++) {
            if (before(&h->a[k], &h->a[best]))
                best = k;
        }
        if (!before(&h->a[best], &e))
            break;
        place(h, i, h->a[best]);
        i = best;
    }
    place(h, i, e);
}

static inline struct weft__tnode *lane_node(struct weft__list *n)
{
    return weft__container_of(n, struct weft__tnode, link);
}

void weft__heap_init(struct weft__heap *h)
{
    h->a = NULL;
    h->n = h->cap = 0;
    weft__list_init(&h->lane);
}

int weft__timer_arm(weft_loop_t *loop, struct weft__tnode *tn, int64_t when)
{
    struct weft__heap *h = &loop->timers;
    if (weft__timer_armed(tn))
        weft__timer_disarm(loop, tn);
    if (weft__list_empty(&h->lane) || lane_node(h->lane.prev)->when <= when) {
        /* In order (the usual case): the lane, whose nodes all have a smaller seq. */
        tn->when = when;
        tn->seq = loop->timer_seq++;
        weft__list_append(&h->lane, &tn->link);
        tn->idx = WEFT__TN_LANE;
        return 0;
    }
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct weft__hent *a = weft__realloc(h->a, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    tn->when = when;
    tn->seq = loop->timer_seq++;
    struct weft__hent e = {when, tn->seq, tn};
    sift_up(h, h->n++, e);
    return 0;
}

void weft__timer_disarm(weft_loop_t *loop, struct weft__tnode *tn)
{
    struct weft__heap *h = &loop->timers;
    uint32_t i = tn->idx;
    if (i == WEFT__TN_IDLE)
        return;
    tn->idx = WEFT__TN_IDLE;
    if (i == WEFT__TN_LANE) {
        weft__list_remove(&tn->link);
        return;
    }
    struct weft__hent last = h->a[--h->n];
    if (i == h->n)
        return;
    if (i > 0 && before(&last, &h->a[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

/* The armed node `to` is a byte copy of the one armed (a compact task's frames moved): point
 * the heap or the lane at the copy. */
void weft__timer_moved(weft_loop_t *loop, struct weft__tnode *to)
{
    if (to->idx == WEFT__TN_LANE)
        weft__list_moved(&to->link);
    else if (to->idx != WEFT__TN_IDLE)
        loop->timers.a[to->idx].node = to;
}

static void fire(weft_loop_t *loop, struct weft__tnode *tn)
{
    if (tn->kind == WEFT__TN_TASK) {
        struct weft__ptimer *pt = weft__container_of(tn, struct weft__ptimer, tn);
        weft__wake(pt->task, -ETIMEDOUT);
    } else {
        struct weft__utimer *u = weft__container_of(tn, struct weft__utimer, tn);
        weft__enqueue_handle(loop, &u->h);
    }
}

void weft__timers_expire(weft_loop_t *loop, int64_t now)
{
    struct weft__heap *h = &loop->timers;
    for (;;) {
        struct weft__tnode *tn = NULL;
        if (h->n > 0 && h->a[0].when <= now)
            tn = h->a[0].node;
        if (!weft__list_empty(&h->lane)) {
            struct weft__tnode *f = lane_node(h->lane.next);
            if (f->when <= now &&
                (tn == NULL || f->when < tn->when || (f->when == tn->when && f->seq < tn->seq)))
                tn = f;
        }
        if (tn == NULL)
            break;
        weft__timer_disarm(loop, tn);
        fire(loop, tn);
    }
}

/* The loop closes with `tn` armed: forget it, and free it if weft allocated it. */
static void drop_armed(struct weft__tnode *tn)
{
    tn->idx = WEFT__TN_IDLE;
    if (tn->kind == WEFT__TN_USER) {
        struct weft__utimer *u = weft__container_of(tn, struct weft__utimer, tn);
        if (u->heap)
            weft__free(u);
    }
}

void weft__heap_fini(struct weft__heap *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        drop_armed(h->a[i].node);
    while (!weft__list_empty(&h->lane)) {
        struct weft__tnode *tn = lane_node(h->lane.next);
        weft__list_remove(&tn->link);
        drop_armed(tn);
    }
    weft__free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

/* ---- weft_timer_t ---- */

static void utimer_init(struct weft__utimer *u)
{
    memset(u, 0, sizeof(*u));
    u->tn.idx = WEFT__TN_IDLE;
    u->tn.kind = WEFT__TN_USER;
    weft__list_init(&u->h.link);
    u->h.kind = WEFT__RN_HANDLE;
}

void weft_timer_init(weft_timer_t *timer)
{
    if (timer == NULL)
        return;
    memset(timer, 0, sizeof(*timer));
    utimer_init((struct weft__utimer *)timer);
}

bool weft_timer_cancel(weft_timer_t *timer)
{
    struct weft__utimer *u = (struct weft__utimer *)timer;
    if (u == NULL || u->loop == NULL)
        return false;
    if (weft__timer_armed(&u->tn)) {
        weft__timer_disarm(u->loop, &u->tn);
        return true;
    }
    if (weft__list_linked(&u->h.link)) {
        /* Expired but not yet run: asyncio lets a cancel still stop it. */
        weft__list_remove(&u->h.link);
        return true;
    }
    return false;
}

int64_t weft_timer_when(const weft_timer_t *timer)
{
    const struct weft__utimer *u = (const struct weft__utimer *)timer;
    if (u == NULL || u->loop == NULL || !weft__timer_armed(&u->tn))
        return WEFT_NO_DEADLINE;
    return u->tn.when;
}

int weft_call_at(weft_loop_t *loop, weft_timer_t *timer, int64_t when, weft_callback_fn cb,
                 void *arg)
{
    if (loop == NULL || cb == NULL || when < 0)
        return -EINVAL;
    if (timer != NULL && weft__on_cstack(loop, timer))
        return -EINVAL; /* the loop would read it while its task's frames are copied out */
    struct weft__utimer *u;
    if (timer == NULL) {
        u = weft__malloc(sizeof(*u));
        if (u == NULL)
            return -ENOMEM;
        utimer_init(u);
        u->heap = 1;
    } else {
        u = (struct weft__utimer *)timer;
        if (u->tn.kind != WEFT__TN_USER)
            return -EINVAL; /* never initialised */
        weft_timer_cancel(timer);
    }
    u->loop = loop;
    u->h.cb = cb;
    u->h.arg = arg;
    u->h.heap = u->heap ? WEFT__H_UTIMER : 0;
    int err = weft__timer_arm(loop, &u->tn, when);
    if (err < 0 && u->heap)
        weft__free(u);
    return err;
}

int weft_call_later(weft_loop_t *loop, weft_timer_t *timer, double delay, weft_callback_fn cb,
                    void *arg)
{
    if (loop == NULL)
        return -EINVAL;
    int64_t d = weft_seconds_to_ns(delay);
    if (d < 0)
        return -EINVAL;
    int64_t now = weft__now(loop);
    int64_t when = d > INT64_MAX - now ? INT64_MAX : now + d;
    return weft_call_at(loop, timer, when, cb, arg);
}
