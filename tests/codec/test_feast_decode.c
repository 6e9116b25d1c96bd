/* tests/codec/test_feast_decode.c - the hand-written GetOnlineFeaturesRequest decoder. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "tests/codec/decode_equiv.h"

#include "feast/serving/ServingService.pb-c.h"

static base_arena_t arena;

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(feast_decode, .init = setup, .fini = teardown);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Strings the generator draws from: plain, empty, UTF-8, and two the general path refuses. */
static const char *const words[] = {"id",        "v0:f1", "v1@v2:f0", "",         "héllo",
                                    "driver_id", "svc",   "\xff\xfe", "a\xc0\x80"};
#define N_WORDS (sizeof words / sizeof words[0])

/* One random Value: mostly the decoder's four types, sometimes anything else. */
static void random_value(Feast__Types__Value *v, Feast__Types__Int64List *list, int64_t *items)
{
    feast__types__value__init(v);
    switch (rnd() % 12) {
    case 0:
    case 1:
        v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
        v->int64_val = (int64_t)rnd() >> (rnd() % 64);
        break;
    case 2:
    case 3:
        v->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
        v->int32_val = (int32_t)rnd() >> (rnd() % 32);
        break;
    case 4:
        v->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
        v->string_val = (char *)words[rnd() % N_WORDS];
        break;
    case 5:
        v->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
        v->bytes_val.data = (uint8_t *)"\0\1\2\3";
        v->bytes_val.len = rnd() % 5;
        break;
    case 6:
        v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
        v->double_val = rnd() % 2 ? 1.5 : -0.0;
        break;
    case 9:
        v->val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
        v->float_val = 0.25f;
        break;
    case 10:
        v->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
        v->bool_val = rnd() % 2;
        break;
    case 7:
        v->val_case = FEAST__TYPES__VALUE__VAL_NULL_VAL;
        break;
    case 8:
        feast__types__int64_list__init(list);
        items[0] = 1;
        items[1] = -2;
        list->n_val = 2;
        list->val = items;
        v->val_case = FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL;
        v->int64_list_val = list;
        break;
    default:
        break; /* NOT_SET */
    }
}

/* A random request, packed by protobuf-c into buf (which holds at least 64 KiB). */
static size_t random_request(uint8_t *buf)
{
    Feast__Serving__GetOnlineFeaturesRequest rq = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
    Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
    char *feats[8];
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry entries[4], *ep[4];
    Feast__Types__RepeatedValue rvs[4];
    Feast__Types__Value vals[4][5], *vp[4][5];
    Feast__Types__Int64List lists[4][5];
    int64_t items[4][5][2];
    Feast__Serving__GetOnlineFeaturesRequest__RequestContextEntry ctx, *ctxp = &ctx;
    Feast__Types__RepeatedValue ctx_rv = FEAST__TYPES__REPEATED_VALUE__INIT;
    Feast__Types__Value ctx_vals[3], *ctx_vp[3];
    Feast__Types__Int64List ctx_lists[3];
    int64_t ctx_items[3][2];

    switch (rnd() % 3) {
    case 0:
        rq.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
        rq.feature_service = (char *)words[rnd() % N_WORDS];
        break;
    case 1:
        fl.n_val = rnd() % 8;
        for (size_t i = 0; i < fl.n_val; i++)
            feats[i] = (char *)words[rnd() % N_WORDS];
        fl.val = feats;
        rq.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
        rq.features = &fl;
        break;
    default:
        break;
    }
    rq.n_entities = rnd() % 4;
    for (size_t i = 0; i < rq.n_entities; i++) {
        feast__serving__get_online_features_request__entities_entry__init(&entries[i]);
        feast__types__repeated_value__init(&rvs[i]);
        entries[i].key = (char *)words[rnd() % N_WORDS];
        entries[i].value = rnd() % 16 == 0 ? NULL : &rvs[i];
        rvs[i].n_val = rnd() % 5;
        for (size_t k = 0; k < rvs[i].n_val; k++) {
            random_value(&vals[i][k], &lists[i][k], items[i][k]);
            vp[i][k] = &vals[i][k];
        }
        rvs[i].val = vp[i];
        ep[i] = &entries[i];
    }
    rq.entities = ep;
    rq.full_feature_names = rnd() % 2;
    rq.include_feature_view_version_metadata = rnd() % 2;
    if (rnd() % 4 == 0) {
        feast__serving__get_online_features_request__request_context_entry__init(&ctx);
        ctx.key = "ctx";
        ctx.value = &ctx_rv;
        ctx_rv.n_val = rnd() % 4;
        for (size_t k = 0; k < ctx_rv.n_val; k++) {
            random_value(&ctx_vals[k], &ctx_lists[k], ctx_items[k]);
            ctx_vp[k] = &ctx_vals[k];
        }
        ctx_rv.val = ctx_vp;
        rq.n_request_context = 1;
        rq.request_context = &ctxp;
    }
    return feast__serving__get_online_features_request__pack(&rq, buf);
}

