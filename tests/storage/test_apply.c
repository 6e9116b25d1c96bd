/* tests/storage/test_apply.c - validation, atomic rejection and bulk loads (storage/apply.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

static char *dir;
static catalog_t *cat;
static store_t *s;
static const catalog_view_t *fv;

static void setup(void)
{
    th_fixture_open(&dir, &cat, &s, &fv);
}

static void teardown(void)
{
    th_fixture_close(dir, cat, s);
}

TestSuite(apply, .init = setup, .fini = teardown);

/* Rows 0..n-1 with ids base+r and conv_rate rates[r]. */
static store_batch_t rates_batch(catalog_value_t *ids, catalog_value_t *vals,
                                 const catalog_value_t **keys, const catalog_value_t **cols,
                                 const uint32_t *idx, size_t n, int64_t base, const float *rates)
{
    for (size_t r = 0; r < n; r++) {
        ids[r] = th_i64(base + (int64_t)r);
        vals[r] = th_f32(rates[r]);
    }
    keys[0] = ids;
    cols[0] = vals;
    return (store_batch_t){
        .view = fv, .n_rows = n, .keys = keys, .n_features = 1, .feature_idx = idx, .values = cols};
}

/* A batch of n rows of fv writing the one feature *idx (keys and vals: one column each). */
static store_batch_t one_feature(size_t n, const catalog_value_t **keys,
                                 const catalog_value_t **vals, uint32_t *idx)
{
    return (store_batch_t){
        .view = fv, .n_rows = n, .keys = keys, .n_features = 1, .feature_idx = idx, .values = vals};
}

Test(apply, an_invalid_row_rejects_every_batch_and_names_batch_row_field_and_rule)
{
    static const uint32_t idx[] = {0};
    const float good[] = {0.1f, 0.2f, 0.3f, 0.4f}, bad[] = {0.5f, 0.6f, 0.7f, 1.5f};
    catalog_value_t ids0[4], ids1[4], v0[4], v1[4];
    const catalog_value_t *k0[1], *k1[1], *c0[1], *c1[1];
    store_batch_t b[2] = {rates_batch(ids0, v0, k0, c0, idx, 4, 100, good),
                          rates_batch(ids1, v1, k1, c1, idx, 4, 200, bad)};
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, b, 2, 0, &res), -EINVAL);
    cr_assert_eq(res.bad_batch, 1);
    cr_assert_eq(res.bad_row, 3);
    cr_assert_str_eq(res.bad_field, "conv_rate");
    cr_assert(strstr(res.error, "max") != NULL, "error: %s", res.error);
    cr_assert_eq(res.written, 0);
    cr_assert_eq(th_rows(s, fv), 0, "nothing of the good batch may be written");
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.batches, 0);
}

Test(apply, an_event_time_more_than_the_skew_ahead_is_refused_and_freezes_nothing)
{
    static const uint32_t idx[] = {0};
    const float rates[] = {0.1f, 0.2f};
    catalog_value_t ids[2], v[2];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 2, 500, rates);
    /* Year 9999 on row 1: accepted, it would make every later write to the row stale. */
    int64_t ts[2] = {store_now_us(), 253402214400ll * 1000000};
    b.event_ts_us = ts;
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL);
    cr_assert_eq(res.bad_row, 1);
    cr_assert_str_eq(res.bad_field, "event_timestamp");
    cr_assert(strstr(res.error, "9999-12-31T00:00:00Z") && strstr(res.error, "86400 s ahead") &&
                  strstr(res.error, "--max-future-skew"),
              "%s", res.error);
    cr_assert_eq(th_rows(s, fv), 0);
    /* Within the bound (an hour ahead: clocks differ) is fine. */
    ts[1] = store_now_us() + 3600ll * 1000000;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), 0, "%s", res.error);
    cr_assert_eq(th_rows(s, fv), 2);
}

Test(apply, the_future_skew_is_a_store_option_and_can_be_turned_off)
{
    static const uint32_t idx[] = {0};
    const float rates[] = {0.1f};
    catalog_value_t ids[1], v[1];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 1, 600, rates);
    int64_t ts[1] = {store_now_us() + 2 * 3600ll * 1000000};
    b.event_ts_us = ts;
    store_close(s);
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE, .max_future_skew_s = 3600};
    cr_assert_eq(store_open(&o, &s), 0);
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL, "two hours is over an hour");
    store_close(s);
    o.max_future_skew_s = -1;
    cr_assert_eq(store_open(&o, &s), 0);
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), 0, "%s", res.error);
}

Test(apply, a_write_checked_for_the_log_takes_the_skew_it_is_given)
{
    /* A replica validates before publishing, with no store (store_wire_begin(NULL, ...)): the
     * node's --max-future-skew, not the default, decides. */
    static const uint32_t idx[] = {0};
    const float rates[] = {0.1f};
    catalog_value_t ids[1], v[1];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 1, 700, rates);
    int64_t ts[1] = {store_now_us() + 2 * 3600ll * 1000000};
    b.event_ts_us = ts;
    store_wire_t *w = NULL;
    store_apply_result_t res;
    cr_assert_eq(store_wire_begin(NULL, 3600, &b, 1, &w, &res), -EINVAL, "two hours, bound 1h");
    cr_assert(strstr(res.error, "3600 s ahead") != NULL, "%s", res.error);
    cr_assert_eq(store_wire_begin(NULL, 0, &b, 1, &w, &res), 0, "%s", res.error);
    store_wire_end(w);
    ts[0] = store_now_us() + 2 * 86400ll * 1000000;
    cr_assert_eq(store_wire_begin(NULL, 0, &b, 1, &w, &res), -EINVAL, "two days, default 1d");
    cr_assert_eq(store_wire_begin(NULL, -1, &b, 1, &w, &res), 0, "%s", res.error);
    store_wire_end(w);
}

