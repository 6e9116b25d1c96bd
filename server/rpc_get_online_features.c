/* server/rpc_get_online_features.c - GetOnlineFeatures (Feast's and fstore's paths, one handler).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

#include "feast/serving/ServingService.pb-c.h"

/*
 * Three layers: resolve the request against the pinned catalog (Feast semantics and error
 * messages live here), read with server__read_features() inside one store snapshot, and encode
 * Feast's columnar response by hand, copying each value's stored wire bytes as they are.
 */

static int fail_not_found(server_call_t *c, const catalog_t *cat, const char *ref)
{
    const char *colon = strchr(ref, ':');
    if (colon == NULL)
        return server__fail(c, -EINVAL,
                            "malformed feature reference '%.200s' (want view:feature or "
                            "view@vN:feature)",
                            ref);
    char view[CATALOG_MAX_NAME + 32];
    snprintf(view, sizeof view, "%.*s", (int)(colon - ref), ref);
    const catalog_view_t *v = NULL;
    if (catalog_find_view_ref(cat, view, &v) < 0)
        return server__fail(c, -ENOENT, "feature view '%s' not found (in reference '%.200s')", view,
                            ref);
    return server__fail(c, -ENOENT, "feature '%.128s' not found in feature view '%s@v%u'",
                        colon + 1, v->name, (unsigned)v->version);
}

static int resolve_ref(server_call_t *c, const catalog_t *cat, const char *ref,
                       catalog_feature_ref_t *out)
{
    int rc = catalog_find_feature(cat, ref, strlen(ref), out);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        return fail_not_found(c, cat, ref);
    return server__fail(c, -EINVAL,
                        "malformed feature reference '%.200s' (want view:feature or "
                        "view@vN:feature)",
                        ref);
}

/* Response column names: `feature`, or with full_feature_names `view__feature` (`view@vN__feature`
 * when the reference named a version, so two versions side by side stay apart). Written by hand:
 * snprintf costs more than the rest of a name's bookkeeping. */
