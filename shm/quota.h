/*
 * shm/quota.h
 *      Quotas per user and per key: tokens and cost, per day and per
 *      month, with reservations so that concurrent requests cannot overrun
 *      a budget.
 *
 * NOTES
 *      Entries.  One tg_shm_quota_t per user (index = the user's index in
 *      shm/users.h) and one per key slot (index = users capacity + the
 *      key's slot in shm/keys.h; admin moves the entry with the key when
 *      it compacts the key table).  Each carries four limits: tokens per
 *      day, tokens per month, cost per day, cost per month (pico-USD,
 *      shm/prices.h), 0 = no limit.  Which tokens count: every class but
 *      reasoning (a part of output); cache reads only when the period's
 *      TG_SHM_QUOTA_F_CACHE_* flag is set.  Cost always includes cache
 *      reads, at their own price.
 *
 *      What "used" means for a period: base + used + held, where
 *        base  = the other hosts' usage of the period, from PostgreSQL,
 *                set by admin every usage.sync_interval
 *                (tg_shm_quota_set_base; valid only while <base_start>
 *                equals the current period's start);
 *        used  = this host's usage of the period: restored by admin from
 *                PostgreSQL at start (tg_shm_quota_set_used), then charged
 *                by workers as requests end (tg_shm_quota_settle);
 *        held  = estimates reserved by requests in flight on this host.
 *      So a quota is exact on one host and holds across hosts within the
 *      sync interval (plus PostgreSQL's flush delay).
 *
 *      Reservation.  Before proxying, a worker adds its estimate to
 *      <held> of every entry of the request (user and key) with one atomic
 *      add each, then checks every limit: the request is admitted when
 *      what the others hold and used (base + used + held, less its own
 *      estimate) is still below the limit; otherwise it takes its estimate
 *      back and refuses.  Because the add comes before the check, N
 *      parallel requests with estimate E against R left admit at most
 *      ceil(R / E): each sees the estimates of all that added before it.
 *      The last admitted one may overrun the limit by at most its own
 *      use (a budget is never refused while some of it is left, so a small
 *      quota stays usable with a large max_tokens).  A request may be
 *      refused because a concurrent one that will itself be refused had
 *      not yet taken its estimate back; that errs on the side of the
 *      budget.  When the request ends the worker settles: adds the actual
 *      tokens and cost to <used> and takes its estimate back from <held>.
 *
 *      Periods roll over at boundaries in usage.timezone; the caller
 *      passes the current day and month starts (unix seconds), so this
 *      module needs no time-zone rules.  An entry whose <start> is older
 *      than the current start has nothing used in the current period; the
 *      first settle that sees it moves <start> with a CAS and subtracts
 *      what it read before (the protocol of shm/users.c: no charge of the
 *      new period is lost; one of the old period racing the rollover
 *      counts in the new one).
 *
 *      Consistency: the admin part (id, flags, limits, base) is under a
 *      per-entry seqlock written by admin alone; readers retry
 *      TG_SHM_QUOTA_RETRIES times and then fail closed (TG_SHM_BUSY:
 *      the request is refused as over quota).  start, used and held are
 *      relaxed atomics on their own cache line, written by every worker.
 *
 *      Crash safety.  Every reservation is also written into the
 *      reserving worker's own array of tg_shm_qres_t (one per lease index,
 *      shm table TG_SHM_T_QRES), before its estimate is added to <held>,
 *      and cleared after the settle.  When master reaps a dead worker it
 *      releases every reservation still recorded there
 *      (tg_shm_quota_reclaim), before forking the replacement, so no
 *      estimate stays held forever.  The release saturates at zero: a
 *      worker that died between recording and adding (or between taking
 *      back and clearing) makes master take back an estimate that was not
 *      held, which lowers the others' held total by at most one
 *      estimate until they settle; it errs toward admitting by one
 *      request, never toward a stuck budget.  An admin that dies
 *      mid-write leaves the entry's seq odd; the next admin closes it at
 *      start (tg_shm_quota_repair) with what was stored, so workers never
 *      refuse a user or key for it, and republishes the limits and bases
 *      once it has them.
 */
