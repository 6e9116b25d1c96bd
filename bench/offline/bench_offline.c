/* bench/offline/bench_offline.c - offline serving in one process: inserting history rows,
 * the point-in-time join of an entity table against them, and the online read of the same rows
 * as the baseline of the same run. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/base.h"
#include "core/core.h"
#include "bench/bench.h"
#include "storage/store.h"

/*
 * What it measures (release build, warm page cache):
 *   insert   --entities x --times history rows of --features DOUBLE features, STORE_OP_HISTORY
 *            through store_apply() in calls of --batch rows, time-major (every entity at one
 *            time, then the next time: a daily backfill), sync=none; the last time as upserts
 *            (online and history); up to four calls in flight (store_apply_async());
 *            --entity-major: every time of one entity, then the next (a backfill sorted by
 *            key: appended);
 *   join     --queries entity rows (random entity, random time within the history) joined
 *            point-in-time, --chunk rows per core_read_features_as_of() in one store snapshot
 *            each, as GetHistoricalFeatures runs it; peak RSS of the process after it;
 *   online   the same rows read online (core_read_features()): the baseline;
 *   scan     store_history_scan() of every entity as of the last time (load_batch's walk).
 */

typedef struct cfg {
    size_t entities, times, features, batch, queries, chunk;
    bool entity_major;
    const char *dir;
} cfg_t;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_offline: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

/* A line of /proc/self/status in MB ("RssAnon:", "RssFile:"), or -1. */
static long status_mb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field), NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

#define T0 (1700000000LL * 1000000)
#define STEP (3600LL * 1000000) /* one history row per entity per hour */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct flight {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, rc;
} flight_t;

