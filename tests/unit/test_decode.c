/*
 * tests/unit/test_decode.c
 *      CUnit suite "decode": the content-coding decoders usage reads
 *      compressed bodies with, the content-encoding and accept-encoding
 *      helpers, and usage counted from encoded bodies.
 *
 * NOTES
 *      Inputs are compressed here with the libraries themselves (zlib,
 *      libbrotlienc, libzstd) and decoded fed at once, split in two at
 *      every offset and byte by byte; every feed is an exact-size heap
 *      copy, so ASan sees any read past it.  The chaos test swaps the
 *      decoder's allocator for one that fails the n-th call, for every n,
 *      and relies on the ASan build's leak checker.
 */
#include "tests/unit/unit.h"
#include "worker/decode.h"
#include "worker/usage.h"

#include <CUnit/CUnit.h>
#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* A byte string on the heap. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
} blob_t;

/* zlib window bits per format. */
#define GZ_GZIP (15 + 16)
#define GZ_ZLIB 15
#define GZ_RAW  (-15)

static const char sse_text[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":25,"
    "\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"Hello there\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";


static void
blob_add(void *ctx, const char *p, size_t n)
{
    blob_t *b = ctx;

    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *q = realloc(b->p, cap);

        CU_ASSERT_FATAL(q != NULL);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}


/* Count decoded bytes only (for large outputs). */
static void
count_out(void *ctx, const char *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
}


static void
blob_free(blob_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}


/* <len> bytes of words from a fixed pseudo-random sequence: text that
 * compresses, but not to nothing. */
static char *
words(size_t len, uint32_t seed)
{
    static const char *const w[] = {"alpha ",   "beta ",  "gamma ",  "delta ",
                                    "epsilon ", "zeta ",  "eta ",    "theta ",
                                    "iota ",    "kappa ", "lambda ", "mu "};
    char *s = malloc(len);
    size_t n = 0, k;

    CU_ASSERT_FATAL(s != NULL);
    while (n < len) {
        const char *x;

        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        x = (seed & 0x100) ? w[seed % TG_NELEMS(w)] : NULL;
        if (x == NULL) {
            /* A number now and then keeps long matches rare. */
            char num[16];

            k = (size_t)snprintf(num, sizeof(num), "%u ", seed % 100000);
            k = TG_MIN(k, len - n);
            memcpy(s + n, num, k);
        } else {
            k = TG_MIN(strlen(x), len - n);
            memcpy(s + n, x, k);
        }
        n += k;
    }
    return s;
}


/* ------------------------------------------------------- compressors */

static void
gz_compress(blob_t *out, const char *p, size_t len, int wbits)
{
    z_stream z;
    char buf[4096];
    int rc;

    memset(&z, 0, sizeof(z));
    CU_ASSERT_FATAL(
        deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)len;
    do {
        z.next_out = (Bytef *)buf;
        z.avail_out = sizeof(buf);
        rc = deflate(&z, Z_FINISH);
        CU_ASSERT_FATAL(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
        blob_add(out, buf, sizeof(buf) - z.avail_out);
    } while (rc != Z_STREAM_END);
    deflateEnd(&z);
}


static void
br_compress(blob_t *out, const char *p, size_t len, int lgwin, int quality)
{
    size_t cap = BrotliEncoderMaxCompressedSize(len), n = cap;
    uint8_t *buf = malloc(cap);

    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_FATAL(BrotliEncoderCompress(quality, lgwin, BROTLI_MODE_TEXT, len,
                                          (const uint8_t *)p, &n, buf));
    blob_add(out, (const char *)buf, n);
    free(buf);
}


/* A zstd frame of unknown content size, as a streaming server makes it
 * (flushed every <step> bytes), with a window of 2^<wlog> (0: the level's
 * default). */
static void
zstd_compress(blob_t *out, const char *p, size_t len, int wlog, size_t step)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    char buf[4096];
    ZSTD_inBuffer in = {p, 0, 0};
    ZSTD_outBuffer o;
    size_t left;

    CU_ASSERT_FATAL(cc != NULL);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
    if (wlog != 0) {
        CU_ASSERT_FATAL(
            !ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, wlog)));
    }
    do {
        in.size = TG_MIN(in.size + step, len);
        do {
            o = (ZSTD_outBuffer){buf, sizeof(buf), 0};
            left = ZSTD_compressStream2(
                cc, &o, &in, in.size == len ? ZSTD_e_end : ZSTD_e_flush);
            CU_ASSERT_FATAL(!ZSTD_isError(left));
            blob_add(out, buf, o.pos);
        } while (left != 0);
    } while (in.size < len);
    ZSTD_freeCCtx(cc);
}


