/*
 * admin/webhook.c
 *      libcurl multi on admin's loop for the admin API's own requests.
 *
 * NOTES
 *      Admin only; never blocks: curl resolves names on its own thread and
 *      every socket is driven by epoll through CURLMOPT_SOCKETFUNCTION and
 *      CURLMOPT_TIMERFUNCTION.  Transfers sit in a fixed table of
 *      TG_WEBHOOK_MAX slots; the slot index is the easy handle's private
 *      pointer.  A caller that goes away (its connection closed) calls
 *      tg_webhook_forget, which aborts its transfers: curl never calls
 *      back into freed memory.  Bodies may hold a login code or a
 *      credential: they live in slot memory that is wiped at the end, and
 *      no message here ever includes a body or a header value.
 */
#include "admin/webhook.h"
#include "core/core.h"
#include "core/log.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    CURL *easy;                 /* NULL when the slot is free */
    struct curl_slist *headers; /* request headers (may hold secrets) */
    char *body;                 /* our copy of the request body */
    size_t body_len;
    char resp[TG_WEBHOOK_BODY_MAX]; /* first bytes of the response */
    size_t resp_len;
    uint64_t started_us;
    tg_webhook_done_cb cb;
    void *ctx;
} tg_webhook_xfer_t;

static struct {
    tg_ev_loop_t *loop;
    CURLM *multi;
    tg_ev_timer_t curl_timer;
    int running;
    tg_webhook_xfer_t xfers[TG_WEBHOOK_MAX];
} tg_webhook;

static void tg_webhook_check_done(void);


static void
tg_webhook_sock_handler(tg_ev_loop_t *loop, int fd, void *data, uint32_t events)
{
    int flags = 0;

    (void)loop;
    (void)data;
    if (events & EPOLLIN) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & EPOLLOUT) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        flags |= CURL_CSELECT_ERR;
    }
    curl_multi_socket_action(tg_webhook.multi, fd, flags, &tg_webhook.running);
    tg_webhook_check_done();
}


static int
tg_webhook_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    uint32_t mask = 0;

    (void)easy;
    (void)userp;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        tg_ev_del(tg_webhook.loop, s);
        return 0;
    }
    if (what & CURL_POLL_IN) {
        mask |= EPOLLIN;
    }
    if (what & CURL_POLL_OUT) {
        mask |= EPOLLOUT;
    }
    if (tg_ev_mask(tg_webhook.loop, s) != 0) {
        return tg_ev_mod(tg_webhook.loop, s, mask) == TG_OK ? 0 : -1;
    }
    return tg_ev_add(tg_webhook.loop, s, mask, tg_webhook_sock_handler, NULL) ==
                   TG_OK
               ? 0
               : -1;
}


static void
tg_webhook_curl_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    (void)loop;
    (void)t;
    curl_multi_socket_action(tg_webhook.multi, CURL_SOCKET_TIMEOUT, 0,
                             &tg_webhook.running);
    tg_webhook_check_done();
}


static int
tg_webhook_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    (void)userp;
    if (timeout_ms < 0) {
        tg_ev_timer_del(tg_webhook.loop, &tg_webhook.curl_timer);
    } else {
        tg_ev_timer_add(tg_webhook.loop, &tg_webhook.curl_timer,
                        (uint64_t)timeout_ms);
    }
    return 0;
}


/* curl closes a socket: unregister it first, so that a new fd with the
 * same number starts clean. */
static int
tg_webhook_close_cb(void *clientp, curl_socket_t s)
{
    (void)clientp;
    tg_ev_del(tg_webhook.loop, s);
    return close(s);
}


/* Keep the first bytes of the response; count the rest away. */
static size_t
tg_webhook_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    tg_webhook_xfer_t *x = userdata;
    size_t n = size * nmemb, room = sizeof(x->resp) - x->resp_len;

    memcpy(x->resp + x->resp_len, ptr, TG_MIN(n, room));
    x->resp_len += TG_MIN(n, room);
    return n;
}


/* Release slot <x>, wiping what may be secret. */
static void
tg_webhook_release(tg_webhook_xfer_t *x)
{
    struct curl_slist *h;

    if (x->easy != NULL) {
        curl_multi_remove_handle(tg_webhook.multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    for (h = x->headers; h != NULL; h = h->next) {
        OPENSSL_cleanse(h->data, strlen(h->data));
    }
    curl_slist_free_all(x->headers);
    if (x->body != NULL) {
        OPENSSL_cleanse(x->body, x->body_len);
    }
    free(x->body);
    OPENSSL_cleanse(x->resp, x->resp_len);
    memset(x, 0, sizeof(*x));
}


/* Hand finished transfers back to their owners. */
static void
tg_webhook_check_done(void)
{
    tg_webhook_result_t r;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(tg_webhook.multi, &left)) != NULL) {
        tg_webhook_done_cb cb;
        tg_webhook_xfer_t *x;
        void *priv = NULL, *ctx;
        long code = 0;
        size_t i;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&priv);
        i = (size_t)(uintptr_t)priv;
        if (i >= TG_WEBHOOK_MAX ||
            tg_webhook.xfers[i].easy != msg->easy_handle) {
            continue;
        }
        x = &tg_webhook.xfers[i];
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        r.status = (int)code;
        r.transport = msg->data.result == CURLE_OK ? 0 : (int)msg->data.result;
        r.error = r.transport ? curl_easy_strerror(msg->data.result) : "";
        r.latency_us = tg_time_mono_us() - x->started_us;
        r.body = x->resp;
        r.body_len = x->resp_len;
        cb = x->cb;
        ctx = x->ctx;
        /* The slot is released only after the callback, which reads the
         * result from it; detached first, so that a tg_webhook_forget
         * from inside the callback leaves it alone. */
        x->cb = NULL;
        x->ctx = NULL;
        cb(ctx, &r);
        tg_webhook_release(x);
    }
}


