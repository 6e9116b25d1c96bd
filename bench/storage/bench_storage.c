/* bench/storage/bench_storage.c - storage micro-benchmark: reads against raw mdb_get, writes,
 * group commit and bulk loads, in one process on one data directory. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "storage/store.h"
#include "storage/store_int.h" /* store__key_cmp: the raw loop compares keys as the store does */

/*
 * What it measures (single process, warm page cache, default sizes run in well under a minute
 * in a release build):
 *   bulk     store_bulk_* of --entities rows x --features FLOAT features, sync=none;
 *   read     one (view, entity) = store_read_begin + store_read_row + N x store_row_feature +
 *            store_read_end, random keys, one thread; next to the same loop over raw LMDB
 *            (mdb_txn_renew + mdb_get + mdb_txn_reset) on the same environment and keys;
 *   batch    the same with --batch entities per read transaction (one request's worth);
 *   checksum store__rec_check() (which every store read does) over 1024 records found by the
 *            raw loop, their bytes in cache as a read's copy into its response leaves them: the
 *            checksum's own cost per read; next to it, the raw batched loop copying each record
 *            out with and without the check, best of 3 alternated (a noisy difference);
 *   encode   catalog_value_encode of N values per entity: what a typed record layout would add
 *            to every read (the record keeps wire form to avoid it);
 *   apply    store_apply with sync=full: one writer, then --writers concurrent writers, with the
 *            group-commit factor (calls per commit) from store_stat;
 *   on-demand  bench/run.sh's S1 on-demand view per entity row: 10 stored inputs decoded, 5
 *            features evaluated (catalog_expr_eval) and encoded; and the evaluation alone.
 * The last lines are a summary (bench/run.sh shows them).
 */

typedef struct cfg {
    size_t entities, features, lookups, batch, writers, rows_per_call;
    double write_seconds;
    const char *dir;
    bool keep;
} cfg_t;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_storage: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

static catalog_t *make_catalog(size_t features)
{
    size_t cap = 512 + features * 64;
    char *y = malloc(cap);
    size_t n = (size_t)snprintf(y, cap,
                                "project: bench\n"
                                "entities: [{name: e, join_keys: [{name: id, type: INT64}]}]\n"
                                "feature_views:\n"
                                "  - name: bench\n"
                                "    version: 1\n"
                                "    entities: [e]\n"
                                "    features:\n");
    for (size_t f = 0; f < features; f++)
        n += (size_t)snprintf(y + n, cap - n, "      - {name: f%zu, dtype: FLOAT}\n", f);
    catalog_t *c = NULL;
    catalog_errors_t errs = {0};
    int rc = catalog_load_string(y, n, "bench.yaml", &c, &errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.items[i].message);
        die("catalog", rc);
    }
    catalog_errors_clear(&errs);
    free(y);
    return c;
}

static store_t *open_store(const cfg_t *c, store_sync_t sync)
{
    store_options_t o = {.dir = c->dir, .sync = sync, .map_size = (size_t)4 << 30};
    store_t *s = NULL;
    int rc = store_open(&o, &s);
    if (rc < 0)
        die("store_open", rc);
    return s;
}

/* ------------------------------------------------------------------------------------------ */

