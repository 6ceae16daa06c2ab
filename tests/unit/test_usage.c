/*
 * tests/unit/test_usage.c
 *      CUnit suite "usage": token usage read from recorded upstream
 *      responses, each fed split at every byte boundary.
 *
 * NOTES
 *      curl hands the body over in pieces of any size, so the result must
 *      not depend on where a piece ends: every recorded response is fed as
 *      two pieces cut at each offset in turn, and the counters, flags and
 *      model must come out the same as the expected values every time.
 *      Mismatches print the cut, the counter and both values.
 */
#include "core/core.h"
#include "tests/unit/unit.h"
#include "worker/usage.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one recorded response must give. */
typedef struct {
    const char *name;
    bool openai, sse;
    const char *body;
    int status;                /* HTTP status of the response */
    uint64_t tokens[TG_TOK_N]; /* expected counters */
    bool known;                /* tg_usage_known(status) */
    bool error_event;          /* an error event was seen */
} usage_case_t;

/* An Anthropic stream cut before message_delta: message_start's
 * output_tokens is a placeholder and must not be counted. */
static const char anthropic_cut[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":25,"
    "\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n";

/* A stream that carries an error event and then ends cleanly. */
static const char anthropic_error[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\","
    "\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
    "\"message\":\"Overloaded\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},"
    "\"usage\":{\"output_tokens\":4}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* A 1-hour cache write in message_start; message_delta repeats the total
 * without the split, and a lower input count. */
static const char anthropic_cache_1h[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\","
    "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":100,"
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
    "\"ephemeral_1h_input_tokens\":100},\"output_tokens\":1}}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{"
    "\"input_tokens\":9,\"cache_creation_input_tokens\":100,"
    "\"output_tokens\":42}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* Unsplit cache writes only: they are 5-minute writes. */
static const char anthropic_cache_5m[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\","
    "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":30,"
    "\"output_tokens\":1}}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},"
    "\"usage\":{\"output_tokens\":5}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static const char openai_stream[] =
    "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[{\"delta\":"
    "{\"content\":\"hi\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[],\"usage\":{"
    "\"prompt_tokens\":30,\"completion_tokens\":12,"
    "\"prompt_tokens_details\":{\"cached_tokens\":10},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":4}}}\n\n"
    "data: [DONE]\n\n";

/* An OpenAI stream cut before its usage chunk. */
static const char openai_cut[] =
    "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[{\"delta\":"
    "{\"content\":\"hi\"}}],\"usage\":null}\n\n";

static const char anthropic_json[] =
    "{\"id\":\"msg_1\",\"model\":\"claude-x\",\"content\":[],"
    "\"usage\":{\"input_tokens\":11,\"output_tokens\":6}}";

static const char json_error[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
    "\"message\":\"bad\"}}";

/* Cumulative message_delta events: the second repeats output higher and
 * sends input and cache read as zero; the third omits output.  A later
 * absent or zero field never overwrites an earlier non-zero one. */
static const char anthropic_deltas[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\","
    "\"usage\":{\"input_tokens\":40,\"cache_read_input_tokens\":8,"
    "\"output_tokens\":1}}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},"
    "\"usage\":{\"output_tokens\":10}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{"
    "\"input_tokens\":0,\"cache_read_input_tokens\":0,"
    "\"output_tokens\":25}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\"},\"usage\":{\"input_tokens\":40}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* An OpenAI stream with an error chunk after its first content. */
static const char openai_error[] =
    "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[{\"delta\":"
    "{\"content\":\"hi\"}}],\"usage\":null}\n\n"
    "data: {\"error\":{\"message\":\"server overloaded\","
    "\"type\":\"server_error\"}}\n\n";

/* A non-streamed OpenAI answer with cached and reasoning tokens. */
static const char openai_json[] =
    "{\"id\":\"c2\",\"model\":\"o-x\",\"choices\":[],\"usage\":{"
    "\"prompt_tokens\":1000,\"completion_tokens\":300,"
    "\"prompt_tokens_details\":{\"cached_tokens\":800},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":200}}}";

