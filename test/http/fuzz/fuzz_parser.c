/*
 * libFuzzer target for the HTTP parser and the chunked decoder (scripts/fuzz-http.sh builds and
 * runs it). For each input: parse it whole; parse it again growing one piece at a time in a
 * buffer that moves between calls (the split points come from the input's first byte), and
 * check both agree; check every slice lies inside the buffer; then decode what follows the head
 * as a chunked body in pieces. Any crash, sanitizer report or disagreement is a finding (the
 * whole parse goes through the parser's fast path where it applies: the two must agree).
 */
#include <weft/http.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct weft_http_header h1[WEFT_HTTP_MAX_HEADERS], h2[WEFT_HTTP_MAX_HEADERS];

/* Every slice lies in the buffer (the parser's one literal: "/" for "http://host"). */
static void check_in(struct weft_http_str s, const char *b, size_t n)
{
    if (s.p == NULL || s.n == 0)
        return;
    if (s.p >= b && s.p + s.n <= b + n)
        return;
    if (s.n == 1 && s.p[0] == '/')
        return;
    abort();
}

/* Two slices hold the same bytes. */
static int same(struct weft_http_str x, struct weft_http_str y)
{
    return x.n == y.n && (x.n == 0 || memcmp(x.p, y.p, x.n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned step = data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    struct weft_http_parser p;
    struct weft_http_head a = {.headers = h1}, b = {.headers = h2};
    weft_http_parser_init(&p, NULL);
    ssize_t whole = weft_http_parse(&p, in, n, &a, WEFT_HTTP_MAX_HEADERS);
    if (whole > 0) {
        if ((size_t)whole > n)
            abort();
        check_in(a.method, in, n);
        check_in(a.target, in, n);
        check_in(a.path, in, n);
        check_in(a.query, in, n);
        for (size_t i = 0; i < a.nheaders; i++) {
            check_in(a.headers[i].name, in, n);
            check_in(a.headers[i].value, in, n);
        }
    }

    /* Incrementally, in a moving buffer. */
    weft_http_parser_init(&p, NULL);
    ssize_t part = 0;
    char *prev = NULL;
    for (size_t k = 0;; k += step) {
        size_t len = k < n ? k : n;
        char *buf = malloc(len + 1);
        memcpy(buf, in, len);
        part = weft_http_parse(&p, buf, len, &b, WEFT_HTTP_MAX_HEADERS);
        free(prev);
        prev = buf;
        if (part != 0 || len == n)
            break;
    }
    /* Errors may come earlier incrementally (a line over a limit), never a different verdict
     * on a complete request. */
    if (whole > 0 && part != whole)
        abort();
    if (whole < 0 && part > 0)
        abort();
    if (whole > 0) {
        /* The whole head takes the parser's one-pass fast path when it can, the growing one
         * the incremental loop: they must agree on everything. */
        if (b.nheaders != a.nheaders || b.content_length != a.content_length ||
            b.chunked != a.chunked || b.keep_alive != a.keep_alive || b.minor != a.minor ||
            b.expect_continue != a.expect_continue || b.upgrade != a.upgrade ||
            !same(a.method, b.method) || !same(a.target, b.target) || !same(a.path, b.path) ||
            !same(a.query, b.query) || (a.query.p == NULL) != (b.query.p == NULL))
            abort();
        for (size_t i = 0; i < a.nheaders; i++)
            if (!same(a.headers[i].name, b.headers[i].name) ||
                !same(a.headers[i].value, b.headers[i].value))
                abort();
    }
    free(prev);

    /* The rest as a chunked body, fed in pieces of `step` bytes. */
    size_t off = whole > 0 ? (size_t)whole : 0;
    struct weft_http_chunked c = {0};
    size_t have = off, fed = off, total = 0;
    while (!c.done && have < n) {
        fed = fed + step < n ? fed + step : n;
        for (;;) {
            const char *d;
            size_t dl;
            ssize_t used = weft_http_chunked_decode(&c, in + have, fed - have, &d, &dl);
            if (used < 0)
                return 0;
            if ((size_t)used > fed - have || (dl > 0 && (d < in + have || d + dl > in + fed)))
                abort();
            have += (size_t)used;
            total += dl;
            if (used == 0 || c.done)
                break;
        }
        if (fed == n && !c.done)
            break;
    }
    return 0;
}
