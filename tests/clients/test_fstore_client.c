/* tests/clients/test_fstore_client.c - process setup of the C client library. */
#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <stdlib.h>

#include "clients/c/fstore_client.h"

/* Criterion runs every test in its own process, so each starts with gRPC and abseil untouched. */

Test(fstore_grpc_init, switches_debian_abseil_deadlock_detection_off_and_is_idempotent)
{
    unsetenv("FSTORE_ABSL_DEADLOCK_DETECTION");
    /* Debian bookworm's libgrpc links abseil 20220623 (inline namespace debian3), which has the
     * setting: finding it is the point, so not finding it here is a failure. */
    cr_assert(fstore_grpc_init(), "absl::SetMutexDeadlockDetectionMode not found");
    cr_assert(fstore_grpc_init(), "a second call must report the same");
    /* gRPC is usable after it. */
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    cr_assert_not_null(cq);
    grpc_completion_queue_shutdown(cq);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    cr_assert_eq(ev.type, GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    grpc_shutdown();
}

Test(fstore_grpc_init, leaves_detection_on_when_asked)
{
    setenv("FSTORE_ABSL_DEADLOCK_DETECTION", "1", 1);
    cr_assert_not(fstore_grpc_init());
    grpc_shutdown();
}
