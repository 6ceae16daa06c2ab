/*
 * worker/usage_resp.c
 *      Usage of OpenAI Responses API answers: the stream scanner and the
 *      mapping of a Responses usage object to the six counters.
 *
 * NOTES
 *      Mapping: input = input_tokens - input_tokens_details.cached_tokens
 *      (the API counts cached tokens inside input_tokens, as Chat
 *      Completions does inside prompt_tokens); cache read = cached_tokens;
 *      output = output_tokens; reasoning =
 *      output_tokens_details.reasoning_tokens, which is already a part of
 *      output_tokens (as for Chat Completions: never counted or priced
 *      twice).  Streams: response.completed and response.incomplete carry
 *      the final usage in response.usage and end the stream;
 *      response.failed does too and marks the stream as failed upstream,
 *      like an "error" event after the 200.  response.created names the
 *      model.  There is no "[DONE]".  Worker only.
 */
#include "worker/usage_resp.h"
#include "core/core.h"
#include "worker/usage.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Where in a line the framing is. */
enum {
    TG_UR_L_START = 0, /* at the start of a line */
    TG_UR_L_FIELD,     /* in the field name */
    TG_UR_L_VSTART,    /* right after the colon (one space is skipped) */
    TG_UR_L_VALUE      /* in the value */
};

/* The field of the current line. */
enum { TG_UR_F_OTHER = 0, TG_UR_F_DATA, TG_UR_F_EVENT };

/* Members followed (k1 at depth 1, k2 inside "response"). */
enum {
    TG_UR_K_NONE = 0,
    TG_UR_K_OTHER,
    TG_UR_K_TYPE,
    TG_UR_K_RESPONSE,
    TG_UR_K_USAGE,
    TG_UR_K_MODEL
};

/* What the scanner is capturing. */
enum {
    TG_UR_C_NONE = 0,
    TG_UR_C_TYPE_NEXT, /* the "type" value starts next */
    TG_UR_C_TYPE,      /* inside the "type" string */
    TG_UR_C_USAGE,
    TG_UR_C_MODEL
};


/* Append <c> to the capture <buf> of <cap> bytes. */
static void
tg_usage_resp_put(char *buf, size_t cap, tg_usage_resp_cap_t *c, char ch)
{
    if (c->len < cap) {
        buf[c->len++] = ch;
    } else {
        c->over = true;
    }
}


/* Forget everything about the current event. */
static void
tg_usage_resp_reset(tg_usage_resp_t *s)
{
    s->have_data = false;
    s->event_cap = (tg_usage_resp_cap_t){0, false};
    s->depth = 0;
    s->in_str = s->esc = s->in_key = false;
    s->k1 = s->k2 = TG_UR_K_NONE;
    s->cap = TG_UR_C_NONE;
    s->type_cap = (tg_usage_resp_cap_t){0, false};
    s->type_done = s->usage_found = s->model_found = false;
}


/* See usage_resp.h. */
void
tg_usage_resp_init(tg_usage_resp_t *s)
{
    s->line = TG_UR_L_START;
    s->fkind = TG_UR_F_OTHER;
    s->skip_lf = false;
    s->field_len = 0;
    tg_usage_resp_reset(s);
}


/* A byte of a captured value (or of a member name being read). */
static void
tg_usage_resp_cap_byte(tg_usage_resp_t *s, char c)
{
    if (s->in_key) {
        tg_usage_resp_put(s->key, sizeof(s->key), &s->key_cap, c);
        return;
    }
    switch (s->cap) {
    case TG_UR_C_TYPE:
        tg_usage_resp_put(s->type, sizeof(s->type), &s->type_cap, c);
        break;
    case TG_UR_C_USAGE:
        tg_usage_resp_put(s->usage, sizeof(s->usage), &s->usage_cap, c);
        break;
    case TG_UR_C_MODEL:
        tg_usage_resp_put(s->model, sizeof(s->model), &s->model_cap, c);
        break;
    default:
        break;
    }
}


/* Whether the member name read is <lit>. */
static bool
tg_usage_resp_key_is(const tg_usage_resp_t *s, const char *lit)
{
    size_t n = strlen(lit);

    return !s->key_cap.over && s->key_cap.len == n &&
           memcmp(s->key, lit, n) == 0;
}


