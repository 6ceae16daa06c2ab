/*
 * tests/integration/test_routing.c
 *      Routing over a pool of three mock upstreams: weighted spread,
 *      least-connections, transparent failover when an upstream dies or
 *      answers 529, priority tiers, circuit breakers and their events log,
 *      active health checks, sticky conversations, and client errors that
 *      are not retried.
 *
 * NOTES
 *      Each test starts tollgate without the fixture's own mock
 *      (no_mock) and three mocks of its own, "ep-a", "ep-b" and "ep-c",
 *      each with its own ledger ("ledger-a.jsonl", ...), so a ledger line
 *      says which endpoint served a request.  Only ledger lines for
 *      POST /v1/messages are counted: health probes GET /v1/models.
 *
 *      Active health checks are off (health_interval 0) unless a test is
 *      about them, so a breaker is moved only by the requests a test sends.
 *      Stickiness is off unless a test is about it: every request here
 *      carries the same first user message, which would otherwise make one
 *      conversation of all of them.
 *
 *      The endpoint events log ("events.log", log.events) has one JSON
 *      object per line; an event is matched by its "endpoint" name and its
 *      "type" ("opened", "half_open", "closed", "health", ...), see
 *      event_kinds_to().  Admin's view of the endpoints is GET /endpoints
 *      on the admin port.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define RT_MOCKS  3
#define RT_EVENTS 64 /* events of one endpoint looked at */

static const char *const rt_name[RT_MOCKS] = {"ep-a", "ep-b", "ep-c"};

/* Ledger lines of a request this file sends, and of its outcomes. */
static const char *const rt_msg[] = {"\"path\":\"/v1/messages\"", NULL};
static const char *const rt_msg_200[] = {"\"path\":\"/v1/messages\"",
                                         "\"status\":200", NULL};

/* Tollgate with three mock upstreams of its own. */
typedef struct {
    tg_it_fixture_t f;
    tg_it_proc_t mock[RT_MOCKS];
    int port[RT_MOCKS];
    char ledger[RT_MOCKS][4096];
    char events[4096];
    char extra[RT_MOCKS][256];         /* more endpoint settings */
    const char *const *args[RT_MOCKS]; /* extra mock arguments */
    bool down[RT_MOCKS];               /* do not start this mock */
} rt_t;


/* ------------------------------------------------------------ helpers */

/*
 * The fixture with three endpoints in group "default" configured by
 * <group> (libconfig settings without the name).  Endpoints get
 * health_interval 0 unless the test writes r->extra[i] before rt_start.
 */
static void
rt_init(rt_t *r, const char *group)
{
    char file[64];
    int i, j, p;

    memset(r, 0, sizeof(*r));
    tg_it_fixture_init(&r->f);
    r->f.no_mock = true;
    for (i = 0; i < RT_MOCKS; i++) {
        for (;;) {
            p = tg_it_port_free();
            for (j = 0; j < i && r->port[j] != p; j++) {
            }
            if (j == i && p != r->f.port && p != r->f.admin_port) {
                break;
            }
        }
        r->port[i] = p;
        snprintf(file, sizeof(file), "ledger-%c.jsonl", 'a' + i);
        tg_it_path(r->ledger[i], sizeof(r->ledger[i]), file);
        snprintf(r->extra[i], sizeof(r->extra[i]), "health_interval = 0;");
    }
    tg_it_path(r->events, sizeof(r->events), "events.log");
    tg_it_conf_set(&r->f.conf, "groups", "( { name = \"default\"; %s } )",
                   group);
}


/* Start mock <i> on its port (again, after rt_mock_kill). */
static void
rt_mock_start(rt_t *r, int i)
{
    char name[32];

    snprintf(name, sizeof(name), "mock-%c", 'a' + i);
    tg_it_mock_start(&r->mock[i], name, r->port[i], r->ledger[i], r->args[i]);
}


/* Kill mock <i> and its workers with SIGKILL, as a crash would. */
static void
rt_mock_kill(rt_t *r, int i)
{
    tg_it_proc_t *p = &r->mock[i];

    TG_IT_CHECKF(p->pid > 0 && !p->reaped, "mock %s is not running",
                 rt_name[i]);
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    TG_IT_CHECKF(tg_it_proc_wait(p, 5000), "mock %s did not die", rt_name[i]);
    tg_it_note("killed mock %s (port %d)", rt_name[i], r->port[i]);
}


/* Write the endpoints, start the mocks (but the down ones) and tollgate. */
static void
rt_start(rt_t *r)
{
    char ep[RT_MOCKS][512];
    int i;

    for (i = 0; i < RT_MOCKS; i++) {
        int n = snprintf(ep[i], sizeof(ep[i]),
                         "{ name = \"%s\"; url = \"http://127.0.0.1:%d\"; "
                         "style = \"anthropic\"; "
                         "credential = \"" TG_IT_CRED "\"; %s }",
                         rt_name[i], r->port[i], r->extra[i]);

        TG_IT_CHECK(n > 0 && (size_t)n < sizeof(ep[i]));
        if (!r->down[i]) {
            rt_mock_start(r, i);
        }
    }
    tg_it_conf_set(&r->f.conf, "endpoints", "(\n    %s,\n    %s,\n    %s\n)",
                   ep[0], ep[1], ep[2]);
    tg_it_fixture_start(&r->f);
}


