/* tests/repl/test_msg.c - the log's message form (repl/msg.c): round trips and hostile bytes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"
#include "tests/storage/helpers.h"

static catalog_t *cat;
static const catalog_view_t *fv;

static void setup(void)
{
    cat = th_catalog(th_yaml);
    fv = th_view(cat, "fv", 1);
}

static void teardown(void)
{
    catalog_unref(cat);
}

TestSuite(msg, .init = setup, .fini = teardown);

/* Two rows of three features (one a string, one a null) and a delete of one row. */
static store_wire_t *sample(void)
{
    static catalog_value_t ids[2], rate[2], trips[2], label[2];
    static const catalog_value_t *keys[1], *cols[3];
    static uint32_t idx[3] = {2, 0, 1};
    static int64_t ts[2] = {1000, 2000}, del_ts = 3000;
    ids[0] = th_i64(7);
    ids[1] = th_i64(-8);
    rate[0] = th_f32(0.5f);
    rate[1] = th_f32(0.25f);
    trips[0] = th_null();
    trips[1] = th_i64(12345678901ll);
    label[0] = th_str("seven");
    label[1] = th_str("");
    keys[0] = ids;
    cols[0] = label;
    cols[1] = rate;
    cols[2] = trips;
    store_batch_t b[2] = {
        {.view = fv,
         .n_rows = 2,
         .keys = keys,
         .n_features = 3,
         .feature_idx = idx,
         .values = cols,
         .event_ts_us = ts},
        {.view = fv, .op = STORE_OP_DELETE, .n_rows = 1, .keys = keys, .event_ts_us = &del_ts}};
    store_wire_t *w = NULL;
    store_apply_result_t res;
    cr_assert_eq(store_wire_begin(NULL, 0, b, 2, &w, &res), 0, "%s", res.error);
    return w;
}

static void assert_same_batch(const store_wire_batch_t *a, const store_wire_batch_t *b)
{
    cr_assert_eq(a->view, b->view);
    cr_assert_eq(a->op, b->op);
    cr_assert_eq(a->n_rows, b->n_rows);
    cr_assert_eq(a->n_features, b->n_features);
    for (size_t j = 0; j < a->n_features; j++)
        cr_assert_eq(a->feature_idx[j], b->feature_idx[j]);
    for (size_t r = 0; r < a->n_rows; r++) {
        cr_assert_eq(a->key_lens[r], b->key_lens[r]);
        cr_assert_eq(memcmp(a->keys[r], b->keys[r], a->key_lens[r]), 0);
        cr_assert_eq(a->event_ts_us[r], b->event_ts_us[r]);
        for (size_t j = 0; j < a->n_features; j++) {
            size_t x = r * a->n_features + j;
            cr_assert_eq(a->value_lens[x], b->value_lens[x]);
            cr_assert_eq(memcmp(a->values[x], b->values[x], a->value_lens[x]), 0);
        }
    }
}

Test(msg, a_write_decodes_to_the_same_batches_against_the_same_catalog)
{
    store_wire_t *w = sample();
    uint8_t *p = NULL;
    size_t len = 0;
    cr_assert_eq(repl_msg_encode_write(w, &p, &len), 0);
    cr_assert_eq(repl_msg_kind(p, len), REPL_MSG_WRITE);
    repl_msg_write_t m;
    char err[256];
    cr_assert_eq(repl_msg_decode_write(p, len, cat, &m, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.n_batches, 2);
    assert_same_batch(&m.batches[0], &w->batches[0]);
    assert_same_batch(&m.batches[1], &w->batches[1]);
    repl_msg_write_free(&m);

    /* Another catalog with the same view: features are matched by name, not position. */
    catalog_t *other = th_catalog(th_yaml);
    cr_assert_eq(repl_msg_decode_write(p, len, other, &m, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.batches[0].view, th_view(other, "fv", 1));
    repl_msg_write_free(&m);
    catalog_unref(other);
    free(p);
    store_wire_end(w);
}

Test(msg, a_view_or_feature_the_catalog_lacks_is_enoent_naming_it)
{
    store_wire_t *w = sample();
    uint8_t *p = NULL;
    size_t len = 0;
    cr_assert_eq(repl_msg_encode_write(w, &p, &len), 0);
    store_wire_end(w);
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s", th_yaml);
    char *at = strstr(yaml, "{name: label");
    cr_assert_not_null(at);
    memcpy(at, "{name: lbl__", 12);
    catalog_t *renamed = th_catalog(yaml);
    repl_msg_write_t m;
    char err[256] = "";
    cr_assert_eq(repl_msg_decode_write(p, len, renamed, &m, err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "label") != NULL, "%s", err);
    catalog_unref(renamed);

    snprintf(yaml, sizeof yaml, "%s", th_yaml);
    at = strstr(yaml, "name: fv\n");
    memcpy(at, "name: fw\n", 9);
    catalog_t *noview = th_catalog(yaml);
    cr_assert_eq(repl_msg_decode_write(p, len, noview, &m, err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "fv@v1") != NULL, "%s", err);
    catalog_unref(noview);
    free(p);
}

Test(msg, every_truncation_and_byte_flip_is_refused_or_decodes_safely)
{
    store_wire_t *w = sample();
    uint8_t *p = NULL;
    size_t len = 0;
    cr_assert_eq(repl_msg_encode_write(w, &p, &len), 0);
    store_wire_end(w);
    repl_msg_write_t m;
    char err[256];
    for (size_t n = 0; n < len; n++) {
        uint8_t *q = malloc(n + 1);
        memcpy(q, p, n);
        cr_assert_lt(repl_msg_decode_write(q, n, cat, &m, err, sizeof err), 0, "prefix %zu", n);
        free(q);
    }
    /* Any single byte changed: refused, or decoded within the message's bounds (ASan checks
     * the reads). */
    uint8_t *q = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(q, p, len);
            q[i] ^= (uint8_t)(1u << bit);
            if (repl_msg_decode_write(q, len, cat, &m, err, sizeof err) == 0) {
                for (size_t b = 0; b < m.n_batches; b++)
                    for (size_t r = 0; r < m.batches[b].n_rows; r++)
                        cr_assert_leq(m.batches[b].keys[r] + m.batches[b].key_lens[r], q + len);
                repl_msg_write_free(&m);
            }
        }
    }
    free(q);
    free(p);
}

