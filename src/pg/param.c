/*
 * PostgreSQL statement parameters: text, NULL, and binary values carried inline.
 */
#include "pg_internal.h"

#include <limits.h>
#include <string.h>

weft_pg_param_t weft_pg_null(void)
{
    weft_pg_param_t p = {.value = NULL, .length = -1};
    return p;
}

weft_pg_param_t weft_pg_text(const char *s)
{
    weft_pg_param_t p = {.value = s, .length = -1};
    return p;
}

static weft_pg_param_t be_param(uint64_t v, int len, uint32_t type)
{
    weft_pg_param_t p = {.value = NULL, .length = len, .format = 1, .type = type};
    for (int i = 0; i < len; i++)
        p.inl[i] = (unsigned char)(v >> (8 * (len - 1 - i)));
    return p;
}

weft_pg_param_t weft_pg_int4(int32_t v)
{
    return be_param((uint32_t)v, 4, 23);
}

weft_pg_param_t weft_pg_int8(int64_t v)
{
    return be_param((uint64_t)v, 8, 20);
}

weft_pg_param_t weft_pg_float8(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return be_param(u, 8, 701);
}

weft_pg_param_t weft_pg_bool(bool v)
{
    return be_param(v ? 1 : 0, 1, 16);
}

weft_pg_param_t weft_pg_bytea(const void *ptr, size_t n)
{
    static const char empty[1];
    weft_pg_param_t p = {.value = ptr != NULL ? ptr : empty,
                         .length = n > INT_MAX ? INT_MAX : (int)n,
                         .format = 1,
                         .type = 17};
    return p;
}
