/* core/predict.c - Predict's features-only assembly: binding, entity inputs, outputs, tensors. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"

/*
 * A request names a model binding, whose entity inputs carry the join keys and whose feature
 * service says what to read. The read is GetOnlineFeatures' own (core_read_features(), one store
 * snapshot); only the result differs: one dense tensor per feature. Output names are feature
 * names, qualified by view where they collide (predict_outputs.c), computed once per catalog and
 * service per worker. What a tensor looks like on the wire, and where a passthrough sends it, is
 * the transport's business.
 */

/* NOT_FOUND naming the bindings that exist. */
static int fail_no_model(core_ctx_t *ctx, const catalog_t *cat, const core_model_spec_t *spec)
{
    char want[CATALOG_MAX_NAME + 64];
    if (spec->has_version)
        snprintf(want, sizeof want, "'%.128s' version %" PRId64, spec->name, spec->version);
    else if (spec->label != NULL)
        snprintf(want, sizeof want, "'%.128s' label '%.40s'", spec->name, spec->label);
    else
        snprintf(want, sizeof want, "'%.128s'", spec->name);
    char have[CORE_MSG_MAX / 2];
    size_t n = 0;
    have[0] = '\0';
    size_t count = catalog_model_count(cat);
    for (size_t i = 0; i < count && n < sizeof have; i++) {
        const catalog_model_t *m = catalog_model_at(cat, i);
        n += (size_t)snprintf(have + n, sizeof have - n, "%s%s@v%" PRId64, i > 0 ? ", " : "",
                              m->name, m->version);
        if (m->version_label[0] != '\0' && n < sizeof have)
            n += (size_t)snprintf(have + n, sizeof have - n, " (label '%s')", m->version_label);
    }
    return core_fail(ctx, -ENOENT, "model binding %s not found; the catalog has %s", want,
                     count == 0 ? "no model bindings" : have);
}

/* The request fields the on-demand features among refs read, each once (by name: a request
 * carries one value per name), into p. Returns: 0, -ENOMEM. */
static int request_fields(core_ctx_t *ctx, const catalog_feature_ref_t *refs, size_t n_refs,
                          core_predict_t *p)
{
    size_t n_fields = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const catalog_on_demand_t *od = refs[i].view->on_demand;
        for (size_t k = 0; od != NULL && k < od->n_inputs; k++)
            n_fields += od->inputs[k].kind == CATALOG_INPUT_REQUEST;
    }
    p->request_fields = NULL;
    p->n_request_fields = 0;
    if (n_fields == 0)
        return 0;
    const catalog_input_t **fields = base_arena_array(ctx->arena, n_fields, sizeof *fields);
    if (fields == NULL)
        return -ENOMEM;
    size_t nf = 0;
    for (size_t i = 0; i < n_refs; i++) {
        const catalog_on_demand_t *od = refs[i].view->on_demand;
        if (od == NULL)
            continue;
        /* Only the fields this feature reads. */
        const uint32_t *uses;
        size_t n_uses;
        catalog_expr_inputs(refs[i].feature, &uses, &n_uses);
        for (size_t u = 0; u < n_uses; u++) {
            const catalog_input_t *in = &od->inputs[uses[u]];
            bool seen = in->kind != CATALOG_INPUT_REQUEST;
            for (size_t j = 0; j < nf && !seen; j++)
                seen = strcmp(fields[j]->field->name, in->field->name) == 0;
            if (!seen)
                fields[nf++] = in;
        }
    }
    p->request_fields = fields;
    p->n_request_fields = nf;
    return 0;
}

int core_predict_begin(core_ctx_t *ctx, const core_model_spec_t *spec, core_predict_t *p)
{
    memset(p, 0, sizeof *p);
    const catalog_t *cat = ctx->catalog;
    if (spec->name == NULL || spec->name[0] == '\0')
        return core_fail(ctx, -EINVAL, "model_spec.name is required (a model binding)");
    const catalog_model_t *m = NULL;
    if (catalog_find_model(cat, spec->name, spec->has_version ? spec->version : 0, spec->label,
                           &m) < 0)
        return core__unknown(ctx, fail_no_model(ctx, cat, spec));
    int rc = core_authorize_model(ctx, m->name);
    if (rc < 0)
        return rc;
    const catalog_service_t *svc = m->service;
    size_t n_refs = svc->n_features;
    if (n_refs > ctx->limits->max_features)
        return core_fail(ctx, -E2BIG,
                         "feature service '%s' has %zu features; the limit is %zu "
                         "(--max-features)",
                         svc->name, n_refs, ctx->limits->max_features);
    const core_outputs_t *outs = NULL;
    if (core__outputs_get(ctx->worker->predict_cache, ctx->arena, cat, svc, &outs) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (outs->offline < n_refs) {
        const catalog_view_t *v = svc->features[outs->offline].view;
        return core_fail(ctx, -EINVAL, "feature view '%s@v%u' is not online", v->name,
                         (unsigned)v->version);
    }
    if (request_fields(ctx, svc->features, n_refs, p) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    p->model = m;
    p->outs = outs;
    return 0;
}

/* The type of join key `name` in the service's views; for a key no view uses, INVALID (the
 * transport then reads the input as its own type says). */
static catalog_dtype_t join_key_type(const catalog_service_t *svc, const char *name)
{
    for (size_t i = 0; i < svc->n_features; i++) {
        const catalog_view_t *v = svc->features[i].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strcmp(v->join_keys[k].name, name) == 0)
                return v->join_keys[k].dtype;
        }
    }
    return CATALOG_DTYPE_INVALID;
}

