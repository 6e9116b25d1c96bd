/* base/base.h - the basic tools every module shares: wire varints, hash, arena, name index,
 * base64, UTF-8, logs, parsing, process figures. */
#ifndef BASE_BASE_H
#define BASE_BASE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * One copy of each basic tool. Whatever two modules would otherwise each write (a varint
 * writer, a hash, a bump allocator, a set of names, the log line, process setup) lives here
 * once, with no dependency on anything of fstore's: catalog/, storage/ and everything above
 * build on it.
 *
 *   wire        protobuf varints and tags (inline: the encoders run them per value)
 *   hash        FNV-1a
 *   arena       a bump allocator that forgets everything at once
 *   name index  open addressing over an array of names
 *   base64      RFC 4648 encoding and decoding
 *   inflate     zlib and gzip streams, decompressed up to a bound, and made (zlib)
 *   utf8        RFC 3629 validation
 *   log         structured log lines (JSON or text) on stderr
 *   process     monotonic time, CPU slices, gRPC's mutex bookkeeping, small files
 */

/* ------------------------------------------------------------------------------------------ */
/* Wire: protobuf varints and tags                                                             */

/* Protobuf wire types. */
#define BASE_WT_VARINT 0
#define BASE_WT_I64 1
#define BASE_WT_LEN 2
#define BASE_WT_I32 5

/* A field's tag, as the varint that precedes the field. */
static inline uint64_t base_tag(unsigned field, unsigned wt)
{
    return ((uint64_t)field << 3) | wt;
}

/* A field's tag when it fits one byte (fields 1 to 15). */
#define BASE_TAG(field, wt) ((uint8_t)(((field) << 3) | (wt)))

/*
 * Reads a protobuf varint of at most 10 bytes (64 bits) at *p, not past end, and moves *p past
 * it. A one-byte fast path: tags and lengths are nearly all one byte.
 * Returns: false when it is truncated or too long, or its tenth byte carries more than bit 63
 *          (then *p is left unchanged).
 */
static inline bool base_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *out = *q;
        *p = q + 1;
        return true;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && q < end; shift += 7) {
        uint8_t b = *q++;
        if (shift == 63 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            *p = q;
            return true;
        }
    }
    return false;
}

