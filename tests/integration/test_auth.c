/*
 * tests/integration/test_auth.c
 *      Keys, users and limits from shared memory, and the usage records:
 *      401 and 403 refusals in both API shapes, requests per minute,
 *      concurrency, tokens per minute, user quotas, one usage record per
 *      request (a stream that ends during a graceful stop included),
 *      leases of a killed worker, and the spool behind a full usage ring.
 *
 * NOTES
 *      Every fixture here writes its usage log ("usage.log") and its spool
 *      ("spool/") into the test directory.  Admin writes a record about
 *      100 ms after the request ended, and a worker gives back its
 *      concurrency slot and charges its tokens before it publishes that
 *      record, so a test that depends on a finished request's charge waits
 *      for the request's record (by x-tollgate-request-id) instead of
 *      sleeping.
 *
 *      Token counts come from docs/mock-upstream.md: the default bodies
 *      hold messages [{"content":"Hello","role":"user"}] once serialised,
 *      35 bytes, so I = 10; output is 2 per chunk, 5 chunks by default, so
 *      a default answer costs 20 tokens.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define API_MSG  0 /* POST /v1/messages, Anthropic shapes */
#define API_CHAT 1 /* POST /v1/chat/completions, OpenAI shapes */

/* Tokens of one default answer (I = 10, O = 2 * 5). */
#define DEFAULT_TOKENS 20

static char usage_log[4096];


/* ------------------------------------------------------------ helpers */

/* The common fixture, with the usage log and the spool in the test
 * directory and <users> (libconfig text, NULL for none) as "users". */
static void
auth_fixture_init(tg_it_fixture_t *f, const char *users)
{
    char spool[4096];

    tg_it_fixture_init(f);
    tg_it_path(usage_log, sizeof(usage_log), "usage.log");
    tg_it_path(spool, sizeof(spool), "spool");
    tg_it_conf_set(&f->conf, "usage.log", "\"%s\"", usage_log);
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"", spool);
    if (users != NULL) {
        tg_it_conf_set(&f->conf, "users", "%s", users);
    }
}


/* A request body for <api> naming <model> (NULL: the default one). */
static char *
body_for(int api, const char *model, bool stream)
{
    char *s;

    if (api == API_MSG) {
        TG_IT_CHECK(asprintf(&s,
                             "{\"model\":\"%s\",\"max_tokens\":64,%s"
                             "\"messages\":[{\"role\":\"user\","
                             "\"content\":\"Hello\"}]}",
                             model ? model : "claude-sonnet-4-5",
                             stream ? "\"stream\":true," : "") > 0);
    } else {
        TG_IT_CHECK(asprintf(&s,
                             "{\"model\":\"%s\",%s"
                             "\"messages\":[{\"role\":\"user\","
                             "\"content\":\"Hello\"}]}",
                             model ? model : "gpt-4o",
                             stream ? "\"stream\":true,\"stream_options\":"
                                      "{\"include_usage\":true},"
                                    : "") > 0);
    }
    return s;
}


/* The raw request of <api> with client key <key> (NULL: none), the extra
 * header lines <extra> (may be NULL) and <body> (NULL: the default). */
static char *
request_for(int api, const char *key, const char *extra, const char *body)
{
    char hdr[2048], *own = NULL, *raw;

    if (api == API_MSG) {
        snprintf(hdr, sizeof(hdr),
                 "%s%s%santhropic-version: 2023-06-01\r\n"
                 "content-type: application/json\r\n%s",
                 key ? "x-api-key: " : "", key ? key : "", key ? "\r\n" : "",
                 extra ? extra : "");
    } else {
        snprintf(hdr, sizeof(hdr), "%s%s%scontent-type: application/json\r\n%s",
                 key ? "authorization: Bearer " : "", key ? key : "",
                 key ? "\r\n" : "", extra ? extra : "");
    }
    if (body == NULL) {
        body = own = body_for(api, NULL, false);
    }
    raw = tg_it_request_build(
        "POST", api == API_MSG ? "/v1/messages" : "/v1/chat/completions", hdr,
        body);
    free(own);
    return raw;
}


/* Send one request (see request_for) and read its response. */
static void
call(int port, int api, const char *key, const char *extra, const char *body,
     tg_it_resp_t *resp)
{
    char *raw = request_for(api, key, extra, body);

    tg_it_exchange(port, raw, resp);
    free(raw);
}


/* call() with a body for <model>. */
static void
call_model(int port, int api, const char *key, const char *model,
           tg_it_resp_t *resp)
{
    char *body = body_for(api, model, false);

    call(port, api, key, NULL, body, resp);
    free(body);
}


/* Check that <resp> is a complete 200. */
static void
expect_200(const tg_it_resp_t *resp, const char *what)
{
    TG_IT_CHECKF(resp->status == 200 && resp->complete,
                 "%s: status %d (%s), body: %.300s", what, resp->status,
                 resp->error, resp->body ? resp->body : "");
}


/*
 * Check that <resp> is a local error of <status> in <api>'s shape: the
 * Anthropic {"type":"error","error":{"type":<atype>,...}} or the OpenAI
 * {"error":{"type":<otype>,"code":<ocode>,...}} (<ocode> NULL: not
 * checked), with x-should-retry <retry>.
 */
static void
expect_error(const tg_it_resp_t *resp, int api, int status, const char *atype,
             const char *otype, const char *ocode, const char *retry,
             const char *what)
{
    char v[64];
    json_t *j;

    TG_IT_CHECKF(resp->status == status, "%s: status %d, expected %d: %.300s",
                 what, resp->status, status, resp->body ? resp->body : "");
    TG_IT_CHECKF(resp->complete, "%s: body incomplete: %s", what, resp->error);
    TG_IT_CHECK_STR(tg_it_resp_header(resp, "content-type", v, sizeof(v)),
                    "application/json");
    TG_IT_CHECK_STR(tg_it_resp_header(resp, "x-should-retry", v, sizeof(v)),
                    retry);
    j = tg_it_json(resp);
    TG_IT_CHECKF(tg_it_json_str(j, "error.message") != NULL,
                 "%s: no error.message in %s", what, resp->body);
    if (api == API_MSG) {
        TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), atype);
    } else {
        TG_IT_CHECK(tg_it_json_get(j, "type") == NULL);
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), otype);
        TG_IT_CHECK(json_is_null(tg_it_json_get(j, "error.param")));
        if (ocode != NULL) {
            TG_IT_CHECK_STR(tg_it_json_str(j, "error.code"), ocode);
        }
    }
    json_decref(j);
}


