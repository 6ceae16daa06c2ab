/*
 * tests/integration/test_hostile.c
 *      Hostile peers: an upstream that misbehaves in every way the mock
 *      can (tools/mock-fault.c), libcurl's re-send on a reused connection,
 *      and a descriptor flood under a low RLIMIT_NOFILE.
 *
 * NOTES
 *      Each test asserts that no worker dies (the master's children are
 *      the same processes at the end), that the client gets the right
 *      answer in its API's shape, that a normal request is served right
 *      after (or during) the abuse, that worker memory stays bounded, and
 *      that every request leaves exactly one usage record.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HS_RSS_MAX_KB (256 * 1024) /* worker RSS bound under abuse */


/* Lines in <path> containing <needle> (all lines when NULL). */
static int
hs_lines(const char *path, const char *needle)
{
    const char *const needles[] = {needle, NULL};

    return tg_it_file_count(path, needles);
}


/* Resident set of <pid> in KB, 0 when unknown. */
static long
hs_rss_kb(pid_t pid)
{
    char path[64], *text, *p;
    long kb = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    text = tg_it_file_read(path, NULL);
    if (text != NULL && (p = strstr(text, "VmRSS:")) != NULL) {
        kb = strtol(p + 6, NULL, 10);
    }
    free(text);
    return kb;
}


/* CPU time (user + system) of <pid> in clock ticks, -1 when unknown. */
static long
hs_cpu_ticks(pid_t pid)
{
    char path[64], *text, *p;
    unsigned long ut = 0, st = 0;
    long ticks = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    text = tg_it_file_read(path, NULL);
    /* Fields 14 and 15, counted after the command name's ')'. */
    if (text != NULL && (p = strrchr(text, ')')) != NULL &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) == 2) {
        ticks = (long)(ut + st);
    }
    free(text);
    return ticks;
}


/* The master's children (workers and admin), sorted; returns how many. */
static int
hs_children(const tg_it_fixture_t *f, pid_t *pids, int max)
{
    int n = tg_it_children(f->tg.pid, "", pids, max), i, j;

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && pids[j - 1] > pids[j]; j--) {
            pid_t t = pids[j];

            pids[j] = pids[j - 1];
            pids[j - 1] = t;
        }
    }
    return n;
}


/* No child of the master died or was replaced since <before> (<n>). */
static void
hs_check_children(const tg_it_fixture_t *f, const pid_t *before, int n)
{
    pid_t now[64];
    int m = hs_children(f, now, 64), i;

    TG_IT_CHECK_INT(m, n);
    for (i = 0; i < n && i < m; i++) {
        TG_IT_CHECKF(now[i] == before[i], "child %d replaced by %d (a crash)",
                     (int)before[i], (int)now[i]);
        TG_IT_CHECKF(hs_rss_kb(now[i]) < HS_RSS_MAX_KB,
                     "pid %d resident set %ld KB", (int)now[i],
                     hs_rss_kb(now[i]));
    }
}


/* A normal Messages request: 200 with a message. */
static void
hs_normal(const tg_it_fixture_t *f)
{
    tg_it_resp_t resp;

    tg_it_request(f->port, "POST", "/v1/messages", TG_IT_H_ANTHROPIC,
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(strstr(resp.body, "\"type\":\"message\"") != NULL);
    tg_it_resp_fini(&resp);
}


/* A Messages request with <headers> added; checks status <status> and,
 * for an error, the Anthropic error shape with type <type>. */
static void
hs_expect(const tg_it_fixture_t *f, const char *headers, const char *body,
          int status, const char *type)
{
    char h[1024];
    tg_it_resp_t resp;
    json_t *j;

    snprintf(h, sizeof(h), "%s%s", TG_IT_H_ANTHROPIC, headers);
    tg_it_request(f->port, "POST", "/v1/messages", h, body, &resp);
    TG_IT_CHECKF(resp.status == status, "%s: status %d, expected %d", headers,
                 resp.status, status);
    if (type != NULL) {
        j = tg_it_json(&resp);
        TG_IT_CHECK_STR(tg_it_json_str(j, "type"), "error");
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), type);
        TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
        json_decref(j);
    }
    tg_it_resp_fini(&resp);
}


