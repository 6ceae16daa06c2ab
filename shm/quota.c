/*
 * shm/quota.c
 *      Quota entries: limits, bases, counters and reservations.
 *
 * NOTES
 *      Admin runs set_limits, clear, set_base and set_used (the only
 *      writer of the seqlocked part); workers run reserve, settle and
 *      charge; master runs reclaim for a dead worker.  The protocol is in
 *      shm/quota.h.  The admin part (bytes 4..127 of an entry) moves as
 *      32-bit words with relaxed atomics between the seqlock's fences.
 */
#include "shm/quota.h"
#include "shm/seqlock.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TG_SHM_QUOTA_ADMIN_WORDS ((128 - 4) / 4)

/* The seqlocked part of an entry, as a plain copy. */
typedef struct {
    uint32_t id, flags;
    uint64_t limit[TG_SHM_Q_N];
    uint64_t base_start[TG_SHM_Q_NPERIODS];
    uint64_t base[TG_SHM_Q_N];
} tg_shm_quota_cfg_t;


/* See quota.h. */
size_t
tg_shm_quota_size(uint32_t users, uint32_t keys)
{
    size_t n;

    if (__builtin_add_overflow((size_t)users, (size_t)keys, &n) ||
        __builtin_mul_overflow(n, sizeof(tg_shm_quota_t), &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_quotas_t), &n)) {
        return 0;
    }
    return n;
}


/* See quota.h. */
tg_shm_quotas_t *
tg_shm_quota_format(void *mem, uint32_t users, uint32_t keys)
{
    tg_shm_quotas_t *t = mem;

    if (mem == NULL || ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0 ||
        tg_shm_quota_size(users, keys) == 0) {
        return NULL;
    }
    t->users = users;
    t->keys = keys;
    return t;
}


/* See quota.h. */
uint32_t
tg_shm_quota_user(const tg_shm_quotas_t *t, uint32_t user)
{
    return user < t->users ? user : TG_SHM_QUOTA_NONE;
}


/* See quota.h. */
uint32_t
tg_shm_quota_key(const tg_shm_quotas_t *t, uint32_t slot)
{
    return slot < t->keys ? t->users + slot : TG_SHM_QUOTA_NONE;
}


/* See quota.h. */
tg_shm_quota_t *
tg_shm_quota_get(tg_shm_quotas_t *t, uint32_t idx)
{
    if (idx == TG_SHM_QUOTA_NONE ||
        (uint64_t)idx >= (uint64_t)t->users + t->keys) {
        return NULL;
    }
    return (tg_shm_quota_t *)((char *)t + sizeof(*t)) + idx;
}


/* Copy the seqlocked part of <q> into <c> (no validation). */
static void
tg_shm_quota_load(const tg_shm_quota_t *q, tg_shm_quota_cfg_t *c)
{
    uint32_t w[TG_SHM_QUOTA_ADMIN_WORDS];
    const char *src = (const char *)q + 4;
    int i;

    for (i = 0; i < TG_SHM_QUOTA_ADMIN_WORDS; i++) {
        w[i] = tg_shm_seq_load32(src + 4 * i);
    }
    memcpy(&c->id, (char *)w + 0, 4);
    memcpy(&c->flags, (char *)w + 4, 4);
    memcpy(c->limit, (char *)w + 12, sizeof(c->limit));
    memcpy(c->base_start, (char *)w + 44, sizeof(c->base_start));
    memcpy(c->base, (char *)w + 60, sizeof(c->base));
}


/* Store <c> into the seqlocked part of <q>; its seq is odd. */
static void
tg_shm_quota_store(tg_shm_quota_t *q, const tg_shm_quota_cfg_t *c)
{
    uint32_t w[TG_SHM_QUOTA_ADMIN_WORDS];
    char *dst = (char *)q + 4;
    int i;

    memset(w, 0, sizeof(w));
    memcpy((char *)w + 0, &c->id, 4);
    memcpy((char *)w + 4, &c->flags, 4);
    memcpy((char *)w + 12, c->limit, sizeof(c->limit));
    memcpy((char *)w + 44, c->base_start, sizeof(c->base_start));
    memcpy((char *)w + 60, c->base, sizeof(c->base));
    for (i = 0; i < TG_SHM_QUOTA_ADMIN_WORDS; i++) {
        tg_shm_seq_store32(dst + 4 * i, w[i]);
    }
}


