/*
 * shm/ring.c
 *      The usage ring: Vyukov's bounded queue, many workers to one admin.
 *      The code is generic over the record size (the events ring of
 *      shm/events.c uses it too); the usage functions are wrappers.
 *
 * NOTES
 *      Runs in master (init, reap), workers (claim, commit, publish) and
 *      admin (consume, skip_stuck).  Lock-free: nothing here blocks and no
 *      process ever waits on another one's progress except the consumer,
 *      which waits (without blocking) for the slot at its tail.
 *
 *      Memory order, as in Vyukov's queue.  A record body is written by
 *      exactly one producer and read by the consumer; the hand-offs are
 *      release stores of seq paired with acquire loads of seq:
 *          producer P writes body -> release seq = pos + 1
 *          -> consumer acquire load sees pos + 1 -> reads body
 *          -> release seq = pos + capacity
 *          -> next-lap producer Q acquire load sees it -> writes body.
 *      So P's writes happen before the consumer's reads, which happen
 *      before Q's writes, and no body access is ever a data race.  head is
 *      CASed with relaxed order: it only hands out positions, and the slot
 *      itself is handed over by seq.
 *
 *      The skip race.  Producer P has won the head CAS for <pos>, so seq is
 *      pos.  From there exactly one of two CASes on seq succeeds:
 *      - P's begin, pos -> BUSY | pid (acquire).  P then owns the body
 *        until its release store of pos + 1; the consumer never skips a
 *        BUSY slot, only master may turn it DEAD, and only after the
 *        kernel has reported P dead.  Nobody else writes the body.
 *      - the consumer's skip, pos -> pos + capacity (release), allowed only
 *        after the grace period.  P's begin then fails; P returns
 *        TG_SHM_FULL before touching the body, and its caller spools the
 *        record.  Q may now claim the slot for pos + capacity and write it
 *        without racing P, because P never writes.
 *      What can happen: a slow producer's record goes to the spool instead
 *      of the ring (the skip count overstates losses by such records); a
 *      dead producer's record is lost with the process, as any record of a
 *      worker that dies before publishing is; the consumer stalls on a
 *      BUSY slot for as long as its writer is alive but stopped (SIGSTOP),
 *      during which producers get FULL and spool, so nothing is lost.
 *      What cannot happen: two processes writing one body; the consumer
 *      reading a body that is being written; a record both in the ring and
 *      in a spool; a skipped slot coming back to life (seq values of a slot
 *      only grow from lap to lap, so a stale begin CAS can never match
 *      again: there is no ABA on 64-bit positions).  BUSY | pid values do
 *      repeat across laps, which is why only master, which forks every
 *      producer, may reap a pid: between waitpid() and its next fork no
 *      live producer can carry that pid.
 *
 *      The dying consumer.  Admin hands a slot to the next lap (seq) and
 *      then advances tail.  If it dies in between, the next admin finds
 *      tail one behind a slot that is already free or even reused;
 *      tg_shm_ring_skip_stuck() recognises that state (seq at least a lap
 *      ahead of tail, or head more than a lap ahead) and moves tail on.
 *      The record of that slot was copied by the dead admin and is lost
 *      with its memory, like everything it had aggregated and not yet
 *      written out.  A crash before the seq store leaves the slot
 *      published, and the next admin reads it again (admin dedupes on
 *      request_id).
 *
 *      Cross-process atomics must be lock-free (a lock-based fallback
 *      would keep its lock in one process's memory), which the
 *      _Static_assert below checks.
 */
#include "shm/ring.h"

#include <stdint.h>
#include <string.h>

_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 || ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to be shared");


/*
 * Bytes for a ring of <capacity> slots of <rec_size>-byte records, header
 * included, or 0 when the capacity is not a power of two in
 * [TG_SHM_RING_MIN, TG_SHM_RING_MAX] or the record size is not a whole
 * number of cache lines.
 */
