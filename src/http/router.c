/*
 * The router: routes tried in the order added; a pattern is literal segments and {name}
 * segments (one non-empty path segment each), and a last {name*} segment takes the rest of the
 * path. A path some route matches with another method gets 405 with Allow, else 404.
 */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct seg {
    const char *text; /* literal text, or the parameter's name */
    size_t len;
    int kind; /* 0 literal, 1 {name}, 2 {name*} */
};

struct route {
    char *method;
    char *pattern; /* owns the segments' text */
    struct seg *segs;
    size_t nsegs;
    weft_http_handler_fn fn;
    void *arg;
};

struct weft_http_router {
    struct route *routes;
    size_t n, cap;
};

int weft_http_router_new(weft_http_router_t **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -ENOMEM;
}

void weft_http_router_free(weft_http_router_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->routes[i].method);
        free(r->routes[i].pattern);
        free(r->routes[i].segs);
    }
    free(r->routes);
    free(r);
}

int weft_http_route(weft_http_router_t *r, const char *method, const char *pattern,
                    weft_http_handler_fn fn, void *arg)
{
    if (r == NULL || method == NULL || method[0] == '\0' || pattern == NULL || pattern[0] != '/' ||
        fn == NULL)
        return -EINVAL;
    struct route rt = {.fn = fn, .arg = arg};
    rt.method = strdup(method);
    rt.pattern = strdup(pattern);
    size_t maxsegs = 1;
    for (const char *p = pattern; *p; p++)
        maxsegs += *p == '/';
    rt.segs = calloc(maxsegs, sizeof(*rt.segs));
    if (rt.method == NULL || rt.pattern == NULL || rt.segs == NULL)
        goto nomem;
    /* Split after the leading '/': "/" is one empty segment. */
    const char *p = rt.pattern + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        struct seg *s = &rt.segs[rt.nsegs++];
        s->text = p;
        s->len = len;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            s->text = p + 1;
            s->len = len - 2;
            s->kind = 1;
            if (s->len > 0 && s->text[s->len - 1] == '*') {
                s->len--;
                s->kind = 2;
                if (e != NULL)
                    goto inval; /* {rest*} only last */
            }
            if (s->len == 0)
                goto inval;
            for (size_t k = 0; k < s->len; k++)
                if (s->text[k] == '{' || s->text[k] == '}')
                    goto inval;
        } else if (memchr(p, '{', len) != NULL || memchr(p, '}', len) != NULL) {
            goto inval;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct route *nr = realloc(r->routes, cap * sizeof(*nr));
        if (nr == NULL)
            goto nomem;
        r->routes = nr;
        r->cap = cap;
    }
    r->routes[r->n++] = rt;
    return 0;
inval:
    free(rt.method);
    free(rt.pattern);
    free(rt.segs);
    return -EINVAL;
nomem:
    free(rt.method);
    free(rt.pattern);
    free(rt.segs);
    return -ENOMEM;
}

static void add_param(weft_http_request_t *req, const struct seg *s, const char *p, size_t len)
{
    if (req->nparams < WEFT_HTTP_MAX_PARAMS) {
        req->params[req->nparams].name = s->text;
        req->params[req->nparams].nlen = s->len;
        req->params[req->nparams].value = (struct weft_http_str){p, len};
        req->nparams++;
    }
}

/* Match `path` against the route; on success req's parameters are set. */
static bool match(const struct route *rt, struct weft_http_str path, weft_http_request_t *req)
{
    if (path.n == 0 || path.p[0] != '/')
        return false;
    const char *p = path.p + 1, *end = path.p + path.n;
    bool exhausted = false; /* the last path segment was consumed */
    req->nparams = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        const struct seg *s = &rt->segs[i];
        if (s->kind == 2) {
            add_param(req, s, exhausted ? end : p, exhausted ? 0 : (size_t)(end - p));
            return true;
        }
        if (exhausted)
            return false;
        const char *e = memchr(p, '/', (size_t)(end - p));
        if (e == NULL)
            e = end;
        size_t len = (size_t)(e - p);
        if (s->kind == 0) {
            if (len != s->len || memcmp(p, s->text, len) != 0)
                return false;
        } else {
            if (len == 0)
                return false;
            add_param(req, s, p, len);
        }
        if (e == end)
            exhausted = true;
        else
            p = e + 1;
    }
    return exhausted;
}

/* Append `m` to the Allow list unless it is there. */
static void allow_add(char *allow, size_t cap, size_t *alen, const char *m)
{
    size_t ml = strlen(m);
    const char *p = allow, *end = allow + *alen;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t l = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        if (l == ml && memcmp(p, m, ml) == 0)
            return;
        p = c != NULL ? c + 2 : end;
    }
    if (*alen + ml + 3 >= cap)
        return;
    if (*alen > 0) {
        memcpy(allow + *alen, ", ", 2);
        *alen += 2;
    }
    memcpy(allow + *alen, m, ml);
    *alen += ml;
}

static bool method_ok(const struct route *rt, struct weft_http_str m)
{
    return strcmp(rt->method, "*") == 0 || weft_http_str_eq(m, rt->method) ||
           (weft_http_str_eq(m, "HEAD") && strcmp(rt->method, "GET") == 0);
}

int weft_http_router_handler(weft_http_request_t *req, void *router)
{
    weft_http_router_t *r = router;
    char allow[256];
    size_t alen = 0;
    bool path_found = false;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = &r->routes[i];
        if (!match(rt, req->head.path, req))
            continue;
        if (method_ok(rt, req->head.method))
            return rt->fn(req, rt->arg);
        path_found = true;
        /* Collect Allow; GET brings HEAD. */
        allow_add(allow, sizeof(allow), &alen, rt->method);
        if (strcmp(rt->method, "GET") == 0)
            allow_add(allow, sizeof(allow), &alen, "HEAD");
    }
    req->nparams = 0;
    weft_http_header_add(req, "Content-Type", "text/plain");
    if (path_found) {
        allow[alen] = '\0';
        weft_http_header_add(req, "Allow", allow);
        return weft_http_respond(req, 405, "405 Method Not Allowed\n", 23);
    }
    return weft_http_respond(req, 404, "404 Not Found\n", 14);
}

bool weft_http_param(const weft_http_request_t *req, const char *name, struct weft_http_str *value)
{
    if (req == NULL || name == NULL)
        return false;
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nparams; i++) {
        if (req->params[i].nlen == n && memcmp(req->params[i].name, name, n) == 0) {
            if (value != NULL)
                *value = req->params[i].value;
            return true;
        }
    }
    return false;
}
