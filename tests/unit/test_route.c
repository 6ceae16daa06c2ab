/*
 * tests/unit/test_route.c
 *      CUnit suite "route": endpoint choice (worker/route.c's selection
 *      core) and the conversation key.
 *
 * NOTES
 *      Each test loads a config from a string, gives the selection a zeroed
 *      endpoint table (what a fresh region holds) and a sticky table in an
 *      anonymous MAP_SHARED mapping, and drives tg_route_select with a
 *      simulated wall clock.  Availability is changed the way the breaker
 *      and the cool-downs change it, through the shared entry's fields, so
 *      the tests see exactly what a worker would.
 */
#include "core/conf.h"
#include "shm/ep.h"
#include "shm/sticky.h"
#include "tests/unit/unit.h"
#include "worker/route.h"

#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define TG_TEST_NOW    1800000000000ull /* wall ms of the simulated clock */
#define TG_TEST_STICKY 1024             /* sticky slots in the tests */
#define TG_TEST_MODEL  "claude-sonnet-4-5"

typedef struct {
    tg_conf_t *conf;
    tg_shm_ep_t *eps;
    tg_shm_sticky_t *sticky;
    tg_route_t *rt;
    uint64_t tried[TG_ROUTE_TRIED_WORDS];
    tg_route_req_t q;
} tg_test_route_t;

/* Config text being built, endpoint by endpoint. */
typedef struct {
    char text[65536];
    size_t len;
    int neps;
} tg_test_conf_text_t;


static void
ct_add(tg_test_conf_text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(t->text + t->len, sizeof(t->text) - t->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        t->len += (size_t)n;
    }
}


/* Start an "endpoints" list. */
static void
ct_begin(tg_test_conf_text_t *t)
{
    t->len = 0;
    t->neps = 0;
    t->text[0] = '\0';
    ct_add(t, "endpoints = (\n");
}


/* One endpoint named <name> with <extra> settings (may be ""); style
 * anthropic unless <extra> sets one. */
static void
ct_ep(tg_test_conf_text_t *t, const char *name, const char *extra)
{
    ct_add(t,
           "%s  { name = \"%s\"; url = \"http://127.0.0.1:9\"; %s"
           "credential = \"k\"; %s }\n",
           t->neps ? "," : "", name,
           strstr(extra, "style") ? "" : "style = \"anthropic\"; ", extra);
    t->neps++;
}


/* Close the list and add <rest> (groups and such). */
static void
ct_end(tg_test_conf_text_t *t, const char *rest)
{
    ct_add(t, ");\n%s\n", rest);
}


/* Load <text> and set up the selection over fresh tables; false (with a
 * message) when anything fails. */