static double bench_bulk(const cfg_t *c, store_t *s, const catalog_view_t *v)
{
    const size_t chunk = 100000;
    catalog_value_t *ids = malloc(chunk * sizeof *ids);
    catalog_value_t *vals = malloc(chunk * c->features * sizeof *vals);
    const catalog_value_t **cols = malloc(c->features * sizeof *cols);
    uint32_t *idx = malloc(c->features * sizeof *idx);
    for (size_t f = 0; f < c->features; f++) {
        idx[f] = (uint32_t)f;
        cols[f] = &vals[f * chunk];
    }
    const catalog_value_t *keys[] = {ids};
    double t0 = bench_now_s();
    store_bulk_t *b = NULL;
    int rc = store_bulk_begin(s, &b);
    if (rc < 0)
        die("store_bulk_begin", rc);
    for (size_t base = 0; base < c->entities; base += chunk) {
        size_t n = c->entities - base < chunk ? c->entities - base : chunk;
        for (size_t r = 0; r < n; r++) {
            ids[r] = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = (int64_t)(base + r)};
            for (size_t f = 0; f < c->features; f++)
                vals[f * chunk + r] = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT,
                                                        .u.f32 = (float)((base + r + f) % 997)};
        }
        store_batch_t batch = {.view = v,
                               .n_rows = n,
                               .keys = keys,
                               .n_features = c->features,
                               .feature_idx = idx,
                               .values = cols};
        store_apply_result_t res;
        rc = store_bulk_add(b, &batch, 1, &res);
        if (rc < 0) {
            fprintf(stderr, "bench_storage: bulk add: %s\n", res.error);
            exit(1);
        }
    }
    double t1 = bench_now_s();
    store_apply_result_t res;
    rc = store_bulk_commit(b, &res);
    if (rc < 0)
        die("store_bulk_commit", rc);
    double t2 = bench_now_s();
    store_bulk_free(b);
    double rate = (double)c->entities / (t2 - t0);
    printf("bulk     %zu rows x %zu FLOAT: validate+encode %.2f s, sort+commit %.2f s, "
           "%.0f rows/s\n",
           c->entities, c->features, t1 - t0, t2 - t1, rate);
    free(ids);
    free(vals);
    free(cols);
    free(idx);
    return rate;
}

/* Random encoded keys, 8 bytes each (an INT64 key encodes to 8 bytes). */
static uint8_t *make_keys(const cfg_t *c, const catalog_view_t *v)
{
    uint8_t *keys = malloc(c->lookups * 8);
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < c->lookups; i++) {
        catalog_value_t k = {.type = CATALOG_DTYPE_INT64,
                             .u.i64 = (int64_t)(bench_rnd(&x) % c->entities)};
        if (store_encode_key(v, &k, 1, keys + 8 * i, 8) != 8)
            die("store_encode_key", EINVAL);
    }
    return keys;
}

/* ns per entity through the store; batch entities per read transaction. */
static double read_store(const cfg_t *c, store_t *s, const catalog_view_t *v, const uint8_t *keys,
                         size_t batch, size_t *sink)
{
    store_reader_t *r = NULL;
    int rc = store_reader_new(s, &r);
    if (rc < 0)
        die("store_reader_new", rc);
    int64_t now = store_now_us();
    double t0 = bench_now_s();
    for (size_t i = 0; i < c->lookups; i += batch) {
        if ((rc = store_read_begin(r)) < 0)
            die("store_read_begin", rc);
        for (size_t j = i; j < i + batch && j < c->lookups; j++) {
            store_row_t row;
            if ((rc = store_read_row(r, v, keys + 8 * j, 8, &row)) < 0)
                die("store_read_row", rc);
            if (!row.found)
                die("store_read_row missed a key", ENOENT);
            for (uint32_t f = 0; f < c->features; f++) {
                const uint8_t *w;
                size_t len;
                if (store_row_feature(&row, v, f, now, &w, &len) == STORE_STATUS_PRESENT)
                    *sink += len + w[0];
            }
        }
        store_read_end(r);
    }
    double t = bench_now_s() - t0;
    store_reader_free(r);
    return t * 1e9 / (double)c->lookups;
}

/* What the raw loop does with each record it finds: nothing; copy its bytes out (as a read
 * copies its values into a response); or copy them and check its checksum, as every store read
 * does (the last two differ by the checksum's own cost, the record's bytes in cache for both). */
typedef enum { RAW_GET, RAW_COPY, RAW_COPY_CHECK, RAW_COLLECT } raw_mode_t;

/* RAW_COLLECT: the first records found (key and value), for timing their checksum alone. */
#define COLLECT 1024
static uint8_t collect_buf[COLLECT * 1024];
static size_t collect_key[COLLECT], collect_val[COLLECT], collect_len[COLLECT], n_collected,
    collect_used;

/* ns per store__rec_check() of a collected record whose bytes are in cache (as they are on the
 * read path, which copies them into the response): the checksum's own cost. */
static double time_checks(size_t *sink)
{
    if (n_collected == 0)
        die("no records collected", ENOENT);
    size_t reps = 2000;
    double t0 = bench_now_s();
    for (size_t r = 0; r < reps; r++) {
        for (size_t i = 0; i < n_collected; i++) {
            store__rec_t rec;
            if (store__rec_check(collect_buf + collect_key[i], 8, collect_buf + collect_val[i],
                                 collect_len[i], &rec) < 0)
                die("a record's checksum", EBADMSG);
            *sink += rec.n_slots;
        }
    }
    return (bench_now_s() - t0) * 1e9 / (double)(reps * n_collected);
}

