/* tests/base/test_name_index.c - the index over names, duplicates, and the two hashes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

Test(name_index, finds_every_name_and_misses_the_rest)
{
    base_arena_t a;
    base_arena_init(&a, 4096);
    const char *names[] = {"conv_rate", "trips", "label", "", "a\0b"};
    size_t lens[] = {9, 5, 5, 0, 3};
    base_name_index_t ix;
    cr_assert_eq(base_name_index_build(&a, names, lens, 5, &ix, NULL), 0);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(base_name_index_find(&ix, names, lens, names[i], lens[i]), (long)i);
    cr_assert_eq(base_name_index_find(&ix, names, lens, "trip", 4), -1);
    cr_assert_eq(base_name_index_find(&ix, names, lens, "a\0c", 3), -1, "bytes after a NUL count");
    base_arena_free(&a);
}

Test(name_index, repeats_are_reported_and_the_first_is_found)
{
    base_arena_t a;
    base_arena_init(&a, 4096);
    const char *names[] = {"x", "y", "x", "z", "y", "x"};
    size_t lens[] = {1, 1, 1, 1, 1, 1};
    long dup[6];
    base_name_index_t ix;
    cr_assert_eq(base_name_index_build(&a, names, lens, 6, &ix, dup), 3);
    long want[] = {-1, -1, 0, -1, 1, 0};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(dup[i], want[i], "name %zu", i);
    cr_assert_eq(base_name_index_find(&ix, names, lens, "x", 1), 0);
    cr_assert_eq(base_name_index_find(&ix, names, lens, "y", 1), 1);
    base_arena_free(&a);
}

Test(name_index, added_one_at_a_time_like_built_at_once)
{
    base_arena_t a;
    base_arena_init(&a, 4096);
    enum { N = 1000 };
    static char buf[N][16];
    static const char *names[N];
    static size_t lens[N];
    for (size_t i = 0; i < N; i++) {
        lens[i] = (size_t)snprintf(buf[i], sizeof buf[i], "f%zu", i % 700);
        names[i] = buf[i];
    }
    base_name_index_t ix;
    cr_assert_eq(base_name_index_init(&a, &ix, N), 0);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(base_name_index_add(&ix, names, lens, i), i < 700 ? -1 : (long)(i - 700));
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(base_name_index_find(&ix, names, lens, names[i], lens[i]), (long)(i % 700));
    base_arena_free(&a);
}

Test(find_duplicate, names_the_first_repeat_in_linear_time, .timeout = 20)
{
    base_arena_t a;
    base_arena_init(&a, 1 << 20);
    enum { N = 200000 };
    static char buf[N][16];
    static const char *names[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "c%zu", i);
        names[i] = buf[i];
    }
    size_t first = 0, second = 0;
    cr_assert_eq(base_find_duplicate(&a, names, N, &first, &second), 0);
    names[N - 1] = names[12345];
    cr_assert_eq(base_find_duplicate(&a, names, N, &first, &second), 1);
    cr_assert_eq(first, 12345);
    cr_assert_eq(second, N - 1);
    base_arena_free(&a);
}

Test(hash, fnv1a_is_the_published_64_bit_fnv_1a)
{
    /* Test vectors of the FNV reference (Fowler, Noll, Vo): the catalog digest depends on it. */
    cr_assert_eq(base_fnv1a("", 0, BASE_FNV_OFFSET), 0xcbf29ce484222325ull);
    cr_assert_eq(base_fnv1a("a", 1, BASE_FNV_OFFSET), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(base_fnv1a("foobar", 6, BASE_FNV_OFFSET), 0x85944171f73967e8ull);
    /* Continuing from a hash is hashing the concatenation. */
    cr_assert_eq(base_fnv1a("bar", 3, base_fnv1a("foo", 3, BASE_FNV_OFFSET)),
                 base_fnv1a("foobar", 6, BASE_FNV_OFFSET));
}

Test(hash, words_hash_sees_every_byte_length_and_seed)
{
    uint8_t key[300];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7);
    for (size_t n = 0; n <= sizeof key; n += 1) {
        uint64_t h = base_hash_words(key, n, 1);
        cr_assert_eq(h, base_hash_words(key, n, 1), "deterministic");
        cr_assert_neq(h, base_hash_words(key, n, 2), "the seed counts (n=%zu)", n);
        if (n > 0)
            cr_assert_neq(h, base_hash_words(key, n - 1, 1), "the length counts (n=%zu)", n);
        for (size_t i = 0; i < n; i++) {
            key[i] ^= 0x10;
            cr_assert_neq(h, base_hash_words(key, n, 1), "byte %zu of %zu", i, n);
            key[i] ^= 0x10;
        }
    }
}
