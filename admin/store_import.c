/*
 * admin/store_import.c
 *      Import what the configuration file declares (groups, users, keys,
 *      endpoints) into PostgreSQL, marked managed_by = 'file'.
 *
 * NOTES
 *      Admin only, on its loop, at every start of admin (so at every
 *      reload too), under the start-up advisory lock.  One transaction:
 *      BEGIN, one statement per table, COMMIT.  Each statement takes the
 *      whole list as one jsonb parameter and, in one pass of writable
 *      CTEs, updates the rows that changed (so unchanged rows fire no
 *      NOTIFY), inserts the new ones and deletes the file-managed rows the
 *      file no longer declares.  No SQL is built from the file's text.
 *
 *      Secrets: a key goes in as its SHA-256 digest with a display prefix
 *      and last 4 characters; the prefix is at most a quarter of the key
 *      (and at most 10 characters), so a short configured key keeps half
 *      of itself hidden.  An endpoint credential is sealed with AES-256-GCM
 *      (admin/crypto.c) with the purpose "endpoint:<name>" as additional
 *      data; since sealing draws a fresh nonce, the credential stored by
 *      the last import is opened first and kept when it is unchanged and
 *      sealed under the current key, so a restart rewrites no row and a
 *      key rotation re-seals every file credential.  Without a usable secret
 * key the credential columns stay NULL (allowed for file-managed endpoints: the
 *      credential lives in the file).
 *
 *      Users: names match case-insensitively, as the unique index does.
 *      The implicit user "default" of top-level keys is not imported; its
 *      keys get user_id NULL.  The group "default" is the database's own
 *      row: it is imported (managed_by = 'file') only when the file's
 *      groups declare it, and handed back to the API with its last
 *      settings when the file stops declaring it; it is never deleted.
 */
#include "admin/crypto.h"
#include "admin/store.h"
#include "core/core.h"
#include "core/log.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_IMPORT_CRED_MAX 1024 /* sealed credential bytes at most */

static const char tg_import_groups_sql[] =
    "WITH src AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS s("
    " name text, strategy text, failure_threshold integer,"
    " cooldown_ms integer, max_retries integer, retry_deadline_ms integer,"
    " sticky boolean, sticky_ttl_ms integer, exploration numeric,"
    " translate boolean, wait_for_cooldown_ms integer)),"
    " upd AS (UPDATE endpoint_groups g SET strategy = s.strategy,"
    " failure_threshold = s.failure_threshold, cooldown_ms = s.cooldown_ms,"
    " max_retries = s.max_retries, retry_deadline_ms = s.retry_deadline_ms,"
    " sticky = s.sticky, sticky_ttl_ms = s.sticky_ttl_ms,"
    " exploration = s.exploration, translate = s.translate,"
    " wait_for_cooldown_ms = s.wait_for_cooldown_ms, managed_by = 'file'"
    " FROM src s WHERE g.name = s.name AND (g.strategy, g.failure_threshold,"
    " g.cooldown_ms, g.max_retries, g.retry_deadline_ms, g.sticky,"
    " g.sticky_ttl_ms, g.exploration, g.translate, g.wait_for_cooldown_ms,"
    " g.managed_by) IS DISTINCT FROM (s.strategy, s.failure_threshold,"
    " s.cooldown_ms, s.max_retries, s.retry_deadline_ms, s.sticky,"
    " s.sticky_ttl_ms, s.exploration, s.translate, s.wait_for_cooldown_ms,"
    " 'file') RETURNING 1),"
    " ins AS (INSERT INTO endpoint_groups (name, strategy, failure_threshold,"
    " cooldown_ms, max_retries, retry_deadline_ms, sticky, sticky_ttl_ms,"
    " exploration, translate, wait_for_cooldown_ms, managed_by)"
    " SELECT s.name, s.strategy, s.failure_threshold, s.cooldown_ms,"
    " s.max_retries, s.retry_deadline_ms, s.sticky, s.sticky_ttl_ms,"
    " s.exploration, s.translate, s.wait_for_cooldown_ms, 'file' FROM src s"
    " WHERE NOT EXISTS (SELECT 1 FROM endpoint_groups g WHERE g.name = s.name)"
    " RETURNING 1),"
    " del AS (DELETE FROM endpoint_groups g WHERE g.managed_by = 'file'"
    " AND g.name <> 'default' AND NOT EXISTS (SELECT 1 FROM src s"
    " WHERE s.name = g.name) RETURNING 1),"
    /* "default" is never deleted: when the file stops declaring it, the
     * row keeps its last settings and goes back to the API. */
    " rel AS (UPDATE endpoint_groups g SET managed_by = 'api'"
    " WHERE g.name = 'default' AND g.managed_by = 'file' AND NOT EXISTS"
    " (SELECT 1 FROM src s WHERE s.name = 'default') RETURNING 1)"
    " SELECT (SELECT count(*) FROM upd) + (SELECT count(*) FROM rel),"
    " (SELECT count(*) FROM ins), (SELECT count(*) FROM del)";

