/*
 * tests/integration/test_usage_pg.c
 *      Usage in PostgreSQL: records reach usage_hourly exactly once,
 *      through a replayed journal, a database outage and admin killed
 *      with kill -9, and the token sums equal the mock upstream's ledger.
 *
 * NOTES
 *      Load: four loadgen runs at once, Anthropic and OpenAI, streaming
 *      and not, every body with "cache_control" so the mock reports cache
 *      reads and writes.  Expected sums come from the mock's ledger (one
 *      line per request it answered, with the usage it reported):
 *      Anthropic input = input_tokens, cache read = cache_read_input_
 *      tokens, cache write 5m = cache_creation_input_tokens; OpenAI input
 *      = prompt_tokens - cached_tokens (the ledger's input_tokens and
 *      cache_read_input_tokens), cache read = cached_tokens.  The request
 *      count must equal what loadgen sent; requests answered by tollgate
 *      itself (the fixture's /healthz) have no endpoint and are left out.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_usage_hosts.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BODY_A                                                                 \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":"         \
    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello "    \
    "there, a cached prompt\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}"
#define BODY_A_STREAM                                                          \
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"stream\":true,"      \
    "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","        \
    "\"text\":\"Hello streamed\",\"cache_control\":{\"type\":"                 \
    "\"ephemeral\"}}]}]}"
#define BODY_O                                                                 \
    "{\"model\":\"gpt-4o\",\"cache_control\":1,\"messages\":[{\"role\":"       \
    "\"user\",\"content\":\"Hello there, an OpenAI prompt\"}]}"
#define BODY_O_STREAM                                                          \
    "{\"model\":\"gpt-4o\",\"stream\":true,\"cache_control\":1,"               \
    "\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":"     \
    "\"user\",\"content\":\"Hello streamed OpenAI\"}]}"

/* Sums per token class, in usage_hourly's vocabulary. */
typedef struct {
    long long requests, input, output, cache_read, cache_5m, cache_1h;
    long long rejected, local; /* refused by tollgate; answered by itself */
    long long upstream_errors, client_gone, broken;
} sums_t;

typedef struct {
    tg_it_proc_t p;
    long long requests;
} load_t;


static void
pg_sums(const char *db, sums_t *s)
{
    const char *out = tg_it_pg_query(
        db, "SELECT coalesce(sum(requests),0), coalesce(sum(input_tokens),0),"
            " coalesce(sum(output_tokens),0),"
            " coalesce(sum(cache_read_tokens),0),"
            " coalesce(sum(cache_write_5m_tokens),0),"
            " coalesce(sum(cache_write_1h_tokens),0),"
            " coalesce(sum(rejected),0),"
            " coalesce(sum(requests - errors) FILTER (WHERE endpoint = ''),"
            " 0), coalesce(sum(upstream_errors),0),"
            " coalesce(sum(client_gone),0), coalesce(sum(broken_streams),0)"
            " FROM usage_hourly");

    memset(s, 0, sizeof(*s));
    TG_IT_CHECKF(sscanf(out,
                        "%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|%lld|"
                        "%lld",
                        &s->requests, &s->input, &s->output, &s->cache_read,
                        &s->cache_5m, &s->cache_1h, &s->rejected, &s->local,
                        &s->upstream_errors, &s->client_gone, &s->broken) == 11,
                 "unexpected sums: %s", out);
}


/* The integer after "\"<name>\":" in <line>; 0 when absent. */
static long long
field(const char *line, const char *name)
{
    char want[64];
    const char *p;

    snprintf(want, sizeof(want), "\"%s\":", name);
    p = strstr(line, want);
    return p != NULL ? strtoll(p + strlen(want), NULL, 10) : 0;
}


