/* tests/core/fixture.h - a core_t over a fresh directory and an inline catalog, and a request on
 * it: what the tests of core_open(), snapshots, history and on-demand reads share. */
#ifndef TESTS_CORE_FIXTURE_H
#define TESTS_CORE_FIXTURE_H

#include "core/core_int.h"

typedef struct fx {
    char *dir;          /* the test's directory (th_tmpdir()) */
    char catalog[4200]; /* <dir>/catalog.yaml */
    char data[4200];    /* <dir>/data */
    core_t *core;
    core_worker_t *worker; /* CORE_WORKER_READS, once fx_begin() ran */
    base_arena_t arena;
    core_ctx_t ctx;
    bool begun;
} fx_t;

/* Makes the directory and writes yaml (NULL: none) as its catalog file. */
void fx_init(fx_t *f, const char *yaml);
/* (Re)writes the catalog file. */
void fx_write_catalog(const fx_t *f, const char *yaml);
/* The options every test starts from: core_options_init(), the fixture's data directory and
 * catalog, quiet, no fsync. */
void fx_options(const fx_t *f, core_options_t *o);
/* core_open() with o into f->core. Returns: its result. */
int fx_open(fx_t *f, const core_options_t *o);
/* fx_init() and fx_open() with the usual options, asserting success. */
void fx_setup(fx_t *f, const char *yaml);
/* fx_setup(), then the core closed and opened again on its data directory with no catalog path
 * (serving the applied catalog), read-only or not, logging or quiet; asserting success. */
void fx_setup_reopened(fx_t *f, const char *yaml, bool read_only, bool quiet);
/* A read worker and a request begun on it (f->ctx). */
void fx_begin(fx_t *f);
/* Ends the request, frees the worker, closes the core and removes the directory. */
void fx_close(fx_t *f);

/* The view view_ref of the request's catalog (asserting it exists). */
const catalog_view_t *fx_view(fx_t *f, const char *view_ref);
/* Upserts one feature of one row of a single-INT64-key view through the store. */
void fx_put(fx_t *f, const char *view_ref, int64_t id, uint32_t feature, catalog_value_t val,
            int64_t event_ts_us);

#endif /* TESTS_CORE_FIXTURE_H */
