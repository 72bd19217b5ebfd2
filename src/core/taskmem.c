/*
 * Task memory. Task structs are carved from chunks the loop owns and recycled through a LIFO free
 * list, so a spawn makes no allocator call and a task costs its struct and nothing more (a first
 * touch of a page costs more than all the rest of a spawn). Chunks grow geometrically, so a small
 * program holds little. Memory goes back only when the loop closes; a handle may outlive its loop,
 * so the chunks it lies in are kept until the last such handle is released.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Memory per task is time (a page first touched costs more than a spawn): keep a task small. */
#ifndef WEFT_TSAN
_Static_assert(sizeof(void *) != 8 || sizeof(weft_task_t) <= 128, "struct weft_task grew");
#endif

#define CHUNK_FIRST ((size_t)16 << 10)
#define CHUNK_MAX   ((size_t)2 << 20)
#define HDR_BYTES   ((sizeof(struct weft__tchunk) + 63) & ~(size_t)63) /* tasks start on a line */

static inline weft_task_t *slot(struct weft__tchunk *c, uint32_t i)
{
    return (weft_task_t *)((char *)c + HDR_BYTES + (size_t)i * sizeof(weft_task_t));
}

/*
 * A CHUNK_MAX chunk is mapped on a CHUNK_MAX boundary with huge pages asked for: one fault then
 * fills 2 MiB instead of 512 faults filling 4 KiB each (here a fault costs about 2 us, more than
 * ten spawns). Only a loop that already holds thousands of tasks gets one, so the memory a huge
 * page may hold beyond the tasks is small beside theirs. (This bypasses weft_set_allocator, as
 * stacks do: an allocator cannot promise the alignment.)
 */
