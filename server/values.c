/* server/values.c - feast.types.Value (protobuf-c) <-> catalog_value_t, and request columns. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

/*
 * protobuf-c and the catalog lay most values out the same way (int64_t arrays, doubles), so most
 * conversions only point; bools (protobuf_c_boolean is an int), bytes and strings differ and are
 * copied into the call's arena.
 */

int server__value_from_pb(const Feast__Types__Value *pb, server_arena_t *a, catalog_value_t *out,
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
        catalog_bytes_t *items = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
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
        bool *items = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
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

int server__value_to_pb(const catalog_value_t *v, server_arena_t *a, Feast__Types__Value *out)
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
        out->string_val = server__arena_strndup(a, (const char *)v->u.bytes.data, v->u.bytes.len);
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
        Feast__Types__BytesList *l = server__arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__bytes_list__init(l);
        ProtobufCBinaryData *items = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
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
        Feast__Types__StringList *l = server__arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__string_list__init(l);
        char **items = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
        if (l == NULL || items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            items[i] = server__arena_strndup(a, (const char *)v->u.list.v.bytes[i].data,
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
        Feast__Types__Int32List *l = server__arena_alloc(a, sizeof *l);
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
        Feast__Types__Int64List *l = server__arena_alloc(a, sizeof *l);
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
        Feast__Types__DoubleList *l = server__arena_alloc(a, sizeof *l);
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
        Feast__Types__FloatList *l = server__arena_alloc(a, sizeof *l);
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
        Feast__Types__BoolList *l = server__arena_alloc(a, sizeof *l);
        if (l != NULL)
            feast__types__bool_list__init(l);
        protobuf_c_boolean *items = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *items);
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

int server__columns_find(const server_columns_t *cols, const char *name)
{
    for (size_t i = 0; i < cols->n_cols; i++) {
        if (strcmp(cols->names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

int server__find_duplicate(server_arena_t *a, const char *const *names, size_t n, size_t *first,
                           size_t *second)
{
    /* A hash index: names come from requests, so any quadratic scan over them is a way to burn
     * a worker's CPU. */
    size_t *lens = server__arena_array(a, n == 0 ? 1 : n, sizeof *lens);
    long *dup = server__arena_array(a, n == 0 ? 1 : n, sizeof *dup);
    if (lens == NULL || dup == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(names[i]);
    server_name_index_t ix;
    long repeats = server__name_index_build(a, names, lens, n, &ix, dup);
    if (repeats <= 0)
        return (int)repeats;
    for (size_t i = 0; i < n; i++) {
        if (dup[i] >= 0) {
            *first = (size_t)dup[i];
            *second = i;
            break;
        }
    }
    return 1;
}

long server__name_index_build(server_arena_t *a, const char *const *names, const size_t *lens,
                              size_t n, server_name_index_t *ix, long *dup)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slots = server__arena_calloc(a, cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    long repeats = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = (size_t)server__fnv1a(names[i], lens[i]) & (cap - 1);
        long first = -1;
        for (; slots[h] != 0; h = (h + 1) & (cap - 1)) {
            size_t j = slots[h] - 1;
            if (first < 0 && lens[j] == lens[i] && memcmp(names[j], names[i], lens[i]) == 0)
                first = (long)j;
        }
        slots[h] = (uint32_t)i + 1;
        repeats += first >= 0;
        if (dup != NULL)
            dup[i] = first;
    }
    *ix = (server_name_index_t){.slots = slots, .mask = (uint32_t)(cap - 1)};
    return repeats;
}

long server__name_index_find(const server_name_index_t *ix, const char *const *names,
                             const size_t *lens, const char *name, size_t len)
{
    size_t h = (size_t)server__fnv1a(name, len) & ix->mask;
    for (; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
        size_t j = ix->slots[h] - 1;
        if (lens[j] == len && memcmp(names[j], name, len) == 0)
            return (long)j;
    }
    return -1;
}

int server__columns_shape(server_call_t *c, const char *what, size_t n, char *const *keys,
                          const size_t *lens, const server_columns_limits_t *lim, size_t *rows_out)
{
    if (n > lim->max_cols)
        return server__fail(c, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n, what,
                            lim->max_cols, lim->max_cols_why);
    size_t rows = n > 0 ? lens[0] : 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i][0] == '\0')
            return server__fail(c, -EINVAL, "%s column with an empty name", what);
        if (lens[i] != rows)
            return server__fail(c, -EINVAL,
                                "%s columns have different lengths: '%s' has %zu values, '%s' "
                                "has %zu",
                                what, keys[0], rows, keys[i], lens[i]);
    }
    if (rows > lim->max_rows)
        return server__fail(c, -E2BIG, "request has %zu %s rows; the limit is %zu (%s)", rows, what,
                            lim->max_rows, lim->max_rows_why);
    size_t first = 0, second = 0;
    int dup = server__find_duplicate(&c->arena, (const char *const *)keys, n, &first, &second);
    if (dup < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (dup > 0)
        return server__fail(c, -EINVAL, "%s column '%s' given twice", what, keys[second]);
    *rows_out = rows;
    return 0;
}

int server__columns_from_pb(server_call_t *c, const char *what, size_t n, char *const *keys,
                            Feast__Types__RepeatedValue *const *vals,
                            const server_columns_limits_t *lim, server_columns_t *out)
{
    server_arena_t *a = &c->arena;
    memset(out, 0, sizeof *out);
    if (n > lim->max_cols)
        return server__fail(c, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n, what,
                            lim->max_cols, lim->max_cols_why);

    /* Pass 1, the shape: names, lengths and the row limit, before any value is converted. */
    size_t *lens = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
    if (lens == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        lens[i] = vals[i] != NULL ? vals[i]->n_val : 0;
    size_t rows = 0;
    int rc = server__columns_shape(c, what, n, keys, lens, lim, &rows);
    if (rc < 0)
        return rc;

    /* Pass 2, the values. */
    out->names = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *out->names);
    out->cols = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *out->cols);
    out->pb = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *out->pb);
    if (out->names == NULL || out->cols == NULL || out->pb == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = keys[i];
        catalog_value_t *col = server__arena_calloc(a, rows == 0 ? 1 : rows, sizeof *col);
        if (col == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t r = 0; r < rows; r++) {
            char why[200];
            int vrc = server__value_from_pb(vals[i]->val[r], a, &col[r], why, sizeof why);
            if (vrc == -ENOMEM)
                return server__fail(c, vrc, "out of memory");
            if (vrc < 0)
                return server__fail(c, vrc, "%s '%s', row %zu: %s", what, name, r, why);
        }
        out->names[i] = name;
        out->cols[i] = col;
        out->pb[i] = vals[i];
    }
    out->n_cols = n;
    out->n_rows = rows;
    return 0;
}
