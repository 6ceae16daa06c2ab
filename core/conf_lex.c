/*
 * core/conf_lex.c
 *      Configuration: the integer lexer, and sizes and seconds as text.
 *
 * NOTES
 *      libconfig 1.5, as shipped in Debian 12, reads an integer literal
 *      without the L suffix into a 32-bit int and silently wraps it
 *      (3000000000 reads as -1294967296), and saturates 64-bit literals;
 *      the parsed tree keeps no trace of the text.  After a successful
 *      parse, the loader runs every file libconfig read through
 *      tg_conf_lex_ints, a small lexer that knows libconfig's comments,
 *      strings and names, and reports any integer literal that did not
 *      fit.  Pure functions: no allocation, no logging; fuzzed by
 *      tests/fuzz/fuzz_conf_lex.c.
 */
#include "core/conf_lex.h"
#include "core/core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *err; /* caller's buffer, may be NULL */
    size_t errlen;
} tg_conf_lex_err_t;

static int tg_conf_lex_error(tg_conf_lex_err_t *e, const char *file,
                             unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


/* Report "<file>:<line>: <message>" into <e>; returns TG_ERROR. */
static int
tg_conf_lex_error(tg_conf_lex_err_t *e, const char *file, unsigned line,
                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (e->err == NULL || e->errlen == 0) {
        return TG_ERROR;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(e->err, e->errlen, "%s:%u: %s", file, line, msg);
    return TG_ERROR;
}

/*
 * The integer scan (see NOTES).  It runs only on text libconfig accepted,
 * so it may be simple about malformed input; it must only never misread a
 * comment, a string or a name as a number.
 */

/* Skip a float's tail ("5.", ".25", "1e-3") from <p>; returns the end. */
static const char *
tg_conf_lex_skip_float(const char *p, const char *end)
{
    while (p < end) {
        if (tg_conf_is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E') {
            p++;
        } else if ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')) {
            p++;
        } else {
            break;
        }
    }
    return p;
}

/*
 * Read the number at *<pp> (sign, decimal or hex digits, L suffix, or a
 * float), advance *<pp> past it and report an integer that libconfig
 * could not have stored as written.
 */
static int
tg_conf_lex_number(tg_conf_lex_err_t *e, const char *file, unsigned line,
                   const char **pp, const char *end)
{
    const char *p = *pp, *start = *pp;
    uint64_t v = 0, limit, base = 10;
    bool neg = false, overflow = false, is64 = false;
    int d, n;

    if (*p == '-' || *p == '+') {
        neg = (*p == '-');
        p++;
    }
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        tg_conf_hex_value(p[2]) >= 0) {
        base = 16;
        p += 2;
    }
    for (; p < end; p++) {
        d = (base == 16) ? tg_conf_hex_value(*p)
                         : (tg_conf_is_digit(*p) ? *p - '0' : -1);
        if (d < 0) {
            break;
        }
        if (v > (UINT64_MAX - (uint64_t)d) / base) {
            overflow = true;
        } else {
            v = v * base + (uint64_t)d;
        }
    }
    if (base == 10 && p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        *pp = tg_conf_lex_skip_float(p, end);
        return TG_OK;
    }
    if (p < end && *p == 'L') {
        is64 = true;
        p += (p + 1 < end && p[1] == 'L') ? 2 : 1;
    }
    *pp = p;
    limit = is64 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
    if (!overflow && v <= limit + (neg ? 1 : 0)) {
        return TG_OK;
    }
    n = (int)TG_MIN(p - start, 40);
    if (!is64 && !overflow && v <= (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return tg_conf_lex_error(e, file, line,
                                 "integer %.*s does not fit in 32 bits; write "
                                 "%.*sL for a 64-bit integer",
                                 n, start, n, start);
    }
    return tg_conf_lex_error(e, file, line,
                             "integer %.*s does not fit in 64 bits", n, start);
}

/* Skip a string body after its opening quote; returns past the close. */
static const char *
tg_conf_lex_skip_string(const char *p, const char *end, unsigned *line)
{
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            p++;
        }
        if (*p == '\n') {
            (*line)++;
        }
        p++;
    }
    return p < end ? p + 1 : end;
}

/* Skip a block comment after its opening "/" "*"; returns past the end. */
static const char *
tg_conf_lex_skip_comment(const char *p, const char *end, unsigned *line)
{
    while (p < end && !(*p == '*' && p + 1 < end && p[1] == '/')) {
        if (*p == '\n') {
            (*line)++;
        }
        p++;
    }
    return p < end ? p + 2 : end;
}

/* See conf_lex.h. */
int
tg_conf_lex_ints(const char *file, const char *text, size_t len, char *err,
                 size_t errlen)
{
    tg_conf_lex_err_t e = {err, errlen};
    const char *p = text, *end = text + len;
    unsigned line = 1;

    while (p < end) {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            p = tg_conf_lex_skip_comment(p + 2, end, &line);
        } else if (*p == '"') {
            p = tg_conf_lex_skip_string(p + 1, end, &line);
        } else if (tg_conf_is_alpha(*p) || *p == '*') {
            /* A name (or true/false); it may hold digits and '-'. */
            while (p < end && (tg_conf_is_alpha(*p) || tg_conf_is_digit(*p) ||
                               *p == '_' || *p == '-' || *p == '*')) {
                p++;
            }
        } else if (tg_conf_is_digit(*p) ||
                   ((*p == '-' || *p == '+' || *p == '.') && p + 1 < end &&
                    (tg_conf_is_digit(p[1]) || p[1] == '.'))) {
            if (tg_conf_lex_number(&e, file, line, &p, end) != TG_OK) {
                return TG_ERROR;
            }
        } else {
            p++;
        }
    }
    return TG_OK;
}

/* Read <file> (which libconfig read just before) and scan it. */
/* See conf_lex.h. */
bool
tg_conf_lex_size(const char *p, int64_t *v)
{
    int64_t n = 0, mult = 1;

    if (!tg_conf_is_digit(*p)) {
        return false;
    }
    for (; tg_conf_is_digit(*p); p++) {
        if (n > (INT64_MAX - (*p - '0')) / 10) {
            return false;
        }
        n = n * 10 + (*p - '0');
    }
    switch (*p) {
    case 'k':
    case 'K':
        mult = INT64_C(1) << 10;
        break;
    case 'm':
    case 'M':
        mult = INT64_C(1) << 20;
        break;
    case 'g':
    case 'G':
        mult = INT64_C(1) << 30;
        break;
    case '\0':
        break;
    default:
        return false;
    }
    if (*p != '\0' && p[1] != '\0') {
        return false;
    }
    if (n > INT64_MAX / mult) {
        return false;
    }
    *v = n * mult;
    return true;
}


/* See conf_lex.h. */
void
tg_conf_lex_seconds(int64_t ms, char *buf, size_t size)
{
    size_t len;

    if (ms % 1000 == 0) {
        snprintf(buf, size, "%" PRId64, ms / 1000);
        return;
    }
    snprintf(buf, size, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    len = strlen(buf);
    while (len > 0 && buf[len - 1] == '0') {
        buf[--len] = '\0';
    }
}
