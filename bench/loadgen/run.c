/* bench/loadgen/run.c - `fstore-bench run`: builds the requests, runs the load, reports. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "bench/loadgen/bench_int.h"
#include "clients/c/fstore_client.h"
#include "bench/loadgen/loadgen_int.h"
#include "bench/loadgen/wire_int.h"

#define DEFAULT_GET "/feast.serving.ServingService/GetOnlineFeatures"
#define DEFAULT_WRITE "/fstore.v1.OnlineFeatureService/WriteFeatures"
#define DEFAULT_HEALTH "/grpc.health.v1.Health/Check"
#define DEFAULT_PREDICT "/tensorflow.serving.PredictionService/Predict"
#define MAX_FEATURES 4096

typedef enum scenario { SC_RAW, SC_HEALTH, SC_GET, SC_WRITE, SC_PREDICT } scenario_t;

typedef struct opts {
    scenario_t scenario;
    const char *label;
    const char *target, *method, *data_file, *data_hex;
    const char *features, *feature_service, *join_key, *view, *model, *input;
    const char *request_field; /* get: "NAME=VALUE", a DOUBLE request_context field */
    long views, features_per_view, view_offset;
    size_t entities, rows, write_features, pool;
    int64_t keys, first_key;
    uint64_t seed;
    long view_index; /* write: whose generated values; -1 = the digits in --view */
    bool check, verify, json, short_names, sequential, pooled;
    lg_config_t lg;
} opts_t;

/* What the response checks need besides the ids each call asked for. */
typedef struct check_ctx {
    size_t per_call;
    size_t n_features;
    const char *join_key;
    bool verify;
    scenario_t scenario;
} check_ctx_t;

