/* tests/catalog/fuzz_expr.c - libFuzzer: on-demand expressions, compiled and evaluated. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "catalog/expr_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is an expression (up to the first NUL) and, after it, bytes that make up the values
 * of the inputs it reads. Whatever compiles must evaluate without a crash, a sanitizer report or
 * a result of a type other than the feature's, for every result dtype a feature may declare and
 * with any input null, NaN, extreme or empty.
 */

static const char scope_yaml[] =
    "project: p\n"
    "entities: [{name: d, join_keys: [{name: id, type: INT64}]}]\n"
    "feature_views:\n"
    "  - name: s\n"
    "    entities: [d]\n"
    "    features:\n"
    "      - {name: i, dtype: INT64}\n"
    "      - {name: i32, dtype: INT32}\n"
    "      - {name: f, dtype: DOUBLE}\n"
    "      - {name: f32, dtype: FLOAT}\n"
    "      - {name: b, dtype: BOOL}\n"
    "      - {name: str, dtype: STRING}\n"
    "      - {name: by, dtype: BYTES}\n"
    "      - {name: ts, dtype: UNIX_TIMESTAMP}\n"
    "      - {name: li, dtype: INT64_LIST}\n"
    "      - {name: lf, dtype: DOUBLE_LIST}\n"
    "      - {name: ls, dtype: STRING_LIST}\n"
    "      - {name: l32, dtype: INT32_LIST}\n"
    "request_sources: [{name: r, schema: [{name: x, dtype: INT64}, {name: y, dtype: DOUBLE}]}]\n";

static catalog_t *cat;

static void no_error(void *arg, size_t col, const char *msg)
{
    (void)arg;
    (void)col;
    (void)msg;
}

static uint64_t take(const uint8_t **p, const uint8_t *end)
{
    uint64_t x = 0;
    for (int i = 0; i < 8 && *p < end; i++)
        x = x << 8 | *(*p)++;
    return x;
}