size_t
tg_shm_ring_size_for(uint32_t capacity, uint32_t rec_size)
{
    size_t n;

    if (capacity < TG_SHM_RING_MIN || capacity > TG_SHM_RING_MAX ||
        (capacity & (capacity - 1)) != 0) {
        return 0;
    }
    if (rec_size == 0 || rec_size % TG_SHM_CACHELINE != 0 || rec_size > 65536) {
        return 0;
    }
    if (__builtin_mul_overflow((size_t)capacity,
                               (size_t)rec_size + TG_SHM_CACHELINE, &n) ||
        __builtin_add_overflow(n, sizeof(tg_shm_ring_t), &n)) {
        return 0;
    }
    return n;
}


/* Bytes for a usage ring of <capacity> slots; see ring.h. */
size_t
tg_shm_ring_size(uint32_t capacity)
{
    return tg_shm_ring_size_for(capacity, sizeof(tg_usage_rec_t));
}


/*
 * Lay out an empty ring of <capacity> slots of <rec_size>-byte records in
 * <mem> (cache-line aligned, tg_shm_ring_size_for() bytes).  Master only,
 * before fork.  Returns <mem> as a ring, or NULL when it is misaligned or
 * the sizes are refused.
 */
tg_shm_ring_t *
tg_shm_ring_init_for(void *mem, uint32_t capacity, uint32_t rec_size)
{
    tg_shm_ring_t *r = mem;
    size_t size = tg_shm_ring_size_for(capacity, rec_size);
    uint32_t i;

    if (size == 0 || mem == NULL || (uintptr_t)mem % TG_SHM_CACHELINE != 0) {
        return NULL;
    }
    memset(mem, 0, size);
    r->magic = TG_SHM_RING_MAGIC;
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->slot_size = rec_size + TG_SHM_CACHELINE;
    r->rec_size = rec_size;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->consumed, 0);
    atomic_init(&r->skipped, 0);
    atomic_init(&r->full, 0);
    r->stuck_head = 0;
    r->stuck_since_ms = 0;
    for (i = 0; i < capacity; i++) {
        atomic_init(tg_shm_ring_seq(r, i), i);
    }
    return r;
}


/* Lay out an empty usage ring; see ring.h. */
tg_shm_ring_t *
tg_shm_ring_init(void *mem, uint32_t capacity)
{
    return tg_shm_ring_init_for(mem, capacity, sizeof(tg_usage_rec_t));
}


/*
 * Check that <mem> of <size> bytes holds a ring of <rec_size>-byte records
 * laid out by this binary.  Any process.  Returns the ring or NULL.
 */
tg_shm_ring_t *
tg_shm_ring_attach_for(void *mem, size_t size, uint32_t rec_size)
{
    tg_shm_ring_t *r = mem;
    size_t need;

    if (mem == NULL || (uintptr_t)mem % TG_SHM_CACHELINE != 0 ||
        size < sizeof(*r)) {
        return NULL;
    }
    if (r->magic != TG_SHM_RING_MAGIC || r->rec_size != rec_size ||
        r->slot_size != rec_size + TG_SHM_CACHELINE ||
        r->mask != r->capacity - 1) {
        return NULL;
    }
    need = tg_shm_ring_size_for(r->capacity, rec_size);
    if (need == 0 || need > size) {
        return NULL;
    }
    return r;
}


/* Check a usage ring; see ring.h. */
tg_shm_ring_t *
tg_shm_ring_attach(void *mem, size_t size)
{
    return tg_shm_ring_attach_for(mem, size, sizeof(tg_usage_rec_t));
}


/*
 * Reserve the next position for the caller and store it in <*pos>.
 * Workers; bounded retries.  Returns TG_SHM_OK, or TG_SHM_FULL when the
 * slot at head still holds the previous lap or the retries ran out.
 */
