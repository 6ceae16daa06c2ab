/*
 * worker/decode.c
 *      Content-coding decoders for usage accounting: gzip and deflate with
 *      zlib, br with libbrotlidec, zstd with libzstd.
 *
 * NOTES
 *      Each decoder turns compressed input into TG_DECODE_CHUNK-byte
 *      pieces in a scratch buffer on the stack and hands them on at once,
 *      so nothing decoded is kept between calls: what a decoder holds is
 *      its library's state and window.  zlib and brotli allocate through
 *      tg_decode_alloc, which prefixes every block with its size, counts
 *      the total and refuses to go past mem_max; a refused allocation
 *      surfaces as the library's out-of-memory error, reported here as the
 *      limit.  zstd is bounded by ZSTD_d_windowLogMax instead (its custom
 *      allocator is experimental API).
 *
 *      gzip and deflate share one path.  The first two bytes of the body
 *      choose the format: the gzip magic or a valid zlib header selects
 *      zlib's automatic detection (windowBits 15 + 32), anything else is
 *      taken as raw deflate (-15), which some servers send as "deflate".
 *      A gzip body may hold several members back to back (RFC 1952); after
 *      a member ends, the next two bytes are sniffed again and only another
 *      gzip member is decoded.  Bytes that follow the end of a compressed
 *      stream are ignored, in every coding.
 *
 *      Never logs; runs in workers on the response path and never blocks.
 */
#include "worker/decode.h"

#include <brotli/decode.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

enum {
    TG_DECODE_S_RUN = 0, /* taking input */
    TG_DECODE_S_DONE,    /* the compressed stream ended */
    TG_DECODE_S_FAILED   /* an error stopped decoding */
};

struct tg_decode_s {
    int coding; /* TG_DECODE_* */
    int state;  /* TG_DECODE_S_* */
    size_t mem; /* bytes held through tg_decode_alloc */
    size_t mem_peak;
    size_t mem_max;
    bool mem_refused;       /* an allocation hit mem_max */
    uint64_t in_total;      /* compressed bytes taken */
    uint64_t in_used;       /* of those, consumed by the library */
    uint64_t out_total;     /* decoded bytes handed on */
    uint64_t budget;        /* decoded bytes allowed before the next refill */
    uint64_t budget_ns;     /* monotonic time of the last refill */
    unsigned char head[2];  /* zlib: first bytes of a member */
    size_t nhead;           /* bytes in head; 2 once the format is known */
    bool zinit;             /* z is set up (inflateInit2 done) */
    bool gzip;              /* zlib: the current member is gzip */
    bool member_done;       /* zlib: a gzip member ended */
    bool frame_done;        /* zstd: the last call ended a frame */
    z_stream z;             /* gzip, deflate */
    BrotliDecoderState *br; /* br */
    ZSTD_DStream *zs;       /* zstd */
};

/* Size prefix of every counted block, aligned for any type. */
typedef union {
    max_align_t align;
    size_t size;
} tg_decode_hdr_t;

void *(*tg_decode_malloc)(size_t size) = malloc;


/* A counted block of <size> bytes for <d>; NULL past mem_max or when the
 * allocator fails. */
static void *
tg_decode_alloc(tg_decode_t *d, size_t size)
{
    tg_decode_hdr_t *h;
    size_t total;

    if (size > d->mem_max - d->mem) {
        d->mem_refused = true;
        return NULL;
    }
    if (!tg_size_add(size, sizeof(*h), &total)) {
        return NULL;
    }
    h = tg_decode_malloc(total);
    if (h == NULL) {
        return NULL;
    }
    h->size = size;
    d->mem += size;
    d->mem_peak = TG_MAX(d->mem_peak, d->mem);
    return h + 1;
}


static void
tg_decode_free(tg_decode_t *d, void *p)
{
    tg_decode_hdr_t *h;

    if (p == NULL) {
        return;
    }
    h = (tg_decode_hdr_t *)p - 1;
    d->mem -= h->size;
    free(h);
}


static voidpf
tg_decode_zalloc_cb(voidpf opaque, uInt items, uInt size)
{
    size_t n;

    if (!tg_size_mul(items, size, &n)) {
        return NULL;
    }
    return tg_decode_alloc(opaque, n);
}


static void
tg_decode_zfree_cb(voidpf opaque, voidpf p)
{
    tg_decode_free(opaque, p);
}


static void *
tg_decode_br_alloc_cb(void *opaque, size_t size)
{
    return tg_decode_alloc(opaque, size);
}


static void
tg_decode_br_free_cb(void *opaque, void *p)
{
    tg_decode_free(opaque, p);
}


