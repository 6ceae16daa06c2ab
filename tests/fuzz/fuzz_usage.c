/*
 * tests/fuzz/fuzz_usage.c
 *      libFuzzer target for worker/usage.c: the usage extractors of JSON
 *      bodies and event streams (both API shapes, every content coding),
 *      the strip of the usage-only chunk, and the request rewrite that
 *      asks for stream usage.
 *
 * NOTES
 *      The first input byte picks the API shape, the framing and the
 *      content coding, the second seeds the split points; the rest is the
 *      response body (or, for the rewrite, the request body).  Besides
 *      crashes (ASan, UBSan) it checks:
 *        - the body fed in random pieces gives the same counters, model
 *          and flags as when fed at once (the decoders' budgets are far
 *          above what an input of a few KB can decode);
 *        - an Anthropic output count comes only with the final usage
 *          (message_start's placeholder is never counted);
 *        - the strip passes the same bytes whatever the pieces, and never
 *          more than it was given;
 *        - a request that is a JSON object is rewritten into one whose
 *          stream_options asks for usage.
 *      Build and run with tools/fuzz.sh.
 */
#include "core/log.h"
#include "tests/fuzz/harness.h"
#include "worker/usage.h"

#include <jansson.h>


/* Feed <body> to a fresh <u> in pieces (<split>) or at once. */
static void
fuzz_observe(tg_usage_t *u, int flags, const char *body, size_t len, bool split)
{
    size_t at = 0, n;
    char *piece;

    tg_usage_init(u, flags & 1, (flags >> 1) & 1, (flags >> 2) % 6, 1);
    while (at < len) {
        n = split ? 1 + fuzz_next() % (len - at) : len - at;
        /* An exact-size copy: any read past it is an ASan report. */
        piece = malloc(n);
        CHECK(piece != NULL);
        memcpy(piece, body + at, n);
        tg_usage_feed(u, piece, n);
        free(piece);
        at += n;
    }
    tg_usage_finish(u);
}


static int
fuzz_emit(void *ctx, const char *p, size_t n)
{
    fuzz_buf_add(ctx, p, n);
    return TG_OK;
}


/* Strip <body> in pieces (<split>) or at once into <o>. */
static void
fuzz_strip(const char *body, size_t len, bool split, fuzz_buf_t *o)
{
    tg_usage_t u;
    size_t at = 0, n;

    tg_usage_init(&u, true, true, TG_DECODE_IDENTITY, 1);
    while (at < len) {
        n = split ? 1 + fuzz_next() % (len - at) : len - at;
        CHECK(tg_usage_strip(&u, body + at, n, fuzz_emit, o) == TG_OK);
        at += n;
    }
    CHECK(tg_usage_strip_flush(&u, fuzz_emit, o) == TG_OK);
    tg_usage_fini(&u);
}


static void
fuzz_ask(const char *body, size_t len)
{
    json_t *j, *so;
    char *out = NULL;
    size_t out_len = 0;
    int rc;

    rc = tg_usage_ask_body(body, len, &out, &out_len);
    CHECK(rc == TG_OK || rc == TG_DECLINED || rc == TG_ERROR);
    if (rc != TG_OK) {
        return;
    }
    /* What was a JSON object stays one, now asking for usage; a body that
     * was not is the upstream's to refuse. */
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(j)) {
        json_decref(j);
        j = json_loadb(out, out_len, 0, NULL);
        CHECK(json_is_object(j));
        so = json_object_get(j, "stream_options");
        CHECK(json_is_true(json_object_get(so, "include_usage")));
    }
    json_decref(j);
    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool logs;
    const char *body = (const char *)data + 2;
    fuzz_buf_t whole = {0}, pieces = {0};
    tg_usage_t a, b;
    size_t len;
    int flags, i;

    if (!logs) {
        /* The extractors warn about undecodable bodies: not here. */
        tg_log_open("/dev/null", "off", TG_LOG_ERR);
        logs = true;
    }
    if (size < 2) {
        return 0;
    }
    flags = data[0];
    fuzz_rng = 0x9e3779b9u ^ data[1];
    len = size - 2;

    fuzz_observe(&a, flags, body, len, false);
    fuzz_observe(&b, flags, body, len, true);
    CHECK(memcmp(a.tokens, b.tokens, sizeof(a.tokens)) == 0);
    CHECK(strcmp(a.model, b.model) == 0);
    CHECK(a.seen == b.seen && a.final == b.final && a.ended == b.ended);
    CHECK(a.unknown == b.unknown && a.error_event == b.error_event);
    CHECK(strlen(a.model) < sizeof(a.model));
    for (i = 0; i < 2; i++) {
        tg_usage_t *u = i ? &b : &a;

        CHECK(u->openai || u->final || u->tokens[TG_TOK_OUTPUT] == 0);
        (void)tg_usage_known(u, 200);
        (void)tg_usage_total(u);
    }
    tg_usage_fini(&a);
    tg_usage_fini(&b);

    if (flags & 0x80) {
        fuzz_strip(body, len, false, &whole);
        fuzz_strip(body, len, true, &pieces);
        CHECK(fuzz_buf_same(&whole, &pieces));
        CHECK(whole.len <= len);
        free(whole.p);
        free(pieces.p);
    } else {
        fuzz_ask(body, len);
    }
    return 0;
}
