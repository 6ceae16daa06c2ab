/*
 * tools/mock-encode.c
 *      Response compression for tools/mock-upstream.
 *
 * NOTES
 *      One encoder per response.  zlib runs at level 6 with Z_SYNC_FLUSH
 *      after each write; brotli at quality 5 with its default 4 MiB window
 *      (BROTLI_OPERATION_FLUSH); zstd at level 3 with ZSTD_e_flush.  The
 *      zstd window is set to 1 MiB: at level 3 a frame of unknown size
 *      would announce 2 MiB, which tollgate refuses to hold for usage
 *      accounting (docs/operations.md).  Test tool: allocation failures
 *      only fail the response.
 */
#include "tools/mock-encode.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define TG_MOCK_ENC_CORRUPT_AT 10 /* first byte after the gzip header */

struct tg_mock_enc_s {
    int enc;
    bool zinit;
    z_stream z;
    BrotliEncoderState *br;
    ZSTD_CCtx *zs;
    size_t produced; /* compressed bytes written so far */
};

static const char *const tg_mock_enc_names[TG_MOCK_ENC_N] = {
    "none", "gzip", "deflate", "deflate-raw", "br", "zstd", "gzip-corrupt"};

static const char *const tg_mock_enc_codings[TG_MOCK_ENC_N] = {
    "identity", "gzip", "deflate", "deflate", "br", "zstd", "gzip"};


/* See mock-encode.h. */
int
tg_mock_enc_parse(tg_str_t name)
{
    int i;

    for (i = 0; i < TG_MOCK_ENC_N; i++) {
        if (tg_str_caseeq(name, (tg_str_t){tg_mock_enc_names[i],
                                           strlen(tg_mock_enc_names[i])})) {
            return i;
        }
    }
    return -1;
}


/* See mock-encode.h. */
const char *
tg_mock_enc_coding(int enc)
{
    return (enc > 0 && enc < TG_MOCK_ENC_N) ? tg_mock_enc_codings[enc]
                                            : "identity";
}


/* See mock-encode.h. */
tg_mock_enc_t *
tg_mock_enc_create(int enc)
{
    tg_mock_enc_t *e = calloc(1, sizeof(*e));
    int wbits;

    if (e == NULL) {
        return NULL;
    }
    e->enc = enc;
    switch (enc) {
    case TG_MOCK_ENC_BR:
        e->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (e->br == NULL ||
            !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY, 5)) {
            goto failed;
        }
        break;
    case TG_MOCK_ENC_ZSTD:
        e->zs = ZSTD_createCCtx();
        if (e->zs == NULL ||
            ZSTD_isError(
                ZSTD_CCtx_setParameter(e->zs, ZSTD_c_compressionLevel, 3)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->zs, ZSTD_c_windowLog, 20))) {
            goto failed;
        }
        break;
    case TG_MOCK_ENC_GZIP:
    case TG_MOCK_ENC_GZIP_CORRUPT:
    case TG_MOCK_ENC_DEFLATE:
    case TG_MOCK_ENC_DEFLATE_RAW:
        wbits = enc == TG_MOCK_ENC_DEFLATE       ? 15
                : enc == TG_MOCK_ENC_DEFLATE_RAW ? -15
                                                 : 15 + 16;
        if (deflateInit2(&e->z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            goto failed;
        }
        e->zinit = true;
        break;
    default:
        goto failed;
    }
    return e;

failed:
    tg_mock_enc_destroy(e);
    return NULL;
}


/* Append <n> bytes of <buf> to <out>, damaging the gzip-corrupt byte when
 * it goes by. */
static int
tg_mock_enc_out(tg_mock_enc_t *e, const unsigned char *buf, size_t n,
                tg_buf_t *out)
{
    size_t at = out->last;

    if (n == 0) {
        return TG_OK;
    }
    if (tg_buf_append(out, buf, n) != TG_OK) {
        return TG_ERROR;
    }
    if (e->enc == TG_MOCK_ENC_GZIP_CORRUPT &&
        e->produced <= TG_MOCK_ENC_CORRUPT_AT &&
        e->produced + n > TG_MOCK_ENC_CORRUPT_AT) {
        /* BFINAL 1, BTYPE 11: a reserved block type. */
        out->data[at + TG_MOCK_ENC_CORRUPT_AT - e->produced] = (char)0xff;
    }
    e->produced += n;
    return TG_OK;
}


/* See mock-encode.h. */
int
tg_mock_enc_write(tg_mock_enc_t *e, const char *p, size_t len, bool last,
                  tg_buf_t *out)
{
    unsigned char buf[16384], *next_out;
    const uint8_t *next_in = (const uint8_t *)p;
    size_t avail_in = len, avail_out, r;
    ZSTD_inBuffer in = {p, len, 0};
    ZSTD_outBuffer o;
    int rc;

    if (e->zs != NULL) {
        do {
            o = (ZSTD_outBuffer){buf, sizeof(buf), 0};
            r = ZSTD_compressStream2(e->zs, &o, &in,
                                     last ? ZSTD_e_end : ZSTD_e_flush);
            if (ZSTD_isError(r) ||
                tg_mock_enc_out(e, buf, o.pos, out) != TG_OK) {
                return TG_ERROR;
            }
        } while (r != 0);
        return TG_OK;
    }
    if (e->br != NULL) {
        do {
            next_out = buf;
            avail_out = sizeof(buf);
            if (!BrotliEncoderCompressStream(
                    e->br,
                    last ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH,
                    &avail_in, &next_in, &avail_out, &next_out, NULL) ||
                tg_mock_enc_out(e, buf, sizeof(buf) - avail_out, out) !=
                    TG_OK) {
                return TG_ERROR;
            }
        } while (avail_in > 0 || BrotliEncoderHasMoreOutput(e->br) ||
                 (last && !BrotliEncoderIsFinished(e->br)));
        return TG_OK;
    }
    e->z.next_in = (Bytef *)p;
    e->z.avail_in = (uInt)len;
    do {
        e->z.next_out = buf;
        e->z.avail_out = sizeof(buf);
        rc = deflate(&e->z, last ? Z_FINISH : Z_SYNC_FLUSH);
        if (rc == Z_STREAM_ERROR ||
            tg_mock_enc_out(e, buf, sizeof(buf) - e->z.avail_out, out) !=
                TG_OK) {
            return TG_ERROR;
        }
    } while (e->z.avail_out == 0 || (last && rc != Z_STREAM_END));
    return TG_OK;
}


/* See mock-encode.h. */
void
tg_mock_enc_destroy(tg_mock_enc_t *e)
{
    if (e == NULL) {
        return;
    }
    if (e->zinit) {
        deflateEnd(&e->z);
    }
    if (e->br != NULL) {
        BrotliEncoderDestroyInstance(e->br);
    }
    ZSTD_freeCCtx(e->zs);
    free(e);
}
