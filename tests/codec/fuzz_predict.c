/* tests/codec/fuzz_predict.c - libFuzzer: PredictRequest bytes from the network. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A copy of t without the unknown fields protobuf-c kept from the input (it packs them back; a
 * response fstore builds never has any), in a. */
static Tensorflow__TensorProto known_fields(const Tensorflow__TensorProto *t, base_arena_t *a)
{
    Tensorflow__TensorProto c = *t;
    c.base.n_unknown_fields = 0;
    c.base.unknown_fields = NULL;
    /* Read from upstreams' answers (HTTP passthrough), never written by fstore's encoder. */
    c.n_uint32_val = 0;
    c.n_uint64_val = 0;
    if (t->tensor_shape != NULL) {
        Tensorflow__TensorShapeProto *sh = base_arena_alloc(a, sizeof *sh);
        Tensorflow__TensorShapeProto__Dim **dims =
            base_arena_alloc(a, (t->tensor_shape->n_dim + 1) * sizeof *dims);
        if (sh == NULL || dims == NULL)
            abort();
        *sh = *t->tensor_shape;
        sh->base.n_unknown_fields = 0;
        sh->base.unknown_fields = NULL;
        for (size_t i = 0; i < sh->n_dim; i++) {
            dims[i] = base_arena_alloc(a, sizeof *dims[i]);
            if (dims[i] == NULL)
                abort();
            *dims[i] = *t->tensor_shape->dim[i];
            dims[i]->base.n_unknown_fields = 0;
            dims[i]->base.unknown_fields = NULL;
        }
        sh->dim = dims;
        c.tensor_shape = sh;
    }
    return c;
}

/*
 * The hand-written PredictResponse encoder (predict_encode.c) against protobuf-c, on whatever
 * tensors the bytes hold: the request's inputs answered back as outputs, with its model_spec.
 * Sizes and bytes must be the same.
 */
static void check_encoder(const Tensorflow__Serving__PredictRequest *rq, base_arena_t *a)
{
    size_t n = rq->n_inputs;
    Tensorflow__TensorProto *ts = base_arena_alloc(a, (n + 1) * sizeof *ts);
    const char **names = base_arena_alloc(a, (n + 1) * sizeof *names);
    size_t *lens = base_arena_alloc(a, (n + 1) * sizeof *lens);
    Tensorflow__Serving__PredictResponse__OutputsEntry *es =
        base_arena_alloc(a, (n + 1) * sizeof *es);
    Tensorflow__Serving__PredictResponse__OutputsEntry **ep =
        base_arena_alloc(a, (n + 1) * sizeof *ep);
    codec_predict_sizes_t *sizes = base_arena_alloc(a, (n + 1) * sizeof *sizes);
    if (ts == NULL || names == NULL || lens == NULL || es == NULL || ep == NULL || sizes == NULL)
        abort();
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (rq->inputs[i]->value == NULL)
            continue; /* fstore answers every output with a tensor */
        ts[m] = known_fields(rq->inputs[i]->value, a);
        names[m] = rq->inputs[i]->key;
        lens[m] = strlen(names[m]);
        tensorflow__serving__predict_response__outputs_entry__init(&es[m]);
        es[m].key = rq->inputs[i]->key;
        es[m].value = &ts[m];
        ep[m] = &es[m];
        m++;
    }
    const Tensorflow__Serving__ModelSpec *in = rq->model_spec;
    bool has_version =
        in != NULL &&
        in->version_choice_case == TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION &&
        in->version != NULL;
    codec_predict_response_t r = {.n_outputs = m,
                                  .names = names,
                                  .name_lens = lens,
                                  .tensors = ts,
                                  .model_name = in != NULL ? in->name : "",
                                  .has_version = has_version,
                                  .version = has_version ? in->version->value : 0,
                                  .signature_name = in != NULL ? in->signature_name : ""};
    size_t size = codec_predict_size(&r, sizes);
    uint8_t *mine = malloc(size + 1);
    if (mine == NULL || codec_predict_write(&r, sizes, mine) != size)
        abort();

    Google__Protobuf__Int64Value v = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
    Tensorflow__Serving__ModelSpec spec = TENSORFLOW__SERVING__MODEL_SPEC__INIT;
    spec.name = (char *)r.model_name;
    spec.signature_name = (char *)r.signature_name;
    if (has_version) {
        v.value = r.version;
        spec.version_choice_case = TENSORFLOW__SERVING__MODEL_SPEC__VERSION_CHOICE_VERSION;
        spec.version = &v;
    }
    Tensorflow__Serving__PredictResponse resp = TENSORFLOW__SERVING__PREDICT_RESPONSE__INIT;
    resp.n_outputs = m;
    resp.outputs = ep;
    resp.model_spec = &spec;
    size_t want = tensorflow__serving__predict_response__get_packed_size(&resp);
    if (want != size)
        abort();
    uint8_t *theirs = malloc(want + 1);
    if (theirs == NULL || tensorflow__serving__predict_response__pack(&resp, theirs) != want ||
        memcmp(mine, theirs, want) != 0)
        abort();
    free(mine);
    free(theirs);
}

/*
 * What rpc_predict.c does with untrusted bytes before any catalog or store is involved: unpack
 * the request into the call arena and read every input tensor as join keys of each key type.
 * Each accepted read must give exactly the tensor's batch of values of the asked type. Then the
 * response encoder on those tensors (check_encoder()).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const catalog_dtype_t wants[] = {CATALOG_DTYPE_INT64, CATALOG_DTYPE_INT32,
                                            CATALOG_DTYPE_STRING, CATALOG_DTYPE_BYTES};
    base_arena_t a;
    base_arena_init(&a, 4096);
    Tensorflow__Serving__PredictRequest *rq = tensorflow__serving__predict_request__unpack(
        codec_allocator(&a, &(ProtobufCAllocator){0}), size, data);
    for (size_t i = 0; rq != NULL && i < rq->n_inputs; i++) {
        const Tensorflow__TensorProto *t = rq->inputs[i]->value;
        if (t == NULL)
            continue;
        for (size_t w = 0; w < sizeof wants / sizeof wants[0]; w++) {
            catalog_value_t *vals = NULL;
            size_t batch = 0;
            char why[256];
            if (codec_tensor_to_keys(t, wants[w], &a, &vals, &batch, why, sizeof why) != 0)
                continue;
            if (t->tensor_shape == NULL || (size_t)t->tensor_shape->dim[0]->size != batch)
                abort();
            for (size_t k = 0; k < batch; k++) {
                if (vals[k].type != wants[w])
                    abort();
                if (wants[w] == CATALOG_DTYPE_STRING && vals[k].u.bytes.len > size)
                    abort();
            }
        }
    }
    if (rq != NULL)
        check_encoder(rq, &a);
    base_arena_free(&a);
    return 0;
}
