/*
 * worker/proxy.c
 *      The upstream exchange: request set-up, response head and body,
 *      retries, and the hand-over to the request's end.
 *
 * NOTES
 *      Worker only; never blocks (curl resolves names on its own thread).
 *      libcurl's multi interface runs on the worker loop through
 *      core/ev_curl.  One tg_upstream_t carries a request's exchange from
 *      tg_proxy_start to the request's end, across its attempts; the
 *      request holds it through its cleanup hook, which is how the end
 *      function stops a transfer (client gone, shutdown).
 *      Callbacks from curl never end a request or remove a handle: they
 *      only append output and set flags.  Attempts end in
 *      tg_proxy_done_cb (called by the glue outside curl) or in the
 *      attempt timer.
 *
 *      The upstream's response head is collected line by line (bounded,
 *      TG_PROXY_HEAD_MAX) and parsed by core/http.c when complete; the
 *      response toward the client is framed by worker/respond: the
 *      upstream's content-length is kept when it sent one, otherwise the
 *      body is sent chunked to an HTTP/1.1 client.  A transfer that fails
 *      after the head went out ends the request as broken: the client
 *      sees a cut stream, never a clean end.
 *
 *      Compressed upstream bodies pass through untouched: curl is not asked
 *      to decode (no CURLOPT_ACCEPT_ENCODING).  The client's accept-encoding
 *      is forwarded with only the codings worker/decode can read for usage
 *      (identity when none is left or the client sent none), and usage
 *      decodes a copy of the body on the side.
 */
#include "core/core.h"
#include "core/ev_curl.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/decode.h"
#include "worker/failover.h"
#include "worker/proxy_int.h"
#include "worker/route.h"
#include "worker/translate.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


static void tg_proxy_done_cb(void *data, CURL *easy, CURLcode rc);
static void tg_proxy_attempt(tg_upstream_t *u);
static void tg_proxy_attempt_end(tg_upstream_t *u, CURLcode rc,
                                 const char *why);


/* See proxy.h. */
int
tg_proxy_init(tg_worker_t *w)
{
    tg_proxy_t *px;
    CURLM *multi;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_global_init() failed");
        return TG_ERROR;
    }
    px = calloc(1, sizeof(*px));
    if (px == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(proxy) failed");
        return TG_ERROR;
    }
    px->w = w;
    px->m = tg_ev_curl_create(w->loop, tg_proxy_done_cb, px);
    if (px->m == NULL) {
        free(px);
        return TG_ERROR;
    }
    multi = tg_ev_curl_multi(px->m);
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* Idle upstream connections kept per worker (upstream.keepalive), as
     * nginx's keepalive: enough for steady reuse, not every connection of
     * the last burst. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                      (long)w->conf->upstream_keepalive);
    w->proxy = px;
    return TG_OK;
}


/* Free the multi handle and the recycled handles and exchanges. */
void
tg_proxy_fini(tg_worker_t *w)
{
    tg_proxy_t *px = w->proxy;
    tg_upstream_t *u;
    int i;

    if (px == NULL) {
        return;
    }
    for (i = 0; i < px->nfree; i++) {
        curl_easy_cleanup(px->free_easy[i]);
    }
    while ((u = px->free_up) != NULL) {
        px->free_up = u->next;
        tg_buf_fini(&u->head);
        free(u);
    }
    tg_ev_curl_destroy(px->m);
    free(px);
    w->proxy = NULL;
    curl_global_cleanup();
}


/* See proxy.h. */
int
tg_proxy_running(const tg_worker_t *w)
{
    return tg_ev_curl_running(w->proxy->m);
}


/*
 * Keep one line of the upstream's response head (<n> bytes at <p>, line
 * end stripped) in u->head, with a CRLF, for core/http.c.  curl reports
 * HTTP/2 and HTTP/3 status lines as "HTTP/2 200": the status line is
 * written as HTTP/1.1, which is what the client gets anyway.
 */
static int
tg_proxy_head_line(tg_upstream_t *u, const char *p, size_t n)
{
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);

        /* A new status line starts a new block (after a 1xx). */
        tg_buf_reset(&u->head, 4096);
        if (sp == NULL || tg_buf_append(&u->head, "HTTP/1.1", 8) != TG_OK) {
            return TG_ERROR;
        }
        n -= (size_t)(sp - p);
        p = sp;
    }
    if (tg_buf_append(&u->head, p, n) != TG_OK ||
        tg_buf_append(&u->head, "\r\n", 2) != TG_OK) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "upstream response head too large");
        return TG_ERROR;
    }
    return TG_OK;
}


static int tg_proxy_head_done(tg_upstream_t *u);


/*
 * curl header callback: one line per call.  Lines are collected until the
 * empty line that ends a block; a 1xx block is dropped, the final one is
 * parsed and decides between retrying and committing.
 */
static size_t
tg_proxy_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    tg_upstream_t *u = userdata;
    size_t len = size * nitems, n = len;

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if (u->discard || u->head_done) {
        /* After the final head only trailers come (HTTP/2, chunked
         * HTTP/1.1): not forwarded. */
        return len;
    }
    if (n > 0) {
        return tg_proxy_head_line(u, buf, n) == TG_OK ? len : 0;
    }
    if (tg_proxy_head_line(u, buf, 0) != TG_OK) {
        return 0;
    }
    return tg_proxy_head_done(u) == TG_OK ? len : 0;
}


