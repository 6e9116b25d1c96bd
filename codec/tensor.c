/* codec/tensor.c - TensorProto <-> fstore values: entity keys in, core tensors out. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

/*
 * Inputs: entity tensors carry join keys, so only the integer and string types are read, in
 * either of TensorFlow's encodings (typed repeated fields, packed or not, which protobuf-c
 * already folds together; or raw little-endian tensor_content). Outputs always use the typed
 * fields: every TensorFlow client reads them, and strings have no other form anyway. The core
 * builds the outputs' values (core/tensor.c); here they only get their TensorProto form, the
 * numeric arrays shared as they are.
 */

Tensorflow__DataType codec_tensor_dtype(catalog_dtype_t t)
{
    switch (catalog_dtype_element(t)) {
    case CATALOG_DTYPE_FLOAT:
        return TENSORFLOW__DATA_TYPE__DT_FLOAT;
    case CATALOG_DTYPE_DOUBLE:
        return TENSORFLOW__DATA_TYPE__DT_DOUBLE;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return TENSORFLOW__DATA_TYPE__DT_INT64;
    case CATALOG_DTYPE_INT32:
        return TENSORFLOW__DATA_TYPE__DT_INT32;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        return TENSORFLOW__DATA_TYPE__DT_STRING;
    case CATALOG_DTYPE_BOOL:
        return TENSORFLOW__DATA_TYPE__DT_BOOL;
    default:
        return TENSORFLOW__DATA_TYPE__DT_INVALID;
    }
}

static const char *tf_dtype_name(Tensorflow__DataType t)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&tensorflow__data_type__descriptor, (int)t);
    return v != NULL ? v->name : "an unknown DataType";
}

/* ------------------------------------------------------------------------------------------ */
/* Entity inputs                                                                               */