static char *column_name(server_arena_t *a, const catalog_feature_ref_t *ref, bool versioned,
                         bool full, size_t *len)
{
    const char *f = ref->feature->name;
    size_t fl = strlen(f);
    if (!full) {
        *len = fl;
        return server__arena_strndup(a, f, fl);
    }
    char ver[16];
    size_t verl = 0;
    if (versioned) {
        char digits[12];
        size_t nd = 0;
        uint32_t v = ref->view->version;
        do {
            digits[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        ver[verl++] = '@';
        ver[verl++] = 'v';
        while (nd > 0)
            ver[verl++] = digits[--nd];
    }
    const char *vn = ref->view->name;
    size_t vl = strlen(vn);
    size_t n = vl + verl + 2 + fl;
    char *p = server__arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, vn, vl);
    memcpy(p + vl, ver, verl);
    p[vl + verl] = '_';
    p[vl + verl + 1] = '_';
    memcpy(p + vl + verl + 2, f, fl + 1);
    *len = n;
    return p;
}

/* Cache flags (server__ref_cache_get): which kind of list the key bytes are, and the naming
 * option. */
#define LIST_SERVICE 1u
#define LIST_FEATURES 2u
#define LIST_FULL_NAMES 4u

/*
 * Resolves the request's features (a service's list, or each reference) against the pinned
 * catalog, with the checks that depend on the list alone, and names the response columns. A
 * list the worker has resolved before is recognised by its bytes; a hand-decoded request's
 * references are only parsed when it is not.
 * Returns: 0 and *out (in the arena or the worker's cache); 1 when the hand-decoded request's
 *          list is not of the usual shape (decode the request with protobuf-c; nothing else has
 *          been checked); a negative errno with the call's message set.
 */
static int resolve_features(server_call_t *c, server_read_request_t *rr,
                            const server_resolved_t **out)
{
    server_arena_t *a = &c->arena;
    const server_limits_t *lim = server__call_limits(c);
    const catalog_t *cat = c->catalog;
    server_ref_cache_t *cache = server__call_ref_cache(c);
    unsigned flags = rr->full_feature_names ? LIST_FULL_NAMES : 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;

    if (rr->kind == SERVER_READ_SERVICE) {
        flags |= LIST_SERVICE;
        key = (const uint8_t *)rr->service;
        key_len = rr->service_len;
    } else if (rr->kind == SERVER_READ_FEATURES) {
        flags |= LIST_FEATURES;
        key = rr->features_pb;
        key_len = rr->features_pb_len;
    }
    if (flags & (LIST_SERVICE | LIST_FEATURES)) {
        const server_resolved_t *hit = server__ref_cache_get(cache, cat, flags, key, key_len);
        /* A feature list's references are as many as its strings. */
        if (hit != NULL && (flags & LIST_FEATURES) && hit->n_refs > lim->max_features)
            return server__fail(c, -E2BIG,
                                "request asks for %zu features; the limit is %zu "
                                "(--max-features)",
                                hit->n_refs, lim->max_features);
        if (hit != NULL) {
            *out = hit;
            return 0;
        }
    }
    const char *const *strs = NULL;
    const size_t *strs_lens = NULL;
    size_t n_strs = 0;
    if (flags & LIST_FEATURES) {
        if (rr->features == NULL) {
            int rc = server__feast_decode_features(a, rr);
            if (rc < 0)
                return server__fail(c, -ENOMEM, "out of memory");
            if (rc > 0)
                return 1;
        }
        n_strs = rr->n_features;
        if (n_strs > lim->max_features)
            return server__fail(c, -E2BIG,
                                "request asks for %zu features; the limit is %zu "
                                "(--max-features)",
                                n_strs, lim->max_features);
        strs = rr->features;
        strs_lens = rr->feature_lens;
    }

    const catalog_feature_ref_t *refs = NULL;
    bool *versioned = NULL;
    size_t n_refs = 0;
    if (flags & LIST_SERVICE) {
        const catalog_service_t *svc = NULL;
        if (catalog_find_service(cat, rr->service, &svc) < 0)
            return server__fail(c, -ENOENT, "feature service '%.200s' not found", rr->service);
        refs = svc->features;
        n_refs = svc->n_features;
        if (n_refs > lim->max_features)
            return server__fail(c, -E2BIG,
                                "feature service '%s' has %zu features; the limit is %zu "
                                "(--max-features)",
                                svc->name, n_refs, lim->max_features);
        versioned = server__arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *versioned);
        if (versioned == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_refs; i++)
            versioned[i] = !refs[i].view->is_default;
    } else if (flags & LIST_FEATURES) {
        n_refs = n_strs;
        catalog_feature_ref_t *r = server__arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *r);
        versioned = server__arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *versioned);
        if (r == NULL || versioned == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_refs; i++) {
            /* The request's strings are not NUL-terminated; messages need them to be. */
            const char *ref = server__arena_strndup(a, strs[i], strs_lens[i]);
            if (ref == NULL)
                return server__fail(c, -ENOMEM, "out of memory");
            int rc = resolve_ref(c, cat, ref, &r[i]);
            if (rc < 0)
                return rc;
            const char *colon = strchr(ref, ':');
            versioned[i] = memchr(ref, '@', (size_t)(colon - ref)) != NULL;
        }
        refs = r;
    }
    if (n_refs == 0)
        return server__fail(c, -EINVAL, "no features requested: set features or feature_service");
    for (size_t i = 0; i < n_refs; i++) {
        if (!refs[i].view->online)
            return server__fail(c, -EINVAL, "feature view '%s@v%u' is not online",
                                refs[i].view->name, (unsigned)refs[i].view->version);
    }

    server_resolved_t *res = server__arena_calloc(a, 1, sizeof *res);
    const char **names = server__arena_calloc(a, n_refs, sizeof *names);
    size_t *lens = server__arena_calloc(a, n_refs, sizeof *lens);
    if (res == NULL || names == NULL || lens == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n_refs; i++) {
        names[i] = column_name(a, &refs[i], versioned[i], rr->full_feature_names, &lens[i]);
        if (names[i] == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
    }
    res->n_refs = n_refs;
    res->refs = refs;
    res->names = names;
    res->name_lens = lens;
    if (server__resolved_index_names(a, res) < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    res->names_pb = server__feast_encode_names(a, names, lens, n_refs, &res->names_pb_len);
    if (res->names_pb == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    if (server__group_refs(a, refs, n_refs, &res->groups) < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    /* The views for feature_view_metadata are the groups' views (each once, in order of first
     * appearance; one catalog has one view per name and version), kept so a hit has them. */
    const server_ref_groups_t *gs = &res->groups;
    server_feast_view_md_t *views =
        server__arena_array(a, gs->n_groups == 0 ? 1 : gs->n_groups, sizeof *views);
    if (views == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t g = 0; g < gs->n_groups; g++)
        views[g] = (server_feast_view_md_t){gs->groups[g].view->name,
                                            (int32_t)gs->groups[g].view->version};
    res->views = views;
    res->n_views = gs->n_groups;
    server__ref_cache_put(cache, cat, flags, key, key_len, res);
    *out = res;
    return 0;
}

/*
 * Column names: join keys as given, then features, all in one list (metadata.feature_names),
 * so a name may appear once: a feature named like a join key would be indistinguishable from
 * the entity column, which Feast refuses too unless full_feature_names is set. The usual case
 * (feature names known to differ, no entity column among them) costs one probe per entity column;
 * anything else takes the full scan, whose first repeat names the error.
 */
static int check_names(server_call_t *c, const server_resolved_t *res, const server_columns_t *ents,
                       bool full)
{
    bool clash = !res->unique;
    for (size_t i = 0; i < ents->n_cols && !clash; i++)
        clash = server__resolved_has_name(res, ents->names[i]);
    if (!clash)
        return 0;
    size_t n_cols = ents->n_cols + res->n_refs;
    const char **names = server__arena_calloc(&c->arena, n_cols, sizeof *names);
    if (names == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ents->n_cols; i++)
        names[i] = ents->names[i];
    for (size_t i = 0; i < res->n_refs; i++)
        names[ents->n_cols + i] = res->names[i];
    size_t first = 0, second = 0;
    int dup = server__find_duplicate(&c->arena, names, n_cols, &first, &second);
    if (dup < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (dup > 0 && first >= ents->n_cols)
        return server__fail(c, -EINVAL,
                            "feature name '%s' appears twice in the response (references %zu "
                            "and %zu); set full_feature_names or remove the duplicate",
                            names[second], first - ents->n_cols, second - ents->n_cols);
    if (dup > 0 && !full)
        return server__fail(c, -EINVAL,
                            "feature '%s' (reference %zu) has the name of entity column '%s'; set "
                            "full_feature_names to name features view__feature",
                            names[second], second - ents->n_cols, names[first]);
    if (dup > 0)
        return server__fail(c, -EINVAL,
                            "feature '%s' (reference %zu) has the name of entity column '%s'; "
                            "rename the entity column",
                            names[second], second - ents->n_cols, names[first]);
    return 0;
}

/* The general path's request in the form the rest of the handler reads. Entities stay in rq
 * (entities_from_pb()). A feature list also gets the bytes the hand decoder would have noted for
 * it, the minimal encoding of its strings, so that either path finds what the other cached.
 * Returns: 0, -ENOMEM. */
static int read_request_from_pb(server_arena_t *a,
                                const Feast__Serving__GetOnlineFeaturesRequest *rq,
                                server_read_request_t *rr)
{
    memset(rr, 0, sizeof *rr);
    rr->full_feature_names = rq->full_feature_names;
    rr->include_md = rq->include_feature_view_version_metadata;
    if (rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE) {
        rr->kind = SERVER_READ_SERVICE;
        rr->service = rq->feature_service;
        rr->service_len = strlen(rq->feature_service);
    } else if (rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES &&
               rq->features != NULL) {
        size_t n = rq->features->n_val;
        size_t *lens = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
        if (lens == NULL)
            return -ENOMEM;
        size_t pb_len = 0;
        for (size_t i = 0; i < n; i++) {
            lens[i] = strlen(rq->features->val[i]);
            pb_len += server__len_field_size(lens[i]);
        }
        uint8_t *pb = server__arena_alloc(a, pb_len == 0 ? 1 : pb_len);
        if (pb == NULL)
            return -ENOMEM;
        uint8_t *p = pb;
        for (size_t i = 0; i < n; i++) {
            *p++ = SERVER_TAG(1, SERVER_WT_LEN); /* RepeatedString.val */
            p = server__put_varint(p, lens[i]);
            memcpy(p, rq->features->val[i], lens[i]);
            p += lens[i];
        }
        rr->kind = SERVER_READ_FEATURES;
        rr->features_pb = pb;
        rr->features_pb_len = pb_len;
        rr->n_features = n;
        /* Never NULL: resolve_features() would take the list for unparsed. */
        static const char *const no_features[1] = {""};
        rr->features = n > 0 ? (const char *const *)rq->features->val : no_features;
        rr->feature_lens = lens;
    }
    return 0;
}

static int entities_from_pb(server_call_t *c, const Feast__Serving__GetOnlineFeaturesRequest *rq,
                            const server_columns_limits_t *lim, server_columns_t *ents)
{
    server_arena_t *a = &c->arena;
    size_t n_ent = rq->n_entities;
    char **keys = server__arena_calloc(a, n_ent == 0 ? 1 : n_ent, sizeof *keys);
    Feast__Types__RepeatedValue **vals =
        server__arena_calloc(a, n_ent == 0 ? 1 : n_ent, sizeof *vals);
    if (keys == NULL || vals == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n_ent; i++) {
        keys[i] = rq->entities[i]->key;
        vals[i] = rq->entities[i]->value;
    }
    return server__columns_from_pb(c, "entity", n_ent, keys, vals, lim, ents);
}

/* As entities_from_pb() for a request decoded by hand: the same checks in the same order; the
 * values are already converted (the decoder takes only types that convert). */
static int entities_from_request(server_call_t *c, const server_read_request_t *rr,
                                 const server_columns_limits_t *lim, server_columns_t *ents)
{
    server_arena_t *a = &c->arena;
    size_t n = rr->n_entities;
    memset(ents, 0, sizeof *ents);
    if (n > lim->max_cols)
        return server__fail(c, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n,
                            "entity", lim->max_cols, lim->max_cols_why);
    char **keys = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *keys);
    size_t *lens = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *lens);
    const char **names = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *names);
    const catalog_value_t **cols = server__arena_alloc(a, (n == 0 ? 1 : n) * sizeof *cols);
    if (keys == NULL || lens == NULL || names == NULL || cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        keys[i] = (char *)(uintptr_t)rr->entities[i].name;
        lens[i] = rr->entities[i].n_vals;
        names[i] = rr->entities[i].name;
        cols[i] = rr->entities[i].vals;
    }
    size_t rows = 0;
    int rc = server__columns_shape(c, "entity", n, keys, lens, lim, &rows);
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
    server_arena_t *a = &c->arena;
    const server_limits_t *lim = server__call_limits(c);
    store_reader_t *reader = server__call_reader(c);
    bool reading = false;
    int rc = 0;

    /* The usual request decodes by hand; anything else goes through protobuf-c. The hand
     * decoder's second step, the feature list, waits for resolve_features(): a list seen before
     * is not parsed again. */
    server_read_request_t rr;
    Feast__Serving__GetOnlineFeaturesRequest *rq = NULL;
    const server_resolved_t *res = NULL;
    rc = server__feast_decode_read(a, req, len, &rr);
    if (rc < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (rc == 0) {
        rc = resolve_features(c, &rr, &res);
        if (rc < 0)
            return rc;
    }
    if (rc > 0) {
        rc = server__unpack(c, &feast__serving__get_online_features_request__descriptor, req, len,
                            (ProtobufCMessage **)&rq);
        if (rc < 0)
            return rc;
        rc = read_request_from_pb(a, rq, &rr);
        if (rc < 0)
            return server__fail(c, rc, "out of memory");
        /* Its list is parsed, so never 1 here. */
        rc = resolve_features(c, &rr, &res);
        assert(rc <= 0);
        if (rc < 0)
            return rc;
    }
    const catalog_feature_ref_t *refs = res->refs;
    size_t n_refs = res->n_refs;

    /* Entities: columns of equal length; an entityless read has one implicit row. */
    server_columns_limits_t ent_lim = {SERVER_MAX_ENTITY_COLUMNS, "entity columns per read",
                                       lim->max_entities, "--max-entities"};
    server_columns_t ents;
    if (rq != NULL)
        rc = entities_from_pb(c, rq, &ent_lim, &ents);
    else
        rc = entities_from_request(c, &rr, &ent_lim, &ents);
    if (rc < 0)
        return rc;
    if (ents.n_cols == 0)
        ents.n_rows = 1;
    size_t n_rows = ents.n_rows;

    rc = check_names(c, res, &ents, rr.full_feature_names);
    if (rc < 0)
        return rc;
    size_t n_cols = ents.n_cols + n_refs;
    server_feast_column_t *cols = server__arena_calloc(a, n_cols, sizeof *cols);
    if (cols == NULL)
        return server__fail(c, -ENOMEM, "out of memory");

    /* Entity columns are echoed back as given, status PRESENT, like Feast. */
    for (size_t i = 0; i < ents.n_cols; i++) {
        server_cell_t *cells = server__arena_array(a, n_rows == 0 ? 1 : n_rows, sizeof *cells);
        if (cells == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t row = 0; row < n_rows; row++) {
            server_wire_t w;
            if (rq != NULL) {
                /* Packed again: protobuf-c forgot the bytes it read. */
                const Feast__Types__Value *v = ents.pb[i]->val[row];
                w.len = feast__types__value__get_packed_size(v);
                uint8_t *buf = server__arena_alloc(a, w.len);
                if (buf == NULL)
                    return server__fail(c, -ENOMEM, "out of memory");
                feast__types__value__pack(v, buf);
                w.data = buf;
            } else {
                w = rr.entities[i].wire[row];
            }
            cells[row] = (server_cell_t){w.data, (uint32_t)w.len, STORE_STATUS_PRESENT, 0};
        }
        cols[i] = (server_feast_column_t){ents.names[i], strlen(ents.names[i]), cells};
    }

    /* Filled completely by server__read_features(): zeroing 120 KB for 100 x 50 cost more than
     * the B-tree lookups of a view. */
    server_cell_t *cells =
        server__arena_array(a, n_refs * n_rows == 0 ? 1 : n_refs * n_rows, sizeof *cells);
    if (cells == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    rc = store_read_begin(reader);
    if (rc < 0)
        return server__fail(c, rc, "store read failed: %s", strerror(-rc));
    reading = true;
    rc = server__read_features(reader, a, refs, n_refs, &res->groups, &ents, store_now_us(), cells,
                               c->msg, sizeof c->msg);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n_refs; i++) {
        cols[ents.n_cols + i] =
            (server_feast_column_t){res->names[i], res->name_lens[i], &cells[i * n_rows]};
    }

    server_feast_response_t r = {.n_rows = n_rows,
                                 .n_cols = n_cols,
                                 .cols = cols,
                                 .status = true,
                                 .names_pre = res->names_pb,
                                 .names_pre_len = res->names_pb_len,
                                 .n_names_pre = n_refs};
    if (rr.include_md) {
        r.views = res->views;
        r.n_views = res->n_views;
    }
    server_feast_vec_t *vecs = server__arena_array(a, n_cols, sizeof *vecs);
    if (vecs == NULL) {
        rc = server__fail(c, -ENOMEM, "out of memory");
        goto out;
    }
    /* Measured before anything is allocated: max_entities x max_features cells of up to
     * STORE_MAX_VALUE each could otherwise ask for gigabytes from a small request. */
    size_t total = server__feast_size(&r, vecs);
    grpc_slice s;
    rc = server__response_slice(c, "response", total, &s);
    if (rc < 0)
        goto out;
    server__feast_write(&r, vecs, GRPC_SLICE_START_PTR(s));
    *resp = s;
out:
    if (reading)
        store_read_end(reader);
    return rc;
}
