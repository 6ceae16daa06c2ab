/*
 * tests/unit/test_usage_resp.c
 *      CUnit suite "usage_resp": token usage of OpenAI Responses API
 *      answers (POST /v1/responses), read from recorded streams and bodies
 *      fed split at every byte boundary.
 *
 * NOTES
 *      Like the suite "usage": the result must not depend on where curl
 *      cuts the body, so every recorded response is fed as two pieces cut
 *      at each offset in turn (a long terminal event at a stride), and
 *      one byte at a time.  The streams follow the shapes of the real API:
 *      "event:" lines, the whole response object repeated in
 *      response.completed with usage near its end, no "[DONE]".
 */
#include "core/core.h"
#include "shm/ring.h"
#include "tests/unit/unit.h"
#include "worker/limit.h"
#include "worker/usage.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one recorded response must give. */
typedef struct {
    const char *name;
    bool sse;
    const char *body;
    int status;                /* HTTP status of the response */
    uint64_t tokens[TG_TOK_N]; /* input, output, read, 5m, 1h, reasoning */
    bool known;                /* tg_usage_known(status) */
    bool error_event;          /* an error or response.failed was seen */
    const char *model;         /* u->model */
} resp_case_t;

#define RESP_OBJ(status, model, output, usage)                                 \
    "{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,"             \
    "\"status\":\"" status "\",\"error\":null,\"instructions\":\"You are "     \
    "a coding agent. {\\\"usage\\\":{\\\"input_tokens\\\":999}}\","            \
    "\"model\":\"" model "\",\"output\":" output ",\"tools\":[{\"type\":"      \
    "\"function\",\"name\":\"shell\",\"parameters\":{\"type\":\"object\","     \
    "\"properties\":{\"usage\":{\"type\":\"string\"}}}}],\"usage\":" usage     \
    ",\"user\":null,\"metadata\":{\"type\":\"x\",\"usage\":\"none\"}}"

#define OUT_TEXT                                                               \
    "[{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\","        \
    "\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"text\":"      \
    "\"Hi [there] {\\\"model\\\":\\\"no\\\"} \\\\\"}],\"role\":\"assistant\"," \
    "\"usage\":{\"input_tokens\":777}}]"

#define USAGE_FULL                                                             \
    "{\"input_tokens\":100,\"input_tokens_details\":{\"cached_tokens\":40},"   \
    "\"output_tokens\":50,\"output_tokens_details\":{\"reasoning_tokens\":"    \
    "30},\"total_tokens\":150}"