int
tg_shm_ring_claim(tg_shm_ring_t *r, uint64_t *pos)
{
    uint64_t p, seq, h;
    int i;

    p = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (i = 0; i < TG_SHM_RING_RETRIES; i++) {
        _Atomic uint64_t *sq = tg_shm_ring_seq(r, (uint32_t)p & r->mask);

        /*
         * Acquire pairs with the consumer's release of this slot, so the
         * consumer's reads of the previous lap happen before our writes.
         */
        seq = atomic_load_explicit(sq, memory_order_acquire);
        if (seq == p) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &p, p + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *pos = p;
                return TG_SHM_OK;
            }
            /* Another producer took <p>; the failed CAS reloaded head. */
            continue;
        }
        if ((seq & TG_SHM_RING_BUSY) == 0 && (int64_t)(seq - p) > 0) {
            /* The slot is past <p>: our view of head is stale. */
            p = atomic_load_explicit(&r->head, memory_order_relaxed);
            continue;
        }

        /*
         * The slot holds an older lap (seq < p), or is BUSY or DEAD, which
         * may be the previous lap (full) or <p> claimed by someone else
         * (head moved on).  Only an unchanged head means full.
         */
        h = atomic_load_explicit(&r->head, memory_order_relaxed);
        if (h == p) {
            break;
        }
        p = h;
    }
    atomic_fetch_add_explicit(&r->full, 1, memory_order_relaxed);
    return TG_SHM_FULL;
}


/*
 * Slot <i>'s sequence word and body for records of <size> bytes (which is
 * r->rec_size).  The usage functions pass sizeof(tg_usage_rec_t), so that
 * after inlining the slot stride and the record copy are constants on the
 * hot path, as they were before the ring was made generic.
 */
static inline __attribute__((always_inline)) char *
tg_shm_ring_at(tg_shm_ring_t *r, uint32_t i, size_t size)
{
    return (char *)(r + 1) + (size_t)i * (size + TG_SHM_CACHELINE);
}


/* The body of commit, for <size>-byte records; see tg_shm_ring_at. */
static inline __attribute__((always_inline)) int
tg_shm_ring_commit_n(tg_shm_ring_t *r, uint64_t pos, const void *rec,
                     int32_t pid, size_t size)
{
    char *slot = tg_shm_ring_at(r, (uint32_t)pos & r->mask, size);
    _Atomic uint64_t *sq = (_Atomic uint64_t *)(void *)slot;
    uint64_t expected = pos;

    if (pid <= 0) {
        return TG_SHM_INVAL;
    }

    /*
     * Begin: take the slot from "claimed" to "being written by us".  This
     * CAS races only with the consumer's grace skip, which moves seq from
     * the same value; if the skip won, the slot may already belong to the
     * next lap, so we must not write a byte of it.  Acquire keeps the body
     * writes below after the CAS.
     */
    if (!atomic_compare_exchange_strong_explicit(
            sq, &expected, TG_SHM_RING_BUSY | ((uint64_t)(uint32_t)pid),
            memory_order_acquire, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&r->full, 1, memory_order_relaxed);
        return TG_SHM_FULL;
    }
    memcpy(slot + TG_SHM_CACHELINE, rec, size);
    atomic_store_explicit(sq, pos + 1, memory_order_release);
    return TG_SHM_OK;
}


/*
 * Write the record at <rec> (r->rec_size bytes) into the slot of position
 * <pos> from tg_shm_ring_claim() and publish it, as process <pid>.
 * Producers; never blocks.  Returns TG_SHM_OK, TG_SHM_FULL when the
 * consumer skipped <pos> meanwhile (the slot was not touched), or
 * TG_SHM_INVAL when <pid> <= 0.
 */
int
tg_shm_ring_commit_raw(tg_shm_ring_t *r, uint64_t pos, const void *rec,
                       int32_t pid)
{
    return tg_shm_ring_commit_n(r, pos, rec, pid, r->rec_size);
}


/* Commit a usage record (rec->pid is the writer); see ring.h. */
int
tg_shm_ring_commit(tg_shm_ring_t *r, uint64_t pos, const tg_usage_rec_t *rec)
{
    return tg_shm_ring_commit_n(r, pos, rec, rec->pid, sizeof(*rec));
}


/*
 * Publish a copy of the record at <rec> as process <pid> (the caller).
 * Producers; never blocks.  Returns TG_SHM_OK, TG_SHM_FULL (spool or drop
 * the record) or TG_SHM_INVAL.
 */
int
tg_shm_ring_publish_raw(tg_shm_ring_t *r, const void *rec, int32_t pid)
{
    uint64_t pos;
    int rc;

    /* Check before claiming: a claimed position must be committed. */
    if (pid <= 0) {
        return TG_SHM_INVAL;
    }
    rc = tg_shm_ring_claim(r, &pos);
    if (rc != TG_SHM_OK) {
        return rc;
    }
    return tg_shm_ring_commit_n(r, pos, rec, pid, r->rec_size);
}