/* A consistent copy of <q>'s seqlocked part.  TG_SHM_OK or _BUSY. */
static int
tg_shm_quota_read(const tg_shm_quota_t *q, tg_shm_quota_cfg_t *c)
{
    uint32_t s;
    int tries;

    for (tries = 0; tries < TG_SHM_QUOTA_RETRIES; tries++) {
        if (tg_shm_seq_read_begin(&q->seq, &s)) {
            tg_shm_quota_load(q, c);
            if (tg_shm_seq_read_end(&q->seq, s)) {
                return TG_SHM_OK;
            }
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}


/* Open admin's write of entry <idx> (<q>): named in the header first, so
 * that a repair after a crash finds it. */
static uint32_t
tg_shm_quota_write_begin(tg_shm_quotas_t *t, tg_shm_quota_t *q, uint32_t idx)
{
    atomic_store_explicit(&t->writing, idx + 1, memory_order_relaxed);
    return tg_shm_seq_write_begin(&q->seq);
}


static void
tg_shm_quota_write_end(tg_shm_quotas_t *t, tg_shm_quota_t *q, uint32_t s)
{
    tg_shm_seq_write_end(&q->seq, s);
    atomic_store_explicit(&t->writing, 0, memory_order_release);
}


/* See quota.h. */
uint32_t
tg_shm_quota_repair(tg_shm_quotas_t *t)
{
    uint32_t w = atomic_load_explicit(&t->writing, memory_order_acquire);
    tg_shm_quota_t *q;
    uint32_t s, n = 0;

    if (w != 0 && (q = tg_shm_quota_get(t, w - 1)) != NULL) {
        s = atomic_load_explicit(&q->seq, memory_order_relaxed);
        if (s & 1u) {
            tg_shm_seq_write_end(&q->seq, s);
            n = 1;
        }
    }
    atomic_store_explicit(&t->writing, 0, memory_order_release);
    return n;
}


/* See quota.h. */
int
tg_shm_quota_set_limits(tg_shm_quotas_t *t, uint32_t idx, uint32_t id,
                        uint32_t flags, const uint64_t limit[TG_SHM_Q_N])
{
    tg_shm_quota_t *q = tg_shm_quota_get(t, idx);
    tg_shm_quota_cfg_t c;
    bool fresh;
    uint32_t s;
    int i;

    if (q == NULL || limit == NULL) {
        return TG_SHM_INVAL;
    }
    tg_shm_quota_load(q, &c);
    fresh = !(c.flags & TG_SHM_QUOTA_F_USED) || c.id != id;
    if (fresh) {
        memset(&c, 0, sizeof(c));
    }
    c.id = id;
    c.flags =
        (flags & (TG_SHM_QUOTA_F_CACHE_DAY | TG_SHM_QUOTA_F_CACHE_MONTH)) |
        TG_SHM_QUOTA_F_USED;
    memcpy(c.limit, limit, sizeof(c.limit));
    s = tg_shm_quota_write_begin(t, q, idx);
    if (fresh) {
        for (i = 0; i < TG_SHM_Q_NPERIODS; i++) {
            atomic_store_explicit(&q->start[i], 0, memory_order_relaxed);
        }
        for (i = 0; i < TG_SHM_Q_N; i++) {
            atomic_store_explicit(&q->used[i], 0, memory_order_relaxed);
        }
    }
    tg_shm_quota_store(q, &c);
    tg_shm_quota_write_end(t, q, s);
    return TG_SHM_OK;
}


/* See quota.h. */
int
tg_shm_quota_clear(tg_shm_quotas_t *t, uint32_t idx)
{
    tg_shm_quota_t *q = tg_shm_quota_get(t, idx);
    tg_shm_quota_cfg_t c;
    uint32_t s;

    if (q == NULL) {
        return TG_SHM_INVAL;
    }
    memset(&c, 0, sizeof(c));
    s = tg_shm_quota_write_begin(t, q, idx);
    tg_shm_quota_store(q, &c);
    tg_shm_quota_write_end(t, q, s);
    return TG_SHM_OK;
}


/* Tokens that count toward <period>'s token limit under <flags>. */
static uint64_t
tg_shm_quota_counted(uint32_t flags, int period, uint64_t tokens,
                     uint64_t cache_read)
{
    uint32_t f = period == TG_SHM_Q_DAY ? TG_SHM_QUOTA_F_CACHE_DAY
                                        : TG_SHM_QUOTA_F_CACHE_MONTH;

    if (flags & f) {
        return tokens;
    }
    return tokens > cache_read ? tokens - cache_read : 0;
}


/* See quota.h. */
int
tg_shm_quota_set_base(tg_shm_quotas_t *t, uint32_t idx, int period,
                      uint64_t period_start, uint64_t tokens,
                      uint64_t cache_read, uint64_t cost_pusd)
{
    tg_shm_quota_t *q = tg_shm_quota_get(t, idx);
    tg_shm_quota_cfg_t c;
    uint32_t s;

    if (q == NULL || period < 0 || period >= TG_SHM_Q_NPERIODS) {
        return TG_SHM_INVAL;
    }
    tg_shm_quota_load(q, &c);
    if (!(c.flags & TG_SHM_QUOTA_F_USED)) {
        return TG_SHM_INVAL;
    }
    c.base_start[period] = period_start;
    c.base[TG_SHM_Q_I(period, TG_SHM_Q_TOKENS)] =
        tg_shm_quota_counted(c.flags, period, tokens, cache_read);
    c.base[TG_SHM_Q_I(period, TG_SHM_Q_COST)] = cost_pusd;
    s = tg_shm_quota_write_begin(t, q, idx);
    tg_shm_quota_store(q, &c);
    tg_shm_quota_write_end(t, q, s);
    return TG_SHM_OK;
}


/* See quota.h. */
int
tg_shm_quota_set_used(tg_shm_quotas_t *t, uint32_t idx, int period,
                      uint64_t period_start, uint64_t tokens,
                      uint64_t cache_read, uint64_t cost_pusd)
{
    tg_shm_quota_t *q = tg_shm_quota_get(t, idx);
    tg_shm_quota_cfg_t c;

    if (q == NULL || period < 0 || period >= TG_SHM_Q_NPERIODS ||
        tg_shm_quota_read(q, &c) != TG_SHM_OK ||
        !(c.flags & TG_SHM_QUOTA_F_USED)) {
        return TG_SHM_INVAL;
    }
    /* Counters first, start last with release: a worker that sees the new
     * start adds to the restored totals instead of rolling them over. */
    atomic_store_explicit(
        &q->used[TG_SHM_Q_I(period, TG_SHM_Q_TOKENS)],
        tg_shm_quota_counted(c.flags, period, tokens, cache_read),
        memory_order_relaxed);
    atomic_store_explicit(&q->used[TG_SHM_Q_I(period, TG_SHM_Q_COST)],
                          cost_pusd, memory_order_relaxed);
    atomic_store_explicit(&q->start[period], period_start,
                          memory_order_release);
    return TG_SHM_OK;
}


/* Take <v> from <a>, never below zero. */
static void
tg_shm_quota_sub_sat(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        a, &cur, cur > v ? cur - v : 0, memory_order_relaxed,
        memory_order_relaxed)) {
    }
}


