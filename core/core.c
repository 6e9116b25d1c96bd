/* core/core.c - the serving instance: store, catalog (load, apply, swap), workers, requests. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

/*
 * The catalog is an atomically swapped snapshot (holder.c): a request pins it with two atomic
 * stores on its worker's own cache line, so a reload never makes a read wait, and an old
 * catalog is freed once every worker has moved past it. Loading and applying a catalog is the
 * same at start and on reload: load the YAML, plan it against the store, apply the safe changes
 * in one transaction, then swap; anything refused is logged with every reason and the old
 * catalog keeps serving.
 */

void core_options_init(core_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->sync = STORE_SYNC_FULL;
    o->limits = (core_limits_t){
        .max_message_bytes = CORE_DEFAULT_MAX_MESSAGE_BYTES,
        .max_response_bytes = CORE_DEFAULT_MAX_RESPONSE_BYTES,
        .max_entities = CORE_DEFAULT_MAX_ENTITIES,
        .max_features = CORE_DEFAULT_MAX_FEATURES,
        .max_write_rows = CORE_DEFAULT_MAX_WRITE_ROWS,
        .max_history_rows = CORE_DEFAULT_MAX_HISTORY_ROWS,
    };
    o->max_workers = 64;
    o->max_read_wait_ms = 5000;
    o->max_read_waiters = 16;
}

/* ------------------------------------------------------------------------------------------ */
/* Catalog: load, apply, swap                                                                  */

static void log_catalog_errors(const char *event, const char *path, int rc,
                               const catalog_errors_t *errs)
{
    json_t *arr = json_array();
    for (size_t i = 0; errs != NULL && i < errs->count && arr != NULL; i++) {
        const catalog_error_t *e = &errs->items[i];
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", e->file, "line",
                                             e->line, "column", e->column, "key", e->key, "message",
                                             e->message));
    }
    base_log(BASE_LOG_ERROR, event, "{s:s, s:s, s:o*}", "catalog", path, "error", strerror(-rc),
             "errors", arr);
}

static void log_breaking(const char *event, const char *path, const catalog_plan_t *plan)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < plan->count && arr != NULL; i++) {
        const catalog_change_t *ch = &plan->items[i];
        if (!ch->breaking)
            continue;
        json_array_append_new(arr,
                              json_pack("{s:s, s:s}", "object", ch->object, "detail", ch->detail));
    }
    base_log(BASE_LOG_ERROR, event, "{s:s, s:s, s:o*}", "catalog", path, "error",
             "breaking changes against the applied catalog (run fstore plan)", "breaking", arr);
}

/* Loads catalog_path and applies it to the store. Returns: 0 and *out, or a negative errno after
 * logging why under `event`. */
static int load_and_apply(core_t *c, const char *event, catalog_t **out)
{
    catalog_errors_t errs = {0};
    catalog_plan_t plan = {0};
    catalog_t *cat = NULL;
    int rc = catalog_load(c->catalog_path, &cat, &errs);
    if (rc < 0) {
        log_catalog_errors(event, c->catalog_path, rc, &errs);
        goto out;
    }
    rc = store_apply_catalog(c->store, cat, &plan);
    if (rc == -EPERM) {
        log_breaking(event, c->catalog_path, &plan);
        goto out;
    }
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, event, "{s:s, s:s}", "catalog", c->catalog_path, "error",
                 strerror(-rc));
        goto out;
    }
    base_log(BASE_LOG_INFO, "catalog_applied", "{s:s, s:s, s:s, s:I, s:I}", "catalog",
             c->catalog_path, "project", catalog_project(cat), "digest", catalog_digest(cat),
             "changes", (json_int_t)plan.count, "views", (json_int_t)catalog_view_count(cat));
    *out = cat;
    cat = NULL;
out:
    catalog_unref(cat);
    catalog_plan_clear(&plan);
    catalog_errors_clear(&errs);
    return rc;
}