/* This process's pid, for probe ownership and events (workers never
 * fork, so it is read once). */
static int32_t
tg_proxy_pid(void)
{
    static int32_t pid;

    if (pid == 0) {
        pid = (int32_t)getpid();
    }
    return pid;
}


/* Random bits for cool-down jitter: xorshift32, seeded per process. */
static uint32_t
tg_proxy_rand(void)
{
    static uint32_t x;

    if (x == 0) {
        x = (uint32_t)tg_time_mono_us() ^ ((uint32_t)tg_proxy_pid() << 16) ^
            0x9e3779b9u;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}


/* The group <r>'s key routes to (retry limits); groups[0] if unknown. */
static const tg_conf_group_t *
tg_proxy_group(const tg_request_t *r)
{
    const tg_conf_t *conf = r->w->conf;
    uint32_t g = r->key.group;

    return &conf->groups[g < conf->ngroups ? g : 0];
}


/* The current response's retry-after in ms (curl parses seconds and
 * HTTP dates), or -1 when it sent none. */
static int64_t
tg_proxy_retry_after(const tg_upstream_t *u)
{
    curl_off_t ra = 0;

    if (u->easy == NULL ||
        curl_easy_getinfo(u->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK ||
        ra <= 0) {
        return -1;
    }
    return ra > (curl_off_t)86400 ? (int64_t)86400000 : (int64_t)ra * 1000;
}


/* Statuses worth another endpoint when nothing reached the client yet:
 * the endpoint's failures, not the client's (worker/failover.h). */
static bool
tg_proxy_retryable(int status)
{
    return tg_failover_status(status) == TG_FAILOVER_RETRY;
}


/* Whether the current response is a rate-limit 429 (with retry-after). */
static bool
tg_proxy_rate_limited(const tg_upstream_t *u)
{
    return u->status == 429 && tg_proxy_retry_after(u) >= 0;
}


/* The request of <u> as endpoint choice sees it. */
static void
tg_proxy_route_req(const tg_upstream_t *u, tg_route_req_t *q)
{
    const tg_request_t *r = u->r;

    q->group = r->key.group;
    q->style = (r->api == TG_API_OPENAI) ? TG_STYLE_OPENAI : TG_STYLE_ANTHROPIC;
    /* count_tokens has no OpenAI equivalent; the Responses API is not
     * translated (docs/translation.md): OpenAI-style endpoints only. */
    q->cross = r->route != TG_ROUTE_COUNT_TOKENS &&
               r->route != TG_ROUTE_RESPONSES && tg_proxy_group(r)->translate;
    q->model = r->model;
    q->model_len = strnlen(r->model, sizeof(r->model));
    q->tried = u->tried;
    q->session = r->session;
    q->now_ms = tg_time_wall_ms();
}


/*
 * Whether <u> may try another endpoint now: retries left in its group
 * (max_retries, counted in endpoints tried: libcurl's own re-sends on
 * the same endpoint are attempts in the logs but not retries), the group's
 * retry_deadline not passed since the request arrived, an untried available
 * endpoint, and, when <rate> (this failure is a 429 with retry-after), fewer
 * than TG_PROXY_RATE_RETRIES retries after rate limits so far: when one account
 * is rate limited its siblings usually are about to be, and retrying every 429
 * everywhere would multiply a storm by max_retries.
 */
static bool
tg_proxy_may_retry(const tg_upstream_t *u, bool rate)
{
    const tg_request_t *r = u->r;
    const tg_conf_group_t *g = tg_proxy_group(r);
    tg_route_req_t q;

    if (u->hops < 1 || (uint32_t)u->hops > g->max_retries) {
        return false;
    }
    if (rate && u->rate_retries >= TG_PROXY_RATE_RETRIES) {
        return false;
    }
    if (tg_time_mono_us() - r->start_us >=
        (uint64_t)g->retry_deadline_ms * 1000) {
        return false;
    }
    tg_proxy_route_req(u, &q);
    return tg_route_any(u->w->route, &q);
}


/* An error body's text for classification, bounded. */
typedef struct {
    size_t len;
    char data[TG_FAILOVER_BODY_MAX];
} tg_proxy_text_t;


/* Keep the start of an error body (bounded) for classification. */
static void
tg_proxy_errbody_keep(tg_upstream_t *u, const char *p, size_t n)
{
    size_t take = sizeof(u->errbody) - u->errbody_len;

    if (take > n) {
        take = n;
    }
    memcpy(u->errbody + u->errbody_len, p, take);
    u->errbody_len = (uint16_t)(u->errbody_len + take);
}


static void
tg_proxy_text_cb(void *ctx, const char *p, size_t len)
{
    tg_proxy_text_t *t = ctx;
    size_t take = sizeof(t->data) - t->len;

    if (take > len) {
        take = len;
    }
    memcpy(t->data + t->len, p, take);
    t->len += take;
}


/*
 * The error body of <u> as text in <t>: the bytes as kept, or, for a
 * compressed body, what decompressing the kept prefix gives (all of it
 * for an error body that fit).  Returns t->len.  Allocates a decoder only
 * for a compressed error body.
 */
static size_t
tg_proxy_errbody(const tg_upstream_t *u, tg_proxy_text_t *t)
{
    tg_decode_t *d;
    tg_err_t err;

    t->len = 0;
    if (u->errbody_len == 0) {
        return 0;
    }
    if (u->coding == TG_DECODE_IDENTITY || u->coding == TG_DECODE_OPAQUE) {
        tg_proxy_text_cb(t, u->errbody, u->errbody_len);
        return t->len;
    }
    d = tg_decode_create(u->coding, TG_DECODE_MEM_MAX, &err);
    if (d == NULL) {
        return 0;
    }
    (void)tg_decode_feed(d, u->errbody, u->errbody_len, tg_proxy_text_cb, t,
                         &err);
    tg_decode_destroy(d);
    return t->len;
}


/* The content coding of the response with headers <h> (<n> of them). */
static int
tg_proxy_coding(const tg_http_header_t *h, size_t n)
{
    int coding = TG_DECODE_IDENTITY;
    size_t i;

    for (i = 0; i < n; i++) {
        if (tg_str_caseeq(h[i].name, tg_str_lit("content-encoding"))) {
            coding = tg_decode_coding(coding, h[i].value);
        }
    }
    return coding;
}


/* Whether the response with headers <h> is an event stream. */
static bool
tg_proxy_is_stream(const tg_http_header_t *h, size_t n)
{
    const tg_http_header_t *ct =
        tg_http_find_header(h, n, tg_str_lit("content-type"));

    return ct != NULL && ct->value.len >= 17 &&
           tg_str_caseeq((tg_str_t){ct->value.data, 17},
                         tg_str_lit("text/event-stream"));
}


/*
 * The response <resp> of a translated attempt: set up its translator and
 * the head <h> the client gets (its status in the client's API; the
 * length changes, so the body is re-framed).  The upstream was asked for
 * an identity body; one encoded anyway cannot be translated and fails the
 * attempt.  TG_OK or TG_ERROR (u->last_error says why).
 */
static int
tg_proxy_translate_start(tg_upstream_t *u, const tg_http_resp_t *resp,
                         tg_respond_head_t *h)
{
    tg_request_t *r = u->r;

    if (u->coding != TG_DECODE_IDENTITY) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "upstream encoded a response that must be translated");
        return TG_ERROR;
    }
    u->tx = tg_translate_create(
        r->api, resp->status, tg_proxy_is_stream(resp->headers, resp->nheaders),
        r->api == TG_API_OPENAI && r->stream_req &&
            tg_translate_wants_usage(tg_request_body(r),
                                     (size_t)r->head.content_length));
    if (u->tx == NULL) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "out of memory for the response translator");
        return TG_ERROR;
    }
    h->status = tg_translate_status(r->api, resp->status);
    h->content_length = -1;
    return TG_OK;
}