/* Expected sums from the mock's ledger (answered 200s only carry usage). */
static void
ledger_sums(const char *path, sums_t *s)
{
    char *text = tg_it_file_read(path, NULL), *line, *save = NULL;

    TG_IT_CHECKF(text != NULL, "no ledger at %s", path);
    memset(s, 0, sizeof(*s));
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        long long in = field(line, "input_tokens");
        long long cr = field(line, "cache_read_input_tokens");

        /* Health checks and model lists carry no usage. */
        if (strstr(line, "\"path\":\"/v1/messages\"") == NULL &&
            strstr(line, "\"path\":\"/v1/chat/completions\"") == NULL) {
            continue;
        }
        s->requests++;
        if (strstr(line, "/v1/chat/completions") != NULL) {
            s->input += in - cr;
        } else {
            s->input += in;
            s->cache_5m += field(line, "cache_creation_input_tokens");
        }
        s->cache_read += cr;
        /* An Anthropic stream cut before its message_delta (a fault in
         * the middle, or a client that left and was not drained) reported
         * only message_start's usage, whose output_tokens (1) is a
         * placeholder the worker never counts: no output is known. */
        if (strstr(line, "\"stream\":true") != NULL &&
            strstr(line, "/v1/messages") != NULL &&
            (strstr(line, "-mid\"") != NULL ||
             strstr(line, "\"completed\":false") != NULL)) {
            s->output += 0;
        } else {
            s->output += field(line, "output_tokens");
        }
    }
    free(text);
}


static void
load_start(load_t *l, const char *name, int port, const char *path,
           const char *body, int n, bool openai, int delay_ms)
{
    char bin[4096], url[128], nn[16], delay[48];
    char *argv[24];
    int i = 0;

    snprintf(bin, sizeof(bin), "%s/loadgen", tg_it_build());
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    snprintf(nn, sizeof(nn), "%d", n);
    snprintf(delay, sizeof(delay), "x-mock-delay-ms: %d", delay_ms);
    argv[i++] = bin;
    argv[i++] = "-u";
    argv[i++] = url;
    argv[i++] = "-c";
    argv[i++] = "1";
    argv[i++] = "-n";
    argv[i++] = nn;
    argv[i++] = "--body";
    argv[i++] = (char *)body;
    argv[i++] = "-H";
    argv[i++] =
        openai ? "authorization: Bearer " TG_IT_KEY : "x-api-key: " TG_IT_KEY;
    argv[i++] = "-H";
    argv[i++] = "anthropic-version: 2023-06-01";
    argv[i++] = "-H";
    argv[i++] = "x-mock-chunks: 8";
    argv[i++] = "-H";
    argv[i++] = delay;
    argv[i++] = "--timeout-s";
    argv[i++] = "50";
    argv[i] = NULL;
    tg_it_proc_start(&l->p, name, argv);
}


static long long
load_wait(load_t *l)
{
    char *out, *p;

    TG_IT_CHECKF(tg_it_proc_wait(&l->p, 55000), "loadgen ran too long");
    out = tg_it_file_read(l->p.out, NULL);
    TG_IT_CHECK(out != NULL);
    p = strstr(out, "requests=");
    l->requests = p != NULL ? strtoll(p + 9, NULL, 10) : -1;
    free(out);
    return l->requests;
}


/* Start the four loads: <n> requests of each non-streaming kind, <n> / 4
 * streams of each kind, each stream <delay_ms> per chunk (8 chunks). */
static void
loads_start(load_t l[4], int port, int n, int delay_ms)
{
    load_start(&l[0], "load-a", port, "/v1/messages", BODY_A, n, false, 0);
    load_start(&l[1], "load-as", port, "/v1/messages", BODY_A_STREAM, n / 4,
               false, delay_ms);
    load_start(&l[2], "load-o", port, "/v1/chat/completions", BODY_O, n, true,
               0);
    load_start(&l[3], "load-os", port, "/v1/chat/completions", BODY_O_STREAM,
               n / 4, true, delay_ms);
}


/*
 * <n> Anthropic streams over raw connections ("connection: close") with
 * the extra header lines <extra>: read to the end, or, with <leave>, only
 * until message_start has arrived, then close.  Bounded by a 10 s
 * receive timeout per read.
 */
