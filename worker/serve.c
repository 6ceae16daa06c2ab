/*
 * worker/serve.c
 *      The request path: from the first byte of a request to its dispatch.
 *
 * NOTES
 *      Worker only; nothing here blocks.  A request always starts at
 *      c->in.data[0] (pipelined bytes are moved to the front when the
 *      previous request is done), so the head and the decoded body are at
 *      fixed offsets for the life of the request.  The head is parsed again
 *      once the body is complete because growing c->in may move it; parsing
 *      a head is cheap and this keeps the parsed strings trivially valid.
 *
 *      Timeouts (one timer per connection): header_timeout runs from the
 *      first byte of a request to the end of its head (a slowloris client
 *      cannot stretch it byte by byte); body_timeout between body reads;
 *      idle_timeout between keep-alive requests; send_timeout while the
 *      client does not drain our output.  Paths are matched without their
 *      query string, as clients add "?beta=true" and the like.
 */
#include "worker/serve.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/auth.h"
#include "worker/epconf.h"
#include "worker/limit.h"
#include "worker/proxy.h"
#include "worker/request.h"
#include "worker/route.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TG_SERVE_READ_CHUNK 16384

static void tg_serve_process(tg_request_t *r);


/* End <r> with an error answer. */
static int
tg_serve_fail(tg_request_t *r, int cause, int status, const char *type,
              const char *code, const char *msg, const char *extra)
{
    tg_request_error_t err = {status, type, code, msg, extra};

    /* Refused before the whole request was read: the client may still be
     * sending, and a close with unread input would reset the connection
     * and could destroy this answer on its way.  Close lingeringly. */
    if (r->phase == TG_REQ_HEAD || r->phase == TG_REQ_BODY) {
        r->c->linger = true;
    }
    return tg_request_end(r, cause, &err);
}


static void
tg_serve_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_conn_t *c = t->data;
    tg_request_t *r = c->data;

    (void)loop;
    switch (r->phase) {
    case TG_REQ_IDLE:
        tg_request_close(r, TG_END_CLIENT_GONE);
        return;
    case TG_REQ_HEAD:
        tg_log(TG_LOG_INFO, 0, "client timed out sending the request head");
        (void)tg_serve_fail(r, TG_END_TIMEOUT, 408, "timeout_error", NULL,
                            "timed out reading the request head", NULL);
        return;
    case TG_REQ_BODY:
        tg_log(TG_LOG_INFO, 0, "client timed out sending the request body");
        (void)tg_serve_fail(r, TG_END_TIMEOUT, 408, "timeout_error", NULL,
                            "timed out reading the request body", NULL);
        return;
    default:
        /* The client has not read our output for send_timeout. */
        tg_log(TG_LOG_INFO, 0, "client timed out reading the response");
        tg_request_close(r, TG_END_CLIENT_GONE);
    }
}


/* Write <c>'s output and move the request on when it has all gone. */
static void
tg_serve_flush(tg_conn_t *c)
{
    tg_request_t *r = c->data;
    int rc = tg_conn_write(c, c->w->conf->send_timeout_ms);

    if (rc == TG_ERROR) {
        tg_request_close(r, TG_END_CLIENT_GONE);
        return;
    }
    if (rc != TG_OK) {
        return;
    }
    if (r->phase == TG_REQ_UPSTREAM) {
        tg_proxy_resume(r);
        return;
    }
    if (r->phase == TG_REQ_ENDED && tg_request_finalize(r) == TG_OK &&
        c->in.last > 0) {
        /* Pipelined bytes of the next request are already here. */
        tg_serve_process(r);
    }
}


