/* tests/repl/test_repl.c - replication against a real nats-server on 127.0.0.1 (repl/). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "repl/repl.h"
#include "repl/repl_int.h"
#include "tests/storage/helpers.h"

/* ------------------------------------------------------------------------------------------ */
/* A nats-server of our own                                                                   */

static pid_t nats_pid;
static int nats_port;
static char *nats_dir;
static char nats_url[64];

/* A port for nats-server to bind, picked below the kernel's ephemeral range: a port 0 finds free
 * there can become another test's outgoing connection before nats-server binds it (see
 * tests/e2e/free_port.py, which does the same for the e2e tests). */
static int free_port(void)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    int base = low - 1 - 10000 >= 1000 ? 10000 : 1024;
    static bool seeded;
    if (!seeded) {
        srand((unsigned)getpid() ^ (unsigned)time(NULL));
        seeded = true;
    }
    for (int i = 0; i < 200; i++) {
        int port = base + rand() % (low - base);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    cr_assert_fail("no free port below %d", low);
    return -1;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000l};
    nanosleep(&ts, NULL);
}

static void nats_up(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", nats_port);
    nats_pid = fork();
    cr_assert_geq(nats_pid, 0);
    if (nats_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", nats_dir,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(nats_port); i++)
        sleep_ms(50);
    cr_assert(port_open(nats_port), "nats-server did not start on port %d", nats_port);
}

static void nats_down(int sig)
{
    if (nats_pid > 0) {
        kill(nats_pid, sig);
        waitpid(nats_pid, NULL, 0);
        nats_pid = 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Two nodes                                                                                   */

typedef struct node {
    char *dir;
    store_t *s;
    repl_t *r;
    pthread_mutex_t mu;
    int catalogs;   /* on_catalog calls */
    int64_t tomb_s; /* the store's tombstone retention (0: the default) */
} node_t;

static catalog_t *cat;
static node_t A, B;

static void on_catalog(void *arg, catalog_t *c, uint64_t seq)
{
    (void)seq;
    node_t *n = arg;
    pthread_mutex_lock(&n->mu);
    n->catalogs++;
    pthread_mutex_unlock(&n->mu);
    catalog_unref(c);
}

static repl_options_t options(node_t *n)
{
    repl_options_t o;
    repl_options_init(&o);
    o.urls = nats_url;
    o.publish_timeout_ms = 1500;
    o.connect_timeout_ms = 2000;
    o.on_catalog = on_catalog;
    o.on_catalog_arg = n;
    return o;
}

static void node_open(node_t *n, bool start)
{
    if (n->dir == NULL)
        n->dir = th_tmpdir();
    store_options_t so = {.dir = n->dir,
                          .sync = STORE_SYNC_LOG,
                          .log_contiguous = true,
                          .tombstone_retention_s = n->tomb_s};
    cr_assert_eq(store_open(&so, &n->s), 0);
    repl_options_t o = options(n);
    char err[512] = "";
    cr_assert_eq(repl_open(&o, "p", n->s, &n->r, err, sizeof err), 0, "%s", err);
    if (start)
        cr_assert_eq(repl_start(n->r), 0);
}

static void node_close(node_t *n)
{
    repl_close(n->r);
    n->r = NULL;
    store_close(n->s);
    n->s = NULL;
}

static void setup(void)
{
    nats_dir = th_tmpdir();
    nats_port = free_port();
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", nats_port);
    nats_up();
    cat = th_catalog(th_yaml);
    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    pthread_mutex_init(&A.mu, NULL);
    pthread_mutex_init(&B.mu, NULL);
}

static void teardown(void)
{
    node_t *nodes[] = {&A, &B};
    for (int i = 0; i < 2; i++) {
        if (nodes[i]->r != NULL || nodes[i]->s != NULL)
            node_close(nodes[i]);
        if (nodes[i]->dir != NULL) {
            th_rmrf(nodes[i]->dir);
            free(nodes[i]->dir);
        }
    }
    catalog_unref(cat);
    nats_down(SIGTERM);
    th_rmrf(nats_dir);
    free(nats_dir);
    repl_library_close();
}

TestSuite(repl, .init = setup, .fini = teardown, .timeout = 60);

/* Both nodes open; A publishes the catalog; both start and become ready. */
static uint64_t two_nodes(void)
{
    node_open(&A, false);
    node_open(&B, false);
    catalog_t *c = NULL;
    uint64_t seq = 0;
    char err[256];
    cr_assert_eq(repl_log_catalog(A.r, &c, &seq, err, sizeof err), -ENOENT);
    cr_assert_eq(repl_publish_catalog(A.r, cat, 0, &seq, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seq, 1);
    cr_assert_eq(repl_start(A.r), 0);
    cr_assert_eq(repl_start(B.r), 0);
    cr_assert_eq(repl_wait(A.r, 1, base_mono_us() + 5000000), 0);
    cr_assert_eq(repl_wait(B.r, 1, base_mono_us() + 5000000), 0);
    return seq;
}

typedef struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    uint64_t seq;
    bool applied;
    size_t written, stale;
    char msg[512];
} outcome_t;

static void on_done(void *arg, int rc, const repl_result_t *res, const char *msg)
{
    outcome_t *o = arg;
    pthread_mutex_lock(&o->mu);
    o->done = true;
    o->rc = rc;
    o->seq = res->seq;
    o->applied = res->applied;
    o->written = res->written;
    o->stale = res->stale;
    snprintf(o->msg, sizeof o->msg, "%s", msg != NULL ? msg : "");
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* Publishes batch b through node n (request id id, NULL: a random one) and waits for it. */
static outcome_t publish_wait(node_t *n, const store_batch_t *b, const char *id)
{
    store_wire_t *w = NULL;
    cr_assert_eq(store_wire_begin(NULL, 0, b, 1, &w, NULL), 0);
    outcome_t o = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    char err[256];
    int rc = repl_publish(n->r, w, id, 0, on_done, &o, err, sizeof err);
    store_wire_end(w);
    cr_assert_eq(rc, 0, "%s", err);
    pthread_mutex_lock(&o.mu);
    while (!o.done)
        pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    return o;
}

/* Publishes rows ids [first, first + n) of fv (trips = id * mult) through node n and waits. */
static outcome_t write_rows(node_t *n, int64_t first, size_t n_rows, int64_t mult, const char *id)
{
    catalog_value_t ids[64], trips[64];
    cr_assert_leq(n_rows, 64);
    for (size_t r = 0; r < n_rows; r++) {
        ids[r] = th_i64(first + (int64_t)r);
        trips[r] = th_i64((first + (int64_t)r) * mult);
    }
    const catalog_value_t *keys[] = {ids}, *cols[] = {trips};
    uint32_t idx = 1;
    store_batch_t b = {.view = th_view(cat, "fv", 1),
                       .n_rows = n_rows,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = cols};
    return publish_wait(n, &b, id);
}

static int64_t trips_of(store_t *s, int64_t id)
{
    catalog_value_t out;
    if (th_get(s, th_view(cat, "fv", 1), id, 1, 0, &out, NULL) != STORE_STATUS_PRESENT)
        return -1;
    return out.u.i64;
}

typedef struct digests {
    uint64_t h[8];
    size_t n;
} digests_t;

static int collect(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows, size_t tombs)
{
    (void)v;
    (void)rows;
    (void)tombs;
    digests_t *d = arg;
    d->h[d->n++] = hash;
    return 0;
}

static void assert_same_content(store_t *a, store_t *b)
{
    digests_t x = {0}, y = {0};
    cr_assert_eq(store_digest(a, collect, &x), 0);
    cr_assert_eq(store_digest(b, collect, &y), 0);
    cr_assert_eq(x.n, y.n);
    for (size_t i = 0; i < x.n; i++)
        cr_assert_eq(x.h[i], y.h[i], "view %zu differs", i);
}

Test(repl, a_write_through_one_node_is_applied_by_both_and_acknowledged_after_its_own_apply)
{
    two_nodes();
    outcome_t o = write_rows(&A, 1, 10, 3, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.seq, 2);
    cr_assert(o.applied);
    cr_assert_eq(o.written, 10, "the local apply's count");
    /* Acknowledged: A applied it already (a client reading A next sees its write). */
    cr_assert_eq(trips_of(A.s, 4), 12);
    cr_assert_eq(repl_wait(B.r, o.seq, base_mono_us() + 5000000), 0);
    cr_assert_eq(trips_of(B.s, 10), 30);
    assert_same_content(A.s, B.s);
    repl_status_t st;
    repl_status(B.r, &st);
    cr_assert_eq(st.state, REPL_READY);
    cr_assert_eq(st.applied, 2);
    cr_assert_eq(st.lag, 0);
    cr_assert(st.connected);
    cr_assert_str_eq(st.stream, "FSTORE_P");
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(B.s, &pos), 0);
    cr_assert_eq(pos, 2);
}

Test(repl, a_retried_write_with_the_same_request_id_is_applied_once)
{
    two_nodes();
    outcome_t a = write_rows(&A, 1, 2, 1, "req-42");
    /* The retry goes to the other node, with other values: the log keeps the first. */
    outcome_t b = write_rows(&B, 1, 2, 100, "req-42");
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(b.seq, a.seq, "the duplicate is acknowledged with the original sequence");
    outcome_t c = write_rows(&B, 5, 1, 1, "req-43");
    cr_assert_eq(c.seq, a.seq + 1, "the duplicate took no sequence");
    cr_assert_eq(repl_wait(A.r, c.seq, base_mono_us() + 5000000), 0);
    cr_assert_eq(trips_of(A.s, 2), 2);
    cr_assert_eq(trips_of(B.s, 2), 2);
    char err[256];
    store_wire_t w = {0};
    cr_assert_eq(repl_publish(A.r, &w, "has space", 0, on_done, NULL, err, sizeof err), -EINVAL);
}

Test(repl, catalog_changes_are_applied_in_their_place_in_the_log)
{
    uint64_t first = two_nodes();
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "%s  - name: extra\n"
             "    version: 1\n"
             "    entities: [driver]\n"
             "    features:\n"
             "      - {name: n, dtype: INT64}\n",
             th_yaml);
    catalog_t *v2 = th_catalog(yaml);
    uint64_t seq = 0;
    char err[256];
    cr_assert_eq(repl_publish_catalog(A.r, v2, 0, &seq, err, sizeof err), -ESTALE,
                 "planned against no catalog, but the log has one");
    cr_assert_eq(repl_publish_catalog(A.r, v2, first, &seq, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seq, 2);
    uint64_t again = 0;
    cr_assert_eq(repl_publish_catalog(A.r, v2, first, &again, err, sizeof err), 0);
    cr_assert_eq(again, 2, "the same catalog is not published twice");
    /* A write to the new view, validated against the new catalog, right behind it. */
    catalog_value_t id = th_i64(1), n = th_i64(5);
    const catalog_value_t *keys[] = {&id}, *cols[] = {&n};
    uint32_t idx = 0;
    store_batch_t b = {.view = th_view(v2, "extra", 1),
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = 1,
                       .feature_idx = &idx,
                       .values = cols};
    store_wire_t *w = NULL;
    cr_assert_eq(store_wire_begin(NULL, 0, &b, 1, &w, NULL), 0);
    uint64_t wseq = 0;
    cr_assert_eq(repl_publish_sync(A.r, w, NULL, &wseq, err, sizeof err), 0, "%s", err);
    store_wire_end(w);
    cr_assert_eq(wseq, 3);
    cr_assert_eq(repl_wait(B.r, 3, base_mono_us() + 5000000), 0);
    cr_assert_eq(repl_wait(A.r, 3, base_mono_us() + 5000000), 0);
    size_t rows = 0;
    cr_assert_eq(store_count_rows(B.s, th_view(v2, "extra", 1), &rows), 0);
    cr_assert_eq(rows, 1);
    catalog_t *applied = NULL;
    cr_assert_eq(store_applied_catalog(B.s, &applied), 0);
    cr_assert_str_eq(catalog_digest(applied), catalog_digest(v2));
    catalog_unref(applied);
    pthread_mutex_lock(&B.mu);
    cr_assert_eq(B.catalogs, 2, "the hook saw both catalogs");
    pthread_mutex_unlock(&B.mu);
    catalog_t *logc = NULL;
    cr_assert_eq(repl_log_catalog(B.r, &logc, &seq, err, sizeof err), 0);
    cr_assert_eq(seq, 2);
    catalog_unref(logc);
    assert_same_content(A.s, B.s);
    catalog_unref(v2);
}

Test(repl, a_stream_configured_otherwise_is_refused_not_reconfigured)
{
    node_open(&A, false);
    repl_t *r = NULL;
    char err[512] = "";
    repl_options_t o = options(&B);
    o.replicas = 3;
    cr_assert_eq(repl_open(&o, "p", NULL, &r, err, sizeof err), -EEXIST);
    cr_assert(strstr(err, "replicas") != NULL && strstr(err, "FSTORE_P") != NULL, "%s", err);
    o = options(&B);
    o.stream = "FSTORE_P";
    o.subject_prefix = "other.p";
    cr_assert_eq(repl_open(&o, "p", NULL, &r, err, sizeof err), -EEXIST);
    cr_assert(strstr(err, "subjects") != NULL, "%s", err);
    o = options(&B);
    o.max_age_s = 3600;
    cr_assert_eq(repl_open(&o, "p", NULL, &r, err, sizeof err), -EEXIST);
    cr_assert(strstr(err, "max age") != NULL, "%s", err);
    o = options(&B);
    o.stream = "bad name";
    cr_assert_eq(repl_open(&o, "p", NULL, &r, err, sizeof err), -EINVAL);
}

/* A stream made by hand (as an operator with the nats tool would) for project proj. */
static void make_stream(const char *proj, void (*shape)(jsStreamConfig *))
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    char name[64], subject[64];
    snprintf(name, sizeof name, "FSTORE_%s", proj);
    for (char *p = name; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    snprintf(subject, sizeof subject, "fstore.%s.>", proj);
    const char *subjects[] = {subject};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 120 * 1000000000ll;
    shape(&cfg);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    cr_assert_eq(js_AddStream(&si, js, &cfg, NULL, &jerr), NATS_OK, "jerr %d", (int)jerr);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void interest(jsStreamConfig *c)
{
    c->Retention = js_InterestPolicy;
}
static void memory(jsStreamConfig *c)
{
    c->Storage = js_MemoryStorage;
}
static void per_subject(jsStreamConfig *c)
{
    c->MaxMsgsPerSubject = 1;
}
static void short_window(jsStreamConfig *c)
{
    c->Duplicates = 1000000000ll;
}
static void discard_new(jsStreamConfig *c)
{
    c->Discard = js_DiscardNew;
    c->MaxBytes = 1 << 20;
}
static void small_messages(jsStreamConfig *c)
{
    c->MaxMsgSize = 1024;
}

Test(repl, a_stream_that_cannot_be_the_log_is_refused_whatever_the_flags)
{
    static const struct {
        const char *proj;
        void (*shape)(jsStreamConfig *);
        const char *says;
    } cases[] = {{"q1", interest, "interest retention"},
                 {"q2", memory, "memory storage"},
                 {"q3", per_subject, "per subject"},
                 {"q4", short_window, "duplicate window of 1000 ms"},
                 {"q5", discard_new, "discard policy new"},
                 {"q6", small_messages, "1024-byte message limit"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_stream(cases[i].proj, cases[i].shape);
        repl_t *r = NULL;
        char err[512] = "";
        repl_options_t o = options(&B);
        cr_assert_eq(repl_open(&o, cases[i].proj, NULL, &r, err, sizeof err), -EEXIST, "%s",
                     cases[i].proj);
        cr_assert(strstr(err, cases[i].says) != NULL, "%s: %s", cases[i].proj, err);
    }
}

Test(repl, no_server_is_a_clear_error_within_the_connect_timeout)
{
    repl_options_t o = options(&A);
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", free_port());
    o.urls = url;
    o.connect_timeout_ms = 500;
    repl_t *r = NULL;
    char err[512] = "";
    int64_t t0 = base_mono_us();
    cr_assert_eq(repl_open(&o, "p", NULL, &r, err, sizeof err), -ECONNREFUSED);
    cr_assert_lt(base_mono_us() - t0, 3000000);
    cr_assert(strstr(err, url) != NULL, "%s", err);
}

Test(repl, with_the_log_down_a_write_fails_unavailable_naming_the_stream_then_recovers)
{
    two_nodes();
    nats_down(SIGKILL);
    outcome_t o = write_rows(&A, 1, 1, 1, "down-1");
    cr_assert_eq(o.rc, -EAGAIN, "%d %s", o.rc, o.msg);
    cr_assert(strstr(o.msg, "FSTORE_P") != NULL, "%s", o.msg);
    /* Reads keep their local replica; the status says the log is gone. */
    cr_assert_eq(trips_of(A.s, 1), -1);
    repl_status_t st;
    for (int i = 0; i < 100; i++) {
        repl_status(A.r, &st);
        if (!st.connected)
            break;
        sleep_ms(50);
    }
    cr_assert(!st.connected);
    cr_assert_eq(st.state, REPL_READY);
    nats_up();
    outcome_t again;
    for (int i = 0; i < 50; i++) {
        again = write_rows(&A, 1, 1, 7, "down-2");
        if (again.rc == 0)
            break;
        sleep_ms(100);
    }
    cr_assert_eq(again.rc, 0, "%s", again.msg);
    cr_assert_eq(repl_wait(B.r, again.seq, base_mono_us() + 10000000), 0);
    cr_assert_eq(trips_of(B.s, 1), 7);
    assert_same_content(A.s, B.s);
}

Test(repl, a_replica_whose_next_message_retention_dropped_refuses_to_catch_up)
{
    two_nodes();
    cr_assert_eq(write_rows(&A, 1, 1, 1, NULL).rc, 0);
    cr_assert_eq(repl_wait(B.r, 2, base_mono_us() + 5000000), 0);
    node_close(&B);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(write_rows(&A, 10 + i, 1, 1, NULL).rc, 0);
    /* Retention: keep only the last message. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Purge.Keep = 1;
    cr_assert_eq(js_PurgeStream(js, "FSTORE_P", &jo, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    node_open(&B, true);
    repl_status_t st;
    repl_status(B.r, &st);
    cr_assert_eq(st.state, REPL_NEEDS_SNAPSHOT, "%s", repl_state_name(st.state));
    cr_assert(strstr(st.last_error, "snapshot") != NULL, "%s", st.last_error);
    cr_assert_eq(repl_wait(B.r, 7, base_mono_us() + 1000000), -EAGAIN);
    cr_assert_eq(trips_of(B.s, 14), -1, "nothing after the hole was applied");
}

Test(repl, a_message_a_node_cannot_apply_is_passed_and_the_next_ones_apply)
{
    two_nodes();
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_Publish(NULL, js, "fstore.p.fv", "garbage", 7, NULL, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    outcome_t o = write_rows(&A, 3, 1, 2, NULL);
    cr_assert_eq(o.rc, 0);
    cr_assert_eq(o.seq, 3);
    cr_assert_eq(repl_wait(B.r, 3, base_mono_us() + 5000000), 0);
    cr_assert_eq(trips_of(B.s, 3), 6);
    repl_status_t st;
    repl_status(B.r, &st);
    cr_assert_eq(st.skipped, 1);
    cr_assert(strstr(st.last_error, "sequence 2") != NULL, "%s", st.last_error);
}

Test(repl, a_restarted_replica_resumes_from_its_position_without_gaps)
{
    two_nodes();
    cr_assert_eq(write_rows(&A, 1, 4, 1, NULL).rc, 0);
    cr_assert_eq(repl_wait(B.r, 2, base_mono_us() + 5000000), 0);
    node_close(&B);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(write_rows(&A, 100 + i * 2, 2, 5, NULL).rc, 0);
    node_open(&B, true);
    cr_assert_eq(repl_wait(B.r, 22, base_mono_us() + 10000000), 0);
    repl_status_t st;
    for (int i = 0; i < 40; i++) {
        repl_status(B.r, &st);
        if (st.state == REPL_READY)
            break;
        sleep_ms(100);
    }
    cr_assert_eq(st.state, REPL_READY);
    assert_same_content(A.s, B.s);
    cr_assert_eq(trips_of(B.s, 139), 139 * 5);
}

/* One row of fv (op: upsert with trips = value, or delete) at event time ts, through node n. */
static outcome_t write_at(node_t *n, store_op_t op, int64_t id, int64_t value, int64_t ts)
{
    catalog_value_t key = th_i64(id), trips = th_i64(value);
    const catalog_value_t *keys[] = {&key}, *cols[] = {&trips};
    uint32_t idx = 1;
    store_batch_t b = {.view = th_view(cat, "fv", 1),
                       .op = op,
                       .n_rows = 1,
                       .keys = keys,
                       .n_features = op == STORE_OP_DELETE ? 0 : 1,
                       .feature_idx = &idx,
                       .values = cols,
                       .event_ts_us = &ts};
    outcome_t o = publish_wait(n, &b, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    return o;
}

static int count_tombs(void *arg, const catalog_view_t *v, uint64_t hash, size_t rows, size_t tombs)
{
    (void)hash;
    (void)rows;
    if (strcmp(v->name, "fv") == 0)
        *(size_t *)arg += tombs;
    return 0;
}

/* A sweep goes through the log: published on A with A's clock and an hour's tombstone retention,
 * applied by A (whose store keeps tombstones 7 days) and B (1 s) at the same place; both delete
 * the same records, by the message's hour, and a later write older than the dropped tombstone
 * lands alike on both. */
Test(repl, a_gc_through_the_log_sweeps_every_replica_alike)
{
    B.tomb_s = 1;
    two_nodes();
    const int64_t now = store_now_us(), min = 60ll * 1000000, hour = 60 * min;
    write_at(&A, STORE_OP_UPSERT, 1, 10, now - 2 * hour); /* past fv's TTL (1h) */
    write_at(&B, STORE_OP_UPSERT, 2, 20, now - min);      /* fresh */
    write_at(&A, STORE_OP_UPSERT, 3, 30, now - 3 * hour);
    write_at(&B, STORE_OP_DELETE, 3, 0, now - 2 * hour); /* a tombstone two hours old */
    outcome_t last = write_at(&A, STORE_OP_DELETE, 4, 0, now - 5 * min); /* one inside the hour */
    cr_assert_eq(repl_wait(B.r, last.seq, base_mono_us() + 5000000), 0);

    repl_result_t res;
    char err[256] = "";
    cr_assert_eq(repl_publish_gc(A.r, now, hour, base_mono_us() + 5000000, &res, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(res.seq, last.seq + 1);
    cr_assert(res.applied, "A applied its own sweep before answering");
    cr_assert_eq(res.written, 2, "row 1 (expired) and row 3's old tombstone");
    cr_assert_eq(repl_wait(B.r, res.seq, base_mono_us() + 5000000), 0);
    assert_same_content(A.s, B.s);
    size_t tombs_a = 0, tombs_b = 0;
    cr_assert_eq(store_digest(A.s, count_tombs, &tombs_a), 0);
    cr_assert_eq(store_digest(B.s, count_tombs, &tombs_b), 0);
    cr_assert_eq(tombs_b, 1,
                 "B dropped the two-hour tombstone and kept the 5-minute one, by the "
                 "message's retention, not its own second");
    cr_assert_eq(tombs_a, 1, "A, whose own retention is 7 days, likewise");
    uint64_t pos = 0;
    cr_assert_eq(store_last_position(B.s, &pos), 0);
    cr_assert_eq(pos, res.seq);

    /* Older than the dropped tombstone, within the TTL: a row again on both; older than the kept
     * one: stale on both. */
    outcome_t late = write_at(&B, STORE_OP_UPSERT, 3, 33, now - 2 * hour - min);
    cr_assert_eq(late.written, 1);
    outcome_t stale = write_at(&B, STORE_OP_UPSERT, 4, 44, now - 6 * min);
    cr_assert_eq(stale.stale, 1);
    cr_assert_eq(repl_wait(A.r, stale.seq, base_mono_us() + 5000000), 0);
    assert_same_content(A.s, B.s);
    cr_assert_eq(trips_of(A.s, 3), 33);
    cr_assert_eq(trips_of(A.s, 4), -1);

    /* A malformed sweep in the log is passed, like any message a node cannot apply. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    const char bad[] = {'F', 'S', 'R', 1, REPL_MSG_GC, 1, 2, 3};
    cr_assert_eq(js_Publish(NULL, js, "fstore.p.$gc", bad, sizeof bad, NULL, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    outcome_t after = write_at(&A, STORE_OP_UPSERT, 5, 50, now);
    cr_assert_eq(repl_wait(B.r, after.seq, base_mono_us() + 5000000), 0);
    cr_assert_eq(trips_of(B.s, 5), 50);
    repl_status_t st;
    repl_status(B.r, &st);
    cr_assert_eq(st.skipped, 1);
    cr_assert(strstr(st.last_error, "malformed gc message") != NULL, "%s", st.last_error);
    assert_same_content(A.s, B.s);
}

/* cnats posts some errors whenever they happen, after the connection's closed callback too: a
 * missed consumer heartbeat from its timer, a failed re-creation of the ordered consumer from
 * a thread of its own (CI saw one land after repl_close() had freed the node: ASan's
 * heap-use-after-free in the callback). Freeze the log so both are under way, close, let them
 * arrive; then call each callback as cnats would, late, with the closed nodes' tickets: none may
 * touch a freed node (ASan), each is counted as dropped. */
Test(repl, callbacks_cnats_makes_after_close_touch_nothing_freed)
{
    two_nodes();
    cr_assert_eq(write_rows(&A, 1, 2, 1, NULL).rc, 0);
    void *tickets[] = {(void *)A.r->ticket, (void *)B.r->ticket};
    kill(nats_pid, SIGSTOP);
    sleep_ms(5000); /* heartbeats (every 1 s) missed: alerts and consumer re-creations start */
    node_close(&A);
    node_close(&B);
    sleep_ms(2000); /* what they post from now on finds the nodes gone */
    kill(nats_pid, SIGCONT);
    uint64_t late = repl_late_callbacks();
    for (int i = 0; i < 2; i++) {
        repl__on_error(NULL, NULL, NATS_MISSED_HEARTBEAT, tickets[i]);
        repl__on_error(NULL, NULL, NATS_CONNECTION_CLOSED, tickets[i]);
        repl__on_disconnected(NULL, tickets[i]);
        repl__on_reconnected(NULL, tickets[i]);
        repl__on_closed(NULL, tickets[i]);
    }
    cr_assert_geq(repl_late_callbacks() - late, 10, "(cnats may add late ones of its own)");
    /* A node opened since, in the slot a closed one had, is not the closed one's. */
    node_open(&A, true);
    cr_assert_neq((void *)A.r->ticket, tickets[0]);
    cr_assert_neq((void *)A.r->ticket, tickets[1]);
    late = repl_late_callbacks();
    repl__on_error(NULL, NULL, NATS_MISSED_HEARTBEAT, tickets[0]);
    cr_assert_geq(repl_late_callbacks() - late, 1);
}
