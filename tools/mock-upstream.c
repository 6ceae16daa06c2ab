/*
 * tools/mock-upstream.c
 *      A fast, faithful mock of the upstream model APIs (Anthropic Messages
 *      and OpenAI Chat Completions) for the integration tests and the
 *      benchmark.  Usage and formulas: docs/mock-upstream.md.
 *
 * NOTES
 *      One epoll loop (core/ev) per process.  "-w N" binds N SO_REUSEPORT
 *      sockets to the same port before forking N worker processes, each of
 *      which owns one socket; the parent only forwards TERM/INT and reaps.
 *      Workers get TERM/INT through a signalfd in their loop.
 *
 *      A request head is parsed with core/http into one scratch struct, and
 *      the few fields the mock needs are copied into the connection; the
 *      JSON body is read with jansson, reduced to a handful of flags and
 *      numbers, and dropped before answering.  Nothing points into the
 *      input buffer across loop rounds, so the buffer may move freely.
 *
 *      Non-stream bodies are formatted straight into the output buffer
 *      behind TG_MOCK_HEADROOM reserved bytes; the head is written into the
 *      headroom last, once the body length is known (one pass, no copy of
 *      the body).  Streams are produced one event at a time, each event its
 *      own write(2); the next event is produced only once the previous one
 *      has left the buffer, so a slow reader costs one event of memory and
 *      back-pressure comes from EPOLLOUT.  Delays use loop timers, never
 *      sleep.
 *
 *      The global fault and the counters live in a small MAP_SHARED region
 *      mapped before the fork, so POST /_mock/fault and GET /_mock/stats
 *      act on all workers alike.  The fault text is published under a
 *      seqlock (writers serialise on a spin flag; readers retry); each
 *      worker re-parses it only when the sequence number moved.  Counters
 *      are relaxed atomics.
 *
 *      Compression (x-mock-encoding / --encoding, tools/mock-encode.c):
 *      a non-stream body is compressed in place once it is built; a stream
 *      gets one encoder flushed after every event, so each chunk on the
 *      wire holds exactly one event's compressed bytes.
 *
 *      Every helper is static and uses the tg_mock_ prefix; a function
 *      that may close the connection returns TG_DONE after doing so, and
 *      its caller must not touch the connection again.
 *
 *      The mock is split along these phases: this file (process,
 *      connections, reading and dispatching requests), tools/mock-fault.c
 *      (fault specs, the shared fault and counters, the ledger) and
 *      tools/mock-respond.c (output, streams, the API shapes); their
 *      shared types and internal interface are in tools/mock.h.
 */
#include "tools/mock.h"

static int tg_mock_process(tg_mock_conn_t *c);
static int tg_mock_answer_out(tg_mock_conn_t *c);

/* ---------------------------------------------------------------- utils */

static bool
tg_mock_lit_caseeq(tg_str_t s, const char *lit)
{
    tg_str_t l = {lit, strlen(lit)};

    return tg_str_caseeq(s, l);
}

static void
tg_mock_make_ids(tg_mock_req_t *r)
{
    unsigned long long n = ++tg_mock_seq;
    unsigned p = tg_mock_pid & 0xffffff;

    snprintf(r->id, sizeof(r->id), "req_mock%06x%012llx", p, n);
    if (r->path == TG_MOCK_P_RESPONSES) {
        snprintf(r->mid, sizeof(r->mid), "resp_mock%06x%012llx", p, n);
    } else if (r->openai) {
        snprintf(r->mid, sizeof(r->mid), "chatcmpl-mock%06x%012llx", p, n);
    } else {
        snprintf(r->mid, sizeof(r->mid), "msg_mock%06x%012llx", p, n);
    }
}

/* ---------------------------------------------------------- connections */

static void
tg_mock_conn_mask(tg_mock_conn_t *c, bool want_out)
{
    uint32_t mask =
        (c->in_paused ? 0 : TG_EV_READ) | (want_out ? TG_EV_WRITE : 0);

    (void)tg_ev_mod(tg_mock_loop, c->fd, mask);
}

/* Finish the current request: ledger, counters, state reset. */
static void
tg_mock_req_finish(tg_mock_conn_t *c, bool completed)
{
    if (c->r.counted) {
        tg_mock_ledger(&c->r, completed);
    }
    tg_ev_timer_del(tg_mock_loop, &c->step);
    tg_mock_enc_destroy(c->r.encoder);
    memset(&c->r, 0, sizeof(c->r));
}

/* Close <c>; <rst> makes the close abortive (SO_LINGER 0 sends RST).  A
 * request still owed is finished as not completed. */
