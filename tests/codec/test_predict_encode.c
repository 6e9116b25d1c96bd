/* tests/codec/test_predict_encode.c - the hand-written PredictResponse vs protobuf-c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "tests/codec/helpers.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

static base_arena_t arena;

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(predict_encode, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------------------------------ */
/* The two encodings of one response                                                           */

static uint8_t *encode_mine(const codec_predict_response_t *r, size_t *n)
{
    codec_predict_sizes_t *sizes = calloc(r->n_outputs + 1, sizeof *sizes);
    *n = codec_predict_size(r, sizes);
    uint8_t *buf = malloc(*n + 1);
    size_t written = codec_predict_write(r, sizes, buf);
    cr_assert_eq(written, *n, "size pass said %zu, write pass wrote %zu", *n, written);
    free(sizes);
    return buf;
}

/* The same response as protobuf-c messages, as rpc_predict.c used to build it, packed. */
static uint8_t *encode_protobuf_c(const codec_predict_response_t *r, size_t *n)
{
    typedef Tensorflow__Serving__PredictResponse__OutputsEntry entry_t;
    size_t m = r->n_outputs + 1;
    entry_t *entries = calloc(m, sizeof *entries);
    entry_t **entryp = calloc(m, sizeof *entryp);
    for (size_t i = 0; i < r->n_outputs; i++) {
        tensorflow__serving__predict_response__outputs_entry__init(&entries[i]);
        entries[i].key = (char *)r->names[i];
        entries[i].value = (Tensorflow__TensorProto *)&r->tensors[i];
        entryp[i] = &entries[i];
    }
    Google__Protobuf__Int64Value ver = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
    ver.value = r->version;
    Tensorflow__Serving__ModelSpec spec = TENSORFLOW__SERVING__MODEL_SPEC__INIT;
    spec.name = (char *)r->model_name;
    spec.signature_name = (char *)r->signature_name;
    if (r->has_version) {
        spec.version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
        spec.version = &ver;
    }
    Tensorflow__Serving__PredictResponse resp = TENSORFLOW__SERVING__PREDICT_RESPONSE__INIT;
    resp.model_spec = &spec;
    resp.n_outputs = r->n_outputs;
    resp.outputs = entryp;
    *n = tensorflow__serving__predict_response__get_packed_size(&resp);
    uint8_t *buf = malloc(*n + 1);
    size_t packed = tensorflow__serving__predict_response__pack(&resp, buf);
    cr_assert_eq(packed, *n);
    free(entries);
    free(entryp);
    return buf;
}

static void assert_same_bytes(const codec_predict_response_t *r, int iter)
{
    size_t got_n, want_n;
    uint8_t *got = encode_mine(r, &got_n);
    uint8_t *want = encode_protobuf_c(r, &want_n);
    cr_assert_eq(got_n, want_n, "iteration %d: %zu bytes, protobuf-c %zu", iter, got_n, want_n);
    for (size_t i = 0; i < want_n; i++)
        cr_assert_eq(got[i], want[i], "iteration %d: byte %zu of %zu is %02x, protobuf-c %02x",
                     iter, i, want_n, got[i], want[i]);
    free(got);
    free(want);
}

