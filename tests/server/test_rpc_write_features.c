/* tests/server/test_rpc_write_features.c - WriteFeatures requests refused before any write. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/server_int.h"

#include "fstore/v1/fstore.pb-c.h"

/*
 * Both checks here come before the handler looks at its worker, catalog or store, so a zeroed
 * call is enough; the rest of WriteFeatures is covered end to end (tests/e2e/test_writes.py) and
 * by tests/server/fuzz_requests.c.
 */

static server_call_t call;

static void setup(void)
{
    memset(&call, 0, sizeof call);
    base_arena_init(&call.arena, 4096);
    call.ctx.arena = &call.arena;
}

static void teardown(void)
{
    base_arena_free(&call.arena);
}

TestSuite(write_features, .init = setup, .fini = teardown);

static int write_with_seconds(int64_t seconds)
{
    Fstore__V1__WriteFeaturesRequest rq = FSTORE__V1__WRITE_FEATURES_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Google__Protobuf__Timestamp *tss[1] = {&ts};
    ts.seconds = seconds;
    rq.feature_view = "fv";
    rq.n_event_timestamps = 1;
    rq.event_timestamps = tss;
    uint8_t buf[64];
    size_t n = fstore__v1__write_features_request__pack(&rq, buf);
    grpc_slice resp = grpc_empty_slice();
    return server__rpc_write_features(&call, buf, n, &resp);
}

/* Found by fuzz_requests: seconds * 10^6 overflowed int64 (undefined behaviour) before. */
Test(write_features, event_timestamp_outside_years_1_to_9999_is_invalid_argument)
{
    cr_assert_eq(write_with_seconds(253402300800LL), -EINVAL);
    cr_assert_str_eq(call.ctx.msg, "event_timestamps[0]: seconds out of range (years 1 to 9999)");
    cr_assert_eq(write_with_seconds(INT64_MAX), -EINVAL);
    cr_assert_eq(write_with_seconds(-62135596801LL), -EINVAL);
    cr_assert_eq(write_with_seconds(INT64_MIN), -EINVAL);
}

Test(write_features, a_join_key_with_a_nul_inside_is_invalid_argument)
{
    /* columns {key: "customer_id" value {val [{string_val: "alice\0x"}]}} */
    static const uint8_t rq[] = {0x0a, 0x02, 'f',  'v',  0x12, 0x18, 0x0a, 0x0b, 'c',  'u',
                                 's',  't',  'o',  'm',  'e',  'r',  '_',  'i',  'd',  0x12,
                                 0x09, 0x0a, 0x07, 0x12, 0x05, 'a',  'l',  'i',  '\0', 'x'};
    grpc_slice resp = grpc_empty_slice();
    cr_assert_eq(server__rpc_write_features(&call, rq, sizeof rq, &resp), -EINVAL);
    cr_assert_str_eq(call.ctx.msg, "malformed WriteFeaturesRequest: feast.types.Value.string_val "
                                   "contains a NUL byte");
}