static const usage_case_t usage_cases[] = {
    {"anthropic cumulative deltas with zero and absent fields",
     false,
     true,
     anthropic_deltas,
     200,
     {40, 25, 8, 0, 0, 0},
     true,
     false},
    {"openai stream with an error chunk after the 200",
     true,
     true,
     openai_error,
     200,
     {0, 0, 0, 0, 0, 0},
     false,
     true},
    {"openai json with cached and reasoning tokens",
     true,
     false,
     openai_json,
     200,
     {200, 300, 800, 0, 0, 200},
     true,
     false},
    {"anthropic stream cut before message_delta",
     false,
     true,
     anthropic_cut,
     200,
     {25, 0, 3, 0, 0, 0},
     false,
     false},
    {"anthropic stream with an error event",
     false,
     true,
     anthropic_error,
     200,
     {7, 4, 0, 0, 0, 0},
     true,
     true},
    {"anthropic 1-hour cache write repeated without its split",
     false,
     true,
     anthropic_cache_1h,
     200,
     {10, 42, 0, 0, 100, 0},
     true,
     false},
    {"anthropic unsplit cache write",
     false,
     true,
     anthropic_cache_5m,
     200,
     {10, 5, 0, 30, 0, 0},
     true,
     false},
    {"openai stream",
     true,
     true,
     openai_stream,
     200,
     {20, 12, 10, 0, 0, 4},
     true,
     false},
    {"openai stream cut before its usage",
     true,
     true,
     openai_cut,
     200,
     {0, 0, 0, 0, 0, 0},
     false,
     false},
    {"anthropic json body",
     false,
     false,
     anthropic_json,
     200,
     {11, 6, 0, 0, 0, 0},
     true,
     false},
    {"json error body",
     false,
     false,
     json_error,
     400,
     {0, 0, 0, 0, 0, 0},
     true,
     false},
};


/* Feed <t>'s body in two pieces cut at <cut>; returns the failures. */
static int
usage_check_cut(const usage_case_t *t, size_t cut)
{
    size_t len = strlen(t->body);
    tg_usage_t u;
    int i, bad = 0;

    tg_usage_init(&u, t->openai, t->sse, TG_DECODE_IDENTITY, 1);
    if (cut > 0) {
        tg_usage_feed(&u, t->body, cut);
    }
    if (len > cut) {
        tg_usage_feed(&u, t->body + cut, len - cut);
    }
    tg_usage_finish(&u);
    for (i = 0; i < TG_TOK_N; i++) {
        if (u.tokens[i] != t->tokens[i]) {
            fprintf(stderr, "\n  %s, cut at %zu: counter %d is %llu, want %llu",
                    t->name, cut, i, (unsigned long long)u.tokens[i],
                    (unsigned long long)t->tokens[i]);
            bad++;
        }
    }
    if (tg_usage_known(&u, t->status) != t->known) {
        fprintf(stderr, "\n  %s, cut at %zu: known is %d, want %d", t->name,
                cut, tg_usage_known(&u, t->status), t->known);
        bad++;
    }
    if (u.error_event != t->error_event) {
        fprintf(stderr, "\n  %s, cut at %zu: error_event is %d, want %d",
                t->name, cut, u.error_event, t->error_event);
        bad++;
    }
    tg_usage_fini(&u);
    return bad;
}