/* ASCII lower-case comparison of <s> with the lower-case literal <lit>. */
static bool
tg_decode_is(tg_str_t s, const char *lit)
{
    return tg_str_caseeq(s, (tg_str_t){lit, strlen(lit)});
}


static bool
tg_decode_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}


/* <s> without leading and trailing spaces and tabs. */
static tg_str_t
tg_decode_trim(tg_str_t s)
{
    while (s.len > 0 && tg_decode_ows(s.data[0])) {
        s.data++;
        s.len--;
    }
    while (s.len > 0 && tg_decode_ows(s.data[s.len - 1])) {
        s.len--;
    }
    return s;
}


/* Split the next <sep>-separated item off <*list> (trimmed; may be
 * empty).  False when the list is used up. */
static bool
tg_decode_split(tg_str_t *list, char sep, tg_str_t *item)
{
    const char *end;
    size_t n;

    if (list->data == NULL) {
        return false;
    }
    end = memchr(list->data, sep, list->len);
    if (end == NULL) {
        *item = tg_decode_trim(*list);
        *list = tg_str_null;
        return true;
    }
    n = (size_t)(end - list->data);
    *item = tg_decode_trim((tg_str_t){list->data, n});
    list->data = end + 1;
    list->len -= n + 1;
    return true;
}


/* The TG_DECODE_* of one coding name (no parameters). */
static int
tg_decode_lookup(tg_str_t name)
{
    if (tg_decode_is(name, "gzip") || tg_decode_is(name, "x-gzip")) {
        return TG_DECODE_GZIP;
    }
    if (tg_decode_is(name, "deflate")) {
        return TG_DECODE_DEFLATE;
    }
    if (tg_decode_is(name, "br")) {
        return TG_DECODE_BR;
    }
    if (tg_decode_is(name, "zstd")) {
        return TG_DECODE_ZSTD;
    }
    if (tg_decode_is(name, "identity")) {
        return TG_DECODE_IDENTITY;
    }
    return TG_DECODE_OPAQUE;
}


/* See decode.h. */
int
tg_decode_coding(int have, tg_str_t value)
{
    tg_str_t item;
    int coding;

    while (tg_decode_split(&value, ',', &item)) {
        if (item.len == 0) {
            continue;
        }
        coding = tg_decode_lookup(item);
        if (coding == TG_DECODE_IDENTITY) {
            continue;
        }
        /* A second coding means the body was encoded twice; we decode
         * one layer only. */
        have = (have == TG_DECODE_IDENTITY) ? coding : TG_DECODE_OPAQUE;
    }
    return have;
}


/* See decode.h. */
const char *
tg_decode_name(int coding)
{
    static const char *const names[] = {"identity", "gzip", "deflate",
                                        "br",       "zstd", "other"};

    if (coding < 0 || (size_t)coding >= TG_NELEMS(names)) {
        return "other";
    }
    return names[coding];
}


/* Whether the parameters <params> ("q=0.5;..." after the coding's ';')
 * carry a q-value of zero. */
static bool
tg_decode_q_zero(tg_str_t params)
{
    tg_str_t p, v;
    const char *eq;
    size_t i, k;

    while (tg_decode_split(&params, ';', &p)) {
        eq = memchr(p.data, '=', p.len);
        if (eq == NULL) {
            continue;
        }
        k = (size_t)(eq - p.data);
        if (!tg_decode_is(tg_decode_trim((tg_str_t){p.data, k}), "q")) {
            continue;
        }
        v = tg_decode_trim((tg_str_t){eq + 1, p.len - k - 1});
        if (v.len == 0 || v.data[0] != '0') {
            return false;
        }
        for (i = 1; i < v.len; i++) {
            if (v.data[i] != '.' && v.data[i] != '0') {
                return false;
            }
        }
        return true;
    }
    return false;
}


