/* storage/record.c - the per-entity record: layout, parsing, merging, and feature reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "storage/store_int.h"

/*
 * One LMDB value per (view version, entity key): a store__rec_header_t (store_int.h, whose
 * offsets the code names: STORE__REC_N_SLOTS, ...), the offset table, the data.
 *
 *   offset  size      field
 *   0       1         format (STORE__REC_FORMAT = 2)
 *   1       1         flags: STORE__REC_TOMBSTONE for a deleted row (then n_slots is 0)
 *   2       2         reserved (0)
 *   4       4         n_slots, little-endian
 *   8       8         event_ts_us, little-endian int64: the row's event time (LWW and TTL)
 *   16      8         created_ts_us: the write time (taken at commit)
 *   24      4*n       end offset of each slot's bytes within the data area (slot i spans
 *                     [end[i-1], end[i]), end[-1] = 0); an empty span is a null or absent value
 *   24+4n   ...       data: the slots' feast.types.Value wire bytes (message bodies), concatenated
 *   len-8   8         checksum, little-endian: store__rec_sum() over the entity key the record is
 *                     stored under, then every byte above (format 2; format 1 had none)
 *
 * Slots are numbered by the view version's slot table in meta (feature name -> slot, append-only),
 * not by catalog position, so a feature appended to a version gets a new slot and old records
 * simply have fewer slots (a missing slot reads as null).
 *
 * Why wire form rather than a compact typed encoding: a read never decodes. The server copies a
 * slot's bytes straight into the GetOnlineFeatures response (store_row_feature() returns a pointer
 * into the map), and writes encode once, in the caller's thread. The cost is space: a FLOAT is 5
 * bytes instead of 4, an INT64 up to 11 instead of 8, plus a 4-byte offset per slot: a record of
 * 10 FLOAT features is about twice a typed layout's size. A read is dominated by the B-tree walk's
 * cache misses, which the smaller file would only reduce once the data outgrows RAM, while a
 * typed layout would add encoding to every read and a decode/encode path to keep in step with
 * Feast's wire format. Wire form wins while the hot set fits in memory, which is what an online
 * store is sized for. (bench_storage measures the read against a raw mdb_get; BENCHMARKS.md has
 * the figures.)
 *
 * The offset table makes any slot O(1) to find, so reading N features of a view is one mdb_get
 * plus N array lookups.
 *
 * The checksum catches what LMDB cannot: LMDB keeps no checksums, so a byte flipped on disk or in
 * memory under a record would otherwise be read back as a value, reported PRESENT. It is checked
 * on every read of a stored record (store__rec_check()); bench_storage measures what that costs.
 */

/* Never change: every stored record's checksum was computed with it. */
#define REC_SUM_SEED 0x66737472636b7331ull /* "fstrcks1" */

/* XXH3 (Debian's libxxhash): the checksum RocksDB and zstd use, fast on short inputs (a record
 * is tens to hundreds of bytes), and stable by specification, so stored sums never change. */
uint64_t store__rec_sum(const uint8_t *key, size_t key_len, const uint8_t *rec, size_t len)
{
    uint64_t h = XXH3_64bits_withSeed(key, key_len, REC_SUM_SEED);
    return XXH3_64bits_withSeed(rec, len - STORE__REC_TRAILER, h);
}

void store__rec_seal(const uint8_t *key, size_t key_len, uint8_t *rec, size_t len)
{
    store__put_le64(rec + len - STORE__REC_TRAILER, store__rec_sum(key, key_len, rec, len));
}

int store__rec_check(const uint8_t *key, size_t key_len, const uint8_t *rec, size_t len,
                     store__rec_t *out)
{
    if (store__rec_parse(rec, len, out) < 0 ||
        store__le64(rec + len - STORE__REC_TRAILER) != store__rec_sum(key, key_len, rec, len))
        return -EBADMSG;
    return 0;
}

void store__rec_damaged(store_t *s, const char *view, uint32_t version, bool history,
                        const uint8_t *key, size_t key_len)
{
    atomic_fetch_add(&s->damaged, 1);
    uint64_t unlogged;
    if (!store__log_due(&s->damaged_log, &unlogged))
        return;
    char hex[2 * 64 + 4];
    size_t n = key_len < 64 ? key_len : 64, at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(hex + at, sizeof hex - at, "%02x", key[i]);
    if (n < key_len)
        snprintf(hex + at, sizeof hex - at, "...");
    base_log(BASE_LOG_ERROR, "record_damaged", "{s:s, s:s, s:I, s:b, s:s, s:I, s:s}", "data_dir",
             s->dir, "view", view, "version", (long long)version, "history", (int)history,
             "key_hex", hex, "unlogged_since_last", (long long)unlogged, "note",
             "its checksum does not match: never read as a value (INVALID in a row, DATA_LOSS "
             "for a history scan); run fstore verify, then write the row again or rebuild this "
             "replica");
}

