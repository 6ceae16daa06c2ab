/*
 * shm/keys.h
 *      Client keys (open addressing on the SHA-256 of the key) and the
 *      model-pattern table their allow-lists refer to.
 *
 * NOTES
 *      Written by: admin only, one writer, so writers never race each
 *      other and need no lock.  Read by: every worker on every request
 *      (tg_shm_keys_lookup), and by admin itself.
 *
 *      Layout: a tg_shm_keys_t header (one cache line) followed by
 *      <capacity> tg_shm_key_t slots of 96 bytes.  A key's home slot is the
 *      fastrange of the first 8 digest bytes (read in host order: the region
 *      never leaves the host); collisions probe linearly, wrapping at the
 *      end.  The rate-limit table (shm/rl.h) uses the same slot index, so a
 *      key costs 96 + 64 bytes per slot.
 *
 *      Consistency: a seqlock per slot.  The writer makes <seq> odd, issues
 *      a release fence, stores the other fields with relaxed atomic stores
 *      (32 and 64-bit words), then makes <seq> even with a release store.
 *      A reader loads <seq> with acquire, gives up on odd, loads the words
 *      with relaxed atomic loads, issues an acquire fence and reloads <seq>;
 *      the copy is good only if <seq> did not change.  This is the pattern
 *      of Boehm's "Can seqlocks get along with programming language memory
 *      models?" (2012): every shared access is atomic, so there is no data
 *      race in the C11 sense, and the fence pairs order the data against
 *      <seq>.  On x86-64 every one of these is a plain mov.  Readers retry
 *      a slot TG_SHM_KEYS_RETRIES times and then return TG_SHM_BUSY: the
 *      caller fails closed (refuses the request) rather than trusting a
 *      torn entry.
 *
 *      Probe chains: a slot goes empty -> used -> tombstone -> used ...;
 *      a tombstone turns back into empty only when no key's chain runs
 *      through it (no key after it in its run has its home at or before
 *      it), which a delete checks for the whole run.  Outside compaction
 *      keys never move, so a key that stays present is found by every
 *      lookup, whatever the writer does to other keys meanwhile (no lost
 *      key under concurrent inserts and deletes).  Lookups probe at most
 *      max_probe + 1 slots.  Upserts keep used + tombstones <= 90% of the
 *      capacity, so chains end at empty slots soon.
 *
 *      Compaction: under heavy churn near max_keys, tombstones that chains
 *      still need pile up (about 20% of the slots at 75% load) until
 *      upsert says TG_SHM_FULL.  Admin then runs tg_shm_keys_compact,
 *      which moves each key to the first tombstone on its chain and so
 *      removes every tombstone, and retries.  A move writes the key to its
 *      new slot before clearing the old one, inside a table-wide seqlock
 *      <moving>; a lookup that misses while <moving> was odd or changed
 *      walks again, because a key moving from ahead of it to a slot it
 *      already passed would otherwise be missed.  Hits need no check.
 *
 *      Slot reuse: <epoch> counts the keys that ever took the slot, so
 *      per-slot state kept elsewhere (rate-limit counters, concurrency
 *      leases) can tell a new occupant from the previous one.  Admin calls
 *      tg_shm_keys_place before inserting a new key and resets that slot's
 *      rate-limit counters first, so no worker sees the new key with the
 *      old key's counters; compaction calls back for each move likewise.
 *
 *      Writer death: if admin dies between the two <seq> stores, that slot
 *      stays odd and every lookup that probes it returns TG_SHM_BUSY (fail
 *      closed) until a new admin runs tg_shm_keys_repair, which turns odd
 *      slots (and the stale copy of a key whose move was cut short) into
 *      tombstones, closes <moving>, purges and recomputes the header
 *      counts.  A <moving> left odd makes every miss walk its chain
 *      TG_SHM_KEYS_RETRIES times and return TG_SHM_BUSY until then; hits
 *      are unaffected.  Admin then republishes every key from PostgreSQL:
 *      upsert all current keys, and delete (walking tg_shm_keys_next) the
 *      ones no longer there.  The same holds for the model table: the next
 *      tg_shm_models_set makes its <seq> even again.
 *
 *      Model patterns: key allow-lists are bitmaps over the indexes of the
 *      model table (shm/models.h).  Admin must keep the index of a pattern
 * stable while any key refers to it (append new patterns; reuse a freed index
 * only after republishing the keys), or keys would allow other models for the
 * time between the two writes.
 */
#ifndef TG_SHM_KEYS_H
#define TG_SHM_KEYS_H

#include "shm/layout.h"
#include "shm/models.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_KEYS_RETRIES 64 /* seqlock retries per slot before BUSY */
#define TG_SHM_KEYS_LOAD    90 /* max (used + tombstones) % of capacity */