static void
raw_streams(int port, const char *extra, bool leave, int n)
{
    static const char req[] =
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: "
        "close\r\n" TG_IT_H_ANTHROPIC "%scontent-length: %zu\r\n\r\n%s";
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {10, 0};
    char out[2048], in[16384];
    size_t have;
    ssize_t r;
    int i, fd, len;

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = snprintf(out, sizeof(out), req, extra, strlen(BODY_A_STREAM),
                   BODY_A_STREAM);
    for (i = 0; i < n; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        TG_IT_CHECK(fd != -1);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        TG_IT_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        TG_IT_CHECK(write(fd, out, (size_t)len) == len);
        have = 0;
        in[0] = '\0';
        while ((r = read(fd, in + have, sizeof(in) - 1 - have)) > 0) {
            have += (size_t)r;
            in[have] = '\0';
            if ((leave && strstr(in, "message_start") != NULL) ||
                have == sizeof(in) - 1) {
                break;
            }
        }
        TG_IT_CHECKF(strstr(in, "message_start") != NULL ||
                         strncmp(in, "HTTP/1.1 429", 12) == 0,
                     "no message_start: %.200s", in);
        close(fd);
    }
}


static long long
loads_wait(load_t l[4])
{
    long long total = 0;
    int i;

    for (i = 0; i < 4; i++) {
        total += load_wait(&l[i]);
    }
    return total;
}


/* A fixture on a database of its own, with its journal in the test
 * directory; started, database ready.  Requests tollgate answers itself
 * (the fixture's /healthz) have no endpoint and are left out of the
 * counts. */
static void
start_db(tg_it_fixture_t *f, char *db, size_t len, bool detail)
{
    char spool[4096];
    tg_it_resp_t resp;
    int i;

    tg_it_pg_db_create(db, len);
    tg_it_fixture_init(f);
    tg_it_conf_set(&f->conf, "database", "\"%s\"", db);
    tg_it_conf_set(&f->conf, "log.level", "\"info\"");
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"",
                   tg_it_path(spool, sizeof(spool), "spool"));
    tg_it_conf_set(&f->conf, "usage.detail", "%s", detail ? "true" : "false");
    /* The load breaks streams on purpose: keep the endpoints' breakers
     * closed through the injected failures, so every request the load
     * sends reaches the upstream it is counted against. */
    tg_it_conf_set(&f->conf, "groups",
                   "( { name = \"default\"; failure_threshold = 1000; } )");
    tg_it_fixture_start(f);
    for (i = 0; i < 200; i++) {
        tg_it_request(f->admin_port, "GET", "/healthz", NULL, NULL, &resp);
        if (resp.body != NULL && strstr(resp.body, "\"ready\"") != NULL) {
            tg_it_resp_fini(&resp);
            tg_it_sleep_ms(300);
            return;
        }
        tg_it_resp_fini(&resp);
        tg_it_sleep_ms(100);
    }
    tg_it_fail(__FILE__, __LINE__, "the database never got ready");
}


/* Wait until PostgreSQL holds <requests> requests; fails after
 * <timeout_ms>. */
static void
wait_requests(const char *db, long long requests, int timeout_ms)
{
    uint64_t end = tg_it_now_ms() + (uint64_t)timeout_ms;
    sums_t s;

    for (;;) {
        pg_sums(db, &s);
        s.requests -= s.local;
        if (s.requests >= requests || tg_it_now_ms() > end) {
            break;
        }
        tg_it_sleep_ms(200);
    }
    TG_IT_CHECKF(s.requests == requests,
                 "usage_hourly holds %lld requests, the load sent %lld",
                 s.requests, requests);
}


