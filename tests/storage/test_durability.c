/* tests/storage/test_durability.c - acknowledged means synced: every fsync and fdatasync this
 * process makes is counted (the functions are interposed below, so LMDB's own calls count), and
 * each acknowledgement must come after its commit's syncs (storage/writer.c). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tests/storage/helpers.h"

/*
 * Interposed: a definition in the executable wins over libc's for liblmdb's calls too. Counted
 * after the system call returns, so a count seen means a sync completed.
 */
static _Atomic unsigned long syncs;

int fsync(int fd)
{
    long rc = syscall(SYS_fsync, fd);
    atomic_fetch_add(&syncs, 1);
    return (int)rc;
}

int fdatasync(int fd)
{
    long rc = syscall(SYS_fdatasync, fd);
    atomic_fetch_add(&syncs, 1);
    return (int)rc;
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
