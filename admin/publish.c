/*
 * admin/publish.c
 *      Rows (from the configuration file or PostgreSQL) -> shared tables.
 *
 * NOTES
 *      Admin only, the single writer of the tables.  Keys are stored by
 *      SHA-256 digest with a short display prefix; the plain text never
 *      enters shared memory.
 *
 *      Model patterns.  A key's allow-list is a bitmap over the indexes of
 *      the shared pattern table (64 patterns), so a pattern must keep its
 *      index while any key in the table refers to it.  This file keeps a
 *      private copy of the table (loaded once from shared memory, so a
 *      restarted admin continues where the last one stopped) and changes it
 *      only in ways that are safe at every instant:
 *      - a new pattern is appended after the last one in use;
 *      - a full publish (every key at once) blanks the patterns no key in
 *        it uses (a blank "" matches no model, so a stale key that still
 *        points there loses that model rather than gaining another), then
 *        rewrites every key and deletes the keys it does not hold; only
 *        after that are blank slots reused, for the patterns that did not
 *        fit by appending, and the keys that need them are written again.
 *        In the first pass such a key is written with the patterns that
 *        have an index (a subset: it fails closed), or disabled if none.
 *      A key whose patterns cannot all get an index (more than 64 distinct
 *      patterns in use) is published disabled, never with a partial
 *      allow-list (an empty bitmap would mean every model), and an error
 *      is logged.
 *
 *      XXX: the model table and a key are written one after the other, so
 *      a worker may judge a request against the new table and the key's
 *      previous bitmap for the microseconds in between; blanking first
 *      makes that window fail closed.
 */
#include "admin/publish.h"
#include "admin/publish_ep.h"
#include "core/core.h"
#include "core/log.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t d[SHA256_DIGEST_LENGTH];
} tg_publish_digest_t;

/* Admin's copy of the shared pattern table; "" is a blank slot. */
static char tg_publish_pat[TG_SHM_MODELS_MAX][TG_SHM_MODELS_PATTERN];
static uint32_t tg_publish_npat;
static tg_shm_models_t *tg_publish_models; /* table the copy mirrors */
static uint64_t tg_publish_gen;            /* its generation we wrote */


static int
tg_publish_digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SHA256_DIGEST_LENGTH);
}


/* Load the copy of the pattern table of <shm> (once per table). */
static void
tg_publish_pat_load(tg_shm_t *shm)
{
    tg_shm_models_t *m = tg_shm_models(shm);
    uint32_t i, n;

    if (tg_publish_models == m &&
        atomic_load(&m->generation) == tg_publish_gen) {
        return;
    }
    /* Admin is the only writer, so a plain read is consistent; a table a
     * dead admin left odd is rewritten by the next set anyway. */
    n = TG_MIN(m->count, (uint32_t)TG_SHM_MODELS_MAX);
    memset(tg_publish_pat, 0, sizeof(tg_publish_pat));
    for (i = 0; i < n; i++) {
        memcpy(tg_publish_pat[i], m->pattern[i],
               TG_MIN((size_t)m->len[i], (size_t)TG_SHM_MODELS_PATTERN - 1));
    }
    tg_publish_npat = n;
    tg_publish_models = m;
    tg_publish_gen = atomic_load(&m->generation);
}


static int
tg_publish_pat_write(tg_shm_t *shm)
{
    const char *p[TG_SHM_MODELS_MAX];
    uint32_t i;

    for (i = 0; i < tg_publish_npat; i++) {
        p[i] = tg_publish_pat[i];
    }
    if (tg_shm_models_set(tg_shm_models(shm), p, tg_publish_npat) !=
        TG_SHM_OK) {
        tg_log(TG_LOG_ERR, 0, "publishing %u model patterns failed",
               tg_publish_npat);
        return TG_ERROR;
    }
    tg_publish_gen = atomic_load(&tg_shm_models(shm)->generation);
    return TG_OK;
}


/* Index of <p> in the copy, or -1. */
static int
tg_publish_pat_find(const char *p)
{
    uint32_t i;

    for (i = 0; i < tg_publish_npat; i++) {
        if (tg_publish_pat[i][0] != '\0' && strcmp(tg_publish_pat[i], p) == 0) {
            return (int)i;
        }
    }
    return -1;
}


/* Give <p> an index: appended, or in a blank slot when <reuse>; -1 when
 * the table is full.  The caller writes the table. */
