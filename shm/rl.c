/*
 * shm/rl.c
 *      Per-key rate limits in shared memory: GCRA for RPM, a fixed minute
 *      window for TPM, leases for concurrency.
 *
 * NOTES
 *      Runs in workers (checks, charges, acquire, release), admin (reset)
 *      and master (init, reclaim).  No lock: every state change is one CAS
 *      on one 64-bit word, retried while another process changed the word
 *      in between (shm/rl.h explains the protocol and the crash windows).
 *
 *      Memory order.  tat and tpm publish nothing but themselves, so their
 *      loads and CASes are relaxed: atomicity, not ordering, is what makes
 *      the counts exact.  The concurrency path orders the lease against
 *      the counter, because master reads a dead worker's leases and must
 *      never see an increment without the lease that covers it: acquire
 *      publishes slot_plus1 with a release store after writing the epoch,
 *      and increments with a release CAS after both; release clears the
 *      lease with a release store after its CAS, so the decrement is seen
 *      no later than the cleared lease; reclaim reads slot_plus1 with
 *      acquire.  (On x86 all of these compile to the same instructions as
 *      relaxed; they matter on weaker machines.)
 */
#include "shm/rl.h"

#include <stdbool.h>
#include <string.h>

#define TG_SHM_RL_LOW32 0xffffffffull


/* Bytes for a table of <capacity> entries; 0 when it overflows size_t. */
size_t
tg_shm_rl_size(uint32_t capacity)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)capacity, sizeof(tg_shm_rl_t), &n)) {
        return 0;
    }
    return n;
}


/*
 * Zero <capacity> entries at <mem>, which must be 64-byte aligned, and
 * return them as the table; NULL when <mem> is misaligned.  Master only.
 */
tg_shm_rl_t *
tg_shm_rl_init(void *mem, uint32_t capacity)
{
    if (((uintptr_t)mem & (TG_SHM_CACHELINE - 1)) != 0) {
        return NULL;
    }
    /*
     * All-zero is the fresh state of every field (tat 0 is "long ago",
     * minute 0 is a window that the first charge rolls, epoch 0), and no
     * other process maps the region yet, so plain memset is enough.
     */
    memset(mem, 0, tg_shm_rl_size(capacity));
    return mem;
}


/*
 * Fresh state for a new key in <rl>: RPM and TPM forgotten, inflight 0,
 * epoch + 1.  Admin only.
 */
void
tg_shm_rl_reset(tg_shm_rl_t *rl)
{
    uint64_t w, next;

    /*
     * Epoch and inflight change in one CAS: an acquire that raced with us
     * either landed before (its lease carries the old epoch, and its
     * release will leave the new count alone) or retries under the new
     * epoch and records that one.
     */
    w = atomic_load_explicit(&rl->conc, memory_order_relaxed);
    do {
        next = ((w >> 32) + 1) << 32;
    } while (!atomic_compare_exchange_weak_explicit(
        &rl->conc, &w, next, memory_order_relaxed, memory_order_relaxed));

    /*
     * A worker still serving the old key may advance tat or charge tokens
     * between these stores and its own CAS; the new key then starts with
     * one old request counted against it, which is harmless.
     */
    atomic_store_explicit(&rl->tat, 0, memory_order_relaxed);
    atomic_store_explicit(&rl->tpm, 0, memory_order_relaxed);
}


/*
 * GCRA admission of a request at <now_us> against <rpm>/<burst>; TG_SHM_OK
 * (charged) or TG_SHM_LIMIT with the wait in *<retry_after_us>.  Worker;
 * lock-free.
 */
