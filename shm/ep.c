/*
 * shm/ep.c
 *      Endpoint health counters.
 *
 * NOTES
 *      Workers and admin; never blocks.  See shm/ep.h for the protocol.
 */
#include "shm/ep.h"

#include <string.h>

#define TG_SHM_EP_EWMA_SHIFT 3 /* weight 1/8 for a new sample */


/* See ep.h. */
size_t
tg_shm_ep_size(uint32_t capacity)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)capacity, sizeof(tg_shm_ep_t), &n)) {
        return 0;
    }
    return n;
}


/* See ep.h. */
void
tg_shm_ep_set(tg_shm_ep_t *e, uint32_t i, const char *name, bool reset)
{
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    size_t n = strlen(name);

    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->index = i;
    memset(e->name, 0, sizeof(e->name));
    memcpy(e->name, name, n < sizeof(e->name) - 1 ? n : sizeof(e->name) - 1);
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
    if (reset) {
        atomic_store(&e->inflight, 0);
        atomic_store(&e->requests, 0);
        atomic_store(&e->failures, 0);
        atomic_store(&e->consecutive, 0);
        atomic_store(&e->latency_ewma_us, 0);
        atomic_store(&e->last_error_ms, 0);
        atomic_store(&e->last_error, 0);
    }
}


/* See ep.h. */
size_t
tg_shm_ep_mine_size(uint32_t capacity, uint32_t nprocs)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)capacity * nprocs, sizeof(uint32_t),
                               &n)) {
        return 0;
    }
    return n;
}


/* Subtract <n> from <v>, never below zero. */
static void
tg_shm_ep_sub(_Atomic uint64_t *v, uint64_t n)
{
    uint64_t old = atomic_load_explicit(v, memory_order_relaxed);

    while (old > 0 && !atomic_compare_exchange_weak_explicit(
                          v, &old, old > n ? old - n : 0, memory_order_relaxed,
                          memory_order_relaxed)) {
    }
}


/* See ep.h. */
void
tg_shm_ep_start(tg_shm_ep_t *e, _Atomic uint32_t *mine)
{
    atomic_fetch_add_explicit(mine, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->requests, 1, memory_order_relaxed);
}


/* See ep.h. */
void
tg_shm_ep_finish(tg_shm_ep_t *e, _Atomic uint32_t *mine, bool ok,
                 uint64_t latency_us, uint32_t error, uint64_t now_ms)
{
    uint64_t old, new;

    /* Never below zero: admin may have reset the entry meanwhile. */
    tg_shm_ep_sub(&e->inflight, 1);
    if (atomic_load_explicit(mine, memory_order_relaxed) > 0) {
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
    }
    if (latency_us > 0) {
        old = atomic_load_explicit(&e->latency_ewma_us, memory_order_relaxed);
        do {
            new = (old == 0) ? latency_us
                             : old - (old >> TG_SHM_EP_EWMA_SHIFT) +
                                   (latency_us >> TG_SHM_EP_EWMA_SHIFT);
        } while (!atomic_compare_exchange_weak_explicit(
            &e->latency_ewma_us, &old, new, memory_order_relaxed,
            memory_order_relaxed));
    }
    if (ok) {
        atomic_store_explicit(&e->consecutive, 0, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&e->failures, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->consecutive, 1, memory_order_relaxed);
    atomic_store_explicit(&e->last_error, error, memory_order_relaxed);
    atomic_store_explicit(&e->last_error_ms, now_ms, memory_order_relaxed);
}


/* See ep.h. */
void
tg_shm_ep_reclaim(void *base, uint32_t capacity, _Atomic uint32_t *mine)
{
    uint32_t i, n;

    for (i = 0; i < capacity; i++) {
        n = atomic_exchange_explicit(&mine[i], 0, memory_order_relaxed);
        if (n > 0) {
            tg_shm_ep_sub(&tg_shm_ep_get(base, i)->inflight, n);
        }
    }
}