/* Check that <resp> is tollgate's own 429 in <api>'s shape; returns its
 * retry-after in seconds. */
static long
expect_429(const tg_it_resp_t *resp, int api, const char *what)
{
    char v[64], *end;
    long secs;

    expect_error(resp, api, 429, "rate_limit_error", "rate_limit_error",
                 "rate_limit_exceeded", "true", what);
    TG_IT_CHECKF(tg_it_resp_header(resp, "retry-after", v, sizeof(v)) != NULL,
                 "%s: 429 without retry-after", what);
    secs = strtol(v, &end, 10);
    TG_IT_CHECKF(end != v && *end == '\0', "%s: retry-after \"%s\"", what, v);
    return secs;
}


/* The x-tollgate-request-id of <resp>, into <buf>. */
static const char *
request_id(const tg_it_resp_t *resp, char *buf, size_t len)
{
    TG_IT_CHECKF(tg_it_resp_header(resp, "x-tollgate-request-id", buf, len) !=
                     NULL,
                 "no x-tollgate-request-id");
    return buf;
}


/* Wait until the usage log holds the record of request <id>. */
static void
usage_wait_id(const char *id)
{
    char needle[64];
    const char *const needles[] = {needle, NULL};

    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    TG_IT_CHECKF(tg_it_file_wait_count(usage_log, needles, 1, 3000) == 1,
                 "no usage record of request %s within 3 s", id);
}


/* Every line of the usage log, parsed; fails on a line that is not a
 * JSON object.  The caller decrefs the array. */
static json_t *
usage_read(void)
{
    char *text = tg_it_file_read(usage_log, NULL), *line, *nl;
    json_t *all = json_array(), *j;
    json_error_t err;
    int n = 0;

    if (text == NULL) {
        return all;
    }
    for (line = text; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        TG_IT_CHECKF(nl != NULL, "usage log line %d is not terminated: %s",
                     n + 1, line);
        *nl = '\0';
        j = json_loads(line, 0, &err);
        TG_IT_CHECKF(json_is_object(j), "usage log line %d is not JSON: %s",
                     n + 1, line);
        json_array_append_new(all, j);
        n++;
    }
    free(text);
    return all;
}


/* Integer at <path> in <j>; -1 when absent. */
static long long
jint(json_t *j, const char *path)
{
    json_t *v = tg_it_json_get(j, path);

    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}


/* ------------------------------------------------------------- 401, 403 */

#define ALICE_OK       "tg-it-alice-valid-0123456789"
#define ALICE_DISABLED "tg-it-alice-disabled-0123456"
#define ALICE_EXPIRED  "tg-it-alice-expired-01234567"
#define UNKNOWN_KEY    "tg-it-nobody-knows-this-key-0"

static void
test_bad_keys_401(void)
{
    static const struct {
        const char *key;
        const char *what;
    } bad[] = {
        {UNKNOWN_KEY, "unknown key"},
        {ALICE_DISABLED, "disabled key"},
        {ALICE_EXPIRED, "expired key"},
        {NULL, "no key"},
    };
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char what[128];
    size_t i;
    int api;

    auth_fixture_init(&f, "( { name = \"alice\"; keys = ( \"" ALICE_OK
                          "\", { key = \"" ALICE_DISABLED
                          "\"; disabled = true; }, { key = \"" ALICE_EXPIRED
                          "\"; expires = 1000000000; } ); } )");
    tg_it_fixture_start(&f);
    for (api = API_MSG; api <= API_CHAT; api++) {
        for (i = 0; i < TG_NELEMS(bad); i++) {
            snprintf(what, sizeof(what), "%s on %s", bad[i].what,
                     api == API_MSG ? "/v1/messages" : "/v1/chat/completions");
            tg_it_note("%s", what);
            call(f.port, api, bad[i].key, NULL, NULL, &resp);
            expect_error(&resp, api, 401, "authentication_error",
                         "invalid_request_error", "invalid_api_key", "false",
                         what);
            tg_it_resp_fini(&resp);
        }
        /* The same user's valid key passes, so the refusals above were
         * about the keys, not the user. */
        call(f.port, api, ALICE_OK, NULL, NULL, &resp);
        expect_200(&resp, "alice's valid key");
        tg_it_resp_fini(&resp);
    }
    tg_it_fixture_stop(&f);
}


#define ALICE_MODELS "tg-it-alice-models-0123456789"
#define BOB_KEY      "tg-it-bob-disabled-user-0123456"

static void
test_disabled_user_and_models_403(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    json_t *j;
    int api;

    auth_fixture_init(
        &f,
        "( { name = \"alice\"; keys = ( { key = \"" ALICE_MODELS
        "\"; models = ( \"claude-haiku-*\", \"gpt-4o-mini\" ); } ); },"
        " { name = \"bob\"; disabled = true; keys = ( \"" BOB_KEY "\" ); } )");
    tg_it_fixture_start(&f);

    /* A disabled user: every key of it gets 403 on both routes. */
    for (api = API_MSG; api <= API_CHAT; api++) {
        call(f.port, api, BOB_KEY, NULL, NULL, &resp);
        expect_error(&resp, api, 403, "permission_error", "permission_denied",
                     NULL, "false", "disabled user");
        tg_it_resp_fini(&resp);
    }

    /* Models outside the allow-list. */
    call_model(f.port, API_MSG, ALICE_MODELS, "claude-sonnet-4-5", &resp);
    expect_error(&resp, API_MSG, 403, "permission_error", "permission_denied",
                 NULL, "false", "claude-sonnet-4-5 not in the allow-list");
    j = tg_it_json(&resp);
    TG_IT_CHECK(strstr(tg_it_json_str(j, "error.message"),
                       "claude-sonnet-4-5") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);
    call_model(f.port, API_MSG, ALICE_MODELS, "claude-haiku", &resp);
    expect_error(&resp, API_MSG, 403, "permission_error", "permission_denied",
                 NULL, "false", "claude-haiku does not match claude-haiku-*");
    tg_it_resp_fini(&resp);
    call_model(f.port, API_CHAT, ALICE_MODELS, "gpt-4o", &resp);
    expect_error(&resp, API_CHAT, 403, "permission_error", "permission_denied",
                 NULL, "false", "gpt-4o not in the allow-list");
    tg_it_resp_fini(&resp);

    /* Models inside it: a pattern match and an exact one. */
    call_model(f.port, API_MSG, ALICE_MODELS, "claude-haiku-4-5", &resp);
    expect_200(&resp, "claude-haiku-4-5 matches claude-haiku-*");
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "model"), "claude-haiku-4-5");
    json_decref(j);
    tg_it_resp_fini(&resp);
    call_model(f.port, API_CHAT, ALICE_MODELS, "gpt-4o-mini", &resp);
    expect_200(&resp, "gpt-4o-mini is in the allow-list");
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* ------------------------------------------------------------------ 429 */

