/*
 * admin/api_auth.c
 *      Admin API authentication: password login, verification codes,
 *      sessions, automation tokens, logout, the bootstrap administrator.
 *
 * NOTES
 *      Admin only.  Passwords are checked here, in C (scrypt, constant-time
 *      comparison); PostgreSQL sees only hashes and digests.  A login code
 *      never reaches the database in clear: its digest is
 *      SHA-256("<user_id>:<code>"), so the user id is looked up first.
 *      The code goes out only in the webhook's body and is wiped from
 *      memory when the request ends; no log line ever carries it.
 *
 *      An unknown user name gets the same answer as a wrong password (a
 *      scrypt is still computed, so the time taken does not tell either),
 *      and a code request for an unknown user answers as if sent.
 */
#include "admin/api_int.h"
#include "admin/webhook.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TG_API_CODE_TTL_S   300
#define TG_API_LOGINS_PER_S 8 /* password checks a second, all users */

/* A valid hash of a random password, checked when the user is unknown so
 * that both paths cost one scrypt. */
static const char tg_api_dummy_hash[] =
    "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";


/* The current UTC time in the API's format, for comparing with the
 * database's times (same format, so comparing strings is comparing
 * times). */
static void
tg_api_now_utc(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


static json_int_t
tg_api_user_id(json_t *user)
{
    json_t *v = json_object_get(user, "user_id");

    return json_is_integer(v) ? json_integer_value(v) : 0;
}


/* session_create answered: the token goes out once. */
static void
tg_api_session_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *body;

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    body = json_pack("{s:s,s:O,s:O}", "token", r->secret, "expires_at",
                     json_object_get(result, "expires_at")
                         ? json_object_get(result, "expires_at")
                         : json_null(),
                     "user",
                     json_object_get(result, "user")
                         ? json_object_get(result, "user")
                         : json_null());
    if (body == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    tg_api_respond(r, 200, body);
}


/* Make a session token for user <uid> and store its digest. */
static void
tg_api_session_start(tg_api_req_t *r, json_int_t uid)
{
    char digest[2 * TG_CRYPTO_DIGEST_LEN + 1];
    json_t *args;

    if (tg_crypto_token_create(TG_CRYPTO_SESSION_PREFIX, r->secret) != TG_OK) {
        tg_api_fail(r, 503, NULL, "no randomness available");
        return;
    }
    tg_crypto_digest_hex(r->secret, strlen(r->secret), digest);
    args = json_pack("{s:I,s:s,s:s,s:s,s:i}", "user_id", uid, "digest", digest,
                     "kind", "session", "name", "login", "ttl_seconds",
                     (int)r->api->opts.session_ttl_s);
    if (args == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("session_create"), args,
                      tg_api_session_done);
    json_decref(args);
}


/* auth_login_result answered: go on only after a good password. */
static void
tg_api_login_result_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *ok = json_object_get(r->state_json, "ok");

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    if (!json_is_true(ok)) {
        tg_api_fail(r, 401, NULL, "invalid username or password");
        return;
    }
    tg_api_session_start(r, tg_api_user_id(r->state_json));
}


/* auth_user answered a password login. */
static void
tg_api_login_user_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *pw = json_object_get(r->body, "password");
    json_t *hash = json_object_get(result, "password_hash");
    json_t *locked = json_object_get(result, "locked_until");
    json_t *status = json_object_get(result, "status");
    char now[32];
    bool good;
    json_t *args;

    if (result == NULL && e->status != 404 && e->status != 401) {
        tg_api_respond_error(r, e);
        return;
    }
    if (result == NULL || tg_api_user_id(result) == 0 ||
        !json_is_string(hash)) {
        (void)tg_crypto_password_verify(
            json_string_value(pw), json_string_length(pw), tg_api_dummy_hash);
        tg_api_fail(r, 401, NULL, "invalid username or password");
        return;
    }
    tg_api_now_utc(now);
    if (json_is_string(locked) && strcmp(json_string_value(locked), now) > 0) {
        tg_api_fail(r, 429, NULL, "too many failed logins; try again after %s",
                    json_string_value(locked));
        return;
    }
    good =
        tg_crypto_password_verify(json_string_value(pw), json_string_length(pw),
                                  json_string_value(hash)) == TG_OK;
    if (good && !(json_is_string(status) &&
                  strcmp(json_string_value(status), "active") == 0)) {
        tg_api_fail(r, 403, NULL, "this user is disabled");
        return;
    }
    json_decref(r->state_json);
    r->state_json =
        json_pack("{s:I,s:b}", "user_id", tg_api_user_id(result), "ok", good);
    args = json_pack("{s:I,s:b,s:s}", "user_id", tg_api_user_id(result), "ok",
                     good, "addr", r->addr);
    if (r->state_json == NULL || args == NULL) {
        json_decref(args);
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("auth_login_result"), args,
                      tg_api_login_result_done);
    json_decref(args);
}


