/* clients/c/fstore_client.c - blocking unary calls over gRPC's C core, protobuf-c messages. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "clients/c/fstore_client.h"
#include "grpc/health/v1/health.pb-c.h"

/*
 * Each call gets its own pluck queue: that is what makes a shared client thread-safe without
 * locks, at the price of a queue per call (cheap next to a network round trip).
 */

struct fstore_client {
    grpc_channel *channel;
};

bool fstore_grpc_init(void)
{
    bool lean = base_lean_mutexes();
    grpc_init();
    return lean;
}

static bool given(const char *p)
{
    return p != NULL && p[0] != '\0';
}

/* The channel credentials tls asks for (insecure when it names no file). Returns: them, or NULL
 * with why set. */
static grpc_channel_credentials *credentials(const fstore_client_tls_t *tls, char *why, size_t cap)
{
    if (tls == NULL ||
        (!given(tls->ca) && !given(tls->cert) && !given(tls->key) && !given(tls->server_name)))
        return grpc_insecure_credentials_create();
    if (given(tls->cert) != given(tls->key)) {
        snprintf(why, cap, "a client certificate needs its key (--tls-cert and --tls-key)");
        return NULL;
    }
    const char *paths[3] = {tls->ca, tls->cert, tls->key};
    char *pem[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (given(paths[i]) && (rc = base_read_file(paths[i], (size_t)1 << 20, &pem[i], NULL)) < 0)
            snprintf(why, cap, "cannot read %s: %s", paths[i], strerror(-rc));
    }
    grpc_channel_credentials *creds = NULL;
    if (rc == 0) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = pem[2], .cert_chain = pem[1]};
        creds = grpc_ssl_credentials_create(pem[0], pem[1] != NULL ? &pair : NULL, NULL, NULL);
        if (creds == NULL)
            snprintf(why, cap, "gRPC refused the TLS files");
    }
    if (pem[2] != NULL)
        explicit_bzero(pem[2], strlen(pem[2]));
    for (int i = 0; i < 3; i++)
        free(pem[i]);
    return creds;
}

int fstore_client_connect(const char *target, fstore_client_t **out)
{
    char why[16];
    return fstore_client_connect_tls(target, NULL, out, why, sizeof why);
}

int fstore_client_connect_tls(const char *target, const fstore_client_tls_t *tls,
                              fstore_client_t **out, char *why, size_t cap)
{
    fstore_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    fstore_grpc_init();
    grpc_arg args[2];
    memset(args, 0, sizeof args);
    /* Responses can be large (many entities x features); the server bounds requests. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = -1;
    grpc_channel_args ch_args = {.num_args = 1, .args = args};
    if (tls != NULL && given(tls->server_name)) {
        args[1].type = GRPC_ARG_STRING;
        args[1].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[1].value.string = (char *)tls->server_name;
        ch_args.num_args = 2;
    }
    grpc_channel_credentials *creds = credentials(tls, why, cap);
    if (creds == NULL) {
        free(c);
        grpc_shutdown();
        return -EINVAL;
    }
    c->channel = grpc_channel_create(target, creds, &ch_args);
    grpc_channel_credentials_release(creds);
    if (c->channel == NULL) {
        free(c);
        grpc_shutdown();
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void fstore_client_close(fstore_client_t *c)
{
    if (c == NULL)
        return;
    grpc_channel_destroy(c->channel);
    free(c);
    grpc_shutdown();
}

static void set_status(fstore_status_t *st, int code, const char *msg, size_t len)
{
    if (st == NULL)
        return;
    st->code = code;
    if (len >= sizeof st->message)
        len = sizeof st->message - 1;
    memcpy(st->message, msg, len);
    st->message[len] = '\0';
}

int fstore_client_call(fstore_client_t *c, const char *method, const uint8_t *req, size_t req_len,
                       int timeout_ms, uint8_t **resp, size_t *resp_len, fstore_status_t *st)
{
    return fstore_client_call_md(c, method, NULL, 0, req, req_len, timeout_ms, resp, resp_len, st);
}

int fstore_client_call_md(fstore_client_t *c, const char *method, const fstore_metadata_t *md,
                          size_t n_md, const uint8_t *req, size_t req_len, int timeout_ms,
                          uint8_t **resp, size_t *resp_len, fstore_status_t *st)
{
    int rc = 0;
    grpc_metadata send_md[8];
    if (n_md > sizeof send_md / sizeof send_md[0])
        return -EINVAL;
    for (size_t i = 0; i < n_md; i++) {
        memset(&send_md[i], 0, sizeof send_md[i]);
        send_md[i].key = grpc_slice_from_static_string(md[i].key);
        send_md[i].value = grpc_slice_from_copied_string(md[i].value);
    }
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               method_slice, NULL, deadline, NULL);
    grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_slice_unref(req_slice);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md > 0 ? send_md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 0;
    if (call == NULL || grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, "cannot start the call", 21);
        rc = -ENOMEM;
        goto out;
    }
    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    set_status(st, (int)code, (const char *)GRPC_SLICE_START_PTR(details),
               GRPC_SLICE_LENGTH(details));
    if (code != GRPC_STATUS_OK) {
        rc = -EREMOTEIO;
        goto out;
    }
    if (recv == NULL) {
        rc = -EINVAL;
        goto out;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, recv)) {
        rc = -EINVAL;
        goto out;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t n = GRPC_SLICE_LENGTH(all);
    uint8_t *buf = malloc(n == 0 ? 1 : n);
    if (buf == NULL) {
        grpc_slice_unref(all);
        rc = -ENOMEM;
        goto out;
    }
    memcpy(buf, GRPC_SLICE_START_PTR(all), n);
    grpc_slice_unref(all);
    *resp = buf;
    *resp_len = n;
out:
    if (send != NULL)
        grpc_byte_buffer_destroy(send);
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_slice_unref(details);
    for (size_t i = 0; i < n_md; i++)
        grpc_slice_unref(send_md[i].value);
    if (call != NULL)
        grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    return rc;
}

/* Packs m, calls, and unpacks the reply with `unpack`. */
static int call_msg(fstore_client_t *c, const char *method, const ProtobufCMessage *m,
                    int timeout_ms, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                    fstore_status_t *st)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n == 0 ? 1 : n);
    if (buf == NULL)
        return -ENOMEM;
    protobuf_c_message_pack(m, buf);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = fstore_client_call(c, method, buf, n, timeout_ms, &resp, &resp_len, st);
    free(buf);
    if (rc < 0)
        return rc;
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, resp_len, resp);
    free(resp);
    if (msg == NULL)
        return -EINVAL;
    *out = msg;
    return 0;
}

