/* tests/storage/test_record.c - record layout, merge and bounds checks (storage/record.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"
#include "tests/storage/helpers.h"

/* A row in the encoded form the writer merges: (slot, bytes) pairs in slot order. */
typedef struct built {
    store__buf_t arena;
    store__row_t row;
} built_t;

static void add_val(built_t *b, uint32_t slot, const char *bytes)
{
    uint8_t h[8];
    store__put_le32(h, slot);
    store__put_le32(h + 4, (uint32_t)strlen(bytes));
    cr_assert_eq(store__buf_append(&b->arena, h, 8), 0);
    cr_assert_eq(store__buf_append(&b->arena, bytes, strlen(bytes)), 0);
    b->row.n_vals++;
}

static void slot_is(const store__rec_t *r, uint32_t slot, const char *want)
{
    const uint8_t *p;
    size_t n;
    cr_assert_eq(store__rec_slot(r, slot, &p, &n), 0);
    cr_assert_eq(n, strlen(want), "slot %u: %zu bytes, want %zu", slot, n, strlen(want));
    if (n > 0)
        cr_assert_arr_eq(p, want, n);
}

Test(record, a_new_record_has_the_header_offsets_and_bytes_of_its_values)
{
    built_t b = {0};
    b.row.event_ts_us = 42;
    add_val(&b, 0, "aa");
    add_val(&b, 2, "ccc");
    store__buf_t out = {0};
    cr_assert_eq(store__rec_merge(NULL, &b.row, b.arena.data, 77, &out), 0);
    cr_assert_eq(out.len, STORE__REC_HEADER + 3 * 4 + 5 + STORE__REC_TRAILER);
    cr_assert_eq(out.data[0], STORE__REC_FORMAT);
    store__rec_t r;
    cr_assert_eq(store__rec_parse(out.data, out.len, &r), 0);
    cr_assert_eq(r.n_slots, 3);
    cr_assert_eq(r.event_ts_us, 42);
    cr_assert_eq(r.created_ts_us, 77);
    slot_is(&r, 0, "aa");
    slot_is(&r, 1, "");
    slot_is(&r, 2, "ccc");
    slot_is(&r, 9, ""); /* past the end: absent */
    store__buf_free(&out);
    store__buf_free(&b.arena);
}

Test(record, a_built_record_is_byte_for_byte_a_merge_over_nothing_appended_in_place)
{
    built_t b = {0};
    b.row.event_ts_us = -5;
    add_val(&b, 1, "b");
    add_val(&b, 3, ""); /* an explicit null */
    add_val(&b, 4, "eeee");
    store__buf_t merged = {0}, built = {0};
    cr_assert_eq(store__rec_merge(NULL, &b.row, b.arena.data, 9, &merged), 0);
    cr_assert_eq(store__buf_append(&built, "xyz", 3), 0);
    cr_assert_eq(store__rec_build(&b.row, b.arena.data, 9, &built), 0);
    cr_assert_eq(built.len, 3 + merged.len);
    cr_assert_arr_eq(built.data, "xyz", 3, "what was there stays");
    cr_assert_arr_eq(built.data + 3, merged.data, merged.len);
    built_t none = {0};
    built.len = 0;
    cr_assert_eq(store__rec_build(&none.row, none.arena.data, 9, &built), 0);
    cr_assert_eq(built.len, STORE__REC_HEADER + STORE__REC_TRAILER,
                 "a row without values: a header, no slots, the checksum");
    store__buf_free(&merged);
    store__buf_free(&built);
    store__buf_free(&b.arena);
}

