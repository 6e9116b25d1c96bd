/* core/core_int.h - shared inside core/: the catalog holder, the instance, workers, caches. */
#ifndef CORE_CORE_INT_H
#define CORE_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "core/core.h"

/* ------------------------------------------------------------------------------------------ */
/* Catalog holder: the current catalog, swapped atomically, pinned without locks.              */

/* One reader slot, on its own cache line: 0 when the thread is outside a request, else the
 * global epoch it saw when it entered. */
typedef struct core__pin {
    _Alignas(64) _Atomic uint64_t active;
} core__pin_t;

typedef struct core__retired core__retired_t;

typedef struct core__holder {
    _Atomic(catalog_t *) current;
    _Atomic uint64_t epoch;
    core__pin_t *pins;
    size_t n_pins;
    pthread_mutex_t write_lock; /* swap and collect only; readers never take it */
    core__retired_t *retired;   /* old catalogs waiting for readers to move on */
} core__holder_t;

/* On success takes ownership of initial (one reference); on -ENOMEM the caller keeps it.
 * Returns: 0, -ENOMEM. */
int core__holder_init(core__holder_t *h, catalog_t *initial, size_t n_pins);
/* Unrefs the current and every retired catalog. Every reader must have exited. */
void core__holder_destroy(core__holder_t *h);
/*
 * Enters a read-side critical section on pin slot `pin` (one slot per thread) and returns the
 * current catalog, valid until core__holder_exit(). Lock-free: two atomic stores and loads.
 */
const catalog_t *core__holder_enter(core__holder_t *h, size_t pin);
void core__holder_exit(core__holder_t *h, size_t pin);
/* A new reference to the current catalog, for threads without a pin (the control thread). */
catalog_t *core__holder_ref(core__holder_t *h);
/* Publishes next (takes its reference) and retires the old catalog. Returns: 0, -ENOMEM (next
 * is then released and the old catalog stays). */
int core__holder_swap(core__holder_t *h, catalog_t *next);
/* Frees retired catalogs no reader can still see. Returns: how many are still waiting. */
size_t core__holder_collect(core__holder_t *h);

/* ------------------------------------------------------------------------------------------ */
/* The instance and its workers                                                                */

struct core {
    char *data_dir;
    char *catalog_path;
    core_limits_t limits;
    store_t *store;
    core__holder_t holder;
    bool holder_ready;
    pthread_mutex_t pins_mu; /* which pin slots workers hold */
    bool *pin_used;          /* [holder.n_pins] */
    _Atomic int health;
    _Atomic bool served;     /* health was SERVING once: NOT_SERVING after it means draining */
    _Atomic bool gc_running; /* core_gc(): one sweep per node at a time */
    _Atomic uint64_t reloads_applied;
    _Atomic uint64_t reloads_rejected;
    /* Replication (NULL: one node). */
    repl_t *repl;
    _Atomic uint64_t catalog_seq; /* the log's sequence of the catalog being served */
    int64_t max_read_wait_ms;
    size_t max_read_waiters;
    int64_t max_future_skew_s;     /* --max-future-skew, for writes validated before the log */
    int64_t tombstone_retention_s; /* --tombstone-retention, for sweeps through the log */
    _Atomic size_t read_waiters;
    /* Metrics (metrics.c). */
    core_worker_t **workers;         /* [holder.n_pins], under pins_mu */
    _Atomic int64_t catalog_time_us; /* when the catalog being served was swapped in */
    pthread_mutex_t rejected_mu;
    struct core__rejected *rejected; /* writes refused, per view version */
    /* The snapshot being handed out (snapshot.c). */
    pthread_mutex_t snap_mu;
    char snap_id[17]; /* "" = none */
    char snap_dir[4096];
    int snap_fd;
    uint64_t snap_size;
    int64_t snap_used_us;
};

