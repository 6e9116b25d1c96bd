/* bench/loadgen/loadgen.c - the load engine: channels, completion queues, open/closed loop. */
#include "base/base.h"
#include "bench/loadgen/loadgen_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clients/c/fstore_client.h"

#define NS_PER_S 1000000000ull
#define POLL_NS (100ull * 1000 * 1000) /* longest completion-queue wait between checks */

typedef struct group group_t;

/* One call's state; reused call after call. */
typedef struct slot {
    group_t *g;
    size_t chan;
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    uint64_t t_sched;   /* latency is measured from here */
    const int64_t *ids; /* the ids this call asked for (for the check), or NULL */
    int64_t *own_ids;   /* per-call requests: this slot's ids */
    wbuf_t req;         /* per-call requests: this slot's encoded request, reused */
    bool measured;
    struct slot *next_free;
} slot_t;

struct group {
    const lg_config_t *cfg;
    size_t id;
    grpc_completion_queue *cq;
    grpc_channel **chans;
    void **regs;
    size_t n_chans;
    const grpc_slice *payloads;
    slot_t *slots;
    size_t n_slots;
    size_t next_chan, pool_pos;
    uint64_t rng;                       /* per-call ids; only the thread that starts calls draws */
    int64_t *id_store;                  /* per-call ids of every slot */
    uint64_t t_start, t_measure, t_end; /* monotonic ns; t_end = UINT64_MAX in calls mode */
    uint64_t quota;                     /* calls mode: measured calls this group starts */
    uint64_t started_measured;
    double interval_ns; /* open loop: between this group's scheduled sends */
    /* Open loop: the sender and the poller share the free slots. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_t *free_list;
    size_t outstanding;
    bool sender_done;
    uint64_t first_sched, last_done;
    uint64_t check_seq;
    lg_result_t res;
    pthread_t poller, sender;
    bool poller_started, sender_started;
    int err;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* gRPC's monotonic clock has its own epoch, so deadlines are always relative to gpr_now(). */
static gpr_timespec deadline_in(uint64_t ns)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_nanos((int64_t)ns, GPR_TIMESPAN));
}

const char *lg_status_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    return code >= 0 && code <= 16 ? names[code] : "OTHER";
}

bool lg_result_passed(const lg_result_t *res)
{
    return res->ok > 0 && res->failed == 0 && res->warmup_failed == 0 &&
           wire_check_problems(&res->check) == 0;
}

/* xorshift64* (Vigna): cheap, and its high bits are good enough to pick keys uniformly. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The request of the next call on s: fresh ids encoded with the template, or the next one of
 * the pool. Returns: 0, -ENOMEM. */
static int next_request(group_t *g, slot_t *s, grpc_slice *payload)
{
    const lg_config_t *cfg = g->cfg;
    if (cfg->tmpl == NULL) {
        size_t i = g->pool_pos++ % cfg->pool_n;
        s->ids = cfg->pool[i].ids;
        *payload = g->payloads[i];
        return 0;
    }
    for (size_t k = 0; k < cfg->rows_per_call; k++)
        s->own_ids[k] = cfg->first_key + (int64_t)(next_random(&g->rng) % cfg->keys);
    s->ids = s->own_ids;
    s->req.len = 0;
    if (wire_tmpl_encode(cfg->tmpl, s->own_ids, &s->req) != 0)
        return -ENOMEM;
    /* A copy that gRPC owns: the transport may hold a message's bytes after its call completed
     * (a cancelled call's pending write), when this slot's buffer is already being refilled. */
    *payload = grpc_slice_from_copied_buffer((const char *)s->req.data, s->req.len);
    return 0;
}

/* Starts one call on slot s, measured from t_sched. Returns: 0, -ENOMEM, or -EIO when gRPC
 * refused. */
