/* storage/store_int.h - shared inside storage/: the store, view table, records, writer jobs. */
#ifndef STORAGE_STORE_INT_H
#define STORAGE_STORE_INT_H

#include <endian.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "storage/store.h"

/* LMDB names. Meta keys are short ASCII strings; view keys are "<name>@v<version>". */
#define STORE__META_DB "meta"
#define STORE__KEY_FORMAT "format"
#define STORE__KEY_CATALOG "catalog"
#define STORE__KEY_POSITION "position"
#define STORE__KEY_HISTORY "history"       /* present: the store keeps history (store_history_t) */
#define STORE__KEY_CHANGE_SEQ "change_seq" /* the change feed's last local position */
/* Present once rows were written here without a log position (a single node's writes, an
 * ingest): such a store is not a replica's (open_replicated() refuses it). */
#define STORE__KEY_LOCAL_ROWS "local_rows"
#define STORE__CHANGES_DB "changes" /* the change feed (store_changes()) */

/* A change feed entry: key = 8 bytes big-endian position, 4 bytes big-endian index; value =
 * format, flags (STORE__REC_TOMBSTONE), event time (le64), write time (le64), the view key's
 * length (1 byte) and the view key ("name@vN"), then the entity key. */
#define STORE__CHANGE_FORMAT 1
#define STORE__CHANGE_KEY 12
#define STORE__CHANGE_FLAGS 1
#define STORE__CHANGE_EVENT_TS 2
#define STORE__CHANGE_WRITE_TS 10
#define STORE__CHANGE_VIEW_LEN 18
#define STORE__CHANGE_HEAD 19
#define STORE__PREFIX_SLOTS "slots:" /* + view key: the slot table */
#define STORE__PREFIX_DROPPED                                                                      \
    "dropped:"                     /* + view key: torn down, still in the recorded catalog         \
                                    */
#define STORE__PREFIX_DB "fv:"     /* + view key: the view version's database */
#define STORE__PREFIX_HISTORY "h:" /* + view key: its history (store_options_t.history) */
#define STORE__PREFIX_GEN "gen:"   /* + view key: txn id that created the database */
#define STORE__VIEW_KEY_MAX (CATALOG_MAX_NAME + 16)

/* ------------------------------------------------------------------------------------------ */
/* Growable byte buffer                                                                        */

typedef struct store__buf {
    uint8_t *data;
    size_t len, cap;
} store__buf_t;

/* Makes room for n more bytes. Returns: 0, -ENOMEM. */
int store__buf_reserve(store__buf_t *b, size_t n);
int store__buf_append(store__buf_t *b, const void *p, size_t n);
void store__buf_free(store__buf_t *b);

/* Formats "<name>@v<version>". Returns: its length, or -ENAMETOOLONG. */
int store__view_key(char *buf, size_t cap, const char *name, uint32_t version);
/* Parses a view key of len bytes into name (NUL-terminated, cap >= STORE__VIEW_KEY_MAX) and
 * *version. Returns: 0, -EIO (not a view key). */
int store__parse_view_key(const char *key, size_t len, char *name, uint32_t *version);

/* A change feed entry (store_changes()), parsed: pointers into the value. */
typedef struct store__change {
    bool deleted;
    int64_t event_ts_us, write_ts_us;
    char view[STORE__VIEW_KEY_MAX]; /* the view's name */
    uint32_t version;
    const uint8_t *key; /* the entity key */
    size_t key_len;
} store__change_t;
/* Returns: 0, -EIO (malformed). */
int store__change_parse(const uint8_t *p, size_t len, store__change_t *out);

/* ------------------------------------------------------------------------------------------ */
/* The view table: (name, version) -> database and slot table. Immutable once published.       */

