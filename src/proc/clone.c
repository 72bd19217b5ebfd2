/*
 * The asynchronous exec: a child started with a raw clone(CLONE_VM) without CLONE_VFORK, so the
 * loop's thread goes on at once while the child sets itself up and execs on another core, and
 * the spawning task waits for the exec's outcome on a close-on-exec pipe (end of file: the exec
 * happened; four bytes: its errno). Several tasks' children then exec at the same time, which a
 * vfork-style posix_spawn (the loop suspended until each child exec'd) cannot do.
 *
 * The child shares the parent's memory and runs beside it, so it writes nothing but its own
 * stack (a block allocated here, freed only once the child exec'd or exited): raw system calls
 * only (libc's wrappers set errno, which lives in the parent thread's TLS), no malloc, no
 * stdio, no locks, no sanitizer instrumentation. Everything it reads (argv, the environment, the
 * PATH list, cwd, the stdio plan) is prepared before the clone and stays alive until the report.
 * All signals are blocked in the parent around the clone; the child resets every signal that has
 * a handler to SIG_DFL (and SIGPIPE) before it unblocks its mask, as glibc's posix_spawn does.
 * It then does what posix_spawn's attributes and file actions did (new session or process group,
 * stdio, every other fd closed, cwd) and searches PATH by trying execve on each prefix with
 * posix_spawnp's rules (ENOENT, EACCES, ENOTDIR... go on; EACCES reported if nothing ran).
 *
 * Only on Linux x86_64 and aarch64 (the clone and system call helpers are inline assembly);
 * elsewhere, under valgrind (which refuses such a clone), under qemu-user (EINVAL), without
 * close_range, or with WEFT_SPAWN=posix_spawn, weft__proc_clone() says -EOPNOTSUPP and the caller
 * uses posix_spawnp.
 */
#include "proc/proc.h"

#include "arch/sys.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

#if defined(WEFT__HAVE_RAW_SYSCALL) && defined(SYS_clone)
#define WEFT_HAVE_CLONE_SPAWN 1
#endif

#ifdef WEFT_HAVE_CLONE_SPAWN

#include <linux/sched.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The child's code runs on a stack the sanitizers do not know, in memory it shares with the
 * parent: none of it may be instrumented (a sanitizer's runtime writes its own state). */
#if defined(__clang__)
#define CHILD_ATTR                                                                                 \
    __attribute__((no_sanitize("address", "thread", "undefined", "memory"), no_stack_protector))
#else
#define CHILD_ATTR                                                                                 \
    __attribute__((no_sanitize_address, no_sanitize_thread, no_sanitize_undefined,                \
                   no_stack_protector))
#endif
#define CHILD_FN static CHILD_ATTR
#define CHILD_INLINE static inline __attribute__((always_inline)) CHILD_ATTR

/* ---- raw system calls (arch/sys.h): the result, or -errno; errno untouched ---- */

#define sc6 weft__syscall6
#define sc0(n) sc6((n), 0, 0, 0, 0, 0, 0)
#define sc1(n, a) sc6((n), (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sc4(n, a, b, c, d) sc6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/*
 * clone(flags, stack) that runs fn(arg) on `stack` (16-byte aligned top) in the child and then
 * exits it with fn's result; the parent gets the child's pid or -errno (and, with CLONE_PIDFD,
 * the pidfd in *pidfd). The child's path never returns into C code of the parent's frames.
 */
static __attribute__((noinline)) CHILD_ATTR long clone_run(unsigned long flags, void *stack,
                                                           int *pidfd, int (*fn)(void *),
                                                           void *arg)
{
#if defined(__x86_64__)
    /* clone(flags, stack, parent_tid, child_tid, tls); fn and arg in registers the system call
     * keeps (r12, r13: callee-saved, so the compiler restores them for the parent). */
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    register void *r12 __asm__("r12") = (void *)fn;
    register void *r13 __asm__("r13") = arg;
    long ret;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov $60, %%eax\n\t" /* SYS_exit */
                     "syscall\n\t"
                     "hlt\n"
                     "1:"
                     : "=a"(ret)
                     : "a"((long)SYS_clone), "D"(flags), "S"(stack), "d"(pidfd), "r"(r10),
                       "r"(r8), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    /* clone(flags, stack, parent_tid, tls, child_tid); fn and arg in x9 and x10 (svc keeps
     * every register but x0). */
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = (long)flags;
    register long x1 __asm__("x1") = (long)stack;
    register long x2 __asm__("x2") = (long)pidfd;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = 0;
    register void *x9 __asm__("x9") = (void *)fn;
    register void *x10 __asm__("x10") = arg;
    __asm__ volatile("svc #0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x29, xzr\n\t"
                     "mov x30, xzr\n\t"
                     "mov x0, x10\n\t"
                     "blr x9\n\t"
                     "mov x8, #93\n\t" /* SYS_exit */
                     "svc #0\n\t"
                     "brk #0\n"
                     "1:"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x9), "r"(x10)
                     : "x30", "memory");
    return x0;
#endif
}

