/* codec/feast_encode.c - GetOnlineFeaturesResponse written by hand from cells. */
#include <stdint.h>
#include <string.h>

#include "codec/codec.h"

/*
 * Why by hand: the store keeps every feature value as feast.types.Value wire bytes, so the
 * response can be assembled by copying those bytes between a few tags and lengths. Building
 * protobuf-c messages would decode and re-encode every value and allocate per value. Protobuf
 * length prefixes need the size of what follows, so the encoder runs twice: a measuring pass (a
 * few instructions per cell: value lengths, and whether a column's timestamps repeat the previous
 * column's), then the writing pass. The measure is also what the response limit is checked
 * against before anything is allocated.
 *
 * Layout (field numbers from feast/serving/ServingService.proto):
 *   1 metadata { 1 feature_names { 1 val* } 2 feature_view_metadata* { 1 name 2 version } }
 *   2 results* { 1 values* (Value bodies) 2 statuses (packed) 3 event_timestamps* { 1 s 2 ns } }
 *   3 status
 */

void codec_ts_split(int64_t us, int64_t *sec, int32_t *nanos)
{
    int64_t s = us / 1000000;
    int64_t rem = us % 1000000;
    if (rem < 0) {
        /* Timestamp nanos are never negative: borrow a second. */
        rem += 1000000;
        s -= 1;
    }
    *sec = s;
    *nanos = (int32_t)(rem * 1000);
}

/* The whole event_timestamps entry (tag 3, length, Timestamp body) for us; at most 19 bytes
 * (a ten-byte seconds varint and a five-byte nanos varint, each tagged, so the length is one
 * byte). Returns: its length. */
static size_t ts_encode(int64_t us, uint8_t *buf)
{
    int64_t sec;
    int32_t nanos;
    codec_ts_split(us, &sec, &nanos);
    uint8_t *p = buf + 2;
    if (sec != 0) {
        *p++ = BASE_TAG(1, BASE_WT_VARINT);
        p = base_put_varint(p, (uint64_t)sec);
    }
    if (nanos != 0) {
        *p++ = BASE_TAG(2, BASE_WT_VARINT);
        p = base_put_varint(p, (uint64_t)nanos);
    }
    buf[0] = BASE_TAG(3, BASE_WT_LEN);
    buf[1] = (uint8_t)(p - buf - 2);
    return (size_t)(p - buf);
}

/* The length of ts_encode(us, ...), without writing it. */
static size_t ts_entry_size(int64_t us)
{
    int64_t sec;
    int32_t nanos;
    codec_ts_split(us, &sec, &nanos);
    size_t n = 2;
    if (sec != 0)
        n += 1 + base_varint_size((uint64_t)sec);
    if (nanos != 0)
        n += 1 + base_varint_size((uint64_t)nanos);
    return n;
}

/* Whether two columns' cells carry the same event timestamps, row by row. */
static bool same_timestamps(const core_cell_t *a, const core_cell_t *b, size_t n_rows)
{
    for (size_t row = 0; row < n_rows; row++) {
        if (a[row].event_ts_us != b[row].event_ts_us)
            return false;
    }
    return true;
}

/*
 * Measures column i into *vec. A feature view's columns share their rows' timestamps and a
 * response lists a view's features side by side, so most columns repeat the timestamps of the
 * column before: those are compared rather than measured, and written as one copy of the
 * previous column's entries.
 */
static void vector_measure(const codec_feast_response_t *r, size_t i, size_t prev_ts_len,
                           codec_feast_vec_t *vec)
{
    const core_cell_t *cells = r->cols[i].cells;
    size_t n = 0;
    for (size_t row = 0; row < r->n_rows; row++) {
        uint32_t len = cells[row].len;
        /* A tag and a one-byte length, unless the value has 128 bytes or more (rare). */
        n += len < 0x80 ? 2 + (size_t)len : base_len_field_size(len);
    }
    /* Statuses are 0..4, one byte each when packed. */
    if (r->n_rows > 0)
        n += base_len_field_size(r->n_rows);
    vec->ts_repeat = i > 0 && same_timestamps(cells, r->cols[i - 1].cells, r->n_rows);
    if (vec->ts_repeat) {
        vec->ts_len = prev_ts_len;
    } else {
        vec->ts_len = 0;
        for (size_t row = 0; row < r->n_rows; row++)
            vec->ts_len += ts_entry_size(cells[row].event_ts_us);
    }
    vec->size = n + vec->ts_len;
}

