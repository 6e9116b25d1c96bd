/* catalog/value.c - feast.types.Value wire codec (hand-written protobuf), equality, printing. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * The wire form, from feast/types/Value.proto:
 *   oneof val { bytes bytes_val = 1; string string_val = 2; int32 int32_val = 3;
 *               int64 int64_val = 4; double double_val = 5; float float_val = 6;
 *               bool bool_val = 7; int64 unix_timestamp_val = 8; BytesList bytes_list_val = 11;
 *               ... Int64List unix_timestamp_list_val = 18; Null null_val = 19; }
 * Each field number equals the dtype's enum value, which keeps the codec table-free. Lists are
 * `{ repeated T val = 1; }`; numeric ones go out packed (proto3) and come in either way.
 */

/* Wire types and varints are base/base.h's. */
#define WT_VARINT BASE_WT_VARINT
#define WT_I64 BASE_WT_I64
#define WT_LEN BASE_WT_LEN
#define WT_I32 BASE_WT_I32

/* int32 goes on the wire sign-extended to 64 bits: -1 is ten bytes, as protobuf does it. */
static uint64_t i32_wire(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

static bool valid_type(catalog_dtype_t t)
{
    return (t >= CATALOG_DTYPE_BYTES && t <= CATALOG_DTYPE_UNIX_TIMESTAMP) ||
           catalog_dtype_is_list(t) || t == CATALOG_DTYPE_NULL;
}

/* The bytes of the packed payload of a numeric list (its elements, back to back). */
static size_t packed_payload_size(const catalog_value_t *v)
{
    size_t n = v->u.list.n, payload = 0;
    switch (v->type) {
    case CATALOG_DTYPE_INT32_LIST:
        for (size_t i = 0; i < n; i++)
            payload += base_varint_size(i32_wire(v->u.list.v.i32[i]));
        return payload;
    case CATALOG_DTYPE_INT64_LIST:
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
        for (size_t i = 0; i < n; i++)
            payload += base_varint_size((uint64_t)v->u.list.v.i64[i]);
        return payload;
    case CATALOG_DTYPE_DOUBLE_LIST:
        return 8 * n;
    case CATALOG_DTYPE_FLOAT_LIST:
        return 4 * n;
    case CATALOG_DTYPE_BOOL_LIST:
        return n;
    default:
        return 0;
    }
}

/* The size of a list message body (what follows the outer field's length). */
static size_t list_body_size(const catalog_value_t *v)
{
    if (v->type == CATALOG_DTYPE_BYTES_LIST || v->type == CATALOG_DTYPE_STRING_LIST) {
        size_t body = 0;
        for (size_t i = 0; i < v->u.list.n; i++) {
            size_t len = v->u.list.v.bytes[i].len;
            body += 1 + base_varint_size(len) + len;
        }
        return body;
    }
    size_t payload = packed_payload_size(v);
    /* proto3 leaves an empty packed field out entirely. */
    return payload == 0 ? 0 : 1 + base_varint_size(payload) + payload;
}

size_t catalog_value_wire_size(const catalog_value_t *v)
{
    if (v == NULL || !valid_type(v->type))
        return 0;
    size_t t = base_varint_size(base_tag((unsigned)v->type, WT_VARINT));
    switch (v->type) {
    case CATALOG_DTYPE_NULL:
        return t + 1;
    case CATALOG_DTYPE_BYTES:
    case CATALOG_DTYPE_STRING:
        return t + base_varint_size(v->u.bytes.len) + v->u.bytes.len;
    case CATALOG_DTYPE_INT32:
        return t + base_varint_size(i32_wire(v->u.i32));
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return t + base_varint_size((uint64_t)v->u.i64);
    case CATALOG_DTYPE_DOUBLE:
        return t + 8;
    case CATALOG_DTYPE_FLOAT:
        return t + 4;
    case CATALOG_DTYPE_BOOL:
        return t + 1;
    default: {
        size_t body = list_body_size(v);
        return t + base_varint_size(body) + body;
    }
    }
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_fixed32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_list(uint8_t *p, const catalog_value_t *v)
{
    size_t n = v->u.list.n;
    if (v->type == CATALOG_DTYPE_BYTES_LIST || v->type == CATALOG_DTYPE_STRING_LIST) {
        for (size_t i = 0; i < n; i++) {
            const catalog_bytes_t *b = &v->u.list.v.bytes[i];
            p = base_put_varint(p, base_tag(1, WT_LEN));
            p = base_put_varint(p, b->len);
            if (b->len > 0)
                memcpy(p, b->data, b->len);
            p += b->len;
        }
        return p;
    }
    size_t payload = packed_payload_size(v);
    if (payload == 0)
        return p;
    p = base_put_varint(p, base_tag(1, WT_LEN));
    p = base_put_varint(p, payload);
    for (size_t i = 0; i < n; i++) {
        switch (v->type) {
        case CATALOG_DTYPE_INT32_LIST:
            p = base_put_varint(p, i32_wire(v->u.list.v.i32[i]));
            break;
        case CATALOG_DTYPE_INT64_LIST:
        case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
            p = base_put_varint(p, (uint64_t)v->u.list.v.i64[i]);
            break;
        case CATALOG_DTYPE_DOUBLE_LIST: {
            uint64_t bits;
            memcpy(&bits, &v->u.list.v.f64[i], 8);
            p = put_fixed64(p, bits);
            break;
        }
        case CATALOG_DTYPE_FLOAT_LIST: {
            uint32_t bits;
            memcpy(&bits, &v->u.list.v.f32[i], 4);
            p = put_fixed32(p, bits);
            break;
        }
        default:
            *p++ = v->u.list.v.b[i] ? 1 : 0;
            break;
        }
    }
    return p;
}

/* Room for any fixed-size scalar: a one-byte tag (fields below 16) and a 10-byte varint. */
#define FIXED_SCALAR_MAX 11

int catalog_value_encode(const catalog_value_t *v, uint8_t *buf, size_t cap)
{
    if (v == NULL || !valid_type(v->type))
        return -EINVAL;
    /* The common numbers, when the buffer is surely big enough, without sizing them first: bulk
     * loads and writes encode millions of them. Same bytes as the general path below. */
    if (cap >= FIXED_SCALAR_MAX) {
        unsigned f = (unsigned)v->type;
        switch (v->type) {
        case CATALOG_DTYPE_INT64:
        case CATALOG_DTYPE_UNIX_TIMESTAMP:
            buf[0] = (uint8_t)base_tag(f, WT_VARINT);
            return (int)(base_put_varint(buf + 1, (uint64_t)v->u.i64) - buf);
        case CATALOG_DTYPE_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &v->u.f64, 8);
            buf[0] = (uint8_t)base_tag(f, WT_I64);
            return (int)(put_fixed64(buf + 1, bits) - buf);
        }
        case CATALOG_DTYPE_FLOAT: {
            uint32_t bits;
            memcpy(&bits, &v->u.f32, 4);
            buf[0] = (uint8_t)base_tag(f, WT_I32);
            return (int)(put_fixed32(buf + 1, bits) - buf);
        }
        default:
            break;
        }
    }
    size_t need = catalog_value_wire_size(v);
    if (need > INT_MAX)
        return -EINVAL;
    if (need > cap)
        return -ENOSPC;
    uint8_t *p = buf;
    unsigned f = (unsigned)v->type;
    switch (v->type) {
    case CATALOG_DTYPE_NULL:
        p = base_put_varint(p, base_tag(f, WT_VARINT));
        *p++ = 0;
        break;
    case CATALOG_DTYPE_BYTES:
    case CATALOG_DTYPE_STRING:
        p = base_put_varint(p, base_tag(f, WT_LEN));
        p = base_put_varint(p, v->u.bytes.len);
        if (v->u.bytes.len > 0)
            memcpy(p, v->u.bytes.data, v->u.bytes.len);
        p += v->u.bytes.len;
        break;
    case CATALOG_DTYPE_INT32:
        p = base_put_varint(p, base_tag(f, WT_VARINT));
        p = base_put_varint(p, i32_wire(v->u.i32));
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        p = base_put_varint(p, base_tag(f, WT_VARINT));
        p = base_put_varint(p, (uint64_t)v->u.i64);
        break;
    case CATALOG_DTYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.f64, 8);
        p = base_put_varint(p, base_tag(f, WT_I64));
        p = put_fixed64(p, bits);
        break;
    }
    case CATALOG_DTYPE_FLOAT: {
        uint32_t bits;
        memcpy(&bits, &v->u.f32, 4);
        p = base_put_varint(p, base_tag(f, WT_I32));
        p = put_fixed32(p, bits);
        break;
    }
    case CATALOG_DTYPE_BOOL:
        p = base_put_varint(p, base_tag(f, WT_VARINT));
        *p++ = v->u.b ? 1 : 0;
        break;
    default: {
        size_t body = list_body_size(v);
        p = base_put_varint(p, base_tag(f, WT_LEN));
        p = base_put_varint(p, body);
        p = put_list(p, v);
        break;
    }
    }
    return (int)(p - buf);
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding: every length is checked against the bytes that are really there.                 */