/* Translated bytes for the client of <ctx> (the request). */
static int
tg_proxy_emit(void *ctx, const char *p, size_t n)
{
    tg_request_t *r = ctx;

    return tg_respond_body(&r->resp, &r->c->out, p, n);
}


/*
 * Commit to the response whose parsed head is <resp>: write the head for
 * the client (worker/respond) and start observing usage.
 */
static int
tg_proxy_commit(tg_upstream_t *u, const tg_http_resp_t *resp)
{
    tg_request_t *r = u->r;
    tg_worker_t *w = u->w;
    tg_respond_head_t h;

    memset(&h, 0, sizeof(h));
    h.status = resp->status;
    h.version = r->head.version;
    h.content_length = resp->content_length;
    if (u->xlate && tg_proxy_translate_start(u, resp, &h) != TG_OK) {
        return TG_ERROR;
    }
    h.headers = resp->headers;
    h.nheaders = resp->nheaders;
    h.req_id = r->id;
    h.close = r->close_after || !r->keep_alive || w->stopping;
    if (tg_respond_head(&r->resp, &r->c->out, &h) != TG_OK) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "response head does not fit the output");
        return TG_ERROR;
    }
    r->close_after = r->close_after || r->resp.close;
    /* Usage reads the upstream's own format, translated or not. */
    if (r->route == TG_ROUTE_RESPONSES) {
        tg_usage_init_responses(
            &r->usage, tg_proxy_is_stream(resp->headers, resp->nheaders),
            u->coding, r->id);
    } else {
        tg_usage_init(&r->usage,
                      w->conf->endpoints[u->endpoint].style == TG_STYLE_OPENAI,
                      tg_proxy_is_stream(resp->headers, resp->nheaders),
                      u->coding, r->id);
    }
    r->usage_on = true;
    /* A translated stream is parsed once: usage sees the translator's
     * events instead of parsing the bytes itself. */
    u->usage_events = u->tx != NULL && tg_usage_takes_events(&r->usage);
    if (u->usage_events) {
        tg_translate_observe(u->tx, tg_usage_event, &r->usage);
    }
    r->first_byte_us = tg_time_mono_us();
    tg_request_progress(r);
    u->last_io = tg_ev_now(w->loop);
    if (u->probe && !tg_proxy_retryable(u->status)) {
        /* The half-open probe has its answer with the head: close the
         * breaker now, not after a stream that may last minutes. */
        tg_shm_ep_probe_ok(tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS),
                                         (uint32_t)u->endpoint),
                           tg_proxy_pid(), (uint32_t)u->status,
                           tg_time_wall_ms(), tg_shm_events(w->shm));
        u->probe = false;
    }
    tg_ev_timer_add(w->loop, &u->timer, u->read_timeout_ms);
    tg_conn_want_flush(r->c);
    return TG_OK;
}