static int start_call(group_t *g, slot_t *s, uint64_t t_sched)
{
    const lg_config_t *cfg = g->cfg;
    grpc_slice payload;
    int rc = next_request(g, s, &payload);
    if (rc != 0)
        return rc;
    /* Closed loop: a call's latency starts when it is sent, not while its request is encoded.
     * Open loop: from its scheduled time, whatever the generator spent before sending it. */
    if (cfg->rate <= 0)
        t_sched = mono_ns();
    s->t_sched = t_sched;
    s->measured = t_sched >= g->t_measure;
    s->call = grpc_channel_create_registered_call(
        g->chans[s->chan], NULL, GRPC_PROPAGATE_DEFAULTS, g->cq, g->regs[s->chan],
        deadline_in((uint64_t)(cfg->timeout_s * (double)NS_PER_S)), NULL);
    if (s->call == NULL) {
        grpc_slice_unref(payload);
        return -EIO;
    }
    s->send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload); /* the byte buffer holds its own reference */
    s->recv = NULL;
    grpc_metadata_array_init(&s->md_init);
    grpc_metadata_array_init(&s->md_trail);
    s->details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trail;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    if (s->measured) {
        if (g->first_sched == 0 || t_sched < g->first_sched)
            g->first_sched = t_sched;
        g->started_measured++;
        if (cfg->rate > 0)
            hist_record(&g->res.send_lag, mono_ns() - t_sched);
    }
    grpc_call_error e = grpc_call_start_batch(s->call, ops, 6, s, NULL);
    if (e != GRPC_CALL_OK) {
        grpc_call_unref(s->call);
        grpc_byte_buffer_destroy(s->send);
        grpc_metadata_array_destroy(&s->md_init);
        grpc_metadata_array_destroy(&s->md_trail);
        s->call = NULL;
        return -EIO;
    }
    return 0;
}

/* Keeps the first error's status and details in buf (left alone once set). */
static void note_error(char *buf, size_t cap, int code, grpc_slice details)
{
    if (buf[0] != '\0')
        return;
    char *d = grpc_slice_to_c_string(details);
    snprintf(buf, cap, "%s: %s", lg_status_name(code), d);
    gpr_free(d);
}

/* Decodes the response of an OK call for cfg->check. */
static void check_call(group_t *g, const slot_t *s)
{
    const lg_config_t *cfg = g->cfg;
    if (s->recv == NULL) {
        g->res.check.responses++;
        g->res.check.malformed++;
        return;
    }
    grpc_byte_buffer_reader rd;
    if (grpc_byte_buffer_reader_init(&rd, s->recv)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        cfg->check(cfg->check_ctx, s->ids, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
                   &g->res.check);
        grpc_slice_unref(all);
    }
}

