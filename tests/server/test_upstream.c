/* tests/server/test_upstream.c - how an upstream call's outcome becomes the Predict reply. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <string.h>

#include "server/server_int.h"

/* The network half (channels, propagation, deadlines) is exercised end to end by
 * tests/e2e/test_predict_upstream.py; here: what server__upstream_finish() makes of a result. */

static server_call_t call;
static server_upstream_call_t uc;

/* A finished call's state as gRPC leaves it, with status st. */
static void fresh(grpc_status_code st)
{
    memset(&call, 0, sizeof call);
    memset(&uc, 0, sizeof uc);
    grpc_metadata_array_init(&uc.initial_md);
    grpc_metadata_array_init(&uc.trailing_md);
    uc.details = grpc_empty_slice();
    uc.target = "127.0.0.1:8500";
    uc.model = "ranker";
    uc.status = st;
}

static void setup(void)
{
    grpc_init();
    fresh(GRPC_STATUS_OK);
}

static void teardown(void)
{
    grpc_shutdown();
}

TestSuite(upstream, .init = setup, .fini = teardown);

Test(upstream, error_status_is_relayed_with_a_message_naming_the_upstream)
{
    fresh(GRPC_STATUS_RESOURCE_EXHAUSTED);
    uc.details = grpc_slice_from_copied_string("queue full");
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), -EREMOTEIO);
    cr_assert(call.relayed);
    cr_assert_eq(call.relay_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert(strstr(call.ctx.msg, "upstream 127.0.0.1:8500") && strstr(call.ctx.msg, "'ranker'") &&
                  strstr(call.ctx.msg, "queue full"),
              "%s", call.ctx.msg);
    cr_assert_eq(GRPC_SLICE_LENGTH(resp), 0);
}

Test(upstream, unreachable_and_slow_upstreams_say_so)
{
    grpc_slice resp = grpc_empty_slice();
    fresh(GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), -EREMOTEIO);
    cr_assert_eq(call.relay_status, GRPC_STATUS_UNAVAILABLE);
    cr_assert(strstr(call.ctx.msg, "cannot reach") != NULL, "%s", call.ctx.msg);

    fresh(GRPC_STATUS_DEADLINE_EXCEEDED);
    uc.timeout_ms = 200;
    uc.timeout_first = true;
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), -EREMOTEIO);
    cr_assert_eq(call.relay_status, GRPC_STATUS_DEADLINE_EXCEEDED);
    cr_assert(strstr(call.ctx.msg, "binding's timeout_ms") != NULL, "%s", call.ctx.msg);

    fresh(GRPC_STATUS_DEADLINE_EXCEEDED);
    uc.timeout_ms = 200;
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), -EREMOTEIO);
    cr_assert(strstr(call.ctx.msg, "caller's deadline") != NULL, "%s", call.ctx.msg);
}

Test(upstream, ok_returns_the_response_bytes_as_sent)
{
    grpc_slice body = grpc_slice_from_copied_buffer("\x0a\x03\x61\x62\x63", 5);
    uc.recv = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), 0, "%s", call.ctx.msg);
    cr_assert_not(call.relayed);
    cr_assert_eq(GRPC_SLICE_LENGTH(resp), 5);
    cr_assert_eq(memcmp(GRPC_SLICE_START_PTR(resp), "\x0a\x03\x61\x62\x63", 5), 0);
    cr_assert_null(uc.recv, "the byte buffer is released");
    grpc_slice_unref(resp);
}

Test(upstream, ok_without_a_message_is_a_protocol_error)
{
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(server__upstream_finish(&call, &uc, true, &resp), -EPROTO);
    cr_assert_not(call.relayed);
    cr_assert(strstr(call.ctx.msg, "without a response") != NULL, "%s", call.ctx.msg);
}

Test(upstream, registry_starts_empty_and_frees)
{
    server_upstreams_t *u = NULL;
    cr_assert_eq(server__upstreams_new(4u << 20, &u), 0);
    cr_assert_not_null(u);
    server__upstreams_free(u);
    server__upstreams_free(NULL);
}