/* A member name at depth 1 or 2 ended. */
static void
tg_usage_resp_key_end(tg_usage_resp_t *s)
{
    s->in_key = false;
    if (s->depth == 1) {
        s->k1 = tg_usage_resp_key_is(s, "type")       ? TG_UR_K_TYPE
                : tg_usage_resp_key_is(s, "response") ? TG_UR_K_RESPONSE
                                                      : TG_UR_K_OTHER;
    } else if (s->k1 == TG_UR_K_RESPONSE) {
        s->k2 = tg_usage_resp_key_is(s, "usage")   ? TG_UR_K_USAGE
                : tg_usage_resp_key_is(s, "model") ? TG_UR_K_MODEL
                                                   : TG_UR_K_OTHER;
    }
}


/* The captured usage or model value ended (at depth 2). */
static void
tg_usage_resp_cap_end(tg_usage_resp_t *s)
{
    if (s->cap == TG_UR_C_USAGE) {
        s->usage_found = !s->usage_cap.over;
    } else {
        s->model_found = !s->model_cap.over;
    }
    s->cap = TG_UR_C_NONE;
}


/* A byte of a JSON string (s->in_str). */
static void
tg_usage_resp_str_byte(tg_usage_resp_t *s, char c)
{
    if (s->esc) {
        s->esc = false;
    } else if (c == '\\') {
        s->esc = true;
    } else if (c == '"') {
        s->in_str = false;
        if (s->in_key) {
            tg_usage_resp_key_end(s);
            return;
        }
        if (s->cap == TG_UR_C_TYPE) {
            s->cap = TG_UR_C_NONE;
            s->type_done = true;
            return;
        }
    }
    tg_usage_resp_cap_byte(s, c);
}


/* A structural byte ('{', '[', '}', ']', ',', ':') outside strings. */
static void
tg_usage_resp_struct_byte(tg_usage_resp_t *s, char c)
{
    bool value_end = (c == ',' || c == '}' || c == ']') && s->depth == 2 &&
                     (s->cap == TG_UR_C_USAGE || s->cap == TG_UR_C_MODEL);
    uint32_t d;

    if (s->cap == TG_UR_C_TYPE_NEXT) {
        /* "type" is not a string. */
        s->cap = TG_UR_C_NONE;
    }
    if (value_end) {
        tg_usage_resp_cap_end(s);
    } else {
        tg_usage_resp_cap_byte(s, c);
    }
    switch (c) {
    case '{':
    case '[':
        if (s->depth < UINT32_MAX) {
            s->depth++;
        }
        d = s->depth;
        if (d <= 2) {
            s->obj[d] = c == '{';
            s->want_key[d] = s->obj[d];
            if (d == 2) {
                s->k2 = TG_UR_K_NONE;
            } else {
                s->k1 = TG_UR_K_NONE;
            }
        }
        return;
    case '}':
    case ']':
        if (s->depth > 0) {
            s->depth--;
        }
        return;
    case ',':
        d = s->depth;
        if (d >= 1 && d <= 2 && s->obj[d]) {
            s->want_key[d] = true;
        }
        return;
    default: /* ':' */
        d = s->depth;
        if (d == 1 && s->obj[1] && s->k1 == TG_UR_K_TYPE) {
            s->cap = TG_UR_C_TYPE_NEXT;
            s->type_cap = (tg_usage_resp_cap_t){0, false};
        } else if (d == 2 && s->obj[2] && s->k1 == TG_UR_K_RESPONSE &&
                   s->k2 == TG_UR_K_USAGE) {
            s->cap = TG_UR_C_USAGE;
            s->usage_cap = (tg_usage_resp_cap_t){0, false};
        } else if (d == 2 && s->obj[2] && s->k1 == TG_UR_K_RESPONSE &&
                   s->k2 == TG_UR_K_MODEL) {
            s->cap = TG_UR_C_MODEL;
            s->model_cap = (tg_usage_resp_cap_t){0, false};
        }
        return;
    }
}


/* One byte of an event's data (data lines joined by LF). */
static void
tg_usage_resp_json_byte(tg_usage_resp_t *s, char c)
{
    uint32_t d = s->depth;

    if (s->in_str) {
        tg_usage_resp_str_byte(s, c);
        return;
    }
    switch (c) {
    case '"':
        s->in_str = true;
        if (d >= 1 && d <= 2 && s->obj[d] && s->want_key[d]) {
            s->want_key[d] = false;
            s->in_key = true;
            s->key_cap = (tg_usage_resp_cap_t){0, false};
            return;
        }
        if (s->cap == TG_UR_C_TYPE_NEXT) {
            s->cap = TG_UR_C_TYPE;
            return;
        }
        tg_usage_resp_cap_byte(s, c);
        return;
    case '{':
    case '[':
    case '}':
    case ']':
    case ',':
    case ':':
        tg_usage_resp_struct_byte(s, c);
        return;
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        tg_usage_resp_cap_byte(s, c);
        return;
    default:
        if (s->cap == TG_UR_C_TYPE_NEXT) {
            s->cap = TG_UR_C_NONE;
        }
        tg_usage_resp_cap_byte(s, c);
        return;
    }
}


