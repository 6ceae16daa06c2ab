/*
 * tests/integration/test_proxy.c
 *      Proxying: round trips on both APIs, streaming, keys, routing, local
 *      answers, retries, broken streams, keep-alive, pipelining and the
 *      headers sent upstream.
 *
 * NOTES
 *      Each test starts its own mock upstream and tollgate (the fixture in
 *      harness.c).  The mock runs with --require-key TG_IT_CRED, so any
 *      200 that went through it proves tollgate swapped the client key for
 *      the endpoint credential; its ledger records what it answered.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>


/* The count of ledger lines holding all <needles>, waited for. */
static int
ledger_wait(const char *ledger, int want, const char *const needles[])
{
    return tg_it_file_wait_count(ledger, needles, want, 3000);
}


/* Check that <resp> is a complete 200 and return its JSON body. */
static json_t *
expect_json_200(const tg_it_resp_t *resp)
{
    TG_IT_CHECKF(resp->status == 200, "status %d, body: %.300s", resp->status,
                 resp->body ? resp->body : "");
    TG_IT_CHECKF(resp->complete, "body incomplete: %s", resp->error);
    return tg_it_json(resp);
}


/* Check the body of an Anthropic Messages response. */
static void
check_message(json_t *j)
{
    json_t *in = tg_it_json_get(j, "usage.input_tokens");
    json_t *out = tg_it_json_get(j, "usage.output_tokens");
    const char *id = tg_it_json_str(j, "id");
    const char *text = tg_it_json_str(j, "content.0.text");

    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "message");
    TG_IT_CHECK_STR(tg_it_json_str(j, "role"), "assistant");
    TG_IT_CHECK_STR(tg_it_json_str(j, "model"), "claude-sonnet-4-5");
    TG_IT_CHECK(id != NULL && strncmp(id, "msg_", 4) == 0);
    TG_IT_CHECK_STR(tg_it_json_str(j, "content.0.type"), "text");
    TG_IT_CHECK(text != NULL && text[0] != '\0');
    TG_IT_CHECK_STR(tg_it_json_str(j, "stop_reason"), "end_turn");
    TG_IT_CHECK(json_is_integer(in) && json_integer_value(in) > 0);
    TG_IT_CHECK(json_is_integer(out) && json_integer_value(out) > 0);
}


/* Check the body of an OpenAI Chat Completions response. */
static void
check_completion(json_t *j)
{
    json_t *p = tg_it_json_get(j, "usage.prompt_tokens");
    json_t *c = tg_it_json_get(j, "usage.completion_tokens");
    json_t *t = tg_it_json_get(j, "usage.total_tokens");
    const char *text = tg_it_json_str(j, "choices.0.message.content");

    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "chat.completion");
    TG_IT_CHECK_STR(tg_it_json_str(j, "model"), "gpt-4o");
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.message.role"), "assistant");
    TG_IT_CHECK(text != NULL && text[0] != '\0');
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.finish_reason"), "stop");
    TG_IT_CHECK(json_is_integer(p) && json_integer_value(p) > 0);
    TG_IT_CHECK(json_is_integer(c) && json_integer_value(c) > 0);
    TG_IT_CHECK(json_is_integer(t));
    TG_IT_CHECK_INT(json_integer_value(t),
                    json_integer_value(p) + json_integer_value(c));
}