void
tg_mock_conn_close(tg_mock_conn_t *c, bool rst)
{
    if (c->r.dispatched) {
        tg_mock_req_finish(c, false);
    }
    tg_mock_enc_destroy(c->r.encoder);
    c->r.encoder = NULL;
    if (rst) {
        struct linger l = {1, 0};

        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    tg_ev_del(tg_mock_loop, c->fd);
    close(c->fd);
    tg_ev_timer_del(tg_mock_loop, &c->idle);
    tg_ev_timer_del(tg_mock_loop, &c->step);
    tg_buf_fini(&c->in);
    tg_buf_fini(&c->out);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        tg_mock_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    atomic_fetch_sub_explicit(&tg_mock_shm->cnt[TG_MOCK_C_ACTIVE], 1,
                              memory_order_relaxed);
    free(c);
}

/*
 * Write out c->out.  TG_OK when empty, TG_AGAIN when the socket is full
 * (EPOLLOUT armed), TG_DONE when the peer is gone (closed).
 */
static int
tg_mock_flush(tg_mock_conn_t *c)
{
    size_t len;
    ssize_t n;

    while ((len = tg_buf_len(&c->out)) > 0) {
        n = send(c->fd, c->out.data + c->out.pos, len, MSG_NOSIGNAL);
        if (n > 0) {
            tg_buf_consume(&c->out, (size_t)n);
            c->last_active = tg_ev_now(tg_mock_loop);
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!(tg_ev_mask(tg_mock_loop, c->fd) & TG_EV_WRITE)) {
                tg_mock_conn_mask(c, true);
            }
            return TG_AGAIN;
        }
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    if (tg_ev_mask(tg_mock_loop, c->fd) & TG_EV_WRITE) {
        tg_mock_conn_mask(c, false);
    }
    if (c->out.cap > TG_MOCK_OUT_KEEP) {
        tg_buf_reset(&c->out, TG_MOCK_OUT_KEEP);
    }
    return TG_OK;
}

/* The response went out: finish the request and keep the connection for
 * the next one, or close it.  TG_OK or TG_DONE. */
static int
tg_mock_req_done(tg_mock_conn_t *c)
{
    bool keep = c->r.keep_alive && !c->r.close_after;

    tg_mock_req_finish(c, true);
    if (!keep) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    c->state = TG_MOCK_S_HEAD;
    if (c->in_paused) {
        c->in_paused = false;
        tg_mock_conn_mask(c, false);
    }
    if (tg_buf_len(&c->in) == 0) {
        tg_buf_reset(&c->in, TG_MOCK_IN_KEEP);
    }
    return TG_OK;
}

/* ----------------------------------------------------------- request body */

/*
 * Whether the answer calls a tool: the request offers tools (the name of
 * the first one is kept) and its last message is not a tool result
 * (OpenAI role "tool", a Responses "input" item of type
 * function_call_output, or an Anthropic user message holding a
 * tool_result block), so an agent loop gets one call and then a text
 * answer.
 */
static void
tg_mock_req_tool(tg_mock_req_t *r, json_t *root)
{
    json_t *t0 = json_array_get(json_object_get(root, "tools"), 0), *b;
    json_t *msgs = json_object_get(
        root, r->path == TG_MOCK_P_RESPONSES ? "input" : "messages");
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    json_t *name = json_object_get(t0, "name");
    const char *role = json_string_value(json_object_get(last, "role"));
    const char *ltype = json_string_value(json_object_get(last, "type"));
    size_t i;

    r->tool[0] = '\0';
    if (!json_is_string(name)) {
        name = json_object_get(json_object_get(t0, "function"), "name");
    }
    if (!json_is_string(name) || json_string_length(name) > TG_MOCK_MODEL_MAX ||
        (role != NULL && strcmp(role, "tool") == 0) ||
        (ltype != NULL && strcmp(ltype, "function_call_output") == 0)) {
        return;
    }
    json_array_foreach(json_object_get(last, "content"), i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));

        if (type != NULL && strcmp(type, "tool_result") == 0) {
            return;
        }
    }
    tg_json_escape(r->tool, sizeof(r->tool), json_string_value(name),
                   json_string_length(name));
}


/* Reduce the JSON body at <body> to the fields the mock answers from, and
 * compute the token counts (see docs/mock-upstream.md). */
static void
tg_mock_req_parse_body(tg_mock_req_t *r, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root, *v;
    size_t n;

    r->cache =
        len > 0 && (memmem(body, len, "\"cache_control\"", 15) != NULL ||
                    (r->path == TG_MOCK_P_RESPONSES &&
                     memmem(body, len, "\"prompt_cache_key\"", 18) != NULL));
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        tg_json_escape(r->json_err, sizeof(r->json_err), jerr.text,
                       strlen(jerr.text));
        return;
    }
    if (!json_is_object(root)) {
        snprintf(r->json_err, sizeof(r->json_err),
                 "request body must be a JSON object");
        goto done;
    }
    r->json_ok = true;
    v = json_object_get(root, "model");
    if (json_is_string(v) && json_string_length(v) <= TG_MOCK_MODEL_MAX) {
        r->has_model = true;
        tg_json_escape(r->model, sizeof(r->model), json_string_value(v),
                       json_string_length(v));
    }
    r->has_max_tokens = json_is_integer(json_object_get(root, "max_tokens"));
    /* The Responses API's "input" (a string or an array of items) stands
     * for "messages". */
    v = json_object_get(root,
                        r->path == TG_MOCK_P_RESPONSES ? "input" : "messages");
    if (json_is_array(v) ||
        (r->path == TG_MOCK_P_RESPONSES && json_is_string(v))) {
        r->has_messages = true;
        n = json_dumpb(v, NULL, 0,
                       JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        r->in_tok = (uint32_t)((n + 3) / 4 + 1);
    }
    r->stream = json_is_true(json_object_get(root, "stream"));
    v = json_object_get(root, "stream_options");
    r->include_usage = json_is_true(json_object_get(v, "include_usage"));
    r->out_tok = 2 * r->chunks;
    r->reasoning = r->path == TG_MOCK_P_RESPONSES ? r->out_tok / 4 : 0;
    tg_mock_req_tool(r, root);
    if (r->cache) {
        r->cache_read = r->in_tok / 2;
        r->cache_create = r->openai ? 0 : r->in_tok / 4;
    }

done:
    json_decref(root);
}

