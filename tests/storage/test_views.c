/* tests/storage/test_views.c - the view table read back from meta at open (storage/views.c): a
 * damaged slot table or view key refuses the open as damage (-EUCLEAN, logged store_damaged
 * with the key), never a crash or a wrong table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

/* A store with th_yaml applied, its meta key set to val (len bytes) behind the store's back,
 * closed, then opened again: returns what the open said. */
static int reopen_with(const char *key, const void *val, size_t len)
{
    char *dir = th_tmpdir();
    catalog_t *c = th_catalog(th_yaml);
    store_t *s = th_open_applied(dir, c);
    MDB_txn *txn = NULL;
    cr_assert_eq(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
    MDB_val k = {strlen(key), (void *)key}, d = {len, (void *)val};
    cr_assert_eq(mdb_put(txn, s->meta, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    store_close(s);
    store_options_t o = {.dir = dir, .sync = STORE_SYNC_NONE};
    s = NULL;
    int rc = store_open(&o, &s);
    if (rc == 0)
        store_close(s);
    else
        cr_assert_null(s);
    catalog_unref(c);
    th_rmrf(dir);
    free(dir);
    return rc;
}

Test(views, a_damaged_slot_table_refuses_the_open)
{
    /* Shorter than its count. */
    cr_assert_eq(reopen_with("slots:fv@v1", "\x01\x00", 2), -EUCLEAN);
    /* A count larger than the value could hold. */
    cr_assert_eq(reopen_with("slots:fv@v1", "\xff\xff\xff\xffx\0", 6), -EUCLEAN);
    /* Two names announced, one there (no terminating NUL for the second). */
    cr_assert_eq(reopen_with("slots:fv@v1", "\x02\x00\x00\x00trips\0label", 15), -EUCLEAN);
}

Test(views, a_slot_table_under_a_name_that_is_no_view_key_refuses_the_open)
{
    static const char one[] = "\x01\x00\x00\x00x";
    cr_assert_eq(reopen_with("slots:fv", one, sizeof one), -EUCLEAN, "no @v");
    cr_assert_eq(reopen_with("slots:fv@v0", one, sizeof one), -EUCLEAN, "version 0");
    cr_assert_eq(reopen_with("slots:fv@v1x", one, sizeof one), -EUCLEAN, "not a number");
    cr_assert_eq(reopen_with("slots:fv@x1", one, sizeof one), -EUCLEAN, "no v");
}

Test(views, an_intact_slot_table_written_again_opens)
{
    /* The control: the same write path with a well-formed table of fv's four features. */
    static const char four[] = "\x04\x00\x00\x00"
                               "conv_rate\0trips\0label\0hist";
    cr_assert_eq(reopen_with("slots:fv@v1", four, sizeof four), 0);
}
