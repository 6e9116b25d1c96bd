/* tests/server/fuzz_requests.c - libFuzzer: read and write requests through their real handlers. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "core/core.h"
#include "server/server.h"
#include "tests/codec/decode_equiv.h"
#include "tests/fuzz_catalog.h"

#include "feast/serving/ServingService.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FEAST_GET "/feast.serving.ServingService/GetOnlineFeatures"

/*
 * The first byte picks what the rest is, modulo 5:
 *   0 a GetOnlineFeaturesRequest for the GetOnlineFeatures method,
 *   1 a WriteFeaturesRequest for WriteFeatures,
 *   2 a DeleteEntitiesRequest for DeleteEntities,
 *   3 a feast.types.Value for codec_value_from_pb(),
 *   4 a GetOnlineFeaturesRequest for the hand-written decoder, compared with protobuf-c, and
 *     the same bytes through the merge of fields given twice (check_merge()).
 * The methods run as a gRPC worker runs them, through server_local_call() (server/server.h),
 * against a real core: tests/fuzz_catalog.h's catalog, applied to a temporary LMDB store under
 * $TMPDIR with a few rows. Writes that the fuzzer gets right land in that store and are read back
 * by later inputs, so the store changes over a run (a crash seen in a long run may need the inputs
 * before it to reproduce).
 */

/* The core on a temporary store with that catalog, and two in-process callers of it: one
 * with a gRPC worker's caches, one that resolves every request afresh. */
static core_t *core;
static server_local_t *cached, *uncached;
static catalog_t *cat;

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_requests: %s: %d\n", what, rc);
    abort();
}

/* A few rows for the reads to find: fv@v1 and pair for drivers 1..3, g's only row. */
static void seed_rows(void)
{
    const catalog_view_t *fv = NULL, *pair = NULL, *g = NULL;
    if (catalog_find_view_ref(cat, "fv@v1", &fv) < 0 ||
        catalog_find_view_ref(cat, "pair", &pair) < 0 || catalog_find_view_ref(cat, "g", &g) < 0)
        die("catalog views", -ENOENT);
    int64_t now = store_now_us();
    for (int64_t id = 1; id <= 3; id++) {
        catalog_value_t driver = {.type = CATALOG_DTYPE_INT64, .u.i64 = id};
        catalog_value_t customer = {.type = CATALOG_DTYPE_STRING,
                                    .u.bytes = {(const uint8_t *)"alice", 5}};
        catalog_value_t i64 = {.type = CATALOG_DTYPE_INT64, .u.i64 = 10 * id};
        catalog_value_t s = {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"abc", 3}};
        int64_t items[3] = {1, -2, 3};
        catalog_value_t il = {.type = CATALOG_DTYPE_INT64_LIST, .u.list = {3, {.i64 = items}}};
        const catalog_value_t *fv_keys[1] = {&driver}, *fv_vals[3] = {&i64, &s, &il};
        uint32_t fv_idx[3] = {0, 4, 8};
        const catalog_value_t *pair_keys[2] = {&driver, &customer}, *pair_vals[1] = {&i64};
        uint32_t pair_idx[1] = {0};
        /* Driver 3's fv row is two hours old: OUTSIDE_MAX_AGE for the 1h TTL. */
        int64_t ts = id == 3 ? now - 7200 * 1000000LL : now;
        store_batch_t b[2] = {
            {.view = fv,
             .op = STORE_OP_UPSERT,
             .n_rows = 1,
             .keys = fv_keys,
             .n_features = 3,
             .feature_idx = fv_idx,
             .values = fv_vals,
             .event_ts_us = &ts},
            {.view = pair,
             .op = STORE_OP_UPSERT,
             .n_rows = 1,
             .keys = pair_keys,
             .n_features = 1,
             .feature_idx = pair_idx,
             .values = pair_vals,
             .event_ts_us = &now},
        };
        store_apply_result_t res;
        int rc = store_apply(core_store(core), b, 2, 0, &res);
        if (rc < 0)
            die(res.error, rc);
    }
    catalog_value_t total = {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 2.5};
    const catalog_value_t *g_vals[1] = {&total};
    uint32_t g_idx[1] = {0};
    store_batch_t b = {.view = g,
                       .op = STORE_OP_UPSERT,
                       .n_rows = 1,
                       .n_features = 1,
                       .feature_idx = g_idx,
                       .values = g_vals,
                       .event_ts_us = &now};
    store_apply_result_t res;
    int rc = store_apply(core_store(core), &b, 1, 0, &res);
    if (rc < 0)
        die(res.error, rc);
}