static int64_t le_get(const uint8_t *p, size_t width)
{
    uint64_t x = 0;
    for (size_t i = 0; i < width; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return width == 4 ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
}

static int batch_of(const Tensorflow__TensorProto *t, size_t *batch, char *why, size_t why_cap)
{
    const Tensorflow__TensorShapeProto *sh = t->tensor_shape;
    if (sh == NULL || sh->unknown_rank || sh->n_dim == 0 || sh->n_dim > 2) {
        snprintf(why, why_cap, "has shape %s; entity inputs must be [batch] or [batch, 1]",
                 sh == NULL || sh->n_dim == 0 ? "[] (a scalar)"
                 : sh->unknown_rank           ? "of unknown rank"
                                              : "of more than two dimensions");
        return -EINVAL;
    }
    if (sh->n_dim == 2 && sh->dim[1]->size != 1) {
        snprintf(why, why_cap,
                 "has shape [%lld, %lld]; entity inputs must be [batch] or [batch, 1]",
                 (long long)sh->dim[0]->size, (long long)sh->dim[1]->size);
        return -EINVAL;
    }
    if (sh->dim[0]->size < 0) {
        snprintf(why, why_cap, "has an unknown batch dimension (%lld)",
                 (long long)sh->dim[0]->size);
        return -EINVAL;
    }
    *batch = (size_t)sh->dim[0]->size;
    return 0;
}

/* Integer keys: n values from the typed field or from tensor_content, widened to int64. */
static int int_keys(const Tensorflow__TensorProto *t, size_t batch, base_arena_t *a, int64_t **out,
                    char *why, size_t why_cap)
{
    bool is64 = t->dtype == TENSORFLOW__DATA_TYPE__DT_INT64;
    size_t width = is64 ? 8 : 4;
    size_t have = t->tensor_content.len > 0 ? t->tensor_content.len / width
                  : is64                    ? t->n_int64_val
                                            : t->n_int_val;
    if (t->tensor_content.len > 0 && t->tensor_content.len % width != 0) {
        snprintf(why, why_cap, "has %zu bytes of tensor_content, not a multiple of %zu",
                 t->tensor_content.len, width);
        return -EINVAL;
    }
    if (have != batch) {
        snprintf(why, why_cap, "has %zu values for a batch of %zu", have, batch);
        return -EINVAL;
    }
    int64_t *v = base_arena_calloc(a, batch == 0 ? 1 : batch, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < batch; i++) {
        if (t->tensor_content.len > 0)
            v[i] = le_get(t->tensor_content.data + i * width, width);
        else
            v[i] = is64 ? t->int64_val[i] : t->int_val[i];
    }
    *out = v;
    return 0;
}

int codec_tensor_to_keys(const Tensorflow__TensorProto *t, catalog_dtype_t want, base_arena_t *a,
                         catalog_value_t **vals, size_t *batch, char *why, size_t why_cap)
{
    size_t n = 0;
    int rc = batch_of(t, &n, why, why_cap);
    if (rc < 0)
        return rc;
    /* A join key no view of the binding uses: read the tensor as its own type says. */
    if (want == CATALOG_DTYPE_INVALID)
        want = t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING ? CATALOG_DTYPE_STRING
                                                            : CATALOG_DTYPE_INT64;
    bool want_int = want == CATALOG_DTYPE_INT64 || want == CATALOG_DTYPE_INT32;
    bool is_int =
        t->dtype == TENSORFLOW__DATA_TYPE__DT_INT64 || t->dtype == TENSORFLOW__DATA_TYPE__DT_INT32;
    bool is_str = t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING;
    if ((want_int && !is_int) || (!want_int && !is_str)) {
        snprintf(why, why_cap, "is %s; a %s join key takes %s", tf_dtype_name(t->dtype),
                 catalog_dtype_name(want), want_int ? "DT_INT64 or DT_INT32" : "DT_STRING");
        return -EINVAL;
    }
    /* The shape is only a claim: nothing is allocated until the values are known to be there,
     * so a small request cannot ask for a huge batch. */
    catalog_value_t *v = NULL;
    if (is_str) {
        if (t->tensor_content.len > 0) {
            snprintf(why, why_cap, "is DT_STRING with tensor_content; send strings in string_val");
            return -EINVAL;
        }
        if (t->n_string_val != n) {
            snprintf(why, why_cap, "has %zu values for a batch of %zu", t->n_string_val, n);
            return -EINVAL;
        }
        v = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            v[i].type = want;
            v[i].u.bytes.data = t->string_val[i].data;
            v[i].u.bytes.len = t->string_val[i].len;
        }
    } else {
        int64_t *ints = NULL;
        rc = int_keys(t, n, a, &ints, why, why_cap);
        if (rc < 0)
            return rc;
        v = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            v[i].type = want;
            if (want == CATALOG_DTYPE_INT64) {
                v[i].u.i64 = ints[i];
            } else if (ints[i] < INT32_MIN || ints[i] > INT32_MAX) {
                snprintf(why, why_cap, "value %lld (row %zu) is out of range for an INT32 key",
                         (long long)ints[i], i);
                return -EINVAL;
            } else {
                v[i].u.i32 = (int32_t)ints[i];
            }
        }
    }
    *vals = v;
    *batch = n;
    return 0;
}

/* Request data: a [batch] or [batch, 1] tensor of DT_INT64, DT_INT32, DT_FLOAT, DT_DOUBLE,
 * DT_BOOL or DT_STRING, read as its type says. */
