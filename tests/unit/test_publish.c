/*
 * tests/unit/test_publish.c
 *      Publishing rows into shared memory (admin/publish.c): model-pattern
 *      indexes stay stable while keys use them, a key never gets a partial
 *      allow-list, a full publish prunes keys and users.
 *
 * NOTES
 *      Each test creates a small region of its own (tg_shm_create) and
 *      reads back what a worker would see with tg_shm_keys_lookup and
 *      tg_shm_models_find.
 */
#include "admin/publish.h"
#include "core/core.h"
#include "shm/keys.h"
#include "shm/shm.h"
#include "shm/users.h"
#include "tests/unit/unit.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

static tg_shm_t tg_test_pub_shm;


static void
tg_test_pub_create(void)
{
    tg_shm_sizes_t sizes;
    char err[256];

    memset(&sizes, 0, sizeof(sizes));
    sizes.procs = 4;
    sizes.max_keys = 1024;
    sizes.users = 64;
    sizes.endpoints = 4;
    sizes.ring = 64;
    sizes.leases = 4;
    CU_ASSERT_EQUAL_FATAL(
        tg_shm_create(&tg_test_pub_shm, &sizes, err, sizeof(err)), 0);
}


/* Key <id> with one digest byte pattern and the given patterns. */
static void
tg_test_pub_key(tg_publish_key_t *k, uint32_t id, const char *const *models,
                uint32_t n)
{
    uint32_t i;

    memset(k, 0, sizeof(*k));
    memset(k->digest, (int)id, sizeof(k->digest));
    k->digest[0] = (uint8_t)(id >> 8);
    k->key_id = id;
    k->user = TG_SHM_USER_NONE;
    for (i = 0; i < n; i++) {
        snprintf(k->models[i], sizeof(k->models[i]), "%s", models[i]);
    }
    k->nmodels = n;
}


/* The shared entry of <k>; false when it is not in the table. */
static bool
tg_test_pub_read(const tg_publish_key_t *k, tg_shm_key_t *out)
{
    return tg_shm_keys_lookup(tg_shm_keys(&tg_test_pub_shm), k->digest, out,
                              NULL) == TG_SHM_OK;
}


static void
test_publish_stable_indexes(void)
{
    static const char *const m1[] = {"claude-opus-*"};
    static const char *const m2[] = {"claude-haiku-*"};
    static const char *const m3[] = {"gpt-*"};
    tg_shm_models_t *models;
    tg_publish_key_t keys[2];
    tg_shm_key_t e;

    tg_test_pub_create();
    models = tg_shm_models(&tg_test_pub_shm);
    tg_test_pub_key(&keys[0], 1, m1, 1);
    tg_test_pub_key(&keys[1], 2, m2, 1);
    CU_ASSERT_EQUAL(tg_publish_keys(&tg_test_pub_shm, keys, 2, true), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "claude-opus-*"), 0);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "claude-haiku-*"), 1);

    /* Key 1 switches to m2, key 3 arrives with m3: m2 keeps index 1, m1
     * is blanked (no key uses it) and m3 is appended, not put in its
     * place, since a stale key may still point there. */
    tg_test_pub_key(&keys[0], 1, m2, 1);
    tg_test_pub_key(&keys[1], 3, m3, 1);
    CU_ASSERT_EQUAL(tg_publish_keys(&tg_test_pub_shm, keys, 2, true), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "claude-haiku-*"), 1);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "gpt-*"), 2);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "claude-opus-*"), -1);
    CU_ASSERT_TRUE_FATAL(tg_test_pub_read(&keys[0], &e));
    CU_ASSERT_EQUAL(e.models, 1ull << 1);
    CU_ASSERT_TRUE_FATAL(tg_test_pub_read(&keys[1], &e));
    CU_ASSERT_EQUAL(e.models, 1ull << 2);
    CU_ASSERT_EQUAL(e.status, TG_SHM_KEY_ACTIVE);

    /* A single key appends while there is room (blank slots are reused
     * only when the table is full, see the next test). */
    tg_test_pub_key(&keys[0], 4, m1, 1);
    CU_ASSERT_EQUAL(tg_publish_key(&tg_test_pub_shm, &keys[0]), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_models_find(models, "claude-opus-*"), 3);
    CU_ASSERT_TRUE_FATAL(tg_test_pub_read(&keys[0], &e));
    CU_ASSERT_EQUAL(e.models, 1ull << 3);
    tg_shm_destroy(&tg_test_pub_shm);
}


