/* catalog/expr_int.h - shared inside catalog/: on-demand expressions' compiled form and scope. */
#ifndef CATALOG_EXPR_INT_H
#define CATALOG_EXPR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"

/* Bounds of one expression (errors at load name them). */
#define CATALOG__EXPR_MAX_LEN 4096   /* characters */
#define CATALOG__EXPR_MAX_TERMS 256  /* instructions: registers of one evaluation */
#define CATALOG__EXPR_MAX_DEPTH 64   /* nesting */
#define CATALOG__EXPR_MAX_ARGS 16    /* arguments of one call */
#define CATALOG__EXPR_MAX_INPUTS 256 /* inputs of one on-demand view */

typedef enum catalog__op {
    CATALOG__OP_CONST_NULL,
    CATALOG__OP_CONST, /* consts[imm] */
    CATALOG__OP_INPUT, /* in[imm] */
    CATALOG__OP_NEG,
    CATALOG__OP_ADD,
    CATALOG__OP_SUB,
    CATALOG__OP_MUL,
    CATALOG__OP_DIV,
    CATALOG__OP_MOD,
    CATALOG__OP_EQ,
    CATALOG__OP_NE,
    CATALOG__OP_LT,
    CATALOG__OP_LE,
    CATALOG__OP_GT,
    CATALOG__OP_GE,
    CATALOG__OP_NOT,
    CATALOG__OP_AND,
    CATALOG__OP_OR,
    /* calls: n arguments at args[imm..] (the first three also in a, b, c) */
    CATALOG__OP_IS_NULL,
    CATALOG__OP_COALESCE,
    CATALOG__OP_IF,
    CATALOG__OP_ABS,
    CATALOG__OP_SQRT,
    CATALOG__OP_LOG,
    CATALOG__OP_EXP,
    CATALOG__OP_POW,
    CATALOG__OP_FLOOR,
    CATALOG__OP_CEIL,
    CATALOG__OP_ROUND,
    CATALOG__OP_MIN,
    CATALOG__OP_MAX,
    CATALOG__OP_CLAMP,
    CATALOG__OP_CAST, /* to the instruction's type */
    CATALOG__OP_LENGTH,
    CATALOG__OP_LOWER,
    CATALOG__OP_UPPER,
    CATALOG__OP_CONCAT,
    CATALOG__OP_CONTAINS,
    CATALOG__OP_STARTS_WITH,
    CATALOG__OP_ENDS_WITH,
    CATALOG__OP_LIST_LEN,
    CATALOG__OP_LIST_SUM,
    CATALOG__OP_LIST_MEAN,
    CATALOG__OP_LIST_MIN,
    CATALOG__OP_LIST_MAX,
    CATALOG__OP_INDEX, /* get(list, i, default); l[i] is get(l, i, null) */
    CATALOG__OP_NOW,
    CATALOG__OP_AGE,
} catalog__op_t;

/* One instruction: its result is register <its index>; operands are earlier registers. */
typedef struct catalog__ins {
    uint8_t op;
    uint8_t type; /* the static result type (catalog_dtype_t) */
    uint16_t a, b, c;
    uint16_t n;   /* calls: arguments */
    uint32_t imm; /* CONST: constant; INPUT: input; calls: first argument in args */
} catalog__ins_t;

struct catalog_expr {
    const catalog__ins_t *ins;
    size_t n_ins; /* the result is register n_ins - 1 */
    const uint16_t *args;
    const catalog_value_t *consts;
    const uint32_t *uses; /* inputs read, ascending */
    size_t n_uses;
    catalog_dtype_t type; /* the expression's static type */
    catalog_dtype_t want; /* the feature's dtype (assignable from type) */
};

/* What an expression may name: its view's sources, by the name expressions use (a view's name
 * without @vN). Inputs found while compiling the view's features are collected in inputs (grown
 * in scratch), so that features share them. */
typedef struct catalog__scope_src {
    const char *name;
    const catalog_view_t *view;          /* a feature view source, or NULL */
    const catalog_request_source_t *req; /* a request source, or NULL */
} catalog__scope_src_t;

typedef struct catalog__scope {
    const catalog__scope_src_t *srcs;
    size_t n_srcs;
    base_arena_t *scratch;
    catalog_input_t *inputs;
    size_t n_inputs, cap_inputs;
} catalog__scope_t;

/* Receives one error: its 1-based column in the expression's text and the message. */
typedef void (*catalog__expr_err_fn)(void *arg, size_t col, const char *msg);

/*
 * Parses, type-checks and compiles text (NUL-terminated) for a feature of dtype want; the code
 * and constants go into a (the catalog's arena).
 * Returns: 0 and *out; -EINVAL after reporting every error through err; -ENOMEM.
 */
int catalog__expr_compile(base_arena_t *a, const char *text, catalog__scope_t *scope,
                          catalog_dtype_t want, catalog__expr_err_fn err, void *err_arg,
                          const catalog_expr_t **out);

#endif /* CATALOG_EXPR_INT_H */
