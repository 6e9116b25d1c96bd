/* tests/clients/test_fstore_client.c - process and thread setup of the C client library. */
#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The calling thread's se.slice from /proc (ns), or -1 when the kernel does not show it. */
static long long own_slice_ns(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/sched", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    long long ns = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "se.slice", 8) == 0) {
            const char *colon = strchr(line, ':');
            ns = colon != NULL ? atoll(colon + 1) : -1;
        }
    }
    fclose(f);
    return ns;
}

Test(fstore_sched_slice, refuses_slices_out_of_range_and_sets_the_calling_thread)
{
    cr_assert_eq(fstore_sched_slice(0), -EINVAL);
    cr_assert_eq(fstore_sched_slice(99), -EINVAL);
    cr_assert_eq(fstore_sched_slice(100001), -EINVAL);
    int rc = fstore_sched_slice(250);
    if (rc == -EINVAL) {
        cr_log_warn("this kernel has no custom slices for normal tasks (before Linux 6.12)");
        return;
    }
    cr_assert_eq(rc, 0, "%s", strerror(-rc));
    long long ns = own_slice_ns();
    if (ns >= 0)
        cr_assert_eq(ns, 250000LL);
}
