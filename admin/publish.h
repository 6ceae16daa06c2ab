/*
 * admin/publish.h
 *      Publish users, keys, model patterns and endpoints into shared
 *      memory.
 *
 * NOTES
 *      Admin only: it is the single writer of these tables.  Rows come from
 *      the configuration file (config-only mode, tg_publish_all) or from
 *      PostgreSQL (admin/store.c); both go through the same row types and
 *      functions here.  A full publish (tg_publish_keys with <prune>,
 *      tg_publish_users) is a reconciliation, so a restarted admin repairs
 *      whatever a crashed one left half-written.
 */
#ifndef TG_ADMIN_PUBLISH_H
#define TG_ADMIN_PUBLISH_H

#include "core/conf.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Quota limits of a user or a key (users / api_keys columns tokens_day,
 * tokens_month, cost_day_usd, cost_month_usd; cost in pico-USD, 1e-12
 * USD).  All zero: no quota.  A zeroed row (calloc) has none.
 */
typedef struct {
    uint64_t tokens_day;      /* tokens per day, 0 = none */
    uint64_t tokens_month;    /* tokens per month, 0 = none */
    uint64_t cost_day_pusd;   /* cost per day, 0 = none */
    uint64_t cost_month_pusd; /* cost per month, 0 = none */
    bool cache_reads_day;     /* cache reads count toward tokens_day */
    bool cache_reads_month;   /* cache reads count toward tokens_month */
} tg_publish_quota_t;

/* One model's prices in pico-USD per token (shm/prices.h): USD per
 * million tokens x 1,000,000.  Reasoning is billed as output. */
typedef struct {
    char pattern[64];    /* model pattern, '*' glob, NUL-terminated */
    uint64_t in;         /* input not from cache */
    uint64_t out;        /* output (reasoning included) */
    uint64_t cache_read; /* cache read */
    uint64_t cache_5m;   /* cache write, 5-minute TTL */
    uint64_t cache_1h;   /* cache write, 1-hour TTL */
} tg_publish_price_t;

/* One key as published: what a worker needs to judge a request. */
typedef struct {
    uint8_t digest[32]; /* SHA-256 of the key */
    uint32_t key_id;    /* config position or api_keys.key_id */
    uint32_t user;      /* users table index, TG_SHM_USER_NONE */
    bool disabled;      /* refused */
    uint16_t group;     /* endpoint group index in the config */
    uint32_t rpm, burst, tpm, concurrency;
    uint64_t expires_at;      /* unix seconds, 0 = never */
    char prefix[12];          /* display prefix, NUL-terminated */
    uint32_t nmodels;         /* allow-list length, 0 = every model */
    char models[16][64];      /* patterns */
    tg_publish_quota_t quota; /* the key's own quotas */
} tg_publish_key_t;

/* One user as published. */
typedef struct {
    uint32_t idx;             /* users table index */
    uint32_t user_id;         /* config position + 1 or users.user_id */
    bool disabled;            /* every key of the user refused */
    uint32_t period;          /* TG_SHM_USER_PERIOD_* */
    uint64_t quota_tokens;    /* 0 = unlimited */
    tg_publish_quota_t quota; /* day/month token and cost quotas */
} tg_publish_user_t;

/*
 * Make the shared tables match <conf>: model patterns, users, keys (new
 * ones inserted with fresh rate-limit state, changed ones updated in
 * place, ones no longer configured deleted) and endpoint names.  Returns
 * TG_OK, or TG_ERROR after logging (a table full; what fitted is live).
 */
int tg_publish_all(const tg_conf_t *conf, tg_shm_t *shm);

/*
 * Publish <n> keys <keys>; with <prune>, delete every other key from the
 * table (a full publish).  Model patterns keep their indexes while keys
 * refer to them (see publish.c).  TG_OK, or TG_ERROR after logging (what
 * fitted is live).
 */
int tg_publish_keys(tg_shm_t *shm, const tg_publish_key_t *keys, size_t n,
                    bool prune);

/* Publish one key (insert or update).  TG_OK or TG_ERROR (logged). */
int tg_publish_key(tg_shm_t *shm, const tg_publish_key_t *k);

/* Delete the key with <digest>; TG_OK also when it was not there. */
int tg_publish_key_delete(tg_shm_t *shm, const uint8_t digest[32]);

/* Publish <n> users and free every other slot (a full publish). */
int tg_publish_users(tg_shm_t *shm, const tg_publish_user_t *users, size_t n);

/* Publish one user; free the slot <idx> with tg_publish_user_delete. */
int tg_publish_user(tg_shm_t *shm, const tg_publish_user_t *u);
int tg_publish_user_delete(tg_shm_t *shm, uint32_t idx);

/*
 * Replace the shared price table with <n> rows <rows> (pico-USD per
 * token).  Rows are matched most specific pattern first (shm/prices.h).
 * Admin only: at start, on NOTIFY 'model_prices:...' and at reconcile.
 * TG_OK, or TG_ERROR after logging (too many rows, an empty or overlong
 * pattern; the table is then unchanged).
 */
int tg_publish_prices(tg_shm_t *shm, const tg_publish_price_t *rows, size_t n);

/*
 * The quota entry (shm/quota.h) of the user in users-table slot <idx>,
 * or of the key with <digest>; TG_SHM_QUOTA_NONE when there is none.
 * With it, admin sets a period's base (the other hosts' usage from
 * PostgreSQL, every usage.sync_interval) with tg_shm_quota_set_base, and
 * restores this host's own usage at start with tg_shm_quota_set_used,
 * both on tg_shm_quotas(shm); period starts come from
 * tg_shm_quota_periods in usage.timezone.  Admin only.
 */
uint32_t tg_publish_quota_user(tg_shm_t *shm, uint32_t idx);
uint32_t tg_publish_quota_key(tg_shm_t *shm, const uint8_t digest[32]);

#endif /* TG_ADMIN_PUBLISH_H */