/* Stop tollgate (exit status 0 checked) and every mock still running. */
static void
rt_stop(rt_t *r)
{
    int i;

    tg_it_fixture_stop(&r->f);
    for (i = 0; i < RT_MOCKS; i++) {
        tg_it_proc_stop(&r->mock[i], 5000);
    }
}


/* Requests mock <i> has seen on POST /v1/messages (with <needles>, or
 * every one when NULL). */
static int
rt_count(const rt_t *r, int i, const char *const *needles)
{
    return tg_it_file_count(r->ledger[i], needles ? needles : rt_msg);
}


/* Wait (at most <timeout_ms>) until the mocks together have answered
 * <want> POST /v1/messages with 200; returns the last total. */
static int
rt_wait_total(const rt_t *r, int want, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    int i, total;

    for (;;) {
        for (i = 0, total = 0; i < RT_MOCKS; i++) {
            total += rt_count(r, i, rt_msg_200);
        }
        if (total >= want || tg_it_now_ms() >= deadline) {
            return total;
        }
        tg_it_sleep_ms(20);
    }
}


/* POST /v1/messages with <body> (NULL: the default one) and the Anthropic
 * headers plus <headers>; fails the test unless a complete 200 comes
 * back. */
static void
rt_send_ok(const rt_t *r, const char *headers, const char *body)
{
    tg_it_resp_t resp;
    char *h;

    TG_IT_CHECK(
        asprintf(&h, "%s%s", TG_IT_H_ANTHROPIC, headers ? headers : "") > 0);
    tg_it_request(r->f.port, "POST", "/v1/messages", h,
                  body ? body : TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECKF(resp.status == 200 && resp.complete,
                 "client got status %d (%s), body: %.300s", resp.status,
                 resp.error, resp.body ? resp.body : "");
    tg_it_resp_fini(&resp);
    free(h);
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


/*
 * Start loadgen against POST /v1/messages of <r> with <conc> connections
 * and either <total> requests or <seconds> of load (the other 0), the
 * default body and the Anthropic headers.
 */
static void
rt_loadgen_start(const rt_t *r, tg_it_proc_t *lg, int conc, int total,
                 int seconds)
{
    static char bin[4096], url[128], c[16], n[16];
    char *argv[32];
    int i = 0;

    snprintf(bin, sizeof(bin), "%s/loadgen", tg_it_build());
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", r->f.port);
    snprintf(c, sizeof(c), "%d", conc);
    snprintf(n, sizeof(n), "%d", total > 0 ? total : seconds);
    argv[i++] = bin;
    argv[i++] = "-u";
    argv[i++] = url;
    argv[i++] = "-c";
    argv[i++] = c;
    argv[i++] = total > 0 ? "-n" : "-d";
    argv[i++] = n;
    argv[i++] = "--body";
    argv[i++] = TG_IT_BODY_MESSAGES;
    argv[i++] = "-H";
    argv[i++] = "x-api-key: " TG_IT_KEY;
    argv[i++] = "-H";
    argv[i++] = "anthropic-version: 2023-06-01";
    argv[i++] = "--expect-status";
    argv[i++] = "200";
    argv[i++] = "--timeout-s";
    argv[i++] = "20";
    argv[i] = NULL;
    tg_it_proc_start(lg, "loadgen", argv);
}


/*
 * Wait (at most <timeout_ms>) for loadgen <lg> and check that every one of
 * <want> requests (at least 1 when <want> is 0: a run by duration) got a
 * 200 and none failed.  Returns the number completed.
 */
static long long
rt_loadgen_check(tg_it_proc_t *lg, long long want, int timeout_ms)
{
    long long done;
    char *out;
    int st;

    TG_IT_CHECKF(tg_it_proc_wait(lg, timeout_ms), "loadgen ran over %d ms",
                 timeout_ms);
    out = tg_it_file_read(lg->out, NULL);
    TG_IT_CHECK(out != NULL);
    tg_it_note("loadgen:\n%s", out);
    st = lg->status;
    done = loadgen_value(out, "completed");
    if (want > 0) {
        TG_IT_CHECK_INT(done, want);
    } else {
        TG_IT_CHECKF(done > 0, "loadgen completed %lld requests", done);
    }
    TG_IT_CHECK_INT(loadgen_value(out, "errors"), 0);
    TG_IT_CHECK_INT(loadgen_value(out, "status_2xx"), done);
    TG_IT_CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                 "loadgen wait status 0x%x", st);
    free(out);
    return done;
}


/*
 * The types of the events of endpoint <ep> in the events log at <path>
 * ("opened", "half_open", "closed", "health", ...), in file order, into
 * <kinds> (at most RT_EVENTS); with <to> not NULL, each event's to_state
 * goes there.  Returns the count.  Fails the test on a line that is not a
 * JSON object with "endpoint" and "type" strings.
 */
static size_t
event_kinds_to(const char *path, const char *ep, char kinds[][32],
               char to[][32])
{
    char *text = tg_it_file_read(path, NULL), *line, *save = NULL;
    size_t n = 0;

    if (text == NULL) {
        return 0;
    }
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *e = tg_it_json_str(o, "endpoint");
        const char *k = tg_it_json_str(o, "type");
        const char *s = tg_it_json_str(o, "to_state");

        TG_IT_CHECKF(json_is_object(o) && e != NULL && k != NULL,
                     "events log line is not an event: %s", line);
        if (strcmp(e, ep) == 0 && n < RT_EVENTS) {
            snprintf(kinds[n], 32, "%s", k);
            if (to != NULL) {
                snprintf(to[n], 32, "%s", s ? s : "");
            }
            n++;
        }
        json_decref(o);
    }
    free(text);
    return n;
}