/* Set the mock's global fault to <spec>. */
static void
hs_fault(const tg_it_fixture_t *f, const char *spec)
{
    tg_it_resp_t resp;

    tg_it_request(f->mock_port, "POST", "/_mock/fault", NULL, spec, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
}


/* Wait until <path> has <want> lines (at most 5 s); returns the count. */
static int
hs_wait_lines(const char *path, int want)
{
    uint64_t deadline = tg_it_now_ms() + 5000;
    int n;

    while ((n = hs_lines(path, NULL)) < want && tg_it_now_ms() < deadline) {
        tg_it_sleep_ms(50);
    }
    return n;
}


static void
hs_fixture(tg_it_fixture_t *f, char *usage, size_t len)
{
    tg_it_fixture_init(f);
    tg_it_path(usage, len, "usage.log");
    tg_it_conf_set(&f->conf, "usage.log", "\"%s\"", usage);
    tg_it_conf_set(&f->conf, "log.level", "\"info\"");
    tg_it_conf_set(&f->conf, "upstream.first_byte_timeout", "1");
    tg_it_conf_set(&f->conf, "upstream.read_timeout", "1");
    /* The sole endpoint of each API must stay in use whatever it does,
     * and answer for itself (no translation to the other one). */
    tg_it_conf_set(&f->conf, "groups",
                   "( { name = \"default\"; failure_threshold = 1000; "
                   "translate = false; } )");
}


/*
 * An upstream that answers garbage, hangs, resets, cuts its body short or
 * sends an error event: each client gets its answer in the Anthropic
 * shape, normal requests keep being served between them, no worker dies
 * or grows, and every request leaves one usage record.
 */
static void
test_hostile_upstream(void)
{
    static const struct {
        const char *headers;
        const char *body;
        int status;
        const char *type; /* error.type, NULL: not an error answer */
    } cases[] = {
        {"x-mock-fault: garbage\r\n", TG_IT_BODY_MESSAGES, 502, "api_error"},
        {"x-mock-fault: hang\r\n", TG_IT_BODY_MESSAGES, 504, "timeout_error"},
        {"x-mock-fault: reset-before\r\n", TG_IT_BODY_MESSAGES, 502,
         "api_error"},
        {"x-mock-fault: slow-first-byte:3000\r\n", TG_IT_BODY_MESSAGES, 504,
         "timeout_error"},
        {"x-mock-fault: 503\r\n", TG_IT_BODY_MESSAGES, 503, NULL},
        {"x-mock-fault: 529\r\n", TG_IT_BODY_MESSAGES, 529, "overloaded_error"},
        {"x-mock-fault: reset-mid\r\n", TG_IT_BODY_MESSAGES_STREAM, 200, NULL},
        {"x-mock-fault: error-mid\r\n", TG_IT_BODY_MESSAGES_STREAM, 200, NULL},
        {"x-mock-encoding: gzip-corrupt\r\naccept-encoding: gzip\r\n",
         TG_IT_BODY_MESSAGES, 200, NULL},
    };
    tg_it_fixture_t f;
    char usage[4096];
    pid_t before[64];
    int n, i, base;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_fixture_start(&f);
    n = hs_children(&f, before, 64);
    tg_it_sleep_ms(300);
    base = hs_lines(usage, NULL);
    for (i = 0; i < (int)TG_NELEMS(cases); i++) {
        hs_expect(&f, cases[i].headers, cases[i].body, cases[i].status,
                  cases[i].type);
        hs_normal(&f);
    }
    TG_IT_CHECK_INT(hs_wait_lines(usage, base + 2 * (int)TG_NELEMS(cases)),
                    base + 2 * (int)TG_NELEMS(cases));
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(hs_lines(usage, NULL), base + 2 * (int)TG_NELEMS(cases));
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


#define HS_BOMBS 8

/* Milliseconds a normal request takes, sent right after <raw> (a request
 * kept open on <a>, NULL for none) was sent to the same worker. */
static uint64_t
hs_behind(const tg_it_fixture_t *f, tg_it_conn_t *a, const char *raw)
{
    uint64_t t0;

    if (raw != NULL) {
        tg_it_conn_open(a, f->port);
        TG_IT_CHECK(tg_it_conn_send_str(a, raw) == TG_OK);
        tg_it_sleep_ms(5);
    }
    t0 = tg_it_now_ms();
    hs_normal(f);
    return tg_it_now_ms() - t0;
}


/*
 * Bombs stopped in <log> ("output out of proportion to input (N bytes"),
 * each checked to have stopped within 2 MiB of output: the work a bomb
 * costs, whatever the machine's load (before the bound, a 256 KB bomb
 * decoded 33 MiB, over 10 ms of a worker's time).
 */
static int
hs_decoded_max(const char *log)
{
    const char *key = "out of proportion to input (";
    char *text = tg_it_file_read(log, NULL), *p;
    unsigned long long out;
    int n = 0;

    for (p = text; p != NULL && (p = strstr(p, key)) != NULL; n++) {
        p += strlen(key);
        out = strtoull(p, NULL, 10);
        TG_IT_CHECKF(out < (2u << 20), "a bomb decoded %llu bytes", out);
    }
    free(text);
    return n;
}


/*
 * A compression bomb from the upstream (256 KB of gzip inflating to
 * 256 MiB): the client gets the bytes untouched, usage is recorded as
 * unknown with the reason logged, and a request sent to the same worker
 * right behind each bomb takes at most a few milliseconds longer than
 * the same request with no bomb, measured in the same run.
 */
static void
test_compression_bomb(void)
{
    static const char *const unknown[] = {"\"tokens_known\":false", NULL};
    tg_it_fixture_t f;
    tg_it_conn_t a;
    tg_it_resp_t resp, bomb;
    char usage[4096], *raw;
    uint64_t base_worst = 0, worst = 0, took;
    long cpu0, cpu1, cpu2;
    pid_t before[64], worker;
    int n, i, base;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "workers", "1");
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "30");
    tg_it_fixture_start(&f);
    n = hs_children(&f, before, 64);
    /* The mock builds its bomb once (a few seconds): not timed. */
    tg_it_request(f.mock_port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-fault: gzip-bomb\r\n",
                  TG_IT_BODY_MESSAGES, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(tg_it_children(f.tg.pid, "worker", &worker, 1), 1);
    base = hs_lines(usage, NULL);
    cpu0 = hs_cpu_ticks(worker);
    for (i = 0; i < HS_BOMBS; i++) {
        took = hs_behind(&f, NULL, NULL);
        base_worst = TG_MAX(base_worst, took);
    }
    cpu1 = hs_cpu_ticks(worker);
    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "accept-encoding: gzip\r\n"
                                                "x-mock-fault: gzip-bomb\r\n",
                              TG_IT_BODY_MESSAGES);
    for (i = 0; i < HS_BOMBS; i++) {
        took = hs_behind(&f, &a, raw);
        worst = TG_MAX(worst, took);
        TG_IT_CHECK(tg_it_conn_read(&a, &bomb, 10000) == TG_OK);
        TG_IT_CHECK_INT(bomb.status, 200);
        TG_IT_CHECK(bomb.complete);
        TG_IT_CHECKF(bomb.body_len > 100000 && bomb.body_len < 400000,
                     "bomb body of %zu bytes", bomb.body_len);
        tg_it_resp_fini(&bomb);
        tg_it_conn_close(&a);
    }
    free(raw);
    cpu2 = hs_cpu_ticks(worker);
    tg_it_note("a request behind a compression bomb took at most %llu ms, "
               "%llu ms with no bomb; worker CPU %ld ticks for %d bombs "
               "and their requests, %ld ticks for the requests alone",
               (unsigned long long)worst, (unsigned long long)base_worst,
               cpu2 - cpu1, HS_BOMBS, cpu1 - cpu0);
    /* A few ms on a quiet machine; the margin is for a loaded one. */
    TG_IT_CHECKF(worst < base_worst + 40,
                 "a request behind a bomb took %llu ms, %llu ms without",
                 (unsigned long long)worst, (unsigned long long)base_worst);
    TG_IT_CHECK_INT(hs_wait_lines(usage, base + 3 * HS_BOMBS),
                    base + 3 * HS_BOMBS);
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(hs_lines(usage, NULL), base + 3 * HS_BOMBS);
    TG_IT_CHECK_INT(tg_it_file_count(usage, unknown), HS_BOMBS);
    TG_IT_CHECK_INT(hs_decoded_max(f.error_log), HS_BOMBS);
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


/*
 * The upstream closes a reused keep-alive connection as the next request
 * arrives, without answering.  libcurl sends the request again on a new
 * connection by itself; that second POST is an attempt like any other:
 * the usage record and the access log say 2 attempts, and the upstream
 * saw both.
 */
static void
test_resend_on_reused_connection(void)
{
    static const char *const two[] = {"\"attempts\":2", NULL};
    tg_it_fixture_t f;
    char usage[4096];
    int base;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "workers", "1");
    tg_it_fixture_start(&f);
    hs_normal(&f); /* leaves a connection in the worker's pool */
    tg_it_sleep_ms(300);
    base = hs_lines(usage, NULL);
    hs_fault(&f, "close-reused*1");
    hs_normal(&f);
    TG_IT_CHECK_INT(hs_wait_lines(usage, base + 1), base + 1);
    TG_IT_CHECK_INT(tg_it_file_count(usage, two), 1);
    TG_IT_CHECK(tg_it_file_wait(f.error_log,
                                "the reused connection was closed without an "
                                "answer",
                                2000));
    TG_IT_CHECK_INT(hs_lines(f.ledger, "\"path\":\"/v1/messages\""), 3);
    tg_it_fixture_stop(&f);
}


