/* tests/storage/test_fault.c - storage's failure paths, through the fault points of
 * storage/fault.c: every injected failure reaches the caller as the errno a real one would, a
 * failed group commit or fsync fails every call of its group and keeps none of it, and the store
 * works again once the fault is gone. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

static char *dir;
static catalog_t *cat;
static const catalog_view_t *fv;
static char faults[4200];

static void setup(void)
{
    th_fixture_open(&dir, &cat, NULL, &fv);
    snprintf(faults, sizeof faults, "%s/faults", dir);
    /* Read once per process, at the first fault point: each test runs in a process of its own. */
    cr_assert_eq(setenv("FSTORE_FAULTS_FILE", faults, 1), 0);
}

static void teardown(void)
{
    th_fixture_close(dir, cat, NULL);
}

TestSuite(fault, .init = setup, .fini = teardown);

static void arm(const char *text)
{
    FILE *f = fopen(faults, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static bool armed(void)
{
    return access(faults, F_OK) == 0;
}

static store_t *open_full(void)
{
    store_t *s = th_open_applied(dir, cat);
    store_close(s);
    return th_open(dir, 0, STORE_SYNC_FULL);
}

static int read_trips(store_t *s, int64_t id, int64_t *out)
{
    catalog_value_t v;
    store_status_t st = th_get(s, fv, id, 1, store_now_us(), &v, NULL);
    *out = v.u.i64;
    return st == STORE_STATUS_PRESENT ? 0 : -ENOENT;
}

Test(fault, with_no_file_every_point_passes)
{
    store_t *s = open_full();
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(5), store_now_us()), 0);
    int64_t t;
    cr_assert_eq(read_trips(s, 1, &t), 0);
    cr_assert_eq(t, 5);
    store_close(s);
}

/* The next call at each write point fails with the errno LMDB's code stands for; the call after
 * it goes through, and what failed was not kept. */
Test(fault, each_write_point_fails_one_write_with_its_errno_and_keeps_nothing)
{
    static const struct {
        const char *spec;
        int want;
    } cases[] = {
        {"write_begin EIO\n", -EIO},
        {"put CORRUPTED\n", -EIO},
        {"put TXN_FULL\n", -E2BIG},
        {"commit EIO\n", -EIO},
        {"commit PANIC\n", -EIO},
        {"sync EIO\n", -EIO},
        {"write_begin READERS_FULL\n", -EAGAIN},
    };
    store_t *s = open_full();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t id = 100 + (int64_t)i;
        arm(cases[i].spec);
        int got = th_put(s, fv, id, 1, th_i64(1), store_now_us());
        cr_assert_eq(got, cases[i].want, "%s: wrong errno %d", cases[i].spec, got);
        cr_assert_not(armed(), "%s: the fault did not fire once", cases[i].spec);
        int64_t t;
        if (strncmp(cases[i].spec, "sync", 4) != 0)
            cr_assert_eq(read_trips(s, id, &t), -ENOENT, "%s: the failed write was kept",
                         cases[i].spec);
        cr_assert_eq(th_put(s, fv, id, 1, th_i64(2), store_now_us()), 0, "%s: no recovery",
                     cases[i].spec);
        cr_assert_eq(read_trips(s, id, &t), 0);
        cr_assert_eq(t, 2);
    }
    store_close(s);
}

/* STORE_SYNC_LOG's checkpoint goes through the same fsync, and its fault point. */
Test(fault, a_failed_flush_says_so_and_the_next_one_goes_through)
{
    store_t *s = open_full();
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), 0);
    arm("sync EIO\n");
    cr_assert_eq(store_flush(s), -EIO);
    cr_assert_not(armed());
    cr_assert_eq(store_flush(s), 0);
    store_close(s);
}

Test(fault, a_count_fails_that_many_calls)
{
    store_t *s = open_full();
    arm("commit EIO 2\n");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), -EIO);
    cr_assert(armed());
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), -EIO);
    cr_assert_not(armed());
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), 0);
    store_close(s);
}

Test(fault, a_malformed_file_is_removed_and_fails_nothing)
{
    store_t *s = open_full();
    arm("comit EIO\n");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), 0);
    cr_assert_not(armed());
    arm("commit EWHATEVER\n");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), 0);
    cr_assert_not(armed());
    store_close(s);
}

/* Lines of other points stay armed while one fires. */
Test(fault, only_the_line_of_its_point_fires)
{
    store_t *s = open_full();
    arm("read EIO\ncommit EIO\n");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), -EIO);
    cr_assert(armed(), "the read line went with the commit's");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(3), store_now_us()), 0);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(1);
    int n = store_encode_key(fv, &k, 1, key, sizeof key);
    store_row_t row;
    cr_assert_eq(store_read_row(r, fv, key, (size_t)n, &row), -EIO);
    cr_assert_not(armed());
    cr_assert_eq(store_read_row(r, fv, key, (size_t)n, &row), 0);
    cr_assert(row.found);
    store_read_end(r);
    store_reader_free(r);
    store_close(s);
}

