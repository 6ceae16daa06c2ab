/*
 * tests/integration/test_usage_hosts.c
 *      Usage across hosts and the batch ledger's retention: one user's
 *      daily token quota holds across two Tollgate hosts on one
 *      PostgreSQL within the documented bound, and admin purges batch ids
 *      older than usage.batch_retention in bounded chunks.
 *
 * NOTES
 *      The two hosts have their own shared memory, ports, spool
 *      directories, logs and host names (admin.host_name, which splits the
 *      quota sums into this host's usage and the others'), and share the
 *      database and the configuration file's user "erin".  The load is
 *      sequential and alternates between the hosts at a fixed pace, so
 *      the test knows when the quota was first reached (t*: the answer
 *      whose tokens brought the sum to the limit) and how many requests
 *      each host was offered in any window.  The bound it checks is the
 *      one of docs/operations.md ("Quotas across hosts"): after t* a host
 *      admits only until the other host's usage reached its counters,
 *      that is within one window W = batch close period + drain period +
 *      usage.sync_interval (+ the time the flush and the sums take); so
 *      usage past the limit is at most what each host admits in one W,
 *      plus what was in flight (one request: the load is sequential).
 *      A default answer of the mock costs 20 tokens.
 *
 *      The tests are listed in test_usage_pg.c's table.
 */
#include "tests/integration/test_usage_hosts.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HKEY "tg-it-two-hosts-quota-key-0123"
#define HBODY                                                                  \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,"                      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
#define HQUOTA     2000 /* erin's tokens per day */
#define HTOKENS    20   /* tokens of one answer */
#define HPACE_MS   40   /* one request every HPACE_MS, alternating hosts */
#define HSYNC_MS   200  /* usage.sync_interval of both hosts */
#define HMAX       600  /* requests the load sends at most */
#define HCLOSE_MS  1000 /* admin closes a usage batch at least this often */
#define HDRAIN_MS  100  /* admin drains the ring this often */
#define HSLACK_MS  1500 /* flush and sums round trips on a busy machine */
#define HWINDOW_MS (HCLOSE_MS + HDRAIN_MS + HSYNC_MS + HSLACK_MS)

typedef struct {
    uint64_t sent_ms; /* when the request was sent */
    int host;         /* 0 = a, 1 = b */
    int status;
} hreq_t;


/* Host <name> ("a" or "b") on database <db>: its own logs, pid file,
 * spool directory and host name; the shared user erin with <quota>
 * tokens a day. */
static void
host_init(tg_it_fixture_t *f, const char *name, const char *db)
{
    char p[4096], file[64];

    tg_it_fixture_init(f);
    snprintf(file, sizeof(file), "error-%s.log", name);
    tg_it_path(f->error_log, sizeof(f->error_log), file);
    snprintf(file, sizeof(file), "access-%s.log", name);
    tg_it_path(f->access_log, sizeof(f->access_log), file);
    snprintf(file, sizeof(file), "tollgate-%s.conf", name);
    tg_it_path(f->conf_path, sizeof(f->conf_path), file);
    snprintf(file, sizeof(file), "ledger-%s.jsonl", name);
    tg_it_path(f->ledger, sizeof(f->ledger), file);
    tg_it_conf_set(&f->conf, "log.error", "\"%s\"", f->error_log);
    tg_it_conf_set(&f->conf, "log.access", "\"%s\"", f->access_log);
    snprintf(file, sizeof(file), "tollgate-%s.pid", name);
    tg_it_conf_set(&f->conf, "pid_file", "\"%s\"",
                   tg_it_path(p, sizeof(p), file));
    snprintf(file, sizeof(file), "spool-%s", name);
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"",
                   tg_it_path(p, sizeof(p), file));
    tg_it_conf_set(&f->conf, "admin.host_name", "\"host-%s\"", name);
    tg_it_conf_set(&f->conf, "database", "\"%s\"", db);
    tg_it_conf_set(&f->conf, "log.level", "\"info\"");
    tg_it_conf_set(&f->conf, "usage.sync_interval", "%g", HSYNC_MS / 1000.0);
    tg_it_conf_set(&f->conf, "users",
                   "( { name = \"erin\"; quota_tokens = %d; quota_period = "
                   "\"day\"; keys = ( \"" HKEY "\" ); } )",
                   HQUOTA);
    tg_it_admin_prepare(f, NULL);
}


