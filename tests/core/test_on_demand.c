/* tests/core/test_on_demand.c - on-demand features (core/on_demand.c): request data converted
 * to the field's type or refused by row, inputs read only for them, and the compute budget. */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"
#include "tests/storage/helpers.h"

static const char yaml[] =
    "project: p\n"
    "entities:\n"
    "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
    "  - {name: customer, join_keys: [{name: customer_id, type: INT64}]}\n"
    "feature_views:\n"
    "  - name: fv\n"
    "    entities: [driver]\n"
    "    ttl: 1h\n"
    "    features: [{name: a, dtype: INT64}, {name: s, dtype: STRING},\n"
    "               {name: l, dtype: STRING_LIST}]\n"
    "  - name: cust\n"
    "    entities: [customer]\n"
    "    features: [{name: y, dtype: INT64}]\n"
    "request_sources:\n"
    "  - name: rq\n"
    "    schema: [{name: ts, dtype: UNIX_TIMESTAMP}, {name: i32, dtype: INT32},\n"
    "             {name: d, dtype: DOUBLE}, {name: fl, dtype: FLOAT}, {name: by, dtype: BYTES},\n"
    "             {name: flag, dtype: BOOL}]\n"
    "on_demand_feature_views:\n"
    "  - name: od\n"
    "    sources: [fv, cust, rq]\n"
    "    features:\n"
    "      - {name: rts, dtype: UNIX_TIMESTAMP, expression: 'rq.ts'}\n"
    "      - {name: ri, dtype: INT32, expression: 'rq.i32'}\n"
    "      - {name: rd, dtype: DOUBLE, expression: 'rq.d'}\n"
    "      - {name: rf, dtype: FLOAT, expression: 'rq.fl'}\n"
    "      - {name: rb, dtype: BYTES, expression: 'rq.by'}\n"
    "      - {name: rflag, dtype: BOOL, expression: 'rq.flag'}\n"
    "      - {name: et, dtype: UNIX_TIMESTAMP, expression: 'event_time(fv)'}\n"
    "      - {name: ec, dtype: UNIX_TIMESTAMP, expression: 'event_time(cust)'}\n"
    "      - {name: ls, dtype: INT64, expression: 'len(fv.l)'}\n"
    "      - {name: cp, dtype: STRING, expression: 'fv.s'}\n";

static fx_t f;
static int64_t t0;
static char long_s[201];

static void setup(void)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    t0 = (store_now_us() / 1000000 - 120) * 1000000; /* two minutes ago, whole seconds */
    fx_put(&f, "fv", 1, 0, th_i64(10), t0);
    memset(long_s, 'q', sizeof long_s - 1);
    fx_put(&f, "fv", 1, 1, th_str(long_s), t0);
    static catalog_bytes_t items[3] = {
        {(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}, {(const uint8_t *)"z", 1}};
    catalog_value_t l = {.type = CATALOG_DTYPE_STRING_LIST};
    l.u.list.n = 3;
    l.u.list.v.bytes = items;
    fx_put(&f, "fv", 1, 2, l, t0);
    cr_assert_eq(store_read_begin(f.worker->reader), 0);
}

static void teardown(void)
{
    store_read_end(f.worker->reader);
    fx_close(&f);
}

TestSuite(on_demand, .init = setup, .fini = teardown);

static catalog_feature_ref_t ref(const char *s)
{
    catalog_feature_ref_t r;
    cr_assert_eq(catalog_find_feature(f.ctx.catalog, s, strlen(s), &r), 0, "%s", s);
    return r;
}

static char err[512];

/* Reads od feature `feat` for drivers ids[0..n) with request field `field` = given[row] (field
 * NULL: no request data), bounded by max_bytes, into cells. Returns: core_read_features(). */
static int read_od(const char *feat, const int64_t *ids, size_t n, const char *field,
                   const catalog_value_t *given, size_t max_bytes, core_cell_t *cells)
{
    static catalog_value_t idv[8];
    static const char *ent_names[1] = {"driver_id"};
    static const catalog_value_t *ent_cols[1] = {idv};
    static const char *rq_names[1];
    static const catalog_value_t *rq_cols[1];
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++)
        idv[i] = th_i64(ids[i]);
    core_columns_t ents = {.n_cols = 1, .n_rows = n, .names = ent_names, .cols = ent_cols};
    rq_names[0] = field;
    rq_cols[0] = given;
    core_columns_t req = {.n_cols = 1, .n_rows = n, .names = rq_names, .cols = rq_cols};
    catalog_feature_ref_t refs[1] = {ref(feat)};
    err[0] = '\0';
    return core_read_features(f.worker->reader, &f.arena, refs, 1, NULL, &ents,
                              field != NULL ? &req : NULL, store_now_us(), max_bytes, cells, err,
                              sizeof err);
}