Test(apply, rows_written_without_a_log_position_are_recorded_and_a_replicas_are_not)
{
    static const uint32_t idx[] = {0};
    const float rates[] = {0.1f};
    catalog_value_t ids[1], v[1];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 1, 800, rates);
    bool local = true;
    store_apply_result_t res;
    /* A replica's rows: each at its log position. */
    cr_assert_eq(store_apply(s, &b, 1, 1, &res), 0, "%s", res.error);
    cr_assert_eq(store_written_locally(s, &local), 0);
    cr_assert_not(local);
    /* A bulk load with no rows marks nothing either. */
    store_bulk_t *bulk = NULL;
    cr_assert_eq(store_bulk_begin(s, &bulk), 0);
    cr_assert_eq(store_bulk_commit(bulk, &res), 0, "%s", res.error);
    store_bulk_free(bulk);
    cr_assert_eq(store_written_locally(s, &local), 0);
    cr_assert_not(local);
    /* A delete without a position is a local write too. */
    b.op = STORE_OP_DELETE;
    b.n_features = 0;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), 0, "%s", res.error);
    cr_assert_eq(store_written_locally(s, &local), 0);
    cr_assert(local);
}

Test(apply, a_bulk_load_is_recorded_as_written_without_a_log)
{
    static const uint32_t idx[] = {0};
    const float rates[] = {0.1f, 0.2f};
    catalog_value_t ids[2], v[2];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 2, 900, rates);
    store_bulk_t *bulk = NULL;
    store_apply_result_t res;
    cr_assert_eq(store_bulk_begin(s, &bulk), 0);
    cr_assert_eq(store_bulk_add(bulk, &b, 1, &res), 0, "%s", res.error);
    cr_assert_eq(store_bulk_commit(bulk, &res), 0, "%s", res.error);
    store_bulk_free(bulk);
    bool local = false;
    cr_assert_eq(store_written_locally(s, &local), 0);
    cr_assert(local);
}

Test(apply, a_join_key_of_the_wrong_type_is_named)
{
    catalog_value_t key = th_str("1001"), val = th_f32(0.5f);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
    uint32_t idx = 0;
    store_batch_t b = {.view = fv,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = vals};
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL);
    cr_assert_str_eq(res.bad_field, "driver_id");
    cr_assert(strstr(res.error, "STRING") != NULL, "error: %s", res.error);
}

Test(apply, a_value_of_the_wrong_dtype_is_refused_with_the_catalog_rule)
{
    store_apply_result_t res;
    catalog_value_t key = th_i64(1), val = th_str("fast");
    const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
    uint32_t idx = 1; /* trips INT64 */
    store_batch_t b = {.view = fv,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = vals};
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL);
    cr_assert_str_eq(res.bad_field, "trips");
    cr_assert_neq(res.error[0], '\0');
}

Test(apply, int32_values_are_widened_for_int64_features)
{
    catalog_value_t v32 = {.type = CATALOG_DTYPE_INT32, .u.i32 = -12};
    cr_assert_eq(th_put(s, fv, 1, 1, v32, 1000), 0);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 1, 1, 1000, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.type, CATALOG_DTYPE_INT64);
    cr_assert_eq(out.u.i64, -12);

    const int32_t items[] = {1, 2, 3};
    catalog_value_t l32 = {.type = CATALOG_DTYPE_INT32_LIST, .u.list = {3, {.i32 = items}}};
    cr_assert_eq(th_put(s, fv, 2, 3, l32, 1000), 0);
    cr_assert_eq(th_get(s, fv, 2, 3, 1000, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.type, CATALOG_DTYPE_INT64_LIST);
    cr_assert_eq(out.u.list.n, 3);
    cr_assert_eq(out.u.list.v.i64[2], 3);
}

Test(apply, a_feature_listed_twice_in_one_batch_is_einval)
{
    catalog_value_t key = th_i64(1), a = th_f32(0.1f), b2 = th_f32(0.2f);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&a, &b2};
    uint32_t idx[] = {0, 0};
    store_batch_t b = {
        .view = fv, .n_rows = 1, .keys = keys, .n_features = 2, .feature_idx = idx, .values = vals};
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -EINVAL);
    cr_assert_str_eq(res.bad_field, "conv_rate");
}

Test(apply, a_view_without_a_database_is_enoent)
{
    catalog_t *other = th_catalog("project: p\n"
                                  "entities: [{name: driver, join_keys: [{name: driver_id, type: "
                                  "INT64}]}]\n"
                                  "feature_views:\n"
                                  "  - {name: nope, version: 1, entities: [driver], features: "
                                  "[{name: f, dtype: INT64}]}\n");
    const catalog_view_t *v = th_view(other, "nope", 1);
    catalog_value_t key = th_i64(1), val = th_i64(1);
    const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
    uint32_t idx = 0;
    store_batch_t b = {
        .view = v, .n_rows = 1, .keys = keys, .n_features = 1, .feature_idx = &idx, .values = vals};
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &b, 1, 0, &res), -ENOENT);
    cr_assert(strstr(res.error, "nope@v1") != NULL, "error: %s", res.error);
    catalog_unref(other);
}

Test(apply, a_read_only_store_refuses_writes_with_erofs)
{
    store_options_t o = {.dir = dir, .read_only = true};
    store_t *ro = NULL;
    /* LMDB allows a second environment handle only in another process; close ours first. */
    store_close(s);
    s = NULL;
    cr_assert_eq(store_open(&o, &ro), 0);
    cr_assert_eq(th_put(ro, fv, 1, 0, th_f32(0.5f), 1), -EROFS);
    store_close(ro);
}

