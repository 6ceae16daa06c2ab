/*
 * tests/integration/test_responses.c
 *      POST /v1/responses (the OpenAI Responses API) through a real
 *      tollgate in front of the mock upstream: answers and streams passed
 *      through, usage records equal to the mock's ledger, an agent loop
 *      with a function tool, OpenAI-shaped refusals, failover between
 * OpenAI-style endpoints, the answer for a group without one, broken and failed
 * streams, and the official OpenAI SDK.
 *
 * NOTES
 *      Token counts come from docs/mock-upstream.md: I is a quarter of the
 *      serialised "input" plus one, O is 2 per chunk, reasoning O / 4 (a
 *      part of O), cached I / 2 when the body holds "prompt_cache_key".
 *      Usage records are read from the usage log ("usage.log"), each found
 *      by its x-tollgate-request-id.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESP_BODY                                                              \
    "{\"model\":\"gpt-4o\",\"input\":\"Tell me about Lisbon, briefly.\","      \
    "\"prompt_cache_key\":\"lisbon\"}"
#define RESP_BODY_STREAM                                                       \
    "{\"model\":\"gpt-4o\",\"stream\":true,\"input\":[{\"role\":\"user\","     \
    "\"content\":\"Tell me about Lisbon, briefly.\"}]}"
#define RESP_H_XKEY                                                            \
    "x-api-key: " TG_IT_KEY "\r\ncontent-type: application/json\r\n"
#define AONLY_KEY "tg-it-anthropic-only-key-01234"

static char usage_log[4096];


/* ------------------------------------------------------------ helpers */

/* The common fixture with the usage log in the test directory. */
static void
resp_fixture_init(tg_it_fixture_t *f)
{
    tg_it_fixture_init(f);
    tg_it_path(usage_log, sizeof(usage_log), "usage.log");
    tg_it_conf_set(&f->conf, "usage.log", "\"%s\"", usage_log);
}


/* Integer at <path> in <j>; -1 when absent. */
static long long
jint(json_t *j, const char *path)
{
    json_t *v = tg_it_json_get(j, path);

    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}


/* The line of the JSON-lines file <path> that holds <needle>, parsed
 * (the caller decrefs it), waiting up to 3 s for it. */
static json_t *
line_find(const char *path, const char *needle)
{
    const char *const needles[] = {needle, NULL};
    char *text, *line, *nl;
    json_t *j = NULL;

    TG_IT_CHECKF(tg_it_file_wait_count(path, needles, 1, 3000) == 1,
                 "no line with %s in %s within 3 s", needle, path);
    text = tg_it_file_read(path, NULL);
    TG_IT_CHECK(text != NULL);
    for (line = text; j == NULL && *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        TG_IT_CHECK(nl != NULL);
        *nl = '\0';
        if (strstr(line, needle) != NULL) {
            j = json_loads(line, 0, NULL);
        }
    }
    free(text);
    TG_IT_CHECKF(json_is_object(j), "line with %s is not JSON", needle);
    return j;
}


/* The usage record of response <resp> (by its x-tollgate-request-id). */
static json_t *
record_of(const tg_it_resp_t *resp)
{
    char id[64], needle[96];

    TG_IT_CHECKF(tg_it_resp_header(resp, "x-tollgate-request-id", id,
                                   sizeof(id)) != NULL,
                 "no x-tollgate-request-id");
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    return line_find(usage_log, needle);
}


/* The mock ledger line of the request the mock answered with
 * x-request-id <resp>'s. */
static json_t *
ledger_of(const tg_it_fixture_t *f, const tg_it_resp_t *resp)
{
    char id[64], needle[96];

    TG_IT_CHECKF(tg_it_resp_header(resp, "x-request-id", id, sizeof(id)) !=
                     NULL,
                 "no x-request-id from the mock");
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    return line_find(f->ledger, needle);
}


/* Check that record <r> holds exactly the tokens of ledger line <l>:
 * input without the cached tokens, which are cache reads. */
