/* tests/catalog/test_value.c - the feast.types.Value wire codec, equality and formatting. */
#include <math.h>

#include "tests/catalog/helpers.h"

static void expect_bytes(const catalog_value_t *v, const uint8_t *want, size_t n)
{
    uint8_t buf[64];
    int len = catalog_value_encode(v, buf, sizeof buf);
    cr_assert_eq(len, (int)n, "encoded %d bytes, want %zu", len, n);
    cr_expect_eq(catalog_value_wire_size(v), n);
    cr_expect_arr_eq(buf, want, n);
    /* And back. */
    _Alignas(16) uint8_t scratch[16 * 64 + 64];
    catalog_value_t back;
    cr_assert_eq(catalog_value_decode(buf, n, &back, scratch, sizeof scratch), 0);
    cr_expect(catalog_value_equal(v, &back));
}

Test(catalog_value, int64_one_encodes_as_20_01)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_INT64, .u.i64 = 1};
    expect_bytes(&v, (const uint8_t[]){0x20, 0x01}, 2);
}

Test(catalog_value, scalars_encode_to_hand_checked_bytes)
{
    catalog_value_t v;
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 300};
    expect_bytes(&v, (const uint8_t[]){0x20, 0xac, 0x02}, 3);
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 0};
    expect_bytes(&v, (const uint8_t[]){0x20, 0x00}, 2);
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = 150};
    expect_bytes(&v, (const uint8_t[]){0x18, 0x96, 0x01}, 3);
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = -1};
    expect_bytes(
        &v, (const uint8_t[]){0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
        11);
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = INT64_MIN};
    expect_bytes(
        &v, (const uint8_t[]){0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        11);
    v = (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 1.0};
    expect_bytes(&v, (const uint8_t[]){0x29, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, 9);
    v = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = 1.0f};
    expect_bytes(&v, (const uint8_t[]){0x35, 0, 0, 0x80, 0x3f}, 5);
    v = (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = true};
    expect_bytes(&v, (const uint8_t[]){0x38, 0x01}, 2);
    v = (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = false};
    expect_bytes(&v, (const uint8_t[]){0x38, 0x00}, 2);
    v = (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = 1};
    expect_bytes(&v, (const uint8_t[]){0x40, 0x01}, 2);
    v = (catalog_value_t){.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"hi", 2}};
    expect_bytes(&v, (const uint8_t[]){0x12, 0x02, 'h', 'i'}, 4);
    v = (catalog_value_t){.type = CATALOG_DTYPE_BYTES, .u.bytes = {(const uint8_t *)"\0\1", 2}};
    expect_bytes(&v, (const uint8_t[]){0x0a, 0x02, 0x00, 0x01}, 4);
    v = (catalog_value_t){.type = CATALOG_DTYPE_STRING, .u.bytes = {NULL, 0}};
    expect_bytes(&v, (const uint8_t[]){0x12, 0x00}, 2);
}

Test(catalog_value, numbers_encode_the_same_into_a_roomy_or_an_exact_buffer)
{
    /* A roomy buffer takes the unsized fast path, an exact one the general path. */
    const int64_t ints[] = {0, 1, 127, 128, 300, -1, INT64_MIN, INT64_MAX, 1LL << 35};
    const double dbls[] = {0.0, -0.0, 0.5, -1e300, INFINITY, NAN};
    catalog_value_t vals[3 * 9 + 2 * 6];
    size_t n = 0;
    for (size_t i = 0; i < 9; i++) {
        vals[n++] = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = ints[i]};
        vals[n++] = (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = ints[i]};
        vals[n++] = (catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = (int32_t)ints[i]};
    }
    for (size_t i = 0; i < 6; i++) {
        vals[n++] = (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = dbls[i]};
        vals[n++] = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = (float)dbls[i]};
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t roomy[32], exact[16];
        size_t need = catalog_value_wire_size(&vals[i]);
        cr_assert_leq(need, sizeof exact);
        int a = catalog_value_encode(&vals[i], roomy, sizeof roomy);
        int b = catalog_value_encode(&vals[i], exact, need);
        cr_assert_eq(a, (int)need, "value %zu", i);
        cr_assert_eq(b, (int)need, "value %zu", i);
        cr_assert_arr_eq(roomy, exact, need, "value %zu", i);
        if (need > 1)
            cr_assert_eq(catalog_value_encode(&vals[i], exact, need - 1), -ENOSPC);
    }
}