/* The same lookups through raw LMDB on the same environment (the store must be closed), with the
 * store's key comparator. */
static double read_raw(const cfg_t *c, const uint8_t *keys, size_t batch, raw_mode_t mode,
                       size_t *sink)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 4096);
    mdb_env_set_mapsize(env, (size_t)4 << 30);
    if (rc == 0)
        rc = mdb_env_open(env, c->dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0644);
    /* The handle is opened in a transaction of its own and kept by committing it: resetting
     * or aborting the transaction that opened a handle closes it. */
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "fv:bench@v1", 0, &dbi);
    /* The store's comparator (LMDB's order, eight bytes at a time), so the floor is the fastest
     * raw lookup of these keys, not one slowed by LMDB's byte-wise default. */
    if (rc == 0)
        rc = mdb_set_compare(txn, dbi, store__key_cmp);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        die("raw lmdb", rc);
    mdb_txn_reset(txn);
    size_t found = 0;
    double t0 = bench_now_s();
    for (size_t i = 0; i < c->lookups; i += batch) {
        if (mdb_txn_renew(txn) != 0)
            die("mdb_txn_renew", EIO);
        for (size_t j = i; j < i + batch && j < c->lookups; j++) {
            MDB_val k = {8, (void *)(keys + 8 * j)}, d;
            if (mdb_get(txn, dbi, &k, &d) == 0) {
                *sink += d.mv_size + ((const uint8_t *)d.mv_data)[0];
                found++;
                if (mode == RAW_COLLECT && n_collected < COLLECT &&
                    collect_used + 8 + d.mv_size <= sizeof collect_buf) {
                    collect_key[n_collected] = collect_used;
                    memcpy(collect_buf + collect_used, k.mv_data, 8);
                    collect_val[n_collected] = collect_used + 8;
                    memcpy(collect_buf + collect_used + 8, d.mv_data, d.mv_size);
                    collect_len[n_collected++] = d.mv_size;
                    collect_used += 8 + d.mv_size;
                }
                if (mode != RAW_GET) {
                    static uint8_t copy[65536];
                    size_t n = d.mv_size < sizeof copy ? d.mv_size : sizeof copy;
                    memcpy(copy, d.mv_data, n);
                    *sink += copy[n / 2];
                }
                store__rec_t rec;
                if (mode == RAW_COPY_CHECK &&
                    store__rec_check(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &rec) < 0)
                    die("a record's checksum", EBADMSG);
            }
        }
        mdb_txn_reset(txn);
    }
    double t = bench_now_s() - t0;
    if (found != c->lookups)
        die("raw mdb_get missed keys", ENOENT);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return t * 1e9 / (double)c->lookups;
}

static double bench_encode(const cfg_t *c, size_t *sink)
{
    uint8_t buf[64];
    size_t n = c->lookups;
    double t0 = bench_now_s();
    for (size_t i = 0; i < n; i++) {
        for (size_t f = 0; f < c->features; f++) {
            catalog_value_t v = {.type = CATALOG_DTYPE_FLOAT, .u.f32 = (float)(i + f)};
            int len = catalog_value_encode(&v, buf, sizeof buf);
            *sink += (size_t)len + buf[len - 1];
        }
    }
    return (bench_now_s() - t0) * 1e9 / (double)n;
}

/*
 * On-demand features, per entity row, as a read computes them: bench/run.sh's S1 on-demand
 * view (od:o_j = v_j.f0 * q.k + v_j.f1 for j < 5: 10 stored inputs and a request field) decoded
 * from wire form, evaluated, and the 5 results encoded. Returns: ns per row; *eval_ns: the
 * evaluation alone, per feature.
 */
