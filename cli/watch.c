/* cli/watch.c - serve's catalog watch: a change to the catalog's files asks for a reload. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli_int.h"

/*
 * Kubernetes updates a mounted ConfigMap by writing a new hidden directory and renaming a
 * `..data` symlink onto it; editors replace files by renaming. Both show as events in the
 * directory holding the catalog (the catalog directory itself, or a catalog file's directory),
 * which is what is watched: any creation, rename, write or deletion there starts a quiet period,
 * and the reload is asked for once the directory has been quiet for quiet_ms, so the kubelet's
 * several steps make one reload, after the swap, never before it (the race a SIGHUP right
 * after a ConfigMap update has). SIGHUP still works for manual use.
 */

struct cli_watch {
    int fd;      /* inotify */
    int stop[2]; /* a pipe: a byte ends the thread */
    pthread_t thread;
    unsigned quiet_ms;
    void (*fn)(void *);
    void *arg;
};

static void drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void *watch_main(void *p)
{
    cli_watch_t *w = p;
    bool pending = false;
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->fd, .events = POLLIN},
                                {.fd = w->stop[0], .events = POLLIN}};
        int n = poll(fds, 2, pending ? (int)w->quiet_ms : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (fds[1].revents & (POLLIN | POLLHUP)))
            return NULL;
        if (n == 0) {
            /* Quiet for quiet_ms after a change: one reload. */
            pending = false;
            base_log(BASE_LOG_INFO, "catalog_changed", "{s:s}", "note",
                     "the catalog's files changed: reloading");
            w->fn(w->arg);
            continue;
        }
        if (fds[0].revents & POLLIN) {
            drain(w->fd);
            pending = true;
        }
    }
}

int cli__watch_start(const char *catalog_path, unsigned quiet_ms, void (*fn)(void *), void *arg,
                     cli_watch_t **out)
{
    char dir[PATH_MAX];
    struct stat st;
    if (stat(catalog_path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode)) {
        if (strlen(catalog_path) >= sizeof dir)
            return -ENAMETOOLONG;
        strcpy(dir, catalog_path);
    } else {
        const char *slash = strrchr(catalog_path, '/');
        size_t n = slash == NULL ? 1 : (size_t)(slash - catalog_path);
        if (n >= sizeof dir)
            return -ENAMETOOLONG;
        memcpy(dir, slash == NULL ? "." : catalog_path, slash == NULL ? 1 : (n == 0 ? 1 : n));
        dir[n == 0 ? 1 : n] = '\0';
    }
    cli_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->quiet_ms = quiet_ms;
    w->fn = fn;
    w->arg = arg;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 || pipe2(w->stop, O_CLOEXEC) < 0) {
        int e = errno;
        if (w->fd >= 0)
            close(w->fd);
        free(w);
        return -e;
    }
    uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE |
                    IN_ATTRIB | IN_DONT_FOLLOW;
    int e = 0;
    if (inotify_add_watch(w->fd, dir, mask) < 0)
        e = errno;
    else
        e = pthread_create(&w->thread, NULL, watch_main, w);
    if (e != 0) {
        close(w->fd);
        close(w->stop[0]);
        close(w->stop[1]);
        free(w);
        return -e;
    }
    *out = w;
    return 0;
}

void cli__watch_stop(cli_watch_t *w)
{
    if (w == NULL)
        return;
    char b = 0;
    if (write(w->stop[1], &b, 1) < 0) {
        /* a full pipe still wakes the thread */
    }
    pthread_join(w->thread, NULL);
    close(w->fd);
    close(w->stop[0]);
    close(w->stop[1]);
    free(w);
}
