/* tests/catalog/helpers.h - loading catalogs from strings and asserting on their errors. */
#ifndef TESTS_CATALOG_HELPERS_H
#define TESTS_CATALOG_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"

/* A catalog every test may extend: one entity, one view version. Lines are numbered 1-13. */
#define BASE_YAML                                                                                  \
    "project: p\n"              /* 1 */                                                            \
    "entities:\n"               /* 2 */                                                            \
    "  - name: driver\n"        /* 3 */                                                            \
    "    join_keys:\n"          /* 4 */                                                            \
    "      - name: driver_id\n" /* 5 */                                                            \
    "        type: INT64\n"     /* 6 */                                                            \
    "feature_views:\n"          /* 7 */                                                            \
    "  - name: stats\n"         /* 8 */                                                            \
    "    version: 1\n"          /* 9 */                                                            \
    "    entities: [driver]\n"  /* 10 */                                                           \
    "    features:\n"           /* 11 */                                                           \
    "      - name: rate\n"      /* 12 */                                                           \
    "        dtype: FLOAT\n"    /* 13 */

static inline void print_errors(const catalog_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        const catalog_error_t *e = &errs->items[i];
        fprintf(stderr, "  %s:%d:%d: %s: %s\n", e->file, e->line, e->column, e->key, e->message);
    }
}

static inline catalog_t *load_ok(const char *yaml)
{
    catalog_t *c = NULL;
    catalog_errors_t errs = {NULL, 0};
    int rc = catalog_load_string(yaml, strlen(yaml), "t.yaml", &c, &errs);
    if (rc != 0)
        print_errors(&errs);
    cr_assert_eq(rc, 0, "catalog should load, got %d with %zu errors", rc, errs.count);
    cr_assert_eq(errs.count, 0);
    catalog_errors_clear(&errs);
    return c;
}

/* Loads yaml that must fail with -EINVAL; the caller clears errs. */
static inline void load_bad(const char *yaml, catalog_errors_t *errs)
{
    catalog_t *c = NULL;
    int rc = catalog_load_string(yaml, strlen(yaml), "t.yaml", &c, errs);
    cr_assert_eq(rc, -EINVAL, "catalog should fail with -EINVAL, got %d", rc);
    cr_assert_null(c);
    cr_assert_gt(errs->count, 0);
}

static inline const catalog_error_t *find_error(const catalog_errors_t *errs, const char *key)
{
    for (size_t i = 0; i < errs->count; i++) {
        if (strcmp(errs->items[i].key, key) == 0)
            return &errs->items[i];
    }
    return NULL;
}

/* Asserts an error at key, at line:col (1-based), whose message contains msg. */
static inline void expect_error(const catalog_errors_t *errs, const char *key, int line, int col,
                                const char *msg)
{
    const catalog_error_t *e = find_error(errs, key);
    if (e == NULL || e->line != line || e->column != col || strstr(e->message, msg) == NULL)
        print_errors(errs);
    cr_assert_not_null(e, "no error for key %s", key);
    cr_expect_eq(e->line, line, "%s: line %d, want %d", key, e->line, line);
    cr_expect_eq(e->column, col, "%s: column %d, want %d", key, e->column, col);
    cr_expect_not_null(strstr(e->message, msg), "%s: message '%s' lacks '%s'", key, e->message,
                       msg);
}

/* Loads yaml expecting exactly one error, at key line:col with msg. */
static inline void expect_only_error(const char *yaml, const char *key, int line, int col,
                                     const char *msg)
{
    catalog_errors_t errs = {NULL, 0};
    load_bad(yaml, &errs);
    if (errs.count != 1)
        print_errors(&errs);
    cr_expect_eq(errs.count, 1, "want one error, got %zu", errs.count);
    expect_error(&errs, key, line, col, msg);
    catalog_errors_clear(&errs);
}

static inline char *source_path(const char *rel)
{
    const char *root = getenv("FSTORE_SOURCE_DIR");
    cr_assert_not_null(root, "FSTORE_SOURCE_DIR is not set");
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", root, rel);
    return p;
}

#endif /* TESTS_CATALOG_HELPERS_H */
