/*
 * Compact tasks: many mostly-idle tasks in little memory. Compact tasks of a loop all run on one
 * shared stack. The task whose frames are on it (loop->cowner) keeps them there while it sleeps;
 * only when another compact task needs the stack are the owner's frames, [saved sp, top), copied
 * out to a heap image of exactly that size, and the newcomer's image copied in at the same
 * addresses (so pointers into the frames stay right while the task runs). A sleeping compact
 * task thus costs its task struct plus the few hundred bytes its suspended frames use.
 *
 * The copies are made on another stack: a compact task never switches straight to another
 * compact task (task.c goes through the loop instead), so the stack being rewritten is never the
 * one running.
 *
 * While a task's image is out, nothing may point into its frames: its storage is another task's
 * now. The park's record is the exception weft handles (see follow()): with it, its wait-list
 * node (every weft wait has at most one, see weft__park) and its deadline's timer node. They are
 * moved with the image, their neighbours (or heap slot) re-pointed at the copy, and moved back on
 * the way in. Anything else the task lends out while it waits (a timeout scope, a TaskGroup, a
 * buffer another task writes) must live off the stack; weft refuses timers and scopes on the
 * shared stack with -EINVAL (docs/core.md, "Compact tasks").
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define WEFT_MEMCHECK 1
#endif
#endif

static inline char *stack_top(const struct weft__stack *s)
{
    return s->lo + s->size;
}

/* The list node at `from` moved to `to` (a byte copy): point its neighbours at the copy. */
static void relink(struct weft__list *from, struct weft__list *to)
{
    if (from->next == from)
        weft__list_init(to);
    else
        weft__list_moved(to);
}

/*
 * `t`'s frames were copied from [from, from + len) to `to`. Its park record (in weft__park's
 * frame) follows, and so do the two things outside the frames that point into it: the wait list
 * holding its node, and the timer heap or lane holding its deadline.
 */
static void follow(weft_loop_t *l, weft_task_t *t, const char *from, size_t len, char *to)
{
    struct weft__park *pk = t->park;
    if (pk == NULL || (const char *)pk < from || (const char *)pk >= from + len)
        return;
    pk = (struct weft__park *)(to + ((const char *)pk - from));
    t->park = pk;
    struct weft__list *link = pk->link;
    if (link != NULL && (const char *)link >= from && (const char *)link < from + len) {
        struct weft__list *moved = (struct weft__list *)(to + ((const char *)link - from));
        relink(link, moved);
        pk->link = moved;
    }
    weft__timer_moved(l, &pk->timer.tn);
}

/* Copy the owner's frames out to its image. */
static void save(weft_loop_t *l, weft_task_t *o)
{
    char *sp = o->ctx;
    char *top = stack_top(l->cstack);
    size_t len = (size_t)(top - sp);
    struct weft__tcold *im = o->cold;
    if (im == NULL || len > im->cap) {
        size_t cap = (len + 15) & ~(size_t)15;
        struct weft__tcold *img = weft__malloc(sizeof(*img) + cap);
        if (img == NULL) {
            /* Nowhere to put the frames and no caller to tell: as fatal as a stack overflow. */
            fprintf(stderr, "weft: out of memory saving the stack of compact task %s\n",
                    weft_task_name(o));
            abort();
        }
        /* The frames are the task's cold part's tail: a bigger one takes the rest along. */
        img->name = im != NULL ? im->name : NULL;
        img->cancel_msg = im != NULL ? im->cancel_msg : NULL;
        img->unstarted = NULL; /* it has started */
        weft__free(im);
        im = o->cold = img;
        im->cap = (uint32_t)cap;
    }
#ifdef WEFT_ASAN
    /* The frames hold ASan's poisoned redzones: make them readable (they are not re-poisoned
     * when the frames come back, which only loses checking on those frames). */
    ASAN_UNPOISON_MEMORY_REGION(sp, len);
#endif
    memcpy(im->bytes, sp, len);
    im->len = (uint32_t)len;
    follow(l, o, sp, len, im->bytes);
}

/* Copy `t`'s image back to where its frames were. */
static void restore(weft_loop_t *l, weft_task_t *t)
{
    char *sp = t->ctx;
    const struct weft__tcold *im = t->cold;
    size_t len = im->len;
#ifdef WEFT_ASAN
    ASAN_UNPOISON_MEMORY_REGION(sp, len);
#endif
#ifdef WEFT_MEMCHECK
    /* Memcheck marked what lies below the last task's stack pointer as gone. */
    VALGRIND_MAKE_MEM_UNDEFINED(sp, len);
#endif
    memcpy(sp, im->bytes, len);
    follow(l, t, im->bytes, len, sp);
}

/*
 * Put compact task `t`'s frames on the shared stack (a new task gets its first frame there).
 * Called on a stack other than the shared one. Returns 0 or -ENOMEM (no shared stack).
 */
int weft__compact_enter(weft_loop_t *l, weft_task_t *t)
{
    if (l->cowner == t)
        return 0;
    if (l->cstack == NULL) {
        l->cstack = weft__stack_get(&l->stacks, l->stack_size);
        if (l->cstack == NULL)
            return -ENOMEM;
    }
    if (l->cowner != NULL)
        save(l, l->cowner);
    t->stack = l->cstack;
    t->stack_lo = weft__stack_tag(l->cstack);
    if (t->ctx == NULL)
        t->ctx = weft__ctx_make(stack_top(l->cstack), weft__task_entry);
    else
        restore(l, t);
    l->cowner = t;
    return 0;
}

/* `t` ended or is orphaned: its frames are garbage, wherever they are. */
void weft__compact_drop(weft_loop_t *l, weft_task_t *t)
{
    if (l->cowner == t)
        l->cowner = NULL;
    struct weft__tcold *c = t->cold;
    if (c != NULL && c->cap > 0) {
        if (c->name == NULL && c->cancel_msg == NULL) {
            weft__free(c);
            t->cold = NULL;
        } else {
            /* Keep the name and message (the handle may still ask), not the frames. */
            struct weft__tcold *small = weft__realloc(c, sizeof(*c));
            if (small != NULL)
                t->cold = c = small;
            c->len = 0;
            c->cap = 0;
        }
    }
    t->stack = NULL;
}

/* The loop closes: every compact task is gone already. */
void weft__compact_fini(weft_loop_t *l)
{
    if (l->cstack != NULL) {
        weft__stack_put(&l->stacks, l->cstack);
        l->cstack = NULL;
    }
    l->cowner = NULL;
}
