/* tests/core/test_read_path.c - refs x entity rows -> cells, against a real store. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core_int.h"
#include "tests/tmpdir.h"

static const char yaml[] =
    "project: t\n"
    "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]},\n"
    "           {name: customer, join_keys: [{name: customer_id, type: INT64}]}]\n"
    "feature_views:\n"
    "  - {name: fv, version: 1, entities: [driver], ttl: 1h,\n"
    "     features: [{name: a, dtype: INT64}, {name: b, dtype: STRING},\n"
    "                {name: l, dtype: INT64_LIST}]}\n"
    "  - {name: old, version: 1, entities: [driver], ttl: 10s,\n"
    "     features: [{name: x, dtype: INT64}]}\n"
    "  - {name: g, version: 1, entities: [], features: [{name: total, dtype: INT64}]}\n"
    "  - {name: cust, version: 1, entities: [customer], features: [{name: y, dtype: INT64}]}\n"
    "request_sources: [{name: rq, schema: [{name: n, dtype: INT64}]}]\n"
    "on_demand_feature_views:\n"
    "  - name: od\n"
    "    sources: [fv, old, rq]\n"
    "    features:\n"
    "      - {name: s, dtype: INT64, expression: 'fv.a + rq.n'}\n"
    "      - {name: c, dtype: INT64, expression: 'coalesce(old.x, -1)'}\n"
    "      - {name: t, dtype: INT64, expression: 'old.x'}\n"
    "      - {name: v, dtype: INT64, expression: 'rq.n * 2', validation: {max: 10}}\n"
    "      - {name: both, dtype: INT64, expression: 'coalesce(fv.a, 0) + coalesce(old.x, 0)'}\n"
    "      - {name: ln, dtype: INT64, expression: 'len(fv.l)'}\n"
    "      - {name: nn, dtype: INT64, expression: 'old.x', validation: {not_null: true}}\n"
    "      - {name: up, dtype: INT64, expression: 'length(upper(concat(fv.b, fv.b)))'}\n";

static char dir[4096];
static catalog_t *cat;
static store_t *store;
static store_reader_t *reader;
static base_arena_t arena;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static const catalog_view_t *view(const char *name)
{
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(cat, name, 0, &v), 0);
    return v;
}

static void put(const char *vname, int64_t id, uint32_t feature, catalog_value_t val, int64_t ts_us)
{
    const catalog_view_t *v = view(vname);
    catalog_value_t key = {.type = CATALOG_DTYPE_INT64, .u.i64 = id};
    const catalog_value_t *keys[1] = {&key};
    const catalog_value_t *vals[1] = {&val};
    uint32_t idx[1] = {feature};
    store_batch_t b = {.view = v,
                       .op = STORE_OP_UPSERT,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = idx,
                       .values = vals,
                       .event_ts_us = &ts_us};
    store_apply_result_t res;
    int rc = store_apply(store, &b, 1, 0, &res);
    cr_assert_eq(rc, 0, "store_apply: %d %s", rc, res.error);
}

static void setup(void)
{
    cr_assert_not_null(test_tmpdir("test-read", dir, sizeof dir));
    catalog_errors_t errs = {0};
    cr_assert_eq(catalog_load_string(yaml, strlen(yaml), "t.yaml", &cat, &errs), 0);
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE};
    cr_assert_eq(store_open(&o, &store), 0);
    cr_assert_eq(store_apply_catalog(store, cat, NULL), 0);
    cr_assert_eq(store_reader_new(store, &reader), 0);
    base_arena_init(&arena, 4096);
    int64_t now = store_now_us();
    put("fv", 1, 0, (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 10}, now);
    put("fv", 2, 1,
        (catalog_value_t){.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"hi", 2}},
        now);
    put("old", 1, 0, (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 7},
        now - 3600 * 1000000LL);
    put("g", 0, 0, (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 99}, now);
    put("cust", 5, 0, (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = 50}, now);
}

static void teardown(void)
{
    base_arena_free(&arena);
    store_reader_free(reader);
    store_close(store);
    catalog_unref(cat);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(read_path, .init = setup, .fini = teardown);

static catalog_feature_ref_t ref(const char *s)
{
    catalog_feature_ref_t r;
    cr_assert_eq(catalog_find_feature(cat, s, strlen(s), &r), 0, "%s", s);
    return r;
}

static core_columns_t drivers(const catalog_value_t *ids, size_t n)
{
    static const char *names[1] = {"driver_id"};
    static const catalog_value_t *cols[1];
    cols[0] = ids;
    return (core_columns_t){.n_cols = 1, .n_rows = n, .names = names, .cols = cols};
}

static int64_t decode_i64(const core_cell_t *c)
{
    catalog_value_t v;
    uint8_t scratch[256];
    cr_assert_eq(catalog_value_decode(c->wire, c->len, &v, scratch, sizeof scratch), 0);
    cr_assert_eq(v.type, CATALOG_DTYPE_INT64);
    return v.u.i64;
}

Test(read_path, every_status_comes_back_per_cell)
{
    catalog_feature_ref_t refs[3] = {ref("fv:a"), ref("fv:b"), ref("old:x")};
    catalog_value_t ids[3] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT32, .u.i32 = 2},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 3}};
    core_columns_t ents = drivers(ids, 3);
    core_cell_t cells[9];
    /* Callers hand over unzeroed cells: every field of every cell must be written. */
    memset(cells, 0xa5, sizeof cells);
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    int rc = core_read_features(reader, &arena, refs, 3, NULL, &ents, NULL, store_now_us(), 0,
                                cells, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    for (size_t i = 0; i < 9; i++) {
        cr_assert_leq(cells[i].status, STORE_STATUS_OUTSIDE_MAX_AGE, "cell %zu", i);
        if (cells[i].status != STORE_STATUS_PRESENT &&
            cells[i].status != STORE_STATUS_OUTSIDE_MAX_AGE)
            cr_assert_eq(cells[i].len, 0, "cell %zu", i);
    }
    cr_assert_eq(cells[5].status, STORE_STATUS_NOT_FOUND);
    cr_assert_eq(cells[5].event_ts_us, 0);
    /* fv:a: present for 1, null for 2 (row exists without a), not found for 3. */
    cr_assert_eq(cells[0].status, STORE_STATUS_PRESENT);
    cr_assert_eq(decode_i64(&cells[0]), 10);
    cr_assert_gt(cells[0].event_ts_us, 0);
    cr_assert_eq(cells[1].status, STORE_STATUS_NULL_VALUE, "INT32 key coerces to the INT64 row");
    cr_assert_eq(cells[2].status, STORE_STATUS_NOT_FOUND);
    cr_assert_eq(cells[2].event_ts_us, 0);
    /* fv:b */
    cr_assert_eq(cells[3].status, STORE_STATUS_NULL_VALUE);
    cr_assert_eq(cells[4].status, STORE_STATUS_PRESENT);
    /* old:x: written an hour ago with a 10 s TTL. */
    cr_assert_eq(cells[6].status, STORE_STATUS_OUTSIDE_MAX_AGE);
    cr_assert_eq(decode_i64(&cells[6]), 7);
    store_read_end(reader);
}

