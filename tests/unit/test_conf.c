/*
 * tests/unit/test_conf.c
 *      Configuration loader: the data-driven cases in tests/data/conf and
 *      direct checks of parsed values and defaults.
 *
 * NOTES
 *      Each directory tests/data/conf/<case>/ holds "input", a config file,
 *      and "expected", one line: the exact error tg_conf_create must give,
 *      or "ok".  The file in that line is written relative to the source
 *      root ("tests/data/conf/<case>/input"), which is the path the test
 *      passes when TG_SRCDIR is "." (the default); with another TG_SRCDIR
 *      the "<srcdir>/" prefix is removed from the error before comparing.
 *      Every case is loaded a second time with tg_conf_create_from_string
 *      under the same name, and must give the same line.
 *
 *      The cases expect TG_TEST_CONF_CREDENTIAL to be set,
 *      TG_TEST_CONF_EMPTY to be set and empty and TG_TEST_CONF_UNSET to be
 *      unset; tg_test_conf_env arranges that.
 *
 *      XXX: tg_conf_create is not run under a chaos allocator (STYLE rule
 *      12): most of its allocations happen inside libconfig, which calls
 *      malloc directly, and glibc 2.36 has no malloc hooks to fail them.
 */
#include "core/conf.h"
#include "core/log.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_TEST_CONF_DIR "tests/data/conf"

/* The endpoint most string tests need, since at least one is required. */
#define TG_TEST_CONF_EP                                                        \
    "endpoints = ( { name = \"a\"; url = \"http://127.0.0.1:18080\"; "         \
    "style = \"anthropic\"; credential = \"k\"; } );\n"

static void
tg_test_conf_env(void)
{
    setenv("TG_TEST_CONF_CREDENTIAL", "sk-from-env", 1);
    setenv("TG_TEST_CONF_EMPTY", "", 1);
    unsetenv("TG_TEST_CONF_UNSET");
}

/* <srcdir>/<rel>, or <rel> itself when srcdir is "." (caller frees). */
static char *
tg_test_conf_path(const char *rel)
{
    const char *dir = tg_test_srcdir();
    char *p;

    if (strcmp(dir, ".") == 0) {
        return strdup(rel);
    }
    if (asprintf(&p, "%s/%s", dir, rel) < 0) {
        return NULL;
    }
    return p;
}