#define HS_FLOOD 400

/*
 * A descriptor flood: tollgate runs with RLIMIT_NOFILE 96 (and without
 * the right to raise it), 400 idle connections arrive.  Accepting pauses
 * instead of spinning: the workers use little CPU, the error log gets a
 * handful of lines rather than one per failed accept, and once the flood
 * goes a normal request is served at once.  Master warned at start.
 */
static void
test_descriptor_flood(void)
{
    static const char *const paused[] = {"accepting paused", NULL};
    tg_it_fixture_t f;
    tg_it_conn_t *flood;
    char usage[4096], bin[4096], pbuf[64];
    char *argv[16];
    pid_t before[64];
    long cpu0 = 0, cpu1 = 0;
    uint64_t t0, t1;
    int n, i, opened = 0;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "workers", "2");
    tg_it_conf_set(&f.conf, "limits.max_connections", "1000");
    tg_it_conf_write(&f.conf, f.conf_path);
    tg_it_mock_start(&f.mock, "mock", f.mock_port, f.ledger, f.mock_args);
    snprintf(bin, sizeof(bin), "%s/tollgate", tg_it_build());
    snprintf(pbuf, sizeof(pbuf), "--nofile=96:96");
    i = 0;
    argv[i++] = "/usr/bin/prlimit";
    argv[i++] = pbuf;
    argv[i++] = "/usr/bin/setpriv";
    argv[i++] = "--bounding-set=-sys_resource";
    argv[i++] = "--inh-caps=-sys_resource";
    argv[i++] = bin;
    argv[i++] = "-c";
    argv[i++] = f.conf_path;
    argv[i] = NULL;
    tg_it_proc_start(&f.tg, "tollgate", argv);
    TG_IT_CHECK(tg_it_port_wait(f.port, 10000));
    TG_IT_CHECK(tg_it_port_wait(f.admin_port, 10000));
    tg_it_fixture_settle(&f);
    hs_normal(&f);
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "the descriptor limit is 96", 2000));
    n = hs_children(&f, before, 64);
    for (i = 0; i < n; i++) {
        cpu0 += hs_cpu_ticks(before[i]);
    }
    t0 = tg_it_now_ms();
    flood = calloc(HS_FLOOD, sizeof(*flood));
    TG_IT_CHECK(flood != NULL);
    for (i = 0; i < HS_FLOOD; i++) {
        if (tg_it_conn_try_open(&flood[i], f.port, 1000) != TG_OK) {
            break;
        }
        opened++;
    }
    tg_it_sleep_ms(2000);
    for (i = 0; i < n; i++) {
        cpu1 += hs_cpu_ticks(before[i]);
    }
    t1 = tg_it_now_ms();
    tg_it_note("%d connections opened; workers and admin used %ld ticks in "
               "%llu ms; %d pause warnings",
               opened, cpu1 - cpu0, (unsigned long long)(t1 - t0),
               tg_it_file_count(f.error_log, paused));
    TG_IT_CHECKF(opened > 200, "only %d connections", opened);
    /* 2 s of a spinning worker would be 200 ticks at 100 Hz. */
    TG_IT_CHECKF(cpu1 - cpu0 < 60, "%ld ticks of CPU during the flood",
                 cpu1 - cpu0);
    TG_IT_CHECK(tg_it_file_count(f.error_log, paused) >= 1);
    TG_IT_CHECK(tg_it_file_count(f.error_log, paused) <= 20);
    for (i = 0; i < opened; i++) {
        tg_it_conn_close(&flood[i]);
    }
    free(flood);
    tg_it_sleep_ms(300);
    t0 = tg_it_now_ms();
    hs_normal(&f);
    TG_IT_CHECKF(tg_it_now_ms() - t0 < 1000, "served after %llu ms",
                 (unsigned long long)(tg_it_now_ms() - t0));
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


/*
 * Client headers: a 20 KB header (under limits.header_bytes, over any
 * fixed line buffer) reaches the upstream whole; a head over the limit is
 * refused with 431 naming the limit, never cut.
 */