static void
expect_tokens(json_t *r, json_t *l)
{
    tg_it_note("ledger in %lld out %lld cached %lld reasoning %lld; record "
               "in %lld out %lld read %lld reasoning %lld",
               jint(l, "input_tokens"), jint(l, "output_tokens"),
               jint(l, "cache_read_input_tokens"), jint(l, "reasoning_tokens"),
               jint(r, "tokens.input"), jint(r, "tokens.output"),
               jint(r, "tokens.cache_read"), jint(r, "tokens.reasoning"));
    TG_IT_CHECK_INT(jint(r, "tokens.input"),
                    jint(l, "input_tokens") -
                        jint(l, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.cache_read"),
                    jint(l, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.output"), jint(l, "output_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.reasoning"), jint(l, "reasoning_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.cache_write_5m"), 0);
    TG_IT_CHECK_INT(jint(r, "tokens.cache_write_1h"), 0);
    TG_IT_CHECK(json_is_true(tg_it_json_get(r, "tokens_known")));
}


/* Check that <resp> is an error of <status> in the OpenAI shape with
 * error.type <type> and error.code <code> (NULL: not checked). */
static void
expect_openai_error(const tg_it_resp_t *resp, int status, const char *type,
                    const char *code)
{
    json_t *j;

    TG_IT_CHECKF(resp->status == status, "status %d, expected %d: %.300s",
                 resp->status, status, resp->body ? resp->body : "");
    j = tg_it_json(resp);
    TG_IT_CHECK(tg_it_json_get(j, "type") == NULL);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), type);
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
    if (code != NULL) {
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.code"), code);
    }
    json_decref(j);
}


/* ------------------------------------------------------ tool calls */

#define LOOP_CHUNKS   4 /* argument pieces and text deltas */
#define LOOP_H_CHUNKS "x-mock-chunks: 4\r\n"
#define LOOP_TOOLS                                                             \
    "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","              \
    "\"description\":\"Weather forecast for a city\",\"parameters\":{"         \
    "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"      \
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"]}}]"
#define LOOP_ASK                                                               \
    "{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}"


/* <resp>'s body with the mock's id of its request (in every id the
 * answer holds) and the created_at times overwritten, so answers to the
 * same request compare equal (the caller frees it). */
static char *
body_norm(const tg_it_resp_t *resp)
{
    char id[64], *s, *p;
    size_t tl;

    TG_IT_CHECK(tg_it_resp_header(resp, "x-request-id", id, sizeof(id)) !=
                    NULL &&
                strncmp(id, "req_", 4) == 0 && strlen(id) > 8);
    tl = strlen(id + 4);
    s = strndup(resp->body, resp->body_len);
    TG_IT_CHECK(s != NULL);
    for (p = strstr(s, id + 4); p != NULL; p = strstr(p + tl, id + 4)) {
        memset(p, 'X', tl);
    }
    for (p = strstr(s, "\"created_at\":"); p != NULL;
         p = strstr(p, "\"created_at\":")) {
        for (p += 13; *p >= '0' && *p <= '9'; p++) {
            *p = '0';
        }
    }
    return s;
}


/*
 * One request of a Responses agent loop, with the input items <input>
 * (JSON text): sent through tollgate into <resp>, and the same straight
 * to the mock.  Both answers must be equal but for ids and times (the
 * events and the body pass unchanged), and tollgate's usage record must
 * equal the mock's ledger line.
 */
static void
loop_round(const tg_it_fixture_t *f, bool stream, const char *input,
           tg_it_resp_t *resp)
{
    char *body, *via, *direct;
    tg_it_resp_t d;
    json_t *r, *l;

    TG_IT_CHECK(
        asprintf(&body,
                 "{\"model\":\"gpt-4o\",\"stream\":%s,\"input\":%s," LOOP_TOOLS
                 "}",
                 stream ? "true" : "false", input) > 0);
    tg_it_request(f->port, "POST", "/v1/responses",
                  TG_IT_H_OPENAI LOOP_H_CHUNKS, body, resp);
    TG_IT_CHECKF(resp->status == 200 && resp->complete, "status %d: %.300s",
                 resp->status, resp->body ? resp->body : "");
    tg_it_request(f->mock_port, "POST", "/v1/responses",
                  "authorization: Bearer " TG_IT_CRED "\r\ncontent-type: "
                  "application/json\r\n" LOOP_H_CHUNKS,
                  body, &d);
    TG_IT_CHECK_INT(d.status, 200);
    via = body_norm(resp);
    direct = body_norm(&d);
    TG_IT_CHECK_STR(via, direct);
    free(via);
    free(direct);
    tg_it_resp_fini(&d);
    free(body);
    r = record_of(resp);
    l = ledger_of(f, resp);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "ok");
    TG_IT_CHECK_STR(tg_it_json_str(r, "api"), "responses");
    TG_IT_CHECK(json_is_true(tg_it_json_get(r, "stream")) == stream);
    TG_IT_CHECK_INT(jint(r, "tokens.output"), 2 * LOOP_CHUNKS);
    expect_tokens(r, l);
    json_decref(r);
    json_decref(l);
}


/* Check that the stream in <resp> holds the events <names> in order,
 * each data's type its event's name and its sequence_number its place;
 * <s> gets the events (the caller finis it). */
static void
expect_events(const tg_it_resp_t *resp, const char *const names[], size_t n,
              tg_it_sse_t *s)
{
    json_t *d;
    size_t i;

    tg_it_sse_parse(s, resp->body, resp->body_len);
    TG_IT_CHECK_INT(s->n, n);
    for (i = 0; i < s->n; i++) {
        TG_IT_CHECK_STR(s->event[i], names[i]);
        d = json_loads(s->data[i], 0, NULL);
        TG_IT_CHECK_STR(tg_it_json_str(d, "type"), names[i]);
        TG_IT_CHECK_INT(jint(d, "sequence_number"), (long long)i);
        json_decref(d);
    }
}


