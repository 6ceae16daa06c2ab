/*
 * tests/integration/test_ends.c
 *      Every way a request can end, each checked for exactly one usage
 *      record, exactly one access-log line, the right status and outcome,
 *      and the in-flight counters back to zero afterwards.
 *
 * NOTES
 *      One fixture runs the cases in order; each case makes one request
 *      and then waits until the usage log and the access log have grown by
 *      one line each, and no more, before checking the record and the
 *      counters (admin's /status per worker, /endpoints per endpoint).
 *      The record and the access-log line must name the same request id.
 */
#include "core/core.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lines of the file at <path> (0 when it is missing). */
static int
ends_lines(const char *path)
{
    static const char *const any[] = {"", NULL};

    return tg_it_file_count(path, any);
}


/* The last line of the file at <path>, heap-allocated (the caller frees). */
static char *
ends_last_line(const char *path)
{
    char *text = tg_it_file_read(path, NULL), *end, *start, *line;

    TG_IT_CHECK(text != NULL);
    end = text + strlen(text);
    while (end > text && end[-1] == '\n') {
        end--;
    }
    *end = '\0';
    start = strrchr(text, '\n');
    start = start ? start + 1 : text;
    line = strdup(start);
    free(text);
    TG_IT_CHECK(line != NULL);
    return line;
}


/* Wait until admin reports nothing in flight: every worker's upstream
 * transfers and every endpoint's in-flight count at zero. */
static void
ends_check_idle(const tg_it_fixture_t *f, const char *what)
{
    uint64_t deadline = tg_it_now_ms() + 5000;
    tg_it_resp_t resp;
    char *body = NULL;

    for (;;) {
        tg_it_request(f->admin_port, "GET", "/status", NULL, NULL, &resp);
        free(body);
        body = strndup(resp.body, resp.body_len);
        tg_it_resp_fini(&resp);
        TG_IT_CHECK(body != NULL);
        if (strstr(body, "\"inflight\":1") == NULL &&
            strstr(body, "\"inflight\":2") == NULL &&
            strstr(body, "\"inflight\":3") == NULL &&
            strstr(body, "\"inflight\":4") == NULL) {
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "%s: something still in flight 5 s later: %s", what, body);
        tg_it_sleep_ms(50);
    }
    free(body);
}


/*
 * After one request: exactly one more usage record (<usage>) and one more
 * access-log line than <nrec> and <nacc>, with status <status> and
 * outcome <outcome>, naming the same request; then nothing in flight.
 */
static void
ends_check(const tg_it_fixture_t *f, const char *usage, int *nrec, int *nacc,
           const char *what, int status, const char *outcome)
{
    char *rec_line, *acc_line, id[32];
    json_t *rec;
    int got;

    got = tg_it_file_wait_count(usage, (const char *const[]){"", NULL},
                                *nrec + 1, 5000);
    TG_IT_CHECKF(got == *nrec + 1, "%s: %d usage records, want %d", what, got,
                 *nrec + 1);
    got = tg_it_file_wait_count(f->access_log, (const char *const[]){"", NULL},
                                *nacc + 1, 5000);
    TG_IT_CHECKF(got == *nacc + 1, "%s: %d access-log lines, want %d", what,
                 got, *nacc + 1);
    /* Give a second record or line the time to show up, then recount. */
    tg_it_sleep_ms(300);
    TG_IT_CHECKF(ends_lines(usage) == *nrec + 1,
                 "%s: %d usage records, want exactly %d", what,
                 ends_lines(usage), *nrec + 1);
    TG_IT_CHECKF(ends_lines(f->access_log) == *nacc + 1,
                 "%s: %d access-log lines, want exactly %d", what,
                 ends_lines(f->access_log), *nacc + 1);
    rec_line = ends_last_line(usage);
    acc_line = ends_last_line(f->access_log);
    rec = json_loads(rec_line, 0, NULL);
    TG_IT_CHECKF(rec != NULL, "%s: usage record not JSON: %s", what, rec_line);
    TG_IT_CHECKF(json_integer_value(json_object_get(rec, "status")) == status,
                 "%s: status %lld, want %d (%s)", what,
                 (long long)json_integer_value(json_object_get(rec, "status")),
                 status, rec_line);
    TG_IT_CHECKF(strcmp(tg_it_json_str(rec, "outcome"), outcome) == 0,
                 "%s: outcome %s, want %s", what,
                 tg_it_json_str(rec, "outcome"), outcome);
    snprintf(id, sizeof(id), " %s ", tg_it_json_str(rec, "request_id"));
    TG_IT_CHECKF(strstr(acc_line, id) != NULL,
                 "%s: access-log line \"%s\" is not request %s", what, acc_line,
                 id);
    tg_it_note("%s: %s", what, acc_line);
    json_decref(rec);
    free(rec_line);
    free(acc_line);
    *nrec += 1;
    *nacc += 1;
    ends_check_idle(f, what);
}