static void
test_client_header_limits(void)
{
    tg_it_fixture_t f;
    tg_it_proc_t tap;
    tg_it_resp_t resp;
    char e1[512], capture[4096], *hdr, *sent, *value;
    const char *msg;
    json_t *j;
    int tap_port;
    size_t i;

    tg_it_fixture_init(&f);
    tg_it_path(capture, sizeof(capture), "upstream-requests.txt");
    do {
        tap_port = tg_it_port_free();
    } while (tap_port == f.port || tap_port == f.admin_port ||
             tap_port == f.mock_port);
    tg_it_endpoint(e1, sizeof(e1), "a", tap_port, "anthropic", "primary");
    tg_it_conf_set(&f.conf, "endpoints", "( %s )", e1);
    tg_it_conf_set(&f.conf, "limits.header_bytes", "32768");
    tg_it_fixture_start(&f);
    tg_it_tap_start(&tap, tap_port, f.mock_port, capture);

    value = malloc(20001);
    hdr = malloc(40100);
    TG_IT_CHECK(value != NULL && hdr != NULL);
    for (i = 0; i < 20000; i++) {
        value[i] = (char)('a' + i % 26);
    }
    value[20000] = '\0';
    snprintf(hdr, 40100, "%sx-long-trace: %s\r\n", TG_IT_H_ANTHROPIC, value);
    tg_it_request(f.port, "POST", "/v1/messages", hdr, TG_IT_BODY_MESSAGES,
                  &resp);
    TG_IT_CHECKF(resp.status == 200, "status %d: %s", resp.status, resp.body);
    tg_it_resp_fini(&resp);
    /* The tap writes its capture as it relays: wait for it. */
    TG_IT_CHECKF(tg_it_file_wait(capture, value, 3000),
                 "the 20 KB header did not reach the upstream whole");
    sent = tg_it_file_read(capture, NULL);
    TG_IT_CHECK(sent != NULL);
    free(sent);

    snprintf(hdr, 40100, "%sx-long-trace: %s%s\r\n", TG_IT_H_ANTHROPIC, value,
             value);
    tg_it_request(f.port, "POST", "/v1/messages", hdr, TG_IT_BODY_MESSAGES,
                  &resp);
    TG_IT_CHECK_INT(resp.status, 431);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "invalid_request_error");
    msg = tg_it_json_str(j, "error.message");
    TG_IT_CHECKF(msg != NULL && strstr(msg, "limits.header_bytes") != NULL,
                 "431 message: %s", msg ? msg : "(none)");
    json_decref(j);
    tg_it_resp_fini(&resp);
    free(value);
    free(hdr);
    tg_it_proc_stop(&tap, 2000);
    tg_it_fixture_stop(&f);
}


/*
 * A client still sending a body tollgate refused (413 past
 * limits.body_bytes) gets the answer: the socket is closed lingeringly,
 * its input drained, so every byte the client sends is accepted and the
 * 413 arrives intact instead of being destroyed by a reset.
 */
static void
test_lingering_close(void)
{
    tg_it_fixture_t f;
    tg_it_conn_t c;
    tg_it_resp_t resp;
    char *chunk, head[512];
    json_t *j;
    int i, sent = 0;

    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "limits.body_bytes", "65536");
    tg_it_fixture_start(&f);
    chunk = malloc(65536);
    TG_IT_CHECK(chunk != NULL);
    memset(chunk, ' ', 65536);
    snprintf(head, sizeof(head),
             "POST /v1/messages HTTP/1.1\r\nhost: x\r\n%s"
             "content-length: 4194304\r\n\r\n",
             TG_IT_H_ANTHROPIC);
    tg_it_conn_open(&c, f.port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, head) == TG_OK);
    for (i = 0; i < 64; i++) {
        if (tg_it_conn_send(&c, chunk, 65536) != TG_OK) {
            break;
        }
        sent++;
    }
    TG_IT_CHECKF(sent == 64, "only %d of 64 pieces of the body went out", sent);
    TG_IT_CHECK(tg_it_conn_read(&c, &resp, 5000) == TG_OK);
    TG_IT_CHECK_INT(resp.status, 413);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), "request_too_large");
    json_decref(j);
    tg_it_resp_fini(&resp);
    TG_IT_CHECK(tg_it_conn_closed(&c, 3000));
    TG_IT_CHECKF(!c.reset, "the connection was reset");
    tg_it_conn_close(&c);
    free(chunk);
    hs_normal(&f);
    tg_it_fixture_stop(&f);
}


/*
 * An HTTPS upstream speaking HTTP/2 (nginx with http2 and a certificate
 * made for the test, in front of the mock): 50 simultaneous streams all
 * get their heads at once, and they share one TLS connection (nginx logs
 * the connection serial number of each request).
 */
