/*
 * shm/rl.h
 *      Per-key rate-limit state (RPM by GCRA, TPM by a one-minute window,
 *      concurrency by crash-safe leases), shared by all workers.
 *
 * NOTES
 *      Table.  One tg_shm_rl_t per key slot, at the same index as the key
 *      table (TG_SHM_T_RL next to TG_SHM_T_KEYS).  The limits themselves
 *      (rpm, burst, tpm, concurrency) live in the key entry; the worker
 *      copies them out of its seqlock read and passes them to the functions
 *      below, so this table holds only counters.
 *
 *      Who writes, who reads.  Workers write every field on every request of
 *      the key and read them to decide; admin reads them for display and
 *      writes them only through tg_shm_rl_reset() when a slot is given to a
 *      different key; master writes them only through
 *      tg_shm_rl_leases_reclaim() after it reaps a worker.
 *
 *      Protocol: atomics only, no lock anywhere.  Each of the three limits
 *      keeps its whole state in ONE 64-bit word, so every decision is a
 *      single compare-and-swap on that word and a process that dies at any
 *      instruction leaves each word either before or after its update, never
 *      half-way:
 *        tat   GCRA theoretical arrival time, CAS loop in rpm_check;
 *        tpm   (minute << 32) | tokens, CAS loop in tpm_charge;
 *        conc  (epoch << 32) | inflight, CAS loop in acquire/release/reset.
 *      The atomics must be lock-free (and therefore address-free) to work
 *      between processes; the _Static_asserts below check it.
 *
 *      Why conc packs epoch and inflight into one word.  The design names
 *      two 32-bit fields; they sit exactly where those fields would be on a
 *      little-endian machine (inflight at offset 16, epoch at 20), but they
 *      are one atomic word, because admin's reset (epoch + 1, inflight = 0)
 *      racing with a worker's acquire must not leave an increment that the
 *      matching release then refuses as stale.  With one word, an acquire
 *      records the epoch it incremented under, and a release decrements
 *      only under that same epoch, so releases of the old key never touch
 *      the new key's count, and no count leaks across a reset.
 *
 *      RPM (GCRA, virtual scheduling).  T = ceil(60e6 / rpm) microseconds
 *      (rounded up so the rate never exceeds rpm; rpm above 60,000,000 is
 *      one per microsecond), tau = T * (burst - 1), burst 0 counts as 1.
 *      A request at <now> is admitted iff max(tat, now) - now <= tau, and
 *      then tat = max(tat, now) + T.  Bound, which the unit tests check:
 *      from a fresh (zero or reset) state, the requests admitted at times
 *      t1 <= ... <= tn (each the <now> passed to rpm_check) satisfy
 *          n <= 1 + floor((tn - t1 + tau) / T)
 *      whatever the number of processes and however their calls
 *      interleave, because every admission advances tat by at least T from
 *      the first admission's time.  Conversely, while some process keeps
 *      asking (never a gap longer than tau + T without a call, so no
 *      capacity goes unused), n is at least that bound minus one.
 *      Times are CLOCK_MONOTONIC microseconds, one clock for the whole
 *      system, so values from different processes compare.  A caller whose
 *      <now> is older than another's (it read the clock, then lost the CPU)
 *      is judged at its own older time, which can only refuse it.
 *
 *      TPM (fixed one-minute window).  The window is minute number
 *      now_us / 60e6 of the monotonic clock.  tpm_check refuses when the
 *      tokens charged in the current minute reached the limit; tpm_charge
 *      adds a finished request's actual tokens, rolling the window to the
 *      new minute first.  A fixed window is one word and one CAS, exact
 *      within its minute, and needs no clock arithmetic beyond a division;
 *      its known costs are that a key can spend up to twice its limit
 *      across a minute boundary, and that requests admitted together before
 *      any of them finishes all pass the check (token counts are unknown
 *      until the response ends), so the overshoot is bounded by what is in
 *      flight, which the concurrency limit bounds in turn.
 *
 *      Concurrency (leases).  Each worker owns an array of leases
 *      (tg_shm_lease_t) in the TG_SHM_T_LEASES table, one array per process
 *      slot; a lease names the rl slot and epoch it holds.  acquire writes
 *      the lease before incrementing inflight; release decrements before
 *      clearing the lease; master calls tg_shm_rl_leases_reclaim() on a
 *      dead worker's array, which releases whatever is still recorded.
 *      Limit 0 means unlimited, but inflight is still counted: admin shows
 *      it, and when a key's limit changes from 0 to N the count is already
 *      right, and the releases of requests admitted under 0 match their
 *      increments.
 *
 *      What a process that dies mid-update leaves.  tat and tpm: nothing to
 *      repair (one word each; the update happened or did not).  conc: a
 *      worker runs one acquire or release at a time, and each is ordered
 *      so that a kill can err only towards releasing too much, never
 *      towards leaking a slot:
 *        - killed in acquire after the lease store and before its CAS
 *          lands: reclaim decrements a count that was never incremented;
 *        - killed in release after its CAS and before it clears the
 *          lease: reclaim decrements a second time.
 *      Either way the key's inflight reads one below the truth (at most
 *      one per dead worker), so the key may run one request above its
 *      limit until its count next falls to zero: a decrement stops at
 *      zero, which absorbs the extra one.  Each window is one or two
 *      instructions, but the release window opens right after a locked
 *      CAS, which is where a CPU tends to take the interrupt that delivers
 *      SIGKILL: the unit test, killing a process that does nothing but
 *      acquire and release, lands in a window about one kill in three,
 *      mostly that one.  A real worker spends a tiny share of its time
 *      there.  A kill anywhere else is repaired exactly.  Admin dying in
 *      reset leaves the old or the new epoch, both consistent.
 *
 *      Who calls what: workers call the check, charge, acquire and release
 *      functions (never block, no syscall); admin calls tg_shm_rl_reset();
 *      master sizes the tables, calls tg_shm_rl_init() on fresh memory and
 *      tg_shm_rl_leases_reclaim() when it reaps a worker.  A worker checks
 *      in the order tpm_check (reads only), conc_acquire (undone by
 *      release), rpm_check (charges the request, cannot be undone), and
 *      releases the lease when rpm_check refuses, so a refused request
 *      spends nothing.
 */
