/* tests/codec/test_values.c - feast.types.Value <-> catalog_value_t and request columns. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

static base_arena_t arena;

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(values, .init = setup, .fini = teardown);

static catalog_value_t from_pb(const Feast__Types__Value *pb)
{
    catalog_value_t v;
    char why[200];
    cr_assert_eq(codec_value_from_pb(pb, &arena, &v, why, sizeof why), 0, "%s", why);
    return v;
}

Test(values, scalars_convert_without_copies)
{
    Feast__Types__Value pb = FEAST__TYPES__VALUE__INIT;
    pb.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    pb.int64_val = -5;
    catalog_value_t v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_INT64);
    cr_assert_eq(v.u.i64, -5);

    pb.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    pb.string_val = "héllo";
    v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_STRING);
    cr_assert_eq(v.u.bytes.len, strlen("héllo"));
    cr_assert_eq((const char *)v.u.bytes.data, pb.string_val);

    pb.val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
    pb.float_val = 1.5f;
    v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_FLOAT);
    cr_assert_float_eq(v.u.f32, 1.5f, 0);

    pb.val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
    pb.unix_timestamp_val = 1700000000;
    v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_UNIX_TIMESTAMP);
    cr_assert_eq(v.u.i64, 1700000000);
}

Test(values, unset_and_null_are_null)
{
    Feast__Types__Value pb = FEAST__TYPES__VALUE__INIT;
    cr_assert_eq(from_pb(&pb).type, CATALOG_DTYPE_NULL);
    pb.val_case = FEAST__TYPES__VALUE__VAL_NULL_VAL;
    cr_assert_eq(from_pb(&pb).type, CATALOG_DTYPE_NULL);
}

Test(values, bool_and_string_lists_are_converted)
{
    protobuf_c_boolean bits[3] = {1, 0, 1};
    Feast__Types__BoolList bl = FEAST__TYPES__BOOL_LIST__INIT;
    bl.n_val = 3;
    bl.val = bits;
    Feast__Types__Value pb = FEAST__TYPES__VALUE__INIT;
    pb.val_case = FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL;
    pb.bool_list_val = &bl;
    catalog_value_t v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_BOOL_LIST);
    cr_assert_eq(v.u.list.n, 3);
    cr_assert(v.u.list.v.b[0] && !v.u.list.v.b[1] && v.u.list.v.b[2]);

    char *items[2] = {"a", "bc"};
    Feast__Types__StringList sl = FEAST__TYPES__STRING_LIST__INIT;
    sl.n_val = 2;
    sl.val = items;
    pb.val_case = FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL;
    pb.string_list_val = &sl;
    v = from_pb(&pb);
    cr_assert_eq(v.type, CATALOG_DTYPE_STRING_LIST);
    cr_assert_eq(v.u.list.v.bytes[1].len, 2);
}

Test(values, newer_feast_types_are_refused_not_misread)
{
    /* A Value carrying field 20 (a newer Feast type) on the wire: tag (20 << 3 | 2), len 0. */
    const uint8_t wire[] = {0xa2, 0x01, 0x00};
    Feast__Types__Value *pb = feast__types__value__unpack(
        codec_allocator(&arena, &(ProtobufCAllocator){0}), sizeof wire, wire);
    cr_assert_not_null(pb);
    catalog_value_t v;
    char why[200];
    cr_assert_eq(codec_value_from_pb(pb, &arena, &v, why, sizeof why), -EINVAL);
    cr_assert(strstr(why, "field 20") != NULL, "%s", why);
}

Test(values, to_pb_round_trips_every_type)
{
    int64_t i64s[2] = {1, -2};
    catalog_bytes_t strs[2] = {{(const uint8_t *)"x", 1}, {(const uint8_t *)"yz", 2}};
    bool bools[2] = {true, false};
    catalog_value_t in[5];
    memset(in, 0, sizeof in);
    in[0].type = CATALOG_DTYPE_DOUBLE;
    in[0].u.f64 = 2.5;
    in[1].type = CATALOG_DTYPE_INT64_LIST;
    in[1].u.list.n = 2;
    in[1].u.list.v.i64 = i64s;
    in[2].type = CATALOG_DTYPE_STRING_LIST;
    in[2].u.list.n = 2;
    in[2].u.list.v.bytes = strs;
    in[3].type = CATALOG_DTYPE_BOOL_LIST;
    in[3].u.list.n = 2;
    in[3].u.list.v.b = bools;
    in[4].type = CATALOG_DTYPE_NULL;
    for (size_t i = 0; i < 5; i++) {
        Feast__Types__Value pb;
        cr_assert_eq(codec_value_to_pb(&in[i], &arena, &pb), 0);
        /* Through the wire and back, as a client would see it. */
        uint8_t buf[256];
        size_t n = feast__types__value__pack(&pb, buf);
        Feast__Types__Value *back =
            feast__types__value__unpack(codec_allocator(&arena, &(ProtobufCAllocator){0}), n, buf);
        catalog_value_t out = from_pb(back);
        cr_assert(catalog_value_equal(&in[i], &out), "type %d did not round-trip", in[i].type);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Request columns: the shape is checked before any value is converted.                        */

static base_arena_t arena_c;
static core_ctx_t ctx;

static void columns_setup(void)
{
    memset(&ctx, 0, sizeof ctx);
    base_arena_init(&arena_c, 4096);
    ctx.arena = &arena_c;
}

static void columns_teardown(void)
{
    base_arena_free(&arena_c);
}

TestSuite(columns, .init = columns_setup, .fini = columns_teardown);

static const core_columns_limits_t small = {4, "entity columns per read", 3, "--max-entities"};

/* n empty columns named c0, c1, ... in the call's arena. */
static void make_columns(size_t n, char ***keys, Feast__Types__RepeatedValue ***vals)
{
    *keys = base_arena_calloc(&arena_c, n, sizeof **keys);
    *vals = base_arena_calloc(&arena_c, n, sizeof **vals);
    cr_assert(*keys != NULL && *vals != NULL);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "c%zu", i);
        (*keys)[i] = base_arena_strndup(&arena_c, name, (size_t)len);
    }
}

