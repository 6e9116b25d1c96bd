/* core/on_demand.c - on-demand features: their inputs read with the stored ones, then computed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * An on-demand view is a group of the read like any other, but no store lookup of its own: its
 * inputs are cells of the same read. Only the inputs that the requested features read are
 * taken. An input the request also asks for directly is taken from that column; the others are
 * read in the same store snapshot as extra columns nobody sees. Request fields come from the
 * request's own columns (Feast's request_context, a Predict input of the same name) or, as
 * Feast's Python SDK sends them, from an entity column of that name; they are checked before
 * anything is read (core__on_demand_plan()), so errors do not depend on data. Each row's inputs
 * are decoded once for all the view's requested features, each feature's code runs over them
 * (catalog_expr_eval()), and the result is encoded back into a cell, so transports cannot tell
 * a computed cell from a stored one. What the computation holds (decoded list inputs, strings
 * built by the expressions, encoded results) counts against a budget: a request cannot make the
 * server decode or build more than --max-response-bytes.
 */

/* A request value for a field of type want: the same type, or a number widened (or, for FLOAT,
 * narrowed within range) to it, or text for BYTES. Returns: true and *out. */
static bool request_value(const catalog_value_t *v, catalog_dtype_t want, catalog_value_t *out)
{
    *out = *v;
    if (v->type == want || v->type == CATALOG_DTYPE_NULL)
        return true;
    bool from_int = v->type == CATALOG_DTYPE_INT64 || v->type == CATALOG_DTYPE_INT32;
    int64_t i = v->type == CATALOG_DTYPE_INT32 ? v->u.i32 : v->u.i64;
    switch (want) {
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        if (!from_int)
            return false;
        out->type = want;
        out->u.i64 = i;
        return true;
    case CATALOG_DTYPE_INT32:
        if (!from_int || i < INT32_MIN || i > INT32_MAX)
            return false;
        out->type = want;
        out->u.i32 = (int32_t)i;
        return true;
    case CATALOG_DTYPE_DOUBLE:
        if (!from_int && v->type != CATALOG_DTYPE_FLOAT)
            return false;
        out->type = want;
        out->u.f64 = from_int ? (double)i : (double)v->u.f32;
        return true;
    case CATALOG_DTYPE_FLOAT: {
        if (!from_int && v->type != CATALOG_DTYPE_DOUBLE)
            return false;
        double d = from_int ? (double)i : v->u.f64;
        if (!catalog_double_fits_float(d))
            return false; /* out of FLOAT's range */
        out->type = want;
        out->u.f32 = (float)d;
        return true;
    }
    case CATALOG_DTYPE_BYTES:
        if (v->type != CATALOG_DTYPE_STRING)
            return false;
        out->type = want;
        return true;
    default:
        return false;
    }
}

/* Where an input's values are: a column of cells (a feature or an event time), or a request
 * column (converted); neither when no requested feature reads it. */
typedef struct src {
    bool needed;
    const core_cell_t *cells;      /* [n_rows] */
    const catalog_value_t *values; /* [n_rows] */
    size_t hidden;                 /* index of its hidden ref, or SIZE_MAX */
} src_t;

struct core__od_plan {
    size_t n_in;
    src_t *srcs; /* every on-demand group's inputs, group after group */
};

/* The column of cells of (view, feature) among the stored groups, or NULL. feature NULL: any of
 * the view's (event times). */
static const core_cell_t *visible(const core_ref_groups_t *gs, const core_cell_t *cells,
                                  size_t n_rows, const catalog_view_t *v,
                                  const catalog_feature_t *f)
{
    for (size_t g = 0; g < gs->n_groups; g++) {
        const core_ref_group_t *grp = &gs->groups[g];
        if (grp->view != v)
            continue;
        for (size_t k = 0; k < grp->n_refs; k++) {
            if (f == NULL || gs->feature_idx[grp->first + k] == f->index)
                return &cells[(size_t)gs->ref_idx[grp->first + k] * n_rows];
        }
    }
    return NULL;
}

