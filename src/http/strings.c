/*
 * The protocol's small string helpers: slice comparisons, percent-decoding, reason phrases.
 */
#include "http_internal.h"

#include <errno.h>
#include <string.h>

bool weft_http_str_eq(struct weft_http_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

bool weft_http_str_caseeq(struct weft_http_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (weft__http_lower(s.p[i]) != weft__http_lower(lit[i]))
            return false;
    return true;
}

ssize_t weft_http_pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (n - i < 3)
                return -EINVAL;
            int a = weft__http_hexval(src[i + 1]), b = weft__http_hexval(src[i + 2]);
            if (a < 0 || b < 0)
                return -EINVAL;
            ch = (char)(a * 16 + b);
            i += 2;
        }
        if (ch == '\0')
            return -EINVAL;
        if (o + 1 >= cap)
            return -ENOSPC;
        dst[o++] = ch;
    }
    if (cap == 0)
        return -ENOSPC;
    dst[o] = '\0';
    return (ssize_t)o;
}

const char *weft_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
