/* tests/server/test_values.c - feast.types.Value <-> catalog_value_t and request columns. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/server_int.h"

static server_arena_t arena;

static void setup(void)
{
    server__arena_init(&arena, 4096);
}

static void teardown(void)
{
    server__arena_free(&arena);
}

TestSuite(values, .init = setup, .fini = teardown);

static catalog_value_t from_pb(const Feast__Types__Value *pb)
{
    catalog_value_t v;
    char why[200];
    cr_assert_eq(server__value_from_pb(pb, &arena, &v, why, sizeof why), 0, "%s", why);
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
    Feast__Types__Value *pb =
        feast__types__value__unpack(server__arena_allocator(&arena), sizeof wire, wire);
    cr_assert_not_null(pb);
    catalog_value_t v;
    char why[200];
    cr_assert_eq(server__value_from_pb(pb, &arena, &v, why, sizeof why), -EINVAL);
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
        cr_assert_eq(server__value_to_pb(&in[i], &arena, &pb), 0);
        /* Through the wire and back, as a client would see it. */
        uint8_t buf[256];
        size_t n = feast__types__value__pack(&pb, buf);
        Feast__Types__Value *back =
            feast__types__value__unpack(server__arena_allocator(&arena), n, buf);
        catalog_value_t out = from_pb(back);
        cr_assert(catalog_value_equal(&in[i], &out), "type %d did not round-trip", in[i].type);
    }
}
