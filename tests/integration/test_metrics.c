/*
 * tests/integration/test_metrics.c
 *      GET /metrics: the exposition is valid (promtool when installed, and
 *      always a strict parser of the text format 0.0.4 here), and its
 *      counters match a known load exactly.
 *
 * NOTES
 *      The parser checks what a scraper relies on: HELP and TYPE once per
 *      family and before its samples, the samples of a family together,
 *      metric and label names and escaped label values by the grammar,
 *      numeric values, no series twice, counters named *_total, and per
 *      histogram series cumulative buckets ending in le="+Inf" equal to
 *      _count.  A worker publishes its counts when a request is finalized,
 *      which is right after the last byte left, so the load checks poll
 *      the scrape briefly until the totals are in.
 */
#include "core/core.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RPM_KEY   "tg-it-metrics-rpm-limited-0123"
#define QUOTA_KEY "tg-it-metrics-quota-limited-012"
#define MAX_FAM   128

/* ------------------------------------------------------------ parser */

typedef struct {
    char name[128];
    char type[16];
    bool help, closed;
} fam_t;

static fam_t fams[MAX_FAM];
static int nfams;


static fam_t *
fam_find(const char *name, bool add)
{
    int i;

    for (i = 0; i < nfams; i++) {
        if (strcmp(fams[i].name, name) == 0) {
            return &fams[i];
        }
    }
    if (!add) {
        return NULL;
    }
    TG_IT_CHECK(nfams < MAX_FAM);
    memset(&fams[nfams], 0, sizeof(fams[0]));
    snprintf(fams[nfams].name, sizeof(fams[0].name), "%s", name);
    return &fams[nfams++];
}


static bool
name_ok(const char *s, size_t n, bool label)
{
    size_t i;

    if (n == 0 || isdigit((unsigned char)s[0])) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
              (!label && s[i] == ':'))) {
            return false;
        }
    }
    return true;
}


/* Parse the labels at <p> ("{...}" or nothing) into <norm> (without
 * le); the le value to <le>.  Returns the position after them. */
static const char *
labels_parse(const char *p, int line, char *norm, size_t cap, char *le,
             size_t lecap)
{
    size_t n = 0;

    norm[0] = le[0] = '\0';
    if (*p != '{') {
        return p;
    }
    p++;
    while (*p != '}') {
        const char *k = p, *v;
        char val[512];
        size_t vn = 0;

        while (*p != '=' && *p != '\0' && *p != '\n') {
            p++;
        }
        TG_IT_CHECKF(*p == '=' && name_ok(k, (size_t)(p - k), true),
                     "line %d: bad label name", line);
        TG_IT_CHECKF(p[1] == '"', "line %d: label value not quoted", line);
        p += 2;
        v = p;
        while (*p != '"') {
            TG_IT_CHECKF(*p != '\0' && *p != '\n', "line %d: open value", line);
            if (*p == '\\') {
                TG_IT_CHECKF(p[1] == '\\' || p[1] == '"' || p[1] == 'n',
                             "line %d: bad escape", line);
                p++;
            }
            if (vn + 1 < sizeof(val)) {
                val[vn++] = *p;
            }
            p++;
        }
        val[vn] = '\0';
        p++;
        if ((size_t)(v - 2 - k) == 2 && strncmp(k, "le", 2) == 0) {
            snprintf(le, lecap, "%.63s", val);
        } else {
            n += (size_t)snprintf(norm + n, cap - n, "%.*s=\"%s\",",
                                  (int)(v - 2 - k), k, val);
            TG_IT_CHECK(n < cap);
        }
        if (*p == ',') {
            p++;
        } else {
            TG_IT_CHECKF(*p == '}', "line %d: expected , or }", line);
        }
    }
    return p + 1;
}


typedef struct {
    char key[700]; /* family + labels without le */
    double last;   /* last cumulative bucket */
    bool inf;
    double inf_v;
} hist_t;

static hist_t hs[2048];
static int nh;


/* One sample <v> of histogram family <fam> (<name> with its _bucket, _sum
 * or _count suffix, labels <norm> without le, <le>) at <line>: buckets
 * cumulative, +Inf last, _count equal to +Inf. */
