/* codec/codec.h - the protobuf half of the gRPC transport: Feast and TF Serving messages <-> core.
 */
#ifndef CODEC_CODEC_H
#define CODEC_CODEC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "catalog/catalog.h"
#include "core/core.h"

#include "feast/types/Value.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"
#include "tensorflow/core/framework/tensor.pb-c.h"

/*
 * Every gRPC method is decode -> core -> encode; this module is the decode and the encode,
 * with no call, queue or channel in sight, so the fuzzers and unit tests drive it directly. The
 * hot paths are written by hand against the wire format (a GetOnlineFeaturesRequest in its usual
 * shape, the GetOnlineFeaturesResponse, Predict's features-only PredictResponse) and are held to
 * byte-for-byte agreement with protobuf-c, which decodes and encodes everything else.
 *
 * Errors are the core's: a negative errno with the request's message set (core_fail()).
 * Ownership: whatever a function builds lives in the arena it is given.
 */

/* ------------------------------------------------------------------------------------------ */
/* Unpacking                                                                                   */

/* Fills *out with a protobuf-c allocator drawing from a (its free is a no-op: the arena goes
 * at once), for __unpack(). Returns: out. */
ProtobufCAllocator *codec_allocator(base_arena_t *a, ProtobufCAllocator *out);

/*
 * Every method's first step: checks the strings of a request of type d in buf
 * (codec_check_strings()), merges a singular message field given twice as protobuf does
 * (codec_merge_messages()), and unpacks it into ctx's arena.
 * Returns: 0 and *out (in the arena); -EINVAL with the message set ("malformed <Message>" or
 *          "malformed <Message>: <why>").
 */
int codec_unpack(core_ctx_t *ctx, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                 size_t len, ProtobufCMessage **out);

/*
 * Rewrites the message d encoded in buf (len bytes) so that every singular message field, at any
 * depth, occurs once and holds what protobuf merges from all of its occurrences (a oneof member's
 * since another member of its oneof was given); everything else is kept as it was. protobuf-c
 * keeps only a oneof member's last occurrence, so codec_unpack() does this first when the walk
 * finds such a field given twice. Call it on a message codec_check_strings() accepts.
 * Returns: 0 and *out (in a) and *out_len (never more than len); -ENOMEM; -EINVAL when buf is
 *          malformed.
 */
int codec_merge_messages(base_arena_t *a, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                         size_t len, const uint8_t **out, size_t *out_len);

/* Whether codec_unpack() would merge: the message d in buf passes codec_check_strings() and
 * holds some singular message field twice, at any depth. */
bool codec_needs_merge(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len);

/*
 * Checks every string field of the message d encoded in buf (len bytes), at any depth: it must be
 * UTF-8 without a NUL byte. protobuf-c checks neither and hands strings over NUL-terminated, so a
 * NUL inside would silently shorten the string (another entity's key, a cut value). Call it on a
 * request that unpacked as d.
 * Returns: 0; -EINVAL with the field named in why ("feast.types.Value.string_val contains a NUL
 *          byte").
 */
int codec_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        char *why, size_t why_cap);

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                      */

/*
 * Converts an unpacked feast.types.Value into a catalog value (NOT_SET and null_val give a NULL
 * value). Lists are copied into the arena where the layouts differ (bool, bytes, strings).
 * Returns: 0; -EINVAL for a Value of a type fstore does not know (Feast fields 20 and up), with
 *          a description in why; -ENOMEM.
 */
int codec_value_from_pb(const Feast__Types__Value *pb, base_arena_t *a, catalog_value_t *out,
                        char *why, size_t why_cap);
/* The reverse, for catalog defaults and allowed values: *out points into v and the arena.
 * Returns: 0, -ENOMEM. */
int codec_value_to_pb(const catalog_value_t *v, base_arena_t *a, Feast__Types__Value *out);
/* Microseconds since the epoch as google.protobuf.Timestamp's seconds and nanos (nanos never
 * negative: a time before the epoch borrows a second). */
void codec_ts_split(int64_t us, int64_t *sec, int32_t *nanos);

/*
 * Converts map entries (keys[i] -> vals[i]) into columns. The shape is checked first, by
 * core_columns_shape(), before any value is looked at, so an oversized request costs no more
 * than its unpack. Then every value must have a known type. `what` names the columns in
 * messages ("entity", "write", "delete").
 * Returns: 0; -E2BIG (a limit), -EINVAL or -ENOMEM, with the message set.
 */
int codec_columns_from_pb(core_ctx_t *ctx, const char *what, size_t n, const char *const *keys,
                          Feast__Types__RepeatedValue *const *vals,
                          const core_columns_limits_t *lim, core_columns_t *out);

