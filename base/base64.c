/* base/base64.c - base64 (RFC 4648): standard encoding; strict or lenient decoding. */
#include "base/base.h"

static const char enc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = enc[x >> 18];
        out[o++] = enc[(x >> 12) & 63];
        out[o++] = enc[(x >> 6) & 63];
        out[o++] = enc[x & 63];
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)in[i] << 16;
        out[o++] = enc[x >> 18];
        out[o++] = enc[(x >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = enc[x >> 18];
        out[o++] = enc[(x >> 12) & 63];
        out[o++] = enc[(x >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* The six bits of c, or -1; the URL-safe alphabet's '-' and '_' only when lenient. */
static int value_of(char c, bool lenient)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || (lenient && c == '-'))
        return 62;
    if (c == '/' || (lenient && c == '_'))
        return 63;
    return -1;
}

long base_base64_decode(const char *in, size_t n, uint8_t *out, unsigned flags)
{
    bool lenient = (flags & BASE_BASE64_LENIENT) != 0;
    if (!lenient && n % 4 != 0)
        return -1;
    size_t len = 0, chars = 0, i = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; i < n && in[i] != '='; i++) {
        int v = value_of(in[i], lenient);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        chars++;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    size_t pad = n - i;
    for (; i < n; i++) {
        if (in[i] != '=')
            return -1;
    }
    /* chars % 4 == 1 leaves six bits that make no byte; padding, when present, completes a
     * quantum of four exactly (strict input always has it: its length is a multiple of 4). */
    if (chars % 4 == 1 || (pad > 0 && (pad > 2 || (chars + pad) % 4 != 0)))
        return -1;
    return (long)len;
}
