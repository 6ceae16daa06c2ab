/*
 * tests/integration/test_translate.c
 *      Translation through tollgate to the mock: an OpenAI client served
 *      by an Anthropic endpoint and an Anthropic client served by an
 *      OpenAI endpoint, streamed and not, with tools (an agent loop: tool
 *      call, tool result, answer), errors before and inside a stream,
 *      impossible requests, and failover that crosses styles.
 *
 * NOTES
 *      The mock answers a request that offers tools, and whose last
 *      message is not a tool result, with a call of its first tool with
 *      the arguments {"city": "Paris", "days": 3} (streamed in N pieces);
 *      otherwise with N text deltas.  Its ledger says which API each
 *      request reached; the usage log says which tokens were recorded,
 *      which must be the upstream's own counts.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XT_TEXT                                                                \
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
#define XT_ARGS "{\"city\": \"Paris\", \"days\": 3}"

static char usage_log[4096];

/* Ledger lines by API reached. */
static const char *const xt_messages[] = {"\"path\":\"/v1/messages\"", NULL};
static const char *const xt_chat[] = {"\"path\":\"/v1/chat/completions\"",
                                      NULL};

#define XT_TOOLS_OPENAI                                                        \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\","    \
    "\"description\":\"the weather\",\"parameters\":{\"type\":\"object\","     \
    "\"properties\":{\"city\":{\"type\":\"string\"}}}}}]"
#define XT_TOOLS_ANTHROPIC                                                     \
    "\"tools\":[{\"name\":\"weather\",\"description\":\"the weather\","        \
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":"          \
    "{\"type\":\"string\"}}}}]"


/* The fixture with only <styles> endpoints ("anthropic", "openai" or
 * "both", OpenAI first in config order). */
static void
xt_start(tg_it_fixture_t *f, const char *styles)
{
    char ea[512], eo[512], spool[4096];

    tg_it_fixture_init(f);
    tg_it_path(usage_log, sizeof(usage_log), "usage.log");
    tg_it_path(spool, sizeof(spool), "spool");
    tg_it_conf_set(&f->conf, "usage.log", "\"%s\"", usage_log);
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"", spool);
    tg_it_conf_set(&f->conf, "groups",
                   "( { name = \"default\"; sticky = false; } )");
    /* No health probes: they would take a counted mock fault. */
    snprintf(ea, sizeof(ea),
             "{ name = \"mock-anthropic\"; url = \"http://127.0.0.1:%d\"; "
             "style = \"anthropic\"; credential = \"" TG_IT_CRED "\"; "
             "health_interval = 0; }",
             f->mock_port);
    snprintf(eo, sizeof(eo),
             "{ name = \"mock-openai\"; url = \"http://127.0.0.1:%d\"; "
             "style = \"openai\"; credential = \"" TG_IT_CRED "\"; "
             "health_interval = 0; }",
             f->mock_port);
    if (strcmp(styles, "anthropic") == 0) {
        tg_it_conf_set(&f->conf, "endpoints", "( %s )", ea);
    } else if (strcmp(styles, "openai") == 0) {
        tg_it_conf_set(&f->conf, "endpoints", "( %s )", eo);
    } else {
        tg_it_conf_set(&f->conf, "endpoints", "( %s, %s )", eo, ea);
    }
    tg_it_fixture_start(f);
}


/* The usage record of the response <resp>: its tokens as input, output
 * and cache_read into <tok>. */
static void
xt_usage(const tg_it_resp_t *resp, long long tok[3])
{
    char id[64], needle[96], *text, *line, *nl;
    const char *const needles[] = {needle, NULL};
    json_t *j;

    TG_IT_CHECK(tg_it_resp_header(resp, "x-tollgate-request-id", id,
                                  sizeof(id)) != NULL);
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    TG_IT_CHECKF(tg_it_file_wait_count(usage_log, needles, 1, 3000) == 1,
                 "no usage record of request %s", id);
    text = tg_it_file_read(usage_log, NULL);
    TG_IT_CHECK(text != NULL);
    for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (strstr(line, needle) == NULL) {
            continue;
        }
        j = json_loads(line, 0, NULL);
        TG_IT_CHECK(j != NULL);
        tok[0] = json_integer_value(tg_it_json_get(j, "tokens.input"));
        tok[1] = json_integer_value(tg_it_json_get(j, "tokens.output"));
        tok[2] = json_integer_value(tg_it_json_get(j, "tokens.cache_read"));
        TG_IT_CHECK(json_is_true(tg_it_json_get(j, "tokens_known")));
        json_decref(j);
    }
    free(text);
}