static size_t
event_kinds(const char *path, const char *ep, char kinds[][32])
{
    return event_kinds_to(path, ep, kinds, NULL);
}


/* The first index at or after <from> of <kind> among <n> <kinds>; -1 when
 * there is none (or <from> is negative). */
static int
event_index(char kinds[][32], size_t n, const char *kind, int from)
{
    size_t i;

    for (i = from < 0 ? n : (size_t)from; i < n; i++) {
        if (strcmp(kinds[i], kind) == 0) {
            return (int)i;
        }
    }
    return -1;
}


/* Whether endpoint <ep> has an event <kind> in the events log. */
static bool
event_seen(const char *path, const char *ep, const char *kind)
{
    char kinds[RT_EVENTS][32];
    size_t i, n = event_kinds(path, ep, kinds);

    for (i = 0; i < n; i++) {
        if (strcmp(kinds[i], kind) == 0) {
            return true;
        }
    }
    return false;
}


/* Wait (at most <timeout_ms>) for event <kind> of <ep>. */
static bool
event_wait(const char *path, const char *ep, const char *kind, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;

    while (!event_seen(path, ep, kind)) {
        if (tg_it_now_ms() >= deadline) {
            return false;
        }
        tg_it_sleep_ms(20);
    }
    return true;
}


/*
 * Check that the events of endpoint <ep> form one chain: each starts from
 * the state the one before it ended in (the first from "closed"), with
 * increasing event ids and time that does not run backwards.
 */
static void
event_chain_check(const char *path, const char *ep)
{
    char *text = tg_it_file_read(path, NULL), *line, *save = NULL;
    char state[32] = "closed";
    json_int_t last_id = -1, last_ms = 0;

    TG_IT_CHECK(text != NULL);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *from = tg_it_json_str(o, "from_state");
        const char *to = tg_it_json_str(o, "to_state");
        json_t *id = json_object_get(o, "event_id");
        json_t *ms = json_object_get(o, "time_ms");

        if (strcmp(tg_it_json_str(o, "endpoint"), ep) != 0) {
            json_decref(o);
            continue;
        }
        TG_IT_CHECKF(from != NULL && to != NULL && json_is_integer(id) &&
                         json_is_integer(ms),
                     "event without from_state, to_state, event_id or "
                     "time_ms: %s",
                     line);
        TG_IT_CHECKF(strcmp(from, state) == 0,
                     "%s went from %s, but its last state was %s: %s", ep, from,
                     state, line);
        TG_IT_CHECKF(json_integer_value(id) > last_id &&
                         json_integer_value(ms) >= last_ms,
                     "event out of order: %s", line);
        snprintf(state, sizeof(state), "%s", to);
        last_id = json_integer_value(id);
        last_ms = json_integer_value(ms);
        json_decref(o);
    }
    free(text);
}


/* Print the events log into the test's log. */
static void
events_note(const char *path)
{
    char *text = tg_it_file_read(path, NULL);

    tg_it_note("events log:\n%s", text ? text : "(none)");
    free(text);
}


/* ------------------------------------------------------------- tests */

#define SPREAD_REQUESTS 10000

static void
test_weighted_spread(void)
{
    static const int weight[RT_MOCKS] = {5, 3, 2};
    tg_it_proc_t lg;
    rt_t r;
    int i, got, want, total;

    rt_init(&r, "strategy = \"weighted\"; sticky = false;");
    tg_it_conf_set(&r.f.conf, "log.level", "\"info\"");
    for (i = 0; i < RT_MOCKS; i++) {
        snprintf(r.extra[i], sizeof(r.extra[i]),
                 "weight = %d; health_interval = 0;", weight[i]);
    }
    rt_start(&r);
    rt_loadgen_start(&r, &lg, 16, SPREAD_REQUESTS, 0);
    rt_loadgen_check(&lg, SPREAD_REQUESTS, 40000);
    total = rt_wait_total(&r, SPREAD_REQUESTS, 5000);
    TG_IT_CHECK_INT(total, SPREAD_REQUESTS);
    for (i = 0; i < RT_MOCKS; i++) {
        got = rt_count(&r, i, NULL);
        want = SPREAD_REQUESTS * weight[i] / 10;
        tg_it_note("%s: weight %d, %d requests, %d expected", rt_name[i],
                   weight[i], got, want);
        /* Within 3% of its share (5000 +- 150, 3000 +- 90, 2000 +- 60). */
        TG_IT_CHECKF(got * 100 >= want * 97 && got * 100 <= want * 103,
                     "%s (weight %d) got %d of %d requests, expected %d "
                     "+- 3%%",
                     rt_name[i], weight[i], got, SPREAD_REQUESTS, want);
    }
    rt_stop(&r);
}


#define LEASTCONN_REQUESTS 1200

