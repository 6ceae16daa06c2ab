/*
 * shm/users.h
 *      Users: token quotas per period and the usage counters that enforce
 *      them.
 *
 * NOTES
 *      Written by: admin (the config part: state, status, user_id, period,
 *      quota_tokens; and counter resets) and workers (the counters, on
 *      every finished request).  Read by: workers (quota checks) and admin
 *      (metrics).  Keys refer to a user by its index (tg_shm_key_t.user).
 *
 *      Layout: a tg_shm_users_t header (one cache line) followed by
 *      <capacity> tg_shm_user_t slots of one cache line each: workers bump a
 *      user's counters on every request, and two users sharing a line
 *      would make unrelated workers bounce it between cores.
 *
 *      Consistency: the config part is under a seqlock written by admin
 *      alone (the protocol of shm/keys.h: odd <seq>, release fence,
 *      relaxed word stores, release store of the even <seq>; readers
 *      validate with an acquire fence and retry TG_SHM_USERS_RETRIES
 *      times, then fail closed with TG_SHM_BUSY).  The counters are plain
 *      atomics with relaxed order, outside the seqlock: they are counts,
 *      not snapshots.  A period rolls over when a worker charging the user
 *      sees <period_start> older than the start of the current UTC day or
 *      month: it reads the counters, moves <period_start> with a CAS, and
 *      the winner subtracts what it read.  So no charge of the new period
 *      is ever lost; a charge of the old period that races the rollover
 *      (same second, other workers) is counted in the new one, erring on
 *      the side of enforcement, while PostgreSQL (fed by the usage ring)
 *      keeps the exact accounts.
 *
 *      Writer death: an admin that dies inside the config write leaves
 *      <seq> odd; workers get TG_SHM_BUSY for that user (fail closed) until
 *      the new admin republishes it with tg_shm_users_set, which closes
 *      the odd write.  A worker that dies mid-charge loses at most that
 *      charge.  The counters survive an admin restart; after a restart of
 *      the whole server admin restores them from PostgreSQL with
 *      tg_shm_users_reset.
 */
#ifndef TG_SHM_USERS_H
#define TG_SHM_USERS_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_USERS_RETRIES 64 /* seqlock retries before BUSY */

enum {
    TG_SHM_USER_UNUSED = 0, /* slot free */
    TG_SHM_USER_USED = 1    /* slot holds a user */
};

enum {
    TG_SHM_USER_ACTIVE = 0,  /* requests allowed */
    TG_SHM_USER_DISABLED = 1 /* every key of the user is refused */
};

enum {
    TG_SHM_USER_PERIOD_NONE = 0,  /* the quota never resets */
    TG_SHM_USER_PERIOD_DAY = 1,   /* resets at 00:00 UTC */
    TG_SHM_USER_PERIOD_MONTH = 2, /* resets on the 1st, 00:00 UTC */
};

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* odd while written */
    uint8_t state;                 /* TG_SHM_USER_UNUSED / _USED */
    uint8_t status;                /* TG_SHM_USER_ACTIVE / _DISABLED */
    uint16_t reserved0;            /* zero */
    uint32_t user_id;              /* stable id from the database */
    uint32_t period;               /* TG_SHM_USER_PERIOD_* */
    uint64_t quota_tokens;         /* tokens per period, 0 = unlimited */
    _Atomic uint64_t period_start; /* unix seconds; workers roll it over */
    _Atomic uint64_t used_tokens;  /* tokens charged this period */
    _Atomic uint64_t requests;     /* requests charged this period */
    uint8_t reserved[16];          /* pads the slot to one cache line */
} tg_shm_user_t;

