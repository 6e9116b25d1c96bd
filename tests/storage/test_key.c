/* tests/storage/test_key.c - entity key encoding (storage/key.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

static const char keys_yaml[] =
    "project: p\n"
    "entities:\n"
    "  - {name: d64, join_keys: [{name: id, type: INT64}]}\n"
    "  - {name: d32, join_keys: [{name: id, type: INT32}]}\n"
    "  - {name: ds, join_keys: [{name: s, type: STRING}]}\n"
    "  - {name: db, join_keys: [{name: b, type: BYTES}]}\n"
    "  - {name: pair, join_keys: [{name: a, type: STRING}, {name: b, type: STRING}]}\n"
    "feature_views:\n"
    "  - {name: v64, version: 1, entities: [d64], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: v32, version: 1, entities: [d32], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: vs, version: 1, entities: [ds], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: vb, version: 1, entities: [db], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: vpair, version: 1, entities: [pair], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: vmix, version: 1, entities: [d32, ds], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: vmix2, version: 1, entities: [ds, d32], features: [{name: f, dtype: INT64}]}\n"
    "  - {name: none, version: 1, entities: [], features: [{name: f, dtype: INT64}]}\n";

static catalog_t *cat;

static void setup(void)
{
    cat = th_catalog(keys_yaml);
}

static void teardown(void)
{
    catalog_unref(cat);
}

TestSuite(key, .init = setup, .fini = teardown);

static int enc1(const char *view, catalog_value_t k, uint8_t *buf, size_t cap)
{
    return store_encode_key(th_view(cat, view, 1), &k, 1, buf, cap);
}

Test(key, int64_key_is_eight_big_endian_bytes_with_the_sign_flipped)
{
    uint8_t b[STORE_MAX_KEY];
    cr_assert_eq(enc1("v64", th_i64(1), b, sizeof b), 8);
    const uint8_t want[] = {0x80, 0, 0, 0, 0, 0, 0, 1};
    cr_assert_arr_eq(b, want, 8);
    cr_assert_eq(enc1("v64", th_i64(-1), b, sizeof b), 8);
    const uint8_t want_neg[] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_arr_eq(b, want_neg, 8);
}

Test(key, int32_and_int64_values_are_the_same_int64_entity)
{
    uint8_t a[STORE_MAX_KEY], b[STORE_MAX_KEY];
    catalog_value_t k32 = {.type = CATALOG_DTYPE_INT32, .u.i32 = 1001};
    cr_assert_eq(enc1("v64", k32, a, sizeof a), 8);
    cr_assert_eq(enc1("v64", th_i64(1001), b, sizeof b), 8);
    cr_assert_arr_eq(a, b, 8);
}

Test(key, int64_values_in_range_are_coerced_to_an_int32_key)
{
    uint8_t a[STORE_MAX_KEY], b[STORE_MAX_KEY];
    catalog_value_t k32 = {.type = CATALOG_DTYPE_INT32, .u.i32 = -7};
    cr_assert_eq(enc1("v32", k32, a, sizeof a), 4);
    cr_assert_eq(enc1("v32", th_i64(-7), b, sizeof b), 4);
    cr_assert_arr_eq(a, b, 4);
}

Test(key, int64_values_outside_int32_range_are_erange)
{
    uint8_t b[STORE_MAX_KEY];
    cr_assert_eq(enc1("v32", th_i64((int64_t)INT32_MAX + 1), b, sizeof b), -ERANGE);
    cr_assert_eq(enc1("v32", th_i64((int64_t)INT32_MIN - 1), b, sizeof b), -ERANGE);
    cr_assert_eq(enc1("v32", th_i64(INT32_MIN), b, sizeof b), 4);
}

Test(key, integer_keys_sort_like_the_integers)
{
    const int64_t xs[] = {INT64_MIN, -1000000, -2, -1, 0, 1, 2, 255, 256, 1000000, INT64_MAX};
    uint8_t prev[8], cur[8];
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        cr_assert_eq(enc1("v64", th_i64(xs[i]), cur, sizeof cur), 8);
        if (i > 0)
            cr_assert_lt(memcmp(prev, cur, 8), 0, "%ld !< %ld", (long)xs[i - 1], (long)xs[i]);
        memcpy(prev, cur, 8);
    }
    const int32_t ys[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) {
        catalog_value_t k = {.type = CATALOG_DTYPE_INT32, .u.i32 = ys[i]};
        cr_assert_eq(enc1("v32", k, cur, sizeof cur), 4);
        if (i > 0)
            cr_assert_lt(memcmp(prev, cur, 4), 0);
        memcpy(prev, cur, 4);
    }
}

Test(key, string_and_bytes_keys_are_length_prefixed)
{
    uint8_t b[STORE_MAX_KEY];
    cr_assert_eq(enc1("vs", th_str("ab"), b, sizeof b), 4);
    cr_assert_arr_eq(b, ((const uint8_t[]){0, 2, 'a', 'b'}), 4);
    catalog_value_t bytes = {.type = CATALOG_DTYPE_BYTES, .u.bytes = {(const uint8_t *)"\0\1", 2}};
    cr_assert_eq(enc1("vb", bytes, b, sizeof b), 4);
    cr_assert_arr_eq(b, ((const uint8_t[]){0, 2, 0, 1}), 4);
    cr_assert_eq(enc1("vs", th_str(""), b, sizeof b), 2);
}

Test(key, multi_key_entities_do_not_collide_when_their_strings_split_differently)
{
    uint8_t a[STORE_MAX_KEY], b[STORE_MAX_KEY];
    const catalog_view_t *v = th_view(cat, "vpair", 1);
    catalog_value_t k1[] = {th_str("ab"), th_str("c")};
    catalog_value_t k2[] = {th_str("a"), th_str("bc")};
    int n1 = store_encode_key(v, k1, 2, a, sizeof a);
    int n2 = store_encode_key(v, k2, 2, b, sizeof b);
    cr_assert_eq(n1, 7);
    cr_assert_eq(n2, 7);
    cr_assert_neq(memcmp(a, b, 7), 0);
}

Test(key, mixed_join_key_types_are_encoded_in_catalog_order)
{
    uint8_t b[STORE_MAX_KEY];
    const catalog_view_t *v = th_view(cat, "vmix", 1);
    catalog_value_t k[] = {th_i64(5), th_str("x")};
    cr_assert_eq(store_encode_key(v, k, 2, b, sizeof b), 7);
    cr_assert_arr_eq(b, ((const uint8_t[]){0x80, 0, 0, 5, 0, 1, 'x'}), 7);
}

Test(key, a_wrong_type_or_count_is_einval)
{
    uint8_t b[STORE_MAX_KEY];
    cr_assert_eq(enc1("v64", th_str("1001"), b, sizeof b), -EINVAL);
    cr_assert_eq(enc1("vs", th_i64(1), b, sizeof b), -EINVAL);
    catalog_value_t bytes = {.type = CATALOG_DTYPE_BYTES, .u.bytes = {(const uint8_t *)"x", 1}};
    cr_assert_eq(enc1("vs", bytes, b, sizeof b), -EINVAL);
    catalog_value_t k[] = {th_i64(1), th_i64(2)};
    cr_assert_eq(store_encode_key(th_view(cat, "v64", 1), k, 2, b, sizeof b), -EINVAL);
    cr_assert_eq(store_encode_key(th_view(cat, "v64", 1), k, 0, b, sizeof b), -EINVAL);
}

Test(key, keys_longer_than_store_max_key_are_enametoolong)
{
    static char big[STORE_MAX_KEY + 10];
    memset(big, 'x', sizeof big - 1);
    uint8_t b[STORE_MAX_KEY + 64];
    cr_assert_eq(enc1("vs", th_str(big), b, sizeof b), -ENAMETOOLONG);
    big[STORE_MAX_KEY - 2] = '\0'; /* 2-byte prefix + 509 bytes = exactly the limit */
    cr_assert_eq(enc1("vs", th_str(big), b, sizeof b), STORE_MAX_KEY);
    big[STORE_MAX_KEY - 2] = 'x';
    big[STORE_MAX_KEY - 1] = '\0';
    cr_assert_eq(enc1("vs", th_str(big), b, sizeof b), -ENAMETOOLONG);
    cr_assert_eq(enc1("v64", th_i64(1), b, 4), -ENOSPC);
    /* The limit holds for a fixed-width key after a string too: 2 + 505 + 4 is exactly it. */
    memset(big, 'x', sizeof big - 1);
    big[505] = '\0';
    catalog_value_t two[] = {th_str(big), {.type = CATALOG_DTYPE_INT32, .u.i32 = 7}};
    const catalog_view_t *mix2 = th_view(cat, "vmix2", 1);
    cr_assert_eq(store_encode_key(mix2, two, 2, b, sizeof b), STORE_MAX_KEY);
    big[505] = 'x';
    big[506] = '\0';
    two[0] = th_str(big);
    cr_assert_eq(store_encode_key(mix2, two, 2, b, sizeof b), -ENAMETOOLONG);
}

