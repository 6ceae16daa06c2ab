/*
 * admin/usage.c
 *      Prices and quotas from PostgreSQL into shared memory.
 *
 * NOTES
 *      Admin only, on admin's loop, on a connection of its own (LISTEN
 *      tollgate), and only once the store reports the schema ready.  Each
 *      round (at once, then every usage.sync_interval):
 *        1. the shipped price list is seeded, once per version of the
 *           file (tg_api.prices_seed; an admin's changes stay);
 *        2. the prices in force are published to shared memory
 *           (tg_publish_prices), also on every NOTIFY 'model_prices:...'
 *           and so also when a future effective_from arrives;
 *        3. with usage.detail, this month's and next month's partitions
 *           of usage_requests are created and old ones dropped;
 *           batch ids older than usage.batch_retention are deleted from
 *           usage_batches (tg_api.usage_batches_purge), at start and then
 *           every TG_USAGE_PURGE_MS, in chunks of TG_USAGE_PURGE_CHUNK
 *           rows, one short transaction each, the next sent when the
 *           previous one answers: nothing waits and no lock is held long;
 *        4. quota sums of the current day and month: the other hosts'
 *           usage becomes each quota entry's base (tg_shm_quota_set_base)
 *           every round; this host's own usage is restored into "used"
 *           (tg_shm_quota_set_used) only on the first round of an admin
 *           started within TG_USAGE_FRESH_MS of the shared memory's
 *           creation, i.e. after the master started, when the counters
 *           are empty.  An admin that restarts under a running master
 *           keeps the workers' counters, which are newer than PostgreSQL.
 *      The cross-host bound: another host's usage reaches this host's
 *      counters within its admin's flush (about 1 s, longer while its
 *      database connection is down) plus this host's sync interval.
 */
#include "admin/usage.h"
#include "admin/pg.h"
#include "admin/publish.h"
#include "admin/store.h"
#include "core/core.h"
#include "core/log.h"

/* The shared price and quota tables (shm/prices.h, shm/quota.h) and
 * their admin side come with the workers' pricing; until a build has them,
 * rounds still seed and sum, and publish nothing. */
#if __has_include("shm/prices.h")
#define TG_USAGE_PRICES 1
#endif
#if __has_include("shm/quota.h")
#include "shm/quota.h"
#define TG_USAGE_QUOTAS 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_USAGE_FRESH_MS     60000   /* shm younger than this: restore */
#define TG_USAGE_PARTITION_MS 3600000 /* partition upkeep period */
#define TG_USAGE_PURGE_MS     600000  /* usage_batches retention period */
#define TG_USAGE_PURGE_CHUNK  5000    /* rows one purge transaction deletes */
#define TG_USAGE_PRICES_SQL                                                    \
    "SELECT pattern, input_pusd, output_pusd, cache_read_pusd,"                \
    " cache_write_5m_pusd, cache_write_1h_pusd"                                \
    " FROM tg_api.prices_current()"
#define TG_USAGE_SEED_SQL  "SELECT tg_api.prices_seed($1::jsonb)"
#define TG_USAGE_PARTS_SQL "SELECT tg_api.usage_partitions($1::integer)"
#define TG_USAGE_PURGE_SQL                                                     \
    "SELECT tg_api.usage_batches_purge($1::bigint, $2::integer)"
#define TG_USAGE_QUOTA_SQL                                                     \
    "SELECT kind, id, digest, period, self_tokens, self_cache_read,"           \
    " self_cost_pusd, other_tokens, other_cache_read, other_cost_pusd"         \
    " FROM tg_api.usage_quota_sums($1, $2::bigint, $3::bigint)"

typedef struct {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_pg_t *pg;
    tg_ev_timer_t timer;
    bool seeded;
    bool restore;       /* restore this host's usage on the next round */
    uint64_t parts_ms;  /* last partition upkeep */
    uint64_t purge_ms;  /* last usage_batches purge started */
    uint64_t purged;    /* batch ids deleted by the purge in progress */
    bool purging;       /* a purge chunk is in flight */
    uint64_t starts[2]; /* day and month starts of the round in flight */
} tg_usage_t;