/* Read a whole file into a NUL-terminated buffer (caller frees), or NULL. */
static char *
tg_test_conf_read(const char *path)
{
    char *buf = NULL;
    struct stat st;
    size_t n;
    FILE *f;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && st.st_size >= 0) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf != NULL) {
            n = fread(buf, 1, (size_t)st.st_size, f);
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* An error line with the "<srcdir>/" prefix removed, as the cases hold. */
static const char *
tg_test_conf_unprefix(const char *err)
{
    const char *dir = tg_test_srcdir();
    size_t len = strlen(dir);

    if (strcmp(dir, ".") != 0 && strncmp(err, dir, len) == 0 &&
        err[len] == '/') {
        return err + len + 1;
    }
    return err;
}

/*
 * Run case <name>: load it from the file and from a string, compare both
 * results with "expected".  Returns true when both match; prints the
 * difference otherwise.
 */
static bool
tg_test_conf_case(const char *name, bool *ok_case)
{
    char rel[512], err[1024], err2[1024];
    char *input = NULL, *expected = NULL, *exp_path = NULL, *text = NULL;
    const char *got, *got2;
    tg_conf_t *conf, *conf2;
    bool pass = false;
    size_t len;

    snprintf(rel, sizeof(rel), TG_TEST_CONF_DIR "/%s/expected", name);
    exp_path = tg_test_conf_path(rel);
    snprintf(rel, sizeof(rel), TG_TEST_CONF_DIR "/%s/input", name);
    input = tg_test_conf_path(rel);
    if (exp_path == NULL || input == NULL) {
        goto done;
    }
    expected = tg_test_conf_read(exp_path);
    text = tg_test_conf_read(input);
    if (expected == NULL || text == NULL) {
        fprintf(stderr, "\n  conf case %s: cannot read input or expected\n",
                name);
        goto done;
    }
    len = strlen(expected);
    while (len > 0 &&
           (expected[len - 1] == '\n' || expected[len - 1] == '\r')) {
        expected[--len] = '\0';
    }
    *ok_case = strcmp(expected, "ok") == 0;

    conf = tg_conf_create(input, err, sizeof(err));
    got = conf != NULL ? "ok" : tg_test_conf_unprefix(err);
    conf2 = tg_conf_create_from_string(text, rel, err2, sizeof(err2));
    got2 = conf2 != NULL ? "ok" : err2;
    tg_conf_destroy(conf);
    tg_conf_destroy(conf2);

    pass = strcmp(got, expected) == 0 && strcmp(got2, expected) == 0;
    if (!pass) {
        fprintf(stderr,
                "\n  conf case %s\n    expected:    %s\n    file gave:   %s\n"
                "    string gave: %s\n",
                name, expected, got, got2);
    }

done:
    free(input);
    free(exp_path);
    free(expected);
    free(text);
    return pass;
}

static int
tg_test_conf_is_case(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static void
test_conf_cases(void)
{
    struct dirent **list = NULL;
    unsigned nok = 0, nbad = 0, nfail = 0;
    char *dir;
    bool ok_case;
    int i, n;

    tg_test_conf_env();
    dir = tg_test_conf_path(TG_TEST_CONF_DIR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    n = scandir(dir, &list, tg_test_conf_is_case, alphasort);
    free(dir);
    CU_ASSERT_FATAL(n > 0);
    for (i = 0; i < n; i++) {
        ok_case = false;
        if (!tg_test_conf_case(list[i]->d_name, &ok_case)) {
            nfail++;
        }
        if (ok_case) {
            nok++;
        } else {
            nbad++;
        }
        free(list[i]);
    }
    free(list);
    CU_ASSERT_EQUAL(nfail, 0);
    /* Guard against a test that passes because the cases went missing. */
    CU_ASSERT(nbad >= 30);
    CU_ASSERT(nok >= 5);
}

static tg_conf_t *
tg_test_conf_load(const char *text)
{
    char err[512];
    tg_conf_t *conf;

    conf = tg_conf_create_from_string(text, "test.conf", err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    }
    return conf;
}

/* The error for <text>, or "ok", in <err>. */
static const char *
tg_test_conf_error(const char *text, char *err, size_t errlen)
{
    tg_conf_t *conf;

    conf = tg_conf_create_from_string(text, "test.conf", err, errlen);
    if (conf != NULL) {
        tg_conf_destroy(conf);
        snprintf(err, errlen, "ok");
    }
    return err;
}

static void
test_conf_defaults(void)
{
    tg_conf_t *conf = tg_test_conf_load(TG_TEST_CONF_EP);

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->path, "test.conf");
    CU_ASSERT_STRING_EQUAL(conf->listen_addr, "127.0.0.1");
    CU_ASSERT_EQUAL(conf->listen_port, 8080);
    CU_ASSERT_STRING_EQUAL(conf->admin_addr, "127.0.0.1");
    CU_ASSERT_EQUAL(conf->admin_port, 8081);
    CU_ASSERT_STRING_EQUAL(conf->pid_file, "tollgate.pid");
    CU_ASSERT_EQUAL(conf->shutdown_timeout_ms, 30000);
    CU_ASSERT_STRING_EQUAL(conf->error_log, "-");
    CU_ASSERT_STRING_EQUAL(conf->access_log, "-");
    CU_ASSERT_EQUAL(conf->log_level, TG_LOG_INFO);
    CU_ASSERT_EQUAL(conf->header_bytes, 32768);
    CU_ASSERT_EQUAL(conf->body_bytes, 33554432);
    CU_ASSERT_EQUAL(conf->header_timeout_ms, 10000);
    CU_ASSERT_EQUAL(conf->body_timeout_ms, 60000);
    CU_ASSERT_EQUAL(conf->idle_timeout_ms, 75000);
    CU_ASSERT_EQUAL(conf->send_timeout_ms, 120000);
    CU_ASSERT_EQUAL(conf->max_connections, 10000);
    CU_ASSERT_EQUAL(conf->stream_buffer, 65536);
    CU_ASSERT_EQUAL(conf->connect_timeout_ms, 10000);
    CU_ASSERT_EQUAL(conf->first_byte_timeout_ms, 300000);
    CU_ASSERT_EQUAL(conf->read_timeout_ms, 300000);
    CU_ASSERT_TRUE(conf->tls_verify);
    CU_ASSERT_EQUAL(conf->upstream_buffer, 16384);
    CU_ASSERT_EQUAL_FATAL(conf->nendpoints, 1);
    CU_ASSERT_EQUAL(conf->endpoints[0].weight, 1);
    CU_ASSERT_EQUAL(conf->endpoints[0].priority, TG_PRIO_PRIMARY);
    CU_ASSERT_EQUAL(conf->nkeys, 0);
    CU_ASSERT_PTR_NULL(conf->keys);
    tg_conf_destroy(conf);
}

static void
test_conf_workers_default(void)
{
    tg_conf_t *conf = tg_test_conf_load(TG_TEST_CONF_EP);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int want = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->workers, want);
    tg_conf_destroy(conf);
}

static void
test_conf_full(void)
{
    char *path = tg_test_conf_path(TG_TEST_CONF_DIR "/ok-full/input");
    char err[512];
    tg_conf_t *conf;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    conf = tg_conf_create(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->path, path);
    CU_ASSERT_STRING_EQUAL(conf->listen_addr, "0.0.0.0");
    CU_ASSERT_EQUAL(conf->listen_port, 8443);
    CU_ASSERT_EQUAL(conf->workers, 4);
    CU_ASSERT_STRING_EQUAL(conf->admin_addr, "127.0.0.1");
    CU_ASSERT_EQUAL(conf->admin_port, 9443);
    CU_ASSERT_STRING_EQUAL(conf->pid_file, "/run/tollgate/tollgate.pid");
    CU_ASSERT_EQUAL(conf->shutdown_timeout_ms, 45000);
    CU_ASSERT_STRING_EQUAL(conf->error_log, "/var/log/tollgate/error.log");
    CU_ASSERT_STRING_EQUAL(conf->access_log, "off");
    CU_ASSERT_EQUAL(conf->log_level, TG_LOG_DEBUG);
    CU_ASSERT_EQUAL(conf->header_bytes, 65536);
    CU_ASSERT_EQUAL(conf->body_bytes, 100 * 1024 * 1024);
    CU_ASSERT_EQUAL(conf->header_timeout_ms, 5000);
    CU_ASSERT_EQUAL(conf->body_timeout_ms, 30500);
    CU_ASSERT_EQUAL(conf->idle_timeout_ms, 60000);
    CU_ASSERT_EQUAL(conf->send_timeout_ms, 90000);
    CU_ASSERT_EQUAL(conf->max_connections, 20000);
    CU_ASSERT_EQUAL(conf->stream_buffer, 131072);
    CU_ASSERT_EQUAL(conf->connect_timeout_ms, 3000);
    CU_ASSERT_EQUAL(conf->first_byte_timeout_ms, 120000);
    CU_ASSERT_EQUAL(conf->read_timeout_ms, 250);
    CU_ASSERT_FALSE(conf->tls_verify);
    CU_ASSERT_EQUAL(conf->upstream_buffer, 32768);

    CU_ASSERT_EQUAL_FATAL(conf->nendpoints, 2);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].name, "anthropic-1");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].url, "https://api.anthropic.com");
    CU_ASSERT_EQUAL(conf->endpoints[0].style, TG_STYLE_ANTHROPIC);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].credential, "sk-ant-test");
    CU_ASSERT_EQUAL(conf->endpoints[0].weight, 3);
    CU_ASSERT_EQUAL(conf->endpoints[0].priority, TG_PRIO_PRIMARY);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[1].name, "openai-1");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[1].url, "https://api.openai.com");
    CU_ASSERT_EQUAL(conf->endpoints[1].style, TG_STYLE_OPENAI);
    CU_ASSERT_EQUAL(conf->endpoints[1].weight, 1);
    CU_ASSERT_EQUAL(conf->endpoints[1].priority, TG_PRIO_SECONDARY);

    CU_ASSERT_EQUAL_FATAL(conf->nmodels, 4);
    CU_ASSERT_STRING_EQUAL(conf->models[1].id, "gpt-4o");
    CU_ASSERT_STRING_EQUAL(conf->models[1].display_name, "GPT-4o");
    CU_ASSERT_EQUAL(conf->models[1].created, 1715367049);
    CU_ASSERT_STRING_EQUAL(conf->models[1].owned_by, "openai");

    CU_ASSERT_EQUAL_FATAL(conf->nkeys, 2);
    CU_ASSERT_STRING_EQUAL(conf->keys[0].key, "tg-demo-0123456789abcdef");
    CU_ASSERT_STRING_EQUAL(conf->keys[1].key, "tg-demo-fedcba9876543210");
    tg_conf_destroy(conf);
    free(path);
}