enum {
    TG_SHM_KEY_EMPTY = 0, /* never used, or reclaimed: ends a probe chain */
    TG_SHM_KEY_USED = 1,  /* holds a key */
    TG_SHM_KEY_TOMB = 2   /* deleted: chains continue through it */
};

enum {
    TG_SHM_KEY_ACTIVE = 0,  /* the key may be used */
    TG_SHM_KEY_DISABLED = 1 /* refused with 401/403 */
};

#define TG_SHM_USER_NONE UINT32_MAX /* tg_shm_key_t.user: no user */

typedef struct {
    _Atomic uint32_t seq; /* seqlock: odd while admin writes the slot */
    uint8_t state;        /* TG_SHM_KEY_EMPTY / _USED / _TOMB */
    uint8_t status;       /* TG_SHM_KEY_ACTIVE / _DISABLED */
    uint16_t group;       /* endpoint group, 0 = default */
    uint8_t digest[32];   /* SHA-256 of the client key */
    uint32_t user;        /* index in the users table, TG_SHM_USER_NONE */
    uint32_t key_id;      /* stable id from the config or the database */
    uint32_t rpm;         /* requests per minute, 0 = unlimited */
    uint32_t burst;       /* extra requests allowed at once, 0 = none */
    uint32_t tpm;         /* tokens per minute, 0 = unlimited */
    uint32_t concurrency; /* requests in flight, 0 = unlimited */
    uint64_t expires_at;  /* unix seconds, 0 = never */
    uint64_t models;      /* bitmap over tg_shm_models_t, 0 = all models */
    char prefix[12];      /* display prefix for logs, NUL padded */
    uint32_t epoch;       /* keys that took this slot; written by admin */
} tg_shm_key_t;

