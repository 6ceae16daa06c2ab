/*
 * tests/integration/test_usage_hosts.h
 *      Usage tests with two hosts and the batch ledger's retention, listed
 *      in test_usage_pg.c's table.
 */
#ifndef TG_TESTS_INTEGRATION_TEST_USAGE_HOSTS_H
#define TG_TESTS_INTEGRATION_TEST_USAGE_HOSTS_H

/* One user's daily token quota across two hosts on one database. */
void tg_it_usage_quota_two_hosts(void);

/* usage_batches rows past usage.batch_retention purged in chunks. */
void tg_it_usage_batches_purged(void);

#endif /* TG_TESTS_INTEGRATION_TEST_USAGE_HOSTS_H */
