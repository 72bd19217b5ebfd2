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
    int returncode;
    struct weft__list waiters; /* SIGCHLD mode: struct weft__pwaiter */
    weft_stream_t *io[3];      /* stdin, stdout, stderr when pipes */
};

/*
 * Wait until the child exited: reaped (`reap`, returncode set) or only known to have exited (a
 * zombie: its pid and process group stay reserved). Returns 0, -ETIMEDOUT, -ECANCELED, -ENOMEM.
 */
int weft__proc_wait(weft_proc_t *p, weft_task_t *t, int64_t deadline, bool reap);

/* Signal the child's process group if it leads one, else the child, unless it was reaped. */
int weft__proc_signal_group(weft_proc_t *p, int sig);

#endif /* WEFT_PROC_H */
