/*
 * shm/sticky.h
 *      Sticky sessions: a conversation's key -> its home endpoint, with an
 *      expiry.
 *
 * NOTES
 *      Written by: workers (a routed request of a sticky group inserts or
 *      renews its conversation's mapping).  Read by: workers (routing).
 *      Master creates the table; admin never touches it.  All-zero is the
 *      empty table, so a fresh region needs only the header written.
 *
 *      Layout: a header line (capacity, mask) followed by <capacity> slots
 *      of 16 bytes, four to a cache line.  Open addressing: a key's home
 *      slot is (key & mask) and it lives in one of the TG_SHM_STICKY_PROBE
 *      slots from there (wrapping at the end), so a lookup touches at most
 *      two cache lines.
 *
 *      Slot: <key> is the 64-bit conversation key (0 = never used; callers'
 *      keys are never 0, tg_shm_sticky_key makes sure).  <val> packs
 *      check:16 | endpoint:16 | expiry:32 (unix seconds).  The check is the
 *      key's top 16 bits, which the home slot index does not use; it binds
 *      a value to the key it was written for.
 *
 *      Consistency, without locks: each word changes only by CAS.  Renewing
 *      or moving an existing mapping is one CAS on <val>.  Taking a slot for
 *      a new key is a CAS of <key> from what the writer saw to the new key,
 *      then a CAS of <val> from what it saw to the new value.  A reader
 *      loads <key> and then <val> and accepts <val> only when its check
 *      matches the key it is looking for and its expiry has not passed.
 *      A slot is only taken when it is empty or expired (or, with the whole
 *      probe window live, it is the one expiring soonest), so between a
 *      writer's two CASes the slot shows the new key with the old key's
 *      value: a check mismatch (or a past expiry), which readers treat as a
 *      miss.  A writer that dies between the two CASes leaves exactly that
 *      state, and the next writer for the key repairs it with a CAS on
 *      <val>.  Of two writers racing for one slot, one loses its CAS and
 *      gives up (TG_SHM_BUSY): affinity is soft, the conversation's next
 *      request writes its mapping again.  A torn slot can pass a reader's
 *      check only by the check's 2^-16 coincidence after such a death or
 *      race, and even then the reader gets an endpoint index, which routing
 *      validates like any other before using it.
 *
 *      Eviction: an expired slot is taken by the next key that needs room
 *      in its window; a window with no free or expired slot gives up the
 *      mapping that expires soonest.  Keys are never reset to 0, so an
 *      empty slot ends a probe: nothing was ever placed past it.
 *
 *      Expiry has one-second resolution (rounded up), which keeps renewals
 *      to at most one write per conversation per second.
 */
#ifndef TG_SHM_STICKY_H
#define TG_SHM_STICKY_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_STICKY_PROBE   8       /* slots a key may be placed in */
#define TG_SHM_STICKY_DEFAULT 65536   /* slots when the config says none */
#define TG_SHM_STICKY_MAX_EP  0xffffu /* endpoint indexes that fit a slot */

typedef struct {
    _Atomic uint64_t key; /* conversation key, 0 = never used */
    _Atomic uint64_t val; /* check:16 | endpoint:16 | expiry s:32 */
} tg_shm_sticky_slot_t;

typedef struct {
    alignas(TG_SHM_CACHELINE) uint32_t capacity; /* slots, a power of two */
    uint32_t mask;                               /* capacity - 1 */
    uint8_t reserved[56];                        /* pads to one line */
    tg_shm_sticky_slot_t slots[];                /* <capacity> slots */
} tg_shm_sticky_t;

_Static_assert(sizeof(tg_shm_sticky_slot_t) == 16,
               "tg_shm_sticky_slot_t layout changed: bump "
               "TG_SHM_LAYOUT_VERSION");
_Static_assert(sizeof(tg_shm_sticky_t) == 64, "sticky header is one line");
_Static_assert(offsetof(tg_shm_sticky_t, slots) == 64, "sticky slots");

/* Bytes for a table of <capacity> slots (a power of two, at least
 * TG_SHM_STICKY_PROBE); 0 when it is not, or on overflow. */
size_t tg_shm_sticky_size(uint32_t capacity);

/*
 * Zero the table of <capacity> slots at <mem> (cache-line aligned,
 * tg_shm_sticky_size bytes) and write its header.  Returns it, or NULL on
 * a bad argument.  Master, at region creation.
 */
tg_shm_sticky_t *tg_shm_sticky_init(void *mem, uint32_t capacity);

/* Turn a 64-bit hash into a table key (never 0). */
static inline uint64_t
tg_shm_sticky_key(uint64_t hash)
{
    return hash != 0 ? hash : 1;
}

/*
 * Look up <key> (from tg_shm_sticky_key) at wall time <now_ms>.  On
 * TG_SHM_OK sets <*ep> to the home endpoint and, when <expires_ms> is not
 * NULL, <*expires_ms> to the mapping's expiry; TG_SHM_MISS when there is
 * no live mapping.  Any process; reads only, never blocks.
 */
int tg_shm_sticky_lookup(const tg_shm_sticky_t *t, uint64_t key,
                         uint64_t now_ms, uint32_t *ep, uint64_t *expires_ms);

/*
 * Map <key> to endpoint <ep> (at most TG_SHM_STICKY_MAX_EP) until wall
 * time <expires_ms>, inserting, renewing or moving the mapping, at wall
 * time <now_ms> (what counts as expired).  A renewal that changes nothing
 * at one-second resolution writes nothing.  Returns TG_SHM_OK,
 * TG_SHM_BUSY when a concurrent writer won a race for the slot (the
 * mapping may not be stored), or TG_SHM_INVAL.  Workers; lock-free,
 * never blocks.
 */
int tg_shm_sticky_set(tg_shm_sticky_t *t, uint64_t key, uint32_t ep,
                      uint64_t expires_ms, uint64_t now_ms);

#endif /* TG_SHM_STICKY_H */
