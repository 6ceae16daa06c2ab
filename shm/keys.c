/*
 * shm/keys.c
 *      Client-key table and model patterns in shared memory.
 *
 * NOTES
 *      Admin runs the writer side (upsert, delete, repair, models_set) as the
 *      only writer; workers run the reader side (lookup, models_match) on
 *      every request.  The protocol is in shm/keys.h.
 *
 *      Every access to a slot outside <seq> goes through the helpers below,
 *      which move whole 32 and 64-bit words with relaxed __atomic builtins.
 *      Copies between a shared slot and a caller's struct go through a local
 *      word array and memcpy, so no struct is read through a pointer of
 *      another type.  Slots are 8-byte aligned (the header is 64 bytes and
 *      a slot 96), which the word accesses need.
 */
#include "shm/keys.h"
#include "shm/seqlock.h"

#include <stdbool.h>
#include <string.h>

#define TG_SHM_KEY_WORDS     11 /* 64-bit words from offset 8 to the end */
#define TG_SHM_KEYS_PREFETCH 4  /* lines prefetched from the home slot */

_Static_assert(8 + TG_SHM_KEY_WORDS * 8 == sizeof(tg_shm_key_t), "key words");

/* The outcome of probing one slot for a digest. */
enum {
    TG_SHM_PROBE_MATCH, /* the slot holds the digest; copied out */
    TG_SHM_PROBE_EMPTY, /* the slot is empty: the chain ends */
    TG_SHM_PROBE_OTHER, /* a tombstone or another key: go on */
    TG_SHM_PROBE_BUSY   /* the slot stayed odd or kept changing */
};


/*
 * Copy slot <e> word by word into <img>, without looking at <seq>: the
 * caller either validates <seq> around it or is the writer.
 */
static void
tg_shm_keys_copy_out(const tg_shm_key_t *e, tg_shm_key_t *img)
{
    const char *src = (const char *)e;
    uint64_t w[TG_SHM_KEY_WORDS];
    uint32_t w32;
    int i;

    w32 = tg_shm_seq_load32(src + 4);
    for (i = 0; i < TG_SHM_KEY_WORDS; i++) {
        w[i] = tg_shm_seq_load64(src + 8 + 8 * i);
    }
    memcpy((char *)img + 4, &w32, 4);
    memcpy((char *)img + 8, w, sizeof(w));
}


/* Store <img> (all but <seq>) into slot <e>; the writer holds <seq> odd. */
static void
tg_shm_keys_copy_in(tg_shm_key_t *e, const tg_shm_key_t *img)
{
    char *dst = (char *)e;
    uint64_t w[TG_SHM_KEY_WORDS];
    uint32_t w32;
    int i;

    memcpy(&w32, (const char *)img + 4, 4);
    memcpy(w, (const char *)img + 8, sizeof(w));
    tg_shm_seq_store32(dst + 4, w32);
    for (i = 0; i < TG_SHM_KEY_WORDS; i++) {
        tg_shm_seq_store64(dst + 8 + 8 * i, w[i]);
    }
}


/*
 * Read slot <e> consistently into <img> (all fields, <seq> included).
 * Returns TG_SHM_OK or TG_SHM_BUSY.
 */
static int
tg_shm_keys_read_slot(const tg_shm_key_t *e, tg_shm_key_t *img)
{
    uint32_t s1;
    int tries;

    for (tries = 0; tries < TG_SHM_KEYS_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&e->seq, &s1)) {
            tg_shm_seq_relax();
            continue;
        }
        tg_shm_keys_copy_out(e, img);
        if (tg_shm_seq_read_end(&e->seq, s1)) {
            atomic_init(&img->seq, s1);
            return TG_SHM_OK;
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}


static inline uint32_t
tg_shm_keys_home(uint64_t h, uint32_t capacity)
{
    return (uint32_t)(((unsigned __int128)h * capacity) >> 64);
}


/* State byte of the word image <w32> (bytes 4..7 of a slot). */
static inline uint8_t
tg_shm_keys_state_of(uint32_t w32)
{
    uint8_t b[4];

    memcpy(b, &w32, 4);
    return b[0];
}


