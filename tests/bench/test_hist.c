/* tests/bench/test_hist.c - the load generator's latency histogram on known distributions. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "bench/loadgen/hist_int.h"

static hist_t *new_hist(void)
{
    hist_t *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    hist_reset(h);
    return h;
}

/* A reported percentile may exceed the exact one by one bucket width (< 1/128), never less. */
static void assert_close(uint64_t got, uint64_t exact)
{
    cr_assert_geq(got, exact, "got %lu, exact %lu", (unsigned long)got, (unsigned long)exact);
    cr_assert_leq((double)got, (double)exact * (1.0 + 1.0 / 128) + 1, "got %lu, exact %lu",
                  (unsigned long)got, (unsigned long)exact);
}

Test(hist, empty_histogram_reports_zero)
{
    hist_t *h = new_hist();
    cr_assert_eq(hist_percentile(h, 50), 0);
    cr_assert_eq(hist_percentile(h, 100), 0);
    cr_assert_eq(hist_mean(h), 0.0);
    free(h);
}

Test(hist, small_values_are_exact)
{
    hist_t *h = new_hist();
    for (uint64_t v = 1; v <= 100; v++)
        hist_record(h, v);
    cr_assert_eq(hist_percentile(h, 50), 50);
    cr_assert_eq(hist_percentile(h, 99), 99);
    cr_assert_eq(hist_percentile(h, 100), 100);
    cr_assert_float_eq(hist_mean(h), 50.5, 1e-9);
    free(h);
}

Test(hist, every_bucket_holds_its_own_values_within_one_percent)
{
    for (uint64_t v = 1; v < HIST_MAX_NS; v = v * 17 / 16 + 1) {
        size_t i = hist__index(v);
        cr_assert_lt(i, HIST_BUCKETS);
        cr_assert_leq(hist__lowest(i), v);
        cr_assert_geq(hist__highest(i), v);
        cr_assert_leq((double)(hist__highest(i) - hist__lowest(i)), (double)v / 128.0 + 1);
        if (i > 0)
            cr_assert_eq(hist__highest(i - 1) + 1, hist__lowest(i), "buckets are contiguous");
    }
    cr_assert_eq(hist__index(HIST_MAX_NS * 10), hist__index(HIST_MAX_NS));
}

Test(hist, uniform_microseconds_to_a_millisecond)
{
    hist_t *h = new_hist();
    /* 1..1000 us, each value once: the exact p-th percentile is p * 10 us. */
    for (uint64_t us = 1; us <= 1000; us++)
        hist_record(h, us * 1000);
    assert_close(hist_percentile(h, 50), 500000);
    assert_close(hist_percentile(h, 90), 900000);
    assert_close(hist_percentile(h, 99), 990000);
    assert_close(hist_percentile(h, 99.9), 999000);
    cr_assert_eq(hist_percentile(h, 100), 1000000);
    cr_assert_eq(h->min_ns, 1000);
    free(h);
}

Test(hist, exponential_distribution_matches_its_quantiles)
{
    hist_t *h = new_hist();
    /* Deterministic inverse-CDF samples of an exponential with a 100 us mean. */
    const int n = 100000;
    const double mean = 100000.0;
    for (int i = 0; i < n; i++) {
        double u = (i + 0.5) / n;
        hist_record(h, (uint64_t)(-mean * log(1.0 - u)));
    }
    double ps[] = {50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        double exact = -mean * log(1.0 - ps[k] / 100.0);
        double got = (double)hist_percentile(h, ps[k]);
        cr_assert(fabs(got - exact) / exact < 0.012, "p%g: got %.0f, exact %.0f", ps[k], got,
                  exact);
    }
    cr_assert(fabs(hist_mean(h) - mean) / mean < 0.01);
    free(h);
}

Test(hist, bimodal_tail_is_not_hidden_by_the_mode)
{
    hist_t *h = new_hist();
    /* 98.5% at 50 us and 1.5% stalls at 20 ms: p99 must be a stall, p50 the fast mode. */
    for (int i = 0; i < 985; i++)
        hist_record(h, 50000);
    for (int i = 0; i < 15; i++)
        hist_record(h, 20000000);
    assert_close(hist_percentile(h, 50), 50000);
    assert_close(hist_percentile(h, 98), 50000);
    assert_close(hist_percentile(h, 99), 20000000);
    cr_assert_eq(hist_percentile(h, 100), 20000000);
    free(h);
}

Test(hist, merge_equals_recording_into_one)
{
    hist_t *a = new_hist(), *b = new_hist(), *all = new_hist();
    for (uint64_t v = 1000; v < 5000000; v += 777) {
        hist_record(v % 2 ? a : b, v);
        hist_record(all, v);
    }
    hist_merge(a, b);
    cr_assert_eq(a->total, all->total);
    cr_assert_eq(a->min_ns, all->min_ns);
    cr_assert_eq(a->max_ns, all->max_ns);
    for (double p = 1; p <= 100; p += 7.5)
        cr_assert_eq(hist_percentile(a, p), hist_percentile(all, p));
    free(a);
    free(b);
    free(all);
}

Test(hist, values_past_sixty_seconds_are_clamped_and_counted)
{
    hist_t *h = new_hist();
    hist_record(h, 1000);
    hist_record(h, HIST_MAX_NS * 2);
    cr_assert_eq(h->clamped, 1);
    cr_assert_eq(hist_percentile(h, 100), HIST_MAX_NS);
    free(h);
}

Test(hist, percentile_never_exceeds_the_exact_maximum)
{
    hist_t *h = new_hist();
    for (int i = 0; i < 10; i++)
        hist_record(h, 123457);
    cr_assert_eq(hist_percentile(h, 50), 123457);
    cr_assert_eq(hist_percentile(h, 99.9), 123457);
    free(h);
}
