/*
 * worker/proxy.c
 *      Upstream transfers: libcurl multi glue, request set-up, header and
 *      body callbacks, retries, completion.
 *
 * NOTES
 *      Worker only; never blocks (curl resolves names on its own thread).
 *      Callbacks from curl never close a connection or remove a handle:
 *      they only append output and set flags.  Handles are removed from the
 *      multi in tg_proxy_check_done (after curl_multi_socket_action has
 *      returned), in the timeout handler and in tg_proxy_abort, all of which
 *      run outside curl.
 *
 *      Response framing toward the client: the upstream's content-length
 *      is kept when it sent one; otherwise the body is sent chunked to an
 *      HTTP/1.1 client.  A transfer that fails after the response head went
 *      out ends the client connection without the terminating chunk, so the
 *      client sees a broken stream, never a clean end.
 *
 *      Compressed upstream bodies pass through untouched: curl is not asked
 *      to decode (no CURLOPT_ACCEPT_ENCODING).  The client's accept-encoding
 *      is forwarded with only the codings worker/decode can read for usage
 *      (identity when none is left or the client sent none), and usage
 *      decodes a copy of the body on the side.
 */
#include "worker/proxy.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/decode.h"
#include "worker/failover.h"
#include "worker/route.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define TG_PROXY_FREE_EASY    256
#define TG_PROXY_HEAD_MAX     65536 /* response head bytes from upstream */
#define TG_PROXY_RATE_RETRIES 1     /* retries after rate-limit 429s */

_Static_assert(TG_UPSTREAM_ERRBODY == TG_FAILOVER_BODY_MAX,
               "tg_upstream_t.errbody holds what failover reads");

struct tg_proxy_s {
    CURLM *multi;
    tg_worker_t *w;
    uint8_t *idle; /* per fd: curl's socket, registered but not watched */
    size_t nidle;
    tg_ev_timer_t timer;
    int running;
    CURL *free_easy[TG_PROXY_FREE_EASY];
    int nfree;
};

static void tg_proxy_check_done(tg_proxy_t *px);
static int tg_proxy_head_done(tg_conn_t *c);
static void tg_proxy_attempt_end(tg_conn_t *c, CURLcode rc, const char *why);


static void
tg_proxy_sock_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    tg_proxy_t *px = data;
    int flags = 0;

    if (fd >= 0 && (size_t)fd < px->nidle && px->idle[fd]) {
        /* curl parked this connection; an event on it means the peer
         * closed or sent something unasked.  Stop watching until curl asks
         * again (it will notice the state itself when it reuses it). */
        tg_ev_del(loop, fd);
        px->idle[fd] = 0;
        return;
    }
    if (events & EPOLLIN) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & EPOLLOUT) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        flags |= CURL_CSELECT_ERR;
    }
    curl_multi_socket_action(px->multi, fd, flags, &px->running);
    tg_proxy_check_done(px);
}


static int
tg_proxy_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                   void *socketp)
{
    tg_proxy_t *px = userp;
    tg_ev_loop_t *loop = px->w->loop;
    uint32_t mask = 0;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* A connection going back to curl's cache is usually reused by
         * the next transfer at once: keep it registered (the handler drops
         * it if it fires while curl does not watch it) and save two
         * epoll_ctl calls per request.  curl tells us when it really
         * closes the socket through tg_proxy_close_cb. */
        if (s >= 0 && (size_t)s < px->nidle) {
            px->idle[s] = 1;
        } else {
            tg_ev_del(loop, s);
        }
        return 0;
    }
    if (s >= 0 && (size_t)s < px->nidle) {
        px->idle[s] = 0;
    }
    if (what & CURL_POLL_IN) {
        mask |= EPOLLIN;
    }
    if (what & CURL_POLL_OUT) {
        mask |= EPOLLOUT;
    }
    if (tg_ev_mask(loop, s) != 0) {
        return tg_ev_mod(loop, s, mask) == TG_OK ? 0 : -1;
    }
    return tg_ev_add(loop, s, mask, tg_proxy_sock_handler, px) == TG_OK ? 0
                                                                        : -1;
}


static void
tg_proxy_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_proxy_t *px = t->data;

    (void)loop;
    curl_multi_socket_action(px->multi, CURL_SOCKET_TIMEOUT, 0, &px->running);
    tg_proxy_check_done(px);
}