/* Counts rows read from view v by request ctx (metrics); an on-demand view counts nothing. */
void core__count_reads(core_ctx_t *ctx, const catalog_view_t *v, size_t rows);
/* Counts a write refused for view v (metrics). */
void core__count_rejected(core_t *c, const catalog_view_t *v, size_t rows);
/* Frees the metrics' tables at close. */
void core__metrics_free(core_t *c);

/* Removes an idle snapshot (all: any snapshot, at close). */
void core__snapshot_reap(core_t *c, bool all);

/* Waits for ctx->min_seq to be applied here (fstore-min-seq), bounded by the request's deadline,
 * --max-read-wait and --max-read-waiters. Returns: 0; -EAGAIN (behind, or too many waiting),
 * -EBUSY (no replication) with the message set. */
int core__wait_min_seq(core_ctx_t *ctx);

/* Opens the worker's store snapshot for ctx (ctx->reading, closed by core_read_end()).
 * Returns: 0, or the store's error with the message set (-EAGAIN: no free reader slot). */
int core__snapshot_begin(core_ctx_t *ctx);

typedef struct core__ref_cache core__ref_cache_t;
typedef struct core__predict_cache core__predict_cache_t;

/* Rows read per view id of stats_cat (metrics; summed on a scrape). */
#define CORE_STATS_VIEWS 1024

struct core_worker {
    core_t *core;
    size_t pin;
    const catalog_t *stats_cat; /* the catalog whose view ids `reads` counts by */
    _Atomic uint64_t reads[CORE_STATS_VIEWS];
    store_reader_t *reader;               /* CORE_WORKER_READS */
    core__ref_cache_t *ref_cache;         /* CORE_WORKER_READS: resolved feature lists */
    core__predict_cache_t *predict_cache; /* CORE_WORKER_READS: Predict's output names */
    core_names_fn names;
};

/* ------------------------------------------------------------------------------------------ */
/* Per-worker caches' table (slots.c): what the feature-list and output-name caches share.     */

#define CORE__SLOTS 64u

/*
 * 64 direct-mapped slots of malloc'd entries, all built against one catalog, whose reference
 * the table holds: that is what makes comparing catalog pointers sound (the address cannot be
 * reused by another catalog while the table remembers it). Meeting another catalog empties it,
 * so after a reload a worker keeps the old catalog alive until its next request of that kind:
 * memory only, nothing waits for it. Thread safety: none; one table per worker thread.
 */
typedef struct core__slots {
    catalog_t *catalog; /* referenced; NULL when empty */
    void *slot[CORE__SLOTS];
} core__slots_t;

/* Empties t when cat is not its catalog, and then holds a reference to cat. */
void core__slots_use(core__slots_t *t, const catalog_t *cat);
/* Puts e (malloc'd; the table owns it now) into slot i, freeing what was there. */
void core__slots_put(core__slots_t *t, size_t i, void *e);
/* Frees every entry and drops the catalog. */
void core__slots_clear(core__slots_t *t);

