/*
 * worker/translate_req.c
 *      Request bodies: Chat Completions -> Messages and Messages -> Chat
 *      Completions.
 *
 * NOTES
 *      The client's body is parsed whole with jansson (it is bounded by
 *      limits.body_bytes and already held), a new object is built member
 *      by member and serialized once.  Members with no equivalent are
 *      dropped with a debug line naming them; a request that cannot be
 *      expressed (an audio part, n > 1, tool arguments that are not JSON)
 *      is declined with a message naming the field, which the caller
 *      answers as a 400 in the client's shape.  docs/translation.md is the
 *      table of what maps to what.  Worker only; never blocks.
 */
#include "core/conf.h"
#include "core/log.h"
#include "worker/respond.h"
#include "worker/translate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_XR_DEPTH 64 /* JSON nesting accepted in a request */

/* One translation: the request, its error and where to log. */
typedef struct {
    const tg_translate_req_t *q;
    tg_err_t *err;
} tg_xr_t;


/* Log that <what> has no equivalent and was dropped. */
static void
tg_xr_drop(const tg_xr_t *x, const char *what)
{
    tg_log(TG_LOG_DEBUG, 0,
           "request %016llx: \"%s\" has no equivalent in the %s API; dropped",
           (unsigned long long)x->q->req_id, what,
           x->q->client_api == TG_API_OPENAI ? "Anthropic" : "OpenAI");
}


/* Decline: the request cannot be translated because of <fmt>. */
static int
tg_xr_fail(const tg_xr_t *x, const char *field, const char *why)
{
    tg_err_set(x->err, 400, 0, "%s: %s", field, why);
    return TG_DECLINED;
}


/* json_object_set_new that turns a NULL value (out of memory) into
 * TG_ERROR. */
static int
tg_xr_set(json_t *o, const char *name, json_t *v)
{
    if (v == NULL || json_object_set_new(o, name, v) != 0) {
        return TG_ERROR;
    }
    return TG_OK;
}


static int
tg_xr_push(json_t *a, json_t *v)
{
    if (v == NULL || json_array_append_new(a, v) != 0) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* Whether <model> names an OpenAI reasoning model (reasoning_effort). */
static bool
tg_xr_openai_reasoning(const char *model)
{
    return model != NULL &&
           (strncmp(model, "o1", 2) == 0 || strncmp(model, "o3", 2) == 0 ||
            strncmp(model, "o4", 2) == 0 || strncmp(model, "gpt-5", 5) == 0);
}


/* Whether <model> names a Claude model with extended thinking. */
static bool
tg_xr_claude_thinking(const char *model)
{
    return model != NULL && strncmp(model, "claude", 6) == 0 &&
           strncmp(model, "claude-3-5", 10) != 0 &&
           strncmp(model, "claude-3-haiku", 14) != 0 &&
           strncmp(model, "claude-3-opus", 13) != 0 &&
           strncmp(model, "claude-3-sonnet", 15) != 0 &&
           strncmp(model, "claude-instant", 14) != 0;
}


/* Tool ids must match [A-Za-z0-9_-]+ on the Anthropic side: other bytes
 * become '_'.  Returns a new string value. */
static json_t *
tg_xr_tool_id(const char *id)
{
    char buf[256];
    size_t i, n = strlen(id);

    if (n == 0) {
        return json_string("toolu_empty");
    }
    n = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
    for (i = 0; i < n; i++) {
        char c = id[i];

        buf[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-')
                     ? c
                     : '_';
    }
    buf[n] = '\0';
    return json_string(buf);
}


/* The text of OpenAI content <c> (a string or an array of text parts),
 * joined, as a new string value; NULL when <c> holds something else. */
static json_t *
tg_xr_openai_text(json_t *c)
{
    size_t i;
    json_t *part;
    char *joined = NULL;
    size_t len = 0;
    json_t *v;

    if (json_is_string(c)) {
        return json_incref(c);
    }
    if (c == NULL || json_is_null(c)) {
        return json_string("");
    }
    if (!json_is_array(c)) {
        return NULL;
    }
    json_array_foreach(c, i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        const char *type = json_string_value(json_object_get(part, "type"));
        size_t tl;
        char *p;

        if (t == NULL || type == NULL ||
            (strcmp(type, "text") != 0 && strcmp(type, "refusal") != 0 &&
             strcmp(type, "input_text") != 0)) {
            free(joined);
            return NULL;
        }
        tl = strlen(t);
        p = realloc(joined, len + tl + 2);
        if (p == NULL) {
            free(joined);
            return NULL;
        }
        joined = p;
        if (len > 0) {
            joined[len++] = '\n';
        }
        memcpy(joined + len, t, tl);
        len += tl;
    }
    v = json_stringn(joined != NULL ? joined : "", len);
    free(joined);
    return v;
}


/* Chat Completions -> Messages ----------------------------------------- */

/*
 * An OpenAI image_url part as an Anthropic image block: a data: URL
 * becomes a base64 source, anything else a url source.
 */
static json_t *
tg_xr_o2a_image(json_t *part)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu)
                          ? json_string_value(iu)
                          : json_string_value(json_object_get(iu, "url"));
    const char *semi, *comma;

    if (url == NULL) {
        return NULL;
    }
    if (strncmp(url, "data:", 5) == 0 &&
        (semi = strstr(url, ";base64,")) != NULL) {
        comma = semi + 8;
        return json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "image", "source",
                         "type", "base64", "media_type", url + 5,
                         (size_t)(semi - url - 5), "data", comma);
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type",
                     "url", "url", url);
}