Test(key, an_entityless_view_has_one_fixed_key)
{
    uint8_t a[4], b[4];
    const catalog_view_t *v = th_view(cat, "none", 1);
    cr_assert_eq(store_encode_key(v, NULL, 0, a, sizeof a), 1);
    cr_assert_eq(store_encode_key(v, NULL, 0, b, sizeof b), 1);
    cr_assert_eq(a[0], b[0]);
}

/* LMDB's default order for keys: memcmp over the common length, then the shorter one first. */
static int reference_cmp(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = n == 0 ? 0 : memcmp(a->mv_data, b->mv_data, n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size ? 1 : 0;
}

Test(key, the_key_comparator_orders_exactly_like_lmdbs_default)
{
    /* Databases written before the comparator existed (and any process that opens them without
     * it) rely on the two orders being identical. Keys share long prefixes and differ in a byte
     * anywhere, including the high bit, across the 8-byte steps. */
    uint8_t a[40], b[40];
    unsigned seed = 7;
    for (int iter = 0; iter < 200000; iter++) {
        size_t na = (size_t)(rand_r(&seed) % 40), nb = (size_t)(rand_r(&seed) % 40);
        if (iter % 4 == 0)
            na = nb = 8; /* one INT64 join key: the comparator's fast path */
        for (size_t i = 0; i < sizeof a; i++)
            a[i] = b[i] = (uint8_t)(rand_r(&seed) % 4 == 0 ? rand_r(&seed) : 0x80);
        /* Up to three differing bytes, so that two can fall in one 8-byte step (a comparison
         * of little-endian words would then disagree with memcmp). */
        int flips = rand_r(&seed) % 4;
        for (int f = 0; f < flips && na > 0; f++)
            b[rand_r(&seed) % na] ^= (uint8_t)(1u << (rand_r(&seed) % 8));
        MDB_val va = {na, a}, vb = {nb, b};
        int want = reference_cmp(&va, &vb);
        cr_assert_eq(store__key_cmp(&va, &vb), want, "iter %d: %zu vs %zu bytes", iter, na, nb);
        cr_assert_eq(store__key_cmp(&vb, &va), -want, "iter %d reversed", iter);
    }
    MDB_val empty = {0, a};
    cr_assert_eq(store__key_cmp(&empty, &empty), 0);
}

Test(key, lookups_and_appends_use_the_key_comparator)
{
    /* The comparator is installed on the view databases the store opens. */
    char *dir = th_tmpdir();
    catalog_t *c = th_catalog(keys_yaml);
    store_t *s = th_open_applied(dir, c);
    const store__view_t *e = NULL;
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), 0);
    for (size_t i = 0; i < s->views->n; i++) {
        e = &s->views->items[i];
        MDB_val x = {1, "a"}, y = {1, "b"};
        /* mdb_cmp() uses the database's comparator: ours gives exactly -1. */
        cr_assert_eq(mdb_cmp(txn, e->dbi, &x, &y), -1, "view %s", e->key);
    }
    cr_assert_not_null(e);
    mdb_txn_abort(txn);
    store_close(s);
    catalog_unref(c);
    th_rmrf(dir);
    free(dir);
}

