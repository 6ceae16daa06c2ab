/*
 * tests/unit/test_shm_prices.c
 *      CUnit suite "shm_prices": the price table (shm/prices.c) and the
 *      cost arithmetic: exact integers, rounding bound, overflow.
 */
#include "shm/prices.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_shm_prices_t *
prices_table(void)
{
    void *mem = aligned_alloc(64, tg_shm_prices_size());

    return tg_shm_prices_init(mem);
}


static tg_shm_price_t
prices_row(const char *pat, uint64_t in, uint64_t out)
{
    tg_shm_price_t r;

    memset(&r, 0, sizeof(r));
    snprintf(r.pattern, sizeof(r.pattern), "%s", pat);
    r.pusd[TG_PRICE_INPUT] = in;
    r.pusd[TG_PRICE_OUTPUT] = out;
    r.pusd[TG_PRICE_CACHE_READ] = in / 10;
    r.pusd[TG_PRICE_CACHE_5M] = in * 5 / 4;
    r.pusd[TG_PRICE_CACHE_1H] = in * 2;
    return r;
}


static void
test_prices_most_specific_pattern_wins(void)
{
    tg_shm_prices_t *t = prices_table();
    tg_shm_price_t rows[4];
    uint64_t p[TG_PRICE_N];

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    rows[0] = prices_row("claude-*", 1, 2);
    rows[1] = prices_row("claude-sonnet-4-5*", 3000000, 15000000);
    rows[2] = prices_row("gpt-4o", 2500000, 10000000);
    rows[3] = prices_row("gpt-4o*", 7, 8);
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, 4), TG_SHM_OK);
    CU_ASSERT_EQUAL(
        tg_shm_prices_lookup(t, "claude-sonnet-4-5-20250929", 26, p),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(p[TG_PRICE_INPUT], 3000000);
    CU_ASSERT_EQUAL(p[TG_PRICE_CACHE_1H], 6000000);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "claude-haiku", 12, p), TG_SHM_OK);
    CU_ASSERT_EQUAL(p[TG_PRICE_INPUT], 1);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "gpt-4o", 6, p), TG_SHM_OK);
    CU_ASSERT_EQUAL(p[TG_PRICE_OUTPUT], 10000000);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "gpt-4o-mini", 11, p), TG_SHM_OK);
    CU_ASSERT_EQUAL(p[TG_PRICE_OUTPUT], 8);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "llama", 5, p), TG_SHM_MISS);
    /* A new set replaces the whole table. */
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, 1), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "gpt-4o", 6, p), TG_SHM_MISS);
    free(t);
}


static void
test_prices_bad_rows_are_refused(void)
{
    tg_shm_prices_t *t = prices_table();
    tg_shm_price_t rows[2];
    uint64_t p[TG_PRICE_N];

    rows[0] = prices_row("a*", 1, 1);
    rows[1] = prices_row("", 1, 1);
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, 1), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, 2), TG_SHM_INVAL);
    memset(rows[1].pattern, 'x', sizeof(rows[1].pattern));
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, 2), TG_SHM_INVAL);
    CU_ASSERT_EQUAL(tg_shm_prices_set(t, rows, TG_SHM_PRICES_MAX + 1),
                    TG_SHM_INVAL);
    /* Refused sets left the table as it was. */
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(t, "ab", 2, p), TG_SHM_OK);
    free(t);
}


static void
test_prices_cost_is_exact_and_rounds_once(void)
{
    /* Claude Sonnet list prices, USD per MTok: 3 in, 15 out, 0.30 cache
     * read, 3.75 cache write 5m, 6 cache write 1h. */
    uint64_t p[TG_PRICE_N] = {3000000, 15000000, 300000, 3750000, 6000000};
    uint64_t tok[TG_PRICE_N] = {1234, 567, 89012, 3456, 78};
    uint64_t cost, want;

    want = 1234 * 3000000ull + 567 * 15000000ull + 89012 * 300000ull +
           3456 * 3750000ull + 78 * 6000000ull;
    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 1000, &cost), TG_SHM_OK);
    CU_ASSERT_EQUAL(cost, want);
    /* A factor of 0.8: exact here, since want is a multiple of 5. */
    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 800, &cost), TG_SHM_OK);
    CU_ASSERT_EQUAL(cost, want / 5 * 4);
}


static void
test_prices_rounding_loses_under_one_pico_dollar(void)
{
    uint64_t p[TG_PRICE_N] = {1, 0, 0, 0, 0};
    uint64_t tok[TG_PRICE_N] = {0};
    uint64_t cost, n;
    uint32_t f;

    /* tokens x 1 pUSD x f/1000 must be within half a pUSD of the real
     * value, for every factor and a spread of token counts. */
    for (f = 1; f <= 3000; f += 7) {
        for (n = 1; n < 2000; n += 13) {
            unsigned long long exact_milli = n * f; /* in 1e-15 USD */
            long long diff;

            tok[TG_PRICE_INPUT] = n;
            CU_ASSERT_EQUAL_FATAL(tg_shm_prices_cost(tok, p, f, &cost),
                                  TG_SHM_OK);
            diff = (long long)(cost * 1000) - (long long)exact_milli;
            CU_ASSERT_FATAL(diff <= 500 && diff >= -500);
        }
    }
}


static void
test_prices_overflow_is_caught(void)
{
    uint64_t p[TG_PRICE_N] = {UINT64_MAX, UINT64_MAX, 0, 0, 0};
    uint64_t tok[TG_PRICE_N] = {UINT64_MAX, UINT64_MAX, 0, 0, 0};
    uint64_t cost = 0;

    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 1000, &cost), TG_SHM_FULL);
    CU_ASSERT_EQUAL(cost, UINT64_MAX);
    /* Products that fit 128 bits but whose sum exceeds 64 bits. */
    p[0] = p[1] = 1ull << 40;
    tok[0] = tok[1] = 1ull << 24;
    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 1000, &cost), TG_SHM_FULL);
    /* The largest that fits. */
    tok[1] = 0;
    tok[0] = 1;
    p[0] = UINT64_MAX;
    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 1000, &cost), TG_SHM_OK);
    CU_ASSERT_EQUAL(cost, UINT64_MAX);
    CU_ASSERT_EQUAL(tg_shm_prices_cost(tok, p, 1001, &cost), TG_SHM_FULL);
}


int
tg_test_shm_prices_register(void)
{
    CU_pSuite s = CU_add_suite("shm_prices", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "the most specific pattern wins",
                    test_prices_most_specific_pattern_wins) == NULL ||
        CU_add_test(s, "bad rows are refused and change nothing",
                    test_prices_bad_rows_are_refused) == NULL ||
        CU_add_test(s, "cost is exact and rounds once",
                    test_prices_cost_is_exact_and_rounds_once) == NULL ||
        CU_add_test(s, "rounding loses under one pico-dollar",
                    test_prices_rounding_loses_under_one_pico_dollar) == NULL ||
        CU_add_test(s, "overflow is caught", test_prices_overflow_is_caught) ==
            NULL) {
        return -1;
    }
    return 0;
}