int fstore_client_get_online_features(fstore_client_t *c,
                                      const Feast__Serving__GetOnlineFeaturesRequest *req,
                                      int feast_path, int timeout_ms,
                                      Feast__Serving__GetOnlineFeaturesResponse **out,
                                      fstore_status_t *st)
{
    return call_msg(
        c, feast_path ? FSTORE_PATH_FEAST_GET_ONLINE_FEATURES : FSTORE_PATH_GET_ONLINE_FEATURES,
        &req->base, timeout_ms, &feast__serving__get_online_features_response__descriptor,
        (ProtobufCMessage **)out, st);
}

int fstore_client_write_features(fstore_client_t *c, const Fstore__V1__WriteFeaturesRequest *req,
                                 int timeout_ms, Fstore__V1__WriteFeaturesResponse **out,
                                 fstore_status_t *st)
{
    return call_msg(c, FSTORE_PATH_WRITE_FEATURES, &req->base, timeout_ms,
                    &fstore__v1__write_features_response__descriptor, (ProtobufCMessage **)out, st);
}

int fstore_client_delete_entities(fstore_client_t *c, const Fstore__V1__DeleteEntitiesRequest *req,
                                  int timeout_ms, Fstore__V1__DeleteEntitiesResponse **out,
                                  fstore_status_t *st)
{
    return call_msg(c, FSTORE_PATH_DELETE_ENTITIES, &req->base, timeout_ms,
                    &fstore__v1__delete_entities_response__descriptor, (ProtobufCMessage **)out,
                    st);
}

int fstore_client_health_check(fstore_client_t *c, const char *service, int timeout_ms,
                               int *serving_status, fstore_status_t *st)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(uintptr_t)(service != NULL ? service : "");
    ProtobufCMessage *out = NULL;
    int rc = call_msg(c, FSTORE_PATH_HEALTH_CHECK, &req.base, timeout_ms,
                      &grpc__health__v1__health_check_response__descriptor, &out, st);
    if (rc < 0)
        return rc;
    *serving_status = (int)((Grpc__Health__V1__HealthCheckResponse *)out)->status;
    protobuf_c_message_free_unpacked(out, NULL);
    return 0;
}

int fstore_client_wait_serving(fstore_client_t *c, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        long left = (long)timeout_ms - elapsed;
        if (left <= 0)
            return -ETIMEDOUT;
        /* Each check gets what is left of the budget (at most 2 s), so the whole wait never
         * overruns timeout_ms by more than the pause below. */
        int status = 0;
        if (fstore_client_health_check(c, "", left < 2000 ? (int)left : 2000, &status, NULL) == 0 &&
            status == 1)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        left = (long)timeout_ms - elapsed;
        if (left <= 0)
            return -ETIMEDOUT;
        struct timespec pause = {0, (left < 100 ? left : 100) * 1000000L};
        nanosleep(&pause, NULL);
    }
}
