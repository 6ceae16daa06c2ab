/*
 * admin/webhook.h
 *      Outbound HTTP requests of the admin API on admin's event loop: the
 *      verification-code webhook and the endpoint `test`.
 *
 * NOTES
 *      Admin only; never blocks: one libcurl multi handle whose sockets and
 *      timer live in admin's epoll loop (as admin/health.c does for its
 *      probes).  At most TG_WEBHOOK_MAX transfers run at once; more are
 *      refused.  Request bodies and header values may hold secrets (a
 *      login code, an upstream credential): they are copied into memory
 *      owned here, wiped when the transfer ends, and never logged.
 */
#ifndef TG_ADMIN_WEBHOOK_H
#define TG_ADMIN_WEBHOOK_H

#include "core/ev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_WEBHOOK_MAX      32   /* transfers in flight */
#define TG_WEBHOOK_BODY_MAX 2048 /* response bytes kept for the caller */

/* One request. */
typedef struct {
    const char *method;         /* "GET" or "POST" */
    const char *url;            /* http(s) only */
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    const char *body; /* POST body, may be NULL */
    size_t len;
    uint32_t timeout_ms; /* whole transfer */
    bool tls_verify;
    const char *proxy; /* "" or NULL: none */
} tg_webhook_req_t;

/* What came back; valid only during the callback. */
typedef struct {
    int status;          /* HTTP status, 0 when no response */
    int transport;       /* CURLcode, 0 when the exchange completed */
    uint64_t latency_us; /* start to end */
    const char *error;   /* curl's text for <transport>, "" otherwise */
    const char *body;    /* first TG_WEBHOOK_BODY_MAX bytes of the body */
    size_t body_len;
} tg_webhook_result_t;

typedef void (*tg_webhook_done_cb)(void *ctx, const tg_webhook_result_t *r);

/* Set up on <loop>.  TG_OK or TG_ERROR (logged). */
int tg_webhook_init(tg_ev_loop_t *loop);

/* Abort every transfer (no callbacks) and free everything. */
void tg_webhook_fini(void);

/* Start <req>; <cb>(<ctx>, result) runs once when it ends.  TG_OK, or
 * TG_ERROR (too many in flight, out of memory; logged without the body);
 * <cb> is then not called. */
int tg_webhook_send(const tg_webhook_req_t *req, tg_webhook_done_cb cb,
                    void *ctx);

/* <ctx> is going away: abort its transfers without calling back. */
void tg_webhook_forget(void *ctx);

/*
 * The start of the answer's body in <res> as text for a message: at most
 * <cap> - 1 bytes into <out>, NUL-terminated, stopping at a NUL byte,
 * control characters as spaces and bytes that are not UTF-8 as '?' (so
 * it can go into JSON).  Returns its length.
 */
size_t tg_webhook_snippet(const tg_webhook_result_t *res, char *out,
                          size_t cap);

#endif /* TG_ADMIN_WEBHOOK_H */
