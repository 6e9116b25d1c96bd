/* tests/codec/test_feast_encode.c - the hand-written GetOnlineFeaturesResponse vs protobuf-c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "tests/codec/helpers.h"

#include "feast/serving/ServingService.pb-c.h"

/* Cell values are feast.types.Value bodies, made here with protobuf-c (the reference). */
static core_cell_t cell_i64(int64_t v, uint8_t status, int64_t ts)
{
    Feast__Types__Value m = FEAST__TYPES__VALUE__INIT;
    m.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    m.int64_val = v;
    size_t n = feast__types__value__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    feast__types__value__pack(&m, buf);
    return (core_cell_t){buf, (uint32_t)n, status, ts};
}

static core_cell_t cell_str(const char *s, int64_t ts)
{
    Feast__Types__Value m = FEAST__TYPES__VALUE__INIT;
    m.val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
    m.string_val = (char *)s;
    size_t n = feast__types__value__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    feast__types__value__pack(&m, buf);
    return (core_cell_t){buf, (uint32_t)n, STORE_STATUS_PRESENT, ts};
}

static Feast__Serving__GetOnlineFeaturesResponse *encode(const codec_feast_response_t *r)
{
    codec_feast_vec_t *sizes = calloc(r->n_cols + 1, sizeof *sizes);
    size_t n = codec_feast_size(r, sizes);
    uint8_t *buf = malloc(n + 1);
    size_t written = codec_feast_write(r, sizes, buf);
    cr_assert_eq(written, n, "size pass said %zu, write pass wrote %zu", n, written);
    Feast__Serving__GetOnlineFeaturesResponse *m =
        feast__serving__get_online_features_response__unpack(NULL, n, buf);
    cr_assert_not_null(m, "protobuf-c cannot decode the hand-encoded response");
    free(buf);
    free(sizes);
    return m;
}

static void free_cells(core_cell_t *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)cells[i].wire);
}

