/*
 * worker/translate.c
 *      Responses: JSON bodies, error bodies and event streams, translated
 *      from the upstream's API style into the client's.
 *
 * NOTES
 *      A tg_translate_t is created when the upstream's response head is
 *      committed and fed the body as curl delivers it.  Streams go through
 *      core/sse; each complete event is parsed (jansson) and answered at
 *      once with zero or more events of the client's API, written into one
 *      bounded output buffer and handed to the emit callback: nothing of a
 *      stream is held beyond the event being read.  The state between
 *      events is a handful of fields: ids, the open content block, the
 *      stop reason and the usage seen.  Anthropic streams send content
 *      blocks one after the other, and OpenAI streams send tool calls one
 *      after the other, which is what makes a constant-size state enough.
 *      A JSON or error body is held (bounded) and translated when it is
 *      complete.  Never logs; worker only.
 */
#include "worker/translate.h"
#include "core/buf.h"
#include "core/sse.h"
#include "worker/respond.h"
#include "worker/translate_fast.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TG_XT_OUT_MAX (TG_TRANSLATE_EVENT_MAX * 6 + 65536)

/* The Anthropic content block open in the stream. */
enum { TG_XT_NONE = 0, TG_XT_TEXT, TG_XT_TOOL, TG_XT_OTHER };

struct tg_translate_s {
    int client_api;     /* TG_API_* of the client */
    int status;         /* upstream status */
    bool sse;           /* the upstream body is an event stream */
    bool include_usage; /* OpenAI client: send the usage chunk */
    bool started;       /* first event (role chunk / message_start) out */
    bool done;          /* the stream's last event is out */
    bool errored;       /* an error event is out: the rest is ignored */
    bool idle;          /* the SSE parser is between events */
    bool finished;      /* OpenAI upstream: finish_reason seen */
    bool have_usage;    /* OpenAI upstream: usage chunk seen */
    int block;          /* TG_XT_* of the open block */
    int block_index;    /* its index (Anthropic client) */
    int next_index;     /* next block index (Anthropic client) */
    int tools;          /* tool calls so far (OpenAI tool index) */
    long tool_index;    /* OpenAI upstream: index of the open tool call */
    int64_t created;    /* chat.completion.chunk created */
    uint64_t in, out, cache_read, cache_write; /* usage seen */
    char finish[32];                           /* client's stop/finish reason */
    char id[128];
    char model[128];
    char pre[512];  /* Anthropic upstream: a chunk's opening, built once */
    size_t pre_len; /* 0: not built (or too long to keep) */
    tg_sse_t parser;
    tg_buf_t body; /* held JSON or error body */
    tg_buf_t o;    /* translated output of one event */
    tg_translate_emit_pt emit;
    void *ctx;
    tg_translate_observe_pt observe; /* sees each upstream event, or NULL */
    void *observe_ctx;
};


/* Output helpers --------------------------------------------------------- */

static int
tg_xt_put(tg_translate_t *x, const char *p, size_t n)
{
    return tg_buf_append(&x->o, p, n) == TG_OK ? TG_OK : TG_ERROR;
}


static int
tg_xt_puts(tg_translate_t *x, const char *s)
{
    return tg_xt_put(x, s, strlen(s));
}


/* <n> bytes of UTF-8 at <s> as a JSON string, quotes included. */
static int
tg_xt_str(tg_translate_t *x, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run;
    char esc[6];

    if (tg_buf_reserve(&x->o, n + 2) != TG_OK || tg_xt_put(x, "\"", 1)) {
        return TG_ERROR;
    }
    while (p < end) {
        for (run = p; p < end && *p >= 0x20 && *p != '"' && *p != '\\'; p++) {
        }
        if (p > run && tg_xt_put(x, (const char *)run, (size_t)(p - run))) {
            return TG_ERROR;
        }
        if (p == end) {
            break;
        }
        esc[0] = '\\';
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            n = 2;
        } else {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        if (tg_xt_put(x, esc, n) != TG_OK) {
            return TG_ERROR;
        }
        p++;
    }
    return tg_xt_put(x, "\"", 1);
}


/* A jansson string value (or "" when <v> is not a string) as JSON. */
static int
tg_xt_jstr(tg_translate_t *x, json_t *v)
{
    return json_is_string(v)
               ? tg_xt_str(x, json_string_value(v), json_string_length(v))
               : tg_xt_put(x, "\"\"", 2);
}


/* The decimal digits of <v>, without printf. */
static int
tg_xt_int(tg_translate_t *x, long v)
{
    char buf[24], *p = buf + sizeof(buf);
    unsigned long u = v < 0 ? 0 - (unsigned long)v : (unsigned long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0) {
        *--p = '-';
    }
    return tg_xt_put(x, p, (size_t)(buf + sizeof(buf) - p));
}


/*
 * A string value: <raw> (the insides of a JSON string, escapes kept,
 * from the fast path) copied between quotes as it is, or when raw.data is
 * NULL jansson string <v> written out (tg_xt_jstr).
 */
static int
tg_xt_val(tg_translate_t *x, json_t *v, tg_str_t raw)
{
    if (raw.data == NULL) {
        return tg_xt_jstr(x, v);
    }
    if (tg_xt_put(x, "\"", 1) != TG_OK || tg_xt_put(x, raw.data, raw.len)) {
        return TG_ERROR;
    }
    return tg_xt_put(x, "\"", 1);
}


/* The length of a string value as tg_xt_val takes it: 0 means empty or
 * not a string (the raw insides of a string are empty only when it is). */
static size_t
tg_xt_val_len(json_t *v, tg_str_t raw)
{
    return raw.data != NULL ? raw.len : json_string_length(v);
}


static int tg_xt_printf(tg_translate_t *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
tg_xt_printf(tg_translate_t *x, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return TG_ERROR;
    }
    return tg_xt_put(x, buf, (size_t)n);
}


