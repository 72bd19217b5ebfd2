/*
 * The completion watch behind gather, wait and as_completed: one done callback per task records
 * completions in the order the loop reports them and wakes the consumer parked on the watch.
 * Callbacks run from the loop, so one may still be queued when the consumer leaves; each holds a
 * reference, and a detached watch only counts them down (or marks late errors read).
 */
#include "conc/conc.h"

static void unref(struct weft__watch *w)
{
    if (--w->refs == 0)
        weft__free(w);
}

static size_t extra_offset(size_t n)
{
    size_t off =
        sizeof(struct weft__watch) + n * sizeof(struct weft__watch_slot) + n * sizeof(uint32_t);
    return (off + 15) & ~(size_t)15;
}

void *weft__watch_extra(struct weft__watch *w)
{
    return (char *)w + extra_offset(w->n);
}

static void on_done(weft_future_t *f, void *arg)
{
    struct weft__watch_slot *s = arg;
    struct weft__watch *w = s->w;
    s->ran = 1;
    if (!w->detached) {
        w->order[w->ndone++] = s->idx;
        weft_task_t *t = w->waiter;
        if (t != NULL && weft__parked_on(t) == w)
            weft__wake(t, 0);
    } else if (w->mark_late) {
        weft_future_result(f);
    }
    unref(w);
}

static void mark_read(weft_future_t *f, void *arg)
{
    (void)arg;
    weft_future_result(f);
}

struct weft__watch *weft__watch_new(weft_task_t *const *tasks, size_t n, size_t extra, int *err)
{
    if (n > UINT32_MAX / 2) {
        *err = -ENOMEM;
        return NULL;
    }
    struct weft__watch *w = weft__calloc(1, extra_offset(n) + extra);
    if (w == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    w->refs = 1;
    w->n = (uint32_t)n;
    w->order = (uint32_t *)&w->slots[n];
    for (uint32_t i = 0; i < n; i++) {
        w->slots[i].w = w;
        w->slots[i].idx = i;
        if (weft_future_add_done_callback(weft_task_future(tasks[i]), on_done, &w->slots[i]) < 0)
            break;
        w->refs++;
        w->nregistered++;
    }
    if (w->nregistered < n) {
        weft__watch_detach(w, tasks);
        *err = -ENOMEM;
        return NULL;
    }
    return w;
}

int weft__watch_park(struct weft__watch *w, weft_task_t *cur, uint32_t seen, int64_t deadline)
{
    if (seen < w->ndone)
        return 0;
    w->waiter = cur;
    int r = weft__park(cur, WEFT__P_PRIM, w, NULL, deadline);
    w->waiter = NULL;
    return r;
}

void weft__watch_detach(struct weft__watch *w, weft_task_t *const *tasks)
{
    w->detached = 1;
    w->waiter = NULL;
    for (uint32_t i = 0; i < w->nregistered; i++) {
        if (w->slots[i].ran)
            continue;
        weft_future_t *f = weft_task_future(tasks[i]);
        int removed = weft_future_remove_done_callback(f, on_done, &w->slots[i]);
        w->refs -= (uint32_t)removed;
        if (removed > 0 && w->mark_late)
            weft_future_add_done_callback(f, mark_read, NULL);
    }
    unref(w);
}
