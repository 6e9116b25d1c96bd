/* bench/loadgen/hist_int.h - a log-linear latency histogram (HdrHistogram's layout, ~0.8%). */
#ifndef BENCH_LOADGEN_HIST_INT_H
#define BENCH_LOADGEN_HIST_INT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Values are nanoseconds. Below 256 ns every value has its own bucket; above, each power of two
 * is split into 128 equal buckets, so a bucket is never wider than 1/128 (0.78%) of the values it
 * holds. Values above HIST_MAX_NS (60 s) land in the top bucket and are counted in `clamped`. The
 * exact minimum, maximum and sum are kept beside the buckets.
 *
 * Recording is one shift, one add and no allocation. A histogram belongs to one thread; merge the
 * per-thread histograms with hist_merge() when the run ends.
 */

#define HIST_SUB_BITS 7
#define HIST_MAX_NS 60000000000ull
#define HIST_BUCKETS 3840 /* enough for HIST_MAX_NS with HIST_SUB_BITS = 7 */

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t clamped; /* values above HIST_MAX_NS, recorded as HIST_MAX_NS */
    uint64_t min_ns;  /* UINT64_MAX while empty */
    uint64_t max_ns;
    long double sum_ns;
} hist_t;

/* Empties h (a zeroed hist_t is not valid: min_ns must start at UINT64_MAX). */
void hist_reset(hist_t *h);
/* Records one value in nanoseconds. */
void hist_record(hist_t *h, uint64_t ns);
/* Adds every value recorded in src to dst. */
void hist_merge(hist_t *dst, const hist_t *src);

/*
 * The value at percentile p (0 < p <= 100): the highest value of the bucket holding the
 * ceil(p/100 * total)-th smallest value, capped by the exact maximum, so a percentile is never
 * understated by more than the bucket width and never reported above max. p >= 100 is the exact
 * maximum. Returns: 0 when the histogram is empty.
 */
uint64_t hist_percentile(const hist_t *h, double p);
/* Returns: the exact mean in nanoseconds (0 when empty). */
double hist_mean(const hist_t *h);

/* Bucket arithmetic, exposed for the tests. hist__index() clamps to the top bucket. */
size_t hist__index(uint64_t ns);
uint64_t hist__lowest(size_t idx);
uint64_t hist__highest(size_t idx);

#endif /* BENCH_LOADGEN_HIST_INT_H */