/*
 * A header block is complete: parse it (core/http.c).  A 1xx block is
 * dropped; for the final one either give up on this attempt (a retryable
 * status with another endpoint to try) or commit.
 */
static int
tg_proxy_head_done(tg_upstream_t *u)
{
    tg_http_resp_t resp;
    tg_err_t err;

    if (tg_http_parse_response(&resp, u->head.data + u->head.pos,
                               tg_buf_len(&u->head), TG_PROXY_HEAD_MAX,
                               &err) != TG_OK) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "bad upstream response head: %.90s", err.text);
        return TG_ERROR;
    }
    u->status = resp.status;
    if (resp.status < 200) {
        tg_buf_reset(&u->head, 4096);
        return TG_OK;
    }
    u->head_done = true;
    u->coding = tg_proxy_coding(resp.headers, resp.nheaders);
    u->errbody_len = 0;
    if (tg_proxy_retryable(u->status) &&
        tg_proxy_may_retry(u, tg_proxy_rate_limited(u))) {
        u->discard = true;
        snprintf(u->last_error, sizeof(u->last_error), "upstream status %d",
                 u->status);
        return TG_OK;
    }
    return tg_proxy_commit(u, &resp);
}


/* Translated output for a client that has left: dropped. */
static int
tg_proxy_discard(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return TG_OK;
}


/* Upstream body bytes for usage alone (the client has left). */
static void
tg_proxy_usage_feed(tg_upstream_t *u, const char *p, size_t n)
{
    if (u->usage_events) {
        /* Usage reads the translator's events: keep it parsing. */
        (void)tg_translate_feed(u->tx, p, n, tg_proxy_discard, NULL);
        return;
    }
    tg_usage_feed(&u->r->usage, p, n);
}


/*
 * curl write callback: frame <nmemb> bytes for the client.  Returns
 * CURL_WRITEFUNC_PAUSE when the client's output is over its bound (curl
 * keeps the bytes and offers them again after curl_easy_pause).
 */
static size_t
tg_proxy_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    tg_upstream_t *u = userdata;
    tg_request_t *r = u->r;
    tg_conn_t *c = r->c;
    size_t n = size * nmemb;
    int rc;

    if (u->discard) {
        /* Keep the start of the error body for classification. */
        tg_proxy_errbody_keep(u, ptr, n);
        return n;
    }
    if (!r->resp.committed) {
        return 0;
    }
    if (r->draining) {
        /* The client left: only the usage is read, up to drain_bytes. */
        r->drained += n;
        tg_proxy_usage_feed(u, ptr, n);
        tg_request_progress(r);
        u->last_io = tg_ev_now(u->w->loop);
        if (r->drained > u->w->conf->drain_bytes) {
            snprintf(u->last_error, sizeof(u->last_error),
                     "the client left; the drain stopped at "
                     "usage.drain_bytes");
            return 0;
        }
        return n;
    }
    if (tg_buf_len(&c->out) >= u->w->conf->stream_buffer) {
        u->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (u->status >= 400 && u->errbody_len < sizeof(u->errbody)) {
        /* An error passed through as is may still say something about
         * the endpoint (a 400 spend cap): keep its start too.  (After
         * the pause check: curl offers paused bytes again.) */
        tg_proxy_errbody_keep(u, ptr, n);
    }
    if (u->tx != NULL) {
        rc = tg_translate_feed(u->tx, ptr, n, tg_proxy_emit, r);
    } else if (r->usage_asked && r->usage.sse &&
               u->coding == TG_DECODE_IDENTITY) {
        rc = tg_usage_strip(&r->usage, ptr, n, tg_request_emit, r);
    } else {
        rc = tg_respond_body(&r->resp, &c->out, ptr, n);
    }
    if (rc != TG_OK) {
        return 0;
    }
    if (!u->usage_events) {
        tg_usage_feed(&r->usage, ptr, n);
    }
    tg_request_progress(r);
    u->last_io = tg_ev_now(u->w->loop);
    tg_conn_want_flush(c);
    return n;
}


/*
 * Timeout of one attempt: no response head within first_byte_timeout, or
 * no body bytes for read_timeout while the client keeps up.
 */
static void
tg_proxy_attempt_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_upstream_t *u = t->data;
    uint64_t now = tg_ev_now(loop), idle;

    if (!u->head_done) {
        tg_proxy_attempt_end(u, CURLE_OPERATION_TIMEDOUT,
                             "no response head within first_byte_timeout");
        return;
    }
    /* A paused transfer waits for the client, not for the upstream. */
    if (u->paused) {
        u->last_io = now;
    }
    idle = now - u->last_io;
    if (idle < u->read_timeout_ms) {
        tg_ev_timer_add(loop, t, u->read_timeout_ms - idle);
        return;
    }
    tg_proxy_attempt_end(u, CURLE_OPERATION_TIMEDOUT,
                         "no data from upstream within read_timeout");
}


static CURL *
tg_proxy_easy_get(tg_proxy_t *px)
{
    CURL *easy;

    if (px->nfree > 0) {
        easy = px->free_easy[--px->nfree];
        curl_easy_reset(easy);
        return easy;
    }
    return curl_easy_init();
}