static void
test_usage_every_byte_boundary(void)
{
    size_t i, cut;

    for (i = 0; i < TG_NELEMS(usage_cases); i++) {
        int bad = 0;

        for (cut = 0; cut <= strlen(usage_cases[i].body) && bad < 6; cut++) {
            bad += usage_check_cut(&usage_cases[i], cut);
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
}


/* Feeding one byte at a time gives the same result as whole. */
static void
test_usage_one_byte_pieces(void)
{
    size_t i, k, len;
    tg_usage_t u;

    for (i = 0; i < TG_NELEMS(usage_cases); i++) {
        const usage_case_t *t = &usage_cases[i];

        len = strlen(t->body);
        tg_usage_init(&u, t->openai, t->sse, TG_DECODE_IDENTITY, 1);
        for (k = 0; k < len; k++) {
            tg_usage_feed(&u, t->body + k, 1);
        }
        tg_usage_finish(&u);
        if (memcmp(u.tokens, t->tokens, sizeof(u.tokens)) != 0) {
            fprintf(stderr, "\n  %s: counters differ in one-byte pieces",
                    t->name);
        }
        CU_ASSERT(memcmp(u.tokens, t->tokens, sizeof(u.tokens)) == 0);
        CU_ASSERT_EQUAL(tg_usage_known(&u, t->status), t->known);
        tg_usage_fini(&u);
    }
}


/* A later usage event with lower counts never lowers a class. */
static void
test_usage_never_lowers(void)
{
    static const char body[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{"
        "\"input_tokens\":50,\"cache_read_input_tokens\":20,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":5,"
        "\"ephemeral_1h_input_tokens\":7},"
        "\"cache_creation_input_tokens\":12,\"output_tokens\":1}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":0,"
        "\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0,"
        "\"output_tokens\":9}}\n\n"
        "event: message_delta\n"
        "data: "
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n";
    tg_usage_t u;

    tg_usage_init(&u, false, true, TG_DECODE_IDENTITY, 1);
    tg_usage_feed(&u, body, sizeof(body) - 1);
    tg_usage_finish(&u);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 50);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_CACHE_READ], 20);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_CACHE_5M], 5);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_CACHE_1H], 7);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_OUTPUT], 9);
    CU_ASSERT(tg_usage_known(&u, 200));
    tg_usage_fini(&u);
}


/* Collects what the strip passes on. */
typedef struct {
    char buf[4096];
    size_t len;
} strip_out_t;


static int
strip_emit(void *ctx, const char *p, size_t len)
{
    strip_out_t *o = ctx;

    if (o->len + len > sizeof(o->buf)) {
        return TG_ERROR;
    }
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    return TG_OK;
}


/* The OpenAI stream with usage, in CRLF framing too, loses exactly its
 * usage chunk, cut at every byte; the usage is still read. */
static void
test_usage_strip_every_byte_boundary(void)
{
    static const char usage_chunk[] =
        "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[],\"usage\":{"
        "\"prompt_tokens\":30,\"completion_tokens\":12,"
        "\"prompt_tokens_details\":{\"cached_tokens\":10},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":4}}}\n\n";
    const char *body = openai_stream;
    size_t len = strlen(body), cut, ulen = strlen(usage_chunk);
    const char *at = strstr(body, usage_chunk);
    int bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    for (cut = 0; cut <= len && bad < 4; cut++) {
        strip_out_t o = {.len = 0};
        tg_usage_t u;

        tg_usage_init(&u, true, true, TG_DECODE_IDENTITY, 1);
        if (tg_usage_strip(&u, body, cut, strip_emit, &o) != TG_OK ||
            tg_usage_strip(&u, body + cut, len - cut, strip_emit, &o) !=
                TG_OK ||
            tg_usage_strip_flush(&u, strip_emit, &o) != TG_OK) {
            bad++;
        }
        tg_usage_feed(&u, body, cut);
        tg_usage_feed(&u, body + cut, len - cut);
        if (o.len != len - ulen ||
            memcmp(o.buf, body, (size_t)(at - body)) != 0 ||
            memcmp(o.buf + (at - body), at + ulen,
                   len - (size_t)(at - body) - ulen) != 0) {
            fprintf(stderr, "\n  strip cut at %zu: %.*s", cut, (int)o.len,
                    o.buf);
            bad++;
        }
        if (u.tokens[TG_TOK_OUTPUT] != 12) {
            bad++;
        }
        tg_usage_fini(&u);
    }
    CU_ASSERT_EQUAL(bad, 0);
}


