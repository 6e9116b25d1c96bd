/* codec/values.c - feast.types.Value (protobuf-c) <-> catalog_value_t, and request columns. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

/*
 * protobuf-c and the catalog lay most values out the same way (int64_t arrays, doubles), so most
 * conversions only point; bools (protobuf_c_boolean is an int), bytes and strings differ and are
 * copied into the call's arena.
 */

int codec_value_from_pb(const Feast__Types__Value *pb, base_arena_t *a, catalog_value_t *out,
                        char *why, size_t why_cap)
{
    catalog_value_t v;
    memset(&v, 0, sizeof v);
    if (pb->base.n_unknown_fields > 0) {
        /* Newer Feast types (maps, sets, ...) arrive as fields we do not know; reading them as
         * null would silently lose data, so they are refused. */
        snprintf(why, why_cap,
                 "unsupported value type (feast.types.Value field %u); fstore supports types up "
                 "to NULL (19)",
                 (unsigned)pb->base.unknown_fields[0].tag);
        return -EINVAL;
    }
    switch (pb->val_case) {
    case FEAST__TYPES__VALUE__VAL__NOT_SET:
    case FEAST__TYPES__VALUE__VAL_NULL_VAL:
        v.type = CATALOG_DTYPE_NULL;
        break;
    case FEAST__TYPES__VALUE__VAL_BYTES_VAL:
        v.type = CATALOG_DTYPE_BYTES;
        v.u.bytes.data = pb->bytes_val.data;
        v.u.bytes.len = pb->bytes_val.len;
        break;
    case FEAST__TYPES__VALUE__VAL_STRING_VAL:
        v.type = CATALOG_DTYPE_STRING;
        v.u.bytes.data = (const uint8_t *)pb->string_val;
        v.u.bytes.len = strlen(pb->string_val);
        break;
    case FEAST__TYPES__VALUE__VAL_INT32_VAL:
        v.type = CATALOG_DTYPE_INT32;
        v.u.i32 = pb->int32_val;
        break;
    case FEAST__TYPES__VALUE__VAL_INT64_VAL:
        v.type = CATALOG_DTYPE_INT64;
        v.u.i64 = pb->int64_val;
        break;
    case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL:
        v.type = CATALOG_DTYPE_UNIX_TIMESTAMP;
        v.u.i64 = pb->unix_timestamp_val;
        break;
    case FEAST__TYPES__VALUE__VAL_DOUBLE_VAL:
        v.type = CATALOG_DTYPE_DOUBLE;
        v.u.f64 = pb->double_val;
        break;
    case FEAST__TYPES__VALUE__VAL_FLOAT_VAL:
        v.type = CATALOG_DTYPE_FLOAT;
        v.u.f32 = pb->float_val;
        break;
    case FEAST__TYPES__VALUE__VAL_BOOL_VAL:
        v.type = CATALOG_DTYPE_BOOL;
        v.u.b = pb->bool_val != 0;
        break;
    case FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL:
    case FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL: {
        bool is_bytes = pb->val_case == FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL;
        size_t n = is_bytes ? pb->bytes_list_val->n_val : pb->string_list_val->n_val;
        catalog_bytes_t *items = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            if (is_bytes) {
                items[i].data = pb->bytes_list_val->val[i].data;
                items[i].len = pb->bytes_list_val->val[i].len;
            } else {
                items[i].data = (const uint8_t *)pb->string_list_val->val[i];
                items[i].len = strlen(pb->string_list_val->val[i]);
            }
        }
        v.type = is_bytes ? CATALOG_DTYPE_BYTES_LIST : CATALOG_DTYPE_STRING_LIST;
        v.u.list.n = n;
        v.u.list.v.bytes = items;
        break;
    }
    case FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL:
        v.type = CATALOG_DTYPE_INT32_LIST;
        v.u.list.n = pb->int32_list_val->n_val;
        v.u.list.v.i32 = pb->int32_list_val->val;
        break;
    case FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL:
        v.type = CATALOG_DTYPE_INT64_LIST;
        v.u.list.n = pb->int64_list_val->n_val;
        v.u.list.v.i64 = pb->int64_list_val->val;
        break;
    case FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_LIST_VAL:
        v.type = CATALOG_DTYPE_UNIX_TIMESTAMP_LIST;
        v.u.list.n = pb->unix_timestamp_list_val->n_val;
        v.u.list.v.i64 = pb->unix_timestamp_list_val->val;
        break;
    case FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL:
        v.type = CATALOG_DTYPE_DOUBLE_LIST;
        v.u.list.n = pb->double_list_val->n_val;
        v.u.list.v.f64 = pb->double_list_val->val;
        break;
    case FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL:
        v.type = CATALOG_DTYPE_FLOAT_LIST;
        v.u.list.n = pb->float_list_val->n_val;
        v.u.list.v.f32 = pb->float_list_val->val;
        break;
    case FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL: {
        size_t n = pb->bool_list_val->n_val;
        bool *items = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            items[i] = pb->bool_list_val->val[i] != 0;
        v.type = CATALOG_DTYPE_BOOL_LIST;
        v.u.list.n = n;
        v.u.list.v.b = items;
        break;
    }
    default:
        snprintf(why, why_cap, "unsupported value type (feast.types.Value field %d)",
                 (int)pb->val_case);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* protobuf-c's message structs hold non-const pointers; the values we point at are only read
 * by protobuf-c's packer, never written. */
#define UNCONST(p) ((void *)(uintptr_t)(p))

int codec_value_to_pb(const catalog_value_t *v, base_arena_t *a, Feast__Types__Value *out)
{
    feast__types__value__init(out);
    size_t n = v->u.list.n;
    switch (v->type) {
    case CATALOG_DTYPE_BYTES:
        out->val_case = FEAST__TYPES__VALUE__VAL_BYTES_VAL;
        out->bytes_val.data = UNCONST(v->u.bytes.data);
        out->bytes_val.len = v->u.bytes.len;
        return 0;
    case CATALOG_DTYPE_STRING:
        out->val_case = FEAST__TYPES__VALUE__VAL_STRING_VAL;
        out->string_val = base_arena_strndup(a, (const char *)v->u.bytes.data, v->u.bytes.len);
        return out->string_val == NULL ? -ENOMEM : 0;
    case CATALOG_DTYPE_INT32:
        out->val_case = FEAST__TYPES__VALUE__VAL_INT32_VAL;
        out->int32_val = v->u.i32;
        return 0;
    case CATALOG_DTYPE_INT64:
        out->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
        out->int64_val = v->u.i64;
        return 0;
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        out->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_VAL;
        out->unix_timestamp_val = v->u.i64;
        return 0;
    case CATALOG_DTYPE_DOUBLE:
        out->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
        out->double_val = v->u.f64;
        return 0;
    case CATALOG_DTYPE_FLOAT:
        out->val_case = FEAST__TYPES__VALUE__VAL_FLOAT_VAL;
        out->float_val = v->u.f32;
        return 0;
    case CATALOG_DTYPE_BOOL:
        out->val_case = FEAST__TYPES__VALUE__VAL_BOOL_VAL;
        out->bool_val = v->u.b;
        return 0;
    case CATALOG_DTYPE_BYTES_LIST: {
        Feast__Types__BytesList *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__bytes_list__init(l);
        ProtobufCBinaryData *items = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (l == NULL || items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            items[i].data = UNCONST(v->u.list.v.bytes[i].data);
            items[i].len = v->u.list.v.bytes[i].len;
        }
        l->n_val = n;
        l->val = items;
        out->val_case = FEAST__TYPES__VALUE__VAL_BYTES_LIST_VAL;
        out->bytes_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_STRING_LIST: {
        Feast__Types__StringList *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__string_list__init(l);
        char **items = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (l == NULL || items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            items[i] = base_arena_strndup(a, (const char *)v->u.list.v.bytes[i].data,
                                          v->u.list.v.bytes[i].len);
            if (items[i] == NULL)
                return -ENOMEM;
        }
        l->n_val = n;
        l->val = items;
        out->val_case = FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL;
        out->string_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_INT32_LIST: {
        Feast__Types__Int32List *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__int32_list__init(l);
        if (l == NULL)
            return -ENOMEM;
        l->n_val = n;
        l->val = UNCONST(v->u.list.v.i32);
        out->val_case = FEAST__TYPES__VALUE__VAL_INT32_LIST_VAL;
        out->int32_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_INT64_LIST:
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST: {
        Feast__Types__Int64List *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__int64_list__init(l);
        if (l == NULL)
            return -ENOMEM;
        l->n_val = n;
        l->val = UNCONST(v->u.list.v.i64);
        if (v->type == CATALOG_DTYPE_INT64_LIST) {
            out->val_case = FEAST__TYPES__VALUE__VAL_INT64_LIST_VAL;
            out->int64_list_val = l;
        } else {
            out->val_case = FEAST__TYPES__VALUE__VAL_UNIX_TIMESTAMP_LIST_VAL;
            out->unix_timestamp_list_val = l;
        }
        return 0;
    }
    case CATALOG_DTYPE_DOUBLE_LIST: {
        Feast__Types__DoubleList *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__double_list__init(l);
        if (l == NULL)
            return -ENOMEM;
        l->n_val = n;
        l->val = UNCONST(v->u.list.v.f64);
        out->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_LIST_VAL;
        out->double_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_FLOAT_LIST: {
        Feast__Types__FloatList *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__float_list__init(l);
        if (l == NULL)
            return -ENOMEM;
        l->n_val = n;
        l->val = UNCONST(v->u.list.v.f32);
        out->val_case = FEAST__TYPES__VALUE__VAL_FLOAT_LIST_VAL;
        out->float_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_BOOL_LIST: {
        Feast__Types__BoolList *l = base_arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__bool_list__init(l);
        protobuf_c_boolean *items = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (l == NULL || items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            items[i] = v->u.list.v.b[i];
        l->n_val = n;
        l->val = items;
        out->val_case = FEAST__TYPES__VALUE__VAL_BOOL_LIST_VAL;
        out->bool_list_val = l;
        return 0;
    }
    case CATALOG_DTYPE_NULL:
    default:
        out->val_case = FEAST__TYPES__VALUE__VAL_NULL_VAL;
        out->null_val = FEAST__TYPES__NULL__NULL;
        return 0;
    }
}

int codec_columns_from_pb(core_ctx_t *ctx, const char *what, size_t n, const char *const *keys,
                          Feast__Types__RepeatedValue *const *vals,
                          const core_columns_limits_t *lim, core_columns_t *out)
{
    base_arena_t *a = ctx->arena;
    memset(out, 0, sizeof *out);
    if (n > lim->max_cols)
        return core_fail(ctx, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n, what,
                         lim->max_cols, lim->max_cols_why);

    /* Pass 1, the shape: names, lengths and the row limit, before any value is converted. */
    size_t *lens = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
    if (lens == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        lens[i] = vals[i] != NULL ? vals[i]->n_val : 0;
    size_t rows = 0;
    int rc = core_columns_shape(ctx, what, n, keys, lens, lim, &rows);
    if (rc < 0)
        return rc;

    /* Pass 2, the values. */
    out->names = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *out->names);
    out->cols = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *out->cols);
    if (out->names == NULL || out->cols == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = keys[i];
        catalog_value_t *col = base_arena_calloc(a, rows == 0 ? 1 : rows, sizeof *col);
        if (col == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
        for (size_t r = 0; r < rows; r++) {
            char why[200];
            int vrc = codec_value_from_pb(vals[i]->val[r], a, &col[r], why, sizeof why);
            if (vrc == -ENOMEM)
                return core_fail(ctx, vrc, "out of memory");
            if (vrc < 0)
                return core_fail(ctx, vrc, "%s '%s', row %zu: %s", what, name, r, why);
        }
        out->names[i] = name;
        out->cols[i] = col;
    }
    out->n_cols = n;
    out->n_rows = rows;
    return 0;
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the bounds google.protobuf.Timestamp allows. */
#define TIMESTAMP_MIN_SECONDS (-62135596800LL)
#define TIMESTAMP_MAX_SECONDS 253402300799LL

int codec_ts_from_pb(core_ctx_t *ctx, const char *what, Google__Protobuf__Timestamp *const *ts,
                     size_t n, bool zero_is_now, int64_t now, int64_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__Timestamp *t = ts[i];
        if (t->nanos < 0 || t->nanos > 999999999)
            return core_fail(ctx, -EINVAL, "%s[%zu]: nanos out of range", what, i);
        if (t->seconds < TIMESTAMP_MIN_SECONDS || t->seconds > TIMESTAMP_MAX_SECONDS)
            return core_fail(ctx, -EINVAL, "%s[%zu]: seconds out of range (years 1 to 9999)", what,
                             i);
        out[i] = zero_is_now && t->seconds == 0 && t->nanos == 0
                     ? now
                     : t->seconds * 1000000 + t->nanos / 1000;
    }
    return 0;
}

int codec_feature_list_from_pb(base_arena_t *a, const char *service,
                               const Feast__Serving__FeatureList *features, bool full_names,
                               core_feature_list_t *out)
{
    memset(out, 0, sizeof *out);
    out->full_names = full_names;
    if (service != NULL) {
        out->kind = CORE_LIST_SERVICE;
        out->service = service;
        out->service_len = strlen(service);
        return 0;
    }
    if (features == NULL)
        return 0;
    size_t n = features->n_val;
    size_t *lens = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
    if (lens == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(features->val[i]);
    /* Never NULL: core_resolve() would take the list for unparsed. */
    static const char *const no_features[1] = {""};
    const char *const *refs = n > 0 ? (const char *const *)features->val : no_features;
    int rc = base_wire_strings(a, refs, lens, n, &out->key, &out->key_len);
    if (rc < 0)
        return rc;
    out->kind = CORE_LIST_FEATURES;
    out->n_refs = n;
    out->refs = refs;
    out->ref_lens = lens;
    return 0;
}
