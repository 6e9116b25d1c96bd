/* tests/upstream/test_upstream.c - an upstream call's outcomes, and calls on the pool's thread. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream/upstream.h"

/* The Predict path end to end (propagation, restarts, both front doors) is in
 * tests/e2e/test_predict_upstream.py; here: what upstream_finish() makes of a result, and the
 * pool's callback thread against sockets that refuse or never answer. */

static upstream_call_t uc;
static char why[512];

/* A finished call's state as gRPC leaves it, with status st. */
static void fresh(grpc_status_code st)
{
    free(uc.target);
    free(uc.model);
    memset(&uc, 0, sizeof uc);
    grpc_metadata_array_init(&uc.initial_md);
    grpc_metadata_array_init(&uc.trailing_md);
    uc.details = grpc_empty_slice();
    uc.target = strdup("127.0.0.1:8500");
    uc.model = strdup("ranker");
    uc.status = st;
    why[0] = '\0';
}

static void setup(void)
{
    grpc_init();
    fresh(GRPC_STATUS_OK);
}

static void teardown(void)
{
    free(uc.target);
    free(uc.model);
    uc.target = uc.model = NULL;
    grpc_shutdown();
}

TestSuite(upstream, .init = setup, .fini = teardown);

Test(upstream, an_error_status_is_kept_with_a_message_naming_the_upstream)
{
    fresh(GRPC_STATUS_RESOURCE_EXHAUSTED);
    uc.details = grpc_slice_from_copied_string("queue full");
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), -EREMOTEIO);
    cr_assert_eq(uc.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert(strstr(why, "upstream 127.0.0.1:8500") && strstr(why, "'ranker'") &&
                  strstr(why, "queue full"),
              "%s", why);
    cr_assert_eq(GRPC_SLICE_LENGTH(resp), 0);
    cr_assert_null(uc.target, "the call's copies are released");
}

Test(upstream, unreachable_and_slow_upstreams_say_so)
{
    grpc_slice resp = grpc_empty_slice();
    fresh(GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), -EREMOTEIO);
    cr_assert(strstr(why, "cannot reach") != NULL, "%s", why);

    fresh(GRPC_STATUS_DEADLINE_EXCEEDED);
    uc.timeout_first = true;
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), -EREMOTEIO);
    cr_assert(strstr(why, "binding's timeout_ms") != NULL, "%s", why);

    fresh(GRPC_STATUS_DEADLINE_EXCEEDED);
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), -EREMOTEIO);
    cr_assert(strstr(why, "caller's deadline") != NULL, "%s", why);

    fresh(GRPC_STATUS_OK);
    cr_assert_eq(upstream_finish(&uc, false, &resp, why, sizeof why), -EIO);
    cr_assert(strstr(why, "the call failed") != NULL, "%s", why);
}

Test(upstream, ok_returns_the_response_bytes_as_sent)
{
    grpc_slice body = grpc_slice_from_copied_buffer("\x0a\x03\x61\x62\x63", 5);
    uc.recv = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), 0, "%s", why);
    cr_assert_eq(GRPC_SLICE_LENGTH(resp), 5);
    cr_assert_eq(memcmp(GRPC_SLICE_START_PTR(resp), "\x0a\x03\x61\x62\x63", 5), 0);
    cr_assert_null(uc.recv, "the byte buffer is released");
    grpc_slice_unref(resp);
}

Test(upstream, ok_without_a_message_is_a_protocol_error)
{
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(upstream_finish(&uc, true, &resp, why, sizeof why), -EPROTO);
    cr_assert(strstr(why, "without a response") != NULL, "%s", why);
}

/* Calls on the pool's own thread. */

typedef struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    int rc[4];
    grpc_status_code status[4];
} outcome_t;

static outcome_t out = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, {0}};