static void
hist_add(const char *fam, const char *name, const char *norm, const char *le,
         double v, int line)
{
    char key[700];
    hist_t *h = NULL;
    int i;

    snprintf(key, sizeof(key), "%s{%s}", fam, norm);
    for (i = 0; i < nh; i++) {
        if (strcmp(hs[i].key, key) == 0) {
            h = &hs[i];
        }
    }
    if (h == NULL) {
        TG_IT_CHECK(nh < 2048);
        h = &hs[nh++];
        memset(h, 0, sizeof(*h));
        snprintf(h->key, sizeof(h->key), "%s", key);
    }
    if (strcmp(name + strlen(fam), "_bucket") == 0) {
        TG_IT_CHECKF(le[0] != '\0' && !h->inf,
                     "line %d: bucket without le or after +Inf", line);
        TG_IT_CHECKF(v >= h->last, "line %d: buckets not cumulative", line);
        h->last = v;
        if (strcmp(le, "+Inf") == 0) {
            h->inf = true;
            h->inf_v = v;
        }
    } else if (strcmp(name + strlen(fam), "_count") == 0) {
        TG_IT_CHECKF(h->inf && h->inf_v == v,
                     "line %d: _count differs from le=+Inf", line);
    }
}


/* A HELP or TYPE line <p> .. <eol> at <line>; returns its family. */
static fam_t *
meta_line(const char *p, const char *eol, int line)
{
    bool help = p[2] == 'H';
    const char *q = p + 7;
    size_t n = strcspn(q, " \n");
    char name[128];
    fam_t *f;

    TG_IT_CHECKF(name_ok(q, n, false) && n < sizeof(name),
                 "line %d: bad family name", line);
    memcpy(name, q, n);
    name[n] = '\0';
    f = fam_find(name, true);
    TG_IT_CHECKF(!f->closed && (help ? !f->help : f->type[0] == 0),
                 "line %d: %s of %s repeated or late", line,
                 help ? "HELP" : "TYPE", name);
    if (help) {
        f->help = true;
        return f;
    }
    snprintf(f->type, sizeof(f->type), "%.*s", (int)(eol - q - n - 1),
             q + n + 1);
    TG_IT_CHECKF(strcmp(f->type, "counter") == 0 ||
                     strcmp(f->type, "gauge") == 0 ||
                     strcmp(f->type, "histogram") == 0,
                 "line %d: type \"%s\"", line, f->type);
    TG_IT_CHECKF(strcmp(f->type, "counter") != 0 ||
                     (n > 6 && strcmp(name + n - 6, "_total") == 0),
                 "line %d: counter %s without _total", line, name);
    TG_IT_CHECKF(strncmp(name, "tollgate_", 9) == 0,
                 "line %d: %s lacks the prefix", line, name);
    return f;
}


/*
 * Check <text> strictly; fails the test at the first fault.  Returns the
 * number of samples.
 */
static int
expo_check(const char *text)
{
    static char seen[4096][720];
    int nseen = 0, line = 0, samples = 0, i;
    const char *p = text;
    fam_t *cur = NULL;

    nfams = 0;
    nh = 0;
    TG_IT_CHECKF(*text != '\0', "empty exposition");
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        char name[128], fam[128], norm[512], le[64], key[720], *end;
        const char *q;
        size_t n;
        double v;
        fam_t *f;

        line++;
        TG_IT_CHECKF(eol != NULL, "line %d: no final line feed", line);
        if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
            f = meta_line(p, eol, line);
            if (cur != NULL && cur != f) {
                cur->closed = true;
            }
            cur = f;
            p = eol + 1;
            continue;
        }
        TG_IT_CHECKF(*p != '#' && *p != '\n', "line %d: stray line", line);
        n = strcspn(p, "{ ");
        TG_IT_CHECKF(name_ok(p, n, false) && n < sizeof(name),
                     "line %d: bad metric name", line);
        memcpy(name, p, n);
        name[n] = '\0';
        q = labels_parse(p + n, line, norm, sizeof(norm), le, sizeof(le));
        TG_IT_CHECKF(*q == ' ', "line %d: no value", line);
        v = strtod(q + 1, &end);
        TG_IT_CHECKF(end != q + 1 && (*end == '\n' || *end == ' '),
                     "line %d: bad value", line);
        snprintf(fam, sizeof(fam), "%s", name);
        f = fam_find(fam, false);
        if (f == NULL) {
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};

            for (i = 0; i < 3 && f == NULL; i++) {
                size_t k = strlen(sfx[i]);

                if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
                    snprintf(fam, sizeof(fam), "%.*s", (int)(n - k), name);
                    f = fam_find(fam, false);
                }
            }
        }
        TG_IT_CHECKF(f != NULL && f->type[0] != '\0',
                     "line %d: %s has no TYPE before it", line, name);
        TG_IT_CHECKF(f == cur && !f->closed,
                     "line %d: %s apart from its family", line, name);
        snprintf(key, sizeof(key), "%s{%s}le=%s", name, norm, le);
        for (i = 0; i < nseen; i++) {
            TG_IT_CHECKF(strcmp(seen[i], key) != 0, "line %d: series twice: %s",
                         line, key);
        }
        TG_IT_CHECK(nseen < 4096);
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", key);
        TG_IT_CHECKF(v >= 0 || strcmp(f->type, "gauge") == 0,
                     "line %d: negative %s", line, f->type);
        if (strcmp(f->type, "histogram") == 0) {
            hist_add(fam, name, norm, le, v, line);
        } else {
            TG_IT_CHECKF(le[0] == '\0', "line %d: le outside a histogram",
                         line);
        }
        samples++;
        p = eol + 1;
    }
    for (i = 0; i < nh; i++) {
        TG_IT_CHECKF(hs[i].inf, "histogram %s has no +Inf", hs[i].key);
    }
    return samples;
}


