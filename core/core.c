/*
 * core/core.c
 *      Helpers declared in core/core.h.
 *
 * NOTES
 *      Runs in every process; nothing here blocks or allocates.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Fill <err> with <code>, <offset> and a formatted message, truncated to
 * the size of err->text.  <err> may be NULL.
 */
void
tg_err_set(tg_err_t *err, int code, size_t offset, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    err->code = code;
    err->offset = offset;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}


/*
 * Report a broken internal invariant on stderr and abort; the master
 * respawns the process.  Never used for bad input.
 */
void
tg_assert_fail(const char *expr, const char *file, int line)
{
    char buf[512];
    int n;

    n = snprintf(buf, sizeof(buf),
                 "tollgate: assertion \"%s\" failed at %s:%d\n", expr, file,
                 line);
    if (n > 0) {
        ssize_t rc =
            write(STDERR_FILENO, buf,
                  (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
        (void)rc;
    }
    abort();
}


/*
 * Compare two strings ignoring ASCII case; true when equal.
 */
bool
tg_str_caseeq(tg_str_t a, tg_str_t b)
{
    size_t i;

    if (a.len != b.len) {
        return false;
    }
    for (i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.data[i];
        unsigned char y = (unsigned char)b.data[i];

        if (x >= 'A' && x <= 'Z') {
            x |= 0x20;
        }
        if (y >= 'A' && y <= 'Z') {
            y |= 0x20;
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}


static uint64_t
tg_time_clock(clockid_t id, uint64_t div)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) / div;
}


/* Monotonic milliseconds. */
uint64_t
tg_time_mono_ms(void)
{
    return tg_time_clock(CLOCK_MONOTONIC, 1000000);
}


/* Monotonic microseconds. */
uint64_t
tg_time_mono_us(void)
{
    return tg_time_clock(CLOCK_MONOTONIC, 1000);
}


/* Wall-clock milliseconds since the epoch. */
uint64_t
tg_time_wall_ms(void)
{
    return tg_time_clock(CLOCK_REALTIME, 1000000);
}


/* See core/core.h. */
int
tg_nofile_raise(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (int)TG_MIN(rl.rlim_cur, (rlim_t)(1 << 20));
}
