/*
 * shm/sticky.c
 *      Sticky sessions: conversation key -> home endpoint, in shared memory.
 *
 * NOTES
 *      Workers; lock-free, never blocks.  See shm/sticky.h for the layout
 *      and the consistency protocol.
 */
#include "shm/sticky.h"

#include <string.h>

#define TG_SHM_STICKY_ATTEMPTS 4 /* whole-window retries of a set */


/* The value word for <key> -> <ep> until <exp_s> (unix seconds). */
static inline uint64_t
tg_shm_sticky_pack(uint64_t key, uint32_t ep, uint32_t exp_s)
{
    return (key & 0xffff000000000000ull) | ((uint64_t)ep << 32) | exp_s;
}


/* Whether value word <v> was written for <key>. */
static inline bool
tg_shm_sticky_for(uint64_t v, uint64_t key)
{
    return (v >> 48) == (key >> 48);
}


/* Expiry of <v> in wall milliseconds. */
static inline uint64_t
tg_shm_sticky_exp_ms(uint64_t v)
{
    return (uint64_t)(uint32_t)v * 1000;
}


/* See sticky.h. */
size_t
tg_shm_sticky_size(uint32_t capacity)
{
    size_t n;

    if (capacity < TG_SHM_STICKY_PROBE || (capacity & (capacity - 1)) != 0 ||
        __builtin_mul_overflow((size_t)capacity, sizeof(tg_shm_sticky_slot_t),
                               &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_sticky_t), &n)) {
        return 0;
    }
    return n;
}


/* See sticky.h. */
tg_shm_sticky_t *
tg_shm_sticky_init(void *mem, uint32_t capacity)
{
    size_t size = tg_shm_sticky_size(capacity);
    tg_shm_sticky_t *t = mem;

    if (mem == NULL || size == 0 ||
        ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0) {
        return NULL;
    }
    memset(mem, 0, size);
    t->capacity = capacity;
    t->mask = capacity - 1;
    return t;
}


/* See sticky.h. */
int
tg_shm_sticky_lookup(const tg_shm_sticky_t *t, uint64_t key, uint64_t now_ms,
                     uint32_t *ep, uint64_t *expires_ms)
{
    tg_shm_sticky_slot_t *s;
    uint64_t k, v;
    uint32_t i;

    if (key == 0) {
        return TG_SHM_MISS;
    }
    for (i = 0; i < TG_SHM_STICKY_PROBE; i++) {
        /* The table is shared and written concurrently; the cast only
         * drops const so the atomic loads can take the slot's address. */
        s = (tg_shm_sticky_slot_t *)&t->slots[(key + i) & t->mask];
        k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == 0) {
            return TG_SHM_MISS;
        }
        if (k != key) {
            continue;
        }
        v = atomic_load_explicit(&s->val, memory_order_acquire);
        /* A value left by the slot's previous key (a writer between its
         * two CASes, or dead there) fails the check: go on, as a second
         * copy of the key may sit further on. */
        if (tg_shm_sticky_for(v, key) && tg_shm_sticky_exp_ms(v) > now_ms) {
            *ep = (uint32_t)(v >> 32) & 0xffff;
            if (expires_ms != NULL) {
                *expires_ms = tg_shm_sticky_exp_ms(v);
            }
            return TG_SHM_OK;
        }
    }
    return TG_SHM_MISS;
}


/*
 * One pass of tg_shm_sticky_set over <key>'s window: renew in place, or
 * take a free, expired or torn slot, or the one expiring soonest.
 * TG_SHM_OK, TG_SHM_BUSY (lost a race: the caller may try again).
 */
static int
tg_shm_sticky_try(tg_shm_sticky_t *t, uint64_t key, uint64_t want,
                  uint64_t now_ms)
{
    tg_shm_sticky_slot_t *s, *take = NULL, *victim = NULL;
    uint64_t k, v, take_k = 0, take_v = 0, victim_k = 0, victim_v = 0;
    uint32_t i;

    for (i = 0; i < TG_SHM_STICKY_PROBE; i++) {
        s = &t->slots[(key + i) & t->mask];
        k = atomic_load_explicit(&s->key, memory_order_acquire);
        v = atomic_load_explicit(&s->val, memory_order_acquire);
        if (k == key) {
            if (v == want) {
                return TG_SHM_OK;
            }
            return atomic_compare_exchange_strong_explicit(&s->val, &v, want,
                                                           memory_order_release,
                                                           memory_order_relaxed)
                       ? TG_SHM_OK
                       : TG_SHM_BUSY;
        }
        if (k == 0) {
            /* Nothing lies past an empty slot: the key is not stored. */
            if (take == NULL) {
                take = s;
                take_k = k;
                take_v = v;
            }
            break;
        }
        if (tg_shm_sticky_exp_ms(v) <= now_ms || !tg_shm_sticky_for(v, k)) {
            if (take == NULL) {
                take = s;
                take_k = k;
                take_v = v;
            }
        } else if (victim == NULL || (uint32_t)v < (uint32_t)victim_v) {
            victim = s;
            victim_k = k;
            victim_v = v;
        }
    }
    if (take == NULL) {
        /* Every slot of the window is live: give up the mapping that
         * would expire first. */
        take = victim;
        take_k = victim_k;
        take_v = victim_v;
    }
    if (!atomic_compare_exchange_strong_explicit(&take->key, &take_k, key,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        return TG_SHM_BUSY;
    }
    /* From here until the next CAS readers see a check mismatch: a miss. */
    if (!atomic_compare_exchange_strong_explicit(&take->val, &take_v, want,
                                                 memory_order_release,
                                                 memory_order_relaxed)) {
        /* Another writer took the slot meanwhile; whoever wrote last
         * decides what readers see, and a mismatch reads as a miss. */
        return TG_SHM_BUSY;
    }
    return TG_SHM_OK;
}


/* See sticky.h. */
int
tg_shm_sticky_set(tg_shm_sticky_t *t, uint64_t key, uint32_t ep,
                  uint64_t expires_ms, uint64_t now_ms)
{
    uint64_t exp_s = (expires_ms + 999) / 1000, want;
    int attempt, rc = TG_SHM_BUSY;

    if (key == 0 || ep > TG_SHM_STICKY_MAX_EP) {
        return TG_SHM_INVAL;
    }
    want = tg_shm_sticky_pack(
        key, ep, exp_s > UINT32_MAX ? UINT32_MAX : (uint32_t)exp_s);
    for (attempt = 0; attempt < TG_SHM_STICKY_ATTEMPTS && rc != TG_SHM_OK;
         attempt++) {
        rc = tg_shm_sticky_try(t, key, want, now_ms);
    }
    return rc;
}