static void
test_publish_patterns_full(void)
{
    static tg_publish_key_t keys[TG_SHM_MODELS_MAX + 1];
    char name[64];
    const char *p = name;
    tg_shm_key_t e;
    uint32_t i;

    tg_test_pub_create();
    for (i = 0; i < TG_SHM_MODELS_MAX; i++) {
        snprintf(name, sizeof(name), "model-a-%u", i);
        tg_test_pub_key(&keys[i], i + 1, &p, 1);
    }
    CU_ASSERT_EQUAL(
        tg_publish_keys(&tg_test_pub_shm, keys, TG_SHM_MODELS_MAX, true),
        TG_OK);
    /* The 65th pattern has no index: the key is refused rather than
     * allowed every model (an empty bitmap). */
    snprintf(name, sizeof(name), "model-extra");
    tg_test_pub_key(&keys[TG_SHM_MODELS_MAX], 100, &p, 1);
    tg_publish_key(&tg_test_pub_shm, &keys[TG_SHM_MODELS_MAX]);
    CU_ASSERT_TRUE_FATAL(tg_test_pub_read(&keys[TG_SHM_MODELS_MAX], &e));
    CU_ASSERT_EQUAL(e.status, TG_SHM_KEY_DISABLED);

    /* A full publish with 64 other patterns: the old ones are blanked,
     * every key rewritten, then the new ones fill the blank slots. */
    for (i = 0; i < TG_SHM_MODELS_MAX; i++) {
        snprintf(name, sizeof(name), "model-b-%u", i);
        tg_test_pub_key(&keys[i], i + 1, &p, 1);
    }
    CU_ASSERT_EQUAL(
        tg_publish_keys(&tg_test_pub_shm, keys, TG_SHM_MODELS_MAX, true),
        TG_OK);
    for (i = 0; i < TG_SHM_MODELS_MAX; i++) {
        CU_ASSERT_TRUE_FATAL(tg_test_pub_read(&keys[i], &e));
        CU_ASSERT_EQUAL(e.status, TG_SHM_KEY_ACTIVE);
        CU_ASSERT_EQUAL(e.models & (e.models - 1), 0); /* one bit */
        CU_ASSERT_NOT_EQUAL(e.models, 0);
    }
    CU_ASSERT_NOT_EQUAL(
        tg_shm_models_find(tg_shm_models(&tg_test_pub_shm), "model-b-63"), -1);
    CU_ASSERT_EQUAL(
        tg_shm_models_find(tg_shm_models(&tg_test_pub_shm), "model-a-0"), -1);
    /* Key 100 was not in the set: pruned. */
    CU_ASSERT_FALSE(tg_test_pub_read(&keys[TG_SHM_MODELS_MAX], &e));
    tg_shm_destroy(&tg_test_pub_shm);
}