/* Index of the first event named <name> in <s> at or after <from>; -1. */
static int
sse_find(const tg_it_sse_t *s, const char *name, size_t from)
{
    size_t i;

    for (i = from; i < s->n; i++) {
        if (strcmp(s->event[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}


/*
 * Check an Anthropic event stream: message_start first, one content block
 * holding <deltas> text deltas, message_delta and message_stop last, every
 * data a JSON object whose "type" is the event name.
 */
static void
check_message_stream(const tg_it_resp_t *resp, int deltas)
{
    tg_it_sse_t s;
    int start, stop, ndelta = 0, first_delta = -1, last_delta = -1;
    size_t i;

    tg_it_sse_parse(&s, resp->body, resp->body_len);
    TG_IT_CHECKF(s.n >= 5, "only %zu events", s.n);
    for (i = 0; i < s.n; i++) {
        json_error_t err;
        json_t *d = json_loads(s.data[i], 0, &err);

        TG_IT_CHECKF(d != NULL, "event %zu (%s) data is not JSON: %s", i,
                     s.event[i], s.data[i]);
        TG_IT_CHECK_STR(tg_it_json_str(d, "type"), s.event[i]);
        if (strcmp(s.event[i], "content_block_delta") == 0) {
            TG_IT_CHECK_STR(tg_it_json_str(d, "delta.type"), "text_delta");
            ndelta++;
            last_delta = (int)i;
            if (first_delta < 0) {
                first_delta = (int)i;
            }
        }
        json_decref(d);
    }
    TG_IT_CHECK_STR(s.event[0], "message_start");
    TG_IT_CHECK_STR(s.event[s.n - 1], "message_stop");
    TG_IT_CHECK_STR(s.event[s.n - 2], "message_delta");
    TG_IT_CHECK_INT(ndelta, deltas);
    start = sse_find(&s, "content_block_start", 0);
    stop = sse_find(&s, "content_block_stop", 0);
    TG_IT_CHECK(start > 0 && start < first_delta);
    TG_IT_CHECK(stop > last_delta && stop < (int)s.n - 2);
    TG_IT_CHECK_INT(sse_find(&s, "message_start", 1), -1);
    TG_IT_CHECK_INT(sse_find(&s, "message_stop", 0), (int)s.n - 1);
    TG_IT_CHECK_INT(sse_find(&s, "error", 0), -1);
    tg_it_sse_fini(&s);
}


/*
 * Check an OpenAI chunk stream with include_usage: chat.completion.chunk
 * objects, <deltas> content deltas, a finish_reason "stop" chunk, then the
 * usage chunk (no choices), then "data: [DONE]" last.
 */
static void
check_completion_stream(const tg_it_resp_t *resp, int deltas)
{
    tg_it_sse_t s;
    int ncontent = 0;
    size_t i;
    json_t *d;

    tg_it_sse_parse(&s, resp->body, resp->body_len);
    TG_IT_CHECKF(s.n >= 4, "only %zu events", s.n);
    TG_IT_CHECK_STR(s.data[s.n - 1], "[DONE]");
    for (i = 0; i + 1 < s.n; i++) {
        const char *content;

        d = json_loads(s.data[i], 0, NULL);
        TG_IT_CHECKF(d != NULL, "chunk %zu is not JSON: %s", i, s.data[i]);
        TG_IT_CHECK_STR(s.event[i], "message");
        TG_IT_CHECK_STR(tg_it_json_str(d, "object"), "chat.completion.chunk");
        content = tg_it_json_str(d, "choices.0.delta.content");
        if (content != NULL && content[0] != '\0') {
            ncontent++;
        }
        if (i + 2 < s.n) {
            /* With include_usage every chunk but the last has usage null. */
            TG_IT_CHECK(json_is_null(tg_it_json_get(d, "usage")));
        }
        if (i + 3 == s.n) {
            TG_IT_CHECK_STR(tg_it_json_str(d, "choices.0.finish_reason"),
                            "stop");
        }
        if (i + 2 == s.n) {
            json_t *choices = tg_it_json_get(d, "choices");
            json_t *p = tg_it_json_get(d, "usage.prompt_tokens");
            json_t *c = tg_it_json_get(d, "usage.completion_tokens");

            TG_IT_CHECK(json_is_array(choices) &&
                        json_array_size(choices) == 0);
            TG_IT_CHECK(json_is_integer(p) && json_integer_value(p) > 0);
            TG_IT_CHECK(json_is_integer(c) && json_integer_value(c) > 0);
            TG_IT_CHECK(
                json_is_integer(tg_it_json_get(d, "usage.total_tokens")));
        }
        json_decref(d);
    }
    TG_IT_CHECK_INT(ncontent, deltas);
    tg_it_sse_fini(&s);
}


/* Check that <resp> is a cleanly ended chunked event stream. */
static void
expect_stream_200(const tg_it_resp_t *resp)
{
    char v[256];

    TG_IT_CHECKF(resp->status == 200, "status %d, body: %.300s", resp->status,
                 resp->body ? resp->body : "");
    TG_IT_CHECK_STR(tg_it_resp_header(resp, "content-type", v, sizeof(v)),
                    "text/event-stream");
    TG_IT_CHECK(resp->chunked);
    TG_IT_CHECKF(resp->complete, "stream did not end cleanly: %s", resp->error);
    TG_IT_CHECK(!resp->bad_framing);
}


static void
test_message_round_trip(void)
{
    static const char *const ok[] = {"\"path\":\"/v1/messages\"",
                                     "\"status\":200", "\"stream\":false",
                                     NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char v[256];
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);

    /* The control: the mock itself refuses the client's key, so only the
     * endpoint credential can get a 200 through it. */
    tg_it_request(f.mock_port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    tg_it_resp_fini(&resp);

    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    j = expect_json_200(&resp);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "content-type", v, sizeof(v)),
                    "application/json");
    TG_IT_CHECK(tg_it_resp_header(&resp, "x-tollgate-request-id", v,
                                  sizeof(v)) != NULL);
    check_message(j);
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 1, ok), 1);
    tg_it_fixture_stop(&f);
}


static void
test_message_stream(void)
{
    static const char *const ok[] = {"\"path\":\"/v1/messages\"",
                                     "\"stream\":true", "\"status\":200",
                                     "\"completed\":true", NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-chunks: 7\r\n",
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    expect_stream_200(&resp);
    check_message_stream(&resp, 7);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 1, ok), 1);
    tg_it_fixture_stop(&f);
}


static void
test_chat_round_trip(void)
{
    static const char *const ok[] = {"\"path\":\"/v1/chat/completions\"",
                                     "\"status\":200", NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  TG_IT_BODY_CHAT, &resp);
    j = expect_json_200(&resp);
    check_completion(j);
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 1, ok), 1);
    tg_it_fixture_stop(&f);
}


