/* storage/store.h - the embedded LMDB replica: apply path, batched reads, gc, snapshots. */
#ifndef STORAGE_STORE_H
#define STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"

/*
 * One store = one LMDB environment in one data directory. Layout:
 *   - "meta": store-format version, the applied catalog (canonical YAML), the last applied
 *     replication log position, and for every view version its feature slot table (feature name
 *     -> slot, append-only, so features added to a version later never move existing data);
 *   - one named database per online feature view version, "fv:<name>@v<version>", keyed by the
 *     encoded entity key, one record per entity holding the event timestamp, the write timestamp
 *     and every feature value in feast.types.Value wire form (so a read copies bytes straight
 *     into a response, never decoding them);
 *   - with history (store_options_t.history), for every view version whose catalog entry keeps
 *     it (catalog_view_t.history), "h:<name>@v<version>": every applied row by (entity key,
 *     event time), each a record of the same form holding the row as it stood after that write
 *     (its values merged over the entity's previous entry), a delete as a tombstone. Point-in-time
 *     reads (store_history_row()) take an entity's latest entry at or before a time.
 *
 * The store depends on catalog/ by design: the catalog is the schema the store enforces.
 *
 * Thread safety: a store_t is shared by every thread. Writes from any thread go through
 * store_apply(), which funnels concurrent batches into one writer thread that commits them
 * together (group commit: one transaction and one pair of fsyncs for many callers). Reads use a
 * per-thread store_reader_t. No read ever waits on a write. Reads do wait, briefly, for the two
 * rare events that remap or reshape the environment: a map resize (the map doubles when full)
 * and a catalog change (store_apply_catalog(), store_teardown()). Both wait for open reads to
 * end, so a thread must not call a writing function (store_apply(), store_bulk_commit(),
 * store_apply_catalog(), store_teardown(), store_gc()) between its own store_read_begin() and
 * store_read_end(): that can deadlock.
 *
 * Durability. Commits go to the data file through the OS page cache. With STORE_SYNC_FULL each
 * group's commit fsyncs its data pages before it writes the meta page that makes them live, and
 * the writer fsyncs that meta page before any caller of the group is acknowledged (two fsyncs
 * per group, ordered so that a power loss never leaves a meta page pointing at unwritten pages).
 *   - Process kill (SIGKILL, OOM, crash of fstore): every acknowledged write survives, with
 *     either sync policy, because the committed pages are already in the kernel's page cache.
 *   - Machine crash or power loss: with STORE_SYNC_FULL every acknowledged write survives. With
 *     STORE_SYNC_NONE commits since the last fsync may be lost and, as with LMDB's MDB_NOSYNC,
 *     the file may be left inconsistent: use it for loads that can be redone. store_open() and
 *     store_close() of a writable store fsync, so a load that ran to completion is durable.
 */

#define STORE_MAX_KEY 511          /* LMDB's default max key size: longest encoded entity key */
#define STORE_MAX_HISTORY_KEY 503  /* ... of a view keeping history (8 bytes go to the time) */
#define STORE_MAX_VALUE (1u << 20) /* longest encoded feature value (wire bytes) */
/* 2: tombstones; 3: a checksum on every record. An older store is upgraded when it is opened
 * for writing (its records rewritten with their checksums, once); opened read-only it is
 * refused with -EPROTO until then. */
#define STORE_FORMAT_VERSION 3
#define STORE_OPEN_MARKER "fstore-open" /* STORE_SYNC_LOG: in dir while open (see store_open) */
#define STORE_MAX_VIEWS 1023            /* online view versions per store (LMDB named databases) */

typedef struct store store_t;
typedef struct store_reader store_reader_t;

typedef enum store_sync {
    STORE_SYNC_FULL = 0, /* fsync before store_apply() returns: an acknowledged batch survives a
                            machine crash (the default) */
    STORE_SYNC_NONE = 1, /* no fsync: survives a process kill, not a machine crash (bulk loads) */
    STORE_SYNC_LOG = 2,  /* a replica of a replication log: no fsync per commit, store_flush()
                            now and then. A process crash loses nothing; a machine crash loses the
                            commits since the last flush (the log replays them) and may damage
                            the file: store_open() then verifies it (see below) */
} store_sync_t;

/* How long a deleted row's tombstone is kept by default (7 days): an upsert with an older event
 * time than a kept tombstone is stale, one older than a tombstone gc dropped comes back. */
#define STORE_TOMBSTONE_RETENTION_S (7 * 24 * 3600)
/* How far ahead of this node's clock an event time may be (a year-9999 event time would freeze
 * its row: every later write would be stale). */
#define STORE_MAX_FUTURE_SKEW_S (24 * 3600)

/* Whether a store keeps history. ON and OFF are recorded in the data directory (unless opened
 * read-only), AUTO follows that record (off when there is none): tools that open a server's
 * data directory keep what the server chose. */
typedef enum store_history {
    STORE_HISTORY_AUTO = 0,
    STORE_HISTORY_ON = 1,
    STORE_HISTORY_OFF = 2,
} store_history_t;

