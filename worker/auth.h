/*
 * worker/auth.h
 *      Client authentication and authorization from shared memory, and
 *      the per-key and per-user limits checked before proxying.
 *
 * NOTES
 *      Worker only; never blocks.  The key is looked up by the SHA-256 of
 *      what the client sent; nothing here ever sees a key in plain text
 *      beyond the request head.  Every refusal is answered in the API's own
 *      error shape (401 authentication_error / invalid_api_key, 403
 *      permission_error / permission_denied, 429 rate_limit_error with
 *      retry-after).
 */
#ifndef TG_WORKER_AUTH_H
#define TG_WORKER_AUTH_H

#include "worker/conn.h"

/* Set up the worker's lease stack.  TG_OK or TG_ERROR (logged). */
int tg_auth_init(tg_worker_t *w);
void tg_auth_fini(tg_worker_t *w);

/*
 * Authenticate <c>'s request from its head: the key exists, is active and
 * not expired, and its user is active.  Returns TG_OK, or TG_ERROR after
 * answering.
 */
int tg_auth_key(tg_conn_t *c);

/*
 * With the body in: read the model it names, check the key's allow-list,
 * then the limits (requests per minute, tokens per minute, the user's
 * quota, concurrency).  On TG_OK the request holds a concurrency lease
 * that tg_auth_release gives back.  TG_ERROR after answering.
 */
int tg_auth_admit(tg_conn_t *c);

/* Give back <c>'s concurrency lease, if any. */
void tg_auth_release(tg_conn_t *c);

/* Charge <tokens> to the key's minute window and the user's quota. */
void tg_auth_charge(tg_conn_t *c, uint64_t tokens);

#endif /* TG_WORKER_AUTH_H */
