/* tests/core/test_snapshot.c - snapshots for a new node (core/snapshot.c): one at a time, only
 * while serving, read by offset, removed at the end, when idle, or at close. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"
#include "tests/storage/helpers.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    features: [{name: x, dtype: INT64}]\n";

static fx_t f;

static void setup(void)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
    for (int64_t id = 1; id <= 50; id++)
        fx_put(&f, "fv", id, 0, th_i64(id * 7), store_now_us());
}

static void teardown(void)
{
    fx_close(&f);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

/* The copy's directory, beside the data directory. */
static void copy_dir(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s.snapshot-%s", f.data, id);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads the whole copy through core_snapshot_read(), chunk by chunk. */
static uint8_t *read_all(const char *id, uint64_t size, size_t chunk)
{
    uint8_t *buf = malloc(size + 1);
    cr_assert_not_null(buf);
    uint64_t off = 0;
    char msg[256] = "";
    for (;;) {
        size_t n = 99;
        cr_assert_eq(core_snapshot_read(f.core, id, off, buf + off,
                                        size - off < chunk ? (size_t)(size - off) : chunk, &n, msg,
                                        sizeof msg),
                     0, "%s", msg);
        if (n == 0)
            break;
        off += n;
        cr_assert_leq(off, size);
    }
    cr_assert_eq(off, size, "the reads end at the copy's size");
    return buf;
}

Test(snapshot, a_node_that_is_not_serving_refuses)
{
    core_snapshot_t s;
    char msg[256] = "";
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), -EAGAIN);
    cr_assert_str_eq(msg, "this node is not serving (not caught up with the log, or draining): "
                          "bootstrap from a ready node");
    /* nor once it drains */
    core_set_health(f.core, CORE_SERVING);
    core_set_health(f.core, CORE_NOT_SERVING);
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), -EAGAIN);
}