#define ALICE_RPM   "tg-it-alice-rpm-limited-012345"
#define ALICE_OTHER "tg-it-alice-other-key-0123456"

static void
test_rpm_and_burst(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    long secs;
    int i;

    /* rpm 6: one request every 10 s, and a burst of 3 at once. */
    auth_fixture_init(&f,
                      "( { name = \"alice\"; keys = ( { key = \"" ALICE_RPM
                      "\"; rpm = 6; burst = 3; }, \"" ALICE_OTHER "\" ); } )");
    tg_it_fixture_start(&f);
    for (i = 0; i < 3; i++) {
        call(f.port, i == 1 ? API_CHAT : API_MSG, ALICE_RPM, NULL, NULL, &resp);
        TG_IT_CHECKF(resp.status == 200,
                     "request %d of a burst of 3: status %d: %.300s", i,
                     resp.status, resp.body);
        tg_it_resp_fini(&resp);
    }
    for (i = 0; i < 4; i++) {
        int api = i % 2 ? API_CHAT : API_MSG;

        call(f.port, api, ALICE_RPM, NULL, NULL, &resp);
        secs = expect_429(&resp, api, "past rpm and burst");
        tg_it_note("429 %d: retry-after %ld", i, secs);
        /* The burst took three intervals of 10 s at once: the next
         * admission is one interval away. */
        TG_IT_CHECKF(secs >= 9 && secs <= 10, "retry-after %ld", secs);
        tg_it_resp_fini(&resp);
    }
    /* Another key of the same user has its own rate. */
    for (i = 0; i < 4; i++) {
        call(f.port, i % 2 ? API_CHAT : API_MSG, ALICE_OTHER, NULL, NULL,
             &resp);
        expect_200(&resp, "the user's other key");
        tg_it_resp_fini(&resp);
    }
    tg_it_fixture_stop(&f);
}


#define ALICE_CONC "tg-it-alice-concurrency-1-0123"

static void
test_concurrency(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp, stream;
    tg_it_conn_t c;
    char id[64], *raw, *body;
    long secs;
    int api;

    auth_fixture_init(&f, "( { name = \"alice\"; keys = ( { key = \"" ALICE_CONC
                          "\"; concurrency = 1; } ); } )");
    tg_it_fixture_start(&f);

    /* A stream of 20 deltas 100 ms apart holds the only slot for 2 s. */
    body = body_for(API_MSG, NULL, true);
    raw = request_for(API_MSG, ALICE_CONC,
                      "x-mock-chunks: 20\r\nx-mock-delay-ms: 100\r\n", body);
    free(body);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECKF(tg_it_conn_wait(&c, 200, 5000) == TG_OK,
                 "the slow stream did not start");
    for (api = API_MSG; api <= API_CHAT; api++) {
        call(f.port, api, ALICE_CONC, NULL, NULL, &resp);
        secs = expect_429(&resp, api, "second request while a stream is open");
        TG_IT_CHECK(secs >= 1);
        tg_it_resp_fini(&resp);
    }
    TG_IT_CHECK(tg_it_conn_read(&c, &stream, 10000) == TG_OK);
    TG_IT_CHECKF(stream.status == 200 && stream.complete,
                 "the stream: status %d %s", stream.status, stream.error);
    request_id(&stream, id, sizeof(id));
    tg_it_resp_fini(&stream);
    tg_it_conn_close(&c);
    /* Its record is published after its slot was given back (a worker
     * gives it back just after its last send, so a client can see the end
     * of a response a moment before that). */
    usage_wait_id(id);
    for (api = API_MSG; api <= API_CHAT; api++) {
        call(f.port, api, ALICE_CONC, NULL, NULL, &resp);
        expect_200(&resp, "once the stream has finished");
        usage_wait_id(request_id(&resp, id, sizeof(id)));
        tg_it_resp_fini(&resp);
    }
    tg_it_fixture_stop(&f);
}


#define ALICE_TPM "tg-it-alice-tpm-10-0123456789"

static void
test_tpm(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char id[64];
    uint64_t in_minute, now;
    long secs, want;
    json_t *j;
    int api;

    auth_fixture_init(&f, "( { name = \"alice\"; keys = ( { key = \"" ALICE_TPM
                          "\"; tpm = 10; } ); } )");
    tg_it_fixture_start(&f);
    /* The window is the minute of CLOCK_MONOTONIC, the clock of
     * tg_it_now_ms: keep the whole test inside one of them. */
    in_minute = tg_it_now_ms() % 60000;
    if (in_minute > 55000) {
        tg_it_note("waiting %llu ms for the next minute",
                   (unsigned long long)(60100 - in_minute));
        tg_it_sleep_ms((unsigned)(60100 - in_minute));
    }
    /* The window is empty, so the first request passes whatever it will
     * cost: 20 tokens, twice the limit. */
    call(f.port, API_MSG, ALICE_TPM, NULL, NULL, &resp);
    expect_200(&resp, "first request of the minute");
    j = tg_it_json(&resp);
    TG_IT_CHECK_INT(jint(j, "usage.input_tokens") +
                        jint(j, "usage.output_tokens"),
                    DEFAULT_TOKENS);
    json_decref(j);
    usage_wait_id(request_id(&resp, id, sizeof(id)));
    tg_it_resp_fini(&resp);

    for (api = API_MSG; api <= API_CHAT; api++) {
        now = tg_it_now_ms();
        want = (long)((60000 - now % 60000 + 999) / 1000);
        call(f.port, api, ALICE_TPM, NULL, NULL, &resp);
        secs = expect_429(&resp, api, "past tpm");
        tg_it_note("retry-after %ld, %ld s to the next minute", secs, want);
        TG_IT_CHECKF(secs >= want - 1 && secs <= want,
                     "retry-after %ld, but the next minute starts in %ld s",
                     secs, want);
        tg_it_resp_fini(&resp);
    }
    tg_it_fixture_stop(&f);
}