Test(apply, bulk_loads_sort_merge_duplicates_and_keep_last_write_wins)
{
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    /* Unsorted ids with repeats: id 5 gets an old event after a new one (stale), id 7 two
     * partial writes that merge. */
    const int64_t ids[] = {9, 5, 7, 5, 1, 7};
    const int64_t ts[] = {10, 20, 10, 15, 10, 10};
    const uint32_t feats[] = {0, 0, 0, 0, 0, 1};
    for (size_t i = 0; i < 6; i++) {
        catalog_value_t key = th_i64(ids[i]);
        catalog_value_t val = feats[i] == 0 ? th_f32(0.1f * (float)(i + 1)) : th_i64(77);
        const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
        store_batch_t batch = {.view = fv,
                               .n_rows = 1,
                               .keys = keys,
                               .n_features = 1,
                               .feature_idx = &feats[i],
                               .values = vals,
                               .event_ts_us = &ts[i]};
        store_apply_result_t res;
        cr_assert_eq(store_bulk_add(b, &batch, 1, &res), 0, "%s", res.error);
    }
    cr_assert_eq(store_bulk_rows(b), 6);
    store_apply_result_t res;
    cr_assert_eq(store_bulk_commit(b, &res), 0);
    cr_assert_eq(res.written, 5);
    cr_assert_eq(res.stale, 1);
    store_bulk_free(b);
    cr_assert_eq(th_rows(s, fv), 4);
    catalog_value_t out;
    int64_t t;
    cr_assert_eq(th_get(s, fv, 5, 0, 20, &out, &t), STORE_STATUS_PRESENT);
    cr_assert_float_eq(out.u.f32, 0.2f, 1e-6);
    cr_assert_eq(t, 20);
    cr_assert_eq(th_get(s, fv, 7, 0, 20, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_float_eq(out.u.f32, 0.3f, 1e-6);
    cr_assert_eq(th_get(s, fv, 7, 1, 20, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 77);
}

Test(apply, a_bulk_tie_on_event_time_goes_to_the_later_row)
{
    /* Three rows of one key at one event time, in one bulk and across two adds: the last in
     * input order wins, none is stale (as store_apply() does). */
    for (int split = 0; split < 2; split++) {
        store_bulk_t *b = NULL;
        cr_assert_eq(store_bulk_begin(s, &b), 0);
        const float rates[] = {0.1f, 0.5f, 0.9f};
        const int64_t ts[] = {500, 500, 500};
        uint32_t idx = 0;
        store_apply_result_t res;
        size_t done = 0;
        const size_t parts[2][2] = {{3, 0}, {1, 2}};
        for (int part = 0; part < 2; part++) {
            size_t n = parts[split][part];
            if (n == 0)
                continue;
            catalog_value_t keyv[3], valv[3];
            for (size_t r = 0; r < n; r++) {
                keyv[r] = th_i64(40 + split);
                valv[r] = th_f32(rates[done + r]);
            }
            const catalog_value_t *keys[] = {keyv}, *vals[] = {valv};
            store_batch_t batch = {.view = fv,
                                   .n_rows = n,
                                   .keys = keys,
                                   .n_features = 1,
                                   .feature_idx = &idx,
                                   .values = vals,
                                   .event_ts_us = &ts[done]};
            cr_assert_eq(store_bulk_add(b, &batch, 1, &res), 0);
            done += n;
        }
        cr_assert_eq(store_bulk_commit(b, &res), 0);
        store_bulk_free(b);
        cr_assert_eq(res.stale, 0, "split %d", split);
        catalog_value_t out;
        cr_assert_eq(th_get(s, fv, 40 + split, 0, 600, &out, NULL), STORE_STATUS_PRESENT);
        cr_assert_float_eq(out.u.f32, 0.9f, 1e-6, "split %d: the later row wins a tie", split);
    }
}

Test(apply, a_bulk_load_into_a_populated_view_merges_like_store_apply)
{
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(5), 100), 0);
    cr_assert_eq(th_put(s, fv, 2, 0, th_f32(0.9f), 300), 0);
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    catalog_value_t keys0[] = {th_i64(1), th_i64(2), th_i64(3)};
    catalog_value_t vals0[] = {th_f32(0.1f), th_f32(0.2f), th_f32(0.3f)};
    const catalog_value_t *keys[] = {keys0}, *vals[] = {vals0};
    const int64_t ts[] = {200, 200, 200};
    uint32_t idx = 0;
    store_batch_t batch = {.view = fv,
                           .n_rows = 3,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = vals,
                           .event_ts_us = ts};
    store_apply_result_t res;
    cr_assert_eq(store_bulk_add(b, &batch, 1, &res), 0);
    cr_assert_eq(store_bulk_commit(b, &res), 0);
    store_bulk_free(b);
    cr_assert_eq(res.written, 2);
    cr_assert_eq(res.stale, 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 1, 1, 200, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 5, "the bulk row must merge, not replace");
    cr_assert_eq(th_get(s, fv, 2, 0, 300, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_float_eq(out.u.f32, 0.9f, 1e-6);
}

Test(apply, a_bad_bulk_batch_adds_nothing_and_keeps_earlier_ones)
{
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    cr_assert_eq(th_rows(s, fv), 0);
    catalog_value_t keys0[] = {th_i64(1), th_i64(2)};
    catalog_value_t vals0[] = {th_f32(0.1f), th_f32(7.0f)};
    const catalog_value_t *keys[] = {keys0}, *vals[] = {vals0};
    uint32_t idx = 0;
    store_batch_t batch = one_feature(2, keys, vals, &idx);
    store_apply_result_t res;
    cr_assert_eq(store_bulk_add(b, &batch, 1, &res), -EINVAL);
    cr_assert_eq(res.bad_row, 1);
    cr_assert_eq(store_bulk_rows(b), 0);
    batch.n_rows = 1;
    cr_assert_eq(store_bulk_add(b, &batch, 1, &res), 0);
    cr_assert_eq(store_bulk_rows(b), 1);
    store_bulk_free(b); /* never committed: nothing written */
    cr_assert_eq(th_rows(s, fv), 0);
}

Test(apply, checked_bulk_rows_still_have_their_types_keys_and_views_checked)
{
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    catalog_value_t keys0[] = {th_i64(1), th_i64(2)};
    catalog_value_t vals0[] = {th_f32(0.1f), th_str("not a FLOAT")};
    const catalog_value_t *keys[] = {keys0}, *vals[] = {vals0};
    uint32_t idx = 0;
    store_batch_t batch = one_feature(2, keys, vals, &idx);
    store_apply_result_t res;
    cr_assert_eq(store_bulk_add_checked(b, &batch, 1, &res), -EINVAL);
    cr_assert_eq(res.bad_row, 1);
    cr_assert_str_eq(res.bad_field, "conv_rate");
    cr_assert(strstr(res.error, "dtype") != NULL, "%s", res.error);
    keys0[1] = th_str("not an INT64 key");
    vals0[1] = th_f32(0.2f);
    cr_assert_eq(store_bulk_add_checked(b, &batch, 1, &res), -EINVAL);
    cr_assert_str_eq(res.bad_field, "driver_id");
    keys0[1] = th_i64(2);
    idx = 99;
    cr_assert_eq(store_bulk_add_checked(b, &batch, 1, &res), -EINVAL, "feature index");
    idx = 0;
    cr_assert_eq(store_bulk_rows(b), 0);
    cr_assert_eq(store_bulk_add_checked(b, &batch, 1, &res), 0, "%s", res.error);
    store_apply_result_t done;
    cr_assert_eq(store_bulk_commit(b, &done), 0);
    cr_assert_eq(done.written, 2);
    store_bulk_free(b);
    catalog_value_t got;
    cr_assert_eq(th_get(s, fv, 2, 0, store_now_us(), &got, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(got.u.f32, 0.2f);
}

Test(apply, unchecked_paths_keep_running_the_catalog_rules)
{
    /* conv_rate is in [0, 1]: 7 breaks the rule on every path that did not vouch for it. */
    catalog_value_t keys0[] = {th_i64(1)}, vals0[] = {th_f32(7.0f)};
    const catalog_value_t *keys[] = {keys0}, *vals[] = {vals0};
    uint32_t idx = 0;
    store_batch_t batch = one_feature(1, keys, vals, &idx);
    store_apply_result_t res;
    cr_assert_eq(store_apply(s, &batch, 1, 0, &res), -EINVAL);
    cr_assert(strstr(res.error, "max") != NULL, "%s", res.error);
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    cr_assert_eq(store_bulk_add(b, &batch, 1, &res), -EINVAL);
    cr_assert(strstr(res.error, "max") != NULL, "%s", res.error);
    store_bulk_free(b);
    cr_assert_eq(th_rows(s, fv), 0);
}

#ifndef NDEBUG
/* A caller that breaks store_bulk_add_checked()'s promise is caught in debug builds (this
 * suite's), rather than storing a value the catalog forbids. */
Test(apply, a_broken_checked_promise_is_caught_in_debug_builds)
{
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    catalog_value_t keys0[] = {th_i64(1)}, vals0[] = {th_f32(7.0f)};
    const catalog_value_t *keys[] = {keys0}, *vals[] = {vals0};
    uint32_t idx = 0;
    store_batch_t batch = one_feature(1, keys, vals, &idx);
    store_apply_result_t res;
    cr_assert_eq(store_bulk_add_checked(b, &batch, 1, &res), -EINVAL);
    cr_assert(strstr(res.error, "store_bulk_add_checked") != NULL, "%s", res.error);
    cr_assert_eq(store_bulk_rows(b), 0);
    store_bulk_free(b);
}
#endif

/* One add of n rows: ids base + r * step, conv_rate 0.5, event time ts. */
static int add_rows(store_bulk_t *b, int64_t base, int64_t step, size_t n, int64_t ts,
                    store_apply_result_t *res)
{
    static catalog_value_t ids[1000], vals[1000];
    static int64_t tss[1000];
    cr_assert_leq(n, 1000);
    for (size_t r = 0; r < n; r++) {
        ids[r] = th_i64(base + (int64_t)r * step);
        vals[r] = th_f32(0.5f);
        tss[r] = ts;
    }
    const catalog_value_t *keys[] = {ids}, *cols[] = {vals};
    uint32_t idx = 0;
    store_batch_t batch = {.view = fv,
                           .n_rows = n,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = cols,
                           .event_ts_us = tss};
    return store_bulk_add(b, &batch, 1, res);
}

Test(apply, a_bulk_streamed_in_many_adds_then_freed_leaves_the_store_exactly_as_before)
{
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(5), 100), 0);
    store_stats_t st0;
    cr_assert_eq(store_stat(s, &st0), 0);
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    store_apply_result_t res;
    /* Forty adds, streamed into the open transaction one by one; entity 1 gets a newer row. */
    for (int i = 0; i < 40; i++)
        cr_assert_eq(add_rows(b, i * 500, 1, 500, 200, &res), 0, "%s", res.error);
    cr_assert_eq(store_bulk_rows(b), 20000);
    /* A reader meanwhile sees nothing of it. */
    cr_assert_eq(th_rows(s, fv), 1);
    store_bulk_free(b); /* a late bad row: the caller gives up */
    cr_assert_eq(th_rows(s, fv), 1);
    catalog_value_t out;
    int64_t t;
    cr_assert_eq(th_get(s, fv, 1, 1, 200, &out, &t), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 5);
    cr_assert_eq(t, 100);
    cr_assert_eq(th_get(s, fv, 1, 0, 200, &out, NULL), STORE_STATUS_NULL_VALUE);
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.commits, st0.commits, "an aborted bulk must not commit");
    /* The writer is free again. */
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(6), 100), 0);
    cr_assert_eq(th_rows(s, fv), 2);
}