static void check_response(void *ctx, const int64_t *ids, const uint8_t *buf, size_t len,
                           wire_check_t *c)
{
    const check_ctx_t *cc = ctx;
    if (cc->scenario == SC_WRITE)
        wire_check_write(buf, len, cc->per_call, c);
    else if (cc->scenario == SC_PREDICT)
        wire_check_predict(buf, len, ids, cc->per_call, cc->n_features, cc->verify, c);
    else
        wire_check_get(buf, len, ids, cc->per_call, cc->n_features, cc->join_key, cc->verify, c);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: fstore-bench run --target HOST:PORT [--scenario S] [flags]\n\n"
        "Scenarios (--scenario):\n"
        "  raw     any unary --method with a payload from --data-file or --data-hex (default:\n"
        "          an empty message)\n"
        "  health  " DEFAULT_HEALTH " (the cost of a gRPC call)\n"
        "  get     GetOnlineFeatures (default " DEFAULT_GET "),\n"
        "          --entities random INT64 ids from [--first-key, --first-key + --keys)\n"
        "  write   WriteFeatures (default " DEFAULT_WRITE "),\n"
        "          --rows random ids x --write-features generated features f0.. into --view\n"
        "  predict Predict (default " DEFAULT_PREDICT "),\n"
        "          model binding --model with --entities random ids in input tensor --input;\n"
        "          --check expects --views x --features-per-view output tensors\n"
        "  get, write and predict draw fresh ids for every call (see --pooled, --sequential)\n\n"
        "Load:\n"
        "  -c, --connections N   TCP connections (default 1)\n"
        "  -m, --inflight M      closed loop: calls outstanding per connection (default 1)\n"
        "  -t, --threads T       client threads, each with its own completion queue (default 1)\n"
        "  -r, --rate R          open loop at R calls/s in total; latency counts from each\n"
        "                        call's scheduled send time (default: closed loop)\n"
        "      --max-outstanding N  open loop: calls outstanding at most (default 10000)\n"
        "  -d, --duration S      measured seconds (default 10)\n"
        "  -n, --calls N         measured calls instead of a duration\n"
        "  -w, --warmup S        seconds of unmeasured load first (default 1); its calls'\n"
        "                        statuses are counted apart (warm-up ok/failed)\n"
        "      --timeout S       per-call deadline (default 10)\n"
        "      --sched-slice-us N  the generator's threads ask Linux 6.12+ for an N us CPU\n"
        "                        slice, as fstore serve --sched-slice-us (default 0: kernel's)\n\n"
        "Requests:\n"
        "      --method PATH     the gRPC method (each scenario has a default)\n"
        "      --data-file F, --data-hex HEX   raw: the serialized request\n"
        "      --features LIST   get: comma-separated view:feature references\n"
        "      --views N --features-per-view K [--view-offset O]   get: the generated\n"
        "                        dataset's references v<O>..v<O+N-1>:f0..f<K-1> (default 5 x 10)\n"
        "      --feature-service NAME   get: by feature service instead of a list\n"
        "      --short-feature-names    get: ask for bare feature names (full_feature_names\n"
        "                        off; the generated views share feature names, so this only\n"
        "                        suits single-view lists)\n"
        "      --entities E      get: entities per call (default 1)\n"
        "      --request-field NAME=VALUE   get: a DOUBLE request_context field, VALUE for\n"
        "                        every entity row (on-demand features' request data)\n"
        "      --keys K          ids are drawn from K consecutive ids (default 1000000)\n"
        "      --first-key F     the first id (default 0)\n"
        "      --join-key NAME   (default id)\n"
        "      --view NAME       write: the view (default w0)\n"
        "      --view-index N    write: the generated values of view N (default: the digits\n"
        "                        ending --view, so --view v3 writes what v3 was loaded with)\n"
        "      --sequential      ids in order instead of random, from a pool of --pool\n"
        "                        requests sent round-robin: request i holds ids first+i*R ..\n"
        "                        first+i*R+R-1 (wrapping at --keys), so --pool K/R -n K/R\n"
        "                        writes every id once\n"
        "      --rows R          write: rows per call (default 100)\n"
        "      --model NAME      predict: the model binding (default m1)\n"
        "      --input NAME      predict: the entity input tensor (default id)\n"
        "      --write-features K  write: features per row (default 10)\n"
        "      --pooled          get, write, predict: send --pool pre-built requests of random\n"
        "                        ids round-robin (at most N x ids-per-call distinct ids) instead\n"
        "                        of fresh random ids for every call (the default, which costs\n"
        "                        the client a varint per id)\n"
        "      --pool N          requests pre-built for --pooled and --sequential (default\n"
        "                        4096; otherwise unused)\n"
        "      --seed N          key sequence seed (default 1)\n\n"
        "Output:\n"
        "      --check           decode every response: count non-PRESENT statuses, bad shapes,\n"
        "                        unacknowledged rows; exit 1 on any error (warm-up errors\n"
        "                        included) or problem\n"
        "      --verify          with --check, compare every value with the generated dataset;\n"
        "                        a column or tensor whose name is neither a generated feature\n"
        "                        (v<V>__f<F>, so full feature names) nor the join key is a\n"
        "                        problem (unknown columns)\n"
        "      --check-every N   --check one response in N (decoding a wide response costs the\n"
        "                        client about as much as receiving it; errors are still all\n"
        "                        counted)\n"
        "      --json            one JSON object instead of text. Latency (\"all\") counts\n"
        "                        every completed measured call, failed ones included, so\n"
        "                        errors can only make it worse; \"ok\" the OK calls alone\n"
        "      --label TEXT      a name carried into the output\n"
        "  -v, --verbose\n");
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int load_raw(const opts_t *o, wbuf_t *out)
{
    if (o->data_hex != NULL) {
        size_t n = strlen(o->data_hex);
        if (n % 2 != 0)
            return -EINVAL;
        for (size_t i = 0; i < n; i += 2) {
            int hi = hexval(o->data_hex[i]), lo = hexval(o->data_hex[i + 1]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            uint8_t b = (uint8_t)(hi * 16 + lo);
            wbuf_raw(out, &b, 1);
        }
    } else if (o->data_file != NULL) {
        FILE *f = fopen(o->data_file, "rb");
        if (f == NULL)
            return -errno;
        uint8_t tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            wbuf_raw(out, tmp, n);
        fclose(f);
    }
    return out->oom ? -ENOMEM : 0;
}

/* Splits the feature list (or generates the dataset's references). Returns: count or -errno. */
static long build_features(const opts_t *o, char **refs, char *storage, size_t cap)
{
    long n = 0;
    if (o->features != NULL) {
        if (strlen(o->features) >= cap)
            return -E2BIG;
        strcpy(storage, o->features);
        for (char *save = NULL, *t = strtok_r(storage, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (n >= MAX_FEATURES)
                return -E2BIG;
            refs[n++] = t;
        }
        return n;
    }
    size_t used = 0;
    for (long v = o->view_offset; v < o->view_offset + o->views; v++) {
        for (long f = 0; f < o->features_per_view; f++) {
            if (n >= MAX_FEATURES || used + 32 > cap)
                return -E2BIG;
            refs[n++] = storage + used;
            used += (size_t)snprintf(storage + used, 32, "v%ld:f%ld", v, f) + 1;
        }
    }
    return n;
}

static double client_cpu_us; /* the generator's CPU per measured call */

static void print_ms(FILE *f, const char *name, uint64_t ns)
{
    fprintf(f, "  %s %.3f", name, (double)ns / 1e6);
}

static void print_latency(const char *title, const hist_t *h)
{
    printf("  %s", title);
    print_ms(stdout, "p50", hist_percentile(h, 50));
    print_ms(stdout, "p90", hist_percentile(h, 90));
    print_ms(stdout, "p99", hist_percentile(h, 99));
    print_ms(stdout, "p99.9", hist_percentile(h, 99.9));
    print_ms(stdout, "max", h->max_ns);
    printf("  mean %.3f\n", hist_mean(h) / 1e6);
}

/* The failed statuses among counts, as " NAME count" pairs. */
static void print_statuses(const uint64_t *counts)
{
    for (int k = 1; k <= LG_MAX_STATUS; k++) {
        if (counts[k] > 0)
            printf(" %s %" PRIu64, lg_status_name(k), counts[k]);
    }
}

/* Where a run's ids come from: "per_call" (fresh random ids every call), "pooled" (random ids
 * in --pool requests), "sequential", or "none" (raw, health). */
static const char *ids_mode(const opts_t *o)
{
    if (o->lg.tmpl != NULL)
        return "per_call";
    if (o->scenario == SC_RAW || o->scenario == SC_HEALTH)
        return "none";
    return o->sequential ? "sequential" : "pooled";
}

static void report_text(const opts_t *o, const lg_result_t *r, size_t per_call)
{
    const lg_config_t *c = &o->lg;
    double rps = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
    printf("fstore-bench %s%s%s -> %s %s\n", o->label ? o->label : "", o->label ? ": " : "",
           c->method, c->target, c->rate > 0 ? "(open loop)" : "(closed loop)");
    if (c->rate > 0)
        printf("  load         %.0f calls/s scheduled over %zu connection(s), %zu thread(s)\n",
               c->rate, c->connections, c->threads);
    else
        printf("  load         %zu connection(s) x %zu in flight, %zu thread(s)\n", c->connections,
               c->inflight, c->threads);
    printf("  calls        %" PRIu64 " ok, %" PRIu64 " failed in %.2f s\n", r->ok, r->failed,
           r->elapsed_s);
    if (r->failed > 0) {
        printf("  errors      ");
        print_statuses(r->status);
        printf("\n  first error  %s\n", r->first_error);
    }
    printf("  warm-up      %" PRIu64 " ok, %" PRIu64 " failed in %.1f s (not measured)\n",
           r->warmup_ok, r->warmup_failed, c->warmup_s);
    if (r->warmup_failed > 0) {
        printf("  warm-up err ");
        print_statuses(r->warmup_status);
        printf("\n  first error  %s\n", r->warmup_first_error);
    }
    if (o->lg.tmpl != NULL)
        printf("  ids          fresh random ids from [%" PRId64 ", %" PRId64 ") every call\n",
               o->first_key, o->first_key + o->keys);
    else if (o->lg.rows_per_call > 0 && strcmp(ids_mode(o), "none") != 0)
        printf("  ids          %s, %zu requests round-robin\n", ids_mode(o), o->lg.pool_n);
    printf("  throughput   %.1f calls/s, %.1f rows/s (%zu per call)\n", rps, rps * (double)per_call,
           per_call);
    print_latency("latency ms  ", &r->latency);
    if (r->failed > 0) {
        printf("               (every completed call, failed ones included)\n");
        print_latency("ok calls ms ", &r->latency_ok);
    }
    printf("  client cpu   %.1f us per call (user + system, all of the generator's threads)\n",
           client_cpu_us);
    if (c->rate > 0) {
        printf("  send lag ms ");
        print_ms(stdout, "p50", hist_percentile(&r->send_lag, 50));
        print_ms(stdout, "p99", hist_percentile(&r->send_lag, 99));
        print_ms(stdout, "max", r->send_lag.max_ns);
        printf("  (included in latency)\n");
        printf(
            "               send lag = actual - scheduled send: the generator's own delay, or\n"
            "               waiting for a free slot while --max-outstanding calls are pending\n");
    }
    if (o->check) {
        const wire_check_t *k = &r->check;
        printf("  check        %" PRIu64 " responses; statuses PRESENT %" PRIu64
               ", NULL_VALUE %" PRIu64 ", NOT_FOUND %" PRIu64 ", OUTSIDE_MAX_AGE %" PRIu64
               ", INVALID %" PRIu64 "\n",
               k->responses, k->status[1], k->status[2], k->status[3], k->status[4], k->status[0]);
        printf("               values %" PRIu64 " (verified %" PRIu64 ", wrong %" PRIu64
               "), bad shape %" PRIu64 ", unknown columns %" PRIu64 ", malformed %" PRIu64
               ", rows acked %" PRIu64 "\n",
               k->values, k->verified, k->wrong, k->bad_shape, k->unknown, k->malformed,
               k->rows_acked);
        printf("  verdict      %s\n", lg_result_passed(r) ? "PASS" : "FAIL");
    }
}

static void json_string(const char *s)
{
    putchar('"');
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void json_latency(const char *name, const hist_t *h)
{
    printf("\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
           "\"max\":%.1f,\"mean\":%.1f,\"min\":%.1f}",
           name, h->total, (double)hist_percentile(h, 50) / 1e3,
           (double)hist_percentile(h, 90) / 1e3, (double)hist_percentile(h, 99) / 1e3,
           (double)hist_percentile(h, 99.9) / 1e3, (double)h->max_ns / 1e3, hist_mean(h) / 1e3,
           h->total ? (double)h->min_ns / 1e3 : 0.0);
}

/* {"NAME":count,...} of the failed statuses among counts. */
static void json_statuses(const uint64_t *counts)
{
    bool first = true;
    putchar('{');
    for (int k = 1; k <= LG_MAX_STATUS; k++) {
        if (counts[k] > 0) {
            printf("%s\"%s\":%" PRIu64, first ? "" : ",", lg_status_name(k), counts[k]);
            first = false;
        }
    }
    putchar('}');
}

static void report_json(const opts_t *o, const lg_result_t *r, size_t per_call)
{
    const lg_config_t *c = &o->lg;
    double rps = r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0;
    printf("{\"label\":");
    json_string(o->label ? o->label : "");
    printf(",\"method\":");
    json_string(c->method);
    printf(",\"target\":");
    json_string(c->target);
    printf(",\"mode\":\"%s\",\"connections\":%zu,\"inflight\":%zu,\"threads\":%zu,"
           "\"rate_target\":%.1f,\"warmup_s\":%.2f,\"elapsed_s\":%.3f,\"rows_per_call\":%zu,"
           "\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"rps\":%.1f,\"rows_per_s\":%.1f,",
           c->rate > 0 ? "open" : "closed", c->connections, c->inflight, c->threads, c->rate,
           c->warmup_s, r->elapsed_s, per_call, r->ok, r->failed, rps, rps * (double)per_call);
    printf("\"client_cpu_us_per_call\":%.2f,\"ids\":\"%s\",", client_cpu_us, ids_mode(o));
    printf("\"errors\":");
    json_statuses(r->status);
    printf(",\"first_error\":");
    json_string(r->first_error);
    printf(",\"warmup_ok\":%" PRIu64 ",\"warmup_failed\":%" PRIu64 ",\"warmup_errors\":",
           r->warmup_ok, r->warmup_failed);
    json_statuses(r->warmup_status);
    printf(",\"warmup_first_error\":");
    json_string(r->warmup_first_error);
    /* "all" holds every completed measured call, failed ones included; "ok" the OK ones. */
    printf(",\"latency_us\":{");
    json_latency("all", &r->latency);
    printf(",");
    json_latency("ok", &r->latency_ok);
    printf("},");
    json_latency("send_lag_us", &r->send_lag);
    if (o->check) {
        const wire_check_t *k = &r->check;
        printf(",\"check\":{\"responses\":%" PRIu64 ",\"present\":%" PRIu64
               ",\"null_value\":%" PRIu64 ",\"not_found\":%" PRIu64 ",\"outside_max_age\":%" PRIu64
               ",\"invalid\":%" PRIu64 ",\"values\":%" PRIu64 ",\"verified\":%" PRIu64
               ",\"wrong\":%" PRIu64 ",\"bad_shape\":%" PRIu64 ",\"unknown_columns\":%" PRIu64
               ",\"malformed\":%" PRIu64 ",\"rows_acked\":%" PRIu64 ",\"problems\":%" PRIu64 "}",
               k->responses, k->status[1], k->status[2], k->status[3], k->status[4], k->status[0],
               k->values, k->verified, k->wrong, k->bad_shape, k->unknown, k->malformed,
               k->rows_acked, wire_check_problems(k));
    }
    printf("}\n");
}

static int parse(int argc, char **argv, opts_t *o)
{
    enum {
        O_SCENARIO = 256,
        O_TARGET,
        O_METHOD,
        O_DATA_FILE,
        O_DATA_HEX,
        O_FEATURES,
        O_SERVICE,
        O_VIEWS,
        O_FPV,
        O_VIEW_OFFSET,
        O_FULL,
        O_ENTITIES,
        O_KEYS,
        O_FIRST_KEY,
        O_JOIN_KEY,
        O_VIEW,
        O_ROWS,
        O_WRITE_FEATURES,
        O_POOL,
        O_SEED,
        O_CHECK,
        O_VERIFY,
        O_JSON,
        O_LABEL,
        O_TIMEOUT,
        O_MAX_OUT,
        O_SLICE,
        O_VIEW_INDEX,
        O_SEQUENTIAL,
        O_CHECK_EVERY,
        O_MODEL,
        O_INPUT,
        O_POOLED,
        O_REQUEST_FIELD,
    };
    static const struct option opts[] = {
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"target", required_argument, NULL, O_TARGET},
        {"method", required_argument, NULL, O_METHOD},
        {"data-file", required_argument, NULL, O_DATA_FILE},
        {"data-hex", required_argument, NULL, O_DATA_HEX},
        {"features", required_argument, NULL, O_FEATURES},
        {"feature-service", required_argument, NULL, O_SERVICE},
        {"views", required_argument, NULL, O_VIEWS},
        {"features-per-view", required_argument, NULL, O_FPV},
        {"view-offset", required_argument, NULL, O_VIEW_OFFSET},
        {"short-feature-names", no_argument, NULL, O_FULL},
        {"view-index", required_argument, NULL, O_VIEW_INDEX},
        {"sequential", no_argument, NULL, O_SEQUENTIAL},
        {"check-every", required_argument, NULL, O_CHECK_EVERY},
        {"request-field", required_argument, NULL, O_REQUEST_FIELD},
        {"model", required_argument, NULL, O_MODEL},
        {"input", required_argument, NULL, O_INPUT},
        {"entities", required_argument, NULL, O_ENTITIES},
        {"keys", required_argument, NULL, O_KEYS},
        {"first-key", required_argument, NULL, O_FIRST_KEY},
        {"join-key", required_argument, NULL, O_JOIN_KEY},
        {"view", required_argument, NULL, O_VIEW},
        {"rows", required_argument, NULL, O_ROWS},
        {"write-features", required_argument, NULL, O_WRITE_FEATURES},
        {"pool", required_argument, NULL, O_POOL},
        {"pooled", no_argument, NULL, O_POOLED},
        {"seed", required_argument, NULL, O_SEED},
        {"check", no_argument, NULL, O_CHECK},
        {"verify", no_argument, NULL, O_VERIFY},
        {"json", no_argument, NULL, O_JSON},
        {"label", required_argument, NULL, O_LABEL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"max-outstanding", required_argument, NULL, O_MAX_OUT},
        {"sched-slice-us", required_argument, NULL, O_SLICE},
        {"connections", required_argument, NULL, 'c'},
        {"inflight", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"calls", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:m:t:r:d:n:w:vh", opts, NULL)) != -1) {
        switch (c) {
        case O_SCENARIO:
            if (strcmp(optarg, "raw") == 0)
                o->scenario = SC_RAW;
            else if (strcmp(optarg, "health") == 0)
                o->scenario = SC_HEALTH;
            else if (strcmp(optarg, "get") == 0)
                o->scenario = SC_GET;
            else if (strcmp(optarg, "write") == 0)
                o->scenario = SC_WRITE;
            else if (strcmp(optarg, "predict") == 0)
                o->scenario = SC_PREDICT;
            else {
                fprintf(stderr, "fstore-bench: unknown scenario '%s'\n", optarg);
                return 2;
            }
            break;
        case O_TARGET:
            o->target = optarg;
            break;
        case O_METHOD:
            o->method = optarg;
            break;
        case O_DATA_FILE:
            o->data_file = optarg;
            break;
        case O_DATA_HEX:
            o->data_hex = optarg;
            break;
        case O_FEATURES:
            o->features = optarg;
            break;
        case O_SERVICE:
            o->feature_service = optarg;
            break;
        case O_VIEWS:
            o->views = strtol(optarg, NULL, 10);
            break;
        case O_FPV:
            o->features_per_view = strtol(optarg, NULL, 10);
            break;
        case O_VIEW_OFFSET:
            o->view_offset = strtol(optarg, NULL, 10);
            break;
        case O_FULL:
            o->short_names = true;
            break;
        case O_VIEW_INDEX:
            o->view_index = strtol(optarg, NULL, 10);
            break;
        case O_SEQUENTIAL:
            o->sequential = true;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_INPUT:
            o->input = optarg;
            break;
        case O_CHECK_EVERY:
            o->lg.check_every = (unsigned)strtoul(optarg, NULL, 10);
            o->check = true;
            break;
        case O_REQUEST_FIELD:
            o->request_field = optarg;
            break;
        case O_ENTITIES:
            o->entities = strtoul(optarg, NULL, 10);
            break;
        case O_KEYS:
            o->keys = strtoll(optarg, NULL, 10);
            break;
        case O_FIRST_KEY:
            o->first_key = strtoll(optarg, NULL, 10);
            break;
        case O_JOIN_KEY:
            o->join_key = optarg;
            break;
        case O_VIEW:
            o->view = optarg;
            break;
        case O_ROWS:
            o->rows = strtoul(optarg, NULL, 10);
            break;
        case O_WRITE_FEATURES:
            o->write_features = strtoul(optarg, NULL, 10);
            break;
        case O_POOL:
            o->pool = strtoul(optarg, NULL, 10);
            break;
        case O_POOLED:
            o->pooled = true;
            break;
        case O_SEED:
            o->seed = strtoull(optarg, NULL, 10);
            break;
        case O_CHECK:
            o->check = true;
            break;
        case O_VERIFY:
            o->verify = true;
            o->check = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_LABEL:
            o->label = optarg;
            break;
        case O_TIMEOUT:
            o->lg.timeout_s = strtod(optarg, NULL);
            break;
        case O_MAX_OUT:
            o->lg.max_outstanding = strtoul(optarg, NULL, 10);
            break;
        case O_SLICE:
            o->lg.sched_slice_us = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o->lg.connections = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            o->lg.inflight = strtoul(optarg, NULL, 10);
            break;
        case 't':
            o->lg.threads = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->lg.rate = strtod(optarg, NULL);
            break;
        case 'd':
            o->lg.duration_s = strtod(optarg, NULL);
            break;
        case 'n':
            o->lg.calls = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            o->lg.warmup_s = strtod(optarg, NULL);
            break;
        case 'v':
            o->lg.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fstore-bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o->target == NULL) {
        fprintf(stderr, "fstore-bench: --target HOST:PORT is required\n");
        return 2;
    }
    if (o->lg.threads > o->lg.connections)
        o->lg.threads = o->lg.connections;
    if (o->lg.connections == 0 || o->lg.threads == 0 || o->lg.inflight == 0 || o->pool == 0 ||
        o->keys <= 0 || o->entities == 0 || o->rows == 0 || o->lg.timeout_s <= 0 ||
        o->lg.rate < 0 || o->lg.warmup_s < 0 || (o->lg.calls == 0 && o->lg.duration_s <= 0)) {
        fprintf(stderr, "fstore-bench: counts, --duration and --timeout must be positive\n");
        return 2;
    }
    return -1;
}

int bench__cmd_run(int argc, char **argv)
{
    opts_t o = {
        .scenario = SC_RAW,
        .join_key = "id",
        .view = "w0",
        .model = "m1",
        .input = "id",
        .views = 5,
        .features_per_view = 10,
        .entities = 1,
        .rows = 100,
        .write_features = 10,
        .pool = 4096,
        .keys = 1000000,
        .seed = 1,
        .view_index = -1,
        .lg = {.connections = 1,
               .inflight = 1,
               .threads = 1,
               .max_outstanding = 10000,
               .warmup_s = 1,
               .duration_s = 10,
               .timeout_s = 10},
    };
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    rc = 1;

    static char *refs[MAX_FEATURES];
    char *ref_storage = NULL;
    lg_payload_t *pool = NULL;
    wbuf_t *bufs = NULL;
    int64_t *ids = NULL;
    wire_tmpl_t *tmpl = NULL;
    long n_features = 0, view_index = o.view_index;
    size_t per_call = 1;
    check_ctx_t cc = {.join_key = o.join_key};

    switch (o.scenario) {
    case SC_HEALTH:
        if (o.method == NULL)
            o.method = DEFAULT_HEALTH;
        o.pool = 1;
        break;
    case SC_RAW:
        if (o.method == NULL) {
            fprintf(stderr, "fstore-bench: --scenario raw needs --method\n");
            return 2;
        }
        o.pool = 1;
        break;
    case SC_GET:
        if (o.method == NULL)
            o.method = DEFAULT_GET;
        per_call = o.entities;
        if (o.feature_service == NULL) {
            size_t cap = o.features ? strlen(o.features) + 1 : MAX_FEATURES * 32;
            ref_storage = malloc(cap);
            n_features = ref_storage ? build_features(&o, refs, ref_storage, cap) : -ENOMEM;
            if (n_features <= 0) {
                fprintf(stderr, "fstore-bench: bad feature list (%s)\n",
                        n_features == 0 ? "empty" : strerror((int)-n_features));
                free(ref_storage);
                return 2;
            }
        }
        break;
    case SC_PREDICT:
        if (o.method == NULL)
            o.method = DEFAULT_PREDICT;
        per_call = o.entities;
        n_features = o.views * o.features_per_view;
        break;
    case SC_WRITE:
        if (o.method == NULL)
            o.method = DEFAULT_WRITE;
        per_call = o.rows;
        if (view_index < 0) {
            const char *d = o.view + strlen(o.view);
            while (d > o.view && d[-1] >= '0' && d[-1] <= '9')
                d--;
            view_index = strtol(d, NULL, 10);
        }
        break;
    }

    bool has_ids = o.scenario == SC_GET || o.scenario == SC_WRITE || o.scenario == SC_PREDICT;
    wire_get_spec_t spec = {
        .feature_service = o.feature_service,
        .features = refs,
        .n_features = (size_t)n_features,
        .join_key = o.join_key,
        /* Full names by default: the generated views share feature names, and a server must
         * refuse duplicate short names. */
        .full_feature_names = !o.short_names,
    };
    char field_name[128];
    if (o.request_field != NULL) {
        const char *eq = strchr(o.request_field, '=');
        if (eq == NULL || eq == o.request_field ||
            (size_t)(eq - o.request_field) >= sizeof field_name) {
            fprintf(stderr, "fstore-bench: --request-field wants NAME=VALUE\n");
            return 2;
        }
        snprintf(field_name, sizeof field_name, "%.*s", (int)(eq - o.request_field),
                 o.request_field);
        spec.request_field = field_name;
        spec.request_value = strtod(eq + 1, NULL);
    }
    if (has_ids && !o.sequential && !o.pooled) {
        /* Fresh ids for every call: only the template is built now, and no pool. */
        int err = 0;
        if (o.scenario == SC_GET)
            err = wire_tmpl_get(&spec, per_call, &tmpl);
        else if (o.scenario == SC_WRITE)
            err = wire_tmpl_write(o.view, (uint32_t)view_index, o.join_key,
                                  (uint32_t)o.write_features, per_call, 0, &tmpl);
        else
            err = wire_tmpl_predict(o.model, o.input, per_call, &tmpl);
        if (err != 0) {
            fprintf(stderr, "fstore-bench: cannot build the request: %s\n", strerror(-err));
            goto out;
        }
        o.pool = 0;
    }

    pool = calloc(o.pool ? o.pool : 1, sizeof *pool);
    bufs = calloc(o.pool ? o.pool : 1, sizeof *bufs);
    ids = calloc(o.pool ? o.pool * per_call : 1, sizeof *ids);
    if (pool == NULL || bufs == NULL || ids == NULL) {
        fprintf(stderr, "fstore-bench: out of memory for a pool of %zu requests\n", o.pool);
        goto out;
    }
    uint64_t rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < o.pool; i++) {
        int64_t *row = ids + i * per_call;
        int err = 0;
        if (has_ids) {
            for (size_t k = 0; k < per_call; k++) {
                uint64_t r = o.sequential ? i * per_call + k : xorshift(&rng);
                row[k] = o.first_key + (int64_t)(r % (uint64_t)o.keys);
            }
        }
        if (o.scenario == SC_GET) {
            err = wire_get_request(&spec, row, per_call, &bufs[i]);
        } else if (o.scenario == SC_WRITE) {
            err = wire_write_request(o.view, (uint32_t)view_index, o.join_key,
                                     (uint32_t)o.write_features, row, per_call, 0, &bufs[i]);
        } else if (o.scenario == SC_PREDICT) {
            err = wire_predict_request(o.model, o.input, row, per_call, &bufs[i]);
        } else if (o.scenario == SC_RAW) {
            err = load_raw(&o, &bufs[i]);
        }
        if (err != 0) {
            fprintf(stderr, "fstore-bench: cannot build the request: %s\n", strerror(-err));
            goto out;
        }
        pool[i].data = bufs[i].data ? bufs[i].data : (const uint8_t *)"";
        pool[i].len = bufs[i].len;
        pool[i].ids = has_ids ? row : NULL;
    }

    cc.per_call = per_call;
    cc.n_features = o.feature_service ? 0 : (size_t)n_features;
    cc.verify = o.verify;
    cc.scenario = o.scenario;
    o.lg.target = o.target;
    o.lg.method = o.method;
    o.lg.tmpl = tmpl;
    o.lg.first_key = o.first_key;
    o.lg.keys = (uint64_t)o.keys;
    o.lg.seed = o.seed;
    o.lg.pool = pool;
    o.lg.pool_n = o.pool;
    o.lg.rows_per_call = per_call;
    if (o.check && has_ids) {
        o.lg.check = check_response;
        o.lg.check_ctx = &cc;
    }

    fstore_grpc_init();
    lg_result_t *res = calloc(1, sizeof *res);
    int err = res ? lg_run(&o.lg, res) : -ENOMEM;
    if (err == 0 && res->ok + res->failed > 0)
        client_cpu_us = res->client_cpu_s * 1e6 / (double)(res->ok + res->failed);
    if (err != 0) {
        fprintf(stderr, "fstore-bench: run failed: %s\n", strerror(-err));
    } else {
        if (o.json)
            report_json(&o, res, per_call);
        else
            report_text(&o, res, per_call);
        fflush(stdout);
        rc = o.check && !lg_result_passed(res) ? 1 : 0;
    }
    free(res);
    grpc_shutdown();
out:
    for (size_t i = 0; bufs != NULL && i < o.pool; i++)
        wbuf_free(&bufs[i]);
    free(bufs);
    free(pool);
    free(ids);
    free(ref_storage);
    wire_tmpl_free(tmpl);
    return rc;
}
