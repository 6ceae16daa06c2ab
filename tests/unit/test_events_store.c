/*
 * tests/unit/test_events_store.c
 *      CUnit suite "events_store": the bounded buffer of endpoint events
 *      waiting for PostgreSQL.
 *
 * NOTES
 *      No store is started here, so the database is never ready: every
 *      event stays buffered, which is the state of an outage.  The bound
 *      and the drop counter are checked there; that batches reach a real
 *      PostgreSQL is the integration tests' part (test_store.c,
 *      test_tollctl.c).
 */
#include "admin/events_store.h"
#include "core/core.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tg_test_es_event[] =
    "{\"event_id\":1,\"time_ms\":1795318587600,\"host\":\"gw1\","
    "\"endpoint\":\"relay\",\"endpoint_index\":0,\"type\":\"opened\","
    "\"from_state\":\"closed\",\"to_state\":\"open\",\"reason\":\"x\","
    "\"status\":1007,\"consecutive\":3,\"until_ms\":null,\"pid\":1,"
    "\"source\":\"worker\"}";


static tg_conf_t *
tg_test_es_conf(const char *database)
{
    tg_conf_t *conf = calloc(1, sizeof(*conf));

    if (conf != NULL) {
        snprintf(conf->database, sizeof(conf->database), "%s", database);
        conf->events_months = 12;
    }
    return conf;
}


static void
test_es_bounded_while_down(void)
{
    tg_conf_t *conf = tg_test_es_conf("host=/nonexistent dbname=x");
    const tg_events_store_stats_t *st;
    uint32_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(tg_events_store_init(conf), TG_OK);
    for (i = 0; i < TG_EVENTS_STORE_MAX + 5; i++) {
        tg_events_store_add(tg_test_es_event, sizeof(tg_test_es_event) - 1);
        tg_events_store_tick(1000 + i);
    }
    st = tg_events_store_stats();
    CU_ASSERT_EQUAL(st->pending, TG_EVENTS_STORE_MAX);
    CU_ASSERT_EQUAL(st->dropped, 5);
    CU_ASSERT_EQUAL(st->stored, 0);
    CU_ASSERT_EQUAL(st->failed, 0);
    tg_events_store_fini();
    free(conf);
}


static void
test_es_config_only(void)
{
    tg_conf_t *conf = tg_test_es_conf("");
    const tg_events_store_stats_t *st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_EQUAL(tg_events_store_init(conf), TG_OK);
    tg_events_store_add(tg_test_es_event, sizeof(tg_test_es_event) - 1);
    tg_events_store_tick(1000);
    st = tg_events_store_stats();
    CU_ASSERT_EQUAL(st->pending, 0);
    CU_ASSERT_EQUAL(st->dropped, 0);
    tg_events_store_fini();
    free(conf);
}


static void
test_es_oversized(void)
{
    tg_conf_t *conf = tg_test_es_conf("host=/nonexistent dbname=x");
    char big[2048];

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    memset(big, 'x', sizeof(big));
    CU_ASSERT_EQUAL(tg_events_store_init(conf), TG_OK);
    tg_events_store_add(big, sizeof(big));
    tg_events_store_add(tg_test_es_event, 0);
    tg_events_store_add(tg_test_es_event, sizeof(tg_test_es_event) - 1);
    CU_ASSERT_EQUAL(tg_events_store_stats()->dropped, 2);
    CU_ASSERT_EQUAL(tg_events_store_stats()->pending, 1);
    tg_events_store_fini();
    free(conf);
}


/* Lines of the file at <path> (-1 when it cannot be read). */
static int
tg_test_es_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int ch, n = 0;

    if (f == NULL) {
        return -1;
    }
    while ((ch = fgetc(f)) != EOF) {
        n += ch == '\n';
    }
    fclose(f);
    return n;
}


/* Events waiting for PostgreSQL are journalled and read back by the next
 * start; a damaged or foreign line in the journal is left out. */
static void
test_es_journal(void)
{
    tg_conf_t *conf = tg_test_es_conf("host=/nonexistent dbname=x");
    char dir[] = "/tmp/tg-es-XXXXXX", path[4200], cmd[160];
    FILE *f;
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(conf->spool_dir, sizeof(conf->spool_dir), "%s/spool", dir);
    snprintf(path, sizeof(path), "%s/events.journal", conf->spool_dir);
    CU_ASSERT_EQUAL(tg_events_store_init(conf), TG_OK);
    for (i = 0; i < 3; i++) {
        tg_events_store_add(tg_test_es_event, sizeof(tg_test_es_event) - 1);
    }
    CU_ASSERT_EQUAL(tg_test_es_lines(path), 0); /* not before the tick */
    tg_events_store_tick(1000);
    CU_ASSERT_EQUAL(tg_test_es_lines(path), 3);
    tg_events_store_fini();

    /* As a crash may leave it: a cut line, garbage, an array. */
    f = fopen(path, "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not json\n[1,2]\n{\"a\":1,\"a\":2}\n", f);
    fprintf(f, "%.*s", 40, tg_test_es_event);
    fclose(f);
    CU_ASSERT_EQUAL(tg_events_store_init(conf), TG_OK);
    CU_ASSERT_EQUAL(tg_events_store_stats()->pending, 3);
    CU_ASSERT_EQUAL(tg_test_es_lines(path), 3); /* rewritten, clean */
    tg_events_store_add(tg_test_es_event, sizeof(tg_test_es_event) - 1);
    tg_events_store_tick(2000);
    CU_ASSERT_EQUAL(tg_events_store_stats()->pending, 4);
    CU_ASSERT_EQUAL(tg_test_es_lines(path), 4);
    tg_events_store_fini();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(conf);
}


int
tg_test_events_store_register(void)
{
    CU_pSuite s = CU_add_suite("events_store", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s,
                    "while the database is down at most 8,192 events wait "
                    "and the rest are counted as dropped",
                    test_es_bounded_while_down) == NULL ||
        CU_add_test(s, "without a database nothing is kept or counted",
                    test_es_config_only) == NULL ||
        CU_add_test(s, "an empty or oversized event is dropped and counted",
                    test_es_oversized) == NULL ||
        CU_add_test(s,
                    "waiting events are journalled and read back at start, "
                    "damaged lines left out",
                    test_es_journal) == NULL) {
        return -1;
    }
    return 0;
}
