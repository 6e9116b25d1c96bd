/* storage/views.c - the view table: (view, version) -> LMDB database and feature slot table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * Readers look a view up on every read, so the table is immutable once published and found by a
 * hash of (name, version), never by catalog_view_t pointer: a server reloads its catalog and the
 * new snapshot's views live elsewhere. The writer builds a new table after every catalog change
 * and publishes it under the map lock held exclusively, so a reader that found an entry between
 * store_read_begin() and store_read_end() can keep using it. Threads that only validate writes
 * take a reference instead (store__views_get()), because they must not block a resize.
 */

static uint64_t view_hash(const char *name, uint32_t version)
{
    uint64_t h = base_fnv1a(name, strlen(name), BASE_FNV_OFFSET);
    return base_fnv1a(&version, sizeof version, h);
}

const store__view_t *store__views_find(const store__views_t *t, const char *name, uint32_t version)
{
    if (t == NULL || t->n == 0)
        return NULL;
    uint32_t i = (uint32_t)view_hash(name, version) & t->mask;
    for (;;) {
        uint32_t x = t->ix[i];
        if (x == 0)
            return NULL;
        const store__view_t *e = &t->items[x - 1];
        if (e->version == version && strcmp(e->name, name) == 0)
            return e;
        i = (i + 1) & t->mask;
    }
}