/* Returns: the bytes a protobuf varint of v takes (1 for most lengths and tags, checked first). */
static inline size_t base_varint_size(uint64_t v)
{
    if (v < 0x80)
        return 1;
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v as a protobuf varint at p (room for 10 bytes). Returns: the byte after it. */
static inline uint8_t *base_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Returns: the bytes of a length-delimited field with a one-byte tag and a body of len bytes. */
static inline size_t base_len_field_size(size_t len)
{
    return 1 + base_varint_size(len) + len;
}

/* ------------------------------------------------------------------------------------------ */
/* Hash                                                                                        */

#define BASE_FNV_OFFSET 0xcbf29ce484222325ull

/*
 * Two functions, for two jobs; neither is meant to resist chosen collisions, and every table that
 * takes names from a request bounds what a collision costs (a failed comparison, a slot).
 *
 * FNV-1a over n bytes, continuing from h (BASE_FNV_OFFSET to start): for hash tables of names
 * (short: a byte at a time is as fast as anything) and for fingerprints whose value fstore shows
 * (the catalog digest), so its result must never change.
 */
static inline uint64_t base_fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/*
 * A word-at-a-time hash of n bytes mixed with seed, for long keys hashed on every request (a
 * feature list's bytes: hundreds of bytes for 50 references, thousands for 250), where FNV-1a's
 * byte loop would cost more than the rest of a cache lookup. Its values are only ever compared
 * within one process.
 */
uint64_t base_hash_words(const void *p, size_t n, uint64_t seed);

/* ------------------------------------------------------------------------------------------ */
/* Arena                                                                                       */

typedef struct base_arena_chunk base_arena_chunk_t;

/*
 * A bump allocator: many small allocations, one release. A call's memory (its unpacked
 * request, resolved references, cells) and a catalog's (every string and table of it) each live
 * exactly as long as their owner, so nothing is freed alone. After a reset the arena keeps one
 * chunk sized for what the last use needed, so a steady workload stops calling malloc.
 * Thread safety: none; one owner at a time.
 */
typedef struct base_arena {
    base_arena_chunk_t *head; /* newest chunk first */
    size_t first_size;        /* size of the first chunk */
    size_t used_total;        /* bytes handed out since the last reset, for resizing */
} base_arena_t;

/* Chunks bigger than this are not kept across resets: one huge request must not pin memory in
 * every call slot forever. */
#define BASE_ARENA_KEEP_MAX ((size_t)1 << 20)

/* Prepares an empty arena whose first chunk will have first_size bytes (at least 1 KiB);
 * nothing is allocated until the first use. A zeroed base_arena_t is an empty arena too, whose
 * first chunk has 4 KiB. */
void base_arena_init(base_arena_t *a, size_t first_size);
/* Returns: n bytes aligned for any type, not zeroed, or NULL when out of memory (or n so large
 * that rounding it up overflows). Valid until base_arena_reset() or base_arena_free(). */
void *base_arena_alloc(base_arena_t *a, size_t n);
/* As base_arena_alloc(), zeroed, for n * size bytes (NULL on overflow). */
void *base_arena_calloc(base_arena_t *a, size_t n, size_t size);
/* As base_arena_calloc(), not zeroed: for arrays the caller fills completely. */
void *base_arena_array(base_arena_t *a, size_t n, size_t size);
/* Copies len bytes and adds a NUL. Returns: the copy, or NULL. */
char *base_arena_strndup(base_arena_t *a, const char *s, size_t len);
/*
 * Grows an array held in the arena so it has room for at least need elements of elem bytes:
 * doubles *cap (8 at first) and copies the old elements into a new block whose new elements are
 * zeroed (the old block is abandoned until the arena goes).
 * Returns: 0, -ENOMEM (the array is left as it was).
 */
int base_arena_grow(base_arena_t *a, void **array, size_t *cap, size_t need, size_t elem);
/* Forgets every allocation. Keeps one chunk sized for what the last use needed, or none when
 * that exceeded BASE_ARENA_KEEP_MAX. */
void base_arena_reset(base_arena_t *a);
/* Frees every chunk; the arena is empty and usable again. Accepts NULL. */
void base_arena_free(base_arena_t *a);

/*
 * Encodes n strings (lens[i] bytes each) as the body of a protobuf `repeated string` field 1
 * (Feast's RepeatedString): a one-byte tag, a varint length and the bytes, each. One list of
 * strings has exactly one such form, which makes it a key too (core's feature-list cache).
 * Returns: 0 and *out (in a, *len bytes); -ENOMEM.
 */
int base_wire_strings(base_arena_t *a, const char *const *strs, const size_t *lens, size_t n,
                      const uint8_t **out, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* Name index                                                                                  */

/*
 * A hash index over an array of names (names[i], lens[i] bytes each, any bytes), kept beside
 * it: open addressing at most half full, each slot the index + 1 of a name (0 = empty). The
 * names stay the caller's; the index only remembers where they are, so it must be used with
 * the same arrays it was built over. Equal names each get a slot, and of equal names the first
 * added is found first.
 */
typedef struct base_name_index {
    uint32_t *slots;
    uint32_t mask; /* slots - 1 */
} base_name_index_t;

/* Sizes an empty index, in the arena, for up to n names. Returns: 0, -ENOMEM. */
int base_name_index_init(base_arena_t *a, base_name_index_t *ix, size_t n);
/*
 * Adds name i (at most the n the index was sized for, in all).
 * Returns: the index of an earlier name equal to names[i] (the first added), or -1.
 */
long base_name_index_add(base_name_index_t *ix, const char *const *names, const size_t *lens,
                         size_t i);
/*
 * Builds *ix over names[0..n) in the arena. dup, when not NULL, gets dup[i] = the index of the
 * first earlier name equal to names[i], or -1.
 * Returns: how many names equal an earlier one (0: all differ); -ENOMEM.
 */
long base_name_index_build(base_arena_t *a, const char *const *names, const size_t *lens, size_t n,
                           base_name_index_t *ix, long *dup);
/* Returns: the index of the first name (of those added) equal to name (len bytes), or -1. */
long base_name_index_find(const base_name_index_t *ix, const char *const *names, const size_t *lens,
                          const char *name, size_t len);
/*
 * Looks for two equal strings among NUL-terminated names[0..n) in linear time (an index in the
 * arena): names from a request must never cost a quadratic scan.
 * Returns: 1 with *first < *second the indexes of the first repeat found; 0 when all differ;
 *          -ENOMEM.
 */
int base_find_duplicate(base_arena_t *a, const char *const *names, size_t n, size_t *first,
                        size_t *second);

/* ------------------------------------------------------------------------------------------ */
/* Base64 (RFC 4648)                                                                           */

/* Characters base_base64_encode() writes for n bytes. */
#define BASE_BASE64_LEN(n) (4 * (((size_t)(n) + 2) / 3))
/* Room base_base64_decode() may write for n characters. */
#define BASE_BASE64_DECODED_MAX(n) (3 * ((size_t)(n) / 4) + 3)
/* Decoding flags: the URL-safe alphabet ('-', '_') too, and padding optional (exported data
 * comes in both flavours). Without it: the standard alphabet, padded to a multiple of four. */
#define BASE_BASE64_LENIENT 1u

/* The standard alphabet, padded: BASE_BASE64_LEN(n) characters into out, not terminated.
 * Returns: their count. */
size_t base_base64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes n characters into out (room for BASE_BASE64_DECODED_MAX(n)). What is there must be
 * whole base64 in either mode: only padding after a '=', no lone trailing character.
 * Returns: the decoded length, or -1 for bad input. */
long base_base64_decode(const char *in, size_t n, uint8_t *out, unsigned flags);

/* ------------------------------------------------------------------------------------------ */
/* Inflate (RFC 1950 zlib and RFC 1952 gzip streams)                                          */

typedef enum base_inflate_format {
    BASE_INFLATE_ZLIB, /* gRPC's "deflate" */
    BASE_INFLATE_GZIP,
} base_inflate_format_t;

/*
 * Decompresses the whole stream in[0..n) into a, never more than max bytes: a small stream that
 * would expand past max (a "bomb") stops there, having cost at most max + 1 bytes of scratch
 * (freed); a stream that fits costs its output twice at the peak (scratch, then the copy in a).
 * Returns: 0 and *out, *out_len (in a); -EMSGSIZE when the output would pass max; -EINVAL for a
 *          corrupt or truncated stream, or bytes after its end; -ENOMEM.
 */
int base_inflate(const void *in, size_t n, base_inflate_format_t format, size_t max,
                 base_arena_t *a, uint8_t **out, size_t *out_len);

/*
 * Compresses in[0..n) into one stream of that format at zlib's fastest level (what a reply on
 * the wire wants: most of the saving for a fraction of the CPU). Costs one buffer of zlib's
 * bound for n (slightly more than n) at the peak.
 * Returns: 0 and *out (malloc'd, the caller frees it), *out_len; -ENOMEM.
 */
int base_deflate(const void *in, size_t n, base_inflate_format_t format, uint8_t **out,
                 size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                       */

/* Returns: the offset of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) in s[0..len), or len when s is valid. */
size_t base_utf8_bad_at(const uint8_t *s, size_t len);
/* Returns: whether s (len bytes) is valid UTF-8. */
bool base_utf8_valid(const uint8_t *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Log                                                                                         */

typedef enum base_log_level {
    BASE_LOG_DEBUG = 0,
    BASE_LOG_INFO = 1,
    BASE_LOG_WARN = 2,
    BASE_LOG_ERROR = 3,
} base_log_level_t;

typedef enum base_log_format {
    BASE_LOG_JSON = 0, /* one JSON object per line (the default) */
    /* "time LEVEL event key=value ..." for people (logfmt): a value that is empty or holds a
     * space, '=', '"', '\\', DEL or a control character is quoted and escaped (\" \\ \n \t \r
     * \xNN); arrays and objects as compact JSON in such a value. The event name is cut at 200
     * characters. A line longer than BASE_LOG_TEXT_LINE_MAX ends in " ...(truncated)" after its
     * last whole field. */
    BASE_LOG_TEXT = 1,
} base_log_format_t;
#define BASE_LOG_TEXT_LINE_MAX 16384

/* Sets the process-wide log format. Thread safety: any thread (an atomic store). */
void base_log_setup(base_log_format_t format);

/*
 * Logs one event on stderr. fields is a jansson json_pack() format for an object of extra
 * fields (NULL = none), e.g. base_log(BASE_LOG_INFO, "listening", "{s:s, s:i}", "address", a,
 * "port", p). Callers pass names, counts and codes: feature values never reach a log line.
 * Thread safety: any thread; a line is written with one write().
 */
void base_log(base_log_level_t level, const char *event, const char *fields, ...);

/* ------------------------------------------------------------------------------------------ */
/* Process                                                                                     */

/* Returns: CLOCK_MONOTONIC in microseconds. */
int64_t base_mono_us(void);

/*
 * Fills buf[0..n) with random bytes from the kernel (getrandom): ids that must not repeat
 * (request ids, snapshot names) and hash seeds no client may guess. Without entropy (never on
 * Linux >= 3.17) it falls back to a splitmix64 stream seeded from the clocks, the pid and a
 * per-process counter: unique on this machine, though guessable. Thread safety: any thread.
 */
void base_random(void *buf, size_t n);

/*
 * Asks Linux 6.12+ for a custom CPU slice of us microseconds (100 to 100000) for the calling
 * thread (sched_setattr's sched_runtime for SCHED_OTHER): a thread woken by work preempts a busy
 * neighbour instead of waiting out the neighbour's slice.
 * Returns: 0; -EINVAL (out of range); the kernel's error (-EINVAL on older kernels, -EPERM).
 */
int base_sched_slice(unsigned us);

/*
 * Switches off abseil's mutex deadlock detection in the process, as upstream's release builds
 * have it: Debian's abseil is built without NDEBUG, so every mutex gRPC takes records lock-order
 * edges in a global graph, a large share of an empty gRPC call's cost. Found with dlsym, so
 * this needs no abseil or gRPC header; it does nothing when FSTORE_ABSL_DEADLOCK_DETECTION=1 or
 * when the process has no such abseil. Call before grpc_init(). Idempotent.
 * Returns: whether detection is off.
 * Thread safety: any thread (once-only inside).
 */
bool base_lean_mutexes(void);

/*
 * A whole small file (a PEM bundle) read into memory, NUL-terminated.
 * Returns: 0 with *out (and *len, when not NULL: the byte count); or the open's negative errno,
 * -EIO (a read failed), -EFBIG (over max bytes), -ENODATA (empty), -ENOMEM. Ownership: *out,
 * written only on success, is the caller's to free.
 */
int base_read_file(const char *path, size_t max, char **out, size_t *len);

/* Whether two stat() results are of the same file unchanged (device, inode, size, mtime to the
 * nanosecond): how a watched file (a certificate, a key) is found replaced or rewritten. */
struct stat;
bool base_same_file(const struct stat *a, const struct stat *b);

/*
 * Gives the heap's free memory back to the kernel after a burst: glibc keeps the pages of a burst
 * of short-lived allocations (a flood of calls that were reset), and the process's RSS would stay
 * at the burst's peak. Called now and then (the gRPC control thread: every 2 s); each tick reads
 * the process's anonymous RSS from /proc/self/statm (one read, no malloc lock) and does nothing
 * more unless it is over `growth` bytes above the lowest it has been. Only then does it look at
 * malloc's free bytes (mallinfo2(), which walks the arenas under their locks) and, over `growth`
 * of them free, trim (malloc_trim(), which holds each arena's lock while it gives pages back).
 * A look that returned less than a quarter of `growth` doubles the wait to the next one, up to
 * 32 s (memory in use, or free but not returnable, is not walked every tick); a look after the
 * longest wait takes the heap's size as the new base (a working set that grew for good); a
 * trim that returned more looks again at the next tick (a burst still draining).
 */
typedef struct base_heap_trimmer {
    size_t growth;      /* bytes of growth that make a tick look (and of free memory to trim) */
    int64_t every_us;   /* the tick (base_mono_us() units) */
    int64_t next_us;    /* the next tick that may look */
    int64_t backoff_us; /* the wait after a look that returned little (every_us .. 32 s) */
    size_t base_anon;   /* the lowest anonymous RSS seen (or the working set's, after a wait) */
} base_heap_trimmer_t;
/* Returns: the bytes of anonymous RSS a trim returned this tick (0: none, or nothing done).
 * Thread safety: one thread per trimmer (t is its state); the calls it makes are glibc's. */
size_t base_heap_trim_tick(base_heap_trimmer_t *t, int64_t now_us);

/* ------------------------------------------------------------------------------------------ */
/* CSV, RFC 4180 (csv.c): `fstore ingest` files, SageMaker's text/csv bodies                   */

/*
 * The length of an unquoted CSV field: the offset of the first ',' or '\n' in p[0..n), or n.
 * Eight bytes at a time while there are eight (it never reads past p + n): most of a CSV file is
 * short unquoted fields, and a byte loop over them cost more than all the number parsing.
 * Thread safety: any thread.
 */
static inline size_t base_csv_field_len(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t a = w ^ (ones * ','), b = w ^ (ones * '\n');
        /* A zero byte of a or b is a match. The lowest flagged byte is a true one: a byte is
         * flagged falsely only above a true zero of the same word, by its borrow. */
        uint64_t hit = ((a - ones) & ~a & highs) | ((b - ones) & ~b & highs);
        if (hit != 0)
            return i + ((size_t)__builtin_ctzll(le64toh(hit)) >> 3);
    }
    while (i < n && p[i] != ',' && p[i] != '\n')
        i++;
    return i;
}

/* A CSV text being read: p the next byte, end past the last; line counts newlines passed
 * (inside quoted fields too), from whatever the caller starts it at. */
typedef struct base_csv {
    char *p, *end;
    size_t line;
} base_csv_t;

/*
 * Reads one field in place: a quoted field is unescaped where it lies ("" -> ", the text only
 * shrinks), and may hold commas and newlines; a record ends at '\n' ("\r\n" too).
 * Returns: 1 more fields follow in this record, 0 the record ended, -1 end of input, -2 a quote
 *          error (unterminated, or text after the closing quote). *out and *len: the field.
 */
int base_csv_field(base_csv_t *c, char **out, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* Numbers and times from text (parse.c): ingest cells, HTTP bodies                            */

/*
 * A CSV or JSON-string cell as an integer: exactly what strtoll(s, &end, 10) accepts when it
 * consumes the whole cell (leading white space, an optional sign, decimal digits). s need not be
 * NUL-terminated; cells of 32 bytes or more are rejected.
 * Returns: 0 and *out; -ERANGE (out of int64 range); -EINVAL.
 * Thread safety: any thread.
 */
int base_parse_int(const char *s, size_t n, int64_t *out);

/*
 * A cell as a double, bit for bit what strtod() returns when it consumes the whole cell (so a
 * FLOAT is (float) of the result, as before). Cells of 64 bytes or more are rejected.
 * Returns: 0 and *out; -EINVAL.
 * Thread safety: any thread.
 */
int base_parse_double(const char *s, size_t n, double *out);

/*
 * A timestamp cell as microseconds since the epoch. Two forms:
 *   - RFC 3339: "YYYY-MM-DD" 'T' (or 't' or a space) "hh:mm:ss", an optional fraction of one
 *     or more digits (digits past microseconds are dropped), then 'Z' (or 'z') or an offset
 *     "+hh:mm" / "-hh:mm". Every field has exactly its two (four for the year) digits; the date
 *     must exist (no Feb 30, no Feb 29 outside leap years); hours 0..23, minutes 0..59, seconds
 *     0..60 (a leap second is the next minute's first, as timegm() has it); offsets up to
 *     23:59. Years 0000..9999, proleptic Gregorian, UTC.
 *   - Seconds since the epoch: an integer as base_parse_int() takes it, then an
 *     optional '.' and zero or more fraction digits ("5." is 5 s); the sign applies to the
 *     fraction too ("-0.5").
 * Nothing may follow (no trailing junk, no NUL bytes). s need not be NUL-terminated; cells of
 * 64 bytes or more are rejected.
 * Returns: 0 and *us; -EINVAL (*us untouched).
 * Thread safety: any thread.
 */
int base_parse_time(const char *s, size_t n, int64_t *us);

/*
 * The other way: microseconds since the epoch as RFC 3339 UTC, four-digit years,
 * "2026-12-01T10:00:00Z", with ".ffffff" when the time has a fraction (what base_parse_time()
 * reads back; PostgreSQL's timestamptz reads it too). Years outside 1 to 9999 (beyond
 * google.protobuf.Timestamp's range) are written as they come, which base_parse_time() refuses.
 * Returns: the length written (as snprintf; cap >= 32 is always enough).
 */
int base_format_time(int64_t us, char *buf, size_t cap);

/* The last timestamp text parsed and its value (exports usually carry one per batch of rows).
 * Zero-initialise. */
typedef struct base_ts_memo {
    size_t n; /* 0 = empty */
    char text[64];
    int64_t us;
} base_ts_memo_t;

/*
 * base_parse_time() behind a one-entry memo: text equal to the last successfully
 * parsed one returns its value without parsing again. Same results and errors.
 * Thread safety: one thread per memo.
 */
int base_parse_time_memo(base_ts_memo_t *m, const char *s, size_t n, int64_t *us);

#endif /* BASE_BASE_H */
