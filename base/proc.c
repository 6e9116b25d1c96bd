/* base/proc.c - process setup: monotonic time, random bytes, CPU slices, abseil's deadlock
 * detection, the heap's free memory given back. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

int64_t base_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void base_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return;
    static _Atomic uint64_t calls;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
                 (uint64_t)base_mono_us() ^
                 atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) * 0x9e3779b97f4a7c15u;
    uint64_t z = 0;
    for (size_t i = got; i < n; i++) {
        if ((i - got) % 8 == 0) {
            x += 0x9e3779b97f4a7c15u; /* splitmix64 */
            z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
            z ^= z >> 31;
        }
        p[i] = (uint8_t)(z >> (8 * ((i - got) % 8)));
    }
}

/* struct sched_attr of sched_setattr(2), which glibc 2.36 does not wrap. */
struct slice_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime; /* SCHED_OTHER since Linux 6.12: the task's slice, in ns */
    uint64_t sched_deadline;
    uint64_t sched_period;
};

int base_sched_slice(unsigned us)
{
    if (us < 100 || us > 100000)
        return -EINVAL;
    struct slice_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_policy = 0; /* SCHED_OTHER */
    a.sched_runtime = (uint64_t)us * 1000;
    return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -errno;
}

/* absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle) in Debian's abseil (inline namespace
 * debian3) and upstream's LTS 20220623; OnDeadlockCycle is an enum class on int, kIgnore = 0, so
 * on the x86-64 and AArch64 C ABIs it is called exactly like a C function taking an int. */
static const char *const absl_detection_symbols[] = {
    "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
    "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
};

static atomic_bool detection_off;
static pthread_once_t detection_once = PTHREAD_ONCE_INIT;

static void switch_detection_off(void)
{
    const char *keep = getenv("FSTORE_ABSL_DEADLOCK_DETECTION");
    if (keep != NULL && strcmp(keep, "1") == 0)
        return;
    for (size_t i = 0; i < sizeof absl_detection_symbols / sizeof absl_detection_symbols[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, absl_detection_symbols[i]);
        if (sym == NULL)
            continue;
        void (*set_mode)(int);
        memcpy(&set_mode, &sym, sizeof set_mode); /* object pointer to function pointer */
        set_mode(0);
        atomic_store(&detection_off, true);
        return;
    }
}

bool base_lean_mutexes(void)
{
    pthread_once(&detection_once, switch_detection_off);
    return atomic_load(&detection_off);
}

int base_read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 4096) {
            size_t want = cap ? cap * 2 : 8192;
            if (want > max + 4096)
                want = max + 4096;
            char *p = realloc(buf, want + 1);
            if (p == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = p;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            rc = -EFBIG;
            break;
        }
        if (got == 0) {
            rc = ferror(f) ? -EIO : n == 0 ? -ENODATA : 0;
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return 0;
}

bool base_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Anonymous resident memory (resident minus file-backed and shared: the LMDB map's pages are
 * not the heap's), in bytes; 0 when /proc is not there. */
static size_t anon_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0, shared = 0;
    int n = f != NULL ? fscanf(f, "%lu %lu %lu", &size, &resident, &shared) : 0;
    if (f != NULL)
        fclose(f);
    if (n != 3 || resident < shared)
        return 0;
    return (size_t)(resident - shared) * (size_t)sysconf(_SC_PAGESIZE);
}

size_t base_heap_trim_tick(base_heap_trimmer_t *t, int64_t now_us)
{
    const int64_t max_backoff = 32000000;
    if (now_us < t->next_us)
        return 0;
    if (t->backoff_us < t->every_us)
        t->backoff_us = t->every_us;
    t->next_us = now_us + t->every_us;
    size_t anon = anon_rss();
    if (t->base_anon == 0 || anon < t->base_anon)
        t->base_anon = anon; /* the first tick, or the lowest the heap has been */
    if (anon - t->base_anon <= t->growth) {
        t->backoff_us = t->every_us;
        return 0;
    }
    /* Over the base by more than `growth`: look, and trim what is free. */
    struct mallinfo2 mi = mallinfo2();
    size_t back = 0;
    if (mi.fordblks > t->growth) {
        malloc_trim(0);
        size_t after = anon_rss();
        back = after < anon ? anon - after : 0;
    }
    if (back >= t->growth / 4) {
        t->backoff_us = t->every_us; /* a burst draining: look again at the next tick */
    } else {
        /* In use, or free but not returnable: look less often; after a long wait the heap's
         * size is the working set's and becomes the base. */
        t->next_us = now_us + t->backoff_us;
        if (t->backoff_us >= max_backoff)
            t->base_anon = anon;
        t->backoff_us = t->backoff_us * 2 > max_backoff ? max_backoff : t->backoff_us * 2;
    }
    return back;
}
