/* codec/feast_decode.c - GetOnlineFeaturesRequest read by hand in its usual shape. */
#include <errno.h>
#include <string.h>

#include "codec/codec.h"

/*
 * Why by hand: protobuf-c allocates every string, map entry and Value separately and then the
 * request's strings are walked a second time for the NUL and UTF-8 checks. A read request nearly
 * always has one shape: a feature list or service, a few entity columns of INT64, INT32, STRING
 * or BYTES values, two flags. This decoder reads exactly that shape in one pass, pointing into
 * the request instead of copying it, and declines everything else (returns 1) so that protobuf-c
 * and the general path decide: other value types (request_context also takes DOUBLE, FLOAT and
 * BOOL), unknown fields, a field given
 * twice where protobuf-c would merge or replace, non-minimal encodings, malformed bytes, invalid
 * strings. What it accepts therefore has exactly one meaning, the one protobuf-c gives it, and
 * every Value body it accepts is what protobuf-c would pack again, so it can be echoed as sent.
 * tests/codec/test_feast_decode.c and fuzz_requests.c hold it to that against protobuf-c.
 */

/* Request fields (feast/serving/ServingService.proto). */
#define F_SERVICE 1
#define F_FEATURES 2
#define F_ENTITIES 3
#define F_FULL_NAMES 4
#define F_REQUEST_CONTEXT 5
#define F_INCLUDE_MD 6

typedef struct cursor {
    const uint8_t *p, *end;
} cursor_t;

/* A varint at the cursor (base_get_varint()); *n_bytes, when asked, its length. */
static inline bool get_varint(cursor_t *c, uint64_t *out, size_t *n_bytes)
{
    const uint8_t *start = c->p;
    if (!base_get_varint(&c->p, c->end, out))
        return false;
    if (n_bytes != NULL)
        *n_bytes = (size_t)(c->p - start);
    return true;
}

/* A length-delimited body: its length must be minimal (so the bytes are what a packer writes)
 * and fit. */
static inline bool get_body(cursor_t *c, cursor_t *body)
{
    uint64_t len;
    size_t nb;
    if (!get_varint(c, &len, &nb) || nb != base_varint_size(len) || len > (uint64_t)(c->end - c->p))
        return false;
    body->p = c->p;
    body->end = c->p + len;
    c->p += len;
    return true;
}

/* A tag: one minimal varint. Returns: false when malformed. */
static inline bool get_tag(cursor_t *c, uint32_t *field, unsigned *wt)
{
    uint64_t t;
    size_t nb;
    if (!get_varint(c, &t, &nb) || nb != base_varint_size(t) || (t >> 3) == 0 ||
        (t >> 3) > UINT32_MAX)
        return false;
    *field = (uint32_t)(t >> 3);
    *wt = (unsigned)(t & 7);
    return true;
}

/* proto3 strings as the general path accepts them: no NUL, valid UTF-8. */
static inline bool string_ok(const uint8_t *s, size_t len)
{
    size_t i = 0;
    /* Eight bytes a step while they are plain ASCII without NUL (the usual feature reference):
     * a word has a zero byte iff (w - 0x01..01) & ~w & 0x80..80 is nonzero. */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        if (((w | ((w - 0x0101010101010101ull) & ~w)) & 0x8080808080808080ull) != 0)
            break;
    }
    for (; i < len; i++) {
        if (s[i] == 0 || s[i] >= 0x80)
            return memchr(s + i, 0, len - i) == NULL && base_utf8_valid(s + i, len - i);
    }
    return true;
}

/* One feast.types.Value body of the four join-key types, in the form protobuf-c packs. */
static bool get_value(cursor_t body, catalog_value_t *out)
{
    if (body.p == body.end)
        return false; /* NOT_SET: the general path decides */
    uint8_t tag = *body.p++;
    memset(out, 0, sizeof *out);
    switch (tag) {
    case (1 << 3) | BASE_WT_LEN: /* bytes_val */
    case (2 << 3) | BASE_WT_LEN: /* string_val */
    {
        cursor_t s;
        if (!get_body(&body, &s) || body.p != body.end)
            return false;
        size_t len = (size_t)(s.end - s.p);
        if (tag == ((2 << 3) | BASE_WT_LEN)) {
            if (!string_ok(s.p, len))
                return false;
            out->type = CATALOG_DTYPE_STRING;
        } else {
            out->type = CATALOG_DTYPE_BYTES;
        }
        out->u.bytes.data = s.p;
        out->u.bytes.len = len;
        return true;
    }
    case (3 << 3) | BASE_WT_VARINT: /* int32_val */
    case (4 << 3) | BASE_WT_VARINT: /* int64_val */
    {
        uint64_t u;
        size_t nb;
        if (!get_varint(&body, &u, &nb) || body.p != body.end)
            return false;
        if (tag == ((3 << 3) | BASE_WT_VARINT)) {
            /* protobuf-c keeps the low 32 bits and packs a negative int32 as ten bytes. */
            int32_t v = (int32_t)(uint32_t)u;
            uint64_t canon = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
            if (canon != u || nb != base_varint_size(u))
                return false;
            out->type = CATALOG_DTYPE_INT32;
            out->u.i32 = v;
        } else {
            if (nb != base_varint_size(u))
                return false;
            out->type = CATALOG_DTYPE_INT64;
            out->u.i64 = (int64_t)u;
        }
        return true;
    }
    default:
        return false;
    }
}

