/*
 * tests/unit/unit.h
 *      Suite registration functions, one per module
 * (tests/unit/test_<module>.c).
 *
 * NOTES
 *      Each returns 0 on success, non-zero when CUnit could not add the
 *      suite or a test.  Test names are sentences.
 */
#ifndef TG_TESTS_UNIT_UNIT_H
#define TG_TESTS_UNIT_UNIT_H

int tg_test_buf_register(void);
int tg_test_agg_spool_register(void);
int tg_test_tollctl_register(void);
int tg_test_ev_register(void);
int tg_test_http_register(void);
int tg_test_http_chunked_register(void);
int tg_test_sse_register(void);
int tg_test_conf_register(void);
int tg_test_json_register(void);
int tg_test_shm_keys_register(void);
int tg_test_shm_rl_register(void);
int tg_test_shm_ring_register(void);
int tg_test_shm_ep_register(void);
int tg_test_shm_sticky_register(void);
int tg_test_shm_metrics_register(void);
int tg_test_route_register(void);
int tg_test_decode_register(void);
int tg_test_crypto_register(void);
int tg_test_api_register(void);
int tg_test_publish_register(void);
int tg_test_pg_register(void);
int tg_test_usage_register(void);
int tg_test_request_register(void);
int tg_test_limit_register(void);
int tg_test_shm_inflight_register(void);
int tg_test_shm_epconf_register(void);
int tg_test_shm_prices_register(void);
int tg_test_shm_quota_register(void);
int tg_test_translate_register(void);
int tg_test_usage_resp_register(void);
int tg_test_events_store_register(void);

/* Directory holding tests/data, from $TG_SRCDIR or "." */
const char *tg_test_srcdir(void);

#endif /* TG_TESTS_UNIT_UNIT_H */