/* A stream in the real API's shape. */
static const char stream_ok[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,"
    "\"response\":" RESP_OBJ(
        "in_progress", "gpt-5-codex", "[]",
        "null") "}\n\n"
                "event: response.in_progress\n"
                "data: "
                "{\"type\":\"response.in_progress\",\"sequence_number\":1,"
                "\"response\":" RESP_OBJ(
                    "in_progress", "gpt-5-codex", "[]",
                    "null") "}\n\n"
                            "event: response.output_text.delta\n"
                            "data: "
                            "{\"type\":\"response.output_text.delta\","
                            "\"sequence_number\":2,"
                            "\"item_id\":\"msg_1\",\"output_index\":0,"
                            "\"content_index\":0,"
                            "\"delta\":\"Hi \\\"usage\\\": "
                            "{\",\"logprobs\":[]}\n\n"
                            ": a comment line\n\n"
                            "event: response.completed\n"
                            "data: "
                            "{\"type\":\"response.completed\",\"sequence_"
                            "number\":3,"
                            "\"response\":" RESP_OBJ(
                                "completed", "gpt-5-codex-2025", OUT_TEXT,
                                USAGE_FULL) "}\n\n";

/* No event: lines (the type names the event), CRLF and CR line ends, a
 * data field split over two lines, "data:" without its space, and the
 * "response" member before "type". */
static const char stream_crlf[] =
    "data: {\"type\":\"response.created\",\"response\":{\"model\":"
    "\"o4-mini\",\"usage\":null}}\r\n\r\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\r\r"
    "data:{\"sequence_number\":9,\"response\":{\"id\":\"r\",\r\n"
    "data: \"usage\":{\"input_tokens\":12,\"output_tokens\":3},\"model\":"
    "\"o4-mini\"},\r\n"
    "data: \"type\":\"response.completed\"}\r\n\r\n";

/* Cut before its terminal event: output unknown, input not final. */
static const char stream_cut[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,"
    "\"response\":" RESP_OBJ("in_progress", "gpt-5", "[]",
                             "null") "}\n\n"
                                     "event: response.output_text.delta\n"
                                     "data: "
                                     "{\"type\":\"response.output_text.delta\","
                                     "\"delta\":\"Hel\"}\n\n";

/* max_output_tokens reached: response.incomplete carries the usage. */
static const char stream_incomplete[] =
    "event: response.incomplete\n"
    "data: {\"type\":\"response.incomplete\",\"sequence_number\":5,"
    "\"response\":" RESP_OBJ("incomplete", "gpt-5", "[]",
                             "{\"input_tokens\":9,\"input_tokens_details\":"
                             "{\"cached_tokens\":0},\"output_tokens\":16,"
                             "\"output_tokens_details\":{"
                             "\"reasoning_tokens\":16}}") "}\n\n";

/* response.failed: usage so far, and a failure upstream. */
static const char stream_failed[] =
    "event: response.failed\n"
    "data: {\"type\":\"response.failed\",\"sequence_number\":5,"
    "\"response\":" RESP_OBJ(
        "failed", "gpt-5", "[]",
        "{\"input_tokens\":20,\"output_tokens\":2}") "}"
                                                     "\n\n";

/* An error event after the 200, then the stream ends. */
static const char stream_error[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-5\","
    "\"usage\":null}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"code\":\"server_error\",\"message\":"
    "\"The server had an error\",\"param\":null,\"sequence_number\":2}\n\n";

/* A usage member outside "response" and one nested deeper never count;
 * neither does a usage of the wrong type. */
static const char stream_decoys[] =
    "event: response.completed\n"
    "data: {\"usage\":{\"input_tokens\":555},\"type\":"
    "\"response.completed\",\"item\":{\"usage\":{\"input_tokens\":666}},"
    "\"response\":{\"output\":[{\"response\":{\"usage\":{\"input_tokens\":"
    "888}}}],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n";

/* The data of a delta event is skipped, whatever it holds; a multi-line
 * terminal event after it is still read. */
static const char stream_skipped[] =
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.completed\",\"response\":{\"usage\":\n"
    "data: {\"input_tokens\":500,\"output_tokens\":100}}}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\n"
    "data: \"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}\n"
    "\n";

/* A non-streamed response object. */
static const char json_ok[] =
    RESP_OBJ("completed", "gpt-4.1", OUT_TEXT, USAGE_FULL);

static const char json_error[] =
    "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\","
    "\"param\":null,\"code\":null}}";

static const resp_case_t resp_cases[] = {
    {"stream in the real API's shape",
     true,
     stream_ok,
     200,
     {60, 50, 40, 0, 0, 30},
     true,
     false,
     "gpt-5-codex-2025"},
    {"stream without event lines, CRLF and CR",
     true,
     stream_crlf,
     200,
     {12, 3, 0, 0, 0, 0},
     true,
     false,
     "o4-mini"},
    {"stream cut before its terminal event",
     true,
     stream_cut,
     200,
     {0, 0, 0, 0, 0, 0},
     false,
     false,
     "gpt-5"},
    {"response.incomplete",
     true,
     stream_incomplete,
     200,
     {9, 16, 0, 0, 0, 16},
     true,
     false,
     "gpt-5"},
    {"response.failed",
     true,
     stream_failed,
     200,
     {20, 2, 0, 0, 0, 0},
     true,
     true,
     "gpt-5"},
    {"error event after the 200",
     true,
     stream_error,
     200,
     {0, 0, 0, 0, 0, 0},
     false,
     true,
     "gpt-5"},
    {"usage members elsewhere are decoys",
     true,
     stream_decoys,
     200,
     {5, 1, 0, 0, 0, 0},
     true,
     false,
     ""},
    {"delta events are skipped",
     true,
     stream_skipped,
     200,
     {4, 2, 0, 0, 0, 0},
     true,
     false,
     ""},
    {"json response object",
     false,
     json_ok,
     200,
     {60, 50, 40, 0, 0, 30},
     true,
     false,
     "gpt-4.1"},
    {"json error body", false, json_error, 400, {0}, true, false, ""},
};


/* Check <u> against <t> after the feed of <how>; returns the failures. */
static int
resp_check(const resp_case_t *t, tg_usage_t *u, const char *how)
{
    int i, bad = 0;

    for (i = 0; i < TG_TOK_N; i++) {
        if (u->tokens[i] != t->tokens[i]) {
            fprintf(stderr, "\n  %s, %s: counter %d is %llu, want %llu",
                    t->name, how, i, (unsigned long long)u->tokens[i],
                    (unsigned long long)t->tokens[i]);
            bad++;
        }
    }
    if (tg_usage_known(u, t->status) != t->known ||
        u->error_event != t->error_event || strcmp(u->model, t->model) != 0) {
        fprintf(stderr, "\n  %s, %s: known %d error %d model \"%s\"", t->name,
                how, tg_usage_known(u, t->status), u->error_event, u->model);
        bad++;
    }
    return bad;
}


/* Feed <len> bytes of <body> to a new observer in two pieces cut at
 * <cut> (or one byte at a time when <cut> is SIZE_MAX). */
static void
resp_feed(tg_usage_t *u, const resp_case_t *t, const char *body, size_t len,
          size_t cut)
{
    size_t k;

    tg_usage_init_responses(u, t->sse, TG_DECODE_IDENTITY, 1);
    if (cut == SIZE_MAX) {
        for (k = 0; k < len; k++) {
            tg_usage_feed(u, body + k, 1);
        }
    } else {
        tg_usage_feed(u, body, cut);
        tg_usage_feed(u, body + cut, len - cut);
    }
    tg_usage_finish(u);
}


static void
test_resp_every_byte_boundary(void)
{
    char how[64];
    size_t i, cut, len;
    tg_usage_t u;
    int bad;

    for (i = 0; i < TG_NELEMS(resp_cases); i++) {
        const resp_case_t *t = &resp_cases[i];

        len = strlen(t->body);
        bad = 0;
        for (cut = 0; cut <= len && bad < 6; cut++) {
            snprintf(how, sizeof(how), "cut at %zu", cut);
            resp_feed(&u, t, t->body, len, cut);
            bad += resp_check(t, &u, how);
            tg_usage_fini(&u);
        }
        resp_feed(&u, t, t->body, len, SIZE_MAX);
        bad += resp_check(t, &u, "one-byte pieces");
        tg_usage_fini(&u);
        CU_ASSERT_EQUAL(bad, 0);
    }
}


/*
 * A terminal event far over any event bound: 300 KB of output, with
 * braces, brackets, quotes and escapes inside its strings, before the
 * usage.  The usage is still read, wherever the body is cut.
 */
static void
test_resp_huge_terminal_event(void)
{
    static const char head[] =
        "event: response.completed\n"
        "data: {\"type\":\"response.completed\",\"response\":{\"model\":"
        "\"gpt-5\",\"output\":[";
    static const char item[] =
        "{\"type\":\"message\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"} ] { [ \\\" \\\\ \\u0022 ,:\"}]},";
    static const char tail[] =
        "{\"type\":\"message\"}],\"usage\":" USAGE_FULL "}}\n\n";
    resp_case_t t = {"huge terminal event",  true, NULL,  200,
                     {60, 50, 40, 0, 0, 30}, true, false, "gpt-5"};
    size_t n = 0, i, cut, cap = 320 * 1024;
    char *body = malloc(cap), how[64];
    tg_usage_t u;
    int bad = 0;

    CU_ASSERT_FATAL(body != NULL);
    memcpy(body, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    for (i = 0; n + sizeof(item) + sizeof(tail) < cap - 1024; i++) {
        memcpy(body + n, item, sizeof(item) - 1);
        n += sizeof(item) - 1;
    }
    memcpy(body + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    CU_ASSERT(n > 300 * 1024);
    for (cut = 0; cut <= n && bad < 6; cut += 997) {
        snprintf(how, sizeof(how), "cut at %zu", cut);
        resp_feed(&u, &t, body, n, cut);
        bad += resp_check(&t, &u, how);
        tg_usage_fini(&u);
    }
    resp_feed(&u, &t, body, n, SIZE_MAX);
    bad += resp_check(&t, &u, "one-byte pieces");
    tg_usage_fini(&u);
    CU_ASSERT_EQUAL(bad, 0);
    free(body);
}


/* A usage value longer than its bound is not read (never half-read);
 * an event name longer than its bound matches nothing. */
static void
test_resp_bounds(void)
{
    char body[4096];
    tg_usage_t u;
    int n;

    n = snprintf(body, sizeof(body),
                 "event: response.completed\ndata: {\"response\":{\"usage\":"
                 "{\"input_tokens\":7,\"pad\":\"%01100d\"}}}\n\n",
                 0);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(body));
    tg_usage_init_responses(&u, true, TG_DECODE_IDENTITY, 1);
    tg_usage_feed(&u, body, (size_t)n);
    CU_ASSERT(u.ended);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 0);
    CU_ASSERT(!tg_usage_known(&u, 200));
    tg_usage_fini(&u);
    n = snprintf(body, sizeof(body),
                 "event: response.completed%080d\ndata: {\"response\":{"
                 "\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
                 0);
    tg_usage_init_responses(&u, true, TG_DECODE_IDENTITY, 1);
    tg_usage_feed(&u, body, (size_t)n);
    CU_ASSERT(!u.ended);
    CU_ASSERT_EQUAL(u.tokens[TG_TOK_INPUT], 0);
    tg_usage_fini(&u);
}


/* The quota estimate reads max_output_tokens; the api of a record. */
static void
test_resp_estimate_and_api(void)
{
    static const char body[] =
        "{\"model\":\"gpt-5\",\"input\":\"hi\",\"max_output_tokens\":1234}";
    uint64_t out = 0;

    CU_ASSERT_EQUAL(tg_limit_estimate(body, sizeof(body) - 1, &out),
                    (sizeof(body) - 1) / 4 + 1234);
    CU_ASSERT_EQUAL(out, 1234);
    CU_ASSERT_EQUAL(tg_usage_api(0), 0);
    CU_ASSERT_EQUAL(tg_usage_api(TG_USAGE_F_OPENAI), 1);
    CU_ASSERT_EQUAL(tg_usage_api(TG_USAGE_F_OPENAI | TG_USAGE_F_RESPONSES), 2);
    CU_ASSERT_STRING_EQUAL(tg_usage_api_name(2), "responses");
    CU_ASSERT_STRING_EQUAL(tg_usage_api_name(1), "openai");
    CU_ASSERT_STRING_EQUAL(tg_usage_api_name(0), "anthropic");
}


int
tg_test_usage_resp_register(void)
{
    CU_pSuite s = CU_add_suite("usage_resp", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "responses usage is the same wherever the body is cut",
                    test_resp_every_byte_boundary) == NULL ||
        CU_add_test(s, "a 300 KB terminal event still gives its usage",
                    test_resp_huge_terminal_event) == NULL ||
        CU_add_test(s, "over-long usage values and event names are not read",
                    test_resp_bounds) == NULL ||
        CU_add_test(s, "max_output_tokens counts in the estimate; api names",
                    test_resp_estimate_and_api) == NULL) {
        return TG_ERROR;
    }
    return TG_OK;
}
