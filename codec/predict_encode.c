/* codec/predict_encode.c - Predict's features-only PredictResponse written by hand. */
#include <stdint.h>
#include <string.h>

#include "codec/codec.h"

/*
 * Why by hand: protobuf-c packs a message by walking its descriptor field by field, twice (once
 * for get_packed_size, once for pack), and a PredictResponse of 50 features is 50 map entries,
 * 50 tensors, 50 shapes and their dims: most of a small Predict's instructions went there. The
 * tensors here are the ones codec_tensor_from_core() built, so this writes exactly what
 * protobuf-c would for them: every TensorProto field is handled, in field-number order, with
 * proto3's rules (a zero scalar, an empty string or bytes and a NULL message are left out; an
 * empty packed array is left out; repeated bytes are written even when empty). Like
 * feast_encode.c it runs twice: a measuring pass, whose total is what the response limit is
 * checked against, then the writing pass. tests/codec/test_predict_encode.c compares the bytes
 * with protobuf-c's on random responses.
 *
 * Layout (tensorflow_serving/apis/predict.proto, tensorflow/core/framework/tensor*.proto):
 *   1 outputs* { 1 key 2 value TensorProto }
 *   2 model_spec { 1 name 2 version { 1 value } 3 signature_name }
 *   TensorProto { 1 dtype 2 tensor_shape { 2 dim* { 1 size 2 name } 3 unknown_rank }
 *                 3 version_number 4 tensor_content 5 float_val 6 double_val 7 int_val
 *                 8 string_val* 10 int64_val 11 bool_val 13 half_val }  (5-7, 10, 11, 13 packed)
 */

/* protobuf-c writes a negative int32 (and enum) as its 64-bit sign extension: ten bytes. */
static inline uint64_t int32_wire(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

/* Whether protobuf-c writes a proto3 string: not when it is NULL or empty. */
static inline bool str_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static inline uint8_t *put_bytes(uint8_t *p, const void *data, size_t len)
{
    /* Empty repeated bytes may have a NULL pointer, which memcpy must not see. */
    if (len > 0)
        memcpy(p, data, len);
    return p + len;
}

static inline uint8_t *put_len_field(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    *p++ = tag;
    p = base_put_varint(p, len);
    return put_bytes(p, data, len);
}

static size_t int32s_size(const int32_t *v, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += v[i] < 0 ? 10 : base_varint_size((uint32_t)v[i]);
    return len;
}

static size_t int64s_size(const int64_t *v, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += base_varint_size((uint64_t)v[i]);
    return len;
}

/* A packed field of len payload bytes; nothing at all when the array is empty. */
static inline size_t packed_size(size_t n, size_t len)
{
    return n == 0 ? 0 : base_len_field_size(len);
}

static size_t dim_body_size(const Tensorflow__TensorShapeProto__Dim *d)
{
    size_t n = 0;
    if (d->size != 0)
        n += 1 + base_varint_size((uint64_t)d->size);
    if (str_set(d->name))
        n += base_len_field_size(strlen(d->name));
    return n;
}

static size_t shape_body_size(const Tensorflow__TensorShapeProto *sh)
{
    size_t n = 0;
    for (size_t i = 0; i < sh->n_dim; i++) {
        /* protobuf-c writes no entry for a NULL element; the tensors here have none. */
        if (sh->dim[i] != NULL)
            n += base_len_field_size(dim_body_size(sh->dim[i]));
    }
    if (sh->unknown_rank)
        n += 2;
    return n;
}

static size_t tensor_body_size(const Tensorflow__TensorProto *t, codec_predict_sizes_t *s)
{
    size_t n = 0;
    if (t->dtype != 0)
        n += 1 + base_varint_size(int32_wire((int32_t)t->dtype));
    s->shape = 0;
    if (t->tensor_shape != NULL) {
        s->shape = shape_body_size(t->tensor_shape);
        n += base_len_field_size(s->shape);
    }
    if (t->version_number != 0)
        n += 1 + base_varint_size(int32_wire(t->version_number));
    if (t->tensor_content.len > 0)
        n += base_len_field_size(t->tensor_content.len);
    n += packed_size(t->n_float_val, 4 * t->n_float_val);
    n += packed_size(t->n_double_val, 8 * t->n_double_val);
    s->ints = int32s_size(t->int_val, t->n_int_val);
    n += packed_size(t->n_int_val, s->ints);
    for (size_t i = 0; i < t->n_string_val; i++)
        n += base_len_field_size(t->string_val[i].len);
    s->int64s = int64s_size(t->int64_val, t->n_int64_val);
    n += packed_size(t->n_int64_val, s->int64s);
    n += packed_size(t->n_bool_val, t->n_bool_val);
    s->half = int32s_size(t->half_val, t->n_half_val);
    n += packed_size(t->n_half_val, s->half);
    s->tensor = n;
    return n;
}

static size_t entry_body_size(const codec_predict_response_t *r, size_t i, size_t tensor)
{
    size_t n = base_len_field_size(tensor);
    if (r->name_lens[i] > 0)
        n += base_len_field_size(r->name_lens[i]);
    return n;
}

static size_t spec_body_size(const codec_predict_response_t *r)
{
    size_t n = 0;
    if (str_set(r->model_name))
        n += base_len_field_size(strlen(r->model_name));
    if (r->has_version)
        n += base_len_field_size(r->version != 0 ? 1 + base_varint_size((uint64_t)r->version) : 0);
    if (str_set(r->signature_name))
        n += base_len_field_size(strlen(r->signature_name));
    return n;
}

size_t codec_predict_size(const codec_predict_response_t *r, codec_predict_sizes_t *sizes)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_outputs; i++) {
        size_t t = tensor_body_size(&r->tensors[i], &sizes[i]);
        n += base_len_field_size(entry_body_size(r, i, t));
    }
    return n + base_len_field_size(spec_body_size(r));
}

