/* tests/catalog/test_json.c - catalog_value_from_json(): Feast's JSON and ingest's text forms. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "catalog/catalog.h"

Test(json, feast_json_converts_by_dtype_and_refuses_what_does_not_fit)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    json_t *j =
        json_loads("[1, 2.0, \"x\", true, null, [1,2], 3000000000, \"AAE=\", 1.5]", 0, NULL);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 0), CATALOG_DTYPE_INT32, 0, &a, &v, why,
                                         sizeof why),
                 0);
    cr_assert_eq(v.u.i32, 1);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 1), CATALOG_DTYPE_INT64, 0, &a, &v, why,
                                         sizeof why),
                 0, "a whole real is a whole number");
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 8), CATALOG_DTYPE_INT64, 0, &a, &v, why,
                                         sizeof why),
                 -EINVAL);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 6), CATALOG_DTYPE_INT32, 0, &a, &v, why,
                                         sizeof why),
                 -EINVAL);
    cr_assert(strstr(why, "out of range") != NULL, "%s", why);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 4), CATALOG_DTYPE_FLOAT, 0, &a, &v, why,
                                         sizeof why),
                 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_NULL);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 5), CATALOG_DTYPE_INT64_LIST, 0, &a, &v,
                                         why, sizeof why),
                 0);
    cr_assert_eq(v.u.list.n, 2);
    cr_assert_eq(v.u.list.v.i64[1], 2);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 7), CATALOG_DTYPE_BYTES, 0, &a, &v, why,
                                         sizeof why),
                 0);
    cr_assert_eq(v.u.bytes.len, 2);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 2), CATALOG_DTYPE_BYTES, 0, &a, &v, why,
                                         sizeof why),
                 -EINVAL);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 3), CATALOG_DTYPE_STRING, 0, &a, &v, why,
                                         sizeof why),
                 -EINVAL);
    cr_assert(strstr(why, "want a string") != NULL, "%s", why);
    /* Entity values take their JSON type. */
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 2), CATALOG_DTYPE_INVALID, 0, &a, &v,
                                         why, sizeof why),
                 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_STRING);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 5), CATALOG_DTYPE_INVALID, 0, &a, &v,
                                         why, sizeof why),
                 -EINVAL);
    json_decref(j);
    base_arena_free(&a);
}

Test(json, text_mode_takes_numbers_and_times_as_strings_and_raw_or_b64_bytes)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    json_t *j = json_loads("[\"12\", \"2.5\", \"2024-01-01T00:00:00Z\", \"raw\", \"b64:AAH-_w\","
                           " \"b64:%%\", \"x\", [\"1\", 2]]",
                           0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 0), CATALOG_DTYPE_INT64,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0, "%s", why);
    cr_assert_eq(v.u.i64, 12);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 0), CATALOG_DTYPE_INT64, 0, &a, &v, why,
                                         sizeof why),
                 -EINVAL, "Feast's JSON wants a number");
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 1), CATALOG_DTYPE_FLOAT,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0);
    cr_assert_float_eq(v.u.f32, 2.5f, 1e-6);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 2), CATALOG_DTYPE_UNIX_TIMESTAMP,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.i64, 1704067200);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 0), CATALOG_DTYPE_UNIX_TIMESTAMP,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.i64, 12, "seconds as text");
    /* Seconds beyond int64 are refused, not converted (undefined behaviour). */
    for (int k = 0; k < 3; k++) {
        static const double far[] = {1e300, -1e300, 9.3e18};
        json_t *x = json_real(far[k]);
        cr_assert_eq(
            catalog_value_from_json(x, CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why),
            -EINVAL, "%g", far[k]);
        cr_assert(strstr(why, "out of range") != NULL, "%s", why);
        json_decref(x);
    }
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 3), CATALOG_DTYPE_BYTES,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.bytes.len, 3);
    cr_assert_eq(memcmp(v.u.bytes.data, "raw", 3), 0);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 4), CATALOG_DTYPE_BYTES,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0, "%s", why);
    cr_assert_eq(v.u.bytes.len, 4, "URL-safe, unpadded");
    cr_assert_eq(memcmp(v.u.bytes.data, "\x00\x01\xfe\xff", 4), 0);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 5), CATALOG_DTYPE_BYTES,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_assert(strstr(why, "base64") != NULL, "%s", why);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 6), CATALOG_DTYPE_INT32,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_assert_eq(catalog_value_from_json(json_array_get(j, 7), CATALOG_DTYPE_INT64_LIST,
                                         CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.list.n, 2);
    cr_assert_eq(v.u.list.v.i64[0], 1);
    json_decref(j);
    base_arena_free(&a);
}