Test(feast_encode, columns_values_statuses_and_timestamps_decode_with_protobuf_c)
{
    /* 3 rows; a join-key column and two features with every status. */
    core_cell_t keys[3] = {cell_i64(1001, STORE_STATUS_PRESENT, 0),
                           cell_i64(1002, STORE_STATUS_PRESENT, 0),
                           cell_i64(-7, STORE_STATUS_PRESENT, 0)};
    core_cell_t f1[3] = {cell_i64(42, STORE_STATUS_PRESENT, 1700000000123456),
                         {NULL, 0, STORE_STATUS_NULL_VALUE, 1700000001000000},
                         {NULL, 0, STORE_STATUS_NOT_FOUND, 0}};
    core_cell_t f2[3] = {cell_str("gold", -1500000), /* before the epoch: nanos stay >= 0 */
                         cell_str("", 5), cell_i64(INT64_MIN, STORE_STATUS_OUTSIDE_MAX_AGE, 1)};
    f2[2].status = STORE_STATUS_OUTSIDE_MAX_AGE;
    codec_feast_column_t cols[3] = {
        {"driver_id", 9, keys}, {"fv__trips", 9, f1}, {"fv@v2__label", 12, f2}};
    core_view_md_t views[2] = {{"fv", 1}, {"fv", 2}};
    codec_feast_response_t r = {
        .n_rows = 3, .n_cols = 3, .cols = cols, .n_views = 2, .views = views, .status = true};
    Feast__Serving__GetOnlineFeaturesResponse *m = encode(&r);

    cr_assert(m->status);
    cr_assert_not_null(m->metadata);
    cr_assert_eq(m->metadata->feature_names->n_val, 3);
    cr_assert_str_eq(m->metadata->feature_names->val[0], "driver_id");
    cr_assert_str_eq(m->metadata->feature_names->val[1], "fv__trips");
    cr_assert_str_eq(m->metadata->feature_names->val[2], "fv@v2__label");
    cr_assert_eq(m->metadata->n_feature_view_metadata, 2);
    cr_assert_str_eq(m->metadata->feature_view_metadata[1]->name, "fv");
    cr_assert_eq(m->metadata->feature_view_metadata[1]->version, 2);
    cr_assert_eq(m->n_results, 3);

    Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *k = m->results[0];
    cr_assert_eq(k->n_values, 3);
    cr_assert_eq(k->values[2]->int64_val, -7);
    cr_assert_eq(k->statuses[0], FEAST__SERVING__FIELD_STATUS__PRESENT);
    cr_assert_eq(k->n_event_timestamps, 3);
    cr_assert_eq(k->event_timestamps[0]->seconds, 0);

    Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *v = m->results[1];
    cr_assert_eq(v->n_values, 3);
    cr_assert_eq(v->n_statuses, 3);
    cr_assert_eq(v->values[0]->val_case, FEAST__TYPES__VALUE__VAL_INT64_VAL);
    cr_assert_eq(v->values[0]->int64_val, 42);
    cr_assert_eq(v->values[1]->val_case, FEAST__TYPES__VALUE__VAL__NOT_SET);
    cr_assert_eq(v->statuses[0], FEAST__SERVING__FIELD_STATUS__PRESENT);
    cr_assert_eq(v->statuses[1], FEAST__SERVING__FIELD_STATUS__NULL_VALUE);
    cr_assert_eq(v->statuses[2], FEAST__SERVING__FIELD_STATUS__NOT_FOUND);
    cr_assert_eq(v->event_timestamps[0]->seconds, 1700000000);
    cr_assert_eq(v->event_timestamps[0]->nanos, 123456000);
    cr_assert_eq(v->event_timestamps[1]->seconds, 1700000001);
    cr_assert_eq(v->event_timestamps[1]->nanos, 0);
    cr_assert_eq(v->event_timestamps[2]->seconds, 0);

    Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *s = m->results[2];
    cr_assert_str_eq(s->values[0]->string_val, "gold");
    cr_assert_eq(s->values[1]->val_case, FEAST__TYPES__VALUE__VAL_STRING_VAL);
    cr_assert_str_eq(s->values[1]->string_val, "");
    cr_assert_eq(s->values[2]->int64_val, INT64_MIN);
    cr_assert_eq(s->statuses[2], FEAST__SERVING__FIELD_STATUS__OUTSIDE_MAX_AGE);
    cr_assert_eq(s->event_timestamps[0]->seconds, -2);
    cr_assert_eq(s->event_timestamps[0]->nanos, 500000000);
    cr_assert_eq(s->event_timestamps[1]->nanos, 5000);

    feast__serving__get_online_features_response__free_unpacked(m, NULL);
    free_cells(keys, 3);
    free_cells(f1, 3);
    free_cells(f2, 3);
}

Test(feast_encode, matches_protobuf_c_packing_byte_for_byte)
{
    core_cell_t f[2] = {cell_i64(5, STORE_STATUS_PRESENT, 1000000),
                        {NULL, 0, STORE_STATUS_NOT_FOUND, 0}};
    codec_feast_column_t cols[1] = {{"trips", 5, f}};
    codec_feast_response_t r = {.n_rows = 2, .n_cols = 1, .cols = cols, .status = true};
    codec_feast_vec_t sizes[1];
    size_t n = codec_feast_size(&r, sizes);
    uint8_t *mine = malloc(n);
    codec_feast_write(&r, sizes, mine);

    /* The same response built as protobuf-c messages and packed by protobuf-c. */
    Feast__Types__Value v0 = FEAST__TYPES__VALUE__INIT, v1 = FEAST__TYPES__VALUE__INIT;
    v0.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    v0.int64_val = 5;
    Feast__Types__Value *vals[2] = {&v0, &v1};
    Google__Protobuf__Timestamp t0 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp t1 = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    t0.seconds = 1;
    Google__Protobuf__Timestamp *ts[2] = {&t0, &t1};
    Feast__Serving__FieldStatus st[2] = {FEAST__SERVING__FIELD_STATUS__PRESENT,
                                         FEAST__SERVING__FIELD_STATUS__NOT_FOUND};
    Feast__Serving__GetOnlineFeaturesResponse__FeatureVector vec =
        FEAST__SERVING__GET_ONLINE_FEATURES_RESPONSE__FEATURE_VECTOR__INIT;
    vec.n_values = 2;
    vec.values = vals;
    vec.n_statuses = 2;
    vec.statuses = st;
    vec.n_event_timestamps = 2;
    vec.event_timestamps = ts;
    Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *vecs[1] = {&vec};
    char *names[1] = {"trips"};
    Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
    fl.n_val = 1;
    fl.val = names;
    Feast__Serving__GetOnlineFeaturesResponseMetadata md =
        FEAST__SERVING__GET_ONLINE_FEATURES_RESPONSE_METADATA__INIT;
    md.feature_names = &fl;
    Feast__Serving__GetOnlineFeaturesResponse resp =
        FEAST__SERVING__GET_ONLINE_FEATURES_RESPONSE__INIT;
    resp.metadata = &md;
    resp.n_results = 1;
    resp.results = vecs;
    resp.status = 1;
    size_t ref_n = feast__serving__get_online_features_response__get_packed_size(&resp);
    uint8_t *ref = malloc(ref_n);
    feast__serving__get_online_features_response__pack(&resp, ref);

    cr_assert_eq(n, ref_n);
    cr_assert_eq(memcmp(mine, ref, n), 0);
    free(mine);
    free(ref);
    free_cells(f, 2);
}

