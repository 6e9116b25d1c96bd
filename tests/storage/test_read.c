/* tests/storage/test_read.c - readers, statuses and zero-copy reads (storage/read.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

TestSuite(read, .init = setup, .fini = teardown);

#define HOUR_US (3600ll * 1000000)

Test(read, every_status_is_reported)
{
    const int64_t t0 = 1700000000ll * 1000000;
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.25f), t0), 0);
    cr_assert_eq(th_put(s, fv, 1, 2, th_null(), t0), 0);
    catalog_value_t out;
    cr_assert_eq(th_get(s, fv, 1, 0, t0 + 1, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_float_eq(out.u.f32, 0.25f, 1e-6);
    cr_assert_eq(th_get(s, fv, 1, 2, t0 + 1, &out, NULL), STORE_STATUS_NULL_VALUE, "explicit");
    cr_assert_eq(th_get(s, fv, 1, 1, t0 + 1, &out, NULL), STORE_STATUS_NULL_VALUE, "never set");
    cr_assert_eq(th_get(s, fv, 2, 0, t0 + 1, &out, NULL), STORE_STATUS_NOT_FOUND);
    /* The view's TTL is 1h: an hour and a bit later the value is still returned, flagged. */
    cr_assert_eq(th_get(s, fv, 1, 0, t0 + HOUR_US - 1, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(th_get(s, fv, 1, 0, t0 + HOUR_US + 1, &out, NULL), STORE_STATUS_OUTSIDE_MAX_AGE);
    cr_assert_float_eq(out.u.f32, 0.25f, 1e-6);
}

Test(read, a_view_without_ttl_never_ages)
{
    const catalog_view_t *g = th_view(cat, "global", 1);
    catalog_value_t val = th_i64(42);
    const catalog_value_t *vals[] = {&val};
    uint32_t idx = 0;
    int64_t ts = 1;
    store_batch_t b = {.view = g,
                       .n_rows = 1,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = vals,
                       .event_ts_us = &ts};
    cr_assert_eq(store_apply(s, &b, 1, 0, NULL), 0);
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t k[4];
    int n = store_encode_key(g, NULL, 0, k, sizeof k);
    store_row_t row;
    cr_assert_eq(store_read_row(r, g, k, (size_t)n, &row), 0);
    const uint8_t *wire;
    size_t len;
    cr_assert_eq(store_row_feature(&row, g, 0, INT64_MAX / 2, &wire, &len), STORE_STATUS_PRESENT);
    store_read_end(r);
    store_reader_free(r);
}

Test(read, feature_bytes_point_into_the_record_and_are_feast_wire_form)
{
    cr_assert_eq(th_put(s, fv, 9, 1, th_i64(150), 1), 0);
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t k[16];
    catalog_value_t id = th_i64(9);
    int n = store_encode_key(fv, &id, 1, k, sizeof k);
    store_row_t row;
    cr_assert_eq(store_read_row(r, fv, k, (size_t)n, &row), 0);
    const uint8_t *wire;
    size_t len;
    cr_assert_eq(store_row_feature(&row, fv, 1, 1, &wire, &len), STORE_STATUS_PRESENT);
    cr_assert(wire >= row.rec && wire + len <= row.rec + row.rec_len, "not zero-copy");
    uint8_t want[16];
    catalog_value_t v = th_i64(150);
    int wn = catalog_value_encode(&v, want, sizeof want);
    cr_assert_eq((int)len, wn);
    cr_assert_arr_eq(wire, want, len);
    store_read_end(r);
    store_reader_free(r);
}

Test(read, a_reloaded_catalog_reads_the_same_rows_by_name)
{
    cr_assert_eq(th_put(s, fv, 1, 2, th_str("x"), 1), 0);
    /* Same view, features in another order, loaded separately: no pointer is shared. */
    catalog_t *other =
        th_catalog("project: p\n"
                   "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]}]\n"
                   "feature_views:\n"
                   "  - name: fv\n"
                   "    version: 1\n"
                   "    entities: [driver]\n"
                   "    ttl: 1h\n"
                   "    features:\n"
                   "      - {name: label, dtype: STRING}\n"
                   "      - {name: conv_rate, dtype: FLOAT, validation: {min: 0, max: 1}}\n");
    const catalog_view_t *v2 = th_view(other, "fv", 1);
    catalog_value_t out;
    cr_assert_eq(th_get(s, v2, 1, 0, 1, &out, NULL), STORE_STATUS_PRESENT);
    cr_assert_eq(out.u.bytes.len, 1);
    cr_assert_eq(th_get(s, v2, 1, 1, 1, &out, NULL), STORE_STATUS_NULL_VALUE);
    catalog_unref(other);
}

Test(read, reads_outside_a_session_and_of_unknown_views_are_refused)
{
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    uint8_t k[8] = {0};
    store_row_t row;
    cr_assert_eq(store_read_row(r, fv, k, 8, &row), -EINVAL);
    cr_assert_eq(store_read_begin(r), 0);
    cr_assert_eq(store_read_begin(r), -EINVAL);
    catalog_t *other = th_catalog("project: p\n"
                                  "feature_views:\n"
                                  "  - {name: ghost, version: 3, entities: [], features: "
                                  "[{name: f, dtype: INT64}]}\n");
    cr_assert_eq(store_read_row(r, th_view(other, "ghost", 3), k, 1, &row), -ENOENT);
    store_read_end(r);
    store_read_end(r); /* harmless */
    store_reader_free(r);
    catalog_unref(other);
}

Test(read, a_reader_sees_one_snapshot_until_it_ends_the_read)
{
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), 1), 0);
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t k[16];
    catalog_value_t id = th_i64(1);
    int n = store_encode_key(fv, &id, 1, k, sizeof k);
    /* A write commits while the read is open. (Writing from a thread with an open read is
     * only safe because a 1 GiB map cannot need to grow here; see store.h.) */
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(2), 2), 0);
    store_row_t row;
    cr_assert_eq(store_read_row(r, fv, k, (size_t)n, &row), 0);
    cr_assert_eq(row.event_ts_us, 1);
    store_read_end(r);
    cr_assert_eq(store_read_begin(r), 0);
    cr_assert_eq(store_read_row(r, fv, k, (size_t)n, &row), 0);
    cr_assert_eq(row.event_ts_us, 2);
    store_read_end(r);
    store_reader_free(r);
}