/* Integer member <name> of the mock's last ledger line in <f>. */
static long long
xt_ledger(const tg_it_fixture_t *f, const char *name)
{
    char *text = tg_it_file_read(f->ledger, NULL), *last, *nl;
    long long v;
    json_t *j;

    TG_IT_CHECK(text != NULL && (nl = strrchr(text, '\n')) != NULL);
    *nl = '\0';
    last = strrchr(text, '\n');
    j = json_loads(last != NULL ? last + 1 : text, 0, NULL);
    TG_IT_CHECK(json_is_integer(json_object_get(j, name)));
    v = json_integer_value(json_object_get(j, name));
    json_decref(j);
    free(text);
    return v;
}


/* Concatenate every string at <path> in the JSON data of <s>'s events
 * named <event> (NULL: any) into <out> of <cap>. */
static void
xt_concat(const tg_it_sse_t *s, const char *event, const char *path, char *out,
          size_t cap)
{
    size_t i, n = 0;

    out[0] = '\0';
    for (i = 0; i < s->n; i++) {
        json_t *j;
        const char *v;

        if (event != NULL && strcmp(s->event[i], event) != 0) {
            continue;
        }
        j = json_loads(s->data[i], 0, NULL);
        v = json_string_value(tg_it_json_get(j, path));
        if (v != NULL && n + strlen(v) < cap) {
            memcpy(out + n, v, strlen(v) + 1);
            n += strlen(v);
        }
        json_decref(j);
    }
}


/* The JSON data of event <i> of <s> (the caller decrefs). */
static json_t *
xt_ev(const tg_it_sse_t *s, size_t i)
{
    json_t *j;

    TG_IT_CHECKF(i < s->n, "event %zu of %zu", i, s->n);
    j = json_loads(s->data[i], 0, NULL);
    TG_IT_CHECKF(j != NULL, "event %zu is not JSON: %s", i, s->data[i]);
    return j;
}


static void
xt_openai_client_text(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    long long tok[3];
    json_t *j;

    xt_start(&f, "anthropic");
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  "{\"model\":\"claude-sonnet-4-5\",\"messages\":["
                  "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                  "{\"role\":\"user\",\"content\":\"Hello\"}],"
                  "\"temperature\":1.5,\"stop\":\"END\",\"user\":\"u-1\","
                  "\"seed\":7}",
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "chat.completion");
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.message.role"), "assistant");
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.message.content"), XT_TEXT);
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.finish_reason"), "stop");
    TG_IT_CHECK_STR(tg_it_json_str(j, "model"), "claude-sonnet-4-5");
    /* The Anthropic endpoint was asked, and its counts are the answer's
     * and the record's. */
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_messages, 1, 3000), 1);
    TG_IT_CHECK_INT(tg_it_file_count(f.ledger, xt_chat), 0);
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.prompt_tokens")),
        xt_ledger(&f, "input_tokens"));
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.completion_tokens")), 10);
    xt_usage(&resp, tok);
    TG_IT_CHECK_INT(tok[0], xt_ledger(&f, "input_tokens"));
    TG_IT_CHECK_INT(tok[1], 10);
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
xt_openai_client_stream(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    char text[512];
    long long tok[3];
    json_t *j;

    xt_start(&f, "anthropic");
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,"
                  "\"stream_options\":{\"include_usage\":true},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}",
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    TG_IT_CHECK(resp.complete);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    TG_IT_CHECK(s.n >= 4);
    j = xt_ev(&s, 0);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "chat.completion.chunk");
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.delta.role"), "assistant");
    json_decref(j);
    xt_concat(&s, NULL, "choices.0.delta.content", text, sizeof(text));
    TG_IT_CHECK_STR(text, XT_TEXT);
    j = xt_ev(&s, s.n - 3);
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
    j = xt_ev(&s, s.n - 2);
    TG_IT_CHECK_INT(json_array_size(tg_it_json_get(j, "choices")), 0);
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.prompt_tokens")),
        xt_ledger(&f, "input_tokens"));
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.completion_tokens")), 10);
    json_decref(j);
    TG_IT_CHECK_STR(s.data[s.n - 1], "[DONE]");
    xt_usage(&resp, tok);
    TG_IT_CHECK_INT(tok[0], xt_ledger(&f, "input_tokens"));
    TG_IT_CHECK_INT(tok[1], 10);
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* An OpenAI agent loop on an Anthropic endpoint: a streamed tool call,
 * then the tool's result, then the answer. */
