/* server/rpc_history.c - offline serving: LoadBatch and GetHistoricalFeatures (streaming). */
#include <errno.h>
#include <string.h>

#include "server/server_int.h"

#include "feast/serving/ServingService.pb-c.h"
#include "fstore/v1/fstore.pb-c.h"

#define DEFAULT_ROWS_PER_MESSAGE 1000

/* Cells holding values as Value bodies (status PRESENT, event time ts), encoded into a. */
static int value_cells(core_ctx_t *ctx, const catalog_value_t *vals, size_t n, const int64_t *ts,
                       core_cell_t **out)
{
    core_cell_t *cells = base_arena_array(ctx->arena, n == 0 ? 1 : n, sizeof *cells);
    if (cells == NULL)
        return core_fail(ctx, -ENOMEM, "out of memory");
    for (size_t r = 0; r < n; r++) {
        size_t len = catalog_value_wire_size(&vals[r]);
        uint8_t *buf = base_arena_alloc(ctx->arena, len == 0 ? 1 : len);
        if (buf == NULL)
            return core_fail(ctx, -ENOMEM, "out of memory");
        int rc = catalog_value_encode(&vals[r], buf, len);
        if (rc < 0)
            return core_fail(ctx, rc, "value encoding failed");
        cells[r] = (core_cell_t){buf, (uint32_t)len, STORE_STATUS_PRESENT, ts != NULL ? ts[r] : 0};
    }
    *out = cells;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* LoadBatch                                                                                   */

int server__rpc_load_batch(server_call_t *c, const uint8_t *req, size_t len, grpc_slice *resp)
{
    core_ctx_t *ctx = &c->ctx;
    base_arena_t *a = &c->arena;
    Fstore__V1__LoadBatchRequest *rq = NULL;
    int rc = codec_unpack(ctx, &fstore__v1__load_batch_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
    if (rc < 0)
        return rc;
    const catalog_view_t *v;
    if ((rc = core_find_view(ctx, rq->feature_view, &v)) < 0)
        return rc;
    int64_t at = store_now_us();
    if (rq->timestamp != NULL &&
        (rc = codec_ts_from_pb(ctx, "timestamp", &rq->timestamp, 1, true, at, &at)) < 0)
        return rc;
    core_batch_page_t page;
    rc = core_load_batch(ctx, v, at, rq->limit, rq->page_token.data, rq->page_token.len, &page);
    if (rc < 0)
        return rc;

    size_t nk = v->n_join_keys, n_cols = nk + v->n_features, n = page.n_rows;
    codec_feast_column_t *cols = base_arena_calloc(a, n_cols + 1, sizeof *cols);
    codec_feast_vec_t *vecs = base_arena_array(a, n_cols + 1, sizeof *vecs);
    if (cols == NULL || vecs == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t k = 0; k < nk; k++) {
        core_cell_t *cells;
        if ((rc = value_cells(ctx, page.keys.cols[k], n, NULL, &cells)) < 0)
            return rc;
        cols[k] = (codec_feast_column_t){v->join_keys[k].name, strlen(v->join_keys[k].name), cells};
    }
    for (size_t f = 0; f < v->n_features; f++)
        cols[nk + f] = (codec_feast_column_t){v->features[f].name, strlen(v->features[f].name),
                                              &page.cells[f * n]};
    codec_feast_response_t r = {.n_rows = n, .n_cols = n_cols, .cols = cols, .status = true};
    /* LoadBatchResponse: rows (1) holds the GetOnlineFeaturesResponse, next_page_token (2). */
    size_t inner = codec_feast_size(&r, vecs);
    size_t total = 1 + base_varint_size(inner) + inner;
    if (page.next_len > 0)
        total += 1 + base_varint_size(page.next_len) + page.next_len;
    grpc_slice s;
    if ((rc = server__response_slice(c, "response", total, &s)) < 0)
        return rc;
    uint8_t *p = GRPC_SLICE_START_PTR(s);
    *p++ = BASE_TAG(1, BASE_WT_LEN);
    p = base_put_varint(p, inner);
    p += codec_feast_write(&r, vecs, p);
    if (page.next_len > 0) {
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, page.next_len);
        memcpy(p, page.next, page.next_len);
    }
    *resp = s;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* GetHistoricalFeatures                                                                       */

/* A stream in progress: the request, decoded once into the call's arena, and where it is. */
typedef struct hist {
    Fstore__V1__GetHistoricalFeaturesRequest *rq;
    core_feature_list_t list;
    core_columns_t ents;      /* the whole entity table */
    int64_t *as_of;           /* [ents.n_rows] */
    catalog_value_t *ts_vals; /* the event_timestamp column's values (UNIX_TIMESTAMP seconds) */
    size_t next, per_message;
    char digest[17];    /* the catalog of the first message (catalog_digest(): 16 hex digits) */
    base_arena_t chunk; /* one message's work, reset for each */
} hist_t;

static int hist_next(server_call_t *c, bool ok, grpc_slice *resp);

/* Builds and sends the next message (the catalog pinned, ctx's arena h->chunk). */
static int hist_send(server_call_t *c, hist_t *h)
{
    core_ctx_t *ctx = &c->ctx;
    base_arena_t *a = &h->chunk;
    /* Every message from one catalog: a reload between messages could change what the list
     * means (a new default version) or its columns. */
    const char *digest = catalog_digest(ctx->catalog);
    if (h->next == 0)
        snprintf(h->digest, sizeof h->digest, "%s", digest);
    else if (strcmp(digest, h->digest) != 0)
        return server__fail(c, -ESTALE,
                            "the catalog changed during the stream (%s -> %s) after %zu rows: "
                            "call again for the rest",
                            h->digest, digest, h->next);
    const core_resolved_t *res;
    int rc = core_resolve(ctx, &h->list, &res);
    if (rc < 0)
        return rc;
    for (size_t i = 0; h->next == 0 && i < res->n_refs; i++) {
        /* Once, at the first message: the later ones have the same catalog and list. */
        if (strcmp(res->names[i], "event_timestamp") == 0)
            return server__fail(c, -EINVAL,
                                "feature '%s' is named like the result's event_timestamp column: "
                                "set full_feature_names",
                                res->refs[i].feature->name);
    }
    size_t first = h->next, n = h->ents.n_rows - first;
    if (n > h->per_message)
        n = h->per_message;
    size_t ne = h->ents.n_cols;
    core_columns_t sub = h->ents;
    const catalog_value_t **cols = base_arena_array(a, ne + 1, sizeof *cols);
    if (cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ne; i++)
        cols[i] = h->ents.cols[i] + first;
    sub.cols = cols;
    sub.n_rows = n;
    core_cell_t *cells;
    rc = core_history_begin(ctx, res, &sub, h->as_of + first, h->list.full_names, &cells);
    if (rc < 0)
        return rc;

    /* The entity table as given, event_timestamp, then the features. */
    size_t n_cols = ne + 1 + res->n_refs;
    codec_feast_column_t *fc = base_arena_calloc(a, n_cols, sizeof *fc);
    codec_feast_vec_t *vecs = base_arena_array(a, n_cols, sizeof *vecs);
    if (fc == NULL || vecs == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ne; i++) {
        core_cell_t *ec = base_arena_array(a, n == 0 ? 1 : n, sizeof *ec);
        if (ec == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t r = 0; r < n; r++) {
            /* Packed again: protobuf-c forgot the bytes it read. */
            const Feast__Types__Value *val = h->rq->entities[i]->value->val[first + r];
            size_t vlen = feast__types__value__get_packed_size(val);
            uint8_t *buf = base_arena_alloc(a, vlen == 0 ? 1 : vlen);
            if (buf == NULL)
                return server__fail(c, -ENOMEM, "out of memory");
            feast__types__value__pack(val, buf);
            ec[r] = (core_cell_t){buf, (uint32_t)vlen, STORE_STATUS_PRESENT, 0};
        }
        fc[i] = (codec_feast_column_t){h->ents.names[i], strlen(h->ents.names[i]), ec};
    }
    core_cell_t *tc;
    if ((rc = value_cells(ctx, h->ts_vals + first, n, h->as_of + first, &tc)) < 0)
        return rc;
    fc[ne] = (codec_feast_column_t){"event_timestamp", strlen("event_timestamp"), tc};
    for (size_t i = 0; i < res->n_refs; i++)
        fc[ne + 1 + i] = (codec_feast_column_t){res->names[i], res->name_lens[i], &cells[i * n]};
    codec_feast_response_t r = {.n_rows = n,
                                .n_cols = n_cols,
                                .cols = fc,
                                .status = true,
                                .names_pre = res->names_enc,
                                .names_pre_len = res->names_enc_len,
                                .n_names_pre = res->n_refs};
    size_t total = codec_feast_size(&r, vecs);
    grpc_slice s;
    if ((rc = server__response_slice(c, "message", total, &s)) < 0)
        return rc;
    codec_feast_write(&r, vecs, GRPC_SLICE_START_PTR(s));
    core_read_end(ctx);
    h->next = first + n;
    return server__stream_send(c, s, hist_next);
}

static int hist_next(server_call_t *c, bool ok, grpc_slice *resp)
{
    (void)resp;
    hist_t *h = c->resume_arg;
    int rc;
    if (!ok) {
        rc = server__fail(c, -ECANCELED, "the stream ended before its last message");
    } else if (h->next == h->ents.n_rows) {
        c->stream_end = true;
        rc = 0;
    } else {
        base_arena_reset(&h->chunk);
        server__call_begin_ctx(c, &h->chunk);
        rc = c->ctx.deadline_us > 0 && base_mono_us() > c->ctx.deadline_us
                 ? server__fail(c, -ETIMEDOUT, "deadline exceeded after %zu rows", h->next)
                 : hist_send(c, h);
        core_ctx_end(&c->ctx);
    }
    if (rc != SERVER_PENDING)
        base_arena_free(&h->chunk);
    return rc;
}

int server__rpc_get_historical_features(server_call_t *c, const uint8_t *req, size_t len,
                                        grpc_slice *resp)
{
    (void)resp;
    core_ctx_t *ctx = &c->ctx;
    base_arena_t *a = &c->arena;
    hist_t *h = base_arena_calloc(a, 1, sizeof *h);
    if (h == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    int rc = codec_unpack(ctx, &fstore__v1__get_historical_features_request__descriptor, req, len,
                          (ProtobufCMessage **)&h->rq);
    if (rc < 0)
        return rc;
    Fstore__V1__GetHistoricalFeaturesRequest *rq = h->rq;
    bool service =
        rq->kind_case == FSTORE__V1__GET_HISTORICAL_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
    bool features = rq->kind_case == FSTORE__V1__GET_HISTORICAL_FEATURES_REQUEST__KIND_FEATURES;
    if (codec_feature_list_from_pb(a, service ? rq->feature_service : NULL,
                                   features ? rq->features : NULL, rq->full_feature_names,
                                   &h->list) < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    const core_limits_t *lim = ctx->limits;
    /* Unset: the default, within --max-entities (as load_batch's limit). */
    h->per_message = rq->rows_per_message != 0                      ? rq->rows_per_message
                     : DEFAULT_ROWS_PER_MESSAGE < lim->max_entities ? DEFAULT_ROWS_PER_MESSAGE
                                                                    : lim->max_entities;
    if (h->per_message > lim->max_entities)
        return server__fail(c, -E2BIG,
                            "rows_per_message %zu is over the limit of %zu (--max-entities)",
                            h->per_message, lim->max_entities);

    size_t n = rq->n_entities;
    const char **keys = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *keys);
    Feast__Types__RepeatedValue **vals = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *vals);
    if (keys == NULL || vals == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = rq->entities[i]->key;
        vals[i] = rq->entities[i]->value;
        if (strcmp(keys[i], "event_timestamp") == 0)
            return server__fail(c, -EINVAL,
                                "entity column 'event_timestamp': the times go in "
                                "event_timestamps (the result names them so)");
    }
    core_columns_limits_t clim = {CORE_MAX_ENTITY_COLUMNS, "entity columns per read",
                                  lim->max_history_rows, "--max-history-rows"};
    if ((rc = codec_columns_from_pb(ctx, "entity", n, keys, vals, &clim, &h->ents)) < 0)
        return rc;
    size_t rows = h->ents.n_rows;
    if (n == 0)
        rows = h->ents.n_rows = rq->n_event_timestamps;
    if (rq->n_event_timestamps != rows)
        return server__fail(c, -EINVAL,
                            "event_timestamps has %zu entries for %zu entity rows (one per row)",
                            rq->n_event_timestamps, rows);
    if (rows > lim->max_history_rows)
        return server__fail(c, -E2BIG, "%zu entity rows; the limit is %zu (--max-history-rows)",
                            rows, lim->max_history_rows);
    h->as_of = base_arena_array(a, rows + 1, sizeof *h->as_of);
    h->ts_vals = base_arena_array(a, rows + 1, sizeof *h->ts_vals);
    if (h->as_of == NULL || h->ts_vals == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    if ((rc = codec_ts_from_pb(ctx, "event_timestamps", rq->event_timestamps, rows, false, 0,
                               h->as_of)) < 0)
        return rc;
    for (size_t r = 0; r < rows; r++) {
        int64_t sec = h->as_of[r] / 1000000 - (h->as_of[r] % 1000000 < 0);
        h->ts_vals[r] = (catalog_value_t){.type = CATALOG_DTYPE_UNIX_TIMESTAMP, .u.i64 = sec};
    }
    if (rows == 0) {
        /* Nothing to join: the check of the feature list alone, and no message. */
        const core_resolved_t *res;
        if ((rc = core_resolve(ctx, &h->list, &res)) < 0)
            return rc;
        c->stream_end = true;
        return 0;
    }
    /* The first message is built now, in this request: an error in the list or the table is the
     * call's status, before anything was streamed. */
    base_arena_init(&h->chunk, 64 << 10);
    c->resume_arg = h;
    base_arena_t *call_arena = ctx->arena;
    ctx->arena = &h->chunk;
    rc = hist_send(c, h);
    ctx->arena = call_arena;
    if (rc != SERVER_PENDING)
        base_arena_free(&h->chunk);
    return rc;
}
