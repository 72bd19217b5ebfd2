/*
 * Declarations shared by the networking files (src/net): the stream object with its reader and
 * writer halves, and the helpers the server and connect code use to build streams from fds.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include "internal.h"

#include <netdb.h>
#include <sys/socket.h>

/* Resolve host/port into a list to free with freeaddrinfo(). Suspends only for real names. */
int weft__net_resolve(const char *host, int port, int family, int socktype, int flags,
                      struct addrinfo **res, int64_t deadline);

#endif /* WEFT_NET_H */