/* An OpenAI file part (a PDF as a data: URL) as a document block. */
static json_t *
tg_xr_o2a_file(json_t *part)
{
    const char *d = json_string_value(
        json_object_get(json_object_get(part, "file"), "file_data"));
    const char *semi;

    if (d == NULL || strncmp(d, "data:", 5) != 0 ||
        (semi = strstr(d, ";base64,")) == NULL) {
        return NULL;
    }
    return json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "document", "source",
                     "type", "base64", "media_type", d + 5,
                     (size_t)(semi - d - 5), "data", semi + 8);
}


/* OpenAI user content <c> as Anthropic content appended to <blocks>. */
static int
tg_xr_o2a_user_content(tg_xr_t *x, json_t *c, json_t *blocks, size_t mi)
{
    char field[96];
    json_t *part, *b;
    size_t i;

    if (json_is_string(c)) {
        return tg_xr_push(blocks,
                          json_pack("{s:s,s:O}", "type", "text", "text", c));
    }
    if (!json_is_array(c)) {
        snprintf(field, sizeof(field), "messages[%zu].content", mi);
        return tg_xr_fail(x, field, "must be a string or an array");
    }
    json_array_foreach(c, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));

        b = NULL;
        if (type != NULL && strcmp(type, "text") == 0 &&
            json_is_string(json_object_get(part, "text"))) {
            b = json_pack("{s:s,s:O}", "type", "text", "text",
                          json_object_get(part, "text"));
        } else if (type != NULL && strcmp(type, "image_url") == 0) {
            b = tg_xr_o2a_image(part);
        } else if (type != NULL && strcmp(type, "file") == 0) {
            b = tg_xr_o2a_file(part);
        }
        if (b == NULL) {
            snprintf(field, sizeof(field), "messages[%zu].content[%zu]", mi, i);
            return tg_xr_fail(
                x, field,
                "this content part has no equivalent in the Anthropic API");
        }
        if (tg_xr_push(blocks, b) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* An assistant message's tool_calls as tool_use blocks in <blocks>. */
static int
tg_xr_o2a_tool_calls(tg_xr_t *x, json_t *calls, json_t *blocks, size_t mi)
{
    char field[96];
    json_t *call, *input;
    size_t i;

    json_array_foreach(calls, i, call)
    {
        json_t *fn = json_object_get(call, "function");
        const char *id = json_string_value(json_object_get(call, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));

        if (id == NULL || name == NULL) {
            snprintf(field, sizeof(field), "messages[%zu].tool_calls[%zu]", mi,
                     i);
            return tg_xr_fail(x, field, "id and function.name are required");
        }
        if (args == NULL || args[strspn(args, " \t\r\n")] == '\0') {
            input = json_object();
        } else {
            input = json_loads(args, 0, NULL);
            if (!json_is_object(input)) {
                json_decref(input);
                snprintf(field, sizeof(field),
                         "messages[%zu].tool_calls[%zu].function.arguments", mi,
                         i);
                return tg_xr_fail(x, field, "must be a JSON object");
            }
        }
        if (tg_xr_push(blocks, json_pack("{s:s,s:o,s:s,s:o}", "type",
                                         "tool_use", "id", tg_xr_tool_id(id),
                                         "name", name, "input", input)) !=
            TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* Append <blocks> as a <role> message to <out>, merging with the previous
 * message when it has the same role (Anthropic alternates roles). */
static int
tg_xr_o2a_append(json_t *out, const char *role, json_t *blocks)
{
    size_t n = json_array_size(out);
    json_t *last = n > 0 ? json_array_get(out, n - 1) : NULL;

    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return TG_OK;
    }
    if (last != NULL &&
        strcmp(json_string_value(json_object_get(last, "role")), role) == 0) {
        int rc = json_array_extend(json_object_get(last, "content"), blocks);

        json_decref(blocks);
        return rc == 0 ? TG_OK : TG_ERROR;
    }
    return tg_xr_push(out,
                      json_pack("{s:s,s:o}", "role", role, "content", blocks));
}


/* One OpenAI message <m> (index <mi>) into Anthropic <out>, system text
 * into <system>. */
static int
tg_xr_o2a_message(tg_xr_t *x, json_t *m, size_t mi, json_t *out, json_t *system)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *c = json_object_get(m, "content"), *blocks, *t;
    char field[96];
    int rc;

    snprintf(field, sizeof(field), "messages[%zu]", mi);
    if (role == NULL) {
        return tg_xr_fail(x, field, "role: Field required");
    }
    if (json_object_get(m, "name") != NULL) {
        tg_xr_drop(x, "messages[].name");
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        t = tg_xr_openai_text(c);
        if (t == NULL) {
            return tg_xr_fail(x, field, "content must be text");
        }
        return tg_xr_push(system,
                          json_pack("{s:s,s:o}", "type", "text", "text", t));
    }
    blocks = json_array();
    if (blocks == NULL) {
        return TG_ERROR;
    }
    if (strcmp(role, "user") == 0) {
        rc = tg_xr_o2a_user_content(x, c, blocks, mi);
        if (rc == TG_OK) {
            return tg_xr_o2a_append(out, "user", blocks);
        }
    } else if (strcmp(role, "assistant") == 0) {
        t = tg_xr_openai_text(c);
        rc = TG_OK;
        if (t == NULL) {
            rc = tg_xr_fail(x, field, "content must be text");
        } else if (json_string_length(t) > 0) {
            rc = tg_xr_push(blocks,
                            json_pack("{s:s,s:O}", "type", "text", "text", t));
        }
        json_decref(t);
        if (rc == TG_OK && json_is_array(json_object_get(m, "tool_calls"))) {
            rc = tg_xr_o2a_tool_calls(x, json_object_get(m, "tool_calls"),
                                      blocks, mi);
        }
        if (rc == TG_OK) {
            return tg_xr_o2a_append(out, "assistant", blocks);
        }
    } else if (strcmp(role, "tool") == 0) {
        const char *id = json_string_value(json_object_get(m, "tool_call_id"));

        t = tg_xr_openai_text(c);
        if (id == NULL || t == NULL) {
            json_decref(t);
            rc = tg_xr_fail(
                x, field, "a tool message needs tool_call_id and text content");
        } else {
            rc = tg_xr_push(blocks, json_pack("{s:s,s:o,s:o}", "type",
                                              "tool_result", "tool_use_id",
                                              tg_xr_tool_id(id), "content", t));
            if (rc == TG_OK) {
                return tg_xr_o2a_append(out, "user", blocks);
            }
        }
    } else {
        rc = tg_xr_fail(x, field,
                        "this role has no equivalent in the Anthropic API");
    }
    json_decref(blocks);
    return rc;
}


/* OpenAI tools -> Anthropic tools. */
static int
tg_xr_o2a_tools(tg_xr_t *x, json_t *tools, json_t *out)
{
    json_t *tool, *t, *a = json_array();
    char field[64];
    size_t i;

    if (a == NULL) {
        return TG_ERROR;
    }
    json_array_foreach(tools, i, tool)
    {
        json_t *fn = json_object_get(tool, "function");
        const char *type = json_string_value(json_object_get(tool, "type"));
        json_t *params = json_object_get(fn, "parameters");

        if (type == NULL || strcmp(type, "function") != 0 ||
            !json_is_string(json_object_get(fn, "name"))) {
            json_decref(a);
            snprintf(field, sizeof(field), "tools[%zu]", i);
            return tg_xr_fail(
                x, field,
                "only function tools have an equivalent in the Anthropic API");
        }
        t = json_pack(
            "{s:O,s:o}", "name", json_object_get(fn, "name"), "input_schema",
            json_is_object(params)
                ? json_incref(params)
                : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        if (t != NULL && json_is_string(json_object_get(fn, "description"))) {
            json_object_set(t, "description",
                            json_object_get(fn, "description"));
        }
        if (json_object_get(fn, "strict") != NULL) {
            tg_xr_drop(x, "tools[].function.strict");
        }
        if (tg_xr_push(a, t) != TG_OK) {
            json_decref(a);
            return TG_ERROR;
        }
    }
    return tg_xr_set(out, "tools", a);
}


/* OpenAI tool_choice and parallel_tool_calls -> Anthropic tool_choice. */
static int
tg_xr_o2a_tool_choice(tg_xr_t *x, json_t *in, json_t *out)
{
    json_t *tc = json_object_get(in, "tool_choice");
    json_t *ptc = json_object_get(in, "parallel_tool_calls");
    const char *s = json_string_value(tc);
    json_t *v = NULL;

    if (tc == NULL && !json_is_false(ptc)) {
        return TG_OK;
    }
    if (tc == NULL || (s != NULL && strcmp(s, "auto") == 0)) {
        v = json_pack("{s:s}", "type", "auto");
    } else if (s != NULL && strcmp(s, "none") == 0) {
        v = json_pack("{s:s}", "type", "none");
    } else if (s != NULL && strcmp(s, "required") == 0) {
        v = json_pack("{s:s}", "type", "any");
    } else if (json_is_string(
                   json_object_get(json_object_get(tc, "function"), "name"))) {
        v = json_pack("{s:s,s:O}", "type", "tool", "name",
                      json_object_get(json_object_get(tc, "function"), "name"));
    } else {
        return tg_xr_fail(x, "tool_choice", "unknown value");
    }
    if (v != NULL && json_is_false(ptc) &&
        strcmp(json_string_value(json_object_get(v, "type")), "none") != 0) {
        json_object_set_new(v, "disable_parallel_tool_use", json_true());
    }
    return tg_xr_set(out, "tool_choice", v);
}


/* reasoning_effort -> thinking, when the model has it and max_tokens
 * leaves room for the budget (thinking needs budget >= 1024 and below
 * max_tokens, and no temperature other than 1). */
static int
tg_xr_o2a_thinking(tg_xr_t *x, json_t *in, json_t *out, json_int_t max)
{
    const char *e = json_string_value(json_object_get(in, "reasoning_effort"));
    json_t *temp = json_object_get(out, "temperature");
    json_int_t budget;

    if (e == NULL) {
        return TG_OK;
    }
    budget = strcmp(e, "high") == 0     ? 16384
             : strcmp(e, "medium") == 0 ? 8192
                                        : 2048;
    if (budget >= max) {
        /* Thinking counts against max_tokens: leave half for the answer. */
        budget = max / 2;
    }
    if (!tg_xr_claude_thinking(
            json_string_value(json_object_get(out, "model"))) ||
        strcmp(e, "none") == 0 || strcmp(e, "minimal") == 0 || budget < 1024 ||
        (temp != NULL && json_number_value(temp) != 1.0)) {
        tg_xr_drop(x, "reasoning_effort");
        return TG_OK;
    }
    return tg_xr_set(
        out, "thinking",
        json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens", budget));
}


/* Sampling and limits: max tokens, temperature, top_p, stop, user,
 * stream. */
static int
tg_xr_o2a_params(tg_xr_t *x, json_t *in, json_t *out, json_int_t *max)
{
    json_t *mt = json_object_get(in, "max_completion_tokens"), *v, *a;
    size_t i;
    double t;

    if (!json_is_integer(mt)) {
        mt = json_object_get(in, "max_tokens");
    }
    *max = json_is_integer(mt) ? json_integer_value(mt)
                               : (json_int_t)x->q->max_tokens;
    if (*max < 1) {
        return tg_xr_fail(x, "max_tokens", "must be at least 1");
    }
    if (tg_xr_set(out, "max_tokens", json_integer(*max)) != TG_OK) {
        return TG_ERROR;
    }
    if (json_is_number(v = json_object_get(in, "temperature"))) {
        /* OpenAI's range is 0..2, Anthropic's 0..1. */
        t = json_number_value(v);
        if (t > 1.0) {
            tg_log(TG_LOG_DEBUG, 0,
                   "request %016llx: temperature %.2f "
                   "lowered to 1, the Anthropic maximum",
                   (unsigned long long)x->q->req_id, t);
            t = 1.0;
        }
        if (tg_xr_set(out, "temperature", json_real(t < 0 ? 0 : t)) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (json_is_number(v = json_object_get(in, "top_p")) &&
        json_object_set(out, "top_p", v) != 0) {
        return TG_ERROR;
    }
    v = json_object_get(in, "stop");
    if (json_is_string(v)) {
        if (tg_xr_set(out, "stop_sequences", json_pack("[O]", v)) != TG_OK) {
            return TG_ERROR;
        }
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        json_array_foreach(v, i, a)
        {
            if (!json_is_string(a)) {
                return tg_xr_fail(x, "stop", "must be strings");
            }
        }
        if (json_object_set(out, "stop_sequences", v) != 0) {
            return TG_ERROR;
        }
    }
    if (json_is_string(v = json_object_get(in, "user")) &&
        tg_xr_set(out, "metadata", json_pack("{s:O}", "user_id", v)) != TG_OK) {
        return TG_ERROR;
    }
    if (json_is_boolean(v = json_object_get(in, "stream")) &&
        json_object_set(out, "stream", v) != 0) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* Members of a Chat Completions request that the code above maps (or
 * that need no mapping); every other member is dropped with a line. */
static bool
tg_xr_o2a_known(const char *k)
{
    static const char *const known[] = {"model",
                                        "messages",
                                        "max_tokens",
                                        "max_completion_tokens",
                                        "temperature",
                                        "top_p",
                                        "stop",
                                        "tools",
                                        "tool_choice",
                                        "parallel_tool_calls",
                                        "user",
                                        "stream",
                                        "stream_options",
                                        "reasoning_effort",
                                        "n",
                                        NULL};
    size_t i;

    for (i = 0; known[i] != NULL; i++) {
        if (strcmp(k, known[i]) == 0) {
            return true;
        }
    }
    return false;
}


static int
tg_xr_o2a(tg_xr_t *x, json_t *in, json_t *out)
{
    json_t *msgs = json_object_get(in, "messages"), *m, *v;
    json_t *amsgs = NULL, *system = NULL;
    json_int_t max;
    const char *k;
    size_t i;
    int rc;

    if (!json_is_array(msgs)) {
        return tg_xr_fail(x, "messages", "Field required");
    }
    if (json_is_integer(v = json_object_get(in, "n")) &&
        json_integer_value(v) != 1) {
        return tg_xr_fail(x, "n", "only 1 choice can be translated");
    }
    if ((rc = tg_xr_o2a_params(x, in, out, &max)) != TG_OK) {
        return rc;
    }
    amsgs = json_array();
    system = json_array();
    if (amsgs == NULL || system == NULL) {
        rc = TG_ERROR;
        goto done;
    }
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m)) {
            char field[48];

            snprintf(field, sizeof(field), "messages[%zu]", i);
            rc = tg_xr_fail(x, field, "must be an object");
            goto done;
        }
        if ((rc = tg_xr_o2a_message(x, m, i, amsgs, system)) != TG_OK) {
            goto done;
        }
    }
    if (json_array_size(system) > 0 &&
        json_object_set(out, "system", system) != 0) {
        rc = TG_ERROR;
        goto done;
    }
    if (json_object_set(out, "messages", amsgs) != 0) {
        rc = TG_ERROR;
        goto done;
    }
    if (json_is_array(v = json_object_get(in, "tools")) &&
        json_array_size(v) > 0 && (rc = tg_xr_o2a_tools(x, v, out)) != TG_OK) {
        goto done;
    }
    if ((rc = tg_xr_o2a_tool_choice(x, in, out)) != TG_OK ||
        (rc = tg_xr_o2a_thinking(x, in, out, max)) != TG_OK) {
        goto done;
    }
    json_object_foreach(in, k, v)
    {
        if (!tg_xr_o2a_known(k)) {
            tg_xr_drop(x, k);
        }
    }
done:
    json_decref(amsgs);
    json_decref(system);
    return rc;
}


/* Messages -> Chat Completions ------------------------------------------ */

/* The text of Anthropic content <c> (a string or text blocks; other
 * blocks are skipped), joined, as a new string value; NULL when <c> is
 * neither a string nor an array, or out of memory. */
static json_t *
tg_xr_anthropic_text(json_t *c)
{
    size_t i, len = 0, n;
    char *s = NULL, *p;
    json_t *b, *t, *v;

    if (json_is_string(c)) {
        return json_incref(c);
    }
    if (!json_is_array(c)) {
        return NULL;
    }
    json_array_foreach(c, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        t = json_object_get(b, "text");
        if (type == NULL || strcmp(type, "text") != 0 || !json_is_string(t)) {
            continue;
        }
        n = json_string_length(t);
        p = realloc(s, len + n + 2);
        if (p == NULL) {
            free(s);
            return NULL;
        }
        s = p;
        if (len > 0) {
            s[len++] = '\n';
        }
        memcpy(s + len, json_string_value(t), n);
        len += n;
    }
    v = json_stringn(s != NULL ? s : "", len);
    free(s);
    return v;
}


/* An Anthropic image or document block as an OpenAI content part. */
static json_t *
tg_xr_a2o_media(json_t *b, bool image)
{
    json_t *src = json_object_get(b, "source");
    const char *st = json_string_value(json_object_get(src, "type"));
    const char *mt = json_string_value(json_object_get(src, "media_type"));
    const char *data = json_string_value(json_object_get(src, "data"));
    const char *url = json_string_value(json_object_get(src, "url"));
    json_t *v;
    char *du;
    size_t n;

    if (st != NULL && strcmp(st, "url") == 0 && url != NULL && image) {
        return json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url",
                         "url", url);
    }
    if (st == NULL || strcmp(st, "base64") != 0 || mt == NULL || data == NULL) {
        return NULL;
    }
    n = strlen(mt) + strlen(data) + 16;
    du = malloc(n);
    if (du == NULL) {
        return NULL;
    }
    snprintf(du, n, "data:%s;base64,%s", mt, data);
    v = image ? json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url",
                          "url", du)
              : json_pack("{s:s,s:{s:s,s:s}}", "type", "file", "file",
                          "filename", "document.pdf", "file_data", du);
    free(du);
    return v;
}


/* A tool_result block as an OpenAI tool message. */
static json_t *
tg_xr_a2o_tool_result(tg_xr_t *x, json_t *b)
{
    json_t *c = json_object_get(b, "content"), *t;
    const char *id = json_string_value(json_object_get(b, "tool_use_id"));

    if (id == NULL) {
        return NULL;
    }
    t = c == NULL ? json_string("") : tg_xr_anthropic_text(c);
    if (t == NULL) {
        return NULL;
    }
    if (json_is_array(c) && json_array_size(c) > 0) {
        size_t i;
        json_t *e;

        json_array_foreach(c, i, e)
        {
            const char *type = json_string_value(json_object_get(e, "type"));

            if (type == NULL || strcmp(type, "text") != 0) {
                tg_xr_drop(x, "tool_result.content[] (non-text)");
                break;
            }
        }
    }
    if (json_is_true(json_object_get(b, "is_error"))) {
        tg_xr_drop(x, "tool_result.is_error");
    }
    return json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id", id,
                     "content", t);
}


/* An Anthropic user message (index <mi>): tool results first, as tool
 * messages (they must follow the assistant's tool calls), then the rest
 * as one user message. */
static int
tg_xr_a2o_user(tg_xr_t *x, json_t *c, json_t *out, size_t mi)
{
    json_t *parts, *b, *p;
    char field[96];
    size_t i;

    if (json_is_string(c)) {
        return tg_xr_push(out,
                          json_pack("{s:s,s:O}", "role", "user", "content", c));
    }
    if (!json_is_array(c)) {
        snprintf(field, sizeof(field), "messages[%zu].content", mi);
        return tg_xr_fail(x, field, "must be a string or an array");
    }
    parts = json_array();
    if (parts == NULL) {
        return TG_ERROR;
    }
    json_array_foreach(c, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        p = NULL;
        if (type == NULL) {
            /* falls to the error below */
        } else if (strcmp(type, "tool_result") == 0) {
            p = tg_xr_a2o_tool_result(x, b);
            if (p != NULL) {
                if (tg_xr_push(out, p) != TG_OK) {
                    json_decref(parts);
                    return TG_ERROR;
                }
                continue;
            }
        } else if (strcmp(type, "text") == 0 &&
                   json_is_string(json_object_get(b, "text"))) {
            p = json_pack("{s:s,s:O}", "type", "text", "text",
                          json_object_get(b, "text"));
        } else if (strcmp(type, "image") == 0 ||
                   strcmp(type, "document") == 0) {
            p = tg_xr_a2o_media(b, strcmp(type, "image") == 0);
        }
        if (p == NULL) {
            json_decref(parts);
            snprintf(field, sizeof(field), "messages[%zu].content[%zu]", mi, i);
            return tg_xr_fail(
                x, field,
                "this content block has no equivalent in the OpenAI API");
        }
        if (tg_xr_push(parts, p) != TG_OK) {
            json_decref(parts);
            return TG_ERROR;
        }
    }
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return TG_OK;
    }
    return tg_xr_push(out,
                      json_pack("{s:s,s:o}", "role", "user", "content", parts));
}


