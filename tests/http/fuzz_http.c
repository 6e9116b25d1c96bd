/* tests/http/fuzz_http.c - libFuzzer: HTTP bodies (JSON, CSV) through the real routes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "http/http.h"
#include "tests/http/feast_json_equiv.h"
#include "tests/tmpdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the route (modulo 9), the rest is the body: Feast's reads, writes and
 * pushes, SageMaker's JSON and CSV invocations, TF Serving's row and column predicts. They run
 * through http_local_call() against a real core on a temporary store under $TMPDIR, as a pool
 * thread runs them; writes that get through land in the store. Every body is also decoded by
 * the /get-online-features hand-written decoder and, when it accepts, by jansson: the two must
 * agree (feast_json_equiv.h), or the run aborts. And a /get-online-features body is answered a
 * second time with --http-json-decoder jansson: the status and the body must be the same bytes.
 */

static const char catalog_yaml[] =
    "project: fuzz\n"
    "entities:\n"
    "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
    "  - {name: customer, join_keys: [{name: customer_id, type: STRING}]}\n"
    "feature_views:\n"
    "  - name: fv\n"
    "    version: 1\n"
    "    entities: [driver]\n"
    "    push_source: src\n"
    "    features:\n"
    "      - {name: f, dtype: FLOAT, validation: {min: 0, max: 1}}\n"
    "      - {name: i, dtype: INT64}\n"
    "      - {name: s, dtype: STRING, validation: {max_length: 16}}\n"
    "      - {name: by, dtype: BYTES}\n"
    "      - {name: il, dtype: INT64_LIST}\n"
    "      - {name: dl, dtype: DOUBLE_LIST}\n"
    "      - {name: sl, dtype: STRING_LIST}\n"
    "      - {name: b, dtype: BOOL}\n"
    "      - {name: ts, dtype: UNIX_TIMESTAMP}\n"
    "  - name: cv\n"
    "    version: 1\n"
    "    entities: [customer]\n"
    "    features:\n"
    "      - {name: a, dtype: INT32}\n"
    "request_sources:\n"
    "  - {name: rq, schema: [{name: rv, dtype: INT64}]}\n"
    "on_demand_feature_views:\n"
    "  - name: od\n"
    "    version: 1\n"
    "    sources: [fv, rq]\n"
    "    features:\n"
    "      - {name: x, dtype: INT64, expression: i + rv}\n"
    "feature_services:\n"
    "  - {name: svc, features: [\"fv:*\"]}\n"
    "models:\n"
    "  - {name: m, version: 1, feature_service: svc, entity_inputs: {driver_id: driver_id},\n"
    "     on_missing: zero}\n"
    "  - {name: up, version: 1, feature_service: svc, entity_inputs: {driver_id: driver_id},\n"
    "     on_missing: zero, upstream: {target: \"127.0.0.1:9\", timeout_ms: 10}}\n";

static core_t *core;

static void setup(void)
{
    static char path[4096];
    char *d = test_tmpdir("fuzz-http", path, sizeof path);
    if (d == NULL)
        abort();
    static char cat[4200];
    snprintf(cat, sizeof cat, "%s/catalog.yaml", d);
    FILE *f = fopen(cat, "w");
    fputs(catalog_yaml, f);
    fclose(f);
    static char data[4200];
    snprintf(data, sizeof data, "%s/data", d);
    core_options_t o;
    core_options_init(&o);
    o.data_dir = data;
    o.catalog_path = cat;
    o.sync = STORE_SYNC_NONE;
    o.quiet = true;
    o.limits.max_entities = 8;
    o.limits.max_write_rows = 8;
    o.limits.max_message_bytes = 1 << 16;
    if (core_open(&o, &core) != 0)
        abort();
    core_set_health(core, CORE_SERVING);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (core == NULL)
        setup();
    if (size < 1)
        return 0;
    static const struct {
        const char *method, *path, *ct;
    } routes[] = {
        {"POST", "/get-online-features", "application/json"},
        {"POST", "/write-to-online-store", "application/json"},
        {"POST", "/push", "application/json"},
        {"POST", "/invocations", "application/json"},
        {"POST", "/invocations", "text/csv"},
        {"POST", "/v1/models/m:predict", "application/json"},
        {"POST", "/v1/models/m/versions/1:predict", "application/json"},
        {"GET", "/v1/models/m", "application/json"},
        {"POST", "/v1/models/up:predict", "application/json"},
    };
    size_t k = data[0] % (sizeof routes / sizeof routes[0]);
    const char *headers[] = {
        "Content-Type", routes[k].ct, "Accept", routes[k].ct, "X-Amzn-SageMaker-Custom-Attributes",
        "model=m",      NULL};
    http_options_t o;
    http_options_init(&o);
    int status = 0;
    char *out = NULL;
    size_t out_len = 0;
    int rc = http_local_call(core, &o, routes[k].method, routes[k].path, headers, data + 1,
                             size - 1, &status, &out, &out_len);
    if (rc == 0 && (status < 200 || status > 599))
        abort(); /* every request gets an answer with a status */
    if (k == 0 && rc == 0) {
        /* The read again through jansson alone: the same answer, byte for byte. */
        o.jansson_only = true;
        int status2 = 0;
        char *out2 = NULL;
        size_t out2_len = 0;
        int rc2 = http_local_call(core, &o, routes[k].method, routes[k].path, headers, data + 1,
                                  size - 1, &status2, &out2, &out2_len);
        if (rc2 != 0 || status2 != status || out2_len != out_len ||
            (out_len > 0 && memcmp(out, out2, out_len) != 0)) {
            fprintf(stderr, "the decoders answer differently: %d %.*s | %d %.*s\n", status,
                    (int)(out_len < 400 ? out_len : 400), out ? out : "", status2,
                    (int)(out2_len < 400 ? out2_len : 400), out2 ? out2 : "");
            abort();
        }
        free(out2);
    }
    free(out);
    base_arena_t a;
    base_arena_init(&a, 4096);
    char why[512];
    if (feast_json_equiv(data + 1, size - 1, &a, why, sizeof why) < 0) {
        fprintf(stderr, "feast_json_equiv: %s\n", why);
        abort();
    }
    base_arena_free(&a);
    return 0;
}
