/* core/history.c - offline serving: load_batch (a view's rows as of a time, paged). */
#include <errno.h>
#include <string.h>

#include "core/core_int.h"

#define LOAD_DEFAULT_LIMIT 1000
/* Entities a page may pass over (none live by then) before it ends short, with a token: a page
 * of a sparse view costs a bounded scan, not the whole history. */
#define LOAD_MAX_VISITS 100000
/* A page token: the view version (4 bytes, big-endian), then the last entity key. */
#define TOKEN_VERSION 4

typedef struct load_state {
    core_ctx_t *ctx;
    const catalog_view_t *v;
    int64_t at_us;
    size_t limit, n;
    catalog_value_t **keys; /* [n_join_keys][limit] */
    core_cell_t *cells;     /* [n_features * limit] */
    const uint8_t **wires;
    size_t *lens;
    store_status_t *sts;
    uint32_t *feature_idx;
    uint8_t *last; /* the last entity's key: the next page's token */
    size_t last_len;
    catalog_value_t *kv; /* [n_join_keys]: one key decoded */
    size_t bytes;        /* the page's value bytes so far, against --max-response-bytes */
    size_t visits;       /* entities passed over */
    bool more;           /* there is an entity after the page */
} load_state_t;

static int load_row(void *arg, const uint8_t *key, size_t key_len, const store_row_t *row)
{
    load_state_t *st = arg;
    const catalog_view_t *v = st->v;
    if (st->n == st->limit || st->visits == LOAD_MAX_VISITS) {
        st->more = true;
        return 1;
    }
    if (row == NULL) {
        /* Nothing live here by then: passed over, but counted, and the token moves on. */
        st->visits++;
        memcpy(st->last, key, key_len);
        st->last_len = key_len;
        return 0;
    }
    size_t r = st->n;
    catalog_value_t *kv = st->kv;
    if (store_decode_key(v, key, key_len, kv) < 0)
        return core_fail(st->ctx, -EIO, "feature view '%s': a malformed entity key in the history",
                         v->name);
    for (size_t k = 0; k < v->n_join_keys; k++) {
        st->keys[k][r] = kv[k];
        if (kv[k].type == CATALOG_DTYPE_STRING || kv[k].type == CATALOG_DTYPE_BYTES) {
            /* The key lives in the map: copied, so the page outlives nothing it points at. */
            uint8_t *p = base_arena_alloc(st->ctx->arena, kv[k].u.bytes.len + 1);
            if (p == NULL)
                return core_fail(st->ctx, -ENOMEM, "out of memory");
            memcpy(p, kv[k].u.bytes.data, kv[k].u.bytes.len);
            st->keys[k][r].u.bytes.data = p;
        }
    }
    st->bytes += key_len;
    store_row_features(row, v, st->feature_idx, v->n_features, st->at_us, st->wires, st->lens,
                       st->sts);
    for (size_t f = 0; f < v->n_features; f++) {
        st->bytes += st->lens[f] + 16;
        st->cells[f * st->limit + r] = (core_cell_t){st->wires[f], (uint32_t)st->lens[f],
                                                     (uint8_t)st->sts[f], row->event_ts_us};
    }
    if (st->bytes > st->ctx->limits->max_response_bytes)
        return core_fail(st->ctx, -EMSGSIZE,
                         "the page of %zu rows is over --max-response-bytes %zu: ask for fewer "
                         "(limit)",
                         r + 1, st->ctx->limits->max_response_bytes);
    if (key_len > STORE_MAX_KEY)
        return core_fail(st->ctx, -EIO, "an entity key over %d bytes", STORE_MAX_KEY);
    memcpy(st->last, key, key_len);
    st->last_len = key_len;
    st->n++;
    return 0;
}