/* Anthropic events and other chunks pass through byte for byte, also
 * a stream cut mid-event (flushed at its end). */
static void
test_usage_strip_keeps_everything_else(void)
{
    const char *bodies[] = {anthropic_cache_1h, openai_cut, openai_error,
                            "data: {\"choices\":[],\"usage\":null}\n\n"
                            "data: [DO"};
    size_t i, cut, len;
    int bad = 0;

    for (i = 0; i < TG_NELEMS(bodies); i++) {
        len = strlen(bodies[i]);
        for (cut = 0; cut <= len; cut++) {
            strip_out_t o = {.len = 0};
            tg_usage_t u;

            tg_usage_init(&u, true, true, TG_DECODE_IDENTITY, 1);
            (void)tg_usage_strip(&u, bodies[i], cut, strip_emit, &o);
            (void)tg_usage_strip(&u, bodies[i] + cut, len - cut, strip_emit,
                                 &o);
            (void)tg_usage_strip_flush(&u, strip_emit, &o);
            bad += o.len != len || memcmp(o.buf, bodies[i], len) != 0;
            tg_usage_fini(&u);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}


static void
test_usage_ask_body(void)
{
    static const struct {
        const char *in, *out;
        int rc;
    } cases[] = {
        {"{\"model\":\"m\",\"stream\":true}",
         "{\"stream_options\":{\"include_usage\":true},\"model\":\"m\","
         "\"stream\":true}",
         TG_OK},
        {" { } ", " {\"stream_options\":{\"include_usage\":true} } ", TG_OK},
        {"{\"stream\":true,\"stream_options\":{\"include_usage\":false,"
         "\"x\":1}}",
         "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
         "\"x\":1}}",
         TG_OK},
        {"{\"stream_options\":null}",
         "{\"stream_options\":{\"include_usage\":true}}", TG_OK},
        {"{\"stream_options\":{\"include_usage\":true}}", NULL, TG_DECLINED},
        {"[1,2]", NULL, TG_DECLINED},
        {"{\"model\":", NULL, TG_DECLINED},
    };
    size_t i, olen;
    char *out;
    int rc;

    for (i = 0; i < TG_NELEMS(cases); i++) {
        out = NULL;
        rc = tg_usage_ask_body(cases[i].in, strlen(cases[i].in), &out, &olen);
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        if (rc == TG_OK && cases[i].out != NULL) {
            if (olen != strlen(cases[i].out) ||
                memcmp(out, cases[i].out, olen) != 0) {
                fprintf(stderr, "\n  ask_body %zu: %.*s", i, (int)olen, out);
                CU_FAIL("rewritten body differs");
            }
        }
        free(out);
    }
}


/* See unit.h. */
int
tg_test_usage_register(void)
{
    CU_pSuite s = CU_add_suite("usage", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s,
                    "recorded responses give the same usage cut at every "
                    "byte",
                    test_usage_every_byte_boundary) == NULL ||
        CU_add_test(s, "one-byte pieces give the same usage as whole",
                    test_usage_one_byte_pieces) == NULL ||
        CU_add_test(s, "a later usage event never lowers a class",
                    test_usage_never_lowers) == NULL ||
        CU_add_test(s,
                    "the strip drops only the usage chunk, cut at every "
                    "byte",
                    test_usage_strip_every_byte_boundary) == NULL ||
        CU_add_test(s, "the strip passes everything else byte for byte",
                    test_usage_strip_keeps_everything_else) == NULL ||
        CU_add_test(s, "a streamed chat body is made to ask for usage",
                    test_usage_ask_body) == NULL) {
        return -1;
    }
    return 0;
}