static const char tg_import_users_sql[] =
    "WITH src AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS s("
    " username text, status text, tokens_day bigint, tokens_month bigint)),"
    " upd AS (UPDATE users u SET status = s.status, tokens_day = s.tokens_day,"
    " tokens_month = s.tokens_month, managed_by = 'file' FROM src s"
    " WHERE lower(u.username) = lower(s.username) AND (u.status,"
    " u.tokens_day, u.tokens_month, u.managed_by) IS DISTINCT FROM"
    " (s.status, s.tokens_day, s.tokens_month, 'file') RETURNING 1),"
    " ins AS (INSERT INTO users (username, status, tokens_day, tokens_month,"
    " managed_by) SELECT s.username, s.status, s.tokens_day, s.tokens_month,"
    " 'file' FROM src s WHERE NOT EXISTS (SELECT 1 FROM users u"
    " WHERE lower(u.username) = lower(s.username)) RETURNING 1),"
    " del AS (DELETE FROM users u WHERE u.managed_by = 'file'"
    " AND NOT EXISTS (SELECT 1 FROM src s"
    " WHERE lower(s.username) = lower(u.username)) RETURNING 1)"
    " SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),"
    " (SELECT count(*) FROM del)";

static const char tg_import_keys_sql[] =
    "WITH src AS (SELECT decode(s.digest, 'hex') AS digest, u.user_id,"
    " s.prefix, s.last4, s.status, CASE WHEN s.expires > 0"
    " THEN to_timestamp(s.expires) END AS expires_at, s.models, s.rpm,"
    " s.burst, s.tpm, s.concurrency, s.group_name"
    " FROM jsonb_to_recordset($1::jsonb) AS s(digest text, username text,"
    " prefix text, last4 text, status text, expires bigint, models text[],"
    " rpm integer, burst integer, tpm integer, concurrency integer,"
    " group_name text)"
    " LEFT JOIN users u ON lower(u.username) = lower(s.username)),"
    " upd AS (UPDATE api_keys k SET user_id = s.user_id, prefix = s.prefix,"
    " last4 = s.last4, status = s.status, expires_at = s.expires_at,"
    " models = s.models, rpm = s.rpm, burst = s.burst, tpm = s.tpm,"
    " concurrency = s.concurrency, group_name = s.group_name,"
    " managed_by = 'file' FROM src s WHERE k.digest = s.digest"
    " AND (k.user_id, k.prefix, k.last4, k.status, k.expires_at, k.models,"
    " k.rpm, k.burst, k.tpm, k.concurrency, k.group_name, k.managed_by)"
    " IS DISTINCT FROM (s.user_id, s.prefix, s.last4, s.status,"
    " s.expires_at, s.models, s.rpm, s.burst, s.tpm, s.concurrency,"
    " s.group_name, 'file') RETURNING 1),"
    " ins AS (INSERT INTO api_keys (user_id, digest, prefix, last4, status,"
    " expires_at, models, rpm, burst, tpm, concurrency, group_name,"
    " managed_by) SELECT s.user_id, s.digest, s.prefix, s.last4, s.status,"
    " s.expires_at, s.models, s.rpm, s.burst, s.tpm, s.concurrency,"
    " s.group_name, 'file' FROM src s WHERE NOT EXISTS (SELECT 1"
    " FROM api_keys k WHERE k.digest = s.digest) RETURNING 1),"
    " del AS (DELETE FROM api_keys k WHERE k.managed_by = 'file'"
    " AND NOT EXISTS (SELECT 1 FROM src s WHERE s.digest = k.digest)"
    " RETURNING 1)"
    " SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),"
    " (SELECT count(*) FROM del)";