/* An Anthropic assistant message: text blocks joined as content, tool_use
 * blocks as tool_calls, thinking dropped. */
static int
tg_xr_a2o_assistant(tg_xr_t *x, json_t *c, json_t *out, size_t mi)
{
    json_t *calls, *b, *m, *text;
    char field[96], *args;
    size_t i;

    if (json_is_string(c)) {
        return tg_xr_push(
            out, json_pack("{s:s,s:O}", "role", "assistant", "content", c));
    }
    if (!json_is_array(c)) {
        snprintf(field, sizeof(field), "messages[%zu].content", mi);
        return tg_xr_fail(x, field, "must be a string or an array");
    }
    calls = json_array();
    text = tg_xr_anthropic_text(c);
    m = json_pack("{s:s}", "role", "assistant");
    if (calls == NULL || text == NULL || m == NULL) {
        json_decref(calls);
        json_decref(text);
        json_decref(m);
        return TG_ERROR;
    }
    json_array_foreach(c, i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        if (type == NULL || strcmp(type, "tool_use") != 0) {
            if (type != NULL && strcmp(type, "text") != 0) {
                tg_xr_drop(x, type);
            }
            continue;
        }
        args = json_dumps(json_object_get(b, "input"),
                          JSON_COMPACT | JSON_ENCODE_ANY);
        if (args == NULL || !json_is_string(json_object_get(b, "id")) ||
            !json_is_string(json_object_get(b, "name"))) {
            free(args);
            json_decref(calls);
            json_decref(text);
            json_decref(m);
            snprintf(field, sizeof(field), "messages[%zu].content[%zu]", mi, i);
            return tg_xr_fail(x, field, "tool_use needs id, name and input");
        }
        json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id",
                                               json_object_get(b, "id"), "type",
                                               "function", "function", "name",
                                               json_object_get(b, "name"),
                                               "arguments", args));
        free(args);
    }
    json_object_set_new(m, "content",
                        json_string_length(text) > 0 ? text : json_null());
    if (json_string_length(text) == 0) {
        json_decref(text);
    }
    if (json_array_size(calls) > 0) {
        json_object_set_new(m, "tool_calls", calls);
    } else {
        json_decref(calls);
    }
    return tg_xr_push(out, m);
}


