/* server/rpc_predict.c - TF Serving Predict: feature tensors, or features sent on to a model. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

/*
 * The request names a model binding (model_spec), whose entity inputs carry the join keys and
 * whose feature service says what to read. The read is GetOnlineFeatures' own
 * (server__read_features(), one store snapshot); only the encoding differs: one tensor per
 * feature. Without an upstream those tensors are the response. With one, they are added to the
 * caller's inputs and the call continues asynchronously (SERVER_PENDING): the upstream's answer,
 * good or bad, is what the caller gets.
 *
 * Output names (server/predict_outputs.c) are feature names, qualified by view where they collide;
 * each read worker computes them once per catalog and service.
 */

/* NOT_FOUND naming the bindings that exist. */
static int fail_no_model(server_call_t *c, const catalog_t *cat,
                         const Tensorflow__Serving__ModelSpec *spec)
{
    char want[CATALOG_MAX_NAME + 64];
    if (spec->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION)
        snprintf(want, sizeof want, "'%.128s' version %" PRId64, spec->name,
                 spec->version != NULL ? spec->version->value : 0);
    else if (spec->version_choice_case ==
             TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL)
        snprintf(want, sizeof want, "'%.128s' label '%.40s'", spec->name, spec->version_label);
    else
        snprintf(want, sizeof want, "'%.128s'", spec->name);
    char have[SERVER_MSG_MAX / 2];
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
    return server__fail(c, -ENOENT, "model binding %s not found; the catalog has %s", want,
                        count == 0 ? "no model bindings" : have);
}

static const Tensorflow__TensorProto *find_input(const Tensorflow__Serving__PredictRequest *rq,
                                                 const char *name)
{
    /* An entry without a value is an empty tensor, as in protobuf's own map semantics. */
    static const Tensorflow__TensorProto empty = TENSORFLOW__TENSOR_PROTO__INIT;
    /* The last entry wins, as when protobuf parses a map with a repeated key. */
    for (size_t i = rq->n_inputs; i-- > 0;) {
        if (strcmp(rq->inputs[i]->key, name) == 0)
            return rq->inputs[i]->value != NULL ? rq->inputs[i]->value : &empty;
    }
    return NULL;
}

/* The type of join key `name` in the service's views; for a key no view uses, the tensor's. */
static catalog_dtype_t join_key_type(const catalog_service_t *svc, const char *name,
                                     const Tensorflow__TensorProto *t)
{
    for (size_t i = 0; i < svc->n_features; i++) {
        const catalog_view_t *v = svc->features[i].view;
        for (size_t k = 0; k < v->n_join_keys; k++) {
            if (strcmp(v->join_keys[k].name, name) == 0)
                return v->join_keys[k].dtype;
        }
    }
    return t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING ? CATALOG_DTYPE_STRING
                                                        : CATALOG_DTYPE_INT64;
}

/* Entity inputs -> columns named by join key, every one with the same batch size. */
static int entity_columns(server_call_t *c, const catalog_model_t *m,
                          const Tensorflow__Serving__PredictRequest *rq, server_columns_t *out)
{
    server_arena_t *a = &c->arena;
    size_t n = m->n_entity_inputs;
    memset(out, 0, sizeof *out);
    out->names = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *out->names);
    out->cols = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *out->cols);
    if (out->names == NULL || out->cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    /* A binding whose views are all entityless reads one row. */
    out->n_rows = 1;
    char why[256];
    for (size_t i = 0; i < n; i++) {
        const catalog_entity_input_t *ei = &m->entity_inputs[i];
        const Tensorflow__TensorProto *t = find_input(rq, ei->input);
        if (t == NULL)
            return server__fail(c, -EINVAL,
                                "model binding '%s@v%" PRId64 "' needs entity input '%s' (join "
                                "key '%s'); the request has %zu input(s) without it",
                                m->name, m->version, ei->input, ei->join_key, rq->n_inputs);
        catalog_dtype_t want = join_key_type(m->service, ei->join_key, t);
        catalog_value_t *vals = NULL;
        size_t batch = 0;
        int rc = server__tensor_to_keys(t, want, a, &vals, &batch, why, sizeof why);
        if (rc == -ENOMEM)
            return server__fail(c, rc, "out of memory");
        if (rc < 0)
            return server__fail(c, rc, "entity input '%s' %s", ei->input, why);
        if (i > 0 && batch != out->n_rows)
            return server__fail(c, -EINVAL,
                                "entity inputs disagree on the batch size: '%s' has %zu rows, "
                                "'%s' has %zu",
                                m->entity_inputs[0].input, out->n_rows, ei->input, batch);
        out->n_rows = batch;
        out->names[i] = ei->join_key;
        out->cols[i] = vals;
    }
    out->n_cols = n;
    return 0;
}

