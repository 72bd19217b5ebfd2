/*
 * The request parser and the chunked decoder, without sockets: good requests and what they
 * parse to; the corpus of malformed and smuggling requests with their statuses; every request fed
 * at every split point (and in a buffer that moves between calls) gives the same answer as in
 * one piece; the limits (414, 431); the chunked coding split at every byte, and its errors; each
 * kind of byte at every position of header values and targets of every length up to 40 (the
 * parser scans them 16 or 8 bytes at a time, with a last block that overlaps what came before).
 */
#include "test.h"

#include <weft/http.h>

#include "corpus.h"

static struct weft_http_header hdrs[WEFT_HTTP_MAX_HEADERS];

static ssize_t parse_all(const char *req, size_t n, struct weft_http_head *h)
{
    struct weft_http_parser p;
    weft_http_parser_init(&p, NULL);
    h->headers = hdrs;
    return weft_http_parse(&p, req, n, h, WEFT_HTTP_MAX_HEADERS);
}

/* Feed req growing one byte at a time, each time from a fresh copy (the buffer moves). Returns
 * the first non-zero result and the head as parsed then (slices into `keep`). */
static ssize_t parse_split(const char *req, size_t n, size_t first, struct weft_http_head *h,
                           char **keep)
{
    struct weft_http_parser p;
    weft_http_parser_init(&p, NULL);
    h->headers = hdrs;
    char *prev = NULL;
    ssize_t r = 0;
    for (size_t k = first; k <= n; k++) {
        char *b = malloc(k + 1);
        memcpy(b, req, k);
        r = weft_http_parse(&p, b, k, h, WEFT_HTTP_MAX_HEADERS);
        free(prev);
        prev = b;
        if (r != 0)
            break;
        if (k == n)
            break;
    }
    *keep = prev;
    return r;
}

static bool eq(struct weft_http_str s, const char *lit)
{
    return weft_http_str_eq(s, lit);
}

static void test_simple_get(void)
{
    const char *r = "GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a:  2 \r\n\r\n";
    struct weft_http_head h;
    CHECK_EQ(parse_all(r, strlen(r), &h), (ssize_t)strlen(r));
    CHECK(eq(h.method, "GET"));
    CHECK(eq(h.target, "/a/b?x=1&y"));
    CHECK(eq(h.path, "/a/b"));
    CHECK(eq(h.query, "x=1&y"));
    CHECK_EQ(h.minor, 1);
    CHECK_EQ(h.nheaders, 3);
    CHECK(eq(h.headers[0].name, "Host") && eq(h.headers[0].value, "example.com"));
    CHECK(eq(h.headers[2].name, "x-a") && eq(h.headers[2].value, "2"));
    CHECK_EQ(h.content_length, -1);
    CHECK(!h.chunked && h.keep_alive && !h.expect_continue);
}

static void test_forms_and_versions(void)
{
    struct weft_http_head h;
    const char *r1 = "GET http://example.com:8080/p/q?z HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK(parse_all(r1, strlen(r1), &h) > 0);
    CHECK(eq(h.path, "/p/q") && eq(h.query, "z"));
    const char *r2 = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
    CHECK(parse_all(r2, strlen(r2), &h) > 0);
    CHECK(eq(h.path, "/") && h.query.p == NULL);
    const char *r3 = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(parse_all(r3, strlen(r3), &h) > 0);
    CHECK(eq(h.path, "*"));
    const char *r4 = "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
    CHECK(parse_all(r4, strlen(r4), &h) > 0);
    /* HTTP/1.0: no Host needed, closes unless keep-alive; 1.1 closes on Connection: close. */
    const char *r5 = "GET / HTTP/1.0\r\n\r\n";
    CHECK(parse_all(r5, strlen(r5), &h) > 0);
    CHECK(!h.keep_alive && h.minor == 0);
    const char *r6 = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK(parse_all(r6, strlen(r6), &h) > 0 && h.keep_alive);
    const char *r7 = "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n";
    CHECK(parse_all(r7, strlen(r7), &h) > 0 && !h.keep_alive);
    const char *r8 = "GET / HTTP/1.2\r\nHost: a\r\n\r\n"; /* a later 1.x is served as 1.1 */
    CHECK(parse_all(r8, strlen(r8), &h) > 0 && h.minor == 1);
    /* Leading empty lines are ignored. */
    const char *r9 = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_EQ(parse_all(r9, strlen(r9), &h), (ssize_t)strlen(r9));
    CHECK(eq(h.method, "GET"));
    /* An empty Host is allowed (RFC 9112 3.2), values may hold obs-text. */
    const char *r10 = "GET / HTTP/1.1\r\nHost:\r\nX: caf\xc3\xa9\r\n\r\n";
    CHECK(parse_all(r10, strlen(r10), &h) > 0);
}

