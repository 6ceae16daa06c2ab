/*
 * admin/publish_ep.c
 *      Endpoints and groups into shared memory, and admin's view of them.
 *
 * NOTES
 *      Admin only, on its loop; never blocks (at most a few hundred
 *      entries of a few kilobytes are compared and written).  See
 *      admin/publish_ep.h for slot assignment and shm/epconf.h for the
 *      protocol.  Admin is the only writer of the table, so it reads its
 *      own entries without the seqlock; an entry a dead admin left odd
 *      ("torn") is never trusted and always rewritten.
 */
#include "admin/publish_ep.h"
#include "core/core.h"
#include "core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    tg_conf_t conf;          /* the view: the file's, arrays replaced */
    tg_conf_endpoint_t *eps; /* one per endpoint slot */
    tg_conf_group_t *groups; /* one per group slot */
    const tg_conf_t *file;   /* the configuration file */
    bool ready;
} tg_pe;

/* What "default" is when nobody declared it (core/conf.c's defaults). */
static const tg_conf_group_t tg_pe_default_group = {
    .name = "default",
    .strategy = TG_STRATEGY_WEIGHTED,
    .failure_threshold = 5,
    .cooldown_ms = 30000,
    .max_retries = 2,
    .retry_deadline_ms = 60000,
    .sticky = true,
    .sticky_ttl_ms = 3600000,
    .explore_milli = 50,
    .translate = true,
};


/* See publish_ep.h. */
int
tg_publish_ep_init(const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_shm_epconf_hdr_t *h = tg_shm_epconf(shm);

    tg_pe.file = conf;
    tg_pe.eps = calloc(h->neps ? h->neps : 1, sizeof(*tg_pe.eps));
    tg_pe.groups = calloc(h->ngroups ? h->ngroups : 1, sizeof(*tg_pe.groups));
    if (tg_pe.eps == NULL || tg_pe.groups == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(endpoint view) failed");
        tg_publish_ep_fini();
        return TG_ERROR;
    }
    tg_pe.conf = *conf;
    tg_pe.conf.endpoints = tg_pe.eps;
    tg_pe.conf.nendpoints = h->neps;
    tg_pe.conf.groups = tg_pe.groups;
    tg_pe.conf.ngroups = h->ngroups;
    tg_pe.groups[0] = tg_pe_default_group;
    tg_pe.ready = true;
    return TG_OK;
}


/* See publish_ep.h. */
void
tg_publish_ep_fini(void)
{
    if (tg_pe.eps != NULL) {
        explicit_bzero(tg_pe.eps, tg_pe.conf.nendpoints * sizeof(*tg_pe.eps));
    }
    free(tg_pe.eps);
    free(tg_pe.groups);
    memset(&tg_pe, 0, sizeof(tg_pe));
}


/* See publish_ep.h. */
const tg_conf_t *
tg_publish_ep_conf(void)
{
    return tg_pe.ready ? &tg_pe.conf : tg_pe.file;
}


/* ------------------------------------------------------------ staging */

static void
tg_pe_group_stage(const tg_conf_group_t *g, uint64_t id,
                  tg_shm_epconf_group_t *s)
{
    memset(s, 0, sizeof(*s));
    s->state = TG_SHM_EPCONF_LIVE;
    s->id = id;
    snprintf(s->name, sizeof(s->name), "%s", g->name);
    s->strategy = (uint32_t)g->strategy;
    s->failure_threshold = g->failure_threshold;
    s->cooldown_ms = g->cooldown_ms;
    s->max_retries = g->max_retries;
    s->retry_deadline_ms = g->retry_deadline_ms;
    s->sticky = g->sticky;
    s->sticky_ttl_ms = g->sticky_ttl_ms;
    s->explore_milli = g->explore_milli;
    s->wait_for_cooldown_ms = g->wait_for_cooldown_ms;
    s->translate = g->translate;
}


