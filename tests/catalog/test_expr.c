/* tests/catalog/test_expr.c - on-demand expressions: parser, type checker and evaluator. */
#include <math.h>

#include "helpers.h"

/*
 * Each case compiles one expression as the only feature of an on-demand view over a stored view
 * `s` (a feature of every type) and a request source `r`, evaluates it over inputs written as
 * "s.i=41;r.x=2;@s=100" (@s: s's event time, seconds), and compares catalog_value_format() of
 * the result with the expected text ("null" for a null).
 */

static const char *const scope_yaml =
    "project: p\n"
    "entities: [{name: d, join_keys: [{name: id, type: INT64}]}]\n"
    "feature_views:\n"
    "  - name: s\n"
    "    entities: [d]\n"
    "    features:\n"
    "      - {name: i, dtype: INT64}\n"
    "      - {name: j, dtype: INT64}\n"
    "      - {name: i32, dtype: INT32}\n"
    "      - {name: f, dtype: DOUBLE}\n"
    "      - {name: g, dtype: DOUBLE}\n"
    "      - {name: f32, dtype: FLOAT}\n"
    "      - {name: b, dtype: BOOL}\n"
    "      - {name: c, dtype: BOOL}\n"
    "      - {name: str, dtype: STRING}\n"
    "      - {name: str2, dtype: STRING}\n"
    "      - {name: by, dtype: BYTES}\n"
    "      - {name: ts, dtype: UNIX_TIMESTAMP}\n"
    "      - {name: li, dtype: INT64_LIST}\n"
    "      - {name: lf, dtype: DOUBLE_LIST}\n"
    "      - {name: ls, dtype: STRING_LIST}\n"
    "      - {name: lt, dtype: UNIX_TIMESTAMP_LIST}\n"
    "request_sources:\n"
    "  - name: r\n"
    "    schema: [{name: x, dtype: INT64}, {name: y, dtype: DOUBLE}]\n"
    "on_demand_feature_views:\n"
    "  - name: o\n"
    "    sources: [s, r]\n"
    "    features:\n"
    "      - name: out\n"
    "        dtype: %s\n"
    "        expression: |-\n"
    "          %s\n";

static catalog_t *compile(const char *dtype, const char *expr, catalog_errors_t *errs)
{
    char yaml[4096 + 2048];
    /* The format is the constant above (gcc -O0, as scripts/coverage.sh builds, cannot see
     * that). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(yaml, sizeof yaml, scope_yaml, dtype, expr);
#pragma GCC diagnostic pop
    catalog_t *c = NULL;
    int rc = catalog_load_string(yaml, strlen(yaml), "t.yaml", &c, errs);
    if (rc != 0 && errs == NULL)
        cr_log_error("'%s' did not compile", expr);
    return rc == 0 ? c : NULL;
}

/* Parses one input's text as the input's type into v (lists: [a,b,c]; "null"). */
static void parse_value(const char *txt, catalog_dtype_t t, catalog_value_t *v, void *store)
{
    memset(v, 0, sizeof *v);
    if (strcmp(txt, "null") == 0) {
        v->type = CATALOG_DTYPE_NULL;
        return;
    }
    v->type = t;
    switch (t) {
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        v->u.i64 = strtoll(txt, NULL, 10);
        break;
    case CATALOG_DTYPE_INT32:
        v->u.i32 = (int32_t)strtol(txt, NULL, 10);
        break;
    case CATALOG_DTYPE_DOUBLE:
        v->u.f64 = strtod(txt, NULL);
        break;
    case CATALOG_DTYPE_FLOAT:
        v->u.f32 = strtof(txt, NULL);
        break;
    case CATALOG_DTYPE_BOOL:
        v->u.b = strcmp(txt, "true") == 0;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        v->u.bytes = (catalog_bytes_t){(const uint8_t *)txt, strlen(txt)};
        break;
    default: { /* lists: "[a,b]" into store */
        catalog_dtype_t e = catalog_dtype_element(t);
        char buf[256];
        snprintf(buf, sizeof buf, "%s", txt + 1);
        buf[strlen(buf) - 1] = '\0';
        size_t n = 0;
        int64_t *i64 = store;
        double *f64 = store;
        catalog_bytes_t *bs = store;
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save), n++) {
            if (e == CATALOG_DTYPE_DOUBLE)
                f64[n] = strtod(tok, NULL);
            else if (e == CATALOG_DTYPE_STRING) {
                const char *at = strstr(txt, tok);
                bs[n] = (catalog_bytes_t){(const uint8_t *)at, strlen(tok)};
            } else
                i64[n] = strtoll(tok, NULL, 10);
        }
        v->u.list.n = n;
        v->u.list.v.i64 = i64;
        if (e == CATALOG_DTYPE_DOUBLE)
            v->u.list.v.f64 = f64;
        if (e == CATALOG_DTYPE_STRING)
            v->u.list.v.bytes = bs;
        break;
    }
    }
}

