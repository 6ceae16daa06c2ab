/*
 * admin/api_routes.c
 *      Admin API: the route table, the field specs of every resource, and
 *      the steps done in C around each route's one database call.
 *
 * NOTES
 *      Admin only.  A route is one tg_api.<name>($1 context, $2 arguments)
 *      call, so the change and its audit row commit together.  What C does
 *      around it is what must not reach PostgreSQL in clear: a new API key
 *      or token becomes its digest, prefix and last4 (the plaintext is
 *      shown once in the answer), a password becomes its scrypt hash, an
 *      endpoint credential is sealed with AES-256-GCM (purpose
 *      "endpoint:<name>", admin/api_endpoints.c), and an approved new key
 *      is sealed for its
 *      applicant (purpose "application:<id>") and opened once when they
 *      read the application.  Endpoint answers gain the live state of
 *      shared memory under "live", matched by name.
 */
#include "admin/agg.h"
#include "admin/api_int.h"
#include "admin/api_usage.h"
#include "admin/health.h"
#include "admin/metrics.h"
#include "admin/webhook.h"
#include "core/log.h"
#include "shm/shm.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_API_BIG    TG_API_ID_MAX
#define TG_API_I32    2147483647
#define TG_API_DAY_MS 86400000
#define TG_API_ID_FIELD(n)                                                     \
    {                                                                          \
        n, TG_API_F_INT, 0, 1, TG_API_ID_MAX, NULL, NULL                       \
    }
#define TG_API_END                                                             \
    {                                                                          \
        NULL, 0, 0, 0, 0, NULL, NULL                                           \
    }

static const char *const tg_api_roles[] = {"admin", "user", NULL};
static const char *const tg_api_user_status[] = {"active", "disabled", NULL};
static const char *const tg_api_ep_status[] = {"enabled", "disabled", NULL};
static const char *const tg_api_styles[] = {"anthropic", "openai", NULL};
static const char *const tg_api_prios[] = {"primary", "secondary", "fallback",
                                           NULL};
static const char *const tg_api_kinds[] = {"model_access", "quota_increase",
                                           "new_key", NULL};
static const char *const tg_api_app_status[] = {"pending", "approved",
                                                "rejected", NULL};
static const char *const tg_api_strategies[] = {
    "round-robin", "weighted", "least-connections", "latency", "cost", NULL};