int core_predict_entities(core_ctx_t *ctx, core_predict_t *p, core_input_fn input, void *arg,
                          size_t n_inputs)
{
    base_arena_t *a = ctx->arena;
    const catalog_model_t *m = p->model;
    size_t n = m->n_entity_inputs;
    core_columns_t *out = &p->ents;
    memset(out, 0, sizeof *out);
    out->names = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *out->names);
    out->cols = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *out->cols);
    if (out->names == NULL || out->cols == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    /* A binding whose views are all entityless reads one row. */
    out->n_rows = 1;
    char why[256];
    for (size_t i = 0; i < n; i++) {
        const catalog_entity_input_t *ei = &m->entity_inputs[i];
        catalog_dtype_t want = join_key_type(m->service, ei->join_key);
        catalog_value_t *vals = NULL;
        size_t batch = 0;
        why[0] = '\0';
        int rc = input(arg, ei->input, want, a, &vals, &batch, why, sizeof why);
        if (rc == -ENOENT)
            return core_fail(ctx, -EINVAL,
                             "model binding '%s@v%" PRId64 "' needs entity input '%s' (join "
                             "key '%s'); the request has %zu input(s) without it",
                             m->name, m->version, ei->input, ei->join_key, n_inputs);
        if (rc == -ENOMEM)
            return core_fail(ctx, rc, "out of memory");
        if (rc < 0)
            return core_fail(ctx, rc, "entity input '%s' %s", ei->input, why);
        if (i > 0 && batch != out->n_rows)
            return core_fail(ctx, -EINVAL,
                             "entity inputs disagree on the batch size: '%s' has %zu rows, "
                             "'%s' has %zu",
                             m->entity_inputs[0].input, out->n_rows, ei->input, batch);
        out->n_rows = batch;
        out->names[i] = ei->join_key;
        out->cols[i] = vals;
    }
    out->n_cols = n;
    /* Request data: inputs named like the fields, one batch with the entities. */
    size_t nf = p->n_request_fields;
    core_columns_t *rq = &p->request;
    memset(rq, 0, sizeof *rq);
    rq->names = base_arena_calloc(a, nf == 0 ? 1 : nf, sizeof *rq->names);
    rq->cols = base_arena_calloc(a, nf == 0 ? 1 : nf, sizeof *rq->cols);
    if (rq->names == NULL || rq->cols == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        const catalog_input_t *in = p->request_fields[i];
        catalog_value_t *vals = NULL;
        size_t batch = 0;
        why[0] = '\0';
        int rc = input(arg, in->field->name, in->field->dtype, a, &vals, &batch, why, sizeof why);
        if (rc == -ENOENT)
            return core_fail(ctx, -EINVAL,
                             "model binding '%s@v%" PRId64 "' needs request input '%s' (%s, "
                             "request source '%s', read by its on-demand features); the "
                             "request has %zu input(s) without it",
                             m->name, m->version, in->field->name,
                             catalog_dtype_name(in->field->dtype), in->source->name, n_inputs);
        if (rc == -ENOMEM)
            return core_fail(ctx, rc, "out of memory");
        if (rc < 0)
            return core_fail(ctx, rc, "request input '%s' %s", in->field->name, why);
        if ((n > 0 || i > 0) && batch != out->n_rows)
            return core_fail(ctx, -EINVAL, "request input '%s' has %zu rows; the batch has %zu",
                             in->field->name, batch, out->n_rows);
        out->n_rows = batch;
        rq->names[i] = in->field->name;
        rq->cols[i] = vals;
    }
    rq->n_cols = nf;
    rq->n_rows = out->n_rows;
    if (out->n_rows > ctx->limits->max_entities)
        return core_fail(ctx, -E2BIG,
                         "the batch has %zu entity rows; the limit is %zu (--max-entities)",
                         out->n_rows, ctx->limits->max_entities);
    return 0;
}

