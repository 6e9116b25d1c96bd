/* catalog/catalog_int.h - shared inside catalog/: arena, hash index, errors, drafts, patterns. */
#ifndef CATALOG_CATALOG_INT_H
#define CATALOG_CATALOG_INT_H

#include <regex.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "base/base.h"
#include "catalog/catalog.h"

/* ------------------------------------------------------------------------------------------ */
/* Memory and indexes. Everything a catalog owns lives in one base_arena_t (base/base.h), so the
 * last catalog_unref() is one walk; catalog__alloc() is base_arena_calloc() of one block, since
 * drafts and snapshots are filled field by field and rely on zeroes elsewhere.              */

#define CATALOG__ARENA_CHUNK (32u * 1024u)

/* Zeroed, max-aligned memory valid until the arena goes. Returns NULL on OOM. */
static inline void *catalog__alloc(base_arena_t *a, size_t size)
{
    return base_arena_calloc(a, 1, size);
}

/*
 * A map from names (any bytes, living as long as the index) to values, for lookups by name:
 * a base_name_index_t over the keys added so far, beside the values. Sized once for its n keys.
 */
typedef struct catalog__index {
    base_name_index_t ix;
    const char **keys;
    size_t *lens;
    const void **vals;
    size_t n, cap;
} catalog__index_t;

/* Sized for n keys, in the arena. Returns: 0, -ENOMEM. */
int catalog__index_init(base_arena_t *a, catalog__index_t *ix, size_t n);
/* key must outlive the index. Returns: 0; -EEXIST (the first value stays); -ENOSPC (more keys
 * than the index was sized for). */