static const char tg_import_endpoints_sql[] =
    "WITH src AS (SELECT s.name, s.group_name, s.url, s.style,"
    " decode(s.credential, 'hex') AS credential_ciphertext,"
    " s.credential_key_id, s.weight, s.priority, s.models, s.map_from,"
    " s.map_to, s.proxy, s.connect_timeout_ms, s.first_byte_timeout_ms,"
    " s.read_timeout_ms, s.total_timeout_ms, s.tls_verify, s.health_path,"
    " s.health_interval_ms, s.health_timeout_ms, s.quota_cooldown_ms,"
    " s.price_factor, s.status FROM jsonb_to_recordset($1::jsonb) AS s("
    " name text, group_name text, url text, style text, credential text,"
    " credential_key_id text, weight integer, priority text, models text[],"
    " map_from text[], map_to text[], proxy text, connect_timeout_ms integer,"
    " first_byte_timeout_ms integer, read_timeout_ms integer,"
    " total_timeout_ms integer, tls_verify boolean, health_path text,"
    " health_interval_ms integer, health_timeout_ms integer,"
    " quota_cooldown_ms bigint, price_factor numeric, status text)),"
    " upd AS (UPDATE endpoints e SET group_name = s.group_name, url = s.url,"
    " style = s.style, credential_ciphertext = s.credential_ciphertext,"
    " credential_key_id = s.credential_key_id, weight = s.weight,"
    " priority = s.priority, models = s.models, model_map_from = s.map_from,"
    " model_map_to = s.map_to, proxy = s.proxy,"
    " connect_timeout_ms = s.connect_timeout_ms,"
    " first_byte_timeout_ms = s.first_byte_timeout_ms,"
    " read_timeout_ms = s.read_timeout_ms,"
    " total_timeout_ms = s.total_timeout_ms, tls_verify = s.tls_verify,"
    " health_path = s.health_path, health_interval_ms = s.health_interval_ms,"
    " health_timeout_ms = s.health_timeout_ms,"
    " quota_cooldown_ms = s.quota_cooldown_ms, price_factor = s.price_factor,"
    " status = s.status, managed_by = 'file' FROM src s WHERE e.name = s.name"
    " AND (e.group_name, e.url, e.style, e.credential_ciphertext,"
    " e.credential_key_id, e.weight, e.priority, e.models, e.model_map_from,"
    " e.model_map_to, e.proxy, e.connect_timeout_ms, e.first_byte_timeout_ms,"
    " e.read_timeout_ms, e.total_timeout_ms, e.tls_verify, e.health_path,"
    " e.health_interval_ms, e.health_timeout_ms, e.quota_cooldown_ms,"
    " e.price_factor, e.status, e.managed_by) IS DISTINCT FROM"
    " (s.group_name, s.url, s.style, s.credential_ciphertext,"
    " s.credential_key_id, s.weight, s.priority, s.models, s.map_from,"
    " s.map_to, s.proxy, s.connect_timeout_ms, s.first_byte_timeout_ms,"
    " s.read_timeout_ms, s.total_timeout_ms, s.tls_verify, s.health_path,"
    " s.health_interval_ms, s.health_timeout_ms, s.quota_cooldown_ms,"
    " s.price_factor, s.status, 'file') RETURNING 1),"
    " ins AS (INSERT INTO endpoints (name, group_name, url, style,"
    " credential_ciphertext, credential_key_id, weight, priority, models,"
    " model_map_from, model_map_to, proxy, connect_timeout_ms,"
    " first_byte_timeout_ms, read_timeout_ms, total_timeout_ms, tls_verify,"
    " health_path, health_interval_ms, health_timeout_ms, quota_cooldown_ms,"
    " price_factor, status, managed_by) SELECT s.name, s.group_name, s.url,"
    " s.style, s.credential_ciphertext, s.credential_key_id, s.weight,"
    " s.priority, s.models, s.map_from, s.map_to, s.proxy,"
    " s.connect_timeout_ms, s.first_byte_timeout_ms, s.read_timeout_ms,"
    " s.total_timeout_ms, s.tls_verify, s.health_path, s.health_interval_ms,"
    " s.health_timeout_ms, s.quota_cooldown_ms, s.price_factor, s.status,"
    " 'file' FROM src s WHERE NOT EXISTS (SELECT 1 FROM endpoints e"
    " WHERE e.name = s.name) RETURNING 1),"
    " del AS (DELETE FROM endpoints e WHERE e.managed_by = 'file'"
    " AND NOT EXISTS (SELECT 1 FROM src s WHERE s.name = e.name)"
    " RETURNING 1)"
    " SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),"
    " (SELECT count(*) FROM del)";