#define QUOTA_A "tg-it-quota-user-key-a-012345"
#define QUOTA_B "tg-it-quota-user-key-b-012345"
#define QUOTA_X "tg-it-other-user-key-0123456"

static void
test_daily_quota(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char id[64];
    long secs, want;
    int api;

    /* 30 tokens a day: two default answers (40) use it up. */
    auth_fixture_init(&f,
                      "( { name = \"carol\"; quota_tokens = 30; "
                      "quota_period = \"day\"; keys = ( \"" QUOTA_A
                      "\", \"" QUOTA_B "\" ); },"
                      " { name = \"dave\"; keys = ( \"" QUOTA_X "\" ); } )");
    tg_it_fixture_start(&f);
    if (time(NULL) % 86400 > 86400 - 5) {
        tg_it_sleep_ms(6000); /* not across a UTC midnight */
    }
    call(f.port, API_MSG, QUOTA_A, NULL, NULL, &resp);
    expect_200(&resp, "first request (20 of 30 tokens)");
    usage_wait_id(request_id(&resp, id, sizeof(id)));
    tg_it_resp_fini(&resp);
    call(f.port, API_CHAT, QUOTA_B, NULL, NULL, &resp);
    expect_200(&resp, "second request, other key (40 of 30 tokens)");
    usage_wait_id(request_id(&resp, id, sizeof(id)));
    tg_it_resp_fini(&resp);

    /* Used up: both keys of the user are refused until UTC midnight. */
    for (api = API_MSG; api <= API_CHAT; api++) {
        want = 86400 - (long)(time(NULL) % 86400);
        call(f.port, api, api == API_MSG ? QUOTA_B : QUOTA_A, NULL, NULL,
             &resp);
        secs = expect_429(&resp, api, "quota used");
        tg_it_note("retry-after %ld, %ld s to UTC midnight", secs, want);
        TG_IT_CHECKF(secs >= want - 2 && secs <= want + 1,
                     "retry-after %ld, but the day ends in %ld s", secs, want);
        tg_it_resp_fini(&resp);
    }
    /* Another user is not affected. */
    call(f.port, API_MSG, QUOTA_X, NULL, NULL, &resp);
    expect_200(&resp, "another user");
    tg_it_resp_fini(&resp);
    tg_it_fixture_stop(&f);
}


/* -------------------------------------------------------- usage records */

#define LIMITED_KEY "tg-it-limited-rpm-1-012345678"

/* What one request must leave in the usage log. */
typedef struct {
    const char *what;
    int api;
    bool stream;
    int status;
    const char *outcome;
    int user;       /* user id in the record */
    int key;        /* key id in the record */
    int out_tokens; /* expected tokens.output; -1: not checked */
    bool ledger;    /* its tokens must equal the mock ledger's */
} expect_t;


/* Add an expected record: user and key ids are equal in this test's
 * configuration (0 without a key, 1 for the default user's key, 2 for
 * the one user's). */
static void
expect_add(expect_t *ex, size_t *n, const char *what, int api, bool stream,
           int status, const char *outcome, int id, int out_tokens, bool ledger)
{
    expect_t *e;

    TG_IT_CHECK(*n < 32);
    e = &ex[(*n)++];
    e->what = what;
    e->api = api;
    e->stream = stream;
    e->status = status;
    e->outcome = outcome;
    e->user = e->key = id;
    e->out_tokens = out_tokens;
    e->ledger = ledger;
}


/* Whether usage record <r> fits <e>; <outcome> false skips the outcome. */
static bool
usage_fits(json_t *r, const expect_t *e, bool outcome)
{
    return jint(r, "status") == e->status &&
           (!outcome ||
            strcmp(tg_it_json_str(r, "outcome"), e->outcome) == 0) &&
           strcmp(tg_it_json_str(r, "api"),
                  e->api == API_MSG ? "anthropic" : "openai") == 0 &&
           json_is_true(tg_it_json_get(r, "stream")) == e->stream &&
           jint(r, "user") == e->user && jint(r, "key") == e->key &&
           (e->out_tokens < 0 || jint(r, "tokens.output") == e->out_tokens);
}


/*
 * Find the unmatched usage record that fits <e> and check its tokens
 * against the mock ledger line of the same path and output count.
 * Returns the record's index, or -1 (noted, with the outcome of a record
 * that fits but for it) when there is none.
 */