int catalog__index_put(catalog__index_t *ix, const char *key, size_t len, const void *val);
/* Returns: the value of key, or NULL (also for an index never initialised). */
const void *catalog__index_get(const catalog__index_t *ix, const char *key, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

/* The list stops growing here (one last item says so): a hostile file must not exhaust memory. */
#define CATALOG__MAX_ERRORS 1000

#if defined(__GNUC__)
#define CATALOG__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CATALOG__PRINTF(f, a)
#endif

void catalog__error(catalog_errors_t *errs, const char *file, int line, int col, const char *key,
                    const char *fmt, ...) CATALOG__PRINTF(6, 7);
void catalog__verror(catalog_errors_t *errs, const char *file, int line, int col, const char *key,
                     const char *fmt, va_list ap) CATALOG__PRINTF(6, 0);
/* Orders errors by file, line and column (stable), so a directory reads top to bottom. */
void catalog__errors_sort(catalog_errors_t *errs, size_t from);

/* ------------------------------------------------------------------------------------------ */
/* Compiled patterns: validation.pattern points at text[] inside one of these.                 */

typedef struct catalog__pattern {
    struct catalog__pattern *next;
    regex_t re;
    char text[];
} catalog__pattern_t;

/* Compiles into c's arena and list. Returns: the pattern, or NULL with why filled. */
catalog__pattern_t *catalog__pattern_compile(catalog_t *c, const char *text, char *why,
                                             size_t why_cap);
bool catalog__pattern_match(const catalog__pattern_t *p, const uint8_t *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* The resolved catalog                                                                        */

struct catalog {
    atomic_int refs;
    base_arena_t arena;
    catalog__pattern_t *patterns; /* regfree'd on the last unref */
    const char *project;
    char digest[17];

    catalog_entity_t *entities;
    size_t n_entities;
    catalog_view_t *views; /* sorted by (name, version) */
    size_t n_views;
    catalog_service_t *services; /* sorted by name */
    size_t n_services;
    catalog_model_t *models; /* sorted by (name, version, label) */
    size_t n_models;

    catalog_view_t *odfvs; /* on-demand feature views, sorted by (name, version) */
    size_t n_odfvs;
    catalog_request_source_t *requests; /* sorted by name */
    size_t n_requests;

    catalog__index_t ix_entities; /* name */
    catalog__index_t ix_views;    /* "name" (default version) and "name@vN" */
    catalog__index_t ix_features; /* "view@vN:feature" and "view:feature" (default version) */
    catalog__index_t ix_services; /* name */
    catalog__index_t ix_requests; /* name */
    catalog__index_t ix_models;   /* "name" (highest), "name@vN", "name#label" */
};

catalog_t *catalog__new(void);
void catalog__free(catalog_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Drafts: what load.c read, with the places resolve.c needs to point at.                      */

typedef struct catalog__pos {
    const char *file;
    int line, col;
    const char *key;
} catalog__pos_t;

typedef struct catalog__draft_entity {
    catalog_entity_t e;
    catalog__pos_t pos, name_pos;
} catalog__draft_entity_t;

typedef struct catalog__draft_view {
    catalog_view_t v; /* entities and join keys are filled by resolve */
    catalog__pos_t pos, name_pos, version_pos, default_pos;
    bool marked_default;
    const char **entity_names;
    catalog__pos_t *entity_pos;
    size_t n_entity_names;
} catalog__draft_view_t;

typedef struct catalog__draft_service {
    catalog_service_t s; /* features are filled by resolve */
    catalog__pos_t pos, name_pos, features_pos;
    const char **refs;
    catalog__pos_t *ref_pos;
    size_t n_refs;
} catalog__draft_service_t;

typedef struct catalog__draft_model {
    catalog_model_t m; /* service is filled by resolve */
    catalog__pos_t pos, name_pos, service_pos;
    bool has_version;
    const char *service_name;
    catalog__pos_t *input_pos; /* per entity input, at its value */
} catalog__draft_model_t;

typedef struct catalog__draft_request {
    catalog_request_source_t r;
    catalog__pos_t pos, name_pos;
} catalog__draft_request_t;

typedef struct catalog__draft_odfv {
    catalog_view_t v; /* features carry their expression text; on_demand is filled by
                         resolve */
    catalog__pos_t pos, name_pos, version_pos, default_pos, sources_pos;
    bool marked_default;
    const char **sources;
    catalog__pos_t *source_pos;
    size_t n_sources;
    bool sources_bad;         /* the sources list was missing or empty, or an entry was refused at
                             load: expressions are not compiled */
    catalog__pos_t *expr_pos; /* per feature, at its expression */
} catalog__draft_odfv_t;

typedef struct catalog__draft {
    base_arena_t scratch; /* trees, drafts and positions; freed after resolve */
    const char *first_file;
    const char *project;
    catalog__pos_t project_pos;
    catalog__draft_entity_t *entities;
    size_t n_entities, cap_entities;
    catalog__draft_view_t *views;
    size_t n_views, cap_views;
    catalog__draft_service_t *services;
    size_t n_services, cap_services;
    catalog__draft_model_t *models;
    size_t n_models, cap_models;
    catalog__draft_request_t *requests;
    size_t n_requests, cap_requests;
    catalog__draft_odfv_t *odfvs;
    size_t n_odfvs, cap_odfvs;
} catalog__draft_t;

/* Cross-object checks and the final snapshot. Returns: 0, -EINVAL (errors added), -ENOMEM. */
int catalog__resolve(catalog_t *c, catalog__draft_t *d, catalog_errors_t *errs);
/* Only for a catalog without errors: computes the digest. Returns: 0, -ENOMEM. */
int catalog__finalize(catalog_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Helpers shared by load, dump, plan and validate                                             */

bool catalog__valid_name(const char *s);
/* Levenshtein distance, capped: used to suggest the closest known key or name. */
size_t catalog__distance(const char *a, const char *b);
/* The candidate closest to s, or NULL when none is close enough to be a likely typo. */
const char *catalog__closest(const char *s, const char *const *cands, size_t n);
/* " (did you mean 'x'?)" with catalog__closest()'s candidate, or "" when none is close. */
void catalog__suggest(const char *s, const char *const *cands, size_t n, char *buf, size_t cap);

/* Shortest decimal that reads back as the same double / float ("%.17g" at worst). */
void catalog__format_double(double d, char *buf, size_t cap);
void catalog__format_float(float f, char *buf, size_t cap);

/*
 * Splits "view:feature", "view@v2:feature" or "view:*" (len bytes). version is 0 without @vN.
 * Returns: 0, -EINVAL for a malformed reference.
 */
typedef struct catalog__ref {
    const char *view;
    size_t view_len;
    uint32_t version;
    const char *feature;
    size_t feature_len;
} catalog__ref_t;
int catalog__parse_ref(const char *ref, size_t len, catalog__ref_t *out);
/* Parses "name" or "name@vN" (len bytes). Returns: 0, -EINVAL. */
int catalog__parse_view_ref(const char *ref, size_t len, const char **name, size_t *name_len,
                            uint32_t *version);

/* Validation with the catalog's compiled pattern. */
int catalog__check_value(const catalog_feature_t *f, const catalog_value_t *v, char *why,
                         size_t why_cap);

/* Canonical YAML (dump.c); also the input of the digest. */
int catalog__dump(const catalog_t *c, char **out, size_t *len);

/* "7d", "15m", "90s" or "0": the largest unit that divides. */
void catalog__format_duration(int64_t seconds, char *buf, size_t cap);

#endif /* CATALOG_CATALOG_INT_H */
