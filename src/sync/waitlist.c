/*
 * Wait lists shared by every primitive: queue the current task on a list of stack nodes, park it,
 * and wake the nodes still parked. See sync.h for the woken-flag protocol.
 */
#include "sync/sync.h"

int weft__wl_wake_all(struct weft__list *l)
{
    int n = 0;
    if (weft__wl_empty(l))
        return 0;
    while (!weft__list_empty(l)) {
        struct weft__waiter *w = weft__waiter_of(l->next);
        if (weft__waiter_parked(w)) {
            weft__waiter_wake(w);
            n++;
        } else {
            weft__list_remove(&w->link); /* cancelled or timed out: it leaves on its own */
        }
    }
    return n;
}

int weft__wl_wake_n(struct weft__list *l, int n)
{
    int k = 0;
    if (weft__wl_empty(l))
        return 0;
    struct weft__list *next;
    for (struct weft__list *p = l->next; p != l && k != n; p = next) {
        next = p->next;
        struct weft__waiter *w = weft__waiter_of(p);
        if (weft__waiter_parked(w)) {
            weft__waiter_wake(w);
            k++;
        }
    }
    return k;
}

struct weft__waiter *weft__wl_first_parked(struct weft__list *l)
{
    if (weft__wl_empty(l))
        return NULL;
    for (struct weft__list *n = l->next; n != l; n = n->next) {
        struct weft__waiter *w = weft__waiter_of(n);
        if (weft__waiter_parked(w))
            return w;
    }
    return NULL;
}

int weft__wl_wait(weft_task_t *t, struct weft__list *l, struct weft__waiter *w, void *obj,
                  int64_t deadline)
{
    w->task = t;
    w->woken = 0;
    weft__list_init(&w->link);
    weft__wl_ready(l);
    if (!weft__list_empty(l) && weft__waiter_of(l->next)->task->fut.loop != t->fut.loop)
        return -EINVAL;
    weft__list_append(l, &w->link);
    int r = weft__park(t, WEFT__P_PRIM, obj, &w->link, deadline < 0 ? WEFT_NO_DEADLINE : deadline);
    if (weft__list_linked(&w->link))
        weft__list_remove(&w->link);
    return r;
}
