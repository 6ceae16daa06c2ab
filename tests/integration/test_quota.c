/*
 * tests/integration/test_quota.c
 *      Quotas with reservations: fifty parallel requests against a nearly
 *      spent daily budget, the refusal's shape and retry-after, and a day
 *      that ends and resets the budget.
 *
 * NOTES
 *      Quotas come from the configuration file's users (quota_tokens per
 *      quota_period, published as the user's day or month token quota).
 *      A default answer of the mock costs 20 tokens (docs/mock-upstream.md);
 *      the worker reserves an estimate (body bytes / 4 + max_tokens) before
 *      proxying, so requests in flight count before they have finished.
 *      The day reset uses a POSIX time zone whose midnight is a few
 *      seconds away (usage.timezone = "QTZ-hh:mm:ss"), not a day of sleep.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QKEY "tg-it-quota-parallel-key-0123"
#define QBODY                                                                  \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,"                      \
    "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}"
#define QN 50

static char *
quota_request(void)
{
    return tg_it_request_build("POST", "/v1/messages",
                               "x-api-key: " QKEY "\r\n"
                               "anthropic-version: 2023-06-01\r\n"
                               "content-type: application/json\r\n",
                               QBODY);
}


static void
quota_fixture(tg_it_fixture_t *f, long quota, const char *tz)
{
    char users[512];

    tg_it_fixture_init(f);
    snprintf(users, sizeof(users),
             "( { name = \"erin\"; quota_tokens = %ld; quota_period = "
             "\"day\"; keys = ( \"" QKEY "\" ); } )",
             quota);
    tg_it_conf_set(&f->conf, "users", "%s", users);
    if (tz != NULL) {
        tg_it_conf_set(&f->conf, "usage.timezone", "\"%s\"", tz);
    }
}


/* Check that <resp> is a quota refusal in the Anthropic shape naming the
 * daily token quota; returns its retry-after in seconds. */
static long
expect_quota_429(const tg_it_resp_t *resp)
{
    char v[64], *end;
    const char *msg;
    long secs;
    json_t *j;

    TG_IT_CHECKF(resp->status == 429, "status %d, body %.300s", resp->status,
                 resp->body ? resp->body : "");
    j = tg_it_json(resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "rate_limit_error");
    msg = tg_it_json_str(j, "error.message");
    TG_IT_CHECKF(msg != NULL && strstr(msg, "daily token quota of this user") &&
                     strstr(msg, "resets at "),
                 "message does not name the quota and its reset: %s",
                 msg ? msg : "(none)");
    json_decref(j);
    TG_IT_CHECKF(tg_it_resp_header(resp, "retry-after", v, sizeof(v)) != NULL,
                 "429 without retry-after");
    secs = strtol(v, &end, 10);
    TG_IT_CHECKF(end != v && *end == '\0' && secs >= 1, "retry-after \"%s\"",
                 v);
    return secs;
}


static void
test_fifty_parallel(void)
{
    tg_it_fixture_t f;
    tg_it_conn_t c[QN];
    tg_it_resp_t resp;
    char *raw = quota_request();
    int i, ok = 0, refused = 0;
    long secs, want;

    /* 100 tokens a day; one request spends 20 of them first. */
    quota_fixture(&f, 100, NULL);
    tg_it_fixture_start(&f);
    if (time(NULL) % 86400 > 86400 - 30) {
        tg_it_sleep_ms(31000); /* not across a UTC midnight */
    }
    tg_it_exchange(f.port, raw, &resp);
    TG_IT_CHECKF(resp.status == 200, "first request: %d", resp.status);
    tg_it_resp_fini(&resp);
    /* Its charge lands when it ends, before the next request is read. */
    tg_it_sleep_ms(200);
    for (i = 0; i < QN; i++) {
        tg_it_conn_open(&c[i], f.port);
    }
    for (i = 0; i < QN; i++) {
        TG_IT_CHECK(tg_it_conn_send_str(&c[i], raw) == TG_OK);
    }
    for (i = 0; i < QN; i++) {
        TG_IT_CHECKF(tg_it_conn_read(&c[i], &resp, TG_IT_TIMEOUT_MS) == TG_OK,
                     "request %d: no response: %s", i, resp.error);
        if (resp.status == 200) {
            ok++;
        } else {
            want = 86400 - (long)(time(NULL) % 86400);
            secs = expect_quota_429(&resp);
            TG_IT_CHECKF(secs >= want - 2 && secs <= want + 1,
                         "retry-after %ld, but the day ends in %ld s", secs,
                         want);
            refused++;
        }
        tg_it_resp_fini(&resp);
        tg_it_conn_close(&c[i]);
    }
    tg_it_note("%d of %d parallel requests passed, %d refused", ok, QN,
               refused);
    /* 80 tokens were left and each answer costs 20: at most 4 can pass,
     * whatever the timing, since a request in flight holds at least what
     * it will cost; at least one passes, since some budget was left. */
    TG_IT_CHECKF(ok >= 1 && ok <= 4, "%d requests passed", ok);
    TG_IT_CHECK_INT(ok + refused, QN);
    /* Used up now (or nearly): a later one is refused unless budget
     * remains. */
    tg_it_exchange(f.port, raw, &resp);
    if (ok == 4) {
        (void)expect_quota_429(&resp);
    }
    tg_it_resp_fini(&resp);
    free(raw);
    tg_it_fixture_stop(&f);
}


