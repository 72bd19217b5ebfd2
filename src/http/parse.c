/*
 * The HTTP/1.1 request parser (RFC 9112): incremental (each call looks only at the lines
 * completed since the last one), zero-copy (slices of the caller's buffer) and strict: whatever
 * could let two parsers disagree on where a request ends is refused with 400. A head that is
 * whole at the first call takes a one-pass fast path (parse_whole) that accepts only what the
 * incremental parser accepts and hands everything else to it. The chunked decoder is chunked.c.
 * No allocation: the fuzzer builds this file with chunked.c and strings.c alone.
 */
#include "http_internal.h"

#include <errno.h>
#include <string.h>

#define S_LINE    0 /* the request line (or empty lines before it) */
#define S_HEADERS 1

#define MAX_METHOD 32 /* a longer method is not one this server could know */

/* tchar (RFC 9110 5.6.2); the server checks response header names with it too. */
#define tchar weft__http_tchar
const unsigned char weft__http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* Bytes that cannot appear in a Host value (an authority): whitespace, list and path bytes. */
static const unsigned char host_bad[256] = {[' '] = 1, ['\t'] = 1, [','] = 1, ['/'] = 1, ['@'] = 1};

#if defined(__SSE2__)
#include <emmintrin.h>
#define HAVE_SSE2 1
#endif

/* Field-line stop bytes: a control byte other than HTAB, or DEL (a CR ends the line; anything
 * else is an error). */
static const unsigned char fstop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1,
    [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1,
    [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1,
    [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [0x7f] = 1,
};

/* OWS bytes (SP, HTAB). */
static const unsigned char ows[256] = {[' '] = 1, ['\t'] = 1};

static inline bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

#ifdef HAVE_SSE2
/* The stop bytes among 16: a bit per byte. */
static inline unsigned stop_mask(__m128i x)
{
    const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    __m128i ctl = _mm_cmpeq_epi8(_mm_subs_epu8(x, c1f), _mm_setzero_si128()); /* <= 0x1f */
    ctl = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del)));
}

/* Bytes that end a request-target's path: not a VCHAR (0x21-0x7e), or '?' (when q). */
static inline unsigned target_mask(__m128i x, bool q)
{
    /* As signed bytes, obs-text (0x80-0xff) is negative: "> 0x20 and < 0x7f" is VCHAR. */
    __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(0x20)),
                               _mm_cmplt_epi8(x, _mm_set1_epi8(0x7f)));
    if (q)
        ok = _mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('?')), ok);
    return ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;
}

/* Bytes that cannot appear in a Host value (host_bad) among 16: a bit per byte. */
static inline unsigned host_mask(__m128i x)
{
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')),
                             _mm_cmpeq_epi8(x, _mm_set1_epi8('\t')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8(',')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('@')));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* The first byte at or after b[i] (before `end`) that may not appear inside a field line
 * (fstop). Sixteen bytes at a time (SSE2, the x86-64 baseline) or eight (other machines): the
 * last few bytes are read as the block ending at `end`, ignoring the bytes before i in it (they
 * were checked already, or belong to an earlier line). Reads nothing outside b[0..end). */
static inline size_t scan_stop(const char *b, size_t i, size_t end)
{
#ifdef HAVE_SSE2
    while (i + 16 <= end) {
        unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(b + i)));
        if (m != 0)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
    if (i < end && end >= 16) {
        unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(b + end - 16)));
        m >>= 16 - (end - i);
        return m != 0 ? i + (size_t)__builtin_ctz(m) : end;
    }
#else
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (i + 8 <= end) {
        uint64_t x;
        memcpy(&x, b + i, 8);
        uint64_t ctl = (x - ones * 0x20) & ~x & high;
        uint64_t y = x ^ (ones * 0x7f);
        uint64_t del = (y - ones) & ~y & high;
        if ((ctl | del) != 0) {
            for (size_t k = i; k < i + 8; k++)
                if (fstop[(unsigned char)b[k]])
                    return k;
        }
        i += 8;
    }
    if (i < end && end >= 8) {
        /* If the word ending at `end` has no candidate, neither have its last few bytes. */
        uint64_t x;
        memcpy(&x, b + end - 8, 8);
        uint64_t ctl = (x - ones * 0x20) & ~x & high;
        uint64_t y = x ^ (ones * 0x7f);
        uint64_t del = (y - ones) & ~y & high;
        if ((ctl | del) == 0)
            return end;
    }