Test(read_path, entityless_views_answer_every_row)
{
    catalog_feature_ref_t refs[1] = {ref("g:total")};
    catalog_value_t ids[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2}};
    core_columns_t ents = drivers(ids, 2);
    core_cell_t cells[2];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 1, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(decode_i64(&cells[0]), 99);
    cr_assert_eq(decode_i64(&cells[1]), 99);
    store_read_end(reader);
}

Test(read_path, a_missing_join_key_is_named)
{
    catalog_feature_ref_t refs[1] = {ref("fv:a")};
    static const char *names[1] = {"customer_id"};
    catalog_value_t ids[1] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1}};
    const catalog_value_t *cols[1] = {ids};
    core_columns_t ents = {.n_cols = 1, .n_rows = 1, .names = names, .cols = cols};
    core_cell_t cells[1];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 1, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "driver_id") != NULL && strstr(err, "fv@v1") != NULL, "%s", err);
    store_read_end(reader);
}

Test(read_path, a_key_of_the_wrong_type_is_rejected_with_the_row)
{
    catalog_feature_ref_t refs[1] = {ref("fv:a")};
    catalog_value_t ids[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"x", 1}}};
    core_columns_t ents = drivers(ids, 2);
    core_cell_t cells[2];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 1, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "row 1") != NULL && strstr(err, "INT64") != NULL, "%s", err);
    store_read_end(reader);
}