static void
tg_proxy_easy_put(tg_proxy_t *px, CURL *easy)
{
    if (px->nfree < TG_PROXY_FREE_EASY) {
        px->free_easy[px->nfree++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}


/* Release the handle, header list and renamed body of <u>'s attempt. */
static void
tg_proxy_release(tg_upstream_t *u)
{
    tg_proxy_t *px = u->w->proxy;

    if (u->easy != NULL) {
        tg_ev_curl_remove(px->m, u->easy);
        tg_proxy_easy_put(px, u->easy);
        u->easy = NULL;
        atomic_fetch_sub_explicit(&u->w->proc->inflight, 1,
                                  memory_order_relaxed);
    }
    curl_slist_free_all(u->headers);
    u->headers = NULL;
    free(u->body);
    u->body = NULL;
    u->body_len = 0;
    tg_ev_timer_del(u->w->loop, &u->timer);
}


/* Whether <u>'s request has only one endpoint that could ever serve it
 * (its group, API style and model). */
static bool
tg_proxy_sole(const tg_upstream_t *u)
{
    tg_route_req_t q;

    tg_proxy_route_req(u, &q);
    q.tried = NULL;
    return tg_route_count(u->w->route, &q) == 1;
}


/*
 * Record the end of <c>'s attempt (curl result <rc>) in its endpoint's
 * shared state: classify it (worker/failover.h), then update the counters,
 * the breaker, a cool-down or a take-out (shm/ep.h), publishing any
 * transition as an event.  A failed attempt's cause replaces
 * u->last_error.  Must run before tg_proxy_release (it reads the handle).
 */
static void
tg_proxy_ep_finish(tg_upstream_t *u, CURLcode rc)
{
    tg_worker_t *w = u->w;
    tg_proxy_text_t body;
    const tg_conf_endpoint_t *e = &w->conf->endpoints[u->endpoint];
    const tg_conf_group_t *g = &w->conf->groups[e->group];
    tg_failover_in_t in;
    tg_failover_t fo;
    tg_shm_ep_outcome_t o;

    memset(&in, 0, sizeof(in));
    in.status = u->status;
    /* HTTP_RETURNED_ERROR marks a drained retryable status, and a write
     * error is ours (the client's output could not grow): neither is a
     * transport failure of the endpoint. */
    in.transport =
        (rc == CURLE_OK || rc == CURLE_HTTP_RETURNED_ERROR) ? 0 : (int)rc;
    in.transport_text =
        u->last_error[0] != '\0' ? u->last_error : curl_easy_strerror(rc);
    in.client_gone = rc == CURLE_ABORTED_BY_CALLBACK ||
                     rc == CURLE_WRITE_ERROR || rc == CURLE_OUT_OF_MEMORY;
    in.retry_after_ms = tg_proxy_retry_after(u);
    in.body_len = tg_proxy_errbody(u, &body);
    in.body = body.data;
    in.now_ms = tg_time_wall_ms();
    in.quota_cooldown_ms = e->quota_cooldown_ms;
    in.rnd = tg_proxy_rand();
    tg_failover_classify(&in, &fo);
    if ((fo.verdict == TG_EP_V_RATE || fo.verdict == TG_EP_V_OVERLOAD) &&
        tg_proxy_sole(u)) {
        /* The only endpoint of its group: cooling it would turn one 429
         * or 529 into seconds of answers made up here instead of the
         * upstream's own.  It answered, so it is reachable. */
        snprintf(u->last_error, sizeof(u->last_error),
                 "%s (sole endpoint, "
                 "not cooled)",
                 fo.reason);
        fo.verdict = TG_EP_V_OK;
    }

    memset(&o, 0, sizeof(o));
    o.verdict = fo.verdict;
    o.probe = u->probe;
    o.error = (in.transport != 0) ? 1000u + (uint32_t)rc : (uint32_t)u->status;
    o.latency_us = u->r->first_byte_us ? u->r->first_byte_us - u->start_us : 0;
    o.until_ms = fo.until_ms;
    o.cool_kind = fo.cool_kind;
    o.threshold = g->failure_threshold;
    o.cooldown_ms = g->cooldown_ms;
    o.pid = tg_proxy_pid();
    o.now_ms = in.now_ms;
    o.reason = fo.reason;
    tg_shm_ep_end(tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS),
                                (uint32_t)u->endpoint),
                  &w->ep_mine[u->endpoint], &o, tg_shm_events(w->shm));
    u->probe = false;
    if (fo.verdict != TG_EP_V_OK && fo.verdict != TG_EP_V_NONE) {
        snprintf(u->last_error, sizeof(u->last_error), "%s", fo.reason);
    }
}


/*
 * Choose the endpoint of <u>'s next attempt (tg_route_choose), claim its
 * place with tg_shm_ep_admit and, once claimed, apply what follows from
 * the choice (tg_route_commit: the sticky entry).  An endpoint whose
 * half-open probe another process took between the choice and the claim
 * is set aside for this request (marked tried) and the choice is made
 * again; each round sets one more aside, so this ends.  Returns the
 * index, with u->probe set when the attempt is the endpoint's probe, or
 * -1.
 */
static int
tg_proxy_choose(tg_upstream_t *u)
{
    tg_worker_t *w = u->w;
    const tg_conf_t *conf = w->conf;
    tg_route_choice_t ch;
    tg_route_req_t q;
    int idx, rc;

    u->probe = false;
    tg_proxy_route_req(u, &q);
    while ((idx = tg_route_choose(w->route, &q, &ch)) >= 0) {
        rc = tg_shm_ep_admit(
            tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS), (uint32_t)idx),
            tg_proxy_pid(), tg_time_wall_ms(),
            conf->groups[conf->endpoints[idx].group].cooldown_ms,
            tg_shm_events(w->shm));
        if (rc != TG_SHM_EP_DENY) {
            u->probe = rc == TG_SHM_EP_PROBE;
            tg_route_commit(w->route, &q, &ch);
            return idx;
        }
        u->tried[(uint32_t)idx >> 6] |= 1ull << ((uint32_t)idx & 63);
    }
    return -1;
}


