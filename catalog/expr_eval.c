/* catalog/expr_eval.c - evaluates a compiled on-demand expression over one row of inputs. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"
#include "catalog/expr_int.h"

/*
 * One pass over the instructions, each writing the register of its own number: no tree, no
 * recursion, no allocation but the bytes of strings that lower/upper/concat build. Every term
 * is evaluated (there are no side effects to skip), and every fault becomes a null: overflow
 * of INT64 arithmetic, division or modulo by zero, a square root or logarithm out of its
 * domain, a result that is NaN or infinite while its inputs were finite, a cast out of range, an
 * index past the end. A NaN or infinity read from the store passes through arithmetic as IEEE
 * says, since it is data, not a fault.
 */

typedef catalog_value_t val_t;

static const val_t null_val = {.type = CATALOG_DTYPE_NULL};

static bool is_null(const val_t *v)
{
    return v->type == CATALOG_DTYPE_NULL;
}

static int64_t as_i64(const val_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_INT32:
        return v->u.i32;
    case CATALOG_DTYPE_BOOL:
        return v->u.b;
    default:
        return v->u.i64; /* INT64, UNIX_TIMESTAMP */
    }
}

static double as_f64(const val_t *v)
{
    switch (v->type) {
    case CATALOG_DTYPE_DOUBLE:
        return v->u.f64;
    case CATALOG_DTYPE_FLOAT:
        return v->u.f32;
    case CATALOG_DTYPE_INT32:
        return v->u.i32;
    case CATALOG_DTYPE_BOOL:
        return v->u.b;
    default:
        return (double)v->u.i64;
    }
}

static bool is_integral(catalog_dtype_t t)
{
    return t == CATALOG_DTYPE_INT32 || t == CATALOG_DTYPE_INT64 ||
           t == CATALOG_DTYPE_UNIX_TIMESTAMP || t == CATALOG_DTYPE_BOOL;
}

static val_t i64_val(catalog_dtype_t t, int64_t x)
{
    val_t v = {.type = t};
    v.u.i64 = x;
    return v;
}

static val_t f64_val(double x)
{
    val_t v = {.type = CATALOG_DTYPE_DOUBLE};
    v.u.f64 = x;
    return v;
}

static val_t bool_val(bool b)
{
    val_t v = {.type = CATALOG_DTYPE_BOOL};
    v.u.b = b;
    return v;
}

/* A double result: null when it is not finite but its inputs were. */
static val_t checked(double r, double x, double y)
{
    if (!isfinite(r) && isfinite(x) && isfinite(y))
        return null_val;
    return f64_val(r);
}

/* v (a value of a type assignable to t, see unify() in expr.c) as type t. */
static val_t convert(const val_t *v, catalog_dtype_t t)
{
    if (is_null(v) || v->type == t)
        return *v;
    switch (t) {
    case CATALOG_DTYPE_DOUBLE:
        return f64_val(as_f64(v));
    case CATALOG_DTYPE_INT64:
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        return i64_val(t, as_i64(v));
    default:
        return null_val; /* not reached for a type-checked expression */
    }
}

static int cmp3(const val_t *a, const val_t *b, catalog_dtype_t ta, catalog_dtype_t tb,
                bool *unordered)
{
    *unordered = false;
    if (ta == CATALOG_DTYPE_STRING || ta == CATALOG_DTYPE_BYTES) {
        size_t n = a->u.bytes.len < b->u.bytes.len ? a->u.bytes.len : b->u.bytes.len;
        int r = n == 0 ? 0 : memcmp(a->u.bytes.data, b->u.bytes.data, n);
        if (r != 0)
            return r < 0 ? -1 : 1;
        return a->u.bytes.len < b->u.bytes.len ? -1 : a->u.bytes.len > b->u.bytes.len;
    }
    if (is_integral(ta) && is_integral(tb)) {
        int64_t x = as_i64(a), y = as_i64(b);
        return x < y ? -1 : x > y;
    }
    double x = as_f64(a), y = as_f64(b);
    if (isnan(x) || isnan(y)) {
        *unordered = true;
        return 0;
    }
    return x < y ? -1 : x > y;
}

