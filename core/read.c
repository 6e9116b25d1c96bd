/* core/read.c - resolved feature refs x entity rows -> cells, one store snapshot per request. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Every read of every transport comes here: GetOnlineFeatures encodes the cells as Feast's
 * response, Predict as tensors, the HTTP front door as JSON. Work is grouped by view so an
 * entity row costs one key encoding and one B-tree lookup per view, however many of the view's
 * features are asked for.
 */

/*
 * Groups refs by view, in order of first appearance. A wide request (a feature service of 25
 * views) would otherwise cost more in bookkeeping than in reading one entity: so a ref is first
 * tried against the previous ref's group, since lists name a view's features side by side, and
 * the result depends on the list alone, so GetOnlineFeatures keeps it with the list in its
 * cache.
 */
int core_group_refs(base_arena_t *a, const catalog_feature_ref_t *refs, size_t n_refs,
                    core_ref_groups_t *out)
{
    size_t cap = n_refs == 0 ? 1 : n_refs;
    core_ref_group_t *groups = base_arena_array(a, cap, sizeof *groups);
    uint32_t *group_of = base_arena_array(a, cap, sizeof *group_of);
    uint32_t *ref_idx = base_arena_array(a, cap, sizeof *ref_idx);
    uint32_t *feature_idx = base_arena_array(a, cap, sizeof *feature_idx);
    if (groups == NULL || group_of == NULL || ref_idx == NULL || feature_idx == NULL)
        return -ENOMEM;
    size_t n = 0, g = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const catalog_view_t *v = refs[i].view;
        if (n == 0 || groups[g].view != v) {
            /* Requests name a handful of views; a linear scan beats hashing here. */
            g = 0;
            while (g < n && groups[g].view != v)
                g++;
            if (g == n)
                groups[n++] = (core_ref_group_t){.view = v};
        }
        group_of[i] = (uint32_t)g;
        groups[g].n_refs++;
    }
    size_t at = 0, n_keys = 0, max_keys = 1, max_refs = 1;
    for (size_t k = 0; k < n; k++) {
        core_ref_group_t *grp = &groups[k];
        const catalog_view_t *v = grp->view;
        grp->first = (uint32_t)at;
        at += grp->n_refs;
        if (grp->n_refs > max_refs)
            max_refs = grp->n_refs;
        grp->n_refs = 0; /* counts again below */
        n_keys += v->n_join_keys;
        if (v->n_join_keys > max_keys)
            max_keys = v->n_join_keys;
        /* Views of one entity take their keys from the same columns: found once. */
        const catalog_view_t *pv = k > 0 ? groups[k - 1].view : NULL;
        /* On-demand views are not looked up: their keys are never found, so never copied. */
        grp->same_keys = pv != NULL && pv->on_demand == NULL && v->on_demand == NULL &&
                         pv->n_join_keys == v->n_join_keys;
        for (size_t j = 0; grp->same_keys && j < v->n_join_keys; j++)
            grp->same_keys = strcmp(pv->join_keys[j].name, v->join_keys[j].name) == 0;
    }
    for (size_t i = 0; i < n_refs; i++) {
        core_ref_group_t *grp = &groups[group_of[i]];
        size_t k = grp->first + grp->n_refs++;
        ref_idx[k] = (uint32_t)i;
        feature_idx[k] = refs[i].feature->index;
    }
    *out = (core_ref_groups_t){.n_groups = n,
                               .groups = groups,
                               .n_refs = n_refs,
                               .ref_idx = ref_idx,
                               .feature_idx = feature_idx,
                               .n_keys = n_keys,
                               .max_keys = max_keys,
                               .max_refs = max_refs};
    return 0;
}

static void view_label(const catalog_view_t *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s@v%u", v->name, (unsigned)v->version);
}

/* The message for store_encode_key()'s error klen on entity row `row` of view v. */
static void key_error(const catalog_view_t *v, int klen, size_t row, char *err, size_t err_cap)
{
    char label[CATALOG_MAX_NAME + 16];
    view_label(v, label, sizeof label);
    if (klen == -ENAMETOOLONG) {
        snprintf(err, err_cap,
                 "entity row %zu: the encoded key for feature view '%s' is longer "
                 "than %d bytes (STORE_MAX_KEY)",
                 row, label, STORE_MAX_KEY);
    } else if (klen == -ERANGE) {
        snprintf(err, err_cap,
                 "entity row %zu: a join key value of feature view '%s' is out of "
                 "range for its type",
                 row, label);
    } else {
        size_t n = (size_t)snprintf(err, err_cap,
                                    "entity row %zu: join key values do not match "
                                    "feature view '%s' (want",
                                    row, label);
        for (size_t k = 0; k < v->n_join_keys && n < err_cap; k++) {
            n += (size_t)snprintf(err + n, err_cap - n, " %s %s", v->join_keys[k].name,
                                  catalog_dtype_name(v->join_keys[k].dtype));
        }
        if (n < err_cap)
            snprintf(err + n, err_cap - n, ")");
    }
}

