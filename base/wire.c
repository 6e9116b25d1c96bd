/* base/wire.c - protobuf bodies every layer writes the same way. */
#include <errno.h>
#include <string.h>

#include "base/base.h"

int base_wire_strings(base_arena_t *a, const char *const *strs, const size_t *lens, size_t n,
                      const uint8_t **out, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += base_len_field_size(lens[i]);
    uint8_t *buf = base_arena_alloc(a, total == 0 ? 1 : total);
    if (buf == NULL)
        return -ENOMEM;
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) {
        *p++ = BASE_TAG(1, BASE_WT_LEN);
        p = base_put_varint(p, lens[i]);
        if (lens[i] > 0)
            memcpy(p, strs[i], lens[i]);
        p += lens[i];
    }
    *out = buf;
    *len = total;
    return 0;
}
