/* tests/catalog/test_dtype.c - dtype names, list element types and durations. */
#include "tests/catalog/helpers.h"

Test(catalog_dtype, every_name_parses_back_to_its_type)
{
    catalog_dtype_t all[] = {CATALOG_DTYPE_BYTES,       CATALOG_DTYPE_STRING,
                             CATALOG_DTYPE_INT32,       CATALOG_DTYPE_INT64,
                             CATALOG_DTYPE_DOUBLE,      CATALOG_DTYPE_FLOAT,
                             CATALOG_DTYPE_BOOL,        CATALOG_DTYPE_UNIX_TIMESTAMP,
                             CATALOG_DTYPE_BYTES_LIST,  CATALOG_DTYPE_STRING_LIST,
                             CATALOG_DTYPE_INT32_LIST,  CATALOG_DTYPE_INT64_LIST,
                             CATALOG_DTYPE_DOUBLE_LIST, CATALOG_DTYPE_FLOAT_LIST,
                             CATALOG_DTYPE_BOOL_LIST,   CATALOG_DTYPE_UNIX_TIMESTAMP_LIST,
                             CATALOG_DTYPE_NULL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        catalog_dtype_t t = CATALOG_DTYPE_INVALID;
        cr_assert_eq(catalog_dtype_parse(catalog_dtype_name(all[i]), &t), 0);
        cr_expect_eq(t, all[i]);
    }
    cr_expect_str_eq(catalog_dtype_name(CATALOG_DTYPE_FLOAT_LIST), "FLOAT_LIST");
    cr_expect_str_eq(catalog_dtype_name((catalog_dtype_t)42), "INVALID");
}

Test(catalog_dtype, unknown_name_is_einval_and_leaves_out_untouched)
{
    catalog_dtype_t t = CATALOG_DTYPE_BOOL;
    cr_expect_eq(catalog_dtype_parse("int64", &t), -EINVAL);
    cr_expect_eq(catalog_dtype_parse("", &t), -EINVAL);
    cr_expect_eq(catalog_dtype_parse(NULL, &t), -EINVAL);
    cr_expect_eq(t, CATALOG_DTYPE_BOOL);
}

Test(catalog_dtype, lists_know_their_element_type)
{
    cr_expect(catalog_dtype_is_list(CATALOG_DTYPE_BYTES_LIST));
    cr_expect(catalog_dtype_is_list(CATALOG_DTYPE_UNIX_TIMESTAMP_LIST));
    cr_expect_not(catalog_dtype_is_list(CATALOG_DTYPE_NULL));
    cr_expect_not(catalog_dtype_is_list(CATALOG_DTYPE_INT64));
    cr_expect_eq(catalog_dtype_element(CATALOG_DTYPE_INT64_LIST), CATALOG_DTYPE_INT64);
    cr_expect_eq(catalog_dtype_element(CATALOG_DTYPE_UNIX_TIMESTAMP_LIST),
                 CATALOG_DTYPE_UNIX_TIMESTAMP);
    cr_expect_eq(catalog_dtype_element(CATALOG_DTYPE_STRING), CATALOG_DTYPE_STRING);
}

Test(catalog_dtype, durations_parse_and_refuse_garbage)
{
    int64_t s = -1;
    cr_expect_eq(catalog_parse_duration("90s", &s), 0);
    cr_expect_eq(s, 90);
    cr_expect_eq(catalog_parse_duration("15m", &s), 0);
    cr_expect_eq(s, 900);
    cr_expect_eq(catalog_parse_duration("24h", &s), 0);
    cr_expect_eq(s, 86400);
    cr_expect_eq(catalog_parse_duration("7d", &s), 0);
    cr_expect_eq(s, 604800);
    cr_expect_eq(catalog_parse_duration("0", &s), 0);
    cr_expect_eq(s, 0);
    const char *bad[] = {"",   "s", "10", "1.5h", "-1s", "1h30m", "5x", "9223372036854775807d",
                         " 1s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(catalog_parse_duration(bad[i], &s), -EINVAL, "%s", bad[i]);
    cr_expect_eq(catalog_parse_duration(NULL, &s), -EINVAL);
}