static const char tg_import_creds_sql[] =
    "SELECT name, credential_key_id, encode(credential_ciphertext, 'hex')"
    " FROM endpoints WHERE managed_by = 'file'"
    " AND credential_ciphertext IS NOT NULL";

static const char *const tg_import_tables[] = {"groups", "users", "keys",
                                               "endpoints"};

typedef struct {
    tg_pg_t *pg;
    const tg_conf_t *conf;
    const tg_crypto_keyring_t *kr; /* NULL: credentials not stored */
    tg_store_import_done_cb done;
    void *ctx;
    int pending;   /* statements of the transaction not answered yet */
    int step;      /* index of the next answer: 0 BEGIN, 1.. tables */
    bool queuing;  /* statements are being queued: do not finish yet */
    bool failed;   /* an answer was an error */
    char err[256]; /* the first error */
    char *json[4]; /* parameters: groups, users, keys, endpoints */
    long counts[4][3];
} tg_import_t;


/* "prefix" and "last4" of configured key <key>. */
static void
tg_import_key_display(const char *key, char prefix[11], char last4[5])
{
    size_t len = strlen(key), n = TG_MIN(len / 4, (size_t)10);

    memcpy(prefix, key, n);
    prefix[n] = '\0';
    memcpy(last4, key + len - 4, 4);
    last4[4] = '\0';
}


static json_t *
tg_import_strings(const char (*s)[64], uint32_t n)
{
    json_t *a = json_array();
    uint32_t i;

    for (i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_string(s[i]));
    }
    return a;
}


static char *
tg_import_users_json(const tg_conf_t *conf)
{
    json_t *a = json_array(), *o;
    const tg_conf_user_t *u;
    char *text;
    size_t i;

    /* users[0] is the implicit "default" user of top-level keys. */
    for (i = 1; a != NULL && i < conf->nusers; i++) {
        u = &conf->users[i];
        o = json_pack("{s:s, s:s, s:o, s:o}", "username", u->name, "status",
                      u->disabled ? "disabled" : "active", "tokens_day",
                      u->quota_period == TG_QUOTA_DAY && u->quota_tokens > 0
                          ? json_integer(u->quota_tokens)
                          : json_null(),
                      "tokens_month",
                      u->quota_period == TG_QUOTA_MONTH && u->quota_tokens > 0
                          ? json_integer(u->quota_tokens)
                          : json_null());
        json_array_append_new(a, o);
    }
    text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}


static char *
tg_import_keys_json(const tg_conf_t *conf)
{
    char digest[2 * TG_CRYPTO_DIGEST_LEN + 1], prefix[11], last4[5];
    json_t *a = json_array(), *o;
    const tg_conf_key_t *k;
    char *text;
    size_t i;

    for (i = 0; a != NULL && i < conf->nkeys; i++) {
        k = &conf->keys[i];
        tg_crypto_digest_hex(k->key, strlen(k->key), digest);
        tg_import_key_display(k->key, prefix, last4);
        o = json_pack(
            "{s:s, s:o, s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:o}",
            "digest", digest, "username",
            k->user == 0 ? json_null() : json_string(conf->users[k->user].name),
            "prefix", prefix, "last4", last4, "status",
            k->disabled ? "disabled" : "active", "expires",
            (json_int_t)k->expires, "models",
            tg_import_strings(k->models, k->nmodels), "rpm", (json_int_t)k->rpm,
            "burst", (json_int_t)k->burst, "tpm", (json_int_t)k->tpm,
            "concurrency", (json_int_t)k->concurrency, "group_name",
            k->group_name[0] ? json_string(k->group_name) : json_null());
        json_array_append_new(a, o);
    }
    text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}