/* Send one request with <headers> and <body> on /v1/messages; read its
 * response (when <read>) or close once <wait_bytes> arrived (0: at once
 * after sending). */
static void
ends_send(const tg_it_fixture_t *f, const char *headers, const char *body,
          bool read, size_t wait_bytes)
{
    tg_it_resp_t resp;
    tg_it_conn_t c;
    char *raw = tg_it_request_build("POST", "/v1/messages", headers, body);

    tg_it_conn_open(&c, f->port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    if (read) {
        TG_IT_CHECK(tg_it_conn_read(&c, &resp, 10000) == TG_OK);
        tg_it_resp_fini(&resp);
    } else if (wait_bytes > 0) {
        TG_IT_CHECK(tg_it_conn_wait(&c, wait_bytes, 5000) == TG_OK);
    } else {
        tg_it_sleep_ms(200);
    }
    tg_it_conn_close(&c);
}


static void
test_every_end(void)
{
    tg_it_fixture_t f;
    char usage[4096], spool[4096];
    int nrec = 0, nacc = 0;
    tg_it_conn_t c;
    char *raw;

    tg_it_fixture_init(&f);
    tg_it_path(usage, sizeof(usage), "usage.log");
    tg_it_path(spool, sizeof(spool), "spool");
    tg_it_conf_set(&f.conf, "usage.log", "\"%s\"", usage);
    tg_it_conf_set(&f.conf, "usage.spool_dir", "\"%s\"", spool);
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "1");
    tg_it_conf_set(&f.conf, "limits.stream_buffer", "4096");
    tg_it_conf_set(&f.conf, "limits.send_timeout", "1");
    /* Clients that leave end their request at once (draining for usage
     * is tested in test_quota.c). */
    tg_it_conf_set(&f.conf, "usage.on_client_disconnect", "\"cancel\"");
    tg_it_fixture_start(&f);
    /* The fixture's own readiness probes are requests too. */
    tg_it_sleep_ms(500);
    nrec = ends_lines(usage);
    nacc = ends_lines(f.access_log);

    ends_send(&f, TG_IT_H_ANTHROPIC, TG_IT_BODY_MESSAGES, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "success", 200, "ok");

    ends_send(&f, "x-api-key: wrong\r\ncontent-type: application/json\r\n",
              TG_IT_BODY_MESSAGES, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "auth refusal", 401, "rejected");

    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, "GET /\x01 HTTP/1.1\r\n\r\n") == TG_OK);
    TG_IT_CHECK(tg_it_conn_closed(&c, 5000));
    tg_it_conn_close(&c);
    ends_check(&f, usage, &nrec, &nacc, "parse error", 400, "rejected");

    ends_send(&f, TG_IT_H_ANTHROPIC "x-mock-fault: reset-before\r\n",
              TG_IT_BODY_MESSAGES, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "upstream reset before its head", 502,
               "upstream_error");

    ends_send(&f, TG_IT_H_ANTHROPIC "x-mock-fault: hang\r\n",
              TG_IT_BODY_MESSAGES, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "upstream never answering", 504,
               "timeout");

    ends_send(&f, TG_IT_H_ANTHROPIC "x-mock-fault: reset-mid\r\n",
              TG_IT_BODY_MESSAGES_STREAM, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "upstream reset mid-stream", 200,
               "broken");

    ends_send(&f, TG_IT_H_ANTHROPIC "x-mock-fault: error-mid\r\n",
              TG_IT_BODY_MESSAGES_STREAM, true, 0);
    ends_check(&f, usage, &nrec, &nacc, "error event mid-stream", 200,
               "upstream_error");

    ends_send(&f, TG_IT_H_ANTHROPIC "x-mock-fault: slow-first-byte:800\r\n",
              TG_IT_BODY_MESSAGES_STREAM, false, 0);
    ends_check(&f, usage, &nrec, &nacc,
               "client gone before the upstream "
               "answered",
               0, "client_gone");

    ends_send(&f,
              TG_IT_H_ANTHROPIC "x-mock-chunks: 100\r\nx-mock-delay-ms: 50\r\n",
              TG_IT_BODY_MESSAGES_STREAM, false, 400);
    ends_check(&f, usage, &nrec, &nacc, "client gone mid-stream", 200,
               "client_gone");

    /* A client that stops reading with its receive buffer full, while the
     * stream still runs, then leaves with unread bytes (a reset). */
    tg_it_conn_open_small(&c, f.port, 4096);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 10000\r\n"
                                                "x-mock-delay-ms: 1\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    tg_it_sleep_ms(1000);
    tg_it_conn_close(&c);
    ends_check(&f, usage, &nrec, &nacc, "client gone while not reading", 200,
               "client_gone");
    tg_it_fixture_stop(&f);
}