#ifndef TG_SHM_QUOTA_H
#define TG_SHM_QUOTA_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_QUOTA_RETRIES 64 /* seqlock retries before BUSY */
#define TG_SHM_QUOTA_NONE    UINT32_MAX

/* Periods and measures; limit/base/used index = period * 2 + measure. */
enum { TG_SHM_Q_DAY = 0, TG_SHM_Q_MONTH = 1, TG_SHM_Q_NPERIODS = 2 };

enum {
    TG_SHM_Q_TOKENS = 0,
    TG_SHM_Q_COST = 1, /* pico-USD */
    TG_SHM_Q_NMEASURES = 2
};

#define TG_SHM_Q_N       4
#define TG_SHM_Q_I(p, m) ((p)*TG_SHM_Q_NMEASURES + (m))

/* tg_shm_quota_t.flags */
#define TG_SHM_QUOTA_F_USED        0x01u /* entry in use */
#define TG_SHM_QUOTA_F_CACHE_DAY   0x02u /* cache reads count, day tokens */
#define TG_SHM_QUOTA_F_CACHE_MONTH 0x04u /* cache reads count, month tokens */

typedef struct {
    /* line 0: admin, under seq */
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* odd while written */
    uint32_t id;                                    /* user_id / key_id */
    uint32_t flags;                                 /* TG_SHM_QUOTA_F_* */
    uint32_t reserved0;                             /* zero */
    uint64_t limit[TG_SHM_Q_N];             /* by TG_SHM_Q_I, 0 = none */
    uint64_t base_start[TG_SHM_Q_NPERIODS]; /* period <base> belongs to */
    /* line 1: admin, under seq */
    uint64_t base[TG_SHM_Q_N]; /* other hosts' usage, by TG_SHM_Q_I */
    uint8_t reserved1[32];     /* zero */
    /* line 2: workers, relaxed atomics (own line: written per request) */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t start[TG_SHM_Q_NPERIODS];
    _Atomic uint64_t used[TG_SHM_Q_N];         /* this host, by TG_SHM_Q_I */
    _Atomic uint64_t held[TG_SHM_Q_NMEASURES]; /* reserved, in flight */
} tg_shm_quota_t;

