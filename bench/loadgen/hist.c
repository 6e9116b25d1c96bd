/* bench/loadgen/hist.c - a log-linear latency histogram (HdrHistogram's layout, ~0.8%). */
#include "bench/loadgen/hist_int.h"

#include <string.h>

#define SUB (1u << HIST_SUB_BITS) /* buckets per power of two above 2 * SUB */

size_t hist__index(uint64_t ns)
{
    if (ns > HIST_MAX_NS)
        ns = HIST_MAX_NS;
    if (ns < 2 * SUB)
        return (size_t)ns;
    /* e >= 1 is how far the value must shift for its top HIST_SUB_BITS + 1 bits to fit. */
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned e = msb - HIST_SUB_BITS;
    uint64_t m = ns >> e; /* in [SUB, 2 * SUB) */
    return 2 * SUB + (size_t)(e - 1) * SUB + (size_t)(m - SUB);
}

uint64_t hist__lowest(size_t idx)
{
    if (idx < 2 * SUB)
        return idx;
    size_t e = (idx - 2 * SUB) / SUB + 1;
    uint64_t m = (idx - 2 * SUB) % SUB + SUB;
    return m << e;
}

uint64_t hist__highest(size_t idx)
{
    if (idx < 2 * SUB)
        return idx;
    size_t e = (idx - 2 * SUB) / SUB + 1;
    return hist__lowest(idx) + (1ull << e) - 1;
}

void hist_reset(hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

void hist_record(hist_t *h, uint64_t ns)
{
    if (ns > HIST_MAX_NS) {
        h->clamped++;
        ns = HIST_MAX_NS;
    }
    h->counts[hist__index(ns)]++;
    h->total++;
    h->sum_ns += (long double)ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t hist_percentile(const hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p >= 100.0)
        return h->max_ns;
    if (p <= 0.0)
        return h->min_ns;
    /* The rank is computed in integers where possible so p99 of 100 values is the 99th, not the
     * 100th, despite 0.99 * 100 being 98.99999... in binary floating point. */
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want - 1e-9)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist__highest(i);
            if (v > h->max_ns)
                v = h->max_ns;
            if (v < h->min_ns)
                v = h->min_ns;
            return v;
        }
    }
    return h->max_ns;
}

double hist_mean(const hist_t *h)
{
    return h->total == 0 ? 0.0 : (double)(h->sum_ns / (long double)h->total);
}
