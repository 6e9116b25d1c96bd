/* bench/loadgen/loadgen_int.h - the load engine: channels, completion queues, open/closed loop. */
#ifndef BENCH_LOADGEN_LOADGEN_INT_H
#define BENCH_LOADGEN_LOADGEN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/loadgen/hist_int.h"
#include "bench/loadgen/wire_int.h"

/*
 * The engine sends one unary method. Its requests come either from a template (cfg->tmpl): every
 * call asks for fresh ids drawn uniformly from [first_key, first_key + keys), so a run touches
 * the whole key space as redis-benchmark's __rand_int__ does, and only the ids are encoded per
 * call; or from a pool of pre-built serialized requests sent round-robin (raw requests, and the
 * fixed id sets of --sequential and --pooled).
 *
 * Closed loop: every channel keeps `inflight` calls outstanding; a call's latency is from its
 * start to its status. Open loop: calls are scheduled at a fixed total rate, independent of
 * replies, and a call's latency is measured from its *scheduled* send time. When the server
 * stalls, calls keep falling due, and the time they wait to be sent (for a free slot, or for the
 * sender to get a CPU) counts in their latency, so queueing cannot hide (no coordinated omission).
 *
 * Threads: `threads` groups, each with its own completion queue and its share of the channels.
 * A group's thread polls its queue and, in closed loop, starts the next call as one completes.
 * In open loop each group adds a sender thread that sleeps until the next scheduled time, because
 * a completion-queue deadline has only millisecond resolution in gRPC core.
 */

#define LG_MAX_STATUS 17 /* grpc_status_code values 0..16 */

/* Checks one response to a request that asked for ids (rows_per_call of them; NULL when the
 * request has no ids). */
typedef void (*lg_check_fn)(void *ctx, const int64_t *ids, const uint8_t *buf, size_t len,
                            wire_check_t *c);

typedef struct lg_payload {
    const uint8_t *data; /* borrowed for the run */
    size_t len;
    const int64_t *ids; /* the ids it asks for, for the check; NULL if none; borrowed */
} lg_payload_t;

typedef struct lg_config {
    const char *target; /* host:port */
    const char *method; /* "/package.Service/Method" */
    /* Per-call requests (tmpl != NULL): rows_per_call ids each, drawn from [first_key, first_key
     * + keys) by a generator seeded with seed. Borrowed for the run. */
    const wire_tmpl_t *tmpl;
    int64_t first_key;
    uint64_t keys;
    uint64_t seed;
    /* Otherwise the pool, sent round-robin. */
    const lg_payload_t *pool;
    size_t pool_n;
    size_t connections;     /* channels, each its own TCP connection */
    size_t inflight;        /* closed loop: calls outstanding per connection */
    size_t threads;         /* groups; clamped to connections */
    double rate;            /* > 0: open loop at this many calls/s in total */
    size_t max_outstanding; /* open loop: slots per group; a due call waits for a free one */
    double warmup_s;
    double duration_s;    /* measured phase; ignored when calls > 0 */
    uint64_t calls;       /* measured calls (0 = use duration) */
    double timeout_s;     /* per-call deadline */
    size_t rows_per_call; /* ids (entities, rows) per request */
    lg_check_fn check;    /* NULL: no response check */
    void *check_ctx;
    unsigned check_every;    /* check one response in this many (0 or 1 = every one) */
    unsigned sched_slice_us; /* > 0: the generator's threads ask for this CPU slice */
    bool verbose;
} lg_config_t;

typedef struct lg_result {
    /* Every measured call that completed, whatever its status, from its start (closed loop) or
     * its scheduled send time (open loop): a call that fails, DEADLINE_EXCEEDED after --timeout
     * included, can only make these figures worse, never better. */
    hist_t latency;
    hist_t latency_ok; /* the same for the calls that completed with OK alone */
    hist_t send_lag;   /* open loop: actual send - scheduled send (the generator's own delay) */
    uint64_t ok;       /* measured calls with status OK */
    uint64_t failed;   /* measured calls with another status */
    uint64_t status[LG_MAX_STATUS + 1]; /* by grpc_status_code; the last slot is "other" */
    /* Warm-up calls are not measured but their statuses are counted, so that errors before the
     * measured phase are seen too. */
    uint64_t warmup_ok, warmup_failed;
    uint64_t warmup_status[LG_MAX_STATUS + 1];
    char warmup_first_error[256];
    double elapsed_s; /* measured phase: first scheduled start to last completion */
    double rate_target;
    double client_cpu_s; /* this process's CPU (all threads) from the measured phase's start to
                            the end of the run: the generator's own cost */
    wire_check_t check;
    char first_error[256]; /* status details of the first failed call */
} lg_result_t;

/*
 * Runs the load described by cfg and fills *res. grpc_init() must have been called.
 * Returns: 0; -EINVAL (bad configuration); -ENOMEM; -EIO (a channel or thread could not start).
 */
int lg_run(const lg_config_t *cfg, lg_result_t *res);

/*
 * The verdict of a checked run. Returns: true when measured calls completed OK, no call failed
 * (measured or warm-up) and the response checks found no problem.
 */
bool lg_result_passed(const lg_result_t *res);

/* Returns: the gRPC status code's name ("OK", "UNAVAILABLE"), "OTHER" for an unknown code. */
const char *lg_status_name(int code);

#endif /* BENCH_LOADGEN_LOADGEN_INT_H */
