/*
 * tests/unit/test_http.h
 *      Helpers shared by the "http" and "http_chunked" unit suites.
 */
#ifndef TG_TESTS_UNIT_TEST_HTTP_H
#define TG_TESTS_UNIT_TEST_HTTP_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

/* A heap copy of exactly <n> bytes at <s> (so ASan catches any read past
 * them); the caller frees it.  Fails the test when memory is short. */
char *tg_test_http_dup(const char *s, size_t n);

/*
 * Decode chunked body <s> of <n> bytes fed in pieces of <step> bytes (0:
 * all at once), the way a connection buffer would: unconsumed bytes stay,
 * new bytes are appended.  Collects the payload in <out> and returns the
 * final code; *<rest> is the number of input bytes left unconsumed after
 * TG_OK.
 */
int tg_test_http_chunked_feed(const char *s, size_t n, size_t step, char *out,
                              size_t *out_n, size_t *rest, tg_err_t *err);

/* True when chunked body <s> of <n> bytes fails with 400, whole and byte
 * by byte. */
bool tg_test_http_chunked_fails(const char *s, size_t n);

#endif /* TG_TESTS_UNIT_TEST_HTTP_H */