/* Once per process. The store lives under $TMPDIR, which run-fuzz-requests.sh points at its own
 * work directory so that it goes with it. */
static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    static char dir[4096], yaml[4200];
    snprintf(dir, sizeof dir, "%s/fstore-fuzz-store-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", -errno);
    snprintf(yaml, sizeof yaml, "%s/fuzz.yaml", dir);
    FILE *f = fopen(yaml, "w");
    if (f == NULL ||
        fwrite(fuzz_catalog_yaml, 1, sizeof fuzz_catalog_yaml - 1, f) !=
            sizeof fuzz_catalog_yaml - 1 ||
        fclose(f) != 0)
        die("writing the catalog", -errno);
    core_options_t o;
    core_options_init(&o);
    o.data_dir = dir;
    o.catalog_path = yaml;
    o.sync = STORE_SYNC_NONE;
    o.history = STORE_HISTORY_ON; /* offline serving's requests too */
    o.max_workers = 2;
    /* Limits a small input can reach, so the limit checks are fuzzed too. */
    o.limits = (core_limits_t){.max_message_bytes = CORE_DEFAULT_MAX_MESSAGE_BYTES,
                               .max_response_bytes = 64 * 1024,
                               .max_entities = 8,
                               .max_features = 8,
                               .max_write_rows = 8};
    int rc = core_open(&o, &core);
    if (rc < 0)
        die("core_open", rc);
    cat = core_catalog_ref(core);
    if ((rc = server_local_new(core, true, &cached)) < 0)
        die("server_local_new", rc);
    if ((rc = server_local_new(core, false, &uncached)) < 0)
        die("server_local_new", rc);
    seed_rows();
}

/* A successful read must decode as Feast's response: one FeatureVector per name, every vector
 * with one value, status and timestamp per entity row. */
static void check_read(const server_local_result_t *res)
{
    Feast__Serving__GetOnlineFeaturesResponse *r =
        feast__serving__get_online_features_response__unpack(NULL, res->response_len,
                                                             res->response);
    if (r == NULL || r->metadata == NULL || r->metadata->feature_names == NULL || !r->status ||
        r->n_results != r->metadata->feature_names->n_val || r->n_results == 0)
        abort();
    size_t rows = r->results[0]->n_values;
    for (size_t i = 0; i < r->n_results; i++) {
        const Feast__Serving__GetOnlineFeaturesResponse__FeatureVector *v = r->results[i];
        if (v->n_values != rows || v->n_statuses != rows || v->n_event_timestamps != rows)
            abort();
        for (size_t k = 0; k < rows; k++) {
            if (v->statuses[k] < FEAST__SERVING__FIELD_STATUS__PRESENT ||
                v->statuses[k] > FEAST__SERVING__FIELD_STATUS__OUTSIDE_MAX_AGE)
                abort();
        }
    }
    feast__serving__get_online_features_response__free_unpacked(r, NULL);
}

/* A converted value must survive codec_value_to_pb() and back unchanged. */
static void check_value(const uint8_t *data, size_t size, base_arena_t *a)
{
    Feast__Types__Value *pb =
        feast__types__value__unpack(codec_allocator(a, &(ProtobufCAllocator){0}), size, data);
    char why[200];
    /* As the handlers do: strings are checked on the wire before the value is used. */
    if (pb == NULL ||
        codec_check_strings(&feast__types__value__descriptor, data, size, why, sizeof why) < 0)
        return;
    catalog_value_t v;
    if (codec_value_from_pb(pb, a, &v, why, sizeof why) != 0)
        return;
    Feast__Types__Value back;
    if (codec_value_to_pb(&v, a, &back) != 0)
        abort();
    size_t n = feast__types__value__get_packed_size(&back);
    uint8_t *buf = base_arena_alloc(a, n);
    if (buf == NULL || feast__types__value__pack(&back, buf) != n)
        abort();
    Feast__Types__Value *pb2 =
        feast__types__value__unpack(codec_allocator(a, &(ProtobufCAllocator){0}), n, buf);
    catalog_value_t v2;
    if (pb2 == NULL || codec_value_from_pb(pb2, a, &v2, why, sizeof why) != 0 ||
        !catalog_value_equal(&v, &v2))
        abort();
}

static bool same(const server_local_result_t *a, const server_local_result_t *b)
{
    return a->status == b->status && strcmp(a->msg, b->msg) == 0 &&
           a->response_len == b->response_len &&
           (a->response_len == 0 || memcmp(a->response, b->response, a->response_len) == 0);
}

