/* tests/base/test_proc.c - process setup: CPU slices, monotonic time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "tests/tmpdir.h"

/* The calling thread's se.slice from /proc (ns), or -1 when the kernel does not show it. */
static long long own_slice_ns(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/sched", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    long long ns = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "se.slice", 8) == 0) {
            const char *colon = strchr(line, ':');
            ns = colon != NULL ? atoll(colon + 1) : -1;
        }
    }
    fclose(f);
    return ns;
}

Test(sched_slice, refuses_slices_out_of_range_and_sets_the_calling_thread)
{
    cr_assert_eq(base_sched_slice(0), -EINVAL);
    cr_assert_eq(base_sched_slice(99), -EINVAL);
    cr_assert_eq(base_sched_slice(100001), -EINVAL);
    int rc = base_sched_slice(250);
    if (rc == -EINVAL) {
        cr_log_warn("this kernel has no custom slices for normal tasks (before Linux 6.12)");
        return;
    }
    cr_assert_eq(rc, 0, "%s", strerror(-rc));
    long long ns = own_slice_ns();
    if (ns >= 0)
        cr_assert_eq(ns, 250000LL);
}

Test(mono_us, moves_forward_with_the_clock)
{
    int64_t a = base_mono_us();
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t b = base_mono_us();
    cr_assert_geq(b - a, 2000, "2 ms slept, %lld us seen", (long long)(b - a));
}

Test(read_file, reads_a_whole_file_and_refuses_a_missing_empty_or_oversized_one)
{
    char dir[4096];
    cr_assert_not_null(test_tmpdir("base", dir, sizeof dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/f", dir);
    /* Larger than the first buffer, so that it grows. */
    size_t n = 20000;
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
    size_t len = 0;
    char *got = NULL;
    cr_assert_eq(base_read_file(path, n, &got, &len), 0);
    cr_assert_eq(len, n);
    cr_assert_eq(got[n], '\0');
    cr_assert_eq(got[n - 1], 'a' + (int)((n - 1) % 26));
    free(got);
    char *none = NULL;
    cr_assert_eq(base_read_file(path, n - 1, &none, NULL), -EFBIG, "one byte over max");
    struct stat a, b;
    cr_assert_eq(stat(path, &a), 0);
    cr_assert_eq(stat(path, &b), 0);
    cr_assert(base_same_file(&a, &b));
    f = fopen(path, "w");
    fclose(f);
    cr_assert_eq(stat(path, &b), 0);
    cr_assert_not(base_same_file(&a, &b), "a rewritten file is another");
    cr_assert_eq(base_read_file(path, n, &none, NULL), -ENODATA);
    unlink(path);
    cr_assert_eq(base_read_file(path, n, &none, NULL), -ENOENT);
    cr_assert_null(none, "*out is written only on success");
    rmdir(dir);
}

/* base_random() fills exactly what it is given, and two draws differ (16 bytes colliding by
 * chance: 2^-128). */
Test(proc, random_fills_every_byte_and_never_repeats)
{
    for (size_t n = 0; n <= 40; n++) {
        uint8_t a[48], b[48];
        memset(a, 0xa5, sizeof a);
        memset(b, 0xa5, sizeof b);
        base_random(a, n);
        base_random(b, n);
        for (size_t i = n; i < sizeof a; i++)
            cr_assert(a[i] == 0xa5 && b[i] == 0xa5, "byte %zu past %zu written", i, n);
        if (n >= 16)
            cr_assert_neq(memcmp(a, b, n), 0, "two draws of %zu bytes are equal", n);
    }
    /* Every bit value shows up across draws (a stuck byte would not). */
    uint8_t or_all[64] = {0}, and_all[64];
    memset(and_all, 0xff, sizeof and_all);
    for (int k = 0; k < 64; k++) {
        uint8_t r[64];
        base_random(r, sizeof r);
        for (size_t i = 0; i < sizeof r; i++) {
            or_all[i] |= r[i];
            and_all[i] &= r[i];
        }
    }
    for (size_t i = 0; i < sizeof or_all; i++)
        cr_assert(or_all[i] == 0xff && and_all[i] == 0, "byte %zu is stuck", i);
}