#endif
    for (; i < end; i++)
        if (fstop[(unsigned char)b[i]])
            return i;
    return end;
}

/* The first byte of l[i..n) that is not a VCHAR, or (when q) is '?'; n when none is. Reads
 * nothing outside l[0..n). */
static inline size_t scan_target(const char *l, size_t i, size_t n, bool q)
{
#ifdef HAVE_SSE2
    while (i + 16 <= n) {
        unsigned m = target_mask(_mm_loadu_si128((const __m128i *)(const void *)(l + i)), q);
        if (m != 0)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
    if (i < n && n >= 16) {
        unsigned m = target_mask(_mm_loadu_si128((const __m128i *)(const void *)(l + n - 16)), q);
        m >>= 16 - (n - i);
        return m != 0 ? i + (size_t)__builtin_ctz(m) : n;
    }
#endif
    while (i < n && is_vchar((unsigned char)l[i]) && !(q && l[i] == '?'))
        i++;
    return i;
}

/* a[0..n) equals `lit` ignoring ASCII case. `lit` is lower-case letters, digits and '-' only,
 * and `a` holds no control byte (a field line's bytes): then (a[i] | 0x20) == lit[i] only for the
 * letter in either case, or the same digit or '-' (0x10-0x19 and CR, the other bytes that map
 * to those, are control bytes). */
static inline bool caseeq(const char *a, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return false;
    /* The same test eight or four bytes a step (the last step overlapping the one before):
     * `lit` is a literal, so its words are constants and `a` is loaded once a step. */
    if (n >= 8) {
        uint64_t x, y;
        for (size_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, lit + i, 8);
            if ((x | 0x2020202020202020ull) != y)
                return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, lit + n - 8, 8);
        return (x | 0x2020202020202020ull) == y;
    }
    if (n >= 4) {
        uint32_t x, y, x2, y2;
        memcpy(&x, a, 4);
        memcpy(&y, lit, 4);
        memcpy(&x2, a + n - 4, 4);
        memcpy(&y2, lit + n - 4, 4);
        return (x | 0x20202020u) == y && (x2 | 0x20202020u) == y2;
    }
    for (size_t i = 0; i < n; i++)
        if ((a[i] | 0x20) != lit[i])
            return false;
    return true;
}

void weft_http_parser_init(struct weft_http_parser *p, const struct weft_http_limits *lim)
{
    memset(p, 0, sizeof(*p));
    if (lim != NULL)
        p->lim = *lim;
    if (p->lim.max_target == 0)
        p->lim.max_target = WEFT_HTTP_MAX_TARGET;
    if (p->lim.max_header_bytes == 0)
        p->lim.max_header_bytes = WEFT_HTTP_MAX_HEADER_BYTES;
    if (p->lim.max_headers == 0)
        p->lim.max_headers = WEFT_HTTP_MAX_HEADERS;
}

/* The buffer moved since the last call (a stream's buffer grows or is compacted): move every
 * slice taken from the old one by the same offset. Slices outside it (literals) stay. */
static void rebase_str(struct weft_http_str *s, uintptr_t old, size_t oldlen, const char *nb)
{
    uintptr_t a = (uintptr_t)s->p;
    if (s->p != NULL && a >= old && a <= old + oldlen)
        s->p = nb + (a - old);
}

