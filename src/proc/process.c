/*
 * Child processes: spawned in a task with the asynchronous exec (clone.c: a clone sharing the
 * parent's memory, the task waiting for the exec's report on a pipe), else with posix_spawnp
 * (glibc's is vfork-style, CLONE_VFORK); either way the parent's memory is never copied and an
 * exec failure is the spawn's result. Every fd above 2 is closed in the child (close_range), each
 * child
 * watched through a pidfd in the loop (pidfd_open, readable once the child exits) and reaped with
 * waitid(P_PIDFD). No SIGCHLD handler, no waitpid(-1): children weft did not start are never
 * touched. Without pidfds (ENOSYS before Linux 5.3) the loop catches SIGCHLD through its signal
 * handlers (signal.c, chained to the handler installed before) and each waiter checks its own
 * child with waitid(P_PID). A child whose handle is released while it runs is handed to one
 * detached thread that waits for such orphans and reaps them: no zombies, whatever the loops do.
 */
#include "proc/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* A task waiting for a child in SIGCHLD mode (on its stack). */
struct weft__pwaiter {
    struct weft__list link;
    weft_task_t *task;
};

/* ---- pidfds ---- */

static atomic_int pidfd_mode; /* 0 unknown, 1 pidfds work, 2 SIGCHLD mode */

/* Whether this kernel has pidfds. WEFT_NO_PIDFD=1 forces the SIGCHLD mode (tests). */
static bool use_pidfd(void)
{
    int m = atomic_load_explicit(&pidfd_mode, memory_order_relaxed);
    if (m == 0) {
        const char *env = getenv("WEFT_NO_PIDFD");
        m = 2;
        if (env == NULL || strcmp(env, "1") != 0) {
            int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
            if (fd >= 0) {
                close(fd);
                m = 1;
            } else if (errno != ENOSYS) {
                m = 1; /* some other failure (EMFILE): pidfds exist */
            }
        }
        atomic_store(&pidfd_mode, m);
    }
    return m == 1;
}

/* The return code from waitid's result: the exit status, or -N for signal N. */
static int code_of(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return si->si_status;
    return -si->si_status;
}

/* ---- the orphan reaper: one detached thread for children released while running ---- */

struct orphan {
    int pidfd; /* -1: poll the pid with WNOHANG */
    pid_t pid;
};

static pthread_mutex_t olock = PTHREAD_MUTEX_INITIALIZER;
static struct orphan *orphans;
static size_t norphans, orphans_cap;
static int oevfd = -1; /* wakes the thread when an orphan is added */

/* Reap what exited; true if `o` is done with. */
static bool orphan_reap(const struct orphan *o)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int r = o->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)o->pidfd, &si, WEXITED | WNOHANG)
                          : waitid(P_PID, (id_t)o->pid, &si, WEXITED | WNOHANG);
    if (r < 0 && errno == EINTR)
        return false;
    if (r == 0 && si.si_pid == 0)
        return false;
    if (o->pidfd >= 0)
        close(o->pidfd);
    return true;
}

static void *reaper_main(void *arg)
{
    (void)arg;
    struct pollfd *pf = NULL;
    size_t pfcap = 0;
    for (;;) {
        pthread_mutex_lock(&olock);
        for (size_t i = 0; i < norphans;) {
            if (orphan_reap(&orphans[i]))
                orphans[i] = orphans[--norphans];
            else
                i++;
        }
        size_t n = 1;
        bool by_pid = false;
        if (pfcap < norphans + 1) {
            struct pollfd *np = weft__realloc(pf, (norphans + 1) * 2 * sizeof(*np));
            if (np != NULL) {
                pf = np;
                pfcap = (norphans + 1) * 2;
            }
        }
        if (pf != NULL) {
            pf[0] = (struct pollfd){.fd = oevfd, .events = POLLIN};
            for (size_t i = 0; i < norphans && n < pfcap; i++) {
                if (orphans[i].pidfd >= 0)
                    pf[n++] = (struct pollfd){.fd = orphans[i].pidfd, .events = POLLIN};
                else
                    by_pid = true;
            }
        }
        pthread_mutex_unlock(&olock);
        if (pf == NULL) {
            usleep(100000);
            continue;
        }
        /* Children without a pidfd are checked ten times a second. */
        poll(pf, n, by_pid ? 100 : -1);
        uint64_t v;
        if (read(oevfd, &v, sizeof(v)) < 0) {
            /* nothing to take */
        }
    }
    return NULL;
}

