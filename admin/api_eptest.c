/*
 * admin/api_eptest.c
 *      POST /admin/api/endpoints/{id}/test: one minimal real request to an
 *      endpoint, reported with its status, latency and error.
 *
 * NOTES
 *      Admin only, never blocks.  Three steps: tg_api.endpoints_get (URL,
 *      style, models), tg_api.endpoints_credential (the sealed credential;
 *      an endpoint declared in the config file has none stored and uses
 *      the file's), then one request through admin/webhook.c: a
 *      one-token Messages (anthropic) or Chat Completions (openai) call.
 *      The opened credential lives only in the request headers handed to
 *      webhook.c, which wipes them; it is never logged or answered.
 */
#include "admin/api_int.h"
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
    char snippet[TG_WEBHOOK_BODY_MAX + 1];
    json_t *err;
    bool ok = res->transport == 0 && res->status >= 200 && res->status < 300;

    r->hook_pending = false;
    if (res->transport != 0) {
        err = json_string(res->error);
    } else if (!ok) {
        /* The upstream's own error text helps most; it is the endpoint's
         * answer, which never holds our credential. */
        memcpy(snippet, res->body, TG_MIN(res->body_len, (size_t)512));
        snippet[TG_MIN(res->body_len, (size_t)512)] = '\0';
        err = json_stringn_nocheck(snippet, strlen(snippet));
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


/* endpoints_credential answered. */
static void
tg_api_test_cred_done(tg_api_req_t *r, json_t *result, tg_api_error_t *e)
{
    json_t *ct = json_object_get(result, "credential_ciphertext");
    json_t *kid = json_object_get(result, "credential_key_id");
    const char *name =
        json_string_value(json_object_get(r->state_json, "name"));
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + 1024], cred[1025];
    const char *fc;
    size_t n, m;
    tg_err_t err;

    if (result == NULL) {
        tg_api_respond_error(r, e);
        return;
    }
    if (!json_is_string(ct) || !json_is_string(kid)) {
        fc = tg_api_conf_credential(r->api->conf, name);
        if (fc == NULL) {
            tg_api_fail(r, 409, NULL, "endpoint %lld has no credential",
                        (long long)r->id);
            return;
        }
        tg_api_test_send(r, fc);
        return;
    }
    memset(&err, 0, sizeof(err));
    if (tg_crypto_unhex(json_string_value(ct), json_string_length(ct), sealed,
                        sizeof(sealed), &n) != TG_OK ||
        tg_crypto_open(&r->api->keyring, json_string_value(kid),
                       "endpoint-credential", sealed, n, cred, sizeof(cred) - 1,
                       &m, &err) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "endpoint %lld: the credential cannot be "
               "opened: %s",
               (long long)r->id, err.text);
        tg_api_fail(r, 500, NULL,
                    "the credential could not be decrypted (secret key "
                    "missing?)");
        return;
    }
    cred[m] = '\0';
    tg_api_test_send(r, (const char *)cred);
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
