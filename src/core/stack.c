/*
 * Task stacks. Default-size stacks are carved from slabs (one mmap for many stacks) and pooled
 * per loop; other sizes get a mapping of their own. Each slot is [guard page][stack][descriptor]:
 * the guard page is PROT_NONE while the process-wide guard budget lasts (each guard splits the
 * mapping, and vm.max_map_count is 65530 by default); past it the page stays mapped as a red zone
 * and an overflow is caught when a task suspends with its stack pointer in the stack's lowest
 * bytes. Untouched pages cost no memory: a pooled stack keeps its top page, and once the loop goes
 * idle every pooled stack beyond the hot few gets the rest returned with MADV_DONTNEED.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_VALGRIND 1
#endif
#endif

#define SLAB_BYTES   ((size_t)8 << 20) /* bytes per slab mapping */
#define DESC_BYTES   64                /* the descriptor at the top of each slot */

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

struct weft__slab {
    struct weft__slab *next;
    char *map;
    size_t len;
    uint32_t guards; /* guard pages it holds against the budget */
};

static atomic_long guard_budget = -1; /* guarded stacks still allowed; -1 = not read yet */

size_t weft__page_size(void)
{
    /* Read by every loop's thread: the first ones may all look it up, and store the same. */
    static atomic_size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

size_t weft__stack_round(size_t size)
{
    size_t page = weft__page_size();
    return (size + page - 1) / page * page;
}

/* The size `s` was asked for with (what weft_task_opts.stack_size and the loop's size name). */
size_t weft__stack_nominal(const struct weft__stack *s)
{
    return s->size + DESC_BYTES - weft__page_size();
}

/* Take one guard from the process-wide budget (WEFT_GUARDED_STACKS overrides 16384). */
static bool guard_take(void)
{
    long v = atomic_load(&guard_budget);
    if (v == -1) {
        const char *env = getenv("WEFT_GUARDED_STACKS");
        long init = env != NULL ? atol(env) : 16384;
        long expect = -1;
        atomic_compare_exchange_strong(&guard_budget, &expect, init < 0 ? 0 : init);
    }
    v = atomic_load(&guard_budget);
    while (v > 0) {
        if (atomic_compare_exchange_weak(&guard_budget, &v, v - 1))
            return true;
    }
    return false;
}

static void guard_give(long n)
{
    if (n > 0)
        atomic_fetch_add(&guard_budget, n);
}

/* Lay a stack out in the slot [slot, slot + page + size + DESC_BYTES). */
static struct weft__stack *slot_init(char *slot, size_t size, bool guard)
{
    size_t page = weft__page_size();
    bool guarded = guard && mprotect(slot, page, PROT_NONE) == 0;
    struct weft__stack *s = (struct weft__stack *)(slot + page + size);
    s->next = NULL;
    s->lo = slot + page;
    s->size = size;
    s->map = NULL;
    s->maplen = 0;
    s->guarded = guarded;
    s->dirty = 0;
#ifdef WEFT_VALGRIND
    VALGRIND_STACK_REGISTER(s->lo, (char *)s);
#endif
    return s;
}

static size_t slot_len(size_t size)
{
    return weft__page_size() + size + weft__page_size();
}

void weft__stackpool_init(struct weft__stackpool *p, size_t size)
{
    memset(p, 0, sizeof(*p));
    p->size = size;
}

static char *map_stack(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#ifdef MADV_NOHUGEPAGE
    madvise(m, len, MADV_NOHUGEPAGE);
#endif
    return m;
}

/*
 * The slot geometry puts the descriptor in the last page, so the usable stack is `size` bytes
 * below it and the top page holds both the descriptor and the first frames.
 */
static struct weft__stack *carve(struct weft__stackpool *p)
{
    size_t len = slot_len(p->size);
    if (p->left == 0) {
        uint32_t n = (uint32_t)(SLAB_BYTES / len);
        if (n == 0)
            n = 1;
        struct weft__slab *slab = weft__malloc(sizeof(*slab));
        if (slab == NULL)
            return NULL;
        slab->map = map_stack((size_t)n * len);
        if (slab->map == NULL) {
            weft__free(slab);
            return NULL;
        }
        slab->len = (size_t)n * len;
        slab->guards = 0;
        slab->next = p->slabs;
        p->slabs = slab;
        p->carve = slab->map;
        p->left = n;
    }
    bool guard = guard_take();
    struct weft__stack *s = slot_init(p->carve, p->size + weft__page_size() - DESC_BYTES, guard);
    if (guard && !s->guarded)
        guard_give(1);
    if (s->guarded)
        p->slabs->guards++;
    p->carve += len;
    p->left--;
    return s;
}

static struct weft__stack *own_stack(size_t size)
{
    size_t len = slot_len(size);
    char *m = map_stack(len);
    if (m == NULL)
        return NULL;
    bool guard = guard_take();
    struct weft__stack *s = slot_init(m, size + weft__page_size() - DESC_BYTES, guard);
    if (guard && !s->guarded)
        guard_give(1);
    s->map = m;
    s->maplen = len;
    return s;
}

static void own_unmap(struct weft__stack *s)
{
#ifdef WEFT_VALGRIND
    /* Valgrind only needs the id for deregistration; stacks are re-registered per mapping. */
#endif
    if (s->guarded)
        guard_give(1);
    munmap(s->map, s->maplen);
}

struct weft__stack *weft__stack_get(struct weft__stackpool *p, size_t size)
{
    struct weft__stack *s;
    if (size != p->size) {
        s = own_stack(size);
    } else if (p->hot != NULL) {
        s = p->hot;
        p->hot = s->next;
        p->nhot--;
    } else if (p->dirty != NULL) {
        s = p->dirty;
        p->dirty = s->next;
    } else if (p->clean != NULL) {
        s = p->clean;
        p->clean = s->next;
    } else {
        s = carve(p);
    }
    if (s == NULL)
        return NULL;
    s->next = NULL;
    s->dirty = 0;
#ifdef WEFT_ASAN
    /* A finished task can leave poisoned frames behind, and so can an earlier mapping at the
     * same addresses (ASan's shadow outlives munmap): every task starts on a clean stack. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    return s;
}

void weft__stack_put(struct weft__stackpool *p, struct weft__stack *s)
{
    if (s->map != NULL) {
        own_unmap(s);
        return;
    }
    if (p->nhot < WEFT__STACK_HOT_MAX) {
        s->next = p->hot;
        p->hot = s;
        p->nhot++;
        return;
    }
    s->dirty = 1;
    s->next = p->dirty;
    p->dirty = s;
}

void weft__stackpool_trim(struct weft__stackpool *p)
{
    size_t page = weft__page_size();
    while (p->dirty != NULL) {
        struct weft__stack *s = p->dirty;
        p->dirty = s->next;
        /* Everything below the page that holds the descriptor goes back to the OS. */
        char *top_page = (char *)((uintptr_t)s & ~(uintptr_t)(page - 1));
        if (top_page > s->lo)
            madvise(s->lo, (size_t)(top_page - s->lo), MADV_DONTNEED);
        s->dirty = 0;
        s->next = p->clean;
        p->clean = s;
    }
}

void weft__stackpool_fini(struct weft__stackpool *p)
{
    while (p->slabs != NULL) {
        struct weft__slab *slab = p->slabs;
        p->slabs = slab->next;
        guard_give(slab->guards);
        munmap(slab->map, slab->len);
        weft__free(slab);
    }
    p->hot = p->dirty = p->clean = NULL;
    p->nhot = 0;
    p->left = 0;
}