/* Member <path> of the data of event <i> of <s>, as a new string. */
static char *
event_str(const tg_it_sse_t *s, size_t i, const char *path)
{
    json_t *d = json_loads(s->data[i], 0, NULL);
    const char *v = tg_it_json_str(d, path);
    char *out;

    TG_IT_CHECKF(v != NULL, "event %zu has no %s: %.300s", i, path, s->data[i]);
    out = strdup(v);
    TG_IT_CHECK(out != NULL);
    json_decref(d);
    return out;
}


/* Check that member <path> of event <i> of <s> is the string <want>. */
static void
expect_event_str(const tg_it_sse_t *s, size_t i, const char *path,
                 const char *want)
{
    char *v = event_str(s, i, path);

    TG_IT_CHECK_STR(v, want);
    free(v);
}


/* The LOOP_CHUNKS deltas of <s> from event <from> joined into <joined>
 * (256 bytes), each a fragment: not empty, and of item <item_id>. */
static void
join_deltas(const tg_it_sse_t *s, size_t from, const char *item_id,
            char *joined)
{
    size_t i;
    char *v;

    joined[0] = '\0';
    for (i = from; i < from + LOOP_CHUNKS; i++) {
        expect_event_str(s, i, "item_id", item_id);
        v = event_str(s, i, "delta");
        TG_IT_CHECKF(v[0] != '\0' && strlen(joined) + strlen(v) < 256,
                     "delta %zu: \"%s\"", i, v);
        strcat(joined, v);
        free(v);
    }
}


/* The function call item of a streamed answer: the argument deltas are
 * fragments that add up to the arguments of the done events, each of the
 * item's id (a new reference). */
static json_t *
call_streamed(const tg_it_resp_t *resp)
{
    static const char *const names[LOOP_CHUNKS + 6] = {
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed"};
    char joined[256], *id;
    json_t *d, *item;
    tg_it_sse_t s;

    expect_events(resp, names, TG_NELEMS(names), &s);
    id = event_str(&s, 2, "item.id");
    expect_event_str(&s, 2, "item.status", "in_progress");
    join_deltas(&s, 3, id, joined);
    expect_event_str(&s, LOOP_CHUNKS + 3, "item_id", id);
    expect_event_str(&s, LOOP_CHUNKS + 3, "arguments", joined);
    expect_event_str(&s, LOOP_CHUNKS + 4, "item.arguments", joined);
    /* response.completed holds the item output_item.done gave. */
    d = json_loads(s.data[LOOP_CHUNKS + 4], 0, NULL);
    item = json_loads(s.data[LOOP_CHUNKS + 5], 0, NULL);
    TG_IT_CHECK(json_equal(tg_it_json_get(d, "item"),
                           tg_it_json_get(item, "response.output.0")));
    TG_IT_CHECK_INT(json_array_size(tg_it_json_get(item, "response.output")),
                    1);
    json_decref(d);
    d = json_incref(tg_it_json_get(item, "response.output.0"));
    json_decref(item);
    TG_IT_CHECK_STR(tg_it_json_str(d, "id"), id);
    free(id);
    tg_it_sse_fini(&s);
    return d;
}


/* The function call of the first answer of the loop, checked: a
 * completed call of get_weather whose arguments are the JSON the mock
 * sends (a new reference). */
static json_t *
expect_call(const tg_it_resp_t *resp, bool stream)
{
    const char *call_id, *id;
    json_t *j, *item, *args;

    if (stream) {
        item = call_streamed(resp);
    } else {
        j = tg_it_json(resp);
        TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "completed");
        TG_IT_CHECK_INT(json_array_size(tg_it_json_get(j, "output")), 1);
        item = json_incref(tg_it_json_get(j, "output.0"));
        json_decref(j);
    }
    TG_IT_CHECK_STR(tg_it_json_str(item, "type"), "function_call");
    TG_IT_CHECK_STR(tg_it_json_str(item, "name"), "get_weather");
    TG_IT_CHECK_STR(tg_it_json_str(item, "status"), "completed");
    call_id = tg_it_json_str(item, "call_id");
    id = tg_it_json_str(item, "id");
    TG_IT_CHECK(call_id != NULL && strncmp(call_id, "call_", 5) == 0);
    TG_IT_CHECK(id != NULL && strncmp(id, "fc_", 3) == 0);
    args = json_loads(tg_it_json_str(item, "arguments"), 0, NULL);
    TG_IT_CHECKF(json_is_object(args), "arguments are not a JSON object: %s",
                 tg_it_json_str(item, "arguments"));
    TG_IT_CHECK_STR(tg_it_json_str(args, "city"), "Paris");
    TG_IT_CHECK_INT(jint(args, "days"), 3);
    json_decref(args);
    return item;
}