static void
test_chat_stream(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  TG_IT_H_OPENAI "x-mock-chunks: 6\r\n", TG_IT_BODY_CHAT_STREAM,
                  &resp);
    expect_stream_200(&resp);
    check_completion_stream(&resp, 6);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_key_forms_and_beta_query(void)
{
    static const struct {
        const char *path;
        const char *headers;
        const char *body;
    } cases[] = {
        {"/v1/messages",
         "x-api-key: " TG_IT_KEY "\r\nanthropic-version: 2023-06-01\r\n",
         TG_IT_BODY_MESSAGES},
        {"/v1/messages",
         "authorization: Bearer " TG_IT_KEY
         "\r\nanthropic-version: 2023-06-01\r\n",
         TG_IT_BODY_MESSAGES},
        {"/v1/chat/completions", "x-api-key: " TG_IT_KEY "\r\n",
         TG_IT_BODY_CHAT},
        {"/v1/chat/completions", "Authorization: Bearer " TG_IT_KEY "\r\n",
         TG_IT_BODY_CHAT},
        {"/v1/messages?beta=true",
         "x-api-key: " TG_IT_KEY "\r\nanthropic-version: 2023-06-01\r\n"
         "anthropic-beta: token-efficient-tools-2025-02-19\r\n",
         TG_IT_BODY_MESSAGES},
        {"/v1/messages/count_tokens?beta=true",
         "x-api-key: " TG_IT_KEY "\r\nanthropic-version: 2023-06-01\r\n",
         TG_IT_BODY_MESSAGES},
    };
    static const char *const msgs[] = {"\"path\":\"/v1/messages\"",
                                       "\"status\":200", NULL};
    static const char *const chats[] = {"\"path\":\"/v1/chat/completions\"",
                                        "\"status\":200", NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    size_t i;
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    for (i = 0; i < TG_NELEMS(cases); i++) {
        tg_it_note("POST %s with %.40s", cases[i].path, cases[i].headers);
        tg_it_request(f.port, "POST", cases[i].path, cases[i].headers,
                      cases[i].body, &resp);
        j = expect_json_200(&resp);
        if (strstr(cases[i].path, "count_tokens") != NULL) {
            TG_IT_CHECK(json_is_integer(tg_it_json_get(j, "input_tokens")));
        } else if (strstr(cases[i].path, "messages") != NULL) {
            check_message(j);
        } else {
            check_completion(j);
        }
        json_decref(j);
        tg_it_resp_fini(&resp);
    }
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 3, msgs), 3);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 2, chats), 2);
    tg_it_fixture_stop(&f);
}