/* Rounds n up for the next array laid out in one malloc'd block. */
static inline size_t core__align_up(size_t n)
{
    return (n + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Resolved feature lists, and the per-worker cache of them (ref_cache.c).                     */

/* Cache flags: which kind of list the key bytes are, and the naming option. */
#define CORE__LIST_SERVICE 1u
#define CORE__LIST_FEATURES 2u
#define CORE__LIST_FULL_NAMES 4u

/* Builds r->set over r->names in the arena and sets r->unique. Returns: 0, -ENOMEM. */
int core__resolved_index_names(base_arena_t *a, core_resolved_t *r);
/* Returns: whether one of r's names equals name (r->set must be built). */
bool core__resolved_has_name(const core_resolved_t *r, const char *name);

/*
 * A cache of resolved feature lists for one thread, keyed by the catalog, flags (the kind of
 * list and the naming options) and key_len bytes from the request that name the list (the
 * caller sees to it that one list has one key: a feature list's canonical encoding, a service's
 * name). Holds a reference to the catalog of its entries; meeting another catalog empties it.
 * Thread safety: none; one cache per worker thread.
 */
/* Returns: 0, -ENOMEM. Ownership: *out is the caller's (core__ref_cache_free()). */
int core__ref_cache_new(core__ref_cache_t **out);
/* Frees the entries and drops the catalog reference. Accepts NULL. */
void core__ref_cache_free(core__ref_cache_t *rc);
/* Returns: the cached resolution (valid until the next put or a call with another catalog), or
 * NULL. rc may be NULL (no cache). */
const core_resolved_t *core__ref_cache_get(core__ref_cache_t *rc, const catalog_t *cat,
                                           unsigned flags, const uint8_t *key, size_t key_len);
/* Copies r (which must be unique, else nothing happens) into the cache. Out of memory is not an
 * error: the list is just not remembered. rc may be NULL. */
void core__ref_cache_put(core__ref_cache_t *rc, const catalog_t *cat, unsigned flags,
                         const uint8_t *key, size_t key_len, const core_resolved_t *r);
/* For tests: keeps only the bits of mask of every key's hash, so that keys can be made to
 * collide (mask 0: all of them share one hash and one slot). */
void core__ref_cache_hash_mask(core__ref_cache_t *rc, uint64_t mask);

/*
 * On-demand groups of a read (on_demand.c), in two steps. First, before anything is read, the
 * plan: which inputs the requested features read, and their request fields taken from request
 * (else from an entity column of the same name, as Feast's SDK sends them) and converted.
 * Returns: 0 and *out (in a); -EINVAL with err naming a missing or mistyped field, or one of
 * another length; -ENOMEM.
 */
typedef struct core__od_plan core__od_plan_t;
int core__on_demand_plan(base_arena_t *a, const core_ref_groups_t *gs, const core_columns_t *ents,
                         const core_columns_t *request, core__od_plan_t **out, char *err,
                         size_t err_cap);
/*
 * Then, once the stored groups' cells are read: inputs no stored group of the read has read
 * are read in the same store snapshot (r), and each row's features computed into cells. What
 * the computation holds (decoded list inputs, encoded values) is bounded by max_bytes (0: none).
 * as_of (NULL: none): a point-in-time read, row r as of as_of[r] (its inputs from the history,
 * and now() in expressions is as_of[r]).
 * Returns: 0; -EMSGSIZE (over max_bytes), -EINVAL (a key error of a source) with err; -ENOMEM;
 * -EIO.
 */
int core__on_demand(store_reader_t *r, base_arena_t *a, const core_ref_groups_t *gs,
                    const core_columns_t *ents, const core__od_plan_t *plan, int64_t now_us,
                    const int64_t *as_of, size_t max_bytes, core_cell_t *cells, char *err,
                    size_t err_cap);

/* ------------------------------------------------------------------------------------------ */
/* Predict: output names (predict_outputs.c), tensors from cells (tensor.c).                   */

/* Computes svc's outputs into *out, everything in the arena. Returns: 0, -ENOMEM. */
int core__outputs_build(base_arena_t *a, const catalog_service_t *svc, core_outputs_t *out);
/* Returns: the index of the output called name (the first, should two share it), or -1. */
long core__outputs_find(const core_outputs_t *o, const char *name, size_t len);

/*
 * A cache of outputs for one thread, keyed by the catalog and the service. Holds a reference to
 * the catalog of its entries; meeting another catalog empties it. So after a reload a worker
 * keeps the old catalog alive until its next Predict (or until freed), as the feature-list cache
 * does until its next read: memory only, nothing waits for it. Thread safety: none; one cache
 * per read worker.
 */
/* Returns: 0, -ENOMEM. Ownership: *out is the caller's (core__predict_cache_free()). */
int core__predict_cache_new(core__predict_cache_t **out);
/* Frees the entries and drops the catalog reference. Accepts NULL. */
void core__predict_cache_free(core__predict_cache_t *pc);
/*
 * The outputs of svc (a service of cat), from pc or built (then remembered in pc, if it can
 * grow). pc may be NULL (no cache: built every time). a holds what is built for this call.
 * Returns: 0 and *out, borrowed until the next call on pc or the reset of a; -ENOMEM.
 */
int core__outputs_get(core__predict_cache_t *pc, base_arena_t *a, const catalog_t *cat,
                      const catalog_service_t *svc, const core_outputs_t **out);

/*
 * Builds the tensor of feature f over n_rows entity rows from its cells: shape [n_rows] for
 * scalars, [n_rows, width] for lists, every row's list the same width. A row without a value
 * (NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE or a null) takes f's default, else zeros when
 * zero_missing, else fails.
 * Returns: 0 and *out; -ENOENT (a row with no value and no default), -EINVAL (lists of different
 *          lengths across the batch, a type with no tensor form) and -EIO (a stored value that
 *          does not decode as f's type), each with *bad_row and the reason in why; -ENOMEM.
 */
int core__tensor_from_cells(const catalog_feature_t *f, const core_cell_t *cells, size_t n_rows,
                            bool zero_missing, base_arena_t *a, core_tensor_t *out, size_t *bad_row,
                            char *why, size_t why_cap);

/* ------------------------------------------------------------------------------------------ */
/* Limited scopes (auth.c): the resources a call meets, against what its principal was granted */

/* Each returns 0 when the call holds its scope whole (ctx->grants NULL) or the resource is
 * granted; else -EPERM with the message naming the principal and the resource. */
int core__allow_view(core_ctx_t *ctx, unsigned scope, const catalog_view_t *v);
/* A read's list: its service when granted, else every view it reads. */
int core__allow_read(core_ctx_t *ctx, const core_feature_list_t *list, const core_resolved_t *res);
/* rc, but for a principal with a limited scope a -ENOENT (an unknown view, feature, service or
 * model, whose message would list what the catalog has) becomes -EPERM saying neither. */
int core__unknown(core_ctx_t *ctx, int rc);

/* ------------------------------------------------------------------------------------------ */
/* Bearer JWTs (jwt.c), for core_authorize()                                                   */

#define CORE_JWT_MAX 8192    /* bytes of a token: a longer one is refused before decoding */
#define CORE_JWT_LEEWAY_S 60 /* clock skew allowed on exp, nbf and iat */
#define CORE_JWT_SUB_MAX 256 /* a subject's characters, with its terminator */

/* The signing keys of a JWKS file. */
typedef struct core__jwks core__jwks_t;
/* Reads a JWKS file's RSA and EC signing keys (others, and "use": "enc" keys, are passed over).
 * Returns: 0 and *out (free with core__jwks_free()); -EINVAL (not a JWKS, a key that is not
 * usable, two with one kid, none at all) or the read's -errno, with why. */
int core__jwks_load(const char *path, core__jwks_t **out, char *why, size_t cap);
/* As core__jwks_load(), from len bytes of text (path names it in messages). */
int core__jwks_parse(const char *text, size_t len, const char *path, core__jwks_t **out, char *why,
                     size_t cap);
void core__jwks_free(core__jwks_t *ks);
/* Checks a compact JWT's header, signature (a key of ks) and claims (exp, nbf, iat at now_s;
 * iss equal to issuer; aud holding audience) as jwt.c's comment sets out.
 * Returns: 0 with its subject in sub and *exp_s (its expiry, leeway included); -EKEYREJECTED
 * with why (never quoting the token). */
int core__jwt_verify(const core__jwks_t *ks, const char *token, const char *issuer,
                     const char *audience, int64_t now_s, char *sub, size_t sub_cap, int64_t *exp_s,
                     char *why, size_t cap);

#endif /* CORE_CORE_INT_H */
