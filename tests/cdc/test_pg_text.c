/* tests/cdc/test_pg_text.c - values in COPY's text format, and column types (cdc/pg_text.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/cdc.h"

/* v in COPY text, as a string (freed by the caller). */
static char *copy_text(const catalog_value_t *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(cdc_copy_value(f, v), 0);
    fclose(f);
    return buf;
}

static void expect(const catalog_value_t *v, const char *want)
{
    char *got = copy_text(v);
    cr_assert_str_eq(got, want);
    free(got);
}

static catalog_value_t str(const char *s)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_STRING,
                             .u.bytes = {(const uint8_t *)s, strlen(s)}};
}

Test(pg_text, scalars)
{
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_NULL}, "\\N");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = -9223372036854775807LL - 1},
           "-9223372036854775808");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = 7}, "7");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = 0.1f}, "0.100000001");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 0.1}, "0.10000000000000001");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 1.0 / 0.0}, "Infinity");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 0.0 / 0.0}, "NaN");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = true}, "t");
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = 1700000000},
           "2023-11-14T22:13:20Z");
}

Test(pg_text, strings_and_bytes_are_escaped_for_copy)
{
    catalog_value_t s = str("a\tb\nc\\d\re");
    expect(&s, "a\\tb\\nc\\\\d\\re");
    const uint8_t raw[] = {0x00, 0xff, 0x10};
    expect(&(catalog_value_t){.type = CATALOG_DTYPE_BYTES, .u.bytes = {raw, sizeof raw}},
           "\\\\x00ff10");
}

Test(pg_text, lists_are_array_literals)
{
    const int64_t xs[] = {1, -2};
    catalog_value_t l = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = xs}}};
    expect(&l, "{1,-2}");
    const catalog_bytes_t ss[] = {{(const uint8_t *)"a,b", 3}, {(const uint8_t *)"q\"\\", 3}};
    catalog_value_t sl = {.type = CATALOG_DTYPE_STRING_LIST, .u.list = {2, {.bytes = ss}}};
    /* "a,b" and "q\"\\" quoted for the array, their backslashes then doubled for COPY. */
    expect(&sl, "{\"a,b\",\"q\\\\\"\\\\\\\\\"}");
    catalog_value_t empty = {.type = CATALOG_DTYPE_DOUBLE_LIST, .u.list = {0, {.f64 = NULL}}};
    expect(&empty, "{}");
}

Test(pg_text, times_and_types)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cdc_copy_time(f, -1); /* one microsecond before the epoch */
    fclose(f);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999999Z");
    free(buf);
    cr_assert_str_eq(cdc_pg_type(CATALOG_DTYPE_DOUBLE_LIST), "double precision[]");
    cr_assert_str_eq(cdc_pg_type_formatted(CATALOG_DTYPE_UNIX_TIMESTAMP),
                     "timestamp with time zone");
    cr_assert_null(cdc_pg_type(CATALOG_DTYPE_NULL));
    cr_assert_eq(cdc_copy_value(stdout, &(catalog_value_t){.type = CATALOG_DTYPE_INVALID}),
                 -EINVAL);
}