static void
test_first_chunk_early(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    uint64_t sent, t_first, t_last;
    const char *first, *last = NULL, *p;
    char *raw;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 10\r\n"
                                                "x-mock-delay-ms: 200\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    tg_it_conn_open(&c, f.port);
    sent = tg_it_now_ms();
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    TG_IT_CHECK(tg_it_conn_read(&c, &resp, 20000) == TG_OK);
    tg_it_conn_close(&c);
    free(raw);
    expect_stream_200(&resp);
    check_message_stream(&resp, 10);
    /* Arrival of the first and the last text delta. */
    first = strstr(resp.body, "event: content_block_delta");
    for (p = first; p != NULL;
         p = strstr(p + 1, "event: content_block_delta")) {
        last = p;
    }
    TG_IT_CHECK(first != NULL && last != NULL);
    t_first = tg_it_resp_arrival(&resp, (size_t)(first - resp.body));
    t_last = tg_it_resp_arrival(&resp, (size_t)(last - resp.body));
    TG_IT_CHECK(t_first != 0 && t_last != 0);
    tg_it_note("after the request: head %llu ms, first byte %llu ms, first "
               "delta %llu ms, last delta %llu ms, end %llu ms, %zu reads",
               (unsigned long long)(resp.t_head_ms - sent),
               (unsigned long long)(resp.t_first_ms - sent),
               (unsigned long long)(t_first - sent),
               (unsigned long long)(t_last - sent),
               (unsigned long long)(resp.t_end_ms - sent), resp.nmarks);
    /* The upstream sends a delta every 200 ms.  A proxy that buffered the
     * stream, all of it or all but its first write, would deliver the
     * deltas together with the end. */
    TG_IT_CHECKF(resp.t_first_ms - sent < 1000,
                 "first body byte only after %llu ms",
                 (unsigned long long)(resp.t_first_ms - sent));
    TG_IT_CHECKF(t_first - sent < 1000, "first delta only after %llu ms",
                 (unsigned long long)(t_first - sent));
    TG_IT_CHECKF(t_last - t_first >= 1200,
                 "the first delta arrived only %llu ms before the last, "
                 "expected >= 1200",
                 (unsigned long long)(t_last - t_first));
    TG_IT_CHECKF(resp.nmarks >= 10, "the stream came in %zu reads",
                 resp.nmarks);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_models_and_healthz(void)
{
    static const char *const keys[] = {"type",       "id",     "display_name",
                                       "created_at", "object", "created",
                                       "owned_by"};
    static const char *const auth[] = {"x-api-key: " TG_IT_KEY "\r\n",
                                       "authorization: Bearer " TG_IT_KEY
                                       "\r\n"};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j, *data, *item;
    size_t i, k, a;
    bool saw_gpt = false;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "models",
                   "( \"claude-sonnet-4-5\", { id = \"gpt-4o\"; display_name "
                   "= \"GPT-4o\"; created = 1715367049; owned_by = "
                   "\"openai\"; } )");
    tg_it_fixture_start(&f);
    for (a = 0; a < TG_NELEMS(auth); a++) {
        tg_it_request(f.port, "GET", "/v1/models", auth[a], NULL, &resp);
        j = expect_json_200(&resp);
        TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "list");
        TG_IT_CHECK(json_is_false(tg_it_json_get(j, "has_more")));
        data = tg_it_json_get(j, "data");
        TG_IT_CHECK(json_is_array(data) && json_array_size(data) == 2);
        TG_IT_CHECK_STR(tg_it_json_str(j, "first_id"), "claude-sonnet-4-5");
        TG_IT_CHECK_STR(tg_it_json_str(j, "last_id"), "gpt-4o");
        for (i = 0; i < json_array_size(data); i++) {
            item = json_array_get(data, i);
            for (k = 0; k < TG_NELEMS(keys); k++) {
                TG_IT_CHECKF(json_object_get(item, keys[k]) != NULL,
                             "model %zu has no \"%s\"", i, keys[k]);
            }
            TG_IT_CHECK_STR(tg_it_json_str(item, "type"), "model");
            TG_IT_CHECK_STR(tg_it_json_str(item, "object"), "model");
            TG_IT_CHECK(json_is_integer(json_object_get(item, "created")));
            TG_IT_CHECK(json_is_string(json_object_get(item, "created_at")));
            if (strcmp(tg_it_json_str(item, "id"), "gpt-4o") == 0) {
                saw_gpt = true;
                TG_IT_CHECK_STR(tg_it_json_str(item, "display_name"), "GPT-4o");
                TG_IT_CHECK_STR(tg_it_json_str(item, "owned_by"), "openai");
                TG_IT_CHECK_INT(
                    json_integer_value(json_object_get(item, "created")),
                    1715367049);
                TG_IT_CHECK_STR(tg_it_json_str(item, "created_at"),
                                "2024-05-10T18:50:49Z");
            }
        }
        TG_IT_CHECK(saw_gpt);
        json_decref(j);
        tg_it_resp_fini(&resp);
    }

    /* /healthz needs no key. */
    tg_it_request(f.port, "GET", "/healthz", NULL, NULL, &resp);
    j = expect_json_200(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "ok");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_429_passes_through(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char v[64];
    json_t *j;

    tg_it_fixture_init(&f);
    /* One endpoint per style, and no translation: each request has no
     * other endpoint to go to. */
    tg_it_conf_set(&f.conf, "groups",
                   "( { name = \"default\"; translate = false; } )");
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: 429:1\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 429);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "retry-after", v, sizeof(v)), "1");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "rate_limit_error");
    json_decref(j);
    tg_it_resp_fini(&resp);

    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  TG_IT_H_OPENAI "x-mock-fault: 429:3\r\n", TG_IT_BODY_CHAT,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 429);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "retry-after", v, sizeof(v)), "3");
    j = tg_it_json(&resp);
    TG_IT_CHECK(tg_it_json_get(j, "error.message") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);

    /* The only anthropic endpoint now cools down for its retry-after:
     * a request meanwhile gets a 429 from tollgate itself, with the time
     * left, and once it has passed the endpoint serves again. */
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    if (resp.status == 429) {
        TG_IT_CHECK(tg_it_resp_header(&resp, "retry-after", v, sizeof(v)) !=
                    NULL);
        TG_IT_CHECK(atoi(v) >= 1 && atoi(v) <= 2);
        j = tg_it_json(&resp);
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "rate_limit_error");
        json_decref(j);
    } else {
        /* Only when this machine took over a second to get here. */
        TG_IT_CHECK_INT(resp.status, 200);
    }
    tg_it_resp_fini(&resp);
    tg_it_sleep_ms(1600);
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_500_retried_on_other_endpoint(void)
{
    static const char *const bad[] = {"\"path\":\"/v1/messages\"",
                                      "\"status\":500", NULL};
    static const char *const good[] = {"\"path\":\"/v1/messages\"",
                                       "\"status\":200", NULL};
    static const char *const fault[] = {"--fault", "500", NULL};
    tg_it_fixture_t f;
    tg_it_proc_t good_mock;
    tg_it_resp_t resp;
    char e1[512], e2[512], ledger2[4096];
    int port2, i;
    json_t *j;

    tg_it_fixture_init(&f);
    port2 = tg_it_port_free();
    tg_it_path(ledger2, sizeof(ledger2), "ledger-good.jsonl");
    /* Every request goes to the failing primary first. */
    tg_it_endpoint(e1, sizeof(e1), "failing", f.mock_port, "anthropic",
                   "primary");
    tg_it_endpoint(e2, sizeof(e2), "healthy", port2, "anthropic", "secondary");
    tg_it_conf_set(&f.conf, "endpoints", "( %s, %s )", e1, e2);
    f.mock_args[0] = fault[0];
    f.mock_args[1] = fault[1];
    tg_it_mock_start(&good_mock, "mock-good", port2, ledger2, NULL);
    tg_it_fixture_start(&f);
    for (i = 0; i < 3; i++) {
        tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                      TG_IT_BODY_MESSAGES, &resp);
        j = expect_json_200(&resp);
        check_message(j);
        json_decref(j);
        tg_it_resp_fini(&resp);
    }
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-chunks: 3\r\n",
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    expect_stream_200(&resp);
    check_message_stream(&resp, 3);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 4, bad), 4);
    TG_IT_CHECK_INT(ledger_wait(ledger2, 4, good), 4);
    tg_it_fixture_stop(&f);
    tg_it_proc_stop(&good_mock, 5000);
}


