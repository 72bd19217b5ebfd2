/*
 * Error groups: what a TaskGroup hands back when children fail (C's ExceptionGroup). A
 * refcounted list of (child task, error, nested group) entries in the order the failures were
 * handled; an entry for the group's own body has no task.
 */
#include "conc/conc.h"

int weft__errgroup_reserve(weft_errgroup_t **egp, size_t room)
{
    weft_errgroup_t *eg = *egp;
    size_t used = eg != NULL ? eg->n : 0;
    size_t cap = eg != NULL ? eg->cap : 0;
    if (room > UINT32_MAX - used)
        return -ENOMEM;
    if (cap - used >= room)
        return 0;
    size_t want = cap ? cap * 2 : 4;
    while (want - used < room)
        want *= 2;
    if (want > UINT32_MAX)
        want = UINT32_MAX;
    /* Both parts exist before anything is stored: a failure leaves *egp as it was. */
    weft_errgroup_t *fresh = NULL;
    if (eg == NULL) {
        fresh = weft__calloc(1, sizeof(*fresh));
        if (fresh == NULL)
            return -ENOMEM;
        fresh->refs = 1;
    }
    weft_errgroup_t *g = eg != NULL ? eg : fresh;
    struct weft__errentry *e = weft__realloc(g->e, want * sizeof(*e));
    if (e == NULL) {
        weft__free(fresh);
        return -ENOMEM;
    }
    g->e = e;
    g->cap = (uint32_t)want;
    *egp = g;
    return 0;
}

int weft__errgroup_add(weft_errgroup_t **egp, weft_task_t *task, int error, weft_errgroup_t *nested)
{
    if (weft__errgroup_reserve(egp, 1) < 0) {
        weft_errgroup_release(nested);
        return -ENOMEM;
    }
    weft_errgroup_t *eg = *egp;
    eg->e[eg->n].task = weft_task_retain(task);
    eg->e[eg->n].error = error;
    eg->e[eg->n].nested = nested;
    eg->n++;
    return 0;
}

size_t weft_errgroup_count(const weft_errgroup_t *eg)
{
    return eg != NULL ? eg->n : 0;
}

int weft_errgroup_error(const weft_errgroup_t *eg, size_t i)
{
    if (eg == NULL || i >= eg->n)
        return -EINVAL;
    return eg->e[i].error;
}

weft_task_t *weft_errgroup_task(const weft_errgroup_t *eg, size_t i)
{
    if (eg == NULL || i >= eg->n)
        return NULL;
    return eg->e[i].task;
}

const weft_errgroup_t *weft_errgroup_nested(const weft_errgroup_t *eg, size_t i)
{
    if (eg == NULL || i >= eg->n)
        return NULL;
    return eg->e[i].nested;
}

bool weft_errgroup_contains(const weft_errgroup_t *eg, int err)
{
    if (eg == NULL)
        return false;
    for (uint32_t i = 0; i < eg->n; i++) {
        if (eg->e[i].error == err || weft_errgroup_contains(eg->e[i].nested, err))
            return true;
    }
    return false;
}

weft_errgroup_t *weft_errgroup_retain(weft_errgroup_t *eg)
{
    if (eg != NULL)
        eg->refs++;
    return eg;
}

void weft_errgroup_release(weft_errgroup_t *eg)
{
    if (eg == NULL || --eg->refs > 0)
        return;
    for (uint32_t i = 0; i < eg->n; i++) {
        weft_task_release(eg->e[i].task);
        weft_errgroup_release(eg->e[i].nested);
    }
    weft__free(eg->e);
    weft__free(eg);
}
