/*
 * worker/proxy_send.c
 *      What an upstream attempt sends: URL, headers, body and the
 *      endpoint's transport options.
 *
 * NOTES
 *      Worker only; never blocks.  The client's end-to-end headers go
 *      upstream whole (hop-by-hop headers, host, content-length, expect
 *      and the client's credential are dropped; the endpoint's credential
 *      is added).  The body is the client's, or a copy with the model
 *      renamed, translated into the endpoint's API or asking for usage,
 *      given to curl as POSTFIELDS (sent with the head in one write);
 *      curl's pre-request callback shows a re-send on a reused connection
 *      that closed, which this file counts as an attempt and reports.
 */
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/decode.h"
#include "worker/proxy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/*
 * Append header <name>: <value> to <list>, formatted in <line> (<cap>
 * bytes) or, for a longer header, in a heap copy: a header the client was
 * allowed to send (the head is bounded by limits.header_bytes) is never
 * dropped.  An empty value is sent as "Name;", curl's way of sending an
 * empty header.  Returns the new list, or NULL when out of memory (<list>
 * is left as it was).
 */
static struct curl_slist *
tg_proxy_header_add(struct curl_slist *list, tg_str_t name, tg_str_t value,
                    char *line, size_t cap)
{
    struct curl_slist *t;
    size_t need = name.len + value.len + 3;
    char *p = line;

    if (need > cap && (p = malloc(need)) == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(%zu) for a request header failed", need);
        return NULL;
    }
    memcpy(p, name.data, name.len);
    if (value.len == 0) {
        p[name.len] = ';';
        p[name.len + 1] = '\0';
    } else {
        p[name.len] = ':';
        p[name.len + 1] = ' ';
        memcpy(p + name.len + 2, value.data, value.len);
        p[name.len + 2 + value.len] = '\0';
    }
    t = curl_slist_append(list, p);
    if (p != line) {
        free(p);
    }
    return t;
}


/* Whether header <name> belongs to one API (Anthropic's version and betas,
 * OpenAI's organization and project) or is the client's accept-encoding:
 * none of them goes with a translated request. */
static bool
tg_proxy_api_header(tg_str_t name)
{
    return (name.len > 10 && tg_str_caseeq((tg_str_t){name.data, 10},
                                           tg_str_lit("anthropic-"))) ||
           (name.len > 7 &&
            tg_str_caseeq((tg_str_t){name.data, 7}, tg_str_lit("openai-"))) ||
           tg_str_caseeq(name, tg_str_lit("accept-encoding"));
}


/* Build the upstream request headers: the client's end-to-end headers,
 * minus its credential, plus the endpoint's.  accept-encoding keeps only
 * the codings usage can decode, and is "identity" when none is left or
 * the client sent none (which would allow any coding), so that the tokens
 * of every response can be read.  NULL when out of memory. */
