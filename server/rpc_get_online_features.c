/* server/rpc_get_online_features.c - GetOnlineFeatures (Feast's and fstore's paths, one handler).
 */
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
 * when the reference named a version, so two versions side by side stay apart). */
static char *column_name(server_arena_t *a, const catalog_feature_ref_t *ref, bool versioned,
                         bool full)
{
    char buf[2 * CATALOG_MAX_NAME + 32];
    if (!full)
        return server__arena_strndup(a, ref->feature->name, strlen(ref->feature->name));
    int n;
    if (versioned)
        n = snprintf(buf, sizeof buf, "%s@v%u__%s", ref->view->name, (unsigned)ref->view->version,
                     ref->feature->name);
    else
        n = snprintf(buf, sizeof buf, "%s__%s", ref->view->name, ref->feature->name);
    return server__arena_strndup(a, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

int server__rpc_get_online_features(server_call_t *c, const uint8_t *req, size_t len,
                                    grpc_slice *resp)
{
    server_arena_t *a = &c->arena;
    const server_limits_t *lim = server__call_limits(c);
    const catalog_t *cat = c->catalog;
    store_reader_t *reader = server__call_reader(c);
    bool reading = false;
    int rc = 0;

    Feast__Serving__GetOnlineFeaturesRequest *rq =
        feast__serving__get_online_features_request__unpack(server__arena_allocator(a), len, req);
    if (rq == NULL)
        return server__fail(c, -EINVAL, "malformed GetOnlineFeaturesRequest");
    char why[200];
    if (server__pb_check_strings(&feast__serving__get_online_features_request__descriptor, req, len,
                                 why, sizeof why) < 0)
        return server__fail(c, -EINVAL, "malformed GetOnlineFeaturesRequest: %s", why);

    /* Features: a service's resolved list, or each reference resolved here. */
    const catalog_feature_ref_t *refs = NULL;
    bool *versioned = NULL;
    size_t n_refs = 0;
    if (rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE) {
        const catalog_service_t *svc = NULL;
        if (catalog_find_service(cat, rq->feature_service, &svc) < 0)
            return server__fail(c, -ENOENT, "feature service '%.200s' not found",
                                rq->feature_service);
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
    } else if (rq->kind_case == FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES &&
               rq->features != NULL) {
        n_refs = rq->features->n_val;
        if (n_refs > lim->max_features)
            return server__fail(c, -E2BIG,
                                "request asks for %zu features; the limit is %zu "
                                "(--max-features)",
                                n_refs, lim->max_features);
        catalog_feature_ref_t *r = server__arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *r);
        versioned = server__arena_calloc(a, n_refs == 0 ? 1 : n_refs, sizeof *versioned);
        if (r == NULL || versioned == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_refs; i++) {
            const char *ref = rq->features->val[i];
            rc = resolve_ref(c, cat, ref, &r[i]);
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

    /* Entities: columns of equal length; an entityless read has one implicit row. */
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
    server_columns_limits_t ent_lim = {SERVER_MAX_ENTITY_COLUMNS, "entity columns per read",
                                       lim->max_entities, "--max-entities"};
    server_columns_t ents;
    rc = server__columns_from_pb(c, "entity", n_ent, keys, vals, &ent_lim, &ents);
    if (rc < 0)
        return rc;
    if (ents.n_cols == 0)
        ents.n_rows = 1;
    size_t n_rows = ents.n_rows;

    /* Column names: join keys as given, then features, all in one list (metadata.feature_names),
     * so a name may appear once: a feature named like a join key would be indistinguishable from
     * the entity column, which Feast refuses too unless full_feature_names is set. */
    size_t n_cols = ents.n_cols + n_refs;
    server_feast_column_t *cols = server__arena_calloc(a, n_cols, sizeof *cols);
    const char **names = server__arena_calloc(a, n_cols, sizeof *names);
    if (cols == NULL || names == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ents.n_cols; i++)
        names[i] = ents.names[i];
    const char **fnames = &names[ents.n_cols];
    for (size_t i = 0; i < n_refs; i++) {
        fnames[i] = column_name(a, &refs[i], versioned[i], rq->full_feature_names);
        if (fnames[i] == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
    }
    size_t first = 0, second = 0;
    int dup = server__find_duplicate(a, names, n_cols, &first, &second);
    if (dup < 0)
        return server__fail(c, -ENOMEM, "out of memory");
    if (dup > 0 && first >= ents.n_cols)
        return server__fail(c, -EINVAL,
                            "feature name '%s' appears twice in the response (references %zu "
                            "and %zu); set full_feature_names or remove the duplicate",
                            names[second], first - ents.n_cols, second - ents.n_cols);
    if (dup > 0 && !rq->full_feature_names)
        return server__fail(c, -EINVAL,
                            "feature '%s' (reference %zu) has the name of entity column '%s'; set "
                            "full_feature_names to name features view__feature",
                            names[second], second - ents.n_cols, names[first]);
    if (dup > 0)
        return server__fail(c, -EINVAL,
                            "feature '%s' (reference %zu) has the name of entity column '%s'; "
                            "rename the entity column",
                            names[second], second - ents.n_cols, names[first]);

    /* Entity columns are echoed back as given, status PRESENT, like Feast. */
    for (size_t i = 0; i < ents.n_cols; i++) {
        server_cell_t *cells = server__arena_calloc(a, n_rows, sizeof *cells);
        if (cells == NULL)
            return server__fail(c, -ENOMEM, "out of memory");
        for (size_t row = 0; row < n_rows; row++) {
            const Feast__Types__Value *v = ents.pb[i]->val[row];
            size_t vlen = feast__types__value__get_packed_size(v);
            uint8_t *buf = server__arena_alloc(a, vlen);
            if (buf == NULL)
                return server__fail(c, -ENOMEM, "out of memory");
            feast__types__value__pack(v, buf);
            cells[row] = (server_cell_t){buf, (uint32_t)vlen, STORE_STATUS_PRESENT, 0};
        }
        cols[i] = (server_feast_column_t){ents.names[i], strlen(ents.names[i]), cells};
    }

    server_cell_t *cells = server__arena_calloc(a, n_refs * n_rows, sizeof *cells);
    if (cells == NULL)
        return server__fail(c, -ENOMEM, "out of memory");
    rc = store_read_begin(reader);
    if (rc < 0)
        return server__fail(c, rc, "store read failed: %s", strerror(-rc));
    reading = true;
    rc = server__read_features(reader, a, refs, n_refs, &ents, store_now_us(), cells, c->msg,
                               sizeof c->msg);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n_refs; i++) {
        cols[ents.n_cols + i] =
            (server_feast_column_t){fnames[i], strlen(fnames[i]), &cells[i * n_rows]};
    }

    server_feast_response_t r = {.n_rows = n_rows, .n_cols = n_cols, .cols = cols, .status = true};
    if (rq->include_feature_view_version_metadata) {
        server_feast_view_md_t *views = server__arena_calloc(a, n_refs, sizeof *views);
        if (views == NULL) {
            rc = server__fail(c, -ENOMEM, "out of memory");
            goto out;
        }
        size_t nv = 0;
        for (size_t i = 0; i < n_refs; i++) {
            size_t k = 0;
            while (k < nv && !(strcmp(views[k].name, refs[i].view->name) == 0 &&
                               views[k].version == (int32_t)refs[i].view->version))
                k++;
            if (k == nv)
                views[nv++] =
                    (server_feast_view_md_t){refs[i].view->name, (int32_t)refs[i].view->version};
        }
        r.views = views;
        r.n_views = nv;
    }
    size_t *vec_sizes = server__arena_calloc(a, n_cols, sizeof *vec_sizes);
    if (vec_sizes == NULL) {
        rc = server__fail(c, -ENOMEM, "out of memory");
        goto out;
    }
    /* Measured before anything is allocated: max_entities x max_features cells of up to
     * STORE_MAX_VALUE each could otherwise ask for gigabytes from a small request. */
    size_t total = server__feast_size(&r, vec_sizes);
    grpc_slice s;
    rc = server__response_slice(c, "response", total, &s);
    if (rc < 0)
        goto out;
    server__feast_write(&r, vec_sizes, GRPC_SLICE_START_PTR(s));
    *resp = s;
out:
    if (reading)
        store_read_end(reader);
    return rc;
}
