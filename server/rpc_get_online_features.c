/* server/rpc_get_online_features.c - GetOnlineFeatures (Feast's and fstore's paths, one method). */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "server/server_int.h"

#include "feast/serving/ServingService.pb-c.h"

/*
 * Decode (by hand in the usual shape, protobuf-c otherwise) -> core_resolve() and
 * core_read_begin() -> Feast's columnar response, written by hand from the stored bytes. The
 * hand decoder leaves the feature list unparsed: a list the worker has resolved before is known
 * by its bytes.
 */

/* The general path's request in the form the rest of the method reads. Entities stay in rq. A
 * feature list also gets the bytes the hand decoder would have noted for it, the minimal
 * encoding of its strings, so that either path finds what the other cached.
 * Returns: 0, -ENOMEM. */
static int read_request_from_pb(base_arena_t *a, const Feast__Serving__GetOnlineFeaturesRequest *rq,
                                codec_read_request_t *rr)
{
    memset(rr, 0, sizeof *rr);
    rr->include_md = rq->include_feature_view_version_metadata;
    bool service =
        rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE;
    bool features = rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES;
    return codec_feature_list_from_pb(a, service ? rq->feature_service : NULL,
                                      features ? rq->features : NULL, rq->full_feature_names,
                                      &rr->list);
}

/* The request's entities (request false) or request_context (request true, the request data
 * on-demand features read) as columns. */
static int columns_from_pb(server_call_t *c, const Feast__Serving__GetOnlineFeaturesRequest *rq,
                           bool request, const core_columns_limits_t *lim, core_columns_t *out)
{
    base_arena_t *a = &c->arena;
    size_t n = request ? rq->n_request_context : rq->n_entities;
    const char **keys = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *keys);
    Feast__Types__RepeatedValue **vals = base_arena_calloc(a, n == 0 ? 1 : n, sizeof *vals);
    if (keys == NULL || vals == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = request ? rq->request_context[i]->key : rq->entities[i]->key;
        vals[i] = request ? rq->request_context[i]->value : rq->entities[i]->value;
    }
    return codec_columns_from_pb(&c->ctx, request ? "request_context" : "entity", n, keys, vals,
                                 lim, out);
}

/* As columns_from_pb() for a request decoded by hand: the same checks in the same order; the
 * values are already converted (the decoder takes only types that convert). what: "entity" or
 * "request_context", for its columns. */
static int columns_from_request(server_call_t *c, const char *what, size_t n,
                                const codec_read_column_t *in, const core_columns_limits_t *lim,
                                core_columns_t *ents)
{
    base_arena_t *a = &c->arena;
    memset(ents, 0, sizeof *ents);
    if (n > lim->max_cols)
        return server__fail(c, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n, what,
                            lim->max_cols, lim->max_cols_why);
    size_t *lens = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
    const char **names = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *names);
    const catalog_value_t **cols = base_arena_alloc(a, (n == 0 ? 1 : n) * sizeof *cols);
    if (lens == NULL || names == NULL || cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        lens[i] = in[i].n_vals;
        names[i] = in[i].name;
        cols[i] = in[i].vals;
    }
    size_t rows = 0;
    int rc = core_columns_shape(&c->ctx, what, n, names, lens, lim, &rows);
    if (rc < 0)
        return rc;
    ents->n_cols = n;
    ents->n_rows = rows;
    ents->names = names;
    ents->cols = cols;
    return 0;
}

