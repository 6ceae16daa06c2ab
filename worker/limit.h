/*
 * worker/limit.h
 *      Per-key and per-user limits: admission, release and charging, all
 *      in one place.
 *
 * NOTES
 *      Worker only; never blocks.  Admission checks, cheapest and least
 *      taking first: tokens per minute (reads only), concurrency (takes a
 *      lease), the quotas of the user and the key (reserve an estimate),
 *      requests per minute (charges a GCRA admission).  A refusal by a
 *      later check gives back what the earlier ones took, so a refused
 *      request holds nothing.  The lease is this worker's entry
 *      in its shm lease array (shm/rl.h), so master can give back every
 *      lease of a worker that died.  A request holds at most one lease,
 *      given back by tg_limit_release exactly once (the request's end).
 *
 *      Quotas (shm/quota.h): after the lease, the request's estimate
 *      (tg_limit_estimate: body bytes / 4 for input plus max_tokens,
 *      max_completion_tokens or max_output_tokens (Responses API),
 *      TG_LIMIT_OUTPUT_DEFAULT when absent; its
 *      cost at the model's list price) is reserved on the user's and the
 *      key's quota entries, recorded in this worker's reservation array
 *      at the lease's index.  tg_limit_end, called once by the request's
 *      end, settles it to the actual tokens and cost, charges the minute
 *      window and gives the lease back.  Periods are the day and month in
 *      usage.timezone (TZ is set by tg_limit_init).
 */
#ifndef TG_WORKER_LIMIT_H
#define TG_WORKER_LIMIT_H

#include "shm/keys.h"
#include "worker/worker.h"

#include <stdint.h>

#define TG_LIMIT_OUTPUT_DEFAULT 4096 /* output estimate without max_tokens */

/* Why a request was refused (tg_limit_admit). */
typedef struct {
    uint64_t retry_us; /* when trying again makes sense */
    const char *msg;   /* for the client: static, or <text> */
    uint32_t reason;   /* TG_SHM_REFUSE_* (shm/metrics.h) */
    char text[256];    /* a message naming the quota and its reset */
} tg_limit_refusal_t;

/* What a request asks for, for its quota reservation. */
typedef struct {
    const char *body;  /* request body (JSON) */
    size_t len;        /* its bytes */
    const char *model; /* model asked for, NUL-terminated */
} tg_limit_ask_t;

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
                   const tg_limit_ask_t *ask, int *lease,
                   tg_limit_refusal_t *why);

/*
 * The token estimate of a request body of <len> bytes at <body>: input
 * as len / 4, plus its max_tokens (or max_completion_tokens, or the
 * Responses API's max_output_tokens), or
 * TG_LIMIT_OUTPUT_DEFAULT; *<out> gets the output part.  Pure.
 */
uint64_t tg_limit_estimate(const char *body, size_t len, uint64_t *out);

/*
 * The request holding *<lease> ended: settle its quota reservation to
 * <tokens>[TG_TOK_N] (NULL: none seen) and <cost_pusd>, charge <key>'s
 * minute window and user (when <key> is not NULL, entry <slot>) and give
 * the lease back (-1 afterwards).  Once per request, from its end.
 */
void tg_limit_end(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                  int *lease, const uint64_t *tokens, uint64_t cost_pusd);

/* The current day and month starts (shm/quota.h) at wall time <now_s>,
 * cached until the nearest boundary.  Worker only. */
void tg_limit_periods(uint64_t now_s, uint64_t starts[2], uint64_t ends[2]);

/* Give back the lease in *<lease> (if any; -1 afterwards). */
void tg_limit_release(tg_worker_t *w, int *lease);

/* Charge <tokens> to <key>'s minute window (entry <slot>) and its user's
 * quota. */
void tg_limit_charge(tg_worker_t *w, const tg_shm_key_t *key, uint32_t slot,
                     uint64_t tokens);

#endif /* TG_WORKER_LIMIT_H */