/* The value of series <series> (name and labels exactly as exposed);
 * -1 when absent. */
static double
expo_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p += n;
    }
    return -1;
}


/* ------------------------------------------------------------ helpers */

/* GET /metrics from admin; the body (heap) and its content type. */
static char *
scrape(int port, char *ctype, size_t len)
{
    tg_it_resp_t resp;
    char *body;

    tg_it_request(port, "GET", "/metrics", NULL, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    TG_IT_CHECK(resp.complete);
    if (ctype != NULL) {
        TG_IT_CHECK(tg_it_resp_header(&resp, "content-type", ctype, len) !=
                    NULL);
    }
    body = strdup(resp.body);
    TG_IT_CHECK(body != NULL);
    tg_it_resp_fini(&resp);
    return body;
}


/* Scrape until <series> reaches <want> (at most 5 s); the last text. */
static char *
scrape_until(int port, const char *series, double want)
{
    uint64_t deadline = tg_it_now_ms() + 5000;
    char *text;

    for (;;) {
        text = scrape(port, NULL, 0);
        if (expo_value(text, series) >= want || tg_it_now_ms() > deadline) {
            return text;
        }
        free(text);
        tg_it_sleep_ms(50);
    }
}


/* promtool check metrics on <text>, when promtool is installed. */
static void
promtool_check(const char *text)
{
    const char *tool =
        getenv("TG_PROMTOOL") ? getenv("TG_PROMTOOL") : "/usr/bin/promtool";
    char path[4096], cmd[9000], out[8192];
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    int rc;

    if (access(tool, X_OK) != 0) {
        tg_it_note("promtool not installed: strict parser only");
        return;
    }
    tg_it_path(path, sizeof(path), "metrics.txt");
    tg_it_file_write(path, text);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", tool, path);
    rc = tg_it_run(argv, out, sizeof(out), 20000);
    TG_IT_CHECKF(rc == 0 && out[0] == '\0', "promtool: exit %d: %s", rc, out);
}


/* One request of <api> (0 Messages, 1 Chat, 2 Messages streamed) with
 * <key>; returns the status. */
static int
one(int port, int api, const char *key)
{
    char hdr[512];
    tg_it_resp_t resp;
    int status;

    snprintf(hdr, sizeof(hdr),
             api == 1 ? "authorization: Bearer %s\r\n"
                        "content-type: application/json\r\n"
                      : "x-api-key: %s\r\nanthropic-version: 2023-06-01\r\n"
                        "content-type: application/json\r\n",
             key);
    tg_it_request(port, "POST",
                  api == 1 ? "/v1/chat/completions" : "/v1/messages", hdr,
                  api == 0   ? TG_IT_BODY_MESSAGES
                  : api == 1 ? TG_IT_BODY_CHAT
                             : TG_IT_BODY_MESSAGES_STREAM,
                  &resp);
    TG_IT_CHECK(resp.complete);
    status = resp.status;
    tg_it_resp_fini(&resp);
    return status;
}


/* ------------------------------------------------------------- tests */

static void
test_exposition_valid(void)
{
    tg_it_fixture_t f;
    char ctype[128], *text;
    int n;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    /* Before any request, and after a few of each kind. */
    text = scrape(f.admin_port, ctype, sizeof(ctype));
    TG_IT_CHECK_STR(ctype, "text/plain; version=0.0.4; charset=utf-8");
    n = expo_check(text);
    TG_IT_CHECK(n > 20);
    promtool_check(text);
    free(text);
    TG_IT_CHECK_INT(one(f.port, 0, TG_IT_KEY), 200);
    TG_IT_CHECK_INT(one(f.port, 1, TG_IT_KEY), 200);
    TG_IT_CHECK_INT(one(f.port, 2, TG_IT_KEY), 200);
    TG_IT_CHECK_INT(one(f.port, 0, "tg-it-no-such-key-000000000"), 401);
    text = scrape_until(f.admin_port,
                        "tollgate_refusals_total{reason=\"auth\"}", 1);
    n = expo_check(text);
    tg_it_note("%d samples, %zu bytes", n, strlen(text));
    promtool_check(text);
    /* Nothing names a key or a user. */
    TG_IT_CHECK(strstr(text, TG_IT_KEY) == NULL);
    TG_IT_CHECK(strstr(text, "key=") == NULL && strstr(text, "user=") == NULL);
    free(text);
    tg_it_fixture_stop(&f);
}


/* What the known load did. */
typedef struct {
    double in1, out1;    /* tokens of one chat request */
    int ok_rpm, refused; /* the rpm-limited key: passed, refused */
    int ok_quota, over;  /* the quota-limited key: passed, refused */
} load_t;


/* Start the fixture and send the known load: 1 + 9 chat, 19 Messages, 5
 * streamed Messages, 3 unknown keys, 6 on an rpm-limited key and 6 on a
 * quota-limited one. */
static void
known_load(tg_it_fixture_t *f, load_t *l)
{
    char *text;
    int i, st;

    memset(l, 0, sizeof(*l));
    tg_it_fixture_init(f);
    tg_it_conf_set(
        &f->conf, "users",
        "( { name = \"alice\"; keys = ( { key = \"" RPM_KEY
        "\"; rpm = 6; burst = 2; } ); }, { name = \"quinn\"; "
        "quota_tokens = 100; quota_period = \"day\"; keys = ( \"" QUOTA_KEY
        "\" ); } )");
    tg_it_fixture_start(f);
    /* One chat request: its tokens are the unit of the check. */
    TG_IT_CHECK_INT(one(f->port, 1, TG_IT_KEY), 200);
    text = scrape_until(f->admin_port,
                        "tollgate_model_requests_total{model=\"gpt-4o\"}", 1);
    l->in1 = expo_value(text, "tollgate_tokens_total{model=\"gpt-4o\","
                              "class=\"input\"}");
    l->out1 = expo_value(text, "tollgate_tokens_total{model=\"gpt-4o\","
                               "class=\"output\"}");
    TG_IT_CHECK(l->in1 > 0 && l->out1 > 0);
    free(text);
    for (i = 0; i < 19; i++) {
        TG_IT_CHECK_INT(one(f->port, 0, TG_IT_KEY), 200);
    }
    for (i = 0; i < 9; i++) {
        TG_IT_CHECK_INT(one(f->port, 1, TG_IT_KEY), 200);
    }
    for (i = 0; i < 5; i++) {
        TG_IT_CHECK_INT(one(f->port, 2, TG_IT_KEY), 200);
    }
    for (i = 0; i < 3; i++) {
        TG_IT_CHECK_INT(one(f->port, 1, "tg-it-no-such-key-000000000"), 401);
    }
    for (i = 0; i < 12; i++) {
        st = one(f->port, 0, i < 6 ? RPM_KEY : QUOTA_KEY);
        TG_IT_CHECK(st == 200 || st == 429);
        *(i < 6 ? &l->ok_rpm : &l->ok_quota) += st == 200;
        *(i < 6 ? &l->refused : &l->over) += st == 429;
    }
    TG_IT_CHECK(l->refused > 0 && l->over > 0);
}


static void
test_counts_known_load(void)
{
    tg_it_fixture_t f;
    double want;
    char *text;
    load_t l;

    known_load(&f, &l);
    want = 19 + 5 + l.ok_rpm + l.ok_quota;
    text = scrape_until(f.admin_port,
                        "tollgate_request_duration_seconds_count{endpoint=\""
                        "none\"}",
                        3 + l.refused + l.over);
    free(text);
    text = scrape_until(f.admin_port,
                        "tollgate_request_duration_seconds_count{endpoint=\""
                        "mock-anthropic\"}",
                        want);
    expo_check(text);
    promtool_check(text);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_requests_total{endpoint=\""
                                     "mock-anthropic\",api=\"anthropic\","
                                     "code=\"2xx\"}"),
                    want);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_requests_total{endpoint=\""
                                     "mock-openai\",api=\"openai\","
                                     "code=\"2xx\"}"),
                    10);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_requests_total{endpoint=\""
                                     "none\",api=\"openai\",code=\"4xx\"}"),
                    3);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_requests_total{endpoint=\""
                                     "none\",api=\"anthropic\",code=\"4xx\"}"),
                    l.refused + l.over);
    TG_IT_CHECK_INT(
        expo_value(text, "tollgate_refusals_total{reason=\"auth\"}"), 3);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_refusals_total{reason=\"rpm\"}"),
                    l.refused);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_refusals_total{reason=\""
                                     "quota_tokens\"}"),
                    l.over);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_time_to_first_byte_seconds_"
                                     "count{endpoint=\"mock-openai\"}"),
                    10);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_upstream_attempts_total{"
                                     "endpoint=\"mock-openai\"}"),
                    10);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_upstream_retries_total{"
                                     "endpoint=\"mock-anthropic\"}"),
                    0);
    TG_IT_CHECK_INT(
        expo_value(text, "tollgate_model_requests_total{model=\"gpt-4o\"}"),
        10);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_model_requests_total{model=\""
                                     "claude-sonnet-4-5\"}"),
                    want);
    /* Ten identical chat requests: exactly ten times the tokens of one. */
    TG_IT_CHECK_INT(expo_value(text, "tollgate_tokens_total{model=\"gpt-4o\","
                                     "class=\"input\"}"),
                    10 * l.in1);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_tokens_total{model=\"gpt-4o\","
                                     "class=\"output\"}"),
                    10 * l.out1);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_process_restarts_total{role=\""
                                     "worker\"}"),
                    0);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_client_connections"), 0);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_requests_in_flight"), 0);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_endpoint_breaker_state{"
                                     "endpoint=\"mock-anthropic\",state=\""
                                     "closed\"}"),
                    1);
    free(text);
    tg_it_fixture_stop(&f);
}


