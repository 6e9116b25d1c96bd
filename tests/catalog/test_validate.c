/* tests/catalog/test_validate.c - catalog_validate_value: every rule, every dtype. */
#include <math.h>

#include "tests/catalog/helpers.h"

static const char rules_yaml[] =
    "project: p\n"
    "feature_views:\n"
    "  - name: v\n"
    "    features:\n"
    "      - {name: i64, dtype: INT64, validation: {not_null: true, min: 0, max: 10}}\n"
    "      - {name: i32, dtype: INT32, validation: {min: -5, max: 5}}\n"
    "      - {name: f64, dtype: DOUBLE, validation: {min: 0, max: 1}}\n"
    "      - {name: f32, dtype: FLOAT, validation: {max: 2.5}}\n"
    "      - {name: ts, dtype: UNIX_TIMESTAMP, validation: {min: 1000}}\n"
    "      - {name: str, dtype: STRING, validation: {max_length: 5, pattern: '[a-z]+'}}\n"
    "      - {name: color, dtype: STRING, validation: {allowed_values: [red, green]}}\n"
    "      - {name: raw, dtype: BYTES, validation: {max_length: 2}}\n"
    "      - {name: flag, dtype: BOOL, validation: {not_null: true, allowed_values: [true]}}\n"
    "      - {name: ratings, dtype: FLOAT_LIST, validation: {max_length: 3, min: 1, max: 5}}\n"
    "      - {name: tags, dtype: STRING_LIST, validation: {pattern: '[A-Z]+', max_length: 2}}\n"
    "      - {name: ids, dtype: INT64_LIST, validation: {allowed_values: [1, 2, 3]}}\n"
    "      - {name: any, dtype: BYTES_LIST}\n"
    "      - {name: flags, dtype: BOOL_LIST}\n"
    "      - {name: i32s, dtype: INT32_LIST, validation: {min: 0}}\n"
    "      - {name: f64s, dtype: DOUBLE_LIST, validation: {max: 0}}\n"
    "      - {name: tss, dtype: UNIX_TIMESTAMP_LIST, validation: {max_length: 1}}\n"
    "      - {name: plain, dtype: INT64}\n"
    "      - {name: plain_f64, dtype: DOUBLE, validation: {not_null: true}}\n"
    "      - {name: plain_str, dtype: STRING}\n";

static catalog_t *cat;

static void setup(void)
{
    cat = load_ok(rules_yaml);
}

static void teardown(void)
{
    catalog_unref(cat);
}

static const catalog_feature_t *feat(const char *name)
{
    char ref[64];
    snprintf(ref, sizeof ref, "v:%s", name);
    catalog_feature_ref_t r;
    cr_assert_eq(catalog_find_feature(cat, ref, strlen(ref), &r), 0, "%s", ref);
    return r.feature;
}

/* Passes when want is NULL; otherwise must fail with a reason starting with want. */
static void check(const char *name, catalog_value_t v, const char *want)
{
    char why[200] = "unset";
    int rc = catalog_validate_value(feat(name), &v, why, sizeof why);
    if (want == NULL) {
        cr_expect_eq(rc, 0, "%s: unexpected failure: %s", name, why);
        return;
    }
    cr_expect_eq(rc, -EINVAL, "%s: should fail with %s", name, want);
    cr_expect_eq(strncmp(why, want, strlen(want)), 0, "%s: why '%s', want '%s'", name, why, want);
}

#define I64(x) ((catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = (x)})
#define I32(x) ((catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = (x)})
#define F64(x) ((catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = (x)})
#define F32(x) ((catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = (x)})
#define STR(s)                                                                                     \
    ((catalog_value_t){.type = CATALOG_DTYPE_STRING,                                               \
                       .u.bytes = {(const uint8_t *)(s), sizeof(s) - 1}})
#define BYTES(s)                                                                                   \
    ((catalog_value_t){.type = CATALOG_DTYPE_BYTES,                                                \
                       .u.bytes = {(const uint8_t *)(s), sizeof(s) - 1}})
#define NUL ((catalog_value_t){.type = CATALOG_DTYPE_NULL})

TestSuite(catalog_validate, .init = setup, .fini = teardown);

Test(catalog_validate, not_null_refuses_null_and_other_features_accept_it)
{
    check("i64", NUL, "not_null");
    check("flag", NUL, "not_null");
    check("i32", NUL, NULL);
    check("str", NUL, NULL);
    check("ratings", NUL, NULL);
}

Test(catalog_validate, dtype_mismatch_is_refused_and_int32_widens_to_int64)
{
    check("i64", STR("1"), "dtype: got STRING, want INT64");
    check("i64", I32(3), NULL);
    check("i64", I32(11), "max: 11 > 10");
    check("i32", I64(1), "dtype: got INT64, want INT32");
    check("f64", F32(0.5f), "dtype: got FLOAT, want DOUBLE");
    check("ts", I64(5000), "dtype: got INT64, want UNIX_TIMESTAMP");
    check("raw", STR("a"), "dtype: got STRING, want BYTES");
    check("ratings", F32(1), "dtype: got FLOAT, want FLOAT_LIST");
}

