/* server/rpc_predict.c - TF Serving Predict: feature tensors, or features sent on to a model. */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "server/server_int.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

/*
 * Decode the PredictRequest -> the core's Predict (binding, entity inputs through
 * codec_tensor_to_keys(), outputs, one dense tensor per feature) -> either the features-only
 * PredictResponse, written by hand, or, with an upstream in the binding, the caller's inputs
 * plus the feature tensors sent on to the upstream model server; the call then continues
 * asynchronously (SERVER_PENDING), and the upstream's answer, good or bad, is what the caller
 * gets.
 */

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

/* core_input_fn over the request's input tensors. */
static int input_keys(void *arg, const char *input, catalog_dtype_t want, base_arena_t *a,
                      catalog_value_t **vals, size_t *batch, char *why, size_t why_cap)
{
    const Tensorflow__TensorProto *t = find_input(arg, input);
    if (t == NULL)
        return -ENOENT;
    return codec_tensor_to_keys(t, want, a, vals, batch, why, why_cap);
}

static int predict_resume(server_call_t *c, bool ok, grpc_slice *resp)
{
    return server__upstream_finish(c, c->resume_arg, ok, resp);
}

typedef Tensorflow__Serving__PredictRequest__InputsEntry input_entry_t;

/* The upstream's request: the caller's inputs (entity inputs unless dropped) plus one input per
 * feature (all of outs), for the binding's upstream model. Packed here, while the cells are still
 * readable. */
static int upstream_request(server_call_t *c, const core_predict_t *p,
                            const Tensorflow__Serving__PredictRequest *rq,
                            Tensorflow__TensorProto *tensors, grpc_slice *out)
{
    base_arena_t *a = &c->arena;
    const catalog_model_t *m = p->model;
    const catalog_upstream_t *up = &m->upstream;
    size_t n_feat = p->outs->n;

    size_t cap = rq->n_inputs + n_feat;
    input_entry_t **inputs = base_arena_calloc(a, cap == 0 ? 1 : cap, sizeof *inputs);
    input_entry_t *fe = base_arena_calloc(a, n_feat == 0 ? 1 : n_feat, sizeof *fe);
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
        if (core_predict_output(p, key, strlen(key)) >= 0)
            return server__fail(c, -EINVAL,
                                "input '%.128s' has the name of a feature of service '%s', "
                                "which fstore adds; rename the input",
                                key, m->service->name);
        inputs[n++] = rq->inputs[i];
    }
    for (size_t i = 0; i < n_feat; i++) {
        tensorflow__serving__predict_request__inputs_entry__init(&fe[i]);
        fe[i].key = (char *)p->outs->names[i];
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
    base_arena_t *a = &c->arena;
    core_ctx_t *ctx = &c->ctx;

    Tensorflow__Serving__PredictRequest *rq = NULL;
    int rc = codec_unpack(ctx, &tensorflow__serving__predict_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    const Tensorflow__Serving__ModelSpec *ms = rq->model_spec;
    core_model_spec_t spec = {.name = ms != NULL ? ms->name : NULL};
    if (ms != NULL &&
        ms->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION) {
        spec.has_version = true;
        spec.version = ms->version != NULL ? ms->version->value : 0;
    } else if (ms != NULL && ms->version_choice_case ==
                                 TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION_LABEL) {
        spec.label = ms->version_label;
    }
    core_predict_t p;
    rc = core_predict_begin(ctx, &spec, &p);
    if (rc < 0)
        return rc;
    rc = core_predict_entities(ctx, &p, input_keys, rq, rq->n_inputs);
    if (rc < 0)
        return rc;
    rc = core_predict_select(ctx, &p, (const char *const *)rq->output_filter, rq->n_output_filter);
    if (rc < 0)
        return rc;
    rc = core_predict_read(ctx, &p);
    if (rc < 0)
        return rc;
    Tensorflow__TensorProto *tensors =
        base_arena_array(a, p.n_out == 0 ? 1 : p.n_out, sizeof *tensors);
    if (tensors == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < p.n_out; i++) {
        if (codec_tensor_from_core(&p.tensors[i], a, &tensors[i]) < 0)
            return server__fail(c, -ENOMEM, "out of memory");
    }

    if (p.model->has_upstream) {
        if (server__call_cq(c) == NULL)
            return server__fail(c, -EOPNOTSUPP,
                                "model binding '%s' sends its features to an "
                                "upstream, which an in-process call cannot reach",
                                p.model->name);
        grpc_slice request;
        rc = upstream_request(c, &p, rq, tensors, &request);
        if (rc < 0)
            return rc;
        core_read_end(ctx);
        server_upstream_call_t *uc = base_arena_alloc(a, sizeof *uc);
        if (uc == NULL) {
            grpc_slice_unref(request);
            return server__fail(c, -ENOMEM, "out of memory");
        }
        c->resume = predict_resume;
        c->resume_arg = uc;
        rc = server__upstream_start(c, &p.model->upstream, request, uc);
        return rc < 0 ? rc : SERVER_PENDING;
    }

    /* The response is written by hand (codec/predict_encode.c), with the bytes protobuf-c would
     * pack; model_spec is echoed with the version that served the call. */
    codec_predict_response_t r = {.n_outputs = p.n_out,
                                  .names = p.names,
                                  .name_lens = p.name_lens,
                                  .tensors = tensors,
                                  .model_name = p.model->name,
                                  .has_version = true,
                                  .version = p.model->version,
                                  .signature_name = ms->signature_name};
    codec_predict_sizes_t *sizes = base_arena_array(a, p.n_out == 0 ? 1 : p.n_out, sizeof *sizes);
    if (sizes == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    grpc_slice s;
    size_t size = codec_predict_size(&r, sizes);
    rc = server__response_slice(c, "response", size, &s);
    if (rc < 0)
        return rc;
    size_t written = codec_predict_write(&r, sizes, GRPC_SLICE_START_PTR(s));
    assert(written == size);
    (void)written;
    *resp = s;
    return 0;
}
