/*
 * tests/unit/test_tollctl.c
 *      tollctl: option values, argument parsing, usage errors, output
 *      formatting, tables, error lines and the credentials file.
 *
 * NOTES
 *      Everything runs in-process on tools/tollctl_*.c with stdout and
 *      stderr of the tollctl context captured in memory streams.  Nothing
 *      here reaches the network: the commands exercised fail on their
 *      arguments before any request, and the admin URL points at a port
 *      nobody listens on in case one did not.
 */
#include "tests/unit/unit.h"
#include "tools/tollctl.h"

#include <CUnit/CUnit.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2026-12-02T14:00:00Z */
#define NOW ((time_t)1796220000)

typedef struct {
    tg_ctl_t ctl;
    char *out, *err;
    size_t outlen, errlen;
    FILE *fout, *ferr;
} cap_t;


static void
cap_open(cap_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fout = open_memstream(&c->out, &c->outlen);
    c->ferr = open_memstream(&c->err, &c->errlen);
    tg_ctl_init(&c->ctl, c->fout, c->ferr);
    c->ctl.tty_in = false;
    c->ctl.tty_out = false;
    c->ctl.color = false;
    c->ctl.now = NOW;
}


/* Flush the streams so c->out and c->err hold what was printed. */
static void
cap_flush(cap_t *c)
{
    fflush(c->fout);
    fflush(c->ferr);
}


static void
cap_close(cap_t *c)
{
    tg_ctl_fini(&c->ctl);
    fclose(c->fout);
    fclose(c->ferr);
    free(c->out);
    free(c->err);
}


/* Run tollctl with the NULL-terminated words after "tollctl". */
static int
cap_run(cap_t *c, const char *const *words)
{
    char *argv[32];
    int argc = 0, rc;

    argv[argc++] = "tollctl";
    while (*words != NULL && argc < 31) {
        argv[argc++] = (char *)*words++;
    }
    argv[argc] = NULL;
    rc = tg_ctl_main(&c->ctl, argc, argv);
    cap_flush(c);
    return rc;
}


