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
 *      to decode (no CURLOPT_ACCEPT_ENCODING), and the client's own
 *      accept-encoding header is forwarded as is.
 */
#include "worker/proxy.h"
#include "core/core.h"
#include "core/log.h"
#include "worker/route.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TG_PROXY_MAX_RETRIES 2
#define TG_PROXY_FREE_EASY   256
#define TG_PROXY_HEAD_MAX    65536 /* response head bytes from upstream */

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
        u->encoded = false;
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
        char num[24];

        if (value.len == 0 || value.len >= sizeof(num)) {
            return 0;
        }
        memcpy(num, value.data, value.len);
        num[value.len] = '\0';
        u->content_length = strtoll(num, NULL, 10);
        return len;
    }
    if (tg_http_is_hop_by_hop(name)) {
        return len;
    }
    if (tg_str_caseeq(name, tg_str_lit("content-encoding")) &&
        !tg_str_caseeq(value, tg_str_lit("identity"))) {
        u->encoded = true;
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


/* Statuses worth another endpoint when nothing reached the client yet. */
static bool
tg_proxy_retryable(int status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504 || status == 529;
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

    if (tg_proxy_retryable(u->status) && u->attempts <= TG_PROXY_MAX_RETRIES &&
        tg_route_has_candidate(c)) {
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
    tg_usage_init(&c->usage, c->api == TG_API_OPENAI, u->stream, u->encoded);
    c->usage_on = true;
    u->first_byte_us = tg_time_mono_us();
    u->last_io = tg_ev_now(c->w->loop);
    tg_ev_timer_add(c->w->loop, &u->timer, c->w->conf->read_timeout_ms);
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
        /* Keep the start of the error body for the log. */
        size_t have = strlen(u->last_error);

        if (have < sizeof(u->last_error) - 2) {
            size_t take = TG_MIN(n, sizeof(u->last_error) - have - 2);
            size_t i;

            u->last_error[have++] = ' ';
            for (i = 0; i < take; i++) {
                u->last_error[have++] =
                    (ptr[i] >= 0x20 && ptr[i] < 0x7f) ? ptr[i] : ' ';
            }
            u->last_error[have] = '\0';
        }
        return n;
    }
    if (!u->committed) {
        return 0;
    }
    if (tg_buf_len(&c->out) >= c->w->conf->stream_buffer) {
        u->paused = true;
        return CURL_WRITEFUNC_PAUSE;
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
    const tg_conf_t *conf = c->w->conf;
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
    if (idle < conf->read_timeout_ms) {
        tg_ev_timer_add(loop, t, conf->read_timeout_ms - idle);
        return;
    }
    tg_proxy_attempt_end(c, CURLE_OPERATION_TIMEDOUT,
                         "no data from upstream within read_timeout");
}


/* Build the upstream request headers: the client's end-to-end headers,
 * minus its credential, plus the endpoint's.  NULL when out of memory. */
static struct curl_slist *
tg_proxy_headers(tg_conn_t *c, const tg_conf_endpoint_t *e)
{
    static const tg_str_t drop[] = {
        {"host", 4},      {"content-length", 14}, {"expect", 6},
        {"x-api-key", 9}, {"authorization", 13},
    };
    const tg_http_req_t *r = &c->req;
    struct curl_slist *list = NULL, *t;
    char line[8192];
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
        if (h->value.len == 0) {
            /* "Name;" is curl's way of sending an empty header. */
            n = snprintf(line, sizeof(line), "%.*s;", (int)h->name.len,
                         h->name.data);
        } else {
            n = snprintf(line, sizeof(line), "%.*s: %.*s", (int)h->name.len,
                         h->name.data, (int)h->value.len, h->value.data);
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
    tg_ev_timer_del(c->w->loop, &u->timer);
}


/* Configure <easy> for <c>'s request to endpoint <e>. */
static int
tg_proxy_easy_setup(tg_conn_t *c, CURL *easy, const tg_conf_endpoint_t *e)
{
    const tg_conf_t *conf = c->w->conf;
    char url[4096];
    int n;

    n = snprintf(url, sizeof(url), "%s%.*s", e->url, (int)c->req.uri.len,
                 c->req.uri.data);
    if (n < 0 || (size_t)n >= sizeof(url)) {
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
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, tg_conn_body(c));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)c->req.content_length);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_proxy_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, tg_proxy_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)conf->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)conf->upstream_buffer);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, conf->tls_verify ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, conf->tls_verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, tg_proxy_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, c->w->proxy);
    return TG_OK;
}