/* The kernel's struct sigaction (x86_64 and aarch64 both have sa_restorer). */
struct ksigaction {
    unsigned long handler;
    unsigned long flags;
    unsigned long restorer;
    unsigned long mask;
};

#define KSIGSET_SIZE 8
#define KNSIG 64

/* What the child reads (prepared by the parent, alive until the report) and its stack. */
struct child {
    char *const *argv;
    char *const *envp;
    const char *file;   /* argv[0] */
    const char *path;   /* the PATH list to search, or NULL: file names a path */
    const char *cwd;    /* or NULL */
    int src[3];         /* WEFT__SRC_* or the fd to dup onto 0-2 */
    int errfd;          /* the report pipe's write end (above 2) */
    uint8_t setsid, setpgid;
};

#define CHILD_STACK (32 * 1024) /* as glibc's posix_spawn: room for the compiler's stack checks */
#define CHILD_PATHBUF (PATH_MAX + NAME_MAX + 2)

/* An empty asm in a loop keeps the compiler from turning it into a call to strlen or memcpy
 * (through the PLT: the dynamic linker's lazy binding writes memory and takes locks). */
#define NO_LIBCALL() __asm__ volatile("" ::: "memory")

CHILD_INLINE size_t c_strlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        NO_LIBCALL();
        n++;
    }
    return n;
}

/* Exec with posix_spawnp's search: the -errno to report. */
CHILD_INLINE long child_exec(const struct child *c)
{
    if (c->path == NULL)
        return sc3(SYS_execve, c->file, c->argv, c->envp);
    char buf[CHILD_PATHBUF];
    size_t flen = c_strlen(c->file);
    bool eacces = false;
    long err = -ENOENT;
    const char *p = c->path;
    for (;;) {
        const char *e = p;
        while (*e != '\0' && *e != ':') {
            NO_LIBCALL();
            e++;
        }
        size_t dlen = (size_t)(e - p);
        if (dlen < PATH_MAX) {
            size_t n = 0;
            for (size_t i = 0; i < dlen; i++) {
                NO_LIBCALL();
                buf[n++] = p[i];
            }
            if (dlen > 0)
                buf[n++] = '/'; /* an empty entry: the current directory */
            for (size_t i = 0; i <= flen; i++) {
                NO_LIBCALL();
                buf[n++] = c->file[i];
            }
            err = sc3(SYS_execve, buf, c->argv, c->envp);
            switch (err) {
            case -EACCES:
                eacces = true;
                break;
            case -ENOENT:
            case -ESTALE:
            case -ENOTDIR:
            case -ENODEV:
            case -ETIMEDOUT:
                break;
            default:
                return err; /* found, but it could not be run */
            }
        }
        if (*e == '\0')
            break;
        p = e + 1;
    }
    return eacces ? -EACCES : err;
}

