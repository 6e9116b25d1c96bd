/* base/log.c - structured logs: one JSON object (or one text line) per event on stderr. */
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

/*
 * Logs are for machines first (JSON, one object per line), people second (text). Callers pass
 * only names, counts and codes: feature values never reach a log line, which is why there is no
 * "log this value" helper here.
 */

static _Atomic int log_format = BASE_LOG_JSON;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void base_log_setup(base_log_format_t format)
{
    atomic_store(&log_format, (int)format);
}

static void timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void write_line(const char *s, size_t len)
{
    /* One write() per line keeps lines whole when threads log at once. */
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

/* A value's text for the text format: strings as they are, numbers and literals as JSON writes
 * them (into buf), arrays and objects as compact JSON (into *heap, which the caller frees).
 * Returns: the text, valid while v, buf and *heap are; "?" when memory ran out. */
static const char *text_value(json_t *v, char *buf, size_t cap, char **heap)
{
    *heap = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    case JSON_REAL:
        snprintf(buf, cap, "%g", json_real_value(v));
        return buf;
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    default:
        *heap = json_dumps(v, JSON_COMPACT);
        return *heap != NULL ? *heap : "?";
    }
}

/* Appends " key=value" to line (n bytes used of cap), logfmt style: a value that is empty or
 * holds a space, '=', '"', '\\' or a control character is quoted, with '"' and '\\' escaped and
 * control characters written as \n, \t, \r or \xNN, so a line always splits back into its
 * fields. A field that does not fit whole is not written at all: *full is set and n returned
 * as it was. Returns: the new n (< cap). */
static size_t append_field(char *line, size_t n, size_t cap, const char *key, const char *val,
                           bool *full)
{
    size_t start = n;
    bool quote = val[0] == '\0';
    for (const unsigned char *p = (const unsigned char *)val; *p != '\0' && !quote; p++)
        quote = *p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f;
    int w = snprintf(line + n, cap - n, " %s=%s", key, quote ? "\"" : "");
    if (w < 0 || (size_t)w >= cap - n)
        goto cut;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)val; *p != '\0'; p++) {
        char esc[8];
        size_t len = 0;
        if (!quote || (*p >= ' ' && *p != '"' && *p != '\\' && *p != 0x7f))
            esc[len++] = (char)*p;
        else if (*p == '"' || *p == '\\')
            esc[len++] = '\\', esc[len++] = (char)*p;
        else if (*p == '\n')
            esc[len++] = '\\', esc[len++] = 'n';
        else if (*p == '\t')
            esc[len++] = '\\', esc[len++] = 't';
        else if (*p == '\r')
            esc[len++] = '\\', esc[len++] = 'r';
        else
            len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        if (n + len + (quote ? 1 : 0) >= cap) /* room for the closing quote, always */
            goto cut;
        memcpy(line + n, esc, len);
        n += len;
    }
    if (quote)
        line[n++] = '"';
    return n;
cut:
    *full = true;
    return start;
}

void base_log(base_log_level_t level, const char *event, const char *fields, ...)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    json_t *extra = NULL;
    if (fields != NULL) {
        va_list ap;
        va_start(ap, fields);
        json_error_t jerr;
        extra = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
    }
    if (atomic_load(&log_format) == BASE_LOG_TEXT) {
        /* Longer lines (a catalog's every error) end in " ...(truncated)" after the last
         * field that fits whole. */
        static const char cut[] = " ...(truncated)\n";
        char line[BASE_LOG_TEXT_LINE_MAX];
        size_t cap = sizeof line - sizeof cut;
        int w = snprintf(line, cap, "%s %-5s %.200s", ts, level_names[level], event);
        size_t n = w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;
        bool full = false;
        const char *key;
        json_t *v;
        if (extra != NULL) {
            json_object_foreach(extra, key, v)
            {
                if (full)
                    break;
                char num[64], *heap;
                n = append_field(line, n, cap, key, text_value(v, num, sizeof num, &heap), &full);
                free(heap);
            }
        }
        if (full) {
            memcpy(line + n, cut, sizeof cut - 1);
            n += sizeof cut - 1;
        } else {
            line[n++] = '\n';
        }
        write_line(line, n);
        json_decref(extra);
        return;
    }
    json_t *obj =
        json_pack("{s:s, s:s, s:s}", "time", ts, "level", level_names[level], "event", event);
    if (obj == NULL) {
        json_decref(extra);
        return;
    }
    if (extra != NULL)
        json_object_update(obj, extra);
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL) {
        size_t len = strlen(s);
        char *line = realloc(s, len + 2);
        if (line != NULL) {
            line[len] = '\n';
            write_line(line, len + 1);
            free(line);
        } else {
            free(s);
        }
    }
    json_decref(obj);
    json_decref(extra);
}