/* The text answer of the last request of the loop, checked. */
static void
expect_text(const tg_it_resp_t *resp, bool stream)
{
    static const char *const names[LOOP_CHUNKS + 8] = {
        "response.created",           "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done",  "response.content_part.done",
        "response.output_item.done",  "response.completed"};
    char joined[256], *id;
    tg_it_sse_t s;
    json_t *j;

    if (!stream) {
        j = tg_it_json(resp);
        TG_IT_CHECK_INT(json_array_size(tg_it_json_get(j, "output")), 1);
        TG_IT_CHECK_STR(tg_it_json_str(j, "output.0.type"), "message");
        TG_IT_CHECK_STR(tg_it_json_str(j, "output.0.content.0.type"),
                        "output_text");
        TG_IT_CHECK(tg_it_json_str(j, "output.0.content.0.text")[0] != '\0');
        json_decref(j);
        return;
    }
    expect_events(resp, names, TG_NELEMS(names), &s);
    id = event_str(&s, 2, "item.id");
    join_deltas(&s, 4, id, joined);
    expect_event_str(&s, LOOP_CHUNKS + 4, "text", joined);
    expect_event_str(&s, LOOP_CHUNKS + 7, "response.output.0.content.0.text",
                     joined);
    free(id);
    tg_it_sse_fini(&s);
}


/* A Responses agent loop through tollgate: the question with a function
 * tool gets a call, the call's output sent back gets a text answer. */
static void
agent_loop(const tg_it_fixture_t *f, bool stream)
{
    tg_it_resp_t resp;
    json_t *call, *input;
    char *text;

    loop_round(f, stream, "[" LOOP_ASK "]", &resp);
    call = expect_call(&resp, stream);
    tg_it_resp_fini(&resp);
    input = json_pack("[{s:s,s:s},O,{s:s,s:O,s:s}]", "role", "user", "content",
                      "What is the weather in Paris?", call, "type",
                      "function_call_output", "call_id",
                      json_object_get(call, "call_id"), "output",
                      "{\"temp_c\": 21, \"sky\": \"clear\"}");
    TG_IT_CHECK(input != NULL);
    text = json_dumps(input, JSON_COMPACT);
    TG_IT_CHECK(text != NULL);
    loop_round(f, stream, text, &resp);
    expect_text(&resp, stream);
    tg_it_resp_fini(&resp);
    free(text);
    json_decref(input);
    json_decref(call);
}


/* ------------------------------------------------------------- tests */

static void
test_responses_json(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j, *r, *l;

    resp_fixture_init(&f);
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/responses",
                  TG_IT_H_OPENAI "x-mock-chunks: 7\r\n", RESP_BODY, &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d: %.300s",
                 resp.status, resp.body ? resp.body : "");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "response");
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "completed");
    TG_IT_CHECK_STR(tg_it_json_str(j, "output.0.content.0.type"),
                    "output_text");
    TG_IT_CHECK_INT(jint(j, "usage.output_tokens"), 14);
    TG_IT_CHECK(jint(j, "usage.input_tokens_details.cached_tokens") > 0);
    json_decref(j);
    r = record_of(&resp);
    l = ledger_of(&f, &resp);
    TG_IT_CHECK_STR(tg_it_json_str(l, "path"), "/v1/responses");
    TG_IT_CHECK_INT(jint(r, "status"), 200);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "ok");
    TG_IT_CHECK_STR(tg_it_json_str(r, "api"), "responses");
    TG_IT_CHECK_STR(tg_it_json_str(r, "model"), "gpt-4o");
    TG_IT_CHECK_STR(tg_it_json_str(r, "endpoint"), "mock-openai");
    TG_IT_CHECK(json_is_false(tg_it_json_get(r, "stream")));
    TG_IT_CHECK(jint(r, "tokens.cache_read") > 0);
    expect_tokens(r, l);
    json_decref(r);
    json_decref(l);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* GET /metrics from admin: whether it holds <needle>. */
static bool
metrics_have(int port, const char *needle)
{
    tg_it_resp_t resp;
    bool yes;

    tg_it_request(port, "GET", "/metrics", NULL, NULL, &resp);
    yes = resp.status == 200 && resp.body != NULL &&
          strstr(resp.body, needle) != NULL;
    tg_it_resp_fini(&resp);
    return yes;
}