/* Hand the translated output to the client and empty the buffer. */
static int
tg_xt_flush(tg_translate_t *x)
{
    int rc = TG_OK;

    if (tg_buf_len(&x->o) > 0) {
        rc = x->emit(x->ctx, x->o.data + x->o.pos, tg_buf_len(&x->o));
    }
    tg_buf_reset(&x->o, 16384);
    return rc == TG_OK ? TG_OK : TG_ERROR;
}


/* Copy string <v> into <dst> of <cap> bytes (cut), when it is a string. */
static void
tg_xt_keep(char *dst, size_t cap, json_t *v)
{
    if (json_is_string(v)) {
        snprintf(dst, cap, "%s", json_string_value(v));
    }
}


/* String member <name> of <o>, or "" (upstream bodies may lack any). */
static const char *
tg_xt_sv(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));

    return v != NULL ? v : "";
}


static uint64_t
tg_xt_u64(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    return json_is_integer(v) && json_integer_value(v) > 0
               ? (uint64_t)json_integer_value(v)
               : 0;
}


/* Stop reasons ------------------------------------------------------------ */

static const char *
tg_xt_finish_reason(const char *stop)
{
    if (strcmp(stop, "max_tokens") == 0 ||
        strcmp(stop, "model_context_window_exceeded") == 0) {
        return "length";
    }
    if (strcmp(stop, "tool_use") == 0) {
        return "tool_calls";
    }
    if (strcmp(stop, "refusal") == 0) {
        return "content_filter";
    }
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}


static const char *
tg_xt_stop_reason(const char *finish)
{
    if (strcmp(finish, "length") == 0) {
        return "max_tokens";
    }
    if (strcmp(finish, "tool_calls") == 0 ||
        strcmp(finish, "function_call") == 0) {
        return "tool_use";
    }
    if (strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }
    return "end_turn";
}


/* Errors ------------------------------------------------------------------ */

/* See translate.h. */
int
tg_translate_status(int client_api, int status)
{
    if (client_api == TG_API_OPENAI && status == 529) {
        return 503;
    }
    return status;
}


/* The Anthropic error type of an OpenAI error with <status> and <type>,
 * <msg>. */
static const char *
tg_xt_anthropic_type(int status, const char *type, const char *msg)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    default:
        break;
    }
    if ((type != NULL && strstr(type, "overloaded") != NULL) ||
        (msg != NULL && strstr(msg, "overloaded") != NULL)) {
        return "overloaded_error";
    }
    return status >= 500 ? "api_error" : "invalid_request_error";
}


/* The OpenAI type and code of an Anthropic error type <type>. */
static void
tg_xt_openai_type(const char *type, const char *detail, const char **otype,
                  const char **code)
{
    *code = NULL;
    *otype = "invalid_request_error";
    if (type == NULL) {
        *otype = "server_error";
    } else if (strcmp(type, "rate_limit_error") == 0) {
        if (detail != NULL &&
            strcmp(detail, "enforced_spend_limit_reached") == 0) {
            *otype = *code = "insufficient_quota";
        } else {
            *otype = "requests";
            *code = "rate_limit_exceeded";
        }
    } else if (strcmp(type, "overloaded_error") == 0 ||
               strcmp(type, "api_error") == 0 ||
               strcmp(type, "timeout_error") == 0) {
        *otype = "server_error";
    } else if (strcmp(type, "authentication_error") == 0) {
        *code = "invalid_api_key";
    } else if (strcmp(type, "permission_error") == 0) {
        *code = "permission_denied";
    } else if (strcmp(type, "not_found_error") == 0) {
        *code = "not_found";
    }
}


/*
 * The error object of upstream error JSON <root> (either shape) written in
 * the client's shape: a whole body, or the data of a stream's error event
 * when <event>.  <status> is the upstream status (0 inside a stream).
 */