/* The attempt on endpoint <idx> admitted by tg_proxy_choose never
 * started: give back the half-open probe it may hold, so the next request
 * can take it (the holder's CAS from its own pid, as shm/ep.h says). */
static void
tg_proxy_unclaim(tg_upstream_t *u, int idx)
{
    int32_t me = tg_proxy_pid();
    tg_shm_ep_t *e =
        tg_shm_ep_get(tg_shm_table(u->w->shm, TG_SHM_T_EPS), (uint32_t)idx);

    if (u->probe) {
        atomic_compare_exchange_strong(&e->probe_pid, &me, 0);
        u->probe = false;
    }
}


/* End <u>'s request for <cause> with answer <status>, <type>, <msg> and
 * header lines <extra>.  <u> is gone afterwards. */
static void
tg_proxy_end(tg_upstream_t *u, int cause, int status, const char *type,
             const char *code, const char *msg, const char *extra)
{
    tg_request_error_t err = {status, type, code, msg, extra};

    (void)tg_request_end(u->r, cause, &err);
}


static void tg_proxy_attempt_on(tg_upstream_t *u, int idx);


/* The wait for a cooling endpoint (wait_for_cooldown) is over: choose
 * again, among whatever is available by now. */
static void
tg_proxy_wait_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_upstream_t *u = t->data;

    (void)loop;
    u->timer.handler = tg_proxy_attempt_timer_handler;
    u->waited = true;
    tg_proxy_attempt(u);
}


/*
 * Nothing available for <u>'s next attempt.  When every candidate is
 * cooling down after a 429 or 529, the upstream's own answer is worth more
 * than one made up here: the request waits for the first one to come back
 * when that is within its group's wait_for_cooldown (once), or goes at
 * once to the one whose cool-down ends soonest.  A retry that finds
 * nothing ends with the last failure; a first attempt with no usable
 * endpoint at all (breakers open, spend caps, none configured) gets 503.
 * <u> is gone afterwards unless a wait or an attempt started.
 */
static void
tg_proxy_none(tg_upstream_t *u)
{
    const tg_conf_group_t *g = tg_proxy_group(u->r);
    tg_route_req_t q;
    uint64_t wait;
    int idx, rc;

    if (u->r->attempts > 0) {
        tg_proxy_end(u, TG_END_UPSTREAM, 502, "api_error", NULL,
                     "all upstream endpoints failed", NULL);
        return;
    }
    tg_proxy_route_req(u, &q);
    idx = tg_route_soonest(u->w->route, &q, &wait);
    if (idx < 0) {
        tg_proxy_end(u, TG_END_UPSTREAM, 503, "api_error", NULL,
                     "no upstream endpoint is available for this request",
                     NULL);
        return;
    }
    if (!u->waited && wait > 0 && wait <= g->wait_for_cooldown_ms) {
        u->timer.handler = tg_proxy_wait_timer_handler;
        tg_ev_timer_add(u->w->loop, &u->timer, wait);
        return;
    }
    rc = tg_shm_ep_admit(
        tg_shm_ep_get(tg_shm_table(u->w->shm, TG_SHM_T_EPS), (uint32_t)idx),
        tg_proxy_pid(), q.now_ms,
        u->w->conf->groups[u->w->conf->endpoints[idx].group].cooldown_ms,
        tg_shm_events(u->w->shm));
    if (rc == TG_SHM_EP_DENY) {
        tg_proxy_end(u, TG_END_UPSTREAM, 503, "api_error", NULL,
                     "no upstream endpoint is available for this request",
                     NULL);
        return;
    }
    u->probe = rc == TG_SHM_EP_PROBE;
    tg_log(TG_LOG_INFO, 0,
           "every upstream endpoint is cooling down; trying %s, whose "
           "cool-down ends soonest (in %llu ms)",
           u->w->conf->endpoints[idx].name, (unsigned long long)wait);
    tg_proxy_attempt_on(u, idx);
}


/* Start the next attempt of <u> on a newly chosen endpoint; on failure
 * the request is ended. */
static void
tg_proxy_attempt(tg_upstream_t *u)
{
    int idx = tg_proxy_choose(u);

    if (idx < 0) {
        tg_proxy_none(u);
        return;
    }
    tg_proxy_attempt_on(u, idx);
}


/* Start an attempt of <u> on endpoint <idx>, admitted (u->probe says
 * whether as its probe); on failure the request is ended. */