/*
 * Probe slot <e> for digest <d> (as four words).  On a match the whole
 * slot is copied into <out> from the same consistent read; otherwise <out>
 * may hold a partial copy.  The digest is compared before <seq> is
 * checked again, but nothing is decided until the read proved consistent.
 * The comparison is branch-free: whether a slot matches is what the CPU
 * cannot predict, so one branch per slot is the least it can pay.
 */
static inline int
tg_shm_keys_probe(const tg_shm_key_t *e, const uint64_t d[4], tg_shm_key_t *out)
{
    const char *src = (const char *)e;
    uint64_t w[TG_SHM_KEY_WORDS];
    uint32_t s1, w32;
    uint64_t diff;
    int tries, i;

    for (tries = 0; tries < TG_SHM_KEYS_RETRIES; tries++) {
        if (!tg_shm_seq_read_begin(&e->seq, &s1)) {
            tg_shm_seq_relax();
            continue;
        }
        w32 = tg_shm_seq_load32(src + 4);
        w[0] = tg_shm_seq_load64(src + 8);
        w[1] = tg_shm_seq_load64(src + 16);
        w[2] = tg_shm_seq_load64(src + 24);
        w[3] = tg_shm_seq_load64(src + 32);
        diff = (w[0] ^ d[0]) | (w[1] ^ d[1]) | (w[2] ^ d[2]) | (w[3] ^ d[3]) |
               (uint64_t)(tg_shm_keys_state_of(w32) ^ TG_SHM_KEY_USED);
        if (diff == 0) {
            for (i = 4; i < TG_SHM_KEY_WORDS; i++) {
                w[i] = tg_shm_seq_load64(src + 8 + 8 * i);
            }
        }
        if (!tg_shm_seq_read_end(&e->seq, s1)) {
            tg_shm_seq_relax();
            continue;
        }
        if (diff == 0) {
            atomic_init(&out->seq, s1);
            memcpy((char *)out + 4, &w32, 4);
            memcpy((char *)out + 8, w, sizeof(w));
            return TG_SHM_PROBE_MATCH;
        }
        return tg_shm_keys_state_of(w32) == TG_SHM_KEY_EMPTY
                   ? TG_SHM_PROBE_EMPTY
                   : TG_SHM_PROBE_OTHER;
    }
    return TG_SHM_PROBE_BUSY;
}


/* Slots for <max_keys> keys at 75% load; 0 when over 32 bits. */
uint32_t
tg_shm_keys_capacity_for(uint32_t max_keys)
{
    uint64_t c = ((uint64_t)max_keys * 4 + 2) / 3;

    if (c < 2) {
        c = 2;
    }
    return c > UINT32_MAX ? 0 : (uint32_t)c;
}


/* Header plus <capacity> slots, in bytes; 0 on overflow. */
size_t
tg_shm_keys_size(uint32_t capacity)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)capacity, sizeof(tg_shm_key_t), &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_keys_t), &n)) {
        return 0;
    }
    return n;
}


