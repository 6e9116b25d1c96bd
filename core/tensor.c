/* core/tensor.c - Predict's outputs: a feature's cells as one dense tensor. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Lists become a second dimension, so every row of a batch must hold the same number of items.
 * Ragged lists are refused rather than padded: a pad value the model never saw in training
 * would change predictions silently, while an error names the feature and the rows. A missing
 * value takes the feature's default, or zeros when the binding says so. The arrays are plain C
 * arrays of the element type, so a transport encodes them as its protocol's tensors (TensorProto
 * over gRPC, JSON over HTTP) without another pass over the values.
 */

static bool usable_default(const catalog_feature_t *f)
{
    return f->has_default && f->default_value.type != CATALOG_DTYPE_NULL;
}

/* Decodes one present cell as f's type. Returns: 0 (out->type NULL for a stored null), -EIO. */
static int decode_cell(const catalog_feature_t *f, const core_cell_t *cell, base_arena_t *a,
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
        scratch = base_arena_alloc(a, cap);
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
        int64_t *w = base_arena_calloc(a, out->u.list.n == 0 ? 1 : out->u.list.n, sizeof *w);
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

/* Copies item i of v (a scalar when list is false) into slot k of out's array. */
static void put_item(core_tensor_t *out, const catalog_value_t *v, bool list, size_t i, size_t k)
{
    switch (out->elem) {
    case CATALOG_DTYPE_FLOAT:
        out->v.f32[k] = list ? v->u.list.v.f32[i] : v->u.f32;
        break;
    case CATALOG_DTYPE_DOUBLE:
        out->v.f64[k] = list ? v->u.list.v.f64[i] : v->u.f64;
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        out->v.i64[k] = list ? v->u.list.v.i64[i] : v->u.i64;
        break;
    case CATALOG_DTYPE_INT32:
        out->v.i32[k] = list ? v->u.list.v.i32[i] : v->u.i32;
        break;
    case CATALOG_DTYPE_BOOL:
        out->v.b[k] = list ? v->u.list.v.b[i] : v->u.b;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        out->v.bytes[k] = list ? v->u.list.v.bytes[i] : v->u.bytes;
        break;
    default:
        break;
    }
}

/* The element size of a tensor of elem, or 0 for a type with no tensor form (NULL, INVALID). */
static size_t elem_size(catalog_dtype_t elem)
{
    switch (elem) {
    case CATALOG_DTYPE_FLOAT:
        return sizeof(float);
    case CATALOG_DTYPE_DOUBLE:
        return sizeof(double);
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return sizeof(int64_t);
    case CATALOG_DTYPE_INT32:
        return sizeof(int32_t);
    case CATALOG_DTYPE_BOOL:
        return sizeof(bool);
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        return sizeof(catalog_bytes_t);
    default:
        return 0;
    }
}

/* Allocates out's n zeroed values (0, 0.0, false, ""). Returns: 0, -ENOMEM. */
static int alloc_values(core_tensor_t *out, size_t n, base_arena_t *a)
{
    out->n = n;
    void *p = base_arena_calloc(a, n == 0 ? 1 : n, elem_size(out->elem));
    if (p == NULL)
        return -ENOMEM;
    /* Every member of the union is a pointer to the array, whichever type it holds. */
    out->v.f32 = p;
    return 0;
}

/*
 * Row row's value of f: the stored value, else the default, else (zero_missing) *zero = true.
 * Returns: 0; -EIO (a mistyped value), -EBADMSG (a damaged record), -ENOENT (missing,
 * on_missing: error),
 * -ENOMEM; *bad_row and why say which row and why.
 */
static int row_value(const catalog_feature_t *f, const core_cell_t *cells, size_t row,
                     bool zero_missing, base_arena_t *a, catalog_value_t *out, bool *zero,
                     size_t *bad_row, char *why, size_t why_cap)
{
    const core_cell_t *cell = &cells[row];
    bool missing = cell->status != STORE_STATUS_PRESENT;
    *zero = false;
    /* A computed value that broke its feature's rules (on-demand) is INVALID without bytes:
     * missing, not a damaged record. */
    if (cell->status == STORE_STATUS_INVALID && f->expr == NULL) {
        *bad_row = row;
        snprintf(why, why_cap,
                 "the stored record is damaged (its checksum does not match; run "
                 "fstore verify)");
        return -EBADMSG;
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
    snprintf(why, why_cap, "%s and no default (on_missing: error)",
             cell->status == STORE_STATUS_INVALID ? "a computed value that breaks its validation"
                                                  : "no value");
    return -ENOENT;
}

int core__tensor_from_cells(const catalog_feature_t *f, const core_cell_t *cells, size_t n_rows,
                            bool zero_missing, base_arena_t *a, core_tensor_t *out, size_t *bad_row,
                            char *why, size_t why_cap)
{
    catalog_dtype_t elem = catalog_dtype_element(f->dtype);
    bool list = catalog_dtype_is_list(f->dtype);
    if (elem_size(elem) == 0) {
        *bad_row = 0;
        snprintf(why, why_cap, "type %s has no tensor form", catalog_dtype_name(f->dtype));
        return -EINVAL;
    }
    *out = (core_tensor_t){.elem = elem, .list = list, .n_rows = n_rows, .width = 1};

    /* Scalars: one pass straight into the dense array (it starts zeroed: 0, 0.0, false, ""). */
    if (!list) {
        int rc = alloc_values(out, n_rows, a);
        for (size_t row = 0; rc == 0 && row < n_rows; row++) {
            catalog_value_t v;
            bool zero;
            rc = row_value(f, cells, row, zero_missing, a, &v, &zero, bad_row, why, why_cap);
            if (rc == 0 && !zero)
                put_item(out, &v, false, 0, row);
        }
        return rc;
    }

    /* Lists: pass 1 finds every row's value and the common width, pass 2 fills the array. */
    catalog_value_t *vals = base_arena_calloc(a, n_rows == 0 ? 1 : n_rows, sizeof *vals);
    bool *zero = base_arena_calloc(a, n_rows == 0 ? 1 : n_rows, sizeof *zero);
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
    out->width = width;
    int rc = alloc_values(out, n_rows * width, a);
    if (rc < 0)
        return rc;
    for (size_t row = 0; row < n_rows; row++) {
        if (zero[row])
            continue; /* the arrays start zeroed: 0, 0.0, false and "" */
        for (size_t i = 0; i < width; i++)
            put_item(out, &vals[row], true, i, row * width + i);
    }
    return 0;
}