static long
usage_match(json_t *recs, bool *taken, expect_t *e, json_t *ledger)
{
    const char *path =
        e->api == API_MSG ? "/v1/messages" : "/v1/chat/completions";
    size_t i, k;
    json_t *r = NULL, *l = NULL;

    for (i = 0; i < json_array_size(recs); i++) {
        if (!taken[i] && usage_fits(json_array_get(recs, i), e, true)) {
            break;
        }
    }
    if (i == json_array_size(recs)) {
        for (i = 0; i < json_array_size(recs); i++) {
            r = json_array_get(recs, i);
            if (!taken[i] && usage_fits(r, e, false)) {
                break;
            }
        }
        tg_it_note("MISMATCH %s (%s, stream %d, status %d, user %d, key %d): "
                   "expected outcome \"%s\", %s%s%s",
                   e->what, path, e->stream, e->status, e->user, e->key,
                   e->outcome,
                   i < json_array_size(recs) ? "the record says \"" : "",
                   i < json_array_size(recs) ? tg_it_json_str(r, "outcome")
                                             : "no record fits",
                   i < json_array_size(recs) ? "\"" : "");
        return -1;
    }
    r = json_array_get(recs, i);
    taken[i] = true;
    if (!e->ledger) {
        return (long)i;
    }
    for (k = 0; k < json_array_size(ledger); k++) {
        l = json_array_get(ledger, k);
        if (strcmp(tg_it_json_str(l, "path"), path) == 0 &&
            jint(l, "status") == 200 &&
            json_is_true(tg_it_json_get(l, "completed")) &&
            jint(l, "output_tokens") == e->out_tokens) {
            break;
        }
    }
    TG_IT_CHECKF(k < json_array_size(ledger), "no ledger line for %s", e->what);
    l = json_array_get(ledger, k);
    tg_it_note("%s: ledger in %lld out %lld cache read %lld create %lld; "
               "record in %lld out %lld read %lld 5m %lld 1h %lld",
               e->what, jint(l, "input_tokens"), jint(l, "output_tokens"),
               jint(l, "cache_read_input_tokens"),
               jint(l, "cache_creation_input_tokens"), jint(r, "tokens.input"),
               jint(r, "tokens.output"), jint(r, "tokens.cache_read"),
               jint(r, "tokens.cache_write_5m"),
               jint(r, "tokens.cache_write_1h"));
    if (e->api == API_MSG) {
        TG_IT_CHECK_INT(jint(r, "tokens.input"), jint(l, "input_tokens"));
        TG_IT_CHECK_INT(jint(r, "tokens.cache_write_5m"),
                        jint(l, "cache_creation_input_tokens"));
    } else {
        /* prompt_tokens include the cached ones. */
        TG_IT_CHECK_INT(jint(r, "tokens.input"),
                        jint(l, "input_tokens") -
                            jint(l, "cache_read_input_tokens"));
        TG_IT_CHECK_INT(jint(r, "tokens.cache_write_5m"), 0);
    }
    TG_IT_CHECK_INT(jint(r, "tokens.output"), jint(l, "output_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.cache_read"),
                    jint(l, "cache_read_input_tokens"));
    TG_IT_CHECK_INT(jint(r, "tokens.cache_write_1h"), 0);
    TG_IT_CHECK_INT(jint(r, "tokens.reasoning"), 0);
    return (long)i;
}


/* The mock ledger, parsed like the usage log. */
static json_t *
ledger_read(const char *path)
{
    char *text = tg_it_file_read(path, NULL), *line, *nl;
    json_t *all = json_array(), *j;

    TG_IT_CHECKF(text != NULL, "no ledger at %s", path);
    for (line = text; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        TG_IT_CHECK(nl != NULL);
        *nl = '\0';
        j = json_loads(line, 0, NULL);
        TG_IT_CHECKF(json_is_object(j), "ledger line is not JSON: %s", line);
        json_array_append_new(all, j);
    }
    free(text);
    return all;
}


