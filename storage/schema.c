/* storage/schema.c - applying catalogs and tearing views down: databases, slot tables, plans. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * The store records the applied catalog as catalog_dump_yaml() text, and for every view version
 * a slot table (feature name -> slot) that only ever grows. Tearing a view version down drops its
 * database and slot table but cannot edit the recorded catalog (catalog/ has no API to remove a
 * view), so it leaves a "dropped:<view>@v<N>" marker instead: plans treat breaking changes to a
 * dropped view version as safe (there is no data left to break), and the next successful apply
 * records the new catalog and clears the markers. Catalog changes run on the writer with the map
 * lock held exclusively: they open and drop database handles and swap the view table, which
 * readers must not see half done. They are rare, so readers waiting on them is acceptable.
 */

static int view_key_of(char *buf, const char *prefix, const char *name, uint32_t version)
{
    size_t p = strlen(prefix);
    memcpy(buf, prefix, p);
    int n = store__view_key(buf + p, STORE__VIEW_KEY_MAX, name, version);
    return n < 0 ? n : (int)p + n;
}

/* Collects the "dropped:" markers as view keys ("name@vN"), NUL-separated in one buffer. */
static int read_dropped(MDB_txn *txn, MDB_dbi meta, store__buf_t *out)
{
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, meta, &cur));
    if (rc < 0)
        return rc;
    const size_t plen = strlen(STORE__PREFIX_DROPPED);
    MDB_val k = {plen, (void *)STORE__PREFIX_DROPPED}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0 && rc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, STORE__PREFIX_DROPPED, plen) != 0)
            break;
        rc = store__buf_append(out, (const char *)k.mv_data + plen, k.mv_size - plen);
        if (rc == 0)
            rc = store__buf_append(out, "", 1);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store__errno(mrc);
    return rc;
}

static bool is_dropped(const store__buf_t *dropped, const char *key)
{
    for (size_t at = 0; at < dropped->len;) {
        const char *k = (const char *)dropped->data + at;
        if (strcmp(k, key) == 0)
            return true;
        at += strlen(k) + 1;
    }
    return false;
}

/*
 * Does a plan item concern only dropped data? Objects read "<kind> <view>@v<N>[:<feature>]"
 * (catalog_plan()'s documented form); "<kind> <view>" without a version concerns every version
 * the applied catalog has, so all of them must be dropped.
 */
static bool concerns_dropped(const catalog_change_t *ch, const catalog_t *applied,
                             const store__buf_t *dropped)
{
    const char *sp = strchr(ch->object, ' ');
    if (sp == NULL || dropped->len == 0)
        return false;
    char ref[STORE__VIEW_KEY_MAX];
    size_t n = strcspn(sp + 1, ": ");
    if (n == 0 || n >= sizeof ref)
        return false;
    memcpy(ref, sp + 1, n);
    ref[n] = '\0';
    char *at = strstr(ref, "@v");
    if (at != NULL)
        return is_dropped(dropped, ref);
    size_t versions = 0;
    for (size_t i = 0; applied != NULL && i < catalog_view_count(applied); i++) {
        const catalog_view_t *v = catalog_view_at(applied, i);
        char key[STORE__VIEW_KEY_MAX];
        if (strcmp(v->name, ref) != 0 || store__view_key(key, sizeof key, v->name, v->version) < 0)
            continue;
        if (!is_dropped(dropped, key))
            return false;
        versions++;
    }
    return versions > 0;
}

static int plan_in_txn(store_t *s, MDB_txn *txn, const catalog_t *c, catalog_plan_t *plan)
{
    store__buf_t dropped = {0};
    int rc = read_dropped(txn, s->meta, &dropped);
    if (rc == 0)
        rc = catalog_plan(s->catalog, c, plan);
    for (size_t i = 0; rc == 0 && i < plan->count; i++) {
        catalog_change_t *ch = &plan->items[i];
        if (ch->breaking && concerns_dropped(ch, s->catalog, &dropped)) {
            ch->breaking = false;
            plan->n_breaking--;
            size_t len = strlen(ch->detail);
            snprintf(ch->detail + len, sizeof ch->detail - len, " (its data was torn down)");
        }
    }
    store__buf_free(&dropped);
    return rc;
}

