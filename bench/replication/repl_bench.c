/* bench/replication/repl_bench.c - fstore-repl-bench: replication's benchmark tools. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "bench/loadgen/hist_int.h"
#include "clients/c/fstore_client.h"

/*
 * visible: write -> visible on another node, in open loop. Calls are scheduled at --rate per
 *   second from the start; a pool of threads takes them in order. Each call writes --rows rows
 *   of random ids (every feature of view --view) to --writer, then reads one of those rows from
 *   --reader with fstore-min-seq set to the sequence the write returned: the reader answers once
 *   its replica applied the write. Latency counts from the call's scheduled time to the read's
 *   answer (a call that starts late counts its wait: no coordinated omission), and the read's
 *   value is checked against what was written.
 *
 * floor: the apply floor: raw LMDB, no fstore. The ids of a CSV (its first column, in file
 *   order) are put into a fresh environment in batches of --batch rows, each batch sorted by key
 *   (as the store's writer does), --txn-rows rows per transaction, no sync, values of
 *   --value-bytes. It is what applying the same rows costs LMDB itself.
 */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return def;
}

/* ------------------------------------------------------------------------------------------ */
/* visible                                                                                     */

typedef struct vis {
    const char *writer, *reader, *view;
    double rate;
    int64_t duration_ns, warmup_ns, t0;
    long rows, features, keys;
    _Atomic long next;
    _Atomic long errors, wrong, late;
    pthread_mutex_t mu;
    hist_t all, write_h;
    char first_error[600];
} vis_t;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void set_i64(Feast__Types__Value *v, int64_t x)
{
    feast__types__value__init(v);
    v->val_case = FEAST__TYPES__VALUE__VAL_INT64_VAL;
    v->int64_val = x;
}

static void set_f64(Feast__Types__Value *v, double x)
{
    feast__types__value__init(v);
    v->val_case = FEAST__TYPES__VALUE__VAL_DOUBLE_VAL;
    v->double_val = x;
}

static void fail(vis_t *v, const char *what, const fstore_status_t *st, int rc)
{
    atomic_fetch_add(&v->errors, 1);
    pthread_mutex_lock(&v->mu);
    if (v->first_error[0] == '\0')
        snprintf(v->first_error, sizeof v->first_error, "%s: %s", what,
                 rc == -EREMOTEIO ? st->message : strerror(-rc));
    pthread_mutex_unlock(&v->mu);
}