/* See webhook.h. */
int
tg_webhook_init(tg_ev_loop_t *loop)
{
    memset(&tg_webhook, 0, sizeof(tg_webhook));
    tg_webhook.loop = loop;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_global_init() failed");
        return TG_ERROR;
    }
    tg_webhook.multi = curl_multi_init();
    if (tg_webhook.multi == NULL) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_init() failed");
        curl_global_cleanup();
        return TG_ERROR;
    }
    curl_multi_setopt(tg_webhook.multi, CURLMOPT_SOCKETFUNCTION,
                      tg_webhook_socket_cb);
    curl_multi_setopt(tg_webhook.multi, CURLMOPT_TIMERFUNCTION,
                      tg_webhook_timer_cb);
    tg_webhook.curl_timer.handler = tg_webhook_curl_timer_handler;
    return TG_OK;
}


/* See webhook.h. */
void
tg_webhook_fini(void)
{
    size_t i;

    if (tg_webhook.multi == NULL) {
        return;
    }
    tg_ev_timer_del(tg_webhook.loop, &tg_webhook.curl_timer);
    for (i = 0; i < TG_WEBHOOK_MAX; i++) {
        if (tg_webhook.xfers[i].easy != NULL) {
            tg_webhook_release(&tg_webhook.xfers[i]);
        }
    }
    curl_multi_cleanup(tg_webhook.multi);
    tg_webhook.multi = NULL;
    curl_global_cleanup();
}


/* Options of slot <x> (index <i>) for <req>. */
static void
tg_webhook_setopts(tg_webhook_xfer_t *x, size_t i, const tg_webhook_req_t *req)
{
    long verify = req->tls_verify ? 1L : 0L;
    CURL *easy = x->easy;

    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)(uintptr_t)i);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)x->body_len);
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "tollgate-admin/" TG_VERSION);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, tg_webhook_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(easy, CURLOPT_PROXY, req->proxy ? req->proxy : "");
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYPEER, verify);
    curl_easy_setopt(easy, CURLOPT_PROXY_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, tg_webhook_close_cb);
}


/* See webhook.h. */
int
tg_webhook_send(const tg_webhook_req_t *req, tg_webhook_done_cb cb, void *ctx)
{
    tg_webhook_xfer_t *x = NULL;
    struct curl_slist *t;
    CURLMcode mrc;
    size_t i;

    for (i = 0; tg_webhook.multi != NULL && i < TG_WEBHOOK_MAX; i++) {
        if (tg_webhook.xfers[i].easy == NULL) {
            x = &tg_webhook.xfers[i];
            break;
        }
    }
    if (x == NULL) {
        tg_log(TG_LOG_WARN, 0, "too many admin requests in flight");
        return TG_ERROR;
    }
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        goto failed;
    }
    for (i = 0; i < req->nheaders; i++) {
        t = curl_slist_append(x->headers, req->headers[i]);
        if (t == NULL) {
            goto failed;
        }
        x->headers = t;
    }
    if (req->len > 0) {
        x->body = malloc(req->len);
        if (x->body == NULL) {
            goto failed;
        }
        memcpy(x->body, req->body, req->len);
        x->body_len = req->len;
    }
    tg_webhook_setopts(x, (size_t)(x - tg_webhook.xfers), req);
    x->cb = cb;
    x->ctx = ctx;
    x->started_us = tg_time_mono_us();
    mrc = curl_multi_add_handle(tg_webhook.multi, x->easy);
    if (mrc != CURLM_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_multi_add_handle() failed (%s)",
               curl_multi_strerror(mrc));
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        tg_webhook_release(x);
        return TG_ERROR;
    }
    return TG_OK;
failed:
    tg_log(TG_LOG_ERR, 0, "setting up an admin request failed");
    tg_webhook_release(x);
    return TG_ERROR;
}


/* See webhook.h. */
void
tg_webhook_forget(void *ctx)
{
    size_t i;

    for (i = 0; i < TG_WEBHOOK_MAX; i++) {
        if (tg_webhook.xfers[i].easy != NULL &&
            tg_webhook.xfers[i].ctx == ctx) {
            tg_webhook_release(&tg_webhook.xfers[i]);
        }
    }
}
