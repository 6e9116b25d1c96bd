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