/* See decode.h. */
size_t
tg_decode_accept(char *dst, size_t cap, tg_str_t value)
{
    tg_str_t item, name, params;
    size_t n = 0;
    bool usable = false, zero;
    int coding;

    while (tg_decode_split(&value, ',', &item)) {
        if (item.len == 0) {
            continue;
        }
        params = item;
        tg_decode_split(&params, ';', &name);
        zero = tg_decode_q_zero(params);
        coding = tg_decode_lookup(name);
        /* Only gzip and deflate are offered upstream: their decoders need
         * about 45 KB, while br and zstd announce windows of 2 to 8 MiB
         * that a response's accounting would have to hold.  "*" would let
         * the upstream pick one of those, so it is not passed on either.
         * The decoders for br and zstd stay, for upstreams that compress
         * whatever they were offered. */
        if (tg_decode_is(name, "*") || coding == TG_DECODE_OPAQUE ||
            coding == TG_DECODE_BR || coding == TG_DECODE_ZSTD) {
            continue;
        }
        if (n + (n ? 2 : 0) + item.len > cap) {
            return 0;
        }
        if (n > 0) {
            memcpy(dst + n, ", ", 2);
            n += 2;
        }
        memcpy(dst + n, item.data, item.len);
        n += item.len;
        usable = usable || (!zero && coding != TG_DECODE_OPAQUE);
    }
    return usable ? n : 0;
}


/* ------------------------------------------------------------ output */

/* Refill the time budget of <d> for the time since the last refill, up to
 * TG_DECODE_BURST. */
static void
tg_decode_refill(tg_decode_t *d)
{
    struct timespec ts;
    uint64_t now, add;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (d->budget_ns == 0) {
        d->budget = TG_DECODE_BURST;
    } else if (now > d->budget_ns) {
        add = (now - d->budget_ns) / 1000 * TG_DECODE_RATE / 1000000;
        d->budget = TG_MIN(d->budget + add, (uint64_t)TG_DECODE_BURST);
    }
    d->budget_ns = now;
}


/*
 * Hand <n> decoded bytes at <buf> on, unless the output has grown out of
 * proportion to the input the library has consumed so far, or faster than
 * the time budget allows.  Checked per TG_DECODE_CHUNK, so a bomb stops
 * within a chunk of the limit.  TG_OK or TG_ERROR.
 */
static int
tg_decode_emit(tg_decode_t *d, const unsigned char *buf, size_t n,
               tg_decode_out_pt out, void *ctx, tg_err_t *err)
{
    if (n == 0) {
        return TG_OK;
    }
    d->out_total += n;
    if (d->out_total > TG_DECODE_RATIO_SLACK &&
        d->out_total - TG_DECODE_RATIO_SLACK >
            d->in_used * TG_DECODE_RATIO_MAX) {
        tg_err_set(err, 0, 0,
                   "%s output out of proportion to input (%llu bytes from "
                   "%llu)",
                   tg_decode_name(d->coding), (unsigned long long)d->out_total,
                   (unsigned long long)d->in_used);
        return TG_ERROR;
    }
    if (n > d->budget) {
        tg_err_set(err, 0, 0,
                   "%s output faster than %d MiB/s past a burst of %d MiB "
                   "(%llu bytes decoded)",
                   tg_decode_name(d->coding), TG_DECODE_RATE >> 20,
                   TG_DECODE_BURST >> 20, (unsigned long long)d->out_total);
        return TG_ERROR;
    }
    d->budget -= n;
    out(ctx, (const char *)buf, n);
    return TG_OK;
}


/* ------------------------------------------------------ gzip, deflate */

/* The first two bytes of a member are in d->head: pick the format and set
 * zlib up.  TG_OK, TG_DONE (trailing bytes after a gzip body) or
 * TG_ERROR. */
static int
tg_decode_zlib_start(tg_decode_t *d, tg_err_t *err)
{
    const unsigned char *h = d->head;
    bool gz = h[0] == 0x1f && h[1] == 0x8b;
    bool zl = (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 &&
              ((h[0] << 8) | h[1]) % 31 == 0;
    int rc;

    if (d->member_done) {
        if (!gz) {
            d->gzip = false;
            return TG_DONE;
        }
        rc = inflateReset(&d->z);
    } else {
        d->z.zalloc = tg_decode_zalloc_cb;
        d->z.zfree = tg_decode_zfree_cb;
        d->z.opaque = d;
        rc = inflateInit2(&d->z, (gz || zl) ? 15 + 32 : -15);
        d->zinit = rc == Z_OK;
    }
    if (rc != Z_OK) {
        tg_err_set(err, 0, 0, "inflateInit2 failed (%d: %s)", rc,
                   d->mem_refused ? "memory limit" : zError(rc));
        return TG_ERROR;
    }
    d->gzip = gz;
    return TG_OK;
}


/* Inflate <len> bytes at <p>; <*used> gets the bytes taken.  TG_OK (all
 * taken), TG_DONE (the member or stream ended after <*used>) or
 * TG_ERROR. */
static int
tg_decode_inflate(tg_decode_t *d, const unsigned char *p, size_t len,
                  size_t *used, tg_decode_out_pt out, void *ctx, tg_err_t *err)
{
    unsigned char buf[TG_DECODE_CHUNK];
    z_stream *z = &d->z;
    uInt before;
    size_t n;
    int zrc;

    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)TG_MIN(len, (size_t)UINT_MAX);
    for (;;) {
        before = z->avail_in;
        z->next_out = buf;
        z->avail_out = sizeof(buf);
        zrc = inflate(z, Z_NO_FLUSH);
        d->in_used += before - z->avail_in;
        n = sizeof(buf) - z->avail_out;
        if (tg_decode_emit(d, buf, n, out, ctx, err) != TG_OK) {
            return TG_ERROR;
        }
        if (zrc == Z_STREAM_END) {
            break;
        }
        if ((zrc != Z_OK && zrc != Z_BUF_ERROR) ||
            (n == 0 && z->avail_in == before && before > 0)) {
            tg_err_set(err, 0, 0, "inflate failed (%d: %s)", zrc,
                       d->mem_refused ? "memory limit"
                       : z->msg       ? z->msg
                                      : zError(zrc));
            return TG_ERROR;
        }
        if (z->avail_in == 0 && z->avail_out != 0) {
            break;
        }
    }
    *used = (size_t)(z->next_in - p);
    return zrc == Z_STREAM_END ? TG_DONE : TG_OK;
}


