/*
 * Ctrl+C in weft_run(), after CPython's test_runners.py test_interrupt_*: the first SIGINT
 * cancels the main task, which may clean up; weft_run() then returns -EINTR, or -ECANCELED when
 * code had cancelled the main task as well. The default disposition is restored afterwards.
 */
#include <signal.h>
#include <unistd.h>

#include "test.h"

static int cleanup_ran;

static int interrupter(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT);
    return 0;
}

static int wait_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(NULL, interrupter, NULL), 0);
    int r = weft_sleep(3600);
    CHECK_EQ(r, -ECANCELED);
    CHECK_EQ(weft_sleep(0.5), 0); /* cleanup may still suspend */
    cleanup_ran = 1;
    return r;
}

static void test_interrupt_wait(void)
{
    cleanup_ran = 0;
    CHECK_EQ(run_virtual(wait_main, NULL), -EINTR);
    CHECK_EQ(cleanup_ran, 1);
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGINT, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_DFL);
}

static int cancel_then_interrupt(void *arg)
{
    CHECK_EQ(weft_yield(), 0);
    CHECK(weft_task_cancel(arg, NULL)); /* code cancels the main task too */
    kill(getpid(), SIGINT);
    return 0;
}

static int self_cancel_main(void *arg)
{
    (void)arg;
    CHECK_EQ(weft_spawn(NULL, cancel_then_interrupt, weft_current_task()), 0);
    return weft_sleep(10);
}

static void test_interrupt_cancelled_task(void)
{
    CHECK_EQ(run_virtual(self_cancel_main, NULL), -ECANCELED);
}

static void ignore(int sig)
{
    (void)sig;
}

static int plain_main(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT); /* the program's own handler gets it; nothing is cancelled */
    return weft_sleep(1.0);
}

static void test_program_handler_kept(void)
{
    signal(SIGINT, ignore);
    CHECK_EQ(run_virtual(plain_main, NULL), 0);
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGINT, NULL, &sa), 0);
    CHECK(sa.sa_handler == ignore);
    signal(SIGINT, SIG_DFL);
}

TEST_MAIN(test_interrupt_wait, test_interrupt_cancelled_task, test_program_handler_kept)