static int
tg_publish_pat_add(const char *p, bool reuse)
{
    size_t len = strlen(p);
    uint32_t i;

    if (len == 0 || len >= TG_SHM_MODELS_PATTERN) {
        return -1;
    }
    if (tg_publish_npat < TG_SHM_MODELS_MAX) {
        memcpy(tg_publish_pat[tg_publish_npat], p, len + 1);
        return (int)tg_publish_npat++;
    }
    for (i = 0; reuse && i < tg_publish_npat; i++) {
        if (tg_publish_pat[i][0] == '\0') {
            memcpy(tg_publish_pat[i], p, len + 1);
            return (int)i;
        }
    }
    return -1;
}


/*
 * Give every pattern of <k> an index (adding with <reuse> as
 * tg_publish_pat_add); *<changed> when the table changed.  False when one
 * did not fit.
 */
static bool
tg_publish_pat_need(const tg_publish_key_t *k, bool reuse, bool *changed)
{
    bool ok = true;
    uint32_t m;

    for (m = 0; m < k->nmodels; m++) {
        if (tg_publish_pat_find(k->models[m]) >= 0) {
            continue;
        }
        if (tg_publish_pat_add(k->models[m], reuse) >= 0) {
            *changed = true;
        } else {
            ok = false;
        }
    }
    return ok;
}


/*
 * The shared entry for <k>.  A pattern without an index disables the key,
 * unless <partial>: then the patterns that have one make its allow-list
 * (a subset, so it fails closed), and only a key left with none of them
 * is disabled.
 */
static void
tg_publish_entry(const tg_publish_key_t *k, tg_shm_key_t *e, bool partial)
{
    bool missing = false;
    uint32_t m;
    int bit;

    memset(e, 0, sizeof(*e));
    memcpy(e->digest, k->digest, sizeof(e->digest));
    e->status = k->disabled ? TG_SHM_KEY_DISABLED : TG_SHM_KEY_ACTIVE;
    e->user = k->user;
    e->group = k->group;
    e->key_id = k->key_id;
    e->rpm = k->rpm;
    e->burst = k->burst;
    e->tpm = k->tpm;
    e->concurrency = k->concurrency;
    e->expires_at = k->expires_at;
    for (m = 0; m < k->nmodels; m++) {
        bit = tg_publish_pat_find(k->models[m]);
        if (bit < 0) {
            missing = true;
            continue;
        }
        e->models |= 1ull << bit;
    }
    /* An empty bitmap would allow every model. */
    if (missing && (!partial || e->models == 0)) {
        e->status = TG_SHM_KEY_DISABLED;
        e->models = 0;
    }
    memcpy(e->prefix, k->prefix, strnlen(k->prefix, sizeof(e->prefix) - 1));
}


/* Compaction moves a key to slot <to>: the slot's counters start fresh.
 * XXX: the moved key's minute window and in-flight count restart; its
 * concurrency may be exceeded by the requests in flight during the move. */
static void
tg_publish_moved(void *arg, uint32_t from, uint32_t to)
{
    tg_shm_t *shm = arg;
    tg_shm_quotas_t *qt = tg_shm_quotas(shm);
    tg_shm_quota_t *qf = tg_shm_quota_get(qt, tg_shm_quota_key(qt, from));
    tg_shm_quota_t *qto = tg_shm_quota_get(qt, tg_shm_quota_key(qt, to));
    int i;

    tg_shm_rl_reset(&tg_shm_rl(shm)[to]);
    /* The key's quota goes with it, usage included; reservations in
     * flight stay on the old entry and are settled there (saturating),
     * so the moved key is briefly under-reserved, never stuck. */
    if (qf != NULL && qto != NULL && (qf->flags & TG_SHM_QUOTA_F_USED)) {
        tg_shm_quota_set_limits(qt, tg_shm_quota_key(qt, to), qf->id, qf->flags,
                                qf->limit);
        for (i = 0; i < TG_SHM_Q_NPERIODS; i++) {
            tg_shm_quota_set_base(qt, tg_shm_quota_key(qt, to), i,
                                  qf->base_start[i],
                                  qf->base[TG_SHM_Q_I(i, TG_SHM_Q_TOKENS)], 0,
                                  qf->base[TG_SHM_Q_I(i, TG_SHM_Q_COST)]);
            atomic_store(
                &qto->used[TG_SHM_Q_I(i, TG_SHM_Q_TOKENS)],
                atomic_load(&qf->used[TG_SHM_Q_I(i, TG_SHM_Q_TOKENS)]));
            atomic_store(&qto->used[TG_SHM_Q_I(i, TG_SHM_Q_COST)],
                         atomic_load(&qf->used[TG_SHM_Q_I(i, TG_SHM_Q_COST)]));
            atomic_store(&qto->start[i], atomic_load(&qf->start[i]));
        }
        tg_shm_quota_clear(qt, tg_shm_quota_key(qt, from));
    }
}