static int
tg_proxy_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    tg_proxy_t *px = userp;

    (void)multi;
    if (timeout_ms < 0) {
        tg_ev_timer_del(px->w->loop, &px->timer);
    } else {
        tg_ev_timer_add(px->w->loop, &px->timer, (uint64_t)timeout_ms);
    }
    return 0;
}


/* curl closes one of its sockets: unregister it first, so a new fd with
 * the same number starts clean. */
static int
tg_proxy_close_cb(void *clientp, curl_socket_t s)
{
    tg_proxy_t *px = clientp;

    tg_ev_del(px->w->loop, s);
    if (s >= 0 && (size_t)s < px->nidle) {
        px->idle[s] = 0;
    }
    return close(s);
}


/* See proxy.h. */
int
tg_proxy_init(tg_worker_t *w)
{
    tg_proxy_t *px;

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
    px->nidle = 65536;
    px->idle = calloc(px->nidle, 1);
    if (px->idle == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(proxy fd table) failed");
        free(px);
        return TG_ERROR;
    }
    px->timer.handler = tg_proxy_timer_handler;
    px->timer.data = px;
    px->multi = curl_multi_init();
    if (px->multi == NULL) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_init() failed");
        free(px->idle);
        free(px);
        return TG_ERROR;
    }
    curl_multi_setopt(px->multi, CURLMOPT_SOCKETFUNCTION, tg_proxy_socket_cb);
    curl_multi_setopt(px->multi, CURLMOPT_SOCKETDATA, px);
    curl_multi_setopt(px->multi, CURLMOPT_TIMERFUNCTION, tg_proxy_timer_cb);
    curl_multi_setopt(px->multi, CURLMOPT_TIMERDATA, px);
    curl_multi_setopt(px->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* Idle upstream connections kept per worker (upstream.keepalive), as
     * nginx's keepalive: enough for steady reuse, not every connection of
     * the last burst. */
    curl_multi_setopt(px->multi, CURLMOPT_MAXCONNECTS,
                      (long)w->conf->upstream_keepalive);
    w->proxy = px;
    return TG_OK;
}


/* Abort every transfer and free the multi handle. */
void
tg_proxy_fini(tg_worker_t *w)
{
    tg_proxy_t *px = w->proxy;
    int i;

    if (px == NULL) {
        return;
    }
    for (i = 0; i < px->nfree; i++) {
        curl_easy_cleanup(px->free_easy[i]);
    }
    curl_multi_cleanup(px->multi);
    free(px->idle);
    free(px);
    w->proxy = NULL;
    curl_global_cleanup();
}


/* Transfers running; see proxy.h. */
int
tg_proxy_running(const tg_worker_t *w)
{
    return w->proxy->running;
}


/*
 * curl header callback: one line per call.  The status line starts a
 * header block (1xx blocks are dropped); the empty line ends it, where we
 * decide between retrying and committing the response to the client.
 */
static size_t
tg_proxy_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    tg_conn_t *c = userdata;
    tg_upstream_t *u = &c->u;
    size_t len = size * nitems, n = len, colon;
    tg_str_t name, value;
    char line[256];
    int k;

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if (u->discard) {
        return len;
    }
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', n);

        u->status = 0;
        if (sp != NULL && (size_t)(buf + n - sp) >= 4) {
            u->status =
                (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        }
        if (u->status < 100 || u->status > 999) {
            return 0;
        }
        u->content_length = -1;
        u->stream = false;
        u->coding = TG_DECODE_IDENTITY;
        tg_buf_reset(&c->out, 4096);
        k = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", u->status,
                     tg_http_reason(u->status));
        return tg_buf_append(&c->out, line, (size_t)k) == TG_OK ? len : 0;
    }
    if (n == 0) {
        if (u->status < 200) {
            return len;
        }
        u->head_done = true;
        return tg_proxy_head_done(c) == TG_OK ? len : 0;
    }
    colon = 0;
    while (colon < n && buf[colon] != ':') {
        colon++;
    }
    if (colon == 0 || colon == n) {
        return len; /* not a header line; drop it */
    }
    name = (tg_str_t){buf, colon};
    value = (tg_str_t){buf + colon + 1, n - colon - 1};
    while (value.len > 0 && (value.data[0] == ' ' || value.data[0] == '\t')) {
        value.data++;
        value.len--;
    }
    if (tg_str_caseeq(name, tg_str_lit("content-length"))) {
        int64_t v = 0;
        size_t i;

        /* Digits only (after trailing blanks), at most 18 of them: we
         * forward this value to the client, so a malformed or negative
         * one fails the attempt (502) rather than reach it. */
        while (value.len > 0 && (value.data[value.len - 1] == ' ' ||
                                 value.data[value.len - 1] == '\t')) {
            value.len--;
        }
        if (value.len == 0 || value.len > 18) {
            return 0;
        }
        for (i = 0; i < value.len; i++) {
            if (value.data[i] < '0' || value.data[i] > '9') {
                return 0;
            }
            v = v * 10 + (value.data[i] - '0');
        }
        u->content_length = v;
        return len;
    }
    if (tg_http_is_hop_by_hop(name)) {
        return len;
    }
    if (tg_str_caseeq(name, tg_str_lit("content-encoding"))) {
        u->coding = tg_decode_coding(u->coding, value);
    }
    if (tg_str_caseeq(name, tg_str_lit("content-type")) && value.len >= 17 &&
        tg_str_caseeq((tg_str_t){value.data, 17},
                      tg_str_lit("text/event-stream"))) {
        u->stream = true;
    }
    if (tg_buf_len(&c->out) + n + 2 > TG_PROXY_HEAD_MAX ||
        tg_buf_append(&c->out, buf, n) != TG_OK ||
        tg_buf_append(&c->out, "\r\n", 2) != TG_OK) {
        snprintf(u->last_error, sizeof(u->last_error),
                 "upstream response head too large");
        return 0;
    }
    return len;
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