/* The empty line: the event is complete. */
static void
tg_usage_resp_dispatch(tg_usage_resp_t *s, tg_usage_resp_event_pt cb, void *ctx)
{
    tg_usage_resp_event_t ev;

    if (s->have_data) {
        memset(&ev, 0, sizeof(ev));
        ev.name = "";
        if (s->event_cap.len > 0 && !s->event_cap.over) {
            ev.name = s->event;
            ev.name_len = s->event_cap.len;
        } else if (s->type_done && !s->type_cap.over) {
            ev.name = s->type;
            ev.name_len = s->type_cap.len;
        }
        if (s->usage_found) {
            ev.usage = s->usage;
            ev.usage_len = s->usage_cap.len;
        }
        if (s->model_found) {
            ev.model = s->model;
            ev.model_len = s->model_cap.len;
        }
        cb(ctx, &ev);
    }
    tg_usage_resp_reset(s);
}


/* Whether the event named by the current "event:" field may matter: it
 * has none (the data's "type" will tell), or one that names the model,
 * carries usage or reports a failure.  The data of any other event (the
 * deltas: nearly all of a stream) is skipped without being followed. */
static bool
tg_usage_resp_wanted(const tg_usage_resp_t *s)
{
    static const char *const names[] = {
        "response.created", "response.completed", "response.incomplete",
        "response.failed", "error"};
    size_t i, n = s->event_cap.len;

    if (n == 0 || s->event_cap.over) {
        return true;
    }
    for (i = 0; i < TG_NELEMS(names); i++) {
        if (n == strlen(names[i]) && memcmp(s->event, names[i], n) == 0) {
            return true;
        }
    }
    return false;
}


/* The field name of the line is complete (its colon, or the line end). */
static void
tg_usage_resp_field(tg_usage_resp_t *s)
{
    if (s->field_len == 4 && memcmp(s->field, "data", 4) == 0) {
        if (s->have_data) {
            tg_usage_resp_json_byte(s, '\n');
        }
        s->have_data = true;
        s->fkind = tg_usage_resp_wanted(s) ? TG_UR_F_DATA : TG_UR_F_OTHER;
    } else if (s->field_len == 5 && memcmp(s->field, "event", 5) == 0) {
        s->event_cap = (tg_usage_resp_cap_t){0, false};
        s->fkind = TG_UR_F_EVENT;
    } else {
        s->fkind = TG_UR_F_OTHER;
    }
}


/* A line ended. */
static void
tg_usage_resp_line_end(tg_usage_resp_t *s, tg_usage_resp_event_pt cb, void *ctx)
{
    if (s->line == TG_UR_L_START) {
        tg_usage_resp_dispatch(s, cb, ctx);
    } else if (s->line == TG_UR_L_FIELD) {
        tg_usage_resp_field(s);
    }
    s->line = TG_UR_L_START;
    s->fkind = TG_UR_F_OTHER;
}


/* A byte of a field value. */
static void
tg_usage_resp_value(tg_usage_resp_t *s, char c)
{
    if (s->fkind == TG_UR_F_DATA) {
        tg_usage_resp_json_byte(s, c);
    } else if (s->fkind == TG_UR_F_EVENT) {
        tg_usage_resp_put(s->event, sizeof(s->event), &s->event_cap, c);
    }
}


