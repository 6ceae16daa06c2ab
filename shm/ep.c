/*
 * shm/ep.c
 *      Endpoint health counters and availability: the circuit breaker,
 *      cool-downs, spend-cap take-outs and health results.
 *
 * NOTES
 *      Workers, admin and master; never blocks.  See shm/ep.h for the
 *      protocol (which CAS decides each transition, and in which order the
 *      fields are written so that readers never see a half-made change).
 *      Every transition is published to the events ring by the process
 *      whose CAS made it.
 */
#include "shm/ep.h"

#include <stdio.h>
#include <string.h>

#define TG_SHM_EP_EWMA_SHIFT 3    /* weight 1/8 for a new sample */
#define TG_SHM_EP_PROBE_MIN  1000 /* ms before a probe may be overtaken */
#define TG_SHM_EP_NAME_TRIES 8    /* seqlock reads of the name */


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
        /* Another endpoint takes this index: none of the old one's state
         * applies to it, availability included. */
        atomic_store(&e->inflight, 0);
        atomic_store(&e->requests, 0);
        atomic_store(&e->failures, 0);
        atomic_store(&e->consecutive, 0);
        atomic_store(&e->latency_ewma_us, 0);
        atomic_store(&e->last_error_ms, 0);
        atomic_store(&e->last_error, 0);
        atomic_store(&e->cool_kind, TG_EP_COOL_NONE);
        atomic_store(&e->breaker, TG_EP_BREAKER_CLOSED);
        atomic_store(&e->health, TG_EP_HEALTH_UNKNOWN);
        atomic_store(&e->open_until_ms, 0);
        atomic_store(&e->cooled_until_ms, 0);
        atomic_store(&e->out_until_ms, 0);
        atomic_store(&e->probe_pid, 0);
        atomic_store(&e->health_ok_milli, 0);
        atomic_store(&e->health_latency_us, 0);
        atomic_store(&e->health_checked_ms, 0);
        atomic_store(&e->probe_until_ms, 0);
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
    tg_shm_ep_outcome_t o;

    memset(&o, 0, sizeof(o));
    o.verdict = ok ? TG_EP_V_OK : TG_EP_V_FAIL;
    o.error = error;
    o.latency_us = latency_us;
    o.now_ms = now_ms;
    tg_shm_ep_end(e, mine, &o, NULL);
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


/* Copy <e>'s name into <buf> (56 bytes) under its seqlock; a name that
 * keeps changing (admin republishing) comes out empty rather than torn. */
static void
tg_shm_ep_name(const tg_shm_ep_t *e, char *buf)
{
    uint32_t s1, s2;
    int i;

    for (i = 0; i < TG_SHM_EP_NAME_TRIES; i++) {
        s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (s1 & 1) {
            continue;
        }
        memcpy(buf, e->name, sizeof(e->name));
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
        if (s1 == s2) {
            buf[sizeof(e->name) - 1] = '\0';
            return;
        }
    }
    buf[0] = '\0';
}


/* Publish one event about <e>; <reason> may be NULL. */
static void
tg_shm_ep_event(tg_shm_ep_t *e, tg_shm_ring_t *events, unsigned type,
                unsigned from, unsigned to, unsigned source, int32_t pid,
                uint64_t now_ms, uint64_t until_ms, uint32_t status,
                const char *reason)
{
    tg_shm_event_t ev;
    char name[sizeof(e->name)];

    if (events == NULL) {
        return;
    }
    tg_shm_ep_name(e, name);
    tg_shm_events_fill(&ev, e->index, name, type, from, to, reason);
    ev.time_ms = now_ms;
    ev.until_ms = until_ms;
    ev.status = status;
    ev.consecutive =
        (uint32_t)atomic_load_explicit(&e->consecutive, memory_order_relaxed);
    ev.pid = pid;
    ev.source = (uint8_t)source;
    (void)tg_shm_events_publish(events, &ev);
}


/* The TG_EV_S_* name of breaker state <b>. */
static unsigned
tg_shm_ep_bstate(uint32_t b)
{
    return b == TG_EP_BREAKER_OPEN   ? TG_EV_S_OPEN
           : b == TG_EP_BREAKER_HALF ? TG_EV_S_HALF_OPEN
                                     : TG_EV_S_CLOSED;
}