/* Hand a running child to the reaper thread (which then owns `pidfd`). */
static void orphan_add(int pidfd, pid_t pid)
{
    pthread_mutex_lock(&olock);
    if (oevfd < 0) {
        oevfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread takes no signals */
        int err = oevfd < 0 ? -1 : pthread_create(&th, &a, reaper_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&a);
        if (err != 0) {
            if (oevfd >= 0)
                close(oevfd);
            oevfd = -1;
        }
    }
    if (oevfd >= 0 && norphans == orphans_cap) {
        size_t cap = orphans_cap ? orphans_cap * 2 : 16;
        struct orphan *no = weft__realloc(orphans, cap * sizeof(*no));
        if (no != NULL) {
            orphans = no;
            orphans_cap = cap;
        }
    }
    if (oevfd < 0 || norphans == orphans_cap) {
        /* No thread or no memory: the child is left a zombie rather than waited for here. */
        pthread_mutex_unlock(&olock);
        if (pidfd >= 0)
            close(pidfd);
        return;
    }
    orphans[norphans++] = (struct orphan){.pidfd = pidfd, .pid = pid};
    uint64_t one = 1;
    if (write(oevfd, &one, sizeof(one)) < 0) {
        /* the counter is already non-zero */
    }
    pthread_mutex_unlock(&olock);
}

/* ---- SIGCHLD mode ---- */

static void proc_free(weft_proc_t *p);

/* A SIGCHLD came: wake every waiter of this loop's children (each checks its own child), and
 * reap the released ones that exited. */
static void on_sigchld(int sig, void *arg)
{
    (void)sig;
    weft_loop_t *l = arg;
    struct weft__list *n = l->procs.next;
    while (n != &l->procs) {
        weft_proc_t *p = weft__container_of(n, weft_proc_t, link);
        n = n->next;
        if (p->released) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0)
                continue;
            weft__list_remove(&p->link);
            proc_free(p);
            continue;
        }
        while (!weft__list_empty(&p->waiters)) {
            struct weft__pwaiter *w = weft__container_of(p->waiters.next, struct weft__pwaiter, link);
            weft__list_remove(&w->link);
            weft__wake(w->task, 0);
        }
    }
}

/* ---- spawning ---- */

static void proc_free(weft_proc_t *p)
{
    for (int i = 0; i < 3; i++)
        weft_stream_release(p->io[i]);
    if (p->pidfd >= 0) {
        if (p->loop != NULL)
            weft_close(p->pidfd);
        else
            close(p->pidfd);
    }
    weft__free(p);
}

/* An fd of ours that the child gets as `target` (0-2): moved above 2 when it is below, so that
 * setting up one of 0-2 in the child never overwrites another's source. */