/*
 * Event times (google.protobuf.Timestamp) as microseconds since the epoch: out[i] for ts[i]; a
 * zero Timestamp means now (when zero_is_now, else the epoch). what names the list in messages
 * ("event_timestamps").
 * Returns: 0; -EINVAL with the message set (nanos out of range, a time outside years 1 to
 *          9999, google.protobuf.Timestamp's own range, which also keeps it in an int64).
 */
int codec_ts_from_pb(core_ctx_t *ctx, const char *what, Google__Protobuf__Timestamp *const *ts,
                     size_t n, bool zero_is_now, int64_t now, int64_t *out);

/*
 * A feature list from a request's oneof: service (non-NULL: by name) or features, as
 * core_resolve() takes it, with the key the hand decoder would have noted for the same
 * references (their minimal encoding), so either decoder finds what the other cached.
 * Returns: 0 and *out (in a); -ENOMEM.
 */
int codec_feature_list_from_pb(base_arena_t *a, const char *service,
                               const Feast__Serving__FeatureList *features, bool full_names,
                               core_feature_list_t *out);

/* ------------------------------------------------------------------------------------------ */
/* GetOnlineFeaturesRequest, decoded by hand in its usual shape (feast_decode.c)               */

typedef struct codec_wire {
    const uint8_t *data;
    size_t len;
} codec_wire_t;

/* One entity column of a read as sent: a map entry of the request. */
typedef struct codec_read_column {
    const char *name; /* NUL-terminated, in the arena */
    size_t n_vals;
    const catalog_value_t *vals; /* [n_vals]; strings and bytes point into the request */
    const codec_wire_t *wire;    /* [n_vals]: each feast.types.Value body as sent */
} codec_read_column_t;

typedef struct codec_read_request {
    /* kind, service, key (the features field's body, as sent), parse, full_names; refs once
     * codec_feast_decode_features() has run */
    core_feature_list_t list;
    size_t n_entities;
    codec_read_column_t *entities; /* map entries in request order (repeats kept) */
    size_t n_request;
    codec_read_column_t *request; /* request_context entries, likewise (DOUBLE, FLOAT, BOOL too) */
    bool include_md;              /* include_feature_view_version_metadata */
} codec_read_request_t;

/*
 * Decodes a GetOnlineFeaturesRequest when it has the usual shape: at most one of
 * feature_service and features, entity values of type INT64, INT32, STRING or BYTES,
 * request_context values of those types or DOUBLE, FLOAT or BOOL, nothing else but the two flags,
 * every string NUL-free UTF-8 and every encoding minimal. Such a request decodes exactly as
 * protobuf-c decodes it, and each Value body packs back to the bytes sent. In two steps:
 * codec_feast_decode_read() reads everything but the references of a feature list, of which it only
 * notes the bytes (list.key, which is the list's core_list_key()), and
 * codec_feast_decode_features() reads those when core_resolve() needs them (a list the worker
 * has resolved before it recognises by its bytes, which one accepted list has exactly one of).
 * The request has the usual shape when both accept it.
 * Returns: 0 and *out (pointing into buf and the arena); 1 when the request is anything else
 *          (decode it with protobuf-c: it may still be valid); -ENOMEM. On 1 and -ENOMEM *out is
 *          left partly written: discard it. The two bool flags may be non-minimal varints (they
 *          are not echoed back).
 */
int codec_feast_decode_read(base_arena_t *a, const uint8_t *buf, size_t len,
                            codec_read_request_t *out);
/* The second step, a core_feature_list_t parse: reads l->key into l->n_refs, refs and ref_lens
 * (pointing into l->key, so valid as long as it is).
 * Returns: 0; CORE_DECLINED (1) when the list is not of the usual shape; -ENOMEM. */
int codec_feast_decode_features(base_arena_t *a, core_feature_list_t *l);

/* ------------------------------------------------------------------------------------------ */
/* GetOnlineFeaturesResponse, written by hand (feast_encode.c)                                 */

typedef struct codec_feast_column {
    const char *name;
    size_t name_len;
    const core_cell_t *cells; /* [n_rows] */
} codec_feast_column_t;

typedef struct codec_feast_response {
    size_t n_rows;
    size_t n_cols;
    const codec_feast_column_t *cols; /* join keys first, then features */
    size_t n_views;                   /* feature_view_metadata; 0 = none */
    const core_view_md_t *views;
    bool status;
    /* Optional: the metadata.feature_names entries of the last n_names_pre columns, already
     * encoded (base_wire_strings(), the gRPC workers' core_names_fn: a response's feature names
     * depend on its feature list alone, so they are encoded once per list and cached); those
     * columns' names are then not read. */
    const uint8_t *names_pre;
    size_t names_pre_len;
    size_t n_names_pre;
} codec_feast_response_t;

/* What the measuring pass found about one column (one FeatureVector), for the writing pass. */
typedef struct codec_feast_vec {
    size_t size;    /* the FeatureVector's body */
    size_t ts_len;  /* its event_timestamps entries */
    bool ts_repeat; /* the same timestamps as the previous column, row by row */
} codec_feast_vec_t;

