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

static void text_value(char *buf, size_t cap, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, cap, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, cap, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, cap, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, cap, "false");
        break;
    case JSON_NULL:
        snprintf(buf, cap, "null");
        break;
    default: {
        char *s = json_dumps(v, JSON_COMPACT);
        snprintf(buf, cap, "%s", s != NULL ? s : "?");
        free(s);
    }
    }
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
        char line[4096];
        size_t n = (size_t)snprintf(line, sizeof line, "%s %-5s %s", ts, level_names[level], event);
        const char *key;
        json_t *v;
        if (extra != NULL) {
            json_object_foreach(extra, key, v)
            {
                char val[1024];
                text_value(val, sizeof val, v);
                if (n < sizeof line) {
                    const char *q = strchr(val, ' ') != NULL ? "\"" : "";
                    n += (size_t)snprintf(line + n, sizeof line - n, " %s=%s%s%s", key, q, val, q);
                }
            }
        }
        if (n >= sizeof line - 1)
            n = sizeof line - 2;
        line[n++] = '\n';
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