typedef struct store__view {
    char *name; /* view name */
    uint32_t version;
    char key[STORE__VIEW_KEY_MAX]; /* "<name>@v<version>" */
    MDB_dbi dbi;
    MDB_dbi hdbi;      /* its history database, or 0 when this store keeps none for it */
    uint64_t gen;      /* changes whenever the database is created again after a teardown */
    uint32_t n_slots;  /* features ever applied to this version */
    char **slot_names; /* [n_slots] */
    const char **fast; /* [n_slots]: the applied catalog's own name pointers, or NULL */
    const catalog_view_t *cview; /* the applied catalog's own view (kept alive by the table's
                                    catalog reference), or NULL */
    uint32_t *name_ix;           /* open addressing over slot names: slot + 1, 0 = empty */
    uint32_t name_mask;          /* capacity - 1 */
} store__view_t;

typedef struct store__views {
    atomic_int refs;
    uint64_t gen;       /* identifies this table (reader caches check it) */
    catalog_t *catalog; /* keeps the `fast` pointers alive; may be NULL */
    size_t n;
    store__view_t *items;
    uint32_t *ix; /* open addressing over (name, version): index + 1 */
    uint32_t mask;
} store__views_t;

const store__view_t *store__views_find(const store__views_t *t, const char *name, uint32_t version);
/* The slot of feature `index` of catalog view v, or UINT32_MAX when it was never applied. */
uint32_t store__slot_of(const store__view_t *e, const catalog_view_t *v, uint32_t index);
uint32_t store__slot_by_name(const store__view_t *e, const char *name);
/* Builds a table from the meta database's slot tables, opening every view database in txn, and
 * with history the history database of every view cat says keeps one (when it exists).
 * Returns: 0; -EUCLEAN (a slot table or view key that does not parse: logged store_damaged);
 * -EIO (also a generation stamp that cannot be read, or not of 8 bytes); -ENOMEM; another
 * negative errno from LMDB. Ownership: *out has one reference. */
int store__views_build(MDB_txn *txn, MDB_dbi meta, catalog_t *cat, bool history, uint64_t gen,
                       store__views_t **out);
store__views_t *store__views_ref(store__views_t *t);
void store__views_unref(store__views_t *t);

/* ------------------------------------------------------------------------------------------ */
/* Encoded rows: what the caller's thread hands the writer after validation                    */

/*
 * A row's values live in the arena at vals_off as n_vals entries of a store__val_header_t and its
 * len bytes, in increasing slot order; len 0 is an explicit null.
 */
typedef struct store__row {
    size_t key_off;
    size_t vals_off;
    int64_t event_ts_us;
    uint32_t key_len;
    uint32_t n_vals;
    uint32_t view; /* index into store__enc_t.views */
    uint32_t seq;  /* position in the caller's input, keeps sorts stable */
    uint8_t op;
} store__row_t;

typedef struct store__enc_view {
    char name[CATALOG_MAX_NAME + 1];
    uint32_t version;
    uint64_t gen; /* the database's generation when the rows were encoded */
} store__enc_view_t;

typedef struct store__enc {
    store__enc_view_t *views;
    size_t n_views, cap_views;
    store__row_t *rows;
    size_t n_rows, cap_rows;
    store__buf_t arena;
    uint32_t *order; /* bulk parts: rows sorted by (view, key, seq); NULL = input order */
} store__enc_t;

/*
 * One store_bulk_add() call's rows, ready for the writer: built in the caller's thread, then
 * streamed into the bulk load's open transaction. The rows are sorted by (view, key, input
 * order) and cut into groups of one (view, key) each; every group's rows are folded (last write
 * wins, deletes, stale rows) into the record they make for a key the database does not hold,
 * so the writer only copies that record in (MDB_APPEND). For a key the database may hold the
 * writer replays the group's rows over the stored record instead, exactly as store_apply().
 */
typedef struct store__group {
    uint32_t first, n;       /* rows enc.order[first .. first + n) */
    uint32_t written, stale; /* the fold's counts, as store_bulk_commit() reports them */
    uint32_t view;           /* index into store__part_t.views */
    uint32_t key_len;
    size_t key_off;   /* the entity key in store__part_t.recs */
    size_t rec_off;   /* the folded record in store__part_t.recs */
    uint32_t rec_len; /* 0: the group ends with a delete, nothing to store */
    bool history;     /* some of its rows are STORE_OP_HISTORY (not in the fold): the writer
                         takes the group row by row */
} store__group_t;

