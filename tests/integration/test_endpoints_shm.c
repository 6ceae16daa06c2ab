/*
 * tests/integration/test_endpoints_shm.c
 *      Endpoints and groups managed over the admin API reach the workers
 *      through shared memory and are routed to.
 *
 * NOTES
 *      A second mock upstream requires its own credential
 *      (--require-key), so a 200 through it proves the worker sent the
 *      credential admin opened from the database.  The key used is created
 *      over the API in a group of its own, so only that group's endpoints
 *      can serve it.  Bounds are the product's: 100 ms on one host
 *      (PROMPT_MS; ten times that under AddressSanitizer).
 */
#include "core/core.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define PROMPT_MS (TG_IT_SANITIZED ? 1000 : 100)

#define EP_CRED "tg-it-ep-shm-credential-0123456789"


/* Status of one Messages request with <key> through <port>. */
static int
msg(int port, const char *key)
{
    char headers[256];
    tg_it_resp_t resp;
    int status;

    snprintf(headers, sizeof(headers),
             "x-api-key: %s\r\nanthropic-version: 2023-06-01\r\n"
             "content-type: application/json\r\n",
             key);
    tg_it_request(port, "POST", "/v1/messages", headers, TG_IT_BODY_MESSAGES,
                  &resp);
    status = resp.r.status;
    tg_it_resp_fini(&resp);
    return status;
}


/* Milliseconds until <key> gets <want> (or, with <want> 0, anything but
 * 200); fails after <timeout_ms>. */
static uint64_t
wait_for(int port, const char *key, int want, int timeout_ms)
{
    uint64_t start = tg_it_now_ms();
    int got;

    for (;;) {
        got = msg(port, key);
        if (want != 0 ? got == want : got != 200) {
            return tg_it_now_ms() - start;
        }
        TG_IT_CHECKF(tg_it_now_ms() - start < (uint64_t)timeout_ms,
                     "key still gets %d after %d ms, expected %d", got,
                     timeout_ms, want);
        tg_it_sleep_ms(2);
    }
}


/* One admin call that must answer <want>; the answer (caller decrefs). */
static json_t *
api(int port, const char *tok, const char *method, const char *path,
    const char *body, int want)
{
    json_t *j = NULL;
    int st = tg_it_admin_call(port, tok, method, path, body, &j);

    TG_IT_CHECKF(st == want, "%s %s answered %d, expected %d", method, path, st,
                 want);
    return j;
}


static long long
jid(json_t *j, const char *name)
{
    json_t *v = json_object_get(j, name);

    TG_IT_CHECKF(json_is_integer(v), "no integer \"%s\" in the answer", name);
    return (long long)json_integer_value(v);
}