static void
test_responses_stream(void)
{
    static const char *const order[] = {
        "response.created",           "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.completed"};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    json_t *r, *l;
    int tries;

    resp_fixture_init(&f);
    tg_it_fixture_start(&f);
    /* The key in x-api-key, as some clients send it on this API too. */
    tg_it_request(f.port, "POST", "/v1/responses",
                  RESP_H_XKEY "x-mock-chunks: 3\r\n", RESP_BODY_STREAM, &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d: %s",
                 resp.status, resp.error);
    expect_events(&resp, order, TG_NELEMS(order), &s);
    tg_it_sse_fini(&s);
    r = record_of(&resp);
    l = ledger_of(&f, &resp);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "ok");
    TG_IT_CHECK_STR(tg_it_json_str(r, "api"), "responses");
    TG_IT_CHECK(json_is_true(tg_it_json_get(r, "stream")));
    TG_IT_CHECK_INT(jint(r, "tokens.output"), 6);
    TG_IT_CHECK_INT(jint(r, "tokens.reasoning"), 1);
    expect_tokens(r, l);
    json_decref(r);
    json_decref(l);
    tg_it_resp_fini(&resp);
    /* Metrics have the route's own api label (published within ~1 s). */
    for (tries = 0;
         tries < 30 &&
         !metrics_have(f.admin_port, "api=\"responses\",code=\"2xx\"");
         tries++) {
        tg_it_sleep_ms(100);
    }
    TG_IT_CHECK(metrics_have(f.admin_port, "tollgate_requests_total{endpoint="
                                           "\"mock-openai\",api=\"responses\","
                                           "code=\"2xx\"} 1"));
    tg_it_fixture_stop(&f);
}


#define ERIN_KEY "tg-it-erin-responses-0123"
#define RITA_KEY "tg-it-rita-responses-0123"
#define ERIN_H                                                                 \
    "authorization: Bearer " ERIN_KEY "\r\ncontent-type: application/json\r\n"

/* While a stream of <body> by erin runs, send a small request by erin:
 * it must get <status> (200, or 429 for the daily quota). */
static void
beside(int port, const char *body, int status)
{
    static const char small[] =
        "{\"model\":\"gpt-4o\",\"input\":\"Hi\",\"max_output_tokens\":16}";
    tg_it_resp_t resp;
    tg_it_conn_t c;
    const char *msg;
    char *raw;
    json_t *j;

    tg_it_conn_open(&c, port);
    raw = tg_it_request_build("POST", "/v1/responses",
                              ERIN_H "x-mock-delay-ms: 300\r\n", body);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    /* Its head arrived: it was admitted and holds its estimate. */
    TG_IT_CHECK(tg_it_conn_wait(&c, 12, 5000) == TG_OK);
    tg_it_request(port, "POST", "/v1/responses", ERIN_H, small, &resp);
    if (status == 200) {
        TG_IT_CHECKF(resp.status == 200, "status %d: %.300s", resp.status,
                     resp.body ? resp.body : "");
    } else {
        expect_openai_error(&resp, 429, "rate_limit_error",
                            "rate_limit_exceeded");
        j = tg_it_json(&resp);
        msg = tg_it_json_str(j, "error.message");
        TG_IT_CHECKF(msg != NULL && strstr(msg, "daily token quota") != NULL,
                     "not a quota refusal: %s", msg ? msg : "(none)");
        json_decref(j);
    }
    tg_it_resp_fini(&resp);
    TG_IT_CHECK(tg_it_conn_read(&c, &resp, 10000) == TG_OK);
    TG_IT_CHECK(resp.status == 200 && resp.complete);
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
}


