/* upstream/upstream.c - the channel pool, one Predict call, and the request it sends. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "upstream/upstream.h"

/*
 * A channel is expensive to build (resolver, subchannels, a connection) and cheap to share, so
 * there is one per target for the pool's life, created the first time a binding names it. A
 * catalog reload that changes a target simply starts using another entry; old entries stay until
 * the pool is freed, which bounds the table by the targets a deployment ever names.
 *
 * The pool's own queue and thread exist from the first callback call on; the calls they run are
 * listed so that freeing the pool can cancel them rather than wait out their deadlines.
 */

#define PREDICT_METHOD "/tensorflow.serving.PredictionService/Predict"

typedef struct upstream_channel {
    char *target;
    bool tls;
    grpc_channel *channel;
    void *method; /* PREDICT_METHOD registered on channel */
} upstream_channel_t;

struct upstream_pool {
    pthread_mutex_t lock; /* the table, the queue's creation and the list of calls */
    upstream_channel_t *items;
    size_t n, cap;
    int max_bytes;     /* both ways: the request is ours, the response becomes ours */
    char *tls_file[3]; /* upstream_tls_t's ca, cert and key files (copies; NULL: not given) */
    grpc_tls_certificate_provider *tls_files; /* watches them (NULL: none given) */
    grpc_completion_queue *cq;
    pthread_t thread;
    upstream_call_t *calls; /* in flight on cq */
    size_t active;          /* calls on cq whose callback has not returned */
    pthread_cond_t idle;    /* signalled when active drops to 0 */
    bool closed;            /* upstream_pool_close(): no new calls on cq */
};

int upstream_pool_new(size_t max_bytes, const upstream_tls_t *tls, upstream_pool_t **out)
{
    upstream_pool_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    const char *file[3] = {tls ? tls->ca_file : NULL, tls ? tls->cert_file : NULL,
                           tls ? tls->key_file : NULL};
    if ((file[1] == NULL) != (file[2] == NULL)) {
        free(u);
        return -EINVAL; /* gRPC's file watcher aborts on a certificate without its key */
    }
    for (int i = 0; i < 3; i++) {
        if (file[i] != NULL && (u->tls_file[i] = strdup(file[i])) == NULL) {
            for (int k = 0; k < i; k++)
                free(u->tls_file[k]);
            free(u);
            return -ENOMEM;
        }
    }
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->idle, NULL);
    u->max_bytes = max_bytes > (size_t)INT32_MAX ? INT32_MAX : (int)max_bytes;
    *out = u;
    return 0;
}

void upstream_pool_close(upstream_pool_t *u)
{
    if (u == NULL)
        return;
    pthread_mutex_lock(&u->lock);
    u->closed = true;
    for (upstream_call_t *c = u->calls; c != NULL; c = c->next)
        grpc_call_cancel(c->call, NULL);
    while (u->active > 0)
        pthread_cond_wait(&u->idle, &u->lock);
    pthread_mutex_unlock(&u->lock);
}