int store_plan_catalog(store_t *s, const catalog_t *c, catalog_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    MDB_txn *txn = NULL;
    int rc = store__txn_begin(s, STORE__TXN_READ, &txn);
    if (rc == 0) {
        /* s->catalog only changes under the map lock held exclusively. */
        rc = plan_in_txn(s, txn, c, plan);
        store__txn_end(s, txn, STORE__TXN_ABORT);
    }
    if (rc < 0)
        catalog_plan_clear(plan);
    return rc;
}

/* Rebuilds the view table from what is committed, after a failed catalog change (an aborted
 * transaction closes the handles it opened or dropped). Caller holds the map lock exclusively. */
static void rebuild_views(store_t *s)
{
    MDB_txn *txn;
    store__views_t *t = NULL;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    int rc = store__views_build(txn, s->meta, s->catalog, s->history, ++s->views_gen, &t);
    /* Committing (not aborting) a read transaction keeps the handles it opened. */
    mdb_txn_commit(txn);
    if (rc == 0)
        store__views_publish(s, t);
}

static void set_catalog(store_t *s, catalog_t *c)
{
    pthread_mutex_lock(&s->views_mu);
    catalog_t *old = s->catalog;
    s->catalog = c;
    pthread_mutex_unlock(&s->views_mu);
    catalog_unref(old);
}

