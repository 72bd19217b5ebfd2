/*
 * Error names and messages. One table (WEFT__ERRNO_MAP) produces both, so they cannot drift.
 */
#include "internal.h"

#include <string.h>

#define WEFT__ERRNO_MAP(X)                                                                         \
    X(EPERM, "operation not permitted")                                                            \
    X(ENOENT, "no such file or directory")                                                         \
    X(ESRCH, "no such process")                                                                    \
    X(EINTR, "interrupted system call")                                                            \
    X(EIO, "i/o error")                                                                            \
    X(ENXIO, "no such device or address")                                                          \
    X(E2BIG, "argument list too long")                                                             \
    X(EBADF, "bad file descriptor")                                                                \
    X(ECHILD, "no child processes")                                                                \
    X(EAGAIN, "resource temporarily unavailable")                                                  \
    X(ENOMEM, "not enough memory")                                                                 \
    X(EACCES, "permission denied")                                                                 \
    X(EFAULT, "bad address")                                                                       \
    X(EBUSY, "resource busy or locked")                                                            \
    X(EEXIST, "file already exists")                                                               \
    X(ENODEV, "no such device")                                                                    \
    X(ENOTDIR, "not a directory")                                                                  \
    X(EISDIR, "is a directory")                                                                    \
    X(EINVAL, "invalid argument")                                                                  \
    X(ENFILE, "file table overflow")                                                               \
    X(EMFILE, "too many open files")                                                               \
    X(ENOSPC, "no space left on device")                                                           \
    X(ESPIPE, "invalid seek")                                                                      \
    X(EROFS, "read-only file system")                                                              \
    X(EPIPE, "broken pipe")                                                                        \
    X(ERANGE, "result too large")                                                                  \
    X(EDEADLK, "resource deadlock avoided")                                                        \
    X(ENAMETOOLONG, "name too long")                                                               \
    X(ENOSYS, "function not implemented")                                                          \
    X(ENOTEMPTY, "directory not empty")                                                            \
    X(ELOOP, "too many symbolic links encountered")                                                \
    X(ENODATA, "no data available")                                                                \
    X(EOVERFLOW, "value too large for defined data type")                                          \
    X(EILSEQ, "illegal byte sequence")                                                             \
    X(ENOTSOCK, "socket operation on non-socket")                                                  \
    X(EDESTADDRREQ, "destination address required")                                                \
    X(EMSGSIZE, "message too long")                                                                \
    X(EPROTOTYPE, "protocol wrong type for socket")                                                \
    X(ENOPROTOOPT, "protocol not available")                                                       \
    X(EPROTONOSUPPORT, "protocol not supported")                                                   \
    X(ESOCKTNOSUPPORT, "socket type not supported")                                                \
    X(ENOTSUP, "operation not supported")                                                          \
    X(EAFNOSUPPORT, "address family not supported")                                                \
    X(EADDRINUSE, "address already in use")                                                        \
    X(EADDRNOTAVAIL, "address not available")                                                      \
    X(ENETDOWN, "network is down")                                                                 \
    X(ENETUNREACH, "network is unreachable")                                                       \
    X(ECONNABORTED, "software caused connection abort")                                            \
    X(ECONNRESET, "connection reset by peer")                                                      \
    X(ENOBUFS, "no buffer space available")                                                        \
    X(EISCONN, "socket is already connected")                                                      \
    X(ENOTCONN, "socket is not connected")                                                         \
    X(ESHUTDOWN, "cannot send after transport endpoint shutdown")                                  \
    X(ETIMEDOUT, "operation timed out")                                                            \
    X(ECONNREFUSED, "connection refused")                                                          \
    X(EHOSTDOWN, "host is down")                                                                   \
    X(EHOSTUNREACH, "host is unreachable")                                                         \
    X(EALREADY, "operation already in progress")                                                   \
    X(EINPROGRESS, "operation in progress")                                                        \
    X(ECANCELED, "operation canceled")                                                             \
    X(EPROTO, "protocol error")                                                                    \
    X(ECHRNG, "channel number out of range")

#define WEFT__OWN_MAP(X)                                                                           \
    X(WEFT_EOF, "EOF", "end of file")                                                              \
    X(WEFT_ELIMIT, "ELIMIT", "stream buffer limit exceeded")                                       \
    X(WEFT_EAI_NONAME, "EAI_NONAME", "unknown node or service")                                    \
    X(WEFT_EAI_SERVICE, "EAI_SERVICE", "service not available for socket type")                   \
    X(WEFT_EAI_FAIL, "EAI_FAIL", "non-recoverable name resolution failure")                        \
    X(WEFT_EGROUP, "EGROUP", "one or more tasks of a task group failed")                          \
    X(WEFT_ETLS, "ETLS", "TLS protocol error")                                                     \
    X(WEFT_ETLS_VERIFY, "ETLS_VERIFY", "TLS certificate verification failed")                      \
    X(WEFT_ETLS_EOF, "ETLS_EOF", "TLS connection truncated (closed without close_notify)")         \
    X(WEFT_ETLS_NOT_TLS, "ETLS_NOT_TLS", "peer does not speak TLS")                                \
    X(WEFT_ETLS_ALERT, "ETLS_ALERT", "TLS alert received from the peer")                           \
    X(WEFT_ETLS_CONFIG, "ETLS_CONFIG", "bad TLS configuration")

const char *weft_strerror(int err)
{
    if (err >= 0)
        return "success";
#define X(name, msg)                                                                               \
    if (err == -name)                                                                              \
        return msg;
    WEFT__ERRNO_MAP(X)
#undef X
#define X(code, name, msg)                                                                         \
    if (err == code)                                                                               \
        return msg;
    WEFT__OWN_MAP(X)
#undef X
    return "unknown error";
}

const char *weft_err_name(int err)
{
    if (err >= 0)
        return "OK";
#define X(name, msg)                                                                               \
    if (err == -name)                                                                              \
        return #name;
    WEFT__ERRNO_MAP(X)
#undef X
#define X(code, name, msg)                                                                         \
    if (err == code)                                                                               \
        return name;
    WEFT__OWN_MAP(X)
#undef X
    return "UNKNOWN";
}