static void
test_conf_durations(void)
{
    tg_conf_t *conf = tg_test_conf_load(
        "shutdown_timeout = 2.5;\n"
        "limits = { header_timeout = 1; body_timeout = 0.001;\n"
        "    idle_timeout = 86400; send_timeout = 0.0015; };\n"
        "upstream = { connect_timeout = 1L; read_timeout = 86399.9999;\n"
        "    first_byte_timeout = 2e-3; };\n" TG_TEST_CONF_EP);

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->shutdown_timeout_ms, 2500);
    CU_ASSERT_EQUAL(conf->header_timeout_ms, 1000);
    CU_ASSERT_EQUAL(conf->body_timeout_ms, 1);
    CU_ASSERT_EQUAL(conf->idle_timeout_ms, 86400000);
    /* Rounded to the nearest millisecond. */
    CU_ASSERT_EQUAL(conf->send_timeout_ms, 2);
    CU_ASSERT_EQUAL(conf->connect_timeout_ms, 1000);
    CU_ASSERT_EQUAL(conf->read_timeout_ms, 86400000);
    CU_ASSERT_EQUAL(conf->first_byte_timeout_ms, 2);
    tg_conf_destroy(conf);
}

static void
test_conf_sizes(void)
{
    tg_conf_t *conf = tg_test_conf_load(
        "limits = { header_bytes = \"1k\"; body_bytes = \"1G\";\n"
        "    stream_buffer = \"4K\"; };\n"
        "upstream = { buffer = 2048; };\n" TG_TEST_CONF_EP);
    char err[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(conf->header_bytes, 1024);
    CU_ASSERT_EQUAL(conf->body_bytes, 1073741824);
    CU_ASSERT_EQUAL(conf->stream_buffer, 4096);
    CU_ASSERT_EQUAL(conf->upstream_buffer, 2048);
    tg_conf_destroy(conf);

    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error(
            "limits = { body_bytes = \"16 m\"; };\n" TG_TEST_CONF_EP, err,
            sizeof(err)),
        "test.conf:1: limits.body_bytes must be a number of bytes, such as "
        "65536 or \"64k\"");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("limits = { body_bytes = \"99999999999999999999k\"; "
                           "};\n" TG_TEST_CONF_EP,
                           err, sizeof(err)),
        "test.conf:1: limits.body_bytes must be a number of bytes, such as "
        "65536 or \"64k\"");
    /* Fits in 64 bits, overflows once multiplied by 1024. */
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("limits = { body_bytes = \"99999999999999999k\"; "
                           "};\n" TG_TEST_CONF_EP,
                           err, sizeof(err)),
        "test.conf:1: limits.body_bytes must be a number of bytes, such as "
        "65536 or \"64k\"");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error(
            "limits = { body_bytes = \"k\"; };\n" TG_TEST_CONF_EP, err,
            sizeof(err)),
        "test.conf:1: limits.body_bytes must be a number of bytes, such as "
        "65536 or \"64k\"");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error(
            "limits = { body_bytes = \"512\"; };\n" TG_TEST_CONF_EP, err,
            sizeof(err)),
        "test.conf:1: limits.body_bytes must be between 1024 and 1073741824");
}