/*
 * A read answered with the worker's cache of feature lists (a hit, or a miss that filled it)
 * must be answered the same without it: the same status, message and bytes. Then once more with
 * the cache, which now holds the list if it could be cached.
 */
static void check_uncached(const uint8_t *data, size_t size, const server_local_result_t *first)
{
    for (int pass = 0; pass < 2; pass++) {
        server_local_result_t again;
        if (server_local_call(pass == 0 ? uncached : cached, FEAST_GET, data, size, &again) != 0)
            abort();
        if (!same(first, &again)) {
            fprintf(stderr, "fuzz_requests: a read differs %s the cache: %d '%s' / %d '%s'\n",
                    pass == 0 ? "without" : "again with", first->status, first->msg, again.status,
                    again.msg);
            abort();
        }
        free(again.response);
    }
}

/* The rewrite that merges a singular message field given twice (codec_merge_messages()), on
 * whatever the string walk accepts: it succeeds, is never longer, a second pass changes nothing,
 * protobuf-c reads its result whenever it reads the original, and the same message when nothing
 * was given twice. */
static void check_merge(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size,
                        base_arena_t *a)
{
    char why[256];
    if (codec_check_strings(d, data, size, why, sizeof why) < 0)
        return;
    const uint8_t *m1 = NULL, *m2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (codec_merge_messages(a, d, data, size, &m1, &n1) != 0 || n1 > size)
        abort();
    if (codec_merge_messages(a, d, m1, n1, &m2, &n2) != 0 || n2 != n1 ||
        (n1 > 0 && memcmp(m1, m2, n1) != 0))
        abort();
    ProtobufCAllocator alloc;
    ProtobufCMessage *u0 = protobuf_c_message_unpack(d, codec_allocator(a, &alloc), size, data);
    ProtobufCMessage *u1 =
        u0 != NULL ? protobuf_c_message_unpack(d, codec_allocator(a, &alloc), n1, m1) : NULL;
    if (u0 != NULL && u1 == NULL)
        abort();
    /* Nothing given twice: the rewrite only moved fields, so both read as the same message. */
    if (u0 != NULL && !codec_needs_merge(d, data, size)) {
        size_t p0 = protobuf_c_message_get_packed_size(u0);
        size_t p1 = protobuf_c_message_get_packed_size(u1);
        uint8_t *b0 = base_arena_alloc(a, p0 + 1), *b1 = base_arena_alloc(a, p1 + 1);
        if (b0 == NULL || b1 == NULL || p0 != p1 || protobuf_c_message_pack(u0, b0) != p0 ||
            protobuf_c_message_pack(u1, b1) != p1 || memcmp(b0, b1, p0) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[5] = {
        FEAST_GET, "/fstore.v1.OnlineFeatureService/WriteFeatures",
        "/fstore.v1.OnlineFeatureService/DeleteEntities",
        "/fstore.v1.OnlineFeatureService/LoadBatch",
        /* In-process, a stream ends after its first message is built (EOPNOTSUPP): the
         * decoding, the checks and the first point-in-time read are fuzzed. */
        "/fstore.v1.OnlineFeatureService/GetHistoricalFeatures"};
    static base_arena_t a;
    if (core == NULL) {
        setup();
        base_arena_init(&a, 4096);
    }
    if (size == 0)
        return 0;
    /* 0-2 methods, 3 values, 4 the decoders (the kept corpus's first bytes); from 250 on, the
     * offline methods. */
    unsigned which = data[0] >= 250 ? 5 + (data[0] - 250) % 2 : data[0] % 5;
    data++;
    size--;

    if (which == 3) {
        check_value(data, size, &a);
    } else if (which == 4) {
        char why[256];
        if (decode_equiv(data, size, &a, why, sizeof why) < 0) {
            fprintf(stderr, "fuzz_requests: decoder disagrees with protobuf-c: %s\n", why);
            abort();
        }
        check_merge(&feast__serving__get_online_features_request__descriptor, data, size, &a);
        check_merge(&fstore__v1__write_features_request__descriptor, data, size, &a);
    } else {
        server_local_result_t res;
        const char *method = which >= 5 ? methods[which - 2] : methods[which];
        if (server_local_call(cached, method, data, size, &res) != 0)
            abort();
        /* Every refusal says why. */
        if (res.status != 0 && res.msg[0] == '\0')
            abort();
        if (res.status == 0 && which == 0)
            check_read(&res);
        if (which == 0)
            check_uncached(data, size, &res);
        free(res.response);
    }
    /* As a worker does between calls: the arena is reused, so stale pointers show up. */
    base_arena_reset(&a);
    return 0;
}
