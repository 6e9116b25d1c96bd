/* server/ref_cache.c - per-worker cache of resolved feature lists (references -> views, names). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/*
 * Clients send the same feature list (or feature service) with every request, and resolving it
 * is most of a small read's cost: per reference a parse, two hash lookups and a response column
 * name. So each read worker remembers its recent lists, keyed by the exact bytes the request
 * carried: the feature list's repeated-string field as sent (the decoder accepts only minimal
 * encodings, so a list has one form) or the service's name. A lookup may be given bytes nobody
 * has checked yet; a stored key always was (parsed by server__feast_decode_features(), or
 * re-encoded from what protobuf-c parsed), so a hit is a list that was valid. Comparing those bytes
 * is cheaper than comparing the strings one by one, and a hit need not even split them. The cache
 * belongs to one thread, so it takes no lock and shares no cache line.
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
    size_t key_len;
    const uint8_t *key; /* a copy of the request's bytes */
    server_resolved_t r;
} cache_entry_t;

struct server_ref_cache {
    catalog_t *catalog; /* referenced; NULL when empty */
    uint64_t hash_mask; /* every bit, but for tests of collisions */
    cache_entry_t *slots[CACHE_SLOTS];
};

int server__ref_cache_new(server_ref_cache_t **out)
{
    server_ref_cache_t *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return -ENOMEM;
    rc->hash_mask = UINT64_MAX;
    *out = rc;
    return 0;
}