int server__rpc_get_online_features(server_call_t *c, const uint8_t *req, size_t len,
                                    grpc_slice *resp)
{
    base_arena_t *a = &c->arena;
    core_ctx_t *ctx = &c->ctx;
    int rc = 0;

    /* The usual request decodes by hand; anything else goes through protobuf-c. */
    codec_read_request_t rr;
    Feast__Serving__GetOnlineFeaturesRequest *rq = NULL;
    const core_resolved_t *res = NULL;
    rc = codec_feast_decode_read(a, req, len, &rr);
    if (rc < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (rc == 0) {
        rc = core_resolve(ctx, &rr.list, &res);
        if (rc < 0)
            return rc;
    }
    if (rc > 0) {
        rc = codec_unpack(ctx, &feast__serving__get_online_features_request__descriptor, req, len,
                          (ProtobufCMessage **)&rq);
        if (rc < 0)
            return rc;
        rc = read_request_from_pb(a, rq, &rr);
        if (rc < 0)
            return server__fail(c, rc, "out of memory");
        /* Its list is parsed, so never CORE_DECLINED here. */
        rc = core_resolve(ctx, &rr.list, &res);
        assert(rc <= 0);
        if (rc < 0)
            return rc;
    }
    size_t n_refs = res->n_refs;

    /* Entities: columns of equal length; an entityless read has one implicit row. */
    core_columns_limits_t ent_lim = core_entity_limits(ctx);
    core_columns_t ents;
    if (rq != NULL)
        rc = columns_from_pb(c, rq, false, &ent_lim, &ents);
    else
        rc = columns_from_request(c, "entity", rr.n_entities, rr.entities, &ent_lim, &ents);
    if (rc < 0)
        return rc;
    /* Request data, for on-demand features. */
    core_columns_t request = {0};
    if (rq != NULL && rq->n_request_context > 0)
        rc = columns_from_pb(c, rq, true, &ent_lim, &request);
    else if (rq == NULL && rr.n_request > 0)
        rc = columns_from_request(c, "request_context", rr.n_request, rr.request, &ent_lim,
                                  &request);
    if (rc < 0)
        return rc;

    core_cell_t *cells = NULL;
    rc = core_read_begin(ctx, res, &ents, &request, rr.list.full_names, &cells);
    if (rc < 0)
        return rc;
    size_t n_rows = ents.n_rows;
    size_t n_cols = ents.n_cols + n_refs;
    codec_feast_column_t *cols = base_arena_calloc(a, n_cols, sizeof *cols);
    if (cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");

    /* Entity columns are echoed back as given, status PRESENT, like Feast. */
    for (size_t i = 0; i < ents.n_cols; i++) {
        core_cell_t *ecells = base_arena_array(a, n_rows == 0 ? 1 : n_rows, sizeof *ecells);
        if (ecells == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t row = 0; row < n_rows; row++) {
            codec_wire_t w;
            if (rq != NULL) {
                /* Packed again: protobuf-c forgot the bytes it read. */
                const Feast__Types__Value *v = rq->entities[i]->value->val[row];
                w.len = feast__types__value__get_packed_size(v);
                uint8_t *buf = base_arena_alloc(a, w.len);
                if (buf == NULL)
                    return server__fail(c, -ENOMEM, "out of memory");
                feast__types__value__pack(v, buf);
                w.data = buf;
            } else {
                w = rr.entities[i].wire[row];
            }
            ecells[row] = (core_cell_t){w.data, (uint32_t)w.len, STORE_STATUS_PRESENT, 0};
        }
        cols[i] = (codec_feast_column_t){ents.names[i], strlen(ents.names[i]), ecells};
    }
    for (size_t i = 0; i < n_refs; i++) {
        cols[ents.n_cols + i] =
            (codec_feast_column_t){res->names[i], res->name_lens[i], &cells[i * n_rows]};
    }

    codec_feast_response_t r = {.n_rows = n_rows,
                                .n_cols = n_cols,
                                .cols = cols,
                                .status = true,
                                .names_pre = res->names_enc,
                                .names_pre_len = res->names_enc_len,
                                .n_names_pre = n_refs};
    if (rr.include_md) {
        r.views = res->views;
        r.n_views = res->n_views;
    }
    codec_feast_vec_t *vecs = base_arena_array(a, n_cols, sizeof *vecs);
    if (vecs == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    /* Measured before anything is allocated: max_entities x max_features cells of up to
     * STORE_MAX_VALUE each could otherwise ask for gigabytes from a small request. */
    size_t total = codec_feast_size(&r, vecs);
    grpc_slice s;
    rc = server__response_slice(c, "response", total, &s);
    if (rc < 0)
        return rc;
    codec_feast_write(&r, vecs, GRPC_SLICE_START_PTR(s));
    *resp = s;
    /* The store read ends with the request (core_ctx_end()), after the bytes are copied. */
    return 0;
}