static void
test_one_record_per_request(void)
{
    /* Cached prompts: the mock reports cache tokens when the body holds
     * "cache_control" anywhere. */
    static const char msg_cache[] =
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"system\":[{"
        "\"type\":\"text\",\"text\":\"You are terse.\",\"cache_control\":{"
        "\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\","
        "\"content\":\"Tell me about the weather in Lisbon in spring, "
        "briefly.\"}]}";
    static const char chat_cache[] =
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{"
        "\"include_usage\":true},\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Tell me about the "
        "weather in Lisbon in spring, briefly.\",\"cache_control\":{"
        "\"type\":\"ephemeral\"}}]}]}";
    expect_t ex[32];
    size_t nex = 0, i;
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    char extra[256], *body, *raw, **ids;
    const char *const any[] = {"\"path\"", NULL};
    const char *const gone[] = {"\"fault\":\"none\"", "\"completed\":false",
                                NULL};
    json_t *recs, *ledger;
    bool *taken;
    int chunks, api, proxied = 0, n, missed = 0;

    auth_fixture_init(&f,
                      "( { name = \"limited\"; keys = ( { key = \"" LIMITED_KEY
                      "\"; rpm = 1; burst = 1; } ); } )");
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "1");
    /* The client that leaves below cuts its upstream stream at once
     * (draining it is tested in test_quota.c). */
    tg_it_conf_set(&f.conf, "usage.on_client_disconnect", "\"cancel\"");
    tg_it_fixture_start(&f);

    /* The fixture's own GET /healthz: a record without key or tokens. */
    expect_add(ex, &nex, "GET /healthz", API_MSG, false, 200, "ok", 0, 0,
               false);

    /* Two of each kind, every one with its own chunk count, so its output
     * tokens (2 per chunk) tell its record and its ledger line apart. */
    for (chunks = 3; chunks <= 10; chunks++) {
        bool stream = (chunks - 3) / 2 % 2 == 1;

        api = chunks <= 6 ? API_MSG : API_CHAT;
        snprintf(extra, sizeof(extra), "x-mock-chunks: %d\r\n", chunks);
        body = body_for(api, NULL, stream);
        call(f.port, api, TG_IT_KEY, extra, body, &resp);
        free(body);
        expect_200(&resp, "proxied request");
        tg_it_resp_fini(&resp);
        expect_add(ex, &nex, "proxied request", api, stream, 200, "ok", 1,
                   2 * chunks, true);
        proxied++;
    }
    call(f.port, API_MSG, TG_IT_KEY, "x-mock-chunks: 11\r\n", msg_cache, &resp);
    expect_200(&resp, "cached message");
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "cached message", API_MSG, false, 200, "ok", 1, 22,
               true);
    call(f.port, API_CHAT, TG_IT_KEY, "x-mock-chunks: 12\r\n", chat_cache,
         &resp);
    expect_200(&resp, "cached chat stream");
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "cached chat stream", API_CHAT, true, 200, "ok", 1, 24,
               true);
    proxied += 2;

    /* 401: no key id, no user. */
    for (api = API_MSG; api <= API_CHAT; api++) {
        call(f.port, api, UNKNOWN_KEY, NULL, NULL, &resp);
        TG_IT_CHECK_INT(resp.status, 401);
        tg_it_resp_fini(&resp);
        expect_add(ex, &nex, "401", api, false, 401, "rejected", 0, 0, false);
    }

    /* 429: rpm 1 admits one request, then refuses. */
    call(f.port, API_MSG, LIMITED_KEY, "x-mock-chunks: 13\r\n", NULL, &resp);
    expect_200(&resp, "the limited key's one request");
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "limited key", API_MSG, false, 200, "ok", 2, 26, true);
    proxied++;
    for (api = API_MSG; api <= API_CHAT; api++) {
        call(f.port, api, LIMITED_KEY, NULL, NULL, &resp);
        TG_IT_CHECK_INT(resp.status, 429);
        tg_it_resp_fini(&resp);
        expect_add(ex, &nex, "429", api, false, 429, "rejected", 2, 0, false);
    }

    /* The only Anthropic endpoint answers 500: it reaches the client,
     * which ring.h counts as answered ("any status from upstream"). */
    call(f.port, API_MSG, TG_IT_KEY, "x-mock-fault: 500\r\n", NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 500);
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "upstream 500", API_MSG, false, 500, "ok", 1, 0,
               false);
    proxied++;

    /* The only endpoint resets before answering: tollgate's own 502, no
     * endpoint answered usably. */
    call(f.port, API_MSG, TG_IT_KEY, "x-mock-fault: reset-before\r\n", NULL,
         &resp);
    TG_IT_CHECK_INT(resp.status, 502);
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "upstream reset", API_MSG, false, 502,
               "upstream_error", 1, 0, false);
    proxied++;

    /* The only OpenAI endpoint never answers: 504 after
     * first_byte_timeout (1 s). */
    call(f.port, API_CHAT, TG_IT_KEY, "x-mock-fault: hang\r\n", NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 504);
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "upstream timeout", API_CHAT, false, 504, "timeout", 1,
               0, false);
    proxied++;

    /* A stream the upstream resets half-way. */
    body = body_for(API_MSG, NULL, true);
    call(f.port, API_MSG, TG_IT_KEY,
         "x-mock-chunks: 10\r\nx-mock-fault: reset-mid\r\n", body, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(!resp.complete);
    tg_it_resp_fini(&resp);
    expect_add(ex, &nex, "stream reset mid-way", API_MSG, true, 200, "broken",
               1, -1, false);
    proxied++;

    /* A client that leaves mid-stream. */
    raw = request_for(API_MSG, TG_IT_KEY,
                      "x-mock-chunks: 100\r\nx-mock-delay-ms: 50\r\n", body);
    free(body);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_wait(&c, 300, 5000) == TG_OK);
    tg_it_conn_close(&c);
    expect_add(ex, &nex, "client gone", API_MSG, true, 200, "client_gone", 1,
               -1, false);
    proxied++;

    /* Every proxied request is over on the mock's side, the client that
     * left last (tollgate publishes its record as it aborts the upstream
     * transfer), then TERM: admin drains the ring on its way out.  libcurl
     * sends a request again on its own when a reused connection dies
     * before any answer (reset-before), so the ledger may hold one more. */
    TG_IT_CHECKF(tg_it_file_wait_count(f.ledger, gone, 1, 3000) == 1,
                 "the upstream did not see the client leave");
    n = tg_it_file_wait_count(f.ledger, any, proxied, 3000);
    TG_IT_CHECKF(n >= proxied, "%d ledger lines for %d proxied requests", n,
                 proxied);
    tg_it_fixture_stop(&f);

    recs = usage_read();
    ledger = ledger_read(f.ledger);
    tg_it_note("%zu usage records, %zu ledger lines, %zu requests",
               json_array_size(recs), json_array_size(ledger), nex);
    taken = calloc(json_array_size(recs) + 1, sizeof(bool));
    ids = calloc(nex, sizeof(char *));
    TG_IT_CHECK(taken != NULL && ids != NULL);
    for (i = 0; i < nex; i++) {
        long at = usage_match(recs, taken, &ex[i], ledger);
        size_t k;

        if (at < 0) {
            missed++;
            continue;
        }
        ids[i] = (char *)tg_it_json_str(json_array_get(recs, (size_t)at),
                                        "request_id");
        TG_IT_CHECK(ids[i] != NULL && strlen(ids[i]) == 16);
        for (k = 0; k < i; k++) {
            TG_IT_CHECKF(ids[k] == NULL || strcmp(ids[k], ids[i]) != 0,
                         "request_id %s appears twice", ids[i]);
        }
    }
    TG_IT_CHECKF(missed == 0,
                 "%d of %zu requests have no usage record of the expected "
                 "outcome (see MISMATCH above)",
                 missed, nex);
    TG_IT_CHECKF(json_array_size(recs) == nex,
                 "%zu usage records for %zu requests", json_array_size(recs),
                 nex);
    free(ids);
    free(taken);
    json_decref(ledger);
    json_decref(recs);
}


static void
test_record_of_stream_in_flight_at_term(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    char id[64], needle[96], *raw, *body;
    const char *const needles[] = {needle, "\"outcome\":\"ok\"", NULL};

    auth_fixture_init(&f, NULL);
    tg_it_fixture_start(&f);
    /* A stream of 10 deltas 100 ms apart, still running when TERM comes;
     * the graceful stop lets it finish. */
    body = body_for(API_MSG, NULL, true);
    raw = request_for(API_MSG, TG_IT_KEY,
                      "x-mock-chunks: 10\r\nx-mock-delay-ms: 100\r\n", body);
    free(body);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_wait(&c, 200, 5000) == TG_OK);
    tg_it_proc_signal(&f.tg, SIGTERM);
    TG_IT_CHECK(tg_it_conn_read(&c, &resp, 10000) == TG_OK);
    TG_IT_CHECKF(resp.status == 200 && resp.complete,
                 "the stream: status %d %s", resp.status, resp.error);
    request_id(&resp, id, sizeof(id));
    tg_it_resp_fini(&resp);
    tg_it_conn_close(&c);
    TG_IT_CHECKF(tg_it_proc_wait(&f.tg, 8000),
                 "tollgate did not exit after the stream ended");
    tg_it_fixture_stop(&f);

    /* Nothing runs any more: the record is in the log or it is lost. */
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    TG_IT_CHECKF(tg_it_file_count(usage_log, needles) == 1,
                 "the stream that finished during the graceful stop has no "
                 "usage record (request %s)",
                 id);
}