static void
test_reset_mid_stream_is_broken(void)
{
    static const char *const hdrs[] = {
        TG_IT_H_ANTHROPIC "x-mock-chunks: 10\r\nx-mock-delay-ms: 30\r\n"
                          "x-mock-fault: reset-mid\r\n",
        TG_IT_H_OPENAI "x-mock-chunks: 10\r\nx-mock-delay-ms: 30\r\n"
                       "x-mock-fault: reset-mid\r\n",
    };
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    int round, api;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    for (round = 0; round < 3; round++) {
        for (api = 0; api < 2; api++) {
            tg_it_request(
                f.port, "POST",
                api == 0 ? "/v1/messages" : "/v1/chat/completions", hdrs[api],
                api == 0 ? TG_IT_BODY_MESSAGES_STREAM : TG_IT_BODY_CHAT_STREAM,
                &resp);
            TG_IT_CHECK_INT(resp.status, 200);
            TG_IT_CHECK(resp.chunked);
            TG_IT_CHECKF(!resp.complete,
                         "an upstream reset ended in a clean end of stream "
                         "(%zu body bytes)",
                         resp.body_len);
            TG_IT_CHECKF(resp.closed, "connection not closed: %s", resp.error);
            TG_IT_CHECK(!resp.bad_framing);
            /* Some events got through before the reset. */
            TG_IT_CHECK(resp.body_len > 0);
            tg_it_resp_fini(&resp);
        }
    }
    /* A broken stream does not hurt the next request. */
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    expect_stream_200(&resp);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_client_leaves_mid_stream(void)
{
    static const char *const aborted[] = {"\"stream\":true",
                                          "\"completed\":false", NULL};
    tg_it_fixture_t f;
    tg_it_conn_t c;
    uint64_t left_at;
    char *raw;
    int n;

    tg_it_fixture_init(&f);
    /* Draining for usage is the default; this is the other choice. */
    tg_it_conf_set(&f.conf, "usage.on_client_disconnect", "\"cancel\"");
    tg_it_fixture_start(&f);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 100\r\n"
                                                "x-mock-delay-ms: 100\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_wait(&c, 200, 5000) == TG_OK);
    tg_it_conn_close(&c);
    left_at = tg_it_now_ms();
    /* The upstream would stream for 10 s; it must be cut within one. */
    n = tg_it_file_wait_count(f.ledger, aborted, 1, 1500);
    TG_IT_CHECKF(n == 1,
                 "the upstream transfer was not stopped within 1.5 s of the "
                 "client leaving");
    tg_it_note("upstream stopped %llu ms after the client left",
               (unsigned long long)(tg_it_now_ms() - left_at));
    tg_it_fixture_stop(&f);
}


static void
test_upstream_failures_before_first_byte(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    uint64_t start;
    char v[64];
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "1");
    tg_it_fixture_start(&f);

    /* A reset before any byte, with no other endpoint: 502. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: reset-before\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 502);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK(tg_it_json_str(j, "error.type") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);

    /* An upstream that never answers: 504 after first_byte_timeout, in
     * the OpenAI shape on the OpenAI route. */
    start = tg_it_now_ms();
    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  TG_IT_H_OPENAI "x-mock-fault: hang\r\n", TG_IT_BODY_CHAT,
                  &resp);
    tg_it_note("504 after %llu ms",
               (unsigned long long)(tg_it_now_ms() - start));
    TG_IT_CHECK_INT(resp.status, 504);
    TG_IT_CHECK(tg_it_now_ms() - start >= 900);
    TG_IT_CHECK(tg_it_now_ms() - start < 3000);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "x-should-retry", v, sizeof(v)),
                    "true");
    j = tg_it_json(&resp);
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
    json_decref(j);
    tg_it_resp_fini(&resp);

    /* The same with a streaming request. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: slow-first-byte:5000\r\n",
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    TG_IT_CHECK_INT(resp.status, 504);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/*
 * Pipeline <n> requests for 10,000-event streams (about 1.3 MB each) on
 * <c>: more than the kernel's socket buffers (4 MB at most) hold, so a
 * client that does not read makes tollgate's writes block and its
 * upstream transfers pause.
 */
