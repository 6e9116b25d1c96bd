/* repl/msg.c - the log's message form: writes (wire batches), catalogs and sweeps. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl/repl.h"

static const uint8_t magic[4] = {'F', 'S', 'R', 1};

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                    */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int rc;
} wbuf_t;

static void put(wbuf_t *b, const void *p, size_t n)
{
    if (b->rc < 0)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (q == NULL) {
            b->rc = -ENOMEM;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_u8(wbuf_t *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_le(wbuf_t *b, uint64_t v, size_t n)
{
    uint8_t x[8];
    for (size_t i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, n);
}

static void put_str16(wbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    put_le(b, n, 2);
    put(b, s, n);
}

int repl_msg_encode_write(const store_wire_t *w, uint8_t **out, size_t *len)
{
    /* Sized once: the bytes of keys and values plus the fixed fields. */
    size_t need = 16;
    for (size_t i = 0; i < w->n_batches; i++) {
        const store_wire_batch_t *b = &w->batches[i];
        need += 64 + (size_t)b->n_features * (2 + CATALOG_MAX_NAME);
        for (size_t r = 0; r < b->n_rows; r++) {
            need += 10 + b->key_lens[r];
            for (size_t j = 0; j < b->n_features; j++)
                need += 4 + b->value_lens[r * b->n_features + j];
        }
    }
    if (need > UINT32_MAX)
        return -EMSGSIZE;
    wbuf_t b = {.p = malloc(need), .cap = need};
    if (b.p == NULL)
        return -ENOMEM;
    put(&b, magic, 4);
    put_u8(&b, REPL_MSG_WRITE);
    put_le(&b, w->n_batches, 4);
    for (size_t i = 0; i < w->n_batches; i++) {
        const store_wire_batch_t *wb = &w->batches[i];
        const catalog_view_t *v = wb->view;
        put_u8(&b, (uint8_t)wb->op);
        put_str16(&b, v->name);
        put_le(&b, v->version, 4);
        put_le(&b, wb->n_features, 4);
        for (size_t j = 0; j < wb->n_features; j++)
            put_str16(&b, v->features[wb->feature_idx[j]].name);
        put_le(&b, wb->n_rows, 4);
        for (size_t r = 0; r < wb->n_rows; r++) {
            put_le(&b, wb->key_lens[r], 2);
            put(&b, wb->keys[r], wb->key_lens[r]);
            put_le(&b, (uint64_t)wb->event_ts_us[r], 8);
            for (size_t j = 0; j < wb->n_features; j++) {
                size_t x = r * wb->n_features + j;
                put_le(&b, wb->value_lens[x], 4);
                put(&b, wb->values[x], wb->value_lens[x]);
            }
        }
    }
    if (b.rc < 0) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int repl_msg_encode_catalog(const catalog_t *c, uint8_t **out, size_t *len)
{
    char *yaml = NULL;
    size_t n = 0;
    int rc = catalog_dump_yaml(c, &yaml, &n);
    if (rc < 0)
        return rc;
    wbuf_t b = {0};
    put(&b, magic, 4);
    put_u8(&b, REPL_MSG_CATALOG);
    put(&b, yaml, n);
    free(yaml);
    if (b.rc < 0) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int repl_msg_encode_gc(int64_t now_us, int64_t tombstone_retention_us, uint8_t **out, size_t *len)
{
    wbuf_t b = {0};
    put(&b, magic, 4);
    put_u8(&b, REPL_MSG_GC);
    put_le(&b, (uint64_t)now_us, 8);
    put_le(&b, (uint64_t)tombstone_retention_us, 8);
    if (b.rc < 0) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding                                                                                    */

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} rbuf_t;

static const uint8_t *take(rbuf_t *b, size_t n)
{
    if (b->bad || b->len - b->off < n) {
        b->bad = true;
        return NULL;
    }
    const uint8_t *p = b->p + b->off;
    b->off += n;
    return p;
}

static uint64_t get_le(rbuf_t *b, size_t n)
{
    const uint8_t *p = take(b, n);
    uint64_t v = 0;
    for (size_t i = 0; p != NULL && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A name of at most CATALOG_MAX_NAME bytes, copied NUL-terminated into out. */
static bool get_name(rbuf_t *b, char *out)
{
    size_t n = (size_t)get_le(b, 2);
    const uint8_t *p = take(b, n);
    if (p == NULL || n == 0 || n > CATALOG_MAX_NAME || memchr(p, 0, n) != NULL) {
        b->bad = true;
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

int repl_msg_kind(const uint8_t *p, size_t len)
{
    if (len < 5 || memcmp(p, magic, 3) != 0 || p[3] != magic[3])
        return -EPROTO;
    if (p[4] != REPL_MSG_WRITE && p[4] != REPL_MSG_CATALOG && p[4] != REPL_MSG_GC)
        return -EPROTO;
    return p[4];
}

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The arrays of a decoded write, one allocation each for all of its batches. */
typedef struct dec {
    const uint8_t **ptrs;
    uint32_t *lens;
    uint32_t *feature_idx;
    int64_t *event_ts;
} dec_t;

void repl_msg_write_free(repl_msg_write_t *m)
{
    if (m == NULL)
        return;
    dec_t *d = m->priv;
    if (d != NULL) {
        free(d->ptrs);
        free(d->lens);
        free(d->feature_idx);
        free(d->event_ts);
        free(d);
    }
    free(m->batches);
    memset(m, 0, sizeof *m);
}

static int find_feature(const catalog_view_t *v, const char *name)
{
    for (size_t i = 0; i < v->n_features; i++) {
        if (strcmp(v->features[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * Two passes over the bytes: the first checks the framing and counts (so every array is
 * allocated once, and a hostile count cannot make it allocate more than the message could
 * hold), the second fills the batches in.
 */
int repl_msg_decode_write(const uint8_t *p, size_t len, const catalog_t *c, repl_msg_write_t *out,
                          char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (repl_msg_kind(p, len) != REPL_MSG_WRITE)
        return fail(err, err_cap, -EPROTO, "not an fstore write message");
    rbuf_t b = {.p = p, .len = len, .off = 5};
    size_t n_batches = (size_t)get_le(&b, 4);
    /* A batch takes at least 15 bytes: a count past what is left is malformed. */
    if (b.bad || n_batches > (len - b.off) / 15 + 1)
        return fail(err, err_cap, -EPROTO, "malformed write message: %zu batches", n_batches);
    size_t n_ptrs = 0, n_feat = 0, n_rows = 0;
    char name[CATALOG_MAX_NAME + 1];
    for (size_t i = 0; i < n_batches && !b.bad; i++) {
        take(&b, 1);
        get_name(&b, name);
        take(&b, 4);
        size_t nf = (size_t)get_le(&b, 4);
        if (nf > (len - b.off) / 3) {
            b.bad = true;
            break;
        }
        for (size_t j = 0; j < nf && !b.bad; j++)
            get_name(&b, name);
        size_t nr = (size_t)get_le(&b, 4);
        if (nr > (len - b.off) / (10 + 4 * nf)) {
            b.bad = true;
            break;
        }
        for (size_t r = 0; r < nr && !b.bad; r++) {
            take(&b, (size_t)get_le(&b, 2));
            take(&b, 8);
            for (size_t j = 0; j < nf && !b.bad; j++)
                take(&b, (size_t)get_le(&b, 4));
        }
        n_ptrs += nr * (1 + nf);
        n_feat += nf;
        n_rows += nr;
    }
    if (b.bad || b.off != len)
        return fail(err, err_cap, -EPROTO, "malformed write message (at byte %zu of %zu)", b.off,
                    len);

    dec_t *d = calloc(1, sizeof *d);
    out->priv = d;
    out->batches = calloc(n_batches + 1, sizeof *out->batches);
    if (d != NULL) {
        d->ptrs = malloc((n_ptrs + 1) * sizeof *d->ptrs);
        d->lens = malloc((n_ptrs + 1) * sizeof *d->lens);
        d->feature_idx = malloc((n_feat + 1) * sizeof *d->feature_idx);
        d->event_ts = malloc((n_rows + 1) * sizeof *d->event_ts);
    }
    if (d == NULL || out->batches == NULL || d->ptrs == NULL || d->lens == NULL ||
        d->feature_idx == NULL || d->event_ts == NULL) {
        repl_msg_write_free(out);
        return -ENOMEM;
    }
    out->n_batches = n_batches;
    b = (rbuf_t){.p = p, .len = len, .off = 9};
    size_t ptr = 0, feat = 0, row = 0;
    int rc = 0;
    for (size_t i = 0; i < n_batches && rc == 0; i++) {
        store_wire_batch_t *wb = &out->batches[i];
        uint8_t op = *take(&b, 1);
        get_name(&b, name);
        uint32_t version = (uint32_t)get_le(&b, 4);
        const catalog_view_t *v = NULL;
        if (op != STORE_OP_UPSERT && op != STORE_OP_DELETE && op != STORE_OP_HISTORY) {
            rc = fail(err, err_cap, -EPROTO, "batch %zu: unknown op %u", i, op);
            break;
        }
        if (version == 0 || catalog_find_view(c, name, version, &v) < 0 || v->on_demand != NULL) {
            rc = fail(err, err_cap, -ENOENT, "batch %zu: feature view %s@v%u is not in the catalog",
                      i, name, version);
            break;
        }
        wb->view = v;
        wb->op = (store_op_t)op;
        wb->n_features = (size_t)get_le(&b, 4);
        wb->feature_idx = d->feature_idx + feat;
        for (size_t j = 0; j < wb->n_features && rc == 0; j++) {
            get_name(&b, name);
            int f = find_feature(v, name);
            if (f < 0)
                rc = fail(err, err_cap, -ENOENT, "batch %zu: feature view %s@v%u has no feature %s",
                          i, v->name, version, name);
            d->feature_idx[feat + j] = (uint32_t)(f < 0 ? 0 : f);
        }
        if (rc < 0)
            break;
        feat += wb->n_features;
        wb->n_rows = (size_t)get_le(&b, 4);
        wb->keys = d->ptrs + ptr;
        wb->key_lens = d->lens + ptr;
        wb->values = d->ptrs + ptr + wb->n_rows;
        wb->value_lens = d->lens + ptr + wb->n_rows;
        wb->event_ts_us = d->event_ts + row;
        for (size_t r = 0; r < wb->n_rows; r++) {
            uint32_t kl = (uint32_t)get_le(&b, 2);
            d->ptrs[ptr + r] = take(&b, kl);
            d->lens[ptr + r] = kl;
            d->event_ts[row + r] = (int64_t)get_le(&b, 8);
            for (size_t j = 0; j < wb->n_features; j++) {
                size_t x = ptr + wb->n_rows + r * wb->n_features + j;
                uint32_t vl = (uint32_t)get_le(&b, 4);
                d->ptrs[x] = take(&b, vl);
                d->lens[x] = vl;
            }
        }
        ptr += wb->n_rows * (1 + wb->n_features);
        row += wb->n_rows;
    }
    if (rc < 0) {
        repl_msg_write_free(out);
        return rc;
    }
    return 0;
}

bool repl_msg_gc_valid(int64_t now_us, int64_t tombstone_retention_us)
{
    const int64_t year_10000_us = 253402300800ll * 1000000, century_us = 36525ll * 86400 * 1000000;
    return now_us >= 0 && now_us < year_10000_us && tombstone_retention_us >= 0 &&
           tombstone_retention_us <= century_us;
}

int repl_msg_decode_gc(const uint8_t *p, size_t len, int64_t *now_us,
                       int64_t *tombstone_retention_us)
{
    if (repl_msg_kind(p, len) != REPL_MSG_GC || len != 5 + 16)
        return -EPROTO;
    rbuf_t b = {.p = p, .len = len, .off = 5};
    int64_t now = (int64_t)get_le(&b, 8), keep = (int64_t)get_le(&b, 8);
    if (!repl_msg_gc_valid(now, keep))
        return -EPROTO;
    *now_us = now;
    *tombstone_retention_us = keep;
    return 0;
}

int repl_msg_decode_catalog(const uint8_t *p, size_t len, catalog_t **out, char *err,
                            size_t err_cap)
{
    if (repl_msg_kind(p, len) != REPL_MSG_CATALOG)
        return fail(err, err_cap, -EPROTO, "not an fstore catalog message");
    catalog_errors_t errs = {0};
    int rc = catalog_load_string((const char *)p + 5, len - 5, "catalog in the log", out, &errs);
    if (rc < 0 && rc != -ENOMEM) {
        if (errs.count > 0)
            fail(err, err_cap, -EINVAL, "catalog in the log: line %d: %s", errs.items[0].line,
                 errs.items[0].message);
        else
            fail(err, err_cap, -EINVAL, "catalog in the log does not load: %s", strerror(-rc));
        rc = -EINVAL;
    }
    catalog_errors_clear(&errs);
    return rc;
}
