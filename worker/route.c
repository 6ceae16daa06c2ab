/*
 * worker/route.c
 *      Routing, authentication, local answers and endpoint choice.
 *
 * NOTES
 *      Paths are matched without their query string, as clients add
 *      "?beta=true" and the like.  The client key arrives as x-api-key or
 *      Authorization: Bearer on either API.  Keys are compared by SHA-256
 *      digest so the comparison time does not depend on where two keys
 *      differ.
 *
 *      Endpoint choice runs once per attempt, in the worker, and must stay
 *      well under a microsecond with 64 endpoints in a group: the group's
 *      enabled endpoints are listed per (style, tier) at start, the model
 *      filter is a cached bitmap per model name, and a pick is one scan of
 *      one list reading the shared availability and counter lines, with no
 *      allocation and no lock.  Balancing state (smooth weighted
 *      round-robin weights) is per worker, as in nginx: N workers each
 *      follow the weights, so their sum does too.  docs/routing.md has the
 *      rules.
 */
#include "worker/route.h"
#include "core/core.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/epconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static void
tg_route_iso8601(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


/* A growing text, for the model list bodies (startup only). */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed;
} tg_route_text_t;


static void tg_route_text_add(tg_route_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
tg_route_text_add(tg_route_text_t *t, const char *fmt, ...)
{
    va_list ap;
    char *q;
    int n;

    if (t->failed) {
        return;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        q = realloc(t->p, t->cap * 2 + (size_t)n);
        if (q == NULL) {
            t->failed = true;
            return;
        }
        t->p = q;
        t->cap = t->cap * 2 + (size_t)n;
    }
}


/* Whether an enabled endpoint of group <g> serves model <id>. */
static bool
tg_route_group_serves(const tg_conf_t *conf, uint32_t g, const char *id)
{
    size_t i, j;

    for (i = 0; i < conf->nendpoints; i++) {
        const tg_conf_endpoint_t *e = &conf->endpoints[i];

        if (e->group != g || !e->enabled) {
            continue;
        }
        if (e->nmodels == 0) {
            return true;
        }
        for (j = 0; j < e->nmodels; j++) {
            if (tg_shm_models_glob(e->models[j], strlen(e->models[j]), id,
                                   strlen(id))) {
                return true;
            }
        }
    }
    return false;
}


/* One item with both field sets: Anthropic's type, id, display_name,
 * created_at; OpenAI's object, created, owned_by.  <first> says whether
 * it opens the list. */
static void
tg_route_model_item(tg_route_text_t *t, const char *mid, const char *name,
                    int64_t created, const char *owner, bool first)
{
    char id[300], dn[300], own[150], at[32];

    tg_json_escape(id, sizeof(id), mid, strlen(mid));
    tg_json_escape(dn, sizeof(dn), name, strlen(name));
    tg_json_escape(own, sizeof(own), owner, strlen(owner));
    tg_route_iso8601(created, at, sizeof(at));
    tg_route_text_add(t,
                      "%s{\"type\":\"model\",\"id\":\"%s\",\"display_name\":"
                      "\"%s\",\"created_at\":\"%s\",\"object\":\"model\","
                      "\"created\":%lld,\"owned_by\":\"%s\"}",
                      first ? "" : ",", id, dn, at, (long long)created, own);
}


/* The owner of a model known only by its id, as the config does it. */
static const char *
tg_route_owner(const char *id)
{
    if (strncmp(id, "claude", 6) == 0) {
        return "anthropic";
    }
    if (strncmp(id, "gpt", 3) == 0 || strncmp(id, "o1", 2) == 0 ||
        strncmp(id, "o3", 2) == 0 || strncmp(id, "o4", 2) == 0) {
        return "openai";
    }
    return "system";
}


/*
 * The GET /v1/models body of group <g> appended to <t>: the configured
 * models some enabled endpoint of the group serves, then the exact model
 * names (patterns without '*') and renamed names (model_map's from) of
 * the group's endpoints not listed yet.  The group's endpoints of both
 * API styles count: with translation either can serve a client of
 * either API.  <names> is scratch for the ids listed (<cap> entries).
 */
static void
tg_route_models_group(const tg_conf_t *conf, uint32_t g, tg_route_text_t *t,
                      const char **names, size_t cap)
{
    size_t n = 0, i, j, k;
    const char *cand;

    tg_route_text_add(t, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < conf->nmodels && n < cap; i++) {
        const tg_conf_model_t *m = &conf->models[i];

        if (!tg_route_group_serves(conf, g, m->id)) {
            continue;
        }
        tg_route_model_item(t, m->id, m->display_name, m->created, m->owned_by,
                            n == 0);
        names[n++] = m->id;
    }
    for (i = 0; i < conf->nendpoints; i++) {
        const tg_conf_endpoint_t *e = &conf->endpoints[i];

        if (e->group != g || !e->enabled) {
            continue;
        }
        for (j = 0; j < e->nmodels + e->nmaps && n < cap; j++) {
            cand = j < e->nmodels ? e->models[j] : e->maps[j - e->nmodels].from;
            if (strchr(cand, '*') != NULL) {
                continue;
            }
            for (k = 0; k < n && strcmp(names[k], cand) != 0; k++) {
            }
            if (k < n) {
                continue;
            }
            tg_route_model_item(t, cand, cand, 0, tg_route_owner(cand), n == 0);
            names[n++] = cand;
        }
    }
    if (n > 0) {
        char first[300], last[300];

        tg_json_escape(first, sizeof(first), names[0], strlen(names[0]));
        tg_json_escape(last, sizeof(last), names[n - 1], strlen(names[n - 1]));
        tg_route_text_add(t,
                          "],\"has_more\":false,\"first_id\":\"%s\","
                          "\"last_id\":\"%s\"}",
                          first, last);
    } else {
        tg_route_text_add(
            t, "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    }
}


/* Build the GET /v1/models bodies, one per group, back to back in
 * w->models_json (group g's at [models_off[g], models_off[g + 1])). */
static int
tg_route_models_build(tg_worker_t *w)
{
    const tg_conf_t *conf = w->conf;
    size_t cap = conf->nmodels +
                 conf->nendpoints * (TG_CONF_EP_MODELS + TG_CONF_EP_MAPS);
    tg_route_text_t t = {NULL, 0, 0, false};
    const char **names = malloc(sizeof(char *) * (cap + 1));
    size_t *off = malloc(sizeof(size_t) * (conf->ngroups + 1));
    uint32_t g;

    t.cap = 4096;
    t.p = malloc(t.cap);
    if (names == NULL || off == NULL || t.p == NULL) {
        t.failed = true;
    }
    for (g = 0; g < conf->ngroups && !t.failed; g++) {
        off[g] = t.len;
        tg_route_models_group(conf, g, &t, names, cap);
    }
    free(names);
    if (t.failed) {
        free(t.p);
        free(off);
        return TG_ERROR;
    }
    off[conf->ngroups] = t.len;
    w->models_json = t.p;
    w->models_off = off;
    return TG_OK;
}


/* See route.h. */
const char *
tg_route_models(const tg_worker_t *w, uint32_t group, size_t *len)
{
    if (group >= w->conf->ngroups) {
        group = 0;
    }
    *len = w->models_off[group + 1] - w->models_off[group];
    return w->models_json + w->models_off[group];
}


/* Endpoint choice ------------------------------------------------------ */

#define TG_ROUTE_MCACHE 64 /* model filter cache entries, a power of two */
#define TG_ROUTE_NAME   64 /* longest model name the cache holds, + 1 */
#define TG_ROUTE_TIERS  3  /* TG_PRIO_PRIMARY .. TG_PRIO_FALLBACK */

/* Seeds that keep the hashes of different things apart. */
#define TG_ROUTE_SEED_MODEL  0x6d6f64656c000001ull
#define TG_ROUTE_SEED_USER   0x7573657269640002ull
#define TG_ROUTE_SEED_HEADER 0x6865616465720003ull
#define TG_ROUTE_SEED_PROMPT 0x70726f6d70740004ull
#define TG_ROUTE_SEED_STICKY 0x737469636b790005ull

/* wyhash's constants: odd, with balanced bits. */
#define TG_ROUTE_P0 0xa0761d6478bd642full
#define TG_ROUTE_P1 0xe7037ed1a0b428dbull
#define TG_ROUTE_P2 0x8ebc6af09c88c6e3ull

/* Which endpoints serve one model name: a per-process cache, because the
 * patterns are globs and a request must not pay for them. */
typedef struct {
    uint64_t hash;                        /* of the name */
    uint32_t len;                         /* name bytes */
    bool used;                            /* entry filled */
    char name[TG_ROUTE_NAME];             /* the model name */
    uint64_t serve[TG_ROUTE_TRIED_WORDS]; /* bit i: endpoint i serves it */
} tg_route_model_t;

struct tg_route_s {
    const tg_conf_t *conf;
    tg_shm_ep_t *eps;        /* shared endpoint table */
    tg_shm_sticky_t *sticky; /* shared sticky table, NULL = none */
    uint64_t rng;            /* xorshift64* state, never 0 */
    /* Enabled endpoints by (group, style, tier), in config order: list l
     * is members[first[l] .. first[l + 1]). */
    uint32_t *first;
    uint32_t *members;
    int64_t cur[TG_ROUTE_MAX_ENDPOINTS];    /* smooth weighted rr weights */
    uint64_t scratch[TG_ROUTE_TRIED_WORDS]; /* serve set of long names */
    tg_route_model_t models[TG_ROUTE_MCACHE];
};


static inline uint64_t
tg_route_mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}


static inline uint64_t
tg_route_rd64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}


static inline uint64_t
tg_route_rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}