int core_read_features(store_reader_t *r, base_arena_t *a, const catalog_feature_ref_t *refs,
                       size_t n_refs, const core_ref_groups_t *gs, const core_columns_t *ents,
                       const core_columns_t *request, int64_t now_us, size_t max_bytes,
                       core_cell_t *cells, char *err, size_t err_cap)
{
    return core_read_features_as_of(r, a, refs, n_refs, gs, ents, request, now_us, NULL, max_bytes,
                                    cells, err, err_cap);
}

int core_read_features_as_of(store_reader_t *r, base_arena_t *a, const catalog_feature_ref_t *refs,
                             size_t n_refs, const core_ref_groups_t *gs, const core_columns_t *ents,
                             const core_columns_t *request, int64_t now_us, const int64_t *as_of,
                             size_t max_bytes, core_cell_t *cells, char *err, size_t err_cap)
{
    core_ref_groups_t grouped;
    /* Given groups must be those of refs: cells they do not cover would be left unwritten. */
    assert(gs == NULL || (gs->n_refs == n_refs && (n_refs == 0 || gs->groups != NULL)));
    if (gs == NULL) {
        int rc = core_group_refs(a, refs, n_refs, &grouped);
        if (rc < 0)
            return rc;
        gs = &grouped;
    }
    size_t n_rows = ents->n_rows;
    char label[CATALOG_MAX_NAME + 16];

    /* Check every view's join keys before reading anything, so errors do not depend on data. */
    int *key_cols = base_arena_array(a, gs->n_keys == 0 ? 1 : gs->n_keys, sizeof *key_cols);
    if (key_cols == NULL)
        return -ENOMEM;
    int *kc = key_cols;
    bool on_demand = false;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const catalog_view_t *v = gs->groups[g].view;
        if (v->on_demand != NULL) {
            /* Its sources' keys are checked when they are read (core__on_demand()). */
            on_demand = true;
            kc += v->n_join_keys;
            continue;
        }
        if (gs->groups[g].same_keys) {
            memcpy(kc, kc - v->n_join_keys, v->n_join_keys * sizeof *kc);
        } else {
            for (size_t k = 0; k < v->n_join_keys; k++) {
                int col = core_columns_find(ents, v->join_keys[k].name);
                if (col < 0) {
                    view_label(v, label, sizeof label);
                    snprintf(err, err_cap, "missing join key '%s' (needed by feature view '%s')",
                             v->join_keys[k].name, label);
                    return -EINVAL;
                }
                kc[k] = col;
            }
        }
        kc += v->n_join_keys;
    }
    /* On-demand features' request data, checked before anything is read too. */
    core__od_plan_t *plan = NULL;
    if (on_demand) {
        int rc = core__on_demand_plan(a, gs, ents, request, &plan, err, err_cap);
        if (rc < 0)
            return rc;
    }

    catalog_value_t *keys = base_arena_calloc(a, gs->max_keys, sizeof *keys);
    /* One row's features of one view come out of the store together (one record parse). */
    const uint8_t **wires = base_arena_alloc(a, gs->max_refs * sizeof *wires);
    size_t *lens = base_arena_alloc(a, gs->max_refs * sizeof *lens);
    store_status_t *sts = base_arena_alloc(a, gs->max_refs * sizeof *sts);
    uint32_t *slots = base_arena_alloc(a, gs->max_refs * sizeof *slots);
    core_cell_t **col = base_arena_alloc(a, gs->max_refs * sizeof *col);
    if (keys == NULL || wires == NULL || lens == NULL || sts == NULL || slots == NULL ||
        col == NULL)
        return -ENOMEM;
    uint8_t key[STORE_MAX_KEY + 1];

    kc = key_cols;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const core_ref_group_t *grp = &gs->groups[g];
        const catalog_view_t *v = grp->view;
        const uint32_t *ref_idx = gs->ref_idx + grp->first;
        const uint32_t *feature_idx = gs->feature_idx + grp->first;
        size_t n = grp->n_refs;
        if (v->on_demand != NULL) {
            kc += v->n_join_keys;
            continue;
        }
        /* feature_idx resolved to record slots, for rows whose store_row_t.slots is slots_of
         * (one resolution per view per read, rather than one per row) */
        const void *slots_of = NULL;
        /* Each ref's column of cells, so the row loop indexes without multiplying. */
        for (size_t k = 0; k < n; k++)
            col[k] = &cells[ref_idx[k] * n_rows];
        for (size_t row = 0; row < n_rows; row++) {
            for (size_t k = 0; k < v->n_join_keys; k++)
                keys[k] = ents->cols[kc[k]][row];
            int klen = store_encode_key(v, keys, v->n_join_keys, key, sizeof key);
            if (klen < 0) {
                key_error(v, klen, row, err, err_cap);
                return klen == -ENOMEM ? -ENOMEM : -EINVAL;
            }
            store_row_t srow;
            int64_t now = now_us;
            int rc;
            if (as_of != NULL) {
                now = as_of[row];
                rc = store_history_row(r, v, key, (size_t)klen, now, &srow);
                if (rc == -ENOENT || rc == -ENOTSUP) {
                    view_label(v, label, sizeof label);
                    snprintf(err, err_cap,
                             rc == -ENOTSUP ? "this node keeps no history (serve --history)"
                                            : "feature view '%s' keeps no offline history here "
                                              "(its catalog entry has no 'offline:')",
                             label);
                    return rc == -ENOTSUP ? -ENOTSUP : -EINVAL;
                }
            } else {
                rc = store_read_row(r, v, key, (size_t)klen, &srow);
            }
            if (rc == -ENOENT || rc == -EBADMSG || (rc == 0 && !srow.found)) {
                /* -ENOENT: the version has no database yet (applied with no data). -EBADMSG: the
                 * record is damaged (the store counted and logged it): INVALID, no value, and
                 * the rest of the request goes on. */
                uint8_t st = rc == -EBADMSG ? STORE_STATUS_INVALID : STORE_STATUS_NOT_FOUND;
                for (size_t k = 0; k < n; k++)
                    col[k][row] = (core_cell_t){NULL, 0, st, 0};
                continue;
            }
            if (rc < 0) {
                snprintf(err, err_cap, "store read failed (feature view '%s@v%u'): %s", v->name,
                         v->version, strerror(-rc));
                return rc;
            }
            if (srow.slots != slots_of) {
                store_row_slots(&srow, v, feature_idx, n, slots);
                slots_of = srow.slots;
            }
            store_row_slot_features(&srow, v, slots, n, now, wires, lens, sts);
            if (as_of != NULL) {
                /* As Feast's point-in-time join: a value older than the TTL at that time is
                 * no value (the status says why). */
                for (size_t k = 0; k < n; k++) {
                    if (sts[k] == STORE_STATUS_OUTSIDE_MAX_AGE) {
                        wires[k] = NULL;
                        lens[k] = 0;
                    }
                }
            }
            /* A found row: no NOT_FOUND among its features, every one carries the row's time. */
            for (size_t k = 0; k < n; k++) {
                core_cell_t *cell = &col[k][row];
                cell->wire = wires[k];
                cell->len = (uint32_t)lens[k];
                cell->status = (uint8_t)sts[k];
                cell->event_ts_us = srow.event_ts_us;
            }
        }
        kc += v->n_join_keys;
    }
    if (on_demand)
        return core__on_demand(r, a, gs, ents, plan, now_us, as_of, max_bytes, cells, err, err_cap);
    return 0;
}