static char *
tg_import_groups_json(const tg_conf_t *conf)
{
    static const char *const strategies[] = {
        "round-robin", "weighted", "least-connections", "latency", "cost"};
    json_t *a = json_array(), *o;
    const tg_conf_group_t *g;
    char *text;
    size_t i;

    /* groups[0] is "default": imported only when the file declares it,
     * else it stays the database's row. */
    for (i = conf->default_group_declared ? 0 : 1;
         a != NULL && i < conf->ngroups; i++) {
        g = &conf->groups[i];
        o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:f, s:b, s:I}",
                      "name", g->name, "strategy",
                      strategies[g->strategy % TG_NELEMS(strategies)],
                      "failure_threshold", (json_int_t)g->failure_threshold,
                      "cooldown_ms", (json_int_t)g->cooldown_ms, "max_retries",
                      (json_int_t)g->max_retries, "retry_deadline_ms",
                      (json_int_t)g->retry_deadline_ms, "sticky", g->sticky,
                      "sticky_ttl_ms", (json_int_t)g->sticky_ttl_ms,
                      "exploration", g->explore_milli / 1000.0, "translate",
                      g->translate, "wait_for_cooldown_ms",
                      (json_int_t)g->wait_for_cooldown_ms);
        json_array_append_new(a, o);
    }
    text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}


/*
 * The sealed credential of endpoint <ep> as hex into <hex> and its key id
 * into <kid>: the one stored (<old_hex>, <old_kid>) when it still opens to
 * the same credential, else a new seal.  False when it cannot be sealed.
 */
static bool
tg_import_seal(const tg_crypto_keyring_t *kr, const tg_conf_endpoint_t *ep,
               const char *old_hex, const char *old_kid, char *hex,
               char kid[TG_CRYPTO_KEYID_LEN + 1])
{
    uint8_t buf[TG_IMPORT_CRED_MAX + TG_CRYPTO_SEAL_EXTRA];
    uint8_t pt[TG_IMPORT_CRED_MAX + TG_CRYPTO_SEAL_EXTRA];
    size_t len = strlen(ep->credential), n = 0, ptlen = 0;
    char purpose[96];
    tg_err_t err;
    bool ok = false;

    snprintf(purpose, sizeof(purpose), "endpoint:%s", ep->name);
    /* Kept only when sealed under the current key: a reload after a key
     * rotation seals every file credential again. */
    if (old_hex != NULL && strcmp(old_kid, kr->keys[0].id) == 0 &&
        tg_crypto_unhex(old_hex, strlen(old_hex), buf, sizeof(buf), &n) ==
            TG_OK &&
        tg_crypto_open(kr, old_kid, purpose, buf, n, pt, sizeof(pt), &ptlen,
                       &err) == TG_OK &&
        ptlen == len && CRYPTO_memcmp(pt, ep->credential, len) == 0) {
        memcpy(hex, old_hex, strlen(old_hex) + 1);
        snprintf(kid, TG_CRYPTO_KEYID_LEN + 1, "%s", old_kid);
        ok = true;
    } else if (len <= TG_IMPORT_CRED_MAX &&
               tg_crypto_seal(kr, purpose, ep->credential, len, buf,
                              sizeof(buf), &n, kid) == TG_OK) {
        tg_crypto_hex(buf, n, hex);
        ok = true;
    }
    explicit_bzero(pt, sizeof(pt));
    return ok;
}


/* Endpoint <ep> as a row, with its credential sealed when <kr> is set;
 * <creds> are the stored credentials (name, key id, hex) or NULL. */