_Static_assert(sizeof(tg_shm_key_t) == 96,
               "tg_shm_key_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_key_t, state) == 4, "key layout");
_Static_assert(offsetof(tg_shm_key_t, digest) == 8, "key layout");
_Static_assert(offsetof(tg_shm_key_t, user) == 40, "key layout");
_Static_assert(offsetof(tg_shm_key_t, expires_at) == 64, "key layout");
_Static_assert(offsetof(tg_shm_key_t, models) == 72, "key layout");
_Static_assert(offsetof(tg_shm_key_t, prefix) == 80, "key layout");
_Static_assert(offsetof(tg_shm_key_t, epoch) == 92, "key layout");

/*
 * The table header, followed in memory by <capacity> slots.  Only admin
 * writes it; workers read <capacity> (fixed at init) and <max_probe>.
 */
typedef struct {
    alignas(TG_SHM_CACHELINE) uint32_t capacity; /* slots, fixed at init */
    _Atomic uint32_t used;                       /* slots in state USED */
    _Atomic uint32_t tombstones;                 /* slots in state TOMB */
    _Atomic uint32_t max_probe;  /* bound on home-to-slot distances */
    _Atomic uint64_t generation; /* bumped by every upsert and delete */
    _Atomic uint32_t moving;     /* seqlock: odd while compact moves a key */
    uint8_t reserved[36];        /* pads the header to one cache line */
} tg_shm_keys_t;

_Static_assert(sizeof(tg_shm_keys_t) == TG_SHM_CACHELINE,
               "tg_shm_keys_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_keys_t, max_probe) == 12, "keys header");
_Static_assert(offsetof(tg_shm_keys_t, generation) == 16, "keys header");
_Static_assert(offsetof(tg_shm_keys_t, moving) == 24, "keys header");

/*
 * Slot <i> of <t>; the caller checks <i> < capacity.  Reading a slot's
 * fields directly is only safe for admin (the writer) or with no writer
 * running; workers use tg_shm_keys_lookup or tg_shm_keys_read.
 */
static inline tg_shm_key_t *
tg_shm_keys_slot(tg_shm_keys_t *t, uint32_t i)
{
    return (tg_shm_key_t *)((char *)t + sizeof(tg_shm_keys_t) +
                            (size_t)i * sizeof(tg_shm_key_t));
}

/* A key allows a model iff its bitmap is 0 or shares a bit with <mask>. */
static inline bool
tg_shm_keys_allows_model(const tg_shm_key_t *k, uint64_t mask)
{
    return k->models == 0 || (k->models & mask) != 0;
}

/*
 * Slots for a table that must hold <max_keys> keys: ceil(max_keys * 4/3),
 * at least 2, so a full table is at 75% load.  0 when it exceeds 32 bits.
 */
uint32_t tg_shm_keys_capacity_for(uint32_t max_keys);

/* Bytes for a table of <capacity> slots, header included; 0 on overflow. */
size_t tg_shm_keys_size(uint32_t capacity);

/*
 * Zero tg_shm_keys_size(<capacity>) bytes at <mem> (64-byte aligned, not
 * NULL) and set up an empty table.  Master or tests, before any reader
 * runs.  Returns <mem> as the table, or NULL on a bad argument.
 */
tg_shm_keys_t *tg_shm_keys_init(void *mem, uint32_t capacity);

/*
 * As tg_shm_keys_init, for <mem> already zero-filled (a new memfd or anonymous
 * mapping): writes only the header, so a large table's pages are not
 * touched until keys land in them.  Master, at region creation.
 */
tg_shm_keys_t *tg_shm_keys_format(void *mem, uint32_t capacity);

/*
 * Insert <k> or update the key with the same digest, in place.  The slot's
 * seq, state and epoch come from the table, not from <k>.  Stores the slot
 * in <*slot_out> (may be NULL).  Admin only.  Returns TG_SHM_OK,
 * TG_SHM_FULL when a new key would push used + tombstones over
 * TG_SHM_KEYS_LOAD percent, TG_SHM_INVAL when <k> is NULL.
 */
int tg_shm_keys_upsert(tg_shm_keys_t *t, const tg_shm_key_t *k,
                       uint32_t *slot_out);

/*
 * Where tg_shm_keys_upsert would put <digest>, without writing: TG_SHM_OK
 * when the key is present in slot <*slot_out>, TG_SHM_MISS when it is not
 * and would land in <*slot_out> (reset that slot's per-key counters, then
 * upsert), TG_SHM_FULL when there is no room.  Admin only.
 */
int tg_shm_keys_place(const tg_shm_keys_t *t, const uint8_t digest[32],
                      uint32_t *slot_out);

/*
 * Delete the key with <digest>: its slot becomes a tombstone, and the
 * tombstones of its run that no chain needs become empty.  Admin only;
 * O(run length).  TG_SHM_OK or TG_SHM_MISS.
 */
int tg_shm_keys_delete(tg_shm_keys_t *t, const uint8_t digest[32]);

/*
 * Find the key with <digest> and copy it, consistent, into <*out>, its slot
 * into <*slot_out> (may be NULL); <*out> is unspecified unless TG_SHM_OK.
 * Any process; never blocks; O(1) expected, at most max_probe + 1 slots
 * per walk.  Returns TG_SHM_OK, TG_SHM_MISS, or TG_SHM_BUSY when a probed
 * slot stayed odd or kept changing for TG_SHM_KEYS_RETRIES reads (or a
 * compaction kept moving keys under a miss): refuse the request (fail
 * closed).
 */
int tg_shm_keys_lookup(const tg_shm_keys_t *t, const uint8_t digest[32],
                       tg_shm_key_t *out, uint32_t *slot_out);

/*
 * Copy slot <slot>, consistent, into <*out>.  Any process.  TG_SHM_OK when
 * it holds a key, TG_SHM_MISS when empty, a tombstone or out of range,
 * TG_SHM_BUSY as for lookup.
 */
int tg_shm_keys_read(const tg_shm_keys_t *t, uint32_t slot, tg_shm_key_t *out);

/*
 * Iterate the keys: start with <*cursor> = 0; each call copies the next
 * key into <*out> and leaves <*cursor> one past its slot.  Returns
 * TG_SHM_OK, TG_SHM_MISS at the end, TG_SHM_BUSY for an odd slot (skipped:
 * call again).  Admin side (republish); deleting the returned key while
 * iterating is allowed.
 */
int tg_shm_keys_next(const tg_shm_keys_t *t, uint32_t *cursor,
                     tg_shm_key_t *out);

/*
 * Called by tg_shm_keys_compact before the key in slot <from> appears in
 * slot <to>; <arg> is the caller's.
 */
typedef void (*tg_shm_keys_move_cb)(void *arg, uint32_t from, uint32_t to);

/*
 * Move every key to the first tombstone on its probe chain, then turn all
 * tombstones into empty slots.  <move> (may be NULL) runs before each
 * move: reset or carry over slot <to>'s per-key state there.  Admin only,
 * when tombstones crowd the table: upsert returns TG_SHM_FULL although
 * used is below the bound.  Workers keep finding every key meanwhile.
 * Returns the number of keys moved.
 */
uint32_t tg_shm_keys_compact(tg_shm_keys_t *t, tg_shm_keys_move_cb move,
                             void *arg);

/*
 * Repair after an admin crash: odd slots and duplicates left by a cut-short
 * move become tombstones, unneeded tombstones are purged, and the header
 * counts are recomputed.  Admin at start, before it republishes; workers
 * may run meanwhile.
 */
void tg_shm_keys_repair(tg_shm_keys_t *t);


#endif /* TG_SHM_KEYS_H */
