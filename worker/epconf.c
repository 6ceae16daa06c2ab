/*
 * worker/epconf.c
 *      The worker's copy of the endpoint and group configuration.
 *
 * NOTES
 *      Worker only, single-threaded; never blocks.  See worker/epconf.h.
 *      A rebuild reads the whole table (at most 256 endpoints of 7 KB and
 *      the groups), well under a millisecond, and happens only when admin
 *      published a change.  An entry whose seqlock stays busy (a writer
 *      died mid-write) keeps its previous copy; the rebuild is tried
 *      again on a later request, at most every TG_EPCONF_RETRY_MS.
 */
#include "worker/epconf.h"
#include "core/core.h"
#include "core/log.h"
#include "worker/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TG_EPCONF_RETRY_MS 100

/* A field added to an endpoint or a group in core/conf.h must travel
 * through shared memory too (shm/epconf.h, admin/publish_ep.c staging,
 * the conversions below and admin/store_ep.c), or workers silently lose
 * it; these fail the build until that is done. */
_Static_assert(sizeof(tg_conf_endpoint_t) == 7104,
               "tg_conf_endpoint_t changed: carry the field in shm/epconf.h");
_Static_assert(sizeof(tg_conf_group_t) == 104,
               "tg_conf_group_t changed: carry the field in shm/epconf.h");

static struct {
    tg_conf_t conf;           /* the copy w->conf points at */
    const tg_conf_t *file;    /* the file's, restored by fini */
    tg_shm_epconf_hdr_t *tbl; /* the shared table */
    uint64_t seen;            /* table generation of the copy */
    uint64_t retry_ms;        /* a busy entry: try again after */
    tg_shm_epconf_ep_t *ep;   /* scratch entry */
} tg_epconf;


/* Copy shared entry <s> into <e>; <groups> give group names. */
static void
tg_epconf_ep_conv(const tg_shm_epconf_ep_t *s, tg_conf_endpoint_t *e,
                  const tg_conf_t *conf)
{
    uint32_t i;

    if (s->state == TG_SHM_EPCONF_GONE) {
        /* Keep the name for requests still ending on it; nothing else. */
        e->enabled = false;
        return;
    }
    memset(e, 0, sizeof(*e));
    if (s->state != TG_SHM_EPCONF_LIVE) {
        return;
    }
    memcpy(e->name, s->name, sizeof(e->name) - 1);
    memcpy(e->url, s->url, sizeof(e->url) - 1);
    memcpy(e->credential, s->credential, sizeof(e->credential) - 1);
    memcpy(e->proxy, s->proxy, sizeof(e->proxy) - 1);
    memcpy(e->health_path, s->health_path, sizeof(e->health_path) - 1);
    e->style =
        s->style == TG_STYLE_OPENAI ? TG_STYLE_OPENAI : TG_STYLE_ANTHROPIC;
    e->weight = s->weight > 0 ? s->weight : 1;
    e->priority =
        s->priority <= TG_PRIO_FALLBACK ? (int)s->priority : TG_PRIO_FALLBACK;
    e->group = s->group < conf->ngroups ? s->group : 0;
    memcpy(e->group_name, conf->groups[e->group].name,
           sizeof(e->group_name) - 1);
    e->enabled = s->enabled != 0;
    e->price_milli = s->price_milli;
    e->connect_timeout_ms = s->connect_timeout_ms;
    e->first_byte_timeout_ms = s->first_byte_timeout_ms;
    e->read_timeout_ms = s->read_timeout_ms;
    e->total_timeout_ms = s->total_timeout_ms;
    e->tls_verify = s->tls_verify != 0;
    e->health_interval_ms = s->health_interval_ms;
    e->health_timeout_ms = s->health_timeout_ms;
    e->quota_cooldown_ms = s->quota_cooldown_ms;
    e->nmodels = TG_MIN(s->nmodels, (uint32_t)TG_CONF_EP_MODELS);
    for (i = 0; i < e->nmodels; i++) {
        memcpy(e->models[i], s->models[i], sizeof(e->models[i]) - 1);
    }
    e->nmaps = TG_MIN(s->nmaps, (uint32_t)TG_CONF_EP_MAPS);
    for (i = 0; i < e->nmaps; i++) {
        memcpy(e->maps[i].from, s->maps[i].from, sizeof(e->maps[i].from) - 1);
        memcpy(e->maps[i].to, s->maps[i].to, sizeof(e->maps[i].to) - 1);
    }
}