/* How long a probe may run before another process may take it over. */
static uint64_t
tg_shm_ep_probe_span(uint32_t cooldown_ms)
{
    uint64_t span = 2 * (uint64_t)cooldown_ms;

    return span < TG_SHM_EP_PROBE_MIN ? TG_SHM_EP_PROBE_MIN : span;
}


/*
 * Move <e>'s breaker from <from> to OPEN until <now_ms> + <cooldown_ms>.
 * The deadline is stored before the CAS so that whoever sees OPEN sees
 * it; only the CAS winner publishes.  Returns true when this call won.
 */
static bool
tg_shm_ep_open(tg_shm_ep_t *e, uint32_t from, uint64_t now_ms,
               uint32_t cooldown_ms, unsigned source, int32_t pid,
               uint32_t status, const char *reason, tg_shm_ring_t *events)
{
    uint64_t until = now_ms + cooldown_ms;
    uint32_t expected = from;

    atomic_store_explicit(&e->open_until_ms, until, memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(
            &e->breaker, &expected, TG_EP_BREAKER_OPEN, memory_order_release,
            memory_order_relaxed)) {
        return false;
    }
    tg_shm_ep_event(e, events, TG_EV_OPENED, tg_shm_ep_bstate(from),
                    TG_EV_S_OPEN, source, pid, now_ms, until, status, reason);
    return true;
}


/* Move <e>'s breaker from <from> to CLOSED; the winner publishes. */
static bool
tg_shm_ep_close(tg_shm_ep_t *e, uint32_t from, uint64_t now_ms, unsigned source,
                int32_t pid, uint32_t status, const char *reason,
                tg_shm_ring_t *events)
{
    uint32_t expected = from;

    if (!atomic_compare_exchange_strong_explicit(
            &e->breaker, &expected, TG_EP_BREAKER_CLOSED, memory_order_release,
            memory_order_relaxed)) {
        return false;
    }
    tg_shm_ep_event(e, events, TG_EV_CLOSED, tg_shm_ep_bstate(from),
                    TG_EV_S_CLOSED, source, pid, now_ms, 0, status, reason);
    return true;
}


/* Give up the probe <pid> holds on <e>, if it still does. */
static bool
tg_shm_ep_probe_release(tg_shm_ep_t *e, int32_t pid)
{
    int32_t expected = pid;

    return atomic_compare_exchange_strong_explicit(&e->probe_pid, &expected, 0,
                                                   memory_order_release,
                                                   memory_order_relaxed);
}


/* See ep.h. */
int
tg_shm_ep_admit(tg_shm_ep_t *e, int32_t pid, uint64_t now_ms,
                uint32_t cooldown_ms, tg_shm_ring_t *events)
{
    uint32_t b = atomic_load_explicit(&e->breaker, memory_order_acquire);
    int32_t holder;
    uint32_t expected;
    char reason[64];

    if (!tg_shm_ep_usable(e, now_ms)) {
        return TG_SHM_EP_DENY;
    }
    if (b == TG_EP_BREAKER_CLOSED) {
        return TG_SHM_EP_ADMIT;
    }

    /*
     * Open past its deadline, or half-open: one probe.  The deadline is
     * stored before the CAS that takes the probe, so a process that sees
     * our pid also sees a deadline in the future and leaves the probe
     * alone.  A losing CAS has only moved some other holder's deadline
     * forward by the time between two loads, which is harmless.
     */
    holder = atomic_load_explicit(&e->probe_pid, memory_order_acquire);
    atomic_store_explicit(&e->probe_until_ms,
                          now_ms + tg_shm_ep_probe_span(cooldown_ms),
                          memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&e->probe_pid, &holder, pid,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        return TG_SHM_EP_DENY;
    }
    if (b == TG_EP_BREAKER_OPEN) {
        expected = TG_EP_BREAKER_OPEN;
        if (atomic_compare_exchange_strong_explicit(
                &e->breaker, &expected, TG_EP_BREAKER_HALF,
                memory_order_release, memory_order_relaxed)) {
            tg_shm_ep_event(e, events, TG_EV_HALF_OPEN, TG_EV_S_OPEN,
                            TG_EV_S_HALF_OPEN, TG_EV_SRC_WORKER, pid, now_ms, 0,
                            0, "cooldown over; one probe request");
            return TG_SHM_EP_PROBE;
        }
        if (expected == TG_EP_BREAKER_CLOSED) {
            /* A health check closed it meanwhile: an ordinary request. */
            tg_shm_ep_probe_release(e, pid);
            return TG_SHM_EP_ADMIT;
        }
    }
    if (holder != 0) {
        snprintf(reason, sizeof(reason), "probe of pid %d overdue; taken over",
                 (int)holder);
        tg_shm_ep_event(e, events, TG_EV_HALF_OPEN, TG_EV_S_HALF_OPEN,
                        TG_EV_S_HALF_OPEN, TG_EV_SRC_WORKER, pid, now_ms, 0, 0,
                        reason);
    }
    return TG_SHM_EP_PROBE;
}