/*
 * 64-bit hash of <len> bytes at <data> with <seed>, after wyhash's
 * structure: 16 bytes per 64x64->128 multiply, so a 4 KB system prompt
 * costs a few hundred nanoseconds.  Not for adversarial keys: a collision
 * costs only cache warmth.
 */
static uint64_t
tg_route_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ TG_ROUTE_P0, a, b;
    size_t n = len;

    while (n > 16) {
        h = tg_route_mum(tg_route_rd64(p) ^ TG_ROUTE_P1,
                         tg_route_rd64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    if (n > 8) {
        a = tg_route_rd64(p);
        b = tg_route_rd64(p + n - 8);
    } else if (n >= 4) {
        a = tg_route_rd32(p);
        b = tg_route_rd32(p + n - 4);
    } else if (n > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
        b = 0;
    } else {
        a = b = 0;
    }
    return tg_route_mum(TG_ROUTE_P1 ^ len,
                        tg_route_mum(a ^ TG_ROUTE_P1, b ^ h ^ TG_ROUTE_P2));
}


static inline uint64_t
tg_route_rand(tg_route_t *rt)
{
    uint64_t x = rt->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rt->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}


static inline bool
tg_route_bit(const uint64_t *set, uint32_t i)
{
    return (set[i >> 6] >> (i & 63)) & 1;
}


static inline uint32_t
tg_route_list(uint32_t group, int style, int tier)
{
    return (group * 2 + (uint32_t)style) * TG_ROUTE_TIERS + (uint32_t)tier;
}


/* See route.h. */
tg_route_t *
tg_route_create(const tg_conf_t *conf, tg_shm_ep_t *eps,
                tg_shm_sticky_t *sticky, uint64_t seed)
{
    size_t nlists = conf->ngroups * 2 * TG_ROUTE_TIERS, l, i, n = 0;
    tg_route_t *rt;

    if (conf->nendpoints > TG_ROUTE_MAX_ENDPOINTS || conf->ngroups == 0) {
        return NULL;
    }
    rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return NULL;
    }
    rt->conf = conf;
    rt->eps = eps;
    rt->sticky = sticky;
    rt->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
    rt->first = calloc(nlists + 1, sizeof(uint32_t));
    rt->members = calloc(conf->nendpoints + 1, sizeof(uint32_t));
    if (rt->first == NULL || rt->members == NULL) {
        tg_route_destroy(rt);
        return NULL;
    }
    /* Startup only, at most 1,536 lists x 256 endpoints. */
    for (l = 0; l < nlists; l++) {
        rt->first[l] = (uint32_t)n;
        for (i = 0; i < conf->nendpoints; i++) {
            const tg_conf_endpoint_t *e = &conf->endpoints[i];

            if (e->enabled && e->group < conf->ngroups &&
                (e->style == TG_STYLE_ANTHROPIC ||
                 e->style == TG_STYLE_OPENAI) &&
                e->priority >= TG_PRIO_PRIMARY &&
                e->priority <= TG_PRIO_FALLBACK &&
                tg_route_list(e->group, e->style, e->priority) == l) {
                rt->members[n++] = (uint32_t)i;
            }
        }
    }
    rt->first[nlists] = (uint32_t)n;
    return rt;
}