int codec_tensor_to_values(const Tensorflow__TensorProto *t, base_arena_t *a,
                           catalog_value_t **vals, size_t *batch, char *why, size_t why_cap)
{
    /* Integers and strings are read as join keys of their own type (INVALID) are. */
    if (t->dtype == TENSORFLOW__DATA_TYPE__DT_INT64 ||
        t->dtype == TENSORFLOW__DATA_TYPE__DT_INT32 || t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING)
        return codec_tensor_to_keys(t, CATALOG_DTYPE_INVALID, a, vals, batch, why, why_cap);
    size_t n = 0;
    int rc = batch_of(t, &n, why, why_cap);
    if (rc < 0)
        return rc;
    size_t width, have;
    catalog_dtype_t type;
    switch (t->dtype) {
    case TENSORFLOW__DATA_TYPE__DT_FLOAT:
        width = 4, have = t->n_float_val, type = CATALOG_DTYPE_FLOAT;
        break;
    case TENSORFLOW__DATA_TYPE__DT_DOUBLE:
        width = 8, have = t->n_double_val, type = CATALOG_DTYPE_DOUBLE;
        break;
    case TENSORFLOW__DATA_TYPE__DT_BOOL:
        width = 1, have = t->n_bool_val, type = CATALOG_DTYPE_BOOL;
        break;
    default:
        snprintf(why, why_cap,
                 "is %s; request data takes DT_INT64, DT_INT32, DT_FLOAT, DT_DOUBLE, DT_BOOL or "
                 "DT_STRING",
                 tf_dtype_name(t->dtype));
        return -EINVAL;
    }
    if (t->tensor_content.len > 0) {
        if (t->tensor_content.len % width != 0) {
            snprintf(why, why_cap, "has %zu bytes of tensor_content, not a multiple of %zu",
                     t->tensor_content.len, width);
            return -EINVAL;
        }
        have = t->tensor_content.len / width;
    }
    if (have != n) {
        snprintf(why, why_cap, "has %zu values for a batch of %zu", have, n);
        return -EINVAL;
    }
    catalog_value_t *v = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].type = type;
        if (t->tensor_content.len > 0) {
            const uint8_t *p = t->tensor_content.data + i * width;
            if (type == CATALOG_DTYPE_FLOAT)
                memcpy(&v[i].u.f32, p, 4); /* little-endian hosts only, as TensorFlow's */
            else if (type == CATALOG_DTYPE_DOUBLE)
                memcpy(&v[i].u.f64, p, 8);
            else
                v[i].u.b = p[0] != 0;
        } else if (type == CATALOG_DTYPE_FLOAT) {
            v[i].u.f32 = t->float_val[i];
        } else if (type == CATALOG_DTYPE_DOUBLE) {
            v[i].u.f64 = t->double_val[i];
        } else {
            v[i].u.b = t->bool_val[i] != 0;
        }
    }
    *vals = v;
    *batch = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Outputs                                                                                     */

/* The shape message, its dims and the dims' pointer array, in one allocation. */
typedef struct shape_block {
    Tensorflow__TensorShapeProto sh;
    Tensorflow__TensorShapeProto__Dim dims[2];
    Tensorflow__TensorShapeProto__Dim *dimp[2];
} shape_block_t;

static int set_shape(Tensorflow__TensorProto *out, size_t n_rows, bool list, size_t width,
                     base_arena_t *a)
{
    size_t n_dim = list ? 2 : 1;
    shape_block_t *b = base_arena_alloc(a, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    tensorflow__tensor_shape_proto__init(&b->sh);
    for (size_t d = 0; d < n_dim; d++) {
        tensorflow__tensor_shape_proto__dim__init(&b->dims[d]);
        b->dims[d].size = (int64_t)(d == 0 ? n_rows : width);
        b->dimp[d] = &b->dims[d];
    }
    b->sh.n_dim = n_dim;
    b->sh.dim = b->dimp;
    out->tensor_shape = &b->sh;
    return 0;
}

int codec_tensor_from_core(const core_tensor_t *t, base_arena_t *a, Tensorflow__TensorProto *out)
{
    tensorflow__tensor_proto__init(out);
    out->dtype = codec_tensor_dtype(t->elem);
    size_t n = t->n;
    switch (t->elem) {
    case CATALOG_DTYPE_FLOAT:
        out->float_val = t->v.f32;
        out->n_float_val = n;
        break;
    case CATALOG_DTYPE_DOUBLE:
        out->double_val = t->v.f64;
        out->n_double_val = n;
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        out->int64_val = t->v.i64;
        out->n_int64_val = n;
        break;
    case CATALOG_DTYPE_INT32:
        out->int_val = t->v.i32;
        out->n_int_val = n;
        break;
    case CATALOG_DTYPE_BOOL: {
        /* protobuf_c_boolean is an int. */
        protobuf_c_boolean *b = base_arena_array(a, n == 0 ? 1 : n, sizeof *b);
        if (b == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            b[i] = t->v.b[i] ? 1 : 0;
        out->bool_val = b;
        out->n_bool_val = n;
        break;
    }
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES: {
        ProtobufCBinaryData *s = base_arena_array(a, n == 0 ? 1 : n, sizeof *s);
        if (s == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            s[i].data = (uint8_t *)(uintptr_t)t->v.bytes[i].data;
            s[i].len = t->v.bytes[i].len;
        }
        out->string_val = s;
        out->n_string_val = n;
        break;
    }
    default:
        return -EINVAL;
    }
    return set_shape(out, t->n_rows, t->list, t->width, a);
}
