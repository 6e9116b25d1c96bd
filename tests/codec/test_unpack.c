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
