/* tests/codec/decode_equiv.h - the hand-written request decoder held against protobuf-c. */
#ifndef TESTS_CODEC_DECODE_EQUIV_H
#define TESTS_CODEC_DECODE_EQUIV_H

#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "core/core_int.h"

#include "feast/serving/ServingService.pb-c.h"

/*
 * Decodes buf with codec_feast_decode_read() and, when it accepts, with protobuf-c and the
 * general path's checks, and compares everything the handler reads: the kind of list and its
 * strings, the flags, every entity column's name, converted values and echoed Value bytes (which
 * must be what protobuf-c packs). Shared by the unit test and the fuzzer.
 * Returns: 0 when the decoder declined, 1 when it accepted and both agree, -1 on a disagreement
 *          (described in why).
 */
static int decode_equiv(const uint8_t *buf, size_t len, base_arena_t *a, char *why, size_t why_cap)
{
    codec_read_request_t rr;
    int d = codec_feast_decode_read(a, buf, len, &rr);
    if (d == 0 && rr.list.kind == CORE_LIST_FEATURES) {
        if (rr.list.refs != NULL) {
            snprintf(why, why_cap, "the first step parsed the feature list");
            return -1;
        }
        d = codec_feast_decode_features(a, &rr.list);
    }
    if (d == 1)
        return 0;
    if (d != 0) {
        snprintf(why, why_cap, "decoder returned %d", d);
        return -1;
    }
    Feast__Serving__GetOnlineFeaturesRequest *rq =
        feast__serving__get_online_features_request__unpack(
            codec_allocator(a, &(ProtobufCAllocator){0}), len, buf);
    if (rq == NULL) {
        snprintf(why, why_cap, "accepted, but protobuf-c cannot unpack it");
        return -1;
    }
    char msg[200];
    if (codec_check_strings(&feast__serving__get_online_features_request__descriptor, buf, len, msg,
                            sizeof msg) < 0) {
        snprintf(why, why_cap, "accepted, but the string check refuses it: %s", msg);
        return -1;
    }
    if (rr.list.full_names != (rq->full_feature_names != 0) ||
        rr.include_md != (rq->include_feature_view_version_metadata != 0)) {
        snprintf(why, why_cap, "flags differ");
        return -1;
    }
    switch (rq->kind_case) {
    case FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURE_SERVICE:
        if (rr.list.kind != CORE_LIST_SERVICE ||
            strcmp(rr.list.service, rq->feature_service) != 0) {
            snprintf(why, why_cap, "feature_service differs");
            return -1;
        }
        break;
    case FEAST__SERVING__GET_ONLINE_FEATURES_REQUEST__KIND_FEATURES:
        if (rr.list.kind != CORE_LIST_FEATURES || rq->features == NULL ||
            rr.list.n_refs != rq->features->n_val) {
            snprintf(why, why_cap, "features differ");
            return -1;
        }
        for (size_t i = 0; i < rr.list.n_refs; i++) {
            const char *s = rq->features->val[i];
            if (strlen(s) != rr.list.ref_lens[i] || memcmp(s, rr.list.refs[i], strlen(s)) != 0) {
                snprintf(why, why_cap, "feature %zu differs", i);
                return -1;
            }
        }
        /* The noted bytes, the worker cache's key, must be the list as protobuf-c packs it:
         * then one list has one key. */
        {
            size_t plen = feast__serving__feature_list__get_packed_size(rq->features);
            uint8_t *packed = base_arena_alloc(a, plen + 1);
            feast__serving__feature_list__pack(rq->features, packed);
            if (plen != rr.list.key_len || (plen > 0 && memcmp(packed, rr.list.key, plen) != 0)) {
                snprintf(why, why_cap, "the feature list's bytes are not protobuf-c's packing");
                return -1;
            }
        }
        break;
    default:
        if (rr.list.kind != CORE_LIST_NONE) {
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
        const codec_read_column_t *col = &rr.entities[i];
        const Feast__Serving__GetOnlineFeaturesRequest__EntitiesEntry *e = rq->entities[i];
        size_t n = e->value != NULL ? e->value->n_val : 0;
        if (strcmp(col->name, e->key) != 0 || col->n_vals != n) {
            snprintf(why, why_cap, "entity column %zu differs", i);
            return -1;
        }
        for (size_t k = 0; k < n; k++) {
            const Feast__Types__Value *pb = e->value->val[k];
            catalog_value_t v;
            if (codec_value_from_pb(pb, a, &v, msg, sizeof msg) != 0 ||
                !catalog_value_equal(&v, &col->vals[k])) {
                snprintf(why, why_cap, "entity column %zu, value %zu differs", i, k);
                return -1;
            }
            size_t plen = feast__types__value__get_packed_size(pb);
            uint8_t *packed = base_arena_alloc(a, plen + 1);
            feast__types__value__pack(pb, packed);
            if (plen != col->wire[k].len ||
                (plen > 0 && memcmp(packed, col->wire[k].data, plen) != 0)) {
                snprintf(why, why_cap, "entity column %zu, value %zu: echoed bytes differ", i, k);
                return -1;
            }
        }
    }
    /* request_context: the same values as protobuf-c reads (never echoed). */
    if (rr.n_request != rq->n_request_context) {
        snprintf(why, why_cap, "%zu request_context columns, protobuf-c has %zu", rr.n_request,
                 rq->n_request_context);
        return -1;
    }
    for (size_t i = 0; i < rr.n_request; i++) {
        const codec_read_column_t *col = &rr.request[i];
        const Feast__Serving__GetOnlineFeaturesRequest__RequestContextEntry *e =
            rq->request_context[i];
        size_t n = e->value != NULL ? e->value->n_val : 0;
        if (strcmp(col->name, e->key) != 0 || col->n_vals != n) {
            snprintf(why, why_cap, "request_context column %zu differs", i);
            return -1;
        }
        for (size_t k = 0; k < n; k++) {
            catalog_value_t v;
            if (codec_value_from_pb(e->value->val[k], a, &v, msg, sizeof msg) != 0 ||
                !catalog_value_equal(&v, &col->vals[k])) {
                snprintf(why, why_cap, "request_context column %zu, value %zu differs", i, k);
                return -1;
            }
        }
    }
    return 1;
}

#endif /* TESTS_CODEC_DECODE_EQUIV_H */
