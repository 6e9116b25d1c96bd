/* tests/codec/test_unpack.c - unpacking into an arena; string fields checked on the wire. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "codec/codec.h"

#include "feast/serving/ServingService.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"

/* A message under construction; every body here is shorter than 128 bytes. */
typedef struct msg {
    uint8_t b[256];
    size_t n;
} msg_t;

static void put_len(msg_t *m, unsigned field, const void *data, size_t len)
{
    cr_assert_lt(len, 128);
    cr_assert_lt(m->n + 2 + len, sizeof m->b);
    m->b[m->n++] = (uint8_t)(field << 3 | 2);
    m->b[m->n++] = (uint8_t)len;
    memcpy(m->b + m->n, data, len);
    m->n += len;
}

static void put_msg(msg_t *m, unsigned field, const msg_t *sub)
{
    put_len(m, field, sub->b, sub->n);
}

/* WriteFeaturesRequest{feature_view: "fv", columns: {key: [Value{string_val: s}]}}. */
static msg_t write_request(const char *key, size_t key_len, const char *s, size_t s_len)
{
    msg_t value = {0}, repeated = {0}, entry = {0}, rq = {0};
    put_len(&value, 2, s, s_len);
    put_msg(&repeated, 1, &value);
    put_len(&entry, 1, key, key_len);
    put_msg(&entry, 2, &repeated);
    put_len(&rq, 1, "fv", 2);
    put_msg(&rq, 2, &entry);
    return rq;
}

static int check(const msg_t *m, char *why)
{
    return codec_check_strings(&fstore__v1__write_features_request__descriptor, m->b, m->n, why,
                               200);
}

Test(pb_strings, a_nul_inside_a_nested_string_value_is_refused_naming_the_field)
{
    char why[200];
    msg_t rq = write_request("customer_id", 11, "alice\0x", 7);
    /* protobuf-c itself takes it, as "alice": the reason for the check. */
    Fstore__V1__WriteFeaturesRequest *u =
        fstore__v1__write_features_request__unpack(NULL, rq.n, rq.b);
    cr_assert_not_null(u);
    cr_assert_str_eq(u->columns[0]->value->val[0]->string_val, "alice");
    fstore__v1__write_features_request__free_unpacked(u, NULL);

    cr_assert_eq(check(&rq, why), -EINVAL);
    cr_assert_str_eq(why, "feast.types.Value.string_val contains a NUL byte");
}

Test(pb_strings, a_nul_inside_a_map_key_is_refused)
{
    char why[200];
    msg_t rq = write_request("customer_id\0", 12, "alice", 5);
    cr_assert_eq(check(&rq, why), -EINVAL);
    cr_assert(strstr(why, ".key contains a NUL byte") != NULL, "%s", why);
}