Test(fault, read_points_fail_the_read_and_the_next_one_works)
{
    store_t *s = open_full();
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(4), store_now_us()), 0);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    arm("read_begin READERS_FULL\n");
    cr_assert_eq(store_read_begin(r), -EAGAIN);
    arm("read_begin EIO\n");
    cr_assert_eq(store_read_begin(r), -EIO);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(1);
    int n = store_encode_key(fv, &k, 1, key, sizeof key);
    store_row_t row;
    arm("read PAGE_NOTFOUND\n");
    cr_assert_eq(store_read_row(r, fv, key, (size_t)n, &row), -EIO);
    cr_assert_eq(store_read_row(r, fv, key, (size_t)n, &row), 0);
    cr_assert(row.found);
    store_read_end(r);
    store_reader_free(r);
    store_close(s);
}

/* A full map is grown and the write replayed; a map that cannot grow fails the write with the
 * map's own errno (-EFBIG: at its largest size), or the growth's. */
Test(fault, a_full_map_grows_and_one_that_cannot_fails_the_write)
{
    store_t *s = open_full();
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    size_t before = st.map_size;
    arm("put MAP_FULL\n");
    cr_assert_eq(th_put(s, fv, 1, 1, th_i64(1), store_now_us()), 0);
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.map_size, before * 2, "the map did not grow: %zu", st.map_size);
    int64_t t;
    cr_assert_eq(read_trips(s, 1, &t), 0);

    arm("put MAP_FULL\nmap_grow ENOSPC\n");
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(1), store_now_us()), -EFBIG);
    arm("put MAP_FULL\nmap_grow ENOMEM\n");
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(1), store_now_us()), -ENOMEM);
    cr_assert_eq(read_trips(s, 2, &t), -ENOENT);
    cr_assert_eq(th_put(s, fv, 2, 1, th_i64(1), store_now_us()), 0);
    store_close(s);
}

Test(fault, a_commit_that_fails_while_opening_fails_the_open)
{
    store_t *s = th_open_applied(dir, cat);
    store_close(s);
    arm("commit EIO\n");
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_FULL};
    cr_assert_eq(store_open(&o, &s), -EIO);
    cr_assert_not(armed());
    cr_assert_eq(store_open(&o, &s), 0);
    store_close(s);
}

/* ---- a group commit: every call queued behind one transaction shares its fate ---- */

#define GROUP 8

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, released;
    const char *spec; /* armed from inside the blocking job, before it returns */
} gate_t;

static gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, NULL};

/* Holds the writer until released, so that the calls queued meanwhile form one group. */
static int block(store_t *s, MDB_txn *txn, void *arg)
{
    (void)s;
    (void)txn;
    gate_t *g = arg;
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->released)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    arm(g->spec);
    return 0;
}

typedef struct run_arg {
    store_t *s;
    int rc;
} run_arg_t;

static void *run_block(void *p)
{
    run_arg_t *a = p;
    a->rc = store__run(a->s, block, &gate, false, NULL);
    return NULL;
}

typedef struct done {
    atomic_int n;
    int rc[GROUP];
} done_t;

static void on_done(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    done_t *d = arg;
    d->rc[atomic_fetch_add(&d->n, 1)] = rc;
}

/* spec fails two commits (or fsyncs): the blocking job's, then the group's. */
static void group_fails(const char *spec)
{
    store_t *s = open_full();
    gate.spec = spec;
    run_arg_t ra = {.s = s};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_block, &ra), 0);
    pthread_mutex_lock(&gate.mu);
    while (!gate.entered)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);

    static done_t d;
    static catalog_value_t ids[GROUP], vals[GROUP];
    static const catalog_value_t *keys[GROUP][1], *values[GROUP][1];
    uint32_t idx = 1;
    for (int i = 0; i < GROUP; i++) {
        ids[i] = th_i64(200 + i);
        vals[i] = th_i64(i);
        keys[i][0] = &ids[i];
        values[i][0] = &vals[i];
        store_batch_t b = {.view = fv,
                           .n_rows = 1,
                           .keys = keys[i],
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = values[i]};
        cr_assert_eq(store_apply_async(s, &b, 1, 0, NULL, on_done, &d), 0);
    }
    pthread_mutex_lock(&gate.mu);
    gate.released = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    pthread_join(t, NULL);
    cr_assert_eq(ra.rc, -EIO, "the blocking job: %d", ra.rc);
    while (atomic_load(&d.n) < GROUP) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < GROUP; i++)
        cr_assert_eq(d.rc[i], -EIO, "%s: call %d of the group got %d", spec, i, d.rc[i]);
    cr_assert_not(armed());
    store_stats_t st;
    cr_assert_eq(store_stat(s, &st), 0);
    cr_assert_eq(st.batches, 0, "%s: a failed call was counted as written", spec);
    int64_t v;
    /* A failed commit keeps nothing. (A failed fsync comes after the commit: what it left is
     * undefined for the caller, who was told it failed, and it is not checked here.) */
    if (strncmp(spec, "commit", 6) == 0)
        for (int i = 0; i < GROUP; i++)
            cr_assert_eq(read_trips(s, 200 + i, &v), -ENOENT, "call %d was kept", i);
    cr_assert_eq(th_put(s, fv, 300, 1, th_i64(9), store_now_us()), 0, "no recovery");
    cr_assert_eq(read_trips(s, 300, &v), 0);
    cr_assert_eq(v, 9);
    store_close(s);
}

Test(fault, a_failed_group_commit_fails_every_call_of_the_group)
{
    group_fails("commit EIO 2\n");
}

Test(fault, a_failed_group_fsync_fails_every_call_of_the_group)
{
    group_fails("sync EIO 2\n");
}
