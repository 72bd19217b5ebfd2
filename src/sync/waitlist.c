/*
 * Wait lists shared by every primitive: wake the nodes still parked (the wait itself is inline in
 * sync.h, with the woken-flag protocol).
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