Test(pb_strings, strings_that_are_not_utf8_are_refused)
{
    static const char *const bad[] = {
        "\xff",             /* never in UTF-8 */
        "a\xc3",            /* truncated sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xe2\x28\xa1",     /* bad continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[200];
        msg_t rq = write_request("s", 1, bad[i], strlen(bad[i]));
        cr_assert_eq(check(&rq, why), -EINVAL, "case %zu", i);
        cr_assert_str_eq(why, "feast.types.Value.string_val is not valid UTF-8");
    }
}

Test(pb_strings, utf8_strings_and_any_bytes_pass)
{
    char why[200];
    msg_t rq = write_request("s", 1, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x9a\x97", 15);
    cr_assert_eq(check(&rq, why), 0, "%s", why);
    /* bytes_val (field 1 of Value) may hold anything, NULs included. */
    msg_t value = {0}, repeated = {0}, entry = {0}, w = {0};
    put_len(&value, 1, "\0\xff\0", 3);
    put_msg(&repeated, 1, &value);
    put_len(&entry, 1, "dev", 3);
    put_msg(&entry, 2, &repeated);
    put_msg(&w, 2, &entry);
    cr_assert_eq(check(&w, why), 0, "%s", why);
}

Test(pb_strings, feature_references_of_a_read_are_checked)
{
    char why[200];
    msg_t list = {0}, rq = {0};
    put_len(&list, 1, "fv:a\0b", 6);
    put_msg(&rq, 2, &list);
    cr_assert_eq(codec_check_strings(&feast__serving__get_online_features_request__descriptor, rq.b,
                                     rq.n, why, sizeof why),
                 -EINVAL);
    cr_assert_str_eq(why, "feast.serving.FeatureList.val contains a NUL byte");
}

Test(pb_strings, truncated_input_is_refused_without_reading_past_it)
{
    char why[200];
    msg_t rq = write_request("s", 1, "abc", 3);
    for (size_t n = 1; n < rq.n; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past the end. */
        uint8_t *cut = malloc(n);
        cr_assert_not_null(cut);
        memcpy(cut, rq.b, n);
        int rc = codec_check_strings(&fstore__v1__write_features_request__descriptor, cut, n, why,
                                     sizeof why);
        free(cut);
        cr_assert(rc == 0 || rc == -EINVAL);
    }
}

Test(unpack, the_arena_serves_as_protobuf_c_allocator)
{
    Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
    Feast__Types__StringList l = FEAST__TYPES__STRING_LIST__INIT;
    char *items[] = {"a", "bb", "ccc"};
    l.n_val = 3;
    l.val = items;
    v.val_case = FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL;
    v.string_list_val = &l;
    uint8_t buf[64];
    size_t n = feast__types__value__pack(&v, buf);

    base_arena_t a;
    base_arena_init(&a, 1024);
    Feast__Types__Value *out =
        feast__types__value__unpack(codec_allocator(&a, &(ProtobufCAllocator){0}), n, buf);
    cr_assert_not_null(out);
    cr_assert_eq(out->string_list_val->n_val, 3);
    cr_assert_str_eq(out->string_list_val->val[2], "ccc");
    /* No free_unpacked: the arena owns everything (LeakSanitizer would catch a leak). */
    base_arena_free(&a);
}

/* ------------------------------------------------------------------------------------------ */
/* A singular message field given twice reads as protobuf merges it (protobuf-c keeps only a
 * oneof member's last occurrence).                                                           */

static base_arena_t merge_arena;
static core_ctx_t merge_ctx;

static void merge_setup(void)
{
    memset(&merge_ctx, 0, sizeof merge_ctx);
    base_arena_init(&merge_arena, 4096);
    merge_ctx.arena = &merge_arena;
}

static void merge_teardown(void)
{
    base_arena_free(&merge_arena);
}

TestSuite(merge, .init = merge_setup, .fini = merge_teardown);

/* GetOnlineFeaturesRequest{features: [names...]} packed at out. Returns: its length. */
static size_t pack_features(uint8_t *out, char **names, size_t n)
{
    Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
    fl.n_val = n;
    fl.val = names;
    Feast__Serving__GetOnlineFeaturesRequest rq = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
    rq.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
    rq.features = &fl;
    return feast__serving__get_online_features_request__pack(&rq, out);
}

static size_t pack_service(uint8_t *out, char *name)
{
    Feast__Serving__GetOnlineFeaturesRequest rq = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
    rq.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
    rq.feature_service = name;
    return feast__serving__get_online_features_request__pack(&rq, out);
}

static Feast__Serving__GetOnlineFeaturesRequest *unpack_read(const uint8_t *buf, size_t n)
{
    ProtobufCMessage *m = NULL;
    int rc = codec_unpack(&merge_ctx, &feast__serving__get_online_features_request__descriptor, buf,
                          n, &m);
    cr_assert_eq(rc, 0, "%s", merge_ctx.msg);
    return (Feast__Serving__GetOnlineFeaturesRequest *)m;
}

Test(merge, a_oneof_feature_list_given_twice_holds_both_lists)
{
    uint8_t buf[256];
    char *a[] = {"v:a", "v:b"}, *b[] = {"w:c"};
    size_t n = pack_features(buf, a, 2);
    n += pack_features(buf + n, b, 1);
    /* What protobuf-c alone makes of it: the last list only. */
    Feast__Serving__GetOnlineFeaturesRequest *raw =
        feast__serving__get_online_features_request__unpack(NULL, n, buf);
    cr_assert_eq(raw->features->n_val, 1);
    feast__serving__get_online_features_request__free_unpacked(raw, NULL);

    Feast__Serving__GetOnlineFeaturesRequest *rq = unpack_read(buf, n);
    cr_assert_eq(rq->kind_case, FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES);
    cr_assert_eq(rq->features->n_val, 3);
    cr_assert_str_eq(rq->features->val[0], "v:a");
    cr_assert_str_eq(rq->features->val[1], "v:b");
    cr_assert_str_eq(rq->features->val[2], "w:c");
}

Test(merge, another_member_of_the_oneof_clears_what_came_before_it)
{
    uint8_t buf[256];
    char *a[] = {"v:a"}, *b[] = {"v:b"};
    /* features, service, features: the last list alone (the service cleared the first). */
    size_t n = pack_features(buf, a, 1);
    n += pack_service(buf + n, "svc");
    n += pack_features(buf + n, b, 1);
    n += pack_features(buf + n, a, 1);
    Feast__Serving__GetOnlineFeaturesRequest *rq = unpack_read(buf, n);
    cr_assert_eq(rq->kind_case, FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES);
    cr_assert_eq(rq->features->n_val, 2);
    cr_assert_str_eq(rq->features->val[0], "v:b");
    cr_assert_str_eq(rq->features->val[1], "v:a");
    /* features, features, service: the service. */
    n = pack_features(buf, a, 1);
    n += pack_features(buf + n, b, 1);
    n += pack_service(buf + n, "svc");
    rq = unpack_read(buf, n);
    cr_assert_eq(rq->kind_case, FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE);
    cr_assert_str_eq(rq->feature_service, "svc");
}

/* WriteFeaturesRequest{feature_view: "fv", columns: {"x": [value]}} with the Value's encoding
 * given as is. */
static size_t pack_write_with_value(uint8_t *out, const uint8_t *value, size_t value_len)
{
    msg_t rv = {0}, entry = {0}, rq = {0};
    put_len(&rv, 1, value, value_len);
    put_len(&entry, 1, "x", 1);
    put_msg(&entry, 2, &rv);
    put_len(&rq, 1, "fv", 2);
    put_msg(&rq, 2, &entry);
    memcpy(out, rq.b, rq.n);
    return rq.n;
}

static size_t pack_int64_list(uint8_t *out, int64_t *vals, size_t n)
{
    Feast__Types__Int64List l = FEAST__TYPES__INT64_LIST__INIT;
    l.n_val = n;
    l.val = vals;
    Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
    v.val_case = FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL;
    v.int64_list_val = &l;
    return feast__types__value__pack(&v, out);
}

Test(merge, a_list_value_given_twice_deep_in_a_write_holds_every_element)
{
    uint8_t value[64], buf[256];
    int64_t a[] = {1, 2}, b[] = {3};
    size_t vn = pack_int64_list(value, a, 2);
    vn += pack_int64_list(value + vn, b, 1);
    size_t n = pack_write_with_value(buf, value, vn);
    ProtobufCMessage *m = NULL;
    cr_assert_eq(
        codec_unpack(&merge_ctx, &fstore__v1__write_features_request__descriptor, buf, n, &m), 0,
        "%s", merge_ctx.msg);
    Fstore__V1__WriteFeaturesRequest *rq = (Fstore__V1__WriteFeaturesRequest *)m;
    cr_assert_str_eq(rq->feature_view, "fv");
    cr_assert_eq(rq->n_columns, 1);
    const Feast__Types__Value *v = rq->columns[0]->value->val[0];
    cr_assert_eq(v->val_case, FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL);
    cr_assert_eq(v->int64_list_val->n_val, 3);
    cr_assert_eq(v->int64_list_val->val[0], 1);
    cr_assert_eq(v->int64_list_val->val[1], 2);
    cr_assert_eq(v->int64_list_val->val[2], 3);
}

Test(merge, a_message_without_a_field_given_twice_is_read_unchanged)
{
    uint8_t value[64], buf[256];
    int64_t a[] = {1, 2};
    size_t vn = pack_int64_list(value, a, 2);
    size_t n = pack_write_with_value(buf, value, vn);
    const uint8_t *out = NULL;
    size_t out_len = 0;
    /* The rewrite of a message that needs none is the message (its one message field per
     * entry keeps its place here: nothing follows it). */
    cr_assert_eq(codec_merge_messages(&merge_arena, &fstore__v1__write_features_request__descriptor,
                                      buf, n, &out, &out_len),
                 0);
    cr_assert_eq(out_len, n);
    cr_assert_arr_eq(out, buf, n);
}

Test(merge, the_rewrite_is_never_longer_and_a_second_rewrite_changes_nothing)
{
    /* Many short lists, each in its own occurrence: the merged body's length takes more bytes
     * than any one occurrence's did. */
    uint8_t buf[4096];
    size_t n = 0;
    char *one[] = {"view_with_a_long_name:feature_with_a_long_name_too"};
    for (int i = 0; i < 40; i++)
        n += pack_features(buf + n, one, 1);
    const uint8_t *out = NULL, *again = NULL;
    size_t out_len = 0, again_len = 0;
    cr_assert_eq(codec_merge_messages(&merge_arena,
                                      &feast__serving__get_online_features_request__descriptor, buf,
                                      n, &out, &out_len),
                 0);
    cr_assert_leq(out_len, n);
    cr_assert_eq(codec_merge_messages(&merge_arena,
                                      &feast__serving__get_online_features_request__descriptor, out,
                                      out_len, &again, &again_len),
                 0);
    cr_assert_eq(again_len, out_len);
    cr_assert_arr_eq(again, out, out_len);
    Feast__Serving__GetOnlineFeaturesRequest *rq = unpack_read(buf, n);
    cr_assert_eq(rq->features->n_val, 40);
}

Test(merge, a_truncated_occurrence_is_malformed_for_the_rewrite_too)
{
    uint8_t buf[256];
    char *a[] = {"v:a"};
    size_t n = pack_features(buf, a, 1);
    n += pack_features(buf + n, a, 1);
    ProtobufCMessage *m = NULL;
    cr_assert_eq(codec_unpack(&merge_ctx, &feast__serving__get_online_features_request__descriptor,
                              buf, n - 1, &m),
                 -EINVAL);
    cr_assert(strstr(merge_ctx.msg, "malformed GetOnlineFeaturesRequest") != NULL, "%s",
              merge_ctx.msg);
    /* The rewrite itself refuses it as well (the walk refuses it first in codec_unpack()). */
    const uint8_t *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(codec_merge_messages(&merge_arena,
                                      &feast__serving__get_online_features_request__descriptor, buf,
                                      n - 1, &out, &out_len),
                 -EINVAL);
    cr_assert(codec_needs_merge(&feast__serving__get_online_features_request__descriptor, buf, n));
    cr_assert_not(
        codec_needs_merge(&feast__serving__get_online_features_request__descriptor, buf, n - 1));
}

Test(merge, two_message_members_of_a_oneof_clear_each_other)
{
    /* Value{int64_list [1]} Value{string_list ["a"]} Value{int64_list [2]}, concatenated: the
     * string list cleared the first int64 list, so protobuf reads int64_list [2]. */
    uint8_t value[64], buf[256];
    int64_t one[] = {1}, two[] = {2};
    size_t vn = pack_int64_list(value, one, 1);
    Feast__Types__StringList sl = FEAST__TYPES__STRING_LIST__INIT;
    char *strs[] = {"a"};
    sl.n_val = 1;
    sl.val = strs;
    Feast__Types__Value sv = FEAST__TYPES__VALUE__INIT;
    sv.val_case = FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL;
    sv.string_list_val = &sl;
    vn += feast__types__value__pack(&sv, value + vn);
    vn += pack_int64_list(value + vn, two, 1);
    size_t n = pack_write_with_value(buf, value, vn);
    ProtobufCMessage *m = NULL;
    cr_assert_eq(
        codec_unpack(&merge_ctx, &fstore__v1__write_features_request__descriptor, buf, n, &m), 0,
        "%s", merge_ctx.msg);
    const Feast__Types__Value *v =
        ((Fstore__V1__WriteFeaturesRequest *)m)->columns[0]->value->val[0];
    cr_assert_eq(v->val_case, FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL);
    cr_assert_eq(v->int64_list_val->n_val, 1);
    cr_assert_eq(v->int64_list_val->val[0], 2);
}
