/*
 * worker/limit.h
 *      Per-key and per-user limits: admission, release and charging, all
 *      in one place.
 *
 * NOTES
 *      Worker only; never blocks.  Admission checks, cheapest and least
 *      taking first: tokens per minute (reads only), the user's quota
 *      (reads only), concurrency (takes a lease), requests per minute
 *      (charges a GCRA admission).  The two checks that take something
 *      come last and a refusal by the rate check gives the lease back, so
 *      a refused request holds nothing.  The lease is this worker's entry
 *      in its shm lease array (shm/rl.h), so master can give back every
 *      lease of a worker that died.  A request holds at most one lease,
 *      given back by tg_limit_release exactly once (the request's end).
 */
#ifndef TG_WORKER_LIMIT_H
#define TG_WORKER_LIMIT_H

#include "shm/keys.h"
#include "worker/worker.h"

#include <stdint.h>

/* Why a request was refused (tg_limit_admit). */
typedef struct {
    uint64_t retry_us; /* when trying again makes sense */
    const char *msg;   /* for the client, static */
    uint32_t reason;   /* TG_SHM_REFUSE_* (shm/metrics.h) */
} tg_limit_refusal_t;

/* Set up <w>'s lease stack.  TG_OK or TG_ERROR (logged); startup only. */
int tg_limit_init(tg_worker_t *w);
void tg_limit_fini(tg_worker_t *w);

/*
 * Admit a request of <key> (its rate-limit entry is slot <slot>): on TG_OK
 * *<lease> holds a concurrency lease for tg_limit_release.  TG_DECLINED
 * with <why> filled when a limit refuses it (the caller answers 429);
 * nothing is held then.
 */
int tg_limit_admit(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                   int *lease, tg_limit_refusal_t *why);

/* Give back the lease in *<lease> (if any; -1 afterwards). */
void tg_limit_release(tg_worker_t *w, int *lease);

/* Charge <tokens> to <key>'s minute window (entry <slot>) and its user's
 * quota. */
void tg_limit_charge(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                     uint64_t tokens);

#endif /* TG_WORKER_LIMIT_H */