static void
test_restart_keeps_counts(void)
{
    tg_it_fixture_t f;
    pid_t kids[8];
    char *text;
    int i, n;

    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    tg_it_fixture_settle(&f);
    for (i = 0; i < 8; i++) {
        TG_IT_CHECK_INT(one(f.port, 1, TG_IT_KEY), 200);
    }
    text = scrape_until(f.admin_port,
                        "tollgate_model_requests_total{model=\"gpt-4o\"}", 8);
    TG_IT_CHECK_INT(
        expo_value(text, "tollgate_model_requests_total{model=\"gpt-4o\"}"), 8);
    free(text);
    n = tg_it_children(f.tg.pid, "worker", kids, 8);
    TG_IT_CHECK(n >= 1);
    TG_IT_CHECK(kill(kids[0], SIGKILL) == 0);
    text = scrape_until(f.admin_port,
                        "tollgate_process_restarts_total{role=\"worker\"}", 1);
    TG_IT_CHECK_INT(expo_value(text, "tollgate_process_restarts_total{role=\""
                                     "worker\"}"),
                    1);
    /* The dead worker's counts stay: counters never go back. */
    TG_IT_CHECK_INT(
        expo_value(text, "tollgate_model_requests_total{model=\"gpt-4o\"}"), 8);
    free(text);
    tg_it_fixture_settle(&f);
    TG_IT_CHECK_INT(one(f.port, 1, TG_IT_KEY), 200);
    text = scrape_until(f.admin_port,
                        "tollgate_model_requests_total{model=\"gpt-4o\"}", 9);
    TG_IT_CHECK_INT(
        expo_value(text, "tollgate_model_requests_total{model=\"gpt-4o\"}"), 9);
    expo_check(text);
    free(text);
    tg_it_fixture_stop(&f);
}