void upstream_pool_free(upstream_pool_t *u)
{
    if (u == NULL)
        return;
    upstream_pool_close(u);
    if (u->cq != NULL) {
        /* Every call has ended: the queue reports shutdown at once. */
        grpc_completion_queue_shutdown(u->cq);
        pthread_join(u->thread, NULL);
        grpc_completion_queue_destroy(u->cq);
    }
    for (size_t i = 0; i < u->n; i++) {
        grpc_channel_destroy(u->items[i].channel);
        free(u->items[i].target);
    }
    free(u->items);
    if (u->tls_files != NULL)
        grpc_tls_certificate_provider_release(u->tls_files);
    for (int i = 0; i < 3; i++)
        free(u->tls_file[i]);
    pthread_cond_destroy(&u->idle);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Under u->lock: uc off the list of calls in flight on the pool's queue. */
static void unlist(upstream_pool_t *u, upstream_call_t *uc)
{
    if (uc->prev != NULL)
        uc->prev->next = uc->next;
    else
        u->calls = uc->next;
    if (uc->next != NULL)
        uc->next->prev = uc->prev;
    uc->prev = uc->next = NULL;
    uc->listed = false;
}

int upstream_cancel(upstream_pool_t *u, upstream_call_t *uc)
{
    pthread_mutex_lock(&u->lock);
    bool listed = uc->listed;
    if (listed)
        grpc_call_cancel(uc->call, NULL);
    pthread_mutex_unlock(&u->lock);
    return listed ? 0 : -EALREADY;
}

static void *pool_thread(void *arg)
{
    upstream_pool_t *u = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(u->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        upstream_call_t *c = ev.tag;
        pthread_mutex_lock(&u->lock);
        unlist(u, c);
        pthread_mutex_unlock(&u->lock);
        c->done(c->arg, c, ev.success != 0);
        pthread_mutex_lock(&u->lock);
        if (--u->active == 0)
            pthread_cond_broadcast(&u->idle);
        pthread_mutex_unlock(&u->lock);
    }
    return NULL;
}

static grpc_channel *channel_create(upstream_pool_t *u, const char *target, bool tls)
{
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = u->max_bytes;
    /* gRPC backs off up to two minutes between reconnects by default; an upstream that restarts
     * would then fail Predict calls long after it is back. A second is plenty for a handful of
     * targets. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 100;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 1000;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[3].value.integer = u->max_bytes;
    grpc_channel_args ch_args = {.num_args = 4, .args = args};
    grpc_channel_credentials *creds = NULL;
    if (tls) {
        /* The server's certificate is verified (chain and name: gRPC's defaults for a client)
         * against the watched CA file, or gRPC's default roots when none is given. */
        grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
        /* The watcher (a thread) starts with the first TLS channel: none without a binding
         * that says `tls: true`. channel_get() holds the pool's lock. */
        if (u->tls_files == NULL && (u->tls_file[0] != NULL || u->tls_file[1] != NULL))
            u->tls_files = grpc_tls_certificate_provider_file_watcher_create(
                u->tls_file[2], u->tls_file[1], u->tls_file[0], UPSTREAM_TLS_REFRESH_S);
        if (u->tls_files != NULL) {
            grpc_tls_credentials_options_set_certificate_provider(o, u->tls_files);
            if (u->tls_file[0] != NULL)
                grpc_tls_credentials_options_watch_root_certs(o);
            if (u->tls_file[1] != NULL)
                grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
        }
        creds = grpc_tls_credentials_create(o); /* takes o */
    } else {
        creds = grpc_insecure_credentials_create();
    }
    grpc_channel *ch = grpc_channel_create(target, creds, &ch_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* Returns: 0 and the channel for target (created on first use) with its registered method and,
 * when own_cq, the pool's queue (created on first use); -ENOMEM, -EAGAIN (no thread). */
static int channel_get(upstream_pool_t *u, const char *target, bool tls, bool own_cq,
                       grpc_channel **ch, void **method)
{
    int rc = 0;
    pthread_mutex_lock(&u->lock);
    if (own_cq && u->cq == NULL) {
        u->cq = grpc_completion_queue_create_for_next(NULL);
        if (pthread_create(&u->thread, NULL, pool_thread, u) != 0) {
            grpc_completion_queue_shutdown(u->cq);
            grpc_completion_queue_destroy(u->cq);
            u->cq = NULL;
            rc = -EAGAIN;
            goto out;
        }
    }
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->items[i].target, target) == 0 && u->items[i].tls == tls) {
            *ch = u->items[i].channel;
            *method = u->items[i].method;
            goto out;
        }
    }
    if (u->n == u->cap) {
        size_t cap = u->cap == 0 ? 4 : 2 * u->cap;
        upstream_channel_t *items = realloc(u->items, cap * sizeof *items);
        if (items == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        u->items = items;
        u->cap = cap;
    }
    upstream_channel_t *e = &u->items[u->n];
    e->target = strdup(target);
    if (e->target == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* grpc_channel_create() never fails: a bad target gives a channel whose calls fail. */
    e->tls = tls;
    e->channel = channel_create(u, target, tls);
    e->method = grpc_channel_register_call(e->channel, PREDICT_METHOD, NULL, NULL);
    u->n++;
    *ch = e->channel;
    *method = e->method;
    base_log(BASE_LOG_INFO, "upstream_channel", "{s:s, s:b}", "target", target, "tls", (int)tls);
out:
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* Releases everything uc holds; safe on a call that never started. */
static void call_release(upstream_call_t *uc)
{
    if (uc->call != NULL)
        grpc_call_unref(uc->call);
    uc->call = NULL;
    if (uc->send != NULL)
        grpc_byte_buffer_destroy(uc->send);
    uc->send = NULL;
    if (uc->recv != NULL)
        grpc_byte_buffer_destroy(uc->recv);
    uc->recv = NULL;
    grpc_metadata_array_destroy(&uc->initial_md);
    grpc_metadata_array_destroy(&uc->trailing_md);
    grpc_slice_unref(uc->details);
    uc->details = grpc_empty_slice();
    if (uc->error_string != NULL)
        gpr_free((void *)uc->error_string);
    uc->error_string = NULL;
    free(uc->target);
    free(uc->model);
    uc->target = uc->model = NULL;
}

int upstream_start(upstream_pool_t *u, const catalog_upstream_t *up, grpc_slice request,
                   gpr_timespec caller_deadline, grpc_call *parent, grpc_completion_queue *cq,
                   void *tag, upstream_done_fn done, void *arg, upstream_call_t *uc, char *why,
                   size_t why_cap)
{
    memset(uc, 0, sizeof *uc);
    grpc_metadata_array_init(&uc->initial_md);
    grpc_metadata_array_init(&uc->trailing_md);
    uc->details = grpc_empty_slice();
    uc->target = strdup(up->target);
    uc->model = strdup(up->model_name);
    uc->send = grpc_raw_byte_buffer_create(&request, 1);
    grpc_slice_unref(request);
    if (uc->target == NULL || uc->model == NULL) {
        call_release(uc);
        snprintf(why, why_cap, "out of memory");
        return -ENOMEM;
    }

    grpc_channel *ch = NULL;
    void *method = NULL;
    int rc = channel_get(u, up->target, up->tls, cq == NULL, &ch, &method);
    if (rc < 0) {
        call_release(uc);
        snprintf(why, why_cap, rc == -ENOMEM ? "out of memory" : "cannot start a thread");
        return rc;
    }

    /* Given a parent, gRPC also caps the deadline at the parent's. */
    gpr_timespec caller = gpr_convert_clock_type(caller_deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec deadline = caller;
    if (up->timeout_ms > 0) {
        gpr_timespec mine = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(up->timeout_ms, GPR_TIMESPAN));
        uc->timeout_first = gpr_time_cmp(mine, caller) < 0;
        if (uc->timeout_first)
            deadline = mine;
    }
    if (cq == NULL) {
        uc->pool = u;
        uc->done = done;
        uc->arg = arg;
        tag = uc;
    }
    uc->call = grpc_channel_create_registered_call(
        ch, cq != NULL ? parent : NULL, cq != NULL && parent != NULL ? GRPC_PROPAGATE_DEFAULTS : 0,
        cq != NULL ? cq : u->cq, method, deadline, NULL);
    if (uc->call == NULL) {
        snprintf(why, why_cap, "upstream %s: cannot create a call", uc->target);
        call_release(uc);
        return -EIO;
    }

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = uc->send;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &uc->initial_md;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &uc->recv;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &uc->trailing_md;
    ops[n].data.recv_status_on_client.status = &uc->status;
    ops[n].data.recv_status_on_client.status_details = &uc->details;
    ops[n++].data.recv_status_on_client.error_string = &uc->error_string;
    if (cq == NULL) {
        /* Listed before the batch starts: its completion may come at once. */
        pthread_mutex_lock(&u->lock);
        if (u->closed) {
            pthread_mutex_unlock(&u->lock);
            snprintf(why, why_cap, "upstream %s: the server is stopping", uc->target);
            call_release(uc);
            return -ECANCELED;
        }
        u->active++;
        uc->prev = NULL;
        uc->next = u->calls;
        if (u->calls != NULL)
            u->calls->prev = uc;
        u->calls = uc;
        uc->listed = true;
        pthread_mutex_unlock(&u->lock);
    }
    grpc_call_error e = grpc_call_start_batch(uc->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        if (cq == NULL) {
            pthread_mutex_lock(&u->lock);
            unlist(u, uc);
            if (--u->active == 0)
                pthread_cond_broadcast(&u->idle);
            pthread_mutex_unlock(&u->lock);
        }
        snprintf(why, why_cap, "upstream %s: cannot start the call (%s)", uc->target,
                 grpc_call_error_to_string(e));
        call_release(uc);
        return -EIO;
    }
    return 0;
}

int upstream_finish(upstream_call_t *uc, bool ok, grpc_slice *resp, char *why, size_t why_cap)
{
    int rc = 0;
    if (!ok) {
        /* A client batch with RECV_STATUS fails only when the call could not run at all. */
        snprintf(why, why_cap, "upstream %s (model '%s'): the call failed", uc->target, uc->model);
        rc = -EIO;
        goto out;
    }
    if (uc->status != GRPC_STATUS_OK) {
        const char *what = "";
        if (uc->status == GRPC_STATUS_UNAVAILABLE)
            what = " (cannot reach it)";
        else if (uc->status == GRPC_STATUS_DEADLINE_EXCEEDED)
            what = uc->timeout_first ? " (no answer within the binding's timeout_ms)"
                                     : " (no answer within the caller's deadline)";
        snprintf(why, why_cap, "upstream %s (model '%s') failed%s: %.*s", uc->target, uc->model,
                 what, (int)GRPC_SLICE_LENGTH(uc->details),
                 (const char *)GRPC_SLICE_START_PTR(uc->details));
        rc = -EREMOTEIO;
        goto out;
    }
    if (uc->recv == NULL) {
        snprintf(why, why_cap, "upstream %s (model '%s') returned OK without a response",
                 uc->target, uc->model);
        rc = -EPROTO;
        goto out;
    }
    /* The response goes on as the upstream sent it; the reader only undoes compression. */
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, uc->recv)) {
        snprintf(why, why_cap, "upstream %s (model '%s'): cannot read its response", uc->target,
                 uc->model);
        rc = -EPROTO;
        goto out;
    }
    *resp = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
out:
    call_release(uc);
    return rc;
}