/*
 * Two passes: codec_feast_size() measures (filling vecs[n_cols]) and codec_feast_write() writes
 * exactly that many bytes into out, given the same r and vecs. Cell values are copied as they
 * are, never decoded.
 * Returns: the encoded size / the number of bytes written.
 */
size_t codec_feast_size(const codec_feast_response_t *r, codec_feast_vec_t *vecs);
size_t codec_feast_write(const codec_feast_response_t *r, const codec_feast_vec_t *vecs,
                         uint8_t *out);

/* ------------------------------------------------------------------------------------------ */
/* Predict: TensorFlow tensors (tensor.c) and the PredictResponse (predict_encode.c)           */

/* Returns: the TensorFlow DataType of a feature of type t (of its element for lists), or
 * TENSORFLOW__DATA_TYPE__DT_INVALID for a type with no tensor form (NULL, INVALID). */
Tensorflow__DataType codec_tensor_dtype(catalog_dtype_t t);

/*
 * Reads an entity input tensor as join-key values of type want (INT64, INT32, STRING or BYTES;
 * INVALID: as the tensor's own type says, STRING for DT_STRING, else INT64). Accepted: shape
 * [batch] or [batch, 1]; DT_INT64 or DT_INT32 for integer keys, DT_STRING for string and bytes
 * keys; typed values (packed or not) or little-endian tensor_content for the integer types.
 * Exactly batch values are required.
 * Returns: 0, *vals (batch values in the arena, strings borrowed from t) and *batch; -EINVAL with
 *          the reason in why; -ENOMEM.
 */
int codec_tensor_to_keys(const Tensorflow__TensorProto *t, catalog_dtype_t want, base_arena_t *a,
                         catalog_value_t **vals, size_t *batch, char *why, size_t why_cap);
/*
 * Reads a request-data input tensor (a request source's field sent to Predict) as its own type
 * says: DT_INT64/DT_INT32 as INT64, DT_FLOAT, DT_DOUBLE, DT_BOOL, DT_STRING as STRING; shape
 * [batch] or [batch, 1], typed values or tensor_content. The core converts them to the field's
 * type. Returns: as codec_tensor_to_keys().
 */
int codec_tensor_to_values(const Tensorflow__TensorProto *t, base_arena_t *a,
                           catalog_value_t **vals, size_t *batch, char *why, size_t why_cap);

/* A core tensor as a TensorProto: dtype, shape and the typed field; numeric arrays are shared
 * with t, bools and strings copied into the arena. Returns: 0, -ENOMEM. */
int codec_tensor_from_core(const core_tensor_t *t, base_arena_t *a, Tensorflow__TensorProto *out);

/*
 * Predict's response without an upstream, written by hand: the outputs map in the order given,
 * then model_spec. The bytes are those protobuf-c packs for the same PredictResponse
 * (tests/codec/test_predict_encode.c holds them to it).
 */
typedef struct codec_predict_response {
    size_t n_outputs;
    const char *const *names;               /* [n_outputs] map keys */
    const size_t *name_lens;                /* [n_outputs] */
    const Tensorflow__TensorProto *tensors; /* [n_outputs] map values */
    const char *model_name;                 /* model_spec.name; "" leaves it out */
    bool has_version;                       /* model_spec.version is set ... */
    int64_t version;                        /* ... to this value */
    const char *signature_name;             /* model_spec.signature_name; "" leaves it out */
} codec_predict_response_t;

/* What the measuring pass found about one tensor, for the writing pass. */
typedef struct codec_predict_sizes {
    size_t tensor; /* the TensorProto's body */
    size_t shape;  /* its tensor_shape's body */
    size_t ints;   /* the packed int_val, int64_val and half_val payloads */
    size_t int64s;
    size_t half;
} codec_predict_sizes_t;

/*
 * Two passes: codec_predict_size() measures (filling sizes[n_outputs]) and codec_predict_write()
 * writes exactly that many bytes into out, given the same r and sizes.
 * Returns: the encoded size / the number of bytes written.
 */
size_t codec_predict_size(const codec_predict_response_t *r, codec_predict_sizes_t *sizes);
size_t codec_predict_write(const codec_predict_response_t *r, const codec_predict_sizes_t *sizes,
                           uint8_t *out);

/* ------------------------------------------------------------------------------------------ */
/* The catalog (catalog_pb.c)                                                                  */

/* Fills every field of *out (initialised by the caller) but yaml from cat: entities, views with
 * their features and validation, services, models. Strings point into cat.
 * Returns: 0, -ENOMEM. */
int codec_catalog_to_pb(const catalog_t *cat, base_arena_t *a, Fstore__V1__GetCatalogResponse *out);

#endif /* CODEC_CODEC_H */
