/* catalog/expr.c - on-demand feature expressions: parsed, type-checked and compiled at load. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "catalog/expr_int.h"

/*
 * A hand-written recursive-descent parser that emits code as it goes: every term becomes one
 * instruction whose result is the register of the same number, in post-order, so the code is
 * its own register allocation and evaluation is one pass over a flat array (expr_eval.c). Types
 * are checked bottom-up at the same time. A syntax error stops the expression (what follows
 * cannot be trusted); type errors do not: a term with an error gets type INVALID, and terms over
 * it stay quiet, so each mistake is reported once, with its column.
 *
 * Grammar, loosest first:
 *   or      := and ( ("or" | "||") and )*
 *   and     := not ( ("and" | "&&") not )*
 *   not     := ("not" | "!") not | cmp
 *   cmp     := sum ( ("==" | "!=" | "<" | "<=" | ">" | ">=") sum )?
 *   sum     := prod ( ("+" | "-") prod )*
 *   prod    := unary ( ("*" | "/" | "%") unary )*
 *   unary   := "-" unary | postfix
 *   postfix := primary ( "[" or "]" )*
 *   primary := number | string | "true" | "false" | "null" | "(" or ")"
 *            | name "(" args ")" | name ( "." name )?
 */

#define T_INVALID CATALOG_DTYPE_INVALID
#define T_NULL CATALOG_DTYPE_NULL
#define T_BOOL CATALOG_DTYPE_BOOL
#define T_I32 CATALOG_DTYPE_INT32
#define T_I64 CATALOG_DTYPE_INT64
#define T_F32 CATALOG_DTYPE_FLOAT
#define T_F64 CATALOG_DTYPE_DOUBLE
#define T_STR CATALOG_DTYPE_STRING
#define T_BYTES CATALOG_DTYPE_BYTES
#define T_TS CATALOG_DTYPE_UNIX_TIMESTAMP

typedef enum tok_kind {
    TK_END,
    TK_INT,
    TK_FLOAT,
    TK_STRING,
    TK_NAME,
    TK_OP, /* punctuation; text in op[] */
    TK_BAD,
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    size_t col; /* 1-based */
    const char *s;
    size_t len;
    char op[3];
} tok_t;

typedef struct parser {
    base_arena_t *a; /* the catalog's: constants and code */
    const char *text;
    size_t len, pos;
    tok_t t;
    catalog__scope_t *scope;
    catalog__expr_err_fn err;
    void *err_arg;
    bool failed; /* a syntax error: stop */
    bool errors; /* any error */
    bool nomem;
    catalog__ins_t ins[CATALOG__EXPR_MAX_TERMS];
    size_t n_ins;
    uint16_t args[CATALOG__EXPR_MAX_TERMS * 2];
    size_t n_args;
    catalog_value_t consts[CATALOG__EXPR_MAX_TERMS];
    size_t n_consts;
    int depth;
} parser_t;

static void fail_at(parser_t *P, size_t col, const char *fmt, ...) CATALOG__PRINTF(3, 4);

static void fail_at(parser_t *P, size_t col, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->errors = true;
    P->err(P->err_arg, col, msg);
}