static void
test_conf_url_slashes(void)
{
    tg_conf_t *conf = tg_test_conf_load(
        "endpoints = (\n"
        "  { name = \"a\"; url = \"https://api.anthropic.com/\";\n"
        "    style = \"anthropic\"; credential = \"k\"; },\n"
        "  { name = \"b\"; url = "
        "\"https://relay.example.com/anthropic/v1///\";\n"
        "    style = \"anthropic\"; credential = \"k\"; },\n"
        "  { name = \"c\"; url = \"http://[::1]:18080\";\n"
        "    style = \"openai\"; credential = \"k\"; }\n"
        ");\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL_FATAL(conf->nendpoints, 3);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].url, "https://api.anthropic.com");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[1].url,
                           "https://relay.example.com/anthropic/v1");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[2].url, "http://[::1]:18080");
    tg_conf_destroy(conf);
}

static void
test_conf_env_credential(void)
{
    static const char text[] =
        "endpoints = ( { name = \"a\"; url = \"https://api.anthropic.com\";\n"
        "    style = \"anthropic\"; credential = "
        "\"env:TG_TEST_CONF_CREDENTIAL\"; "
        "} );\n";
    tg_conf_t *conf;

    setenv("TG_TEST_CONF_CREDENTIAL", "sk-ant-first", 1);
    conf = tg_test_conf_load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].credential, "sk-ant-first");
    tg_conf_destroy(conf);

    /* A reload reads the variable again. */
    setenv("TG_TEST_CONF_CREDENTIAL", "sk-ant-second", 1);
    conf = tg_test_conf_load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].credential, "sk-ant-second");
    tg_conf_destroy(conf);
    tg_test_conf_env();
}