/* Publish quota limits <q> of entry <idx> for <id>, or clear the entry
 * when <q> has none. */
static void
tg_publish_quota(tg_shm_t *shm, uint32_t idx, uint32_t id,
                 const tg_publish_quota_t *q)
{
    uint64_t limit[TG_SHM_Q_N];

    limit[TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_TOKENS)] = q->tokens_day;
    limit[TG_SHM_Q_I(TG_SHM_Q_MONTH, TG_SHM_Q_TOKENS)] = q->tokens_month;
    limit[TG_SHM_Q_I(TG_SHM_Q_DAY, TG_SHM_Q_COST)] = q->cost_day_pusd;
    limit[TG_SHM_Q_I(TG_SHM_Q_MONTH, TG_SHM_Q_COST)] = q->cost_month_pusd;
    if ((limit[0] | limit[1] | limit[2] | limit[3]) == 0) {
        tg_shm_quota_clear(tg_shm_quotas(shm), idx);
        return;
    }
    tg_shm_quota_set_limits(
        tg_shm_quotas(shm), idx, id,
        (q->cache_reads_day ? TG_SHM_QUOTA_F_CACHE_DAY : 0) |
            (q->cache_reads_month ? TG_SHM_QUOTA_F_CACHE_MONTH : 0),
        limit);
}


/* Where a new key goes; compacts the table once when it is full. */
static int
tg_publish_place(tg_shm_t *shm, const uint8_t digest[32], uint32_t *slot)
{
    int rc = tg_shm_keys_place(tg_shm_keys(shm), digest, slot);

    if (rc == TG_SHM_FULL) {
        tg_log(TG_LOG_NOTICE, 0,
               "key table full of deleted slots; "
               "compacting it");
        tg_shm_keys_compact(tg_shm_keys(shm), tg_publish_moved, shm);
        rc = tg_shm_keys_place(tg_shm_keys(shm), digest, slot);
    }
    return rc;
}


/* Upsert <k> into its slot; *<added> when it is new.  <partial>: a first
 * pass, see tg_publish_entry (and nothing is logged about patterns). */
static int
tg_publish_upsert(tg_shm_t *shm, const tg_publish_key_t *k, bool *added,
                  bool partial)
{
    tg_shm_key_t e;
    uint32_t slot;
    int prc;

    tg_publish_entry(k, &e, partial);
    if (!partial && e.status == TG_SHM_KEY_DISABLED && !k->disabled) {
        tg_log(TG_LOG_ERR, 0,
               "key %u published disabled: its model patterns do not fit "
               "the %d distinct patterns shared memory holds",
               k->key_id, TG_SHM_MODELS_MAX);
    }
    prc = tg_publish_place(shm, e.digest, &slot);
    if (prc == TG_SHM_FULL) {
        tg_log(TG_LOG_ERR, 0,
               "key table full; key %u not published; raise shm.max_keys",
               e.key_id);
        return TG_ERROR;
    }
    if (prc == TG_SHM_MISS) {
        /* A new key takes this slot: its rate-limit state starts fresh,
         * whatever the slot's previous key left there. */
        tg_shm_rl_reset(&tg_shm_rl(shm)[slot]);
        *added = true;
    }
    /* The quota goes first: a request that finds the key must find its
     * limits too. */
    tg_publish_quota(shm, tg_shm_quota_key(tg_shm_quotas(shm), slot), e.key_id,
                     &k->quota);
    if (tg_shm_keys_upsert(tg_shm_keys(shm), &e, NULL) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, 0, "publishing key %u failed", e.key_id);
        return TG_ERROR;
    }
    return TG_OK;
}


