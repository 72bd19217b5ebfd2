/*
 * The allocator (alloc.c): every allocation weft makes goes through these, so that a program can
 * swap the allocator (weft_set_allocator) and tests can inject failures. A leaf below everything
 * else: the backends (src/io) use it without seeing the core.
 */
#ifndef WEFT_CORE_ALLOC_H
#define WEFT_CORE_ALLOC_H

#include <stddef.h>

void *weft__malloc(size_t n);
void *weft__calloc(size_t n, size_t size);
void *weft__realloc(void *p, size_t n);
void weft__free(void *p);
/* A block that starts on a cache line (64 bytes), through the same allocator; freed with
 * weft__free_line(). */
void *weft__malloc_line(size_t n);
void weft__free_line(void *p);
char *weft__strdup(const char *s);

#endif /* WEFT_CORE_ALLOC_H */