#define NOW_US 1000000000000000LL /* 2001-09-09T01:46:40Z */

/* Evaluates c's on-demand feature over inputs; writes the formatted result into out. */
static void eval(const catalog_t *c, const char *inputs, char *out, size_t cap)
{
    const catalog_view_t *v = catalog_on_demand_at(c, 0);
    const catalog_on_demand_t *od = v->on_demand;
    catalog_value_t in[64];
    static char texts[64][128];
    static union {
        int64_t i[16];
        double d[16];
        catalog_bytes_t b[16];
    } stores[64];
    cr_assert_leq(od->n_inputs, 64);
    for (size_t i = 0; i < od->n_inputs; i++)
        in[i].type = CATALOG_DTYPE_NULL;
    char spec[512];
    snprintf(spec, sizeof spec, "%s", inputs);
    for (char *save = NULL, *tok = strtok_r(spec, ";", &save); tok != NULL;
         tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq);
        *eq = '\0';
        const char *val = eq + 1;
        bool found = false;
        for (size_t i = 0; i < od->n_inputs && !found; i++) {
            const catalog_input_t *x = &od->inputs[i];
            char name[160];
            catalog_dtype_t t;
            if (x->kind == CATALOG_INPUT_FEATURE) {
                snprintf(name, sizeof name, "s.%s", x->feature->name);
                t = x->feature->dtype;
            } else if (x->kind == CATALOG_INPUT_REQUEST) {
                snprintf(name, sizeof name, "r.%s", x->field->name);
                t = x->field->dtype;
            } else {
                snprintf(name, sizeof name, "@s");
                t = CATALOG_DTYPE_UNIX_TIMESTAMP;
            }
            if (strcmp(name, tok) != 0)
                continue;
            snprintf(texts[i], sizeof texts[i], "%s", val);
            parse_value(texts[i], t, &in[i], &stores[i]);
            found = true;
        }
        cr_assert(found, "input %s is not read by the expression", tok);
    }
    base_arena_t a;
    base_arena_init(&a, 1024);
    catalog_value_t r;
    cr_assert_eq(catalog_expr_eval(&v->features[0], in, NOW_US, &a, SIZE_MAX, NULL, &r), 0);
    if (r.type != CATALOG_DTYPE_NULL)
        cr_assert_eq(r.type, v->features[0].dtype, "result type %s, feature %s",
                     catalog_dtype_name(r.type), catalog_dtype_name(v->features[0].dtype));
    catalog_value_format(&r, out, cap);
    base_arena_free(&a);
}

typedef struct ecase {
    const char *dtype, *expr, *inputs, *want;
} ecase_t;

static void run_cases(const ecase_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ecase_t *k = &cases[i];
        catalog_errors_t errs = {NULL, 0};
        catalog_t *c = compile(k->dtype, k->expr, &errs);
        if (c == NULL)
            print_errors(&errs);
        cr_assert_not_null(c, "case %zu: '%s' should compile", i, k->expr);
        char got[256];
        eval(c, k->inputs, got, sizeof got);
        cr_expect_str_eq(got, k->want, "case %zu: %s over %s: got %s, want %s", i, k->expr,
                         k->inputs, got, k->want);
        catalog_unref(c);
        catalog_errors_clear(&errs);
    }
}