static void
tg_serve_event(tg_conn_t *c, uint32_t events)
{
    tg_request_t *r = c->data;
    char b;
    ssize_t n;

    if (events & (EPOLLERR | EPOLLHUP)) {
        tg_request_close(r, TG_END_CLIENT_GONE);
        return;
    }
    if ((events & EPOLLRDHUP) &&
        (r->phase == TG_REQ_UPSTREAM || r->phase == TG_REQ_ENDED ||
         r->phase == TG_REQ_IDLE)) {
        /* The client went away while we were answering: stop the
         * upstream transfer rather than pay for tokens nobody reads. */
        tg_request_close(r, TG_END_CLIENT_GONE);
        return;
    }
    if (events & EPOLLOUT) {
        tg_serve_flush(c);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP))) {
        return;
    }
    if (r->phase == TG_REQ_IDLE || r->phase == TG_REQ_HEAD ||
        r->phase == TG_REQ_BODY) {
        tg_serve_process(r);
        return;
    }
    /* Readable while we answer: either the client closed (recv gives 0)
     * or it pipelined its next request, which waits in the kernel; stop
     * watching for input until this response is done. */
    n = recv(c->fd, &b, 1, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        tg_request_close(r, TG_END_CLIENT_GONE);
    } else if (n > 0) {
        tg_ev_mod(c->w->loop, c->fd, EPOLLRDHUP);
    }
}


/* See serve.h. */
int
tg_serve_conn_init(tg_conn_t *c)
{
    tg_request_t *r = tg_request_create(c);

    if (r == NULL) {
        tg_log(TG_LOG_ERR, ENOMEM, "malloc(request) failed");
        return TG_ERROR;
    }
    c->data = r;
    c->handler = tg_serve_event;
    c->flush = tg_serve_flush;
    c->timer.handler = tg_serve_timer_handler;
    c->timer.data = c;
    /* The first request's head is due within header_timeout of the
     * connection, so a client that connects and says nothing is
     * answered 408 like one that stops half-way. */
    tg_request_begin(r);
    tg_ev_timer_add(c->w->loop, &c->timer, c->w->conf->header_timeout_ms);
    return TG_OK;
}


/* See serve.h. */
void
tg_serve_conn_fini(tg_conn_t *c)
{
    tg_request_t *r = c->data;

    if (r->phase == TG_REQ_HEAD && c->in.last == 0) {
        /* Not a request yet: nothing to account. */
        r->phase = TG_REQ_IDLE;
    }
    tg_request_close(r, TG_END_INTERNAL);
}


/* See serve.h. */
void
tg_serve_close_idle(tg_worker_t *w)
{
    tg_conn_t *c = w->all_head, *next;

    while (c != NULL) {
        tg_request_t *r = c->data;

        next = c->next;
        if (c->in.last == 0 &&
            (r->phase == TG_REQ_IDLE || r->phase == TG_REQ_HEAD)) {
            r->phase = TG_REQ_IDLE;
            tg_request_close(r, TG_END_CLIENT_GONE);
        }
        c = next;
    }
}


/* A captured member's raw text, or the empty string when it was absent. */
static tg_str_t
tg_serve_field(const tg_json_field_t *f)
{
    return f->found ? (tg_str_t){f->buf, f->len} : tg_str_null;
}


/*
 * Read "model" and "stream" from the request body into <r>, with where the
 * model's value lies in the body (for per-endpoint renames).  When the
 * key's group is sticky, also "metadata", "system" and the start of
 * "messages", for the conversation key (tg_route_session): bounded
 * captures in the same single pass over the body.  The Responses API
 * names them "instructions" and "input", and its "prompt_cache_key" (a
 * conversation id, as Codex sends it) stands in for x-session-id.
 */
