/*
 * worker/usage.c
 *      Token usage from upstream responses.
 *
 * NOTES
 *      Mapping to the six counters:
 *      Anthropic: input = input_tokens; output = output_tokens; cache read =
 *      cache_read_input_tokens; cache writes split by
 *      cache_creation.ephemeral_5m_input_tokens / ephemeral_1h_input_tokens,
 *      or all of cache_creation_input_tokens as 5-minute when the split is
 *      absent.  Streams report input and cache counts in message_start and
 *      the final output count in message_delta (newer API versions repeat
 *      the input counts there).  message_start's output_tokens is a
 *      placeholder (1 or so) and is never counted: output comes from
 *      message_delta alone, and a stream that ends without one has its
 *      output unknown (tg_usage_known).  Counters only grow: a later event
 *      that repeats a class with a lower value, or that repeats
 *      cache_creation_input_tokens without the cache_creation split,
 *      never lowers a class nor turns a 1-hour cache write into a
 *      5-minute one; cache write tokens beyond the known split count as
 *      5-minute writes (the API's default TTL).
 *      OpenAI: input = prompt_tokens - prompt_tokens_details.cached_tokens;
 *      cache read = cached_tokens; output = completion_tokens; reasoning =
 *      completion_tokens_details.reasoning_tokens (already inside output).
 *      Worker only.
 */
#include "worker/usage.h"
#include "core/core.h"
#include "core/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_USAGE_SSE_MAX 65536 /* largest SSE event data we parse */


/* See usage.h. */
void
tg_usage_init(tg_usage_t *u, bool openai, bool sse, int coding, uint64_t req_id)
{
    memset(u->tokens, 0, sizeof(u->tokens));
    u->model[0] = '\0';
    u->openai = openai;
    u->sse = sse;
    u->coding = coding;
    u->req_id = req_id;
    u->dec = NULL;
    memset(&u->strip, 0, sizeof(u->strip));
    u->opaque = u->unknown = coding == TG_DECODE_OPAQUE;
    u->seen = u->final = u->ended = u->error_event = false;
    u->responses = false;
    u->resp = NULL;
    if (u->opaque) {
        tg_log(TG_LOG_WARN, 0,
               "request %016llx: response content coding cannot be decoded; "
               "its tokens are not counted",
               (unsigned long long)req_id);
    }
    if (sse) {
        tg_sse_init(&u->sse_parser, TG_USAGE_SSE_MAX);
        return;
    }
    u->fields[0] = (tg_json_field_t){.name = "usage",
                                     .name_len = 5,
                                     .buf = u->usage_buf,
                                     .cap = sizeof(u->usage_buf)};
    u->fields[1] = (tg_json_field_t){.name = "model",
                                     .name_len = 5,
                                     .buf = u->model_buf,
                                     .cap = sizeof(u->model_buf)};
    tg_json_scan_init(&u->scan, u->fields, 2);
}


/* See usage.h. */
void
tg_usage_init_responses(tg_usage_t *u, bool sse, int coding, uint64_t req_id)
{
    tg_usage_init(u, true, sse, coding, req_id);
    u->responses = true;
    if (!sse || u->unknown) {
        return;
    }
    /* Most requests are not Responses streams: the scanner's 1.4 KB is
     * taken only by those that are. */
    u->resp = malloc(sizeof(*u->resp));
    if (u->resp == NULL) {
        tg_log(TG_LOG_WARN, errno,
               "request %016llx: malloc(%zu) for the usage scanner failed; "
               "its tokens are not counted",
               (unsigned long long)req_id, sizeof(*u->resp));
        u->unknown = true;
        return;
    }
    tg_usage_resp_init(u->resp);
}


/* See usage.h. */
void
tg_usage_fini(tg_usage_t *u)
{
    if (u->sse) {
        tg_sse_fini(&u->sse_parser);
    }
    tg_decode_destroy(u->dec);
    u->dec = NULL;
    free(u->strip.buf);
    u->strip.buf = NULL;
    free(u->resp);
    u->resp = NULL;
    u->strip.len = 0;
}


