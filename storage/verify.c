/* storage/verify.c - integrity: store_verify() walks every record; the upgrade that gives an
 * older store's records their checksums. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/store_int.h"

/* What a named database of the environment is, by its name. */
typedef enum { DB_OTHER, DB_ROWS, DB_HISTORY, DB_CHANGES, DB_META } db_kind_t;

static db_kind_t kind_of(const char *name)
{
    if (strncmp(name, STORE__PREFIX_DB, strlen(STORE__PREFIX_DB)) == 0)
        return DB_ROWS;
    if (strncmp(name, STORE__PREFIX_HISTORY, strlen(STORE__PREFIX_HISTORY)) == 0)
        return DB_HISTORY;
    if (strcmp(name, STORE__CHANGES_DB) == 0)
        return DB_CHANGES;
    if (strcmp(name, STORE__META_DB) == 0)
        return DB_META;
    return DB_OTHER;
}

/* Calls fn with each named database's name (NUL-terminated) until fn returns nonzero.
 * Returns: 0, fn's result, or a negative errno. */
static int each_db(MDB_txn *txn, int (*fn)(void *arg, MDB_txn *txn, const char *name), void *arg)
{
    MDB_dbi main;
    int rc = store__errno(mdb_dbi_open(txn, NULL, 0, &main));
    if (rc < 0)
        return rc;
    MDB_cursor *cur;
    rc = store__errno(mdb_cursor_open(txn, main, &cur));
    if (rc < 0)
        return rc;
    /* Names first: opening a database moves nothing under this cursor, but a rewrite (the
     * upgrade) may, so the walk works from a copy of the list. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0 && rc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size == 0 || k.mv_size > 511 || memchr(k.mv_data, '\0', k.mv_size) != NULL)
            continue; /* not a database name of ours */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **grown = realloc(names, nc * sizeof *names);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            names = grown;
            cap = nc;
        }
        names[n] = strndup(k.mv_data, k.mv_size);
        if (names[n] == NULL)
            rc = -ENOMEM;
        else
            n++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = store__errno(mrc);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = fn(arg, txn, names[i]);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* store_verify()                                                                              */

typedef struct verify_ctx {
    store_verify_fn fn;
    store_verify_db_fn db_fn;
    void *arg;
} verify_ctx_t;

/* Whether a record of a database of kind k is intact. */
static bool intact(db_kind_t kind, const MDB_val *k, const MDB_val *d)
{
    store__rec_t r;
    store__change_t ch;
    switch (kind) {
    case DB_ROWS:
        return store__rec_check(k->mv_data, k->mv_size, d->mv_data, d->mv_size, &r) == 0;
    case DB_HISTORY:
        return k->mv_size > STORE__HKEY_TS &&
               store__rec_check(k->mv_data, k->mv_size, d->mv_data, d->mv_size, &r) == 0;
    case DB_CHANGES:
        return k->mv_size == STORE__CHANGE_KEY &&
               store__change_parse(d->mv_data, d->mv_size, &ch) == 0;
    default:
        return true;
    }
}

static int verify_db(void *arg, MDB_txn *txn, const char *name)
{
    verify_ctx_t *c = arg;
    db_kind_t kind = kind_of(name);
    if (kind == DB_OTHER)
        return 0;
    char label[STORE__VIEW_KEY_MAX + 16];
    if (kind == DB_ROWS)
        snprintf(label, sizeof label, "%s", name + strlen(STORE__PREFIX_DB));
    else if (kind == DB_HISTORY)
        snprintf(label, sizeof label, "history %s", name + strlen(STORE__PREFIX_HISTORY));
    else
        snprintf(label, sizeof label, "%s", name);
    store_verify_db_t db = {.name = label};
    char view[STORE__VIEW_KEY_MAX];
    if ((kind == DB_ROWS || kind == DB_HISTORY) &&
        store__parse_view_key(strchr(name, ':') + 1, strlen(strchr(name, ':') + 1), view,
                              &db.version) == 0)
        db.view = view;
    MDB_dbi dbi;
    MDB_cursor *cur = NULL;
    int mrc = mdb_dbi_open(txn, name, 0, &dbi);
    if (mrc == 0)
        mrc = mdb_cursor_open(txn, dbi, &cur);
    MDB_val k, d;
    if (mrc == 0)
        mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        db.records++;
        if (!intact(kind, &k, &d)) {
            db.damaged++;
            size_t klen = k.mv_size;
            int64_t ts = 0;
            if (kind == DB_HISTORY && klen > STORE__HKEY_TS) {
                klen -= STORE__HKEY_TS;
                ts = store__hkey_ts((const uint8_t *)k.mv_data + klen);
            }
            if (c->fn != NULL)
                c->fn(c->arg, &db, k.mv_data, klen, ts);
        }
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (mrc != MDB_NOTFOUND) {
        /* LMDB refused a page (MDB_CORRUPTED, MDB_PAGE_NOTFOUND): the rest of this database
         * cannot be walked, the others may. */
        db.error = mdb_strerror(mrc);
        if (c->fn != NULL)
            c->fn(c->arg, &db, NULL, 0, 0);
    }
    if (c->db_fn != NULL)
        c->db_fn(c->arg, &db);
    return 0;
}

