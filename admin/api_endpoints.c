/*
 * admin/api_endpoints.c
 *      Endpoint credentials in the admin API: sealing on create and
 *      update, and POST .../test, one minimal real request reported with
 *      its status, latency and error.
 *
 * NOTES
 *      Admin only, never blocks.  A credential is sealed with AES-256-GCM
 *      and the additional data "endpoint:<name>" (the same as the config
 *      import in admin/store_import.c), so a ciphertext copied onto another
 *      endpoint's row does not open.  That is also why endpoints keep their
 *      name for life (tg_api.endpoints_update refuses a rename).
 *
 *      test: tg_api.endpoints_get (URL, style, models),
 *      tg_api.endpoints_credential (the sealed credential; a config-file
 *      endpoint stored without one uses the file's), then one request
 *      through admin/webhook.c: a one-token Messages (anthropic) or Chat
 *      Completions (openai) call.  The opened credential lives only in the
 *      request headers handed to webhook.c, which wipes them; it is never
 *      logged or answered.
 */
#include "admin/api_int.h"
#include "admin/health.h"
#include "admin/webhook.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_API_TEST_TIMEOUT_MS 20000


/* The model to ask for: the body's, else the endpoint's first model
 * without a wildcard, else a small default of the style. */
static const char *
tg_api_test_model(tg_api_req_t *r, json_t *ep, bool anthropic)
{
    json_t *m = json_object_get(r->body, "model"), *item;
    size_t i;

    if (json_is_string(m)) {
        return json_string_value(m);
    }
    json_array_foreach(json_object_get(ep, "models"), i, item)
    {
        if (json_is_string(item) &&
            strchr(json_string_value(item), '*') == NULL) {
            return json_string_value(item);
        }
    }
    return anthropic ? "claude-3-5-haiku-latest" : "gpt-4o-mini";
}


static void
tg_api_test_done(void *ctx, const tg_webhook_result_t *res)
{
    tg_api_req_t *r = ctx;
    json_t *name = json_object_get(r->state_json, "name");
    char snippet[513];
    json_t *err;
    bool ok = res->transport == 0 && res->status >= 200 && res->status < 300;

    r->hook_pending = false;
    if (res->transport != 0) {
        err = json_string(res->error);
    } else if (!ok) {
        /* The upstream's own error text helps most; it is the endpoint's
         * answer, which never holds our credential. */
        err = json_stringn(snippet,
                           tg_webhook_snippet(res, snippet, sizeof(snippet)));
        if (!json_is_string(err) || json_string_value(err) == NULL) {
            json_decref(err);
            err = json_sprintf("status %d", res->status);
        }
    } else {
        err = json_null();
    }
    tg_api_respond(r, 200,
                   json_pack("{s:O,s:b,s:i,s:I,s:o}", "name",
                             name ? name : json_null(), "ok", ok, "status",
                             res->status, "latency_ms",
                             (json_int_t)(res->latency_us / 1000), "error",
                             err ? err : json_null()));
}


/* Send the test request with credential <cred>. */
static void
tg_api_test_send(tg_api_req_t *r, const char *cred)
{
    json_t *ep = r->state_json;
    const char *style = json_string_value(json_object_get(ep, "style"));
    const char *base = json_string_value(json_object_get(ep, "url"));
    bool anthropic = style != NULL && strcmp(style, "anthropic") == 0;
    char url[1024], auth[1200], *body = NULL;
    const char *hdr[3];
    tg_webhook_req_t req;
    json_t *msg;

    if (base == NULL || style == NULL) {
        tg_api_fail(r, 500, NULL, "the endpoint has no URL or style");
        return;
    }
    snprintf(url, sizeof(url), "%s%s", base,
             anthropic ? "/v1/messages" : "/v1/chat/completions");
    snprintf(auth, sizeof(auth),
             anthropic ? "x-api-key: %s" : "Authorization: Bearer %s", cred);
    msg = json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model",
                    tg_api_test_model(r, ep, anthropic), "max_tokens", 1,
                    "messages", "role", "user", "content", "ping");
    body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    hdr[0] = "Content-Type: application/json";
    hdr[1] = auth;
    hdr[2] = "anthropic-version: 2023-06-01";
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = hdr;
    req.nheaders = anthropic ? 3 : 2;
    req.body = body;
    req.len = body ? strlen(body) : 0;
    req.timeout_ms = TG_API_TEST_TIMEOUT_MS;
    req.tls_verify = !json_is_false(json_object_get(ep, "tls_verify"));
    req.proxy = json_string_value(json_object_get(ep, "proxy"));
    if (body == NULL || tg_webhook_send(&req, tg_api_test_done, r) != TG_OK) {
        tg_api_fail(r, 503, NULL, "the test could not be started");
    } else {
        r->hook_pending = true;
    }
    OPENSSL_cleanse(auth, sizeof(auth));
    free(body);
}


