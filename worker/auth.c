/*
 * worker/auth.c
 *      Authentication, model allow-lists and limits, from shared memory.
 *
 * NOTES
 *      Order of checks, cheapest and least revealing first: key (head
 *      only, before any body byte is read), user status, then with the
 *      body: model allow-list, tokens per minute, user quota, concurrency,
 *      requests per minute.  The two checks that take something (a
 *      concurrency slot, a GCRA admission) come last, and a refusal by the
 *      rate check gives the slot back, so a refused request holds nothing.  A
 * seqlock that stays busy fails closed (503, retryable).
 */
#include "worker/auth.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/route.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* See auth.h. */
int
tg_auth_init(tg_worker_t *w)
{
    uint32_t i, n = tg_shm_hdr(w->shm)->leases_per_proc;

    w->leases = tg_shm_leases(w->shm, w->shm_idx);
    w->nleases = TG_MIN(n, w->conf->max_connections);
    w->lease_free = malloc(sizeof(uint32_t) * (w->nleases ? w->nleases : 1));
    if (w->lease_free == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(lease stack) failed");
        return TG_ERROR;
    }
    /* A previous worker in this proc entry was reaped and its leases
     * reclaimed by master, so every lease is free. */
    for (i = 0; i < w->nleases; i++) {
        w->lease_free[i] = w->nleases - 1 - i;
    }
    w->nlease_free = w->nleases;
    return TG_OK;
}


/* Free the lease stack. */
void
tg_auth_fini(tg_worker_t *w)
{
    free(w->lease_free);
    w->lease_free = NULL;
}


/* The client key from x-api-key or Authorization: Bearer; len 0 if none. */
static tg_str_t
tg_auth_client_key(const tg_http_req_t *r)
{
    const tg_http_header_t *h;
    tg_str_t v;

    h = tg_http_find_header(r->headers, r->nheaders, tg_str_lit("x-api-key"));
    if (h != NULL && h->value.len > 0) {
        return h->value;
    }
    h = tg_http_find_header(r->headers, r->nheaders,
                            tg_str_lit("authorization"));
    if (h != NULL && h->value.len > 7 &&
        tg_str_caseeq((tg_str_t){h->value.data, 7}, tg_str_lit("bearer "))) {
        v.data = h->value.data + 7;
        v.len = h->value.len - 7;
        while (v.len > 0 && v.data[0] == ' ') {
            v.data++;
            v.len--;
        }
        return v;
    }
    return tg_str_null;
}


static void
tg_auth_unauthorized(tg_conn_t *c, const char *msg)
{
    c->outcome = TG_USAGE_REJECTED;
    tg_conn_send_error(c, 401,
                       c->api == TG_API_OPENAI ? "invalid_request_error"
                                               : "authentication_error",
                       "invalid_api_key", msg, NULL);
}


static void
tg_auth_forbidden(tg_conn_t *c, const char *msg)
{
    c->outcome = TG_USAGE_REJECTED;
    tg_conn_send_error(c, 403,
                       c->api == TG_API_OPENAI ? "permission_denied"
                                               : "permission_error",
                       "permission_denied", msg, NULL);
}


static void
tg_auth_busy(tg_conn_t *c)
{
    c->outcome = TG_USAGE_REJECTED;
    tg_conn_send_error(c, 503, "overloaded_error", NULL,
                       "key table busy; retry", "retry-after: 1\r\n");
}


/* See auth.h. */
int
tg_auth_key(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    unsigned char d[SHA256_DIGEST_LENGTH];
    tg_str_t key = tg_auth_client_key(&c->req);
    tg_shm_user_t user;
    int rc;

    if (key.len == 0) {
        tg_auth_unauthorized(c, "missing API key: send x-api-key or "
                                "Authorization: Bearer");
        return TG_ERROR;
    }
    if (key.len > 512) {
        tg_auth_unauthorized(c, "invalid API key");
        return TG_ERROR;
    }
    SHA256((const unsigned char *)key.data, key.len, d);
    rc = tg_shm_keys_lookup(tg_shm_keys(w->shm), d, &c->key, &c->key_slot);
    if (rc == TG_SHM_BUSY) {
        tg_auth_busy(c);
        return TG_ERROR;
    }
    if (rc != TG_SHM_OK) {
        tg_auth_unauthorized(c, "invalid API key");
        return TG_ERROR;
    }
    c->have_key = true;
    if (c->key.status != TG_SHM_KEY_ACTIVE) {
        tg_auth_unauthorized(c, "API key is disabled");
        return TG_ERROR;
    }
    if (c->key.expires_at != 0 &&
        (uint64_t)(tg_time_wall_ms() / 1000) >= c->key.expires_at) {
        tg_auth_unauthorized(c, "API key has expired");
        return TG_ERROR;
    }
    if (c->key.user != TG_SHM_USER_NONE) {
        rc = tg_shm_users_read(tg_shm_users(w->shm), c->key.user, &user);
        if (rc == TG_SHM_BUSY) {
            tg_auth_busy(c);
            return TG_ERROR;
        }
        if (rc != TG_SHM_OK || user.status != TG_SHM_USER_ACTIVE) {
            tg_auth_forbidden(c, "this user is disabled");
            return TG_ERROR;
        }
    }
    return TG_OK;
}