/* Free <rt>; NULL is ok. */
void
tg_route_destroy(tg_route_t *rt)
{
    if (rt == NULL) {
        return;
    }
    free(rt->first);
    free(rt->members);
    free(rt);
}


/* Fill <serve> with the endpoints whose patterns match <model>. */
static void
tg_route_serve_fill(const tg_conf_t *conf, const char *model, size_t len,
                    uint64_t *serve)
{
    size_t i, j;

    memset(serve, 0, sizeof(uint64_t) * TG_ROUTE_TRIED_WORDS);
    for (i = 0; i < conf->nendpoints; i++) {
        const tg_conf_endpoint_t *e = &conf->endpoints[i];
        bool ok = e->nmodels == 0;

        for (j = 0; j < e->nmodels && !ok; j++) {
            ok = tg_shm_models_glob(e->models[j], strlen(e->models[j]), model,
                                    len);
        }
        if (ok) {
            serve[i >> 6] |= 1ull << (i & 63);
        }
    }
}


/* The set of endpoints serving <model> (<len> bytes), from the cache;
 * <*hash> gets the name's hash. */
static const uint64_t *
tg_route_serve(tg_route_t *rt, const char *model, size_t len, uint64_t *hash)
{
    uint64_t h = tg_route_hash(model, len, TG_ROUTE_SEED_MODEL);
    tg_route_model_t *m;

    *hash = h;
    if (len >= TG_ROUTE_NAME) {
        tg_route_serve_fill(rt->conf, model, len, rt->scratch);
        return rt->scratch;
    }
    m = &rt->models[h & (TG_ROUTE_MCACHE - 1)];
    if (!m->used || m->hash != h || m->len != len ||
        (len > 0 && memcmp(m->name, model, len) != 0)) {
        tg_route_serve_fill(rt->conf, model, len, m->serve);
        if (len > 0) {
            memcpy(m->name, model, len);
        }
        m->len = (uint32_t)len;
        m->hash = h;
        m->used = true;
    }
    return m->serve;
}


