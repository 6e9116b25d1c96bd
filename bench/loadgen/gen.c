/* bench/loadgen/gen.c - the benchmark dataset as CSV for fstore ingest and RESP for Redis. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen/bench_int.h"
#include "bench/loadgen/wire_int.h"

/*
 * Both forms come from the same functions (wire_int.h), so fstore and the Redis peer hold the
 * same rows and the read check can verify every value it gets back.
 */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore-bench gen catalog --views V --features K\n"
            "       fstore-bench gen csv     --view-index V --features K --rows N [flags]\n"
            "       fstore-bench gen redis   --views V --features K --rows N [flags]\n\n"
            "catalog: the benchmark's catalog YAML: entity e (join key id INT64), views\n"
            "     v0..v<V-1> of K features, the write target w0 (K features), and feature\n"
            "     services s1 (v0..v4) and s3 (every v view), and the features-only Predict\n"
            "     binding m1 (service s1, entity input tensor id).\n"
            "csv: one view's rows for `fstore ingest` (header: join key, f0..f<K-1>,\n"
            "     event_timestamp); feature j is INT64 when j is even, DOUBLE when odd.\n"
            "redis: the same rows of views v0..v<V-1> as RESP commands for `redis-cli --pipe`,\n"
            "     laid out like Feast's Redis store: one hash per entity (key PREFIX + the id\n"
            "     as 12 digits, which redis-benchmark's __rand_int__ produces), one field\n"
            "     \"v<V>:f<F>\" per feature holding feast.types.Value bytes, and one \"_ts:v<V>\"\n"
            "     field per view holding a google.protobuf.Timestamp.\n\n"
            "  --first-id N     first entity id (default 0)\n"
            "  --join-key NAME  CSV join-key column (default id)\n"
            "  --ts TEXT        CSV event_timestamp text (default 2024-01-01T00:00:00Z)\n"
            "  --ts-seconds N   Redis _ts value seconds (default 1704067200)\n"
            "  --key-prefix P   Redis key prefix (default e:)\n");
}