static void
xt_openai_client_tools(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    char args[256], id[128], *body;
    json_t *j;

    xt_start(&f, "anthropic");
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],"
                  "\"tool_choice\":\"auto\"," XT_TOOLS_OPENAI "}",
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    j = xt_ev(&s, 1);
    TG_IT_CHECK_STR(
        tg_it_json_str(j, "choices.0.delta.tool_calls.0.function.name"),
        "weather");
    TG_IT_CHECK_INT(json_integer_value(tg_it_json_get(
                        j, "choices.0.delta.tool_calls.0.index")),
                    0);
    snprintf(id, sizeof(id), "%s",
             tg_it_json_str(j, "choices.0.delta.tool_calls.0.id"));
    TG_IT_CHECK(strncmp(id, "toolu_", 6) == 0);
    json_decref(j);
    xt_concat(&s, NULL, "choices.0.delta.tool_calls.0.function.arguments", args,
              sizeof(args));
    TG_IT_CHECK_STR(args, XT_ARGS);
    j = xt_ev(&s, s.n - 2);
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.finish_reason"), "tool_calls");
    json_decref(j);
    TG_IT_CHECK_STR(s.data[s.n - 1], "[DONE]");
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);

    TG_IT_CHECK(asprintf(&body,
                         "{\"model\":\"claude-sonnet-4-5\",\"messages\":["
                         "{\"role\":\"user\",\"content\":\"Weather?\"},"
                         "{\"role\":\"assistant\",\"content\":null,"
                         "\"tool_calls\":[{\"id\":\"%s\",\"type\":"
                         "\"function\",\"function\":{\"name\":\"weather\","
                         "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
                         "{\"role\":\"tool\",\"tool_call_id\":\"%s\","
                         "\"content\":\"sunny\"}]," XT_TOOLS_OPENAI "}",
                         id, id) > 0);
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI, body,
                  &resp);
    free(body);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.message.content"), XT_TEXT);
    TG_IT_CHECK_STR(tg_it_json_str(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_messages, 2, 3000), 2);
    tg_it_fixture_stop(&f);
}


