/*
 * shm/ep.h
 *      Endpoint health counters, one entry per configured endpoint.
 *
 * NOTES
 *      Written by: admin (the name, under the entry's seqlock, when it
 *      publishes the configuration) and workers (the counters, with atomic
 *      adds and CAS).  Read by: admin (status, metrics), workers (routing
 *      reads in-flight counts and latency).
 *      Consistency: the counters are independent atomics; a reader gets
 *      each one exactly but not a snapshot of all.  The latency EWMA is
 *      updated with a CAS loop, so concurrent samples are never lost.
 *      A worker that dies mid-request cannot decrement the in-flight counts
 *      it holds, so each worker also keeps its own count per endpoint in its
 *      own array (TG_SHM_T_EPMINE, one row per proc entry); master subtracts
 *      a dead worker's row with tg_shm_ep_reclaim when it reaps it.  The
 *      two increments are separate atomics: a worker killed between them
 *      leaves one transfer counted in one place only, and reclaim saturates
 *      at zero rather than wrap.
 *      The name line and the counter lines are separate cache lines: every
 *      request writes the counters, nobody should pay for that on a read of
 *      the name.
 */
#ifndef TG_SHM_EP_H
#define TG_SHM_EP_H

#include "shm/layout.h"

#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* seqlock over name */
    uint32_t index;                                 /* position in the config */
    char name[56]; /* endpoint name, NUL-padded */
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t inflight; /* open transfers */
    _Atomic uint64_t requests;                           /* attempts started */
    _Atomic uint64_t failures;        /* attempts that failed */
    _Atomic uint64_t consecutive;     /* failures since the last success */
    _Atomic uint64_t latency_ewma_us; /* time to response head, EWMA */
    _Atomic uint64_t last_error_ms;   /* wall clock of the last failure */
    _Atomic uint32_t last_error;      /* HTTP status, or 1000 + curl code */
    uint32_t reserved;                /* pads to the cache line */
    /* Availability: written by workers (breaker, cool-downs) and admin's
     * health checker, read by every routing decision. */
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t breaker; /* TG_EP_BREAKER_* */
    _Atomic uint32_t health;                            /* TG_EP_HEALTH_* */
    _Atomic uint64_t open_until_ms;     /* breaker open until (wall ms) */
    _Atomic uint64_t cooled_until_ms;   /* 429 retry-after / 529 cool-down */
    _Atomic uint64_t out_until_ms;      /* spend cap: out until, UINT64_MAX
                                           until an admin re-enables it */
    _Atomic int32_t probe_pid;          /* half-open probe owner, 0 none */
    _Atomic uint32_t health_ok_milli;   /* probe success rate x 1000 */
    _Atomic uint64_t health_latency_us; /* last probe's latency */
    _Atomic uint64_t health_checked_ms; /* wall clock of the last probe */
} tg_shm_ep_t;

enum {
    TG_EP_BREAKER_CLOSED = 0, /* traffic flows */
    TG_EP_BREAKER_OPEN = 1,   /* no traffic until open_until_ms */
    TG_EP_BREAKER_HALF = 2    /* one probe request decides */
};

enum {
    TG_EP_HEALTH_UNKNOWN = 0,  /* never probed, or checks off */
    TG_EP_HEALTH_HEALTHY = 1,  /* probes succeed */
    TG_EP_HEALTH_DEGRADED = 2, /* answering, slowly or with some errors */
    TG_EP_HEALTH_UNHEALTHY = 3 /* failing its probes: not routed to */
};

_Static_assert(sizeof(tg_shm_ep_t) == 192, "tg_shm_ep_t is three lines");
_Static_assert(offsetof(tg_shm_ep_t, inflight) == 64, "counters line");
_Static_assert(offsetof(tg_shm_ep_t, breaker) == 128, "availability line");

/*
 * Whether <e> may take a request at wall time <now_ms>: breaker closed (or
 * open past its deadline, when one probe may go), not cooling down after a
 * 429/529, not taken out by a spend cap, and not failing its health
 * checks.  Any process; reads only.
 */
static inline bool
tg_shm_ep_available(const tg_shm_ep_t *e, uint64_t now_ms)
{
    uint32_t b = atomic_load_explicit(&e->breaker, memory_order_relaxed);

    if (b == TG_EP_BREAKER_OPEN &&
        now_ms <
            atomic_load_explicit(&e->open_until_ms, memory_order_relaxed)) {
        return false;
    }
    if (b == TG_EP_BREAKER_HALF &&
        atomic_load_explicit(&e->probe_pid, memory_order_relaxed) != 0) {
        return false;
    }
    return now_ms >= atomic_load_explicit(&e->cooled_until_ms,
                                          memory_order_relaxed) &&
           now_ms >=
               atomic_load_explicit(&e->out_until_ms, memory_order_relaxed) &&
           atomic_load_explicit(&e->health, memory_order_relaxed) !=
               TG_EP_HEALTH_UNHEALTHY;
}

/* Bytes for <capacity> entries; 0 on overflow. */
size_t tg_shm_ep_size(uint32_t capacity);

/* Entry <i> of the table at <base>. */
static inline tg_shm_ep_t *
tg_shm_ep_get(void *base, uint32_t i)
{
    return (tg_shm_ep_t *)base + i;
}

/* Admin: publish the name of entry <e> (index <i>); counters are reset
 * when <reset>. */
void tg_shm_ep_set(tg_shm_ep_t *e, uint32_t i, const char *name, bool reset);

/* Bytes of the per-proc in-flight rows: <nprocs> x <capacity> counters. */
size_t tg_shm_ep_mine_size(uint32_t capacity, uint32_t nprocs);

/* Worker: an attempt on <e> starts; <mine> is this worker's counter for
 * the same endpoint. */
void tg_shm_ep_start(tg_shm_ep_t *e, _Atomic uint32_t *mine);

/*
 * Worker: an attempt on <e> ended.  <ok> says whether the endpoint did its
 * job (a response head with a status that is not the endpoint's failure);
 * <latency_us> is the time to the response head (0 when none);
 * <error> is the HTTP status or 1000 + curl code of a failure.
 */
void tg_shm_ep_finish(tg_shm_ep_t *e, _Atomic uint32_t *mine, bool ok,
                      uint64_t latency_us, uint32_t error, uint64_t now_ms);

/* Master, after reaping a worker: take its row <mine> (<capacity>
 * counters) off the table at <base> and zero it. */
void tg_shm_ep_reclaim(void *base, uint32_t capacity, _Atomic uint32_t *mine);

#endif /* TG_SHM_EP_H */
