/* server/feast_encode.c - GetOnlineFeaturesResponse written by hand from cells. */
#include <stdint.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Why by hand: the store keeps every feature value as feast.types.Value wire bytes, so the
 * response can be assembled by copying those bytes between a few tags and lengths. Building
 * protobuf-c messages would decode and re-encode every value and allocate per value. Protobuf
 * length prefixes need the size of what follows, so the encoder runs twice: size, then write.
 *
 * Layout (field numbers from feast/serving/ServingService.proto):
 *   1 metadata { 1 feature_names { 1 val* } 2 feature_view_metadata* { 1 name 2 version } }
 *   2 results* { 1 values* (Value bodies) 2 statuses (packed) 3 event_timestamps* { 1 s 2 ns } }
 *   3 status
 */

#define WT_VARINT 0
#define WT_LEN 2
#define TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/* Inline: these run several times per cell (server__varint_size() is shared with the decoder). */
static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A tag, a length and a body of len bytes. */
static inline size_t len_field_size(size_t len)
{
    return 1 + server__varint_size(len) + len;
}

static void ts_split(int64_t us, int64_t *sec, int32_t *nanos)
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
    ts_split(us, &sec, &nanos);
    uint8_t *p = buf + 2;
    if (sec != 0) {
        *p++ = TAG(1, WT_VARINT);
        p = put_varint(p, (uint64_t)sec);
    }
    if (nanos != 0) {
        *p++ = TAG(2, WT_VARINT);
        p = put_varint(p, (uint64_t)nanos);
    }
    buf[0] = TAG(3, WT_LEN);
    buf[1] = (uint8_t)(p - buf - 2);
    return (size_t)(p - buf);
}

/* Row row's event_timestamps entry for us: a feature view's columns share their rows'
 * timestamps, so with a memo each is encoded once per run of columns rather than per cell. */
static inline const uint8_t *ts_entry(server_feast_ts_t *memo, size_t row, int64_t us,
                                      server_feast_ts_t *tmp, size_t *len)
{
    server_feast_ts_t *m = memo != NULL ? &memo[row] : tmp;
    if (m == tmp || m->len == 0 || m->us != us) {
        m->us = us;
        m->len = (uint8_t)ts_encode(us, m->bytes);
    }
    *len = m->len;
    return m->bytes;
}

static void ts_memo_reset(const server_feast_response_t *r)
{
    if (r->ts_memo == NULL)
        return;
    for (size_t row = 0; row < r->n_rows; row++)
        r->ts_memo[row].len = 0;
}

static size_t vector_body_size(const server_feast_response_t *r, const server_feast_column_t *col)
{
    size_t n = 0;
    server_feast_ts_t tmp;
    for (size_t row = 0; row < r->n_rows; row++) {
        const server_cell_t *cell = &col->cells[row];
        size_t ts_len;
        ts_entry(r->ts_memo, row, cell->event_ts_us, &tmp, &ts_len);
        n += len_field_size(cell->len) + ts_len;
    }
    /* Statuses are 0..4, one byte each when packed. */
    if (r->n_rows > 0)
        n += len_field_size(r->n_rows);
    return n;
}

static size_t view_md_body_size(const server_feast_view_md_t *v)
{
    size_t n = len_field_size(strlen(v->name));
    if (v->version != 0)
        n += 1 + server__varint_size((uint64_t)(int64_t)v->version);
    return n;
}

/* Columns whose names are encoded one by one (the rest come pre-encoded). */
static size_t plain_names(const server_feast_response_t *r)
{
    return r->names_pre != NULL && r->n_names_pre <= r->n_cols ? r->n_cols - r->n_names_pre
                                                               : r->n_cols;
}

static size_t names_body_size(const server_feast_response_t *r)
{
    size_t plain = plain_names(r);
    size_t n = plain < r->n_cols ? r->names_pre_len : 0;
    for (size_t i = 0; i < plain; i++)
        n += len_field_size(r->cols[i].name_len);
    return n;
}

static size_t metadata_body_size(const server_feast_response_t *r)
{
    size_t n = len_field_size(names_body_size(r));
    for (size_t i = 0; i < r->n_views; i++)
        n += len_field_size(view_md_body_size(&r->views[i]));
    return n;
}

size_t server__feast_size(const server_feast_response_t *r, size_t *vec_sizes)
{
    size_t n = len_field_size(metadata_body_size(r));
    ts_memo_reset(r);
    for (size_t i = 0; i < r->n_cols; i++) {
        vec_sizes[i] = vector_body_size(r, &r->cols[i]);
        n += len_field_size(vec_sizes[i]);
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
    p = put_varint(p, len);
    return copy_bytes(p, data, len);
}

uint8_t *server__feast_encode_names(server_arena_t *a, const char *const *names, const size_t *lens,
                                    size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += len_field_size(lens[i]);
    uint8_t *buf = server__arena_alloc(a, total == 0 ? 1 : total);
    if (buf == NULL)
        return NULL;
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p = put_len_field(p, TAG(1, WT_LEN), names[i], lens[i]);
    *len = total;
    return buf;
}

size_t server__feast_write(const server_feast_response_t *r, const size_t *vec_sizes, uint8_t *out)
{
    uint8_t *p = out;

    *p++ = TAG(1, WT_LEN);
    p = put_varint(p, metadata_body_size(r));
    *p++ = TAG(1, WT_LEN);
    p = put_varint(p, names_body_size(r));
    size_t plain = plain_names(r);
    for (size_t i = 0; i < plain; i++)
        p = put_len_field(p, TAG(1, WT_LEN), r->cols[i].name, r->cols[i].name_len);
    if (plain < r->n_cols) {
        memcpy(p, r->names_pre, r->names_pre_len);
        p += r->names_pre_len;
    }
    for (size_t i = 0; i < r->n_views; i++) {
        const server_feast_view_md_t *v = &r->views[i];
        *p++ = TAG(2, WT_LEN);
        p = put_varint(p, view_md_body_size(v));
        p = put_len_field(p, TAG(1, WT_LEN), v->name, strlen(v->name));
        if (v->version != 0) {
            *p++ = TAG(2, WT_VARINT);
            p = put_varint(p, (uint64_t)(int64_t)v->version);
        }
    }

    ts_memo_reset(r);
    server_feast_ts_t tmp;
    for (size_t i = 0; i < r->n_cols; i++) {
        const server_cell_t *cells = r->cols[i].cells;
        *p++ = TAG(2, WT_LEN);
        p = put_varint(p, vec_sizes[i]);
        for (size_t row = 0; row < r->n_rows; row++)
            p = put_len_field(p, TAG(1, WT_LEN), cells[row].wire, cells[row].len);
        if (r->n_rows > 0) {
            *p++ = TAG(2, WT_LEN);
            p = put_varint(p, r->n_rows);
            for (size_t row = 0; row < r->n_rows; row++)
                *p++ = cells[row].status;
        }
        for (size_t row = 0; row < r->n_rows; row++) {
            size_t ts_len;
            const uint8_t *ts = ts_entry(r->ts_memo, row, cells[row].event_ts_us, &tmp, &ts_len);
            p = copy_bytes(p, ts, ts_len);
        }
    }

    if (r->status) {
        *p++ = TAG(3, WT_VARINT);
        *p++ = 1;
    }
    return (size_t)(p - out);
}
