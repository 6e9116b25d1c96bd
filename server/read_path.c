/* server/read_path.c - resolved feature refs x entity rows -> cells, one store snapshot. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Protocol-free on purpose: GetOnlineFeatures encodes the cells as Feast's response, and later
 * front doors (Predict, HTTP) encode the same cells their own way. Work is grouped by view so an
 * entity row costs one key encoding and one B-tree lookup per view, however many of the view's
 * features are asked for.
 */

typedef struct view_group {
    const catalog_view_t *view;
    size_t n_refs;
    size_t *ref_idx;       /* indexes into refs */
    uint32_t *feature_idx; /* refs[ref_idx[k]].feature->index, for store_row_slots() */
    int *key_cols;         /* entity column of each join key */
    server_cell_t **col;   /* &cells[ref_idx[k] * n_rows]: each ref's column of cells */
    /* feature_idx resolved to record slots, for rows whose store_row_t.slots is slots_of (one
     * resolution per view per read, rather than one per row) */
    uint32_t *slots;
    const void *slots_of;
} view_group_t;

/*
 * Groups refs by view, in order of first appearance. A wide request (a feature service of 25
 * views) would otherwise cost more in bookkeeping than in reading one entity: so the per-group
 * arrays are slices of one array per kind (five allocations, whatever the number of views), and
 * a ref is first tried against the previous ref's group, since lists name a view's features
 * side by side.
 */
static int group_refs(server_arena_t *a, const catalog_feature_ref_t *refs, size_t n_refs,
                      view_group_t **out, size_t *n_out)
{
    size_t cap = n_refs == 0 ? 1 : n_refs;
    const catalog_view_t **views = server__arena_array(a, cap, sizeof *views);
    uint32_t *group_of = server__arena_array(a, cap, sizeof *group_of);
    if (views == NULL || group_of == NULL)
        return -ENOMEM;
    size_t n = 0, g = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const catalog_view_t *v = refs[i].view;
        if (n == 0 || views[g] != v) {
            /* Requests name a handful of views; a linear scan beats hashing here. */
            g = 0;
            while (g < n && views[g] != v)
                g++;
            if (g == n)
                views[n++] = v;
        }
        group_of[i] = (uint32_t)g;
    }
    view_group_t *groups = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *groups);
    size_t *ref_idx = server__arena_array(a, cap, sizeof *ref_idx);
    uint32_t *feature_idx = server__arena_array(a, cap, sizeof *feature_idx);
    server_cell_t **col = server__arena_array(a, cap, sizeof *col);
    uint32_t *slots = server__arena_array(a, cap, sizeof *slots);
    if (groups == NULL || ref_idx == NULL || feature_idx == NULL || col == NULL || slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n_refs; i++)
        groups[group_of[i]].n_refs++;
    size_t at = 0;
    for (size_t k = 0; k < n; k++) {
        groups[k].view = views[k];
        groups[k].ref_idx = ref_idx + at;
        groups[k].feature_idx = feature_idx + at;
        groups[k].col = col + at;
        groups[k].slots = slots + at;
        at += groups[k].n_refs;
        groups[k].n_refs = 0;
    }
    for (size_t i = 0; i < n_refs; i++) {
        view_group_t *grp = &groups[group_of[i]];
        grp->feature_idx[grp->n_refs] = refs[i].feature->index;
        grp->ref_idx[grp->n_refs++] = i;
    }
    *out = groups;
    *n_out = n;
    return 0;
}

static void view_label(const catalog_view_t *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s@v%u", v->name, (unsigned)v->version);
}

static void fill_not_found(const view_group_t *grp, size_t row)
{
    for (size_t k = 0; k < grp->n_refs; k++) {
        server_cell_t *cell = &grp->col[k][row];
        cell->wire = NULL;
        cell->len = 0;
        cell->status = STORE_STATUS_NOT_FOUND;
        cell->event_ts_us = 0;
    }
}

