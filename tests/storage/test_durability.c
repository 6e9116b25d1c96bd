/* tests/storage/test_durability.c - acknowledged means synced, and a power loss keeps every
 * acknowledged row. Every fsync and fdatasync this process makes is counted, and every write to a
 * data.mdb journaled (the functions are interposed below, so LMDB's own calls count): each
 * acknowledgement must come after its commit's syncs (storage/writer.c), and a data file rebuilt
 * from the journal as a power loss would leave it (the writes before the last sync, plus any
 * subset of those after it) must open and hold every row acknowledged before the loss. As
 * dm-log-writes does for a block device, in process: this machine has no device mapper. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tests/storage/helpers.h"

/* ---- the journal of data.mdb's writes and syncs ---- */

typedef struct jrec {
    off_t off;     /* a write's offset; -1 for a sync */
    size_t len;    /* bytes written */
    uint8_t *data; /* what was written (malloc'd) */
} jrec_t;

static pthread_mutex_t jmu = PTHREAD_MUTEX_INITIALIZER;
static bool journaling; /* under jmu */
static jrec_t *journal; /* under jmu */
static size_t jlen, jcap;

static bool is_data_file(int fd)
{
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 9)
        return false;
    target[n] = '\0';
    return strcmp(target + n - 9, "/data.mdb") == 0;
}

static void jadd(off_t off, const void *p, size_t len)
{
    if (jlen == jcap) {
        jcap = jcap ? jcap * 2 : 1024;
        journal = realloc(journal, jcap * sizeof *journal);
        if (journal == NULL)
            abort(); /* on LMDB's thread: no Criterion assertion here */
    }
    jrec_t *r = &journal[jlen++];
    r->off = off;
    r->len = len;
    r->data = NULL;
    if (len > 0) {
        r->data = malloc(len);
        if (r->data == NULL)
            abort();
        memcpy(r->data, p, len);
    }
}

/* Journals a completed write of n bytes from iov at off (a descriptor opened O_DSYNC: also a
 * sync). */
static void journal_write(int fd, off_t off, const struct iovec *iov, int cnt, ssize_t n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&jmu);
    if (journaling && is_data_file(fd)) {
        for (int i = 0; i < cnt && n > 0; i++) {
            size_t take = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;
            jadd(off, iov[i].iov_base, take);
            off += (off_t)take;
            n -= (ssize_t)take;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_DSYNC))
            jadd(-1, NULL, 0);
    }
    pthread_mutex_unlock(&jmu);
}

static void journal_sync(int fd)
{
    pthread_mutex_lock(&jmu);
    if (journaling && is_data_file(fd))
        jadd(-1, NULL, 0);
    pthread_mutex_unlock(&jmu);
}

static size_t journal_mark(void)
{
    pthread_mutex_lock(&jmu);
    size_t n = jlen;
    pthread_mutex_unlock(&jmu);
    return n;
}

static void journal_start(void)
{
    pthread_mutex_lock(&jmu);
    journaling = true;
    pthread_mutex_unlock(&jmu);
}

static void journal_clear(void)
{
    pthread_mutex_lock(&jmu);
    journaling = false;
    for (size_t i = 0; i < jlen; i++)
        free(journal[i].data);
    free(journal);
    journal = NULL;
    jlen = jcap = 0;
    pthread_mutex_unlock(&jmu);
}

/*
 * Interposed: a definition in the executable wins over libc's for liblmdb's calls too. Counted
 * after the system call returns, so a count seen means a sync completed. LMDB 0.9 writes its
 * data file with pwrite(), and with lseek() + write()/writev().
 */
static _Atomic unsigned long syncs;

int fsync(int fd)
{
    long rc = syscall(SYS_fsync, fd);
    if (rc == 0)
        journal_sync(fd);
    atomic_fetch_add(&syncs, 1);
    return (int)rc;
}

int fdatasync(int fd)
{
    long rc = syscall(SYS_fdatasync, fd);
    if (rc == 0)
        journal_sync(fd);
    atomic_fetch_add(&syncs, 1);
    return (int)rc;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t rc = syscall(SYS_pwrite64, fd, buf, n, off);
    struct iovec iov = {(void *)buf, n};
    journal_write(fd, off, &iov, 1, rc);
    return rc;
}

/* Not what LMDB 0.9 calls, but a build of it that did would still be journaled. */
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    return pwrite(fd, buf, n, (off_t)off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t rc = syscall(SYS_pwritev, fd, iov, cnt, (long)off, 0L);
    journal_write(fd, off, iov, cnt, rc);
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    off_t off = (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);
    ssize_t rc = syscall(SYS_write, fd, buf, n);
    struct iovec iov = {(void *)buf, n};
    if (off >= 0)
        journal_write(fd, off, &iov, 1, rc);
    return rc;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    off_t off = (off_t)syscall(SYS_lseek, fd, 0, SEEK_CUR);
    ssize_t rc = syscall(SYS_writev, fd, iov, cnt);
    if (off >= 0)
        journal_write(fd, off, iov, cnt, rc);
    return rc;
}

static char *dir;
static catalog_t *cat;
static const catalog_view_t *fv;

