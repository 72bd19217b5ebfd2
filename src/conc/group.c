/*
 * TaskGroup with asyncio 3.13 semantics. The group lives in the parent task's storage; each child
 * runs through a small trampoline record (so a group failing inside a child can hand its errors
 * to the outer group) and reports its end through a done callback. The first child failure
 * cancels the siblings and, once, the parent; weft_group_exit() waits for every child, undoes
 * its own cancel of the parent and turns the outcome into 0, -ECANCELED or WEFT_EGROUP.
 */
#include "conc/conc.h"

#include <string.h>

_Static_assert(sizeof(struct weft__group) <= sizeof(weft_group_t), "weft_group_t too small");
_Static_assert(_Alignof(struct weft__group) <= _Alignof(weft_group_t), "weft_group_t align");

/* One child: what the trampoline runs, and its place in the group. */
struct weft__gchild {
    struct weft__list link; /* in group->children until its end is handled */
    struct weft__group *g;
    weft_task_t *task; /* the group's reference */
    weft_task_fn fn;
    void *arg;
    weft_errgroup_t *nested; /* errors of a group that failed inside this child */
};

/* Child records kept for reuse per group: a busy group recycles them instead of allocating. */
#define SPARE_MAX 1024

/*
 * Groups entered on this thread and not exited yet, oldest first, to find where a failing nested
 * group belongs. Kept outside the groups, with a reference to each parent: if a loop is closed
 * while a task sits inside a group, the entry is recognised as stale by its orphaned parent
 * (whose handle stays valid) and dropped without touching the group's storage, which is gone.
 */
struct entered {
    struct weft__group *g;
    weft_task_t *parent;
    weft_errgroup_t *errors; /* g->errors (made at enter, never moves): freed here if stale */
};

static _Thread_local struct entered *reg;
static _Thread_local size_t nreg, capreg;

static void reg_drop(size_t i)
{
    weft_task_release(reg[i].parent);
    memmove(&reg[i], &reg[i + 1], (nreg - i - 1) * sizeof(reg[0]));
    if (--nreg == 0) {
        weft__free(reg);
        reg = NULL;
        capreg = 0;
    }
}

static void reg_prune(void)
{
    for (size_t i = nreg; i-- > 0;) {
        if (reg[i].parent->fut.loop == NULL) {
            /* The group never exited: its reserved error group would leak with its storage. */
            weft_errgroup_release(reg[i].errors);
            reg_drop(i);
        }
    }
}

static int reg_add(struct weft__group *g, weft_task_t *parent)
{
    reg_prune();
    if (nreg == capreg) {
        size_t cap = capreg ? capreg * 2 : 8;
        struct entered *r = weft__realloc(reg, cap * sizeof(*r));
        if (r == NULL)
            return -ENOMEM;
        reg = r;
        capreg = cap;
    }
    reg[nreg].g = g;
    reg[nreg].parent = weft_task_retain(parent);
    reg[nreg].errors = g->errors;
    nreg++;
    return 0;
}

static void reg_remove(struct weft__group *g)
{
    for (size_t i = nreg; i-- > 0;) {
        if (reg[i].g == g) {
            reg_drop(i);
            return;
        }
    }
}

static inline struct weft__group *G(weft_group_t *g)
{
    return (struct weft__group *)g;
}

static int child_main(void *arg)
{
    struct weft__gchild *c = arg;
    return c->fn(c->arg);
}

/* Cancel every child not done yet (asyncio's _abort). */
static void abort_group(struct weft__group *g)
{
    g->aborting = 1;
    for (struct weft__list *n = g->children.next; n != &g->children; n = n->next) {
        struct weft__gchild *c = weft__container_of(n, struct weft__gchild, link);
        if (!weft_task_done(c->task))
            weft_task_cancel(c->task, NULL);
    }
}