/* See proxy.h. */
void
tg_proxy_start(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_proxy_t *px = w->proxy;
    tg_upstream_t *u = &c->u;
    CURLMcode mrc;
    CURL *easy;
    int idx;

    c->state = TG_CONN_PROXY;
    idx = tg_route_pick(c);
    if (idx < 0) {
        c->outcome = TG_USAGE_UPSTREAM_ERROR;
        if (u->attempts == 0) {
            tg_conn_send_error(c, 503, "api_error", NULL,
                               "no upstream endpoint serves this API", NULL);
        } else {
            tg_conn_send_error(c, 502, "api_error", NULL,
                               "all upstream endpoints failed", NULL);
        }
        return;
    }
    u->endpoint = idx;
    u->tried |= 1u << idx;
    u->attempts++;
    u->status = 0;
    u->head_done = u->committed = u->chunked = u->paused = u->discard = false;
    u->last_error[0] = '\0';
    u->start_us = tg_time_mono_us();
    easy = tg_proxy_easy_get(px);
    if (easy == NULL ||
        tg_proxy_easy_setup(c, easy, &w->conf->endpoints[idx]) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "setting up the upstream request failed");
        if (easy != NULL) {
            tg_proxy_easy_put(px, easy);
        }
        curl_slist_free_all(u->headers);
        u->headers = NULL;
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
    tg_ev_timer_add(w->loop, &u->timer, w->conf->first_byte_timeout_ms);
}


/*
 * End <c>'s current attempt with curl result <rc> (<why> overrides curl's
 * text): retry when nothing reached the client and another endpoint can
 * take it, otherwise finish the response or the broken stream.
 */
/* Record the end of the attempt in the endpoint's shared counters. */
static void
tg_proxy_ep_finish(tg_conn_t *c, CURLcode rc)
{
    tg_worker_t *w = c->w;
    tg_upstream_t *u = &c->u;
    bool ok;
    uint32_t err;

    /* The endpoint failed when it did not answer, or answered with a
     * status that says it is unwell; a client's 4xx is not its fault. */
    ok = rc == CURLE_OK && !u->discard && u->status != 0 && u->status < 500 &&
         u->status != 429;
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        ok = true; /* the client left; says nothing about the endpoint */
    }
    err = (rc != CURLE_OK && u->status == 0) ? 1000u + (uint32_t)rc
                                             : (uint32_t)u->status;
    tg_shm_ep_finish(tg_shm_ep_get(tg_shm_table(w->shm, TG_SHM_T_EPS),
                                   (uint32_t)u->endpoint),
                     &w->ep_mine[u->endpoint], ok,
                     u->first_byte_us ? u->first_byte_us - u->start_us : 0, err,
                     tg_time_wall_ms());
}


static void
tg_proxy_attempt_end(tg_conn_t *c, CURLcode rc, const char *why)
{
    tg_upstream_t *u = &c->u;
    const char *ep = c->w->conf->endpoints[u->endpoint].name;

    tg_proxy_ep_finish(c, rc);
    tg_proxy_release(c);
    if (rc != CURLE_OK && u->last_error[0] == '\0') {
        snprintf(u->last_error, sizeof(u->last_error), "%s",
                 why ? why : curl_easy_strerror(rc));
    }
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
    tg_log(TG_LOG_WARN, 0, "upstream %s attempt %d failed: %s", ep, u->attempts,
           u->last_error);
    if (u->attempts <= TG_PROXY_MAX_RETRIES && tg_route_has_candidate(c)) {
        tg_proxy_start(c);
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        c->outcome = TG_USAGE_TIMEOUT;
        tg_conn_send_error(c, 504, "timeout_error", NULL, "upstream timed out",
                           NULL);
    } else {
        c->outcome = TG_USAGE_UPSTREAM_ERROR;
        tg_conn_send_error(c, 502, "api_error", NULL, "upstream request failed",
                           NULL);
    }
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