static double bench_on_demand(const cfg_t *c, size_t *sink, double *eval_ns)
{
    char y[2048];
    size_t n = (size_t)snprintf(y, sizeof y,
                                "project: bench\n"
                                "entities: [{name: e, join_keys: [{name: id, type: INT64}]}]\n"
                                "feature_views:\n");
    for (int v = 0; v < 5; v++)
        n += (size_t)snprintf(y + n, sizeof y - n,
                              "  - {name: v%d, entities: [e], features: [{name: f0, dtype: INT64}, "
                              "{name: f1, dtype: DOUBLE}]}\n",
                              v);
    n += (size_t)snprintf(y + n, sizeof y - n,
                          "request_sources: [{name: q, schema: [{name: k, dtype: DOUBLE}]}]\n"
                          "on_demand_feature_views:\n  - name: od\n"
                          "    sources: [v0, v1, v2, v3, v4, q]\n    features:\n");
    for (int v = 0; v < 5; v++)
        n += (size_t)snprintf(y + n, sizeof y - n,
                              "      - {name: o%d, dtype: DOUBLE, expression: 'v%d.f0 * q.k + "
                              "v%d.f1'}\n",
                              v, v, v);
    catalog_t *cat = NULL;
    int rc = catalog_load_string(y, n, "od.yaml", &cat, NULL);
    if (rc != 0)
        die("on-demand catalog", rc);
    const catalog_view_t *od = catalog_on_demand_at(cat, 0);
    size_t n_in = od->on_demand->n_inputs;
    uint8_t wire[16][16];
    size_t wlen[16];
    catalog_value_t in[16], out;
    for (size_t i = 0; i < n_in; i++) {
        const catalog_input_t *x = &od->on_demand->inputs[i];
        catalog_value_t v = {.type = x->kind == CATALOG_INPUT_FEATURE ? x->feature->dtype
                                                                      : x->field->dtype};
        if (v.type == CATALOG_DTYPE_INT64)
            v.u.i64 = 1000 + (int64_t)i;
        else
            v.u.f64 = 0.25 * (double)i;
        wlen[i] = (size_t)catalog_value_encode(&v, wire[i], sizeof wire[i]);
    }
    base_arena_t a;
    base_arena_init(&a, 4096);
    uint8_t buf[64];
    size_t rows = c->lookups;
    double t0 = bench_now_s();
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < n_in; i++) {
            if (catalog_value_decode(wire[i], wlen[i], &in[i], NULL, 0) != 0)
                die("decode", -EINVAL);
        }
        for (size_t f = 0; f < od->n_features; f++) {
            if (catalog_expr_eval(&od->features[f], in, 0, &a, SIZE_MAX, NULL, &out) != 0)
                die("eval", -ENOMEM);
            int len = catalog_value_encode(&out, buf, sizeof buf);
            *sink += (size_t)len + buf[len - 1];
        }
    }
    double per_row = (bench_now_s() - t0) * 1e9 / (double)rows;
    t0 = bench_now_s();
    for (size_t r = 0; r < rows; r++) {
        for (size_t f = 0; f < od->n_features; f++) {
            catalog_expr_eval(&od->features[f], in, 0, &a, SIZE_MAX, NULL, &out);
            *sink += (size_t)out.u.f64;
        }
    }
    *eval_ns = (bench_now_s() - t0) * 1e9 / (double)(rows * od->n_features);
    base_arena_free(&a);
    catalog_unref(cat);
    return per_row;
}

/* ------------------------------------------------------------------------------------------ */
/* Writes                                                                                      */

typedef struct wctx {
    const cfg_t *c;
    store_t *s;
    const catalog_view_t *v;
    int id;
    double until;
    size_t calls;
} wctx_t;

static void *writer(void *p)
{
    wctx_t *w = p;
    const cfg_t *c = w->c;
    size_t rows = c->rows_per_call;
    catalog_value_t *ids = malloc(rows * sizeof *ids);
    catalog_value_t *vals = malloc(rows * c->features * sizeof *vals);
    const catalog_value_t **cols = malloc(c->features * sizeof *cols);
    uint32_t *idx = malloc(c->features * sizeof *idx);
    for (size_t f = 0; f < c->features; f++) {
        idx[f] = (uint32_t)f;
        cols[f] = &vals[f * rows];
    }
    const catalog_value_t *keys[] = {ids};
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
    while (bench_now_s() < w->until) {
        for (size_t r = 0; r < rows; r++) {
            ids[r] = (catalog_value_t){.type = CATALOG_DTYPE_INT64,
                                       .u.i64 = (int64_t)(bench_rnd(&x) % c->entities)};
            for (size_t f = 0; f < c->features; f++)
                vals[f * rows + r] = (catalog_value_t){.type = CATALOG_DTYPE_FLOAT, .u.f32 = 0.5f};
        }
        store_batch_t b = {.view = w->v,
                           .n_rows = rows,
                           .keys = keys,
                           .n_features = c->features,
                           .feature_idx = idx,
                           .values = cols};
        int rc = store_apply(w->s, &b, 1, 0, NULL);
        if (rc < 0)
            die("store_apply", rc);
        w->calls++;
    }
    free(ids);
    free(vals);
    free(cols);
    free(idx);
    return NULL;
}

