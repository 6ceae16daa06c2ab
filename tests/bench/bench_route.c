/*
 * tests/bench/bench_route.c
 *      Micro-benchmark of endpoint choice (worker/route.c): one
 *      tg_route_select per request with 64 endpoints in the group.
 *
 * NOTES
 *      The config has four groups of 64 anthropic endpoints each (256, the
 *      limit): weighted, least-connections and latency without affinity,
 *      and a sticky weighted group.  Weights, in-flight counts and latency
 *      EWMAs are spread so the strategies do real work, and two endpoints
 *      of each group are cooling down, so availability is checked for real
 *      too.  The endpoint table lives in a MAP_SHARED mapping as in
 *      production; nobody else writes it, so its lines stay in this CPU's
 *      cache, which is the common case for the availability line (written
 *      only on breaker and cool-down changes) but flatters the counters
 *      line that other workers' requests keep pulling away.  <now> is read
 *      once per round, as a worker reads its clock once per wake-up.  The
 *      sticky figure is a hit: lookup, a pick of the home and a renewal
 *      that writes nothing within the same second.  Each figure is the
 *      median of several rounds.
 */
#include "core/conf.h"
#include "shm/ep.h"
#include "shm/sticky.h"
#include "tests/bench/bench.h"
#include "worker/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define TG_BENCH_ROUTE_OPS    1000000 /* selections per round */
#define TG_BENCH_ROUTE_ROUNDS 7       /* rounds per figure, median kept */
#define TG_BENCH_ROUTE_GROUP  64      /* endpoints per group */
#define TG_BENCH_ROUTE_STICKY 65536   /* sticky slots */


static int
tg_bench_route_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


/* The config text: four groups of 64 endpoints.  NULL on overflow. */
static char *
tg_bench_route_conf(void)
{
    static const char *const groups[] = {"w", "lc", "lat", "sticky"};
    size_t cap = 65536, len = 0;
    char *t = malloc(cap);
    int g, i, n;

    if (t == NULL) {
        return NULL;
    }
    len += (size_t)snprintf(t, cap, "endpoints = (\n");
    for (g = 0; g < 4; g++) {
        for (i = 0; i < TG_BENCH_ROUTE_GROUP; i++) {
            n = snprintf(t + len, cap - len,
                         "%s{ name = \"%s%d\"; url = \"http://127.0.0.1:9\"; "
                         "style = \"anthropic\"; credential = \"k\"; "
                         "group = \"%s\"; weight = %d; price_factor = %d; "
                         "models = ( \"claude-*\" ); }\n",
                         (g || i) ? "," : "", groups[g], i, groups[g],
                         1 + i % 7, 1 + i % 3);
            if (n < 0 || (size_t)n >= cap - len) {
                free(t);
                return NULL;
            }
            len += (size_t)n;
        }
    }
    n = snprintf(
        t + len, cap - len,
        ");\ngroups = (\n"
        "{ name = \"w\"; strategy = \"weighted\"; sticky = false; },\n"
        "{ name = \"lc\"; strategy = \"least-connections\"; "
        "sticky = false; },\n"
        "{ name = \"lat\"; strategy = \"latency\"; sticky = false; },\n"
        "{ name = \"sticky\"; strategy = \"weighted\"; }\n);\n");
    if (n < 0 || (size_t)n >= cap - len) {
        free(t);
        return NULL;
    }
    return t;
}


/* Median ns per tg_route_select of <q> over TG_BENCH_ROUTE_ROUNDS rounds. */
static double
tg_bench_route_measure(tg_route_t *rt, tg_route_req_t *q)
{
    double ns[TG_BENCH_ROUTE_ROUNDS];
    struct timespec ts;
    uint64_t t0, i;
    long sink = 0;
    int r;

    for (r = 0; r < TG_BENCH_ROUTE_ROUNDS; r++) {
        clock_gettime(CLOCK_REALTIME, &ts);
        q->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        t0 = tg_bench_now_ns();
        for (i = 0; i < TG_BENCH_ROUTE_OPS; i++) {
            sink += tg_route_select(rt, q);
        }
        ns[r] = (double)(tg_bench_now_ns() - t0) / TG_BENCH_ROUTE_OPS;
    }
    if (sink == -1) {
        fprintf(stderr, "bench: route: no endpoint chosen\n");
    }
    qsort(ns, TG_BENCH_ROUTE_ROUNDS, sizeof(ns[0]), tg_bench_route_cmp);
    return ns[TG_BENCH_ROUTE_ROUNDS / 2];
}


/* Group index of <name> in <conf>. */
static uint32_t
tg_bench_route_group(const tg_conf_t *conf, const char *name)
{
    size_t g;

    for (g = 0; g < conf->ngroups; g++) {
        if (strcmp(conf->groups[g].name, name) == 0) {
            return (uint32_t)g;
        }
    }
    return 0;
}


/* Endpoint selection, 64 endpoints in a group, per strategy. */
void
tg_bench_route(void)
{
    static const struct {
        const char *group;
        const char *name;
        uint64_t session;
    } cases[] = {
        {"w", "route select, weighted", 0},
        {"lc", "route select, least-connections", 0},
        {"lat", "route select, latency", 0},
        {"sticky", "route select, weighted + sticky hit", 0x5eed},
    };
    char err[512], detail[128], *text = tg_bench_route_conf();
    size_t epsize = sizeof(tg_shm_ep_t) * TG_ROUTE_MAX_ENDPOINTS, i;
    size_t stsize = tg_shm_sticky_size(TG_BENCH_ROUTE_STICKY);
    tg_route_req_t q;
    tg_conf_t *conf;
    tg_route_t *rt;
    tg_shm_ep_t *eps;
    void *mem;

    snprintf(err, sizeof(err), "out of memory");
    conf = text != NULL ? tg_conf_create_from_string(text, "bench.conf", err,
                                                     sizeof(err))
                        : NULL;
    free(text);
    if (conf == NULL) {
        fprintf(stderr, "bench: route: config failed: %s\n", err);
        return;
    }
    eps = mmap(NULL, epsize + stsize, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (eps == MAP_FAILED) {
        perror("bench: route: mmap() failed");
        tg_conf_destroy(conf);
        return;
    }
    mem = (char *)eps + epsize;
    for (i = 0; i < conf->nendpoints; i++) {
        atomic_store(&eps[i].inflight, 3 + (i * 7919) % 11);
        atomic_store(&eps[i].latency_ewma_us, 200000 + (i * 104729) % 90000);
        if (i % TG_BENCH_ROUTE_GROUP == 10 || i % TG_BENCH_ROUTE_GROUP == 50) {
            atomic_store(&eps[i].cooled_until_ms, UINT64_MAX);
        }
    }
    rt = tg_route_create(conf, eps,
                         tg_shm_sticky_init(mem, TG_BENCH_ROUTE_STICKY), 1);
    if (rt == NULL) {
        fprintf(stderr, "bench: route: tg_route_create failed\n");
    }
    for (i = 0; rt != NULL && i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&q, 0, sizeof(q));
        q.group = tg_bench_route_group(conf, cases[i].group);
        q.style = TG_STYLE_ANTHROPIC;
        q.model = "claude-sonnet-4-5";
        q.model_len = strlen(q.model);
        q.session = cases[i].session;
        snprintf(detail, sizeof(detail),
                 "%d endpoints in the group, 2 cooling down; target < 1000",
                 TG_BENCH_ROUTE_GROUP);
        tg_bench_report(cases[i].name, tg_bench_route_measure(rt, &q), detail);
    }
    tg_route_destroy(rt);
    munmap(eps, epsize + stsize);
    tg_conf_destroy(conf);
}