/* Expected cost in USD of the ledger's answered requests for <model>, at
 * <in_usd> and <out_usd> per million input and output tokens (no cache:
 * the bodies carry no cache_control); their count into <*n>. */
static double
ledger_cost(const char *ledger, const char *model, double in_usd,
            double out_usd, int *n)
{
    char *text = tg_it_file_read(ledger, NULL), *line, *save = NULL;
    double usd = 0;

    *n = 0;
    TG_IT_CHECK(text != NULL);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_object_get(j, "model"));

        if (m != NULL && strcmp(m, model) == 0 &&
            json_integer_value(json_object_get(j, "status")) == 200) {
            usd +=
                (double)json_integer_value(json_object_get(j, "input_tokens")) *
                    in_usd / 1e6 +
                (double)json_integer_value(
                    json_object_get(j, "output_tokens")) *
                    out_usd / 1e6;
            (*n)++;
        }
        json_decref(j);
    }
    free(text);
    return usd;
}


/*
 * The cost counter of a known priced load: with a database, the shipped
 * prices (conf/prices.json: gpt-4o $2.50 in and $10 out per million
 * tokens, claude-sonnet-4-5 $3 and $15) are in shared memory, and
 * tollgate_cost_usd_total by model equals what the upstream's own ledger
 * of tokens costs at those prices, to the pico-dollar the workers count
 * in.
 */
