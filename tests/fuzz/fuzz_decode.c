/*
 * tests/fuzz/fuzz_decode.c
 *      libFuzzer target for worker/decode.c.
 *
 * NOTES
 *      The first input byte picks the coding (low two bits: gzip, deflate,
 *      br, zstd) and seeds the split points; the rest is the body.  The
 *      body is fed three ways (at once, in random pieces, byte by byte),
 *      each piece an exact-size heap copy so that any read past it is an
 *      ASan report.  Every run must stay within the memory cap; when all
 *      three end without error they must have produced the same bytes
 *      (compared by length and hash, so large outputs cost no memory).
 *      After an error the runs may differ (brotli holds output back in its
 *      ring buffer; the output bound depends on how much input was in), so
 *      they are not compared.  The cap is set low (256 KB) so the fuzzer
 *      reaches it.  Build and run with tools/fuzz.sh.
 */
#include "tests/fuzz/harness.h"
#include "worker/decode.h"

#define FUZZ_MEM_MAX (256 * 1024)

typedef struct {
    uint64_t len;
    uint64_t hash; /* FNV-1a over the output */
} fuzz_out_t;

static void
fuzz_out(void *ctx, const char *p, size_t n)
{
    fuzz_out_t *o = ctx;
    size_t i;

    CHECK(n > 0 && n <= TG_DECODE_CHUNK);
    for (i = 0; i < n; i++) {
        o->hash = (o->hash ^ (uint8_t)p[i]) * 0x100000001b3ull;
    }
    o->len += n;
}


/* Decode <p> of <len> bytes as <coding> in pieces of <step> bytes (0:
 * random sizes).  Returns the last rc. */
static int
fuzz_feed(int coding, const char *p, size_t len, size_t step, fuzz_out_t *o)
{
    tg_err_t err;
    tg_decode_t *d = tg_decode_create(coding, FUZZ_MEM_MAX, &err);
    size_t off = 0, peak;
    int rc = TG_OK;

    CHECK(d != NULL);
    o->len = 0;
    o->hash = 0xcbf29ce484222325ull;
    while (off < len && rc != TG_ERROR) {
        size_t n = step ? step : 1 + fuzz_next() % 97;
        char *piece;

        n = (n > len - off) ? len - off : n;
        piece = malloc(n);
        CHECK(piece != NULL);
        memcpy(piece, p + off, n);
        rc = tg_decode_feed(d, piece, n, fuzz_out, o, &err);
        free(piece);
        CHECK(rc == TG_OK || rc == TG_DONE || rc == TG_ERROR);
        CHECK(rc != TG_ERROR || err.text[0] != '\0');
        off += n;
    }
    CHECK(tg_decode_mem(d, &peak) <= FUZZ_MEM_MAX && peak <= FUZZ_MEM_MAX);
    tg_decode_destroy(d);
    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int codings[] = {TG_DECODE_GZIP, TG_DECODE_DEFLATE,
                                  TG_DECODE_BR, TG_DECODE_ZSTD};
    fuzz_out_t a, b, c;
    int coding, ra, rb, rc;
    const char *p;
    size_t len;

    if (size < 1) {
        return 0;
    }
    coding = codings[data[0] & 3];
    fuzz_rng = 0x9e3779b9u ^ (uint32_t)size ^ ((uint32_t)data[0] << 16);
    p = (const char *)data + 1;
    len = size - 1;
    ra = fuzz_feed(coding, p, len, len ? len : 1, &a);
    rb = fuzz_feed(coding, p, len, 0, &b);
    rc = fuzz_feed(coding, p, len, 1, &c);
    if (ra != TG_ERROR && rb != TG_ERROR && rc != TG_ERROR) {
        CHECK(a.len == b.len && a.hash == b.hash);
        CHECK(a.len == c.len && a.hash == c.hash);
    }
    return 0;
}