static void
test_least_connections_avoids_slow(void)
{
    static const char *const slow[] = {"--fault", "slow-first-byte:300", NULL};
    tg_it_proc_t lg;
    rt_t r;
    int i, n[RT_MOCKS];

    rt_init(&r, "strategy = \"least-connections\"; sticky = false;");
    tg_it_conf_set(&r.f.conf, "log.level", "\"info\"");
    r.args[2] = slow;
    rt_start(&r);
    rt_loadgen_start(&r, &lg, 16, LEASTCONN_REQUESTS, 0);
    rt_loadgen_check(&lg, LEASTCONN_REQUESTS, 40000);
    TG_IT_CHECK_INT(rt_wait_total(&r, LEASTCONN_REQUESTS, 5000),
                    LEASTCONN_REQUESTS);
    for (i = 0; i < RT_MOCKS; i++) {
        n[i] = rt_count(&r, i, NULL);
        tg_it_note("%s: %d requests", rt_name[i], n[i]);
    }
    /* Equal weights: a third each by share.  The endpoint that holds
     * every request for 300 ms must get well under a quarter of that. */
    TG_IT_CHECKF(n[2] * 12 < LEASTCONN_REQUESTS,
                 "the slow endpoint got %d of %d requests (its share is a "
                 "third)",
                 n[2], LEASTCONN_REQUESTS);
    TG_IT_CHECKF(n[0] > LEASTCONN_REQUESTS / 4 && n[1] > LEASTCONN_REQUESTS / 4,
                 "the fast endpoints got %d and %d requests", n[0], n[1]);
    rt_stop(&r);
}


static void
test_killed_upstream_fails_over_and_returns(void)
{
    char kinds[RT_EVENTS][32];
    tg_it_proc_t lg;
    rt_t r;
    int before, after, i;
    size_t n;
    uint64_t t0;

    rt_init(&r, "strategy = \"round-robin\"; sticky = false; "
                "failure_threshold = 2; cooldown = 1;");
    tg_it_conf_set(&r.f.conf, "log.level", "\"info\"");
    tg_it_conf_set(&r.f.conf, "log.events", "\"%s\"", r.events);
    rt_start(&r);
    rt_loadgen_start(&r, &lg, 8, 0, 7);
    t0 = tg_it_now_ms();

    /* Under load, all three serve. */
    tg_it_sleep_ms(1000);
    TG_IT_CHECKF(rt_count(&r, 2, rt_msg_200) > 0, "%s got no traffic",
                 rt_name[2]);
    rt_mock_kill(&r, 2);
    TG_IT_CHECKF(event_wait(r.events, "ep-c", "opened", 2000),
                 "no \"opened\" event for ep-c within 2 s of its death");
    tg_it_note("ep-c opened after %llu ms",
               (unsigned long long)(tg_it_now_ms() - t0));

    /* Back on the same port: after the 1 s cool-down it gets traffic. */
    before = rt_count(&r, 2, rt_msg_200);
    rt_mock_start(&r, 2);
    TG_IT_CHECKF(tg_it_file_wait_count(r.ledger[2], rt_msg_200, before + 1,
                                       3500) > before,
                 "the restarted ep-c got no request within 3.5 s");
    tg_it_note("ep-c served again after %llu ms",
               (unsigned long long)(tg_it_now_ms() - t0));
    TG_IT_CHECKF(event_wait(r.events, "ep-c", "closed", 2000),
                 "no \"closed\" event for ep-c after it served again");
    TG_IT_CHECKF(tg_it_now_ms() - t0 < 6500,
                 "recovery took too long to happen under load");
    /* opened, then half_open (a probe), then closed; there may be more
     * than one round, if a probe found ep-c still dead. */
    n = event_kinds(r.events, "ep-c", kinds);
    i = event_index(kinds, n, "opened", 0);
    i = event_index(kinds, n, "half_open", i + 1);
    i = event_index(kinds, n, "closed", i + 1);
    TG_IT_CHECKF(i >= 0 && strcmp(kinds[n - 1], "closed") == 0,
                 "ep-c's events are not opened, half_open, closed");

    /* Not one request failed, and ep-c keeps taking its part. */
    rt_loadgen_check(&lg, 0, 20000);
    after = rt_count(&r, 2, rt_msg_200);
    tg_it_note("ep-c answered %d requests after its restart", after - before);
    TG_IT_CHECKF(after - before > 10,
                 "ep-c answered only %d requests after its restart",
                 after - before);
    events_note(r.events);
    rt_stop(&r);
}


#define OVERLOAD_REQUESTS 300

