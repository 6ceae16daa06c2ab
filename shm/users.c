/*
 * shm/users.c
 *      User quotas and usage counters in shared memory.
 *
 * NOTES
 *      Admin runs set, del and reset (the only writer of the config part);
 *      workers run read, charge and over_quota on every request.  The
 *      protocol is in shm/users.h.  As in shm/keys.c, the config part moves
 *      as whole words (bytes 4..7, 8..15 and 16..23 of a slot) with relaxed
 *      __atomic builtins, and copies go through memcpy.
 */
#include "shm/users.h"
#include "shm/seqlock.h"

#include <stdbool.h>
#include <string.h>

#define TG_SHM_USERS_DAY 86400u


/* Load the config part of slot <u> (bytes 4..23) into <img>. */
static void
tg_shm_users_copy_out(const tg_shm_user_t *u, tg_shm_user_t *img)
{
    const char *src = (const char *)u;
    uint32_t w32 =
        __atomic_load_n((const uint32_t *)(src + 4), __ATOMIC_RELAXED);
    uint64_t w[2];

    w[0] = __atomic_load_n((const uint64_t *)(src + 8), __ATOMIC_RELAXED);
    w[1] = __atomic_load_n((const uint64_t *)(src + 16), __ATOMIC_RELAXED);
    memcpy((char *)img + 4, &w32, 4);
    memcpy((char *)img + 8, w, sizeof(w));
}


/* Store the config part of <img> into slot <u>; <seq> is odd. */
static void
tg_shm_users_copy_in(tg_shm_user_t *u, const tg_shm_user_t *img)
{
    char *dst = (char *)u;
    uint32_t w32;
    uint64_t w[2];

    memcpy(&w32, (const char *)img + 4, 4);
    memcpy(w, (const char *)img + 8, sizeof(w));
    __atomic_store_n((uint32_t *)(dst + 4), w32, __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(dst + 8), w[0], __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(dst + 16), w[1], __ATOMIC_RELAXED);
}


/*
 * Write the config part <img> into <u> under its seqlock; when <zero> also
 * zero the counters inside the same write.  An odd <seq> left by a dead
 * admin is closed by this write.
 */
static void
tg_shm_users_write(tg_shm_user_t *u, const tg_shm_user_t *img, bool zero)
{
    uint32_t s = tg_shm_seq_write_begin(&u->seq);

    if (zero) {
        atomic_store_explicit(&u->period_start, 0, memory_order_relaxed);
        atomic_store_explicit(&u->used_tokens, 0, memory_order_relaxed);
        atomic_store_explicit(&u->requests, 0, memory_order_relaxed);
    }
    tg_shm_users_copy_in(u, img);
    tg_shm_seq_write_end(&u->seq, s);
}


/* Header plus <capacity> slots, in bytes; 0 on overflow. */
size_t
tg_shm_users_size(uint32_t capacity)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)capacity, sizeof(tg_shm_user_t), &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_users_t), &n)) {
        return 0;
    }
    return n;
}


/* Set up the header at <mem>; zero the whole table first when <zero>. */
static tg_shm_users_t *
tg_shm_users_setup(void *mem, uint32_t capacity, bool zero)
{
    tg_shm_users_t *t = mem;
    size_t size = tg_shm_users_size(capacity);

    if (mem == NULL || ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0 ||
        capacity == 0 || size == 0) {
        return NULL;
    }
    if (zero) {
        memset(mem, 0, size);
    }
    t->capacity = capacity;
    atomic_init(&t->used, 0);
    atomic_init(&t->generation, 1);
    return t;
}


/*
 * Zero and set up a table of <capacity> users at <mem> (64-byte aligned).
 * Returns it, or NULL when <mem> is NULL or misaligned or <capacity> is 0.
 */
tg_shm_users_t *
tg_shm_users_init(void *mem, uint32_t capacity)
{
    return tg_shm_users_setup(mem, capacity, true);
}


/* See shm/users.h: as tg_shm_users_init, for memory known to be zero. */
tg_shm_users_t *
tg_shm_users_format(void *mem, uint32_t capacity)
{
    return tg_shm_users_setup(mem, capacity, false);
}