Test(catalog_validate, min_and_max_bound_every_numeric_dtype)
{
    check("i64", I64(0), NULL);
    check("i64", I64(10), NULL);
    check("i64", I64(-1), "min: -1 < 0");
    check("i64", I64(11), "max: 11 > 10");
    check("i32", I32(-6), "min: -6 < -5");
    check("i32", I32(5), NULL);
    check("f64", F64(1.0), NULL);
    check("f64", F64(1.5), "max: 1.5 > 1");
    check("f64", F64(NAN), "min");
    check("f32", F32(2.5f), NULL);
    check("f32", F32(2.75f), "max: 2.75 > 2.5");
    check("ts", (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = 999},
          "min: 999 < 1000");
    check("plain", I64(INT64_MIN), NULL);
}

Test(catalog_validate, max_length_counts_bytes_of_strings_and_bytes)
{
    check("str", STR("abcde"), NULL);
    check("str", STR("abcdef"), "max_length: 6 bytes > 5");
    check("raw", BYTES("\x01\x02"), NULL);
    check("raw", BYTES("\x01\x02\x03"), "max_length: 3 bytes > 2");
}

Test(catalog_validate, pattern_must_match_the_whole_string)
{
    check("str", STR("abc"), NULL);
    check("str", STR("abC"), "pattern: \"abC\" does not match [a-z]+");
    check("str", STR("1ab"), "pattern");
    check("str", STR(""), "pattern");
}

Test(catalog_validate, strings_must_be_valid_utf8)
{
    check("color", STR("r\xc3\xa9"), "allowed_values");
    check("str", STR("a\xff"), "dtype: STRING value is not valid UTF-8");
    check("str", STR("\xc0\x80"), "dtype: STRING value is not valid UTF-8");
}

Test(catalog_validate, allowed_values_admit_only_their_members)
{
    check("color", STR("red"), NULL);
    check("color", STR("blue"), "allowed_values: \"blue\" is not one of the allowed values");
    check("flag", (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = true}, NULL);
    check("flag", (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = false}, "allowed_values");
}

Test(catalog_validate, list_rules_apply_to_item_count_and_every_item)
{
    float ok[] = {1, 5}, low[] = {1, 0.5f}, many[] = {1, 2, 3, 4};
    catalog_value_t v = {.type = CATALOG_DTYPE_FLOAT_LIST, .u.list = {2, {.f32 = ok}}};
    check("ratings", v, NULL);
    v.u.list.v.f32 = low;
    check("ratings", v, "min: 0.5 < 1 (item 1)");
    v.u.list = (__typeof__(v.u.list)){4, {.f32 = many}};
    check("ratings", v, "max_length: 4 items > 3");
    v.u.list.n = 0;
    check("ratings", v, NULL);

    catalog_bytes_t good[] = {{(const uint8_t *)"AB", 2}}, bad[] = {{(const uint8_t *)"Ab", 2}};
    catalog_value_t s = {.type = CATALOG_DTYPE_STRING_LIST, .u.list = {1, {.bytes = good}}};
    check("tags", s, NULL);
    s.u.list.v.bytes = bad;
    check("tags", s, "pattern: \"Ab\" does not match [A-Z]+ (item 0)");

    int64_t ids[] = {1, 3}, wrong[] = {1, 4};
    catalog_value_t l = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = ids}}};
    check("ids", l, NULL);
    l.u.list.v.i64 = wrong;
    check("ids", l, "allowed_values: 4");

    int32_t i32s[] = {0, -1};
    check("i32s", (catalog_value_t){.type = CATALOG_DTYPE_INT32_LIST, .u.list = {2, {.i32 = i32s}}},
          "min: -1 < 0 (item 1)");
    double f64s[] = {0, 0.1};
    check("f64s",
          (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE_LIST, .u.list = {2, {.f64 = f64s}}},
          "max: 0.1 > 0 (item 1)");
    int64_t tss[] = {1, 2};
    check("tss",
          (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP_LIST, .u.list = {2, {.i64 = tss}}},
          "max_length: 2 items > 1");
    bool flags[] = {true, false};
    check("flags", (catalog_value_t){.type = CATALOG_DTYPE_BOOL_LIST, .u.list = {2, {.b = flags}}},
          NULL);
    catalog_bytes_t any[] = {{(const uint8_t *)"\xff", 1}};
    check("any", (catalog_value_t){.type = CATALOG_DTYPE_BYTES_LIST, .u.list = {1, {.bytes = any}}},
          NULL);
}

Test(catalog_validate, why_may_be_null_or_short)
{
    catalog_value_t v = I64(-1);
    cr_expect_eq(catalog_validate_value(feat("i64"), &v, NULL, 0), -EINVAL);
    char why[4];
    cr_expect_eq(catalog_validate_value(feat("i64"), &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "min");
    cr_expect_eq(catalog_validate_value(NULL, &v, why, sizeof why), -EINVAL);
}

Test(catalog_validate, only_numbers_without_value_rules_are_said_to_have_no_rules)
{
    const char *ruled[] = {"i64", "i32",  "f64",     "f32", "ts",  "str",   "color",
                           "raw", "flag", "ratings", "ids", "any", "flags", "plain_str"};
    for (size_t i = 0; i < sizeof ruled / sizeof ruled[0]; i++)
        cr_expect(catalog_feature_has_rules(feat(ruled[i])), "%s", ruled[i]);
    /* not_null is about nulls only: the caller still validates those. */
    cr_expect(!catalog_feature_has_rules(feat("plain")));
    cr_expect(!catalog_feature_has_rules(feat("plain_f64")));
    check("plain", I64(INT64_MIN), NULL);
    check("plain_f64", F64(NAN), NULL);
    check("plain_f64", F64(-INFINITY), NULL);
    check("plain_f64", NUL, "not_null");
}