static void
test_conf_credential_not_echoed(void)
{
    char err[512], longval[513];

    setenv("TG_TEST_CONF_SECRET", "sk-secret\nvalue", 1);
    tg_test_conf_error("endpoints = ( { name = \"a\"; url = \"https://x\"; "
                       "style = \"openai\";\n"
                       "    credential = \"env:TG_TEST_CONF_SECRET\"; } );\n",
                       err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "test.conf:2: endpoints[0].credential names "
                                "environment variable TG_TEST_CONF_SECRET, "
                                "whose value contains control characters");
    CU_ASSERT_PTR_NULL(strstr(err, "sk-secret"));

    memset(longval, 'k', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    setenv("TG_TEST_CONF_SECRET", longval, 1);
    tg_test_conf_error("endpoints = ( { name = \"a\"; url = \"https://x\"; "
                       "style = \"openai\";\n"
                       "    credential = \"env:TG_TEST_CONF_SECRET\"; } );\n",
                       err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "test.conf:2: endpoints[0].credential names "
                                "environment variable TG_TEST_CONF_SECRET, "
                                "whose value is longer than 511 characters");
    unsetenv("TG_TEST_CONF_SECRET");

    tg_test_conf_error(TG_TEST_CONF_EP "keys = ( \"tg-secret-0123456789\", "
                                       "\"tg-secret-0123456789\" );\n",
                       err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "test.conf:2: keys[1] duplicates key 1 of "
                                "user \"default\"");
}

static void
test_conf_groups(void)
{
    char err[512];
    char *path = tg_test_conf_path("tests/data/conf/ok-groups/input");
    tg_conf_t *conf;
    const tg_conf_endpoint_t *a, *r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    conf = tg_conf_create(path, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL_FATAL(conf->ngroups, 2);
    CU_ASSERT_STRING_EQUAL(conf->groups[0].name, "default");
    CU_ASSERT_EQUAL(conf->groups[0].strategy, TG_STRATEGY_LEAST_CONN);
    CU_ASSERT_EQUAL(conf->groups[0].failure_threshold, 3);
    CU_ASSERT_EQUAL(conf->groups[0].cooldown_ms, 10000);
    CU_ASSERT_EQUAL(conf->groups[0].max_retries, 2);
    CU_ASSERT_EQUAL(conf->groups[1].strategy, TG_STRATEGY_COST);
    CU_ASSERT_FALSE(conf->groups[1].sticky);
    CU_ASSERT_EQUAL(conf->groups[1].explore_milli, 100);
    a = &conf->endpoints[0];
    r = &conf->endpoints[1];
    CU_ASSERT_EQUAL(a->group, 0);
    CU_ASSERT_TRUE(a->enabled);
    CU_ASSERT_EQUAL(a->price_milli, 1000);
    CU_ASSERT_EQUAL(a->connect_timeout_ms, conf->connect_timeout_ms);
    CU_ASSERT_EQUAL(a->health_interval_ms, 30000);
    CU_ASSERT_STRING_EQUAL(a->health_path, "/v1/models");
    CU_ASSERT_EQUAL(r->group, 1);
    CU_ASSERT_FALSE(r->enabled);
    CU_ASSERT_EQUAL(r->price_milli, 800);
    CU_ASSERT_EQUAL(r->priority, TG_PRIO_SECONDARY);
    CU_ASSERT_EQUAL(r->nmodels, 1);
    CU_ASSERT_EQUAL_FATAL(r->nmaps, 1);
    CU_ASSERT_STRING_EQUAL(r->maps[0].to, "anthropic/claude-sonnet-4.5");
    CU_ASSERT_STRING_EQUAL(r->proxy, "socks5h://127.0.0.1:1080");
    CU_ASSERT_EQUAL(r->connect_timeout_ms, 2000);
    CU_ASSERT_EQUAL(r->total_timeout_ms, 600000);
    CU_ASSERT_EQUAL(r->health_timeout_ms, 2000);
    CU_ASSERT_EQUAL(r->quota_cooldown_ms, 86400000u);
    CU_ASSERT_EQUAL_FATAL(conf->nkeys, 1);
    CU_ASSERT_EQUAL(conf->keys[0].group, 1);
    tg_conf_destroy(conf);
    free(path);
}


static void
test_conf_model_defaults(void)
{
    tg_conf_t *conf = tg_test_conf_load(
        TG_TEST_CONF_EP "models = ( \"claude-sonnet-4-5\", \"gpt-4o\", "
                        "\"o3-mini\", \"o4-mini\", \"o1\", \"llama-3\",\n"
                        "  { id = \"m\"; display_name = \"M\"; created = 5; "
                        "owned_by = \"me\"; } );\n");

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL_FATAL(conf->nmodels, 7);
    CU_ASSERT_STRING_EQUAL(conf->models[0].owned_by, "anthropic");
    CU_ASSERT_STRING_EQUAL(conf->models[0].display_name, "claude-sonnet-4-5");
    CU_ASSERT_EQUAL(conf->models[0].created, 0);
    CU_ASSERT_STRING_EQUAL(conf->models[1].owned_by, "openai");
    CU_ASSERT_STRING_EQUAL(conf->models[2].owned_by, "openai");
    CU_ASSERT_STRING_EQUAL(conf->models[3].owned_by, "openai");
    CU_ASSERT_STRING_EQUAL(conf->models[4].owned_by, "openai");
    CU_ASSERT_STRING_EQUAL(conf->models[5].owned_by, "system");
    CU_ASSERT_STRING_EQUAL(conf->models[6].id, "m");
    CU_ASSERT_STRING_EQUAL(conf->models[6].display_name, "M");
    CU_ASSERT_EQUAL(conf->models[6].created, 5);
    CU_ASSERT_STRING_EQUAL(conf->models[6].owned_by, "me");
    tg_conf_destroy(conf);
}

static void
test_conf_default_models(void)
{
    tg_conf_t *conf = tg_test_conf_load(TG_TEST_CONF_EP);

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL_FATAL(conf->nmodels, 3);
    CU_ASSERT_STRING_EQUAL(conf->models[0].id, "claude-opus-4-1");
    CU_ASSERT_STRING_EQUAL(conf->models[1].id, "claude-sonnet-4-5");
    CU_ASSERT_STRING_EQUAL(conf->models[2].id, "claude-haiku-4-5");
    CU_ASSERT_STRING_EQUAL(conf->models[1].display_name, "Claude Sonnet 4.5");
    CU_ASSERT_STRING_EQUAL(conf->models[2].owned_by, "anthropic");
    tg_conf_destroy(conf);
}

static void
test_conf_shipped(void)
{
    char *path = tg_test_conf_path("conf/tollgate.conf");
    char err[512];
    tg_conf_t *conf;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    conf = tg_conf_create(path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "\n  %s\n", err);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->listen_addr, "127.0.0.1");
    CU_ASSERT_EQUAL(conf->listen_port, 8080);
    CU_ASSERT_EQUAL(conf->admin_port, 8081);
    CU_ASSERT_STRING_EQUAL(conf->pid_file, "run/tollgate.pid");
    CU_ASSERT_STRING_EQUAL(conf->error_log, "run/error.log");
    CU_ASSERT_STRING_EQUAL(conf->access_log, "run/access.log");
    CU_ASSERT_EQUAL_FATAL(conf->nendpoints, 2);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].name, "mock-anthropic");
    CU_ASSERT_EQUAL(conf->endpoints[0].style, TG_STYLE_ANTHROPIC);
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].url, "http://127.0.0.1:18080");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[0].credential, "mock-upstream-key");
    CU_ASSERT_STRING_EQUAL(conf->endpoints[1].name, "mock-openai");
    CU_ASSERT_EQUAL(conf->endpoints[1].style, TG_STYLE_OPENAI);
    CU_ASSERT_EQUAL_FATAL(conf->nkeys, 2);
    CU_ASSERT_STRING_EQUAL(conf->keys[0].key, "tg-demo-0123456789abcdef");
    CU_ASSERT_EQUAL(conf->keys[0].user, 0);
    CU_ASSERT_EQUAL(conf->keys[1].user, 1);
    CU_ASSERT_EQUAL(conf->keys[1].rpm, 30);
    CU_ASSERT_EQUAL(conf->keys[1].nmodels, 1);
    CU_ASSERT_EQUAL_FATAL(conf->nusers, 2);
    CU_ASSERT_STRING_EQUAL(conf->users[1].name, "demo-limited");
    CU_ASSERT_STRING_EQUAL(conf->usage_log, "run/usage.jsonl");
    tg_conf_destroy(conf);
    free(path);
}