Test(snapshot, the_copy_is_read_by_offset_byte_for_byte_and_removed_at_its_end)
{
    core_set_health(f.core, CORE_SERVING);
    core_snapshot_t s;
    memset(&s, 0, sizeof s);
    char msg[256] = "";
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(strlen(s.id), 16, "%s", s.id);
    cr_assert_eq(strspn(s.id, "0123456789abcdef"), 16, "%s", s.id);
    /* a single node has no log: the copy holds position 0, as the store does */
    uint64_t pos = 99;
    cr_assert_eq(store_last_position(core_store(f.core), &pos), 0);
    cr_assert_eq(s.sequence, pos);

    char dir[4300], mdb[4400];
    copy_dir(s.id, dir, sizeof dir);
    snprintf(mdb, sizeof mdb, "%s/data.mdb", dir);
    struct stat st;
    cr_assert_eq(stat(mdb, &st), 0, "%s", mdb);
    cr_assert_eq(s.size, (uint64_t)st.st_size);
    cr_assert_gt(s.size, 0);

    /* odd chunks, so that reads straddle pages, and the last one is short */
    uint8_t *got = read_all(s.id, s.size, 1000);
    FILE *fp = fopen(mdb, "rb");
    cr_assert_not_null(fp);
    uint8_t *want = malloc(s.size);
    cr_assert_not_null(want);
    cr_assert_eq(fread(want, 1, s.size, fp), s.size);
    fclose(fp);
    cr_assert_eq(memcmp(got, want, s.size), 0, "the bytes are the copy's");
    free(got);
    free(want);

    /* the copy is a store of its own with the rows written before it */
    store_options_t so = {.dir = dir, .read_only = true};
    store_t *copy = NULL;
    cr_assert_eq(store_open(&so, &copy), 0);
    catalog_t *cat = NULL;
    cr_assert_eq(store_applied_catalog(copy, &cat), 0);
    catalog_value_t v;
    int64_t ts = 0;
    cr_assert_eq(th_get(copy, th_view(cat, "fv", 0), 50, 0, store_now_us(), &v, &ts),
                 STORE_STATUS_PRESENT);
    cr_assert_eq(v.u.i64, 350);
    catalog_unref(cat);
    store_close(copy);

    /* at the end: nothing; past it: refused */
    size_t n = 99;
    uint8_t b[8];
    cr_assert_eq(core_snapshot_read(f.core, s.id, s.size, b, sizeof b, &n, msg, sizeof msg), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(core_snapshot_read(f.core, s.id, s.size + 1, b, sizeof b, &n, msg, sizeof msg),
                 -EINVAL);
    char want_msg[128];
    snprintf(want_msg, sizeof want_msg, "offset %llu is past the snapshot's %llu bytes",
             (unsigned long long)s.size + 1, (unsigned long long)s.size);
    cr_assert_str_eq(msg, want_msg);

    cr_assert_eq(core_snapshot_end(f.core, "0000000000000000"), -ENOENT, "another id");
    cr_assert(exists(dir), "a wrong id removes nothing");
    cr_assert_eq(core_snapshot_end(f.core, s.id), 0);
    cr_assert_not(exists(dir), "the copy is removed at its end");
    cr_assert_eq(core_snapshot_end(f.core, s.id), -ENOENT, "ended once");
    cr_assert_eq(core_snapshot_read(f.core, s.id, 0, b, sizeof b, &n, msg, sizeof msg), -ENOENT);
}

Test(snapshot, one_at_a_time_and_an_unknown_id_is_not_found)
{
    core_set_health(f.core, CORE_SERVING);
    core_snapshot_t s, t;
    char msg[256] = "";
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(core_snapshot_begin(f.core, &t, msg, sizeof msg), -ENOBUFS);
    cr_assert_str_eq(msg, "a snapshot is already being taken from this node (at most 1 at a "
                          "time): retry in a minute");
    size_t n = 0;
    uint8_t b[8];
    cr_assert_eq(
        core_snapshot_read(f.core, "feedfeedfeedfeed", 0, b, sizeof b, &n, msg, sizeof msg),
        -ENOENT);
    cr_assert_str_eq(msg, "no snapshot 'feedfeedfeedfeed' on this node (ended, or expired after "
                          "60 s without a read)");
    cr_assert_eq(core_snapshot_end(f.core, s.id), 0);
    /* the slot is free again */
    cr_assert_eq(core_snapshot_begin(f.core, &t, msg, sizeof msg), 0, "%s", msg);
    cr_assert_str_neq(t.id, s.id);
    cr_assert_eq(core_snapshot_end(f.core, t.id), 0);
}

/* A client that went away cannot keep the disk space: core_collect() removes a copy without a
 * read for CORE_SNAPSHOT_IDLE_S, and only such a copy. */
Test(snapshot, an_idle_copy_is_reaped_and_a_busy_one_is_kept)
{
    core_set_health(f.core, CORE_SERVING);
    core_snapshot_t s;
    char msg[256] = "";
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), 0, "%s", msg);
    char dir[4300];
    copy_dir(s.id, dir, sizeof dir);
    core_collect(f.core);
    cr_assert(exists(dir), "just taken: kept");
    /* a read keeps it alive: the idle clock starts again */
    f.core->snap_used_us = base_mono_us() - (CORE_SNAPSHOT_IDLE_S - 5) * 1000000LL;
    size_t n = 0;
    uint8_t b[8];
    cr_assert_eq(core_snapshot_read(f.core, s.id, 0, b, sizeof b, &n, msg, sizeof msg), 0);
    cr_assert_eq(n, sizeof b);
    core_collect(f.core);
    cr_assert(exists(dir));
    /* then idle past the limit */
    f.core->snap_used_us = base_mono_us() - (CORE_SNAPSHOT_IDLE_S + 1) * 1000000LL;
    core_collect(f.core);
    cr_assert_not(exists(dir), "an idle copy is removed");
    cr_assert_eq(core_snapshot_read(f.core, s.id, 0, b, sizeof b, &n, msg, sizeof msg), -ENOENT);
    /* and a new one may be taken */
    core_snapshot_t t;
    cr_assert_eq(core_snapshot_begin(f.core, &t, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(core_snapshot_end(f.core, t.id), 0);
}

Test(snapshot, a_copy_left_at_close_is_removed)
{
    core_set_health(f.core, CORE_SERVING);
    core_snapshot_t s;
    char msg[256] = "";
    cr_assert_eq(core_snapshot_begin(f.core, &s, msg, sizeof msg), 0, "%s", msg);
    char dir[4300];
    copy_dir(s.id, dir, sizeof dir);
    cr_assert(exists(dir));
    core_ctx_end(&f.ctx);
    f.begun = false;
    core_worker_free(f.worker);
    f.worker = NULL;
    core_close(f.core);
    f.core = NULL;
    cr_assert_not(exists(dir), "core_close() removes the copy");
}
