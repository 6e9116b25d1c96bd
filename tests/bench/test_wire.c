/* tests/bench/test_wire.c - the load generator's hand-built requests and response checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench/loadgen/wire_int.h"

/* A GetOnlineFeaturesResponse for ids with one column per (view, feature) and statuses; columns
 * are named prefix + the feature number ("v3__f" + "0"). */
static void build_named_response(wbuf_t *out, const char *prefix, const int64_t *ids, size_t n,
                                 uint32_t n_feat, int status, int64_t corrupt_id)
{
    wbuf_t meta = {0}, names = {0}, vec = {0}, st = {0};
    for (uint32_t f = 0; f < n_feat; f++) {
        char name[32];
        snprintf(name, sizeof name, "%s%u", prefix, f);
        wbuf_bytes(&names, 1, name, strlen(name));
    }
    wbuf_bytes(&meta, 1, names.data, names.len);
    wbuf_bytes(out, 1, meta.data, meta.len);
    for (uint32_t f = 0; f < n_feat; f++) {
        vec.len = 0;
        st.len = 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t v[16];
            size_t len = bench_value_wire(3, f, ids[i] == corrupt_id ? ids[i] + 1 : ids[i], v);
            wbuf_bytes(&vec, 1, v, len);
            wbuf_varint(&st, (uint64_t)status);
        }
        wbuf_bytes(&vec, 2, st.data, st.len); /* packed statuses */
        wbuf_bytes(out, 2, vec.data, vec.len);
    }
    wbuf_free(&meta);
    wbuf_free(&names);
    wbuf_free(&vec);
    wbuf_free(&st);
}

static void build_response(wbuf_t *out, const int64_t *ids, size_t n, uint32_t n_feat, int status,
                           int64_t corrupt_id)
{
    build_named_response(out, "v3__f", ids, n, n_feat, status, corrupt_id);
}

Test(wire, generated_values_round_trip_through_the_check)
{
    int64_t ids[] = {0, 7, 999999};
    wbuf_t resp = {0};
    build_response(&resp, ids, 3, 10, 1, -1);
    wire_check_t c = {0};
    wire_check_get(resp.data, resp.len, ids, 3, 10, "id", true, &c);
    cr_assert_eq(c.responses, 1);
    cr_assert_eq(c.status[1], 30);
    cr_assert_eq(c.verified, 30);
    cr_assert_eq(wire_check_problems(&c), 0);
    wbuf_free(&resp);
}

Test(wire, a_wrong_value_is_caught)
{
    int64_t ids[] = {5, 6};
    wbuf_t resp = {0};
    build_response(&resp, ids, 2, 4, 1, 6);
    wire_check_t c = {0};
    wire_check_get(resp.data, resp.len, ids, 2, 4, "id", true, &c);
    cr_assert_eq(c.wrong, 4);
    cr_assert_eq(c.verified, 4);
    cr_assert_gt(wire_check_problems(&c), 0);
    wbuf_free(&resp);
}

Test(wire, not_found_and_missing_columns_are_problems)
{
    int64_t ids[] = {1};
    wbuf_t resp = {0};
    build_response(&resp, ids, 1, 3, 3, -1);
    wire_check_t c = {0};
    wire_check_get(resp.data, resp.len, ids, 1, 5, "id", false, &c);
    cr_assert_eq(c.status[3], 3);
    cr_assert_eq(c.bad_shape, 1, "5 features asked, 3 columns returned");
    wbuf_free(&resp);
}

Test(wire, verify_counts_a_column_it_cannot_place_as_a_problem)
{
    /* Right values under names the check does not know: nothing can be verified, and a check
     * that compared nothing must not pass. */
    int64_t ids[] = {4, 8};
    wbuf_t resp = {0};
    build_named_response(&resp, "v3__renamed", ids, 2, 3, 1, -1);
    wire_check_t c = {0};
    wire_check_get(resp.data, resp.len, ids, 2, 3, "id", true, &c);
    cr_assert_eq(c.values, 6);
    cr_assert_eq(c.verified, 0);
    cr_assert_eq(c.unknown, 3, "one per column");
    cr_assert_eq(wire_check_problems(&c), 3);

    /* Without --verify names do not matter. */
    wire_check_t plain = {0};
    wire_check_get(resp.data, resp.len, ids, 2, 3, "id", false, &plain);
    cr_assert_eq(wire_check_problems(&plain), 0);
    wbuf_free(&resp);
}

Test(wire, merged_checks_keep_unknown_columns)
{
    wire_check_t a = {.unknown = 2}, b = {.unknown = 3};
    wire_check_merge(&a, &b);
    cr_assert_eq(a.unknown, 5);
    cr_assert_eq(wire_check_problems(&a), 5);
}

