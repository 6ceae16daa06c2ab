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


/* See core.h. */
void
tg_utf8_fix(char *s)
{
    unsigned char *u = (unsigned char *)s;
    unsigned c, need, k;
    uint32_t cp;

    while ((c = *u) != 0) {
        need = c < 0x80             ? 0
               : (c & 0xe0) == 0xc0 ? 1
               : (c & 0xf0) == 0xe0 ? 2
               : (c & 0xf8) == 0xf0 ? 3
                                    : 4;
        cp = need == 0   ? c
             : need == 1 ? c & 0x1f
             : need == 2 ? c & 0x0f
                         : c & 7;
        for (k = 1; k <= need && need < 4 && (u[k] & 0xc0) == 0x80; k++) {
            cp = (cp << 6) | (u[k] & 0x3f);
        }
        if (need == 4 || k <= need || (need == 1 && cp < 0x80) ||
            (need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            *u++ = '?';
            continue;
        }
        u += need + 1;
    }
}
