/*
 * PostgreSQL results: counts, column names, the command tag, and typed accessors of cells (text
 * and binary formats), made by query.c and pipeline.c.
 */
#include "pg_internal.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pg_blob {
    struct pg_blob *next;
    unsigned char *data; /* PQunescapeBytea's (PQfreemem) or NULL for binary cells */
};

/* Free a result's contents (its PGresult and decoded bytea values), not the struct. */
void weft__pg_result_clear(weft_pg_result_t *r)
{
    while (r->blobs != NULL) {
        struct pg_blob *b = r->blobs;
        r->blobs = b->next;
        if (b->data != NULL)
            PQfreemem(b->data);
        free(b);
    }
    PQclear(r->res);
    r->res = NULL;
    r->nrows = r->ncols = 0;
    r->all_binary = false;
    r->direct = false;
    r->oid_cols = 0;
}

/*
 * ---- direct cells ----
 *
 * PQgetvalue(), PQgetlength() and PQgetisnull() check their arguments and then load one cell
 * from the result's row array. A client that decodes a 1,000-row answer calls them thousands of
 * times: two of them per cell were 92k instructions per answer of two columns, more than all of
 * weft's own work for the query. The head of libpq's `struct pg_result` (libpq-int.h: the row
 * and column counts, the column descriptions, then the rows, each an array of {length, value}
 * cells whose length is -1 for a NULL) has had this layout since PostgreSQL 7.4. weft reads cells
 * through it, after its own range check, only when the libpq it runs with is one whose layout is
 * known (10 to 18) and a result built once with libpq's public calls reads back the same both
 * ways. Otherwise every getter asks libpq.
 */
struct pq_cell {
    int len; /* -1: NULL */
    char *value;
};
struct pq_result_head {
    int ntups;
    int nfields;
    void *attdescs;
    struct pq_cell **tuples;
};

static bool direct_ok;  /* the probe passed */
static bool direct_off; /* weft__pg_direct_cells(false) */
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;

/* Does a result built with libpq's calls read back the same through pq_result_head? */
static void direct_probe(void)
{
    int v = PQlibVersion();
    if (v < 100000 || v >= 190000)
        return;
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (res == NULL)
        return;
    PGresAttDesc at[3] = {{.name = "a", .format = 1, .typid = 23, .typlen = 4, .atttypmod = -1},
                          {.name = "b", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1},
                          {.name = "c", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1}};
    static const char *vals[2][3] = {{"1234", NULL, ""}, {"wxyz", "weft", NULL}};
    bool ok = PQsetResultAttrs(res, 3, at);
    for (int row = 0; ok && row < 2; row++)
        for (int col = 0; ok && col < 3; col++)
            ok = PQsetvalue(res, row, col, (char *)vals[row][col],
                            vals[row][col] != NULL ? (int)strlen(vals[row][col]) : -1);
    const struct pq_result_head *h = (const void *)res;
    ok = ok && h->ntups == 2 && h->nfields == 3 && h->tuples != NULL;
    for (int row = 0; ok && row < 2; row++) {
        for (int col = 0; ok && col < 3; col++) {
            const struct pq_cell *c = &h->tuples[row][col];
            ok = c->value == PQgetvalue(res, row, col) &&
                 (c->len < 0) == (PQgetisnull(res, row, col) != 0) &&
                 (c->len < 0 ? c->len == -1 : c->len == PQgetlength(res, row, col));
        }
    }
    PQclear(res);
    direct_ok = ok;
}

bool weft__pg_direct_cells(bool on)
{
    pthread_once(&direct_once, direct_probe);
    direct_off = !on;
    return direct_ok;
}

/* ---- results ---- */

void weft__pg_result_init(weft_pg_result_t *r, PGresult *res)
{
    pthread_once(&direct_once, direct_probe);
    r->res = res;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    r->direct = direct_ok && !direct_off;
    r->all_binary = r->ncols > 0 && PQbinaryTuples(res) == 1;
    r->oid_cols = 0;
    for (int c = 0; c < r->ncols && c < 64; c++)
        if (PQftype(res, c) == 26) /* oid: a 4-byte binary value is unsigned */
            r->oid_cols |= (uint64_t)1 << c;
}

void weft_pg_result_free(weft_pg_result_t *r)
{
    if (r == NULL)
        return;
    weft__pg_result_clear(r);
    free(r);
}

int weft_pg_nrows(const weft_pg_result_t *r)
{
    return r != NULL ? r->nrows : 0;
}