static int lift(int fd, int *tmp)
{
    if (fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        return -errno;
    *tmp = nfd;
    return nfd;
}

struct spawn_fds {
    int parent[3]; /* our ends of the pipes, or -1 */
    int src[3];    /* what the child gets as 0-2: WEFT__SRC_* or an fd of ours (dup2 source) */
    int tmp[6];    /* fds to close after the spawn */
    int ntmp;
};

static void fds_close(struct spawn_fds *f, bool parents)
{
    for (int i = 0; i < f->ntmp; i++)
        close(f->tmp[i]);
    f->ntmp = 0;
    if (parents) {
        for (int i = 0; i < 3; i++) {
            if (f->parent[i] >= 0)
                close(f->parent[i]);
            f->parent[i] = -1;
        }
    }
}

/* Prepare stdin (0), stdout (1) and stderr (2) as the options say: f->src[i] is where the
 * child's fd i comes from (WEFT__SRC_* or an fd of ours above 2). */
static int fds_prepare(struct spawn_fds *f, const int mode[3], const int ufd[3])
{
    for (int i = 0; i < 3; i++) {
        f->parent[i] = -1;
        f->src[i] = WEFT__SRC_INHERIT;
    }
    f->ntmp = 0;
    for (int i = 0; i < 3; i++) {
        switch (mode[i]) {
        case WEFT_STDIO_INHERIT:
            break;
        case WEFT_STDIO_DEVNULL:
            f->src[i] = WEFT__SRC_DEVNULL;
            break;
        case WEFT_STDIO_PIPE: {
            int pfd[2];
            if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
            int ours = i == 0 ? pfd[1] : pfd[0], theirs = i == 0 ? pfd[0] : pfd[1];
            f->parent[i] = ours;
            f->tmp[f->ntmp++] = theirs;
            int t = -1;
            int src = lift(theirs, &t);
            if (src < 0)
                return src;
            if (t >= 0)
                f->tmp[f->ntmp++] = t;
            f->src[i] = src;
            break;
        }
        case WEFT_STDIO_FD: {
            if (ufd[i] < 0 || fcntl(ufd[i], F_GETFD) < 0)
                return -EINVAL;
            if (ufd[i] == i) {
                f->src[i] = i; /* its own: close-on-exec cleared */
                break;
            }
            int t = -1;
            int src = lift(ufd[i], &t);
            if (src < 0)
                return src;
            if (t >= 0)
                f->tmp[f->ntmp++] = t;
            f->src[i] = src;
            break;
        }
        case WEFT_STDIO_STDOUT:
            if (i != 2)
                return -EINVAL;
            f->src[i] = WEFT__SRC_STDOUT;
            break;
        default:
            return -EINVAL;
        }
    }
    return 0;
}

/* The vfork-style spawn (glibc's posix_spawnp): the loop's thread waits for the exec. */
static int spawn_posix(const struct weft__spawn *s, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int err = 0;
    for (int i = 0; i < 3 && err == 0; i++) {
        int src = s->src[i];
        if (src == WEFT__SRC_DEVNULL)
            err = -posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
        else if (src == WEFT__SRC_STDOUT)
            err = -posix_spawn_file_actions_adddup2(&fa, 1, i);
        else if (src >= 0) /* onto itself: glibc clears close-on-exec */
            err = -posix_spawn_file_actions_adddup2(&fa, src, i);
    }
    if (err == 0)
        err = -posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (err == 0 && s->cwd != NULL)
        err = -posix_spawn_file_actions_addchdir_np(&fa, s->cwd);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (s->setsid)
        flags |= POSIX_SPAWN_SETSID;
    else if (s->setpgid)
        flags |= POSIX_SPAWN_SETPGROUP; /* group 0: the child's own */
    sigset_t empty, def;
    sigemptyset(&empty);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    if (err == 0) {
        posix_spawnattr_setsigmask(&attr, &empty);
        posix_spawnattr_setsigdefault(&attr, &def);
        posix_spawnattr_setpgroup(&attr, 0);
        err = -posix_spawnattr_setflags(&attr, flags);
    }
    if (err == 0)
        err = -posix_spawnp(pid, s->argv[0], &fa, &attr, s->argv,
                            s->envp != NULL ? s->envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return err;
}

int weft_proc_spawn(weft_proc_t **out, char *const argv[], const struct weft_proc_opts *opts)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
        return -EINVAL;
    weft_loop_t *l = weft__tls_loop;
    if (l == NULL)
        return -EPERM;
    static const struct weft_proc_opts none;
    if (opts == NULL)
        opts = &none;
    if (opts->stdin_mode == WEFT_STDIO_STDOUT || opts->stdout_mode == WEFT_STDIO_STDOUT)
        return -EINVAL;
    bool pidfds = use_pidfd();
    if (!pidfds) {
        /* Catch SIGCHLD before the first child can exit. */
        int err = weft__signal_internal(l, SIGCHLD, on_sigchld, l, false);
        if (err < 0)
            return err;
    }
    weft_proc_t *p = weft__calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->pidfd = -1;
    p->refs = 1;
    weft__list_init(&p->waiters);

    struct spawn_fds f;
    const int mode[3] = {opts->stdin_mode, opts->stdout_mode, opts->stderr_mode};
    const int ufd[3] = {opts->stdin_fd, opts->stdout_fd, opts->stderr_fd};
    int err = fds_prepare(&f, mode, ufd);
    struct weft__spawn s = {.argv = argv,
                            .envp = opts->env,
                            .cwd = opts->cwd,
                            .src = {f.src[0], f.src[1], f.src[2]},
                            .setsid = opts->new_session,
                            .setpgid = !opts->new_session && opts->new_pgroup,
                            .pidfd = pidfds};
    pid_t pid = -1;
    int pidfd = -1;
    if (err == 0) {
        /* In a task: the asynchronous exec (the task waits for the exec, the loop does not). */
        weft_task_t *t = l->current;
        err = t != NULL ? weft__proc_clone(t, &s, p, &pid, &pidfd) : -EOPNOTSUPP;
        if (err == -EOPNOTSUPP)
            err = spawn_posix(&s, &pid);
    }
    fds_close(&f, err < 0);
    if (err < 0) {
        weft__free(p);
        return err;
    }
    p->pid = pid;
    p->group = opts->new_session || opts->new_pgroup;
    if (pidfds) {
        p->pidfd = pidfd >= 0 ? pidfd : (int)syscall(SYS_pidfd_open, pid, 0);
        if (p->pidfd < 0) {
            /* Out of fds: the child cannot be watched. Stop it rather than lose it. */
            err = -errno;
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fds_close(&f, true);
            weft__free(p);
            return err;
        }
    }
    p->loop = l;
    weft__list_append(&l->procs, &p->link);
    for (int i = 0; i < 3; i++) {
        if (f.parent[i] < 0)
            continue;
        int e = weft_stream_new(&p->io[i], f.parent[i], &opts->stream);
        if (e < 0) {
            close(f.parent[i]);
            p->io[i] = NULL;
            err = e;
        }
        f.parent[i] = -1;
    }
    if (err < 0) {
        weft_proc_kill(p);
        weft_proc_release(p);
        return err;
    }
    *out = p;
    return 0;
}

int weft_proc_spawn_shell(weft_proc_t **out, const char *cmd, const struct weft_proc_opts *opts)
{
    if (cmd == NULL) {
        if (out != NULL)
            *out = NULL;
        return -EINVAL;
    }
    char *const argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return weft_proc_spawn(out, argv, opts);
}

/* ---- state ---- */

int weft_proc_pid(const weft_proc_t *p)
{
    return p != NULL ? p->pid : -EINVAL;
}

weft_stream_t *weft_proc_stdin(const weft_proc_t *p)
{
    return p != NULL ? p->io[0] : NULL;
}

weft_stream_t *weft_proc_stdout(const weft_proc_t *p)
{
    return p != NULL ? p->io[1] : NULL;
}

weft_stream_t *weft_proc_stderr(const weft_proc_t *p)
{
    return p != NULL ? p->io[2] : NULL;
}

bool weft_proc_returncode(const weft_proc_t *p, int *returncode)
{
    if (p == NULL || !p->exited)
        return false;
    if (returncode != NULL)
        *returncode = p->returncode;
    return true;
}

/* The child reaped: record it, stop watching, wake the other waiters. */
static void set_exited(weft_proc_t *p, int code)
{
    p->exited = 1;
    p->zombie = 0;
    p->returncode = code;
    if (p->pidfd >= 0) {
        int fd = p->pidfd;
        p->pidfd = -1;
        if (p->loop != NULL)
            weft_close(fd); /* wakes the other waiters (-EBADF): they see `exited` */
        else
            close(fd);
    }
    while (!weft__list_empty(&p->waiters)) {
        struct weft__pwaiter *w = weft__container_of(p->waiters.next, struct weft__pwaiter, link);
        weft__list_remove(&w->link);
        weft__wake(w->task, 0);
    }
}

/* Check whether the child exited, reaping it when `reap`. 1 exited, 0 running. */
static int check_exit(weft_proc_t *p, bool reap)
{
    if (p->exited || (p->zombie && !reap))
        return 1;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int opt = WEXITED | WNOHANG | (reap ? 0 : WNOWAIT);
    int r;
    do {
        r = p->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, opt)
                          : waitid(P_PID, (id_t)p->pid, &si, opt);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        /* ECHILD: someone else reaped it (SIGCHLD ignored, a waitpid(-1) in the program). */
        set_exited(p, 255);
        return 1;
    }
    if (si.si_pid == 0)
        return 0;
    if (reap)
        set_exited(p, code_of(&si));
    else
        p->zombie = 1;
    return 1;
}