/*
 * Raise <*until> to <value> (never lower it).  Returns the value it had;
 * <*moved> says whether this call raised it.
 */
static uint64_t
tg_shm_ep_raise(_Atomic uint64_t *until, uint64_t value, bool *moved)
{
    uint64_t old = atomic_load_explicit(until, memory_order_relaxed);

    *moved = false;
    while (old < value) {
        if (atomic_compare_exchange_weak_explicit(until, &old, value,
                                                  memory_order_release,
                                                  memory_order_relaxed)) {
            *moved = true;
            break;
        }
    }
    return old;
}


/* Cool <e> or take it out as <o> says, publishing when it was available. */
static void
tg_shm_ep_hold(tg_shm_ep_t *e, const tg_shm_ep_outcome_t *o,
               tg_shm_ring_t *events)
{
    bool moved;
    uint64_t old;

    if (o->verdict == TG_EP_V_QUOTA) {
        old = tg_shm_ep_raise(&e->out_until_ms, o->until_ms, &moved);
        if (moved && old <= o->now_ms) {
            tg_shm_ep_event(e, events, TG_EV_OUT, TG_EV_S_AVAILABLE,
                            TG_EV_S_OUT, TG_EV_SRC_WORKER, o->pid, o->now_ms,
                            o->until_ms, o->error, o->reason);
        }
        return;
    }
    old = tg_shm_ep_raise(&e->cooled_until_ms, o->until_ms, &moved);
    if (!moved) {
        return;
    }
    /* The kind follows the deadline that is now in force. */
    atomic_store_explicit(&e->cool_kind, (uint32_t)o->cool_kind,
                          memory_order_relaxed);
    if (old <= o->now_ms) {
        tg_shm_ep_event(e, events, TG_EV_COOLED, TG_EV_S_AVAILABLE,
                        TG_EV_S_COOLED, TG_EV_SRC_WORKER, o->pid, o->now_ms,
                        o->until_ms, o->error, o->reason);
    }
}


/* Fold <latency_us> into <e>'s EWMA; concurrent samples are never lost. */
static void
tg_shm_ep_latency(tg_shm_ep_t *e, uint64_t latency_us)
{
    uint64_t old, new;

    old = atomic_load_explicit(&e->latency_ewma_us, memory_order_relaxed);
    do {
        new = (old == 0) ? latency_us
                         : old - (old >> TG_SHM_EP_EWMA_SHIFT) +
                               (latency_us >> TG_SHM_EP_EWMA_SHIFT);
    } while (!atomic_compare_exchange_weak_explicit(&e->latency_ewma_us, &old,
                                                    new, memory_order_relaxed,
                                                    memory_order_relaxed));
}