static bool has_at(const catalog_bytes_t *s, const catalog_bytes_t *p, size_t at)
{
    return p->len == 0 || memcmp(s->data + at, p->data, p->len) == 0;
}

/* glibc's memmem is linear in the haystack: a request's strings cannot make it quadratic. */
static bool contains(const catalog_bytes_t *s, const catalog_bytes_t *p)
{
    if (p->len == 0)
        return true;
    if (p->len > s->len)
        return false;
    return memmem(s->data, s->len, p->data, p->len) != NULL;
}

/* Sum, mean, min or max of a numeric (or, for min and max, time) list. */
static val_t list_fold(catalog__op_t op, const val_t *l, catalog_dtype_t result)
{
    size_t n = l->u.list.n;
    if (op == CATALOG__OP_LIST_LEN)
        return i64_val(CATALOG_DTYPE_INT64, (int64_t)n);
    if (n == 0)
        return op == CATALOG__OP_LIST_SUM ? convert(&(val_t){.type = CATALOG_DTYPE_INT64}, result)
                                          : null_val;
    catalog_dtype_t e = catalog_dtype_element(l->type);
    val_t item;
    if (is_integral(e) && op != CATALOG__OP_LIST_MEAN) {
        int64_t acc = 0;
        for (size_t i = 0; i < n; i++) {
            catalog_list_item(l, i, &item);
            int64_t x = as_i64(&item);
            if (i == 0 && op != CATALOG__OP_LIST_SUM)
                acc = x;
            else if (op == CATALOG__OP_LIST_SUM && __builtin_add_overflow(acc, x, &acc))
                return null_val;
            else if (op == CATALOG__OP_LIST_MIN && x < acc)
                acc = x;
            else if (op == CATALOG__OP_LIST_MAX && x > acc)
                acc = x;
        }
        return i64_val(result, acc);
    }
    double acc = 0;
    bool finite = true;
    for (size_t i = 0; i < n; i++) {
        catalog_list_item(l, i, &item);
        double x = as_f64(&item);
        finite = finite && isfinite(x);
        if (op == CATALOG__OP_LIST_SUM || op == CATALOG__OP_LIST_MEAN)
            acc += x;
        else if (i == 0 || (op == CATALOG__OP_LIST_MIN ? x < acc : x > acc) || isnan(x))
            acc = x;
    }
    if (op == CATALOG__OP_LIST_MEAN)
        acc /= (double)n;
    if (!isfinite(acc) && finite)
        return null_val;
    return f64_val(acc);
}

static val_t cast(const val_t *v, catalog_dtype_t to)
{
    if (is_null(v))
        return null_val;
    bool from_int = is_integral(v->type);
    switch (to) {
    case CATALOG_DTYPE_INT32: {
        if (from_int) {
            int64_t x = as_i64(v);
            if (x < INT32_MIN || x > INT32_MAX)
                return null_val;
            val_t r = {.type = to};
            r.u.i32 = (int32_t)x;
            return r;
        }
        double d = as_f64(v);
        if (!(d > (double)INT32_MIN - 1.0 && d < (double)INT32_MAX + 1.0))
            return null_val; /* NaN too */
        val_t r = {.type = to};
        r.u.i32 = (int32_t)d;
        return r;
    }
    case CATALOG_DTYPE_INT64: {
        if (from_int)
            return i64_val(to, as_i64(v));
        double d = as_f64(v);
        /* -2^63 is exact as a double; 2^63 is the first value past the range */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return null_val;
        return i64_val(to, (int64_t)d);
    }
    case CATALOG_DTYPE_FLOAT: {
        double d = as_f64(v);
        /* Converting a finite double past FLOAT's range is undefined in ISO C: refused first. */
        if (!catalog_double_fits_float(d))
            return null_val;
        float f = (float)d;
        val_t r = {.type = to};
        r.u.f32 = f;
        return r;
    }
    default:
        return f64_val(as_f64(v));
    }
}