/* The one row's computed value of od feature feat from request field = given. */
static catalog_value_t computed(const char *feat, const char *field, catalog_value_t given)
{
    const int64_t id = 1;
    core_cell_t cell;
    int rc = read_od(feat, &id, 1, field, &given, 0, &cell);
    cr_assert_eq(rc, 0, "%s from %s: %s", feat, field, err);
    cr_assert_eq(cell.status, STORE_STATUS_PRESENT, "%s: status %u", feat, cell.status);
    static uint8_t scratch[256];
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(cell.wire, cell.len, &v, scratch, sizeof scratch), 0);
    return v;
}

/* The message of a request value refused for field. */
static void refused(const char *feat, const char *field, catalog_value_t given, const char *msg)
{
    const int64_t id = 1;
    core_cell_t cell;
    cr_assert_eq(read_od(feat, &id, 1, field, &given, 0, &cell), -EINVAL, "%s from %s", feat,
                 field);
    cr_assert_str_eq(err, msg);
}

static catalog_value_t i32(int32_t x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_INT32, .u.i32 = x};
}

static catalog_value_t f64(double x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = x};
}

static catalog_value_t boolean(bool x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_BOOL, .u.b = x};
}

Test(on_demand, integers_become_timestamps_and_nothing_else_does)
{
    catalog_value_t v = computed("od:rts", "ts", th_i64(1700000000));
    cr_assert_eq(v.type, CATALOG_DTYPE_UNIX_TIMESTAMP);
    cr_assert_eq(v.u.i64, 1700000000);
    v = computed("od:rts", "ts", i32(-5));
    cr_assert_eq(v.type, CATALOG_DTYPE_UNIX_TIMESTAMP);
    cr_assert_eq(v.u.i64, -5);
    refused("od:rts", "ts", f64(1.0),
            "request field 'ts', row 0: want UNIX_TIMESTAMP, got DOUBLE (or out of range)");
}

Test(on_demand, int32_fields_take_integers_within_range)
{
    catalog_value_t v = computed("od:ri", "i32", th_i64(INT32_MAX));
    cr_assert_eq(v.type, CATALOG_DTYPE_INT32);
    cr_assert_eq(v.u.i32, INT32_MAX);
    v = computed("od:ri", "i32", th_i64(INT32_MIN));
    cr_assert_eq(v.u.i32, INT32_MIN);
    refused("od:ri", "i32", th_i64((int64_t)INT32_MAX + 1),
            "request field 'i32', row 0: want INT32, got INT64");
    refused("od:ri", "i32", th_i64((int64_t)INT32_MIN - 1),
            "request field 'i32', row 0: want INT32, got INT64");
    refused("od:ri", "i32", th_str("7"), "request field 'i32', row 0: want INT32, got STRING");
}

Test(on_demand, double_fields_widen_integers_and_floats)
{
    catalog_value_t v = computed("od:rd", "d", th_i64(3));
    cr_assert_eq(v.type, CATALOG_DTYPE_DOUBLE);
    cr_assert_eq(v.u.f64, 3.0);
    v = computed("od:rd", "d", i32(-2));
    cr_assert_eq(v.u.f64, -2.0);
    v = computed("od:rd", "d", th_f32(1.5f));
    cr_assert_eq(v.u.f64, 1.5);
    refused("od:rd", "d", boolean(true), "request field 'd', row 0: want DOUBLE, got BOOL");
}

Test(on_demand, float_fields_narrow_doubles_within_range_only)
{
    catalog_value_t v = computed("od:rf", "fl", f64(2.5));
    cr_assert_eq(v.type, CATALOG_DTYPE_FLOAT);
    cr_assert_eq(v.u.f32, 2.5f);
    v = computed("od:rf", "fl", th_i64(4));
    cr_assert_eq(v.u.f32, 4.0f);
    v = computed("od:rf", "fl", f64(FLT_MAX));
    cr_assert_eq(v.u.f32, FLT_MAX);
    refused("od:rf", "fl", f64(1e300),
            "request field 'fl', row 0: want FLOAT, got DOUBLE (or out of range)");
    refused("od:rf", "fl", th_str("1"), "request field 'fl', row 0: want FLOAT, got STRING");
}