static const char *tname(catalog_dtype_t t)
{
    return t == T_NULL ? "null" : catalog_dtype_name(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                      */

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static void next(parser_t *P)
{
    const char *s = P->text;
    size_t i = P->pos;
    while (i < P->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    tok_t t = {.col = i + 1, .s = s + i};
    if (i >= P->len) {
        t.kind = TK_END;
    } else if (name_start(s[i])) {
        size_t j = i;
        while (j < P->len && name_char(s[j]))
            j++;
        t.kind = TK_NAME;
        t.len = j - i;
        i = j;
    } else if ((s[i] >= '0' && s[i] <= '9') ||
               (s[i] == '.' && i + 1 < P->len && s[i + 1] >= '0' && s[i + 1] <= '9')) {
        size_t j = i;
        bool real = false;
        while (j < P->len && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j < P->len && s[j] == '.') {
            real = true;
            j++;
            while (j < P->len && s[j] >= '0' && s[j] <= '9')
                j++;
        }
        if (j < P->len && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < P->len && (s[k] == '+' || s[k] == '-'))
                k++;
            if (k < P->len && s[k] >= '0' && s[k] <= '9') {
                real = true;
                j = k;
                while (j < P->len && s[j] >= '0' && s[j] <= '9')
                    j++;
            }
        }
        t.kind = real ? TK_FLOAT : TK_INT;
        t.len = j - i;
        i = j;
        if (i < P->len && name_char(s[i])) {
            t.kind = TK_BAD;
            t.len = 1;
        }
    } else if (s[i] == '\'' || s[i] == '"') {
        char q = s[i];
        size_t j = i + 1;
        while (j < P->len && s[j] != q) {
            if (s[j] == '\\' && j + 1 < P->len)
                j++;
            j++;
        }
        if (j >= P->len) {
            t.kind = TK_BAD;
            t.len = 0; /* unterminated: reported by the caller */
            i = P->len;
        } else {
            t.kind = TK_STRING;
            t.len = j + 1 - i;
            i = j + 1;
        }
    } else {
        static const char *const two[] = {"==", "!=", "<=", ">=", "&&", "||"};
        t.kind = TK_OP;
        for (size_t k = 0; k < sizeof two / sizeof *two; k++) {
            if (i + 1 < P->len && s[i] == two[k][0] && s[i + 1] == two[k][1]) {
                memcpy(t.op, two[k], 3);
                t.len = 2;
            }
        }
        if (t.len == 0) {
            if (strchr("+-*/%()[],.<>!", s[i]) == NULL) {
                t.kind = TK_BAD;
            } else {
                t.op[0] = s[i];
                t.op[1] = '\0';
            }
            t.len = 1;
        }
        i += t.len;
    }
    P->pos = i;
    P->t = t;
}

static bool is_op(const parser_t *P, const char *op)
{
    return P->t.kind == TK_OP && strcmp(P->t.op, op) == 0;
}

static bool is_word(const parser_t *P, const char *w)
{
    return P->t.kind == TK_NAME && P->t.len == strlen(w) && memcmp(P->t.s, w, P->t.len) == 0;
}

static void syntax(parser_t *P, const char *what)
{
    if (P->failed)
        return;
    P->failed = true;
    const tok_t *t = &P->t;
    if (t->kind == TK_END)
        fail_at(P, t->col, "expected %s, got the end of the expression", what);
    else if (t->kind == TK_BAD && t->len == 0)
        fail_at(P, t->col, "unterminated string");
    else if (t->kind == TK_BAD && ((unsigned char)t->s[0] < 0x20 || (unsigned char)t->s[0] >= 0x7f))
        fail_at(P, t->col, "expected %s, got the byte 0x%02x", what, (unsigned char)t->s[0]);
    else
        fail_at(P, t->col, "expected %s, got '%.*s'", what, (int)(t->len > 40 ? 40 : t->len), t->s);
}

/* ------------------------------------------------------------------------------------------ */
/* Code                                                                                        */

/* Appends one instruction. Returns: its register, or -1 (too many terms: reported once). */
static int emit(parser_t *P, catalog__op_t op, catalog_dtype_t type, size_t col, int a, int b,
                int c)
{
    if (P->n_ins >= CATALOG__EXPR_MAX_TERMS) {
        if (!P->failed)
            fail_at(P, col, "the expression has more than %d terms", CATALOG__EXPR_MAX_TERMS);
        P->failed = true;
        return -1;
    }
    catalog__ins_t *in = &P->ins[P->n_ins];
    *in = (catalog__ins_t){.op = (uint8_t)op,
                           .type = (uint8_t)type,
                           .a = (uint16_t)(a < 0 ? 0 : a),
                           .b = (uint16_t)(b < 0 ? 0 : b),
                           .c = (uint16_t)(c < 0 ? 0 : c)};
    return (int)P->n_ins++;
}

static catalog_dtype_t type_of(const parser_t *P, int r)
{
    return r < 0 ? T_INVALID : (catalog_dtype_t)P->ins[r].type;
}

static bool integral(catalog_dtype_t t)
{
    return t == T_I32 || t == T_I64;
}

static bool numeric(catalog_dtype_t t)
{
    return integral(t) || t == T_F32 || t == T_F64;
}

/* The common type of two branches (if, coalesce, min, max, clamp): equal types, numbers (INT64
 * when both are integral, else DOUBLE), or null with anything. T_INVALID when there is none. */
static catalog_dtype_t unify(catalog_dtype_t a, catalog_dtype_t b)
{
    if (a == T_NULL)
        return b;
    if (b == T_NULL || a == b)
        return a;
    if (numeric(a) && numeric(b))
        return integral(a) && integral(b) ? T_I64 : T_F64;
    return T_INVALID;
}

static int constant(parser_t *P, const catalog_value_t *v, size_t col)
{
    if (P->n_consts >= CATALOG__EXPR_MAX_TERMS)
        return -1;
    P->consts[P->n_consts] = *v;
    int r = emit(P, CATALOG__OP_CONST, v->type, col, 0, 0, 0);
    if (r >= 0)
        P->ins[r].imm = (uint32_t)P->n_consts++;
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                       */

static int find_input(parser_t *P, const catalog_input_t *want)
{
    catalog__scope_t *S = P->scope;
    for (size_t i = 0; i < S->n_inputs; i++) {
        const catalog_input_t *in = &S->inputs[i];
        if (in->kind == want->kind && in->view == want->view && in->feature == want->feature &&
            in->source == want->source && in->field == want->field)
            return (int)i;
    }
    if (S->n_inputs >= CATALOG__EXPR_MAX_INPUTS) {
        return -E2BIG;
    }
    if (base_arena_grow(S->scratch, (void **)&S->inputs, &S->cap_inputs, S->n_inputs + 1,
                        sizeof *S->inputs) != 0) {
        P->nomem = true;
        return -ENOMEM;
    }
    S->inputs[S->n_inputs] = *want;
    return (int)S->n_inputs++;
}

static int load_input(parser_t *P, const catalog_input_t *in, catalog_dtype_t type, size_t col)
{
    int i = find_input(P, in);
    if (i == -E2BIG) {
        fail_at(P, col, "an on-demand feature view reads at most %d inputs",
                CATALOG__EXPR_MAX_INPUTS);
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, col, 0, 0, 0);
    }
    if (i < 0)
        return -1;
    int r = emit(P, CATALOG__OP_INPUT, type, col, 0, 0, 0);
    if (r >= 0)
        P->ins[r].imm = (uint32_t)i;
    return r;
}

static const catalog__scope_src_t *find_src(const catalog__scope_t *S, const char *s, size_t len)
{
    for (size_t i = 0; i < S->n_srcs; i++) {
        if (strlen(S->srcs[i].name) == len && memcmp(S->srcs[i].name, s, len) == 0)
            return &S->srcs[i];
    }
    return NULL;
}

/* A field of a source by name: a feature of a view or a field of a request source. */
static bool src_field(const catalog__scope_src_t *src, const char *s, size_t len,
                      catalog_input_t *out, catalog_dtype_t *type)
{
    if (src->view != NULL) {
        for (size_t i = 0; i < src->view->n_features; i++) {
            const catalog_feature_t *f = &src->view->features[i];
            if (f->name != NULL && strlen(f->name) == len && memcmp(f->name, s, len) == 0) {
                *out = (catalog_input_t){
                    .kind = CATALOG_INPUT_FEATURE, .view = src->view, .feature = f};
                *type = f->dtype;
                return true;
            }
        }
        return false;
    }
    for (size_t i = 0; i < src->req->n_fields; i++) {
        const catalog_request_field_t *fl = &src->req->fields[i];
        if (fl->name != NULL && strlen(fl->name) == len && memcmp(fl->name, s, len) == 0) {
            *out =
                (catalog_input_t){.kind = CATALOG_INPUT_REQUEST, .source = src->req, .field = fl};
            *type = fl->dtype;
            return true;
        }
    }
    return false;
}

/* "(did you mean 'x'?)" over the sources' fields (of one source, or all). */
static void suggest_field(parser_t *P, const catalog__scope_src_t *only, const char *name,
                          char *buf, size_t cap)
{
    const char *cands[256];
    size_t n = 0;
    const catalog__scope_t *S = P->scope;
    for (size_t i = 0; i < S->n_srcs && n < 256; i++) {
        const catalog__scope_src_t *src = &S->srcs[i];
        if (only != NULL && src != only)
            continue;
        if (src->view != NULL) {
            for (size_t f = 0; f < src->view->n_features && n < 256; f++) {
                if (src->view->features[f].name != NULL)
                    cands[n++] = src->view->features[f].name;
            }
        } else {
            for (size_t f = 0; f < src->req->n_fields && n < 256; f++) {
                if (src->req->fields[f].name != NULL)
                    cands[n++] = src->req->fields[f].name;
            }
        }
    }
    catalog__suggest(name, cands, n, buf, cap);
}

/* `source.field` or a bare `field` that one source alone has. */
static int name_ref(parser_t *P, const tok_t *first)
{
    const catalog__scope_t *S = P->scope;
    char name[CATALOG_MAX_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)first->len, first->s);
    catalog_input_t in;
    catalog_dtype_t type = T_INVALID;
    if (is_op(P, ".")) {
        next(P);
        if (P->t.kind != TK_NAME) {
            syntax(P, "a feature or field name after '.'");
            return -1;
        }
        tok_t second = P->t;
        next(P);
        const catalog__scope_src_t *src = find_src(S, first->s, first->len);
        char field[CATALOG_MAX_NAME + 1];
        snprintf(field, sizeof field, "%.*s", (int)second.len, second.s);
        if (src == NULL) {
            const char *cands[64];
            size_t n = 0;
            for (size_t i = 0; i < S->n_srcs && n < 64; i++)
                cands[n++] = S->srcs[i].name;
            char hint[160];
            catalog__suggest(name, cands, n, hint, sizeof hint);
            fail_at(P, first->col, "'%s' is not a source of this view%s", name, hint);
            return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, first->col, 0, 0, 0);
        }
        if (!src_field(src, second.s, second.len, &in, &type)) {
            char hint[160];
            suggest_field(P, src, field, hint, sizeof hint);
            fail_at(P, second.col, "%s '%s' has no %s '%s'%s",
                    src->view != NULL ? "feature view" : "request source", name,
                    src->view != NULL ? "feature" : "field", field, hint);
            return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, first->col, 0, 0, 0);
        }
        return load_input(P, &in, type, first->col);
    }
    const catalog__scope_src_t *found = NULL;
    for (size_t i = 0; i < S->n_srcs; i++) {
        catalog_input_t cand;
        catalog_dtype_t ct;
        if (!src_field(&S->srcs[i], first->s, first->len, &cand, &ct))
            continue;
        if (found != NULL) {
            fail_at(P, first->col, "'%s' is in both '%s' and '%s': write %s.%s or %s.%s", name,
                    found->name, S->srcs[i].name, found->name, name, S->srcs[i].name, name);
            return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, first->col, 0, 0, 0);
        }
        found = &S->srcs[i];
        in = cand;
        type = ct;
    }
    if (found == NULL) {
        char hint[160];
        suggest_field(P, NULL, name, hint, sizeof hint);
        fail_at(P, first->col, "unknown name '%s': no source of this view has it%s", name, hint);
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, first->col, 0, 0, 0);
    }
    return load_input(P, &in, type, first->col);
}