_Static_assert(sizeof(tg_shm_quota_t) == 3 * TG_SHM_CACHELINE,
               "tg_shm_quota_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_quota_t, limit) == 16, "quota layout");
_Static_assert(offsetof(tg_shm_quota_t, base) == 64, "quota layout");
_Static_assert(offsetof(tg_shm_quota_t, start) == 128, "quota layout");
_Static_assert(offsetof(tg_shm_quota_t, held) == 176, "quota layout");

/* The table header, followed by <users> + <keys> entries. */
typedef struct {
    alignas(TG_SHM_CACHELINE) uint32_t users; /* user entries, first */
    uint32_t keys;                            /* key entries, after them */
    _Atomic uint32_t writing; /* entry admin is writing + 1, 0 = none */
    uint8_t reserved[52];     /* one line */
} tg_shm_quotas_t;

_Static_assert(sizeof(tg_shm_quotas_t) == TG_SHM_CACHELINE, "quotas header");

/* One reservation held by a request, in its worker's own array (indexed
 * by the request's lease), for master to release if the worker dies. */
typedef struct {
    _Atomic uint32_t state;           /* 1 = held, 0 = free */
    uint32_t nidx;                    /* entries in <idx> */
    uint32_t idx[2];                  /* quota entries (user, key) */
    uint64_t est[TG_SHM_Q_NMEASURES]; /* tokens and cost reserved */
} tg_shm_qres_t;

_Static_assert(sizeof(tg_shm_qres_t) == 32, "qres layout");

/* What refused a reservation. */
typedef struct {
    uint32_t idx;    /* entry */
    int period;      /* TG_SHM_Q_DAY / _MONTH */
    int measure;     /* TG_SHM_Q_TOKENS / _COST */
    uint64_t limit;  /* its limit */
    uint64_t in_use; /* base + used + held, before this request */
} tg_shm_quota_refusal_t;

/*
 * After an admin crash: close the write the dead admin left open (the
 * entry named by <writing>, if its seq is odd), keeping what it had
 * stored, so that workers read that entry again instead of refusing its
 * requests until the next publish.  Admin writes one entry at a time, so
 * there is at most one; nothing else of the table is touched (reading
 * every entry would fault in all of its pages).  A half-finished write leaves a
 * mix of old and new limits or base for at most one sync interval, when the
 * next admin republishes them.  Returns how many entries were closed.  Admin at
 * start, before it publishes.
 */
uint32_t tg_shm_quota_repair(tg_shm_quotas_t *t);

/* Bytes of a table of <users> + <keys> entries; 0 on overflow. */
size_t tg_shm_quota_size(uint32_t users, uint32_t keys);

/* Set up the header at <mem> (64-byte aligned, already zero-filled). */
tg_shm_quotas_t *tg_shm_quota_format(void *mem, uint32_t users, uint32_t keys);

/* Entry of user index <user> / key slot <slot>; TG_SHM_QUOTA_NONE when
 * out of range. */
uint32_t tg_shm_quota_user(const tg_shm_quotas_t *t, uint32_t user);
uint32_t tg_shm_quota_key(const tg_shm_quotas_t *t, uint32_t slot);

/* Entry <idx>, or NULL when out of range (admin, tests). */
tg_shm_quota_t *tg_shm_quota_get(tg_shm_quotas_t *t, uint32_t idx);

/*
 * Publish the limits of entry <idx>: <id> (user_id or key_id), <flags>
 * (TG_SHM_QUOTA_F_CACHE_*), <limit>[TG_SHM_Q_N] (0 = none).  When the
 * entry was unused or held another <id>, its counters and base start at
 * zero (held reservations stay: their requests settle them).  Admin only.
 * TG_SHM_OK or TG_SHM_INVAL.
 */
int tg_shm_quota_set_limits(tg_shm_quotas_t *t, uint32_t idx, uint32_t id,
                            uint32_t flags, const uint64_t limit[TG_SHM_Q_N]);

/* Mark entry <idx> unused (no limits).  Admin only. */
int tg_shm_quota_clear(tg_shm_quotas_t *t, uint32_t idx);

/*
 * Set the base of entry <idx> for <period> (TG_SHM_Q_DAY/_MONTH) starting
 * at <period_start>: the other hosts' usage of that period from
 * PostgreSQL, <tokens> (every class but reasoning, cache reads included),
 * <cache_read> of them cache reads, and <cost_pusd>.  The entry's flags
 * decide whether cache reads count.  Admin only, every sync interval.
 * TG_SHM_OK or TG_SHM_INVAL.
 */
int tg_shm_quota_set_base(tg_shm_quotas_t *t, uint32_t idx, int period,
                          uint64_t period_start, uint64_t tokens,
                          uint64_t cache_read, uint64_t cost_pusd);

/*
 * Set this host's usage of <period> starting at <period_start> in entry
 * <idx> (same arguments as set_base): admin restores it from PostgreSQL
 * at start.  A worker's concurrent settle may be lost.  Admin only.
 */
int tg_shm_quota_set_used(tg_shm_quotas_t *t, uint32_t idx, int period,
                          uint64_t period_start, uint64_t tokens,
                          uint64_t cache_read, uint64_t cost_pusd);

/*
 * Reserve <est>[TG_SHM_Q_NMEASURES] (tokens, cost) on the <n> (1 or 2)
 * entries <idx> (TG_SHM_QUOTA_NONE entries are skipped) for the periods
 * starting at <starts>[TG_SHM_Q_NPERIODS], recording it in <res> first.
 * TG_SHM_OK: held, settle with tg_shm_quota_settle.  TG_SHM_LIMIT with
 * <why> filled, or TG_SHM_BUSY (fail closed): nothing held, <res> free.
 * Workers; never blocks.
 */
int tg_shm_quota_reserve(tg_shm_quotas_t *t, const uint32_t *idx, uint32_t n,
                         const uint64_t starts[TG_SHM_Q_NPERIODS],
                         const uint64_t est[TG_SHM_Q_NMEASURES],
                         tg_shm_qres_t *res, tg_shm_quota_refusal_t *why);

/*
 * Settle reservation <res> (free or held): take its estimate back and
 * charge <tokens> (every class but reasoning, cache reads included),
 * <cache_read> of them, and <cost_pusd> to its entries in the periods
 * starting at <starts>.  Frees <res>.  Workers; never blocks.
 */
void tg_shm_quota_settle(tg_shm_quotas_t *t, tg_shm_qres_t *res,
                         const uint64_t starts[TG_SHM_Q_NPERIODS],
                         uint64_t tokens, uint64_t cache_read,
                         uint64_t cost_pusd);

/*
 * Charge without a reservation (entries <idx>, as settle).  Workers.
 */
void tg_shm_quota_charge(tg_shm_quotas_t *t, const uint32_t *idx, uint32_t n,
                         const uint64_t starts[TG_SHM_Q_NPERIODS],
                         uint64_t tokens, uint64_t cache_read,
                         uint64_t cost_pusd);

/*
 * Master, after a worker died: release every held reservation of its
 * <n> entries at <res>.  Returns how many were released.
 */
uint32_t tg_shm_quota_reclaim(tg_shm_quotas_t *t, tg_shm_qres_t *res,
                              uint32_t n);

/*
 * In-use amounts of entry <idx> in the periods starting at <starts>:
 * <out>[TG_SHM_Q_I] = base + used + held.  TG_SHM_OK, TG_SHM_MISS for an
 * unused entry, TG_SHM_BUSY.  Any process.
 */
int tg_shm_quota_in_use(const tg_shm_quotas_t *t, uint32_t idx,
                        const uint64_t starts[TG_SHM_Q_NPERIODS],
                        uint64_t out[TG_SHM_Q_N]);

/*
 * Set the time zone of quota periods (usage.timezone: an IANA name or a
 * POSIX TZ string; NULL or "" for the process's own).  Process-local:
 * master sets it when it loads the configuration, so admin and workers
 * inherit it at fork.
 */
void tg_shm_quota_zone_set(const char *tz);

/*
 * The day and month containing <now_s> in the quota time zone
 * (tg_shm_quota_zone_set): their starts into <starts>[TG_SHM_Q_NPERIODS]
 * and their ends (the next starts) into <ends>, unix seconds.  Uses
 * localtime_r and mktime under TZ set to that zone for the call only
 * (the process's TZ, which its log timestamps use, is restored), so a day
 * is 23 or 25 hours long across a daylight-saving change.  Any
 * single-threaded process; callers cache the result until the nearest
 * end.
 */
void tg_shm_quota_periods(uint64_t now_s, uint64_t starts[TG_SHM_Q_NPERIODS],
                          uint64_t ends[TG_SHM_Q_NPERIODS]);

/* Bytes of the reservation arrays for <per_proc> x <nprocs>. */
size_t tg_shm_qres_size(uint32_t per_proc, uint32_t nprocs);

static inline tg_shm_qres_t *
tg_shm_qres_of(void *table, uint32_t per_proc, uint32_t idx)
{
    return (tg_shm_qres_t *)table + (size_t)idx * per_proc;
}

#endif /* TG_SHM_QUOTA_H */