static int open_catalog(core_t *c, bool quiet, catalog_t **out)
{
    if (c->catalog_path != NULL)
        return load_and_apply(c, "catalog_rejected", out);
    int rc = store_applied_catalog(c->store, out);
    if (quiet)
        return rc;
    if (rc == -ENOENT) {
        base_log(BASE_LOG_ERROR, "no_catalog", "{s:s, s:s}", "data_dir", c->data_dir, "error",
                 "no catalog applied to this data directory: pass --catalog");
    } else if (rc < 0) {
        base_log(BASE_LOG_ERROR, "no_catalog", "{s:s, s:s}", "data_dir", c->data_dir, "error",
                 strerror(-rc));
    }
    return rc;
}

/* Plans path's catalog against the one being served and publishes it to the log; every node
 * (this one included) applies it in its place there. */
static int reload_replicated(core_t *c)
{
    catalog_errors_t errs = {0};
    catalog_plan_t plan = {0};
    catalog_t *cat = NULL, *cur = core__holder_ref(&c->holder);
    char err[512] = "";
    uint64_t seq = 0;
    int rc = catalog_load(c->catalog_path, &cat, &errs);
    if (rc < 0) {
        log_catalog_errors("catalog_reload_rejected", c->catalog_path, rc, &errs);
        goto out;
    }
    rc = catalog_plan(cur, cat, &plan);
    if (rc == 0 && plan.n_breaking > 0) {
        log_breaking("catalog_reload_rejected", c->catalog_path, &plan);
        rc = -EPERM;
        goto out;
    }
    if (rc == 0)
        rc =
            repl_publish_catalog(c->repl, cat, atomic_load(&c->catalog_seq), &seq, err, sizeof err);
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "catalog_reload_rejected", "{s:s, s:s}", "catalog",
                 c->catalog_path, "error", err[0] ? err : strerror(-rc));
        goto out;
    }
    base_log(BASE_LOG_INFO, "catalog_reloaded", "{s:s, s:s, s:I}", "catalog", c->catalog_path,
             "digest", catalog_digest(cat), "sequence", (json_int_t)seq);
out:
    if (rc < 0)
        atomic_fetch_add(&c->reloads_rejected, 1);
    else
        atomic_fetch_add(&c->reloads_applied, 1);
    catalog_unref(cat);
    catalog_unref(cur);
    catalog_plan_clear(&plan);
    catalog_errors_clear(&errs);
    return rc;
}

int core_reload(core_t *c)
{
    if (c->repl != NULL)
        repl_reload_tls(c->repl); /* NATS's TLS files, checked by the replica's watchdog */
    if (c->repl != NULL && c->catalog_path != NULL)
        return reload_replicated(c);
    if (c->catalog_path == NULL) {
        base_log(BASE_LOG_WARN, "catalog_reload_rejected", "{s:s}", "error",
                 "no --catalog to reload from; the applied catalog keeps serving");
        atomic_fetch_add(&c->reloads_rejected, 1);
        return -ENOENT;
    }
    catalog_t *cat = NULL;
    int rc = load_and_apply(c, "catalog_reload_rejected", &cat);
    if (rc < 0) {
        atomic_fetch_add(&c->reloads_rejected, 1);
        return rc;
    }
    rc = core__holder_swap(&c->holder, cat);
    if (rc == 0)
        atomic_store(&c->catalog_time_us, store_now_us());
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "catalog_reload_rejected", "{s:s}", "error", "out of memory");
        atomic_fetch_add(&c->reloads_rejected, 1);
        return rc;
    }
    atomic_fetch_add(&c->reloads_applied, 1);
    base_log(BASE_LOG_INFO, "catalog_reloaded", "{s:s}", "catalog", c->catalog_path);
    return 0;
}