static void *vis_thread(void *arg)
{
    vis_t *v = arg;
    fstore_client_t *w = NULL, *r = NULL;
    if (fstore_client_connect(v->writer, &w) < 0 || fstore_client_connect(v->reader, &r) < 0)
        return NULL;
    hist_t h, wh;
    hist_reset(&h);
    hist_reset(&wh);
    uint64_t seed = (uint64_t)(uintptr_t)&h ^ (uint64_t)now_ns();
    long nk = v->features + 1;
    Feast__Types__Value *vals = calloc((size_t)(nk * v->rows), sizeof *vals);
    Feast__Types__Value **ptrs = calloc((size_t)(nk * v->rows), sizeof *ptrs);
    Feast__Types__RepeatedValue *rep = calloc((size_t)nk, sizeof *rep);
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry *ent = calloc((size_t)nk, sizeof *ent);
    Fstore__V1__WriteFeaturesRequest__ColumnsEntry **entp = calloc((size_t)nk, sizeof *entp);
    char(*names)[32] = calloc((size_t)nk, sizeof *names);
    uint8_t *buf = malloc(1 << 20);
    for (;;) {
        long i = atomic_fetch_add(&v->next, 1);
        int64_t due = v->t0 + (int64_t)((double)i * 1e9 / v->rate);
        if (due - v->t0 >= v->warmup_ns + v->duration_ns)
            break;
        int64_t now = now_ns();
        if (due > now) {
            struct timespec ts = {(due - now) / 1000000000, (due - now) % 1000000000};
            nanosleep(&ts, NULL);
        } else if (now - due > 1000000) {
            atomic_fetch_add(&v->late, 1);
        }
        /* rows random ids; feature k of id: id * 1000 + k (even INT64, odd DOUBLE) */
        Fstore__V1__WriteFeaturesRequest req = FSTORE__V1__WRITE_FEATURES_REQUEST__INIT;
        req.feature_view = (char *)v->view;
        int64_t first_id = 0;
        for (long c = 0; c < nk; c++) {
            feast__types__repeated_value__init(&rep[c]);
            fstore__v1__write_features_request__columns_entry__init(&ent[c]);
            if (c == 0)
                snprintf(names[c], sizeof names[c], "id");
            else
                snprintf(names[c], sizeof names[c], "f%ld", c - 1);
            ent[c].key = names[c];
            ent[c].value = &rep[c];
            rep[c].n_val = (size_t)v->rows;
            rep[c].val = &ptrs[c * v->rows];
            entp[c] = &ent[c];
        }
        for (long row = 0; row < v->rows; row++) {
            int64_t id = (int64_t)(xorshift(&seed) % (uint64_t)v->keys);
            if (row == 0)
                first_id = id;
            for (long c = 0; c < nk; c++) {
                Feast__Types__Value *x = &vals[c * v->rows + row];
                if (c == 0)
                    set_i64(x, id);
                else if ((c - 1) % 2 == 0)
                    set_i64(x, id * 1000 + (i % 1000));
                else
                    set_f64(x, (double)id + 0.5);
                ptrs[c * v->rows + row] = x;
            }
        }
        req.n_columns = (size_t)nk;
        req.columns = entp;
        size_t n = fstore__v1__write_features_request__get_packed_size(&req);
        fstore__v1__write_features_request__pack(&req, buf);
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        fstore_status_t st = {0};
        int rc =
            fstore_client_call(w, FSTORE_PATH_WRITE_FEATURES, buf, n, 30000, &resp, &resp_len, &st);
        int64_t acked = now_ns();
        if (rc < 0) {
            fail(v, "write", &st, rc);
            continue;
        }
        Fstore__V1__WriteFeaturesResponse *wr =
            fstore__v1__write_features_response__unpack(NULL, resp_len, resp);
        free(resp);
        if (wr == NULL) {
            fail(v, "write response", &st, -EPROTO);
            continue;
        }
        char seq[32];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)wr->sequence);
        fstore__v1__write_features_response__free_unpacked(wr, NULL);

        /* Read it back from the other node, once it applied that sequence. */
        Feast__Serving__GetOnlineFeaturesRequest g =
            FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__INIT;
        Feast__Serving__FeatureList fl = FEAST__SERVING__FEATURE_LIST__INIT;
        char ref[160];
        snprintf(ref, sizeof ref, "%s:f0", v->view);
        char *refs[1] = {ref};
        fl.n_val = 1;
        fl.val = refs;
        g.kind_case = FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
        g.features = &fl;
        Feast__Types__Value idv;
        set_i64(&idv, first_id);
        Feast__Types__Value *idp[1] = {&idv};
        Feast__Types__RepeatedValue ids = FEAST__TYPES__REPEATED_VALUE__INIT;
        ids.n_val = 1;
        ids.val = idp;
        Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry ee =
            FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__ENTITIES_ENTRY__INIT;
        ee.key = "id";
        ee.value = &ids;
        Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *eep[1] = {&ee};
        g.n_entities = 1;
        g.entities = eep;
        n = feast__serving__get_online_features_request__get_packed_size(&g);
        feast__serving__get_online_features_request__pack(&g, buf);
        fstore_metadata_t md[1] = {{"fstore-min-seq", seq}};
        rc = fstore_client_call_md(r, FSTORE_PATH_FEAST_GET_ONLINE_FEATURES, md, 1, buf, n, 30000,
                                   &resp, &resp_len, &st);
        int64_t visible = now_ns();
        if (rc < 0) {
            fail(v, "read", &st, rc);
            continue;
        }
        Feast__Serving__GetOnlineFeaturesResponse *gr =
            feast__serving__get_online_features_response__unpack(NULL, resp_len, resp);
        free(resp);
        /* A later write may have overwritten the id meanwhile: any value of the id's form is
         * right; a missing one is not. */
        bool ok = gr != NULL && gr->n_results >= 2 && gr->results[1]->n_values == 1 &&
                  gr->results[1]->values[0]->val_case == FEAST__TYPES__VALUE__VAL_INT64_VAL &&
                  gr->results[1]->values[0]->int64_val / 1000 == first_id;
        if (gr != NULL)
            feast__serving__get_online_features_response__free_unpacked(gr, NULL);
        if (!ok)
            atomic_fetch_add(&v->wrong, 1);
        if (due - v->t0 >= v->warmup_ns) {
            hist_record(&h, (uint64_t)(visible - due));
            hist_record(&wh, (uint64_t)(acked - due));
        }
    }
    pthread_mutex_lock(&v->mu);
    hist_merge(&v->all, &h);
    hist_merge(&v->write_h, &wh);
    pthread_mutex_unlock(&v->mu);
    free(vals);
    free(ptrs);
    free(rep);
    free(ent);
    free(entp);
    free(names);
    free(buf);
    fstore_client_close(w);
    fstore_client_close(r);
    return NULL;
}