/*
 * The candidates of tier <tier> for <q>: indexes into <cand> and, when
 * <metric> is not NULL, what <strategy> compares into <metric>.  Returns
 * how many.
 */
static size_t
tg_route_scan_style(tg_route_t *rt, const tg_route_req_t *q,
                    const uint64_t *serve, int strategy, int style, int tier,
                    uint32_t *cand, uint64_t *metric)
{
    uint32_t l = tg_route_list(q->group, style, tier), j, i;
    size_t n = 0;

    for (j = rt->first[l]; j < rt->first[l + 1]; j++) {
        const tg_shm_ep_t *e;

        i = rt->members[j];
        if ((q->tried != NULL && tg_route_bit(q->tried, i)) ||
            !tg_route_bit(serve, i)) {
            continue;
        }
        e = tg_shm_ep_get(rt->eps, i);
        if (!tg_shm_ep_available(e, q->now_ms)) {
            continue;
        }
        if (metric != NULL) {
            switch (strategy) {
            case TG_STRATEGY_LEAST_CONN:
                metric[n] =
                    atomic_load_explicit(&e->inflight, memory_order_relaxed);
                break;
            case TG_STRATEGY_LATENCY:
                metric[n] = atomic_load_explicit(&e->latency_ewma_us,
                                                 memory_order_relaxed);
                break;
            case TG_STRATEGY_COST:
                metric[n] = rt->conf->endpoints[i].price_milli;
                break;
            default:
                metric[n] = 0;
            }
        }
        cand[n++] = i;
    }
    return n;
}