static void flight_done(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    flight_t *f = arg;
    pthread_mutex_lock(&f->mu);
    f->n--;
    if (rc < 0)
        f->rc = rc;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static int count(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    (void)key, (void)key_len;
    *(size_t *)arg += row != NULL;
    return 0;
}

int main(int argc, char **argv)
{
    cfg_t c = {.entities = 1000000,
               .times = 10,
               .features = 10,
               .batch = 10000,
               .queries = 1000000,
               .chunk = 1000,
               .dir = NULL};
    static const struct option longs[] = {
        {"entities", 1, 0, 'e'}, {"times", 1, 0, 't'},        {"features", 1, 0, 'f'},
        {"batch", 1, 0, 'b'},    {"queries", 1, 0, 'q'},      {"chunk", 1, 0, 'c'},
        {"dir", 1, 0, 'd'},      {"entity-major", 0, 0, 'm'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (o) {
        case 'e':
            c.entities = strtoull(optarg, NULL, 10);
            break;
        case 't':
            c.times = strtoull(optarg, NULL, 10);
            break;
        case 'f':
            c.features = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            c.batch = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            c.queries = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            c.chunk = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            c.dir = optarg;
            break;
        case 'm':
            c.entity_major = true;
            break;
        default:
            fprintf(stderr, "usage: bench_offline [--entities N] [--times N] [--features N] "
                            "[--batch N] [--queries N] [--chunk N] [--dir D] [--entity-major]\n");
            return 2;
        }
    }
    char tmpl[] = "/tmp/bench-offline-XXXXXX";
    const char *dir = c.dir != NULL ? c.dir : mkdtemp(tmpl);
    if (dir == NULL)
        die("mkdtemp", errno);

    /* The catalog: one view with history, no TTL. */
    size_t cap = 512 + c.features * 64;
    char *y = malloc(cap);
    size_t n = (size_t)snprintf(y, cap,
                                "project: bench\n"
                                "entities: [{name: e, join_keys: [{name: id, type: INT64}]}]\n"
                                "feature_views:\n"
                                "  - name: h\n"
                                "    entities: [e]\n"
                                "    offline: {retention: 0}\n"
                                "    features:\n");
    for (size_t f = 0; f < c.features; f++)
        n += (size_t)snprintf(y + n, cap - n, "      - {name: f%zu, dtype: DOUBLE}\n", f);
    catalog_t *cat = NULL;
    int rc = catalog_load_string(y, n, "bench.yaml", &cat, NULL);
    if (rc < 0)
        die("catalog", rc);
    free(y);
    const catalog_view_t *v;
    catalog_find_view(cat, "h", 1, &v);
    store_options_t so = {.dir = dir,
                          .sync = STORE_SYNC_NONE,
                          .history = STORE_HISTORY_ON,
                          .max_future_skew_s = -1,
                          .map_size = (size_t)8 << 30};
    store_t *s = NULL;
    if ((rc = store_open(&so, &s)) < 0 || (rc = store_apply_catalog(s, cat, NULL)) < 0)
        die("store", rc);

    /* insert */
    size_t rows = c.entities * c.times, nf = c.features;
    catalog_value_t *keys = malloc(c.batch * sizeof *keys);
    catalog_value_t *vals = malloc(c.batch * nf * sizeof *vals);
    const catalog_value_t **kp = malloc(sizeof *kp), **vp = malloc(nf * sizeof *vp);
    int64_t *ts = malloc(c.batch * sizeof *ts);
    uint32_t *idx = malloc(nf * sizeof *idx);
    if (keys == NULL || vals == NULL || kp == NULL || vp == NULL || ts == NULL || idx == NULL)
        die("malloc", ENOMEM);
    for (size_t f = 0; f < nf; f++) {
        idx[f] = (uint32_t)f;
        vp[f] = vals + f * c.batch;
    }
    kp[0] = keys;
    flight_t fl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    double t0 = bench_now_s(), insert_s = 0;
    /* Rows by global index g: time-major (entity g % entities at time g / entities) or
     * entity-major (entity g / times at time g % times). */
    for (int pass = 0; pass < (c.entity_major ? 2 : 1); pass++) {
        bool online_pass = pass == 1; /* entity-major: the last time online, untimed */
        size_t total = online_pass ? c.entities : rows;
        if (online_pass) {
            pthread_mutex_lock(&fl.mu);
            while (fl.n > 0)
                pthread_cond_wait(&fl.cv, &fl.mu);
            pthread_mutex_unlock(&fl.mu);
            insert_s = bench_now_s() - t0;
        }
        for (size_t start = 0; start < total; start += c.batch) {
            size_t m = total - start < c.batch ? total - start : c.batch;
            bool last_time = false;
            for (size_t r = 0; r < m; r++) {
                size_t g = start + r, e, t;
                if (online_pass) {
                    e = g;
                    t = c.times - 1;
                } else if (c.entity_major) {
                    e = g / c.times;
                    t = g % c.times;
                } else {
                    e = g % c.entities;
                    t = g / c.entities;
                }
                last_time = t + 1 == c.times;
                keys[r] = (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = (int64_t)e};
                ts[r] = T0 + (int64_t)t * STEP;
                for (size_t f = 0; f < nf; f++)
                    vals[f * c.batch + r] =
                        (catalog_value_t){.type = CATALOG_DTYPE_DOUBLE, .u.f64 = (double)(e + t)};
            }
            /* The last time also goes online (time-major: its batches; entity-major: a second,
             * untimed pass): the baseline reads those rows. */
            store_batch_t b = {.view = v,
                               .op = online_pass || (!c.entity_major && last_time)
                                         ? STORE_OP_UPSERT
                                         : STORE_OP_HISTORY,
                               .n_rows = m,
                               .keys = kp,
                               .n_features = nf,
                               .feature_idx = idx,
                               .values = vp,
                               .event_ts_us = ts};
            /* Several calls in flight, as a server's concurrent writers keep them: the next
             * batch is validated and encoded while the writer commits the last. */
            pthread_mutex_lock(&fl.mu);
            while (fl.n >= 4)
                pthread_cond_wait(&fl.cv, &fl.mu);
            fl.n++;
            pthread_mutex_unlock(&fl.mu);
            store_apply_result_t res;
            if ((rc = store_apply_async(s, &b, 1, 0, &res, flight_done, &fl)) < 0)
                die("store_apply_async", rc);
        }
    }
    pthread_mutex_lock(&fl.mu);
    while (fl.n > 0)
        pthread_cond_wait(&fl.cv, &fl.mu);
    pthread_mutex_unlock(&fl.mu);
    if (fl.rc < 0)
        die("store_apply_async", fl.rc);
    if (!c.entity_major)
        insert_s = bench_now_s() - t0;
    printf("insert  %zu history rows x %zu features, %s: %.2f s, %.0f rows/s\n", rows, nf,
           c.entity_major ? "entity-major" : "time-major", insert_s, (double)rows / insert_s);
    fflush(stdout);

    /* join and online: the same random rows, --chunk per snapshot */
    store_reader_t *reader = NULL;
    if ((rc = store_reader_new(s, &reader)) < 0)
        die("reader", rc);
    catalog_feature_ref_t *refs = malloc(nf * sizeof *refs);
    for (size_t f = 0; f < nf; f++)
        refs[f] = (catalog_feature_ref_t){v, &v->features[f]};
    base_arena_t a;
    base_arena_init(&a, 1 << 20);
    catalog_value_t *qk = malloc(c.chunk * sizeof *qk);
    int64_t *at = malloc(c.chunk * sizeof *at);
    const catalog_value_t *qcols[1] = {qk};
    const char *names[1] = {"id"};
    core_columns_t ents = {.n_cols = 1, .names = names, .cols = qcols};
    char err[256];
    double phase_s[2] = {0, 0};
    size_t present[2] = {0, 0};
    for (int phase = 0; phase < 2; phase++) {
        uint64_t seed = 88172645463325252ull;
        t0 = bench_now_s();
        for (size_t done = 0; done < c.queries; done += c.chunk) {
            size_t m = c.queries - done < c.chunk ? c.queries - done : c.chunk;
            for (size_t r = 0; r < m; r++) {
                qk[r] = (catalog_value_t){.type = CATALOG_DTYPE_INT64,
                                          .u.i64 = (int64_t)(bench_rnd(&seed) % c.entities)};
                at[r] = T0 + (int64_t)(bench_rnd(&seed) % (uint64_t)(c.times * STEP));
            }
            ents.n_rows = m;
            base_arena_reset(&a);
            core_cell_t *cells = base_arena_array(&a, nf * m, sizeof *cells);
            if ((rc = store_read_begin(reader)) < 0)
                die("read_begin", rc);
            rc = core_read_features_as_of(reader, &a, refs, nf, NULL, &ents, NULL, T0,
                                          phase == 0 ? at : NULL, 0, cells, err, sizeof err);
            if (rc < 0) {
                fprintf(stderr, "bench_offline: %s\n", err);
                die("read", rc);
            }
            for (size_t i = 0; i < nf * m; i++)
                present[phase] += cells[i].status == STORE_STATUS_PRESENT;
            store_read_end(reader);
        }
        phase_s[phase] = bench_now_s() - t0;
    }
    long rss = peak_rss_mb();
    printf("join    %zu entity rows x %zu features point-in-time: %.2f s, %.0f rows/s, %.2f us/row "
           "(%zu cells present)\n",
           c.queries, nf, phase_s[0], (double)c.queries / phase_s[0],
           phase_s[0] * 1e6 / (double)c.queries, present[0]);
    printf("online  the same rows read online: %.2f s, %.0f rows/s, %.2f us/row (baseline)\n",
           phase_s[1], (double)c.queries / phase_s[1], phase_s[1] * 1e6 / (double)c.queries);
    printf("peak RSS %ld MB; after the join RssAnon %ld MB (the process's own memory) and RssFile "
           "%ld MB (the store's file, mapped: page cache the kernel can take back)\n",
           rss, status_mb("RssAnon:"), status_mb("RssFile:"));

    /* scan */
    size_t seen = 0;
    t0 = bench_now_s();
    if ((rc = store_read_begin(reader)) < 0)
        die("read_begin", rc);
    rc = store_history_scan(reader, v, T0 + (int64_t)c.times * STEP, NULL, 0, count, &seen);
    store_read_end(reader);
    if (rc < 0)
        die("scan", rc);
    double scan_s = bench_now_s() - t0;
    printf("scan    %zu entities as of the last time: %.2f s, %.0f entities/s\n", seen, scan_s,
           (double)seen / scan_s);

    printf("\nsummary: insert %.0f rows/s (target >= 1M); join %.2f s for %zu rows x %zu features "
           "against %zu history rows (target <= 10 s for 1M x 10 against 10M), %.2fx the online "
           "read's time; peak RSS %ld MB\n",
           (double)rows / insert_s, phase_s[0], c.queries, nf, rows, phase_s[0] / phase_s[1], rss);
    base_arena_free(&a);
    store_reader_free(reader);
    store_close(s);
    catalog_unref(cat);
    free(keys), free(vals), free(kp), free(vp), free(ts), free(idx), free(refs), free(qk), free(at);
    if (c.dir == NULL)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
