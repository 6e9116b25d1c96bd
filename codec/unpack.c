/* codec/unpack.c - protobuf-c unpacking into a request's arena, and its strings checked on the
 * wire. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "codec/codec.h"

/*
 * protobuf-c hands string fields over as NUL-terminated char * and drops their length, and it
 * does not check UTF-8. A string with a NUL inside ("alice\0x") would then be read as a shorter
 * one ("alice"): a write, delete or read of another entity's row, or a feature value cut short,
 * all reported as success. And a string that is not UTF-8 would be stored and later break every
 * conforming client that reads it (proto3 parsers refuse such strings). So the request's own
 * bytes are walked first, guided by the descriptor protobuf-c will unpack them with, and every
 * string field is checked where its length is still known.
 */

/*
 * And protobuf-c departs from protobuf on one more point. A message field that is not repeated
 * and is given twice is merged by every official runtime (C++, Java, Go, Python): the two
 * occurrences read as one message, as if their bodies were concatenated. protobuf-c merges only
 * when the field is not in a oneof; a oneof member given twice (GetOnlineFeaturesRequest's
 * `features`, a Value's `int64_list_val`) keeps only its last occurrence, so a request made by
 * concatenating two messages (protobuf's documented way of merging them) would silently lose
 * features or list elements. The walk that checks the strings also notes such a field, and
 * only then is the request rewritten (normalize()) so that each singular message field occurs
 * once, holding the merge, before protobuf-c reads it.
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

/* A singular message field (not repeated; a oneof member or not): the kind given twice merges. */
static bool singular_message(const ProtobufCFieldDescriptor *f)
{
    return f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED;
}

/* The walk: strings checked at any depth; *merge set when some message holds a singular message
 * field twice (or, conservatively, a field past the first 256 of its descriptor). */
static int check_message(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         unsigned depth, char *why, size_t why_cap, bool *merge)
{
    if (depth > MAX_DEPTH) {
        snprintf(why, why_cap, "messages nested too deeply");
        return -EINVAL;
    }
    uint64_t seen[4] = {0};
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
            if (singular_message(f)) {
                size_t fi = (size_t)(f - d->fields);
                if (fi >= 256 || (seen[fi / 64] >> (fi % 64) & 1) != 0)
                    *merge = true;
                else
                    seen[fi / 64] |= (uint64_t)1 << (fi % 64);
            }
            int rc = check_message(f->descriptor, p + i, n, depth + 1, why, why_cap, merge);
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
    bool merge = false;
    return check_message(d, buf, len, 0, why, why_cap, &merge);
}

bool codec_needs_merge(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len)
{
    char why[200];
    bool merge = false;
    return check_message(d, buf, len, 0, why, sizeof why, &merge) == 0 && merge;
}

/* ------------------------------------------------------------------------------------------ */
/* The merge of singular message fields given twice                                            */

/* A message's encoding in pieces: parsing their concatenation is parsing each in turn (a field
 * never spans two, as each is a whole message's encoding). */
typedef struct seg {
    const uint8_t *p;
    size_t len;
} seg_t;

/* One field of a message in pieces. */
typedef struct field {
    const ProtobufCFieldDescriptor *f; /* NULL for an unknown field */
    unsigned wt;
    const uint8_t *start, *end; /* the whole field, its tag included */
    seg_t body;                 /* a length-delimited field's body */
} field_t;

typedef struct field_iter {
    const ProtobufCMessageDescriptor *d;
    const seg_t *segs;
    size_t n_segs, s, i;
} field_iter_t;

/* The next field. Returns: 1 and *out; 0 at the end; -EINVAL when malformed (the walk has
 * checked every piece, so only as a guard). */
static int next_field(field_iter_t *it, field_t *out)
{
    while (it->s < it->n_segs && it->i == it->segs[it->s].len) {
        it->s++;
        it->i = 0;
    }
    if (it->s == it->n_segs)
        return 0;
    const uint8_t *p = it->segs[it->s].p;
    size_t len = it->segs[it->s].len, i = it->i;
    uint64_t tag, n;
    if (!get_varint(p, len, &i, &tag))
        return -EINVAL;
    out->wt = (unsigned)(tag & 7);
    out->f = tag >> 3 <= UINT32_MAX
                 ? protobuf_c_message_descriptor_get_field(it->d, (unsigned)(tag >> 3))
                 : NULL;
    out->start = p + it->i;
    switch (out->wt) {
    case BASE_WT_VARINT:
        if (!get_varint(p, len, &i, &n))
            return -EINVAL;
        break;
    case BASE_WT_I64:
    case BASE_WT_I32:
        n = out->wt == BASE_WT_I64 ? 8 : 4;
        if (len - i < n)
            return -EINVAL;
        i += n;
        break;
    case BASE_WT_LEN:
        if (!get_varint(p, len, &i, &n) || n > len - i)
            return -EINVAL;
        out->body = (seg_t){p + i, (size_t)n};
        i += n;
        break;
    default:
        return -EINVAL;
    }
    out->end = p + i;
    it->i = i;
    return 1;
}