Test(record, a_merge_replaces_listed_slots_keeps_the_others_and_grows_for_new_ones)
{
    built_t b1 = {0}, b2 = {0};
    add_val(&b1, 0, "old0");
    add_val(&b1, 1, "old1");
    store__buf_t first = {0}, second = {0};
    cr_assert_eq(store__rec_merge(NULL, &b1.row, b1.arena.data, 1, &first), 0);
    store__rec_t r1;
    cr_assert_eq(store__rec_parse(first.data, first.len, &r1), 0);

    add_val(&b2, 1, "");     /* explicit null */
    add_val(&b2, 3, "new3"); /* a slot appended later */
    b2.row.event_ts_us = 5;
    cr_assert_eq(store__rec_merge(&r1, &b2.row, b2.arena.data, 2, &second), 0);
    store__rec_t r2;
    cr_assert_eq(store__rec_parse(second.data, second.len, &r2), 0);
    cr_assert_eq(r2.n_slots, 4);
    cr_assert_eq(r2.event_ts_us, 5);
    slot_is(&r2, 0, "old0");
    slot_is(&r2, 1, "");
    slot_is(&r2, 2, "");
    slot_is(&r2, 3, "new3");
    store__buf_free(&first);
    store__buf_free(&second);
    store__buf_free(&b1.arena);
    store__buf_free(&b2.arena);
}

Test(record, malformed_records_are_refused_not_read)
{
    uint8_t rec[64] = {STORE__REC_FORMAT};
    store__rec_t r;
    cr_assert_eq(store__rec_parse(rec, 10, &r), -EIO); /* shorter than the header */
    rec[0] = 9;
    cr_assert_eq(store__rec_parse(rec, sizeof rec, &r), -EIO); /* unknown format */
    rec[0] = STORE__REC_FORMAT;
    store__put_le32(rec + 4, 1000); /* more slots than bytes */
    cr_assert_eq(store__rec_parse(rec, sizeof rec, &r), -EIO);
    store__put_le32(rec + 4, 1);
    store__put_le32(rec + STORE__REC_HEADER, 500); /* slot ends past the data */
    cr_assert_eq(store__rec_parse(rec, sizeof rec, &r), 0);
    const uint8_t *p;
    size_t n;
    cr_assert_eq(store__rec_slot(&r, 0, &p, &n), -EIO);
}

/* The checksum: over the key and every byte but its own, so any one damaged byte, or the record
 * read under another key, is refused; a record sealed again after a change checks again. */
Test(record, a_sealed_record_checks_and_any_damaged_byte_or_other_key_is_ebadmsg)
{
    built_t b = {0};
    b.row.event_ts_us = 1234;
    add_val(&b, 0, "value-zero");
    add_val(&b, 2, "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f");
    store__buf_t rec = {0};
    cr_assert_eq(store__rec_merge(NULL, &b.row, b.arena.data, 77, &rec), 0);
    const uint8_t key[] = {0x80, 0, 0, 0, 0, 0, 0, 42};
    store__rec_t r;
    cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len, &r), -EBADMSG,
                 "an unsealed record does not check");
    store__rec_seal(key, sizeof key, rec.data, rec.len);
    cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len, &r), 0);
    cr_assert_eq(r.event_ts_us, 1234);
    slot_is(&r, 0, "value-zero");
    for (size_t i = 0; i < rec.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            rec.data[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len, &r), -EBADMSG,
                         "byte %zu bit %d flipped", i, bit);
            rec.data[i] ^= (uint8_t)(1u << bit);
        }
        uint8_t was = rec.data[i];
        rec.data[i] = (uint8_t)(was + 0x5b);
        cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len, &r), -EBADMSG,
                     "byte %zu changed", i);
        rec.data[i] = was;
    }
    /* Two flips that cancel in a plain xor-multiply word hash (the top bit of two words 8 or
     * 32 bytes apart): every pair of top bits of the record. */
    for (size_t i = 7; i < rec.len; i += 8) {
        for (size_t j = i + 8; j < rec.len; j += 8) {
            rec.data[i] ^= 0x80;
            rec.data[j] ^= 0x80;
            cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len, &r), -EBADMSG,
                         "bytes %zu and %zu's top bits flipped", i, j);
            rec.data[i] ^= 0x80;
            rec.data[j] ^= 0x80;
        }
    }
    uint8_t other[sizeof key];
    memcpy(other, key, sizeof key);
    other[7] = 43;
    cr_assert_eq(store__rec_check(other, sizeof other, rec.data, rec.len, &r), -EBADMSG,
                 "the record of entity 42 read as entity 43's");
    cr_assert_eq(store__rec_check(key, sizeof key - 1, rec.data, rec.len, &r), -EBADMSG);
    cr_assert_eq(store__rec_check(key, sizeof key, rec.data, rec.len - 1, &r), -EBADMSG,
                 "a record cut short");
    /* Tombstones carry one too. */
    store__buf_t tomb = {0};
    cr_assert_eq(store__rec_tombstone(99, 100, &tomb), 0);
    cr_assert_eq(tomb.len, STORE__REC_TOMBSTONE_LEN);
    store__rec_seal(key, sizeof key, tomb.data, tomb.len);
    cr_assert_eq(store__rec_check(key, sizeof key, tomb.data, tomb.len, &r), 0);
    cr_assert(r.tombstone);
    tomb.data[STORE__REC_EVENT_TS] ^= 1;
    cr_assert_eq(store__rec_check(key, sizeof key, tomb.data, tomb.len, &r), -EBADMSG);
    store__buf_free(&tomb);
    store__buf_free(&rec);
    store__buf_free(&b.arena);
}

