/*
 * tests/fuzz/fuzz_conf_lex.c
 *      libFuzzer target for the configuration's integer lexer and size
 *      parser (core/conf_lex.c).
 *
 * NOTES
 *      Invariants: tg_conf_lex_ints never reads out of bounds on any bytes
 *      (the input is copied to an exact-size heap buffer without a NUL, so
 *      ASan catches a read past the end); on error it writes a
 *      NUL-terminated "<file>:<line>: " message within the buffer, and the
 *      line it names is at most one more than the newlines of the input;
 *      it is deterministic.  tg_conf_lex_size accepts only digits with an
 *      optional single k/m/g suffix, and its value never exceeds INT64_MAX.
 */
#include "core/conf_lex.h"
#include "core/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
tg_fz_size(const uint8_t *data, size_t size)
{
    char buf[64];
    int64_t v = -1;
    size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1, i;

    memcpy(buf, data, n);
    buf[n] = '\0';
    if (!tg_conf_lex_size(buf, &v)) {
        return;
    }
    if (v < 0 || !tg_conf_is_digit(buf[0])) {
        abort();
    }
    for (i = 0; buf[i] != '\0' && tg_conf_is_digit(buf[i]); i++) {
    }
    if (buf[i] != '\0' && (strchr("kKmMgG", buf[i]) == NULL || buf[i + 1])) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[96], err2[96];
    char *text = malloc(size ? size : 1);
    unsigned long line, lines = 1;
    size_t i;
    int rc, rc2;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    err[0] = err2[0] = '\0';
    rc = tg_conf_lex_ints("f", text, size, err, sizeof(err));
    rc2 = tg_conf_lex_ints("f", text, size, err2, sizeof(err2));
    if (rc != rc2 || strcmp(err, err2) != 0) {
        abort();
    }
    if (rc != TG_OK) {
        for (i = 0; i < size; i++) {
            lines += data[i] == '\n';
        }
        if (rc != TG_ERROR || memchr(err, '\0', sizeof(err)) == NULL ||
            sscanf(err, "f:%lu: ", &line) != 1 || line < 1 || line > lines) {
            abort();
        }
    }
    /* A NULL buffer is allowed and must give the same verdict. */
    if (tg_conf_lex_ints("f", text, size, NULL, 0) != rc) {
        abort();
    }
    free(text);
    tg_fz_size(data, size);
    return 0;
}
