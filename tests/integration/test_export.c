/*
 * tests/integration/test_export.c
 *      GET /admin/api/keys/export: 100,000 keys, complete, masked, quoted,
 *      secret-free, streamed with admin's memory flat under a slow reader.
 *
 * NOTES
 *      The keys are inserted by one INSERT ... SELECT from generate_series
 *      straight into the fixture's database, plus a handful of keys with
 *      hostile names.  The memory check reads admin's VmRSS from
 *      /proc/<pid>/status before the export and many times during it,
 *      while the client reads slowly through a small receive buffer: admin
 *      must hold one page at a time, never the whole export.
 */
#include "core/core.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Under AddressSanitizer (make asan) everything runs several times slower
 * and freed memory waits in a quarantine before reuse: the export runs on
 * fewer keys, admin gets a small quarantine, and the memory bound grows
 * by what that quarantine and ASan's allocator caches hold.  The bound
 * still means something: holding the whole export would take more.
 */
#if TG_IT_SANITIZED
#define NKEYS      25000
#define RSS_MAX_KB (32 * 1024)
#else
#define NKEYS      100000
#define RSS_MAX_KB (16 * 1024)
#endif

static char conninfo[4096];
static char token[512];

/* Hostile names and the CSV field each must become. */
static const struct {
    const char *name;
    const char *csv;
} hostile[] = {
    {"a,b", "\"a,b\""},
    {"say \"hi\"", "\"say \"\"hi\"\"\""},
    {"=1+1", "'=1+1"},
    {"=HYPERLINK(\"http://x\"),\"y\"",
     "\"'=HYPERLINK(\"\"http://x\"\"),\"\"y\"\"\""},
    {"+cmd", "'+cmd"},
    {"-2", "'-2"},
    {"@SUM(A1)", "'@SUM(A1)"},
    {"na\xc3\xafve \xe2\x82\xac", "na\xc3\xafve \xe2\x82\xac"},
};


/* Admin's resident memory in KB, field <field> ("VmRSS:", "RssAnon:")
 * of /proc/<pid>/status. */
static long
admin_rss_kb(pid_t pid, const char *field)
{
    char path[64], *text, *p;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    text = tg_it_file_read(path, NULL);
    TG_IT_CHECK(text != NULL);
    p = strstr(text, field);
    if (p != NULL) {
        kb = strtol(p + strlen(field), NULL, 10);
    }
    free(text);
    return kb;
}


/* Keys among 1..NKEYS whose number starts with a 7 (named "key 7..."). */
static long
sevens(void)
{
    long n = 0, g, v;

    for (g = 1; g <= NKEYS; g++) {
        for (v = g; v >= 10; v /= 10) {
        }
        n += v == 7;
    }
    return n;
}


/* Start the fixture with its database; with <bulk>, add 100 users,
 * <NKEYS> keys and the keys with hostile names. */
