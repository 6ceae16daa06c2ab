/*
 * tools/mock-encode.h
 *      Response compression for tools/mock-upstream: gzip, deflate (zlib
 *      and raw), br and zstd, one-shot or as a stream flushed per event.
 *
 * NOTES
 *      Only the mock links this (with -lz -lbrotlienc -lzstd).  A stream
 *      encoder is flushed after every write, so each SSE event can be
 *      decoded as soon as it arrives, the way real servers stream
 *      compressed events.  "gzip-corrupt" is gzip whose first deflate
 *      byte is damaged, for tests of what a gateway does with a body it
 *      cannot decode.
 */
#ifndef TG_TOOLS_MOCK_ENCODE_H
#define TG_TOOLS_MOCK_ENCODE_H

#include "core/buf.h"
#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

enum {
    TG_MOCK_ENC_NONE = 0,
    TG_MOCK_ENC_GZIP,
    TG_MOCK_ENC_DEFLATE,     /* zlib format, as RFC 9110 defines deflate */
    TG_MOCK_ENC_DEFLATE_RAW, /* raw deflate labelled "deflate" */
    TG_MOCK_ENC_BR,
    TG_MOCK_ENC_ZSTD,
    TG_MOCK_ENC_GZIP_CORRUPT, /* gzip with a damaged first block */
    TG_MOCK_ENC_N
};

typedef struct tg_mock_enc_s tg_mock_enc_t;

/* The TG_MOCK_ENC_* named <name> ("gzip", "deflate-raw", ..., "none"), or
 * -1 when unknown. */
int tg_mock_enc_parse(tg_str_t name);

/* The content-encoding value sent for <enc> ("gzip", "deflate", ...); it
 * is also the coding the client's accept-encoding must list.  Static. */
const char *tg_mock_enc_coding(int enc);

/* A stream encoder for <enc> (not NONE); NULL when out of memory.  The
 * caller owns it and releases it with tg_mock_enc_destroy. */
tg_mock_enc_t *tg_mock_enc_create(int enc);

/*
 * Compress <len> bytes at <p> and flush, appending the output to <out>;
 * with <last>, end the stream instead (trailer, last block).  TG_OK, or
 * TG_ERROR when the library fails or <out> is over its bound.
 */
int tg_mock_enc_write(tg_mock_enc_t *e, const char *p, size_t len, bool last,
                      tg_buf_t *out);

/* Release <e>; NULL is a no-op. */
void tg_mock_enc_destroy(tg_mock_enc_t *e);

#endif /* TG_TOOLS_MOCK_ENCODE_H */