/*
 * Publish a copy of <rec> (rec->pid is the caller's pid).  Workers; never
 * blocks.  Returns TG_SHM_OK, TG_SHM_FULL (spool the record) or
 * TG_SHM_INVAL.
 */
int
tg_shm_ring_publish(tg_shm_ring_t *r, const tg_usage_rec_t *rec)
{
    uint64_t pos;
    int rc;

    if (rec->pid <= 0) {
        return TG_SHM_INVAL;
    }
    rc = tg_shm_ring_claim(r, &pos);
    if (rc != TG_SHM_OK) {
        return rc;
    }
    return tg_shm_ring_commit_n(r, pos, rec, rec->pid, sizeof(*rec));
}


/* The body of consume, for <size>-byte records; see tg_shm_ring_at. */
static inline __attribute__((always_inline)) int
tg_shm_ring_consume_n(tg_shm_ring_t *r, void *out, uint64_t *pos, size_t size)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    char *slot = tg_shm_ring_at(r, (uint32_t)t & r->mask, size);
    _Atomic uint64_t *sq = (_Atomic uint64_t *)(void *)slot;
    uint64_t seq, n;

    /* Acquire pairs with the producer's release after its body copy. */
    seq = atomic_load_explicit(sq, memory_order_acquire);
    if (seq != t + 1) {
        return TG_SHM_MISS;
    }
    memcpy(out, slot + TG_SHM_CACHELINE, size);
    atomic_store_explicit(sq, t + r->capacity, memory_order_release);
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    n = atomic_load_explicit(&r->consumed, memory_order_relaxed);
    atomic_store_explicit(&r->consumed, n + 1, memory_order_relaxed);
    if (pos != NULL) {
        *pos = t;
    }
    return TG_SHM_OK;
}


/*
 * Copy the oldest published record into <out> (r->rec_size bytes) and its
 * position into <*pos> when <pos> is not NULL.  The single consumer only.
 * Returns TG_SHM_OK, or TG_SHM_MISS when there is none yet.
 */
int
tg_shm_ring_consume_raw(tg_shm_ring_t *r, void *out, uint64_t *pos)
{
    return tg_shm_ring_consume_n(r, out, pos, r->rec_size);
}


/* See ring.h. */
int
tg_shm_ring_peek_raw(tg_shm_ring_t *r, uint32_t k, void *out, uint64_t *pos)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed) + k;
    char *slot;
    uint64_t seq;

    if (k >= r->capacity) {
        return TG_SHM_MISS;
    }
    slot = tg_shm_ring_at(r, (uint32_t)t & r->mask, r->rec_size);
    /* Acquire pairs with the producer's release after its body copy. */
    seq = atomic_load_explicit((_Atomic uint64_t *)(void *)slot,
                               memory_order_acquire);
    if (seq != t + 1) {
        return TG_SHM_MISS;
    }
    memcpy(out, slot + TG_SHM_CACHELINE, r->rec_size);
    if (pos != NULL) {
        *pos = t;
    }
    return TG_SHM_OK;
}


/* See ring.h. */
void
tg_shm_ring_release(tg_shm_ring_t *r, uint32_t n)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t c;
    uint32_t i;

    /* Slot by slot, as consume does, so a consumer that dies midway
     * leaves the state tg_shm_ring_skip_stuck() repairs. */
    for (i = 0; i < n; i++, t++) {
        char *slot = tg_shm_ring_at(r, (uint32_t)t & r->mask, r->rec_size);

        atomic_store_explicit((_Atomic uint64_t *)(void *)slot, t + r->capacity,
                              memory_order_release);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    }
    c = atomic_load_explicit(&r->consumed, memory_order_relaxed);
    atomic_store_explicit(&r->consumed, c + n, memory_order_relaxed);
}


/*
 * Copy the oldest published usage record into <out>.  Admin only (the
 * single consumer).  Returns TG_SHM_OK, or TG_SHM_MISS when there is none
 * yet.
 */
int
tg_shm_ring_consume(tg_shm_ring_t *r, tg_usage_rec_t *out)
{
    return tg_shm_ring_consume_n(r, out, NULL, sizeof(*out));
}