static bool
fix_init(tg_test_route_t *f, const char *text)
{
    char err[512];
    void *mem;

    memset(f, 0, sizeof(*f));
    f->conf = tg_conf_create_from_string(text, "route.conf", err, sizeof(err));
    if (f->conf == NULL) {
        fprintf(stderr, "\n  config: %s\n", err);
        return false;
    }
    f->eps = aligned_alloc(64, sizeof(tg_shm_ep_t) * TG_ROUTE_MAX_ENDPOINTS);
    mem = mmap(NULL, tg_shm_sticky_size(TG_TEST_STICKY), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (f->eps == NULL || mem == MAP_FAILED) {
        return false;
    }
    memset(f->eps, 0, sizeof(tg_shm_ep_t) * TG_ROUTE_MAX_ENDPOINTS);
    f->sticky = tg_shm_sticky_init(mem, TG_TEST_STICKY);
    f->rt = tg_route_create(f->conf, f->eps, f->sticky, 42);
    f->q.group = 0;
    f->q.style = TG_STYLE_ANTHROPIC;
    f->q.model = TG_TEST_MODEL;
    f->q.model_len = strlen(TG_TEST_MODEL);
    f->q.tried = f->tried;
    f->q.now_ms = TG_TEST_NOW;
    return f->rt != NULL;
}


static void
fix_fini(tg_test_route_t *f)
{
    tg_route_destroy(f->rt);
    if (f->sticky != NULL) {
        munmap(f->sticky, tg_shm_sticky_size(TG_TEST_STICKY));
    }
    free(f->eps);
    tg_conf_destroy(f->conf);
}


/* Take endpoint <i> out (as a 429 cool-down would) or put it back. */
static void
ep_down(tg_test_route_t *f, int i, bool down)
{
    atomic_store(&f->eps[i].cooled_until_ms, down ? UINT64_MAX : 0);
}


/* Pick <n> times and count the picks per endpoint into <count>. */
static void
pick_n(tg_test_route_t *f, int n, int *count)
{
    int i, idx;

    for (i = 0; i < n; i++) {
        idx = tg_route_select(f->rt, &f->q);
        CU_ASSERT_FATAL(idx >= 0 && idx < TG_ROUTE_MAX_ENDPOINTS);
        count[idx]++;
    }
}


static void
test_weighted_follows_the_weights(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};
    static const int w[] = {5, 3, 2};
    char extra[64];
    int i;

    ct_begin(&t);
    for (i = 0; i < 3; i++) {
        snprintf(extra, sizeof(extra), "weight = %d;", w[i]);
        ct_ep(&t, i == 0 ? "a" : i == 1 ? "b" : "c", extra);
    }
    ct_end(&t, "groups = ( { name = \"default\"; strategy = \"weighted\"; "
               "sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    pick_n(&f, 10000, count);
    for (i = 0; i < 3; i++) {
        double share = count[i] / 10000.0, want = w[i] / 10.0;

        CU_ASSERT(share > want - 0.03 && share < want + 0.03);
    }
    /* Smooth: within any window of 10 picks the shares are exact. */
    memset(count, 0, sizeof(count));
    pick_n(&f, 10, count);
    CU_ASSERT_EQUAL(count[0], 5);
    CU_ASSERT_EQUAL(count[1], 3);
    CU_ASSERT_EQUAL(count[2], 2);
    fix_fini(&f);
}


static void
test_round_robin_rotates_exactly(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int i, first, idx;

    ct_begin(&t);
    ct_ep(&t, "a", "weight = 7;");
    ct_ep(&t, "b", "");
    ct_ep(&t, "c", "weight = 3;");
    ct_end(&t, "groups = ( { name = \"default\"; strategy = \"round-robin\"; "
               "sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    first = tg_route_select(f.rt, &f.q);
    for (i = 1; i < 30; i++) {
        idx = tg_route_select(f.rt, &f.q);
        CU_ASSERT_EQUAL(idx, (first + i) % 3);
    }
    fix_fini(&f);
}


static void
test_least_connections_prefers_fewer_in_flight(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};

    ct_begin(&t);
    ct_ep(&t, "a", "weight = 10;");
    ct_ep(&t, "b", "");
    ct_ep(&t, "c", "weight = 3;");
    ct_end(&t, "groups = ( { name = \"default\"; "
               "strategy = \"least-connections\"; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    atomic_store(&f.eps[0].inflight, 5);
    atomic_store(&f.eps[1].inflight, 2);
    atomic_store(&f.eps[2].inflight, 7);
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[1], 100);
    /* A tie goes by weight: a gets 10 of every 13 picks, c 3. */
    atomic_store(&f.eps[0].inflight, 4);
    atomic_store(&f.eps[1].inflight, 9);
    atomic_store(&f.eps[2].inflight, 4);
    memset(count, 0, sizeof(count));
    pick_n(&f, 1300, count);
    CU_ASSERT_EQUAL(count[0], 1000);
    CU_ASSERT_EQUAL(count[1], 0);
    CU_ASSERT_EQUAL(count[2], 300);
    fix_fini(&f);
}


static void
test_latency_picks_lowest_ewma_and_explores(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};
    double best;

    ct_begin(&t);
    ct_ep(&t, "slow", "");
    ct_ep(&t, "fast", "");
    ct_ep(&t, "mid", "");
    ct_end(&t, "groups = ( { name = \"default\"; strategy = \"latency\"; "
               "exploration = 0.06; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    atomic_store(&f.eps[0].latency_ewma_us, 900000);
    atomic_store(&f.eps[1].latency_ewma_us, 200000);
    atomic_store(&f.eps[2].latency_ewma_us, 400000);
    pick_n(&f, 20000, count);
    /* 94% to the fastest, and 6% spread evenly over all three. */
    best = count[1] / 20000.0;
    CU_ASSERT(best > 0.94 + 0.02 - 0.01 && best < 0.94 + 0.02 + 0.01);
    CU_ASSERT(count[0] > 200 && count[0] < 600);
    CU_ASSERT(count[2] > 200 && count[2] < 600);
    /* An endpoint without a measurement yet counts as the fastest. */
    atomic_store(&f.eps[0].latency_ewma_us, 0);
    memset(count, 0, sizeof(count));
    pick_n(&f, 1000, count);
    CU_ASSERT(count[0] > 900);
    fix_fini(&f);
}


static void
test_cost_picks_the_cheapest(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};

    ct_begin(&t);
    ct_ep(&t, "list", "weight = 100;");
    ct_ep(&t, "relay1", "price_factor = 0.8;");
    ct_ep(&t, "relay2", "price_factor = 0.8; weight = 3;");
    ct_ep(&t, "dear", "price_factor = 1.5;");
    ct_end(&t, "groups = ( { name = \"default\"; strategy = \"cost\"; "
               "sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    pick_n(&f, 400, count);
    CU_ASSERT_EQUAL(count[0], 0);
    CU_ASSERT_EQUAL(count[1], 100);
    CU_ASSERT_EQUAL(count[2], 300);
    CU_ASSERT_EQUAL(count[3], 0);
    /* With both relays out, list price is the cheapest left. */
    ep_down(&f, 1, true);
    ep_down(&f, 2, true);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 0);
    fix_fini(&f);
}