void core_reload_counts(const core_t *c, uint64_t *applied, uint64_t *rejected)
{
    core_t *m = (core_t *)c;
    *applied = atomic_load(&m->reloads_applied);
    *rejected = atomic_load(&m->reloads_rejected);
}

size_t core_collect(core_t *c)
{
    core__snapshot_reap(c, false);
    return core__holder_collect(&c->holder);
}

catalog_t *core_catalog_ref(core_t *c)
{
    return core__holder_ref(&c->holder);
}

/* ------------------------------------------------------------------------------------------ */
/* Replication: the log's catalog                                                              */

/* A catalog the replica applied from the log: served if it is the newest one seen. */
static void on_log_catalog(void *arg, catalog_t *cat, uint64_t seq)
{
    core_t *c = arg;
    if (seq < atomic_load(&c->catalog_seq) || core__holder_swap(&c->holder, cat) < 0) {
        catalog_unref(cat);
        return;
    }
    atomic_store(&c->catalog_seq, seq);
    atomic_store(&c->catalog_time_us, store_now_us());
}

/*
 * The catalog a replicated node starts with: the log's; or, on a log without one, the catalog
 * file, published (planned against this store's, which may have served alone before).
 */
static int open_replicated(core_t *c, const core_options_t *o, catalog_t **out)
{
    catalog_errors_t errs = {0};
    catalog_t *file = NULL, *applied = NULL, *logc = NULL;
    char err[512] = "";
    uint64_t seq = 0;
    int rc = 0;
    if (c->catalog_path != NULL) {
        rc = catalog_load(c->catalog_path, &file, &errs);
        if (rc < 0) {
            log_catalog_errors("catalog_rejected", c->catalog_path, rc, &errs);
            goto out;
        }
    }
    /* A replica holds only what the log holds: rows written here without one (a single node's,
     * an ingest into its directory) would be on this node alone, and its change feed numbered
     * apart from the log's. */
    uint64_t pos = 0;
    bool any = false;
    rc = store_last_position(c->store, &pos);
    /* Never followed a log: whatever rows it holds (an emptied directory is fine). Followed one:
     * written without it since (served alone). */
    if (rc == 0)
        rc = pos == 0 ? store_holds_rows(c->store, &any) : store_written_locally(c->store, &any);
    if (rc < 0)
        goto out;
    if (any) {
        base_log(BASE_LOG_ERROR, "replica_has_local_rows", "{s:s, s:s}", "data_dir", c->data_dir,
                 "error",
                 "this data directory holds rows written without the replication log: a replica "
                 "holds only what the log holds. Start it with an empty --data-dir (and "
                 "--bootstrap-from a ready peer), and load those rows through the log (fstore "
                 "ingest --replication)");
        rc = -EEXIST;
        goto out;
    }
    store_applied_catalog(c->store, &applied);
    const char *project = file != NULL      ? catalog_project(file)
                          : applied != NULL ? catalog_project(applied)
                                            : NULL;
    if (project == NULL) {
        base_log(BASE_LOG_ERROR, "no_catalog", "{s:s, s:s}", "data_dir", c->data_dir, "error",
                 "a first start with --replication needs --catalog (its project names the "
                 "stream)");
        rc = -ENOENT;
        goto out;
    }
    repl_options_t ro = *o->replication;
    ro.on_catalog = on_log_catalog;
    ro.on_catalog_arg = c;
    rc = repl_open(&ro, project, c->store, &c->repl, err, sizeof err);
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "replication_failed", "{s:s, s:s}", "urls",
                 o->replication->urls != NULL ? o->replication->urls : "", "error", err);
        goto out;
    }
    rc = repl_log_catalog(c->repl, &logc, &seq, err, sizeof err);
    if (rc == -ENOENT && file != NULL) {
        catalog_plan_t plan = {0};
        rc = store_plan_catalog(c->store, file, &plan);
        if (rc == 0 && plan.n_breaking > 0) {
            log_breaking("catalog_rejected", c->catalog_path, &plan);
            rc = -EPERM;
        }
        catalog_plan_clear(&plan);
        if (rc == 0)
            rc = repl_publish_catalog(c->repl, file, 0, &seq, err, sizeof err);
        if (rc == 0) {
            *out = file;
            file = NULL;
            atomic_store(&c->catalog_seq, seq);
            goto out;
        }
        if (rc == -ESTALE) /* another node published first: take the log's */
            rc = repl_log_catalog(c->repl, &logc, &seq, err, sizeof err);
    }
    if (rc == -ENOENT) {
        base_log(BASE_LOG_ERROR, "no_catalog", "{s:s, s:s}", "stream", repl_stream(c->repl),
                 "error", "the log holds no catalog yet: give --catalog");
        goto out;
    }
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "replication_failed", "{s:s, s:s}", "stream", repl_stream(c->repl),
                 "error", err[0] ? err : strerror(-rc));
        goto out;
    }
    if (file != NULL && strcmp(catalog_digest(file), catalog_digest(logc)) != 0)
        base_log(BASE_LOG_WARN, "catalog_from_log", "{s:s, s:s, s:s, s:I, s:s}", "catalog",
                 c->catalog_path, "file_digest", catalog_digest(file), "log_digest",
                 catalog_digest(logc), "sequence", (json_int_t)seq, "note",
                 "the catalog file differs from the replication log's: the log's is served; "
                 "change it with fstore apply --replication (or SIGHUP after editing the file)");
    atomic_store(&c->catalog_seq, seq);
    *out = logc;
    logc = NULL;