static void
export_start(tg_it_fixture_t *f, bool bulk)
{
    char sql[16384], out[256];
    size_t i, n;

    tg_it_fixture_init(f);
#if TG_IT_SANITIZED
    {
        const char *o = getenv("ASAN_OPTIONS");
        char opts[512];

        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=4",
                 o != NULL ? o : "", o != NULL && *o != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
#endif
    tg_it_pg_db_create(conninfo, sizeof(conninfo));
    tg_it_conf_set(&f->conf, "database", "\"%s\"", conninfo);
    tg_it_conf_set(&f->conf, "admin.reconcile_interval", "86400");
    tg_it_admin_prepare(f, NULL);
    tg_it_fixture_start(f);
    tg_it_admin_login(f, token, sizeof(token));
    if (!bulk) {
        return;
    }
    /* One statement for the NKEYS keys.  The row triggers would send
     * one notification per user and key and admin would publish them
     * into shared memory, which the export does not read: the load goes
     * with the triggers off and the reconcile far away, so admin's time
     * and memory are the export's alone.  The hostile names go in as
     * dollar-quoted literals (none holds a $). */
    n = (size_t)snprintf(
        sql, sizeof(sql),
        "ALTER TABLE users DISABLE TRIGGER users_notify; "
        "ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify; "
        "INSERT INTO users (username, email, role) "
        "SELECT 'exp' || g, 'person' || g || '@example.com', 'user' "
        "FROM generate_series(1, 100) g; "
        "INSERT INTO api_keys (user_id, name, digest, prefix, last4) "
        "SELECT u.user_id, 'key ' || g, "
        "decode(lpad(to_hex(g), 64, '0'), 'hex'), "
        "'tg-' || lpad(g::text, 8, '0'), lpad((g %% 10000)::text, 4, '0') "
        "FROM generate_series(1, %d) g "
        "JOIN users u ON u.username = 'exp' || (1 + g %% 100); ",
        NKEYS);
    for (i = 0; i < TG_NELEMS(hostile); i++) {
        n += (size_t)snprintf(
            sql + n, sizeof(sql) - n,
            "INSERT INTO api_keys (user_id, name, digest, prefix, last4) "
            "SELECT user_id, $h$%s$h$, sha256('h%zu'::bytea), 'hostile%zu', "
            "'abcd' FROM users WHERE username = 'exp1'; ",
            hostile[i].name, i, i);
        TG_IT_CHECK(n < sizeof(sql));
    }
    n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                          "ALTER TABLE api_keys ENABLE TRIGGER "
                          "api_keys_notify; ALTER TABLE users ENABLE "
                          "TRIGGER users_notify;");
    TG_IT_CHECK(n < sizeof(sql));
    TG_IT_CHECK_INT(tg_it_pg_exec(conninfo, sql, NULL, 0), 0);
    TG_IT_CHECK_INT(tg_it_pg_exec(conninfo, "SELECT count(*) FROM api_keys",
                                  out, sizeof(out)),
                    0);
    tg_it_note("%s keys in the database", out);
}


/* GET <path> with the session token; the whole response into <resp>. */
static void
export_get(tg_it_fixture_t *f, const char *path, const char *tok,
           tg_it_resp_t *resp)
{
    char hdr[700];
    char *raw;
    tg_it_conn_t c;

    snprintf(hdr, sizeof(hdr), "authorization: Bearer %s\r\n", tok);
    raw = tg_it_request_build("GET", path, hdr, NULL);
    tg_it_conn_open(&c, f->admin_port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_read(&c, resp, 120000) == TG_OK);
    tg_it_conn_close(&c);
}


/* The number of the X-Total-Count header of <resp>. */
static long
total_count(const tg_it_resp_t *resp)
{
    char v[64];

    TG_IT_CHECK(tg_it_resp_header(resp, "x-total-count", v, sizeof(v)) != NULL);
    return strtol(v, NULL, 10);
}


/* The CSV line of the key with prefix <prefix>, copied into <out>. */
static void
csv_line(const char *body, const char *prefix, char *out, size_t len)
{
    char needle[64];
    const char *p, *start, *end;

    snprintf(needle, sizeof(needle), ",%s,", prefix);
    p = strstr(body, needle);
    TG_IT_CHECKF(p != NULL, "no CSV line with prefix %s", prefix);
    start = p;
    while (start > body && start[-1] != '\n') {
        start--;
    }
    end = strstr(p, "\r\n");
    TG_IT_CHECK(end != NULL && (size_t)(end - start) < len);
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
}