static void
test_lower_tiers_only_when_the_tiers_above_are_out(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};

    ct_begin(&t);
    ct_ep(&t, "fb", "priority = \"fallback\";");
    ct_ep(&t, "p1", "");
    ct_ep(&t, "s1", "priority = \"secondary\";");
    ct_ep(&t, "p2", "priority = \"primary\";");
    ct_end(&t, "groups = ( { name = \"default\"; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[1] + count[3], 100);
    /* One primary out: the other takes everything. */
    ep_down(&f, 1, true);
    memset(count, 0, sizeof(count));
    pick_n(&f, 50, count);
    CU_ASSERT_EQUAL(count[3], 50);
    /* Both out: secondary; then fallback. */
    ep_down(&f, 3, true);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 2);
    ep_down(&f, 2, true);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 0);
    ep_down(&f, 0, true);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), -1);
    CU_ASSERT_FALSE(tg_route_any(f.rt, &f.q));
    /* A primary back: it serves again at once. */
    ep_down(&f, 1, false);
    CU_ASSERT_TRUE(tg_route_any(f.rt, &f.q));
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 1);
    /* An open breaker also counts as out, until its deadline. */
    atomic_store(&f.eps[1].open_until_ms, TG_TEST_NOW + 1000);
    atomic_store(&f.eps[1].breaker, TG_EP_BREAKER_OPEN);
    ep_down(&f, 2, false);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 2);
    f.q.now_ms = TG_TEST_NOW + 1000;
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 1);
    fix_fini(&f);
}


