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
    /* Request data of a type no join key has: read as the tensor says, converted by the core
     * to its field's type. */
    if (want != CATALOG_DTYPE_INVALID && want != CATALOG_DTYPE_INT64 &&
        want != CATALOG_DTYPE_INT32 && want != CATALOG_DTYPE_STRING && want != CATALOG_DTYPE_BYTES)
        return codec_tensor_to_values(t, a, vals, batch, why, why_cap);
    return codec_tensor_to_keys(t, want, a, vals, batch, why, why_cap);
}

static int predict_resume(server_call_t *c, bool ok, grpc_slice *resp)
{
    upstream_call_t *uc = c->resume_arg;
    char why[512];
    int rc = upstream_finish(uc, ok, resp, why, sizeof why);
    if (rc == -EREMOTEIO) {
        /* The upstream's status goes back to the caller as it came. */
        c->relayed = true;
        c->relay_status = uc->status;
    }
    return rc < 0 ? server__fail(c, rc, "%s", why) : 0;
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
    /* The outputs first: request data is needed only for those read. */
    rc = core_predict_select(ctx, &p, (const char *const *)rq->output_filter, rq->n_output_filter);
    if (rc < 0)
        return rc;
    rc = core_predict_entities(ctx, &p, input_keys, rq, rq->n_inputs);
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
        const char **names = base_arena_array(a, rq->n_inputs + 1, sizeof *names);
        Tensorflow__TensorProto **inputs = base_arena_array(a, rq->n_inputs + 1, sizeof *inputs);
        if (names == NULL || inputs == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t i = 0; i < rq->n_inputs; i++) {
            names[i] = rq->inputs[i]->key;
            inputs[i] = rq->inputs[i]->value; /* NULL stays an entry without a value */
        }
        char why[512];
        grpc_slice request;
        rc = upstream_request(&p, inputs, names, rq->n_inputs, tensors,
                              ms != NULL ? ms->signature_name : NULL, rq->output_filter,
                              rq->n_output_filter, ctx->limits->max_response_bytes, a, &request,
                              why, sizeof why);
        if (rc < 0)
            return server__fail(c, rc, "%s", why);
        core_read_end(ctx);
        upstream_call_t *uc = base_arena_alloc(a, sizeof *uc);
        if (uc == NULL) {
            grpc_slice_unref(request);
            return server__fail(c, -ENOMEM, "out of memory");
        }
        c->resume = predict_resume;
        c->resume_arg = uc;
        rc = upstream_start(server__call_upstreams(c), &p.model->upstream, request, c->deadline,
                            c->call, server__call_cq(c), c, NULL, NULL, uc, why, sizeof why);
        return rc < 0 ? server__fail(c, rc, "%s", why) : SERVER_PENDING;
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