static void
test_api_endpoint_routed(void)
{
    tg_it_fixture_t f;
    tg_it_proc_t mock2;
    char tok[256], body[1024], path[128], key[128], ledger2[4096];
    const char *args[] = {"--require-key", EP_CRED, NULL};
    long long eid;
    uint64_t ms;
    int port2 = tg_it_port_free();
    json_t *j;
    pid_t admin[4];

    tg_it_fixture_init(&f);
    tg_it_admin_prepare(&f, NULL);
    tg_it_path(ledger2, sizeof(ledger2), "ledger-2.jsonl");
    tg_it_mock_start(&mock2, "mock-2", port2, ledger2, args);
    tg_it_fixture_start(&f);
    tg_it_admin_login(&f, tok, sizeof(tok));

    /* A group, and a key in it: no endpoint serves it yet. */
    json_decref(api(f.admin_port, tok, "POST", "/admin/api/groups",
                    "{\"name\":\"shm-group\",\"strategy\":\"round-robin\"}",
                    201));
    j = api(f.admin_port, tok, "POST", "/admin/api/keys",
            "{\"user_id\":1,\"name\":\"shm\",\"group\":\"shm-group\"}", 201);
    snprintf(key, sizeof(key), "%s", tg_it_json_str(j, "key"));
    json_decref(j);
    wait_for(f.port, key, 0, 2000);
    TG_IT_CHECK(msg(f.port, key) != 200);

    /* The endpoint created over the API serves the key within 100 ms,
     * with its credential opened. */
    snprintf(body, sizeof(body),
             "{\"name\":\"shm-ep\",\"url\":\"http://127.0.0.1:%d\","
             "\"style\":\"anthropic\",\"credential\":\"" EP_CRED "\","
             "\"group\":\"shm-group\"}",
             port2);
    j = api(f.admin_port, tok, "POST", "/admin/api/endpoints", body, 201);
    eid = jid(j, "endpoint_id");
    json_decref(j);
    ms = wait_for(f.port, key, 200, 5000);
    tg_it_note("created endpoint routed after %llu ms", (unsigned long long)ms);
    TG_IT_CHECK(ms <= PROMPT_MS);
    TG_IT_CHECK(tg_it_file_wait(ledger2, "\"status\":200", 2000));
    /* The file's key still goes to the file's endpoints. */
    TG_IT_CHECK_INT(msg(f.port, TG_IT_KEY), 200);

    /* Disabled: no longer chosen; enabled again: chosen. */
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/disable", eid);
    json_decref(api(f.admin_port, tok, "POST", path, NULL, 200));
    ms = wait_for(f.port, key, 0, 5000);
    tg_it_note("disabled endpoint out of routing after %llu ms",
               (unsigned long long)ms);
    TG_IT_CHECK(ms <= PROMPT_MS);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/enable", eid);
    json_decref(api(f.admin_port, tok, "POST", path, NULL, 200));
    TG_IT_CHECK(wait_for(f.port, key, 200, 5000) <= PROMPT_MS);

    /* Admin killed: the workers keep routing with what was published. */
    tg_it_fixture_settle(&f);
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "admin", admin, 4), 1);
    TG_IT_CHECK(kill(admin[0], SIGKILL) == 0);
    TG_IT_CHECK_INT(msg(f.port, key), 200);
    TG_IT_CHECK_INT(msg(f.port, key), 200);
    tg_it_admin_login(&f, tok, sizeof(tok));
    TG_IT_CHECK_INT(msg(f.port, key), 200);

    /* Deleted: gone. */
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld", eid);
    json_decref(api(f.admin_port, tok, "DELETE", path, NULL, 200));
    ms = wait_for(f.port, key, 0, 5000);
    tg_it_note("deleted endpoint gone after %llu ms", (unsigned long long)ms);
    TG_IT_CHECK(ms <= PROMPT_MS);
    tg_it_fixture_stop(&f);
    tg_it_proc_stop(&mock2, 5000);
}


/* Create endpoint <name> of <style> in group <group> on mock <port>. */
static void
ep_create(int port, const char *tok, const char *name, const char *style,
          const char *group, int mock_port)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"url\":\"http://127.0.0.1:%d\","
             "\"style\":\"%s\",\"credential\":\"" TG_IT_CRED "\","
             "\"group\":\"%s\",\"health_interval_ms\":0}",
             name, mock_port, style, group);
    json_decref(api(port, tok, "POST", "/admin/api/endpoints", body, 201));
}


/* A key of group <group> into <key> of <len> bytes. */
static void
key_create(int port, const char *tok, const char *group, char *key, size_t len)
{
    char body[256];
    json_t *j;

    snprintf(body, sizeof(body), "{\"user_id\":1,\"group\":\"%s\"}", group);
    j = api(port, tok, "POST", "/admin/api/keys", body, 201);
    snprintf(key, len, "%s", tg_it_json_str(j, "key"));
    json_decref(j);
}


/* Set the mock's global fault to <spec> ("" clears it). */
static void
mock_fault(int mock_port, const char *spec)
{
    tg_it_resp_t resp;

    tg_it_request(mock_port, "POST", "/_mock/fault", NULL, spec, &resp);
    TG_IT_CHECK_INT(resp.r.status, 200);
    tg_it_resp_fini(&resp);
}


/* Cool both endpoints of the key's group with 429s (retry-after 2 s),
 * then time one request once the upstream answers again: how long it
 * took, its status into <*status>. */
static uint64_t
cooled_request(tg_it_fixture_t *f, const char *key, int *status)
{
    uint64_t start;

    mock_fault(f->mock_port, "429:2");
    TG_IT_CHECK_INT(msg(f->port, key), 429);
    mock_fault(f->mock_port, "");
    start = tg_it_now_ms();
    *status = msg(f->port, key);
    return tg_it_now_ms() - start;
}