static void
test_model_filter_and_disabled_endpoints(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};

    ct_begin(&t);
    ct_ep(&t, "claude", "models = ( \"claude-*\" );");
    ct_ep(&t, "gpt", "models = ( \"gpt-*\", \"o3\" );");
    ct_ep(&t, "any", "");
    ct_ep(&t, "off", "enabled = false;");
    ct_ep(&t, "exact", "models = ( \"claude-opus-4-5\" );");
    ct_end(&t, "groups = ( { name = \"default\"; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[0] + count[2], 100);
    CU_ASSERT(count[0] > 0 && count[2] > 0);
    f.q.model = "o3";
    f.q.model_len = 2;
    memset(count, 0, sizeof(count));
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[1] + count[2], 100);
    CU_ASSERT(count[1] > 0);
    f.q.model = "claude-opus-4-5";
    f.q.model_len = strlen(f.q.model);
    memset(count, 0, sizeof(count));
    pick_n(&f, 90, count);
    CU_ASSERT_EQUAL(count[0] + count[2] + count[4], 90);
    CU_ASSERT(count[0] > 0 && count[4] > 0);
    /* A body without a model: only endpoints serving every model. */
    f.q.model = NULL;
    f.q.model_len = 0;
    memset(count, 0, sizeof(count));
    pick_n(&f, 10, count);
    CU_ASSERT_EQUAL(count[2], 10);
    /* Nobody serves it. */
    ep_down(&f, 2, true);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), -1);
    fix_fini(&f);
}


static void
test_tried_endpoints_are_excluded_past_32(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    char name[16];
    int i;

    ct_begin(&t);
    for (i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        ct_ep(&t, name, "");
    }
    ct_end(&t, "groups = ( { name = \"default\"; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    for (i = 0; i < 100; i++) {
        if (i != 77) {
            f.tried[i >> 6] |= 1ull << (i & 63);
        }
    }
    for (i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 77);
    }
    f.tried[77 >> 6] |= 1ull << (77 & 63);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), -1);
    CU_ASSERT_FALSE(tg_route_any(f.rt, &f.q));
    fix_fini(&f);
}


static void
test_groups_and_styles_are_kept_apart(void)
{
    tg_test_conf_text_t t;
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};
    int a = 0, b, g2;

    ct_begin(&t);
    ct_ep(&t, "d1", "");
    ct_ep(&t, "g1", "group = \"team\";");
    ct_ep(&t, "d2", "");
    ct_ep(&t, "g2", "group = \"team\"; style = \"openai\";");
    ct_ep(&t, "g3", "group = \"team\";");
    ct_ep(&t, "oa", "style = \"openai\";");
    ct_end(&t, "groups = ( { name = \"team\"; sticky = false; }, "
               "{ name = \"default\"; sticky = false; } );");
    CU_ASSERT_FATAL(fix_init(&f, t.text));
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[0] + count[2], 100);
    for (g2 = 0; g2 < (int)f.conf->ngroups; g2++) {
        if (strcmp(f.conf->groups[g2].name, "team") == 0) {
            a = g2;
        }
    }
    f.q.group = (uint32_t)a;
    memset(count, 0, sizeof(count));
    pick_n(&f, 100, count);
    CU_ASSERT_EQUAL(count[1] + count[4], 100);
    f.q.style = TG_STYLE_OPENAI;
    memset(count, 0, sizeof(count));
    pick_n(&f, 10, count);
    CU_ASSERT_EQUAL(count[3], 10);
    f.q.group = (uint32_t)(a == 0 ? 1 : 0);
    b = tg_route_select(f.rt, &f.q);
    CU_ASSERT_EQUAL(b, 5);
    /* A group index the config does not have chooses nothing. */
    f.q.group = 7;
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), -1);
    fix_fini(&f);
}


/* Three equal endpoints in a sticky weighted group. */
static bool
sticky_init(tg_test_route_t *f, const char *ttl)
{
    tg_test_conf_text_t t;
    char groups[256];

    ct_begin(&t);
    ct_ep(&t, "a", "");
    ct_ep(&t, "b", "");
    ct_ep(&t, "c", "");
    ct_ep(&t, "s", "priority = \"secondary\";");
    snprintf(groups, sizeof(groups),
             "groups = ( { name = \"default\"; sticky = true; "
             "sticky_ttl = %s; } );",
             ttl);
    ct_end(&t, groups);
    return fix_init(f, t.text);
}


