/* base/inflate.c - zlib and gzip streams decompressed up to a bound, and compressed, with zlib. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/base.h"

/* The next step's input and output: zlib counts in uInt, so at most 1 GiB of each. */
static void z_window(z_stream *z, const uint8_t *src, size_t src_left, uint8_t *dst,
                     size_t dst_left)
{
    z->next_in = (Bytef *)src;
    z->avail_in = src_left > (1u << 30) ? (1u << 30) : (uInt)src_left;
    z->next_out = dst;
    z->avail_out = dst_left > (1u << 30) ? (1u << 30) : (uInt)dst_left;
}

int base_inflate(const void *in, size_t n, base_inflate_format_t format, size_t max,
                 base_arena_t *a, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 15: the largest window; +16: a gzip header and trailer instead of zlib's. */
    if (inflateInit2(&z, format == BASE_INFLATE_GZIP ? 15 + 16 : 15) != Z_OK)
        return -ENOMEM;
    /* The output grows by doubling, from a guess of 4x the input, up to max + 1: one byte past
     * max is how an over-long stream is seen without reading the rest of it. */
    size_t cap = n < SIZE_MAX / 4 ? 4 * n : SIZE_MAX;
    if (cap < 4096)
        cap = 4096;
    if (cap > max + 1)
        cap = max + 1;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        inflateEnd(&z);
        return -ENOMEM;
    }
    const uint8_t *src = in;
    size_t src_left = n, len = 0;
    int rc = 0, zr = Z_OK;
    while (zr != Z_STREAM_END) {
        if (len == cap) {
            if (cap > max) {
                rc = -EMSGSIZE;
                break;
            }
            size_t next = cap <= (max + 1) / 2 ? 2 * cap : max + 1;
            uint8_t *p = realloc(buf, next);
            if (p == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = p;
            cap = next;
        }
        z_window(&z, src, src_left, buf + len, cap - len);
        uInt in_now = z.avail_in, out_now = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        src += in_now - z.avail_in;
        src_left -= in_now - z.avail_in;
        len += out_now - z.avail_out;
        if (zr == Z_BUF_ERROR && z.avail_out > 0) {
            rc = -EINVAL; /* no progress with room to write: the input ended early */
            break;
        }
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
            break;
        }
    }
    inflateEnd(&z);
    if (rc == 0 && len > max)
        rc = -EMSGSIZE;
    if (rc == 0 && src_left > 0)
        rc = -EINVAL; /* bytes after the stream's end */
    uint8_t *copy = NULL;
    if (rc == 0) {
        copy = base_arena_alloc(a, len > 0 ? len : 1);
        if (copy == NULL)
            rc = -ENOMEM;
        else if (len > 0)
            memcpy(copy, buf, len);
    }
    free(buf);
    if (rc < 0)
        return rc;
    *out = copy;
    *out_len = len;
    return 0;
}

int base_deflate(const void *in, size_t n, base_inflate_format_t format, uint8_t **out,
                 size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 15 + 16 as for inflate; 8: zlib's default memory level. */
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, format == BASE_INFLATE_GZIP ? 15 + 16 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    /* deflateBound() counts in uLong, which is 64 bits here: the whole input in one bound. */
    size_t cap = deflateBound(&z, (uLong)n);
    uint8_t *buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    const uint8_t *src = in;
    size_t src_left = n, len = 0;
    int zr = Z_OK;
    while (zr != Z_STREAM_END) {
        z_window(&z, src, src_left, buf + len, cap - len);
        uInt in_now = z.avail_in, out_now = z.avail_out;
        zr = deflate(&z, in_now == src_left ? Z_FINISH : Z_NO_FLUSH);
        src += in_now - z.avail_in;
        src_left -= in_now - z.avail_in;
        len += out_now - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END) {
            /* Within deflateBound() zlib never runs out of room: only memory can fail. */
            deflateEnd(&z);
            free(buf);
            return -ENOMEM;
        }
    }
    deflateEnd(&z);
    /* Most replies shrink a lot: the bound's slack is not kept while the reply is sent. */
    if (len < cap / 2) {
        uint8_t *fit = realloc(buf, len > 0 ? len : 1);
        if (fit != NULL)
            buf = fit;
    }
    *out = buf;
    *out_len = len;
    return 0;
}