out:
    catalog_unref(file);
    catalog_unref(applied);
    catalog_unref(logc);
    catalog_errors_clear(&errs);
    return rc;
}

repl_t *core_repl(core_t *c)
{
    return c->repl;
}

int core__wait_min_seq(core_ctx_t *ctx)
{
    core_t *c = ctx->core;
    if (c->repl == NULL)
        return core_fail(ctx, -EBUSY,
                         "fstore-min-seq %llu: this server does not replicate (started without "
                         "--replication), so there is no sequence to wait for",
                         (unsigned long long)ctx->min_seq);
    int64_t now = base_mono_us();
    if (repl_wait(c->repl, ctx->min_seq, now) == 0)
        return 0;
    size_t waiting = atomic_load(&c->read_waiters);
    do {
        if (waiting >= c->max_read_waiters)
            break;
    } while (!atomic_compare_exchange_weak(&c->read_waiters, &waiting, waiting + 1));
    if (waiting >= c->max_read_waiters) {
        return core_fail(ctx, -EAGAIN,
                         "replica behind: sequence %llu is not applied here yet and %zu reads "
                         "are already waiting (--max-read-waiters)",
                         (unsigned long long)ctx->min_seq, c->max_read_waiters);
    }
    int64_t deadline = now + c->max_read_wait_ms * 1000;
    if (ctx->deadline_us > 0 && ctx->deadline_us < deadline)
        deadline = ctx->deadline_us;
    int rc = repl_wait(c->repl, ctx->min_seq, deadline);
    atomic_fetch_sub(&c->read_waiters, 1);
    if (rc == 0)
        return 0;
    repl_status_t st;
    repl_status(c->repl, &st);
    if (rc == -ETIMEDOUT)
        return core_fail(ctx, -EAGAIN,
                         "replica behind: it applied sequence %llu, the read needs %llu "
                         "(waited %lld ms)",
                         (unsigned long long)st.applied, (unsigned long long)ctx->min_seq,
                         (long long)((base_mono_us() - now) / 1000));
    return core_fail(ctx, -EAGAIN,
                     "replica behind: it applied sequence %llu, the read needs %llu, and it "
                     "cannot catch up (%s%s%s)",
                     (unsigned long long)st.applied, (unsigned long long)ctx->min_seq,
                     repl_state_name(st.state), st.last_error[0] ? ": " : "", st.last_error);
}