/* The credential of a config-file endpoint named <name>, or NULL. */
static const char *
tg_api_conf_credential(const tg_conf_t *conf, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < conf->nendpoints; i++) {
        if (strcmp(conf->endpoints[i].name, name) == 0) {
            return conf->endpoints[i].credential;
        }
    }
    return NULL;
}


/* Open the credential in <result> (endpoints_credential's answer) into
 * <cred> (TG_API_CRED_MAX + 1 bytes, NUL-terminated).  TG_OK, TG_DECLINED
 * when none is stored, TG_ERROR (logged) when it does not open. */
static int
tg_api_cred_open(tg_api_req_t *r, json_t *result, char *cred)
{
    json_t *ct = json_object_get(result, "credential_ciphertext");
    json_t *kid = json_object_get(result, "credential_key_id");
    const char *name = json_string_value(json_object_get(result, "name"));
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + TG_API_CRED_MAX];
    char purpose[96];
    size_t n, m;
    tg_err_t err;

    if (!json_is_string(ct) || !json_is_string(kid) || name == NULL) {
        return TG_DECLINED;
    }
    memset(&err, 0, sizeof(err));
    snprintf(purpose, sizeof(purpose), "endpoint:%s", name);
    if (tg_crypto_unhex(json_string_value(ct), json_string_length(ct), sealed,
                        sizeof(sealed), &n) != TG_OK ||
        tg_crypto_open(&r->api->keyring, json_string_value(kid), purpose,
                       sealed, n, (uint8_t *)cred, TG_API_CRED_MAX, &m,
                       &err) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "endpoint %lld: the credential cannot be opened: %s",
               (long long)r->id, err.text);
        return TG_ERROR;
    }
    cred[m] = '\0';
    return TG_OK;
}


/* See api_int.h. */
int
tg_api_endpoint_seal(tg_api_req_t *r, const char *name, const char *cred,
                     size_t len, tg_api_error_t *e)
{
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + TG_API_CRED_MAX];
    char hex[2 * sizeof(sealed) + 1], id[TG_CRYPTO_KEYID_LEN + 1];
    char purpose[96];
    size_t n;

    if (!r->api->have_keys) {
        tg_api_error_set(e, 503, NULL,
                         "admin.secret_key could not be loaded; credentials "
                         "cannot be stored");
        return TG_ERROR;
    }
    snprintf(purpose, sizeof(purpose), "endpoint:%s", name ? name : "");
    if (tg_crypto_seal(&r->api->keyring, purpose, cred, len, sealed,
                       sizeof(sealed), &n, id) != TG_OK) {
        tg_api_error_set(e, 503, NULL, "sealing the credential failed");
        return TG_ERROR;
    }
    tg_crypto_hex(sealed, n, hex);
    json_object_del(r->args, "credential");
    json_object_del(r->body, "credential");
    if (json_object_set_new(r->args, "credential_ciphertext",
                            json_string(hex)) ||
        json_object_set_new(r->args, "credential_key_id", json_string(id))) {
        tg_api_error_set(e, 503, NULL, "out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/* endpoints_credential answered a PATCH with a credential: seal it
 * under the endpoint's name (endpoints cannot be renamed: the update
 * refuses a new name, so the stored name is the one that stays). */
static void
tg_api_update_cred_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    const char *name = json_string_value(json_object_get(result, "name"));
    json_t *given = json_object_get(r->args, "credential");

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    if (name == NULL ||
        tg_api_endpoint_seal(r, name, json_string_value(given),
                             json_string_length(given), e) != TG_OK) {
        if (name == NULL) {
            tg_api_error_set(e, 500, NULL, "the endpoint has no name");
        }
        tg_api_respond_error(r, e);
        return;
    }
    (void)tg_api_call(r, r->route->sql, r->args, tg_api_call_done);
}