/* Give back the estimate of <res> on its entries. */
static void
tg_shm_quota_unhold(tg_shm_quotas_t *t, const tg_shm_qres_t *res)
{
    tg_shm_quota_t *q;
    uint32_t i;
    int m;

    for (i = 0; i < res->nidx && i < 2; i++) {
        q = tg_shm_quota_get(t, res->idx[i]);
        if (q == NULL) {
            continue;
        }
        for (m = 0; m < TG_SHM_Q_NMEASURES; m++) {
            if (res->est[m] != 0) {
                tg_shm_quota_sub_sat(&q->held[m], res->est[m]);
            }
        }
    }
}


/* Whether entry <q> (config <c>) stays within its limits for the periods
 * at <starts> with what is held now (ours included).  Fills <why>. */
static bool
tg_shm_quota_fits(const tg_shm_quota_t *q, const tg_shm_quota_cfg_t *c,
                  const uint64_t starts[TG_SHM_Q_NPERIODS],
                  const uint64_t est[TG_SHM_Q_NMEASURES],
                  tg_shm_quota_refusal_t *why)
{
    uint64_t in_use, base, used, held;
    int p, m, i;

    for (p = 0; p < TG_SHM_Q_NPERIODS; p++) {
        for (m = 0; m < TG_SHM_Q_NMEASURES; m++) {
            i = TG_SHM_Q_I(p, m);
            if (c->limit[i] == 0) {
                continue;
            }
            base = c->base_start[p] == starts[p] ? c->base[i] : 0;
            used = atomic_load_explicit(&q->start[p], memory_order_acquire) ==
                           starts[p]
                       ? atomic_load_explicit(&q->used[i], memory_order_relaxed)
                       : 0;
            held = atomic_load_explicit(&q->held[m], memory_order_relaxed);
            /* What others hold and used, without our own estimate. */
            in_use = base + used + (held >= est[m] ? held - est[m] : 0);
            if (in_use < base || in_use >= c->limit[i]) {
                why->period = p;
                why->measure = m;
                why->limit = c->limit[i];
                why->in_use = in_use;
                return false;
            }
        }
    }
    return true;
}