static void rebase(struct weft_http_parser *p, struct weft_http_head *h, const char *nb)
{
    uintptr_t old = (uintptr_t)p->base;
    size_t oldlen = p->pos; /* every slice lies in the lines parsed so far */
    rebase_str(&h->method, old, oldlen, nb);
    rebase_str(&h->target, old, oldlen, nb);
    rebase_str(&h->path, old, oldlen, nb);
    rebase_str(&h->query, old, oldlen, nb);
    for (size_t i = 0; i < h->nheaders; i++) {
        rebase_str(&h->headers[i].name, old, oldlen, nb);
        rebase_str(&h->headers[i].value, old, oldlen, nb);
    }
}

/* Content-Length: 1*DIGIT, once. A repeated field or a list ("5, 5"), which RFC 9110 8.6 lets a
 * recipient either merge or reject, is rejected: two parsers must never disagree on it. */
static int parse_cl(const char *v, size_t n, int64_t *out)
{
    if (*out >= 0 || n == 0)
        return -400;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (INT64_MAX - 9) / 10)
            return -400; /* not a digit, or an overflow */
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

typedef __typeof__(((struct weft_http_parser *)0)->f) facts_t;
/* Split a comma-separated list and call fn on each non-empty element (OWS trimmed). */
static int each_elem(const char *v, size_t n, int (*fn)(const char *, size_t, void *), void *arg)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (b > a) {
            int r = fn(v + a, b - a, arg);
            if (r < 0)
                return r;
        }
        i = j + 1;
    }
    return 0;
}

static bool all_tchar(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!tchar[(unsigned char)v[i]])
            return false;
    return n > 0;
}

static int te_elem(const char *v, size_t n, void *arg)
{
    facts_t *f = arg;
    if (f->te_chunked)
        f->te_bad = true; /* something after chunked (or chunked twice) */
    if (!all_tchar(v, n))
        f->te_bad = true; /* parameters or junk: refuse rather than guess */
    else if (caseeq(v, n, "chunked"))
        f->te_chunked = true;
    else
        f->te_other = true;
    return 0;
}

static int conn_elem(const char *v, size_t n, void *arg)
{
    facts_t *f = arg;
    if (caseeq(v, n, "close"))
        f->conn_close = true;
    else if (caseeq(v, n, "keep-alive"))
        f->conn_keep = true;
    else if (caseeq(v, n, "upgrade"))
        f->conn_upgrade = true;
    return 0;
}