static json_t *
tg_import_endpoint(const tg_conf_endpoint_t *ep, const tg_crypto_keyring_t *kr,
                   const tg_pg_res_t *creds)
{
    static const char *const prios[] = {"primary", "secondary", "fallback"};
    char hex[2 * (TG_IMPORT_CRED_MAX + TG_CRYPTO_SEAL_EXTRA) + 1];
    char kid[TG_CRYPTO_KEYID_LEN + 1];
    const char *old_hex = NULL, *old_kid = NULL;
    json_t *o, *from, *to;
    bool sealed = false;
    uint32_t m;
    int i;

    for (i = 0; creds != NULL && i < tg_pg_res_rows(creds); i++) {
        if (strcmp(tg_pg_res_value(creds, i, 0), ep->name) == 0) {
            old_kid = tg_pg_res_value(creds, i, 1);
            old_hex = tg_pg_res_value(creds, i, 2);
        }
    }
    if (kr != NULL) {
        sealed = tg_import_seal(kr, ep, old_hex, old_kid, hex, kid);
    }
    from = json_array();
    to = json_array();
    for (m = 0; m < ep->nmaps; m++) {
        json_array_append_new(from, json_string(ep->maps[m].from));
        json_array_append_new(to, json_string(ep->maps[m].to));
    }
    o = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:s, s:o, s:o, s:o, s:o, s:I, "
        "s:I, s:I, s:o, s:b, s:s, s:I, s:I, s:I, s:f, s:s}",
        "name", ep->name, "group_name", ep->group_name, "url", ep->url, "style",
        ep->style == TG_STYLE_OPENAI ? "openai" : "anthropic", "credential",
        sealed ? json_string(hex) : json_null(), "credential_key_id",
        sealed ? json_string(kid) : json_null(), "weight",
        (json_int_t)ep->weight, "priority", prios[ep->priority % 3], "models",
        tg_import_strings(ep->models, ep->nmodels), "map_from", from, "map_to",
        to, "proxy", ep->proxy[0] ? json_string(ep->proxy) : json_null(),
        "connect_timeout_ms", (json_int_t)ep->connect_timeout_ms,
        "first_byte_timeout_ms", (json_int_t)ep->first_byte_timeout_ms,
        "read_timeout_ms", (json_int_t)ep->read_timeout_ms, "total_timeout_ms",
        ep->total_timeout_ms ? json_integer(ep->total_timeout_ms) : json_null(),
        "tls_verify", ep->tls_verify, "health_path", ep->health_path,
        "health_interval_ms", (json_int_t)ep->health_interval_ms,
        "health_timeout_ms", (json_int_t)ep->health_timeout_ms,
        "quota_cooldown_ms", (json_int_t)ep->quota_cooldown_ms, "price_factor",
        ep->price_milli / 1000.0, "status",
        ep->enabled ? "enabled" : "disabled");
    explicit_bzero(hex, sizeof(hex));
    return o;
}


static char *
tg_import_endpoints_json(const tg_conf_t *conf, const tg_crypto_keyring_t *kr,
                         const tg_pg_res_t *creds)
{
    json_t *a = json_array();
    char *text;
    size_t i;

    for (i = 0; a != NULL && i < conf->nendpoints; i++) {
        json_array_append_new(
            a, tg_import_endpoint(&conf->endpoints[i], kr, creds));
    }
    text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}


static void
tg_import_free(tg_import_t *im)
{
    size_t i;

    for (i = 0; i < TG_NELEMS(im->json); i++) {
        free(im->json[i]);
    }
    free(im);
}


/* Every answer is in: report and free. */
static void
tg_import_finish(tg_import_t *im)
{
    size_t i;

    if (!im->failed) {
        for (i = 0; i < TG_NELEMS(tg_import_tables); i++) {
            if (im->counts[i][0] + im->counts[i][1] + im->counts[i][2] > 0) {
                tg_log(TG_LOG_INFO, 0,
                       "config import: %s: %ld updated, %ld added, "
                       "%ld removed",
                       tg_import_tables[i], im->counts[i][0], im->counts[i][1],
                       im->counts[i][2]);
            }
        }
    }
    im->done(im->ctx, !im->failed, im->err);
    tg_import_free(im);
}