static void
tg_pe_ep_stage(const tg_conf_endpoint_t *e, uint32_t group, uint64_t id,
               tg_shm_epconf_ep_t *s)
{
    uint32_t i;

    memset(s, 0, sizeof(*s));
    s->state = TG_SHM_EPCONF_LIVE;
    s->id = id;
    snprintf(s->name, sizeof(s->name), "%s", e->name);
    snprintf(s->url, sizeof(s->url), "%s", e->url);
    snprintf(s->credential, sizeof(s->credential), "%s", e->credential);
    snprintf(s->proxy, sizeof(s->proxy), "%s", e->proxy);
    snprintf(s->health_path, sizeof(s->health_path), "%s", e->health_path);
    s->style = (uint32_t)e->style;
    s->weight = e->weight;
    s->priority = (uint32_t)e->priority;
    s->group = group;
    s->enabled = e->enabled;
    s->price_milli = e->price_milli;
    s->connect_timeout_ms = e->connect_timeout_ms;
    s->first_byte_timeout_ms = e->first_byte_timeout_ms;
    s->read_timeout_ms = e->read_timeout_ms;
    s->total_timeout_ms = e->total_timeout_ms;
    s->tls_verify = e->tls_verify;
    s->health_interval_ms = e->health_interval_ms;
    s->health_timeout_ms = e->health_timeout_ms;
    s->quota_cooldown_ms = e->quota_cooldown_ms;
    s->nmodels = TG_MIN(e->nmodels, (uint32_t)TG_SHM_EPCONF_MODELS);
    for (i = 0; i < s->nmodels; i++) {
        snprintf(s->models[i], sizeof(s->models[i]), "%s", e->models[i]);
    }
    s->nmaps = TG_MIN(e->nmaps, (uint32_t)TG_SHM_EPCONF_MAPS);
    for (i = 0; i < s->nmaps; i++) {
        snprintf(s->maps[i].from, sizeof(s->maps[i].from), "%s",
                 e->maps[i].from);
        snprintf(s->maps[i].to, sizeof(s->maps[i].to), "%s", e->maps[i].to);
    }
}


/* Whether the entry at <cur> (<size> bytes) differs from the staged <s>
 * in anything but its seqlock and generation. */
static bool
tg_pe_differs(const void *cur, const void *s, size_t size)
{
    const size_t state = sizeof(uint32_t), gen_end = 16;

    return memcmp((const char *)cur + state, (const char *)s + state,
                  sizeof(uint32_t)) != 0 ||
           memcmp((const char *)cur + gen_end, (const char *)s + gen_end,
                  size - gen_end) != 0;
}


/* ------------------------------------------------------------- groups */

/* Slot of group <name>: the entry that holds (or held) it, else a free
 * one (never used first, then one gone for the grace period), else -1.
 * <used> marks slots this publish already gave. */
static int
tg_pe_group_slot(tg_shm_epconf_hdr_t *h, const char *name, const bool *used,
                 uint64_t now)
{
    tg_shm_epconf_group_t *g;
    uint32_t i;
    int gone = -1;

    if (strcmp(name, "default") == 0) {
        return 0;
    }
    for (i = 1; i < h->ngroups; i++) {
        g = tg_shm_epconf_group(h, i);
        if (g->state != TG_SHM_EPCONF_FREE && !tg_shm_epconf_torn(&g->seq) &&
            strncmp(g->name, name, sizeof(g->name)) == 0) {
            return used[i] ? -1 : (int)i;
        }
    }
    for (i = 1; i < h->ngroups; i++) {
        g = tg_shm_epconf_group(h, i);
        if (used[i]) {
            continue;
        }
        if (g->state == TG_SHM_EPCONF_FREE && !tg_shm_epconf_torn(&g->seq)) {
            return (int)i;
        }
        if (gone < 0 && g->state == TG_SHM_EPCONF_GONE &&
            now - g->freed_ms >= TG_SHM_EPCONF_GRACE_MS) {
            gone = (int)i;
        }
    }
    return gone;
}


/* Publish the groups; returns entries written, -1 when one did not fit
 * (logged). */
