/* http/passthrough.c - Predict with an upstream over HTTP: JSON in, the model server's answer out.
 */
#include <errno.h>
#include <grpc/support/time.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

/*
 * A binding with an upstream does over HTTP what gRPC Predict does (upstream/upstream.h): the
 * caller's inputs plus the feature tensors go to the model server, and its outputs come back.
 * Here the caller's inputs are JSON, so they become TensorProtos the way TF Serving's REST API
 * reads them: shape from the nesting of lists, rows stacked along a new first dimension; an
 * entity input takes its join key's type; other numbers are DT_INT64 when every one is whole
 * and written without a fraction, else DT_FLOAT (write 1.0 for a float input); strings and
 * {"b64": ...} are DT_STRING; true/false DT_BOOL.
 *
 * The request waits suspended (no thread held) while the call runs on the upstream pool's own
 * thread; its callback writes the answer as TF Serving's REST API would for the same tensors
 * ({"predictions": ...} for rows, {"outputs": ...} for columns) or, for SageMaker's CSV, one
 * line of values per row, and resumes the connection.
 */

#define MAX_RANK 8

/* ------------------------------------------------------------------------------------------ */
/* JSON -> TensorProto                                                                         */

typedef enum leaf_kind { LEAF_NONE, LEAF_INT, LEAF_REAL, LEAF_STRING, LEAF_BOOL } leaf_kind_t;

typedef struct tensor_build {
    size_t rank;
    int64_t dims[MAX_RANK];
    bool shaped; /* dims are known (from the first leaf reached) */
    leaf_kind_t kind;
    size_t n; /* leaves */
} tensor_build_t;

static bool is_b64(const json_t *j)
{
    return json_is_object(j) && json_object_size(j) == 1 && json_object_get(j, "b64") != NULL;
}

/* First pass: checks that every list at one depth has one length, and the leaves one kind. */
static int shape_of(const json_t *j, size_t depth, tensor_build_t *t, const char *name, char *why,
                    size_t cap)
{
    if (json_is_array(j)) {
        if (depth >= MAX_RANK)
            return snprintf(why, cap, "input '%s' nests deeper than %d lists", name, MAX_RANK),
                   -EINVAL;
        size_t n = json_array_size(j);
        if (!t->shaped && depth >= t->rank) {
            t->dims[depth] = (int64_t)n;
            t->rank = depth + 1;
        } else if (depth >= t->rank || t->dims[depth] != (int64_t)n) {
            return snprintf(why, cap,
                            "input '%s' is ragged: lists at depth %zu differ in length (TF "
                            "Serving needs a dense tensor)",
                            name, depth),
                   -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            int rc = shape_of(json_array_get(j, i), depth + 1, t, name, why, cap);
            if (rc < 0)
                return rc;
        }
        if (n == 0)
            t->shaped = true;
        return 0;
    }
    if (!t->shaped) {
        t->shaped = true;
        t->rank = depth;
    } else if (depth != t->rank) {
        return snprintf(why, cap, "input '%s' is ragged: values at depths %zu and %zu", name,
                        t->rank, depth),
               -EINVAL;
    }
    leaf_kind_t k;
    if (json_is_integer(j))
        k = LEAF_INT;
    else if (json_is_real(j))
        k = LEAF_REAL;
    else if (json_is_string(j) || is_b64(j))
        k = LEAF_STRING;
    else if (json_is_boolean(j))
        k = LEAF_BOOL;
    else
        return snprintf(why, cap,
                        "input '%s': want numbers, strings, {\"b64\": ...} or booleans, got %s",
                        name, json_is_null(j) ? "null" : "an object"),
               -EINVAL;
    bool numeric = k == LEAF_INT || k == LEAF_REAL;
    bool was_numeric = t->kind == LEAF_INT || t->kind == LEAF_REAL;
    if (t->kind == LEAF_NONE || (numeric && was_numeric)) {
        if (t->kind != LEAF_REAL)
            t->kind = k;
    } else if (t->kind != k) {
        return snprintf(why, cap, "input '%s' mixes value types", name), -EINVAL;
    }
    t->n++;
    return 0;
}

typedef struct tensor_fill {
    Tensorflow__TensorProto *out;
    base_arena_t *a;
    size_t i;
} tensor_fill_t;

