/*
 * Futures: one-shot outcomes (result, error or cancelled) with waiters and done callbacks. The
 * registrations are kept in one list in registration order; completing a future moves each one
 * onto the ready queue (a waiting task, or the callback's handle), so nothing ever runs inline.
 * A task's future is its head: the same calls observe tasks, but only the task's end sets it.
 */
#include "internal.h"

#include <string.h>

void weft__future_init(weft_future_t *f, weft_loop_t *loop, bool is_task)
{
    f->refs = 1;
    f->state = WEFT__F_PENDING;
    f->is_task = is_task;
    f->retrieved = 0;
    f->result = 0;
    f->loop = loop;
    weft__list_init(&f->entries);
}

int weft_future_new(weft_future_t **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    weft_loop_t *l = weft__tls_loop;
    if (l == NULL || l->closed)
        return -EPERM;
    struct weft__pfuture *pf = weft__malloc(sizeof(*pf));
    if (pf == NULL)
        return -ENOMEM;
    weft__future_init(&pf->fut, l, false);
    pf->cancel_msg = NULL;
    *out = &pf->fut;
    return 0;
}

weft_future_t *weft_future_retain(weft_future_t *f)
{
    if (f != NULL)
        f->refs++;
    return f;
}

void weft__future_drop_entries(weft_future_t *f)
{
    while (!weft__list_empty(&f->entries)) {
        struct weft__fentry *e = weft__container_of(f->entries.next, struct weft__fentry, link);
        weft__list_remove(&e->link);
        if (e->task == NULL)
            weft__free(e);
    }
}

void weft_future_release(weft_future_t *f)
{
    if (f == NULL || --f->refs > 0)
        return;
    if (f->is_task) {
        weft__task_free((weft_task_t *)f);
        return;
    }
    /* The future may outlive its loop: only the thread's current loop is known to be alive. */
    if (f->state == WEFT__F_DONE && f->result < 0 && !f->retrieved)
        weft__report(f->loop == weft__tls_loop ? f->loop : NULL, "future error never retrieved",
                     f->result, NULL);
    weft__future_drop_entries(f);
    struct weft__pfuture *pf = weft__container_of(f, struct weft__pfuture, fut);
    weft__free(pf->cancel_msg);
    weft__free(pf);
}

static void run_callback(void *arg)
{
    struct weft__fentry *e = arg;
    weft_future_t *f = e->fut;
    e->cb(f, e->arg);
    weft__free(e);
    weft_future_release(f);
}

/* The loop is closing with this callback still queued: free it without running it. */
void weft__fentry_drop(struct weft__handle *h)
{
    struct weft__fentry *e = weft__container_of(h, struct weft__fentry, h);
    weft_future_t *f = e->fut;
    weft__free(e);
    weft_future_release(f);
}

static void schedule_callback(weft_future_t *f, struct weft__fentry *e)
{
    e->fut = weft_future_retain(f);
    e->h.kind = WEFT__RN_HANDLE;
    e->h.heap = WEFT__H_FENTRY;
    e->h.cb = run_callback;
    e->h.arg = e;
    weft__enqueue_handle(f->loop, &e->h);
}

void weft__future_complete(weft_future_t *f, uint8_t state, int result)
{
    f->state = state;
    f->result = result;
    while (!weft__list_empty(&f->entries)) {
        struct weft__fentry *e = weft__container_of(f->entries.next, struct weft__fentry, link);
        weft__list_remove(&e->link);
        if (e->task != NULL)
            weft__wake(e->task, 0);
        else
            schedule_callback(f, e);
    }
}

/* A future may outlive its loop (kept past weft_run()); its loop is alive only if it is the
 * thread's current one. Completing or adding callbacks is refused otherwise (nothing could run
 * them, and the loop's memory may be gone). */
static inline bool loop_alive(const weft_future_t *f)
{
    return f->loop != NULL && f->loop == weft__tls_loop;
}

int weft_future_set_result(weft_future_t *f, int value)
{
    if (f == NULL || f->is_task || value < 0 || !loop_alive(f))
        return -EINVAL;
    if (f->state != WEFT__F_PENDING)
        return -EALREADY;
    weft__future_complete(f, WEFT__F_DONE, value);
    return 0;
}