Test(feast_encode, every_value_and_timestamp_length_is_copied_exactly)
{
    /* Values of 2 to 42 wire bytes and timestamps of every encoded size, across the small-copy
     * cases of the encoder (under 4, 4 to 7, 8 to 16, longer), decoded back by protobuf-c. */
    enum { N = 41 };
    char text[N + 1];
    core_cell_t f[N];
    int64_t tss[N];
    for (size_t i = 0; i < N; i++) {
        memset(text, 'a' + (int)(i % 26), i);
        text[i] = '\0';
        /* Seconds of 0 to 9 varint bytes, with and without nanos. */
        tss[i] = (i % 2 ? 1 : -1) * (int64_t)((1ull << (6 * (i % 10))) * 1000000ull / 3) +
                 (int64_t)(i % 3);
        f[i] = cell_str(text, tss[i]);
    }
    codec_feast_column_t cols[1] = {{"s", 1, f}};
    codec_feast_response_t r = {.n_rows = N, .n_cols = 1, .cols = cols};
    Feast__Serving__GetOnlineFeaturesResponse *m = encode(&r);
    cr_assert_eq(m->n_results, 1);
    cr_assert_eq(m->results[0]->n_values, N);
    for (size_t i = 0; i < N; i++) {
        const Feast__Types__Value *v = m->results[0]->values[i];
        cr_assert_eq(v->val_case, FEAST__TYPES__VALUE__VAL_STRING_VAL, "row %zu", i);
        cr_assert_eq(strlen(v->string_val), i, "row %zu", i);
        for (size_t k = 0; k < i; k++)
            cr_assert_eq(v->string_val[k], 'a' + (int)(i % 26), "row %zu byte %zu", i, k);
        const Google__Protobuf__Timestamp *t = m->results[0]->event_timestamps[i];
        int64_t us = t->seconds * 1000000 + t->nanos / 1000;
        cr_assert_eq(us, tss[i], "row %zu: %lld vs %lld", i, (long long)us, (long long)tss[i]);
    }
    feast__serving__get_online_features_response__free_unpacked(m, NULL);
    free_cells(f, N);
}

Test(feast_encode, a_response_without_rows_still_names_its_columns)
{
    codec_feast_column_t cols[1] = {{"trips", 5, NULL}};
    codec_feast_response_t r = {.n_rows = 0, .n_cols = 1, .cols = cols, .status = false};
    Feast__Serving__GetOnlineFeaturesResponse *m = encode(&r);
    cr_assert_eq(m->metadata->feature_names->n_val, 1);
    cr_assert_eq(m->n_results, 1);
    cr_assert_eq(m->results[0]->n_values, 0);
    cr_assert_not(m->status);
    feast__serving__get_online_features_response__free_unpacked(m, NULL);
}