int core_predict_select(core_ctx_t *ctx, core_predict_t *p, const char *const *filter,
                        size_t n_filter)
{
    const core_outputs_t *outs = p->outs;
    size_t n = outs->n;
    /* A passthrough reads them all: output_filter is the upstream's business. */
    if (p->model->has_upstream || n_filter == 0) {
        p->refs = outs->service->features;
        p->names = outs->names;
        p->name_lens = outs->name_lens;
        p->n_out = n;
        return 0;
    }
    base_arena_t *a = ctx->arena;
    bool *wanted = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *wanted);
    catalog_feature_ref_t *refs = base_arena_array(a, n == 0 ? 1 : n, sizeof *refs);
    const char **names = base_arena_array(a, n == 0 ? 1 : n, sizeof *names);
    size_t *lens = base_arena_array(a, n == 0 ? 1 : n, sizeof *lens);
    if (wanted == NULL || refs == NULL || names == NULL || lens == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t k = 0; k < n_filter; k++) {
        long i = core__outputs_find(outs, filter[k], strlen(filter[k]));
        if (i < 0) {
            char have[CORE_MSG_MAX / 2];
            size_t len = 0;
            have[0] = '\0';
            for (size_t j = 0; j < n && len < sizeof have; j++)
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", j > 0 ? ", " : "",
                                        outs->names[j]);
            return core_fail(ctx, -EINVAL,
                             "output_filter names '%.128s', not an output of "
                             "this model; the outputs are: %s",
                             filter[k], have);
        }
        wanted[i] = true;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (wanted[i]) {
            refs[k] = outs->service->features[i];
            lens[k] = outs->name_lens[i];
            names[k++] = outs->names[i];
        }
    }
    p->refs = refs;
    p->names = names;
    p->name_lens = lens;
    p->n_out = k;
    /* Request data: only what the selected outputs read. */
    if (request_fields(ctx, refs, k, p) < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    return 0;
}

/* "driver_id=1003, customer_id=\"c7\"" for error messages. */
static void describe_row(const catalog_model_t *m, const core_columns_t *ents, size_t row,
                         char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ents->n_cols && n < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=", i > 0 ? ", " : "",
                              m->entity_inputs[i].input);
        if (n < cap)
            n += catalog_value_format(&ents->cols[i][row], buf + n, cap - n);
    }
    if (ents->n_cols == 0)
        snprintf(buf, cap, "row %zu", row);
}

int core_predict_read(core_ctx_t *ctx, core_predict_t *p)
{
    base_arena_t *a = ctx->arena;
    const catalog_model_t *m = p->model;
    size_t n_out = p->n_out, n_rows = p->ents.n_rows;
    core_cell_t *cells =
        base_arena_array(a, n_out * n_rows == 0 ? 1 : n_out * n_rows, sizeof *cells);
    /* Each tensor is initialized by core__tensor_from_cells(). */
    core_tensor_t *tensors = base_arena_array(a, n_out == 0 ? 1 : n_out, sizeof *tensors);
    if (cells == NULL || tensors == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (ctx->min_seq > 0) {
        int wrc = core__wait_min_seq(ctx);
        if (wrc < 0)
            return wrc;
    }
    int rc = core__snapshot_begin(ctx);
    if (rc < 0)
        return rc;
    store_reader_t *reader = ctx->worker->reader;
    rc = core_read_features(reader, a, p->refs, n_out, NULL, &p->ents, &p->request, store_now_us(),
                            ctx->limits->max_response_bytes, cells, ctx->msg, sizeof ctx->msg);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n_out; i++) {
        size_t j = 0;
        while (j < i && p->refs[j].view != p->refs[i].view)
            j++;
        if (j == i)
            core__count_reads(ctx, p->refs[i].view, n_rows);
    }
    /* The tensors carry at least the stored values' bytes (decoded, often more), so a batch
     * whose values alone pass the limit is refused before anything is decoded into the arena;
     * the transport checks the exact size again when it encodes. */
    size_t at_least = 0;
    for (size_t i = 0; i < n_out * n_rows; i++)
        at_least += cells[i].len;
    if (at_least > ctx->limits->max_response_bytes)
        return core_fail(ctx, -EMSGSIZE,
                         "%s would be at least %zu bytes; the limit is %zu (--max-response-bytes)",
                         m->has_upstream ? "upstream request" : "response", at_least,
                         ctx->limits->max_response_bytes);
    for (size_t i = 0; i < n_out; i++) {
        char why[256], row_desc[256];
        size_t bad_row = 0;
        rc = core__tensor_from_cells(p->refs[i].feature, &cells[i * n_rows], n_rows,
                                     m->on_missing == CATALOG_ON_MISSING_ZERO, a, &tensors[i],
                                     &bad_row, why, sizeof why);
        if (rc == -ENOMEM)
            return core_fail(ctx, rc, "out of memory");
        if (rc < 0) {
            describe_row(m, &p->ents, bad_row, row_desc, sizeof row_desc);
            return core_fail(ctx, rc, "entity %s: feature '%s@v%u:%s' (output '%s'): %s", row_desc,
                             p->refs[i].view->name, (unsigned)p->refs[i].view->version,
                             p->refs[i].feature->name, p->names[i], why);
        }
    }
    p->cells = cells;
    p->tensors = tensors;
    return 0;
}

long core_predict_output(const core_predict_t *p, const char *name, size_t len)
{
    return core__outputs_find(p->outs, name, len);
}