static int fill(const json_t *j, tensor_fill_t *f, const char *name, char *why, size_t cap)
{
    if (json_is_array(j)) {
        for (size_t k = 0; k < json_array_size(j); k++) {
            int rc = fill(json_array_get(j, k), f, name, why, cap);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    Tensorflow__TensorProto *t = f->out;
    size_t i = f->i++;
    switch (t->dtype) {
    case TENSORFLOW__DATA_TYPE__DT_FLOAT:
        t->float_val[i] = (float)json_number_value(j);
        break;
    case TENSORFLOW__DATA_TYPE__DT_DOUBLE:
        t->double_val[i] = json_number_value(j);
        break;
    case TENSORFLOW__DATA_TYPE__DT_INT32:
    case TENSORFLOW__DATA_TYPE__DT_INT64: {
        json_int_t v = json_integer_value(j);
        if (t->dtype == TENSORFLOW__DATA_TYPE__DT_INT32) {
            if (v < INT32_MIN || v > INT32_MAX)
                return snprintf(why, cap, "input '%s': %lld is out of range for DT_INT32", name,
                                (long long)v),
                       -EINVAL;
            t->int_val[i] = (int32_t)v;
        } else {
            t->int64_val[i] = v;
        }
        break;
    }
    case TENSORFLOW__DATA_TYPE__DT_BOOL:
        t->bool_val[i] = json_is_true(j);
        break;
    default: /* DT_STRING */
        if (is_b64(j)) {
            const json_t *s = json_object_get(j, "b64");
            if (!json_is_string(s))
                return snprintf(why, cap, "input '%s': b64 wants a base64 string", name), -EINVAL;
            size_t n = json_string_length(s);
            uint8_t *p = base_arena_alloc(f->a, BASE_BASE64_DECODED_MAX(n));
            if (p == NULL)
                return -ENOMEM;
            long m = base_base64_decode(json_string_value(s), n, p, 0);
            if (m < 0)
                return snprintf(why, cap, "input '%s': b64 is not standard base64", name), -EINVAL;
            t->string_val[i].data = p;
            t->string_val[i].len = (size_t)m;
        } else {
            t->string_val[i].data = (uint8_t *)json_string_value(j);
            t->string_val[i].len = json_string_length(j);
        }
        break;
    }
    return 0;
}

/* One input: the JSON values (rows: an array of one value per row, stacked), as a tensor of
 * the join key's type for an entity input (key != INVALID), else of the values' own kind. */
static int json_tensor(const json_t *j, catalog_dtype_t key, const char *name, base_arena_t *a,
                       Tensorflow__TensorProto *out, char *why, size_t cap)
{
    tensor_build_t b = {0};
    int rc = shape_of(j, 0, &b, name, why, cap);
    if (rc < 0)
        return rc;
    tensorflow__tensor_proto__init(out);
    Tensorflow__DataType dt;
    switch (key) {
    case CATALOG_DTYPE_INT32:
        dt = TENSORFLOW__DATA_TYPE__DT_INT32;
        break;
    case CATALOG_DTYPE_INT64:
        dt = TENSORFLOW__DATA_TYPE__DT_INT64;
        break;
    case CATALOG_DTYPE_STRING:
    case CATALOG_DTYPE_BYTES:
        dt = TENSORFLOW__DATA_TYPE__DT_STRING;
        break;
    default:
        dt = b.kind == LEAF_INT    ? TENSORFLOW__DATA_TYPE__DT_INT64
             : b.kind == LEAF_REAL ? TENSORFLOW__DATA_TYPE__DT_FLOAT
             : b.kind == LEAF_BOOL ? TENSORFLOW__DATA_TYPE__DT_BOOL
                                   : TENSORFLOW__DATA_TYPE__DT_STRING;
        break;
    }
    bool want_int = dt == TENSORFLOW__DATA_TYPE__DT_INT32 || dt == TENSORFLOW__DATA_TYPE__DT_INT64;
    if (b.n > 0 && ((want_int && b.kind != LEAF_INT) ||
                    (dt == TENSORFLOW__DATA_TYPE__DT_STRING && b.kind != LEAF_STRING)))
        return snprintf(why, cap, "input '%s' feeds a %s join key: want %s", name,
                        catalog_dtype_name(key), want_int ? "whole numbers" : "strings"),
               -EINVAL;
    out->dtype = dt;
    Tensorflow__TensorShapeProto *shape = base_arena_calloc(a, 1, sizeof *shape);
    Tensorflow__TensorShapeProto__Dim *dims = base_arena_calloc(a, MAX_RANK, sizeof *dims);
    Tensorflow__TensorShapeProto__Dim **dimp = base_arena_calloc(a, MAX_RANK, sizeof *dimp);
    if (shape == NULL || dims == NULL || dimp == NULL)
        return -ENOMEM;
    tensorflow__tensor_shape_proto__init(shape);
    for (size_t d = 0; d < b.rank; d++) {
        tensorflow__tensor_shape_proto__dim__init(&dims[d]);
        dims[d].size = b.dims[d];
        dimp[d] = &dims[d];
    }
    shape->n_dim = b.rank;
    shape->dim = dimp;
    out->tensor_shape = shape;
    size_t n = b.n == 0 ? 1 : b.n;
    void *vals = NULL;
    switch (dt) {
    case TENSORFLOW__DATA_TYPE__DT_FLOAT:
        vals = out->float_val = base_arena_array(a, n, sizeof *out->float_val);
        out->n_float_val = b.n;
        break;
    case TENSORFLOW__DATA_TYPE__DT_INT32:
        vals = out->int_val = base_arena_array(a, n, sizeof *out->int_val);
        out->n_int_val = b.n;
        break;
    case TENSORFLOW__DATA_TYPE__DT_INT64:
        vals = out->int64_val = base_arena_array(a, n, sizeof *out->int64_val);
        out->n_int64_val = b.n;
        break;
    case TENSORFLOW__DATA_TYPE__DT_BOOL:
        vals = out->bool_val = base_arena_array(a, n, sizeof *out->bool_val);
        out->n_bool_val = b.n;
        break;
    default:
        vals = out->string_val = base_arena_array(a, n, sizeof *out->string_val);
        out->n_string_val = b.n;
        break;
    }
    if (vals == NULL)
        return -ENOMEM;
    tensor_fill_t f = {.out = out, .a = a};
    return fill(j, &f, name, why, cap);
}

/* The join key's type of an entity input (as core_predict_entities() converted its values),
 * or INVALID for another input. */
static catalog_dtype_t key_type(const core_predict_t *p, const char *input)
{
    const catalog_model_t *m = p->model;
    for (size_t k = 0; k < m->n_entity_inputs; k++) {
        if (strcmp(m->entity_inputs[k].input, input) != 0)
            continue;
        int c = core_columns_find(&p->ents, m->entity_inputs[k].join_key);
        return c >= 0 && p->ents.n_rows > 0 ? p->ents.cols[c][0].type : CATALOG_DTYPE_INVALID;
    }
    return CATALOG_DTYPE_INVALID;
}

/* An entity input's values as the core read them (CSV's text typed by its join key), as JSON. */
static json_t *typed_column(const core_predict_t *p, const char *input)
{
    const catalog_model_t *m = p->model;
    for (size_t k = 0; k < m->n_entity_inputs; k++) {
        if (strcmp(m->entity_inputs[k].input, input) != 0)
            continue;
        int c = core_columns_find(&p->ents, m->entity_inputs[k].join_key);
        json_t *col = c >= 0 ? json_array() : NULL;
        for (size_t i = 0; col != NULL && i < p->ents.n_rows; i++) {
            const catalog_value_t *v = &p->ents.cols[c][i];
            json_t *x = v->type == CATALOG_DTYPE_INT64 ? json_integer(v->u.i64)
                        : v->type == CATALOG_DTYPE_INT32
                            ? json_integer(v->u.i32)
                            : json_stringn((const char *)v->u.bytes.data, v->u.bytes.len);
            if (json_array_append_new(col, x) < 0) {
                json_decref(col);
                col = NULL;
            }
        }
        return col;
    }
    return NULL;
}

/* The caller's inputs as named tensors: the columns of "inputs", or the rows of "instances"
 * stacked (objects: one input per key; bare values: the binding's one entity input). */
static int caller_inputs(core_ctx_t *ctx, const core_predict_t *p, const http_predict_in_t *in,
                         Tensorflow__TensorProto ***tensors, const char ***names, size_t *n_out)
{
    const catalog_model_t *m = p->model;
    base_arena_t *a = ctx->arena;
    char why[256];
    const json_t *src = in->instances != NULL ? in->instances : in->inputs;
    bool rows = in->instances != NULL;
    const json_t *first = rows ? json_array_get(src, 0) : src;
    bool named = json_is_object(first) && !is_b64(first);
    size_t n = named ? json_object_size(first) : 1;
    Tensorflow__TensorProto **t = base_arena_array(a, n + 1, sizeof *t);
    Tensorflow__TensorProto *tp = base_arena_array(a, n + 1, sizeof *tp);
    const char **nm = base_arena_array(a, n + 1, sizeof *nm);
    if (t == NULL || tp == NULL || nm == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    size_t k = 0;
    if (!named && m->n_entity_inputs != 1)
        return core_fail(ctx, -EINVAL,
                         "name the inputs: model binding '%s' sends its upstream the caller's "
                         "inputs by name, and has %zu entity inputs to feed a bare value to",
                         m->name, m->n_entity_inputs);
    if (!named) {
        nm[0] = m->entity_inputs[0].input;
        int rc = json_tensor(src, key_type(p, nm[0]), nm[0], a, &tp[0], why, sizeof why);
        if (rc < 0)
            return core_fail(ctx, rc, "%s", rc == -ENOMEM ? "out of memory" : why);
        t[0] = &tp[0];
        k = 1;
    } else {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)first, key, v)
        {
            const json_t *col = v;
            json_t *stacked = NULL;
            if (in->text) {
                /* CSV: the text the core typed by the join key. */
                stacked = typed_column(p, key);
                if (stacked == NULL)
                    return core_fail(ctx, -ENOMEM, "out of memory");
                col = stacked;
            } else if (rows) {
                /* Stack the rows' values of this input into one array. */
                stacked = json_array();
                if (stacked == NULL)
                    return core_fail(ctx, -ENOMEM, "out of memory");
                for (size_t r = 0; r < json_array_size(src); r++) {
                    const json_t *row = json_array_get(src, r);
                    const json_t *x = json_is_object(row) ? json_object_get(row, key) : NULL;
                    if (x == NULL) {
                        json_decref(stacked);
                        return core_fail(ctx, -EINVAL, "instances[%zu] has no '%s'", r, key);
                    }
                    json_array_append(stacked, (json_t *)x);
                }
                col = stacked;
            }
            nm[k] = base_arena_strndup(a, key, strlen(key));
            int rc = nm[k] == NULL
                         ? -ENOMEM
                         : json_tensor(col, key_type(p, key), key, a, &tp[k], why, sizeof why);
            json_decref(stacked);
            if (rc < 0)
                return core_fail(ctx, rc, "%s", rc == -ENOMEM ? "out of memory" : why);
            t[k] = &tp[k];
            k++;
        }
    }
    *tensors = t;
    *names = nm;
    *n_out = k;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The call                                                                                    */

typedef struct passthrough {
    http_req_t *r;
    http_output_t output;
    upstream_call_t uc;
    /* on h->pt_list while the upstream call runs (under h->pt_mu) */
    struct passthrough *prev, *next;
    bool listed, abandoned, finished;
    uint64_t id;
    int fd; /* the client's socket */
    /* the completion's result, for finish() on the listener's thread */
    int rc;
    grpc_status_code status;
    grpc_slice resp;
    char why[768];
} passthrough_t;

static void done(void *arg, upstream_call_t *uc, bool ok);

/*
 * Clients that hang up. libmicrohttpd does not read a suspended connection, so a client that goes
 * away while its passthrough waits would leave the upstream call running, and its
 * --http-max-passthroughs slot taken, until the model answers or the timeout ends it. A watcher
 * thread (started with the first passthrough) polls the sockets of the passthroughs in flight
 * for a hangup, every PT_WATCH_MS at most, and cancels their upstream calls: the model server
 * sees the cancellation, the slot is free again, and http_passthroughs_abandoned_total counts
 * it. A client that half-closes its socket (shutdown(SHUT_WR)) after its request counts as
 * gone, as libmicrohttpd itself takes it. Each pass costs O(passthroughs in flight), at most
 * --http-max-passthroughs.
 */
#define PT_WATCH_MS 100

static void pt_unlist(http_t *h, passthrough_t *pt)
{
    if (!pt->listed)
        return;
    if (pt->prev != NULL)
        pt->prev->next = pt->next;
    else
        h->pt_list = pt->next;
    if (pt->next != NULL)
        pt->next->prev = pt->prev;
    pt->listed = false;
}

static void *pt_watch(void *arg)
{
    http_t *h = arg;
    unsigned cap = h->o.max_passthroughs ? h->o.max_passthroughs : HTTP_DEFAULT_MAX_PASSTHROUGHS;
    struct pollfd *fds = calloc(cap, sizeof *fds);
    uint64_t *ids = calloc(cap, sizeof *ids);
    pthread_mutex_lock(&h->pt_mu);
    while (!h->pt_stop && fds != NULL && ids != NULL) {
        nfds_t n = 0;
        for (passthrough_t *p = h->pt_list; p != NULL && n < cap; p = p->next) {
            if (p->abandoned || p->fd < 0)
                continue;
            fds[n] = (struct pollfd){.fd = p->fd, .events = POLLRDHUP};
            ids[n++] = p->id;
        }
        if (n == 0) {
            pthread_cond_wait(&h->pt_cv, &h->pt_mu);
            continue;
        }
        pthread_mutex_unlock(&h->pt_mu);
        int k = poll(fds, n, PT_WATCH_MS);
        pthread_mutex_lock(&h->pt_mu);
        /* By id: a passthrough that ended meanwhile is gone from the list, and its socket may
         * be another connection's now. The list and ids[] both run from the newest (highest)
         * id down, so one merged pass matches them. */
        passthrough_t *p = h->pt_list;
        for (nfds_t i = 0; k > 0 && i < n; i++) {
            short ev = fds[i].revents;
            if (!(ev & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
                continue;
            while (p != NULL && p->id > ids[i])
                p = p->next;
            if (p == NULL)
                break;
            if (p->id != ids[i])
                continue;
            if (ev & POLLNVAL) {
                p->fd = -1; /* not a socket (never seen): unwatched, not cancelled */
                continue;
            }
            p->abandoned = true;
            if (upstream_cancel(h->upstreams, &p->uc) == 0)
                atomic_fetch_add(&h->pt_abandoned, 1);
        }
    }
    pthread_mutex_unlock(&h->pt_mu);
    free(fds);
    free(ids);
    return NULL;
}

/* Lists pt, whose call has started, unless it has finished already (starting the watcher with
 * the first one; without a thread for it, nothing is watched). */
static void pt_list(http_t *h, passthrough_t *pt)
{
    pthread_mutex_lock(&h->pt_mu);
    if (!h->pt_watching && !h->pt_stop && pthread_create(&h->pt_watcher, NULL, pt_watch, h) == 0)
        h->pt_watching = true;
    if (h->pt_watching && !pt->finished) {
        pt->id = ++h->pt_ids;
        pt->prev = NULL;
        pt->next = h->pt_list;
        if (h->pt_list != NULL)
            h->pt_list->prev = pt;
        h->pt_list = pt;
        pt->listed = true;
        pthread_cond_signal(&h->pt_cv);
    }
    pthread_mutex_unlock(&h->pt_mu);
}

void http__passthrough_watch_stop(http_t *h)
{
    pthread_mutex_lock(&h->pt_mu);
    bool join = h->pt_watching;
    h->pt_stop = true;
    pthread_cond_signal(&h->pt_cv);
    pthread_mutex_unlock(&h->pt_mu);
    if (join)
        pthread_join(h->pt_watcher, NULL);
}

int http__passthrough(http_req_t *r, core_predict_t *p, const http_predict_in_t *in)
{
    core_ctx_t *ctx = &r->ctx;
    base_arena_t *a = &r->arena;
    Tensorflow__TensorProto **inputs = NULL;
    const char **names = NULL;
    size_t n_inputs = 0;
    int rc = caller_inputs(ctx, p, in, &inputs, &names, &n_inputs);
    if (rc < 0)
        return rc;
    Tensorflow__TensorProto *features = base_arena_array(a, p->n_out + 1, sizeof *features);
    if (features == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_out; i++) {
        if (codec_tensor_from_core(&p->tensors[i], a, &features[i]) < 0)
            return core_fail(ctx, -ENOMEM, "out of memory");
    }
    char why[512];
    grpc_slice request;
    rc = upstream_request(p, inputs, names, n_inputs, features, in->signature_name, NULL, 0,
                          ctx->limits->max_response_bytes, a, &request, why, sizeof why);
    if (rc < 0)
        return core_fail(ctx, rc, "%s", why);
    /* Checked last, so that the fuzzer's in-process calls go through all of the above. */
    upstream_pool_t *pool = r->h->upstreams;
    if (pool == NULL) {
        grpc_slice_unref(request);
        return core_fail(ctx, -EOPNOTSUPP,
                         "model binding '%s' sends its features to an upstream, which an "
                         "in-process call cannot reach",
                         p->model->name);
    }
    /* Each holds its request's memory until the upstream answers: a bound on them all. */
    http_t *h = r->h;
    unsigned max = h->o.max_passthroughs ? h->o.max_passthroughs : HTTP_DEFAULT_MAX_PASSTHROUGHS;
    if (atomic_fetch_add(&h->passthroughs, 1) >= max) {
        atomic_fetch_sub(&h->passthroughs, 1);
        grpc_slice_unref(request);
        return core_fail(ctx, -EAGAIN,
                         "%u Predict passthroughs are in flight, the most "
                         "--http-max-passthroughs allows: try again",
                         max);
    }
    passthrough_t *pt = base_arena_calloc(a, 1, sizeof *pt);
    if (pt == NULL) {
        atomic_fetch_sub(&h->passthroughs, 1);
        grpc_slice_unref(request);
        return core_fail(ctx, -ENOMEM, "out of memory");
    }
    pt->r = r;
    pt->output = in->output;
    const union MHD_ConnectionInfo *ci =
        r->conn != NULL ? MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD)
                        : NULL;
    pt->fd = ci != NULL ? ci->connect_fd : -1;
    gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    if (r->h->o.upstream_timeout_ms > 0)
        deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                gpr_time_from_millis(r->h->o.upstream_timeout_ms, GPR_TIMESPAN));
    rc = upstream_start(pool, &p->model->upstream, request, deadline, NULL, NULL, NULL, done, pt,
                        &pt->uc, why, sizeof why);
    if (rc < 0) {
        atomic_fetch_sub(&h->passthroughs, 1);
        return core_fail(ctx, rc, "%s", why);
    }
    /* After the start: its done may already have run (then it is not listed), but this request
     * stays until the handler returns (http__complete()). */
    pt_list(h, pt);
    return HTTP_SUSPENDED;
}

/* TF Serving's REST mapping of a gRPC status (http_rest_api_util's ToHTTPStatusCode). */
static int http_status_of_grpc(grpc_status_code s)
{
    switch (s) {
    case GRPC_STATUS_OK:
        return 200;
    case GRPC_STATUS_CANCELLED:
        return 499;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_OUT_OF_RANGE:
        return 400;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return 504;
    case GRPC_STATUS_NOT_FOUND:
        return 404;
    case GRPC_STATUS_ALREADY_EXISTS:
    case GRPC_STATUS_ABORTED:
        return 409;
    case GRPC_STATUS_PERMISSION_DENIED:
        return 403;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return 429;
    case GRPC_STATUS_UNIMPLEMENTED:
        return 501;
    case GRPC_STATUS_UNAVAILABLE:
        return 503;
    case GRPC_STATUS_UNAUTHENTICATED:
        return 401;
    default:
        return 500;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* TensorProto -> JSON                                                                         */

typedef struct tensor_view {
    const char *name;
    const Tensorflow__TensorProto *t;
    size_t rank;
    int64_t dims[MAX_RANK];
    size_t n;     /* elements */
    size_t avail; /* values present (typed field or tensor_content); 1 broadcasts */
    size_t cost;  /* elements plus lists written (each at least a byte), saturating */
    size_t limit; /* the answer stops growing past this many bytes */
    bool content; /* from tensor_content */
    bool b64;     /* strings as {"b64": ...} */
} tensor_view_t;

static size_t elem_size(Tensorflow__DataType dt)
{
    switch (dt) {
    case TENSORFLOW__DATA_TYPE__DT_DOUBLE:
    case TENSORFLOW__DATA_TYPE__DT_INT64:
    case TENSORFLOW__DATA_TYPE__DT_UINT64:
        return 8;
    case TENSORFLOW__DATA_TYPE__DT_FLOAT:
    case TENSORFLOW__DATA_TYPE__DT_INT32:
    case TENSORFLOW__DATA_TYPE__DT_UINT32:
        return 4;
    case TENSORFLOW__DATA_TYPE__DT_INT16:
    case TENSORFLOW__DATA_TYPE__DT_UINT16:
    case TENSORFLOW__DATA_TYPE__DT_HALF:
    case TENSORFLOW__DATA_TYPE__DT_BFLOAT16:
        return 2;
    case TENSORFLOW__DATA_TYPE__DT_INT8:
    case TENSORFLOW__DATA_TYPE__DT_UINT8:
    case TENSORFLOW__DATA_TYPE__DT_BOOL:
        return 1;
    default:
        return 0;
    }
}

static size_t sat_mul(size_t a, size_t b)
{
    return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Checks what can be written and sizes it. Returns: 0; -EPROTO with why. */
static int view_of(const char *name, const Tensorflow__TensorProto *t, tensor_view_t *v, char *why,
                   size_t cap)
{
    memset(v, 0, sizeof *v);
    v->name = name;
    v->t = t;
    size_t nd = t->tensor_shape != NULL ? t->tensor_shape->n_dim : 0;
    if (nd > MAX_RANK)
        return snprintf(why, cap, "output '%s' has rank %zu, over %d", name, nd, MAX_RANK), -EPROTO;
    v->rank = nd;
    v->n = 1;
    /* A dimension of 0 makes n 0 but not the lists before it: [1e15, 0] is 1e15 "[]"s. */
    size_t outer = 1;
    for (size_t d = 0; d < nd; d++) {
        int64_t s = t->tensor_shape->dim[d]->size;
        if (s < 0 || (s > 0 && v->n > SIZE_MAX / (size_t)s))
            return snprintf(why, cap, "output '%s' has a bad dimension %lld", name, (long long)s),
                   -EPROTO;
        v->dims[d] = s;
        v->n *= (size_t)s;
        v->cost = sat_add(v->cost, outer);
        outer = sat_mul(outer, (size_t)s);
    }
    v->cost = sat_add(v->cost, v->n);
    size_t es = elem_size(t->dtype);
    if (t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING) {
        v->avail = t->n_string_val;
        v->b64 = strlen(name) >= 6 && strcmp(name + strlen(name) - 6, "_bytes") == 0;
    } else if (es == 0) {
        return snprintf(why, cap, "output '%s' has a type (%d) JSON cannot carry", name,
                        (int)t->dtype),
               -EPROTO;
    } else if (t->tensor_content.len > 0) {
        v->content = true;
        v->avail = t->tensor_content.len / es;
        if (t->tensor_content.len % es != 0)
            return snprintf(why, cap, "output '%s': tensor_content is not whole elements", name),
                   -EPROTO;
    } else {
        switch (t->dtype) {
        case TENSORFLOW__DATA_TYPE__DT_FLOAT:
            v->avail = t->n_float_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_DOUBLE:
            v->avail = t->n_double_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_INT64:
            v->avail = t->n_int64_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_BOOL:
            v->avail = t->n_bool_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_UINT32:
            v->avail = t->n_uint32_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_UINT64:
            v->avail = t->n_uint64_val;
            break;
        case TENSORFLOW__DATA_TYPE__DT_HALF:
        case TENSORFLOW__DATA_TYPE__DT_BFLOAT16:
            v->avail = t->n_half_val;
            break;
        default:
            v->avail = t->n_int_val;
            break;
        }
    }
    /* TF fills a tensor from fewer values by repeating the last; none means zeros. */
    if (v->avail > v->n || (v->avail > 1 && v->avail < v->n && !v->content))
        return snprintf(why, cap, "output '%s' has %zu values for %zu elements", name, v->avail,
                        v->n),
               -EPROTO;
    if (v->content && v->avail != v->n)
        return snprintf(why, cap, "output '%s': tensor_content holds %zu of %zu elements", name,
                        v->avail, v->n),
               -EPROTO;
    return 0;
}

static double half_to_double(uint16_t h, bool bf16)
{
    if (bf16) {
        uint32_t bits = (uint32_t)h << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double s = (h & 0x8000) ? -1 : 1;
    if (e == 0)
        return s * ldexp(m, -24);
    if (e == 31)
        return m != 0 ? NAN : s * INFINITY;
    return s * ldexp(m + 1024, e - 25);
}

static void write_element(http_buf_t *b, const tensor_view_t *v, size_t i)
{
    const Tensorflow__TensorProto *t = v->t;
    if (v->avail == 0 && t->dtype != TENSORFLOW__DATA_TYPE__DT_STRING) {
        http__puts(b, t->dtype == TENSORFLOW__DATA_TYPE__DT_BOOL ? "false"
                      : (t->dtype == TENSORFLOW__DATA_TYPE__DT_FLOAT ||
                         t->dtype == TENSORFLOW__DATA_TYPE__DT_DOUBLE ||
                         t->dtype == TENSORFLOW__DATA_TYPE__DT_HALF ||
                         t->dtype == TENSORFLOW__DATA_TYPE__DT_BFLOAT16)
                          ? "0.0"
                          : "0");
        return;
    }
    if (i >= v->avail)
        i = v->avail - 1;
    char n[32];
    const uint8_t *c = t->tensor_content.data;
    switch (t->dtype) {
    case TENSORFLOW__DATA_TYPE__DT_STRING: {
        if (v->avail == 0) {
            http__puts(b, "\"\"");
            return;
        }
        const ProtobufCBinaryData *s = &t->string_val[i];
        if (v->b64 || !base_utf8_valid(s->data, s->len)) {
            http__puts(b, "{\"b64\": ");
            http__json_base64(b, s->data, s->len);
            http__putc(b, '}');
        } else {
            http__json_str(b, (const char *)s->data, s->len);
        }
        return;
    }
    case TENSORFLOW__DATA_TYPE__DT_FLOAT: {
        float f;
        if (v->content)
            memcpy(&f, c + 4 * i, 4);
        else
            f = t->float_val[i];
        http__tfs_number(b, (double)f, true);
        return;
    }
    case TENSORFLOW__DATA_TYPE__DT_DOUBLE: {
        double d;
        if (v->content)
            memcpy(&d, c + 8 * i, 8);
        else
            d = t->double_val[i];
        http__tfs_number(b, d, false);
        return;
    }
    case TENSORFLOW__DATA_TYPE__DT_HALF:
    case TENSORFLOW__DATA_TYPE__DT_BFLOAT16: {
        uint16_t h;
        if (v->content)
            memcpy(&h, c + 2 * i, 2);
        else
            h = (uint16_t)t->half_val[i];
        http__tfs_number(b, half_to_double(h, t->dtype == TENSORFLOW__DATA_TYPE__DT_BFLOAT16),
                         true);
        return;
    }
    case TENSORFLOW__DATA_TYPE__DT_BOOL: {
        bool x = v->content ? c[i] != 0 : t->bool_val[i];
        http__puts(b, x ? "true" : "false");
        return;
    }
    case TENSORFLOW__DATA_TYPE__DT_INT64:
    case TENSORFLOW__DATA_TYPE__DT_UINT64: {
        uint64_t u;
        if (v->content)
            memcpy(&u, c + 8 * i, 8);
        else if (t->dtype == TENSORFLOW__DATA_TYPE__DT_UINT64)
            u = t->uint64_val[i];
        else
            u = (uint64_t)t->int64_val[i];
        if (t->dtype == TENSORFLOW__DATA_TYPE__DT_UINT64)
            snprintf(n, sizeof n, "%llu", (unsigned long long)u);
        else
            snprintf(n, sizeof n, "%lld", (long long)(int64_t)u);
        http__puts(b, n);
        return;
    }
    default: {
        long long x;
        if (!v->content && t->dtype == TENSORFLOW__DATA_TYPE__DT_UINT32) {
            x = t->uint32_val[i];
        } else if (!v->content) {
            x = t->int_val[i];
        } else {
            switch (t->dtype) {
            case TENSORFLOW__DATA_TYPE__DT_INT32: {
                int32_t y;
                memcpy(&y, c + 4 * i, 4);
                x = y;
                break;
            }
            case TENSORFLOW__DATA_TYPE__DT_UINT32: {
                uint32_t y;
                memcpy(&y, c + 4 * i, 4);
                x = y;
                break;
            }
            case TENSORFLOW__DATA_TYPE__DT_INT16: {
                int16_t y;
                memcpy(&y, c + 2 * i, 2);
                x = y;
                break;
            }
            case TENSORFLOW__DATA_TYPE__DT_UINT16: {
                uint16_t y;
                memcpy(&y, c + 2 * i, 2);
                x = y;
                break;
            }
            case TENSORFLOW__DATA_TYPE__DT_INT8:
                x = (int8_t)c[i];
                break;
            default:
                x = c[i];
                break;
            }
        }
        snprintf(n, sizeof n, "%lld", x);
        http__puts(b, n);
        return;
    }
    }
}

/* The elements [*i, ...) of dimensions d.. as nested lists; advances *i. */
static void write_nested(http_buf_t *b, const tensor_view_t *v, size_t d, size_t *i)
{
    if (d == v->rank) {
        write_element(b, v, (*i)++);
        return;
    }
    http__putc(b, '[');
    for (int64_t k = 0; k < v->dims[d] && b->len <= v->limit; k++) {
        if (k > 0)
            http__puts(b, ", ");
        write_nested(b, v, d + 1, i);
    }
    http__putc(b, ']');
}

/* Row r of v: its first dimension's slice. */
static void write_row(http_buf_t *b, const tensor_view_t *v, size_t r)
{
    size_t per = v->dims[0] > 0 ? v->n / (size_t)v->dims[0] : 0;
    size_t i = r * per;
    write_nested(b, v, 1, &i);
}

/* One CSV line's cells of row r: every element of every output, flattened, comma-separated. */
static void csv_row(http_buf_t *b, const tensor_view_t *vs, size_t n, size_t r)
{
    bool first = true;
    for (size_t o = 0; o < n; o++) {
        const tensor_view_t *v = &vs[o];
        size_t per = v->dims[0] > 0 ? v->n / (size_t)v->dims[0] : 0;
        for (size_t k = 0; k < per; k++) {
            if (!first)
                http__putc(b, ',');
            first = false;
            if (v->t->dtype == TENSORFLOW__DATA_TYPE__DT_STRING) {
                /* Text as a CSV cell; bytes (a name ending in _bytes, or not UTF-8) as base64. */
                size_t e = r * per + k;
                if (v->avail > 0) {
                    const ProtobufCBinaryData *sv =
                        &v->t->string_val[e < v->avail ? e : v->avail - 1];
                    if (v->b64 || !base_utf8_valid(sv->data, sv->len))
                        http__csv_base64(b, sv->data, sv->len);
                    else
                        http__csv_text(b, (const char *)sv->data, sv->len);
                }
            } else {
                write_element(b, v, r * per + k);
            }
        }
    }
    http__putc(b, '\n');
}

/* Whether the answer grew past limit (and is dropped). */
static bool over(http_req_t *r, size_t limit, char *why, size_t cap)
{
    if (r->out.len <= limit)
        return false;
    snprintf(why, cap, "its answer is over --max-response-bytes %zu", limit);
    r->out.len = 0;
    return true;
}

static int compare_names(const void *x, const void *y)
{
    return strcmp(((const tensor_view_t *)x)->name, ((const tensor_view_t *)y)->name);
}

/* The upstream's PredictResponse as the answer, at most --max-response-bytes of it.
 * Returns: 0; -EPROTO with why. */
static int render(http_req_t *r, http_output_t output, grpc_slice resp, char *why, size_t cap)
{
    size_t limit = core_limits(r->h->core)->max_response_bytes;
    ProtobufCAllocator alloc;
    Tensorflow__Serving__PredictResponse *pr = tensorflow__serving__predict_response__unpack(
        codec_allocator(&r->arena, &alloc), GRPC_SLICE_LENGTH(resp), GRPC_SLICE_START_PTR(resp));
    if (pr == NULL)
        return snprintf(why, cap, "the upstream's PredictResponse does not parse"), -EPROTO;
    size_t n = pr->n_outputs, cost = 0;
    tensor_view_t *vs = base_arena_array(&r->arena, n + 1, sizeof *vs);
    if (vs == NULL)
        return snprintf(why, cap, "out of memory"), -ENOMEM;
    for (size_t o = 0; o < n; o++) {
        static const Tensorflow__TensorProto empty = TENSORFLOW__TENSOR_PROTO__INIT;
        const Tensorflow__TensorProto *t = pr->outputs[o]->value;
        int rc = view_of(pr->outputs[o]->key, t != NULL ? t : &empty, &vs[o], why, cap);
        if (rc < 0)
            return rc;
        vs[o].limit = limit;
        if (!base_utf8_valid((const uint8_t *)vs[o].name, strlen(vs[o].name)))
            return snprintf(why, cap, "an output's name is not UTF-8"), -EPROTO;
        cost = sat_add(cost, vs[o].cost);
    }
    /* Each element and list is at least a byte of the answer: refused before any is written
     * when they cannot fit (a shape of [1e12] with one value repeated, [1e15, 0], ...). */
    if (cost > limit)
        return snprintf(why, cap,
                        "its outputs hold %zu elements and lists, over --max-response-bytes %zu",
                        cost, limit),
               -EPROTO;
    /* Protobuf maps have no order; TF Serving writes them sorted by name. */
    qsort(vs, n, sizeof *vs, compare_names);
    bool rows = output != HTTP_OUTPUT_COLUMNS;
    int64_t batch = -1;
    for (size_t o = 0; o < n && rows; o++) {
        if (vs[o].rank == 0)
            return snprintf(why, cap,
                            "output '%s' is a scalar; a row-format (instances) answer needs a "
                            "batch dimension: send 'inputs' instead",
                            vs[o].name),
                   -EPROTO;
        if (batch >= 0 && vs[o].dims[0] != batch)
            return snprintf(why, cap,
                            "outputs '%s' and '%s' have different batch sizes (%lld, %lld): "
                            "send 'inputs' for a columnar answer",
                            vs[0].name, vs[o].name, (long long)batch, (long long)vs[o].dims[0]),
                   -EPROTO;
        batch = vs[o].dims[0];
    }
    http_buf_t *b = &r->out;
    if (output == HTTP_OUTPUT_CSV) {
        for (int64_t k = 0; k < batch && b->len <= limit; k++)
            csv_row(b, vs, n, (size_t)k);
        return over(r, limit, why, cap) ? -EPROTO : (http__respond(r, 200, "text/csv"), 0);
    }
    if (rows) {
        http__puts(b, "{\"predictions\": [");
        for (int64_t k = 0; k < batch && b->len <= limit; k++) {
            if (k > 0)
                http__puts(b, ", ");
            if (n == 1) {
                write_row(b, &vs[0], (size_t)k);
                continue;
            }
            http__putc(b, '{');
            for (size_t o = 0; o < n; o++) {
                if (o > 0)
                    http__puts(b, ", ");
                http__json_str(b, vs[o].name, strlen(vs[o].name));
                http__puts(b, ": ");
                write_row(b, &vs[o], (size_t)k);
            }
            http__putc(b, '}');
        }
        http__puts(b, "]}");
    } else {
        http__puts(b, "{\"outputs\": ");
        if (n != 1)
            http__putc(b, '{');
        for (size_t o = 0; o < n; o++) {
            if (n != 1) {
                if (o > 0)
                    http__puts(b, ", ");
                http__json_str(b, vs[o].name, strlen(vs[o].name));
                http__puts(b, ": ");
            }
            size_t i = 0;
            write_nested(b, &vs[o], 0, &i);
        }
        if (n != 1)
            http__putc(b, '}');
        http__putc(b, '}');
    }
    if (over(r, limit, why, cap))
        return -EPROTO;
    http__respond(r, 200, "application/json");
    return 0;
}

/* On the listener's thread, once resumed: the upstream's answer written, or its error. */
static void finish(http_req_t *r)
{
    passthrough_t *pt = r->finish_arg;
    int rc = pt->rc;
    char *why = pt->why;
    if (rc == 0) {
        rc = render(r, pt->output, pt->resp, why, sizeof pt->why);
        if (rc < 0)
            core_fail(&r->ctx, rc, "upstream answer: %s", why);
    } else {
        core_fail(&r->ctx, rc, "%s", why);
    }
    grpc_slice_unref(pt->resp);
    pt->resp = grpc_empty_slice();
    if (rc == -EREMOTEIO && pt->status == GRPC_STATUS_CANCELLED && atomic_load(&r->h->stopping)) {
        /* Cancelled by this server's stop: unavailable here, try another node. */
        http__respond_error(r, -ECANCELED);
    } else if (rc == -EREMOTEIO) {
        /* The upstream's own status, mapped as TF Serving maps it. */
        http__respond_error(r, rc);
        r->status = http_status_of_grpc(pt->status);
    } else if (rc == -EPROTO || rc == -EIO) {
        http__respond_error(r, rc);
        r->status = 502;
    } else if (rc < 0) {
        http__respond_error(r, rc);
    }
}

/* On the upstream pool's one thread: keeps the result and resumes the request; the writing is
 * the listener's (finish()), so that one large answer holds up no other passthrough. */
static void done(void *arg, upstream_call_t *uc, bool ok)
{
    passthrough_t *pt = arg;
    http_req_t *r = pt->r;
    pthread_mutex_lock(&r->h->pt_mu);
    pt->finished = true;
    pt_unlist(r->h, pt);
    pthread_mutex_unlock(&r->h->pt_mu);
    pt->status = uc->status;
    pt->resp = grpc_empty_slice();
    pt->rc = upstream_finish(uc, ok, &pt->resp, pt->why, sizeof pt->why);
    atomic_fetch_sub(&r->h->passthroughs, 1);
    r->finish = finish;
    r->finish_arg = pt;
    http__complete(r, 0);
}