int core__on_demand_plan(base_arena_t *a, const core_ref_groups_t *gs, const core_columns_t *ents,
                         const core_columns_t *request, core__od_plan_t **out, char *err,
                         size_t err_cap)
{
    size_t n_rows = ents->n_rows, n_in = 0;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const catalog_on_demand_t *od = gs->groups[g].view->on_demand;
        if (od != NULL)
            n_in += od->n_inputs;
    }
    core__od_plan_t *p = base_arena_calloc(a, 1, sizeof *p);
    src_t *srcs = base_arena_calloc(a, n_in == 0 ? 1 : n_in, sizeof *srcs);
    if (p == NULL || srcs == NULL)
        return -ENOMEM;
    size_t at = 0;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const core_ref_group_t *grp = &gs->groups[g];
        const catalog_view_t *v = grp->view;
        const catalog_on_demand_t *od = v->on_demand;
        if (od == NULL)
            continue;
        src_t *s = &srcs[at];
        at += od->n_inputs;
        /* The inputs the requested features read. */
        for (size_t k = 0; k < grp->n_refs; k++) {
            const uint32_t *uses;
            size_t n_uses;
            catalog_expr_inputs(&v->features[gs->feature_idx[grp->first + k]], &uses, &n_uses);
            for (size_t u = 0; u < n_uses; u++)
                s[uses[u]].needed = true;
        }
        for (size_t i = 0; i < od->n_inputs; i++) {
            s[i].hidden = SIZE_MAX;
            const catalog_input_t *in = &od->inputs[i];
            if (!s[i].needed || in->kind != CATALOG_INPUT_REQUEST)
                continue;
            const catalog_request_field_t *fl = in->field;
            const core_columns_t *from = request;
            int col = request != NULL ? core_columns_find(request, fl->name) : -1;
            if (col < 0) {
                /* Feast's SDK sends request data among the entity rows. */
                from = ents;
                col = core_columns_find(ents, fl->name);
            }
            if (col < 0) {
                snprintf(err, err_cap,
                         "missing request field '%s' (request source '%s', needed by on-demand "
                         "feature view '%s@v%u'); send it in request_context",
                         fl->name, in->source->name, v->name, (unsigned)v->version);
                return -EINVAL;
            }
            if (from->n_rows != n_rows) {
                snprintf(err, err_cap, "request field '%s' has %zu rows; the entities have %zu",
                         fl->name, from->n_rows, n_rows);
                return -EINVAL;
            }
            catalog_value_t *vals = base_arena_array(a, n_rows == 0 ? 1 : n_rows, sizeof *vals);
            if (vals == NULL)
                return -ENOMEM;
            for (size_t row = 0; row < n_rows; row++) {
                const catalog_value_t *x = &from->cols[col][row];
                if (!request_value(x, fl->dtype, &vals[row])) {
                    snprintf(err, err_cap, "request field '%s', row %zu: want %s, got %s%s",
                             fl->name, row, catalog_dtype_name(fl->dtype),
                             catalog_dtype_name(x->type),
                             x->type == CATALOG_DTYPE_DOUBLE ? " (or out of range)" : "");
                    return -EINVAL;
                }
            }
            s[i].values = vals;
        }
    }
    p->n_in = n_in;
    p->srcs = srcs;
    *out = p;
    return 0;
}

/* Budget: fails once what the computation holds would pass max bytes (0: no limit). */
static bool spend(size_t *used, size_t n, size_t max)
{
    *used += n;
    return max == 0 || *used <= max;
}

