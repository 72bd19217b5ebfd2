/*
 * echo_server: a TCP echo server (asyncio's start_server example). Every connection gets a task
 * that writes back what it reads, with drain() for backpressure and an idle timeout.
 *   echo_server [PORT] [HOST]        (default 8888 on 127.0.0.1; try: nc 127.0.0.1 8888)
 * Stops cleanly on SIGINT / SIGTERM: the listener closes, connections finish, fds are released.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <weft.h>

#define IDLE_SECONDS 300.0

static int echo(weft_stream_t *s, void *arg)
{
    (void)arg;
    char buf[8192];
    for (;;) {
        /* A per-read deadline: a client that goes quiet is dropped after IDLE_SECONDS. */
        ssize_t n = weft_stream_read_dl(s, buf, sizeof(buf), weft_deadline_in(IDLE_SECONDS));
        if (n == 0)
            return 0; /* the client closed */
        if (n < 0)
            return n == -ETIMEDOUT || n == -ECONNRESET ? 0 : (int)n;
        int r = weft_stream_write(s, buf, (size_t)n);
        if (r == 0)
            r = weft_stream_drain(s); /* waits only while the client does not read */
        if (r < 0)
            return 0; /* the client went away */
    }
}

/* Wait for SIGINT or SIGTERM in this task (a signalfd read through weft_wait_fd). */
static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
        int r = weft_wait_fd(fd, WEFT_READABLE);
        if (r < 0) {
            weft_close(fd);
            return r;
        }
    }
    weft_close(fd);
    return (int)si.ssi_signo;
}

struct args {
    const char *host;
    int port;
};

static int main_task(void *arg)
{
    struct args *a = arg;
    weft_server_t *srv;
    int err = weft_server_start(&srv, echo, NULL, a->host, a->port, NULL);
    if (err < 0) {
        fprintf(stderr, "echo_server: %s:%d: %s\n", a->host, a->port, weft_strerror(err));
        return err;
    }
    printf("echo_server: serving on %s:%d\n", a->host, weft_server_port(srv));
    fflush(stdout);
    int sig = wait_for_signal();
    printf("echo_server: signal %d, closing\n", sig);
    weft_server_close(srv);         /* stop accepting */
    weft_server_close_clients(srv); /* their reads see the end of the stream */
    weft_server_wait_closed_dl(srv, weft_deadline_in(5.0));
    weft_server_release(srv);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {argc > 2 ? argv[2] : "127.0.0.1",
                     argc > 1 ? (int)strtol(argv[1], NULL, 10) : 8888};
    signal(SIGPIPE, SIG_IGN);
    return weft_run(main_task, &a) < 0 ? 1 : 0;
}
