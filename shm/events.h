/*
 * shm/events.h
 *      Endpoint events: every change of an endpoint's availability (breaker
 *      opened, half-open, closed; cooled by a 429/529; taken out by a spend
 *      cap; re-enabled; health state) as a fixed-size record in a small
 *      multi-producer single-consumer ring.
 *
 * NOTES
 *      Written by: workers (breaker transitions, cool-downs, spend caps),
 *      admin (health checks, re-enable) and master (a dead worker's probe
 *      released), through tg_shm_events_publish().  Read by: admin, the
 *      single consumer, which drains the ring on its usage drain tick and
 *      writes one JSON line per event to log.events (admin/events.c).
 *
 *      The ring is shm/ring.h's protocol and code, instantiated with
 *      tg_shm_event_t records (192 bytes, 256-byte slots): Vyukov's bounded
 *      queue with a per-slot sequence, BUSY | pid while a record is being
 *      written, master reaping the slot of a producer that died mid-write
 *      (tg_shm_ring_reap) and the consumer skipping slots claimed but never
 *      begun (tg_shm_ring_skip_stuck).  See shm/ring.h for the argument.
 *
 *      Events are rare (transitions only; a storm of 429s on one endpoint
 *      makes one "cooled" event, not one per response), so the ring is
 *      small (TG_SHM_EVENTS_CAPACITY) and a full ring drops the event and
 *      counts it in the ring header's `full` counter, which admin reports.
 *      Nothing is spooled: the events are a history for operators, not an
 *      account that must balance like usage.
 *
 *      Order: records come out in the order their producers claimed
 *      positions, which for one endpoint is the order of its transitions
 *      (each transition is decided by one CAS, and the winner publishes
 *      after it).  The ring position is the event's id: unique and
 *      increasing for the life of the region.
 */
#ifndef TG_SHM_EVENTS_H
#define TG_SHM_EVENTS_H

#include "shm/layout.h"
#include "shm/ring.h"

#include <stddef.h>
#include <stdint.h>

#define TG_SHM_EVENTS_CAPACITY 4096 /* ring slots, a power of two */

/* tg_shm_event_t.type */
enum {
    TG_EV_OPENED = 1,      /* breaker closed/half-open -> open */
    TG_EV_HALF_OPEN = 2,   /* breaker open -> half-open, a probe goes */
    TG_EV_CLOSED = 3,      /* breaker open/half-open -> closed */
    TG_EV_COOLED = 4,      /* cooled by a 429 retry-after or a 529 */
    TG_EV_OUT = 5,         /* taken out by a spend cap / quota */
    TG_EV_REENABLED = 6,   /* admin cleared breaker, cool-down, take-out */
    TG_EV_HEALTH = 7,      /* health state changed (active checks) */
    TG_EV_PROBE_RESET = 8, /* the probe holder died; master released it */
    TG_EV_UNCOOLED = 9,    /* a good health check ended a cool-down */
    TG_EV_NTYPES = 10
};

/* tg_shm_event_t.from / .to: one namespace for every kind of state. */
enum {
    TG_EV_S_NONE = 0,      /* not applicable */
    TG_EV_S_CLOSED = 1,    /* breaker states */
    TG_EV_S_OPEN = 2,      /*   " */
    TG_EV_S_HALF_OPEN = 3, /*   " */
    TG_EV_S_AVAILABLE = 4, /* not cooled, not out */
    TG_EV_S_COOLED = 5,    /* cooled_until in the future */
    TG_EV_S_OUT = 6,       /* out_until in the future */
    TG_EV_S_UNKNOWN = 7,   /* health states (TG_EP_HEALTH_* + 7) */
    TG_EV_S_HEALTHY = 8,
    TG_EV_S_DEGRADED = 9,
    TG_EV_S_UNHEALTHY = 10,
    TG_EV_NSTATES = 11
};

/* tg_shm_event_t.source */
enum {
    TG_EV_SRC_WORKER = 0, /* a request's outcome */
    TG_EV_SRC_HEALTH = 1, /* admin's active health check */
    TG_EV_SRC_ADMIN = 2,  /* an operator through the admin API */
    TG_EV_SRC_MASTER = 3  /* master repairing after a dead worker */
};

/*
 * One event.  Plain data, zero-padded; it maps one to one onto a future
 * PostgreSQL table (docs/failover.md lists the columns).
 */
typedef struct {
    uint64_t time_ms;     /* wall clock (CLOCK_REALTIME) of the change */
    uint64_t until_ms;    /* new open/cooled/out deadline (wall), 0 none */
    uint32_t endpoint;    /* endpoint index in the configuration */
    uint32_t status;      /* HTTP status or 1000 + curl code; 0 none */
    uint32_t consecutive; /* consecutive failures at the change */
    int32_t pid;          /* process that made the change */
    uint8_t type;         /* TG_EV_* */
    uint8_t from;         /* TG_EV_S_* before */
    uint8_t to;           /* TG_EV_S_* after */
    uint8_t source;       /* TG_EV_SRC_* */
    uint32_t reserved;    /* zero */
    char name[56];        /* endpoint name, NUL-padded */
    char reason[96];      /* short cause, NUL-terminated, printable */
} tg_shm_event_t;

_Static_assert(sizeof(tg_shm_event_t) == 192,
               "tg_shm_event_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_event_t, type) == 32, "event layout");
_Static_assert(offsetof(tg_shm_event_t, name) == 40, "event layout");
_Static_assert(offsetof(tg_shm_event_t, reason) == 96, "event layout");

/* Bytes of an events ring of <capacity> slots; 0 when refused. */
size_t tg_shm_events_size(uint32_t capacity);

/*
 * Lay out an empty events ring of <capacity> slots in <mem> (cache-line
 * aligned, tg_shm_events_size() bytes).  Master only, before fork.
 * Returns the ring or NULL.
 */
tg_shm_ring_t *tg_shm_events_init(void *mem, uint32_t capacity);

/*
 * Publish a copy of <ev>; ev->pid must be the caller's pid.  Any process
 * but the consumer; never blocks.  <r> may be NULL (no ring: dropped).
 * Returns TG_SHM_OK, or TG_SHM_FULL when the event was dropped (counted in
 * r->full), TG_SHM_INVAL when ev->pid <= 0.
 */
int tg_shm_events_publish(tg_shm_ring_t *r, const tg_shm_event_t *ev);

/*
 * Copy the oldest event into <out> and its id (ring position) into <*id>.
 * Admin only.  TG_SHM_OK or TG_SHM_MISS.
 */
int tg_shm_events_consume(tg_shm_ring_t *r, tg_shm_event_t *out, uint64_t *id);

/* Lower-case names for JSON and logs ("opened", "half_open", ...); never
 * NULL ("unknown" out of range). */
const char *tg_shm_events_type_name(unsigned type);
const char *tg_shm_events_state_name(unsigned state);
const char *tg_shm_events_source_name(unsigned source);

/*
 * Fill <ev> for endpoint <index> named <name> (may be NULL) with the
 * given fields; <reason> is copied, cut to fit and with control bytes
 * replaced by spaces.  A helper for producers; pure.
 */
void tg_shm_events_fill(tg_shm_event_t *ev, uint32_t index, const char *name,
                        unsigned type, unsigned from, unsigned to,
                        const char *reason);

#endif /* TG_SHM_EVENTS_H */
