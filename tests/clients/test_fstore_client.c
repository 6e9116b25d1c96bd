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
