/*
 * Stack overflow is named: a task recursing without bound into the guard page below its stack
 * dies with a message naming the task and its stack size, plus a backtrace, then aborts; with
 * unguarded stacks (WEFT_GUARDED_STACKS=0) a task suspending in the lowest bytes of its stack is
 * reported as having "ran past the end of" it. Each case runs in a fork()ed child whose stderr
 * is captured through a pipe; this process itself never creates a loop, so the child still
 * reads WEFT_GUARDED_STACKS.
 */
#include "test.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
/* ASan would otherwise keep SIGSEGV for itself and report a plain stack overflow. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allow_user_segv_handler=1:handle_segv=0";
}
#endif

static bool under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

static volatile int sink;

/* Unbounded, non-tail recursion with a frame of a few hundred bytes. */
static int recurse(int depth)
{
    volatile char pad[192];
    pad[0] = (char)depth;
    if (sink == 0x7fffffff)
        return 0;
    int r = recurse(depth + 1);
    return r + pad[0];
}

static int diver(void *arg)
{
    (void)arg;
    return recurse(0);
}

/* Descend a little further each step and suspend (park) at every level: the first park whose
 * stack pointer lies in the stack's lowest bytes must be reported, long before the frames leave
 * the red-zone page below an unguarded stack. */
static int descend_and_park(int depth)
{
    volatile char pad[96];
    pad[0] = (char)depth;
    int r = weft_sleep(1e-6);
    if (r < 0 || sink == 0x7fffffff)
        return r;
    r = descend_and_park(depth + 1);
    return r + pad[0];
}

static int parker(void *arg)
{
    (void)arg;
    return descend_and_park(0);
}

static weft_task_fn child_fn;
static weft_task_fn child_main_fn; /* the child's main task: child_main unless a case says */

static int child_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    weft_task_fn fn = child_fn;
    struct weft_task_opts o = {.name = "deep-diver", .stack_size = (size_t)64 << 10};
    CHECK_EQ(weft_spawn_opts(&t, fn, NULL, &o), 0);
    weft_join(t); /* never returns: the child aborts */
    weft_task_release(t);
    return 0;
}

/* Run fn as task "deep-diver" (64 KiB stack) in a child; return its stderr, check SIGABRT. */
static void run_child(weft_task_fn fn, bool guarded, char *out, size_t cap)
{
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        if (!guarded)
            setenv("WEFT_GUARDED_STACKS", "0", 1);
        child_fn = fn;
        run_virtual(child_main_fn != NULL ? child_main_fn : child_main, NULL);
        fprintf(stderr, "child: survived\n");
        _exit(3);
    }
    close(pfd[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(pfd[0], out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    out[n] = '\0';
    close(pfd[0]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
        fprintf(stderr, "child status %#x, stderr:\n%s\n", status, out);
        CHECK(0);
    }
}

static char out[1 << 16];

static void test_overflow_guarded_named(void)
{
    if (under_valgrind()) {
        fprintf(stderr, "skipped under valgrind (it owns SIGSEGV)\n");
        return;
    }
    run_child(diver, true, out, sizeof(out));
    if (strstr(out, "overflowed its 64 KiB stack") == NULL ||
        strstr(out, "task 'deep-diver'") == NULL || strstr(out, "backtrace") == NULL) {
        fprintf(stderr, "unexpected child stderr:\n%s\n", out);
        CHECK(0);
    }
}

static void test_overflow_unguarded_park(void)
{
    run_child(parker, false, out, sizeof(out));
    bool found = strstr(out, "ran past the end of its 64 KiB stack") != NULL;
    /* The report runs on what is left of the task's stack (under 256 bytes plus the red-zone
     * page); depending on the build's frame sizes (ASan, -O3) the report itself may fault below
     * the red zone and be named by the fault handler instead: the task is named either way. */
    found |= strstr(out, "overflowed its 64 KiB stack") != NULL;
    if (!found || strstr(out, "task 'deep-diver'") == NULL || strstr(out, "backtrace") == NULL) {
        fprintf(stderr, "unexpected child stderr:\n%s\n", out);
        CHECK(0);
    }
}

/* The same descent with a guarded stack is caught by the guard page, never by the check. */
static void test_overflow_guarded_park(void)
{
    if (under_valgrind()) {
        fprintf(stderr, "skipped under valgrind (it owns SIGSEGV)\n");
        return;
    }
    run_child(parker, true, out, sizeof(out));
    if (strstr(out, "overflowed its 64 KiB stack") == NULL ||
        strstr(out, "task 'deep-diver'") == NULL) {
        fprintf(stderr, "unexpected child stderr:\n%s\n", out);
        CHECK(0);
    }
}

/*
 * Issue 14, item 4: a frame larger than the guard page steps over it. Default-size stacks are
 * slots of one mapping, each above the previous one's, so a task whose frame is a few pages
 * larger than its stack and that writes only its lowest bytes (a large local buffer handed to
 * recv) lands in the neighbour's stack without touching its guard page: nothing faults. The
 * check made when it suspends must name it instead of letting it corrupt the neighbour.
 */
static int jumper(void *arg)
{
    (void)arg;
    size_t n = weft_default_stack_size() + 3 * (size_t)sysconf(_SC_PAGESIZE);
    volatile char *big = __builtin_alloca(n);
    big[0] = 1; /* only the lowest bytes, as a recv() into the buffer would */
    return weft_sleep(1e-6) + big[0];
}

static int neighbour(void *arg)
{
    (void)arg;
    return weft_sleep(10);
}

static int jump_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    /* Two default-size stacks in a row: the neighbour's slot lies right below the jumper's. */
    CHECK_EQ(weft_spawn(&a, neighbour, NULL), 0);
    struct weft_task_opts o = {.name = "jumper"};
    CHECK_EQ(weft_spawn_opts(&b, jumper, NULL, &o), 0);
    weft_join(b); /* never returns: the child aborts */
    weft_task_release(b);
    weft_task_release(a);
    return 0;
}

static void test_overflow_frame_jumps_guard(void)
{
    child_main_fn = jump_main;
    run_child(NULL, true, out, sizeof(out));
    child_main_fn = NULL;
    if (strstr(out, "task 'jumper'") == NULL || strstr(out, "backtrace") == NULL) {
        fprintf(stderr, "unexpected child stderr:\n%s\n", out);
        CHECK(0);
    }
}

TEST_MAIN(test_overflow_guarded_named, test_overflow_unguarded_park, test_overflow_guarded_park,
          test_overflow_frame_jumps_guard)