static void
xt_anthropic_client_text(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    long long tok[3];
    json_t *j;

    xt_start(&f, "openai");
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  "{\"model\":\"gpt-4o\",\"max_tokens\":64,"
                  "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\","
                  "\"cache_control\":{\"type\":\"ephemeral\"}}],"
                  "\"stop_sequences\":[\"END\"],\"top_k\":5,"
                  "\"metadata\":{\"user_id\":\"u-1\"},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
                  "\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":"
                  "\"object\",\"properties\":{\"cache_control\":{}}}}],"
                  "\"tool_choice\":{\"type\":\"none\"}}",
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "message");
    TG_IT_CHECK_STR(tg_it_json_str(j, "role"), "assistant");
    /* The mock calls the tool it was offered. */
    TG_IT_CHECK_STR(tg_it_json_str(j, "content.0.type"), "tool_use");
    TG_IT_CHECK_STR(tg_it_json_str(j, "content.0.name"), "t");
    TG_IT_CHECK_STR(tg_it_json_str(j, "content.0.input.city"), "Paris");
    TG_IT_CHECK_STR(tg_it_json_str(j, "stop_reason"), "tool_use");
    /* The translated body holds "cache_control" (a tool's property), so
     * the mock's OpenAI answer has cached_tokens = I / 2 inside
     * prompt_tokens = I; Anthropic reports them apart. */
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_chat, 1, 3000), 1);
    TG_IT_CHECK(xt_ledger(&f, "cache_read_input_tokens") > 0);
    TG_IT_CHECK_INT(json_integer_value(tg_it_json_get(j, "usage.input_tokens")),
                    xt_ledger(&f, "input_tokens") -
                        xt_ledger(&f, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.cache_read_input_tokens")),
        xt_ledger(&f, "cache_read_input_tokens"));
    xt_usage(&resp, tok);
    TG_IT_CHECK_INT(tok[0], xt_ledger(&f, "input_tokens") -
                                xt_ledger(&f, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(tok[2], xt_ledger(&f, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(tok[1], 10);
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* An Anthropic agent loop (as Claude Code runs it) on an OpenAI
 * endpoint: a streamed tool call, its result, the streamed answer. */
static void
xt_anthropic_client_tools(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    char args[256], id[128], text[512], *body;
    long long tok[3];
    json_t *j;

    xt_start(&f, "openai");
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  "{\"model\":\"gpt-4o\",\"max_tokens\":64,\"stream\":true,"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],"
                  "\"tool_choice\":{\"type\":\"any\"}," XT_TOOLS_ANTHROPIC "}",
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    TG_IT_CHECK_STR(s.event[0], "message_start");
    TG_IT_CHECK_STR(s.event[1], "content_block_start");
    j = xt_ev(&s, 1);
    TG_IT_CHECK_STR(tg_it_json_str(j, "content_block.type"), "tool_use");
    TG_IT_CHECK_STR(tg_it_json_str(j, "content_block.name"), "weather");
    snprintf(id, sizeof(id), "%s", tg_it_json_str(j, "content_block.id"));
    json_decref(j);
    xt_concat(&s, "content_block_delta", "delta.partial_json", args,
              sizeof(args));
    TG_IT_CHECK_STR(args, XT_ARGS);
    TG_IT_CHECK_STR(s.event[s.n - 3], "content_block_stop");
    TG_IT_CHECK_STR(s.event[s.n - 2], "message_delta");
    TG_IT_CHECK_STR(s.event[s.n - 1], "message_stop");
    j = xt_ev(&s, s.n - 2);
    TG_IT_CHECK_STR(tg_it_json_str(j, "delta.stop_reason"), "tool_use");
    TG_IT_CHECK_INT(
        json_integer_value(tg_it_json_get(j, "usage.output_tokens")), 10);
    json_decref(j);
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);

    TG_IT_CHECK(asprintf(&body,
                         "{\"model\":\"gpt-4o\",\"max_tokens\":64,\"stream\":"
                         "true,\"messages\":["
                         "{\"role\":\"user\",\"content\":\"Weather?\"},"
                         "{\"role\":\"assistant\",\"content\":[{\"type\":"
                         "\"tool_use\",\"id\":\"%s\",\"name\":\"weather\","
                         "\"input\":{\"city\":\"Paris\"}}]},"
                         "{\"role\":\"user\",\"content\":[{\"type\":"
                         "\"tool_result\",\"tool_use_id\":\"%s\",\"content\":"
                         "\"sunny\"}]}]," XT_TOOLS_ANTHROPIC "}",
                         id, id) > 0);
    tg_it_request(f.port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC, body,
                  &resp);
    free(body);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    xt_concat(&s, "content_block_delta", "delta.text", text, sizeof(text));
    TG_IT_CHECK_STR(text, XT_TEXT);
    j = xt_ev(&s, s.n - 2);
    TG_IT_CHECK_STR(tg_it_json_str(j, "delta.stop_reason"), "end_turn");
    TG_IT_CHECK(json_integer_value(tg_it_json_get(j, "usage.input_tokens")) >
                0);
    xt_usage(&resp, tok);
    TG_IT_CHECK_INT(
        tok[0], json_integer_value(tg_it_json_get(j, "usage.input_tokens")));
    TG_IT_CHECK_INT(tok[1], 10);
    json_decref(j);
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_chat, 2, 3000), 2);
    tg_it_fixture_stop(&f);
}


/* Upstream errors reach the client in its own shape: a 429 before the
 * stream with its retry-after, an error inside a stream as the client
 * API's error event. */
static void
xt_errors(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    char ra[32];
    json_t *j;

    xt_start(&f, "anthropic");
    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  TG_IT_H_OPENAI "x-mock-fault: error-mid\r\n",
                  TG_IT_BODY_CHAT_STREAM, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    j = xt_ev(&s, s.n - 1);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.message"), "Overloaded");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "server_error");
    json_decref(j);
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);

    tg_it_request(f.port, "POST", "/v1/chat/completions",
                  TG_IT_H_OPENAI "x-mock-fault: 400\r\n", TG_IT_BODY_CHAT,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 400);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "invalid_request_error");
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);

    xt_start(&f, "openai");
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: 429:7\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 429);
    TG_IT_CHECK_STR(tg_it_resp_header(&resp, "retry-after", ra, sizeof(ra)),
                    "7");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "rate_limit_error");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* The Anthropic error event inside a stream from an OpenAI endpoint. */