/* One answer of the transaction (BEGIN, a table, COMMIT). */
static void
tg_import_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_import_t *im = ctx;
    int step = im->step++, t = step - 1, j;

    if (!tg_pg_res_ok(res) && !im->failed) {
        im->failed = true;
        snprintf(im->err, sizeof(im->err), "%s%s%s (%s)",
                 t >= 0 && t < 4 ? tg_import_tables[t] : "",
                 t >= 0 && t < 4 ? ": " : "", tg_pg_res_message(res),
                 tg_pg_res_sqlstate(res));
    }
    if (tg_pg_res_ok(res) && t >= 0 && t < 4 && tg_pg_res_rows(res) == 1) {
        for (j = 0; j < 3; j++) {
            im->counts[t][j] = atol(tg_pg_res_value(res, 0, j));
        }
    }
    if (--im->pending == 0 && !im->queuing) {
        tg_import_finish(im);
    }
}


/* Queue BEGIN, the four statements and COMMIT. */
static void
tg_import_run(tg_import_t *im)
{
    static const char *const sql[] = {tg_import_groups_sql, tg_import_users_sql,
                                      tg_import_keys_sql,
                                      tg_import_endpoints_sql};
    size_t i;

    im->queuing = true;
    im->pending++;
    if (tg_pg_query(im->pg, "BEGIN", 0, NULL, tg_import_cb, im) != TG_OK) {
        im->pending--;
        im->failed = true;
        snprintf(im->err, sizeof(im->err), "the database is not ready");
    }
    for (i = 0; !im->failed && i < TG_NELEMS(sql); i++) {
        const char *param = im->json[i];

        im->pending++;
        if (tg_pg_query(im->pg, sql[i], 1, &param, tg_import_cb, im) != TG_OK) {
            im->pending--;
            break;
        }
    }
    /* COMMIT also ends a transaction an error aborted (as a rollback). */
    im->pending++;
    if (tg_pg_query(im->pg, "COMMIT", 0, NULL, tg_import_cb, im) != TG_OK) {
        im->pending--;
        if (!im->failed) {
            im->failed = true;
            snprintf(im->err, sizeof(im->err), "the database went away");
        }
    }
    im->queuing = false;
    if (im->pending == 0) {
        tg_import_finish(im);
    }
}


static void
tg_import_creds_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_import_t *im = ctx;

    if (!tg_pg_res_ok(res)) {
        im->failed = true;
        snprintf(im->err, sizeof(im->err), "reading stored credentials: %s",
                 tg_pg_res_message(res));
        tg_import_finish(im);
        return;
    }
    im->json[3] = tg_import_endpoints_json(im->conf, im->kr, res);
    if (im->json[3] == NULL) {
        im->failed = true;
        snprintf(im->err, sizeof(im->err), "out of memory");
        tg_import_finish(im);
        return;
    }
    tg_import_run(im);
}


/* See store.h. */
int
tg_store_import(tg_pg_t *pg, const tg_conf_t *conf,
                const tg_crypto_keyring_t *kr, tg_store_import_done_cb done,
                void *ctx)
{
    tg_import_t *im = calloc(1, sizeof(*im));

    if (im == NULL) {
        return TG_ERROR;
    }
    im->pg = pg;
    im->conf = conf;
    im->kr = kr;
    im->done = done;
    im->ctx = ctx;
    im->json[0] = tg_import_groups_json(conf);
    im->json[1] = tg_import_users_json(conf);
    im->json[2] = tg_import_keys_json(conf);
    if (im->json[0] == NULL || im->json[1] == NULL || im->json[2] == NULL) {
        tg_import_free(im);
        return TG_ERROR;
    }
    if (kr != NULL && conf->nendpoints > 0) {
        /* The credentials stored last time, to keep those unchanged. */
        if (tg_pg_query(pg, tg_import_creds_sql, 0, NULL, tg_import_creds_cb,
                        im) != TG_OK) {
            tg_import_free(im);
            return TG_ERROR;
        }
        return TG_OK;
    }
    im->json[3] = tg_import_endpoints_json(conf, NULL, NULL);
    if (im->json[3] == NULL) {
        tg_import_free(im);
        return TG_ERROR;
    }
    tg_import_run(im);
    return TG_OK;
}