Test(feast_encode, large_values_use_multi_byte_lengths)
{
    size_t big = 300000;
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = '\0';
    core_cell_t f[1] = {cell_str(s, 1)};
    codec_feast_column_t cols[1] = {{"blob", 4, f}};
    codec_feast_response_t r = {.n_rows = 1, .n_cols = 1, .cols = cols, .status = true};
    Feast__Serving__GetOnlineFeaturesResponse *m = encode(&r);
    cr_assert_eq(strlen(m->results[0]->values[0]->string_val), big);
    feast__serving__get_online_features_response__free_unpacked(m, NULL);
    free_cells(f, 1);
    free(s);
}

/* Encodes r into a fresh buffer. */
static uint8_t *encode_bytes(const codec_feast_response_t *r, size_t *n)
{
    codec_feast_vec_t *sizes = calloc(r->n_cols + 1, sizeof *sizes);
    *n = codec_feast_size(r, sizes);
    uint8_t *buf = malloc(*n + 1);
    size_t written = codec_feast_write(r, sizes, buf);
    cr_assert_eq(written, *n);
    free(sizes);
    return buf;
}

Test(feast_encode, pre_encoded_names_change_no_byte)
{
    /* Two views' worth of columns over three rows whose timestamps differ by row and by view,
     * including a NOT_FOUND cell (timestamp 0) amid a view's run. */
    core_cell_t keys[3] = {cell_i64(1, STORE_STATUS_PRESENT, 0),
                           cell_i64(2, STORE_STATUS_PRESENT, 0),
                           cell_i64(3, STORE_STATUS_PRESENT, 0)};
    core_cell_t a1[3] = {cell_i64(10, STORE_STATUS_PRESENT, 1700000000123456),
                         cell_i64(11, STORE_STATUS_PRESENT, -1500000),
                         {NULL, 0, STORE_STATUS_NOT_FOUND, 0}};
    core_cell_t a2[3] = {cell_i64(20, STORE_STATUS_PRESENT, 1700000000123456),
                         {NULL, 0, STORE_STATUS_NULL_VALUE, -1500000},
                         {NULL, 0, STORE_STATUS_NOT_FOUND, 0}};
    core_cell_t b1[3] = {cell_i64(30, STORE_STATUS_PRESENT, 5),
                         cell_i64(31, STORE_STATUS_OUTSIDE_MAX_AGE, 1),
                         cell_i64(32, STORE_STATUS_PRESENT, INT64_MAX)};
    codec_feast_column_t cols[4] = {
        {"driver_id", 9, keys}, {"a__x", 4, a1}, {"a__y", 4, a2}, {"b__zzz", 6, b1}};
    core_view_md_t views[2] = {{"a", 1}, {"b", 3}};
    codec_feast_response_t plain = {
        .n_rows = 3, .n_cols = 4, .cols = cols, .n_views = 2, .views = views, .status = true};
    size_t want_n;
    uint8_t *want = encode_bytes(&plain, &want_n);

    base_arena_t a;
    base_arena_init(&a, 1024);
    const char *names[3] = {"a__x", "a__y", "b__zzz"};
    size_t lens[3] = {4, 4, 6};
    codec_feast_response_t fast = plain;
    fast.names_pre = encode_names(&a, names, lens, 3, &fast.names_pre_len);
    cr_assert_not_null(fast.names_pre);
    fast.n_names_pre = 3;
    size_t got_n;
    uint8_t *got = encode_bytes(&fast, &got_n);
    cr_assert_eq(got_n, want_n);
    cr_assert_eq(memcmp(got, want, want_n), 0);

    free(want);
    free(got);
    base_arena_free(&a);
    free_cells(keys, 3);
    free_cells(a1, 3);
    free_cells(a2, 3);
    free_cells(b1, 3);
}

/* ------------------------------------------------------------------------------------------ */
/* Randomized: the encoder against protobuf-c's packing of the same message.                   */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure repeats. */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ull;
}