#ifndef TG_SHM_RL_H
#define TG_SHM_RL_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_RL_MINUTE_US 60000000ull /* one TPM window, microseconds */

/*
 * One key's counters, one cache line.  Every request of a key updates
 * this line from whichever worker serves it, so the line bounces between
 * cores; aligning it to 64 bytes keeps two busy keys from sharing (and
 * bouncing) one line, and keeping all of a key's counters in the same line
 * makes a request touch one line, not three.
 */
typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t tat; /* GCRA, monotonic us */
    _Atomic uint64_t tpm;  /* minute << 32 | tokens (saturating) */
    _Atomic uint64_t conc; /* epoch << 32 | inflight, see NOTES */
    uint8_t reserved[40];  /* pads to one line, zero */
} tg_shm_rl_t;

_Static_assert(sizeof(tg_shm_rl_t) == 64, "tg_shm_rl_t is one cache line");
_Static_assert(alignof(tg_shm_rl_t) == TG_SHM_CACHELINE, "rl alignment");
_Static_assert(offsetof(tg_shm_rl_t, tat) == 0, "rl layout: tat");
_Static_assert(offsetof(tg_shm_rl_t, tpm) == 8, "rl layout: tpm");
_Static_assert(offsetof(tg_shm_rl_t, conc) == 16, "rl layout: conc");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to work between processes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "32-bit atomics must be lock-free to work between processes");

/*
 * One held concurrency slot.  Written only by the worker that owns the
 * array (and by master once that worker is dead); zero-filled memory is a
 * free lease.
 */
typedef struct {
    _Atomic uint32_t slot_plus1; /* 0 = free, else rl index + 1 */
    uint32_t epoch;              /* conc epoch the slot was taken under */
} tg_shm_lease_t;

_Static_assert(sizeof(tg_shm_lease_t) == 8, "tg_shm_lease_t is 8 bytes");
_Static_assert(offsetof(tg_shm_lease_t, epoch) == 4, "lease layout: epoch");


/* GCRA emission interval for <rpm> (> 0): ceil(60e6 / rpm) microseconds. */
static inline uint64_t
tg_shm_rl_interval_us(uint32_t rpm)
{
    return (60000000ull + rpm - 1) / rpm;
}


/* Requests of this key in flight, for display (any process). */
static inline uint32_t
tg_shm_rl_inflight(tg_shm_rl_t *rl)
{
    return (uint32_t)atomic_load_explicit(&rl->conc, memory_order_relaxed);
}


/* The slot's epoch, bumped by every tg_shm_rl_reset() (any process). */
static inline uint32_t
tg_shm_rl_epoch(tg_shm_rl_t *rl)
{
    return (uint32_t)(atomic_load_explicit(&rl->conc, memory_order_relaxed) >>
                      32);
}


/* Bytes for a table of <capacity> entries; 0 when it overflows size_t. */
size_t tg_shm_rl_size(uint32_t capacity);

