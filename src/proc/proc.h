/*
 * Child processes, shared by process.c (spawning, watching, reaping) and communicate.c
 * (communicate and the run helper).
 */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include "internal.h"

#include <sys/types.h>

struct weft_proc {
    weft_loop_t *loop;       /* the loop that started it; NULL once that loop closed */
    struct weft__list link;  /* in loop->procs */
    uint32_t refs;           /* the owner's, plus one per wait in progress */
    pid_t pid;
    int pidfd;               /* -1 without pidfds (SIGCHLD mode) or once reaped */
    uint8_t exited;          /* reaped: returncode is final */
    uint8_t zombie;          /* exited, not reaped yet (seen with WNOWAIT) */
    uint8_t released;        /* SIGCHLD mode: the owner let go; the loop reaps and frees it */
    uint8_t group;           /* leads its own process group */
    uint8_t spawning;        /* clone.c: started, its exec not reported yet (in loop->procs) */
    void *spawn_block;       /* while spawning: the child's stack and what it reads */
    int spawn_efd;           /* while spawning: the report pipe's read end */
    int returncode;
    struct weft__list waiters; /* SIGCHLD mode: struct weft__pwaiter */
    weft_stream_t *io[3];      /* stdin, stdout, stderr when pipes */
};

/*
 * Wait until the child exited: reaped (`reap`, returncode set) or only known to have exited (a
 * zombie: its pid and process group stay reserved). Returns 0, -ETIMEDOUT, -ECANCELED, -ENOMEM.
 */
int weft__proc_wait(weft_proc_t *p, weft_task_t *t, int64_t deadline, bool reap);

/* Where the child's stdin, stdout or stderr come from (struct weft__spawn.src): one of these, or
 * an fd of the parent (above 2) that the child gets as 0, 1 or 2. */
#define WEFT__SRC_INHERIT (-1)
#define WEFT__SRC_DEVNULL (-2)
#define WEFT__SRC_STDOUT (-3) /* stderr only: a copy of the child's stdout */

/* A spawn's plan (weft_proc_spawn's, prepared before the child starts). */
struct weft__spawn {
    char *const *argv;
    char *const *envp; /* NULL: environ */
    const char *cwd;   /* or NULL */
    int src[3];
    bool setsid, setpgid;
    bool pidfd; /* return a pidfd of the child */
};

/*
 * The asynchronous exec (clone.c): start the child with clone(CLONE_VM) and suspend `t` until it
 * exec'd (or failed to), while the loop runs other tasks. Returns 0 with *pid and *pidfd (-1
 * unless s->pidfd); `p` (not yet in the loop's list) is listed in loop->procs while the task
 * waits, so that a loop closed meanwhile ends the child; a failure before or at the exec (-ENOENT, -EACCES, ...) with no child left;
 * -ECANCELED (the child killed and reaped); or -EOPNOTSUPP: not available here (use
 * posix_spawn).
 */
int weft__proc_clone(weft_task_t *t, const struct weft__spawn *s, weft_proc_t *p, pid_t *pid,
                     int *pidfd);

/* The loop closes under a task waiting for its child's exec: kill and reap the child, free its
 * stack, close the report pipe, free `p` (the task never resumes). */
void weft__proc_clone_abandon(weft_proc_t *p);

/* Signal the child's process group if it leads one, else the child, unless it was reaped. */
int weft__proc_signal_group(weft_proc_t *p, int sig);

#endif /* WEFT_PROC_H */