/* ------------------------------------------------------------------------------------------ */
/* Functions                                                                                   */

typedef enum fn_kind {
    F_IS_NULL,
    F_COALESCE,
    F_IF,
    F_ABS,
    F_SQRT,
    F_LOG,
    F_EXP,
    F_POW,
    F_MIN,
    F_MAX,
    F_CLAMP,
    F_ROUND,
    F_FLOOR,
    F_CEIL,
    F_INT32,
    F_INT64,
    F_FLOAT,
    F_DOUBLE,
    F_LENGTH,
    F_LOWER,
    F_UPPER,
    F_CONCAT,
    F_CONTAINS,
    F_STARTS_WITH,
    F_ENDS_WITH,
    F_LEN,
    F_SUM,
    F_MEAN,
    F_GET,
    F_NOW,
    F_EVENT_TIME,
    F_AGE,
} fn_kind_t;

typedef struct fn_def {
    const char *name;
    fn_kind_t kind;
    int min_args, max_args; /* max -1: any number */
} fn_def_t;

static const fn_def_t fns[] = {
    {"is_null", F_IS_NULL, 1, 1},
    {"coalesce", F_COALESCE, 1, -1},
    {"if", F_IF, 3, 3},
    {"abs", F_ABS, 1, 1},
    {"sqrt", F_SQRT, 1, 1},
    {"log", F_LOG, 1, 1},
    {"exp", F_EXP, 1, 1},
    {"pow", F_POW, 2, 2},
    {"min", F_MIN, 1, -1},
    {"max", F_MAX, 1, -1},
    {"clamp", F_CLAMP, 3, 3},
    {"round", F_ROUND, 1, 2},
    {"floor", F_FLOOR, 1, 1},
    {"ceil", F_CEIL, 1, 1},
    {"int32", F_INT32, 1, 1},
    {"int64", F_INT64, 1, 1},
    {"float", F_FLOAT, 1, 1},
    {"double", F_DOUBLE, 1, 1},
    {"length", F_LENGTH, 1, 1},
    {"lower", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},
    {"concat", F_CONCAT, 1, -1},
    {"contains", F_CONTAINS, 2, 2},
    {"starts_with", F_STARTS_WITH, 2, 2},
    {"ends_with", F_ENDS_WITH, 2, 2},
    {"len", F_LEN, 1, 1},
    {"sum", F_SUM, 1, 1},
    {"mean", F_MEAN, 1, 1},
    {"get", F_GET, 3, 3},
    {"now", F_NOW, 0, 0},
    {"event_time", F_EVENT_TIME, 1, 1},
    {"age", F_AGE, 1, 1},
};