/* Is this field a message the rewrite reads into (rather than copying its bytes)? */
static bool is_message(const field_t *fl)
{
    return fl->f != NULL && fl->f->type == PROTOBUF_C_TYPE_MESSAGE && fl->wt == BASE_WT_LEN;
}

/* The rewrite's state: its arena, and per depth the run heads of the message being written
 * there, kept from one message to the next at that depth (a request of a million small Values
 * must not cost a million sets of them). */
typedef struct norm {
    base_arena_t *a;
    struct {
        size_t *head, *tail, *count; /* [cap], per field of the descriptor */
        size_t cap;
    } lvl[MAX_DEPTH + 2];
} norm_t;

static ssize_t normalize(norm_t *nc, const ProtobufCMessageDescriptor *d, const seg_t *segs,
                         size_t n_segs, uint8_t *out, uint8_t *out_end, unsigned depth);

/* Writes field number num with the normalized message d of the pieces segs at out: the tag, the
 * body's length, the body. Returns: the bytes written; < 0 on error. */
static ssize_t put_message(norm_t *nc, unsigned num, const ProtobufCMessageDescriptor *d,
                           const seg_t *segs, size_t n_segs, uint8_t *out, uint8_t *out_end,
                           unsigned depth)
{
    uint8_t tag[10];
    size_t tn = (size_t)(base_put_varint(tag, base_tag(num, BASE_WT_LEN)) - tag);
    /* The body first, past room for the longest length; then moved up to its length's end. */
    if ((size_t)(out_end - out) < tn + 10)
        return -EOVERFLOW;
    ssize_t bn = normalize(nc, d, segs, n_segs, out + tn + 10, out_end, depth + 1);
    if (bn < 0)
        return bn;
    memcpy(out, tag, tn);
    uint8_t *body = base_put_varint(out + tn, (uint64_t)bn);
    memmove(body, out + tn + 10, (size_t)bn);
    return (body - out) + bn;
}

/*
 * Writes at out the message d given as the pieces segs, each singular message field once: its
 * occurrences (for a oneof member, those since another member of its oneof was last given: that
 * one cleared it) read as one message, normalized in turn, and placed after every other field.
 * Every other field is copied as it was, in order, and each element of a repeated message field
 * normalized in place. protobuf-c reads the result as protobuf reads the original. The output
 * is never longer than the input (one tag and length replace several), but bodies are written
 * past room for their length first: out_end leaves MAX_DEPTH x 11 bytes of slack. Memory: the
 * occurrences of singular message fields (a few words each, so at most a small multiple of the
 * input), and per depth the widest descriptor's run heads.
 * Returns: the bytes written; -ENOMEM; -EINVAL (a malformed piece: the walk refuses those
 *          first); -EOVERFLOW (past out_end: never, as said).
 */