/* -------------------------------------------------- killed workers, spool */

#define KILL_KEY "tg-it-concurrency-kill-012345"

/* The pids of tollgate's <want> workers, waited for: a child forked a
 * moment ago may not have taken its "worker" name yet. */
static int
workers_of(tg_it_fixture_t *f, pid_t *pids, int want)
{
    uint64_t deadline = tg_it_now_ms() + 3000;
    int n;

    while ((n = tg_it_children(f->tg.pid, "worker", pids, 16)) != want) {
        TG_IT_CHECKF(tg_it_now_ms() < deadline, "%d workers, expected %d", n,
                     want);
        tg_it_sleep_ms(10);
    }
    return n;
}


static void
test_killed_worker_releases_slot(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    pid_t old[16], now[16];
    char id[64], *raw, *body;
    uint64_t deadline;
    int n, m, i, j, fresh;

    auth_fixture_init(&f, "( { name = \"erin\"; keys = ( { key = \"" KILL_KEY
                          "\"; concurrency = 1; } ); } )");
    tg_it_fixture_start(&f);
    n = workers_of(&f, old, 2);

    /* A 10 s stream takes the key's only slot. */
    body = body_for(API_MSG, NULL, true);
    raw = request_for(API_MSG, KILL_KEY,
                      "x-mock-chunks: 100\r\nx-mock-delay-ms: 100\r\n", body);
    free(body);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_wait(&c, 200, 5000) == TG_OK);
    call(f.port, API_MSG, KILL_KEY, NULL, NULL, &resp);
    expect_429(&resp, API_MSG, "while the stream holds the slot");
    tg_it_resp_fini(&resp);

    /* Kill every worker, the one holding the stream among them. */
    for (i = 0; i < n; i++) {
        tg_it_note("killing worker %d", (int)old[i]);
        TG_IT_CHECK(kill(old[i], SIGKILL) == 0);
    }
    TG_IT_CHECKF(tg_it_conn_closed(&c, 3000),
                 "the stream stayed open after its worker was killed");
    tg_it_conn_close(&c);

    /* Two new workers. */
    deadline = tg_it_now_ms() + 5000;
    for (;;) {
        m = tg_it_children(f.tg.pid, "worker", now, 16);
        for (i = 0, fresh = 0; i < m; i++) {
            bool was = false;

            for (j = 0; j < n; j++) {
                was = was || now[i] == old[j];
            }
            fresh += !was;
        }
        if (m == n && fresh == n) {
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "%d workers (%d new) 5 s after the kill", m, fresh);
        tg_it_sleep_ms(20);
    }
    tg_it_fixture_settle(&f);

    /* The slot of the dead stream is free: 200, on both routes (each
     * request waits for the previous one's record, see test_concurrency). */
    for (i = 0; i < 4; i++) {
        int api = i % 2 ? API_CHAT : API_MSG;

        call(f.port, api, KILL_KEY, NULL, NULL, &resp);
        TG_IT_CHECKF(resp.status == 200,
                     "request %d after the respawn: status %d: %.300s "
                     "(the dead worker's concurrency slot was not released)",
                     i, resp.status, resp.body);
        usage_wait_id(request_id(&resp, id, sizeof(id)));
        tg_it_resp_fini(&resp);
    }
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "released 1 concurrency slots", 3000));
    tg_it_fixture_stop(&f);
}


/* The value of "<key>=" in loadgen's output <out>; -1 when absent. */
static long long
loadgen_value(const char *out, const char *key)
{
    char want[64];
    const char *p;
    size_t n;

    n = (size_t)snprintf(want, sizeof(want), "%s=", key);
    for (p = out; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
        if (*p == '\n') {
            p++;
        }
        if (strncmp(p, want, n) == 0) {
            return strtoll(p + n, NULL, 10);
        }
    }
    return -1;
}


static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}


/* The request ids of the access log (third field of each line), sorted;
 * returns how many.  The caller frees the array and its strings. */
static size_t
access_ids(const char *path, char ***out)
{
    char *text = tg_it_file_read(path, NULL), *line, *nl, id[32];
    char **ids = NULL;
    size_t n = 0, cap = 0;

    TG_IT_CHECK(text != NULL);
    for (line = text; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        TG_IT_CHECK(nl != NULL);
        *nl = '\0';
        TG_IT_CHECKF(sscanf(line, "%*s %*s %31s", id) == 1,
                     "access log line: %s", line);
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            ids = realloc(ids, cap * sizeof(char *));
            TG_IT_CHECK(ids != NULL);
        }
        ids[n++] = strdup(id);
    }
    free(text);
    qsort(ids, n, sizeof(char *), str_cmp);
    *out = ids;
    return n;
}


/* Check that the usage log holds each of the <n> sorted <ids> exactly
 * once, and nothing else. */
static void
usage_check_ids(char **ids, size_t n)
{
    json_t *recs = usage_read();
    char **got;
    size_t i;

    TG_IT_CHECKF(json_array_size(recs) == n,
                 "%zu usage records for %zu requests in the access log",
                 json_array_size(recs), n);
    got = calloc(n ? n : 1, sizeof(char *));
    TG_IT_CHECK(got != NULL);
    for (i = 0; i < n; i++) {
        got[i] = (char *)tg_it_json_str(json_array_get(recs, i), "request_id");
        TG_IT_CHECK(got[i] != NULL);
    }
    qsort(got, n, sizeof(char *), str_cmp);
    for (i = 0; i < n; i++) {
        TG_IT_CHECKF(i == 0 || strcmp(got[i - 1], got[i]) != 0,
                     "request %s has two usage records", got[i]);
        TG_IT_CHECKF(strcmp(got[i], ids[i]) == 0,
                     "usage record %s vs access log %s (sorted, #%zu)", got[i],
                     ids[i], i);
    }
    free(got);
    json_decref(recs);
}


