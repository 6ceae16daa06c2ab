/*
 * tests/integration/test_store.c
 *      PostgreSQL as the system of record: migrations, a newer schema
 *      refused, the config-file import, changes made in the database
 *      reaching the workers, the database or admin going away, and two
 *      hosts on one database.
 *
 * NOTES
 *      Each test gets a database of its own (tg_it_pg_db_create) on the
 *      run's PostgreSQL and changes rows with psql, as an operator or
 *      another host would; a real request through a worker proves what
 *      shared memory holds.  Timing bounds are the product's (100 ms on
 *      one host, 1 s across hosts); every other wait is generous.
 */
#include "core/core.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_DB   "tg-it-db-key-0123456789abcdef"
#define KEY_DB2  "tg-it-db-key-second-0123456789"
#define KEY_FILE "tg-it-file-key-for-alice-012345"

/* The "database" state /healthz reports, into <buf>. */
static const char *
healthz_db(int admin_port, char *buf, size_t len)
{
    tg_it_resp_t resp;
    json_t *j;

    tg_it_request(admin_port, "GET", "/healthz", NULL, NULL, &resp);
    j = tg_it_json(&resp);
    snprintf(buf, len, "%s",
             j != NULL && tg_it_json_str(j, "database") != NULL
                 ? tg_it_json_str(j, "database")
                 : "?");
    json_decref(j);
    tg_it_resp_fini(&resp);
    return buf;
}


/* Wait up to <timeout_ms> for /healthz to report <want>. */
static void
wait_db(int admin_port, const char *want, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    char got[32];

    while (strcmp(healthz_db(admin_port, got, sizeof(got)), want) != 0) {
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "/healthz says database \"%s\" after %d ms, expected "
                     "\"%s\"",
                     got, timeout_ms, want);
        tg_it_sleep_ms(20);
    }
}


/* Status of one Messages request with <key> through the worker port. */
static int
call(int port, const char *key)
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


/* Milliseconds until a request with <key> gets <want>, polling; fails the
 * test after <timeout_ms>. */
static uint64_t
wait_status(int port, const char *key, int want, int timeout_ms)
{
    uint64_t start = tg_it_now_ms();
    int got;

    while ((got = call(port, key)) != want) {
        TG_IT_CHECKF(tg_it_now_ms() - start < (uint64_t)timeout_ms,
                     "key still gets %d after %d ms, expected %d", got,
                     timeout_ms, want);
        tg_it_sleep_ms(2);
    }
    return tg_it_now_ms() - start;
}


/* A fixture on a database of its own; started, database ready. */
static void
start_on(tg_it_fixture_t *f, const char *db)
{
    tg_it_conf_set(&f->conf, "database", "\"%s\"", db);
    tg_it_fixture_start(f);
    wait_db(f->admin_port, "ready", 20000);
}


static void
test_migrations(void)
{
    tg_it_fixture_t f;
    char db[512], cred[8192];

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT version || ':' || name FROM "
                           "schema_migrations ORDER BY version LIMIT 1"),
        "1:0001_init");
    TG_IT_CHECK(
        atoi(tg_it_pg_query(db, "SELECT count(*) FROM pg_proc p JOIN "
                                "pg_namespace n ON n.oid = p.pronamespace "
                                "WHERE n.nspname = 'tg_api'")) > 0);
    TG_IT_CHECK(tg_it_file_count(f.error_log, (const char *const[]){
                                                  "applied migration 0001_init",
                                                  NULL}) == 1);
    /* A restart applies nothing again and keeps one row per migration
     * (the error log is appended to); the sealed credential is kept, not
     * sealed again with a fresh nonce (the new fixture's mock port does
     * change the endpoint's url). */
    snprintf(cred, sizeof(cred), "%s",
             tg_it_pg_query(db, "SELECT encode(credential_ciphertext, 'hex') "
                                "FROM endpoints WHERE name = 'mock-openai'"));
    TG_IT_CHECK(strlen(cred) > 60);
    tg_it_fixture_stop(&f);
    tg_it_fixture_init(&f);
    start_on(&f, db);
    TG_IT_CHECK_INT(tg_it_file_count(f.error_log,
                                     (const char *const[]){
                                         "applied migration 0001_init", NULL}),
                    1);
    TG_IT_CHECK_STR(tg_it_pg_query(db, "SELECT count(*) FROM schema_migrations "
                                       "WHERE version = 1"),
                    "1");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT encode(credential_ciphertext, 'hex') "
                           "FROM endpoints WHERE name = 'mock-openai'"),
        cred);
    TG_IT_CHECK_INT(call(f.port, TG_IT_KEY), 200);
    tg_it_fixture_stop(&f);
}