static void child_done(weft_future_t *f, void *arg)
{
    (void)f;
    struct weft__gchild *c = arg;
    struct weft__group *g = c->g;
    weft_task_t *t = c->task;
    weft__list_remove(&c->link);
    g->nchildren--;
    if (g->waiting && g->nchildren == 0 && weft__parked_on(g->parent) == g)
        weft__wake(g->parent, 0);
    int r = weft_task_result(t); /* marks the error read: the group reports it */
    if (r < 0 && !weft_task_cancelled(t)) {
        weft_errgroup_t *nested = r == WEFT_EGROUP ? c->nested : NULL;
        if (nested == c->nested)
            c->nested = NULL;
        int added = weft__errgroup_add(&g->errors, t, r, nested); /* room was reserved */
        (void)added;
        if (weft_task_done(g->parent)) {
            weft__report(g->loop, "a task group child failed after its parent task ended", r, t);
        } else if (!g->aborting && !g->parent_cancelled) {
            /* Stop the body too; exit takes this request back (asyncio 3.13). */
            abort_group(g);
            g->parent_cancelled = 1;
            weft_task_cancel(g->parent, NULL);
        }
    }
    weft_errgroup_release(c->nested);
    weft_task_release(t);
    if (g->nspare < SPARE_MAX) {
        c->arg = g->spare;
        g->spare = c;
        g->nspare++;
    } else {
        weft__free(c);
    }
}

static struct weft__gchild *child_new(struct weft__group *g)
{
    struct weft__gchild *c = g->spare;
    if (c == NULL)
        return weft__malloc(sizeof(*c));
    g->spare = c->arg;
    g->nspare--;
    return c;
}

static void free_spares(struct weft__group *g)
{
    while (g->spare != NULL) {
        struct weft__gchild *c = g->spare;
        g->spare = c->arg;
        weft__free(c);
    }
    g->nspare = 0;
}

int weft_group_enter(weft_group_t *gs)
{
    if (gs == NULL)
        return -EINVAL;
    struct weft__group *g = G(gs);
    int err;
    weft_task_t *cur = weft__task_check_current(&err);
    if (cur == NULL)
        return err;
    if (g->magic == WEFT__G_ENTERED)
        return -EINVAL; /* already entered and not exited */
    if (weft__on_cstack(cur->fut.loop, gs))
        return -EINVAL; /* children would use it while its frames are copied out */
    memset(g, 0, sizeof(*g));
    g->magic = WEFT__G_ENTERED;
    g->parent = cur;
    g->loop = cur->fut.loop;
    weft__list_init(&g->children);
    /* Room for the body's own error: reserved now, so that exit never needs memory. */
    err = weft__errgroup_reserve(&g->errors, 1);
    if (err < 0) {
        g->magic = 0;
        return err;
    }
    err = reg_add(g, cur);
    if (err < 0) {
        weft_errgroup_release(g->errors);
        g->errors = NULL;
        g->magic = 0;
        return err;
    }
    return 0;
}

int weft_group_spawn_opts(weft_group_t *gs, weft_task_t **out, weft_task_fn fn, void *arg,
                          const struct weft_task_opts *opts)
{
    if (out != NULL)
        *out = NULL;
    struct weft__group *g = G(gs);
    if (g == NULL || fn == NULL)
        return -EINVAL;
    if (g->magic != WEFT__G_ENTERED || (g->exiting && g->nchildren == 0))
        return -EINVAL; /* not entered, or finished */
    if (g->aborting)
        return -ESHUTDOWN;
    if (weft_loop_current() != g->loop)
        return -EINVAL;
    /* Room for this child's error besides those of the children alive and the body's. */
    if (weft__errgroup_reserve(&g->errors, g->nchildren + 2) < 0)
        return -ENOMEM;
    struct weft__gchild *c = child_new(g);
    if (c == NULL)
        return -ENOMEM;
    c->g = g;
    c->fn = fn;
    c->arg = arg;
    c->nested = NULL;
    int err = weft_spawn_opts(&c->task, child_main, c, opts);
    if (err < 0) {
        weft__free(c);
        return err;
    }
    err = weft_future_add_done_callback(weft_task_future(c->task), child_done, c);
    if (err < 0) {
        weft_task_cancel(c->task, NULL); /* not started: it never runs, never reads c */
        weft_task_release(c->task);
        weft__free(c);
        return err;
    }
    weft__list_append(&g->children, &c->link);
    g->nchildren++;
    if (out != NULL)
        *out = weft_task_retain(c->task);
    return 0;
}