/* Converts JSON text j to want; returns the rc and leaves the reason in why. */
static int conv(const char *j, catalog_dtype_t want, unsigned flags, base_arena_t *a,
                catalog_value_t *v, char *why, size_t cap)
{
    json_t *x = json_loads(j, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(x, "bad test JSON %s", j);
    why[0] = '\0';
    int rc = catalog_value_from_json(x, want, flags, a, v, why, cap);
    /* STRING results point into the JSON, freed here: callers look only at other results
     * (BYTES are decoded into the arena) */
    json_decref(x);
    return rc;
}

Test(json, scalars_of_every_remaining_dtype_convert_or_say_what_they_wanted)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    cr_assert_eq(conv("true", CATALOG_DTYPE_BOOL, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_BOOL);
    cr_expect(v.u.b);
    cr_assert_eq(conv("false", CATALOG_DTYPE_BOOL, 0, &a, &v, why, sizeof why), 0);
    cr_expect_not(v.u.b);
    cr_expect_eq(conv("1", CATALOG_DTYPE_BOOL, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want true or false, got an integer");
    cr_expect_eq(conv("\"true\"", CATALOG_DTYPE_BOOL, CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 -EINVAL, "text mode does not take booleans as strings");
    cr_expect_str_eq(why, "want true or false, got a string");

    cr_assert_eq(conv("2", CATALOG_DTYPE_DOUBLE, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_DOUBLE);
    cr_expect_eq(v.u.f64, 2.0, "an integer is a number for DOUBLE");
    cr_expect_eq(conv("{}", CATALOG_DTYPE_DOUBLE, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want a number for DOUBLE, got an object");
    cr_expect_eq(conv("1e300", CATALOG_DTYPE_FLOAT, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "1e+300 is out of range for FLOAT");
    cr_expect_eq(conv("\"x1\"", CATALOG_DTYPE_FLOAT, CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_expect_str_eq(why, "want a number for FLOAT, got a string");

    /* INT64: a real that is whole but too large for a double's exact integers is refused */
    cr_expect_eq(conv("1e16", CATALOG_DTYPE_INT64, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want a whole number for INT64, got a number");
    cr_assert_eq(conv("-2147483648", CATALOG_DTYPE_INT32, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.i32, INT32_MIN);
    cr_expect_eq(conv("-2147483649", CATALOG_DTYPE_INT32, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "-2147483649 is out of range for INT32");

    /* UNIX_TIMESTAMP: whole seconds as an integer or a real, a time string, nothing else */
    cr_assert_eq(conv("1700000000", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.i64, 1700000000);
    cr_assert_eq(conv("1700000000.9", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.i64, 1700000000, "fractions of a second are dropped");
    cr_expect_eq(conv("true", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want seconds since the epoch or an RFC 3339 string, got a boolean");
    cr_expect_eq(conv("\"yesterday\"", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_expect_str_eq(why, "want an RFC 3339 time or seconds since the epoch, got 'yesterday'");
    /* a time string with a fraction keeps its whole seconds; Feast's JSON may also carry epoch
     * seconds as a string (base_parse_time() reads both) */
    cr_assert_eq(conv("\"2024-01-01T00:00:01.75Z\"", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why,
                      sizeof why),
                 0, "%s", why);
    cr_expect_eq(v.u.i64, 1704067201);
    cr_assert_eq(conv("\"12.5\"", CATALOG_DTYPE_UNIX_TIMESTAMP, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.i64, 12);

    /* BYTES that are not strings: the message says which form was wanted */
    cr_expect_eq(conv("7", CATALOG_DTYPE_BYTES, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want a base64 string for BYTES, got an integer");
    cr_expect_eq(conv("[]", CATALOG_DTYPE_BYTES, CATALOG_JSON_TEXT, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_expect_str_eq(why, "want a string for BYTES, got an array");

    /* NULL is not a type a value may be asked for */
    cr_expect_eq(conv("1", CATALOG_DTYPE_NULL, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "values of type NULL are not supported");
    base_arena_free(&a);
}

Test(json, entity_values_take_the_json_type)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    cr_assert_eq(conv("2.5", CATALOG_DTYPE_INVALID, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_DOUBLE);
    cr_expect_eq(v.u.f64, 2.5);
    cr_assert_eq(conv("false", CATALOG_DTYPE_INVALID, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_BOOL);
    cr_expect_not(v.u.b);
    cr_assert_eq(conv("-3", CATALOG_DTYPE_INVALID, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_INT64);
    cr_expect_eq(v.u.i64, -3);
    cr_expect_eq(conv("{\"a\": 1}", CATALOG_DTYPE_INVALID, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "entity values are numbers, strings or booleans, got an object");
    base_arena_free(&a);
}

Test(json, lists_of_every_element_type_convert_item_by_item)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    cr_assert_eq(conv("[1, -2]", CATALOG_DTYPE_INT32_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_INT32_LIST);
    cr_assert_eq(v.u.list.n, 2);
    cr_expect_eq(v.u.list.v.i32[0], 1);
    cr_expect_eq(v.u.list.v.i32[1], -2);
    cr_assert_eq(conv("[0.5, 3]", CATALOG_DTYPE_DOUBLE_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_assert_eq(v.u.list.n, 2);
    cr_expect_eq(v.u.list.v.f64[0], 0.5);
    cr_expect_eq(v.u.list.v.f64[1], 3.0);
    cr_assert_eq(conv("[1.5]", CATALOG_DTYPE_FLOAT_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.list.v.f32[0], 1.5f);
    cr_assert_eq(conv("[true, false, true]", CATALOG_DTYPE_BOOL_LIST, 0, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.list.n, 3);
    cr_expect(v.u.list.v.b[0] && !v.u.list.v.b[1] && v.u.list.v.b[2]);
    cr_assert_eq(conv("[\"AAE=\", \"\"]", CATALOG_DTYPE_BYTES_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_assert_eq(v.u.list.n, 2);
    cr_expect_eq(v.u.list.v.bytes[0].len, 2, "items are base64-decoded into the arena");
    cr_expect_eq(v.u.list.v.bytes[0].data[1], 1);
    cr_expect_eq(v.u.list.v.bytes[1].len, 0);
    cr_assert_eq(conv("[5, 6]", CATALOG_DTYPE_UNIX_TIMESTAMP_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.u.list.v.i64[1], 6);
    cr_assert_eq(conv("[]", CATALOG_DTYPE_STRING_LIST, 0, &a, &v, why, sizeof why), 0);
    cr_expect_eq(v.type, CATALOG_DTYPE_STRING_LIST);
    cr_expect_eq(v.u.list.n, 0);

    json_t *s = json_loads("[\"a\", \"bc\"]", 0, NULL);
    cr_assert_eq(catalog_value_from_json(s, CATALOG_DTYPE_STRING_LIST, 0, &a, &v, why, sizeof why),
                 0);
    cr_assert_eq(v.u.list.n, 2);
    cr_expect_eq(v.u.list.v.bytes[1].len, 2);
    cr_expect_eq(memcmp(v.u.list.v.bytes[1].data, "bc", 2), 0);
    json_decref(s);
    base_arena_free(&a);
}

Test(json, list_errors_name_the_item_at_fault)
{
    base_arena_t a = {0};
    char why[256];
    catalog_value_t v;
    cr_expect_eq(conv("[1, null]", CATALOG_DTYPE_INT64_LIST, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "item 1: lists cannot hold null");
    cr_expect_eq(conv("[true, 1]", CATALOG_DTYPE_BOOL_LIST, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "item 1: want true or false, got an integer");
    cr_expect_eq(conv("[1, 2, 3e9]", CATALOG_DTYPE_INT32_LIST, 0, &a, &v, why, sizeof why),
                 -EINVAL);
    cr_expect_str_eq(why, "item 2: 3000000000 is out of range for INT32");
    cr_expect_eq(conv("5", CATALOG_DTYPE_FLOAT_LIST, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want an array for FLOAT_LIST, got an integer");
    cr_expect_eq(conv("\"ab\"", CATALOG_DTYPE_STRING_LIST, 0, &a, &v, why, sizeof why), -EINVAL);
    cr_expect_str_eq(why, "want an array for STRING_LIST, got a string");
    base_arena_free(&a);
}
