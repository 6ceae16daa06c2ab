/*
 * admin/store_ep.c
 *      Load endpoints and groups from PostgreSQL and publish them into
 *      shared memory.
 *
 * NOTES
 *      Admin only, on its loop through admin/pg.c; never blocks.  Two
 *      queries (groups, then endpoints) are queued together; the answer
 *      of the second publishes both (admin/publish_ep.c), which is a full
 *      publish, so the same load serves start-up, notifications and the
 *      periodic reconcile.  Credentials are opened here with the keyring
 *      (AES-256-GCM, associated data "endpoint:<name>"); a config-file
 *      endpoint stored without one takes the file's.  An endpoint whose
 *      credential does not open is published disabled and logged.  Opened
 *      credentials live in a buffer wiped before it is freed.
 */
#include "admin/publish_ep.h"
#include "admin/store.h"
#include "core/core.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tg_store_ep_groups_sql[] =
    "SELECT name, strategy, failure_threshold, cooldown_ms, max_retries,"
    " retry_deadline_ms, sticky, sticky_ttl_ms,"
    " (exploration * 1000)::integer, translate, wait_for_cooldown_ms"
    " FROM endpoint_groups ORDER BY group_id";

static const char tg_store_ep_sql[] =
    "SELECT endpoint_id, name, group_name, url, style,"
    " encode(credential_ciphertext, 'hex'), credential_key_id, weight,"
    " priority, array_to_string(models, E'\\x1f'),"
    " array_to_string(model_map_from, E'\\x1f'),"
    " array_to_string(model_map_to, E'\\x1f'), COALESCE(proxy, ''),"
    " connect_timeout_ms, first_byte_timeout_ms, read_timeout_ms,"
    " total_timeout_ms, tls_verify, health_path, health_interval_ms,"
    " health_timeout_ms, quota_cooldown_ms,"
    " (price_factor * 1000)::integer, status"
    " FROM endpoints ORDER BY endpoint_id";

typedef struct {
    tg_shm_t *shm;
    const tg_conf_t *conf;
    const tg_crypto_keyring_t *kr;
    tg_store_ep_done_pt done;
    void *ctx;
    tg_conf_group_t *groups;
    size_t ngroups;
    bool failed;
    bool alone; /* the endpoints query could not be queued */
    char err[256];
} tg_store_ep_t;


static void
tg_store_ep_finish(tg_store_ep_t *l)
{
    l->done(l->ctx, !l->failed, l->err);
    free(l->groups);
    free(l);
}


static uint32_t
tg_store_ep_u32(const tg_pg_res_t *res, int r, int c, uint32_t dflt)
{
    return tg_pg_res_null(res, r, c)
               ? dflt
               : (uint32_t)strtoul(tg_pg_res_value(res, r, c), NULL, 10);
}


static int
tg_store_ep_word(const char *v, const char *const *words, int n, int dflt)
{
    int i;

    for (i = 0; i < n; i++) {
        if (strcmp(v, words[i]) == 0) {
            return i;
        }
    }
    return dflt;
}


static void
tg_store_ep_groups_cb(void *ctx, const tg_pg_res_t *res)
{
    static const char *const strategies[] = {
        "round-robin", "weighted", "least-connections", "latency", "cost"};
    tg_store_ep_t *l = ctx;
    int rows, r;

    if (l->alone) {
        tg_store_ep_finish(l);
        return;
    }
    if (!tg_pg_res_ok(res)) {
        l->failed = true;
        snprintf(l->err, sizeof(l->err), "%s", tg_pg_res_message(res));
        return;
    }
    rows = tg_pg_res_rows(res);
    l->groups = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*l->groups));
    if (l->groups == NULL) {
        l->failed = true;
        snprintf(l->err, sizeof(l->err), "out of memory");
        return;
    }
    for (r = 0; r < rows; r++) {
        tg_conf_group_t *g = &l->groups[l->ngroups++];

        snprintf(g->name, sizeof(g->name), "%s", tg_pg_res_value(res, r, 0));
        g->strategy = tg_store_ep_word(tg_pg_res_value(res, r, 1), strategies,
                                       5, TG_STRATEGY_WEIGHTED);
        g->failure_threshold = tg_store_ep_u32(res, r, 2, 5);
        g->cooldown_ms = tg_store_ep_u32(res, r, 3, 30000);
        g->max_retries = tg_store_ep_u32(res, r, 4, 2);
        g->retry_deadline_ms = tg_store_ep_u32(res, r, 5, 60000);
        g->sticky = strcmp(tg_pg_res_value(res, r, 6), "t") == 0;
        g->sticky_ttl_ms = tg_store_ep_u32(res, r, 7, 3600000);
        g->explore_milli = tg_store_ep_u32(res, r, 8, 50);
        g->translate = strcmp(tg_pg_res_value(res, r, 9), "f") != 0;
        g->wait_for_cooldown_ms = tg_store_ep_u32(res, r, 10, 0);
    }
}


