/*
 * shm/shm.h
 *      Create, check and address the shared-memory region.
 *
 * NOTES
 *      Includes only libc and shm/ headers (enforced by `make check`), so
 *      errors are reported in a caller-owned buffer rather than logged.
 */
#ifndef TG_SHM_SHM_H
#define TG_SHM_SHM_H

#include "shm/ep.h"
#include "shm/epconf.h"
#include "shm/events.h"
#include "shm/inflight.h"
#include "shm/keys.h"
#include "shm/layout.h"
#include "shm/metrics.h"
#include "shm/prices.h"
#include "shm/procs.h"
#include "shm/quota.h"
#include "shm/ring.h"
#include "shm/rl.h"
#include "shm/sticky.h"
#include "shm/users.h"

#include <stddef.h>

#define TG_SHM_GROUPS_DEFAULT 64 /* endpoint group slots (shm.max_groups) */

typedef struct {
    uint32_t procs;     /* proc entries: 2 x max workers + admins */
    uint32_t max_keys;  /* keys the key table must hold */
    uint32_t users;     /* user slots */
    uint32_t endpoints; /* endpoint slots */
    uint32_t ring;      /* usage ring slots, a power of two */
    uint32_t leases;    /* concurrency leases per proc entry */
    uint32_t events;    /* events ring slots; 0 = TG_SHM_EVENTS_CAPACITY */
    uint32_t sticky;    /* sticky slots, a power of two;
                           0 = TG_SHM_STICKY_DEFAULT */
    uint32_t groups;    /* endpoint group slots; 0 = TG_SHM_GROUPS_DEFAULT */
} tg_shm_sizes_t;

typedef struct {
    void *base;  /* mapping, NULL when not mapped */
    size_t size; /* bytes mapped */
    int fd;      /* memfd, -1 when closed */
} tg_shm_t;

/*
 * Create a region sized for <sizes>, map it MAP_SHARED and write the
 * header.  Returns 0, or -1 with a message in <err> (<errlen> bytes).
 */
int tg_shm_create(tg_shm_t *shm, const tg_shm_sizes_t *sizes, char *err,
                  size_t errlen);

/* Unmap and close. */
void tg_shm_destroy(tg_shm_t *shm);

/*
 * Check that <base> of <size> bytes holds a region of this binary's layout.
 * Returns 0, or -1 naming the field that differs in <err>.
 */
int tg_shm_check(const void *base, size_t size, char *err, size_t errlen);

/* Compute the region size for <sizes>; 0 on overflow. */
size_t tg_shm_size(const tg_shm_sizes_t *sizes);

static inline tg_shm_hdr_t *
tg_shm_hdr(const tg_shm_t *shm)
{
    return (tg_shm_hdr_t *)shm->base;
}

/* Entry <i> of table <t>; the caller checks <i> against the capacity. */
static inline void *
tg_shm_entry(const tg_shm_t *shm, int t, uint32_t i)
{
    const tg_shm_table_t *d = &tg_shm_hdr(shm)->tables[t];

    return (char *)shm->base + d->offset + (uint64_t)i * d->entry_size;
}

static inline uint32_t
tg_shm_capacity(const tg_shm_t *shm, int t)
{
    return tg_shm_hdr(shm)->tables[t].capacity;
}

static inline tg_shm_proc_t *
tg_shm_proc(const tg_shm_t *shm, uint32_t slot)
{
    return (tg_shm_proc_t *)tg_shm_entry(shm, TG_SHM_T_PROCS, slot);
}

/* Start of table <t>'s area. */
static inline void *
tg_shm_table(const tg_shm_t *shm, int t)
{
    return (char *)shm->base + tg_shm_hdr(shm)->tables[t].offset;
}

static inline tg_shm_keys_t *
tg_shm_keys(const tg_shm_t *shm)
{
    return (tg_shm_keys_t *)tg_shm_table(shm, TG_SHM_T_KEYS);
}

static inline tg_shm_rl_t *
tg_shm_rl(const tg_shm_t *shm)
{
    return (tg_shm_rl_t *)tg_shm_table(shm, TG_SHM_T_RL);
}

