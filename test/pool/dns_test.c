/*
 * DNS off the loop: getaddrinfo/getnameinfo results, the EAI mapping, copies of the caller's
 * inputs, and cancellation before and after the lookup started. The test binary interposes
 * getaddrinfo/getnameinfo/freeaddrinfo (the library links against these definitions) to hold a
 * lookup at a gate and to count freed results. Offline: numeric names, /etc/hosts, .invalid.
 */
#include "common.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>

static atomic_bool hold;     /* lookups announce themselves and wait at the gate */
static atomic_int lookups;   /* getaddrinfo + getnameinfo calls */
static atomic_int freed;     /* freeaddrinfo calls */
static atomic_int in_lookup; /* lookups started and not finished */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef int (*gni_fn)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t,
                      int);
typedef void (*fai_fn)(struct addrinfo *);

static void *next_symbol(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    CHECK(p != NULL);
    return p;
}

static void lookup_begins(void)
{
    atomic_fetch_add(&lookups, 1);
    atomic_fetch_add(&in_lookup, 1);
    if (atomic_load(&hold)) {
        announce(start_pipe[1]);
        gate_wait();
    }
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)next_symbol("getaddrinfo");
    lookup_begins();
    int r = real(node, service, hints, res);
    atomic_fetch_sub(&in_lookup, 1);
    return r;
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                char *serv, socklen_t servlen, int flags)
{
    gni_fn real = (gni_fn)next_symbol("getnameinfo");
    lookup_begins();
    int r = real(sa, salen, host, hostlen, serv, servlen, flags);
    atomic_fetch_sub(&in_lookup, 1);
    return r;
}

void freeaddrinfo(struct addrinfo *ai)
{
    fai_fn real = (fai_fn)next_symbol("freeaddrinfo");
    atomic_fetch_add(&freed, 1);
    real(ai);
}

static void dns_setup(unsigned threads)
{
    setup(threads);
    atomic_store(&hold, false);
    atomic_store(&lookups, 0);
    atomic_store(&freed, 0);
}

static uint32_t v4_addr(const struct addrinfo *ai)
{
    CHECK_EQ(ai->ai_family, AF_INET);
    CHECK_EQ(ai->ai_addrlen, sizeof(struct sockaddr_in));
    return ntohl(((const struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
}

/* ---- results ---- */

static int resolve_main(void *arg)
{
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    CHECK_EQ(weft_getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    CHECK(res != NULL);
    CHECK_EQ(v4_addr(res), INADDR_LOOPBACK);
    CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 80);
    CHECK_EQ(res->ai_socktype, SOCK_STREAM);
    freeaddrinfo(res);

    CHECK_EQ(weft_getaddrinfo("localhost", NULL, &hints, &res), 0); /* from /etc/hosts */
    CHECK_EQ(v4_addr(res), INADDR_LOOPBACK);
    freeaddrinfo(res);

    hints = (struct addrinfo){.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                              .ai_family = AF_INET6,
                              .ai_socktype = SOCK_DGRAM};
    CHECK_EQ(weft_getaddrinfo_dl("::1", "443", &hints, &res, weft_deadline_in(60.0)), 0);
    CHECK_EQ(res->ai_family, AF_INET6);
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)res->ai_addr;
    CHECK(memcmp(&s6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)) == 0);
    CHECK_EQ(ntohs(s6->sin6_port), 443);
    CHECK(res->ai_next == NULL);
    freeaddrinfo(res);

    CHECK_EQ(weft_getaddrinfo("127.0.0.1", NULL, NULL, &res), 0); /* no hints */
    freeaddrinfo(res);
    return 0;
}

static void test_resolve(void)
{
    dns_setup(0);
    CHECK_EQ(weft_run(resolve_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&freed), 4);
}

/* ---- errors ---- */

static int expect_error(const char *host, const char *service, int flags, int family, int socktype,
                        int want)
{
    struct addrinfo hints = {.ai_flags = flags, .ai_family = family, .ai_socktype = socktype};
    struct addrinfo *res = (struct addrinfo *)&hints; /* must come back NULL */
    int r = weft_getaddrinfo(host, service, &hints, &res);
    if (r != want)
        fprintf(stderr, "%s %s: got %d (%s), want %d\n", host ? host : "-", service ? service : "-",
                r, weft_err_name(r), want);
    CHECK_EQ(r, want);
    CHECK(res == NULL);
    return r;
}

static int errors_main(void *arg)
{
    (void)arg;
    expect_error("256.1.1.1", NULL, AI_NUMERICHOST, 0, 0, WEFT_EAI_NONAME);
    expect_error("not an address", NULL, AI_NUMERICHOST, AF_INET6, 0, WEFT_EAI_NONAME);
    expect_error("127.0.0.1", "http", AI_NUMERICSERV, 0, SOCK_STREAM, WEFT_EAI_NONAME);
    expect_error("127.0.0.1", "no-such-service-weft", 0, 0, SOCK_STREAM, WEFT_EAI_SERVICE);
    expect_error("127.0.0.1", "80", 0, 12345, 0, -EAFNOSUPPORT);
    expect_error("127.0.0.1", "80", 0, 0, 12345, -ESOCKTNOSUPPORT);
    expect_error(NULL, "80", AI_CANONNAME, 0, 0, -EINVAL);
    expect_error("::1", NULL, AI_NUMERICHOST, AF_INET, 0, -EADDRNOTAVAIL);
    expect_error(NULL, NULL, 0, 0, 0, WEFT_EAI_NONAME);

    /* A name that cannot exist (RFC 6761): unknown, or a resolver that cannot be reached. */
    struct addrinfo *res = NULL;
    int r = weft_getaddrinfo("no-such-host.invalid", NULL, NULL, &res);
    CHECK(r == WEFT_EAI_NONAME || r == -EAGAIN);
    CHECK(res == NULL);

    CHECK_EQ(weft_getaddrinfo("127.0.0.1", NULL, NULL, NULL), -EINVAL);
    CHECK_STR(weft_err_name(WEFT_EAI_NONAME), "EAI_NONAME");
    CHECK_STR(weft_strerror(WEFT_EAI_NONAME), "unknown node or service");
    CHECK_STR(weft_err_name(WEFT_EAI_SERVICE), "EAI_SERVICE");
    CHECK_STR(weft_err_name(WEFT_EAI_FAIL), "EAI_FAIL");
    return 0;
}

static void test_errors(void)
{
    dns_setup(0);
    struct addrinfo *res;
    CHECK_EQ(weft_getaddrinfo("127.0.0.1", NULL, NULL, &res), -EPERM); /* outside a task */
    CHECK_EQ(weft_run(errors_main, NULL), 0);
    teardown();
}

/* ---- the caller's inputs are copied ---- */

static char name_buf[32];

static int lookup_name_buf(void *arg)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *res;
    int r = weft_getaddrinfo(name_buf, NULL, &hints, &res);
    if (r == 0) {
        *(uint32_t *)arg = v4_addr(res);
        freeaddrinfo(res);
    }
    return r;
}