int core__on_demand(store_reader_t *r, base_arena_t *a, const core_ref_groups_t *gs,
                    const core_columns_t *ents, const core__od_plan_t *plan, int64_t now_us,
                    const int64_t *as_of, size_t max_bytes, core_cell_t *cells, char *err,
                    size_t err_cap)
{
    size_t n_rows = ents->n_rows, n_in = plan->n_in;
    src_t *srcs = plan->srcs;
    /* Stored inputs: a column of the read, or hidden refs read now (each once). */
    catalog_feature_ref_t *hidden = base_arena_array(a, n_in == 0 ? 1 : n_in, sizeof *hidden);
    if (hidden == NULL)
        return -ENOMEM;
    size_t n_hidden = 0, at = 0;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const catalog_on_demand_t *od = gs->groups[g].view->on_demand;
        if (od == NULL)
            continue;
        for (size_t i = 0; i < od->n_inputs; i++, at++) {
            const catalog_input_t *in = &od->inputs[i];
            if (!srcs[at].needed || in->kind == CATALOG_INPUT_REQUEST)
                continue;
            const catalog_feature_t *f = in->kind == CATALOG_INPUT_FEATURE ? in->feature : NULL;
            srcs[at].cells = visible(gs, cells, n_rows, in->view, f);
            if (srcs[at].cells != NULL)
                continue;
            if (f == NULL)
                f = &in->view->features[0];
            size_t h = 0;
            while (h < n_hidden && !(hidden[h].view == in->view && hidden[h].feature == f))
                h++;
            if (h == n_hidden)
                hidden[n_hidden++] = (catalog_feature_ref_t){in->view, f};
            srcs[at].hidden = h;
        }
    }
    if (n_hidden > 0) {
        core_cell_t *hc = base_arena_array(a, n_hidden * (n_rows == 0 ? 1 : n_rows), sizeof *hc);
        if (hc == NULL)
            return -ENOMEM;
        int rc = core_read_features_as_of(r, a, hidden, n_hidden, NULL, ents, NULL, now_us, as_of,
                                          0, hc, err, err_cap);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n_in; i++) {
            if (srcs[i].hidden != SIZE_MAX)
                srcs[i].cells = &hc[srcs[i].hidden * n_rows];
        }
    }

    /* Evaluation, view by view, row by row. */
    catalog_value_t *vals = base_arena_array(a, n_in == 0 ? 1 : n_in, sizeof *vals);
    uint8_t *sts = base_arena_array(a, n_in == 0 ? 1 : n_in, 1);
    int64_t *ts = base_arena_array(a, n_in == 0 ? 1 : n_in, sizeof *ts);
    void **scratch = base_arena_calloc(a, n_in == 0 ? 1 : n_in, sizeof *scratch);
    size_t *scratch_cap = base_arena_calloc(a, n_in == 0 ? 1 : n_in, sizeof *scratch_cap);
    if (vals == NULL || sts == NULL || ts == NULL || scratch == NULL || scratch_cap == NULL)
        return -ENOMEM;
    size_t used = 0;
    at = 0;
    for (size_t g = 0; g < gs->n_groups; g++) {
        const core_ref_group_t *grp = &gs->groups[g];
        const catalog_view_t *v = grp->view;
        const catalog_on_demand_t *od = v->on_demand;
        if (od == NULL)
            continue;
        const src_t *s = &srcs[at];
        void **scr = &scratch[at];
        size_t *scr_cap = &scratch_cap[at];
        at += od->n_inputs;
        /* A list input is decoded into one buffer per input, reused row after row: it starts
         * at twice its longest cell (enough for numbers) and grows, up to the bound that is
         * always enough (16x and 64), only when a row needs more. */
        for (size_t i = 0; i < od->n_inputs; i++) {
            const catalog_input_t *in = &od->inputs[i];
            if (s[i].cells == NULL || in->kind != CATALOG_INPUT_FEATURE ||
                !catalog_dtype_is_list(in->feature->dtype))
                continue;
            size_t longest = 0;
            for (size_t row = 0; row < n_rows; row++) {
                if (s[i].cells[row].len > longest)
                    longest = s[i].cells[row].len;
            }
            scr_cap[i] = 2 * longest + 64;
            if (!spend(&used, scr_cap[i], max_bytes))
                goto too_big;
            if ((scr[i] = base_arena_alloc(a, scr_cap[i])) == NULL)
                return -ENOMEM;
        }
        for (size_t row = 0; row < n_rows; row++) {
            for (size_t i = 0; i < od->n_inputs; i++) {
                const catalog_input_t *in = &od->inputs[i];
                vals[i] = (catalog_value_t){.type = CATALOG_DTYPE_NULL};
                sts[i] = STORE_STATUS_PRESENT;
                ts[i] = 0;
                if (s[i].values != NULL) {
                    vals[i] = s[i].values[row];
                    continue;
                }
                if (s[i].cells == NULL)
                    continue; /* no requested feature reads it */
                const core_cell_t *c = &s[i].cells[row];
                sts[i] = c->status;
                ts[i] = c->event_ts_us;
                if (in->kind == CATALOG_INPUT_EVENT_TIME) {
                    if (c->status != STORE_STATUS_NOT_FOUND && c->status != STORE_STATUS_INVALID) {
                        vals[i].type = CATALOG_DTYPE_UNIX_TIMESTAMP;
                        int64_t us = c->event_ts_us;
                        vals[i].u.i64 = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
                        sts[i] = STORE_STATUS_PRESENT;
                    }
                    continue;
                }
                if (c->status != STORE_STATUS_PRESENT || c->len == 0)
                    continue; /* null: missing, stale (past the TTL) or a null */
                int drc = catalog_value_decode(c->wire, c->len, &vals[i], scr[i], scr_cap[i]);
                if (drc == -ENOSPC && scr[i] != NULL) {
                    /* Short items (strings, bools) take more room decoded: grow once to what
                     * is always enough for this cell. */
                    size_t cap = 16 * (size_t)c->len + 64;
                    if (!spend(&used, cap, max_bytes))
                        goto too_big;
                    if ((scr[i] = base_arena_alloc(a, cap)) == NULL)
                        return -ENOMEM;
                    scr_cap[i] = cap;
                    drc = catalog_value_decode(c->wire, c->len, &vals[i], scr[i], scr_cap[i]);
                }
                if (drc < 0)
                    vals[i].type = CATALOG_DTYPE_NULL; /* never trusted; the type check is eval's */
            }
            for (size_t k = 0; k < grp->n_refs; k++) {
                const catalog_feature_t *f = &v->features[gs->feature_idx[grp->first + k]];
                core_cell_t *cell = &cells[(size_t)gs->ref_idx[grp->first + k] * n_rows + row];
                catalog_value_t out;
                size_t made = 0;
                int erc =
                    catalog_expr_eval(f, vals, as_of != NULL ? as_of[row] : now_us, a,
                                      max_bytes == 0 ? SIZE_MAX : max_bytes - used, &made, &out);
                if (erc == -EMSGSIZE || !spend(&used, made, max_bytes))
                    goto too_big;
                if (erc < 0)
                    return erc;
                const uint32_t *uses;
                size_t n_uses;
                catalog_expr_inputs(f, &uses, &n_uses);
                int64_t newest = 0;
                uint8_t missing = STORE_STATUS_NULL_VALUE;
                bool damaged = false;
                for (size_t u = 0; u < n_uses; u++) {
                    size_t i = uses[u];
                    damaged |= sts[i] == STORE_STATUS_INVALID;
                    if (ts[i] > newest)
                        newest = ts[i];
                    if (sts[i] == STORE_STATUS_NOT_FOUND)
                        missing = STORE_STATUS_NOT_FOUND;
                    else if (sts[i] == STORE_STATUS_OUTSIDE_MAX_AGE &&
                             missing != STORE_STATUS_NOT_FOUND)
                        missing = STORE_STATUS_OUTSIDE_MAX_AGE;
                }
                *cell = (core_cell_t){NULL, 0, missing, newest};
                if (damaged) {
                    /* An input from a damaged record: nothing computed from it is a value. */
                    cell->status = STORE_STATUS_INVALID;
                    continue;
                }
                char why[128];
                /* A rule broken (not_null included) leaves INVALID and no value. */
                if (catalog_validate_value(f, &out, why, sizeof why) != 0) {
                    cell->status = STORE_STATUS_INVALID;
                    continue;
                }
                if (out.type == CATALOG_DTYPE_NULL)
                    continue;
                size_t len = catalog_value_wire_size(&out);
                if (!spend(&used, len, max_bytes))
                    goto too_big;
                uint8_t *w = base_arena_alloc(a, len == 0 ? 1 : len);
                if (w == NULL)
                    return -ENOMEM;
                int n = catalog_value_encode(&out, w, len);
                if (n < 0) {
                    cell->status = STORE_STATUS_INVALID;
                    continue;
                }
                *cell = (core_cell_t){w, (uint32_t)n, STORE_STATUS_PRESENT, newest};
            }
        }
    }
    return 0;
too_big:
    snprintf(err, err_cap,
             "on-demand features would take more than %zu bytes to compute (their list inputs "
             "decoded and their values); the limit is --max-response-bytes",
             max_bytes);
    return -EMSGSIZE;
}