/* Timestamps of every shape: zero, whole seconds, before the epoch, the extremes. */
static int64_t rnd_ts(void)
{
    switch (rnd() % 7) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(rnd() % 2000000000) * 1000000;
    case 2:
        return -(int64_t)(rnd() % 4000000000000ull);
    case 3:
        return rnd() % 2 ? INT64_MAX : INT64_MIN;
    case 4:
        return (int64_t)(rnd() % 1000000);
    default:
        return 1700000000000000ll + (int64_t)(rnd() % 100000000000ull);
    }
}

/* A random feast.types.Value (or a null) in *v, its packed body in the cell. */
static core_cell_t rnd_cell(Feast__Types__Value *v, char *text, int64_t ts)
{
    feast__types__value__init(v);
    uint8_t status = (uint8_t)(rnd() % 5);
    if (status != STORE_STATUS_NOT_FOUND && status != STORE_STATUS_NULL_VALUE && rnd() % 8 != 0) {
        switch (rnd() % 3) {
        case 0:
            v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
            v->int64_val = (int64_t)rnd() >> (rnd() % 64);
            break;
        case 1:
            v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
            v->double_val = (double)(int64_t)rnd() / 7.0;
            break;
        default: {
            /* Up to 300 bytes: lengths of one and two varint bytes. */
            size_t n = rnd() % 4 == 0 ? (size_t)(rnd() % 301) : (size_t)(rnd() % 20);
            memset(text, 'a' + (int)(rnd() % 26), n);
            text[n] = '\0';
            v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
            v->string_val = text;
        }
        }
    }
    size_t n = feast__types__value__get_packed_size(v);
    uint8_t *buf = n > 0 ? malloc(n) : NULL;
    if (n > 0)
        feast__types__value__pack(v, buf);
    return (core_cell_t){buf, (uint32_t)n, status, ts};
}

