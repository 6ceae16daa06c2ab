/*
 * tests/fuzz/fuzz_sse.c
 *      libFuzzer target for core/sse.c.
 *
 * NOTES
 *      The first input byte picks max_data (0..255, so truncation and
 *      line overflow are hit often) and seeds the split points; the rest is
 *      the stream.  The stream is fed three ways (at once, in random pieces,
 *      byte by byte) and the event sequences must be identical, every event
 *      must respect max_data, and the buffer must stay within
 *      max_data + 80 bytes.  Pieces are exact-size heap copies so that any
 *      read past them is an ASan report.  Build and run with tools/fuzz.sh.
 */
#include "core/sse.h"
#include "tests/fuzz/harness.h"

typedef struct {
    fuzz_buf_t log;
    size_t max_data;
} fuzz_log_t;

static int
fuzz_event(void *ctx, const tg_sse_event_t *ev)
{
    fuzz_log_t *l = ctx;
    size_t hdr[3] = {ev->event.len, ev->data.len, ev->truncated};

    CHECK(ev->data.len <= l->max_data);
    CHECK(ev->event.len > 0 && ev->event.len < 64);
    CHECK(ev->event.data != NULL && ev->data.data != NULL);
    fuzz_buf_add(&l->log, hdr, sizeof(hdr));
    fuzz_buf_add(&l->log, ev->event.data, ev->event.len);
    fuzz_buf_add(&l->log, ev->data.data, ev->data.len);
    return TG_OK;
}


/* Feed <p> of <len> bytes in pieces of <step> bytes, or random sizes when
 * <step> is 0, logging events into <l>. */
static void
fuzz_feed(fuzz_log_t *l, const char *p, size_t len, size_t step)
{
    size_t off = 0;
    tg_sse_t s;

    tg_sse_init(&s, l->max_data);
    while (off < len) {
        size_t n = step ? step : 1 + fuzz_next() % 64;
        char *piece;

        n = (n > len - off) ? len - off : n;
        piece = malloc(n);
        CHECK(piece != NULL);
        memcpy(piece, p + off, n);
        CHECK(tg_sse_feed(&s, piece, n, fuzz_event, l) == TG_OK);
        free(piece);
        CHECK(s.cap <= l->max_data + 80 || s.cap <= 256);
        off += n;
    }
    tg_sse_fini(&s);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_log_t a = {0}, b = {0}, c = {0};
    const char *p;
    size_t len;

    if (size < 1) {
        return 0;
    }
    a.max_data = b.max_data = c.max_data = data[0];
    fuzz_rng = 0x85ebca6bu ^ (uint32_t)size ^ ((uint32_t)data[0] << 16);
    p = (const char *)data + 1;
    len = size - 1;
    fuzz_feed(&a, p, len, len ? len : 1);
    fuzz_feed(&b, p, len, 0);
    fuzz_feed(&c, p, len, 1);
    CHECK(fuzz_buf_same(&a.log, &b.log) && fuzz_buf_same(&a.log, &c.log));
    free(a.log.p);
    free(b.log.p);
    free(c.log.p);
    return 0;
}