/*
 * A group's translate and wait_for_cooldown_ms, set over the API, reach
 * the workers: a Messages request of a group with only an OpenAI-style
 * endpoint fails while translate is false and is served once it is true;
 * a request of a group whose endpoints all cool down goes at once with
 * wait_for_cooldown_ms 0 and waits for the cool-down with 5000.
 */
static void
test_group_settings(void)
{
    tg_it_fixture_t f;
    char tok[256], key[128], key2[128], path[128];
    uint64_t ms;
    json_t *j;
    int st;

    tg_it_fixture_init(&f);
    tg_it_admin_prepare(&f, NULL);
    tg_it_fixture_start(&f);
    tg_it_admin_login(&f, tok, sizeof(tok));

    /* translate */
    j = api(f.admin_port, tok, "POST", "/admin/api/groups",
            "{\"name\":\"oai-only\",\"translate\":false}", 201);
    TG_IT_CHECK(json_is_false(json_object_get(j, "translate")));
    snprintf(path, sizeof(path), "/admin/api/groups/%lld", jid(j, "group_id"));
    json_decref(j);
    ep_create(f.admin_port, tok, "oai-ep", "openai", "oai-only", f.mock_port);
    key_create(f.admin_port, tok, "oai-only", key, sizeof(key));
    /* Published within the product's bound; 401 until the key is. */
    for (st = 401, ms = tg_it_now_ms();
         st == 401 && tg_it_now_ms() - ms < 5000;) {
        st = msg(f.port, key);
    }
    TG_IT_CHECK_INT(st, 503);
    json_decref(
        api(f.admin_port, tok, "PATCH", path, "{\"translate\":true}", 200));
    ms = wait_for(f.port, key, 200, 5000);
    tg_it_note("translate on after %llu ms", (unsigned long long)ms);
    TG_IT_CHECK(ms <= 1000);

    /* wait_for_cooldown_ms */
    j = api(f.admin_port, tok, "POST", "/admin/api/groups",
            "{\"name\":\"pair\",\"translate\":false}", 201);
    TG_IT_CHECK_INT(jid(j, "wait_for_cooldown_ms"), 0);
    snprintf(path, sizeof(path), "/admin/api/groups/%lld", jid(j, "group_id"));
    json_decref(j);
    ep_create(f.admin_port, tok, "pair-a", "anthropic", "pair", f.mock_port);
    ep_create(f.admin_port, tok, "pair-b", "anthropic", "pair", f.mock_port);
    key_create(f.admin_port, tok, "pair", key2, sizeof(key2));
    wait_for(f.port, key2, 200, 5000);
    ms = cooled_request(&f, key2, &st);
    tg_it_note("all cooled, no wait: %d after %llu ms", st,
               (unsigned long long)ms);
    TG_IT_CHECK_INT(st, 200);
    TG_IT_CHECK(ms < 1000);
    st = tg_it_admin_call(f.admin_port, tok, "PATCH", path,
                          "{\"wait_for_cooldown_ms\":60001}", NULL);
    TG_IT_CHECK_INT(st, 400);
    json_decref(api(f.admin_port, tok, "PATCH", path,
                    "{\"wait_for_cooldown_ms\":5000}", 200));
    tg_it_sleep_ms(2500); /* the cool-downs above end, the change lands */
    ms = cooled_request(&f, key2, &st);
    tg_it_note("all cooled, wait 5000: %d after %llu ms", st,
               (unsigned long long)ms);
    TG_IT_CHECK_INT(st, 200);
    TG_IT_CHECK(ms >= 1000 && ms < 5000);
    tg_it_fixture_stop(&f);
}


/* Host b of a two-host test: its own logs, config and pid file in the
 * test directory; the database and secret key file of host a. */