/* ---------------------------------------------------------- decoding */

/* Decode <n> bytes of <p> as <coding>, split at <k> (the second piece
 * may be empty), into <out>.  Returns the last rc. */
static int
decode_split(int coding, const char *p, size_t n, size_t k, blob_t *out)
{
    tg_err_t err = {0};
    tg_decode_t *d = tg_decode_create(coding, TG_DECODE_MEM_MAX, &err);
    size_t cuts[2] = {k, n - k}, off = 0, i;
    int rc = TG_OK;

    CU_ASSERT_FATAL(d != NULL);
    for (i = 0; i < 2 && rc != TG_ERROR; i++) {
        char *piece = malloc(cuts[i] + 1);

        CU_ASSERT_FATAL(piece != NULL);
        memcpy(piece, p + off, cuts[i]);
        rc = tg_decode_feed(d, piece, cuts[i], blob_add, out, &err);
        free(piece);
        off += cuts[i];
    }
    tg_decode_destroy(d);
    return rc;
}


/* Decode byte by byte. */
static int
decode_bytes(int coding, const char *p, size_t n, blob_t *out)
{
    tg_err_t err = {0};
    tg_decode_t *d = tg_decode_create(coding, TG_DECODE_MEM_MAX, &err);
    size_t i;
    int rc = TG_OK;

    CU_ASSERT_FATAL(d != NULL);
    for (i = 0; i < n && rc != TG_ERROR; i++) {
        char *piece = malloc(1);

        CU_ASSERT_FATAL(piece != NULL);
        *piece = p[i];
        rc = tg_decode_feed(d, piece, 1, blob_add, out, &err);
        free(piece);
    }
    tg_decode_destroy(d);
    return rc;
}


/* Whether <enc> decodes as <coding> to <want> whatever the feeds. */
static bool
round_trips(int coding, const blob_t *enc, const char *want, size_t wlen)
{
    blob_t out = {0};
    size_t k;
    int rc;
    bool ok = true;

    for (k = 0; k <= enc->len && ok; k++) {
        rc = decode_split(coding, enc->p, enc->len, k, &out);
        ok = rc != TG_ERROR && out.len == wlen &&
             (wlen == 0 || memcmp(out.p, want, wlen) == 0);
        if (!ok) {
            fprintf(stderr, "\n  %s split at %zu: rc %d, %zu bytes\n",
                    tg_decode_name(coding), k, rc, out.len);
        }
        blob_free(&out);
    }
    if (ok) {
        rc = decode_bytes(coding, enc->p, enc->len, &out);
        ok = rc != TG_ERROR && out.len == wlen &&
             (wlen == 0 || memcmp(out.p, want, wlen) == 0);
        blob_free(&out);
    }
    return ok;
}