#define SPOOL_REQUESTS 300

static void
test_spool_behind_full_ring(void)
{
    static const char *const any[] = {"\"request_id\"", NULL};
    tg_it_fixture_t f;
    tg_it_proc_t lg;
    tg_it_resp_t resp;
    pid_t admin;
    char bin[4096], url[128], num[16], *out, **ids;
    char token[128], auth[192];
    char *argv[32];
    int i = 0, st, lines;
    bool done;
    size_t nids, k;
    json_t *j;

    auth_fixture_init(&f, NULL);
    tg_it_conf_set(&f.conf, "usage.ring_slots", "64");
    tg_it_conf_set(&f.conf, "log.level", "\"info\"");
    tg_it_admin_prepare(&f, NULL);
    tg_it_fixture_start(&f);
    tg_it_admin_login(&f, token, sizeof(token));
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "admin", &admin, 1), 1);

    snprintf(bin, sizeof(bin), "%s/loadgen", tg_it_build());
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", f.port);
    snprintf(num, sizeof(num), "%d", SPOOL_REQUESTS);
    argv[i++] = bin;
    argv[i++] = "-u";
    argv[i++] = url;
    argv[i++] = "-c";
    argv[i++] = "8";
    argv[i++] = "-n";
    argv[i++] = num;
    argv[i++] = "--body";
    argv[i++] = TG_IT_BODY_MESSAGES;
    argv[i++] = "-H";
    argv[i++] = "x-api-key: " TG_IT_KEY;
    argv[i++] = "-H";
    argv[i++] = "anthropic-version: 2023-06-01";
    argv[i++] = "-H";
    argv[i++] = "x-mock-chunks: 1";
    argv[i++] = "--expect-status";
    argv[i++] = "200";
    argv[i++] = "--timeout-s";
    argv[i++] = "10";
    argv[i] = NULL;

    /* Nothing between STOP and CONT may fail the test: a stopped admin
     * would not drain, and would not stop on TERM either. */
    tg_it_note("stopping admin (pid %d)", (int)admin);
    TG_IT_CHECK(kill(admin, SIGSTOP) == 0);
    tg_it_proc_start(&lg, "loadgen", argv);
    done = tg_it_proc_wait(&lg, 15000);
    lines = tg_it_file_count(usage_log, any);
    kill(admin, SIGCONT);
    tg_it_note("admin continued; %d records were logged while it was stopped",
               lines);

    TG_IT_CHECKF(done, "loadgen ran over 15 s");
    out = tg_it_file_read(lg.out, NULL);
    TG_IT_CHECK(out != NULL);
    tg_it_note("loadgen:\n%s", out);
    st = lg.status;
    TG_IT_CHECK_INT(loadgen_value(out, "completed"), SPOOL_REQUESTS);
    TG_IT_CHECK_INT(loadgen_value(out, "status_2xx"), SPOOL_REQUESTS);
    TG_IT_CHECK_INT(loadgen_value(out, "errors"), 0);
    TG_IT_CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                 "loadgen wait status 0x%x", st);
    free(out);

    /* The ring held 64; the rest went to the spool, which admin ingests
     * every second.  /healthz of the fixture makes one more. */
    lines = tg_it_file_wait_count(usage_log, any, SPOOL_REQUESTS + 1, 5000);
    TG_IT_CHECK_INT(lines, SPOOL_REQUESTS + 1);
    /* One more ingest round must not read a spool file again. */
    tg_it_sleep_ms(1500);
    nids = access_ids(f.access_log, &ids);
    TG_IT_CHECK_INT(nids, SPOOL_REQUESTS + 1);
    usage_check_ids(ids, nids);

    /* Admin says the spool was used, so the test took that path. */
    snprintf(auth, sizeof(auth), "authorization: Bearer %s\r\n", token);
    tg_it_request(f.admin_port, "GET", "/admin/api/status", auth, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    j = tg_it_json(&resp);
    tg_it_note("admin usage counters: %s", strstr(resp.body, "\"usage\""));
    TG_IT_CHECKF(jint(j, "usage.spooled") >= SPOOL_REQUESTS - 64,
                 "only %lld records came through the spool",
                 jint(j, "usage.spooled"));
    TG_IT_CHECK_INT(jint(j, "usage.records"), SPOOL_REQUESTS + 1);
    TG_IT_CHECK_INT(jint(j, "usage.bad"), 0);
    json_decref(j);
    tg_it_resp_fini(&resp);

    /* Stopping (a last drain and ingest) adds nothing. */
    tg_it_fixture_stop(&f);
    usage_check_ids(ids, nids);
    for (k = 0; k < nids; k++) {
        free(ids[k]);
    }
    free(ids);
}


const tg_it_test_t tg_it_auth_tests[] = {
    {"an unknown, a disabled and an expired key get 401 on both routes in "
     "each API's shape with x-should-retry false, and a valid key of the "
     "same user gets 200",
     test_bad_keys_401},
    {"a disabled user's key gets 403, and a model outside the key's "
     "allow-list gets 403 while an allowed model gets 200",
     test_disabled_user_and_models_403},
    {"requests beyond a key's rpm and burst get 429 with retry-after in both "
     "shapes, and another key of the same user is not affected",
     test_rpm_and_burst},
    {"a key with concurrency 1 gets 429 while a stream is open and 200 once "
     "it has finished",
     test_concurrency},
    {"a key past its tokens per minute gets 429 with a retry-after pointing "
     "to the next minute",
     test_tpm},
    {"a user whose daily token quota is used gets 429 on every key until "
     "UTC midnight",
     test_daily_quota},
    {"every request leaves exactly one usage record with the tokens the "
     "upstream reported",
     test_one_record_per_request},
    {"a stream that finishes during a graceful stop still leaves its usage "
     "record",
     test_record_of_stream_in_flight_at_term},
    {"a worker killed while holding a key's only concurrency slot releases "
     "it",
     test_killed_worker_releases_slot},
    {"with admin stopped and the usage ring full, every record reaches the "
     "usage log exactly once through the spool",
     test_spool_behind_full_ring},
    {NULL, NULL},
};
