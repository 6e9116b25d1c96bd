/* upstream/upstream.h - model servers behind a binding: their gRPC channels and Predict calls. */
#ifndef UPSTREAM_UPSTREAM_H
#define UPSTREAM_UPSTREAM_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"
#include "catalog/catalog.h"
#include "core/core.h"

#include "tensorflow_serving/apis/predict.pb-c.h"

/*
 * A model binding with an upstream sends its features on to a TF Serving-compatible model server
 * (TF Serving's Predict over gRPC) and answers what that server answers. Every front door does
 * this the same way: the gRPC server (Predict) and the HTTP front door (TF Serving REST,
 * SageMaker's /invocations) build the request with upstream_request() and run it through a pool
 * of channels, one per target for the pool's life.
 *
 * Two ways to run a call: on the caller's completion queue with a tag (the gRPC server, whose
 * worker threads already drive one), or on the pool's own queue and thread with a callback (the
 * HTTP front door, whose request waits suspended, holding no thread).
 */

typedef struct upstream_pool upstream_pool_t;

/* TLS to the model servers of bindings that say `tls: true` (serve --upstream-tls-ca, -cert,
 * -key): PEM files, each NULL when not given. ca_file: the CAs their certificates must chain to
 * (NULL: gRPC's default roots); cert_file and key_file: this node's certificate chain and key,
 * for servers that require a client certificate (both or neither). From the first TLS channel
 * on, the pool reads them again every UPSTREAM_TLS_REFRESH_S seconds (gRPC's file watcher), so
 * a rotated certificate, key or CA is used from the next connection on, with no restart;
 * connections already open keep theirs. A file that becomes unreadable is logged by gRPC and
 * the channels keep its last good contents (a channel to a target first used meanwhile fails
 * until the file is readable again); a key that is not (yet) its certificate's fails
 * handshakes until the pair matches again. gRPC keeps its own copies of the key in memory. */
typedef struct upstream_tls {
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
} upstream_tls_t;

#define UPSTREAM_TLS_REFRESH_S 2

/* Returns: 0 and *out, -ENOMEM, -EINVAL (a certificate without its key or a key without its
 * certificate). Requests and responses over max_bytes (the front door's
 * --max-response-bytes: the upstream's answer becomes its answer) are refused by gRPC. tls may
 * be NULL (no options: default roots, no client certificate); the pool keeps copies of the
 * paths. Ownership: the caller frees *out with upstream_pool_free(). */
int upstream_pool_new(size_t max_bytes, const upstream_tls_t *tls, upstream_pool_t **out);

/* Refuses new calls on the pool's own thread (-ECANCELED), cancels those in flight and waits
 * until their callbacks have returned. For a front door that stops: close, stop taking
 * requests, then free. Accepts NULL. */
void upstream_pool_close(upstream_pool_t *u);

/* Closes (upstream_pool_close()), stops the pool's thread and destroys every channel. Calls on
 * callers' queues must have ended. Accepts NULL. */
void upstream_pool_free(upstream_pool_t *u);

typedef struct upstream_call upstream_call_t;

/* The callback of a call on the pool's thread: ok is the batch's success; pass both to
 * upstream_finish(). It runs on the pool's thread and must not block. */
typedef void (*upstream_done_fn)(void *arg, upstream_call_t *uc, bool ok);

/* One Predict in flight; the caller provides its memory (a request arena) until it ends. */
struct upstream_call {
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    char *target; /* copies, for messages after the catalog is unpinned */
    char *model;
    bool timeout_first; /* the binding's timeout_ms ends before the caller's deadline */
    /* calls on the pool's thread */
    upstream_pool_t *pool;
    upstream_done_fn done;
    void *arg;
    upstream_call_t *prev, *next;
    bool listed; /* on the pool's list: its completion not yet taken (under the pool's lock) */
};

/*
 * Starts Predict(request) on up->target. request is a packed PredictRequest; the reference is
 * taken, whatever the result. The call's deadline is the earlier of up->timeout_ms and
 * caller_deadline (gpr_inf_future: none).
 *   cq != NULL: the call is a child of parent (GRPC_PROPAGATE_DEFAULTS: the parent's deadline
 *               and cancellation reach it; parent may be NULL) and completes on cq with tag.
 *   cq == NULL: it runs on the pool's own queue; done(arg, uc, ok) is called once on the pool's
 *               thread (also when the pool is freed first: the call is cancelled).
 * Returns: 0 (a completion will come); -ENOMEM, -EIO, or -ECANCELED (the pool is closed), with
 *          why set (nothing in flight).
 */
int upstream_start(upstream_pool_t *u, const catalog_upstream_t *up, grpc_slice request,
                   gpr_timespec caller_deadline, grpc_call *parent, grpc_completion_queue *cq,
                   void *tag, upstream_done_fn done, void *arg, upstream_call_t *uc, char *why,
                   size_t why_cap);

/*
 * Asks gRPC to cancel a call started on the pool's own queue (cq NULL) whose completion the
 * pool's thread has not taken yet: its done then sees the call end CANCELLED, unless it had
 * already ended (gRPC then keeps its real status). uc's memory must be live, as it is until its
 * done returns. Thread-safe.
 * Returns: 0 (cancellation asked for); -EALREADY when its completion was already taken (done
 * runs or ran).
 */
int upstream_cancel(upstream_pool_t *u, upstream_call_t *uc);

/*
 * Ends uc after its completion and releases what it holds.
 * Returns: 0 and *resp (the upstream's response bytes, as sent; unref it); -EREMOTEIO when the
 *          upstream answered with an error: uc->status holds its status (UNAVAILABLE when it
 *          could not be reached, DEADLINE_EXCEEDED when it was too slow) and why names the
 *          upstream; -EPROTO when it answered OK without a readable response; -EIO when the
 *          batch itself failed.
 */
int upstream_finish(upstream_call_t *uc, bool ok, grpc_slice *resp, char *why, size_t why_cap);

/*
 * The upstream's request for a Predict that has read its features (core_predict_read(); before
 * core_read_end(): strings point into the cells): the caller's inputs (the binding's entity
 * inputs only with keep_entity_inputs) plus one input per feature (features[i] is the tensor of
 * p->names[i], all of p->outs), for the binding's upstream model and signature (the binding's,
 * else signature_name). max_bytes bounds the packed size.
 * Returns: 0 and *out (a new slice); -EINVAL when a caller's input has a feature's name;
 *          -EMSGSIZE over max_bytes; -ENOMEM. why says which.
 */
int upstream_request(const core_predict_t *p, Tensorflow__TensorProto *const *inputs,
                     const char *const *input_names, size_t n_inputs,
                     Tensorflow__TensorProto *features, const char *signature_name,
                     char *const *output_filter, size_t n_output_filter, size_t max_bytes,
                     base_arena_t *a, grpc_slice *out, char *why, size_t why_cap);

#endif /* UPSTREAM_UPSTREAM_H */