/* Set up the header at <mem>; zero the whole table first when <zero>. */
static tg_shm_keys_t *
tg_shm_keys_setup(void *mem, uint32_t capacity, bool zero)
{
    tg_shm_keys_t *t = mem;
    size_t size = tg_shm_keys_size(capacity);

    if (mem == NULL || ((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0 ||
        capacity == 0 || size == 0) {
        return NULL;
    }
    if (zero) {
        memset(mem, 0, size);
    }
    t->capacity = capacity;
    atomic_init(&t->used, 0);
    atomic_init(&t->tombstones, 0);
    atomic_init(&t->max_probe, 0);
    atomic_init(&t->generation, 1);
    return t;
}


/*
 * Zero and set up a table of <capacity> slots at <mem> (64-byte aligned).
 * Returns the table, or NULL when <mem> is NULL or misaligned, or
 * <capacity> is 0 or too large.
 */
tg_shm_keys_t *
tg_shm_keys_init(void *mem, uint32_t capacity)
{
    return tg_shm_keys_setup(mem, capacity, true);
}


/* See shm/keys.h: as tg_shm_keys_init, for memory known to be zero. */
tg_shm_keys_t *
tg_shm_keys_format(void *mem, uint32_t capacity)
{
    return tg_shm_keys_setup(mem, capacity, false);
}


/*
 * Walk the chain of digest <d> as the writer: <*found> gets the slot
 * holding the key (or UINT32_MAX), <*free_slot> the first tombstone or
 * empty slot on the chain (or UINT32_MAX) and <*free_dist> its distance
 * from home.  Returns true when the free slot was an empty one.
 */
static bool
tg_shm_keys_walk(const tg_shm_keys_t *t, const uint64_t d[4], uint32_t *found,
                 uint32_t *free_slot, uint32_t *free_dist)
{
    uint32_t cap = t->capacity;
    uint32_t i = tg_shm_keys_home(d[0], cap);
    uint32_t n;
    tg_shm_key_t img;

    *found = UINT32_MAX;
    *free_slot = UINT32_MAX;
    *free_dist = 0;
    for (n = 0; n < cap; n++) {
        const tg_shm_key_t *e = tg_shm_keys_slot((tg_shm_keys_t *)t, i);

        /*
         * A slot left odd by a dead admin is treated as taken: repair
         * turns it into a tombstone before the republish.
         */
        tg_shm_keys_copy_out(e, &img);
        if ((atomic_load_explicit(&e->seq, memory_order_relaxed) & 1) == 0) {
            if (img.state == TG_SHM_KEY_EMPTY) {
                if (*free_slot == UINT32_MAX) {
                    *free_slot = i;
                    *free_dist = n;
                    return true;
                }
                return false;
            }
            if (img.state == TG_SHM_KEY_TOMB && *free_slot == UINT32_MAX) {
                *free_slot = i;
                *free_dist = n;
            } else if (img.state == TG_SHM_KEY_USED &&
                       memcmp(img.digest, d, 32) == 0) {
                *found = i;
                return false;
            }
        }
        if (++i == cap) {
            i = 0;
        }
    }
    return false;
}


/* True when taking an empty slot keeps the load within the bound. */
static bool
tg_shm_keys_room(const tg_shm_keys_t *t)
{
    uint64_t taken =
        (uint64_t)atomic_load(&t->used) + atomic_load(&t->tombstones) + 1;

    return taken * 100 <= (uint64_t)t->capacity * TG_SHM_KEYS_LOAD;
}


/*
 * Where upsert would put <digest>: its slot (TG_SHM_OK), the slot a new
 * key would take (TG_SHM_MISS) or TG_SHM_FULL.  Admin only.
 */
int
tg_shm_keys_place(const tg_shm_keys_t *t, const uint8_t digest[32],
                  uint32_t *slot_out)
{
    uint32_t found, free_slot, dist;
    uint64_t d[4];
    bool empty;

    memcpy(d, digest, 32);
    empty = tg_shm_keys_walk(t, d, &found, &free_slot, &dist);
    if (found != UINT32_MAX) {
        *slot_out = found;
        return TG_SHM_OK;
    }
    if (free_slot == UINT32_MAX || (empty && !tg_shm_keys_room(t))) {
        return TG_SHM_FULL;
    }
    *slot_out = free_slot;
    return TG_SHM_MISS;
}


/*
 * Insert or update <k> by digest, in place; the slot goes to <*slot_out>
 * when not NULL.  Admin only.  TG_SHM_OK, TG_SHM_FULL or TG_SHM_INVAL.
 */
int
tg_shm_keys_upsert(tg_shm_keys_t *t, const tg_shm_key_t *k, uint32_t *slot_out)
{
    uint32_t found, free_slot, dist, slot, odd;
    tg_shm_key_t img, old;
    tg_shm_key_t *e;
    uint64_t d[4];
    bool empty;

    if (k == NULL) {
        return TG_SHM_INVAL;
    }
    memcpy(d, k->digest, 32);
    empty = tg_shm_keys_walk(t, d, &found, &free_slot, &dist);
    if (found != UINT32_MAX) {
        slot = found;
    } else if (free_slot == UINT32_MAX || (empty && !tg_shm_keys_room(t))) {
        return TG_SHM_FULL;
    } else {
        slot = free_slot;
    }

    e = tg_shm_keys_slot(t, slot);
    tg_shm_keys_copy_out(e, &old);
    memcpy(&img, k, sizeof(img));
    img.state = TG_SHM_KEY_USED;
    img.epoch = found != UINT32_MAX ? old.epoch : old.epoch + 1;

    /*
     * Publish the probe bound before the entry: a reader that loads the
     * old bound stops short of a key that is not yet there anyway, and
     * the release store below orders the two for readers that see the
     * key.
     */
    if (found == UINT32_MAX &&
        dist > atomic_load_explicit(&t->max_probe, memory_order_relaxed)) {
        atomic_store_explicit(&t->max_probe, dist, memory_order_release);
    }
    odd = tg_shm_seq_write_begin(&e->seq);
    tg_shm_keys_copy_in(e, &img);
    tg_shm_seq_write_end(&e->seq, odd);

    if (found == UINT32_MAX) {
        atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
        if (!empty) {
            atomic_fetch_sub_explicit(&t->tombstones, 1, memory_order_relaxed);
        }
    }
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    if (slot_out != NULL) {
        *slot_out = slot;
    }
    return TG_SHM_OK;
}


/* Rewrite the state of slot <e> (holding image <img>) under its seqlock. */
static void
tg_shm_keys_set_state(tg_shm_key_t *e, tg_shm_key_t *img, uint8_t state)
{
    uint32_t odd;

    img->state = state;
    odd = tg_shm_seq_write_begin(&e->seq);
    tg_shm_keys_copy_in(e, img);
    tg_shm_seq_write_end(&e->seq, odd);
}


/*
 * Turn every tombstone that no probe chain needs into an empty slot, in
 * the run (maximal stretch of non-empty slots) holding slot <i>.  A key in
 * slot p with home h probes h..p, all inside its run; a tombstone q is
 * needed iff some key after q in the run has its home at or before q.  So
 * one pass from the end of the run backwards, tracking the earliest home
 * of the keys passed, finds the unneeded ones.  No key's chain runs
 * through a slot emptied here, so concurrent readers lose nothing; keys
 * never move, so their rate-limit slots stay put.  O(run length); admin.
 */
static void
tg_shm_keys_purge(tg_shm_keys_t *t, uint32_t i)
{
    uint32_t cap = t->capacity;
    uint32_t end = i, n, back, reach = 0;
    tg_shm_key_t img;

    /* Find the empty slot closing the run; none means no run to split. */
    for (n = 0; n < cap; n++) {
        const tg_shm_key_t *e = tg_shm_keys_slot(t, end);

        tg_shm_keys_copy_out(e, &img);
        if (img.state == TG_SHM_KEY_EMPTY &&
            (atomic_load_explicit(&e->seq, memory_order_relaxed) & 1) == 0) {
            break;
        }
        end = end + 1 == cap ? 0 : end + 1;
    }
    if (n == cap) {
        return;
    }

    /*
     * <back> is the distance of the current slot before <end>, <reach>
     * the largest such distance of a home of a key seen so far: slots at
     * distance <= reach lie on some key's chain.
     */
    i = end;
    for (back = 1; back < cap; back++) {
        tg_shm_key_t *e;
        uint32_t s;

        i = i == 0 ? cap - 1 : i - 1;
        e = tg_shm_keys_slot(t, i);
        s = atomic_load_explicit(&e->seq, memory_order_relaxed);
        tg_shm_keys_copy_out(e, &img);
        if (s & 1) {
            /* Left odd by a dead admin: its chain is unknown, keep all. */
            return;
        }
        if (img.state == TG_SHM_KEY_EMPTY) {
            return;
        }
        if (img.state == TG_SHM_KEY_USED) {
            uint64_t h;
            uint32_t home, hb;

            memcpy(&h, img.digest, 8);
            home = tg_shm_keys_home(h, cap);
            hb = end >= home ? end - home : cap - home + end;
            reach = hb > reach ? hb : reach;
        } else if (back > reach) {
            tg_shm_keys_set_state(e, &img, TG_SHM_KEY_EMPTY);
            atomic_fetch_sub_explicit(&t->tombstones, 1, memory_order_relaxed);
        }
    }
}


/* Delete the key with <digest>.  Admin only.  TG_SHM_OK or TG_SHM_MISS. */
int
tg_shm_keys_delete(tg_shm_keys_t *t, const uint8_t digest[32])
{
    uint32_t found, free_slot, dist, epoch;
    tg_shm_key_t img;
    tg_shm_key_t *e;
    uint64_t d[4];

    memcpy(d, digest, 32);
    tg_shm_keys_walk(t, d, &found, &free_slot, &dist);
    if (found == UINT32_MAX) {
        return TG_SHM_MISS;
    }
    e = tg_shm_keys_slot(t, found);
    tg_shm_keys_copy_out(e, &img);

    /*
     * Clear the key's data so that a dump of the region shows no digest of
     * a revoked key; keep the epoch, which only grows.
     */
    epoch = img.epoch;
    memset(&img, 0, sizeof(img));
    img.epoch = epoch;
    tg_shm_keys_set_state(e, &img, TG_SHM_KEY_TOMB);
    atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->tombstones, 1, memory_order_relaxed);
    tg_shm_keys_purge(t, found);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    return TG_SHM_OK;
}


/*
 * Probe the chain of digest <d> once: TG_SHM_OK (copied into <*out>, slot
 * in <*slot_out>), TG_SHM_MISS or TG_SHM_BUSY.
 */
static int
tg_shm_keys_find(const tg_shm_keys_t *t, const uint64_t d[4], tg_shm_key_t *out,
                 uint32_t *slot_out)
{
    uint32_t cap = t->capacity;
    uint32_t max = atomic_load_explicit(&t->max_probe, memory_order_acquire);
    const char *home;
    uint32_t i, n;

    if (max >= cap) {
        max = cap - 1;
    }
    i = tg_shm_keys_home(d[0], cap);

    /*
     * A slot spans two cache lines, and a third of the keys sit one or
     * more slots past home.  Start the misses for the home slot and the
     * next one at once, instead of one after the other as the walk finds
     * it needs them; the extra lines cost bandwidth, not latency.
     */
    home = (const char *)tg_shm_keys_slot((tg_shm_keys_t *)t, i);
    for (n = 0; n < TG_SHM_KEYS_PREFETCH; n++) {
        __builtin_prefetch(home + TG_SHM_CACHELINE * n);
    }
    for (n = 0; n <= max; n++) {
        const tg_shm_key_t *e = tg_shm_keys_slot((tg_shm_keys_t *)t, i);

        switch (tg_shm_keys_probe(e, d, out)) {
        case TG_SHM_PROBE_MATCH:
            *slot_out = i;
            return TG_SHM_OK;
        case TG_SHM_PROBE_EMPTY:
            return TG_SHM_MISS;
        case TG_SHM_PROBE_BUSY:
            return TG_SHM_BUSY;
        default:
            break;
        }
        if (++i == cap) {
            i = 0;
        }
    }
    return TG_SHM_MISS;
}


/*
 * Look up <digest>; a consistent copy goes to <*out> and the slot to
 * <*slot_out> (may be NULL).  Any process, never blocks.  TG_SHM_OK,
 * TG_SHM_MISS or TG_SHM_BUSY (fail closed).
 */
int
tg_shm_keys_lookup(const tg_shm_keys_t *t, const uint8_t digest[32],
                   tg_shm_key_t *out, uint32_t *slot_out)
{
    uint32_t m1, m2, slot;
    uint64_t d[4];
    int tries, rc;

    if (t->capacity == 0) {
        return TG_SHM_MISS;
    }
    memcpy(d, digest, 32);
    for (tries = 0; tries < TG_SHM_KEYS_RETRIES; tries++) {
        m1 = atomic_load_explicit(&t->moving, memory_order_acquire);
        rc = tg_shm_keys_find(t, d, out, &slot);
        if (rc == TG_SHM_OK && slot_out != NULL) {
            *slot_out = slot;
        }
        if (rc != TG_SHM_MISS) {
            return rc;
        }

        /*
         * A hit is always right, but a miss is only right if no key moved
         * during the walk: a key moved from behind us to a slot we had
         * already passed would be missed.  The <moving> seqlock tells.
         */
        atomic_thread_fence(memory_order_acquire);
        m2 = atomic_load_explicit(&t->moving, memory_order_relaxed);
        if (m1 == m2 && (m1 & 1) == 0) {
            return TG_SHM_MISS;
        }
        tg_shm_seq_relax();
    }
    return TG_SHM_BUSY;
}


/*
 * Copy slot <slot> into <*out>.  Any process.  TG_SHM_OK when it holds a
 * key, TG_SHM_MISS otherwise, TG_SHM_BUSY when it stayed odd.
 */
int
tg_shm_keys_read(const tg_shm_keys_t *t, uint32_t slot, tg_shm_key_t *out)
{
    if (slot >= t->capacity) {
        return TG_SHM_MISS;
    }
    if (tg_shm_keys_read_slot(tg_shm_keys_slot((tg_shm_keys_t *)t, slot),
                              out) != TG_SHM_OK) {
        return TG_SHM_BUSY;
    }
    return out->state == TG_SHM_KEY_USED ? TG_SHM_OK : TG_SHM_MISS;
}


/*
 * Copy the next key at or after <*cursor> into <*out> and move the cursor
 * past it.  TG_SHM_OK, TG_SHM_MISS at the end, TG_SHM_BUSY for an odd slot.
 */
int
tg_shm_keys_next(const tg_shm_keys_t *t, uint32_t *cursor, tg_shm_key_t *out)
{
    while (*cursor < t->capacity) {
        int rc = tg_shm_keys_read(t, *cursor, out);

        (*cursor)++;
        if (rc != TG_SHM_MISS) {
            return rc;
        }
    }
    return TG_SHM_MISS;
}


/*
 * Recompute used, tombstones and max_probe from the slots.  Shrinking
 * max_probe is safe with readers running: every key present lies within
 * the new bound, and an insert raises the bound before its key appears.
 */
static void
tg_shm_keys_recount(tg_shm_keys_t *t)
{
    uint32_t cap = t->capacity;
    uint32_t used = 0, tombs = 0, max = 0;
    tg_shm_key_t img;
    uint32_t i;

    for (i = 0; i < cap; i++) {
        tg_shm_keys_copy_out(tg_shm_keys_slot(t, i), &img);
        if (img.state == TG_SHM_KEY_USED) {
            uint64_t h;
            uint32_t home, dist;

            memcpy(&h, img.digest, 8);
            home = tg_shm_keys_home(h, cap);
            dist = i >= home ? i - home : cap - home + i;
            max = dist > max ? dist : max;
            used++;
        } else if (img.state == TG_SHM_KEY_TOMB) {
            tombs++;
        }
    }
    atomic_store_explicit(&t->used, used, memory_order_relaxed);
    atomic_store_explicit(&t->tombstones, tombs, memory_order_relaxed);
    atomic_store_explicit(&t->max_probe, max, memory_order_release);
}


/* Purge every run of the table (see tg_shm_keys_purge). */
static void
tg_shm_keys_purge_all(tg_shm_keys_t *t)
{
    uint32_t cap = t->capacity;
    tg_shm_key_t img;
    uint32_t i;

    for (i = 0; i < cap; i++) {
        tg_shm_keys_copy_out(tg_shm_keys_slot(t, i), &img);
        if (img.state == TG_SHM_KEY_EMPTY) {
            tg_shm_keys_purge(t, i + 1 == cap ? 0 : i + 1);
        }
    }
}


/* The first even tombstone on [<from>, <to>), or UINT32_MAX. */
static uint32_t
tg_shm_keys_first_tomb(tg_shm_keys_t *t, uint32_t from, uint32_t to)
{
    uint32_t cap = t->capacity;
    tg_shm_key_t img;

    while (from != to) {
        const tg_shm_key_t *e = tg_shm_keys_slot(t, from);

        tg_shm_keys_copy_out(e, &img);
        if (img.state == TG_SHM_KEY_TOMB &&
            (atomic_load_explicit(&e->seq, memory_order_relaxed) & 1) == 0) {
            return from;
        }
        from = from + 1 == cap ? 0 : from + 1;
    }
    return UINT32_MAX;
}


/*
 * Move every key to the first tombstone on its chain, then purge: one pass
 * in run order leaves no tombstone that a chain needs, so it removes them
 * all.  <move>(<arg>, from, to), when not NULL, runs before the key appears
 * in slot <to>, so that the owner of per-slot state (rate limits) can
 * reset or carry it over.  Admin only, when tombstones crowd the table
 * (upsert says TG_SHM_FULL while used is well below the bound).  Readers
 * keep finding every key: a key is written to its new slot before its old
 * one is cleared, and lookups retry a miss that overlapped a move.
 * Returns the number of keys moved.
 */
uint32_t
tg_shm_keys_compact(tg_shm_keys_t *t, tg_shm_keys_move_cb move, void *arg)
{
    uint32_t cap = t->capacity;
    uint32_t start, i, n, to, odd, epoch, moved = 0;
    tg_shm_key_t img, old;

    /* Start after an empty slot, so that runs are walked front to back. */
    for (start = 0; start < cap; start++) {
        tg_shm_keys_copy_out(tg_shm_keys_slot(t, start), &img);
        if (img.state == TG_SHM_KEY_EMPTY) {
            break;
        }
    }
    if (start == cap) {
        start = 0;
    }
    for (n = 1; n <= cap; n++) {
        tg_shm_key_t *e, *dst;
        uint64_t h;

        i = (uint32_t)(((uint64_t)start + n) % cap);
        e = tg_shm_keys_slot(t, i);
        tg_shm_keys_copy_out(e, &img);
        if (img.state != TG_SHM_KEY_USED ||
            (atomic_load_explicit(&e->seq, memory_order_relaxed) & 1)) {
            continue;
        }
        memcpy(&h, img.digest, 8);
        to = tg_shm_keys_first_tomb(t, tg_shm_keys_home(h, cap), i);
        if (to == UINT32_MAX) {
            continue;
        }
        if (move != NULL) {
            move(arg, i, to);
        }
        dst = tg_shm_keys_slot(t, to);
        tg_shm_keys_copy_out(dst, &old);
        epoch = img.epoch;
        img.epoch = old.epoch + 1;
        odd = tg_shm_seq_write_begin(&t->moving);
        tg_shm_keys_set_state(dst, &img, TG_SHM_KEY_USED);
        memset(&img, 0, sizeof(img));
        img.epoch = epoch;
        tg_shm_keys_set_state(e, &img, TG_SHM_KEY_TOMB);
        tg_shm_seq_write_end(&t->moving, odd);
        moved++;
    }
    tg_shm_keys_purge_all(t);
    tg_shm_keys_recount(t);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
    return moved;
}


/*
 * True when the key in slot <i> (image <img>) has a copy earlier on its
 * chain: the trace of a move cut short by a crash.  The earlier copy is
 * the one lookups find, and the newer, since a move writes it first.
 */
static bool
tg_shm_keys_duplicate(tg_shm_keys_t *t, uint32_t i, const tg_shm_key_t *img)
{
    uint32_t cap = t->capacity;
    uint32_t j;
    tg_shm_key_t o;
    uint64_t h;

    memcpy(&h, img->digest, 8);
    for (j = tg_shm_keys_home(h, cap); j != i; j = j + 1 == cap ? 0 : j + 1) {
        tg_shm_keys_copy_out(tg_shm_keys_slot(t, j), &o);
        if (o.state == TG_SHM_KEY_USED &&
            memcmp(o.digest, img->digest, 32) == 0) {
            return true;
        }
    }
    return false;
}


/*
 * After an admin crash: odd slots become tombstones with even seq, as do
 * duplicates left by an interrupted move; unneeded tombstones are purged,
 * and used, tombstones and max_probe are recomputed from the slots.
 * Admin at start, before republishing.
 */
void
tg_shm_keys_repair(tg_shm_keys_t *t)
{
    uint32_t cap = t->capacity;
    uint32_t i, m;
    tg_shm_key_t img;

    for (i = 0; i < cap; i++) {
        tg_shm_key_t *e = tg_shm_keys_slot(t, i);
        uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
        uint32_t epoch;

        tg_shm_keys_copy_out(e, &img);
        if ((s & 1) == 0 && (img.state != TG_SHM_KEY_USED ||
                             !tg_shm_keys_duplicate(t, i, &img))) {
            continue;
        }
        epoch = img.epoch;
        memset(&img, 0, sizeof(img));
        img.epoch = epoch + 1;
        if (s & 1) {
            /*
             * The seq is already odd: store the data, then close the
             * write that the dead admin opened.
             */
            img.state = TG_SHM_KEY_TOMB;
            atomic_thread_fence(memory_order_release);
            tg_shm_keys_copy_in(e, &img);
            tg_shm_seq_write_end(&e->seq, s);
        } else {
            tg_shm_keys_set_state(e, &img, TG_SHM_KEY_TOMB);
        }
    }

    /* A move cut short leaves <moving> odd: close it. */
    m = atomic_load_explicit(&t->moving, memory_order_relaxed);
    if (m & 1) {
        tg_shm_seq_write_end(&t->moving, m);
    }

    /*
     * The counts are only read for the load bound and metrics, and this
     * pass is the only writer, so they may be off until the recount.
     */
    tg_shm_keys_purge_all(t);
    tg_shm_keys_recount(t);
    atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
}