/* Look up the user named in the body; <cb> gets auth_user's answer. */
static void
tg_api_user_lookup(tg_api_req_t *r, tg_api_call_cb cb)
{
    json_t *args =
        json_pack("{s:O}", "username", json_object_get(r->body, "username"));

    if (args == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("auth_user"), args, cb);
    json_decref(args);
}


/* POST /admin/api/auth/login {"username","password"}.  A password check
 * costs one scrypt (~50 ms of admin's loop), so at most
 * TG_API_LOGINS_PER_S are started a second, whoever asks: a flood of
 * logins with made-up names (which no per-user lockout catches) cannot
 * stall the loop that drains the usage ring. */
void
tg_api_auth_login(tg_api_req_t *r)
{
    static uint64_t second;
    static unsigned count;
    uint64_t now = tg_ev_now(r->api->loop) / 1000;

    if (now != second) {
        second = now;
        count = 0;
    }
    if (++count > TG_API_LOGINS_PER_S) {
        tg_api_fail(r, 429, NULL,
                    "too many logins at once; try again in a "
                    "second");
        return;
    }
    tg_api_user_lookup(r, tg_api_login_user_done);
}


/* The webhook answered. */
static void
tg_api_code_sent(void *ctx, const tg_webhook_result_t *res)
{
    tg_api_req_t *r = ctx;
    json_t *body;

    r->hook_pending = false;
    OPENSSL_cleanse(r->code, sizeof(r->code));
    if (res->transport != 0 || res->status < 200 || res->status > 299) {
        tg_log(TG_LOG_WARN, 0, "the login code webhook failed (%s%d)",
               res->transport ? res->error : "status ",
               res->transport ? 0 : res->status);
        tg_api_fail(r, 502, NULL, "the code could not be delivered");
        return;
    }
    body = json_pack("{s:b}", "sent", 1);
    tg_api_respond(r, 202, body);
}


/* code_create answered: send the code through the webhook. */
static void
tg_api_code_created(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    tg_webhook_req_t req;
    const char *hdr[] = {"Content-Type: application/json"};
    json_t *msg;
    char *s;

    if (result == NULL) {
        OPENSSL_cleanse(r->code, sizeof(r->code));
        tg_api_respond_error(r, e);
        return;
    }
    msg = json_pack("{s:O,s:O,s:s,s:O}", "username",
                    json_object_get(result, "username"), "email",
                    json_object_get(result, "email")
                        ? json_object_get(result, "email")
                        : json_null(),
                    "code", r->code, "expires_at",
                    json_object_get(result, "expires_at")
                        ? json_object_get(result, "expires_at")
                        : json_null());
    s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (s == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = r->api->opts.code_webhook;
    req.headers = hdr;
    req.nheaders = 1;
    req.body = s;
    req.len = strlen(s);
    req.timeout_ms = 10000;
    req.tls_verify = true;
    if (tg_webhook_send(&req, tg_api_code_sent, r) != TG_OK) {
        tg_api_fail(r, 503, NULL, "the code could not be sent now");
    } else {
        r->hook_pending = true;
    }
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}


/* auth_user answered a code request. */
static void
tg_api_code_user_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    char buf[32], digest[2 * TG_CRYPTO_DIGEST_LEN + 1];
    json_int_t uid = tg_api_user_id(result);
    json_t *args;
    int n;

    if (result == NULL && e->status != 404 && e->status != 401) {
        tg_api_respond_error(r, e);
        return;
    }
    if (uid == 0) {
        /* Same answer as a sent code: the route tells nobody who exists. */
        tg_api_respond(r, 202, json_pack("{s:b}", "sent", 1));
        return;
    }
    if (tg_crypto_code_create(r->code) != TG_OK) {
        tg_api_fail(r, 503, NULL, "no randomness available");
        return;
    }
    n = snprintf(buf, sizeof(buf), "%lld:%s", (long long)uid, r->code);
    tg_crypto_digest_hex(buf, (size_t)n, digest);
    OPENSSL_cleanse(buf, sizeof(buf));
    args = json_pack("{s:I,s:O,s:s,s:i,s:s}", "user_id", uid, "username",
                     json_object_get(r->body, "username"), "digest", digest,
                     "ttl_seconds", TG_API_CODE_TTL_S, "addr", r->addr);
    if (args == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("code_create"), args, tg_api_code_created);
    json_decref(args);
}