/* The child, between the clone and the exec. Returns (exits with) 127 after a failure. */
CHILD_FN int child_main(void *arg)
{
    const struct child *c = arg;
    long r = 0;
    /* Signals: no handler of the parent's may run here (it would write the parent's memory). */
    for (int sig = 1; sig <= KNSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct ksigaction sa;
        if (sig != SIGPIPE) {
            if (sc4(SYS_rt_sigaction, sig, 0, &sa, KSIGSET_SIZE) < 0)
                continue;
            if (sa.handler == (unsigned long)SIG_DFL || sa.handler == (unsigned long)SIG_IGN)
                continue;
        }
        sa.handler = (unsigned long)SIG_DFL;
        sa.flags = 0;
        sa.restorer = 0;
        sa.mask = 0;
        sc4(SYS_rt_sigaction, sig, &sa, 0, KSIGSET_SIZE);
    }
    if (c->setsid)
        r = sc0(SYS_setsid);
    else if (c->setpgid)
        r = sc2(SYS_setpgid, 0, 0);
    if (r < 0)
        goto fail;
    for (int i = 0; i < 3; i++) {
        int s = c->src[i];
        if (s == WEFT__SRC_INHERIT)
            continue;
        if (s == WEFT__SRC_DEVNULL) {
            sc1(SYS_close, i); /* as posix_spawn's open action: the target first */
            r = sc4(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR, 0);
            if (r < 0)
                goto fail;
            if (r != i) {
                int fd = (int)r;
                r = sc3(SYS_dup3, fd, i, 0);
                if (r < 0)
                    goto fail;
                sc1(SYS_close, fd);
            }
            continue;
        }
        if (s == WEFT__SRC_STDOUT)
            s = 1;
        if (s == i)
            r = sc3(SYS_fcntl, i, F_SETFD, 0); /* its own: only clear close-on-exec */
        else
            r = sc3(SYS_dup3, s, i, 0);
        if (r < 0)
            goto fail;
    }
    /* Every other fd, but the report pipe (close-on-exec: the exec closes it). */
    if (c->errfd > 3)
        r = sc3(SYS_close_range, 3, c->errfd - 1, 0);
    if (r >= 0)
        r = sc3(SYS_close_range, c->errfd + 1, ~0U, 0);
    if (r < 0)
        goto fail;
    if (c->cwd != NULL) {
        r = sc1(SYS_chdir, c->cwd);
        if (r < 0)
            goto fail;
    }
    unsigned long none = 0;
    sc4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, KSIGSET_SIZE);
    r = child_exec(c);
fail:;
    int code = r < 0 ? (int)-r : ECHILD;
    sc3(SYS_write, c->errfd, &code, sizeof(code));
    return 127;
}

/* ---- the parent ---- */

static atomic_int clone_mode; /* 0 unknown, 1 usable, 2 not */

static bool clone_usable(void)
{
    int m = atomic_load_explicit(&clone_mode, memory_order_relaxed);
    if (m == 0) {
        m = 1;
        const char *env = getenv("WEFT_SPAWN");
        const char *pre = getenv("LD_PRELOAD");
        if (env != NULL && strcmp(env, "posix_spawn") == 0)
            m = 2;
        else if (pre != NULL && strstr(pre, "vgpreload") != NULL)
            m = 2; /* valgrind aborts on a clone that is neither a thread nor a fork */
        else if (syscall(SYS_close_range, INT_MAX, INT_MAX, 0) != 0)
            m = 2; /* before Linux 5.9 */
        atomic_store(&clone_mode, m);
    }
    return m == 1;
}

/* Reap the child (it is exiting or killed): after this its stack is free. */
static void reap_now(pid_t pid, int pidfd)
{
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof(si));
        r = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED)
                       : waitid(P_PID, (id_t)pid, &si, WEXITED);
    } while (r < 0 && errno == EINTR);
}

void weft__proc_clone_abandon(weft_proc_t *p)
{
    kill(p->pid, SIGKILL);
    reap_now(p->pid, p->pidfd);
    if (p->pidfd >= 0)
        close(p->pidfd);
    close(p->spawn_efd);
    weft__free(p->spawn_block);
    weft__free(p);
}

