/* tests/bench/test_loadgen.c - the load engine's verdict on a run's counts. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "bench/loadgen/loadgen_int.h"

static lg_result_t *passing_result(void)
{
    lg_result_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->ok = 100;
    r->check.responses = 100;
    r->check.values = 100;
    r->check.verified = 100;
    return r;
}

Test(loadgen, a_run_of_ok_calls_with_a_clean_check_passes)
{
    lg_result_t *r = passing_result();
    cr_assert(lg_result_passed(r));
    free(r);
}

Test(loadgen, a_failed_warm_up_call_fails_the_run)
{
    /* Warm-up calls are not measured, but an error among them is an error all the same. */
    lg_result_t *r = passing_result();
    r->warmup_ok = 10;
    r->warmup_failed = 1;
    r->warmup_status[14] = 1; /* UNAVAILABLE */
    cr_assert_not(lg_result_passed(r));
    free(r);
}

Test(loadgen, a_failed_call_or_a_check_problem_or_no_call_fails_the_run)
{
    lg_result_t *r = passing_result();
    r->failed = 1;
    cr_assert_not(lg_result_passed(r));
    r->failed = 0;
    r->check.wrong = 1;
    cr_assert_not(lg_result_passed(r));
    r->check.wrong = 0;
    r->ok = 0;
    cr_assert_not(lg_result_passed(r));
    free(r);
}
