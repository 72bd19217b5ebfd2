/*
 * weft-bench-ops: run ONE hot-path operation N times, for instruction counts under callgrind
 * (bench/profile.sh runs it at two N and divides the difference by the difference of N, which
 * cancels start-up, loop creation and shutdown).
 *   weft-bench-ops OP N
 * OP is one of:
 *   yield          two tasks alternating weft_yield(); N yields in total (one switch each)
 *   sleep0         one task calling weft_yield() alone: a loop iteration with one ready task
 *   spawn-join     weft_spawn() a task that returns at once, weft_join() it, release it
 *   iteration      a weft_call_soon() callback that queues itself again: one loop iteration
 *                  with one ready handle
 *   timer          arm N caller-storage timers (weft_call_at) at distinct future times of the
 *                  virtual clock, then let them fire one per iteration
 *   timer-arm      arm the N timers as above and close the loop without running it
 *   timer-cancel   weft_call_at() then weft_timer_cancel() on one timer, N times
 *   event-handoff  two tasks passing a turn through a pair of weft_event_t; N hand-offs
 *   sleep          one task calling weft_sleep(0.001) on the virtual clock: park, timer
 *                  insert, clock jump, fire, resume
 * Every loop uses the virtual clock (no clock reads, time jumps to the next timer), so the counts
 * are repeatable. Prints one line "RESULT op=OP n=N" and exits 0, or 1 on an error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

static long n_ops;

static const struct weft_loop_opts VCLOCK = {.virtual_clock = true};

/* ---- task switches ---- */

static int yielder(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        int err = weft_yield();
        if (err < 0)
            return err;
    }
    return 0;
}

static int op_yield(void *arg)
{
    (void)arg;
    weft_task_t *other;
    int err = weft_spawn(&other, yielder, (void *)(intptr_t)(n_ops / 2));
    if (err < 0)
        return err;
    int r1 = yielder((void *)(intptr_t)(n_ops - n_ops / 2));
    int r2 = weft_join(other);
    weft_task_release(other);
    return r1 < 0 ? r1 : r2;
}

static int op_sleep0(void *arg)
{
    (void)arg;
    return yielder((void *)(intptr_t)n_ops);
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int op_spawn_join(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_ops; i++) {
        weft_task_t *t;
        int err = weft_spawn(&t, nothing, NULL);
        if (err < 0)
            return err;
        err = weft_join(t);
        weft_task_release(t);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Two tasks taking turns through a pair of events (as bench/sync.c's event bench). */
static weft_event_t turn[2];

static int pinger(void *arg)
{
    int me = (int)(intptr_t)arg;
    long rounds = me == 0 ? n_ops - n_ops / 2 : n_ops / 2;
    for (long i = 0; i < rounds; i++) {
        int err = weft_event_wait(&turn[me]);
        if (err < 0)
            return err;
        weft_event_clear(&turn[me]);
        weft_event_set(&turn[!me]);
    }
    return 0;
}

static int op_event_handoff(void *arg)
{
    (void)arg;
    weft_event_init(&turn[0]);
    weft_event_init(&turn[1]);
    weft_task_t *a, *b;
    int err = weft_spawn(&a, pinger, (void *)0);
    if (err < 0)
        return err;
    err = weft_spawn(&b, pinger, (void *)1);
    if (err < 0) {
        weft_task_release(a);
        return err;
    }
    weft_event_set(&turn[0]);
    int ra = weft_join(a), rb = weft_join(b);
    weft_task_release(a);
    weft_task_release(b);
    return ra < 0 ? ra : rb;
}

static int op_sleep(void *arg)
{
    (void)arg;
    for (long i = 0; i < n_ops; i++) {
        int err = weft_sleep(0.001);
        if (err < 0)
            return err;
    }
    return 0;
}

static int run_task_op(weft_task_fn fn)
{
    return weft_run_opts(fn, NULL, &VCLOCK);
}

/* ---- callbacks and timers (a bare loop, no task) ---- */

static weft_loop_t *loop;
static long fired;

static void requeue(void *arg)
{
    (void)arg;
    if (++fired >= n_ops) {
        weft_loop_stop(loop);
        return;
    }
    if (weft_call_soon(loop, requeue, NULL) < 0)
        weft_loop_stop(loop);
}

static void on_timer(void *arg)
{
    (void)arg;
    if (++fired >= n_ops)
        weft_loop_stop(loop);
}

static void noop(void *arg)
{
    (void)arg;
}

static int run_loop_op(const char *op)
{
    int err = weft_loop_new(&loop, &VCLOCK);
    if (err < 0)
        return err;
    weft_timer_t *timers = NULL;
    if (strcmp(op, "iteration") == 0) {
        err = weft_call_soon(loop, requeue, NULL);
        if (err == 0)
            err = weft_loop_run(loop);
    } else if (strcmp(op, "timer") == 0 || strcmp(op, "timer-arm") == 0) {
        timers = malloc((size_t)n_ops * sizeof(*timers));
        if (timers == NULL) {
            weft_loop_close(loop);
            return -ENOMEM;
        }
        /* Distinct deadlines 1 us apart, armed in order: the heap grows to N and each fire
         * takes the root out of a heap of up to N. */
        for (long i = 0; i < n_ops && err == 0; i++) {
            weft_timer_init(&timers[i]);
            err = weft_call_at(loop, &timers[i], (int64_t)(i + 1) * 1000, on_timer, NULL);
        }
        if (err == 0 && op[5] == '\0')
            err = weft_loop_run(loop);
    } else if (strcmp(op, "timer-cancel") == 0) {
        weft_timer_t t;
        weft_timer_init(&t);
        for (long i = 0; i < n_ops && err == 0; i++) {
            err = weft_call_at(loop, &t, (int64_t)(i + 1) * 1000, noop, NULL);
            if (err == 0 && !weft_timer_cancel(&t))
                err = -EINVAL;
        }
    } else {
        err = -EINVAL;
    }
    weft_loop_close(loop);
    free(timers);
    if (err == 0 && strcmp(op, "timer") == 0 && fired != n_ops)
        err = -EINVAL;
    return err;
}

static const struct {
    const char *name;
    weft_task_fn fn;
} TASK_OPS[] = {
    {"yield", op_yield},           {"sleep0", op_sleep0},
    {"spawn-join", op_spawn_join}, {"event-handoff", op_event_handoff},
    {"sleep", op_sleep},
};

int main(int argc, char **argv)
{
    if (argc != 3 || (n_ops = strtol(argv[2], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: weft-bench-ops yield|sleep0|spawn-join|iteration|timer|timer-arm|"
                        "timer-cancel|event-handoff|sleep N\n");
        return 2;
    }
    const char *op = argv[1];
    int r = 1;
    bool found = false;
    for (size_t i = 0; i < sizeof(TASK_OPS) / sizeof(TASK_OPS[0]); i++) {
        if (strcmp(op, TASK_OPS[i].name) == 0) {
            r = run_task_op(TASK_OPS[i].fn);
            found = true;
        }
    }
    if (!found) {
        if (strcmp(op, "iteration") != 0 && strncmp(op, "timer", 5) != 0) {
            fprintf(stderr, "weft-bench-ops: unknown operation %s\n", op);
            return 2;
        }
        r = run_loop_op(op);
    }
    if (r < 0) {
        fprintf(stderr, "weft-bench-ops %s: %s\n", op, weft_strerror(r));
        return 1;
    }
    printf("RESULT op=%s n=%ld\n", op, n_ops);
    return 0;
}