static void
test_http2_multiplexed(void)
{
    enum { N = 50 };
    static tg_it_conn_t c[N];
    tg_it_fixture_t f;
    tg_it_proc_t ngx;
    char dir[4096], path[4096], cert[4096], key[4096];
    char e1[512], out[4096], *raw, *log, *line, *save = NULL;
    static char ngx_conf[65536];
    char *gen[] = {"/usr/bin/openssl",
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:prime256v1",
                   "-nodes",
                   "-days",
                   "1",
                   "-subj",
                   "/CN=127.0.0.1",
                   "-addext",
                   "subjectAltName=IP:127.0.0.1",
                   "-keyout",
                   key,
                   "-out",
                   cert,
                   NULL};
    char *argv[] = {"/usr/sbin/nginx", "-p", dir,           "-c", path, "-e",
                    "stderr",          "-g", "daemon off;", NULL};
    uint64_t start, worst = 0, t;
    int i, ngx_port, h2 = 0, conns[N], nconns = 0, k, n;

    if (access("/usr/sbin/nginx", X_OK) != 0) {
        tg_it_fail(__FILE__, __LINE__,
                   "nginx is not installed; run `make deps`");
    }
    tg_it_fixture_init(&f);
    tg_it_path(dir, sizeof(dir), "");
    tg_it_path(cert, sizeof(cert), "upstream.crt");
    tg_it_path(key, sizeof(key), "upstream.key");
    tg_it_path(path, sizeof(path), "nginx.conf");
    TG_IT_CHECK_INT(tg_it_run(gen, out, sizeof(out), 20000), 0);
    do {
        ngx_port = tg_it_port_free();
    } while (ngx_port == f.port || ngx_port == f.admin_port ||
             ngx_port == f.mock_port);
    n = snprintf(ngx_conf, sizeof(ngx_conf),
                 "user root;\nworker_processes 1;\npid %s/nginx.pid;\n"
                 "error_log %s/nginx-error.log info;\n"
                 "events { worker_connections 1024; }\n"
                 "http {\n"
                 "  log_format h2 '$connection $request_method "
                 "$server_protocol $status';\n"
                 "  access_log %s/nginx-access.log h2;\n"
                 "  client_body_temp_path %s/ngx-body;\n"
                 "  proxy_temp_path %s/ngx-proxy;\n"
                 "  fastcgi_temp_path %s/ngx-fcgi;\n"
                 "  uwsgi_temp_path %s/ngx-uwsgi;\n"
                 "  scgi_temp_path %s/ngx-scgi;\n"
                 "  server {\n"
                 "    listen 127.0.0.1:%d ssl http2;\n"
                 "    ssl_certificate %s;\n    ssl_certificate_key %s;\n"
                 "    http2_max_concurrent_streams 128;\n"
                 "    location / {\n"
                 "      proxy_pass http://127.0.0.1:%d;\n"
                 "      proxy_http_version 1.1;\n"
                 "      proxy_set_header Connection \"\";\n"
                 "      proxy_buffering off;\n"
                 "    }\n  }\n}\n",
                 dir, dir, dir, dir, dir, dir, dir, dir, ngx_port, cert, key,
                 f.mock_port);
    TG_IT_CHECK(n > 0 && (size_t)n < sizeof(ngx_conf));
    tg_it_file_write(path, ngx_conf);
    snprintf(e1, sizeof(e1),
             "{ name = \"h2\"; url = \"https://127.0.0.1:%d\"; "
             "style = \"anthropic\"; credential = \"" TG_IT_CRED "\"; "
             "tls_verify = false; }",
             ngx_port);
    tg_it_conf_set(&f.conf, "endpoints", "( %s )", e1);
    tg_it_conf_set(&f.conf, "workers", "1");
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "10");
    tg_it_fixture_start(&f);
    tg_it_proc_start(&ngx, "nginx", argv);
    TG_IT_CHECKF(tg_it_port_wait(ngx_port, 10000), "nginx did not start");
    /* One request first, so the connection exists and is known to speak
     * HTTP/2 when the burst comes. */
    hs_normal(&f);

    raw = tg_it_request_build("POST", "/v1/messages",
                              TG_IT_H_ANTHROPIC "x-mock-chunks: 20\r\n"
                                                "x-mock-delay-ms: 100\r\n",
                              TG_IT_BODY_MESSAGES_STREAM);
    for (i = 0; i < N; i++) {
        tg_it_conn_open(&c[i], f.port);
    }
    start = tg_it_now_ms();
    for (i = 0; i < N; i++) {
        TG_IT_CHECK(tg_it_conn_send_str(&c[i], raw) == TG_OK);
    }
    free(raw);
    for (i = 0; i < N; i++) {
        TG_IT_CHECKF(tg_it_conn_wait(&c[i], 12, 10000) == TG_OK,
                     "stream %d got no response head", i);
        t = tg_it_now_ms() - start;
        worst = t > worst ? t : worst;
        TG_IT_CHECKF(memcmp(c[i].buf, "HTTP/1.1 200", 12) == 0,
                     "stream %d: %.12s", i, c[i].buf);
    }
    for (i = 0; i < N; i++) {
        tg_it_resp_t resp;

        TG_IT_CHECK(tg_it_conn_read(&c[i], &resp, 10000) == TG_OK);
        TG_IT_CHECK(resp.complete);
        tg_it_resp_fini(&resp);
        tg_it_conn_close(&c[i]);
    }
    tg_it_proc_signal(&ngx, SIGQUIT);
    TG_IT_CHECK(tg_it_proc_wait(&ngx, 10000));
    tg_it_path(path, sizeof(path), "nginx-access.log");
    log = tg_it_file_read(path, NULL);
    TG_IT_CHECK(log != NULL);
    for (line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        int conn;

        if (sscanf(line, "%d", &conn) != 1 || strstr(line, " POST ") == NULL) {
            continue; /* not ours: admin's health checks */
        }
        h2 += strstr(line, "HTTP/2.0 200") != NULL;
        for (k = 0; k < nconns && conns[k] != conn; k++) {
        }
        if (k == nconns && nconns < N) {
            conns[nconns++] = conn;
        }
    }
    free(log);
    tg_it_note("%d heads within %llu ms; %d HTTP/2 requests over %d "
               "connection(s)",
               N, (unsigned long long)worst, h2, nconns);
    TG_IT_CHECKF(worst < 1500, "the last of %d heads came after %llu ms", N,
                 (unsigned long long)worst);
    TG_IT_CHECK_INT(h2, N + 1);
    TG_IT_CHECKF(nconns <= 2, "%d upstream connections for %d streams", nconns,
                 N + 1);
    tg_it_fixture_stop(&f);
}


#define HS_CORPUS     "tests/data/hostile/requests.txt"
#define HS_EXPECT_MAX 8

/* One case of the malformed-request corpus. */
typedef struct {
    char name[128];
    int nexpect;
    struct {
        int status;
        char shape[16]; /* "anthropic", "openai" or "-" */
        char type[48];  /* error.type or "-" */
    } expect[HS_EXPECT_MAX];
    char *raw; /* the bytes to send */
    size_t len;
} hs_case_t;


/* Decode the corpus escapes of <p> (<n> bytes) into a heap buffer. */
static char *
hs_unescape(const char *p, size_t n, size_t *len)
{
    size_t cap = n + 1, k = 0, i, rep;
    char *out = malloc(cap), *grown, last = 0;

    TG_IT_CHECK(out != NULL);
    for (i = 0; i < n; i++) {
        char ch = p[i];

        if (ch == '\\' && i + 1 < n) {
            ch = p[++i];
            if (ch == 'r') {
                ch = '\r';
            } else if (ch == 'n') {
                ch = '\n';
            } else if (ch == 't') {
                ch = '\t';
            } else if (ch == 'x' && i + 2 < n) {
                char hex[3] = {p[i + 1], p[i + 2], 0};

                ch = (char)strtol(hex, NULL, 16);
                i += 2;
            } else if (ch == '*') {
                rep = strtoul(p + i + 1, NULL, 10);
                while (i < n && p[i] != ';') {
                    i++;
                }
                if (k + rep + 1 > cap) {
                    cap = k + rep + n + 1;
                    grown = realloc(out, cap);
                    TG_IT_CHECK(grown != NULL);
                    out = grown;
                }
                memset(out + k, last, rep);
                k += rep;
                continue;
            }
        }
        if (k + 1 >= cap) {
            cap *= 2;
            grown = realloc(out, cap);
            TG_IT_CHECK(grown != NULL);
            out = grown;
        }
        out[k++] = ch;
        last = ch;
    }
    *len = k;
    return out;
}


