/* catalog/dtype.c - Feast value type names and TTL durations. */
#include <math.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "catalog/catalog_int.h"

static const struct {
    catalog_dtype_t t;
    const char *name;
} dtypes[] = {
    {CATALOG_DTYPE_BYTES, "BYTES"},
    {CATALOG_DTYPE_STRING, "STRING"},
    {CATALOG_DTYPE_INT32, "INT32"},
    {CATALOG_DTYPE_INT64, "INT64"},
    {CATALOG_DTYPE_DOUBLE, "DOUBLE"},
    {CATALOG_DTYPE_FLOAT, "FLOAT"},
    {CATALOG_DTYPE_BOOL, "BOOL"},
    {CATALOG_DTYPE_UNIX_TIMESTAMP, "UNIX_TIMESTAMP"},
    {CATALOG_DTYPE_BYTES_LIST, "BYTES_LIST"},
    {CATALOG_DTYPE_STRING_LIST, "STRING_LIST"},
    {CATALOG_DTYPE_INT32_LIST, "INT32_LIST"},
    {CATALOG_DTYPE_INT64_LIST, "INT64_LIST"},
    {CATALOG_DTYPE_DOUBLE_LIST, "DOUBLE_LIST"},
    {CATALOG_DTYPE_FLOAT_LIST, "FLOAT_LIST"},
    {CATALOG_DTYPE_BOOL_LIST, "BOOL_LIST"},
    {CATALOG_DTYPE_UNIX_TIMESTAMP_LIST, "UNIX_TIMESTAMP_LIST"},
    {CATALOG_DTYPE_NULL, "NULL"},
};

const char *catalog_dtype_name(catalog_dtype_t t)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (dtypes[i].t == t)
            return dtypes[i].name;
    }
    return "INVALID";
}

int catalog_dtype_parse(const char *name, catalog_dtype_t *out)
{
    if (name == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = dtypes[i].t;
            return 0;
        }
    }
    return -EINVAL;
}

bool catalog_dtype_is_list(catalog_dtype_t t)
{
    return t >= CATALOG_DTYPE_BYTES_LIST && t <= CATALOG_DTYPE_UNIX_TIMESTAMP_LIST;
}

catalog_dtype_t catalog_dtype_element(catalog_dtype_t t)
{
    /* Feast numbers every list type ten above its element type. */
    return catalog_dtype_is_list(t) ? (catalog_dtype_t)(t - 10) : t;
}

int catalog_parse_duration(const char *s, int64_t *seconds)
{
    if (s == NULL || s[0] == '\0')
        return -EINVAL;
    int64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -EINVAL;
        n = n * 10 + (*p - '0');
    }
    if (p == s)
        return -EINVAL;
    int64_t unit;
    if (*p == '\0') {
        /* A bare number is only accepted for zero: "3600" could mean seconds or a typo. */
        if (n != 0)
            return -EINVAL;
        *seconds = 0;
        return 0;
    }
    switch (*p) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return -EINVAL;
    }
    if (p[1] != '\0' || n > INT64_MAX / unit)
        return -EINVAL;
    *seconds = n * unit;
    return 0;
}

void catalog__format_duration(int64_t seconds, char *buf, size_t cap)
{
    if (seconds <= 0) {
        snprintf(buf, cap, "0");
        return;
    }
    /* Weeks are accepted on input but days read better, so the canonical form stops at days. */
    if (seconds % 86400 == 0)
        snprintf(buf, cap, "%" PRId64 "d", seconds / 86400);
    else if (seconds % 3600 == 0)
        snprintf(buf, cap, "%" PRId64 "h", seconds / 3600);
    else if (seconds % 60 == 0)
        snprintf(buf, cap, "%" PRId64 "m", seconds / 60);
    else
        snprintf(buf, cap, "%" PRId64 "s", seconds);
}

bool catalog_double_fits_float(double d)
{
    /* Past 0x1.ffffffp127 (FLT_MAX plus half its last place) rounding would overflow. */
    return !isfinite(d) || fabs(d) < 0x1.ffffffp127;
}