static void
send_big_streams(tg_it_conn_t *c, int n)
{
    char *raw;
    int i;

    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 10000\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    for (i = 0; i < n; i++) {
        TG_IT_CHECK(tg_it_conn_send_str(c, raw) == TG_OK);
    }
    free(raw);
}


static void
test_slow_reader(void)
{
    static const char *const done[] = {"\"stream\":true", "\"completed\":true",
                                       NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    int i;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.stream_buffer", "4096");
    tg_it_fixture_start(&f);
    tg_it_conn_open_small(&c, f.port, 8192);
    send_big_streams(&c, 5);
    tg_it_sleep_ms(1500);
    for (i = 0; i < 5; i++) {
        TG_IT_CHECKF(tg_it_conn_read(&c, &resp, 30000) == TG_OK,
                     "stream %d: %s", i, resp.error);
        expect_stream_200(&resp);
        tg_it_note("stream %d: %zu body bytes in %zu+ reads", i, resp.body_len,
                   resp.nmarks);
        check_message_stream(&resp, 10000);
        tg_it_resp_fini(&resp);
    }
    tg_it_conn_close(&c);
    TG_IT_CHECK_INT(ledger_wait(f.ledger, 5, done), 5);
    tg_it_fixture_stop(&f);
}


static void
test_send_timeout(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    uint64_t start;
    int complete = 0;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.stream_buffer", "4096");
    tg_it_conf_set(&f.conf, "limits.send_timeout", "1");
    tg_it_fixture_start(&f);
    tg_it_conn_open_small(&c, f.port, 4096);
    start = tg_it_now_ms();
    send_big_streams(&c, 5);
    /* Read nothing: tollgate must give up on this client after
     * send_timeout. */
    TG_IT_CHECKF(tg_it_file_wait(f.error_log,
                                 "client timed out reading the response", 6000),
                 "no send timeout 6 s after the client stopped reading "
                 "(send_timeout = 1 s)");
    tg_it_note("timed out after %llu ms",
               (unsigned long long)(tg_it_now_ms() - start));
    /* What was in the socket buffers still arrives, then the end. */
    while (tg_it_conn_read(&c, &resp, 10000) == TG_OK) {
        bool closed = resp.closed;

        complete += resp.complete;
        tg_it_resp_fini(&resp);
        if (closed) {
            break;
        }
    }
    TG_IT_CHECKF(complete < 5, "all 5 streams completed anyway");
    TG_IT_CHECK(c.eof || c.reset);
    tg_it_conn_close(&c);
    tg_it_fixture_stop(&f);
}


static void
test_keep_alive_sequence(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    uint64_t idle_at;
    char *raw;
    int i;
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.idle_timeout", "1");
    tg_it_fixture_start(&f);
    tg_it_conn_open(&c, f.port);
    for (i = 0; i < 8; i++) {
        switch (i % 4) {
        case 0:
            raw = tg_it_request_build("POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                                      TG_IT_BODY_MESSAGES);
            break;
        case 1:
            raw = tg_it_request_build("POST", "/v1/messages",
                                      TG_IT_H_ANTHROPIC "x-mock-chunks: 3\r\n",
                                      TG_IT_BODY_MESSAGES_STREAM);
            break;
        case 2:
            raw = tg_it_request_build("GET", "/v1/models",
                                      "x-api-key: " TG_IT_KEY "\r\n", NULL);
            break;
        default:
            raw = tg_it_request_build("POST", "/v1/chat/completions",
                                      TG_IT_H_OPENAI "x-mock-chunks: 2\r\n",
                                      TG_IT_BODY_CHAT_STREAM);
        }
        TG_IT_CHECKF(tg_it_conn_send_str(&c, raw) == TG_OK,
                     "request %d could not be sent on the kept-alive "
                     "connection",
                     i);
        free(raw);
        TG_IT_CHECKF(tg_it_conn_read(&c, &resp, TG_IT_TIMEOUT_MS) == TG_OK,
                     "request %d on the kept-alive connection: %s", i,
                     resp.error);
        TG_IT_CHECKF(resp.status == 200, "request %d: status %d", i,
                     resp.status);
        TG_IT_CHECKF(resp.complete, "request %d: %s", i, resp.error);
        TG_IT_CHECKF(!resp.closed, "request %d: connection closed", i);
        if (i % 4 == 0) {
            j = tg_it_json(&resp);
            check_message(j);
            json_decref(j);
        } else if (i % 4 == 1) {
            check_message_stream(&resp, 3);
        } else if (i % 4 == 3) {
            check_completion_stream(&resp, 2);
        }
        tg_it_resp_fini(&resp);
        if (i == 3) {
            /* Idle, but for less than idle_timeout. */
            tg_it_sleep_ms(500);
        }
    }
    idle_at = tg_it_now_ms();
    TG_IT_CHECKF(tg_it_conn_closed(&c, 3000),
                 "an idle keep-alive connection is still open after 3 s "
                 "(idle_timeout = 1 s)");
    TG_IT_CHECK(tg_it_now_ms() - idle_at >= 800);
    TG_IT_CHECK_INT(c.len, 0);
    tg_it_conn_close(&c);
    tg_it_fixture_stop(&f);
}


static void
test_pipelined_in_order(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp[5];
    tg_it_conn_t c;
    char *r[5], *all;
    size_t i;
    json_t *j;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    /* Distinguishable answers: the mock's delays make the first two slow,
     * so a proxy answering in completion order would swap them. */
    r[0] = tg_it_request_build("POST", "/v1/messages",
                               TG_IT_H_ANTHROPIC "x-mock-chunks: 4\r\n"
                                                 "x-mock-delay-ms: 100\r\n",
                               TG_IT_BODY_MESSAGES_STREAM);
    r[1] = tg_it_request_build("POST", "/v1/chat/completions",
                               TG_IT_H_OPENAI "x-mock-chunks: 2\r\n",
                               TG_IT_BODY_CHAT);
    r[2] = tg_it_request_build("GET", "/healthz", NULL, NULL);
    r[3] = tg_it_request_build("GET", "/v1/models",
                               "x-api-key: " TG_IT_KEY "\r\n", NULL);
    r[4] = tg_it_request_build("POST", "/v1/messages",
                               TG_IT_H_ANTHROPIC "x-mock-chunks: 1\r\n",
                               TG_IT_BODY_MESSAGES);
    TG_IT_CHECK(asprintf(&all, "%s%s%s%s%s", r[0], r[1], r[2], r[3], r[4]) > 0);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, all) == TG_OK);
    for (i = 0; i < 5; i++) {
        TG_IT_CHECKF(tg_it_conn_read(&c, &resp[i], TG_IT_TIMEOUT_MS) == TG_OK,
                     "pipelined response %zu: %s", i, resp[i].error);
        TG_IT_CHECKF(resp[i].status == 200 && resp[i].complete,
                     "pipelined response %zu: status %d %s", i, resp[i].status,
                     resp[i].error);
    }
    check_message_stream(&resp[0], 4);
    j = tg_it_json(&resp[1]);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "chat.completion");
    json_decref(j);
    j = tg_it_json(&resp[2]);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "ok");
    json_decref(j);
    j = tg_it_json(&resp[3]);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "list");
    json_decref(j);
    j = tg_it_json(&resp[4]);
    check_message(j);
    json_decref(j);
    for (i = 0; i < 5; i++) {
        tg_it_resp_fini(&resp[i]);
        free(r[i]);
    }
    free(all);
    tg_it_conn_close(&c);
    tg_it_fixture_stop(&f);
}


