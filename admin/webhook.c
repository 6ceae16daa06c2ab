/*
 * admin/webhook.c
 *      libcurl multi on admin's loop for the admin API's own requests.
 *
 * NOTES
 *      Admin only; never blocks: the transfers run on core/ev_curl, the
 *      libcurl multi glue the worker and the health checker use too.  Transfers
 * sit in a fixed table of TG_WEBHOOK_MAX slots; the slot index is the easy
 * handle's private pointer.  A caller that goes away (its connection closed)
 * calls tg_webhook_forget, which aborts its transfers: curl never calls back
 * into freed memory.  Bodies may hold a login code or a credential: they live
 * in slot memory that is wiped at the end, and no message here ever includes a
 * body or a header value.
 */
#include "admin/webhook.h"
#include "core/core.h"
#include "core/ev_curl.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    tg_ev_curl_t *m; /* libcurl multi on admin's loop */
    tg_webhook_xfer_t xfers[TG_WEBHOOK_MAX];
} tg_webhook;


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
        tg_ev_curl_remove(tg_webhook.m, x->easy);
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


/* A transfer finished (tg_ev_curl calls this outside curl's own
 * callbacks): hand the result back to its owner. */
static void
tg_webhook_done(void *data, CURL *easy, CURLcode rc)
{
    tg_webhook_result_t r;
    tg_webhook_done_cb cb;
    tg_webhook_xfer_t *x;
    void *priv = NULL, *ctx;
    long code = 0;
    size_t i;

    (void)data;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv);
    i = (size_t)(uintptr_t)priv;
    if (i >= TG_WEBHOOK_MAX || tg_webhook.xfers[i].easy != easy) {
        return;
    }
    x = &tg_webhook.xfers[i];
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    r.status = (int)code;
    r.transport = rc == CURLE_OK ? 0 : (int)rc;
    r.error = r.transport ? curl_easy_strerror(rc) : "";
    r.latency_us = tg_time_mono_us() - x->started_us;
    r.body = x->resp;
    r.body_len = x->resp_len;
    cb = x->cb;
    ctx = x->ctx;
    /* The slot is released only after the callback, which reads the
     * result from it; detached first, so that a tg_webhook_forget from
     * inside the callback leaves it alone. */
    x->cb = NULL;
    x->ctx = NULL;
    if (cb != NULL) {
        cb(ctx, &r);
    }
    tg_webhook_release(x);
}


/* See webhook.h. */
int
tg_webhook_init(tg_ev_loop_t *loop)
{
    memset(&tg_webhook, 0, sizeof(tg_webhook));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tg_log(TG_LOG_ERR, 0, "curl_global_init() failed");
        return TG_ERROR;
    }
    tg_webhook.m = tg_ev_curl_create(loop, tg_webhook_done, NULL);
    if (tg_webhook.m == NULL) {
        curl_global_cleanup();
        return TG_ERROR;
    }
    return TG_OK;
}


/* See webhook.h. */
void
tg_webhook_fini(void)
{
    size_t i;

    if (tg_webhook.m == NULL) {
        return;
    }
    for (i = 0; i < TG_WEBHOOK_MAX; i++) {
        if (tg_webhook.xfers[i].easy != NULL) {
            tg_webhook_release(&tg_webhook.xfers[i]);
        }
    }
    tg_ev_curl_destroy(tg_webhook.m);
    tg_webhook.m = NULL;
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
}


/* See webhook.h. */
int
tg_webhook_send(const tg_webhook_req_t *req, tg_webhook_done_cb cb, void *ctx)
{
    tg_webhook_xfer_t *x = NULL;
    struct curl_slist *t;
    size_t i;

    for (i = 0; tg_webhook.m != NULL && i < TG_WEBHOOK_MAX; i++) {
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
    if (tg_ev_curl_add(tg_webhook.m, x->easy) != TG_OK) {
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


/* See webhook.h. */
size_t
tg_webhook_snippet(const tg_webhook_result_t *res, char *out, size_t cap)
{
    size_t n = 0;
    unsigned char c;

    if (cap == 0) {
        return 0;
    }
    for (; n + 1 < cap && n < res->body_len; n++) {
        c = (unsigned char)res->body[n];
        if (c == '\0') {
            break;
        }
        out[n] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    out[n] = '\0';
    tg_utf8_fix(out);
    return n;
}