typedef struct store__part {
    struct store__part *next;
    store__enc_t enc; /* enc.order: rows sorted by (view, key, seq). Needed only by groups that
                         take the row-by-row path: when none did, the writer hands enc back
                         for the next part (store__stream_take_spare()) and zeroes it here. */
    store__enc_view_t *views; /* taken over from enc */
    size_t n_views;
    store__group_t *groups;
    size_t n_groups;
    store__buf_t recs; /* each group's key and folded record; the writer fills in write times */
} store__part_t;

/* Validates and encodes batches, appending to enc; on failure enc is left as it was. checked:
 * the caller vouches for the catalog rules (store_bulk_add_checked()); types, keys, views and
 * sizes are checked either way. skew_us: event times past now + this are refused (-1: none).
 * Returns: 0, -EINVAL (res says where), -ENOENT (a view has no database), -ENOMEM. */
int store__encode(store_t *s, int64_t skew_us, const store_batch_t *batches, size_t n, bool checked,
                  store__enc_t *enc, store_apply_result_t *res);
/* The same for batches already in wire form (store_apply_wire_async()): only their form is
 * checked. Returns: as store__encode(). */
int store__encode_wire(store_t *s, const store_wire_batch_t *batches, size_t n, store__enc_t *enc,
                       store_apply_result_t *res);
void store__enc_free(store__enc_t *enc);

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                     */

#define STORE__REC_FORMAT 2 /* 2: the checksum trailer (1, before it, is upgraded at open) */

/*
 * A record's header as stored, every field little-endian (store__le32/64 at the offsets below),
 * followed by n_slots u32 end offsets, the value bytes and the 8-byte checksum (record.c has the
 * whole layout).
 */
typedef struct store__rec_header {
    uint8_t format;        /* STORE__REC_FORMAT */
    uint8_t flags;         /* STORE__REC_TOMBSTONE or 0 */
    uint8_t reserved[2];   /* zero */
    uint32_t n_slots;      /* slots in the offset table */
    int64_t event_ts_us;   /* the row's event time: last write wins by it */
    int64_t created_ts_us; /* when the writer stored it */
} store__rec_header_t;

#define STORE__REC_FLAGS offsetof(store__rec_header_t, flags)
#define STORE__REC_N_SLOTS offsetof(store__rec_header_t, n_slots)
#define STORE__REC_EVENT_TS offsetof(store__rec_header_t, event_ts_us)
#define STORE__REC_CREATED_TS offsetof(store__rec_header_t, created_ts_us)
#define STORE__REC_HEADER sizeof(store__rec_header_t)
_Static_assert(sizeof(store__rec_header_t) == 24, "the record header is 24 bytes on disk");

/* A deleted row: no slots, and the event time of the delete, so that last write wins across
 * deletes too (an upsert must be newer than the tombstone to bring the row back). gc drops
 * tombstones past the store's tombstone retention. */
#define STORE__REC_TOMBSTONE 1u

/* One encoded value in a store__enc_t arena (store__row_t.vals_off): this header, then len bytes
 * of feast.types.Value wire form (len 0: an explicit null). */
typedef struct store__val_header {
    uint32_t slot;
    uint32_t len;
} store__val_header_t;

#define STORE__VAL_SLOT offsetof(store__val_header_t, slot)
#define STORE__VAL_LEN offsetof(store__val_header_t, len)
#define STORE__VAL_BYTES sizeof(store__val_header_t)

typedef struct store__rec {
    int64_t event_ts_us;
    int64_t created_ts_us;
    bool tombstone;
    uint32_t n_slots;
    const uint8_t *ends; /* n_slots little-endian u32 end offsets into data */
    const uint8_t *data;
    size_t data_len;
} store__rec_t;