int server__read_features(store_reader_t *r, server_arena_t *a, const catalog_feature_ref_t *refs,
                          size_t n_refs, const server_columns_t *ents, int64_t now_us,
                          server_cell_t *cells, char *err, size_t err_cap)
{
    view_group_t *groups = NULL;
    size_t n_groups = 0;
    int rc = group_refs(a, refs, n_refs, &groups, &n_groups);
    if (rc < 0)
        return rc;
    size_t n_rows = ents->n_rows;
    char label[CATALOG_MAX_NAME + 16];

    /* Check every view's join keys before reading anything, so errors do not depend on data. */
    size_t n_keys_all = 0;
    for (size_t g = 0; g < n_groups; g++)
        n_keys_all += groups[g].view->n_join_keys;
    int *key_cols = server__arena_array(a, n_keys_all == 0 ? 1 : n_keys_all, sizeof *key_cols);
    if (key_cols == NULL)
        return -ENOMEM;
    for (size_t g = 0; g < n_groups; g++) {
        view_group_t *grp = &groups[g];
        const catalog_view_t *v = grp->view;
        grp->key_cols = key_cols;
        key_cols += v->n_join_keys;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            int col = server__columns_find(ents, v->join_keys[k].name);
            if (col < 0) {
                view_label(v, label, sizeof label);
                snprintf(err, err_cap, "missing join key '%s' (needed by feature view '%s')",
                         v->join_keys[k].name, label);
                return -EINVAL;
            }
            grp->key_cols[k] = col;
        }
        for (size_t k = 0; k < grp->n_refs; k++)
            grp->col[k] = &cells[grp->ref_idx[k] * n_rows];
    }

    size_t max_keys = 1, max_refs = 1;
    for (size_t g = 0; g < n_groups; g++) {
        if (groups[g].view->n_join_keys > max_keys)
            max_keys = groups[g].view->n_join_keys;
        if (groups[g].n_refs > max_refs)
            max_refs = groups[g].n_refs;
    }
    catalog_value_t *keys = server__arena_calloc(a, max_keys, sizeof *keys);
    /* One row's features of one view come out of the store together (one record parse). */
    const uint8_t **wires = server__arena_alloc(a, max_refs * sizeof *wires);
    size_t *lens = server__arena_alloc(a, max_refs * sizeof *lens);
    store_status_t *sts = server__arena_alloc(a, max_refs * sizeof *sts);
    if (keys == NULL || wires == NULL || lens == NULL || sts == NULL)
        return -ENOMEM;
    uint8_t key[STORE_MAX_KEY + 1];

    for (size_t g = 0; g < n_groups; g++) {
        view_group_t *grp = &groups[g];
        const catalog_view_t *v = grp->view;
        for (size_t row = 0; row < n_rows; row++) {
            for (size_t k = 0; k < v->n_join_keys; k++)
                keys[k] = ents->cols[grp->key_cols[k]][row];
            int klen = store_encode_key(v, keys, v->n_join_keys, key, sizeof key);
            if (klen < 0) {
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
                return klen == -ENOMEM ? -ENOMEM : -EINVAL;
            }
            store_row_t srow;
            rc = store_read_row(r, v, key, (size_t)klen, &srow);
            if (rc == -ENOENT || (rc == 0 && !srow.found)) {
                /* -ENOENT: the version has no database yet (applied with no data). */
                fill_not_found(grp, row);
                continue;
            }
            if (rc < 0) {
                snprintf(err, err_cap, "store read failed");
                return rc;
            }
            if (srow.slots != grp->slots_of) {
                store_row_slots(&srow, v, grp->feature_idx, grp->n_refs, grp->slots);
                grp->slots_of = srow.slots;
            }
            store_row_slot_features(&srow, v, grp->slots, grp->n_refs, now_us, wires, lens, sts);
            /* A found row: no NOT_FOUND among its features, every one carries the row's time. */
            for (size_t k = 0; k < grp->n_refs; k++) {
                server_cell_t *cell = &grp->col[k][row];
                cell->wire = wires[k];
                cell->len = (uint32_t)lens[k];
                cell->status = (uint8_t)sts[k];
                cell->event_ts_us = srow.event_ts_us;
            }
        }
    }
    return 0;
}