/* Damage of the kinds protobuf-c must notice or resolve: flipped bits, cut ends, a field given
 * twice, an overlong varint. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    if (len == 0)
        return len;
    switch (rnd() % 5) {
    case 0:
        buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        return len;
    case 1:
        return rnd() % len;
    case 2:
        if (2 * len <= cap) {
            memcpy(buf + len, buf, len);
            return 2 * len;
        }
        return len;
    case 3:
        /* An overlong varint in place of one byte below 0x80. */
        for (size_t i = rnd() % len; i < len; i++) {
            if (buf[i] < 0x80 && len + 1 <= cap) {
                memmove(buf + i + 2, buf + i + 1, len - i - 1);
                buf[i + 1] = 0;
                buf[i] |= 0x80;
                return len + 1;
            }
        }
        return len;
    default:
        buf[rnd() % len] = (uint8_t)rnd();
        return len;
    }
}

Test(feast_decode, agrees_with_protobuf_c_on_generated_and_damaged_requests)
{
    static uint8_t buf[1 << 16];
    size_t accepted = 0, declined = 0;
    char why[256];
    for (int i = 0; i < 20000; i++) {
        size_t len = random_request(buf);
        if (i % 2 == 1) {
            int rounds = 1 + (int)(rnd() % 3);
            for (int r = 0; r < rounds; r++)
                len = mutate(buf, len, sizeof buf);
        }
        int rc = decode_equiv(buf, len, &arena, why, sizeof why);
        cr_assert_neq(rc, -1, "input %d: %s", i, why);
        if (rc == 1)
            accepted++;
        else
            declined++;
        base_arena_reset(&arena);
    }
    /* Both sides must be exercised: most clean requests are of the usual shape. */
    cr_assert_gt(accepted, 2000, "only %zu of 20000 accepted", accepted);
    cr_assert_gt(declined, 2000, "only %zu of 20000 declined", declined);
}

static int decode_hex(const char *hex, codec_read_request_t *rr)
{
    uint8_t b[256];
    size_t n = 0;
    for (; hex[0] != '\0' && hex[1] != '\0'; hex += 2) {
        unsigned x;
        sscanf(hex, "%2x", &x);
        b[n++] = (uint8_t)x;
    }
    /* The decoder points into its input: keep a copy alive in the arena. */
    uint8_t *copy = base_arena_alloc(&arena, n + 1);
    memcpy(copy, b, n);
    int rc = codec_feast_decode_read(&arena, copy, n, rr);
    if (rc == 0 && rr->list.kind == CORE_LIST_FEATURES)
        rc = codec_feast_decode_features(&arena, &rr->list);
    return rc;
}

Test(feast_decode, reads_the_usual_request_without_copying_values)
{
    codec_read_request_t rr;
    /* features { val: "v0:f1" } entities { key: "id" value { val { int64_val: 7 } } }
     * full_feature_names: true */
    cr_assert_eq(decode_hex("12070a0576303a6631"
                            "1a0a0a0269641204"
                            "0a022007"
                            "2001",
                            &rr),
                 0);
    cr_assert_eq(rr.list.kind, CORE_LIST_FEATURES);
    cr_assert_eq(rr.list.n_refs, 1);
    cr_assert_eq(rr.list.ref_lens[0], 5);
    cr_assert_eq(memcmp(rr.list.refs[0], "v0:f1", 5), 0);
    cr_assert(rr.list.full_names);
    cr_assert_not(rr.include_md);
    cr_assert_eq(rr.n_entities, 1);
    cr_assert_str_eq(rr.entities[0].name, "id");
    cr_assert_eq(rr.entities[0].n_vals, 1);
    cr_assert_eq(rr.entities[0].vals[0].type, CATALOG_DTYPE_INT64);
    cr_assert_eq(rr.entities[0].vals[0].u.i64, 7);
    cr_assert_eq(rr.entities[0].wire[0].len, 2);
}