int core_load_batch(core_ctx_t *ctx, const catalog_view_t *v, int64_t at_us, size_t limit,
                    const uint8_t *after, size_t after_len, core_batch_page_t *page)
{
    memset(page, 0, sizeof *page);
    base_arena_t *a = ctx->arena;
    int arc = core__allow_view(ctx, CORE_SCOPE_READ, v);
    if (arc < 0)
        return arc;
    if (v->on_demand != NULL)
        return core_fail(ctx, -EINVAL,
                         "feature view '%s' is on-demand: it has no rows to load, only features "
                         "computed at read time",
                         v->name);
    if (!v->history)
        return core_fail(ctx, -EINVAL,
                         "feature view '%s' keeps no offline history (give it 'offline: "
                         "{retention: ...}' in the catalog)",
                         v->name);
    if (limit == 0)
        limit = LOAD_DEFAULT_LIMIT < ctx->limits->max_entities ? LOAD_DEFAULT_LIMIT
                                                               : ctx->limits->max_entities;
    if (limit > ctx->limits->max_entities)
        return core_fail(ctx, -E2BIG, "limit %zu is over the limit of %zu rows (--max-entities)",
                         limit, ctx->limits->max_entities);
    if (after_len > 0) {
        /* The token names the version it pages through: "view" may mean another one now. */
        uint32_t tv = 0;
        for (size_t i = 0; i < TOKEN_VERSION && i < after_len; i++)
            tv = tv << 8 | after[i];
        if (after_len <= TOKEN_VERSION || after_len > TOKEN_VERSION + STORE_MAX_HISTORY_KEY)
            return core_fail(ctx, -EINVAL, "bad page token");
        if (tv != v->version)
            return core_fail(ctx, -ESTALE,
                             "the page token pages through '%s@v%u', and the request now means "
                             "v%u: start again, or name the version",
                             v->name, tv, v->version);
        after += TOKEN_VERSION;
        after_len -= TOKEN_VERSION;
    }
    load_state_t st = {.ctx = ctx, .v = v, .at_us = at_us, .limit = limit};
    st.kv = base_arena_array(a, v->n_join_keys + 1, sizeof *st.kv);
    if (st.kv == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (after_len > 0 && store_decode_key(v, after, after_len, st.kv) < 0)
        return core_fail(ctx, -EINVAL, "bad page token: not one of feature view '%s'", v->name);
    size_t nf = v->n_features;
    st.keys = base_arena_array(a, v->n_join_keys + 1, sizeof *st.keys);
    st.cells = base_arena_array(a, nf * limit + 1, sizeof *st.cells);
    st.wires = base_arena_array(a, nf + 1, sizeof *st.wires);
    st.lens = base_arena_array(a, nf + 1, sizeof *st.lens);
    st.sts = base_arena_array(a, nf + 1, sizeof *st.sts);
    st.feature_idx = base_arena_array(a, nf + 1, sizeof *st.feature_idx);
    st.last = base_arena_alloc(a, TOKEN_VERSION + STORE_MAX_KEY);
    if (st.keys == NULL || st.cells == NULL || st.wires == NULL || st.lens == NULL ||
        st.sts == NULL || st.feature_idx == NULL || st.last == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t k = 0; k < v->n_join_keys; k++) {
        if ((st.keys[k] = base_arena_array(a, limit, sizeof **st.keys)) == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
    }
    for (size_t f = 0; f < nf; f++)
        st.feature_idx[f] = (uint32_t)f;

    int rc = core__snapshot_begin(ctx);
    if (rc < 0)
        return rc;
    store_reader_t *reader = ctx->worker->reader;
    rc = store_history_scan(reader, v, at_us, after, after_len, load_row, &st);
    if (rc == -ENOTSUP)
        return core_fail(ctx, rc, "this node keeps no history (serve --history)");
    if (rc == -ENOENT)
        return core_fail(ctx, -EINVAL,
                         "feature view '%s@v%u' has no history here (its catalog is not applied)",
                         v->name, v->version);
    if (rc == -EBADMSG)
        return core_fail(ctx, rc,
                         "feature view '%s@v%u': a damaged record in its history (its checksum "
                         "does not match; record_damaged in the log names its key): run fstore "
                         "verify",
                         v->name, v->version);
    if (rc < 0) {
        if (ctx->msg[0] == '\0')
            core_fail(ctx, rc, "store read failed: %s", strerror(-rc));
        return rc;
    }
    core__count_reads(ctx, v, st.n);
    /* Cells are laid out with a stride of limit: close the gaps for a page that is short. */
    if (st.n < limit) {
        for (size_t f = 1; f < nf; f++)
            memmove(&st.cells[f * st.n], &st.cells[f * limit], st.n * sizeof *st.cells);
    }
    const char **names = base_arena_array(a, v->n_join_keys + 1, sizeof *names);
    if (names == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t k = 0; k < v->n_join_keys; k++)
        names[k] = v->join_keys[k].name;
    page->n_rows = st.n;
    page->keys = (core_columns_t){.n_cols = v->n_join_keys,
                                  .n_rows = st.n,
                                  .names = names,
                                  .cols = (const catalog_value_t **)st.keys};
    page->cells = st.cells;
    if (st.more) {
        uint8_t *tok = base_arena_alloc(a, TOKEN_VERSION + st.last_len);
        if (tok == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
        for (size_t i = 0; i < TOKEN_VERSION; i++)
            tok[i] = (uint8_t)(v->version >> (8 * (TOKEN_VERSION - 1 - i)));
        memcpy(tok + TOKEN_VERSION, st.last, st.last_len);
        page->next = tok;
        page->next_len = TOKEN_VERSION + st.last_len;
    }
    return 0;
}
