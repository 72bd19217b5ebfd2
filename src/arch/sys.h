/*
 * The system calls of the hot paths (a stream's recv() and send(), the loop's epoll_wait()) made
 * inline: each costs one system call either way, but libc's wrappers add a call and a return that
 * follow the kernel's own calls and so are mispredicted, plus the cancellation-point bookkeeping
 * (weft tasks are not cancelled by pthread_cancel). Same contract as the libc calls: -1 with
 * errno set on failure. Sanitizer builds keep libc's calls, which the sanitizers intercept to
 * check buffers and order.
 */
#ifndef WEFT_ARCH_SYS_H
#define WEFT_ARCH_SYS_H

#include "arch/cc.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define WEFT__HAVE_RAW_SYSCALL 1

/* One system call: the result, or -errno (errno untouched). Always inlined and free of memory
 * accesses, so code that may not call out or touch libc's state (a CLONE_VM child before its
 * exec, src/proc/clone.c) can use it in every build, sanitizers included. */
static inline __attribute__((always_inline)) long weft__syscall6(long nr, long a1, long a2,
                                                                 long a3, long a4, long a5,
                                                                 long a6)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a1;
    register long x1 __asm__("x1") = a2;
    register long x2 __asm__("x2") = a3;
    register long x3 __asm__("x3") = a4;
    register long x4 __asm__("x4") = a5;
    register long x5 __asm__("x5") = a6;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#endif
}
#endif

#if defined(WEFT__HAVE_RAW_SYSCALL) && !defined(WEFT_FIBER_SANITIZER)
#define WEFT__INLINE_SYSCALLS 1

static inline ssize_t weft__sys_ret(long r)
{
    if (__builtin_expect(r < 0 && r > -4096, 0)) {
        errno = (int)-r;
        return -1;
    }
    return (ssize_t)r;
}

static inline ssize_t weft__recv(int fd, void *buf, size_t n, int flags)
{
    return weft__sys_ret(weft__syscall6(SYS_recvfrom, fd, (long)buf, (long)n, flags, 0, 0));
}

static inline ssize_t weft__send(int fd, const void *buf, size_t n, int flags)
{
    return weft__sys_ret(weft__syscall6(SYS_sendto, fd, (long)buf, (long)n, flags, 0, 0));
}

static inline int weft__epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms)
{
    /* epoll_pwait with no mask is epoll_wait (which arm64 lacks). */
    return (int)weft__sys_ret(
        weft__syscall6(SYS_epoll_pwait, epfd, (long)evs, max, timeout_ms, 0, 8 /* sigset size */));
}
#else
static inline ssize_t weft__recv(int fd, void *buf, size_t n, int flags)
{
    return recv(fd, buf, n, flags);
}

static inline ssize_t weft__send(int fd, const void *buf, size_t n, int flags)
{
    return send(fd, buf, n, flags);
}

static inline int weft__epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms)
{
    return epoll_wait(epfd, evs, max, timeout_ms);
}
#endif

#endif /* WEFT_ARCH_SYS_H */
