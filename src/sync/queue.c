/*
 * Queue, LifoQueue and PriorityQueue (asyncio 3.13): a growing buffer of `void *` items plus
 * FIFO lists of getters, putters and joiners. A put wakes one getter and a get wakes one putter;
 * woken tasks re-check (no hand-off), and one that fails after being woken wakes the next in line.
 */
#include "sync/sync.h"

#include <string.h>

#define CAP_MIN 8

static int create(weft_queue_t **out, size_t maxsize, uint8_t kind, weft_queue_cmp_fn cmp,
                  void *arg)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    weft_queue_t *q = weft__calloc(1, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    q->maxsize = maxsize;
    q->kind = kind;
    q->cmp = cmp;
    q->cmp_arg = arg;
    weft__list_init(&q->getters);
    weft__list_init(&q->putters);
    weft__list_init(&q->joiners);
    *out = q;
    return 0;
}

int weft_queue_new(weft_queue_t **out, size_t maxsize)
{
    return create(out, maxsize, WEFT__Q_FIFO, NULL, NULL);
}

int weft_queue_new_lifo(weft_queue_t **out, size_t maxsize)
{
    return create(out, maxsize, WEFT__Q_LIFO, NULL, NULL);
}

int weft_queue_new_priority(weft_queue_t **out, size_t maxsize, weft_queue_cmp_fn cmp, void *arg)
{
    if (cmp == NULL) {
        if (out != NULL)
            *out = NULL;
        return -EINVAL;
    }
    return create(out, maxsize, WEFT__Q_PRIO, cmp, arg);
}

int weft_queue_free(weft_queue_t *q)
{
    if (q == NULL)
        return 0;
    if (q->nbusy > 0)
        return -EBUSY;
    weft__free(q->ring);
    weft__free(q->heap);
    weft__free(q);
    return 0;
}

/* ---- storage ---- */

static inline bool full(const weft_queue_t *q)
{
    return q->maxsize > 0 && q->count >= q->maxsize;
}

/* Make room for one more item. */
static int grow(weft_queue_t *q)
{
    size_t cap = q->cap < CAP_MIN ? CAP_MIN : q->cap * 2;
    if (q->maxsize > 0 && cap > q->maxsize)
        cap = q->maxsize;
    if (cap <= q->cap)
        cap = q->cap + 1;
    if (q->kind == WEFT__Q_PRIO) {
        if (cap > SIZE_MAX / sizeof(*q->heap))
            return -ENOMEM;
        struct weft__qent *h = weft__realloc(q->heap, cap * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        q->heap = h;
    } else {
        if (cap > SIZE_MAX / sizeof(*q->ring))
            return -ENOMEM;
        void **r = weft__realloc(q->ring, cap * sizeof(*r));
        if (r == NULL)
            return -ENOMEM;
        /* A wrapped ring: move the part before the wrap behind the old end. */
        if (q->kind == WEFT__Q_FIFO && q->head + q->count > q->cap) {
            size_t tail = q->head + q->count - q->cap;
            if (tail <= cap - q->cap) {
                memcpy(r + q->cap, r, tail * sizeof(*r));
            } else {
                memmove(r + q->cap, r, (cap - q->cap) * sizeof(*r));
                memmove(r, r + (cap - q->cap), (tail - (cap - q->cap)) * sizeof(*r));
            }
        }
        q->ring = r;
    }
    q->cap = cap;
    return 0;
}

static inline bool before(const weft_queue_t *q, const struct weft__qent *a,
                          const struct weft__qent *b)
{
    int c = q->cmp(a->item, b->item, q->cmp_arg);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

/* LIFO and priority storage (the FIFO ring is inline in push() and pop()). */
static __attribute__((noinline)) void push_other(weft_queue_t *q, void *item)
{
    if (q->kind == WEFT__Q_LIFO) {
        q->ring[q->count] = item;
    } else {
        struct weft__qent e = {item, q->seq++};
        size_t i = q->count;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (!before(q, &e, &q->heap[parent]))
                break;
            q->heap[i] = q->heap[parent];
            i = parent;
        }
        q->heap[i] = e;
    }
    q->count++;
}

static __attribute__((noinline)) void *pop_other(weft_queue_t *q)
{
    void *item;
    q->count--;
    if (q->kind == WEFT__Q_LIFO) {
        item = q->ring[q->count];
    } else {
        item = q->heap[0].item;
        struct weft__qent last = q->heap[q->count];
        size_t i = 0, n = q->count;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n)
                break;
            if (c + 1 < n && before(q, &q->heap[c + 1], &q->heap[c]))
                c++;
            if (!before(q, &q->heap[c], &last))
                break;
            q->heap[i] = q->heap[c];
            i = c;
        }
        q->heap[i] = last;
    }
    return item;
}