static void
test_export_csv(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char line[1024], prefix[32];
    long total, rows = 0;
    size_t i;

    export_start(&f, true);
    export_get(&f, "/admin/api/keys/export?format=csv", token, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(resp.chunked && resp.complete);
    total = total_count(&resp);
    TG_IT_CHECK(total >= NKEYS + (long)TG_NELEMS(hostile));
    TG_IT_CHECK(strncmp(resp.body,
                        "key_id,user_id,username,email,name,prefix,"
                        "last4,status,",
                        50) == 0);
    /* Not strstr in a loop: ASan's strstr measures the whole rest of the
     * body on every call, which made this quadratic (100 s for 25,000
     * keys). */
    for (i = 0; i + 1 < resp.body_len; i++) {
        rows += resp.body[i] == '\r' && resp.body[i + 1] == '\n';
    }
    /* Header + one line per key; no name holds CR or LF. */
    TG_IT_CHECK_INT(rows, total + 1);
    TG_IT_CHECK(strstr(resp.body, "person7@example.com") != NULL);
    TG_IT_CHECK(strstr(resp.body, "digest") == NULL);
    for (i = 0; i < TG_NELEMS(hostile); i++) {
        snprintf(prefix, sizeof(prefix), "hostile%zu", i);
        csv_line(resp.body, prefix, line, sizeof(line));
        TG_IT_CHECKF(strstr(line, hostile[i].csv) != NULL, "line %s lacks %s",
                     line, hostile[i].csv);
    }
    tg_it_resp_fini(&resp);

    /* Masked (on the keys named "key 7...", 11,111 of 100,000): no
     * address whole, every one as p***@domain. */
    export_get(&f, "/admin/api/keys/export?format=csv&mask=email&q=key%207",
               token, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(resp.complete);
    TG_IT_CHECK_INT(total_count(&resp), sevens());
    TG_IT_CHECK(strstr(resp.body, "@example.com") != NULL);
    TG_IT_CHECK(strstr(resp.body, "person") == NULL);
    TG_IT_CHECK(strstr(resp.body, ",p***@example.com,") != NULL);
    tg_it_resp_fini(&resp);

    /* Filters as the key list: one user's keys only. */
    export_get(&f, "/admin/api/keys/export?format=csv&q=hostile", token, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK_INT(total_count(&resp), TG_NELEMS(hostile));
    tg_it_resp_fini(&resp);

    export_get(&f, "/admin/api/keys/export?format=xml", token, &resp);
    TG_IT_CHECK_INT(resp.status, 400);
    tg_it_resp_fini(&resp);
    export_get(&f, "/admin/api/keys/export", "not-a-token", &resp);
    TG_IT_CHECK_INT(resp.status, 401);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* Read the export slowly through a small buffer, sampling admin's
 * memory; the largest growths over <base> (VmRSS, RssAnon) into <peak>. */
static void
slow_read(tg_it_fixture_t *f, pid_t admin, const long base[2], long peak[2],
          tg_it_resp_t *resp)
{
    static const char *const fields[2] = {"VmRSS:", "RssAnon:"};
    char hdr[700], *raw;
    tg_it_conn_t c;
    int samples = 0, k;

    snprintf(hdr, sizeof(hdr), "authorization: Bearer %s\r\n", token);
    raw = tg_it_request_build("GET", "/admin/api/keys/export?format=json", hdr,
                              NULL);
    tg_it_conn_open_small(&c, f->admin_port, 16384);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    peak[0] = peak[1] = 0;
    /* About 120 bytes a key (12 MB of 100,000 keys) at a slow pace, then
     * the rest at full speed. */
    while (c.len < (size_t)NKEYS * 120) {
        if (tg_it_conn_wait(&c, c.len + (size_t)NKEYS * 120 / 48, 20000) !=
            TG_OK) {
            break;
        }
        for (k = 0; k < 2; k++) {
            long kb = admin_rss_kb(admin, fields[k]) - base[k];

            peak[k] = kb > peak[k] ? kb : peak[k];
        }
        samples++;
        tg_it_sleep_ms(20);
    }
    TG_IT_CHECK(samples > 10);
    TG_IT_CHECK(tg_it_conn_read(&c, resp, 120000) == TG_OK);
    tg_it_conn_close(&c);
    tg_it_note("%d memory samples", samples);
}


static void
test_export_json_flat_memory(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    pid_t admin[2];
    json_t *arr, *item;
    json_error_t jerr;
    long base[2], peak[2], total;
    size_t i, named = 0;
    json_int_t last = 0;

    export_start(&f, true);
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "admin", admin, 2), 1);
    /* A small export first, so the baseline includes what any export
     * allocates once. */
    export_get(&f, "/admin/api/keys/export?format=json&q=hostile", token,
               &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    base[0] = admin_rss_kb(admin[0], "VmRSS:");
    base[1] = admin_rss_kb(admin[0], "RssAnon:");
    slow_read(&f, admin[0], base, peak, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(resp.complete);
    total = total_count(&resp);
    tg_it_note("JSON export: %zu bytes, %ld keys; admin VmRSS %ld KB "
               "before, +%ld KB at most during; RssAnon %ld KB, +%ld KB",
               resp.body_len, total, base[0], peak[0], base[1], peak[1]);
    /* The export is some 400 bytes a key (40 MB of 100,000); admin holds
     * one page of 1,000 keys. */
    TG_IT_CHECK(resp.body_len > (size_t)NKEYS * 200);
    TG_IT_CHECKF(peak[0] < RSS_MAX_KB && peak[1] < RSS_MAX_KB,
                 "admin grew by %ld KB (VmRSS), %ld KB (RssAnon)", peak[0],
                 peak[1]);
    arr = json_loadb(resp.body, resp.body_len, 0, &jerr);
    TG_IT_CHECKF(json_is_array(arr), "not one JSON array: %s", jerr.text);
    TG_IT_CHECK_INT(json_array_size(arr), total);
    json_array_foreach(arr, i, item)
    {
        json_int_t id = json_integer_value(json_object_get(item, "key_id"));

        TG_IT_CHECK(id > last);
        last = id;
        TG_IT_CHECK(json_object_get(item, "digest") == NULL);
        TG_IT_CHECK(json_string_length(json_object_get(item, "last4")) == 4);
        if (strcmp(json_string_value(json_object_get(item, "prefix")),
                   "hostile1") == 0) {
            TG_IT_CHECK_STR(json_string_value(json_object_get(item, "name")),
                            hostile[1].name);
            named++;
        }
    }
    TG_IT_CHECK_INT(named, 1);
    json_decref(arr);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


static void
test_export_user_sees_own(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j = NULL, *arr;
    char utoken[512];
    int st;

    export_start(&f, false);
    st = tg_it_admin_call(f.admin_port, token, "POST", "/admin/api/users",
                          "{\"username\":\"ursula\",\"email\":"
                          "\"ursula@example.com\",\"password\":"
                          "\"ursula-password-1\",\"role\":\"user\"}",
                          NULL);
    TG_IT_CHECK_INT(st, 201);
    TG_IT_CHECK_INT(
        tg_it_pg_exec(conninfo,
                      "INSERT INTO api_keys (user_id, name, digest, prefix, "
                      "last4) SELECT user_id, 'mine ' || g, "
                      "sha256(('u' || g)::bytea), 'ursula' || g, 'wxyz' "
                      "FROM users, generate_series(1, 3) g "
                      "WHERE username = 'ursula'",
                      NULL, 0),
        0);
    st = tg_it_admin_call(f.admin_port, NULL, "POST", "/admin/api/auth/login",
                          "{\"username\":\"ursula\",\"password\":"
                          "\"ursula-password-1\"}",
                          &j);
    TG_IT_CHECK_INT(st, 200);
    snprintf(utoken, sizeof(utoken), "%s",
             json_string_value(json_object_get(j, "token")));
    json_decref(j);
    export_get(&f, "/admin/api/keys/export?format=json", utoken, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK_INT(total_count(&resp), 3);
    arr = json_loadb(resp.body, resp.body_len, 0, NULL);
    TG_IT_CHECK_INT(json_array_size(arr), 3);
    TG_IT_CHECK_STR(
        json_string_value(json_object_get(json_array_get(arr, 0), "username")),
        "ursula");
    json_decref(arr);
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_export_tests[] = {
    {"key export as CSV: 100,000 keys (25,000 under ASan) complete, RFC 4180 "
     "quoting, formula "
     "guard, e-mail masking, filters",
     test_export_csv},
    {"key export as JSON: one array of 100,000 keys (25,000 under ASan), "
     "admin RSS flat under a "
     "slow reader",
     test_export_json_flat_memory},
    {"key export by a user holds only their own keys",
     test_export_user_sees_own},
    {NULL, NULL},
};