Test(read_path, refs_are_grouped_by_view_in_order_of_first_appearance)
{
    catalog_feature_ref_t refs[5] = {ref("fv:a"), ref("old:x"), ref("fv:b"), ref("g:total"),
                                     ref("old:x")};
    core_ref_groups_t gs;
    cr_assert_eq(core_group_refs(&arena, refs, 5, &gs), 0);
    cr_assert_eq(gs.n_groups, 3);
    cr_assert_eq(gs.n_refs, 5);
    cr_assert_eq(gs.groups[0].view, refs[0].view);
    cr_assert_eq(gs.groups[1].view, refs[1].view);
    cr_assert_eq(gs.groups[2].view, refs[3].view);
    const uint32_t want_first[3] = {0, 2, 4}, want_n[3] = {2, 2, 1};
    const uint32_t want_idx[5] = {0, 2, 1, 4, 3};
    for (size_t g = 0; g < 3; g++) {
        cr_assert_eq(gs.groups[g].first, want_first[g], "group %zu", g);
        cr_assert_eq(gs.groups[g].n_refs, want_n[g], "group %zu", g);
    }
    for (size_t k = 0; k < 5; k++) {
        cr_assert_eq(gs.ref_idx[k], want_idx[k], "ref %zu", k);
        cr_assert_eq(gs.feature_idx[k], refs[want_idx[k]].feature->index, "ref %zu", k);
    }
    /* old takes driver_id like fv before it; g has no join keys. */
    cr_assert_not(gs.groups[0].same_keys);
    cr_assert(gs.groups[1].same_keys);
    cr_assert_not(gs.groups[2].same_keys);
    cr_assert_eq(gs.n_keys, 2);
    cr_assert_eq(gs.max_keys, 1);
    cr_assert_eq(gs.max_refs, 2);
}

/* GetOnlineFeatures hands over the groups it cached with the list: a read given groups fills
 * the same cells as one that groups for itself, and those cells are the stored values. */
Test(read_path, given_groups_read_the_same_cells)
{
    catalog_feature_ref_t refs[5] = {ref("fv:a"), ref("old:x"), ref("fv:b"), ref("g:total"),
                                     ref("fv:a")};
    catalog_value_t ids[3] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 3}};
    core_columns_t ents = drivers(ids, 3);
    core_ref_groups_t gs;
    cr_assert_eq(core_group_refs(&arena, refs, 5, &gs), 0);
    core_cell_t want[15], got[15];
    memset(want, 0x5a, sizeof want);
    memset(got, 0xa5, sizeof got);
    char err[256] = "";
    int64_t now = store_now_us();
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 5, NULL, &ents, NULL, now, 0, want, err,
                                    sizeof err),
                 0, "%s", err);
    cr_assert_eq(
        core_read_features(reader, &arena, refs, 5, &gs, &ents, NULL, now, 0, got, err, sizeof err),
        0, "%s", err);
    for (size_t i = 0; i < 15; i++) {
        cr_assert_eq(got[i].wire, want[i].wire, "cell %zu", i);
        cr_assert_eq(got[i].len, want[i].len, "cell %zu", i);
        cr_assert_eq(got[i].status, want[i].status, "cell %zu", i);
        cr_assert_eq(got[i].event_ts_us, want[i].event_ts_us, "cell %zu", i);
    }
    cr_assert_eq(decode_i64(&got[0]), 10);
    cr_assert_eq(decode_i64(&got[12]), 10);
    cr_assert_eq(decode_i64(&got[9]), 99);
    store_read_end(reader);
}

/* Views sharing their join keys find the columns once; a missing one is still named with the
 * first view that needs it. */
Test(read_path, a_missing_join_key_shared_by_views_names_the_first_view)
{
    catalog_feature_ref_t refs[3] = {ref("g:total"), ref("old:x"), ref("fv:a")};
    static const char *names[1] = {"customer_id"};
    catalog_value_t ids[1] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1}};
    const catalog_value_t *cols[1] = {ids};
    core_columns_t ents = {.n_cols = 1, .n_rows = 1, .names = names, .cols = cols};
    core_cell_t cells[3];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 3, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 -EINVAL);
    cr_assert_str_eq(err, "missing join key 'driver_id' (needed by feature view 'old@v1')");
    store_read_end(reader);
}

/* Two views with one join key each, but different ones: the second must not take the first's
 * column (the views-share-keys shortcut compares names, not only counts). */
Test(read_path, views_of_different_entities_each_read_their_own_key_column)
{
    catalog_feature_ref_t refs[2] = {ref("fv:a"), ref("cust:y")};
    static const char *names[2] = {"driver_id", "customer_id"};
    catalog_value_t drv[1] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1}};
    catalog_value_t cus[1] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 5}};
    const catalog_value_t *cols[2] = {drv, cus};
    core_columns_t ents = {.n_cols = 2, .n_rows = 1, .names = names, .cols = cols};
    core_cell_t cells[2];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 2, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(cells[0].status, STORE_STATUS_PRESENT);
    cr_assert_eq(decode_i64(&cells[0]), 10);
    cr_assert_eq(cells[1].status, STORE_STATUS_PRESENT, "cust:y was keyed by the wrong column");
    cr_assert_eq(decode_i64(&cells[1]), 50);
    store_read_end(reader);
}