/* The checksum that ends every record: 8 bytes, little-endian. */
#define STORE__REC_TRAILER 8u
/* A tombstone's length: a header and the checksum. */
#define STORE__REC_TOMBSTONE_LEN (STORE__REC_HEADER + STORE__REC_TRAILER)

/* Parses and bounds-checks a record header (not its checksum: store__rec_check() does that, for
 * records read from the database). Returns: 0, -EIO for a malformed record. */
int store__rec_parse(const uint8_t *p, size_t len, store__rec_t *out);

/*
 * The checksum of a record stored under key: XXH3 (64 bits) over the key, then, seeded with
 * that, over the record's bytes but its last 8. The record's last 8 bytes hold it
 * (store__rec_seal()), so a damaged byte anywhere in the record, or a record found under another
 * key than its own, is caught by store__rec_check(). Every builder below leaves the 8 bytes for it;
 * the writer seals a record once it is final (write time filled in), just before it stores it.
 */
uint64_t store__rec_sum(const uint8_t *key, size_t key_len, const uint8_t *rec, size_t len);
void store__rec_seal(const uint8_t *key, size_t key_len, uint8_t *rec, size_t len);
/* Parses a record read from the database under key, checking its checksum.
 * Returns: 0, -EBADMSG (malformed, or its checksum does not match: a damaged record). */
int store__rec_check(const uint8_t *key, size_t key_len, const uint8_t *rec, size_t len,
                     store__rec_t *out);
/* A damaged record met by a reader or the writer: counted (store_stat()'s damaged) and logged,
 * at most one line a second per store with the count since the last one. */
void store__rec_damaged(store_t *s, const char *view, uint32_t version, bool history,
                        const uint8_t *key, size_t key_len);
/* Gives every record of an older store (format 1 records, store format < 3) its checksum and
 * records STORE_FORMAT_VERSION, in one write transaction (retried on a grown map). Called by
 * store_open() before the writer starts (verify.c). Returns: 0, a store error. */
int store__upgrade_records(store_t *s);
/*
 * Writes into out the record that results from merging row's values over old (NULL = no record):
 * slots the row lists take the row's bytes, the others keep old's.
 * Returns: 0, -EIO (old malformed), -E2BIG, -ENOMEM.
 */
int store__rec_merge(const store__rec_t *old, const store__row_t *row, const uint8_t *arena,
                     int64_t created_ts_us, store__buf_t *out);

/* store__rec_merge(NULL, ...), appended to out (after out->len) rather than replacing it.
 * Returns: 0, -E2BIG, -ENOMEM. */
int store__rec_build(const store__row_t *row, const uint8_t *arena, int64_t created_ts_us,
                     store__buf_t *out);
/* A tombstone record, appended to out. Returns: 0, -ENOMEM. */
int store__rec_tombstone(int64_t event_ts_us, int64_t created_ts_us, store__buf_t *out);

/* One view version's apply counters (store_view_stats()); kept until store_close(), across
 * catalog changes. */
typedef struct store__vstat {
    struct store__vstat *next;
    char name[CATALOG_MAX_NAME + 1];
    uint32_t version;
    _Atomic uint64_t rows;
    _Atomic int64_t newest_event_us;
} store__vstat_t;

/* The counters of (name, version), made on first use. Returns: NULL only out of memory. */
store__vstat_t *store__vstat(store_t *s, const char *name, uint32_t version);

/* ------------------------------------------------------------------------------------------ */
/* The store and its writer                                                                    */

typedef struct store__job store__job_t;
typedef int (*store__job_fn)(store_t *s, MDB_txn *txn, void *arg);

/* A log line that a client's traffic could repeat (a damaged record read in a loop): at most one
 * a second, the rest counted. */
typedef struct store__lograte {
    pthread_mutex_t mu;
    int64_t logged_us; /* under mu */
    uint64_t unlogged; /* under mu */
} store__lograte_t;