static void
test_gzip_round_trip(void)
{
    blob_t enc = {0};

    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_GZIP);
    CU_ASSERT(
        round_trips(TG_DECODE_GZIP, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    /* Empty bodies compress to a header and trailer only. */
    gz_compress(&enc, "", 0, GZ_GZIP);
    CU_ASSERT(round_trips(TG_DECODE_GZIP, &enc, "", 0));
    blob_free(&enc);
}


static void
test_deflate_round_trip(void)
{
    blob_t enc = {0};

    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_ZLIB);
    CU_ASSERT(
        round_trips(TG_DECODE_DEFLATE, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    /* Raw deflate, as some servers send "deflate". */
    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_RAW);
    CU_ASSERT(
        round_trips(TG_DECODE_DEFLATE, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    /* A gzip body labelled deflate is read too. */
    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_GZIP);
    CU_ASSERT(
        round_trips(TG_DECODE_DEFLATE, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
}


static void
test_br_round_trip(void)
{
    blob_t enc = {0};

    br_compress(&enc, sse_text, sizeof(sse_text) - 1, 22, 5);
    CU_ASSERT(round_trips(TG_DECODE_BR, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    br_compress(&enc, "", 0, 22, 5);
    CU_ASSERT(round_trips(TG_DECODE_BR, &enc, "", 0));
    blob_free(&enc);
}


static void
test_zstd_round_trip(void)
{
    blob_t enc = {0};

    zstd_compress(&enc, sse_text, sizeof(sse_text) - 1, 20, 50);
    CU_ASSERT(
        round_trips(TG_DECODE_ZSTD, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    /* One-shot frames carry their size and a window to match. */
    {
        char buf[1024];
        size_t n =
            ZSTD_compress(buf, sizeof(buf), sse_text, sizeof(sse_text) - 1, 19);

        CU_ASSERT_FATAL(!ZSTD_isError(n));
        blob_add(&enc, buf, n);
        CU_ASSERT(
            round_trips(TG_DECODE_ZSTD, &enc, sse_text, sizeof(sse_text) - 1));
        blob_free(&enc);
    }
}


static void
test_gzip_members_and_trailing_bytes(void)
{
    blob_t enc = {0}, want = {0};
    size_t half = 100;

    /* Two members back to back decode as one body (RFC 1952). */
    gz_compress(&enc, sse_text, half, GZ_GZIP);
    gz_compress(&enc, sse_text + half, sizeof(sse_text) - 1 - half, GZ_GZIP);
    CU_ASSERT(
        round_trips(TG_DECODE_GZIP, &enc, sse_text, sizeof(sse_text) - 1));
    /* Bytes after the last member are ignored, in every coding. */
    blob_add(&enc, "\0\0junk", 6);
    CU_ASSERT(
        round_trips(TG_DECODE_GZIP, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    br_compress(&enc, sse_text, sizeof(sse_text) - 1, 22, 5);
    blob_add(&enc, "junk", 4);
    CU_ASSERT(round_trips(TG_DECODE_BR, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    zstd_compress(&enc, sse_text, sizeof(sse_text) - 1, 20, 1000);
    blob_add(&enc, "junk", 4);
    CU_ASSERT(
        round_trips(TG_DECODE_ZSTD, &enc, sse_text, sizeof(sse_text) - 1));
    blob_free(&enc);
    /* Two zstd frames are one body too. */
    zstd_compress(&enc, sse_text, half, 20, 1000);
    zstd_compress(&enc, sse_text + half, sizeof(sse_text) - 1 - half, 20, 1000);
    blob_add(&want, sse_text, sizeof(sse_text) - 1);
    CU_ASSERT(round_trips(TG_DECODE_ZSTD, &enc, want.p, want.len));
    blob_free(&enc);
    blob_free(&want);
}


/* Feed <n> bytes of <p> at once; the rc, with <err> filled. */
static int
decode_once(int coding, const char *p, size_t n, size_t mem_max, size_t *outn,
            size_t *peak, tg_err_t *err)
{
    tg_decode_t *d = tg_decode_create(coding, mem_max, err);
    int rc;

    CU_ASSERT_FATAL(d != NULL);
    *outn = 0;
    rc = tg_decode_feed(d, p, n, count_out, outn, err);
    if (peak != NULL) {
        tg_decode_mem(d, peak);
    }
    if (rc == TG_ERROR) {
        tg_err_t again;

        /* A failed decoder stays failed. */
        CU_ASSERT_EQUAL(tg_decode_feed(d, "x", 1, count_out, outn, &again),
                        TG_ERROR);
    }
    tg_decode_destroy(d);
    return rc;
}


static void
test_corrupt_input_stops(void)
{
    static const int codings[] = {TG_DECODE_GZIP, TG_DECODE_DEFLATE,
                                  TG_DECODE_BR, TG_DECODE_ZSTD};
    blob_t enc = {0};
    tg_err_t err;
    size_t i, k, n, errors = 0;
    uint32_t seed = 12345;

    /* Plainly broken: a gzip header then a reserved block type, a zlib
     * header then the same, a brotli stream of garbage, a zstd magic with
     * a reserved frame header bit. */
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_GZIP,
                                "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff"
                                "\xff\xff",
                                13, TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "inflate") != NULL);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_DEFLATE, "\x78\x9c\xff\xff\xff", 5,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_BR, "\xff\xff\xff\xff\xff\xff", 6,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "Brotli") != NULL);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_ZSTD,
                                "\x28\xb5\x2f\xfd\x08\x00\x00\x00", 8,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "ZSTD") != NULL);
    /* A gzip stream whose CRC does not match its data. */
    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_GZIP);
    enc.p[enc.len - 6] ^= 0x55;
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_GZIP, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    blob_free(&enc);
    /* Random damage in every coding: decoding may fail or produce other
     * bytes, but it ends, never reads out of bounds and never leaks. */
    for (i = 0; i < TG_NELEMS(codings); i++) {
        for (k = 0; k < 200; k++) {
            if (codings[i] == TG_DECODE_BR) {
                br_compress(&enc, sse_text, sizeof(sse_text) - 1, 22, 5);
            } else if (codings[i] == TG_DECODE_ZSTD) {
                zstd_compress(&enc, sse_text, sizeof(sse_text) - 1, 20, 64);
            } else {
                gz_compress(&enc, sse_text, sizeof(sse_text) - 1,
                            codings[i] == TG_DECODE_GZIP ? GZ_GZIP : GZ_ZLIB);
            }
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            enc.p[seed % enc.len] ^= (char)(1 + seed % 255);
            if (decode_once(codings[i], enc.p, enc.len, TG_DECODE_MEM_MAX, &n,
                            NULL, &err) == TG_ERROR) {
                errors++;
            }
            blob_free(&enc);
        }
    }
    CU_ASSERT(errors > 400);
}


static void
test_br_memory_cap(void)
{
    size_t len = 3u << 20, n, peak;
    char *text = words(len, 7);
    blob_t enc = {0};
    tg_err_t err;

    /* A 16 MiB window: the ring buffer would grow past the cap once the
     * output passes 1 MiB. */
    br_compress(&enc, text, len, 24, 1);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_BR, enc.p, enc.len, TG_DECODE_MEM_MAX,
                                &n, &peak, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "window too large") != NULL);
    CU_ASSERT(peak <= TG_DECODE_MEM_MAX);
    CU_ASSERT(n > 0 && n < len);
    blob_free(&enc);
    /* A 1 MiB window fits, ring buffer growth included. */
    br_compress(&enc, text, len, 20, 1);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_BR, enc.p, enc.len, TG_DECODE_MEM_MAX,
                                &n, &peak, &err),
                    TG_DONE);
    CU_ASSERT_EQUAL(n, len);
    CU_ASSERT(peak > (1u << 20) && peak <= TG_DECODE_MEM_MAX);
    /* A small body needs a small ring buffer, whatever the window. */
    blob_free(&enc);
    br_compress(&enc, text, 20000, 24, 5);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_BR, enc.p, enc.len, TG_DECODE_MEM_MAX,
                                &n, &peak, &err),
                    TG_DONE);
    CU_ASSERT_EQUAL(n, 20000);
    CU_ASSERT(peak < 256 * 1024);
    blob_free(&enc);
    free(text);
}