int weft__proc_wait(weft_proc_t *p, weft_task_t *t, int64_t deadline, bool reap)
{
    for (;;) {
        if (check_exit(p, reap))
            return 0;
        int r;
        if (p->pidfd >= 0) {
            struct weft__fdstate *st = weft__fd_watch(p->loop, p->pidfd, WEFT_READABLE, &r);
            if (st == NULL)
                return r;
            r = weft__fd_wait(t, st, WEFT_READABLE, deadline, NULL);
        } else {
            struct weft__pwaiter w = {.task = t};
            weft__list_append(&p->waiters, &w.link);
            r = weft__park(t, WEFT__P_PRIM, p, &w.link, deadline);
        }
        if (r == -ETIMEDOUT || r == -ECANCELED || r == -ENOMEM)
            return r;
    }
}

int weft_proc_wait_dl(weft_proc_t *p, int *returncode, int64_t deadline)
{
    if (p == NULL)
        return -EINVAL;
    if (!p->exited) {
        int err;
        weft_task_t *t = weft__task_check_current(&err);
        if (t == NULL)
            return err;
        if (p->loop != t->fut.loop)
            return -EINVAL;
        p->refs++;
        err = weft__proc_wait(p, t, deadline, true);
        weft_proc_release(p);
        if (err < 0)
            return err;
    }
    if (returncode != NULL)
        *returncode = p->returncode;
    return 0;
}