/*
 * The candidates of tier <tier> for <q>: those of the request's own style,
 * or, when there is none and the request may be translated, those of the
 * other style.  Translation is a fallback inside a tier, never a reason
 * to skip one: priority tiers say what the operator pays for.
 */
static size_t
tg_route_scan(tg_route_t *rt, const tg_route_req_t *q, const uint64_t *serve,
              int strategy, int tier, uint32_t *cand, uint64_t *metric)
{
    size_t n = tg_route_scan_style(rt, q, serve, strategy, q->style, tier, cand,
                                   metric);

    if (n == 0 && q->cross) {
        n = tg_route_scan_style(rt, q, serve, strategy,
                                q->style == TG_STYLE_OPENAI ? TG_STYLE_ANTHROPIC
                                                            : TG_STYLE_OPENAI,
                                tier, cand, metric);
    }
    return n;
}


/*
 * Smooth weighted round-robin (nginx): every candidate gains its weight
 * (1 each when not <weighted>, which is plain rotation), the leader is
 * picked and pays the total back.  Over any run the picks follow the
 * weights exactly, interleaved rather than in bursts.
 */
static uint32_t
tg_route_swrr(tg_route_t *rt, const uint32_t *cand, size_t n, bool weighted)
{
    const tg_conf_endpoint_t *eps = rt->conf->endpoints;
    int64_t total = 0, w;
    uint32_t best = cand[0];
    size_t i;

    for (i = 0; i < n; i++) {
        w = weighted ? (int64_t)eps[cand[i]].weight : 1;
        rt->cur[cand[i]] += w;
        total += w;
        if (rt->cur[cand[i]] > rt->cur[best]) {
            best = cand[i];
        }
    }
    rt->cur[best] -= total;
    return best;
}


/* Keep only the candidates with the lowest metric; returns how many. */
static size_t
tg_route_keep_min(uint32_t *cand, const uint64_t *metric, size_t n)
{
    uint64_t min = UINT64_MAX;
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (metric[i] < min) {
            min = metric[i];
        }
    }
    for (i = 0; i < n; i++) {
        if (metric[i] == min) {
            cand[k++] = cand[i];
        }
    }
    return k;
}


/* Apply <g>'s strategy to the <n> candidates of one tier. */
static uint32_t
tg_route_strategy(tg_route_t *rt, const tg_conf_group_t *g, uint32_t *cand,
                  const uint64_t *metric, size_t n)
{
    switch (g->strategy) {
    case TG_STRATEGY_ROUND_ROBIN:
        return tg_route_swrr(rt, cand, n, false);
    case TG_STRATEGY_LATENCY:
        /* Exploration: a slow endpoint is otherwise never measured again,
         * so it could never win its traffic back. */
        if (n > 1 && g->explore_milli > 0 &&
            (tg_route_rand(rt) >> 32) % 1000 < g->explore_milli) {
            return cand[(tg_route_rand(rt) >> 32) % n];
        }
        /* fall through */
    case TG_STRATEGY_LEAST_CONN:
    case TG_STRATEGY_COST:
        /* Ties (all idle, all unmeasured, equal prices) are shared by
         * weight rather than all going to the first endpoint. */
        return tg_route_swrr(rt, cand, tg_route_keep_min(cand, metric, n),
                             true);
    default:
        return tg_route_swrr(rt, cand, n, true);
    }
}


