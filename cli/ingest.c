/* cli/ingest.c - `fstore ingest`: load CSV or JSON Lines rows into a view, all or nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <jansson.h>

#include "catalog/catalog.h"
#include "cli/cli_int.h"
#include "base/base.h"
#include "clients/c/fstore_client.h"
#include "codec/codec.h"
#include "storage/store.h"

/*
 * The whole input is read into memory, parsed and validated row by row (cells typed by the
 * catalog, then catalog_validate_value() and the key checks), and handed to a store bulk load in
 * chunks of --batch-rows; the bulk streams each chunk into its one open transaction while the
 * parse goes on. Any bad row stops the hand-over but not the parse, so every bad row (up to
 * --max-errors) is reported with its line; the transaction is committed only if every row is
 * good, and aborted otherwise (the chunks already streamed included): all or nothing.
 * Three threads: this one parses, the loader encodes (below), the store's writer writes.
 */

#define TS_COLUMN "event_timestamp"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fstore ingest --data-dir DIR --view NAME[@vN] [--format csv|jsonl]\n"
            "                     [--batch-rows N] [--sync full|none] [--max-errors N] FILE\n"
            "       fstore ingest --replication URLS --project P --view NAME[@vN] [...] FILE\n"
            "       fstore ingest --target HOST:PORT [--catalog PATH] [--token-file F]\n"
            "                     --view NAME[@vN] [...] FILE\n"
            "\n"
            "Loads FILE (- = standard input) into feature view NAME (its default version, or\n"
            "vN) of the catalog applied to DIR. All or nothing: rows are typed and validated\n"
            "against the catalog first, every bad row is reported with its line number, and\n"
            "only a file without bad rows is committed, in one transaction.\n"
            "\n"
            "CSV (RFC 4180): a header row naming the view's join keys (all required), any\n"
            "subset of its features, and optionally event_timestamp; quoted fields may hold\n"
            "commas, quotes (\"\") and newlines. An empty feature cell is an explicit null.\n"
            "List features are JSON arrays in a cell: \"[1, 2, 3]\". BYTES cells are raw text, or\n"
            "base64 after a b64: prefix. BOOL cells: true/false/1/0.\n"
            "JSON Lines: one object per line with the same keys; a missing feature is left as\n"
            "stored, null is an explicit null.\n"
            "event_timestamp: RFC 3339 (2024-05-01T12:00:00.5Z, +02:00 offsets; T or a space;\n"
            "two digits per field, a real date: no Feb 30) or seconds since the epoch (fractions\n"
            "and a sign allowed); absent or empty = now. Rows with an older event time than the\n"
            "stored row, or than an earlier row of the file, are skipped (last write wins).\n"
            "\n"
            "With --replication the rows go to the replication log instead, validated against\n"
            "the log's catalog: the whole file is checked first and nothing is published if a\n"
            "row is bad; then it is published in messages of at most --batch-rows rows (fewer\n"
            "when a message would pass the log's size limit), each acknowledged by JetStream\n"
            "before the next, and every node applies them. A failure midway leaves the\n"
            "messages before it published (the output says up to which sequence): run it\n"
            "again, rows are idempotent by event time.\n"
            "\n"
            "With --target the rows go to a running fstore server over gRPC (WriteFeatures),\n"
            "validated first against the server's catalog (GetCatalog, or --catalog PATH: the\n"
            "same catalog as files) and again by the server: nothing is sent if a row is\n"
            "bad; then requests of at most --batch-rows rows and 5000 (fewer when the server's\n"
            "--max-write-rows or --max-message-bytes says so). A failure midway leaves the\n"
            "requests before it written (the output says how many rows): run it again. This\n"
            "is how a Kubernetes Job loads data into pods whose volumes it cannot mount.\n"
            "FSTORE_DATA_DIR in the environment yields to --target and --replication.\n"
            "\n"
            "flags:\n"
            "  -d, --data-dir DIR     data directory (env FSTORE_DATA_DIR)\n"
            "  -v, --view REF         NAME or NAME@vN\n"
            "  -F, --format FMT       csv or jsonl (default: jsonl for *.jsonl / *.ndjson,\n"
            "                         else csv)\n"
            "  -b, --batch-rows N     rows validated and encoded per step (default 10000)\n"
            "      --sync MODE        full (fsync the commit, default) or none (env FSTORE_SYNC)\n"
            "      --max-errors N     bad rows reported before giving up listing (default 20)\n"
            "      --to T             online or online_and_offline (the default: the online\n"
            "                         rows, and the history of views that keep one), or\n"
            "                         offline (the history only: backfills, late data)\n"
            "      --max-future-skew D  refuse event times more than D ahead of this machine's\n"
            "                         clock, e.g. 2d (default 1d; with --target, the\n"
            "                         server's own bound applies)\n"
            "      --project P        with --replication: the catalog's project (names the\n"
            "                         stream, FSTORE_<P>)\n"
            "      --target HOST:PORT a running server's gRPC address (env FSTORE_TARGET)\n"
            "      --token-file F     with --target: a file holding a bearer token the server's\n"
            "                         --tokens-file knows: scope write (and admin for\n"
            "                         GetCatalog, without --catalog); env "
            "FSTORE_TOKEN_FILE\n" CLI_CLIENT_TLS_USAGE
            "  -c, --catalog PATH     with --target: the server's catalog as a file or directory\n"
            "  -h, --help             this help\n"
            "\n"
            "\n");
    cli__repl_usage(f);
    fprintf(f, "\nexit status: 0 loaded, 1 bad rows or failure (nothing loaded), 2 usage error\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Typed values from text (JSON values: catalog_value_from_json() with CATALOG_JSON_TEXT)        */

/* Writes "dtype: ..." style messages. */
static int bad(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A CSV cell of type t. Lists are JSON arrays, kept alive in *keep. */
static int value_text(base_arena_t *p, catalog_dtype_t t, const char *s, size_t n, json_t **keep,
                      catalog_value_t *out, char *why, size_t cap)
{
    out->type = t;
    if (catalog_dtype_is_list(t)) {
        json_error_t jerr;
        json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
        if (j == NULL)
            return bad(why, cap, "want %s as a JSON array: %s", catalog_dtype_name(t), jerr.text);
        int rc = catalog_value_from_json(j, t, CATALOG_JSON_TEXT, p, out, why, cap);
        *keep = j;
        return rc;
    }
    int64_t x;
    switch (t) {
    case CATALOG_DTYPE_INT32:
    case CATALOG_DTYPE_INT64:
        if (base_parse_int(s, n, &x) != 0)
            return bad(why, cap, "want %s, got '%.*s'", catalog_dtype_name(t),
                       (int)(n > 40 ? 40 : n), s);
        if (t == CATALOG_DTYPE_INT32 && (x < INT32_MIN || x > INT32_MAX))
            return bad(why, cap, "%" PRId64 " is out of range for INT32", x);
        if (t == CATALOG_DTYPE_INT32)
            out->u.i32 = (int32_t)x;
        else
            out->u.i64 = x;
        return 0;
    case CATALOG_DTYPE_UNIX_TIMESTAMP:
        if (base_parse_int(s, n, &x) == 0) {
            out->u.i64 = x;
            return 0;
        }
        if (base_parse_time(s, n, &x) != 0)
            return bad(why, cap, "want UNIX_TIMESTAMP (seconds or RFC 3339)");
        out->u.i64 = x / 1000000;
        return 0;
    case CATALOG_DTYPE_FLOAT:
    case CATALOG_DTYPE_DOUBLE: {
        double d;
        if (base_parse_double(s, n, &d) != 0)
            return bad(why, cap, "want %s, got '%.*s'", catalog_dtype_name(t),
                       (int)(n > 40 ? 40 : n), s);
        if (t == CATALOG_DTYPE_FLOAT)
            out->u.f32 = (float)d;
        else
            out->u.f64 = d;
        return 0;
    }
    case CATALOG_DTYPE_BOOL:
        if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
            out->u.b = true;
        else if ((n == 5 && strncasecmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
            out->u.b = false;
        else
            return bad(why, cap, "want BOOL (true, false, 1 or 0)");
        return 0;
    case CATALOG_DTYPE_STRING:
        out->u.bytes.data = (const uint8_t *)s;
        out->u.bytes.len = n;
        return 0;
    case CATALOG_DTYPE_BYTES:
        return catalog_bytes_from_text(s, n, p, &out->u.bytes) == 0
                   ? 0
                   : bad(why, cap, "bad base64 after 'b64:'");
    default:
        return bad(why, cap, "unsupported type %s", catalog_dtype_name(t));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Rows and chunks                                                                             */

/* One chunk of rows, row-major; the parser fills one while the loader hands the other over. */
typedef struct chunk {
    size_t n;              /* rows in the chunk */
    catalog_value_t *keys; /* [batch_rows * n_join_keys] */
    catalog_value_t *vals; /* [batch_rows * n_features]: by feature index */
    bool *has;             /* [batch_rows * n_features]: the row sets this feature */
    int64_t *ts;           /* [batch_rows] */
    size_t *line;          /* [batch_rows] */
    json_t **docs;         /* parsed JSON kept alive until the chunk is handed over */
    size_t n_docs, cap_docs;
    base_arena_t arena;
} chunk_t;

/*
 * The loader thread: store_bulk_add_checked() (encoding and folding rows into records, inside
 * storage, which streams them into the load's open transaction; check_row() already ran the
 * catalog rules, so they are not run again) runs beside the parser. Filled chunks queue up to
 * LOADER_DEPTH deep, so neither side waits on the other for every chunk; the loader takes them
 * one at a time, in file order, so the bulk sees rows in the order of a single-threaded load.
 * After a failure it only empties chunks. Its results are reported by the parser's thread, so
 * all output comes from one thread and n_bad has one writer.
 */
#define LOADER_DEPTH 3

typedef struct loader {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, quit;
    chunk_t queue[LOADER_DEPTH]; /* filled chunks, oldest at head; the loader owns them */
    size_t head, n_queued;
    bool busy;                   /* the loader is adding queue[head] */
    chunk_t spare[LOADER_DEPTH]; /* emptied chunks for the parser */
    size_t n_spare;
    int rc;        /* the first failure: 0, -EINVAL (a bad row, bad_line), or already described */
    bool reported; /* the parser has reported rc */
    size_t bad_line;
    char bad_field[CATALOG_MAX_NAME];
    char error[320];
} loader_t;

typedef struct ingest {
    const catalog_view_t *v;
    store_bulk_t *bulk;
    /* --replication: rows go to the log (pass 1 only checks: dry) */
    repl_t *repl;
    bool dry;
    size_t rows_per_msg, n_msgs;
    uint64_t first_seq, last_seq;
    char id_prefix[40];
    /* --target: rows go to a running server (pass 1 only checks, as for the log) */
    fstore_client_t *client;
    const char *view_ref;    /* "name@vN" as the server names it */
    char auth[CLI_AUTH_MAX]; /* "Bearer TOKEN", or "" */
    size_t rows_written, rows_stale;
    const char *file;
    size_t max_errors, n_bad, n_rows;
    size_t batch_rows;
    bool progress;
    chunk_t c; /* the chunk being parsed */
    loader_t ld;
    int64_t now;
    int64_t max_future_skew_s; /* --max-future-skew (0: the default, < 0: none) */
    int64_t latest_us;         /* later event times are refused as they are read */
    base_ts_memo_t ts_memo;    /* of the event_timestamp column */
    store_op_t op;             /* --to: UPSERT (online), or HISTORY (offline: history only) */
    bool *rules;               /* [n_features]: catalog_feature_has_rules() */
} ingest_t;

static void report(ingest_t *g, size_t line, const char *field, const char *why)
{
    g->n_bad++;
    if (g->n_bad <= g->max_errors)
        fprintf(stderr, "%s:%zu: %s%s%s\n", g->file, line, field != NULL ? field : "",
                field != NULL ? ": " : "", why);
}

static int keep_doc(ingest_t *g, json_t *j)
{
    if (j == NULL)
        return 0;
    if (g->c.n_docs == g->c.cap_docs) {
        size_t cap = g->c.cap_docs ? 2 * g->c.cap_docs : 256;
        json_t **d = realloc(g->c.docs, cap * sizeof *d);
        if (d == NULL) {
            json_decref(j);
            return -ENOMEM;
        }
        g->c.docs = d;
        g->c.cap_docs = cap;
    }
    g->c.docs[g->c.n_docs++] = j;
    return 0;
}

/* Checks the current row's keys (types, ranges, length) and values (catalog rules). Returns:
 * true when the row is good; reports it otherwise. */
static bool check_row(ingest_t *g, size_t r)
{
    const catalog_view_t *v = g->v;
    catalog_value_t *keys = &g->c.keys[r * v->n_join_keys];
    uint8_t kb[STORE_MAX_KEY];
    int n = store_encode_key(v, keys, v->n_join_keys, kb, sizeof kb);
    if (n < 0) {
        report(g, g->c.line[r], v->n_join_keys ? v->join_keys[0].name : NULL,
               n == -ERANGE ? "join key out of range" : "entity key too long or mistyped");
        return false;
    }
    char why[320];
    for (size_t f = 0; f < v->n_features; f++) {
        if (!g->c.has[r * v->n_features + f])
            continue;
        const catalog_value_t *val = &g->c.vals[r * v->n_features + f];
        /* A value typed as its feature's dtype passes when the feature has no rules. */
        if (!g->rules[f] && val->type == v->features[f].dtype)
            continue;
        why[0] = '\0';
        if (catalog_validate_value(&v->features[f], val, why, sizeof why) != 0) {
            report(g, g->c.line[r], v->features[f].name, why[0] ? why : "invalid value");
            return false;
        }
    }
    return true;
}

/* Drops a chunk's rows and the memory they borrowed from. */
static void chunk_clear(chunk_t *c)
{
    for (size_t i = 0; i < c->n_docs; i++)
        json_decref(c->docs[i]);
    c->n_docs = 0;
    base_arena_reset(&c->arena);
    c->n = 0;
}

static int chunk_alloc(chunk_t *c, const catalog_view_t *v, size_t rows)
{
    c->keys = malloc((rows * v->n_join_keys + 1) * sizeof *c->keys);
    c->vals = malloc((rows * v->n_features + 1) * sizeof *c->vals);
    c->has = malloc((rows * v->n_features + 1) * sizeof *c->has);
    c->ts = malloc(rows * sizeof *c->ts);
    c->line = malloc(rows * sizeof *c->line);
    return c->keys && c->vals && c->has && c->ts && c->line ? 0 : -ENOMEM;
}

static void chunk_free(chunk_t *c)
{
    chunk_clear(c);
    base_arena_free(&c->arena);
    free(c->docs);
    free(c->keys);
    free(c->vals);
    free(c->has);
    free(c->ts);
    free(c->line);
}

/* --replication: one batch into as many log messages as the payload limit takes, each one
 * acknowledged before the next. Returns: 0, or a failure with res->error. */
static int publish_batch(ingest_t *g, const store_batch_t *b, store_apply_result_t *res)
{
    const catalog_value_t **keys = malloc((b->view->n_join_keys + 1) * sizeof *keys);
    const catalog_value_t **vals = malloc((b->n_features + 1) * sizeof *vals);
    int rc = keys != NULL && vals != NULL ? 0 : -ENOMEM;
    for (size_t start = 0; rc == 0 && start < b->n_rows;) {
        size_t n = b->n_rows - start < g->rows_per_msg ? b->n_rows - start : g->rows_per_msg;
        for (size_t k = 0; k < b->view->n_join_keys; k++)
            keys[k] = b->keys[k] + start;
        for (size_t j = 0; j < b->n_features; j++)
            vals[j] = b->values[j] + start;
        store_batch_t part = *b;
        part.n_rows = n;
        part.keys = keys;
        part.values = vals;
        part.event_ts_us = b->event_ts_us + start;
        store_wire_t *w = NULL;
        rc = store_wire_begin(NULL, g->max_future_skew_s, &part, 1, &w, res);
        if (rc < 0)
            break;
        char id[80];
        snprintf(id, sizeof id, "%s-%zu", g->id_prefix, g->n_msgs);
        uint64_t seq = 0;
        rc = repl_publish_sync(g->repl, w, id, &seq, res->error, sizeof res->error);
        store_wire_end(w);
        if (rc == -EMSGSIZE && n > 1) {
            g->rows_per_msg = n / 2; /* the same rows again, in smaller messages */
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        if (g->first_seq == 0)
            g->first_seq = seq;
        g->last_seq = seq;
        g->n_msgs++;
        start += n;
    }
    free(keys);
    free(vals);
    return rc;
}

/* A column of a WriteFeaturesRequest from rows [0, n) of vals. */
static int pb_column(base_arena_t *a, const char *name, const catalog_value_t *vals, size_t n,
                     Fstore__V1__WriteFeaturesRequest__ColumnsEntry *out)
{
    fstore__v1__write_features_request__columns_entry__init(out);
    out->key = (char *)name;
    Feast__Types__RepeatedValue *rv = base_arena_alloc(a, sizeof *rv);
    Feast__Types__Value **pv = base_arena_alloc(a, (n + 1) * sizeof *pv);
    Feast__Types__Value *v = base_arena_alloc(a, (n + 1) * sizeof *v);
    if (rv == NULL || pv == NULL || v == NULL)
        return -ENOMEM;
    feast__types__repeated_value__init(rv);
    for (size_t r = 0; r < n; r++) {
        feast__types__value__init(&v[r]);
        if (vals[r].type != CATALOG_DTYPE_NULL && codec_value_to_pb(&vals[r], a, &v[r]) < 0)
            return -ENOMEM;
        pv[r] = &v[r];
    }
    rv->n_val = n;
    rv->val = pv;
    out->value = rv;
    return 0;
}

/* --target: one batch as WriteFeatures requests of at most rows_per_msg rows, each answered
 * before the next; fewer rows per request when the server says a request is too large.
 * Returns: 0, or a failure with res->error. */
static int send_batch(ingest_t *g, const store_batch_t *b, store_apply_result_t *res)
{
    const catalog_view_t *v = b->view;
    base_arena_t a;
    base_arena_init(&a, 64 * 1024);
    int rc = 0;
    for (size_t start = 0; rc == 0 && start < b->n_rows;) {
        size_t n = b->n_rows - start < g->rows_per_msg ? b->n_rows - start : g->rows_per_msg;
        base_arena_reset(&a);
        size_t ncol = v->n_join_keys + b->n_features;
        Fstore__V1__WriteFeaturesRequest__ColumnsEntry *cols =
            base_arena_alloc(&a, (ncol + 1) * sizeof *cols);
        Fstore__V1__WriteFeaturesRequest__ColumnsEntry **pcols =
            base_arena_alloc(&a, (ncol + 1) * sizeof *pcols);
        Google__Protobuf__Timestamp *ts = base_arena_alloc(&a, (n + 1) * sizeof *ts);
        Google__Protobuf__Timestamp **pts = base_arena_alloc(&a, (n + 1) * sizeof *pts);
        if (cols == NULL || pcols == NULL || ts == NULL || pts == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (size_t k = 0; rc == 0 && k < v->n_join_keys; k++)
            rc = pb_column(&a, v->join_keys[k].name, b->keys[k] + start, n, &cols[k]);
        for (size_t j = 0; rc == 0 && j < b->n_features; j++)
            rc = pb_column(&a, v->features[b->feature_idx[j]].name, b->values[j] + start, n,
                           &cols[v->n_join_keys + j]);
        if (rc < 0)
            break;
        for (size_t c = 0; c < ncol; c++)
            pcols[c] = &cols[c];
        for (size_t r = 0; r < n; r++) {
            google__protobuf__timestamp__init(&ts[r]);
            codec_ts_split(b->event_ts_us[start + r], &ts[r].seconds, &ts[r].nanos);
            pts[r] = &ts[r];
        }
        char id[80];
        snprintf(id, sizeof id, "%s-%zu", g->id_prefix, g->n_msgs);
        Fstore__V1__WriteFeaturesRequest req = FSTORE__V1__WRITE_FEATURES_REQUEST__INIT;
        req.feature_view = (char *)g->view_ref;
        req.n_columns = ncol;
        req.columns = pcols;
        req.n_event_timestamps = n;
        req.event_timestamps = pts;
        req.request_id = id;
        req.to = b->op == STORE_OP_HISTORY ? FSTORE__V1__WRITE_TARGET__WRITE_TARGET_OFFLINE
                                           : FSTORE__V1__WRITE_TARGET__WRITE_TARGET_ONLINE;
        size_t len = fstore__v1__write_features_request__get_packed_size(&req);
        uint8_t *buf = malloc(len + 1);
        if (buf == NULL) {
            rc = -ENOMEM;
            break;
        }
        fstore__v1__write_features_request__pack(&req, buf);
        fstore_metadata_t md = {"authorization", g->auth};
        fstore_status_t st = {0};
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        rc = fstore_client_call_md(g->client, FSTORE_PATH_WRITE_FEATURES, &md,
                                   g->auth[0] != '\0' ? 1 : 0, buf, len, 60000, &resp, &resp_len,
                                   &st);
        free(buf);
        /* Too large for the server: its row or size limit (named in its message), or gRPC's
         * own receive limit. Other refusals (a full disk, a full write queue) are failures. */
        bool too_big = rc == -EREMOTEIO && (strstr(st.message, "(--max-write-rows)") != NULL ||
                                            strstr(st.message, "--max-message-bytes") != NULL ||
                                            strstr(st.message, "larger than max") != NULL);
        if (too_big && n > 1) {
            free(resp);
            /* The same rows again, in smaller requests: as many as the server's row limit
             * says ("... rows; the limit is N (--max-write-rows)"), else half as many. */
            const char *lim = strstr(st.message, "the limit is ");
            unsigned long long max = 0;
            if (lim != NULL && strstr(lim, "(--max-write-rows)") != NULL)
                max = strtoull(lim + strlen("the limit is "), NULL, 10);
            g->rows_per_msg = max > 0 && max < n ? (size_t)max : n / 2;
            rc = 0;
            continue;
        }
        if (rc < 0) {
            snprintf(res->error, sizeof res->error, "WriteFeatures: %.290s",
                     rc == -EREMOTEIO ? st.message : strerror(-rc));
            free(resp);
            break;
        }
        Fstore__V1__WriteFeaturesResponse *w =
            fstore__v1__write_features_response__unpack(NULL, resp_len, resp);
        free(resp);
        if (w == NULL) {
            snprintf(res->error, sizeof res->error, "WriteFeatures: malformed response");
            rc = -EPROTO;
            break;
        }
        g->rows_written += w->rows_written;
        g->rows_stale += w->rows_stale;
        fstore__v1__write_features_response__free_unpacked(w, NULL);
        g->n_msgs++;
        start += n;
    }
    base_arena_free(&a);
    return rc;
}

/* --target: the server's catalog (GetCatalog), to check every row before any is sent. Returns: 0,
 * or a failure (printed). */
static int target_catalog(ingest_t *g, const char *target, catalog_t **out)
{
    fstore_metadata_t md = {"authorization", g->auth};
    fstore_status_t st = {0};
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc =
        fstore_client_call_md(g->client, FSTORE_PATH_GET_CATALOG, &md, g->auth[0] != '\0' ? 1 : 0,
                              (const uint8_t *)"", 0, 30000, &resp, &len, &st);
    if (rc < 0) {
        fprintf(stderr, "fstore ingest: GetCatalog from %s: %s\n", target,
                rc == -EREMOTEIO ? st.message : strerror(-rc));
        free(resp);
        return rc;
    }
    Fstore__V1__GetCatalogResponse *r = fstore__v1__get_catalog_response__unpack(NULL, len, resp);
    free(resp);
    if (r == NULL) {
        fprintf(stderr, "fstore ingest: GetCatalog from %s: malformed response\n", target);
        return -EPROTO;
    }
    catalog_errors_t errs = {0};
    rc = catalog_load_string(r->yaml, strlen(r->yaml), target, out, &errs);
    if (rc < 0)
        fprintf(stderr, "fstore ingest: the catalog %s serves does not load here (%zu errors)\n",
                target, errs.count);
    catalog_errors_clear(&errs);
    fstore__v1__get_catalog_response__free_unpacked(r, NULL);
    return rc;
}

/* Adds a chunk to the bulk load (or the log): consecutive rows writing the same features form
 * one batch. Returns: 0; -EINVAL with *bad_r and res (a row the parser's checks let through); or
 * a failure, with res->error when the store said more. */
static int add_chunk(ingest_t *g, const chunk_t *c, size_t *bad_r, store_apply_result_t *res)
{
    store_bulk_t *bulk = g->bulk;
    const catalog_view_t *v = g->v;
    size_t nk = v->n_join_keys, nf = v->n_features;
    int rc = -ENOMEM;
    res->error[0] = '\0';
    catalog_value_t *kcols = malloc((nk * c->n + 1) * sizeof *kcols);
    catalog_value_t *vcols = malloc((nf * c->n + 1) * sizeof *vcols);
    const catalog_value_t **kp = malloc((nk + 1) * sizeof *kp);
    const catalog_value_t **vp = malloc((nf + 1) * sizeof *vp);
    uint32_t *idx = malloc((nf + 1) * sizeof *idx);
    int64_t *ts = malloc((c->n + 1) * sizeof *ts);
    if (kcols == NULL || vcols == NULL || kp == NULL || vp == NULL || idx == NULL || ts == NULL)
        goto out;
    rc = 0;
    for (size_t start = 0; start < c->n && rc == 0;) {
        const bool *has0 = &c->has[start * nf];
        size_t end = start + 1;
        while (end < c->n && memcmp(&c->has[end * nf], has0, nf * sizeof *has0) == 0)
            end++;
        size_t rows = end - start, nsel = 0;
        for (size_t f = 0; f < nf; f++) {
            if (has0[f])
                idx[nsel++] = (uint32_t)f;
        }
        for (size_t k = 0; k < nk; k++) {
            kp[k] = &kcols[k * rows];
            for (size_t r = 0; r < rows; r++)
                kcols[k * rows + r] = c->keys[(start + r) * nk + k];
        }
        for (size_t j = 0; j < nsel; j++) {
            vp[j] = &vcols[j * rows];
            for (size_t r = 0; r < rows; r++)
                vcols[j * rows + r] = c->vals[(start + r) * nf + idx[j]];
        }
        for (size_t r = 0; r < rows; r++)
            ts[r] = c->ts[start + r];
        store_batch_t b = {.view = v,
                           .op = g->op,
                           .n_rows = rows,
                           .keys = kp,
                           .n_features = nsel,
                           .feature_idx = idx,
                           .values = vp,
                           .event_ts_us = ts};
        rc = g->repl != NULL     ? publish_batch(g, &b, res)
             : g->client != NULL ? send_batch(g, &b, res)
                                 : store_bulk_add_checked(bulk, &b, 1, res);
        if (rc == -EINVAL)
            *bad_r = start + res->bad_row;
        start = end;
    }
out:
    free(kcols);
    free(vcols);
    free(kp);
    free(vp);
    free(idx);
    free(ts);
    return rc;
}

static void *loader_main(void *arg)
{
    ingest_t *g = arg;
    loader_t *ld = &g->ld;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (ld->n_queued == 0 && !ld->quit)
            pthread_cond_wait(&ld->cv, &ld->mu);
        if (ld->n_queued == 0)
            break;
        chunk_t *c = &ld->queue[ld->head];
        bool failed = ld->rc != 0;
        ld->busy = true;
        pthread_mutex_unlock(&ld->mu);
        store_apply_result_t res;
        memset(&res, 0, sizeof res);
        size_t bad_r = 0;
        int rc = failed ? 0 : add_chunk(g, c, &bad_r, &res);
        size_t bad_line = rc == -EINVAL ? c->line[bad_r] : 0;
        chunk_clear(c);
        pthread_mutex_lock(&ld->mu);
        if (rc != 0) {
            ld->rc = rc;
            ld->bad_line = bad_line;
            memcpy(ld->bad_field, res.bad_field, sizeof ld->bad_field);
            memcpy(ld->error, res.error, sizeof ld->error);
        }
        ld->spare[ld->n_spare++] = *c;
        ld->head = (ld->head + 1) % LOADER_DEPTH;
        ld->n_queued--;
        ld->busy = false;
        pthread_cond_broadcast(&ld->cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* Reports the loader's failure once, from the parser's thread (ld->mu held). Returns: 0, or < 0
 * when the load cannot go on (described here). */
static int loader_report(ingest_t *g)
{
    loader_t *ld = &g->ld;
    if (ld->rc == 0 || ld->reported)
        return ld->rc == -EINVAL ? 0 : ld->rc;
    ld->reported = true;
    if (ld->rc == -EINVAL) {
        /* Everything was checked already; report it like a parse error anyway. */
        report(g, ld->bad_line, ld->bad_field, ld->error);
        return 0;
    }
    fprintf(stderr, "fstore ingest: %s\n", ld->error[0] ? ld->error : strerror(-ld->rc));
    return ld->rc;
}

/* Waits for the loader to add every queued chunk and reports how it went. Returns: 0, or < 0
 * when the load cannot go on (already printed). */
static int loader_wait(ingest_t *g)
{
    loader_t *ld = &g->ld;
    if (!ld->started)
        return 0;
    pthread_mutex_lock(&ld->mu);
    while (ld->n_queued > 0)
        pthread_cond_wait(&ld->cv, &ld->mu);
    int rc = loader_report(g);
    pthread_mutex_unlock(&ld->mu);
    return rc;
}

/* Queues the current chunk for the loader and takes an emptied one to parse into, waiting for
 * one when LOADER_DEPTH chunks are queued. With bad rows nothing is handed over: the chunk is
 * only emptied. */
static int flush(ingest_t *g)
{
    loader_t *ld = &g->ld;
    int rc = 0;
    if (ld->started) {
        pthread_mutex_lock(&ld->mu);
        rc = loader_report(g);
        pthread_mutex_unlock(&ld->mu);
    }
    if (rc < 0 || g->n_bad > 0 || g->c.n == 0 || g->dry) {
        chunk_clear(&g->c);
        return rc;
    }
    if (!ld->started) {
        for (ld->n_spare = 0; ld->n_spare < LOADER_DEPTH; ld->n_spare++) {
            if (chunk_alloc(&ld->spare[ld->n_spare], g->v, g->batch_rows) < 0) {
                chunk_free(&ld->spare[ld->n_spare]);
                fprintf(stderr, "fstore ingest: out of memory\n");
                return -ENOMEM;
            }
        }
        if (pthread_create(&ld->thread, NULL, loader_main, g) != 0) {
            fprintf(stderr, "fstore ingest: cannot start the loader thread\n");
            return -ENOMEM;
        }
        ld->started = true;
    }
    pthread_mutex_lock(&ld->mu);
    while (ld->n_spare == 0)
        pthread_cond_wait(&ld->cv, &ld->mu);
    ld->queue[(ld->head + ld->n_queued) % LOADER_DEPTH] = g->c;
    ld->n_queued++;
    g->c = ld->spare[--ld->n_spare];
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
    return 0;
}

/* Stops the loader thread (after the chunks queued) and frees its chunks. Accepts a loader
 * never started. */
static void loader_stop(ingest_t *g)
{
    loader_t *ld = &g->ld;
    if (ld->started) {
        pthread_mutex_lock(&ld->mu);
        ld->quit = true;
        pthread_cond_broadcast(&ld->cv);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
        ld->started = false;
    }
    for (size_t i = 0; i < ld->n_spare; i++)
        chunk_free(&ld->spare[i]);
    ld->n_spare = 0;
}

/* Starts a new row in the chunk. */
static size_t new_row(ingest_t *g, size_t line)
{
    size_t r = g->c.n;
    memset(&g->c.has[r * g->v->n_features], 0, g->v->n_features * sizeof *g->c.has);
    for (size_t k = 0; k < g->v->n_join_keys; k++)
        g->c.keys[r * g->v->n_join_keys + k].type = CATALOG_DTYPE_INVALID;
    g->c.ts[r] = g->now;
    g->c.line[r] = line;
    return r;
}

/* Ends the current row: keeps it when good, and flushes a full chunk. */
static int end_row(ingest_t *g, size_t r, bool ok)
{
    g->n_rows++;
    if (ok)
        ok = check_row(g, r);
    if (ok && g->n_bad == 0)
        g->c.n++;
    if (g->progress && g->n_rows % 100000 == 0)
        fprintf(stderr, "\rfstore ingest: %zu rows read", g->n_rows);
    /* With bad rows nothing is kept, but parsed documents still pile up: drop them too. */
    if (g->c.n == g->batch_rows || (g->n_bad > 0 && g->n_rows % g->batch_rows == 0))
        return flush(g);
    return 0;
}

/* Which column does a header name stand for: join key k (>= 0), feature (-2 - index), the event
 * timestamp (-1)? Returns: false for an unknown name. */
static bool classify(const catalog_view_t *v, const char *name, size_t len, long *out)
{
    if (len == strlen(TS_COLUMN) && memcmp(name, TS_COLUMN, len) == 0) {
        *out = -1;
        return true;
    }
    for (size_t k = 0; k < v->n_join_keys; k++) {
        if (strlen(v->join_keys[k].name) == len && memcmp(v->join_keys[k].name, name, len) == 0) {
            *out = (long)k;
            return true;
        }
    }
    for (size_t f = 0; f < v->n_features; f++) {
        if (strlen(v->features[f].name) == len && memcmp(v->features[f].name, name, len) == 0) {
            *out = -2 - (long)f;
            return true;
        }
    }
    return false;
}

/* Row r's event time is not past --max-future-skew. Checked here, as the file is read, for every
 * destination: before anything is published to the log (which takes a file in many messages),
 * written to a server or committed. */
static bool ts_in_range(ingest_t *g, size_t r, const char *colname)
{
    if (g->c.ts[r] <= g->latest_us)
        return true;
    char why[200];
    snprintf(why, sizeof why,
             "event time more than %lld s ahead of this machine's clock (--max-future-skew)",
             (long long)((g->latest_us - g->now) / 1000000));
    report(g, g->c.line[r], colname, why);
    return false;
}

/* Sets one column of row r from a CSV cell or a JSON value. */
static bool set_cell(ingest_t *g, size_t r, long col, const char *text, size_t n, const json_t *j,
                     const char *colname)
{
    const catalog_view_t *v = g->v;
    char why[320];
    json_t *keep = NULL;
    if (col == -1) {
        int64_t us;
        if (j != NULL && json_is_null(j))
            return true;
        if (j != NULL && json_is_number(j)) {
            double d = json_number_value(j);
            if (!isfinite(d) || fabs(d) > 9.2e12) {
                report(g, g->c.line[r], colname, "event_timestamp out of range");
                return false;
            }
            g->c.ts[r] =
                json_is_integer(j) ? json_integer_value(j) * 1000000 : (int64_t)llround(d * 1e6);
            return ts_in_range(g, r, colname);
        }
        if (j != NULL) {
            if (!json_is_string(j)) {
                report(g, g->c.line[r], colname, "want RFC 3339 or epoch seconds");
                return false;
            }
            text = json_string_value(j);
            n = json_string_length(j);
        }
        if (n == 0)
            return true;
        if (base_parse_time_memo(&g->ts_memo, text, n, &us) != 0) {
            report(g, g->c.line[r], colname,
                   "want RFC 3339 (2024-05-01T12:00:00Z) or epoch seconds");
            return false;
        }
        g->c.ts[r] = us;
        return ts_in_range(g, r, colname);
    }
    if (col >= 0) {
        catalog_value_t *k = &g->c.keys[r * v->n_join_keys + (size_t)col];
        catalog_dtype_t t = v->join_keys[col].dtype;
        int rc = j != NULL
                     ? (json_is_null(j) ? bad(why, sizeof why, "a join key cannot be null")
                                        : catalog_value_from_json(j, t, CATALOG_JSON_TEXT,
                                                                  &g->c.arena, k, why, sizeof why))
                     : value_text(&g->c.arena, t, text, n, &keep, k, why, sizeof why);
        json_decref(keep);
        if (rc != 0) {
            report(g, g->c.line[r], colname, why);
            return false;
        }
        return true;
    }
    size_t f = (size_t)(-2 - col);
    catalog_value_t *val = &g->c.vals[r * v->n_features + f];
    int rc;
    if (j != NULL)
        rc = catalog_value_from_json(j, v->features[f].dtype, CATALOG_JSON_TEXT, &g->c.arena, val,
                                     why, sizeof why);
    else if (n == 0)
        val->type = CATALOG_DTYPE_NULL, rc = 0;
    else
        rc = value_text(&g->c.arena, v->features[f].dtype, text, n, &keep, val, why, sizeof why);
    if (keep != NULL && keep_doc(g, keep) < 0)
        rc = bad(why, sizeof why, "out of memory");
    if (rc != 0) {
        report(g, g->c.line[r], colname, why);
        return false;
    }
    g->c.has[r * v->n_features + f] = true;
    return true;
}

/*
 * set_cell() for the common CSV cells, without its generality: an INT64 or DOUBLE feature or
 * join key that parses, and the event timestamp. Anything else, and every cell that does not
 * parse, goes to set_cell(), which does the same and explains failures, so both paths agree.
 */
static inline bool csv_cell(ingest_t *g, size_t r, long col, const char *text, size_t n,
                            const char *colname)
{
    const catalog_view_t *v = g->v;
    if (col <= -2 && n > 0) {
        size_t f = (size_t)(-2 - col);
        catalog_value_t *val = &g->c.vals[r * v->n_features + f];
        catalog_dtype_t t = v->features[f].dtype;
        if ((t == CATALOG_DTYPE_INT64 && base_parse_int(text, n, &val->u.i64) == 0) ||
            (t == CATALOG_DTYPE_DOUBLE && base_parse_double(text, n, &val->u.f64) == 0)) {
            val->type = t;
            g->c.has[r * v->n_features + f] = true;
            return true;
        }
    } else if (col >= 0 && v->join_keys[col].dtype == CATALOG_DTYPE_INT64) {
        catalog_value_t *k = &g->c.keys[r * v->n_join_keys + (size_t)col];
        if (base_parse_int(text, n, &k->u.i64) == 0) {
            k->type = CATALOG_DTYPE_INT64;
            return true;
        }
    } else if (col == -1 && n > 0 && base_parse_time_memo(&g->ts_memo, text, n, &g->c.ts[r]) == 0) {
        return true;
    }
    return set_cell(g, r, col, text, n, NULL, colname);
}

static bool keys_complete(ingest_t *g, size_t r)
{
    for (size_t k = 0; k < g->v->n_join_keys; k++) {
        if (g->c.keys[r * g->v->n_join_keys + k].type == CATALOG_DTYPE_INVALID) {
            report(g, g->c.line[r], g->v->join_keys[k].name, "missing join key");
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* CSV (RFC 4180)                                                                              */

static int ingest_csv(ingest_t *g, char *data, size_t size)
{
    base_csv_t c = {data, data + size, 1};
    long cols[1024];
    char *names[1024];
    size_t ncols = 0;
    char *f;
    size_t len;
    int more;
    int status = 0;
    /* Header. */
    do {
        more = base_csv_field(&c, &f, &len);
        if (more == -1 || more == -2 || ncols == 1024) {
            fprintf(stderr, "%s:1: bad or missing CSV header\n", g->file);
            status = 1;
            break;
        }
        if (!classify(g->v, f, len, &cols[ncols])) {
            fprintf(stderr, "%s:1: column '%.*s' is not a join key, feature or %s of %s@v%u\n",
                    g->file, (int)len, f, TS_COLUMN, g->v->name, g->v->version);
            status = 1;
            break;
        }
        names[ncols] = strndup(f, len);
        if (names[ncols] == NULL) {
            status = 1;
            break;
        }
        ncols++;
    } while (more == 1);
    for (size_t k = 0; k < g->v->n_join_keys && status == 0; k++) {
        bool found = false;
        for (size_t i = 0; i < ncols; i++)
            found |= cols[i] == (long)k;
        if (!found) {
            fprintf(stderr, "%s:1: join key column '%s' is missing\n", g->file,
                    g->v->join_keys[k].name);
            status = 1;
        }
    }
    while (status == 0) {
        size_t line = c.line;
        if (c.p >= c.end)
            break;
        /* Skip blank lines. */
        if (*c.p == '\n' || (*c.p == '\r' && c.p + 1 < c.end && c.p[1] == '\n')) {
            c.p += *c.p == '\r' ? 2 : 1;
            c.line++;
            continue;
        }
        size_t r = new_row(g, line);
        bool ok = true;
        size_t i = 0;
        do {
            more = base_csv_field(&c, &f, &len);
            if (more == -2) {
                report(g, line, NULL, "unterminated or misplaced quote");
                status = 1; /* cannot resynchronise reliably */
                break;
            }
            if (more == -1)
                break;
            if (i < ncols && ok)
                ok = csv_cell(g, r, cols[i], f, len, names[i]);
            i++;
        } while (more == 1);
        if (status != 0)
            break;
        if (i != ncols) {
            char why[96];
            snprintf(why, sizeof why, "%zu fields, the header has %zu", i, ncols);
            if (ok)
                report(g, line, NULL, why);
            ok = false;
        }
        if (ok)
            ok = keys_complete(g, r);
        if (end_row(g, r, ok) < 0)
            status = 1;
    }
    for (size_t i = 0; i < ncols; i++)
        free(names[i]);
    return status;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON Lines                                                                                  */

static int ingest_jsonl(ingest_t *g, char *data, size_t size)
{
    size_t line = 0;
    char *p = data, *end = data + size;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl != NULL ? nl : end;
        char *q = p;
        while (q < stop && isspace((unsigned char)*q))
            q++;
        if (q == stop) {
            p = stop + 1;
            continue;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(p, (size_t)(stop - p), 0, &jerr);
        p = stop + 1;
        size_t r = new_row(g, line);
        bool ok = obj != NULL && json_is_object(obj);
        if (!ok) {
            report(g, line, NULL, obj == NULL ? jerr.text : "not a JSON object");
            json_decref(obj);
            if (end_row(g, r, false) < 0)
                return 1;
            continue;
        }
        const char *key;
        json_t *val;
        json_object_foreach(obj, key, val)
        {
            long col;
            if (!classify(g->v, key, strlen(key), &col)) {
                char why[CATALOG_MAX_NAME + 64];
                snprintf(why, sizeof why, "not a join key, feature or %s of the view", TS_COLUMN);
                report(g, line, key, why);
                ok = false;
                break;
            }
            if (!set_cell(g, r, col, NULL, 0, val, key)) {
                ok = false;
                break;
            }
        }
        if (ok)
            ok = keys_complete(g, r);
        /* The row's strings point into obj: keep it until the chunk is handed over. */
        if (keep_doc(g, obj) < 0)
            return 1;
        if (end_row(g, r, ok) < 0)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

/*
 * A regular file is mapped rather than read: copy-on-write, since quoted fields are unescaped
 * in place, and faulted in as the parser goes instead of copied whole before it starts. Nothing
 * reads past size (numbers are copied out before strtod, JSON is parsed by length), so the
 * mapping needs no terminating NUL. Sets *mapped; free with unmap_or_free(). A mapped file's
 * descriptor and stat are kept (*fd_out, *st_out; -1 otherwise) for file_changed().
 */
static char *map_file(const char *path, size_t *size, bool *mapped, int *fd_out,
                      struct stat *st_out)
{
    *mapped = false;
    *fd_out = -1;
    if (strcmp(path, "-") == 0)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *p = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            p = NULL;
        } else {
            madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
            *size = (size_t)st.st_size;
            *mapped = true;
            *fd_out = fd;
            *st_out = st;
            return p;
        }
    }
    close(fd);
    return p;
}

/*
 * A mapped file that shrinks while it is read (another process truncating or rewriting it in
 * place) turns the next read of a page past its new end into SIGBUS, on the parser or the loader
 * thread. The load is one transaction committed only after the whole file is read, so dying is
 * safe (LMDB's robust writer lock is recovered by the next writer); this handler makes it die
 * with a reason and exit status 1 instead of "Bus error". A SIGBUS elsewhere keeps its default.
 */
static const char *volatile bus_file;
static const char *volatile bus_lo;
static const char *volatile bus_hi;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    const char *a = si->si_addr;
    if (bus_file != NULL && a >= bus_lo && a < bus_hi) {
        static const char m1[] = "fstore ingest: ";
        static const char m2[] = " shrank while it was being read (truncated or rewritten in "
                                 "place?); nothing was loaded\n";
        ssize_t n = write(STDERR_FILENO, m1, sizeof m1 - 1);
        n = write(STDERR_FILENO, (const char *)bus_file, strlen((const char *)bus_file));
        n = write(STDERR_FILENO, m2, sizeof m2 - 1);
        (void)n;
        _exit(1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void watch_mapping(const char *file, const char *data, size_t size)
{
    bus_file = file;
    bus_lo = data;
    bus_hi = data + size;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

/* Whether the mapped file was truncated or rewritten since it was mapped. Shrinking within its
 * last page raises no SIGBUS (the rest of the page reads as zeros), so the size and modification
 * time are checked once more after the parse, before anything is committed. */
static bool file_changed(int fd, const struct stat *then)
{
    struct stat now;
    if (fstat(fd, &now) != 0)
        return true;
    return now.st_size != then->st_size || now.st_mtim.tv_sec != then->st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != then->st_mtim.tv_nsec;
}

static void unmap_or_free(char *data, size_t size, bool mapped)
{
    bus_file = NULL;
    if (mapped)
        munmap(data, size);
    else
        free(data);
}

static char *read_all(const char *path, size_t *size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    bool err = ferror(f);
    if (f != stdin)
        fclose(f);
    if (buf == NULL || err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *size = n;
    return buf;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int cli_ingest(int argc, char **argv)
{
    const char *dir = NULL, *view = NULL, *format = NULL;
    store_sync_t sync_mode = STORE_SYNC_FULL;
    size_t batch_rows = 10000, max_errors = 20;
    repl_options_t ro;
    repl_options_init(&ro);
    const char *project = NULL;
    int64_t max_future_skew_s = 0;
    const char *target = NULL, *token_file = NULL, *catalog_path = NULL, *to = "online";
    const cli_opt_t opts[] = {
        CLI_REPL_OPTS(ro),
        {"project", 0, CLI_STRING, &project, CLI_ENV},
        {"target", 0, CLI_STRING, &target, CLI_ENV},
        {"token-file", 0, CLI_STRING, &token_file, CLI_ENV},
        CLI_CLIENT_TLS_OPTS,
        {"catalog", 'c', CLI_STRING, &catalog_path, 0},
        {"data-dir", 'd', CLI_STRING, &dir, CLI_ENV},
        {"view", 'v', CLI_STRING, &view, CLI_REQUIRED},
        {"format", 'F', CLI_STRING, &format, 0, 0, 0, "csv|jsonl"},
        {"batch-rows", 'b', CLI_SIZE, &batch_rows, 0, 1, 10000000},
        {"sync", 0, CLI_SYNC, &sync_mode, CLI_ENV},
        {"max-errors", 0, CLI_SIZE, &max_errors, 0, 1, 0},
        {"max-future-skew", 0, CLI_DURATION, &max_future_skew_s, CLI_ENV},
        {"to", 0, CLI_STRING, &to, 0, 0, 0, "online|offline|online_and_offline"},
    };
    const cli_cmd_t cmd = {
        "ingest", usage, opts, sizeof opts / sizeof opts[0], 1, 1, "FILE (- for standard input)"};
    int first = 0;
    int prc = cli__parse(&cmd, argc, argv, &first);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    bool replicated = ro.urls != NULL && ro.urls[0] != '\0';
    bool remote = target != NULL && target[0] != '\0';
    /* FSTORE_DATA_DIR from the environment (the image sets it) yields to a remote destination;
     * --data-dir on the command line does not. */
    if (cli__from_env("data-dir", dir) && (replicated || remote))
        dir = NULL;
    if ((int)replicated + (int)remote + (int)(dir != NULL) != 1) {
        fprintf(stderr, "fstore ingest: give --data-dir (a local store), --replication (the "
                        "log every node applies) or --target (a running server), one of them\n\n");
        usage(stderr);
        return 2;
    }
    bool tls = cli__tls_given();
    if ((token_file != NULL || catalog_path != NULL || tls) && !remote) {
        fprintf(stderr, "fstore ingest: --token-file, --catalog and --tls-* go with --target\n");
        return 2;
    }
    const char *file = argv[first];
    bool jsonl;
    if (format == NULL) {
        size_t n = strlen(file);
        jsonl = (n > 6 && strcmp(file + n - 6, ".jsonl") == 0) ||
                (n > 7 && strcmp(file + n - 7, ".ndjson") == 0);
    } else {
        jsonl = strcmp(format, "jsonl") == 0;
    }

    store_t *s = NULL;
    catalog_t *cat = NULL;
    char *data = NULL;
    bool mapped = false;
    ingest_t g = {.ld = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER},
                  .file = strcmp(file, "-") == 0 ? "<stdin>" : file,
                  .max_errors = max_errors,
                  .batch_rows = batch_rows,
                  .progress = isatty(2) == 1,
                  .now = store_now_us(),
                  .max_future_skew_s = max_future_skew_s};
    /* A server (--target) checks event times against its own --max-future-skew. */
    int64_t skew_us = store_future_skew_us(max_future_skew_s);
    g.latest_us = remote || skew_us < 0 ? INT64_MAX : g.now + skew_us;
    int status = 1;
    bool grpc_started = false;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t size = 0;
    int map_fd = -1;
    struct stat map_st = {0};
    data = map_file(file, &size, &mapped, &map_fd, &map_st);
    if (mapped)
        watch_mapping(g.file, data, size);
    if (data == NULL)
        data = read_all(file, &size);
    if (data == NULL) {
        fprintf(stderr, "fstore ingest: cannot read %s: %s\n", g.file, strerror(errno));
        goto out;
    }
    int rc = 0;
    if (replicated) {
        /* The project names the stream; the log's catalog is what every node validates by. */
        char err[512] = "";
        uint64_t cseq = 0;
        if (project == NULL) {
            fprintf(stderr, "fstore ingest: --replication needs --project (the catalog's project "
                            "names the stream)\n");
            goto out;
        }
        rc = repl_open(&ro, project, NULL, &g.repl, err, sizeof err);
        if (rc == 0)
            rc = repl_log_catalog(g.repl, &cat, &cseq, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "fstore ingest: %s\n",
                    rc == -ENOENT ? "the replication log holds no catalog (fstore apply "
                                    "--replication first)"
                                  : err);
            goto out;
        }
    } else if (remote) {
        if (cli__bearer("ingest", token_file, g.auth, sizeof g.auth) < 0)
            goto out;
        fstore_grpc_init();
        grpc_started = true;
        rc = cli__connect("ingest", target, &g.client);
        if (rc < 0)
            goto out;
        if (catalog_path != NULL) {
            /* The catalog the server serves, as a file here (a Job mounting the server's
             * ConfigMap): GetCatalog needs the admin scope, a loader only write. */
            catalog_errors_t errs = {0};
            rc = catalog_load(catalog_path, &cat, &errs);
            catalog_errors_clear(&errs);
            if (rc < 0) {
                fprintf(stderr,
                        "fstore ingest: %s is not a valid catalog (fstore validate "
                        "--catalog %s says why)\n",
                        catalog_path, catalog_path);
                goto out;
            }
        } else if (target_catalog(&g, target, &cat) < 0) {
            goto out;
        }
    } else {
        store_options_t o = {.dir = dir, .sync = sync_mode, .max_future_skew_s = max_future_skew_s};
        rc = cli__open_store("ingest", &o, false, &s);
        if (rc < 0 || (rc = cli__refuse_replica("ingest", s, dir,
                                                "load through the log (fstore ingest "
                                                "--replication URL) or a node (--target)")) < 0) {
            goto out;
        }
        if (store_applied_catalog(s, &cat) != 0) {
            fprintf(stderr, "fstore ingest: no catalog applied to %s (run fstore apply)\n", dir);
            goto out;
        }
    }
    if (catalog_find_view_ref(cat, view, &g.v) != 0) {
        char help[512];
        catalog_describe_missing(cat, CATALOG_NAME_VIEW, NULL, view, help, sizeof help);
        fprintf(stderr, "fstore ingest: no feature view '%s' in the %s catalog%s\n", view,
                replicated ? "replication log's"
                : remote   ? "server's"
                           : "applied",
                help);
        goto out;
    }
    if (g.v->on_demand != NULL) {
        fprintf(stderr,
                "fstore ingest: '%s' is an on-demand feature view: its features are computed at "
                "read time; load its sources instead\n",
                view);
        goto out;
    }
    char view_ref[CATALOG_MAX_NAME + 16];
    snprintf(view_ref, sizeof view_ref, "%s@v%u", g.v->name, (unsigned)g.v->version);
    g.view_ref = view_ref;
    if (!g.v->online) {
        fprintf(stderr, "fstore ingest: view %s@v%u is offline: it has no online data\n", g.v->name,
                g.v->version);
        goto out;
    }
    if (strcmp(to, "offline") == 0) {
        /* History only: backfills and late data, for views that keep history. */
        if (!g.v->history) {
            fprintf(stderr,
                    "fstore ingest: view %s@v%u keeps no offline history (give it 'offline: "
                    "{retention: ...}' in the catalog)\n",
                    g.v->name, g.v->version);
            goto out;
        }
        if (s != NULL && !store_keeps_history(s)) {
            fprintf(stderr,
                    "fstore ingest: %s keeps no history (serve --history, or apply --history): "
                    "rows for the offline store only would be lost\n",
                    dir);
            goto out;
        }
        g.op = STORE_OP_HISTORY;
    }
    rc = replicated || remote ? 0 : store_bulk_begin(s, &g.bulk);
    g.rules = malloc((g.v->n_features + 1) * sizeof *g.rules);
    if (chunk_alloc(&g.c, g.v, g.batch_rows) < 0 || rc < 0 || g.rules == NULL) {
        fprintf(stderr, "fstore ingest: out of memory\n");
        goto out;
    }
    for (size_t f = 0; f < g.v->n_features; f++)
        g.rules[f] = catalog_feature_has_rules(&g.v->features[f]);
    int perr = 0;
    if (replicated || remote) {
        /* The log or a server cannot take a file back: every row is checked before the first
         * is sent. */
        g.dry = true;
        /* The parsers unquote cells in place: the check parses a copy, the send pass the
         * original. A mapped file's copy is a second private mapping of it (pages are copied
         * only where the check writes); standard input's is a heap copy. */
        char *copy = NULL;
        bool copy_mapped = false;
        if (mapped && size > 0) {
            copy = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, map_fd, 0);
            copy_mapped = copy != MAP_FAILED;
            if (!copy_mapped)
                copy = NULL;
        }
        if (copy == NULL && (copy = malloc(size + 1)) != NULL) {
            memcpy(copy, data, size);
            copy[size] = '\0';
        }
        if (copy == NULL) {
            fprintf(stderr, "fstore ingest: out of memory\n");
            goto out;
        }
        perr = jsonl ? ingest_jsonl(&g, copy, size) : ingest_csv(&g, copy, size);
        /* The last, partial chunk of the check holds rows the send pass parses again. */
        chunk_clear(&g.c);
        if (copy_mapped)
            munmap(copy, size);
        else
            free(copy);
        if (perr == 0 && g.n_bad == 0) {
            g.dry = false;
            g.n_rows = 0;
            g.rows_per_msg = g.batch_rows < 5000 ? g.batch_rows : 5000;
            /* The messages' ids: a retry of one (a lost acknowledgement) is applied once. */
            uint64_t rnd;
            base_random(&rnd, sizeof rnd);
            snprintf(g.id_prefix, sizeof g.id_prefix, "ingest-%016llx", (unsigned long long)rnd);
        }
    }
    if (perr == 0 && g.n_bad == 0)
        perr = jsonl ? ingest_jsonl(&g, data, size) : ingest_csv(&g, data, size);
    if (perr == 0 && flush(&g) < 0)
        perr = 1;
    if (loader_wait(&g) < 0)
        perr = 1;
    if (mapped && file_changed(map_fd, &map_st)) {
        /* Before the bad-row verdict: rows read from a changed file may be bad only because of
         * the change. */
        fprintf(stderr,
                "fstore ingest: %s changed while it was being read (truncated or rewritten in "
                "place?); nothing was loaded\n",
                g.file);
        goto out;
    }
    if (g.progress && g.n_rows >= 100000)
        fprintf(stderr, "\n");
    if (g.n_bad > 0) {
        if (g.n_bad > g.max_errors)
            fprintf(stderr, "... and %zu more bad rows\n", g.n_bad - g.max_errors);
        fprintf(stderr, "fstore ingest: %zu of %zu rows are bad; nothing was loaded\n", g.n_bad,
                g.n_rows);
        goto out;
    }
    if (perr != 0) {
        /* A failure after requests or messages went out is reported at out: with what they
         * wrote. */
        if (g.n_msgs == 0)
            fprintf(stderr, "fstore ingest: nothing was loaded\n");
        goto out;
    }

    if (remote) {
        double secs = seconds_since(&t0);
        printf("ingest: %zu rows into %s@v%u sent to %s in %zu requests: %zu written, %zu stale "
               "(older than stored) in %.2f s (%.0f rows/s)\n",
               g.n_rows, g.v->name, g.v->version, target, g.n_msgs, g.rows_written, g.rows_stale,
               secs, secs > 0 ? (double)g.n_rows / secs : 0.0);
        status = 0;
        goto out;
    }
    if (replicated) {
        double secs = seconds_since(&t0);
        printf("ingest: %zu rows into %s@v%u published to %s in %zu messages (sequences %llu to "
               "%llu) in %.2f s (%.0f rows/s)\n",
               g.n_rows, g.v->name, g.v->version, repl_stream(g.repl), g.n_msgs,
               (unsigned long long)g.first_seq, (unsigned long long)g.last_seq, secs,
               secs > 0 ? (double)g.n_rows / secs : 0.0);
        status = 0;
        goto out;
    }
    if (g.progress)
        fprintf(stderr, "fstore ingest: committing %zu rows...\n", g.n_rows);
    store_apply_result_t res;
    rc = store_bulk_commit(g.bulk, &res);
    if (rc < 0) {
        fprintf(stderr, "fstore ingest: commit failed, nothing was loaded: %s\n",
                res.error[0] ? res.error : strerror(-rc));
        goto out;
    }
    double secs = seconds_since(&t0);
    printf("ingest: %zu rows into %s@v%u: %zu written, %zu stale (older than stored) in %.2f s "
           "(%.0f rows/s)\n",
           g.n_rows, g.v->name, g.v->version, res.written, res.stale, secs,
           secs > 0 ? (double)g.n_rows / secs : 0.0);
    status = 0;
out:
    loader_stop(&g);
    chunk_free(&g.c);
    free(g.rules);
    store_bulk_free(g.bulk);
    store_close(s);
    if (g.repl != NULL) {
        if (status != 0 && g.n_msgs > 0)
            fprintf(stderr,
                    "fstore ingest: %zu messages were published before the failure (sequences "
                    "%llu to %llu): run the same ingest again\n",
                    g.n_msgs, (unsigned long long)g.first_seq, (unsigned long long)g.last_seq);
        repl_close(g.repl);
        repl_library_close();
    }
    if (g.client != NULL && status != 0 && g.n_msgs > 0)
        fprintf(stderr,
                "fstore ingest: %zu requests (%zu rows written, %zu stale) were answered before "
                "the failure: run the same ingest again\n",
                g.n_msgs, g.rows_written, g.rows_stale);
    fstore_client_close(g.client);
    explicit_bzero(g.auth, sizeof g.auth);
    if (grpc_started)
        grpc_shutdown();
    catalog_unref(cat);
    if (data != NULL)
        unmap_or_free(data, size, mapped);
    if (map_fd >= 0)
        close(map_fd);
    return status;
}
