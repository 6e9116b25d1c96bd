/* tests/server/test_arena.c - the per-call bump arena and its protobuf-c allocator. */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/server_int.h"

#include "feast/types/Value.pb-c.h"

Test(arena, allocations_are_aligned_and_distinct)
{
    server_arena_t a;
    server__arena_init(&a, 1024);
    char *prev = NULL;
    for (size_t n = 1; n < 300; n += 7) {
        char *p = server__arena_alloc(&a, n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, n);
        cr_assert_neq(p, prev);
        prev = p;
    }
    server__arena_free(&a);
}

Test(arena, grows_past_its_first_chunk_and_keeps_old_memory_valid)
{
    server_arena_t a;
    server__arena_init(&a, 1024);
    char *first = server__arena_alloc(&a, 100);
    strcpy(first, "still here");
    void *big = server__arena_alloc(&a, 1 << 20);
    cr_assert_not_null(big);
    memset(big, 1, 1 << 20);
    cr_assert_str_eq(first, "still here");
    server__arena_free(&a);
}

Test(arena, reset_keeps_one_chunk_big_enough_for_the_last_use)
{
    server_arena_t a;
    server__arena_init(&a, 1024);
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(server__arena_alloc(&a, 500));
    server__arena_reset(&a);
    cr_assert_not_null(a.head);
    /* The same workload now fits the one kept chunk: no new chunk appears. */
    void *head = a.head;
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(server__arena_alloc(&a, 500));
    cr_assert_eq((void *)a.head, head);
    server__arena_free(&a);
    cr_assert_null(a.head);
}

Test(arena, calloc_zeroes_and_refuses_overflow)
{
    server_arena_t a;
    server__arena_init(&a, 1024);
    int *p = server__arena_calloc(&a, 64, sizeof *p);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(p[i], 0);
    cr_assert_null(server__arena_calloc(&a, SIZE_MAX / 2, 4));
    char *s = server__arena_strndup(&a, "abcdef", 3);
    cr_assert_str_eq(s, "abc");
    server__arena_free(&a);
}

Test(arena, serves_as_protobuf_c_allocator_for_unpack)
{
    Feast__Types__Value v = FEAST__TYPES__VALUE__INIT;
    Feast__Types__StringList l = FEAST__TYPES__STRING_LIST__INIT;
    char *items[] = {"a", "bb", "ccc"};
    l.n_val = 3;
    l.val = items;
    v.val_case = FEAST__TYPES__VALUE__VAL_STRING_LIST_VAL;
    v.string_list_val = &l;
    uint8_t buf[64];
    size_t n = feast__types__value__pack(&v, buf);

    server_arena_t a;
    server__arena_init(&a, 1024);
    Feast__Types__Value *out = feast__types__value__unpack(server__arena_allocator(&a), n, buf);
    cr_assert_not_null(out);
    cr_assert_eq(out->string_list_val->n_val, 3);
    cr_assert_str_eq(out->string_list_val->val[2], "ccc");
    /* No free_unpacked: the arena owns everything (LeakSanitizer would catch a leak). */
    server__arena_free(&a);
}

Test(arena, reset_drops_a_single_chunk_over_the_keep_cap)
{
    /* One allocation bigger than the cap gets a chunk of its own as the arena's only chunk;
     * keeping it would pin a message-sized chunk in the call slot forever. */
    server_arena_t a;
    server__arena_init(&a, 1024);
    cr_assert_not_null(server__arena_alloc(&a, 4u << 20));
    server__arena_reset(&a);
    cr_assert_null(a.head);
    /* The arena still works, and a small workload's chunk is still kept. */
    cr_assert_not_null(server__arena_alloc(&a, 100));
    void *head = a.head;
    server__arena_reset(&a);
    cr_assert_eq((void *)a.head, head);
    server__arena_free(&a);
}
