/*
 * tests/unit/test_limit.c
 *      CUnit suite "limit": admission, release and charging of the per-key
 *      limits (worker/limit.c) on a real shared region.
 *
 * NOTES
 *      A small region is created as master would; a worker context gets
 *      proc entry 0 and its lease array.  Each check prints both values
 *      when they differ.
 */
#include "core/conf.h"
#include "core/core.h"
#include "shm/shm.h"
#include "tests/unit/unit.h"
#include "worker/limit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    tg_conf_t conf;
    tg_shm_t shm;
    tg_worker_t w;
    tg_shm_key_t key;
    tg_limit_ask_t ask;
} limit_fix_t;

#define LIMIT_EXPECT(got, want)                                                \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_) {                                                        \
            fprintf(stderr, "\n  %s:%d: %s is %lld, want %lld", __FILE__,      \
                    __LINE__, #got, g_, w_);                                   \
        }                                                                      \
        CU_ASSERT_EQUAL(g_, w_);                                               \
    } while (0)


static bool
limit_init(limit_fix_t *f)
{
    tg_shm_sizes_t sizes = {4, 64, 8, 4, 16, 8, 16, 64, 0};
    char err[256];

    memset(f, 0, sizeof(*f));
    if (tg_shm_create(&f->shm, &sizes, err, sizeof(err)) != 0) {
        fprintf(stderr, "\n  tg_shm_create: %s", err);
        return false;
    }
    f->conf.max_connections = 8;
    snprintf(f->conf.usage_timezone, sizeof(f->conf.usage_timezone), "UTC");
    f->ask = (tg_limit_ask_t){"{}", 2, "m"};
    f->w.conf = &f->conf;
    f->w.shm = &f->shm;
    f->w.shm_idx = 0;
    if (tg_limit_init(&f->w) != TG_OK) {
        tg_shm_destroy(&f->shm);
        return false;
    }
    f->key.user = TG_SHM_USER_NONE;
    return true;
}


static void
limit_fini(limit_fix_t *f)
{
    tg_limit_fini(&f->w);
    tg_shm_destroy(&f->shm);
}


static void
test_concurrency_is_held_and_given_back(void)
{
    limit_fix_t f;
    tg_limit_refusal_t why;
    int a = -1, b = -1;

    CU_ASSERT_FATAL(limit_init(&f));
    f.key.concurrency = 1;
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 3, &f.ask, &a, &why), TG_OK);
    CU_ASSERT(a >= 0);
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 3, &f.ask, &b, &why),
                 TG_DECLINED);
    LIMIT_EXPECT(b, -1);
    CU_ASSERT_STRING_EQUAL(why.msg, "concurrent requests limit reached");
    /* Another key is not affected. */
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 4, &f.ask, &b, &why), TG_OK);
    tg_limit_release(&f.w, &b);
    tg_limit_release(&f.w, &a);
    LIMIT_EXPECT(a, -1);
    /* Releasing twice is a no-op, and the slot is free again. */
    tg_limit_release(&f.w, &a);
    LIMIT_EXPECT(f.w.nlease_free, f.w.nleases);
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 3, &f.ask, &a, &why), TG_OK);
    tg_limit_release(&f.w, &a);
    limit_fini(&f);
}


static void
test_a_rate_refusal_holds_nothing(void)
{
    limit_fix_t f;
    tg_limit_refusal_t why;
    int a = -1, b = -1;

    CU_ASSERT_FATAL(limit_init(&f));
    f.key.rpm = 1;
    f.key.burst = 1;
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 5, &f.ask, &a, &why), TG_OK);
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 5, &f.ask, &b, &why),
                 TG_DECLINED);
    CU_ASSERT_STRING_EQUAL(why.msg, "requests per minute limit reached");
    CU_ASSERT(why.retry_us > 0);
    LIMIT_EXPECT(b, -1);
    /* The refused request's concurrency slot came back at once. */
    LIMIT_EXPECT(f.w.nlease_free, f.w.nleases - 1);
    tg_limit_release(&f.w, &a);
    LIMIT_EXPECT(f.w.nlease_free, f.w.nleases);
    limit_fini(&f);
}


static void
test_charged_tokens_close_the_minute(void)
{
    limit_fix_t f;
    tg_limit_refusal_t why;
    int a = -1;

    CU_ASSERT_FATAL(limit_init(&f));
    f.key.tpm = 100;
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 6, &f.ask, &a, &why), TG_OK);
    tg_limit_release(&f.w, &a);
    tg_limit_charge(&f.w, &f.key, 6, 60);
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 6, &f.ask, &a, &why), TG_OK);
    tg_limit_release(&f.w, &a);
    tg_limit_charge(&f.w, &f.key, 6, 40);
    LIMIT_EXPECT(tg_limit_admit(&f.w, &f.key, 6, &f.ask, &a, &why),
                 TG_DECLINED);
    CU_ASSERT_STRING_EQUAL(why.msg, "tokens per minute limit reached");
    LIMIT_EXPECT(a, -1);
    LIMIT_EXPECT(f.w.nlease_free, f.w.nleases);
    limit_fini(&f);
}


/* See unit.h. */
int
tg_test_limit_register(void)
{
    CU_pSuite s = CU_add_suite("limit", NULL, NULL);

    if (s == NULL ||
        CU_add_test(s, "a concurrency slot is held until released, once",
                    test_concurrency_is_held_and_given_back) == NULL ||
        CU_add_test(s, "a request refused by its rate holds nothing",
                    test_a_rate_refusal_holds_nothing) == NULL ||
        CU_add_test(s, "tokens charged close the key's minute at its tpm",
                    test_charged_tokens_close_the_minute) == NULL) {
        return -1;
    }
    return 0;
}
