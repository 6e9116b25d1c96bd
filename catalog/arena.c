/* catalog/arena.c - the per-catalog arena and the hash indexes built in it. */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_int.h"

/*
 * Chunks are large enough that a typical catalog needs a handful; anything bigger than a chunk
 * gets a chunk of its own so no space is wasted on it.
 */
#define CHUNK_SIZE (32u * 1024u)
#define ALIGN (alignof(max_align_t))

struct catalog__chunk {
    catalog__chunk_t *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

void *catalog__alloc(catalog__arena_t *a, size_t size)
{
    size = (size + ALIGN - 1) & ~(ALIGN - 1);
    if (size == 0)
        size = ALIGN;
    catalog__chunk_t *ch = a->head;
    if (ch == NULL || ch->cap - ch->used < size) {
        size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
        ch = calloc(1, sizeof *ch + cap);
        if (ch == NULL)
            return NULL;
        ch->cap = cap;
        if (a->head != NULL && size > CHUNK_SIZE) {
            /* Keep the partly used head in front: a big block must not strand its free space. */
            ch->next = a->head->next;
            a->head->next = ch;
            ch->used = size;
            return ch->data;
        }
        ch->next = a->head;
        a->head = ch;
    }
    void *p = ch->data + ch->used;
    ch->used += size;
    return p;
}

char *catalog__strndup(catalog__arena_t *a, const char *s, size_t n)
{
    char *p = catalog__alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *catalog__strdup(catalog__arena_t *a, const char *s)
{
    return catalog__strndup(a, s, strlen(s));
}

int catalog__grow(catalog__arena_t *a, void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap < 8 ? 8 : *cap * 2;
    while (ncap < need)
        ncap *= 2;
    void *p = catalog__alloc(a, ncap * elem);
    if (p == NULL)
        return -ENOMEM;
    if (*cap > 0)
        memcpy(p, *array, *cap * elem);
    *array = p;
    *cap = ncap;
    return 0;
}

void catalog__arena_free(catalog__arena_t *a)
{
    if (a == NULL)
        return;
    catalog__chunk_t *ch = a->head;
    while (ch != NULL) {
        catalog__chunk_t *next = ch->next;
        free(ch);
        ch = next;
    }
    a->head = NULL;
}

uint64_t catalog__fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int catalog__index_init(catalog__arena_t *a, catalog__index_t *ix, size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n + 1)
        cap *= 2;
    ix->slots = catalog__alloc(a, cap * sizeof *ix->slots);
    if (ix->slots == NULL)
        return -ENOMEM;
    ix->mask = cap - 1;
    return 0;
}

int catalog__index_put(catalog__index_t *ix, const char *key, size_t len, const void *val)
{
    uint64_t h = catalog__fnv1a(key, len, CATALOG__FNV_OFFSET);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        catalog__slot_t *s = &ix->slots[i];
        if (s->key == NULL) {
            s->key = key;
            s->len = len;
            s->hash = h;
            s->val = val;
            return 0;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return -EEXIST;
    }
}

const void *catalog__index_get(const catalog__index_t *ix, const char *key, size_t len)
{
    if (ix->slots == NULL)
        return NULL;
    uint64_t h = catalog__fnv1a(key, len, CATALOG__FNV_OFFSET);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        const catalog__slot_t *s = &ix->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s->val;
    }
}
