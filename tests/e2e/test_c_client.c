/* tests/e2e/test_c_client.c - the C client against a running fstore (target in argv[1]). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/c/fstore_client.h"

/*
 * Run by test_c_client.py, which starts and stops the server. Exits 0 when every check passed;
 * prints what failed otherwise.
 */

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static Feast__Types__Value int64_value(int64_t x)
{
    Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
    v.val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    v.int64_val = x;
    return v;
}

static void write_rows(fstore_client_t *c)
{
    Feast__Types__Value ids[2] = {int64_value(501), int64_value(502)};
    Feast__Types__Value trips[2] = {int64_value(5), int64_value(6)};
    Feast__Types__Value *id_ptrs[2] = {&ids[0], &ids[1]};
    Feast__Types__Value *trip_ptrs[2] = {&trips[0], &trips[1]};
    Feast__Types__RepeatedValue id_col = FEAST__TYPES__REPEATED_VALUE__INIT;
    Feast__Types__RepeatedValue trip_col = FEAST__TYPES__REPEATED_VALUE__INIT;
    id_col.n_val = 2;
    id_col.val = id_ptrs;
    trip_col.n_val = 2;
    trip_col.val = trip_ptrs;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry e0 =
        FSTORE__V1__WRITE_FEATURES_REQUEST__COLUMNS_ENTRY__INIT;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry e1 =
        FSTORE__V1__WRITE_FEATURES_REQUEST__COLUMNS_ENTRY__INIT;
    e0.key = "driver_id";
    e0.value = &id_col;
    e1.key = "trips";
    e1.value = &trip_col;
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry *entries[2] = {&e0, &e1};
    Fstore__V1__WriteFeaturesRequest req = FSTORE__V1__WRITE_FEATURES_REQUEST__INIT;
    req.feature_view = "driver_stats@v1";
    req.n_columns = 2;
    req.columns = entries;

    Fstore__V1__WriteFeaturesResponse *resp = NULL;
    fstore_status_t st;
    int rc = fstore_client_write_features(c, &req, 30000, &resp, &st);
    CHECK(rc == 0, "write: rc %d, status %d %s", rc, st.code, st.message);
    if (rc == 0) {
        CHECK(resp->rows_written == 2, "rows_written %llu", (unsigned long long)resp->rows_written);
        fstore__v1__write_features_response__free_unpacked(resp, NULL);
    }
}

static void read_rows(fstore_client_t *c, int feast_path)
{
    Feast__Types__Value ids[3] = {int64_value(501), int64_value(502), int64_value(503)};
    Feast__Types__Value *id_ptrs[3] = {&ids[0], &ids[1], &ids[2]};
    Feast__Types__RepeatedValue id_col = FEAST__TYPES__REPEATED_VALUE__INIT;
    id_col.n_val = 3;
    id_col.val = id_ptrs;
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry e =
        FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT;
    e.key = "driver_id";
    e.value = &id_col;
    Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *entries[1] = {&e};
    char *names[1] = {"driver_stats@v1:trips"};
    Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
    fl.n_val = 1;
    fl.val = names;
    Feast__Serving__GetOnlineFeaturesRequest req =
        FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
    req.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
    req.features = &fl;
    req.n_entities = 1;
    req.entities = entries;

    Feast__Serving__GetOnlineFeaturesResponse *resp = NULL;
    fstore_status_t st;
    int rc = fstore_client_get_online_features(c, &req, feast_path, 30000, &resp, &st);
    CHECK(rc == 0, "read: rc %d, status %d %s", rc, st.code, st.message);
    if (rc != 0)
        return;
    CHECK(resp->n_results == 2, "results %zu", resp->n_results);
    if (resp->n_results == 2) {
        Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *v = resp->results[1];
        CHECK(v->n_values == 3 && v->n_statuses == 3, "values %zu", v->n_values);
        if (v->n_values == 3) {
            CHECK(v->values[0]->int64_val == 5, "%lld", (long long)v->values[0]->int64_val);
            CHECK(v->values[1]->int64_val == 6, "%lld", (long long)v->values[1]->int64_val);
            CHECK(v->statuses[2] == FEAST__SERVING__FIELD_STATUS__NOT_FOUND, "%d", v->statuses[2]);
        }
    }
    feast__serving__get_online_features_response__free_unpacked(resp, NULL);

    /* An unknown feature: NOT_FOUND (5) with a message naming it. */
    names[0] = "driver_stats@v1:nope";
    rc = fstore_client_get_online_features(c, &req, feast_path, 30000, &resp, &st);
    CHECK(rc == -EREMOTEIO && st.code == 5 && strstr(st.message, "nope") != NULL,
          "rc %d code %d message %s", rc, st.code, st.message);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    fstore_client_t *c = NULL;
    if (fstore_client_connect(argv[1], &c) < 0)
        return 1;
    CHECK(fstore_client_wait_serving(c, 60000) == 0, "server not SERVING");
    int status = 0;
    fstore_status_t st;
    CHECK(fstore_client_health_check(c, "", 30000, &status, &st) == 0 && status == 1, "health %d",
          status);
    write_rows(c);
    read_rows(c, 1);
    read_rows(c, 0);

    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int rc = fstore_client_call(c, FSTORE_PATH_FEAST_SERVING_INFO, (const uint8_t *)"", 0, 30000,
                                &raw, &raw_len, &st);
    CHECK(rc == 0, "serving info rc %d", rc);
    if (rc == 0) {
        Feast__Serving__GetFeastServingInfoResponse *info =
            feast__serving__get_feast_serving_info_response__unpack(NULL, raw_len, raw);
        CHECK(info != NULL && strcmp(info->version, "0.1.0") == 0, "version");
        if (info != NULL)
            feast__serving__get_feast_serving_info_response__free_unpacked(info, NULL);
        free(raw);
    }
    fstore_client_close(c);
    if (failures == 0)
        printf("c client: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
