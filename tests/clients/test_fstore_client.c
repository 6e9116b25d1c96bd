/* tests/clients/test_fstore_client.c - the C client library: process and thread setup, waiting. */
#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

/* A TCP listener that accepts and never speaks HTTP/2: every health check runs to its deadline. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

Test(fstore_client_wait_serving, gives_up_within_its_budget_when_the_server_never_answers)
{
    int port = 0;
    int fd = silent_listener(&port);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    fstore_client_t *c = NULL;
    cr_assert_eq(fstore_client_connect(target, &c), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(fstore_client_wait_serving(c, 300), -ETIMEDOUT);
    /* A health check used to take its own 2 s whatever the budget: a 300 ms wait took 2.1 s. */
    long ms = elapsed_ms(&t0);
    cr_assert_lt(ms, 1900, "a 300 ms wait took %ld ms", ms);
    /* No budget at all: no call is made. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(fstore_client_wait_serving(c, 0), -ETIMEDOUT);
    cr_assert_lt(elapsed_ms(&t0), 1000);
    fstore_client_close(c);
    close(fd);
    grpc_shutdown();
}