/* PostgreSQL's sums equal the ledger's, class by class. */
static void
check_ledger(const char *db, const char *ledger, long long sent)
{
    sums_t got, want;

    wait_requests(db, sent, 20000);
    pg_sums(db, &got);
    ledger_sums(ledger, &want);
    tg_it_note("sent %lld; pg: %lld req (%lld rejected, %lld local), in "
               "%lld out %lld cr %lld cw5 %lld; "
               "ledger: %lld req, in %lld out %lld cr %lld cw5 %lld",
               sent, got.requests, got.rejected, got.local, got.input,
               got.output, got.cache_read, got.cache_5m, want.requests,
               want.input, want.output, want.cache_read, want.cache_5m);
    /* Every request the load sent reached the mock, unless tollgate
     * refused it itself (limits). */
    TG_IT_CHECK_INT(want.requests + got.rejected, sent);
    TG_IT_CHECK_INT(got.input, want.input);
    TG_IT_CHECK_INT(got.output, want.output);
    TG_IT_CHECK_INT(got.cache_read, want.cache_read);
    TG_IT_CHECK_INT(got.cache_5m, want.cache_5m);
    TG_IT_CHECK_INT(got.cache_1h, 0);
    TG_IT_CHECK(want.cache_read > 0 && want.cache_5m > 0);
}


/* PostgreSQL's error classes equal the access log's outcomes. */
static void
check_outcomes(const char *db, const char *access_log)
{
    static const char *const ue[] = {" upstream_error ", NULL};
    static const char *const cg[] = {" client_gone ", NULL};
    static const char *const br[] = {" broken ", NULL};
    static const char *const rj[] = {" rejected ", NULL};
    sums_t got;

    pg_sums(db, &got);
    TG_IT_CHECK_INT(got.upstream_errors, tg_it_file_count(access_log, ue));
    TG_IT_CHECK_INT(got.client_gone, tg_it_file_count(access_log, cg));
    TG_IT_CHECK_INT(got.broken, tg_it_file_count(access_log, br));
    TG_IT_CHECK_INT(got.rejected, tg_it_file_count(access_log, rj));
}


/* Kill admin (the child named "admin") with SIGKILL; master respawns it. */
static void
kill_admin(tg_it_fixture_t *f)
{
    pid_t pids[4];
    int n = tg_it_children(f->tg.pid, "admin", pids, 4);

    TG_IT_CHECKF(n == 1, "found %d admin processes", n);
    TG_IT_CHECK(kill(pids[0], SIGKILL) == 0);
    tg_it_note("killed admin %d", (int)pids[0]);
}


static void
test_records_reach_pg(void)
{
    tg_it_fixture_t f;
    load_t l[4];
    char db[512], path[4096];
    const char *out;
    long long sent;
    uint64_t zero = 0;
    int fd;

    start_db(&f, db, sizeof(db), true);
    /* Prices are seeded and published before the load, so every request
     * is priced. */
    TG_IT_CHECK(
        tg_it_file_wait(f.error_log, "model prices from the price", 10000));
    tg_it_sleep_ms(500);
    loads_start(l, f.port, 40, 5);
    sent = loads_wait(l);
    TG_IT_CHECK_INT(sent, 100);
    check_ledger(db, f.ledger, sent);
    /* Each row's cost is exactly its tokens at the seeded list prices
     * (endpoints' price_factor is 1), and nothing went unpriced. */
    out = tg_it_pg_query(
        db, "SELECT count(*), bool_and(h.cost_usd = "
            "(h.input_tokens * p.input_usd_per_mtok"
            " + h.output_tokens * p.output_usd_per_mtok"
            " + h.cache_read_tokens * p.cache_read_usd_per_mtok"
            " + h.cache_write_5m_tokens * p.cache_write_5m_usd_per_mtok"
            " + h.cache_write_1h_tokens * p.cache_write_1h_usd_per_mtok)"
            " / 1000000), sum(h.unpriced_requests), sum(h.cost_usd) > 0"
            " FROM usage_hourly h JOIN model_prices p ON p.pattern ="
            " CASE h.model WHEN 'gpt-4o' THEN 'gpt-4o'"
            " ELSE 'claude-sonnet-4-5*' END WHERE h.endpoint <> ''");
    TG_IT_CHECKF(strstr(out, "|t|0|t") != NULL, "costs: %s", out);
    /* usage.detail: one usage_requests row per request, in this month's
     * partition, with the same token sums. */
    out = tg_it_pg_query(
        db, "SELECT count(*), sum(input_tokens), sum(output_tokens),"
            " (SELECT sum(input_tokens) || '|' || sum(output_tokens)"
            " FROM usage_hourly WHERE endpoint <> '')"
            " FROM usage_requests WHERE endpoint <> ''");
    tg_it_note("detail: %s", out);
    {
        long long n = 0, in = -1, outp = -1, hin = -2, hout = -2;

        TG_IT_CHECK(sscanf(out, "%lld|%lld|%lld|%lld|%lld", &n, &in, &outp,
                           &hin, &hout) == 5);
        TG_IT_CHECK_INT(n, sent);
        TG_IT_CHECK_INT(in, hin);
        TG_IT_CHECK_INT(outp, hout);
    }
    out = tg_it_pg_query(db, "SELECT count(*) FROM usage_batches");
    tg_it_note("%s batches", out);
    /* The usage API's function answers in the same vocabulary. */
    out = tg_it_pg_query(db, "SELECT tg_api.usage_list('{\"role\":\"admin\"}', "
                             "'{\"group_by\":\"model\"}')");
    TG_IT_CHECKF(strstr(out, "\"model\": \"gpt-4o\"") != NULL &&
                     strstr(out, "\"cache_read_tokens\"") != NULL,
                 "usage_list: %s", out);

    /* Replay: forget every acknowledgement, as if admin had died between
     * each commit and its ack; the batches go again and change nothing. */
    TG_IT_CHECK(tg_it_proc_stop(&f.tg, 10000) == 0);
    fd = open(tg_it_path(path, sizeof(path), "spool/usage.state"), O_WRONLY);
    TG_IT_CHECK(fd != -1);
    TG_IT_CHECK(pwrite(fd, &zero, 8, 16) == 8);
    TG_IT_CHECK(pwrite(fd, &zero, 8, 24) == 8);
    close(fd);
    f.no_mock = true;
    tg_it_fixture_start(&f);
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "database ready", 20000));
    tg_it_sleep_ms(2500);
    check_ledger(db, f.ledger, sent);
    tg_it_fixture_stop(&f);
}