typedef struct wres {
    double calls_per_s, rows_per_s, factor;
} wres_t;

static wres_t bench_writes(const cfg_t *c, store_t *s, const catalog_view_t *v, size_t n)
{
    store_stats_t a, b;
    store_stat(s, &a);
    pthread_t th[256];
    wctx_t w[256];
    double t0 = bench_now_s();
    for (size_t i = 0; i < n; i++) {
        w[i] = (wctx_t){.c = c, .s = s, .v = v, .id = (int)i, .until = t0 + c->write_seconds};
        pthread_create(&th[i], NULL, writer, &w[i]);
    }
    size_t calls = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        calls += w[i].calls;
    }
    double t = bench_now_s() - t0;
    store_stat(s, &b);
    wres_t r = {(double)calls / t, (double)(calls * c->rows_per_call) / t,
                (double)(b.batches - a.batches) / (double)(b.commits - a.commits)};
    printf("apply    sync=full, %zu writer%s x %zu row%s/call: %.0f calls/s, %.0f rows/s, "
           "%.1f calls per commit (%llu commits)\n",
           n, n == 1 ? "" : "s", c->rows_per_call, c->rows_per_call == 1 ? "" : "s", r.calls_per_s,
           r.rows_per_s, r.factor, (unsigned long long)(b.commits - a.commits));
    return r;
}