static bool
tg_route_valid(const tg_route_t *rt, const tg_route_req_t *q)
{
    return q->group < rt->conf->ngroups &&
           (q->style == TG_STYLE_ANTHROPIC || q->style == TG_STYLE_OPENAI);
}


/*
 * Whether the sticky mapping to <home> survives a request that went
 * elsewhere in tier <tier>: yes while <home> still belongs to the request
 * (group, style, enabled, serves the model) and is not outranked, i.e. it
 * was passed over only because it is unavailable or was tried.  A home in
 * a worse tier than the one that served (a secondary taken while the
 * primaries were down) gives way, so conversations go back up.
 */
static bool
tg_route_home_kept(const tg_route_t *rt, const tg_route_req_t *q,
                   const uint64_t *serve, uint32_t home, int tier)
{
    const tg_conf_endpoint_t *e;

    if (home >= rt->conf->nendpoints) {
        return false;
    }
    e = &rt->conf->endpoints[home];
    return e->group == q->group && (e->style == q->style || q->cross) &&
           e->enabled && tg_route_bit(serve, home) && e->priority <= tier;
}


/* The sticky table key of <q>'s conversation: one home per conversation,
 * group and model (a side request on another model has its own). */
static uint64_t
tg_route_sticky_key(const tg_route_req_t *q, uint64_t model_hash)
{
    uint64_t v[3] = {q->session, model_hash, q->group};

    return tg_shm_sticky_key(tg_route_hash(v, sizeof(v), TG_ROUTE_SEED_STICKY));
}


/* See route.h. */
bool
tg_route_group_has_style(const tg_conf_t *conf, uint32_t group, int style)
{
    size_t i;

    for (i = 0; i < conf->nendpoints; i++) {
        if (conf->endpoints[i].group == group &&
            (int)conf->endpoints[i].style == style) {
            return true;
        }
    }
    return false;
}


/* See route.h. */
int
tg_route_choose(tg_route_t *rt, const tg_route_req_t *q, tg_route_choice_t *ch)
{
    uint32_t cand[TG_ROUTE_MAX_ENDPOINTS], home = UINT32_MAX, pick;
    uint64_t metric[TG_ROUTE_MAX_ENDPOINTS], model_hash;
    const tg_conf_group_t *g;
    const uint64_t *serve;
    bool sticky;
    size_t n, i;
    int tier;

    memset(ch, 0, sizeof(*ch));
    ch->endpoint = -1;
    if (!tg_route_valid(rt, q)) {
        return -1;
    }
    g = &rt->conf->groups[q->group];
    serve = tg_route_serve(rt, q->model, q->model_len, &model_hash);
    sticky = g->sticky && q->session != 0 && rt->sticky != NULL;
    if (sticky) {
        ch->sticky_key = tg_route_sticky_key(q, model_hash);
        if (tg_shm_sticky_lookup(rt->sticky, ch->sticky_key, q->now_ms, &home,
                                 NULL) != TG_SHM_OK) {
            home = UINT32_MAX;
        }
    }
    for (tier = TG_PRIO_PRIMARY; tier <= TG_PRIO_FALLBACK; tier++) {
        n = tg_route_scan(rt, q, serve, g->strategy, tier, cand, metric);
        if (n == 0) {
            continue;
        }
        for (i = 0; i < n && home != UINT32_MAX; i++) {
            if (cand[i] == home) {
                /* Renewal writes at most once a second per mapping. */
                ch->sticky_set = true;
                ch->sticky_until_ms = q->now_ms + g->sticky_ttl_ms;
                ch->endpoint = (int)home;
                return ch->endpoint;
            }
        }
        pick = tg_route_strategy(rt, g, cand, metric, n);
        if (sticky && !tg_route_home_kept(rt, q, serve, home, tier)) {
            ch->sticky_set = true;
            ch->sticky_until_ms = q->now_ms + g->sticky_ttl_ms;
        }
        ch->endpoint = (int)pick;
        return ch->endpoint;
    }
    return -1;
}