/* Stored checksums must never change: a pinned record and its sum, computed once. */
#define PINNED_SUM 0x50e7c644ec532188ull
Test(record, the_checksum_of_a_known_record_never_changes)
{
    uint8_t rec[STORE__REC_TOMBSTONE_LEN] = {STORE__REC_FORMAT, STORE__REC_TOMBSTONE};
    store__put_le64(rec + STORE__REC_EVENT_TS, 1700000000000000ull);
    store__put_le64(rec + STORE__REC_CREATED_TS, 1700000000000001ull);
    const uint8_t key[] = {'k', 'e', 'y'};
    cr_assert_eq(store__rec_sum(key, sizeof key, rec, sizeof rec), PINNED_SUM, "got 0x%016llx",
                 (unsigned long long)store__rec_sum(key, sizeof key, rec, sizeof rec));
}

/* A row whose record no longer parses (cut short: what a damaged page could hand back) reads as
 * INVALID for every feature, written or not, and never a value; the single-feature read
 * agrees. */
Test(record, a_row_whose_record_does_not_parse_reads_invalid_never_a_value)
{
    char *dir;
    catalog_t *cat;
    store_t *s;
    const catalog_view_t *fv;
    th_fixture_open(&dir, &cat, &s, &fv);
    int64_t now = store_now_us();
    cr_assert_eq(th_put(s, fv, 7, 1, th_i64(42), now), 0);
    store_reader_t *r = NULL;
    cr_assert_eq(store_reader_new(s, &r), 0);
    cr_assert_eq(store_read_begin(r), 0);
    uint8_t key[STORE_MAX_KEY];
    catalog_value_t k = th_i64(7);
    int n = store_encode_key(fv, &k, 1, key, sizeof key);
    store_row_t row;
    cr_assert_eq(store_read_row(r, fv, key, (size_t)n, &row), 0);
    cr_assert(row.found);
    uint32_t idx[2] = {1, 0};
    const uint8_t *wire[2];
    size_t len[2];
    store_status_t st[2];
    store_row_features(&row, fv, idx, 2, now, wire, len, st);
    cr_assert_eq(st[0], STORE_STATUS_PRESENT, "the control: the intact record");
    cr_assert_eq(st[1], STORE_STATUS_NULL_VALUE);
    row.rec_len = 3; /* cut inside its header */
    store_row_features(&row, fv, idx, 2, now, wire, len, st);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(st[i], STORE_STATUS_INVALID, "feature %u", idx[i]);
        cr_assert_null(wire[i]);
        cr_assert_eq(len[i], 0);
    }
    const uint8_t *w;
    size_t l;
    cr_assert_eq(store_row_feature(&row, fv, 1, now, &w, &l), STORE_STATUS_INVALID);
    cr_assert_eq(l, 0);
    store_read_end(r);
    store_reader_free(r);
    th_fixture_close(dir, cat, s);
}
