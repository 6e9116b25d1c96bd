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
    };
    o->max_workers = 64;
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

int core_reload(core_t *c)
{
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
    return core__holder_collect(&c->holder);
}

catalog_t *core_catalog_ref(core_t *c)
{
    return core__holder_ref(&c->holder);
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
    atomic_init(&c->health, CORE_NOT_SERVING);
    c->limits = o->limits;
    if (c->limits.max_message_bytes > (size_t)INT32_MAX)
        c->limits.max_message_bytes = INT32_MAX;
    if (c->limits.max_response_bytes > (size_t)INT32_MAX)
        c->limits.max_response_bytes = INT32_MAX;
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
    if (c->pin_used == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    store_options_t so = {.dir = c->data_dir, .sync = o->sync, .read_only = o->read_only};
    rc = store_open(&so, &c->store);
    if (rc < 0) {
        if (!o->quiet)
            base_log(BASE_LOG_ERROR, "store_open_failed", "{s:s, s:s}", "data_dir", c->data_dir,
                     "error", strerror(-rc));
        goto out;
    }
    rc = open_catalog(c, o->quiet, &cat);
    if (rc < 0)
        goto out;
    rc = core__holder_init(&c->holder, cat, n_pins);
    if (rc < 0)
        goto out;
    cat = NULL;
    c->holder_ready = true;
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
    return (core_health_t)atomic_load(&((core_t *)c)->health);
}

void core_set_health(core_t *c, core_health_t h)
{
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
    if (pin < c->holder.n_pins)
        c->pin_used[pin] = true;
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
    ctx->limits = &c->limits;
    ctx->reading = false;
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