/* Anthropic tools -> OpenAI function tools; server tools are dropped. */
static int
tg_xr_a2o_tools(tg_xr_t *x, json_t *tools, json_t *out)
{
    json_t *tool, *fn, *a = json_array();
    size_t i;

    if (a == NULL) {
        return TG_ERROR;
    }
    json_array_foreach(tools, i, tool)
    {
        const char *type = json_string_value(json_object_get(tool, "type"));

        if ((type != NULL && strcmp(type, "custom") != 0) ||
            !json_is_string(json_object_get(tool, "name"))) {
            tg_xr_drop(x, type != NULL ? type : "tools[]");
            continue;
        }
        fn = json_pack("{s:O}", "name", json_object_get(tool, "name"));
        if (fn == NULL) {
            json_decref(a);
            return TG_ERROR;
        }
        if (json_is_string(json_object_get(tool, "description"))) {
            json_object_set(fn, "description",
                            json_object_get(tool, "description"));
        }
        if (json_is_object(json_object_get(tool, "input_schema"))) {
            json_object_set(fn, "parameters",
                            json_object_get(tool, "input_schema"));
        }
        if (tg_xr_push(a, json_pack("{s:s,s:o}", "type", "function", "function",
                                    fn)) != TG_OK) {
            json_decref(a);
            return TG_ERROR;
        }
    }
    if (json_array_size(a) == 0) {
        json_decref(a);
        return TG_OK;
    }
    return tg_xr_set(out, "tools", a);
}