static tg_usage_t *tg_usage;


static void
tg_usage_seed_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_usage_t *u = ctx;

    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "seeding model prices failed: %s (%s)",
               tg_pg_res_message(res), tg_pg_res_sqlstate(res));
        return;
    }
    u->seeded = true;
    if (atoi(tg_pg_res_value(res, 0, 0)) > 0) {
        tg_log(TG_LOG_NOTICE, 0, "seeded %s model prices from the price list",
               tg_pg_res_value(res, 0, 0));
    }
}


static void
tg_usage_prices_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_usage_t *u = ctx;
    int n;

    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "loading model prices failed: %s",
               tg_pg_res_message(res));
        return;
    }
    n = tg_pg_res_rows(res);
#ifdef TG_USAGE_PRICES
    {
        tg_publish_price_t *rows = calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
        int i, j;

        if (rows == NULL) {
            tg_log(TG_LOG_ERR, 0, "out of memory loading model prices");
            return;
        }
        for (i = 0; i < n; i++) {
            uint64_t *v[5] = {&rows[i].in, &rows[i].out, &rows[i].cache_read,
                              &rows[i].cache_5m, &rows[i].cache_1h};

            snprintf(rows[i].pattern, sizeof(rows[i].pattern), "%s",
                     tg_pg_res_value(res, i, 0));
            for (j = 0; j < 5; j++) {
                *v[j] = strtoull(tg_pg_res_value(res, i, j + 1), NULL, 10);
            }
        }
        (void)tg_publish_prices(u->shm, rows, (size_t)n);
        free(rows);
    }
#else
    (void)u;
    tg_log(TG_LOG_DEBUG, 0, "%d model prices in force", n);
#endif
}


static void
tg_usage_parts_cb(void *ctx, const tg_pg_res_t *res)
{
    (void)ctx;
    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "usage_requests partition upkeep failed: %s",
               tg_pg_res_message(res));
    } else {
        tg_log(TG_LOG_DEBUG, 0, "usage_requests partitions: %s",
               tg_pg_res_value(res, 0, 0));
    }
}


static void tg_usage_purge_cb(void *ctx, const tg_pg_res_t *res);


/* Send one chunk of the usage_batches purge. */
static void
tg_usage_purge(tg_usage_t *u)
{
    char retention[24], chunk[16];
    const char *p[2];

    snprintf(retention, sizeof(retention), "%u",
             u->conf->usage_batch_retention_ms);
    snprintf(chunk, sizeof(chunk), "%u", TG_USAGE_PURGE_CHUNK);
    p[0] = retention;
    p[1] = chunk;
    u->purging = tg_pg_query(u->pg, TG_USAGE_PURGE_SQL, 2, p, tg_usage_purge_cb,
                             u) == TG_OK;
}


static void
tg_usage_purge_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_usage_t *u = ctx;
    long n;

    u->purging = false;
    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "purging usage_batches failed: %s",
               tg_pg_res_message(res));
        u->purged = 0;
        return;
    }
    n = atol(tg_pg_res_value(res, 0, 0));
    u->purged += (uint64_t)(n > 0 ? n : 0);
    /* A full chunk: more may be due.  The next chunk is its own short
     * transaction, queued behind whatever else this connection runs. */
    if (n >= TG_USAGE_PURGE_CHUNK && tg_pg_state(u->pg) == TG_PG_READY) {
        tg_usage_purge(u);
        return;
    }
    if (u->purged > 0) {
        tg_log(TG_LOG_INFO, 0,
               "purged %llu usage batch ids older than usage.batch_retention",
               (unsigned long long)u->purged);
    }
    u->purged = 0;
}