static void
tg_proxy_attempt_on(tg_upstream_t *u, int idx)
{
    tg_worker_t *w = u->w;
    tg_proxy_t *px = w->proxy;
    tg_request_t *r = u->r;
    const tg_conf_endpoint_t *e;
    CURL *easy;
    int rc;

    e = &w->conf->endpoints[idx];
    u->endpoint = idx;
    r->endpoint = idx;
    u->xlate = e->style != ((r->api == TG_API_OPENAI) ? TG_STYLE_OPENAI
                                                      : TG_STYLE_ANTHROPIC);
    u->tried[(uint32_t)idx >> 6] |= 1ull << ((uint32_t)idx & 63);
    r->attempts++;
    u->hops++;
    u->status = 0;
    u->head_done = u->paused = u->discard = false;
    u->last_error[0] = '\0';
    u->start_us = tg_time_mono_us();
    tg_buf_reset(&u->head, 4096);
    /* The attempt timer (tg_proxy_attempt_timer_handler) reads these. */
    u->first_byte_timeout_ms = e->first_byte_timeout_ms;
    u->read_timeout_ms = e->read_timeout_ms;
    easy = tg_proxy_easy_get(px);
    rc = easy == NULL ? TG_ERROR : tg_proxy_send_setup(u, easy, e);
    if (rc == TG_OK) {
        /* What comes back is this file's: the head, then the body. */
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, tg_proxy_header_cb);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, u);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_proxy_write_cb);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, u);
    }
    if (rc != TG_OK || tg_ev_curl_add(px->m, easy) != TG_OK) {
        if (easy != NULL) {
            tg_proxy_easy_put(px, easy);
        }
        tg_proxy_release(u);
        tg_proxy_unclaim(u, idx);
        if (rc == TG_DECLINED) {
            /* The client's request has no form in the endpoint's API. */
            tg_proxy_end(u, TG_END_BAD_REQUEST, 400, "invalid_request_error",
                         NULL, u->last_error, NULL);
            return;
        }
        tg_log(TG_LOG_ERR, 0, "setting up the upstream request failed");
        tg_proxy_end(u, TG_END_INTERNAL, 503, "api_error", NULL,
                     "cannot start the upstream request", NULL);
        return;
    }
    u->easy = easy;
    atomic_fetch_add_explicit(&w->proc->inflight, 1, memory_order_relaxed);
    tg_shm_ep_start(
        tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS), (uint32_t)idx),
        &w->ep_mine[idx]);
    tg_ev_timer_add(w->loop, &u->timer, u->first_byte_timeout_ms);
}


/* The client of <r> left and the stream is drained for its usage: a
 * transfer paused for the client's sake runs on. */
static void
tg_proxy_drain(tg_request_t *r, void *data)
{
    tg_upstream_t *u = data;

    (void)r;
    if (u->paused && u->easy != NULL) {
        u->paused = false;
        curl_easy_pause(u->easy, CURLPAUSE_CONT);
        tg_ev_curl_check(u->w->proxy->m);
    }
}


/* The request's end stops the exchange: abort a running transfer (the
 * endpoint learns nothing from a client that left) and recycle <data>. */
static void
tg_proxy_cleanup(tg_request_t *r, void *data, bool client_gone)
{
    tg_upstream_t *u = data;
    tg_proxy_t *px = r->w->proxy;

    (void)client_gone;
    if (u->easy != NULL) {
        tg_proxy_ep_finish(u, CURLE_ABORTED_BY_CALLBACK);
    }
    tg_proxy_release(u);
    tg_translate_destroy(u->tx);
    u->tx = NULL;
    if (px->nfree_up < TG_PROXY_FREE_UP) {
        tg_buf_reset(&u->head, 4096);
        u->next = px->free_up;
        px->free_up = u;
        px->nfree_up++;
    } else {
        tg_buf_fini(&u->head);
        free(u);
    }
}


/* See proxy.h. */
void
tg_proxy_start(tg_request_t *r)
{
    tg_proxy_t *px = r->w->proxy;
    tg_upstream_t *u = px->free_up;

    if (u != NULL) {
        px->free_up = u->next;
        px->nfree_up--;
    } else if ((u = malloc(sizeof(*u))) != NULL) {
        tg_buf_init(&u->head, TG_PROXY_HEAD_MAX);
    }
    if (u == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(upstream) failed");
        (void)tg_request_end(r, TG_END_INTERNAL,
                             &(tg_request_error_t){503, "overloaded_error",
                                                   NULL, "out of memory",
                                                   NULL});
        return;
    }
    memset(u, 0, offsetof(tg_upstream_t, errbody));
    u->r = r;
    u->w = r->w;
    u->endpoint = -1;
    u->timer.handler = tg_proxy_attempt_timer_handler;
    u->timer.data = u;
    r->phase = TG_REQ_UPSTREAM;
    r->cleanup = tg_proxy_cleanup;
    r->drain = tg_proxy_drain;
    r->cleanup_data = u;
    tg_proxy_attempt(u);
}


/*
 * Answer <u>'s request when its last attempt failed before anything
 * reached the client and no other endpoint may take it.  A drained
 * retryable status (the retry became impossible after its head: the
 * deadline passed, or the other endpoints became unavailable) is reported
 * in kind, so SDKs back off on a 429 or 529 as they would from the
 * upstream itself.  <u> is gone afterwards.
 */