/* Anthropic tool_choice -> OpenAI tool_choice and parallel_tool_calls. */
static int
tg_xr_a2o_tool_choice(tg_xr_t *x, json_t *tc, json_t *out)
{
    const char *type = json_string_value(json_object_get(tc, "type"));
    json_t *v;

    if (tc == NULL) {
        return TG_OK;
    }
    if (type == NULL) {
        return tg_xr_fail(x, "tool_choice", "type is required");
    }
    if (strcmp(type, "auto") == 0) {
        v = json_string("auto");
    } else if (strcmp(type, "any") == 0) {
        v = json_string("required");
    } else if (strcmp(type, "none") == 0) {
        v = json_string("none");
    } else if (strcmp(type, "tool") == 0 &&
               json_is_string(json_object_get(tc, "name"))) {
        v = json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                      json_object_get(tc, "name"));
    } else {
        return tg_xr_fail(x, "tool_choice", "unknown type");
    }
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")) &&
        json_object_get(out, "tools") != NULL &&
        tg_xr_set(out, "parallel_tool_calls", json_false()) != TG_OK) {
        json_decref(v);
        return TG_ERROR;
    }
    return tg_xr_set(out, "tool_choice", v);
}


/* Sampling, limits, stream, user and thinking. */
static int
tg_xr_a2o_params(tg_xr_t *x, json_t *in, json_t *out)
{
    json_t *v = json_object_get(in, "max_tokens"), *th;
    const char *model = json_string_value(json_object_get(out, "model"));
    json_int_t budget;

    if (json_is_integer(v) &&
        json_object_set(out, "max_completion_tokens", v) != 0) {
        return TG_ERROR;
    }
    if (json_is_number(v = json_object_get(in, "temperature")) &&
        json_object_set(out, "temperature", v) != 0) {
        return TG_ERROR;
    }
    if (json_is_number(v = json_object_get(in, "top_p")) &&
        json_object_set(out, "top_p", v) != 0) {
        return TG_ERROR;
    }
    v = json_object_get(in, "stop_sequences");
    if (json_is_array(v) && json_array_size(v) > 4) {
        return tg_xr_fail(x, "stop_sequences",
                          "the OpenAI API takes at most 4");
    }
    if (json_is_array(v) && json_array_size(v) > 0 &&
        json_object_set(out, "stop", v) != 0) {
        return TG_ERROR;
    }
    v = json_object_get(json_object_get(in, "metadata"), "user_id");
    if (json_is_string(v) && json_object_set(out, "user", v) != 0) {
        return TG_ERROR;
    }
    if (json_is_true(json_object_get(in, "stream")) &&
        (tg_xr_set(out, "stream", json_true()) != TG_OK ||
         tg_xr_set(out, "stream_options",
                   json_pack("{s:b}", "include_usage", 1)) != TG_OK)) {
        return TG_ERROR;
    }
    th = json_object_get(in, "thinking");
    if (th != NULL &&
        strcmp(json_string_value(json_object_get(th, "type"))
                   ? json_string_value(json_object_get(th, "type"))
                   : "",
               "enabled") == 0) {
        if (!tg_xr_openai_reasoning(model)) {
            tg_xr_drop(x, "thinking");
            return TG_OK;
        }
        budget = json_integer_value(json_object_get(th, "budget_tokens"));
        return tg_xr_set(out, "reasoning_effort",
                         json_string(budget >= 16384  ? "high"
                                     : budget >= 4096 ? "medium"
                                                      : "low"));
    }
    return TG_OK;
}