/* See usage_resp.h. */
void
tg_usage_resp_feed(tg_usage_resp_t *s, const char *p, size_t len,
                   tg_usage_resp_event_pt cb, void *ctx)
{
    size_t i;
    char c;

    for (i = 0; i < len; i++) {
        if (s->line == TG_UR_L_VALUE &&
            (s->fkind == TG_UR_F_OTHER ||
             (s->fkind == TG_UR_F_DATA && s->in_str && !s->esc && !s->in_key &&
              s->cap == TG_UR_C_NONE))) {
            /* A value skipped, or a string nobody captures (the output
             * text of a terminal event): only a line end, or a quote or
             * an escape, matters. */
            while (
                i < len && p[i] != '\n' && p[i] != '\r' &&
                (s->fkind == TG_UR_F_OTHER || (p[i] != '"' && p[i] != '\\'))) {
                i++;
            }
            if (i == len) {
                break;
            }
        }
        c = p[i];
        if (s->skip_lf) {
            s->skip_lf = false;
            if (c == '\n') {
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            tg_usage_resp_line_end(s, cb, ctx);
            s->skip_lf = c == '\r';
            continue;
        }
        switch (s->line) {
        case TG_UR_L_START:
            s->field_len = 0;
            s->fkind = TG_UR_F_OTHER;
            /* A comment line (":...") is a value of no field. */
            s->line = c == ':' ? TG_UR_L_VALUE : TG_UR_L_FIELD;
            if (c != ':') {
                s->field[s->field_len++] = c;
            }
            break;
        case TG_UR_L_FIELD:
            if (c == ':') {
                tg_usage_resp_field(s);
                s->line = TG_UR_L_VSTART;
            } else if (s->field_len < sizeof(s->field)) {
                s->field[s->field_len++] = c;
            }
            break;
        case TG_UR_L_VSTART:
            s->line = TG_UR_L_VALUE;
            if (c != ' ') {
                tg_usage_resp_value(s, c);
            }
            break;
        default:
            tg_usage_resp_value(s, c);
            break;
        }
    }
}


/* A JSON value captured raw as <len> bytes at <p>, or NULL. */
static json_t *
tg_usage_resp_load(const char *p, size_t len)
{
    return p != NULL ? json_loadb(p, len, JSON_DECODE_ANY, NULL) : NULL;
}


/* See usage.h. */
void
tg_usage_resp_apply(tg_usage_t *u, json_t *usage, bool final)
{
    bool has = false;
    uint64_t in, cached, v;
    json_t *o;

    if (!json_is_object(usage)) {
        return;
    }
    o = json_object_get(usage, "input_tokens");
    in = json_is_integer(o) && json_integer_value(o) >= 0
             ? (uint64_t)json_integer_value(o)
             : 0;
    has = json_is_integer(o);
    o = json_object_get(json_object_get(usage, "input_tokens_details"),
                        "cached_tokens");
    cached = json_is_integer(o) && json_integer_value(o) >= 0
                 ? (uint64_t)json_integer_value(o)
                 : 0;
    cached = TG_MIN(cached, in);
    if (cached > u->tokens[TG_TOK_CACHE_READ]) {
        u->tokens[TG_TOK_CACHE_READ] = cached;
    }
    if (in - cached > u->tokens[TG_TOK_INPUT]) {
        u->tokens[TG_TOK_INPUT] = in - cached;
    }
    o = json_object_get(usage, "output_tokens");
    if (json_is_integer(o) && json_integer_value(o) >= 0) {
        has = true;
        v = (uint64_t)json_integer_value(o);
        u->tokens[TG_TOK_OUTPUT] = TG_MAX(u->tokens[TG_TOK_OUTPUT], v);
    }
    o = json_object_get(json_object_get(usage, "output_tokens_details"),
                        "reasoning_tokens");
    if (json_is_integer(o) && json_integer_value(o) >= 0) {
        v = (uint64_t)json_integer_value(o);
        u->tokens[TG_TOK_REASONING] = TG_MAX(u->tokens[TG_TOK_REASONING], v);
    }
    u->seen = u->seen || has;
    u->final = u->final || (final && has);
}


/* Whether the event name <ev> is <lit>. */
static bool
tg_usage_resp_is(const tg_usage_resp_event_t *ev, const char *lit)
{
    size_t n = strlen(lit);

    return ev->name_len == n && memcmp(ev->name, lit, n) == 0;
}


/* See usage.h. */
void
tg_usage_resp_event(void *ctx, const tg_usage_resp_event_t *ev)
{
    tg_usage_t *u = ctx;
    bool failed = tg_usage_resp_is(ev, "response.failed");
    bool done = failed || tg_usage_resp_is(ev, "response.completed") ||
                tg_usage_resp_is(ev, "response.incomplete");
    json_t *v;

    if (tg_usage_resp_is(ev, "error") || failed) {
        u->error_event = true;
    }
    if (ev->model != NULL) {
        v = tg_usage_resp_load(ev->model, ev->model_len);
        if (json_is_string(v)) {
            snprintf(u->model, sizeof(u->model), "%s", json_string_value(v));
        }
        json_decref(v);
    }
    if (!done) {
        return;
    }
    u->ended = true;
    v = tg_usage_resp_load(ev->usage, ev->usage_len);
    tg_usage_resp_apply(u, v, true);
    json_decref(v);
}