/* See publish.h. */
int
tg_publish_key(tg_shm_t *shm, const tg_publish_key_t *k)
{
    bool changed = false, added = false;

    tg_publish_pat_load(shm);
    /* Blank slots are unreferenced (see NOTES), so they may be reused. */
    tg_publish_pat_need(k, true, &changed);
    if (changed && tg_publish_pat_write(shm) != TG_OK) {
        return TG_ERROR;
    }
    return tg_publish_upsert(shm, k, &added, false);
}


/* See publish.h. */
int
tg_publish_key_delete(tg_shm_t *shm, const uint8_t digest[32])
{
    tg_shm_keys_delete(tg_shm_keys(shm), digest);
    return TG_OK;
}


/*
 * Blank every pattern no key of <keys> uses; append the ones missing.
 * Marks in <again> the keys whose patterns did not fit by appending.
 */
static bool
tg_publish_pat_plan(const tg_publish_key_t *keys, size_t n, bool prune,
                    bool *again, bool *changed)
{
    bool used[TG_SHM_MODELS_MAX] = {false}, any = false;
    uint32_t m, i;
    size_t k;
    int bit;

    for (k = 0; k < n; k++) {
        for (m = 0; m < keys[k].nmodels; m++) {
            bit = tg_publish_pat_find(keys[k].models[m]);
            if (bit >= 0) {
                used[bit] = true;
            }
        }
    }
    for (i = 0; prune && i < tg_publish_npat; i++) {
        if (!used[i] && tg_publish_pat[i][0] != '\0') {
            tg_publish_pat[i][0] = '\0';
            *changed = true;
        }
    }
    for (k = 0; k < n; k++) {
        again[k] = !tg_publish_pat_need(&keys[k], !prune, changed);
        any = any || again[k];
    }
    return any;
}


/* Delete every key of the table whose digest is not among <keys>. */
static uint32_t
tg_publish_prune(tg_shm_t *shm, const tg_publish_key_t *keys, size_t n)
{
    tg_shm_keys_t *t = tg_shm_keys(shm);
    tg_publish_digest_t *want;
    uint32_t cursor = 0, deleted = 0;
    tg_shm_key_t e;
    size_t i;
    int prc;

    want = calloc(n ? n : 1, sizeof(*want));
    if (want == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(key digests) failed");
        return 0;
    }
    for (i = 0; i < n; i++) {
        memcpy(want[i].d, keys[i].digest, sizeof(want[i].d));
    }
    qsort(want, n, sizeof(*want), tg_publish_digest_cmp);
    /* Look for keys to delete only when there are more than published:
     * the scan reads the whole table, which with a million slots would
     * fault in a hundred megabytes for nothing on every start. */
    while (atomic_load(&t->used) > n) {
        prc = tg_shm_keys_next(t, &cursor, &e);
        if (prc == TG_SHM_MISS) {
            break;
        }
        if (prc != TG_SHM_OK) {
            continue;
        }
        if (bsearch(e.digest, want, n, sizeof(*want), tg_publish_digest_cmp) ==
            NULL) {
            tg_shm_keys_delete(t, e.digest);
            deleted++;
        }
    }
    free(want);
    return deleted;
}


/* See publish.h. */
int
tg_publish_keys(tg_shm_t *shm, const tg_publish_key_t *keys, size_t n,
                bool prune)
{
    bool changed = false, added, any, *again;
    uint32_t nadded = 0, deleted = 0;
    int rc = TG_OK;
    size_t i;

    again = calloc(n ? n : 1, sizeof(*again));
    if (again == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(publish) failed");
        return TG_ERROR;
    }
    tg_publish_pat_load(shm);
    any = tg_publish_pat_plan(keys, n, prune, again, &changed);
    if (changed && tg_publish_pat_write(shm) != TG_OK) {
        rc = TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        added = false;
        if (tg_publish_upsert(shm, &keys[i], &added, again[i]) != TG_OK) {
            rc = TG_ERROR;
        }
        nadded += added;
    }
    if (prune) {
        deleted = tg_publish_prune(shm, keys, n);
    }
    if (any) {
        /* Every key is rewritten and every other one deleted, so no key
         * refers to a blank slot any more: now the patterns that did not
         * fit can take them. */
        changed = false;
        for (i = 0; i < n; i++) {
            if (again[i]) {
                tg_publish_pat_need(&keys[i], true, &changed);
            }
        }
        if (changed && tg_publish_pat_write(shm) != TG_OK) {
            rc = TG_ERROR;
        }
        for (i = 0; i < n; i++) {
            added = false;
            if (again[i] &&
                tg_publish_upsert(shm, &keys[i], &added, false) != TG_OK) {
                rc = TG_ERROR;
            }
        }
    }
    free(again);
    /* A periodic reconcile that changes nothing stays out of the log. */
    tg_log(nadded + deleted > 0 ? TG_LOG_INFO : TG_LOG_DEBUG, 0,
           "published %zu keys (%u new, %u removed)", n, nadded, deleted);
    return rc;
}