static size_t view_md_body_size(const core_view_md_t *v)
{
    size_t n = base_len_field_size(strlen(v->name));
    if (v->version != 0)
        n += 1 + base_varint_size((uint64_t)(int64_t)v->version);
    return n;
}

/* Columns whose names are encoded one by one (the rest come pre-encoded). */
static size_t plain_names(const codec_feast_response_t *r)
{
    return r->names_pre != NULL && r->n_names_pre <= r->n_cols ? r->n_cols - r->n_names_pre
                                                               : r->n_cols;
}

static size_t names_body_size(const codec_feast_response_t *r)
{
    size_t plain = plain_names(r);
    size_t n = plain < r->n_cols ? r->names_pre_len : 0;
    for (size_t i = 0; i < plain; i++)
        n += base_len_field_size(r->cols[i].name_len);
    return n;
}

static size_t metadata_body_size(const codec_feast_response_t *r)
{
    size_t n = base_len_field_size(names_body_size(r));
    for (size_t i = 0; i < r->n_views; i++)
        n += base_len_field_size(view_md_body_size(&r->views[i]));
    return n;
}

/*
 * One entity row, the usual online read: a column is then one value, one status and one
 * timestamp, and the loops over rows (and their setup, per column) cost more than the bytes.
 * These measure and write exactly what the general loops would.
 */
static size_t size_one_row(const codec_feast_response_t *r, codec_feast_vec_t *vecs)
{
    size_t n = 0, ts_len = 0;
    int64_t prev_ts = 0;
    for (size_t i = 0; i < r->n_cols; i++) {
        const core_cell_t *cell = r->cols[i].cells;
        uint32_t len = cell->len;
        /* The value, then the packed status: a tag, a length of 1 and the byte. */
        size_t body = (len < 0x80 ? 2 + (size_t)len : base_len_field_size(len)) + 3;
        bool repeat = i > 0 && cell->event_ts_us == prev_ts;
        if (!repeat)
            ts_len = ts_entry_size(cell->event_ts_us);
        prev_ts = cell->event_ts_us;
        vecs[i] = (codec_feast_vec_t){body + ts_len, ts_len, repeat};
        n += base_len_field_size(body + ts_len);
    }
    return n;
}

size_t codec_feast_size(const codec_feast_response_t *r, codec_feast_vec_t *vecs)
{
    size_t n = base_len_field_size(metadata_body_size(r));
    if (r->n_rows == 1) {
        n += size_one_row(r, vecs);
        return r->status ? n + 2 : n;
    }
    for (size_t i = 0; i < r->n_cols; i++) {
        vector_measure(r, i, i > 0 ? vecs[i - 1].ts_len : 0, &vecs[i]);
        n += base_len_field_size(vecs[i].size);
    }
    if (r->status)
        n += 2;
    return n;
}

/* Copies len bytes to p and returns p + len. Stored scalar values and encoded timestamps are
 * 2 to 19 bytes: two overlapping fixed-size moves copy them without a call into libc's memcpy
 * (whose dispatch cost more than the copy at these sizes), and never touch a byte outside
 * [src, src + len) or [p, p + len). */
static inline uint8_t *copy_bytes(uint8_t *p, const uint8_t *src, size_t len)
{
    if (len >= 8 && len <= 16) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + len - 8, 8);
        memcpy(p, &a, 8);
        memcpy(p + len - 8, &b, 8);
    } else if (len >= 4 && len < 8) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + len - 4, 4);
        memcpy(p, &a, 4);
        memcpy(p + len - 4, &b, 4);
    } else if (len < 4) {
        for (size_t i = 0; i < len; i++)
            p[i] = src[i];
    } else {
        memcpy(p, src, len);
    }
    return p + len;
}