void server__ref_cache_hash_mask(server_ref_cache_t *rc, uint64_t mask)
{
    rc->hash_mask = mask;
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

/*
 * The key's hash. Runs on every request over its whole list (a few hundred bytes for 50
 * references, two thousand for 250), so it takes 32 bytes a step in four independent lanes, each
 * an xor and a multiply per word (FNV-1a's step on words instead of bytes), and mixes them once
 * at the end; the length goes in too. Not meant to resist chosen collisions: a collision costs
 * one failed comparison and a slot, never a wrong answer.
 */
static uint64_t key_hash(unsigned flags, const uint8_t *p, size_t n)
{
    uint64_t h0 = SERVER_FNV_OFFSET ^ flags, h1 = n, h2 = HASH_MUL, h3 = ~(uint64_t)flags;
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
                                               unsigned flags, const uint8_t *key, size_t key_len)
{
    /* A list longer than put() keeps is never there: no need to hash it. */
    if (rc == NULL || key_len > CACHE_MAX_KEY_BYTES)
        return NULL;
    cache_use_catalog(rc, cat);
    uint64_t h = key_hash(flags, key, key_len) & rc->hash_mask;
    const cache_entry_t *e = rc->slots[h % CACHE_SLOTS];
    if (e == NULL || e->hash != h || e->flags != flags || e->key_len != key_len ||
        memcmp(e->key, key, key_len) != 0)
        return NULL;
    return &e->r;
}

/* Rounds n up for the next array in one block. */
static size_t align_up(size_t n)
{
    return (n + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
}

void server__ref_cache_put(server_ref_cache_t *rc, const catalog_t *cat, unsigned flags,
                           const uint8_t *key, size_t key_len, const server_resolved_t *r)
{
    if (rc == NULL || !r->unique || key_len > CACHE_MAX_KEY_BYTES)
        return;
    cache_use_catalog(rc, cat);
    uint64_t h = key_hash(flags, key, key_len) & rc->hash_mask;
    size_t name_bytes = 0;
    for (size_t i = 0; i < r->n_refs; i++)
        name_bytes += r->name_lens[i] + 1;
    size_t set_slots = (size_t)r->set.mask + 1;

    const server_ref_groups_t *g = &r->groups;
    size_t n_grouped = g->groups != NULL ? g->n_refs : 0;

    /* One block: the entry, refs, name pointers, name lengths, the name set, the groups, their
     * ref and feature indexes, the views, names, the names encoded for the response, key. */
    size_t off_refs = align_up(sizeof(cache_entry_t));
    size_t off_names = off_refs + align_up(r->n_refs * sizeof *r->refs);
    size_t off_lens = off_names + align_up(r->n_refs * sizeof *r->names);
    size_t off_set = off_lens + align_up(r->n_refs * sizeof *r->name_lens);
    size_t off_groups = off_set + align_up(set_slots * sizeof *r->set.slots);
    size_t off_ref_idx = off_groups + align_up(g->n_groups * sizeof *g->groups);
    size_t off_feature_idx = off_ref_idx + align_up(n_grouped * sizeof *g->ref_idx);
    size_t off_views = off_feature_idx + align_up(n_grouped * sizeof *g->feature_idx);
    size_t off_chars = off_views + align_up(r->n_views * sizeof *r->views);
    size_t off_pb = off_chars + name_bytes;
    size_t off_key = off_pb + r->names_pb_len;
    char *block = malloc(off_key + (key_len == 0 ? 1 : key_len));
    if (block == NULL)
        return; /* a cache that cannot grow is only slower */
    cache_entry_t *e = (cache_entry_t *)(void *)block;
    catalog_feature_ref_t *refs = (catalog_feature_ref_t *)(void *)(block + off_refs);
    const char **names = (const char **)(void *)(block + off_names);
    size_t *name_lens = (size_t *)(void *)(block + off_lens);
    uint32_t *set = (uint32_t *)(void *)(block + off_set);
    server_ref_group_t *groups = (server_ref_group_t *)(void *)(block + off_groups);
    uint32_t *ref_idx = (uint32_t *)(void *)(block + off_ref_idx);
    uint32_t *feature_idx = (uint32_t *)(void *)(block + off_feature_idx);
    server_feast_view_md_t *views = (server_feast_view_md_t *)(void *)(block + off_views);
    char *chars = block + off_chars;
    uint8_t *names_pb = (uint8_t *)block + off_pb;
    uint8_t *key_copy = (uint8_t *)block + off_key;

    memcpy(refs, r->refs, r->n_refs * sizeof *refs);
    memcpy(name_lens, r->name_lens, r->n_refs * sizeof *name_lens);
    memcpy(set, r->set.slots, set_slots * sizeof *set);
    if (g->n_groups > 0)
        memcpy(groups, g->groups, g->n_groups * sizeof *groups);
    if (n_grouped > 0) {
        memcpy(ref_idx, g->ref_idx, n_grouped * sizeof *ref_idx);
        memcpy(feature_idx, g->feature_idx, n_grouped * sizeof *feature_idx);
    }
    /* View names stay the catalog's, which the cache keeps alive. */
    if (r->n_views > 0)
        memcpy(views, r->views, r->n_views * sizeof *views);
    if (r->names_pb_len > 0)
        memcpy(names_pb, r->names_pb, r->names_pb_len);
    for (size_t i = 0; i < r->n_refs; i++) {
        memcpy(chars, r->names[i], r->name_lens[i] + 1);
        names[i] = chars;
        chars += r->name_lens[i] + 1;
    }
    if (key_len > 0)
        memcpy(key_copy, key, key_len);
    e->hash = h;
    e->flags = flags;
    e->key_len = key_len;
    e->key = key_copy;
    server_ref_groups_t gc = *g;
    gc.groups = g->groups != NULL ? groups : NULL;
    gc.ref_idx = g->groups != NULL ? ref_idx : NULL;
    gc.feature_idx = g->groups != NULL ? feature_idx : NULL;
    e->r = (server_resolved_t){.n_refs = r->n_refs,
                               .refs = refs,
                               .names = names,
                               .name_lens = name_lens,
                               .unique = true,
                               .set = {.slots = set, .mask = r->set.mask},
                               .names_pb = r->names_pb != NULL ? names_pb : NULL,
                               .names_pb_len = r->names_pb_len,
                               .groups = gc,
                               .n_views = r->n_views,
                               .views = r->views != NULL ? views : NULL};
    free(rc->slots[h % CACHE_SLOTS]);
    rc->slots[h % CACHE_SLOTS] = e;
}

/* ------------------------------------------------------------------------------------------ */
/* The set of column names                                                                     */

int server__resolved_index_names(server_arena_t *a, server_resolved_t *r)
{
    long repeats = server__name_index_build(a, r->names, r->name_lens, r->n_refs, &r->set, NULL);
    if (repeats < 0)
        return (int)repeats;
    r->unique = repeats == 0;
    return 0;
}

bool server__resolved_has_name(const server_resolved_t *r, const char *name)
{
    return server__name_index_find(&r->set, r->names, r->name_lens, name, strlen(name)) >= 0;
}
