/* tests/server/test_status.c - errno -> gRPC status, the one mapping. */
#include <criterion/criterion.h>
#include <errno.h>

#include "server/server_int.h"

Test(status, success_is_ok)
{
    cr_assert_eq(server__status_from_errno(0), GRPC_STATUS_OK);
}

Test(status, request_mistakes_are_invalid_argument)
{
    cr_assert_eq(server__status_from_errno(-EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(server__status_from_errno(-ERANGE), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(server__status_from_errno(-ENAMETOOLONG), GRPC_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(server__status_from_errno(-E2BIG), GRPC_STATUS_INVALID_ARGUMENT);
}

Test(status, unknown_names_are_not_found)
{
    cr_assert_eq(server__status_from_errno(-ENOENT), GRPC_STATUS_NOT_FOUND);
}

Test(status, exhausted_resources_and_unavailability)
{
    cr_assert_eq(server__status_from_errno(-ENOMEM), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_eq(server__status_from_errno(-ENOSPC), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_eq(server__status_from_errno(-EMFILE), GRPC_STATUS_RESOURCE_EXHAUSTED);
    cr_assert_eq(server__status_from_errno(-ESHUTDOWN), GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(server__status_from_errno(-EAGAIN), GRPC_STATUS_UNAVAILABLE);
    cr_assert_eq(server__status_from_errno(-ETIMEDOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
    cr_assert_eq(server__status_from_errno(-EROFS), GRPC_STATUS_FAILED_PRECONDITION);
}

Test(status, store_failures_and_unknown_codes_are_internal)
{
    cr_assert_eq(server__status_from_errno(-EIO), GRPC_STATUS_INTERNAL);
    cr_assert_eq(server__status_from_errno(-EPROTO), GRPC_STATUS_INTERNAL);
    cr_assert_eq(server__status_from_errno(-12345), GRPC_STATUS_INTERNAL);
}