Test(on_demand, bytes_fields_take_text_and_bool_fields_take_bools_only)
{
    catalog_value_t v = computed("od:rb", "by", th_str("hi"));
    cr_assert_eq(v.type, CATALOG_DTYPE_BYTES);
    cr_assert_eq(v.u.bytes.len, 2);
    cr_assert_eq(memcmp(v.u.bytes.data, "hi", 2), 0);
    refused("od:rb", "by", th_i64(1), "request field 'by', row 0: want BYTES, got INT64");
    v = computed("od:rflag", "flag", boolean(true));
    cr_assert_eq(v.type, CATALOG_DTYPE_BOOL);
    cr_assert(v.u.b);
    refused("od:rflag", "flag", th_i64(1), "request field 'flag', row 0: want BOOL, got INT64");
}

/* A null request value is no value: the computed feature is null, not an error. */
Test(on_demand, a_null_request_value_computes_a_null)
{
    const int64_t id = 1;
    core_cell_t cell;
    catalog_value_t nul = th_null();
    cr_assert_eq(read_od("od:ri", &id, 1, "i32", &nul, 0, &cell), 0, "%s", err);
    cr_assert_eq(cell.status, STORE_STATUS_NULL_VALUE);
    cr_assert_eq(cell.len, 0);
}

/* A later row's bad value is named with its row. */
Test(on_demand, a_bad_value_is_named_with_its_row)
{
    const int64_t ids[3] = {1, 2, 3};
    catalog_value_t given[3] = {th_i64(1), th_i64(2), th_str("three")};
    core_cell_t cells[3];
    cr_assert_eq(read_od("od:ri", ids, 3, "i32", given, 0, cells), -EINVAL);
    cr_assert_str_eq(err, "request field 'i32', row 2: want INT32, got STRING");
}

/* event_time(fv) reads fv although no requested feature is fv's: a hidden read, in the same
 * snapshot, of the row's time. */
Test(on_demand, event_time_of_a_source_nobody_asked_for_is_read_for_it)
{
    const int64_t ids[2] = {1, 2};
    core_cell_t cells[2];
    cr_assert_eq(read_od("od:et", ids, 2, NULL, NULL, 0, cells), 0, "%s", err);
    cr_assert_eq(cells[0].status, STORE_STATUS_PRESENT);
    cr_assert_eq(cells[0].event_ts_us, t0);
    uint8_t scratch[64];
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(cells[0].wire, cells[0].len, &v, scratch, sizeof scratch), 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_UNIX_TIMESTAMP);
    cr_assert_eq(v.u.i64, t0 / 1000000, "seconds");
    /* driver 2 has no row: no time, no value */
    cr_assert_eq(cells[1].status, STORE_STATUS_NOT_FOUND);
    cr_assert_eq(cells[1].len, 0);
}

/* The hidden read of a source checks that source's join keys like any other read. */
Test(on_demand, a_source_whose_join_key_is_missing_is_named)
{
    const int64_t id = 1;
    core_cell_t cell;
    cr_assert_eq(read_od("od:ec", &id, 1, NULL, NULL, 0, &cell), -EINVAL);
    cr_assert_str_eq(err, "missing join key 'customer_id' (needed by feature view 'cust@v1')");
}

static const char too_big_63[] =
    "on-demand features would take more than 63 bytes to compute (their list inputs decoded and "
    "their values); the limit is --max-response-bytes";

/* A list input's decode buffer counts against the bound before anything is decoded. */
Test(on_demand, a_list_input_over_the_bound_is_refused)
{
    const int64_t id = 1;
    core_cell_t cell;
    cr_assert_eq(read_od("od:ls", &id, 1, NULL, NULL, 0, &cell), 0, "%s", err);
    cr_assert_eq(cell.status, STORE_STATUS_PRESENT);
    cr_assert_eq(read_od("od:ls", &id, 1, NULL, NULL, 63, &cell), -EMSGSIZE);
    cr_assert_str_eq(err, too_big_63);
}

/* A value the expression only passes on costs nothing to compute, but its encoding counts. */
Test(on_demand, an_encoded_value_over_the_bound_is_refused)
{
    const int64_t id = 1;
    core_cell_t cell;
    cr_assert_eq(read_od("od:cp", &id, 1, NULL, NULL, 0, &cell), 0, "%s", err);
    cr_assert_eq(cell.status, STORE_STATUS_PRESENT);
    catalog_value_t v;
    cr_assert_eq(catalog_value_decode(cell.wire, cell.len, &v, NULL, 0), 0);
    cr_assert_eq(v.u.bytes.len, 200);
    cr_assert_eq(memcmp(v.u.bytes.data, long_s, 200), 0);
    cr_assert_eq(read_od("od:cp", &id, 1, NULL, NULL, 63, &cell), -EMSGSIZE);
    cr_assert_str_eq(err, too_big_63);
}