/* See ep.h. */
void
tg_shm_ep_end(tg_shm_ep_t *e, _Atomic uint32_t *mine,
              const tg_shm_ep_outcome_t *o, tg_shm_ring_t *events)
{
    bool probe;
    uint64_t n;

    /* Never below zero: admin may have reset the entry meanwhile. */
    tg_shm_ep_sub(&e->inflight, 1);
    if (mine != NULL && atomic_load_explicit(mine, memory_order_relaxed) > 0) {
        atomic_fetch_sub_explicit(mine, 1, memory_order_relaxed);
    }
    if (o->latency_us > 0) {
        tg_shm_ep_latency(e, o->latency_us);
    }

    /* The verdict is the probe's only while we still hold it: it may have
     * been overtaken, or released by a health check's close and taken
     * again by someone else. */
    probe = o->probe && o->pid > 0 &&
            atomic_load_explicit(&e->probe_pid, memory_order_acquire) == o->pid;
    if (o->verdict == TG_EP_V_NONE) {
        if (probe) {
            /* The client left: no verdict; the next request probes. */
            tg_shm_ep_probe_release(e, o->pid);
        }
        return;
    }
    if (o->verdict != TG_EP_V_OK) {
        atomic_fetch_add_explicit(&e->failures, 1, memory_order_relaxed);
        atomic_store_explicit(&e->last_error, o->error, memory_order_relaxed);
        atomic_store_explicit(&e->last_error_ms, o->now_ms,
                              memory_order_relaxed);
    }
    if (o->verdict != TG_EP_V_FAIL) {
        /* It answered: a rate limit or a spend cap says nothing about the
         * breaker's question, which is whether it can be reached. */
        atomic_store_explicit(&e->consecutive, 0, memory_order_relaxed);
        if (probe) {
            tg_shm_ep_close(e, TG_EP_BREAKER_HALF, o->now_ms, TG_EV_SRC_WORKER,
                            o->pid, o->error, "probe request answered", events);
            tg_shm_ep_probe_release(e, o->pid);
        }
        if (o->verdict != TG_EP_V_OK && o->until_ms > o->now_ms) {
            tg_shm_ep_hold(e, o, events);
        }
        return;
    }
    n = atomic_fetch_add_explicit(&e->consecutive, 1, memory_order_relaxed) + 1;
    if (probe) {
        tg_shm_ep_open(e, TG_EP_BREAKER_HALF, o->now_ms, o->cooldown_ms,
                       TG_EV_SRC_WORKER, o->pid, o->error,
                       o->reason ? o->reason : "probe request failed", events);
        tg_shm_ep_probe_release(e, o->pid);
        return;
    }
    if (o->threshold > 0 && n >= o->threshold &&
        atomic_load_explicit(&e->breaker, memory_order_relaxed) ==
            TG_EP_BREAKER_CLOSED) {
        tg_shm_ep_open(e, TG_EP_BREAKER_CLOSED, o->now_ms, o->cooldown_ms,
                       TG_EV_SRC_WORKER, o->pid, o->error, o->reason, events);
    }
}


/* See ep.h. */
bool
tg_shm_ep_probe_ok(tg_shm_ep_t *e, int32_t pid, uint32_t status,
                   uint64_t now_ms, tg_shm_ring_t *events)
{
    if (pid <= 0 ||
        atomic_load_explicit(&e->probe_pid, memory_order_acquire) != pid) {
        return false;
    }
    atomic_store_explicit(&e->consecutive, 0, memory_order_relaxed);
    tg_shm_ep_close(e, TG_EP_BREAKER_HALF, now_ms, TG_EV_SRC_WORKER, pid,
                    status, "probe request answered", events);
    tg_shm_ep_probe_release(e, pid);
    return true;
}


/* See ep.h. */
bool
tg_shm_ep_trip(tg_shm_ep_t *e, uint64_t now_ms, uint32_t cooldown_ms,
               int32_t pid, unsigned source, uint32_t status,
               const char *reason, tg_shm_ring_t *events)
{
    uint32_t b = atomic_load_explicit(&e->breaker, memory_order_relaxed);

    if (b == TG_EP_BREAKER_OPEN) {
        return false;
    }
    return tg_shm_ep_open(e, b, now_ms, cooldown_ms, source, pid, status,
                          reason, events);
}