Test(columns, more_columns_than_the_limit_are_refused_naming_it)
{
    char **keys;
    Feast__Types__RepeatedValue **vals;
    make_columns(5, &keys, &vals);
    core_columns_t out;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "entity", 5, (const char *const *)keys, vals, &small, &out),
        -E2BIG);
    cr_assert_str_eq(ctx.msg,
                     "request has 5 entity columns; the limit is 4 (entity columns per read)");
}

Test(columns, rows_over_the_limit_are_refused_before_any_value_is_converted)
{
    /* A column claiming a huge batch whose values are not there: converting (or even
     * allocating for) them first would fail or blow up; the row limit must come first. */
    Feast__Types__RepeatedValue col = FEAST__TYPES__REPEATED_VALUE__INIT;
    col.n_val = SIZE_MAX / 2;
    col.val = NULL;
    char *keys[1] = {"driver_id"};
    Feast__Types__RepeatedValue *vals[1] = {&col};
    core_columns_t out;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "entity", 1, (const char *const *)keys, vals, &small, &out),
        -E2BIG);
    cr_assert(strstr(ctx.msg, " entity rows; the limit is 3 (--max-entities)") != NULL, "%s",
              ctx.msg);

    /* Over the limit with a value of an unknown type in it: the limit is what is reported. */
    Feast__Types__Value bad = FEAST__TYPES__VALUE__INIT;
    ProtobufCMessageUnknownField unknown = {.tag = 20};
    bad.base.n_unknown_fields = 1;
    bad.base.unknown_fields = &unknown;
    Feast__Types__Value *items[4] = {&bad, &bad, &bad, &bad};
    col.n_val = 4;
    col.val = items;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "entity", 1, (const char *const *)keys, vals, &small, &out),
        -E2BIG);
    col.n_val = 3;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "entity", 1, (const char *const *)keys, vals, &small, &out),
        -EINVAL);
    cr_assert(strstr(ctx.msg, "field 20") != NULL, "%s", ctx.msg);
}

Test(columns, every_column_length_is_checked_before_values)
{
    Feast__Types__Value bad = FEAST__TYPES__VALUE__INIT;
    ProtobufCMessageUnknownField unknown = {.tag = 20};
    bad.base.n_unknown_fields = 1;
    bad.base.unknown_fields = &unknown;
    Feast__Types__Value *items[2] = {&bad, &bad};
    Feast__Types__RepeatedValue a = FEAST__TYPES__REPEATED_VALUE__INIT;
    Feast__Types__RepeatedValue b = FEAST__TYPES__REPEATED_VALUE__INIT;
    a.n_val = 1;
    a.val = items;
    b.n_val = SIZE_MAX / 2;
    char *keys[2] = {"a", "b"};
    Feast__Types__RepeatedValue *vals[2] = {&a, &b};
    core_columns_t out;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "write", 2, (const char *const *)keys, vals, &small, &out),
        -EINVAL);
    cr_assert(strstr(ctx.msg, "different lengths") != NULL, "%s", ctx.msg);
}

Test(columns, a_repeated_name_is_found_wherever_it_is)
{
    char **keys;
    Feast__Types__RepeatedValue **vals;
    make_columns(4, &keys, &vals);
    keys[3] = "c1";
    core_columns_t out;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "write", 4, (const char *const *)keys, vals, &small, &out),
        -EINVAL);
    cr_assert_str_eq(ctx.msg, "write column 'c1' given twice");
    keys[3] = "c3";
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "write", 4, (const char *const *)keys, vals, &small, &out), 0);
    cr_assert_eq(out.n_cols, 4);
    cr_assert_eq(out.n_rows, 0);
}

/* The duplicate check was a strcmp against every earlier column: 100k columns took minutes
 * under ASan. A hash set takes milliseconds; the timeout catches a quadratic check. */
Test(columns, the_duplicate_check_is_linear_in_the_number_of_columns, .timeout = 20)
{
    size_t n = 100000;
    char **keys;
    Feast__Types__RepeatedValue **vals;
    make_columns(n, &keys, &vals);
    core_columns_limits_t wide = {n, "test", 1, "test"};
    core_columns_t out;
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "write", n, (const char *const *)keys, vals, &wide, &out), 0,
        "%s", ctx.msg);
    cr_assert_eq(out.n_cols, n);
    keys[n - 1] = "c0";
    cr_assert_eq(
        codec_columns_from_pb(&ctx, "write", n, (const char *const *)keys, vals, &wide, &out),
        -EINVAL);
    cr_assert_str_eq(ctx.msg, "write column 'c0' given twice");
}