typedef struct store_options {
    const char *dir; /* data directory; created if missing */
    size_t map_size; /* initial LMDB map size in bytes; 0 = 1 GiB. Grows automatically. */
    store_sync_t sync;
    unsigned max_readers;          /* 0 = 512 */
    bool read_only;                /* open for reads only (get, plan, snapshot of a live store) */
    int64_t tombstone_retention_s; /* 0 = STORE_TOMBSTONE_RETENTION_S */
    int64_t max_future_skew_s;     /* event times later than now + this are refused (-EINVAL);
                                      0 = STORE_MAX_FUTURE_SKEW_S, < 0 = no bound */
    /* A replica of a log: every log position must be the stored one + 1 (store_apply*() with
     * any other is -ESPIPE, nothing applied), so a lost message can never be skipped; a batch
     * whose view has no database here (-ENOENT) still records its position. */
    bool log_contiguous;
    /* Keep history for the views whose catalog entry asks for it (serve --history): a per-node
     * choice, so that a cluster can keep it on a few nodes. Without it history databases are
     * neither created nor written, STORE_OP_HISTORY rows are passed over and history reads
     * are -ENOTSUP. */
    store_history_t history;
} store_options_t;

/*
 * Opens (creating if needed) the store in opts->dir.
 * STORE_SYNC_LOG: the store leaves a marker (STORE_OPEN_MARKER, holding the boot id) in dir
 * while it is open. Found at open with another boot id, the machine went down with the store
 * open and unflushed pages may be lost or torn: every record of every database is then read
 * back (store_verify()) before the store is used, and a damaged one is refused (-EUCLEAN).
 * A store of an older format (records without checksums) is upgraded by a writable open, once
 * (store_upgraded is logged; an older fstore refuses it from then on).
 * Returns: 0; -ENOENT (read_only and no store there); -EPROTO (store-format version from a newer
 *          fstore, or not an LMDB environment); -ENOEXEC (read_only, and the store is of an
 *          older format: a writable open upgrades it); -EBUSY (the upgrade is due and another
 *          process, an older fstore, has the store open: logged with its pid); -EACCES;
 *          -ENOMEM; -EIO; -EAGAIN (the data
 *          directory is in use by another process in a way LMDB refuses); -EUCLEAN (damaged by
 *          a machine crash: start the replica again from a snapshot; or data.mdb is shorter
 *          than its meta page says, i.e. truncated: logged as store_truncated; or it holds
 *          data but no meta database, or a view's slot table that does not parse: logged as
 *          store_damaged).
 * A read-only store has no writer: writing functions return -EROFS.
 * Ownership: *out is the caller's, closed with store_close().
 */
int store_open(const store_options_t *opts, store_t **out);
/* Stops the writer (after committing what it was handed), fsyncs and closes the environment.
 * Every reader must be freed first. Accepts NULL. */
void store_close(store_t *s);

/* ------------------------------------------------------------------------------------------ */
/* Catalog                                                                                     */

/*
 * The catalog last applied to this store. Returns: 0; -ENOENT when none was applied yet.
 * Ownership: *out holds a reference (catalog_unref()).
 */
int store_applied_catalog(store_t *s, catalog_t **out);

/*
 * Applies a catalog: plans it against the applied one, refuses breaking changes, creates the
 * databases of new online view versions, extends slot tables with appended features, and records
 * the catalog, all in one transaction.
 * Breaking changes that concern only view versions torn down since (their data is gone) count
 * as safe. The store keeps a reference to c (see store_applied_catalog()).
 * Returns: 0; -EPERM when the plan has breaking changes (nothing applied; the plan is in *plan);
 *          -EMFILE (more than STORE_MAX_VIEWS online view versions); -EROFS; -EIO, -ENOMEM;
 *          -ENOSPC (the disk is full) or -EFBIG (the map at its largest), as store_apply().
 * Ownership: when plan is not NULL it receives the plan (catalog_plan_clear()).
 * Thread safety: reads wait while the change is committed (see the top of this file).
 */
int store_apply_catalog(store_t *s, const catalog_t *c, catalog_plan_t *plan);
/* store_apply_catalog() at a replication log position, recorded in the same transaction (the
 * catalog changes of the log are applied where they stand in it). A position not above the
 * stored one is a replay: -EALREADY, nothing applied. */
int store_apply_catalog_at(store_t *s, const catalog_t *c, catalog_plan_t *plan,
                           uint64_t log_position);

/*
 * The plan store_apply_catalog() would follow for c, without applying anything (for
 * `fstore plan --data-dir`): catalog_plan(applied, c) with the torn-down adjustment above.
 * Returns: 0, -ENOMEM, -EIO. Ownership: *plan is the caller's (catalog_plan_clear()).
 */
int store_plan_catalog(store_t *s, const catalog_t *c, catalog_plan_t *plan);

/* Drops one view version's data and database (version 0 = every version of the view), or with
 * name == NULL the whole store's data, catalog and replication position. The recorded catalog
 * still lists a dropped view version until the next store_apply_catalog(), which may then remove
 * or redefine it freely; applying a catalog that has it creates it again, empty.
 * Returns: 0, -ENOENT (no such view version has a database), -EROFS, -EIO, -ENOSPC, -EFBIG. */
int store_teardown(store_t *s, const char *view_name, uint32_t version);

/* ------------------------------------------------------------------------------------------ */
/* Entity keys                                                                                 */

