/*
 * core/core.h
 *      Return codes, strings, error buffers and small helpers shared by
 *      every module.
 *
 * NOTES
 *      Everything here is header-only and allocation-free, so it can be
 *      included by library-like code (parsers) and by the processes alike.
 */
#ifndef TG_CORE_CORE_H
#define TG_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TG_OK       0  /* done */
#define TG_ERROR    -1 /* failed; the callee logged or filled tg_err_t */
#define TG_AGAIN    -2 /* would block or needs more input; call again */
#define TG_DONE     -3 /* finished elsewhere */
#define TG_DECLINED -4 /* not mine, not an error */

#define TG_VERSION "0.1.0"

/* A counted string; never NUL-terminated by contract. */
typedef struct {
    const char *data;
    size_t len;
} tg_str_t;

#define tg_str_lit(s) ((tg_str_t){(s), sizeof(s) - 1})
#define tg_str_null   ((tg_str_t){NULL, 0})

/*
 * Caller-owned error filled by library-like code (parsers, config).
 * <code> is module specific (an HTTP status for the HTTP codec), <offset>
 * the byte offset in the input where the problem was found.
 */
typedef struct {
    int code;
    size_t offset;
    char text[128];
} tg_err_t;

void tg_err_set(tg_err_t *err, int code, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Internal invariant check; stays on in release builds. */
#define TG_ASSERT(x)                                                           \
    do {                                                                       \
        if (!(x)) {                                                            \
            tg_assert_fail(#x, __FILE__, __LINE__);                            \
        }                                                                      \
    } while (0)

void tg_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#define TG_NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define TG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TG_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline bool
tg_str_eq(tg_str_t a, tg_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* ASCII case-insensitive comparison, for header names and tokens. */
bool tg_str_caseeq(tg_str_t a, tg_str_t b);

/* Overflow-checked size arithmetic; false on overflow (PG add_size idea). */
static inline bool
tg_size_add(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool
tg_size_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/*
 * Raise RLIMIT_NOFILE to its hard limit.  Returns the soft limit now in
 * force, capped at 2^20 (the size callers give their fd tables).
 */
int tg_nofile_raise(void);

/*
 * Replace every byte of NUL-terminated <s> that is not part of a valid
 * UTF-8 sequence (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF) with '?', in place: for text that quotes a peer's bytes or
 * was cut mid-character and must go into JSON or a UTF-8 exposition.
 */
void tg_utf8_fix(char *s);

/* Monotonic and wall clocks in milliseconds / microseconds. */
uint64_t tg_time_mono_ms(void);
uint64_t tg_time_mono_us(void);
uint64_t tg_time_wall_ms(void);

#endif /* TG_CORE_CORE_H */