/* The decode undoes the encode for every join-key type, and refuses what no encode makes:
 * short, long, or cut inside a length-prefixed string; and the entityless key is one 0 byte. */
Test(key, decoding_undoes_encoding_and_refuses_what_no_encoding_makes)
{
    uint8_t b[STORE_MAX_KEY];
    catalog_value_t out[2];
    const catalog_view_t *v32 = th_view(cat, "v32", 1), *vb = th_view(cat, "vb", 1),
                         *mix = th_view(cat, "vmix", 1), *none = th_view(cat, "none", 1);
    catalog_value_t k32 = {.type = CATALOG_DTYPE_INT32, .u.i32 = -7};
    cr_assert_eq(store_encode_key(v32, &k32, 1, b, sizeof b), 4);
    cr_assert_eq(store_decode_key(v32, b, 4, out), 0);
    cr_assert_eq(out[0].type, CATALOG_DTYPE_INT32);
    cr_assert_eq(out[0].u.i32, -7);
    cr_assert_eq(store_decode_key(v32, b, 3, out), -EINVAL, "short");
    cr_assert_eq(store_decode_key(v32, b, 5, out), -EINVAL, "a byte left over");
    catalog_value_t kb = {.type = CATALOG_DTYPE_BYTES, .u.bytes = {(const uint8_t *)"\0\xff", 2}};
    cr_assert_eq(store_encode_key(vb, &kb, 1, b, sizeof b), 4);
    cr_assert_eq(store_decode_key(vb, b, 4, out), 0);
    cr_assert_eq(out[0].type, CATALOG_DTYPE_BYTES);
    cr_assert_eq(out[0].u.bytes.len, 2);
    cr_assert_arr_eq(out[0].u.bytes.data, "\0\xff", 2);
    cr_assert_eq(store_decode_key(vb, b, 3, out), -EINVAL, "cut inside the bytes");
    cr_assert_eq(store_decode_key(vb, b, 1, out), -EINVAL, "cut inside the length");
    catalog_value_t km[] = {{.type = CATALOG_DTYPE_INT32, .u.i32 = 9}, th_str("ab")};
    cr_assert_eq(store_encode_key(mix, km, 2, b, sizeof b), 8);
    cr_assert_eq(store_decode_key(mix, b, 8, out), 0);
    cr_assert_eq(out[0].u.i32, 9);
    cr_assert_eq(out[1].u.bytes.len, 2);
    cr_assert_arr_eq(out[1].u.bytes.data, "ab", 2);
    cr_assert_eq(store_decode_key(mix, b, 5, out), -EINVAL);
    uint8_t z = 0, one = 1;
    cr_assert_eq(store_decode_key(none, &z, 1, out), 0);
    cr_assert_eq(store_decode_key(none, &one, 1, out), -EINVAL);
    cr_assert_eq(store_decode_key(none, &z, 0, out), -EINVAL);
}