#define N_FNS (sizeof fns / sizeof *fns)

static int parse_or(parser_t *P);

/* Checks one function call's argument types; returns the result type (T_INVALID after an
 * error, which is reported here) and the opcode. */
static catalog_dtype_t type_call(parser_t *P, const fn_def_t *fn, const int *args, size_t n,
                                 const size_t *cols, size_t col, catalog__op_t *op)
{
    catalog_dtype_t t[CATALOG__EXPR_MAX_ARGS] = {CATALOG_DTYPE_INVALID};
    for (size_t i = 0; i < n; i++) {
        t[i] = type_of(P, args[i]);
        if (t[i] == T_INVALID)
            return T_INVALID; /* reported where it happened */
    }
#define WANT(cond, i, what)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail_at(P, cols[i], "%s(): argument %zu must be %s, not %s", fn->name,                 \
                    (size_t)(i) + 1, what, tname(t[i]));                                           \
            return T_INVALID;                                                                      \
        }                                                                                          \
    } while (0)
    switch (fn->kind) {
    case F_IS_NULL:
        *op = CATALOG__OP_IS_NULL;
        return T_BOOL;
    case F_COALESCE:
    case F_IF: {
        size_t from = fn->kind == F_IF ? 1 : 0;
        if (fn->kind == F_IF)
            WANT(t[0] == T_BOOL || t[0] == T_NULL, 0, "BOOL");
        catalog_dtype_t u = T_NULL;
        for (size_t i = from; i < n; i++) {
            catalog_dtype_t v = unify(u, t[i]);
            if (v == T_INVALID) {
                fail_at(P, cols[i], "%s(): argument %zu is %s, which does not mix with %s",
                        fn->name, i + 1, tname(t[i]), tname(u));
                return T_INVALID;
            }
            u = v;
        }
        *op = fn->kind == F_IF ? CATALOG__OP_IF : CATALOG__OP_COALESCE;
        return u;
    }
    case F_ABS:
        WANT(numeric(t[0]), 0, "a number");
        *op = CATALOG__OP_ABS;
        return integral(t[0]) ? T_I64 : T_F64;
    case F_SQRT:
    case F_LOG:
    case F_EXP:
    case F_FLOOR:
    case F_CEIL:
        WANT(numeric(t[0]), 0, "a number");
        *op = fn->kind == F_SQRT    ? CATALOG__OP_SQRT
              : fn->kind == F_LOG   ? CATALOG__OP_LOG
              : fn->kind == F_EXP   ? CATALOG__OP_EXP
              : fn->kind == F_FLOOR ? CATALOG__OP_FLOOR
                                    : CATALOG__OP_CEIL;
        return T_F64;
    case F_POW:
        WANT(numeric(t[0]), 0, "a number");
        WANT(numeric(t[1]), 1, "a number");
        *op = CATALOG__OP_POW;
        return T_F64;
    case F_ROUND:
        WANT(numeric(t[0]), 0, "a number");
        if (n == 2)
            WANT(integral(t[1]), 1, "an integer (the digits)");
        *op = CATALOG__OP_ROUND;
        return T_F64;
    case F_MIN:
    case F_MAX:
        if (n == 1) {
            WANT(catalog_dtype_is_list(t[0]) &&
                     (numeric(catalog_dtype_element(t[0])) || catalog_dtype_element(t[0]) == T_TS),
                 0, "a list of numbers or times (or give two or more numbers)");
            *op = fn->kind == F_MIN ? CATALOG__OP_LIST_MIN : CATALOG__OP_LIST_MAX;
            catalog_dtype_t e = catalog_dtype_element(t[0]);
            return e == T_TS ? T_TS : integral(e) ? T_I64 : T_F64;
        }
        __attribute__((fallthrough)); /* min(a, b, ...): numbers, as clamp's */
    case F_CLAMP: {
        catalog_dtype_t u = T_NULL;
        for (size_t i = 0; i < n; i++) {
            WANT(numeric(t[i]) || t[i] == T_TS || t[i] == T_NULL, i, "a number or a time");
            catalog_dtype_t v = unify(u, t[i]);
            if (v == T_INVALID) {
                fail_at(P, cols[i], "%s(): argument %zu is %s, which does not mix with %s",
                        fn->name, i + 1, tname(t[i]), tname(u));
                return T_INVALID;
            }
            u = v;
        }
        *op = fn->kind == F_MIN   ? CATALOG__OP_MIN
              : fn->kind == F_MAX ? CATALOG__OP_MAX
                                  : CATALOG__OP_CLAMP;
        return u == T_NULL ? T_F64 : u;
    }
    case F_INT32:
    case F_INT64:
    case F_FLOAT:
    case F_DOUBLE:
        WANT(numeric(t[0]) || t[0] == T_BOOL || t[0] == T_TS || t[0] == T_NULL, 0,
             "a number, a BOOL or a time");
        if (t[0] == T_TS && (fn->kind == F_FLOAT || fn->kind == F_INT32))
            WANT(false, 0, "a number or a BOOL (times cast to int64 or double)");
        *op = CATALOG__OP_CAST;
        return fn->kind == F_INT32   ? T_I32
               : fn->kind == F_INT64 ? T_I64
               : fn->kind == F_FLOAT ? T_F32
                                     : T_F64;
    case F_LENGTH:
        WANT(t[0] == T_STR || t[0] == T_BYTES, 0, "a STRING or BYTES");
        *op = CATALOG__OP_LENGTH;
        return T_I64;
    case F_LOWER:
    case F_UPPER:
        WANT(t[0] == T_STR, 0, "a STRING");
        *op = fn->kind == F_LOWER ? CATALOG__OP_LOWER : CATALOG__OP_UPPER;
        return T_STR;
    case F_CONCAT:
        for (size_t i = 0; i < n; i++)
            WANT(t[i] == T_STR || t[i] == T_NULL, i, "a STRING");
        *op = CATALOG__OP_CONCAT;
        return T_STR;
    case F_CONTAINS:
    case F_STARTS_WITH:
    case F_ENDS_WITH:
        WANT(t[0] == T_STR || t[0] == T_BYTES, 0, "a STRING or BYTES");
        WANT(t[1] == t[0], 1, t[0] == T_STR ? "a STRING" : "BYTES");
        *op = fn->kind == F_CONTAINS      ? CATALOG__OP_CONTAINS
              : fn->kind == F_STARTS_WITH ? CATALOG__OP_STARTS_WITH
                                          : CATALOG__OP_ENDS_WITH;
        return T_BOOL;
    case F_LEN:
        WANT(catalog_dtype_is_list(t[0]), 0, "a list");
        *op = CATALOG__OP_LIST_LEN;
        return T_I64;
    case F_SUM:
    case F_MEAN:
        WANT(catalog_dtype_is_list(t[0]) && numeric(catalog_dtype_element(t[0])), 0,
             "a list of numbers");
        *op = fn->kind == F_SUM ? CATALOG__OP_LIST_SUM : CATALOG__OP_LIST_MEAN;
        return fn->kind == F_SUM && integral(catalog_dtype_element(t[0])) ? T_I64 : T_F64;
    case F_GET: {
        WANT(catalog_dtype_is_list(t[0]), 0, "a list");
        WANT(integral(t[1]), 1, "an integer (the index)");
        catalog_dtype_t e = catalog_dtype_element(t[0]);
        catalog_dtype_t u = unify(e, t[2]);
        if (u == T_INVALID) {
            fail_at(P, cols[2], "get(): the default is %s, which does not mix with the items' %s",
                    tname(t[2]), tname(e));
            return T_INVALID;
        }
        *op = CATALOG__OP_INDEX;
        return u;
    }
    case F_NOW:
        *op = CATALOG__OP_NOW;
        return T_TS;
    case F_AGE:
        WANT(t[0] == T_TS, 0, "a time (UNIX_TIMESTAMP)");
        *op = CATALOG__OP_AGE;
        return T_I64;
    case F_EVENT_TIME:
        break; /* parsed apart: its argument is a source's name */
    }
