/* tests/base/test_inflate.c - base_inflate() against zlib's own compressor, and base_deflate()
 * against zlib's own decompressor. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "base/base.h"

/* in compressed by zlib as a zlib (windowBits 15) or gzip (15 + 16) stream, into out. */
static size_t squeeze(const uint8_t *in, size_t n, bool gzip, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

static uint8_t plain[300000], packed[400000];

Test(inflate, both_formats_read_back_what_zlib_wrote_at_every_size)
{
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)((i * 2654435761u) >> (i % 7 == 0 ? 24 : 28)); /* some repetition */
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 65536, 299999};
    for (int g = 0; g < 2; g++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            size_t m = squeeze(plain, n, g, packed, sizeof packed);
            base_arena_t a = {0};
            uint8_t *out = NULL;
            size_t len = 99;
            int rc = base_inflate(packed, m, g ? BASE_INFLATE_GZIP : BASE_INFLATE_ZLIB, n, &a, &out,
                                  &len);
            cr_assert_eq(rc, 0, "gzip %d, %zu bytes: %d", g, n, rc);
            cr_assert_eq(len, n);
            cr_assert(n == 0 || memcmp(out, plain, n) == 0);
            /* One byte short of the bound is over it. */
            if (n > 0)
                cr_assert_eq(base_inflate(packed, m, g ? BASE_INFLATE_GZIP : BASE_INFLATE_ZLIB,
                                          n - 1, &a, &out, &len),
                             -EMSGSIZE);
            base_arena_free(&a);
        }
    }
}

Test(inflate, a_bomb_stops_at_the_bound)
{
    /* 64 MiB of zeros squeeze to about 64 KB; the bound is 1 MiB. */
    size_t n = 64u << 20;
    uint8_t *zeros = calloc(1, n);
    uint8_t *bomb = malloc(1 << 20);
    cr_assert(zeros != NULL && bomb != NULL);
    size_t m = squeeze(zeros, n, true, bomb, 1 << 20);
    cr_assert_lt(m, 200000);
    base_arena_t a = {0};
    uint8_t *out;
    size_t len;
    cr_assert_eq(base_inflate(bomb, m, BASE_INFLATE_GZIP, 1u << 20, &a, &out, &len), -EMSGSIZE);
    cr_assert_eq(a.used_total, 0, "nothing of a refused stream stays in the arena");
    base_arena_free(&a);
    free(zeros);
    free(bomb);
}

Test(inflate, corrupt_truncated_and_trailing_bytes_are_refused)
{
    memset(plain, 'x', 5000);
    size_t m = squeeze(plain, 5000, false, packed, sizeof packed);
    base_arena_t a = {0};
    uint8_t *out;
    size_t len;
    cr_assert_eq(base_inflate(packed, m - 3, BASE_INFLATE_ZLIB, 1 << 20, &a, &out, &len), -EINVAL,
                 "truncated");
    packed[m] = 0;
    cr_assert_eq(base_inflate(packed, m + 1, BASE_INFLATE_ZLIB, 1 << 20, &a, &out, &len), -EINVAL,
                 "a byte after the end");
    cr_assert_eq(base_inflate(packed, m, BASE_INFLATE_GZIP, 1 << 20, &a, &out, &len), -EINVAL,
                 "a zlib stream is not gzip");
    cr_assert_eq(base_inflate("not compressed", 14, BASE_INFLATE_ZLIB, 1 << 20, &a, &out, &len),
                 -EINVAL);
    cr_assert_eq(base_inflate("", 0, BASE_INFLATE_GZIP, 1 << 20, &a, &out, &len), -EINVAL);
    base_arena_free(&a);
}

/* base_deflate()'s streams, read back by zlib itself (inflate with the format's window bits),
 * at every size: the bytes come back, and a gzip stream starts with gzip's magic. */
Test(deflate, zlib_reads_back_both_formats_at_every_size)
{
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)((i * 2654435761u) >> (i % 7 == 0 ? 24 : 28));
    static const size_t sizes[] = {0, 1, 100, 4096, 65537, 299999};
    for (int g = 0; g < 2; g++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            uint8_t *out = NULL;
            size_t len = 0;
            cr_assert_eq(
                base_deflate(plain, n, g ? BASE_INFLATE_GZIP : BASE_INFLATE_ZLIB, &out, &len), 0);
            cr_assert_gt(len, 0);
            if (g)
                cr_assert(out[0] == 0x1f && out[1] == 0x8b, "gzip magic");
            else
                cr_assert_eq(out[0] & 0x0f, 8, "zlib header: deflate");
            static uint8_t back[300001];
            z_stream z;
            memset(&z, 0, sizeof z);
            cr_assert_eq(inflateInit2(&z, g ? 15 + 16 : 15), Z_OK);
            z.next_in = out;
            z.avail_in = (uInt)len;
            z.next_out = back;
            z.avail_out = sizeof back;
            cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END, "size %zu, gzip %d", n, g);
            cr_assert_eq(z.total_out, n);
            cr_assert_eq(z.avail_in, 0, "nothing after the stream");
            inflateEnd(&z);
            cr_assert_eq(memcmp(back, plain, n), 0);
            free(out);
        }
    }
}

/* Repetitive data (as feature rows are) shrinks, and base_inflate() takes it back. */
Test(deflate, repetitive_input_shrinks_and_round_trips)
{
    static uint8_t rows[100000];
    for (size_t i = 0; i < sizeof rows; i++)
        rows[i] = "\x0a\x08driver_1\x12\x02\x08\x07"[i % 14];
    uint8_t *out = NULL;
    size_t len = 0;
    cr_assert_eq(base_deflate(rows, sizeof rows, BASE_INFLATE_GZIP, &out, &len), 0);
    cr_assert_lt(len, sizeof rows / 20, "%zu bytes", len);
    base_arena_t a = {0};
    uint8_t *back = NULL;
    size_t back_len = 0;
    cr_assert_eq(base_inflate(out, len, BASE_INFLATE_GZIP, sizeof rows, &a, &back, &back_len), 0);
    cr_assert_eq(back_len, sizeof rows);
    cr_assert_eq(memcmp(back, rows, sizeof rows), 0);
    base_arena_free(&a);
    free(out);
}