static void
test_responses_refusals(void)
{
    static const char big[] = "{\"model\":\"gpt-4o\",\"input\":\"Hi\","
                              "\"stream\":true,\"max_output_tokens\":5000}";
    static const char small_stream[] =
        "{\"model\":\"gpt-4o\",\"input\":\"Hi\",\"stream\":true,"
        "\"max_output_tokens\":16}";
    static const char small[] =
        "{\"model\":\"gpt-4o\",\"input\":\"Hi\",\"max_output_tokens\":16}";
    tg_it_fixture_t f;
    tg_it_resp_t resp;

    resp_fixture_init(&f);
    tg_it_conf_set(&f.conf, "users",
                   "( { name = \"erin\"; quota_tokens = 1000; quota_period = "
                   "\"day\"; keys = ( \"" ERIN_KEY "\" ); },\n"
                   "  { name = \"rita\"; keys = ( { key = \"" RITA_KEY
                   "\"; rpm = 1; burst = 1; } ); } )");
    tg_it_fixture_start(&f);
    /* A wrong key: 401 in the OpenAI shape. */
    tg_it_request(f.port, "POST", "/v1/responses",
                  "authorization: Bearer tg-it-wrong-key-0000000000\r\n"
                  "content-type: application/json\r\n",
                  RESP_BODY, &resp);
    expect_openai_error(&resp, 401, "invalid_request_error", "invalid_api_key");
    tg_it_resp_fini(&resp);
    /* A stream with max_output_tokens 16 holds a small estimate while it
     * runs (without it, the default 4096 would fill the daily 1000): a
     * request beside it passes.  With 5000, the next one is refused. */
    beside(f.port, small_stream, 200);
    beside(f.port, big, 429);
    /* Once it ended, its estimate is gone: a small request passes. */
    tg_it_request(f.port, "POST", "/v1/responses", ERIN_H, small, &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %.300s", resp.status,
                 resp.body ? resp.body : "");
    tg_it_resp_fini(&resp);
    /* rpm 1: the second request within the minute is refused. */
    tg_it_request(f.port, "POST", "/v1/responses",
                  "authorization: Bearer " RITA_KEY "\r\n", small, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/responses",
                  "authorization: Bearer " RITA_KEY "\r\n", small, &resp);
    expect_openai_error(&resp, 429, "rate_limit_error", "rate_limit_exceeded");
    TG_IT_CHECK(tg_it_resp_header(&resp, "retry-after", (char[16]){0}, 16) !=
                NULL);
    tg_it_resp_fini(&resp);
    /* A wrong method: 405 in the OpenAI shape. */
    tg_it_request(f.port, "GET", "/v1/responses", TG_IT_H_OPENAI, NULL, &resp);
    expect_openai_error(&resp, 405, "invalid_request_error", NULL);
    tg_it_resp_fini(&resp);
    /* The API's other paths are not proxied: 404 in the OpenAI shape. */
    tg_it_request(f.port, "GET", "/v1/responses/resp_0123", TG_IT_H_OPENAI,
                  NULL, &resp);
    expect_openai_error(&resp, 404, "not_found_error", "not_found");
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_responses_failover(void)
{
    tg_it_fixture_t f;
    tg_it_proc_t bad;
    tg_it_resp_t resp;
    const char *const fault[] = {"--fault", "500", NULL};
    const char *const msgs[] = {"\"path\":\"/v1/messages\"", NULL};
    const char *const tried[] = {"bad:500,good:200", NULL};
    char ledger[4096];
    json_t *r;
    int bad_port = tg_it_port_free();

    resp_fixture_init(&f);
    /* An Anthropic endpoint first in every order: never tried, since the
     * Responses API is not translated. */
    tg_it_conf_set(&f.conf, "endpoints",
                   "( { name = \"anth\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"anthropic\"; credential = \"" TG_IT_CRED "\"; "
                   "priority = \"primary\"; health_interval = 0; },\n"
                   "  { name = \"bad\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "priority = \"primary\"; health_interval = 0; },\n"
                   "  { name = \"good\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "priority = \"secondary\"; health_interval = 0; } )",
                   f.mock_port, bad_port, f.mock_port);
    tg_it_path(ledger, sizeof(ledger), "bad-ledger.jsonl");
    tg_it_mock_start(&bad, "mock-bad", bad_port, ledger, fault);
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/responses", TG_IT_H_OPENAI,
                  RESP_BODY_STREAM, &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d: %.300s",
                 resp.status, resp.body ? resp.body : "");
    r = record_of(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(r, "endpoint"), "good");
    TG_IT_CHECK_INT(jint(r, "attempts"), 2);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "ok");
    json_decref(r);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.access_log, tried, 1, 3000), 1);
    TG_IT_CHECK_INT(tg_it_file_count(f.ledger, msgs), 0);
    tg_it_proc_stop(&bad, 5000);
    tg_it_fixture_stop(&f);
}


static void
test_responses_anthropic_only(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    const char *const any[] = {"\"path\"", NULL};
    json_t *j;
    const char *msg;

    resp_fixture_init(&f);
    tg_it_conf_set(&f.conf, "groups", "( { name = \"aonly\"; } )");
    tg_it_conf_set(&f.conf, "endpoints",
                   "( { name = \"o\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "health_interval = 0; },\n"
                   "  { name = \"a\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"anthropic\"; credential = \"" TG_IT_CRED "\"; "
                   "group = \"aonly\"; health_interval = 0; } )",
                   f.mock_port, f.mock_port);
    tg_it_conf_set(&f.conf, "keys",
                   "( \"" TG_IT_KEY "\", { key = \"" AONLY_KEY
                   "\"; group = \"aonly\"; } )");
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/responses",
                  "authorization: Bearer " AONLY_KEY "\r\n"
                  "content-type: application/json\r\n",
                  RESP_BODY, &resp);
    expect_openai_error(&resp, 404, "invalid_request_error",
                        "unsupported_route");
    j = tg_it_json(&resp);
    msg = tg_it_json_str(j, "error.message");
    TG_IT_CHECKF(msg != NULL && strstr(msg, "\"aonly\"") != NULL &&
                     strstr(msg, "OpenAI-style") != NULL,
                 "message does not name the group: %s", msg ? msg : "(none)");
    json_decref(j);
    tg_it_resp_fini(&resp);
    /* The other group's key still gets its answer. */
    tg_it_request(f.port, "POST", "/v1/responses", TG_IT_H_OPENAI, RESP_BODY,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, any, 1, 3000), 1);
    tg_it_fixture_stop(&f);
}


