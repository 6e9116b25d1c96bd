/* server/predict_tensor.c - TensorProto <-> fstore values: entity keys in, features out. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Inputs: entity tensors carry join keys, so only the integer and string types are read, in
 * either of TensorFlow's encodings (typed repeated fields, packed or not, which protobuf-c
 * already folds together; or raw little-endian tensor_content). Outputs always use the typed
 * fields: every TensorFlow client reads them, and strings have no other form anyway.
 *
 * Lists become a second dimension, so every row of a batch must hold the same number of items.
 * Ragged lists are refused rather than padded: a pad value the model never saw in training
 * would change predictions silently, while an error names the feature and the rows.
 */

Tensorflow__DataType server__tensor_dtype(catalog_dtype_t t)
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
static int int_keys(const Tensorflow__TensorProto *t, size_t batch, server_arena_t *a,
                    int64_t **out, char *why, size_t why_cap)
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
    int64_t *v = server__arena_calloc(a, batch == 0 ? 1 : batch, sizeof *v);
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

int server__tensor_to_keys(const Tensorflow__TensorProto *t, catalog_dtype_t want,
                           server_arena_t *a, catalog_value_t **vals, size_t *batch, char *why,
                           size_t why_cap)
{
    size_t n = 0;
    int rc = batch_of(t, &n, why, why_cap);
    if (rc < 0)
        return rc;
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
        v = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *v);
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
        v = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *v);
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

/* ------------------------------------------------------------------------------------------ */
/* Feature outputs                                                                             */

static bool usable_default(const catalog_feature_t *f)
{
    return f->has_default && f->default_value.type != CATALOG_DTYPE_NULL;
}

/* Decodes one present cell as f's type. Returns: 0 (out->type NULL for a stored null), -EIO. */
static int decode_cell(const catalog_feature_t *f, const server_cell_t *cell, server_arena_t *a,
                       catalog_value_t *out, char *why, size_t why_cap)
{
    /* Scalars never touch scratch, so a scalar feature decodes with none from the arena (a batch
     * of 100 x 50 would otherwise keep 300 KB per call slot); only a stored list, which is a type
     * error for a scalar feature, needs real scratch to be decoded and named. List items land in
     * arena scratch and must outlive this call. */
    alignas(max_align_t) unsigned char local[64];
    void *scratch = local;
    size_t cap = sizeof local;
    int rc = -ENOSPC;
    if (!catalog_dtype_is_list(f->dtype))
        rc = catalog_value_decode(cell->wire, cell->len, out, scratch, cap);
    if (rc == -ENOSPC) {
        cap = 16 * (size_t)cell->len + 64;
        scratch = server__arena_alloc(a, cap);
        if (scratch == NULL)
            return -ENOMEM;
        rc = catalog_value_decode(cell->wire, cell->len, out, scratch, cap);
    }
    if (rc < 0) {
        snprintf(why, why_cap, "the stored value does not decode (%d)", rc);
        return -EIO;
    }
    if (out->type == CATALOG_DTYPE_NULL || out->type == f->dtype)
        return 0;
    /* Writers may store INT32 values in INT64 features (the catalog allows the widening). */
    if (f->dtype == CATALOG_DTYPE_INT64 && out->type == CATALOG_DTYPE_INT32) {
        out->type = CATALOG_DTYPE_INT64;
        out->u.i64 = out->u.i32;
        return 0;
    }
    if (f->dtype == CATALOG_DTYPE_INT64_LIST && out->type == CATALOG_DTYPE_INT32_LIST) {
        int64_t *w = server__arena_calloc(a, out->u.list.n == 0 ? 1 : out->u.list.n, sizeof *w);
        if (w == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < out->u.list.n; i++)
            w[i] = out->u.list.v.i32[i];
        out->type = CATALOG_DTYPE_INT64_LIST;
        out->u.list.v.i64 = w;
        return 0;
    }
    snprintf(why, why_cap, "the stored value is %s, the feature is %s",
             catalog_dtype_name(out->type), catalog_dtype_name(f->dtype));
    return -EIO;
}

