/*
 * tests/unit/test_shm_quota.c
 *      CUnit suite "shm_quota": quota reservations, settlement, periods
 *      and their rollover, bases, cache-read settings, crash reclaim,
 *      and parallel reservations from many processes (shm/quota.c).
 *
 * NOTES
 *      A small region is created as master would create it; the parallel
 *      test forks 50 processes that each reserve once against a nearly
 *      spent budget.
 */
#include "shm/quota.h"
#include "shm/seqlock.h"
#include "shm/shm.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QDAY   TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_TOKENS)
#define QMONTH TG_SHM_Q_I(TG_SHM_Q_MONTH, TG_SHM_Q_TOKENS)
#define QCDAY  TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_COST)

static tg_shm_t quota_shm;

/* 2026-12-02 00:00 UTC and 2026-12-01 00:00 UTC. */
static const uint64_t day1[2] = {1796169600ull, 1796083200ull};
/* The next day, same month. */
static const uint64_t day2[2] = {1796256000ull, 1796083200ull};


static tg_shm_quotas_t *
quota_table(void)
{
    tg_shm_sizes_t sizes = {4, 64, 8, 4, 16, 64, 16, 64, 0};
    char err[256];

    tg_shm_destroy(&quota_shm);
    if (tg_shm_create(&quota_shm, &sizes, err, sizeof(err)) != 0) {
        fprintf(stderr, "\n  tg_shm_create: %s", err);
        return NULL;
    }
    return tg_shm_quotas(&quota_shm);
}


static void
quota_limits(tg_shm_quotas_t *t, uint32_t idx, uint32_t flags, uint64_t day,
             uint64_t month, uint64_t cost_day)
{
    uint64_t l[TG_SHM_Q_N] = {0};

    l[QDAY] = day;
    l[QMONTH] = month;
    l[QCDAY] = cost_day;
    CU_ASSERT_EQUAL(tg_shm_quota_set_limits(t, idx, 42, flags, l), TG_SHM_OK);
}


static void
test_quota_reserve_refuses_what_does_not_fit(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_qres_t r[4];
    tg_shm_quota_refusal_t why;
    uint64_t est[2] = {400, 0}, use[TG_SHM_Q_N];
    uint32_t idx = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(r, 0, sizeof(r));
    quota_limits(t, idx, 0, 1000, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[0], &why),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[1], &why),
                    TG_SHM_OK);
    /* 800 of 1000 held: some budget is left, so a third one passes. */
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[2], &why),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[3], &why),
                    TG_SHM_LIMIT);
    CU_ASSERT_EQUAL(why.period, TG_SHM_Q_DAY);
    CU_ASSERT_EQUAL(why.measure, TG_SHM_Q_TOKENS);
    CU_ASSERT_EQUAL(why.limit, 1000);
    CU_ASSERT_EQUAL(why.in_use, 1200);
    CU_ASSERT_EQUAL(r[3].state, 0);
    /* The refused one gave its estimate back: 1200 held. */
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 1200);
    /* Settling to less than the estimate frees the difference. */
    tg_shm_quota_settle(t, &r[0], day1, 100, 0, 0);
    CU_ASSERT_EQUAL(r[0].state, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 900);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[3], &why),
                    TG_SHM_OK);
    tg_shm_quota_settle(t, &r[1], day1, 400, 0, 0);
    tg_shm_quota_settle(t, &r[2], day1, 450, 0, 0);
    tg_shm_quota_settle(t, &r[3], day1, 10, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 960);
    /* A settled reservation settles only once. */
    tg_shm_quota_settle(t, &r[2], day1, 450, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 960);
    /* Used up: refused while nothing is left. */
    tg_shm_quota_charge(t, &idx, 1, day1, 40, 0, 0);
    est[0] = 1;
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r[0], &why),
                    TG_SHM_LIMIT);
}


