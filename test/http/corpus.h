/*
 * Malformed and smuggling requests, each with the status weft answers (and then closes). Shared
 * by the parser test, the server test (over the wire), the differential test and the fuzzer's
 * seed corpus. `len` 0: strlen.
 */
#ifndef WEFT_HTTP_CORPUS_H
#define WEFT_HTTP_CORPUS_H

#include <stddef.h>

struct bad_request {
    const char *name;
    const char *req;
    size_t len;
    int status;
};

#define H "Host: a\r\n"

static const struct bad_request bad_corpus[] = {
    /* framing ambiguities: what request smuggling uses */
    {"cl_and_te", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
    {"te_and_cl", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, 400},
    {"cl_differing_dup", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, 400},
    {"cl_differing_list", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 6\r\n\r\n", 0, 400},
    {"cl_same_dup", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, 400},
    {"cl_same_list", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", 0, 400},
    {"cl_plus", "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", 0, 400},
    {"cl_negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 0, 400},
    {"cl_hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", 0, 400},
    {"cl_trailing_junk", "POST / HTTP/1.1\r\n" H "Content-Length: 5a\r\n\r\n", 0, 400},
    {"cl_empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 0, 400},
    {"cl_inner_space", "POST / HTTP/1.1\r\n" H "Content-Length: 1 2\r\n\r\n", 0, 400},
    {"cl_overflow", "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n", 0, 400},
    {"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
    {"te_chunked_not_last", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 0, 400},
    {"te_chunked_twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400},
    {"te_gzip_only", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 0, 400},
    {"te_xchunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", 0, 400},
    {"te_chunked_param", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", 0, 400},
    {"te_vtab", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 0, 400},
    {"te_empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 0, 400},
    {"te_space_before_colon", "POST / HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n", 0, 400},
    {"te_unknown_coding", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, 501},
    {"obs_fold", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", 0, 400},
    {"obs_fold_tab", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", 0, 400},
    {"first_line_folded", "GET / HTTP/1.1\r\n " H "\r\n", 0, 400},
    /* line endings */
    {"bare_lf_request_line", "GET / HTTP/1.1\n" H "\r\n", 0, 400},
    {"bare_lf_header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 0, 400},
    {"bare_lf_end", "GET / HTTP/1.1\r\n" H "\n", 0, 400},
    {"bare_lf_only", "GET / HTTP/1.1\nHost: a\n\n", 0, 400},
    {"bare_cr_header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 0, 400},
    {"bare_cr_request_line", "GET /\r HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"nul_in_value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 35, 400},
    {"del_in_value", "GET / HTTP/1.1\r\n" H "X: a\x7f" "b\r\n\r\n", 0, 400},
    {"ctl_in_value", "GET / HTTP/1.1\r\n" H "X: a\x01" "b\r\n\r\n", 0, 400},
    /* tokens */
    {"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, 400},
    {"tab_before_colon", "GET / HTTP/1.1\r\n" H "X\t: a\r\n\r\n", 0, 400},
    {"bad_name_char", "GET / HTTP/1.1\r\n" H "X@Y: a\r\n\r\n", 0, 400},
    {"name_with_paren", "GET / HTTP/1.1\r\n" H "X(: a\r\n\r\n", 0, 400},
    {"empty_name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", 0, 400},
    {"no_colon", "GET / HTTP/1.1\r\n" H "Xa\r\n\r\n", 0, 400},
    {"bad_method_char", "G(T / HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"method_too_long", "GETGETGETGETGETGETGETGETGETGETGETGET / HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"two_spaces", "GET  / HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"space_in_target", "GET /a b HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"tab_separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"non_ascii_target", "GET /\xff HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"trailing_space", "GET / HTTP/1.1 \r\n" H "\r\n", 0, 400},
    {"lowercase_version", "GET / http/1.1\r\n" H "\r\n", 0, 400},
    {"version_junk", "GET / HTTP/1.1x\r\n" H "\r\n", 0, 400},
    {"version_short", "GET / HTTP/1\r\n" H "\r\n", 0, 400},
    {"http09", "GET /\r\n\r\n", 0, 400},
    {"bad_target_form", "GET a/b HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"asterisk_not_options", "GET * HTTP/1.1\r\n" H "\r\n", 0, 400},
    {"connect_origin_form", "CONNECT / HTTP/1.1\r\n" H "\r\n", 0, 400},
    /* Host */
    {"no_host", "GET / HTTP/1.1\r\n\r\n", 0, 400},
    {"two_hosts", "GET / HTTP/1.1\r\n" H "Host: b\r\n\r\n", 0, 400},
    {"host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, 400},
    {"host_with_at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0, 400},
    /* versions, expectations */
    {"http2", "GET / HTTP/2.0\r\n" H "\r\n", 0, 505},
    {"http0", "GET / HTTP/0.9\r\n" H "\r\n", 0, 505},
    {"expect_unknown", "POST / HTTP/1.1\r\n" H "Expect: 100-continuex\r\nContent-Length: 1\r\n\r\n", 0, 417},
};

#undef H

#define N_BAD (sizeof(bad_corpus) / sizeof(bad_corpus[0]))

static inline size_t bad_len(const struct bad_request *b)
{
    return b->len ? b->len : strlen(b->req);
}

#endif