static void
test_responses_broken(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *r;

    resp_fixture_init(&f);
    tg_it_fixture_start(&f);
    /* The upstream resets after half of the stream: the client sees a cut
     * stream, the record says broken with its tokens unknown. */
    tg_it_request(f.port, "POST", "/v1/responses",
                  TG_IT_H_OPENAI "x-mock-fault: reset-mid\r\n",
                  RESP_BODY_STREAM, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(!resp.complete);
    TG_IT_CHECK(strstr(resp.body, "response.created") != NULL);
    TG_IT_CHECK(strstr(resp.body, "response.completed") == NULL);
    r = record_of(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "broken");
    TG_IT_CHECK_STR(tg_it_json_str(r, "api"), "responses");
    TG_IT_CHECK(json_is_false(tg_it_json_get(r, "tokens_known")));
    TG_IT_CHECK_INT(jint(r, "tokens.output"), 0);
    json_decref(r);
    tg_it_resp_fini(&resp);
    /* An error event after the 200: passed on, an upstream error. */
    tg_it_request(f.port, "POST", "/v1/responses",
                  TG_IT_H_OPENAI "x-mock-fault: error-mid\r\n",
                  RESP_BODY_STREAM, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(resp.complete);
    TG_IT_CHECK(strstr(resp.body, "event: error\n") != NULL);
    r = record_of(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(r, "outcome"), "upstream_error");
    json_decref(r);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}

/* A client that leaves a slow responses stream after its first events,
 * with usage.on_client_disconnect = <mode>: its usage record and its
 * ledger line (the caller decrefs both). */
static void
gone_run(const char *mode, json_t **rec, json_t **led)
{
    tg_it_fixture_t f;
    tg_it_conn_t c;
    char *raw;

    resp_fixture_init(&f);
    tg_it_conf_set(&f.conf, "usage.on_client_disconnect", "\"%s\"", mode);
    tg_it_fixture_start(&f);
    raw = tg_it_request_build("POST", "/v1/responses",
                              TG_IT_H_OPENAI
                              "x-mock-chunks: 10\r\nx-mock-delay-ms: 150\r\n",
                              RESP_BODY_STREAM);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    tg_it_sleep_ms(400);
    tg_it_conn_close(&c);
    *rec = line_find(usage_log, "\"outcome\":\"client_gone\"");
    *led = line_find(f.ledger, "\"path\":\"/v1/responses\"");
    tg_it_fixture_stop(&f);
    /* The next run starts with neither file. */
    TG_IT_CHECK(unlink(usage_log) == 0 && unlink(f.ledger) == 0);
}


static void
test_responses_client_gone(void)
{
    json_t *rec, *led;

    /* drain: the upstream is read to its end, the record has its usage. */
    gone_run("drain", &rec, &led);
    TG_IT_CHECK(json_is_true(tg_it_json_get(led, "completed")));
    TG_IT_CHECK_STR(tg_it_json_str(rec, "api"), "responses");
    expect_tokens(rec, led);
    TG_IT_CHECK_INT(jint(rec, "tokens.output"), 20);
    json_decref(rec);
    json_decref(led);
    /* cancel: cut at once, the tokens are not known. */
    gone_run("cancel", &rec, &led);
    TG_IT_CHECK(json_is_false(tg_it_json_get(led, "completed")));
    TG_IT_CHECK(json_is_false(tg_it_json_get(rec, "tokens_known")));
    TG_IT_CHECK_INT(jint(rec, "tokens.output"), 0);
    json_decref(rec);
    json_decref(led);
}


/* The endpoint that served a responses request with prompt_cache_key
 * <conv> (from its usage record). */
static char *
served_by(int port, const char *conv)
{
    tg_it_resp_t resp;
    char body[256], *ep;
    json_t *r;

    snprintf(body, sizeof(body),
             "{\"model\":\"gpt-4o\",\"input\":\"Hi\",\"instructions\":"
             "\"You are a coding agent.\",\"prompt_cache_key\":\"%s\"}",
             conv);
    tg_it_request(port, "POST", "/v1/responses", TG_IT_H_OPENAI, body, &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %.300s", resp.status,
                 resp.body ? resp.body : "");
    r = record_of(&resp);
    ep = strdup(tg_it_json_str(r, "endpoint"));
    TG_IT_CHECK(ep != NULL);
    json_decref(r);
    tg_it_resp_fini(&resp);
    return ep;
}


static void
test_responses_sticky(void)
{
    tg_it_fixture_t f;
    char conv[32], *home, *ep, *first = NULL;
    bool spread = false;
    int i, k;

    resp_fixture_init(&f);
    tg_it_conf_set(&f.conf, "groups",
                   "( { name = \"default\"; strategy = \"round-robin\"; "
                   "sticky = true; } )");
    tg_it_conf_set(&f.conf, "endpoints",
                   "( { name = \"o1\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "health_interval = 0; },\n"
                   "  { name = \"o2\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "health_interval = 0; },\n"
                   "  { name = \"o3\"; url = \"http://127.0.0.1:%d\"; "
                   "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
                   "health_interval = 0; } )",
                   f.mock_port, f.mock_port, f.mock_port);
    tg_it_fixture_start(&f);
    /* One conversation (Codex's prompt_cache_key) stays on one endpoint
     * though round-robin would spread its requests. */
    home = served_by(f.port, "conv-main");
    for (i = 0; i < 8; i++) {
        ep = served_by(f.port, "conv-main");
        TG_IT_CHECK_STR(ep, home);
        free(ep);
    }
    /* Other conversations, each sticking to its own, not all to one. */
    for (k = 0; k < 6; k++) {
        snprintf(conv, sizeof(conv), "conv-%02d", k);
        ep = served_by(f.port, conv);
        for (i = 0; i < 2; i++) {
            char *again = served_by(f.port, conv);

            TG_IT_CHECK_STR(again, ep);
            free(again);
        }
        if (first == NULL) {
            first = ep;
        } else {
            spread = spread || strcmp(first, ep) != 0;
            free(ep);
        }
    }
    TG_IT_CHECK(spread);
    free(first);
    free(home);
    tg_it_fixture_stop(&f);
}