static void
test_cost_known_load(void)
{
    tg_it_fixture_t f;
    char tok[256], *text;
    double want, got;
    int i, n;

    tg_it_fixture_init(&f);
    tg_it_admin_prepare(&f, NULL);
    tg_it_fixture_start(&f);
    tg_it_admin_login(&f, tok, sizeof(tok));
    TG_IT_CHECK(tg_it_file_wait(f.error_log, "model prices", 10000));
    for (i = 0; i < 7; i++) {
        TG_IT_CHECK_INT(one(f.port, 1, TG_IT_KEY), 200);
    }
    for (i = 0; i < 4; i++) {
        TG_IT_CHECK_INT(one(f.port, i % 2 == 0 ? 0 : 2, TG_IT_KEY), 200);
    }
    text = scrape_until(f.admin_port,
                        "tollgate_model_requests_total{model=\"gpt-4o\"}", 7);
    free(text);
    text = scrape_until(f.admin_port,
                        "tollgate_model_requests_total{model=\""
                        "claude-sonnet-4-5\"}",
                        4);
    want = ledger_cost(f.ledger, "gpt-4o", 2.5, 10, &n);
    TG_IT_CHECK_INT(n, 7);
    got = expo_value(text, "tollgate_cost_usd_total{model=\"gpt-4o\"}");
    tg_it_note("gpt-4o: cost %.12f, expected %.12f", got, want);
    TG_IT_CHECK(want > 0);
    TG_IT_CHECKF(fabs(got - want) < 1e-12 * 7 + 1e-15,
                 "gpt-4o cost %.12f, expected %.12f", got, want);
    want = ledger_cost(f.ledger, "claude-sonnet-4-5", 3, 15, &n);
    TG_IT_CHECK_INT(n, 4);
    got = expo_value(text, "tollgate_cost_usd_total{model=\""
                           "claude-sonnet-4-5\"}");
    tg_it_note("claude-sonnet-4-5: cost %.12f, expected %.12f", got, want);
    TG_IT_CHECK(want > 0);
    TG_IT_CHECKF(fabs(got - want) < 1e-12 * 4 + 1e-15,
                 "claude-sonnet-4-5 cost %.12f, expected %.12f", got, want);
    TG_IT_CHECK(expo_value(text, "tollgate_unpriced_requests_total") == 0);
    free(text);
    /* Two requests for a model no price matches: cost 0, counted. */
    for (i = 0; i < 2; i++) {
        tg_it_resp_t resp;

        tg_it_request(f.port, "POST", "/v1/messages",
                      "x-api-key: " TG_IT_KEY "\r\n"
                      "anthropic-version: 2023-06-01\r\n"
                      "content-type: application/json\r\n",
                      "{\"model\":\"house-model-1\",\"max_tokens\":16,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      &resp);
        TG_IT_CHECK_INT(resp.status, 200);
        tg_it_resp_fini(&resp);
    }
    text = scrape_until(f.admin_port, "tollgate_unpriced_requests_total", 2);
    TG_IT_CHECK(expo_value(text, "tollgate_unpriced_requests_total") == 2);
    TG_IT_CHECK(expo_value(text, "tollgate_cost_usd_total{model=\""
                                 "house-model-1\"}") == 0);
    expo_check(text);
    free(text);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_metrics_tests[] = {
    {"/metrics is valid Prometheus text (promtool and a strict parser)",
     test_exposition_valid},
    {"/metrics counts a known load exactly: requests, refusals, tokens, "
     "histograms",
     test_counts_known_load},
    {"/metrics counts a worker restart and keeps the dead worker's counts",
     test_restart_keeps_counts},
    {"/metrics cost by model equals the upstream ledger's tokens at the "
     "shipped prices, and unpriced models are counted",
     test_cost_known_load},
    {NULL, NULL},
};