/* Split the 0x1f-separated <list> into at most <max> strings of <size>
 * bytes at <out>; the count, or -1 when one does not fit. */
static int
tg_store_ep_split(const char *list, char *out, size_t size, size_t stride,
                  int max)
{
    const char *p = list, *q;
    size_t len;
    int n = 0;

    while (*p != '\0') {
        q = strchr(p, 0x1f);
        len = q != NULL ? (size_t)(q - p) : strlen(p);
        if (n == max || len >= size) {
            return -1;
        }
        memcpy(out + (size_t)n * stride, p, len);
        out[(size_t)n * stride + len] = '\0';
        n++;
        p += len + (q != NULL);
    }
    return n;
}


/* The credential of row <r> into e->credential; false when it does not
 * open (logged). */
static bool
tg_store_ep_cred(tg_store_ep_t *l, const tg_pg_res_t *res, int r,
                 tg_conf_endpoint_t *e)
{
    uint8_t sealed[TG_CRYPTO_SEAL_EXTRA + sizeof(e->credential)];
    const char *hex = tg_pg_res_value(res, r, 5);
    char purpose[96];
    size_t n, m, i;
    tg_err_t err;

    if (tg_pg_res_null(res, r, 5)) {
        /* A config-file endpoint stored without its credential. */
        for (i = 0; i < l->conf->nendpoints; i++) {
            if (strcmp(l->conf->endpoints[i].name, e->name) == 0) {
                memcpy(e->credential, l->conf->endpoints[i].credential,
                       sizeof(e->credential));
                return true;
            }
        }
        tg_log(TG_LOG_ERR, 0, "endpoint %s has no credential; not routed",
               e->name);
        return false;
    }
    memset(&err, 0, sizeof(err));
    snprintf(purpose, sizeof(purpose), "endpoint:%s", e->name);
    if (l->kr == NULL ||
        tg_crypto_unhex(hex, strlen(hex), sealed, sizeof(sealed), &n) !=
            TG_OK ||
        tg_crypto_open(l->kr, tg_pg_res_value(res, r, 6), purpose, sealed, n,
                       (uint8_t *)e->credential, sizeof(e->credential) - 1, &m,
                       &err) != TG_OK) {
        tg_log(TG_LOG_ERR, 0,
               "endpoint %s: the credential cannot be opened: %s; not routed",
               e->name, l->kr == NULL ? "no secret key" : err.text);
        memset(e->credential, 0, sizeof(e->credential));
        return false;
    }
    e->credential[m] = '\0';
    explicit_bzero(sealed, sizeof(sealed));
    return true;
}