static void
test_newer_schema_refused(void)
{
    tg_it_fixture_t f;
    char db[512], line[160];

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_pg_query(
        db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
            "now()); INSERT INTO schema_migrations VALUES (9999, "
            "'9999_future')");
    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "database", "\"%s\"", db);
    tg_it_fixture_start(&f);
    wait_db(f.admin_port, "refused", 20000);
    snprintf(line, sizeof(line),
             "database schema version 9999 is newer than this tollgate "
             "supports (schema version ");
    TG_IT_CHECK(tg_it_file_wait(f.error_log, line, 5000));
    /* Nothing was written, and the workers serve the file's keys. */
    TG_IT_CHECK_STR(tg_it_pg_query(db, "SELECT count(*) FROM pg_tables "
                                       "WHERE tablename = 'users'"),
                    "0");
    TG_IT_CHECK_INT(call(f.port, TG_IT_KEY), 200);
    tg_it_fixture_stop(&f);
}


static void
test_file_import(void)
{
    tg_it_fixture_t f;
    char db[512];

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "users",
                   "( { name = \"alice\"; quota_tokens = 100000; "
                   "quota_period = \"day\"; keys = ( { key = \"" KEY_FILE
                   "\"; models = [ \"claude-*\" ]; rpm = 600; } ); } )");
    tg_it_conf_set(&f.conf, "groups",
                   "( { name = \"default\"; failure_threshold = 9; "
                   "wait_for_cooldown = 2; translate = false; } )");
    start_on(&f, db);
    /* The file declares "default": its settings, file-managed. */
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT managed_by || ',' || failure_threshold "
                           "|| ',' || wait_for_cooldown_ms || ',' || "
                           "translate FROM endpoint_groups WHERE name = "
                           "'default'"),
        "file,9,2000,false");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT username || ',' || managed_by || ',' || "
                           "tokens_day FROM users"),
        "alice,file,100000");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db,
                       "SELECT string_agg(COALESCE(u.username, '-') || ',' || "
                       "k.managed_by || ',' || k.status || ',' || "
                       "array_to_string(k.models, '|'), ';' ORDER BY k.key_id) "
                       "FROM api_keys k LEFT JOIN users u USING (user_id)"),
        "-,file,active,;alice,file,active,claude-*");
    /* Stored as digests, never in clear. */
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT count(*) FROM api_keys WHERE digest = "
                           "sha256('" KEY_FILE "'::bytea)"),
        "1");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT count(*) FROM api_keys WHERE prefix || "
                           "last4 LIKE '%" KEY_FILE "%'"),
        "0");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT managed_by || ',' || "
                           "(credential_ciphertext IS NOT NULL) "
                           "FROM endpoints WHERE name = 'mock-anthropic'"),
        "file,true");
    TG_IT_CHECK_INT(call(f.port, KEY_FILE), 200);

    /* A reload imports the file again: the key disabled, a key added. */
    tg_it_conf_set(&f.conf, "users",
                   "( { name = \"alice\"; keys = ( { key = \"" KEY_FILE
                   "\"; disabled = true; } ); } )");
    tg_it_conf_set(&f.conf, "keys", "( \"" TG_IT_KEY "\", \"" KEY_DB2 "\" )");
    tg_it_conf_unset(&f.conf, "groups");
    tg_it_conf_write(&f.conf, f.conf_path);
    tg_it_proc_signal(&f.tg, SIGHUP);
    /* Poll only once the old generation is gone: this test is about the
     * import, not about connections racing a reload. */
    TG_IT_CHECK(tg_it_file_wait_count(
                    f.error_log,
                    (const char *const[]){"exited with status 0", NULL}, 3,
                    20000) >= 3);
    wait_status(f.port, KEY_DB2, 200, 20000);
    wait_status(f.port, KEY_FILE, 401, 5000);
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT status || ',' || "
                           "COALESCE(tokens_day::text, 'null') FROM users "
                           "WHERE username = 'alice'"),
        "active,null");
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT string_agg(status, ',' ORDER BY key_id) "
                           "FROM api_keys WHERE managed_by = 'file'"),
        "active,disabled,active");
    /* No longer declared: "default" keeps its settings and is the API's. */
    TG_IT_CHECK_STR(
        tg_it_pg_query(db, "SELECT managed_by || ',' || failure_threshold "
                           "FROM endpoint_groups WHERE name = 'default'"),
        "api,9");
    tg_it_fixture_stop(&f);
}