/* See quota.h. */
int
tg_shm_quota_reserve(tg_shm_quotas_t *t, const uint32_t *idx, uint32_t n,
                     const uint64_t starts[TG_SHM_Q_NPERIODS],
                     const uint64_t est[TG_SHM_Q_NMEASURES], tg_shm_qres_t *res,
                     tg_shm_quota_refusal_t *why)
{
    tg_shm_quota_cfg_t c[2];
    tg_shm_quota_t *q[2];
    uint32_t i, k = 0;
    int m, rc = TG_SHM_OK;

    memset(why, 0, sizeof(*why));
    for (i = 0; i < n && i < 2; i++) {
        tg_shm_quota_t *e = tg_shm_quota_get(t, idx[i]);

        if (e == NULL) {
            continue;
        }
        if (tg_shm_quota_read(e, &c[k]) != TG_SHM_OK) {
            why->idx = idx[i];
            return TG_SHM_BUSY;
        }
        if (!(c[k].flags & TG_SHM_QUOTA_F_USED)) {
            continue;
        }
        q[k] = e;
        res->idx[k++] = idx[i];
    }
    res->nidx = k;
    memcpy(res->est, est, sizeof(res->est));
    if (k == 0) {
        return TG_SHM_OK;
    }
    /* Recorded before the estimate is held, so master can always find
     * what a dead worker held (shm/quota.h, crash safety). */
    atomic_store_explicit(&res->state, 1, memory_order_release);
    for (i = 0; i < k; i++) {
        for (m = 0; m < TG_SHM_Q_NMEASURES; m++) {
            atomic_fetch_add_explicit(&q[i]->held[m], est[m],
                                      memory_order_acq_rel);
        }
    }
    for (i = 0; i < k && rc == TG_SHM_OK; i++) {
        if (!tg_shm_quota_fits(q[i], &c[i], starts, est, why)) {
            why->idx = res->idx[i];
            rc = TG_SHM_LIMIT;
        }
    }
    if (rc != TG_SHM_OK) {
        tg_shm_quota_unhold(t, res);
        atomic_store_explicit(&res->state, 0, memory_order_release);
        res->nidx = 0;
    }
    return rc;
}


/* Add to entry <q> (config flags <flags>) in the periods at <starts>,
 * rolling a period over first when it ended. */