/* Accounts for a completed call and releases what it held. */
static void finish_call(group_t *g, slot_t *s, bool success)
{
    uint64_t now = mono_ns();
    const lg_config_t *cfg = g->cfg;
    lg_result_t *r = &g->res;
    int code = success ? (int)s->status : LG_MAX_STATUS;
    if (code < 0 || code > LG_MAX_STATUS)
        code = LG_MAX_STATUS;
    if (!s->measured) {
        if (code == GRPC_STATUS_OK) {
            r->warmup_ok++;
        } else {
            r->warmup_failed++;
            r->warmup_status[code]++;
            note_error(r->warmup_first_error, sizeof r->warmup_first_error, code, s->details);
        }
    } else {
        r->status[code]++;
        if (now > g->last_done)
            g->last_done = now;
        /* Failed calls are in the latency too: leaving out the calls that timed out would make
         * a stalling server look faster. */
        hist_record(&r->latency, now - s->t_sched);
        if (code == GRPC_STATUS_OK) {
            r->ok++;
            hist_record(&r->latency_ok, now - s->t_sched);
            if (cfg->check != NULL &&
                (cfg->check_every <= 1 || g->check_seq++ % cfg->check_every == 0))
                check_call(g, s);
        } else {
            r->failed++;
            note_error(r->first_error, sizeof r->first_error, code, s->details);
        }
    }
    if (s->recv != NULL)
        grpc_byte_buffer_destroy(s->recv);
    grpc_byte_buffer_destroy(s->send);
    grpc_metadata_array_destroy(&s->md_init);
    grpc_metadata_array_destroy(&s->md_trail);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
    s->recv = NULL;
    s->send = NULL;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static bool closed_should_continue(const group_t *g, uint64_t now)
{
    if (g->cfg->calls > 0)
        return now < g->t_measure || g->started_measured < g->quota;
    return now < g->t_end;
}

/* A generator thread's scheduling: the slice asked for (its lateness is the run's, see
 * --sched-slice-us); a refusal is not an error, the run goes on at the kernel's default. */
static void thread_setup(const lg_config_t *cfg)
{
    if (cfg->sched_slice_us != 0)
        (void)base_sched_slice(cfg->sched_slice_us);
}

static void *closed_loop(void *arg)
{
    group_t *g = arg;
    thread_setup(g->cfg);
    size_t outstanding = 0;
    /* Starting before t_start would make the first calls of a run without warm-up unmeasured. */
    sleep_until(g->t_start);
    uint64_t now = mono_ns();
    for (size_t i = 0; i < g->n_slots; i++) {
        if (!closed_should_continue(g, now))
            break;
        int rc = start_call(g, &g->slots[i], now);
        if (rc == 0)
            outstanding++;
        else
            g->err = rc;
    }
    while (outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(g->cq, deadline_in(POLL_NS), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        slot_t *s = ev.tag;
        finish_call(g, s, ev.success != 0);
        outstanding--;
        now = mono_ns();
        if (closed_should_continue(g, now)) {
            int rc = start_call(g, s, now);
            if (rc == 0)
                outstanding++;
            else
                g->err = rc;
        }
    }
    return NULL;
}

/* Open loop, the poller: completes calls and hands their slots back to the sender. */
static void *open_poller(void *arg)
{
    group_t *g = arg;
    thread_setup(g->cfg);
    for (;;) {
        pthread_mutex_lock(&g->mu);
        bool done = g->sender_done && g->outstanding == 0;
        pthread_mutex_unlock(&g->mu);
        if (done)
            break;
        grpc_event ev = grpc_completion_queue_next(g->cq, deadline_in(POLL_NS), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        slot_t *s = ev.tag;
        finish_call(g, s, ev.success != 0);
        pthread_mutex_lock(&g->mu);
        s->next_free = g->free_list;
        g->free_list = s;
        g->outstanding--;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    return NULL;
}

/* Open loop, the sender: starts each call at its scheduled time, whatever the replies do. */
static void *open_sender(void *arg)
{
    group_t *g = arg;
    thread_setup(g->cfg);
    /* The default 50 us timer slack would be added to every send; ask for the tightest wake-up
     * the kernel gives (the lag that remains is reported as send_lag). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (uint64_t k = 0;; k++) {
        uint64_t t_sched = g->t_start + (uint64_t)((double)k * g->interval_ns);
        if (t_sched >= g->t_end)
            break;
        if (mono_ns() < t_sched)
            sleep_until(t_sched);
        pthread_mutex_lock(&g->mu);
        while (g->free_list == NULL)
            pthread_cond_wait(&g->cv, &g->mu);
        slot_t *s = g->free_list;
        g->free_list = s->next_free;
        g->outstanding++;
        pthread_mutex_unlock(&g->mu);
        s->chan = g->next_chan++ % g->n_chans;
        if (start_call(g, s, t_sched) != 0) {
            g->err = -EIO;
            pthread_mutex_lock(&g->mu);
            s->next_free = g->free_list;
            g->free_list = s;
            g->outstanding--;
            pthread_mutex_unlock(&g->mu);
        }
    }
    pthread_mutex_lock(&g->mu);
    g->sender_done = true;
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Waits until ch is READY (or deadline); a server that is not up shows as UNAVAILABLE calls. */
static bool connect_channel(grpc_channel *ch, grpc_completion_queue *cq, uint64_t timeout_ns)
{
    uint64_t end = mono_ns() + timeout_ns;
    for (;;) {
        grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
        if (st == GRPC_CHANNEL_READY)
            return true;
        uint64_t now = mono_ns();
        if (now >= end)
            return false;
        grpc_channel_watch_connectivity_state(ch, st, deadline_in(end - now), cq, NULL);
        grpc_event ev;
        do {
            ev = grpc_completion_queue_next(cq, deadline_in(end - now + POLL_NS), NULL);
        } while (ev.type == GRPC_QUEUE_TIMEOUT);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void group_destroy(group_t *g)
{
    for (size_t i = 0; g->chans != NULL && i < g->n_chans; i++) {
        if (g->chans[i] != NULL)
            grpc_channel_destroy(g->chans[i]);
    }
    if (g->cq != NULL) {
        grpc_completion_queue_shutdown(g->cq);
        while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(g->cq);
    }
    free(g->chans);
    free(g->regs);
    for (size_t i = 0; g->slots != NULL && i < g->n_slots; i++)
        wbuf_free(&g->slots[i].req);
    free(g->slots);
    free(g->id_store);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static int group_init(group_t *g, const lg_config_t *cfg, size_t id, size_t n_chans,
                      const grpc_slice *payloads)
{
    memset(g, 0, sizeof *g);
    g->cfg = cfg;
    g->id = id;
    g->payloads = payloads;
    g->n_chans = n_chans;
    g->pool_pos = id * (cfg->pool_n / (cfg->threads ? cfg->threads : 1));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    hist_reset(&g->res.latency);
    hist_reset(&g->res.latency_ok);
    hist_reset(&g->res.send_lag);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    g->chans = calloc(n_chans, sizeof *g->chans);
    g->regs = calloc(n_chans, sizeof *g->regs);
    if (cfg->rate > 0) {
        g->n_slots = cfg->max_outstanding / cfg->threads;
        if (g->n_slots == 0)
            g->n_slots = 1;
    } else {
        g->n_slots = n_chans * cfg->inflight;
    }
    g->slots = calloc(g->n_slots, sizeof *g->slots);
    if (g->cq == NULL || g->chans == NULL || g->regs == NULL || g->slots == NULL)
        return -ENOMEM;
    if (cfg->tmpl != NULL) {
        g->id_store = calloc(g->n_slots * cfg->rows_per_call, sizeof *g->id_store);
        if (g->id_store == NULL)
            return -ENOMEM;
        /* One stream per group (the state must not start at 0). */
        g->rng = (cfg->seed + 1) * 0x9E3779B97F4A7C15ull ^ (id + 1) * 0xBF58476D1CE4E5B9ull;
        if (g->rng == 0)
            g->rng = 1;
    }

    /* A local subchannel pool gives every channel its own TCP connection: without it, channels
     * to one target share a subchannel and "N connections" would be one. Retries are off (no
     * buffering of sent messages) and the minimal filter stack leaves out client filters a load
     * generator does not need, because every cycle the client spends is taken from the server on
     * a machine they share; deadlines are still enforced. Channelz (per-call counters on shared
     * atomics) is off for the same reason. */
    grpc_arg args[5];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_ENABLE_RETRIES;
    args[2].value.integer = 0;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)GRPC_ARG_MINIMAL_STACK;
    args[3].value.integer = 1;
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = (char *)GRPC_ARG_ENABLE_CHANNELZ;
    args[4].value.integer = 0;
    grpc_channel_args ch_args = {.num_args = 5, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    for (size_t i = 0; i < n_chans; i++) {
        g->chans[i] = grpc_channel_create(cfg->target, creds, &ch_args);
        if (g->chans[i] == NULL) {
            grpc_channel_credentials_release(creds);
            return -EIO;
        }
        g->regs[i] = grpc_channel_register_call(g->chans[i], cfg->method, NULL, NULL);
    }
    grpc_channel_credentials_release(creds);
    for (size_t i = 0; i < g->n_slots; i++) {
        g->slots[i].g = g;
        g->slots[i].chan = i % n_chans;
        g->slots[i].next_free = i + 1 < g->n_slots ? &g->slots[i + 1] : NULL;
        if (g->id_store != NULL)
            g->slots[i].own_ids = g->id_store + i * cfg->rows_per_call;
    }
    g->free_list = &g->slots[0];
    /* Connecting before the clock starts keeps handshakes out of the first calls' latency. A
     * server that is not up is not waited for longer than one call would be: its calls then
     * fail UNAVAILABLE and are counted. */
    double wait_s = cfg->timeout_s < 5 ? cfg->timeout_s : 5;
    for (size_t i = 0; i < n_chans; i++) {
        if (!connect_channel(g->chans[i], g->cq, (uint64_t)(wait_s * (double)NS_PER_S)) &&
            cfg->verbose)
            fprintf(stderr, "fstore-bench: %s not ready after %.1f s\n", cfg->target, wait_s);
    }
    return 0;
}

int lg_run(const lg_config_t *cfg, lg_result_t *res)
{
    bool per_call = cfg->tmpl != NULL;
    if (per_call ? cfg->keys == 0 || cfg->rows_per_call == 0 : cfg->pool_n == 0)
        return -EINVAL;
    if (cfg->target == NULL || cfg->method == NULL || cfg->connections == 0 ||
        (cfg->rate <= 0 && cfg->inflight == 0) || (cfg->calls == 0 && cfg->duration_s <= 0) ||
        cfg->threads == 0 || cfg->threads > cfg->connections || cfg->timeout_s <= 0)
        return -EINVAL;
    int rc = 0;
    size_t n_groups = cfg->threads;
    grpc_slice *payloads = calloc(per_call ? 1 : cfg->pool_n, sizeof *payloads);
    group_t *groups = calloc(n_groups, sizeof *groups);
    size_t inited = 0;
    if (payloads == NULL || groups == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; !per_call && i < cfg->pool_n; i++)
        payloads[i] = grpc_slice_from_static_buffer(cfg->pool[i].data, cfg->pool[i].len);
    for (size_t i = 0; i < n_groups; i++) {
        size_t n = cfg->connections / n_groups + (i < cfg->connections % n_groups ? 1 : 0);
        rc = group_init(&groups[i], cfg, i, n, payloads);
        inited++;
        if (rc != 0)
            goto out;
    }

    /* One timeline for every group, set after every connection is up. */
    uint64_t t_start = mono_ns() + 1000 * 1000;
    uint64_t t_measure = t_start + (uint64_t)(cfg->warmup_s * (double)NS_PER_S);
    for (size_t i = 0; i < n_groups; i++) {
        group_t *g = &groups[i];
        g->t_start = t_start;
        g->t_measure = t_measure;
        g->quota = cfg->calls / n_groups + (i < cfg->calls % n_groups ? 1 : 0);
        if (cfg->rate > 0) {
            double per_group = cfg->rate / (double)n_groups;
            g->interval_ns = (double)NS_PER_S / per_group;
            double measure_s = cfg->calls > 0 ? (double)g->quota / per_group : cfg->duration_s;
            /* Groups are staggered so their sends interleave instead of coinciding. */
            g->t_start = t_start + (uint64_t)(g->interval_ns * (double)i / (double)n_groups);
            g->t_end = t_measure + (uint64_t)(measure_s * (double)NS_PER_S);
        } else {
            g->t_end = cfg->calls > 0 ? UINT64_MAX
                                      : t_measure + (uint64_t)(cfg->duration_s * (double)NS_PER_S);
        }
    }
    for (size_t i = 0; i < n_groups; i++) {
        group_t *g = &groups[i];
        if (cfg->rate > 0) {
            if (pthread_create(&g->poller, NULL, open_poller, g) != 0) {
                rc = -EIO;
                break;
            }
            g->poller_started = true;
            if (pthread_create(&g->sender, NULL, open_sender, g) != 0) {
                pthread_mutex_lock(&g->mu);
                g->sender_done = true;
                pthread_mutex_unlock(&g->mu);
                rc = -EIO;
                break;
            }
            g->sender_started = true;
        } else {
            if (pthread_create(&g->poller, NULL, closed_loop, g) != 0) {
                rc = -EIO;
                break;
            }
            g->poller_started = true;
        }
    }
    /* The main thread only waits, so it can sample the process's CPU when the measured phase
     * starts: set-up, connections and warm-up are left out of the generator's cost. */
    double cpu_start = 0;
    if (rc == 0) {
        sleep_until(t_measure);
        cpu_start = cpu_seconds();
    }
    for (size_t i = 0; i < n_groups; i++) {
        if (groups[i].sender_started)
            pthread_join(groups[i].sender, NULL);
        if (groups[i].poller_started)
            pthread_join(groups[i].poller, NULL);
    }
    if (rc != 0)
        goto out;

    double cpu_end = cpu_seconds();
    memset(res, 0, sizeof *res);
    res->client_cpu_s = cpu_end - cpu_start;
    hist_reset(&res->latency);
    hist_reset(&res->latency_ok);
    hist_reset(&res->send_lag);
    res->rate_target = cfg->rate;
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < n_groups; i++) {
        group_t *g = &groups[i];
        hist_merge(&res->latency, &g->res.latency);
        hist_merge(&res->latency_ok, &g->res.latency_ok);
        hist_merge(&res->send_lag, &g->res.send_lag);
        res->ok += g->res.ok;
        res->failed += g->res.failed;
        res->warmup_ok += g->res.warmup_ok;
        res->warmup_failed += g->res.warmup_failed;
        for (int k = 0; k <= LG_MAX_STATUS; k++) {
            res->status[k] += g->res.status[k];
            res->warmup_status[k] += g->res.warmup_status[k];
        }
        wire_check_merge(&res->check, &g->res.check);
        if (res->first_error[0] == '\0' && g->res.first_error[0] != '\0')
            memcpy(res->first_error, g->res.first_error, sizeof res->first_error);
        if (res->warmup_first_error[0] == '\0' && g->res.warmup_first_error[0] != '\0')
            memcpy(res->warmup_first_error, g->res.warmup_first_error,
                   sizeof res->warmup_first_error);
        if (g->first_sched != 0 && g->first_sched < first)
            first = g->first_sched;
        if (g->last_done > last)
            last = g->last_done;
        if (g->err != 0 && rc == 0)
            rc = g->err;
    }
    /* The measured phase starts when it was due to (t_measure), not at the first send, so a
     * generator that starts late is charged for it. */
    if (first != UINT64_MAX && last > t_measure)
        res->elapsed_s = (double)(last - (first < t_measure ? first : t_measure)) / 1e9;
out:
    for (size_t i = 0; i < inited; i++)
        group_destroy(&groups[i]);
    free(groups);
    free(payloads);
    return rc;
}