/* One request_context value: a join-key type (get_value()), or DOUBLE, FLOAT or BOOL in the one
 * form protobuf-c packs them (request data is never echoed, but it must mean what protobuf-c
 * reads). */
static bool get_request_value(cursor_t body, catalog_value_t *out)
{
    if (get_value(body, out))
        return true;
    if (body.p == body.end)
        return false;
    uint8_t tag = *body.p++;
    size_t left = (size_t)(body.end - body.p);
    memset(out, 0, sizeof *out);
    if (tag == ((5 << 3) | 1) && left == 8) { /* double_val, fixed64 */
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
            bits |= (uint64_t)body.p[k] << (8 * k);
        out->type = CATALOG_DTYPE_DOUBLE;
        memcpy(&out->u.f64, &bits, sizeof bits);
        return true;
    }
    if (tag == ((6 << 3) | 5) && left == 4) { /* float_val, fixed32 */
        uint32_t bits = 0;
        for (int k = 0; k < 4; k++)
            bits |= (uint32_t)body.p[k] << (8 * k);
        out->type = CATALOG_DTYPE_FLOAT;
        memcpy(&out->u.f32, &bits, sizeof bits);
        return true;
    }
    if (tag == ((7 << 3) | BASE_WT_VARINT) && left == 1 && body.p[0] <= 1) { /* bool_val */
        out->type = CATALOG_DTYPE_BOOL;
        out->u.b = body.p[0] != 0;
        return true;
    }
    return false;
}

/* Counts the length-delimited field-1 items of a repeated-message or repeated-string body.
 * Returns: false when anything else is there. */
static bool count_items(cursor_t body, size_t *n)
{
    size_t k = 0;
    while (body.p < body.end) {
        uint32_t f;
        unsigned wt;
        cursor_t item;
        if (!get_tag(&body, &f, &wt) || f != 1 || wt != BASE_WT_LEN || !get_body(&body, &item))
            return false;
        k++;
    }
    *n = k;
    return true;
}

/* A map entry: key = 1 (string), then value = 2 (RepeatedValue), each exactly once; request
 * data takes more value types than entities. */
static int get_entity(base_arena_t *a, cursor_t body, codec_read_column_t *col, bool request)
{
    uint32_t f;
    unsigned wt;
    cursor_t key, rv;
    if (!get_tag(&body, &f, &wt) || f != 1 || wt != BASE_WT_LEN || !get_body(&body, &key))
        return 1;
    if (!get_tag(&body, &f, &wt) || f != 2 || wt != BASE_WT_LEN || !get_body(&body, &rv) ||
        body.p != body.end)
        return 1;
    size_t klen = (size_t)(key.end - key.p);
    if (!string_ok(key.p, klen))
        return 1;
    size_t n;
    if (!count_items(rv, &n))
        return 1;
    char *name = base_arena_strndup(a, (const char *)key.p, klen);
    catalog_value_t *vals = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *vals);
    codec_wire_t *wire = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *wire);
    if (name == NULL || vals == NULL || wire == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cursor_t v = {NULL, NULL};
        /* count_items() has checked every tag and length. */
        get_tag(&rv, &f, &wt);
        get_body(&rv, &v);
        if (!(request ? get_request_value(v, &vals[i]) : get_value(v, &vals[i])))
            return 1;
        wire[i].data = v.p;
        wire[i].len = (size_t)(v.end - v.p);
    }
    col->name = name;
    col->n_vals = n;
    col->vals = vals;
    col->wire = wire;
    return 0;
}