#undef WANT
    (void)col;
    return T_INVALID;
}

static int call(parser_t *P, const tok_t *name)
{
    const fn_def_t *fn = NULL;
    for (size_t i = 0; i < N_FNS && fn == NULL; i++) {
        if (strlen(fns[i].name) == name->len && memcmp(fns[i].name, name->s, name->len) == 0)
            fn = &fns[i];
    }
    char nm[CATALOG_MAX_NAME + 1];
    snprintf(nm, sizeof nm, "%.*s", (int)name->len, name->s);
    next(P); /* ( */
    if (fn != NULL && fn->kind == F_EVENT_TIME) {
        if (P->t.kind != TK_NAME) {
            syntax(P, "the name of a feature view source");
            return -1;
        }
        tok_t arg = P->t;
        next(P);
        if (!is_op(P, ")")) {
            syntax(P, "')'");
            return -1;
        }
        next(P);
        const catalog__scope_src_t *src = find_src(P->scope, arg.s, arg.len);
        if (src == NULL || src->view == NULL) {
            fail_at(P, arg.col, "event_time(): '%.*s' is not a feature view source of this view",
                    (int)arg.len, arg.s);
            return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, name->col, 0, 0, 0);
        }
        catalog_input_t in = {.kind = CATALOG_INPUT_EVENT_TIME, .view = src->view};
        return load_input(P, &in, T_TS, name->col);
    }
    int args[CATALOG__EXPR_MAX_ARGS];
    size_t cols[CATALOG__EXPR_MAX_ARGS];
    size_t n = 0;
    if (!is_op(P, ")")) {
        for (;;) {
            if (n >= CATALOG__EXPR_MAX_ARGS) {
                fail_at(P, P->t.col, "%s(): more than %d arguments", nm, CATALOG__EXPR_MAX_ARGS);
                P->failed = true;
                return -1;
            }
            cols[n] = P->t.col;
            args[n] = parse_or(P);
            if (P->failed)
                return -1;
            n++;
            if (is_op(P, ")"))
                break;
            if (!is_op(P, ",")) {
                syntax(P, "',' or ')'");
                return -1;
            }
            next(P);
        }
    }
    next(P); /* ) */
    if (fn == NULL) {
        const char *names[N_FNS];
        for (size_t i = 0; i < N_FNS; i++)
            names[i] = fns[i].name;
        char hint[160];
        catalog__suggest(nm, names, N_FNS, hint, sizeof hint);
        fail_at(P, name->col, "unknown function '%s'%s", nm, hint);
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, name->col, 0, 0, 0);
    }
    if ((int)n < fn->min_args || (fn->max_args >= 0 && (int)n > fn->max_args)) {
        if (fn->max_args < 0)
            fail_at(P, name->col, "%s() takes at least %d argument%s, not %zu", fn->name,
                    fn->min_args, fn->min_args == 1 ? "" : "s", n);
        else if (fn->min_args == fn->max_args)
            fail_at(P, name->col, "%s() takes %d argument%s, not %zu", fn->name, fn->min_args,
                    fn->min_args == 1 ? "" : "s", n);
        else
            fail_at(P, name->col, "%s() takes %d to %d arguments, not %zu", fn->name, fn->min_args,
                    fn->max_args, n);
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, name->col, 0, 0, 0);
    }
    catalog__op_t op = CATALOG__OP_CONST_NULL;
    catalog_dtype_t t = type_call(P, fn, args, n, cols, name->col, &op);
    if (t == T_INVALID)
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, name->col, 0, 0, 0);
    if (P->n_args + n > sizeof P->args / sizeof *P->args) {
        fail_at(P, name->col, "the expression has too many arguments");
        P->failed = true;
        return -1;
    }
    int r =
        emit(P, op, t, name->col, n > 0 ? args[0] : 0, n > 1 ? args[1] : 0, n > 2 ? args[2] : 0);
    if (r < 0)
        return -1;
    P->ins[r].imm = (uint32_t)P->n_args;
    P->ins[r].n = (uint16_t)n;
    for (size_t i = 0; i < n; i++)
        P->args[P->n_args++] = (uint16_t)args[i];
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Terms                                                                                       */