Test(catalog_value, null_encodes_as_null_val_and_empty_decodes_as_null)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_NULL};
    expect_bytes(&v, (const uint8_t[]){0x98, 0x01, 0x00}, 3);
    catalog_value_t out = {.type = CATALOG_DTYPE_INT64};
    cr_assert_eq(catalog_value_decode(NULL, 0, &out, NULL, 0), 0);
    cr_expect_eq(out.type, CATALOG_DTYPE_NULL);
}

Test(catalog_value, numeric_lists_encode_packed)
{
    int64_t i64[] = {1, 2};
    catalog_value_t v = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = i64}}};
    expect_bytes(&v, (const uint8_t[]){0x72, 0x04, 0x0a, 0x02, 0x01, 0x02}, 6);
    int32_t i32[] = {-1};
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT32_LIST, .u.list = {1, {.i32 = i32}}};
    expect_bytes(&v,
                 (const uint8_t[]){0x6a, 0x0c, 0x0a, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0x01},
                 14);
    bool b[] = {true, false, true};
    v = (catalog_value_t){.type = CATALOG_DTYPE_BOOL_LIST, .u.list = {3, {.b = b}}};
    expect_bytes(&v, (const uint8_t[]){0x8a, 0x01, 0x05, 0x0a, 0x03, 0x01, 0x00, 0x01}, 8);
    float f[] = {1.0f};
    v = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT_LIST, .u.list = {1, {.f32 = f}}};
    expect_bytes(&v, (const uint8_t[]){0x82, 0x01, 0x06, 0x0a, 0x04, 0, 0, 0x80, 0x3f}, 9);
    int64_t ts[] = {5};
    v = (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP_LIST, .u.list = {1, {.i64 = ts}}};
    expect_bytes(&v, (const uint8_t[]){0x92, 0x01, 0x03, 0x0a, 0x01, 0x05}, 6);
}

Test(catalog_value, string_lists_repeat_their_field)
{
    catalog_bytes_t s[] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"", 0}};
    catalog_value_t v = {.type = CATALOG_DTYPE_STRING_LIST, .u.list = {2, {.bytes = s}}};
    expect_bytes(&v, (const uint8_t[]){0x62, 0x05, 0x0a, 0x01, 'a', 0x0a, 0x00}, 7);
}

Test(catalog_value, empty_lists_encode_as_an_empty_message)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_DOUBLE_LIST, .u.list = {0, {.f64 = NULL}}};
    expect_bytes(&v, (const uint8_t[]){0x7a, 0x00}, 2);
    v = (catalog_value_t){.type = CATALOG_DTYPE_BYTES_LIST, .u.list = {0, {.bytes = NULL}}};
    expect_bytes(&v, (const uint8_t[]){0x5a, 0x00}, 2);
}

Test(catalog_value, unpacked_numeric_lists_decode_too)
{
    const uint8_t wire[] = {0x72, 0x06, 0x08, 0x01, 0x08, 0x02, 0x0a, 0x00};
    _Alignas(16) uint8_t scratch[256];
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(wire, sizeof wire, &v, scratch, sizeof scratch), 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_INT64_LIST);
    cr_assert_eq(v.u.list.n, 2);
    cr_expect_eq(v.u.list.v.i64[0], 1);
    cr_expect_eq(v.u.list.v.i64[1], 2);
    /* Packed and unpacked mixed in one list, as protobuf parsers accept. */
    const uint8_t mixed[] = {0x7a, 0x0b, 0x0a, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    cr_assert_eq(catalog_value_decode(mixed, sizeof mixed, &v, scratch, sizeof scratch), 0);
    cr_assert_eq(v.u.list.n, 1);
    cr_expect_eq(v.u.list.v.f64[0], 1.0);
}

static void round_trip(const catalog_value_t *v)
{
    size_t n = catalog_value_wire_size(v);
    uint8_t *buf = malloc(n + 1);
    cr_assert_eq(catalog_value_encode(v, buf, n), (int)n);
    cr_expect_eq(catalog_value_encode(v, buf, n - 1), -ENOSPC);
    size_t cap = 16 * n + 64;
    void *scratch = malloc(cap);
    catalog_value_t back;
    cr_assert_eq(catalog_value_decode(buf, n, &back, scratch, cap), 0, "%s",
                 catalog_dtype_name(v->type));
    cr_expect(catalog_value_equal(v, &back), "%s does not round-trip", catalog_dtype_name(v->type));
    free(scratch);
    free(buf);
}