static void setup(void)
{
    th_fixture_open(&dir, &cat, NULL, &fv);
}

static void teardown(void)
{
    journal_clear();
    th_fixture_close(dir, cat, NULL);
}

TestSuite(durability, .init = setup, .fini = teardown);

#define CALLS 16

typedef struct ack {
    unsigned long queued; /* syncs completed when the call was queued */
    unsigned long acked;  /* ... and when its acknowledgement ran */
    int rc;
    atomic_int done;
} ack_t;

static void on_ack(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    ack_t *a = arg;
    a->acked = atomic_load(&syncs);
    a->rc = rc;
    atomic_store(&a->done, 1);
}

/* CALLS asynchronous writes of one row each; returns when all are acknowledged. */
static void write_all(store_t *s, ack_t *acks)
{
    for (int i = 0; i < CALLS; i++) {
        catalog_value_t id = th_i64(i), rate = th_f32(0.5f);
        const catalog_value_t *keys[] = {&id}, *vals[] = {&rate};
        uint32_t idx = 0;
        store_batch_t b = {.view = fv,
                           .n_rows = 1,
                           .keys = keys,
                           .n_features = 1,
                           .feature_idx = &idx,
                           .values = vals};
        atomic_init(&acks[i].done, 0);
        acks[i].queued = atomic_load(&syncs);
        cr_assert_eq(store_apply_async(s, &b, 1, 0, NULL, on_ack, &acks[i]), 0);
    }
    for (int i = 0; i < CALLS; i++) {
        while (!atomic_load(&acks[i].done)) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        cr_assert_eq(acks[i].rc, 0);
    }
}

Test(durability, sync_full_acknowledges_a_write_only_after_its_data_and_meta_are_synced)
{
    store_t *s = th_open_applied(dir, cat);
    store_close(s);
    s = th_open(dir, 0, STORE_SYNC_FULL);
    static ack_t acks[CALLS];
    write_all(s, acks);
    for (int i = 0; i < CALLS; i++) {
        /* Two per group commit: LMDB's fdatasync of the data pages before it writes the meta
         * page, and the writer's mdb_env_sync() of the meta page before anyone is told. */
        cr_assert_geq(acks[i].acked - acks[i].queued, 2, "call %d was acknowledged after %lu syncs",
                      i, acks[i].acked - acks[i].queued);
    }
    store_close(s);
}

Test(durability, sync_none_never_syncs_until_close)
{
    store_t *s = th_open_applied(dir, cat);
    store_close(s);
    s = th_open(dir, 0, STORE_SYNC_NONE);
    unsigned long before = atomic_load(&syncs);
    static ack_t acks[CALLS];
    write_all(s, acks);
    cr_assert_eq(atomic_load(&syncs), before, "sync=none synced while writing");
    store_close(s);
    cr_assert_gt(atomic_load(&syncs), before, "a close syncs what sync=none wrote");
}

/* ---- power loss ---- */

#define SEQUENTIAL 24
#define BURST 16
#define ROWS (SEQUENTIAL + BURST)

/* Row i's trips value, and where the journal stood when its write was acknowledged. */
static int64_t value_of(int i)
{
    return 1000 + i;
}
static size_t acked_at[ROWS];

typedef struct burst_ack {
    int i;
    int rc;
    atomic_int done;
} burst_ack_t;

static void on_burst_ack(void *arg, int rc, const store_apply_result_t *res)
{
    (void)res;
    burst_ack_t *a = arg;
    acked_at[a->i] = journal_mark();
    a->rc = rc;
    atomic_store(&a->done, 1);
}

/* Writes ROWS rows into a fresh store under sync, journaling from the file's creation: one at a
 * time, then a burst that group commits. Returns: the journal's length at the "power loss". */
static size_t write_rows(store_sync_t sync)
{
    journal_start();
    store_t *s = th_open_applied(dir, cat);
    store_close(s);
    s = th_open(dir, 0, sync);
    for (int i = 0; i < SEQUENTIAL; i++) {
        cr_assert_eq(th_put(s, fv, i, 1, th_i64(value_of(i)), store_now_us()), 0);
        acked_at[i] = journal_mark();
    }
    static burst_ack_t acks[BURST];
    static catalog_value_t ids[BURST], vals[BURST];
    static const catalog_value_t *keys[BURST][1], *values[BURST][1];
    uint32_t idx = 1;
    for (int b = 0; b < BURST; b++) {
        int i = SEQUENTIAL + b;
        acks[b].i = i;
        atomic_init(&acks[b].done, 0);
        ids[b] = th_i64(i);
        vals[b] = th_i64(value_of(i));
        keys[b][0] = &ids[b];
        values[b][0] = &vals[b];
        store_batch_t batch = {.view = fv,
                               .n_rows = 1,
                               .keys = keys[b],
                               .n_features = 1,
                               .feature_idx = &idx,
                               .values = values[b]};
        cr_assert_eq(store_apply_async(s, &batch, 1, 0, NULL, on_burst_ack, &acks[b]), 0);
    }
    for (int b = 0; b < BURST; b++) {
        while (!atomic_load(&acks[b].done)) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        cr_assert_eq(acks[b].rc, 0);
    }
    /* The power goes here: nothing the close does (its own sync) reaches the disk. */
    size_t lost_at = journal_mark();
    size_t writes = 0;
    for (size_t i = 0; i < lost_at; i++)
        writes += journal[i].off >= 0;
    cr_assert_gt(writes, (size_t)ROWS, "the journal missed LMDB's writes (%zu)", writes);
    pthread_mutex_lock(&jmu);
    journaling = false;
    pthread_mutex_unlock(&jmu);
    store_close(s);
    return lost_at;
}