static bool
tg_xr_a2o_known(const char *k)
{
    static const char *const known[] = {
        "model",  "messages",       "system", "max_tokens",  "temperature",
        "top_p",  "stop_sequences", "tools",  "tool_choice", "metadata",
        "stream", "thinking",       NULL};
    size_t i;

    for (i = 0; known[i] != NULL; i++) {
        if (strcmp(k, known[i]) == 0) {
            return true;
        }
    }
    return false;
}


static int
tg_xr_a2o(tg_xr_t *x, json_t *in, json_t *out)
{
    json_t *msgs = json_object_get(in, "messages"), *m, *v, *omsgs, *sys;
    char field[48];
    const char *k, *role;
    size_t i;
    int rc;

    if (!json_is_array(msgs)) {
        return tg_xr_fail(x, "messages", "Field required");
    }
    if ((rc = tg_xr_a2o_params(x, in, out)) != TG_OK) {
        return rc;
    }
    omsgs = json_array();
    if (omsgs == NULL) {
        return TG_ERROR;
    }
    v = json_object_get(in, "system");
    if (v != NULL) {
        sys = tg_xr_anthropic_text(v);
        if (sys == NULL) {
            json_decref(omsgs);
            return tg_xr_fail(x, "system", "must be text");
        }
        if (tg_xr_push(omsgs, json_pack("{s:s,s:o}", "role", "system",
                                        "content", sys)) != TG_OK) {
            json_decref(omsgs);
            return TG_ERROR;
        }
    }
    json_array_foreach(msgs, i, m)
    {
        role = json_string_value(json_object_get(m, "role"));
        snprintf(field, sizeof(field), "messages[%zu].role", i);
        if (role == NULL) {
            rc = tg_xr_fail(x, field, "Field required");
        } else if (strcmp(role, "user") == 0) {
            rc = tg_xr_a2o_user(x, json_object_get(m, "content"), omsgs, i);
        } else if (strcmp(role, "assistant") == 0) {
            rc =
                tg_xr_a2o_assistant(x, json_object_get(m, "content"), omsgs, i);
        } else {
            rc = tg_xr_fail(x, field, "must be user or assistant");
        }
        if (rc != TG_OK) {
            json_decref(omsgs);
            return rc;
        }
    }
    if (tg_xr_set(out, "messages", omsgs) != TG_OK) {
        return TG_ERROR;
    }
    if (json_is_array(v = json_object_get(in, "tools")) &&
        (rc = tg_xr_a2o_tools(x, v, out)) != TG_OK) {
        return rc;
    }
    if ((rc = tg_xr_a2o_tool_choice(x, json_object_get(in, "tool_choice"),
                                    out)) != TG_OK) {
        return rc;
    }
    json_object_foreach(in, k, v)
    {
        if (!tg_xr_a2o_known(k)) {
            tg_xr_drop(x, k);
        }
    }
    return TG_OK;
}