static val_t round_to(double x, const val_t *digits)
{
    if (digits == NULL)
        return checked(round(x), x, 0);
    int64_t d = as_i64(digits);
    if (d > 15 || d < -15 || !isfinite(x))
        return f64_val(d > 15 ? x : d < -15 ? 0.0 * x : x);
    if (fabs(x) >= 4503599627370496.0) /* 2^52: already a whole number */
        return f64_val(d >= 0 ? x : round(x / pow(10.0, (double)-d)) * pow(10.0, (double)-d));
    double scale = pow(10.0, (double)(d < 0 ? -d : d));
    double r = d >= 0 ? round(x * scale) / scale : round(x / scale) * scale;
    return checked(r, x, 0);
}

/* Whole seconds at or before us (no overflow, whatever us is). */
static int64_t floor_seconds(int64_t us)
{
    int64_t q = us / 1000000;
    return us % 1000000 < 0 ? q - 1 : q;
}

/* What one evaluation may build (strings of lower, upper, concat) and has built. */
typedef struct allowance {
    size_t max, made;
} allowance_t;

/* Builds a string of n bytes in a within the allowance. Returns: 0 and *out; -EMSGSIZE (over
 * the allowance: nothing allocated); -ENOMEM. */
static int new_bytes(base_arena_t *a, allowance_t *al, size_t n, uint8_t **out)
{
    if (n > al->max - al->made)
        return -EMSGSIZE;
    al->made += n;
    *out = base_arena_alloc(a, n == 0 ? 1 : n);
    return *out == NULL ? -ENOMEM : 0;
}

