/* storage/key.c - entity key encoding: typed join keys to order-preserving LMDB keys. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/store_int.h"

/*
 * Layout, join key by join key in catalog order:
 *   INT64          8 bytes big-endian with the sign bit flipped, so memcmp orders like the ints;
 *   INT32          4 bytes, the same way;
 *   STRING, BYTES  a 2-byte big-endian length, then the bytes (the length prefix keeps
 *                  multi-key entities unambiguous: ("ab","c") != ("a","bc")).
 * No type tag is stored: a view's key types are fixed by its entities, and a change of type is
 * a breaking catalog change. An entityless view has one row under the single byte 0x00 (LMDB
 * keys may not be empty).
 */

int store__key_cmp(const MDB_val *a, const MDB_val *b)
{
    return store__key_order(a->mv_data, a->mv_size, b->mv_data, b->mv_size);
}

static int put_int(uint8_t *buf, size_t cap, size_t at, uint64_t v, size_t width)
{
    if (at + width > STORE_MAX_KEY)
        return -ENAMETOOLONG;
    if (at + width > cap)
        return -ENOSPC;
    for (size_t i = 0; i < width; i++)
        buf[at + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    return (int)(at + width);
}

int store_encode_key(const catalog_view_t *v, const catalog_value_t *keys, size_t n, uint8_t *buf,
                     size_t cap)
{
    if (v == NULL || n != v->n_join_keys || (n > 0 && keys == NULL))
        return -EINVAL;
    if (n == 0) {
        if (cap < 1)
            return -ENOSPC;
        buf[0] = 0;
        return 1;
    }
    int at = 0;
    for (size_t i = 0; i < n; i++) {
        const catalog_value_t *k = &keys[i];
        int64_t x;
        switch (v->join_keys[i].dtype) {
        case CATALOG_DTYPE_INT64:
            if (k->type == CATALOG_DTYPE_INT64)
                x = k->u.i64;
            else if (k->type == CATALOG_DTYPE_INT32)
                x = k->u.i32;
            else
                return -EINVAL;
            at = put_int(buf, cap, (size_t)at, (uint64_t)x ^ (1ull << 63), 8);
            break;
        case CATALOG_DTYPE_INT32:
            if (k->type == CATALOG_DTYPE_INT32)
                x = k->u.i32;
            else if (k->type == CATALOG_DTYPE_INT64)
                x = k->u.i64;
            else
                return -EINVAL;
            if (x < INT32_MIN || x > INT32_MAX)
                return -ERANGE;
            at = put_int(buf, cap, (size_t)at, (uint32_t)(int32_t)x ^ (1u << 31), 4);
            break;
        case CATALOG_DTYPE_STRING:
        case CATALOG_DTYPE_BYTES:
            if (k->type != v->join_keys[i].dtype)
                return -EINVAL;
            if (k->u.bytes.len > STORE_MAX_KEY)
                return -ENAMETOOLONG;
            if (k->u.bytes.len > 0 && k->u.bytes.data == NULL)
                return -EINVAL;
            at = put_int(buf, cap, (size_t)at, k->u.bytes.len, 2);
            if (at < 0)
                return at;
            if ((size_t)at + k->u.bytes.len > STORE_MAX_KEY)
                return -ENAMETOOLONG;
            if ((size_t)at + k->u.bytes.len > cap)
                return -ENOSPC;
            if (k->u.bytes.len > 0)
                memcpy(buf + at, k->u.bytes.data, k->u.bytes.len);
            at += (int)k->u.bytes.len;
            break;
        default:
            return -EINVAL;
        }
        if (at < 0)
            return at;
    }
    return at;
}

static uint64_t get_be(const uint8_t *p, size_t width)
{
    uint64_t x = 0;
    for (size_t i = 0; i < width; i++)
        x = x << 8 | p[i];
    return x;
}

int store_decode_key(const catalog_view_t *v, const uint8_t *key, size_t key_len,
                     catalog_value_t *out)
{
    if (v->n_join_keys == 0)
        return key_len == 1 && key[0] == 0 ? 0 : -EINVAL;
    size_t at = 0;
    for (size_t i = 0; i < v->n_join_keys; i++) {
        catalog_value_t *o = &out[i];
        memset(o, 0, sizeof *o);
        o->type = v->join_keys[i].dtype;
        switch (o->type) {
        case CATALOG_DTYPE_INT64:
            if (key_len - at < 8 || at > key_len)
                return -EINVAL;
            o->u.i64 = (int64_t)(get_be(key + at, 8) ^ (1ull << 63));
            at += 8;
            break;
        case CATALOG_DTYPE_INT32:
            if (key_len - at < 4 || at > key_len)
                return -EINVAL;
            o->u.i32 = (int32_t)(uint32_t)(get_be(key + at, 4) ^ (1u << 31));
            at += 4;
            break;
        case CATALOG_DTYPE_STRING:
        case CATALOG_DTYPE_BYTES: {
            if (key_len - at < 2 || at > key_len)
                return -EINVAL;
            size_t n = (size_t)get_be(key + at, 2);
            at += 2;
            if (key_len - at < n)
                return -EINVAL;
            o->u.bytes.data = key + at;
            o->u.bytes.len = n;
            at += n;
            break;
        }
        default:
            return -EINVAL;
        }
    }
    return at == key_len ? 0 : -EINVAL;
}

int store__view_key(char *buf, size_t cap, const char *name, uint32_t version)
{
    int n = snprintf(buf, cap, "%s@v%u", name, version);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return n;
}