/* Whether <text> has a line "<name>: <value>" (name case-insensitive). */
static bool
has_header_line(const char *text, const char *name, const char *value)
{
    char want[512];
    const char *p;
    size_t n;

    n = (size_t)snprintf(want, sizeof(want), "%s: %s\r\n", name, value);
    for (p = text; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (strncasecmp(p, want, strlen(name)) == 0 &&
            strncmp(p + strlen(name), want + strlen(name), n - strlen(name)) ==
                0) {
            return true;
        }
    }
    return false;
}


static void
test_upstream_headers(void)
{
    tg_it_fixture_t f;
    tg_it_proc_t tap;
    tg_it_resp_t resp;
    char e1[512], e2[512], capture[4096], *sent;
    int tap_port;

    tg_it_fixture_init(&f);
    tg_it_path(capture, sizeof(capture), "upstream-requests.txt");
    do {
        tap_port = tg_it_port_free();
    } while (tap_port == f.port || tap_port == f.admin_port ||
             tap_port == f.mock_port);
    /* tollgate -> tap -> mock: the tap records the bytes tollgate sends. */
    tg_it_endpoint(e1, sizeof(e1), "a", tap_port, "anthropic", "primary");
    tg_it_endpoint(e2, sizeof(e2), "o", tap_port, "openai", "primary");
    tg_it_conf_set(&f.conf, "endpoints", "( %s, %s )", e1, e2);
    tg_it_conf_set(&f.conf, "workers", "1");
    tg_it_fixture_start(&f);
    tg_it_tap_start(&tap, tap_port, f.mock_port, capture);

    /* Both credentials forms at once, on both routes. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  "x-api-key: " TG_IT_KEY "\r\n"
                  "authorization: Bearer " TG_IT_KEY "\r\n"
                  "anthropic-version: 2023-06-01\r\n"
                  "anthropic-beta: prompt-caching-2024-07-31\r\n"
                  "x-custom-trace: abc123\r\n"
                  "content-type: application/json\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  "authorization: Bearer " TG_IT_KEY "\r\n"
                  "x-api-key: " TG_IT_KEY "\r\n"
                  "openai-organization: org-test\r\n"
                  "content-type: application/json\r\n",
                  TG_IT_BODY_CHAT, &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_resp_fini(&resp);

    sent = tg_it_file_read(capture, NULL);
    TG_IT_CHECKF(sent != NULL, "the tap recorded nothing");
    tg_it_note("sent upstream:\n%s", sent);
    TG_IT_CHECKF(strstr(sent, TG_IT_KEY) == NULL,
                 "the client key was forwarded upstream");
    TG_IT_CHECK(strstr(sent, "POST /v1/messages HTTP/1.1\r\n") != NULL);
    TG_IT_CHECK(strstr(sent, "POST /v1/chat/completions HTTP/1.1\r\n") != NULL);
    TG_IT_CHECK(has_header_line(sent, "x-api-key", TG_IT_CRED));
    TG_IT_CHECK(has_header_line(sent, "authorization", "Bearer " TG_IT_CRED));
    TG_IT_CHECK(has_header_line(sent, "anthropic-version", "2023-06-01"));
    TG_IT_CHECK(
        has_header_line(sent, "anthropic-beta", "prompt-caching-2024-07-31"));
    TG_IT_CHECK(has_header_line(sent, "x-custom-trace", "abc123"));
    TG_IT_CHECK(has_header_line(sent, "openai-organization", "org-test"));
    free(sent);
    tg_it_fixture_stop(&f);
    tg_it_proc_stop(&tap, 1000);
}


/*
 * Concurrent transfers to one plain-HTTP endpoint never queue behind each
 * other: HTTP/1.1 cannot multiplex, so each needs its own connection at
 * once.  Streams last 3 s; every head must arrive well before the first
 * stream could have ended.
 */
static void
test_concurrent_streams_start_together(void)
{
    enum { N = 50 };
    static tg_it_conn_t c[N];
    tg_it_fixture_t f;
    uint64_t start, worst = 0, t;
    char *raw;
    int i;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "10");
    tg_it_fixture_start(&f);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 30\r\n"
                                                "x-mock-delay-ms: 100\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    for (i = 0; i < N; i++) {
        tg_it_conn_open(&c[i], f.port);
    }
    start = tg_it_now_ms();
    for (i = 0; i < N; i++) {
        TG_IT_CHECK(tg_it_conn_send_str(&c[i], raw) == TG_OK);
    }
    free(raw);
    for (i = 0; i < N; i++) {
        TG_IT_CHECKF(tg_it_conn_wait(&c[i], 12, 10000) == TG_OK,
                     "stream %d got no response head", i);
        t = tg_it_now_ms() - start;
        worst = t > worst ? t : worst;
        TG_IT_CHECKF(memcmp(c[i].buf, "HTTP/1.1 200", 12) == 0,
                     "stream %d: %.12s", i, c[i].buf);
    }
    tg_it_note("%d heads within %llu ms", N, (unsigned long long)worst);
    TG_IT_CHECKF(worst < 1500,
                 "the last of %d response heads came after %llu ms: "
                 "transfers waited for each other",
                 N, (unsigned long long)worst);
    for (i = 0; i < N; i++) {
        tg_it_conn_close(&c[i]);
    }
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_proxy_tests[] = {
    {"a message round trip returns the upstream message with usage and "
     "the upstream sees the endpoint credential",
     test_message_round_trip},
    {"a streamed message arrives with all events in order and a clean "
     "chunked end",
     test_message_stream},
    {"a chat completion round trip with a bearer key returns the "
     "completion with usage",
     test_chat_round_trip},
    {"a streamed chat completion carries the usage chunk and ends with "
     "data [DONE]",
     test_chat_stream},
    {"the client key works as x-api-key or bearer on both routes and "
     "/v1/messages?beta=true is routed",
     test_key_forms_and_beta_query},
    {"the first stream chunk reaches the client before the upstream has "
     "finished",
     test_first_chunk_early},
    {"GET /v1/models items carry both Anthropic and OpenAI fields and "
     "/healthz answers without a key",
     test_models_and_healthz},
    {"an upstream 429 reaches the client with its retry-after when no other "
     "endpoint exists, and the endpoint cools down for that long",
     test_429_passes_through},
    {"an upstream 500 on one endpoint is retried on the other and the client "
     "sees 200",
     test_500_retried_on_other_endpoint},
    {"an upstream reset mid-stream reaches the client as a broken stream, "
     "never a clean end",
     test_reset_mid_stream_is_broken},
    {"a client that leaves mid-stream stops the upstream transfer with "
     "on_client_disconnect = cancel",
     test_client_leaves_mid_stream},
    {"an upstream failing before the first byte gets 502, and one not "
     "answering gets 504 after first_byte_timeout",
     test_upstream_failures_before_first_byte},
    {"a client reading slowly gets the whole stream through back-pressure",
     test_slow_reader},
    {"a client that stops reading is dropped after send_timeout",
     test_send_timeout},
    {"a keep-alive connection serves several requests in sequence, then "
     "closes after idle_timeout",
     test_keep_alive_sequence},
    {"pipelined requests are answered in order", test_pipelined_in_order},
    {"50 simultaneous streams to one plain-HTTP endpoint all get their "
     "response heads at once",
     test_concurrent_streams_start_together},
    {"the client key is not forwarded upstream while anthropic-version and "
     "anthropic-beta are",
     test_upstream_headers},
    {NULL, NULL},
};