/* ------------------------------------------------------------------------------------------ */
/* The instance                                                                                */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int core_open(const core_options_t *o, core_t **out)
{
    int rc = 0;
    catalog_t *cat = NULL;
    core_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    pthread_mutex_init(&c->pins_mu, NULL);
    pthread_mutex_init(&c->snap_mu, NULL);
    pthread_mutex_init(&c->rejected_mu, NULL);
    atomic_init(&c->catalog_time_us, store_now_us());
    c->snap_fd = -1;
    atomic_init(&c->health, CORE_NOT_SERVING);
    c->limits = o->limits;
    if (c->limits.max_message_bytes > (size_t)INT32_MAX)
        c->limits.max_message_bytes = INT32_MAX;
    if (c->limits.max_response_bytes > (size_t)INT32_MAX)
        c->limits.max_response_bytes = INT32_MAX;
    if (c->limits.max_history_rows == 0)
        c->limits.max_history_rows = CORE_DEFAULT_MAX_HISTORY_ROWS;
    c->data_dir = dup_or_null(o->data_dir);
    c->catalog_path = dup_or_null(o->catalog_path);
    if ((o->data_dir != NULL && c->data_dir == NULL) ||
        (o->catalog_path != NULL && c->catalog_path == NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    if (c->data_dir == NULL) {
        if (!o->quiet)
            base_log(BASE_LOG_ERROR, "bad_options", "{s:s}", "error", "--data-dir is required");
        rc = -EINVAL;
        goto out;
    }
    size_t n_pins = o->max_workers == 0 ? 1 : o->max_workers;
    c->pin_used = calloc(n_pins, sizeof *c->pin_used);
    c->workers = calloc(n_pins, sizeof *c->workers);
    if (c->pin_used == NULL || c->workers == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    c->max_read_wait_ms = o->max_read_wait_ms > 0 ? o->max_read_wait_ms : 5000;
    c->max_read_waiters = o->max_read_waiters > 0 ? o->max_read_waiters : 16;
    c->max_future_skew_s = o->max_future_skew_s;
    c->tombstone_retention_s =
        o->tombstone_retention_s > 0 ? o->tombstone_retention_s : STORE_TOMBSTONE_RETENTION_S;
    bool replicated = o->replication != NULL && !o->read_only;
    store_options_t so = {.dir = c->data_dir,
                          .sync = replicated ? STORE_SYNC_LOG : o->sync,
                          .history = o->history,
                          .read_only = o->read_only,
                          .log_contiguous = replicated,
                          .tombstone_retention_s = o->tombstone_retention_s,
                          .max_future_skew_s = o->max_future_skew_s};
    rc = store_open(&so, &c->store);
    if (rc < 0) {
        if (!o->quiet)
            base_log(BASE_LOG_ERROR, "store_open_failed", "{s:s, s:s}", "data_dir", c->data_dir,
                     "error", store_strerror(rc));
        goto out;
    }
    rc = replicated ? open_replicated(c, o, &cat) : open_catalog(c, o->quiet, &cat);
    if (rc < 0)
        goto out;
    rc = core__holder_init(&c->holder, cat, n_pins);
    if (rc < 0)
        goto out;
    cat = NULL;
    c->holder_ready = true;
    if (replicated) {
        rc = repl_start(c->repl);
        if (rc < 0) {
            base_log(BASE_LOG_ERROR, "replication_failed", "{s:s, s:s}", "stream",
                     repl_stream(c->repl), "error", "the stream's state could not be read");
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    catalog_unref(cat);
    core_close(c);
    return rc;
}

void core_close(core_t *c)
{
    if (c == NULL)
        return;
    core__snapshot_reap(c, true);
    pthread_mutex_destroy(&c->snap_mu);
    core__metrics_free(c);
    pthread_mutex_destroy(&c->rejected_mu);
    free(c->workers);
    /* The replica applies into the store and swaps catalogs: it goes first. */
    repl_close(c->repl);
    if (c->holder_ready)
        core__holder_destroy(&c->holder);
    store_close(c->store);
    pthread_mutex_destroy(&c->pins_mu);
    free(c->pin_used);
    free(c->data_dir);
    free(c->catalog_path);
    free(c);
}

store_t *core_store(core_t *c)
{
    return c->store;
}

const char *core_data_dir(const core_t *c)
{
    return c->data_dir;
}

const core_limits_t *core_limits(const core_t *c)
{
    return &c->limits;
}

core_health_t core_health(const core_t *c)
{
    core_t *m = (core_t *)c;
    core_health_t h = (core_health_t)atomic_load(&m->health);
    if (h == CORE_SERVING && m->repl != NULL) {
        repl_status_t st;
        repl_status(m->repl, &st);
        if (st.state != REPL_READY)
            h = CORE_NOT_SERVING;
    }
    return h;
}

core_health_t core_live(const core_t *c)
{
    return (core_health_t)atomic_load(&((core_t *)c)->health);
}

void core_set_health(core_t *c, core_health_t h)
{
    if (h == CORE_SERVING)
        atomic_store(&c->served, true);
    atomic_store(&c->health, (int)h);
}

/* ------------------------------------------------------------------------------------------ */
/* Workers                                                                                     */

int core_worker_new(core_t *c, unsigned flags, core_names_fn names, core_worker_t **out)
{
    core_worker_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->core = c;
    w->names = names;
    pthread_mutex_lock(&c->pins_mu);
    size_t pin = 0;
    while (pin < c->holder.n_pins && c->pin_used[pin])
        pin++;
    if (pin < c->holder.n_pins) {
        c->pin_used[pin] = true;
        c->workers[pin] = w;
    }
    pthread_mutex_unlock(&c->pins_mu);
    if (pin == c->holder.n_pins) {
        free(w);
        return -EMFILE;
    }
    w->pin = pin;
    int rc = 0;
    if (flags & CORE_WORKER_READS) {
        rc = store_reader_new(c->store, &w->reader);
        if (rc == 0 && !(flags & CORE_WORKER_NO_CACHE) &&
            (core__ref_cache_new(&w->ref_cache) < 0 ||
             core__predict_cache_new(&w->predict_cache) < 0))
            rc = -ENOMEM;
    }
    if (rc < 0) {
        core_worker_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void core_worker_free(core_worker_t *w)
{
    if (w == NULL)
        return;
    store_reader_free(w->reader);
    core__ref_cache_free(w->ref_cache);
    core__predict_cache_free(w->predict_cache);
    pthread_mutex_lock(&w->core->pins_mu);
    w->core->pin_used[w->pin] = false;
    if (w->core->workers[w->pin] == w)
        w->core->workers[w->pin] = NULL;
    pthread_mutex_unlock(&w->core->pins_mu);
    free(w);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

void core_ctx_begin(core_ctx_t *ctx, core_worker_t *w, base_arena_t *arena)
{
    core_t *c = w->core;
    ctx->core = c;
    ctx->worker = w;
    ctx->arena = arena;
    ctx->principal = NULL;
    ctx->grants = NULL;
    ctx->grant_scope = 0;
    ctx->limits = &c->limits;
    ctx->reading = false;
    ctx->request_id = NULL;
    ctx->min_seq = 0;
    ctx->msg[0] = '\0';
    ctx->catalog = core__holder_enter(&c->holder, w->pin);
}

void core_ctx_end(core_ctx_t *ctx)
{
    core_read_end(ctx);
    if (ctx->worker != NULL)
        core__holder_exit(&ctx->core->holder, ctx->worker->pin);
    ctx->catalog = NULL;
}

int core_fail(core_ctx_t *ctx, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    return err;
}