static void
test_a_conversation_stays_on_one_endpoint(void)
{
    tg_test_route_t f;
    int count[TG_ROUTE_MAX_ENDPOINTS] = {0};
    int home, i, j, other;

    CU_ASSERT_FATAL(sticky_init(&f, "3600"));
    f.q.session = 0x1234567890abcdefull;
    home = tg_route_select(f.rt, &f.q);
    for (i = 0; i < 100; i++) {
        f.q.now_ms += 1000;
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    }
    /* Other conversations still spread over the group. */
    for (i = 1; i <= 300; i++) {
        f.q.session = (uint64_t)i * 0x9e3779b97f4a7c15ull;
        count[tg_route_select(f.rt, &f.q)]++;
    }
    for (j = 0; j < 3; j++) {
        CU_ASSERT(count[j] > 50);
    }
    /* A retry of the conversation (home tried) goes elsewhere. */
    f.q.session = 0x1234567890abcdefull;
    f.tried[0] |= 1ull << home;
    other = tg_route_select(f.rt, &f.q);
    CU_ASSERT(other >= 0 && other != home);
    memset(f.tried, 0, sizeof(f.tried));
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    /* Without a conversation key there is no affinity. */
    f.q.session = 0;
    memset(count, 0, sizeof(count));
    pick_n(&f, 30, count);
    CU_ASSERT(count[0] >= 9 && count[0] <= 11);
    fix_fini(&f);
}


static void
test_a_failover_keeps_the_home_mapping(void)
{
    tg_test_route_t f;
    int home, i, idx;

    CU_ASSERT_FATAL(sticky_init(&f, "3600"));
    f.q.session = 77;
    home = tg_route_select(f.rt, &f.q);
    ep_down(&f, home, true);
    for (i = 0; i < 20; i++) {
        idx = tg_route_select(f.rt, &f.q);
        CU_ASSERT(idx >= 0 && idx < 3 && idx != home);
    }
    ep_down(&f, home, false);
    for (i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    }
    /* The whole primary tier down: the secondary serves, and the
     * conversation still goes home afterwards. */
    for (i = 0; i < 3; i++) {
        ep_down(&f, i, true);
    }
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 3);
    for (i = 0; i < 3; i++) {
        ep_down(&f, i, false);
    }
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    fix_fini(&f);
}


static void
test_a_home_in_a_lower_tier_gives_way(void)
{
    tg_test_route_t f;
    int i, idx;

    CU_ASSERT_FATAL(sticky_init(&f, "3600"));
    f.q.session = 99;
    for (i = 0; i < 3; i++) {
        ep_down(&f, i, true);
    }
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), 3);
    for (i = 0; i < 3; i++) {
        ep_down(&f, i, false);
    }
    idx = tg_route_select(f.rt, &f.q);
    CU_ASSERT(idx >= 0 && idx < 3);
    /* And that primary is the new home. */
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), idx);
    }
    fix_fini(&f);
}


static void
test_sticky_mappings_expire_unless_renewed(void)
{
    tg_test_route_t f;
    int home, other, i;

    CU_ASSERT_FATAL(sticky_init(&f, "10"));
    f.q.session = 4242;
    home = tg_route_select(f.rt, &f.q);
    /* Used every 6 s for a minute: renewed each time, never expires. */
    for (i = 0; i < 10; i++) {
        f.q.now_ms += 6000;
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    }
    /* A failover does not overwrite it... */
    ep_down(&f, home, true);
    other = tg_route_select(f.rt, &f.q);
    CU_ASSERT(other >= 0 && other != home);
    ep_down(&f, home, false);
    CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), home);
    /* ...but after the TTL without use it is gone: the next request
     * (home out) makes a new mapping, which then holds. */
    f.q.now_ms += 11000;
    ep_down(&f, home, true);
    other = tg_route_select(f.rt, &f.q);
    CU_ASSERT(other >= 0 && other != home);
    ep_down(&f, home, false);
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(tg_route_select(f.rt, &f.q), other);
    }
    fix_fini(&f);
}


