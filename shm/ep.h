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
 *
 *      Availability (third line).  Written by workers (the circuit breaker,
 *      cool-downs after 429/529, take-outs after a spend cap), admin (the
 *      health checker's results, an operator's re-enable) and master (the
 *      probe of a worker that died); read by every routing decision
 *      through tg_shm_ep_available() and tg_shm_ep_admit().  Each field is
 *      its own atomic; there is no lock and no seqlock, because no reader
 *      needs a snapshot of all of them, and every multi-field change is
 *      ordered so that a reader sees either the old or a safe state:
 *
 *      - Breaker (CLOSED -> OPEN -> HALF -> CLOSED or OPEN).  Whoever opens
 *        the breaker stores open_until_ms first and then moves breaker by
 *        a CAS with release order, so a reader that sees OPEN (acquire)
 *        also sees its deadline.  Only the CAS winner publishes the event,
 *        so a transition is recorded exactly once however many workers
 *        see the same failure streak.
 *      - Half-open probe.  Once open_until_ms has passed, exactly one
 *        request may go: tg_shm_ep_admit() stores probe_until_ms and then
 *        CASes probe_pid from 0 to the caller's pid; the winner moves
 *        OPEN -> HALF (its event) and its request is the probe.  The
 *        probe's verdict is a CAS on breaker from HALF to CLOSED (success)
 *        or, after storing a new open_until_ms, to OPEN (failure); then the
 *        holder clears probe_pid by a CAS from its own pid.  probe_pid is a
 *        pid, not a request: a verdict counts as the probe's only while
 *        probe_pid still holds the caller's pid.
 *      - Dead or stuck probe holders.  A worker that dies holding probe_pid
 *        is released by master when it reaps it
 *        (tg_shm_ep_release_probes, before it forks again, so no live
 *        process has that pid).  A holder that is alive but slow (an
 *        upstream that accepts and never answers) is overtaken once
 *        probe_until_ms (2 x cooldown, at least 1 s) has passed: the next
 *        admit CASes probe_pid from the old pid to its own.
 *      - Cool-downs and take-outs only ever move forward: cooled_until_ms
 *        and out_until_ms are raised by a CAS loop to the later deadline,
 *        and the event is published only by the writer that moved the
 *        endpoint from available to cooled (or out), so a 429 storm makes
 *        one event.  cool_kind says whether the cool-down came from an
 *        explicit retry-after (which a good health check leaves alone) or
 *        was a short guess (a 529, a 429 without retry-after), which it
 *        may end.  Clearing (admin re-enable, health recovery) is an
 *        exchange to 0.
 *      Transitions are published to the events ring (shm/events.h) by the
 *      process that won them.  A process that dies between a CAS and its
 *      event publish loses that event; the state itself is consistent.
 */
#ifndef TG_SHM_EP_H
#define TG_SHM_EP_H

#include "shm/events.h"
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
    _Atomic uint32_t cool_kind;       /* TG_EP_COOL_* of cooled_until_ms */
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
    _Atomic uint64_t probe_until_ms;    /* probe may be taken over after */
} tg_shm_ep_t;

enum {
    TG_EP_BREAKER_CLOSED = 0, /* traffic flows */
    TG_EP_BREAKER_OPEN = 1,   /* no traffic until open_until_ms */
    TG_EP_BREAKER_HALF = 2    /* one probe request decides */
};

/* tg_shm_ep_t.cool_kind */
enum {
    TG_EP_COOL_NONE = 0,        /* not cooled */
    TG_EP_COOL_RETRY_AFTER = 1, /* the upstream said how long (retry-after) */
    TG_EP_COOL_BRIEF = 2        /* our guess: 529, 429 without retry-after */
};

/* What one attempt proved about its endpoint (tg_shm_ep_outcome_t). */
enum {
    TG_EP_V_OK = 0,       /* answered: a success for the breaker */
    TG_EP_V_FAIL = 1,     /* transport error, timeout, 5xx, 401: failure */
    TG_EP_V_RATE = 2,     /* 429 rate limit: reachable, cool it */
    TG_EP_V_OVERLOAD = 3, /* 529 / overloaded_error: reachable, cool it */
    TG_EP_V_QUOTA = 4,    /* spend cap / quota exhausted: take it out */
    TG_EP_V_NONE = 5      /* no verdict (the client left) */
};