/* See publish.h. */
int
tg_publish_user(tg_shm_t *shm, const tg_publish_user_t *u)
{
    tg_publish_quota_t q;
    tg_shm_user_t e;

    memset(&e, 0, sizeof(e));
    e.status = u->disabled ? TG_SHM_USER_DISABLED : TG_SHM_USER_ACTIVE;
    e.user_id = u->user_id;
    e.period = u->period;
    e.quota_tokens = u->quota_tokens;
    if (tg_shm_users_set(tg_shm_users(shm), u->idx, &e) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, 0, "publishing user %u in slot %u failed",
               u->user_id, u->idx);
        return TG_ERROR;
    }
    q = u->quota;
    if ((q.tokens_day | q.tokens_month | q.cost_day_pusd | q.cost_month_pusd) ==
            0 &&
        u->quota_tokens > 0) {
        /* The configuration file's quota_tokens per quota_period is a
         * token quota of that period (cache reads included, as before). */
        if (u->period == TG_SHM_USER_PERIOD_DAY) {
            q.tokens_day = u->quota_tokens;
            q.cache_reads_day = true;
        } else if (u->period == TG_SHM_USER_PERIOD_MONTH) {
            q.tokens_month = u->quota_tokens;
            q.cache_reads_month = true;
        }
    }
    tg_publish_quota(shm, tg_shm_quota_user(tg_shm_quotas(shm), u->idx),
                     u->user_id, &q);
    return TG_OK;
}


/* See publish.h. */
int
tg_publish_user_delete(tg_shm_t *shm, uint32_t idx)
{
    tg_shm_users_del(tg_shm_users(shm), idx);
    return TG_OK;
}


/* See publish.h. */
int
tg_publish_users(tg_shm_t *shm, const tg_publish_user_t *users, size_t n)
{
    uint32_t cap = tg_shm_capacity(shm, TG_SHM_T_USERS), i;
    uint8_t *keep = calloc(cap / 8 + 1, 1);
    int rc = TG_OK;
    size_t k;

    if (keep == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(user bitmap) failed");
        return TG_ERROR;
    }
    for (k = 0; k < n; k++) {
        if (users[k].idx >= cap || tg_publish_user(shm, &users[k]) != TG_OK) {
            rc = TG_ERROR;
            continue;
        }
        keep[users[k].idx / 8] |= (uint8_t)(1u << (users[k].idx % 8));
    }
    for (i = 0; i < cap; i++) {
        if (!(keep[i / 8] & (1u << (i % 8))) &&
            tg_shm_users_get(tg_shm_users(shm), i)->state !=
                TG_SHM_USER_UNUSED) {
            tg_shm_users_del(tg_shm_users(shm), i);
        }
    }
    free(keep);
    return rc;
}


/* The rows of configured key <k>. */
static void
tg_publish_conf_key(const tg_conf_key_t *k, tg_publish_key_t *row)
{
    memset(row, 0, sizeof(*row));
    SHA256((const unsigned char *)k->key, strlen(k->key), row->digest);
    row->key_id = k->key_id;
    row->user = k->user;
    row->disabled = k->disabled;
    row->group = (uint16_t)k->group;
    row->rpm = k->rpm;
    row->burst = k->burst;
    row->tpm = k->tpm;
    row->concurrency = k->concurrency;
    row->expires_at = (uint64_t)k->expires;
    memcpy(row->prefix, k->key, TG_MIN(strlen(k->key), (size_t)8));
    row->nmodels = TG_MIN(k->nmodels, 16u);
    memcpy(row->models, k->models, sizeof(row->models[0]) * row->nmodels);
}