static void
test_529_is_invisible(void)
{
    static const char *const overloaded[] = {"--fault", "529", NULL};
    static const char *const s529[] = {"\"path\":\"/v1/messages\"",
                                       "\"status\":529", NULL};
    tg_it_proc_t lg;
    rt_t r;
    int i, n529;

    rt_init(&r, "strategy = \"round-robin\"; sticky = false;");
    tg_it_conf_set(&r.f.conf, "log.level", "\"info\"");
    r.args[2] = overloaded;
    rt_start(&r);
    /* One at a time first, so ep-c's turn comes up for sure. */
    for (i = 0; i < 6; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    rt_loadgen_start(&r, &lg, 8, OVERLOAD_REQUESTS, 0);
    rt_loadgen_check(&lg, OVERLOAD_REQUESTS, 30000);
    TG_IT_CHECK_INT(rt_wait_total(&r, OVERLOAD_REQUESTS + 6, 5000),
                    OVERLOAD_REQUESTS + 6);
    n529 = rt_count(&r, 2, s529);
    tg_it_note("ep-a %d, ep-b %d, ep-c %d (529: %d)", rt_count(&r, 0, NULL),
               rt_count(&r, 1, NULL), rt_count(&r, 2, NULL), n529);
    TG_IT_CHECKF(n529 >= 1, "ep-c never answered 529: the test did not test");
    TG_IT_CHECK_INT(rt_count(&r, 2, NULL), n529);
    rt_stop(&r);
}


static void
test_priority_tiers_fail_over_and_back(void)
{
    rt_t r;
    int i, a0, b0, c0, a1;
    uint64_t deadline;

    rt_init(&r, "strategy = \"weighted\"; sticky = false; "
                "failure_threshold = 2; cooldown = 1;");
    snprintf(r.extra[0], sizeof(r.extra[0]),
             "priority = \"primary\"; health_interval = 0;");
    snprintf(r.extra[1], sizeof(r.extra[1]),
             "priority = \"secondary\"; health_interval = 0;");
    snprintf(r.extra[2], sizeof(r.extra[2]),
             "priority = \"secondary\"; health_interval = 0;");
    rt_start(&r);

    /* The primary takes everything while it is up. */
    for (i = 0; i < 10; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    TG_IT_CHECK_INT(tg_it_file_wait_count(r.ledger[0], rt_msg_200, 10, 3000),
                    10);
    TG_IT_CHECK_INT(rt_count(&r, 1, NULL) + rt_count(&r, 2, NULL), 0);

    /* Primary down: the secondaries serve, and nobody sees an error. */
    rt_mock_kill(&r, 0);
    for (i = 0; i < 20; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    TG_IT_CHECK_INT(rt_wait_total(&r, 30, 3000), 30);
    b0 = rt_count(&r, 1, NULL);
    c0 = rt_count(&r, 2, NULL);
    tg_it_note("primary down: ep-b %d, ep-c %d", b0, c0);
    TG_IT_CHECK_INT(b0 + c0, 20);

    /* Primary back: once its cool-down has passed it is used again. */
    a0 = rt_count(&r, 0, NULL);
    rt_mock_start(&r, 0);
    deadline = tg_it_now_ms() + 5000;
    while (rt_count(&r, 0, NULL) == a0) {
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "the primary got no request within 5 s of its return");
        rt_send_ok(&r, NULL, NULL);
        tg_it_sleep_ms(50);
    }
    b0 = rt_count(&r, 1, NULL);
    c0 = rt_count(&r, 2, NULL);
    a1 = rt_count(&r, 0, rt_msg_200);
    for (i = 0; i < 10; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    TG_IT_CHECK_INT(
        tg_it_file_wait_count(r.ledger[0], rt_msg_200, a1 + 10, 3000), a1 + 10);
    TG_IT_CHECK_INT(rt_count(&r, 1, NULL), b0);
    TG_IT_CHECK_INT(rt_count(&r, 2, NULL), c0);
    rt_stop(&r);
}


/* Set mock <i>'s fault to <spec> (docs/mock-upstream.md). */
static void
rt_mock_fault(const rt_t *r, int i, const char *spec)
{
    tg_it_resp_t resp;

    tg_it_request(r->port[i], "POST", "/_mock/fault", NULL, spec, &resp);
    TG_IT_CHECKF(resp.status == 200, "mock %s refused fault \"%s\": %d",
                 rt_name[i], spec, resp.status);
    tg_it_resp_fini(&resp);
}


/*
 * An upstream that dies leaves every idle connection of the pool dead.
 * libcurl sends the request again on each dead one it picks (its own
 * re-sends, each an attempt in the logs), but they are all on one
 * endpoint: they must not use up the retries that take the request to
 * another endpoint.  Here ep-a, the primary, drops each reused connection
 * as the request arrives and resets a new one; ep-b serves.
 */
static void
test_resends_keep_the_retries(void)
{
    static const char *const resent[] = {"reused connection was closed", NULL};
    tg_it_proc_t lg;
    rt_t r;
    int n;

    rt_init(&r, "strategy = \"weighted\"; sticky = false; "
                "failure_threshold = 5;");
    tg_it_conf_set(&r.f.conf, "workers", "1");
    tg_it_conf_set(&r.f.conf, "log.level", "\"info\"");
    snprintf(r.extra[0], sizeof(r.extra[0]),
             "priority = \"primary\"; health_interval = 0;");
    snprintf(r.extra[1], sizeof(r.extra[1]),
             "priority = \"secondary\"; health_interval = 0;");
    r.down[2] = true;
    snprintf(r.extra[2], sizeof(r.extra[2]),
             "priority = \"secondary\"; health_interval = 0; "
             "enabled = false;");
    rt_start(&r);

    /* Four requests at once leave four connections in ep-a's pool. */
    rt_mock_fault(&r, 0, "slow-first-byte:300*4");
    rt_loadgen_start(&r, &lg, 4, 4, 0);
    rt_loadgen_check(&lg, 4, 10000);
    TG_IT_CHECK_INT(rt_count(&r, 0, rt_msg_200), 4);

    rt_mock_fault(&r, 0, "close-reused,reset-before*16");
    rt_send_ok(&r, NULL, NULL);
    TG_IT_CHECK_INT(tg_it_file_wait_count(r.ledger[1], rt_msg_200, 1, 2000), 1);
    n = tg_it_file_count(r.f.error_log, resent);
    tg_it_note("libcurl re-sent the request %d times on ep-a", n);
    TG_IT_CHECKF(n >= 2,
                 "only %d re-send(s): the pool did not hold dead connections",
                 n);
    rt_stop(&r);
}


#define STICKY_REQUESTS 100
#define STICKY_OTHERS   12

/* A Messages body of conversation <user> whose model is <model> (the
 * mock's ledger records the model, so it tags the request). */
static char *
sticky_body(const char *user, const char *model)
{
    char *s;

    TG_IT_CHECK(asprintf(&s,
                         "{\"model\":\"%s\",\"max_tokens\":64,"
                         "\"metadata\":{\"user_id\":\"%s\"},"
                         "\"messages\":[{\"role\":\"user\","
                         "\"content\":\"Hello\"}]}",
                         model, user) > 0);
    return s;
}


/* The mock that served requests for model <model>; fails the test unless
 * exactly one did, <want> times. */
static int
sticky_home(const rt_t *r, const char *model, int want)
{
    char needle[128];
    const char *const needles[] = {"\"path\":\"/v1/messages\"", needle, NULL};
    int i, n, total, home = -1;
    uint64_t deadline;

    snprintf(needle, sizeof(needle), "\"model\":\"%s\"", model);
    /* Ledger lines follow the answers closely: wait for all of them. */
    deadline = tg_it_now_ms() + 3000;
    do {
        for (i = 0, total = 0; i < RT_MOCKS; i++) {
            total += tg_it_file_count(r->ledger[i], needles);
        }
    } while (total < want && tg_it_now_ms() < deadline &&
             (tg_it_sleep_ms(10), true));
    TG_IT_CHECKF(total == want, "conversation %s: %d requests, %d expected",
                 model, total, want);
    for (i = 0; i < RT_MOCKS; i++) {
        n = tg_it_file_count(r->ledger[i], needles);
        if (n == 0) {
            continue;
        }
        TG_IT_CHECKF(n == want,
                     "conversation %s was split: %d of %d requests on %s",
                     model, n, want, rt_name[i]);
        home = i;
    }
    TG_IT_CHECKF(home >= 0, "no mock served conversation %s", model);
    return home;
}


static void
test_sticky_conversation(void)
{
    rt_t r;
    char model[64], user[128], *body;
    int i, k, home, used[RT_MOCKS] = {0}, nused = 0;

    rt_init(&r, "strategy = \"round-robin\"; sticky = true;");
    rt_start(&r);

    /* One conversation, 100 requests on new connections (so on both
     * workers): all on one endpoint, though round-robin would spread. */
    body = sticky_body("user_0123abcd_account__session_"
                       "1f0e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",
                       "claude-sticky-main");
    for (i = 0; i < STICKY_REQUESTS; i++) {
        rt_send_ok(&r, NULL, body);
    }
    free(body);
    home = sticky_home(&r, "claude-sticky-main", STICKY_REQUESTS);
    tg_it_note("the conversation lives on %s", rt_name[home]);

    /* Other conversations: each sticks to its own endpoint, and they do
     * not all share one. */
    for (k = 0; k < STICKY_OTHERS; k++) {
        snprintf(user, sizeof(user),
                 "user_0123abcd_account__session_other-%02d", k);
        snprintf(model, sizeof(model), "claude-sticky-%02d", k);
        body = sticky_body(user, model);
        for (i = 0; i < 3; i++) {
            rt_send_ok(&r, NULL, body);
        }
        free(body);
        i = sticky_home(&r, model, 3);
        nused += used[i] == 0;
        used[i]++;
    }
    tg_it_note("other conversations: ep-a %d, ep-b %d, ep-c %d", used[0],
               used[1], used[2]);
    TG_IT_CHECKF(nused >= 2,
                 "%d conversations all went to one endpoint under "
                 "round-robin",
                 STICKY_OTHERS);
    rt_stop(&r);
}


/*
 * From the access log: the number of POST /v1/messages lines, the most
 * attempts any of them took, and how many name endpoint <ep>.
 */
static int
access_attempts(const char *path, const char *ep, int *max_attempts, int *on_ep)
{
    char *text = tg_it_file_read(path, NULL), *line, *save = NULL;
    int n = 0;

    *max_attempts = 0;
    *on_ep = 0;
    if (text == NULL) {
        return 0;
    }
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        const char *p = strstr(line, "\"POST /v1/messages\"");
        char endpoint[64];
        int status, attempts;

        if (p == NULL) {
            continue;
        }
        TG_IT_CHECKF(sscanf(p + 19, " %d %*s %*s %*s %63s %*s %d", &status,
                            endpoint, &attempts) == 3,
                     "access log line not understood: %s", line);
        n++;
        *max_attempts = attempts > *max_attempts ? attempts : *max_attempts;
        *on_ep += strcmp(endpoint, ep) == 0;
    }
    free(text);
    return n;
}


/*
 * Admin's view of endpoint <ep> (GET /admin/api/status): its
 * health into <health> ("unknown", "healthy", "degraded", "unhealthy") and
 * whether it is available.  Fails the test when <ep> is not listed.
 */
static void
admin_endpoint(const rt_t *r, const char *ep, char *health, size_t len,
               bool *available)
{
    tg_it_resp_t resp;
    json_t *j, *eps, *e;
    size_t i;
    bool found = false;

    static char token[128];
    char auth[192];

    if (token[0] == '\0') {
        tg_it_admin_login((tg_it_fixture_t *)&r->f, token, sizeof(token));
    }
    snprintf(auth, sizeof(auth), "authorization: Bearer %s\r\n", token);
    tg_it_request(r->f.admin_port, "GET", "/admin/api/status", auth, NULL,
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "admin GET /admin/api/status: %d %.200s",
                 resp.status, resp.body ? resp.body : "");
    j = tg_it_json(&resp);
    /* A list of endpoints, or an object holding it as "endpoints". */
    eps = json_is_array(j) ? j : json_object_get(j, "endpoints");
    TG_IT_CHECKF(json_is_array(eps), "no endpoints in %.300s", resp.body);
    json_array_foreach(eps, i, e)
    {
        const char *name = tg_it_json_str(e, "name");
        const char *h = tg_it_json_str(e, "health");
        json_t *av = json_object_get(e, "available");

        if (name == NULL || strcmp(name, ep) != 0) {
            continue;
        }
        TG_IT_CHECKF(h != NULL && json_is_boolean(av),
                     "endpoint %s without health or available: %.300s", ep,
                     resp.body);
        snprintf(health, len, "%s", h);
        *available = json_is_true(av);
        found = true;
    }
    TG_IT_CHECKF(found, "admin does not list endpoint %s: %.300s", ep,
                 resp.body);
    json_decref(j);
    tg_it_resp_fini(&resp);
}


static void
test_health_check_marks_idle_endpoint_down(void)
{
    char health[32], kinds[RT_EVENTS][32], to[RT_EVENTS][32];
    bool available;
    rt_t r;
    int i, k, n, max_attempts, on_c;
    uint64_t t0, deadline;

    rt_init(&r, "strategy = \"round-robin\"; sticky = false;");
    tg_it_conf_set(&r.f.conf, "log.events", "\"%s\"", r.events);
    snprintf(r.extra[2], sizeof(r.extra[2]),
             "health_interval = 0.5; health_timeout = 0.5;");
    r.down[2] = true; /* nothing listens on ep-c's port */
    tg_it_admin_prepare(&r.f, NULL);
    rt_start(&r);

    /* No traffic at all: the checker alone must find ep-c down. */
    t0 = tg_it_now_ms();
    deadline = t0 + 5000;
    for (;;) {
        admin_endpoint(&r, "ep-c", health, sizeof(health), &available);
        if (strcmp(health, "unhealthy") == 0 && !available) {
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "admin still shows ep-c %s and %savailable 5 s after "
                     "start (health_interval 0.5 s)",
                     health, available ? "" : "not ");
        tg_it_sleep_ms(50);
    }
    tg_it_note("ep-c unhealthy after %llu ms",
               (unsigned long long)(tg_it_now_ms() - t0));
    /* Its neighbours, not probed, are unknown and available. */
    for (i = 0; i < 2; i++) {
        admin_endpoint(&r, rt_name[i], health, sizeof(health), &available);
        TG_IT_CHECK_STR(health, "unknown");
        TG_IT_CHECK(available);
    }
    /* The change is in the events log too. */
    deadline = tg_it_now_ms() + 2000;
    for (;;) {
        n = (int)event_kinds_to(r.events, "ep-c", kinds, to);
        for (k = 0; k < n; k++) {
            if (strcmp(kinds[k], "health") == 0 &&
                strcmp(to[k], "unhealthy") == 0) {
                break;
            }
        }
        if (k < n) {
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "no health event to unhealthy for ep-c in the events "
                     "log");
        tg_it_sleep_ms(50);
    }
    TG_IT_CHECK(access_attempts(r.f.access_log, "ep-c", &max_attempts, &on_c) ==
                0);

    /* Requests avoid it: no attempt on ep-c, so never a second one. */
    for (i = 0; i < 30; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    TG_IT_CHECK_INT(rt_wait_total(&r, 30, 3000), 30);
    deadline = tg_it_now_ms() + 3000;
    while ((n = access_attempts(r.f.access_log, "ep-c", &max_attempts, &on_c)) <
               30 &&
           tg_it_now_ms() < deadline) {
        tg_it_sleep_ms(20);
    }
    TG_IT_CHECK_INT(n, 30);
    TG_IT_CHECKF(max_attempts == 1 && on_c == 0,
                 "requests still tried ep-c: at most %d attempts, %d ended "
                 "on ep-c",
                 max_attempts, on_c);
    events_note(r.events);
    rt_stop(&r);
}


static void
test_breaker_events_in_order(void)
{
    static const char *const flaky[] = {"--fault", "500*2", NULL};
    static const char *const s500[] = {"\"path\":\"/v1/messages\"",
                                       "\"status\":500", NULL};
    char kinds[RT_EVENTS][32], to[RT_EVENTS][32];
    size_t n, i;
    rt_t r;
    uint64_t deadline;
    int sent = 0;

    rt_init(&r, "strategy = \"round-robin\"; sticky = false; "
                "failure_threshold = 2; cooldown = 1;");
    tg_it_conf_set(&r.f.conf, "log.events", "\"%s\"", r.events);
    r.args[2] = flaky;
    rt_start(&r);

    /* ep-c fails twice (its breaker opens), then answers again; after the
     * 1 s cool-down one probe goes through and closes it. */
    deadline = tg_it_now_ms() + 8000;
    while (!event_seen(r.events, "ep-c", "closed")) {
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "no \"closed\" event for ep-c within 8 s (%d requests, "
                     "%d answered 500 by ep-c)",
                     sent, rt_count(&r, 2, s500));
        rt_send_ok(&r, NULL, NULL);
        sent++;
        tg_it_sleep_ms(30);
    }
    TG_IT_CHECK_INT(rt_count(&r, 2, s500), 2);
    /* Let anything late reach the log (admin drains every 100 ms). */
    tg_it_sleep_ms(500);
    events_note(r.events);
    n = event_kinds_to(r.events, "ep-c", kinds, to);
    for (i = 0; i < n; i++) {
        tg_it_note("ep-c event %zu: %s (to %s)", i, kinds[i], to[i]);
    }
    TG_IT_CHECK_INT(n, 3);
    TG_IT_CHECK_STR(kinds[0], "opened");
    TG_IT_CHECK_STR(to[0], "open");
    TG_IT_CHECK_STR(kinds[1], "half_open");
    TG_IT_CHECK_STR(to[1], "half_open");
    TG_IT_CHECK_STR(kinds[2], "closed");
    TG_IT_CHECK_STR(to[2], "closed");
    event_chain_check(r.events, "ep-c");
    /* The healthy endpoints had no transition at all. */
    TG_IT_CHECK_INT(event_kinds(r.events, "ep-a", kinds), 0);
    TG_IT_CHECK_INT(event_kinds(r.events, "ep-b", kinds), 0);
    rt_stop(&r);
}


static void
test_client_error_not_retried(void)
{
    static const int codes[] = {400, 413, 422};
    static const char *const mock_type[] = {
        "invalid_request_error", "request_too_large", "invalid_request_error"};
    char hdr[64], needle[32], *line, *text;
    const char *const needles[] = {"\"path\":\"/v1/messages\"", needle, NULL};
    const char *rid;
    tg_it_resp_t resp;
    size_t k;
    rt_t r;
    int i, total, found;
    json_t *j, *l;

    rt_init(&r, "strategy = \"round-robin\"; sticky = false;");
    rt_start(&r);
    for (k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
        /* A header fault hits every endpoint: a retry would show up as a
         * second ledger line somewhere. */
        snprintf(hdr, sizeof(hdr), "x-mock-fault: %d\r\n", codes[k]);
        snprintf(needle, sizeof(needle), "\"status\":%d", codes[k]);
        TG_IT_CHECK(asprintf(&line, "%s%s", TG_IT_H_ANTHROPIC, hdr) > 0);
        tg_it_request(r.f.port, "POST", "/v1/messages", line,
                      TG_IT_BODY_MESSAGES, &resp);
        free(line);
        TG_IT_CHECK_INT(resp.status, codes[k]);
        TG_IT_CHECK(resp.complete);
        j = tg_it_json(&resp);
        TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), mock_type[k]);
        rid = tg_it_json_str(j, "request_id");
        TG_IT_CHECKF(rid != NULL,
                     "no request_id: the body is not the "
                     "upstream's: %s",
                     resp.body);

        /* Exactly one attempt, and the body is the one it answered. */
        tg_it_sleep_ms(300);
        for (i = 0, total = 0, found = -1; i < RT_MOCKS; i++) {
            int n = rt_count(&r, i, needles);

            total += n;
            found = n > 0 ? i : found;
        }
        TG_IT_CHECKF(total == 1, "%d upstream attempts for a %d", total,
                     codes[k]);
        text = tg_it_file_read(r.ledger[found], NULL);
        TG_IT_CHECK(text != NULL);
        line = strstr(text, needle);
        TG_IT_CHECK(line != NULL);
        while (line > text && line[-1] != '\n') {
            line--;
        }
        *strchrnul(line, '\n') = '\0';
        l = json_loads(line, 0, NULL);
        TG_IT_CHECKF(json_is_object(l), "ledger line: %s", line);
        TG_IT_CHECK_STR(rid, tg_it_json_str(l, "request_id"));
        json_decref(l);
        free(text);
        json_decref(j);
        tg_it_resp_fini(&resp);
    }
    /* The endpoints are none the worse for it. */
    for (i = 0; i < 6; i++) {
        rt_send_ok(&r, NULL, NULL);
    }
    rt_stop(&r);
}