static void
test_change_reaches_workers(void)
{
    tg_it_fixture_t f;
    char db[512];
    uint64_t ms;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    TG_IT_CHECK_INT(call(f.port, KEY_DB), 401);
    tg_it_pg_query(db,
                   "INSERT INTO users (username) VALUES ('bob');"
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB "'::bytea), 'tg-it-db', "
                   "'cdef' FROM users WHERE username = 'bob'");
    ms = wait_status(f.port, KEY_DB, 200, 5000);
    tg_it_note("an inserted key worked after %llu ms", (unsigned long long)ms);
    TG_IT_CHECKF(ms <= 100, "inserted key took %llu ms",
                 (unsigned long long)ms);

    tg_it_pg_query(db, "UPDATE api_keys SET status = 'disabled' WHERE prefix = "
                       "'tg-it-db'");
    ms = wait_status(f.port, KEY_DB, 401, 5000);
    tg_it_note("a disabled key was refused after %llu ms",
               (unsigned long long)ms);
    TG_IT_CHECKF(ms <= 100, "disabled key took %llu ms",
                 (unsigned long long)ms);

    tg_it_pg_query(
        db, "UPDATE api_keys SET status = 'active' WHERE prefix = 'tg-it-db'");
    wait_status(f.port, KEY_DB, 200, 5000);
    tg_it_pg_query(
        db, "UPDATE users SET status = 'disabled' WHERE username = 'bob'");
    ms = wait_status(f.port, KEY_DB, 403, 5000);
    TG_IT_CHECKF(ms <= 100, "disabled user took %llu ms",
                 (unsigned long long)ms);
    tg_it_pg_query(db,
                   "UPDATE users SET status = 'active' WHERE username = 'bob'");
    wait_status(f.port, KEY_DB, 200, 5000);
    tg_it_pg_query(db, "DELETE FROM api_keys WHERE prefix = 'tg-it-db'");
    ms = wait_status(f.port, KEY_DB, 401, 5000);
    TG_IT_CHECKF(ms <= 100, "deleted key took %llu ms", (unsigned long long)ms);
    tg_it_fixture_stop(&f);
}


/* Rows of mock-anthropic's "cooled" events in <db>, once there is one
 * (at most 10 s). */
static int
cooled_wait(const char *db)
{
    uint64_t deadline = tg_it_now_ms() + 10000;
    int n;

    while ((n = atoi(tg_it_pg_query(db, "SELECT count(*) FROM endpoint_events"
                                        " WHERE type = 'cooled' AND endpoint ="
                                        " 'mock-anthropic'"))) < 1 &&
           tg_it_now_ms() < deadline) {
        tg_it_sleep_ms(100);
    }
    return n;
}