/* A captured member's raw text, or the empty string when it was absent. */
static tg_str_t
tg_auth_field(const tg_json_field_t *f)
{
    return f->found ? (tg_str_t){f->buf, f->len} : tg_str_null;
}


/*
 * Read "model" and "stream" from the request body into <c>, with where the
 * model's value lies in the body (for per-endpoint renames).  When the
 * key's group is sticky, also "metadata", "system" and the start of
 * "messages", for the conversation key (tg_route_session): bounded
 * captures in the same single pass over the body.
 */
static void
tg_auth_scan_body(tg_conn_t *c)
{
    const tg_conf_t *conf = c->w->conf;
    const tg_http_header_t *h;
    tg_json_field_t f[5];
    tg_json_scan_t s;
    char model[160], stream[8], meta[1024], system[4096], messages[4096];
    bool sticky;
    json_t *v;

    sticky = c->key.group < conf->ngroups && conf->groups[c->key.group].sticky;
    f[0] = (tg_json_field_t){
        .name = "model", .name_len = 5, .buf = model, .cap = sizeof(model)};
    f[1] = (tg_json_field_t){
        .name = "stream", .name_len = 6, .buf = stream, .cap = sizeof(stream)};
    f[2] = (tg_json_field_t){
        .name = "metadata", .name_len = 8, .buf = meta, .cap = sizeof(meta)};
    f[3] = (tg_json_field_t){
        .name = "system", .name_len = 6, .buf = system, .cap = sizeof(system)};
    f[4] = (tg_json_field_t){.name = "messages",
                             .name_len = 8,
                             .buf = messages,
                             .cap = sizeof(messages)};
    tg_json_scan_init(&s, f, sticky ? 5 : 2);
    tg_json_scan_feed(&s, tg_conn_body(c), (size_t)c->req.content_length);
    c->model[0] = '\0';
    c->model_off = c->model_vlen = 0;
    c->session = 0;
    if (f[0].found && !f[0].truncated) {
        v = json_loadb(model, f[0].len, JSON_DECODE_ANY, NULL);
        if (json_is_string(v)) {
            snprintf(c->model, sizeof(c->model), "%s", json_string_value(v));
            /* A rename replaces the value only when c->model is the whole
             * name: never for a name cut short or holding a NUL. */
            if (json_string_length(v) < sizeof(c->model) &&
                strlen(c->model) == json_string_length(v)) {
                c->model_off = f[0].offset;
                c->model_vlen = f[0].len;
            }
        }
        json_decref(v);
    }
    c->stream_req =
        f[1].found && f[1].len == 4 && memcmp(stream, "true", 4) == 0;
    if (sticky) {
        h = tg_http_find_header(c->req.headers, c->req.nheaders,
                                tg_str_lit("x-session-id"));
        c->session = tg_route_session(
            tg_auth_field(&f[2]), h != NULL ? h->value : tg_str_null,
            tg_auth_field(&f[3]), tg_auth_field(&f[4]));
    }
}


static void
tg_auth_limited(tg_conn_t *c, uint64_t retry_us, const char *msg)
{
    char hdr[64];
    uint64_t secs = (retry_us + 999999) / 1000000;

    snprintf(hdr, sizeof(hdr), "retry-after: %llu\r\n",
             (unsigned long long)(secs ? secs : 1));
    c->outcome = TG_USAGE_REJECTED;
    tg_conn_send_error(c, 429, "rate_limit_error", "rate_limit_exceeded", msg,
                       hdr);
}