/*
 * Column names: join keys as given, then features, all in one list (Feast's
 * metadata.feature_names), so a name may appear once: a feature named like a join key would be
 * indistinguishable from the entity column, which Feast refuses too unless full_feature_names is
 * set. The usual case (feature names known to differ, no entity column among them) costs one
 * probe per entity column; anything else takes the full scan, whose first repeat names the
 * error.
 */
static int check_names(core_ctx_t *ctx, const core_resolved_t *res, const core_columns_t *ents,
                       bool full)
{
    bool clash = !res->unique;
    for (size_t i = 0; i < ents->n_cols && !clash; i++)
        clash = core__resolved_has_name(res, ents->names[i]);
    if (!clash)
        return 0;
    size_t n_cols = ents->n_cols + res->n_refs;
    const char **names = base_arena_calloc(ctx->arena, n_cols, sizeof *names);
    if (names == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ents->n_cols; i++)
        names[i] = ents->names[i];
    for (size_t i = 0; i < res->n_refs; i++)
        names[ents->n_cols + i] = res->names[i];
    size_t first = 0, second = 0;
    int dup = base_find_duplicate(ctx->arena, names, n_cols, &first, &second);
    if (dup < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (dup > 0 && first >= ents->n_cols)
        return core_fail(ctx, -EINVAL,
                         "feature name '%s' appears twice in the response (references %zu "
                         "and %zu); set full_feature_names or remove the duplicate",
                         names[second], first - ents->n_cols, second - ents->n_cols);
    if (dup > 0 && !full)
        return core_fail(ctx, -EINVAL,
                         "feature '%s' (reference %zu) has the name of entity column '%s'; set "
                         "full_feature_names to name features view__feature",
                         names[second], second - ents->n_cols, names[first]);
    if (dup > 0)
        return core_fail(ctx, -EINVAL,
                         "feature '%s' (reference %zu) has the name of entity column '%s'; "
                         "rename the entity column",
                         names[second], second - ents->n_cols, names[first]);
    return 0;
}

/* core_read_begin() and core_history_begin(): as_of NULL for the online read. */
static int read_begin(core_ctx_t *ctx, const core_resolved_t *res, core_columns_t *ents,
                      const core_columns_t *request, const int64_t *as_of, bool full_names,
                      core_cell_t **cells_out)
{
    /* An entityless read has one row, or as many as its request data; a point-in-time one as
     * many as its times (the caller's n_rows). */
    if (ents->n_cols == 0 && as_of == NULL)
        ents->n_rows = request != NULL && request->n_cols > 0 ? request->n_rows : 1;
    int rc = check_names(ctx, res, ents, full_names);
    if (rc < 0)
        return rc;
    size_t n_rows = ents->n_rows;
    /* Filled completely by core_read_features(): zeroing 120 KB for 100 x 50 cost more than
     * the B-tree lookups of a view. */
    size_t n_cells = res->n_refs * n_rows;
    core_cell_t *cells = base_arena_array(ctx->arena, n_cells == 0 ? 1 : n_cells, sizeof *cells);
    if (cells == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (ctx->min_seq > 0 && (rc = core__wait_min_seq(ctx)) < 0)
        return rc;
    if ((rc = core__snapshot_begin(ctx)) < 0)
        return rc;
    store_reader_t *reader = ctx->worker->reader;
    rc = core_read_features_as_of(reader, ctx->arena, res->refs, res->n_refs, &res->groups, ents,
                                  request, store_now_us(), as_of, ctx->limits->max_response_bytes,
                                  cells, ctx->msg, sizeof ctx->msg);
    if (rc < 0)
        return rc;
    for (size_t g = 0; g < res->groups.n_groups; g++)
        core__count_reads(ctx, res->groups.groups[g].view, n_rows);
    *cells_out = cells;
    return 0;
}

int core__snapshot_begin(core_ctx_t *ctx)
{
    /* A replica that can no longer follow the log holds data it knows to be stale: it answers
     * no reads (its health is NOT_SERVING too, so balancers go elsewhere). */
    repl_t *repl = ctx->core->repl;
    repl_state_t st = repl != NULL ? repl_state(repl) : REPL_READY;
    if (st == REPL_NEEDS_SNAPSHOT || st == REPL_FAILED) {
        repl_status_t rs;
        repl_status(repl, &rs);
        if (st == REPL_NEEDS_SNAPSHOT)
            return core_fail(ctx, -EAGAIN,
                             "this replica is stale: the stream no longer holds sequence %llu, "
                             "which it needs next; it needs a snapshot from a ready peer "
                             "(--bootstrap-from); read from another node",
                             (unsigned long long)rs.applied + 1);
        return core_fail(ctx, -EAGAIN,
                         "this replica cannot apply the log (%s) and may be stale; read from "
                         "another node",
                         rs.last_error);
    }
    int rc = store_read_begin(ctx->worker->reader);
    if (rc == -EAGAIN)
        return core_fail(ctx, rc,
                         "store read failed: no free LMDB reader slot (other processes reading "
                         "this data directory hold them); retry");
    if (rc < 0)
        return core_fail(ctx, rc, "store read failed: %s", strerror(-rc));
    ctx->reading = true;
    return 0;
}

int core_read_begin(core_ctx_t *ctx, const core_resolved_t *res, core_columns_t *ents,
                    const core_columns_t *request, bool full_names, core_cell_t **cells)
{
    return read_begin(ctx, res, ents, request, NULL, full_names, cells);
}

int core_history_begin(core_ctx_t *ctx, const core_resolved_t *res, core_columns_t *ents,
                       const int64_t *as_of, bool full_names, core_cell_t **cells)
{
    /* Request data are not kept in the history: on-demand features that read some cannot be
     * computed as of a past time. */
    return read_begin(ctx, res, ents, NULL, as_of, full_names, cells);
}

void core_read_end(core_ctx_t *ctx)
{
    if (!ctx->reading)
        return;
    store_read_end(ctx->worker->reader);
    ctx->reading = false;
}
