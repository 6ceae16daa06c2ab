/*
 * tools/mock-respond.c
 *      The mock upstream's answers: buffered output, SSE streams, and the
 *      API shapes of each endpoint (Anthropic Messages, OpenAI Chat
 *      Completions and Responses, count_tokens, models, errors).
 *
 * NOTES
 *      See tools/mock-upstream.c for the process model and
 *      docs/mock-upstream.md for the formulas.
 */
#include "tools/mock.h"

#include <zlib.h>

/* Two "tokens" of text per content delta, cycled. */
static const char *tg_mock_words[] = {
    "Lorem ipsum ",      "dolor sit ", "amet, consectetur ",
    "adipiscing elit, ", "sed do ",    "eiusmod tempor ",
    "incididunt ut ",    "labore et ",
};

static int tg_mock_buf_printf(tg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tg_mock_out_printf(c, ...) tg_mock_buf_printf(&(c)->out, __VA_ARGS__)


/* ------------------------------------------------------- response output */

/* Append printf output to <b>. */
static int
tg_mock_buf_printf(tg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    size_t room;
    int n;

    if (b->data == NULL && tg_buf_reserve(b, 1024) != TG_OK) {
        return TG_ERROR;
    }
    room = b->cap - b->last;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->last, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return TG_ERROR;
    }
    if ((size_t)n >= room) {
        if (tg_buf_reserve(b, (size_t)n + 1) != TG_OK) {
            return TG_ERROR;
        }
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->last, b->cap - b->last, fmt, ap);
        va_end(ap);
        if (n < 0) {
            return TG_ERROR;
        }
    }
    b->last += (size_t)n;
    return TG_OK;
}

/* Start a body: the output buffer is empty, and TG_MOCK_HEADROOM bytes are
 * kept in front of the body for the head. */
static int
tg_mock_body_begin(tg_mock_conn_t *c)
{
    TG_ASSERT(tg_buf_len(&c->out) == 0);
    if (tg_buf_reserve(&c->out, TG_MOCK_HEADROOM + 2048) != TG_OK) {
        return TG_ERROR;
    }
    c->out.pos = 0;
    c->out.last = TG_MOCK_HEADROOM;
    return TG_OK;
}

/* Replace the body built since tg_mock_body_begin() by its compressed
 * form in r->enc.  TG_OK or TG_ERROR. */
static int
tg_mock_body_compress(tg_mock_conn_t *c)
{
    tg_mock_enc_t *e = tg_mock_enc_create(c->r.enc);
    tg_buf_t z;
    int rc = TG_ERROR;

    tg_buf_init(&z, TG_MOCK_OUT_MAX);
    if (e == NULL ||
        tg_mock_enc_write(e, c->out.data + TG_MOCK_HEADROOM,
                          c->out.last - TG_MOCK_HEADROOM, true, &z) != TG_OK) {
        goto done;
    }
    c->out.last = TG_MOCK_HEADROOM;
    rc = tg_buf_append(&c->out, z.data + z.pos, tg_buf_len(&z));

done:
    tg_buf_fini(&z);
    tg_mock_enc_destroy(e);
    return rc;
}

/*
 * Write the head of a <status> response with content type <ctype> and
 * extra header lines <extra> (each ending in CRLF) into the headroom in
 * front of the body built since tg_mock_body_begin(), compressing the
 * body first when the request asked for it.  reset-mid cuts the response
 * in half and asks for a reset once that half is out.
 */
static int
tg_mock_body_end(tg_mock_conn_t *c, int status, const char *ctype,
                 const char *extra)
{
    tg_mock_req_t *r = &c->r;
    size_t blen;
    char head[TG_MOCK_HEADROOM], ce[64] = "";
    int n;

    if (r->enc != TG_MOCK_ENC_NONE) {
        if (tg_mock_body_compress(c) != TG_OK) {
            return TG_ERROR;
        }
        snprintf(ce, sizeof(ce), "content-encoding: %s\r\n",
                 tg_mock_enc_coding(r->enc));
    }
    blen = c->out.last - TG_MOCK_HEADROOM;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\n"
                 "content-length: %zu\r\n%s%s: %s\r\n%sconnection: %s"
                 "\r\n\r\n",
                 status, tg_http_reason(status), ctype, blen, ce,
                 r->openai ? "x-request-id" : "request-id", r->id, extra,
                 (r->keep_alive && !r->close_after) ? "keep-alive" : "close");
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        return TG_ERROR;
    }
    memcpy(c->out.data + TG_MOCK_HEADROOM - n, head, (size_t)n);
    c->out.pos = TG_MOCK_HEADROOM - (size_t)n;
    r->status = status;
    if (r->fault.reset_mid) {
        c->out.last = TG_MOCK_HEADROOM + blen / 2;
        r->rst_after_flush = true;
    }
    c->state = TG_MOCK_S_WRITE;
    return TG_OK;
}

/* A small complete response: <body> is a NUL-terminated string. */
static int
tg_mock_respond(tg_mock_conn_t *c, int status, const char *ctype,
                const char *extra, const char *body)
{
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_buf_append(&c->out, body, strlen(body)) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, ctype, extra);
}

/* Anthropic error body; <msg> must be JSON-safe, <details> is "" or a
 * ",\"details\":{...}" member. */
int
tg_mock_error_anthropic(tg_mock_conn_t *c, int status, const char *type,
                        const char *msg, const char *details, const char *extra)
{
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                           "\"message\":\"%s\"%s},\"request_id\":\"%s\"}",
                           type, msg, details, c->r.id) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, "application/json", extra);
}

/* OpenAI error body; NULL <param> or <code> become null. */
static int
tg_mock_error_openai(tg_mock_conn_t *c, int status, const char *type,
                     const char *msg, const char *param, const char *code,
                     const char *extra)
{
    char p[64], k[64];

    if (param != NULL) {
        snprintf(p, sizeof(p), "\"%s\"", param);
    } else {
        memcpy(p, "null", 5);
    }
    if (code != NULL) {
        snprintf(k, sizeof(k), "\"%s\"", code);
    } else {
        memcpy(k, "null", 5);
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"error\":{\"message\":\"%s\",\"type\":\"%s\","
                           "\"param\":%s,\"code\":%s}}",
                           msg, type, p, k) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, status, "application/json", extra);
}

