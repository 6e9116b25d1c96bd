/* storage/read.c - readers: one reusable LMDB read transaction per thread, zero-copy rows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

#define READER_VIEW_CACHE 8u

struct store_reader {
    store_t *s;
    MDB_txn *txn; /* created once, then reset and renewed: no allocation per request */
    bool active;
    /*
     * View-table entries found recently, direct-mapped on the catalog view's id: a request
     * reads a few views in turn, once per entity row, and a one-entry cache would miss on every
     * row. Valid only while cache_gen is the published table's generation (a new table, after a
     * catalog change, empties it by changing the generation).
     */
    uint64_t cache_gen;
    const store__view_t *cache[READER_VIEW_CACHE];
};

static size_t view_cache_slot(const catalog_view_t *v)
{
    /* A view's id is its index in its catalog, so a catalog's first views never share a slot. */
    return v->id % READER_VIEW_CACHE;
}

int store_reader_new(store_t *s, store_reader_t **out)
{
    store_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->s = s;
    /* The transaction is begun once and kept reset between reads, for mdb_txn_renew(). */
    int rc = store__txn_begin(s, STORE__TXN_READ, &r->txn);
    if (rc < 0) {
        free(r);
        return rc;
    }
    store__txn_end(s, r->txn, STORE__TXN_RESET);
    *out = r;
    return 0;
}

void store_reader_free(store_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->active)
        store_read_end(r);
    mdb_txn_abort(r->txn);
    free(r);
}

bool store__reader_active(const store_reader_t *r)
{
    return r->active;
}
store_t *store__reader_store(const store_reader_t *r)
{
    return r->s;
}
MDB_txn *store__reader_txn(const store_reader_t *r)
{
    return r->txn;
}

int store_read_begin(store_reader_t *r)
{
    if (r->active)
        return -EINVAL;
    int rc = store__txn_begin(r->s, STORE__TXN_RENEW, &r->txn);
    if (rc < 0) {
        store__read_failed(r->s, NULL, 0, rc);
        return rc;
    }
    r->active = true;
    return 0;
}

void store_read_end(store_reader_t *r)
{
    if (r == NULL || !r->active)
        return;
    r->active = false;
    store__txn_end(r->s, r->txn, STORE__TXN_RESET);
}

int store_read_row(store_reader_t *r, const catalog_view_t *v, const uint8_t *key, size_t key_len,
                   store_row_t *row)
{
    row->found = false;
    row->deleted = false;
    row->rec = NULL;
    row->rec_len = 0;
    row->slots = NULL;
    if (!r->active)
        return -EINVAL;
    /* Holding the map lock shared pins the published view table (it is only swapped under the
     * lock held exclusively), so plain loads suffice here. */
    const store__views_t *t = r->s->views;
    if (t == NULL)
        return -ENOENT;
    if (r->cache_gen != t->gen) {
        memset(r->cache, 0, sizeof r->cache);
        r->cache_gen = t->gen;
    }
    size_t slot = view_cache_slot(v);
    const store__view_t *e = r->cache[slot];
    /*
     * A cached entry is only dereferenced under the generation it was found in, so it is alive.
     * e->cview == v proves the match: both are live views (the table keeps its catalog alive and
     * the caller keeps v), and two live objects never share an address. A view of another catalog
     * (a reload) is matched by name and version, as the table itself matches.
     */
    if (e == NULL ||
        (e->cview != v && (e->version != v->version || strcmp(e->name, v->name) != 0))) {
        e = store__views_find(t, v->name, v->version);
        if (e == NULL)
            return -ENOENT;
        r->cache[slot] = e;
    }
    MDB_val k = {key_len, (void *)key}, d;
    int rc = store__fault(STORE__FAULT_READ);
    if (rc == 0)
        rc = mdb_get(r->txn, e->dbi, &k, &d);
    if (rc == MDB_NOTFOUND) {
        row->slots = e;
        return 0;
    }
    if (rc != 0) {
        rc = store__errno(rc);
        store__read_failed(r->s, e->name, e->version, rc);
        return rc;
    }
    store__rec_t rec;
    row->slots = e;
    if (store__rec_check(key, key_len, d.mv_data, d.mv_size, &rec) < 0) {
        store__rec_damaged(r->s, e->name, e->version, false, key, key_len);
        return -EBADMSG;
    }
    if (rec.tombstone) {
        row->deleted = true;
        row->event_ts_us = rec.event_ts_us;
        return 0; /* deleted: NOT_FOUND */
    }
    row->found = true;
    row->event_ts_us = rec.event_ts_us;
    row->created_ts_us = rec.created_ts_us;
    row->rec = d.mv_data;
    row->rec_len = d.mv_size;
    return 0;
}
