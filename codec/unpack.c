/* codec/unpack.c - protobuf-c unpacking into a request's arena, and its strings checked on the
 * wire. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

/*
 * protobuf-c hands string fields over as NUL-terminated char * and drops their length, and it
 * does not check UTF-8. A string with a NUL inside ("alice\0x") would then be read as a shorter
 * one ("alice"): a write, delete or read of another entity's row, or a feature value cut short,
 * all reported as success. And a string that is not UTF-8 would be stored and later break every
 * conforming client that reads it (proto3 parsers refuse such strings). So the request's own
 * bytes are walked once more, guided by the descriptor protobuf-c just unpacked them with, and
 * every string field is checked where its length is still known.
 */

/* Deeper than any of our messages nest; a bound on the recursion whatever the descriptors. */
#define MAX_DEPTH 32

/* A varint at p[*i] (base_get_varint()), moving *i past it. */
static bool get_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out)
{
    const uint8_t *q = p + *i;
    if (!base_get_varint(&q, p + len, out))
        return false;
    *i = (size_t)(q - p);
    return true;
}

static int check_message(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         unsigned depth, char *why, size_t why_cap)
{
    if (depth > MAX_DEPTH) {
        snprintf(why, why_cap, "messages nested too deeply");
        return -EINVAL;
    }
    size_t i = 0;
    while (i < len) {
        uint64_t tag, n;
        if (!get_varint(p, len, &i, &tag))
            goto truncated;
        switch (tag & 7) {
        case 0: /* varint */
            if (!get_varint(p, len, &i, &n))
                goto truncated;
            continue;
        case 1: /* 64-bit */
            if (len - i < 8)
                goto truncated;
            i += 8;
            continue;
        case 5: /* 32-bit */
            if (len - i < 4)
                goto truncated;
            i += 4;
            continue;
        case 2: /* length-delimited: the only kind that holds strings and messages */
            break;
        default:
            snprintf(why, why_cap, "unsupported wire type %u in %s", (unsigned)(tag & 7), d->name);
            return -EINVAL;
        }
        if (!get_varint(p, len, &i, &n) || n > len - i)
            goto truncated;
        const ProtobufCFieldDescriptor *f =
            tag >> 3 <= UINT32_MAX
                ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                : NULL;
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING) {
            if (memchr(p + i, '\0', n) != NULL) {
                snprintf(why, why_cap, "%s.%s contains a NUL byte", d->name, f->name);
                return -EINVAL;
            }
            if (base_utf8_bad_at(p + i, n) != n) {
                snprintf(why, why_cap, "%s.%s is not valid UTF-8", d->name, f->name);
                return -EINVAL;
            }
        } else if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            int rc = check_message(f->descriptor, p + i, n, depth + 1, why, why_cap);
            if (rc < 0)
                return rc;
        }
        i += n;
    }
    return 0;
truncated:
    snprintf(why, why_cap, "truncated %s", d->name);
    return -EINVAL;
}

int codec_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        char *why, size_t why_cap)
{
    return check_message(d, buf, len, 0, why, why_cap);
}

static void *pb_alloc(void *data, size_t size)
{
    return base_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    /* Everything goes at the arena reset. */
    (void)data;
    (void)ptr;
}

ProtobufCAllocator *codec_allocator(base_arena_t *a, ProtobufCAllocator *out)
{
    *out = (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
    return out;
}

int codec_unpack(core_ctx_t *ctx, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                 size_t len, ProtobufCMessage **out)
{
    /* protobuf-c uses the allocator during the unpack only; the messages keep no pointer to it. */
    ProtobufCAllocator alloc;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, codec_allocator(ctx->arena, &alloc), len, buf);
    if (m == NULL)
        return core_fail(ctx, -EINVAL, "malformed %s", d->short_name);
    char why[200];
    if (codec_check_strings(d, buf, len, why, sizeof why) < 0)
        return core_fail(ctx, -EINVAL, "malformed %s: %s", d->short_name, why);
    *out = m;
    return 0;
}
