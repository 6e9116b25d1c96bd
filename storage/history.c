/* storage/history.c - point-in-time reads of views' history: one entity as of a time, scans. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * A history database holds (entity key, event time) -> record (see store.h), so an entity's
 * entries are adjacent and in time order: its row as of T is one B-tree seek to (entity, T)
 * and, unless that entry has exactly time T, one step back.
 */

int store_read_catalog_hash(store_reader_t *r, uint64_t *hash)
{
    if (!store__reader_active(r))
        return -EINVAL;
    MDB_val v;
    int rc =
        store__meta_get(store__reader_txn(r), store__reader_store(r)->meta, STORE__KEY_CATALOG, &v);
    *hash = rc == 0 ? base_fnv1a(v.mv_data, v.mv_size, BASE_FNV_OFFSET) : 0;
    return rc == -ENOENT ? 0 : rc;
}

bool store_keeps_history(const store_t *s)
{
    return s->history;
}

/* The reader's transaction and the history database of v, or why not. */
static int history_dbi(store_reader_t *r, const catalog_view_t *v, const store__view_t **out)
{
    if (!store__reader_active(r))
        return -EINVAL;
    store_t *s = store__reader_store(r);
    if (!s->history)
        return -ENOTSUP;
    const store__views_t *t = s->views;
    const store__view_t *e = t != NULL ? store__views_find(t, v->name, v->version) : NULL;
    if (e == NULL || e->hdbi == 0)
        return -ENOENT;
    *out = e;
    return 0;
}

/* Fills row from the history entry k, d (found unless a tombstone). Returns: 0, -EBADMSG (a
 * damaged entry: counted and logged). */
static int entry_row(store_t *s, const store__view_t *e, const MDB_val *k, const MDB_val *d,
                     store_row_t *row)
{
    store__rec_t rec;
    if (store__rec_check(k->mv_data, k->mv_size, d->mv_data, d->mv_size, &rec) < 0) {
        store__rec_damaged(s, e->name, e->version, true, k->mv_data, k->mv_size);
        return -EBADMSG;
    }
    row->slots = e;
    row->event_ts_us = rec.event_ts_us;
    if (rec.tombstone) {
        row->deleted = true;
        return 0;
    }
    row->found = true;
    row->created_ts_us = rec.created_ts_us;
    row->rec = d->mv_data;
    row->rec_len = d->mv_size;
    return 0;
}

/* Positions cur on the entity's latest entry at or before at_us (key is the entity key, hk a
 * buffer of STORE_MAX_KEY bytes). Returns: 1 found (k, d set), 0 none, or a negative errno. */
int store__history_seek(MDB_cursor *cur, const uint8_t *key, size_t key_len, int64_t at_us,
                        uint8_t *hk, MDB_val *k, MDB_val *d)
{
    size_t hlen = key_len + STORE__HKEY_TS;
    memcpy(hk, key, key_len);
    store__hkey_put_ts(hk + key_len, at_us);
    k->mv_size = hlen;
    k->mv_data = hk;
    int mrc = mdb_cursor_get(cur, k, d, MDB_SET_RANGE);
    if (mrc == 0 && k->mv_size == hlen && memcmp(k->mv_data, hk, hlen) == 0)
        return 1;
    mrc = mrc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, d, MDB_LAST)
          : mrc == 0          ? mdb_cursor_get(cur, k, d, MDB_PREV)
                              : mrc;
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return store__errno(mrc);
    return k->mv_size == hlen && memcmp(k->mv_data, key, key_len) == 0;
}

int store_history_row(store_reader_t *r, const catalog_view_t *v, const uint8_t *key,
                      size_t key_len, int64_t at_us, store_row_t *row)
{
    memset(row, 0, sizeof *row);
    const store__view_t *e;
    int rc = history_dbi(r, v, &e);
    if (rc < 0)
        return rc;
    row->slots = e;
    if (key_len == 0 || key_len > STORE_MAX_KEY)
        return -EINVAL;
    if (key_len > STORE_MAX_HISTORY_KEY)
        return 0; /* too long to have a history: none */
    MDB_cursor *cur;
    rc = store__errno(mdb_cursor_open(store__reader_txn(r), e->hdbi, &cur));
    if (rc < 0)
        return rc;
    uint8_t hk[STORE_MAX_KEY];
    MDB_val k, d;
    rc = store__history_seek(cur, key, key_len, at_us, hk, &k, &d);
    if (rc < 0)
        store__read_failed(store__reader_store(r), e->name, e->version, rc);
    if (rc > 0)
        rc = entry_row(store__reader_store(r), e, &k, &d, row);
    mdb_cursor_close(cur);
    return rc;
}