static void
second_host_init(tg_it_fixture_t *b, const char *db)
{
    char p[4096];

    tg_it_fixture_init(b);
    tg_it_path(b->error_log, sizeof(b->error_log), "error-b.log");
    tg_it_path(b->access_log, sizeof(b->access_log), "access-b.log");
    tg_it_path(b->conf_path, sizeof(b->conf_path), "tollgate-b.conf");
    tg_it_path(b->ledger, sizeof(b->ledger), "ledger-b.jsonl");
    tg_it_conf_set(&b->conf, "log.error", "\"%s\"", b->error_log);
    tg_it_conf_set(&b->conf, "log.access", "\"%s\"", b->access_log);
    tg_it_conf_set(&b->conf, "pid_file", "\"%s\"",
                   tg_it_path(p, sizeof(p), "tollgate-b.pid"));
    tg_it_conf_set(&b->conf, "database", "\"%s\"", db);
    tg_it_admin_prepare(b, NULL);
}


static void
test_second_host(void)
{
    tg_it_fixture_t a, b;
    tg_it_proc_t mock2;
    char tok[256], tokb[256], body[1024], key[128], db[512], ledger2[4096];
    const char *args[] = {"--require-key", EP_CRED, NULL};
    int port2 = tg_it_port_free();
    uint64_t ms;
    json_t *j;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&a);
    tg_it_conf_set(&a.conf, "database", "\"%s\"", db);
    tg_it_admin_prepare(&a, NULL);
    second_host_init(&b, db);
    tg_it_path(ledger2, sizeof(ledger2), "ledger-2.jsonl");
    tg_it_mock_start(&mock2, "mock-2", port2, ledger2, args);
    tg_it_fixture_start(&a);
    tg_it_admin_login(&a, tok, sizeof(tok));
    tg_it_fixture_start(&b);
    tg_it_admin_login(&b, tokb, sizeof(tokb));

    json_decref(api(a.admin_port, tok, "POST", "/admin/api/groups",
                    "{\"name\":\"two-hosts\"}", 201));
    j = api(a.admin_port, tok, "POST", "/admin/api/keys",
            "{\"user_id\":1,\"name\":\"two\",\"group\":\"two-hosts\"}", 201);
    snprintf(key, sizeof(key), "%s", tg_it_json_str(j, "key"));
    json_decref(j);
    snprintf(body, sizeof(body),
             "{\"name\":\"two-hosts-ep\",\"url\":\"http://127.0.0.1:%d\","
             "\"style\":\"anthropic\",\"credential\":\"" EP_CRED "\","
             "\"group\":\"two-hosts\"}",
             port2);
    json_decref(
        api(a.admin_port, tok, "POST", "/admin/api/endpoints", body, 201));
    ms = wait_for(b.port, key, 200, 5000);
    tg_it_note("the other host routes the new endpoint after %llu ms",
               (unsigned long long)ms);
    TG_IT_CHECK(ms <= 1000);
    /* Host a learns of its own change the same way, by the notification:
     * it may come a little after b. */
    TG_IT_CHECK(wait_for(a.port, key, 200, 5000) <= 1000);
    /* Host b's API shows it with its live state, without the credential. */
    j = api(b.admin_port, tokb, "GET", "/admin/api/endpoints?limit=500", NULL,
            200);
    {
        char *text = json_dumps(j, 0);

        TG_IT_CHECK(text != NULL && strstr(text, "two-hosts-ep") != NULL);
        TG_IT_CHECK(text != NULL && strstr(text, EP_CRED) == NULL);
        free(text);
    }
    json_decref(j);
    tg_it_fixture_stop(&b);
    tg_it_fixture_stop(&a);
    tg_it_proc_stop(&mock2, 5000);
}


static void
test_config_only(void)
{
    tg_it_fixture_t f;

    tg_it_fixture_init(&f);
    tg_it_conf_unset(&f.conf, "database");
    tg_it_fixture_start(&f);
    TG_IT_CHECK_INT(msg(f.port, TG_IT_KEY), 200);
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "published endpoints: 2 endpoints", 2000));
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_endpoints_shm_tests[] = {
    {"an endpoint and group created over the API are routed within 100 ms "
     "with the opened credential; disable, enable, admin killed, delete",
     test_api_endpoint_routed},
    {"an endpoint created on one host is routed by a second host on the same "
     "database within 1 s",
     test_second_host},
    {"without a database the file's endpoints are published and routed",
     test_config_only},
    {"a group's translate and wait_for_cooldown_ms set over the API take "
     "effect in the workers",
     test_group_settings},
    {NULL, NULL},
};