static int copies_main(void *arg)
{
    (void)arg;
    strcpy(name_buf, "127.0.0.9");
    uint32_t addr = 0;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, lookup_name_buf, &addr), 0);
    await_announcements(start_pipe[0], 1); /* started, held before the real lookup */
    strcpy(name_buf, "garbage, not an address");
    gate_open();
    CHECK_EQ(weft_join(t), 0);
    CHECK_EQ(addr, 0x7f000009);
    weft_task_release(t);
    return 0;
}

static void test_inputs_copied(void)
{
    dns_setup(0);
    atomic_store(&hold, true);
    CHECK_EQ(weft_run(copies_main, NULL), 0);
    teardown();
}

/* ---- cancellation ---- */

static int lookup_localhost(void *arg)
{
    (void)arg;
    struct addrinfo *res = NULL;
    int r = weft_getaddrinfo("localhost", "22", NULL, &res);
    CHECK(r < 0 || res != NULL);
    CHECK(r == 0 || res == NULL);
    if (r == 0)
        freeaddrinfo(res);
    return r;
}

static int cancel_started_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, lookup_localhost, NULL), 0);
    await_announcements(start_pipe[0], 1);
    CHECK(weft_task_cancel(t, NULL));
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK(gate_closed()); /* returned at once */
    CHECK_EQ(atomic_load(&in_lookup), 1);
    weft_task_release(t);
    gate_open();
    return 0;
}

static void test_cancel_started(void)
{
    dns_setup(2);
    atomic_store(&hold, true);
    CHECK_EQ(weft_run(cancel_started_main, NULL), 0);
    teardown(); /* waits for the lookup: its result was freed by the drop */
    CHECK_EQ(atomic_load(&lookups), 1);
    CHECK_EQ(atomic_load(&freed), 1);
}

static int cancel_queued_main(void *arg)
{
    (void)arg;
    weft_task_t *a, *b;
    CHECK_EQ(weft_spawn(&a, lookup_localhost, NULL), 0);
    await_announcements(start_pipe[0], 1); /* size 2: lookups may use one thread */
    CHECK_EQ(weft_spawn(&b, lookup_localhost, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    CHECK_EQ(stats().queued[WEFT__POOL_SLOW], 1);
    weft_task_cancel(b, NULL);
    CHECK_EQ(weft_join(b), -ECANCELED);
    CHECK_EQ(stats().queued[WEFT__POOL_SLOW], 0);
    gate_open();
    CHECK_EQ(weft_join(a), 0);
    weft_task_release(a);
    weft_task_release(b);
    return 0;
}

static void test_cancel_queued(void)
{
    dns_setup(2);
    atomic_store(&hold, true);
    CHECK_EQ(weft_run(cancel_queued_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&lookups), 1); /* the cancelled one never ran */
    CHECK_EQ(atomic_load(&freed), 1);
}

/* Finished and posted, cancelled before the waiter ran: freed on the loop. */
static int cancel_posted_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, lookup_localhost, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    await_posted();
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    CHECK_EQ(atomic_load(&freed), 1);
    weft_task_release(t);
    return 0;
}

static void test_cancel_posted(void)
{
    dns_setup(2);
    CHECK_EQ(weft_run(cancel_posted_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&freed), 1);
}

static int lookup_dl(void *arg)
{
    (void)arg;
    struct addrinfo *res = NULL;
    int64_t t0 = weft_time(NULL);
    int r = weft_getaddrinfo_dl("localhost", NULL, NULL, &res, t0 + 5000000000);
    CHECK_EQ(weft_time(NULL) - t0, 5000000000);
    CHECK(res == NULL);
    return r;
}

static int deadline_main(void *arg)
{
    (void)arg;
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, lookup_dl, NULL), 0);
    CHECK_EQ(weft_yield(), 0);
    while (atomic_load(&in_lookup) == 0) /* keep virtual time still until it started */
        sched_yield();
    CHECK_EQ(weft_join(t), -ETIMEDOUT);
    weft_task_release(t);
    gate_open();
    return 0;
}

