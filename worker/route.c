/*
 * worker/route.c
 *      Routing, authentication, local answers and endpoint choice.
 *
 * NOTES
 *      Paths are matched without their query string, as clients add
 *      "?beta=true" and the like.  The client key arrives as x-api-key or
 *      Authorization: Bearer on either API.  Keys are compared by SHA-256
 *      digest so the comparison time does not depend on where two keys
 *      differ.
 */
#include "worker/route.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/auth.h"
#include "worker/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static void
tg_route_iso8601(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


/* Build the GET /v1/models body, which carries both the Anthropic and the
 * OpenAI fields on every item so either SDK can read it. */
static int
tg_route_models_build(tg_worker_t *w)
{
    const tg_conf_t *conf = w->conf;
    size_t cap = 256 + conf->nmodels * 1024, n = 0, i;
    char *p = malloc(cap);
    int k;

    if (p == NULL) {
        return TG_ERROR;
    }
    n += (size_t)snprintf(p + n, cap - n, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < conf->nmodels; i++) {
        const tg_conf_model_t *m = &conf->models[i];
        char id[300], dn[300], owner[150], created[32];

        tg_json_escape(id, sizeof(id), m->id, strlen(m->id));
        tg_json_escape(dn, sizeof(dn), m->display_name,
                       strlen(m->display_name));
        tg_json_escape(owner, sizeof(owner), m->owned_by, strlen(m->owned_by));
        tg_route_iso8601(m->created, created, sizeof(created));
        k = snprintf(p + n, cap - n,
                     "%s{\"type\":\"model\",\"id\":\"%s\",\"display_name\":"
                     "\"%s\",\"created_at\":\"%s\",\"object\":\"model\","
                     "\"created\":%lld,\"owned_by\":\"%s\"}",
                     i ? "," : "", id, dn, created, (long long)m->created,
                     owner);
        if (k < 0 || (size_t)k >= cap - n) {
            free(p);
            return TG_ERROR;
        }
        n += (size_t)k;
    }
    if (conf->nmodels > 0) {
        char first[300], last[300];

        tg_json_escape(first, sizeof(first), conf->models[0].id,
                       strlen(conf->models[0].id));
        tg_json_escape(last, sizeof(last), conf->models[conf->nmodels - 1].id,
                       strlen(conf->models[conf->nmodels - 1].id));
        k = snprintf(p + n, cap - n,
                     "],\"has_more\":false,\"first_id\":\"%s\",\"last_id\":"
                     "\"%s\"}",
                     first, last);
    } else {
        k = snprintf(
            p + n, cap - n,
            "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    }
    if (k < 0 || (size_t)k >= cap - n) {
        free(p);
        return TG_ERROR;
    }
    w->models_json = p;
    w->models_json_len = n + (size_t)k;
    return TG_OK;
}


/* See route.h. */
int
tg_route_init(tg_worker_t *w)
{
    const tg_conf_t *conf = w->conf;

    if (tg_route_models_build(w) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "building the model list failed");
        return TG_ERROR;
    }
    w->rr_current =
        calloc(conf->nendpoints ? conf->nendpoints : 1, sizeof(int64_t));
    if (w->rr_current == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(route state) failed");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Free what tg_route_init built. */
void
tg_route_fini(tg_worker_t *w)
{
    free(w->models_json);
    w->models_json = NULL;
    free(w->rr_current);
    w->rr_current = NULL;
}


/* See route.h. */
int
tg_route_head(tg_conn_t *c)
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
        {"/v1/models", TG_HTTP_GET, TG_ROUTE_MODELS, TG_API_ANTHROPIC},
        {"/healthz", TG_HTTP_GET, TG_ROUTE_HEALTH, TG_API_ANTHROPIC},
    };
    tg_http_req_t *r = &c->req;
    size_t i;

    c->req_id = ((uint64_t)(uint32_t)c->w->slot << 56) |
                ((tg_time_wall_ms() & 0xffffffffull) << 24) |
                (c->w->req_seq++ & 0xffffff);
    c->api = (r->path.len >= 8 && memcmp(r->path.data, "/v1/chat", 8) == 0)
                 ? TG_API_OPENAI
                 : TG_API_ANTHROPIC;
    for (i = 0; i < TG_NELEMS(routes); i++) {
        if (tg_str_eq(r->path,
                      (tg_str_t){routes[i].path, strlen(routes[i].path)})) {
            break;
        }
    }
    if (i == TG_NELEMS(routes)) {
        tg_conn_send_error(c, 404, "not_found_error", "not_found",
                           "no such route", NULL);
        return TG_ERROR;
    }
    c->route = routes[i].route;
    c->api = routes[i].api;
    if (r->method != routes[i].method) {
        tg_conn_send_error(c, 405, "invalid_request_error", NULL,
                           "method not allowed on this route",
                           routes[i].method == TG_HTTP_GET ? "allow: GET\r\n"
                                                           : "allow: POST\r\n");
        return TG_ERROR;
    }
    if (c->route == TG_ROUTE_HEALTH) {
        return TG_OK;
    }
    if (tg_auth_key(c) != TG_OK) {
        return TG_ERROR;
    }
    return TG_OK;
}


/* See route.h. */
void
tg_route_request(tg_conn_t *c)
{
    tg_worker_t *w = c->w;

    switch (c->route) {
    case TG_ROUTE_HEALTH:
        tg_conn_send_response(c, 200, "application/json", "{\"status\":\"ok\"}",
                              15);
        return;
    case TG_ROUTE_MODELS:
        tg_conn_send_response(c, 200, "application/json", w->models_json,
                              w->models_json_len);
        return;
    default:
        if (tg_auth_admit(c) == TG_OK) {
            tg_proxy_start(c);
        }
    }
}


/* See route.h. */
bool
tg_route_has_candidate(const tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    int style =
        (c->api == TG_API_OPENAI) ? TG_STYLE_OPENAI : TG_STYLE_ANTHROPIC;
    size_t i;

    for (i = 0; i < conf->nendpoints && i < 32; i++) {
        if (conf->endpoints[i].style == style && !(c->u.tried & (1u << i))) {
            return true;
        }
    }
    return false;
}


/* See route.h. */
int
tg_route_pick(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    int64_t *cur = c->w->rr_current, total;
    int style =
        (c->api == TG_API_OPENAI) ? TG_STYLE_OPENAI : TG_STYLE_ANTHROPIC;
    int tier, best;
    size_t i;

    for (tier = TG_PRIO_PRIMARY; tier <= TG_PRIO_FALLBACK; tier++) {
        total = 0;
        best = -1;
        for (i = 0; i < conf->nendpoints && i < 32; i++) {
            const tg_conf_endpoint_t *e = &conf->endpoints[i];

            if (e->style != style || e->priority != tier ||
                (c->u.tried & (1u << i))) {
                continue;
            }
            /* Smooth weighted round-robin (nginx): every candidate gains
             * its weight, the leader is picked and pays the total back. */
            cur[i] += e->weight;
            total += e->weight;
            if (best < 0 || cur[i] > cur[best]) {
                best = (int)i;
            }
        }
        if (best >= 0) {
            cur[best] -= total;
            return best;
        }
    }
    return -1;
}