Test(feast_encode, random_responses_match_protobuf_c_packing_byte_for_byte)
{
    enum { MAX_ROWS = 140, MAX_COLS = 7, MAX_VIEWS = 3 };
    /* One row (the usual online read) has its own loops: drawn more often. */
    static const size_t row_counts[] = {0, 1, 1, 1, 2, 3, 5, 17, 127, 128, 140};
    for (int iter = 0; iter < 600; iter++) {
        size_t n_rows = row_counts[rnd() % (sizeof row_counts / sizeof row_counts[0])];
        size_t n_cols = 1 + (size_t)(rnd() % MAX_COLS);
        static core_cell_t cells[MAX_COLS][MAX_ROWS];
        static Feast__Types__Value vals[MAX_COLS][MAX_ROWS];
        static Feast__Types__Value *val_ptrs[MAX_COLS][MAX_ROWS];
        static char texts[MAX_COLS][MAX_ROWS][302];
        static Google__Protobuf__Timestamp tss[MAX_COLS][MAX_ROWS];
        static Google__Protobuf__Timestamp *ts_ptrs[MAX_COLS][MAX_ROWS];
        static Feast__Serving__FieldStatus sts[MAX_COLS][MAX_ROWS];
        codec_feast_column_t cols[MAX_COLS];
        char names[MAX_COLS][16];
        char *name_ptrs[MAX_COLS];
        size_t name_lens[MAX_COLS];
        Feast__Serving__GetOnlineFeaturesResponse__FeatureVector vecs[MAX_COLS];
        Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *vec_ptrs[MAX_COLS];

        for (size_t c = 0; c < n_cols; c++) {
            /* Columns mostly share the previous column's timestamps (a view's features), or
             * share all but one row, or have their own. */
            int how = c == 0 ? 2 : (int)(rnd() % 3);
            size_t odd_row = n_rows > 0 ? (size_t)(rnd() % n_rows) : 0;
            for (size_t row = 0; row < n_rows; row++) {
                int64_t ts = how == 2 ? rnd_ts() : cells[c - 1][row].event_ts_us;
                if (how == 1 && row == odd_row)
                    ts = rnd_ts();
                cells[c][row] = rnd_cell(&vals[c][row], texts[c][row], ts);
                val_ptrs[c][row] = &vals[c][row];
                google__protobuf__timestamp__init(&tss[c][row]);
                tss[c][row].seconds = ts / 1000000;
                int64_t rem = ts % 1000000;
                if (rem < 0) {
                    rem += 1000000;
                    tss[c][row].seconds -= 1;
                }
                tss[c][row].nanos = (int32_t)(rem * 1000);
                ts_ptrs[c][row] = &tss[c][row];
                sts[c][row] = (Feast__Serving__FieldStatus)cells[c][row].status;
            }
            size_t nl = (size_t)snprintf(names[c], sizeof names[c], "f%zu_%u", c,
                                         (unsigned)(rnd() % 100000));
            name_ptrs[c] = names[c];
            name_lens[c] = nl;
            cols[c] = (codec_feast_column_t){names[c], nl, cells[c]};
            feast__serving__get_online_features_response__feature_vector__init(&vecs[c]);
            vecs[c].n_values = n_rows;
            vecs[c].values = val_ptrs[c];
            vecs[c].n_statuses = n_rows;
            vecs[c].statuses = sts[c];
            vecs[c].n_event_timestamps = n_rows;
            vecs[c].event_timestamps = ts_ptrs[c];
            vec_ptrs[c] = &vecs[c];
        }
        core_view_md_t views[MAX_VIEWS];
        Feast__Serving__FeatureViewMetadata view_pbs[MAX_VIEWS];
        Feast__Serving__FeatureViewMetadata *view_ptrs[MAX_VIEWS];
        size_t n_views = (size_t)(rnd() % (MAX_VIEWS + 1));
        for (size_t i = 0; i < n_views; i++) {
            views[i] = (core_view_md_t){i % 2 ? "driver_stats" : "v", (int32_t)(rnd() % 3)};
            feast__serving__feature_view_metadata__init(&view_pbs[i]);
            view_pbs[i].name = (char *)views[i].name;
            view_pbs[i].version = views[i].version;
            view_ptrs[i] = &view_pbs[i];
        }
        codec_feast_response_t r = {.n_rows = n_rows,
                                    .n_cols = n_cols,
                                    .cols = cols,
                                    .n_views = n_views,
                                    .views = views,
                                    .status = rnd() % 2 == 0};
        base_arena_t a;
        base_arena_init(&a, 1024);
        if (rnd() % 2 == 0) {
            /* The last columns' names pre-encoded, as the handler passes them. */
            size_t k = (size_t)(rnd() % (n_cols + 1));
            r.names_pre = encode_names(&a, (const char *const *)&name_ptrs[n_cols - k],
                                       &name_lens[n_cols - k], k, &r.names_pre_len);
            cr_assert_not_null(r.names_pre);
            r.n_names_pre = k;
        }
        size_t got_n;
        uint8_t *got = encode_bytes(&r, &got_n);

        Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
        fl.n_val = n_cols;
        fl.val = name_ptrs;
        Feast__Serving__GetOnlineFeaturesResponseMetadata md =
            FEAST__SERVING__GET_ONLINE_FEATURES_RESPONSE_METADATA__INIT;
        md.feature_names = &fl;
        md.n_feature_view_metadata = n_views;
        md.feature_view_metadata = view_ptrs;
        Feast__Serving__GetOnlineFeaturesResponse resp =
            FEAST__SERVING__GET_ONLINE_FEATURES_RESPONSE__INIT;
        resp.metadata = &md;
        resp.n_results = n_cols;
        resp.results = vec_ptrs;
        resp.status = r.status;
        size_t want_n = feast__serving__get_online_features_response__get_packed_size(&resp);
        uint8_t *want = malloc(want_n);
        feast__serving__get_online_features_response__pack(&resp, want);

        cr_assert_eq(got_n, want_n, "iteration %d: %zu bytes, protobuf-c %zu", iter, got_n, want_n);
        cr_assert_eq(memcmp(got, want, want_n), 0, "iteration %d: bytes differ", iter);
        free(got);
        free(want);
        base_arena_free(&a);
        for (size_t c = 0; c < n_cols; c++)
            free_cells(cells[c], n_rows);
    }
}