static void
test_zstd_window_limit(void)
{
    size_t len = 64 * 1024, n;
    char *text = words(len, 9);
    blob_t enc = {0};
    tg_err_t err;

    /* A streaming frame announces its window, whatever the body's size:
     * 2 MiB (level 3's default) is refused at once. */
    zstd_compress(&enc, text, len, 21, 4096);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_ZSTD, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "window larger than 1048576") != NULL);
    CU_ASSERT_EQUAL(n, 0);
    blob_free(&enc);
    zstd_compress(&enc, text, len, 0, 4096);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_ZSTD, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    blob_free(&enc);
    zstd_compress(&enc, text, len, TG_DECODE_WINDOW_LOG_MAX, 4096);
    CU_ASSERT_NOT_EQUAL(decode_once(TG_DECODE_ZSTD, enc.p, enc.len,
                                    TG_DECODE_MEM_MAX, &n, NULL, &err),
                        TG_ERROR);
    CU_ASSERT_EQUAL(n, len);
    blob_free(&enc);
    free(text);
}


static void
test_output_bounded_by_input(void)
{
    size_t len = 64u << 20, n;
    char *zeros = calloc(1, len);
    blob_t enc = {0};
    tg_err_t err;

    CU_ASSERT_FATAL(zeros != NULL);
    /* 64 MiB of zeros in about 2 KB: stopped soon after the first MiB. */
    zstd_compress(&enc, zeros, len, 20, 1u << 20);
    CU_ASSERT(enc.len < 8192);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_ZSTD, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "out of proportion") != NULL);
    CU_ASSERT(n >= TG_DECODE_RATIO_SLACK && n < (2u << 20));
    blob_free(&enc);
    /* A gzip bomb (64 MiB of zeros, about 1000x) is stopped as early. */
    gz_compress(&enc, zeros, len, GZ_GZIP);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_GZIP, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "out of proportion") != NULL);
    CU_ASSERT(n >= TG_DECODE_RATIO_SLACK &&
              n <= TG_DECODE_RATIO_SLACK + TG_DECODE_RATIO_SLACK / 4);
    blob_free(&enc);
    free(zeros);
}


