/*
 * Every allocation weft makes goes through these wrappers, so a program can swap the allocator
 * (weft_set_allocator) and tests can inject failures.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

int weft_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                       void (*free_fn)(void *))
{
    if (malloc_fn == NULL || realloc_fn == NULL || free_fn == NULL)
        return -EINVAL;
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_free = free_fn;
    return 0;
}

void *weft__malloc(size_t n)
{
    return alloc_malloc(n);
}

void *weft__calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = alloc_malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

void *weft__realloc(void *p, size_t n)
{
    return alloc_realloc(p, n);
}

void weft__free(void *p)
{
    alloc_free(p);
}

/* What the allocator returned sits in the word just before the line-aligned block. */
void *weft__malloc_line(size_t n)
{
    if (n > SIZE_MAX - 64 - sizeof(void *))
        return NULL;
    char *raw = alloc_malloc(n + 64 + sizeof(void *));
    if (raw == NULL)
        return NULL;
    void **p = (void **)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    p[-1] = raw;
    return p;
}

void weft__free_line(void *p)
{
    if (p != NULL)
        alloc_free(((void **)p)[-1]);
}

char *weft__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = weft__malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}