/* Returns: true when a line is due now, with *unlogged the lines held back since the last one;
 * false (this one counted as held back) otherwise. Thread-safe. */
bool store__log_due(store__lograte_t *l, uint64_t *unlogged);

struct store {
    MDB_env *env;
    MDB_dbi meta;
    bool read_only;
    store_sync_t sync;
    int64_t tombstone_retention_us;
    int64_t max_future_skew_us; /* < 0: no bound */
    bool log_contiguous;
    bool history;    /* keeps history (store_options_t.history, resolved at open) */
    MDB_dbi changes; /* the change feed (with history), or 0 */
    bool local_rows; /* writer only: STORE__KEY_LOCAL_ROWS is known to be set */
    bool marker;     /* STORE_SYNC_LOG: STORE_OPEN_MARKER was written at open */
    char *dir;

    /*
     * The map lock. Everything that holds pointers into the map or uses a view-table entry
     * (readers between store_read_begin and store_read_end, the writer inside a transaction,
     * snapshots) holds it shared; only a map resize and a view-table swap take it exclusively.
     * Writer-preferring, so a resize is not starved by a steady stream of reads.
     */
    pthread_rwlock_t map_lock;
    store__views_t *views; /* replaced under map_lock (exclusive) and views_mu */
    pthread_mutex_t views_mu;
    uint64_t views_gen; /* writer only */

    catalog_t *catalog; /* applied catalog; under views_mu */

    pthread_t writer;
    bool writer_started;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    store__job_t *q_head, *q_tail;
    bool closing;
    int64_t last_created_us; /* writer only: write times never go backwards */

    atomic_uint_fast64_t commits, batches;
    /* Damaged records met (store__rec_damaged()) and reads LMDB failed (store__read_failed()),
     * each with its log's rate limit. */
    atomic_uint_fast64_t damaged, read_errors;
    store__lograte_t damaged_log, read_error_log;
    /* The writer's failing episodes, each logged once (writer thread only): a disk full, or
     * another write error. */
    bool disk_full, write_failing;
    /* Per view version: rows applied and the newest event time (store_view_stats()). */
    pthread_mutex_t vstats_mu;
    struct store__vstat *vstats;
};

/* Translates an LMDB return code (or a positive errno from LMDB) to a negative errno. */
int store__errno(int rc);

/*
 * Fault points (storage/fault.c, test builds only): where a test can make the next call fail as
 * LMDB or the kernel would, through the same path a real failure takes.
 */
typedef enum {
    STORE__FAULT_READ_BEGIN,  /* a reader's snapshot (store__txn_begin(), STORE__TXN_RENEW) */
    STORE__FAULT_READ,        /* a row lookup (store_read_row()) */
    STORE__FAULT_WRITE_BEGIN, /* the writer's transaction (store__txn_begin(), write modes) */
    STORE__FAULT_PUT,         /* a row written by an apply */
    STORE__FAULT_COMMIT,      /* every writer commit (store__commit()) */
    STORE__FAULT_SYNC,        /* every writer fsync (store__sync()) */
    STORE__FAULT_MAP_GROW,    /* a map growth (store__map_grow(), growing) */
    STORE__FAULT_N
} store__fault_t;

/* Returns: 0 (go on), or the code (an MDB_ code or a positive errno, as LMDB returns them) the
 * call at point must fail with instead, as FSTORE_FAULTS_FILE says. Thread-safe. */
#ifdef FSTORE_FAULT_INJECTION
int store__fault(store__fault_t point);
#else
static inline int store__fault(store__fault_t point)
{
    (void)point;
    return 0;
}
#endif

/* A read LMDB failed (rc, a negative errno; a damaged record is store__rec_damaged()): counted
 * and logged (rate-limited) with what was read. view NULL: the read's snapshot. */
void store__read_failed(store_t *s, const char *view, uint32_t version, int rc);

/* mdb_txn_commit(), or the injected commit fault (txn aborted then). Returns: LMDB's code. */
int store__commit(MDB_txn *txn);
/* mdb_env_sync(force), or the injected sync fault. Returns: 0 or a negative errno. */
int store__sync(store_t *s);

