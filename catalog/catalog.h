/* catalog/catalog.h - the feature catalog: YAML loading, validation, resolution, plans, values. */
#ifndef CATALOG_CATALOG_H
#define CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/*
 * A catalog describes a project's entities, feature views (versioned, typed, with validation
 * rules, TTL and metadata), feature services and model bindings. It is loaded from YAML (one file,
 * or a directory of *.yaml files merged), checked in full (every mistake is reported at once, with
 * file, line and column), and resolved into an immutable snapshot: once catalog_load() returns, a
 * catalog_t never changes, so any number of threads may read it without locks. Reloads build a new
 * snapshot and swap the pointer; reference counting keeps the old one alive for readers still
 * holding it.
 *
 * The structs below are exposed read-only (like LMDB's MDB_stat): every pointer inside them is
 * owned by the catalog and valid until its last reference is dropped.
 */

#define CATALOG_MAX_NAME 128 /* longest entity, view, feature, service or model name */
#define CATALOG_MAX_VERSION 65535u

/* Value types. The numbers are Feast's feast.types.ValueType.Enum, so they go on the wire as is. */
typedef enum catalog_dtype {
    CATALOG_DTYPE_INVALID = 0,
    CATALOG_DTYPE_BYTES = 1,
    CATALOG_DTYPE_STRING = 2,
    CATALOG_DTYPE_INT32 = 3,
    CATALOG_DTYPE_INT64 = 4,
    CATALOG_DTYPE_DOUBLE = 5,
    CATALOG_DTYPE_FLOAT = 6,
    CATALOG_DTYPE_BOOL = 7,
    CATALOG_DTYPE_UNIX_TIMESTAMP = 8,
    CATALOG_DTYPE_BYTES_LIST = 11,
    CATALOG_DTYPE_STRING_LIST = 12,
    CATALOG_DTYPE_INT32_LIST = 13,
    CATALOG_DTYPE_INT64_LIST = 14,
    CATALOG_DTYPE_DOUBLE_LIST = 15,
    CATALOG_DTYPE_FLOAT_LIST = 16,
    CATALOG_DTYPE_BOOL_LIST = 17,
    CATALOG_DTYPE_UNIX_TIMESTAMP_LIST = 18,
    CATALOG_DTYPE_NULL = 19,
} catalog_dtype_t;

/* Returns: the Feast name ("INT64", "FLOAT_LIST"), or "INVALID" for an unknown value. */
const char *catalog_dtype_name(catalog_dtype_t t);
/* Parses a Feast dtype name. Returns: 0, or -EINVAL for an unknown name (*out untouched). */
int catalog_dtype_parse(const char *name, catalog_dtype_t *out);
/* Returns: true for the *_LIST types. */
bool catalog_dtype_is_list(catalog_dtype_t t);
/* Returns: the element type of a list type (INT64 for INT64_LIST), or t itself for a scalar. */
catalog_dtype_t catalog_dtype_element(catalog_dtype_t t);

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                      */

typedef struct catalog_bytes {
    const uint8_t *data;
    size_t len;
} catalog_bytes_t;

/*
 * A typed value. Pointers inside (bytes, list items) are borrowed from whoever built the value:
 * the catalog for defaults and allowed values, a request or a scratch buffer elsewhere.
 * UNIX_TIMESTAMP values are seconds since the epoch (Feast's convention).
 */
typedef struct catalog_value {
    catalog_dtype_t type; /* CATALOG_DTYPE_NULL for an explicit null */
    union {
        int64_t i64;           /* INT64, UNIX_TIMESTAMP */
        int32_t i32;           /* INT32 */
        double f64;            /* DOUBLE */
        float f32;             /* FLOAT */
        bool b;                /* BOOL */
        catalog_bytes_t bytes; /* STRING (UTF-8, not NUL-terminated), BYTES */
        struct {
            size_t n;
            union {
                const int64_t *i64;
                const int32_t *i32;
                const double *f64;
                const float *f32;
                const bool *b;
                const catalog_bytes_t *bytes;
            } v;
        } list; /* every *_LIST type */
    } u;
} catalog_value_t;

/* Item i (< list->u.list.n) of a list value as a scalar value of its element type (strings and
 * bytes point into the list's items); a scalar list gives type CATALOG_DTYPE_INVALID. */
void catalog_list_item(const catalog_value_t *list, size_t i, catalog_value_t *out);

/*
 * The feast.types.Value protobuf wire form of v (a message body, no outer tag or length).
 * A NULL value encodes as Feast's null_val; an empty message (0 bytes) also decodes as null.
 * Returns: the number of bytes written, or -ENOSPC when cap is too small (nothing useful
 *          written), -EINVAL for an invalid type.
 * catalog_value_wire_size() returns the exact size catalog_value_encode() needs.
 */
int catalog_value_encode(const catalog_value_t *v, uint8_t *buf, size_t cap);
size_t catalog_value_wire_size(const catalog_value_t *v);

/*
 * Decodes a feast.types.Value message body. Scalars land in *out directly; list items and
 * bytes-list descriptors are laid out in scratch (aligned by this function), and bytes point into
 * wire. Unknown or newer Feast value fields (20 and up) are refused, not skipped.
 * Returns: 0; -EINVAL for malformed bytes or an unsupported field; -ENOSPC when scratch is too
 *          small (scratch_cap >= 16 * len + 64 is always enough).
 * Ownership: *out borrows from wire and scratch.
 */
int catalog_value_decode(const uint8_t *wire, size_t len, catalog_value_t *out, void *scratch,
                         size_t scratch_cap);

/* Returns: true when a and b have the same type and the same contents (floats compared bitwise
 * except that 0.0 == -0.0). */
bool catalog_value_equal(const catalog_value_t *a, const catalog_value_t *b);

/*
 * Formats v for people and logs of the CLI: 1.5, "text", [1, 2], null. Bytes print as base64
 * prefixed "b64:". Returns: the length that was needed (like snprintf); buf is always
 * NUL-terminated when cap > 0.
 */
size_t catalog_value_format(const catalog_value_t *v, char *buf, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* The resolved catalog                                                                        */

typedef struct catalog catalog_t;

typedef struct catalog_tag {
    const char *key;
    const char *value;
} catalog_tag_t;

typedef struct catalog_join_key {
    const char *name;
    catalog_dtype_t dtype; /* INT64, INT32, STRING or BYTES */
} catalog_join_key_t;

typedef struct catalog_entity {
    const char *name;
    const char *description; /* "" when absent */
    const catalog_join_key_t *join_keys;
    size_t n_join_keys;
    const catalog_tag_t *tags;
    size_t n_tags;
} catalog_entity_t;

typedef struct catalog_validation {
    bool not_null;
    bool has_min, has_max; /* numeric features (and list elements); compared as double */
    double min, max;
    const catalog_value_t *allowed_values; /* scalars of the feature's element type */
    size_t n_allowed;
    int64_t max_length;  /* strings/bytes: bytes; lists: items; -1 = no limit */
    const char *pattern; /* POSIX ERE applied to STRING values (list elements too); NULL = none.
                            The whole value must match (as if wrapped in ^(...)$). */
} catalog_validation_t;

typedef struct catalog_expr catalog_expr_t; /* a compiled expression (on-demand features) */

typedef struct catalog_feature {
    const char *name;
    uint32_t index; /* position within its view version, 0-based, catalog order */
    catalog_dtype_t dtype;
    bool has_default;
    catalog_value_t default_value; /* valid when has_default */
    catalog_validation_t validation;
    const char *description;
    const catalog_tag_t *tags;
    size_t n_tags;
    /* On-demand features only (their view's on_demand is set): the expression as written and
     * compiled; NULL for stored features. */
    const char *expression;
    const catalog_expr_t *expr;
} catalog_feature_t;

struct catalog_on_demand;

typedef struct catalog_view {
    const char *name;
    uint32_t version; /* >= 1 */
    bool is_default;  /* the version a reference without @vN resolves to */
    uint32_t id;      /* dense index in catalog_view_at() order; on-demand views follow the
                     stored ones (catalog_view_count() + their catalog_on_demand_at() index) */
    const catalog_entity_t *const *entities; /* n_entities == 0: an entityless view */
    size_t n_entities;
    const catalog_join_key_t *join_keys; /* every entity's join keys, flattened in catalog order */
    size_t n_join_keys;
    int64_t ttl_seconds; /* 0 = forever */
    bool online;
    /* Offline history (`offline: {retention: 90d}`): every applied write is also kept as
     * (entity, event time) -> row on nodes that keep history (serve --history), for
     * point-in-time reads; rows older than the retention go at the next gc (0 = forever). Only
     * an online view keeps history. */
    bool history;
    int64_t history_retention_s;
    const catalog_feature_t *features;
    size_t n_features;
    const char *description;
    const char *owner;
    const catalog_tag_t *tags;
    size_t n_tags;
    const char *lineage_source;         /* "" when absent */
    const char *lineage_transformation; /* "" when absent */
    const char *push_source; /* Feast's push source feeding it (HTTP /push); "" when none */
    /* An on-demand feature view: nothing stored, every feature computed at read time from its
     * sources (catalog_on_demand_at()); NULL for a stored view. Its join keys (and entities) are
     * those of its feature view sources together; it is always online and never written. */
    const struct catalog_on_demand *on_demand;
} catalog_view_t;

typedef struct catalog_feature_ref {
    const catalog_view_t *view;
    const catalog_feature_t *feature;
} catalog_feature_ref_t;

/* ------------------------------------------------------------------------------------------ */
/* Request sources and on-demand feature views                                                 */

/* A field a caller sends with a read (Feast's request_context, HTTP's request_context, a Predict
 * input tensor of the same name). */
typedef struct catalog_request_field {
    const char *name;
    catalog_dtype_t dtype;
} catalog_request_field_t;

typedef struct catalog_request_source {
    const char *name;
    const char *description; /* "" when absent */
    const catalog_request_field_t *fields;
    size_t n_fields;
} catalog_request_source_t;

/* What an on-demand feature reads. */
typedef enum catalog_input_kind {
    CATALOG_INPUT_FEATURE = 0,    /* a stored feature of a source view */
    CATALOG_INPUT_REQUEST = 1,    /* a field of a request source */
    CATALOG_INPUT_EVENT_TIME = 2, /* the event time of a source view's row (event_time(v)) */
} catalog_input_kind_t;

typedef struct catalog_input {
    catalog_input_kind_t kind;
    const catalog_view_t *view;             /* FEATURE, EVENT_TIME */
    const catalog_feature_t *feature;       /* FEATURE */
    const catalog_request_source_t *source; /* REQUEST */
    const catalog_request_field_t *field;   /* REQUEST */
} catalog_input_t;

typedef struct catalog_on_demand {
    const catalog_view_t *const *views; /* feature view sources (stored views), in source order */
    size_t n_views;
    const catalog_request_source_t *const *requests; /* request sources, in source order */
    size_t n_requests;
    const catalog_input_t *inputs; /* every input any of its features reads, once each */
    size_t n_inputs;
} catalog_on_demand_t;

/*
 * The inputs on-demand feature f reads, as indexes into its view's on_demand->inputs (in
 * ascending order). f must be an on-demand feature (f->expr != NULL).
 */
void catalog_expr_inputs(const catalog_feature_t *f, const uint32_t **idx, size_t *n);

/*
 * Evaluates on-demand feature f for one row. in[i] is the value of input i of f's view
 * (on_demand->inputs[i]): a feature's or a request field's value of its declared type, or an
 * event time as UNIX_TIMESTAMP seconds; CATALOG_DTYPE_NULL for no value. Only the inputs f reads
 * are looked at. now_us (CLOCK_REALTIME microseconds) is what now() means. The code is flat
 * (no tree walk, no allocation per node): strings built by lower/upper/concat go into a, at
 * most max_bytes of them (SIZE_MAX: no bound), and *made (may be NULL) says how many.
 * Arithmetic faults (overflow, division by zero, log of a negative, a result that is not finite
 * from finite inputs) give null, never a signal; an index out of range gives get()'s default
 * (null for l[i]). An input of another type than declared counts as null, but for an INT32 given
 * for an INT64.
 * Returns: 0 and *out, of f->dtype or CATALOG_DTYPE_NULL; -EMSGSIZE (strings over max_bytes);
 *          -ENOMEM.
 * Ownership: *out borrows from in, the catalog and a.
 */
int catalog_expr_eval(const catalog_feature_t *f, const catalog_value_t *in, int64_t now_us,
                      base_arena_t *a, size_t max_bytes, size_t *made, catalog_value_t *out);

/* Whether d converts to a FLOAT without leaving its range (it rounds to FLT_MAX at most). NaN
 * and infinities fit: they stay what they are. */
bool catalog_double_fits_float(double d);

typedef struct catalog_service {
    const char *name;
    const char *description;
    const catalog_feature_ref_t *features; /* in reference order, `view:*` expanded */
    size_t n_features;
} catalog_service_t;

typedef struct catalog_entity_input {
    const char *input;    /* Predict input tensor name */
    const char *join_key; /* join key it carries */
} catalog_entity_input_t;

typedef enum catalog_on_missing {
    CATALOG_ON_MISSING_ERROR = 0, /* a missing value with no default fails the call */
    CATALOG_ON_MISSING_ZERO = 1,  /* ... or is filled with zero / "" / false */
} catalog_on_missing_t;

typedef struct catalog_upstream {
    const char *target;         /* host:port */
    const char *model_name;     /* defaults to the binding's name */
    const char *signature_name; /* "" = upstream default */
    uint32_t timeout_ms;        /* 0 = caller's deadline only */
    bool keep_entity_inputs;    /* pass the entity inputs on (default true) */
    bool tls;                   /* TLS to target (serve --upstream-tls-*); default false */
} catalog_upstream_t;

typedef struct catalog_model {
    const char *name;
    int64_t version;           /* >= 1; 1 when the binding only has a version_label */
    const char *version_label; /* "" when absent */
    const catalog_service_t *service;
    const catalog_entity_input_t *entity_inputs;
    size_t n_entity_inputs;
    catalog_on_missing_t on_missing;
    bool has_upstream;
    catalog_upstream_t upstream; /* valid when has_upstream */
} catalog_model_t;

/* ------------------------------------------------------------------------------------------ */
/* Loading and errors                                                                          */

/* One problem found in a catalog source. */
typedef struct catalog_error {
    char file[256];
    int line;          /* 1-based; 0 when not tied to a place */
    int column;        /* 1-based; 0 when not tied to a place */
    char key[128];     /* the key or path at fault, e.g. "feature_views[1].features[0].dtype" */
    char message[320]; /* what is wrong and what was expected */
} catalog_error_t;

typedef struct catalog_errors {
    catalog_error_t *items;
    size_t count;
} catalog_errors_t;

/* Frees the items of errs (not errs itself) and zeroes it. Accepts NULL. */
void catalog_errors_clear(catalog_errors_t *errs);

/*
 * Loads a catalog from a YAML file or from a directory whose *.yaml / *.yml files (sorted by
 * name, not recursive) are merged as one catalog.
 * Returns: 0 and *out; -EINVAL when the catalog has mistakes (every one is appended to *errs when
 *          errs is not NULL); -ENOENT / -EACCES / -EIO for files that cannot be read (also
 *          described in *errs); -ENOMEM.
 * Ownership: *out holds one reference, released with catalog_unref(). *errs is the caller's to
 *            clear with catalog_errors_clear().
 */
int catalog_load(const char *path, catalog_t **out, catalog_errors_t *errs);

/* As catalog_load(), from YAML text in memory; `name` stands for the file name in errors. */
int catalog_load_string(const char *yaml, size_t len, const char *name, catalog_t **out,
                        catalog_errors_t *errs);

/* Takes another reference. Thread safety: atomic; safe from any thread. Returns: c. */
catalog_t *catalog_ref(catalog_t *c);
/* Drops a reference; the last one frees the catalog. Accepts NULL. Thread safety: atomic. */
void catalog_unref(catalog_t *c);

/*
 * Canonical YAML for c: one document that catalog_load_string() reads back into an equal
 * catalog (used to record the applied catalog in a data directory and by GetCatalog).
 * Returns: 0, -ENOMEM. Ownership: *out is malloc'd, the caller frees it; *len excludes the NUL.
 */
int catalog_dump_yaml(const catalog_t *c, char **out, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* Lookups. All O(1) (hash indexes built at load) and safe from any thread.                     */

const char *catalog_project(const catalog_t *c);
/* A short stable fingerprint of the catalog's content (hex), for logs and health output. */
const char *catalog_digest(const catalog_t *c);

size_t catalog_entity_count(const catalog_t *c);
const catalog_entity_t *catalog_entity_at(const catalog_t *c, size_t i);
size_t catalog_view_count(const catalog_t *c); /* every version of every stored view
                                                 (on-demand: catalog_on_demand_count()) */
const catalog_view_t *catalog_view_at(const catalog_t *c, size_t i);
size_t catalog_service_count(const catalog_t *c);
const catalog_service_t *catalog_service_at(const catalog_t *c, size_t i);
size_t catalog_model_count(const catalog_t *c);
const catalog_model_t *catalog_model_at(const catalog_t *c, size_t i);

/* On-demand feature views (every version), sorted by name and version; catalog_view_at() lists
 * stored views only. */
size_t catalog_on_demand_count(const catalog_t *c);
const catalog_view_t *catalog_on_demand_at(const catalog_t *c, size_t i);
size_t catalog_request_source_count(const catalog_t *c);
const catalog_request_source_t *catalog_request_source_at(const catalog_t *c, size_t i);

/* version 0 = the default version. Stored and on-demand views alike. Returns: 0, -ENOENT. */
int catalog_find_view(const catalog_t *c, const char *name, uint32_t version,
                      const catalog_view_t **out);
/*
 * Resolves "view:feature" or "view@v2:feature" (len bytes, not necessarily NUL-terminated).
 * Returns: 0; -EINVAL for a malformed reference; -ENOENT when the view, version or feature does
 *          not exist.
 */
int catalog_find_feature(const catalog_t *c, const char *ref, size_t len,
                         catalog_feature_ref_t *out);
/* Parses "name" or "name@vN" into a view. Returns: 0, -EINVAL (malformed), -ENOENT. */
int catalog_find_view_ref(const catalog_t *c, const char *ref, const catalog_view_t **out);
int catalog_find_service(const catalog_t *c, const char *name, const catalog_service_t **out);
int catalog_find_entity(const catalog_t *c, const char *name, const catalog_entity_t **out);

/* What a lookup that failed looked for, for catalog_describe_missing(). */
typedef enum catalog_name_kind {
    CATALOG_NAME_VIEW,    /* a feature view (versions listed once, by name) */
    CATALOG_NAME_FEATURE, /* a feature of one view version */
    CATALOG_NAME_SERVICE, /* a feature service */
} catalog_name_kind_t;
/*
 * Help for a name that was not found, as validate gives it: " (did you mean 'x'?)" when one
 * name of that kind is close (a typo or a clipped word), then what exists: "; feature views: a,
 * b, c" ("feature services", or the view's: "its features"; at most 12 names, then "and N
 * more"; "none" for none). A view asked for as "name@vN" whose name exists gets "; its
 * versions: v1, v2" instead. view: the view
 * whose features are meant (CATALOG_NAME_FEATURE only; NULL otherwise). Writes at most cap
 * bytes, always NUL-terminated (truncated on the right).
 */
void catalog_describe_missing(const catalog_t *c, catalog_name_kind_t kind,
                              const catalog_view_t *view, const char *name, char *buf, size_t cap);
/*
 * A model binding by name and version (0 = highest) or label (NULL or "" = none; label wins).
 * Returns: 0, -ENOENT.
 */
int catalog_find_model(const catalog_t *c, const char *name, int64_t version, const char *label,
                       const catalog_model_t **out);

/*
 * A value of type want from JSON (a jansson json_t): null is an explicit null; numbers for the
 * numeric types (integral ones whole and in range; a whole real counts), strings for STRING,
 * standard base64 strings for BYTES, true/false for BOOL, seconds or RFC 3339 strings for
 * UNIX_TIMESTAMP, arrays of the element type for lists (no nulls inside). want
 * CATALOG_DTYPE_INVALID takes the JSON's own type (integer -> INT64, real -> DOUBLE, string ->
 * STRING, bool -> BOOL), as Feast types entity values. CATALOG_JSON_TEXT also takes what files
 * written by other tools hold: numbers and times as strings, BYTES as raw text or as "b64:"
 * base64 of either alphabet, padding optional.
 * Returns: 0 and *out (strings point into j, decoded bytes and list items into a); -EINVAL with
 *          the reason in why ("item 2: want a number for FLOAT, got a string"); -ENOMEM.
 */
#define CATALOG_JSON_TEXT 1u
struct json_t;
/* BYTES as files written by other tools hold them: the text itself, or base64 of either
 * alphabet (padding optional) after "b64:". Returns: 0 and *out (the text, or decoded into a);
 * -EINVAL (bad base64); -ENOMEM. */
int catalog_bytes_from_text(const char *s, size_t n, base_arena_t *a, catalog_bytes_t *out);
int catalog_value_from_json(const struct json_t *j, catalog_dtype_t want, unsigned flags,
                            base_arena_t *a, catalog_value_t *out, char *why, size_t why_cap);

/*
 * Checks one value against a feature's dtype and validation rules. A NULL value passes unless
 * the feature is not_null. INT32 values are accepted for INT64 features (widened by the caller),
 * nothing else is coerced. f must come from a loaded catalog (its pattern was compiled at load:
 * a hand-built catalog_feature_t may use every rule except pattern).
 * Returns: 0, or -EINVAL with the rule at fault written to why ("max: 12.5 > 10", "dtype: got
 *          STRING, want INT64", "pattern", "not_null", ...), NUL-terminated.
 */
int catalog_validate_value(const catalog_feature_t *f, const catalog_value_t *v, char *why,
                           size_t why_cap);

/*
 * Whether catalog_validate_value() can refuse a non-null value of f's own dtype: false when
 * no rule applies to such values (a number without min, max or allowed_values), so a caller
 * that has typed a value as f->dtype itself may skip the call (bulk loads do, per cell).
 * Nulls are another matter (not_null): they always go through catalog_validate_value().
 */
bool catalog_feature_has_rules(const catalog_feature_t *f);

/* Parses "90s", "15m", "24h", "7d", "0". Returns: 0 and seconds, -EINVAL. */
int catalog_parse_duration(const char *s, int64_t *seconds);

/* ------------------------------------------------------------------------------------------ */
/* Plans: what changes between two catalogs                                                     */

typedef enum catalog_change_kind {
    CATALOG_CHANGE_ADDED,
    CATALOG_CHANGE_REMOVED,
    CATALOG_CHANGE_CHANGED,
} catalog_change_kind_t;

typedef struct catalog_change {
    catalog_change_kind_t kind;
    bool breaking;    /* false = safe */
    char object[200]; /* "feature_view driver_hourly_stats@v2", "feature ...@v1:conv_rate" */
    char detail[320]; /* what changed, and for a breaking change why and what to do instead */
} catalog_change_t;

typedef struct catalog_plan {
    catalog_change_t *items;
    size_t count;
    size_t n_breaking;
} catalog_plan_t;

/*
 * Diffs two catalogs (from may be NULL: everything is added). Safe: a new view, a new version, a
 * new feature appended to a version, metadata (description, owner, tags, lineage, ttl, validation
 * widened), new or changed services and models. Breaking: a dtype changed, an entity changed, or
 * a feature removed inside an existing version; removing a whole view version is also reported
 * as breaking (it drops data). Removing a service or a model binding, and renaming the project,
 * are reported as breaking too (callers relying on them get NOT_FOUND). Reordering features is
 * safe: stored rows map features by name.
 * Returns: 0, -ENOMEM. Ownership: *out is the caller's to free with catalog_plan_clear().
 */
int catalog_plan(const catalog_t *from, const catalog_t *to, catalog_plan_t *out);
void catalog_plan_clear(catalog_plan_t *plan);

#endif /* CATALOG_CATALOG_H */