static void
tg_epconf_group_conv(const tg_shm_epconf_group_t *s, tg_conf_group_t *g)
{
    memset(g, 0, sizeof(*g));
    if (s->state != TG_SHM_EPCONF_LIVE) {
        return;
    }
    memcpy(g->name, s->name, sizeof(g->name) - 1);
    g->strategy = s->strategy <= TG_STRATEGY_COST ? (int)s->strategy
                                                  : TG_STRATEGY_WEIGHTED;
    g->failure_threshold = s->failure_threshold;
    g->cooldown_ms = s->cooldown_ms;
    g->max_retries = s->max_retries;
    g->retry_deadline_ms = s->retry_deadline_ms;
    g->sticky = s->sticky != 0;
    g->sticky_ttl_ms = s->sticky_ttl_ms;
    g->explore_milli = s->explore_milli;
    g->wait_for_cooldown_ms = s->wait_for_cooldown_ms;
    g->translate = s->translate != 0;
}


/* Copy the whole table into the arrays; false when an entry was busy
 * (its previous copy stays). */
static bool
tg_epconf_load(void)
{
    tg_shm_epconf_hdr_t *h = tg_epconf.tbl;
    tg_conf_t *conf = &tg_epconf.conf;
    tg_shm_epconf_group_t g;
    bool complete = true;
    uint32_t i;

    for (i = 0; i < conf->ngroups; i++) {
        if (tg_shm_epconf_group_read(tg_shm_epconf_group(h, i), &g) !=
            TG_SHM_OK) {
            complete = false;
            continue;
        }
        tg_epconf_group_conv(&g, &conf->groups[i]);
    }
    for (i = 0; i < conf->nendpoints; i++) {
        if (tg_shm_epconf_ep_read(tg_shm_epconf_ep(h, i), tg_epconf.ep) !=
            TG_SHM_OK) {
            complete = false;
            continue;
        }
        tg_epconf_ep_conv(tg_epconf.ep, &conf->endpoints[i], conf);
    }
    explicit_bzero(tg_epconf.ep->credential, sizeof(tg_epconf.ep->credential));
    return complete;
}


/* See epconf.h. */
int
tg_epconf_init(tg_worker_t *w)
{
    tg_shm_epconf_hdr_t *h = tg_shm_epconf(w->shm);
    tg_conf_t *conf = &tg_epconf.conf;

    tg_epconf.file = w->conf;
    tg_epconf.tbl = h;
    *conf = *w->conf;
    conf->nendpoints = h->neps;
    conf->ngroups = h->ngroups;
    conf->endpoints = calloc(h->neps ? h->neps : 1, sizeof(*conf->endpoints));
    conf->groups = calloc(h->ngroups ? h->ngroups : 1, sizeof(*conf->groups));
    tg_epconf.ep = malloc(sizeof(*tg_epconf.ep));
    if (conf->endpoints == NULL || conf->groups == NULL ||
        tg_epconf.ep == NULL || h->ngroups == 0) {
        tg_log(TG_LOG_ERR, 0, "allocating the endpoint configuration failed");
        tg_epconf_fini(w);
        return TG_ERROR;
    }
    tg_epconf.seen = tg_shm_epconf_generation(h);
    if (!tg_epconf_load()) {
        tg_epconf.retry_ms = tg_time_mono_ms() + TG_EPCONF_RETRY_MS;
    }
    w->conf = conf;
    return TG_OK;
}


/* See epconf.h. */
void
tg_epconf_refresh(tg_worker_t *w)
{
    uint64_t gen = tg_shm_epconf_generation(tg_epconf.tbl);
    tg_route_t *rt;

    if (gen == tg_epconf.seen &&
        (tg_epconf.retry_ms == 0 || tg_time_mono_ms() < tg_epconf.retry_ms)) {
        return;
    }
    tg_epconf.seen = gen;
    tg_epconf.retry_ms =
        tg_epconf_load() ? 0 : tg_time_mono_ms() + TG_EPCONF_RETRY_MS;
    /* The route state lists endpoints by (group, style, tier) and caches
     * which serve a model: both follow the new configuration.  Without
     * memory for it the old state stays (it routes by the old lists, each
     * pick still checked against shared availability). */
    rt = tg_route_create(w->conf, tg_shm_table(w->shm, TG_SHM_T_EPS),
                         tg_shm_sticky(w->shm),
                         ((uint64_t)getpid() << 32) ^ tg_time_mono_us());
    if (rt == NULL) {
        tg_log(TG_LOG_ERR, 0, "rebuilding the route state failed");
        return;
    }
    tg_route_destroy(w->route);
    w->route = rt;
    tg_log(TG_LOG_DEBUG, 0, "endpoint configuration generation %llu",
           (unsigned long long)gen);
}


/* See epconf.h. */
void
tg_epconf_fini(tg_worker_t *w)
{
    if (tg_epconf.conf.endpoints != NULL) {
        explicit_bzero(tg_epconf.conf.endpoints,
                       tg_epconf.conf.nendpoints *
                           sizeof(*tg_epconf.conf.endpoints));
    }
    free(tg_epconf.conf.endpoints);
    free(tg_epconf.conf.groups);
    free(tg_epconf.ep);
    if (tg_epconf.file != NULL) {
        w->conf = tg_epconf.file;
    }
    memset(&tg_epconf, 0, sizeof(tg_epconf));
}