/* "driver_id=1003, customer_id=\"c7\"" for error messages. */
static void describe_row(const catalog_model_t *m, const server_columns_t *ents, size_t row,
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

/* Which of the service's features to read, in service order: all of them (outs's own arrays, no
 * copy), or those output_filter names. A passthrough reads them all: output_filter is the
 * upstream's business. */
static int select_outputs(server_call_t *c, const Tensorflow__Serving__PredictRequest *rq,
                          const catalog_model_t *m, const server_predict_outputs_t *outs,
                          const catalog_feature_ref_t **refs_out, const char *const **names_out,
                          const size_t **lens_out, size_t *n_out)
{
    size_t n = outs->n;
    if (m->has_upstream || rq->n_output_filter == 0) {
        *refs_out = outs->service->features;
        *names_out = outs->names;
        *lens_out = outs->name_lens;
        *n_out = n;
        return 0;
    }
    server_arena_t *a = &c->arena;
    bool *wanted = server__arena_calloc(a, n == 0 ? 1 : n, sizeof *wanted);
    catalog_feature_ref_t *refs = server__arena_array(a, n == 0 ? 1 : n, sizeof *refs);
    const char **names = server__arena_array(a, n == 0 ? 1 : n, sizeof *names);
    size_t *lens = server__arena_array(a, n == 0 ? 1 : n, sizeof *lens);
    if (wanted == NULL || refs == NULL || names == NULL || lens == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t k = 0; k < rq->n_output_filter; k++) {
        long i = server__predict_outputs_find(outs, rq->output_filter[k]);
        if (i < 0) {
            char have[SERVER_MSG_MAX / 2];
            size_t len = 0;
            have[0] = '\0';
            for (size_t j = 0; j < n && len < sizeof have; j++)
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%s", j > 0 ? ", " : "",
                                        outs->names[j]);
            return server__fail(c, -EINVAL,
                                "output_filter names '%.128s', not an output of "
                                "this model; the outputs are: %s",
                                rq->output_filter[k], have);
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
    *refs_out = refs;
    *names_out = names;
    *lens_out = lens;
    *n_out = k;
    return 0;
}

static int predict_resume(server_call_t *c, bool ok, grpc_slice *resp)
{
    return server__upstream_finish(c, c->resume_arg, ok, resp);
}

typedef Tensorflow__Serving__PredictRequest__InputsEntry input_entry_t;

/* The upstream's request: the caller's inputs (entity inputs unless dropped) plus one input per
 * feature (all of outs), for the binding's upstream model. Packed here, while the cells are still
 * readable. */
static int upstream_request(server_call_t *c, const catalog_model_t *m,
                            const Tensorflow__Serving__PredictRequest *rq,
                            const server_predict_outputs_t *outs, Tensorflow__TensorProto *tensors,
                            grpc_slice *out)
{
    server_arena_t *a = &c->arena;
    const catalog_upstream_t *up = &m->upstream;
    size_t n_feat = outs->n;

    size_t cap = rq->n_inputs + n_feat;
    input_entry_t **inputs = server__arena_calloc(a, cap == 0 ? 1 : cap, sizeof *inputs);
    input_entry_t *fe = server__arena_calloc(a, n_feat == 0 ? 1 : n_feat, sizeof *fe);
    if (inputs == NULL || fe == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < rq->n_inputs; i++) {
        const char *key = rq->inputs[i]->key;
        bool is_entity = false;
        for (size_t k = 0; k < m->n_entity_inputs && !is_entity; k++)
            is_entity = strcmp(m->entity_inputs[k].input, key) == 0;
        if (is_entity && !up->keep_entity_inputs)
            continue;
        if (server__predict_outputs_find(outs, key) >= 0)
            return server__fail(c, -EINVAL,
                                "input '%.128s' has the name of a feature of service '%s', "
                                "which fstore adds; rename the input",
                                key, m->service->name);
        inputs[n++] = rq->inputs[i];
    }
    for (size_t i = 0; i < n_feat; i++) {
        tensorflow__serving__predict_request__inputs_entry__init(&fe[i]);
        fe[i].key = (char *)outs->names[i];
        fe[i].value = &tensors[i];
        inputs[n++] = &fe[i];
    }

    Tensorflow__Serving__ModelSpec spec = TENSORFLOW__SERVING__MODEL_SPEC__INIT;
    spec.name = (char *)up->model_name;
    /* The binding's signature wins; without one the caller's choice goes through. */
    spec.signature_name = up->signature_name[0] != '\0' ? (char *)up->signature_name
                          : rq->model_spec != NULL      ? rq->model_spec->signature_name
                                                        : (char *)"";
    Tensorflow__Serving__PredictRequest urq = TENSORFLOW__SERVING__PREDICT_REQUEST__INIT;
    urq.model_spec = &spec;
    urq.n_inputs = n;
    urq.inputs = inputs;
    urq.n_output_filter = rq->n_output_filter;
    urq.output_filter = rq->output_filter;
    /* What we send is bounded like what we answer: the features of a whole batch can be far
     * larger than the caller's request. */
    grpc_slice s;
    int rc = server__response_slice(
        c, "upstream request", tensorflow__serving__predict_request__get_packed_size(&urq), &s);
    if (rc < 0)
        return rc;
    tensorflow__serving__predict_request__pack(&urq, GRPC_SLICE_START_PTR(s));
    *out = s;
    return 0;
}

int server__rpc_predict(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    server_arena_t *a = &c->arena;
    const server_limits_t *lim = server__call_limits(c);
    const catalog_t *cat = c->catalog;
    store_reader_t *reader = server__call_reader(c);
    bool reading = false;
    int rc = 0;

    Tensorflow__Serving__PredictRequest *rq = NULL;
    rc = server__unpack(c, &tensorflow__serving__predict_request__descriptor, req, len,
                        (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    const Tensorflow__Serving__ModelSpec *spec = rq->model_spec;
    if (spec == NULL || spec->name[0] == '\0')
        return server__fail(c, -EINVAL, "model_spec.name is required (a model binding)");

    int64_t version = 0;
    const char *label = NULL;
    if (spec->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION &&
        spec->version != NULL)
        version = spec->version->value;
    else if (spec->version_choice_case ==
             TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL)
        label = spec->version_label;
    const catalog_model_t *m = NULL;
    if (catalog_find_model(cat, spec->name, version, label, &m) < 0)
        return fail_no_model(c, cat, spec);

    const catalog_service_t *svc = m->service;
    size_t n_refs = svc->n_features;
    if (n_refs > lim->max_features)
        return server__fail(c, -E2BIG,
                            "feature service '%s' has %zu features; the limit is %zu "
                            "(--max-features)",
                            svc->name, n_refs, lim->max_features);
    const server_predict_outputs_t *outs = NULL;
    if (server__predict_outputs_get(server__call_predict_cache(c), a, cat, svc, &outs) < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (outs->offline < n_refs) {
        const catalog_view_t *v = svc->features[outs->offline].view;
        return server__fail(c, -EINVAL, "feature view '%s@v%u' is not online", v->name,
                            (unsigned)v->version);
    }

    server_columns_t ents;
    rc = entity_columns(c, m, rq, &ents);
    if (rc < 0)
        return rc;
    size_t n_rows = ents.n_rows;
    if (n_rows > lim->max_entities)
        return server__fail(c, -E2BIG,
                            "the batch has %zu entity rows; the limit is %zu (--max-entities)",
                            n_rows, lim->max_entities);

    const catalog_feature_ref_t *refs = NULL;
    const char *const *names = NULL;
    const size_t *name_lens = NULL;
    size_t n_out = 0;
    rc = select_outputs(c, rq, m, outs, &refs, &names, &name_lens, &n_out);
    if (rc < 0)
        return rc;

    server_cell_t *cells =
        server__arena_array(a, n_out * n_rows == 0 ? 1 : n_out * n_rows, sizeof *cells);
    /* Each tensor is initialized by server__tensor_from_cells(). */
    Tensorflow__TensorProto *tensors =
        server__arena_array(a, n_out == 0 ? 1 : n_out, sizeof *tensors);
    if (cells == NULL || tensors == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    rc = store_read_begin(reader);
    if (rc < 0)
        return server__fail(c, rc, "store read failed: %s", strerror(-rc));
    reading = true;
    rc = server__read_features(reader, a, refs, n_out, NULL, &ents, store_now_us(), cells, c->msg,
                               sizeof c->msg);
    if (rc < 0)
        goto out;
    /* The tensors carry at least the stored values' bytes (decoded, often more), so a batch
     * whose values alone pass the limit is refused before anything is decoded into the arena;
     * the exact size is checked again when the message is packed. */
    size_t at_least = 0;
    for (size_t i = 0; i < n_out * n_rows; i++)
        at_least += cells[i].len;
    if (at_least > lim->max_response_bytes) {
        rc = server__fail(
            c, -EMSGSIZE, "%s would be at least %zu bytes; the limit is %zu (--max-response-bytes)",
            m->has_upstream ? "upstream request" : "response", at_least, lim->max_response_bytes);
        goto out;
    }
    for (size_t i = 0; i < n_out; i++) {
        char why[256], row_desc[256];
        size_t bad_row = 0;
        rc = server__tensor_from_cells(refs[i].feature, &cells[i * n_rows], n_rows,
                                       m->on_missing == CATALOG_ON_MISSING_ZERO, a, &tensors[i],
                                       &bad_row, why, sizeof why);
        if (rc == -ENOMEM) {
            rc = server__fail(c, rc, "out of memory");
            goto out;
        }
        if (rc < 0) {
            describe_row(m, &ents, bad_row, row_desc, sizeof row_desc);
            rc = server__fail(c, rc, "entity %s: feature '%s@v%u:%s' (output '%s'): %s", row_desc,
                              refs[i].view->name, (unsigned)refs[i].view->version,
                              refs[i].feature->name, names[i], why);
            goto out;
        }
    }

    if (m->has_upstream) {
        grpc_slice request;
        rc = upstream_request(c, m, rq, outs, tensors, &request);
        if (rc < 0)
            goto out;
        store_read_end(reader);
        reading = false;
        server_upstream_call_t *uc = server__arena_alloc(a, sizeof *uc);
        if (uc == NULL) {
            grpc_slice_unref(request);
            return server__fail(c, -ENOMEM, "out of memory");
        }
        c->resume = predict_resume;
        c->resume_arg = uc;
        rc = server__upstream_start(c, &m->upstream, request, uc);
        return rc < 0 ? rc : SERVER_PENDING;
    }

    /* The response is written by hand (predict_encode.c), with the bytes protobuf-c would pack;
     * model_spec is echoed with the version that served the call. */
    server_predict_response_t r = {.n_outputs = n_out,
                                   .names = names,
                                   .name_lens = name_lens,
                                   .tensors = tensors,
                                   .model_name = m->name,
                                   .has_version = true,
                                   .version = m->version,
                                   .signature_name = spec->signature_name};
    server_predict_sizes_t *sizes = server__arena_array(a, n_out == 0 ? 1 : n_out, sizeof *sizes);
    if (sizes == NULL) {
        rc = server__fail(c, -ENOMEM, "out of memory");
        goto out;
    }
    grpc_slice s;
    size_t size = server__predict_size(&r, sizes);
    rc = server__response_slice(c, "response", size, &s);
    if (rc < 0)
        goto out;
    size_t written = server__predict_write(&r, sizes, GRPC_SLICE_START_PTR(s));
    assert(written == size);
    (void)written;
    *resp = s;
out:
    if (reading)
        store_read_end(reader);
    return rc;
}