/* Load example <rel> with $<var> set to <value>; the old value is kept. */
static void
tg_test_conf_example(const char *rel, const char *var, const char *value)
{
    char *path = tg_test_conf_path(rel), *old = NULL, err[512];
    tg_conf_t *conf;

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    if (getenv(var) != NULL) {
        old = strdup(getenv(var));
    }
    setenv(var, value, 1);
    conf = tg_conf_create(path, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "\n  %s\n", err);
    }
    CU_ASSERT_PTR_NOT_NULL(conf);
    if (conf != NULL) {
        CU_ASSERT_STRING_EQUAL(conf->endpoints[0].credential, value);
        CU_ASSERT(conf->tls_verify);
    }
    tg_conf_destroy(conf);
    if (old != NULL) {
        setenv(var, old, 1);
    } else {
        unsetenv(var);
    }
    free(old);
    free(path);
}

static void
test_conf_examples(void)
{
    tg_test_conf_example("conf/examples/anthropic.conf", "ANTHROPIC_API_KEY",
                         "sk-ant-test-0000");
    tg_test_conf_example("conf/examples/openai.conf", "OPENAI_API_KEY",
                         "sk-test-0000");
}

static void
test_conf_missing_file(void)
{
    char err[512];

    CU_ASSERT_PTR_NULL(
        tg_conf_create("tests/data/conf/no-such-case/input", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "tests/data/conf/no-such-case/input: fopen() "
                                "failed (2: No such file or directory)");
}

static void
test_conf_directory(void)
{
    char *path = tg_test_conf_path(TG_TEST_CONF_DIR);
    char err[512], want[600];

    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    CU_ASSERT_PTR_NULL(tg_conf_create(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: is a directory", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    free(path);
}

static void
test_conf_err_truncated(void)
{
    char err[8];

    memset(err, 'x', sizeof(err));
    CU_ASSERT_PTR_NULL(
        tg_conf_create_from_string("workers = 0;\n", "test.conf", err, 8));
    CU_ASSERT_STRING_EQUAL(err, "test.co");
    CU_ASSERT_PTR_NULL(
        tg_conf_create_from_string("workers = 0;\n", "test.conf", NULL, 0));
}

static void
test_conf_first_error(void)
{
    char err[512];

    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 0;\nbogus = 1;\nendpoints = ();\n", err,
                           sizeof(err)),
        "test.conf:1: workers must be between 1 and 64");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("bogus = 1;\nworkers = 0;\n", err, sizeof(err)),
        "test.conf:1: unknown setting \"bogus\"");
    /* The integer scan runs before validation, over the whole file. */
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 0;\nweight = 3000000000;\n", err,
                           sizeof(err)),
        "test.conf:2: integer 3000000000 does not fit in 32 bits; write "
        "3000000000L for a 64-bit integer");
}