/* Query parameters. */
static const tg_api_field_t tg_api_q_page[] = {
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_q_users[] = {
    {"q", TG_API_F_STRING, 0, 1, 128, NULL, NULL},
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_user_status, NULL},
    {"role", TG_API_F_ENUM, 0, 0, 0, tg_api_roles, NULL},
    {"group", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_q_keys[] = {
    {"q", TG_API_F_STRING, 0, 1, 128, NULL, NULL},
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_user_status, NULL},
    TG_API_ID_FIELD("user_id"),
    TG_API_END};
static const char *const tg_api_formats[] = {"csv", "json", NULL};
static const char *const tg_api_masks[] = {"email", NULL};
static const tg_api_field_t tg_api_q_export[] = {
    {"format", TG_API_F_ENUM, 0, 0, 0, tg_api_formats, NULL},
    {"mask", TG_API_F_ENUM, 0, 0, 0, tg_api_masks, NULL},
    {"q", TG_API_F_STRING, 0, 1, 128, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_user_status, NULL},
    {"group", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    TG_API_ID_FIELD("user_id"),
    TG_API_END};
static const tg_api_field_t tg_api_q_apps[] = {
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_app_status, NULL},
    {"kind", TG_API_F_ENUM, 0, 0, 0, tg_api_kinds, NULL},
    TG_API_ID_FIELD("user_id"),
    TG_API_END};
static const tg_api_field_t tg_api_q_eps[] = {
    {"q", TG_API_F_STRING, 0, 1, 128, NULL, NULL},
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_ep_status, NULL},
    {"group", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_q_ep_events[] = {
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    {"from", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    {"to", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_q_audit[] = {
    {"limit", TG_API_F_INT, 0, 1, 500, NULL, NULL},
    {"cursor", TG_API_F_INT, 0, 0, TG_API_ID_MAX, NULL, NULL},
    TG_API_ID_FIELD("actor"),
    {"action", TG_API_F_STRING, 0, 1, 64, NULL, NULL},
    {"target_type", TG_API_F_STRING, 0, 1, 64, NULL, NULL},
    TG_API_ID_FIELD("target_id"),
    {"from", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    {"to", TG_API_F_TIME, 0, 0, 0, NULL, NULL},
    TG_API_END};

/* Bodies. */
static const tg_api_field_t tg_api_b_login[] = {
    {"username", TG_API_F_STRING, TG_API_REQUIRED, 1, 64, NULL, NULL},
    {"password", TG_API_F_STRING, TG_API_REQUIRED, 1, 1024, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_code[] = {
    {"username", TG_API_F_STRING, TG_API_REQUIRED, 1, 64, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_verify[] = {
    {"username", TG_API_F_STRING, TG_API_REQUIRED, 1, 64, NULL, NULL},
    {"code", TG_API_F_STRING, TG_API_REQUIRED, 6, 6, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_token[] = {
    {"name", TG_API_F_STRING, TG_API_REQUIRED, 1, 128, NULL, NULL},
    {"ttl_seconds", TG_API_F_INT, TG_API_NULLABLE, 60, 10 * 366 * 86400LL, NULL,
     NULL},
    TG_API_END};

#define TG_API_QUOTA_FIELDS                                                    \
    {"tokens_day", TG_API_F_INT, TG_API_NULLABLE, 0, TG_API_BIG, NULL, NULL},  \
        {"tokens_month", TG_API_F_INT, TG_API_NULLABLE, 0, TG_API_BIG,         \
         NULL,           NULL},                                                \
        {"cost_day_usd", TG_API_F_DECIMAL, TG_API_NULLABLE, 0, 0, NULL, NULL}, \
    {                                                                          \
        "cost_month_usd", TG_API_F_DECIMAL, TG_API_NULLABLE, 0, 0, NULL, NULL  \
    }

static const tg_api_field_t tg_api_b_user[] = {
    {"username", TG_API_F_STRING, TG_API_REQUIRED, 1, 64, NULL, NULL},
    {"email", TG_API_F_STRING, TG_API_NULLABLE, 3, 254, NULL, NULL},
    {"password", TG_API_F_STRING, TG_API_NULLABLE, 8, 1024, NULL, NULL},
    {"role", TG_API_F_ENUM, 0, 0, 0, tg_api_roles, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_user_status, NULL},
    {"group", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    TG_API_QUOTA_FIELDS,
    TG_API_END};

#define TG_API_KEY_FIELDS                                                      \
    {"name", TG_API_F_STRING, 0, 0, 128, NULL, NULL},                          \
        {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_user_status, NULL},          \
        {"expires_at", TG_API_F_TIME, TG_API_NULLABLE, 0, 0, NULL, NULL},      \
        {"models", TG_API_F_STRINGS, 0, 0, 16, NULL, NULL},                    \
        {"rpm", TG_API_F_INT, 0, 0, TG_API_I32, NULL, NULL},                   \
        {"burst", TG_API_F_INT, 0, 0, TG_API_I32, NULL, NULL},                 \
        {"tpm", TG_API_F_INT, 0, 0, TG_API_I32, NULL, NULL},                   \
        {"concurrency", TG_API_F_INT, 0, 0, TG_API_I32, NULL, NULL},           \
        {"group", TG_API_F_STRING, TG_API_NULLABLE, 1, 63, NULL, NULL},        \
        TG_API_QUOTA_FIELDS

static const tg_api_field_t tg_api_b_key_create[] = {
    TG_API_ID_FIELD("user_id"), TG_API_KEY_FIELDS, TG_API_END};
static const tg_api_field_t tg_api_b_key_update[] = {TG_API_KEY_FIELDS,
                                                     TG_API_END};

static const tg_api_field_t tg_api_b_app_quota[] = {TG_API_QUOTA_FIELDS,
                                                    TG_API_END};
static const tg_api_field_t tg_api_b_app[] = {
    {"kind", TG_API_F_ENUM, TG_API_REQUIRED, 0, 0, tg_api_kinds, NULL},
    TG_API_ID_FIELD("key_id"),
    {"models", TG_API_F_STRINGS, 0, 0, 16, NULL, NULL},
    {"quota", TG_API_F_OBJECT, 0, 0, 0, NULL, tg_api_b_app_quota},
    {"key", TG_API_F_OBJECT, 0, 0, 0, NULL, tg_api_b_key_update},
    {"reason", TG_API_F_STRING, 0, 0, 2000, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_decide[] = {
    {"comment", TG_API_F_STRING, 0, 0, 2000, NULL, NULL}, TG_API_END};

static const tg_api_field_t tg_api_b_rename[] = {
    {"from", TG_API_F_STRING, TG_API_REQUIRED, 1, 127, NULL, NULL},
    {"to", TG_API_F_STRING, TG_API_REQUIRED, 1, 127, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_endpoint[] = {
    {"name", TG_API_F_STRING, TG_API_REQUIRED, 1, 63, NULL, NULL},
    {"group", TG_API_F_STRING, 0, 1, 63, NULL, NULL},
    {"url", TG_API_F_STRING, TG_API_REQUIRED, 8, 511, NULL, NULL},
    {"style", TG_API_F_ENUM, TG_API_REQUIRED, 0, 0, tg_api_styles, NULL},
    {"credential", TG_API_F_STRING, TG_API_REQUIRED, 1, 1024, NULL, NULL},
    {"weight", TG_API_F_INT, 0, 1, 1000, NULL, NULL},
    {"priority", TG_API_F_ENUM, 0, 0, 0, tg_api_prios, NULL},
    {"models", TG_API_F_STRINGS, 0, 0, 16, NULL, NULL},
    {"model_map", TG_API_F_OBJECTS, TG_API_NULLABLE, 0, 16, NULL,
     tg_api_b_rename},
    {"proxy", TG_API_F_STRING, TG_API_NULLABLE, 1, 511, NULL, NULL},
    {"connect_timeout_ms", TG_API_F_INT, TG_API_NULLABLE, 1, TG_API_DAY_MS,
     NULL, NULL},
    {"first_byte_timeout_ms", TG_API_F_INT, TG_API_NULLABLE, 1, TG_API_DAY_MS,
     NULL, NULL},
    {"read_timeout_ms", TG_API_F_INT, TG_API_NULLABLE, 1, TG_API_DAY_MS, NULL,
     NULL},
    {"total_timeout_ms", TG_API_F_INT, TG_API_NULLABLE, 1, TG_API_DAY_MS, NULL,
     NULL},
    {"tls_verify", TG_API_F_BOOL, TG_API_NULLABLE, 0, 0, NULL, NULL},
    {"health_path", TG_API_F_STRING, 0, 1, 255, NULL, NULL},
    {"health_interval_ms", TG_API_F_INT, 0, 0, TG_API_DAY_MS, NULL, NULL},
    {"health_timeout_ms", TG_API_F_INT, 0, 1, TG_API_DAY_MS, NULL, NULL},
    {"quota_cooldown_ms", TG_API_F_INT, 0, 0, 2678400000LL, NULL, NULL},
    {"price_factor", TG_API_F_DECIMAL, 0, 0, 0, NULL, NULL},
    {"status", TG_API_F_ENUM, 0, 0, 0, tg_api_ep_status, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_ep_test[] = {
    {"model", TG_API_F_STRING, 0, 1, 127, NULL, NULL}, TG_API_END};

static const tg_api_field_t tg_api_b_group[] = {
    {"name", TG_API_F_STRING, TG_API_REQUIRED, 1, 63, NULL, NULL},
    {"description", TG_API_F_STRING, 0, 0, 512, NULL, NULL},
    {"strategy", TG_API_F_ENUM, 0, 0, 0, tg_api_strategies, NULL},
    {"failure_threshold", TG_API_F_INT, 0, 1, 1000, NULL, NULL},
    {"cooldown_ms", TG_API_F_INT, 0, 1, TG_API_DAY_MS, NULL, NULL},
    {"max_retries", TG_API_F_INT, 0, 0, 16, NULL, NULL},
    {"retry_deadline_ms", TG_API_F_INT, 0, 1, TG_API_DAY_MS, NULL, NULL},
    {"sticky", TG_API_F_BOOL, 0, 0, 0, NULL, NULL},
    {"sticky_ttl_ms", TG_API_F_INT, 0, 1, 604800000, NULL, NULL},
    {"exploration", TG_API_F_DECIMAL, 0, 0, 0, NULL, NULL},
    {"translate", TG_API_F_BOOL, 0, 0, 0, NULL, NULL},
    {"wait_for_cooldown_ms", TG_API_F_INT, 0, 0, 60000, NULL, NULL},
    TG_API_END};
static const tg_api_field_t tg_api_b_none[] = {TG_API_END};


/* Replace "password" in the arguments by "password_hash". */
static int
tg_api_password_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    json_t *pw = json_object_get(r->args, "password");
    char hash[TG_CRYPTO_HASH_MAX];
    int rc = TG_OK;

    if (pw == NULL) {
        return TG_OK;
    }
    if (json_is_null(pw)) {
        rc = json_object_set_new(r->args, "password_hash", json_null());
    } else if (tg_crypto_password_hash(json_string_value(pw),
                                       json_string_length(pw), hash) != TG_OK) {
        tg_api_error_set(e, 503, NULL, "password hashing failed");
        return TG_ERROR;
    } else {
        rc = json_object_set_new(r->args, "password_hash", json_string(hash));
    }
    json_object_del(r->args, "password");
    /* The body still holds the plaintext; it is not needed any more. */
    json_object_del(r->body, "password");
    if (rc != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* A new API key into the arguments; the plaintext waits in r->secret. */
static int
tg_api_newkey_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    tg_crypto_apikey_t k;
    int rc = TG_OK;

    if (tg_crypto_apikey_create(&k) != TG_OK) {
        tg_api_error_set(e, 503, NULL, "no randomness available");
        return TG_ERROR;
    }
    memcpy(r->secret, k.key, sizeof(r->secret));
    if (json_object_set_new(r->args, "digest", json_string(k.digest_hex)) ||
        json_object_set_new(r->args, "prefix", json_string(k.prefix)) ||
        json_object_set_new(r->args, "last4", json_string(k.last4))) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        rc = TG_ERROR;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}


/* The key made by tg_api_newkey_prep goes out once. */
static int
tg_api_newkey_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    if (json_object_set_new(result, "key", json_string(r->secret)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Seal <n> bytes of <pt> for <purpose> into hex members <ct_name> and
 * <id_name> of r->args. */
static int
tg_api_seal_into(tg_api_req_t *r, const char *purpose, const char *pt, size_t n,
                 const char *ct_name, const char *id_name, tg_api_error_t *e)
{
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + 1024];
    char hex[2 * sizeof(sealed) + 1], id[TG_CRYPTO_KEYID_LEN + 1];
    size_t len;

    if (!r->api->have_keys) {
        tg_api_error_set(e, 503, NULL,
                         "admin.secret_key could not be loaded; secrets "
                         "cannot be stored");
        return TG_ERROR;
    }
    if (tg_crypto_seal(&r->api->keyring, purpose, pt, n, sealed, sizeof(sealed),
                       &len, id) != TG_OK) {
        tg_api_error_set(e, 503, NULL, "sealing the secret failed");
        return TG_ERROR;
    }
    tg_crypto_hex(sealed, len, hex);
    if (json_object_set_new(r->args, ct_name, json_string(hex)) ||
        json_object_set_new(r->args, id_name, json_string(id))) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Seal a new endpoint's credential under its name. */
static int
tg_api_endpoint_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    json_t *cred = json_object_get(r->args, "credential");
    json_t *name = json_object_get(r->args, "name");

    if (cred == NULL) {
        return TG_OK;
    }
    return tg_api_endpoint_seal(r, json_string_value(name),
                                json_string_value(cred),
                                json_string_length(cred), e);
}


/* Approving: a new key ready in case the application asks for one; the
 * plaintext is sealed for the applicant and never stored in clear. */
static int
tg_api_approve_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    char purpose[64];

    if (!r->api->have_keys) {
        /* Approvals of other kinds still work; a new_key one fails in
         * the database for want of the key fields. */
        return TG_OK;
    }
    if (tg_api_newkey_prep(r, e) != TG_OK) {
        return TG_ERROR;
    }
    snprintf(purpose, sizeof(purpose), "application:%lld", (long long)r->id);
    return tg_api_seal_into(r, purpose, r->secret, strlen(r->secret),
                            "secret_ciphertext", "secret_key_id", e);
}


/* The disable and enable routes: the status they set. */
static int
tg_api_status_set(tg_api_req_t *r, const char *status, tg_api_error_t *e)
{
    if (json_object_set_new(r->args, "status", json_string(status)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


static int
tg_api_disabled_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    return tg_api_status_set(r, "disabled", e);
}


static int
tg_api_active_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    return tg_api_status_set(r, "active", e);
}


/* Drop what must never be sent from one item. */
static void
tg_api_strip(json_t *item)
{
    json_object_del(item, "secret_ciphertext");
    json_object_del(item, "secret_key_id");
    json_object_del(item, "credential_ciphertext");
    json_object_del(item, "password_hash");
    json_object_del(item, "digest");
}


/* An applicant reads an approved new_key application: open the sealed key
 * (the database has already cleared it) and show it this once. */
static int
tg_api_app_get_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *ct = json_object_get(result, "secret_ciphertext");
    json_t *kid = json_object_get(result, "secret_key_id");
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + 256], key[256];
    char purpose[64];
    size_t n, m;
    tg_err_t err;
    int rc = TG_OK;

    if (json_is_string(ct) && json_is_string(kid)) {
        snprintf(purpose, sizeof(purpose), "application:%lld",
                 (long long)r->id);
        if (tg_crypto_unhex(json_string_value(ct), json_string_length(ct),
                            sealed, sizeof(sealed), &n) != TG_OK ||
            tg_crypto_open(&r->api->keyring, json_string_value(kid), purpose,
                           sealed, n, key, sizeof(key) - 1, &m,
                           &err) != TG_OK) {
            tg_log(TG_LOG_ERR, 0,
                   "application %lld: the new key cannot be "
                   "opened: %s",
                   (long long)r->id, err.text);
            tg_api_error_set(e, 500, NULL,
                             "the new key could not be decrypted; ask an "
                             "administrator to rotate it");
            rc = TG_ERROR;
        } else {
            key[m] = '\0';
            rc = json_object_set_new(result, "key",
                                     json_string((const char *)key)) == 0
                     ? TG_OK
                     : TG_ERROR;
        }
        OPENSSL_cleanse(key, sizeof(key));
    }
    tg_api_strip(result);
    return rc;
}


/* Lists: strip every item. */
static int
tg_api_list_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *item;
    size_t i;

    (void)r;
    (void)e;
    json_array_foreach(json_object_get(result, "items"), i, item)
    {
        tg_api_strip(item);
    }
    return TG_OK;
}


/* The live shared-memory view of the configured endpoints, by name. */
static json_t *
tg_api_live(tg_api_t *a)
{
    json_t *arr, *map, *item;
    size_t len, i;
    char *s;

    s = tg_health_endpoints_json(a->conf, a->shm, &len);
    arr = s ? json_loadb(s, len, 0, NULL) : NULL;
    free(s);
    map = json_object();
    json_array_foreach(arr, i, item)
    {
        json_t *name = json_object_get(item, "name");

        if (map != NULL && json_is_string(name)) {
            json_object_set(map, json_string_value(name), item);
        }
    }
    json_decref(arr);
    return map;
}


static void
tg_api_live_add(json_t *live, json_t *item)
{
    json_t *name = json_object_get(item, "name");
    json_t *v = json_is_string(name)
                    ? json_object_get(live, json_string_value(name))
                    : NULL;

    tg_api_strip(item);
    json_object_set(item, "live", v ? v : json_null());
}


/* See api_int.h. */
int
tg_api_endpoint_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *live = tg_api_live(r->api), *items, *item;
    size_t i;

    (void)e;
    items = json_object_get(result, "items");
    if (json_is_array(items)) {
        json_array_foreach(items, i, item)
        {
            tg_api_live_add(live, item);
        }
    } else {
        tg_api_live_add(live, result);
    }
    json_decref(live);
    return TG_OK;
}


/* Enabling also re-enables a configured endpoint that a breaker, a
 * cool-down or a spend cap took out of rotation. */
static int
tg_api_endpoint_enable_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *name = json_object_get(result, "name");

    if (json_is_string(name)) {
        (void)tg_health_reenable(
            r->api->conf, r->api->shm,
            (tg_str_t){json_string_value(name), json_string_length(name)});
    }
    return tg_api_endpoint_post(r, result, e);
}


/* GET /healthz: unauthenticated; the process answers, and says how the
 * database is. */
static void
tg_api_healthz(tg_api_req_t *r)
{
    tg_api_respond(r, 200,
                   json_pack("{s:s,s:s}", "status", "ok", "database",
                             tg_api_db_state(r->api)));
}


/* GET /admin/api/status: processes, counters and endpoints from shm. */
static void
tg_api_status(tg_api_req_t *r)
{
    tg_shm_t *shm = r->api->shm;
    tg_shm_hdr_t *hdr = tg_shm_hdr(shm);
    uint32_t i, cap = tg_shm_capacity(shm, TG_SHM_T_PROCS);
    json_t *body, *procs, *eps, *usage;
    size_t len;
    char *s;

    procs = json_array();
    for (i = 0; procs != NULL && i < cap; i++) {
        tg_shm_proc_t *p = tg_shm_proc(shm, i);
        int32_t pid = atomic_load(&p->pid);

        if (pid == 0) {
            continue;
        }
        json_array_append_new(
            procs,
            json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I}", "pid", (int)pid,
                      "generation", (json_int_t)atomic_load(&p->generation),
                      "requests", (json_int_t)atomic_load(&p->requests),
                      "connections", (json_int_t)atomic_load(&p->connections),
                      "active", (json_int_t)atomic_load(&p->active), "inflight",
                      (json_int_t)atomic_load(&p->inflight), "errors",
                      (json_int_t)atomic_load(&p->errors)));
    }
    s = tg_health_endpoints_json(r->api->conf, shm, &len);
    eps = s ? json_loadb(s, len, 0, NULL) : NULL;
    free(s);
    usage = json_pack("{s:I,s:I,s:I,s:I}", "records",
                      (json_int_t)tg_agg_stats()->records, "spooled",
                      (json_int_t)tg_agg_stats()->spooled, "skipped",
                      (json_int_t)tg_agg_stats()->skipped, "bad",
                      (json_int_t)tg_agg_stats()->bad);
    body = json_pack(
        "{s:s,s:I,s:I,s:i,s:o,s:i,s:o,s:s,s:o}", "version", TG_VERSION,
        "generation", (json_int_t)atomic_load(&hdr->generation), "shm_bytes",
        (json_int_t)hdr->total_size, "layout_version", (int)hdr->layout_version,
        "processes", procs ? procs : json_array(), "keys",
        (int)atomic_load(&tg_shm_keys(shm)->used), "usage",
        usage ? usage : json_object(), "database", tg_api_db_state(r->api),
        "endpoints", eps ? eps : json_array());
    tg_api_respond(r, 200, body);
}


/* GET /metrics: unauthenticated, like every Prometheus exporter; the
 * admin listener is meant for a private address (docs/metrics.md). */
static void
tg_api_metrics(tg_api_req_t *r)
{
    tg_buf_t b;

    tg_buf_init(&b, TG_METRICS_MAX);
    if (tg_metrics_render(r->api->conf, r->api->shm, &b) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "/metrics: rendering failed (out of memory)");
        tg_api_fail(r, 503, NULL, "out of memory");
    } else {
        tg_api_send_type(r, 200, TG_METRICS_CONTENT_TYPE, b.data + b.pos,
                         tg_buf_len(&b));
    }
    tg_buf_fini(&b);
}


/* Routes: order matters only among patterns that match the same paths:
 * /admin/api/keys/export comes before /admin/api/keys/{id}. */
const tg_api_route_t tg_api_routes[] = {
    {TG_HTTP_GET, "/healthz", NULL, NULL, NULL, TG_API_R_PUBLIC, NULL, NULL,
     tg_api_healthz, 200},
    {TG_HTTP_POST, "/admin/api/auth/login", NULL, tg_api_b_login, NULL,
     TG_API_R_PUBLIC, NULL, NULL, tg_api_auth_login, 200},
    {TG_HTTP_POST, "/admin/api/auth/code", NULL, tg_api_b_code, NULL,
     TG_API_R_PUBLIC, NULL, NULL, tg_api_auth_code, 202},
    {TG_HTTP_POST, "/admin/api/auth/code/verify", NULL, tg_api_b_verify, NULL,
     TG_API_R_PUBLIC, NULL, NULL, tg_api_auth_code_verify, 200},
    {TG_HTTP_POST, "/admin/api/auth/logout", TG_API_SQL("session_revoke"),
     tg_api_b_none, NULL, 0, tg_api_auth_logout_prep, NULL, NULL, 200},
    {TG_HTTP_GET, "/admin/api/status", NULL, NULL, NULL, TG_API_R_ADMIN, NULL,
     NULL, tg_api_status, 200},
    {TG_HTTP_GET, "/metrics", NULL, NULL, NULL, TG_API_R_PUBLIC, NULL, NULL,
     tg_api_metrics, 200},

    {TG_HTTP_GET, "/admin/api/tokens", TG_API_SQL("tokens_list"), NULL,
     tg_api_q_page, 0, NULL, tg_api_list_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/tokens", TG_API_SQL("tokens_create"),
     tg_api_b_token, NULL, TG_API_R_ADMIN, tg_api_auth_token_prep,
     tg_api_auth_token_post, NULL, 201},
    {TG_HTTP_DELETE, "/admin/api/tokens/{id}", TG_API_SQL("tokens_delete"),
     NULL, NULL, 0, NULL, NULL, NULL, 200},

    {TG_HTTP_GET, "/admin/api/users", TG_API_SQL("users_list"), NULL,
     tg_api_q_users, 0, NULL, tg_api_list_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/users", TG_API_SQL("users_create"),
     tg_api_b_user, NULL, 0, tg_api_password_prep, NULL, NULL, 201},
    {TG_HTTP_GET, "/admin/api/users/{id}", TG_API_SQL("users_get"), NULL, NULL,
     0, NULL, NULL, NULL, 200},
    {TG_HTTP_PATCH, "/admin/api/users/{id}", TG_API_SQL("users_update"),
     tg_api_b_user, NULL, TG_API_R_PARTIAL, tg_api_password_prep, NULL, NULL,
     200},
    {TG_HTTP_DELETE, "/admin/api/users/{id}", TG_API_SQL("users_delete"), NULL,
     NULL, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/users/{id}/disable",
     TG_API_SQL("users_set_status"), tg_api_b_none, NULL, 0,
     tg_api_disabled_prep, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/users/{id}/enable",
     TG_API_SQL("users_set_status"), tg_api_b_none, NULL, 0, tg_api_active_prep,
     NULL, NULL, 200},

    {TG_HTTP_GET, "/admin/api/keys", TG_API_SQL("keys_list"), NULL,
     tg_api_q_keys, 0, NULL, tg_api_list_post, NULL, 200},
    {TG_HTTP_GET, "/admin/api/keys/export", NULL, NULL, tg_api_q_export, 0,
     NULL, NULL, tg_api_keys_export, 200},
    {TG_HTTP_POST, "/admin/api/keys", TG_API_SQL("keys_create"),
     tg_api_b_key_create, NULL, 0, tg_api_newkey_prep, tg_api_newkey_post, NULL,
     201},
    {TG_HTTP_GET, "/admin/api/keys/{id}", TG_API_SQL("keys_get"), NULL, NULL, 0,
     NULL, NULL, NULL, 200},
    {TG_HTTP_PATCH, "/admin/api/keys/{id}", TG_API_SQL("keys_update"),
     tg_api_b_key_update, NULL, TG_API_R_PARTIAL, NULL, NULL, NULL, 200},
    {TG_HTTP_DELETE, "/admin/api/keys/{id}", TG_API_SQL("keys_delete"), NULL,
     NULL, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/keys/{id}/disable",
     TG_API_SQL("keys_set_status"), tg_api_b_none, NULL, 0,
     tg_api_disabled_prep, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/keys/{id}/enable", TG_API_SQL("keys_set_status"),
     tg_api_b_none, NULL, 0, tg_api_active_prep, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/keys/{id}/rotate", TG_API_SQL("keys_rotate"),
     tg_api_b_none, NULL, 0, tg_api_newkey_prep, tg_api_newkey_post, NULL, 200},

    {TG_HTTP_GET, "/admin/api/applications", TG_API_SQL("applications_list"),
     NULL, tg_api_q_apps, 0, NULL, tg_api_list_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/applications", TG_API_SQL("applications_create"),
     tg_api_b_app, NULL, 0, NULL, NULL, NULL, 201},
    {TG_HTTP_GET, "/admin/api/applications/{id}",
     TG_API_SQL("applications_get"), NULL, NULL, 0, NULL, tg_api_app_get_post,
     NULL, 200},
    {TG_HTTP_POST, "/admin/api/applications/{id}/approve",
     TG_API_SQL("applications_approve"), tg_api_b_decide, NULL, 0,
     tg_api_approve_prep, tg_api_app_get_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/applications/{id}/reject",
     TG_API_SQL("applications_reject"), tg_api_b_decide, NULL, 0, NULL,
     tg_api_app_get_post, NULL, 200},

    {TG_HTTP_GET, "/admin/api/endpoints", TG_API_SQL("endpoints_list"), NULL,
     tg_api_q_eps, 0, NULL, tg_api_endpoint_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/endpoints", TG_API_SQL("endpoints_create"),
     tg_api_b_endpoint, NULL, 0, tg_api_endpoint_prep, tg_api_endpoint_post,
     NULL, 201},
    {TG_HTTP_GET, "/admin/api/endpoints/{id}", TG_API_SQL("endpoints_get"),
     NULL, NULL, 0, NULL, tg_api_endpoint_post, NULL, 200},
    {TG_HTTP_PATCH, "/admin/api/endpoints/{id}", TG_API_SQL("endpoints_update"),
     tg_api_b_endpoint, NULL, TG_API_R_PARTIAL, NULL, tg_api_endpoint_post,
     tg_api_endpoint_update, 200},
    {TG_HTTP_DELETE, "/admin/api/endpoints/{id}",
     TG_API_SQL("endpoints_delete"), NULL, NULL, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/endpoints/{id}/disable",
     TG_API_SQL("endpoints_set_status"), tg_api_b_none, NULL, 0,
     tg_api_disabled_prep, tg_api_endpoint_post, NULL, 200},
    {TG_HTTP_POST, "/admin/api/endpoints/{id}/enable",
     TG_API_SQL("endpoints_set_status"), tg_api_b_none, NULL, 0, NULL,
     tg_api_endpoint_enable_post, tg_api_endpoint_enable, 200},
    {TG_HTTP_POST, "/admin/api/endpoints/{id}/test", NULL, tg_api_b_ep_test,
     NULL, TG_API_R_ADMIN, NULL, NULL, tg_api_endpoint_test, 200},
    {TG_HTTP_GET, "/admin/api/endpoints/{id}/events",
     TG_API_SQL("endpoint_events_list"), NULL, tg_api_q_ep_events,
     TG_API_R_ADMIN, NULL, NULL, NULL, 200},

    {TG_HTTP_GET, "/admin/api/groups", TG_API_SQL("groups_list"), NULL,
     tg_api_q_page, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/groups", TG_API_SQL("groups_create"),
     tg_api_b_group, NULL, 0, NULL, NULL, NULL, 201},
    {TG_HTTP_GET, "/admin/api/groups/{id}", TG_API_SQL("groups_get"), NULL,
     NULL, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_PATCH, "/admin/api/groups/{id}", TG_API_SQL("groups_update"),
     tg_api_b_group, NULL, TG_API_R_PARTIAL, NULL, NULL, NULL, 200},
    {TG_HTTP_DELETE, "/admin/api/groups/{id}", TG_API_SQL("groups_delete"),
     NULL, NULL, 0, NULL, NULL, NULL, 200},

    {TG_HTTP_GET, "/admin/api/audit", TG_API_SQL("audit_list"), NULL,
     tg_api_q_audit, 0, NULL, NULL, NULL, 200},

    {TG_HTTP_GET, "/admin/api/usage", TG_API_SQL("usage_list"), NULL,
     tg_api_q_usage, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_GET, "/admin/api/prices", TG_API_SQL("prices_list"), NULL,
     tg_api_q_prices, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_POST, "/admin/api/prices", TG_API_SQL("prices_create"),
     tg_api_b_price, NULL, TG_API_R_ADMIN, NULL, NULL, NULL, 201},
    {TG_HTTP_GET, "/admin/api/prices/{id}", TG_API_SQL("prices_get"), NULL,
     NULL, 0, NULL, NULL, NULL, 200},
    {TG_HTTP_PATCH, "/admin/api/prices/{id}", TG_API_SQL("prices_update"),
     tg_api_b_price, NULL, TG_API_R_ADMIN | TG_API_R_PARTIAL, NULL, NULL, NULL,
     200},
    {TG_HTTP_DELETE, "/admin/api/prices/{id}", TG_API_SQL("prices_delete"),
     NULL, NULL, TG_API_R_ADMIN, NULL, NULL, NULL, 200},
};

const size_t tg_api_nroutes = TG_NELEMS(tg_api_routes);