static void
test_output_bounded_in_time(void)
{
    size_t len = 3 * (size_t)TG_DECODE_BURST, n, i;
    char *text = malloc(len);
    unsigned seed = 1;
    blob_t enc = {0};
    tg_err_t err;

    CU_ASSERT_FATAL(text != NULL);
    /* A random letter every 100 bytes: about 30x, within the ratio, but
     * more than a burst in one call is refused. */
    memset(text, 'a', len);
    for (i = 0; i < len; i += 100) {
        seed = seed * 1103515245u + 12345u;
        text[i] = (char)('b' + (seed >> 16) % 25);
    }
    gz_compress(&enc, text, len, GZ_GZIP);
    CU_ASSERT(enc.len * TG_DECODE_RATIO_MAX > len);
    CU_ASSERT_EQUAL(decode_once(TG_DECODE_GZIP, enc.p, enc.len,
                                TG_DECODE_MEM_MAX, &n, NULL, &err),
                    TG_ERROR);
    CU_ASSERT(strstr(err.text, "faster than") != NULL);
    CU_ASSERT(n > 0 && n <= (size_t)TG_DECODE_BURST);
    blob_free(&enc);
    free(text);
}


/* Chaos allocator: fails call number chaos_fail_at (1-based). */
static int chaos_calls;
static int chaos_fail_at;


static void *
chaos_malloc(size_t n)
{
    if (++chaos_calls == chaos_fail_at) {
        return NULL;
    }
    return malloc(n);
}


static void
test_survives_allocation_failure(void)
{
    static const int codings[] = {TG_DECODE_GZIP, TG_DECODE_BR, TG_DECODE_ZSTD};
    blob_t enc = {0}, out = {0};
    tg_decode_t *d;
    tg_err_t err;
    size_t i;
    int at, rc, failures;

    for (i = 0; i < TG_NELEMS(codings); i++) {
        if (codings[i] == TG_DECODE_BR) {
            br_compress(&enc, sse_text, sizeof(sse_text) - 1, 22, 5);
        } else if (codings[i] == TG_DECODE_ZSTD) {
            zstd_compress(&enc, sse_text, sizeof(sse_text) - 1, 20, 64);
        } else {
            gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_GZIP);
        }
        failures = 0;
        for (at = 1; at < 100; at++) {
            chaos_calls = 0;
            chaos_fail_at = at;
            tg_decode_malloc = chaos_malloc;
            d = tg_decode_create(codings[i], TG_DECODE_MEM_MAX, &err);
            rc = d == NULL
                     ? TG_ERROR
                     : tg_decode_feed(d, enc.p, enc.len, blob_add, &out, &err);
            tg_decode_destroy(d);
            tg_decode_malloc = malloc;
            if (rc == TG_ERROR) {
                failures++;
            } else {
                CU_ASSERT_EQUAL(out.len, sizeof(sse_text) - 1);
            }
            blob_free(&out);
            if (chaos_calls < at) {
                break; /* every allocation has been failed once */
            }
        }
        CU_ASSERT(failures > 0);
        blob_free(&enc);
    }
}