static int
tg_decode_zlib_feed(tg_decode_t *d, const unsigned char *p, size_t len,
                    tg_decode_out_pt out, void *ctx, tg_err_t *err)
{
    size_t used = 0;
    int rc;

    while (len > 0) {
        if (d->nhead < 2) {
            d->head[d->nhead++] = *p++;
            len--;
            if (d->nhead < 2) {
                continue;
            }
            rc = tg_decode_zlib_start(d, err);
            if (rc == TG_OK) {
                rc = tg_decode_inflate(d, d->head, 2, &used, out, ctx, err);
            }
        } else {
            rc = tg_decode_inflate(d, p, len, &used, out, ctx, err);
            p += used;
            len -= used;
        }
        if (rc == TG_DONE && d->gzip) {
            /* Another gzip member may follow. */
            d->member_done = true;
            d->nhead = 0;
            continue;
        }
        if (rc != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}


/* ---------------------------------------------------------------- br */

static int
tg_decode_br_feed(tg_decode_t *d, const unsigned char *p, size_t len,
                  tg_decode_out_pt out, void *ctx, tg_err_t *err)
{
    unsigned char buf[TG_DECODE_CHUNK], *next_out;
    const uint8_t *next_in = p;
    size_t avail_in = len, avail_out, before;
    BrotliDecoderResult r;
    BrotliDecoderErrorCode code;

    for (;;) {
        next_out = buf;
        avail_out = sizeof(buf);
        before = avail_in;
        r = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in,
                                          &avail_out, &next_out, NULL);
        d->in_used += before - avail_in;
        if (tg_decode_emit(d, buf, sizeof(buf) - avail_out, out, ctx, err) !=
            TG_OK) {
            return TG_ERROR;
        }
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            return TG_DONE;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
            return TG_OK;
        }
        if (r != BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
            break;
        }
    }
    code = BrotliDecoderGetErrorCode(d->br);
    if (d->mem_refused) {
        tg_err_set(err, 0, 0,
                   "brotli decoder needs more than %zu bytes (window too "
                   "large)",
                   d->mem_max);
    } else {
        tg_err_set(err, 0, 0, "BrotliDecoderDecompressStream failed (%d: %s)",
                   (int)code, BrotliDecoderErrorString(code));
    }
    return TG_ERROR;
}


/* -------------------------------------------------------------- zstd */

static int
tg_decode_zstd_feed(tg_decode_t *d, const unsigned char *p, size_t len,
                    tg_decode_out_pt out, void *ctx, tg_err_t *err)
{
    unsigned char buf[TG_DECODE_CHUNK];
    ZSTD_inBuffer in = {p, len, 0};
    ZSTD_outBuffer o;
    size_t r, before;

    for (;;) {
        o = (ZSTD_outBuffer){buf, sizeof(buf), 0};
        before = in.pos;
        r = ZSTD_decompressStream(d->zs, &o, &in);
        d->in_used += in.pos - before;
        if (ZSTD_isError(r)) {
            if (d->frame_done) {
                /* Not another frame after a complete one: trailing
                 * bytes, ignored. */
                return TG_DONE;
            }
            if (ZSTD_getErrorCode(r) ==
                ZSTD_error_frameParameter_windowTooLarge) {
                tg_err_set(err, 0, 0,
                           "zstd frame window larger than %u bytes "
                           "(ZSTD_d_windowLogMax %d)",
                           1u << TG_DECODE_WINDOW_LOG_MAX,
                           TG_DECODE_WINDOW_LOG_MAX);
            } else {
                tg_err_set(err, 0, 0, "ZSTD_decompressStream failed (%s)",
                           ZSTD_getErrorName(r));
            }
            return TG_ERROR;
        }
        if (tg_decode_emit(d, buf, o.pos, out, ctx, err) != TG_OK) {
            return TG_ERROR;
        }
        if (o.pos > 0 || in.pos > before) {
            d->frame_done = r == 0;
        }
        if (in.pos == in.size && o.pos < o.size) {
            return TG_OK;
        }
        if (o.pos == 0 && in.pos == before) {
            tg_err_set(err, 0, 0, "ZSTD_decompressStream made no progress");
            return TG_ERROR;
        }
    }
}