/* See translate.h. */
int
tg_translate_request(const tg_translate_req_t *q, const char *body, size_t len,
                     char **out, size_t *out_len, tg_err_t *err)
{
    tg_xr_t x = {q, err};
    json_t *in, *o = NULL, *model;
    json_error_t jerr;
    int rc;

    *out = NULL;
    *out_len = 0;
    in = json_loadb(body, len, 0, &jerr);
    if (in == NULL) {
        tg_err_set(err, 400, 0, "the request body is not valid JSON: %s",
                   jerr.text);
        return TG_DECLINED;
    }
    if (!json_is_object(in)) {
        rc = tg_xr_fail(&x, "body", "must be a JSON object");
        goto done;
    }
    model = json_object_get(in, "model");
    if (!json_is_string(model)) {
        rc = tg_xr_fail(&x, "model", "Field required");
        goto done;
    }
    o = json_pack("{s:s}", "model",
                  q->model != NULL ? q->model : json_string_value(model));
    if (o == NULL) {
        rc = TG_ERROR;
        goto done;
    }
    rc = q->client_api == TG_API_OPENAI ? tg_xr_o2a(&x, in, o)
                                        : tg_xr_a2o(&x, in, o);
    if (rc == TG_OK) {
        *out = json_dumps(o, JSON_COMPACT);
        if (*out == NULL) {
            rc = TG_ERROR;
        } else {
            *out_len = strlen(*out);
        }
    }
done:
    json_decref(o);
    json_decref(in);
    return rc;
}


/* See translate.h. */
bool
tg_translate_wants_usage(const char *body, size_t len)
{
    json_t *in = json_loadb(body, len, 0, NULL);
    bool yes = json_is_true(json_object_get(
        json_object_get(in, "stream_options"), "include_usage"));

    json_decref(in);
    return yes;
}


/* See translate.h. */
const char *
tg_translate_path(int style)
{
    return style == TG_STYLE_OPENAI ? "/v1/chat/completions" : "/v1/messages";
}
