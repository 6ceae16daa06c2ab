/*
 * worker/limit.c
 *      Admission, release and charging of the per-key and per-user limits.
 *
 * NOTES
 *      Worker only.  See limit.h.
 */
#include "worker/limit.h"
#include "core/core.h"
#include "core/log.h"
#include "shm/rl.h"
#include "shm/users.h"

#include <stdlib.h>
#include <time.h>


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
    return TG_OK;
}


/* Free the lease stack. */
void
tg_limit_fini(tg_worker_t *w)
{
    free(w->lease_free);
    w->lease_free = NULL;
}


/* Microseconds until the quota period of <u> ends (for retry-after). */
static uint64_t
tg_limit_quota_retry_us(const tg_shm_user_t *u, uint64_t now_s)
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
int
tg_limit_admit(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
               int *lease, tg_limit_refusal_t *why)
{
    tg_shm_rl_t *rl = &tg_shm_rl(w->shm)[slot];
    uint64_t now_us = tg_time_mono_us(), retry = 0;
    uint64_t now_s = tg_time_wall_ms() / 1000;
    tg_shm_user_t user;
    uint32_t li;

    *lease = -1;
    if (key->tpm != 0 &&
        tg_shm_rl_tpm_check(rl, key->tpm, now_us, &retry) != TG_SHM_OK) {
        return tg_limit_refuse(why, TG_SHM_REFUSE_TPM, retry,
                               "tokens per minute limit reached");
    }
    if (key->user != TG_SHM_USER_NONE &&
        tg_shm_users_read(tg_shm_users(w->shm), key->user, &user) ==
            TG_SHM_OK &&
        tg_shm_users_over_quota(tg_shm_users(w->shm), key->user, &user,
                                now_s)) {
        return tg_limit_refuse(
            why, TG_SHM_REFUSE_QUOTA_TOKENS,
            tg_limit_quota_retry_us(&user, now_s),
            "token quota of this user is used up for the period");
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
    /* The request-rate check comes last: it charges an admission, which a
     * request refused by any other limit must not spend. */
    if (key->rpm != 0 && tg_shm_rl_rpm_check(rl, key->rpm, key->burst, now_us,
                                             &retry) != TG_SHM_OK) {
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