static void test_framing(void)
{
    struct weft_http_head h;
    const char *r1 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\nbody";
    CHECK_EQ(parse_all(r1, strlen(r1), &h), (ssize_t)strlen(r1) - 4);
    CHECK_EQ(h.content_length, 42);
    /* Even identical duplicates are refused (RFC 9110 8.6 allows either; refusing is safer). */
    const char *r2 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n";
    CHECK_EQ(parse_all(r2, strlen(r2), &h), -400);
    const char *r2b = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n\r\n";
    CHECK_EQ(parse_all(r2b, strlen(r2b), &h), -400);
    const char *r3 = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n";
    CHECK(parse_all(r3, strlen(r3), &h) > 0 && h.chunked && h.content_length == -1);
    const char *r4 = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    CHECK(parse_all(r4, strlen(r4), &h) > 0 && h.expect_continue);
    /* A pipelined second request is not part of the first head. */
    const char *r5 = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_EQ(parse_all(r5, strlen(r5), &h), (ssize_t)strlen(r5) / 2);
    CHECK(eq(h.path, "/1"));
}

static void test_corpus(void)
{
    for (size_t i = 0; i < N_BAD; i++) {
        const struct bad_request *b = &bad_corpus[i];
        struct weft_http_head h;
        ssize_t r = parse_all(b->req, bad_len(b), &h);
        if (r != -b->status) {
            fprintf(stderr, "corpus %s: got %zd, want %d\n", b->name, r, -b->status);
            CHECK(0);
        }
        /* The same answer when the bytes come one at a time (maybe earlier, never different). */
        char *keep;
        r = parse_split(b->req, bad_len(b), 0, &h, &keep);
        free(keep);
        if (r != -b->status) {
            fprintf(stderr, "corpus %s split: got %zd, want %d\n", b->name, r, -b->status);
            CHECK(0);
        }
    }
}

static void test_every_split(void)
{
    const char *reqs[] = {
        "GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
        "\r\nPOST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX:\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        size_t n = strlen(reqs[i]);
        struct weft_http_head whole, part;
        static struct weft_http_header saved[WEFT_HTTP_MAX_HEADERS];
        CHECK_EQ(parse_all(reqs[i], n, &whole), (ssize_t)n);
        memcpy(saved, hdrs, sizeof(saved));
        for (size_t first = 0; first <= n; first++) {
            char *keep;
            ssize_t r = parse_split(reqs[i], n, first, &part, &keep);
            CHECK_EQ(r, (ssize_t)n);
            /* Slices were re-based into the last buffer: same offsets, same text. */
            CHECK(part.method.p == keep + (whole.method.p - reqs[i]));
            CHECK(part.path.n == whole.path.n && memcmp(part.path.p, whole.path.p, part.path.n) == 0);
            CHECK_EQ(part.nheaders, whole.nheaders);
            for (size_t k = 0; k < part.nheaders; k++) {
                CHECK(part.headers[k].name.p == keep + (saved[k].name.p - reqs[i]));
                CHECK(part.headers[k].value.n == saved[k].value.n);
            }
            CHECK_EQ(part.chunked, whole.chunked);
            CHECK_EQ(part.keep_alive, whole.keep_alive);
            free(keep);
        }
    }
}

static void test_limits(void)
{
    static char big[40000];
    struct weft_http_head h;
    /* 414: a long target, detected before the line ends. */
    int n = snprintf(big, sizeof(big), "GET /");
    memset(big + n, 'a', 9000);
    n += 9000;
    n += snprintf(big + n, sizeof(big) - (size_t)n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_EQ(parse_all(big, (size_t)n, &h), -414);
    CHECK_EQ(parse_all(big, 8300, &h), -414);
    CHECK_EQ(parse_all(big, 1000, &h), 0);
    /* 431: too many fields. */
    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 100; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "X-%d: v\r\n", i);
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
    CHECK_EQ(parse_all(big, (size_t)n, &h), -431);
    /* 431: a header section over 8 KiB, also while incomplete. */
    n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'v', 9000);
    n += 9000;
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
    CHECK_EQ(parse_all(big, (size_t)n, &h), -431);
    CHECK_EQ(parse_all(big, 8500, &h), -431);
    /* Custom limits. */
    struct weft_http_limits lim = {.max_target = 10, .max_headers = 2};
    struct weft_http_parser p;
    weft_http_parser_init(&p, &lim);
    h.headers = hdrs;
    const char *r = "GET /0123456789a HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_EQ(weft_http_parse(&p, r, strlen(r), &h, 100), -414);
    weft_http_parser_init(&p, &lim);
    r = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    CHECK_EQ(weft_http_parse(&p, r, strlen(r), &h, 100), -431);
}