/* Check that <resp> is the refusal of erin's daily token quota. */
static void
expect_refusal(const tg_it_resp_t *resp, const char *host)
{
    const char *msg;
    json_t *j;

    TG_IT_CHECKF(resp->status == 429, "host %s: status %d, body %.300s", host,
                 resp->status, resp->body ? resp->body : "");
    j = tg_it_json(resp);
    msg = tg_it_json_str(j, "error.message");
    TG_IT_CHECKF(msg != NULL && strstr(msg, "daily token quota of this user"),
                 "host %s: the 429 does not name the quota: %s", host,
                 msg ? msg : "(none)");
    json_decref(j);
}


/* Send the alternating load until both hosts refused twice in a row or
 * HMAX requests went; returns the number sent. */
static int
two_host_load(const int port[2], hreq_t *r)
{
    char *raw = tg_it_request_build("POST", "/v1/messages",
                                    "x-api-key: " HKEY "\r\n"
                                    "anthropic-version: 2023-06-01\r\n"
                                    "content-type: application/json\r\n",
                                    HBODY);
    uint64_t start = tg_it_now_ms(), next;
    int n, refused[2] = {0, 0};
    tg_it_resp_t resp;

    for (n = 0; n < HMAX && (refused[0] < 2 || refused[1] < 2); n++) {
        next = start + (uint64_t)n * HPACE_MS;
        while (tg_it_now_ms() < next) {
            tg_it_sleep_ms(1);
        }
        r[n].host = n % 2;
        r[n].sent_ms = tg_it_now_ms();
        tg_it_exchange(port[r[n].host], raw, &resp);
        r[n].status = resp.status;
        if (resp.status == 429) {
            expect_refusal(&resp, r[n].host ? "b" : "a");
            refused[r[n].host]++;
        } else {
            TG_IT_CHECKF(resp.status == 200, "request %d: status %d %.200s", n,
                         resp.status, resp.body ? resp.body : "");
            refused[r[n].host] = 0;
        }
        tg_it_resp_fini(&resp);
    }
    free(raw);
    return n;
}


/* See test_usage_hosts.h. */
void
tg_it_usage_quota_two_hosts(void)
{
    tg_it_fixture_t h[2];
    hreq_t *r = calloc(HMAX, sizeof(*r));
    char db[512], q[256], *raw;
    const char *out;
    int port[2], n, i, ok = 0, admitted_after = 0, bound_n = 0;
    long long sum = 0, pg_tokens = -1, pg_requests = -1;
    uint64_t t_star = 0, last_ok = 0;
    tg_it_resp_t resp;

    TG_IT_CHECK(r != NULL);
    if (time(NULL) % 86400 > 86400 - 60) {
        tg_it_sleep_ms(61000); /* not across a UTC midnight */
    }
    tg_it_pg_db_create(db, sizeof(db));
    host_init(&h[0], "a", db);
    host_init(&h[1], "b", db);
    tg_it_fixture_start(&h[0]);
    TG_IT_CHECK(tg_it_file_wait(h[0].error_log, "database ready", 30000));
    tg_it_fixture_start(&h[1]);
    TG_IT_CHECK(tg_it_file_wait(h[1].error_log, "database ready", 30000));
    /* The user's quota reaches both hosts' shared memory from the
     * database, and a first round of sums has run. */
    tg_it_sleep_ms(1000);
    port[0] = h[0].port;
    port[1] = h[1].port;

    n = two_host_load(port, r);
    for (i = 0; i < n; i++) {
        if (r[i].status != 200) {
            continue;
        }
        ok++;
        sum += HTOKENS;
        last_ok = r[i].sent_ms;
        if (t_star == 0 && sum >= HQUOTA) {
            t_star = r[i].sent_ms;
        } else if (t_star != 0) {
            admitted_after++;
        }
    }
    TG_IT_CHECKF(t_star != 0,
                 "the load never reached the quota: %d of %d "
                 "requests passed",
                 ok, n);
    /* The bound: what each host admits in one window at the pace of the
     * load (every other request, one each 2 * HPACE_MS), plus the one
     * request in flight when the limit was reached.  Without the sync
     * each host would admit up to the whole quota by itself. */
    bound_n = 2 * (HWINDOW_MS / (2 * HPACE_MS) + 1) + 1;
    tg_it_note("%d requests, %d passed (%lld tokens of %d); %d passed after "
               "the limit was reached, the last %llu ms after it; bound %d "
               "requests (window %d ms)",
               n, ok, sum, HQUOTA, admitted_after,
               (unsigned long long)(last_ok - t_star), bound_n, HWINDOW_MS);
    TG_IT_CHECKF(n < HMAX, "the hosts still admitted after %d requests", n);
    TG_IT_CHECKF(last_ok <= t_star + HWINDOW_MS,
                 "a host admitted %llu ms after the limit was reached, past "
                 "the %d ms window",
                 (unsigned long long)(last_ok - t_star), HWINDOW_MS);
    TG_IT_CHECKF(admitted_after + 1 <= bound_n,
                 "%d admitted past the limit, "
                 "bound %d",
                 admitted_after, bound_n);

    /* PostgreSQL holds what the clients saw: every answer, once, split
     * between the hosts, and the overrun within the bound. */
    snprintf(q, sizeof(q),
             "SELECT coalesce(sum(input_tokens + output_tokens), 0),"
             " coalesce(sum(requests - rejected), 0), count(DISTINCT host)"
             " FROM usage_hourly h JOIN users u USING (user_id)"
             " WHERE u.username = 'erin'");
    for (i = 0; i < 100; i++) {
        out = tg_it_pg_query(db, q);
        TG_IT_CHECK(sscanf(out, "%lld|%lld", &pg_tokens, &pg_requests) == 2);
        if (pg_requests >= ok) {
            break;
        }
        tg_it_sleep_ms(100);
    }
    tg_it_note("usage_hourly: %s", out);
    TG_IT_CHECK_INT(pg_requests, ok);
    TG_IT_CHECK_INT(pg_tokens, sum);
    TG_IT_CHECK(strstr(out, "|2") != NULL);
    TG_IT_CHECKF(pg_tokens - HQUOTA <= (long long)bound_n * HTOKENS,
                 "overrun %lld tokens, bound %d", pg_tokens - HQUOTA,
                 bound_n * HTOKENS);

    /* A sync interval later both hosts still refuse, naming the quota. */
    tg_it_sleep_ms(HSYNC_MS * 2);
    raw = tg_it_request_build("POST", "/v1/messages",
                              "x-api-key: " HKEY "\r\n"
                              "anthropic-version: 2023-06-01\r\n"
                              "content-type: application/json\r\n",
                              HBODY);
    for (i = 0; i < 2; i++) {
        tg_it_exchange(port[i], raw, &resp);
        expect_refusal(&resp, i ? "b" : "a");
        tg_it_resp_fini(&resp);
    }
    free(raw);
    free(r);
    tg_it_fixture_stop(&h[1]);
    tg_it_fixture_stop(&h[0]);
}


