/* core/metrics.c - the core's Prometheus families: catalog, store, views, replication, process. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/core_int.h"

/*
 * Counting costs the hot path one relaxed atomic add per view and request, on the request's own
 * worker (its cache line): rows read are per worker, by view id of the catalog the worker
 * counted under, and summed on a scrape. Rows applied and each view's newest event time come
 * from the store's writer (store_view_stats()); refused writes are rare and counted under a
 * lock.
 */

typedef struct core__rejected {
    struct core__rejected *next;
    char view[CATALOG_MAX_NAME + 1];
    uint32_t version;
    uint64_t writes, rows;
} core__rejected_t;

void core__count_reads(core_ctx_t *ctx, const catalog_view_t *v, size_t rows)
{
    core_worker_t *w = ctx->worker;
    /* On-demand views are not read from the store: nothing to count. */
    if (w == NULL || v->id >= CORE_STATS_VIEWS || v->on_demand != NULL)
        return;
    if (w->stats_cat != ctx->catalog) {
        /* Another catalog: its ids mean other views; counting starts again. */
        for (size_t i = 0; i < CORE_STATS_VIEWS; i++)
            atomic_store_explicit(&w->reads[i], 0, memory_order_relaxed);
        w->stats_cat = ctx->catalog;
    }
    atomic_fetch_add_explicit(&w->reads[v->id], rows, memory_order_relaxed);
}

void core__count_rejected(core_t *c, const catalog_view_t *v, size_t rows)
{
    pthread_mutex_lock(&c->rejected_mu);
    core__rejected_t *r = c->rejected;
    while (r != NULL && (r->version != v->version || strcmp(r->view, v->name) != 0))
        r = r->next;
    if (r == NULL && (r = calloc(1, sizeof *r)) != NULL) {
        snprintf(r->view, sizeof r->view, "%s", v->name);
        r->version = v->version;
        r->next = c->rejected;
        c->rejected = r;
    }
    if (r != NULL) {
        r->writes++;
        r->rows += rows;
    }
    pthread_mutex_unlock(&c->rejected_mu);
}

void core__metrics_free(core_t *c)
{
    for (core__rejected_t *r = c->rejected, *next; r != NULL; r = next) {
        next = r->next;
        free(r);
    }
    c->rejected = NULL;
}

/* A label value, escaped as the text format asks. */
static void label(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*s, out);
    }
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct view_out {
    FILE *out;
    int pass; /* 0: rows applied, 1: newest event time */
} view_out_t;

static int view_stat(void *arg, const char *view, uint32_t version, uint64_t rows,
                     int64_t newest_event_us)
{
    view_out_t *o = arg;
    fputs(o->pass == 0 ? "fstore_rows_applied_total{view=\""
                       : "fstore_view_newest_event_seconds{view=\"",
          o->out);
    label(o->out, view);
    if (o->pass == 0)
        fprintf(o->out, "\",version=\"%u\"} %llu\n", (unsigned)version, (unsigned long long)rows);
    else
        fprintf(o->out, "\",version=\"%u\"} %.6f\n", (unsigned)version,
                (double)newest_event_us / 1e6);
    return 0;
}