static void test_deadline(void)
{
    dns_setup(2);
    atomic_store(&hold, true);
    CHECK_EQ(run_virtual(deadline_main, NULL), 0);
    teardown();
    CHECK_EQ(atomic_load(&freed), 1);
}

/* ---- getnameinfo ---- */

static int nameinfo_main(void *arg)
{
    (void)arg;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const struct sockaddr *sa = (const struct sockaddr *)&sin;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    CHECK_EQ(weft_getnameinfo(sa, sizeof(sin), host, sizeof(host), serv, sizeof(serv),
                              NI_NUMERICHOST | NI_NUMERICSERV),
             0);
    CHECK_STR(host, "127.0.0.1");
    CHECK_STR(serv, "80");

    /* A name from /etc/hosts (whatever it is called there), service from /etc/services. */
    host[0] = '\0';
    CHECK_EQ(weft_getnameinfo(sa, sizeof(sin), host, sizeof(host), NULL, 0, NI_NAMEREQD), 0);
    CHECK(host[0] != '\0');

    strcpy(serv, "unchanged");
    CHECK_EQ(weft_getnameinfo_dl(sa, sizeof(sin), host, sizeof(host), NULL, 0, NI_NUMERICHOST,
                                 weft_deadline_in(60.0)),
             0);
    CHECK_STR(host, "127.0.0.1");
    CHECK_STR(serv, "unchanged");

    char tiny[4] = "abc";
    CHECK_EQ(weft_getnameinfo(sa, sizeof(sin), tiny, sizeof(tiny), NULL, 0, NI_NUMERICHOST),
             -EOVERFLOW);

    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
    s6.sin6_addr = in6addr_loopback;
    CHECK_EQ(weft_getnameinfo((struct sockaddr *)&s6, sizeof(s6), host, sizeof(host), serv,
                              sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV),
             0);
    CHECK_STR(host, "::1");
    CHECK_STR(serv, "8080");

    CHECK_EQ(weft_getnameinfo(NULL, sizeof(sin), host, sizeof(host), NULL, 0, 0), -EINVAL);
    CHECK_EQ(weft_getnameinfo(sa, 0, host, sizeof(host), NULL, 0, 0), -EINVAL);
    CHECK_EQ(weft_getnameinfo(sa, 4096, host, sizeof(host), NULL, 0, 0), -EINVAL);
    return 0;
}

static void test_nameinfo(void)
{
    dns_setup(0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    char host[64];
    CHECK_EQ(weft_getnameinfo((struct sockaddr *)&sin, sizeof(sin), host, sizeof(host), NULL, 0,
                              NI_NUMERICHOST),
             -EPERM);
    CHECK_EQ(weft_run(nameinfo_main, NULL), 0);
    teardown();
}

/* A cancelled getnameinfo never writes into the caller's buffers. */
static char late_host[64];

static int nameinfo_into_late(void *arg)
{
    (void)arg;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return weft_getnameinfo((struct sockaddr *)&sin, sizeof(sin), late_host, sizeof(late_host),
                            NULL, 0, NI_NUMERICHOST);
}

static int nameinfo_cancel_main(void *arg)
{
    (void)arg;
    strcpy(late_host, "untouched");
    weft_task_t *t;
    CHECK_EQ(weft_spawn(&t, nameinfo_into_late, NULL), 0);
    await_announcements(start_pipe[0], 1);
    weft_task_cancel(t, NULL);
    CHECK_EQ(weft_join(t), -ECANCELED);
    weft_task_release(t);
    gate_open();
    return 0;
}

static void test_nameinfo_cancel(void)
{
    dns_setup(2);
    atomic_store(&hold, true);
    CHECK_EQ(weft_run(nameinfo_cancel_main, NULL), 0);
    teardown(); /* the lookup has finished */
    CHECK_EQ(atomic_load(&lookups), 1);
    CHECK_STR(late_host, "untouched");
}

TEST_MAIN(test_resolve, test_errors, test_inputs_copied, test_cancel_started, test_cancel_queued,
          test_cancel_posted, test_deadline, test_nameinfo, test_nameinfo_cancel)