/* Answer with the injected status of r->fault in the route's shape. */
static int
tg_mock_answer_fault(tg_mock_conn_t *c)
{
    const tg_mock_fault_t *f = &c->r.fault;
    const char *at, *am, *ot, *om, *oc = NULL, *det = "";
    char extra[64] = "";
    int s = f->status;

    if (f->retry_after >= 0) {
        snprintf(extra, sizeof(extra), "retry-after: %d\r\n", f->retry_after);
    }
    at = (s >= 500) ? "api_error" : "invalid_request_error";
    am =
        (s >= 500) ? "Internal server error" : "Injected fault (mock-upstream)";
    ot = (s >= 500) ? "server_error" : "invalid_request_error";
    om = (s >= 500) ? "The server had an error while processing your "
                      "request. Sorry about that!"
                    : am;
    if (c->r.hdr_fault_bad) {
        am = om = "invalid x-mock-fault header (see docs/mock-upstream.md)";
    } else if (s == 401) {
        at = "authentication_error";
        am = "invalid x-api-key";
        om = "Incorrect API key provided.";
        oc = "invalid_api_key";
    } else if (s == 403) {
        at = "permission_error";
        am = "Your API key does not have permission to use the specified "
             "resource.";
    } else if (s == 404) {
        at = "not_found_error";
        am = "Not found";
    } else if (s == 413) {
        at = "request_too_large";
        am = "Request exceeds the maximum allowed number of bytes.";
    } else if (s == 429 && f->quota) {
        at = "rate_limit_error";
        am = "You have reached your specified API usage limits. You will "
             "regain access on 2099-01-01 at 00:00 UTC.";
        det = ",\"details\":{\"error_code\":\"enforced_spend_limit_reached\"}";
        ot = oc = "insufficient_quota";
        om = "You exceeded your current quota, please check your plan and "
             "billing details.";
    } else if (s == 429) {
        at = "rate_limit_error";
        am = "This request would exceed the rate limit for your "
             "organization (mock-upstream). Please retry after the time "
             "in the retry-after header.";
        ot = "requests";
        oc = "rate_limit_exceeded";
        om = "Rate limit reached for requests (mock-upstream).";
    } else if (s == 529) {
        at = "overloaded_error";
        am = "Overloaded";
        om = "The engine is currently overloaded, please try again later.";
    }
    if (c->r.openai) {
        return tg_mock_error_openai(c, s, ot, om, NULL, oc, extra);
    }
    return tg_mock_error_anthropic(c, s, at, am, det, extra);
}

/* ------------------------------------------------------------- streaming */

/* The arguments of the mock's tool call, and piece <k> of <n> of them,
 * escaped for a JSON string, into <buf>. */
static const char tg_mock_args[] = "{\"city\": \"Paris\", \"days\": 3}";

static void
tg_mock_args_piece(uint32_t k, uint32_t n, char *buf, size_t cap)
{
    size_t len = sizeof(tg_mock_args) - 1;
    size_t a = n ? len * k / n : 0, b = n ? len * (k + 1) / n : len;

    tg_json_escape(buf, cap, tg_mock_args + a, b - a);
}