static void
test_worker_killed(void)
{
    static const char *const crashed[] = {"\"outcome\":\"worker_crashed\"",
                                          NULL};
    static const char *const unknown[] = {"\"outcome\":\"worker_crashed\"",
                                          "\"tokens_known\":false", NULL};
    enum { STREAMS = 4 };
    tg_it_conn_t c[STREAMS];
    tg_it_fixture_t f;
    char usage[4096], spool[4096];
    pid_t pids[16];
    int i, n, nrec;
    char *raw;

    tg_it_fixture_init(&f);
    tg_it_path(usage, sizeof(usage), "usage.log");
    tg_it_path(spool, sizeof(spool), "spool");
    tg_it_conf_set(&f.conf, "usage.log", "\"%s\"", usage);
    tg_it_conf_set(&f.conf, "usage.spool_dir", "\"%s\"", spool);
    tg_it_fixture_start(&f);
    tg_it_fixture_settle(&f);
    tg_it_sleep_ms(500);
    nrec = ends_lines(usage);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 100\r\n"
                                                "x-mock-delay-ms: 100\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    for (i = 0; i < STREAMS; i++) {
        tg_it_conn_open(&c[i], f.port);
        TG_IT_CHECK(tg_it_conn_send_str(&c[i], raw) == TG_OK);
    }
    free(raw);
    for (i = 0; i < STREAMS; i++) {
        TG_IT_CHECK(tg_it_conn_wait(&c[i], 400, 5000) == TG_OK);
    }
    /* Every stream is under way: kill every worker at once. */
    n = tg_it_children(f.tg.pid, "worker", pids, 16);
    TG_IT_CHECK(n >= 1);
    for (i = 0; i < n; i++) {
        TG_IT_CHECK(kill(pids[i], SIGKILL) == 0);
    }
    n = tg_it_file_wait_count(usage, crashed, STREAMS, 5000);
    TG_IT_CHECKF(n == STREAMS, "%d worker_crashed records for %d streams", n,
                 STREAMS);
    /* Cut before their final usage: the counts are not facts. */
    TG_IT_CHECK_INT(tg_it_file_count(usage, unknown), STREAMS);
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(ends_lines(usage), nrec + STREAMS);
    for (i = 0; i < STREAMS; i++) {
        tg_it_conn_close(&c[i]);
    }
    ends_check_idle(&f, "after kill -9");
    /* The concurrency slots came back at once: new requests pass. */
    ends_send(&f, TG_IT_H_ANTHROPIC, TG_IT_BODY_MESSAGES, true, 0);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_ends_tests[] = {
    {"every end of a request gives one usage record, one access-log line, "
     "its status and outcome, and nothing left in flight",
     test_every_end},
    {"a worker killed with kill -9 still ends its streams: one "
     "worker_crashed record each, nothing left in flight",
     test_worker_killed},
    {NULL, NULL},
};