static uint64_t
tg_usage_int(json_t *obj, const char *name, bool *present)
{
    json_t *v = json_object_get(obj, name);

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return 0;
    }
    if (present != NULL) {
        *present = true;
    }
    return (uint64_t)json_integer_value(v);
}


/* Raise counter <i> of <u> to <v>: usage events repeat cumulative
 * counts, so a smaller value is a repetition, never a correction. */
static void
tg_usage_raise(tg_usage_t *u, int i, uint64_t v)
{
    if (v > u->tokens[i]) {
        u->tokens[i] = v;
    }
}


/*
 * Apply a usage object in the API's shape.  <placeholder> marks
 * Anthropic's message_start, whose output count is not a result; <final>
 * an object that carries the final counts.
 */
static void
tg_usage_apply(tg_usage_t *u, json_t *usage, bool placeholder, bool final)
{
    bool has = false;

    if (!json_is_object(usage)) {
        return;
    }
    if (u->responses) {
        tg_usage_resp_apply(u, usage, final);
        return;
    }
    if (u->openai) {
        uint64_t prompt = tg_usage_int(usage, "prompt_tokens", &has);
        uint64_t cached =
            tg_usage_int(json_object_get(usage, "prompt_tokens_details"),
                         "cached_tokens", NULL);

        cached = TG_MIN(cached, prompt);
        tg_usage_raise(u, TG_TOK_CACHE_READ, cached);
        tg_usage_raise(u, TG_TOK_INPUT, prompt - cached);
        tg_usage_raise(u, TG_TOK_OUTPUT,
                       tg_usage_int(usage, "completion_tokens", &has));
        tg_usage_raise(
            u, TG_TOK_REASONING,
            tg_usage_int(json_object_get(usage, "completion_tokens_details"),
                         "reasoning_tokens", NULL));
    } else {
        bool p5 = false, p1 = false, pc = false, po = false;
        json_t *cc = json_object_get(usage, "cache_creation");
        uint64_t total, m5 = 0, h1 = 0, split;

        tg_usage_raise(u, TG_TOK_INPUT,
                       tg_usage_int(usage, "input_tokens", &has));
        tg_usage_raise(u, TG_TOK_CACHE_READ,
                       tg_usage_int(usage, "cache_read_input_tokens", &has));
        if (!placeholder) {
            tg_usage_raise(u, TG_TOK_OUTPUT,
                           tg_usage_int(usage, "output_tokens", &po));
        }
        total = tg_usage_int(usage, "cache_creation_input_tokens", &pc);
        if (json_is_object(cc)) {
            m5 = tg_usage_int(cc, "ephemeral_5m_input_tokens", &p5);
            h1 = tg_usage_int(cc, "ephemeral_1h_input_tokens", &p1);
        }
        tg_usage_raise(u, TG_TOK_CACHE_5M, m5);
        tg_usage_raise(u, TG_TOK_CACHE_1H, h1);
        split = u->tokens[TG_TOK_CACHE_5M] + u->tokens[TG_TOK_CACHE_1H];
        if (pc && total > split) {
            /* Writes beyond the known split: the default 5-minute TTL. */
            u->tokens[TG_TOK_CACHE_5M] += total - split;
        }
        has = has || pc || p5 || p1 || po;
    }
    u->seen = u->seen || has;
    u->final = u->final || (final && has);
}


static void
tg_usage_model(tg_usage_t *u, json_t *model)
{
    const char *m = json_string_value(model);

    if (m != NULL) {
        snprintf(u->model, sizeof(u->model), "%s", m);
    }
}