/* Decode `in` fed in pieces of `step` bytes (the unconsumed rest kept in front). */
static ssize_t dechunk(const char *in, size_t n, size_t step, char *out, size_t *outlen)
{
    struct weft_http_chunked c = {0};
    char buf[4096];
    size_t have = 0, fed = 0;
    *outlen = 0;
    while (!c.done) {
        size_t k = n - fed < step ? n - fed : step;
        memcpy(buf + have, in + fed, k);
        have += k;
        fed += k;
        for (;;) {
            const char *d;
            size_t dl;
            ssize_t used = weft_http_chunked_decode(&c, buf, have, &d, &dl);
            if (used < 0)
                return used;
            if (dl > 0)
                memcpy(out + *outlen, d, dl);
            *outlen += dl;
            memmove(buf, buf + used, have - (size_t)used);
            have -= (size_t)used;
            if (used == 0 || c.done)
                break;
        }
        if (!c.done && fed == n)
            return 0; /* incomplete */
    }
    return (ssize_t)(fed - have);
}

static void test_chunked(void)
{
    const char *in = "5\r\nhello\r\n1a;ext=1;q=\"x y\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                     "0\r\nTrailer-A: 1\r\nB: 2\r\n\r\nGET";
    size_t n = strlen(in);
    char out[256];
    size_t ol;
    for (size_t step = 1; step <= n; step++) {
        ssize_t r = dechunk(in, n, step, out, &ol);
        CHECK_EQ(r, (ssize_t)n - 3); /* stops before the next request */
        CHECK_EQ(ol, 31);
        CHECK(memcmp(out, "helloabcdefghijklmnopqrstuvwxyz", 31) == 0);
    }
    const char *bad[] = {
        "5\r\nhelloX\r\n0\r\n\r\n",            /* data longer than its size */
        "5\nhello\r\n0\r\n\r\n",               /* bare LF after the size */
        "5\r\nhello\n0\r\n\r\n",               /* bare LF after the data */
        "g\r\n",                              /* not hex */
        "\r\n",                               /* no size */
        "-5\r\n",                             /* sign */
        "10000000000000000\r\n",              /* 2^64: overflow */
        "fffffffffffffffff\r\n",              /* overflow */
        "5 \r\nhello\r\n",                    /* whitespace not before an extension */
        "0\r\n X: folded\r\n\r\n",            /* folded trailer */
        "0\r\nX: a\rb\r\n\r\n",               /* bare CR in a trailer */
        "0\r\n\n",                            /* bare LF ending */
        "5;a\x01\r\nhello\r\n0\r\n\r\n",      /* CTL in an extension */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ssize_t r = dechunk(bad[i], strlen(bad[i]), 1, out, &ol);
        if (r != -400) {
            fprintf(stderr, "bad chunked %zu: %zd\n", i, r);
            CHECK(0);
        }
    }
    /* An endless extension or trailer hits the limit (431). */
    static char ext[20000];
    int k = snprintf(ext, sizeof(ext), "5;");
    memset(ext + k, 'x', 10000);
    CHECK_EQ(dechunk(ext, (size_t)k + 10000, 4096, out, &ol), -431);
}

/* Bytes with a meaning to the scanners: controls, HTAB, CR, LF, SP, the VCHAR ends, DEL,
 * obs-text, '?', ':'. */
static const unsigned char probe[] = {0x00, 0x01, '\t', '\n', '\r', 0x1f, ' ', '!', '?', ':',
                                      '~', 0x7f, 0x80, 0xff};

