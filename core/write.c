/* core/write.c - a write's columns -> one store batch, for upserts and deletes alike. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Writes are column-wise like reads: the request's columns become the store's batch without
 * copying values (catalog_value_t views into the decoded request). The store validates and
 * encodes every value in the caller's thread, then applies the batch in its writer thread with
 * group commit; here we check the shape against the view and turn the store's verdict into a
 * message a client can act on. The caller does not wait: the writer completes the write after
 * the fsync, so a transport's thread takes the next write at once and the writes in flight share
 * one commit.
 */

/* What the completion needs, in the request's arena (the catalog is not pinned by then). */
typedef struct write_ctx {
    core_ctx_t *ctx;
    core_write_done_fn done;
    void *arg;
    char view[CATALOG_MAX_NAME + 1];
    unsigned version;
    size_t n_rows;
    const char *principal; /* the authenticated caller (NULL: no tokens file) */
    bool is_delete;
} write_ctx_t;

/* With a tokens file, every write and delete leaves an audit line: who, what, how many rows,
 * and how it ended. Never a value. */
static void audit(const write_ctx_t *w, int rc, size_t written)
{
    if (w->principal == NULL)
        return;
    base_log(BASE_LOG_INFO, "audit", "{s:s, s:s, s:s, s:i, s:I, s:I, s:s}", "principal",
             w->principal, "op", w->is_delete ? "delete" : "write", "view", w->view, "version",
             (int)w->version, "rows", (long long)w->n_rows, "written", (long long)written, "result",
             rc < 0 ? strerror(-rc) : "ok");
}

static bool is_join_key(const catalog_view_t *v, const char *name);

/* The message for a store error other than a refused value. Returns: rc. */
static int fail_store(core_ctx_t *ctx, int rc, const char *view, unsigned version)
{
    if (rc == -ENOENT)
        return core_fail(ctx, rc,
                         "feature view '%s@v%u' has no data in this store (not applied, or "
                         "torn down)",
                         view, version);
    if (rc == -ESHUTDOWN)
        return core_fail(ctx, rc, "the store is shutting down");
    if (rc == -ENOSPC)
        return core_fail(ctx, rc,
                         "disk full: the data directory %s has no space left (nothing of this "
                         "write was stored; writes resume once space is freed)",
                         core_data_dir(ctx->core));
    if (rc == -EFBIG)
        return core_fail(ctx, rc,
                         "the store's map is at its largest size (data directory %s): delete "
                         "rows (fstore gc) or rebuild the store",
                         core_data_dir(ctx->core));
    return core_fail(ctx, rc, "write failed: %s", strerror(-rc));
}

/* The store's verdict, on the writer thread. */
static void apply_done(void *arg, int rc, const store_apply_result_t *res)
{
    write_ctx_t *w = arg;
    if (rc < 0)
        fail_store(w->ctx, rc, w->view, w->version);
    core_write_result_t out = {.written = res->written, .stale = res->stale};
    audit(w, rc, out.written);
    w->done(w->arg, rc, &out);
}

/* The log's verdict (and this node's apply), on a replication thread or the writer. */
static void publish_done(void *arg, int rc, const repl_result_t *res, const char *msg)
{
    write_ctx_t *w = arg;
    if (rc < 0)
        core_fail(w->ctx, rc, "%s", msg != NULL ? msg : strerror(-rc));
    /* Not applied here in time: the log has every row; what was stale is not known. */
    core_write_result_t out = {.written = res->applied ? res->written : w->n_rows,
                               .stale = res->applied ? res->stale : 0,
                               .sequence = res->seq};
    audit(w, rc, out.written);
    w->done(w->arg, rc, &out);
}

/* The refusal of a value, as the store words it. Returns: rc. */
static int fail_value(core_ctx_t *ctx, const catalog_view_t *v, int rc,
                      const store_apply_result_t *res)
{
    const char *what = is_join_key(v, res->bad_field) ? "join key" : "feature";
    if (res->bad_field[0] == '\0')
        return core_fail(ctx, rc, "row %zu: %s", res->bad_row, res->error);
    return core_fail(ctx, rc, "row %zu, %s '%s': %s", res->bad_row, what, res->bad_field,
                     res->error);
}