static struct weft__tchunk *chunk_map(size_t bytes)
{
    size_t len = bytes * 2;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *c = (char *)(((uintptr_t)m + bytes - 1) & ~(uintptr_t)(bytes - 1));
    if (c > m)
        munmap(m, (size_t)(c - m));
    if (c + bytes < m + len)
        munmap(c + bytes, (size_t)(m + len - (c + bytes)));
#ifdef MADV_HUGEPAGE
    madvise(c, bytes, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    /* Fault the chunk in with one call: when no huge page is free, its 512 small pages cost one
     * system call instead of 512 faults (the chunk fills up as tasks are spawned anyway). Kernels
     * before 5.14 refuse it; the pages then fault one by one. */
    madvise(c, bytes, MADV_POPULATE_WRITE);
#endif
    return (struct weft__tchunk *)c;
}

static void chunk_free(struct weft__tchunk *c)
{
    if (c->mapped)
        munmap(c, c->bytes);
    else
        weft__free_line(c);
}

/* The free list and the newest chunk are used up: add a chunk and carve its first slot. */
weft_task_t *weft__task_mem_grow(weft_loop_t *l)
{
    size_t bytes = l->tchunk_next != 0 ? l->tchunk_next : CHUNK_FIRST;
    bool mapped = bytes == CHUNK_MAX;
    /* Chunks start on a cache line, so do their tasks (128 bytes each). */
    struct weft__tchunk *c = mapped ? chunk_map(bytes) : weft__malloc_line(bytes);
    if (c == NULL)
        return NULL;
    c->bytes = bytes;
    c->carved = 1;
    c->mapped = mapped;
    c->next = l->tchunks;
    l->tchunks = c;
    l->tchunk_next = bytes < CHUNK_MAX ? bytes * 2 : CHUNK_MAX;
    uint32_t n = (uint32_t)((bytes - HDR_BYTES) / sizeof(weft_task_t));
    l->tcarve = (char *)slot(c, 1);
    l->tleft = n - 1;
#ifdef WEFT_ASAN
    ASAN_POISON_MEMORY_REGION(l->tcarve, (size_t)l->tleft * sizeof(weft_task_t));
#endif
    weft__task_rest(slot(c, 0));
    return slot(c, 0);
}

/* `t` was freed: back to its loop's free list, or to its orphaned chunks once the loop closed. */
void weft__task_mem_put(weft_task_t *t)
{
    weft_loop_t *l = t->fut.loop;
    if (l != NULL) {
        t->state = WEFT__T_FREE;
        t->free_next = l->tfree;
        l->tfree = t;
#ifdef WEFT_ASAN
        /* Keep the state byte readable: weft__task_mem_fini() reads it to tell free slots. */
        ASAN_POISON_MEMORY_REGION(&t->free_next, sizeof(*t) - offsetof(weft_task_t, free_next));
#endif
        return;
    }
    struct weft__orphans *o = t->orphans;
    if (o != NULL && atomic_fetch_sub(&o->live, 1) == 1) {
        while (o->chunks != NULL) {
            struct weft__tchunk *c = o->chunks;
            o->chunks = c->next;
            chunk_free(c);
        }
        weft__free(o);
    }
}

static inline bool live(const weft_task_t *t)
{
    return t->state != WEFT__T_DONE && t->state != WEFT__T_FREE;
}

/*
 * weft_all_tasks(): the tasks not done, in memory order (asyncio's is a set). Walking the slots
 * costs a pass over every slot the loop ever carved; in exchange a spawn links the task into no
 * list, and a task is 16 bytes smaller.
 */
size_t weft__task_mem_live(weft_loop_t *l, weft_task_t **out, size_t cap)
{
    size_t n = 0;
    for (struct weft__tchunk *c = l->tchunks; c != NULL && n < l->ntasks; c = c->next) {
        for (uint32_t i = 0; i < c->carved; i++) {
            weft_task_t *t = slot(c, i);
            if (live(t)) {
                if (n < cap)
                    out[n] = t;
                n++;
            }
        }
    }
    return n;
}

/* The loop closes: orphan every task not done. An orphan may free others (their slots turn free
 * as the walk goes); the chunks themselves stay until weft__task_mem_fini(). */
void weft__task_mem_orphan_all(weft_loop_t *l)
{
    for (struct weft__tchunk *c = l->tchunks; c != NULL && l->ntasks > 0; c = c->next) {
        for (uint32_t i = 0; i < c->carved; i++) {
            weft_task_t *t = slot(c, i);
            if (live(t))
                weft__task_orphan(t);
        }
    }
}

/*
 * The loop closes: every task is done, so a slot not free is a handle somebody still holds. Those
 * handles are told (fut.loop NULL: no loop to go back to) and keep their chunks alive.
 */
void weft__task_mem_fini(weft_loop_t *l)
{
    size_t live = 0;
    for (struct weft__tchunk *c = l->tchunks; c != NULL; c = c->next) {
#ifdef WEFT_ASAN
        ASAN_UNPOISON_MEMORY_REGION(c, c->bytes);
#endif
        for (uint32_t i = 0; i < c->carved; i++)
            live += slot(c, i)->state != WEFT__T_FREE;
    }
    struct weft__orphans *o = NULL;
    if (live > 0) {
        /* Without memory to track them the chunks stay allocated: a leak, not a dangling handle. */
        o = weft__malloc(sizeof(*o));
        if (o != NULL) {
            atomic_init(&o->live, live);
            o->chunks = l->tchunks;
        }
        for (struct weft__tchunk *c = l->tchunks; c != NULL; c = c->next) {
            for (uint32_t i = 0; i < c->carved; i++) {
                weft_task_t *t = slot(c, i);
                if (t->state != WEFT__T_FREE) {
                    t->fut.loop = NULL;
                    t->orphans = o;
                }
            }
        }
    } else {
        while (l->tchunks != NULL) {
            struct weft__tchunk *c = l->tchunks;
            l->tchunks = c->next;
            chunk_free(c);
        }
    }
    l->tchunks = NULL;
    l->tfree = NULL;
    l->tcarve = NULL;
    l->tleft = 0;
}