static inline void push(weft_queue_t *q, void *item)
{
    if (WEFT__UNLIKELY(q->kind != WEFT__Q_FIFO)) {
        push_other(q, item);
        return;
    }
    size_t i = q->head + q->count;
    q->ring[i >= q->cap ? i - q->cap : i] = item;
    q->count++;
}

static inline void *pop(weft_queue_t *q)
{
    if (WEFT__UNLIKELY(q->kind != WEFT__Q_FIFO))
        return pop_other(q);
    void *item = q->ring[q->head];
    q->count--;
    q->head = q->count == 0 || q->head + 1 == q->cap ? 0 : q->head + 1;
    return item;
}

/* ---- waiting ---- */

/* Wake the first parked waiter of `l`, dropping cancelled or timed-out ones on the way. */
static void wakeup_next(struct weft__list *l)
{
    while (!weft__list_empty(l)) {
        struct weft__waiter *w = weft__waiter_of(l->next);
        if (weft__waiter_parked(w)) {
            weft__waiter_wake(w);
            return;
        }
        weft__list_remove(&w->link);
    }
}

/* Park the current task on `l`. Returns park's result; *woken tells whether a waker chose us. */
static int wait_on(weft_queue_t *q, struct weft__list *l, int64_t deadline, bool *woken)
{
    *woken = false;
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    struct weft__waiter w;
    q->nbusy++;
    int r = weft__wl_wait(t, l, &w, q, deadline);
    q->nbusy--;
    *woken = w.woken;
    return r;
}

static bool foreign(const weft_queue_t *q)
{
    return weft__wl_foreign(&q->getters) || weft__wl_foreign(&q->putters) ||
           weft__wl_foreign(&q->joiners);
}

/* ---- put / get ---- */

static inline int put_now(weft_queue_t *q, void *item)
{
    if (q->shutdown)
        return -ESHUTDOWN;
    if (full(q))
        return -EAGAIN;
    if (WEFT__UNLIKELY(q->count == q->cap)) {
        int err = grow(q);
        if (err < 0)
            return err;
    }
    if (!weft__list_empty(&q->getters)) {
        if (WEFT__UNLIKELY(weft__wl_foreign(&q->getters)))
            return -EINVAL;
        push(q, item);
        wakeup_next(&q->getters);
    } else {
        push(q, item);
    }
    q->unfinished++;
    return 0;
}

int weft_queue_put_nowait(weft_queue_t *q, void *item)
{
    if (WEFT__UNLIKELY(q == NULL))
        return -EINVAL;
    return put_now(q, item);
}

static inline int get_now(weft_queue_t *q, void **item)
{
    if (q->count == 0)
        return q->shutdown ? -ESHUTDOWN : -EAGAIN;
    if (!weft__list_empty(&q->putters)) {
        if (WEFT__UNLIKELY(weft__wl_foreign(&q->putters)))
            return -EINVAL;
        *item = pop(q);
        wakeup_next(&q->putters);
    } else {
        *item = pop(q);
    }
    return 0;
}

int weft_queue_get_nowait(weft_queue_t *q, void **item)
{
    if (WEFT__UNLIKELY(q == NULL || item == NULL))
        return -EINVAL;
    return get_now(q, item);
}

/*
 * The blocking put (out == NULL) and get (item in *out) in one routine, so that both park at the
 * same call site. A producer and a consumer that hand items back and forth switch on every item,
 * and each switch resumes the other task in the park; the CPU predicts the returns out of it from
 * the calls the suspending task made. Through one routine the return from the park lands where
 * it was predicted and only the return into the caller's own code misses; separate put and get
 * functions cost one more missed return per switch (about 10 ns each on the development VM,
 * docs/sync.md). noclone keeps gcc from splitting it back into a put copy and a get copy.
 */
#if defined(__clang__)
#define ONE_COPY __attribute__((noinline))
#else
#define ONE_COPY __attribute__((noinline, noclone))
#endif