/* The request line: method SP request-target SP HTTP-version (RFC 9112 3). */
static int parse_request_line(struct weft_http_head *h, const char *l, size_t n,
                              const struct weft_http_limits *lim)
{
    /* l[n] is the line's CR: no token byte and no VCHAR, so it stops each scan. */
    size_t i = 0;
    if (n > 4 && memcmp(l, "GET ", 4) == 0) {
        i = 3; /* the usual method: what the scan below would find */
    } else {
        while (tchar[(unsigned char)l[i]])
            i++;
        if (i == 0 || i > MAX_METHOD || i == n || l[i] != ' ')
            return -400;
    }
    h->method = (struct weft_http_str){l, i};
    size_t t0 = ++i;
    /* The target: VCHARs up to a space; its first '?' (if any) starts the query. */
    i = scan_target(l, i, n, true);
    size_t q = SIZE_MAX;
    if (l[i] == '?') {
        q = i - t0;
        i = scan_target(l, i + 1, n, false);
    }
    if (i - t0 > lim->max_target)
        return -414;
    if (i == t0 || i == n || l[i] != ' ')
        return -400; /* no target, a second space, a control or non-ASCII byte */
    h->target = (struct weft_http_str){l + t0, i - t0};
    i++;
    if (n - i != 8 || memcmp(l + i, "HTTP/", 5) != 0 || l[i + 6] != '.')
        return -400;
    char maj = l[i + 5], min = l[i + 7];
    if (maj < '0' || maj > '9' || min < '0' || min > '9')
        return -400;
    if (maj != '1')
        return -505;
    h->minor = min == '0' ? 0 : 1; /* 1.x with x > 1: treated as 1.1 (RFC 9110 2.5) */

    /* The target's form (RFC 9112 3.2). */
    const char *t = h->target.p;
    size_t tn = h->target.n;
    size_t ps = 0, pe;
    if (t[0] == '/') {
        if (h->method.n == 7 && memcmp(h->method.p, "CONNECT", 7) == 0)
            return -400;
        ps = 0;
    } else if (h->method.n == 7 && memcmp(h->method.p, "CONNECT", 7) == 0) {
        if (t[0] == '*')
            return -400;
        h->path = h->target; /* authority-form */
        return 0;
    } else if (tn == 1 && t[0] == '*') {
        if (!weft_http_str_eq(h->method, "OPTIONS"))
            return -400;
        h->path = h->target;
        return 0;
    } else {
        /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
        size_t k = 0;
        while (k < tn && ((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z') ||
                          (k > 0 && ((t[k] >= '0' && t[k] <= '9') || t[k] == '+' ||
                                     t[k] == '-' || t[k] == '.'))))
            k++;
        if (k == 0 || tn - k < 3 || memcmp(t + k, "://", 3) != 0)
            return -400;
        k += 3;
        while (k < tn && t[k] != '/' && t[k] != '?')
            k++;
        ps = k; /* the authority stops at the first '?': q (if any) is at or after ps */
    }
    pe = q < tn ? q : tn;
    if (pe == ps)
        h->path = (struct weft_http_str){"/", 1}; /* "http://host" means "/" */
    else
        h->path = (struct weft_http_str){t + ps, pe - ps};
    if (pe < tn)
        h->query = (struct weft_http_str){t + pe + 1, tn - pe - 1};
    return 0;
}

static inline __attribute__((always_inline)) int
field_facts(struct weft_http_head *h, facts_t *f, const char *base, const char *l, size_t nl,
            const char *v, size_t vn);

/* One header field line (RFC 9112 5): field-name ":" OWS field-value OWS. */
/* The line's bytes were checked by scan_stop already: no control byte but HTAB, no DEL; and
 * l[n] is its CR, which stops every scan below. */
static inline int parse_field(struct weft_http_head *h, facts_t *f, const char *base,
                              const char *l, size_t n, size_t cap)
{
    /* The name: four bytes a step while they are all token bytes. A line starting with SP or
     * HTAB (obsolete line folding) has an empty name. */
    const unsigned char *u = (const unsigned char *)l;
    size_t i = 0;
    while (i + 4 <= n && (tchar[u[i]] & tchar[u[i + 1]] & tchar[u[i + 2]] & tchar[u[i + 3]]))
        i += 4;
    while (tchar[u[i]])
        i++;
    if (i == 0 || l[i] != ':')
        return -400; /* folding, empty name, whitespace before the colon, a bad name byte */
    size_t nl = i++;
    while (ows[u[i]])
        i++;
    size_t v0 = i, ve = n;
    while (ve > v0 && ows[u[ve - 1]])
        ve--;
    if (h->nheaders >= cap)
        return -431;
    struct weft_http_header *hd = &h->headers[h->nheaders++];
    hd->name = (struct weft_http_str){l, nl};
    hd->value = (struct weft_http_str){l + v0, ve - v0};
    return field_facts(h, f, base, l, nl, l + v0, ve - v0);
}

/* What a field line (name l[0..nl), value v[0..vn), both checked) tells: the fields framing
 * depends on, recognised by length and first byte before comparing. 0 or -status. */
static inline __attribute__((always_inline)) int
field_facts(struct weft_http_head *h, facts_t *f, const char *base, const char *l, size_t nl,
            const char *v, size_t vn)
{
    switch (nl) {
    case 4:
        if ((l[0] | 0x20) == 'h' && caseeq(l, nl, "host")) {
            if (++f->hosts > 1)
                return -400;
            const unsigned char *hv = (const unsigned char *)v;
            size_t k = 0;
#ifdef HAVE_SSE2
            /* Sixteen bytes a step; the last block is the one ending at the value's end, which
             * lies at least 16 bytes into the buffer (after a request line of 14 or more bytes
             * with its CRLF, and "Host:"). */
            if (vn > 0 && (size_t)(v + vn - base) >= 16) {
                for (; k + 16 <= vn; k += 16)
                    if (host_mask(_mm_loadu_si128((const __m128i *)(const void *)(v + k))))
                        return -400;
                if (k < vn) {
                    unsigned m = host_mask(
                        _mm_loadu_si128((const __m128i *)(const void *)(v + vn - 16)));
                    if (m >> (16 - (vn - k)))
                        return -400;
                }
                break;
            }
#endif
            for (; k + 4 <= vn; k += 4)
                if (host_bad[hv[k]] | host_bad[hv[k + 1]] | host_bad[hv[k + 2]] |
                    host_bad[hv[k + 3]])
                    return -400;
            for (; k < vn; k++)
                if (host_bad[hv[k]])
                    return -400;
        }
        break;
    case 6:
        if ((l[0] | 0x20) == 'e' && caseeq(l, nl, "expect"))
            f->expect = caseeq(v, vn, "100-continue") && f->expect == 0 ? 1 : -1;
        break;
    case 7:
        if ((l[0] | 0x20) == 'u' && caseeq(l, nl, "upgrade"))
            f->has_upgrade = true;
        break;
    case 10:
        if ((l[0] | 0x20) == 'c' && caseeq(l, nl, "connection"))
            return each_elem(v, vn, conn_elem, f);
        break;
    case 14:
        if ((l[0] | 0x20) == 'c' && caseeq(l, nl, "content-length"))
            return parse_cl(v, vn, &h->content_length);
        break;
    case 17:
        if ((l[0] | 0x20) == 't' && caseeq(l, nl, "transfer-encoding")) {
            f->te = true;
            if (vn == 0)
                f->te_bad = true;
            return each_elem(v, vn, te_elem, f);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* The empty line was reached: decide framing and persistence (RFC 9112 6.3, 9.3). */
static inline __attribute__((always_inline)) int finish(struct weft_http_head *h, facts_t *f)
{
    if (h->minor == 1 && f->hosts == 0)
        return -400;
    if (f->te) {
        if (h->minor == 0)
            return -400; /* Transfer-Encoding in HTTP/1.0: faulty framing */
        if (h->content_length >= 0)
            return -400; /* both: the classic smuggling vector */
        if (f->te_bad)
            return -400;
        if (!f->te_chunked)
            return -400; /* chunked must be the final coding */
        if (f->te_other)
            return -501; /* gzip, chunked: a coding this server does not decode */
        h->chunked = true;
    }
    if (f->expect < 0)
        return -417;
    h->expect_continue = f->expect == 1 && h->minor == 1;
    h->keep_alive = h->minor == 1 ? !f->conn_close : (f->conn_keep && !f->conn_close);
    h->upgrade = f->conn_upgrade && f->has_upgrade;
    return 0;
}

/* Start a request's head afresh. */
static inline void head_reset(struct weft_http_parser *p, struct weft_http_head *h)
{
    struct weft_http_header *hs = h->headers;
    weft__http_zero(h, sizeof(*h));
    h->headers = hs;
    h->content_length = -1;
    memset(&p->f, 0, sizeof(p->f));
}

/*
 * The fast path: the first call for a request, with the whole head in buf, parsed in one pass
 * (no line end searched before the line is read, no state kept between lines). It takes only
 * the common shapes: a request line with an origin-form target ("/...") and HTTP/1.x, no empty
 * lines before it; field lines as parse_field() reads them. It accepts exactly what the
 * incremental loop below would accept for these bytes (the same checks, each line's bytes
 * checked by the same scans; see the comments), with the same result, and returns 0 at anything
 * else (an incomplete head, any error, another form): the caller then resets the head and runs
 * the incremental loop from the start, so every refusal and its status come from one place.
 */
static ssize_t parse_whole(struct weft_http_parser *p, const char *buf, size_t len,
                           struct weft_http_head *h, size_t cap)
{
    const unsigned char *u = (const unsigned char *)buf;
    /* The method: a token and a space (parse_request_line's checks); not CONNECT, whose target
     * is an authority. */
    size_t i;
    if (len > 4 && memcmp(buf, "GET ", 4) == 0) {
        i = 3;
    } else {
        i = 0;
        while (i < len && tchar[u[i]])
            i++;
        if (i == 0 || i > MAX_METHOD || i == len || buf[i] != ' ' ||
            (i == 7 && memcmp(buf, "CONNECT", 7) == 0))
            return 0;
    }
    h->method = (struct weft_http_str){buf, i};
    /* The target: "/" then VCHARs up to the space; its first '?' starts the query. Every byte
     * scanned is a VCHAR, so no LF lies before the version: the incremental loop's line is the
     * same one. */
    size_t t0 = ++i;
    if (t0 >= len || buf[t0] != '/')
        return 0;
    i = scan_target(buf, t0, len, true);
    size_t q = SIZE_MAX;
    if (i < len && buf[i] == '?') {
        q = i - t0;
        i = scan_target(buf, i + 1, len, false);
    }
    size_t tn = i - t0;
    /* " HTTP/1.<digit>" and the line's CRLF. */
    if (tn > p->lim.max_target || len - i < 11 || memcmp(buf + i, " HTTP/1.", 8) != 0 ||
        u[i + 8] - (unsigned)'0' > 9 || buf[i + 9] != '\r' || buf[i + 10] != '\n')
        return 0;
    const char *t = buf + t0;
    h->target = (struct weft_http_str){t, tn};
    h->minor = buf[i + 8] == '0' ? 0 : 1;
    size_t pe = q < tn ? q : tn; /* >= 1: t[0] is '/' */
    h->path = (struct weft_http_str){t, pe};
    if (pe < tn)
        h->query = (struct weft_http_str){t + pe + 1, tn - pe - 1};

    /* The field lines, up to the empty line, all within the header section's limit. */
    size_t start = i + 11;
    size_t bound = start + p->lim.max_header_bytes;
    size_t end = len < bound ? len : bound;
    facts_t *f = &p->f;
    size_t pos = start;
    for (;;) {
        if (pos + 2 > end)
            return 0;
        if (buf[pos] == '\r') {
            if (buf[pos + 1] != '\n' || finish(h, f) < 0)
                return 0;
            p->state = S_HEADERS;
            p->line_start = start;
            p->pos = pos + 2;
            p->base = buf;
            return (ssize_t)(pos + 2);
        }
        /* The name: token bytes, then ':' (no folding, no empty name, no space before it). */
        size_t k = pos;
        while (k + 4 <= end && (tchar[u[k]] & tchar[u[k + 1]] & tchar[u[k + 2]] & tchar[u[k + 3]]))
            k += 4;
        while (k < end && tchar[u[k]])
            k++;
        if (k == pos || k == end || buf[k] != ':')
            return 0;
        size_t nl = k - pos;
        k++;
        while (k < end && ows[u[k]])
            k++;
        size_t v0 = k;
        /* The line's end: the first stop byte (the name, ':' and OWS hold none, so it is the one
         * scan_stop finds from the line's start), a CR followed by LF, within the limit. */
        k = scan_stop(buf, v0, end);
        if (k + 1 >= end || buf[k] != '\r' || buf[k + 1] != '\n')
            return 0;
        size_t ve = k;
        while (ve > v0 && ows[u[ve - 1]])
            ve--;
        if (h->nheaders >= cap)
            return 0;
        struct weft_http_header *hd = &h->headers[h->nheaders++];
        hd->name = (struct weft_http_str){buf + pos, nl};
        hd->value = (struct weft_http_str){buf + v0, ve - v0};
        if (field_facts(h, f, buf, buf + pos, nl, buf + v0, ve - v0) < 0)
            return 0;
        pos = k + 2;
    }
}

/* The incremental loop: the lines completed since the last call (a function of its own, so
 * that the fast path's calls do not pay for its registers). */
static __attribute__((noinline)) ssize_t parse_lines(struct weft_http_parser *p, const char *buf,
                                                     size_t len, struct weft_http_head *h,
                                                     size_t cap)
{
    if (p->state == S_LINE)
        head_reset(p, h);
    else if (p->base != buf)
        rebase(p, h, buf);
    p->base = buf;
    facts_t *f = &p->f;

    size_t pos = p->pos;
    size_t from = p->scan > pos ? p->scan : pos; /* bytes before it were looked at already */
    while (p->state == S_LINE) {
        const char *nlp = from < len ? memchr(buf + from, '\n', len - from) : NULL;
        if (nlp == NULL) {
            p->scan = len;
            p->pos = pos;
            /* An unfinished line already over its limit is refused now, not at its end. */
            if (len - pos > p->lim.max_target + MAX_METHOD + 16) {
                const char *sp = memchr(buf + pos, ' ', len - pos);
                return sp == NULL ? -400 : -414;
            }
            return 0;
        }
        size_t e = (size_t)(nlp - buf); /* the LF */
        if (e == pos || buf[e - 1] != '\r')
            return -400; /* a bare LF where CRLF is required */
        const char *l = buf + pos;
        size_t n = e - 1 - pos;
        /* A bare CR or a NUL inside the request line is refused by the checks of its parts
         * (method token, target bytes, version): none admits either. */
        size_t next = e + 1;
        if (n == 0) {
            /* Empty lines before the request line are ignored (RFC 9112 2.2), a few. */
            if (next > 64)
                return -400;
            pos = from = next;
            continue;
        }
        int r = parse_request_line(h, l, n, &p->lim);
        if (r < 0)
            return r;
        p->state = S_HEADERS;
        p->line_start = next; /* the header section starts here */
        pos = from = next;
    }

    /* The header section: one pass finds a line's end and checks its bytes. The scan stops at
     * the section's limit. */
    size_t bound = p->line_start + p->lim.max_header_bytes;
    size_t end = len < bound ? len : bound;
    for (;;) {
        if (from == pos && pos + 2 <= len && buf[pos] == '\r' && buf[pos + 1] == '\n' &&
            pos + 2 <= bound) {
            /* The empty line (what the scan below would find at once). */
            int r = finish(h, f);
            p->pos = pos + 2;
            return r < 0 ? r : (ssize_t)(pos + 2);
        }
        size_t k = scan_stop(buf, from, end);
        if (k == end) {
            p->scan = end;
            p->pos = pos;
            return len >= bound ? -431 : 0; /* no line end within the limit: never fits */
        }
        if (buf[k] != '\r')
            return -400; /* a bare LF, NUL, another control byte or DEL */
        if (k + 1 == len) {
            p->scan = k; /* the CR's LF has not come yet */
            p->pos = pos;
            return 0;
        }
        if (buf[k + 1] != '\n')
            return -400; /* a bare CR */
        size_t next = k + 2;
        if (next > bound)
            return -431;
        if (k == pos) {
            int r = finish(h, f);
            p->pos = next;
            return r < 0 ? r : (ssize_t)next;
        }
        int r = parse_field(h, f, buf, buf + pos, k - pos, cap);
        if (r < 0)
            return r;
        pos = from = next;
    }
}

ssize_t weft_http_parse(struct weft_http_parser *p, const char *buf, size_t len,
                        struct weft_http_head *h, size_t cap)
{
    if (p->lim.max_target == 0)
        weft_http_parser_init(p, NULL);
    if (cap > p->lim.max_headers)
        cap = p->lim.max_headers;
    if (p->state == S_LINE && p->pos == 0 && p->scan == 0) {
        /* The first look at this request: the whole head may be there. */
        head_reset(p, h);
        ssize_t r = parse_whole(p, buf, len, h, cap);
        if (WEFT__HTTP_LIKELY(r > 0))
            return r;
    }
    return parse_lines(p, buf, len, h, cap); /* starts the head afresh when nothing was parsed */
}