/* Seconds until the quota period of <u> ends (for retry-after). */
static uint64_t
tg_auth_quota_retry_us(const tg_shm_user_t *u, uint64_t now_s)
{
    uint64_t start = tg_shm_users_period_start(u->period, now_s), end;
    struct tm tm;
    time_t t = (time_t)start;

    if (u->period == TG_SHM_USER_PERIOD_DAY) {
        end = start + 86400;
    } else if (u->period == TG_SHM_USER_PERIOD_MONTH) {
        gmtime_r(&t, &tm);
        tm.tm_mon++;
        end = (uint64_t)timegm(&tm);
    } else {
        return 3600ull * 1000000;
    }
    return (end > now_s ? end - now_s : 1) * 1000000;
}


/* See auth.h. */
int
tg_auth_admit(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_shm_rl_t *rl = &tg_shm_rl(w->shm)[c->key_slot];
    uint64_t now_us = tg_time_mono_us(), retry = 0, mask;
    uint64_t now_s = tg_time_wall_ms() / 1000;
    tg_shm_user_t user;
    uint32_t li;
    int rc;

    tg_auth_scan_body(c);
    if (c->key.models != 0) {
        rc = tg_shm_models_match(tg_shm_models(w->shm), c->model,
                                 strlen(c->model), &mask);
        if (rc == TG_SHM_BUSY) {
            tg_auth_busy(c);
            return TG_ERROR;
        }
        if (!tg_shm_keys_allows_model(&c->key, mask)) {
            char msg[128];

            snprintf(msg, sizeof(msg), "this API key may not use model \"%s\"",
                     c->model[0] ? c->model : "(none)");
            tg_auth_forbidden(c, msg);
            return TG_ERROR;
        }
    }
    if (c->key.tpm != 0 &&
        tg_shm_rl_tpm_check(rl, c->key.tpm, now_us, &retry) != TG_SHM_OK) {
        tg_auth_limited(c, retry, "tokens per minute limit reached");
        return TG_ERROR;
    }
    if (c->key.user != TG_SHM_USER_NONE &&
        tg_shm_users_read(tg_shm_users(w->shm), c->key.user, &user) ==
            TG_SHM_OK &&
        tg_shm_users_over_quota(tg_shm_users(w->shm), c->key.user, &user,
                                now_s)) {
        tg_auth_limited(c, tg_auth_quota_retry_us(&user, now_s),
                        "token quota of this user is used up for the period");
        return TG_ERROR;
    }
    if (w->nlease_free == 0) {
        /* More requests than connections cannot happen; stay safe. */
        tg_auth_limited(c, 1000000, "too many requests in flight");
        return TG_ERROR;
    }
    li = w->lease_free[w->nlease_free - 1];
    if (tg_shm_rl_conc_acquire(tg_shm_rl(w->shm), c->key_slot,
                               c->key.concurrency,
                               &w->leases[li]) != TG_SHM_OK) {
        tg_auth_limited(c, 1000000, "concurrent requests limit reached");
        return TG_ERROR;
    }
    w->nlease_free--;
    c->lease = (int)li;
    /* The request-rate check comes last: it charges an admission, which a
     * request refused by any other limit must not spend. */
    if (c->key.rpm != 0 && tg_shm_rl_rpm_check(rl, c->key.rpm, c->key.burst,
                                               now_us, &retry) != TG_SHM_OK) {
        tg_auth_release(c);
        tg_auth_limited(c, retry, "requests per minute limit reached");
        return TG_ERROR;
    }
    return TG_OK;
}


/* See auth.h. */
void
tg_auth_release(tg_conn_t *c)
{
    tg_worker_t *w = c->w;

    if (c->lease < 0) {
        return;
    }
    tg_shm_rl_conc_release(tg_shm_rl(w->shm), &w->leases[c->lease]);
    w->lease_free[w->nlease_free++] = (uint32_t)c->lease;
    c->lease = -1;
}


/* See auth.h. */
void
tg_auth_charge(tg_conn_t *c, uint64_t tokens)
{
    tg_worker_t *w = c->w;

    if (!c->have_key) {
        return;
    }
    if (c->key.tpm != 0 && tokens > 0) {
        tg_shm_rl_tpm_charge(&tg_shm_rl(w->shm)[c->key_slot], tokens,
                             tg_time_mono_us());
    }
    if (c->key.user != TG_SHM_USER_NONE) {
        tg_shm_users_charge(tg_shm_users(w->shm), c->key.user, tokens,
                            tg_time_wall_ms() / 1000);
    }
}
