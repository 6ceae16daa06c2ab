/*
 * worker/auth.h
 *      Client authentication and the key's model allow-list, from shared
 *      memory.
 *
 * NOTES
 *      Worker only; never blocks; answers nothing itself: it returns what
 *      it found and the request path answers in the API's shape.  The key
 *      is looked up by the SHA-256 of what the client sent; nothing here
 *      ever keeps a key in plain text beyond the request head.  A seqlock
 *      that stays busy fails closed (TG_AUTH_BUSY, answered 503).
 */
#ifndef TG_WORKER_AUTH_H
#define TG_WORKER_AUTH_H

#include "core/http.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stdint.h>

/* tg_auth_key / tg_auth_model results. */
enum {
    TG_AUTH_OK = 0,
    TG_AUTH_MISSING,       /* no key sent (401) */
    TG_AUTH_INVALID,       /* unknown key (401) */
    TG_AUTH_DISABLED,      /* the key is disabled (401) */
    TG_AUTH_EXPIRED,       /* the key has expired (401) */
    TG_AUTH_USER_DISABLED, /* its user is disabled (403) */
    TG_AUTH_MODEL,         /* the model is not on the key's list (403) */
    TG_AUTH_BUSY           /* a table stayed busy (503, retryable) */
};

/* The key found by tg_auth_key. */
typedef struct {
    bool found;       /* a key entry was found (even a refused one) */
    uint32_t slot;    /* its slot, also its rate-limit entry */
    tg_shm_key_t key; /* consistent copy of the entry */
} tg_auth_t;

/*
 * Authenticate the request head <r> against the key table of <shm>: the
 * key exists, is active and not expired, and its user is active.  Fills
 * <a> (a->found once the entry was read).  Returns TG_AUTH_OK or the
 * reason for refusing.
 */
int tg_auth_key(tg_shm_t *shm, const tg_http_req_t *r, tg_auth_t *a);

/* Whether <key> may use <model> (NUL-terminated, "" for none): TG_AUTH_OK,
 * TG_AUTH_MODEL or TG_AUTH_BUSY. */
int tg_auth_model(tg_shm_t *shm, const tg_shm_key_t *key, const char *model);

/* The client-facing message for result <rc>, static. */
const char *tg_auth_message(int rc);

#endif /* TG_WORKER_AUTH_H */