static void
test_database_restart(void)
{
    tg_it_fixture_t f;
    char db[512];
    int i;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    tg_it_pg_query(db,
                   "INSERT INTO users (username) VALUES ('carol');"
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB "'::bytea), 'tg-it-db', "
                   "'cdef' FROM users WHERE username = 'carol'");
    wait_status(f.port, KEY_DB, 200, 5000);

    tg_it_pg_stop();
    wait_db(f.admin_port, "down", 10000);
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "database connection lost", 5000));
    /* The workers keep the last published state, database keys too. */
    for (i = 0; i < 5; i++) {
        TG_IT_CHECK_INT(call(f.port, KEY_DB), 200);
        TG_IT_CHECK_INT(call(f.port, TG_IT_KEY), 200);
        tg_it_sleep_ms(200);
    }
    /* A 429 cools mock-anthropic (mock-openai could serve too, by
     * translation): its endpoint event waits in admin meanwhile. */
    {
        tg_it_resp_t resp;

        tg_it_request(f.port, "POST", "/v1/messages",
                      TG_IT_H_ANTHROPIC "x-mock-fault: 429:1\r\n",
                      TG_IT_BODY_MESSAGES, &resp);
        tg_it_resp_fini(&resp);
    }
    tg_it_pg_start();
    /* Back-off is at most a few seconds after this short an outage. */
    wait_db(f.admin_port, "ready", 40000);
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "database connection ready", 5000));
    /* The event made during the outage is stored once it is over. */
    TG_IT_CHECKF(cooled_wait(db) == 1,
                 "the cool-down during the outage was not stored");
    /* Listening again: a change reaches the workers. */
    tg_it_pg_query(db, "UPDATE api_keys SET status = 'disabled' WHERE prefix = "
                       "'tg-it-db'");
    wait_status(f.port, KEY_DB, 401, 1000);
    tg_it_fixture_stop(&f);
}


static void
test_database_hangs(void)
{
    tg_it_fixture_t f;
    char db[512];
    pid_t backend;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "admin.reconcile_interval", "1");
    start_on(&f, db);
    tg_it_pg_query(db,
                   "INSERT INTO users (username) VALUES ('frank');"
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB "'::bytea), 'tg-it-db', "
                   "'cdef' FROM users WHERE username = 'frank'");
    wait_status(f.port, KEY_DB, 200, 5000);
    backend = (pid_t)atoi(
        tg_it_pg_query(db, "SELECT pid FROM pg_stat_activity WHERE "
                           "application_name = 'tollgate-admin' AND "
                           "datname = current_database()"));
    TG_IT_CHECK(backend > 1);
    /* The server process admin talks to stops answering: the next
     * reconcile's statement hangs, and neither statement_timeout (the
     * process is stopped) nor the socket (still open) ends it. */
    TG_IT_CHECKF(kill(backend, SIGSTOP) == 0, "kill(SIGSTOP) failed");
    tg_it_pg_query(db, "UPDATE api_keys SET status = 'disabled' WHERE prefix = "
                       "'tg-it-db'");
    TG_IT_CHECK_INT(call(f.port, KEY_DB), 200); /* nobody told admin */
    /* The client-side bound (statement_timeout 10 s + 5 s) drops the
     * connection; admin reconnects to a new server process and reloads. */
    TG_IT_CHECK(tg_it_file_wait(f.error_log,
                                "no answer from the server in time", 25000));
    kill(backend, SIGCONT);
    wait_db(f.admin_port, "ready", 10000);
    wait_status(f.port, KEY_DB, 401, 5000);
    TG_IT_CHECK_INT(call(f.port, TG_IT_KEY), 200);
    tg_it_fixture_stop(&f);
}


static void
test_admin_killed(void)
{
    tg_it_fixture_t f;
    pid_t admin[4], again[4];
    char db[512];
    int n, i;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    tg_it_fixture_settle(&f);
    tg_it_pg_query(db,
                   "INSERT INTO users (username) VALUES ('dave');"
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB "'::bytea), 'tg-it-db', "
                   "'cdef' FROM users WHERE username = 'dave'");
    wait_status(f.port, KEY_DB, 200, 5000);
    n = tg_it_children(f.tg.pid, "admin", admin, 4);
    TG_IT_CHECK_INT(n, 1);
    TG_IT_CHECK(kill(admin[0], SIGKILL) == 0);
    /* While admin is dead the workers serve what was published, and a
     * change made meanwhile is picked up by the next admin. */
    tg_it_pg_query(db,
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB2 "'::bytea), 'tg-it-d2', "
                   "'6789' FROM users WHERE username = 'dave'");
    for (i = 0; i < 3; i++) {
        TG_IT_CHECK_INT(call(f.port, KEY_DB), 200);
        TG_IT_CHECK_INT(call(f.port, TG_IT_KEY), 200);
    }
    wait_status(f.port, KEY_DB2, 200, 20000);
    n = tg_it_children(f.tg.pid, "admin", again, 4);
    TG_IT_CHECK_INT(n, 1);
    TG_IT_CHECK(again[0] != admin[0]);
    wait_db(f.admin_port, "ready", 5000);
    TG_IT_CHECK_INT(call(f.port, KEY_DB), 200);
    tg_it_fixture_stop(&f);
}