/* Format Anthropic stream event <i> into <buf>; returns its length. */
static int
tg_mock_event_anthropic(const tg_mock_req_t *r, uint32_t i, char *buf,
                        size_t cap)
{
    uint32_t n = r->chunks;

    if (r->fault.error_mid && i == r->ev_total / 2) {
        return snprintf(buf, cap,
                        "event: error\ndata: {\"type\":\"error\",\"error\":"
                        "{\"type\":\"overloaded_error\",\"message\":"
                        "\"Overloaded\"}}\n\n");
    }
    if (i == 0) {
        return snprintf(
            buf, cap,
            "event: message_start\ndata: {\"type\":\"message_start\","
            "\"message\":{\"id\":\"%s\",\"type\":\"message\",\"role\":"
            "\"assistant\",\"model\":\"%s\",\"content\":[],\"stop_reason\":"
            "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":%u,"
            "\"cache_creation_input_tokens\":%u,\"cache_read_input_tokens\":"
            "%u,\"output_tokens\":1}}}\n\n",
            r->mid, r->model, r->in_tok, r->cache_create, r->cache_read);
    }
    if (r->tool[0] != '\0' && i == 1) {
        return snprintf(buf, cap,
                        "event: content_block_start\ndata: {\"type\":"
                        "\"content_block_start\",\"index\":0,"
                        "\"content_block\":{\"type\":\"tool_use\",\"id\":"
                        "\"toolu_mock_%s\",\"name\":\"%s\",\"input\":{}}}"
                        "\n\n",
                        r->id + 4, r->tool);
    }
    if (r->tool[0] != '\0' && i >= 3 && i < 3 + n) {
        char piece[128];

        tg_mock_args_piece(i - 3, n, piece, sizeof(piece));
        return snprintf(buf, cap,
                        "event: content_block_delta\ndata: {\"type\":"
                        "\"content_block_delta\",\"index\":0,\"delta\":"
                        "{\"type\":\"input_json_delta\",\"partial_json\":"
                        "\"%s\"}}\n\n",
                        piece);
    }
    if (i == 1) {
        return snprintf(buf, cap,
                        "event: content_block_start\ndata: {\"type\":"
                        "\"content_block_start\",\"index\":0,"
                        "\"content_block\":{\"type\":\"text\",\"text\":"
                        "\"\"}}\n\n");
    }
    if (i == 2) {
        return snprintf(buf, cap,
                        "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    }
    if (i < 3 + n) {
        return snprintf(buf, cap,
                        "event: content_block_delta\ndata: {\"type\":"
                        "\"content_block_delta\",\"index\":0,\"delta\":"
                        "{\"type\":\"text_delta\",\"text\":\"%s\"}}\n\n",
                        tg_mock_words[(i - 3) % TG_NELEMS(tg_mock_words)]);
    }
    if (i == 3 + n) {
        return snprintf(buf, cap,
                        "event: content_block_stop\ndata: {\"type\":"
                        "\"content_block_stop\",\"index\":0}\n\n");
    }
    if (i == 4 + n) {
        return snprintf(buf, cap,
                        "event: message_delta\ndata: {\"type\":"
                        "\"message_delta\",\"delta\":{\"stop_reason\":"
                        "\"%s\",\"stop_sequence\":null},\"usage\":"
                        "{\"output_tokens\":%u}}\n\n",
                        r->tool[0] ? "tool_use" : "end_turn", r->out_tok);
    }
    return snprintf(buf, cap,
                    "event: message_stop\ndata: {\"type\":"
                    "\"message_stop\"}\n\n");
}

/* Format OpenAI stream chunk <i> into <buf>; returns its length. */
static int
tg_mock_event_openai(const tg_mock_req_t *r, uint32_t i, char *buf, size_t cap)
{
    const char *usage_null = r->include_usage ? ",\"usage\":null" : "";
    uint32_t n = r->chunks;
    char pre[1800];

    if (r->fault.error_mid && i == r->ev_total / 2) {
        return snprintf(buf, cap,
                        "data: {\"error\":{\"message\":\"The server had an "
                        "error while processing your request. Sorry about "
                        "that!\",\"type\":\"server_error\",\"param\":null,"
                        "\"code\":null}}\n\n");
    }
    if (i == r->ev_total - 1) {
        return snprintf(buf, cap, "data: [DONE]\n\n");
    }
    snprintf(pre, sizeof(pre),
             "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
             "\"created\":%llu,\"model\":\"%s\",\"system_fingerprint\":"
             "\"fp_mock\",\"choices\":[",
             r->mid, (unsigned long long)r->created, r->model);
    if (r->tool[0] != '\0' && i == 0) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        "\"content\":null,\"tool_calls\":[{\"index\":0,"
                        "\"id\":\"call_mock_%s\",\"type\":\"function\","
                        "\"function\":{\"name\":\"%s\",\"arguments\":"
                        "\"\"}}],\"refusal\":null},\"logprobs\":null,"
                        "\"finish_reason\":null}]%s}\n\n",
                        pre, r->id + 4, r->tool, usage_null);
    }
    if (r->tool[0] != '\0' && i <= n) {
        char piece[128];

        tg_mock_args_piece(i - 1, n, piece, sizeof(piece));
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"tool_calls\":[{"
                        "\"index\":0,\"function\":{\"arguments\":\"%s\"}}"
                        "]},\"logprobs\":null,\"finish_reason\":null}]%s}"
                        "\n\n",
                        pre, piece, usage_null);
    }
    if (i == 0) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"role\":\"assistant\","
                        "\"content\":\"\",\"refusal\":null},\"logprobs\":"
                        "null,\"finish_reason\":null}]%s}\n\n",
                        pre, usage_null);
    }
    if (i <= n) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{\"content\":\"%s\"},"
                        "\"logprobs\":null,\"finish_reason\":null}]%s}\n\n",
                        pre, tg_mock_words[(i - 1) % TG_NELEMS(tg_mock_words)],
                        usage_null);
    }
    if (i == n + 1) {
        return snprintf(buf, cap,
                        "%s{\"index\":0,\"delta\":{},\"logprobs\":null,"
                        "\"finish_reason\":\"%s\"}]%s}\n\n",
                        pre, r->tool[0] ? "tool_calls" : "stop", usage_null);
    }
    return snprintf(buf, cap,
                    "%s],\"usage\":{\"prompt_tokens\":%u,"
                    "\"completion_tokens\":%u,\"total_tokens\":%u,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":%u,"
                    "\"audio_tokens\":0},\"completion_tokens_details\":"
                    "{\"reasoning_tokens\":0,\"audio_tokens\":0,"
                    "\"accepted_prediction_tokens\":0,"
                    "\"rejected_prediction_tokens\":0}}}\n\n",
                    pre, r->in_tok, r->out_tok, r->in_tok + r->out_tok,
                    r->cache_read);
}

/* ------------------------------------------------------ Responses API */

