/*
 * shm/seqlock.h
 *      The seqlock protocol of the shared tables, written once.
 *
 * NOTES
 *      One writer per slot (admin, the single writer of keys, users and
 *      models), many readers (workers).  The writer makes <seq> odd,
 *      fences, stores the data with relaxed atomic stores, then makes
 *      <seq> even again with a release store.  A reader loads <seq> with
 *      acquire order; when it is even it copies the data with relaxed
 *      atomic loads, fences (acquire), and loads <seq> again: equal means
 *      the copy is consistent.  Readers retry a bounded number of times
 *      and then fail closed (TG_SHM_BUSY).  A writer that dies mid-write
 *      leaves <seq> odd: readers fail closed on that slot until the next
 *      admin repairs it (the next write starts from the odd value and
 *      ends even).  Used by shm/keys.c (keys, models) and shm/users.c.
 */
#ifndef TG_SHM_SEQLOCK_H
#define TG_SHM_SEQLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Relaxed atomic word loads and stores of the data under a seqlock (a
 * torn value is possible only across words, which the <seq> check
 * catches). */
static inline uint32_t
tg_shm_seq_load32(const void *p)
{
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}


static inline uint64_t
tg_shm_seq_load64(const void *p)
{
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
}


static inline void
tg_shm_seq_store32(void *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED);
}


static inline void
tg_shm_seq_store64(void *p, uint64_t v)
{
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}


/* Spin politely between two read attempts. */
static inline void
tg_shm_seq_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}


/*
 * Open a write on <seq>: make it odd, then fence so that no data store
 * after this becomes visible before the odd value.  A slot left odd by a
 * dead writer stays odd.  Returns the odd value for tg_shm_seq_write_end.
 */
static inline uint32_t
tg_shm_seq_write_begin(_Atomic uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed) | 1u;

    atomic_store_explicit(seq, s, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    return s;
}


/* Close a write opened at <odd>: the release store publishes the data
 * stores before it. */
static inline void
tg_shm_seq_write_end(_Atomic uint32_t *seq, uint32_t odd)
{
    atomic_store_explicit(seq, odd + 1, memory_order_release);
}


/* Start a read: true with the even value in *<s> when the slot is not
 * being written; false (relax and retry) when it is. */
static inline bool
tg_shm_seq_read_begin(const _Atomic uint32_t *seq, uint32_t *s)
{
    *s = atomic_load_explicit((_Atomic uint32_t *)seq, memory_order_acquire);
    return (*s & 1u) == 0;
}


/* End a read started at <s>: true when the copy made since is
 * consistent; false (relax and retry) when a write intervened. */
static inline bool
tg_shm_seq_read_end(const _Atomic uint32_t *seq, uint32_t s)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit((_Atomic uint32_t *)seq,
                                memory_order_relaxed) == s;
}

#endif /* TG_SHM_SEQLOCK_H */
