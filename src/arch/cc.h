/*
 * What every translation unit needs before any system header: _GNU_SOURCE (set only here), the
 * sanitizer a build runs under, branch hints. No declarations of weft's own: the backends
 * (src/io) include this and nothing of the core's.
 */
#ifndef WEFT_ARCH_CC_H
#define WEFT_ARCH_CC_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

/* Sanitizers that must be told about every stack switch: tasks then always switch through the
 * loop, where the annotations are made. */
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define WEFT_FIBER_SANITIZER 1
#endif

#define WEFT__LIKELY(x)   __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)

#define weft__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif /* WEFT_ARCH_CC_H */