static void
test_quota_user_and_key_are_reserved_together(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_quota_refusal_t why;
    tg_shm_qres_t r;
    uint64_t est[2] = {300, 0}, use[TG_SHM_Q_N];
    uint32_t idx[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&r, 0, sizeof(r));
    idx[0] = tg_shm_quota_user(t, 3);
    idx[1] = tg_shm_quota_key(t, 5);
    CU_ASSERT_EQUAL(idx[1], t->users + 5);
    CU_ASSERT_EQUAL(tg_shm_quota_key(t, t->keys), TG_SHM_QUOTA_NONE);
    quota_limits(t, idx[0], 0, 10000, 0, 0);
    quota_limits(t, idx[1], 0, 400, 0, 0);
    tg_shm_quota_charge(t, &idx[1], 1, day1, 400, 0, 0);
    /* The key's limit refuses; the user keeps nothing held. */
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, idx, 2, day1, est, &r, &why),
                    TG_SHM_LIMIT);
    CU_ASSERT_EQUAL(why.idx, idx[1]);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx[0], day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
    quota_limits(t, idx[1], 0, 1000, 0, 0);
    est[0] = 150;
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, idx, 2, day1, est, &r, &why),
                    TG_SHM_OK);
    tg_shm_quota_settle(t, &r, day1, 120, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx[0], day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 120);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx[1], day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 520);
    /* An entry without limits is skipped, not refused. */
    idx[1] = tg_shm_quota_key(t, 6);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, idx, 2, day1, est, &r, &why),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(r.nidx, 1);
    tg_shm_quota_settle(t, &r, day1, 0, 0, 0);
}


static void
test_quota_periods_roll_over(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_quota_refusal_t why;
    tg_shm_qres_t r;
    uint64_t est[2] = {900, 0}, use[TG_SHM_Q_N];
    uint32_t idx = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&r, 0, sizeof(r));
    quota_limits(t, idx, 0, 1000, 5000, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_OK);
    tg_shm_quota_settle(t, &r, day1, 1000, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_LIMIT);
    /* Next day: the day is fresh, the month keeps its 1000. */
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day2, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
    CU_ASSERT_EQUAL(use[QMONTH], 1000);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day2, est, &r, &why),
                    TG_SHM_OK);
    tg_shm_quota_settle(t, &r, day2, 700, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day2, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 700);
    CU_ASSERT_EQUAL(use[QMONTH], 1700);
}


static void
test_quota_base_and_cache_reads(void)
{
    tg_shm_quotas_t *t = quota_table();
    uint64_t use[TG_SHM_Q_N];
    uint32_t a = 0, b = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    quota_limits(t, a, 0, 1000, 1000, 0);
    quota_limits(t, b, TG_SHM_QUOTA_F_CACHE_DAY, 1000, 1000, 0);
    /* 500 tokens of which 300 cache reads: counted 200, or 500 where
     * cache reads count. */
    tg_shm_quota_charge(t, &a, 1, day1, 500, 300, 7);
    tg_shm_quota_charge(t, &b, 1, day1, 500, 300, 7);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 200);
    CU_ASSERT_EQUAL(use[QCDAY], 7);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, b, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 500);
    CU_ASSERT_EQUAL(use[QMONTH], 200);
    /* Other hosts' usage counts while its period is the current one. */
    CU_ASSERT_EQUAL(
        tg_shm_quota_set_base(t, a, TG_SHM_Q_DAY, day1[0], 100, 40, 1000),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 260);
    CU_ASSERT_EQUAL(use[QCDAY], 1007);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day2, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
    /* Restored own usage replaces the counter. */
    CU_ASSERT_EQUAL(
        tg_shm_quota_set_used(t, a, TG_SHM_Q_DAY, day1[0], 50, 0, 0),
        TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 110);
    /* A new holder of the entry starts from zero. */
    {
        uint64_t l[TG_SHM_Q_N] = {10, 0, 0, 0};

        CU_ASSERT_EQUAL(tg_shm_quota_set_limits(t, a, 43, 0, l), TG_SHM_OK);
    }
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
    CU_ASSERT_EQUAL(tg_shm_quota_clear(t, a), TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, a, day1, use), TG_SHM_MISS);
}


