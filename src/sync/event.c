/*
 * Event (asyncio.Event): a flag; set() wakes every waiter, and a woken waiter reports success even
 * if the flag was cleared again before it ran.
 */
#include "sync/sync.h"

static inline struct weft__event *impl(weft_event_t *ev)
{
    return (struct weft__event *)ev;
}

void weft_event_init(weft_event_t *ev)
{
    if (ev == NULL)
        return;
    struct weft__event *e = impl(ev);
    weft__list_init(&e->waiters);
    e->value = 0;
}

int weft_event_set(weft_event_t *ev)
{
    if (ev == NULL)
        return -EINVAL;
    struct weft__event *e = impl(ev);
    if (e->value)
        return 0;
    if (WEFT__UNLIKELY(weft__wl_foreign(&e->waiters)))
        return -EINVAL;
    e->value = 1;
    weft__wl_wake_all(&e->waiters);
    return 0;
}

void weft_event_clear(weft_event_t *ev)
{
    if (ev != NULL)
        impl(ev)->value = 0;
}

bool weft_event_is_set(const weft_event_t *ev)
{
    return ev != NULL && ((const struct weft__event *)ev)->value != 0;
}

int weft_event_wait_dl(weft_event_t *ev, int64_t deadline)
{
    if (ev == NULL)
        return -EINVAL;
    struct weft__event *e = impl(ev);
    if (e->value)
        return 0;
    int err;
    weft_task_t *t = weft__sync_current(&err);
    if (t == NULL)
        return err;
    struct weft__waiter w;
    return weft__wl_wait(t, &e->waiters, &w, e, deadline);
}

int weft_event_wait(weft_event_t *ev)
{
    return weft_event_wait_dl(ev, WEFT_NO_DEADLINE);
}