static int
tg_pe_groups(tg_shm_epconf_hdr_t *h, const tg_conf_group_t *groups, size_t ng,
             uint64_t gen, uint64_t now, bool *used)
{
    tg_shm_epconf_group_t s, *cur;
    bool lost = false, have_default = false;
    int written = 0, slot;
    size_t i;

    memset(tg_pe.groups, 0, h->ngroups * sizeof(*tg_pe.groups));
    for (i = 0; i <= ng; i++) {
        const tg_conf_group_t *g = i < ng ? &groups[i] : &tg_pe_default_group;

        if (i == ng && have_default) {
            break;
        }
        have_default |= strcmp(g->name, "default") == 0;
        slot = tg_pe_group_slot(h, g->name, used, now);
        if (slot < 0) {
            tg_log(TG_LOG_ERR, 0,
                   "group %s not published: shm.max_groups (%u) slots are "
                   "all in use; raise it",
                   g->name, h->ngroups);
            lost = true;
            continue;
        }
        used[slot] = true;
        tg_pe.groups[slot] = *g;
        cur = tg_shm_epconf_group(h, (uint32_t)slot);
        tg_pe_group_stage(g, 0, &s);
        if (tg_shm_epconf_torn(&cur->seq) ||
            tg_pe_differs(cur, &s, sizeof(s))) {
            tg_shm_epconf_group_write(cur, &s, gen);
            written++;
        }
    }
    for (i = 0; i < h->ngroups; i++) {
        cur = tg_shm_epconf_group(h, (uint32_t)i);
        if (used[i] || (cur->state != TG_SHM_EPCONF_LIVE &&
                        !tg_shm_epconf_torn(&cur->seq))) {
            continue;
        }
        s = *cur;
        s.state = TG_SHM_EPCONF_GONE;
        s.freed_ms = now;
        tg_shm_epconf_group_write(cur, &s, gen);
        written++;
    }
    return lost ? -1 : written;
}


/* ---------------------------------------------------------- endpoints */

static int
tg_pe_ep_slot(tg_shm_epconf_hdr_t *h, const char *name, const bool *used,
              uint64_t now)
{
    tg_shm_epconf_ep_t *e;
    uint32_t i;
    int gone = -1;

    for (i = 0; i < h->neps; i++) {
        e = tg_shm_epconf_ep(h, i);
        if (e->state != TG_SHM_EPCONF_FREE && !tg_shm_epconf_torn(&e->seq) &&
            strncmp(e->name, name, sizeof(e->name)) == 0) {
            return used[i] ? -1 : (int)i;
        }
    }
    for (i = 0; i < h->neps; i++) {
        e = tg_shm_epconf_ep(h, i);
        if (used[i]) {
            continue;
        }
        if (e->state == TG_SHM_EPCONF_FREE && !tg_shm_epconf_torn(&e->seq)) {
            return (int)i;
        }
        if (gone < 0 && e->state == TG_SHM_EPCONF_GONE &&
            now - e->freed_ms >= TG_SHM_EPCONF_GRACE_MS) {
            gone = (int)i;
        }
    }
    return gone;
}


/* Publish endpoint <e> (database id <id>) in group slot <group>. */
static int
tg_pe_ep_one(tg_shm_t *shm, tg_shm_epconf_hdr_t *h, const tg_conf_endpoint_t *e,
             uint32_t group, uint64_t id, uint64_t gen, uint64_t now,
             bool *used)
{
    tg_shm_epconf_ep_t *s, *cur;
    tg_shm_ep_t *health;
    int slot, written = 0;

    slot = tg_pe_ep_slot(h, e->name, used, now);
    if (slot < 0) {
        tg_log(TG_LOG_ERR, 0,
               "endpoint %s not published: shm.max_endpoints (%u) slots are "
               "all in use",
               e->name, h->neps);
        return -1;
    }
    used[slot] = true;
    s = malloc(sizeof(*s));
    if (s == NULL) {
        tg_log(TG_LOG_ERR, 0, "malloc(endpoint entry) failed");
        return -1;
    }
    cur = tg_shm_epconf_ep(h, (uint32_t)slot);
    tg_pe_ep_stage(e, group, id, s);
    health = tg_shm_ep_get(tg_shm_table(shm, TG_SHM_T_EPS), (uint32_t)slot);
    if (tg_shm_epconf_torn(&cur->seq) || tg_pe_differs(cur, s, sizeof(*s))) {
        /* Counters follow the name: a slot that changes hands starts
         * with a closed breaker and no history. */
        tg_shm_ep_set(health, (uint32_t)slot, e->name,
                      strncmp(health->name, e->name, sizeof(health->name)) !=
                          0);
        tg_shm_epconf_ep_write(cur, s, gen);
        written = 1;
    }
    explicit_bzero(s, sizeof(*s));
    free(s);
    tg_pe.eps[slot] = *e;
    tg_pe.eps[slot].group = group;
    return written;
}


