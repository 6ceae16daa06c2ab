/*
 * worker/limit.c
 *      Admission, release and charging of the per-key and per-user limits.
 *
 * NOTES
 *      Worker only.  See limit.h.
 */
#include "worker/limit.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "shm/prices.h"
#include "shm/quota.h"
#include "shm/rl.h"
#include "shm/users.h"
#include "worker/usage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The current quota periods, recomputed when the nearest one ends (a
 * worker is one thread). */
static uint64_t tg_limit_starts[TG_SHM_Q_NPERIODS];
static uint64_t tg_limit_ends[TG_SHM_Q_NPERIODS];


/* See limit.h. */
int
tg_limit_init(tg_worker_t *w)
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
    /* Quota periods follow usage.timezone (master set it before the
     * fork too; this keeps a worker's own configuration authoritative). */
    tg_shm_quota_zone_set(w->conf->usage_timezone);
    tg_limit_ends[0] = tg_limit_ends[1] = 0;
    return TG_OK;
}


/* Free the lease stack. */
void
tg_limit_fini(tg_worker_t *w)
{
    free(w->lease_free);
    w->lease_free = NULL;
}


static int
tg_limit_refuse(tg_limit_refusal_t *why, uint32_t reason, uint64_t retry_us,
                const char *msg)
{
    why->retry_us = retry_us;
    why->msg = msg;
    why->reason = reason;
    return TG_DECLINED;
}


/* See limit.h. */
void
tg_limit_periods(uint64_t now_s, uint64_t starts[2], uint64_t ends[2])
{
    if (now_s >= tg_limit_ends[0] || now_s >= tg_limit_ends[1] ||
        now_s < tg_limit_starts[0]) {
        tg_shm_quota_periods(now_s, tg_limit_starts, tg_limit_ends);
    }
    memcpy(starts, tg_limit_starts, sizeof(tg_limit_starts));
    memcpy(ends, tg_limit_ends, sizeof(tg_limit_ends));
}


/* A non-negative integer member value captured by the scanner, or 0. */
static uint64_t
tg_limit_field_int(const tg_json_field_t *f)
{
    json_t *v;
    uint64_t n = 0;

    if (!f->found || f->truncated) {
        return 0;
    }
    v = json_loadb(f->buf, f->len, JSON_DECODE_ANY, NULL);
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        n = (uint64_t)json_integer_value(v);
    }
    json_decref(v);
    return n;
}


/* See limit.h. */
uint64_t
tg_limit_estimate(const char *body, size_t len, uint64_t *out)
{
    char b0[32], b1[32], b2[32];
    tg_json_field_t f[3] = {
        {.name = "max_tokens", .name_len = 10, .buf = b0, .cap = sizeof(b0)},
        {.name = "max_completion_tokens",
         .name_len = 21,
         .buf = b1,
         .cap = sizeof(b1)},
        /* The Responses API's name for it. */
        {.name = "max_output_tokens",
         .name_len = 17,
         .buf = b2,
         .cap = sizeof(b2)},
    };
    tg_json_scan_t s;
    uint64_t o;

    tg_json_scan_init(&s, f, 3);
    if (body != NULL && len > 0) {
        tg_json_scan_feed(&s, body, len);
    }
    o = tg_limit_field_int(&f[1]);
    if (o == 0) {
        o = tg_limit_field_int(&f[2]);
    }
    if (o == 0) {
        o = tg_limit_field_int(&f[0]);
    }
    if (o == 0) {
        o = TG_LIMIT_OUTPUT_DEFAULT;
    }
    /* A bound, not a guess: no model emits more than 2^32 tokens. */
    o = TG_MIN(o, (uint64_t)UINT32_MAX);
    *out = o;
    /* About four bytes of JSON per input token; images and escapes make
     * it more, which errs on the side of the budget. */
    return len / 4 + o;
}