static void
tg_shm_quota_add(tg_shm_quota_t *q, uint32_t flags,
                 const uint64_t starts[TG_SHM_Q_NPERIODS], uint64_t tokens,
                 uint64_t cache_read, uint64_t cost)
{
    uint64_t seen, ut, uc;
    int p;

    for (p = 0; p < TG_SHM_Q_NPERIODS; p++) {
        _Atomic uint64_t *t_ = &q->used[TG_SHM_Q_I(p, TG_SHM_Q_TOKENS)];
        _Atomic uint64_t *c_ = &q->used[TG_SHM_Q_I(p, TG_SHM_Q_COST)];

        seen = atomic_load_explicit(&q->start[p], memory_order_acquire);
        while (seen < starts[p]) {
            /* As in shm/users.c: subtract what the old period used, read
             * before the CAS, so a new-period charge is never lost. */
            ut = atomic_load_explicit(t_, memory_order_relaxed);
            uc = atomic_load_explicit(c_, memory_order_relaxed);
            if (atomic_compare_exchange_weak_explicit(
                    &q->start[p], &seen, starts[p], memory_order_acq_rel,
                    memory_order_acquire)) {
                atomic_fetch_sub_explicit(t_, ut, memory_order_relaxed);
                atomic_fetch_sub_explicit(c_, uc, memory_order_relaxed);
                break;
            }
        }
        atomic_fetch_add_explicit(
            t_, tg_shm_quota_counted(flags, p, tokens, cache_read),
            memory_order_relaxed);
        atomic_fetch_add_explicit(c_, cost, memory_order_relaxed);
    }
}


/* See quota.h. */
void
tg_shm_quota_charge(tg_shm_quotas_t *t, const uint32_t *idx, uint32_t n,
                    const uint64_t starts[TG_SHM_Q_NPERIODS], uint64_t tokens,
                    uint64_t cache_read, uint64_t cost_pusd)
{
    tg_shm_quota_cfg_t c;
    tg_shm_quota_t *q;
    uint32_t i;

    for (i = 0; i < n; i++) {
        q = tg_shm_quota_get(t, idx[i]);
        /* A busy entry is charged with the flags as last seen: the charge
         * must not be lost to a concurrent publish. */
        if (q == NULL) {
            continue;
        }
        if (tg_shm_quota_read(q, &c) != TG_SHM_OK) {
            tg_shm_quota_load(q, &c);
        }
        if (!(c.flags & TG_SHM_QUOTA_F_USED)) {
            continue;
        }
        tg_shm_quota_add(q, c.flags, starts, tokens, cache_read, cost_pusd);
    }
}


/* See quota.h. */
void
tg_shm_quota_settle(tg_shm_quotas_t *t, tg_shm_qres_t *res,
                    const uint64_t starts[TG_SHM_Q_NPERIODS], uint64_t tokens,
                    uint64_t cache_read, uint64_t cost_pusd)
{
    if (atomic_load_explicit(&res->state, memory_order_relaxed) == 0) {
        return;
    }
    /* Charge first, then give the estimate back: in between both count,
     * which errs on the side of the budget. */
    tg_shm_quota_charge(t, res->idx, res->nidx, starts, tokens, cache_read,
                        cost_pusd);
    tg_shm_quota_unhold(t, res);
    atomic_store_explicit(&res->state, 0, memory_order_release);
    res->nidx = 0;
}


/* See quota.h. */
uint32_t
tg_shm_quota_reclaim(tg_shm_quotas_t *t, tg_shm_qres_t *res, uint32_t n)
{
    uint32_t i, done = 0;

    for (i = 0; i < n; i++) {
        if (atomic_load_explicit(&res[i].state, memory_order_acquire) == 0) {
            continue;
        }
        tg_shm_quota_unhold(t, &res[i]);
        atomic_store_explicit(&res[i].state, 0, memory_order_release);
        res[i].nidx = 0;
        done++;
    }
    return done;
}


/* See quota.h. */
int
tg_shm_quota_in_use(const tg_shm_quotas_t *t, uint32_t idx,
                    const uint64_t starts[TG_SHM_Q_NPERIODS],
                    uint64_t out[TG_SHM_Q_N])
{
    const tg_shm_quota_t *q = tg_shm_quota_get((tg_shm_quotas_t *)t, idx);
    tg_shm_quota_cfg_t c;
    int p, m, i;

    if (q == NULL) {
        return TG_SHM_MISS;
    }
    if (tg_shm_quota_read(q, &c) != TG_SHM_OK) {
        return TG_SHM_BUSY;
    }
    if (!(c.flags & TG_SHM_QUOTA_F_USED)) {
        return TG_SHM_MISS;
    }
    for (p = 0; p < TG_SHM_Q_NPERIODS; p++) {
        bool cur = atomic_load_explicit(&q->start[p], memory_order_acquire) ==
                   starts[p];

        for (m = 0; m < TG_SHM_Q_NMEASURES; m++) {
            i = TG_SHM_Q_I(p, m);
            out[i] =
                (c.base_start[p] == starts[p] ? c.base[i] : 0) +
                (cur ? atomic_load_explicit(&q->used[i], memory_order_relaxed)
                     : 0) +
                atomic_load_explicit(&q->held[m], memory_order_relaxed);
        }
    }
    return TG_SHM_OK;
}