#ifdef TG_USAGE_QUOTAS
/* Digest bytes of the 64 hex digits <hex>; false when malformed. */
static bool
tg_usage_digest(const char *hex, uint8_t d[32])
{
    unsigned v;
    int i;

    if (strlen(hex) != 64) {
        return false;
    }
    for (i = 0; i < 32; i++) {
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return false;
        }
        d[i] = (uint8_t)v;
    }
    return true;
}


/* Apply row <i> of the quota sums to its shared-memory entry. */
static void
tg_usage_quota_row(tg_usage_t *u, const tg_pg_res_t *res, int i)
{
    tg_shm_quotas_t *t = tg_shm_quotas(u->shm);
    long long id = atoll(tg_pg_res_value(res, i, 1));
    int period = strcmp(tg_pg_res_value(res, i, 3), "day") == 0
                     ? TG_SHM_Q_DAY
                     : TG_SHM_Q_MONTH;
    uint64_t start = u->starts[period == TG_SHM_Q_DAY ? 0 : 1];
    uint32_t idx = TG_SHM_QUOTA_NONE;
    uint8_t digest[32];

    if (strcmp(tg_pg_res_value(res, i, 0), "user") == 0) {
        if (id >= 1) {
            idx = tg_publish_quota_user(u->shm, (uint32_t)(id - 1));
        }
    } else if (tg_usage_digest(tg_pg_res_value(res, i, 2), digest)) {
        idx = tg_publish_quota_key(u->shm, digest);
    }
    if (idx == TG_SHM_QUOTA_NONE) {
        return;
    }
    (void)tg_shm_quota_set_base(t, idx, period, start,
                                strtoull(tg_pg_res_value(res, i, 7), NULL, 10),
                                strtoull(tg_pg_res_value(res, i, 8), NULL, 10),
                                strtoull(tg_pg_res_value(res, i, 9), NULL, 10));
    if (u->restore) {
        (void)tg_shm_quota_set_used(
            t, idx, period, start,
            strtoull(tg_pg_res_value(res, i, 4), NULL, 10),
            strtoull(tg_pg_res_value(res, i, 5), NULL, 10),
            strtoull(tg_pg_res_value(res, i, 6), NULL, 10));
    }
}
#endif


static void
tg_usage_quota_cb(void *ctx, const tg_pg_res_t *res)
{
    tg_usage_t *u = ctx;

    if (!tg_pg_res_ok(res)) {
        tg_log(TG_LOG_ERR, 0, "loading quota sums failed: %s",
               tg_pg_res_message(res));
        return;
    }
#ifdef TG_USAGE_QUOTAS
    {
        int i;

        for (i = 0; i < tg_pg_res_rows(res); i++) {
            tg_usage_quota_row(u, res, i);
        }
    }
#endif
    u->restore = false;
}


/* The day and month starts now, in usage.timezone. */
static void
tg_usage_periods(tg_usage_t *u)
{
#ifdef TG_USAGE_QUOTAS
    uint64_t ends[TG_SHM_Q_NPERIODS];

    tg_shm_quota_periods(tg_time_wall_ms() / 1000, u->starts, ends);
#else
    uint64_t now = tg_time_wall_ms() / 1000;

    /* UTC, until the quota table exists. */
    u->starts[0] = now - now % 86400;
    u->starts[1] = u->starts[0];
#endif
}