static void
tg_proxy_fail(tg_upstream_t *u, CURLcode rc, int64_t retry_after_ms)
{
    tg_failover_body_t b;
    tg_proxy_text_t body;
    char extra[64], msg[200];
    const char *type;

    if (u->discard && u->status >= 400) {
        /* The upstream's own status and error type, in the client's API
         * shape, with its retry-after. */
        tg_failover_scan(body.data, tg_proxy_errbody(u, &body), &b);
        type = b.type[0] != '\0'  ? b.type
               : u->status == 429 ? "rate_limit_error"
               : u->status == 529 ? "overloaded_error"
               : u->status == 401 ? "authentication_error"
               : u->status == 402 ? "billing_error"
               : u->status == 504 ? "timeout_error"
                                  : "api_error";
        snprintf(msg, sizeof(msg), "%s",
                 b.message[0] != '\0' ? b.message : "upstream error");
        extra[0] = '\0';
        if (retry_after_ms > 0 || u->status == 429) {
            snprintf(extra, sizeof(extra), "retry-after: %lld\r\n",
                     (long long)(retry_after_ms > 0
                                     ? (retry_after_ms + 999) / 1000
                                     : 1));
        }
        tg_proxy_end(u, TG_END_UPSTREAM, u->status, type,
                     b.code[0] != '\0' ? b.code : NULL, msg,
                     extra[0] != '\0' ? extra : NULL);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        tg_proxy_end(u, TG_END_TIMEOUT, 504, "timeout_error", NULL,
                     "upstream timed out", NULL);
    } else {
        tg_proxy_end(u, TG_END_UPSTREAM, 502, "api_error", NULL,
                     "upstream request failed", NULL);
    }
}


/*
 * End <u>'s current attempt with curl result <rc> (<why> overrides curl's
 * text): retry on another endpoint when nothing reached the client and the
 * request may be retried (tg_proxy_may_retry), otherwise end the request:
 * complete, broken, or answered with the error.  Each failed attempt is
 * logged at info with its endpoint and cause; the access log lists them.
 */
static void
tg_proxy_attempt_end(tg_upstream_t *u, CURLcode rc, const char *why)
{
    tg_request_t *r = u->r;
    const char *ep = u->w->conf->endpoints[u->endpoint].name;
    bool rate = tg_proxy_rate_limited(u);
    int64_t ra = tg_proxy_retry_after(u);

    /* A callback that refused bytes on purpose said why in last_error;
     * curl's own text for that ("Failed writing received data") is not. */
    if (rc != CURLE_OK && rc != CURLE_HTTP_RETURNED_ERROR &&
        (why != NULL || rc != CURLE_WRITE_ERROR || u->last_error[0] == '\0')) {
        snprintf(u->last_error, sizeof(u->last_error), "%s",
                 why ? why : curl_easy_strerror(rc));
    }
    /* The access log lists every attempt: endpoint and what it gave. */
    r->upstream_status = u->status;
    if (r->attempts >= 1 && r->attempts <= TG_REQUEST_HIST) {
        r->hist_ep[r->attempts - 1] = (uint16_t)u->endpoint;
        r->hist_status[r->attempts - 1] =
            (uint16_t)((u->status != 0 || rc == CURLE_OK ||
                        rc == CURLE_HTTP_RETURNED_ERROR)
                           ? u->status
                           : 1000 + (int)rc);
    }
    tg_proxy_ep_finish(u, rc);
    tg_proxy_release(u);
    if (r->resp.committed) {
        tg_usage_finish(&r->usage);
        if (rc == CURLE_OK && u->tx != NULL &&
            tg_translate_finish(u->tx, tg_proxy_emit, r) != TG_OK) {
            rc = CURLE_WRITE_ERROR;
            snprintf(u->last_error, sizeof(u->last_error),
                     "the response could not be translated");
        }
        if (rc != CURLE_OK) {
            tg_log(r->draining ? TG_LOG_INFO : TG_LOG_WARN, 0,
                   "upstream %s failed mid-response: %s", ep, u->last_error);
        }
        (void)tg_request_end(r,
                             rc == CURLE_OK                   ? TG_END_OK
                             : rc == CURLE_OPERATION_TIMEDOUT ? TG_END_TIMEOUT
                                                              : TG_END_UPSTREAM,
                             NULL);
        return;
    }
    /* Nothing was sent to the client: this attempt can be retried. */
    if (tg_proxy_may_retry(u, rate)) {
        tg_log(TG_LOG_INFO, 0, "upstream %s attempt %d failed: %s; retrying",
               ep, r->attempts, u->last_error);
        if (rate) {
            u->rate_retries++;
        }
        tg_proxy_attempt(u);
        return;
    }
    tg_log(TG_LOG_INFO, 0, "upstream %s attempt %d failed: %s; giving up", ep,
           r->attempts, u->last_error);
    tg_proxy_fail(u, rc, ra);
}


/* A transfer finished (core/ev_curl, outside curl's callbacks). */
static void
tg_proxy_done_cb(void *data, CURL *easy, CURLcode rc)
{
    tg_upstream_t *u = NULL;

    (void)data;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&u);
    if (u == NULL || u->easy != easy) {
        return;
    }
    /* A retryable status was received and its body drained. */
    tg_proxy_attempt_end(u, u->discard ? CURLE_HTTP_RETURNED_ERROR : rc, NULL);
}


/* See proxy.h. */
void
tg_proxy_resume(tg_request_t *r)
{
    tg_upstream_t *u = r->cleanup == tg_proxy_cleanup ? r->cleanup_data : NULL;

    if (u == NULL || !u->paused || u->easy == NULL) {
        return;
    }
    u->paused = false;
    u->last_io = tg_ev_now(u->w->loop);
    /* curl may call the write callback from here with the bytes it held
     * back; that only appends to c->out. */
    curl_easy_pause(u->easy, CURLPAUSE_CONT);
    tg_ev_curl_check(u->w->proxy->m);
}