int weft_future_set_error(weft_future_t *f, int err)
{
    if (f == NULL || f->is_task || err >= 0 || err == -ECANCELED || !loop_alive(f))
        return -EINVAL;
    if (f->state != WEFT__F_PENDING)
        return -EALREADY;
    weft__future_complete(f, WEFT__F_DONE, err);
    return 0;
}

bool weft_future_cancel(weft_future_t *f, const char *msg)
{
    if (f == NULL)
        return false;
    if (f->is_task)
        return weft_task_cancel((weft_task_t *)f, msg);
    if (f->state != WEFT__F_PENDING || !loop_alive(f))
        return false;
    if (msg != NULL) {
        struct weft__pfuture *pf = weft__container_of(f, struct weft__pfuture, fut);
        weft__free(pf->cancel_msg);
        pf->cancel_msg = weft__strdup(msg);
    }
    weft__future_complete(f, WEFT__F_CANCELLED, -ECANCELED);
    return true;
}

bool weft_future_done(const weft_future_t *f)
{
    return f != NULL && f->state != WEFT__F_PENDING;
}

bool weft_future_cancelled(const weft_future_t *f)
{
    return f != NULL && f->state == WEFT__F_CANCELLED;
}

int weft_future_result(weft_future_t *f)
{
    if (f == NULL || f->state == WEFT__F_PENDING)
        return -EINVAL;
    f->retrieved = 1;
    return f->result;
}

int weft__future_wait(weft_future_t *f, uint8_t kind, int64_t deadline)
{
    int err;
    weft_task_t *cur = weft__task_check_current(&err);
    if (cur == NULL)
        return err;
    if (f == &cur->fut)
        return -EDEADLK;
    if (f->loop != NULL && f->loop != cur->fut.loop)
        return -EINVAL;
    if (f->state != WEFT__F_PENDING) {
        f->retrieved = 1;
        return f->result;
    }
    struct weft__fentry e; /* a waiter uses only its link and task */
    e.task = cur;
    weft__list_append(&f->entries, &e.link);
    f->refs++;
    int r = weft__park(cur, kind, f, &e.link, deadline);
    if (r == 0) {
        r = f->result;
        f->retrieved = 1;
    }
    if (WEFT__LIKELY(f->refs > 1))
        f->refs--; /* the caller holds another reference: nothing to free */
    else
        weft_future_release(f);
    return r;
}

int weft_future_await(weft_future_t *f)
{
    if (f == NULL)
        return -EINVAL;
    return weft__future_wait(f, f->is_task ? WEFT__P_JOIN : WEFT__P_FUTURE, WEFT_NO_DEADLINE);
}

int weft_future_await_dl(weft_future_t *f, int64_t deadline)
{
    if (f == NULL)
        return -EINVAL;
    return weft__future_wait(f, f->is_task ? WEFT__P_JOIN : WEFT__P_FUTURE, deadline);
}

int weft_future_await_shielded(weft_future_t *f)
{
    if (f == NULL)
        return -EINVAL;
    return weft__future_wait(f, WEFT__P_SHIELD, WEFT_NO_DEADLINE);
}

int weft_future_add_done_callback(weft_future_t *f, weft_future_cb cb, void *arg)
{
    if (f == NULL || cb == NULL || !loop_alive(f))
        return -EINVAL;
    struct weft__fentry *e = weft__calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    weft__list_init(&e->link);
    e->cb = cb;
    e->arg = arg;
    if (f->state != WEFT__F_PENDING)
        schedule_callback(f, e);
    else
        weft__list_append(&f->entries, &e->link);
    return 0;
}

int weft_future_remove_done_callback(weft_future_t *f, weft_future_cb cb, void *arg)
{
    if (f == NULL)
        return 0;
    int n = 0;
    struct weft__list *p = f->entries.next;
    while (p != &f->entries) {
        struct weft__list *next = p->next;
        struct weft__fentry *e = weft__container_of(p, struct weft__fentry, link);
        if (e->task == NULL && e->cb == cb && e->arg == arg) {
            weft__list_remove(&e->link);
            weft__free(e);
            n++;
        }
        p = next;
    }
    return n;
}