/* Positions cur on the first entry of the entity after key (hk: a STORE_MAX_KEY buffer): past
 * key's entry of the largest time. Returns: as mdb_cursor_get(). */
static int seek_past(MDB_cursor *cur, const uint8_t *key, size_t key_len, uint8_t *hk, MDB_val *k,
                     MDB_val *d)
{
    memcpy(hk, key, key_len);
    memset(hk + key_len, 0xff, STORE__HKEY_TS);
    k->mv_size = key_len + STORE__HKEY_TS;
    k->mv_data = hk;
    int mrc = mdb_cursor_get(cur, k, d, MDB_SET_RANGE);
    if (mrc == 0 && k->mv_size == key_len + STORE__HKEY_TS &&
        memcmp(k->mv_data, hk, k->mv_size) == 0)
        mrc = mdb_cursor_get(cur, k, d, MDB_NEXT);
    return mrc;
}

int store_history_scan(store_reader_t *r, const catalog_view_t *v, int64_t at_us,
                       const uint8_t *after, size_t after_len, store_history_fn fn, void *arg)
{
    const store__view_t *e;
    int rc = history_dbi(r, v, &e);
    if (rc < 0)
        return rc;
    if (after_len > STORE_MAX_HISTORY_KEY)
        return -EINVAL;
    MDB_cursor *cur;
    rc = store__errno(mdb_cursor_open(store__reader_txn(r), e->hdbi, &cur));
    if (rc < 0)
        return rc;
    uint8_t hk[STORE_MAX_KEY], ent[STORE_MAX_KEY];
    MDB_val k, d;
    int mrc;
    mrc = after_len > 0 ? seek_past(cur, after, after_len, hk, &k, &d)
                        : mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    rc = 0;
    while (mrc == 0 && rc == 0) {
        if (k.mv_size <= STORE__HKEY_TS) {
            rc = -EIO;
            break;
        }
        /* k is the entity's first entry: its own key, then its row as of at_us. */
        size_t elen = k.mv_size - STORE__HKEY_TS;
        memcpy(ent, k.mv_data, elen);
        int found = store__history_seek(cur, ent, elen, at_us, hk, &k, &d);
        if (found < 0) {
            rc = found;
            store__read_failed(store__reader_store(r), e->name, e->version, rc);
            break;
        }
        store_row_t row;
        memset(&row, 0, sizeof row);
        if (found > 0)
            rc = entry_row(store__reader_store(r), e, &k, &d, &row);
        if (rc == 0)
            rc = fn(arg, ent, elen,
                    row.found && !store__expired(v, row.event_ts_us, at_us) ? &row : NULL);
        if (rc != 0)
            break;
        mrc = seek_past(cur, ent, elen, hk, &k, &d); /* on to the next entity */
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store__errno(mrc);
        store__read_failed(store__reader_store(r), e->name, e->version, rc);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Materialize                                                                                 */

#define MAT_PAGE 1024

typedef struct mat_page {
    const catalog_view_t *v;
    int64_t start_us;
    uint32_t *feature_idx; /* [n_features]: 0 .. n_features - 1 */
    size_t n;              /* rows in this page */
    size_t seen;           /* entities looked at (the page ends after MAT_PAGE of them) */
    store__buf_t bytes;    /* keys and values, copied out of the map */
    size_t *key_off, *val_off;
    uint32_t *key_len, *val_len; /* [MAT_PAGE], [MAT_PAGE * n_features] */
    int64_t *ts;
    uint8_t last[STORE_MAX_KEY];
    size_t last_len;
    const uint8_t **wire;
    size_t *len;
    store_status_t *sts;
} mat_page_t;

static int mat_row(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    mat_page_t *p = arg;
    const catalog_view_t *v = p->v;
    if (p->seen == MAT_PAGE)
        return 1;
    p->seen++;
    memcpy(p->last, key, key_len);
    p->last_len = key_len;
    if (row == NULL || row->event_ts_us < p->start_us)
        return 0; /* its latest row by the end is older than the range */
    size_t r = p->n;
    p->key_off[r] = p->bytes.len;
    p->key_len[r] = (uint32_t)key_len;
    int rc = store__buf_append(&p->bytes, key, key_len);
    if (rc < 0)
        return rc;
    store_row_features(row, v, p->feature_idx, v->n_features, row->event_ts_us, p->wire, p->len,
                       p->sts);
    for (size_t f = 0; f < v->n_features; f++) {
        size_t at = r * v->n_features + f;
        p->val_off[at] = p->bytes.len;
        p->val_len[at] = (uint32_t)p->len[f];
        if (p->len[f] > 0 && (rc = store__buf_append(&p->bytes, p->wire[f], p->len[f])) < 0)
            return rc;
    }
    p->ts[r] = row->event_ts_us;
    p->n++;
    return 0;
}

/* Applies one page to the online rows, waiting for the commit. Returns: as store_apply(). */
static int mat_apply(store_t *s, mat_page_t *p, size_t *written)
{
    const catalog_view_t *v = p->v;
    size_t nf = v->n_features;
    const uint8_t **keys = malloc((p->n + 1) * sizeof *keys);
    const uint8_t **vals = malloc((p->n * nf + 1) * sizeof *vals);
    int rc = -ENOMEM;
    if (keys != NULL && vals != NULL) {
        for (size_t r = 0; r < p->n; r++) {
            keys[r] = p->bytes.data + p->key_off[r];
            for (size_t f = 0; f < nf; f++)
                vals[r * nf + f] = p->bytes.data + p->val_off[r * nf + f];
        }
        /* Online only: the rows come from the history, which keeps them as they are. */
        store_wire_batch_t b = {.view = v,
                                .op = STORE_OP_ONLINE,
                                .n_rows = p->n,
                                .keys = keys,
                                .key_lens = p->key_len,
                                .n_features = nf,
                                .feature_idx = p->feature_idx,
                                .values = vals,
                                .value_lens = p->val_len,
                                .event_ts_us = p->ts};
        /* store_apply() for wire batches: encoded here, committed by the writer. */
        store_apply_result_t res;
        memset(&res, 0, sizeof res);
        store__enc_t enc;
        memset(&enc, 0, sizeof enc);
        rc = store__encode_wire(s, &b, 1, &enc, &res);
        if (rc == 0)
            rc = store__submit(s, &enc, 0, &res);
        store__enc_free(&enc);
        if (rc == 0)
            *written += res.written;
    }
    free(keys);
    free(vals);
    return rc;
}

int store_materialize(store_t *s, const catalog_view_t *v, int64_t start_us, int64_t end_us,
                      size_t *written)
{
    *written = 0;
    if (s->read_only)
        return -EROFS;
    if (s->log_contiguous)
        return -EPERM;
    if (v->on_demand != NULL || !v->history)
        return -EINVAL;
    size_t nf = v->n_features;
    mat_page_t p = {.v = v, .start_us = start_us};
    p.feature_idx = calloc(nf + 1, sizeof *p.feature_idx);
    p.key_off = calloc(MAT_PAGE, sizeof *p.key_off);
    p.key_len = calloc(MAT_PAGE, sizeof *p.key_len);
    p.val_off = calloc(MAT_PAGE * nf + 1, sizeof *p.val_off);
    p.val_len = calloc(MAT_PAGE * nf + 1, sizeof *p.val_len);
    p.ts = calloc(MAT_PAGE, sizeof *p.ts);
    p.wire = calloc(nf + 1, sizeof *p.wire);
    p.len = calloc(nf + 1, sizeof *p.len);
    p.sts = calloc(nf + 1, sizeof *p.sts);
    store_reader_t *r = NULL;
    int rc = -ENOMEM;
    if (p.feature_idx == NULL || p.key_off == NULL || p.key_len == NULL || p.val_off == NULL ||
        p.val_len == NULL || p.ts == NULL || p.wire == NULL || p.len == NULL || p.sts == NULL)
        goto out;
    for (size_t f = 0; f < nf; f++)
        p.feature_idx[f] = (uint32_t)f;
    if ((rc = store_reader_new(s, &r)) < 0)
        goto out;
    uint8_t after[STORE_MAX_KEY];
    size_t after_len = 0;
    for (;;) {
        p.n = p.seen = 0;
        p.bytes.len = 0;
        /* A page is read, then written: no write may run inside a read (see the top of
         * store.h). */
        if ((rc = store_read_begin(r)) < 0)
            goto out;
        rc = store_history_scan(r, v, end_us, after, after_len, mat_row, &p);
        store_read_end(r);
        if (rc < 0)
            goto out;
        bool more = rc == 1;
        if (p.n > 0 && (rc = mat_apply(s, &p, written)) < 0)
            goto out;
        if (!more) {
            rc = 0;
            break;
        }
        memcpy(after, p.last, p.last_len);
        after_len = p.last_len;
    }
out:
    store_reader_free(r);
    store__buf_free(&p.bytes);
    free(p.feature_idx);
    free(p.key_off);
    free(p.key_len);
    free(p.val_off);
    free(p.val_len);
    free(p.ts);
    free(p.wire);
    free(p.len);
    free(p.sts);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The change feed                                                                             */

int store__change_parse(const uint8_t *p, size_t len, store__change_t *out)
{
    if (len < STORE__CHANGE_HEAD || p[0] != STORE__CHANGE_FORMAT)
        return -EIO;
    size_t vlen = p[STORE__CHANGE_VIEW_LEN];
    if (len < STORE__CHANGE_HEAD + vlen + 1 ||
        store__parse_view_key((const char *)p + STORE__CHANGE_HEAD, vlen, out->view,
                              &out->version) < 0)
        return -EIO;
    out->deleted = (p[STORE__CHANGE_FLAGS] & STORE__REC_TOMBSTONE) != 0;
    out->event_ts_us = (int64_t)store__le64(p + STORE__CHANGE_EVENT_TS);
    out->write_ts_us = (int64_t)store__le64(p + STORE__CHANGE_WRITE_TS);
    out->key = p + STORE__CHANGE_HEAD + vlen;
    out->key_len = len - STORE__CHANGE_HEAD - vlen;
    return 0;
}

int store_changes(store_reader_t *r, uint64_t after_pos, uint32_t after_idx, store_change_fn fn,
                  void *arg)
{
    if (!store__reader_active(r))
        return -EINVAL;
    store_t *s = store__reader_store(r);
    if (!s->history)
        return -ENOTSUP;
    if (s->changes == 0)
        return 0; /* opened read-only before the feed existed: nothing yet */
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(store__reader_txn(r), s->changes, &cur));
    if (rc < 0)
        return rc;
    uint8_t k0[STORE__CHANGE_KEY];
    store__change_key_put(k0, after_pos, after_idx);
    MDB_val k = {sizeof k0, k0}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    if (mrc == 0 && k.mv_size == sizeof k0 && memcmp(k.mv_data, k0, sizeof k0) == 0)
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    rc = 0;
    for (; mrc == 0 && rc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        store__change_t c;
        if (k.mv_size != STORE__CHANGE_KEY || store__change_parse(d.mv_data, d.mv_size, &c) < 0) {
            rc = -EIO;
            break;
        }
        store_change_t ch = {.view = c.view,
                             .version = c.version,
                             .key = c.key,
                             .key_len = c.key_len,
                             .event_ts_us = c.event_ts_us,
                             .write_ts_us = c.write_ts_us,
                             .deleted = c.deleted};
        store__change_key_get(k.mv_data, &ch.position, &ch.index);
        rc = fn(arg, &ch);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store__errno(mrc);
    return rc;
}
