/* core/ref_cache.c - per-worker cache of resolved feature lists (references -> views, names). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Clients send the same feature list (or feature service) with every request, and resolving it
 * is most of a small read's cost: per reference a parse, two hash lookups and a response column
 * name. So each read worker remembers its recent lists, keyed by the exact bytes the request
 * carried: the feature list's repeated-string field as sent (the decoder accepts only minimal
 * encodings, so a list has one wire form), HTTP's JSON array as sent (core_feature_list_t says
 * why the forms never collide), or the service's name. A lookup may be given bytes nobody
 * has checked yet; a stored key always was (parsed by server__feast_decode_features(), or
 * re-encoded from what protobuf-c parsed, or, for HTTP's JSON keys, by
 * http__feast_read_features()), so a hit is a list that was valid. Comparing those bytes is cheaper
 * than comparing the strings one by one, and a hit need not even split them. The cache belongs to
 * one thread, so it takes no lock and shares no cache line.
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

/* Lists with more bytes than this are resolved every time rather than copied into the cache. */
#define CACHE_MAX_KEY_BYTES (64u * 1024u)

typedef struct cache_entry {
    uint64_t hash;
    unsigned flags;
    size_t key_len;
    const uint8_t *key; /* a copy of the request's bytes */
    core_resolved_t r;
} cache_entry_t;

struct core__ref_cache {
    core__slots_t t;    /* of cache_entry_t */
    uint64_t hash_mask; /* every bit, but for tests of collisions */
};

int core__ref_cache_new(core__ref_cache_t **out)
{
    core__ref_cache_t *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return -ENOMEM;
    rc->hash_mask = UINT64_MAX;
    *out = rc;
    return 0;
}

void core__ref_cache_hash_mask(core__ref_cache_t *rc, uint64_t mask)
{
    rc->hash_mask = mask;
}

void core__ref_cache_free(core__ref_cache_t *rc)
{
    if (rc == NULL)
        return;
    core__slots_clear(&rc->t);
    free(rc);
}

const core_resolved_t *core__ref_cache_get(core__ref_cache_t *rc, const catalog_t *cat,
                                           unsigned flags, const uint8_t *key, size_t key_len)
{
    /* A list longer than put() keeps is never there: no need to hash it. */
    if (rc == NULL || key_len > CACHE_MAX_KEY_BYTES)
        return NULL;
    core__slots_use(&rc->t, cat);
    uint64_t h = base_hash_words(key, key_len, flags) & rc->hash_mask;
    const cache_entry_t *e = rc->t.slot[h % CORE__SLOTS];
    if (e == NULL || e->hash != h || e->flags != flags || e->key_len != key_len ||
        memcmp(e->key, key, key_len) != 0)
        return NULL;
    return &e->r;
}

void core__ref_cache_put(core__ref_cache_t *rc, const catalog_t *cat, unsigned flags,
                         const uint8_t *key, size_t key_len, const core_resolved_t *r)
{
    if (rc == NULL || !r->unique || key_len > CACHE_MAX_KEY_BYTES)
        return;
    core__slots_use(&rc->t, cat);
    uint64_t h = base_hash_words(key, key_len, flags) & rc->hash_mask;
    size_t name_bytes = 0;
    for (size_t i = 0; i < r->n_refs; i++)
        name_bytes += r->name_lens[i] + 1;
    size_t set_slots = (size_t)r->set.mask + 1;

    const core_ref_groups_t *g = &r->groups;
    size_t n_grouped = g->groups != NULL ? g->n_refs : 0;

    /* One block: the entry, refs, name pointers, name lengths, the name set, the groups, their
     * ref and feature indexes, the views, names, the names encoded for the response, key. */
    size_t off_refs = core__align_up(sizeof(cache_entry_t));
    size_t off_names = off_refs + core__align_up(r->n_refs * sizeof *r->refs);
    size_t off_lens = off_names + core__align_up(r->n_refs * sizeof *r->names);
    size_t off_set = off_lens + core__align_up(r->n_refs * sizeof *r->name_lens);
    size_t off_groups = off_set + core__align_up(set_slots * sizeof *r->set.slots);
    size_t off_ref_idx = off_groups + core__align_up(g->n_groups * sizeof *g->groups);
    size_t off_feature_idx = off_ref_idx + core__align_up(n_grouped * sizeof *g->ref_idx);
    size_t off_views = off_feature_idx + core__align_up(n_grouped * sizeof *g->feature_idx);
    size_t off_chars = off_views + core__align_up(r->n_views * sizeof *r->views);
    size_t off_pb = off_chars + name_bytes;
    size_t off_key = off_pb + r->names_enc_len;
    char *block = malloc(off_key + (key_len == 0 ? 1 : key_len));
    if (block == NULL)
        return; /* a cache that cannot grow is only slower */
    cache_entry_t *e = (cache_entry_t *)(void *)block;
    catalog_feature_ref_t *refs = (catalog_feature_ref_t *)(void *)(block + off_refs);
    const char **names = (const char **)(void *)(block + off_names);
    size_t *name_lens = (size_t *)(void *)(block + off_lens);
    uint32_t *set = (uint32_t *)(void *)(block + off_set);
    core_ref_group_t *groups = (core_ref_group_t *)(void *)(block + off_groups);
    uint32_t *ref_idx = (uint32_t *)(void *)(block + off_ref_idx);
    uint32_t *feature_idx = (uint32_t *)(void *)(block + off_feature_idx);
    core_view_md_t *views = (core_view_md_t *)(void *)(block + off_views);
    char *chars = block + off_chars;
    uint8_t *names_enc = (uint8_t *)block + off_pb;
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
    if (r->names_enc_len > 0)
        memcpy(names_enc, r->names_enc, r->names_enc_len);
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
    core_ref_groups_t gc = *g;
    gc.groups = g->groups != NULL ? groups : NULL;
    gc.ref_idx = g->groups != NULL ? ref_idx : NULL;
    gc.feature_idx = g->groups != NULL ? feature_idx : NULL;
    e->r = (core_resolved_t){.n_refs = r->n_refs,
                             .refs = refs,
                             .names = names,
                             .name_lens = name_lens,
                             .unique = true,
                             .set = {.slots = set, .mask = r->set.mask},
                             .names_enc = r->names_enc != NULL ? names_enc : NULL,
                             .names_enc_len = r->names_enc_len,
                             .groups = gc,
                             .n_views = r->n_views,
                             .views = r->views != NULL ? views : NULL};
    core__slots_put(&rc->t, h % CORE__SLOTS, e);
}

/* ------------------------------------------------------------------------------------------ */
/* The set of column names                                                                     */

int core__resolved_index_names(base_arena_t *a, core_resolved_t *r)
{
    long repeats = base_name_index_build(a, r->names, r->name_lens, r->n_refs, &r->set, NULL);
    if (repeats < 0)
        return (int)repeats;
    r->unique = repeats == 0;
    return 0;
}

bool core__resolved_has_name(const core_resolved_t *r, const char *name)
{
    return base_name_index_find(&r->set, r->names, r->name_lens, name, strlen(name)) >= 0;
}
