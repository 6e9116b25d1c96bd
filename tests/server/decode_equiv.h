/* tests/server/decode_equiv.h - the hand-written request decoder held against protobuf-c. */
#ifndef TESTS_SERVER_DECODE_EQUIV_H
#define TESTS_SERVER_DECODE_EQUIV_H

#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

#include "feast/serving/ServingService.pb-c.h"

/*
 * Decodes buf with server__feast_decode_read() and, when it accepts, with protobuf-c and the
 * general path's checks, and compares everything the handler reads: the kind of list and its
 * strings, the flags, every entity column's name, converted values and echoed Value bytes (which
 * must be what protobuf-c packs). Shared by the unit test and the fuzzer.
 * Returns: 0 when the decoder declined, 1 when it accepted and both agree, -1 on a disagreement
 *          (described in why).
 */
static int decode_equiv(const uint8_t *buf, size_t len, server_arena_t *a, char *why,
                        size_t why_cap)
{
    server_read_request_t rr;
    int d = server__feast_decode_read(a, buf, len, &rr);
    if (d == 0 && rr.kind == SERVER_READ_FEATURES) {
        if (rr.features != NULL) {
            snprintf(why, why_cap, "the first step parsed the feature list");
            return -1;
        }
        d = server__feast_decode_features(a, &rr);
    }
    if (d == 1)
        return 0;
    if (d != 0) {
        snprintf(why, why_cap, "decoder returned %d", d);
        return -1;
    }
    Feast__Serving__GetOnlineFeaturesRequest *rq =
        feast__serving__get_online_features_request__unpack(server__arena_allocator(a), len, buf);
    if (rq == NULL) {
        snprintf(why, why_cap, "accepted, but protobuf-c cannot unpack it");
        return -1;
    }
    char msg[200];
    if (server__pb_check_strings(&feast__serving__get_online_features_request__descriptor, buf, len,
                                 msg, sizeof msg) < 0) {
        snprintf(why, why_cap, "accepted, but the string check refuses it: %s", msg);
        return -1;
    }
    if (rr.full_feature_names != (rq->full_feature_names != 0) ||
        rr.include_md != (rq->include_feature_view_version_metadata != 0)) {
        snprintf(why, why_cap, "flags differ");
        return -1;
    }
    if (rq->n_request_context != 0) {
        snprintf(why, why_cap, "accepted a request_context");
        return -1;
    }
    switch (rq->kind_case) {
    case FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE:
        if (rr.kind != SERVER_READ_SERVICE || strcmp(rr.service, rq->feature_service) != 0) {
            snprintf(why, why_cap, "feature_service differs");
            return -1;
        }
        break;
    case FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES:
        if (rr.kind != SERVER_READ_FEATURES || rq->features == NULL ||
            rr.n_features != rq->features->n_val) {
            snprintf(why, why_cap, "features differ");
            return -1;
        }
        for (size_t i = 0; i < rr.n_features; i++) {
            const char *s = rq->features->val[i];
            if (strlen(s) != rr.feature_lens[i] || memcmp(s, rr.features[i], strlen(s)) != 0) {
                snprintf(why, why_cap, "feature %zu differs", i);
                return -1;
            }
        }
        /* The noted bytes, the worker cache's key, must be the list as protobuf-c packs it:
         * then one list has one key. */
        {
            size_t plen = feast__serving__feature_list__get_packed_size(rq->features);
            uint8_t *packed = server__arena_alloc(a, plen + 1);
            feast__serving__feature_list__pack(rq->features, packed);
            if (plen != rr.features_pb_len ||
                (plen > 0 && memcmp(packed, rr.features_pb, plen) != 0)) {
                snprintf(why, why_cap, "the feature list's bytes are not protobuf-c's packing");
                return -1;
            }
        }
        break;
    default:
        if (rr.kind != SERVER_READ_NONE) {
            snprintf(why, why_cap, "kind differs");
            return -1;
        }
    }
    if (rr.n_entities != rq->n_entities) {
        snprintf(why, why_cap, "%zu entity columns, protobuf-c has %zu", rr.n_entities,
                 rq->n_entities);
        return -1;
    }
    for (size_t i = 0; i < rr.n_entities; i++) {
        const server_read_column_t *col = &rr.entities[i];
        const Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *e = rq->entities[i];
        size_t n = e->value != NULL ? e->value->n_val : 0;
        if (strcmp(col->name, e->key) != 0 || col->n_vals != n) {
            snprintf(why, why_cap, "entity column %zu differs", i);
            return -1;
        }
        for (size_t k = 0; k < n; k++) {
            const Feast__Types__Value *pb = e->value->val[k];
            catalog_value_t v;
            if (server__value_from_pb(pb, a, &v, msg, sizeof msg) != 0 ||
                !catalog_value_equal(&v, &col->vals[k])) {
                snprintf(why, why_cap, "entity column %zu, value %zu differs", i, k);
                return -1;
            }
            size_t plen = feast__types__value__get_packed_size(pb);
            uint8_t *packed = server__arena_alloc(a, plen + 1);
            feast__types__value__pack(pb, packed);
            if (plen != col->wire[k].len ||
                (plen > 0 && memcmp(packed, col->wire[k].data, plen) != 0)) {
                snprintf(why, why_cap, "entity column %zu, value %zu: echoed bytes differ", i, k);
                return -1;
            }
        }
    }
    return 1;
}

#endif /* TESTS_SERVER_DECODE_EQUIV_H */