/*
 * Encodes an entity key for view v from its join-key values, given in v->join_keys order. Integer
 * values of another width are coerced to the declared type (INT32 1001 and INT64 1001 are the
 * same driver); an INT64 value that does not fit a declared INT32 is -ERANGE. Entityless views
 * (n == 0) use one fixed key. The encoding is order-preserving per key type (big-endian
 * sign-flipped integers, length-prefixed strings), so sorted input can be appended.
 * Returns: the key length; -EINVAL (wrong count or type, naming nothing: the caller knows which
 *          row), -ERANGE, -ENAMETOOLONG (longer than STORE_MAX_KEY), -ENOSPC (cap too small; a
 *          buffer of STORE_MAX_KEY bytes is always enough). A view that keeps history takes
 *          writes of keys up to STORE_MAX_HISTORY_KEY only (store_apply() refuses longer ones);
 *          longer keys written before it kept history stay readable online.
 */
int store_encode_key(const catalog_view_t *v, const catalog_value_t *keys, size_t n, uint8_t *buf,
                     size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* The apply path: every change to feature data, local or from the replication log            */

typedef enum store_op {
    STORE_OP_UPSERT = 0,  /* merge the given features into the row (last write wins) */
    STORE_OP_DELETE = 1,  /* delete the rows (right to be forgotten); values are ignored. The row
                             becomes a tombstone holding the delete's event time, so an upsert
                             older than the delete (or as old) cannot bring it back. In a view
                             that keeps history the delete is an entry too: reads as of later
                             times find nothing, but the entries before it stay, for reads as of
                             earlier times, until the history's retention drops them */
    STORE_OP_HISTORY = 2, /* history only (backfills, late data): the rows go to the view's
                             history as UPSERT's would, the online row is left alone. The view
                             must keep history (catalog_view_t.history); a store without
                             history passes them over (counted neither written nor stale) */
    STORE_OP_ONLINE = 3,  /* the online row only, the history left alone: store_materialize()'s
                             rows, which come from the history (not in the replication log) */
} store_op_t;

/*
 * A column-wise batch of rows for one view version. Row r's entity key is keys[k][r] for each
 * join key k (v->join_keys order). Row r's value of the j-th written feature is values[j][r], for
 * the feature whose index in the view is feature_idx[j]; features not listed keep their stored
 * value, a CATALOG_DTYPE_NULL value stores an explicit null.
 */
typedef struct store_batch {
    const catalog_view_t *view;
    store_op_t op;
    size_t n_rows;
    const catalog_value_t *const *keys; /* [view->n_join_keys][n_rows] */
    size_t n_features;
    const uint32_t *feature_idx;          /* [n_features] */
    const catalog_value_t *const *values; /* [n_features][n_rows] */
    const int64_t *event_ts_us;           /* [n_rows], microseconds since epoch; NULL = now */
} store_batch_t;

typedef struct store_apply_result {
    size_t written; /* rows stored (upserts) or deleted (deletes of absent rows don't count) */
    size_t stale;   /* rows ignored: a newer event is already stored (ties go to the later write) */
    /* When the call fails with -EINVAL: the batch index, row and feature (or join key) at fault,
     * and what rule broke. Nothing of any batch in the call was written. */
    size_t bad_batch;
    size_t bad_row;
    char bad_field[CATALOG_MAX_NAME];
    char error[320];
} store_apply_result_t;

/*
 * Applies batches atomically: every row of every batch is validated (join-key types, feature
 * dtypes, validation rules) in the caller's thread, then the lot is handed to the writer and
 * committed in one LMDB transaction, together with log_position as the store's last applied
 * replication position when log_position > 0 (a position lower than the stored one is stale and
 * the call returns -EALREADY without writing: replays are idempotent).
 * A position equal to the stored one is a replay too.
 * Per row, last write wins by event time: an event older than the stored row's (live or
 * deleted) is ignored (stale); an equal event timestamp is decided by write time (the later write
 * wins: rows are applied in call order, batch order, row order), except that an upsert must be
 * newer than a delete to bring the row back. The write timestamp is taken at commit. A delete
 * leaves a tombstone with its event time (store_gc() drops it after the retention).
 * Returns: 0 when durable per the store's sync policy; -EINVAL (see *res), -ENOENT (a batch's
 *          view version has no database: not applied, offline or torn down; *res names it),
 *          -EALREADY, -ESPIPE (log_contiguous: not the next position), -ENOSPC (the data
 * directory's disk is full: logged once per episode as disk_full), -EFBIG (the map is at its
 * largest size and cannot grow), -EIO, -EROFS, -ENOMEM, -E2BIG (a merged record over LMDB's
 * value limit),
 * -ESHUTDOWN when the store is closing. An error other than -EINVAL, -ENOENT and -EALREADY comes
 * from the group's transaction and fails every call committed in that group. Thread safety: any
 * number of threads; concurrent calls share transactions (group commit). res may be NULL.
 */
int store_apply(store_t *s, const store_batch_t *batches, size_t n_batches, uint64_t log_position,
                store_apply_result_t *res);

/* Called once an asynchronous apply is decided: rc and *res as store_apply() would return them
 * (res is borrowed for the call). */
typedef void (*store_apply_done_fn)(void *arg, int rc, const store_apply_result_t *res);

/*
 * store_apply() without waiting for the commit: the batches are validated and encoded in the
 * caller's thread exactly as store_apply() does, then queued for the writer, and the caller goes
 * on. done(arg, rc, res) is called exactly once when the call is decided: for rc == 0 only after
 * the rows are durable per the sync policy (under sync=full, after the group's fsyncs). Queued
 * calls join the same group commits as store_apply() calls, so a caller that keeps many calls in
 * flight (a server that does not park a thread per call) lets one group commit cover them all.
 * done runs on the store's writer thread (or on the calling thread, before this returns, when
 * there is nothing to write); it must be quick and must not call store functions that use the
 * writer (store_apply, store_apply_catalog, store_gc, ...): the writer would wait for itself.
 * Returns: 0 when queued (done will be called); -EINVAL / -ENOENT with *res, -ENOMEM, -EROFS,
 *          -ESHUTDOWN: the call failed here, nothing is queued and done is never called.
 * Thread safety: as store_apply(). res may be NULL.
 */
int store_apply_async(store_t *s, const store_batch_t *batches, size_t n_batches,
                      uint64_t log_position, store_apply_result_t *res, store_apply_done_fn done,
                      void *arg);

/*
 * What the writer applied since store_open(), per view version: rows (last write wins may have
 * kept some of them out) and the newest event time among them (a view's freshness). fn is
 * called once per view version that had rows, under a lock the writer takes once per commit.
 * Returns: 0, or fn's nonzero result.
 */
typedef int (*store_view_stats_fn)(void *arg, const char *view, uint32_t version, uint64_t rows,
                                   int64_t newest_event_us);
int store_view_stats(store_t *s, store_view_stats_fn fn, void *arg);

/* A hash of the catalog applied to the store as committed in the reader's snapshot (0: none):
 * a process that opened the store read-only sees another process's catalog changes by it.
 * Returns: 0, -EINVAL (outside a read), -EIO. */
int store_read_catalog_hash(store_reader_t *r, uint64_t *hash);

/* Returns: whether the store keeps history (store_options_t.history). */
bool store_keeps_history(const store_t *s);

/* Makes every commit so far durable (one fsync): STORE_SYNC_LOG's checkpoint. Returns: 0, -EIO. */
int store_flush(store_t *s);

/* The last applied replication log position (0 = none). Returns: 0, -EIO. */
int store_last_position(store_t *s, uint64_t *pos);

/*
 * A batch in the store's wire forms, as the replication log carries it: keys as
 * store_encode_key() wrote them for view, values as catalog_value_encode() wrote them (length 0:
 * an explicit null), row by row (values[r * n_features + j] is row r's value of feature
 * feature_idx[j] of view). Event times are fixed (no "now"); a delete has no features.
 */
typedef struct store_wire_batch {
    const catalog_view_t *view;
    store_op_t op;
    size_t n_rows;
    const uint8_t *const *keys; /* [n_rows] */
    const uint32_t *key_lens;   /* [n_rows] */
    size_t n_features;
    const uint32_t *feature_idx;  /* [n_features] */
    const uint8_t *const *values; /* [n_rows * n_features] */
    const uint32_t *value_lens;   /* [n_rows * n_features] */
    const int64_t *event_ts_us;   /* [n_rows] */
} store_wire_batch_t;

/*
 * Validates batches exactly as store_apply() does and writes nothing: *out holds their wire
 * form, what a node publishes to the replication log (so that a write refused anywhere is
 * refused before anyone sees it, and every replica applies the same bytes and event times).
 * out->batches[i] is batches[i]; its pointers live until store_wire_end(). s may be NULL: then
 * the batches are checked against their catalog views alone, not against a store's databases
 * (a client of the log that holds no replica, `fstore ingest --replication`; a replica, whose
 * store may not hold a view the log's catalog just added), and event times against
 * max_future_skew_s (as store_options_t's; a store's own when s is given).
 * Returns: 0 and *out; -EINVAL / -ENOENT with *res (as store_apply()), -ENOMEM.
 * Ownership: the caller ends *out with store_wire_end().
 */
typedef struct store_wire {
    size_t n_batches;
    store_wire_batch_t *batches;
} store_wire_t;
int store_wire_begin(store_t *s, int64_t max_future_skew_s, const store_batch_t *batches,
                     size_t n_batches, store_wire_t **out, store_apply_result_t *res);

/* store_options_t.max_future_skew_s (0: STORE_MAX_FUTURE_SKEW_S, < 0: none) in microseconds
 * (-1: none): how far ahead of now an event time may be. */
static inline int64_t store_future_skew_us(int64_t max_future_skew_s)
{
    return max_future_skew_s < 0
               ? -1
               : (max_future_skew_s > 0 ? max_future_skew_s : STORE_MAX_FUTURE_SKEW_S) * 1000000;
}
void store_wire_end(store_wire_t *w);

/*
 * store_apply_async() for wire batches, as store_wire_begin() made them on the node that
 * published them, against the same catalog (the log orders catalog changes with writes): only
 * their form is checked here (views, feature indexes, key and value lengths), not the catalog's
 * rules again. The log is trusted: whoever may publish to it may write.
 * Returns: as store_apply_async().
 */
int store_apply_wire_async(store_t *s, const store_wire_batch_t *batches, size_t n_batches,
                           uint64_t log_position, store_apply_result_t *res,
                           store_apply_done_fn done, void *arg);

/*
 * Bulk loads (`fstore ingest`): ONE transaction, all or nothing, that stays open on the writer
 * while the caller adds rows. Each add validates and encodes its batches (same checks and record
 * encoding as store_apply(); see store_bulk_add_checked() for pre-validated rows) in the caller's
 * thread, sorts them by entity key and folds each key's rows into its record, then streams them
 * into the open transaction, so the writing overlaps the caller's next add. A key that sorts
 * after every key its database holds is appended as folded (MDB_APPEND); any other key is merged
 * row by row exactly as store_apply() does. Rows land as if applied in input order (call order,
 * batch order, row order): last write wins, an older event than the stored or an earlier row's
 * is stale, input order breaks event-time ties. Nothing is visible until store_bulk_commit();
 * store_bulk_free() without a commit aborts, leaving the store as it was.
 * The transaction opens with the first add that has rows and holds up every other write to the
 * store (this process's store_apply() and catalog changes, and other processes' writers) until
 * the commit or free; readers are not held up. So the thread that holds a bulk must not itself
 * call a writing function (store_apply(), store_apply_catalog(), store_teardown(), store_gc())
 * before it commits or frees the bulk: that deadlocks. Free every bulk before store_close().
 * Memory: every add's folded records are kept until the end, to replay the transaction if the
 * map has to grow (about key + 28 + 4 per slot + wire bytes per value per row); an add whose
 * keys could not all be appended keeps its encoded rows too (about as much again).
 */
typedef struct store_bulk store_bulk_t;
/* Returns: 0, -ENOMEM, -EROFS. Ownership: *out is the caller's, freed with store_bulk_free(). */
int store_bulk_begin(store_t *s, store_bulk_t **out);
/* Validates, encodes and streams batches. Returns: 0; -EINVAL / -ENOENT with *res as
 * store_apply() (the failing call adds nothing, earlier calls stay); -ENOMEM; -E2BIG (more than
 * UINT32_MAX rows in one call); or the error that already failed the transaction (-EIO, -EFBIG,
 * -ENOSPC, -ENOENT for a view torn down since, -ESHUTDOWN): then nothing will be committed, and
 * store_bulk_commit() returns it again. res may be NULL. */
int store_bulk_add(store_bulk_t *b, const store_batch_t *batches, size_t n_batches,
                   store_apply_result_t *res);
/*
 * store_bulk_add() for rows the caller has already validated, so that no value is checked
 * twice (`fstore ingest` checks each row as it parses it, to report every bad row with its
 * line). The caller promises: every value passed catalog_validate_value() against its feature
 * of batch->view, this very catalog_view_t. On that promise only the catalog rules are skipped
 * (not_null, min, max, allowed_values, max_length, pattern, STRING's UTF-8); everything the
 * store's own encoding relies on is still checked as in store_bulk_add(): the view and its
 * database, feature indexes and slots, join-key types and lengths, value types, value sizes.
 * A broken promise stores values the catalog forbids, so builds without NDEBUG check the rules
 * anyway and fail with -EINVAL saying so. Anything that did not validate every row itself
 * (requests from the network, the replication log) uses store_bulk_add() or store_apply().
 * Returns: as store_bulk_add().
 */
int store_bulk_add_checked(store_bulk_t *b, const store_batch_t *batches, size_t n_batches,
                           store_apply_result_t *res);
/* Rows added so far. */
size_t store_bulk_rows(const store_bulk_t *b);
/* Commits everything added, waiting for the writer. Returns: as store_apply() (res->written /
 * stale for the lot), -ENOMEM, or -EINVAL when already committed. */
int store_bulk_commit(store_bulk_t *b, store_apply_result_t *res);
/* Aborts the load unless it was committed (waiting for the writer), and frees b. Accepts NULL. */
void store_bulk_free(store_bulk_t *b);

/* ------------------------------------------------------------------------------------------ */
/* Reads                                                                                       */

/* Per-feature read status; the numbers are Feast's FieldStatus. */
typedef enum store_status {
    STORE_STATUS_INVALID = 0,
    STORE_STATUS_PRESENT = 1,
    STORE_STATUS_NULL_VALUE = 2,      /* the row exists without this value (or with a null) */
    STORE_STATUS_NOT_FOUND = 3,       /* no row for this entity */
    STORE_STATUS_OUTSIDE_MAX_AGE = 4, /* the row is older than the view's TTL (value returned) */
} store_status_t;

/*
 * A reader: one per thread, reused across requests (its LMDB read transaction is reset and renewed
 * rather than recreated). Returns: 0, -ENOMEM, -EAGAIN (too many readers; see max_readers).
 * Ownership: *out is the caller's, freed with store_reader_free() before store_close().
 * Thread safety: a reader is used by one thread at a time (it may move between threads).
 */
int store_reader_new(store_t *s, store_reader_t **out);
void store_reader_free(store_reader_t *r);

/* Starts a consistent snapshot: every read until store_read_end() sees the same data. Keep it
 * short (one request): an open read delays map growth, which delays writers.
 * Returns: 0; -EINVAL (already begun); -EIO, or another store error when LMDB cannot renew the
 *          transaction or the map cannot be adopted after another process grew it. */
int store_read_begin(store_reader_t *r);
/* Accepts NULL and a reader that has not begun. */
void store_read_end(store_reader_t *r);

/* One entity's row in one view version, valid until store_read_end(). */
typedef struct store_row {
    bool found;
    bool deleted; /* not found because the row (or history entry) is a delete's tombstone; its
                     time is then in event_ts_us */
    int64_t event_ts_us;
    int64_t created_ts_us;
    const uint8_t *rec; /* internal: the record in the LMDB map */
    size_t rec_len;
    const void *slots; /* internal: the view's slot table */
} store_row_t;

/*
 * Looks up one (view version, entity key). A missing row is not an error: row->found is false.
 * The view may come from any catalog (the applied one or a newer reload): it is matched by name
 * and version, and its features by name.
 * Returns: 0; -ENOENT when the view version has no database (not applied, or offline); -EINVAL
 *          outside store_read_begin()..store_read_end(); -EBADMSG (the record is damaged: its
 *          checksum does not match; counted and logged, row->found false); -EIO.
 */
int store_read_row(store_reader_t *r, const catalog_view_t *v, const uint8_t *key, size_t key_len,
                   store_row_t *row);

/*
 * One feature of a row: its status at time now_us (for TTL) and its feast.types.Value wire bytes
 * (borrowed from the map, valid until store_read_end(); *len == 0 and *wire == NULL for every
 * status but PRESENT and OUTSIDE_MAX_AGE).
 * row must come from store_read_row() or store_history_row() with the same view (a found or a
 * missing row). A feature
 * the store never applied reads as NULL_VALUE; a null in an expired row is NULL_VALUE, a value in
 * an expired row OUTSIDE_MAX_AGE. INVALID only for a record whose offsets do not hold (a damaged
 * record never gets here: its read returned -EBADMSG).
 * Thread safety: reads only row, v and the map; any thread, within the reader's snapshot.
 */
store_status_t store_row_feature(const store_row_t *row, const catalog_view_t *v,
                                 uint32_t feature_index, int64_t now_us, const uint8_t **wire,
                                 size_t *len);

/*
 * Several features of one row at once, each exactly as store_row_feature() would read it: for
 * i < n, feature feature_idx[i] of v (an index into v->features) goes to wire[i], len[i] and
 * status[i]. Cheaper than n calls: the record's header, offset table and TTL are looked at once.
 * The wire pointers are borrowed from the map, valid until store_read_end().
 * Thread safety: as store_row_feature() (reads only the row and v).
 */
void store_row_features(const store_row_t *row, const catalog_view_t *v,
                        const uint32_t *feature_idx, size_t n, int64_t now_us, const uint8_t **wire,
                        size_t *len, store_status_t *status);

/*
 * store_row_features() in two halves, for reading the same features from many rows of one view:
 * store_row_slots() resolves feature_idx[0..n) (indexes into v->features) to the record slots
 * of row's view version, and store_row_slot_features() reads those slots from a row, each exactly
 * as store_row_features() would. The resolution holds for every row with the same row->slots
 * pointer; all rows store_read_row() returns for v between one store_read_begin() and its
 * store_read_end() have the same one, found or not, so comparing it is enough to know when to
 * resolve again. row must come from a store_read_row() that returned 0.
 * Thread safety: as store_row_feature().
 */
void store_row_slots(const store_row_t *row, const catalog_view_t *v, const uint32_t *feature_idx,
                     size_t n, uint32_t *slots);
void store_row_slot_features(const store_row_t *row, const catalog_view_t *v, const uint32_t *slots,
                             size_t n, int64_t now_us, const uint8_t **wire, size_t *len,
                             store_status_t *status);

/* ------------------------------------------------------------------------------------------ */
/* History (store_options_t.history): point-in-time reads                                     */

/*
 * The entity's row as of at_us in view v's history: its latest entry at or before at_us (an
 * entry holds the whole row as of its time: the written features merged over the entity's
 * entry before it when it was written; a late row does not change the entries after it), read with
 * store_row_feature()/store_row_features() like an online row, with now_us = at_us for the view's
 * TTL (a row older than the TTL at at_us reads OUTSIDE_MAX_AGE). row->found is false when the
 * entity has no entry by then, or its latest one is a delete. Within store_read_begin() ..
 * store_read_end(): the same snapshot as online reads. Returns: 0; -ENOTSUP (this store keeps no
 * history); -ENOENT (no history here for v: it keeps none, or its catalog was not applied); -EINVAL
 * (outside a read, or a key longer than STORE_MAX_KEY); -EBADMSG (the entry is damaged, as
 * store_read_row()); -EIO. (A key over STORE_MAX_HISTORY_KEY has no history: not found.)
 */
int store_history_row(store_reader_t *r, const catalog_view_t *v, const uint8_t *key,
                      size_t key_len, int64_t at_us, store_row_t *row);

/* Called for each entity of a scan with its encoded key and its row as of the scan's time
 * (found, within the TTL), both valid for the call (what row->rec points at until
 * store_read_end()); with row NULL for an entity the
 * scan passes over (no entry by then, deleted, or expired), so that a caller can bound its
 * work however sparse the live rows are. Returns: 0 to go on, anything else to stop the scan
 * (store_history_scan() returns it). */
typedef int (*store_history_fn)(void *arg, const uint8_t *key, size_t key_len,
                                const store_row_t *row);
/*
 * Every entity of v's history in key order, after the entity whose encoded key is after (NULL
 * or length 0: from the first): fn gets each one's row as of at_us (NULL for entities with none
 * by then, deleted, or older than the view's TTL at at_us: Feast's load semantics). Paging:
 * stop after a page and pass the last key given to fn as the next scan's after. Costs a few
 * seeks per entity, however many entries each has.
 * Returns: 0; fn's nonzero result; -EINVAL (after longer than STORE_MAX_HISTORY_KEY: no entity
 * of a history has such a key); as store_history_row() otherwise.
 */
int store_history_scan(store_reader_t *r, const catalog_view_t *v, int64_t at_us,
                       const uint8_t *after, size_t after_len, store_history_fn fn, void *arg);

/*
 * Feast's materialize: loads the history of view v into its online rows. Every entity whose
 * latest entry at or before end_us is live, within the TTL there, and has an event time at or
 * after start_us, gets that row (all its features, nulls included) written online with its
 * event time, through the apply path (last write wins: an online row already newer stays). In
 * pages of 1024 entities, each read in its own snapshot, then applied.
 * Returns: 0 and *written (rows stored); -EINVAL (v keeps no history, or is on-demand), -EROFS,
 *          -EPERM (a replica of a log: its online rows come from the log alone), as
 *          store_history_scan() and store_apply() otherwise: what earlier pages wrote stays, and
 *          *written counts it.
 */
int store_materialize(store_t *s, const catalog_view_t *v, int64_t start_us, int64_t end_us,
                      size_t *written);

/*
 * The change feed of the history (with store_options_t.history): one entry per history entry
 * written (an upsert, a history-only row, a delete), in the order they were committed, at a
 * position that only grows: (log position, index in the message) on a replica of a log, so
 * that every replica numbers the same changes alike; (a counter, 0) on a single node. A
 * follower (`fstore cdc`) reads the entry's row with store_history_row() at its event time
 * (the entry may hold later writes of the same time by then, or be gone to the retention).
 */
typedef struct store_change {
    uint64_t position;
    uint32_t index;
    const char *view; /* the view version's name, and its version */
    uint32_t version;
    const uint8_t *key; /* the encoded entity key */
    size_t key_len;
    int64_t event_ts_us;
    int64_t write_ts_us;
    bool deleted; /* a delete (a tombstone entry) */
} store_change_t;
/* Called per change, with pointers valid for the call only. Returns: 0 to go on, else stop. */
typedef int (*store_change_fn)(void *arg, const store_change_t *ch);
/* The changes after (after_pos, after_idx) in position order, to fn, in the reader's snapshot.
 * Returns: 0; fn's nonzero result; -ENOTSUP (no history); -EINVAL (outside a read); -EIO. */
int store_changes(store_reader_t *r, uint64_t after_pos, uint32_t after_idx, store_change_fn fn,
                  void *arg);

/*
 * The inverse of store_encode_key(): the join-key values of an encoded key of view v, into
 * out[v->n_join_keys] (INT64 and INT32 as declared; strings and bytes point into key).
 * Returns: 0; -EINVAL (not a key of v's form).
 */
int store_decode_key(const catalog_view_t *v, const uint8_t *key, size_t key_len,
                     catalog_value_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Maintenance                                                                                 */

/*
 * Deletes rows past their view's TTL at now_us, tombstones whose event time is older than
 * the tombstone retention, history entries older than their view's history retention
 * (catalog_view_t.history_retention_s; 0 keeps them all) and change feed entries written
 * longer ago than it (store_changes()), in small transactions so writers are not
 * held up (readers never are). Returns: 0 and the number of records deleted in *deleted (may be
 * NULL); -EIO, -ENOSPC, -EFBIG (what earlier transactions deleted stays deleted; *deleted is then
 * not set).
 */
int store_gc(store_t *s, int64_t now_us, size_t *deleted);
/* As store_gc(), asking stop(arg) between transactions (stop NULL: never): when it says so the
 * sweep ends there. Returns: as store_gc(), or -ECANCELED when stopped, with what was deleted
 * until then in *deleted (the rest waits for the next sweep). */
int store_gc_until(store_t *s, int64_t now_us, bool (*stop)(void *arg), void *arg, size_t *deleted);
/*
 * A log's sweep (replication; a store opened with log_contiguous): as store_gc_until() at now_us
 * with tombstones kept tombstone_retention_us (the message's, not the store's), then
 * log_position recorded, so that every replica sweeps the same online records at the same place
 * in the log and replicas that applied the same prefix hold the same content (store_digest();
 * the change feed is still pruned by each node's own write times). Runs behind every apply
 * queued before it; the caller queues nothing meanwhile (the sweep takes several transactions;
 * anything else a contiguous store refuses as out of place). A stop or a failure records no
 * position: the message is applied again, to the same result.
 * Returns: 0 and *deleted (may be NULL); -EALREADY (the store is at log_position or past it:
 * nothing swept); -ESPIPE (log_position is not the next position: nothing swept); -EINVAL (not
 * log_contiguous, a position of 0, a negative retention); -ECANCELED (stopped); -ENOMEM,
 * -EROFS, -ESHUTDOWN (the store is closing); as store_gc().
 */
int store_gc_at(store_t *s, int64_t now_us, int64_t tombstone_retention_us, uint64_t log_position,
                bool (*stop)(void *arg), void *arg, size_t *deleted);

/* Writes a compacted copy of the environment into out_dir (created; must be empty), usable as a
 * data directory. Safe while the store serves reads and writes (a map resize waits for it).
 * Returns: 0, -EEXIST (out_dir not empty), -EIO, or the errno of creating out_dir. */
int store_snapshot(store_t *s, const char *out_dir);

typedef struct store_stats {
    size_t map_size;   /* current LMDB map size */
    size_t used_bytes; /* pages in use */
    uint64_t last_position;
    size_t n_views; /* view databases */
    /* Writer counters since open: write transactions committed (maintenance included), and
     * store_apply() / store_bulk_commit() calls they carried. batches / commits = group-commit
     * factor under concurrent writers. */
    uint64_t commits, batches;
    /* Damaged records met by reads and writes since open (their checksum did not match): each
     * read as INVALID and logged (at most a line a second). store_verify() finds them all. */
    uint64_t damaged;
    /* Reads LMDB failed since open (a snapshot or a lookup: I/O error, corrupted page, no free
     * reader slot), each failing its request; logged at most a line a second. */
    uint64_t read_errors;
} store_stats_t;
/* Returns: 0 and *out (written only on success); -EIO or another store error. */
int store_stat(store_t *s, store_stats_t *out);

/* Whether any view database (or its history) holds an entry, tombstones included: a look at
 * each database's count, not a walk. Returns: 0 and *any; -EIO or another store error. */
int store_holds_rows(store_t *s, bool *any);

/* Whether rows were ever written here without a log position (store_apply() with position 0,
 * a bulk load): a single node's store, or one that was once. A replica's rows all come from its
 * log. (Stores written before this was recorded say false: store_holds_rows() at position 0
 * tells those.) Returns: 0 and *out; a store error. */
int store_written_locally(store_t *s, bool *out);

/* Counts rows of one view version (tombstones are not rows; damaged records are), walking them
 * all: for the CLI and tests. Returns: 0, -ENOENT, -EIO. */
int store_count_rows(store_t *s, const catalog_view_t *v, size_t *rows);

/*
 * The content of every view version with a database, for comparing replicas: per view version
 * (in catalog order) a 64-bit hash over its records in key order, each the entity key, whether it
 * is a tombstone, its event time and its slots' value bytes, and never what differs between two
 * replicas of the same content (write times, LMDB's page layout). rows counts live rows,
 * tombstones the deleted ones. fn is called once per view version with what it found.
 * Returns: 0; fn's nonzero result (the walk stops); -EBADMSG (a damaged record), -ENOMEM.
 */
typedef int (*store_digest_fn)(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows,
                               size_t tombstones);
int store_digest(store_t *s, store_digest_fn fn, void *arg);

/*
 * Integrity: every record carries a checksum over its entity key and its bytes, checked on every
 * read (a damaged record reads as INVALID, never as a value). store_verify() walks every database
 * of the store (each view version's rows and history, the change feed, meta) in one read
 * snapshot, checking every record, and reports what it found per database: db_fn (NULL: not
 * called) once per database when its walk ends; fn (NULL: not called) per damaged record with
 * its entity key (valid for the call) and, in a history, the entry's event time (else 0); or key
 * NULL when LMDB itself refused to walk the rest of that database (a damaged page: db->error
 * says why). Opens the databases it walks: call it from a process of its own (fstore verify) or
 * before the writer runs, never while this process changes the catalog.
 * Returns: 0 (damage is reported, not an error); -EIO, -ENOMEM.
 */
typedef struct store_verify_db {
    const char *name;  /* "<view>@v<version>", "history <view>@v<version>", "changes", "meta" */
    const char *view;  /* the view's name, for a view's rows or history (else NULL) */
    uint32_t version;  /* and its version */
    uint64_t records;  /* records read */
    uint64_t damaged;  /* records whose checksum or layout is wrong */
    const char *error; /* NULL, or why the walk of this database stopped early */
} store_verify_db_t;
typedef void (*store_verify_fn)(void *arg, const store_verify_db_t *db, const uint8_t *key,
                                size_t key_len, int64_t event_ts_us);
typedef void (*store_verify_db_fn)(void *arg, const store_verify_db_t *db);
int store_verify(store_t *s, store_verify_fn fn, store_verify_db_fn db_fn, void *arg);

/* What a store error means to whoever runs fstore, for the errors this header gives a meaning of
 * its own (a damaged record, a store of another format, ...); strerror() for the others.
 * Returns a static string. */
const char *store_strerror(int rc);

/* Microseconds since the epoch, from CLOCK_REALTIME. */
int64_t store_now_us(void);

#endif /* STORAGE_STORE_H */