static void
xt_error_event_anthropic(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_sse_t s;
    json_t *j;

    xt_start(&f, "openai");
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: error-mid\r\n",
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_sse_parse(&s, resp.body, resp.body_len);
    TG_IT_CHECK_STR(s.event[0], "message_start");
    TG_IT_CHECK_STR(s.event[s.n - 1], "error");
    j = xt_ev(&s, s.n - 1);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "api_error");
    json_decref(j);
    tg_it_sse_fini(&s);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* A request with no form in the other API is a 400 in the client's
 * shape naming the field, and never reaches the upstream. */
static void
xt_impossible(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j;

    xt_start(&f, "anthropic");
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  "{\"model\":\"claude-sonnet-4-5\",\"n\":3,"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                  &resp);
    TG_IT_CHECK_INT(resp.status, 400);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "invalid_request_error");
    TG_IT_CHECK(strncmp(tg_it_json_str(j, "error.message"), "n: ", 3) == 0);
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":[{\"type\":\"input_audio\","
                  "\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]}]}",
                  &resp);
    TG_IT_CHECK_INT(resp.status, 400);
    j = tg_it_json(&resp);
    TG_IT_CHECK(strstr(tg_it_json_str(j, "error.message"),
                       "messages[0].content[0]") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_count(f.ledger, xt_messages), 0);
    tg_it_fixture_stop(&f);
}


/* With both styles in the group a request goes to its own style first;
 * when that fails before the first byte, failover crosses to the other
 * style and translates. */
static void
xt_failover_crosses(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j;

    xt_start(&f, "both");
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  TG_IT_BODY_CHAT, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_chat, 1, 3000), 1);
    TG_IT_CHECK_INT(tg_it_file_count(f.ledger, xt_messages), 0);

    tg_it_request(f.mock_port, "POST", "/_mock/fault", NULL, "500*1", &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "POST", "/v1/chat/completions", TG_IT_H_OPENAI,
                  TG_IT_BODY_CHAT, &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "object"), "chat.completion");
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_chat, 2, 3000), 2);
    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, xt_messages, 1, 3000), 1);
    tg_it_fixture_stop(&f);
}


/* GET /v1/models lists what the key's group can reach, through
 * endpoints of both styles, with both field sets. */
static void
xt_models(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j, *d;
    char ids[1024];
    size_t i, n = 0;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "groups", "( { name = \"other\"; } )");
    tg_it_conf_set(
        &f.conf, "endpoints",
        "( { name = \"a\"; url = \"http://127.0.0.1:%d\"; style = "
        "\"anthropic\"; credential = \"" TG_IT_CRED "\"; models = ( "
        "\"claude-sonnet-*\" ); health_interval = 0; },\n"
        "  { name = \"o\"; url = \"http://127.0.0.1:%d\"; style = "
        "\"openai\"; credential = \"" TG_IT_CRED "\"; models = ( "
        "\"gpt-4o\", \"o3*\" ); model_map = ( { from = \"fast\"; to = "
        "\"gpt-4o-mini\"; } ); health_interval = 0; },\n"
        "  { name = \"x\"; url = \"http://127.0.0.1:%d\"; style = "
        "\"openai\"; credential = \"" TG_IT_CRED "\"; models = ( "
        "\"o4-mini\" ); group = \"other\"; health_interval = 0; } )",
        f.mock_port, f.mock_port, f.mock_port);
    tg_it_conf_set(&f.conf, "keys",
                   "( \"" TG_IT_KEY "\", { key = "
                   "\"tg-it-other-group-key-0123\"; group = \"other\"; } )");
    tg_it_fixture_start(&f);
    tg_it_request(f.port, "GET", "/v1/models", TG_IT_H_OPENAI, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    j = tg_it_json(&resp);
    d = json_object_get(j, "data");
    ids[0] = '\0';
    for (i = 0; i < json_array_size(d); i++) {
        json_t *m = json_array_get(d, i);

        n += (size_t)snprintf(ids + n, sizeof(ids) - n, "%s%s", i ? "," : "",
                              json_string_value(json_object_get(m, "id")));
        TG_IT_CHECK_STR(json_string_value(json_object_get(m, "object")),
                        "model");
        TG_IT_CHECK_STR(json_string_value(json_object_get(m, "type")), "model");
        TG_IT_CHECK(json_is_string(json_object_get(m, "owned_by")));
        TG_IT_CHECK(json_is_string(json_object_get(m, "created_at")));
    }
    /* The built-in list's Sonnet (served by "a"), then the exact names
     * and renames of "o"; Opus and Haiku have no endpoint here. */
    TG_IT_CHECK_STR(ids, "claude-sonnet-4-5,gpt-4o,fast");
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_request(f.port, "GET", "/v1/models",
                  "x-api-key: tg-it-other-group-key-0123\r\n", NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "data.0.id"), "o4-mini");
    TG_IT_CHECK_STR(tg_it_json_str(j, "data.0.owned_by"), "openai");
    TG_IT_CHECK_INT(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* The official SDKs against the other style's endpoints (tests/sdk,
 * installed by `make deps`): text, a streamed agent loop with tools, and
 * an upstream 429 as the SDK's own RateLimitError. */