/* Row <r> of the endpoints result into <e>. */
static void
tg_store_ep_row(tg_store_ep_t *l, const tg_pg_res_t *res, int r,
                tg_conf_endpoint_t *e)
{
    static const char *const styles[] = {"anthropic", "openai"};
    static const char *const prios[] = {"primary", "secondary", "fallback"};
    const tg_conf_t *conf = l->conf;
    char from[TG_CONF_EP_MAPS][128], to[TG_CONF_EP_MAPS][128];
    int nm, nf, nt, i;

    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", tg_pg_res_value(res, r, 1));
    snprintf(e->group_name, sizeof(e->group_name), "%s",
             tg_pg_res_value(res, r, 2));
    snprintf(e->url, sizeof(e->url), "%s", tg_pg_res_value(res, r, 3));
    e->style = tg_store_ep_word(tg_pg_res_value(res, r, 4), styles, 2,
                                TG_STYLE_ANTHROPIC);
    e->weight = tg_store_ep_u32(res, r, 7, 1);
    e->priority =
        tg_store_ep_word(tg_pg_res_value(res, r, 8), prios, 3, TG_PRIO_PRIMARY);
    nm = tg_store_ep_split(tg_pg_res_value(res, r, 9), e->models[0],
                           sizeof(e->models[0]), sizeof(e->models[0]),
                           TG_CONF_EP_MODELS);
    nf = tg_store_ep_split(tg_pg_res_value(res, r, 10), from[0],
                           sizeof(from[0]), sizeof(from[0]), TG_CONF_EP_MAPS);
    nt = tg_store_ep_split(tg_pg_res_value(res, r, 11), to[0], sizeof(to[0]),
                           sizeof(to[0]), TG_CONF_EP_MAPS);
    e->nmodels = nm > 0 ? (uint32_t)nm : 0;
    for (i = 0; nf == nt && i < nf; i++) {
        memcpy(e->maps[i].from, from[i], sizeof(from[i]));
        memcpy(e->maps[i].to, to[i], sizeof(to[i]));
    }
    e->nmaps = nf == nt && nf > 0 ? (uint32_t)nf : 0;
    snprintf(e->proxy, sizeof(e->proxy), "%s", tg_pg_res_value(res, r, 12));
    e->connect_timeout_ms =
        tg_store_ep_u32(res, r, 13, conf->connect_timeout_ms);
    e->first_byte_timeout_ms =
        tg_store_ep_u32(res, r, 14, conf->first_byte_timeout_ms);
    e->read_timeout_ms = tg_store_ep_u32(res, r, 15, conf->read_timeout_ms);
    e->total_timeout_ms = tg_store_ep_u32(res, r, 16, 0);
    e->tls_verify = tg_pg_res_null(res, r, 17)
                        ? conf->tls_verify
                        : strcmp(tg_pg_res_value(res, r, 17), "t") == 0;
    snprintf(e->health_path, sizeof(e->health_path), "%s",
             tg_pg_res_value(res, r, 18));
    e->health_interval_ms = tg_store_ep_u32(res, r, 19, 30000);
    e->health_timeout_ms = tg_store_ep_u32(res, r, 20, 5000);
    e->quota_cooldown_ms = tg_store_ep_u32(res, r, 21, 3600000);
    e->price_milli = tg_store_ep_u32(res, r, 22, 1000);
    e->enabled = strcmp(tg_pg_res_value(res, r, 23), "enabled") == 0;
    if (nm < 0 || nf < 0 || nt < 0 || nf != nt) {
        tg_log(TG_LOG_ERR, 0,
               "endpoint %s: models or renames do not fit; published "
               "disabled",
               e->name);
        e->enabled = false;
    }
    if (!tg_store_ep_cred(l, res, r, e)) {
        e->enabled = false;
    }
}


static void
tg_store_ep_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_store_ep_t *l = ctx;
    tg_conf_endpoint_t *eps = NULL;
    uint64_t *ids = NULL;
    int rows = 0, r;

    if (l->failed) {
        tg_store_ep_finish(l);
        return;
    }
    if (!tg_pg_res_ok(res)) {
        l->failed = true;
        snprintf(l->err, sizeof(l->err), "%s", tg_pg_res_message(res));
        tg_store_ep_finish(l);
        return;
    }
    rows = tg_pg_res_rows(res);
    eps = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*eps));
    ids = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*ids));
    if (eps == NULL || ids == NULL) {
        l->failed = true;
        snprintf(l->err, sizeof(l->err), "out of memory");
    } else {
        for (r = 0; r < rows; r++) {
            ids[r] = strtoull(tg_pg_res_value(res, r, 0), NULL, 10);
            tg_store_ep_row(l, res, r, &eps[r]);
        }
        /* What did not fit is logged; the rest is live. */
        (void)tg_publish_endpoints(l->shm, l->groups, l->ngroups, eps,
                                   (size_t)rows, ids);
    }
    if (eps != NULL) {
        explicit_bzero(eps, (size_t)(rows > 0 ? rows : 1) * sizeof(*eps));
    }
    free(eps);
    free(ids);
    tg_store_ep_finish(l);
}


/* See store.h. */
int
tg_store_ep_load(tg_pg_t *pg, const tg_conf_t *conf,
                 const tg_crypto_keyring_t *kr, tg_shm_t *shm,
                 tg_store_ep_done_pt done, void *ctx)
{
    tg_store_ep_t *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        return TG_ERROR;
    }
    l->shm = shm;
    l->conf = conf;
    l->kr = kr;
    l->done = done;
    l->ctx = ctx;
    if (tg_pg_query(pg, tg_store_ep_groups_sql, 0, NULL, tg_store_ep_groups_cb,
                    l) != TG_OK) {
        free(l);
        return TG_ERROR;
    }
    if (tg_pg_query(pg, tg_store_ep_sql, 0, NULL, tg_store_ep_cb, l) != TG_OK) {
        /* The first query owns <l> now; its answer ends the load. */
        l->alone = true;
        l->failed = true;
        snprintf(l->err, sizeof(l->err), "the database went away");
        return TG_OK;
    }
    return TG_OK;
}
