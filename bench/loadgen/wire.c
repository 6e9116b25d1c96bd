/* bench/loadgen/wire.c - protobuf wire encoding of the benchmark's requests and checks. */
#include "base/base.h"
#include "bench/loadgen/wire_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

void wbuf_free(wbuf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool reserve(wbuf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void wbuf_raw(wbuf_t *b, const void *data, size_t len)
{
    if (len == 0 || !reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void wbuf_varint(wbuf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    wbuf_raw(b, tmp, (size_t)(base_put_varint(tmp, v) - tmp));
}

void wbuf_tag(wbuf_t *b, uint32_t field, uint32_t wire_type)
{
    wbuf_varint(b, ((uint64_t)field << 3) | wire_type);
}

void wbuf_bytes(wbuf_t *b, uint32_t field, const void *data, size_t len)
{
    wbuf_tag(b, field, WT_LEN);
    wbuf_varint(b, len);
    wbuf_raw(b, data, len);
}

/* Appends sub as field `field` of b, then empties sub for reuse. */
static void put_message(wbuf_t *b, uint32_t field, wbuf_t *sub)
{
    if (sub->oom)
        b->oom = true;
    wbuf_bytes(b, field, sub->data, sub->len);
    sub->len = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The dataset                                                                                 */

bool bench_feature_is_int(uint32_t feature)
{
    return feature % 2 == 0;
}

int64_t bench_int_value(uint32_t view, uint32_t feature, int64_t id)
{
    return id * 1000 + (int64_t)view * 10 + (int64_t)feature;
}

double bench_double_value(uint32_t view, uint32_t feature, int64_t id)
{
    /* Quarters and halves of small integers are exact in binary, so a value survives CSV text
     * ("%.17g"), the server and the wire bit for bit and can be compared with ==. */
    return (double)id * 0.25 + (double)view + (double)feature * 0.5;
}

size_t bench_value_wire(uint32_t view, uint32_t feature, int64_t id, uint8_t out[16])
{
    wbuf_t b = {.data = out, .cap = 16};
    if (bench_feature_is_int(feature)) {
        wbuf_tag(&b, 4, WT_VARINT); /* int64_val */
        wbuf_varint(&b, (uint64_t)bench_int_value(view, feature, id));
    } else {
        double d = bench_double_value(view, feature, id);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        wbuf_tag(&b, 5, WT_I64); /* double_val */
        for (int i = 0; i < 8; i++)
            out[b.len++] = (uint8_t)(bits >> (8 * i));
    }
    return b.len;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

/* Appends map<string, RepeatedValue> entry `field` {key: name, value: [int64 ids]}. */
static void put_int_column(wbuf_t *b, uint32_t field, const char *name, const int64_t *ids,
                           size_t n, wbuf_t *rv, wbuf_t *entry)
{
    uint8_t v[16];
    for (size_t i = 0; i < n; i++) {
        wbuf_t vb = {.data = v, .cap = sizeof v};
        wbuf_tag(&vb, 4, WT_VARINT);
        wbuf_varint(&vb, (uint64_t)ids[i]);
        wbuf_bytes(rv, 1, v, vb.len); /* RepeatedValue.val */
    }
    wbuf_bytes(entry, 1, name, strlen(name));
    put_message(entry, 2, rv);
    put_message(b, field, entry);
}

/* GetOnlineFeaturesRequest.request_context (field 5): spec's field, its value n times. */
static void put_request_context(wbuf_t *b, const wire_get_spec_t *spec, size_t n)
{
    if (spec->request_field == NULL)
        return;
    wbuf_t rv = {0}, entry = {0}, val = {0};
    uint64_t bits;
    memcpy(&bits, &spec->request_value, sizeof bits);
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)(bits >> (8 * k));
    wbuf_tag(&val, 5, WT_I64); /* Value.double_val */
    wbuf_raw(&val, le, 8);
    for (size_t i = 0; i < n; i++)
        wbuf_bytes(&rv, 1, val.data, val.len); /* RepeatedValue.val */
    wbuf_bytes(&entry, 1, spec->request_field, strlen(spec->request_field));
    put_message(&entry, 2, &rv);
    put_message(b, 5, &entry);
    b->oom = b->oom || rv.oom || entry.oom || val.oom;
    wbuf_free(&rv);
    wbuf_free(&entry);
    wbuf_free(&val);
}

int wire_get_request(const wire_get_spec_t *spec, const int64_t *ids, size_t n, wbuf_t *out)
{
    wbuf_t sub = {0}, rv = {0}, entry = {0};
    if (spec->feature_service != NULL) {
        wbuf_bytes(out, 1, spec->feature_service, strlen(spec->feature_service));
    } else {
        for (size_t i = 0; i < spec->n_features; i++)
            wbuf_bytes(&sub, 1, spec->features[i], strlen(spec->features[i]));
        put_message(out, 2, &sub);
    }
    put_int_column(out, 3, spec->join_key, ids, n, &rv, &entry);
    put_request_context(out, spec, n);
    if (spec->full_feature_names) {
        wbuf_tag(out, 4, WT_VARINT);
        wbuf_varint(out, 1);
    }
    bool oom = out->oom || sub.oom || rv.oom || entry.oom;
    wbuf_free(&sub);
    wbuf_free(&rv);
    wbuf_free(&entry);
    return oom ? -ENOMEM : 0;
}

int wire_write_request(const char *view_name, uint32_t view_index, const char *join_key,
                       uint32_t n_features, const int64_t *ids, size_t n, int64_t event_s,
                       wbuf_t *out)
{
    wbuf_t rv = {0}, entry = {0}, ts = {0};
    wbuf_bytes(out, 1, view_name, strlen(view_name));
    put_int_column(out, 2, join_key, ids, n, &rv, &entry);
    for (uint32_t f = 0; f < n_features; f++) {
        char name[32];
        uint8_t v[16];
        snprintf(name, sizeof name, "f%u", f);
        for (size_t i = 0; i < n; i++) {
            size_t len = bench_value_wire(view_index, f, ids[i], v);
            wbuf_bytes(&rv, 1, v, len);
        }
        wbuf_bytes(&entry, 1, name, strlen(name));
        put_message(&entry, 2, &rv);
        put_message(out, 2, &entry);
    }
    for (size_t i = 0; event_s > 0 && i < n; i++) {
        wbuf_tag(&ts, 1, WT_VARINT); /* google.protobuf.Timestamp.seconds */
        wbuf_varint(&ts, (uint64_t)event_s);
        put_message(out, 3, &ts);
    }
    bool oom = out->oom || rv.oom || entry.oom || ts.oom;
    wbuf_free(&rv);
    wbuf_free(&entry);
    wbuf_free(&ts);
    return oom ? -ENOMEM : 0;
}

int wire_predict_request(const char *model, const char *input, const int64_t *ids, size_t n,
                         wbuf_t *out)
{
    wbuf_t spec = {0}, tensor = {0}, sub = {0}, entry = {0};
    wbuf_bytes(&spec, 1, model, strlen(model)); /* ModelSpec.name */
    put_message(out, 1, &spec);
    wbuf_tag(&tensor, 1, WT_VARINT); /* TensorProto.dtype = DT_INT64 */
    wbuf_varint(&tensor, 9);
    wbuf_tag(&sub, 1, WT_VARINT); /* TensorShapeProto.Dim.size */
    wbuf_varint(&sub, n);
    wbuf_t shape = {0};
    put_message(&shape, 2, &sub); /* TensorShapeProto.dim */
    put_message(&tensor, 2, &shape);
    for (size_t i = 0; i < n; i++) /* int64_val, packed */
        wbuf_varint(&sub, (uint64_t)ids[i]);
    put_message(&tensor, 10, &sub);
    wbuf_bytes(&entry, 1, input, strlen(input));
    put_message(&entry, 2, &tensor);
    put_message(out, 2, &entry); /* PredictRequest.inputs */
    bool oom = out->oom || spec.oom || tensor.oom || sub.oom || entry.oom || shape.oom;
    wbuf_free(&spec);
    wbuf_free(&tensor);
    wbuf_free(&sub);
    wbuf_free(&entry);
    wbuf_free(&shape);
    return oom ? -ENOMEM : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-call requests                                                                           */

typedef enum { TMPL_GET, TMPL_PREDICT, TMPL_WRITE } tmpl_kind_t;

/*
 * Each shape is fixed bytes around one or more length-delimited fields whose length depends on
 * the ids. wire_tmpl_encode() first adds up those lengths (varint sizes), then writes the bytes
 * front to back into space reserved once, so an id costs a varint and no copy.
 *
 *   get:     head  1a <entry>{ key  12 <rv>{ (0a len 20 <id>)* } }  tail
 *   predict: head  12 <entry>{ key  12 <tensor>{ mid  52 <packed>{ <id>* } } }
 *   write:   head  12 <entry>{ key  12 <rv>{ (0a len 20 <id>)* } }
 *                  (12 <entry>{ name_f  12 <rv>{ (0a len <value of f, id>)* } })*  tail
 */
struct wire_tmpl {
    tmpl_kind_t kind;
    size_t n;
    wbuf_t head, key, mid, tail;
    wbuf_t names;     /* write: the name fields of features f0.., back to back */
    size_t *name_end; /* write: where each name field ends in names */
    uint32_t view, n_features;
    size_t max_len; /* no request of this template is longer */
};

static uint8_t *put_raw(uint8_t *p, const wbuf_t *b)
{
    if (b->len > 0)
        memcpy(p, b->data, b->len);
    return p + b->len;
}

/* The length of one generated value's feast.types.Value bytes (see bench_value_wire). */
static size_t value_len(uint32_t view, uint32_t feature, int64_t id)
{
    if (!bench_feature_is_int(feature))
        return 9;
    return 1 + base_varint_size((uint64_t)bench_int_value(view, feature, id));
}

/* The bytes of a RepeatedValue of ids as INT64 Values: (0a len 20 <id>)*. */
static size_t id_values_len(const int64_t *ids, size_t n)
{
    size_t len = 3 * n;
    for (size_t i = 0; i < n; i++)
        len += base_varint_size((uint64_t)ids[i]);
    return len;
}

static uint8_t *put_id_values(uint8_t *p, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x0a; /* RepeatedValue.val */
        *p++ = (uint8_t)(1 + base_varint_size((uint64_t)ids[i]));
        *p++ = 0x20; /* Value.int64_val */
        p = base_put_varint(p, (uint64_t)ids[i]);
    }
    return p;
}

/* Writes a length-delimited field's tag and length; the payload follows. */
static uint8_t *put_len_field(uint8_t *p, uint8_t tag, size_t len)
{
    *p++ = tag;
    return base_put_varint(p, len);
}

static int tmpl_new(tmpl_kind_t kind, size_t n, wire_tmpl_t **out)
{
    if (n == 0)
        return -EINVAL;
    wire_tmpl_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->kind = kind;
    t->n = n;
    *out = t;
    return 0;
}

/* Finishes a template: an allocation failure while building it fails the whole. */
static int tmpl_done(wire_tmpl_t *t, size_t per_id, wire_tmpl_t **out)
{
    bool oom = t->head.oom || t->key.oom || t->mid.oom || t->tail.oom || t->names.oom;
    if (oom) {
        wire_tmpl_free(t);
        return -ENOMEM;
    }
    /* Three nested lengths per column at most 10 bytes each, plus every fixed part. */
    t->max_len = t->head.len + t->key.len + t->mid.len + t->tail.len + t->names.len + 64 +
                 (t->n_features + 1) * 32 + t->n * per_id;
    *out = t;
    return 0;
}

int wire_tmpl_get(const wire_get_spec_t *spec, size_t n, wire_tmpl_t **out)
{
    wire_tmpl_t *t = NULL;
    int rc = tmpl_new(TMPL_GET, n, &t);
    if (rc != 0)
        return rc;
    /* The same fields, in the same order, as wire_get_request(). */
    if (spec->feature_service != NULL) {
        wbuf_bytes(&t->head, 1, spec->feature_service, strlen(spec->feature_service));
    } else {
        wbuf_t sub = {0};
        for (size_t i = 0; i < spec->n_features; i++)
            wbuf_bytes(&sub, 1, spec->features[i], strlen(spec->features[i]));
        put_message(&t->head, 2, &sub);
        wbuf_free(&sub);
    }
    wbuf_bytes(&t->key, 1, spec->join_key, strlen(spec->join_key));
    put_request_context(&t->tail, spec, n);
    if (spec->full_feature_names) {
        wbuf_tag(&t->tail, 4, WT_VARINT);
        wbuf_varint(&t->tail, 1);
    }
    return tmpl_done(t, 13, out);
}

int wire_tmpl_predict(const char *model, const char *input, size_t n, wire_tmpl_t **out)
{
    wire_tmpl_t *t = NULL;
    int rc = tmpl_new(TMPL_PREDICT, n, &t);
    if (rc != 0)
        return rc;
    wbuf_t spec = {0}, dim = {0}, shape = {0};
    wbuf_bytes(&spec, 1, model, strlen(model)); /* ModelSpec.name */
    put_message(&t->head, 1, &spec);
    wbuf_bytes(&t->key, 1, input, strlen(input));
    wbuf_tag(&t->mid, 1, WT_VARINT); /* TensorProto.dtype = DT_INT64 */
    wbuf_varint(&t->mid, 9);
    wbuf_tag(&dim, 1, WT_VARINT); /* TensorShapeProto.Dim.size */
    wbuf_varint(&dim, n);
    put_message(&shape, 2, &dim); /* TensorShapeProto.dim */
    put_message(&t->mid, 2, &shape);
    bool oom = spec.oom || dim.oom || shape.oom;
    wbuf_free(&spec);
    wbuf_free(&dim);
    wbuf_free(&shape);
    if (oom)
        t->head.oom = true;
    return tmpl_done(t, 10, out);
}

int wire_tmpl_write(const char *view_name, uint32_t view_index, const char *join_key,
                    uint32_t n_features, size_t n, int64_t event_s, wire_tmpl_t **out)
{
    wire_tmpl_t *t = NULL;
    int rc = tmpl_new(TMPL_WRITE, n, &t);
    if (rc != 0)
        return rc;
    t->view = view_index;
    t->n_features = n_features;
    t->name_end = calloc(n_features ? n_features : 1, sizeof *t->name_end);
    if (t->name_end == NULL) {
        wire_tmpl_free(t);
        return -ENOMEM;
    }
    wbuf_bytes(&t->head, 1, view_name, strlen(view_name));
    wbuf_bytes(&t->key, 1, join_key, strlen(join_key));
    for (uint32_t f = 0; f < n_features; f++) {
        char name[32];
        snprintf(name, sizeof name, "f%u", f);
        wbuf_bytes(&t->names, 1, name, strlen(name));
        t->name_end[f] = t->names.len;
    }
    wbuf_t ts = {0};
    for (size_t i = 0; event_s > 0 && i < n; i++) {
        wbuf_tag(&ts, 1, WT_VARINT); /* google.protobuf.Timestamp.seconds */
        wbuf_varint(&ts, (uint64_t)event_s);
        put_message(&t->tail, 3, &ts);
    }
    if (ts.oom)
        t->tail.oom = true;
    wbuf_free(&ts);
    /* Per id: the key value (13 bytes) and one value per feature (at most 13 bytes). */
    return tmpl_done(t, 13 * ((size_t)n_features + 1), out);
}

void wire_tmpl_free(wire_tmpl_t *t)
{
    if (t == NULL)
        return;
    wbuf_free(&t->head);
    wbuf_free(&t->key);
    wbuf_free(&t->mid);
    wbuf_free(&t->tail);
    wbuf_free(&t->names);
    free(t->name_end);
    free(t);
}

/* One write column's RepeatedValue length: feature f's generated values for ids. */
static size_t feature_values_len(const wire_tmpl_t *t, uint32_t f, const int64_t *ids)
{
    if (!bench_feature_is_int(f))
        return 11 * t->n; /* 0a 09 + 09 bytes */
    size_t len = 0;
    for (size_t i = 0; i < t->n; i++)
        len += 2 + value_len(t->view, f, ids[i]);
    return len;
}

static uint8_t *encode_write(const wire_tmpl_t *t, const int64_t *ids, uint8_t *p)
{
    size_t rv = id_values_len(ids, t->n);
    size_t entry = t->key.len + 1 + base_varint_size(rv) + rv;
    p = put_len_field(p, 0x12, entry); /* WriteFeaturesRequest.columns */
    p = put_raw(p, &t->key);
    p = put_len_field(p, 0x12, rv);
    p = put_id_values(p, ids, t->n);
    for (uint32_t f = 0; f < t->n_features; f++) {
        size_t start = f == 0 ? 0 : t->name_end[f - 1];
        size_t name_len = t->name_end[f] - start;
        rv = feature_values_len(t, f, ids);
        entry = name_len + 1 + base_varint_size(rv) + rv;
        p = put_len_field(p, 0x12, entry);
        memcpy(p, t->names.data + start, name_len);
        p += name_len;
        p = put_len_field(p, 0x12, rv);
        for (size_t i = 0; i < t->n; i++) {
            uint8_t *len_at = p + 1;
            *p++ = 0x0a; /* RepeatedValue.val */
            p++;
            size_t vlen = bench_value_wire(t->view, f, ids[i], p);
            *len_at = (uint8_t)vlen;
            p += vlen;
        }
    }
    return p;
}

int wire_tmpl_encode(const wire_tmpl_t *t, const int64_t *ids, wbuf_t *out)
{
    /* bench_value_wire() writes up to 16 bytes at a time: room for its scratch. */
    if (!reserve(out, t->max_len + 16))
        return -ENOMEM;
    uint8_t *p = out->data + out->len;
    p = put_raw(p, &t->head);
    switch (t->kind) {
    case TMPL_GET: {
        size_t rv = id_values_len(ids, t->n);
        size_t entry = t->key.len + 1 + base_varint_size(rv) + rv;
        p = put_len_field(p, 0x1a, entry); /* GetOnlineFeaturesRequest.entities */
        p = put_raw(p, &t->key);
        p = put_len_field(p, 0x12, rv);
        p = put_id_values(p, ids, t->n);
        break;
    }
    case TMPL_PREDICT: {
        size_t packed = 0;
        for (size_t i = 0; i < t->n; i++)
            packed += base_varint_size((uint64_t)ids[i]);
        size_t tensor = t->mid.len + 1 + base_varint_size(packed) + packed;
        size_t entry = t->key.len + 1 + base_varint_size(tensor) + tensor;
        p = put_len_field(p, 0x12, entry); /* PredictRequest.inputs */
        p = put_raw(p, &t->key);
        p = put_len_field(p, 0x12, tensor);
        p = put_raw(p, &t->mid);
        p = put_len_field(p, 0x52, packed); /* TensorProto.int64_val, packed */
        for (size_t i = 0; i < t->n; i++)
            p = base_put_varint(p, (uint64_t)ids[i]);
        break;
    }
    case TMPL_WRITE:
        p = encode_write(t, ids, p);
        break;
    }
    p = put_raw(p, &t->tail);
    out->len = (size_t)(p - out->data);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                     */

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd_t;

static uint64_t rd_varint(rd_t *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* Reads a tag; returns false at the end of the message or on malformed bytes. */
static bool rd_tag(rd_t *r, uint32_t *field, uint32_t *wt)
{
    if (r->bad || r->p >= r->end)
        return false;
    uint64_t t = rd_varint(r);
    *field = (uint32_t)(t >> 3);
    *wt = (uint32_t)(t & 7);
    return !r->bad && *field != 0;
}

/* Reads a length-delimited payload as a sub-reader. */
static rd_t rd_len(rd_t *r)
{
    rd_t sub = {NULL, NULL, true};
    uint64_t len = rd_varint(r);
    if (r->bad || len > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return sub;
    }
    sub.p = r->p;
    sub.end = r->p + len;
    sub.bad = false;
    r->p += len;
    return sub;
}

static void rd_skip(rd_t *r, uint32_t wt)
{
    switch (wt) {
    case WT_VARINT:
        rd_varint(r);
        break;
    case WT_I64:
    case WT_I32: {
        size_t n = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            r->bad = true;
        else
            r->p += n;
        break;
    }
    case WT_LEN:
        rd_len(r);
        break;
    default:
        r->bad = true;
    }
}

void wire_check_merge(wire_check_t *dst, const wire_check_t *src)
{
    dst->responses += src->responses;
    for (int i = 0; i < 5; i++)
        dst->status[i] += src->status[i];
    dst->values += src->values;
    dst->verified += src->verified;
    dst->wrong += src->wrong;
    dst->bad_shape += src->bad_shape;
    dst->unknown += src->unknown;
    dst->malformed += src->malformed;
    dst->rows_acked += src->rows_acked;
}

uint64_t wire_check_problems(const wire_check_t *c)
{
    return c->status[0] + c->status[2] + c->status[3] + c->status[4] + c->wrong + c->bad_shape +
           c->unknown + c->malformed;
}

#define MAX_COLUMNS 4096

typedef struct column {
    const uint8_t *name;
    size_t name_len;
    rd_t vec; /* the FeatureVector's bytes */
} column_t;

/* What a column holds: the join key, a generated feature (view, feature), or unknown. */
typedef enum { COL_UNKNOWN, COL_KEY, COL_FEATURE } col_kind_t;

/* Parses a decimal number at *p, advancing it. Returns: false when there are no digits. */
static bool parse_uint(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint64_t v = 0;
    const uint8_t *s = *p;
    while (*p < end && **p >= '0' && **p <= '9' && v < UINT32_MAX)
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    *out = (uint32_t)v;
    return *p > s && v < UINT32_MAX;
}

/* Names "v<V>__f<F>" and "v<V>:f<F>" are generated features; parsed by hand because this runs
 * for every column of every response and sscanf would cost more than the rest of the check. */
static col_kind_t classify(const column_t *c, const char *join_key, uint32_t *view, uint32_t *feat)
{
    const uint8_t *p = c->name, *end = c->name + c->name_len;
    if (c->name == NULL)
        return COL_UNKNOWN;
    if (c->name_len == strlen(join_key) && memcmp(c->name, join_key, c->name_len) == 0)
        return COL_KEY;
    if (p == end || *p++ != 'v' || !parse_uint(&p, end, view))
        return COL_UNKNOWN;
    if (end - p >= 2 && p[0] == '_' && p[1] == '_')
        p += 2;
    else if (p < end && *p == ':')
        p++;
    else
        return COL_UNKNOWN;
    if (p == end || *p++ != 'f' || !parse_uint(&p, end, feat) || p != end)
        return COL_UNKNOWN;
    return COL_FEATURE;
}

/* Compares one feast.types.Value with what the column should hold for entity id. */
static void verify_value(rd_t v, col_kind_t kind, uint32_t view, uint32_t feat, int64_t id,
                         wire_check_t *c)
{
    uint32_t field, wt;
    bool have_int = false, have_double = false, is_null = v.p == v.end;
    int64_t i = 0;
    double d = 0;
    while (rd_tag(&v, &field, &wt)) {
        if (field == 19)
            is_null = true;
        if ((field == 4 || field == 3) && wt == WT_VARINT) {
            i = (int64_t)rd_varint(&v);
            if (field == 3)
                i = (int32_t)i;
            have_int = true;
        } else if (field == 5 && wt == WT_I64 && v.end - v.p >= 8) {
            uint64_t bits = 0;
            for (int k = 0; k < 8; k++)
                bits |= (uint64_t)v.p[k] << (8 * k);
            v.p += 8;
            memcpy(&d, &bits, sizeof d);
            have_double = true;
        } else {
            rd_skip(&v, wt);
        }
    }
    if (v.bad) {
        c->malformed++;
        return;
    }
    /* An empty value is a null: its status (NOT_FOUND, NULL_VALUE) already counts it. */
    if (is_null)
        return;
    bool ok;
    if (kind == COL_KEY)
        ok = have_int && i == id;
    else if (bench_feature_is_int(feat))
        ok = have_int && i == bench_int_value(view, feat, id);
    else
        ok = have_double && d == bench_double_value(view, feat, id);
    if (ok)
        c->verified++;
    else
        c->wrong++;
}

static void check_column(const column_t *col, const int64_t *ids, size_t n, const char *join_key,
                         bool verify, wire_check_t *c)
{
    uint32_t view = 0, feat = 0;
    col_kind_t kind = verify ? classify(col, join_key, &view, &feat) : COL_UNKNOWN;
    /* A column --verify cannot place would otherwise be neither verified nor a problem: a
     * renamed column, or names the check does not parse, would pass having compared nothing. */
    if (verify && kind == COL_UNKNOWN)
        c->unknown++;
    rd_t r = col->vec;
    size_t n_values = 0, n_status = 0;
    uint32_t field, wt;
    while (rd_tag(&r, &field, &wt)) {
        if (field == 1 && wt == WT_LEN) {
            rd_t v = rd_len(&r);
            if (r.bad)
                break;
            if (kind != COL_UNKNOWN && n_values < n)
                verify_value(v, kind, view, feat, ids[n_values], c);
            n_values++;
        } else if (field == 2 && (wt == WT_LEN || wt == WT_VARINT)) {
            /* proto3 packs repeated enums, but a parser must take either form. */
            rd_t s = wt == WT_LEN ? rd_len(&r) : r;
            if (wt == WT_LEN) {
                while (!r.bad && !s.bad && s.p < s.end) {
                    uint64_t st = rd_varint(&s);
                    if (!s.bad && st < 5)
                        c->status[st]++;
                    else
                        c->malformed++;
                    n_status++;
                }
            } else {
                uint64_t st = rd_varint(&r);
                if (st < 5)
                    c->status[st]++;
                else
                    c->malformed++;
                n_status++;
            }
            if (s.bad)
                r.bad = true;
        } else {
            rd_skip(&r, wt);
        }
    }
    if (r.bad)
        c->malformed++;
    c->values += n_values;
    if (n_values != n || n_status != n)
        c->bad_shape++;
}

void wire_check_get(const uint8_t *buf, size_t len, const int64_t *ids, size_t n, size_t n_features,
                    const char *join_key, bool verify, wire_check_t *c)
{
    /* One pass collects the column names (metadata) and the result vectors, in whichever order
     * they come; a second checks each vector knowing its name. */
    static _Thread_local column_t cols[MAX_COLUMNS];
    size_t n_cols = 0, n_names = 0, extra_cols = 0;
    rd_t r = {buf, buf + len, false};
    uint32_t field, wt;
    c->responses++;
    while (rd_tag(&r, &field, &wt)) {
        if (field == 1 && wt == WT_LEN) {
            rd_t meta = rd_len(&r);
            uint32_t mf, mwt;
            while (rd_tag(&meta, &mf, &mwt)) {
                if (mf != 1 || mwt != WT_LEN) {
                    rd_skip(&meta, mwt);
                    continue;
                }
                rd_t list = rd_len(&meta);
                uint32_t lf, lwt;
                while (rd_tag(&list, &lf, &lwt)) {
                    if (lf != 1 || lwt != WT_LEN) {
                        rd_skip(&list, lwt);
                        continue;
                    }
                    rd_t name = rd_len(&list);
                    if (!list.bad && n_names < MAX_COLUMNS) {
                        if (n_names >= n_cols)
                            memset(&cols[n_names], 0, sizeof cols[0]);
                        cols[n_names].name = name.p;
                        cols[n_names].name_len = (size_t)(name.end - name.p);
                    }
                    n_names++;
                }
                if (list.bad)
                    meta.bad = true;
            }
            if (meta.bad)
                r.bad = true;
        } else if (field == 2 && wt == WT_LEN) {
            rd_t vec = rd_len(&r);
            if (r.bad)
                break;
            if (n_cols < MAX_COLUMNS) {
                if (n_cols >= n_names)
                    cols[n_cols].name = NULL;
                cols[n_cols].vec = vec;
                n_cols++;
            } else {
                extra_cols++;
            }
        } else {
            rd_skip(&r, wt);
        }
    }
    if (r.bad) {
        c->malformed++;
        return;
    }
    for (size_t i = 0; i < n_cols; i++)
        check_column(&cols[i], ids, n, join_key, verify, c);
    if (n_cols + extra_cols < n_features)
        c->bad_shape++;
}

/* Compares the i-th value of a tensor with the dataset. */
static void verify_number(bool is_int, int64_t iv, double dv, uint32_t view, uint32_t feat,
                          int64_t id, wire_check_t *c)
{
    bool ok = bench_feature_is_int(feat) ? is_int && iv == bench_int_value(view, feat, id)
                                         : !is_int && dv == bench_double_value(view, feat, id);
    if (ok)
        c->verified++;
    else
        c->wrong++;
}

static void check_tensor(const uint8_t *name, size_t name_len, rd_t t, const int64_t *ids, size_t n,
                         bool verify, wire_check_t *c)
{
    column_t col = {.name = name, .name_len = name_len};
    uint32_t view = 0, feat = 0;
    bool known = verify && classify(&col, "", &view, &feat) == COL_FEATURE;
    if (verify && !known)
        c->unknown++;
    size_t count = 0;
    uint32_t field, wt;
    while (rd_tag(&t, &field, &wt)) {
        if ((field == 10 || field == 7) && (wt == WT_LEN || wt == WT_VARINT)) {
            /* int64_val / int_val, packed or not */
            rd_t v = wt == WT_LEN ? rd_len(&t) : t;
            do {
                int64_t x = (int64_t)rd_varint(wt == WT_LEN ? &v : &t);
                if (field == 7)
                    x = (int32_t)x;
                if (known && count < n)
                    verify_number(true, x, 0, view, feat, ids[count], c);
                count++;
            } while (wt == WT_LEN && !v.bad && v.p < v.end);
            if (v.bad)
                t.bad = true;
        } else if (field == 6 && wt == WT_LEN) { /* double_val, packed */
            rd_t v = rd_len(&t);
            while (!t.bad && v.end - v.p >= 8) {
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++)
                    bits |= (uint64_t)v.p[k] << (8 * k);
                v.p += 8;
                double d;
                memcpy(&d, &bits, sizeof d);
                if (known && count < n)
                    verify_number(false, 0, d, view, feat, ids[count], c);
                count++;
            }
            if (v.p != v.end)
                t.bad = true;
        } else if (field == 5 && wt == WT_LEN) { /* float_val, packed: counted, not verified */
            rd_t v = rd_len(&t);
            count += (size_t)(v.end - v.p) / 4;
        } else {
            rd_skip(&t, wt);
        }
    }
    if (t.bad)
        c->malformed++;
    c->values += count;
    if (count != n)
        c->bad_shape++;
}

void wire_check_predict(const uint8_t *buf, size_t len, const int64_t *ids, size_t n,
                        size_t n_features, bool verify, wire_check_t *c)
{
    rd_t r = {buf, buf + len, false};
    uint32_t field, wt;
    size_t outputs = 0;
    c->responses++;
    while (rd_tag(&r, &field, &wt)) {
        if (field != 1 || wt != WT_LEN) {
            rd_skip(&r, wt);
            continue;
        }
        rd_t entry = rd_len(&r); /* map<string, TensorProto> entry */
        rd_t name = {NULL, NULL, true}, tensor = {NULL, NULL, true};
        uint32_t ef, ewt;
        while (rd_tag(&entry, &ef, &ewt)) {
            if (ef == 1 && ewt == WT_LEN)
                name = rd_len(&entry);
            else if (ef == 2 && ewt == WT_LEN)
                tensor = rd_len(&entry);
            else
                rd_skip(&entry, ewt);
        }
        if (entry.bad || name.bad || tensor.bad) {
            c->malformed++;
            continue;
        }
        check_tensor(name.p, (size_t)(name.end - name.p), tensor, ids, n, verify, c);
        outputs++;
    }
    if (r.bad)
        c->malformed++;
    if (outputs < n_features)
        c->bad_shape++;
}

void wire_check_write(const uint8_t *buf, size_t len, size_t n_rows, wire_check_t *c)
{
    rd_t r = {buf, buf + len, false};
    uint32_t field, wt;
    uint64_t written = 0, stale = 0;
    c->responses++;
    while (rd_tag(&r, &field, &wt)) {
        if (field == 1 && wt == WT_VARINT)
            written = rd_varint(&r);
        else if (field == 2 && wt == WT_VARINT)
            stale = rd_varint(&r);
        else
            rd_skip(&r, wt);
    }
    if (r.bad) {
        c->malformed++;
        return;
    }
    c->rows_acked += written + stale;
    if (written + stale != n_rows)
        c->bad_shape++;
}