/* Give the slot at tail <t> to the next lap unread and move tail on. */
static void
tg_shm_ring_skip(tg_shm_ring_t *r, uint64_t t)
{
    uint64_t n;

    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    n = atomic_load_explicit(&r->skipped, memory_order_relaxed);
    atomic_store_explicit(&r->skipped, n + 1, memory_order_relaxed);
}


/*
 * Skip tail slots that will never be published: dead ones at once,
 * claimed-but-not-begun ones once the grace period has passed.  Also
 * moves a tail left behind by a consumer that died.  Admin only.  Returns
 * the number of slots skipped.
 */
uint32_t
tg_shm_ring_skip_stuck(tg_shm_ring_t *r, uint64_t now_ms, uint64_t grace_ms)
{
    uint32_t i, n = 0;

    for (i = 0; i < r->capacity; i++) {
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        _Atomic uint64_t *sq = tg_shm_ring_seq(r, (uint32_t)t & r->mask);
        uint64_t seq = atomic_load_explicit(sq, memory_order_acquire);
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t expected;

        /*
         * A consumer that died between handing this slot to the next lap
         * and advancing tail left tail one behind.  Normally head <= tail
         * + capacity and, at tail, seq is below tail + capacity; either
         * being past that means the slot was already finished (its record
         * went with the dead consumer's memory), so only tail moves.  We
         * are the only consumer, so our own consume never shows us this.
         */
        if ((int64_t)(h - t) > (int64_t)r->capacity ||
            ((seq & TG_SHM_RING_BUSY) == 0 &&
             (int64_t)(seq - t) >= (int64_t)r->capacity)) {
            atomic_store_explicit(&r->tail, t + 1, memory_order_release);
            continue;
        }
        if (seq & TG_SHM_RING_BUSY) {
            if ((seq & TG_SHM_RING_DEAD) == 0) {
                /* A live writer owns it; only master may declare it dead. */
                break;
            }
            /*
             * Master marked it after the writer died, so nobody writes
             * this slot any more and seq is ours to reset.
             */
            atomic_store_explicit(sq, t + r->capacity, memory_order_release);
            tg_shm_ring_skip(r, t);
            n++;
            continue;
        }
        if (seq != t) {
            /* Published (t + 1), for consume; nothing to skip. */
            break;
        }
        if (h == t) {
            /* Empty. */
            break;
        }

        /*
         * Claimed but not begun.  The timer records the head it saw when
         * it started: every position below it had been claimed by then,
         * so once the grace period has passed such a slot has been stuck
         * for at least that long, however many holes there are.  A slot
         * at or past that head restarts the timer.
         */
        if (t >= r->stuck_head) {
            r->stuck_head = h;
            r->stuck_since_ms = now_ms;
            break;
        }
        if (now_ms < r->stuck_since_ms ||
            now_ms - r->stuck_since_ms < grace_ms) {
            break;
        }
        expected = t;
        if (!atomic_compare_exchange_strong_explicit(
                sq, &expected, t + r->capacity, memory_order_release,
                memory_order_relaxed)) {
            /* The producer began (or published) just now: look again. */
            continue;
        }
        tg_shm_ring_skip(r, t);
        n++;
    }
    return n;
}


/*
 * Mark the slot that dead process <pid> was writing, so the consumer
 * skips it.  Master only, between waitpid() and the next fork.  Returns
 * the number of slots marked.
 */
uint32_t
tg_shm_ring_reap(tg_shm_ring_t *r, int32_t pid)
{
    uint64_t busy = TG_SHM_RING_BUSY | ((uint64_t)(uint32_t)pid);
    uint32_t i, n = 0;

    if (pid <= 0) {
        return 0;
    }
    for (i = 0; i < r->capacity; i++) {
        _Atomic uint64_t *sq = tg_shm_ring_seq(r, i);
        uint64_t expected = busy;

        if (atomic_load_explicit(sq, memory_order_relaxed) == busy &&
            atomic_compare_exchange_strong_explicit(
                sq, &expected, busy | TG_SHM_RING_DEAD, memory_order_relaxed,
                memory_order_relaxed)) {
            n++;
        }
    }
    return n;
}