/* Reads every feature of fv (and one index past the end) for entities 1..3 both ways and
 * compares: present, explicit null, never set, missing row, expired and in-range rows. */
static void check_batch_matches_single(store_reader_t *r, const catalog_view_t *v, int64_t now)
{
    uint32_t idx[8];
    size_t n = 0;
    for (uint32_t f = 0; f <= v->n_features && n < 8; f++)
        idx[n++] = f;
    uint32_t slots[8];
    const void *slots_of = NULL;
    for (int64_t id = 1; id <= 3; id++) {
        uint8_t k[16];
        catalog_value_t key = th_i64(id);
        int kn = store_encode_key(v, &key, 1, k, sizeof k);
        cr_assert_gt(kn, 0);
        store_row_t row;
        cr_assert_eq(store_read_row(r, v, k, (size_t)kn, &row), 0);
        const uint8_t *wires[8];
        size_t lens[8];
        store_status_t sts[8];
        store_row_features(&row, v, idx, n, now, wires, lens, sts);
        /* And in two halves, with the slots resolved once, on entity 1's row: every row of the
         * view in one read has the same slot table. */
        if (id == 1) {
            store_row_slots(&row, v, idx, n, slots);
            slots_of = row.slots;
        }
        cr_assert_eq(row.slots, slots_of, "entity %lld", (long long)id);
        const uint8_t *wires2[8];
        size_t lens2[8];
        store_status_t sts2[8];
        store_row_slot_features(&row, v, slots, n, now, wires2, lens2, sts2);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *w;
            size_t len;
            store_status_t st = store_row_feature(&row, v, idx[i], now, &w, &len);
            cr_assert_eq(sts[i], st, "entity %lld feature %zu", (long long)id, i);
            cr_assert_eq(wires[i], w, "entity %lld feature %zu", (long long)id, i);
            cr_assert_eq(lens[i], len, "entity %lld feature %zu", (long long)id, i);
            cr_assert_eq(sts2[i], st, "entity %lld feature %zu (slots)", (long long)id, i);
            cr_assert_eq(wires2[i], w, "entity %lld feature %zu (slots)", (long long)id, i);
            cr_assert_eq(lens2[i], len, "entity %lld feature %zu (slots)", (long long)id, i);
        }
    }
}

Test(read, a_batch_of_features_reads_as_one_feature_at_a_time)
{
    const int64_t t0 = 1700000000ll * 1000000;
    cr_assert_eq(th_put(s, fv, 1, 0, th_f32(0.5f), t0), 0);
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(7), t0), 0);
    cr_assert_eq(th_put(s, fv, 1, 2, th_null(), t0), 0);
    cr_assert_eq(th_put(s, fv, 2, 2, th_str("abc"), t0 - 2 * HOUR_US), 0);
    catalog_t *other =
        th_catalog("project: p\n"
                   "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]}]\n"
                   "feature_views:\n"
                   "  - name: fv\n"
                   "    version: 1\n"
                   "    entities: [driver]\n"
                   "    ttl: 1h\n"
                   "    features:\n"
                   "      - {name: label, dtype: STRING}\n"
                   "      - {name: trips, dtype: INT64}\n"
                   "      - {name: brand_new, dtype: INT64}\n");
    store_reader_t *r;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    /* Alternating between the applied catalog's view and a reloaded one's also exercises the
     * reader's view cache. */
    for (int pass = 0; pass < 2; pass++) {
        check_batch_matches_single(r, fv, t0 + 1);
        check_batch_matches_single(r, th_view(other, "fv", 1), t0 + 1);
        check_batch_matches_single(r, fv, t0 + HOUR_US + 1);
    }
    store_read_end(r);
    store_reader_free(r);
    catalog_unref(other);
}