int weft_pg_ncols(const weft_pg_result_t *r)
{
    return r != NULL ? r->ncols : 0;
}

const char *weft_pg_colname(const weft_pg_result_t *r, int col)
{
    return r != NULL ? PQfname(r->res, col) : NULL;
}

int weft_pg_colnum(const weft_pg_result_t *r, const char *name)
{
    return r != NULL && name != NULL ? PQfnumber(r->res, name) : -1;
}

uint32_t weft_pg_coltype(const weft_pg_result_t *r, int col)
{
    return r != NULL ? PQftype(r->res, col) : 0;
}

const char *weft_pg_cmd_tag(const weft_pg_result_t *r)
{
    return r != NULL ? PQcmdStatus(r->res) : "";
}

int64_t weft_pg_affected(const weft_pg_result_t *r)
{
    if (r == NULL)
        return 0;
    if (PQresultStatus(r->res) == PGRES_TUPLES_OK)
        return PQntuples(r->res);
    const char *t = PQcmdTuples(r->res);
    return t != NULL && *t != '\0' ? strtoll(t, NULL, 10) : 0;
}

static bool in_range(const weft_pg_result_t *r, int row, int col)
{
    return r != NULL && (unsigned)row < (unsigned)r->nrows && (unsigned)col < (unsigned)r->ncols;
}

/* A cell through libpq's calls: only the value and its length, as a NULL has the length 0 and
 * only an empty value needs asking whether it is NULL. Out of line: the direct path is the
 * common one. */
static __attribute__((noinline)) int cell_libpq(const weft_pg_result_t *r, int row, int col,
                                                const char **v, int *len)
{
    PGresult *res = r->res;
    *len = PQgetlength(res, row, col);
    *v = PQgetvalue(res, row, col);
    if (*len == 0 && PQgetisnull(res, row, col))
        return -ENODATA;
    return 0;
}

/*
 * The cell straight from libpq's row array, or NULL when this result is not read that way or
 * (row, col) is out of range; the caller then takes the general path, which gives every answer
 * its error. Kept free of calls so that the int and text getters' fast paths need no stack
 * frame.
 */
static inline const struct pq_cell *direct_cell(const weft_pg_result_t *r, int row, int col)
{
    if (r == NULL || !r->direct || !in_range(r, row, col))
        return NULL;
    return &((const struct pq_result_head *)(void *)r->res)->tuples[row][col];
}

/*
 * The cell for a getter: 0 with its bytes, -ENODATA for NULL, -EINVAL out of range. Every getter
 * runs this for every cell it reads (a client decoding a 1,000-row answer runs it thousands of
 * times): directly from libpq's row array where that is safe (above), else through libpq.
 */
static inline int cell(const weft_pg_result_t *r, int row, int col, const char **v, int *len)
{
    const struct pq_cell *c = direct_cell(r, row, col);
    if (c == NULL)
        return in_range(r, row, col) ? cell_libpq(r, row, col, v, len) : -EINVAL;
    *len = c->len;
    *v = c->value;
    return c->len < 0 ? -ENODATA : 0;
}

bool weft_pg_isnull(const weft_pg_result_t *r, int row, int col)
{
    const char *v;
    int len;
    return cell(r, row, col, &v, &len) < 0;
}

const char *weft_pg_value(const weft_pg_result_t *r, int row, int col, size_t *len)
{
    const char *v;
    int l;
    if (cell(r, row, col, &v, &l) < 0) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = (size_t)l;
    return v;
}

/* Is column `col` in binary format? */
static inline bool is_binary(const weft_pg_result_t *r, int col)
{
    return r->all_binary || PQfformat(r->res, col) == 1;
}

/* A binary cell's big-endian integer of `len` bytes (2, 4 or 8). */
static uint64_t be_read(const char *v, int len)
{
    uint16_t u2;
    uint32_t u4;
    uint64_t u8;
    switch (len) {
    case 2:
        memcpy(&u2, v, 2);
        return be16toh(u2);
    case 4:
        memcpy(&u4, v, 4);
        return be32toh(u4);
    default:
        memcpy(&u8, v, 8);
        return be64toh(u8);
    }
}

/* True if column `col` is of type oid (its 4-byte binary values are unsigned). */
static bool is_oid_col(const weft_pg_result_t *r, int col)
{
    return col < 64 ? (r->oid_cols >> col) & 1 : PQftype(r->res, col) == 26;
}