static int string_lit(parser_t *P)
{
    const tok_t *t = &P->t;
    char *buf = base_arena_alloc(P->a, t->len);
    if (buf == NULL) {
        P->nomem = true;
        return -1;
    }
    size_t n = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        char c = t->s[i];
        if (c == '\\') {
            char e = t->s[++i];
            if (strchr("ntr\\'\"", e) == NULL) {
                fail_at(P, t->col + i - 1,
                        "unknown escape '\\%c' (the escapes are \\n \\t \\r \\\\ \\' \\\")",
                        (e >= 0x20 && e < 0x7f) ? e : '?');
                next(P);
                return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, t->col, 0, 0, 0);
            }
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
        buf[n++] = c;
    }
    if (!base_utf8_valid((const uint8_t *)buf, n)) {
        fail_at(P, t->col, "a string that is not valid UTF-8");
        next(P);
        return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, t->col, 0, 0, 0);
    }
    catalog_value_t v = {.type = T_STR};
    v.u.bytes = (catalog_bytes_t){(const uint8_t *)buf, n};
    size_t col = t->col;
    next(P);
    return constant(P, &v, col);
}

static int primary(parser_t *P)
{
    tok_t t = P->t;
    if (t.kind == TK_INT || t.kind == TK_FLOAT) {
        catalog_value_t v = {0};
        int rc;
        if (t.kind == TK_INT) {
            v.type = T_I64;
            rc = base_parse_int(t.s, t.len, &v.u.i64);
        } else {
            v.type = T_F64;
            rc = base_parse_double(t.s, t.len, &v.u.f64);
        }
        next(P);
        if (rc != 0) {
            fail_at(P, t.col, "number '%.*s' is out of range", (int)(t.len > 40 ? 40 : t.len), t.s);
            return emit(P, CATALOG__OP_CONST_NULL, T_INVALID, t.col, 0, 0, 0);
        }
        return constant(P, &v, t.col);
    }
    if (t.kind == TK_STRING)
        return string_lit(P);
    if (is_op(P, "(")) {
        next(P);
        int r = parse_or(P);
        if (P->failed)
            return -1;
        if (!is_op(P, ")")) {
            syntax(P, "')'");
            return -1;
        }
        next(P);
        return r;
    }
    if (t.kind == TK_NAME) {
        if (is_word(P, "true") || is_word(P, "false")) {
            catalog_value_t v = {.type = T_BOOL};
            v.u.b = is_word(P, "true");
            next(P);
            return constant(P, &v, t.col);
        }
        if (is_word(P, "null")) {
            next(P);
            return emit(P, CATALOG__OP_CONST_NULL, T_NULL, t.col, 0, 0, 0);
        }
        static const char *const reserved[] = {"and", "or", "not"};
        for (size_t i = 0; i < 3; i++) {
            if (is_word(P, reserved[i])) {
                syntax(P, "a value");
                return -1;
            }
        }
        next(P);
        if (is_op(P, "("))
            return call(P, &t);
        return name_ref(P, &t);
    }
    syntax(P, "a value");
    return -1;
}

static int postfix(parser_t *P)
{
    int r = primary(P);
    while (!P->failed && is_op(P, "[")) {
        size_t col = P->t.col;
        next(P);
        size_t icol = P->t.col;
        int ix = parse_or(P);
        if (P->failed)
            return -1;
        if (!is_op(P, "]")) {
            syntax(P, "']'");
            return -1;
        }
        next(P);
        catalog_dtype_t lt = type_of(P, r), it = type_of(P, ix);
        if (lt == T_INVALID || it == T_INVALID) {
            r = emit(P, CATALOG__OP_CONST_NULL, T_INVALID, col, 0, 0, 0);
            continue;
        }
        if (!catalog_dtype_is_list(lt)) {
            fail_at(P, col, "only lists can be indexed, not %s", tname(lt));
            r = emit(P, CATALOG__OP_CONST_NULL, T_INVALID, col, 0, 0, 0);
            continue;
        }
        if (!integral(it)) {
            fail_at(P, icol, "a list index must be an integer, not %s", tname(it));
            r = emit(P, CATALOG__OP_CONST_NULL, T_INVALID, col, 0, 0, 0);
            continue;
        }
        /* l[i] is get(l, i, null) */
        int nul = emit(P, CATALOG__OP_CONST_NULL, T_NULL, col, 0, 0, 0);
        int g = emit(P, CATALOG__OP_INDEX, catalog_dtype_element(lt), col, r, ix, nul);
        if (g >= 0) {
            P->ins[g].imm = (uint32_t)P->n_args;
            P->ins[g].n = 3;
            if (P->n_args + 3 <= sizeof P->args / sizeof *P->args) {
                P->args[P->n_args++] = (uint16_t)r;
                P->args[P->n_args++] = (uint16_t)ix;
                P->args[P->n_args++] = (uint16_t)nul;
            }
        }
        r = g;
    }
    return r;
}

