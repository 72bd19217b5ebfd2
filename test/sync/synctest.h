/*
 * Helpers shared by the sync tests: counting a primitive's wait-list nodes, ints carried as queue
 * items, and making a queue of each kind.
 */
#ifndef WEFT_SYNCTEST_H
#define WEFT_SYNCTEST_H

#include <stdint.h>

#include "test.h"
#include "sync/sync.h"

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((int)(intptr_t)(p))

/* Nodes on a wait list (which may still be all-zero storage). */
static inline int nlinked(struct weft__list *l)
{
    int n = 0;
    if (weft__wl_empty(l))
        return 0;
    for (struct weft__list *p = l->next; p != l; p = p->next)
        n++;
    return n;
}

static inline int int_cmp(const void *a, const void *b, void *arg)
{
    (void)arg;
    return P2I(a) < P2I(b) ? -1 : P2I(a) > P2I(b);
}

enum { FIFO, LIFO, PRIO };

static inline weft_queue_t *make(int kind, size_t maxsize)
{
    weft_queue_t *q = NULL;
    if (kind == FIFO)
        CHECK_EQ(weft_queue_new(&q, maxsize), 0);
    else if (kind == LIFO)
        CHECK_EQ(weft_queue_new_lifo(&q, maxsize), 0);
    else
        CHECK_EQ(weft_queue_new_priority(&q, maxsize, int_cmp, NULL), 0);
    CHECK(q != NULL);
    return q;
}

#endif /* WEFT_SYNCTEST_H */
