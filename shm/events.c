/*
 * shm/events.c
 *      The endpoint events ring: shm/ring.c's queue carrying
 *      tg_shm_event_t records.
 *
 * NOTES
 *      Any process publishes (workers, admin, master); admin consumes.
 *      Never blocks.  See shm/events.h.
 */
#include "shm/events.h"

#include <string.h>

static const char *const tg_shm_events_types[TG_EV_NTYPES] = {
    "unknown", "opened",    "half_open", "closed",      "cooled",
    "out",     "reenabled", "health",    "probe_reset", "uncooled"};

static const char *const tg_shm_events_states[TG_EV_NSTATES] = {
    "none", "closed",  "open",    "half_open", "available", "cooled",
    "out",  "unknown", "healthy", "degraded",  "unhealthy"};

static const char *const tg_shm_events_sources[] = {"worker", "health", "admin",
                                                    "master"};


/* See events.h. */
size_t
tg_shm_events_size(uint32_t capacity)
{
    return tg_shm_ring_size_for(capacity, sizeof(tg_shm_event_t));
}


/* See events.h. */
tg_shm_ring_t *
tg_shm_events_init(void *mem, uint32_t capacity)
{
    return tg_shm_ring_init_for(mem, capacity, sizeof(tg_shm_event_t));
}


/* See events.h. */
int
tg_shm_events_publish(tg_shm_ring_t *r, const tg_shm_event_t *ev)
{
    if (r == NULL) {
        return TG_SHM_FULL;
    }
    return tg_shm_ring_publish_raw(r, ev, ev->pid);
}


/* See events.h. */
int
tg_shm_events_consume(tg_shm_ring_t *r, tg_shm_event_t *out, uint64_t *id)
{
    return tg_shm_ring_consume_raw(r, out, id);
}


/* See events.h. */
const char *
tg_shm_events_type_name(unsigned type)
{
    return type < TG_EV_NTYPES ? tg_shm_events_types[type] : "unknown";
}


/* See events.h. */
const char *
tg_shm_events_state_name(unsigned state)
{
    return state < TG_EV_NSTATES ? tg_shm_events_states[state] : "unknown";
}


/* See events.h. */
const char *
tg_shm_events_source_name(unsigned source)
{
    return source < sizeof(tg_shm_events_sources) /
                        sizeof(tg_shm_events_sources[0])
               ? tg_shm_events_sources[source]
               : "unknown";
}


/* See events.h. */
void
tg_shm_events_fill(tg_shm_event_t *ev, uint32_t index, const char *name,
                   unsigned type, unsigned from, unsigned to,
                   const char *reason)
{
    size_t i;

    memset(ev, 0, sizeof(*ev));
    ev->endpoint = index;
    ev->type = (uint8_t)type;
    ev->from = (uint8_t)from;
    ev->to = (uint8_t)to;
    if (name != NULL) {
        for (i = 0; i < sizeof(ev->name) - 1 && name[i] != '\0'; i++) {
            ev->name[i] = name[i];
        }
    }
    if (reason != NULL) {
        for (i = 0; i < sizeof(ev->reason) - 1 && reason[i] != '\0'; i++) {
            unsigned char ch = (unsigned char)reason[i];

            ev->reason[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
        }
    }
}
