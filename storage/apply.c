/* storage/apply.c - the apply path's caller side: validation, encoding, bulk loads. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/store_int.h"

/*
 * Everything that can be wrong with a batch is found here, in the caller's thread, before the
 * writer sees it: the writer only merges bytes. The one exception is store_bulk_add_checked(),
 * whose caller ran the catalog rules itself (row by row, to report every bad row with its line):
 * it skips them here, and only them, so no value is checked twice. Values are encoded to their
 * feast.types.Value wire form once, here, and the encoded rows are what the writer replays if it
 * has to retry.
 */

static int fail(store_apply_result_t *res, int rc, size_t batch, size_t row, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(store_apply_result_t *res, int rc, size_t batch, size_t row, const char *field,
                const char *fmt, ...)
{
    if (res == NULL)
        return rc;
    res->bad_batch = batch;
    res->bad_row = row;
    snprintf(res->bad_field, sizeof res->bad_field, "%s", field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    return rc;
}

void store__enc_free(store__enc_t *enc)
{
    free(enc->views);
    free(enc->rows);
    free(enc->order);
    store__buf_free(&enc->arena);
    memset(enc, 0, sizeof *enc);
}

/* The enc's entry for a view version (name, version, and the database's generation gen). */
static int enc_view(store__enc_t *enc, const char *name, uint32_t version, uint64_t gen,
                    uint32_t *out)
{
    for (size_t i = 0; i < enc->n_views; i++) {
        if (enc->views[i].version == version && enc->views[i].gen == gen &&
            strcmp(enc->views[i].name, name) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    }
    if (store__grow((void **)&enc->views, &enc->cap_views, enc->n_views, sizeof *enc->views, 4) < 0)
        return -ENOMEM;
    store__enc_view_t *v = &enc->views[enc->n_views];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->version = version;
    v->gen = gen;
    *out = (uint32_t)enc->n_views++;
    return 0;
}

static int enc_row(store__enc_t *enc, store__row_t **out)
{
    if (store__grow((void **)&enc->rows, &enc->cap_rows, enc->n_rows, sizeof *enc->rows, 64) < 0)
        return -ENOMEM;
    *out = &enc->rows[enc->n_rows];
    memset(*out, 0, sizeof **out);
    (*out)->seq = (uint32_t)enc->n_rows;
    return 0;
}

/* A join key's value against its declared type: the checks of store_encode_key(), one key at a
 * time so the error can name it. */
static const char *check_key(const catalog_join_key_t *jk, const catalog_value_t *k, int *rc)
{
    *rc = -EINVAL;
    switch (jk->dtype) {
    case CATALOG_DTYPE_INT64:
        if (k->type == CATALOG_DTYPE_INT64 || k->type == CATALOG_DTYPE_INT32)
            return NULL;
        break;
    case CATALOG_DTYPE_INT32:
        if (k->type == CATALOG_DTYPE_INT32)
            return NULL;
        if (k->type == CATALOG_DTYPE_INT64) {
            if (k->u.i64 >= INT32_MIN && k->u.i64 <= INT32_MAX)
                return NULL;
            *rc = -ERANGE;
            return "out of range for INT32";
        }
        break;
    default:
        if (k->type == jk->dtype)
            return NULL;
        break;
    }
    return "wrong type";
}

/* Room for the wire form of any fixed-size scalar: a one-byte tag and a varint of up to 10. */
#define SMALL_WIRE_MAX 16

/* Widening scratch for INT32 lists given for INT64_LIST features. */
typedef struct widen {
    int64_t *items;
    size_t cap;
} widen_t;

static int widen_value(const catalog_feature_t *f, const catalog_value_t *in, catalog_value_t *out,
                       widen_t *w)
{
    *out = *in;
    if (f->dtype == CATALOG_DTYPE_INT64 && in->type == CATALOG_DTYPE_INT32) {
        out->type = CATALOG_DTYPE_INT64;
        out->u.i64 = in->u.i32;
    } else if (f->dtype == CATALOG_DTYPE_INT64_LIST && in->type == CATALOG_DTYPE_INT32_LIST) {
        if (w->cap < in->u.list.n) {
            int64_t *p = realloc(w->items, in->u.list.n * sizeof *p);
            if (p == NULL)
                return -ENOMEM;
            w->items = p;
            w->cap = in->u.list.n;
        }
        for (size_t i = 0; i < in->u.list.n; i++)
            w->items[i] = in->u.list.v.i32[i];
        out->type = CATALOG_DTYPE_INT64_LIST;
        out->u.list.v.i64 = w->items;
    }
    return 0;
}

typedef struct enc_state {
    uint32_t *slots; /* per written feature: its slot */
    uint32_t *perm;  /* written features in slot order */
    catalog_value_t *keys;
    size_t cap_f, cap_k;
    widen_t widen;
} enc_state_t;

static int grow_state(enc_state_t *st, size_t nf, size_t nk)
{
    if (nf > st->cap_f) {
        uint32_t *a = realloc(st->slots, nf * sizeof *a);
        if (a == NULL)
            return -ENOMEM;
        st->slots = a;
        a = realloc(st->perm, nf * sizeof *a);
        if (a == NULL)
            return -ENOMEM;
        st->perm = a;
        st->cap_f = nf;
    }
    if (nk > st->cap_k) {
        catalog_value_t *k = realloc(st->keys, nk * sizeof *k);
        if (k == NULL)
            return -ENOMEM;
        st->keys = k;
        st->cap_k = nk;
    }
    return 0;
}

/* An event time after latest_us: the message names it and the bound. */
static int too_far_ahead(store_apply_result_t *res, size_t bi, size_t r, int64_t ts_us,
                         int64_t latest_us, int64_t now_us)
{
    char when[40] = "";
    time_t sec = (time_t)(ts_us / 1000000);
    struct tm tm;
    if (gmtime_r(&sec, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return fail(res, -EINVAL, bi, r, "event_timestamp",
                "event time %s is more than %lld s ahead of this node's clock "
                "(--max-future-skew): a row stamped that far ahead would make every later "
                "write to it stale",
                when[0] != '\0' ? when : "(out of range)",
                (long long)((latest_us - now_us) / 1000000));
}

/* A batch's op: a known one, and history only for a view that keeps it. Returns: 0, -EINVAL. */
static int check_op(const catalog_view_t *v, store_op_t op, size_t bi, store_apply_result_t *res)
{
    if (op != STORE_OP_UPSERT && op != STORE_OP_DELETE && op != STORE_OP_HISTORY &&
        op != STORE_OP_ONLINE)
        return fail(res, -EINVAL, bi, 0, "", "unknown op %d", (int)op);
    if (op == STORE_OP_HISTORY && !v->history)
        return fail(res, -EINVAL, bi, 0, "",
                    "feature view %s@v%u keeps no offline history (give it 'offline: {retention: "
                    "...}' in the catalog)",
                    v->name, v->version);
    return 0;
}

static int encode_batch(const store__views_t *t, const store_batch_t *b, size_t bi, int64_t now,
                        int64_t latest, bool checked, store__enc_t *enc, enc_state_t *st,
                        store_apply_result_t *res)
{
    const catalog_view_t *v = b->view;
    int rc;
    if (v == NULL)
        return fail(res, -EINVAL, bi, 0, "", "batch has no view");
    /* Without a view table (store_wire_begin() without a store) a feature's slot is its index. */
    const store__view_t *e = t != NULL ? store__views_find(t, v->name, v->version) : NULL;
    if (t != NULL && e == NULL)
        return fail(res, -ENOENT, bi, 0, "",
                    "feature view %s@v%u has no database here (not applied, or offline)", v->name,
                    v->version);
    rc = check_op(v, b->op, bi, res);
    if (rc < 0)
        return rc;
    size_t nf = b->op != STORE_OP_DELETE ? b->n_features : 0;
    if (b->n_rows > 0 && v->n_join_keys > 0 && b->keys == NULL)
        return fail(res, -EINVAL, bi, 0, "", "batch has no keys");
    if (nf > 0 && (b->feature_idx == NULL || b->values == NULL))
        return fail(res, -EINVAL, bi, 0, "", "batch has no values");
    rc = grow_state(st, nf, v->n_join_keys);
    if (rc < 0)
        return rc;
    uint32_t vi;
    rc = enc_view(enc, v->name, v->version, e != NULL ? e->gen : 0, &vi);
    if (rc < 0)
        return rc;

    /* Resolve every written feature to its slot once per batch, and order them by slot (the
     * record merge walks slots in order). Insertion sort: batches write few features. */
    for (size_t j = 0; j < nf; j++) {
        uint32_t idx = b->feature_idx[j];
        if (idx >= v->n_features)
            return fail(res, -EINVAL, bi, 0, "", "feature index %u out of range (view has %zu)",
                        idx, v->n_features);
        uint32_t slot = e != NULL ? store__slot_of(e, v, idx) : idx;
        if (slot == UINT32_MAX)
            return fail(res, -EINVAL, bi, 0, v->features[idx].name,
                        "feature is not in the catalog applied to this store (run apply)");
        st->slots[j] = slot;
        size_t k = j;
        while (k > 0 && st->slots[st->perm[k - 1]] > slot) {
            st->perm[k] = st->perm[k - 1];
            k--;
        }
        if (k > 0 && st->slots[st->perm[k - 1]] == slot)
            return fail(res, -EINVAL, bi, 0, v->features[idx].name,
                        "feature listed twice in one batch");
        st->perm[k] = (uint32_t)j;
    }

    char why[256];
    for (size_t r = 0; r < b->n_rows; r++) {
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (b->keys[k] == NULL)
                return fail(res, -EINVAL, bi, r, v->join_keys[k].name, "missing join key");
            st->keys[k] = b->keys[k][r];
            const char *bad = check_key(&v->join_keys[k], &st->keys[k], &rc);
            if (bad != NULL)
                return fail(res, -EINVAL, bi, r, v->join_keys[k].name, "join key %s: %s, want %s",
                            bad, catalog_dtype_name(st->keys[k].type),
                            catalog_dtype_name(v->join_keys[k].dtype));
        }
        /* Room for the key and every fixed-size value at once; only strings, bytes and lists
         * reserve again, for their own length. */
        rc = store__buf_reserve(&enc->arena,
                                STORE_MAX_KEY + nf * (STORE__VAL_BYTES + SMALL_WIRE_MAX));
        if (rc < 0)
            return rc;
        int klen = store_encode_key(v, st->keys, v->n_join_keys, enc->arena.data + enc->arena.len,
                                    STORE_MAX_KEY);
        if (klen < 0)
            return fail(res, -EINVAL, bi, r, v->n_join_keys ? v->join_keys[0].name : "",
                        "entity key longer than %d bytes encoded", STORE_MAX_KEY);
        if (v->history && klen > STORE_MAX_HISTORY_KEY && b->op != STORE_OP_DELETE)
            return fail(res, -EINVAL, bi, r, v->n_join_keys ? v->join_keys[0].name : "",
                        "entity key of %d bytes encoded: a view that keeps history takes at "
                        "most %d (its history keys add the time)",
                        klen, STORE_MAX_HISTORY_KEY);
        store__row_t *row;
        rc = enc_row(enc, &row);
        if (rc < 0)
            return rc;
        row->key_off = enc->arena.len;
        row->key_len = (uint32_t)klen;
        enc->arena.len += (size_t)klen;
        row->op = (uint8_t)b->op;
        row->view = vi;
        row->event_ts_us = b->event_ts_us != NULL ? b->event_ts_us[r] : now;
        if (row->event_ts_us > latest)
            return too_far_ahead(res, bi, r, row->event_ts_us, latest, now);
        row->vals_off = enc->arena.len;
        row->n_vals = (uint32_t)nf;
        for (size_t x = 0; x < nf; x++) {
            size_t j = st->perm[x];
            const catalog_feature_t *f = &v->features[b->feature_idx[j]];
            if (b->values[j] == NULL)
                return fail(res, -EINVAL, bi, r, f->name, "missing values");
            catalog_value_t val;
            rc = widen_value(f, &b->values[j][r], &val, &st->widen);
            if (rc < 0)
                return rc;
            if (!checked) {
                why[0] = '\0';
                if (catalog_validate_value(f, &val, why, sizeof why) < 0)
                    return fail(res, -EINVAL, bi, r, f->name, "%s", why[0] ? why : "invalid value");
            } else if (val.type != CATALOG_DTYPE_NULL && val.type != f->dtype) {
                /* The encoding depends on the type: checked even for checked rows. */
                return fail(res, -EINVAL, bi, r, f->name, "dtype: got %s, want %s",
                            catalog_dtype_name(val.type), catalog_dtype_name(f->dtype));
            } else {
#ifndef NDEBUG
                why[0] = '\0';
                if (catalog_validate_value(f, &val, why, sizeof why) < 0)
                    return fail(res, -EINVAL, bi, r, f->name,
                                "%s (in a row given to store_bulk_add_checked() as checked)",
                                why[0] ? why : "invalid value");
#endif
            }
            /* A fixed-size scalar encodes in at most 12 bytes (tag, 10-byte varint): encode it
             * straight into a reserve of that much and take the length from the encoder, rather
             * than sizing it first (catalog_value_encode() sizes it again anyway). */
            bool small = val.type != CATALOG_DTYPE_NULL && !catalog_dtype_is_list(val.type) &&
                         val.type != CATALOG_DTYPE_STRING && val.type != CATALOG_DTYPE_BYTES;
            size_t len = val.type == CATALOG_DTYPE_NULL ? 0
                         : small                        ? SMALL_WIRE_MAX
                                                        : catalog_value_wire_size(&val);
            if (len > STORE_MAX_VALUE)
                return fail(res, -EINVAL, bi, r, f->name,
                            "value is %zu bytes encoded, more than %u", len, STORE_MAX_VALUE);
            if (!small) {
                /* Its own room, and again the room the row's remaining fixed-size values may
                 * need, which this value may take from the reserve above. */
                rc = store__buf_reserve(&enc->arena, STORE__VAL_BYTES + len +
                                                         nf * (STORE__VAL_BYTES + SMALL_WIRE_MAX));
                if (rc < 0)
                    return rc;
            }
            uint8_t *p = enc->arena.data + enc->arena.len;
            if (len > 0) {
                int n = catalog_value_encode(&val, p + STORE__VAL_BYTES, len);
                if (n < 0 || (!small && (size_t)n != len))
                    return fail(res, -EINVAL, bi, r, f->name, "value cannot be encoded (%d)", n);
                len = (size_t)n;
            }
            store__put_le32(p + STORE__VAL_SLOT, st->slots[j]);
            store__put_le32(p + STORE__VAL_LEN, (uint32_t)len);
            enc->arena.len += STORE__VAL_BYTES + len;
        }
        enc->n_rows++;
    }
    return 0;
}

int store__encode(store_t *s, int64_t skew_us, const store_batch_t *batches, size_t n, bool checked,
                  store__enc_t *enc, store_apply_result_t *res)
{
    size_t n_rows = enc->n_rows, n_views = enc->n_views, arena_len = enc->arena.len;
    enc_state_t st = {0};
    store__views_t *t = s != NULL ? store__views_get(s) : NULL;
    int64_t now = store_now_us();
    int64_t latest = skew_us < 0 ? INT64_MAX : now + skew_us;
    int rc = 0;
    if (n > 0 && batches == NULL)
        rc = fail(res, -EINVAL, 0, 0, "", "no batches");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = encode_batch(t, &batches[i], i, now, latest, checked, enc, &st, res);
    if (rc < 0) {
        enc->n_rows = n_rows;
        enc->n_views = n_views;
        enc->arena.len = arena_len;
    }
    store__views_unref(t);
    free(st.slots);
    free(st.perm);
    free(st.keys);
    free(st.widen.items);
    return rc;
}

/* The first step of store_apply() and store_apply_async(): clears *res, refuses a read-only
 * store, validates and encodes in the caller's thread. The caller frees *enc in every case. */
static int apply_encode(store_t *s, const store_batch_t *batches, size_t n_batches,
                        store_apply_result_t *res, store__enc_t *enc)
{
    memset(res, 0, sizeof *res);
    memset(enc, 0, sizeof *enc);
    if (s->read_only)
        return -EROFS;
    return store__encode(s, s->max_future_skew_us, batches, n_batches, false, enc, res);
}

int store_apply(store_t *s, const store_batch_t *batches, size_t n_batches, uint64_t log_position,
                store_apply_result_t *res)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    store__enc_t enc;
    int rc = apply_encode(s, batches, n_batches, res, &enc);
    /* Nothing to write and no position to record: no transaction, no fsync. */
    if (rc == 0 && (enc.n_rows > 0 || log_position > 0))
        rc = store__submit(s, &enc, log_position, res);
    store__enc_free(&enc);
    return rc;
}

int store_apply_async(store_t *s, const store_batch_t *batches, size_t n_batches,
                      uint64_t log_position, store_apply_result_t *res, store_apply_done_fn done,
                      void *arg)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    store__enc_t enc;
    int rc = apply_encode(s, batches, n_batches, res, &enc);
    if (rc == 0 && enc.n_rows == 0 && log_position == 0) {
        /* Nothing to write and no position to record: decided here, as store_apply() would. */
        done(arg, 0, res);
    } else if (rc == 0) {
        rc = store__submit_async(s, &enc, log_position, done, arg);
    }
    store__enc_free(&enc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Wire batches: what the replication log carries                                              */

/* store_wire_begin()'s result: the public part, then the encoded rows it points into. */
typedef struct wire {
    store_wire_t pub;
    store__enc_t enc;
    const uint8_t **ptrs;  /* every batch's keys, then its values */
    uint32_t *lens;        /* the same */
    uint32_t *feature_idx; /* every batch's, in the order of its encoded values */
    int64_t *event_ts;
} wire_t;

void store_wire_end(store_wire_t *w)
{
    if (w == NULL)
        return;
    wire_t *x = (wire_t *)w;
    store__enc_free(&x->enc);
    free(x->pub.batches);
    free(x->ptrs);
    free(x->lens);
    free(x->feature_idx);
    free(x->event_ts);
    free(x);
}

typedef struct slot_idx {
    uint32_t slot, idx;
} slot_idx_t;

static int cmp_slot_idx(const void *a, const void *b)
{
    uint32_t x = ((const slot_idx_t *)a)->slot, y = ((const slot_idx_t *)b)->slot;
    return x < y ? -1 : x > y;
}

/* The feature indexes of batch b in the order its values were encoded (by slot). */
static int wire_features(const store__views_t *t, const store_batch_t *b, uint32_t *out)
{
    const catalog_view_t *v = b->view;
    const store__view_t *e = t != NULL ? store__views_find(t, v->name, v->version) : NULL;
    slot_idx_t *p = malloc((b->n_features + 1) * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    for (size_t j = 0; j < b->n_features; j++) {
        p[j].idx = b->feature_idx[j];
        p[j].slot = e != NULL ? store__slot_of(e, v, p[j].idx) : p[j].idx;
    }
    qsort(p, b->n_features, sizeof *p, cmp_slot_idx);
    for (size_t j = 0; j < b->n_features; j++)
        out[j] = p[j].idx;
    free(p);
    return 0;
}

int store_wire_begin(store_t *s, int64_t max_future_skew_s, const store_batch_t *batches,
                     size_t n_batches, store_wire_t **out, store_apply_result_t *res)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res);
    wire_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    int64_t skew_us = s != NULL ? s->max_future_skew_us : store_future_skew_us(max_future_skew_s);
    int rc = store__encode(s, skew_us, batches, n_batches, false, &w->enc, res);
    if (rc < 0) {
        store_wire_end(&w->pub);
        return rc;
    }
    /* Every row of batch i was encoded, in order: rows are cut back into their batches. */
    size_t n_ptrs = 0, n_feat = 0;
    for (size_t i = 0; i < n_batches; i++) {
        size_t nf = batches[i].op != STORE_OP_DELETE ? batches[i].n_features : 0;
        n_ptrs += batches[i].n_rows * (1 + nf);
        n_feat += nf;
    }
    w->pub.n_batches = n_batches;
    w->pub.batches = calloc(n_batches + 1, sizeof *w->pub.batches);
    w->ptrs = malloc((n_ptrs + 1) * sizeof *w->ptrs);
    w->lens = malloc((n_ptrs + 1) * sizeof *w->lens);
    w->feature_idx = malloc((n_feat + 1) * sizeof *w->feature_idx);
    w->event_ts = malloc((w->enc.n_rows + 1) * sizeof *w->event_ts);
    store__views_t *t = s != NULL ? store__views_get(s) : NULL;
    rc = w->pub.batches == NULL || w->ptrs == NULL || w->lens == NULL || w->feature_idx == NULL ||
                 w->event_ts == NULL
             ? -ENOMEM
             : 0;
    size_t row = 0, ptr = 0, feat = 0;
    const uint8_t *arena = w->enc.arena.data;
    for (size_t i = 0; i < n_batches && rc == 0; i++) {
        const store_batch_t *b = &batches[i];
        store_wire_batch_t *o = &w->pub.batches[i];
        size_t nf = b->op != STORE_OP_DELETE ? b->n_features : 0;
        o->view = b->view;
        o->op = b->op;
        o->n_rows = b->n_rows;
        o->n_features = nf;
        o->feature_idx = w->feature_idx + feat;
        if (nf > 0)
            rc = wire_features(t, b, w->feature_idx + feat);
        feat += nf;
        o->keys = w->ptrs + ptr;
        o->key_lens = w->lens + ptr;
        o->event_ts_us = w->event_ts + row;
        for (size_t r = 0; r < b->n_rows; r++) {
            const store__row_t *er = &w->enc.rows[row + r];
            w->ptrs[ptr + r] = arena + er->key_off;
            w->lens[ptr + r] = er->key_len;
            w->event_ts[row + r] = er->event_ts_us;
        }
        ptr += b->n_rows;
        o->values = w->ptrs + ptr;
        o->value_lens = w->lens + ptr;
        for (size_t r = 0; r < b->n_rows; r++) {
            const store__row_t *er = &w->enc.rows[row + r];
            const uint8_t *p = arena + er->vals_off;
            for (size_t x = 0; x < er->n_vals; x++) {
                uint32_t len = store__le32(p + STORE__VAL_LEN);
                w->ptrs[ptr] = p + STORE__VAL_BYTES;
                w->lens[ptr++] = len;
                p += STORE__VAL_BYTES + len;
            }
        }
        row += b->n_rows;
    }
    store__views_unref(t);
    if (rc < 0) {
        store_wire_end(&w->pub);
        return rc;
    }
    *out = &w->pub;
    return 0;
}

static int encode_wire_batch(const store__views_t *t, const store_wire_batch_t *b, size_t bi,
                             store__enc_t *enc, enc_state_t *st, store_apply_result_t *res)
{
    const catalog_view_t *v = b->view;
    if (v == NULL)
        return fail(res, -EINVAL, bi, 0, "", "batch has no view");
    const store__view_t *e = store__views_find(t, v->name, v->version);
    if (e == NULL)
        return fail(res, -ENOENT, bi, 0, "",
                    "feature view %s@v%u has no database here (not applied, or offline)", v->name,
                    v->version);
    int rc;
    /* A delete of a key too long for the history still reaches its online row. */
    const uint32_t max_key =
        v->history && b->op != STORE_OP_DELETE ? STORE_MAX_HISTORY_KEY : STORE_MAX_KEY;
    rc = check_op(v, b->op, bi, res);
    if (rc < 0)
        return rc;
    size_t nf = b->op != STORE_OP_DELETE ? b->n_features : 0;
    rc = grow_state(st, nf, 0);
    if (rc < 0)
        return rc;
    uint32_t vi;
    rc = enc_view(enc, v->name, v->version, e->gen, &vi);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < nf; j++) {
        uint32_t idx = b->feature_idx[j];
        if (idx >= v->n_features)
            return fail(res, -EINVAL, bi, 0, "", "feature index %u out of range (view has %zu)",
                        idx, v->n_features);
        uint32_t slot = store__slot_of(e, v, idx);
        if (slot == UINT32_MAX)
            return fail(res, -EINVAL, bi, 0, v->features[idx].name,
                        "feature is not in the catalog applied to this store");
        st->slots[j] = slot;
        size_t k = j;
        while (k > 0 && st->slots[st->perm[k - 1]] > slot) {
            st->perm[k] = st->perm[k - 1];
            k--;
        }
        if (k > 0 && st->slots[st->perm[k - 1]] == slot)
            return fail(res, -EINVAL, bi, 0, v->features[idx].name,
                        "feature listed twice in one batch");
        st->perm[k] = (uint32_t)j;
    }
    for (size_t r = 0; r < b->n_rows; r++) {
        uint32_t klen = b->key_lens[r];
        if (klen == 0 || klen > max_key)
            return fail(res, -EINVAL, bi, r, "", "entity key of %u bytes", klen);
        size_t need = klen;
        for (size_t j = 0; j < nf; j++) {
            uint32_t len = b->value_lens[r * nf + j];
            if (len > STORE_MAX_VALUE)
                return fail(res, -EINVAL, bi, r, v->features[b->feature_idx[j]].name,
                            "value is %u bytes encoded, more than %u", len, STORE_MAX_VALUE);
            need += STORE__VAL_BYTES + len;
        }
        rc = store__buf_reserve(&enc->arena, need);
        if (rc < 0)
            return rc;
        store__row_t *row;
        rc = enc_row(enc, &row);
        if (rc < 0)
            return rc;
        row->key_off = enc->arena.len;
        row->key_len = klen;
        memcpy(enc->arena.data + enc->arena.len, b->keys[r], klen);
        enc->arena.len += klen;
        row->op = (uint8_t)b->op;
        row->view = vi;
        row->event_ts_us = b->event_ts_us[r];
        row->vals_off = enc->arena.len;
        row->n_vals = (uint32_t)nf;
        for (size_t x = 0; x < nf; x++) {
            size_t j = st->perm[x];
            uint32_t len = b->value_lens[r * nf + j];
            uint8_t *p = enc->arena.data + enc->arena.len;
            store__put_le32(p + STORE__VAL_SLOT, st->slots[j]);
            store__put_le32(p + STORE__VAL_LEN, len);
            if (len > 0)
                memcpy(p + STORE__VAL_BYTES, b->values[r * nf + j], len);
            enc->arena.len += STORE__VAL_BYTES + len;
        }
        enc->n_rows++;
    }
    return 0;
}

int store__encode_wire(store_t *s, const store_wire_batch_t *batches, size_t n, store__enc_t *enc,
                       store_apply_result_t *res)
{
    size_t n_rows = enc->n_rows, n_views = enc->n_views, arena_len = enc->arena.len;
    enc_state_t st = {0};
    store__views_t *t = store__views_get(s);
    int rc = 0;
    if (n > 0 && batches == NULL)
        rc = fail(res, -EINVAL, 0, 0, "", "no batches");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = encode_wire_batch(t, &batches[i], i, enc, &st, res);
    if (rc < 0) {
        enc->n_rows = n_rows;
        enc->n_views = n_views;
        enc->arena.len = arena_len;
    }
    store__views_unref(t);
    free(st.slots);
    free(st.perm);
    free(st.keys);
    return rc;
}

int store_apply_wire_async(store_t *s, const store_wire_batch_t *batches, size_t n_batches,
                           uint64_t log_position, store_apply_result_t *res,
                           store_apply_done_fn done, void *arg)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res);
    store__enc_t enc;
    memset(&enc, 0, sizeof enc);
    int rc = s->read_only ? -EROFS : store__encode_wire(s, batches, n_batches, &enc, res);
    if (rc == 0 && enc.n_rows == 0 && log_position == 0)
        done(arg, 0, res);
    else if (rc == 0)
        rc = store__submit_async(s, &enc, log_position, done, arg);
    store__enc_free(&enc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Bulk loads                                                                                  */

/*
 * Each store_bulk_add() call becomes one part, sorted and folded into records here, in the
 * caller's thread, and streamed into the writer's open transaction while the caller goes on
 * producing rows: the writer's share of a load is then little more than copying records into
 * pages, and it overlaps the caller's work instead of following it.
 */
struct store_bulk {
    store_t *s;
    store__stream_t *st; /* NULL once committed */
    size_t n_rows;
};

int store_bulk_begin(store_t *s, store_bulk_t **out)
{
    if (s->read_only)
        return -EROFS;
    store_bulk_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    int rc = store__stream_begin(s, &b->st);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->s = s;
    *out = b;
    return 0;
}

void store__part_free(store__part_t *p)
{
    if (p == NULL)
        return;
    store__enc_free(&p->enc);
    free(p->views);
    free(p->groups);
    store__buf_free(&p->recs);
    free(p);
}

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
    const store__enc_t *enc = arg;
    const store__row_t *a = &enc->rows[*(const uint32_t *)pa];
    const store__row_t *b = &enc->rows[*(const uint32_t *)pb];
    if (a->view != b->view)
        return a->view < b->view ? -1 : 1;
    int c = store__key_order(enc->arena.data + a->key_off, a->key_len, enc->arena.data + b->key_off,
                             b->key_len);
    if (c != 0)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Folds one group's rows, in input order, into the record they make for an absent key: the
 * same rules as the writer's row-by-row path (last write wins by event time, a delete leaves a
 * tombstone, an upsert must be newer than a tombstone, a tie otherwise goes to the later row).
 * Returns: 0, -EIO, -E2BIG, -ENOMEM. */
static int fold_group(store__part_t *p, store__group_t *g, store__buf_t *a, store__buf_t *b)
{
    const store__enc_t *enc = &p->enc;
    const store__row_t *first = &enc->rows[enc->order[g->first]];
    g->view = first->view;
    g->key_len = first->key_len;
    g->key_off = p->recs.len;
    int rc = store__buf_append(&p->recs, enc->arena.data + first->key_off, first->key_len);
    if (rc < 0)
        return rc;
    g->rec_off = p->recs.len;
    if (g->n == 1 && first->op == STORE_OP_HISTORY) {
        g->history = true; /* nothing for the online row */
        return 0;
    }
    if (g->n == 1) {
        /* Most groups: one row, built straight into place (the write time is the commit's: the
         * writer fills it in). */
        rc = first->op == STORE_OP_DELETE ? store__rec_tombstone(first->event_ts_us, 0, &p->recs)
                                          : store__rec_build(first, enc->arena.data, 0, &p->recs);
        if (rc < 0)
            return rc;
        if (p->recs.len - g->rec_off > UINT32_MAX)
            return -E2BIG;
        g->written = first->op != STORE_OP_DELETE;
        g->rec_len = (uint32_t)(p->recs.len - g->rec_off);
        return 0;
    }
    enum { NONE, LIVE, DELETED } state = NONE;
    int64_t ts = 0;
    for (uint32_t x = g->first; x < g->first + g->n; x++) {
        const store__row_t *r = &enc->rows[enc->order[x]];
        if (r->op == STORE_OP_HISTORY) {
            g->history = true;
            continue;
        }
        if (state != NONE &&
            (r->event_ts_us < ts ||
             (state == DELETED && r->op != STORE_OP_DELETE && r->event_ts_us == ts))) {
            g->stale++;
            continue;
        }
        ts = r->event_ts_us;
        if (r->op == STORE_OP_DELETE) {
            g->written += state == LIVE;
            state = DELETED;
            continue;
        }
        store__rec_t old;
        if (state == LIVE && store__rec_parse(a->data, a->len, &old) < 0)
            return -EIO;
        rc = store__rec_merge(state == LIVE ? &old : NULL, r, enc->arena.data, 0, b);
        if (rc < 0)
            return rc;
        store__buf_t t = *a;
        *a = *b;
        *b = t;
        state = LIVE;
        g->written++;
    }
    g->rec_len = 0;
    if (state == NONE)
        return 0;
    if (state == DELETED) {
        rc = store__rec_tombstone(ts, 0, &p->recs);
        g->rec_len = STORE__REC_TOMBSTONE_LEN;
        return rc;
    }
    if (a->len > UINT32_MAX)
        return -E2BIG;
    g->rec_len = (uint32_t)a->len;
    return store__buf_append(&p->recs, a->data, a->len);
}

/* Sorts a part's rows and folds them into groups. Returns: 0, -E2BIG, -ENOMEM, -EIO. */
static int build_part(store__part_t *p)
{
    store__enc_t *enc = &p->enc;
    if (enc->n_rows > UINT32_MAX)
        return -E2BIG;
    uint32_t *order = realloc(enc->order, (enc->n_rows + 1) * sizeof *enc->order);
    if (order == NULL)
        return -ENOMEM;
    enc->order = order;
    p->groups = malloc((enc->n_rows + 1) * sizeof *p->groups);
    if (p->groups == NULL)
        return -ENOMEM;
    bool sorted = true;
    for (size_t i = 0; i < enc->n_rows; i++) {
        enc->order[i] = (uint32_t)i;
        if (sorted && i > 0 && cmp_rows(&enc->order[i - 1], &enc->order[i], enc) > 0)
            sorted = false;
    }
    /* Bulk files are often written in key order already: one linear check then saves the
     * n log n sort. The order is total (seq breaks ties), so skipping it changes nothing. */
    if (!sorted)
        qsort_r(enc->order, enc->n_rows, sizeof *enc->order, cmp_rows, enc);
    /* Room for every record at once (a record takes at most its row's arena bytes plus its
     * header, when slots are dense), so the buffer is not copied as it grows. */
    int rc = store__buf_reserve(&p->recs, enc->arena.len + enc->n_rows * STORE__REC_TOMBSTONE_LEN);
    if (rc < 0)
        return rc;
    store__buf_t a = {0}, b = {0};
    const uint8_t *arena = enc->arena.data;
    for (size_t i = 0; i < enc->n_rows && rc == 0;) {
        const store__row_t *first = &enc->rows[enc->order[i]];
        size_t j = i + 1;
        while (j < enc->n_rows) {
            const store__row_t *r = &enc->rows[enc->order[j]];
            if (r->view != first->view || r->key_len != first->key_len ||
                memcmp(arena + r->key_off, arena + first->key_off, r->key_len) != 0)
                break;
            j++;
        }
        store__group_t *g = &p->groups[p->n_groups++];
        memset(g, 0, sizeof *g);
        g->first = (uint32_t)i;
        g->n = (uint32_t)(j - i);
        rc = fold_group(p, g, &a, &b);
        i = j;
    }
    store__buf_free(&a);
    store__buf_free(&b);
    p->views = enc->views;
    p->n_views = enc->n_views;
    enc->views = NULL;
    enc->n_views = enc->cap_views = 0;
    return rc;
}

static int bulk_add(store_bulk_t *b, const store_batch_t *batches, size_t n_batches, bool checked,
                    store_apply_result_t *res)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res);
    if (b->st == NULL)
        return -EINVAL; /* committed already */
    store__part_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    store__stream_take_spare(b->st, &p->enc);
    int rc =
        store__encode(b->s, b->s->max_future_skew_us, batches, n_batches, checked, &p->enc, res);
    if (rc == 0 && p->enc.n_rows > 0)
        rc = build_part(p);
    if (rc < 0 || p->enc.n_rows == 0) {
        store__part_free(p);
        return rc;
    }
    size_t n = p->enc.n_rows;
    rc = store__stream_push(b->st, p, res);
    if (rc == 0)
        b->n_rows += n;
    return rc;
}

int store_bulk_add(store_bulk_t *b, const store_batch_t *batches, size_t n_batches,
                   store_apply_result_t *res)
{
    return bulk_add(b, batches, n_batches, false, res);
}

int store_bulk_add_checked(store_bulk_t *b, const store_batch_t *batches, size_t n_batches,
                           store_apply_result_t *res)
{
    return bulk_add(b, batches, n_batches, true, res);
}

size_t store_bulk_rows(const store_bulk_t *b)
{
    return b->n_rows;
}

int store_bulk_commit(store_bulk_t *b, store_apply_result_t *res)
{
    store_apply_result_t scratch;
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res);
    if (b->st == NULL)
        return -EINVAL;
    int rc = store__stream_end(b->st, true, res);
    b->st = NULL;
    return rc;
}

void store_bulk_free(store_bulk_t *b)
{
    if (b == NULL)
        return;
    store__stream_end(b->st, false, NULL);
    free(b);
}
