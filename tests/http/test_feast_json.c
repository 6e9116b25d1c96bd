/* tests/http/test_feast_json.c - /get-online-features's hand-written decoder (http/feast_json.c)
 * against jansson. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/http/feast_json_equiv.h"

static base_arena_t arena;

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(feast_json, .init = setup, .fini = teardown);

static int equiv(const char *body)
{
    char why[512] = "";
    int rc = feast_json_equiv((const uint8_t *)body, strlen(body), &arena, why, sizeof why);
    cr_assert_neq(rc, -1, "%s: %s", body, why);
    return rc;
}

Test(feast_json, the_usual_bodies_are_decoded_as_jansson_reads_them)
{
    static const char *const bodies[] = {
        "{\"features\":[\"driver_hourly_stats:conv_rate\",\"driver_hourly_stats:acc_rate\"],"
        "\"entities\":{\"driver_id\":[1001,1002]},\"full_feature_names\":false}",
        " {\n\t\"entities\" : { \"driver_id\" : [ 1 ] , \"customer\" : [ \"c-1\" ] } ,\r\n"
        "  \"features\" : [ \"v@v2:f\" ] } \n",
        "{\"feature_service\":\"scoring\",\"entities\":{\"id\":[-9223372036854775808,"
        "9223372036854775807,0,-0]},\"full_feature_names\":true}",
        "{\"features\":[\"v:f\"],\"feature_service\":\"svc\",\"entities\":{\"id\":[1]}}",
        "{\"features\":null,\"feature_service\":null,\"full_feature_names\":null,"
        "\"entities\":{\"id\":[null,true,false,\"\",\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac\"]}}",
        "{\"features\":[],\"entities\":{}}",
        "{\"entities\":{\"a\":[],\"b\":[1]}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        cr_assert_eq(equiv(bodies[i]), 1, "declined: %s", bodies[i]);
}

Test(feast_json, a_feature_list_is_its_bytes_until_parsed_on_demand)
{
    const char *body = "{\"features\": [\"a:x\", \"b@v3:y\"], \"entities\": {\"k\": [7]}}";
    http__feast_read_t fr;
    cr_assert_eq(http__feast_read_decode(&arena, (const uint8_t *)body, strlen(body), &fr), 0);
    cr_assert_eq(fr.list.kind, CORE_LIST_FEATURES);
    cr_assert_null(fr.list.refs);
    cr_assert_eq(fr.list.key_len, strlen("[\"a:x\", \"b@v3:y\"]"));
    cr_assert_eq(memcmp(fr.list.key, "[\"a:x\", \"b@v3:y\"]", fr.list.key_len), 0);
    cr_assert_eq(fr.list.parse(&arena, &fr.list), 0);
    cr_assert_eq(fr.list.n_refs, 2);
    cr_assert_eq(fr.list.ref_lens[1], 6);
    cr_assert_eq(memcmp(fr.list.refs[1], "b@v3:y", 6), 0);
    cr_assert_str_eq(fr.entities.names[0], "k");
    cr_assert_eq(fr.entity_rows[0], 1);
    cr_assert_eq(fr.entities.cols[0][0].type, CATALOG_DTYPE_INT64);
    cr_assert_eq(fr.entities.cols[0][0].u.i64, 7);
}

/* What jansson must decide (its errors, its conversions, shapes the route reads otherwise). */
Test(feast_json, declines_what_jansson_must_decide)
{
    static const char *const bodies[] = {
        "",
        "{}",
        "[]",
        "{\"entities\":null}",
        "{\"entities\":[1]}",
        "{\"entities\":{\"a\":1}}",
        "{\"entities\":{\"a\":[1.5]}}",
        "{\"entities\":{\"a\":[1e3]}}",
        "{\"entities\":{\"a\":[1E3]}}",
        "{\"entities\":{\"a\":[01]}}",
        "{\"entities\":{\"a\":[-]}}",
        "{\"entities\":{\"a\":[+1]}}",
        "{\"entities\":{\"a\":[9223372036854775808]}}",
        "{\"entities\":{\"a\":[-9223372036854775809]}}",
        "{\"entities\":{\"a\":[\"x\\\"y\"]}}",
        "{\"entities\":{\"a\":[\"\\u00e9\"]}}",
        "{\"entities\":{\"a\":[\"\x01\"]}}",
        "{\"entities\":{\"a\":[\"\xc3\"]}}",
        "{\"entities\":{\"a\":[\"\xed\xa0\x80\"]}}",
        "{\"entities\":{\"a\":[[1]]}}",
        "{\"entities\":{\"a\":[{}]}}",
        "{\"entities\":{\"a\":[1],\"a\":[2]}}",
        "{\"entities\":{\"a\":[1]},\"entities\":{\"b\":[2]}}",
        "{\"entities\":{\"a\":[1]},\"request_context\":{\"r\":[1]}}",
        "{\"entities\":{\"a\":[1]},\"other\":1}",
        "{\"entities\":{\"a\":[1]}} x",
        "{\"entities\":{\"a\":[1]},}",
        "{\"entities\":{\"a\":[1,]}}",
        "{\"entities\":{\"a\":[1 2]}}",
        "{\"entities\":{\"a\":[truex]}}",
        "{\"entities\":{\"a\":[nul]}}",
        "{\"features\":\"v:f\",\"entities\":{\"a\":[1]}}",
        "{\"features\":[1],\"entities\":{\"a\":[1]}}",
        "{\"feature_service\":1,\"entities\":{\"a\":[1]}}",
        "{\"full_feature_names\":1,\"entities\":{\"a\":[1]}}",
        "{\"full_feature_names\":\"true\",\"entities\":{\"a\":[1]}}",
        "{\"entities\":{\"a\":[1]}",
        "{\"ent\\u0069ties\":{\"a\":[1]}}",
        "\xef\xbb\xbf{\"entities\":{\"a\":[1]}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        http__feast_read_t fr;
        cr_assert_eq(
            http__feast_read_decode(&arena, (const uint8_t *)bodies[i], strlen(bodies[i]), &fr),
            CORE_DECLINED, "accepted: %s", bodies[i]);
    }
    /* A NUL byte after the object, or inside a string. */
    static const char nul_after[] = "{\"entities\":{\"a\":[1]}}\0";
    static const char nul_in[] = "{\"entities\":{\"a\":[\"x\0y\"]}}";
    http__feast_read_t nf;
    cr_assert_eq(
        http__feast_read_decode(&arena, (const uint8_t *)nul_after, sizeof nul_after - 1, &nf),
        CORE_DECLINED);
    cr_assert_eq(http__feast_read_decode(&arena, (const uint8_t *)nul_in, sizeof nul_in - 1, &nf),
                 CORE_DECLINED);
    /* More entity columns than it keeps track of (64). */
    for (int cols = 64; cols <= 65; cols++) {
        char big[4096];
        size_t n = (size_t)snprintf(big, sizeof big, "{\"entities\":{");
        for (int c = 0; c < cols; c++)
            n += (size_t)snprintf(big + n, sizeof big - n, "%s\"c%d\":[1]", c ? "," : "", c);
        snprintf(big + n, sizeof big - n, "}}");
        http__feast_read_t fr;
        int rc = http__feast_read_decode(&arena, (const uint8_t *)big, strlen(big), &fr);
        cr_assert_eq(rc, cols == 64 ? 0 : CORE_DECLINED, "%d columns", cols);
        if (cols == 64)
            cr_assert_eq(equiv(big), 1);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Generated and damaged bodies                                                                */

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void put(char *b, size_t cap, size_t *n, const char *s)
{
    size_t l = strlen(s);
    if (*n + l < cap) {
        memcpy(b + *n, s, l);
        *n += l;
        b[*n] = '\0';
    }
}

static const char *ws_of(void)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    return w[next() % 7];
}

static void gen_string(char *b, size_t cap, size_t *n)
{
    static const char *const parts[] = {"a",
                                        "view",
                                        ":",
                                        "@v2",
                                        "_",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "Z9",
                                        "-",
                                        " ",
                                        "\xf0\x9f\x98\x80"};
    put(b, cap, n, "\"");
    for (uint64_t k = next() % 5; k > 0; k--)
        put(b, cap, n, parts[next() % (sizeof parts / sizeof parts[0])]);
    put(b, cap, n, "\"");
}

static void gen_value(char *b, size_t cap, size_t *n)
{
    char num[32];
    switch (next() % 6) {
    case 0:
        gen_string(b, cap, n);
        break;
    case 1:
        put(b, cap, n, next() % 2 ? "true" : "false");
        break;
    case 2:
        put(b, cap, n, "null");
        break;
    case 3:
        snprintf(num, sizeof num, "%" PRId64, (int64_t)next());
        put(b, cap, n, num);
        break;
    default:
        snprintf(num, sizeof num, "%d", (int)(next() % 2000) - 1000);
        put(b, cap, n, num);
        break;
    }
}

static void gen_body(char *b, size_t cap, size_t *n)
{
    *n = 0;
    b[0] = '\0';
    put(b, cap, n, ws_of());
    put(b, cap, n, "{");
    bool first = true;
    const char *members[] = {"features", "feature_service", "entities", "full_feature_names"};
    for (int m = 0; m < 4; m++) {
        if (m != 2 && next() % 3 == 0)
            continue;
        if (!first)
            put(b, cap, n, ",");
        first = false;
        put(b, cap, n, ws_of());
        put(b, cap, n, "\"");
        put(b, cap, n, members[m]);
        put(b, cap, n, "\"");
        put(b, cap, n, ws_of());
        put(b, cap, n, ":");
        put(b, cap, n, ws_of());
        if (m != 2 && next() % 8 == 0) {
            put(b, cap, n, "null");
        } else if (m == 0) {
            put(b, cap, n, "[");
            for (uint64_t k = next() % 6, i = 0; i < k; i++) {
                if (i)
                    put(b, cap, n, ",");
                put(b, cap, n, ws_of());
                gen_string(b, cap, n);
            }
            put(b, cap, n, "]");
        } else if (m == 1) {
            gen_string(b, cap, n);
        } else if (m == 3) {
            put(b, cap, n, next() % 2 ? "true" : "false");
        } else {
            put(b, cap, n, "{");
            for (uint64_t k = next() % 4, c = 0; c < k; c++) {
                char name[16];
                /* now and then a duplicate, which the decoder must decline */
                int id = next() % 50 == 0 ? 0 : (int)c;
                snprintf(name, sizeof name, "%s\"k%d\":", c ? "," : "", id);
                put(b, cap, n, name);
                put(b, cap, n, ws_of());
                put(b, cap, n, "[");
                for (uint64_t r = next() % 5, i = 0; i < r; i++) {
                    if (i)
                        put(b, cap, n, ",");
                    gen_value(b, cap, n);
                }
                put(b, cap, n, "]");
            }
            put(b, cap, n, "}");
        }
        put(b, cap, n, ws_of());
    }
    put(b, cap, n, "}");
    put(b, cap, n, ws_of());
}

Test(feast_json, agrees_with_jansson_on_generated_and_damaged_bodies)
{
    char body[2048];
    size_t accepted = 0, agreed_damaged = 0;
    static const char specials[] = "\"\\{}[],:0-9.eE+ntfu\x01\x80\xc3\xff";
    for (int round = 0; round < 20000; round++) {
        size_t n;
        gen_body(body, sizeof body, &n);
        if (equiv(body) == 1)
            accepted++;
        /* Damaged: a byte changed, dropped or added, or the end cut. */
        for (int d = 0; d < 4 && n > 1; d++) {
            char bad[2100];
            memcpy(bad, body, n + 1);
            size_t len = n, at = next() % n;
            switch (next() % 4) {
            case 0:
                bad[at] = specials[next() % (sizeof specials - 1)];
                break;
            case 1:
                memmove(bad + at, bad + at + 1, len - at);
                len--;
                break;
            case 2:
                memmove(bad + at + 1, bad + at, len - at + 1);
                bad[at] = specials[next() % (sizeof specials - 1)];
                len++;
                break;
            default:
                len = at;
                break;
            }
            char why[512] = "";
            int rc = feast_json_equiv((const uint8_t *)bad, len, &arena, why, sizeof why);
            cr_assert_neq(rc, -1, "%.*s: %s", (int)len, bad, why);
            agreed_damaged += rc == 1;
        }
        if (round % 256 == 0) {
            base_arena_free(&arena);
            base_arena_init(&arena, 4096);
        }
    }
    /* The generator writes what the decoder is for: nearly every body is taken, not declined. */
    cr_assert_gt(accepted, 19000, "%zu of 20000 accepted", accepted);
    cr_assert_gt(agreed_damaged, 1000, "damaged bodies still accepted (and agreeing): %zu",
                 agreed_damaged);
}

/* The fuzzer's kept inputs (tests/http/corpus/fuzz_http: a route byte, then the body). */
Test(feast_json, agrees_with_jansson_on_the_kept_fuzz_corpus)
{
    const char *src = getenv("FSTORE_SOURCE_DIR");
    cr_assert_not_null(src, "FSTORE_SOURCE_DIR is set by ctest");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/http/corpus/fuzz_http", src);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    size_t files = 0, accepted = 0;
    static uint8_t buf[1 << 16];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (n < 1)
            continue;
        char why[512] = "";
        int rc = feast_json_equiv(buf + 1, n - 1, &arena, why, sizeof why);
        cr_assert_neq(rc, -1, "%s: %s", e->d_name, why);
        files++;
        accepted += rc == 1;
        base_arena_free(&arena);
        base_arena_init(&arena, 4096);
    }
    closedir(d);
    cr_assert_gt(files, 100, "%zu inputs", files);
    cr_assert_gt(accepted, 0, "some kept inputs are the usual shape");
}
