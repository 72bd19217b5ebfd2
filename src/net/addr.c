/*
 * Addresses: numeric parsing and formatting of socket addresses, and the resolver entry point
 * the stream and server code use: numeric hosts are resolved here without blocking, names go
 * to weft_getaddrinfo (the thread pool).
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

int weft__net_resolve(const char *host, int port, int family, int socktype, int flags,
                      struct addrinfo **res, int64_t deadline)
{
    if (port < 0 || port > 65535 || res == NULL)
        return -EINVAL;
    *res = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {
        .ai_family = family,
        .ai_socktype = socktype,
        .ai_flags = flags | AI_NUMERICSERV | AI_NUMERICHOST,
    };
    /* A numeric host (or none) never blocks: resolve it here, without the thread pool. */
    int rc = getaddrinfo(host, service, &hints, res);
    if (rc == 0)
        return 0;
    *res = NULL;
    if (rc != EAI_NONAME || host == NULL)
        return rc == EAI_MEMORY ? -ENOMEM : rc == EAI_FAMILY ? -EAFNOSUPPORT : -EINVAL;
    hints.ai_flags = flags | AI_NUMERICSERV | AI_ADDRCONFIG;
    return weft_getaddrinfo_dl(host, service, &hints, res, deadline);
}

int weft_addr_parse(const char *host, int port, struct sockaddr_storage *out, socklen_t *len)
{
    if (out == NULL || len == NULL || port < 0 || port > 65535)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (host == NULL) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof(*in);
        return 0;
    }
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0)
        return -EINVAL;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int weft_addr_port(const struct sockaddr *addr)
{
    if (addr == NULL)
        return -EINVAL;
    if (addr->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    if (addr->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    return -EAFNOSUPPORT;
}

int weft_addr_format(const struct sockaddr *addr, socklen_t len, char *buf, size_t cap)
{
    if (addr == NULL || (buf == NULL && cap > 0) || len < sizeof(sa_family_t))
        return -EINVAL;
    char host[INET6_ADDRSTRLEN + 16];
    int n;
    switch (addr->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        if (len < sizeof(*in) || inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) == NULL)
            return -EINVAL;
        n = snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        if (len < sizeof(*in6) || inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) == NULL)
            return -EINVAL;
        if (in6->sin6_scope_id != 0)
            n = snprintf(buf, cap, "[%s%%%u]:%u", host, in6->sin6_scope_id, ntohs(in6->sin6_port));
        else
            n = snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
        size_t plen = len - offsetof(struct sockaddr_un, sun_path);
        if (len <= offsetof(struct sockaddr_un, sun_path)) {
            n = snprintf(buf, cap, "(unnamed)");
        } else if (un->sun_path[0] == '\0') {
            /* Abstract: a leading NUL, then plen - 1 bytes that may hold anything. */
            n = snprintf(buf, cap, "@%.*s", (int)(plen - 1), un->sun_path + 1);
        } else {
            n = snprintf(buf, cap, "%.*s", (int)strnlen(un->sun_path, plen), un->sun_path);
        }
        break;
    }
    default:
        return -EAFNOSUPPORT;
    }
    return n < 0 ? -EINVAL : n;
}
