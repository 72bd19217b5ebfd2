/*
 * PostgreSQL results: counts, column names, the command tag, and typed accessors of cells (text
 * and binary formats), made by query.c and pipeline.c.
 */
#include "pg_internal.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
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
    r->oid_cols = 0;
}

/* ---- results ---- */

void weft__pg_result_init(weft_pg_result_t *r, PGresult *res)
{
    r->res = res;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
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

bool weft_pg_isnull(const weft_pg_result_t *r, int row, int col)
{
    return !in_range(r, row, col) || PQgetisnull(r->res, row, col);
}

const char *weft_pg_value(const weft_pg_result_t *r, int row, int col, size_t *len)
{
    if (len != NULL)
        *len = 0;
    if (weft_pg_isnull(r, row, col))
        return NULL;
    if (len != NULL)
        *len = (size_t)PQgetlength(r->res, row, col);
    return PQgetvalue(r->res, row, col);
}

/*
 * The cell for a getter: 0 with its bytes, -ENODATA for NULL, -EINVAL out of range. Every getter
 * runs this for every cell it reads (a client decoding a 1,000-row answer runs it thousands of
 * times), so it asks libpq only for the value and its length: a NULL has the length 0, so only
 * an empty value needs asking whether it is NULL.
 */
static inline int cell(const weft_pg_result_t *r, int row, int col, const char **v, int *len)
{
    if (!in_range(r, row, col))
        return -EINVAL;
    PGresult *res = r->res;
    *len = PQgetlength(res, row, col);
    *v = PQgetvalue(res, row, col);
    if (*len == 0 && PQgetisnull(res, row, col))
        return -ENODATA;
    return 0;
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

int weft_pg_get_int(weft_pg_result_t *r, int row, int col, int64_t *out)
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

int weft_pg_get_text(weft_pg_result_t *r, int row, int col, const char **out, size_t *len)
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