static void
test_duration(void)
{
    long long s;

    CU_ASSERT_TRUE(tg_ctl_duration_parse("90d", &s) && s == 90 * 86400);
    CU_ASSERT_TRUE(tg_ctl_duration_parse("12h", &s) && s == 12 * 3600);
    CU_ASSERT_TRUE(tg_ctl_duration_parse("30m", &s) && s == 1800);
    CU_ASSERT_TRUE(tg_ctl_duration_parse("45s", &s) && s == 45);
    CU_ASSERT_TRUE(tg_ctl_duration_parse("2w", &s) && s == 14 * 86400);
    CU_ASSERT_TRUE(tg_ctl_duration_parse("3600", &s) && s == 3600);
    CU_ASSERT_FALSE(tg_ctl_duration_parse("", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("d", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("-1", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("1x", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("1dd", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("99999999999999999999", &s));
    CU_ASSERT_FALSE(tg_ctl_duration_parse("999999999999999999w", &s));
}


static void
test_time(void)
{
    char t[64];

    CU_ASSERT_TRUE(tg_ctl_time_parse("2026-12-31", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2026-12-31T00:00:00Z");
    CU_ASSERT_TRUE(
        tg_ctl_time_parse("2026-12-31T10:00:00+02:00", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2026-12-31T08:00:00Z");
    CU_ASSERT_TRUE(
        tg_ctl_time_parse("2026-12-31T10:00:00.123Z", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2026-12-31T10:00:00Z");
    CU_ASSERT_TRUE(tg_ctl_time_parse("+30d", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2027-01-01T14:00:00Z");
    CU_ASSERT_TRUE(tg_ctl_time_parse("-2h", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2026-12-02T12:00:00Z");
    CU_ASSERT_TRUE(tg_ctl_time_parse("now", NOW, t, sizeof(t)));
    CU_ASSERT_STRING_EQUAL(t, "2026-12-02T14:00:00Z");
    CU_ASSERT_FALSE(tg_ctl_time_parse("tomorrow", NOW, t, sizeof(t)));
    CU_ASSERT_FALSE(tg_ctl_time_parse("2026-13-01", NOW, t, sizeof(t)));
    CU_ASSERT_FALSE(
        tg_ctl_time_parse("2026-12-31T25:00:00Z", NOW, t, sizeof(t)));
    CU_ASSERT_FALSE(
        tg_ctl_time_parse("2026-12-31T10:00:00", NOW, t, sizeof(t)));
    CU_ASSERT_FALSE(tg_ctl_time_parse("2026-12-31x", NOW, t, sizeof(t)));
    CU_ASSERT_FALSE(tg_ctl_time_parse("+", NOW, t, sizeof(t)));
}


/* tg_ctl_value_parse(<type>, <in>) dumped compactly, or NULL. */
static char *
value(tg_ctl_type_t type, const char *choices, const char *in)
{
    char why[256];
    json_t *v = tg_ctl_value_parse(type, choices, in, NOW, why, sizeof(why));
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    json_decref(v);
    return s;
}


static void
check_value(tg_ctl_type_t type, const char *choices, const char *in,
            const char *want)
{
    char *got = value(type, choices, in);

    if (want == NULL) {
        CU_ASSERT_PTR_NULL(got);
    } else {
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    free(got);
}


static void
test_values(void)
{
    check_value(TG_CTL_T_INT, NULL, "42", "42");
    check_value(TG_CTL_T_INT, NULL, "-7", "-7");
    check_value(TG_CTL_T_INT, NULL, "12a", NULL);
    check_value(TG_CTL_T_INT, NULL, "", NULL);
    check_value(TG_CTL_T_INT, NULL, " 1", NULL);
    check_value(TG_CTL_T_INT, NULL, "99999999999999999999", NULL);
    check_value(TG_CTL_T_ID, NULL, "3", "3");
    check_value(TG_CTL_T_ID, NULL, "0", NULL);
    check_value(TG_CTL_T_MONEY, NULL, "12.50", "\"12.50\"");
    check_value(TG_CTL_T_MONEY, NULL, "100", "\"100\"");
    check_value(TG_CTL_T_MONEY, NULL, "1.2.3", NULL);
    check_value(TG_CTL_T_MONEY, NULL, "1.", NULL);
    check_value(TG_CTL_T_MONEY, NULL, "-1", NULL);
    check_value(TG_CTL_T_MONEY, NULL, "0.0000000001", NULL);
    check_value(TG_CTL_T_LIST, NULL, "a, b ,c", "[\"a\",\"b\",\"c\"]");
    check_value(TG_CTL_T_LIST, NULL, "", "[]");
    check_value(TG_CTL_T_LIST, NULL, "claude-*", "[\"claude-*\"]");
    check_value(TG_CTL_T_LIST, NULL, "a,,b", NULL);
    check_value(TG_CTL_T_LIST, NULL, "a,", NULL);
    check_value(TG_CTL_T_ENUM, "admin|user", "user", "\"user\"");
    check_value(TG_CTL_T_ENUM, "admin|user", "use", NULL);
    check_value(TG_CTL_T_ENUM, "admin|user", "admin|user", NULL);
    check_value(TG_CTL_T_BOOL, NULL, "on", "true");
    check_value(TG_CTL_T_BOOL, NULL, "true", "true");
    check_value(TG_CTL_T_BOOL, NULL, "off", "false");
    check_value(TG_CTL_T_BOOL, NULL, "false", "false");
    check_value(TG_CTL_T_BOOL, NULL, "on|off", NULL);
    check_value(TG_CTL_T_BOOL, NULL, "1", NULL);
    check_value(TG_CTL_T_BOOL, NULL, "", NULL);
    check_value(TG_CTL_T_DECIMAL, NULL, "0.05", "\"0.05\"");
    check_value(TG_CTL_T_DECIMAL, NULL, "-0.1", NULL);
    check_value(TG_CTL_T_DECIMAL, NULL, "1e3", NULL);
    check_value(TG_CTL_T_DURATION, NULL, "1h", "3600");
    check_value(TG_CTL_T_TIME, NULL, "+1d", "\"2026-12-03T14:00:00Z\"");
    check_value(TG_CTL_T_STR, NULL, "\xff", NULL);
    CU_ASSERT_TRUE(tg_ctl_id_valid("12"));
    CU_ASSERT_FALSE(tg_ctl_id_valid("012"));
    CU_ASSERT_FALSE(tg_ctl_id_valid("1/../2"));
    CU_ASSERT_FALSE(tg_ctl_id_valid(""));
    CU_ASSERT_FALSE(tg_ctl_id_valid("1234567890123456789"));
}


static const tg_ctl_opt_t test_opts[] = {
    {"name", NULL, TG_CTL_T_STR, TG_CTL_O_REQUIRED, NULL, "name"},
    {"tokens-month", "quota.tokens_month", TG_CTL_T_INT, TG_CTL_O_NULLABLE,
     NULL, "quota"},
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "a|b", "filter"},
    {"limit", NULL, TG_CTL_T_INT, TG_CTL_O_QUERY, NULL, "limit"},
    {"yes", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL, "yes"},
    {"set", NULL, TG_CTL_T_JSON, 0, NULL, "set"},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const tg_ctl_cmd_t test_cmd = {"create", "ID",      1,    1,   "test",
                                      NULL,     test_opts, NULL, NULL};


/* Parse <words> for <cmd>; returns the exit status. */
static int
parse_cmd(cap_t *c, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a,
          const char *const *words)
{
    char *argv[32];
    int argc = 0, rc;

    while (*words != NULL && argc < 32) {
        argv[argc++] = (char *)*words++;
    }
    rc = tg_ctl_args_parse(&c->ctl, cmd, argc, argv, a);
    cap_flush(c);
    return rc;
}


/* Parse <words> for test_cmd; returns the exit status. */
static int
parse(cap_t *c, tg_ctl_args_t *a, const char *const *words)
{
    return parse_cmd(c, &test_cmd, a, words);
}


static void
test_args(void)
{
    const char *ok[] = {"7",        "--name", "x y",     "--tokens-month=5",
                        "--status", "b",      "--limit", "20",
                        "--yes",    "--set",  "a.b=3",   "--set",
                        "c=text",   "--json", NULL};
    const char *nul[] = {"--name", "n", "--tokens-month", "none", "1", NULL};
    tg_ctl_args_t a;
    char *body;
    cap_t c;

    cap_open(&c);
    CU_ASSERT_EQUAL(parse(&c, &a, ok), 0);
    CU_ASSERT_EQUAL(a.npos, 1);
    CU_ASSERT_STRING_EQUAL(a.pos[0], "7");
    body = json_dumps(a.body, JSON_COMPACT | JSON_SORT_KEYS);
    CU_ASSERT_STRING_EQUAL(body, "{\"a\":{\"b\":3},\"c\":\"text\",\"name\":\"x "
                                 "y\",\"quota\":{\"tokens_month\":5}}");
    free(body);
    body = json_dumps(a.query, JSON_COMPACT | JSON_SORT_KEYS);
    CU_ASSERT_STRING_EQUAL(body, "{\"limit\":\"20\",\"status\":\"b\"}");
    free(body);
    CU_ASSERT_TRUE(tg_ctl_local_flag(&a, "yes"));
    CU_ASSERT_TRUE(c.ctl.json);
    tg_ctl_args_fini(&a);

    CU_ASSERT_EQUAL(parse(&c, &a, nul), 0);
    CU_ASSERT_TRUE(json_is_null(
        json_object_get(json_object_get(a.body, "quota"), "tokens_month")));
    tg_ctl_args_fini(&a);
    cap_close(&c);
}


/* Command <name> of the groups group. */
static const tg_ctl_cmd_t *
groups_cmd(const char *name)
{
    const tg_ctl_cmd_t *c;

    for (c = tg_ctl_groups_cmds; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    CU_FAIL_FATAL("no such groups command");
    return NULL;
}


/* parse_cmd() of groups <cmd> <words>: status <want>, and the body as
 * sorted JSON equal to <body> (status 0) or stderr holding <body>. */
static void
check_group(const char *cmd, const char *const *words, int want,
            const char *body)
{
    tg_ctl_args_t a;
    char *got;
    cap_t c;

    cap_open(&c);
    snprintf(c.ctl.cmd, sizeof(c.ctl.cmd), "groups %s", cmd);
    CU_ASSERT_EQUAL(parse_cmd(&c, groups_cmd(cmd), &a, words), want);
    got = want == 0 ? json_dumps(a.body, JSON_COMPACT | JSON_SORT_KEYS)
                    : strdup(c.err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (want == 0 ? strcmp(got, body) != 0 : strstr(got, body) == NULL) {
        fprintf(stderr, "\nwanted \"%s\" in \"%s\"\n", body, got);
        CU_FAIL("groups arguments");
    }
    free(got);
    tg_ctl_args_fini(&a);
    cap_close(&c);
}


/* groups create and update set every field the API's groups take. */
static void
test_group_fields(void)
{
    const char *all[] = {"4",       "--name",
                         "eu",      "--strategy",
                         "latency", "--description",
                         "d",       "--failure-threshold",
                         "3",       "--cooldown-ms",
                         "1000",    "--max-retries",
                         "1",       "--retry-deadline-ms",
                         "5000",    "--sticky",
                         "off",     "--sticky-ttl-ms",
                         "60000",   "--exploration",
                         "0.1",     "--translate",
                         "off",     "--wait-for-cooldown-ms",
                         "250",     NULL};
    const char *on[] = {"eu", "--translate", "on", "--sticky=true", NULL};
    const char *bad[] = {"eu", "--translate", "maybe", NULL};
    const char *bad_sticky[] = {"4", "--sticky", "1", NULL};
    const char *bad_expl[] = {"4", "--exploration", "5%", NULL};
    const char *bad_wait[] = {"4", "--wait-for-cooldown-ms", "1s", NULL};
    const char *no_name[] = {"eu", "--name", "other", NULL};

    check_group("update", all, 0,
                "{\"cooldown_ms\":1000,\"description\":\"d\","
                "\"exploration\":\"0.1\",\"failure_threshold\":3,"
                "\"max_retries\":1,\"name\":\"eu\","
                "\"retry_deadline_ms\":5000,\"sticky\":false,"
                "\"sticky_ttl_ms\":60000,\"strategy\":\"latency\","
                "\"translate\":false,\"wait_for_cooldown_ms\":250}");
    check_group("create", on, 0, "{\"sticky\":true,\"translate\":true}");
    check_group("create", bad, 2,
                "--translate: expected on or off, got 'maybe'");
    check_group("update", bad_sticky, 2,
                "--sticky: expected on or off, got '1'");
    check_group("update", bad_expl, 2,
                "--exploration: expected a decimal like 0.05, got '5%'");
    check_group("update", bad_wait, 2,
                "--wait-for-cooldown-ms: expected an integer, got '1s'");
    check_group("create", no_name, 2, "unknown option '--name'");
}


/* parse() of <words> fails with status 2 and stderr holding <msg>. */
static void
check_usage(const char *const *words, const char *msg)
{
    tg_ctl_args_t a;
    cap_t c;

    cap_open(&c);
    snprintf(c.ctl.cmd, sizeof(c.ctl.cmd), "users create");
    CU_ASSERT_EQUAL(parse(&c, &a, words), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.err, msg));
    if (strstr(c.err, msg) == NULL) {
        fprintf(stderr, "\nwanted \"%s\" in \"%s\"\n", msg, c.err);
    }
    /* One line, naming the command. */
    CU_ASSERT_EQUAL(strncmp(c.err, "tollctl: users create: ", 23), 0);
    CU_ASSERT_PTR_NOT_NULL(strchr(c.err, '\n'));
    CU_ASSERT_EQUAL(strchr(c.err, '\n') - c.err + 1, (long)c.errlen);
    tg_ctl_args_fini(&a);
    cap_close(&c);
}


static void
test_args_errors(void)
{
    const char *missing[] = {"1", NULL};
    const char *nopos[] = {"--name", "x", NULL};
    const char *unknown[] = {"1", "--name", "x", "--frob", NULL};
    const char *short_opt[] = {"1", "-x", NULL};
    const char *noval[] = {"1", "--name", NULL};
    const char *badint[] = {"1", "--name", "x", "--tokens-month", "lots", NULL};
    const char *badenum[] = {"1", "--name", "x", "--status", "c", NULL};
    const char *flagval[] = {"1", "--name", "x", "--yes=1", NULL};
    const char *extra[] = {"1", "2", "--name", "x", NULL};
    const char *badset[] = {"1", "--name", "x", "--set", "novalue", NULL};
    const char *badtimeout[] = {"1", "--name", "x", "--timeout", "soon", NULL};

    check_usage(missing, "--name is required");
    check_usage(nopos, "missing ID");
    check_usage(unknown, "unknown option '--frob'");
    check_usage(short_opt, "unknown option '-x'");
    check_usage(noval, "--name needs a value");
    check_usage(badint, "--tokens-month: expected an integer, got 'lots'");
    check_usage(badenum, "--status: expected one of a|b, got 'c'");
    check_usage(flagval, "--yes takes no value");
    check_usage(extra, "unexpected argument '2'");
    check_usage(badset, "--set expects field=value");
    check_usage(badtimeout, "--timeout: expected a duration");
}


/* Run tollctl <words> and expect status <want> and <msg> in stderr (or
 * stdout when <in_out>). */
static void
check_main(const char *const *words, int want, const char *msg, bool in_out)
{
    cap_t c;
    int rc;

    cap_open(&c);
    rc = cap_run(&c, words);
    CU_ASSERT_EQUAL(rc, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(in_out ? c.out : c.err, msg));
    if (rc != want || strstr(in_out ? c.out : c.err, msg) == NULL) {
        fprintf(stderr,
                "\n%s: rc %d, wanted %d and \"%s\"; out \"%s\" err "
                "\"%s\"\n",
                words[0], rc, want, msg, c.out, c.err);
    }
    cap_close(&c);
}


static void
test_main_usage(void)
{
    const char *none[] = {NULL};
    const char *help[] = {"--help", NULL};
    const char *version[] = {"--version", NULL};
    const char *unknown[] = {"frobnicate", NULL};
    const char *group[] = {"users", NULL};
    const char *group_help[] = {"keys", "--help", NULL};
    const char *sub_help[] = {"apps", "apply", "--help", NULL};
    const char *single_help[] = {"audit", "--help", NULL};
    const char *badsub[] = {"users", "frob", NULL};
    const char *badid[] = {"users", "get", "abc", NULL};
    const char *badid2[] = {"keys", "disable", "-1", NULL};
    const char *badurl[] = {"users", "list", "--url", "ftp://x", NULL};
    const char *lead[] = {"--url", "gopher://x", "users", "list", NULL};
    const char *kind[] = {"apps", "apply", "gold", NULL};
    const char *ma[] = {"apps", "apply", "model-access", "--models", "m", NULL};
    const char *qi[] = {"apps",     "apply", "quota-increase",
                        "--key-id", "3",     "--tokens-month",
                        "5",        NULL};
    const char *pw[] = {"users", "create",          "--username", "a",
                        "--set", "password=secret", NULL};
    const char *cred[] = {"endpoints", "add",   "e1",           "--url",
                          "http://u",  "--set", "credential=x", NULL};
    const char *nothing[] = {"users", "update", "3", NULL};
    const char *nopw[] = {"login", "admin", NULL};
    const char *nouser[] = {"login", NULL};
    const char *env[] = {"endpoints",
                         "add",
                         "e1",
                         "--url",
                         "http://u",
                         "--credential-env",
                         "TG_UNIT_UNSET_VARIABLE",
                         NULL};

    check_main(none, 2, "usage: tollctl", false);
    check_main(help, 0, "Commands:", true);
    check_main(version, 0, "tollctl " TG_CTL_VERSION, true);
    check_main(unknown, 2, "tollctl: unknown command 'frobnicate'", false);
    check_main(group, 2, "Subcommands:", false);
    check_main(group_help, 0, "rotate ID", true);
    check_main(sub_help, 0, "usage: tollctl apps apply KIND", true);
    check_main(single_help, 0, "Sends: GET /admin/api/audit", true);
    check_main(badsub, 2, "tollctl: users: unknown subcommand 'frob'", false);
    check_main(badid, 2, "expected a positive integer id, got 'abc'", false);
    check_main(badid2, 2, "expected a positive integer id, got '-1'", false);
    check_main(badurl, 2, "--url: 'ftp://x' is not an http:// or https://",
               false);
    check_main(lead, 2, "'gopher://x' is not an http://", false);
    check_main(kind, 2, "unknown kind 'gold'", false);
    check_main(ma, 2, "needs --key-id and --models", false);
    check_main(qi, 2, "--key-id does not apply to a quota_increase", false);
    check_main(pw, 2, "a password is never given on the command line", false);
    check_main(cred, 2, "a credential is never given on the command line",
               false);
    check_main(nothing, 2, "nothing to change", false);
    check_main(nopw, 2, "stdin is not a terminal", false);
    check_main(nouser, 2, "give the username", false);
    check_main(env, 2, "TG_UNIT_UNSET_VARIABLE is not set", false);
}


static void
test_clean(void)
{
    char buf[64];

    tg_ctl_clean(buf, sizeof(buf), "bob\x1b[31mred\x07", 0);
    CU_ASSERT_STRING_EQUAL(buf, "bob?[31mred?");
    tg_ctl_clean(buf, sizeof(buf),
                 "a\xc2\x9b"
                 "b\x7f",
                 0);
    CU_ASSERT_STRING_EQUAL(buf, "a?b?");
    tg_ctl_clean(buf, sizeof(buf), "caf\xc3\xa9 \xe2\x82\xac", 0);
    CU_ASSERT_STRING_EQUAL(buf, "caf\xc3\xa9 \xe2\x82\xac");
    CU_ASSERT_EQUAL(tg_ctl_width("caf\xc3\xa9 \xe2\x82\xac"), 6);
    tg_ctl_clean(buf, sizeof(buf), "abcdefghijkl", 8);
    CU_ASSERT_STRING_EQUAL(buf, "abcde...");
    tg_ctl_clean(buf, sizeof(buf), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                 4);
    CU_ASSERT_STRING_EQUAL(buf, "\xc3\xa9...");
    tg_ctl_clean(buf, 6, "abcdefghijkl", 0);
    CU_ASSERT_TRUE(strlen(buf) < 6);
}


static void
test_numbers(void)
{
    char b[128];

    tg_ctl_fmt_count(b, sizeof(b), 999);
    CU_ASSERT_STRING_EQUAL(b, "999");
    tg_ctl_fmt_count(b, sizeof(b), 9999);
    CU_ASSERT_STRING_EQUAL(b, "9999");
    tg_ctl_fmt_count(b, sizeof(b), 12345);
    CU_ASSERT_STRING_EQUAL(b, "12.3k");
    tg_ctl_fmt_count(b, sizeof(b), 5000000);
    CU_ASSERT_STRING_EQUAL(b, "5.0M");
    tg_ctl_fmt_count(b, sizeof(b), 999999);
    CU_ASSERT_STRING_EQUAL(b, "1.0M");
    tg_ctl_fmt_count(b, sizeof(b), 250000000);
    CU_ASSERT_STRING_EQUAL(b, "250M");
    tg_ctl_fmt_count(b, sizeof(b), -20000);
    CU_ASSERT_STRING_EQUAL(b, "-20.0k");
    tg_ctl_fmt_bytes(b, sizeof(b), 512);
    CU_ASSERT_STRING_EQUAL(b, "512 B");
    tg_ctl_fmt_bytes(b, sizeof(b), 1536);
    CU_ASSERT_STRING_EQUAL(b, "1.5 KiB");
    tg_ctl_fmt_bytes(b, sizeof(b), 237831616);
    CU_ASSERT_STRING_EQUAL(b, "227 MiB");
    tg_ctl_fmt_progress(b, sizeof(b), 2048, -1, 100, 2);
    CU_ASSERT_STRING_EQUAL(b, "2.0 KiB written, 1.0 KiB/s");
    tg_ctl_fmt_progress(b, sizeof(b), 5 * 1048576, 50000, 100000, 4);
    CU_ASSERT_STRING_EQUAL(b, "[##########----------]  50%  50000/100000 rows  "
                              "12.5k rows/s  ETA 4.00s  5.0 MiB");
    tg_ctl_fmt_progress(b, sizeof(b), 100, 10, 10, 0);
    CU_ASSERT_STRING_EQUAL(b, "[####################] 100%  10/10 rows  0 "
                              "rows/s  100 B");
    tg_ctl_fmt_us(b, sizeof(b), 0);
    CU_ASSERT_STRING_EQUAL(b, "0");
    tg_ctl_fmt_us(b, sizeof(b), 850);
    CU_ASSERT_STRING_EQUAL(b, "850us");
    tg_ctl_fmt_us(b, sizeof(b), 1250);
    CU_ASSERT_STRING_EQUAL(b, "1.25ms");
    tg_ctl_fmt_us(b, sizeof(b), 125000);
    CU_ASSERT_STRING_EQUAL(b, "125ms");
    tg_ctl_fmt_us(b, sizeof(b), 2500000);
    CU_ASSERT_STRING_EQUAL(b, "2.50s");
}


static void
test_times_shown(void)
{
    char b[64];

    tg_ctl_fmt_time(b, sizeof(b), "2026-12-02T13:55:00Z", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "5m ago");
    tg_ctl_fmt_time(b, sizeof(b), "2026-12-02T17:00:00Z", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "in 3h");
    tg_ctl_fmt_time(b, sizeof(b), "2026-11-30T14:00:00Z", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "2d ago");
    tg_ctl_fmt_time(b, sizeof(b), "2026-12-02T13:59:58Z", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "just now");
    tg_ctl_fmt_time(b, sizeof(b), "2025-01-31T00:00:00Z", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "2025-01-31");
    tg_ctl_fmt_time(b, sizeof(b), "2026-12-02T13:00:00Z", NOW, true);
    CU_ASSERT_STRING_EQUAL(b, "2026-12-02 13:00:00Z (1h ago)");
    tg_ctl_fmt_time(b, sizeof(b), "not a \x1btime", NOW, false);
    CU_ASSERT_STRING_EQUAL(b, "not a ?time");
}


static void
test_color(void)
{
    CU_ASSERT_TRUE(tg_ctl_color_wanted(true, NULL, "xterm"));
    CU_ASSERT_TRUE(tg_ctl_color_wanted(true, "", NULL));
    CU_ASSERT_FALSE(tg_ctl_color_wanted(true, "1", "xterm"));
    CU_ASSERT_FALSE(tg_ctl_color_wanted(true, NULL, "dumb"));
    CU_ASSERT_FALSE(tg_ctl_color_wanted(false, NULL, "xterm"));
}


static void
test_json_path(void)
{
    json_t *o = json_loads("{\"a\":{\"b\":1},\"c\":null,\"d\":\"x\"}", 0, NULL);

    CU_ASSERT_EQUAL(json_integer_value(tg_ctl_json_path(o, "a.b")), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(tg_ctl_json_path(o, "c|d")), "x");
    CU_ASSERT_STRING_EQUAL(json_string_value(tg_ctl_json_path(o, "z|d")), "x");
    CU_ASSERT_TRUE(json_is_null(tg_ctl_json_path(o, "c")));
    CU_ASSERT_PTR_NULL(tg_ctl_json_path(o, "a.b.c"));
    CU_ASSERT_PTR_NULL(tg_ctl_json_path(o, "zz"));
    json_decref(o);
}


static void
test_table(void)
{
    static const tg_ctl_col_t cols[] = {
        {"ID", "id", TG_CTL_F_INT, 0},
        {"NAME", "name", TG_CTL_F_TEXT, 8},
        {"STATUS", "status", TG_CTL_F_STATE, 0},
        {"TOKENS", "q.tokens", TG_CTL_F_COUNT, 0},
        {"MODELS", "models", TG_CTL_F_LIST, 0},
        {"RPM", "rpm", TG_CTL_F_LIMIT, 0},
        {NULL, NULL, 0, 0},
    };
    json_t *items = json_loads(
        "[{\"id\":1,\"name\":\"alice\",\"status\":\"active\","
        "\"q\":{\"tokens\":5000000},\"models\":[\"a\",\"b*\"],\"rpm\":0},"
        "{\"id\":12,\"name\":\"bob\\u001b[2Jxxxxxxx\",\"status\":\"disabled\","
        "\"q\":{\"tokens\":null},\"models\":[],\"rpm\":1500}]",
        0, NULL);
    json_t *empty = json_array();
    cap_t c;

    cap_open(&c);
    tg_ctl_table(&c.ctl, items, cols);
    cap_flush(&c);
    CU_ASSERT_STRING_EQUAL(c.out,
                           "ID  NAME      STATUS    TOKENS  MODELS   RPM\n"
                           " 1  alice     active      5.0M  a,b*       -\n"
                           "12  bob?[...  disabled       -  (all)   1500\n");
    cap_close(&c);

    cap_open(&c);
    c.ctl.color = true;
    tg_ctl_table(&c.ctl, items, cols);
    cap_flush(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.out, "\033[32mactive\033[0m"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.out, "\033[31mdisabled\033[0m"));
    cap_close(&c);

    cap_open(&c);
    tg_ctl_table(&c.ctl, empty, cols);
    tg_ctl_table(&c.ctl, items, NULL);
    cap_flush(&c);
    CU_ASSERT_EQUAL(strncmp(c.out, "(none)\nid  name", 15), 0);
    cap_close(&c);
    json_decref(items);
    json_decref(empty);
}


/* A USER column of usage rows: the name, else the id, and the id 0 (a
 * key of the configuration file, which has no user) as "-". */
static void
test_table_id(void)
{
    static const tg_ctl_col_t cols[] = {
        {"USER", "username|user_id", TG_CTL_F_ID, 0},
        {"REQUESTS", "requests", TG_CTL_F_COUNT, 0},
        {NULL, NULL, 0, 0},
    };
    json_t *items =
        json_loads("[{\"username\":\"alice\",\"user_id\":3,\"requests\":2},"
                   "{\"username\":null,\"user_id\":9,\"requests\":1},"
                   "{\"username\":null,\"user_id\":0,\"requests\":5}]",
                   0, NULL);
    cap_t c;

    cap_open(&c);
    tg_ctl_table(&c.ctl, items, cols);
    cap_flush(&c);
    CU_ASSERT_STRING_EQUAL(c.out, "USER   REQUESTS\n"
                                  "alice         2\n"
                                  "9             1\n"
                                  "-             5\n");
    cap_close(&c);
    json_decref(items);
}


static void
test_show(void)
{
    json_t *o = json_loads("{\"user_id\":7,\"username\":\"alice\","
                           "\"created_at\":\"2026-12-02T13:00:00Z\","
                           "\"quota\":{\"tokens_day\":null},"
                           "\"models\":[\"x\"],\"shm_bytes\":2048}",
                           0, NULL);
    cap_t c;

    cap_open(&c);
    tg_ctl_show(&c.ctl, o);
    cap_flush(&c);
    CU_ASSERT_STRING_EQUAL(c.out,
                           "user_id           7\n"
                           "username          alice\n"
                           "models            x\n"
                           "quota.tokens_day  -\n"
                           "shm_bytes         2.0 KiB\n"
                           "created_at        2026-12-02 13:00:00Z (1h ago)\n");
    cap_close(&c);
    json_decref(o);
}


static void
test_error_lines(void)
{
    json_t *e = json_loads("{\"error\":{\"code\":\"conflict\",\"message\":"
                           "\"username already exists\",\"field\":"
                           "\"username\"}}",
                           0, NULL);
    json_t *old = json_loads("{\"error\":\"not found\"}", 0, NULL);
    cap_t c;

    cap_open(&c);
    snprintf(c.ctl.cmd, sizeof(c.ctl.cmd), "users create");
    tg_ctl_error_response(&c.ctl, "POST /admin/api/users", 409, e, "", 0);
    tg_ctl_error_response(&c.ctl, "GET /x", 404, old, "", 0);
    tg_ctl_error_response(&c.ctl, "GET /y", 502, NULL, "<html>\nbad\n", 12);
    tg_ctl_error_response(&c.ctl, "GET /z", 500, NULL, "", 0);
    cap_flush(&c);
    CU_ASSERT_STRING_EQUAL(
        c.err, "tollctl: users create: POST /admin/api/users: 409 conflict: "
               "username already exists (field username)\n"
               "tollctl: users create: GET /x: 404: not found\n"
               "tollctl: users create: GET /y: HTTP 502 with a body that is "
               "not a JSON error: <html> bad \n"
               "tollctl: users create: GET /z: HTTP 500 with an empty body\n");
    cap_close(&c);
    json_decref(e);
    json_decref(old);
}


static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}


/* Answers of any shape print without a crash, bounded, and free of
 * control characters. */
static void
test_hostile_answers(void)
{
    static const char *const docs[] = {
        "[1, \"x\", null, [1, 2], {\"a\": {\"b\": {\"c\": {\"d\": "
        "{\"e\": {\"f\": 1}}}}}}]",
        "[{\"status\": 5, \"created_at\": 7, \"models\": [[1], {\"a\": "
        "2}], \"name\": \"\\u001b]0;pwn\\u0007\"}]",
        "[{\"id\": 1e300, \"tokens_month\": -9223372036854775807, "
        "\"latency_ms\": \"fast\", \"expires_at\": \"9999-99-99\"}]",
        NULL,
    };
    static const tg_ctl_col_t cols[] = {
        {"ID", "id", TG_CTL_F_INT, 0},
        {"TOKENS", "tokens_month", TG_CTL_F_COUNT, 0},
        {"LATENCY", "latency_ms", TG_CTL_F_MS, 0},
        {"EXPIRES", "expires_at", TG_CTL_F_TIME, 0},
        {NULL, NULL, 0, 0},
    };
    json_t *big = json_object(), *rows;
    char *huge = malloc(200000);
    size_t i;
    cap_t c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    memset(huge, 'x', 199999);
    huge[199999] = '\0';
    json_object_set_new(big, "name", json_string(huge));
    json_object_set_new(big, "list", json_pack("[s,s]", huge, huge));
    for (i = 0; docs[i] != NULL; i++) {
        json_t *v = json_loads(docs[i], 0, NULL);

        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        cap_open(&c);
        tg_ctl_table(&c.ctl, v, NULL);
        tg_ctl_table(&c.ctl, v, cols);
        tg_ctl_show(&c.ctl, json_array_get(v, json_array_size(v) - 1));
        cap_flush(&c);
        CU_ASSERT_PTR_NULL(strchr(c.out, '\033'));
        CU_ASSERT_PTR_NULL(strchr(c.out, '\007'));
        cap_close(&c);
        json_decref(v);
    }
    cap_open(&c);
    tg_ctl_show(&c.ctl, big);
    json_array_append_new(json_object_get(big, "list"), json_object());
    rows = json_pack("[O,O]", big, big);
    tg_ctl_table(&c.ctl, rows, NULL);
    json_decref(rows);
    cap_flush(&c);
    CU_ASSERT_TRUE(c.outlen < 8192);
    cap_close(&c);
    json_decref(big);
    free(huge);
}


/* A private XDG_CONFIG_HOME for the credentials tests, and the
 * environment they change, saved for cred_env_end. */
static struct {
    char dir[64];
    char *xdg, *tok, *url;
} cred_env;


static char *
env_dup(const char *name)
{
    return getenv(name) != NULL ? strdup(getenv(name)) : NULL;
}


static void
env_put(const char *name, const char *value)
{
    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}


/* Set up an empty configuration directory and write credentials for
 * http://127.0.0.1:9 into it; "<dir>/cfg/tollgate/credentials" into
 * <path>. */
static void
cred_env_begin(char *path, size_t len)
{
    json_t *user = json_pack("{s:s}", "username", "alice");
    cap_t c;

    snprintf(cred_env.dir, sizeof(cred_env.dir), "/tmp/tollctl-unit-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(cred_env.dir));
    cred_env.xdg = env_dup("XDG_CONFIG_HOME");
    cred_env.tok = env_dup("TOLLGATE_TOKEN");
    cred_env.url = env_dup("TOLLGATE_ADMIN_URL");
    snprintf(path, len, "%s/cfg", cred_env.dir);
    setenv("XDG_CONFIG_HOME", path, 1);
    unsetenv("TOLLGATE_TOKEN");
    unsetenv("TOLLGATE_ADMIN_URL");

    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 0);
    CU_ASSERT_STRING_EQUAL(c.ctl.url, TG_CTL_DEFAULT_URL);
    CU_ASSERT_STRING_EQUAL(c.ctl.token, "");
    CU_ASSERT_EQUAL(tg_ctl_cred_write(&c.ctl, "http://127.0.0.1:9/", "tgs_abc",
                                      user, "2026-12-03T00:00:00Z"),
                    0);
    cap_close(&c);
    json_decref(user);
    snprintf(path, len, "%s/cfg/tollgate/credentials", cred_env.dir);
}


static void
cred_env_end(void)
{
    nftw(cred_env.dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    env_put("XDG_CONFIG_HOME", cred_env.xdg);
    env_put("TOLLGATE_TOKEN", cred_env.tok);
    env_put("TOLLGATE_ADMIN_URL", cred_env.url);
    free(cred_env.xdg);
    free(cred_env.tok);
    free(cred_env.url);
    memset(&cred_env, 0, sizeof(cred_env));
}


static void
test_credentials(void)
{
    char path[256], dir[256];
    struct stat st;
    cap_t c;

    cred_env_begin(path, sizeof(path));
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/cfg/tollgate", cred_env.dir);
    CU_ASSERT_EQUAL_FATAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);

    /* The file's URL and token are used together. */
    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 0);
    CU_ASSERT_STRING_EQUAL(c.ctl.url, "http://127.0.0.1:9");
    CU_ASSERT_STRING_EQUAL(c.ctl.token, "tgs_abc");
    cap_close(&c);

    /* Another URL never gets this token. */
    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, "http://127.0.0.1:10"), 0);
    CU_ASSERT_STRING_EQUAL(c.ctl.token, "");
    cap_close(&c);

    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 0);
    CU_ASSERT_EQUAL(tg_ctl_cred_remove(&c.ctl), 0);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(tg_ctl_cred_remove(&c.ctl), 0);
    cap_close(&c);
    cred_env_end();
}


static void
test_credentials_refused(void)
{
    const char *logout[] = {"logout", NULL}, *login[] = {"login", NULL};
    char path[256];
    cap_t c;

    cred_env_begin(path, sizeof(path));
    /* TOLLGATE_TOKEN wins, and must be a valid header value. */
    setenv("TOLLGATE_TOKEN", "tgt_env", 1);
    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 0);
    CU_ASSERT_STRING_EQUAL(c.ctl.token, "tgt_env");
    CU_ASSERT_STRING_EQUAL(c.ctl.token_from, "TOLLGATE_TOKEN");
    cap_close(&c);
    setenv("TOLLGATE_TOKEN", "tgt_automation", 1);
    cap_open(&c);
    CU_ASSERT_EQUAL(cap_run(&c, logout), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "automation token"));
    cap_close(&c);
    setenv("TOLLGATE_TOKEN", "bad token\r\nX: y", 1);
    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 2);
    cap_close(&c);
    unsetenv("TOLLGATE_TOKEN");

    /* A file others can read is refused. */
    CU_ASSERT_EQUAL(chmod(path, 0644), 0);
    cap_open(&c);
    CU_ASSERT_EQUAL(tg_ctl_setup(&c.ctl, NULL), 1);
    cap_flush(&c);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "is readable by others (mode 0644)"));
    cap_close(&c);
    /* ... except by login, which replaces it. */
    cap_open(&c);
    CU_ASSERT_EQUAL(cap_run(&c, login), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "give the username"));
    cap_close(&c);
    cred_env_end();
}


/* Every command of every group has a summary, a run function and help
 * that prints; option names are unique within a command. */
static void
test_command_tables(void)
{
    const tg_ctl_group_t *g;
    const tg_ctl_cmd_t *c;
    const tg_ctl_opt_t *o, *p;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    for (g = tg_ctl_groups; g->name != NULL; g++) {
        CU_ASSERT_PTR_NOT_NULL(g->cmds[0].name);
        for (c = g->cmds; c->name != NULL; c++) {
            CU_ASSERT_PTR_NOT_NULL(c->run);
            CU_ASSERT_PTR_NOT_NULL(c->summary);
            CU_ASSERT_TRUE(c->pos_min <= c->pos_max);
            CU_ASSERT_TRUE(c->pos_max <= TG_CTL_POS_MAX);
            CU_ASSERT_TRUE(c->run != tg_ctl_run_list || c->route != NULL);
            CU_ASSERT_TRUE(c->run != tg_ctl_run_get || c->route != NULL);
            CU_ASSERT_TRUE(c->run != tg_ctl_run_send || c->route != NULL);
            for (o = c->opts; o != NULL && o->name != NULL; o++) {
                for (p = o + 1; p->name != NULL; p++) {
                    CU_ASSERT_STRING_NOT_EQUAL(o->name, p->name);
                }
            }
            f = open_memstream(&buf, &len);
            tg_ctl_help_cmd(f, g, c);
            fclose(f);
            CU_ASSERT_PTR_NOT_NULL(strstr(buf, "usage: tollctl "));
            free(buf);
            buf = NULL;
        }
    }
}


int
tg_test_tollctl_register(void)
{
    CU_pSuite s = CU_add_suite("tollctl", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "durations parse with units and refuse junk",
                     test_duration) ||
        !CU_add_test(s, "times parse as dates, RFC 3339 and relative",
                     test_time) ||
        !CU_add_test(s, "option values convert or are refused", test_values) ||
        !CU_add_test(s, "options land in the body, query or command",
                     test_args) ||
        !CU_add_test(s, "bad arguments are one usage line", test_args_errors) ||
        !CU_add_test(s, "groups create and update take every group field",
                     test_group_fields) ||
        !CU_add_test(s, "commands refuse bad usage with status 2",
                     test_main_usage) ||
        !CU_add_test(s, "server text loses control characters", test_clean) ||
        !CU_add_test(s, "numbers are shown short", test_numbers) ||
        !CU_add_test(s, "times are shown relative or as dates",
                     test_times_shown) ||
        !CU_add_test(s, "colour only on a terminal without NO_COLOR",
                     test_color) ||
        !CU_add_test(s, "field paths and alternatives resolve",
                     test_json_path) ||
        !CU_add_test(s, "tables align, cut and colour", test_table) ||
        !CU_add_test(s, "an id of 0 in a table is \"-\"", test_table_id) ||
        !CU_add_test(s, "objects are shown as aligned fields", test_show) ||
        !CU_add_test(s, "server errors become one line", test_error_lines) ||
        !CU_add_test(s, "answers of any shape print bounded and clean",
                     test_hostile_answers) ||
        !CU_add_test(s, "credentials are private and bound to their URL",
                     test_credentials) ||
        !CU_add_test(s, "unsafe credentials and tokens are refused",
                     test_credentials_refused) ||
        !CU_add_test(s, "every command has help and a runner",
                     test_command_tables)) {
        return -1;
    }
    return 0;
}