static void
test_content_encoding_values(void)
{
    static const struct {
        int have;
        const char *value;
        int want;
    } cases[] = {
        {TG_DECODE_IDENTITY, "gzip", TG_DECODE_GZIP},
        {TG_DECODE_IDENTITY, "GZip", TG_DECODE_GZIP},
        {TG_DECODE_IDENTITY, "x-gzip", TG_DECODE_GZIP},
        {TG_DECODE_IDENTITY, "deflate", TG_DECODE_DEFLATE},
        {TG_DECODE_IDENTITY, " br ", TG_DECODE_BR},
        {TG_DECODE_IDENTITY, "zstd", TG_DECODE_ZSTD},
        {TG_DECODE_IDENTITY, "identity", TG_DECODE_IDENTITY},
        {TG_DECODE_IDENTITY, "", TG_DECODE_IDENTITY},
        {TG_DECODE_IDENTITY, "identity, br", TG_DECODE_BR},
        {TG_DECODE_IDENTITY, "compress", TG_DECODE_OPAQUE},
        {TG_DECODE_IDENTITY, "gzip, br", TG_DECODE_OPAQUE},
        {TG_DECODE_IDENTITY, "gzip;q=1", TG_DECODE_OPAQUE},
        {TG_DECODE_GZIP, "br", TG_DECODE_OPAQUE},
        {TG_DECODE_GZIP, "identity", TG_DECODE_GZIP},
        {TG_DECODE_OPAQUE, "identity", TG_DECODE_OPAQUE},
    };
    size_t i;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        tg_str_t v = {cases[i].value, strlen(cases[i].value)};
        int got = tg_decode_coding(cases[i].have, v);

        if (got != cases[i].want) {
            fprintf(stderr, "\n  \"%s\" after %d: got %d, want %d\n",
                    cases[i].value, cases[i].have, got, cases[i].want);
        }
        CU_ASSERT_EQUAL(got, cases[i].want);
    }
}


static void
test_accept_encoding_filter(void)
{
    static const struct {
        const char *value;
        const char *want; /* "" = nothing usable left */
    } cases[] = {
        {"gzip, deflate, br, zstd", "gzip, deflate"},
        {"compress, gzip", "gzip"},
        {"gzip;q=1.0, identity; q=0.5, *;q=0", "gzip;q=1.0, identity; q=0.5"},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", "gzip;q=0.8"},
        {"GZIP,x-gzip,,  zstd ", "GZIP, x-gzip"},
        {"identity", "identity"},
        {"*", ""},
        {"compress, exi", ""},
        {"br;q=0", ""},
        {"gzip;q=0.000, identity;q=0", ""},
        {"gzip;q=0.001", "gzip;q=0.001"},
        {"", ""},
    };
    char dst[256];
    size_t i, n;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        tg_str_t v = {cases[i].value, strlen(cases[i].value)};

        n = tg_decode_accept(dst, sizeof(dst), v);
        if (n != strlen(cases[i].want) || memcmp(dst, cases[i].want, n) != 0) {
            fprintf(stderr, "\n  \"%s\": got \"%.*s\", want \"%s\"\n",
                    cases[i].value, (int)n, dst, cases[i].want);
        }
        CU_ASSERT(n == strlen(cases[i].want) &&
                  memcmp(dst, cases[i].want, n) == 0);
    }
    /* A result that does not fit gives nothing (the caller asks for
     * identity). */
    CU_ASSERT_EQUAL(tg_decode_accept(dst, 10, tg_str_lit("gzip, deflate")), 0);
    CU_ASSERT_EQUAL(tg_decode_accept(dst, 13, tg_str_lit("gzip, deflate")), 13);
}


/* ------------------------------------------------------------- usage */

static void
usage_of(tg_usage_t *u, bool openai, bool sse, int coding, const blob_t *enc)
{
    size_t k;

    tg_usage_init(u, openai, sse, coding, 1);
    /* In uneven pieces, the way curl delivers them. */
    for (k = 0; k < enc->len; k += 7) {
        tg_usage_feed(u, enc->p + k, TG_MIN((size_t)7, enc->len - k));
    }
    tg_usage_finish(u);
}