static int unary(parser_t *P)
{
    int r;
    if (is_op(P, "-")) {
        /* A chain of minus signs nests as parentheses do. */
        if (++P->depth > CATALOG__EXPR_MAX_DEPTH) {
            if (!P->failed)
                fail_at(P, P->t.col, "the expression nests deeper than %d",
                        CATALOG__EXPR_MAX_DEPTH);
            P->failed = true;
            return -1;
        }
        size_t col = P->t.col;
        next(P);
        int x = unary(P);
        if (P->failed)
            return -1;
        catalog_dtype_t t = type_of(P, x);
        if (t != T_INVALID && !numeric(t)) {
            fail_at(P, col, "'-' needs a number, not %s", tname(t));
            t = T_INVALID;
        }
        r = emit(P, t == T_INVALID ? CATALOG__OP_CONST_NULL : CATALOG__OP_NEG,
                 t == T_INVALID ? T_INVALID
                 : integral(t)  ? T_I64
                                : T_F64,
                 col, x, 0, 0);
        P->depth--;
    } else {
        r = postfix(P);
    }
    return r;
}

/* Binary arithmetic's result type, or T_INVALID after reporting the mismatch. */
static catalog_dtype_t arith_type(parser_t *P, const char *op, catalog_dtype_t a, catalog_dtype_t b,
                                  size_t col)
{
    if (a == T_INVALID || b == T_INVALID)
        return T_INVALID;
    if (numeric(a) && numeric(b)) {
        if (op[0] == '/')
            return T_F64;
        return integral(a) && integral(b) ? T_I64 : T_F64;
    }
    if (a == T_TS && b == T_TS && op[0] == '-')
        return T_I64; /* seconds between two times */
    if (a == T_TS && integral(b) && (op[0] == '+' || op[0] == '-'))
        return T_TS;
    if (integral(a) && b == T_TS && op[0] == '+')
        return T_TS;
    fail_at(P, col, "'%s' does not apply to %s and %s%s", op, tname(a), tname(b),
            a == T_STR && b == T_STR && op[0] == '+' ? " (use concat())" : "");
    return T_INVALID;
}

/* One level of left-associative arithmetic: operands from next_level, operators from ops. */
static int arith_level(parser_t *P, int (*next_level)(parser_t *), const char *ops)
{
    int l = next_level(P);
    while (!P->failed && P->t.kind == TK_OP && P->t.op[1] == '\0' &&
           strchr(ops, P->t.op[0]) != NULL) {
        char op[3];
        memcpy(op, P->t.op, 3);
        size_t col = P->t.col;
        next(P);
        int r = next_level(P);
        if (P->failed)
            return -1;
        catalog_dtype_t t = arith_type(P, op, type_of(P, l), type_of(P, r), col);
        catalog__op_t code = op[0] == '*'   ? CATALOG__OP_MUL
                             : op[0] == '/' ? CATALOG__OP_DIV
                             : op[0] == '%' ? CATALOG__OP_MOD
                             : op[0] == '+' ? CATALOG__OP_ADD
                                            : CATALOG__OP_SUB;
        l = emit(P, t == T_INVALID ? CATALOG__OP_CONST_NULL : code, t, col, l, r, 0);
    }
    return l;
}

static int prod(parser_t *P)
{
    return arith_level(P, unary, "*/%");
}

static int sum(parser_t *P)
{
    return arith_level(P, prod, "+-");
}

static int cmp(parser_t *P)
{
    int l = sum(P);
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const catalog__op_t codes[] = {CATALOG__OP_EQ, CATALOG__OP_NE, CATALOG__OP_LT,
                                          CATALOG__OP_LE, CATALOG__OP_GT, CATALOG__OP_GE};
    for (size_t k = 0; k < 6 && !P->failed; k++) {
        if (!is_op(P, ops[k]))
            continue;
        size_t col = P->t.col;
        next(P);
        int r = sum(P);
        if (P->failed)
            return -1;
        catalog_dtype_t a = type_of(P, l), b = type_of(P, r);
        bool ok = a == T_INVALID || b == T_INVALID || (numeric(a) && numeric(b)) ||
                  (a == b && (a == T_STR || a == T_BYTES || a == T_TS || (a == T_BOOL && k < 2)));
        if (!ok) {
            fail_at(P, col, "'%s' does not compare %s with %s%s", ops[k], tname(a), tname(b),
                    a == T_NULL || b == T_NULL ? " (use is_null())" : "");
        }
        bool bad = !ok || a == T_INVALID || b == T_INVALID;
        l = emit(P, bad ? CATALOG__OP_CONST_NULL : codes[k], bad ? T_INVALID : T_BOOL, col, l, r,
                 0);
        for (size_t j = 0; j < 6; j++) {
            if (is_op(P, ops[j])) {
                fail_at(P, P->t.col, "comparisons do not chain: use and");
                P->failed = true;
                return -1;
            }
        }
        break;
    }
    return l;
}

static int logic_operand(parser_t *P, int r, const char *op, size_t col)
{
    catalog_dtype_t t = type_of(P, r);
    if (t != T_INVALID && t != T_BOOL && t != T_NULL) {
        fail_at(P, col, "'%s' needs BOOL operands, not %s", op, tname(t));
        return -1;
    }
    return t == T_INVALID ? -1 : 0;
}

static int not_(parser_t *P)
{
    if (is_word(P, "not") || is_op(P, "!")) {
        size_t col = P->t.col;
        if (++P->depth > CATALOG__EXPR_MAX_DEPTH) {
            if (!P->failed)
                fail_at(P, col, "the expression nests deeper than %d", CATALOG__EXPR_MAX_DEPTH);
            P->failed = true;
            return -1;
        }
        next(P);
        size_t xcol = P->t.col;
        int x = not_(P);
        P->depth--;
        if (P->failed)
            return -1;
        bool bad = logic_operand(P, x, "not", xcol) < 0;
        return emit(P, bad ? CATALOG__OP_CONST_NULL : CATALOG__OP_NOT, bad ? T_INVALID : T_BOOL,
                    col, x, 0, 0);
    }
    return cmp(P);
}

