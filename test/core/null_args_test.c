/*
 * Issue 14, item 7: one NULL rule for every public call (include/weft.h, "Conventions"): a NULL
 * where the call needs an object is never dereferenced; an int-returning call returns -EINVAL, a
 * handle- or pointer-returning one NULL, a count 0, a predicate false, a time WEFT_NO_DEADLINE,
 * and a void call does nothing. Every call that takes an object pointer is made with NULL here,
 * from inside a task (so that a suspending call reaches its argument check).
 */
#include "test.h"

#include <netdb.h>
#include <sys/socket.h>

#define EINVAL_(call) CHECK_EQ((call), -EINVAL)

static int null_main(void *arg)
{
    (void)arg;
    /* the six that crashed */
    weft_timer_init(NULL);
    CHECK(!weft_timer_cancel(NULL));
    CHECK_EQ(weft_timer_when(NULL), WEFT_NO_DEADLINE);
    weft_lock_init(NULL);
    weft_event_init(NULL);
    CHECK(weft_all_tasks(NULL, NULL, 1) >= 1); /* no array: the count only */
    CHECK(weft_all_tasks(weft_loop_current(), NULL, 8) >= 1);

    /* loop and timers */
    EINVAL_(weft_loop_new(NULL, NULL));
    EINVAL_(weft_loop_run(NULL));
    weft_loop_stop(NULL);
    EINVAL_(weft_loop_close(NULL));
    CHECK(!weft_loop_is_running(NULL));
    weft_loop_set_error_handler(NULL, NULL, NULL);
    weft_loop_report(weft_loop_current(), NULL);
    EINVAL_(weft_call_soon(NULL, NULL, NULL));
    EINVAL_(weft_call_soon_threadsafe(NULL, NULL, NULL));
    EINVAL_(weft_call_at(NULL, NULL, 0, NULL, NULL));
    EINVAL_(weft_call_later(NULL, NULL, 0, NULL, NULL));
    EINVAL_(weft_run(NULL, NULL));

    /* tasks */
    EINVAL_(weft_spawn(NULL, NULL, NULL));
    CHECK(weft_task_retain(NULL) == NULL);
    weft_task_release(NULL);
    EINVAL_(weft_join(NULL));
    EINVAL_(weft_join_dl(NULL, 0));
    EINVAL_(weft_shield(NULL));
    CHECK(!weft_task_cancel(NULL, NULL));
    CHECK_EQ(weft_task_cancelling(NULL), 0);
    CHECK_EQ(weft_task_uncancel(NULL), 0);
    CHECK(!weft_task_done(NULL));
    CHECK(!weft_task_cancelled(NULL));
    EINVAL_(weft_task_result(NULL));
    CHECK(weft_task_cancel_message(NULL) == NULL);
    CHECK(weft_task_name(NULL) != NULL); /* a string for printing: "(null)" */
    EINVAL_(weft_task_set_name(NULL, "x"));
    EINVAL_(weft_task_set_name(weft_current_task(), NULL));
    CHECK_EQ(weft_task_id(NULL), 0);
    CHECK(weft_task_future(NULL) == NULL);

    /* futures */
    EINVAL_(weft_future_new(NULL));
    CHECK(weft_future_retain(NULL) == NULL);
    weft_future_release(NULL);
    EINVAL_(weft_future_set_result(NULL, 0));
    EINVAL_(weft_future_set_error(NULL, -EIO));
    CHECK(!weft_future_cancel(NULL, NULL));
    CHECK(!weft_future_done(NULL));
    CHECK(!weft_future_cancelled(NULL));
    EINVAL_(weft_future_result(NULL));
    EINVAL_(weft_future_await(NULL));
    EINVAL_(weft_future_await_dl(NULL, 0));
    EINVAL_(weft_future_await_shielded(NULL));
    EINVAL_(weft_future_add_done_callback(NULL, NULL, NULL));
    CHECK_EQ(weft_future_remove_done_callback(NULL, NULL, NULL), 0); /* a count */

    /* structured concurrency */
    EINVAL_(weft_timeout_enter(NULL, 1));
    EINVAL_(weft_timeout_enter_at(NULL, 0));
    EINVAL_(weft_timeout_exit(NULL, 0));
    EINVAL_(weft_timeout_reschedule(NULL, 0));
    CHECK(!weft_timeout_expired(NULL));
    CHECK_EQ(weft_timeout_when(NULL), WEFT_NO_DEADLINE);
    EINVAL_(weft_timeout_call(1, NULL, NULL));
    EINVAL_(weft_wait_for(NULL, 1));
    EINVAL_(weft_wait_for_at(NULL, 0));
    EINVAL_(weft_gather(NULL, 1, NULL, 0));
    EINVAL_(weft_wait(NULL, 1, 0, NULL, NULL));
    EINVAL_(weft_wait_dl(NULL, 1, 0, NULL, NULL, 0));
    EINVAL_(weft_as_completed_new(NULL, NULL, 0, -1));
    EINVAL_(weft_as_completed_next(NULL, NULL));
    weft_as_completed_free(NULL);
    EINVAL_(weft_group_enter(NULL));
    EINVAL_(weft_group_spawn(NULL, NULL, NULL, NULL));
    EINVAL_(weft_group_spawn_opts(NULL, NULL, NULL, NULL, NULL));
    CHECK_EQ(weft_group_size(NULL), 0);
    EINVAL_(weft_group_exit(NULL, 0, NULL));
    CHECK_EQ(weft_errgroup_count(NULL), 0);
    EINVAL_(weft_errgroup_error(NULL, 0));
    CHECK(weft_errgroup_task(NULL, 0) == NULL);
    CHECK(weft_errgroup_nested(NULL, 0) == NULL);
    CHECK(!weft_errgroup_contains(NULL, -EIO));
    CHECK(weft_errgroup_retain(NULL) == NULL);
    weft_errgroup_release(NULL);

    /* synchronisation */
    EINVAL_(weft_lock_acquire(NULL));
    EINVAL_(weft_lock_acquire_dl(NULL, 0));
    EINVAL_(weft_lock_release(NULL));
    CHECK(!weft_lock_locked(NULL));
    EINVAL_(weft_event_set(NULL));
    weft_event_clear(NULL);
    CHECK(!weft_event_is_set(NULL));
    EINVAL_(weft_event_wait(NULL));
    EINVAL_(weft_event_wait_dl(NULL, 0));
    weft_cond_init(NULL, NULL);
    EINVAL_(weft_cond_acquire(NULL));
    EINVAL_(weft_cond_acquire_dl(NULL, 0));
    EINVAL_(weft_cond_release(NULL));
    CHECK(!weft_cond_locked(NULL));
    EINVAL_(weft_cond_wait(NULL));
    EINVAL_(weft_cond_wait_dl(NULL, 0));
    EINVAL_(weft_cond_wait_for(NULL, NULL, NULL));
    EINVAL_(weft_cond_wait_for_dl(NULL, NULL, NULL, 0));
    EINVAL_(weft_cond_notify(NULL, 1));
    EINVAL_(weft_cond_notify_all(NULL));
    EINVAL_(weft_sem_init(NULL, 1));
    EINVAL_(weft_sem_init_bounded(NULL, 1));
    EINVAL_(weft_sem_acquire(NULL));
    EINVAL_(weft_sem_acquire_dl(NULL, 0));
    EINVAL_(weft_sem_release(NULL));
    CHECK(!weft_sem_locked(NULL));
    CHECK_EQ(weft_sem_value(NULL), 0); /* a count */
    EINVAL_(weft_barrier_init(NULL, 1));
    EINVAL_(weft_barrier_wait(NULL));
    EINVAL_(weft_barrier_wait_dl(NULL, 0));
    EINVAL_(weft_barrier_reset(NULL));
    EINVAL_(weft_barrier_abort(NULL));
    CHECK_EQ(weft_barrier_parties(NULL), 0);
    CHECK_EQ(weft_barrier_n_waiting(NULL), 0);
    CHECK(!weft_barrier_broken(NULL));
    EINVAL_(weft_queue_new(NULL, 0));
    EINVAL_(weft_queue_new_lifo(NULL, 0));
    EINVAL_(weft_queue_new_priority(NULL, 0, NULL, NULL));
    CHECK_EQ(weft_queue_free(NULL), 0); /* freeing nothing, as free(NULL) */
    EINVAL_(weft_queue_put_nowait(NULL, NULL));
    EINVAL_(weft_queue_put(NULL, NULL));
    EINVAL_(weft_queue_put_dl(NULL, NULL, 0));
    EINVAL_(weft_queue_get_nowait(NULL, NULL));
    EINVAL_(weft_queue_get(NULL, NULL));
    EINVAL_(weft_queue_get_dl(NULL, NULL, 0));
    EINVAL_(weft_queue_task_done(NULL));
    EINVAL_(weft_queue_join(NULL));
    EINVAL_(weft_queue_join_dl(NULL, 0));
    EINVAL_(weft_queue_shutdown(NULL, false));
    EINVAL_(weft_queue_shutdown_drop(NULL, NULL, NULL));
    CHECK_EQ(weft_queue_qsize(NULL), 0);
    CHECK_EQ(weft_queue_maxsize(NULL), 0);
    CHECK(!weft_queue_empty(NULL));
    CHECK(!weft_queue_full(NULL));
    CHECK(!weft_queue_is_shutdown(NULL));
    CHECK_EQ(weft_queue_unfinished(NULL), 0);

    /* thread pool and DNS */
    EINVAL_(weft_to_thread(NULL, NULL));
    EINVAL_(weft_to_thread_dl(NULL, NULL, 0));
    EINVAL_(weft_to_thread_ex(NULL, NULL, NULL));
    EINVAL_(weft_to_thread_ex_dl(NULL, NULL, NULL, 0));
    EINVAL_(weft_getaddrinfo("localhost", NULL, NULL, NULL));
    EINVAL_(weft_getnameinfo(NULL, 0, NULL, 0, NULL, 0, 0));

    /* networking */
    EINVAL_(weft_socketpair(AF_UNIX, SOCK_STREAM, 0, NULL));
    EINVAL_(weft_sock_recv(0, NULL, 1));
    EINVAL_(weft_sock_send(0, NULL, 1));
    EINVAL_(weft_sock_sendall(0, NULL, 1, NULL));
    EINVAL_(weft_sock_connect(0, NULL, 0));
    EINVAL_(weft_sock_recvfrom(0, NULL, 1, NULL, NULL));
    EINVAL_(weft_sock_sendto(0, NULL, 1, NULL, 0));
    EINVAL_(weft_addr_parse(NULL, 0, NULL, NULL));
    EINVAL_(weft_addr_format(NULL, 0, NULL, 0));
    EINVAL_(weft_addr_port(NULL));
    EINVAL_(weft_stream_new(NULL, -1, NULL));
    CHECK(weft_stream_retain(NULL) == NULL);
    weft_stream_release(NULL);
    CHECK_EQ(weft_stream_fd(NULL), -1);
    EINVAL_(weft_stream_read(NULL, NULL, 0));
    EINVAL_(weft_stream_read_dl(NULL, NULL, 0, 0));
    EINVAL_(weft_stream_readexactly(NULL, NULL, 0, NULL));
    EINVAL_(weft_stream_readexactly_dl(NULL, NULL, 0, NULL, 0));
    EINVAL_(weft_stream_readuntil(NULL, "\n", 1, NULL, NULL));
    EINVAL_(weft_stream_readuntil_dl(NULL, "\n", 1, NULL, NULL, 0));
    EINVAL_(weft_stream_readuntil_any(NULL, NULL, 0, NULL, NULL));
    EINVAL_(weft_stream_readuntil_any_dl(NULL, NULL, 0, NULL, NULL, 0));
    EINVAL_(weft_stream_readline(NULL, NULL, NULL));
    EINVAL_(weft_stream_readline_dl(NULL, NULL, NULL, 0));
    EINVAL_(weft_stream_read_all(NULL, NULL, NULL));
    EINVAL_(weft_stream_read_all_dl(NULL, NULL, NULL, 0));
    CHECK_EQ(weft_stream_buffered(NULL, NULL), 0);
    CHECK(!weft_stream_at_eof(NULL));
    EINVAL_(weft_stream_error(NULL));
    EINVAL_(weft_stream_feed(NULL, NULL, 0));
    weft_stream_feed_eof(NULL);
    EINVAL_(weft_stream_set_error(NULL, -EIO));
    EINVAL_(weft_stream_write(NULL, NULL, 0));
    EINVAL_(weft_stream_drain(NULL));
    EINVAL_(weft_stream_drain_dl(NULL, 0));
    EINVAL_(weft_stream_set_write_limits(NULL, -1, -1));
    CHECK_EQ(weft_stream_write_buffered(NULL), 0);
    EINVAL_(weft_stream_write_eof(NULL));
    weft_stream_close(NULL);
    weft_stream_abort(NULL);
    CHECK(!weft_stream_is_closing(NULL));
    EINVAL_(weft_stream_wait_closed(NULL));
    EINVAL_(weft_stream_wait_closed_dl(NULL, 0));
    EINVAL_(weft_stream_connect(NULL, "127.0.0.1", 1, NULL));
    EINVAL_(weft_stream_connect_addrinfo(NULL, NULL, NULL));
    EINVAL_(weft_stream_connect_unix(NULL, "/nonexistent", NULL));
    EINVAL_(weft_server_start(NULL, NULL, NULL, "127.0.0.1", 0, NULL));
    EINVAL_(weft_server_start_unix(NULL, NULL, NULL, NULL, NULL));
    EINVAL_(weft_server_start_fd(NULL, NULL, NULL, -1, NULL));
    weft_server_close(NULL);
    weft_server_close_clients(NULL);
    weft_server_abort_clients(NULL);
    EINVAL_(weft_server_wait_closed(NULL));
    EINVAL_(weft_server_wait_closed_dl(NULL, 0));
    EINVAL_(weft_server_serve_forever(NULL));
    CHECK(!weft_server_is_serving(NULL));
    CHECK_EQ(weft_server_sockets(NULL, NULL, 0), 0);
    EINVAL_(weft_server_port(NULL));
    CHECK_EQ(weft_server_connections(NULL), 0);
    weft_server_release(NULL);
    return 0;
}

static void test_null_rule_every_call(void)
{
    CHECK_EQ(weft_run(null_main, NULL), 0);
    /* Outside any loop too: the calls that need no task. */
    weft_timer_init(NULL);
    CHECK(!weft_timer_cancel(NULL));
    CHECK_EQ(weft_timer_when(NULL), WEFT_NO_DEADLINE);
    weft_lock_init(NULL);
    weft_event_init(NULL);
    CHECK_EQ(weft_all_tasks(NULL, NULL, 1), 0);
}

TEST_MAIN(test_null_rule_every_call)