int weft_group_spawn(weft_group_t *g, weft_task_t **out, weft_task_fn fn, void *arg)
{
    return weft_group_spawn_opts(g, out, fn, arg, NULL);
}

size_t weft_group_size(const weft_group_t *gs)
{
    const struct weft__group *g = (const struct weft__group *)gs;
    return g != NULL && g->magic == WEFT__G_ENTERED ? g->nchildren : 0;
}

/*
 * A group is about to hand out `eg` from inside task `cur`: give a reference to the innermost
 * group whose body is running in `cur`, or else to the outer group `cur` is a child of, so that
 * the outer group can nest it when `cur` reports WEFT_EGROUP.
 */
static void attach_nested(weft_task_t *cur, weft_errgroup_t *eg)
{
    reg_prune();
    for (size_t i = nreg; i-- > 0;) {
        struct weft__group *o = reg[i].g;
        if (reg[i].parent == cur && !o->exiting) {
            weft_errgroup_release(o->body_nested);
            o->body_nested = weft_errgroup_retain(eg);
            return;
        }
    }
    if (cur->fn == child_main) {
        struct weft__gchild *c = cur->arg;
        weft_errgroup_release(c->nested);
        c->nested = weft_errgroup_retain(eg);
    }
}

/* Wait until every child has ended (asyncio's while-loop in __aexit__). */
static void wait_children(struct weft__group *g, weft_task_t *cur, bool *propagate)
{
    while (g->nchildren > 0) {
        g->waiting = 1;
        int r = weft__park(cur, WEFT__P_PRIM, g, NULL, WEFT_NO_DEADLINE);
        g->waiting = 0;
        if (r == -ECANCELED && !g->aborting) {
            *propagate = true; /* the parent is cancelled from outside */
            abort_group(g);
        }
    }
}

int weft_group_exit(weft_group_t *gs, int body_result, weft_errgroup_t **errors)
{
    if (errors != NULL)
        *errors = NULL;
    struct weft__group *g = G(gs);
    if (g == NULL || g->magic != WEFT__G_ENTERED || g->exiting)
        return -EINVAL;
    weft_task_t *cur = weft_current_task();
    if (cur != g->parent)
        return -EINVAL;
    g->exiting = 1;
    bool propagate = body_result == -ECANCELED;
    if (body_result < 0 && !g->aborting)
        abort_group(g);
    wait_children(g, cur, &propagate);
    free_spares(g);
    reg_remove(g);
    g->magic = WEFT__G_DONE;
    /* The group cancelled its parent only after a child failed, so errors follow below and
     * any other request stays counted: no cancellation is dropped here. */
    if (g->parent_cancelled && weft_task_uncancel(cur) == 0)
        propagate = false; /* the only request left was ours */
    weft_errgroup_t *eg = g->errors;
    weft_errgroup_t *body_nested = g->body_nested;
    g->errors = g->body_nested = NULL;
    if (eg != NULL && eg->n == 0 && !(body_result < 0 && body_result != -ECANCELED)) {
        weft_errgroup_release(eg); /* nothing failed: the reserved room goes unused */
        eg = NULL;
    }
    if (propagate && eg == NULL) {
        weft_errgroup_release(body_nested);
        return -ECANCELED;
    }
    if (body_result < 0 && body_result != -ECANCELED) {
        weft_errgroup_t *nested = body_result == WEFT_EGROUP ? body_nested : NULL;
        if (nested == body_nested)
            body_nested = NULL;
        int added = weft__errgroup_add(&eg, NULL, body_result, nested); /* room was reserved */
        (void)added;
    }
    weft_errgroup_release(body_nested);
    if (eg == NULL)
        return body_result < 0 ? 0 : body_result;
    /* Errors win over an outside cancel, which stays pending for the parent's next suspension
     * point (asyncio 3.13 re-cancels to keep the count stable). */
    if (weft_task_cancelling(cur) > 0) {
        weft_task_uncancel(cur);
        weft_task_cancel(cur, NULL);
    }
    attach_nested(cur, eg);
    if (errors != NULL)
        *errors = eg;
    else
        weft_errgroup_release(eg);
    return WEFT_EGROUP;
}