/* A view that shares the previous view's key columns still checks each row's key: a bad value in
 * a later row is named with its row. */
Test(read_path, a_bad_key_in_a_later_row_is_named_when_views_share_keys)
{
    catalog_feature_ref_t refs[2] = {ref("fv:a"), ref("old:x")};
    catalog_value_t ids[3] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2},
                              {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"x", 1}}};
    core_columns_t ents = drivers(ids, 3);
    core_cell_t cells[6];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    cr_assert_eq(core_read_features(reader, &arena, refs, 2, NULL, &ents, NULL, store_now_us(), 0,
                                    cells, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "row 2") != NULL && strstr(err, "fv@v1") != NULL, "%s", err);
    store_read_end(reader);
}

static core_columns_t request_n(const catalog_value_t *ns, size_t n)
{
    static const char *names[1] = {"n"};
    static const catalog_value_t *cols[1];
    cols[0] = ns;
    return (core_columns_t){.n_cols = 1, .n_rows = n, .names = names, .cols = cols};
}

static int64_t cell_i64(const core_cell_t *c, uint8_t status)
{
    cr_assert_eq(c->status, status, "status %u, want %u", c->status, status);
    return status == STORE_STATUS_PRESENT ? decode_i64(c) : 0;
}

Test(read_path, on_demand_features_are_computed_from_cells_of_the_same_read)
{
    /* fv:a is read for the caller too (its column is reused); old:x only for od */
    catalog_feature_ref_t refs[5] = {ref("od:s"), ref("od:c"), ref("od:t"), ref("fv:a"),
                                     ref("od:v")};
    catalog_value_t ids[3] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 3}};
    catalog_value_t ns[3] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 5},
                             {.type = CATALOG_DTYPE_INT32, .u.i32 = 6}, /* widened */
                             {.type = CATALOG_DTYPE_INT64, .u.i64 = 7}};
    core_columns_t ents = drivers(ids, 3);
    core_columns_t req = request_n(ns, 3);
    core_cell_t cells[15];
    memset(cells, 0xa5, sizeof cells);
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    int rc = core_read_features(reader, &arena, refs, 5, NULL, &ents, &req, store_now_us(), 0,
                                cells, err, sizeof err);
    store_read_end(reader);
    cr_assert_eq(rc, 0, "%s", err);
    /* od:s = fv.a + n: present where fv.a is; a row without a: null; no row: NOT_FOUND */
    cr_expect_eq(cell_i64(&cells[0], STORE_STATUS_PRESENT), 15);
    cell_i64(&cells[1], STORE_STATUS_NULL_VALUE);
    cell_i64(&cells[2], STORE_STATUS_NOT_FOUND);
    cr_expect_gt(cells[0].event_ts_us, 0);
    /* od:c handles nulls: present everywhere, even from a stale or missing input */
    for (int r = 0; r < 3; r++)
        cr_expect_eq(cell_i64(&cells[3 + r], STORE_STATUS_PRESENT), -1);
    /* od:t follows its input: past the TTL, missing */
    cell_i64(&cells[6], STORE_STATUS_OUTSIDE_MAX_AGE);
    cell_i64(&cells[7], STORE_STATUS_NOT_FOUND);
    cell_i64(&cells[8], STORE_STATUS_NOT_FOUND);
    /* the stored column the caller asked for is untouched */
    cr_expect_eq(cell_i64(&cells[9], STORE_STATUS_PRESENT), 10);
    /* od:v = 2n with max 10: 10 passes, 12 and 14 break the rule: INVALID, no value */
    cr_expect_eq(cell_i64(&cells[12], STORE_STATUS_PRESENT), 10);
    cell_i64(&cells[13], STORE_STATUS_INVALID);
    cr_expect_eq(cells[13].len, 0);
}

Test(read_path, a_missing_or_mistyped_request_field_fails_before_any_read)
{
    catalog_feature_ref_t refs[1] = {ref("od:s")};
    catalog_value_t ids[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2}};
    core_columns_t ents = drivers(ids, 2);
    core_cell_t cells[2];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);
    int rc = core_read_features(reader, &arena, refs, 1, NULL, &ents, NULL, store_now_us(), 0,
                                cells, err, sizeof err);
    cr_expect_eq(rc, -EINVAL);
    cr_expect(strstr(err, "missing request field 'n' (request source 'rq', needed by on-demand "
                          "feature view 'od@v1')") != NULL,
              "%s", err);
    catalog_value_t bad[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"x", 1}}};
    core_columns_t req = request_n(bad, 2);
    rc = core_read_features(reader, &arena, refs, 1, NULL, &ents, &req, store_now_us(), 0, cells,
                            err, sizeof err);
    cr_expect_eq(rc, -EINVAL);
    cr_expect(strstr(err, "request field 'n', row 1: want INT64, got STRING") != NULL, "%s", err);
    req = request_n(bad, 1);
    rc = core_read_features(reader, &arena, refs, 1, NULL, &ents, &req, store_now_us(), 0, cells,
                            err, sizeof err);
    cr_expect_eq(rc, -EINVAL);
    cr_expect(strstr(err, "request field 'n' has 1 rows; the entities have 2") != NULL, "%s", err);
    store_read_end(reader);
}