/* The group <c>'s key routes to (retry limits); groups[0] if unknown. */
static const tg_conf_group_t *
tg_proxy_group(const tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    uint32_t g = c->key.group;

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


/*
 * Whether <c> may try another endpoint now: retries left in its group
 * (max_retries), the group's retry_deadline not passed since the request
 * arrived, an untried available endpoint, and, when <rate> (this failure
 * is a 429 with retry-after), fewer than TG_PROXY_RATE_RETRIES retries
 * after rate limits so far: when one account is rate limited its siblings
 * usually are about to be, and retrying every 429 everywhere would
 * multiply a storm by max_retries.
 */
static bool
tg_proxy_may_retry(const tg_conn_t *c, bool rate)
{
    const tg_conf_group_t *g = tg_proxy_group(c);
    const tg_upstream_t *u = &c->u;

    if (u->attempts < 1 || (uint32_t)u->attempts > g->max_retries) {
        return false;
    }
    if (rate && u->rate_retries >= TG_PROXY_RATE_RETRIES) {
        return false;
    }
    if (tg_time_mono_us() - c->req_start_us >=
        (uint64_t)g->retry_deadline_ms * 1000) {
        return false;
    }
    return tg_route_has_candidate(c);
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


/*
 * The final header block is complete.  Either give up on this attempt (a
 * retryable status with another endpoint to try) or commit: finish the
 * head with our framing and queue it for the client.
 */
static int
tg_proxy_head_done(tg_conn_t *c)
{
    tg_upstream_t *u = &c->u;
    char line[256];
    int k;

    u->errbody_len = 0;
    if (tg_proxy_retryable(u->status) &&
        tg_proxy_may_retry(c, tg_proxy_rate_limited(u))) {
        u->discard = true;
        snprintf(u->last_error, sizeof(u->last_error), "upstream status %d",
                 u->status);
        return TG_OK;
    }
    if (u->content_length >= 0) {
        k = snprintf(line, sizeof(line), "content-length: %lld\r\n",
                     (long long)u->content_length);
    } else if (c->req.version >= 11) {
        u->chunked = true;
        k = snprintf(line, sizeof(line), "transfer-encoding: chunked\r\n");
    } else {
        /* An HTTP/1.0 client: the end of the body is the end of the
         * connection. */
        c->close_after = true;
        k = 0;
    }
    k += snprintf(line + k, sizeof(line) - (size_t)k,
                  "x-tollgate-request-id: %016llx\r\n%s\r\n",
                  (unsigned long long)c->req_id,
                  (c->close_after || !c->keep_alive || c->w->stopping)
                      ? "connection: close\r\n"
                      : "");
    if (tg_buf_append(&c->out, line, (size_t)k) != TG_OK) {
        return TG_ERROR;
    }
    u->committed = true;
    c->status = u->status;
    tg_usage_init(&c->usage, c->api == TG_API_OPENAI, u->stream, u->coding,
                  c->req_id);
    c->usage_on = true;
    u->first_byte_us = tg_time_mono_us();
    u->last_io = tg_ev_now(c->w->loop);
    if (u->probe && !tg_proxy_retryable(u->status)) {
        /* The half-open probe has its answer with the head: close the
         * breaker now, not after a stream that may last minutes. */
        tg_shm_ep_probe_ok(tg_shm_ep_get(tg_shm_table(c->w->shm, TG_SHM_T_EPS),
                                         (uint32_t)u->endpoint),
                           tg_proxy_pid(), (uint32_t)u->status,
                           tg_time_wall_ms(), tg_shm_events(c->w->shm));
        u->probe = false;
    }
    tg_ev_timer_add(c->w->loop, &u->timer, u->read_timeout_ms);
    tg_conn_want_flush(c);
    return TG_OK;
}


/*
 * curl write callback: frame <nmemb> bytes for the client.  Returns
 * CURL_WRITEFUNC_PAUSE when the client's output is over its bound (curl
 * keeps the bytes and offers them again after curl_easy_pause).
 */
static size_t
tg_proxy_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    tg_conn_t *c = userdata;
    tg_upstream_t *u = &c->u;
    size_t n = size * nmemb;
    char hex[24];
    int k;

    if (u->discard) {
        /* Keep the start of the error body for classification. */
        tg_proxy_errbody_keep(u, ptr, n);
        return n;
    }
    if (!u->committed) {
        return 0;
    }
    if (tg_buf_len(&c->out) >= c->w->conf->stream_buffer) {
        u->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (u->status >= 400 && u->errbody_len < sizeof(u->errbody)) {
        /* An error passed through as is may still say something about
         * the endpoint (a 400 spend cap): keep its start too.  (After
         * the pause check: curl offers paused bytes again.) */
        tg_proxy_errbody_keep(u, ptr, n);
    }
    if (u->chunked) {
        k = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        if (tg_buf_append(&c->out, hex, (size_t)k) != TG_OK ||
            tg_buf_append(&c->out, ptr, n) != TG_OK ||
            tg_buf_append(&c->out, "\r\n", 2) != TG_OK) {
            return 0;
        }
    } else if (tg_buf_append(&c->out, ptr, n) != TG_OK) {
        return 0;
    }
    tg_usage_feed(&c->usage, ptr, n);
    u->bytes += n;
    c->resp_bytes += n;
    u->last_io = tg_ev_now(c->w->loop);
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
    tg_conn_t *c = t->data;
    tg_upstream_t *u = &c->u;
    uint64_t now = tg_ev_now(loop), idle;

    if (!u->head_done) {
        tg_proxy_attempt_end(c, CURLE_OPERATION_TIMEDOUT,
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
    tg_proxy_attempt_end(c, CURLE_OPERATION_TIMEDOUT,
                         "no data from upstream within read_timeout");
}


/* Build the upstream request headers: the client's end-to-end headers,
 * minus its credential, plus the endpoint's.  accept-encoding keeps only
 * the codings usage can decode, and is "identity" when none is left or
 * the client sent none (which would allow any coding), so that the tokens
 * of every response can be read.  NULL when out of memory. */
static struct curl_slist *
tg_proxy_headers(tg_conn_t *c, const tg_conf_endpoint_t *e)
{
    static const tg_str_t drop[] = {
        {"host", 4},      {"content-length", 14}, {"expect", 6},
        {"x-api-key", 9}, {"authorization", 13},
    };
    const tg_http_req_t *r = &c->req;
    struct curl_slist *list = NULL, *t;
    char line[8192], accept[1024];
    bool have_accept = false;
    tg_str_t value;
    size_t i, j;
    int n;

    for (i = 0; i < r->nheaders; i++) {
        const tg_http_header_t *h = &r->headers[i];
        bool skip = tg_http_is_hop_by_hop(h->name);

        for (j = 0; j < TG_NELEMS(drop) && !skip; j++) {
            skip = tg_str_caseeq(h->name, drop[j]);
        }
        if (skip) {
            continue;
        }
        value = h->value;
        if (tg_str_caseeq(h->name, tg_str_lit("accept-encoding"))) {
            value.data = accept;
            value.len = tg_decode_accept(accept, sizeof(accept), h->value);
            if (value.len == 0) {
                continue;
            }
            have_accept = true;
        }
        if (value.len == 0) {
            /* "Name;" is curl's way of sending an empty header. */
            n = snprintf(line, sizeof(line), "%.*s;", (int)h->name.len,
                         h->name.data);
        } else {
            n = snprintf(line, sizeof(line), "%.*s: %.*s", (int)h->name.len,
                         h->name.data, (int)value.len, value.data);
        }
        if (n < 0 || (size_t)n >= sizeof(line)) {
            continue;
        }
        t = curl_slist_append(list, line);
        if (t == NULL) {
            goto failed;
        }
        list = t;
    }
    if (!have_accept) {
        t = curl_slist_append(list, "accept-encoding: identity");
        if (t == NULL) {
            goto failed;
        }
        list = t;
    }
    if (e->style == TG_STYLE_ANTHROPIC) {
        n = snprintf(line, sizeof(line), "x-api-key: %s", e->credential);
    } else {
        n = snprintf(line, sizeof(line), "Authorization: Bearer %s",
                     e->credential);
    }
    t = curl_slist_append(list, line);
    if (t == NULL) {
        goto failed;
    }
    list = t;
    /* Stop curl from adding "Expect: 100-continue" to large bodies: the
     * round trip it costs buys nothing between two servers. */
    t = curl_slist_append(list, "Expect:");
    if (t == NULL) {
        goto failed;
    }
    return t;

failed:
    curl_slist_free_all(list);
    return NULL;
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


/* Release the handle and header list of <c>'s current attempt. */
static void
tg_proxy_release(tg_conn_t *c)
{
    tg_upstream_t *u = &c->u;
    tg_proxy_t *px = c->w->proxy;

    if (u->easy != NULL) {
        curl_multi_remove_handle(px->multi, u->easy);
        tg_proxy_easy_put(px, u->easy);
        u->easy = NULL;
        atomic_fetch_sub_explicit(&c->w->proc->inflight, 1,
                                  memory_order_relaxed);
    }
    curl_slist_free_all(u->headers);
    u->headers = NULL;
    free(u->body);
    u->body = NULL;
    u->body_len = 0;
    tg_ev_timer_del(c->w->loop, &u->timer);
}


/*
 * The body to send to endpoint <e>: when <e> renames the request's model
 * (model_map), a copy of the client's body with exactly the top-level
 * "model" string value replaced, kept in c->u.body until the attempt ends
 * (tg_proxy_release); otherwise the client's body itself.  The copy is
 * bounded: the body limit plus one escaped name.  TG_OK, or TG_ERROR
 * (logged) when out of memory.
 */
static int
tg_proxy_body(tg_conn_t *c, const tg_conf_endpoint_t *e, const char **body,
              size_t *len)
{
    const char *src = tg_conn_body(c), *to = NULL;
    size_t n = (size_t)c->req.content_length, off = c->model_off, vlen, tlen;
    char esc[sizeof(e->maps[0].to) * 6 + 3], *p; /* '"' + \u00XX each + '"' */
    uint32_t i;

    *body = src;
    *len = n;
    vlen = c->model_vlen;
    if (vlen == 0 || off > n || vlen > n - off) {
        return TG_OK;
    }
    for (i = 0; i < e->nmaps && to == NULL; i++) {
        if (strcmp(e->maps[i].from, c->model) == 0) {
            to = e->maps[i].to;
        }
    }
    if (to == NULL) {
        return TG_OK;
    }
    esc[0] = '"';
    tlen = 1 + tg_json_escape(esc + 1, sizeof(esc) - 2, to, strlen(to));
    esc[tlen++] = '"';
    p = malloc(n - vlen + tlen);
    if (p == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(%zu) for the renamed request failed",
               n - vlen + tlen);
        return TG_ERROR;
    }
    memcpy(p, src, off);
    memcpy(p + off, esc, tlen);
    memcpy(p + off + tlen, src + off + vlen, n - off - vlen);
    c->u.body = p;
    c->u.body_len = n - vlen + tlen;
    *body = p;
    *len = c->u.body_len;
    return TG_OK;
}


/*
 * Configure <easy> for <c>'s request to endpoint <e>: URL, headers, the
 * body (renamed model, if <e> maps it) and <e>'s transport (proxy, connect
 * and total timeouts, TLS verification).  TG_OK, or TG_ERROR when out of
 * memory or the URL is too long; the caller frees u->headers and u->body.
 */
static int
tg_proxy_easy_setup(tg_conn_t *c, CURL *easy, const tg_conf_endpoint_t *e)
{
    const tg_conf_t *conf = c->w->conf;
    const char *body;
    char url[4096];
    size_t blen;
    long verify = e->tls_verify ? 1L : 0L;
    int n;

    n = snprintf(url, sizeof(url), "%s%.*s", e->url, (int)c->req.uri.len,
                 c->req.uri.data);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        return TG_ERROR;
    }
    if (tg_proxy_body(c, e, &body, &blen) != TG_OK) {
        return TG_ERROR;
    }
    c->u.headers = tg_proxy_headers(c, e);
    if (c->u.headers == NULL) {
        return TG_ERROR;
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->u.headers);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_proxy_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, tg_proxy_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)e->connect_timeout_ms);
    if (e->total_timeout_ms > 0) {
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)e->total_timeout_ms);
    }
    /* The endpoint's proxy, or none: "" also keeps curl from reading the
     * http_proxy/https_proxy variables, so the config alone decides. */
    curl_easy_setopt(easy, CURLOPT_PROXY, e->proxy);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)conf->upstream_buffer);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Waiting for a connection that might multiplex only makes sense
     * where HTTP/2 can be negotiated, over TLS.  On plain HTTP the wait
     * never ends in multiplexing: it holds every new transfer back until
     * a busy HTTP/1.1 connection frees up, so concurrent streams queue
     * behind each other. */
    if (strncasecmp(e->url, "https://", 8) == 0) {
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    }
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, tg_proxy_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, c->w->proxy);
    return TG_OK;
}


