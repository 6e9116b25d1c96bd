/* server/ref_cache.c - per-worker cache of resolved feature lists (references -> views, names). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Clients send the same feature list (or feature service) with every request, and resolving it
 * is most of a small read's cost: per reference a parse, two hash lookups and a response column
 * name. So each read worker remembers its recent lists, keyed by the exact strings the request
 * carried. The cache belongs to one thread, so it takes no lock and shares no cache line.
 *
 * An entry points into the catalog it was resolved against. The cache holds a reference to that
 * catalog, which is what makes comparing catalog pointers sound: the address cannot be reused by
 * another catalog while the cache still remembers it. The first request that sees another catalog
 * (a reload) empties the cache and drops the reference, so an old catalog lives at most until its
 * worker's next read.
 *
 * Only lists that resolved without error and whose column names all differ are stored: every
 * check the handler makes on a list alone has then passed, and a hit skips them all. Direct-mapped
 * on the key's hash: a new list simply replaces whatever shared its slot.
 */

#define CACHE_SLOTS 64u
/* Lists with more bytes than this are resolved every time rather than copied into the cache. */
#define CACHE_MAX_KEY_BYTES (64u * 1024u)

typedef struct cache_entry {
    uint64_t hash;
    unsigned flags;
    size_t n_keys;
    size_t key_len;
    const char *key; /* the request's strings, each NUL-terminated, back to back */
    server_resolved_t r;
} cache_entry_t;

struct server_ref_cache {
    catalog_t *catalog; /* referenced; NULL when empty */
    cache_entry_t *slots[CACHE_SLOTS];
};

int server__ref_cache_new(server_ref_cache_t **out)
{
    server_ref_cache_t *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return -ENOMEM;
    *out = rc;
    return 0;
}

static void cache_clear(server_ref_cache_t *rc)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(rc->slots[i]);
        rc->slots[i] = NULL;
    }
    catalog_unref(rc->catalog);
    rc->catalog = NULL;
}

void server__ref_cache_free(server_ref_cache_t *rc)
{
    if (rc == NULL)
        return;
    cache_clear(rc);
    free(rc);
}

/* An 8-byte little-endian load; unaligned access goes through memcpy, which compiles to one
 * load. */
static inline uint64_t load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint32_t load32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The last n < 8 bytes of a string folded into a word without a loop: two overlapping 4-byte
 * loads cover 4..7 bytes, three single bytes cover 1..3 (references like "v0:f1" are short). */
static inline uint64_t load_tail(const char *p, size_t n)
{
    if (n >= 4)
        return load32(p) | (uint64_t)load32(p + n - 4) << 32;
    if (n > 0)
        return (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[n / 2] << 8 |
               (uint64_t)(uint8_t)p[n - 1] << 16;
    return 0;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/*
 * The key's hash and its size in bytes (with the NULs). Runs on every request over every
 * feature reference (hundreds of bytes), so it takes eight bytes a step rather than FNV-1a's one.
 * Not meant to resist chosen collisions: a collision costs one failed comparison and a slot.
 */
static uint64_t key_hash(unsigned flags, const char *const *strs, const size_t *lens, size_t n,
                         size_t *bytes)
{
    uint64_t h = mix(SERVER_FNV_OFFSET, flags);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strs[i];
        size_t len = lens[i], j = 0;
        for (; j + 8 <= len; j += 8)
            h = mix(h, load64(p + j));
        /* The length goes in with the tail, which tells "ab","c" from "a","bc". */
        h = mix(h, load_tail(p + j, len - j) ^ ((uint64_t)len << 56));
        total += len + 1;
    }
    *bytes = total;
    return h;
}

/* memcmp() for short strings without the call: feature references are a few words long. The
 * last step overlaps the previous one rather than looping over single bytes. */
static inline bool bytes_equal(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        for (size_t j = 0; j + 8 < n; j += 8) {
            if (load64(a + j) != load64(b + j))
                return false;
        }
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4)
        return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    for (size_t j = 0; j < n; j++) {
        if (a[j] != b[j])
            return false;
    }
    return true;
}

static bool key_equal(const cache_entry_t *e, const char *const *strs, const size_t *lens, size_t n)
{
    const char *k = e->key;
    for (size_t i = 0; i < n; i++) {
        /* Request strings hold no NUL, so the stored NUL ends both. */
        if (k[lens[i]] != '\0' || !bytes_equal(k, strs[i], lens[i]))
            return false;
        k += lens[i] + 1;
    }
    return true;
}

/* Forgets everything resolved against another catalog and takes a reference to cat. */
static void cache_use_catalog(server_ref_cache_t *rc, const catalog_t *cat)
{
    if (rc->catalog == cat)
        return;
    cache_clear(rc);
    /* The handler only holds the catalog pinned; the cache needs it to outlive the request. */
    rc->catalog = catalog_ref((catalog_t *)(uintptr_t)cat);
}

const server_resolved_t *server__ref_cache_get(server_ref_cache_t *rc, const catalog_t *cat,
                                               unsigned flags, const char *const *strs,
                                               const size_t *lens, size_t n)
{
    if (rc == NULL)
        return NULL;
    cache_use_catalog(rc, cat);
    size_t bytes;
    uint64_t h = key_hash(flags, strs, lens, n, &bytes);
    const cache_entry_t *e = rc->slots[h % CACHE_SLOTS];
    if (e == NULL || e->hash != h || e->flags != flags || e->n_keys != n || e->key_len != bytes ||
        !key_equal(e, strs, lens, n))
        return NULL;
    return &e->r;
}