static struct curl_slist *
tg_proxy_headers(const tg_request_t *r, const tg_conf_endpoint_t *e, bool xlate)
{
    static const tg_str_t drop[] = {
        {"host", 4},      {"content-length", 14}, {"expect", 6},
        {"x-api-key", 9}, {"authorization", 13},
    };
    const tg_http_req_t *h0 = &r->head;
    struct curl_slist *list = NULL, *t;
    char line[8192], accept[1024];
    bool have_accept = false;
    tg_str_t value;
    size_t i, j;
    int n;

    for (i = 0; i < h0->nheaders; i++) {
        const tg_http_header_t *h = &h0->headers[i];
        bool skip = tg_http_is_hop_by_hop(h->name);

        for (j = 0; j < TG_NELEMS(drop) && !skip; j++) {
            skip = tg_str_caseeq(h->name, drop[j]);
        }
        if (xlate && tg_proxy_api_header(h->name)) {
            /* The client's API headers mean nothing to the other API, and
             * a translated body must come back uncompressed. */
            continue;
        }
        if (skip) {
            continue;
        }
        value = h->value;
        if (tg_str_caseeq(h->name, tg_str_lit("accept-encoding"))) {
            if (r->usage_asked) {
                /* The usage chunk is cut out of the stream: it must come
                 * in a coding Tollgate can read and leave as is. */
                continue;
            }
            value.data = accept;
            value.len = tg_decode_accept(accept, sizeof(accept), h->value);
            if (value.len == 0) {
                continue;
            }
            have_accept = true;
        }
        t = tg_proxy_header_add(list, h->name, value, line, sizeof(line));
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
    if (xlate && e->style == TG_STYLE_ANTHROPIC) {
        t = curl_slist_append(list, "anthropic-version: 2023-06-01");
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
    if (n < 0 || (size_t)n >= sizeof(line)) {
        goto failed;
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


/*
 * The client's body translated for an endpoint of the other API style,
 * with the model renamed to <to> (NULL: as the client named it), kept in
 * u->body until the attempt ends.  TG_OK; TG_DECLINED when the request
 * cannot be translated (u->last_error names the field, for a 400);
 * TG_ERROR (logged) when out of memory.
 */
static int
tg_proxy_body_translate(tg_upstream_t *u, const char *to, const char **body,
                        size_t *len)
{
    const tg_request_t *r = u->r;
    tg_translate_req_t q = {r->api, to, r->w->conf->max_tokens, r->id};
    tg_err_t err;
    int rc;

    rc = tg_translate_request(&q, tg_request_body(r),
                              (size_t)r->head.content_length, &u->body,
                              &u->body_len, &err);
    if (rc == TG_DECLINED) {
        snprintf(u->last_error, sizeof(u->last_error), "%s", err.text);
        return TG_DECLINED;
    }
    if (rc != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "translating request %016llx: out of memory",
               (unsigned long long)r->id);
        return TG_ERROR;
    }
    *body = u->body;
    *len = u->body_len;
    return TG_OK;
}


/*
 * The body to send to endpoint <e>: when <e> renames the request's model
 * (model_map), a copy of the client's body with exactly the top-level
 * "model" string value replaced, kept in u->body until the attempt ends
 * (tg_proxy_release); otherwise the client's body itself.  The copy is
 * bounded: the body limit plus one escaped name.  TG_OK, or TG_ERROR
 * (logged) when out of memory.
 */
static int
tg_proxy_body_model(tg_upstream_t *u, const tg_conf_endpoint_t *e,
                    const char **body, size_t *len)
{
    const tg_request_t *r = u->r;
    const char *src = tg_request_body(r), *to = NULL;
    /* No content-length and not chunked: no body (-1 would read as
     * SIZE_MAX). */
    size_t n = r->head.content_length > 0 ? (size_t)r->head.content_length : 0,
           off = r->model_off, vlen, tlen;
    char esc[sizeof(e->maps[0].to) * 6 + 3], *p; /* '"' + \u00XX each + '"' */
    uint32_t i;

    *body = src;
    *len = n;
    vlen = r->model_vlen;
    if (!u->xlate && (vlen == 0 || off > n || vlen > n - off)) {
        return TG_OK;
    }
    for (i = 0; i < e->nmaps && to == NULL; i++) {
        if (strcmp(e->maps[i].from, r->model) == 0) {
            to = e->maps[i].to;
        }
    }
    if (u->xlate) {
        return tg_proxy_body_translate(u, to, body, len);
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
    u->body = p;
    u->body_len = n - vlen + tlen;
    *body = p;
    *len = u->body_len;
    return TG_OK;
}


/*
 * The body to send to endpoint <e>: the model renamed (see
 * tg_proxy_body_model) and, for an OpenAI stream whose client did not
 * ask for its usage, stream_options.include_usage set, so that the
 * stream's tokens are known (r->usage_asked: the usage chunk is then
 * removed from what the client receives, worker/usage.h).  A body
 * translated for an endpoint of the other API is not rewritten: the
 * translation asks for the usage itself.  TG_OK; TG_DECLINED when the
 * request cannot be translated for <e> (u->last_error says why); TG_ERROR
 * when out of memory.
 */
static int
tg_proxy_body(tg_upstream_t *u, const tg_conf_endpoint_t *e, const char **body,
              size_t *len)
{
    tg_request_t *r = u->r;
    char *asked;
    size_t alen;
    int rc;

    /* TG_DECLINED (no form in the endpoint's API) stays a 400. */
    rc = tg_proxy_body_model(u, e, body, len);
    if (rc != TG_OK) {
        return rc;
    }
    r->usage_asked = false;
    if (u->xlate || r->route != TG_ROUTE_CHAT || !r->stream_req) {
        return TG_OK;
    }
    rc = tg_usage_ask_body(*body, *len, &asked, &alen);
    if (rc == TG_ERROR) {
        tg_log(TG_LOG_ERR, 0, "rewriting the request for its usage failed");
        return TG_ERROR;
    }
    if (rc == TG_OK) {
        free(u->body);
        u->body = asked;
        u->body_len = alen;
        *body = asked;
        *len = alen;
        r->usage_asked = true;
    }
    return TG_OK;
}


/*
 * curl pre-request callback, called each time libcurl is about to send
 * the request on a connection.  A second call for the same attempt is
 * libcurl sending it again on its own: it does so when a reused
 * keep-alive connection turns out to be closed before any answer
 * (libcurl 7.88 cannot be told not to; see docs/routing.md).  The
 * upstream may have received the first copy, so the re-send is a new
 * attempt: counted, listed in the access log and logged.  It goes to the
 * same endpoint, so it does not use up max_retries, which counts
 * endpoints (tg_proxy_may_retry).
 */
static int
tg_proxy_prereq_cb(void *userdata, char *primary_ip, char *local_ip,
                   int primary_port, int local_port)
{
    tg_upstream_t *u = userdata;
    tg_request_t *r = u->r;

    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (u->sends++ > 0) {
        if (r->attempts >= 1 && r->attempts <= TG_REQUEST_HIST) {
            r->hist_ep[r->attempts - 1] = (uint16_t)u->endpoint;
            r->hist_status[r->attempts - 1] = 1000 + CURLE_GOT_NOTHING;
        }
        r->attempts++;
        tg_log(TG_LOG_INFO, 0,
               "upstream %s attempt %d: the reused connection was closed "
               "without an answer; the request is sent again on another "
               "connection (attempt %d)",
               u->w->conf->endpoints[u->endpoint].name, r->attempts - 1,
               r->attempts);
    }
    return CURL_PREREQFUNC_OK;
}


/*
 * Configure <easy> for <c>'s request to endpoint <e>: URL, headers, the
 * body (renamed model, if <e> maps it; translated, if <e> speaks the other
 * API) and <e>'s transport (proxy, connect and total timeouts, TLS
 * verification).  TG_OK, TG_DECLINED when the request cannot be
 * translated for <e>, or TG_ERROR when out of memory or the URL is too
 * long; the caller frees u->headers and u->body.
 */
int
tg_proxy_send_setup(tg_upstream_t *u, CURL *easy, const tg_conf_endpoint_t *e)
{
    const tg_request_t *r = u->r;
    const tg_conf_t *conf = r->w->conf;
    const char *body;
    char url[4096];
    size_t blen;
    long verify = e->tls_verify ? 1L : 0L;
    int n;

    /* A translated request goes to the other API's path (its query, if
     * any, belonged to the client's API). */
    if (u->xlate) {
        n = snprintf(url, sizeof(url), "%s%s", e->url,
                     tg_translate_path(e->style));
    } else {
        n = snprintf(url, sizeof(url), "%s%.*s", e->url, (int)r->head.uri.len,
                     r->head.uri.data);
    }
    if (n < 0 || (size_t)n >= sizeof(url)) {
        return TG_ERROR;
    }
    if ((n = tg_proxy_body(u, e, &body, &blen)) != TG_OK) {
        return n;
    }
    u->headers = tg_proxy_headers(r, e, u->xlate);
    if (u->headers == NULL) {
        return TG_ERROR;
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, u);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, u->headers);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    /* The body as POSTFIELDS: under 64 KB libcurl sends it in the same
     * write as the head.  A re-send by libcurl itself shows as a second
     * pre-request call (tg_proxy_prereq_cb). */
    u->sends = 0;
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, tg_proxy_prereq_cb);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, u);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
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
    return TG_OK;
}