Test(msg, hostile_counts_are_refused_before_anything_is_allocated_for_them)
{
    uint8_t p[64] = {'F', 'S', 'R', 1, REPL_MSG_WRITE, 0xff, 0xff, 0xff, 0xff};
    repl_msg_write_t m;
    char err[256];
    cr_assert_eq(repl_msg_decode_write(p, sizeof p, cat, &m, err, sizeof err), -EPROTO);
    /* One batch claiming 2^32-1 features and rows. */
    uint8_t q[] = {'F', 'S', 'R', 1, REPL_MSG_WRITE, 1,    0,    0,   0, 0, 2, 0, 'f', 'v',
                   1,   0,   0,   0, 0xff,           0xff, 0xff, 0xff};
    cr_assert_eq(repl_msg_decode_write(q, sizeof q, cat, &m, err, sizeof err), -EPROTO);
}

Test(msg, kinds_and_versions)
{
    const uint8_t newer[] = {'F', 'S', 'R', 2, REPL_MSG_WRITE, 0, 0, 0, 0};
    const uint8_t other[] = {'{', '"', 'a', '"', ':', '1', '}'};
    const uint8_t empty[] = {'F', 'S', 'R', 1, REPL_MSG_WRITE, 0, 0, 0, 0};
    cr_assert_eq(repl_msg_kind(newer, sizeof newer), -EPROTO);
    cr_assert_eq(repl_msg_kind(other, sizeof other), -EPROTO);
    cr_assert_eq(repl_msg_kind(empty, 3), -EPROTO);
    repl_msg_write_t m;
    cr_assert_eq(repl_msg_decode_write(empty, sizeof empty, cat, &m, NULL, 0), 0);
    cr_assert_eq(m.n_batches, 0);
    repl_msg_write_free(&m);
}

Test(msg, a_catalog_round_trips_to_the_same_digest)
{
    uint8_t *p = NULL;
    size_t len = 0;
    cr_assert_eq(repl_msg_encode_catalog(cat, &p, &len), 0);
    cr_assert_eq(repl_msg_kind(p, len), REPL_MSG_CATALOG);
    catalog_t *back = NULL;
    char err[256];
    cr_assert_eq(repl_msg_decode_catalog(p, len, &back, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(catalog_digest(back), catalog_digest(cat));
    catalog_unref(back);
    /* A broken YAML is refused with its line. */
    p[len - 3] = ':';
    p[10] = '[';
    cr_assert_eq(repl_msg_decode_catalog(p, len, &back, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "line") != NULL, "%s", err);
    free(p);
}

Test(msg, a_gc_round_trips_and_a_malformed_one_is_refused)
{
    uint8_t *p = NULL;
    size_t len = 0;
    const int64_t now = 1700000000123456ll, keep = 7ll * 86400 * 1000000;
    cr_assert_eq(repl_msg_encode_gc(now, keep, &p, &len), 0);
    cr_assert_eq(repl_msg_kind(p, len), REPL_MSG_GC);
    int64_t n = 0, k = 0;
    cr_assert_eq(repl_msg_decode_gc(p, len, &n, &k), 0);
    cr_assert_eq(n, now);
    cr_assert_eq(k, keep);
    cr_assert_eq(repl_msg_decode_gc(p, len - 1, &n, &k), -EPROTO, "truncated");
    uint8_t longer[64];
    memcpy(longer, p, len);
    longer[len] = 0;
    cr_assert_eq(repl_msg_decode_gc(longer, len + 1, &n, &k), -EPROTO, "trailing bytes");
    p[len - 1] = 0x80; /* the retention's sign bit */
    cr_assert_eq(repl_msg_decode_gc(p, len, &n, &k), -EPROTO, "a negative retention");
    free(p);
    /* Fields whose difference could overflow are refused at both ends. */
    cr_assert(repl_msg_gc_valid(0, 0));
    cr_assert(!repl_msg_gc_valid(-1, keep));
    cr_assert(!repl_msg_gc_valid(INT64_MAX, keep));
    cr_assert(!repl_msg_gc_valid(now, INT64_MAX));
    cr_assert_eq(repl_msg_encode_gc(INT64_MIN, keep, &p, &len), 0);
    cr_assert_eq(repl_msg_decode_gc(p, len, &n, &k), -EPROTO, "a time before 1970");
    repl_msg_write_t m;
    cr_assert_eq(repl_msg_decode_write(p, len, cat, &m, NULL, 0), -EPROTO, "not a write");
    free(p);
}