/* Replicated: validated exactly as the store would, then published to the log. */
static int publish(core_ctx_t *ctx, const store_batch_t *batches, size_t n, write_ctx_t *w)
{
    store_wire_t *wire = NULL;
    store_apply_result_t res;
    int rc = store_wire_begin(NULL, ctx->core->max_future_skew_s, batches, n, &wire, &res);
    if (rc < 0)
        audit(w, rc, 0);
    if (rc == -EINVAL) {
        const catalog_view_t *bad = batches[res.bad_batch < n ? res.bad_batch : 0].view;
        core__count_rejected(ctx->core, bad, w->n_rows);
        return fail_value(ctx, bad, rc, &res);
    }
    if (rc < 0)
        return fail_store(ctx, rc, w->view, w->version);
    char err[CORE_MSG_MAX];
    rc = repl_publish(ctx->core->repl, wire, ctx->request_id, ctx->deadline_us, publish_done, w,
                      err, sizeof err);
    store_wire_end(wire);
    if (rc == 0)
        return CORE_ASYNC;
    audit(w, rc, 0);
    if (rc == -EINVAL)
        return core_fail(ctx, rc, "fstore-request-id: %s", err);
    return core_fail(ctx, rc, "%s", err);
}

static int find_feature(const catalog_view_t *v, const char *name)
{
    for (size_t i = 0; i < v->n_features; i++) {
        if (strcmp(v->features[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static bool is_join_key(const catalog_view_t *v, const char *name)
{
    for (size_t k = 0; k < v->n_join_keys; k++) {
        if (strcmp(v->join_keys[k].name, name) == 0)
            return true;
    }
    return false;
}

int core_find_view(core_ctx_t *ctx, const char *view_ref, const catalog_view_t **out)
{
    int rc = catalog_find_view_ref(ctx->catalog, view_ref, out);
    if (rc == -ENOENT) {
        char help[512];
        catalog_describe_missing(ctx->catalog, CATALOG_NAME_VIEW, NULL, view_ref, help,
                                 sizeof help);
        return core__unknown(
            ctx, core_fail(ctx, -ENOENT, "feature view '%.200s' not found%s", view_ref, help));
    }
    if (rc < 0)
        return core_fail(ctx, -EINVAL,
                         "malformed feature view reference '%.200s' (want name or name@vN)",
                         view_ref);
    return 0;
}

int core_write_view(core_ctx_t *ctx, const char *view_ref, const catalog_view_t **out,
                    core_columns_limits_t *lim)
{
    const catalog_view_t *v = NULL;
    int rc = core_find_view(ctx, view_ref, &v);
    if (rc == 0)
        rc = core__allow_view(ctx, CORE_SCOPE_WRITE, v);
    if (rc < 0)
        return rc;
    if (v->on_demand != NULL)
        return core_fail(ctx, -EINVAL,
                         "'%s@v%u' is an on-demand feature view: its features are computed at "
                         "read time; write to its sources instead",
                         v->name, (unsigned)v->version);
    if (!v->online)
        return core_fail(ctx, -EINVAL, "feature view '%s@v%u' is not online", v->name,
                         (unsigned)v->version);
    /* More columns than the view has join keys and features means some are unknown or
     * repeated: such a request is refused before its values are converted. (A delete takes
     * fewer, but a column too many is better told apart later, by name.) */
    char *why = base_arena_alloc(ctx->arena, CATALOG_MAX_NAME + 64);
    if (why == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    snprintf(why, CATALOG_MAX_NAME + 64, "the join keys and features of feature view '%s@v%u'",
             v->name, (unsigned)v->version);
    *lim = (core_columns_limits_t){v->n_join_keys + v->n_features, why, ctx->limits->max_write_rows,
                                   "--max-write-rows"};
    *out = v;
    return 0;
}

/* One view's columns as a store batch (the checks of core_write()). Returns: 0 (an empty batch
 * when there are no rows), or a negative errno with the message set. */
static int build_batch(core_ctx_t *ctx, const catalog_view_t *v, const core_columns_t *cols,
                       const int64_t *event_ts_us, size_t n_ts, store_op_t op, store_batch_t *batch)
{
    base_arena_t *a = ctx->arena;
    if (cols->n_cols == 0)
        return core_fail(ctx, -EINVAL, "no columns: give one per join key and written feature");
    if (n_ts != 0 && n_ts != cols->n_rows)
        return core_fail(ctx, -EINVAL,
                         "event_timestamps has %zu entries for %zu rows (give one per row, or "
                         "none for now)",
                         n_ts, cols->n_rows);

    const catalog_value_t **key_cols =
        base_arena_calloc(a, v->n_join_keys == 0 ? 1 : v->n_join_keys, sizeof *key_cols);
    const catalog_value_t **feat_cols = base_arena_calloc(a, cols->n_cols, sizeof *feat_cols);
    uint32_t *feat_idx = base_arena_calloc(a, cols->n_cols, sizeof *feat_idx);
    if (key_cols == NULL || feat_cols == NULL || feat_idx == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t k = 0; k < v->n_join_keys; k++) {
        int col = core_columns_find(cols, v->join_keys[k].name);
        if (col < 0)
            return core_fail(ctx, -EINVAL, "missing join key column '%s' for feature view '%s@v%u'",
                             v->join_keys[k].name, v->name, (unsigned)v->version);
        key_cols[k] = cols->cols[col];
    }
    size_t n_feat = 0;
    for (size_t i = 0; i < cols->n_cols; i++) {
        if (is_join_key(v, cols->names[i]))
            continue;
        int f = find_feature(v, cols->names[i]);
        if (f < 0 || op == STORE_OP_DELETE)
            return core_fail(ctx, -EINVAL,
                             op == STORE_OP_DELETE
                                 ? "column '%s' is not a join key of feature view '%s@v%u' "
                                   "(a delete takes join keys only)"
                                 : "column '%s' is neither a join key nor a feature of "
                                   "feature view '%s@v%u'",
                             cols->names[i], v->name, (unsigned)v->version);
        feat_idx[n_feat] = v->features[f].index;
        feat_cols[n_feat] = cols->cols[i];
        n_feat++;
    }
    *batch = (store_batch_t){
        .view = v,
        .op = op,
        .n_rows = cols->n_rows,
        .keys = key_cols,
        .n_features = n_feat,
        .feature_idx = feat_idx,
        .values = feat_cols,
        .event_ts_us = n_ts == 0 ? NULL : event_ts_us,
    };
    return 0;
}

int core_write(core_ctx_t *ctx, const catalog_view_t *v, const core_columns_t *cols,
               const int64_t *event_ts_us, size_t n_ts, store_op_t op, core_write_done_fn done,
               void *arg)
{
    return core_write_views(ctx, &v, cols, 1, event_ts_us, n_ts, op, done, arg);
}

int core_write_views(core_ctx_t *ctx, const catalog_view_t *const *views,
                     const core_columns_t *cols, size_t n_views, const int64_t *event_ts_us,
                     size_t n_ts, store_op_t op, core_write_done_fn done, void *arg)
{
    base_arena_t *a = ctx->arena;
    /* History only, on one node that keeps none: the rows would go nowhere. (With replication
     * the nodes that keep history apply them from the log.) */
    if (op == STORE_OP_HISTORY && ctx->core->repl == NULL && !store_keeps_history(ctx->core->store))
        return core_fail(ctx, -ENOTSUP,
                         "this node keeps no history (serve --history): rows for the offline "
                         "store only would be lost");
    for (size_t i = 0; i < n_views && op == STORE_OP_HISTORY; i++) {
        if (!views[i]->history)
            return core_fail(ctx, -EINVAL,
                             "feature view '%s@v%u' keeps no offline history (give it 'offline: "
                             "{retention: ...}' in the catalog)",
                             views[i]->name, (unsigned)views[i]->version);
    }
    store_batch_t *batches = base_arena_calloc(a, n_views + 1, sizeof *batches);
    if (batches == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    size_t rows = 0, n = 0;
    for (size_t i = 0; i < n_views; i++) {
        int rc = build_batch(ctx, views[i], &cols[i], event_ts_us, n_ts, op, &batches[n]);
        if (rc < 0) {
            core__count_rejected(ctx->core, views[i], cols[i].n_rows);
            return rc;
        }
        if (batches[n].n_rows > 0) {
            rows += batches[n].n_rows;
            n++;
        }
    }
    if (n == 0)
        return 0;
    const catalog_view_t *v = batches[0].view;
    write_ctx_t *w = base_arena_alloc(a, sizeof *w);
    if (w == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    w->ctx = ctx;
    w->done = done;
    w->arg = arg;
    snprintf(w->view, sizeof w->view, "%s", v->name);
    w->version = (unsigned)v->version;
    w->n_rows = rows;
    w->principal = ctx->principal;
    w->is_delete = op == STORE_OP_DELETE;
    if (ctx->core->repl != NULL)
        return publish(ctx, batches, n, w);
    store_apply_result_t res;
    memset(&res, 0, sizeof res);
    int rc = store_apply_async(ctx->core->store, batches, n, 0, &res, apply_done, w);
    if (rc == 0)
        return CORE_ASYNC;
    audit(w, rc, 0);
    if (rc == -EINVAL) {
        const catalog_view_t *bad = batches[res.bad_batch < n ? res.bad_batch : 0].view;
        core__count_rejected(ctx->core, bad, rows);
        return fail_value(ctx, bad, rc, &res);
    }
    return fail_store(ctx, rc, w->view, w->version);
}