static int gen_csv(long view, long features, int64_t first, int64_t rows, const char *join_key,
                   const char *ts)
{
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    printf("%s", join_key);
    for (long f = 0; f < features; f++)
        printf(",f%ld", f);
    printf(",event_timestamp\n");
    for (int64_t id = first; id < first + rows; id++) {
        printf("%" PRId64, id);
        for (long f = 0; f < features; f++) {
            if (bench_feature_is_int((uint32_t)f))
                printf(",%" PRId64, bench_int_value((uint32_t)view, (uint32_t)f, id));
            else
                printf(",%.17g", bench_double_value((uint32_t)view, (uint32_t)f, id));
        }
        printf(",%s\n", ts);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static void yaml_view(const char *name, long features)
{
    printf("  - name: %s\n    version: 1\n    entities: [e]\n    features:\n", name);
    for (long f = 0; f < features; f++)
        printf("      - {name: f%ld, dtype: %s}\n", f,
               bench_feature_is_int((uint32_t)f) ? "INT64" : "DOUBLE");
}

static int gen_catalog(long views, long features)
{
    char name[32];
    printf("# The fstore benchmark catalog (fstore-bench gen catalog --views %ld --features %ld).\n"
           "project: bench\n"
           "entities:\n"
           "  - name: e\n"
           "    join_keys:\n"
           "      - {name: id, type: INT64}\n"
           "feature_views:\n",
           views, features);
    for (long v = 0; v < views; v++) {
        snprintf(name, sizeof name, "v%ld", v);
        yaml_view(name, features);
    }
    yaml_view("w0", features);
    printf("feature_services:\n  - name: s1\n    features: [");
    for (long v = 0; v < views && v < 5; v++)
        printf("%s\"v%ld:*\"", v ? ", " : "", v);
    printf("]\n  - name: s3\n    features: [");
    for (long v = 0; v < views; v++)
        printf("%s\"v%ld:*\"", v ? ", " : "", v);
    printf("]\n");
    /* S1 on-demand: a feature o_j per view j of the first five, computed from its stored f0
     * and f1 and a request field (bench/run.sh reads v_j:f0..f8 and od:o_j: 45 stored, 5
     * computed from them). */
    long od_views = views < 5 ? views : 5;
    if (od_views > 0 && features >= 2) {
        printf("request_sources:\n  - name: q\n    schema: [{name: k, dtype: DOUBLE}]\n"
               "on_demand_feature_views:\n  - name: od\n    version: 1\n    sources: [");
        for (long v = 0; v < od_views; v++)
            printf("v%ld, ", v);
        printf("q]\n    features:\n");
        for (long v = 0; v < od_views; v++)
            printf("      - {name: o%ld, dtype: DOUBLE, expression: 'v%ld.f0 * q.k + v%ld.f1'}\n",
                   v, v, v);
    }
    /* S5: a features-only Predict binding over s1; a missing value fails the call. */
    printf("models:\n  - name: m1\n    version: 1\n    feature_service: s1\n"
           "    entity_inputs:\n      id: id\n    on_missing: error\n");
    return fflush(stdout) == 0 ? 0 : 1;
}

/* RESP for one HSET per entity, built in a buffer: printf per field made the load of 1M
 * entities (55 fields each) take longer than Redis took to apply it. */
typedef struct out {
    char buf[1 << 16];
    size_t len;
    bool err;
} out_t;

static void out_flush(out_t *o)
{
    if (o->len > 0 && fwrite(o->buf, 1, o->len, stdout) != o->len)
        o->err = true;
    o->len = 0;
}

static void out_raw(out_t *o, const void *p, size_t n)
{
    if (o->len + n > sizeof o->buf)
        out_flush(o);
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_uint(out_t *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    out_raw(o, tmp + sizeof tmp - n, n);
}

static void resp_bulk(out_t *o, const void *p, size_t n)
{
    out_raw(o, "$", 1);
    out_uint(o, n);
    out_raw(o, "\r\n", 2);
    out_raw(o, p, n);
    out_raw(o, "\r\n", 2);
}

static int gen_redis(long views, long features, int64_t first, int64_t rows, const char *prefix,
                     int64_t ts_s)
{
    static out_t o;
    /* google.protobuf.Timestamp{seconds}: tag 0x08 and the varint. */
    uint8_t ts[16];
    size_t ts_len = 0;
    ts[ts_len++] = 0x08;
    for (uint64_t v = (uint64_t)ts_s;; v >>= 7) {
        ts[ts_len++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    /* Field names are the same for every entity: format them once. */
    size_t n_fields = (size_t)(views * (features + 1));
    char(*names)[64] = calloc(n_fields, sizeof *names);
    if (names == NULL)
        return 1;
    for (long v = 0, k = 0; v < views; v++) {
        for (long f = 0; f < features; f++)
            snprintf(names[k++], sizeof names[0], "v%ld:f%ld", v, f);
        snprintf(names[k++], sizeof names[0], "_ts:v%ld", v);
    }
    for (int64_t id = first; id < first + rows; id++) {
        char key[64];
        int kn = snprintf(key, sizeof key, "%s%012" PRId64, prefix, id);
        out_raw(&o, "*", 1);
        out_uint(&o, 2 + 2 * n_fields);
        out_raw(&o, "\r\n", 2);
        resp_bulk(&o, "HSET", 4);
        resp_bulk(&o, key, (size_t)kn);
        for (long v = 0, k = 0; v < views; v++) {
            for (long f = 0; f < features; f++, k++) {
                uint8_t w[16];
                resp_bulk(&o, names[k], strlen(names[k]));
                resp_bulk(&o, w, bench_value_wire((uint32_t)v, (uint32_t)f, id, w));
            }
            resp_bulk(&o, names[k], strlen(names[k]));
            resp_bulk(&o, ts, ts_len);
            k++;
        }
    }
    out_flush(&o);
    free(names);
    return !o.err && fflush(stdout) == 0 ? 0 : 1;
}

int bench__cmd_gen(int argc, char **argv)
{
    enum {
        O_VIEW_INDEX = 256,
        O_VIEWS,
        O_FEATURES,
        O_ROWS,
        O_FIRST,
        O_KEY,
        O_TS,
        O_TS_S,
        O_PREFIX
    };
    static const struct option opts[] = {
        {"view-index", required_argument, NULL, O_VIEW_INDEX},
        {"views", required_argument, NULL, O_VIEWS},
        {"features", required_argument, NULL, O_FEATURES},
        {"rows", required_argument, NULL, O_ROWS},
        {"first-id", required_argument, NULL, O_FIRST},
        {"join-key", required_argument, NULL, O_KEY},
        {"ts", required_argument, NULL, O_TS},
        {"ts-seconds", required_argument, NULL, O_TS_S},
        {"key-prefix", required_argument, NULL, O_PREFIX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long view = 0, views = 1, features = 10;
    int64_t rows = -1, first = 0, ts_s = 1704067200;
    const char *join_key = "id", *ts = "2024-01-01T00:00:00Z", *prefix = "e:";
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *what = argv[1];
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_VIEW_INDEX:
            view = strtol(optarg, NULL, 10);
            break;
        case O_VIEWS:
            views = strtol(optarg, NULL, 10);
            break;
        case O_FEATURES:
            features = strtol(optarg, NULL, 10);
            break;
        case O_ROWS:
            rows = strtoll(optarg, NULL, 10);
            break;
        case O_FIRST:
            first = strtoll(optarg, NULL, 10);
            break;
        case O_KEY:
            join_key = optarg;
            break;
        case O_TS:
            ts = optarg;
            break;
        case O_TS_S:
            ts_s = strtoll(optarg, NULL, 10);
            break;
        case O_PREFIX:
            prefix = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(what, "catalog") == 0 && rows < 0)
        rows = 0;
    if (rows < 0 || features < 1 || features > 1000 || views < 1 || views > 1000 || view < 0 ||
        first < 0) {
        fprintf(stderr, "fstore-bench gen: --rows is required; --features and --views 1..1000\n");
        return 2;
    }
    if (strcmp(what, "catalog") == 0)
        return gen_catalog(views, features);
    if (strcmp(what, "csv") == 0)
        return gen_csv(view, features, first, rows, join_key, ts);
    if (strcmp(what, "redis") == 0)
        return gen_redis(views, features, first, rows, prefix, ts_s);
    fprintf(stderr, "fstore-bench gen: unknown format '%s' (csv or redis)\n", what);
    return 2;
}