/*
 * Makes img/data.mdb as a power loss at journal position `at` may leave the disk: every write
 * before the last sync before `at`; of the writes after it (in the page cache only), those a
 * seeded coin keeps (seed 0: none; UINT_MAX: all). Returns: the journal position of that last sync.
 */
static size_t power_loss_image(const char *img, size_t at, unsigned seed)
{
    size_t synced = 0;
    for (size_t i = 0; i < at; i++)
        if (journal[i].off < 0)
            synced = i;
    cr_assert_eq(mkdir(img, 0755), 0, "%s: %s", img, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", img);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    for (size_t i = 0; i < at; i++) {
        const jrec_t *r = &journal[i];
        bool keep = seed == UINT_MAX || (seed != 0 && rand_r(&seed) % 2 == 0);
        if (r->off < 0 || (i > synced && !keep))
            continue;
        cr_assert_eq(syscall(SYS_pwrite64, fd, r->data, r->len, r->off), (long)r->len);
    }
    close(fd);
    return synced;
}

/* Reads row i from img: 1 with its value, 0 absent; fails the test on any other value. */
static int row_in(store_t *s, int i)
{
    catalog_value_t v;
    store_status_t st = th_get(s, fv, i, 1, store_now_us(), &v, NULL);
    if (st == STORE_STATUS_NOT_FOUND)
        return 0;
    cr_assert_eq(st, STORE_STATUS_PRESENT, "row %d: status %d", i, (int)st);
    cr_assert_eq(v.u.i64, value_of(i), "row %d holds %lld", i, (long long)v.u.i64);
    return 1;
}

static void count_damage(void *arg, const store_verify_db_t *db)
{
    *(uint64_t *)arg += db->damaged + (db->error != NULL);
}

/* Opens img as a store: it must open, verify clean, and hold every row acknowledged before
 * position at. Returns: how many rows it holds. */
static int check_image(const char *img, size_t at)
{
    store_t *s = th_open(img, 0, STORE_SYNC_NONE);
    uint64_t bad = 0;
    cr_assert_eq(store_verify(s, NULL, count_damage, &bad), 0);
    cr_assert_eq(bad, 0, "%s: %llu damaged records or pages", img, (unsigned long long)bad);
    int held = 0;
    for (int i = 0; i < ROWS; i++) {
        int in = row_in(s, i);
        if (acked_at[i] <= at)
            cr_assert_eq(in, 1, "%s: row %d was acknowledged before the power loss and is gone",
                         img, i);
        held += in;
    }
    store_close(s);
    return held;
}

/* sync=full: a power loss between any two writes of the data file, from the first row's write
 * on, keeps every row acknowledged by then, whichever of the unsynced writes reached the disk
 * (none, all, or a seeded half). */
Test(durability, sync_full_keeps_every_acknowledged_row_through_a_power_loss)
{
    size_t end = write_rows(STORE_SYNC_FULL);
    size_t first = acked_at[0];
    while (first > 0 && journal[first - 1].off < 0)
        first--; /* back to the first row's writes */
    while (first > 0 && journal[first - 1].off >= 0)
        first--;
    size_t n_img = 0, torn = 0;
    for (size_t at = first; at <= end; at++) {
        static const unsigned seeds[] = {0, 1, 2, 3};
        for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
            char img[4200];
            snprintf(img, sizeof img, "%s/img-%zu", dir, n_img++);
            /* Seed 3 keeps every unsynced write: the page cache flushed whole. */
            size_t synced = power_loss_image(img, at, seeds[k] == 3 ? UINT_MAX : seeds[k]);
            torn += at > synced + 1;
            check_image(img, at);
            th_rmrf(img);
        }
    }
    cr_log_info("power loss: %zu images over %zu journal entries, %zu with unsynced writes", n_img,
                end - first + 1, torn);
    cr_assert_gt(torn, 0, "no power loss fell between a write and its sync");
}

/* The simulation can see a loss: under sync=none the same power loss keeps none of the rows. */
Test(durability, sync_none_loses_what_a_power_loss_takes)
{
    size_t end = write_rows(STORE_SYNC_NONE);
    char img[4200];
    snprintf(img, sizeof img, "%s/img", dir);
    power_loss_image(img, end, 0);
    store_t *s = th_open(img, 0, STORE_SYNC_NONE);
    for (int i = 0; i < ROWS; i++)
        cr_assert_eq(row_in(s, i), 0, "row %d survived with nothing synced after it", i);
    store_close(s);
}