/* Mark every live endpoint slot this publish did not give GONE, wiping
 * its credential. */
static int
tg_pe_ep_sweep(tg_shm_epconf_hdr_t *h, const bool *used, uint64_t gen,
               uint64_t now)
{
    tg_shm_epconf_ep_t *s, *cur;
    uint32_t i;
    int written = 0;

    s = malloc(sizeof(*s));
    if (s == NULL) {
        return 0;
    }
    for (i = 0; i < h->neps; i++) {
        cur = tg_shm_epconf_ep(h, i);
        if (!used[i]) {
            /* The view keeps a gone endpoint's name (usage records of
             * requests that ended on it still name it) and nothing else:
             * no URL, so nothing probes or lists it. */
            memset(&tg_pe.eps[i], 0, sizeof(tg_pe.eps[i]));
            if (cur->state != TG_SHM_EPCONF_FREE &&
                !tg_shm_epconf_torn(&cur->seq)) {
                memcpy(tg_pe.eps[i].name, cur->name, sizeof(cur->name));
                tg_pe.eps[i].name[sizeof(tg_pe.eps[i].name) - 1] = '\0';
            }
        }
        if (used[i] || (cur->state != TG_SHM_EPCONF_LIVE &&
                        !tg_shm_epconf_torn(&cur->seq))) {
            continue;
        }
        *s = *cur;
        s->state = TG_SHM_EPCONF_GONE;
        s->enabled = 0;
        s->freed_ms = now;
        explicit_bzero(s->credential, sizeof(s->credential));
        tg_shm_epconf_ep_write(cur, s, gen);
        written++;
    }
    explicit_bzero(s, sizeof(*s));
    free(s);
    return written;
}


/* See publish_ep.h. */
int
tg_publish_endpoints(tg_shm_t *shm, const tg_conf_group_t *groups, size_t ng,
                     const tg_conf_endpoint_t *eps, size_t ne,
                     const uint64_t *ids)
{
    tg_shm_epconf_hdr_t *h = tg_shm_epconf(shm);
    uint64_t gen = tg_shm_epconf_next(h), now = tg_time_wall_ms();
    bool *used, lost = false;
    int written = 0, rc;
    size_t i;

    if (!tg_pe.ready) {
        return -1;
    }
    used = calloc((size_t)TG_MAX(h->neps, h->ngroups), sizeof(*used));
    if (used == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(publish slots) failed");
        return -1;
    }
    rc = tg_pe_groups(h, groups, ng, gen, now, used);
    lost = rc < 0;
    written += TG_MAX(rc, 0);
    memset(used, 0, (size_t)TG_MAX(h->neps, h->ngroups) * sizeof(*used));
    for (i = 0; i < ne; i++) {
        uint16_t g = tg_publish_group_index(eps[i].group_name);

        if (g == 0 && strcmp(eps[i].group_name, "default") != 0) {
            tg_log(TG_LOG_ERR, 0,
                   "endpoint %s not published: its group %s is not",
                   eps[i].name, eps[i].group_name);
            lost = true;
            continue;
        }
        rc = tg_pe_ep_one(shm, h, &eps[i], g, ids != NULL ? ids[i] : 0, gen,
                          now, used);
        lost |= rc < 0;
        written += TG_MAX(rc, 0);
    }
    written += tg_pe_ep_sweep(h, used, gen, now);
    free(used);
    if (written > 0) {
        tg_shm_epconf_bump(h, gen);
        tg_log(TG_LOG_INFO, 0,
               "published endpoints: %zu endpoints, %zu groups, %d entries "
               "changed (generation %llu)",
               ne, ng, written, (unsigned long long)gen);
    }
    return lost ? -1 : written;
}


/* See publish_ep.h. */
uint16_t
tg_publish_group_index(const char *name)
{
    uint32_t i;

    if (!tg_pe.ready) {
        return 0;
    }
    for (i = 0; i < tg_pe.conf.ngroups && i <= UINT16_MAX; i++) {
        if (tg_pe.groups[i].name[0] != '\0' &&
            strcmp(tg_pe.groups[i].name, name) == 0) {
            return (uint16_t)i;
        }
    }
    return 0;
}