/* One event of a Messages or Chat Completions stream. */
static int
tg_usage_sse_event(void *ctx, const tg_sse_event_t *ev)
{
    tg_usage_t *u = ctx;
    json_t *root, *msg;

    if (u->openai) {
        if (ev->data.len == 6 && memcmp(ev->data.data, "[DONE]", 6) == 0) {
            u->ended = true;
            return TG_OK;
        }
        /* Every chunk may carry "usage":null; only the last one has an
         * object, so skip the parse unless one is there. */
        if (memmem(ev->data.data, ev->data.len, "\"usage\":{", 9) == NULL &&
            memmem(ev->data.data, ev->data.len, "\"usage\": {", 10) == NULL &&
            memmem(ev->data.data, ev->data.len, "\"error\"", 7) == NULL) {
            return TG_OK;
        }
    } else if (!tg_str_eq(ev->event, tg_str_lit("message_start")) &&
               !tg_str_eq(ev->event, tg_str_lit("message_delta"))) {
        if (tg_str_eq(ev->event, tg_str_lit("message_stop"))) {
            u->ended = true;
        } else if (tg_str_eq(ev->event, tg_str_lit("error"))) {
            u->error_event = true;
        }
        return TG_OK;
    }
    if (ev->truncated) {
        return TG_OK;
    }
    root = json_loadb(ev->data.data, ev->data.len, 0, NULL);
    if (root == NULL) {
        return TG_OK;
    }
    if (u->openai) {
        if (json_object_get(root, "error") != NULL) {
            u->error_event = true;
        }
        tg_usage_apply(u, json_object_get(root, "usage"), false, true);
        tg_usage_model(u, json_object_get(root, "model"));
    } else if (tg_str_eq(ev->event, tg_str_lit("message_start"))) {
        msg = json_object_get(root, "message");
        tg_usage_apply(u, json_object_get(msg, "usage"), true, false);
        tg_usage_model(u, json_object_get(msg, "model"));
    } else {
        tg_usage_apply(u, json_object_get(root, "usage"), false, true);
    }
    json_decref(root);
    return TG_OK;
}


/* Observe <len> bytes of the body as the API framed it (decoded). */
static void
tg_usage_plain(void *ctx, const char *p, size_t len)
{
    tg_usage_t *u = ctx;

    if (u->responses && u->sse) {
        tg_usage_resp_feed(u->resp, p, len, tg_usage_resp_event, u);
        return;
    }
    if (u->sse) {
        /* Out of memory only loses the usage of this stream; the bytes
         * still reach the client. */
        (void)tg_sse_feed(&u->sse_parser, p, len, tg_usage_sse_event, u);
        return;
    }
    tg_json_scan_feed(&u->scan, p, len);
}


/* Stop reading an encoded body after <err>: the usage is unknown. */
static void
tg_usage_undecodable(tg_usage_t *u, const tg_err_t *err)
{
    tg_log(TG_LOG_WARN, 0,
           "request %016llx: %s response body cannot be decoded for usage: "
           "%s; its tokens are not counted",
           (unsigned long long)u->req_id, tg_decode_name(u->coding), err->text);
    u->unknown = true;
    tg_decode_destroy(u->dec);
    u->dec = NULL;
}


/* See usage.h. */
bool
tg_usage_takes_events(const tg_usage_t *u)
{
    return u->sse && !u->responses && u->coding == TG_DECODE_IDENTITY;
}


/* See usage.h. */
void
tg_usage_event(void *ctx, const tg_sse_event_t *ev)
{
    tg_usage_t *u = ctx;
    tg_sse_event_t cut;

    if (u->unknown) {
        return;
    }
    if (ev->data.len > TG_USAGE_SSE_MAX) {
        /* As the own parser would have it: data past the bound is cut. */
        cut = *ev;
        cut.data.len = TG_USAGE_SSE_MAX;
        cut.truncated = true;
        ev = &cut;
    }
    (void)tg_usage_sse_event(u, ev);
}