/* Copies item i of v (a scalar when i is ignored) into slot k of the typed arrays of out. */
static void put_item(Tensorflow__TensorProto *out, catalog_dtype_t elem, const catalog_value_t *v,
                     bool list, size_t i, size_t k)
{
    switch (elem) {
    case CATALOG_DTYPE_FLOAT:
        out->float_val[k] = list ? v->u.list.v.f32[i] : v->u.f32;
        break;
    case CATALOG_DTYPE_DOUBLE:
        out->double_val[k] = list ? v->u.list.v.f64[i] : v->u.f64;
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        out->int64_val[k] = list ? v->u.list.v.i64[i] : v->u.i64;
        break;
    case CATALOG_DTYPE_INT32:
        out->int_val[k] = list ? v->u.list.v.i32[i] : v->u.i32;
        break;
    case CATALOG_DTYPE_BOOL:
        out->bool_val[k] = (list ? v->u.list.v.b[i] : v->u.b) ? 1 : 0;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES: {
        catalog_bytes_t b = list ? v->u.list.v.bytes[i] : v->u.bytes;
        out->string_val[k].data = (uint8_t *)b.data;
        out->string_val[k].len = b.len;
        break;
    }
    default:
        break;
    }
}

/* Allocates n zeroed items in the typed field of out that dtype uses. */
static int alloc_values(Tensorflow__TensorProto *out, catalog_dtype_t elem, size_t n,
                        server_arena_t *a)
{
    size_t m = n == 0 ? 1 : n;
    void *p = NULL;
    switch (elem) {
    case CATALOG_DTYPE_FLOAT:
        p = out->float_val = server__arena_calloc(a, m, sizeof *out->float_val);
        out->n_float_val = n;
        break;
    case CATALOG_DTYPE_DOUBLE:
        p = out->double_val = server__arena_calloc(a, m, sizeof *out->double_val);
        out->n_double_val = n;
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        p = out->int64_val = server__arena_calloc(a, m, sizeof *out->int64_val);
        out->n_int64_val = n;
        break;
    case CATALOG_DTYPE_INT32:
        p = out->int_val = server__arena_calloc(a, m, sizeof *out->int_val);
        out->n_int_val = n;
        break;
    case CATALOG_DTYPE_BOOL:
        p = out->bool_val = server__arena_calloc(a, m, sizeof *out->bool_val);
        out->n_bool_val = n;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        p = out->string_val = server__arena_calloc(a, m, sizeof *out->string_val);
        out->n_string_val = n;
        break;
    default:
        return -EINVAL;
    }
    return p != NULL ? 0 : -ENOMEM;
}

static int set_shape(Tensorflow__TensorProto *out, size_t n_rows, bool list, size_t width,
                     server_arena_t *a)
{
    size_t n_dim = list ? 2 : 1;
    Tensorflow__TensorShapeProto *sh = server__arena_alloc(a, sizeof *sh);
    /* Every element is set below. */
    Tensorflow__TensorShapeProto__Dim *dims = server__arena_array(a, n_dim, sizeof *dims);
    Tensorflow__TensorShapeProto__Dim **dimp = server__arena_array(a, n_dim, sizeof *dimp);
    if (sh == NULL || dims == NULL || dimp == NULL)
        return -ENOMEM;
    tensorflow__tensor_shape_proto__init(sh);
    for (size_t d = 0; d < n_dim; d++) {
        tensorflow__tensor_shape_proto__dim__init(&dims[d]);
        dims[d].size = (int64_t)(d == 0 ? n_rows : width);
        dimp[d] = &dims[d];
    }
    sh->n_dim = n_dim;
    sh->dim = dimp;
    out->tensor_shape = sh;
    return 0;
}

/*
 * Row row's value of f: the stored value, else the default, else (zero_missing) *zero = true.
 * Returns: 0; -EIO (malformed or mistyped record), -ENOENT (missing, on_missing: error),
 * -ENOMEM; *bad_row and why say which row and why.
 */
