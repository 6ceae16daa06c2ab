/*
 * tests/fuzz/harness.h
 *      What the libFuzzer targets share: the entry point's prototype, a
 *      check that aborts, the generator of split points and a growable
 *      byte buffer the targets log their output into.
 *
 * NOTES
 *      tools/fuzz.sh builds each target from its one tests/fuzz/fuzz_*.c,
 *      so everything here is static: each target has its own copy, and a
 *      target seeds fuzz_rng from its input so that a run is reproducible.
 *      A failed CHECK names the target's file and line, then aborts, which
 *      libFuzzer reports as a crash with the input that caused it.
 */
#ifndef TG_TESTS_FUZZ_HARNESS_H
#define TG_TESTS_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #x);                                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Bytes appended by fuzz_buf_add; zero-initialise, free(p) when done. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
} fuzz_buf_t;

/* xorshift32 state; a target sets it (non-zero) before each input. */
static uint32_t fuzz_rng;


/* The next pseudo-random number of fuzz_rng. */
static inline uint32_t
fuzz_next(void)
{
    fuzz_rng ^= fuzz_rng << 13;
    fuzz_rng ^= fuzz_rng >> 17;
    fuzz_rng ^= fuzz_rng << 5;
    return fuzz_rng;
}


/* Append <n> bytes at <p> to <b>, growing it (a failed allocation is a
 * CHECK failure). */
static inline void
fuzz_buf_add(fuzz_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *q = realloc(b->p, cap);

        CHECK(q != NULL);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}


/* Whether <a> and <b> hold the same bytes. */
static inline bool
fuzz_buf_same(const fuzz_buf_t *a, const fuzz_buf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

#endif /* TG_TESTS_FUZZ_HARNESS_H */