/* The answer's text (N deltas) into <b>. */
static int
tg_mock_resp_text(const tg_mock_req_t *r, tg_buf_t *b)
{
    uint32_t k;

    for (k = 0; k < r->chunks; k++) {
        const char *w = tg_mock_words[k % TG_NELEMS(tg_mock_words)];

        if (tg_buf_append(b, w, strlen(w)) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

/* The output item of the answer into <b>: a message, or the function
 * call of a tool answer, "in_progress" (no content or arguments yet) or
 * "completed" (all of them). */
static int
tg_mock_resp_item(const tg_mock_req_t *r, tg_buf_t *b, bool done)
{
    char args[128] = "";

    if (r->tool[0] != '\0') {
        if (done) {
            tg_mock_args_piece(0, 1, args, sizeof(args));
        }
        return tg_mock_buf_printf(
            b,
            "{\"type\":\"function_call\",\"id\":\"fc_%s\",\"call_id\":"
            "\"call_mock_%s\",\"name\":\"%s\",\"arguments\":\"%s\","
            "\"status\":\"%s\"}",
            r->id + 4, r->id + 4, r->tool, args,
            done ? "completed" : "in_progress");
    }
    if (tg_mock_buf_printf(b,
                           "{\"id\":\"msg_%s\",\"type\":\"message\","
                           "\"status\":\"%s\",\"content\":[",
                           r->id + 4,
                           done ? "completed" : "in_progress") != TG_OK) {
        return TG_ERROR;
    }
    if (done &&
        (tg_mock_buf_printf(b, "{\"type\":\"output_text\",\"annotations\":[],"
                               "\"logprobs\":[],\"text\":\"") != TG_OK ||
         tg_mock_resp_text(r, b) != TG_OK ||
         tg_buf_append(b, "\"}", 2) != TG_OK)) {
        return TG_ERROR;
    }
    return tg_mock_buf_printf(b, "],\"role\":\"assistant\"}");
}

/* The response object, in progress (no output, usage null) or completed
 * (the message and the usage), into <b>. */
static int
tg_mock_resp_object(const tg_mock_req_t *r, tg_buf_t *b, bool done)
{
    if (tg_mock_buf_printf(
            b,
            "{\"id\":\"%s\",\"object\":\"response\",\"created_at\":%llu,"
            "\"status\":\"%s\",\"background\":false,\"error\":null,"
            "\"incomplete_details\":null,\"instructions\":null,"
            "\"max_output_tokens\":null,\"model\":\"%s\",\"output\":[",
            r->mid, (unsigned long long)r->created,
            done ? "completed" : "in_progress", r->model) != TG_OK ||
        (done && tg_mock_resp_item(r, b, true) != TG_OK) ||
        tg_mock_buf_printf(
            b, "],\"parallel_tool_calls\":true,\"previous_response_id\":null,"
               "\"reasoning\":{\"effort\":null,\"summary\":null},\"store\":"
               "false,\"temperature\":1.0,\"text\":{\"format\":{\"type\":"
               "\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,"
               "\"truncation\":\"disabled\",\"usage\":") != TG_OK) {
        return TG_ERROR;
    }
    if (!done) {
        return tg_mock_buf_printf(b, "null,\"user\":null,\"metadata\":{}}");
    }
    return tg_mock_buf_printf(
        b,
        "{\"input_tokens\":%u,\"input_tokens_details\":{\"cached_tokens\":"
        "%u},\"output_tokens\":%u,\"output_tokens_details\":{"
        "\"reasoning_tokens\":%u},\"total_tokens\":%u},\"user\":null,"
        "\"metadata\":{}}",
        r->in_tok, r->cache_read, r->out_tok, r->reasoning,
        r->in_tok + r->out_tok);
}

/* The head of stream event <name> number <i>, up to its own members. */
static int
tg_mock_resp_ev(tg_buf_t *b, const char *name, uint32_t i)
{
    return tg_mock_buf_printf(b,
                              "event: %s\ndata: {\"type\":\"%s\","
                              "\"sequence_number\":%u",
                              name, name, i);
}

/* Stream event <i> of a Responses tool answer into <b>, between
 * response.output_item.added and response.output_item.done of the
 * function call item: N argument deltas, then the arguments done. */
static int
tg_mock_event_resp_tool(const tg_mock_req_t *r, uint32_t i, tg_buf_t *b)
{
    uint32_t n = r->chunks;
    char loc[96], piece[128];
    int rc;

    snprintf(loc, sizeof(loc), ",\"item_id\":\"fc_%s\",\"output_index\":0",
             r->id + 4);
    if (i == n + 3) {
        tg_mock_args_piece(0, 1, piece, sizeof(piece));
        rc = tg_mock_resp_ev(b, "response.function_call_arguments.done", i) !=
                 TG_OK ||
             tg_mock_buf_printf(b,
                                "%s,\"name\":\"%s\",\"arguments\":\"%s\"}"
                                "\n\n",
                                loc, r->tool, piece) != TG_OK;
    } else {
        tg_mock_args_piece(i - 3, n, piece, sizeof(piece));
        rc = tg_mock_resp_ev(b, "response.function_call_arguments.delta", i) !=
                 TG_OK ||
             tg_mock_buf_printf(b, "%s,\"delta\":\"%s\"}\n\n", loc, piece) !=
                 TG_OK;
    }
    return rc ? TG_ERROR : TG_OK;
}

/* Stream event <i> of a Responses answer into <b> (see
 * docs/mock-upstream.md for the order). */
static int
tg_mock_event_responses(const tg_mock_req_t *r, uint32_t i, tg_buf_t *b)
{
    uint32_t n = r->chunks;
    static const char part[] = "\"part\":{\"type\":\"output_text\","
                               "\"annotations\":[],\"text\":\"";
    char loc[128];
    int rc;

    snprintf(loc, sizeof(loc),
             ",\"item_id\":\"msg_%s\",\"output_index\":0,"
             "\"content_index\":0",
             r->id + 4);
    if (r->fault.error_mid && i == r->ev_total / 2) {
        rc = tg_mock_resp_ev(b, "error", i) != TG_OK ||
             tg_mock_buf_printf(b, ",\"code\":\"server_error\",\"message\":"
                                   "\"The server had an error while "
                                   "processing your request. Sorry about "
                                   "that!\",\"param\":null}\n\n") != TG_OK;
    } else if (i <= 1 || i == r->ev_total - 1) {
        rc = tg_mock_resp_ev(b,
                             i == 0   ? "response.created"
                             : i == 1 ? "response.in_progress"
                                      : "response.completed",
                             i) != TG_OK ||
             tg_mock_buf_printf(b, ",\"response\":") != TG_OK ||
             tg_mock_resp_object(r, b, i > 1) != TG_OK ||
             tg_buf_append(b, "}\n\n", 3) != TG_OK;
    } else if (i == 2 || i == r->ev_total - 2) {
        rc = tg_mock_resp_ev(b,
                             i == 2 ? "response.output_item.added"
                                    : "response.output_item.done",
                             i) != TG_OK ||
             tg_mock_buf_printf(b, ",\"output_index\":0,\"item\":") != TG_OK ||
             tg_mock_resp_item(r, b, i > 2) != TG_OK ||
             tg_buf_append(b, "}\n\n", 3) != TG_OK;
    } else if (r->tool[0] != '\0') {
        rc = tg_mock_event_resp_tool(r, i, b) != TG_OK;
    } else if (i == 3 || i == n + 5) {
        rc = tg_mock_resp_ev(b,
                             i == 3 ? "response.content_part.added"
                                    : "response.content_part.done",
                             i) != TG_OK ||
             tg_mock_buf_printf(b, "%s,%s", loc, part) != TG_OK ||
             (i > 3 && tg_mock_resp_text(r, b) != TG_OK) ||
             tg_buf_append(b, "\"}}\n\n", 5) != TG_OK;
    } else if (i == n + 4) {
        rc = tg_mock_resp_ev(b, "response.output_text.done", i) != TG_OK ||
             tg_mock_buf_printf(b, "%s,\"text\":\"", loc) != TG_OK ||
             tg_mock_resp_text(r, b) != TG_OK ||
             tg_mock_buf_printf(b, "\",\"logprobs\":[]}\n\n") != TG_OK;
    } else {
        rc = tg_mock_resp_ev(b, "response.output_text.delta", i) != TG_OK ||
             tg_mock_buf_printf(
                 b, "%s,\"delta\":\"%s\",\"logprobs\":[]}\n\n", loc,
                 tg_mock_words[(i - 4) % TG_NELEMS(tg_mock_words)]) != TG_OK;
    }
    return rc ? TG_ERROR : TG_OK;
}

/* Append <len> bytes of <p> as one chunk (or raw for HTTP/1.0). */
static int
tg_mock_out_chunk(tg_mock_conn_t *c, const char *p, size_t len)
{
    char hdr[24];
    int n;

    if (!c->r.http11) {
        return tg_buf_append(&c->out, p, len);
    }
    n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    if (tg_buf_append(&c->out, hdr, (size_t)n) != TG_OK ||
        tg_buf_append(&c->out, p, len) != TG_OK ||
        tg_buf_append(&c->out, "\r\n", 2) != TG_OK) {
        return TG_ERROR;
    }
    return TG_OK;
}

/* Append stream bytes <p> of <len> as one chunk, through the stream's
 * encoder when it has one (<last> ends the compressed stream).  An
 * encoder that produced nothing adds no chunk (an empty chunk would end
 * the body). */
static int
tg_mock_out_stream(tg_mock_conn_t *c, const char *p, size_t len, bool last)
{
    tg_buf_t z;
    int rc;

    if (c->r.encoder == NULL) {
        return len > 0 ? tg_mock_out_chunk(c, p, len) : TG_OK;
    }
    tg_buf_init(&z, TG_MOCK_OUT_MAX);
    rc = tg_mock_enc_write(c->r.encoder, p, len, last, &z);
    if (rc == TG_OK && tg_buf_len(&z) > 0) {
        rc = tg_mock_out_chunk(c, z.data + z.pos, tg_buf_len(&z));
    }
    tg_buf_fini(&z);
    return rc;
}

/*
 * Queue the next piece of the stream: one event, the end of the stream,
 * or nothing when a delay or reset-mid applies.  TG_OK when the caller
 * should flush and come back, TG_AGAIN when a delay timer was armed,
 * TG_ERROR when the buffer could not take the event.
 */
int
tg_mock_stream_next(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char ev[TG_MOCK_EVENT_MAX];
    uint32_t i = r->ev_idx, first = r->path == TG_MOCK_P_RESPONSES
                                        ? (r->tool[0] ? 3 : 4)
                                    : r->openai ? 1
                                                : 3;
    tg_buf_t z;
    int n;

    if (i >= r->ev_total) {
        c->state = TG_MOCK_S_WRITE;
        if (tg_mock_out_stream(c, NULL, 0, true) != TG_OK) {
            return TG_ERROR;
        }
        return r->http11 ? tg_buf_append(&c->out, "0\r\n\r\n", 5) : TG_OK;
    }
    if (r->fault.reset_mid && i >= r->ev_total / 2) {
        r->rst_after_flush = true;
        return TG_OK;
    }
    if (r->delay_ms > 0 && i >= first && i < first + r->chunks &&
        !r->ev_waited) {
        r->ev_waited = true;
        tg_ev_timer_add(tg_mock_loop, &c->step, r->delay_ms);
        return TG_AGAIN;
    }
    r->ev_waited = false;
    if (r->path == TG_MOCK_P_RESPONSES) {
        /* Its done events repeat the whole text: built in a buffer. */
        tg_buf_init(&z, TG_MOCK_OUT_MAX);
        n = tg_mock_event_responses(r, i, &z);
        r->ev_idx =
            (r->fault.error_mid && i == r->ev_total / 2) ? r->ev_total : i + 1;
        if (n == TG_OK) {
            n = tg_mock_out_stream(c, z.data + z.pos, tg_buf_len(&z), false);
        }
        tg_buf_fini(&z);
        return n;
    }
    n = r->openai ? tg_mock_event_openai(r, i, ev, sizeof(ev))
                  : tg_mock_event_anthropic(r, i, ev, sizeof(ev));
    if (n <= 0 || (size_t)n >= sizeof(ev)) {
        return TG_ERROR;
    }
    /* After a mid-stream error event the stream just ends, without
     * message_stop or [DONE], as the real APIs do.  An endless stream
     * goes back to its first delta after the last one. */
    if (r->fault.error_mid && i == r->ev_total / 2) {
        r->ev_idx = r->ev_total;
    } else if (r->fault.endless && r->chunks > 0 &&
               i + 1 == first + r->chunks) {
        r->ev_idx = first;
    } else {
        r->ev_idx = i + 1;
    }
    return tg_mock_out_stream(c, ev, (size_t)n, false);
}

/* Send the stream head and start producing events. */
static int
tg_mock_stream_start(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (!r->http11) {
        r->close_after = true;
    }
    r->status = 200;
    r->ev_idx = 0;
    r->ev_total = r->path == TG_MOCK_P_RESPONSES
                      ? r->chunks + (r->tool[0] ? 6 : 8)
                  : r->openai ? r->chunks + 3 + (r->include_usage ? 1 : 0)
                              : r->chunks + 6;
    if (r->enc != TG_MOCK_ENC_NONE) {
        r->encoder = tg_mock_enc_create(r->enc);
        if (r->encoder == NULL) {
            return TG_ERROR;
        }
    }
    if (tg_mock_out_printf(
            c,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            "cache-control: no-cache\r\n%s%s%s%s: %s\r\n%sconnection: %s"
            "\r\n\r\n",
            r->encoder ? "content-encoding: " : "",
            r->encoder ? tg_mock_enc_coding(r->enc) : "",
            r->encoder ? "\r\n" : "", r->openai ? "x-request-id" : "request-id",
            r->id, r->http11 ? "transfer-encoding: chunked\r\n" : "",
            r->close_after || !r->keep_alive ? "close" : "keep-alive") !=
        TG_OK) {
        return TG_ERROR;
    }
    tg_mock_cnt_add(TG_MOCK_C_STREAMS, 1);
    c->state = TG_MOCK_S_STREAM;
    return TG_OK;
}

/* ------------------------------------------------------------- endpoints */

static int
tg_mock_text(tg_mock_conn_t *c)
{
    uint32_t k;

    for (k = 0; k < c->r.chunks; k++) {
        const char *w = tg_mock_words[k % TG_NELEMS(tg_mock_words)];

        if (tg_buf_append(&c->out, w, strlen(w)) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

static int
tg_mock_messages_body(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (r->tool[0] != '\0') {
        if (tg_mock_body_begin(c) != TG_OK ||
            tg_mock_out_printf(
                c,
                "{\"id\":\"%s\",\"type\":\"message\",\"role\":"
                "\"assistant\",\"model\":\"%s\",\"content\":[{\"type\":"
                "\"tool_use\",\"id\":\"toolu_mock_%s\",\"name\":\"%s\","
                "\"input\":%s}],\"stop_reason\":\"tool_use\","
                "\"stop_sequence\":null,\"usage\":{\"input_tokens\":%u,"
                "\"cache_creation_input_tokens\":%u,"
                "\"cache_read_input_tokens\":%u,\"output_tokens\":%u}}",
                r->mid, r->model, r->id + 4, r->tool, tg_mock_args, r->in_tok,
                r->cache_create, r->cache_read, r->out_tok) != TG_OK) {
            return TG_ERROR;
        }
        return tg_mock_body_end(c, 200, "application/json", "");
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"id\":\"%s\",\"type\":\"message\",\"role\":"
                           "\"assistant\",\"model\":\"%s\",\"content\":"
                           "[{\"type\":\"text\",\"text\":\"",
                           r->mid, r->model) != TG_OK ||
        tg_mock_text(c) != TG_OK ||
        tg_mock_out_printf(
            c,
            "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
            "\"usage\":{\"input_tokens\":%u,\"cache_creation_input_tokens\":"
            "%u,\"cache_read_input_tokens\":%u,\"output_tokens\":%u}}",
            r->in_tok, r->cache_create, r->cache_read, r->out_tok) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

/* POST /v1/messages and /v1/messages/count_tokens. */
static int
tg_mock_answer_messages(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char msg[256];

    if (!r->has_key) {
        return tg_mock_error_anthropic(c, 401, "authentication_error",
                                       "x-api-key header is required", "", "");
    }
    if (!r->key_ok) {
        return tg_mock_error_anthropic(c, 401, "authentication_error",
                                       "invalid x-api-key", "", "");
    }
    if (!r->has_version) {
        return tg_mock_error_anthropic(c, 400, "invalid_request_error",
                                       "anthropic-version: header is required",
                                       "", "");
    }
    if (!r->json_ok) {
        snprintf(msg, sizeof(msg), "invalid JSON body: %s", r->json_err);
        return tg_mock_error_anthropic(c, 400, "invalid_request_error", msg, "",
                                       "");
    }
    if (!r->has_model ||
        (r->path == TG_MOCK_P_MESSAGES && !r->has_max_tokens) ||
        !r->has_messages) {
        snprintf(msg, sizeof(msg), "%s: Field required",
                 !r->has_model      ? "model"
                 : !r->has_messages ? "messages"
                                    : "max_tokens");
        return tg_mock_error_anthropic(c, 400, "invalid_request_error", msg, "",
                                       "");
    }
    if (r->path == TG_MOCK_P_COUNT_TOKENS) {
        r->out_tok = r->cache_read = r->cache_create = 0;
        r->stream = false;
        if (tg_mock_body_begin(c) != TG_OK ||
            tg_mock_out_printf(c, "{\"input_tokens\":%u}", r->in_tok) !=
                TG_OK) {
            return TG_ERROR;
        }
        return tg_mock_body_end(c, 200, "application/json", "");
    }
    if (r->stream) {
        return tg_mock_stream_start(c);
    }
    return tg_mock_messages_body(c);
}

/* The key and body checks every OpenAI route starts with: TG_DECLINED
 * when they pass, else the error answer's result (TG_OK or TG_ERROR). */
static int
tg_mock_openai_checks(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    char msg[256];

    if (!r->has_bearer || !r->bearer_ok) {
        return tg_mock_error_openai(
            c, 401, "invalid_request_error",
            !r->has_bearer
                ? "You didn't provide an API key. You need to provide your "
                  "API key in an Authorization header using Bearer auth "
                  "(i.e. Authorization: Bearer YOUR_KEY)."
                : "Incorrect API key provided.",
            NULL, "invalid_api_key", "");
    }
    if (!r->json_ok) {
        snprintf(msg, sizeof(msg),
                 "We could not parse the JSON body of your request. (%s)",
                 r->json_err);
        return tg_mock_error_openai(c, 400, "invalid_request_error", msg, NULL,
                                    NULL, "");
    }
    return TG_DECLINED;
}

/* POST /v1/chat/completions. */
static int
tg_mock_answer_chat(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    int rc = tg_mock_openai_checks(c);

    if (rc != TG_DECLINED) {
        return rc;
    }
    if (!r->has_model) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "you must provide a model parameter", NULL,
                                    NULL, "");
    }
    if (!r->has_messages) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "Missing required parameter: 'messages'.",
                                    "messages", "missing_required_parameter",
                                    "");
    }
    r->created = tg_time_wall_ms() / 1000;
    if (r->stream) {
        return tg_mock_stream_start(c);
    }
    if (r->tool[0] != '\0') {
        char args[128];

        tg_json_escape(args, sizeof(args), tg_mock_args,
                       sizeof(tg_mock_args) - 1);
        if (tg_mock_body_begin(c) != TG_OK ||
            tg_mock_out_printf(
                c,
                "{\"id\":\"%s\",\"object\":\"chat.completion\","
                "\"created\":%llu,\"model\":\"%s\",\"choices\":[{\"index\":"
                "0,\"message\":{\"role\":\"assistant\",\"content\":null,"
                "\"tool_calls\":[{\"id\":\"call_mock_%s\",\"type\":"
                "\"function\",\"function\":{\"name\":\"%s\",\"arguments\":"
                "\"%s\"}}],\"refusal\":null},\"logprobs\":null,"
                "\"finish_reason\":\"tool_calls\"}],\"usage\":{"
                "\"prompt_tokens\":%u,\"completion_tokens\":%u,"
                "\"total_tokens\":%u,\"prompt_tokens_details\":{"
                "\"cached_tokens\":%u}}}",
                r->mid, (unsigned long long)r->created, r->model, r->id + 4,
                r->tool, args, r->in_tok, r->out_tok, r->in_tok + r->out_tok,
                r->cache_read) != TG_OK) {
            return TG_ERROR;
        }
        return tg_mock_body_end(c, 200, "application/json", "");
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_out_printf(c,
                           "{\"id\":\"%s\",\"object\":\"chat.completion\","
                           "\"created\":%llu,\"model\":\"%s\",\"choices\":"
                           "[{\"index\":0,\"message\":{\"role\":\"assistant\","
                           "\"content\":\"",
                           r->mid, (unsigned long long)r->created,
                           r->model) != TG_OK ||
        tg_mock_text(c) != TG_OK ||
        tg_mock_out_printf(
            c,
            "\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
            "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":%u,"
            "\"completion_tokens\":%u,\"total_tokens\":%u,"
            "\"prompt_tokens_details\":{\"cached_tokens\":%u,"
            "\"audio_tokens\":0},\"completion_tokens_details\":"
            "{\"reasoning_tokens\":0,\"audio_tokens\":0,"
            "\"accepted_prediction_tokens\":0,"
            "\"rejected_prediction_tokens\":0}},\"service_tier\":\"default\","
            "\"system_fingerprint\":\"fp_mock\"}",
            r->in_tok, r->out_tok, r->in_tok + r->out_tok,
            r->cache_read) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

/* POST /v1/responses: the OpenAI Responses API, a text answer or a
 * function call. */
static int
tg_mock_answer_responses(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    int rc = tg_mock_openai_checks(c);

    if (rc != TG_DECLINED) {
        return rc;
    }
    if (!r->has_model) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "Missing required parameter: 'model'.",
                                    "model", "missing_required_parameter", "");
    }
    if (!r->has_messages) {
        return tg_mock_error_openai(c, 400, "invalid_request_error",
                                    "Missing required parameter: 'input'.",
                                    "input", "missing_required_parameter", "");
    }
    r->created = tg_time_wall_ms() / 1000;
    if (r->stream) {
        return tg_mock_stream_start(c);
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_mock_resp_object(r, &c->out, true) != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

/* GET /v1/models: Anthropic shape, or OpenAI shape for a Bearer-only
 * client. */
static int
tg_mock_answer_models(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;

    if (!r->has_key && r->has_bearer) {
        r->openai = true;
        if (!r->bearer_ok) {
            return tg_mock_error_openai(c, 401, "invalid_request_error",
                                        "Incorrect API key provided.", NULL,
                                        "invalid_api_key", "");
        }
        return tg_mock_respond(
            c, 200, "application/json", "",
            "{\"object\":\"list\",\"data\":["
            "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1715367049,"
            "\"owned_by\":\"system\"},"
            "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":"
            "1721172741,\"owned_by\":\"system\"}]}");
    }
    if (!r->has_key || !r->key_ok) {
        return tg_mock_error_anthropic(
            c, 401, "authentication_error",
            r->has_key ? "invalid x-api-key" : "x-api-key header is required",
            "", "");
    }
    return tg_mock_respond(
        c, 200, "application/json", "",
        "{\"data\":["
        "{\"type\":\"model\",\"id\":\"claude-sonnet-4-5-20250929\","
        "\"display_name\":\"Claude Sonnet 4.5\","
        "\"created_at\":\"2025-09-29T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-opus-4-1-20250805\","
        "\"display_name\":\"Claude Opus 4.1\","
        "\"created_at\":\"2025-08-05T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-haiku-4-5-20251001\","
        "\"display_name\":\"Claude Haiku 4.5\","
        "\"created_at\":\"2025-10-01T00:00:00Z\"}],"
        "\"has_more\":false,\"first_id\":\"claude-sonnet-4-5-20250929\","
        "\"last_id\":\"claude-haiku-4-5-20251001\"}");
}

#define TG_MOCK_BOMB_BYTES ((size_t)256 << 20) /* inflated size */

/*
 * gzip-bomb: a 200 application/json answer whose gzip body (about 256 KB)
 * inflates to 256 MiB of spaces.  Built once per process (a second or so)
 * and sent whatever the request's accept-encoding said, as a hostile
 * upstream would.
 */
static int
tg_mock_answer_bomb(tg_mock_conn_t *c)
{
    static unsigned char *gz;
    static size_t gz_len;
    tg_mock_req_t *r = &c->r;
    char head[TG_MOCK_HEADROOM];
    int n;

    if (gz == NULL) {
        static unsigned char in[1 << 16];
        size_t cap = TG_MOCK_BOMB_BYTES / 512, left = TG_MOCK_BOMB_BYTES;
        z_stream z;

        memset(in, ' ', sizeof(in));
        memset(&z, 0, sizeof(z));
        gz = malloc(cap);
        if (gz == NULL || deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 9,
                                       Z_DEFAULT_STRATEGY) != Z_OK) {
            free(gz);
            gz = NULL;
            return TG_ERROR;
        }
        z.next_out = gz;
        z.avail_out = (uInt)cap;
        while (left > 0 && z.avail_out > 0) {
            z.next_in = in;
            z.avail_in = (uInt)sizeof(in);
            left -= sizeof(in);
            (void)deflate(&z, left > 0 ? Z_NO_FLUSH : Z_FINISH);
        }
        gz_len = cap - z.avail_out;
        deflateEnd(&z);
    }
    if (tg_mock_body_begin(c) != TG_OK ||
        tg_buf_append(&c->out, gz, gz_len) != TG_OK) {
        return TG_ERROR;
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                 "content-encoding: gzip\r\ncontent-length: %zu\r\n"
                 "request-id: %s\r\nconnection: %s\r\n\r\n",
                 gz_len, r->id,
                 (r->keep_alive && !r->close_after) ? "keep-alive" : "close");
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        return TG_ERROR;
    }
    memcpy(c->out.data + TG_MOCK_HEADROOM - n, head, (size_t)n);
    c->out.pos = TG_MOCK_HEADROOM - (size_t)n;
    r->status = 200;
    c->state = TG_MOCK_S_WRITE;
    return TG_OK;
}


/*
 * huge-head: a status line and 1 MiB of header lines with no blank line
 * after them, then silence as for hang.  TG_OK (the caller drives it out)
 * or TG_ERROR.
 */
int
tg_mock_huge_head(tg_mock_conn_t *c)
{
    char pad[1001];
    int i;

    memset(pad, 'h', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    if (tg_mock_out_printf(c, "HTTP/1.1 200 OK\r\ncontent-type: "
                              "application/json\r\n") != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < 1024; i++) {
        if (tg_mock_out_printf(c, "x-mock-pad-%04d: %s\r\n", i, pad) != TG_OK) {
            return TG_ERROR;
        }
    }
    c->r.status = 200;
    c->state = TG_MOCK_S_HANG;
    return TG_OK;
}


/* Buffer the answer of a /v1 request once its fault delays are over.
 * TG_OK (the caller drives it out) or TG_ERROR (the caller closes). */
int
tg_mock_answer(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    int rc;

    if (r->fault.status != 0) {
        rc = tg_mock_answer_fault(c);
    } else if (r->fault.bomb) {
        rc = tg_mock_answer_bomb(c);
    } else if (r->path == TG_MOCK_P_OTHER) {
        rc = r->openai ? tg_mock_error_openai(c, 404, "invalid_request_error",
                                              "Unknown request URL.", NULL,
                                              "unknown_url", "")
                       : tg_mock_error_anthropic(c, 404, "not_found_error",
                                                 "Not Found", "", "");
    } else if ((r->path == TG_MOCK_P_MODELS) != (r->method == TG_HTTP_GET)) {
        rc = r->openai
                 ? tg_mock_error_openai(c, 405, "invalid_request_error",
                                        "Method not allowed.", NULL, NULL, "")
                 : tg_mock_error_anthropic(c, 405, "invalid_request_error",
                                           "Method Not Allowed", "", "");
    } else if (r->path == TG_MOCK_P_MODELS) {
        rc = tg_mock_answer_models(c);
    } else if (r->path == TG_MOCK_P_CHAT) {
        rc = tg_mock_answer_chat(c);
    } else if (r->path == TG_MOCK_P_RESPONSES) {
        rc = tg_mock_answer_responses(c);
    } else {
        rc = tg_mock_answer_messages(c);
    }
    if (rc != TG_OK) {
        tg_log(TG_LOG_WARN, 0, "cannot build a response; closing fd %d", c->fd);
        return TG_ERROR;
    }
    if (r->status != 200) {
        /* Token counts belong to successful answers only. */
        r->in_tok = r->out_tok = r->cache_read = r->cache_create = 0;
        r->reasoning = 0;
    }
    return TG_OK;
}

static int
tg_mock_answer_stats(tg_mock_conn_t *c)
{
    static const struct {
        const char *name;
        int from, to;
    } groups[] = {
        {NULL, TG_MOCK_C_REQUESTS, TG_MOCK_C_ACCEPTED},
        {"connections", TG_MOCK_C_ACCEPTED, TG_MOCK_C_IN_TOK},
        {"tokens", TG_MOCK_C_IN_TOK, TG_MOCK_C_PATH},
        {"paths", TG_MOCK_C_PATH, TG_MOCK_C_FAULT},
        {"faults", TG_MOCK_C_FAULT, TG_MOCK_C_STATUS},
        {"status", TG_MOCK_C_STATUS, TG_MOCK_C_MAX},
    };
    size_t g;
    int i;

    if (tg_mock_body_begin(c) != TG_OK || tg_mock_out_printf(c, "{") != TG_OK) {
        return TG_ERROR;
    }
    for (g = 0; g < TG_NELEMS(groups); g++) {
        if (groups[g].name != NULL &&
            tg_mock_out_printf(c, ",\"%s\":{", groups[g].name) != TG_OK) {
            return TG_ERROR;
        }
        for (i = groups[g].from; i < groups[g].to; i++) {
            uint64_t v = atomic_load_explicit(&tg_mock_shm->cnt[i],
                                              memory_order_relaxed);

            if (tg_mock_out_printf(
                    c, "%s\"%s\":%llu", i == groups[g].from ? "" : ",",
                    tg_mock_cnt_names[i], (unsigned long long)v) != TG_OK) {
                return TG_ERROR;
            }
        }
        if (groups[g].name != NULL && tg_mock_out_printf(c, "}") != TG_OK) {
            return TG_ERROR;
        }
    }
    if (tg_mock_out_printf(c, "}\n") != TG_OK) {
        return TG_ERROR;
    }
    return tg_mock_body_end(c, 200, "application/json", "");
}

static int
tg_mock_answer_fault_ctl(tg_mock_conn_t *c, const char *body, size_t len)
{
    tg_mock_fault_t f;
    char err[160], out[1024], spec[TG_MOCK_SPEC_MAX * 6];

    if (c->r.method == TG_HTTP_POST) {
        if (tg_mock_fault_parse(&f, body, len, err, sizeof(err)) != TG_OK) {
            tg_json_escape(spec, sizeof(spec), err, strlen(err));
            snprintf(out, sizeof(out), "{\"error\":\"%s\"}\n", spec);
            return tg_mock_respond(c, 400, "application/json", "", out);
        }
        tg_mock_fault_store(&f);
        tg_log(TG_LOG_NOTICE, 0, "global fault set to \"%s\"",
               f.spec[0] ? f.spec : "none");
    } else if (c->r.method != TG_HTTP_GET) {
        return tg_mock_respond(c, 405, "text/plain", "",
                               "method not allowed\n");
    }
    tg_mock_fault_sync();
    tg_json_escape(spec, sizeof(spec), tg_mock_gfault.spec,
                   strlen(tg_mock_gfault.spec));
    snprintf(out, sizeof(out), "{\"fault\":\"%s\",\"remaining\":%lld}\n",
             spec[0] ? spec : "none",
             (long long)atomic_load(&tg_mock_shm->fault_left));
    return tg_mock_respond(c, 200, "application/json", "", out);
}

/* Answer the mock's own routes (health, fault control, stats). */
int
tg_mock_answer_local(tg_mock_conn_t *c, const char *body, size_t len)
{
    int i;

    switch (c->r.path) {
    case TG_MOCK_P_HEALTHZ:
        return tg_mock_respond(c, 200, "text/plain", "", "ok\n");
    case TG_MOCK_P_FAULT:
        return tg_mock_answer_fault_ctl(c, body, len);
    case TG_MOCK_P_STATS:
        return tg_mock_answer_stats(c);
    default:
        if (c->r.method != TG_HTTP_POST) {
            return tg_mock_respond(c, 405, "text/plain", "",
                                   "method not allowed\n");
        }
        for (i = 0; i < TG_MOCK_C_MAX; i++) {
            if (i != TG_MOCK_C_ACTIVE) {
                atomic_store(&tg_mock_shm->cnt[i], 0);
            }
        }
        return tg_mock_respond(c, 200, "application/json", "",
                               "{\"reset\":true}\n");
    }
}