typedef Tensorflow__Serving__PredictRequest__InputsEntry input_entry_t;

int upstream_request(const core_predict_t *p, Tensorflow__TensorProto *const *inputs,
                     const char *const *input_names, size_t n_inputs,
                     Tensorflow__TensorProto *features, const char *signature_name,
                     char *const *output_filter, size_t n_output_filter, size_t max_bytes,
                     base_arena_t *a, grpc_slice *out, char *why, size_t why_cap)
{
    const catalog_model_t *m = p->model;
    const catalog_upstream_t *up = &m->upstream;
    size_t n_feat = p->outs->n;

    size_t cap = n_inputs + n_feat;
    input_entry_t **entries = base_arena_calloc(a, cap == 0 ? 1 : cap, sizeof *entries);
    input_entry_t *e = base_arena_calloc(a, cap == 0 ? 1 : cap, sizeof *e);
    if (entries == NULL || e == NULL)
        return snprintf(why, why_cap, "out of memory"), -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        const char *key = input_names[i];
        bool is_entity = false;
        for (size_t k = 0; k < m->n_entity_inputs && !is_entity; k++)
            is_entity = strcmp(m->entity_inputs[k].input, key) == 0;
        if (is_entity && !up->keep_entity_inputs)
            continue;
        if (core_predict_output(p, key, strlen(key)) >= 0)
            return snprintf(why, why_cap,
                            "input '%.128s' has the name of a feature of service '%s', which "
                            "fstore adds; rename the input",
                            key, m->service->name),
                   -EINVAL;
        tensorflow__serving__predict_request__inputs_entry__init(&e[n]);
        e[n].key = (char *)key;
        e[n].value = inputs[i];
        entries[n] = &e[n];
        n++;
    }
    for (size_t i = 0; i < n_feat; i++) {
        tensorflow__serving__predict_request__inputs_entry__init(&e[n]);
        e[n].key = (char *)p->outs->names[i];
        e[n].value = &features[i];
        entries[n] = &e[n];
        n++;
    }

    Tensorflow__Serving__ModelSpec spec = TENSORFLOW__SERVING__MODEL_SPEC__INIT;
    spec.name = (char *)up->model_name;
    /* The binding's signature wins; without one the caller's choice goes through. */
    spec.signature_name = up->signature_name[0] != '\0' ? (char *)up->signature_name
                          : signature_name != NULL      ? (char *)signature_name
                                                        : (char *)"";
    Tensorflow__Serving__PredictRequest urq = TENSORFLOW__SERVING__PREDICT_REQUEST__INIT;
    urq.model_spec = &spec;
    urq.n_inputs = n;
    urq.inputs = entries;
    urq.n_output_filter = n_output_filter;
    urq.output_filter = (char **)output_filter;
    /* What we send is bounded like what we answer: the features of a whole batch can be far
     * larger than the caller's request. */
    size_t size = tensorflow__serving__predict_request__get_packed_size(&urq);
    if (size > max_bytes)
        return snprintf(why, why_cap,
                        "upstream request would be %zu bytes; the limit is %zu "
                        "(--max-response-bytes)",
                        size, max_bytes),
               -EMSGSIZE;
    grpc_slice s = grpc_slice_malloc(size);
    tensorflow__serving__predict_request__pack(&urq, GRPC_SLICE_START_PTR(s));
    *out = s;
    return 0;
}