Test(apply, a_bulk_appends_keys_past_the_stored_ones_and_merges_the_others_in_input_order)
{
    cr_assert_eq(th_put(s, fv, 10, 1, th_i64(1), 100), 0);
    cr_assert_eq(th_put(s, fv, 20, 1, th_i64(2), 100), 0);
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    store_apply_result_t res;
    /* 0, 5, ..., 45: 10 and 20 merge with what is stored, 25.. are appended. */
    cr_assert_eq(add_rows(b, 0, 5, 10, 200, &res), 0, "%s", res.error);
    /* A later add going back below the tail (12, 22, 32: 32 lands between appended keys), and
     * one rewriting 45 with an older event (stale) and 50 past the tail. */
    cr_assert_eq(add_rows(b, 12, 10, 3, 200, &res), 0, "%s", res.error);
    cr_assert_eq(add_rows(b, 45, 5, 2, 150, &res), 0, "%s", res.error);
    cr_assert_eq(store_bulk_commit(b, &res), 0, "%s", res.error);
    store_bulk_free(b);
    cr_assert_eq(res.written, 14);
    cr_assert_eq(res.stale, 1);
    cr_assert_eq(th_rows(s, fv), 14);
    catalog_value_t out;
    int64_t t;
    cr_assert_eq(th_get(s, fv, 20, 1, 200, &out, &t), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 2, "the bulk row must merge, not replace");
    cr_assert_eq(t, 200);
    cr_assert_eq(th_get(s, fv, 20, 0, 200, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(th_get(s, fv, 32, 0, 200, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(th_get(s, fv, 45, 0, 200, &out, &t), STORE_STATUS_PRESENT);
    cr_assert_eq(t, 200, "the older row for 45 is stale");
    cr_assert_eq(th_get(s, fv, 50, 0, 200, &out, &t), STORE_STATUS_PRESENT);
    cr_assert_eq(t, 150);
}

/* Strings before numbers in slot order: a string's room must not eat the room reserved for the
 * numbers after it in the same row. The arena starts with exactly the room a row reserves
 * (STORE_MAX_KEY + 24 per value), so ASan sees any write past it. */
Test(apply, a_string_before_many_numbers_in_a_row_does_not_take_their_room)
{
    static const char yaml[] = "project: p\n"
                               "entities:\n"
                               "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                               "feature_views:\n"
                               "  - name: w\n"
                               "    entities: [driver]\n"
                               "    features:\n"
                               "      - {name: s, dtype: STRING}\n"
                               "      - {name: n1, dtype: INT64}\n"
                               "      - {name: n2, dtype: INT64}\n"
                               "      - {name: n3, dtype: INT64}\n"
                               "      - {name: n4, dtype: INT64}\n"
                               "      - {name: n5, dtype: INT64}\n"
                               "      - {name: n6, dtype: INT64}\n";
    catalog_t *c2 = th_catalog(yaml);
    char *dir2 = th_tmpdir();
    store_t *s2 = th_open_applied(dir2, c2);
    const catalog_view_t *w = th_view(c2, "w", 1);
    static char text[601];
    memset(text, 's', 600);
    catalog_value_t id = th_i64(7), str = th_str(text);
    catalog_value_t num = th_i64(INT64_MIN); /* a ten-byte varint: the largest fixed value */
    const catalog_value_t *keys[] = {&id};
    const catalog_value_t *vals[] = {&str, &num, &num, &num, &num, &num, &num};
    const uint32_t idx[] = {0, 1, 2, 3, 4, 5, 6};
    store_batch_t batch = {
        .view = w, .n_rows = 1, .keys = keys, .n_features = 7, .feature_idx = idx, .values = vals};
    store__enc_t enc = {0};
    enc.arena.cap = STORE_MAX_KEY + 7 * 24;
    enc.arena.data = malloc(enc.arena.cap);
    cr_assert_not_null(enc.arena.data);
    store_apply_result_t res;
    cr_assert_eq(store__encode(s2, s2->max_future_skew_us, &batch, 1, false, &enc, &res), 0, "%s",
                 res.error);
    cr_assert_eq(enc.n_rows, 1);
    cr_assert_eq(enc.rows[0].n_vals, 7);
    cr_assert_leq(enc.arena.len, enc.arena.cap);
    store__enc_free(&enc);
    store_close(s2);
    catalog_unref(c2);
    th_rmrf(dir2);
    free(dir2);
}

Test(apply, a_bulk_fold_keeps_deletes_as_tombstones_that_older_rows_cannot_undo)
{
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    /* id 4: upsert 100, delete 200, upsert 150 (stale): deleted. id 6: delete 50, upsert 60:
     * back. id 8: a delete alone (a tombstone, no row). */
    const int64_t ids[] = {4, 4, 4, 6, 6, 8};
    const int64_t ts[] = {100, 200, 150, 50, 60, 10};
    const bool del[] = {false, true, false, true, false, true};
    uint32_t idx = 1;
    for (size_t i = 0; i < 6; i++) {
        catalog_value_t key = th_i64(ids[i]), val = th_i64((int64_t)i);
        const catalog_value_t *keys[] = {&key}, *vals[] = {&val};
        store_batch_t batch = {.view = fv,
                               .op = del[i] ? STORE_OP_DELETE : STORE_OP_UPSERT,
                               .n_rows = 1,
                               .keys = keys,
                               .n_features = 1,
                               .feature_idx = &idx,
                               .values = vals,
                               .event_ts_us = &ts[i]};
        cr_assert_eq(store_bulk_add(b, &batch, 1, NULL), 0);
    }
    store_apply_result_t res;
    cr_assert_eq(store_bulk_commit(b, &res), 0);
    store_bulk_free(b);
    cr_assert_eq(res.stale, 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 4, 1, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, fv, 6, 1, 0, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 4);
    cr_assert_eq(th_rows(s, fv), 1);
    /* The folded tombstone of id 4 still holds its event time against a later, older upsert. */
    cr_assert_eq(th_put(s, fv, 4, 1, th_i64(9), 199), 0);
    cr_assert_eq(th_get(s, fv, 4, 1, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
}

/* Wire batches ----------------------------------------------------------------------------- */

typedef struct digest_list {
    uint64_t hash[8];
    size_t rows[8], tombs[8], n;
} digest_list_t;

static int collect_digest(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows,
                          size_t tombstones)
{
    (void)v;
    digest_list_t *d = arg;
    cr_assert_lt(d->n, 8);
    d->hash[d->n] = hash;
    d->rows[d->n] = rows;
    d->tombs[d->n++] = tombstones;
    return 0;
}

static digest_list_t digest_of(store_t *st)
{
    digest_list_t d = {0};
    cr_assert_eq(store_digest(st, collect_digest, &d), 0);
    return d;
}

static void assert_same_digest(store_t *a, store_t *b)
{
    digest_list_t x = digest_of(a), y = digest_of(b);
    cr_assert_eq(x.n, y.n);
    for (size_t i = 0; i < x.n; i++) {
        cr_assert_eq(x.hash[i], y.hash[i], "view %zu differs", i);
        cr_assert_eq(x.rows[i], y.rows[i]);
        cr_assert_eq(x.tombs[i], y.tombs[i]);
    }
}

/* Three rows of four features (a string, a list and a null among them) without event times
 * (the wire form must fix "now"), then a delete of one of them. */
typedef struct mixed {
    catalog_value_t ids[3], rate[3], trips[3], label[3], hist[3];
    int64_t h0[2], h1[1];
    const catalog_value_t *keys[1], *cols[4];
    uint32_t idx[4];
    int64_t del_ts;
    store_batch_t b[2];
} mixed_t;

static void mixed_batches(mixed_t *m)
{
    memset(m, 0, sizeof *m);
    for (int r = 0; r < 3; r++) {
        m->ids[r] = th_i64(10 + r);
        m->rate[r] = th_f32(0.25f * (float)r);
        m->trips[r] = r == 1 ? th_null() : th_i64(100 + r);
        m->label[r] = th_str(r == 2 ? "a longer label for the third row" : "x");
    }
    m->h0[0] = 1;
    m->h0[1] = 2;
    m->h1[0] = 3;
    m->hist[0] = (catalog_value_t){.type = CATALOG_DTYPE_INT64_LIST, .u.list = {.n = 2}};
    m->hist[0].u.list.v.i64 = m->h0;
    m->hist[1] = (catalog_value_t){.type = CATALOG_DTYPE_INT64_LIST, .u.list = {.n = 1}};
    m->hist[1].u.list.v.i64 = m->h1;
    m->hist[2] = th_null();
    m->keys[0] = m->ids;
    /* Given out of slot order: the wire form lists them as encoded. */
    m->cols[0] = m->hist;
    m->cols[1] = m->label;
    m->cols[2] = m->rate;
    m->cols[3] = m->trips;
    m->idx[0] = 3;
    m->idx[1] = 2;
    m->idx[2] = 0;
    m->idx[3] = 1;
    m->del_ts = store_now_us() + 1000000;
    m->b[0] = (store_batch_t){.view = fv,
                              .n_rows = 3,
                              .keys = m->keys,
                              .n_features = 4,
                              .feature_idx = m->idx,
                              .values = m->cols};
    m->b[1] = (store_batch_t){
        .view = fv, .op = STORE_OP_DELETE, .n_rows = 1, .keys = m->keys, .event_ts_us = &m->del_ts};
}

typedef struct wire_done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    store_apply_result_t res;
} wire_done_t;

static void on_wire_done(void *arg, int rc, const store_apply_result_t *res)
{
    wire_done_t *d = arg;
    pthread_mutex_lock(&d->mu);
    d->rc = rc;
    d->res = *res;
    d->done = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static int apply_wire(store_t *st, const store_wire_t *w, uint64_t pos, store_apply_result_t *res)
{
    wire_done_t d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int rc = store_apply_wire_async(st, w->batches, w->n_batches, pos, res, on_wire_done, &d);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&d.mu);
    while (!d.done)
        pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    if (res != NULL)
        *res = d.res;
    return d.rc;
}

Test(apply, the_wire_form_applied_elsewhere_makes_the_same_content)
{
    mixed_t m;
    mixed_batches(&m);
    store_wire_t *w = NULL;
    store_apply_result_t res;
    cr_assert_eq(store_wire_begin(s, 0, m.b, 2, &w, &res), 0, "%s", res.error);
    cr_assert_eq(w->n_batches, 2);
    cr_assert_eq(w->batches[0].n_rows, 3);
    cr_assert_eq(w->batches[0].n_features, 4);
    cr_assert_eq(w->batches[1].op, STORE_OP_DELETE);
    cr_assert_eq(w->batches[1].n_features, 0);
    int64_t now = store_now_us();
    for (int r = 0; r < 3; r++)
        cr_assert(w->batches[0].event_ts_us[r] > 0 && w->batches[0].event_ts_us[r] <= now,
                  "\"now\" is fixed once, in the wire form");
    /* A wire batch names its features by index; with a store they come in slot order. */
    cr_assert_eq(w->batches[0].feature_idx[0], 0);
    cr_assert_eq(w->batches[0].feature_idx[3], 3);
    cr_assert_eq(th_rows(s, fv), 0, "store_wire_begin writes nothing");

    /* Without a store: the same checks and the same bytes. */
    store_wire_t *w2 = NULL;
    cr_assert_eq(store_wire_begin(NULL, 0, m.b, 2, &w2, &res), 0, "%s", res.error);
    for (size_t r = 0; r < 3; r++) {
        cr_assert_eq(w2->batches[0].key_lens[r], w->batches[0].key_lens[r]);
        cr_assert_eq(
            memcmp(w2->batches[0].keys[r], w->batches[0].keys[r], w->batches[0].key_lens[r]), 0);
        for (size_t j = 0; j < 4; j++) {
            size_t x = r * 4 + j;
            cr_assert_eq(w2->batches[0].feature_idx[j], w->batches[0].feature_idx[j]);
            cr_assert_eq(w2->batches[0].value_lens[x], w->batches[0].value_lens[x]);
            cr_assert_eq(memcmp(w2->batches[0].values[x], w->batches[0].values[x],
                                w->batches[0].value_lens[x]),
                         0);
        }
    }
    store_wire_end(w2);

    /* Apply the wire form here and in a second store; apply the same rows with store_apply()
     * (the same event times) in a third: all three hold the same content. */
    cr_assert_eq(apply_wire(s, w, 1, &res), 0);
    cr_assert_eq(res.written, 4, "three rows, then a delete of one");
    char *d2 = th_tmpdir(), *d3 = th_tmpdir();
    store_t *s2 = th_open_applied(d2, cat), *s3 = th_open_applied(d3, cat);
    cr_assert_eq(apply_wire(s2, w, 1, NULL), 0);
    int64_t ts[3] = {w->batches[0].event_ts_us[0], w->batches[0].event_ts_us[1],
                     w->batches[0].event_ts_us[2]};
    m.b[0].event_ts_us = ts;
    cr_assert_eq(store_apply(s3, m.b, 2, 1, NULL), 0);
    assert_same_digest(s, s2);
    assert_same_digest(s, s3);
    digest_list_t d = digest_of(s);
    cr_assert_eq(d.rows[0], 2);
    cr_assert_eq(d.tombs[0], 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s2, fv, 12, 1, 0, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 102);
    cr_assert_eq(th_get(s2, fv, 11, 1, 0, &out, NULL), STORE_STATUS_NULL_VALUE);
    cr_assert_eq(th_get(s2, fv, 10, 0, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(s2, &pos), 0);
    cr_assert_eq(pos, 1);
    cr_assert_eq(apply_wire(s2, w, 1, NULL), -EALREADY, "a replayed position applies nothing");

    /* One differing value makes a different digest. */
    cr_assert_eq(th_put(s3, fv, 11, 0, th_f32(0.5f), store_now_us()), 0);
    digest_list_t x = digest_of(s), y = digest_of(s3);
    cr_assert_neq(x.hash[0], y.hash[0]);
    cr_assert_eq(x.hash[1], y.hash[1], "other views are untouched");

    store_wire_end(w);
    store_close(s2);
    store_close(s3);
    th_rmrf(d2);
    th_rmrf(d3);
    free(d2);
    free(d3);
}

Test(apply, store_wire_begin_refuses_what_store_apply_refuses_with_the_same_error)
{
    static const uint32_t idx[] = {0};
    const float bad[] = {0.5f, 1.5f};
    catalog_value_t ids[2], v[2];
    const catalog_value_t *k[1], *c[1];
    store_batch_t b = rates_batch(ids, v, k, c, idx, 2, 1, bad);
    store_wire_t *w = NULL;
    store_apply_result_t a, x;
    cr_assert_eq(store_wire_begin(s, 0, &b, 1, &w, &a), -EINVAL);
    cr_assert_null(w);
    cr_assert_eq(store_wire_begin(NULL, 0, &b, 1, &w, &a), -EINVAL);
    cr_assert_eq(store_apply(s, &b, 1, 0, &x), -EINVAL);
    cr_assert_eq(a.bad_row, x.bad_row);
    cr_assert_str_eq(a.bad_field, x.bad_field);
    cr_assert_str_eq(a.error, x.error);
}

Test(apply, a_malformed_wire_batch_is_refused_whole)
{
    mixed_t m;
    mixed_batches(&m);
    store_wire_t *w = NULL;
    cr_assert_eq(store_wire_begin(s, 0, m.b, 1, &w, NULL), 0);
    store_wire_batch_t bad = w->batches[0];
    uint32_t lens[3] = {0, 9, 9};
    bad.key_lens = lens;
    store_apply_result_t res;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert_eq(res.bad_row, 0);
    bad = w->batches[0];
    uint32_t fidx[4] = {0, 1, 2, 99};
    bad.feature_idx = fidx;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert(strstr(res.error, "out of range") != NULL, "%s", res.error);
    bad = w->batches[0];
    uint32_t vl[12];
    memcpy(vl, bad.value_lens, sizeof vl);
    vl[5] = STORE_MAX_VALUE + 1;
    bad.value_lens = vl;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert_eq(res.bad_row, 1);
    cr_assert_eq(th_rows(s, fv), 0);
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 0, "a refused message records no position");
    store_wire_end(w);
}

/* What a wire batch can get wrong besides its lengths: no view, a view without a database here,
 * an op the view cannot take, a feature listed twice. Each is refused whole, naming the batch,
 * before anything of any batch of the message is written. */
Test(apply, a_wire_batch_with_a_wrong_view_op_or_feature_is_refused_naming_it)
{
    mixed_t m;
    mixed_batches(&m);
    store_wire_t *w = NULL;
    cr_assert_eq(store_wire_begin(s, 0, m.b, 1, &w, NULL), 0);
    store_apply_result_t res;
    store_wire_batch_t bad = w->batches[0];
    bad.view = NULL;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert_str_eq(res.error, "batch has no view");
    /* A view version of another catalog, never applied here. */
    catalog_t *other = th_catalog("project: p\n"
                                  "entities: [{name: driver, join_keys: [{name: driver_id, "
                                  "type: INT64}]}]\n"
                                  "feature_views:\n"
                                  "  - name: elsewhere\n"
                                  "    entities: [driver]\n"
                                  "    features: [{name: trips, dtype: INT64}]\n");
    bad = w->batches[0];
    bad.view = th_view(other, "elsewhere", 1);
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -ENOENT);
    cr_assert_str_eq(res.error,
                     "feature view elsewhere@v1 has no database here (not applied, or offline)");
    /* History-only rows for a view that keeps none. */
    bad = w->batches[0];
    bad.op = STORE_OP_HISTORY;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert(strstr(res.error, "keeps no offline history") != NULL, "%s", res.error);
    bad.op = (store_op_t)7;
    cr_assert_eq(store_apply_wire_async(s, &bad, 1, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert_str_eq(res.error, "unknown op 7");
    /* The same feature twice, in the second batch of a message: the first is not written. */
    store_wire_batch_t pair[2] = {w->batches[0], w->batches[0]};
    cr_assert_geq(pair[1].n_features, 2);
    cr_assert_leq(pair[1].n_features, 8);
    uint32_t twice[8];
    memcpy(twice, pair[1].feature_idx, pair[1].n_features * sizeof *twice);
    twice[1] = twice[0];
    pair[1].feature_idx = twice;
    memset(&res, 0, sizeof res);
    cr_assert_eq(store_apply_wire_async(s, pair, 2, 1, &res, on_wire_done, NULL), -EINVAL);
    cr_assert_str_eq(res.error, "feature listed twice in one batch");
    cr_assert_eq(res.bad_batch, 1);
    /* Nothing of any of them was written, and no position recorded. */
    cr_assert_eq(th_rows(s, fv), 0);
    uint64_t pos = 7;
    cr_assert_eq(store_last_position(s, &pos), 0);
    cr_assert_eq(pos, 0);
    store_wire_end(w);
    catalog_unref(other);
}

/* A bulk load into a view that keeps history: history-only rows (alone for their key, or among
 * its other rows), a tie between a delete and a later upsert of the same time (the delete
 * stays), and rows older than the key's latest (stale) fold as store_apply() applies them. */
Test(apply, a_bulk_fold_with_history_rows_deletes_and_ties_keeps_last_write_wins)
{
    catalog_t *hc = th_catalog("project: p\n"
                               "entities: [{name: driver, join_keys: [{name: driver_id, "
                               "type: INT64}]}]\n"
                               "feature_views:\n"
                               "  - name: h\n"
                               "    entities: [driver]\n"
                               "    offline: {retention: 0}\n"
                               "    features: [{name: x, dtype: INT64}]\n");
    const catalog_view_t *hv = th_view(hc, "h", 1);
    char *hdir = th_tmpdir();
    store_t *hs = th_open_history_applied(hdir, hc);
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(hs, &b), 0);
    /* id 1: a history-only row alone. id 2: upsert 10 @100, history 11 @90, delete @120,
     * upsert 12 @120 (a tie after a delete: stale), upsert 13 @110 (older: stale).
     * id 3: upsert 30 @100, history 31 @200, upsert 32 @150. */
    const int64_t ids[] = {1, 2, 2, 2, 2, 2, 3, 3, 3};
    const int64_t ts[] = {50, 100, 90, 120, 120, 110, 100, 200, 150};
    const store_op_t ops[] = {STORE_OP_HISTORY, STORE_OP_UPSERT,  STORE_OP_HISTORY,
                              STORE_OP_DELETE,  STORE_OP_UPSERT,  STORE_OP_UPSERT,
                              STORE_OP_UPSERT,  STORE_OP_HISTORY, STORE_OP_UPSERT};
    const int64_t vals[] = {1, 10, 11, 0, 12, 13, 30, 31, 32};
    uint32_t idx = 0;
    for (size_t i = 0; i < 9; i++) {
        catalog_value_t key = th_i64(ids[i]), val = th_i64(vals[i]);
        const catalog_value_t *keys[] = {&key}, *vs[] = {&val};
        store_batch_t batch = {.view = hv,
                               .op = ops[i],
                               .n_rows = 1,
                               .keys = keys,
                               .n_features = 1,
                               .feature_idx = &idx,
                               .values = vs,
                               .event_ts_us = &ts[i]};
        cr_assert_eq(store_bulk_add(b, &batch, 1, NULL), 0);
    }
    store_apply_result_t res;
    cr_assert_eq(store_bulk_commit(b, &res), 0);
    store_bulk_free(b);
    cr_assert_eq(res.stale, 2, "id 2's tie after its delete and its older upsert");
    catalog_value_t out;
    int64_t when = 0;
    /* Online: id 1 none (history only), id 2 deleted, id 3 its latest upsert. */
    cr_assert_eq(th_get(hs, hv, 1, 0, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(hs, hv, 2, 0, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(hs, hv, 3, 0, 0, &out, &when), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 32);
    cr_assert_eq(when, 150);
    /* The history has every row of its time, the history-only ones included. */
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(hs, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    static const struct {
        int64_t id, at;
        bool found;
        int64_t x;
    } want[] = {{1, 60, true, 1},   {1, 40, false, 0},  {2, 95, true, 11},
                {2, 105, true, 10}, {2, 115, true, 13}, {2, 120, false, 0},
                {2, 130, false, 0}, {3, 160, true, 32}, {3, 250, true, 31}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint8_t key[STORE_MAX_KEY];
        catalog_value_t k = th_i64(want[i].id);
        int n = store_encode_key(hv, &k, 1, key, sizeof key);
        cr_assert_gt(n, 0);
        store_row_t row;
        cr_assert_eq(store_history_row(r, hv, key, (size_t)n, want[i].at, &row), 0);
        cr_assert_eq(row.found, want[i].found, "id %lld as of %lld", (long long)want[i].id,
                     (long long)want[i].at);
        if (!want[i].found)
            continue;
        const uint8_t *wire;
        size_t len;
        cr_assert_eq(store_row_feature(&row, hv, 0, want[i].at, &wire, &len), STORE_STATUS_PRESENT);
        uint64_t scratch[8];
        cr_assert_eq(catalog_value_decode(wire, len, &out, scratch, sizeof scratch), 0);
        cr_assert_eq(out.u.i64, want[i].x, "id %lld as of %lld", (long long)want[i].id,
                     (long long)want[i].at);
    }
    store_read_end(r);
    store_reader_free(r);
    store_close(hs);
    th_rmrf(hdir);
    free(hdir);
    catalog_unref(hc);
}

/* The same fold for a view without history, its rows in ONE add (the fold works per add): a tie
 * after a delete and an older upsert are stale, the delete stays, the other key's latest wins. */
Test(apply, a_bulk_fold_of_many_rows_of_one_key_in_one_add_keeps_last_write_wins)
{
    const int64_t ids[] = {2, 2, 2, 2, 3, 3};
    const int64_t ts[] = {100, 120, 120, 110, 100, 150};
    const store_op_t ops[] = {STORE_OP_UPSERT, STORE_OP_DELETE, STORE_OP_UPSERT,
                              STORE_OP_UPSERT, STORE_OP_UPSERT, STORE_OP_UPSERT};
    catalog_value_t keys[6], vals[6];
    const catalog_value_t *kc[6][1], *vc[6][1];
    store_batch_t batches[6];
    uint32_t idx = 1;
    for (size_t i = 0; i < 6; i++) {
        keys[i] = th_i64(ids[i]);
        vals[i] = th_i64((int64_t)(10 * i + 10));
        kc[i][0] = &keys[i];
        vc[i][0] = &vals[i];
        batches[i] = (store_batch_t){.view = fv,
                                     .op = ops[i],
                                     .n_rows = 1,
                                     .keys = kc[i],
                                     .n_features = 1,
                                     .feature_idx = &idx,
                                     .values = vc[i],
                                     .event_ts_us = &ts[i]};
    }
    store_bulk_t *b = NULL;
    cr_assert_eq(store_bulk_begin(s, &b), 0);
    cr_assert_eq(store_bulk_add(b, batches, 6, NULL), 0);
    store_apply_result_t res;
    cr_assert_eq(store_bulk_commit(b, &res), 0);
    store_bulk_free(b);
    cr_assert_eq(res.stale, 2, "the tie after the delete and the older upsert");
    catalog_value_t out;
    int64_t when = 0;
    cr_assert_eq(th_get(s, fv, 2, 1, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_get(s, fv, 3, 1, 0, &out, &when), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 60);
    cr_assert_eq(when, 150);
    /* The tombstone kept id 2's delete time: an upsert as old stays out, a newer one comes in. */
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(7), 120), 0);
    cr_assert_eq(th_get(s, fv, 2, 1, 0, &out, NULL), STORE_STATUS_NOT_FOUND);
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(8), 121), 0);
    cr_assert_eq(th_get(s, fv, 2, 1, 0, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.i64, 8);
}