Test(read_path, on_demand_details_event_time_needed_inputs_entity_fallback_and_bounds)
{
    /* a list of 100 items for driver 1 */
    static int64_t items[100];
    catalog_value_t l = {.type = CATALOG_DTYPE_INT64_LIST};
    l.u.list.n = 100;
    l.u.list.v.i64 = items;
    put("fv", 1, 2, l, store_now_us());
    catalog_value_t ids[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 1},
                              {.type = CATALOG_DTYPE_INT64, .u.i64 = 2}};
    core_columns_t ents = drivers(ids, 2);
    core_cell_t cells[8];
    char err[256] = "";
    cr_assert_eq(store_read_begin(reader), 0);

    /* The newest input's event time; no request data needed by features that read none. */
    catalog_feature_ref_t r1[3] = {ref("od:both"), ref("fv:a"), ref("old:x")};
    int rc = core_read_features(reader, &arena, r1, 3, NULL, &ents, NULL, store_now_us(), 0, cells,
                                err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    /* old.x is past its TTL: null, so 10 + 0 */
    cr_expect_eq(cell_i64(&cells[0], STORE_STATUS_PRESENT), 10);
    cr_expect_eq(cells[0].event_ts_us, cells[2].event_ts_us, "fv's row is the newer");
    cr_expect_gt(cells[0].event_ts_us, cells[4].event_ts_us);

    /* not_null on a computed null: INVALID */
    catalog_feature_ref_t r2[1] = {ref("od:nn")};
    rc = core_read_features(reader, &arena, r2, 1, NULL, &ents, NULL, store_now_us(), 0, cells, err,
                            sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cell_i64(&cells[0], STORE_STATUS_INVALID); /* past the TTL: null */
    cell_i64(&cells[1], STORE_STATUS_INVALID); /* no row: null */

    /* Request data among the entity columns, as Feast's SDK sends it. */
    static const char *names[2] = {"driver_id", "n"};
    catalog_value_t ns[2] = {{.type = CATALOG_DTYPE_INT64, .u.i64 = 5},
                             {.type = CATALOG_DTYPE_INT64, .u.i64 = 6}};
    const catalog_value_t *cols[2] = {ids, ns};
    core_columns_t with_n = {.n_cols = 2, .n_rows = 2, .names = names, .cols = cols};
    catalog_feature_ref_t r3[1] = {ref("od:s")};
    rc = core_read_features(reader, &arena, r3, 1, NULL, &with_n, NULL, store_now_us(), 0, cells,
                            err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(cell_i64(&cells[0], STORE_STATUS_PRESENT), 15);

    /* A list input is decoded within the bound, or the read fails naming it. */
    catalog_feature_ref_t r4[1] = {ref("od:ln")};
    rc = core_read_features(reader, &arena, r4, 1, NULL, &ents, NULL, store_now_us(), 0, cells, err,
                            sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(cell_i64(&cells[0], STORE_STATUS_PRESENT), 100);
    rc = core_read_features(reader, &arena, r4, 1, NULL, &ents, NULL, store_now_us(), 1024, cells,
                            err, sizeof err);
    cr_expect_eq(rc, -EMSGSIZE);
    cr_expect(strstr(err, "--max-response-bytes") != NULL, "%s", err);
    /* Strings an expression builds count too (driver 2's b is "hi": 4 + 4 bytes built). */
    catalog_feature_ref_t r5[1] = {ref("od:up")};
    rc = core_read_features(reader, &arena, r5, 1, NULL, &ents, NULL, store_now_us(), 0, cells, err,
                            sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_eq(cell_i64(&cells[1], STORE_STATUS_PRESENT), 4);
    rc = core_read_features(reader, &arena, r5, 1, NULL, &ents, NULL, store_now_us(), 6, cells, err,
                            sizeof err);
    cr_expect_eq(rc, -EMSGSIZE, "8 bytes of strings over a bound of 6");
    store_read_end(reader);
}