static void
test_day_resets(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char tz[64], *raw = quota_request();
    time_t now = time(NULL), midnight;
    long off, left, secs;

    /* A zone whose local midnight is 12 s from now. */
    midnight = now + 12;
    off = (86400 - (long)(midnight % 86400)) % 86400;
    snprintf(tz, sizeof(tz), "QTZ-%02ld:%02ld:%02ld", off / 3600, off / 60 % 60,
             off % 60);
    tg_it_note("usage.timezone \"%s\": local midnight at %ld", tz,
               (long)midnight);
    quota_fixture(&f, 30, tz);
    tg_it_fixture_start(&f);
    left = (long)(midnight - time(NULL));
    if (left < 5) {
        tg_it_note("the machine is too slow for this window (%ld s left); "
                   "skipping",
                   left);
        goto done;
    }
    tg_it_exchange(f.port, raw, &resp);
    TG_IT_CHECKF(resp.status == 200, "first: %d", resp.status);
    tg_it_resp_fini(&resp);
    tg_it_exchange(f.port, raw, &resp);
    TG_IT_CHECKF(resp.status == 200, "second: %d", resp.status);
    tg_it_resp_fini(&resp);
    tg_it_sleep_ms(200);
    tg_it_exchange(f.port, raw, &resp);
    left = (long)(midnight - time(NULL));
    if (left >= 1) {
        secs = expect_quota_429(&resp);
        tg_it_note("retry-after %ld, local midnight in %ld s", secs, left);
        TG_IT_CHECKF(secs >= left - 1 && secs <= left + 1,
                     "retry-after %ld, but the day ends in %ld s", secs, left);
    }
    tg_it_resp_fini(&resp);
    while (time(NULL) <= midnight) {
        tg_it_sleep_ms(250);
    }
    tg_it_exchange(f.port, raw, &resp);
    TG_IT_CHECKF(resp.status == 200,
                 "after local midnight the quota did not reset: %d %.200s",
                 resp.status, resp.body ? resp.body : "");
    tg_it_resp_fini(&resp);

done:
    free(raw);
    tg_it_fixture_stop(&f);
}


static void
test_usage_asked_for_the_client(void)
{
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char log[4096], id[64], needle[96], *raw, *text, *line;
    const char *const needles[] = {needle, NULL};

    tg_it_fixture_init(&f);
    tg_it_path(log, sizeof(log), "usage.log");
    tg_it_conf_set(&f.conf, "usage.log", "\"%s\"", log);
    tg_it_fixture_start(&f);
    raw = tg_it_request_build(
        "POST", "/v1/chat/completions",
        "authorization: Bearer " TG_IT_KEY "\r\n"
        "content-type: application/json\r\n",
        "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Hello\"}]}");
    tg_it_exchange(f.port, raw, &resp);
    free(raw);
    TG_IT_CHECKF(resp.status == 200 && resp.complete, "status %d %s",
                 resp.status, resp.error);
    TG_IT_CHECKF(resp.body != NULL && strstr(resp.body, "data: [DONE]"),
                 "stream without its end: %.300s", resp.body);
    /* The client did not ask for usage: no usage chunk reaches it. */
    TG_IT_CHECKF(strstr(resp.body, "\"choices\":[]") == NULL &&
                     strstr(resp.body, "\"usage\":{") == NULL,
                 "the usage chunk reached the client: %.600s", resp.body);
    TG_IT_CHECKF(tg_it_resp_header(&resp, "x-tollgate-request-id", id,
                                   sizeof(id)) != NULL,
                 "no request id");
    tg_it_resp_fini(&resp);
    /* ... and the record has the stream's tokens (I = 10, O = 10). */
    snprintf(needle, sizeof(needle), "\"request_id\":\"%s\"", id);
    TG_IT_CHECKF(tg_it_file_wait_count(log, needles, 1, 3000) == 1,
                 "no usage record of %s", id);
    text = tg_it_file_read(log, NULL);
    line = text ? strstr(text, needle) : NULL;
    TG_IT_CHECKF(line != NULL &&
                     strstr(line, "\"tokens\":{\"input\":10,\"output\":10,") &&
                     strstr(line, "\"tokens_known\":true"),
                 "record without the stream's usage: %.400s",
                 line ? line : "(none)");
    free(text);
    tg_it_fixture_stop(&f);
}