/* Runs fn inside its own write transaction on the writer thread, waiting for it (and for the
 * fsync under sync=full). exclusive: hold the map lock exclusively for the whole transaction
 * (catalog changes). after: runs on the writer after each attempt's commit or abort, still under
 * the map lock and before the sync-full fsync, with fn's result: -ENOSPC before a replay when
 * the map was full, so it may run more than once (teardown rebuilds its view table each time).
 * Returns: fn's result, or a commit/sync error. */
int store__run(store_t *s, store__job_fn fn, void *arg, bool exclusive,
               void (*after)(store_t *s, int rc, void *arg));
/*
 * Bulk streams: one write transaction on the writer thread that takes parts while the caller
 * produces them, and commits or aborts when told. The writer keeps every part until the end, to
 * replay the transaction from the start when the map has to grow.
 * store__stream_begin() queues nothing yet: the transaction opens with the first part.
 * Returns: 0, -ENOMEM, -EROFS. Ownership: *out is ended with store__stream_end().
 */
typedef struct store__stream store__stream_t;
int store__stream_begin(store_t *s, store__stream_t **out);
/* Hands p to the writer (in push order). Returns: 0; or the error that already failed the
 * transaction (res->error says more when not empty), -ESHUTDOWN. Ownership: p is taken, always. */
int store__stream_push(store__stream_t *st, store__part_t *p, store_apply_result_t *res);
/* Moves into *enc (empty) the buffers of a part the writer is done with, emptied but with their
 * capacity, so the next part's encoding does not fault in fresh memory. Returns: true when there
 * was one. */
bool store__stream_take_spare(store__stream_t *st, store__enc_t *enc);
/* Commits (commit) or aborts the stream and waits for the writer; frees st (accepts NULL).
 * Returns: as store_bulk_commit(); 0 for an abort. res may be NULL. */
int store__stream_end(store__stream_t *st, bool commit, store_apply_result_t *res);
void store__part_free(store__part_t *p);

/* Hands an encoded set of rows to the writer and waits. Returns: as store_apply(). */
int store__submit(store_t *s, store__enc_t *enc, uint64_t log_position, store_apply_result_t *res);
/* Hands an encoded set of rows to the writer without waiting (store_apply_async()): enc's
 * buffers move to the queued job (enc is left empty). Returns: 0 (done will be called), -ENOMEM,
 * -EROFS, -ESHUTDOWN (done will not be called; enc is then left as it was). */
int store__submit_async(store_t *s, store__enc_t *enc, uint64_t log_position,
                        store_apply_done_fn done, void *arg);
int store__writer_start(store_t *s);
void store__writer_stop(store_t *s);

/* Map growth: doubles the map (or adopts another process's size when grow is false).
 * Caller holds no map lock. Returns: 0 or a negative errno. */
int store__map_grow(store_t *s, bool grow);

/* How store__txn_begin() starts a transaction, and how it holds the map lock. */
typedef enum {
    STORE__TXN_READ,            /* mdb_txn_begin(MDB_RDONLY), lock shared */
    STORE__TXN_RENEW,           /* mdb_txn_renew() of the reset read transaction *txn, shared */
    STORE__TXN_WRITE,           /* mdb_txn_begin(0), lock shared */
    STORE__TXN_WRITE_EXCLUSIVE, /* mdb_txn_begin(0), lock exclusive: no reader of ours is live */
} store__txn_mode_t;

/* Begins (or renews) *txn under the map lock, taken as mode says. A map another process grew
 * (MDB_MAP_RESIZED) is adopted and the begin tried again. Caller holds no map lock.
 * Returns: 0 with the lock held, to be released by store__txn_end(); a negative errno with the
 * lock released (*txn not begun; a renewed one stays reset). */
int store__txn_begin(store_t *s, store__txn_mode_t mode, MDB_txn **txn);