static void
tg_serve_scan_body(tg_request_t *r)
{
    const tg_conf_t *conf = r->w->conf;
    const tg_http_header_t *h;
    tg_json_field_t f[6];
    tg_json_scan_t s;
    char model[160], stream[8], meta[1024], system[4096], messages[4096];
    char pck[256];
    bool sticky, resp = r->route == TG_ROUTE_RESPONSES;
    tg_str_t key;
    json_t *v;

    sticky = r->key.group < conf->ngroups && conf->groups[r->key.group].sticky;
    f[0] = (tg_json_field_t){
        .name = "model", .name_len = 5, .buf = model, .cap = sizeof(model)};
    f[1] = (tg_json_field_t){
        .name = "stream", .name_len = 6, .buf = stream, .cap = sizeof(stream)};
    f[2] = (tg_json_field_t){
        .name = "metadata", .name_len = 8, .buf = meta, .cap = sizeof(meta)};
    f[3] = (tg_json_field_t){.name = resp ? "instructions" : "system",
                             .name_len = resp ? 12 : 6,
                             .buf = system,
                             .cap = sizeof(system)};
    f[4] = (tg_json_field_t){.name = resp ? "input" : "messages",
                             .name_len = resp ? 5 : 8,
                             .buf = messages,
                             .cap = sizeof(messages)};
    f[5] = (tg_json_field_t){.name = "prompt_cache_key",
                             .name_len = 16,
                             .buf = pck,
                             .cap = sizeof(pck)};
    tg_json_scan_init(&s, f, sticky ? (resp ? 6 : 5) : 2);
    tg_json_scan_feed(&s, tg_request_body(r), (size_t)r->head.content_length);
    if (f[0].found && !f[0].truncated) {
        v = json_loadb(model, f[0].len, JSON_DECODE_ANY, NULL);
        if (json_is_string(v)) {
            snprintf(r->model, sizeof(r->model), "%s", json_string_value(v));
            /* A rename replaces the value only when r->model is the whole
             * name: never for a name cut short or holding a NUL. */
            if (json_string_length(v) < sizeof(r->model) &&
                strlen(r->model) == json_string_length(v)) {
                r->model_off = f[0].offset;
                r->model_vlen = f[0].len;
            }
        }
        json_decref(v);
    }
    r->stream_req =
        f[1].found && f[1].len == 4 && memcmp(stream, "true", 4) == 0;
    if (sticky) {
        h = tg_http_find_header(r->head.headers, r->head.nheaders,
                                tg_str_lit("x-session-id"));
        key = h != NULL ? h->value : tg_str_null;
        if (h == NULL && resp && f[5].found && !f[5].truncated &&
            f[5].len > 2 && pck[0] == '"') {
            key = (tg_str_t){pck, f[5].len};
        }
        r->session =
            tg_route_session(tg_serve_field(&f[2]), key, tg_serve_field(&f[3]),
                             tg_serve_field(&f[4]));
    }
}


/* Refuse <r> for authentication result <rc> (TG_AUTH_*). */
static void
tg_serve_auth_refuse(tg_request_t *r, int rc)
{
    char msg[128];

    if (rc == TG_AUTH_BUSY) {
        (void)tg_serve_fail(r, TG_END_REFUSED, 503, "overloaded_error", NULL,
                            tg_auth_message(rc), "retry-after: 1\r\n");
    } else if (rc == TG_AUTH_USER_DISABLED || rc == TG_AUTH_MODEL) {
        if (rc == TG_AUTH_MODEL) {
            snprintf(msg, sizeof(msg), "this API key may not use model \"%s\"",
                     r->model[0] ? r->model : "(none)");
        }
        (void)tg_serve_fail(
            r, TG_END_REFUSED, 403,
            r->api == TG_API_OPENAI ? "permission_denied" : "permission_error",
            "permission_denied",
            rc == TG_AUTH_MODEL ? msg : tg_auth_message(rc), NULL);
    } else {
        (void)tg_serve_fail(r, TG_END_REFUSED, 401,
                            r->api == TG_API_OPENAI ? "invalid_request_error"
                                                    : "authentication_error",
                            "invalid_api_key", tg_auth_message(rc), NULL);
    }
}


/*
 * Route a parsed head: pick the route and API shape, authenticate.
 * Returns TG_OK to go on reading the body, or TG_DONE after ending <r>.
 */