static int
tg_xt_error(tg_translate_t *x, json_t *root, int status, bool event)
{
    json_t *e = json_object_get(root, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *detail = json_string_value(
        json_object_get(json_object_get(e, "details"), "error_code"));
    const char *otype, *code;
    char fallback[64];

    if (msg == NULL) {
        msg = json_is_string(e) ? json_string_value(e) : NULL;
    }
    if (msg == NULL) {
        snprintf(fallback, sizeof(fallback), "upstream error (status %d)",
                 status);
        msg = fallback;
    }
    if (x->client_api == TG_API_OPENAI) {
        tg_xt_openai_type(type, detail, &otype, &code);
        if (status == 0 && type == NULL) {
            otype = "server_error";
        }
        if ((event && tg_xt_puts(x, "data: ") != TG_OK) ||
            tg_xt_puts(x, "{\"error\":{\"message\":") != TG_OK ||
            tg_xt_str(x, msg, strlen(msg)) != TG_OK ||
            tg_xt_printf(x, ",\"type\":\"%s\",\"param\":null,\"code\":%s%s%s}}",
                         otype, code ? "\"" : "", code ? code : "null",
                         code ? "\"" : "") != TG_OK) {
            return TG_ERROR;
        }
        return event ? tg_xt_puts(x, "\n\n") : TG_OK;
    }
    type = tg_xt_anthropic_type(status == 0 ? 500 : status, type, msg);
    if ((event && tg_xt_puts(x, "event: error\ndata: ") != TG_OK) ||
        tg_xt_printf(x,
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                     "\"message\":",
                     type) != TG_OK ||
        tg_xt_str(x, msg, strlen(msg)) != TG_OK || tg_xt_puts(x, "}}")) {
        return TG_ERROR;
    }
    return event ? tg_xt_puts(x, "\n\n") : TG_OK;
}


/* Non-stream bodies ------------------------------------------------------- */

/* An Anthropic message <m> as a chat.completion, into x->o. */
static int
tg_xt_a2o_body(tg_translate_t *x, json_t *m)
{
    json_t *content = json_object_get(m, "content"), *b, *calls, *msg, *o;
    json_t *usage = json_object_get(m, "usage");
    const char *stop = json_string_value(json_object_get(m, "stop_reason"));
    char *text = NULL, *dump, *args, *p;
    size_t len = 0, i, n;
    uint64_t prompt, out;
    int rc = TG_ERROR;

    calls = json_array();
    json_array_foreach(content, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        if (type != NULL && strcmp(type, "text") == 0 &&
            json_is_string(json_object_get(b, "text"))) {
            n = json_string_length(json_object_get(b, "text"));
            p = realloc(text, len + n + 1);
            if (p == NULL) {
                goto done;
            }
            text = p;
            memcpy(text + len, json_string_value(json_object_get(b, "text")),
                   n);
            len += n;
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            args = json_dumps(json_object_get(b, "input"),
                              JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(
                calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                 tg_xt_sv(b, "id"), "type", "function",
                                 "function", "name", tg_xt_sv(b, "name"),
                                 "arguments", args != NULL ? args : "{}"));
            free(args);
        }
    }
    msg = json_pack("{s:s,s:o,s:n}", "role", "assistant", "content",
                    text != NULL ? json_stringn(text, len) : json_null(),
                    "refusal");
    if (msg != NULL && json_array_size(calls) > 0) {
        json_object_set(msg, "tool_calls", calls);
    }
    prompt = tg_xt_u64(usage, "input_tokens") +
             tg_xt_u64(usage, "cache_read_input_tokens") +
             tg_xt_u64(usage, "cache_creation_input_tokens");
    out = tg_xt_u64(usage, "output_tokens");
    o = json_pack(
        "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:{s:I,s:I,s:I,"
        "s:{s:I}}}",
        "id", tg_xt_sv(m, "id"), "object", "chat.completion", "created",
        (json_int_t)x->created, "model", tg_xt_sv(m, "model"), "choices",
        "index", 0, "message", msg, "logprobs", "finish_reason",
        tg_xt_finish_reason(stop != NULL ? stop : "end_turn"), "usage",
        "prompt_tokens", (json_int_t)prompt, "completion_tokens",
        (json_int_t)out, "total_tokens", (json_int_t)(prompt + out),
        "prompt_tokens_details", "cached_tokens",
        (json_int_t)tg_xt_u64(usage, "cache_read_input_tokens"));
    dump = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (dump != NULL) {
        rc = tg_xt_puts(x, dump);
        free(dump);
    }
    json_decref(o);
done:
    free(text);
    json_decref(calls);
    return rc;
}


/* A chat.completion <c> as an Anthropic message, into x->o. */
static int
tg_xt_o2a_body(tg_translate_t *x, json_t *c)
{
    json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
    json_t *msg = json_object_get(ch, "message"), *blocks, *call, *in, *o;
    json_t *usage = json_object_get(c, "usage");
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    uint64_t prompt, cached;
    char *dump;
    size_t i;
    int rc = TG_ERROR;

    blocks = json_array();
    if (json_string_length(json_object_get(msg, "content")) > 0) {
        json_array_append_new(blocks,
                              json_pack("{s:s,s:O}", "type", "text", "text",
                                        json_object_get(msg, "content")));
    }
    if (json_string_length(json_object_get(msg, "refusal")) > 0) {
        json_array_append_new(blocks,
                              json_pack("{s:s,s:O}", "type", "text", "text",
                                        json_object_get(msg, "refusal")));
    }
    json_array_foreach(json_object_get(msg, "tool_calls"), i, call)
    {
        json_t *fn = json_object_get(call, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));

        in = args != NULL ? json_loads(args, 0, NULL) : NULL;
        if (!json_is_object(in)) {
            /* Arguments the model failed to write as an object. */
            json_decref(in);
            in = json_object();
        }
        json_array_append_new(blocks,
                              json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use",
                                        "id", tg_xt_sv(call, "id"), "name",
                                        tg_xt_sv(fn, "name"), "input", in));
    }
    prompt = tg_xt_u64(usage, "prompt_tokens");
    cached = tg_xt_u64(json_object_get(usage, "prompt_tokens_details"),
                       "cached_tokens");
    cached = cached < prompt ? cached : prompt;
    o = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:n,s:{s:I,s:I,s:I,s:I}}", "id",
                  tg_xt_sv(c, "id"), "type", "message", "role", "assistant",
                  "model", tg_xt_sv(c, "model"), "content", blocks,
                  "stop_reason", tg_xt_stop_reason(fin != NULL ? fin : "stop"),
                  "stop_sequence", "usage", "input_tokens",
                  (json_int_t)(prompt - cached), "cache_creation_input_tokens",
                  (json_int_t)0, "cache_read_input_tokens", (json_int_t)cached,
                  "output_tokens",
                  (json_int_t)tg_xt_u64(usage, "completion_tokens"));
    dump = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (dump != NULL) {
        rc = tg_xt_puts(x, dump);
        free(dump);
    }
    json_decref(o);
    json_decref(blocks);
    return rc;
}


/* The held body is complete: translate it. */
static int
tg_xt_body_done(tg_translate_t *x)
{
    json_t *root = json_loadb(x->body.data ? x->body.data + x->body.pos : "",
                              tg_buf_len(&x->body), 0, NULL);
    int rc;

    if (x->status >= 400 || !json_is_object(root) ||
        json_object_get(root, "error") != NULL ||
        (json_object_get(root, "type") != NULL &&
         json_is_string(json_object_get(root, "type")) &&
         strcmp(json_string_value(json_object_get(root, "type")), "error") ==
             0)) {
        rc = tg_xt_error(x, root, x->status, false);
    } else if (x->client_api == TG_API_OPENAI) {
        rc = tg_xt_a2o_body(x, root);
    } else {
        rc = tg_xt_o2a_body(x, root);
    }
    json_decref(root);
    return rc == TG_OK ? tg_xt_flush(x) : TG_ERROR;
}