int weft__proc_clone(weft_task_t *t, const struct weft__spawn *s, weft_proc_t *p, pid_t *pid,
                     int *pidfd)
{
    *pid = -1;
    *pidfd = -1;
    if (!clone_usable())
        return -EOPNOTSUPP;
    const char *file = s->argv[0];
    const char *path = NULL;
    size_t pathlen = 0;
    if (strchr(file, '/') == NULL) {
        if (strnlen(file, NAME_MAX + 1) > NAME_MAX)
            return -ENAMETOOLONG;
        path = getenv("PATH");
        if (path == NULL)
            path = "/bin:/usr/bin";
        pathlen = strlen(path) + 1;
    }
    /* The environment's pointer array is copied: another task may setenv() while the child
     * execs (glibc frees an outgrown array; it never frees the strings). So is PATH. */
    char *const *envp = s->envp;
    size_t nenv = 0;
    if (envp == NULL) {
        if (environ != NULL)
            while (environ[nenv] != NULL)
                nenv++;
    }
    size_t envsz = envp == NULL ? (nenv + 1) * sizeof(char *) : 0;
    size_t size = CHILD_STACK + sizeof(struct child) + envsz + pathlen;
    char *block = weft__malloc(size);
    if (block == NULL)
        return -ENOMEM;
    struct child *c = (struct child *)(block + CHILD_STACK);
    char *stack_top = (char *)((uintptr_t)(block + CHILD_STACK) & ~(uintptr_t)15);
    char **envcopy = (char **)(c + 1);
    if (envp == NULL) {
        for (size_t i = 0; i < nenv; i++)
            envcopy[i] = environ[i];
        envcopy[nenv] = NULL;
        envp = envcopy;
    }
    char *pathcopy = NULL;
    if (path != NULL) {
        pathcopy = (char *)envcopy + envsz;
        memcpy(pathcopy, path, pathlen);
    }
    *c = (struct child){.argv = s->argv,
                        .envp = envp,
                        .file = file,
                        .path = pathcopy,
                        .cwd = s->cwd,
                        .src = {s->src[0], s->src[1], s->src[2]},
                        .setsid = s->setsid,
                        .setpgid = s->setpgid};

    int efd[2];
    if (pipe2(efd, O_CLOEXEC | O_NONBLOCK) < 0) {
        int err = -errno;
        weft__free(block);
        return err;
    }
    if (efd[1] <= 2) { /* 0-2 are the child's stdio: keep the report pipe clear of them */
        int nfd = fcntl(efd[1], F_DUPFD_CLOEXEC, 3);
        if (nfd < 0) {
            int err = -errno;
            close(efd[0]);
            close(efd[1]);
            weft__free(block);
            return err;
        }
        close(efd[1]);
        efd[1] = nfd;
    }
    c->errfd = efd[1];

    unsigned long all = ~0UL, old = 0;
    int fd = -1;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, KSIGSET_SIZE);
    long r = clone_run(CLONE_VM | SIGCHLD | (s->pidfd ? CLONE_PIDFD : 0), stack_top, &fd,
                       child_main, c);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, KSIGSET_SIZE);
    close(efd[1]);
    if (r < 0) {
        close(efd[0]);
        weft__free(block);
        if (r == -EINVAL || r == -ENOSYS || r == -EPERM) {
            atomic_store(&clone_mode, 2); /* qemu-user, a seccomp filter: posix_spawn it is */
            return -EOPNOTSUPP;
        }
        return (int)r;
    }
    pid_t child = (pid_t)r;
    if (!s->pidfd)
        fd = -1;

    /* Wait for the report: end of file once the exec closed the child's end, or its errno.
     * The task always suspends first (the exec takes a while; the loop runs meanwhile). */
    weft_loop_t *l = t->fut.loop;
    p->pid = child;
    p->pidfd = fd;
    p->spawning = 1;
    p->spawn_block = block;
    p->spawn_efd = efd[0];
    weft__list_append(&l->procs, &p->link);
    int err = 0;
    struct weft__fdstate *st = weft__fd_watch(l, efd[0], WEFT_READABLE, &err);
    for (;;) {
        if (st == NULL) {
            err = err < 0 ? err : -ENOMEM;
        } else {
            int w = weft__fd_wait(t, st, WEFT_READABLE, WEFT_NO_DEADLINE, NULL);
            if (w < 0) {
                err = w;
            } else {
                int code = 0;
                ssize_t n = read(efd[0], &code, sizeof(code));
                if (n == 0)
                    break; /* exec'd */
                if (n == (ssize_t)sizeof(code)) {
                    err = code > 0 ? -code : -ECHILD;
                    reap_now(child, fd); /* it exits at once (127) */
                    break;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                err = n < 0 ? -errno : -EIO;
            }
        }
        /* Cancelled (or no way to wait): the child must not outlive the call, nor its stack
         * the child. SIGKILL ends it right after its exec, or before it; then reap it. */
        kill(child, SIGKILL);
        reap_now(child, fd);
        break;
    }
    weft__list_remove(&p->link);
    p->spawning = 0;
    p->spawn_block = NULL;
    p->pid = 0;
    p->pidfd = -1;
    if (st != NULL)
        weft_close(efd[0]);
    else
        close(efd[0]);
    weft__free(block);
    if (err < 0) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    *pid = child;
    *pidfd = fd;
    return 0;
}

#else /* !WEFT_HAVE_CLONE_SPAWN */

void weft__proc_clone_abandon(weft_proc_t *p)
{
    (void)p;
}

int weft__proc_clone(weft_task_t *t, const struct weft__spawn *s, weft_proc_t *p, pid_t *pid,
                     int *pidfd)
{
    (void)t;
    (void)s;
    (void)p;
    *pid = -1;
    *pidfd = -1;
    return -EOPNOTSUPP;
}

#endif
