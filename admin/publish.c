/*
 * admin/publish.c
 *      Configuration -> shared tables.
 *
 * NOTES
 *      Admin only, at start and after each reload (a reload starts a new
 *      admin).  Keys are stored by SHA-256 digest with an 8-character
 *      display prefix; the plain text never enters shared memory.
 *      XXX: model patterns are replaced before the keys that refer to them
 *      are rewritten, so for the few microseconds in between a key whose
 *      allow-list changed may be judged against the new pattern indexes.
 */
#include "admin/publish.h"
#include "core/core.h"
#include "core/log.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t d[SHA256_DIGEST_LENGTH];
} tg_publish_digest_t;


static int
tg_publish_digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SHA256_DIGEST_LENGTH);
}


/* Distinct allow-list patterns in file order; returns how many. */
static uint32_t
tg_publish_patterns(const tg_conf_t *conf, const char **out)
{
    uint32_t n = 0, j;
    size_t i, m;

    for (i = 0; i < conf->nkeys; i++) {
        for (m = 0; m < conf->keys[i].nmodels; m++) {
            const char *p = conf->keys[i].models[m];

            for (j = 0; j < n && strcmp(out[j], p) != 0; j++) {
            }
            if (j == n && n < TG_SHM_MODELS_MAX) {
                out[n++] = p;
            }
        }
    }
    return n;
}


static void
tg_publish_users(const tg_conf_t *conf, tg_shm_users_t *t, uint32_t cap)
{
    static const uint32_t periods[] = {TG_SHM_USER_PERIOD_NONE,
                                       TG_SHM_USER_PERIOD_DAY,
                                       TG_SHM_USER_PERIOD_MONTH};
    tg_shm_user_t u;
    uint32_t i;

    for (i = 0; i < cap; i++) {
        if (i >= conf->nusers) {
            tg_shm_users_del(t, i);
            continue;
        }
        memset(&u, 0, sizeof(u));
        u.status =
            conf->users[i].disabled ? TG_SHM_USER_DISABLED : TG_SHM_USER_ACTIVE;
        u.user_id = conf->users[i].user_id;
        u.period = periods[conf->users[i].quota_period];
        u.quota_tokens = (uint64_t)conf->users[i].quota_tokens;
        tg_shm_users_set(t, i, &u);
    }
}


/* Build the shared entry for configured key <k>. */
static void
tg_publish_key(const tg_conf_t *conf, const tg_conf_key_t *k,
               const tg_shm_models_t *models, tg_shm_key_t *e)
{
    uint32_t m;
    int bit;

    memset(e, 0, sizeof(*e));
    SHA256((const unsigned char *)k->key, strlen(k->key), e->digest);
    e->status = k->disabled ? TG_SHM_KEY_DISABLED : TG_SHM_KEY_ACTIVE;
    e->user = k->user;
    e->group = (uint16_t)k->group;
    e->key_id = k->key_id;
    e->rpm = k->rpm;
    e->burst = k->burst;
    e->tpm = k->tpm;
    e->concurrency = k->concurrency;
    e->expires_at = (uint64_t)k->expires;
    for (m = 0; m < k->nmodels; m++) {
        bit = tg_shm_models_find(models, k->models[m]);
        if (bit >= 0) {
            e->models |= 1ull << bit;
        }
    }
    memcpy(e->prefix, k->key, TG_MIN(strlen(k->key), (size_t)8));
    (void)conf;
}


/* Compaction moves a key to slot <to>: the slot's counters start fresh.
 * XXX: the moved key's minute window and in-flight count restart; its
 * concurrency may be exceeded by the requests in flight during the move. */
static void
tg_publish_moved(void *arg, uint32_t from, uint32_t to)
{
    tg_shm_t *shm = arg;

    (void)from;
    tg_shm_rl_reset(&tg_shm_rl(shm)[to]);
}