int codec_feast_decode_read(base_arena_t *a, const uint8_t *buf, size_t len,
                            codec_read_request_t *out)
{
    memset(out, 0, sizeof *out);
    cursor_t c = {buf, buf + len};
    size_t cap = 0, rcap = 0;
    bool seen_kind = false;
    while (c.p < c.end) {
        uint32_t f;
        unsigned wt;
        if (!get_tag(&c, &f, &wt))
            return 1;
        if ((f == F_FULL_NAMES || f == F_INCLUDE_MD) && wt == BASE_WT_VARINT) {
            uint64_t v;
            if (!get_varint(&c, &v, NULL))
                return 1;
            /* A repeated scalar field: the last one counts, as in protobuf-c. */
            if (f == F_FULL_NAMES)
                out->list.full_names = v != 0;
            else
                out->include_md = v != 0;
            continue;
        }
        cursor_t body;
        if (wt != BASE_WT_LEN || !get_body(&c, &body))
            return 1;
        if (f == F_SERVICE || f == F_FEATURES) {
            if (seen_kind)
                return 1; /* protobuf-c would replace or merge: leave it to protobuf-c */
            seen_kind = true;
            if (f == F_SERVICE) {
                size_t n = (size_t)(body.end - body.p);
                if (!string_ok(body.p, n))
                    return 1;
                out->list.kind = CORE_LIST_SERVICE;
                out->list.service = base_arena_strndup(a, (const char *)body.p, n);
                if (out->list.service == NULL)
                    return -ENOMEM;
                out->list.service_len = n;
                continue;
            }
            /* The list itself is parsed on demand (codec_feast_decode_features(), called by
             * core_resolve()): a read whose list the worker has resolved before needs only its
             * bytes, which are the list's key (core_list_key()). */
            out->list.kind = CORE_LIST_FEATURES;
            out->list.key = body.p;
            out->list.key_len = (size_t)(body.end - body.p);
            out->list.parse = codec_feast_decode_features;
            continue;
        }
        if (f == F_REQUEST_CONTEXT) {
            if (base_arena_grow(a, (void **)&out->request, &rcap, out->n_request + 1,
                                sizeof *out->request) != 0)
                return -ENOMEM;
            int rc = get_entity(a, body, &out->request[out->n_request], true);
            if (rc != 0)
                return rc;
            out->n_request++;
            continue;
        }
        if (f != F_ENTITIES)
            return 1;
        if (out->n_entities == cap) {
            size_t ncap = cap == 0 ? 4 : 2 * cap;
            codec_read_column_t *cols = base_arena_alloc(a, ncap * sizeof *cols);
            if (cols == NULL)
                return -ENOMEM;
            if (cap > 0)
                memcpy(cols, out->entities, cap * sizeof *cols);
            out->entities = cols;
            cap = ncap;
        }
        int rc = get_entity(a, body, &out->entities[out->n_entities], false);
        if (rc != 0)
            return rc;
        out->n_entities++;
    }
    return 0;
}

int codec_feast_decode_features(base_arena_t *a, core_feature_list_t *l)
{
    cursor_t body = {l->key, l->key + l->key_len};
    /* One pass, growing the arrays as it goes: counting first would read every tag and length
     * twice. */
    size_t n = 0, fcap = 0;
    const char **strs = NULL;
    size_t *lens = NULL;
    while (body.p < body.end) {
        cursor_t s;
        uint32_t sf;
        unsigned swt;
        if (!get_tag(&body, &sf, &swt) || sf != 1 || swt != BASE_WT_LEN || !get_body(&body, &s) ||
            !string_ok(s.p, (size_t)(s.end - s.p)))
            return 1;
        if (n == fcap) {
            size_t ncap = fcap == 0 ? 64 : 2 * fcap;
            const char **ns = base_arena_alloc(a, ncap * sizeof *ns);
            size_t *nl = base_arena_alloc(a, ncap * sizeof *nl);
            if (ns == NULL || nl == NULL)
                return -ENOMEM;
            if (n > 0) {
                memcpy(ns, strs, n * sizeof *ns);
                memcpy(nl, lens, n * sizeof *nl);
            }
            strs = ns;
            lens = nl;
            fcap = ncap;
        }
        strs[n] = (const char *)s.p;
        lens[n] = (size_t)(s.end - s.p);
        n++;
    }
    if (n == 0) {
        strs = base_arena_alloc(a, sizeof *strs);
        lens = base_arena_alloc(a, sizeof *lens);
        if (strs == NULL || lens == NULL)
            return -ENOMEM;
    }
    l->n_refs = n;
    l->refs = strs;
    l->ref_lens = lens;
    return 0;
}