static ssize_t normalize(norm_t *nc, const ProtobufCMessageDescriptor *d, const seg_t *segs,
                         size_t n_segs, uint8_t *out, uint8_t *out_end, unsigned depth)
{
    if (depth > MAX_DEPTH)
        return -EINVAL;
    /* Pass 1: how many singular message fields, for the run lists. */
    field_iter_t it = {d, segs, n_segs, 0, 0};
    field_t fl;
    size_t n_occ = 0;
    int r;
    while ((r = next_field(&it, &fl)) > 0)
        n_occ += is_message(&fl) && fl.f->label != PROTOBUF_C_LABEL_REPEATED;
    if (r < 0)
        return r;
    size_t nf = d->n_fields;
    seg_t *occ = NULL;
    size_t *next = NULL, *head = NULL, *tail = NULL, *count = NULL;
    if (n_occ > 0) {
        /* Per singular message field, its run as a list of occurrences (SIZE_MAX: none). */
        occ = base_arena_array(nc->a, n_occ, sizeof *occ);
        next = base_arena_array(nc->a, n_occ, sizeof *next);
        if (nc->lvl[depth].cap < nf) {
            size_t cap = nf > 2 * nc->lvl[depth].cap ? nf : 2 * nc->lvl[depth].cap;
            nc->lvl[depth].head = base_arena_array(nc->a, cap, sizeof(size_t));
            nc->lvl[depth].tail = base_arena_array(nc->a, cap, sizeof(size_t));
            nc->lvl[depth].count = base_arena_array(nc->a, cap, sizeof(size_t));
            nc->lvl[depth].cap = cap;
        }
        head = nc->lvl[depth].head;
        tail = nc->lvl[depth].tail;
        count = nc->lvl[depth].count;
        if (occ == NULL || next == NULL || head == NULL || tail == NULL || count == NULL) {
            nc->lvl[depth].cap = 0;
            return -ENOMEM;
        }
        for (size_t k = 0; k < nf; k++) {
            head[k] = tail[k] = SIZE_MAX;
            count[k] = 0;
        }
        /* Pass 2: the runs. A oneof member clears its oneof's other members. */
        it = (field_iter_t){d, segs, n_segs, 0, 0};
        size_t k = 0;
        while (next_field(&it, &fl) > 0) {
            if (fl.f == NULL)
                continue;
            size_t fi = (size_t)(fl.f - d->fields);
            if (fl.f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                for (size_t j = 0; j < nf; j++) {
                    if (j != fi && (d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                        d->fields[j].quantifier_offset == fl.f->quantifier_offset) {
                        head[j] = tail[j] = SIZE_MAX;
                        count[j] = 0;
                    }
                }
            }
            if (!is_message(&fl) || fl.f->label == PROTOBUF_C_LABEL_REPEATED)
                continue;
            occ[k] = fl.body;
            next[k] = SIZE_MAX;
            if (tail[fi] == SIZE_MAX)
                head[fi] = k;
            else
                next[tail[fi]] = k;
            tail[fi] = k;
            count[fi]++;
            k++;
        }
    }
    /* Pass 3: everything else, in order (the children use the next depth's scratch). */
    uint8_t *o = out;
    it = (field_iter_t){d, segs, n_segs, 0, 0};
    while (next_field(&it, &fl) > 0) {
        if (is_message(&fl)) {
            if (fl.f->label != PROTOBUF_C_LABEL_REPEATED)
                continue;
            ssize_t w = put_message(nc, fl.f->id, fl.f->descriptor, &fl.body, 1, o, out_end, depth);
            if (w < 0)
                return w;
            o += w;
            continue;
        }
        size_t n = (size_t)(fl.end - fl.start);
        if ((size_t)(out_end - o) < n)
            return -EOVERFLOW;
        memcpy(o, fl.start, n);
        o += n;
    }
    /* Then each singular message field once, its run merged. */
    for (size_t fi = 0; n_occ > 0 && fi < nf; fi++) {
        if (head[fi] == SIZE_MAX)
            continue;
        seg_t *run = base_arena_array(nc->a, count[fi], sizeof *run);
        if (run == NULL)
            return -ENOMEM;
        size_t m = 0;
        for (size_t q = head[fi]; q != SIZE_MAX; q = next[q])
            run[m++] = occ[q];
        ssize_t w =
            put_message(nc, d->fields[fi].id, d->fields[fi].descriptor, run, m, o, out_end, depth);
        if (w < 0)
            return w;
        o += w;
    }
    return o - out;
}

int codec_merge_messages(base_arena_t *a, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                         size_t len, const uint8_t **out, size_t *out_len)
{
    size_t cap = len + 11 * (MAX_DEPTH + 2);
    uint8_t *o = base_arena_alloc(a, cap);
    if (o == NULL)
        return -ENOMEM;
    seg_t whole = {buf, len};
    norm_t nc = {.a = a};
    ssize_t n = normalize(&nc, d, &whole, 1, o, o + cap, 0);
    if (n < 0)
        return (int)n;
    *out = o;
    *out_len = (size_t)n;
    return 0;
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
    char why[200];
    bool merge = false;
    ProtobufCAllocator alloc;
    if (check_message(d, buf, len, 0, why, sizeof why, &merge) < 0) {
        /* What protobuf-c cannot read at all is said as before: just malformed. */
        if (protobuf_c_message_unpack(d, codec_allocator(ctx->arena, &alloc), len, buf) == NULL)
            return core_fail(ctx, -EINVAL, "malformed %s", d->short_name);
        return core_fail(ctx, -EINVAL, "malformed %s: %s", d->short_name, why);
    }
    if (merge) {
        int rc = codec_merge_messages(ctx->arena, d, buf, len, &buf, &len);
        if (rc == -ENOMEM)
            return core_fail(ctx, rc, "out of memory");
        if (rc < 0)
            return core_fail(ctx, -EINVAL, "malformed %s", d->short_name);
    }
    /* protobuf-c uses the allocator during the unpack only; the messages keep no pointer to it,
     * nor to buf (it copies strings and bytes). */
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, codec_allocator(ctx->arena, &alloc), len, buf);
    if (m == NULL)
        return core_fail(ctx, -EINVAL, "malformed %s", d->short_name);
    *out = m;
    return 0;
}