static void done(void *arg, upstream_call_t *c, bool ok)
{
    outcome_t *o = arg;
    grpc_slice resp = grpc_empty_slice();
    char w[512];
    grpc_status_code st = c->status;
    int rc = upstream_finish(c, ok, &resp, w, sizeof w);
    grpc_slice_unref(resp);
    pthread_mutex_lock(&o->mu);
    o->rc[o->n] = rc;
    o->status[o->n] = st;
    o->n++;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* A listening socket on a free loopback port that accepts nothing: connections sit in its
 * backlog and never get an HTTP/2 answer. */
static int silent_listener(char *target, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(target, cap, "127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

/* Model "m" at target, with the binding's timeout (0: none). */
static catalog_upstream_t upstream_to(const char *target, uint32_t timeout_ms)
{
    return (catalog_upstream_t){
        .target = target, .model_name = "m", .signature_name = "", .timeout_ms = timeout_ms};
}

static grpc_slice request(void)
{
    return grpc_slice_from_copied_buffer("\x0a\x00", 2);
}

Test(upstream, a_callback_call_to_a_closed_port_ends_unavailable_on_the_pools_thread)
{
    char target[64];
    int fd = silent_listener(target, sizeof target);
    close(fd); /* now nothing listens there */
    upstream_pool_t *u = NULL;
    cr_assert_eq(upstream_pool_new(1 << 20, NULL, &u), 0);
    catalog_upstream_t up = upstream_to(target, 5000);
    upstream_call_t c;
    out.n = 0;
    cr_assert_eq(upstream_start(u, &up, request(), gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL, NULL,
                                NULL, done, &out, &c, why, sizeof why),
                 0, "%s", why);
    pthread_mutex_lock(&out.mu);
    while (out.n == 0)
        pthread_cond_wait(&out.cv, &out.mu);
    pthread_mutex_unlock(&out.mu);
    cr_assert_eq(out.rc[0], -EREMOTEIO);
    cr_assert(out.status[0] == GRPC_STATUS_UNAVAILABLE ||
                  out.status[0] == GRPC_STATUS_DEADLINE_EXCEEDED,
              "status %d", out.status[0]);
    upstream_pool_free(u);
}

Test(upstream, the_binding_timeout_ends_a_call_nobody_answers)
{
    char target[64];
    int fd = silent_listener(target, sizeof target);
    upstream_pool_t *u = NULL;
    cr_assert_eq(upstream_pool_new(1 << 20, NULL, &u), 0);
    catalog_upstream_t up = upstream_to(target, 200);
    upstream_call_t c;
    out.n = 0;
    cr_assert_eq(upstream_start(u, &up, request(), gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL, NULL,
                                NULL, done, &out, &c, why, sizeof why),
                 0, "%s", why);
    pthread_mutex_lock(&out.mu);
    while (out.n == 0)
        pthread_cond_wait(&out.cv, &out.mu);
    pthread_mutex_unlock(&out.mu);
    cr_assert_eq(out.status[0], GRPC_STATUS_DEADLINE_EXCEEDED);
    upstream_pool_free(u);
    close(fd);
}

Test(upstream, freeing_the_pool_cancels_calls_in_flight_and_runs_their_callbacks)
{
    char target[64];
    int fd = silent_listener(target, sizeof target);
    upstream_pool_t *u = NULL;
    cr_assert_eq(upstream_pool_new(1 << 20, NULL, &u), 0);
    catalog_upstream_t up =
        upstream_to(target, 0); /* no deadline at all: only the cancel ends them */
    upstream_call_t c[3];
    out.n = 0;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(upstream_start(u, &up, request(), gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL,
                                    NULL, NULL, done, &out, &c[i], why, sizeof why),
                     0, "%s", why);
    upstream_pool_free(u);
    cr_assert_eq(out.n, 3, "every callback ran before the pool was gone");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(out.status[i], GRPC_STATUS_CANCELLED, "call %d: status %d", i, out.status[i]);
    close(fd);
}

Test(upstream, a_cancelled_call_ends_cancelled_and_one_that_ended_is_not_cancelled_again)
{
    char target[64];
    int fd = silent_listener(target, sizeof target);
    upstream_pool_t *u = NULL;
    cr_assert_eq(upstream_pool_new(1 << 20, NULL, &u), 0);
    catalog_upstream_t up = upstream_to(target, 0); /* only the cancel ends it */
    upstream_call_t c[2];
    out.n = 0;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(upstream_start(u, &up, request(), gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL,
                                    NULL, NULL, done, &out, &c[i], why, sizeof why),
                     0, "%s", why);
    cr_assert_eq(upstream_cancel(u, &c[0]), 0);
    pthread_mutex_lock(&out.mu);
    while (out.n == 0)
        pthread_cond_wait(&out.cv, &out.mu);
    pthread_mutex_unlock(&out.mu);
    cr_assert_eq(out.status[0], GRPC_STATUS_CANCELLED);
    cr_assert_eq(out.n, 1, "only the cancelled call ended");
    cr_assert_eq(upstream_cancel(u, &c[0]), -EALREADY, "its completion was taken");
    upstream_pool_free(u); /* cancels the other */
    cr_assert_eq(out.n, 2);
    close(fd);
}

Test(upstream, a_pool_without_calls_frees)
{
    upstream_pool_t *u = NULL;
    cr_assert_eq(upstream_pool_new(4u << 20, NULL, &u), 0);
    cr_assert_not_null(u);
    upstream_pool_free(u);
    upstream_pool_free(NULL);
}