static void
tg_usage_round(tg_usage_t *u)
{
    char days[24], months[24], keep[16];
    const char *p[3];

    if (tg_store_state() != TG_STORE_READY ||
        tg_pg_state(u->pg) != TG_PG_READY) {
        return;
    }
    if (!u->seeded) {
        p[0] = tg_sql_prices_seed;
        (void)tg_pg_query(u->pg, TG_USAGE_SEED_SQL, 1, p, tg_usage_seed_cb, u);
    }
    (void)tg_pg_query(u->pg, TG_USAGE_PRICES_SQL, 0, NULL, tg_usage_prices_cb,
                      u);
    if (u->conf->usage_detail &&
        (u->parts_ms == 0 ||
         tg_time_mono_ms() - u->parts_ms >= TG_USAGE_PARTITION_MS)) {
        u->parts_ms = tg_time_mono_ms();
        snprintf(keep, sizeof(keep), "%u", u->conf->usage_detail_months);
        p[0] = keep;
        (void)tg_pg_query(u->pg, TG_USAGE_PARTS_SQL, 1, p, tg_usage_parts_cb,
                          u);
    }
    if (!u->purging && (u->purge_ms == 0 ||
                        tg_time_mono_ms() - u->purge_ms >= TG_USAGE_PURGE_MS)) {
        u->purge_ms = tg_time_mono_ms();
        tg_usage_purge(u);
    }
    tg_usage_periods(u);
    snprintf(days, sizeof(days), "%llu", (unsigned long long)u->starts[0]);
    snprintf(months, sizeof(months), "%llu", (unsigned long long)u->starts[1]);
    p[0] = u->conf->host_name;
    p[1] = days;
    p[2] = months;
    (void)tg_pg_query(u->pg, TG_USAGE_QUOTA_SQL, 3, p, tg_usage_quota_cb, u);
}


static void
tg_usage_timer_handler(tg_ev_loop_t *loop, tg_ev_timer_t *t)
{
    tg_usage_t *u = t->data;

    tg_usage_round(u);
    /* Until the store is ready, look again soon. */
    tg_ev_timer_add(loop, t,
                    tg_store_state() == TG_STORE_READY
                        ? u->conf->usage_sync_interval_ms
                        : TG_MIN(u->conf->usage_sync_interval_ms, 200u));
}


static void
tg_usage_notify_cb(void *ctx, const char *channel, const char *payload)
{
    tg_usage_t *u = ctx;

    if (strcmp(channel, "tollgate") == 0 &&
        strncmp(payload, "model_prices:", 13) == 0 &&
        tg_store_state() == TG_STORE_READY) {
        (void)tg_pg_query(u->pg, TG_USAGE_PRICES_SQL, 0, NULL,
                          tg_usage_prices_cb, u);
    }
}


static void
tg_usage_state_cb(void *ctx, tg_pg_state_t state)
{
    tg_usage_t *u = ctx;

    if (state == TG_PG_READY) {
        /* Notifications were lost while down: a full round now. */
        tg_ev_timer_add(u->loop, &u->timer, 0);
    }
}


/* See usage.h. */
int
tg_usage_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm)
{
    tg_usage_t *u;
    uint64_t created = tg_shm_hdr(shm)->created_ms;

    if (conf->database_source == TG_CONF_DB_NONE) {
        return TG_OK;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(usage) failed");
        return TG_ERROR;
    }
    u->loop = loop;
    u->conf = conf;
    u->shm = shm;
    u->restore = tg_time_wall_ms() - created < TG_USAGE_FRESH_MS;
    u->timer = (tg_ev_timer_t){.handler = tg_usage_timer_handler, .data = u};
    u->pg = tg_pg_create(loop, conf->database);
    if (u->pg == NULL || tg_pg_listen(u->pg, "tollgate") != TG_OK) {
        tg_log(TG_LOG_ERR, 0, "creating the usage sync connection failed");
        tg_pg_destroy(u->pg);
        free(u);
        return TG_ERROR;
    }
    tg_pg_on_state(u->pg, tg_usage_state_cb, u);
    tg_pg_on_notify(u->pg, tg_usage_notify_cb, u);
    tg_usage = u;
    tg_ev_timer_add(loop, &u->timer, 0);
    return tg_pg_start(u->pg);
}


/* See usage.h. */
void
tg_usage_stop(void)
{
    tg_usage_t *u = tg_usage;

    if (u == NULL) {
        return;
    }
    tg_ev_timer_del(u->loop, &u->timer);
    tg_pg_destroy(u->pg);
    free(u);
    tg_usage = NULL;
}