static int cmd_visible(int argc, char **argv)
{
    static vis_t v;
    v.writer = arg(argc, argv, "--writer", NULL);
    v.reader = arg(argc, argv, "--reader", NULL);
    v.view = arg(argc, argv, "--view", "w0");
    v.rate = atof(arg(argc, argv, "--rate", "100"));
    v.duration_ns = (int64_t)(atof(arg(argc, argv, "--duration", "10")) * 1e9);
    v.warmup_ns = (int64_t)(atof(arg(argc, argv, "--warmup", "2")) * 1e9);
    v.rows = atol(arg(argc, argv, "--rows", "100"));
    v.features = atol(arg(argc, argv, "--features", "10"));
    v.keys = atol(arg(argc, argv, "--keys", "1000000"));
    int threads = atoi(arg(argc, argv, "--threads", "32"));
    if (v.writer == NULL || v.reader == NULL || v.rate <= 0 || v.rows <= 0 || threads <= 0) {
        fprintf(stderr, "usage: fstore-repl-bench visible --writer A --reader B [--rate R] "
                        "[--duration S] [--warmup S] [--rows N] [--features K] [--keys K] "
                        "[--view V] [--threads T]\n");
        return 2;
    }
    pthread_mutex_init(&v.mu, NULL);
    hist_reset(&v.all);
    hist_reset(&v.write_h);
    fstore_grpc_init();
    v.t0 = now_ns() + 100000000;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, vis_thread, &v);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(t);
    double secs = (double)v.duration_ns / 1e9;
    printf("{\"rate\": %.1f, \"rows_per_s\": %.0f, \"calls\": %llu, \"errors\": %ld, "
           "\"wrong\": %ld, \"late\": %ld, \"visible_p50_us\": %.1f, \"visible_p99_us\": %.1f, "
           "\"visible_max_us\": %.1f, \"write_p50_us\": %.1f, \"write_p99_us\": %.1f, "
           "\"first_error\": \"%s\"}\n",
           v.rate, (double)v.all.total * (double)v.rows / secs, (unsigned long long)v.all.total,
           atomic_load(&v.errors), atomic_load(&v.wrong), atomic_load(&v.late),
           (double)hist_percentile(&v.all, 50) / 1e3, (double)hist_percentile(&v.all, 99) / 1e3,
           (double)hist_percentile(&v.all, 100) / 1e3,
           (double)hist_percentile(&v.write_h, 50) / 1e3,
           (double)hist_percentile(&v.write_h, 99) / 1e3, v.first_error);
    grpc_shutdown();
    return atomic_load(&v.errors) > 0 || atomic_load(&v.wrong) > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* floor                                                                                       */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_floor(int argc, char **argv)
{
    const char *csv = arg(argc, argv, "--ids-csv", NULL);
    const char *dir = arg(argc, argv, "--dir", NULL);
    long batch = atol(arg(argc, argv, "--batch", "100"));
    long txn_rows = atol(arg(argc, argv, "--txn-rows", "50000"));
    long value_bytes = atol(arg(argc, argv, "--value-bytes", "160"));
    if (csv == NULL || dir == NULL || batch <= 0 || txn_rows <= 0) {
        fprintf(stderr, "usage: fstore-repl-bench floor --ids-csv FILE --dir DIR [--batch N] "
                        "[--txn-rows N] [--value-bytes N]\n");
        return 2;
    }
    FILE *f = fopen(csv, "r");
    if (f == NULL) {
        perror(csv);
        return 1;
    }
    size_t n = 0, cap = 1 << 20;
    uint64_t *ids = malloc(cap * sizeof *ids);
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        char *end = NULL;
        long long id = strtoll(line, &end, 10);
        if (end == line)
            continue; /* the header */
        if (n == cap)
            ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[n++] = (uint64_t)id;
    }
    fclose(f);
    mkdir(dir, 0755);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)8 << 30);
    int rc = mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0644);
    if (rc != 0) {
        fprintf(stderr, "mdb_env_open: %s\n", mdb_strerror(rc));
        return 1;
    }
    uint8_t *val = malloc((size_t)value_bytes);
    memset(val, 0xab, (size_t)value_bytes);
    uint64_t *sorted = malloc((size_t)batch * sizeof *sorted);
    int64_t t0 = now_ns();
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    long in_txn = 0;
    for (size_t at = 0; at < n; at += (size_t)batch) {
        size_t m = n - at < (size_t)batch ? n - at : (size_t)batch;
        memcpy(sorted, ids + at, m * sizeof *sorted);
        qsort(sorted, m, sizeof *sorted, cmp_u64);
        for (size_t i = 0; i < m; i++) {
            /* big-endian with the sign bit flipped: the store's INT64 key order */
            uint8_t kb[8];
            uint64_t k = sorted[i] ^ (1ull << 63);
            for (int b = 0; b < 8; b++)
                kb[b] = (uint8_t)(k >> (56 - 8 * b));
            MDB_val key = {sizeof kb, kb}, data = {(size_t)value_bytes, val};
            rc = mdb_put(txn, dbi, &key, &data, 0);
            if (rc != 0) {
                fprintf(stderr, "mdb_put: %s\n", mdb_strerror(rc));
                return 1;
            }
        }
        in_txn += (long)m;
        if (in_txn >= txn_rows) {
            mdb_txn_commit(txn);
            mdb_txn_begin(env, NULL, 0, &txn);
            in_txn = 0;
        }
    }
    mdb_txn_commit(txn);
    double secs = (double)(now_ns() - t0) / 1e9;
    mdb_env_close(env);
    printf("{\"rows\": %zu, \"seconds\": %.3f, \"rows_per_s\": %.0f, \"batch\": %ld, "
           "\"txn_rows\": %ld, \"value_bytes\": %ld}\n",
           n, secs, (double)n / secs, batch, txn_rows, value_bytes);
    free(ids);
    free(sorted);
    free(val);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "visible") == 0)
        return cmd_visible(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "floor") == 0)
        return cmd_floor(argc - 1, argv + 1);
    fprintf(stderr, "usage: fstore-repl-bench visible|floor [flags]\n"
                    "  visible  write -> visible on another node, open loop (JSON)\n"
                    "  floor    raw LMDB apply of a CSV's ids, the apply floor (JSON)\n");
    return 2;
}