/* How store__txn_end() leaves the transaction. */
typedef enum {
    STORE__TXN_ABORT, /* mdb_txn_abort() */
    STORE__TXN_RESET, /* mdb_txn_reset(): a read transaction kept for STORE__TXN_RENEW */
} store__txn_end_t;

/* Ends what store__txn_begin() began: txn as `how` says (NULL when the caller already committed
 * or aborted it), then the map lock. Whatever runs between a commit and this call still holds
 * the lock (a catalog job's `after`). */
void store__txn_end(store_t *s, MDB_txn *txn, store__txn_end_t how);

/* Positions cur (on a history database) on the entity's latest entry at or before at_us: key is
 * the entity key, hk a buffer of STORE_MAX_KEY bytes for the seek key. The one lookup of the
 * entry before a time, for reads and for the writer's merge. Returns: 1 found (*k, *d set),
 * 0 none, or a negative errno. */
int store__history_seek(MDB_cursor *cur, const uint8_t *key, size_t key_len, int64_t at_us,
                        uint8_t *hk, MDB_val *k, MDB_val *d);

/* A reader's state, for reads outside read.c (history.c): whether a read is open, its store, and
 * its transaction (valid while active). */
bool store__reader_active(const store_reader_t *r);
store_t *store__reader_store(const store_reader_t *r);
MDB_txn *store__reader_txn(const store_reader_t *r);

/* Publishes a new view table (caller holds map_lock exclusively). Takes over t's reference. */
void store__views_publish(store_t *s, store__views_t *t);
/* The current view table with a reference, safe without the map lock. */
store__views_t *store__views_get(store_t *s);

/* meta helpers (txn borrowed) */
int store__meta_get(MDB_txn *txn, MDB_dbi meta, const char *key, MDB_val *val);
/* A little-endian 64-bit value of meta. Returns: 0 and *out (0 when the key is absent); -EIO
 * when it is not 8 bytes; another negative errno. */
int store__meta_u64(MDB_txn *txn, MDB_dbi meta, const char *key, uint64_t *out);
/* Whether log position `position` may be applied in txn: 0 when it is the next one (any later
 * one when the store is not log_contiguous); -EALREADY when the store is at it or past it;
 * -ESPIPE when a position between would be skipped; -EIO (a damaged position record). */
int store__position_check(store_t *s, MDB_txn *txn, uint64_t position);
int store__meta_put(MDB_txn *txn, MDB_dbi meta, const char *key, const void *p, size_t n);
int store__meta_del(MDB_txn *txn, MDB_dbi meta, const char *key);

/* Little-endian integers at any alignment (LMDB values are only 2-byte aligned). */
/*
 * The TTL rule, shared by reads (OUTSIDE_MAX_AGE) and gc (deletion), so the two never disagree.
 * A TTL so large that microseconds would overflow counts as forever.
 */
static inline bool store__ttl_applies(const catalog_view_t *v)
{
    return v->ttl_seconds > 0 && v->ttl_seconds < INT64_MAX / 2000000;
}

/* Rows whose event time is before this are past v's TTL. Only when store__ttl_applies(v). */
static inline int64_t store__ttl_cutoff(const catalog_view_t *v, int64_t now_us)
{
    return now_us - v->ttl_seconds * 1000000;
}

static inline bool store__expired(const catalog_view_t *v, int64_t event_ts_us, int64_t now_us)
{
    return store__ttl_applies(v) && event_ts_us < store__ttl_cutoff(v, now_us);
}

/*
 * The order of entity keys in a view's database: exactly LMDB's default (memcmp, then the shorter
 * key first), eight bytes at a time and without a call into libc per comparison. A B-tree lookup
 * makes about twenty comparisons; with LMDB's default comparator they were a third of its cost.
 * Being the same order, databases written with either comparator stay valid under the other.
 * Set with mdb_set_compare() on every view database handle, right after mdb_dbi_open().
 */
int store__key_cmp(const MDB_val *a, const MDB_val *b);
/* The same order on raw bytes (<0, 0, >0), for sorting rows and deciding appends: anything that
 * must agree with the databases' order uses this one function. */