static int del_prefix(MDB_txn *txn, MDB_dbi meta, const char *prefix)
{
    MDB_cursor *cur;
    int rc = store__errno(mdb_cursor_open(txn, meta, &cur));
    if (rc < 0)
        return rc;
    const size_t plen = strlen(prefix);
    MDB_val k = {plen, (void *)prefix}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        mrc = mdb_cursor_del(cur, 0);
        if (mrc == 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND || mrc == 0 ? 0 : store__errno(mrc);
}

/* ------------------------------------------------------------------------------------------ */
/* Apply                                                                                       */

typedef struct apply_arg {
    catalog_t *c;
    catalog_plan_t plan;
    store__views_t *table;
    uint64_t position; /* the replication log's, recorded with the catalog; 0 = none */
} apply_arg_t;

/* Extends (or creates) one online view version's slot table. Returns: 1 when the database is
 * new, 0 when it existed, or a negative errno. */
static int extend_slots(store_t *s, MDB_txn *txn, const catalog_view_t *v, store__buf_t *tmp)
{
    char key[STORE__VIEW_KEY_MAX + 16];
    int rc = view_key_of(key, STORE__PREFIX_SLOTS, v->name, v->version);
    if (rc < 0)
        return rc;
    MDB_val old;
    rc = store__meta_get(txn, s->meta, key, &old);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    bool is_new = rc == -ENOENT;
    tmp->len = 0;
    uint32_t n = 0;
    if (!is_new) {
        if (old.mv_size < 4)
            return -EIO;
        n = store__le32(old.mv_data);
        rc = store__buf_append(tmp, old.mv_data, old.mv_size);
        if (rc < 0)
            return rc;
    } else {
        rc = store__buf_append(tmp, "\0\0\0\0", 4);
        if (rc < 0)
            return rc;
    }
    size_t before = tmp->len;
    for (size_t f = 0; f < v->n_features; f++) {
        const char *name = v->features[f].name;
        bool known = false;
        for (size_t at = 4; at < before && !known;) {
            const char *k = (const char *)tmp->data + at;
            known = strcmp(k, name) == 0;
            at += strlen(k) + 1;
        }
        if (known)
            continue;
        rc = store__buf_append(tmp, name, strlen(name) + 1);
        if (rc < 0)
            return rc;
        n++;
    }
    if (is_new || tmp->len != before) {
        store__put_le32(tmp->data, n);
        rc = store__meta_put(txn, s->meta, key, tmp->data, tmp->len);
        if (rc < 0)
            return rc;
    }
    char db[STORE__VIEW_KEY_MAX + 16];
    rc = view_key_of(db, STORE__PREFIX_DB, v->name, v->version);
    MDB_dbi dbi;
    if (rc >= 0)
        rc = store__errno(mdb_dbi_open(txn, db, MDB_CREATE, &dbi));
    if (rc >= 0)
        rc = store__errno(mdb_set_compare(txn, dbi, store__key_cmp));
    if (rc < 0)
        return rc;
    if (s->history && v->history) {
        /* Its history, beside it. Left as it is (no longer written) when the view stops
         * keeping history, until the view version is torn down. */
        rc = view_key_of(db, STORE__PREFIX_HISTORY, v->name, v->version);
        MDB_dbi hdbi;
        if (rc >= 0)
            rc = store__errno(mdb_dbi_open(txn, db, MDB_CREATE, &hdbi));
        if (rc >= 0)
            rc = store__errno(mdb_set_compare(txn, hdbi, store__key_cmp));
        if (rc < 0)
            return rc;
    }
    if (is_new) {
        /* A new generation: batches encoded against a previous incarnation are refused. */
        char gkey[STORE__VIEW_KEY_MAX + 16];
        uint8_t g[8];
        store__put_le64(g, (uint64_t)mdb_txn_id(txn));
        rc = view_key_of(gkey, STORE__PREFIX_GEN, v->name, v->version);
        if (rc >= 0)
            rc = store__meta_put(txn, s->meta, gkey, g, sizeof g);
        if (rc < 0)
            return rc;
    }
    return is_new;
}

static int apply_fn(store_t *s, MDB_txn *txn, void *p)
{
    apply_arg_t *a = p;
    catalog_plan_clear(&a->plan);
    store__views_unref(a->table);
    a->table = NULL;
    int rc;
    if (a->position > 0) {
        rc = store__position_check(s, txn, a->position);
        if (rc < 0)
            return rc;
        uint8_t b[8];
        store__put_le64(b, a->position);
        rc = store__meta_put(txn, s->meta, STORE__KEY_POSITION, b, sizeof b);
        if (rc < 0)
            return rc;
    }
    rc = plan_in_txn(s, txn, a->c, &a->plan);
    if (rc < 0)
        return rc;
    if (a->plan.n_breaking > 0)
        return -EPERM;
    size_t online = 0;
    for (size_t i = 0; i < catalog_view_count(a->c); i++)
        online += catalog_view_at(a->c, i)->online;
    if (online > STORE_MAX_VIEWS)
        return -EMFILE;
    store__buf_t tmp = {0};
    for (size_t i = 0; i < catalog_view_count(a->c) && rc >= 0; i++) {
        const catalog_view_t *v = catalog_view_at(a->c, i);
        if (v->online)
            rc = extend_slots(s, txn, v, &tmp);
    }
    store__buf_free(&tmp);
    if (rc < 0)
        return rc;
    rc = del_prefix(txn, s->meta, STORE__PREFIX_DROPPED);
    if (rc < 0)
        return rc;
    char *yaml = NULL;
    size_t len = 0;
    rc = catalog_dump_yaml(a->c, &yaml, &len);
    if (rc == 0)
        rc = store__meta_put(txn, s->meta, STORE__KEY_CATALOG, yaml, len);
    free(yaml);
    if (rc < 0)
        return rc;
    return store__views_build(txn, s->meta, a->c, s->history, ++s->views_gen, &a->table);
}

static void apply_after(store_t *s, int rc, void *p)
{
    apply_arg_t *a = p;
    if (rc == 0) {
        set_catalog(s, catalog_ref(a->c));
        store__views_publish(s, a->table);
        a->table = NULL;
    }
    /* On failure the old table stays valid: an aborted transaction only closes handles it
     * opened itself, and the old table has none of those. */
}

int store_apply_catalog(store_t *s, const catalog_t *c, catalog_plan_t *plan)
{
    return store_apply_catalog_at(s, c, plan, 0);
}

int store_apply_catalog_at(store_t *s, const catalog_t *c, catalog_plan_t *plan,
                           uint64_t log_position)
{
    if (plan != NULL)
        memset(plan, 0, sizeof *plan);
    if (c == NULL)
        return -EINVAL;
    /* The store keeps a reference to the caller's catalog itself (reference counts are the only
     * thing that changes in a catalog), so readers using that same catalog hit the slot fast
     * path. */
    apply_arg_t a = {.c = (catalog_t *)c, .position = log_position};
    int rc = store__run(s, apply_fn, &a, true, apply_after);
    store__views_unref(a.table);
    if (plan != NULL)
        *plan = a.plan;
    else
        catalog_plan_clear(&a.plan);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown                                                                                    */

/* Drops e's history database, whether this store writes it or not (a node started without
 * --history may still hold one from before). */
static int drop_history(MDB_txn *txn, const store__view_t *e)
{
    char db[STORE__VIEW_KEY_MAX + 16];
    int rc = view_key_of(db, STORE__PREFIX_HISTORY, e->name, e->version);
    if (rc < 0)
        return rc;
    MDB_dbi hdbi = e->hdbi;
    if (hdbi == 0) {
        int mrc = mdb_dbi_open(txn, db, 0, &hdbi);
        if (mrc == MDB_NOTFOUND)
            return 0;
        if (mrc != 0)
            return store__errno(mrc);
    }
    return store__errno(mdb_drop(txn, hdbi, 1));
}

typedef struct teardown_arg {
    const char *name;
    uint32_t version;
    store__views_t *table;
} teardown_arg_t;

static int teardown_fn(store_t *s, MDB_txn *txn, void *p)
{
    teardown_arg_t *a = p;
    store__views_unref(a->table);
    a->table = NULL;
    const store__views_t *t = s->views;
    size_t matched = 0;
    int rc = 0;
    for (size_t i = 0; t != NULL && i < t->n && rc == 0; i++) {
        const store__view_t *e = &t->items[i];
        if (a->name != NULL &&
            (strcmp(e->name, a->name) != 0 || (a->version != 0 && e->version != a->version)))
            continue;
        matched++;
        char key[STORE__VIEW_KEY_MAX + 16];
        rc = store__errno(mdb_drop(txn, e->dbi, 1));
        if (rc == 0)
            rc = drop_history(txn, e);
        if (rc == 0 && view_key_of(key, STORE__PREFIX_SLOTS, e->name, e->version) > 0)
            rc = store__meta_del(txn, s->meta, key);
        if (rc == 0 && view_key_of(key, STORE__PREFIX_GEN, e->name, e->version) > 0)
            rc = store__meta_del(txn, s->meta, key);
        if (rc == 0 && a->name != NULL &&
            view_key_of(key, STORE__PREFIX_DROPPED, e->name, e->version) > 0)
            rc = store__meta_put(txn, s->meta, key, "", 0);
    }
    if (rc < 0)
        return rc;
    if (a->name == NULL) {
        /* Everything: the store is as new, except its format version. */
        rc = store__meta_del(txn, s->meta, STORE__KEY_CATALOG);
        if (rc == 0)
            rc = store__meta_del(txn, s->meta, STORE__KEY_POSITION);
        /* The change feed goes with the data; a single node's counter goes on from where it
         * was, so that a follower's recorded position still means "before what comes next". */
        if (rc == 0 && s->changes != 0)
            rc = store__errno(mdb_drop(txn, s->changes, 0));
        if (rc == 0)
            rc = del_prefix(txn, s->meta, STORE__PREFIX_DROPPED);
        if (rc < 0)
            return rc;
    } else if (matched == 0) {
        return -ENOENT;
    }
    return store__views_build(txn, s->meta, a->name != NULL ? s->catalog : NULL, s->history,
                              ++s->views_gen, &a->table);
}

static void teardown_after(store_t *s, int rc, void *p)
{
    teardown_arg_t *a = p;
    if (rc == 0) {
        if (a->name == NULL)
            set_catalog(s, NULL);
        store__views_publish(s, a->table);
        a->table = NULL;
    } else {
        /* mdb_drop() closes handles at once, even in a transaction that is then aborted. */
        rebuild_views(s);
    }
}

int store_teardown(store_t *s, const char *view_name, uint32_t version)
{
    teardown_arg_t a = {.name = view_name, .version = version};
    int rc = store__run(s, teardown_fn, &a, true, teardown_after);
    store__views_unref(a.table);
    return rc;
}