/* One input's value from the bytes (null when they run out or say so). */
static void make_value(catalog_dtype_t t, const uint8_t **p, const uint8_t *end, catalog_value_t *v,
                       int64_t *i64s, double *f64s, int32_t *i32s, catalog_bytes_t *bs)
{
    memset(v, 0, sizeof *v);
    if (*p >= end || (**p & 7) == 0) {
        v->type = CATALOG_DTYPE_NULL;
        if (*p < end)
            (*p)++;
        return;
    }
    (*p)++;
    uint64_t x = take(p, end);
    static const double specials[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e308, -1e308, 5e-324};
    v->type = t;
    switch (t) {
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        v->u.i64 = (int64_t)x;
        break;
    case CATALOG_DTYPE_INT32:
        v->u.i32 = (int32_t)x;
        break;
    case CATALOG_DTYPE_DOUBLE:
        v->u.f64 = (x & 1) ? specials[(x >> 1) % 8] : (double)(int64_t)x / 1024.0;
        break;
    case CATALOG_DTYPE_FLOAT:
        v->u.f32 = (float)((x & 1) ? specials[(x >> 1) % 8] : (double)(int32_t)x / 64.0);
        break;
    case CATALOG_DTYPE_BOOL:
        v->u.b = x & 1;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES: {
        size_t n = (size_t)(x % 17);
        if (n > (size_t)(end - *p))
            n = (size_t)(end - *p);
        v->u.bytes = (catalog_bytes_t){*p, n};
        *p += n;
        break;
    }
    default: { /* lists of up to 4 items */
        size_t n = (size_t)(x % 5);
        catalog_dtype_t e = catalog_dtype_element(t);
        for (size_t k = 0; k < n; k++) {
            uint64_t y = take(p, end);
            i64s[k] = (int64_t)y;
            i32s[k] = (int32_t)y;
            f64s[k] = (y & 1) ? specials[(y >> 1) % 8] : (double)(int64_t)y;
            bs[k] = (catalog_bytes_t){(const uint8_t *)"abc", (size_t)(y % 4)};
        }
        v->u.list.n = n;
        if (e == CATALOG_DTYPE_DOUBLE)
            v->u.list.v.f64 = f64s;
        else if (e == CATALOG_DTYPE_INT32)
            v->u.list.v.i32 = i32s;
        else if (e == CATALOG_DTYPE_STRING)
            v->u.list.v.bytes = bs;
        else
            v->u.list.v.i64 = i64s;
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cat == NULL &&
        catalog_load_string(scope_yaml, sizeof scope_yaml - 1, "s.yaml", &cat, NULL) != 0)
        abort();
    size_t n = 0;
    while (n < size && data[n] != 0)
        n++;
    char *text = malloc(n + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, n);
    text[n] = '\0';
    const uint8_t *p = data + (n < size ? n + 1 : n), *end = data + size;

    const catalog_view_t *s = NULL;
    const catalog_request_source_t *r = catalog_request_source_at(cat, 0);
    if (catalog_find_view(cat, "s", 0, &s) != 0 || r == NULL)
        abort();
    catalog__scope_src_t srcs[2] = {{"s", s, NULL}, {"r", NULL, r}};
    static const catalog_dtype_t wants[] = {CATALOG_DTYPE_INT64,      CATALOG_DTYPE_INT32,
                                            CATALOG_DTYPE_DOUBLE,     CATALOG_DTYPE_FLOAT,
                                            CATALOG_DTYPE_BOOL,       CATALOG_DTYPE_STRING,
                                            CATALOG_DTYPE_BYTES,      CATALOG_DTYPE_UNIX_TIMESTAMP,
                                            CATALOG_DTYPE_INT64_LIST, CATALOG_DTYPE_STRING_LIST};
    base_arena_t a, scratch;
    base_arena_init(&a, 4096);
    base_arena_init(&scratch, 4096);
    for (size_t w = 0; w < sizeof wants / sizeof *wants; w++) {
        catalog__scope_t scope = {.srcs = srcs, .n_srcs = 2, .scratch = &scratch};
        const catalog_expr_t *e = NULL;
        if (catalog__expr_compile(&a, text, &scope, wants[w], no_error, NULL, &e) != 0)
            continue;
        catalog_feature_t f = {.name = "out", .dtype = wants[w], .expr = e};
        catalog_value_t in[CATALOG__EXPR_MAX_INPUTS];
        static int64_t i64s[CATALOG__EXPR_MAX_INPUTS][4];
        static double f64s[CATALOG__EXPR_MAX_INPUTS][4];
        static int32_t i32s[CATALOG__EXPR_MAX_INPUTS][4];
        static catalog_bytes_t bs[CATALOG__EXPR_MAX_INPUTS][4];
        for (size_t i = 0; i < scope.n_inputs; i++) {
            const catalog_input_t *x = &scope.inputs[i];
            catalog_dtype_t t = x->kind == CATALOG_INPUT_FEATURE   ? x->feature->dtype
                                : x->kind == CATALOG_INPUT_REQUEST ? x->field->dtype
                                                                   : CATALOG_DTYPE_UNIX_TIMESTAMP;
            make_value(t, &p, end, &in[i], i64s[i], f64s[i], i32s[i], bs[i]);
        }
        catalog_value_t out;
        int64_t now = (int64_t)take(&p, end);
        /* A small allowance half the time, so strings past it take the refusal path. */
        size_t allow = (now & 1) ? 64 : SIZE_MAX, made = 0;
        int rc = catalog_expr_eval(&f, in, now, &a, allow, &made, &out);
        if (rc == -EMSGSIZE && made <= allow)
            continue;
        if (rc != 0 || made > allow)
            abort();
        if (out.type != CATALOG_DTYPE_NULL && out.type != wants[w])
            abort(); /* the checker promised wants[w] */
        char buf[256];
        catalog_value_format(&out, buf, sizeof buf);
    }
    base_arena_free(&a);
    base_arena_free(&scratch);
    free(text);
    return 0;
}
