/*
 * storage/fault.c - injected failures, for tests only (compiled only with FSTORE_FAULT_INJECTION,
 * on by default in a Debug build with tests and off otherwise, the release preset included:
 * there store__fault() is an inline 0).
 *
 * FSTORE_FAULTS_FILE names a file, read at every fault point while it exists. Each line arms
 * one point:
 *
 *     POINT ERROR [COUNT]
 *
 * POINT is one of read_begin, read, write_begin, put, commit, sync, map_grow (store_int.h says
 * where each sits); ERROR an errno name (EIO, ENOSPC, ENOMEM, EACCES, EROFS) or an LMDB one
 * (MAP_FULL, READERS_FULL, CORRUPTED, PAGE_NOTFOUND, PANIC, TXN_FULL); COUNT how many calls
 * fail (1 when left out). A line whose count runs out is removed, and the file with the last
 * one, so a test arms a fault, makes its call, and finds the file gone when the fault fired.
 * A malformed file is logged and removed: a typo must not look like a fault that never fired.
 */
#include "storage/store_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static const char *const point_names[STORE__FAULT_N] = {
    [STORE__FAULT_READ_BEGIN] = "read_begin",   [STORE__FAULT_READ] = "read",
    [STORE__FAULT_WRITE_BEGIN] = "write_begin", [STORE__FAULT_PUT] = "put",
    [STORE__FAULT_COMMIT] = "commit",           [STORE__FAULT_SYNC] = "sync",
    [STORE__FAULT_MAP_GROW] = "map_grow",
};

static const struct {
    const char *name;
    int rc; /* as LMDB returns it: an MDB_ code, or a positive errno */
} errors[] = {
    {"EIO", EIO},
    {"ENOSPC", ENOSPC},
    {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},
    {"EROFS", EROFS},
    {"MAP_FULL", MDB_MAP_FULL},
    {"READERS_FULL", MDB_READERS_FULL},
    {"CORRUPTED", MDB_CORRUPTED},
    {"PAGE_NOTFOUND", MDB_PAGE_NOTFOUND},
    {"PANIC", MDB_PANIC},
    {"TXN_FULL", MDB_TXN_FULL},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *path; /* NULL: no fault file, every point is a load and a branch */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void init(void)
{
    const char *p = getenv("FSTORE_FAULTS_FILE");
    path = p != NULL && p[0] != '\0' ? p : NULL;
    if (path != NULL)
        base_log(BASE_LOG_WARN, "fault_injection", "{s:s, s:s}", "file", path, "note",
                 "a test build: storage fails as this file says");
}

/* The file's lines into out, without the first one of point (or with its count less one), whose
 * code goes to *rc (0: none). Returns: 0, or -EINVAL for a malformed line. */
static int fire(char *text, store__fault_t point, FILE *out, int *rc)
{
    *rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char pname[32], ename[32];
        long count = 1;
        int n = sscanf(line, "%31s %31s %ld", pname, ename, &count);
        if (n < 2 || count < 1)
            return -EINVAL;
        int p = -1, e = -1;
        for (int i = 0; i < STORE__FAULT_N; i++)
            if (strcmp(pname, point_names[i]) == 0)
                p = i;
        for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
            if (strcmp(ename, errors[i].name) == 0)
                e = (int)i;
        if (p < 0 || e < 0)
            return -EINVAL;
        if (*rc == 0 && p == (int)point) {
            *rc = errors[e].rc;
            count--;
            if (count == 0)
                continue;
        }
        fprintf(out, "%s %s %ld\n", pname, ename, count);
    }
    return 0;
}

int store__fault(store__fault_t point)
{
    pthread_once(&once, init);
    if (path == NULL)
        return 0;
    pthread_mutex_lock(&mu);
    int rc = 0;
    char text[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        goto out;
    text[n] = '\0';
    char *rest = NULL;
    size_t rest_len = 0;
    FILE *out = open_memstream(&rest, &rest_len);
    if (out == NULL)
        goto out;
    int bad = fire(text, point, out, &rc);
    fclose(out);
    if (bad < 0) {
        base_log(BASE_LOG_ERROR, "fault_file_malformed", "{s:s}", "path", path);
        unlink(path);
        rc = 0;
    } else if (rc != 0) {
        base_log(BASE_LOG_WARN, "fault_injected", "{s:s, s:s}", "point", point_names[point],
                 "error", rc > 0 ? strerror(rc) : mdb_strerror(rc));
        if (rest_len == 0) {
            unlink(path);
        } else {
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            FILE *f = fopen(tmp, "w");
            if (f != NULL) {
                fwrite(rest, 1, rest_len, f);
                fclose(f);
                rename(tmp, path);
            }
        }
    }
    free(rest);
out:
    pthread_mutex_unlock(&mu);
    return rc;
}