/* Slot <idx> of <t>, or NULL when out of range. */
tg_shm_user_t *
tg_shm_users_get(tg_shm_users_t *t, uint32_t idx)
{
    if (idx >= t->capacity) {
        return NULL;
    }
    return (tg_shm_user_t *)((char *)t + sizeof(*t) +
                             (size_t)idx * sizeof(tg_shm_user_t));
}


/*
 * Publish the config part of <cfg> in slot <idx>; counters restart when
 * the slot was unused or held another user.  Admin only.  TG_SHM_OK or
 * TG_SHM_INVAL.
 */
int
tg_shm_users_set(tg_shm_users_t *t, uint32_t idx, const tg_shm_user_t *cfg)
{
    tg_shm_user_t *u = tg_shm_users_get(t, idx);
    tg_shm_user_t old, img;
    bool fresh;

    if (u == NULL || cfg == NULL || cfg->period > TG_SHM_USER_PERIOD_MONTH) {
        return TG_SHM_INVAL;
    }
    tg_shm_users_copy_out(u, &old);
    memset(&img, 0, sizeof(img));
    img.state = TG_SHM_USER_USED;
    img.status = cfg->status;
    img.user_id = cfg->user_id;
    img.period = cfg->period;
    img.quota_tokens = cfg->quota_tokens;
    fresh = old.state != TG_SHM_USER_USED || old.user_id != cfg->user_id;
    tg_shm_users_write(u, &img, fresh);
    if (old.state != TG_SHM_USER_USED) {
        atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    return TG_SHM_OK;
}


/* Mark slot <idx> unused.  Admin only.  TG_SHM_OK, _MISS or _INVAL. */
int
tg_shm_users_del(tg_shm_users_t *t, uint32_t idx)
{
    tg_shm_user_t *u = tg_shm_users_get(t, idx);
    tg_shm_user_t old, img;

    if (u == NULL) {
        return TG_SHM_INVAL;
    }
    /*
     * Write even when the slot looks unused: that also closes an odd
     * <seq> left by a dead admin.
     */
    tg_shm_users_copy_out(u, &old);
    memset(&img, 0, sizeof(img));
    tg_shm_users_write(u, &img, true);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    if (old.state != TG_SHM_USER_USED) {
        return TG_SHM_MISS;
    }
    atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
    return TG_SHM_OK;
}


/*
 * Set the counters of slot <idx> to <period_start>, <used_tokens> and
 * <requests>.  Admin only.  TG_SHM_OK or TG_SHM_INVAL.
 */
int
tg_shm_users_reset(tg_shm_users_t *t, uint32_t idx, uint64_t period_start,
                   uint64_t used_tokens, uint64_t requests)
{
    tg_shm_user_t *u = tg_shm_users_get(t, idx);

    if (u == NULL) {
        return TG_SHM_INVAL;
    }
    /*
     * The counters go first and the period start last, with release: a
     * worker that sees the new start also sees the restored totals, and
     * adds to them instead of rolling them over.
     */
    atomic_store_explicit(&u->used_tokens, used_tokens, memory_order_relaxed);
    atomic_store_explicit(&u->requests, requests, memory_order_relaxed);
    atomic_store_explicit(&u->period_start, period_start, memory_order_release);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    return TG_SHM_OK;
}


/*
 * Copy slot <idx> into <*out>, the config part consistent.  Any process.
 * TG_SHM_OK, TG_SHM_MISS or TG_SHM_BUSY.
 */
int
tg_shm_users_read(const tg_shm_users_t *t, uint32_t idx, tg_shm_user_t *out)
{
    const tg_shm_user_t *u;
    tg_shm_user_t img;
    uint32_t s1;
    int tries;

    if (idx >= t->capacity) {
        return TG_SHM_MISS;
    }
    u = tg_shm_users_get((tg_shm_users_t *)t, idx);
    for (tries = 0; tries < TG_SHM_USERS_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&u->seq, &s1)) {
            tg_shm_seq_relax();
            continue;
        }
        tg_shm_users_copy_out(u, &img);
        if (!tg_shm_seq_read_end(&u->seq, s1)) {
            tg_shm_seq_relax();
            continue;
        }
        if (img.state != TG_SHM_USER_USED) {
            return TG_SHM_MISS;
        }
        memset(out, 0, sizeof(*out));
        atomic_init(&out->seq, s1);
        memcpy((char *)out + 4, (const char *)&img + 4,
               offsetof(tg_shm_user_t, period_start) - 4);
        atomic_init(
            &out->period_start,
            atomic_load_explicit(&u->period_start, memory_order_relaxed));
        atomic_init(
            &out->used_tokens,
            atomic_load_explicit(&u->used_tokens, memory_order_relaxed));
        atomic_init(&out->requests,
                    atomic_load_explicit(&u->requests, memory_order_relaxed));
        return TG_SHM_OK;
    }
    return TG_SHM_BUSY;
}


