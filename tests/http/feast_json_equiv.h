/* tests/http/feast_json_equiv.h - the hand-written /get-online-features decoder held against
 * jansson. */
#ifndef TESTS_HTTP_FEAST_JSON_EQUIV_H
#define TESTS_HTTP_FEAST_JSON_EQUIV_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "catalog/catalog.h"
#include "http/http_int.h"

/*
 * Decodes buf with http__feast_read_decode() and, when it accepts, with jansson as the route's
 * general path reads a body (JSON_REJECT_DUPLICATES; "entities" an object of arrays, required;
 * "features" an array of strings, "feature_service" a string, "full_feature_names" a boolean,
 * each null as absent; the service over the features; entity values typed by their JSON), and
 * compares everything the route uses: the kind of list, the service, every reference, the flag,
 * every entity column's name (in order) and values. Shared by the unit test and the fuzzer.
 * Returns: 0 when the decoder declined, 1 when it accepted and jansson agrees, -1 on a
 *          disagreement (described in why).
 */
static int feast_json_equiv(const uint8_t *buf, size_t len, base_arena_t *a, char *why,
                            size_t why_cap)
{
    http__feast_read_t fr;
    int d = http__feast_read_decode(a, buf, len, &fr);
    if (d == 0 && fr.list.kind == CORE_LIST_FEATURES) {
        if (fr.list.refs != NULL) {
            snprintf(why, why_cap, "the first step parsed the feature list");
            return -1;
        }
        d = http__feast_read_features(a, &fr.list);
    }
    if (d == CORE_DECLINED)
        return 0;
    if (d != 0) {
        snprintf(why, why_cap, "decoder returned %d", d);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (root == NULL || !json_is_object(root)) {
        snprintf(why, why_cap, "accepted what jansson refuses: %s",
                 root ? "not an object" : jerr.text);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "features") != 0 && strcmp(key, "feature_service") != 0 &&
            strcmp(key, "entities") != 0 && strcmp(key, "full_feature_names") != 0) {
            snprintf(why, why_cap, "accepted a body with the member '%s'", key);
            goto out;
        }
    }
    json_t *feats = json_object_get(root, "features"),
           *svc = json_object_get(root, "feature_service");
    json_t *full = json_object_get(root, "full_feature_names"),
           *ents = json_object_get(root, "entities");
    if (feats != NULL && json_is_null(feats))
        feats = NULL;
    if (svc != NULL && json_is_null(svc))
        svc = NULL;
    if (full != NULL && json_is_null(full))
        full = NULL;
    if ((feats != NULL && !json_is_array(feats)) || (svc != NULL && !json_is_string(svc)) ||
        (full != NULL && !json_is_boolean(full)) || !json_is_object(ents)) {
        snprintf(why, why_cap, "accepted a member of the wrong kind");
        goto out;
    }
    if (fr.list.full_names != (full != NULL && json_is_true(full))) {
        snprintf(why, why_cap, "full_feature_names differs");
        goto out;
    }
    if (svc != NULL) {
        if (fr.list.kind != CORE_LIST_SERVICE || fr.list.service_len != json_string_length(svc) ||
            memcmp(fr.list.service, json_string_value(svc), fr.list.service_len) != 0 ||
            fr.list.service[fr.list.service_len] != '\0') {
            snprintf(why, why_cap, "the feature service differs");
            goto out;
        }
    } else if (feats != NULL) {
        if (fr.list.kind != CORE_LIST_FEATURES || fr.list.n_refs != json_array_size(feats)) {
            snprintf(why, why_cap, "the feature list differs in kind or length");
            goto out;
        }
        for (size_t i = 0; i < fr.list.n_refs; i++) {
            json_t *s = json_array_get(feats, i);
            if (!json_is_string(s) || fr.list.ref_lens[i] != json_string_length(s) ||
                memcmp(fr.list.refs[i], json_string_value(s), fr.list.ref_lens[i]) != 0) {
                snprintf(why, why_cap, "features[%zu] differs", i);
                goto out;
            }
        }
    } else if (fr.list.kind != CORE_LIST_NONE) {
        snprintf(why, why_cap, "a list where jansson has none");
        goto out;
    }
    if (fr.entities.n_cols != json_object_size(ents)) {
        snprintf(why, why_cap, "%zu entity columns, jansson %zu", fr.entities.n_cols,
                 json_object_size(ents));
        goto out;
    }
    size_t c = 0;
    json_object_foreach(ents, key, val)
    {
        if (strcmp(fr.entities.names[c], key) != 0 || !json_is_array(val) ||
            fr.entity_rows[c] != json_array_size(val)) {
            snprintf(why, why_cap, "entity column %zu ('%.40s') differs in name or length", c, key);
            goto out;
        }
        for (size_t i = 0; i < fr.entity_rows[c]; i++) {
            catalog_value_t want;
            char vwhy[256];
            if (catalog_value_from_json(json_array_get(val, i), CATALOG_DTYPE_INVALID, 0, a, &want,
                                        vwhy, sizeof vwhy) != 0) {
                snprintf(why, why_cap, "accepted entity %s[%zu], which jansson's path refuses: %s",
                         key, i, vwhy);
                goto out;
            }
            const catalog_value_t *got = &fr.entities.cols[c][i];
            bool same = got->type == want.type;
            if (same && want.type == CATALOG_DTYPE_INT64)
                same = got->u.i64 == want.u.i64;
            else if (same && want.type == CATALOG_DTYPE_BOOL)
                same = got->u.b == want.u.b;
            else if (same && want.type == CATALOG_DTYPE_STRING)
                same = got->u.bytes.len == want.u.bytes.len &&
                       memcmp(got->u.bytes.data, want.u.bytes.data, want.u.bytes.len) == 0;
            else if (same && want.type != CATALOG_DTYPE_NULL)
                same = false; /* a type the decoder never makes */
            if (!same) {
                snprintf(why, why_cap, "entity %s[%zu] differs", key, i);
                goto out;
            }
        }
        c++;
    }
    rc = 1;
out:
    json_decref(root);
    return rc;
}

#endif /* TESTS_HTTP_FEAST_JSON_EQUIV_H */