Test(catalog_value, every_dtype_round_trips)
{
    catalog_bytes_t bs[] = {{(const uint8_t *)"x", 1}, {(const uint8_t *)"\xff\x00", 2}};
    int32_t i32[] = {0, -5, INT32_MAX, INT32_MIN};
    int64_t i64[] = {0, -1, INT64_MAX, INT64_MIN};
    double f64[] = {0.0, -0.0, 1e300, -2.5, INFINITY};
    float f32[] = {0.5f, -1e30f, NAN};
    bool b[] = {true, false};
    catalog_value_t vs[] = {
        {.type = CATALOG_DTYPE_BYTES, .u.bytes = bs[1]},
        {.type = CATALOG_DTYPE_STRING, .u.bytes = bs[0]},
        {.type = CATALOG_DTYPE_INT32, .u.i32 = INT32_MIN},
        {.type = CATALOG_DTYPE_INT64, .u.i64 = INT64_MAX},
        {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = -0.0},
        {.type = CATALOG_DTYPE_FLOAT, .u.f32 = 3.25f},
        {.type = CATALOG_DTYPE_BOOL, .u.b = true},
        {.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = 1700000000},
        {.type = CATALOG_DTYPE_BYTES_LIST, .u.list = {2, {.bytes = bs}}},
        {.type = CATALOG_DTYPE_STRING_LIST, .u.list = {1, {.bytes = bs}}},
        {.type = CATALOG_DTYPE_INT32_LIST, .u.list = {4, {.i32 = i32}}},
        {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {4, {.i64 = i64}}},
        {.type = CATALOG_DTYPE_DOUBLE_LIST, .u.list = {5, {.f64 = f64}}},
        {.type = CATALOG_DTYPE_FLOAT_LIST, .u.list = {3, {.f32 = f32}}},
        {.type = CATALOG_DTYPE_BOOL_LIST, .u.list = {2, {.b = b}}},
        {.type = CATALOG_DTYPE_UNIX_TIMESTAMP_LIST, .u.list = {4, {.i64 = i64}}},
        {.type = CATALOG_DTYPE_NULL},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        round_trip(&vs[i]);
}

Test(catalog_value, invalid_type_does_not_encode)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_INVALID};
    uint8_t buf[8];
    cr_expect_eq(catalog_value_encode(&v, buf, sizeof buf), -EINVAL);
    cr_expect_eq(catalog_value_wire_size(&v), 0);
    v.type = (catalog_dtype_t)9;
    cr_expect_eq(catalog_value_encode(&v, buf, sizeof buf), -EINVAL);
}

static int decode(const uint8_t *wire, size_t n)
{
    _Alignas(16) uint8_t scratch[16 * 64 + 64];
    catalog_value_t v;
    return catalog_value_decode(wire, n, &v, scratch, 16 * n + 64);
}