Test(feast_decode, a_feature_list_is_only_noted_until_its_second_step)
{
    /* features { val: ["v0:f1", "v0:f2"] } full_feature_names: true */
    static const uint8_t req[] = {0x12, 0x0e, 0x0a, 0x05, 'v', '0', ':', 'f',  '1',
                                  0x0a, 0x05, 'v',  '0',  ':', 'f', '2', 0x20, 0x01};
    codec_read_request_t rr;
    cr_assert_eq(codec_feast_decode_read(&arena, req, sizeof req, &rr), 0);
    cr_assert_eq(rr.list.kind, CORE_LIST_FEATURES);
    cr_assert_null(rr.list.refs);
    cr_assert_eq(rr.list.n_refs, 0);
    cr_assert_eq(rr.list.key, req + 2);
    cr_assert_eq(rr.list.key_len, 14);
    cr_assert(rr.list.full_names);
    cr_assert_eq(codec_feast_decode_features(&arena, &rr.list), 0);
    cr_assert_eq(rr.list.n_refs, 2);
    cr_assert_eq(rr.list.ref_lens[1], 5);
    cr_assert_eq(memcmp(rr.list.refs[1], "v0:f2", 5), 0);
}

Test(feast_decode, a_malformed_feature_list_is_declined_by_the_second_step)
{
    codec_read_request_t rr;
    /* A non-minimal length (protobuf-c reads it; the bytes would not be the list's one form). */
    static const uint8_t overlong[] = {0x12, 0x08, 0x0a, 0x86, 0x00, 'v', '0', ':', 'f', '1'};
    cr_assert_eq(codec_feast_decode_read(&arena, overlong, sizeof overlong, &rr), 0);
    cr_assert_eq(codec_feast_decode_features(&arena, &rr.list), 1);
    /* Field 2 inside the list, a NUL in a reference, invalid UTF-8, a truncated string. */
    static const uint8_t field2[] = {0x12, 0x03, 0x12, 0x01, 'a'};
    static const uint8_t nul[] = {0x12, 0x03, 0x0a, 0x01, 0x00};
    static const uint8_t utf8[] = {0x12, 0x03, 0x0a, 0x01, 0xff};
    static const uint8_t cut[] = {0x12, 0x03, 0x0a, 0x05, 'a'};
    const uint8_t *bad[] = {field2, nul, utf8, cut};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(codec_feast_decode_read(&arena, bad[i], 5, &rr), 0, "case %zu", i);
        cr_assert_eq(codec_feast_decode_features(&arena, &rr.list), 1, "case %zu", i);
    }
    /* An empty list is well formed. */
    static const uint8_t empty[] = {0x12, 0x00};
    cr_assert_eq(codec_feast_decode_read(&arena, empty, sizeof empty, &rr), 0);
    cr_assert_eq(codec_feast_decode_features(&arena, &rr.list), 0);
    cr_assert_eq(rr.list.n_refs, 0);
    cr_assert_not_null(rr.list.refs);
}

Test(feast_decode, declines_what_protobuf_c_must_decide)
{
    codec_read_request_t rr;
    /* feature_service twice (protobuf-c keeps the last). */
    cr_assert_eq(decode_hex("0a01610a0162", &rr), 1);
    /* An overlong int64 varint (protobuf-c reads it; packed again it would differ). */
    cr_assert_eq(decode_hex("1a0b0a0269641205"
                            "0a03208000",
                            &rr),
                 1);
    /* A double entity value. */
    cr_assert_eq(decode_hex("1a110a026964120b0a09290000000000000000", &rr), 1);
    /* A request_context entry without its key. */
    cr_assert_eq(decode_hex("2a00", &rr), 1);
    /* A bool request value other than 0 or 1 (protobuf-c reads true; packed again it is 1). */
    cr_assert_eq(decode_hex("2a090a01781204"
                            "0a023802",
                            &rr),
                 1);
    /* ... while 0 and 1 are read by hand, with a double and a float. */
    cr_assert_eq(decode_hex("2a090a01781204"
                            "0a023801",
                            &rr),
                 0);
    cr_assert_eq(rr.n_request, 1);
    cr_assert_eq(rr.request[0].vals[0].type, CATALOG_DTYPE_BOOL);
    cr_assert(rr.request[0].vals[0].u.b);
    cr_assert_eq(decode_hex("2a170a01791212"
                            "0a0929000000000000f83f0a05350000803e",
                            &rr),
                 0);
    cr_assert_eq(rr.request[0].n_vals, 2);
    cr_assert_eq(rr.request[0].vals[0].u.f64, 1.5);
    cr_assert_eq(rr.request[0].vals[1].u.f32, 0.25f);
    /* An unknown field. */
    cr_assert_eq(decode_hex("3801", &rr), 1);
    /* Truncated. */
    cr_assert_eq(decode_hex("1207", &rr), 1);
    /* A feature reference with a NUL byte. */
    cr_assert_eq(decode_hex("1205"
                            "0a03610062",
                            &rr),
                 1);
}
