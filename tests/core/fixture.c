/* tests/core/fixture.c - see fixture.h. */
#include "tests/core/fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/storage/helpers.h"

void fx_write_catalog(const fx_t *f, const char *yaml)
{
    FILE *fp = fopen(f->catalog, "w");
    cr_assert_not_null(fp);
    fputs(yaml, fp);
    fclose(fp);
}

void fx_init(fx_t *f, const char *yaml)
{
    memset(f, 0, sizeof *f);
    f->dir = th_tmpdir();
    snprintf(f->catalog, sizeof f->catalog, "%s/catalog.yaml", f->dir);
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    if (yaml != NULL)
        fx_write_catalog(f, yaml);
    base_arena_init(&f->arena, 4096);
}

void fx_options(const fx_t *f, core_options_t *o)
{
    core_options_init(o);
    o->data_dir = f->data;
    o->catalog_path = f->catalog;
    o->quiet = true;
    o->sync = STORE_SYNC_NONE;
}

int fx_open(fx_t *f, const core_options_t *o)
{
    return core_open(o, &f->core);
}

void fx_setup(fx_t *f, const char *yaml)
{
    fx_init(f, yaml);
    core_options_t o;
    fx_options(f, &o);
    int rc = fx_open(f, &o);
    cr_assert_eq(rc, 0, "core_open: %d", rc);
}

void fx_setup_reopened(fx_t *f, const char *yaml, bool read_only, bool quiet)
{
    fx_setup(f, yaml);
    core_close(f->core);
    f->core = NULL;
    core_options_t o;
    fx_options(f, &o);
    o.catalog_path = NULL;
    o.read_only = read_only;
    o.quiet = quiet;
    int rc = fx_open(f, &o);
    cr_assert_eq(rc, 0, "core_open again: %d", rc);
}

void fx_begin(fx_t *f)
{
    cr_assert_eq(core_worker_new(f->core, CORE_WORKER_READS, NULL, &f->worker), 0);
    core_ctx_begin(&f->ctx, f->worker, &f->arena);
    f->begun = true;
}

void fx_close(fx_t *f)
{
    if (f->begun)
        core_ctx_end(&f->ctx);
    core_worker_free(f->worker);
    core_close(f->core);
    base_arena_free(&f->arena);
    th_rmrf(f->dir);
    free(f->dir);
    memset(f, 0, sizeof *f);
}

const catalog_view_t *fx_view(fx_t *f, const char *view_ref)
{
    const catalog_view_t *v = NULL;
    int rc = core_find_view(&f->ctx, view_ref, &v);
    cr_assert_eq(rc, 0, "%s: %s", view_ref, f->ctx.msg);
    return v;
}

void fx_put(fx_t *f, const char *view_ref, int64_t id, uint32_t feature, catalog_value_t val,
            int64_t event_ts_us)
{
    int rc = th_put(core_store(f->core), fx_view(f, view_ref), id, feature, val, event_ts_us);
    cr_assert_eq(rc, 0, "th_put %s %lld: %d", view_ref, (long long)id, rc);
}