/*
 * Choose the endpoint of <c>'s next attempt (tg_route_pick) and claim its
 * place with tg_shm_ep_admit.  An endpoint whose half-open probe another
 * process took between the choice and the claim is set aside for this
 * request (marked tried) and the choice is made again; each round sets
 * one more aside, so this ends.  Returns the index, with u->probe set when
 * the attempt is the endpoint's probe, or -1.
 */
static int
tg_proxy_choose(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    const tg_conf_t *conf = w->conf;
    tg_upstream_t *u = &c->u;
    int idx, rc;

    u->probe = false;
    while ((idx = tg_route_pick(c)) >= 0) {
        rc = tg_shm_ep_admit(
            tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS), (uint32_t)idx),
            tg_proxy_pid(), tg_time_wall_ms(),
            conf->groups[conf->endpoints[idx].group].cooldown_ms,
            tg_shm_events(w->shm));
        if (rc != TG_SHM_EP_DENY) {
            u->probe = rc == TG_SHM_EP_PROBE;
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
tg_proxy_unclaim(tg_conn_t *c, int idx)
{
    int32_t me = tg_proxy_pid();

    tg_shm_ep_t *e =
        tg_shm_ep_get(tg_shm_table(c->w->shm, TG_SHM_T_EPS), (uint32_t)idx);

    if (c->u.probe) {
        atomic_compare_exchange_strong(&e->probe_pid, &me, 0);
        c->u.probe = false;
    }
}


/*
 * No endpoint can take <c>'s first attempt.  When that is because every
 * endpoint of its group and API is cooling down, open or out for a while
 * (upstream rate limits), answer 429 with the shortest wait as
 * retry-after, as the upstream itself would, rather than a 503.  Returns
 * true after answering, false when no endpoint has such a deadline.
 */
static bool
tg_proxy_all_waiting(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    int style =
        (c->api == TG_API_OPENAI) ? TG_STYLE_OPENAI : TG_STYLE_ANTHROPIC;
    uint64_t now = tg_time_wall_ms(), wait, best = 0;
    char hdr[64];
    size_t i;

    for (i = 0; i < conf->nendpoints; i++) {
        const tg_conf_endpoint_t *e = &conf->endpoints[i];

        if (!e->enabled || e->style != style ||
            (c->have_key && e->group != c->key.group)) {
            continue;
        }
        wait = tg_shm_ep_wait_ms(
            tg_shm_ep_get(tg_shm_table(c->w->shm, TG_SHM_T_EPS), (uint32_t)i),
            now);
        if (wait == 0) {
            return false;
        }
        best = (best == 0 || wait < best) ? wait : best;
    }
    if (best == 0) {
        return false;
    }
    snprintf(hdr, sizeof(hdr), "retry-after: %llu\r\n",
             (unsigned long long)((best + 999) / 1000));
    c->outcome = TG_USAGE_REJECTED;
    tg_conn_send_error(c, 429, "rate_limit_error", "rate_limit_exceeded",
                       "every upstream endpoint is rate limited or cooling "
                       "down; retry later",
                       hdr);
    return true;
}


/* See proxy.h. */
void
tg_proxy_start(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_proxy_t *px = w->proxy;
    tg_upstream_t *u = &c->u;
    const tg_conf_endpoint_t *e;
    CURLMcode mrc;
    CURL *easy;
    int idx;

    c->state = TG_CONN_PROXY;
    idx = tg_proxy_choose(c);
    if (idx < 0 && u->attempts == 0 && tg_proxy_all_waiting(c)) {
        return;
    }
    if (idx < 0) {
        c->outcome = TG_USAGE_UPSTREAM_ERROR;
        if (u->attempts == 0) {
            tg_conn_send_error(c, 503, "api_error", NULL,
                               "no upstream endpoint is available for this "
                               "request",
                               NULL);
        } else {
            tg_conn_send_error(c, 502, "api_error", NULL,
                               "all upstream endpoints failed", NULL);
        }
        return;
    }
    e = &w->conf->endpoints[idx];
    u->endpoint = idx;
    u->tried[(uint32_t)idx >> 6] |= 1ull << ((uint32_t)idx & 63);
    u->attempts++;
    u->status = 0;
    u->head_done = u->committed = u->chunked = u->paused = u->discard = false;
    u->last_error[0] = '\0';
    u->start_us = tg_time_mono_us();
    /* The attempt timer (tg_proxy_attempt_timer_handler) reads these. */
    u->first_byte_timeout_ms = e->first_byte_timeout_ms;
    u->read_timeout_ms = e->read_timeout_ms;
    easy = tg_proxy_easy_get(px);
    if (easy == NULL || tg_proxy_easy_setup(c, easy, e) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "setting up the upstream request failed");
        if (easy != NULL) {
            tg_proxy_easy_put(px, easy);
        }
        curl_slist_free_all(u->headers);
        u->headers = NULL;
        free(u->body);
        u->body = NULL;
        tg_proxy_unclaim(c, idx);
        tg_conn_send_error(c, 503, "api_error", NULL, "out of memory", NULL);
        return;
    }
    mrc = curl_multi_add_handle(px->multi, easy);
    if (mrc != CURLM_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_add_handle() failed (%s)",
               curl_multi_strerror(mrc));
        tg_proxy_easy_put(px, easy);
        curl_slist_free_all(u->headers);
        u->headers = NULL;
        free(u->body);
        u->body = NULL;
        tg_proxy_unclaim(c, idx);
        tg_conn_send_error(c, 503, "api_error", NULL,
                           "cannot start the upstream request", NULL);
        return;
    }
    u->easy = easy;
    atomic_fetch_add_explicit(&w->proc->inflight, 1, memory_order_relaxed);
    tg_shm_ep_start(
        tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS), (uint32_t)idx),
        &w->ep_mine[idx]);
    u->timer.handler = tg_proxy_attempt_timer_handler;
    u->timer.data = c;
    tg_ev_timer_add(w->loop, &u->timer, u->first_byte_timeout_ms);
}