_Static_assert(sizeof(tg_shm_user_t) == TG_SHM_CACHELINE,
               "tg_shm_user_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_user_t, user_id) == 8, "user layout");
_Static_assert(offsetof(tg_shm_user_t, quota_tokens) == 16, "user layout");
_Static_assert(offsetof(tg_shm_user_t, period_start) == 24, "user layout");
_Static_assert(offsetof(tg_shm_user_t, used_tokens) == 32, "user layout");
_Static_assert(offsetof(tg_shm_user_t, requests) == 40, "user layout");

/* The table header, followed in memory by <capacity> slots. */
typedef struct {
    alignas(TG_SHM_CACHELINE) uint32_t capacity; /* slots, fixed at init */
    _Atomic uint32_t used;                       /* slots in state USED */
    _Atomic uint64_t generation; /* bumped by every set, del and reset */
    uint8_t reserved[48];        /* pads the header to one cache line */
} tg_shm_users_t;

_Static_assert(sizeof(tg_shm_users_t) == TG_SHM_CACHELINE,
               "tg_shm_users_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_users_t, generation) == 8, "users header");

/* Bytes for a table of <capacity> users, header included; 0 on overflow. */
size_t tg_shm_users_size(uint32_t capacity);

/*
 * Zero tg_shm_users_size(<capacity>) bytes at <mem> (64-byte aligned) and
 * set up an empty table.  Returns it, or NULL on a bad argument.
 */
tg_shm_users_t *tg_shm_users_init(void *mem, uint32_t capacity);

/*
 * As tg_shm_users_init, for <mem> already zero-filled (a new memfd or anonymous
 * mapping): writes only the header, so a large table's pages are not
 * touched until keys land in them.  Master, at region creation.
 */
tg_shm_users_t *tg_shm_users_format(void *mem, uint32_t capacity);

/*
 * Slot <idx>, or NULL when out of range.  Direct field reads are for
 * admin and metrics; workers use tg_shm_users_read for the config part.
 */
tg_shm_user_t *tg_shm_users_get(tg_shm_users_t *t, uint32_t idx);

/*
 * Publish the config part of <cfg> (status, user_id, period,
 * quota_tokens) in slot <idx>, marking it used.  The counters are kept,
 * unless the slot was unused or held another user_id: then they start at
 * zero.  Admin only.  TG_SHM_OK, or TG_SHM_INVAL for a bad <idx>,
 * <cfg> or period.
 */
int tg_shm_users_set(tg_shm_users_t *t, uint32_t idx, const tg_shm_user_t *cfg);

/*
 * Mark slot <idx> unused (delete its keys first).  Admin only.  TG_SHM_OK,
 * TG_SHM_MISS when it was unused, TG_SHM_INVAL for a bad <idx>.
 */
int tg_shm_users_del(tg_shm_users_t *t, uint32_t idx);

/*
 * Set the counters of slot <idx>: the period starting at <period_start>
 * with <used_tokens> already used and <requests> made (restore from the
 * database, or an operator's reset).  Admin only; a worker's concurrent
 * charge may be lost.  TG_SHM_OK or TG_SHM_INVAL.
 */
int tg_shm_users_reset(tg_shm_users_t *t, uint32_t idx, uint64_t period_start,
                       uint64_t used_tokens, uint64_t requests);

/*
 * Copy slot <idx> into <*out>: the config part consistent, the counters
 * as of a moment during the call.  Any process; never blocks.  TG_SHM_OK,
 * TG_SHM_MISS (unused or out of range) or TG_SHM_BUSY (fail closed).
 */
int tg_shm_users_read(const tg_shm_users_t *t, uint32_t idx,
                      tg_shm_user_t *out);

/*
 * Add <tokens> and one request to user <idx> at wall time <now_s> (unix
 * seconds), first rolling the period over if it ended.  Workers, when a
 * request finishes; never blocks.  Does nothing for an unused or
 * out-of-range <idx>.
 */
void tg_shm_users_charge(tg_shm_users_t *t, uint32_t idx, uint64_t tokens,
                         uint64_t now_s);

/*
 * True when user <idx>, whose config <cfg> the caller read with
 * tg_shm_users_read, has used its whole quota in the period containing
 * <now_s>.  Any process; never blocks.
 */
bool tg_shm_users_over_quota(const tg_shm_users_t *t, uint32_t idx,
                             const tg_shm_user_t *cfg, uint64_t now_s);

/*
 * Start (unix seconds) of the <period> containing <now_s> in UTC; 0 for
 * TG_SHM_USER_PERIOD_NONE.
 */
uint64_t tg_shm_users_period_start(uint32_t period, uint64_t now_s);

#endif /* TG_SHM_USERS_H */