/* A client that leaves a slow stream after its first events, with
 * usage.on_client_disconnect = <mode>; returns the usage record's line
 * and the ledger's (the caller frees both).  <translated>: the only
 * endpoint speaks the OpenAI API, so the stream is translated. */
static void
disconnect_run(const char *mode, bool translated, char **rec, char **led)
{
    tg_it_fixture_t f;
    tg_it_conn_t c;
    char log[4096], *raw;
    const char *const gone[] = {"\"outcome\":\"client_gone\"", NULL};
    const char *const line[] = {translated ? "\"path\":\"/v1/chat/completions\""
                                           : "\"path\":\"/v1/messages\"",
                                NULL};

    tg_it_fixture_init(&f);
    tg_it_path(log, sizeof(log), "usage.log");
    tg_it_conf_set(&f.conf, "usage.log", "\"%s\"", log);
    tg_it_conf_set(&f.conf, "usage.on_client_disconnect", "\"%s\"", mode);
    if (translated) {
        tg_it_conf_set(&f.conf, "endpoints",
                       "( { name = \"mock-openai\"; "
                       "url = \"http://127.0.0.1:%d\"; style = \"openai\"; "
                       "credential = \"" TG_IT_CRED "\"; "
                       "health_interval = 0; } )",
                       f.mock_port);
    }
    tg_it_fixture_start(&f);
    raw = tg_it_request_build(
        "POST", "/v1/messages",
        "x-api-key: " TG_IT_KEY "\r\n"
        "anthropic-version: 2023-06-01\r\n"
        "content-type: application/json\r\n"
        "x-mock-chunks: 10\r\nx-mock-delay-ms: 150\r\n",
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}");
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    tg_it_sleep_ms(400);
    tg_it_conn_close(&c);
    TG_IT_CHECKF(tg_it_file_wait_count(log, gone, 1, 8000) == 1,
                 "no client_gone usage record");
    TG_IT_CHECKF(tg_it_file_wait_count(f.ledger, line, 1, 8000) == 1,
                 "no ledger line");
    *rec = tg_it_file_read(log, NULL);
    *led = tg_it_file_read(f.ledger, NULL);
    tg_it_note("%s: record %s", mode, *rec ? *rec : "(none)");
    tg_it_note("%s: ledger %s", mode, *led ? *led : "(none)");
    tg_it_fixture_stop(&f);
}


/* <translated>: see disconnect_run. */
static void
disconnect_drain(bool translated)
{
    char *rec = NULL, *led = NULL;

    disconnect_run("drain", translated, &rec, &led);
    /* The upstream was read to its end: the true usage is known. */
    TG_IT_CHECKF(led && strstr(led, "\"completed\":true") &&
                     strstr(led, "\"output_tokens\":20"),
                 "the upstream was not read to the end: %s", led);
    TG_IT_CHECKF(rec && strstr(rec, "\"output\":20,") &&
                     strstr(rec, "\"tokens_known\":true"),
                 "the record lacks the drained usage: %s", rec);
    free(rec);
    free(led);
}


static void
test_disconnect_drain(void)
{
    disconnect_drain(false);
}


/* The translated stream's usage comes from the translator's events: the
 * drain keeps the translator reading, its output dropped. */
static void
test_disconnect_drain_translated(void)
{
    disconnect_drain(true);
}


static void
test_disconnect_cancel(void)
{
    char *rec = NULL, *led = NULL;

    disconnect_run("cancel", false, &rec, &led);
    /* Cut at once: the mock saw its client leave; the record carries
     * what was known, flagged as not final. */
    TG_IT_CHECKF(led && strstr(led, "\"completed\":false"),
                 "the upstream was not cut: %s", led);
    TG_IT_CHECKF(rec && strstr(rec, "\"tokens_known\":false") &&
                     strstr(rec, "\"input\":10,"),
                 "the record lacks the usage known: %s", rec);
    free(rec);
    free(led);
}


const tg_it_test_t tg_it_quota_tests[] = {
    {"a client that leaves mid-stream with on_client_disconnect = drain: "
     "the upstream is read to its end and the record has the true usage",
     test_disconnect_drain},
    {"a client that leaves a translated stream with on_client_disconnect "
     "= drain: the record has the true usage",
     test_disconnect_drain_translated},
    {"a client that leaves mid-stream with on_client_disconnect = cancel: "
     "the upstream is cut at once and the record has the usage known",
     test_disconnect_cancel},
    {"an OpenAI stream whose client did not ask for usage is recorded with "
     "its tokens, and the client sees no usage chunk",
     test_usage_asked_for_the_client},
    {"fifty parallel requests against a nearly spent daily quota: only what "
     "fits passes, the rest get 429 naming the quota with retry-after to "
     "midnight",
     test_fifty_parallel},
    {"a daily quota resets at midnight of usage.timezone", test_day_resets},
    {NULL, NULL},
};