/* POST /admin/api/auth/code {"username"}. */
void
tg_api_auth_code(tg_api_req_t *r)
{
    const char *hook = r->api->opts.code_webhook;

    if (hook == NULL || hook[0] == '\0') {
        tg_api_fail(r, 503, NULL,
                    "code login is off: admin.code_webhook is not set");
        return;
    }
    tg_api_user_lookup(r, tg_api_code_user_done);
}


/* code_verify answered.  A wrong code is an answer, not an error (so
 * that its failure count commits): {"ok":false,"error":"TG401"|"TG429",
 * "message"}. */
static void
tg_api_code_verified(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    const char *code, *msg;

    if (result == NULL) {
        if (e->status == 404) {
            tg_api_fail(r, 401, NULL, "invalid or expired code");
        } else {
            tg_api_respond_error(r, e);
        }
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        code = json_string_value(json_object_get(result, "error"));
        msg = json_string_value(json_object_get(result, "message"));
        tg_api_fail(r, code && strcmp(code, "TG429") == 0 ? 429 : 401, NULL,
                    "%s", msg ? msg : "invalid or expired code");
        return;
    }
    tg_api_session_start(r, tg_api_user_id(r->state_json));
}


/* auth_user answered a code verification. */
static void
tg_api_verify_user_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *code = json_object_get(r->body, "code");
    char buf[48], digest[2 * TG_CRYPTO_DIGEST_LEN + 1];
    json_int_t uid = tg_api_user_id(result);
    json_t *args;
    int n;

    if (result == NULL && e->status != 404 && e->status != 401) {
        tg_api_respond_error(r, e);
        return;
    }
    if (uid == 0) {
        tg_api_fail(r, 401, NULL, "invalid or expired code");
        return;
    }
    n = snprintf(buf, sizeof(buf), "%lld:%s", (long long)uid,
                 json_string_value(code));
    tg_crypto_digest_hex(buf, (size_t)n, digest);
    OPENSSL_cleanse(buf, sizeof(buf));
    json_decref(r->state_json);
    r->state_json = json_pack("{s:I}", "user_id", uid);
    args = json_pack("{s:I,s:s,s:s}", "user_id", uid, "digest", digest, "addr",
                     r->addr);
    if (args == NULL || r->state_json == NULL) {
        json_decref(args);
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("code_verify"), args, tg_api_code_verified);
    json_decref(args);
}


/* POST /admin/api/auth/code/verify {"username","code"}. */
void
tg_api_auth_code_verify(tg_api_req_t *r)
{
    json_t *code = json_object_get(r->body, "code");
    size_t i;

    for (i = 0; i < json_string_length(code); i++) {
        if (json_string_value(code)[i] < '0' ||
            json_string_value(code)[i] > '9') {
            tg_api_fail(r, 400, "code", "code must be 6 digits");
            return;
        }
    }
    tg_api_user_lookup(r, tg_api_verify_user_done);
}