/*
 * The accuracy test: a mixed load while admin is killed twice and
 * PostgreSQL stops for 10 s; afterwards PostgreSQL's token sums equal
 * the ledger's exactly and the request count equals what was sent.
 */
static void
test_accuracy(void)
{
    tg_it_fixture_t f;
    load_t l[4];
    char db[512];
    long long sent;

    start_db(&f, db, sizeof(db), false);
    /* About 15 s of load, so it spans both kills and the outage. */
    loads_start(l, f.port, 400, 25);
    tg_it_sleep_ms(1500);
    kill_admin(&f);
    tg_it_sleep_ms(1500);
    tg_it_pg_stop();
    /* While the database is down: streams that break in the middle, and
     * clients that leave. */
    raw_streams(f.port, "x-mock-fault: reset-mid\r\nx-mock-chunks: 6\r\n",
                false, 10);
    raw_streams(f.port, "x-mock-fault: error-mid\r\nx-mock-chunks: 6\r\n",
                false, 10);
    raw_streams(f.port, "x-mock-chunks: 40\r\nx-mock-delay-ms: 20\r\n", true,
                10);
    tg_it_sleep_ms(8000);
    tg_it_pg_start();
    tg_it_sleep_ms(1000);
    kill_admin(&f);
    sent = loads_wait(l) + 30;
    TG_IT_CHECK_INT(sent, 1030);
    check_ledger(db, f.ledger, sent);
    check_outcomes(db, f.access_log);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_usage_pg_tests[] = {
    {"usage records reach usage_hourly once, also when replayed",
     test_records_reach_pg},
    {"usage in PostgreSQL equals the upstream ledger through admin kills "
     "and a database outage",
     test_accuracy},
    {"one user's daily token quota holds across two hosts on one database: "
     "both refuse with a 429 naming it, the overrun within the bound",
     tg_it_usage_quota_two_hosts},
    {"admin purges usage_batches rows older than usage.batch_retention in "
     "bounded chunks and keeps recent ones",
     tg_it_usage_batches_purged},
    {NULL, NULL},
};