static inline tg_shm_users_t *
tg_shm_users(const tg_shm_t *shm)
{
    return (tg_shm_users_t *)tg_shm_table(shm, TG_SHM_T_USERS);
}

static inline tg_shm_models_t *
tg_shm_models(const tg_shm_t *shm)
{
    return (tg_shm_models_t *)tg_shm_table(shm, TG_SHM_T_MODELS);
}

static inline tg_shm_ring_t *
tg_shm_ring(const tg_shm_t *shm)
{
    return (tg_shm_ring_t *)tg_shm_table(shm, TG_SHM_T_RING);
}

/* The endpoint events ring (shm/events.h). */
static inline tg_shm_ring_t *
tg_shm_events(const tg_shm_t *shm)
{
    return (tg_shm_ring_t *)tg_shm_table(shm, TG_SHM_T_EVENTS);
}

/* The endpoint and group configuration table (shm/epconf.h). */
static inline tg_shm_epconf_hdr_t *
tg_shm_epconf(const tg_shm_t *shm)
{
    return (tg_shm_epconf_hdr_t *)tg_shm_table(shm, TG_SHM_T_EPCONF);
}

/* The sticky-session table (shm/sticky.h), NULL when the region has
 * none. */
static inline tg_shm_sticky_t *
tg_shm_sticky(const tg_shm_t *shm)
{
    return tg_shm_capacity(shm, TG_SHM_T_STICKY) == 0
               ? NULL
               : (tg_shm_sticky_t *)tg_shm_table(shm, TG_SHM_T_STICKY);
}

/* The lease array of proc entry <idx>. */
static inline tg_shm_lease_t *
tg_shm_leases(const tg_shm_t *shm, uint32_t idx)
{
    return tg_shm_rl_leases_of(tg_shm_table(shm, TG_SHM_T_LEASES),
                               tg_shm_hdr(shm)->leases_per_proc, idx);
}

/* Proc entry <idx>'s in-flight counters, one per endpoint slot. */
static inline _Atomic uint32_t *
tg_shm_ep_mine(const tg_shm_t *shm, uint32_t idx)
{
    return (_Atomic uint32_t *)tg_shm_table(shm, TG_SHM_T_EPMINE) +
           (size_t)idx * tg_shm_capacity(shm, TG_SHM_T_EPS);
}

/* The in-flight requests of proc entry <idx> (leases_per_proc of them). */
static inline tg_shm_inflight_t *
tg_shm_inflight(const tg_shm_t *shm, uint32_t idx)
{
    return tg_shm_inflight_of(tg_shm_table(shm, TG_SHM_T_INFLIGHT),
                              tg_shm_hdr(shm)->leases_per_proc, idx);
}

static inline tg_shm_prices_t *
tg_shm_prices(const tg_shm_t *shm)
{
    return (tg_shm_prices_t *)tg_shm_table(shm, TG_SHM_T_PRICES);
}


static inline tg_shm_quotas_t *
tg_shm_quotas(const tg_shm_t *shm)
{
    return (tg_shm_quotas_t *)tg_shm_table(shm, TG_SHM_T_QUOTA);
}


/* Proc entry <idx>'s quota reservations, one per lease index. */
static inline tg_shm_qres_t *
tg_shm_qres(const tg_shm_t *shm, uint32_t idx)
{
    return tg_shm_qres_of(tg_shm_table(shm, TG_SHM_T_QRES),
                          tg_shm_hdr(shm)->leases_per_proc, idx);
}


/* The request metrics table (shm/metrics.h), NULL when the region has
 * none. */
static inline tg_shm_metrics_hdr_t *
tg_shm_metrics(const tg_shm_t *shm)
{
    return tg_shm_capacity(shm, TG_SHM_T_METRICS) == 0
               ? NULL
               : (tg_shm_metrics_hdr_t *)tg_shm_table(shm, TG_SHM_T_METRICS);
}

#endif /* TG_SHM_SHM_H */