static int
tg_serve_route(tg_request_t *r)
{
    static const struct {
        const char *path;
        int method;
        int route;
        int api;
    } routes[] = {
        {"/v1/messages", TG_HTTP_POST, TG_ROUTE_MESSAGES, TG_API_ANTHROPIC},
        {"/v1/messages/count_tokens", TG_HTTP_POST, TG_ROUTE_COUNT_TOKENS,
         TG_API_ANTHROPIC},
        {"/v1/chat/completions", TG_HTTP_POST, TG_ROUTE_CHAT, TG_API_OPENAI},
        {"/v1/responses", TG_HTTP_POST, TG_ROUTE_RESPONSES, TG_API_OPENAI},
        {"/v1/models", TG_HTTP_GET, TG_ROUTE_MODELS, TG_API_ANTHROPIC},
        {"/healthz", TG_HTTP_GET, TG_ROUTE_HEALTH, TG_API_ANTHROPIC},
    };
    const tg_http_req_t *h = &r->head;
    tg_auth_t a;
    size_t i;
    int rc;

    r->api =
        ((h->path.len >= 8 && memcmp(h->path.data, "/v1/chat", 8) == 0) ||
         (h->path.len >= 13 && memcmp(h->path.data, "/v1/responses", 13) == 0))
            ? TG_API_OPENAI
            : TG_API_ANTHROPIC;
    for (i = 0; i < TG_NELEMS(routes); i++) {
        if (tg_str_eq(h->path,
                      (tg_str_t){routes[i].path, strlen(routes[i].path)})) {
            break;
        }
    }
    if (i == TG_NELEMS(routes)) {
        (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 404, "not_found_error",
                            "not_found", "no such route", NULL);
        return TG_DONE;
    }
    r->route = routes[i].route;
    r->api = routes[i].api;
    if (h->method != routes[i].method) {
        (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 405, "invalid_request_error",
                            NULL, "method not allowed on this route",
                            routes[i].method == TG_HTTP_GET
                                ? "allow: GET\r\n"
                                : "allow: POST\r\n");
        return TG_DONE;
    }
    if (r->route == TG_ROUTE_HEALTH) {
        return TG_OK;
    }
    rc = tg_auth_key(r->w->shm, h, &a);
    if (a.found) {
        r->have_key = true;
        r->key = a.key;
        r->key_slot = a.slot;
    }
    if (rc != TG_AUTH_OK) {
        tg_serve_auth_refuse(r, rc);
        return TG_DONE;
    }
    return TG_OK;
}


/* A complete head was parsed: route it and set up body reading.  TG_OK,
 * or TG_DONE after ending <r>. */
static int
tg_serve_head_done(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    const tg_conf_t *conf = r->w->conf;
    tg_http_req_t *h = &r->head;

    r->keep_alive = h->keep_alive;
    if (tg_serve_route(r) != TG_OK) {
        return TG_DONE;
    }
    if (h->content_length > 0 &&
        (uint64_t)h->content_length > conf->body_bytes) {
        r->close_after = true;
        (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 413, "request_too_large",
                            NULL, "request body is too large", NULL);
        return TG_DONE;
    }
    r->body_len = h->content_length > 0 ? (size_t)h->content_length : 0;
    r->req_end = h->head_len + r->body_len;
    r->raw_pos = h->head_len;
    if (h->chunked) {
        r->body_len = 0;
        tg_http_chunked_init(&r->chunked);
    }
    if (h->expect_continue && (h->chunked || h->content_length > 0) &&
        c->in.last == h->head_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        /* Best effort: the socket buffer is empty at this point of a
         * request, and a client that misses it sends the body anyway
         * after its own timeout. */
        if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) < 0) {
            tg_log(TG_LOG_DEBUG, errno, "send(100-continue) failed");
        }
    }
    r->phase = TG_REQ_BODY;
    return TG_OK;
}


/* Whether the request body has fully arrived; decodes chunked input in
 * place.  TG_OK (complete), TG_AGAIN, TG_DONE (ended). */
static int
tg_serve_body_step(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    const tg_conf_t *conf = r->w->conf;
    size_t used, out_len;
    tg_err_t err;
    int rc;

    if (!r->head.chunked) {
        return c->in.last >= r->req_end ? TG_OK : TG_AGAIN;
    }
    for (;;) {
        if (r->raw_pos >= c->in.last) {
            return TG_AGAIN;
        }
        rc = tg_http_chunked_decode(&r->chunked, c->in.data + r->raw_pos,
                                    c->in.last - r->raw_pos, &used, &out_len,
                                    &err);
        if (rc == TG_ERROR) {
            /* The framing is lost: the rest of the input cannot be trusted. */
            r->close_after = true;
            (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 400,
                                "invalid_request_error", NULL, err.text, NULL);
            return TG_DONE;
        }
        if (out_len > 0) {
            memmove(c->in.data + r->head.head_len + r->body_len,
                    c->in.data + r->raw_pos, out_len);
            r->body_len += out_len;
        }
        r->raw_pos += used;
        if (r->body_len > conf->body_bytes) {
            r->close_after = true;
            (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 413, "request_too_large",
                                NULL, "request body is too large", NULL);
            return TG_DONE;
        }
        if (rc == TG_OK) {
            r->req_end = r->raw_pos;
            return TG_OK;
        }
        if (used == 0) {
            return TG_AGAIN;
        }
    }
}