static uint32_t pow2_above(size_t n)
{
    uint32_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static void view_free(store__view_t *e)
{
    if (e->slot_names != NULL) {
        for (uint32_t i = 0; i < e->n_slots; i++)
            free(e->slot_names[i]);
    }
    free(e->slot_names);
    free(e->fast);
    free(e->name_ix);
    free(e->name);
}

store__views_t *store__views_ref(store__views_t *t)
{
    if (t != NULL)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void store__views_unref(store__views_t *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n; i++)
        view_free(&t->items[i]);
    free(t->items);
    free(t->ix);
    catalog_unref(t->catalog);
    free(t);
}

/* Slot table value: u32 count, then each feature name NUL-terminated, in slot order. */
static int load_slots(store__view_t *e, const MDB_val *val)
{
    const uint8_t *p = val->mv_data, *end = p + val->mv_size;
    if (val->mv_size < 4)
        return -EIO;
    uint32_t n = store__le32(p);
    p += 4;
    if (n > val->mv_size)
        return -EIO;
    e->slot_names = calloc(n + 1, sizeof *e->slot_names);
    e->name_mask = pow2_above(n) - 1;
    e->name_ix = calloc((size_t)e->name_mask + 1, sizeof *e->name_ix);
    if (e->slot_names == NULL || e->name_ix == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (z == NULL)
            return -EIO;
        e->slot_names[i] = strdup((const char *)p);
        if (e->slot_names[i] == NULL)
            return -ENOMEM;
        e->n_slots = i + 1;
        uint32_t h = (uint32_t)base_fnv1a(p, (size_t)(z - p), BASE_FNV_OFFSET) & e->name_mask;
        while (e->name_ix[h] != 0)
            h = (h + 1) & e->name_mask;
        e->name_ix[h] = i + 1;
        p = z + 1;
    }
    return 0;
}

int store__parse_view_key(const char *key, size_t len, char *name, uint32_t *version)
{
    if (len == 0 || len >= STORE__VIEW_KEY_MAX)
        return -EIO;
    memcpy(name, key, len);
    name[len] = '\0';
    char *at = strrchr(name, '@');
    if (at == NULL || at[1] != 'v')
        return -EIO;
    char *endp;
    unsigned long ver = strtoul(at + 2, &endp, 10);
    if (*endp != '\0' || ver == 0 || ver > CATALOG_MAX_VERSION)
        return -EIO;
    *version = (uint32_t)ver;
    *at = '\0';
    return 0;
}

static int parse_view_key(const char *key, size_t len, store__view_t *e)
{
    char name[STORE__VIEW_KEY_MAX];
    int rc = store__parse_view_key(key, len, name, &e->version);
    if (rc < 0)
        return rc;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->name = strdup(name);
    return e->name == NULL ? -ENOMEM : 0;
}

int store__views_build(MDB_txn *txn, MDB_dbi meta, catalog_t *cat, bool history, uint64_t gen,
                       store__views_t **out)
{
    store__views_t *t = calloc(1, sizeof *t);
    MDB_cursor *cur = NULL;
    size_t cap = 0;
    int rc = -ENOMEM;
    if (t == NULL)
        goto out;
    atomic_init(&t->refs, 1);
    t->gen = gen;
    rc = store__errno(mdb_cursor_open(txn, meta, &cur));
    if (rc < 0)
        goto out;
    const size_t plen = strlen(STORE__PREFIX_SLOTS);
    MDB_val k = {plen, (void *)STORE__PREFIX_SLOTS}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, STORE__PREFIX_SLOTS, plen) != 0)
            break;
        rc = store__grow((void **)&t->items, &cap, t->n, sizeof *t->items, 16);
        if (rc < 0)
            goto out;
        store__view_t *e = &t->items[t->n++];
        memset(e, 0, sizeof *e);
        rc = parse_view_key((const char *)k.mv_data + plen, k.mv_size - plen, e);
        if (rc == 0)
            rc = load_slots(e, &v);
        if (rc == -EIO) {
            /* Not a table any fstore wrote: the store is damaged, said with the key at fault
             * (store_strerror(-EUCLEAN) tells the operator what to do). */
            char name[STORE__VIEW_KEY_MAX + 16];
            snprintf(name, sizeof name, "%.*s", (int)(k.mv_size < sizeof name ? k.mv_size : 0),
                     (const char *)k.mv_data);
            base_log(BASE_LOG_ERROR, "store_damaged", "{s:s, s:s}", "meta_key", name, "error",
                     "a view's slot table that does not parse");
            rc = -EUCLEAN;
        }
        if (rc < 0)
            goto out;
        char dbname[STORE__VIEW_KEY_MAX + 8];
        memcpy(dbname, STORE__PREFIX_DB, strlen(STORE__PREFIX_DB));
        strcpy(dbname + strlen(STORE__PREFIX_DB), e->key);
        rc = store__errno(mdb_dbi_open(txn, dbname, 0, &e->dbi));
        if (rc == 0)
            rc = store__errno(mdb_set_compare(txn, e->dbi, store__key_cmp));
        if (rc < 0)
            goto out;
        /* A batch encoded before a teardown and re-create must not land in the new database
         * (its slot table may differ), and LMDB may hand out the same dbi number again, so each
         * creation stamps "gen:<key>" with its transaction id and batches carry it. */
        MDB_val gk, gv;
        char gkey[STORE__VIEW_KEY_MAX + 16] = STORE__PREFIX_GEN;
        strcat(gkey, e->key);
        gk.mv_size = strlen(gkey);
        gk.mv_data = gkey;
        int grc = mdb_get(txn, meta, &gk, &gv);
        if (grc == 0 && gv.mv_size == 8) {
            e->gen = store__le64(gv.mv_data);
        } else if (grc != MDB_NOTFOUND) {
            /* Not "no stamp": the table would take batches encoded for another creation. */
            rc = grc != 0 ? store__errno(grc) : -EIO;
            goto out;
        }
        const catalog_view_t *cv = NULL;
        if (cat != NULL && catalog_find_view(cat, e->name, e->version, &cv) == 0 && cv != NULL &&
            cv->on_demand == NULL) {
            e->cview = cv;
            e->fast = calloc(e->n_slots + 1, sizeof *e->fast);
            if (e->fast == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            for (size_t f = 0; f < cv->n_features && f < e->n_slots; f++) {
                if (strcmp(cv->features[f].name, e->slot_names[f]) == 0)
                    e->fast[f] = cv->features[f].name;
            }
            if (history && cv->history) {
                memcpy(dbname, STORE__PREFIX_HISTORY, strlen(STORE__PREFIX_HISTORY));
                strcpy(dbname + strlen(STORE__PREFIX_HISTORY), e->key);
                int hrc = mdb_dbi_open(txn, dbname, 0, &e->hdbi);
                if (hrc == 0)
                    rc = store__errno(mdb_set_compare(txn, e->hdbi, store__key_cmp));
                else if (hrc != MDB_NOTFOUND)
                    rc = store__errno(hrc);
                if (hrc != 0)
                    e->hdbi = 0;
                if (rc < 0)
                    goto out;
            }
        }
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = store__errno(mrc);
        goto out;
    }
    t->mask = pow2_above(t->n) - 1;
    t->ix = calloc((size_t)t->mask + 1, sizeof *t->ix);
    rc = -ENOMEM;
    if (t->ix == NULL)
        goto out;
    for (size_t i = 0; i < t->n; i++) {
        uint32_t h = (uint32_t)view_hash(t->items[i].name, t->items[i].version) & t->mask;
        while (t->ix[h] != 0)
            h = (h + 1) & t->mask;
        t->ix[h] = (uint32_t)i + 1;
    }
    t->catalog = cat != NULL ? catalog_ref(cat) : NULL;
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store__views_unref(t);
    return rc;
}

void store__views_publish(store_t *s, store__views_t *t)
{
    pthread_mutex_lock(&s->views_mu);
    store__views_t *old = s->views;
    s->views = t;
    pthread_mutex_unlock(&s->views_mu);
    store__views_unref(old);
}

store__views_t *store__views_get(store_t *s)
{
    pthread_mutex_lock(&s->views_mu);
    store__views_t *t = store__views_ref(s->views);
    pthread_mutex_unlock(&s->views_mu);
    return t;
}