/* Start of the UTC day or month containing <now_s>; 0 without a period. */
uint64_t
tg_shm_users_period_start(uint32_t period, uint64_t now_s)
{
    uint64_t days = now_s / TG_SHM_USERS_DAY;
    uint64_t z, era, doe, yoe, doy, mp, mday;

    switch (period) {
    case TG_SHM_USER_PERIOD_DAY:
        return days * TG_SHM_USERS_DAY;
    case TG_SHM_USER_PERIOD_MONTH:
        /*
         * The day of the month, from H. Hinnant's civil_from_days (days
         * since 1970-01-01 shifted to an era starting on 0000-03-01);
         * <days> is never negative, so the unsigned form suffices.
         */
        z = days + 719468;
        era = z / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        mday = doy - (153 * mp + 2) / 5 + 1;
        return (days - (mday - 1)) * TG_SHM_USERS_DAY;
    default:
        return 0;
    }
}


/*
 * Charge <tokens> and one request to user <idx> at <now_s>, rolling the
 * period over first when it ended.  Workers; never blocks.
 */
void
tg_shm_users_charge(tg_shm_users_t *t, uint32_t idx, uint64_t tokens,
                    uint64_t now_s)
{
    tg_shm_user_t *u = tg_shm_users_get(t, idx);
    tg_shm_user_t img;
    uint64_t start, seen;

    if (u == NULL) {
        return;
    }
    /*
     * State and period are single words, each read atomically; no
     * seqlock is needed to act on them one at a time.
     */
    tg_shm_users_copy_out(u, &img);
    if (img.state != TG_SHM_USER_USED) {
        return;
    }
    start = tg_shm_users_period_start(img.period, now_s);
    seen = atomic_load_explicit(&u->period_start, memory_order_acquire);
    while (seen < start) {
        /*
         * Subtract what the old period used, as read before the CAS,
         * rather than storing zero: a charge that lands between the CAS
         * and the subtraction belongs to the new period and must stay.
         * The old total can only grow until the CAS (a charge for the new
         * period needs to see the new start first; acq_rel on the CAS and
         * acquire on the loads of the start order it after our reads), so
         * the subtraction never takes away a new-period charge; an
         * old-period charge that races the CAS lands in the new period.
         */
        uint64_t used =
            atomic_load_explicit(&u->used_tokens, memory_order_relaxed);
        uint64_t reqs =
            atomic_load_explicit(&u->requests, memory_order_relaxed);

        if (atomic_compare_exchange_weak_explicit(&u->period_start, &seen,
                                                  start, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            atomic_fetch_sub_explicit(&u->used_tokens, used,
                                      memory_order_relaxed);
            atomic_fetch_sub_explicit(&u->requests, reqs, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&u->used_tokens, tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&u->requests, 1, memory_order_relaxed);
}


/*
 * True when user <idx> (config <cfg>) used its whole quota in the period
 * containing <now_s>.  Any process; never blocks.
 */
bool
tg_shm_users_over_quota(const tg_shm_users_t *t, uint32_t idx,
                        const tg_shm_user_t *cfg, uint64_t now_s)
{
    const tg_shm_user_t *u;
    uint64_t start;

    if (cfg->quota_tokens == 0 || idx >= t->capacity) {
        return false;
    }
    u = tg_shm_users_get((tg_shm_users_t *)t, idx);

    /* A period that ended counts as nothing used in the current one. */
    start = tg_shm_users_period_start(cfg->period, now_s);
    if (atomic_load_explicit(&u->period_start, memory_order_relaxed) < start) {
        return false;
    }
    return atomic_load_explicit(&u->used_tokens, memory_order_relaxed) >=
           cfg->quota_tokens;
}