/* -------------------------------------------------------------- requests */

static int
tg_mock_route(tg_str_t path)
{
    if (tg_mock_lit_eq(path, "/v1/messages")) {
        return TG_MOCK_P_MESSAGES;
    }
    if (tg_mock_lit_eq(path, "/v1/chat/completions")) {
        return TG_MOCK_P_CHAT;
    }
    if (tg_mock_lit_eq(path, "/v1/responses")) {
        return TG_MOCK_P_RESPONSES;
    }
    if (tg_mock_lit_eq(path, "/v1/messages/count_tokens")) {
        return TG_MOCK_P_COUNT_TOKENS;
    }
    if (tg_mock_lit_eq(path, "/v1/models")) {
        return TG_MOCK_P_MODELS;
    }
    if (tg_mock_lit_eq(path, "/healthz")) {
        return TG_MOCK_P_HEALTHZ;
    }
    if (tg_mock_lit_eq(path, "/_mock/fault")) {
        return TG_MOCK_P_FAULT;
    }
    if (tg_mock_lit_eq(path, "/_mock/stats")) {
        return TG_MOCK_P_STATS;
    }
    if (tg_mock_lit_eq(path, "/_mock/reset")) {
        return TG_MOCK_P_RESET;
    }
    return TG_MOCK_P_OTHER;
}

/* Whether accept-encoding parameters <p> of <len> bytes hold "q=0",
 * "q=0.0", ...: the coding is refused. */
static bool
tg_mock_q_zero(const char *p, size_t len)
{
    const char *q = memmem(p, len, "q=", 2);
    size_t i;

    if (q == NULL) {
        return false;
    }
    i = (size_t)(q - p) + 2;
    if (i >= len || p[i] != '0') {
        return false;
    }
    for (i++; i < len && p[i] != ' ' && p[i] != ';'; i++) {
        if (p[i] != '.' && p[i] != '0') {
            return false;
        }
    }
    return true;
}

/* Bits (1 << TG_MOCK_ENC_*) of the encodings whose coding an
 * accept-encoding value <v> lists with a q-value above zero. */
static unsigned
tg_mock_accepts(tg_str_t v)
{
    unsigned bits = 0;
    size_t i = 0, start, end;
    int enc;

    while (i < v.len) {
        while (i < v.len && (v.data[i] == ' ' || v.data[i] == ',')) {
            i++;
        }
        start = i;
        while (i < v.len && v.data[i] != ',' && v.data[i] != ';' &&
               v.data[i] != ' ') {
            i++;
        }
        end = i;
        while (i < v.len && v.data[i] != ',') {
            i++;
        }
        if (tg_mock_q_zero(v.data + end, i - end)) {
            continue;
        }
        for (enc = TG_MOCK_ENC_NONE + 1; enc < TG_MOCK_ENC_N; enc++) {
            const char *coding = tg_mock_enc_coding(enc);

            if (tg_str_caseeq((tg_str_t){v.data + start, end - start},
                              (tg_str_t){coding, strlen(coding)})) {
                bits |= 1u << enc;
            }
        }
    }
    return bits;
}