int catalog_expr_eval(const catalog_feature_t *f, const val_t *in, int64_t now_us, base_arena_t *a,
                      size_t max_bytes, size_t *made, val_t *out)
{
    allowance_t al = {max_bytes, 0};
    int rc = 0;
    const catalog_expr_t *e = f->expr;
    val_t reg[CATALOG__EXPR_MAX_TERMS];
    const catalog__ins_t *ins = e->ins;
    for (size_t k = 0; k < e->n_ins; k++) {
        const catalog__ins_t *p = &ins[k];
        catalog_dtype_t t = (catalog_dtype_t)p->type;
        const val_t *x = &reg[p->a], *y = &reg[p->b], *z = &reg[p->c];
        catalog_dtype_t tx = (catalog_dtype_t)ins[p->a].type;
        catalog_dtype_t ty = (catalog_dtype_t)ins[p->b].type;
        val_t *r = &reg[k];
        switch ((catalog__op_t)p->op) {
        case CATALOG__OP_CONST_NULL:
            *r = null_val;
            break;
        case CATALOG__OP_CONST:
            *r = e->consts[p->imm];
            break;
        case CATALOG__OP_INPUT: {
            const val_t *v = &in[p->imm];
            if (v->type == t)
                *r = *v;
            else if (t == CATALOG_DTYPE_INT64 && v->type == CATALOG_DTYPE_INT32)
                *r = i64_val(t, v->u.i32);
            else
                *r = null_val; /* no value, or one of another type: never trusted */
            break;
        }
        case CATALOG__OP_NEG:
            if (is_null(x))
                *r = null_val;
            else if (t == CATALOG_DTYPE_INT64)
                *r = as_i64(x) == INT64_MIN ? null_val : i64_val(t, -as_i64(x));
            else
                *r = f64_val(-as_f64(x));
            break;
        case CATALOG__OP_ADD:
        case CATALOG__OP_SUB:
        case CATALOG__OP_MUL:
        case CATALOG__OP_DIV:
        case CATALOG__OP_MOD: {
            if (is_null(x) || is_null(y)) {
                *r = null_val;
                break;
            }
            catalog__op_t op = (catalog__op_t)p->op;
            if (t != CATALOG_DTYPE_DOUBLE) { /* INT64 or a time: integers */
                int64_t u = as_i64(x), v = as_i64(y), w = 0;
                bool over = false;
                if (op == CATALOG__OP_ADD)
                    over = __builtin_add_overflow(u, v, &w);
                else if (op == CATALOG__OP_SUB)
                    over = __builtin_sub_overflow(u, v, &w);
                else if (op == CATALOG__OP_MUL)
                    over = __builtin_mul_overflow(u, v, &w);
                else if (v == 0 || (u == INT64_MIN && v == -1))
                    over = true;
                else
                    w = u % v;
                *r = over ? null_val : i64_val(t, w);
                break;
            }
            double u = as_f64(x), v = as_f64(y), w;
            if ((op == CATALOG__OP_DIV || op == CATALOG__OP_MOD) && v == 0) {
                *r = null_val;
                break;
            }
            w = op == CATALOG__OP_ADD   ? u + v
                : op == CATALOG__OP_SUB ? u - v
                : op == CATALOG__OP_MUL ? u * v
                : op == CATALOG__OP_DIV ? u / v
                                        : fmod(u, v);
            *r = checked(w, u, v);
            break;
        }
        case CATALOG__OP_EQ:
        case CATALOG__OP_NE:
        case CATALOG__OP_LT:
        case CATALOG__OP_LE:
        case CATALOG__OP_GT:
        case CATALOG__OP_GE: {
            if (is_null(x) || is_null(y)) {
                *r = null_val;
                break;
            }
            bool unordered;
            int c = cmp3(x, y, tx, ty, &unordered);
            bool b;
            switch ((catalog__op_t)p->op) {
            case CATALOG__OP_EQ:
                b = !unordered && c == 0;
                break;
            case CATALOG__OP_NE:
                b = unordered || c != 0;
                break;
            case CATALOG__OP_LT:
                b = !unordered && c < 0;
                break;
            case CATALOG__OP_LE:
                b = !unordered && c <= 0;
                break;
            case CATALOG__OP_GT:
                b = !unordered && c > 0;
                break;
            default:
                b = !unordered && c >= 0;
                break;
            }
            *r = bool_val(b);
            break;
        }
        case CATALOG__OP_NOT:
            *r = is_null(x) ? null_val : bool_val(!x->u.b);
            break;
        case CATALOG__OP_AND:
        case CATALOG__OP_OR: {
            /* Kleene logic: false and null is false, true or null is true. */
            bool dominant = p->op == CATALOG__OP_OR;
            if ((!is_null(x) && x->u.b == dominant) || (!is_null(y) && y->u.b == dominant))
                *r = bool_val(dominant);
            else if (is_null(x) || is_null(y))
                *r = null_val;
            else
                *r = bool_val(!dominant);
            break;
        }
        case CATALOG__OP_IS_NULL:
            *r = bool_val(is_null(x));
            break;
        case CATALOG__OP_COALESCE: {
            *r = null_val;
            for (size_t i = 0; i < p->n; i++) {
                const val_t *v = &reg[e->args[p->imm + i]];
                if (!is_null(v)) {
                    *r = convert(v, t);
                    break;
                }
            }
            break;
        }
        case CATALOG__OP_IF:
            /* A null condition counts as false, as in SQL's CASE. */
            *r = convert(!is_null(x) && x->u.b ? y : z, t);
            break;
        case CATALOG__OP_ABS:
            if (is_null(x))
                *r = null_val;
            else if (t == CATALOG_DTYPE_INT64)
                *r = as_i64(x) == INT64_MIN ? null_val : i64_val(t, llabs(as_i64(x)));
            else
                *r = f64_val(fabs(as_f64(x)));
            break;
        case CATALOG__OP_SQRT:
        case CATALOG__OP_LOG:
        case CATALOG__OP_EXP:
        case CATALOG__OP_FLOOR:
        case CATALOG__OP_CEIL: {
            if (is_null(x)) {
                *r = null_val;
                break;
            }
            double d = as_f64(x);
            if ((p->op == CATALOG__OP_SQRT && d < 0) || (p->op == CATALOG__OP_LOG && d <= 0)) {
                *r = null_val;
                break;
            }
            double w = p->op == CATALOG__OP_SQRT    ? sqrt(d)
                       : p->op == CATALOG__OP_LOG   ? log(d)
                       : p->op == CATALOG__OP_EXP   ? exp(d)
                       : p->op == CATALOG__OP_FLOOR ? floor(d)
                                                    : ceil(d);
            *r = checked(w, d, 0);
            break;
        }
        case CATALOG__OP_POW:
            if (is_null(x) || is_null(y))
                *r = null_val;
            else
                *r = checked(pow(as_f64(x), as_f64(y)), as_f64(x), as_f64(y));
            break;
        case CATALOG__OP_ROUND:
            if (is_null(x) || (p->n == 2 && is_null(y)))
                *r = null_val;
            else
                *r = round_to(as_f64(x), p->n == 2 ? y : NULL);
            break;
        case CATALOG__OP_MIN:
        case CATALOG__OP_MAX:
        case CATALOG__OP_CLAMP: {
            *r = null_val;
            bool any_null = false;
            for (size_t i = 0; i < p->n && !any_null; i++)
                any_null = is_null(&reg[e->args[p->imm + i]]);
            if (any_null)
                break;
            if (p->op == CATALOG__OP_CLAMP) {
                val_t v = convert(x, t), lo = convert(y, t), hi = convert(z, t);
                bool u1, u2, u3;
                if (cmp3(&lo, &hi, t, t, &u1) > 0 || u1)
                    break; /* lo > hi: no answer */
                if (cmp3(&v, &lo, t, t, &u2) < 0)
                    v = lo;
                else if (cmp3(&v, &hi, t, t, &u3) > 0)
                    v = hi;
                *r = v;
                break;
            }
            val_t best = convert(&reg[e->args[p->imm]], t);
            for (size_t i = 1; i < p->n; i++) {
                val_t v = convert(&reg[e->args[p->imm + i]], t);
                bool un;
                int c = cmp3(&v, &best, t, t, &un);
                if (un)
                    best = isnan(as_f64(&v)) ? v : best; /* NaN wins, as in fmin's opposite */
                else if (p->op == CATALOG__OP_MIN ? c < 0 : c > 0)
                    best = v;
            }
            *r = best;
            break;
        }
        case CATALOG__OP_CAST:
            *r = cast(x, t);
            break;
        case CATALOG__OP_LENGTH: {
            if (is_null(x)) {
                *r = null_val;
                break;
            }
            size_t n = x->u.bytes.len;
            if (tx == CATALOG_DTYPE_STRING) { /* code points: bytes that do not continue one */
                size_t cp = 0;
                for (size_t i = 0; i < x->u.bytes.len; i++)
                    cp += (x->u.bytes.data[i] & 0xC0) != 0x80;
                n = cp;
            }
            *r = i64_val(CATALOG_DTYPE_INT64, (int64_t)n);
            break;
        }
        case CATALOG__OP_LOWER:
        case CATALOG__OP_UPPER: {
            if (is_null(x)) {
                *r = null_val;
                break;
            }
            size_t n = x->u.bytes.len;
            uint8_t *s = NULL;
            if ((rc = new_bytes(a, &al, n, &s)) < 0)
                goto out;
            for (size_t i = 0; i < n; i++) {
                uint8_t c = x->u.bytes.data[i];
                if (p->op == CATALOG__OP_LOWER && c >= 'A' && c <= 'Z')
                    c = (uint8_t)(c + 32);
                else if (p->op == CATALOG__OP_UPPER && c >= 'a' && c <= 'z')
                    c = (uint8_t)(c - 32);
                s[i] = c;
            }
            r->type = CATALOG_DTYPE_STRING;
            r->u.bytes = (catalog_bytes_t){s, n};
            break;
        }
        case CATALOG__OP_CONCAT: {
            size_t n = 0;
            bool any_null = false;
            bool too_long = false;
            for (size_t i = 0; i < p->n; i++) {
                const val_t *v = &reg[e->args[p->imm + i]];
                any_null = any_null || is_null(v);
                if (!is_null(v)) {
                    too_long = too_long || v->u.bytes.len > SIZE_MAX / 2 - n;
                    n += v->u.bytes.len;
                }
            }
            if (any_null) {
                *r = null_val;
                break;
            }
            uint8_t *s = NULL;
            if ((rc = too_long ? -EMSGSIZE : new_bytes(a, &al, n, &s)) < 0)
                goto out;
            size_t at = 0;
            for (size_t i = 0; i < p->n; i++) {
                const val_t *v = &reg[e->args[p->imm + i]];
                if (v->u.bytes.len > 0)
                    memcpy(s + at, v->u.bytes.data, v->u.bytes.len);
                at += v->u.bytes.len;
            }
            r->type = CATALOG_DTYPE_STRING;
            r->u.bytes = (catalog_bytes_t){s, n};
            break;
        }
        case CATALOG__OP_CONTAINS:
        case CATALOG__OP_STARTS_WITH:
        case CATALOG__OP_ENDS_WITH: {
            if (is_null(x) || is_null(y)) {
                *r = null_val;
                break;
            }
            const catalog_bytes_t *s = &x->u.bytes, *q = &y->u.bytes;
            bool b;
            if (p->op == CATALOG__OP_CONTAINS)
                b = contains(s, q);
            else if (q->len > s->len)
                b = false;
            else
                b = has_at(s, q, p->op == CATALOG__OP_STARTS_WITH ? 0 : s->len - q->len);
            *r = bool_val(b);
            break;
        }
        case CATALOG__OP_LIST_LEN:
        case CATALOG__OP_LIST_SUM:
        case CATALOG__OP_LIST_MEAN:
        case CATALOG__OP_LIST_MIN:
        case CATALOG__OP_LIST_MAX:
            *r = is_null(x) ? null_val : list_fold((catalog__op_t)p->op, x, t);
            break;
        case CATALOG__OP_INDEX: {
            if (is_null(x) || is_null(y)) {
                *r = convert(z, t);
                break;
            }
            int64_t i = as_i64(y), n = (int64_t)x->u.list.n;
            if (i < 0)
                i += n;
            if (i < 0 || i >= n) {
                *r = convert(z, t);
                break;
            }
            val_t item;
            catalog_list_item(x, (size_t)i, &item);
            *r = convert(&item, t);
            break;
        }
        case CATALOG__OP_NOW:
            *r = i64_val(CATALOG_DTYPE_UNIX_TIMESTAMP, floor_seconds(now_us));
            break;
        case CATALOG__OP_AGE: {
            if (is_null(x)) {
                *r = null_val;
                break;
            }
            int64_t now_s = floor_seconds(now_us);
            int64_t w;
            *r = __builtin_sub_overflow(now_s, as_i64(x), &w) ? null_val
                                                              : i64_val(CATALOG_DTYPE_INT64, w);
            break;
        }
        }
    }
    const val_t *res = &reg[e->n_ins - 1];
    if (is_null(res))
        *out = null_val;
    else if (res->type == e->want)
        *out = *res;
    else
        *out = convert(res, e->want);
out:
    if (made != NULL)
        *made = al.made;
    return rc;
}