int store_verify(store_t *s, store_verify_fn fn, store_verify_db_fn db_fn, void *arg)
{
    MDB_txn *txn;
    int rc = store__txn_begin(s, STORE__TXN_READ, &txn);
    if (rc < 0)
        return rc;
    verify_ctx_t c = {fn, db_fn, arg};
    rc = each_db(txn, verify_db, &c);
    store__txn_end(s, txn, STORE__TXN_ABORT);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The upgrade to checksummed records                                                          */

typedef struct upgrade_ctx {
    store__buf_t b;
    uint64_t records;
    bool map_full; /* the records outgrew the map: grow it and start again */
} upgrade_ctx_t;

/* Format 1 was format 2 without the trailer: the same bytes, then the checksum. */
static int upgrade_db(void *arg, MDB_txn *txn, const char *name)
{
    upgrade_ctx_t *u = arg;
    db_kind_t kind = kind_of(name);
    if (kind != DB_ROWS && kind != DB_HISTORY)
        return 0;
    MDB_dbi dbi;
    MDB_cursor *cur;
    int rc = store__errno(mdb_dbi_open(txn, name, 0, &dbi));
    if (rc == 0)
        rc = store__errno(mdb_cursor_open(txn, dbi, &cur));
    if (rc < 0)
        return rc;
    uint8_t key[STORE_MAX_KEY];
    MDB_val k, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    while (mrc == 0) {
        const uint8_t *old = d.mv_data;
        if (d.mv_size < STORE__REC_HEADER || old[0] != 1 || k.mv_size > sizeof key) {
            /* Already sealed (a retried upgrade), or not a record: left for verify to judge. */
            mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
            continue;
        }
        u->b.len = 0;
        rc = store__buf_append(&u->b, old, d.mv_size);
        if (rc == 0)
            rc = store__buf_reserve(&u->b, STORE__REC_TRAILER);
        if (rc < 0)
            break;
        u->b.len += STORE__REC_TRAILER;
        u->b.data[0] = STORE__REC_FORMAT;
        memcpy(key, k.mv_data, k.mv_size);
        size_t klen = k.mv_size;
        store__rec_seal(key, klen, u->b.data, u->b.len);
        MDB_val nk = {klen, key}, nd = {u->b.len, u->b.data};
        /* A longer value is a delete and an insert inside LMDB: the cursor is placed again. */
        mrc = mdb_cursor_put(cur, &nk, &nd, MDB_CURRENT);
        if (mrc != 0)
            break;
        u->records++;
        nk = (MDB_val){klen, key};
        mrc = mdb_cursor_get(cur, &nk, &d, MDB_SET_KEY);
        if (mrc == 0)
            mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        u->map_full = mrc == MDB_MAP_FULL;
        rc = store__errno(mrc);
    }
    return rc;
}

/* mdb_reader_list()'s lines ("    pid     thread     txnid" after a header): the first pid not
 * ours into *(long *)arg. */
static int other_reader(const char *line, void *arg)
{
    long *pid = arg, p;
    if (*pid == 0 && sscanf(line, " %ld", &p) == 1 && p != (long)getpid())
        *pid = p;
    return 0;
}

int store__upgrade_records(store_t *s)
{
    /* Another process with the store open is an fstore of the older format (a newer one would
     * have upgraded it): it cannot read the records this rewrites, nor would it seal its own. */
    int dead = 0;
    long other = 0;
    mdb_reader_check(s->env, &dead);
    mdb_reader_list(s->env, other_reader, &other);
    if (other != 0) {
        base_log(BASE_LOG_ERROR, "store_upgrade_refused", "{s:s, s:I, s:s}", "data_dir", s->dir,
                 "pid", (long long)other, "note",
                 "this store's records have no checksums yet and another process (an older "
                 "fstore) has it open: stop that process, then start this one again to upgrade "
                 "the store");
        return -EBUSY;
    }
    base_log(BASE_LOG_INFO, "store_upgrading", "{s:s, s:i}", "data_dir", s->dir, "format",
             STORE_FORMAT_VERSION);
    upgrade_ctx_t u = {0};
    int rc;
    for (;;) {
        MDB_txn *txn;
        u.records = 0;
        u.map_full = false;
        rc = store__txn_begin(s, STORE__TXN_WRITE, &txn);
        if (rc < 0)
            break;
        rc = each_db(txn, upgrade_db, &u);
        if (rc == 0) {
            uint8_t b[4];
            store__put_le32(b, STORE_FORMAT_VERSION);
            rc = store__meta_put(txn, s->meta, STORE__KEY_FORMAT, b, sizeof b);
        }
        if (rc == 0) {
            rc = store__errno(mdb_txn_commit(txn));
            store__txn_end(s, NULL, STORE__TXN_ABORT);
            if (rc == 0)
                rc = store__errno(mdb_env_sync(s->env, 1)); /* under any --sync: once */
        } else {
            store__txn_end(s, txn, STORE__TXN_ABORT);
        }
        if (!u.map_full)
            break;
        /* The records grew past the map: a bigger one, and the whole upgrade again. */
        rc = store__map_grow(s, true);
        if (rc < 0)
            break;
    }
    store__buf_free(&u.b);
    if (rc < 0)
        base_log(BASE_LOG_ERROR, "store_upgrade_failed", "{s:s, s:s, s:s}", "data_dir", s->dir,
                 "error", strerror(-rc), "note",
                 "giving this store's records their checksums failed; nothing was changed (one "
                 "transaction): free what the error names and start again");
    else
        base_log(BASE_LOG_INFO, "store_upgraded", "{s:s, s:i, s:I}", "data_dir", s->dir, "format",
                 STORE_FORMAT_VERSION, "records_sealed", (long long)u.records);
    return rc;
}