static void test_scan_bytes(void)
{
    char req[256], want[64];
    struct weft_http_head h;
    size_t checked = 0;
    for (size_t L = 1; L <= 40; L++) {
        for (size_t j = 0; j < L; j++) {
            for (size_t b = 0; b < sizeof(probe); b++) {
                unsigned char c = probe[b];
                /* A header value: refused for a control byte other than HTAB, or DEL. */
                memset(want, 'v', L);
                want[j] = (char)c;
                int n = snprintf(req, sizeof(req), "GET /t HTTP/1.1\r\nHost: a\r\nX-V: ");
                memcpy(req + n, want, L);
                n += (int)L;
                n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
                bool bad = (c < 0x20 && c != '\t') || c == 0x7f;
                for (size_t cut = 0; cut < 2; cut++) {
                    /* Whole, and in two pieces cut just after the byte. */
                    struct weft_http_parser p;
                    weft_http_parser_init(&p, NULL);
                    h.headers = hdrs;
                    ssize_t r = 0;
                    /* Buffers of the exact size: ASan sees any read past their end. */
                    size_t first = 31 + j + 1;
                    char *m1 = malloc(first), *m2 = malloc((size_t)n);
                    memcpy(m1, req, first);
                    memcpy(m2, req, (size_t)n);
                    if (cut == 1)
                        r = weft_http_parse(&p, m1, first, &h, WEFT_HTTP_MAX_HEADERS);
                    if (r == 0)
                        r = weft_http_parse(&p, m2, (size_t)n, &h, WEFT_HTTP_MAX_HEADERS);
                    free(m1);
                    if (bad) {
                        free(m2);
                        CHECK_EQ(r, -400);
                        continue;
                    }
                    CHECK_EQ(r, (ssize_t)n);
                    CHECK_EQ(h.nheaders, 2u);
                    size_t a = 0, e = L;
                    while (a < e && (want[a] == ' ' || want[a] == '\t'))
                        a++;
                    while (e > a && (want[e - 1] == ' ' || want[e - 1] == '\t'))
                        e--;
                    CHECK_EQ(h.headers[1].value.n, e - a);
                    CHECK(memcmp(h.headers[1].value.p, want + a, e - a) == 0);
                    free(m2);
                    checked++;
                }

                /* A target: VCHARs only; the first '?' starts the query. */
                memset(want, 't', L);
                want[j] = (char)c;
                n = snprintf(req, sizeof(req), "GET /");
                memcpy(req + n, want, L);
                n += (int)L;
                n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\nHost: a\r\n\r\n");
                char *m = malloc((size_t)n);
                memcpy(m, req, (size_t)n);
                ssize_t r = parse_all(m, (size_t)n, &h);
                if (c <= 0x20 || c >= 0x7f) {
                    free(m);
                    CHECK_EQ(r, -400);
                    continue;
                }
                CHECK_EQ(r, (ssize_t)n);
                CHECK_EQ(h.target.n, L + 1);
                if (c == '?') {
                    CHECK_EQ(h.path.n, j + 1);
                    CHECK(h.query.p == h.target.p + j + 2);
                    CHECK_EQ(h.query.n, L - j - 1);
                } else {
                    CHECK_EQ(h.path.n, L + 1);
                    CHECK(h.query.p == NULL);
                }
                free(m);
                checked++;
            }
        }
    }
    CHECK(checked > 10000);

    /* A Host value (checked four bytes a step) with a byte that cannot be in an authority at
     * each position: refused, unless it is OWS at an end (trimmed). */
    const char hostbad[] = {' ', '\t', ',', '/', '@'};
    for (size_t L = 1; L <= 12; L++)
        for (size_t j = 0; j < L; j++)
            for (size_t b = 0; b < sizeof(hostbad); b++) {
                memset(want, 'h', L);
                want[j] = hostbad[b];
                int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %.*s\r\n\r\n",
                                 (int)L, want);
                bool ows_end = (hostbad[b] == ' ' || hostbad[b] == '\t') && (j == 0 || j == L - 1);
                CHECK_EQ(parse_all(req, (size_t)n, &h), ows_end ? (ssize_t)n : -400);
            }
}

static void test_helpers(void)
{
    char out[64];
    CHECK_EQ(weft_http_pct_decode("/a%2e%2E/b%20c", 14, out, sizeof(out)), 8);
    CHECK_STR(out, "/a../b c");
    CHECK_EQ(weft_http_pct_decode("%00", 3, out, sizeof(out)), -EINVAL);
    CHECK_EQ(weft_http_pct_decode("%2", 2, out, sizeof(out)), -EINVAL);
    CHECK_EQ(weft_http_pct_decode("%zz", 3, out, sizeof(out)), -EINVAL);
    CHECK_EQ(weft_http_pct_decode("abcdef", 6, out, 4), -ENOSPC);
    CHECK_STR(weft_http_reason(404), "Not Found");
    struct weft_http_str s = {"Content-Type", 12};
    CHECK(weft_http_str_caseeq(s, "content-type") && !weft_http_str_eq(s, "content-type"));
}

TEST_MAIN(test_simple_get, test_forms_and_versions, test_framing, test_corpus, test_every_split,
          test_limits, test_chunked, test_scan_bytes, test_helpers)
