/*
 * core/conf_lex.h
 *      Configuration: the integer lexer, and sizes and seconds as text.
 *
 * NOTES
 *      Pure functions, shared by the config loader (core/conf*.c) and its
 *      fuzz target.  See conf_lex.c for why the lexer exists.
 */
#ifndef TG_CORE_CONF_LEX_H
#define TG_CORE_CONF_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool
tg_conf_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline bool
tg_conf_is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The value of hex digit <c>, or -1. */
static inline int
tg_conf_hex_value(int c)
{
    if (tg_conf_is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Scan <len> bytes of <text> (not NUL-terminated; any bytes), which
 * libconfig read from <file>, for integer literals libconfig could not
 * store as written: without the L suffix beyond 32 bits, or beyond 64
 * bits.  TG_OK, or TG_ERROR with "<file>:<line>: <message>" in <err>
 * (<errlen> bytes; <err> may be NULL).
 */
int tg_conf_lex_ints(const char *file, const char *text, size_t len, char *err,
                     size_t errlen);

/* Parse the NUL-terminated "<digits>[kKmMgG]" (binary multiples) into
 * <v>; false when malformed or beyond INT64_MAX. */
bool tg_conf_lex_size(const char *p, int64_t *v);

/* Format <ms> (>= 0) as seconds without trailing zeros ("0.5", "86400")
 * into <buf> of <size> bytes. */
void tg_conf_lex_seconds(int64_t ms, char *buf, size_t size);

#endif /* TG_CORE_CONF_LEX_H */