/* See quota.h. */
size_t
tg_shm_qres_size(uint32_t per_proc, uint32_t nprocs)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)per_proc, (size_t)nprocs, &n) ||
        __builtin_mul_overflow(n, sizeof(tg_shm_qres_t), &n)) {
        return 0;
    }
    return n;
}


/* The quota time zone; "" = the process's TZ. */
static char tg_shm_quota_zone[128];


/* See quota.h. */
void
tg_shm_quota_zone_set(const char *tz)
{
    size_t n = tz != NULL ? strlen(tz) : 0;

    if (n >= sizeof(tg_shm_quota_zone)) {
        n = 0;
    }
    memcpy(tg_shm_quota_zone, tz != NULL ? tz : "", n);
    tg_shm_quota_zone[n] = '\0';
}


/* Unix time of local midnight starting day <mday> of <tm>'s month
 * (mktime normalises an out-of-range day into the next month). */
static uint64_t
tg_shm_quota_midnight(const struct tm *now, int mday, int mon_add)
{
    struct tm tm = *now;
    time_t t;

    tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
    tm.tm_mday = mday;
    tm.tm_mon += mon_add;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    return t < 0 ? 0 : (uint64_t)t;
}


static void tg_shm_quota_periods_local(time_t t, uint64_t now_s,
                                       uint64_t starts[TG_SHM_Q_NPERIODS],
                                       uint64_t ends[TG_SHM_Q_NPERIODS]);


/* See quota.h. */
void
tg_shm_quota_periods(uint64_t now_s, uint64_t starts[TG_SHM_Q_NPERIODS],
                     uint64_t ends[TG_SHM_Q_NPERIODS])
{
    time_t t = (time_t)now_s;
    const char *env;
    char old[256];
    bool had = false, swap = tg_shm_quota_zone[0] != '\0';

    if (swap) {
        env = getenv("TZ");
        if (env != NULL && strlen(env) < sizeof(old)) {
            memcpy(old, env, strlen(env) + 1);
            had = true;
        }
        setenv("TZ", tg_shm_quota_zone, 1);
        tzset();
    }
    tg_shm_quota_periods_local(t, now_s, starts, ends);
    if (swap) {
        if (had) {
            setenv("TZ", old, 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
}


/* tg_shm_quota_periods in the current TZ. */
static void
tg_shm_quota_periods_local(time_t t, uint64_t now_s,
                           uint64_t starts[TG_SHM_Q_NPERIODS],
                           uint64_t ends[TG_SHM_Q_NPERIODS])
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL) {
        /* Out of the representable range: one period covers all time. */
        starts[TG_SHM_Q_DAY] = starts[TG_SHM_Q_MONTH] = 0;
        ends[TG_SHM_Q_DAY] = ends[TG_SHM_Q_MONTH] = UINT64_MAX;
        return;
    }
    starts[TG_SHM_Q_DAY] = tg_shm_quota_midnight(&tm, tm.tm_mday, 0);
    ends[TG_SHM_Q_DAY] = tg_shm_quota_midnight(&tm, tm.tm_mday + 1, 0);
    starts[TG_SHM_Q_MONTH] = tg_shm_quota_midnight(&tm, 1, 0);
    ends[TG_SHM_Q_MONTH] = tg_shm_quota_midnight(&tm, 1, 1);
    /* A zone whose midnight does not exist (a DST jump at 00:00) lets
     * mktime move it; the start must still not be after now. */
    if (starts[TG_SHM_Q_DAY] > now_s) {
        starts[TG_SHM_Q_DAY] = now_s;
    }
    if (ends[TG_SHM_Q_DAY] <= now_s) {
        ends[TG_SHM_Q_DAY] = now_s + 1;
    }
}
