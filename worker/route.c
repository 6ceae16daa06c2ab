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


/* Build the GET /v1/models body, which carries both the Anthropic and the
 * OpenAI fields on every item so either SDK can read it. */
static int
tg_route_models_build(tg_worker_t *w)
{
    const tg_conf_t *conf = w->conf;
    size_t cap = 256 + conf->nmodels * 1024, n = 0, i;
    char *p = malloc(cap);
    int k;

    if (p == NULL) {
        return TG_ERROR;
    }
    n += (size_t)snprintf(p + n, cap - n, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < conf->nmodels; i++) {
        const tg_conf_model_t *m = &conf->models[i];
        char id[300], dn[300], owner[150], created[32];

        tg_json_escape(id, sizeof(id), m->id, strlen(m->id));
        tg_json_escape(dn, sizeof(dn), m->display_name,
                       strlen(m->display_name));
        tg_json_escape(owner, sizeof(owner), m->owned_by, strlen(m->owned_by));
        tg_route_iso8601(m->created, created, sizeof(created));
        k = snprintf(p + n, cap - n,
                     "%s{\"type\":\"model\",\"id\":\"%s\",\"display_name\":"
                     "\"%s\",\"created_at\":\"%s\",\"object\":\"model\","
                     "\"created\":%lld,\"owned_by\":\"%s\"}",
                     i ? "," : "", id, dn, created, (long long)m->created,
                     owner);
        if (k < 0 || (size_t)k >= cap - n) {
            free(p);
            return TG_ERROR;
        }
        n += (size_t)k;
    }
    if (conf->nmodels > 0) {
        char first[300], last[300];

        tg_json_escape(first, sizeof(first), conf->models[0].id,
                       strlen(conf->models[0].id));
        tg_json_escape(last, sizeof(last), conf->models[conf->nmodels - 1].id,
                       strlen(conf->models[conf->nmodels - 1].id));
        k = snprintf(p + n, cap - n,
                     "],\"has_more\":false,\"first_id\":\"%s\",\"last_id\":"
                     "\"%s\"}",
                     first, last);
    } else {
        k = snprintf(
            p + n, cap - n,
            "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    }
    if (k < 0 || (size_t)k >= cap - n) {
        free(p);
        return TG_ERROR;
    }
    w->models_json = p;
    w->models_json_len = n + (size_t)k;
    return TG_OK;
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
tg_route_scan(tg_route_t *rt, const tg_route_req_t *q, const uint64_t *serve,
              int strategy, int tier, uint32_t *cand, uint64_t *metric)
{
    uint32_t l = tg_route_list(q->group, q->style, tier), j, i;
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
    return e->group == q->group && e->style == q->style && e->enabled &&
           tg_route_bit(serve, home) && e->priority <= tier;
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
    tg_route_destroy(w->route);
    w->route = NULL;
    tg_epconf_fini(w);
}