/* See usage.h. */
void
tg_usage_feed(tg_usage_t *u, const char *p, size_t len)
{
    tg_err_t err;

    if (u->unknown) {
        return;
    }
    if (u->coding == TG_DECODE_IDENTITY) {
        tg_usage_plain(u, p, len);
        return;
    }
    if (u->dec == NULL) {
        u->dec = tg_decode_create(u->coding, TG_DECODE_MEM_MAX, &err);
        if (u->dec == NULL) {
            tg_usage_undecodable(u, &err);
            return;
        }
    }
    if (tg_decode_feed(u->dec, p, len, tg_usage_plain, u, &err) == TG_ERROR) {
        tg_usage_undecodable(u, &err);
    }
}


/* See usage.h. */
void
tg_usage_finish(tg_usage_t *u)
{
    json_t *v;

    if (u->sse || u->opaque) {
        return;
    }
    /* After a decode error the scanner may hold a usage member that was
     * complete before the error; it is still worth reading. */
    if (u->fields[0].found && !u->fields[0].truncated) {
        v = json_loadb(u->usage_buf, u->fields[0].len, 0, NULL);
        tg_usage_apply(u, v, false, true);
        json_decref(v);
    }
    if (u->fields[1].found && !u->fields[1].truncated) {
        v = json_loadb(u->model_buf, u->fields[1].len, JSON_DECODE_ANY, NULL);
        tg_usage_model(u, v);
        json_decref(v);
    }
    u->ended = u->seen;
}


/* See usage.h. */
bool
tg_usage_known(const tg_usage_t *u, int status)
{
    if (u->unknown) {
        return false;
    }
    return status < 200 || status >= 300 || u->final;
}


/* See usage.h. */
uint64_t
tg_usage_total(const tg_usage_t *u)
{
    return u->tokens[TG_TOK_INPUT] + u->tokens[TG_TOK_OUTPUT] +
           u->tokens[TG_TOK_CACHE_READ] + u->tokens[TG_TOK_CACHE_5M] +
           u->tokens[TG_TOK_CACHE_1H];
}


/* See usage.h. */
int
tg_usage_ask_body(const char *body, size_t len, char **out, size_t *out_len)
{
    char opts[1024], *val = NULL, *p;
    tg_json_field_t f = {.name = "stream_options",
                         .name_len = 14,
                         .buf = opts,
                         .cap = sizeof(opts)};
    tg_json_scan_t s;
    json_t *o = NULL;
    size_t off, vlen, nlen, i;
    int rc = TG_DECLINED;

    tg_json_scan_init(&s, &f, 1);
    if (!tg_json_scan_feed(&s, body, len) || !s.done || f.truncated) {
        return TG_DECLINED;
    }
    if (f.found) {
        o = json_loadb(opts, f.len, JSON_DECODE_ANY, NULL);
        if (json_is_true(json_object_get(o, "include_usage"))) {
            goto done;
        }
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        if (o == NULL ||
            json_object_set_new(o, "include_usage", json_true()) != 0) {
            rc = TG_ERROR;
            goto done;
        }
        val = json_dumps(o, JSON_COMPACT);
        if (val == NULL) {
            rc = TG_ERROR;
            goto done;
        }
        off = f.offset;
        vlen = f.len;
        if (off > len || vlen > len - off) {
            goto done;
        }
    } else {
        /* A new first member, right after the top-level '{'. */
        for (i = 0; i < len && body[i] != '{'; i++) {
        }
        if (i == len) {
            goto done;
        }
        off = i + 1;
        vlen = 0;
        for (i = off; i < len && strchr(" \t\r\n", body[i]) != NULL; i++) {
        }
        val = strdup(i < len && body[i] == '}'
                         ? "\"stream_options\":{\"include_usage\":true}"
                         : "\"stream_options\":{\"include_usage\":true},");
        if (val == NULL) {
            rc = TG_ERROR;
            goto done;
        }
    }
    nlen = strlen(val);
    p = malloc(len - vlen + nlen);
    if (p == NULL) {
        rc = TG_ERROR;
        goto done;
    }
    memcpy(p, body, off);
    memcpy(p + off, val, nlen);
    memcpy(p + off + nlen, body + off + vlen, len - off - vlen);
    *out = p;
    *out_len = len - vlen + nlen;
    rc = TG_OK;

done:
    free(val);
    json_decref(o);
    return rc;
}


