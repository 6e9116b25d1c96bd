/* bench/http/json_bench.c - fstore-json-bench: the HTTP front door's JSON writer, per value. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_int.h"

/*
 * Encodes the values of a 100 x 50 Feast response many times with the hand-written writer
 * (http__json_value(), what the server runs), and the same values with jansson, the library the
 * server parses requests with: building the array and dumping it, and dumping a prebuilt array.
 * Each pass's output is checked to parse back to the same values. Then decodes bench/run.sh's H1
 * and H2 request bodies (50 features, 1 and 100 entities, as json.dump writes them) with the
 * server's hand-written decoder (http__feast_read_decode() and its feature list, parsed each
 * time here though a worker parses a list once) and with jansson (json_loadb and the entity
 * values converted, what the server did before), per request. Sets of values:
 *   mix       per row 25 DOUBLE (random, all 53 bits), 15 INT64, 10 STRING (13 bytes)
 *   double    DOUBLE with all 53 bits random (17 significant digits, the writer's slow path)
 *   decimal   DOUBLE of up to 4 decimals (prices, rates: the writer's fast path)
 *   float     FLOAT widened to double, as Feast prints a float32 (16-17 digits)
 *   int64     INT64
 *   string    STRING of 13 bytes
 * Prints JSON: ns per value for each set and writer.
 */

#define ROWS 100
#define COLS 50
#define N (ROWS * COLS)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static catalog_value_t vals[N];
static char strs[N][16];

static void make_values(const char *set)
{
    srand(7);
    for (size_t i = 0; i < N; i++) {
        size_t c = i % COLS;
        if (strcmp(set, "double") == 0)
            c = 0;
        else if (strcmp(set, "int64") == 0)
            c = 30;
        else if (strcmp(set, "string") == 0)
            c = 45;
        if (strcmp(set, "decimal") == 0) {
            vals[i].type = CATALOG_DTYPE_DOUBLE;
            vals[i].u.f64 = (double)(rand() % 10000000) / 10000.0;
        } else if (strcmp(set, "float") == 0) {
            vals[i].type = CATALOG_DTYPE_FLOAT;
            vals[i].u.f32 = (float)rand() / (float)RAND_MAX;
        } else if (c < 25) {
            vals[i].type = CATALOG_DTYPE_DOUBLE;
            vals[i].u.f64 = (double)rand() / RAND_MAX * 1000.0;
        } else if (c < 40) {
            vals[i].type = CATALOG_DTYPE_INT64;
            vals[i].u.i64 = (int64_t)rand() * 1000;
        } else {
            int n = snprintf(strs[i], sizeof strs[i], "user_%08d", rand() % 100000000);
            vals[i].type = CATALOG_DTYPE_STRING;
            vals[i].u.bytes.data = (const uint8_t *)strs[i];
            vals[i].u.bytes.len = (size_t)n;
        }
    }
}

static json_t *jansson_value(const catalog_value_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_DOUBLE:
        return json_real(v->u.f64);
    case CATALOG_DTYPE_FLOAT:
        return json_real((double)v->u.f32);
    case CATALOG_DTYPE_INT64:
        return json_integer(v->u.i64);
    default:
        return json_stringn((const char *)v->u.bytes.data, v->u.bytes.len);
    }
}

static json_t *jansson_array(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < N; i++)
        json_array_append_new(a, jansson_value(&vals[i]));
    return a;
}

/* The text must read back as the values. */
static void check(const char *text, size_t len, const char *who)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    if (j == NULL || json_array_size(j) != N) {
        fprintf(stderr, "fstore-json-bench: %s wrote bad JSON: %s\n", who, err.text);
        exit(1);
    }
    for (size_t i = 0; i < N; i++) {
        const json_t *x = json_array_get(j, i);
        bool ok =
            vals[i].type == CATALOG_DTYPE_DOUBLE  ? json_number_value(x) == vals[i].u.f64
            : vals[i].type == CATALOG_DTYPE_FLOAT ? json_number_value(x) == (double)vals[i].u.f32
            : vals[i].type == CATALOG_DTYPE_INT64 ? json_integer_value(x) == vals[i].u.i64
                                                  : json_string_length(x) == vals[i].u.bytes.len;
        if (!ok) {
            fprintf(stderr, "fstore-json-bench: %s: value %zu reads back differently\n", who, i);
            exit(1);
        }
    }
    json_decref(j);
}

