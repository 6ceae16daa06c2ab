/*
 * tests/fuzz/fuzz_usage_resp.c
 *      libFuzzer target for worker/usage_resp.c: the Responses API stream
 *      scanner and the usage it gives through worker/usage.c.
 *
 * NOTES
 *      The first input byte picks the framing (bit 0: SSE, else a JSON
 *      body) and seeds the split points; the rest is the body.  The scanner
 *      alone is fed three ways (at once, in random pieces, byte by byte)
 *      and the event sequences must be identical, each name and captured
 *      value within its bound.  The whole observer (tg_usage_feed) is fed
 *      the same three ways and its counters and flags must agree; cache
 *      reads never exceed what input_tokens said, so input stays sane.
 *      Pieces are exact-size heap copies so that any read past them is an
 *      ASan report.  Build and run with tools/fuzz.sh.
 */
#include "tests/fuzz/harness.h"
#include "worker/usage.h"
#include "worker/usage_resp.h"


static void
fuzz_event(void *ctx, const tg_usage_resp_event_t *ev)
{
    fuzz_buf_t *l = ctx;
    size_t hdr[4] = {ev->name_len, ev->usage ? ev->usage_len : SIZE_MAX,
                     ev->model ? ev->model_len : SIZE_MAX, 0};

    CHECK(ev->name != NULL && ev->name_len <= TG_USAGE_RESP_NAME_MAX);
    CHECK(ev->usage == NULL || ev->usage_len <= TG_USAGE_RESP_USAGE_MAX);
    CHECK(ev->model == NULL || ev->model_len <= TG_USAGE_RESP_MODEL_MAX);
    fuzz_buf_add(l, hdr, sizeof(hdr));
    fuzz_buf_add(l, ev->name, ev->name_len);
    if (ev->usage != NULL) {
        fuzz_buf_add(l, ev->usage, ev->usage_len);
    }
    if (ev->model != NULL) {
        fuzz_buf_add(l, ev->model, ev->model_len);
    }
}


/* Feed <p> of <len> bytes in pieces of <step> bytes (random sizes when
 * <step> is 0) to the scanner, logging into <l>, and to observer <u>. */
static void
fuzz_feed(fuzz_buf_t *l, tg_usage_t *u, bool sse, const char *p, size_t len,
          size_t step)
{
    tg_usage_resp_t *s = malloc(sizeof(*s));
    size_t off = 0;

    CHECK(s != NULL);
    tg_usage_resp_init(s);
    tg_usage_init_responses(u, sse, TG_DECODE_IDENTITY, 1);
    while (off < len) {
        size_t n = step ? step : 1 + fuzz_next() % 64;
        char *piece;

        n = (n > len - off) ? len - off : n;
        piece = malloc(n);
        CHECK(piece != NULL);
        memcpy(piece, p + off, n);
        tg_usage_resp_feed(s, piece, n, fuzz_event, l);
        tg_usage_feed(u, piece, n);
        free(piece);
        off += n;
    }
    tg_usage_finish(u);
    free(s);
}


/* Whether observers <a> and <b> came to the same result. */
static bool
fuzz_same(const tg_usage_t *a, const tg_usage_t *b)
{
    return memcmp(a->tokens, b->tokens, sizeof(a->tokens)) == 0 &&
           a->seen == b->seen && a->final == b->final && a->ended == b->ended &&
           a->error_event == b->error_event && strcmp(a->model, b->model) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_buf_t a = {0}, b = {0}, c = {0};
    static tg_usage_t ua, ub, uc;
    const char *p;
    size_t len;
    bool sse;

    if (size < 1) {
        return 0;
    }
    sse = (data[0] & 1) != 0;
    fuzz_rng = 0x85ebca6bu ^ (uint32_t)size ^ ((uint32_t)data[0] << 16);
    p = (const char *)data + 1;
    len = size - 1;
    fuzz_feed(&a, &ua, sse, p, len, len ? len : 1);
    fuzz_feed(&b, &ub, sse, p, len, 0);
    fuzz_feed(&c, &uc, sse, p, len, 1);
    CHECK(fuzz_buf_same(&a, &b) && fuzz_buf_same(&a, &c));
    CHECK(fuzz_same(&ua, &ub) && fuzz_same(&ua, &uc));
    CHECK(ua.tokens[TG_TOK_CACHE_5M] == 0 && ua.tokens[TG_TOK_CACHE_1H] == 0);
    CHECK(!ua.final || ua.seen);
    tg_usage_fini(&ua);
    tg_usage_fini(&ub);
    tg_usage_fini(&uc);
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