Test(wire, truncated_response_is_malformed)
{
    int64_t ids[] = {1, 2};
    wbuf_t resp = {0};
    build_response(&resp, ids, 2, 2, 1, -1);
    wire_check_t c = {0};
    wire_check_get(resp.data, resp.len - 3, ids, 2, 2, "id", true, &c);
    cr_assert_gt(c.malformed, 0);
    wbuf_free(&resp);
}

Test(wire, get_request_has_the_expected_bytes)
{
    char *features[] = {"v0:f1"};
    wire_get_spec_t spec = {.features = features, .n_features = 1, .join_key = "id"};
    int64_t ids[] = {300};
    wbuf_t req = {0};
    cr_assert_eq(wire_get_request(&spec, ids, 1, &req), 0);
    /* features {val: "v0:f1"}, entities {"id": [int64 300]} */
    const uint8_t want[] = {0x12, 0x07, 0x0a, 0x05, 'v',  '0',  ':',  'f',  '1',  0x1a, 0x0b,
                            0x0a, 0x02, 'i',  'd',  0x12, 0x05, 0x0a, 0x03, 0x20, 0xac, 0x02};
    cr_assert_eq(req.len, 22);
    cr_assert_arr_eq(req.data, want, 22);
    wbuf_free(&req);
}

Test(wire, write_response_must_acknowledge_every_row)
{
    uint8_t ok[] = {0x08, 100};
    uint8_t short_[] = {0x08, 99};
    wire_check_t c = {0};
    wire_check_write(ok, sizeof ok, 100, &c);
    cr_assert_eq(wire_check_problems(&c), 0);
    cr_assert_eq(c.rows_acked, 100);
    wire_check_write(short_, sizeof short_, 100, &c);
    cr_assert_eq(c.bad_shape, 1);
}

Test(wire, predict_request_has_the_expected_bytes)
{
    int64_t ids[] = {1, 2};
    wbuf_t req = {0};
    cr_assert_eq(wire_predict_request("m1", "id", ids, 2, &req), 0);
    /* model_spec {name: "m1"}, inputs {"id": {dtype: DT_INT64, tensor_shape {dim {size: 2}},
     * int64_val: [1, 2]}} */
    const uint8_t want[] = {0x0a, 0x04, 0x0a, 0x02, 'm',  '1',  0x12, 0x12, 0x0a,
                            0x02, 'i',  'd',  0x12, 0x0c, 0x08, 0x09, 0x12, 0x04,
                            0x12, 0x02, 0x08, 0x02, 0x52, 0x02, 0x01, 0x02};
    cr_assert_eq(req.len, sizeof want);
    cr_assert_arr_eq(req.data, want, sizeof want);
    wbuf_free(&req);
}

/* A PredictResponse with tensors prefix + "0" (INT64 values of v2:f0) and prefix + "1" (DOUBLE,
 * v2:f1). */
static void build_named_predict_response(wbuf_t *out, const char *prefix, const int64_t *ids,
                                         size_t n, int64_t corrupt_id)
{
    for (uint32_t f = 0; f < 2; f++) {
        wbuf_t entry = {0}, tensor = {0}, vals = {0};
        char name[32];
        snprintf(name, sizeof name, "%s%u", prefix, f);
        for (size_t i = 0; i < n; i++) {
            int64_t id = ids[i] == corrupt_id ? ids[i] + 1 : ids[i];
            if (f == 0) {
                wbuf_varint(&vals, (uint64_t)bench_int_value(2, f, id));
            } else {
                double d = bench_double_value(2, f, id);
                wbuf_raw(&vals, &d, sizeof d); /* little-endian host */
            }
        }
        wbuf_bytes(&tensor, f == 0 ? 10 : 6, vals.data, vals.len);
        wbuf_bytes(&entry, 1, name, strlen(name));
        wbuf_bytes(&entry, 2, tensor.data, tensor.len);
        wbuf_bytes(out, 1, entry.data, entry.len);
        wbuf_free(&entry);
        wbuf_free(&tensor);
        wbuf_free(&vals);
    }
}

/* The same with tensors v2__f0 and v2__f1. */
static void build_predict_response(wbuf_t *out, const int64_t *ids, size_t n, int64_t corrupt_id)
{
    build_named_predict_response(out, "v2__f", ids, n, corrupt_id);
}

Test(wire, predict_response_values_are_verified)
{
    int64_t ids[] = {3, 4, 5};
    wbuf_t resp = {0};
    build_predict_response(&resp, ids, 3, -1);
    wire_check_t c = {0};
    wire_check_predict(resp.data, resp.len, ids, 3, 2, true, &c);
    cr_assert_eq(c.verified, 6);
    cr_assert_eq(wire_check_problems(&c), 0);
    wbuf_free(&resp);

    wbuf_t bad = {0};
    build_predict_response(&bad, ids, 3, 4);
    wire_check_t c2 = {0};
    wire_check_predict(bad.data, bad.len, ids, 3, 3, true, &c2);
    cr_assert_eq(c2.wrong, 2);
    cr_assert_eq(c2.bad_shape, 1, "3 outputs expected, 2 returned");
    wbuf_free(&bad);
}