/*
 * An endpoint event made while PostgreSQL is down waits in admin; admin
 * is killed with SIGKILL before the database returns.  The next admin
 * reads it back from the events journal and stores it, once.
 */
static void
test_events_survive_admin_killed(void)
{
    static const char *const kept[] = {"endpoint events from", NULL};
    static const char *const jline[] = {"{", NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    pid_t admin[4];
    char db[512], path[4200];
    int i;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    tg_it_fixture_settle(&f);
    tg_it_pg_stop();
    wait_db(f.admin_port, "down", 10000);
    /* A 429 cools mock-anthropic: a "cooled" event, drained by admin
     * within 100 ms and journalled before anything else is done with it. */
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: 429:1\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    tg_it_resp_fini(&resp);
    tg_it_path(path, sizeof(path), "spool/events.journal");
    for (i = 0;
         i < 100 &&
         tg_it_file_count(path, (const char *const[]){"\"cooled\"", NULL}) < 1;
         i++) {
        tg_it_sleep_ms(50);
    }
    TG_IT_CHECKF(i < 100, "the cool-down event never reached %s", path);
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "admin", admin, 4), 1);
    TG_IT_CHECK(kill(admin[0], SIGKILL) == 0);
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "endpoint events from", 10000));
    tg_it_pg_start();
    wait_db(f.admin_port, "ready", 40000);
    TG_IT_CHECKF(cooled_wait(db) == 1, "the journalled event was not stored");
    /* Once: the journal is emptied when the batch is stored, and nothing
     * sends the event again. */
    for (i = 0; i < 50 && tg_it_file_count(path, jline) > 0; i++) {
        tg_it_sleep_ms(100);
    }
    TG_IT_CHECK_INT(tg_it_file_count(path, jline), 0);
    TG_IT_CHECK_INT(tg_it_file_count(f.error_log, kept), 1);
    tg_it_sleep_ms(1500);
    TG_IT_CHECK_INT(cooled_wait(db), 1);
    tg_it_fixture_stop(&f);
}


/*
 * Two hosts that want the same month partition at once (both starting on
 * a new database, or a month's turn): the second waits for the first and
 * finds the partition made, instead of failing its batch.  Here host A's
 * transaction holds its new partition uncommitted for a second while
 * host B asks for it.
 */
static void
test_partition_race(void)
{
    static const char *const made[] = {"usage_requests_203105", NULL};
    tg_it_fixture_t f;
    tg_it_proc_t a;
    char db[512], out[1024], path[4200];
    uint64_t t0;
    int rc;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    start_on(&f, db);
    tg_it_pg_start_query(
        &a, "host-a", db,
        "BEGIN; SELECT tg_api._month_partition('usage_requests', "
        "'2031-05-10T00:00:00Z'); SELECT pg_sleep(1); COMMIT;");
    tg_it_sleep_ms(300);
    t0 = tg_it_now_ms();
    rc = tg_it_pg_exec(db,
                       "SELECT coalesce(tg_api._month_partition("
                       "'usage_requests', '2031-05-20T00:00:00Z'), 'none')",
                       out, sizeof(out));
    TG_IT_CHECKF(rc == 0, "host B failed: %s", out);
    TG_IT_CHECK_STR(out, "none");
    tg_it_note("host B waited %llu ms for host A's partition",
               (unsigned long long)(tg_it_now_ms() - t0));
    TG_IT_CHECK(tg_it_proc_wait(&a, 10000));
    TG_IT_CHECK(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 0);
    tg_it_path(path, sizeof(path), "host-a.out");
    TG_IT_CHECK_INT(tg_it_file_count(path, made), 1);
    TG_IT_CHECK_STR(tg_it_pg_query(db, "SELECT count(*) FROM pg_inherits "
                                       "WHERE inhparent = "
                                       "'usage_requests'::regclass AND "
                                       "inhrelid::regclass::text = "
                                       "'usage_requests_203105'"),
                    "1");
    tg_it_fixture_stop(&f);
}