Test(catalog_value, hostile_bytes_are_refused)
{
    struct {
        const char *what;
        uint8_t wire[16];
        size_t n;
    } cases[] = {
        {"truncated varint", {0x20, 0x80}, 2},
        {"truncated tag", {0x80}, 1},
        {"eleven-byte varint",
         {0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
         12},
        {"varint past 64 bits",
         {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
         11},
        {"string longer than the input", {0x12, 0x05, 'a'}, 3},
        {"huge length", {0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10},
        {"field 20", {0xa0, 0x01, 0x00}, 3},
        {"field 9", {0x48, 0x00}, 2},
        {"field 10", {0x50, 0x00}, 2},
        {"field 0", {0x00, 0x00}, 2},
        {"wrong wire type for int64", {0x21, 0, 0, 0, 0, 0, 0, 0, 0}, 9},
        {"wrong wire type for string", {0x10, 0x01}, 2},
        {"short double", {0x29, 0, 0, 0}, 4},
        {"short float", {0x35, 0}, 2},
        {"group wire type", {0x23}, 1},
        {"list with inner field 2", {0x72, 0x02, 0x10, 0x01}, 4},
        {"packed doubles not a multiple of 8", {0x7a, 0x05, 0x0a, 0x03, 0, 0, 0}, 7},
        {"packed run past its list", {0x72, 0x03, 0x0a, 0x05, 0x01}, 5},
        {"string list item past the list", {0x62, 0x02, 0x0a, 0x05}, 4},
        {"unpacked string list wire type", {0x62, 0x02, 0x08, 0x01}, 4},
        {"list length past input", {0x72, 0x09, 0x08}, 3},
        {"truncated packed varint", {0x72, 0x03, 0x0a, 0x01, 0x80}, 5},
        {"null_val with length wire type", {0x9a, 0x01, 0x00}, 3},
        {"huge field number", {0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(decode(cases[i].wire, cases[i].n), -EINVAL, "%s", cases[i].what);
}

Test(catalog_value, small_scratch_is_enospc)
{
    const uint8_t wire[] = {0x72, 0x04, 0x0a, 0x02, 0x01, 0x02};
    _Alignas(16) uint8_t scratch[64];
    catalog_value_t v;
    cr_expect_eq(catalog_value_decode(wire, sizeof wire, &v, scratch, 8), -ENOSPC);
    cr_expect_eq(catalog_value_decode(wire, sizeof wire, &v, NULL, 0), -ENOSPC);
    cr_expect_eq(catalog_value_decode(wire, sizeof wire, &v, scratch + 1, 17), -ENOSPC);
    cr_expect_eq(catalog_value_decode(wire, sizeof wire, &v, scratch + 1, 40), 0);
    cr_expect_eq(v.u.list.v.i64[1], 2);
}

Test(catalog_value, last_oneof_field_wins)
{
    const uint8_t wire[] = {0x20, 0x01, 0x12, 0x01, 'z'};
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(wire, sizeof wire, &v, NULL, 0), 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_STRING);
    cr_expect_eq(v.u.bytes.data[0], 'z');
}

Test(catalog_value, int32_decodes_from_a_ten_byte_negative)
{
    const uint8_t wire[] = {0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(wire, sizeof wire, &v, NULL, 0), 0);
    cr_expect_eq(v.u.i32, -2);
}

Test(catalog_value, equality_treats_zeros_alike_and_compares_bits_otherwise)
{
    catalog_value_t a = {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 0.0};
    catalog_value_t b = {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = -0.0};
    cr_expect(catalog_value_equal(&a, &b));
    a.u.f64 = NAN;
    b.u.f64 = NAN;
    cr_expect(catalog_value_equal(&a, &b));
    b.type = CATALOG_DTYPE_FLOAT;
    cr_expect_not(catalog_value_equal(&a, &b));
    int64_t x[] = {1, 2}, y[] = {1, 3};
    catalog_value_t l1 = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = x}}};
    catalog_value_t l2 = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = y}}};
    cr_expect_not(catalog_value_equal(&l1, &l2));
    l2.u.list.n = 1;
    cr_expect_not(catalog_value_equal(&l1, &l2));
    l1.u.list.n = 1;
    cr_expect(catalog_value_equal(&l1, &l2));
}

Test(catalog_value, format_prints_values_for_people)
{
    char buf[64];
    catalog_value_t v = {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 1.5};
    cr_expect_eq(catalog_value_format(&v, buf, sizeof buf), 3);
    cr_expect_str_eq(buf, "1.5");
    v = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = 0.1f};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "0.1");
    v = (catalog_value_t){.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"a\"b\n", 4}};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "\"a\\\"b\\n\"");
    int64_t l[] = {1, 2};
    v = (catalog_value_t){.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = l}}};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "[1, 2]");
    v = (catalog_value_t){.type = CATALOG_DTYPE_NULL};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "null");
    v = (catalog_value_t){.type = CATALOG_DTYPE_BYTES, .u.bytes = {(const uint8_t *)"hi!", 3}};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "b64:aGkh");
    v = (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = false};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "false");
    v = (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = -INFINITY};
    catalog_value_format(&v, buf, sizeof buf);
    cr_expect_str_eq(buf, "-inf");
}

Test(catalog_value, format_truncates_like_snprintf)
{
    char buf[4];
    int64_t l[] = {100, 200};
    catalog_value_t v = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {2, {.i64 = l}}};
    cr_expect_eq(catalog_value_format(&v, buf, sizeof buf), 10);
    cr_expect_str_eq(buf, "[10");
    cr_expect_eq(catalog_value_format(&v, NULL, 0), 10);
}
