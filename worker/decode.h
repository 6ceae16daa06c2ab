/*
 * worker/decode.h
 *      Content-coding decoders (gzip, deflate, br, zstd) that read a copy
 *      of a compressed response body for usage accounting.
 *
 * NOTES
 *      The client always gets the upstream's bytes untouched; a decoder
 *      only sees them on the way past and hands the decoded bytes to the
 *      usage parsers in pieces of at most TG_DECODE_CHUNK bytes, produced
 *      in a fixed scratch buffer on the stack.  Memory is bounded per
 *      response: zlib and brotli allocate through a counting allocator that
 *      fails past <mem_max> (zlib needs about 45 KB for its 32 KB window),
 *      and zstd refuses frames whose window exceeds
 *      2^TG_DECODE_WINDOW_LOG_MAX bytes.  Decoded output is also bounded
 *      against input (TG_DECODE_RATIO_MAX) and against time
 *      (TG_DECODE_BURST, TG_DECODE_RATE), so a small malicious body
 *      cannot keep a worker busy decoding: other requests on the worker
 *      wait at most a few milliseconds for one response's decoding.
 *      Library-like: never logs, fills a caller-owned tg_err_t.  Worker
 *      only; never blocks.
 */
#ifndef TG_WORKER_DECODE_H
#define TG_WORKER_DECODE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Content codings of a response body (tg_decode_coding). */
enum {
    TG_DECODE_IDENTITY = 0, /* not encoded */
    TG_DECODE_GZIP,         /* gzip, x-gzip */
    TG_DECODE_DEFLATE,      /* deflate: zlib format, or raw deflate */
    TG_DECODE_BR,           /* brotli */
    TG_DECODE_ZSTD,         /* zstandard */
    TG_DECODE_OPAQUE        /* anything else, or several codings stacked */
};

#define TG_DECODE_CHUNK          4096 /* largest piece handed to the output */
#define TG_DECODE_WINDOW_LOG_MAX 20   /* zstd: largest window, 1 MiB */
/* Brotli grows its ring buffer up to the window by doubling and holds the
 * old and the new one while it copies, so a 1 MiB window peaks at 1.5 MiB;
 * the rest is room for its Huffman tables and state. */
#define TG_DECODE_MEM_MAX ((size_t)(1536 + 256) * 1024)
/*
 * Past the first TG_DECODE_RATIO_SLACK decoded bytes, at most
 * TG_DECODE_RATIO_MAX decoded bytes per compressed byte the library has
 * consumed so far, checked every TG_DECODE_CHUNK of output.  API
 * responses are text: gzip gets 3-10x from them and an event stream
 * flushed per event far less, so 128 never stops a real response, while a
 * compression bomb (deflate reaches 1032x, brotli and zstd far more) is
 * stopped within a few KB of the first megabyte, about a millisecond of
 * work.
 */
#define TG_DECODE_RATIO_MAX   128
#define TG_DECODE_RATIO_SLACK ((uint64_t)1 << 20)
/*
 * Work in time: a response may decode TG_DECODE_BURST bytes at once and
 * then TG_DECODE_RATE bytes a second (a token bucket, refilled on each
 * call).  The ratio alone lets a body just under 128x turn one event-loop
 * turn's input (libcurl reads up to 100 buffers of upstream.buffer bytes
 * per socket event) into 200 MB of output; the bucket bounds one
 * response's decoding to a few milliseconds per turn, while a real API
 * response (a few MB at most, produced far slower) never reaches it.
 */
#define TG_DECODE_BURST (4 << 20)   /* bytes */
#define TG_DECODE_RATE  (256 << 20) /* bytes per second */

typedef struct tg_decode_s tg_decode_t;

/* Receives <len> (1..TG_DECODE_CHUNK) decoded bytes at <p>, valid only for
 * the call. */
typedef void (*tg_decode_out_pt)(void *ctx, const char *p, size_t len);

/* Allocator for decoder state, released with free(); tests point it at a
 * failing allocator. */
extern void *(*tg_decode_malloc)(size_t size);

/*
 * Fold one content-encoding header value <value> into <have> (a
 * TG_DECODE_* value, TG_DECODE_IDENTITY before the first header) and
 * return the coding of the body.  "identity" items are ignored; one coding
 * we decode gives that coding; anything else, including two codings
 * stacked (in one value or over several headers), gives TG_DECODE_OPAQUE.
 */
int tg_decode_coding(int have, tg_str_t value);

/* Lower-case name of <coding> ("gzip", ...), static. */
const char *tg_decode_name(int coding);

/*
 * Rewrite an accept-encoding header <value> to keep only the codings a
 * decoder here can read (gzip, x-gzip, deflate, br, zstd, identity, and
 * "*" with q=0, which only forbids), each with its parameters as the
 * client wrote them, joined by ", ", into <dst> of <cap> bytes (not
 * NUL-terminated).  Returns the length written, or 0 when no coding with
 * a q-value above zero is left (or the result does not fit): the caller
 * then asks for identity.
 */
size_t tg_decode_accept(char *dst, size_t cap, tg_str_t value);

/*
 * Create a decoder for <coding> (gzip, deflate, br or zstd) whose zlib or
 * brotli allocations may total at most <mem_max> bytes.  Allocates only
 * the decoder itself (and zstd's context); the window comes with the
 * first input.  The caller owns it and
 * releases it with tg_decode_destroy.  Returns NULL with <err> filled
 * when the coding is not one we decode or memory is short.
 */
tg_decode_t *tg_decode_create(int coding, size_t mem_max, tg_err_t *err);

/*
 * Decode the next <len> bytes at <p> of the body, calling <out>(<ctx>, ...)
 * for each decoded piece.  Returns TG_OK (all input taken, more may come),
 * TG_DONE (the compressed stream is complete; later input is ignored) or
 * TG_ERROR with <err> filled (corrupt input, a window or memory limit,
 * output out of proportion to input or faster than the time budget), after
 * which every call returns TG_ERROR again.  Never blocks.
 */
int tg_decode_feed(tg_decode_t *d, const char *p, size_t len,
                   tg_decode_out_pt out, void *ctx, tg_err_t *err);

/* Bytes the counting allocator of <d> holds now, and in <peak> (may be
 * NULL) the most it held; for tests. */
size_t tg_decode_mem(const tg_decode_t *d, size_t *peak);

/* Release <d> and everything it holds; NULL is a no-op. */
void tg_decode_destroy(tg_decode_t *d);

#endif /* TG_WORKER_DECODE_H */