static void
test_quota_cost_limit(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_quota_refusal_t why;
    tg_shm_qres_t r;
    uint64_t est[2] = {10, 600000000000ull}; /* 0.6 USD */
    uint32_t idx = 2;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&r, 0, sizeof(r));
    quota_limits(t, idx, 0, 0, 0, 1000000000000ull); /* 1 USD a day */
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_OK);
    tg_shm_quota_settle(t, &r, day1, 10, 0, 1000000000000ull);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_LIMIT);
    CU_ASSERT_EQUAL(why.measure, TG_SHM_Q_COST);
    CU_ASSERT_EQUAL(why.in_use, 1000000000000ull);
}


static void
test_quota_dead_workers_reservations_are_released(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_qres_t *res = tg_shm_qres(&quota_shm, 1);
    tg_shm_quota_refusal_t why;
    uint64_t est[2] = {100, 0}, use[TG_SHM_Q_N];
    uint32_t idx = 0, n = tg_shm_hdr(&quota_shm)->leases_per_proc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    quota_limits(t, idx, 0, 1000, 0, 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &res[0], &why),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &res[5], &why),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 200);
    CU_ASSERT_EQUAL(tg_shm_quota_reclaim(t, res, n), 2);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reclaim(t, res, n), 0);
    /* Releasing what was never held saturates at zero. */
    res[1].state = 1;
    res[1].nidx = 1;
    res[1].idx[0] = idx;
    res[1].est[0] = 5000;
    CU_ASSERT_EQUAL(tg_shm_quota_reclaim(t, res, n), 1);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 0);
}


static void
test_quota_fifty_parallel_requests_take_only_what_fits(void)
{
    tg_shm_quotas_t *t = quota_table();
    uint64_t use[TG_SHM_Q_N];
    uint32_t idx = 0;
    int i, ok = 0, st;
    pid_t pids[50];

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* 10,000 a day with 9,350 spent elsewhere: with estimates of 100,
     * the seventh admitted request sees 9,950 in use; no eighth. */
    quota_limits(t, idx, 0, 10000, 0, 0);
    CU_ASSERT_EQUAL(
        tg_shm_quota_set_base(t, idx, TG_SHM_Q_DAY, day1[0], 9350, 0, 0),
        TG_SHM_OK);
    for (i = 0; i < 50; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            tg_shm_qres_t *res = &tg_shm_qres(&quota_shm, 0)[i];
            tg_shm_quota_refusal_t why;
            uint64_t est[2] = {100, 0};

            _exit(tg_shm_quota_reserve(t, &idx, 1, day1, est, res, &why) ==
                          TG_SHM_OK
                      ? 0
                      : 1);
        }
        CU_ASSERT_FATAL(pids[i] > 0);
    }
    for (i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL(waitpid(pids[i], &st, 0), pids[i]);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    CU_ASSERT(ok >= 1);
    CU_ASSERT(ok <= 7);
    CU_ASSERT_EQUAL(tg_shm_quota_in_use(t, idx, day1, use), TG_SHM_OK);
    CU_ASSERT_EQUAL(use[QDAY], 9350 + 100 * (uint64_t)ok);
    CU_ASSERT(use[QDAY] < 10000 + 100);
}


