/*
 * worker/auth.c
 *      Authentication and model allow-lists from shared memory.
 *
 * NOTES
 *      Worker only.  See auth.h.  Keys are compared by SHA-256 digest, so
 *      the comparison time does not depend on where two keys differ.
 */
#include "worker/auth.h"
#include "core/core.h"

#include <openssl/sha.h>
#include <string.h>


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


/* See auth.h. */
int
tg_auth_key(tg_shm_t *shm, const tg_http_req_t *r, tg_auth_t *a)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    tg_str_t key = tg_auth_client_key(r);
    tg_shm_user_t user;
    int rc;

    a->found = false;
    if (key.len == 0) {
        return TG_AUTH_MISSING;
    }
    if (key.len > 512) {
        return TG_AUTH_INVALID;
    }
    SHA256((const unsigned char *)key.data, key.len, d);
    rc = tg_shm_keys_lookup(tg_shm_keys(shm), d, &a->key, &a->slot);
    if (rc == TG_SHM_BUSY) {
        return TG_AUTH_BUSY;
    }
    if (rc != TG_SHM_OK) {
        return TG_AUTH_INVALID;
    }
    a->found = true;
    if (a->key.status != TG_SHM_KEY_ACTIVE) {
        return TG_AUTH_DISABLED;
    }
    if (a->key.expires_at != 0 &&
        (uint64_t)(tg_time_wall_ms() / 1000) >= a->key.expires_at) {
        return TG_AUTH_EXPIRED;
    }
    if (a->key.user != TG_SHM_USER_NONE) {
        rc = tg_shm_users_read(tg_shm_users(shm), a->key.user, &user);
        if (rc == TG_SHM_BUSY) {
            return TG_AUTH_BUSY;
        }
        if (rc != TG_SHM_OK || user.status != TG_SHM_USER_ACTIVE) {
            return TG_AUTH_USER_DISABLED;
        }
    }
    return TG_AUTH_OK;
}


/* See auth.h. */
int
tg_auth_model(tg_shm_t *shm, const tg_shm_key_t *key, const char *model)
{
    uint64_t mask;
    int rc;

    if (key->models == 0) {
        return TG_AUTH_OK;
    }
    rc = tg_shm_models_match(tg_shm_models(shm), model, strlen(model), &mask);
    if (rc == TG_SHM_BUSY) {
        return TG_AUTH_BUSY;
    }
    return tg_shm_keys_allows_model(key, mask) ? TG_AUTH_OK : TG_AUTH_MODEL;
}


/* See auth.h. */
const char *
tg_auth_message(int rc)
{
    switch (rc) {
    case TG_AUTH_MISSING:
        return "missing API key: send x-api-key or Authorization: Bearer";
    case TG_AUTH_INVALID:
        return "invalid API key";
    case TG_AUTH_DISABLED:
        return "API key is disabled";
    case TG_AUTH_EXPIRED:
        return "API key has expired";
    case TG_AUTH_USER_DISABLED:
        return "this user is disabled";
    case TG_AUTH_MODEL:
        return "this API key may not use this model";
    case TG_AUTH_BUSY:
        return "key table busy; retry";
    default:
        return "ok";
    }
}
