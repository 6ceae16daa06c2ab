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

/* One key as published: what a worker needs to judge a request. */
typedef struct {
    uint8_t digest[32]; /* SHA-256 of the key */
    uint32_t key_id;    /* config position or api_keys.key_id */
    uint32_t user;      /* users table index, TG_SHM_USER_NONE */
    bool disabled;      /* refused */
    uint16_t group;     /* endpoint group index in the config */
    uint32_t rpm, burst, tpm, concurrency;
    uint64_t expires_at; /* unix seconds, 0 = never */
    char prefix[12];     /* display prefix, NUL-terminated */
    uint32_t nmodels;    /* allow-list length, 0 = every model */
    char models[16][64]; /* patterns */
} tg_publish_key_t;

/* One user as published. */
typedef struct {
    uint32_t idx;          /* users table index */
    uint32_t user_id;      /* config position + 1 or users.user_id */
    bool disabled;         /* every key of the user refused */
    uint32_t period;       /* TG_SHM_USER_PERIOD_* */
    uint64_t quota_tokens; /* 0 = unlimited */
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

#endif /* TG_ADMIN_PUBLISH_H */
