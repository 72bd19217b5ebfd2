/*
 * Name resolution off the loop: getaddrinfo() and getnameinfo() run on the thread pool's DNS
 * queue. Each request copies what it reads and writes into a private block, so a cancelled
 * caller's buffers are never touched; a late result is freed by the pool's drop callback.
 */
#include "pool/pool.h"

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

/* getaddrinfo/getnameinfo error -> weft error (the table is in weft.h and docs/threadpool.md). */
static int eai_error(int eai, int saved_errno)
{
    switch (eai) {
    case EAI_NONAME:
        return WEFT_EAI_NONAME;
    case EAI_SERVICE:
        return WEFT_EAI_SERVICE;
    case EAI_FAIL:
        return WEFT_EAI_FAIL;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SOCKTYPE:
        return -ESOCKTNOSUPPORT;
    case EAI_BADFLAGS:
        return -EINVAL;
#ifdef EAI_NODATA
    case EAI_NODATA:
        return -ENODATA;
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
        return -EADDRNOTAVAIL;
#endif
    case EAI_OVERFLOW:
        return -EOVERFLOW;
    case EAI_SYSTEM:
        return saved_errno > 0 ? -saved_errno : -EIO;
    default:
        return WEFT_EAI_FAIL;
    }
}

/* ---- getaddrinfo ---- */

struct gai_req {
    const char *host;    /* into text, or NULL */
    const char *service; /* into text, or NULL */
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;
    char text[]; /* host and service, NUL-terminated */
};

static int gai_run(void *arg)
{
    struct gai_req *q = arg;
    int eai = getaddrinfo(q->host, q->service, q->has_hints ? &q->hints : NULL, &q->res);
    if (eai != 0) {
        q->res = NULL;
        return eai_error(eai, errno);
    }
    return 0;
}

/* The caller left: free whatever the lookup produced. */
static void gai_drop(void *arg, int result)
{
    struct gai_req *q = arg;
    if (result == 0 && q->res != NULL)
        freeaddrinfo(q->res);
    weft__free(q);
}

int weft_getaddrinfo_dl(const char *host, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res, int64_t deadline)
{
    if (res == NULL)
        return -EINVAL;
    *res = NULL;
    int err;
    if (weft__task_check_current(&err) == NULL)
        return err;
    size_t hl = host != NULL ? strlen(host) + 1 : 0;
    size_t sl = service != NULL ? strlen(service) + 1 : 0;
    struct gai_req *q = weft__malloc(sizeof(*q) + hl + sl);
    if (q == NULL)
        return -ENOMEM;
    memset(q, 0, sizeof(*q));
    if (host != NULL) {
        memcpy(q->text, host, hl);
        q->host = q->text;
    }
    if (service != NULL) {
        memcpy(q->text + hl, service, sl);
        q->service = q->text + hl;
    }
    if (hints != NULL) {
        /* POSIX: every other member of hints must be zero or NULL. */
        q->has_hints = true;
        q->hints.ai_flags = hints->ai_flags;
        q->hints.ai_family = hints->ai_family;
        q->hints.ai_socktype = hints->ai_socktype;
        q->hints.ai_protocol = hints->ai_protocol;
    }
    int r = weft__pool_call(WEFT__POOL_SLOW, gai_run, q, gai_drop, deadline);
    if (r == -ECANCELED || r == -ETIMEDOUT)
        return r; /* gai_drop owns q */
    if (r == 0)
        *res = q->res;
    weft__free(q);
    return r;
}

int weft_getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                     struct addrinfo **res)
{
    return weft_getaddrinfo_dl(host, service, hints, res, WEFT_NO_DEADLINE);
}

/* ---- getnameinfo ---- */

struct gni_req {
    struct sockaddr_storage sa;
    socklen_t salen;
    int flags;
    size_t hostlen; /* what the lookup may write: min(caller's, sizeof(host)) */
    size_t servlen;
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
};

static int gni_run(void *arg)
{
    struct gni_req *q = arg;
    int eai = getnameinfo((const struct sockaddr *)&q->sa, q->salen,
                          q->hostlen > 0 ? q->host : NULL, (socklen_t)q->hostlen,
                          q->servlen > 0 ? q->serv : NULL, (socklen_t)q->servlen, q->flags);
    return eai != 0 ? eai_error(eai, errno) : 0;
}

/* Copy a NUL-terminated answer of at most `cap` bytes into the caller's buffer. */
static void copy_out(char *dst, const char *src, size_t cap)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void gni_drop(void *arg, int result)
{
    (void)result;
    weft__free(arg);
}

int weft_getnameinfo_dl(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                        char *serv, size_t servlen, int flags, int64_t deadline)
{
    if (sa == NULL || salen == 0 || salen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    int err;
    if (weft__task_check_current(&err) == NULL)
        return err;
    struct gni_req *q = weft__malloc(sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    memset(&q->sa, 0, sizeof(q->sa));
    memcpy(&q->sa, sa, salen);
    q->salen = salen;
    q->flags = flags;
    q->hostlen = host == NULL ? 0 : hostlen < sizeof(q->host) ? hostlen : sizeof(q->host);
    q->servlen = serv == NULL ? 0 : servlen < sizeof(q->serv) ? servlen : sizeof(q->serv);
    int r = weft__pool_call(WEFT__POOL_SLOW, gni_run, q, gni_drop, deadline);
    if (r == -ECANCELED || r == -ETIMEDOUT)
        return r; /* gni_drop owns q */
    if (r == 0) {
        if (q->hostlen > 0)
            copy_out(host, q->host, q->hostlen);
        if (q->servlen > 0)
            copy_out(serv, q->serv, q->servlen);
    }
    weft__free(q);
    return r;
}

int weft_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                     char *serv, size_t servlen, int flags)
{
    return weft_getnameinfo_dl(sa, salen, host, hostlen, serv, servlen, flags, WEFT_NO_DEADLINE);
}