static void
test_each_model_of_a_conversation_has_its_own_home(void)
{
    tg_test_route_t f;
    int seen[TG_ROUTE_MAX_ENDPOINTS] = {0};
    int i, idx, homes = 0;

    CU_ASSERT_FATAL(sticky_init(&f, "3600"));
    f.q.session = 5;
    /* The side requests of one conversation on other models spread like
     * new conversations; each model keeps its own endpoint. */
    for (i = 0; i < 30; i++) {
        char model[32];
        int again;

        snprintf(model, sizeof(model), "claude-model-%d", i);
        f.q.model = model;
        f.q.model_len = strlen(model);
        idx = tg_route_select(f.rt, &f.q);
        again = tg_route_select(f.rt, &f.q);
        CU_ASSERT_EQUAL(idx, again);
        if (idx >= 0 && seen[idx]++ == 0) {
            homes++;
        }
    }
    CU_ASSERT(homes >= 2);
    fix_fini(&f);
}


static tg_str_t
S(const char *s)
{
    return (tg_str_t){s, strlen(s)};
}


static void
test_conversation_key_sources(void)
{
    const char *m1 = "[{\"role\":\"user\",\"content\":\"hi, [\\\"x\\\"]\"}]";
    const char *m3 = "[{\"role\":\"user\",\"content\":\"hi, [\\\"x\\\"]\"},"
                     "{\"role\":\"assistant\",\"content\":\"hello\"},"
                     "{\"role\":\"user\",\"content\":\"more\"}]";
    const char *meta = "{\"user_id\":\"user_ab_account_cd_session_ef\"}";
    uint64_t k1, k3, k;

    k1 = tg_route_session(tg_str_null, tg_str_null, S("\"be brief\""), S(m1));
    k3 = tg_route_session(tg_str_null, tg_str_null, S("\"be brief\""), S(m3));
    CU_ASSERT_NOT_EQUAL(k1, 0);
    /* The conversation grows; its key stays. */
    CU_ASSERT_EQUAL(k1, k3);
    /* Another system prompt or first message is another conversation. */
    CU_ASSERT_NOT_EQUAL(k1, tg_route_session(tg_str_null, tg_str_null,
                                             S("\"be long\""), S(m1)));
    CU_ASSERT_NOT_EQUAL(
        k1, tg_route_session(tg_str_null, tg_str_null, S("\"be brief\""),
                             S("[{\"role\":\"user\",\"content\":\"yo\"}]")));
    /* A capture cut inside the first message still gives a stable key. */
    CU_ASSERT_EQUAL(tg_route_session(tg_str_null, tg_str_null, tg_str_null,
                                     (tg_str_t){m3, 20}),
                    tg_route_session(tg_str_null, tg_str_null, tg_str_null,
                                     (tg_str_t){m1, 20}));
    /* metadata.user_id wins over everything, then x-session-id. */
    k = tg_route_session(S(meta), S("s-1"), S("\"be brief\""), S(m1));
    CU_ASSERT_EQUAL(
        k, tg_route_session(S(meta), tg_str_null, tg_str_null, tg_str_null));
    CU_ASSERT_NOT_EQUAL(k, k1);
    k = tg_route_session(S("{\"user_id\":null}"), S("s-1"), S("\"x\""), S(m1));
    CU_ASSERT_EQUAL(
        k, tg_route_session(tg_str_null, S("s-1"), tg_str_null, tg_str_null));
    CU_ASSERT_NOT_EQUAL(
        k, tg_route_session(tg_str_null, S("s-2"), tg_str_null, tg_str_null));
    /* Nothing to go by. */
    CU_ASSERT_EQUAL(
        tg_route_session(S("{}"), tg_str_null, tg_str_null, S("[]")), 0);
    CU_ASSERT_EQUAL(tg_route_session(tg_str_null, tg_str_null, tg_str_null,
                                     S("\"not an array\"")),
                    0);
}