static void
test_usage_of_encoded_bodies(void)
{
    static const char json[] =
        "{\"id\":\"chatcmpl-1\",\"model\":\"gpt-x\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12,"
        "\"prompt_tokens_details\":{\"cached_tokens\":10}}}";
    static const int codings[] = {TG_DECODE_GZIP, TG_DECODE_DEFLATE,
                                  TG_DECODE_BR, TG_DECODE_ZSTD};
    tg_usage_t u;
    blob_t enc = {0};
    size_t i, j;

    for (i = 0; i < TG_NELEMS(codings); i++) {
        for (j = 0; j < 2; j++) {
            const char *text = j ? json : sse_text;
            size_t len = j ? sizeof(json) - 1 : sizeof(sse_text) - 1;

            if (codings[i] == TG_DECODE_BR) {
                br_compress(&enc, text, len, 22, 5);
            } else if (codings[i] == TG_DECODE_ZSTD) {
                zstd_compress(&enc, text, len, 20, 64);
            } else {
                gz_compress(&enc, text, len,
                            codings[i] == TG_DECODE_GZIP ? GZ_GZIP : GZ_ZLIB);
            }
            usage_of(&u, j == 1, j == 0, codings[i], &enc);
            CU_ASSERT(!u.unknown && u.seen && u.ended);
            if (j == 0) {
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 25);
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_CACHE_READ], 3);
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_OUTPUT], 42);
                CU_ASSERT_STRING_EQUAL(u.model, "claude-x");
            } else {
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 20);
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_CACHE_READ], 10);
                CU_ASSERT_EQUAL(u.tokens[TG_TOK_OUTPUT], 12);
                CU_ASSERT_STRING_EQUAL(u.model, "gpt-x");
            }
            tg_usage_fini(&u);
            CU_ASSERT(u.dec == NULL);
            blob_free(&enc);
        }
    }
}


static void
test_usage_unknown_when_undecodable(void)
{
    tg_usage_t u;
    blob_t enc = {0};

    /* Corrupt after message_start: its tokens are kept, the usage is
     * marked unknown and the decoder is released at once. */
    gz_compress(&enc, sse_text, sizeof(sse_text) - 1, GZ_GZIP);
    tg_usage_init(&u, false, true, TG_DECODE_GZIP, 2);
    tg_usage_feed(&u, enc.p, enc.len - 8);
    tg_usage_feed(&u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08", 9);
    tg_usage_finish(&u);
    CU_ASSERT(u.unknown);
    CU_ASSERT(u.dec == NULL);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 25);
    tg_usage_fini(&u);
    blob_free(&enc);
    /* A coding we do not decode. */
    tg_usage_init(&u, false, false, TG_DECODE_OPAQUE, 3);
    tg_usage_feed(&u, "{\"usage\":{\"input_tokens\":5}}", 28);
    tg_usage_finish(&u);
    CU_ASSERT(u.unknown && u.opaque && !u.seen);
    tg_usage_fini(&u);
}


/* Register the "decode" suite.  0 on success. */
int
tg_test_decode_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"gzip decodes whatever the feed boundaries", test_gzip_round_trip},
        {"deflate decodes zlib, raw deflate and gzip bodies",
         test_deflate_round_trip},
        {"br decodes whatever the feed boundaries", test_br_round_trip},
        {"zstd decodes streaming and one-shot frames", test_zstd_round_trip},
        {"gzip members and zstd frames chain and trailing bytes are ignored",
         test_gzip_members_and_trailing_bytes},
        {"corrupt input stops decoding with an error and nothing else",
         test_corrupt_input_stops},
        {"the brotli allocation cap refuses a window it cannot hold",
         test_br_memory_cap},
        {"decoded output is bounded in time (burst, then a rate)",
         test_output_bounded_in_time},
        {"zstd refuses frames whose window exceeds 1 MiB",
         test_zstd_window_limit},
        {"decoded output is bounded by the input it came from",
         test_output_bounded_by_input},
        {"returns an error without leaking when allocation fails",
         test_survives_allocation_failure},
        {"content-encoding values map to one coding or opaque",
         test_content_encoding_values},
        {"accept-encoding keeps only the codings usage can decode",
         test_accept_encoding_filter},
        {"usage counts tokens of encoded streams and JSON bodies",
         test_usage_of_encoded_bodies},
        {"usage is unknown when the body cannot be decoded",
         test_usage_unknown_when_undecodable},
    };
    CU_pSuite s;
    size_t i;

    s = CU_add_suite("decode", NULL, NULL);
    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