static void
test_publish_prune_users(void)
{
    tg_publish_user_t users[2];
    tg_publish_key_t k;
    tg_shm_user_t u;
    tg_shm_key_t e;

    tg_test_pub_create();
    memset(users, 0, sizeof(users));
    users[0] = (tg_publish_user_t){.idx = 6, .user_id = 7};
    users[1] = (tg_publish_user_t){.idx = 41,
                                   .user_id = 42,
                                   .disabled = true,
                                   .period = TG_SHM_USER_PERIOD_DAY,
                                   .quota_tokens = 1000};
    CU_ASSERT_EQUAL(tg_publish_users(&tg_test_pub_shm, users, 2), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_users_read(tg_shm_users(&tg_test_pub_shm), 41, &u),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(u.user_id, 42);
    CU_ASSERT_EQUAL(u.status, TG_SHM_USER_DISABLED);
    CU_ASSERT_EQUAL(u.quota_tokens, 1000);
    CU_ASSERT_EQUAL(tg_publish_users(&tg_test_pub_shm, users + 1, 1), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_users_get(tg_shm_users(&tg_test_pub_shm), 6)->state,
                    TG_SHM_USER_UNUSED);

    tg_test_pub_key(&k, 9, NULL, 0);
    k.user = 41;
    CU_ASSERT_EQUAL(tg_publish_key(&tg_test_pub_shm, &k), TG_OK);
    CU_ASSERT_TRUE(tg_test_pub_read(&k, &e));
    CU_ASSERT_EQUAL(e.user, 41);
    CU_ASSERT_EQUAL(e.key_id, 9);
    CU_ASSERT_EQUAL(tg_publish_keys(&tg_test_pub_shm, NULL, 0, true), TG_OK);
    CU_ASSERT_FALSE(tg_test_pub_read(&k, &e));
    tg_shm_destroy(&tg_test_pub_shm);
}


/* Prices and quota limits go where workers look for them. */
static void
test_publish_prices_and_quotas(void)
{
    tg_publish_price_t rows[2];
    tg_publish_user_t u;
    tg_publish_key_t k;
    tg_shm_quotas_t *qt;
    tg_shm_quota_t *q;
    uint64_t p[TG_PRICE_N];
    uint32_t idx;

    tg_test_pub_create();
    qt = tg_shm_quotas(&tg_test_pub_shm);
    memset(rows, 0, sizeof(rows));
    snprintf(rows[0].pattern, sizeof(rows[0].pattern), "claude-*");
    rows[0].in = 1;
    snprintf(rows[1].pattern, sizeof(rows[1].pattern), "claude-opus-4*");
    rows[1].in = 15000000;
    rows[1].out = 75000000;
    rows[1].cache_1h = 30000000;
    CU_ASSERT_EQUAL(tg_publish_prices(&tg_test_pub_shm, rows, 2), TG_OK);
    CU_ASSERT_EQUAL(tg_shm_prices_lookup(tg_shm_prices(&tg_test_pub_shm),
                                         "claude-opus-4-1", 15, p),
                    TG_SHM_OK);
    CU_ASSERT_EQUAL(p[TG_PRICE_OUTPUT], 75000000);
    CU_ASSERT_EQUAL(p[TG_PRICE_CACHE_1H], 30000000);
    rows[1].pattern[0] = '\0';
    CU_ASSERT_EQUAL(tg_publish_prices(&tg_test_pub_shm, rows, 2), TG_ERROR);

    /* A user's quota_tokens per day becomes its day token quota. */
    memset(&u, 0, sizeof(u));
    u.idx = 3;
    u.user_id = 4;
    u.period = TG_SHM_USER_PERIOD_DAY;
    u.quota_tokens = 500;
    CU_ASSERT_EQUAL(tg_publish_user(&tg_test_pub_shm, &u), TG_OK);
    idx = tg_publish_quota_user(&tg_test_pub_shm, 3);
    q = tg_shm_quota_get(qt, idx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL(q->limit[TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_TOKENS)], 500);
    CU_ASSERT_TRUE((q->flags & TG_SHM_QUOTA_F_CACHE_DAY) != 0);
    /* Explicit quotas win; none at all clears the entry. */
    u.quota.cost_month_pusd = 7000000000000ull;
    CU_ASSERT_EQUAL(tg_publish_user(&tg_test_pub_shm, &u), TG_OK);
    CU_ASSERT_EQUAL(q->limit[TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_TOKENS)], 0);
    CU_ASSERT_EQUAL(q->limit[TG_SHM_Q_I(TG_SHM_Q_MONTH, TG_SHM_Q_COST)],
                    7000000000000ull);
    memset(&u.quota, 0, sizeof(u.quota));
    u.quota_tokens = 0;
    CU_ASSERT_EQUAL(tg_publish_user(&tg_test_pub_shm, &u), TG_OK);
    CU_ASSERT_EQUAL(q->flags & TG_SHM_QUOTA_F_USED, 0);

    /* A key's quota sits at its slot, found again by its digest. */
    tg_test_pub_key(&k, 12, NULL, 0);
    k.quota.tokens_month = 900;
    k.quota.cache_reads_month = true;
    CU_ASSERT_EQUAL(tg_publish_key(&tg_test_pub_shm, &k), TG_OK);
    idx = tg_publish_quota_key(&tg_test_pub_shm, k.digest);
    q = tg_shm_quota_get(qt, idx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_TRUE(idx >= qt->users);
    CU_ASSERT_EQUAL(q->id, 12);
    CU_ASSERT_EQUAL(q->limit[TG_SHM_Q_I(TG_SHM_Q_MONTH, TG_SHM_Q_TOKENS)], 900);
    CU_ASSERT_TRUE((q->flags & TG_SHM_QUOTA_F_CACHE_MONTH) != 0);
    k.digest[5] ^= 0xff;
    CU_ASSERT_EQUAL(tg_publish_quota_key(&tg_test_pub_shm, k.digest),
                    TG_SHM_QUOTA_NONE);
    tg_shm_destroy(&tg_test_pub_shm);
}


int
tg_test_publish_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"keeps a model pattern's index while keys use it and reuses only "
         "blanked slots",
         test_publish_stable_indexes},
        {"publishes a key whose patterns do not fit disabled, and refills "
         "blanked slots in a full publish",
         test_publish_patterns_full},
        {"a full publish frees users and deletes keys it does not list",
         test_publish_prune_users},
        {"prices and quota limits land where workers look for them",
         test_publish_prices_and_quotas},
    };
    CU_pSuite suite;
    size_t i;

    suite = CU_add_suite("publish", NULL, NULL);
    if (suite == NULL) {
        return -1;
    }
    for (i = 0; i < TG_NELEMS(tests); i++) {
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL) {
            return -1;
        }
    }
    return 0;
}
