/* server/write_path.c - request columns -> one store batch, for WriteFeatures and deletes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Writes are column-wise like reads: the request's columns become the store's batch without
 * copying values (catalog_value_t views into the unpacked request). The store validates and
 * encodes every value in this thread, then applies the batch in its writer thread with group
 * commit; here we only check the shape and turn the store's verdict into a message a client can
 * act on. The call does not wait in this thread: the writer completes it after the fsync, so
 * the worker takes the next write at once and the writes in flight share one commit.
 */

/* What the completion needs, in the call's arena (the catalog is not pinned by then). */
typedef struct write_ctx {
    server_write_reply_fn reply;
    char view[CATALOG_MAX_NAME + 1];
    unsigned version;
} write_ctx_t;

/* The call's message for a store error other than a refused value. Returns: rc. */
static int fail_store(server_call_t *c, int rc, const char *view, unsigned version)
{
    if (rc == -ENOENT)
        return server__fail(c, rc,
                            "feature view '%s@v%u' has no data in this store (not applied, or "
                            "torn down)",
                            view, version);
    if (rc == -ESHUTDOWN)
        return server__fail(c, rc, "the store is shutting down");
    if (rc == -ENOSPC)
        return server__fail(c, rc, "the data directory's disk is full");
    return server__fail(c, rc, "write failed: %s", strerror(-rc));
}

/* The store's verdict, on the writer thread (or this one when there was nothing to write). */
static void apply_done(void *arg, int rc, const store_apply_result_t *res)
{
    server_call_t *c = arg;
    const write_ctx_t *w = c->resume_arg;
    grpc_slice resp = grpc_empty_slice();
    rc = rc < 0 ? fail_store(c, rc, w->view, w->version) : w->reply(c, res, &resp);
    server__call_complete(c, rc, resp);
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

int server__apply_columns(server_call_t *c, const char *view_ref, size_t n, char *const *keys,
                          Feast__Types__RepeatedValue *const *vals, const int64_t *event_ts_us,
                          size_t n_ts, store_op_t op, server_write_reply_fn reply, grpc_slice *resp)
{
    server_arena_t *a = &c->arena;
    const server_limits_t *lim = server__call_limits(c);
    const catalog_view_t *v = NULL;
    int rc = catalog_find_view_ref(c->catalog, view_ref, &v);
    if (rc == -ENOENT)
        return server__fail(c, -ENOENT, "feature view '%.200s' not found", view_ref);
    if (rc < 0)
        return server__fail(c, -EINVAL,
                            "malformed feature view reference '%.200s' (want name or name@vN)",
                            view_ref);
    if (!v->online)
        return server__fail(c, -EINVAL, "feature view '%s@v%u' is not online", v->name,
                            (unsigned)v->version);

    /* More columns than the view has join keys and features means some are unknown or
     * repeated: such a request is refused before its values are converted. (A delete takes
     * fewer, but a column too many is better told apart below, by name.) */
    char cols_why[CATALOG_MAX_NAME + 64];
    snprintf(cols_why, sizeof cols_why, "the join keys and features of feature view '%s@v%u'",
             v->name, (unsigned)v->version);
    server_columns_limits_t col_lim = {v->n_join_keys + v->n_features, cols_why,
                                       lim->max_write_rows, "--max-write-rows"};
    server_columns_t cols;
    rc = server__columns_from_pb(c, op == STORE_OP_DELETE ? "delete" : "write", n, keys, vals,
                                 &col_lim, &cols);
    if (rc < 0)
        return rc;
    if (cols.n_cols == 0)
        return server__fail(c, -EINVAL, "no columns: give one per join key and written feature");
    if (n_ts != 0 && n_ts != cols.n_rows)
        return server__fail(c, -EINVAL,
                            "event_timestamps has %zu entries for %zu rows (give one per row, or "
                            "none for now)",
                            n_ts, cols.n_rows);

    const catalog_value_t **key_cols =
        server__arena_calloc(a, v->n_join_keys == 0 ? 1 : v->n_join_keys, sizeof *key_cols);
    const catalog_value_t **feat_cols = server__arena_calloc(a, cols.n_cols, sizeof *feat_cols);
    uint32_t *feat_idx = server__arena_calloc(a, cols.n_cols, sizeof *feat_idx);
    if (key_cols == NULL || feat_cols == NULL || feat_idx == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t k = 0; k < v->n_join_keys; k++) {
        int col = server__columns_find(&cols, v->join_keys[k].name);
        if (col < 0)
            return server__fail(c, -EINVAL,
                                "missing join key column '%s' for feature view '%s@v%u'",
                                v->join_keys[k].name, v->name, (unsigned)v->version);
        key_cols[k] = cols.cols[col];
    }
    size_t n_feat = 0;
    for (size_t i = 0; i < cols.n_cols; i++) {
        if (is_join_key(v, cols.names[i]))
            continue;
        int f = find_feature(v, cols.names[i]);
        if (f < 0 || op == STORE_OP_DELETE)
            return server__fail(c, -EINVAL,
                                op == STORE_OP_DELETE
                                    ? "column '%s' is not a join key of feature view '%s@v%u' "
                                      "(a delete takes join keys only)"
                                    : "column '%s' is neither a join key nor a feature of "
                                      "feature view '%s@v%u'",
                                cols.names[i], v->name, (unsigned)v->version);
        feat_idx[n_feat] = v->features[f].index;
        feat_cols[n_feat] = cols.cols[i];
        n_feat++;
    }

    store_batch_t batch = {
        .view = v,
        .op = op,
        .n_rows = cols.n_rows,
        .keys = key_cols,
        .n_features = n_feat,
        .feature_idx = feat_idx,
        .values = feat_cols,
        .event_ts_us = n_ts == 0 ? NULL : event_ts_us,
    };
    store_apply_result_t res;
    memset(&res, 0, sizeof res);
    if (cols.n_rows == 0)
        return reply(c, &res, resp);
    write_ctx_t *w = server__arena_alloc(a, sizeof *w);
    if (w == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    w->reply = reply;
    snprintf(w->view, sizeof w->view, "%s", v->name);
    w->version = (unsigned)v->version;
    c->resume_arg = w;
    server__call_detach(c);
    rc = store_apply_async(server__call_store(c), &batch, 1, 0, &res, apply_done, c);
    if (rc == 0)
        return SERVER_DETACHED;
    server__call_attach(c);
    if (rc == -EINVAL) {
        const char *what = is_join_key(v, res.bad_field) ? "join key" : "feature";
        if (res.bad_field[0] == '\0')
            return server__fail(c, rc, "row %zu: %s", res.bad_row, res.error);
        return server__fail(c, rc, "row %zu, %s '%s': %s", res.bad_row, what, res.bad_field,
                            res.error);
    }
    return fail_store(c, rc, w->view, w->version);
}