/* The process, as client libraries' process collectors report it (from /proc/self). */
static void process(FILE *out)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        const char *p = strrchr(buf, ')');
        /* After the command: state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss
         * 24. */
        if (p != NULL)
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
                   "%llu %llu %lld",
                   &utime, &stime, &start, &vsize, &rss);
    }
    double btime = 0;
    f = fopen("/proc/stat", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "btime ", 6) == 0)
                btime = strtod(line + 6, NULL);
        }
        fclose(f);
    }
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            fds += de->d_name[0] != '.';
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    family(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    fprintf(out, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tick);
    family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    fprintf(out, "process_open_fds %zu\n", fds);
    family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    fprintf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    fprintf(out, "process_virtual_memory_bytes %llu\n", vsize);
    family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    fprintf(out, "process_resident_memory_bytes %lld\n", rss * page);
    family(out, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    fprintf(out, "process_start_time_seconds %.2f\n", btime + (double)start / (double)tick);
}

static void replication(core_t *c, FILE *out)
{
    repl_status_t st;
    repl_status(c->repl, &st);
    static const char *const states[] = {"connecting", "catching_up", "ready", "needs_snapshot",
                                         "failed"};
    family(out, "fstore_replication_state", "gauge", "The replica's state: 1 for the current one.");
    for (int i = 0; i < 5; i++)
        fprintf(out, "fstore_replication_state{state=\"%s\"} %d\n", states[i], (int)st.state == i);
    family(out, "fstore_replication_connected", "gauge", "1 when the NATS connection is up.");
    fprintf(out, "fstore_replication_connected %d\n", st.connected);
    family(out, "fstore_replication_applied_sequence", "gauge",
           "The last stream sequence this node's store applied.");
    fprintf(out, "fstore_replication_applied_sequence %llu\n", (unsigned long long)st.applied);
    family(out, "fstore_replication_stream_sequence", "gauge",
           "The stream's last sequence, as last seen.");
    fprintf(out, "fstore_replication_stream_sequence %llu\n", (unsigned long long)st.stream_last);
    family(out, "fstore_replication_lag_messages", "gauge",
           "Messages in the stream this node has not applied yet.");
    fprintf(out, "fstore_replication_lag_messages %llu\n", (unsigned long long)st.lag);
    family(out, "fstore_replication_lag_seconds", "gauge",
           "Age of the oldest message this node has not applied yet.");
    fprintf(out, "fstore_replication_lag_seconds %.3f\n", (double)st.lag_ms / 1e3);
    family(out, "fstore_replication_published_total", "counter",
           "Writes this node published and JetStream acknowledged.");
    fprintf(out, "fstore_replication_published_total %llu\n", (unsigned long long)st.published);
    family(out, "fstore_replication_publish_retries_total", "counter",
           "Publishes retried after a timeout or no answer.");
    fprintf(out, "fstore_replication_publish_retries_total %llu\n",
            (unsigned long long)st.publish_retries);
    family(out, "fstore_replication_tls_reloads_total", "counter",
           "Changed TLS files to NATS taken (a new connection) or rejected (the old one kept).");
    fprintf(out, "fstore_replication_tls_reloads_total{result=\"applied\"} %llu\n",
            (unsigned long long)st.tls_reloads);
    fprintf(out, "fstore_replication_tls_reloads_total{result=\"rejected\"} %llu\n",
            (unsigned long long)st.tls_reloads_rejected);
    family(out, "fstore_replication_skipped_total", "counter",
           "Messages this node could not apply (logged) and passed.");
    fprintf(out, "fstore_replication_skipped_total %llu\n", (unsigned long long)st.skipped);
    family(out, "fstore_replication_resubscribes_total", "counter",
           "Times the watchdog created the consumer again.");
    fprintf(out, "fstore_replication_resubscribes_total %llu\n",
            (unsigned long long)st.resubscribes);
    family(out, "fstore_replication_pending_writes", "gauge",
           "Writes waiting for the log or for this node's apply.");
    fprintf(out, "fstore_replication_pending_writes %zu\n", st.pending);
    family(out, "fstore_replication_read_waiters", "gauge",
           "Reads waiting for this node to apply the sequence they asked for (fstore-min-seq; "
           "at most --max-read-waiters).");
    fprintf(out, "fstore_replication_read_waiters %zu\n", atomic_load(&c->read_waiters));
}

void core_metrics(void *arg, FILE *out)
{
    core_t *c = arg;
    catalog_t *cat = core__holder_ref(&c->holder);
    family(out, "fstore_up", "gauge", "1 when the node reports SERVING (ready), else 0.");
    fprintf(out, "fstore_up %d\n", core_health(c) == CORE_SERVING);
    family(out, "fstore_catalog_info", "gauge",
           "The catalog being served: its project and digest.");
    fputs("fstore_catalog_info{project=\"", out);
    label(out, catalog_project(cat));
    fprintf(out, "\",digest=\"%s\"} 1\n", catalog_digest(cat));
    family(out, "fstore_catalog_loaded_timestamp_seconds", "gauge",
           "When the catalog being served was loaded or swapped in.");
    fprintf(out, "fstore_catalog_loaded_timestamp_seconds %.3f\n",
            (double)atomic_load(&c->catalog_time_us) / 1e6);
    uint64_t applied = 0, rejected = 0;
    core_reload_counts(c, &applied, &rejected);
    family(out, "fstore_catalog_reloads_total", "counter",
           "Catalog reloads (SIGHUP, or from the replication log), by result.");
    fprintf(out, "fstore_catalog_reloads_total{result=\"applied\"} %llu\n",
            (unsigned long long)applied);
    fprintf(out, "fstore_catalog_reloads_total{result=\"rejected\"} %llu\n",
            (unsigned long long)rejected);

    store_stats_t st;
    if (store_stat(c->store, &st) == 0) {
        family(out, "fstore_store_map_size_bytes", "gauge", "The LMDB map's current size.");
        fprintf(out, "fstore_store_map_size_bytes %zu\n", st.map_size);
        family(out, "fstore_store_used_bytes", "gauge", "Pages of the LMDB map in use.");
        fprintf(out, "fstore_store_used_bytes %zu\n", st.used_bytes);
        family(out, "fstore_store_commits_total", "counter", "Write transactions committed.");
        fprintf(out, "fstore_store_commits_total %llu\n", (unsigned long long)st.commits);
        family(out, "fstore_store_write_batches_total", "counter",
               "Write calls applied (several share a commit).");
        fprintf(out, "fstore_store_write_batches_total %llu\n", (unsigned long long)st.batches);
        family(out, "fstore_store_damaged_records_total", "counter",
               "Records whose checksum did not match when read or written over (each read as "
               "INVALID, never as a value; fstore verify finds them all).");
        fprintf(out, "fstore_store_damaged_records_total %llu\n", (unsigned long long)st.damaged);
        family(out, "fstore_store_read_errors_total", "counter",
               "Reads the store failed (I/O error, corrupted page, no free reader slot): each "
               "failed its request.");
        fprintf(out, "fstore_store_read_errors_total %llu\n", (unsigned long long)st.read_errors);
        family(out, "fstore_store_log_position", "gauge",
               "The replication log position the store holds (0 without replication).");
        fprintf(out, "fstore_store_log_position %llu\n", (unsigned long long)st.last_position);
    }

    /* Rows read, per view of the current catalog, summed over the workers counting by it. */
    uint64_t *reads = calloc(CORE_STATS_VIEWS, sizeof *reads);
    if (reads != NULL) {
        pthread_mutex_lock(&c->pins_mu);
        for (size_t i = 0; i < c->holder.n_pins; i++) {
            core_worker_t *w = c->workers[i];
            if (w == NULL || w->stats_cat != cat)
                continue;
            for (size_t v = 0; v < CORE_STATS_VIEWS; v++)
                reads[v] += atomic_load_explicit(&w->reads[v], memory_order_relaxed);
        }
        pthread_mutex_unlock(&c->pins_mu);
        family(out, "fstore_rows_read_total", "counter",
               "Entity rows read, per view version (since the catalog was loaded).");
        for (size_t i = 0; i < catalog_view_count(cat) && i < CORE_STATS_VIEWS; i++) {
            const catalog_view_t *v = catalog_view_at(cat, i);
            if (!v->online)
                continue;
            fputs("fstore_rows_read_total{view=\"", out);
            label(out, v->name);
            fprintf(out, "\",version=\"%u\"} %llu\n", (unsigned)v->version,
                    (unsigned long long)reads[v->id]);
        }
        free(reads);
    }
    view_out_t vo = {.out = out, .pass = 0};
    family(out, "fstore_rows_applied_total", "counter",
           "Rows the store's writer applied, per view version (stale ones included).");
    store_view_stats(c->store, view_stat, &vo);
    vo.pass = 1;
    family(out, "fstore_view_newest_event_seconds", "gauge",
           "The newest event time applied to a view version: its freshness.");
    store_view_stats(c->store, view_stat, &vo);
    family(out, "fstore_writes_rejected_total", "counter",
           "Write calls refused before anything was written, per view version.");
    pthread_mutex_lock(&c->rejected_mu);
    for (const core__rejected_t *r = c->rejected; r != NULL; r = r->next) {
        fputs("fstore_writes_rejected_total{view=\"", out);
        label(out, r->view);
        fprintf(out, "\",version=\"%u\"} %llu\n", (unsigned)r->version,
                (unsigned long long)r->writes);
    }
    family(out, "fstore_rows_rejected_total", "counter",
           "Rows of the write calls refused, per view version.");
    for (const core__rejected_t *r = c->rejected; r != NULL; r = r->next) {
        fputs("fstore_rows_rejected_total{view=\"", out);
        label(out, r->view);
        fprintf(out, "\",version=\"%u\"} %llu\n", (unsigned)r->version,
                (unsigned long long)r->rows);
    }
    pthread_mutex_unlock(&c->rejected_mu);
    catalog_unref(cat);
    if (c->repl != NULL)
        replication(c, out);
    process(out);
}