static inline int store__key_order(const uint8_t *p, size_t np, const uint8_t *q, size_t nq)
{
    if (np == 8 && nq == 8) {
        /* One INT64 join key, the common case: one comparison of two integers. */
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, q, 8);
        x = __builtin_bswap64(x);
        y = __builtin_bswap64(y);
        return (x > y) - (x < y);
    }
    size_t n = np < nq ? np : nq;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, q + i, 8);
        x = __builtin_bswap64(x); /* big-endian: integer order is byte order */
        y = __builtin_bswap64(y);
        if (x != y)
            return x < y ? -1 : 1;
    }
    for (; i < n; i++) {
        if (p[i] != q[i])
            return p[i] < q[i] ? -1 : 1;
    }
    return np < nq ? -1 : np > nq ? 1 : 0;
}

/* Makes room for one more element in a realloc'd array of n elements of size elem: doubles
 * *cap (first when 0) when n has reached it. Returns: 0, -ENOMEM (the array is left as it was).
 * Ownership: *array stays the caller's, freed with free(). */
static inline int store__grow(void **array, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? 2 * *cap : first;
    void *p = realloc(*array, ncap * elem);
    if (p == NULL)
        return -ENOMEM;
    *array = p;
    *cap = ncap;
    return 0;
}

static inline uint64_t store__le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}
static inline uint32_t store__le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return le32toh(v);
}

/* Value bytes of one slot of a parsed record (len 0: null, or a slot past the record's, e.g. a
 * feature added after it was written). Inline: reads run it once per feature per entity row.
 * Returns: 0, -EIO (malformed offsets). */
static inline int store__rec_slot(const store__rec_t *r, uint32_t slot, const uint8_t **p,
                                  size_t *len)
{
    if (slot >= r->n_slots) {
        *p = NULL;
        *len = 0;
        return 0;
    }
    uint32_t end = store__le32(r->ends + 4 * (size_t)slot);
    uint32_t start = slot == 0 ? 0 : store__le32(r->ends + 4 * (size_t)(slot - 1));
    if (start > end || end > r->data_len)
        return -EIO;
    *p = r->data + start;
    *len = end - start;
    return 0;
}
/* A history key: the entity key, then the event time as 8 big-endian bytes with the sign bit
 * flipped, so that one entity's entries sort by event time (entity keys of one view are
 * prefix-free: integers have fixed widths, strings a length prefix). */
#define STORE__HKEY_TS 8
static inline void store__hkey_put_ts(uint8_t *p, int64_t ts_us)
{
    uint64_t x = (uint64_t)ts_us ^ (1ull << 63);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (56 - 8 * i));
}
static inline int64_t store__hkey_ts(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return (int64_t)(x ^ (1ull << 63));
}

/* The change feed's keys: position and index, big-endian (so that keys sort as positions). */
static inline void store__change_key_put(uint8_t *k, uint64_t pos, uint32_t idx)
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(pos >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        k[8 + i] = (uint8_t)(idx >> (24 - 8 * i));
}
static inline void store__change_key_get(const uint8_t *k, uint64_t *pos, uint32_t *idx)
{
    uint64_t p = 0;
    uint32_t x = 0;
    for (int i = 0; i < 8; i++)
        p = p << 8 | k[i];
    for (int i = 0; i < 4; i++)
        x = x << 8 | k[8 + i];
    *pos = p;
    *idx = x;
}

/* Event times of history entries before this are past v's history retention (INT64_MIN: kept
 * forever). */
static inline int64_t store__history_cutoff(const catalog_view_t *v, int64_t now_us)
{
    return v->history_retention_s > 0 && v->history_retention_s < INT64_MAX / 2000000
               ? now_us - v->history_retention_s * 1000000
               : INT64_MIN;
}

static inline void store__put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof v);
}
static inline void store__put_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof v);
}

#endif /* STORAGE_STORE_INT_H */