/* See ep.h. */
void
tg_shm_ep_recover(tg_shm_ep_t *e, uint64_t now_ms, int32_t pid,
                  const char *reason, tg_shm_ring_t *events)
{
    uint32_t b = atomic_load_explicit(&e->breaker, memory_order_relaxed);
    uint64_t until;

    atomic_store_explicit(&e->consecutive, 0, memory_order_relaxed);
    if (b != TG_EP_BREAKER_CLOSED) {
        /* A probe in flight keeps probe_pid; its holder releases it and
         * finds the breaker closed, so its verdict changes nothing. */
        tg_shm_ep_close(e, b, now_ms, TG_EV_SRC_HEALTH, pid, 0, reason, events);
    }
    until = atomic_load_explicit(&e->cooled_until_ms, memory_order_relaxed);
    if (until > now_ms &&
        atomic_load_explicit(&e->cool_kind, memory_order_relaxed) ==
            TG_EP_COOL_BRIEF &&
        atomic_compare_exchange_strong_explicit(&e->cooled_until_ms, &until, 0,
                                                memory_order_release,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&e->cool_kind, TG_EP_COOL_NONE,
                              memory_order_relaxed);
        tg_shm_ep_event(e, events, TG_EV_UNCOOLED, TG_EV_S_COOLED,
                        TG_EV_S_AVAILABLE, TG_EV_SRC_HEALTH, pid, now_ms, 0, 0,
                        reason);
    }
}


/* See ep.h. */
unsigned
tg_shm_ep_reenable(tg_shm_ep_t *e, uint64_t now_ms, int32_t pid,
                   const char *reason, tg_shm_ring_t *events)
{
    uint64_t out, cool;
    uint32_t b;
    unsigned from;

    out = atomic_exchange_explicit(&e->out_until_ms, 0, memory_order_release);
    cool =
        atomic_exchange_explicit(&e->cooled_until_ms, 0, memory_order_release);
    atomic_store_explicit(&e->cool_kind, TG_EP_COOL_NONE, memory_order_relaxed);
    atomic_store_explicit(&e->consecutive, 0, memory_order_relaxed);
    b = atomic_exchange_explicit(&e->breaker, TG_EP_BREAKER_CLOSED,
                                 memory_order_release);
    from = out > now_ms    ? TG_EV_S_OUT
           : cool > now_ms ? TG_EV_S_COOLED
                           : tg_shm_ep_bstate(b);
    tg_shm_ep_event(e, events, TG_EV_REENABLED, from, TG_EV_S_AVAILABLE,
                    TG_EV_SRC_ADMIN, pid, now_ms, 0, 0, reason);
    return from;
}


/* See ep.h. */
void
tg_shm_ep_health_set(tg_shm_ep_t *e, uint32_t state, uint32_t ok_milli,
                     uint64_t latency_us, uint64_t now_ms, int32_t pid,
                     uint32_t status, const char *reason, tg_shm_ring_t *events)
{
    uint32_t old;

    atomic_store_explicit(&e->health_ok_milli, ok_milli, memory_order_relaxed);
    atomic_store_explicit(&e->health_latency_us, latency_us,
                          memory_order_relaxed);
    atomic_store_explicit(&e->health_checked_ms, now_ms, memory_order_relaxed);
    old = atomic_exchange_explicit(&e->health, state, memory_order_release);
    if (old != state) {
        tg_shm_ep_event(e, events, TG_EV_HEALTH, TG_EV_S_UNKNOWN + old,
                        TG_EV_S_UNKNOWN + state, TG_EV_SRC_HEALTH, pid, now_ms,
                        0, status, reason);
    }
}


/* See ep.h. */
uint32_t
tg_shm_ep_release_probes(void *base, uint32_t capacity, int32_t dead_pid,
                         int32_t pid, uint64_t now_ms, tg_shm_ring_t *events)
{
    uint32_t i, n = 0;
    char reason[64];

    if (dead_pid <= 0) {
        return 0;
    }
    snprintf(reason, sizeof(reason), "probe holder pid %d died", (int)dead_pid);
    for (i = 0; i < capacity; i++) {
        tg_shm_ep_t *e = tg_shm_ep_get(base, i);

        if (atomic_load_explicit(&e->probe_pid, memory_order_relaxed) !=
                dead_pid ||
            !tg_shm_ep_probe_release(e, dead_pid)) {
            continue;
        }
        n++;
        tg_shm_ep_event(e, events, TG_EV_PROBE_RESET,
                        tg_shm_ep_bstate(atomic_load(&e->breaker)),
                        tg_shm_ep_bstate(atomic_load(&e->breaker)),
                        TG_EV_SRC_MASTER, pid, now_ms, 0, 0, reason);
    }
    return n;
}
