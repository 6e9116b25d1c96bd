/* tests/server/fuzz_predict.c - libFuzzer: PredictRequest bytes from the network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * What rpc_predict.c does with untrusted bytes before any catalog or store is involved: unpack
 * the request into the call arena and read every input tensor as join keys of each key type.
 * Each accepted read must give exactly the tensor's batch of values of the asked type.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const catalog_dtype_t wants[] = {CATALOG_DTYPE_INT64, CATALOG_DTYPE_INT32,
                                            CATALOG_DTYPE_STRING, CATALOG_DTYPE_BYTES};
    server_arena_t a;
    server__arena_init(&a, 4096);
    Tensorflow__Serving__PredictRequest *rq =
        tensorflow__serving__predict_request__unpack(server__arena_allocator(&a), size, data);
    for (size_t i = 0; rq != NULL && i < rq->n_inputs; i++) {
        const Tensorflow__TensorProto *t = rq->inputs[i]->value;
        if (t == NULL)
            continue;
        for (size_t w = 0; w < sizeof wants / sizeof wants[0]; w++) {
            catalog_value_t *vals = NULL;
            size_t batch = 0;
            char why[256];
            if (server__tensor_to_keys(t, wants[w], &a, &vals, &batch, why, sizeof why) != 0)
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
    server__arena_free(&a);
    return 0;
}