/* See test_usage_hosts.h. */
void
tg_it_usage_batches_purged(void)
{
    tg_it_fixture_t f;
    pid_t pids[4];
    char db[512], p[4096];
    const char *out;
    int i;

    tg_it_pg_db_create(db, sizeof(db));
    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "database", "\"%s\"", db);
    tg_it_conf_set(&f.conf, "log.level", "\"info\"");
    tg_it_conf_set(&f.conf, "usage.spool_dir", "\"%s\"",
                   tg_it_path(p, sizeof(p), "spool"));
    tg_it_conf_set(&f.conf, "usage.batch_retention", "%d", 2 * 86400);
    tg_it_fixture_start(&f);
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "database ready", 30000));
    /* 12,000 batch ids from three days ago (more than two purge chunks)
     * and one from a day ago. */
    tg_it_pg_query(
        db, "INSERT INTO usage_batches (batch_id, host, records, rows,"
            " applied_at) SELECT '00000000000000dd-' || i, 'old', 1, 1,"
            " now() - interval '3 days' FROM generate_series(1, 12000) i");
    tg_it_pg_query(db,
                   "INSERT INTO usage_batches (batch_id, host, records, rows,"
                   " applied_at) VALUES ('00000000000000dd-0', 'recent', 1, 1,"
                   " now() - interval '1 day')");
    /* A new admin purges at its first round. */
    tg_it_fixture_settle(&f);
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "admin", pids, 4), 1);
    TG_IT_CHECK(kill(pids[0], SIGKILL) == 0);
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "purged 12000 usage batch ids", 20000));
    for (i = 0; i < 50; i++) {
        out = tg_it_pg_query(db, "SELECT count(*) FILTER (WHERE host = 'old'),"
                                 " count(*) FILTER (WHERE host = 'recent')"
                                 " FROM usage_batches");
        if (strcmp(out, "0|1") == 0) {
            break;
        }
        tg_it_sleep_ms(100);
    }
    TG_IT_CHECK_STR(out, "0|1");
    tg_it_fixture_stop(&f);
}