/* See api_int.h. */
void
tg_api_endpoint_update(tg_api_req_t *r)
{
    json_t *args;

    if (json_object_get(r->args, "credential") == NULL) {
        (void)tg_api_call(r, r->route->sql, r->args, tg_api_call_done);
        return;
    }
    args = json_pack("{s:I}", "endpoint_id", (json_int_t)r->id);
    if (args == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("endpoints_credential"), args,
                      tg_api_update_cred_done);
    json_decref(args);
}


/* endpoints_get answered an enable. */
static void
tg_api_enable_ep_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    const char *mb = json_string_value(json_object_get(result, "managed_by"));
    json_t *name = json_object_get(result, "name");

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    if (mb == NULL || strcmp(mb, "file") != 0) {
        if (json_object_set_new(r->args, "status", json_string("enabled"))) {
            tg_api_fail(r, 503, NULL, "out of memory");
            return;
        }
        (void)tg_api_call(r, r->route->sql, r->args, tg_api_call_done);
        return;
    }
    /* The file says whether it is enabled; what an operator re-enables
     * here is an endpoint a breaker, a cool-down or a spend cap took out
     * (the error log records it). */
    if (json_is_string(name) &&
        tg_health_reenable(r->api->conf, r->api->shm,
                           (tg_str_t){json_string_value(name),
                                      json_string_length(name)}) != TG_OK) {
        tg_api_fail(r, 409, NULL,
                    "endpoint %lld is not routed by the workers yet",
                    (long long)r->id);
        return;
    }
    if (tg_api_endpoint_post(r, result, e) != TG_OK) {
        tg_api_respond_error(r, e);
        return;
    }
    tg_api_respond(r, 200, json_incref(result));
}


/* See api_int.h. */
void
tg_api_endpoint_enable(tg_api_req_t *r)
{
    (void)tg_api_call(r, TG_API_SQL("endpoints_get"), r->args,
                      tg_api_enable_ep_done);
}


/* endpoints_credential answered a test. */
static void
tg_api_test_cred_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    const char *name =
        json_string_value(json_object_get(r->state_json, "name"));
    char cred[TG_API_CRED_MAX + 1];
    const char *fc;
    int rc;

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    rc = tg_api_cred_open(r, result, cred);
    if (rc == TG_DECLINED) {
        fc = tg_api_conf_credential(r->api->conf, name);
        if (fc == NULL) {
            tg_api_fail(r, 409, NULL, "endpoint %lld has no credential",
                        (long long)r->id);
            return;
        }
        tg_api_test_send(r, fc);
        return;
    }
    if (rc != TG_OK) {
        tg_api_fail(r, 500, NULL,
                    "the credential could not be decrypted (secret key "
                    "missing?)");
        return;
    }
    tg_api_test_send(r, cred);
    OPENSSL_cleanse(cred, sizeof(cred));
}


/* endpoints_get answered. */
static void
tg_api_test_ep_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *args;

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    json_decref(r->state_json);
    r->state_json = json_incref(result);
    args = json_pack("{s:I}", "endpoint_id", (json_int_t)r->id);
    if (args == NULL) {
        tg_api_fail(r, 503, NULL, "out of memory");
        return;
    }
    (void)tg_api_call(r, TG_API_SQL("endpoints_credential"), args,
                      tg_api_test_cred_done);
    json_decref(args);
}


/* See api_int.h. */
void
tg_api_endpoint_test(tg_api_req_t *r)
{
    (void)tg_api_call(r, TG_API_SQL("endpoints_get"), r->args,
                      tg_api_test_ep_done);
}