/* Choosing writes nothing shared: only tg_route_commit creates the
 * conversation's home, so a choice that is never admitted leaves none. */
static void
test_choosing_writes_no_sticky_entry(void)
{
    tg_test_route_t f;
    tg_route_choice_t ch;
    uint32_t home = UINT32_MAX;
    int first, i;

    CU_ASSERT_FATAL(sticky_init(&f, "3600"));
    f.q.session = 0x5151515151515151ull;
    first = tg_route_choose(f.rt, &f.q, &ch);
    CU_ASSERT(first >= 0 && ch.endpoint == first && ch.sticky_set);
    /* Nothing in the table yet: further choices still balance, they are
     * not pinned to <first>. */
    CU_ASSERT_NOT_EQUAL(
        tg_shm_sticky_lookup(f.sticky, ch.sticky_key, f.q.now_ms, &home, NULL),
        TG_SHM_OK);
    for (i = 0; i < 6; i++) {
        tg_route_choice_t other;

        if (tg_route_choose(f.rt, &f.q, &other) != first) {
            break;
        }
    }
    if (i == 6) {
        fprintf(stderr, "\n  six uncommitted choices all went to %d", first);
    }
    CU_ASSERT(i < 6);
    /* Committed: the conversation has its home, and keeps it. */
    tg_route_commit(f.rt, &f.q, &ch);
    CU_ASSERT_EQUAL(
        tg_shm_sticky_lookup(f.sticky, ch.sticky_key, f.q.now_ms, &home, NULL),
        TG_SHM_OK);
    if (home != (uint32_t)first) {
        fprintf(stderr, "\n  home %u, want %d", home, first);
    }
    CU_ASSERT_EQUAL(home, (uint32_t)first);
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(tg_route_choose(f.rt, &f.q, &ch), first);
    }
    fix_fini(&f);
}


int
tg_test_route_register(void)
{
    CU_pSuite s = CU_add_suite("route", NULL, NULL);

    if (s == NULL ||
        !CU_add_test(s, "weighted follows the weights within 3%",
                     test_weighted_follows_the_weights) ||
        !CU_add_test(s, "round-robin rotates exactly",
                     test_round_robin_rotates_exactly) ||
        !CU_add_test(s, "least-connections prefers fewer in flight",
                     test_least_connections_prefers_fewer_in_flight) ||
        !CU_add_test(s, "latency picks the lowest EWMA and explores",
                     test_latency_picks_lowest_ewma_and_explores) ||
        !CU_add_test(s, "cost picks the cheapest",
                     test_cost_picks_the_cheapest) ||
        !CU_add_test(s, "lower tiers only when the tiers above are out",
                     test_lower_tiers_only_when_the_tiers_above_are_out) ||
        !CU_add_test(s, "model filter and disabled endpoints",
                     test_model_filter_and_disabled_endpoints) ||
        !CU_add_test(s, "tried endpoints are excluded, past 32",
                     test_tried_endpoints_are_excluded_past_32) ||
        !CU_add_test(s, "groups and styles are kept apart",
                     test_groups_and_styles_are_kept_apart) ||
        !CU_add_test(s, "a conversation stays on one endpoint",
                     test_a_conversation_stays_on_one_endpoint) ||
        !CU_add_test(s, "a failover keeps the home mapping",
                     test_a_failover_keeps_the_home_mapping) ||
        !CU_add_test(s, "a home in a lower tier gives way",
                     test_a_home_in_a_lower_tier_gives_way) ||
        !CU_add_test(s, "sticky mappings expire unless renewed",
                     test_sticky_mappings_expire_unless_renewed) ||
        !CU_add_test(s, "each model of a conversation has its own home",
                     test_each_model_of_a_conversation_has_its_own_home) ||
        !CU_add_test(s, "choosing writes no sticky entry; committing does",
                     test_choosing_writes_no_sticky_entry) ||
        !CU_add_test(s, "conversation key sources",
                     test_conversation_key_sources)) {
        return 1;
    }
    return 0;
}