/* Anthropic stream -> chat.completion.chunk ------------------------------- */

static int tg_xt_chunk_build(tg_translate_t *x);

/*
 * Open a chunk up to its delta object.  The opening is the same for every
 * chunk of the stream once the id and model are known, so it is built
 * once into x->pre (when it fits) and copied afterwards.
 */
static int
tg_xt_chunk(tg_translate_t *x)
{
    size_t start = tg_buf_len(&x->o);

    if (x->pre_len > 0) {
        return tg_xt_put(x, x->pre, x->pre_len);
    }
    if (tg_xt_chunk_build(x) != TG_OK) {
        return TG_ERROR;
    }
    if (x->started && tg_buf_len(&x->o) - start <= sizeof(x->pre)) {
        x->pre_len = tg_buf_len(&x->o) - start;
        memcpy(x->pre, x->o.data + x->o.pos + start, x->pre_len);
    }
    return TG_OK;
}


/* Write a chunk's opening (tg_xt_chunk). */
static int
tg_xt_chunk_build(tg_translate_t *x)
{
    if (tg_xt_puts(x, "data: {\"id\":") != TG_OK ||
        tg_xt_str(x, x->id, strlen(x->id)) != TG_OK ||
        tg_xt_printf(x,
                     ",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                     "\"model\":",
                     (long long)x->created) != TG_OK ||
        tg_xt_str(x, x->model, strlen(x->model)) != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_puts(x, ",\"choices\":[{\"index\":0,\"delta\":");
}


/* Close a chunk opened by tg_xt_chunk, with <finish> or null. */
static int
tg_xt_chunk_end(tg_translate_t *x, const char *finish)
{
    return finish != NULL
               ? tg_xt_printf(x,
                              ",\"logprobs\":null,\"finish_reason\":\"%s\"}]}"
                              "\n\n",
                              finish)
               : tg_xt_puts(x, ",\"logprobs\":null,\"finish_reason\":null}]}"
                               "\n\n");
}


/* The role chunk that opens an OpenAI stream. */
static int
tg_xt_a2o_start(tg_translate_t *x)
{
    if (x->started) {
        return TG_OK;
    }
    x->started = true;
    if (tg_xt_chunk(x) != TG_OK ||
        tg_xt_puts(x, "{\"role\":\"assistant\",\"content\":\"\"}") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_chunk_end(x, NULL);
}


/* A content chunk of string <text> (or <raw>, see tg_xt_val). */
static int
tg_xt_a2o_text(tg_translate_t *x, json_t *text, tg_str_t raw)
{
    if (tg_xt_val_len(text, raw) == 0) {
        return TG_OK;
    }
    if (tg_xt_chunk(x) != TG_OK || tg_xt_puts(x, "{\"content\":") != TG_OK ||
        tg_xt_val(x, text, raw) != TG_OK || tg_xt_puts(x, "}") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_chunk_end(x, NULL);
}


/* The last chunks: finish, usage (when asked), [DONE]. */
static int
tg_xt_a2o_stop(tg_translate_t *x)
{
    uint64_t prompt = x->in + x->cache_read + x->cache_write;

    x->done = true;
    if (tg_xt_a2o_start(x) != TG_OK || tg_xt_chunk(x) != TG_OK ||
        tg_xt_puts(x, "{}") != TG_OK ||
        tg_xt_chunk_end(x, x->finish[0] ? x->finish : "stop") != TG_OK) {
        return TG_ERROR;
    }
    if (x->include_usage &&
        (tg_xt_puts(x, "data: {\"id\":") != TG_OK ||
         tg_xt_str(x, x->id, strlen(x->id)) != TG_OK ||
         tg_xt_printf(x,
                      ",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                      "\"model\":",
                      (long long)x->created) != TG_OK ||
         tg_xt_str(x, x->model, strlen(x->model)) != TG_OK ||
         tg_xt_printf(x,
                      ",\"choices\":[],\"usage\":{\"prompt_tokens\":%llu,"
                      "\"completion_tokens\":%llu,\"total_tokens\":%llu,"
                      "\"prompt_tokens_details\":{\"cached_tokens\":%llu}}}"
                      "\n\n",
                      (unsigned long long)prompt, (unsigned long long)x->out,
                      (unsigned long long)(prompt + x->out),
                      (unsigned long long)x->cache_read) != TG_OK)) {
        return TG_ERROR;
    }
    return tg_xt_puts(x, "data: [DONE]\n\n");
}


/* Usage counters of an Anthropic usage object (they only grow). */
static void
tg_xt_a_usage(tg_translate_t *x, json_t *u)
{
    uint64_t v;

    if ((v = tg_xt_u64(u, "input_tokens")) > x->in) {
        x->in = v;
    }
    if ((v = tg_xt_u64(u, "cache_read_input_tokens")) > x->cache_read) {
        x->cache_read = v;
    }
    if ((v = tg_xt_u64(u, "cache_creation_input_tokens")) > x->cache_write) {
        x->cache_write = v;
    }
    if ((v = tg_xt_u64(u, "output_tokens")) > x->out) {
        x->out = v;
    }
}


static int
tg_xt_a2o_block_start(tg_translate_t *x, json_t *cb)
{
    const char *type = json_string_value(json_object_get(cb, "type"));

    if (type != NULL && strcmp(type, "text") == 0) {
        x->block = TG_XT_TEXT;
        return tg_xt_a2o_text(x, json_object_get(cb, "text"), tg_str_null);
    }
    if (type == NULL || strcmp(type, "tool_use") != 0) {
        x->block = TG_XT_OTHER; /* thinking, server tools: not shown */
        return TG_OK;
    }
    x->block = TG_XT_TOOL;
    if (tg_xt_chunk(x) != TG_OK ||
        tg_xt_printf(x, "{\"tool_calls\":[{\"index\":%d,\"id\":", x->tools++) !=
            TG_OK ||
        tg_xt_jstr(x, json_object_get(cb, "id")) != TG_OK ||
        tg_xt_puts(x, ",\"type\":\"function\",\"function\":{\"name\":") !=
            TG_OK ||
        tg_xt_jstr(x, json_object_get(cb, "name")) != TG_OK ||
        tg_xt_puts(x, ",\"arguments\":\"\"}}]}") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_chunk_end(x, NULL);
}


/* An arguments chunk of the open tool call: string <args> (or <raw>). */
static int
tg_xt_a2o_args(tg_translate_t *x, json_t *args, tg_str_t raw)
{
    if (x->block != TG_XT_TOOL || tg_xt_val_len(args, raw) == 0) {
        return TG_OK;
    }
    if (tg_xt_chunk(x) != TG_OK ||
        tg_xt_puts(x, "{\"tool_calls\":[{\"index\":") != TG_OK ||
        tg_xt_int(x, x->tools - 1) != TG_OK ||
        tg_xt_puts(x, ",\"function\":{\"arguments\":") != TG_OK ||
        tg_xt_val(x, args, raw) != TG_OK || tg_xt_puts(x, "}}]}") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_chunk_end(x, NULL);
}


static int
tg_xt_a2o_delta(tg_translate_t *x, json_t *d)
{
    const char *type = json_string_value(json_object_get(d, "type"));

    if (type == NULL) {
        return TG_OK;
    }
    if (strcmp(type, "text_delta") == 0 && x->block == TG_XT_TEXT) {
        return tg_xt_a2o_text(x, json_object_get(d, "text"), tg_str_null);
    }
    if (strcmp(type, "input_json_delta") != 0) {
        return TG_OK;
    }
    return tg_xt_a2o_args(x, json_object_get(d, "partial_json"), tg_str_null);
}


/* One Anthropic event <name> with data <root>. */
static int
tg_xt_a2o_event(tg_translate_t *x, tg_str_t name, json_t *root)
{
    json_t *m;
    const char *s;

    if (tg_str_eq(name, tg_str_lit("message_start"))) {
        m = json_object_get(root, "message");
        tg_xt_keep(x->id, sizeof(x->id), json_object_get(m, "id"));
        tg_xt_keep(x->model, sizeof(x->model), json_object_get(m, "model"));
        x->pre_len = 0; /* the chunk opening names them */
        tg_xt_a_usage(x, json_object_get(m, "usage"));
        /* message_start's output count is a placeholder. */
        x->out = 0;
        return tg_xt_a2o_start(x);
    }
    if (tg_xt_a2o_start(x) != TG_OK) {
        return TG_ERROR;
    }
    if (tg_str_eq(name, tg_str_lit("content_block_start"))) {
        return tg_xt_a2o_block_start(x, json_object_get(root, "content_block"));
    }
    if (tg_str_eq(name, tg_str_lit("content_block_delta"))) {
        return tg_xt_a2o_delta(x, json_object_get(root, "delta"));
    }
    if (tg_str_eq(name, tg_str_lit("content_block_stop"))) {
        x->block = TG_XT_NONE;
        return TG_OK;
    }
    if (tg_str_eq(name, tg_str_lit("message_delta"))) {
        s = json_string_value(
            json_object_get(json_object_get(root, "delta"), "stop_reason"));
        if (s != NULL) {
            snprintf(x->finish, sizeof(x->finish), "%s",
                     tg_xt_finish_reason(s));
        }
        tg_xt_a_usage(x, json_object_get(root, "usage"));
        return TG_OK;
    }
    if (tg_str_eq(name, tg_str_lit("message_stop"))) {
        return tg_xt_a2o_stop(x);
    }
    return TG_OK; /* ping and events of later API versions */
}


/* chat.completion.chunk -> Anthropic stream ------------------------------ */

static int
tg_xt_event(tg_translate_t *x, const char *name)
{
    return tg_xt_printf(x, "event: %s\ndata: ", name);
}


static int
tg_xt_o2a_start(tg_translate_t *x)
{
    if (x->started) {
        return TG_OK;
    }
    x->started = true;
    if (tg_xt_event(x, "message_start") != TG_OK ||
        tg_xt_puts(x, "{\"type\":\"message_start\",\"message\":{\"id\":") !=
            TG_OK ||
        tg_xt_str(x, x->id, strlen(x->id)) != TG_OK ||
        tg_xt_puts(x, ",\"type\":\"message\",\"role\":\"assistant\","
                      "\"model\":") != TG_OK ||
        tg_xt_str(x, x->model, strlen(x->model)) != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_printf(
        x,
        ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":%llu,\"cache_creation_input_tokens\":0,"
        "\"cache_read_input_tokens\":%llu,\"output_tokens\":0}}}\n\n",
        (unsigned long long)x->in, (unsigned long long)x->cache_read);
}


static int
tg_xt_o2a_close(tg_translate_t *x)
{
    if (x->block == TG_XT_NONE) {
        return TG_OK;
    }
    x->block = TG_XT_NONE;
    if (tg_xt_event(x, "content_block_stop") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_printf(x, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n",
                        x->block_index);
}


/* Make sure a text block is open. */
static int
tg_xt_o2a_open_text(tg_translate_t *x)
{
    if (x->block == TG_XT_TEXT) {
        return TG_OK;
    }
    if (tg_xt_o2a_close(x) != TG_OK) {
        return TG_ERROR;
    }
    x->block = TG_XT_TEXT;
    x->block_index = x->next_index++;
    if (tg_xt_event(x, "content_block_start") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_printf(x,
                        "{\"type\":\"content_block_start\",\"index\":%d,"
                        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"
                        "\n\n",
                        x->block_index);
}


/* A text delta of string <text> (or <raw>, see tg_xt_val). */
static int
tg_xt_o2a_text(tg_translate_t *x, json_t *text, tg_str_t raw)
{
    if (tg_xt_val_len(text, raw) == 0) {
        return TG_OK;
    }
    if (tg_xt_o2a_open_text(x) != TG_OK ||
        tg_xt_puts(x, "event: content_block_delta\ndata: {\"type\":"
                      "\"content_block_delta\",\"index\":") != TG_OK ||
        tg_xt_int(x, x->block_index) != TG_OK ||
        tg_xt_puts(x, ",\"delta\":{\"type\":\"text_delta\",\"text\":") !=
            TG_OK ||
        tg_xt_val(x, text, raw) != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_puts(x, "}}\n\n");
}


/* An input_json_delta of the open tool block: string <args> (or <raw>). */
static int
tg_xt_o2a_args(tg_translate_t *x, json_t *args, tg_str_t raw)
{
    if (tg_xt_val_len(args, raw) == 0) {
        return TG_OK;
    }
    if (tg_xt_puts(x, "event: content_block_delta\ndata: {\"type\":"
                      "\"content_block_delta\",\"index\":") != TG_OK ||
        tg_xt_int(x, x->block_index) != TG_OK ||
        tg_xt_puts(x, ",\"delta\":{\"type\":\"input_json_delta\","
                      "\"partial_json\":") != TG_OK ||
        tg_xt_val(x, args, raw) != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_puts(x, "}}\n\n");
}


/* One element of a chunk's delta.tool_calls. */
static int
tg_xt_o2a_tool(tg_translate_t *x, json_t *tc)
{
    json_t *fn = json_object_get(tc, "function"), *args;
    json_t *idx = json_object_get(tc, "index");
    long i = json_is_integer(idx) ? (long)json_integer_value(idx) : 0;
    char gen[48];

    if (x->block != TG_XT_TOOL || i != x->tool_index) {
        if (x->block == TG_XT_TOOL && i < x->tool_index) {
            /* A call already closed: its block cannot be reopened. */
            return TG_OK;
        }
        if (tg_xt_o2a_close(x) != TG_OK) {
            return TG_ERROR;
        }
        x->block = TG_XT_TOOL;
        x->block_index = x->next_index++;
        x->tool_index = i;
        snprintf(gen, sizeof(gen), "toolu_%d", x->tools);
        x->tools++;
        if (tg_xt_event(x, "content_block_start") != TG_OK ||
            tg_xt_printf(x,
                         "{\"type\":\"content_block_start\",\"index\":%d,"
                         "\"content_block\":{\"type\":\"tool_use\","
                         "\"id\":",
                         x->block_index) != TG_OK ||
            (json_is_string(json_object_get(tc, "id"))
                 ? tg_xt_jstr(x, json_object_get(tc, "id"))
                 : tg_xt_str(x, gen, strlen(gen))) != TG_OK ||
            tg_xt_puts(x, ",\"name\":") != TG_OK ||
            tg_xt_jstr(x, json_object_get(fn, "name")) != TG_OK ||
            tg_xt_puts(x, ",\"input\":{}}}\n\n") != TG_OK) {
            return TG_ERROR;
        }
    }
    args = json_object_get(fn, "arguments");
    return tg_xt_o2a_args(x, args, tg_str_null);
}


/* The last events: block stop, message_delta with usage, message_stop. */
static int
tg_xt_o2a_stop(tg_translate_t *x)
{
    x->done = true;
    if (tg_xt_o2a_start(x) != TG_OK || tg_xt_o2a_close(x) != TG_OK ||
        tg_xt_event(x, "message_delta") != TG_OK ||
        tg_xt_printf(x,
                     "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                     "\"%s\",\"stop_sequence\":null},\"usage\":{"
                     "\"input_tokens\":%llu,\"cache_creation_input_tokens\":0,"
                     "\"cache_read_input_tokens\":%llu,\"output_tokens\":%llu}}"
                     "\n\n",
                     x->finish[0] ? x->finish : "end_turn",
                     (unsigned long long)x->in,
                     (unsigned long long)x->cache_read,
                     (unsigned long long)x->out) != TG_OK ||
        tg_xt_event(x, "message_stop") != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_puts(x, "{\"type\":\"message_stop\"}\n\n");
}


/* An OpenAI usage object's counts, in Anthropic's terms. */
static void
tg_xt_o2a_usage(tg_translate_t *x, uint64_t prompt, uint64_t cached,
                uint64_t completion)
{
    cached = cached < prompt ? cached : prompt;
    x->in = prompt - cached;
    x->cache_read = cached;
    x->out = completion;
    x->have_usage = true;
}


/* After a chunk's content: its finish reason <fin> (or NULL), and the
 * last events once both the finish and the usage were seen. */
static int
tg_xt_o2a_end(tg_translate_t *x, const char *fin)
{
    if (fin != NULL) {
        snprintf(x->finish, sizeof(x->finish), "%s", tg_xt_stop_reason(fin));
        x->finished = true;
        if (tg_xt_o2a_close(x) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (x->finished && x->have_usage) {
        return tg_xt_o2a_stop(x);
    }
    return TG_OK;
}


/* One OpenAI chunk <root>. */
static int
tg_xt_o2a_chunk(tg_translate_t *x, json_t *root)
{
    json_t *ch = json_array_get(json_object_get(root, "choices"), 0);
    json_t *d = json_object_get(ch, "delta"),
           *u = json_object_get(root, "usage");
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    json_t *tc;
    size_t i;

    if (!x->started) {
        tg_xt_keep(x->id, sizeof(x->id), json_object_get(root, "id"));
        tg_xt_keep(x->model, sizeof(x->model), json_object_get(root, "model"));
    }
    if (json_is_object(u)) {
        tg_xt_o2a_usage(x, tg_xt_u64(u, "prompt_tokens"),
                        tg_xt_u64(json_object_get(u, "prompt_tokens_details"),
                                  "cached_tokens"),
                        tg_xt_u64(u, "completion_tokens"));
    }
    if (tg_xt_o2a_start(x) != TG_OK ||
        tg_xt_o2a_text(x, json_object_get(d, "content"), tg_str_null) !=
            TG_OK ||
        tg_xt_o2a_text(x, json_object_get(d, "refusal"), tg_str_null) !=
            TG_OK) {
        return TG_ERROR;
    }
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
    {
        if (tg_xt_o2a_tool(x, tc) != TG_OK) {
            return TG_ERROR;
        }
    }
    return tg_xt_o2a_end(x, fin);
}


/* Fast path ------------------------------------------------------------- */

/* See translate.h. */
bool tg_translate_fast_on = true;


/* Copy the plain string insides <raw> into <dst> of <cap> bytes, cut as
 * tg_xt_keep cuts, when there are any. */
static void
tg_xt_keep_raw(char *dst, size_t cap, tg_str_t raw)
{
    size_t n = TG_MIN(raw.len, cap - 1);

    if (raw.data != NULL) {
        memcpy(dst, raw.data, n);
        dst[n] = '\0';
    }
}


/*
 * An OpenAI chunk through the fast path (worker/translate_fast.c): the
 * same events as tg_xt_o2a_chunk, with the delta's text copied as it was
 * escaped.  TG_DECLINED: a chunk for the general path.
 */
static int
tg_xt_o2a_fast(tg_translate_t *x, const tg_sse_event_t *ev)
{
    tg_translate_fast_chunk_t c;
    char fin[32];

    /* A tool call's arguments are copied when its block is open and no
     * text in the same chunk closes it; a new call (which opens a block)
     * is for the general path. */
    if (tg_translate_fast_chunk(ev->data.data, ev->data.len, &c) != TG_OK ||
        (!x->started && (c.id_esc || c.model_esc)) ||
        (c.tool && (x->block != TG_XT_TOOL || x->tool_index < 0 ||
                    c.tool_index != (uint64_t)x->tool_index ||
                    c.content.len > 0 || c.refusal.len > 0))) {
        return TG_DECLINED;
    }
    if (!x->started) {
        tg_xt_keep_raw(x->id, sizeof(x->id), c.id);
        tg_xt_keep_raw(x->model, sizeof(x->model), c.model);
    }
    if (c.usage) {
        tg_xt_o2a_usage(x, c.prompt, c.cached, c.completion);
    }
    /* A finish reason too long for fin is none of the known ones. */
    tg_xt_keep_raw(fin, sizeof(fin),
                   c.finish.len < sizeof(fin) ? c.finish : tg_str_lit(""));
    if (tg_xt_o2a_start(x) != TG_OK ||
        tg_xt_o2a_text(x, NULL, c.content) != TG_OK ||
        tg_xt_o2a_text(x, NULL, c.refusal) != TG_OK ||
        (c.tool && tg_xt_o2a_args(x, NULL, c.args) != TG_OK) ||
        tg_xt_o2a_end(x, c.finish.data != NULL ? fin : NULL) != TG_OK) {
        return TG_ERROR;
    }
    return tg_xt_flush(x);
}


/*
 * An Anthropic event through the fast path: a text or tool arguments
 * delta, copied as it was escaped, and the events whose data translation
 * does not read (ping, content_block_stop, message_stop).  TG_DECLINED:
 * an event for the general path (message_start, content_block_start,
 * message_delta, errors, and anything the scanner does not take).
 */
static int
tg_xt_a2o_fast(tg_translate_t *x, const tg_sse_event_t *ev)
{
    tg_translate_fast_event_t e;
    bool delta = tg_str_eq(ev->event, tg_str_lit("content_block_delta"));
    bool stop = tg_str_eq(ev->event, tg_str_lit("content_block_stop"));
    bool end = tg_str_eq(ev->event, tg_str_lit("message_stop"));
    int rc = TG_OK;

    if (!x->started ||
        !(delta || stop || end || tg_str_eq(ev->event, tg_str_lit("ping"))) ||
        tg_translate_fast_event(ev->data.data, ev->data.len, delta, &e) !=
            TG_OK) {
        return TG_DECLINED;
    }
    if (delta && tg_str_eq(e.type, tg_str_lit("text_delta"))) {
        rc = x->block == TG_XT_TEXT ? tg_xt_a2o_text(x, NULL, e.text) : TG_OK;
    } else if (delta && tg_str_eq(e.type, tg_str_lit("input_json_delta"))) {
        rc = tg_xt_a2o_args(x, NULL, e.json);
    } else if (stop) {
        x->block = TG_XT_NONE;
    } else if (end) {
        rc = tg_xt_a2o_stop(x);
    }
    return rc == TG_OK ? tg_xt_flush(x) : TG_ERROR;
}


/* Stream events ---------------------------------------------------------- */

static int
tg_xt_sse_event(void *ctx, const tg_sse_event_t *ev)
{
    tg_translate_t *x = ctx;
    bool openai_up = x->client_api == TG_API_ANTHROPIC;
    json_t *root;
    int rc;

    if (x->observe != NULL) {
        x->observe(x->observe_ctx, ev);
    }
    if (x->done || x->errored) {
        return TG_OK;
    }
    if (openai_up && ev->data.len == 6 &&
        memcmp(ev->data.data, "[DONE]", 6) == 0) {
        rc = tg_xt_o2a_stop(x);
        return rc == TG_OK ? tg_xt_flush(x) : TG_ERROR;
    }
    if (ev->truncated) {
        return TG_ERROR;
    }
    if (tg_translate_fast_on &&
        (rc = openai_up ? tg_xt_o2a_fast(x, ev) : tg_xt_a2o_fast(x, ev)) !=
            TG_DECLINED) {
        return rc;
    }
    root = json_loadb(ev->data.data, ev->data.len, 0, NULL);
    if (root == NULL) {
        /* Not JSON (a comment-like keep-alive from a relay): skipped. */
        return TG_OK;
    }
    if ((openai_up && json_object_get(root, "error") != NULL) ||
        (!openai_up && tg_str_eq(ev->event, tg_str_lit("error")))) {
        x->errored = true;
        rc = tg_xt_error(x, root, 0, true);
    } else if (openai_up) {
        rc = tg_xt_o2a_chunk(x, root);
    } else {
        rc = tg_xt_a2o_event(x, ev->event, root);
    }
    json_decref(root);
    return rc == TG_OK ? tg_xt_flush(x) : TG_ERROR;
}


/*
 * The common framing of one event, read in place at <p> (before <end>):
 * an optional "event: NAME" line, one "data: DATA" line and a blank line,
 * LF line ends, no other field.  Returns the bytes it spans, with <ev>
 * filled as core/sse would, or 0 for anything else, including an
 * incomplete event (core/sse takes those).
 */
static size_t
tg_xt_frame(const char *p, const char *end, tg_sse_event_t *ev)
{
    const char *q = p, *nl;

    ev->event = tg_str_lit("message");
    ev->truncated = false;
    if (end - q > 6 && memcmp(q, "event:", 6) == 0) {
        q += 6 + (q[6] == ' ');
        nl = memchr(q, '\n', (size_t)(end - q));
        if (nl == NULL || nl - q > 63 || memchr(q, '\r', (size_t)(nl - q))) {
            return 0;
        }
        if (nl > q) {
            ev->event = (tg_str_t){q, (size_t)(nl - q)};
        }
        q = nl + 1;
    }
    if (end - q < 6 || memcmp(q, "data:", 5) != 0) {
        return 0;
    }
    q += 5 + (q[5] == ' ');
    nl = memchr(q, '\n', (size_t)(end - q));
    if (nl == NULL || (size_t)(nl - q) > TG_TRANSLATE_EVENT_MAX ||
        memchr(q, '\r', (size_t)(nl - q)) != NULL || end - nl < 2 ||
        nl[1] != '\n') {
        return 0;
    }
    ev->data = (tg_str_t){q, (size_t)(nl - q)};
    return (size_t)(nl + 2 - p);
}


/*
 * Feed stream bytes.  While the SSE parser is between events, events of
 * the common framing are read in place (no copy into the parser's
 * buffer); the first other or incomplete one, and everything after it in
 * <p>, goes through core/sse.  The parser is between events again once
 * the bytes it was given end with a blank line (LF LF: the last LF then
 * ends an empty line, which dispatches and resets every field).
 */
static int
tg_xt_sse_feed(tg_translate_t *x, const char *p, size_t n)
{
    const char *end = p + n;
    tg_sse_event_t ev;
    size_t len;
    int rc;

    while (x->idle && p < end && (len = tg_xt_frame(p, end, &ev)) > 0) {
        if (tg_xt_sse_event(x, &ev) != TG_OK) {
            return TG_ERROR;
        }
        p += len;
    }
    if (p == end) {
        return TG_OK;
    }
    rc = tg_sse_feed(&x->parser, p, (size_t)(end - p), tg_xt_sse_event, x);
    x->idle = end - p >= 2 && end[-1] == '\n' && end[-2] == '\n';
    return rc == TG_OK ? TG_OK : TG_ERROR;
}


/* API --------------------------------------------------------------------- */

/* See translate.h. */
tg_translate_t *
tg_translate_create(int client_api, int status, bool sse, bool include_usage)
{
    tg_translate_t *x = calloc(1, sizeof(*x));

    if (x == NULL) {
        return NULL;
    }
    x->client_api = client_api;
    x->status = status;
    x->sse = sse && status < 400;
    x->include_usage = include_usage;
    x->tool_index = -1;
    x->created = (int64_t)time(NULL);
    tg_buf_init(&x->o, TG_XT_OUT_MAX);
    tg_buf_init(&x->body,
                status >= 400 ? TG_TRANSLATE_ERROR_MAX : TG_TRANSLATE_BODY_MAX);
    if (x->sse) {
        tg_sse_init(&x->parser, TG_TRANSLATE_EVENT_MAX);
        x->idle = true;
    }
    return x;
}


/* See translate.h. */
void
tg_translate_destroy(tg_translate_t *x)
{
    if (x == NULL) {
        return;
    }
    if (x->sse) {
        tg_sse_fini(&x->parser);
    }
    tg_buf_fini(&x->o);
    tg_buf_fini(&x->body);
    free(x);
}


/* See translate.h. */
void
tg_translate_observe(tg_translate_t *x, tg_translate_observe_pt fn, void *ctx)
{
    x->observe = fn;
    x->observe_ctx = ctx;
}


/* See translate.h. */
int
tg_translate_feed(tg_translate_t *x, const char *p, size_t n,
                  tg_translate_emit_pt emit, void *ctx)
{
    int rc;

    x->emit = emit;
    x->ctx = ctx;
    if (!x->sse) {
        rc = tg_buf_append(&x->body, p, n);
        if (rc == TG_DECLINED && x->status >= 400) {
            /* An error body past the bound: its start says enough. */
            return TG_OK;
        }
        return rc == TG_OK ? TG_OK : TG_ERROR;
    }
    return tg_xt_sse_feed(x, p, n);
}


/* See translate.h. */
int
tg_translate_finish(tg_translate_t *x, tg_translate_emit_pt emit, void *ctx)
{
    x->emit = emit;
    x->ctx = ctx;
    if (!x->sse) {
        return tg_xt_body_done(x);
    }
    /* An OpenAI stream that ended after its finish chunk without the
     * usage chunk or [DONE] still gets a complete Anthropic ending. */
    if (x->client_api == TG_API_ANTHROPIC && x->finished && !x->done &&
        !x->errored) {
        return tg_xt_o2a_stop(x) == TG_OK ? tg_xt_flush(x) : TG_ERROR;
    }
    return TG_OK;
}