int weft_proc_wait(weft_proc_t *p, int *returncode)
{
    return weft_proc_wait_dl(p, returncode, WEFT_NO_DEADLINE);
}

/* ---- signals ---- */

int weft_proc_send_signal(weft_proc_t *p, int sig)
{
    if (p == NULL || sig < 0 || sig >= NSIG)
        return -EINVAL;
    if (p->exited)
        return 0; /* reaped: its pid may belong to another process now */
    int r = p->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0)
                          : kill(p->pid, sig); /* not reaped: the pid is still its own */
    if (r < 0 && errno != ESRCH)
        return -errno;
    return 0;
}

int weft_proc_terminate(weft_proc_t *p)
{
    return weft_proc_send_signal(p, SIGTERM);
}

int weft_proc_kill(weft_proc_t *p)
{
    return weft_proc_send_signal(p, SIGKILL);
}

int weft__proc_signal_group(weft_proc_t *p, int sig)
{
    if (p->exited)
        return 0;
    /* Not reaped, so the group id (the child's pid) cannot have been reused. */
    if (p->group && kill(-p->pid, sig) == 0)
        return 0;
    return weft_proc_send_signal(p, sig);
}

/* ---- releasing ---- */

void weft_proc_release(weft_proc_t *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    for (int i = 0; i < 3; i++) {
        weft_stream_release(p->io[i]);
        p->io[i] = NULL;
    }
    if (!p->exited)
        check_exit(p, true);
    if (p->exited) {
        if (p->loop != NULL)
            weft__list_remove(&p->link);
        proc_free(p);
        return;
    }
    if (p->pidfd < 0 && p->loop != NULL) {
        /* SIGCHLD mode: the loop reaps it at a SIGCHLD (on_sigchld). */
        p->released = 1;
        return;
    }
    /* Running: the reaper thread takes it (with a pidfd of its own: ours is in the loop). */
    int fd = -1;
    if (p->pidfd >= 0)
        fd = fcntl(p->pidfd, F_DUPFD_CLOEXEC, 3);
    orphan_add(fd, p->pid);
    if (p->loop != NULL)
        weft__list_remove(&p->link);
    proc_free(p);
}

/* The loop closes: its children stay valid handles; released ones go to the reaper thread. */
void weft__proc_loop_fini(weft_loop_t *l)
{
    while (!weft__list_empty(&l->procs)) {
        weft_proc_t *p = weft__container_of(l->procs.next, weft_proc_t, link);
        weft__list_remove(&p->link);
        if (p->spawning) {
            /* Its task waits for the exec and will never resume: end the child here. */
            weft__proc_clone_abandon(p);
            continue;
        }
        p->loop = NULL; /* its pidfd stays open, unwatched: the fd table goes with the loop */
        if (p->released) {
            orphan_add(-1, p->pid);
            weft__free(p);
        }
    }
}