/* A text cell's integer. */
static int text_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = x;
    return 0;
}

static __attribute__((noinline)) int get_int_any(weft_pg_result_t *r, int row, int col,
                                                 int64_t *out)
{
    const char *v;
    int len;
    int e = cell(r, row, col, &v, &len);
    if (e < 0)
        return e;
    if (!is_binary(r, col))
        return text_int(v, out);
    if (len == 4) {
        uint32_t u = (uint32_t)be_read(v, 4);
        *out = is_oid_col(r, col) ? (int64_t)u : (int64_t)(int32_t)u;
    } else if (len == 8) {
        *out = (int64_t)be_read(v, 8);
    } else if (len == 2) {
        *out = (int16_t)be_read(v, 2);
    } else {
        return -EINVAL;
    }
    return 0;
}

int weft_pg_get_int(weft_pg_result_t *r, int row, int col, int64_t *out)
{
    const struct pq_cell *c = direct_cell(r, row, col);
    if (c != NULL && r->all_binary && col < 64) { /* binary int4 and int8 */
        if (c->len == 4) {
            uint32_t u = (uint32_t)be_read(c->value, 4);
            *out = (r->oid_cols >> col) & 1 ? (int64_t)u : (int64_t)(int32_t)u;
            return 0;
        }
        if (c->len == 8) {
            *out = (int64_t)be_read(c->value, 8);
            return 0;
        }
    }
    return get_int_any(r, row, col, out);
}

int weft_pg_get_double(weft_pg_result_t *r, int row, int col, double *out)
{
    const char *v;
    int len;
    int e = cell(r, row, col, &v, &len);
    if (e < 0)
        return e;
    if (is_binary(r, col)) {
        Oid t = PQftype(r->res, col);
        if (t == 701 && len == 8) {
            uint64_t u = be_read(v, 8);
            memcpy(out, &u, 8);
        } else if (t == 700 && len == 4) {
            uint32_t u4 = (uint32_t)be_read(v, 4);
            float f;
            memcpy(&f, &u4, 4);
            *out = f;
        } else if (t == 20 || t == 21 || t == 23) {
            int64_t i;
            e = weft_pg_get_int(r, row, col, &i);
            if (e < 0)
                return e;
            *out = (double)i;
        } else {
            return -EINVAL;
        }
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE && isinf(d))
        return -ERANGE;
    *out = d;
    return 0;
}

int weft_pg_get_bool(weft_pg_result_t *r, int row, int col, bool *out)
{
    const char *v;
    int len;
    int e = cell(r, row, col, &v, &len);
    if (e < 0)
        return e;
    if (is_binary(r, col)) {
        if (len != 1)
            return -EINVAL;
        *out = v[0] != 0;
        return 0;
    }
    if (strcmp(v, "t") == 0 || strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "f") == 0 || strcmp(v, "false") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static __attribute__((noinline)) int get_text_any(weft_pg_result_t *r, int row, int col,
                                                  const char **out, size_t *len)
{
    const char *v;
    int l;
    int e = cell(r, row, col, &v, &l);
    if (e < 0)
        return e;
    *out = v;
    if (len != NULL)
        *len = (size_t)l;
    return 0;
}

int weft_pg_get_text(weft_pg_result_t *r, int row, int col, const char **out, size_t *len)
{
    const struct pq_cell *c = direct_cell(r, row, col);
    if (c == NULL || c->len < 0)
        return get_text_any(r, row, col, out, len);
    *out = c->value;
    if (len != NULL)
        *len = (size_t)c->len;
    return 0;
}

int weft_pg_get_bytea(weft_pg_result_t *r, int row, int col, const void **out, size_t *len)
{
    const char *v;
    int l;
    int e = cell(r, row, col, &v, &l);
    if (e < 0)
        return e;
    if (is_binary(r, col)) {
        *out = v;
        if (len != NULL)
            *len = (size_t)l;
        return 0;
    }
    struct pg_blob *b = malloc(sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    size_t n = 0;
    b->data = PQunescapeBytea((const unsigned char *)v, &n);
    if (b->data == NULL) {
        free(b);
        return -ENOMEM;
    }
    b->next = r->blobs;
    r->blobs = b;
    *out = b->data;
    if (len != NULL)
        *len = n;
    return 0;
}

struct pg_result *weft_pg_result_libpq(weft_pg_result_t *r)
{
    return r != NULL ? r->res : NULL;
}
