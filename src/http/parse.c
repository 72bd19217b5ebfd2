/*
 * The HTTP/1.1 request parser (RFC 9112) and the chunked decoder: incremental (each call looks
 * only at the lines completed since the last one), zero-copy (slices of the caller's buffer) and
 * strict: whatever could let two parsers disagree on where a request ends is refused with 400.
 * No allocation, no loop: the fuzzer and the differential test build this file alone.
 */
#include <weft/http.h>

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

/* field-value bytes: VCHAR, SP, HTAB, obs-text. */
static inline bool is_fvchar(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
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

/* The first byte of l[i..n) that is not a VCHAR, or (when q) is '?'; n when none is. l[n] must
 * be readable and not a VCHAR (the request line's CR). Reads nothing outside l[0..n]. */
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
    while (is_vchar((unsigned char)l[i]) && !(q && l[i] == '?'))
        i++;
    return i;
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* a[0..n) equals `lit` ignoring ASCII case. `lit` is lower-case letters, digits and '-' only,
 * and `a` holds no control byte (a field line's bytes): then (a[i] | 0x20) == lit[i] only for the
 * letter in either case, or the same digit or '-' (0x10-0x19 and CR, the other bytes that map
 * to those, are control bytes). */
static inline bool caseeq(const char *a, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((a[i] | 0x20) != lit[i])
            return false;
    return true;
}

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
        if (lower(s.p[i]) != lower(lit[i]))
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
    const char *v = l + v0;
    size_t vn = ve - v0;

    /* The fields framing depends on, recognised by length and first byte before comparing. */
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
static int finish(struct weft_http_head *h, facts_t *f)
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

ssize_t weft_http_parse(struct weft_http_parser *p, const char *buf, size_t len,
                        struct weft_http_head *h, size_t cap)
{
    if (p->lim.max_target == 0)
        weft_http_parser_init(p, NULL);
    if (p->state == S_LINE) {
        /* Nothing of this request was parsed yet: start its head afresh. */
        struct weft_http_header *hs = h->headers;
        memset(h, 0, sizeof(*h));
        h->headers = hs;
        h->content_length = -1;
        memset(&p->f, 0, sizeof(p->f));
    } else if (p->base != buf) {
        rebase(p, h, buf);
    }
    p->base = buf;
    if (cap > p->lim.max_headers)
        cap = p->lim.max_headers;
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

/* ---- chunked transfer coding (RFC 9112 7.1) ---- */

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

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

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
            int v = hexval(ch);
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
            if (ch == ' ' || ch == '\t' || ch == ':' || !tchar[(unsigned char)ch])
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

/* ---- helpers ---- */

ssize_t weft_http_pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (n - i < 3)
                return -EINVAL;
            int a = hexval(src[i + 1]), b = hexval(src[i + 2]);
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