/* True when needle occurs in the n bytes at hay. */
static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t len)
{
    for (size_t i = 0; i + len <= n; i++) {
        if (memcmp(hay + i, needle, len) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Edge cases, pinned                                                                          */

static Tensorflow__TensorShapeProto__Dim dim0, dim1;
static Tensorflow__TensorShapeProto__Dim *dimp[2] = {&dim0, &dim1};
static Tensorflow__TensorShapeProto shape;

static Tensorflow__TensorProto tensor_1d(Tensorflow__DataType dtype, int64_t batch)
{
    tensorflow__tensor_shape_proto__init(&shape);
    tensorflow__tensor_shape_proto__dim__init(&dim0);
    dim0.size = batch;
    shape.n_dim = 1;
    shape.dim = dimp;
    Tensorflow__TensorProto t = TENSORFLOW__TENSOR_PROTO__INIT;
    t.dtype = dtype;
    t.tensor_shape = &shape;
    return t;
}

static codec_predict_response_t one_output(const char *const *name,
                                           const Tensorflow__TensorProto *t, size_t *len)
{
    *len = strlen(*name);
    return (codec_predict_response_t){.n_outputs = 1,
                                      .names = name,
                                      .name_lens = len,
                                      .tensors = t,
                                      .model_name = "m1",
                                      .has_version = true,
                                      .version = 3,
                                      .signature_name = ""};
}

Test(predict_encode, an_empty_batch_is_a_dim_of_size_zero_and_no_values)
{
    Tensorflow__TensorProto t = tensor_1d(TENSORFLOW__DATA_TYPE__DT_INT64, 0);
    const char *names[1] = {"f"};
    size_t len = 1;
    codec_predict_response_t r = {.n_outputs = 1,
                                  .names = names,
                                  .name_lens = &len,
                                  .tensors = &t,
                                  .model_name = "m1",
                                  .has_version = true,
                                  .version = 3,
                                  .signature_name = ""};
    size_t n;
    uint8_t *got = encode_mine(&r, &n);
    /* outputs { key "f" value { dtype 9, tensor_shape { dim {} } } }, model_spec { "m1" v3 } */
    static const uint8_t want[] = {0x0a, 0x0b, 0x0a, 0x01, 'f',  0x12, 0x06, 0x08,
                                   0x09, 0x12, 0x02, 0x12, 0x00, 0x12, 0x08, 0x0a,
                                   0x02, 'm',  '1',  0x12, 0x02, 0x08, 0x03};
    cr_assert_eq(n, sizeof want);
    cr_assert_eq(memcmp(got, want, n), 0);
    free(got);
    assert_same_bytes(&r, 0);
}

Test(predict_encode, negative_int32_values_take_ten_bytes)
{
    Tensorflow__TensorProto t = tensor_1d(TENSORFLOW__DATA_TYPE__DT_INT32, 2);
    int32_t vals[2] = {-1, 5};
    t.n_int_val = 2;
    t.int_val = vals;
    static const char *const name = "x";
    size_t len;
    codec_predict_response_t r = one_output(&name, &t, &len);
    size_t n;
    uint8_t *got = encode_mine(&r, &n);
    static const uint8_t packed[] = {0x3a, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x01, 0x05};
    cr_assert(contains(got, n, packed, sizeof packed));
    free(got);
    assert_same_bytes(&r, 0);
}

Test(predict_encode, strings_keep_nul_bytes_and_empty_strings_are_written)
{
    Tensorflow__TensorProto t = tensor_1d(TENSORFLOW__DATA_TYPE__DT_STRING, 2);
    ProtobufCBinaryData vals[2] = {{3, (uint8_t *)"a\0b"}, {0, NULL}};
    t.n_string_val = 2;
    t.string_val = vals;
    static const char *const name = "s";
    size_t len;
    codec_predict_response_t r = one_output(&name, &t, &len);
    size_t n;
    uint8_t *got = encode_mine(&r, &n);
    static const uint8_t strings[] = {0x42, 0x03, 'a', 0x00, 'b', 0x42, 0x00};
    cr_assert(contains(got, n, strings, sizeof strings));
    free(got);
    assert_same_bytes(&r, 0);
}

Test(predict_encode, zero_scalars_empty_strings_and_an_absent_version_are_left_out)
{
    /* dtype 0, no shape, no values: the tensor is an empty message; the spec is empty too. */
    Tensorflow__TensorProto t = TENSORFLOW__TENSOR_PROTO__INIT;
    const char *names[1] = {"k"};
    size_t len = 1;
    codec_predict_response_t r = {.n_outputs = 1,
                                  .names = names,
                                  .name_lens = &len,
                                  .tensors = &t,
                                  .model_name = "",
                                  .has_version = false,
                                  .signature_name = ""};
    size_t n;
    uint8_t *got = encode_mine(&r, &n);
    static const uint8_t want[] = {0x0a, 0x05, 0x0a, 0x01, 'k', 0x12, 0x00, 0x12, 0x00};
    cr_assert_eq(n, sizeof want);
    cr_assert_eq(memcmp(got, want, n), 0);
    free(got);
    assert_same_bytes(&r, 0);
    /* A version of 0 is still a set Int64Value: an empty message. */
    r.has_version = true;
    r.version = 0;
    assert_same_bytes(&r, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Randomized                                                                                  */

static uint64_t rnd_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure repeats. */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ull;
}

/* Names of 1 to 200 bytes, so that keys, entries and specs have 1- and 2-byte lengths. */
static char *rnd_name(size_t *len)
{
    size_t n = rnd() % 4 == 0 ? 1 + (size_t)(rnd() % 200) : 1 + (size_t)(rnd() % 12);
    char *s = base_arena_alloc(&arena, n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + rnd() % 26);
    s[n] = '\0';
    *len = n;
    return s;
}

static catalog_bytes_t rnd_bytes(void)
{
    /* Up to 300 bytes (1- and 2-byte lengths), any byte value, NUL included. */
    size_t n = rnd() % 4 == 0 ? (size_t)(rnd() % 301) : (size_t)(rnd() % 6);
    uint8_t *b = base_arena_alloc(&arena, n + 1);
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = rnd() % 3 == 0 ? 0 : (uint8_t)rnd();
    return (catalog_bytes_t){b, n};
}

static int64_t rnd_i64(void)
{
    return rnd() % 5 == 0 ? 0 : (int64_t)rnd() >> (rnd() % 64);
}

static int32_t rnd_i32(void)
{
    return rnd() % 5 == 0 ? 0 : (int32_t)(uint32_t)rnd() >> (rnd() % 32);
}

static double rnd_f64(void)
{
    switch (rnd() % 4) {
    case 0:
        return 0.0;
    case 1: {
        double d;
        uint64_t bits = rnd();
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    default:
        return (double)(int64_t)rnd() / 7.0;
    }
}

static float rnd_f32(void)
{
    switch (rnd() % 4) {
    case 0:
        return 0.0f;
    case 1: {
        float f;
        uint32_t bits = (uint32_t)rnd();
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    default:
        return (float)(int32_t)rnd() / 7.0f;
    }
}

/* One element of type elem into slot i of the array at p. */
static void rnd_item(catalog_dtype_t elem, void *p, size_t i)
{
    switch (elem) {
    case CATALOG_DTYPE_FLOAT:
        ((float *)p)[i] = rnd_f32();
        break;
    case CATALOG_DTYPE_DOUBLE:
        ((double *)p)[i] = rnd_f64();
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        ((int64_t *)p)[i] = rnd_i64();
        break;
    case CATALOG_DTYPE_INT32:
        ((int32_t *)p)[i] = rnd_i32();
        break;
    case CATALOG_DTYPE_BOOL:
        ((bool *)p)[i] = rnd() % 2 == 0;
        break;
    default:
        ((catalog_bytes_t *)p)[i] = rnd_bytes();
        break;
    }
}

static size_t elem_size(catalog_dtype_t elem)
{
    switch (elem) {
    case CATALOG_DTYPE_FLOAT:
    case CATALOG_DTYPE_INT32:
        return 4;
    case CATALOG_DTYPE_BOOL:
        return sizeof(bool);
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        return sizeof(catalog_bytes_t);
    default:
        return 8;
    }
}

/* A value of type t; lists have width items. */
static catalog_value_t rnd_value(catalog_dtype_t t, size_t width)
{
    catalog_value_t v = {.type = t};
    catalog_dtype_t elem = catalog_dtype_element(t);
    if (!catalog_dtype_is_list(t)) {
        switch (elem) {
        case CATALOG_DTYPE_FLOAT:
            v.u.f32 = rnd_f32();
            break;
        case CATALOG_DTYPE_DOUBLE:
            v.u.f64 = rnd_f64();
            break;
        case CATALOG_DTYPE_INT32:
            v.u.i32 = rnd_i32();
            break;
        case CATALOG_DTYPE_BOOL:
            v.u.b = rnd() % 2 == 0;
            break;
        case CATALOG_DTYPE_STRING:
        case CATALOG_DTYPE_BYTES:
            v.u.bytes = rnd_bytes();
            break;
        default:
            v.u.i64 = rnd_i64();
            break;
        }
        return v;
    }
    void *items = base_arena_alloc(&arena, (width + 1) * elem_size(elem));
    cr_assert_not_null(items);
    for (size_t i = 0; i < width; i++)
        rnd_item(elem, items, i);
    v.u.list.n = width;
    v.u.list.v.i64 = items; /* every member of the union is a pointer */
    return v;
}

/* A PRESENT cell holding v's wire bytes. */
static core_cell_t cell_of(const catalog_value_t *v)
{
    size_t n = catalog_value_wire_size(v);
    uint8_t *buf = base_arena_alloc(&arena, n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(catalog_value_encode(v, buf, n + 1), (int)n);
    return (core_cell_t){buf, (uint32_t)n, STORE_STATUS_PRESENT, 1};
}

static const catalog_dtype_t all_types[] = {
    CATALOG_DTYPE_BYTES,       CATALOG_DTYPE_STRING,
    CATALOG_DTYPE_INT32,       CATALOG_DTYPE_INT64,
    CATALOG_DTYPE_DOUBLE,      CATALOG_DTYPE_FLOAT,
    CATALOG_DTYPE_BOOL,        CATALOG_DTYPE_UNIX_TIMESTAMP,
    CATALOG_DTYPE_BYTES_LIST,  CATALOG_DTYPE_STRING_LIST,
    CATALOG_DTYPE_INT32_LIST,  CATALOG_DTYPE_INT64_LIST,
    CATALOG_DTYPE_DOUBLE_LIST, CATALOG_DTYPE_FLOAT_LIST,
    CATALOG_DTYPE_BOOL_LIST,   CATALOG_DTYPE_UNIX_TIMESTAMP_LIST,
};

/*
 * A feature tensor as the handler builds it: tensor_from_cells() over cells that are
 * present, missing (NOT_FOUND) or stored nulls, with or without a default, under either
 * on_missing mode. Under on_missing: error a feature without a default has no missing rows.
 */
static void rnd_feature_tensor(size_t n_rows, bool zero_missing, Tensorflow__TensorProto *out)
{
    catalog_feature_t *f = base_arena_calloc(&arena, 1, sizeof *f);
    cr_assert_not_null(f);
    f->name = "f";
    f->dtype = all_types[rnd() % (sizeof all_types / sizeof all_types[0])];
    /* Lists share one width across the batch (Predict refuses ragged ones); 0 is an empty list. */
    size_t width = rnd() % 4 == 0 ? 0 : (size_t)(rnd() % 5);
    f->has_default = rnd() % 3 == 0;
    if (f->has_default)
        f->default_value = rnd_value(f->dtype, width);
    bool may_miss = zero_missing || f->has_default;
    int missing_odds = rnd() % 2 == 0 ? 2 : 10;
    core_cell_t *cells = base_arena_calloc(&arena, n_rows + 1, sizeof *cells);
    cr_assert_not_null(cells);
    for (size_t row = 0; row < n_rows; row++) {
        if (may_miss && rnd() % (uint64_t)missing_odds == 0) {
            if (rnd() % 2 == 0) {
                cells[row] = (core_cell_t){NULL, 0, STORE_STATUS_NOT_FOUND, 0};
            } else {
                catalog_value_t null = {.type = CATALOG_DTYPE_NULL};
                cells[row] = cell_of(&null);
            }
            continue;
        }
        catalog_value_t v = rnd_value(f->dtype, width);
        cells[row] = cell_of(&v);
    }
    size_t bad_row = 0;
    char why[256];
    int rc =
        tensor_from_cells(f, cells, n_rows, zero_missing, &arena, out, &bad_row, why, sizeof why);
    cr_assert_eq(rc, 0, "%s: %s", catalog_dtype_name(f->dtype), why);
}

static void rnd_spec(codec_predict_response_t *r)
{
    static const int64_t versions[] = {0, 1, 2, -1, 127, 128, INT64_MAX, INT64_MIN};
    size_t len;
    r->model_name = rnd() % 5 == 0 ? "" : rnd_name(&len);
    r->signature_name = rnd() % 2 == 0 ? "" : rnd() % 2 == 0 ? "serving_default" : rnd_name(&len);
    r->has_version = rnd() % 4 != 0;
    r->version = versions[rnd() % (sizeof versions / sizeof versions[0])];
}

Test(predict_encode, random_feature_responses_match_protobuf_c_packing_byte_for_byte)
{
    static const size_t batches[] = {0, 1, 1, 1, 2, 2, 3, 100};
    for (int iter = 0; iter < 500; iter++) {
        size_t n_rows = batches[rnd() % (sizeof batches / sizeof batches[0])];
        size_t n_out = (size_t)(rnd() % 9);
        bool zero_missing = rnd() % 2 == 0;
        const char **names = base_arena_calloc(&arena, n_out + 1, sizeof *names);
        size_t *lens = base_arena_calloc(&arena, n_out + 1, sizeof *lens);
        Tensorflow__TensorProto *tensors = base_arena_calloc(&arena, n_out + 1, sizeof *tensors);
        cr_assert(names != NULL && lens != NULL && tensors != NULL);
        for (size_t i = 0; i < n_out; i++) {
            names[i] = rnd_name(&lens[i]);
            rnd_feature_tensor(n_rows, zero_missing, &tensors[i]);
        }
        codec_predict_response_t r = {
            .n_outputs = n_out, .names = names, .name_lens = lens, .tensors = tensors};
        rnd_spec(&r);
        assert_same_bytes(&r, iter);
        base_arena_reset(&arena);
    }
}

/* Tensors with every field set or not, beyond what the handler fills: the encoder handles all
 * of TensorProto. */
static void rnd_any_tensor(Tensorflow__TensorProto *t)
{
    tensorflow__tensor_proto__init(t);
    if (rnd() % 4 != 0)
        t->dtype = (Tensorflow__DataType)(rnd() % 24);
    if (rnd() % 5 != 0) {
        Tensorflow__TensorShapeProto *sh = base_arena_alloc(&arena, sizeof *sh);
        tensorflow__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)(rnd() % 4);
        sh->dim = base_arena_calloc(&arena, sh->n_dim + 1, sizeof *sh->dim);
        for (size_t d = 0; d < sh->n_dim; d++) {
            Tensorflow__TensorShapeProto__Dim *dim = base_arena_alloc(&arena, sizeof *dim);
            tensorflow__tensor_shape_proto__dim__init(dim);
            dim->size = rnd() % 3 == 0 ? -1 : rnd_i64();
            if (rnd() % 3 == 0) {
                size_t len;
                dim->name = rnd_name(&len);
            }
            sh->dim[d] = dim;
        }
        sh->unknown_rank = rnd() % 4 == 0;
        t->tensor_shape = sh;
    }
    if (rnd() % 4 == 0)
        t->version_number = rnd_i32();
    if (rnd() % 4 == 0) {
        catalog_bytes_t b = rnd_bytes();
        t->tensor_content.data = (uint8_t *)b.data;
        t->tensor_content.len = b.len;
    }
#define RND_ARRAY(n_field, field, gen)                                                             \
    do {                                                                                           \
        size_t n = rnd() % 3 == 0 ? (size_t)(rnd() % 40) : 0;                                      \
        t->field = base_arena_calloc(&arena, n + 1, sizeof *t->field);                             \
        for (size_t i = 0; i < n; i++)                                                             \
            t->field[i] = gen;                                                                     \
        t->n_field = n;                                                                            \
    } while (0)
    RND_ARRAY(n_half_val, half_val, rnd_i32());
    RND_ARRAY(n_float_val, float_val, rnd_f32());
    RND_ARRAY(n_double_val, double_val, rnd_f64());
    RND_ARRAY(n_int_val, int_val, rnd_i32());
    RND_ARRAY(n_int64_val, int64_val, rnd_i64());
    RND_ARRAY(n_bool_val, bool_val, rnd() % 2 == 0);
#undef RND_ARRAY
    size_t n = rnd() % 3 == 0 ? (size_t)(rnd() % 10) : 0;
    t->string_val = base_arena_calloc(&arena, n + 1, sizeof *t->string_val);
    for (size_t i = 0; i < n; i++) {
        catalog_bytes_t b = rnd_bytes();
        t->string_val[i].data = (uint8_t *)b.data;
        t->string_val[i].len = b.len;
    }
    t->n_string_val = n;
}

Test(predict_encode, random_tensors_of_every_field_match_protobuf_c_packing_byte_for_byte)
{
    for (int iter = 0; iter < 500; iter++) {
        size_t n_out = (size_t)(rnd() % 5);
        const char **names = base_arena_calloc(&arena, n_out + 1, sizeof *names);
        size_t *lens = base_arena_calloc(&arena, n_out + 1, sizeof *lens);
        Tensorflow__TensorProto *tensors = base_arena_calloc(&arena, n_out + 1, sizeof *tensors);
        cr_assert(names != NULL && lens != NULL && tensors != NULL);
        for (size_t i = 0; i < n_out; i++) {
            names[i] = rnd_name(&lens[i]);
            rnd_any_tensor(&tensors[i]);
        }
        codec_predict_response_t r = {
            .n_outputs = n_out, .names = names, .name_lens = lens, .tensors = tensors};
        rnd_spec(&r);
        assert_same_bytes(&r, iter);
        base_arena_reset(&arena);
    }
}