/*
 * POST /v1/responses is passed only to OpenAI-style endpoints: it is not
 * translated to the Anthropic Messages API (docs/translation.md).  When
 * the key's group has none, answer 404 naming the group, before any limit
 * counts the request.  TG_OK to go on, TG_DONE after ending <r>.
 */
static int
tg_serve_responses_check(tg_request_t *r)
{
    const tg_conf_t *conf = r->w->conf;
    uint32_t g = r->key.group < conf->ngroups ? r->key.group : 0;
    char msg[256];

    if (r->route != TG_ROUTE_RESPONSES ||
        tg_route_group_has_style(conf, g, TG_STYLE_OPENAI)) {
        return TG_OK;
    }
    snprintf(msg, sizeof(msg),
             "endpoint group \"%s\" has no OpenAI-style endpoint; "
             "/v1/responses is served only by OpenAI-style endpoints "
             "(it is not translated to the Anthropic Messages API)",
             conf->groups[g].name);
    (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 404, "invalid_request_error",
                        "unsupported_route", msg, NULL);
    return TG_DONE;
}


/* The request is complete: answer locally, or check the model and the
 * limits and start the upstream exchange. */
static void
tg_serve_dispatch(tg_request_t *r)
{
    tg_worker_t *w = r->w;
    tg_limit_refusal_t why;
    tg_limit_ask_t ask;
    char hdr[64];
    int rc;

    if (r->route == TG_ROUTE_HEALTH || r->route == TG_ROUTE_MODELS) {
        size_t mlen = 0;
        const char *models = r->route == TG_ROUTE_MODELS
                                 ? tg_route_models(w, r->key.group, &mlen)
                                 : NULL;

        rc = r->route == TG_ROUTE_HEALTH
                 ? tg_request_respond(r, 200, "application/json",
                                      "{\"status\":\"ok\"}", 15, NULL)
                 : tg_request_respond(r, 200, "application/json", models, mlen,
                                      NULL);
        (void)tg_request_end(r, rc == TG_OK ? TG_END_OK : TG_END_INTERNAL,
                             NULL);
        return;
    }
    tg_epconf_refresh(w);
    tg_serve_scan_body(r);
    rc = tg_auth_model(w->shm, &r->key, r->model);
    if (rc != TG_AUTH_OK) {
        tg_serve_auth_refuse(r, rc);
        return;
    }
    if (tg_serve_responses_check(r) != TG_OK) {
        return;
    }
    ask = (tg_limit_ask_t){tg_request_body(r), r->body_len, r->model};
    if (tg_limit_admit(w, &r->key, r->key_slot, &ask, &r->lease, &why) !=
        TG_OK) {
        snprintf(
            hdr, sizeof(hdr), "retry-after: %llu\r\n",
            (unsigned long long)TG_MAX((why.retry_us + 999999) / 1000000, 1));
        r->refusal = why.reason;
        (void)tg_serve_fail(r, TG_END_REFUSED, 429, "rate_limit_error",
                            "rate_limit_exceeded", why.msg, hdr);
        return;
    }
    tg_request_track(r);
    tg_proxy_start(r);
}