/* ------------------------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_storage [flags]\n"
               "  --entities N       rows loaded (default 1000000)\n"
               "  --features N       FLOAT features per row (default 10)\n"
               "  --lookups N        random reads per read benchmark (default 1000000)\n"
               "  --batch N          entities per read transaction in the batch variant (100)\n"
               "  --writers N        concurrent store_apply threads (default 8)\n"
               "  --rows-per-call N  rows per store_apply call (default 1)\n"
               "  --write-seconds S  duration of each write benchmark (default 3)\n"
               "  --dir DIR          data directory (default: a new one under /tmp)\n"
               "  --keep             keep the data directory\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"entities", required_argument, NULL, 'e'},
        {"features", required_argument, NULL, 'f'},
        {"lookups", required_argument, NULL, 'l'},
        {"batch", required_argument, NULL, 'b'},
        {"writers", required_argument, NULL, 'w'},
        {"rows-per-call", required_argument, NULL, 'r'},
        {"write-seconds", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"keep", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cfg_t c = {.entities = 1000000,
               .features = 10,
               .lookups = 1000000,
               .batch = 100,
               .writers = 8,
               .rows_per_call = 1,
               .write_seconds = 3};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            c.entities = strtoull(optarg, NULL, 10);
            break;
        case 'f':
            c.features = strtoull(optarg, NULL, 10);
            break;
        case 'l':
            c.lookups = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            c.batch = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            c.writers = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            c.rows_per_call = strtoull(optarg, NULL, 10);
            break;
        case 's':
            c.write_seconds = strtod(optarg, NULL);
            break;
        case 'd':
            c.dir = optarg;
            break;
        case 'k':
            c.keep = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (c.entities == 0 || c.features == 0 || c.features > 1000 || c.lookups == 0 || c.batch == 0 ||
        c.writers == 0 || c.writers > 256 || c.rows_per_call == 0) {
        usage(stderr);
        return 2;
    }
    char tmp[] = "/tmp/bench-storage-XXXXXX";
    if (c.dir == NULL) {
        if (mkdtemp(tmp) == NULL)
            die("mkdtemp", errno);
        c.dir = tmp;
    }
    catalog_t *cat = make_catalog(c.features);
    const catalog_view_t *v = NULL;
    catalog_find_view(cat, "bench", 1, &v);
    printf("bench_storage: %zu entities x %zu FLOAT features, %zu random lookups, dir %s\n",
           c.entities, c.features, c.lookups, c.dir);

    store_t *s = open_store(&c, STORE_SYNC_NONE);
    int rc = store_apply_catalog(s, cat, NULL);
    if (rc < 0)
        die("store_apply_catalog", rc);
    double bulk_rate = bench_bulk(&c, s, v);
    store_stats_t st;
    store_stat(s, &st);
    printf("size     %.1f MiB used for %zu rows (%.0f bytes/row incl. B-tree)\n",
           (double)st.used_bytes / 1048576.0, c.entities,
           (double)st.used_bytes / (double)c.entities);

    uint8_t *keys = make_keys(&c, v);
    size_t sink = 0;
    read_store(&c, s, v, keys, 1, &sink); /* warm the page cache and the reader */
    double store1 = read_store(&c, s, v, keys, 1, &sink);
    double storeb = read_store(&c, s, v, keys, c.batch, &sink);
    store_close(s);
    read_raw(&c, keys, 1, RAW_GET, &sink);
    double raw1 = read_raw(&c, keys, 1, RAW_GET, &sink);
    double rawb = read_raw(&c, keys, c.batch, RAW_GET, &sink);
    /* The checksum's share: batched raw lookups that copy each record out, with and without its
     * checksum checked, alternated, best of 3. */
    double plain = 1e30, checked = 1e30;
    for (int i = 0; i < 3; i++) {
        double a = read_raw(&c, keys, c.batch, RAW_COPY, &sink);
        double b = read_raw(&c, keys, c.batch, RAW_COPY_CHECK, &sink);
        plain = a < plain ? a : plain;
        checked = b < checked ? b : checked;
    }
    double diff_ns = checked > plain ? checked - plain : 0;
    read_raw(&c, keys, c.batch, RAW_COLLECT, &sink);
    double sum_ns = time_checks(&sink);
    printf("checksum %zu records in cache: %.1f ns per store__rec_check (%.0f bytes/record "
           "incl. B-tree); in the lookup loop, raw mdb_get + copy %.0f ns/entity, + the check "
           "%.0f ns/entity (a noisy difference of %.1f ns)\n",
           n_collected, sum_ns, (double)st.used_bytes / (double)c.entities, plain, checked,
           diff_ns);
    double enc = bench_encode(&c, &sink);
    printf("read     1 entity/txn: store %.0f ns (read_row + %zu features), raw mdb_get %.0f ns, "
           "ratio %.2f\n",
           store1, c.features, raw1, store1 / raw1);
    printf("read     %zu entities/txn: store %.0f ns/entity, raw mdb_get %.0f ns/entity, "
           "ratio %.2f\n",
           c.batch, storeb, rawb, storeb / rawb);
    printf("encode   %zu x catalog_value_encode(FLOAT): %.0f ns/entity (avoided by wire form)\n",
           c.features, enc);
    double eval_ns = 0;
    double od_row = bench_on_demand(&c, &sink, &eval_ns);

    s = open_store(&c, STORE_SYNC_FULL);
    wres_t one = bench_writes(&c, s, v, 1);
    wres_t many = bench_writes(&c, s, v, c.writers);
    store_close(s);

    printf("summary: read %.0f ns/entity (%zu features) vs raw mdb_get %.0f ns = %.2fx; "
           "batched %.0f vs %.0f ns = %.2fx\n",
           store1, c.features, raw1, store1 / raw1, storeb, rawb, storeb / rawb);
    printf("summary: apply sync=full 1 writer %.0f calls/s; %zu writers %.0f calls/s "
           "(group commit %.1f calls/commit)\n",
           one.calls_per_s, c.writers, many.calls_per_s, many.factor);
    printf("summary: bulk ingest %.0f rows/s (%zu features/row)\n", bulk_rate, c.features);
    printf("summary: checksum %.1f ns per (view, entity) read (%zu features), the record's bytes "
           "in cache; in the lookup loop raw + copy %.0f vs %.0f ns checked\n",
           sum_ns, c.features, plain, checked);
    printf("summary: on-demand %.0f ns per entity row (5 features over 10 stored values and a "
           "request field: decode, evaluate, encode); evaluation alone %.0f ns per feature\n",
           od_row, eval_ns);
    if (sink == 42)
        printf(" \n"); /* keeps the reads from being optimised away */
    free(keys);
    catalog_unref(cat);
    if (!c.keep)
        nftw(c.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