static void
test_quota_periods_follow_the_time_zone(void)
{
    uint64_t s[2], e[2];
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

    tg_shm_quota_zone_set(NULL);
    setenv("TZ", "UTC", 1);
    tzset();
    /* 2026-12-02 15:00 UTC */
    tg_shm_quota_periods(1796223600ull, s, e);
    CU_ASSERT_EQUAL(s[TG_SHM_Q_DAY], day1[0]);
    CU_ASSERT_EQUAL(e[TG_SHM_Q_DAY], day2[0]);
    CU_ASSERT_EQUAL(s[TG_SHM_Q_MONTH], day1[1]);
    CU_ASSERT_EQUAL(e[TG_SHM_Q_MONTH], 1798761600ull); /* 2027-01-01 */
    /* Central European time: the day began at 23:00 UTC the day before. */
    setenv("TZ", "CET-1", 1);
    tzset();
    tg_shm_quota_periods(1796223600ull, s, e);
    CU_ASSERT_EQUAL(s[TG_SHM_Q_DAY], day1[0] - 3600);
    CU_ASSERT_EQUAL(s[TG_SHM_Q_MONTH], day1[1] - 3600);
    /* A POSIX zone with seconds puts midnight anywhere (tests use it). */
    setenv("TZ", "TST-15:00:05", 1);
    tzset();
    tg_shm_quota_periods(1796223600ull, s, e);
    /* Local time is 06:00:05 on the 3rd: the day ends 17:59:55 later. */
    CU_ASSERT_EQUAL(s[TG_SHM_Q_DAY], 1796223600ull - 21605);
    CU_ASSERT_EQUAL(e[TG_SHM_Q_DAY], 1796223600ull + 64795);
    /* A quota zone applies for the call only: the process keeps its TZ
     * (its log timestamps). */
    tg_shm_quota_zone_set("CET-1");
    tg_shm_quota_periods(1796223600ull, s, e);
    CU_ASSERT_EQUAL(s[TG_SHM_Q_DAY], day1[0] - 3600);
    CU_ASSERT_STRING_EQUAL(getenv("TZ"), "TST-15:00:05");
    tg_shm_quota_zone_set(NULL);
    if (old != NULL) {
        setenv("TZ", old, 1);
    } else {
        unsetenv("TZ");
    }
    tzset();
    free(old);
}


static int
quota_suite_clean(void)
{
    tg_shm_destroy(&quota_shm);
    return 0;
}


/* An admin killed inside a write leaves the entry's seq odd; the next
 * admin closes it and workers read the entry again. */
static void
test_quota_repair_closes_a_dead_admins_write(void)
{
    tg_shm_quotas_t *t = quota_table();
    tg_shm_qres_t r;
    tg_shm_quota_refusal_t why;
    uint64_t est[2] = {10, 0};
    uint32_t idx = 1, s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memset(&r, 0, sizeof(r));
    quota_limits(t, idx, 0, 1000, 0, 0);
    /* What admin does when it opens a write (and dies there). */
    atomic_store(&t->writing, idx + 1);
    s = tg_shm_seq_write_begin(&tg_shm_quota_get(t, idx)->seq);
    CU_ASSERT_EQUAL(s & 1u, 1u);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_BUSY);
    CU_ASSERT_EQUAL(tg_shm_quota_repair(t), 1);
    CU_ASSERT_EQUAL(tg_shm_quota_repair(t), 0);
    CU_ASSERT_EQUAL(tg_shm_quota_reserve(t, &idx, 1, day1, est, &r, &why),
                    TG_SHM_OK);
}


int
tg_test_shm_quota_register(void)
{
    CU_pSuite s = CU_add_suite("shm_quota", NULL, quota_suite_clean);

    quota_shm.fd = -1;
    quota_shm.base = NULL;
    if (s == NULL ||
        CU_add_test(s, "a reservation that does not fit is refused",
                    test_quota_reserve_refuses_what_does_not_fit) == NULL ||
        CU_add_test(s, "user and key are reserved together",
                    test_quota_user_and_key_are_reserved_together) == NULL ||
        CU_add_test(s, "day and month roll over apart",
                    test_quota_periods_roll_over) == NULL ||
        CU_add_test(s, "bases and the cache-read setting",
                    test_quota_base_and_cache_reads) == NULL ||
        CU_add_test(s, "a cost limit refuses in pico-dollars",
                    test_quota_cost_limit) == NULL ||
        CU_add_test(s, "a dead worker's reservations are released",
                    test_quota_dead_workers_reservations_are_released) ==
            NULL ||
        CU_add_test(s, "fifty parallel requests take only what fits",
                    test_quota_fifty_parallel_requests_take_only_what_fits) ==
            NULL ||
        CU_add_test(s, "periods follow the time zone",
                    test_quota_periods_follow_the_time_zone) == NULL ||
        CU_add_test(s, "repair closes a write a dead admin left open",
                    test_quota_repair_closes_a_dead_admins_write) == NULL) {
        return -1;
    }
    return 0;
}