Test(wire, predict_verify_counts_a_tensor_it_cannot_place_as_a_problem)
{
    int64_t ids[] = {3, 4};
    wbuf_t resp = {0};
    build_named_predict_response(&resp, "output_", ids, 2, -1);
    wire_check_t c = {0};
    wire_check_predict(resp.data, resp.len, ids, 2, 2, true, &c);
    cr_assert_eq(c.values, 4);
    cr_assert_eq(c.verified, 0);
    cr_assert_eq(c.unknown, 2);
    cr_assert_gt(wire_check_problems(&c), 0);
    wbuf_free(&resp);
}

/* Ids of every varint length: 0, small, a 2-byte one, large, negative (10 bytes), random. */
static void fill_ids(int64_t *ids, size_t n, uint64_t seed)
{
    static const int64_t edge[] = {0, 1, 127, 128, 300, 999999, INT64_MAX / 1000, -1, -1000};
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = i < sizeof edge / sizeof edge[0] ? edge[i] : (int64_t)(x % 5000000);
    }
}

/* Encodes ids with the template (after bytes already in the buffer) and compares with want. */
static void assert_tmpl_matches(const wire_tmpl_t *t, const int64_t *ids, const wbuf_t *want)
{
    wbuf_t got = {0};
    wbuf_raw(&got, "xy", 2); /* wire_tmpl_encode appends */
    cr_assert_eq(wire_tmpl_encode(t, ids, &got), 0);
    cr_assert_eq(got.len, want->len + 2, "template %zu bytes, reference %zu", got.len - 2,
                 want->len);
    cr_assert_arr_eq(got.data + 2, want->data, want->len);
    wbuf_free(&got);
}

Test(wire, get_template_writes_the_reference_bytes_for_any_ids)
{
    char *features[] = {"v0:f0", "v0:f1", "v4:f9"};
    wire_get_spec_t specs[] = {
        {.features = features, .n_features = 3, .join_key = "id", .full_feature_names = true},
        {.features = features, .n_features = 1, .join_key = "id"},
        {.feature_service = "s1", .join_key = "user_id", .full_feature_names = true},
    };
    size_t sizes[] = {1, 10, 100, 300};
    int64_t ids[300];
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            wire_tmpl_t *t = NULL;
            cr_assert_eq(wire_tmpl_get(&specs[s], sizes[k], &t), 0);
            for (uint64_t seed = 1; seed <= 20; seed++) {
                fill_ids(ids, sizes[k], seed);
                wbuf_t want = {0};
                cr_assert_eq(wire_get_request(&specs[s], ids, sizes[k], &want), 0);
                assert_tmpl_matches(t, ids, &want);
                wbuf_free(&want);
            }
            wire_tmpl_free(t);
        }
    }
}

Test(wire, predict_template_writes_the_reference_bytes_for_any_ids)
{
    size_t sizes[] = {1, 2, 100, 200};
    int64_t ids[200];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        wire_tmpl_t *t = NULL;
        cr_assert_eq(wire_tmpl_predict("m1", "id", sizes[k], &t), 0);
        for (uint64_t seed = 1; seed <= 20; seed++) {
            fill_ids(ids, sizes[k], seed);
            wbuf_t want = {0};
            cr_assert_eq(wire_predict_request("m1", "id", ids, sizes[k], &want), 0);
            assert_tmpl_matches(t, ids, &want);
            wbuf_free(&want);
        }
        wire_tmpl_free(t);
    }
}

Test(wire, write_template_writes_the_reference_bytes_for_any_ids)
{
    struct {
        uint32_t view, n_features;
        size_t n;
        int64_t event_s;
    } cases[] = {{0, 10, 100, 0}, {3, 10, 1, 0}, {24, 12, 50, 1700000000}, {7, 0, 5, 0}};
    int64_t ids[100];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        wire_tmpl_t *t = NULL;
        cr_assert_eq(wire_tmpl_write("w0", cases[c].view, "id", cases[c].n_features, cases[c].n,
                                     cases[c].event_s, &t),
                     0);
        for (uint64_t seed = 1; seed <= 20; seed++) {
            fill_ids(ids, cases[c].n, seed);
            wbuf_t want = {0};
            cr_assert_eq(wire_write_request("w0", cases[c].view, "id", cases[c].n_features, ids,
                                            cases[c].n, cases[c].event_s, &want),
                         0);
            assert_tmpl_matches(t, ids, &want);
            wbuf_free(&want);
        }
        wire_tmpl_free(t);
    }
}

Test(wire, a_template_needs_at_least_one_id)
{
    wire_tmpl_t *t = NULL;
    cr_assert_eq(wire_tmpl_predict("m1", "id", 0, &t), -EINVAL);
    cr_assert_null(t);
}