/* What an encode refuses besides a wrong type: no view, keys missing, a buffer too small (also
 * for the entityless key), bytes that claim a length but have no data. */
Test(key, an_encode_without_room_view_or_data_is_refused)
{
    uint8_t b[STORE_MAX_KEY];
    catalog_value_t k = th_i64(1);
    cr_assert_eq(store_encode_key(NULL, &k, 1, b, sizeof b), -EINVAL);
    cr_assert_eq(store_encode_key(th_view(cat, "v64", 1), NULL, 1, b, sizeof b), -EINVAL);
    cr_assert_eq(store_encode_key(th_view(cat, "none", 1), NULL, 0, b, 0), -ENOSPC);
    cr_assert_eq(enc1("vs", th_str("abcdef"), b, 4), -ENOSPC, "the string past the buffer");
    cr_assert_eq(enc1("vs", th_str("abcdef"), b, 1), -ENOSPC, "the length past the buffer");
    catalog_value_t nodata = {.type = CATALOG_DTYPE_STRING, .u.bytes = {NULL, 3}};
    cr_assert_eq(enc1("vs", nodata, b, sizeof b), -EINVAL);
    catalog_value_t i32 = {.type = CATALOG_DTYPE_INT32, .u.i32 = 5};
    cr_assert_eq(enc1("v64", i32, b, sizeof b), 8, "an INT32 value for an INT64 key");
    cr_assert_eq(enc1("v32", th_str("5"), b, sizeof b), -EINVAL);
}
