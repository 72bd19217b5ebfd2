/*
 * The chunked transfer coding's decoder (RFC 9112 7.1): a byte-at-a-time state machine, strict
 * as the head parser (parse.c) is: a chunk size overflow, a bad extension or trailer byte, a
 * missing CRLF is refused with 400, a trailer section past its limit with 431. No allocation:
 * the fuzzer builds it with parse.c alone.
 */
#include "http_internal.h"

static inline bool is_fvchar(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

enum {
    C_SIZE0,    /* the first hex digit of a chunk size */
    C_SIZE,     /* more hex digits */
    C_SIZE_WS,  /* whitespace after the size (only before an extension) */
    C_EXT,      /* a chunk extension, up to CR */
    C_SIZE_LF,  /* LF after the size line's CR */
    C_DATA,     /* chunk data */
    C_DATA_CR,  /* CR after the data */
    C_DATA_LF,  /* LF after it */
    C_TR_START, /* the start of a trailer line (or the final empty line) */
    C_TR_LINE,  /* in a trailer line */
    C_TR_LF,    /* LF ending a trailer line */
    C_END_LF,   /* LF of the final empty line */
    C_DONE,
};

ssize_t weft_http_chunked_decode(struct weft_http_chunked *c, const char *buf, size_t len,
                                 const char **data, size_t *dlen)
{
    *data = NULL;
    *dlen = 0;
    size_t max = c->max_trailer ? c->max_trailer : WEFT_HTTP_MAX_HEADER_BYTES;
    size_t i = 0;
    while (i < len && c->state != C_DONE) {
        char ch = buf[i];
        switch (c->state) {
        case C_DATA: {
            size_t k = len - i;
            if (k > c->remaining)
                k = (size_t)c->remaining;
            *data = buf + i;
            *dlen = k;
            c->remaining -= k;
            if (c->remaining == 0)
                c->state = C_DATA_CR;
            return (ssize_t)(i + k);
        }
        case C_SIZE0:
        case C_SIZE: {
            int v = weft__http_hexval(ch);
            if (v >= 0) {
                if (c->remaining > (UINT64_MAX >> 8))
                    return -400; /* chunk size overflow */
                c->remaining = c->remaining * 16 + (uint64_t)v;
                c->state = C_SIZE;
                c->trailer_bytes = 0;
                break;
            }
            if (c->state == C_SIZE0)
                return -400;
            if (ch == '\r')
                c->state = C_SIZE_LF;
            else if (ch == ';')
                c->state = C_EXT;
            else if (ch == ' ' || ch == '\t')
                c->state = C_SIZE_WS;
            else
                return -400;
            break;
        }
        case C_SIZE_WS:
            if (ch == ';')
                c->state = C_EXT;
            else if (ch != ' ' && ch != '\t')
                return -400;
            break;
        case C_EXT:
            if (++c->trailer_bytes > max)
                return -431;
            if (ch == '\r')
                c->state = C_SIZE_LF;
            else if (!is_fvchar((unsigned char)ch))
                return -400;
            break;
        case C_SIZE_LF:
            if (ch != '\n')
                return -400;
            c->trailer_bytes = 0;
            c->state = c->remaining > 0 ? C_DATA : C_TR_START;
            break;
        case C_DATA_CR:
            if (ch != '\r')
                return -400;
            c->state = C_DATA_LF;
            break;
        case C_DATA_LF:
            if (ch != '\n')
                return -400;
            c->state = C_SIZE0;
            break;
        case C_TR_START:
            if (ch == '\r') {
                c->state = C_END_LF;
                break;
            }
            if (ch == ' ' || ch == '\t' || ch == ':' || !weft__http_tchar[(unsigned char)ch])
                return -400; /* folding, or not a field name */
            c->state = C_TR_LINE;
            if (++c->trailer_bytes > max)
                return -431;
            break;
        case C_TR_LINE:
            if (++c->trailer_bytes > max)
                return -431;
            if (ch == '\r')
                c->state = C_TR_LF;
            else if (!is_fvchar((unsigned char)ch))
                return -400;
            break;
        case C_TR_LF:
            if (ch != '\n')
                return -400;
            c->state = C_TR_START;
            break;
        case C_END_LF:
            if (ch != '\n')
                return -400;
            c->state = C_DONE;
            c->done = true;
            break;
        default:
            return -400;
        }
        i++;
    }
    return (ssize_t)i;
}