/* See route.h. */
void
tg_route_commit(tg_route_t *rt, const tg_route_req_t *q,
                const tg_route_choice_t *ch)
{
    if (ch->endpoint < 0 || !ch->sticky_set || rt->sticky == NULL) {
        return;
    }
    /* A lost race (TG_SHM_BUSY) only costs this mapping: the next request
     * of the conversation writes it again. */
    tg_shm_sticky_set(rt->sticky, ch->sticky_key, (uint32_t)ch->endpoint,
                      ch->sticky_until_ms, q->now_ms);
}


/* See route.h. */
int
tg_route_select(tg_route_t *rt, const tg_route_req_t *q)
{
    tg_route_choice_t ch;

    if (tg_route_choose(rt, q, &ch) >= 0) {
        tg_route_commit(rt, q, &ch);
    }
    return ch.endpoint;
}


/* See route.h. */
int
tg_route_soonest(tg_route_t *rt, const tg_route_req_t *q, uint64_t *wait_ms)
{
    const uint64_t *serve;
    uint64_t model_hash, until, best_until = UINT64_MAX;
    uint32_t l, j, i;
    int tier, style, best = -1;

    *wait_ms = 0;
    if (!tg_route_valid(rt, q)) {
        return -1;
    }
    serve = tg_route_serve(rt, q->model, q->model_len, &model_hash);
    for (tier = TG_PRIO_PRIMARY; tier <= TG_PRIO_FALLBACK; tier++) {
        for (style = TG_STYLE_ANTHROPIC; style <= TG_STYLE_OPENAI; style++) {
            if (style != q->style && !q->cross) {
                continue;
            }
            l = tg_route_list(q->group, style, tier);
            for (j = rt->first[l]; j < rt->first[l + 1]; j++) {
                const tg_shm_ep_t *e;

                i = rt->members[j];
                if ((q->tried != NULL && tg_route_bit(q->tried, i)) ||
                    !tg_route_bit(serve, i)) {
                    continue;
                }
                e = tg_shm_ep_get(rt->eps, i);
                if (!tg_shm_ep_usable(e, q->now_ms)) {
                    continue;
                }
                until = atomic_load_explicit(&e->cooled_until_ms,
                                             memory_order_relaxed);
                if (until < best_until) {
                    best_until = until;
                    best = (int)i;
                }
            }
        }
    }
    if (best >= 0 && best_until > q->now_ms) {
        *wait_ms = best_until - q->now_ms;
    }
    return best;
}


/* See route.h. */
unsigned
tg_route_count(tg_route_t *rt, const tg_route_req_t *q)
{
    const uint64_t *serve;
    uint64_t model_hash;
    uint32_t l, j;
    unsigned n = 0;
    int tier, style;

    if (!tg_route_valid(rt, q)) {
        return 0;
    }
    serve = tg_route_serve(rt, q->model, q->model_len, &model_hash);
    for (tier = TG_PRIO_PRIMARY; tier <= TG_PRIO_FALLBACK && n < 2; tier++) {
        for (style = TG_STYLE_ANTHROPIC; style <= TG_STYLE_OPENAI; style++) {
            if (style != q->style && !q->cross) {
                continue;
            }
            l = tg_route_list(q->group, style, tier);
            for (j = rt->first[l]; j < rt->first[l + 1] && n < 2; j++) {
                n += tg_route_bit(serve, rt->members[j]) ? 1 : 0;
            }
        }
    }
    return n;
}


/* See route.h. */
bool
tg_route_any(tg_route_t *rt, const tg_route_req_t *q)
{
    uint32_t cand[TG_ROUTE_MAX_ENDPOINTS];
    const uint64_t *serve;
    uint64_t model_hash;
    int tier;

    if (!tg_route_valid(rt, q)) {
        return false;
    }
    serve = tg_route_serve(rt, q->model, q->model_len, &model_hash);
    for (tier = TG_PRIO_PRIMARY; tier <= TG_PRIO_FALLBACK; tier++) {
        if (tg_route_scan(rt, q, serve, TG_STRATEGY_WEIGHTED, tier, cand,
                          NULL) > 0) {
            return true;
        }
    }
    return false;
}