static int row_value(const catalog_feature_t *f, const server_cell_t *cells, size_t row,
                     bool zero_missing, server_arena_t *a, catalog_value_t *out, bool *zero,
                     size_t *bad_row, char *why, size_t why_cap)
{
    const server_cell_t *cell = &cells[row];
    bool missing = cell->status != STORE_STATUS_PRESENT;
    *zero = false;
    if (cell->status == STORE_STATUS_INVALID) {
        *bad_row = row;
        snprintf(why, why_cap, "the stored record is malformed");
        return -EIO;
    }
    if (!missing) {
        int rc = decode_cell(f, cell, a, out, why, why_cap);
        if (rc < 0) {
            *bad_row = row;
            return rc;
        }
        missing = out->type == CATALOG_DTYPE_NULL;
    }
    if (!missing)
        return 0;
    if (usable_default(f)) {
        *out = f->default_value;
        return 0;
    }
    if (zero_missing) {
        *zero = true;
        return 0;
    }
    *bad_row = row;
    snprintf(why, why_cap, "no value and no default (on_missing: error)");
    return -ENOENT;
}

int server__tensor_from_cells(const catalog_feature_t *f, const server_cell_t *cells, size_t n_rows,
                              bool zero_missing, server_arena_t *a, Tensorflow__TensorProto *out,
                              size_t *bad_row, char *why, size_t why_cap)
{
    catalog_dtype_t elem = catalog_dtype_element(f->dtype);
    bool list = catalog_dtype_is_list(f->dtype);
    Tensorflow__DataType dt = server__tensor_dtype(f->dtype);
    if (dt == TENSORFLOW__DATA_TYPE__DT_INVALID) {
        *bad_row = 0;
        snprintf(why, why_cap, "type %s has no tensor form", catalog_dtype_name(f->dtype));
        return -EINVAL;
    }
    tensorflow__tensor_proto__init(out);
    out->dtype = dt;

    /* Scalars: one pass straight into the dense array (it starts zeroed: 0, 0.0, false, ""). */
    if (!list) {
        int rc = alloc_values(out, elem, n_rows, a);
        if (rc == 0)
            rc = set_shape(out, n_rows, false, 0, a);
        for (size_t row = 0; rc == 0 && row < n_rows; row++) {
            catalog_value_t v;
            bool zero;
            rc = row_value(f, cells, row, zero_missing, a, &v, &zero, bad_row, why, why_cap);
            if (rc == 0 && !zero)
                put_item(out, elem, &v, false, 0, row);
        }
        return rc;
    }

    /* Lists: pass 1 finds every row's value and the common width, pass 2 fills the array. */
    catalog_value_t *vals = server__arena_calloc(a, n_rows == 0 ? 1 : n_rows, sizeof *vals);
    bool *zero = server__arena_calloc(a, n_rows == 0 ? 1 : n_rows, sizeof *zero);
    if (vals == NULL || zero == NULL)
        return -ENOMEM;
    size_t width = 0;
    bool have_width = false;
    size_t width_row = 0;
    for (size_t row = 0; row < n_rows; row++) {
        int rc = row_value(f, cells, row, zero_missing, a, &vals[row], &zero[row], bad_row, why,
                           why_cap);
        if (rc < 0)
            return rc;
        if (zero[row])
            continue;
        if (!have_width) {
            width = vals[row].u.list.n;
            width_row = row;
            have_width = true;
        } else if (vals[row].u.list.n != width) {
            *bad_row = row;
            snprintf(why, why_cap,
                     "ragged list: %zu items where row %zu has %zu; Predict needs the same "
                     "length in every row of a batch",
                     vals[row].u.list.n, width_row, width);
            return -EINVAL;
        }
    }
    int rc = alloc_values(out, elem, n_rows * width, a);
    if (rc < 0)
        return rc;
    rc = set_shape(out, n_rows, true, width, a);
    if (rc < 0)
        return rc;
    for (size_t row = 0; row < n_rows; row++) {
        if (zero[row])
            continue; /* the arrays start zeroed: 0, 0.0, false and "" */
        for (size_t i = 0; i < width; i++)
            put_item(out, elem, &vals[row], true, i, row * width + i);
    }
    return 0;
}
