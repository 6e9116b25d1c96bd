/* codec/catalog_pb.c - the catalog as fstore.v1.GetCatalogResponse (protobuf-c messages). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

/*
 * The catalog in structured form, for tools. Every message lives in the arena; strings point into
 * the catalog, which must outlive the packing.
 */

#define NEW(a, T, init, out)                                                                       \
    do {                                                                                           \
        (out) = base_arena_alloc((a), sizeof(T));                                                  \
        if ((out) == NULL)                                                                         \
            return -ENOMEM;                                                                        \
        init(out);                                                                                 \
    } while (0)

#define ARRAY(a, n, out)                                                                           \
    do {                                                                                           \
        (out) = base_arena_calloc((a), (n) == 0 ? 1 : (n), sizeof *(out));                         \
        if ((out) == NULL)                                                                         \
            return -ENOMEM;                                                                        \
    } while (0)

/* protobuf-c wants char *; these strings are only read while packing. */
static char *s_(const char *s)
{
    return (char *)(uintptr_t)(s != NULL ? s : "");
}

static int tags(base_arena_t *a, const catalog_tag_t *in, size_t n, Fstore__V1__CatalogTag ***out,
                size_t *n_out)
{
    Fstore__V1__CatalogTag **arr;
    ARRAY(a, n, arr);
    for (size_t i = 0; i < n; i++) {
        NEW(a, Fstore__V1__CatalogTag, fstore__v1__catalog_tag__init, arr[i]);
        arr[i]->key = s_(in[i].key);
        arr[i]->value = s_(in[i].value);
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int join_keys(base_arena_t *a, const catalog_join_key_t *in, size_t n,
                     Fstore__V1__CatalogJoinKey ***out, size_t *n_out)
{
    Fstore__V1__CatalogJoinKey **arr;
    ARRAY(a, n, arr);
    for (size_t i = 0; i < n; i++) {
        NEW(a, Fstore__V1__CatalogJoinKey, fstore__v1__catalog_join_key__init, arr[i]);
        arr[i]->name = s_(in[i].name);
        arr[i]->dtype = (Feast__Types__ValueType__Enum)in[i].dtype;
    }
    *out = arr;
    *n_out = n;
    return 0;
}

static int feature(base_arena_t *a, const catalog_feature_t *f, Fstore__V1__CatalogFeature **out)
{
    Fstore__V1__CatalogFeature *m;
    NEW(a, Fstore__V1__CatalogFeature, fstore__v1__catalog_feature__init, m);
    m->name = s_(f->name);
    m->dtype = (Feast__Types__ValueType__Enum)f->dtype;
    m->description = s_(f->description);
    if (tags(a, f->tags, f->n_tags, &m->tags, &m->n_tags) < 0)
        return -ENOMEM;
    m->has_default = f->has_default;
    m->expression = s_(f->expression);
    if (f->has_default) {
        NEW(a, Feast__Types__Value, feast__types__value__init, m->default_value);
        if (codec_value_to_pb(&f->default_value, a, m->default_value) < 0)
            return -ENOMEM;
    }
    Fstore__V1__CatalogValidation *v;
    NEW(a, Fstore__V1__CatalogValidation, fstore__v1__catalog_validation__init, v);
    const catalog_validation_t *in = &f->validation;
    v->not_null = in->not_null;
    v->has_min = in->has_min;
    v->min = in->min;
    v->has_max = in->has_max;
    v->max = in->max;
    v->max_length = in->max_length;
    v->pattern = s_(in->pattern);
    ARRAY(a, in->n_allowed, v->allowed_values);
    for (size_t i = 0; i < in->n_allowed; i++) {
        NEW(a, Feast__Types__Value, feast__types__value__init, v->allowed_values[i]);
        if (codec_value_to_pb(&in->allowed_values[i], a, v->allowed_values[i]) < 0)
            return -ENOMEM;
    }
    v->n_allowed_values = in->n_allowed;
    m->validation = v;
    *out = m;
    return 0;
}

static int view(base_arena_t *a, const catalog_view_t *v, Fstore__V1__CatalogFeatureView **out)
{
    Fstore__V1__CatalogFeatureView *m;
    NEW(a, Fstore__V1__CatalogFeatureView, fstore__v1__catalog_feature_view__init, m);
    m->name = s_(v->name);
    m->version = v->version;
    m->is_default = v->is_default;
    ARRAY(a, v->n_entities, m->entities);
    for (size_t i = 0; i < v->n_entities; i++)
        m->entities[i] = s_(v->entities[i]->name);
    m->n_entities = v->n_entities;
    if (join_keys(a, v->join_keys, v->n_join_keys, &m->join_keys, &m->n_join_keys) < 0)
        return -ENOMEM;
    m->ttl_seconds = v->ttl_seconds;
    m->online = v->online;
    ARRAY(a, v->n_features, m->features);
    for (size_t i = 0; i < v->n_features; i++) {
        if (feature(a, &v->features[i], &m->features[i]) < 0)
            return -ENOMEM;
    }
    m->n_features = v->n_features;
    m->description = s_(v->description);
    m->owner = s_(v->owner);
    if (tags(a, v->tags, v->n_tags, &m->tags, &m->n_tags) < 0)
        return -ENOMEM;
    m->lineage_source = s_(v->lineage_source);
    m->lineage_transformation = s_(v->lineage_transformation);
    m->push_source = s_(v->push_source);
    const catalog_on_demand_t *od = v->on_demand;
    if (od != NULL) {
        m->on_demand = true;
        size_t n = od->n_views + od->n_requests;
        ARRAY(a, n, m->sources);
        for (size_t i = 0; i < od->n_views; i++) {
            char buf[CATALOG_MAX_NAME + 16];
            int len = snprintf(buf, sizeof buf, "%s@v%u", od->views[i]->name,
                               (unsigned)od->views[i]->version);
            m->sources[i] = base_arena_strndup(a, buf, (size_t)len);
            if (m->sources[i] == NULL)
                return -ENOMEM;
        }
        for (size_t i = 0; i < od->n_requests; i++)
            m->sources[od->n_views + i] = s_(od->requests[i]->name);
        m->n_sources = n;
    }
    *out = m;
    return 0;
}

static int service(base_arena_t *a, const catalog_service_t *s,
                   Fstore__V1__CatalogFeatureService **out)
{
    Fstore__V1__CatalogFeatureService *m;
    NEW(a, Fstore__V1__CatalogFeatureService, fstore__v1__catalog_feature_service__init, m);
    m->name = s_(s->name);
    m->description = s_(s->description);
    ARRAY(a, s->n_features, m->features);
    for (size_t i = 0; i < s->n_features; i++) {
        const catalog_feature_ref_t *r = &s->features[i];
        char buf[3 * CATALOG_MAX_NAME];
        int n = snprintf(buf, sizeof buf, "%s@v%u:%s", r->view->name, (unsigned)r->view->version,
                         r->feature->name);
        m->features[i] = base_arena_strndup(a, buf, (size_t)n < sizeof buf ? (size_t)n : 0);
        if (m->features[i] == NULL)
            return -ENOMEM;
    }
    m->n_features = s->n_features;
    *out = m;
    return 0;
}

static int model(base_arena_t *a, const catalog_model_t *md, Fstore__V1__CatalogModel **out)
{
    Fstore__V1__CatalogModel *m;
    NEW(a, Fstore__V1__CatalogModel, fstore__v1__catalog_model__init, m);
    m->name = s_(md->name);
    m->version = md->version;
    m->version_label = s_(md->version_label);
    m->feature_service = s_(md->service != NULL ? md->service->name : "");
    ARRAY(a, md->n_entity_inputs, m->entity_inputs);
    for (size_t i = 0; i < md->n_entity_inputs; i++) {
        NEW(a, Fstore__V1__CatalogEntityInput, fstore__v1__catalog_entity_input__init,
            m->entity_inputs[i]);
        m->entity_inputs[i]->input = s_(md->entity_inputs[i].input);
        m->entity_inputs[i]->join_key = s_(md->entity_inputs[i].join_key);
    }
    m->n_entity_inputs = md->n_entity_inputs;
    m->on_missing = s_(md->on_missing == CATALOG_ON_MISSING_ZERO ? "zero" : "error");
    if (md->has_upstream) {
        NEW(a, Fstore__V1__CatalogUpstream, fstore__v1__catalog_upstream__init, m->upstream);
        m->upstream->target = s_(md->upstream.target);
        m->upstream->model_name = s_(md->upstream.model_name);
        m->upstream->signature_name = s_(md->upstream.signature_name);
        m->upstream->timeout_ms = md->upstream.timeout_ms;
        m->upstream->keep_entity_inputs = md->upstream.keep_entity_inputs;
        m->upstream->tls = md->upstream.tls;
    }
    *out = m;
    return 0;
}

int codec_catalog_to_pb(const catalog_t *cat, base_arena_t *a, Fstore__V1__GetCatalogResponse *out)
{
    out->project = s_(catalog_project(cat));
    out->digest = s_(catalog_digest(cat));
    size_t n = catalog_entity_count(cat);
    ARRAY(a, n, out->entities);
    for (size_t i = 0; i < n; i++) {
        const catalog_entity_t *e = catalog_entity_at(cat, i);
        Fstore__V1__CatalogEntity *m;
        NEW(a, Fstore__V1__CatalogEntity, fstore__v1__catalog_entity__init, m);
        m->name = s_(e->name);
        m->description = s_(e->description);
        if (join_keys(a, e->join_keys, e->n_join_keys, &m->join_keys, &m->n_join_keys) < 0 ||
            tags(a, e->tags, e->n_tags, &m->tags, &m->n_tags) < 0)
            return -ENOMEM;
        out->entities[i] = m;
    }
    out->n_entities = n;
    n = catalog_view_count(cat);
    ARRAY(a, n, out->feature_views);
    for (size_t i = 0; i < n; i++) {
        if (view(a, catalog_view_at(cat, i), &out->feature_views[i]) < 0)
            return -ENOMEM;
    }
    out->n_feature_views = n;
    n = catalog_on_demand_count(cat);
    ARRAY(a, n, out->on_demand_feature_views);
    for (size_t i = 0; i < n; i++) {
        if (view(a, catalog_on_demand_at(cat, i), &out->on_demand_feature_views[i]) < 0)
            return -ENOMEM;
    }
    out->n_on_demand_feature_views = n;
    n = catalog_request_source_count(cat);
    ARRAY(a, n, out->request_sources);
    for (size_t i = 0; i < n; i++) {
        const catalog_request_source_t *rs = catalog_request_source_at(cat, i);
        Fstore__V1__CatalogRequestSource *m;
        NEW(a, Fstore__V1__CatalogRequestSource, fstore__v1__catalog_request_source__init, m);
        m->name = s_(rs->name);
        m->description = s_(rs->description);
        ARRAY(a, rs->n_fields, m->fields);
        for (size_t f = 0; f < rs->n_fields; f++) {
            Fstore__V1__CatalogRequestField *fm;
            NEW(a, Fstore__V1__CatalogRequestField, fstore__v1__catalog_request_field__init, fm);
            fm->name = s_(rs->fields[f].name);
            fm->dtype = (Feast__Types__ValueType__Enum)rs->fields[f].dtype;
            m->fields[f] = fm;
        }
        m->n_fields = rs->n_fields;
        out->request_sources[i] = m;
    }
    out->n_request_sources = n;
    n = catalog_service_count(cat);
    ARRAY(a, n, out->feature_services);
    for (size_t i = 0; i < n; i++) {
        if (service(a, catalog_service_at(cat, i), &out->feature_services[i]) < 0)
            return -ENOMEM;
    }
    out->n_feature_services = n;
    n = catalog_model_count(cat);
    ARRAY(a, n, out->models);
    for (size_t i = 0; i < n; i++) {
        if (model(a, catalog_model_at(cat, i), &out->models[i]) < 0)
            return -ENOMEM;
    }
    out->n_models = n;
    return 0;
}
