/* base/hash.c - the word-at-a-time hash for long keys. */
#include <string.h>

#include "base/base.h"

/* An 8-byte little-endian load; unaligned access goes through memcpy, which compiles to one
 * load. */
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The last n < 8 bytes folded into a word without a loop over them. */
static inline uint64_t load_tail(const uint8_t *p, size_t n)
{
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return lo | (uint64_t)hi << 32;
    }
    if (n > 0)
        return (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
    return 0;
}

#define HASH_MUL 0x9e3779b97f4a7c15ull

/* Murmur3's finaliser: every output bit depends on every input bit. */
static inline uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* 32 bytes a step in four independent lanes, each an xor and a multiply per word (FNV-1a's step
 * on words instead of bytes), mixed once at the end; the length goes in too. */
uint64_t base_hash_words(const void *data, size_t n, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h0 = BASE_FNV_OFFSET ^ seed, h1 = n, h2 = HASH_MUL, h3 = ~seed;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        h0 = (h0 ^ load64(p + i)) * HASH_MUL;
        h1 = (h1 ^ load64(p + i + 8)) * HASH_MUL;
        h2 = (h2 ^ load64(p + i + 16)) * HASH_MUL;
        h3 = (h3 ^ load64(p + i + 24)) * HASH_MUL;
    }
    for (; i + 8 <= n; i += 8)
        h0 = (h0 ^ load64(p + i)) * HASH_MUL;
    h1 = (h1 ^ load_tail(p + i, n - i)) * HASH_MUL;
    return fmix(fmix(h0 ^ fmix(h1)) ^ fmix(h2 ^ fmix(h3)));
}