/*
 * The first element of the JSON array whose raw text (possibly cut) is
 * <a>: its whole text, or what there is of it when the capture was cut
 * inside it.  Empty when <a> is not an array or the array is empty.
 */
static tg_str_t
tg_route_first_element(tg_str_t a)
{
    const char *p = a.data, *end = a.data + a.len, *start;
    bool in_str = false, esc = false;
    unsigned depth = 0;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    if (p == end || *p != '[') {
        return tg_str_null;
    }
    p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    if (p == end || *p == ']') {
        return tg_str_null;
    }
    for (start = p; p < end; p++) {
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (*p == '\\') {
                esc = true;
            } else if (*p == '"') {
                in_str = false;
                if (depth == 0) {
                    return (tg_str_t){start, (size_t)(p + 1 - start)};
                }
            }
        } else if (*p == '"') {
            in_str = true;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0) {
                return (tg_str_t){start, (size_t)(p - start)};
            }
            if (--depth == 0) {
                return (tg_str_t){start, (size_t)(p + 1 - start)};
            }
        } else if (*p == ',' && depth == 0) {
            return (tg_str_t){start, (size_t)(p - start)};
        }
    }
    return (tg_str_t){start, (size_t)(end - start)};
}


/* See route.h. */
uint64_t
tg_route_session(tg_str_t metadata, tg_str_t header, tg_str_t system,
                 tg_str_t messages)
{
    tg_json_field_t f[1];
    tg_json_scan_t s;
    tg_str_t first;
    char uid[256];
    uint64_t h;

    if (metadata.len > 0) {
        f[0] = (tg_json_field_t){
            .name = "user_id", .name_len = 7, .buf = uid, .cap = sizeof(uid)};
        tg_json_scan_init(&s, f, 1);
        tg_json_scan_feed(&s, metadata.data, metadata.len);
        /* A string with at least one character; null and "" say nothing. */
        if (f[0].found && f[0].len > 2 && uid[0] == '"') {
            return tg_route_hash(uid, f[0].len, TG_ROUTE_SEED_USER);
        }
    }
    if (header.len > 0) {
        return tg_route_hash(header.data, header.len, TG_ROUTE_SEED_HEADER);
    }
    first = tg_route_first_element(messages);
    if (system.len == 0 && first.len == 0) {
        return 0;
    }
    h = tg_route_hash(system.data, system.len, TG_ROUTE_SEED_PROMPT);
    return tg_route_hash(first.data, first.len, h);
}


/* See route.h. */
int
tg_route_init(tg_worker_t *w)
{
    const tg_conf_t *conf;

    if (tg_epconf_init(w) != TG_OK) {
        return TG_ERROR;
    }
    conf = w->conf;
    if (tg_route_models_build(w) != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "building the model list failed");
        return TG_ERROR;
    }
    if (tg_shm_capacity(w->shm, TG_SHM_T_EPS) < conf->nendpoints) {
        tg_log(TG_LOG_ERR, 0,
               "shared endpoint table holds %u entries, config has %zu",
               tg_shm_capacity(w->shm, TG_SHM_T_EPS), conf->nendpoints);
        return TG_ERROR;
    }
    w->route = tg_route_create(
        conf, tg_shm_table(w->shm, TG_SHM_T_EPS), tg_shm_sticky(w->shm),
        ((uint64_t)getpid() << 32) ^ tg_time_mono_us() ^ (uint64_t)w->slot);
    if (w->route == NULL) {
        tg_log(TG_LOG_ERR, 0, "creating the route state failed");
        return TG_ERROR;
    }
    return TG_OK;
}


/* Free what tg_route_init built. */
void
tg_route_fini(tg_worker_t *w)
{
    free(w->models_json);
    w->models_json = NULL;
    free(w->models_off);
    w->models_off = NULL;
    tg_route_destroy(w->route);
    w->route = NULL;
    tg_epconf_fini(w);
}