static void
tg_mock_req_header(tg_mock_req_t *r, tg_str_t name, tg_str_t v)
{
    tg_str_t key = {tg_mock_conf.require_key, tg_mock_conf.require_key_len};
    uint64_t n;
    char err[128];

    if (tg_mock_lit_caseeq(name, "x-api-key")) {
        r->has_key = v.len > 0;
        r->key_ok = r->has_key && (key.data == NULL || tg_str_eq(v, key));
    } else if (tg_mock_lit_caseeq(name, "anthropic-version")) {
        r->has_version = v.len > 0;
    } else if (tg_mock_lit_caseeq(name, "authorization")) {
        if (v.len > 7 && tg_mock_lit_caseeq((tg_str_t){v.data, 7}, "bearer ")) {
            tg_str_t tok = {v.data + 7, v.len - 7};

            r->has_bearer = true;
            r->bearer_ok = key.data == NULL || tg_str_eq(tok, key);
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-chunks")) {
        if (tg_mock_parse_uint(v.data, v.len, TG_MOCK_CHUNKS_MAX, &n)) {
            r->chunks = (uint32_t)n;
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-delay-ms")) {
        if (tg_mock_parse_uint(v.data, v.len, TG_MOCK_DELAY_MAX, &n)) {
            r->delay_ms = (uint32_t)n;
        }
    } else if (tg_mock_lit_caseeq(name, "x-mock-fault")) {
        r->hdr_fault = true;
        r->hdr_fault_bad = tg_mock_fault_parse(&r->fault, v.data, v.len, err,
                                               sizeof(err)) != TG_OK;
    } else if (tg_mock_lit_caseeq(name, "x-mock-encoding")) {
        /* A trailing "!" compresses whatever the client accepts, as some
         * servers and relays do.  An unknown name asks for none. */
        if (v.len > 0 && v.data[v.len - 1] == '!') {
            r->enc_force = true;
            v.len--;
        }
        r->enc_want = TG_MAX(tg_mock_enc_parse(v), TG_MOCK_ENC_NONE);
    } else if (tg_mock_lit_caseeq(name, "accept-encoding")) {
        r->accepts |= tg_mock_accepts(v);
    }
}

/* Copy what the mock needs from the parsed head <h> into c->r. */
static void
tg_mock_req_init(tg_mock_conn_t *c, const tg_http_req_t *h)
{
    tg_mock_req_t *r = &c->r;
    size_t i, n;

    r->path = tg_mock_route(h->path);
    r->method = h->method;
    r->keep_alive = h->keep_alive;
    r->http11 = h->version == 11;
    r->content_length = h->content_length;
    r->chunked_in = h->chunked;
    r->chunks = tg_mock_conf.chunks;
    r->delay_ms = tg_mock_conf.delay_ms;
    r->enc_want = -1;
    r->openai = r->path == TG_MOCK_P_CHAT || r->path == TG_MOCK_P_RESPONSES;
    n = TG_MIN(h->path.len, (size_t)TG_MOCK_PATH_COPY);
    memcpy(r->path_text, h->path.data, n);
    r->path_text[n] = '\0';
    for (i = 0; i < h->nheaders; i++) {
        tg_mock_req_header(r, h->headers[i].name, h->headers[i].value);
    }
    if (r->path == TG_MOCK_P_OTHER && r->has_bearer && !r->has_key) {
        r->openai = true;
    }
    /* Compress only what the client said it can take, like a server. */
    r->enc = r->enc_want >= 0 ? r->enc_want : tg_mock_conf.encoding;
    if (!r->enc_force && !(r->accepts & (1u << r->enc))) {
        r->enc = TG_MOCK_ENC_NONE;
    }
    if (r->chunked_in) {
        tg_http_chunked_init(&r->ch);
    }
    tg_mock_make_ids(r);
}

/* Fail a request that cannot be read: answer <status> and close. */
static int
tg_mock_reject(tg_mock_conn_t *c, int status, const char *msg)
{
    c->r.close_after = true;
    c->r.dispatched = false;
    if (c->r.id[0] == '\0') {
        tg_mock_make_ids(&c->r);
    }
    if (tg_mock_error_anthropic(c, status,
                                status == 413 ? "request_too_large"
                                              : "invalid_request_error",
                                msg, "", "") != TG_OK) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    return tg_mock_conn_drive(c);
}

/* Parse a request head at the front of c->in.  TG_OK: moved to BODY;
 * TG_AGAIN: incomplete; TG_DONE: rejected and closed or answered. */
static int
tg_mock_parse_head(tg_mock_conn_t *c)
{
    tg_http_req_t *h = &tg_mock_hreq;
    tg_err_t err;
    ssize_t n;
    int rc;

    if (tg_buf_len(&c->in) == 0) {
        return TG_AGAIN;
    }
    rc = tg_http_parse_request(h, c->in.data + c->in.pos, tg_buf_len(&c->in),
                               TG_MOCK_HEAD_MAX, &err);
    if (rc == TG_AGAIN) {
        return TG_AGAIN;
    }
    if (rc != TG_OK) {
        char msg[sizeof(err.text) * 6];

        tg_json_escape(msg, sizeof(msg), err.text, strlen(err.text));
        rc = tg_mock_reject(c, err.code, msg);
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    tg_mock_req_init(c, h);
    tg_buf_consume(&c->in, h->head_len);
    if (c->r.content_length > TG_MOCK_BODY_MAX) {
        rc = tg_mock_reject(c, 413,
                            "Request exceeds the maximum allowed number of "
                            "bytes.");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    if (c->r.content_length > 0 &&
        tg_buf_reserve(&c->in, (size_t)c->r.content_length) == TG_ERROR) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    c->state = TG_MOCK_S_BODY;
    if (h->expect_continue &&
        (c->r.chunked_in ||
         tg_buf_len(&c->in) < (size_t)TG_MAX(c->r.content_length, 0))) {
        /* 25 bytes on a socket that has just delivered a request always
         * fit; if they do not, the client is not reading at all. */
        n = send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
        if (n != 25) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
    }
    return TG_OK;
}

/* See whether the body is complete.  TG_OK, TG_AGAIN, or TG_DONE. */
static int
tg_mock_read_body(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    size_t avail, used = 0, out = 0;
    tg_err_t err;
    char *p;
    int rc;

    if (!r->chunked_in) {
        r->body_len = (size_t)TG_MAX(r->content_length, 0);
        return tg_buf_len(&c->in) >= r->body_len ? TG_OK : TG_AGAIN;
    }
    p = c->in.data + c->in.pos + r->body_len;
    avail = tg_buf_len(&c->in) - r->body_len;
    if (avail == 0) {
        return TG_AGAIN;
    }
    rc = tg_http_chunked_decode(&r->ch, p, avail, &used, &out, &err);
    memmove(p + out, p + used, avail - used);
    c->in.last -= used - out;
    r->body_len += out;
    if (rc == TG_ERROR) {
        rc = tg_mock_reject(c, 400, "malformed chunked request body");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    if (r->body_len > TG_MOCK_BODY_MAX) {
        rc = tg_mock_reject(c, 413,
                            "Request exceeds the maximum allowed number of "
                            "bytes.");
        return rc == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    return rc;
}

/*
 * The request in c->r with its body at the front of c->in is complete:
 * consume it and answer.  Returns what the answer path returns (TG_OK
 * with the request finished, TG_AGAIN while the answer is under way,
 * TG_DONE when the connection is gone).
 */
static int
tg_mock_dispatch(tg_mock_conn_t *c)
{
    tg_mock_req_t *r = &c->r;
    const char *body = c->in.data + c->in.pos;
    int rc;

    r->dispatched = true;
    if (r->path >= TG_MOCK_P_HEALTHZ) {
        rc = tg_mock_answer_local(c, body, r->body_len);
        tg_buf_consume(&c->in, r->body_len);
        if (rc != TG_OK) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
        return tg_mock_conn_drive(c);
    }
    r->counted = true;
    if (r->method == TG_HTTP_POST) {
        tg_mock_req_parse_body(r, body, r->body_len);
    }
    tg_buf_consume(&c->in, r->body_len);
    tg_mock_cnt_add(TG_MOCK_C_REQUESTS, 1);
    tg_mock_cnt_add(TG_MOCK_C_PATH + r->path, 1);
    if (r->hdr_fault_bad) {
        memset(&r->fault, 0, sizeof(r->fault));
        r->fault.status = 400;
        r->fault.retry_after = -1;
    } else if (!r->hdr_fault && !tg_mock_fault_take(&r->fault)) {
        memset(&r->fault, 0, sizeof(r->fault));
        r->fault.retry_after = -1;
    }
    tg_mock_fault_count(&r->fault);
    c->served++;
    if (r->fault.close_reused && c->served > 1) {
        /* A keep-alive connection the server drops as the next request
         * arrives: closed cleanly, no answer. */
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    if (r->fault.garbage) {
        static const char junk[] = "\x16\x03\x01 this is not HTTP at all\r\n"
                                   "\x00\xff\xfe garbage\r\n\r\n";

        (void)write(c->fd, junk, sizeof(junk) - 1);
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    if (r->fault.reset_before) {
        tg_mock_conn_close(c, true);
        return TG_DONE;
    }
    if (r->fault.hang) {
        c->state = TG_MOCK_S_HANG;
        return TG_AGAIN;
    }
    if (r->fault.huge_head) {
        if (tg_mock_huge_head(c) != TG_OK) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
        return tg_mock_conn_drive(c) == TG_DONE ? TG_DONE : TG_AGAIN;
    }
    if (r->fault.slow_ms > 0) {
        c->state = TG_MOCK_S_WAIT;
        tg_ev_timer_add(tg_mock_loop, &c->step, r->fault.slow_ms);
        return TG_AGAIN;
    }
    return tg_mock_answer_out(c);
}

/* Handle every complete request in c->in.  TG_OK or TG_DONE. */
static int
tg_mock_process(tg_mock_conn_t *c)
{
    int rc;

    while (c->state == TG_MOCK_S_HEAD || c->state == TG_MOCK_S_BODY) {
        if (c->state == TG_MOCK_S_HEAD) {
            rc = tg_mock_parse_head(c);
        } else {
            rc = tg_mock_read_body(c);
            if (rc == TG_OK) {
                rc = tg_mock_dispatch(c);
                if (rc == TG_AGAIN) {
                    rc = TG_OK; /* answer under way; state moved on */
                }
            }
        }
        if (rc == TG_DONE) {
            return TG_DONE;
        }
        if (rc == TG_AGAIN) {
            return TG_OK;
        }
    }
    return TG_OK;
}

/*
 * Push output and advance the response: more stream events, the end of
 * the request, or a reset.  TG_OK (idle or request finished), TG_AGAIN
 * (waiting for EPOLLOUT or a timer), TG_DONE (closed).
 */
int
tg_mock_conn_drive(tg_mock_conn_t *c)
{
    int rc;

    for (;;) {
        rc = tg_mock_flush(c);
        if (rc != TG_OK) {
            return rc;
        }
        if (c->r.rst_after_flush) {
            tg_mock_conn_close(c, true);
            return TG_DONE;
        }
        if (c->state == TG_MOCK_S_WRITE) {
            return tg_mock_req_done(c);
        }
        if (c->state != TG_MOCK_S_STREAM) {
            return TG_OK;
        }
        rc = tg_mock_stream_next(c);
        if (rc == TG_AGAIN) {
            return TG_AGAIN;
        }
        if (rc != TG_OK) {
            tg_log(TG_LOG_WARN, 0, "stream event does not fit; closing fd %d",
                   c->fd);
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
    }
}

/* Buffer the answer of <c>'s request (tools/mock-respond.c) and drive
 * it out.  Same returns as tg_mock_conn_drive. */
static int
tg_mock_answer_out(tg_mock_conn_t *c)
{
    if (tg_mock_answer(c) != TG_OK) {
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
    return tg_mock_conn_drive(c);
}


/* Drive the response, then serve requests pipelined behind it. */
static int
tg_mock_conn_run(tg_mock_conn_t *c)
{
    int rc = tg_mock_conn_drive(c);

    if (rc == TG_DONE) {
        return TG_DONE;
    }
    if (c->state == TG_MOCK_S_HEAD && tg_buf_len(&c->in) > 0) {
        return tg_mock_process(c);
    }
    return rc;
}

/* ---------------------------------------------------------- event handlers */

/* Read what is there.  TG_OK, or TG_DONE when the connection closed. */
static int
tg_mock_conn_read(tg_mock_conn_t *c, uint32_t events)
{
    size_t room;
    ssize_t n;
    int rc;

    for (;;) {
        rc = tg_buf_reserve(&c->in, TG_MOCK_READ_MIN);
        if (rc == TG_DECLINED && c->state >= TG_MOCK_S_WAIT &&
            !(events & (EPOLLERR | EPOLLHUP))) {
            /* Pipelined input piles up behind a long answer: stop reading
             * until the answer is out. */
            c->in_paused = true;
            tg_mock_conn_mask(c, tg_buf_len(&c->out) > 0);
            return TG_OK;
        }
        if (rc != TG_OK) {
            tg_mock_conn_close(c, false);
            return TG_DONE;
        }
        room = c->in.cap - c->in.last;
        n = read(c->fd, c->in.data + c->in.last, room);
        if (n > 0) {
            c->in.last += (size_t)n;
            c->last_active = tg_ev_now(tg_mock_loop);
            if ((size_t)n < room) {
                return TG_OK;
            }
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return TG_OK;
        }
        /* EOF or a reset: a request still owed is logged as aborted. */
        tg_mock_conn_close(c, false);
        return TG_DONE;
    }
}

static void
tg_mock_conn_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_mock_conn_t *c = data;

    (void)loop;
    (void)fd;
    if (events & EPOLLOUT) {
        if (tg_mock_conn_run(c) == TG_DONE) {
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (c->in_paused && (events & (EPOLLERR | EPOLLHUP))) {
            tg_mock_conn_close(c, false);
            return;
        }
        if (c->in_paused || tg_mock_conn_read(c, events) == TG_DONE) {
            return;
        }
        if (c->state == TG_MOCK_S_HEAD || c->state == TG_MOCK_S_BODY) {
            (void)tg_mock_process(c);
        }
    }
}

static void
tg_mock_idle_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_mock_conn_t *c = t->data;
    uint64_t quiet = tg_ev_now(loop) - c->last_active;

    if (quiet >= TG_MOCK_IDLE_MS) {
        tg_mock_conn_close(c, false);
        return;
    }
    tg_ev_timer_add(loop, &c->idle, TG_MOCK_IDLE_MS - quiet);
}

static void
tg_mock_step_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_mock_conn_t *c = t->data;

    (void)loop;
    if (c->state == TG_MOCK_S_WAIT) {
        if (tg_mock_answer_out(c) == TG_DONE) {
            return;
        }
        if (c->state == TG_MOCK_S_HEAD && tg_buf_len(&c->in) > 0) {
            (void)tg_mock_process(c);
        }
        return;
    }
    (void)tg_mock_conn_run(c);
}

static void tg_mock_accept_handler(tg_ev_loop_t *loop, int fd, void *data,
                                   uint32_t events);

static void
tg_mock_accept_resume(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)t;
    (void)tg_ev_add(loop, tg_mock_listen_fd, TG_EV_READ, tg_mock_accept_handler,
                    NULL);
}

static void
tg_mock_conn_open(tg_ev_loop_t *loop, int cfd)
{
    tg_mock_conn_t *c;
    int one = 1;

    (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tg_log(TG_LOG_WARN, errno, "calloc(conn) failed");
        close(cfd);
        return;
    }
    c->fd = cfd;
    tg_buf_init(&c->in, TG_MOCK_IN_MAX);
    tg_buf_init(&c->out, TG_MOCK_OUT_MAX);
    c->idle.handler = tg_mock_idle_handler;
    c->idle.data = c;
    c->step.handler = tg_mock_step_handler;
    c->step.data = c;
    if (tg_ev_add(loop, cfd, TG_EV_READ, tg_mock_conn_handler, c) != TG_OK) {
        close(cfd);
        free(c);
        return;
    }
    c->next = tg_mock_conns;
    if (c->next != NULL) {
        c->next->prev = c;
    }
    tg_mock_conns = c;
    c->last_active = tg_ev_now(loop);
    tg_ev_timer_add(loop, &c->idle, TG_MOCK_IDLE_MS);
    tg_mock_cnt_add(TG_MOCK_C_ACCEPTED, 1);
    tg_mock_cnt_add(TG_MOCK_C_ACTIVE, 1);
}

static void
tg_mock_accept_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    int i, cfd;

    (void)data;
    (void)events;
    for (i = 0; i < TG_MOCK_ACCEPT_MAX; i++) {
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            tg_mock_conn_open(loop, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        /* Out of fds or memory: the listening socket would stay readable
         * and spin the loop, so stop accepting for a moment. */
        tg_log(TG_LOG_WARN, errno, "accept4() failed; pausing accepts 100 ms");
        tg_ev_del(loop, fd);
        tg_ev_timer_add(loop, &tg_mock_accept_timer, 100);
        return;
    }
}

static void
tg_mock_signal_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    struct signalfd_siginfo si;

    (void)data;
    (void)events;
    if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        tg_log(TG_LOG_NOTICE, 0, "signal %u received; exiting", si.ssi_signo);
    }
    tg_ev_stop(loop);
}

/* -------------------------------------------------------------- process */

/* One worker: serve <lfd> until TERM/INT.  Returns the exit status. */
static int
tg_mock_worker(int lfd, int slot, int setsize)
{
    sigset_t mask;
    int sfd = -1, rc = 1;

    tg_log_set_role("mock", slot);
    tg_mock_pid = (unsigned)getpid();
    tg_mock_listen_fd = lfd;
    tg_mock_accept_timer.handler = tg_mock_accept_resume;
    tg_mock_loop = tg_ev_create(setsize);
    if (tg_mock_loop == NULL) {
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd == -1) {
        tg_log(TG_LOG_ERR, errno, "signalfd() failed");
        goto done;
    }
    if (tg_ev_add(tg_mock_loop, sfd, TG_EV_READ, tg_mock_signal_handler,
                  NULL) != TG_OK ||
        tg_ev_add(tg_mock_loop, lfd, TG_EV_READ, tg_mock_accept_handler,
                  NULL) != TG_OK) {
        goto done;
    }
    tg_ev_run(tg_mock_loop);
    rc = 0;

done:
    while (tg_mock_conns != NULL) {
        memset(&tg_mock_conns->r, 0, sizeof(tg_mock_conns->r));
        tg_mock_conn_close(tg_mock_conns, false);
    }
    tg_ev_timer_del(tg_mock_loop, &tg_mock_accept_timer);
    if (sfd != -1) {
        close(sfd);
    }
    close(lfd);
    tg_ev_destroy(tg_mock_loop);
    tg_mock_loop = NULL;
    return rc;
}

/*
 * Open a listening socket for <host>:<port> with SO_REUSEPORT.  Returns
 * the fd, or -1 after logging.
 */
static int
tg_mock_listen(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        tg_log(TG_LOG_ERR, 0, "getaddrinfo(\"%s\") failed (%s)", host,
               gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, 4096) == 0) {
            break;
        }
        tg_log(TG_LOG_ERR, errno, "bind/listen(%s:%s) failed", host, port);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int
tg_mock_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Parent of -w N workers: forward TERM/INT, reap, exit when all are gone. */
static int
tg_mock_supervise(pid_t *pids, int n)
{
    sigset_t mask;
    siginfo_t si;
    int alive = n, rc = 0, st, i;
    pid_t pid;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    while (alive > 0) {
        if (sigwaitinfo(&mask, &si) == -1) {
            continue;
        }
        if (si.si_signo != SIGCHLD) {
            for (i = 0; i < n; i++) {
                if (pids[i] > 0) {
                    kill(pids[i], SIGTERM);
                }
            }
            continue;
        }
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (i = 0; i < n; i++) {
                if (pids[i] == pid) {
                    pids[i] = 0;
                    alive--;
                }
            }
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                tg_log(TG_LOG_ERR, 0, "worker %d exited abnormally (status %d)",
                       (int)pid, st);
                rc = 1;
            }
        }
    }
    return rc;
}

/* Fork one worker per socket in <fds> (the parent closes its copies and
 * sets them to -1), then supervise.  Returns the exit status. */
static int
tg_mock_spawn(int *fds, int n, int setsize)
{
    pid_t pids[256];
    int i, j;

    for (i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (j = 0; j < n; j++) {
                if (j != i) {
                    close(fds[j]);
                }
            }
            _exit(tg_mock_worker(fds[i], i, setsize));
        }
        if (pids[i] == -1) {
            tg_log(TG_LOG_ERR, errno, "fork() failed");
            pids[i] = 0;
        }
    }
    for (i = 0; i < n; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    return tg_mock_supervise(pids, n);
}

static void
tg_mock_usage(FILE *f)
{
    fprintf(f,
            "usage: mock-upstream -l HOST:PORT [-w N] [--chunks N] "
            "[--delay-ms MS]\n"
            "                     [--fault SPEC] [--ledger FILE] "
            "[--require-key KEY] [--encoding ENC] [-q]\n"
            "  -l, --listen HOST:PORT  address to listen on (port 0: any)\n"
            "  -w, --workers N         worker processes (SO_REUSEPORT), "
            "default 1\n"
            "      --chunks N          content deltas per answer, default 5\n"
            "      --delay-ms MS       delay before each stream delta\n"
            "      --fault SPEC        global fault (see docs/mock-upstream.md)"
            "\n"
            "      --ledger FILE       append one JSON line per request\n"
            "      --require-key KEY   accept only this API key\n"
            "      --encoding ENC      compress answers (gzip, deflate, br, "
            "zstd, ...)\n"
            "                          when the request accepts it\n"
            "  -q, --quiet             log errors only\n");
}

static int
tg_mock_parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"chunks", required_argument, NULL, 'c'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"fault", required_argument, NULL, 'f'},
        {"ledger", required_argument, NULL, 'L'},
        {"require-key", required_argument, NULL, 'k'},
        {"encoding", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int ch;

    while ((ch = getopt_long(argc, argv, "l:w:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            tg_mock_conf.listen = optarg;
            break;
        case 'w':
        case 'c':
        case 'd':
            if (!tg_mock_parse_uint(optarg, strlen(optarg), 1u << 30, &v) ||
                (ch == 'w' && (v < 1 || v > 256)) ||
                (ch == 'c' && v > TG_MOCK_CHUNKS_MAX) ||
                (ch == 'd' && v > TG_MOCK_DELAY_MAX)) {
                fprintf(stderr, "mock-upstream: bad value \"%s\"\n", optarg);
                return TG_ERROR;
            }
            if (ch == 'w') {
                tg_mock_conf.workers = (int)v;
            } else if (ch == 'c') {
                tg_mock_conf.chunks = (uint32_t)v;
            } else {
                tg_mock_conf.delay_ms = (uint32_t)v;
            }
            break;
        case 'f':
            tg_mock_conf.fault = optarg;
            break;
        case 'L':
            tg_mock_conf.ledger = optarg;
            break;
        case 'k':
            tg_mock_conf.require_key = optarg;
            tg_mock_conf.require_key_len = strlen(optarg);
            break;
        case 'e':
            tg_mock_conf.encoding =
                tg_mock_enc_parse((tg_str_t){optarg, strlen(optarg)});
            if (tg_mock_conf.encoding < 0) {
                fprintf(stderr, "mock-upstream: bad --encoding \"%s\"\n",
                        optarg);
                return TG_ERROR;
            }
            break;
        case 'q':
            tg_mock_conf.quiet = true;
            break;
        case 'h':
            tg_mock_usage(stdout);
            exit(0);
        default:
            tg_mock_usage(stderr);
            return TG_ERROR;
        }
    }
    if (tg_mock_conf.listen == NULL || optind != argc) {
        tg_mock_usage(stderr);
        return TG_ERROR;
    }
    return TG_OK;
}

/* Map the shared region and install the --fault spec. */
static int
tg_mock_setup_shared(void)
{
    tg_mock_fault_t f;
    char err[160];
    const char *spec = tg_mock_conf.fault ? tg_mock_conf.fault : "";

    if (tg_mock_fault_parse(&f, spec, strlen(spec), err, sizeof(err)) !=
        TG_OK) {
        fprintf(stderr, "mock-upstream: --fault: %s\n", err);
        return TG_ERROR;
    }
    tg_mock_shm = mmap(NULL, sizeof(*tg_mock_shm), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tg_mock_shm == MAP_FAILED) {
        tg_mock_shm = NULL;
        tg_log(TG_LOG_ERR, errno, "mmap(shared counters) failed");
        return TG_ERROR;
    }
    atomic_store(&tg_mock_shm->fault_left, -1);
    tg_mock_fault_store(&f);
    return TG_OK;
}

/* Bind <n> sockets to the same address; the first one fixes port 0. */
static int
tg_mock_open_sockets(int *fds, int n, char *host, size_t host_cap, int *port)
{
    const char *colon = strrchr(tg_mock_conf.listen, ':');
    char portbuf[16];
    size_t hl;
    int i;

    if (colon == NULL) {
        fprintf(stderr, "mock-upstream: -l wants HOST:PORT\n");
        return TG_ERROR;
    }
    hl = (size_t)(colon - tg_mock_conf.listen);
    if (hl >= 2 && tg_mock_conf.listen[0] == '[' &&
        tg_mock_conf.listen[hl - 1] == ']') {
        snprintf(host, host_cap, "%.*s", (int)(hl - 2),
                 tg_mock_conf.listen + 1);
    } else {
        snprintf(host, host_cap, "%.*s", (int)hl, tg_mock_conf.listen);
    }
    snprintf(portbuf, sizeof(portbuf), "%s", colon + 1);
    for (i = 0; i < n; i++) {
        fds[i] = tg_mock_listen(host, portbuf);
        if (fds[i] == -1) {
            return TG_ERROR;
        }
        if (i == 0) {
            *port = tg_mock_bound_port(fds[0]);
            snprintf(portbuf, sizeof(portbuf), "%d", *port);
        }
    }
    return TG_OK;
}

/*
 * Parse the options, map the shared region, bind the sockets, print the
 * "listening" line, then serve in this process (-w 1) or fork the workers
 * and supervise them.  Exit status 0 after TERM/INT, 1 on a setup failure
 * or a worker that died, 2 on a usage error.
 */
int
main(int argc, char **argv)
{
    int fds[256], port = 0, i, rc = 1, setsize;
    char host[256];
    sigset_t mask;

    if (tg_mock_parse_args(argc, argv) != TG_OK) {
        return 2;
    }
    tg_log_open(NULL, NULL, tg_mock_conf.quiet ? TG_LOG_WARN : TG_LOG_NOTICE);
    tg_log_set_role("mock", -1);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    setsize = tg_nofile_raise();
    if (tg_mock_setup_shared() != TG_OK) {
        return 1;
    }
    if (tg_mock_conf.ledger != NULL) {
        tg_mock_ledger_fd =
            open(tg_mock_conf.ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                 0644);
        if (tg_mock_ledger_fd == -1) {
            tg_log(TG_LOG_ERR, errno, "open(\"%s\") failed",
                   tg_mock_conf.ledger);
            return 1;
        }
    }
    for (i = 0; i < tg_mock_conf.workers; i++) {
        fds[i] = -1;
    }
    if (tg_mock_open_sockets(fds, tg_mock_conf.workers, host, sizeof(host),
                             &port) != TG_OK) {
        goto done;
    }
    if (strchr(host, ':') != NULL) {
        printf("mock-upstream listening on [%s]:%d\n", host, port);
    } else {
        printf("mock-upstream listening on %s:%d\n", host, port);
    }
    fflush(stdout);
    if (tg_mock_conf.workers == 1) {
        rc = tg_mock_worker(fds[0], 0, setsize);
        fds[0] = -1;
        goto done;
    }
    rc = tg_mock_spawn(fds, tg_mock_conf.workers, setsize);

done:
    for (i = 0; i < tg_mock_conf.workers; i++) {
        if (fds[i] != -1) {
            close(fds[i]);
        }
    }
    if (tg_mock_ledger_fd != -1) {
        close(tg_mock_ledger_fd);
    }
    munmap(tg_mock_shm, sizeof(*tg_mock_shm));
    return rc;
}
