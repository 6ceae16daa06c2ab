/*
 * tests/integration/test_sdk.c
 *      The official Anthropic and OpenAI SDKs (Node.js builds, from
 *      tests/sdk) against a real tollgate in front of the mock upstream.
 *
 * NOTES
 *      tests/sdk/check.mjs runs seven checks (non-streamed and streamed
 *      answers on both APIs, the models list, a bad key on each API) and
 *      exits non-zero if any failed.  `make deps` installs Node.js and the
 *      pinned SDK versions (tests/sdk/package-lock.json); without them this
 *      test fails and says how to install them, it never passes silently.
 */
#include "tests/integration/harness.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>


static void
test_official_sdks(void)
{
    tg_it_fixture_t f;
    char url[64], out[8192];
    char *argv[] = {"/usr/bin/env", "node", "tests/sdk/check.mjs", url,
                    TG_IT_KEY,      NULL};
    int rc;

    if (access("tests/sdk/node_modules/@anthropic-ai/sdk/package.json", R_OK) !=
            0 ||
        access("tests/sdk/node_modules/openai/package.json", R_OK) != 0) {
        tg_it_fail(__FILE__, __LINE__,
                   "the SDKs are not installed in tests/sdk/node_modules; "
                   "run `make deps` (or `npm ci` in tests/sdk)");
    }
    tg_it_fixture_init(&f);
    tg_it_fixture_start(&f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
    rc = tg_it_run(argv, out, sizeof(out), 30000);
    tg_it_note("%s", out);
    TG_IT_CHECK_INT(rc, 0);
    TG_IT_CHECK(strstr(out, "ok   anthropic sdk: streamed message") != NULL);
    TG_IT_CHECK(strstr(out, "ok   openai sdk: streamed chat completion") !=
                NULL);
    TG_IT_CHECK(strstr(out, "FAIL") == NULL);
    tg_it_fixture_stop(&f);
}


/*
 * Upstream errors through tollgate with one anthropic endpoint, as the
 * Anthropic SDK sees them with its default retries and with none: a single
 * 529 never makes the next request fail without reaching the upstream, and
 * a lasting 529 or 429 ends as the upstream's own error (tests/sdk/
 * errors.mjs counts what reached the mock).
 */
static void
test_sdk_upstream_errors(void)
{
    tg_it_fixture_t f;
    char url[64], mock[64], out[16384];
    char *argv[] = {
        "/usr/bin/env", "node", "tests/sdk/errors.mjs", url, TG_IT_KEY,
        mock,           NULL};
    int rc;

    if (access("tests/sdk/node_modules/@anthropic-ai/sdk/package.json", R_OK) !=
        0) {
        tg_it_fail(__FILE__, __LINE__,
                   "the SDKs are not installed in tests/sdk/node_modules; "
                   "run `make deps` (or `npm ci` in tests/sdk)");
    }
    tg_it_fixture_init(&f);
    tg_it_conf_set(&f.conf, "log.level", "\"info\"");
    /* One endpoint for the Anthropic API, and no translation to the
     * OpenAI one: the upstream's own answers are under test. */
    tg_it_conf_set(&f.conf, "groups",
                   "( { name = \"default\"; translate = false; } )");
    tg_it_fixture_start(&f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
    snprintf(mock, sizeof(mock), "http://127.0.0.1:%d", f.mock_port);
    rc = tg_it_run(argv, out, sizeof(out), 60000);
    tg_it_note("%s", out);
    TG_IT_CHECK_INT(rc, 0);
    TG_IT_CHECK(strstr(out, "ok   retries off: 529 once") != NULL);
    TG_IT_CHECK(strstr(out, "ok   default retries: an upstream that always "
                            "answers 429") != NULL);
    TG_IT_CHECK(strstr(out, "FAIL") == NULL);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_sdk_tests[] = {
    {"the Anthropic SDK sees a sole upstream's 529 and 429 as they are, and "
     "the request after a single 529 reaches the upstream",
     test_sdk_upstream_errors},
    {"the official Anthropic and OpenAI SDKs get streamed and non-streamed "
     "answers through tollgate",
     test_official_sdks},
    {NULL, NULL},
};