/* See publish.h. */
int
tg_publish_all(const tg_conf_t *conf, tg_shm_t *shm)
{
    static const uint32_t periods[] = {TG_SHM_USER_PERIOD_NONE,
                                       TG_SHM_USER_PERIOD_DAY,
                                       TG_SHM_USER_PERIOD_MONTH};
    tg_publish_user_t *users;
    tg_publish_key_t *keys;
    int rc = TG_OK;
    size_t i;

    users = calloc(conf->nusers ? conf->nusers : 1, sizeof(*users));
    keys = calloc(conf->nkeys ? conf->nkeys : 1, sizeof(*keys));
    if (users == NULL || keys == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(publish rows) failed");
        free(users);
        free(keys);
        return TG_ERROR;
    }
    for (i = 0; i < conf->nusers; i++) {
        users[i].idx = (uint32_t)i;
        users[i].user_id = conf->users[i].user_id;
        users[i].disabled = conf->users[i].disabled;
        users[i].period = periods[conf->users[i].quota_period];
        users[i].quota_tokens = (uint64_t)conf->users[i].quota_tokens;
    }
    /* Groups first: a key's group is its slot in shared memory. */
    if (tg_publish_endpoints(shm, conf->groups, conf->ngroups, conf->endpoints,
                             conf->nendpoints, NULL) < 0) {
        rc = TG_ERROR;
    }
    for (i = 0; i < conf->nkeys; i++) {
        tg_publish_conf_key(&conf->keys[i], &keys[i]);
        keys[i].group = tg_publish_group_index(
            conf->groups[conf->keys[i].group < conf->ngroups
                             ? conf->keys[i].group
                             : 0]
                .name);
    }
    if (tg_publish_users(shm, users, conf->nusers) != TG_OK ||
        tg_publish_keys(shm, keys, conf->nkeys, true) != TG_OK) {
        rc = TG_ERROR;
    }
    explicit_bzero(keys, conf->nkeys * sizeof(*keys));
    free(keys);
    free(users);
    tg_log(TG_LOG_INFO, 0,
           "published the configuration: %zu users, %zu keys, %zu endpoints",
           conf->nusers, conf->nkeys, conf->nendpoints);
    return rc;
}


/* See publish.h. */
int
tg_publish_prices(tg_shm_t *shm, const tg_publish_price_t *rows, size_t n)
{
    tg_shm_price_t *t;
    size_t i, len;
    int rc = TG_ERROR;

    if (n > TG_SHM_PRICES_MAX) {
        tg_log(TG_LOG_ERR, 0,
               "%zu model prices do not fit the %d shared memory holds; "
               "prices not published",
               n, TG_SHM_PRICES_MAX);
        return TG_ERROR;
    }
    t = calloc(n ? n : 1, sizeof(*t));
    if (t == NULL) {
        tg_log(TG_LOG_ERR, 0, "calloc(%zu prices) failed", n);
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        len = strnlen(rows[i].pattern, sizeof(rows[i].pattern));
        if (len == 0 || len >= sizeof(t[i].pattern)) {
            tg_log(TG_LOG_ERR, 0,
                   "model price %zu has an empty or overlong pattern; "
                   "prices not published",
                   i);
            goto done;
        }
        memcpy(t[i].pattern, rows[i].pattern, len);
        t[i].pusd[TG_PRICE_INPUT] = rows[i].in;
        t[i].pusd[TG_PRICE_OUTPUT] = rows[i].out;
        t[i].pusd[TG_PRICE_CACHE_READ] = rows[i].cache_read;
        t[i].pusd[TG_PRICE_CACHE_5M] = rows[i].cache_5m;
        t[i].pusd[TG_PRICE_CACHE_1H] = rows[i].cache_1h;
    }
    if (tg_shm_prices_set(tg_shm_prices(shm), t, n) != TG_SHM_OK) {
        tg_log(TG_LOG_ERR, 0, "publishing %zu model prices failed", n);
        goto done;
    }
    tg_log(TG_LOG_INFO, 0, "published %zu model prices", n);
    rc = TG_OK;

done:
    free(t);
    return rc;
}


/* See publish.h. */
uint32_t
tg_publish_quota_user(tg_shm_t *shm, uint32_t idx)
{
    return tg_shm_quota_user(tg_shm_quotas(shm), idx);
}


/* See publish.h. */
uint32_t
tg_publish_quota_key(tg_shm_t *shm, const uint8_t digest[32])
{
    tg_shm_key_t k;
    uint32_t slot;

    if (tg_shm_keys_lookup(tg_shm_keys(shm), digest, &k, &slot) != TG_SHM_OK) {
        return TG_SHM_QUOTA_NONE;
    }
    return tg_shm_quota_key(tg_shm_quotas(shm), slot);
}