/* One set: prints its JSON member. */
static void run(const char *set, double seconds, bool first)
{
    make_values(set);

    http_buf_t b = {0};
    size_t passes = 0;
    double t0 = now_s(), t;
    do {
        b.len = 0;
        http__putc(&b, '[');
        for (size_t i = 0; i < N; i++) {
            if (i > 0)
                http__puts(&b, ", ");
            http__json_value(&b, &vals[i]);
        }
        http__putc(&b, ']');
        passes++;
        t = now_s();
    } while (t - t0 < seconds);
    double fstore_ns = (t - t0) * 1e9 / ((double)passes * N);
    check(b.p, b.len, "fstore");
    size_t fstore_bytes = b.len;
    http__buf_free(&b);

    passes = 0;
    t0 = now_s();
    char *text = NULL;
    do {
        free(text);
        json_t *a = jansson_array();
        text = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        passes++;
        t = now_s();
    } while (t - t0 < seconds);
    double build_ns = (t - t0) * 1e9 / ((double)passes * N);
    check(text, strlen(text), "jansson");
    free(text);
    text = NULL;

    json_t *a = jansson_array();
    passes = 0;
    t0 = now_s();
    do {
        free(text);
        text = json_dumps(a, JSON_COMPACT);
        passes++;
        t = now_s();
    } while (t - t0 < seconds);
    double dump_ns = (t - t0) * 1e9 / ((double)passes * N);
    free(text);
    json_decref(a);

    printf("%s\"%s\": {\"fstore_ns\": %.1f, \"jansson_build_dump_ns\": %.1f, "
           "\"jansson_dump_ns\": %.1f, \"fstore_bytes\": %zu}",
           first ? "" : ", ", set, fstore_ns, build_ns, dump_ns, fstore_bytes);
}

/* One request body decoded both ways, ns per request each. */
static void decode(const char *name, size_t rows, double seconds)
{
    char body[8192];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"features\": [");
    for (int v = 0; v < 5; v++)
        for (int f = 0; f < 10; f++)
            n += (size_t)snprintf(body + n, sizeof body - n, "%s\"v%d:f%d\"", v || f ? ", " : "", v,
                                  f);
    n += (size_t)snprintf(body + n, sizeof body - n, "], \"entities\": {\"id\": [");
    for (size_t r = 0; r < rows; r++)
        n += (size_t)snprintf(body + n, sizeof body - n, "%s%d", r ? ", " : "", rand() % 10000000);
    n += (size_t)snprintf(body + n, sizeof body - n, "]}, \"full_feature_names\": true}");

    base_arena_t a;
    base_arena_init(&a, 16384);
    size_t passes = 0;
    double t0 = now_s(), t;
    do {
        base_arena_reset(&a);
        http__feast_read_t fr;
        if (http__feast_read_decode(&a, (const uint8_t *)body, n, &fr) != 0 ||
            http__feast_read_features(&a, &fr.list) != 0 || fr.list.n_refs != 50 ||
            fr.entity_rows[0] != rows) {
            fprintf(stderr, "fstore-json-bench: the decoder declined %s\n", name);
            exit(1);
        }
        passes++;
        t = now_s();
    } while (t - t0 < seconds);
    double fstore_ns = (t - t0) * 1e9 / (double)passes;

    passes = 0;
    t0 = now_s();
    do {
        base_arena_reset(&a);
        json_t *j = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
        if (j == NULL) {
            fprintf(stderr, "fstore-json-bench: jansson refused %s\n", name);
            exit(1);
        }
        json_t *ids = json_object_get(json_object_get(j, "entities"), "id");
        catalog_value_t *v = base_arena_array(&a, rows + 1, sizeof *v);
        char why[128];
        for (size_t r = 0; r < rows; r++)
            catalog_value_from_json(json_array_get(ids, r), CATALOG_DTYPE_INVALID, 0, &a, &v[r],
                                    why, sizeof why);
        json_decref(j);
        passes++;
        t = now_s();
    } while (t - t0 < seconds);
    double jansson_ns = (t - t0) * 1e9 / (double)passes;
    base_arena_free(&a);
    printf(", \"decode_%s\": {\"bytes\": %zu, \"fstore_ns\": %.1f, \"jansson_ns\": %.1f}", name, n,
           fstore_ns, jansson_ns);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    static const char *const sets[] = {"mix", "double", "decimal", "float", "int64", "string"};
    printf("{\"values\": %d, ", N);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        run(sets[i], seconds, i == 0);
    decode("h1", 1, seconds);
    decode("h100", 100, seconds);
    printf("}\n");
    return 0;
}