static ONE_COPY int transfer(weft_queue_t *q, void *item, void **out, int64_t deadline)
{
    bool put = out == NULL;
    struct weft__list *l = put ? &q->putters : &q->getters;
    bool woken = false;
    while (put ? full(q) : q->count == 0) {
        if (q->shutdown)
            return -ESHUTDOWN;
        int r = wait_on(q, l, deadline, &woken);
        if (r < 0) {
            /* Woken for a free slot or an item we will not use: the next in line gets it. */
            if (woken && (put ? !full(q) : q->count > 0))
                wakeup_next(l);
            return r;
        }
    }
    if (!put)
        return get_now(q, out);
    int r = put_now(q, item);
    if (WEFT__UNLIKELY(r < 0) && woken && !full(q))
        wakeup_next(&q->putters);
    return r;
}

int weft_queue_put_dl(weft_queue_t *q, void *item, int64_t deadline)
{
    if (WEFT__UNLIKELY(q == NULL))
        return -EINVAL;
    return transfer(q, item, NULL, deadline);
}

int weft_queue_put(weft_queue_t *q, void *item)
{
    return weft_queue_put_dl(q, item, WEFT_NO_DEADLINE);
}

int weft_queue_get_dl(weft_queue_t *q, void **item, int64_t deadline)
{
    if (WEFT__UNLIKELY(q == NULL || item == NULL))
        return -EINVAL;
    return transfer(q, NULL, item, deadline);
}

int weft_queue_get(weft_queue_t *q, void **item)
{
    return weft_queue_get_dl(q, item, WEFT_NO_DEADLINE);
}

/* ---- join ---- */

int weft_queue_task_done(weft_queue_t *q)
{
    if (q == NULL || q->unfinished == 0)
        return -EINVAL;
    if (q->unfinished == 1 && WEFT__UNLIKELY(weft__wl_foreign(&q->joiners)))
        return -EINVAL;
    if (--q->unfinished == 0)
        weft__wl_wake_all(&q->joiners);
    return 0;
}

int weft_queue_join_dl(weft_queue_t *q, int64_t deadline)
{
    if (q == NULL)
        return -EINVAL;
    if (q->unfinished == 0)
        return 0;
    bool woken;
    return wait_on(q, &q->joiners, deadline, &woken); /* woken: done, whatever came after */
}

int weft_queue_join(weft_queue_t *q)
{
    return weft_queue_join_dl(q, WEFT_NO_DEADLINE);
}

/* ---- shutdown ---- */

static int do_shutdown(weft_queue_t *q, bool immediate, void (*drop)(void *item, void *arg),
                    void *arg)
{
    if (q == NULL)
        return -EINVAL;
    if (WEFT__UNLIKELY(foreign(q)))
        return -EINVAL;
    q->shutdown = 1;
    if (immediate) {
        while (q->count > 0) {
            void *item = pop(q);
            if (drop != NULL)
                drop(item, arg);
            if (q->unfinished > 0)
                q->unfinished--;
        }
        if (q->unfinished == 0)
            weft__wl_wake_all(&q->joiners);
    }
    /* Every blocked get and put re-checks and sees the shutdown. */
    weft__wl_wake_all(&q->getters);
    weft__wl_wake_all(&q->putters);
    return 0;
}

int weft_queue_shutdown(weft_queue_t *q, bool immediate)
{
    return do_shutdown(q, immediate, NULL, NULL);
}

int weft_queue_shutdown_drop(weft_queue_t *q, void (*drop)(void *item, void *arg), void *arg)
{
    return do_shutdown(q, true, drop, arg);
}

/* ---- state ---- */

size_t weft_queue_qsize(const weft_queue_t *q)
{
    return q != NULL ? q->count : 0;
}

size_t weft_queue_maxsize(const weft_queue_t *q)
{
    return q != NULL ? q->maxsize : 0;
}

bool weft_queue_empty(const weft_queue_t *q)
{
    return q != NULL && q->count == 0;
}

bool weft_queue_full(const weft_queue_t *q)
{
    return q != NULL && full(q);
}

bool weft_queue_is_shutdown(const weft_queue_t *q)
{
    return q != NULL && q->shutdown;
}

size_t weft_queue_unfinished(const weft_queue_t *q)
{
    return q != NULL ? q->unfinished : 0;
}