/* Read once; TG_OK when bytes came, else TG_AGAIN or TG_DONE (ended). */
static int
tg_serve_read(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    size_t want = TG_SERVE_READ_CHUNK;
    int rc;

    if (r->phase == TG_REQ_BODY && r->head.content_length >= 0 &&
        r->req_end > c->in.last) {
        /* Reserve the whole body in one go: one realloc, not log2. */
        want = TG_MAX(want, r->req_end - c->in.last);
    }
    rc = tg_conn_read(c, want);
    switch (rc) {
    case TG_OK:
    case TG_AGAIN:
        return rc;
    case TG_DECLINED:
        if (r->phase == TG_REQ_BODY) {
            r->close_after = true;
            (void)tg_serve_fail(r, TG_END_BAD_REQUEST, 413, "request_too_large",
                                NULL, "request body is too large", NULL);
            return TG_DONE;
        }
        /* The head parser reports its own bound (431). */
        return TG_AGAIN;
    case TG_ERROR:
        if (errno == ENOMEM) {
            r->close_after = true;
            (void)tg_serve_fail(r, TG_END_INTERNAL, 503, "overloaded_error",
                                NULL, "out of memory", NULL);
            return TG_DONE;
        }
        /* fall through */
    default:
        if (r->phase == TG_REQ_HEAD && c->in.last == 0) {
            /* The client left before sending anything: no request. */
            r->phase = TG_REQ_IDLE;
        }
        tg_request_close(r, TG_END_CLIENT_GONE);
        return TG_DONE;
    }
}


/* Parse the head from c->in; TG_OK (parsed and routed), TG_AGAIN or
 * TG_DONE (ended). */
static int
tg_serve_head(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    const tg_conf_t *conf = r->w->conf;
    tg_err_t err;
    int rc;

    if (c->in.last == 0) {
        return TG_AGAIN;
    }
    if (r->phase == TG_REQ_IDLE) {
        tg_request_begin(r);
        tg_ev_timer_add(r->w->loop, &c->timer, conf->header_timeout_ms);
    }
    rc = tg_http_parse_request(&r->head, c->in.data, c->in.last,
                               conf->header_bytes, &err);
    if (rc == TG_AGAIN) {
        return TG_AGAIN;
    }
    if (rc == TG_ERROR) {
        char text[sizeof(err.text) + 32];

        /* A head past the limit is refused, never cut: say which limit. */
        snprintf(text, sizeof(text), "%s%s", err.text,
                 err.code == 431 ? " (limits.header_bytes)" : "");
        r->close_after = true;
        (void)tg_serve_fail(r, TG_END_BAD_REQUEST, err.code,
                            err.code == 413 ? "request_too_large"
                                            : "invalid_request_error",
                            NULL, text, NULL);
        return TG_DONE;
    }
    if (tg_serve_head_done(r) != TG_OK) {
        return TG_DONE;
    }
    tg_ev_timer_add(r->w->loop, &c->timer, conf->body_timeout_ms);
    return TG_OK;
}


/* Drive the request as far as the input allows. */
static void
tg_serve_process(tg_request_t *r)
{
    tg_conn_t *c = r->c;
    const tg_conf_t *conf = r->w->conf;
    tg_err_t err;
    bool got = false;
    int rc;

    rc = tg_serve_read(r);
    if (rc == TG_DONE) {
        return;
    }
    got = rc == TG_OK;
    if (r->phase == TG_REQ_IDLE || r->phase == TG_REQ_HEAD) {
        rc = tg_serve_head(r);
        if (rc != TG_OK) {
            return;
        }
    } else if (got) {
        tg_ev_timer_add(r->w->loop, &c->timer, conf->body_timeout_ms);
    }
    if (tg_serve_body_step(r) != TG_OK) {
        return;
    }
    r->body_done = true;
    tg_ev_timer_del(r->w->loop, &c->timer);
    /* Growing c->in may have moved the head: parse it again so every
     * string in r->head points into the current block. */
    rc = tg_http_parse_request(&r->head, c->in.data, c->in.last,
                               conf->header_bytes, &err);
    TG_ASSERT(rc == TG_OK);
    if (r->head.chunked) {
        r->head.content_length = (int64_t)r->body_len;
    }
    /* Pipelined bytes wait in the kernel until this response is done.
     * EPOLLIN stays armed (two epoll_ctl calls per request saved); the
     * handler turns it off only if such bytes actually arrive. */
    tg_serve_dispatch(r);
}