static int and_(parser_t *P)
{
    size_t lcol = P->t.col;
    int l = not_(P);
    while (!P->failed && (is_word(P, "and") || is_op(P, "&&"))) {
        size_t col = P->t.col;
        next(P);
        size_t rcol = P->t.col;
        int r = not_(P);
        if (P->failed)
            return -1;
        bool bad = logic_operand(P, l, "and", lcol) < 0;
        bad = (logic_operand(P, r, "and", rcol) < 0) || bad;
        l = emit(P, bad ? CATALOG__OP_CONST_NULL : CATALOG__OP_AND, bad ? T_INVALID : T_BOOL, col,
                 l, r, 0);
    }
    return l;
}

static int parse_or(parser_t *P)
{
    if (++P->depth > CATALOG__EXPR_MAX_DEPTH) {
        if (!P->failed)
            fail_at(P, P->t.col, "the expression nests deeper than %d", CATALOG__EXPR_MAX_DEPTH);
        P->failed = true;
        return -1;
    }
    size_t lcol = P->t.col;
    int l = and_(P);
    while (!P->failed && (is_word(P, "or") || is_op(P, "||"))) {
        size_t col = P->t.col;
        next(P);
        size_t rcol = P->t.col;
        int r = and_(P);
        if (P->failed)
            return -1;
        bool bad = logic_operand(P, l, "or", lcol) < 0;
        bad = (logic_operand(P, r, "or", rcol) < 0) || bad;
        l = emit(P, bad ? CATALOG__OP_CONST_NULL : CATALOG__OP_OR, bad ? T_INVALID : T_BOOL, col, l,
                 r, 0);
    }
    P->depth--;
    return l;
}

/* ------------------------------------------------------------------------------------------ */
/* The whole expression                                                                        */

static bool catalog__expr_assignable(catalog_dtype_t from, catalog_dtype_t to)
{
    if (from == to || from == T_NULL)
        return true;
    if (to == T_I64)
        return from == T_I32;
    if (to == T_F64)
        return from == T_F32 || from == T_I32 || from == T_I64;
    return false;
}

static const char *cast_hint(catalog_dtype_t from, catalog_dtype_t to)
{
    if (!numeric(from) || !numeric(to))
        return "";
    switch (to) {
    case T_I32:
        return " (narrow it with int32())";
    case T_I64:
        return " (convert it with int64())";
    case T_F32:
        return " (narrow it with float())";
    default:
        return "";
    }
}

int catalog__expr_compile(base_arena_t *a, const char *text, catalog__scope_t *scope,
                          catalog_dtype_t want, catalog__expr_err_fn err, void *err_arg,
                          const catalog_expr_t **out)
{
    parser_t *P = calloc(1, sizeof *P);
    if (P == NULL)
        return -ENOMEM;
    P->a = a;
    P->text = text;
    P->len = strlen(text);
    P->scope = scope;
    P->err = err;
    P->err_arg = err_arg;
    int rc = 0;
    if (P->len > CATALOG__EXPR_MAX_LEN) {
        fail_at(P, 1, "the expression is longer than %d characters", CATALOG__EXPR_MAX_LEN);
        rc = -EINVAL;
        goto out;
    }
    next(P);
    if (P->t.kind == TK_END) {
        fail_at(P, 1, "the expression is empty");
        rc = -EINVAL;
        goto out;
    }
    int r = parse_or(P);
    if (!P->failed && P->t.kind != TK_END)
        syntax(P, "an operator or the end of the expression");
    if (P->nomem) {
        rc = -ENOMEM;
        goto out;
    }
    if (P->errors || r < 0) {
        rc = -EINVAL;
        goto out;
    }
    catalog_dtype_t t = type_of(P, r);
    if (!catalog__expr_assignable(t, want)) {
        fail_at(P, 1, "the expression is %s but the feature is %s%s", tname(t), tname(want),
                cast_hint(t, want));
        rc = -EINVAL;
        goto out;
    }
    /* The result register is the last instruction's (post-order). */
    catalog_expr_t *e = base_arena_calloc(a, 1, sizeof *e);
    catalog__ins_t *ins = base_arena_array(a, P->n_ins, sizeof *ins);
    uint16_t *args = base_arena_array(a, P->n_args == 0 ? 1 : P->n_args, sizeof *args);
    catalog_value_t *consts =
        base_arena_array(a, P->n_consts == 0 ? 1 : P->n_consts, sizeof *consts);
    /* The inputs it reads: marked in one pass over the code, then listed ascending. */
    bool read[CATALOG__EXPR_MAX_INPUTS] = {false}; /* find_input() keeps inputs under it */
    size_t n_uses = 0;
    for (size_t k = 0; k < P->n_ins; k++) {
        if (P->ins[k].op == CATALOG__OP_INPUT && !read[P->ins[k].imm]) {
            read[P->ins[k].imm] = true;
            n_uses++;
        }
    }
    uint32_t *uses = base_arena_array(a, n_uses == 0 ? 1 : n_uses, sizeof *uses);
    if (e == NULL || ins == NULL || args == NULL || consts == NULL || uses == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(ins, P->ins, P->n_ins * sizeof *ins);
    memcpy(args, P->args, P->n_args * sizeof *args);
    memcpy(consts, P->consts, P->n_consts * sizeof *consts);
    n_uses = 0;
    for (size_t i = 0; i < scope->n_inputs; i++) {
        if (read[i])
            uses[n_uses++] = (uint32_t)i;
    }
    e->ins = ins;
    e->n_ins = P->n_ins;
    e->args = args;
    e->consts = consts;
    e->uses = uses;
    e->n_uses = n_uses;
    e->type = t;
    e->want = want;
    *out = e;
out:
    free(P);
    return rc;
}

void catalog_expr_inputs(const catalog_feature_t *f, const uint32_t **idx, size_t *n)
{
    *idx = f->expr->uses;
    *n = f->expr->n_uses;
}
