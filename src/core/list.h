/*
 * Intrusive circular doubly-linked list with a sentinel head. A node not in any list points at
 * itself, so removal is always safe and weft__list_linked() tells whether a node is queued.
 */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stdbool.h>

struct weft__list {
    struct weft__list *next;
    struct weft__list *prev;
};

static inline void weft__list_init(struct weft__list *l)
{
    l->next = l;
    l->prev = l;
}

static inline bool weft__list_empty(const struct weft__list *l)
{
    return l->next == l;
}

static inline bool weft__list_linked(const struct weft__list *n)
{
    return n->next != n;
}

static inline void weft__list_append(struct weft__list *head, struct weft__list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void weft__list_remove(struct weft__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

/* A linked node was copied byte for byte to `n` (its memory moves): point its neighbours at
 * the copy. */
static inline void weft__list_moved(struct weft__list *n)
{
    n->prev->next = n;
    n->next->prev = n;
}

/* Move every node of `from` to the (empty) list `to`, leaving `from` empty. */
static inline void weft__list_move_all(struct weft__list *from, struct weft__list *to)
{
    if (weft__list_empty(from)) {
        weft__list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    weft__list_init(from);
}

#endif /* WEFT_LIST_H */