/* Whether the SSE event <p> of <len> bytes is an OpenAI usage-only chunk:
 * one data line holding an object with "choices":[] and a usage object. */
static bool
tg_usage_strip_is_usage(const char *p, size_t len)
{
    const char *d, *end = p + len;
    json_t *root;
    bool yes;

    if (memmem(p, len, "\"usage\"", 7) == NULL ||
        memmem(p, len, "\"choices\"", 9) == NULL) {
        return false;
    }
    d = memmem(p, len, "data:", 5);
    if (d == NULL) {
        return false;
    }
    d += 5;
    root = json_loadb(d, (size_t)(end - d), JSON_DISABLE_EOF_CHECK, NULL);
    yes = json_is_object(json_object_get(root, "usage")) &&
          json_is_array(json_object_get(root, "choices")) &&
          json_array_size(json_object_get(root, "choices")) == 0;
    json_decref(root);
    return yes;
}


/* The held event is complete: pass it on unless it is the usage chunk. */
static int
tg_usage_strip_event(tg_usage_strip_t *s, tg_usage_emit_pt emit, void *ctx)
{
    int rc = TG_OK;

    if (!tg_usage_strip_is_usage(s->buf, s->len)) {
        rc = emit(ctx, s->buf, s->len);
    }
    s->len = 0;
    return rc;
}


/* See usage.h. */
int
tg_usage_strip(tg_usage_t *u, const char *p, size_t len, tg_usage_emit_pt emit,
               void *ctx)
{
    tg_usage_strip_t *s = &u->strip;
    size_t i, from = 0;
    bool end;

    if (s->buf == NULL) {
        s->buf = malloc(TG_USAGE_STRIP_MAX);
        if (s->buf == NULL) {
            return TG_ERROR;
        }
    }
    for (i = 0; i < len; i++) {
        if (p[i] == '\r') {
            continue;
        }
        end = p[i] == '\n' && s->nl;
        s->nl = p[i] == '\n';
        if (s->passthru) {
            if (end) {
                if (emit(ctx, p + from, i + 1 - from) != TG_OK) {
                    return TG_ERROR;
                }
                from = i + 1;
                s->passthru = false;
            }
            continue;
        }
        if (s->len + (i + 1 - from) > TG_USAGE_STRIP_MAX) {
            /* Too long to be the usage chunk: pass it on as it comes. */
            if ((s->len > 0 && emit(ctx, s->buf, s->len) != TG_OK) ||
                emit(ctx, p + from, i + 1 - from) != TG_OK) {
                return TG_ERROR;
            }
            s->len = 0;
            from = i + 1;
            s->passthru = !end;
            continue;
        }
        if (end) {
            memcpy(s->buf + s->len, p + from, i + 1 - from);
            s->len += i + 1 - from;
            from = i + 1;
            if (tg_usage_strip_event(s, emit, ctx) != TG_OK) {
                return TG_ERROR;
            }
        }
    }
    if (from < len) {
        if (s->passthru) {
            return emit(ctx, p + from, len - from);
        }
        memcpy(s->buf + s->len, p + from, len - from);
        s->len += len - from;
    }
    return TG_OK;
}


/* See usage.h. */
int
tg_usage_strip_flush(tg_usage_t *u, tg_usage_emit_pt emit, void *ctx)
{
    tg_usage_strip_t *s = &u->strip;
    int rc = TG_OK;

    if (s->len > 0) {
        rc = emit(ctx, s->buf, s->len);
        s->len = 0;
    }
    return rc;
}