/* POST /admin/api/tokens: make the token, store its digest. */
int
tg_api_auth_token_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    char digest[2 * TG_CRYPTO_DIGEST_LEN + 1];

    if (tg_crypto_token_create(TG_CRYPTO_TOKEN_PREFIX, r->secret) != TG_OK) {
        tg_api_error_set(e, 503, NULL, "no randomness available");
        return TG_ERROR;
    }
    tg_crypto_digest_hex(r->secret, strlen(r->secret), digest);
    if (json_object_set_new(r->args, "digest", json_string(digest)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* The new token goes out once, beside what was stored. */
int
tg_api_auth_token_post(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    if (json_object_set_new(result, "token", json_string(r->secret)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* POST /admin/api/auth/logout: revoke the session that made the call. */
int
tg_api_auth_logout_prep(tg_api_req_t *r, tg_api_error_t *e)
{
    char digest[2 * TG_CRYPTO_DIGEST_LEN + 1];

    tg_crypto_digest_hex(r->token, r->token_len, digest);
    if (json_object_set_new(r->args, "digest", json_string(digest)) != 0) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* The bootstrap's context: Tollgate itself. */
static int
tg_api_bootstrap_query(tg_api_t *a, const char *sql, json_t *args,
                       tg_pg_done_cb cb)
{
    const char *params[2];
    json_t *ctx;
    char *p1, *p2;
    int rc = TG_ERROR;

    ctx = json_pack("{s:n,s:s,s:n,s:s}", "actor", "role", "system", "addr",
                    "host", a->host);
    p1 = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
    p2 = args ? json_dumps(args, JSON_COMPACT) : NULL;
    params[0] = p1;
    params[1] = p2;
    if (p1 != NULL && p2 != NULL &&
        tg_pg_query(tg_api_pg(), sql, 2, params, cb, a) == TG_OK) {
        rc = TG_OK;
    }
    json_decref(ctx);
    json_decref(args);
    free(p1);
    free(p2);
    return rc;
}


/* A bootstrap step failed: log once, retry later. */
static void
tg_api_bootstrap_failed(tg_api_t *a, const tg_pg_res_t *res)
{
    if (!a->bootstrap_logged) {
        tg_log(TG_LOG_ERR, 0,
               "creating the bootstrap administrator failed (%s: %s); "
               "retrying every 5 s",
               tg_pg_res_sqlstate(res), tg_pg_res_message(res));
        a->bootstrap_logged = true;
    }
    a->bootstrap = 3;
}


/* users_create answered. */
static void
tg_api_bootstrap_created(void *ctx, const tg_pg_res_t *res)
{
    tg_api_t *a = ctx;

    if (!tg_pg_res_ok(res)) {
        if (strcmp(tg_pg_res_sqlstate(res), "TG409") == 0 ||
            strcmp(tg_pg_res_sqlstate(res), "23505") == 0) {
            /* Another host won the race, or a non-administrator is
             * called "admin": either way this host creates nothing. */
            tg_log(TG_LOG_WARN, 0, "no bootstrap administrator created: %s",
                   tg_pg_res_message(res));
            a->bootstrap = 2;
            return;
        }
        tg_api_bootstrap_failed(a, res);
        return;
    }
    if (a->opts.bootstrap_password && a->opts.bootstrap_password[0]) {
        tg_log(TG_LOG_NOTICE, 0,
               "created the administrator \"admin\" with the password of "
               "admin.bootstrap_password");
    } else {
        /* By design the one place a secret is written to the log: a
         * newcomer needs the first administrator's password, and nothing
         * else exists yet to hand it over.  It is printed once, when the
         * user is created, and should be changed at the first login. */
        tg_log(TG_LOG_NOTICE, 0,
               "created the administrator \"admin\" with password %s "
               "(shown once; change it after logging in)",
               a->bootstrap_pw);
    }
    OPENSSL_cleanse(a->bootstrap_pw, sizeof(a->bootstrap_pw));
    OPENSSL_cleanse(a->bootstrap_hash, sizeof(a->bootstrap_hash));
    a->bootstrap = 2;
}


/* users_list of the administrators answered. */
static void
tg_api_bootstrap_listed(void *ctx, const tg_pg_res_t *res)
{
    tg_api_t *a = ctx;
    json_t *result, *items;
    size_t n;

    if (!tg_pg_res_ok(res) || tg_pg_res_rows(res) != 1) {
        tg_api_bootstrap_failed(a, res);
        return;
    }
    result = json_loads(tg_pg_res_value(res, 0, 0), 0, NULL);
    items = json_object_get(result, "items");
    n = json_is_array(items) ? json_array_size(items) : 1;
    json_decref(result);
    if (n > 0) {
        a->bootstrap = 2;
        OPENSSL_cleanse(a->bootstrap_pw, sizeof(a->bootstrap_pw));
        OPENSSL_cleanse(a->bootstrap_hash, sizeof(a->bootstrap_hash));
        return;
    }
    if (a->bootstrap_hash[0] == '\0' ||
        tg_api_bootstrap_query(a, TG_API_SQL("users_create"),
                               json_pack("{s:s,s:s,s:s}", "username", "admin",
                                         "role", "admin", "password_hash",
                                         a->bootstrap_hash),
                               tg_api_bootstrap_created) != TG_OK) {
        a->bootstrap = 3;
    }
}


/* See api_int.h.  The hash is made here, before the loop runs: a scrypt
 * holds the loop for tens of milliseconds, which at start delays nothing
 * that is running yet, while later it would delay the first changes the
 * store publishes. */
int
tg_api_bootstrap_prepare(tg_api_t *a)
{
    const char *pw = a->opts.bootstrap_password;

    if (pw == NULL || pw[0] == '\0') {
        /* 43 base62 characters: 256 bits. */
        if (tg_crypto_token_create("", a->bootstrap_pw) != TG_OK) {
            return TG_ERROR;
        }
        pw = a->bootstrap_pw;
    }
    return tg_crypto_password_hash(pw, strlen(pw), a->bootstrap_hash);
}


/* See api_int.h.  Two admins starting at once against one database may
 * both find no administrator; the second users_create then fails on the
 * unique user name and creates nothing. */
void
tg_api_bootstrap_check(tg_api_t *a)
{
    a->bootstrap = 1;
    if (tg_api_bootstrap_query(
            a, TG_API_SQL("users_list"),
            json_pack("{s:s,s:i}", "role", "admin", "limit", 1),
            tg_api_bootstrap_listed) != TG_OK) {
        a->bootstrap = 3;
    }
}