/* Parse the corpus into <cases> (at most <max>); returns how many. */
static int
hs_corpus_load(hs_case_t *cases, int max)
{
    char *text = tg_it_file_read(HS_CORPUS, NULL), *line, *nl, *end;
    hs_case_t *c = NULL;
    int n = 0;

    TG_IT_CHECKF(text != NULL, "cannot read %s", HS_CORPUS);
    end = text + strlen(text);
    for (line = text; line < end; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) {
            nl = end;
        }
        *nl = '\0';
        if (strncmp(line, "== ", 3) == 0) {
            TG_IT_CHECK(n < max);
            c = &cases[n++];
            memset(c, 0, sizeof(*c));
            snprintf(c->name, sizeof(c->name), "%s", line + 3);
        } else if (strncmp(line, "expect ", 7) == 0 && c != NULL) {
            TG_IT_CHECK(c->nexpect < HS_EXPECT_MAX);
            TG_IT_CHECKF(sscanf(line + 7, "%d %15s %47s",
                                &c->expect[c->nexpect].status,
                                c->expect[c->nexpect].shape,
                                c->expect[c->nexpect].type) == 3,
                         "%s: bad line: %s", c->name, line);
            c->nexpect++;
        } else if (strncmp(line, "send ", 5) == 0 && c != NULL) {
            c->raw = hs_unescape(line + 5, strlen(line + 5), &c->len);
        }
    }
    free(text);
    return n;
}


/* Check one answer of case <c> against its expectation <i>. */
static void
hs_corpus_check(const hs_case_t *c, int i, tg_it_resp_t *resp)
{
    const char *type;
    json_t *j, *err;

    TG_IT_CHECKF(resp->status == c->expect[i].status,
                 "%s: answer %d is %d, expected %d", c->name, i + 1,
                 resp->status, c->expect[i].status);
    if (strcmp(c->expect[i].type, "-") == 0) {
        return;
    }
    j = tg_it_json(resp);
    err = tg_it_json_get(j, "error");
    type = tg_it_json_str(j, "error.type");
    TG_IT_CHECKF(json_is_object(err) && type != NULL &&
                     strcmp(type, c->expect[i].type) == 0,
                 "%s: error type %s, expected %s", c->name,
                 type ? type : "(none)", c->expect[i].type);
    TG_IT_CHECKF(tg_it_json_str(j, "error.message") != NULL,
                 "%s: no error.message", c->name);
    if (strcmp(c->expect[i].shape, "anthropic") == 0) {
        TG_IT_CHECKF(tg_it_json_str(j, "type") != NULL &&
                         strcmp(tg_it_json_str(j, "type"), "error") == 0,
                     "%s: not the Anthropic error shape", c->name);
    } else {
        TG_IT_CHECKF(tg_it_json_get(j, "type") == NULL,
                     "%s: not the OpenAI error shape", c->name);
    }
    json_decref(j);
}


#define HS_CASES_MAX 256

/*
 * The malformed-request corpus (tests/data/hostile/requests.txt): framing,
 * smuggling, header limits, bad encodings, pipelining.  Each case gets
 * exactly the answers listed, in the API's error shape, with no reset
 * before they are read; no worker dies or grows, and every answered
 * request leaves one usage record.
 */
static void
test_malformed_corpus(void)
{
    static hs_case_t cases[HS_CASES_MAX];
    tg_it_fixture_t f;
    tg_it_conn_t c;
    tg_it_resp_t resp;
    char usage[4096];
    pid_t before[64];
    int n, k, i, nchildren, base, answers = 0;

    n = hs_corpus_load(cases, HS_CASES_MAX);
    TG_IT_CHECKF(n >= 100, "only %d cases in %s", n, HS_CORPUS);
    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "workers", "1");
    tg_it_conf_set(&f.conf, "limits.header_timeout", "1");
    tg_it_conf_set(&f.conf, "limits.body_timeout", "1");
    tg_it_conf_set(&f.conf, "upstream.read_timeout", "5");
    tg_it_conf_set(&f.conf, "upstream.first_byte_timeout", "5");
    tg_it_fixture_start(&f);
    nchildren = hs_children(&f, before, 64);
    tg_it_sleep_ms(300);
    base = hs_lines(usage, NULL);
    for (k = 0; k < n; k++) {
        TG_IT_CHECKF(cases[k].raw != NULL && cases[k].nexpect > 0,
                     "%s: no send or expect line", cases[k].name);
        tg_it_conn_open(&c, f.port);
        /* The peer may refuse before everything is sent: not an error. */
        (void)tg_it_conn_send(&c, cases[k].raw, cases[k].len);
        for (i = 0; i < cases[k].nexpect; i++) {
            TG_IT_CHECKF(tg_it_conn_read(&c, &resp, 5000) == TG_OK,
                         "%s: no answer %d (%s)", cases[k].name, i + 1,
                         c.reset ? "reset"
                         : c.eof ? "closed"
                                 : "timeout");
            hs_corpus_check(&cases[k], i, &resp);
            tg_it_resp_fini(&resp);
            answers++;
        }
        tg_it_conn_close(&c);
        free(cases[k].raw);
        cases[k].raw = NULL;
    }
    hs_normal(&f);
    answers++;
    TG_IT_CHECK_INT(hs_wait_lines(usage, base + answers), base + answers);
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(hs_lines(usage, NULL), base + answers);
    hs_check_children(&f, before, nchildren);
    tg_it_note("%d cases, %d answers", n, answers);
    tg_it_fixture_stop(&f);
}


/* Send <raw> on a new connection to <f>, then half-close it (FIN).
 * Returns the bytes tollgate sent back before closing, in <got> (<cap>). */