/* Format the refusal of quota <q> in <why>. */
static int
tg_limit_quota_refuse(tg_limit_refusal_t *why, const tg_shm_quotas_t *t,
                      const tg_shm_quota_refusal_t *q, uint64_t now_s,
                      const uint64_t ends[2])
{
    const char *who = q->idx < t->users ? "user" : "key";
    const char *per = q->period == TG_SHM_Q_DAY ? "daily" : "monthly";
    uint64_t end = ends[q->period];
    time_t te = (time_t)end;
    char when[32] = "?";
    struct tm tm;

    if (gmtime_r(&te, &tm) != NULL) {
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (q->measure == TG_SHM_Q_TOKENS) {
        snprintf(why->text, sizeof(why->text),
                 "%s token quota of this %s reached: %llu of %llu tokens in "
                 "use; it resets at %s",
                 per, who, (unsigned long long)q->in_use,
                 (unsigned long long)q->limit, when);
    } else {
        snprintf(why->text, sizeof(why->text),
                 "%s cost quota of this %s reached: %llu.%06llu of "
                 "%llu.%06llu USD in use; it resets at %s",
                 per, who, (unsigned long long)(q->in_use / 1000000000000ull),
                 (unsigned long long)(q->in_use % 1000000000000ull / 1000000),
                 (unsigned long long)(q->limit / 1000000000000ull),
                 (unsigned long long)(q->limit % 1000000000000ull / 1000000),
                 when);
    }
    why->msg = why->text;
    why->reason = q->measure == TG_SHM_Q_TOKENS ? TG_SHM_REFUSE_QUOTA_TOKENS
                                                : TG_SHM_REFUSE_QUOTA_COST;
    why->retry_us = (end > now_s ? end - now_s : 1) * 1000000;
    return TG_DECLINED;
}


/* Reserve the estimate of <ask> on the quotas of <key> (entry <slot>)
 * and its user, in reservation <li>.  TG_OK or TG_DECLINED (<why>). */
static int
tg_limit_reserve(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                 const tg_limit_ask_t *ask, uint32_t li, uint64_t now_s,
                 tg_limit_refusal_t *why)
{
    tg_shm_quotas_t *t = tg_shm_quotas(w->shm);
    tg_shm_qres_t *res = &tg_shm_qres(w->shm, w->shm_idx)[li];
    uint64_t starts[2], ends[2], est[2], out, pusd[TG_PRICE_N];
    uint64_t tok[TG_PRICE_N] = {0};
    tg_shm_quota_refusal_t q;
    uint32_t idx[2];
    int rc;

    idx[0] = key->user != TG_SHM_USER_NONE ? tg_shm_quota_user(t, key->user)
                                           : TG_SHM_QUOTA_NONE;
    idx[1] = tg_shm_quota_key(t, slot);
    if (tg_shm_quota_get(t, idx[0]) == NULL &&
        tg_shm_quota_get(t, idx[1]) == NULL) {
        return TG_OK;
    }
    tg_limit_periods(now_s, starts, ends);
    est[TG_SHM_Q_TOKENS] = tg_limit_estimate(ask->body, ask->len, &out);
    est[TG_SHM_Q_COST] = 0;
    if (tg_shm_prices_lookup(tg_shm_prices(w->shm), ask->model,
                             strlen(ask->model), pusd) == TG_SHM_OK) {
        tok[TG_PRICE_INPUT] = est[TG_SHM_Q_TOKENS] - out;
        tok[TG_PRICE_OUTPUT] = out;
        (void)tg_shm_prices_cost(tok, pusd, 1000, &est[TG_SHM_Q_COST]);
    }
    rc = tg_shm_quota_reserve(t, idx, 2, starts, est, res, &q);
    if (rc == TG_SHM_OK) {
        return TG_OK;
    }
    if (rc == TG_SHM_BUSY) {
        return tg_limit_refuse(why, TG_SHM_REFUSE_OVERLOAD, 1000000,
                               "quota state is being updated; try again");
    }
    return tg_limit_quota_refuse(why, t, &q, now_s, ends);
}


/* Give back reservation <li> unused (a later limit refused). */
static void
tg_limit_unreserve(tg_worker_t *w, uint32_t li)
{
    uint64_t starts[2] = {0, 0};

    /* Nothing is charged, so the periods do not matter. */
    tg_shm_quota_settle(tg_shm_quotas(w->shm),
                        &tg_shm_qres(w->shm, w->shm_idx)[li], starts, 0, 0, 0);
}


/* See limit.h. */
int
tg_limit_admit(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
               const tg_limit_ask_t *ask, int *lease, tg_limit_refusal_t *why)
{
    tg_shm_rl_t *rl = &tg_shm_rl(w->shm)[slot];
    uint64_t now_us = tg_time_mono_us(), retry = 0;
    uint64_t now_s = tg_time_wall_ms() / 1000;
    uint32_t li;

    *lease = -1;
    if (key->tpm != 0 &&
        tg_shm_rl_tpm_check(rl, key->tpm, now_us, &retry) != TG_SHM_OK) {
        return tg_limit_refuse(why, TG_SHM_REFUSE_TPM, retry,
                               "tokens per minute limit reached");
    }
    if (w->nlease_free == 0) {
        /* More requests than connections cannot happen; stay safe. */
        return tg_limit_refuse(why, TG_SHM_REFUSE_OVERLOAD, 1000000,
                               "too many requests in flight");
    }
    li = w->lease_free[w->nlease_free - 1];
    if (tg_shm_rl_conc_acquire(tg_shm_rl(w->shm), slot, key->concurrency,
                               &w->leases[li]) != TG_SHM_OK) {
        return tg_limit_refuse(why, TG_SHM_REFUSE_CONCURRENCY, 1000000,
                               "concurrent requests limit reached");
    }
    w->nlease_free--;
    *lease = (int)li;
    if (tg_limit_reserve(w, key, slot, ask, li, now_s, why) != TG_OK) {
        tg_limit_release(w, lease);
        return TG_DECLINED;
    }
    /* The request-rate check comes last: it charges an admission, which a
     * request refused by any other limit must not spend. */
    if (key->rpm != 0 && tg_shm_rl_rpm_check(rl, key->rpm, key->burst, now_us,
                                             &retry) != TG_SHM_OK) {
        tg_limit_unreserve(w, li);
        tg_limit_release(w, lease);
        return tg_limit_refuse(why, TG_SHM_REFUSE_RPM, retry,
                               "requests per minute limit reached");
    }
    return TG_OK;
}


/* See limit.h. */
void
tg_limit_release(tg_worker_t *w, int *lease)
{
    if (*lease < 0) {
        return;
    }
    tg_shm_rl_conc_release(tg_shm_rl(w->shm), &w->leases[*lease]);
    w->lease_free[w->nlease_free++] = (uint32_t)*lease;
    *lease = -1;
}


/* See limit.h. */
void
tg_limit_charge(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                uint64_t tokens)
{
    if (key->tpm != 0 && tokens > 0) {
        tg_shm_rl_tpm_charge(&tg_shm_rl(w->shm)[slot], tokens,
                             tg_time_mono_us());
    }
    if (key->user != TG_SHM_USER_NONE) {
        tg_shm_users_charge(tg_shm_users(w->shm), key->user, tokens,
                            tg_time_wall_ms() / 1000);
    }
}


/* See limit.h. */
void
tg_limit_end(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot, int *lease,
             const uint64_t *tokens, uint64_t cost_pusd)
{
    uint64_t total = 0, cache = 0, starts[2], ends[2];
    uint64_t now_s = tg_time_wall_ms() / 1000;
    tg_shm_qres_t *res;

    if (tokens != NULL) {
        total = tokens[TG_TOK_INPUT] + tokens[TG_TOK_OUTPUT] +
                tokens[TG_TOK_CACHE_READ] + tokens[TG_TOK_CACHE_5M] +
                tokens[TG_TOK_CACHE_1H];
        cache = tokens[TG_TOK_CACHE_READ];
    }
    if (*lease >= 0) {
        res = &tg_shm_qres(w->shm, w->shm_idx)[*lease];
        if (atomic_load_explicit(&res->state, memory_order_relaxed) != 0) {
            tg_limit_periods(now_s, starts, ends);
            tg_shm_quota_settle(tg_shm_quotas(w->shm), res, starts, total,
                                cache, cost_pusd);
        }
    }
    tg_limit_release(w, lease);
    if (key != NULL) {
        tg_limit_charge(w, key, slot, total);
    }
}
