/*
 * tests/integration/test_load.c
 *      Concurrency: a thousand streams at once through tollgate.
 *
 * NOTES
 *      tools/loadgen drives the connections and checks every stream for its
 *      end marker (sse_unterminated); the mock's ledger and tollgate's
 *      access log confirm the count from both sides.  Each stream waits
 *      10 ms before each of its 20 chunks, so all thousand are open at the
 *      same time rather than finishing one after another.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define STREAMS 1000
#define CHUNKS  20


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


static void
test_thousand_streams(void)
{
    static const char *const ledger_ok[] = {"\"stream\":true", "\"status\":200",
                                            "\"completed\":true", NULL};
    static const char *const access_ok[] = {"\"POST /v1/messages\" 200", " ok",
                                            NULL};
    tg_it_fixture_t f;
    tg_it_proc_t lg;
    char bin[4096], url[128], c[16], n[16], *out;
    char *argv[32];
    int i = 0, st;
    long long events;

    tg_it_fixture_init(&f);
    /* Info, not debug: a thousand streams of debug lines only slow down. */
    tg_it_conf_set(&f.conf, "log.level", "\"info\"");
    tg_it_fixture_start(&f);

    snprintf(bin, sizeof(bin), "%s/loadgen", tg_it_build());
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", f.port);
    snprintf(c, sizeof(c), "%d", STREAMS);
    snprintf(n, sizeof(n), "%d", STREAMS);
    argv[i++] = bin;
    argv[i++] = "-u";
    argv[i++] = url;
    argv[i++] = "-c";
    argv[i++] = c;
    argv[i++] = "-n";
    argv[i++] = n;
    argv[i++] = "--body";
    argv[i++] = TG_IT_BODY_MESSAGES_STREAM;
    argv[i++] = "-H";
    argv[i++] = "x-api-key: " TG_IT_KEY;
    argv[i++] = "-H";
    argv[i++] = "anthropic-version: 2023-06-01";
    argv[i++] = "-H";
    argv[i++] = "x-mock-chunks: 20";
    argv[i++] = "-H";
    argv[i++] = "x-mock-delay-ms: 10";
    argv[i++] = "--expect-status";
    argv[i++] = "200";
    argv[i++] = "--timeout-s";
    argv[i++] = "30";
    argv[i] = NULL;
    tg_it_proc_start(&lg, "loadgen", argv);
    TG_IT_CHECKF(tg_it_proc_wait(&lg, 45000), "loadgen ran over 45 s");
    out = tg_it_file_read(lg.out, NULL);
    TG_IT_CHECK(out != NULL);
    tg_it_note("loadgen:\n%s", out);
    st = lg.status;
    TG_IT_CHECK_INT(loadgen_value(out, "completed"), STREAMS);
    TG_IT_CHECK_INT(loadgen_value(out, "errors"), 0);
    TG_IT_CHECK_INT(loadgen_value(out, "status_2xx"), STREAMS);
    TG_IT_CHECK_INT(loadgen_value(out, "sse_unterminated"), 0);
    TG_IT_CHECK_INT(loadgen_value(out, "sse_error_events"), 0);
    events = loadgen_value(out, "sse_events");
    TG_IT_CHECKF(events >= (long long)STREAMS * (CHUNKS + 4),
                 "only %lld events for %d streams of %d chunks", events,
                 STREAMS, CHUNKS);
    TG_IT_CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                 "loadgen wait status 0x%x", st);
    free(out);

    TG_IT_CHECK_INT(tg_it_file_wait_count(f.ledger, ledger_ok, STREAMS, 5000),
                    STREAMS);
    TG_IT_CHECK_INT(
        tg_it_file_wait_count(f.access_log, access_ok, STREAMS, 5000), STREAMS);
    tg_it_fixture_stop(&f);
}


const tg_it_test_t tg_it_load_tests[] = {
    {"one thousand concurrent streaming connections all complete",
     test_thousand_streams},
    {NULL, NULL},
};