int store__rec_parse(const uint8_t *p, size_t len, store__rec_t *out)
{
    if (len < STORE__REC_HEADER + STORE__REC_TRAILER || p[0] != STORE__REC_FORMAT)
        return -EIO;
    len -= STORE__REC_TRAILER;
    uint32_t n = store__le32(p + STORE__REC_N_SLOTS);
    if (n > (len - STORE__REC_HEADER) / 4)
        return -EIO;
    out->n_slots = n;
    out->tombstone = (p[STORE__REC_FLAGS] & STORE__REC_TOMBSTONE) != 0;
    out->event_ts_us = (int64_t)store__le64(p + STORE__REC_EVENT_TS);
    out->created_ts_us = (int64_t)store__le64(p + STORE__REC_CREATED_TS);
    out->ends = p + STORE__REC_HEADER;
    out->data = p + STORE__REC_HEADER + 4 * (size_t)n;
    out->data_len = len - STORE__REC_HEADER - 4 * (size_t)n;
    return 0;
}

int store__rec_merge(const store__rec_t *old, const store__row_t *row, const uint8_t *arena,
                     int64_t created_ts_us, store__buf_t *out)
{
    /* The row's values are sorted by slot, so one pass over the slots merges them. */
    const uint8_t *vals = arena + row->vals_off;
    uint32_t n_slots = old != NULL ? old->n_slots : 0;
    {
        const uint8_t *q = vals;
        for (uint32_t i = 0; i < row->n_vals; i++) {
            uint32_t slot = store__le32(q + STORE__VAL_SLOT), len = store__le32(q + STORE__VAL_LEN);
            if (slot + 1 > n_slots)
                n_slots = slot + 1;
            q += STORE__VAL_BYTES + len;
        }
    }
    /* A record has as many slots as its highest written slot needs (or old's): rows written
     * before a feature was appended stay as they are until that feature is written. */
    out->len = 0;
    int rc = store__buf_reserve(out, STORE__REC_HEADER + 4 * (size_t)n_slots);
    if (rc < 0)
        return rc;
    uint8_t *h = out->data;
    memset(h, 0, STORE__REC_HEADER);
    h[0] = STORE__REC_FORMAT;
    store__put_le32(h + STORE__REC_N_SLOTS, n_slots);
    store__put_le64(h + STORE__REC_EVENT_TS, (uint64_t)row->event_ts_us);
    store__put_le64(h + STORE__REC_CREATED_TS, (uint64_t)created_ts_us);
    out->len = STORE__REC_HEADER + 4 * (size_t)n_slots;

    const uint8_t *q = vals;
    uint32_t next_row_slot = UINT32_MAX, next_row_len = 0, left = row->n_vals;
    if (left > 0) {
        next_row_slot = store__le32(q + STORE__VAL_SLOT);
        next_row_len = store__le32(q + STORE__VAL_LEN);
    }
    size_t data_len = 0;
    for (uint32_t slot = 0; slot < n_slots; slot++) {
        const uint8_t *src = NULL;
        size_t len = 0;
        if (slot == next_row_slot) {
            src = q + STORE__VAL_BYTES;
            len = next_row_len;
            q += STORE__VAL_BYTES + next_row_len;
            if (--left > 0) {
                next_row_slot = store__le32(q + STORE__VAL_SLOT);
                next_row_len = store__le32(q + STORE__VAL_LEN);
            } else {
                next_row_slot = UINT32_MAX;
            }
        } else if (old != NULL) {
            rc = store__rec_slot(old, slot, &src, &len);
            if (rc < 0)
                return rc;
        }
        if (data_len + len > UINT32_MAX)
            return -E2BIG;
        if (len > 0) {
            /* old may point into the map, never into out, so appending cannot alias. */
            rc = store__buf_append(out, src, len);
            if (rc < 0)
                return rc;
        }
        data_len += len;
        store__put_le32(out->data + STORE__REC_HEADER + 4 * (size_t)slot, (uint32_t)data_len);
    }
    static const uint8_t unsealed[STORE__REC_TRAILER];
    return store__buf_append(out, unsealed, sizeof unsealed);
}