const tg_it_test_t tg_it_routing_tests[] = {
    {"routing: 10,000 requests over weights 5/3/2 land within 3% of each "
     "endpoint's share",
     test_weighted_spread},
    {"routing: least-connections sends a slow endpoint far fewer requests "
     "than its share",
     test_least_connections_avoids_slow},
    {"routing: an upstream killed under load costs no client an error, its "
     "breaker opens, and after it returns and the cool-down passes it gets "
     "traffic again",
     test_killed_upstream_fails_over_and_returns},
    {"routing: libcurl's re-sends on an endpoint's dead pooled connections "
     "do not use up the retries to other endpoints",
     test_resends_keep_the_retries},
    {"routing: an endpoint answering 529 is invisible to clients",
     test_529_is_invisible},
    {"routing: with the primary tier down the secondary serves, and the "
     "primary is used again once it is back",
     test_priority_tiers_fail_over_and_back},
    {"routing: a sticky conversation stays on one endpoint across 100 "
     "requests, and other conversations spread",
     test_sticky_conversation},
    {"routing: the health checker marks an idle endpoint down and requests "
     "avoid it",
     test_health_check_marks_idle_endpoint_down},
    {"routing: every breaker transition is in the events log, in order",
     test_breaker_events_in_order},
    {"routing: an upstream 400, 413 or 422 is returned as is and not retried",
     test_client_error_not_retried},
    {NULL, NULL},
};