static void
test_responses_tools(void)
{
    tg_it_fixture_t f;

    resp_fixture_init(&f);
    tg_it_fixture_start(&f);
    agent_loop(&f, false);
    agent_loop(&f, true);
    tg_it_fixture_stop(&f);
}


static void
test_responses_sdk(void)
{
    tg_it_fixture_t f;
    char url[64], out[8192];
    char *argv[] = {"/usr/bin/env", "node", "tests/sdk/responses.mjs", url,
                    TG_IT_KEY,      NULL};
    const char *const recs[] = {"\"api\":\"responses\"", "\"outcome\":\"ok\"",
                                NULL};
    int rc;

    if (access("tests/sdk/node_modules/openai/package.json", R_OK) != 0) {
        tg_it_fail(__FILE__, __LINE__,
                   "the OpenAI SDK is not installed in tests/sdk/node_modules; "
                   "run `make deps` (or `npm ci` in tests/sdk)");
    }
    resp_fixture_init(&f);
    tg_it_fixture_start(&f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
    rc = tg_it_run(argv, out, sizeof(out), 30000);
    tg_it_note("%s", out);
    TG_IT_CHECK_INT(rc, 0);
    TG_IT_CHECK(strstr(out, "ok   openai sdk: streamed response") != NULL);
    TG_IT_CHECK(strstr(out, "ok   openai sdk: streamed function call round "
                            "trip") != NULL);
    TG_IT_CHECK(strstr(out, "FAIL") == NULL);
    /* Seven answered requests (two round trips of two), each recorded as
     * ok on the route's api. */
    TG_IT_CHECK_INT(tg_it_file_wait_count(usage_log, recs, 7, 3000), 7);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_responses_tests[] = {
    {"a non-streamed response passes through and its record equals the "
     "mock ledger (cached and reasoning tokens)",
     test_responses_json},
    {"a streamed response passes every response.* event in order and its "
     "record equals the mock ledger",
     test_responses_stream},
    {"responses refusals are OpenAI-shaped: wrong key, quota with "
     "max_output_tokens, rpm, method",
     test_responses_refusals},
    {"responses fail over from a 500ing OpenAI endpoint and never go to an "
     "Anthropic one",
     test_responses_failover},
    {"a group with only Anthropic endpoints gets a 404 naming the group",
     test_responses_anthropic_only},
    {"a broken responses stream is recorded as broken, an error event as "
     "upstream_error",
     test_responses_broken},
    {"a client that leaves a responses stream: drained to its usage, or "
     "cut with its tokens unknown",
     test_responses_client_gone},
    {"responses of one prompt_cache_key stay on one endpoint of a sticky "
     "group",
     test_responses_sticky},
    {"a responses agent loop, streamed and not: a function call whose "
     "argument fragments make valid JSON, then text for its output; events "
     "unchanged, records equal to the mock ledger",
     test_responses_tools},
    {"the official OpenAI SDK creates responses and runs a function call "
     "round trip, streamed and not",
     test_responses_sdk},
    {NULL, NULL}};