static inline uint8_t *put_len_field(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    *p++ = tag;
    p = base_put_varint(p, len);
    return copy_bytes(p, data, len);
}

size_t codec_feast_write(const codec_feast_response_t *r, const codec_feast_vec_t *vecs,
                         uint8_t *out)
{
    uint8_t *p = out;

    *p++ = BASE_TAG(1, BASE_WT_LEN);
    p = base_put_varint(p, metadata_body_size(r));
    *p++ = BASE_TAG(1, BASE_WT_LEN);
    p = base_put_varint(p, names_body_size(r));
    size_t plain = plain_names(r);
    for (size_t i = 0; i < plain; i++)
        p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), r->cols[i].name, r->cols[i].name_len);
    if (plain < r->n_cols) {
        memcpy(p, r->names_pre, r->names_pre_len);
        p += r->names_pre_len;
    }
    for (size_t i = 0; i < r->n_views; i++) {
        const core_view_md_t *v = &r->views[i];
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, view_md_body_size(v));
        p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), v->name, strlen(v->name));
        if (v->version != 0) {
            *p++ = BASE_TAG(2, BASE_WT_VARINT);
            p = base_put_varint(p, (uint64_t)(int64_t)v->version);
        }
    }

    const uint8_t *prev_ts = NULL; /* the previous column's timestamp entries, in out */
    /* One entity row (see size_one_row()), then the general loops. */
    for (size_t i = 0; i < r->n_cols && r->n_rows == 1; i++) {
        const core_cell_t *cell = r->cols[i].cells;
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, vecs[i].size);
        size_t len = cell->len;
        if (len < 0x80) {
            p[0] = BASE_TAG(1, BASE_WT_LEN);
            p[1] = (uint8_t)len;
            p = copy_bytes(p + 2, cell->wire, len);
        } else {
            p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), cell->wire, len);
        }
        p[0] = BASE_TAG(2, BASE_WT_LEN);
        p[1] = 1;
        p[2] = cell->status;
        p += 3;
        const uint8_t *ts = p;
        if (vecs[i].ts_repeat)
            p = copy_bytes(p, prev_ts, vecs[i].ts_len); /* earlier in out: no overlap */
        else
            p += ts_encode(cell->event_ts_us, p);
        prev_ts = ts;
    }
    for (size_t i = 0; i < r->n_cols && r->n_rows != 1; i++) {
        const core_cell_t *cells = r->cols[i].cells;
        *p++ = BASE_TAG(2, BASE_WT_LEN);
        p = base_put_varint(p, vecs[i].size);
        for (size_t row = 0; row < r->n_rows; row++) {
            size_t len = cells[row].len;
            if (len < 0x80) {
                p[0] = BASE_TAG(1, BASE_WT_LEN);
                p[1] = (uint8_t)len;
                p = copy_bytes(p + 2, cells[row].wire, len);
            } else {
                p = put_len_field(p, BASE_TAG(1, BASE_WT_LEN), cells[row].wire, len);
            }
        }
        if (r->n_rows > 0) {
            *p++ = BASE_TAG(2, BASE_WT_LEN);
            p = base_put_varint(p, r->n_rows);
            for (size_t row = 0; row < r->n_rows; row++)
                p[row] = cells[row].status;
            p += r->n_rows;
        }
        const uint8_t *ts = p;
        if (vecs[i].ts_repeat) {
            /* From earlier in out: the two ranges cannot overlap. */
            memcpy(p, prev_ts, vecs[i].ts_len);
            p += vecs[i].ts_len;
        } else {
            for (size_t row = 0; row < r->n_rows; row++)
                p += ts_encode(cells[row].event_ts_us, p);
        }
        prev_ts = ts;
    }

    if (r->status) {
        *p++ = BASE_TAG(3, BASE_WT_VARINT);
        *p++ = 1;
    }
    return (size_t)(p - out);
}