/* ------------------------------------------------------------ public */

/* See decode.h. */
tg_decode_t *
tg_decode_create(int coding, size_t mem_max, tg_err_t *err)
{
    tg_decode_t *d;
    size_t r;

    if (coding <= TG_DECODE_IDENTITY || coding >= TG_DECODE_OPAQUE) {
        tg_err_set(err, 0, 0, "content coding %s is not decoded",
                   tg_decode_name(coding));
        return NULL;
    }
    d = tg_decode_malloc(sizeof(*d));
    if (d == NULL) {
        tg_err_set(err, 0, 0, "out of memory for a %s decoder",
                   tg_decode_name(coding));
        return NULL;
    }
    memset(d, 0, sizeof(*d));
    d->coding = coding;
    d->mem_max = mem_max;
    if (coding == TG_DECODE_BR) {
        d->br = BrotliDecoderCreateInstance(tg_decode_br_alloc_cb,
                                            tg_decode_br_free_cb, d);
        if (d->br == NULL) {
            tg_err_set(err, 0, 0, "BrotliDecoderCreateInstance failed");
            goto failed;
        }
    } else if (coding == TG_DECODE_ZSTD) {
        d->zs = ZSTD_createDStream();
        if (d->zs == NULL) {
            tg_err_set(err, 0, 0, "ZSTD_createDStream failed");
            goto failed;
        }
        r = ZSTD_DCtx_setParameter(d->zs, ZSTD_d_windowLogMax,
                                   TG_DECODE_WINDOW_LOG_MAX);
        if (ZSTD_isError(r)) {
            tg_err_set(err, 0, 0, "ZSTD_DCtx_setParameter failed (%s)",
                       ZSTD_getErrorName(r));
            goto failed;
        }
    }
    return d;

failed:
    tg_decode_destroy(d);
    return NULL;
}


/* See decode.h. */
int
tg_decode_feed(tg_decode_t *d, const char *p, size_t len, tg_decode_out_pt out,
               void *ctx, tg_err_t *err)
{
    const unsigned char *u = (const unsigned char *)p;
    int rc;

    if (d->state == TG_DECODE_S_DONE) {
        return TG_DONE;
    }
    if (d->state == TG_DECODE_S_FAILED) {
        tg_err_set(err, 0, 0, "%s decoder stopped by an earlier error",
                   tg_decode_name(d->coding));
        return TG_ERROR;
    }
    if (len == 0) {
        return TG_OK;
    }
    d->in_total += len;
    tg_decode_refill(d);
    if (d->coding == TG_DECODE_BR) {
        rc = tg_decode_br_feed(d, u, len, out, ctx, err);
    } else if (d->coding == TG_DECODE_ZSTD) {
        rc = tg_decode_zstd_feed(d, u, len, out, ctx, err);
    } else {
        rc = tg_decode_zlib_feed(d, u, len, out, ctx, err);
    }
    if (rc == TG_DONE) {
        d->state = TG_DECODE_S_DONE;
    } else if (rc != TG_OK) {
        d->state = TG_DECODE_S_FAILED;
    }
    return rc;
}


/* See decode.h. */
size_t
tg_decode_mem(const tg_decode_t *d, size_t *peak)
{
    if (peak != NULL) {
        *peak = d->mem_peak;
    }
    return d->mem;
}


/* See decode.h. */
void
tg_decode_destroy(tg_decode_t *d)
{
    if (d == NULL) {
        return;
    }
    if (d->zinit) {
        inflateEnd(&d->z);
    }
    if (d->br != NULL) {
        BrotliDecoderDestroyInstance(d->br);
    }
    ZSTD_freeDStream(d->zs);
    free(d);
}