static void
test_two_hosts(void)
{
    tg_it_fixture_t a, b;
    char db[512];
    uint64_t ms;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&a);
    tg_it_fixture_init(&b);
    /* Host b has its own logs and pid file in the test directory. */
    tg_it_path(b.error_log, sizeof(b.error_log), "error-b.log");
    tg_it_path(b.access_log, sizeof(b.access_log), "access-b.log");
    tg_it_path(b.conf_path, sizeof(b.conf_path), "tollgate-b.conf");
    tg_it_path(b.ledger, sizeof(b.ledger), "ledger-b.jsonl");
    tg_it_conf_set(&b.conf, "log.error", "\"%s\"", b.error_log);
    tg_it_conf_set(&b.conf, "log.access", "\"%s\"", b.access_log);
    {
        char p[4096];

        tg_it_path(p, sizeof(p), "tollgate-b.pid");
        tg_it_conf_set(&b.conf, "pid_file", "\"%s\"", p);
    }
    /* Both start on the fresh database at once: the advisory lock makes
     * one migrate and import while the other waits. */
    tg_it_conf_set(&a.conf, "database", "\"%s\"", db);
    tg_it_conf_set(&b.conf, "database", "\"%s\"", db);
    tg_it_fixture_start(&a);
    tg_it_fixture_start(&b);
    wait_db(a.admin_port, "ready", 20000);
    wait_db(b.admin_port, "ready", 20000);
    /* One row per migration: each applied once, by one of them. */
    TG_IT_CHECK_STR(tg_it_pg_query(db, "SELECT count(*) = max(version) FROM "
                                       "schema_migrations"),
                    "t");
    TG_IT_CHECK_STR(tg_it_pg_query(db, "SELECT count(*) FROM api_keys"), "1");
    tg_it_pg_query(db,
                   "INSERT INTO users (username) VALUES ('erin');"
                   "INSERT INTO api_keys (user_id, digest, prefix, last4) "
                   "SELECT user_id, sha256('" KEY_DB "'::bytea), 'tg-it-db', "
                   "'cdef' FROM users WHERE username = 'erin'");
    wait_status(a.port, KEY_DB, 200, 1000);
    wait_status(b.port, KEY_DB, 200, 1000);
    tg_it_pg_query(db, "UPDATE api_keys SET status = 'disabled' WHERE prefix = "
                       "'tg-it-db'");
    ms = wait_status(a.port, KEY_DB, 401, 1000);
    ms += wait_status(b.port, KEY_DB, 401, 1000);
    tg_it_note("both hosts refused the disabled key after %llu ms",
               (unsigned long long)ms);
    TG_IT_CHECK(ms <= 1000);
    tg_it_fixture_stop(&b);
    tg_it_fixture_stop(&a);
}


const tg_it_test_t tg_it_store_tests[] = {
    {"migrations are applied once each and recorded in schema_migrations",
     test_migrations},
    {"a database with a newer schema is refused with a message naming both "
     "versions",
     test_newer_schema_refused},
    {"config-file users, keys and the default group are imported as "
     "managed_by file, and again on HUP",
     test_file_import},
    {"a key inserted, disabled or deleted in PostgreSQL reaches the workers "
     "within 100 ms",
     test_change_reaches_workers},
    {"PostgreSQL stopped: workers keep serving, admin reconnects when it "
     "returns and /healthz says so, and stores the endpoint events made "
     "meanwhile",
     test_database_restart},
    {"a database that stops answering is dropped after the statement bound "
     "and admin reconnects",
     test_database_hangs},
    {"admin killed with SIGKILL: workers keep serving and the new admin "
     "republishes",
     test_admin_killed},
    {"an endpoint event waiting for PostgreSQL survives admin killed with "
     "SIGKILL and is stored once when the database returns",
     test_events_survive_admin_killed},
    {"two hosts that want the same month partition at once both succeed: "
     "the second finds it made",
     test_partition_race},
    {"two tollgates started at once on one database migrate once and see "
     "each other's key disable within 1 s",
     test_two_hosts},
    {NULL, NULL},
};