/*
 * Zero <capacity> entries at <mem> (64-byte aligned, tg_shm_rl_size()
 * bytes, caller-owned) and return them as an array, or NULL when <mem> is
 * misaligned.  Master only, before any worker runs.
 */
tg_shm_rl_t *tg_shm_rl_init(void *mem, uint32_t capacity);

/*
 * Give <rl> a fresh state for a new key: clear RPM and TPM, set inflight
 * to 0 and bump the epoch so the old key's releases leave the new count
 * alone.  Admin only, when it assigns the key slot to a different key.
 */
void tg_shm_rl_reset(tg_shm_rl_t *rl);

/*
 * RPM check by GCRA (see NOTES) for a request at <now_us> (monotonic
 * microseconds) against <rpm> per minute with <burst> back-to-back.
 * Returns TG_SHM_OK when admitted (tat advanced: the request is charged),
 * or TG_SHM_LIMIT with the wait until it would be admitted in
 * *<retry_after_us> (0 on OK; <retry_after_us> may be NULL).  <rpm> 0 is
 * unlimited and touches nothing.  Worker; lock-free, never blocks.
 */
int tg_shm_rl_rpm_check(tg_shm_rl_t *rl, uint32_t rpm, uint32_t burst,
                        uint64_t now_us, uint64_t *retry_after_us);

/*
 * TPM check: TG_SHM_LIMIT when the tokens charged in the minute of
 * <now_us> already reached <tpm>, with the time to the next minute in
 * *<retry_after_us> (may be NULL); otherwise TG_SHM_OK.  Reads only.
 * <tpm> 0 is unlimited.  Worker; never blocks.
 */
int tg_shm_rl_tpm_check(tg_shm_rl_t *rl, uint32_t tpm, uint64_t now_us,
                        uint64_t *retry_after_us);

/*
 * Charge <tokens> used by a request that finished at <now_us> to the
 * minute window, rolling it when the minute changed.  The count saturates
 * at UINT32_MAX.  A charge older than the window (a stale <now_us>) goes
 * to the current window: it counts against the limit rather than vanish.
 * Worker; lock-free, never blocks.
 */
void tg_shm_rl_tpm_charge(tg_shm_rl_t *rl, uint64_t tokens, uint64_t now_us);

/* Bytes for one worker's lease array of <per_proc>, padded to 64 bytes. */
size_t tg_shm_rl_leases_stride(uint32_t per_proc);

/*
 * Bytes for <nprocs> lease arrays of <per_proc> leases each, one per
 * process slot; 0 when it overflows size_t.  Zeroed memory is all free.
 */
size_t tg_shm_rl_leases_size(uint32_t per_proc, uint32_t nprocs);

/*
 * The lease array of process slot <proc_idx> in the lease table at
 * <leases_base>.  The caller checks <proc_idx> against nprocs.
 */
tg_shm_lease_t *tg_shm_rl_leases_of(void *leases_base, uint32_t per_proc,
                                    uint32_t proc_idx);

/*
 * Index of a free lease in <leases> (<n> entries), searching from <hint>
 * and wrapping, or -1 when all are held.  Owner worker only.
 */
int tg_shm_rl_lease_find_free(tg_shm_lease_t *leases, uint32_t n,
                              uint32_t hint);

/*
 * Take one concurrency slot of key slot <idx> in <table> under <limit>
 * (0 = unlimited, still counted), recording it in <lease>, which must be
 * free and in the caller's own lease array.  Returns TG_SHM_OK (lease
 * held, inflight incremented), TG_SHM_LIMIT (nothing held, lease free) or
 * TG_SHM_INVAL (<lease> already held).  Worker; lock-free, never blocks.
 */
int tg_shm_rl_conc_acquire(tg_shm_rl_t *table, uint32_t idx, uint32_t limit,
                           tg_shm_lease_t *lease);

/*
 * Give back the slot recorded in <lease> and clear it.  Idempotent: a free
 * lease is a no-op, inflight never goes below zero, and a lease taken
 * before the slot was reset leaves the new key's count alone.  Worker
 * (its own leases); lock-free, never blocks.
 */
void tg_shm_rl_conc_release(tg_shm_rl_t *table, tg_shm_lease_t *lease);

/*
 * Release every lease still held in <leases> (<n> entries) of a dead
 * process, against <table> of <capacity> entries; a lease naming a slot
 * beyond <capacity> is cleared without touching the table.  Returns the
 * number of held leases found.  Master only, after waitpid() reaped the
 * owner and before the slot's next worker is forked.
 */
uint32_t tg_shm_rl_leases_reclaim(tg_shm_rl_t *table, uint32_t capacity,
                                  tg_shm_lease_t *leases, uint32_t n);

#endif /* TG_SHM_RL_H */