int
tg_shm_rl_rpm_check(tg_shm_rl_t *rl, uint32_t rpm, uint32_t burst,
                    uint64_t now_us, uint64_t *retry_after_us)
{
    uint64_t t, tau, tat, base;

    if (retry_after_us != NULL) {
        *retry_after_us = 0;
    }
    if (rpm == 0) {
        return TG_SHM_OK;
    }
    t = tg_shm_rl_interval_us(rpm);
    /* At most 60e6 * (2^32 - 1) < 2^58: no overflow. */
    tau = t * (burst > 1 ? burst - 1 : 0);

    tat = atomic_load_explicit(&rl->tat, memory_order_relaxed);
    for (;;) {
        base = tat > now_us ? tat : now_us;
        if (base - now_us > tau) {
            /* Admitted at the first time t' with base - t' <= tau. */
            if (retry_after_us != NULL) {
                *retry_after_us = base - tau - now_us;
            }
            return TG_SHM_LIMIT;
        }
        /*
         * On failure the CAS reloads tat and the decision is taken again
         * on the new value, so two processes can never both be admitted
         * on the strength of one advance.
         */
        if (atomic_compare_exchange_weak_explicit(&rl->tat, &tat, base + t,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return TG_SHM_OK;
        }
    }
}


/*
 * TG_SHM_LIMIT when the minute of <now_us> already holds <tpm> tokens,
 * with the time to the next minute in *<retry_after_us>; else TG_SHM_OK.
 * Worker; reads only.
 */
int
tg_shm_rl_tpm_check(tg_shm_rl_t *rl, uint32_t tpm, uint64_t now_us,
                    uint64_t *retry_after_us)
{
    uint64_t w, minute;

    if (retry_after_us != NULL) {
        *retry_after_us = 0;
    }
    if (tpm == 0) {
        return TG_SHM_OK;
    }
    minute = now_us / TG_SHM_RL_MINUTE_US;
    w = atomic_load_explicit(&rl->tpm, memory_order_relaxed);
    /*
     * A window of an earlier minute counts as empty: it rolls at the next
     * charge.  A later one (another process's clock read is newer than
     * ours) is the current window, as tpm_charge treats it.
     */
    if ((w >> 32) < minute || (w & TG_SHM_RL_LOW32) < tpm) {
        return TG_SHM_OK;
    }
    if (retry_after_us != NULL) {
        *retry_after_us = ((w >> 32) + 1) * TG_SHM_RL_MINUTE_US - now_us;
    }
    return TG_SHM_LIMIT;
}


/*
 * Add <tokens> at <now_us> to the minute window, rolling it first when the
 * minute changed; saturates at UINT32_MAX.  Worker; lock-free.
 */
void
tg_shm_rl_tpm_charge(tg_shm_rl_t *rl, uint64_t tokens, uint64_t now_us)
{
    uint64_t w, next, minute, count;

    if (tokens == 0) {
        return;
    }
    minute = now_us / TG_SHM_RL_MINUTE_US;
    w = atomic_load_explicit(&rl->tpm, memory_order_relaxed);
    do {
        if ((w >> 32) < minute) {
            next = minute << 32;
            count = 0;
        } else {
            /* Same minute, or a stale <now_us>: add to the current one. */
            next = w & ~TG_SHM_RL_LOW32;
            count = w & TG_SHM_RL_LOW32;
        }
        count =
            tokens > TG_SHM_RL_LOW32 - count ? TG_SHM_RL_LOW32 : count + tokens;
        next |= count;
    } while (!atomic_compare_exchange_weak_explicit(
        &rl->tpm, &w, next, memory_order_relaxed, memory_order_relaxed));
}


/* Bytes for one lease array of <per_proc> leases, rounded up to 64. */
size_t
tg_shm_rl_leases_stride(uint32_t per_proc)
{
    /*
     * Each worker writes its own array on every request; padding it to a
     * cache line keeps the end of one worker's array and the start of the
     * next off a shared line.  Cannot overflow: 8 * 2^32 + 63 < 2^36.
     */
    return ((size_t)per_proc * sizeof(tg_shm_lease_t) + TG_SHM_CACHELINE - 1) &
           ~(size_t)(TG_SHM_CACHELINE - 1);
}


/* Bytes for <nprocs> arrays of <per_proc> leases; 0 on overflow. */
size_t
tg_shm_rl_leases_size(uint32_t per_proc, uint32_t nprocs)
{
    size_t n;

    if (__builtin_mul_overflow(tg_shm_rl_leases_stride(per_proc),
                               (size_t)nprocs, &n)) {
        return 0;
    }
    return n;
}


/* Lease array of process slot <proc_idx> within <leases_base>. */
tg_shm_lease_t *
tg_shm_rl_leases_of(void *leases_base, uint32_t per_proc, uint32_t proc_idx)
{
    return (tg_shm_lease_t *)((char *)leases_base +
                              tg_shm_rl_leases_stride(per_proc) * proc_idx);
}


/* A free lease index in <leases>[<n>] from <hint> on, or -1.  Owner only. */
int
tg_shm_rl_lease_find_free(tg_shm_lease_t *leases, uint32_t n, uint32_t hint)
{
    uint32_t i, j;

    if (n == 0 || n > INT32_MAX) {
        return -1;
    }
    if (hint >= n) {
        hint = 0;
    }
    for (i = 0; i < n; i++) {
        j = hint + i < n ? hint + i : hint + i - n;
        if (atomic_load_explicit(&leases[j].slot_plus1, memory_order_relaxed) ==
            0) {
            return (int)j;
        }
    }
    return -1;
}


/*
 * Take a concurrency slot of <table>[<idx>] under <limit> (0 = unlimited,
 * counted), recorded in the free <lease>.  TG_SHM_OK, TG_SHM_LIMIT or
 * TG_SHM_INVAL.  Worker; lock-free.
 */
int
tg_shm_rl_conc_acquire(tg_shm_rl_t *table, uint32_t idx, uint32_t limit,
                       tg_shm_lease_t *lease)
{
    tg_shm_rl_t *rl = &table[idx];
    uint32_t n, epoch;
    uint64_t w;
    bool recorded = false;

    if (idx == UINT32_MAX ||
        atomic_load_explicit(&lease->slot_plus1, memory_order_relaxed) != 0) {
        return TG_SHM_INVAL;
    }
    w = atomic_load_explicit(&rl->conc, memory_order_relaxed);
    for (;;) {
        n = (uint32_t)w;
        epoch = (uint32_t)(w >> 32);
        if ((limit != 0 && n >= limit) || n == UINT32_MAX) {
            /*
             * Refusals are checked before the lease is written, so the
             * common refusal has no crash window at all; only a refusal
             * after a lost CAS has to take the lease back.
             */
            if (recorded) {
                atomic_store_explicit(&lease->slot_plus1, 0,
                                      memory_order_relaxed);
            }
            return TG_SHM_LIMIT;
        }
        /*
         * The lease goes first: a kill between here and the CAS makes
         * reclaim release a slot never taken (self-healing), where the
         * other order would leak one forever.  The epoch is rewritten when
         * a reset slipped in, so the lease always names the epoch that the
         * CAS below increments under.
         */
        lease->epoch = epoch;
        if (!recorded) {
            atomic_store_explicit(&lease->slot_plus1, idx + 1,
                                  memory_order_release);
            recorded = true;
        }
        if (atomic_compare_exchange_weak_explicit(&rl->conc, &w, w + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed)) {
            return TG_SHM_OK;
        }
    }
}


/*
 * Give back the slot held by <lease> in <table> and clear the lease.
 * Idempotent; never below zero; ignores a lease of an earlier epoch.
 * Worker (own leases) or master (reclaim).
 */
void
tg_shm_rl_conc_release(tg_shm_rl_t *table, tg_shm_lease_t *lease)
{
    uint32_t s;
    tg_shm_rl_t *rl;
    uint64_t w;

    s = atomic_load_explicit(&lease->slot_plus1, memory_order_relaxed);
    if (s == 0) {
        return;
    }
    rl = &table[s - 1];
    w = atomic_load_explicit(&rl->conc, memory_order_relaxed);
    while ((uint32_t)(w >> 32) == lease->epoch && (uint32_t)w != 0) {
        if (atomic_compare_exchange_weak_explicit(&rl->conc, &w, w - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            break;
        }
    }
    /*
     * Cleared only after the decrement: a kill in between makes reclaim
     * decrement twice (one below the truth, self-healing at zero) rather
     * than lose the decrement for good.
     */
    atomic_store_explicit(&lease->slot_plus1, 0, memory_order_release);
}


/*
 * Release every lease held in a dead process's <leases>[<n>] against
 * <table>[<capacity>]; returns how many were held.  Master only, after
 * the owner was reaped.
 */
uint32_t
tg_shm_rl_leases_reclaim(tg_shm_rl_t *table, uint32_t capacity,
                         tg_shm_lease_t *leases, uint32_t n)
{
    uint32_t i, s, held = 0;

    for (i = 0; i < n; i++) {
        s = atomic_load_explicit(&leases[i].slot_plus1, memory_order_acquire);
        if (s == 0) {
            continue;
        }
        held++;
        if (s > capacity) {
            /* Not a slot of this table: the array was scribbled on. */
            atomic_store_explicit(&leases[i].slot_plus1, 0,
                                  memory_order_relaxed);
            continue;
        }
        tg_shm_rl_conc_release(table, &leases[i]);
    }
    return held;
}
