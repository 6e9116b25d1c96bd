/* tests/server/test_local.c - in-process calls: every method without a network. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "server/server.h"
#include "tests/storage/helpers.h"

#include "feast/serving/ServingService.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"
#include "tensorflow_serving/apis/predict.pb-c.h"

static const char catalog_yaml[] =
    "project: local\n"
    "entities:\n"
    "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
    "feature_views:\n"
    "  - name: fv\n"
    "    version: 1\n"
    "    entities: [driver]\n"
    "    features: [{name: trips, dtype: INT64}]\n"
    "feature_services:\n"
    "  - {name: svc, features: ['fv:trips']}\n"
    "models:\n"
    "  - name: passthrough\n"
    "    version: 1\n"
    "    feature_service: svc\n"
    "    entity_inputs: {driver_id: driver_id}\n"
    "    on_missing: zero\n"
    "    upstream: {target: '127.0.0.1:9'}\n";

static char *dir;
static core_t *core;
static server_local_t *local;

static void setup(void)
{
    dir = th_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/catalog.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(catalog_yaml, f);
    fclose(f);
    char data[1024];
    snprintf(data, sizeof data, "%s/data", dir);
    core_options_t o;
    core_options_init(&o);
    o.data_dir = data;
    o.catalog_path = path;
    o.sync = STORE_SYNC_NONE;
    o.limits.max_message_bytes = 1024;
    cr_assert_eq(core_open(&o, &core), 0);
    cr_assert_eq(server_local_new(core, true, &local), 0);
}

static void teardown(void)
{
    server_local_free(local);
    core_close(core);
    th_rmrf(dir);
    free(dir);
}

TestSuite(local, .init = setup, .fini = teardown, .timeout = 60);

static void write_trips(int64_t id, int64_t trips, server_local_result_t *res)
{
    Feast__Types__Value kv = FEAST__TYPES__VALUE__INIT, tv = FEAST__TYPES__VALUE__INIT;
    kv.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    kv.int64_val = id;
    tv.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    tv.int64_val = trips;
    Feast__Types__Value *kp[1] = {&kv}, *tp[1] = {&tv};
    Feast__Types__RepeatedValue kr = FEAST__TYPES__REPEATED_VALUE__INIT,
                                tr = FEAST__TYPES__REPEATED_VALUE__INIT;
    kr.n_val = tr.n_val = 1;
    kr.val = kp;
    tr.val = tp;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry ke =
        FSTORE__V1__WRITE_FEATURES_REQUEST__COLUMNS_ENTRY__INIT;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry te =
        FSTORE__V1__WRITE_FEATURES_REQUEST__COLUMNS_ENTRY__INIT;
    ke.key = "driver_id";
    ke.value = &kr;
    te.key = "trips";
    te.value = &tr;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry *cols[2] = {&ke, &te};
    Fstore__V1__WriteFeaturesRequest rq = FSTORE__V1__WRITE_FEATURES_REQUEST__INIT;
    rq.feature_view = "fv";
    rq.n_columns = 2;
    rq.columns = cols;
    uint8_t buf[256];
    size_t n = fstore__v1__write_features_request__pack(&rq, buf);
    cr_assert_eq(
        server_local_call(local, "/fstore.v1.OnlineFeatureService/WriteFeatures", buf, n, res), 0);
}

Test(local, a_write_waits_for_its_commit_and_a_read_sees_it)
{
    server_local_result_t res;
    write_trips(7, 42, &res);
    cr_assert_eq(res.status, GRPC_STATUS_OK, "%s", res.msg);
    Fstore__V1__WriteFeaturesResponse *w =
        fstore__v1__write_features_response__unpack(NULL, res.response_len, res.response);
    cr_assert_not_null(w);
    cr_assert_eq(w->rows_written, 1);
    fstore__v1__write_features_response__free_unpacked(w, NULL);
    free(res.response);

    Feast__Types__Value kv = FEAST__TYPES__VALUE__INIT;
    kv.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    kv.int64_val = 7;
    Feast__Types__Value *kp[1] = {&kv};
    Feast__Types__RepeatedValue kr = FEAST__TYPES__REPEATED_VALUE__INIT;
    kr.n_val = 1;
    kr.val = kp;
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry e =
        FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT;
    e.key = "driver_id";
    e.value = &kr;
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *ents[1] = {&e};
    Feast__Serving__GetOnlineFeaturesRequest rq = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
    rq.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
    rq.feature_service = "svc";
    rq.n_entities = 1;
    rq.entities = ents;
    uint8_t get[256];
    size_t n = feast__serving__get_online_features_request__pack(&rq, get);
    cr_assert_eq(
        server_local_call(local, "/feast.serving.ServingService/GetOnlineFeatures", get, n, &res),
        0);
    cr_assert_eq(res.status, GRPC_STATUS_OK, "%s", res.msg);
    Feast__Serving__GetOnlineFeaturesResponse *r =
        feast__serving__get_online_features_response__unpack(NULL, res.response_len, res.response);
    cr_assert_not_null(r);
    cr_assert_eq(r->n_results, 2, "the join key, then trips");
    cr_assert_eq(r->results[1]->values[0]->int64_val, 42);
    feast__serving__get_online_features_response__free_unpacked(r, NULL);
    free(res.response);
}

Test(local, a_refused_call_has_the_status_and_message_a_grpc_client_would_get)
{
    server_local_result_t res;
    static const uint8_t bad_service[] = {0x0a, 0x04, 'n', 'o', 'p', 'e'};
    cr_assert_eq(server_local_call(local, "/fstore.v1.OnlineFeatureService/GetOnlineFeatures",
                                   bad_service, sizeof bad_service, &res),
                 0);
    cr_assert_eq(res.status, GRPC_STATUS_NOT_FOUND);
    cr_assert_str_eq(res.msg, "feature service 'nope' not found; feature services: svc");
    cr_assert_null(res.response);

    uint8_t big[2048] = {0};
    cr_assert_eq(server_local_call(local, "/fstore.v1.OnlineFeatureService/GetOnlineFeatures", big,
                                   sizeof big, &res),
                 0);
    cr_assert_eq(res.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert(strstr(res.msg, "--max-message-bytes 1024") != NULL, "%s", res.msg);
}

Test(local, an_unknown_method_is_enoent_and_a_passthrough_is_unimplemented)
{
    server_local_result_t res;
    cr_assert_eq(server_local_call(local, "/nope/Nope", NULL, 0, &res), -ENOENT);

    Tensorflow__TensorShapeProto__Dim dim = TENSORFLOW__TENSOR_SHAPE_PROTO__DIM__INIT;
    dim.size = 1;
    Tensorflow__TensorShapeProto__Dim *dims[1] = {&dim};
    Tensorflow__TensorShapeProto shape = TENSORFLOW__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 1;
    shape.dim = dims;
    int64_t ids[1] = {7};
    Tensorflow__TensorProto t = TENSORFLOW__TENSOR_PROTO__INIT;
    t.dtype = TENSORFLOW__DATA_TYPE__DT_INT64;
    t.tensor_shape = &shape;
    t.n_int64_val = 1;
    t.int64_val = ids;
    Tensorflow__Serving__PredictRequest__InputsEntry e =
        TENSORFLOW__SERVING__PREDICT_REQUEST__INPUTS_ENTRY__INIT;
    e.key = "driver_id";
    e.value = &t;
    Tensorflow__Serving__PredictRequest__InputsEntry *ins[1] = {&e};
    Tensorflow__Serving__ModelSpec spec = TENSORFLOW__SERVING__MODEL_SPEC__INIT;
    spec.name = "passthrough";
    Tensorflow__Serving__PredictRequest rq = TENSORFLOW__SERVING__PREDICT_REQUEST__INIT;
    rq.model_spec = &spec;
    rq.n_inputs = 1;
    rq.inputs = ins;
    uint8_t buf[256];
    size_t n = tensorflow__serving__predict_request__pack(&rq, buf);
    cr_assert_eq(
        server_local_call(local, "/tensorflow.serving.PredictionService/Predict", buf, n, &res), 0);
    cr_assert_eq(res.status, GRPC_STATUS_UNIMPLEMENTED, "%s", res.msg);
    cr_assert(strstr(res.msg, "upstream") != NULL, "%s", res.msg);
}