static void
xt_sdks(void)
{
    static const char *const runs[][2] = {{"anthropic", "openai"},
                                          {"openai", "anthropic"}};
    tg_it_fixture_t f;
    char url[64], out[8192];
    char *argv[] = {
        "/usr/bin/env", "node", "tests/sdk/translate.mjs", url, TG_IT_KEY,
        NULL,           NULL};
    size_t i;
    int rc;

    if (access("tests/sdk/node_modules/@anthropic-ai/sdk/package.json", R_OK) !=
            0 ||
        access("tests/sdk/node_modules/openai/package.json", R_OK) != 0) {
        tg_it_fail(__FILE__, __LINE__,
                   "the SDKs are not installed in tests/sdk/node_modules; "
                   "run `make deps` (or `npm ci` in tests/sdk)");
    }
    for (i = 0; i < TG_NELEMS(runs); i++) {
        xt_start(&f, runs[i][0]);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
        argv[5] = (char *)runs[i][1];
        rc = tg_it_run(argv, out, sizeof(out), 60000);
        tg_it_note("%s", out);
        TG_IT_CHECKF(rc == 0, "%s sdk on %s endpoints failed:\n%s", runs[i][1],
                     runs[i][0], out);
        TG_IT_CHECK(strstr(out, "streamed agent loop with tools") != NULL);
        TG_IT_CHECK(strstr(out, "FAIL") == NULL);
        tg_it_fixture_stop(&f);
    }
}


const tg_it_test_t tg_it_translate_tests[] = {
    {"translate: the official OpenAI SDK works on Anthropic endpoints and "
     "the Anthropic SDK on OpenAI ones, streams and tools included",
     xt_sdks},
    {"translate: the models list merges what the key's group reaches in "
     "both styles",
     xt_models},
    {"translate: an OpenAI client is answered by an Anthropic endpoint with "
     "the upstream's tokens",
     xt_openai_client_text},
    {"translate: an OpenAI stream from an Anthropic endpoint has the role "
     "chunk, text, finish, usage chunk and [DONE]",
     xt_openai_client_stream},
    {"translate: an OpenAI agent loop runs on an Anthropic endpoint with "
     "streamed tool arguments",
     xt_openai_client_tools},
    {"translate: an Anthropic client is answered by an OpenAI endpoint with "
     "cached tokens apart",
     xt_anthropic_client_text},
    {"translate: an Anthropic agent loop runs on an OpenAI endpoint, "
     "streamed",
     xt_anthropic_client_tools},
    {"translate: upstream errors reach the client in its shape, retry-after "
     "kept, mid-stream too",
     xt_errors},
    {"translate: an error inside an OpenAI stream is an Anthropic error event",
     xt_error_event_anthropic},
    {"translate: an impossible request is a 400 naming the field",
     xt_impossible},
    {"translate: a request prefers its own style and fails over to the "
     "other",
     xt_failover_crosses},
    {NULL, NULL},
};
