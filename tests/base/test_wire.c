/* tests/base/test_wire.c - protobuf varints and repeated-string bodies. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/base.h"

Test(varint, round_trips_at_every_length_boundary)
{
    uint64_t vals[] = {0,
                       1,
                       127,
                       128,
                       300,
                       16383,
                       16384,
                       (1ull << 21) - 1,
                       1ull << 21,
                       (1ull << 35) + 5,
                       (1ull << 56) - 1,
                       1ull << 63,
                       UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[10];
        uint8_t *end = base_put_varint(buf, vals[i]);
        cr_assert_eq((size_t)(end - buf), base_varint_size(vals[i]), "size of %llu",
                     (unsigned long long)vals[i]);
        const uint8_t *p = buf;
        uint64_t got = 0;
        cr_assert(base_get_varint(&p, end, &got));
        cr_assert_eq(got, vals[i]);
        cr_assert_eq(p, end);
    }
    uint8_t b300[] = {0xac, 0x02};
    uint8_t buf[10];
    cr_assert_eq(base_put_varint(buf, 300) - buf, 2);
    cr_assert_eq(memcmp(buf, b300, 2), 0, "300 is ac 02 on the wire");
}

Test(varint, truncated_overlong_and_oversized_ones_are_refused)
{
    uint64_t v;
    const uint8_t truncated[] = {0x80, 0x80};
    const uint8_t *p = truncated;
    cr_assert_not(base_get_varint(&p, truncated + 2, &v));
    cr_assert_eq(p, truncated, "a refused varint moves nothing");
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    p = eleven;
    cr_assert_not(base_get_varint(&p, eleven + sizeof eleven, &v));
    /* A tenth byte above 1 would carry bits past 64. */
    const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    p = big;
    cr_assert_not(base_get_varint(&p, big + sizeof big, &v));
    const uint8_t empty[1] = {0};
    p = empty;
    cr_assert_not(base_get_varint(&p, empty, &v));
}

Test(wire_strings, is_a_tag_a_length_and_the_bytes_each)
{
    base_arena_t a;
    base_arena_init(&a, 1024);
    const char *strs[] = {"ab", "", "xyz"};
    size_t lens[] = {2, 0, 3};
    const uint8_t *out = NULL;
    size_t len = 0;
    cr_assert_eq(base_wire_strings(&a, strs, lens, 3, &out, &len), 0);
    const uint8_t want[] = {0x0a, 2, 'a', 'b', 0x0a, 0, 0x0a, 3, 'x', 'y', 'z'};
    cr_assert_eq(len, sizeof want);
    cr_assert_eq(memcmp(out, want, len), 0);
    cr_assert_eq(base_wire_strings(&a, strs, lens, 0, &out, &len), 0);
    cr_assert_eq(len, 0);
    base_arena_free(&a);
}