/* Rounds n up for the next array in one block. */
static size_t align_up(size_t n)
{
    return (n + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
}

void server__ref_cache_put(server_ref_cache_t *rc, const catalog_t *cat, unsigned flags,
                           const char *const *strs, const size_t *lens, size_t n,
                           const server_resolved_t *r)
{
    if (rc == NULL || !r->unique)
        return;
    cache_use_catalog(rc, cat);
    size_t bytes;
    uint64_t h = key_hash(flags, strs, lens, n, &bytes);
    if (bytes > CACHE_MAX_KEY_BYTES)
        return;
    size_t name_bytes = 0;
    for (size_t i = 0; i < r->n_refs; i++)
        name_bytes += r->name_lens[i] + 1;
    size_t set_slots = (size_t)r->set_mask + 1;

    /* One block: the entry, refs, name pointers, name lengths, the name set, names, the names
     * encoded for the response, key. */
    size_t off_refs = align_up(sizeof(cache_entry_t));
    size_t off_names = off_refs + align_up(r->n_refs * sizeof *r->refs);
    size_t off_lens = off_names + align_up(r->n_refs * sizeof *r->names);
    size_t off_set = off_lens + align_up(r->n_refs * sizeof *r->name_lens);
    size_t off_chars = off_set + align_up(set_slots * sizeof *r->set);
    size_t off_pb = off_chars + name_bytes;
    size_t off_key = off_pb + r->names_pb_len;
    char *block = malloc(off_key + bytes);
    if (block == NULL)
        return; /* a cache that cannot grow is only slower */
    cache_entry_t *e = (cache_entry_t *)(void *)block;
    catalog_feature_ref_t *refs = (catalog_feature_ref_t *)(void *)(block + off_refs);
    const char **names = (const char **)(void *)(block + off_names);
    size_t *name_lens = (size_t *)(void *)(block + off_lens);
    uint32_t *set = (uint32_t *)(void *)(block + off_set);
    char *chars = block + off_chars;
    uint8_t *names_pb = (uint8_t *)block + off_pb;
    char *key = block + off_key;

    memcpy(refs, r->refs, r->n_refs * sizeof *refs);
    memcpy(name_lens, r->name_lens, r->n_refs * sizeof *name_lens);
    memcpy(set, r->set, set_slots * sizeof *set);
    if (r->names_pb_len > 0)
        memcpy(names_pb, r->names_pb, r->names_pb_len);
    for (size_t i = 0; i < r->n_refs; i++) {
        memcpy(chars, r->names[i], r->name_lens[i] + 1);
        names[i] = chars;
        chars += r->name_lens[i] + 1;
    }
    char *k = key;
    for (size_t i = 0; i < n; i++) {
        memcpy(k, strs[i], lens[i]);
        k[lens[i]] = '\0';
        k += lens[i] + 1;
    }
    e->hash = h;
    e->flags = flags;
    e->n_keys = n;
    e->key_len = bytes;
    e->key = key;
    e->r = (server_resolved_t){.n_refs = r->n_refs,
                               .refs = refs,
                               .names = names,
                               .name_lens = name_lens,
                               .unique = true,
                               .set = set,
                               .set_mask = r->set_mask,
                               .names_pb = r->names_pb != NULL ? names_pb : NULL,
                               .names_pb_len = r->names_pb_len};
    free(rc->slots[h % CACHE_SLOTS]);
    rc->slots[h % CACHE_SLOTS] = e;
}

/* ------------------------------------------------------------------------------------------ */
/* The set of column names                                                                     */

int server__resolved_index_names(server_arena_t *a, server_resolved_t *r)
{
    /* Open addressing at most half full, as server__find_duplicate(). */
    size_t cap = 16;
    while (cap < 2 * r->n_refs)
        cap *= 2;
    uint32_t *set = server__arena_calloc(a, cap, sizeof *set); /* index + 1; 0 = empty */
    if (set == NULL)
        return -ENOMEM;
    r->set = set;
    r->set_mask = (uint32_t)(cap - 1);
    r->unique = true;
    for (size_t i = 0; i < r->n_refs; i++) {
        size_t h = (size_t)server__fnv1a(r->names[i], r->name_lens[i]) & (cap - 1);
        while (set[h] != 0) {
            size_t j = set[h] - 1;
            if (r->name_lens[j] == r->name_lens[i] &&
                memcmp(r->names[j], r->names[i], r->name_lens[i]) == 0)
                r->unique = false;
            h = (h + 1) & (cap - 1);
        }
        set[h] = (uint32_t)i + 1;
    }
    return 0;
}

bool server__resolved_has_name(const server_resolved_t *r, const char *name)
{
    size_t len = strlen(name);
    size_t h = (size_t)server__fnv1a(name, len) & r->set_mask;
    while (r->set[h] != 0) {
        size_t j = r->set[h] - 1;
        if (r->name_lens[j] == len && memcmp(r->names[j], name, len) == 0)
            return true;
        h = (h + 1) & r->set_mask;
    }
    return false;
}