/* tg_shm_ep_admit() results. */
enum {
    TG_SHM_EP_DENY = 0,  /* not available now */
    TG_SHM_EP_ADMIT = 1, /* send the request */
    TG_SHM_EP_PROBE = 2  /* send it as the half-open probe */
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
_Static_assert(offsetof(tg_shm_ep_t, probe_until_ms) == 184,
               "availability line");

/*
 * Whether <e> may take a request at wall time <now_ms> if nothing better
 * is at hand: breaker closed (or open past its deadline, or half-open,
 * with the probe free or overdue: then one probe may go), not taken out
 * by a spend cap, and not failing its health checks.  A cool-down is not
 * looked at: it steers traffic to siblings (tg_shm_ep_available) but does
 * not forbid it, so a router whose every candidate is cooling down may
 * still send to the one whose cool-down ends first rather than fail the
 * request.  Any process; reads only.
 */
static inline bool
tg_shm_ep_usable(const tg_shm_ep_t *e, uint64_t now_ms)
{
    uint32_t b = atomic_load_explicit(&e->breaker, memory_order_acquire);

    if (b == TG_EP_BREAKER_OPEN &&
        now_ms <
            atomic_load_explicit(&e->open_until_ms, memory_order_relaxed)) {
        return false;
    }
    if (b != TG_EP_BREAKER_CLOSED &&
        atomic_load_explicit(&e->probe_pid, memory_order_acquire) != 0 &&
        now_ms <
            atomic_load_explicit(&e->probe_until_ms, memory_order_relaxed)) {
        return false;
    }
    return now_ms >=
               atomic_load_explicit(&e->out_until_ms, memory_order_relaxed) &&
           atomic_load_explicit(&e->health, memory_order_relaxed) !=
               TG_EP_HEALTH_UNHEALTHY;
}

/*
 * Whether <e> should take a request at wall time <now_ms>: usable (see
 * above) and not cooling down after a 429/529.  Any process; reads only.
 * A router filters with this (then, as a last resort, with
 * tg_shm_ep_usable) and calls tg_shm_ep_admit() on the endpoint it chose,
 * which is what claims a half-open probe.
 */
static inline bool
tg_shm_ep_available(const tg_shm_ep_t *e, uint64_t now_ms)
{
    return now_ms >= atomic_load_explicit(&e->cooled_until_ms,
                                          memory_order_relaxed) &&
           tg_shm_ep_usable(e, now_ms);
}

/*
 * How long, from wall time <now_ms>, until <e> may take requests again as
 * far as its deadlines go (breaker open, cooled, out): 0 when none is in
 * force.  A failing health check or a probe in flight has no deadline and
 * is not counted.  For a router that found every endpoint unavailable and
 * wants to answer with a retry-after.  Any process; reads only.
 */
static inline uint64_t
tg_shm_ep_wait_ms(const tg_shm_ep_t *e, uint64_t now_ms)
{
    uint64_t until, u;

    until = atomic_load_explicit(&e->cooled_until_ms, memory_order_relaxed);
    u = atomic_load_explicit(&e->out_until_ms, memory_order_relaxed);
    until = u > until ? u : until;
    if (atomic_load_explicit(&e->breaker, memory_order_acquire) ==
        TG_EP_BREAKER_OPEN) {
        u = atomic_load_explicit(&e->open_until_ms, memory_order_relaxed);
        until = u > until ? u : until;
    }
    return until > now_ms ? until - now_ms : 0;
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

/*
 * Worker (router): claim a request's place on <e> at wall time <now_ms>
 * as process <pid>.  Returns TG_SHM_EP_DENY when the endpoint is not
 * usable (see tg_shm_ep_usable; a cool-down is the router's to weigh, not
 * a refusal) or another process holds its probe,
 * TG_SHM_EP_ADMIT for an ordinary request (breaker closed), or
 * TG_SHM_EP_PROBE when the caller now holds the half-open probe: it must
 * send the request, mark it as the probe, and report it through
 * tg_shm_ep_probe_ok() or tg_shm_ep_end() with probe set.  <cooldown_ms>
 * is the group's breaker cooldown (a probe is overdue after twice that).
 * Publishes the half-open event to <events> (may be NULL).  Never blocks;
 * a few atomics, and CASes only when a probe is due.
 */
int tg_shm_ep_admit(tg_shm_ep_t *e, int32_t pid, uint64_t now_ms,
                    uint32_t cooldown_ms, tg_shm_ring_t *events);

/* How an attempt ended, for tg_shm_ep_end(). */
typedef struct {
    int verdict;          /* TG_EP_V_* */
    bool probe;           /* the attempt was admitted as the probe */
    uint32_t error;       /* HTTP status or 1000 + curl code; 0 on success */
    uint64_t latency_us;  /* time to the response head, 0 when none */
    uint64_t until_ms;    /* RATE/OVERLOAD: cooled until; QUOTA: out until */
    int cool_kind;        /* RATE/OVERLOAD: TG_EP_COOL_* */
    uint32_t threshold;   /* group failure_threshold; 0 = never open */
    uint32_t cooldown_ms; /* group cooldown: how long an opened breaker stays */
    int32_t pid;          /* the caller's pid */
    uint64_t now_ms;      /* wall clock */
    const char *reason;   /* short cause for events, or NULL */
} tg_shm_ep_outcome_t;

/*
 * Worker: an attempt on <e> ended as <o> says; <mine> is this worker's
 * in-flight counter for it.  Updates the counters and the latency EWMA,
 * and drives the breaker: consecutive failures (TG_EP_V_FAIL) reaching
 * o->threshold open a closed breaker for o->cooldown_ms; a probe's
 * failure reopens it, any other verdict from a probe but NONE closes it
 * (the endpoint answered); RATE/OVERLOAD cool it until o->until_ms and
 * QUOTA takes it out until o->until_ms.  Transitions go to <events> (may
 * be NULL).  Never blocks.
 */
void tg_shm_ep_end(tg_shm_ep_t *e, _Atomic uint32_t *mine,
                   const tg_shm_ep_outcome_t *o, tg_shm_ring_t *events);

/*
 * Worker: the probe request that process <pid> holds on <e> got a usable
 * response head (<status>) at <now_ms>: close the breaker now rather than
 * at the end of a long stream, and release the probe.  Returns true when
 * <pid> still held the probe (the caller then reports the attempt's end
 * with probe cleared).  Never blocks.
 */
bool tg_shm_ep_probe_ok(tg_shm_ep_t *e, int32_t pid, uint32_t status,
                        uint64_t now_ms, tg_shm_ring_t *events);

/*
 * Open <e>'s breaker for <cooldown_ms> from <now_ms> unless it is open
 * already (from closed or half-open), as process <pid> on behalf of
 * <source> (TG_EV_SRC_*), with the cause <status>/<reason> in the event.
 * Admin's health checker after a failure streak.  Returns true when this
 * call opened it.
 */
bool tg_shm_ep_trip(tg_shm_ep_t *e, uint64_t now_ms, uint32_t cooldown_ms,
                    int32_t pid, unsigned source, uint32_t status,
                    const char *reason, tg_shm_ring_t *events);

/*
 * A good health check on <e>: close an open or half-open breaker, reset
 * the failure streak and end a brief cool-down (TG_EP_COOL_BRIEF; a
 * retry-after from the upstream and a spend-cap take-out stay).  Admin.
 */
void tg_shm_ep_recover(tg_shm_ep_t *e, uint64_t now_ms, int32_t pid,
                       const char *reason, tg_shm_ring_t *events);

/*
 * An operator re-enables <e>: end any take-out and cool-down, close the
 * breaker and reset the failure streak.  Does not override a failing
 * health check (the next good one does).  Admin.  Returns the TG_EV_S_*
 * state it came from.
 */
unsigned tg_shm_ep_reenable(tg_shm_ep_t *e, uint64_t now_ms, int32_t pid,
                            const char *reason, tg_shm_ring_t *events);

/*
 * Record a health check result on <e>: <state> (TG_EP_HEALTH_*),
 * success rate <ok_milli>, <latency_us>, checked at <now_ms>; publishes a
 * health event with <status>/<reason> when the state changed.  Admin.
 */
void tg_shm_ep_health_set(tg_shm_ep_t *e, uint32_t state, uint32_t ok_milli,
                          uint64_t latency_us, uint64_t now_ms, int32_t pid,
                          uint32_t status, const char *reason,
                          tg_shm_ring_t *events);

/*
 * Master, after reaping <dead_pid>: release every probe it held in the
 * table at <base> (<capacity> entries), publishing a probe_reset event as
 * process <pid>.  Returns the number released.
 */
uint32_t tg_shm_ep_release_probes(void *base, uint32_t capacity,
                                  int32_t dead_pid, int32_t pid,
                                  uint64_t now_ms, tg_shm_ring_t *events);

#endif /* TG_SHM_EP_H */