int store__rec_tombstone(int64_t event_ts_us, int64_t created_ts_us, store__buf_t *out)
{
    int rc = store__buf_reserve(out, STORE__REC_TOMBSTONE_LEN);
    if (rc < 0)
        return rc;
    uint8_t *h = out->data + out->len;
    memset(h, 0, STORE__REC_TOMBSTONE_LEN);
    h[0] = STORE__REC_FORMAT;
    h[STORE__REC_FLAGS] = STORE__REC_TOMBSTONE;
    store__put_le64(h + STORE__REC_EVENT_TS, (uint64_t)event_ts_us);
    store__put_le64(h + STORE__REC_CREATED_TS, (uint64_t)created_ts_us);
    out->len += STORE__REC_TOMBSTONE_LEN;
    return 0;
}

int store__rec_build(const store__row_t *row, const uint8_t *arena, int64_t created_ts_us,
                     store__buf_t *out)
{
    /* store__rec_merge() without an old record, appending: sized in one pass, so the bytes are
     * written with one reserve and no per-slot calls (a bulk load builds one per row). */
    const uint8_t *vals = arena + row->vals_off;
    uint32_t n_slots = 0;
    size_t data_len = 0;
    const uint8_t *q = vals;
    for (uint32_t i = 0; i < row->n_vals; i++) {
        uint32_t slot = store__le32(q + STORE__VAL_SLOT), len = store__le32(q + STORE__VAL_LEN);
        if (slot + 1 > n_slots)
            n_slots = slot + 1;
        data_len += len;
        q += STORE__VAL_BYTES + len;
    }
    if (data_len > UINT32_MAX)
        return -E2BIG;
    size_t head = STORE__REC_HEADER + 4 * (size_t)n_slots;
    int rc = store__buf_reserve(out, head + data_len + STORE__REC_TRAILER);
    if (rc < 0)
        return rc;
    uint8_t *h = out->data + out->len;
    memset(h, 0, STORE__REC_HEADER);
    h[0] = STORE__REC_FORMAT;
    store__put_le32(h + STORE__REC_N_SLOTS, n_slots);
    store__put_le64(h + STORE__REC_EVENT_TS, (uint64_t)row->event_ts_us);
    store__put_le64(h + STORE__REC_CREATED_TS, (uint64_t)created_ts_us);
    uint8_t *ends = h + STORE__REC_HEADER, *d = h + head;
    uint32_t end = 0, slot = 0;
    q = vals;
    for (uint32_t i = 0; i < row->n_vals; i++) {
        uint32_t vs = store__le32(q + STORE__VAL_SLOT), len = store__le32(q + STORE__VAL_LEN);
        for (; slot < vs; slot++)
            store__put_le32(ends + 4 * (size_t)slot, end);
        /* Values are mostly a few bytes (scalars): a loop beats a call to memcpy. */
        if (len <= 16) {
            for (uint32_t b = 0; b < len; b++)
                d[end + b] = q[STORE__VAL_BYTES + b];
        } else {
            memcpy(d + end, q + STORE__VAL_BYTES, len);
        }
        end += len;
        store__put_le32(ends + 4 * (size_t)slot, end);
        slot++;
        q += STORE__VAL_BYTES + len;
    }
    memset(d + data_len, 0, STORE__REC_TRAILER); /* unsealed */
    out->len += head + data_len + STORE__REC_TRAILER;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Slot lookups                                                                                */

uint32_t store__slot_by_name(const store__view_t *e, const char *name)
{
    size_t len = strlen(name);
    uint32_t i = (uint32_t)base_fnv1a(name, len, BASE_FNV_OFFSET) & e->name_mask;
    for (;;) {
        uint32_t x = e->name_ix[i];
        if (x == 0)
            return UINT32_MAX;
        if (strcmp(e->slot_names[x - 1], name) == 0)
            return x - 1;
        i = (i + 1) & e->name_mask;
    }
}

uint32_t store__slot_of(const store__view_t *e, const catalog_view_t *v, uint32_t index)
{
    if (index >= v->n_features)
        return UINT32_MAX;
    const char *name = v->features[index].name;
    /*
     * Fast path: the catalog the store applied (whose name pointers the entry holds, and keeps
     * alive) is usually the very one the caller reads with, and features keep their slot as long
     * as a version only grows by appending. Two live strings never share an address, so pointer
     * equality proves the match; otherwise compare names, then fall back to the hash.
     */
    if (index < e->n_slots) {
        if (e->fast != NULL && e->fast[index] == name)
            return index;
        if (strcmp(e->slot_names[index], name) == 0)
            return index;
    }
    return store__slot_by_name(e, name);
}

/* ------------------------------------------------------------------------------------------ */
/* Feature reads                                                                               */

store_status_t store_row_feature(const store_row_t *row, const catalog_view_t *v,
                                 uint32_t feature_index, int64_t now_us, const uint8_t **wire,
                                 size_t *len)
{
    *wire = NULL;
    *len = 0;
    if (!row->found)
        return STORE_STATUS_NOT_FOUND;
    const store__view_t *e = row->slots;
    uint32_t slot = store__slot_of(e, v, feature_index);
    if (slot == UINT32_MAX)
        return STORE_STATUS_NULL_VALUE;
    store__rec_t r;
    const uint8_t *p;
    size_t n;
    if (store__rec_parse(row->rec, row->rec_len, &r) < 0 || store__rec_slot(&r, slot, &p, &n) < 0)
        return STORE_STATUS_INVALID;
    if (n == 0)
        return STORE_STATUS_NULL_VALUE;
    *wire = p;
    *len = n;
    if (store__expired(v, row->event_ts_us, now_us))
        return STORE_STATUS_OUTSIDE_MAX_AGE;
    return STORE_STATUS_PRESENT;
}

/*
 * The per-row half of store_row_features(): slots already resolved (UINT32_MAX for a feature the
 * store never applied), the record parsed (bad when it did not parse) and the TTL decided.
 */
static void slot_values(const store__rec_t *r, bool bad, store_status_t present,
                        const uint32_t *slots, size_t n, const uint8_t **wire, size_t *len,
                        store_status_t *status)
{
    if (bad) {
        for (size_t i = 0; i < n; i++) {
            wire[i] = NULL;
            len[i] = 0;
            status[i] = slots[i] == UINT32_MAX ? STORE_STATUS_NULL_VALUE : STORE_STATUS_INVALID;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* A never-applied feature (UINT32_MAX) and one appended after this row was written
         * (the record has fewer slots) read as empty slots: null. */
        const uint8_t *p = NULL;
        size_t k = 0;
        if (store__rec_slot(r, slots[i], &p, &k) < 0) {
            wire[i] = NULL;
            len[i] = 0;
            status[i] = STORE_STATUS_INVALID;
            continue;
        }
        wire[i] = k == 0 ? NULL : p;
        len[i] = k;
        status[i] = k == 0 ? STORE_STATUS_NULL_VALUE : present;
    }
}

void store_row_slots(const store_row_t *row, const catalog_view_t *v, const uint32_t *feature_idx,
                     size_t n, uint32_t *slots)
{
    const store__view_t *e = row->slots;
    for (size_t i = 0; i < n; i++) {
        uint32_t f = feature_idx[i];
        /* store__slot_of()'s first test, here to spare a call per feature in the usual case. */
        slots[i] = f < e->n_slots && f < v->n_features && e->fast != NULL &&
                           e->fast[f] == v->features[f].name
                       ? f
                       : store__slot_of(e, v, f);
    }
}

void store_row_slot_features(const store_row_t *row, const catalog_view_t *v, const uint32_t *slots,
                             size_t n, int64_t now_us, const uint8_t **wire, size_t *len,
                             store_status_t *status)
{
    if (!row->found) {
        for (size_t i = 0; i < n; i++) {
            wire[i] = NULL;
            len[i] = 0;
            status[i] = STORE_STATUS_NOT_FOUND;
        }
        return;
    }
    /* Everything that is per row rather than per feature is decided once: the record's header
     * and offset table, and whether the row is past the view's TTL. */
    store__rec_t r = {0};
    bool bad = store__rec_parse(row->rec, row->rec_len, &r) < 0;
    bool expired = store__expired(v, row->event_ts_us, now_us);
    slot_values(&r, bad, expired ? STORE_STATUS_OUTSIDE_MAX_AGE : STORE_STATUS_PRESENT, slots, n,
                wire, len, status);
}

void store_row_features(const store_row_t *row, const catalog_view_t *v,
                        const uint32_t *feature_idx, size_t n, int64_t now_us, const uint8_t **wire,
                        size_t *len, store_status_t *status)
{
    if (!row->found) {
        store_row_slot_features(row, v, NULL, n, now_us, wire, len, status);
        return;
    }
    /* In chunks, so the slots fit on the stack whatever n is. */
    uint32_t slots[64];
    for (size_t at = 0; at < n; at += 64) {
        size_t k = n - at < 64 ? n - at : 64;
        store_row_slots(row, v, feature_idx + at, k, slots);
        store_row_slot_features(row, v, slots, k, now_us, wire + at, len + at, status + at);
    }
}