static void
test_conf_int_limits(void)
{
    char err[512];

    /* The 32-bit edges are read exactly and then range-checked. */
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 2147483647;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: workers must be between 1 and 64");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = -2147483648;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: workers must be between 1 and 64");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 2147483648;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: integer 2147483648 does not fit in 32 bits; write "
        "2147483648L for a 64-bit integer");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 2147483648L;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: workers must be between 1 and 64");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 0xffffffff;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: integer 0xffffffff does not fit in 32 bits; write "
        "0xffffffffL for a 64-bit integer");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 9223372036854775808L;\n" TG_TEST_CONF_EP,
                           err, sizeof(err)),
        "test.conf:1: integer 9223372036854775808L does not fit in 64 bits");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 0x7FFFFFFF;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: workers must be between 1 and 64");
    CU_ASSERT_STRING_EQUAL(
        tg_test_conf_error("workers = 0X80000000;\n" TG_TEST_CONF_EP, err,
                           sizeof(err)),
        "test.conf:1: integer 0X80000000 does not fit in 32 bits; write "
        "0X80000000L for a 64-bit integer");
}

static void
test_conf_list_bounds(void)
{
    char err[512], *text, *p;
    size_t i;

    /* 257 endpoints: the count is checked before the entries. */
    text = malloc(16 + 257 * 3 + 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    p = text + sprintf(text, "endpoints = (");
    for (i = 0; i < 257; i++) {
        p += sprintf(p, "%s1", i == 0 ? "" : ", ");
    }
    sprintf(p, ");\n");
    CU_ASSERT_STRING_EQUAL(tg_test_conf_error(text, err, sizeof(err)),
                           "test.conf:1: endpoints must have at most 256 "
                           "entries");
    free(text);
}

static void
test_conf_long_name(void)
{
    char err[8192], name[5000];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    CU_ASSERT_PTR_NULL(
        tg_conf_create_from_string(TG_TEST_CONF_EP, name, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, ": path is longer than 4095 characters"));
}

static void
test_conf_database_defaults(void)
{
    char host[256] = "";
    tg_conf_t *conf;

    unsetenv("TOLLGATE_DATABASE");
    conf = tg_test_conf_load(TG_TEST_CONF_EP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->database, "");
    CU_ASSERT_EQUAL(conf->database_source, TG_CONF_DB_NONE);
    CU_ASSERT_EQUAL(conf->database_start_timeout_ms, 5000);
    CU_ASSERT_STRING_EQUAL(conf->secret_key, "run/secret.key");
    CU_ASSERT_EQUAL(conf->nold_secret_keys, 0);
    CU_ASSERT_STRING_EQUAL(conf->bootstrap_password, "");
    CU_ASSERT_STRING_EQUAL(conf->code_webhook, "");
    CU_ASSERT_EQUAL(conf->reconcile_interval_ms, 30000);
    CU_ASSERT_EQUAL(conf->session_ttl_ms, 43200000);
    gethostname(host, sizeof(host) - 1);
    CU_ASSERT_STRING_EQUAL(conf->host_name, host);
    tg_conf_destroy(conf);
}

static void
test_conf_database_sources(void)
{
    tg_conf_t *conf;

    setenv("TOLLGATE_DATABASE", "host=/run/pg dbname=from_env", 1);
    conf = tg_test_conf_load(TG_TEST_CONF_EP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->database, "host=/run/pg dbname=from_env");
    CU_ASSERT_EQUAL(conf->database_source, TG_CONF_DB_ENV);
    tg_conf_destroy(conf);

    /* The file wins over the environment. */
    conf = tg_test_conf_load(TG_TEST_CONF_EP "database = \"dbname=file\";\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->database, "dbname=file");
    CU_ASSERT_EQUAL(conf->database_source, TG_CONF_DB_FILE);
    tg_conf_destroy(conf);

    setenv("TG_TEST_CONF_DB", "host=10.0.0.5 password=s3cret", 1);
    conf = tg_test_conf_load(TG_TEST_CONF_EP
                             "database = \"env:TG_TEST_CONF_DB\";\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->database, "host=10.0.0.5 password=s3cret");
    CU_ASSERT_EQUAL(conf->database_source, TG_CONF_DB_FILE);
    tg_conf_destroy(conf);
    unsetenv("TG_TEST_CONF_DB");
    unsetenv("TOLLGATE_DATABASE");
}

static void
test_conf_admin_settings(void)
{
    static const char hex[] =
        "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    char err[512];
    tg_conf_t *conf;

    setenv("TG_TEST_CONF_PW", "correct horse battery", 1);
    setenv("TG_TEST_CONF_KEY", hex, 1);
    conf = tg_test_conf_load(
        TG_TEST_CONF_EP
        "admin = { secret_key = \"env:TG_TEST_CONF_KEY\";\n"
        "  old_secret_keys = [ \"a.key\", \"env:TG_TEST_CONF_KEY\" ];\n"
        "  bootstrap_password = \"env:TG_TEST_CONF_PW\";\n"
        "  code_webhook = \"http://127.0.0.1:9/hook\";\n"
        "  reconcile_interval = 2.5; session_ttl = 600;\n"
        "  host_name = \"gate-7\"; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    /* The key stays a reference: admin reads it when it needs it. */
    CU_ASSERT_STRING_EQUAL(conf->secret_key, "env:TG_TEST_CONF_KEY");
    CU_ASSERT_EQUAL_FATAL(conf->nold_secret_keys, 2);
    CU_ASSERT_STRING_EQUAL(conf->old_secret_keys[0], "a.key");
    CU_ASSERT_STRING_EQUAL(conf->old_secret_keys[1], "env:TG_TEST_CONF_KEY");
    CU_ASSERT_STRING_EQUAL(conf->bootstrap_password, "correct horse battery");
    CU_ASSERT_STRING_EQUAL(conf->code_webhook, "http://127.0.0.1:9/hook");
    CU_ASSERT_EQUAL(conf->reconcile_interval_ms, 2500);
    CU_ASSERT_EQUAL(conf->session_ttl_ms, 600000);
    CU_ASSERT_STRING_EQUAL(conf->host_name, "gate-7");
    tg_conf_destroy(conf);

    /* A password from the environment is checked after resolution, and
     * never quoted back. */
    setenv("TG_TEST_CONF_PW", "short", 1);
    tg_test_conf_error(TG_TEST_CONF_EP "admin = { bootstrap_password = "
                                       "\"env:TG_TEST_CONF_PW\"; };\n",
                       err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "test.conf:2: admin.bootstrap_password must "
                                "be at least 8 characters");
    CU_ASSERT_PTR_NULL(strstr(err, "short"));
    setenv("TG_TEST_CONF_KEY", "abcd", 1);
    tg_test_conf_error(TG_TEST_CONF_EP "admin = { secret_key = "
                                       "\"env:TG_TEST_CONF_KEY\"; };\n",
                       err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not hold 64 hexadecimal"));
    unsetenv("TG_TEST_CONF_PW");
    unsetenv("TG_TEST_CONF_KEY");

    /* Absent from the file, the password may come from the environment
     * (make run); the file wins. */
    setenv("TOLLGATE_ADMIN_PASSWORD", "from-the-environment", 1);
    conf = tg_test_conf_load(TG_TEST_CONF_EP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->bootstrap_password, "from-the-environment");
    tg_conf_destroy(conf);
    conf = tg_test_conf_load(TG_TEST_CONF_EP "admin = { bootstrap_password = "
                                             "\"from-the-file\"; };\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_STRING_EQUAL(conf->bootstrap_password, "from-the-file");
    tg_conf_destroy(conf);
    setenv("TOLLGATE_ADMIN_PASSWORD", "short", 1);
    tg_test_conf_error(TG_TEST_CONF_EP, err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "test.conf: $TOLLGATE_ADMIN_PASSWORD must be "
                                "8 to 255 characters");
    unsetenv("TOLLGATE_ADMIN_PASSWORD");
}

static void
test_conf_destroy_null(void)
{
    tg_conf_destroy(NULL);
    CU_PASS("tg_conf_destroy(NULL) returned");
}

int
tg_test_conf_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"every case in tests/data/conf gives its expected line",
         test_conf_cases},
        {"applies the documented defaults to a file with one endpoint",
         test_conf_defaults},
        {"defaults workers to the number of online cpus, at most 64",
         test_conf_workers_default},
        {"reads every setting of a full file into its field", test_conf_full},
        {"reads groups and resolves endpoint and key groups and inherited "
         "endpoint settings",
         test_conf_groups},
        {"converts durations from seconds to milliseconds",
         test_conf_durations},
        {"accepts sizes as integers or strings with k, m and g suffixes",
         test_conf_sizes},
        {"strips trailing slashes from endpoint urls and keeps the path",
         test_conf_url_slashes},
        {"resolves env: credentials each time the file is loaded",
         test_conf_env_credential},
        {"never quotes a credential or a client key in an error",
         test_conf_credential_not_echoed},
        {"fills display name, created and owner of models from the id",
         test_conf_model_defaults},
        {"serves the built-in claude models when models is absent",
         test_conf_default_models},
        {"loads the shipped conf/tollgate.conf", test_conf_shipped},
        {"loads the examples with credentials from the environment",
         test_conf_examples},
        {"reports a missing file with the errno text", test_conf_missing_file},
        {"reports a directory given as the file", test_conf_directory},
        {"truncates the error to the caller's buffer", test_conf_err_truncated},
        {"reports the first error in file order", test_conf_first_error},
        {"catches integers that libconfig would wrap at 32 or 64 bits",
         test_conf_int_limits},
        {"rejects lists with more entries than the bound",
         test_conf_list_bounds},
        {"rejects a file name longer than conf->path holds",
         test_conf_long_name},
        {"defaults to config-only mode and documented admin settings",
         test_conf_database_defaults},
        {"takes the database from the file, else $TOLLGATE_DATABASE",
         test_conf_database_sources},
        {"reads the admin settings and resolves env: where allowed",
         test_conf_admin_settings},
        {"accepts a null config in destroy", test_conf_destroy_null},
    };
    CU_pSuite suite;
    size_t i;

    suite = CU_add_suite("conf", NULL, NULL);
    if (suite == NULL) {
        return -1;
    }
    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