static size_t elem_size(catalog_dtype_t list_type)
{
    switch (list_type) {
    case CATALOG_DTYPE_BYTES_LIST:
    case CATALOG_DTYPE_STRING_LIST:
        return sizeof(catalog_bytes_t);
    case CATALOG_DTYPE_INT32_LIST:
    case CATALOG_DTYPE_FLOAT_LIST:
        return 4;
    case CATALOG_DTYPE_BOOL_LIST:
        return sizeof(bool);
    default:
        return 8;
    }
}

static unsigned elem_wire_type(catalog_dtype_t elem)
{
    switch (elem) {
    case CATALOG_DTYPE_DOUBLE:
        return WT_I64;
    case CATALOG_DTYPE_FLOAT:
        return WT_I32;
    case CATALOG_DTYPE_BYTES:
    case CATALOG_DTYPE_STRING:
        return WT_LEN;
    default:
        return WT_VARINT;
    }
}

static uint64_t get_fixed(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Reads one non-length-delimited element of wire type wt and stores it as item n. */
static int read_elem(const uint8_t **pp, const uint8_t *end, catalog_dtype_t lt, unsigned wt,
                     void *items, size_t n)
{
    uint64_t raw;
    if (wt == WT_VARINT) {
        if (!base_get_varint(pp, end, &raw))
            return -EINVAL;
    } else {
        unsigned bytes = wt == WT_I64 ? 8 : 4;
        if ((size_t)(end - *pp) < bytes)
            return -EINVAL;
        raw = get_fixed(*pp, bytes);
        *pp += bytes;
    }
    if (items == NULL)
        return 0;
    switch (lt) {
    case CATALOG_DTYPE_INT32_LIST:
        ((int32_t *)items)[n] = (int32_t)(uint32_t)raw;
        break;
    case CATALOG_DTYPE_INT64_LIST:
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
        ((int64_t *)items)[n] = (int64_t)raw;
        break;
    case CATALOG_DTYPE_DOUBLE_LIST:
        memcpy(&((double *)items)[n], &raw, 8);
        break;
    case CATALOG_DTYPE_FLOAT_LIST: {
        uint32_t bits = (uint32_t)raw;
        memcpy(&((float *)items)[n], &bits, 4);
        break;
    }
    default:
        ((bool *)items)[n] = raw != 0;
        break;
    }
    return 0;
}

/*
 * Walks a list message body. With items == NULL it only counts (and checks) the elements, so
 * the caller can size the scratch before the second pass stores them.
 */
static int scan_list(const uint8_t *p, const uint8_t *end, catalog_dtype_t lt, void *items,
                     size_t *count)
{
    catalog_dtype_t elem = catalog_dtype_element(lt);
    unsigned ewt = elem_wire_type(elem);
    size_t n = 0;
    while (p < end) {
        uint64_t key, len;
        if (!base_get_varint(&p, end, &key) || (key >> 3) != 1)
            return -EINVAL;
        unsigned wt = (unsigned)(key & 7);
        if (ewt == WT_LEN) {
            if (wt != WT_LEN || !base_get_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return -EINVAL;
            if (items != NULL) {
                catalog_bytes_t *b = &((catalog_bytes_t *)items)[n];
                b->data = len > 0 ? p : NULL;
                b->len = (size_t)len;
            }
            p += len;
            n++;
        } else if (wt == WT_LEN) {
            if (!base_get_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return -EINVAL;
            const uint8_t *sub_end = p + len;
            while (p < sub_end) {
                if (read_elem(&p, sub_end, lt, ewt, items, n) != 0)
                    return -EINVAL;
                n++;
            }
        } else if (wt == ewt) {
            if (read_elem(&p, end, lt, ewt, items, n) != 0)
                return -EINVAL;
            n++;
        } else {
            return -EINVAL;
        }
    }
    *count = n;
    return 0;
}

static int decode_list(const uint8_t *p, size_t len, catalog_dtype_t lt, catalog_value_t *out,
                       void *scratch, size_t scratch_cap)
{
    size_t n = 0;
    int rc = scan_list(p, p + len, lt, NULL, &n);
    if (rc != 0)
        return rc;
    void *items = NULL;
    if (n > 0) {
        if (scratch == NULL)
            return -ENOSPC;
        uintptr_t base = (uintptr_t)scratch;
        uintptr_t aligned =
            (base + (alignof(max_align_t) - 1)) & ~(uintptr_t)(alignof(max_align_t) - 1);
        size_t skip = (size_t)(aligned - base);
        size_t es = elem_size(lt);
        if (skip > scratch_cap || n > (scratch_cap - skip) / es)
            return -ENOSPC;
        items = (unsigned char *)scratch + skip;
        rc = scan_list(p, p + len, lt, items, &n);
        if (rc != 0)
            return rc;
    }
    out->type = lt;
    out->u.list.n = n;
    out->u.list.v.i64 = items; /* every member of the union is a pointer at the same place */
    return 0;
}

int catalog_value_decode(const uint8_t *wire, size_t len, catalog_value_t *out, void *scratch,
                         size_t scratch_cap)
{
    catalog_value_t v;
    memset(&v, 0, sizeof v);
    v.type = CATALOG_DTYPE_NULL;
    if (wire == NULL && len > 0)
        return -EINVAL;
    const uint8_t *p = wire, *end = wire + len;
    /* A oneof seen twice keeps the last value, as protobuf parsers do. */
    while (p < end) {
        uint64_t key, x;
        if (!base_get_varint(&p, end, &key))
            return -EINVAL;
        uint64_t field = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (field == 0 || field >= 20 || field == 9 || field == 10)
            return -EINVAL;
        catalog_dtype_t t = (catalog_dtype_t)field;
        if (t == CATALOG_DTYPE_NULL) {
            if (wt != WT_VARINT || !base_get_varint(&p, end, &x))
                return -EINVAL;
            memset(&v, 0, sizeof v);
            v.type = CATALOG_DTYPE_NULL;
            continue;
        }
        unsigned want = catalog_dtype_is_list(t) ? WT_LEN : elem_wire_type(t);
        if (wt != want)
            return -EINVAL;
        memset(&v, 0, sizeof v);
        v.type = t;
        switch (t) {
        case CATALOG_DTYPE_BYTES:
        case CATALOG_DTYPE_STRING:
            if (!base_get_varint(&p, end, &x) || x > (uint64_t)(end - p))
                return -EINVAL;
            v.u.bytes.data = x > 0 ? p : NULL;
            v.u.bytes.len = (size_t)x;
            p += x;
            break;
        case CATALOG_DTYPE_INT32:
            if (!base_get_varint(&p, end, &x))
                return -EINVAL;
            v.u.i32 = (int32_t)(uint32_t)x;
            break;
        case CATALOG_DTYPE_INT64:
        case CATALOG_DTYPE_UNIX_TIMESTAMP:
            if (!base_get_varint(&p, end, &x))
                return -EINVAL;
            v.u.i64 = (int64_t)x;
            break;
        case CATALOG_DTYPE_BOOL:
            if (!base_get_varint(&p, end, &x))
                return -EINVAL;
            v.u.b = x != 0;
            break;
        case CATALOG_DTYPE_DOUBLE:
            if (end - p < 8)
                return -EINVAL;
            x = get_fixed(p, 8);
            memcpy(&v.u.f64, &x, 8);
            p += 8;
            break;
        case CATALOG_DTYPE_FLOAT: {
            if (end - p < 4)
                return -EINVAL;
            uint32_t bits = (uint32_t)get_fixed(p, 4);
            memcpy(&v.u.f32, &bits, 4);
            p += 4;
            break;
        }
        default: {
            if (!base_get_varint(&p, end, &x) || x > (uint64_t)(end - p))
                return -EINVAL;
            int rc = decode_list(p, (size_t)x, t, &v, scratch, scratch_cap);
            if (rc != 0)
                return rc;
            p += x;
            break;
        }
        }
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Equality and printing                                                                       */

static bool f64_eq(double a, double b)
{
    if (a == 0.0 && b == 0.0)
        return true;
    return memcmp(&a, &b, sizeof a) == 0;
}

static bool f32_eq(float a, float b)
{
    if (a == 0.0f && b == 0.0f)
        return true;
    return memcmp(&a, &b, sizeof a) == 0;
}

static bool bytes_eq(const catalog_bytes_t *a, const catalog_bytes_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

bool catalog_value_equal(const catalog_value_t *a, const catalog_value_t *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case CATALOG_DTYPE_NULL:
        return true;
    case CATALOG_DTYPE_BYTES:
    case CATALOG_DTYPE_STRING:
        return bytes_eq(&a->u.bytes, &b->u.bytes);
    case CATALOG_DTYPE_INT32:
        return a->u.i32 == b->u.i32;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return a->u.i64 == b->u.i64;
    case CATALOG_DTYPE_DOUBLE:
        return f64_eq(a->u.f64, b->u.f64);
    case CATALOG_DTYPE_FLOAT:
        return f32_eq(a->u.f32, b->u.f32);
    case CATALOG_DTYPE_BOOL:
        return a->u.b == b->u.b;
    default:
        break;
    }
    if (!catalog_dtype_is_list(a->type) || a->u.list.n != b->u.list.n)
        return false;
    for (size_t i = 0; i < a->u.list.n; i++) {
        catalog_value_t x, y;
        catalog_list_item(a, i, &x);
        catalog_list_item(b, i, &y);
        if (!catalog_value_equal(&x, &y))
            return false;
    }
    return true;
}

void catalog_list_item(const catalog_value_t *list, size_t i, catalog_value_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = catalog_dtype_element(list->type);
    switch (list->type) {
    case CATALOG_DTYPE_BYTES_LIST:
    case CATALOG_DTYPE_STRING_LIST:
        out->u.bytes = list->u.list.v.bytes[i];
        break;
    case CATALOG_DTYPE_INT32_LIST:
        out->u.i32 = list->u.list.v.i32[i];
        break;
    case CATALOG_DTYPE_INT64_LIST:
    case CATALOG_DTYPE_UNIX_TIMESTAMP_LIST:
        out->u.i64 = list->u.list.v.i64[i];
        break;
    case CATALOG_DTYPE_DOUBLE_LIST:
        out->u.f64 = list->u.list.v.f64[i];
        break;
    case CATALOG_DTYPE_FLOAT_LIST:
        out->u.f32 = list->u.list.v.f32[i];
        break;
    case CATALOG_DTYPE_BOOL_LIST:
        out->u.b = list->u.list.v.b[i];
        break;
    default:
        out->type = CATALOG_DTYPE_INVALID;
        break;
    }
}

void catalog__format_double(double d, char *buf, size_t cap)
{
    if (isnan(d)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, cap, d < 0 ? "-inf" : "inf");
        return;
    }
    /* Whole numbers print as such ("10", not "1e+01"): bounds and defaults read better. */
    if (fabs(d) < 1e15 && d == trunc(d)) {
        snprintf(buf, cap, "%.0f", d);
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        double back = strtod(tmp, NULL);
        if (memcmp(&back, &d, sizeof d) == 0)
            break;
    }
    snprintf(buf, cap, "%s", tmp);
}

void catalog__format_float(float f, char *buf, size_t cap)
{
    if (isnan(f) || isinf(f)) {
        catalog__format_double((double)f, buf, cap);
        return;
    }
    if (fabsf(f) < 1e7f && f == truncf(f)) {
        snprintf(buf, cap, "%.0f", (double)f);
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        float back = strtof(tmp, NULL);
        if (memcmp(&back, &f, sizeof f) == 0)
            break;
    }
    snprintf(buf, cap, "%s", tmp);
}

/* A tiny bounded writer with snprintf's contract: it counts what it could not store. */
typedef struct writer {
    char *buf;
    size_t cap, n;
} writer_t;

static void w_put(writer_t *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++, w->n++) {
        if (w->n + 1 < w->cap)
            w->buf[w->n] = s[i];
    }
}

static void w_str(writer_t *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_quoted(writer_t *w, const catalog_bytes_t *b)
{
    w_put(w, "\"", 1);
    for (size_t i = 0; i < b->len; i++) {
        unsigned char ch = b->data[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            w_put(w, esc, 2);
        } else if (ch == '\n') {
            w_str(w, "\\n");
        } else if (ch == '\t') {
            w_str(w, "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            w_str(w, esc);
        } else {
            w_put(w, (const char *)&ch, 1);
        }
    }
    w_put(w, "\"", 1);
}

static void w_scalar(writer_t *w, const catalog_value_t *v)
{
    char num[48];
    switch (v->type) {
    case CATALOG_DTYPE_NULL:
        w_str(w, "null");
        return;
    case CATALOG_DTYPE_STRING:
        w_quoted(w, &v->u.bytes);
        return;
    case CATALOG_DTYPE_BYTES: {
        w_str(w, "b64:");
        for (size_t i = 0; i < v->u.bytes.len; i += 48) {
            size_t chunk = v->u.bytes.len - i < 48 ? v->u.bytes.len - i : 48;
            char enc[72];
            enc[base_base64_encode(v->u.bytes.data + i, chunk, enc)] = '\0';
            w_str(w, enc);
        }
        return;
    }
    case CATALOG_DTYPE_INT32:
        snprintf(num, sizeof num, "%" PRId32, v->u.i32);
        break;
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        snprintf(num, sizeof num, "%" PRId64, v->u.i64);
        break;
    case CATALOG_DTYPE_DOUBLE:
        catalog__format_double(v->u.f64, num, sizeof num);
        break;
    case CATALOG_DTYPE_FLOAT:
        catalog__format_float(v->u.f32, num, sizeof num);
        break;
    case CATALOG_DTYPE_BOOL:
        snprintf(num, sizeof num, "%s", v->u.b ? "true" : "false");
        break;
    default:
        snprintf(num, sizeof num, "<invalid>");
        break;
    }
    w_str(w, num);
}

size_t catalog_value_format(const catalog_value_t *v, char *buf, size_t cap)
{
    writer_t w = {buf, cap, 0};
    if (!catalog_dtype_is_list(v->type)) {
        w_scalar(&w, v);
    } else {
        w_put(&w, "[", 1);
        for (size_t i = 0; i < v->u.list.n; i++) {
            catalog_value_t item;
            catalog_list_item(v, i, &item);
            if (i > 0)
                w_put(&w, ", ", 2);
            w_scalar(&w, &item);
        }
        w_put(&w, "]", 1);
    }
    if (cap > 0)
        buf[w.n < cap ? w.n : cap - 1] = '\0';
    return w.n;
}