/*
 * Record the end of <c>'s attempt (curl result <rc>) in its endpoint's
 * shared state: classify it (worker/failover.h), then update the counters,
 * the breaker, a cool-down or a take-out (shm/ep.h), publishing any
 * transition as an event.  A failed attempt's cause replaces
 * u->last_error.  Must run before tg_proxy_release (it reads the handle).
 */
static void
tg_proxy_ep_finish(tg_conn_t *c, CURLcode rc)
{
    tg_worker_t *w = c->w;
    tg_upstream_t *u = &c->u;
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

    memset(&o, 0, sizeof(o));
    o.verdict = fo.verdict;
    o.probe = u->probe;
    o.error = (in.transport != 0) ? 1000u + (uint32_t)rc : (uint32_t)u->status;
    o.latency_us = u->first_byte_us ? u->first_byte_us - u->start_us : 0;
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
 * Answer <c> when its last attempt failed before anything reached the
 * client and no other endpoint may take it.  A drained retryable status
 * (the retry became impossible after its head: the deadline passed, or
 * the other endpoints became unavailable) is reported in kind, so SDKs
 * back off on a 429 or 529 as they would from the upstream itself.
 */
static void
tg_proxy_fail(tg_conn_t *c, CURLcode rc, int status, int64_t retry_after_ms)
{
    char extra[64];

    c->outcome = TG_USAGE_UPSTREAM_ERROR;
    if (c->u.discard && status == 429) {
        snprintf(extra, sizeof(extra), "retry-after: %lld\r\n",
                 (long long)(retry_after_ms > 0 ? (retry_after_ms + 999) / 1000
                                                : 1));
        tg_conn_send_error(c, 429, "rate_limit_error", "rate_limit_exceeded",
                           "upstream endpoints are rate limited", extra);
    } else if (c->u.discard && status == 529) {
        tg_conn_send_error(c, 529, "overloaded_error", NULL,
                           "upstream endpoints are overloaded", NULL);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        c->outcome = TG_USAGE_TIMEOUT;
        tg_conn_send_error(c, 504, "timeout_error", NULL, "upstream timed out",
                           NULL);
    } else {
        tg_conn_send_error(c, 502, "api_error", NULL, "upstream request failed",
                           NULL);
    }
}


/*
 * End <c>'s current attempt with curl result <rc> (<why> overrides curl's
 * text): retry on another endpoint when nothing reached the client and the
 * request may be retried (tg_proxy_may_retry), otherwise finish the
 * response, the broken stream or the error answer.  Each failed attempt is
 * logged at info with its endpoint and cause; the access log counts them.
 */
static void
tg_proxy_attempt_end(tg_conn_t *c, CURLcode rc, const char *why)
{
    tg_upstream_t *u = &c->u;
    const char *ep = c->w->conf->endpoints[u->endpoint].name;
    bool rate = tg_proxy_rate_limited(u);
    int64_t ra = tg_proxy_retry_after(u);
    int status = u->status;

    if (rc != CURLE_OK && rc != CURLE_HTTP_RETURNED_ERROR) {
        snprintf(u->last_error, sizeof(u->last_error), "%s",
                 why ? why : curl_easy_strerror(rc));
    }
    /* The access log lists every attempt: endpoint and what it gave. */
    if (u->attempts >= 1 && u->attempts <= 8) {
        u->hist_ep[u->attempts - 1] = (uint16_t)u->endpoint;
        u->hist_status[u->attempts - 1] =
            (uint16_t)((u->status != 0 || rc == CURLE_OK ||
                        rc == CURLE_HTTP_RETURNED_ERROR)
                           ? u->status
                           : 1000 + (int)rc);
    }
    tg_proxy_ep_finish(c, rc);
    tg_proxy_release(c);
    if (u->committed) {
        tg_usage_finish(&c->usage);
        if (rc == CURLE_OK) {
            if (u->chunked && tg_buf_append(&c->out, "0\r\n\r\n", 5) != TG_OK) {
                c->broken = true;
            }
        } else {
            tg_log(TG_LOG_WARN, 0, "upstream %s failed mid-response: %s", ep,
                   u->last_error);
            c->broken = true;
            c->outcome = TG_USAGE_BROKEN;
        }
        tg_conn_proxy_done(c);
        return;
    }
    /* Nothing was sent to the client: this attempt can be retried. */
    if (tg_proxy_may_retry(c, rate)) {
        tg_log(TG_LOG_INFO, 0, "upstream %s attempt %d failed: %s; retrying",
               ep, u->attempts, u->last_error);
        if (rate) {
            u->rate_retries++;
        }
        tg_proxy_start(c);
        return;
    }
    tg_log(TG_LOG_INFO, 0, "upstream %s attempt %d failed: %s; giving up", ep,
           u->attempts, u->last_error);
    tg_proxy_fail(c, rc, status, ra);
}


/* Collect finished transfers from curl. */
static void
tg_proxy_check_done(tg_proxy_t *px)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(px->multi, &left)) != NULL) {
        tg_conn_t *c = NULL;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c == NULL || c->u.easy != msg->easy_handle) {
            continue;
        }
        if (c->u.discard) {
            /* A retryable status was received and its body drained. */
            tg_proxy_attempt_end(c, CURLE_HTTP_RETURNED_ERROR, NULL);
        } else {
            tg_proxy_attempt_end(c, msg->data.result, NULL);
        }
    }
}


/* See proxy.h. */
void
tg_proxy_abort(tg_conn_t *c)
{
    if (c->u.easy != NULL) {
        tg_proxy_ep_finish(c, CURLE_ABORTED_BY_CALLBACK);
    }
    tg_proxy_release(c);
}


/* See proxy.h. */
void
tg_proxy_resume(tg_conn_t *c)
{
    tg_upstream_t *u = &c->u;

    if (!u->paused || u->easy == NULL) {
        return;
    }
    u->paused = false;
    u->last_io = tg_ev_now(c->w->loop);
    /* curl may call the write callback from here with the bytes it held
     * back; that only appends to c->out. */
    curl_easy_pause(u->easy, CURLPAUSE_CONT);
    tg_proxy_check_done(c->w->proxy);
}
