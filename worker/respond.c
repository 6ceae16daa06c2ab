/*
 * worker/respond.c
 *      Response framing: head, body pieces, end; API-shaped error bodies.
 *
 * NOTES
 *      Worker only; pure formatting into a bounded buffer.  See respond.h.
 */
#include "worker/respond.h"
#include "core/core.h"
#include "core/json.h"

#include <stdio.h>
#include <string.h>

#define TG_RESPOND_LINE 8192 /* longest header line copied */


static int
tg_respond_put(tg_buf_t *out, const char *p, size_t n)
{
    return tg_buf_append(out, p, n);
}


/* Copy the end-to-end headers of <h>; our framing replaces the rest. */
static int
tg_respond_copy_headers(tg_buf_t *out, const tg_respond_head_t *h)
{
    size_t i;
    int rc;

    for (i = 0; i < h->nheaders; i++) {
        const tg_http_header_t *hd = &h->headers[i];

        if (tg_http_is_hop_by_hop(hd->name) ||
            tg_str_caseeq(hd->name, tg_str_lit("content-length")) ||
            hd->name.len + hd->value.len + 4 > TG_RESPOND_LINE) {
            continue;
        }
        if ((rc = tg_respond_put(out, hd->name.data, hd->name.len)) != TG_OK ||
            (rc = tg_respond_put(out, ": ", 2)) != TG_OK ||
            (rc = tg_respond_put(out, hd->value.data, hd->value.len)) !=
                TG_OK ||
            (rc = tg_respond_put(out, "\r\n", 2)) != TG_OK) {
            return rc;
        }
    }
    return TG_OK;
}


/* See respond.h. */
int
tg_respond_head(tg_respond_t *o, tg_buf_t *out, const tg_respond_head_t *h)
{
    char line[512];
    int n, k, rc;

    memset(o, 0, sizeof(*o));
    tg_buf_reset(out, 4096);
    o->status = h->status;
    o->close = h->close;
    n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", h->status,
                 tg_http_reason(h->status));
    if (h->content_type != NULL) {
        k = snprintf(line + n, sizeof(line) - (size_t)n, "content-type: %s\r\n",
                     h->content_type);
        n = (k > 0 && (size_t)k < sizeof(line) - (size_t)n) ? n + k : n;
    }
    if ((rc = tg_respond_put(out, line, (size_t)n)) != TG_OK ||
        (rc = tg_respond_copy_headers(out, h)) != TG_OK) {
        return rc;
    }
    if (h->content_length >= 0) {
        n = snprintf(line, sizeof(line), "content-length: %lld\r\n",
                     (long long)h->content_length);
    } else if (h->version >= 11) {
        o->chunked = true;
        n = snprintf(line, sizeof(line), "transfer-encoding: chunked\r\n");
    } else {
        /* An HTTP/1.0 client: the end of the body is the end of the
         * connection. */
        o->close = true;
        n = 0;
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n,
                  "x-tollgate-request-id: %016llx\r\n%s",
                  (unsigned long long)h->req_id,
                  o->close ? "connection: close\r\n" : "");
    if ((rc = tg_respond_put(out, line, (size_t)n)) != TG_OK ||
        (h->extra != NULL &&
         (rc = tg_respond_put(out, h->extra, strlen(h->extra))) != TG_OK) ||
        (rc = tg_respond_put(out, "\r\n", 2)) != TG_OK) {
        return rc;
    }
    o->committed = true;
    return TG_OK;
}


/* See respond.h. */
int
tg_respond_body(tg_respond_t *o, tg_buf_t *out, const char *p, size_t n)
{
    char hex[24];
    int k, rc;

    if (n == 0) {
        return TG_OK;
    }
    if (o->chunked) {
        k = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        if ((rc = tg_respond_put(out, hex, (size_t)k)) != TG_OK ||
            (rc = tg_respond_put(out, p, n)) != TG_OK ||
            (rc = tg_respond_put(out, "\r\n", 2)) != TG_OK) {
            return rc;
        }
    } else if ((rc = tg_respond_put(out, p, n)) != TG_OK) {
        return rc;
    }
    o->body_bytes += n;
    return TG_OK;
}


/* See respond.h. */
int
tg_respond_end(tg_respond_t *o, tg_buf_t *out)
{
    int rc = TG_OK;

    if (o->chunked && !o->ended) {
        rc = tg_respond_put(out, "0\r\n\r\n", 5);
    }
    if (rc == TG_OK) {
        o->ended = true;
    }
    return rc;
}


/* See respond.h. */
size_t
tg_respond_error_body(char *buf, size_t cap, int api, const char *type,
                      const char *code, const char *msg)
{
    char emsg[512];
    int n;

    tg_json_escape(emsg, sizeof(emsg), msg, strlen(msg));
    if (api == TG_API_OPENAI) {
        n = snprintf(buf, cap,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\","
                     "\"param\":null,\"code\":%s%s%s}}",
                     emsg, type, code ? "\"" : "", code ? code : "null",
                     code ? "\"" : "");
    } else {
        n = snprintf(buf, cap,
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                     "\"message\":\"%s\"}}",
                     type, emsg);
    }
    if (n < 0 || (size_t)n >= cap) {
        n = snprintf(buf, cap, "{\"error\":{\"message\":\"error\"}}");
    }
    return n > 0 ? (size_t)n : 0;
}