static size_t
hs_half_close(const tg_it_fixture_t *f, const char *raw, char *got, size_t cap)
{
    tg_it_conn_t c;
    size_t n;

    tg_it_conn_open(&c, f->port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    TG_IT_CHECK(shutdown(c.fd, SHUT_WR) == 0);
    TG_IT_CHECK(tg_it_conn_closed(&c, 5000));
    n = c.len < cap - 1 ? c.len : cap - 1;
    memcpy(got, c.buf, n);
    got[n] = '\0';
    tg_it_conn_close(&c);
    return n;
}


/*
 * A client that half-closes (sends FIN) after its request is treated one
 * way every time: an answer tollgate gives by itself (an error, health)
 * is written; a request for the upstream is abandoned at once, its
 * transfer stopped and its usage recorded as client_gone, since a client
 * that closes is most often gone (nginx's default too).
 */
static void
test_half_close(void)
{
    static const char *const gone[] = {"\"outcome\":\"client_gone\"", NULL};
    tg_it_fixture_t f;
    char usage[4096], got[4096], *proxied, *bad_key;
    int i, base;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_fixture_start(&f);
    tg_it_sleep_ms(300);
    base = tg_it_file_count(usage, gone);
    proxied = tg_it_request_build("POST", "/v1/messages",
                                  TG_IT_H_ANTHROPIC
                                  "x-mock-fault: slow-first-byte:200\r\n",
                                  TG_IT_BODY_MESSAGES);
    bad_key = tg_it_request_build("POST", "/v1/messages",
                                  "x-api-key: wrong\r\n"
                                  "content-type: application/json\r\n",
                                  TG_IT_BODY_MESSAGES);
    for (i = 0; i < 3; i++) {
        TG_IT_CHECKF(hs_half_close(&f, proxied, got, sizeof(got)) == 0,
                     "a half-closed proxied request was answered: %.40s", got);
        hs_half_close(&f, bad_key, got, sizeof(got));
        TG_IT_CHECKF(strncmp(got, "HTTP/1.1 401", 12) == 0,
                     "a half-closed bad key got: %.40s", got);
        hs_half_close(&f, "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", got,
                      sizeof(got));
        TG_IT_CHECKF(strncmp(got, "HTTP/1.1 200", 12) == 0,
                     "a half-closed health check got: %.40s", got);
    }
    free(proxied);
    free(bad_key);
    TG_IT_CHECK(tg_it_file_wait(usage, "client_gone", 2000));
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(tg_it_file_count(usage, gone) - base, 3);
    hs_normal(&f);
    tg_it_fixture_stop(&f);
}


#define HS_IDLE 300
#define HS_SLOW 200

/*
 * Slowloris and idle floods at once: 300 connections that say nothing and
 * 200 that trickle a head one byte at a time.  Normal requests are served
 * meanwhile without delay, every flooding connection is answered 408 and
 * closed at header_timeout, and no worker dies or grows.
 */
static void
test_slow_and_idle_flood(void)
{
    static tg_it_conn_t idle[HS_IDLE], slow[HS_SLOW];
    tg_it_fixture_t f;
    char usage[4096];
    pid_t before[64];
    uint64_t t0, took, worst = 0;
    int n, i, round, closed = 0;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "limits.header_timeout", "2");
    tg_it_fixture_start(&f);
    n = hs_children(&f, before, 64);
    for (i = 0; i < HS_IDLE; i++) {
        tg_it_conn_open(&idle[i], f.port);
    }
    for (i = 0; i < HS_SLOW; i++) {
        tg_it_conn_open(&slow[i], f.port);
        (void)tg_it_conn_send_str(&slow[i], "POST /v1/messages HTTP/1.1\r\n");
    }
    for (round = 0; round < 5; round++) {
        for (i = 0; i < HS_SLOW; i++) {
            (void)tg_it_conn_send_str(&slow[i], "x");
        }
        t0 = tg_it_now_ms();
        hs_normal(&f);
        took = tg_it_now_ms() - t0;
        worst = took > worst ? took : worst;
        tg_it_sleep_ms(200);
    }
    for (i = 0; i < HS_IDLE + HS_SLOW; i++) {
        tg_it_conn_t *c = i < HS_IDLE ? &idle[i] : &slow[i - HS_IDLE];

        if (tg_it_conn_closed(c, 5000)) {
            closed++;
            TG_IT_CHECKF(c->len >= 12 &&
                             memcmp(c->buf, "HTTP/1.1 408", 12) == 0,
                         "connection %d: %.12s", i, c->len ? c->buf : "");
        }
        tg_it_conn_close(c);
    }
    tg_it_note("a normal request during the flood took at most %llu ms; "
               "%d of %d flooding connections answered 408 and closed",
               (unsigned long long)worst, closed, HS_IDLE + HS_SLOW);
    TG_IT_CHECKF(worst < 500, "a normal request took %llu ms",
                 (unsigned long long)worst);
    TG_IT_CHECK_INT(closed, HS_IDLE + HS_SLOW);
    hs_normal(&f);
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


/* A chat completions request with <headers> added: status <status> and
 * the OpenAI error shape with type <type>. */
static void
hs_expect_openai(const tg_it_fixture_t *f, const char *headers, int status,
                 const char *type)
{
    char h[1024];
    tg_it_resp_t resp;
    json_t *j;

    snprintf(h, sizeof(h), "%s%s", TG_IT_H_OPENAI, headers);
    tg_it_request(f->port, "POST", "/v1/chat/completions", h, TG_IT_BODY_CHAT,
                  &resp);
    TG_IT_CHECKF(resp.status == status, "%s: status %d, expected %d", headers,
                 resp.status, status);
    j = tg_it_json(&resp);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.type"), type);
    TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
    json_decref(j);
    tg_it_resp_fini(&resp);
}


/*
 * An upstream whose response head never ends (1 MiB of header lines, no
 * blank line) gets 502 in the client's API shape once the head passes
 * 64 KB, streaming or not; a stream that goes silent after its first
 * events is cut at read_timeout.  Normal requests are served between
 * them, no worker dies or grows, and each request leaves one record.
 */
static void
test_huge_head_and_silence(void)
{
    static const char *const broken[] = {"\"outcome\":\"broken\"", NULL};
    tg_it_fixture_t f;
    tg_it_resp_t resp;
    char usage[4096];
    pid_t before[64];
    uint64_t t0, took;
    int n, base;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_fixture_start(&f);
    n = hs_children(&f, before, 64);
    tg_it_sleep_ms(300);
    base = hs_lines(usage, NULL);
    hs_expect(&f, "x-mock-fault: huge-head\r\n", TG_IT_BODY_MESSAGES, 502,
              "api_error");
    hs_normal(&f);
    hs_expect(&f, "x-mock-fault: huge-head\r\n", TG_IT_BODY_MESSAGES_STREAM,
              502, "api_error");
    hs_normal(&f);
    hs_expect_openai(&f, "x-mock-fault: huge-head\r\n", 502, "api_error");
    hs_normal(&f);
    /* Head and first events, then nothing: cut after read_timeout (1 s);
     * the client's stream ends without message_stop, the record says
     * broken. */
    t0 = tg_it_now_ms();
    tg_it_request(f.port, "POST", "/v1/messages",
                  TG_IT_H_ANTHROPIC "x-mock-delay-ms: 600000\r\n",
                  TG_IT_BODY_MESSAGES_STREAM, &resp);
    took = tg_it_now_ms() - t0;
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(strstr(resp.body, "message_start") != NULL);
    TG_IT_CHECK(strstr(resp.body, "message_stop") == NULL);
    TG_IT_CHECK(!resp.complete);
    TG_IT_CHECKF(took >= 900 && took < 5000,
                 "silent stream ended after %llu ms", (unsigned long long)took);
    tg_it_resp_fini(&resp);
    hs_normal(&f);
    TG_IT_CHECK_INT(hs_wait_lines(usage, base + 8), base + 8);
    tg_it_sleep_ms(300);
    TG_IT_CHECK_INT(hs_lines(usage, NULL), base + 8);
    TG_IT_CHECK_INT(tg_it_file_count(usage, broken), 1);
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


/*
 * Open an endless stream (<extra> headers added), read <want> bytes of it
 * and leave; returns when the client closed, the time in <left>.
 */
static void
hs_endless_leave(const tg_it_fixture_t *f, const char *extra, size_t want,
                 uint64_t *left)
{
    char h[1024], *raw;
    tg_it_conn_t c;

    snprintf(h, sizeof(h), "%sx-mock-fault: endless\r\n%s", TG_IT_H_ANTHROPIC,
             extra);
    raw = tg_it_request_build("POST", "/v1/messages", h,
                              TG_IT_BODY_MESSAGES_STREAM);
    tg_it_conn_open(&c, f->port);
    TG_IT_CHECK(tg_it_conn_send_str(&c, raw) == TG_OK);
    free(raw);
    TG_IT_CHECK(tg_it_conn_wait(&c, want, 20000) == TG_OK);
    TG_IT_CHECKF(c.len >= want, "read %zu bytes of an endless stream", c.len);
    tg_it_conn_close(&c);
    *left = tg_it_now_ms();
}


/*
 * An SSE stream that never ends, read by a client that then leaves: the
 * drain after the client is gone stops at usage.drain_bytes when the
 * upstream sends fast, and at usage.drain_timeout when it sends slowly.
 * Each ends with one client_gone record; normal requests are served
 * during the drains; no worker dies or grows while 4 MB stream through.
 */
static void
test_endless_stream(void)
{
    static const char *const gone[] = {"\"outcome\":\"client_gone\"", NULL};
    tg_it_fixture_t f;
    char usage[4096];
    pid_t before[64];
    uint64_t left, fast, slow;
    int n, base, lines;

    hs_fixture(&f, usage, sizeof(usage));
    tg_it_conf_set(&f.conf, "usage.drain_bytes", "\"512k\"");
    tg_it_conf_set(&f.conf, "usage.drain_timeout", "2");
    tg_it_fixture_start(&f);
    n = hs_children(&f, before, 64);
    tg_it_sleep_ms(300);
    base = tg_it_file_count(usage, gone);
    lines = hs_lines(usage, NULL);
    /* Fast: 4 MB read, then the drain stops after 512 KB, long before its
     * deadline. */
    hs_endless_leave(&f, "", 4u << 20, &left);
    hs_normal(&f);
    TG_IT_CHECK_INT(tg_it_file_wait_count(usage, gone, base + 1, 10000),
                    base + 1);
    fast = tg_it_now_ms() - left;
    hs_check_children(&f, before, n);
    /* Slow (an event every 20 ms, under 10 KB/s): the drain stops at its
     * deadline. */
    hs_endless_leave(&f, "x-mock-delay-ms: 20\r\n", 2000, &left);
    hs_normal(&f);
    TG_IT_CHECK_INT(tg_it_file_wait_count(usage, gone, base + 2, 10000),
                    base + 2);
    slow = tg_it_now_ms() - left;
    hs_normal(&f);
    tg_it_note("the drain of an endless stream ended %llu ms after the "
               "client left (byte cap), %llu ms (deadline 2 s) when slow",
               (unsigned long long)fast, (unsigned long long)slow);
    TG_IT_CHECKF(fast < 1500, "fast drain took %llu ms",
                 (unsigned long long)fast);
    TG_IT_CHECKF(slow >= 1800 && slow < 6000, "slow drain took %llu ms",
                 (unsigned long long)slow);
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "at drain_timeout", 1000));
    tg_it_sleep_ms(300);
    /* Two streams and three normal requests, one record each. */
    TG_IT_CHECK_INT(hs_lines(usage, NULL) - lines, 5);
    TG_IT_CHECK_INT(tg_it_file_count(usage, gone), base + 2);
    hs_check_children(&f, before, n);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_hostile_tests[] = {
    {"hostile clients: slowloris and idle floods get 408 at header_timeout "
     "while other clients are served",
     test_slow_and_idle_flood},
    {"hostile clients: a client that half-closes after its request is "
     "treated the same way every time",
     test_half_close},
    {"hostile clients: a corpus of 100+ malformed requests gets the listed "
     "answers in the API's shape, and no worker dies",
     test_malformed_corpus},
    {"50 simultaneous streams to an HTTPS upstream speaking HTTP/2 start "
     "together over one multiplexed connection",
     test_http2_multiplexed},
    {"hostile clients: a 20 KB header is forwarded whole, and a head past "
     "limits.header_bytes gets 431 naming the limit",
     test_client_header_limits},
    {"hostile clients: after refusing a body still being sent, tollgate "
     "closes lingeringly and the 413 arrives without a reset",
     test_lingering_close},
    {"hostile upstream: garbage, hangs, resets, cut bodies and corrupt "
     "compression get API-shaped answers, no worker dies, others are served",
     test_hostile_upstream},
    {"hostile upstream: a compression bomb passes through untouched, its "
     "usage is unknown, and it delays no other request",
     test_compression_bomb},
    {"hostile upstream: a 1 MB response head gets 502 in the API's shape, "
     "a silent stream is cut at read_timeout",
     test_huge_head_and_silence},
    {"hostile upstream: the drain of an endless stream after its client "
     "left stops at drain_bytes or drain_timeout",
     test_endless_stream},
    {"hostile upstream: a reused connection closed without an answer makes "
     "libcurl send again, and that is counted as an attempt",
     test_resend_on_reused_connection},
    {"hostile clients: a descriptor flood under a low ulimit pauses "
     "accepting, costs little CPU and few log lines, and service resumes",
     test_descriptor_flood},
    {NULL, NULL},
};
