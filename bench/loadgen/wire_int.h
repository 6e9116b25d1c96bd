/* bench/loadgen/wire_int.h - protobuf wire encoding of the benchmark's requests and checks. */
#ifndef BENCH_LOADGEN_WIRE_INT_H
#define BENCH_LOADGEN_WIRE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The load generator encodes its few request shapes by hand rather than through protobuf-c: the
 * fixed parts of a request are encoded once (a template) and each call adds only its ids, and
 * response checks walk the bytes without allocating, so the generator stays cheap on a machine it
 * shares with the server. Field numbers follow protos/feast/serving/ServingService.proto,
 * protos/feast/types/Value.proto and protos/fstore/v1/fstore.proto.
 */

/* A growable byte buffer. */
typedef struct wbuf {
    uint8_t *data;
    size_t len, cap;
    bool oom; /* an allocation failed: the contents are incomplete */
} wbuf_t;

void wbuf_free(wbuf_t *b);
void wbuf_varint(wbuf_t *b, uint64_t v);
void wbuf_tag(wbuf_t *b, uint32_t field, uint32_t wire_type);
void wbuf_bytes(wbuf_t *b, uint32_t field, const void *data, size_t len); /* length-delimited */
void wbuf_raw(wbuf_t *b, const void *data, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* The benchmark dataset: names and values are functions of (view, feature, entity id)         */

/* Feature j of every generated view is INT64 when j is even and DOUBLE when odd. */
bool bench_feature_is_int(uint32_t feature);
int64_t bench_int_value(uint32_t view, uint32_t feature, int64_t id);
double bench_double_value(uint32_t view, uint32_t feature, int64_t id);
/* The feast.types.Value wire bytes of a generated value; returns the length (<= 10). */
size_t bench_value_wire(uint32_t view, uint32_t feature, int64_t id, uint8_t out[16]);

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

/* A feast.serving.GetOnlineFeaturesRequest: features by list or by service, INT64 entity ids. */
typedef struct wire_get_spec {
    const char *feature_service; /* non-NULL: by service, features ignored */
    char *const *features;       /* "view:feature" references */
    size_t n_features;
    const char *join_key;
    bool full_feature_names;
    /* request_context: one DOUBLE field, the same value for every row (NULL: none) */
    const char *request_field;
    double request_value;
} wire_get_spec_t;

/* Appends the request for ids[0..n) to out. Returns: 0, -ENOMEM. */
int wire_get_request(const wire_get_spec_t *spec, const int64_t *ids, size_t n, wbuf_t *out);

/*
 * A fstore.v1.WriteFeaturesRequest for view view_name (generated index view_index) with
 * n_features generated features "f0".."f<n-1>" for ids[0..n), event time event_s seconds.
 * Returns: 0, -ENOMEM.
 */
int wire_write_request(const char *view_name, uint32_t view_index, const char *join_key,
                       uint32_t n_features, const int64_t *ids, size_t n, int64_t event_s,
                       wbuf_t *out);

/*
 * A tensorflow.serving.PredictRequest for model binding `model` with one INT64 entity input
 * tensor `input` of shape [n] holding ids. Returns: 0, -ENOMEM.
 */
int wire_predict_request(const char *model, const char *input, const int64_t *ids, size_t n,
                         wbuf_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Per-call requests                                                                           */

/*
 * One request shape whose only varying part is its n entity ids. The template holds everything
 * else pre-encoded (the feature list or service, the model spec and tensor shape, the view and
 * feature names), so encoding one call costs a few varints per id (for writes, also one
 * generated value per id and feature): cheap enough to draw fresh ids for every call.
 * wire_tmpl_encode() writes exactly the bytes that wire_get_request(), wire_predict_request() or
 * wire_write_request() would write for the same ids.
 */
typedef struct wire_tmpl wire_tmpl_t;

/*
 * Create the template of a GetOnlineFeatures, Predict or WriteFeatures request for n ids, with
 * the other arguments of the matching wire_*_request(). Returns: 0, -EINVAL (n == 0), -ENOMEM.
 * Ownership: *out is the caller's, released with wire_tmpl_free(); the arguments are copied.
 */
int wire_tmpl_get(const wire_get_spec_t *spec, size_t n, wire_tmpl_t **out);
int wire_tmpl_predict(const char *model, const char *input, size_t n, wire_tmpl_t **out);
int wire_tmpl_write(const char *view_name, uint32_t view_index, const char *join_key,
                    uint32_t n_features, size_t n, int64_t event_s, wire_tmpl_t **out);
/* Accepts NULL. */
void wire_tmpl_free(wire_tmpl_t *t);

/*
 * Appends the request for ids[0..n) (n as created) to out. Returns: 0, -ENOMEM.
 * Thread safety: t is only read; any number of threads may encode with one template.
 */
int wire_tmpl_encode(const wire_tmpl_t *t, const int64_t *ids, wbuf_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Response checks                                                                             */

/* What the checks found, summed over responses. */
typedef struct wire_check {
    uint64_t responses;
    uint64_t status[5];  /* feast.serving.FieldStatus counts: INVALID .. OUTSIDE_MAX_AGE */
    uint64_t values;     /* values seen */
    uint64_t verified;   /* values compared with the generated dataset and equal */
    uint64_t wrong;      /* values compared and different */
    uint64_t bad_shape;  /* a column with the wrong length, or too few columns */
    uint64_t unknown;    /* --verify: columns or tensors whose name says nothing to compare
                            with (neither a generated feature nor the join key) */
    uint64_t malformed;  /* bytes that do not parse */
    uint64_t rows_acked; /* WriteFeatures: rows_written + rows_stale */
} wire_check_t;

void wire_check_merge(wire_check_t *dst, const wire_check_t *src);
/* Returns: the number of problems: non-PRESENT statuses, wrong values, bad shapes, unknown
 * columns, malformed. */
uint64_t wire_check_problems(const wire_check_t *c);

/*
 * Checks one GetOnlineFeaturesResponse for a request of n entities ids[0..n) asking for
 * n_features features: every column has n values and n statuses, and at least n_features
 * columns came back. With verify, columns named "v<V>__f<F>" (or "v<V>:f<F>") are compared with
 * the generated dataset; a join-key column named join_key is compared with ids; a column with
 * any other name (a renamed feature, short feature names) counts in `unknown`, so that a check
 * cannot pass having verified nothing.
 */
void wire_check_get(const uint8_t *buf, size_t len, const int64_t *ids, size_t n, size_t n_features,
                    const char *join_key, bool verify, wire_check_t *c);

/*
 * Checks one PredictResponse for n entities ids[0..n) of a features-only binding of n_features
 * features: at least n_features output tensors, each holding n values. With verify, tensors named
 * "v<V>__f<F>" are compared with the generated dataset and any other tensor counts in `unknown`.
 * A Predict response has no field status:
 * a missing value is either an error status (on_missing: error) or a zero, which --verify
 * catches.
 */
void wire_check_predict(const uint8_t *buf, size_t len, const int64_t *ids, size_t n,
                        size_t n_features, bool verify, wire_check_t *c);

/* Checks one WriteFeaturesResponse: rows_written + rows_stale must be n_rows. */
void wire_check_write(const uint8_t *buf, size_t len, size_t n_rows, wire_check_t *c);

#endif /* BENCH_LOADGEN_WIRE_INT_H */