Test(expr, arithmetic_on_every_numeric_pair)
{
    static const ecase_t cases[] = {
        {"INT64", "s.i + s.j", "s.i=40;s.j=2", "42"},
        {"INT64", "s.i - s.j * 2", "s.i=10;s.j=3", "4"},
        {"INT64", "s.i % s.j", "s.i=10;s.j=3", "1"},
        {"INT64", "-s.i % s.j", "s.i=10;s.j=3", "-1"},
        {"INT64", "s.i + s.i32", "s.i=1;s.i32=2", "3"},
        {"INT64", "s.i32 * s.i32", "s.i32=2000000000", "4000000000000000000"},
        {"DOUBLE", "s.i / s.j", "s.i=1;s.j=4", "0.25"},
        {"DOUBLE", "s.f + s.i", "s.f=0.5;s.i=1", "1.5"},
        {"DOUBLE", "s.f32 + s.f", "s.f32=0.5;s.f=0.25", "0.75"},
        {"DOUBLE", "s.f * s.g - 1", "s.f=3;s.g=0.5", "0.5"},
        {"DOUBLE", "s.f % s.g", "s.f=7.5;s.g=2", "1.5"},
        {"DOUBLE", "s.i", "s.i=3", "3"},                 /* INT64 widened to DOUBLE */
        {"INT64", "s.i32", "s.i32=-7", "-7"},            /* INT32 widened to INT64 */
        {"DOUBLE", "r.x + r.y", "r.x=1;r.y=0.5", "1.5"}, /* request fields */
        {"DOUBLE", "2 * (1 + 0.5)", "", "3"},
        {"INT64", "-(-3)", "", "3"},
        {"DOUBLE", "1e3 + .5", "", "1000.5"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(expr, faults_become_null_never_a_signal)
{
    static const ecase_t cases[] = {
        {"INT64", "s.i + s.j", "s.i=9223372036854775807;s.j=1", "null"},
        {"INT64", "s.i - s.j", "s.i=-9223372036854775807;s.j=2", "null"},
        {"INT64", "s.i * s.j", "s.i=4611686018427387904;s.j=2", "null"},
        {"INT64", "s.i % s.j", "s.i=5;s.j=0", "null"},
        {"INT64", "s.i % s.j", "s.i=-9223372036854775807;s.j=-1", "0"},
        {"INT64", "(s.i - 1) % s.j", "s.i=-9223372036854775807;s.j=-1", "null"},
        {"INT64", "-(s.i - 1)", "s.i=-9223372036854775807", "null"},
        {"INT64", "abs(s.i - 1)", "s.i=-9223372036854775807", "null"},
        {"DOUBLE", "s.f / s.g", "s.f=1;s.g=0", "null"},
        {"DOUBLE", "s.i / s.j", "s.i=1;s.j=0", "null"},
        {"DOUBLE", "s.f % s.g", "s.f=1;s.g=0", "null"},
        {"DOUBLE", "log(s.f)", "s.f=-1", "null"},
        {"DOUBLE", "log(s.f)", "s.f=0", "null"},
        {"DOUBLE", "sqrt(s.f)", "s.f=-4", "null"},
        {"DOUBLE", "exp(s.f)", "s.f=1000", "null"},
        {"DOUBLE", "pow(s.f, s.g)", "s.f=-8;s.g=0.5", "null"},
        {"DOUBLE", "s.f * s.g", "s.f=1e308;s.g=10", "null"},
        {"FLOAT", "float(s.f)", "s.f=1e300", "null"},
        {"INT32", "int32(s.i)", "s.i=2147483648", "null"},
        {"INT32", "int32(s.f)", "s.f=nan", "null"},
        {"INT64", "int64(s.f)", "s.f=9.3e18", "null"},
        {"INT64", "int64(s.f)", "s.f=-inf", "null"},
        /* NaN and infinity read from the store are data: IEEE arithmetic, not a fault */
        {"DOUBLE", "s.f + 1", "s.f=inf", "inf"},
        {"DOUBLE", "s.f * 0", "s.f=nan", "nan"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(expr, nulls_propagate_except_where_handled)
{
    static const ecase_t cases[] = {
        {"DOUBLE", "s.f + 1", "", "null"},
        {"DOUBLE", "s.f + r.x", "s.f=1", "null"},
        {"BOOL", "is_null(s.f)", "", "true"},
        {"BOOL", "is_null(s.f)", "s.f=1", "false"},
        {"DOUBLE", "coalesce(s.f, s.g, 7)", "s.g=2.5", "2.5"},
        {"DOUBLE", "coalesce(s.f, s.g, 7)", "", "7"},
        {"INT64", "coalesce(s.i, s.i32)", "s.i32=5", "5"},
        {"DOUBLE", "coalesce(s.f, null)", "", "null"},
        {"BOOL", "s.b and s.c", "s.b=false", "false"}, /* false and null */
        {"BOOL", "s.b and s.c", "s.b=true", "null"},   /* true and null */
        {"BOOL", "s.b or s.c", "s.c=true", "true"},    /* null or true */
        {"BOOL", "s.b or s.c", "s.c=false", "null"},   /* null or false */
        {"BOOL", "not s.b", "", "null"},
        {"BOOL", "s.i > 1", "", "null"},
        {"INT64", "if(s.b, 1, 2)", "", "2"}, /* a null condition is false */
        {"INT64", "if(s.b, s.i, 2)", "s.b=true", "null"},
        {"STRING", "concat(s.str, 'x')", "", "null"},
        {"INT64", "len(s.li)", "", "null"},
        {"INT64", "get(s.li, 0, -1)", "", "-1"},
        {"DOUBLE", "min(s.f, 1)", "", "null"},
        {"INT64", "age(s.ts)", "", "null"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(expr, comparisons_and_logic)
{
    static const ecase_t cases[] = {
        {"BOOL", "s.i == s.j", "s.i=1;s.j=1", "true"},
        {"BOOL", "s.i != s.j", "s.i=1;s.j=1", "false"},
        {"BOOL", "s.i < s.f", "s.i=1;s.f=1.5", "true"},
        {"BOOL", "s.i <= s.j", "s.i=2;s.j=2", "true"},
        {"BOOL", "s.f > s.g", "s.f=2;s.g=3", "false"},
        {"BOOL", "s.f >= s.g", "s.f=3;s.g=3", "true"},
        {"BOOL", "s.f == s.f", "s.f=nan", "false"},
        {"BOOL", "s.f != s.f", "s.f=nan", "true"},
        {"BOOL", "s.f < 1 or s.f >= 1", "s.f=nan", "false"},
        {"BOOL", "s.i == 9007199254740993", "s.i=9007199254740993", "true"}, /* no double */
        {"BOOL", "s.i == 9007199254740992", "s.i=9007199254740993", "false"},
        {"BOOL", "s.str < s.str2", "s.str=abc;s.str2=abd", "true"},
        {"BOOL", "s.str < s.str2", "s.str=ab;s.str2=abc", "true"},
        {"BOOL", "s.str == 'abc'", "s.str=abc", "true"},
        {"BOOL", "s.b == s.c", "s.b=true;s.c=true", "true"},
        {"BOOL", "s.ts + r.x * 0 - 1 < s.ts", "s.ts=100;r.x=1", "true"}, /* times +- ints */
        {"BOOL", "not (s.b && !s.c) || false", "s.b=true;s.c=false", "false"},
        {"BOOL", "s.b and s.c or true", "s.b=false;s.c=false", "true"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(expr, math_and_casts)
{
    static const ecase_t cases[] = {
        {"INT64", "abs(s.i)", "s.i=-3", "3"},
        {"DOUBLE", "abs(s.f)", "s.f=-2.5", "2.5"},
        {"DOUBLE", "sqrt(s.f)", "s.f=16", "4"},
        {"DOUBLE", "exp(0) + log(1)", "", "1"},
        {"DOUBLE", "pow(2, 10)", "", "1024"},
        {"DOUBLE", "min(s.f, 2, 3)", "s.f=2.5", "2"},
        {"INT64", "max(s.i, 2, -3)", "s.i=1", "2"},
        {"DOUBLE", "max(s.i, 2.5)", "s.i=1", "2.5"},
        {"DOUBLE", "clamp(s.f, 0, 1)", "s.f=1.5", "1"},
        {"DOUBLE", "clamp(s.f, 0, 1)", "s.f=-1", "0"},
        {"INT64", "clamp(s.i, 0, 10)", "s.i=5", "5"},
        {"INT64", "clamp(s.i, 10, 0)", "s.i=5", "null"},
        {"DOUBLE", "round(s.f)", "s.f=2.5", "3"},
        {"DOUBLE", "round(s.f)", "s.f=-2.5", "-3"},
        {"DOUBLE", "round(s.f, 2)", "s.f=1.23456", "1.23"},
        {"DOUBLE", "round(s.f, -2)", "s.f=1234", "1200"},
        {"DOUBLE", "floor(s.f) + ceil(s.g)", "s.f=1.5;s.g=1.5", "3"},
        {"INT32", "int32(s.f)", "s.f=-2.9", "-2"},
        {"INT64", "int64(s.f)", "s.f=2.9", "2"},
        {"INT64", "int64(s.b)", "s.b=true", "1"},
        {"INT64", "int64(s.ts)", "s.ts=77", "77"},
        {"FLOAT", "float(s.i)", "s.i=3", "3"},
        {"FLOAT", "s.f32 * 1", "s.f32=1.5", "null"},
    };
    /* the last is a type error (DOUBLE into FLOAT): checked below */
    run_cases(cases, sizeof cases / sizeof *cases - 1);
}

Test(expr, strings_lists_and_time)
{
    static const ecase_t cases[] = {
        {"INT64", "length(s.str)", "s.str=h\xc3\xa9llo", "5"}, /* code points */
        {"INT64", "length(s.by)", "s.by=h\xc3\xa9llo", "6"},   /* bytes */
        {"STRING", "lower(s.str)", "s.str=AbC", "\"abc\""},
        {"STRING", "upper(s.str)", "s.str=AbC", "\"ABC\""},
        {"STRING", "concat(s.str, '-', s.str2, \"!\")", "s.str=a;s.str2=b", "\"a-b!\""},
        {"BOOL", "contains(s.str, 'ell')", "s.str=hello", "true"},
        {"BOOL", "contains(s.str, 'xyz')", "s.str=hello", "false"},
        {"BOOL", "contains(s.str, '')", "s.str=", "true"},
        {"BOOL", "starts_with(s.str, 'he')", "s.str=hello", "true"},
        {"BOOL", "ends_with(s.str, 'lo')", "s.str=hello", "true"},
        {"BOOL", "ends_with(s.str, 'hello!')", "s.str=hello", "false"},
        {"STRING", "'it\\'s'", "", "\"it's\""},
        {"INT64", "len(s.li)", "s.li=[1,2,3]", "3"},
        {"INT64", "sum(s.li)", "s.li=[1,2,3]", "6"},
        {"INT64", "sum(s.li)", "s.li=[]", "0"},
        {"INT64", "sum(s.li)", "s.li=[9223372036854775807,1]", "null"},
        {"DOUBLE", "mean(s.li)", "s.li=[1,2]", "1.5"},
        {"DOUBLE", "mean(s.lf)", "s.lf=[]", "null"},
        {"INT64", "min(s.li)", "s.li=[5,-2,7]", "-2"},
        {"DOUBLE", "max(s.lf)", "s.lf=[0.5,2.5]", "2.5"},
        {"UNIX_TIMESTAMP", "max(s.lt)", "s.lt=[5,9]", "9"},
        {"INT64", "s.li[1]", "s.li=[5,6,7]", "6"},
        {"INT64", "s.li[-1]", "s.li=[5,6,7]", "7"},
        {"INT64", "s.li[3]", "s.li=[5,6,7]", "null"},
        {"INT64", "get(s.li, 9, -1)", "s.li=[5,6,7]", "-1"},
        {"DOUBLE", "get(s.li, 0, 0.5)", "s.li=[5]", "5"},
        {"STRING", "get(s.ls, 1, 'none')", "s.ls=[a,b]", "\"b\""},
        {"UNIX_TIMESTAMP", "now()", "", "1000000000"},
        {"INT64", "age(s.ts)", "s.ts=999999990", "10"},
        {"INT64", "age(event_time(s))", "@s=999999000", "1000"},
        {"INT64", "now() - s.ts", "s.ts=999999999", "1"},
        {"UNIX_TIMESTAMP", "s.ts + 60", "s.ts=100", "160"},
        {"BOOL", "s.ts > now()", "s.ts=100", "false"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

typedef struct bad_case {
    const char *dtype, *expr;
    int column; /* in the expression */
    const char *message;
} bad_case_t;

Test(expr, type_and_syntax_errors_name_their_column)
{
    static const bad_case_t cases[] = {
        {"DOUBLE", "s.str + 1", 7, "'+' does not apply to STRING and INT64"},
        {"STRING", "s.str + s.str2", 7, "(use concat())"},
        {"INT32", "s.i * 2", 1,
         "the expression is INT64 but the feature is INT32 (narrow it with "
         "int32())"},
        {"FLOAT", "s.f32 * 1", 1, "is DOUBLE but the feature is FLOAT (narrow it with float())"},
        {"INT64", "s.f", 1, "is DOUBLE but the feature is INT64 (convert it with int64())"},
        {"BOOL", "s.i == 'a'", 5, "'==' does not compare INT64 with STRING"},
        {"BOOL", "s.i == null", 5, "(use is_null())"},
        {"BOOL", "s.b < s.c", 5, "'<' does not compare BOOL with BOOL"},
        {"BOOL", "s.i and s.b", 1, "'and' needs BOOL operands, not INT64"},
        {"BOOL", "s.b or s.i", 8, "'or' needs BOOL operands, not INT64"},
        {"BOOL", "not s.i", 5, "'not' needs BOOL operands, not INT64"},
        {"STRING", "'a\\d'", 3, "unknown escape '\\d'"},
        {"BOOL", "1 < 2 < 3", 7, "comparisons do not chain"},
        {"INT64", "s.nope", 3, "feature view 's' has no feature 'nope'"},
        {"INT64", "q.i", 1, "'q' is not a source of this view"},
        {"INT64", "nope + 1", 1, "unknown name 'nope'"},
        {"INT64", "lenght(s.str)", 1, "unknown function 'lenght' (did you mean 'length'?)"},
        {"INT64", "abs(1, 2)", 1, "abs() takes 1 argument, not 2"},
        {"INT64", "coalesce()", 1, "coalesce() takes at least 1 argument, not 0"},
        {"DOUBLE", "sqrt(s.str)", 6, "sqrt(): argument 1 must be a number, not STRING"},
        {"INT64", "if(s.i, 1, 2)", 4, "if(): argument 1 must be BOOL, not INT64"},
        {"INT64", "if(s.b, 1, 'a')", 12, "argument 3 is STRING, which does not mix with INT64"},
        {"INT64", "s.i[0]", 4, "only lists can be indexed, not INT64"},
        {"INT64", "s.li[s.f]", 6, "a list index must be an integer, not DOUBLE"},
        {"INT64", "event_time(r)", 12, "'r' is not a feature view source"},
        {"INT64", "(s.i + 1", 9, "expected ')', got the end of the expression"},
        {"INT64", "s.i +", 6, "expected a value, got the end of the expression"},
        {"INT64", "s.i 1", 5, "expected an operator or the end of the expression"},
        {"STRING", "'abc", 1, "unterminated string"},
        {"INT64", "1 $ 2", 3, "expected an operator"},
        {"INT64", "99999999999999999999", 1, "number '99999999999999999999' is out of range"},
        {"INT64", "", 1, "the expression is empty"},
        {"BOOL", "s.ts > s.i", 6, "'>' does not compare UNIX_TIMESTAMP with INT64"},
        {"INT64", "len(s.str)", 5, "len(): argument 1 must be a list"},
        {"INT64", "min(s.str)", 5, "min(): argument 1 must be a list of numbers or times"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad_case_t *k = &cases[i];
        catalog_errors_t errs = {NULL, 0};
        catalog_t *c = compile(k->dtype, k->expr, &errs);
        cr_assert_null(c, "case %zu: '%s' should not compile", i, k->expr);
        char want[64];
        snprintf(want, sizeof want, "column %d of the expression: ", k->column);
        bool found = false;
        for (size_t e = 0; e < errs.count && !found; e++)
            found = strstr(errs.items[e].message, want) != NULL &&
                    strstr(errs.items[e].message, k->message) != NULL;
        if (!found)
            print_errors(&errs);
        cr_expect(found, "case %zu: '%s' wants \"%s%s\"", i, k->expr, want, k->message);
        catalog_errors_clear(&errs);
    }
}

Test(expr, every_type_error_of_a_view_is_reported_at_once_with_its_place)
{
    catalog_errors_t errs = {NULL, 0};
    catalog_t *c = compile("DOUBLE", "s.str + 1 + lenght(s.i) + s.b * 2", &errs);
    cr_assert_null(c);
    cr_assert_eq(errs.count, 3, "got %zu errors", errs.count);
    /* every error points at the expression in the file (a block scalar: its indicator's line) */
    for (size_t e = 0; e < errs.count; e++) {
        cr_expect_eq(errs.items[e].line, 32);
        cr_expect_str_eq(errs.items[e].key, "on_demand_feature_views[0].features[0].expression");
    }
    catalog_errors_clear(&errs);
}

Test(expr, bounds_on_length_terms_and_depth)
{
    char expr[8192];
    /* more than 256 terms */
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(expr + n, sizeof expr - n, "1+");
    snprintf(expr + n, sizeof expr - n, "1");
    catalog_errors_t errs = {NULL, 0};
    cr_assert_null(compile("INT64", expr, &errs));
    cr_expect(strstr(errs.items[0].message, "more than 256 terms") != NULL, "%s",
              errs.items[0].message);
    catalog_errors_clear(&errs);
    /* nesting */
    n = 0;
    for (int i = 0; i < 100; i++)
        expr[n++] = '(';
    expr[n++] = '1';
    for (int i = 0; i < 100; i++)
        expr[n++] = ')';
    expr[n] = '\0';
    cr_assert_null(compile("INT64", expr, &errs));
    cr_expect(strstr(errs.items[0].message, "nests deeper than 64") != NULL, "%s",
              errs.items[0].message);
    catalog_errors_clear(&errs);
    /* length: one long string constant */
    memcpy(expr, "length('", 8);
    memset(expr + 8, 'a', 4100);
    memcpy(expr + 4108, "')", 3);
    cr_assert_null(compile("INT64", expr, &errs));
    cr_expect(strstr(errs.items[0].message, "longer than 4096 characters") != NULL, "%s",
              errs.items[0].message);
    catalog_errors_clear(&errs);
}

Test(expr, inputs_are_shared_and_listed_once_per_view)
{
    const char *yaml =
        "project: p\n"
        "entities: [{name: d, join_keys: [{name: id, type: INT64}]}]\n"
        "feature_views:\n"
        "  - name: s\n"
        "    entities: [d]\n"
        "    features: [{name: a, dtype: INT64}, {name: b, dtype: INT64}]\n"
        "request_sources:\n"
        "  - name: r\n"
        "    schema: [{name: x, dtype: INT64}]\n"
        "on_demand_feature_views:\n"
        "  - name: o\n"
        "    sources: [s, r]\n"
        "    features:\n"
        "      - {name: p, dtype: INT64, expression: 's.a + r.x'}\n"
        "      - {name: q, dtype: INT64, expression: 's.a * s.a + age(event_time(s))'}\n";
    catalog_t *c = load_ok(yaml);
    const catalog_view_t *v = NULL;
    cr_assert_eq(catalog_find_view(c, "o", 0, &v), 0);
    cr_assert_not_null(v->on_demand);
    cr_assert_eq(v->on_demand->n_inputs, 3); /* s.a, r.x, event_time(s) */
    cr_expect_eq(v->n_join_keys, 1);
    cr_expect_str_eq(v->join_keys[0].name, "id");
    const uint32_t *idx;
    size_t n;
    catalog_expr_inputs(&v->features[0], &idx, &n);
    cr_expect_eq(n, 2);
    catalog_expr_inputs(&v->features[1], &idx, &n);
    cr_expect_eq(n, 2);
    cr_expect_eq(v->on_demand->inputs[idx[1]].kind, CATALOG_INPUT_EVENT_TIME);
    /* references resolve like stored ones; the view is not listed among stored views */
    catalog_feature_ref_t ref;
    cr_expect_eq(catalog_find_feature(c, "o:q", 3, &ref), 0);
    cr_expect_eq(catalog_find_feature(c, "o@v1:p", 6, &ref), 0);
    cr_expect_eq(catalog_view_count(c), 1);
    cr_expect_eq(catalog_on_demand_count(c), 1);
    catalog_unref(c);
}

Test(expr, sources_must_be_stored_views_or_request_sources)
{
    const char *yaml =
        BASE_YAML "on_demand_feature_views:\n"
                  "  - name: o\n"
                  "    sources: [stats, nope]\n"
                  "    features: [{name: p, dtype: DOUBLE, expression: 'stats.rate'}]\n"
                  "  - name: o2\n"
                  "    sources: [o]\n"
                  "    features: [{name: p, dtype: DOUBLE, expression: '1'}]\n"
                  "  - name: stats\n"
                  "    sources: [stats]\n"
                  "    features: [{name: p, dtype: DOUBLE, expression: '1'}]\n"
                  "  - name: o3\n"
                  "    sources: [stats]\n"
                  "    features: [{name: p, dtype: DOUBLE}]\n";
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    const catalog_error_t *e = find_error(&errs, "on_demand_feature_views[0].sources[1]");
    cr_assert_not_null(e);
    cr_expect(strstr(e->message, "unknown source 'nope'") != NULL, "%s", e->message);
    e = find_error(&errs, "on_demand_feature_views[1].sources[0]");
    cr_assert_not_null(e);
    cr_expect(strstr(e->message, "is an on-demand feature view") != NULL, "%s", e->message);
    e = find_error(&errs, "on_demand_feature_views[2].name");
    cr_assert_not_null(e);
    cr_expect(strstr(e->message, "has the name of a feature view") != NULL, "%s", e->message);
    e = find_error(&errs, "on_demand_feature_views[3].features[0].expression");
    cr_assert_not_null(e);
    cr_expect(strstr(e->message, "missing required key 'expression'") != NULL, "%s", e->message);
    catalog_errors_clear(&errs);
}

Test(expr, nesting_counts_each_parenthesis_once)
{
    char expr[512];
    for (int depth = 63; depth <= 64; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            expr[n++] = '(';
        expr[n++] = '1';
        for (int i = 0; i < depth; i++)
            expr[n++] = ')';
        expr[n] = '\0';
        catalog_errors_t errs = {NULL, 0};
        catalog_t *c = compile("INT64", expr, &errs);
        /* the whole expression is level 1: 63 parentheses inside it make 64 */
        if (depth == 63) {
            cr_expect_not_null(c, "63 nested parentheses are within the documented 64 levels");
        } else {
            cr_expect_null(c);
            cr_expect(errs.count > 0 && strstr(errs.items[0].message, "nests deeper than 64"));
        }
        catalog_unref(c);
        catalog_errors_clear(&errs);
    }
}

Test(expr, huge_values_and_clocks_stay_defined)
{
    static const ecase_t cases[] = {
        {"DOUBLE", "round(s.f, 2)", "s.f=1e300", "1e+300"},
        {"DOUBLE", "round(s.f, -2)", "s.f=1e300", "1e+300"},
        {"BOOL", "contains(s.str, 'ab')", "s.str=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "true"},
        {"FLOAT", "float(s.f)", "s.f=3.5e38", "null"},
        {"FLOAT", "float(s.f)", "s.f=inf", "inf"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(expr, request_sources_with_broken_fields_do_not_crash_the_loader)
{
    /* a schema entry without a name, and an expression naming fields of that source */
    const char *yaml = "project: p\n"
                       "request_sources: [{name: r, schema: [{dtype: INT64}, {name: x, dtype: "
                       "INT64}]}]\n"
                       "on_demand_feature_views:\n"
                       "  - {name: o, sources: [r], features: [{name: f, dtype: INT64, "
                       "expression: 'x + r.x + nope'}]}\n";
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    cr_expect_not_null(find_error(&errs, "request_sources[0].schema[0].name"));
    catalog_errors_clear(&errs);
}

Test(expr, request_fields_and_sources_must_mean_one_thing)
{
    const char *yaml = BASE_YAML
        "  - name: cold\n"
        "    entities: [driver]\n"
        "    online: false\n"
        "    features: [{name: z, dtype: INT64}]\n"
        "request_sources:\n"
        "  - {name: r1, schema: [{name: x, dtype: INT64}]}\n"
        "  - {name: r2, schema: [{name: x, dtype: STRING}]}\n"
        "  - {name: stats, schema: [{name: y, dtype: INT64}]}\n"
        "on_demand_feature_views:\n"
        "  - {name: o, sources: [cold, r1], features: [{name: f, dtype: INT64, expression: "
        "'x'}]}\n";
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    bool typed = false, named = false, offline = false;
    for (size_t i = 0; i < errs.count; i++) {
        const char *m = errs.items[i].message;
        typed |=
            strstr(m, "request field 'x' is STRING here but INT64 in request source 'r1'") != NULL;
        named |= strstr(m, "request source 'stats' has the name of a feature view") != NULL;
        offline |= strstr(m, "source 'cold' is not online") != NULL;
    }
    if (!(typed && named && offline))
        print_errors(&errs);
    cr_expect(typed);
    cr_expect(named);
    cr_expect(offline);
    catalog_errors_clear(&errs);
}

Test(expr, strings_an_evaluation_builds_are_bounded_by_its_allowance)
{
    catalog_errors_t errs = {NULL, 0};
    catalog_t *c = compile("INT64", "length(lower(concat(s.str, s.str, s.str)))", &errs);
    cr_assert_not_null(c);
    const catalog_view_t *v = catalog_on_demand_at(c, 0);
    catalog_value_t in[1] = {{.type = CATALOG_DTYPE_STRING}};
    in[0].u.bytes = (catalog_bytes_t){(const uint8_t *)"abcd", 4};
    base_arena_t a;
    base_arena_init(&a, 1024);
    catalog_value_t r;
    size_t made = 0;
    /* concat builds 12 bytes, lower 12 more */
    cr_assert_eq(catalog_expr_eval(&v->features[0], in, NOW_US, &a, 24, &made, &r), 0);
    cr_assert_eq(made, 24);
    cr_assert_eq(r.u.i64, 12);
    cr_assert_eq(catalog_expr_eval(&v->features[0], in, NOW_US, &a, 23, &made, &r), -EMSGSIZE);
    cr_assert_eq(catalog_expr_eval(&v->features[0], in, NOW_US, &a, 11, &made, &r), -EMSGSIZE);
    cr_assert_eq(made, 0, "refused before it built anything");
    base_arena_free(&a);
    catalog_unref(c);
}
