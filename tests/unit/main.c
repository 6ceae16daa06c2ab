/*
 * tests/unit/main.c
 *      CUnit runner: registers one suite per module and prints the closing
 *      line "unit: N passed, M failed".
 *
 * NOTES
 *      Exits non-zero when CUnit itself failed (CU_get_error) or when any
 *      assertion failed (CU_get_number_of_failures); CU_get_error alone would
 *      let failed assertions pass.  A single test may be run with
 *      `unit-tests SUITE [TEST]`.
 */
#include "tests/unit/unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*reg)(void);
} tg_test_suites[] = {
    {"buf", tg_test_buf_register},
    {"agg_spool", tg_test_agg_spool_register},
    {"tollctl", tg_test_tollctl_register},
    {"ev", tg_test_ev_register},
    {"http", tg_test_http_register},
    {"http_chunked", tg_test_http_chunked_register},
    {"sse", tg_test_sse_register},
    {"conf", tg_test_conf_register},
    {"json", tg_test_json_register},
    {"shm_keys", tg_test_shm_keys_register},
    {"shm_rl", tg_test_shm_rl_register},
    {"shm_ring", tg_test_shm_ring_register},
    {"shm_ep", tg_test_shm_ep_register},
    {"shm_sticky", tg_test_shm_sticky_register},
    {"shm_metrics", tg_test_shm_metrics_register},
    {"route", tg_test_route_register},
    {"decode", tg_test_decode_register},
    {"crypto", tg_test_crypto_register},
    {"api", tg_test_api_register},
    {"publish", tg_test_publish_register},
    {"pg", tg_test_pg_register},
    {"usage", tg_test_usage_register},
    {"translate", tg_test_translate_register},
    {"request", tg_test_request_register},
    {"limit", tg_test_limit_register},
    {"shm_inflight", tg_test_shm_inflight_register},
    {"shm_epconf", tg_test_shm_epconf_register},
    {"shm_prices", tg_test_shm_prices_register},
    {"shm_quota", tg_test_shm_quota_register},
    {"usage_resp", tg_test_usage_resp_register},
    {"events_store", tg_test_events_store_register},
};


/* The source tree root, for tests that read tests/data; $TG_SRCDIR or ".". */
const char *
tg_test_srcdir(void)
{
    const char *d = getenv("TG_SRCDIR");

    return (d != NULL && d[0] != '\0') ? d : ".";
}


int
main(int argc, char **argv)
{
    unsigned int tests, failures, asserts, failed_tests;
    size_t i;
    int rc;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CU_initialize_registry failed\n");
        return 1;
    }
    for (i = 0; i < sizeof(tg_test_suites) / sizeof(tg_test_suites[0]); i++) {
        if (tg_test_suites[i].reg() != 0) {
            fprintf(stderr, "registering suite %s failed: %s\n",
                    tg_test_suites[i].name, CU_get_error_msg());
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_NORMAL);
    if (argc >= 2) {
        CU_pSuite s = CU_get_suite(argv[1]);

        if (s == NULL) {
            fprintf(stderr, "no suite %s\n", argv[1]);
            CU_cleanup_registry();
            return 1;
        }
        if (argc >= 3) {
            CU_pTest t = CU_get_test(s, argv[2]);

            if (t == NULL) {
                fprintf(stderr, "no test \"%s\" in suite %s\n", argv[2],
                        argv[1]);
                CU_cleanup_registry();
                return 1;
            }
            CU_basic_run_test(s, t);
        } else {
            CU_basic_run_suite(s);
        }
    } else {
        CU_basic_run_tests();
    }
    tests = CU_get_number_of_tests_run();
    failed_tests = CU_get_number_of_tests_failed();
    failures = CU_get_number_of_failures();
    asserts = CU_get_number_of_asserts();
    rc = (CU_get_error() != CUE_SUCCESS || failures != 0) ? 1 : 0;
    printf("\nunit: %u passed, %u failed (%u assertions)\n",
           tests - failed_tests, failed_tests, asserts);
    CU_cleanup_registry();
    return rc;
}