/* Little-endian fixed-width values: one copy of the array on a little-endian host, as protobuf-c
 * does; byte by byte elsewhere. */
static uint8_t *put_fixed(uint8_t *p, const void *v, size_t n, size_t width)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return put_bytes(p, v, n * width);
#else
    const uint8_t *src = v;
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        if (width == 4) {
            uint32_t y;
            memcpy(&y, src + 4 * i, 4);
            x = y;
        } else {
            memcpy(&x, src + 8 * i, 8);
        }
        for (size_t b = 0; b < width; b++)
            *p++ = (uint8_t)(x >> (8 * b));
    }
    return p;
#endif
}

static uint8_t *put_shape(uint8_t *p, const Tensorflow__TensorShapeProto *sh, size_t body)
{
    *p++ = BASE_TAG(2, BASE_WT_LEN);
    p = base_put_varint(p, body);
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Tensorflow__TensorShapeProto__Dim *d = sh->dim[i];
        if (d == NULL)
            continue;
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, dim_body_size(d));
        if (d->size != 0) {
            *p++ = BASE_TAG(1, BASE_WT_VARINT);
            p = base_put_varint(p, (uint64_t)d->size);
        }
        if (str_set(d->name))
            p = put_len_field(p, BASE_TAG(2, BASE_WT_LEN), d->name, strlen(d->name));
    }
    if (sh->unknown_rank) {
        *p++ = BASE_TAG(3, BASE_WT_VARINT);
        *p++ = 1;
    }
    return p;
}

static uint8_t *put_int32s(uint8_t *p, uint8_t tag, const int32_t *v, size_t n, size_t len)
{
    if (n == 0)
        return p;
    *p++ = tag;
    p = base_put_varint(p, len);
    for (size_t i = 0; i < n; i++)
        p = base_put_varint(p, int32_wire(v[i]));
    return p;
}

static uint8_t *put_tensor(uint8_t *p, const Tensorflow__TensorProto *t,
                           const codec_predict_sizes_t *s)
{
    if (t->dtype != 0) {
        *p++ = BASE_TAG(1, BASE_WT_VARINT);
        p = base_put_varint(p, int32_wire((int32_t)t->dtype));
    }
    if (t->tensor_shape != NULL)
        p = put_shape(p, t->tensor_shape, s->shape);
    if (t->version_number != 0) {
        *p++ = BASE_TAG(3, BASE_WT_VARINT);
        p = base_put_varint(p, int32_wire(t->version_number));
    }
    if (t->tensor_content.len > 0)
        p = put_len_field(p, BASE_TAG(4, BASE_WT_LEN), t->tensor_content.data,
                          t->tensor_content.len);
    if (t->n_float_val > 0) {
        *p++ = BASE_TAG(5, BASE_WT_LEN);
        p = base_put_varint(p, 4 * t->n_float_val);
        p = put_fixed(p, t->float_val, t->n_float_val, 4);
    }
    if (t->n_double_val > 0) {
        *p++ = BASE_TAG(6, BASE_WT_LEN);
        p = base_put_varint(p, 8 * t->n_double_val);
        p = put_fixed(p, t->double_val, t->n_double_val, 8);
    }
    p = put_int32s(p, BASE_TAG(7, BASE_WT_LEN), t->int_val, t->n_int_val, s->ints);
    for (size_t i = 0; i < t->n_string_val; i++)
        p = put_len_field(p, BASE_TAG(8, BASE_WT_LEN), t->string_val[i].data, t->string_val[i].len);
    if (t->n_int64_val > 0) {
        *p++ = BASE_TAG(10, BASE_WT_LEN);
        p = base_put_varint(p, s->int64s);
        for (size_t i = 0; i < t->n_int64_val; i++)
            p = base_put_varint(p, (uint64_t)t->int64_val[i]);
    }
    if (t->n_bool_val > 0) {
        *p++ = BASE_TAG(11, BASE_WT_LEN);
        p = base_put_varint(p, t->n_bool_val);
        for (size_t i = 0; i < t->n_bool_val; i++)
            *p++ = t->bool_val[i] ? 1 : 0;
    }
    return put_int32s(p, BASE_TAG(13, BASE_WT_LEN), t->half_val, t->n_half_val, s->half);
}

size_t codec_predict_write(const codec_predict_response_t *r, const codec_predict_sizes_t *sizes,
                           uint8_t *out)
{
    uint8_t *p = out;
    for (size_t i = 0; i < r->n_outputs; i++) {
        *p++ = BASE_TAG(1, BASE_WT_LEN);
        p = base_put_varint(p, entry_body_size(r, i, sizes[i].tensor));
        if (r->name_lens[i] > 0)
            p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), r->names[i], r->name_lens[i]);
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, sizes[i].tensor);
        p = put_tensor(p, &r->tensors[i], &sizes[i]);
    }
    *p++ = BASE_TAG(2, BASE_WT_LEN);
    p = base_put_varint(p, spec_body_size(r));
    if (str_set(r->model_name))
        p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), r->model_name, strlen(r->model_name));
    if (r->has_version) {
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        if (r->version != 0) {
            *p++ = (uint8_t)(1 + base_varint_size((uint64_t)r->version));
            *p++ = BASE_TAG(1, BASE_WT_VARINT);
            p = base_put_varint(p, (uint64_t)r->version);
        } else {
            *p++ = 0;
        }
    }
    if (str_set(r->signature_name))
        p = put_len_field(p, BASE_TAG(3, BASE_WT_LEN), r->signature_name,
                          strlen(r->signature_name));
    return (size_t)(p - out);
}
