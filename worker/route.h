/*
 * worker/route.h
 *      Routing by path, client authentication, local answers (/healthz,
 *      /v1/models) and endpoint choice.
 *
 * NOTES
 *      Worker only; never blocks.  Endpoint choice (docs/routing.md): the
 *      request's group is its key's group; candidates are that group's
 *      enabled endpoints of the request's API style (or, when the request
 *      can be translated and no endpoint of its style is a candidate in a
 *      tier, of the other style) that serve its model,
 *      are available in shared memory (breaker, cool-downs, health) and
 *      were not tried for this request.  The best priority tier with a
 *      candidate wins, then the group's strategy picks inside it.  Sticky
 *      groups send a conversation to its home endpoint (shm/sticky.h) while
 *      that is a candidate of the winning tier.
 *
 *      The selection core (tg_route_create / tg_route_choose) depends only
 *      on the config and the shared tables, so tests and the bench drive it
 *      without a worker.  Choosing writes nothing shared: it reads the
 *      endpoint and sticky tables and returns a choice; what follows from
 *      the choice (the sticky entry, admission on the endpoint, its events)
 *      is applied by the caller after it, in one place (worker/proxy.c),
 *      through tg_route_commit.  Its state (smooth weighted round-robin
 * weights, the model filter cache, a random generator) is per process: no
 *      locks, no allocation per request.
 */
#ifndef TG_WORKER_ROUTE_H
#define TG_WORKER_ROUTE_H

#include "core/conf.h"
#include "core/core.h"
#include "shm/ep.h"
#include "shm/sticky.h"
#include "worker/worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_ROUTE_MAX_ENDPOINTS 256 /* the config's limit */
#define TG_ROUTE_TRIED_WORDS   (TG_ROUTE_MAX_ENDPOINTS / 64)

typedef struct tg_route_s tg_route_t;

/* One request as endpoint choice sees it. */
typedef struct {
    uint32_t group;        /* the key's group, index in conf->groups */
    int style;             /* TG_STYLE_* of the request's API */
    bool cross;            /* endpoints of the other style may serve it
                              (translated), after those of its own style
                              in the same tier */
    const char *model;     /* model name, <model_len> bytes, no NUL needed */
    size_t model_len;      /* 0: the body named none */
    const uint64_t *tried; /* TG_ROUTE_TRIED_WORDS words, NULL = none */
    uint64_t session;      /* conversation (tg_route_session), 0 = none */
    uint64_t now_ms;       /* wall clock, for availability and expiry */
} tg_route_req_t;

/*
 * Selection state for <conf> over the endpoint table <eps> (TG_SHM_T_EPS,
 * at least conf->nendpoints entries) and the sticky table <sticky> (NULL:
 * no affinity).  <seed> seeds the exploration draws.  Returns a new state
 * owned by the caller (tg_route_destroy), or NULL when out of memory or
 * the config has more than TG_ROUTE_MAX_ENDPOINTS endpoints.  <conf> and
 * the tables must outlive it.
 */
tg_route_t *tg_route_create(const tg_conf_t *conf, tg_shm_ep_t *eps,
                            tg_shm_sticky_t *sticky, uint64_t seed);
void tg_route_destroy(tg_route_t *rt);

/* A choice made by tg_route_choose. */
typedef struct {
    int endpoint;             /* index in conf->endpoints, -1 none */
    bool sticky_set;          /* commit writes the conversation's home */
    uint64_t sticky_key;      /* its sticky table key */
    uint64_t sticky_until_ms; /* its new expiry */
} tg_route_choice_t;

/*
 * Choose an endpoint for <q> into <ch>: returns ch->endpoint, its index in
 * conf->endpoints, or -1 when no endpoint is a candidate.  Reads the
 * shared tables and writes none of them; advances only this process's
 * balancing state (weights, exploration draws).  No allocation, no lock;
 * O(endpoints of the group).
 */
int tg_route_choose(tg_route_t *rt, const tg_route_req_t *q,
                    tg_route_choice_t *ch);

/* Apply what follows from choice <ch> for <q> once it is taken: create or
 * renew the conversation's sticky entry. */
void tg_route_commit(tg_route_t *rt, const tg_route_req_t *q,
                     const tg_route_choice_t *ch);

/* tg_route_choose, then tg_route_commit: for callers with no admission
 * step between them (tests, the bench). */
int tg_route_select(tg_route_t *rt, const tg_route_req_t *q);

/* Whether tg_route_select would find a candidate for <q>; changes no
 * balancing or sticky state. */
bool tg_route_any(tg_route_t *rt, const tg_route_req_t *q);

/*
 * When no endpoint is available for <q> because every candidate is
 * cooling down after a 429 or 529: the untried candidate (any tier) that
 * is otherwise usable and whose cool-down ends soonest, with the time
 * left in <*wait_ms>; -1 when there is none.  Reads only; changes no
 * balancing or sticky state.
 */
int tg_route_soonest(tg_route_t *rt, const tg_route_req_t *q,
                     uint64_t *wait_ms);

/* How many endpoints could ever serve <q> (group, style, enabled, serves
 * the model; availability and tries not considered), counted up to 2. */
unsigned tg_route_count(tg_route_t *rt, const tg_route_req_t *q);

/* Whether group <group> of <conf> has an endpoint of API style <style>
 * (TG_STYLE_*), enabled or not.  Pure. */
bool tg_route_group_has_style(const tg_conf_t *conf, uint32_t group, int style);

/*
 * The conversation key of a request, from the raw JSON text (as the body
 * scanner captured it, possibly cut at its bound) of its top-level
 * members: metadata.user_id inside <metadata> when present, else the
 * x-session-id <header> value, else <system> together with the first
 * element of <messages>.  Empty strings stand for absent members.
 * Returns 0 when none of them identifies a conversation.  Pure.
 */
uint64_t tg_route_session(tg_str_t metadata, tg_str_t header, tg_str_t system,
                          tg_str_t messages);

/* The GET /v1/models body for keys of group <group>: the models the
 * group's endpoints (of both API styles) serve, with the Anthropic and
 * the OpenAI fields on every item.  Owned by <w>; *<len> bytes. */
const char *tg_route_models(const tg_worker_t *w, uint32_t group, size_t *len);

/* Build per-worker routing state (the /v1/models body, the selection
 * state).  TG_OK or TG_ERROR (logged); startup only. */
int tg_route_init(tg_worker_t *w);
void tg_route_fini(tg_worker_t *w);

#endif /* TG_WORKER_ROUTE_H */