/* Where a new key goes; compacts the table once when it is full. */
static int
tg_publish_place(tg_shm_t *shm, const uint8_t digest[32], uint32_t *slot)
{
    int rc = tg_shm_keys_place(tg_shm_keys(shm), digest, slot);

    if (rc == TG_SHM_FULL) {
        tg_log(TG_LOG_NOTICE, 0,
               "key table full of deleted slots; "
               "compacting it");
        tg_shm_keys_compact(tg_shm_keys(shm), tg_publish_moved, shm);
        rc = tg_shm_keys_place(tg_shm_keys(shm), digest, slot);
    }
    return rc;
}


/* See publish.h. */
int
tg_publish_all(const tg_conf_t *conf, tg_shm_t *shm)
{
    const char *patterns[TG_SHM_MODELS_MAX];
    tg_shm_keys_t *keys = tg_shm_keys(shm);
    tg_shm_models_t *models = tg_shm_models(shm);
    tg_publish_digest_t *want = NULL;
    uint32_t npat, slot, cursor = 0, deleted = 0, added = 0, i;
    tg_shm_key_t e;
    int rc = TG_OK, prc;

    npat = tg_publish_patterns(conf, patterns);
    if (tg_shm_models_set(models, patterns, npat) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, 0, "publishing %u model patterns failed", npat);
        return TG_ERROR;
    }
    tg_publish_users(conf, tg_shm_users(shm),
                     tg_shm_capacity(shm, TG_SHM_T_USERS));

    want = calloc(conf->nkeys ? conf->nkeys : 1, sizeof(*want));
    if (want == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(key digests) failed");
        return TG_ERROR;
    }
    for (i = 0; i < conf->nkeys; i++) {
        tg_publish_key(conf, &conf->keys[i], models, &e);
        memcpy(want[i].d, e.digest, sizeof(want[i].d));
        prc = tg_publish_place(shm, e.digest, &slot);
        if (prc == TG_SHM_FULL) {
            tg_log(TG_LOG_ERR, 0,
                   "key table full; key %u not published; raise "
                   "shm.max_keys",
                   e.key_id);
            rc = TG_ERROR;
            continue;
        }
        if (prc == TG_SHM_MISS) {
            /* A new key takes this slot: its rate-limit state starts
             * fresh, whatever the slot's previous key left there. */
            tg_shm_rl_reset(&tg_shm_rl(shm)[slot]);
            added++;
        }
        if (tg_shm_keys_upsert(keys, &e, NULL) != TG_SHM_OK) {
            tg_log(TG_LOG_ERR, 0, "publishing key %u failed", e.key_id);
            rc = TG_ERROR;
        }
    }
    qsort(want, conf->nkeys, sizeof(*want), tg_publish_digest_cmp);
    /* Look for keys to delete only when there are more than configured:
     * the scan reads the whole table, which with a million slots would
     * fault in a hundred megabytes for nothing on every start. */
    while (atomic_load(&keys->used) > conf->nkeys) {
        prc = tg_shm_keys_next(keys, &cursor, &e);
        if (prc == TG_SHM_MISS) {
            break;
        }
        if (prc != TG_SHM_OK) {
            continue;
        }
        if (bsearch(e.digest, want, conf->nkeys, sizeof(*want),
                    tg_publish_digest_cmp) == NULL) {
            tg_shm_keys_delete(keys, e.digest);
            deleted++;
        }
    }
    free(want);
    for (i = 0; i < conf->nendpoints && i < tg_shm_capacity(shm, TG_SHM_T_EPS);
         i++) {
        tg_shm_ep_t *ep = tg_shm_ep_get(tg_shm_table(shm, TG_SHM_T_EPS), i);

        tg_shm_ep_set(
            ep, i, conf->endpoints[i].name,
            strncmp(ep->name, conf->endpoints[i].name, sizeof(ep->name)) != 0);
    }
    tg_log(TG_LOG_INFO, 0,
           "published %zu users, %zu keys (%u new, %u removed), %u model "
           "patterns, %zu endpoints",
           conf->nusers, conf->nkeys, added, deleted, npat, conf->nendpoints);
    return rc;
}
