/*
 * shm/epconf.h
 *      Endpoint and group configuration in shared memory: what workers
 *      route by.
 *
 * NOTES
 *      Written by: admin only (it is the single writer), from PostgreSQL
 *      or, in config-only mode, from the configuration file.  Read by:
 *      workers, which keep their own copy of the whole configuration and
 *      rebuild it when the table generation moved.
 *
 *      Layout: one header line (the table generation), then <neps>
 *      endpoint entries, then <ngroups> group entries.  The directory
 *      entry (TG_SHM_T_EPCONF) gives the endpoint entries; the header
 *      gives both counts.  An endpoint's index here is the index of its
 *      health counters in TG_SHM_T_EPS (shm/ep.h), so breaker, cool-down
 *      and health follow the endpoint, and its group is an index into the
 *      group entries.  Keys carry a group index (shm/keys.h) into the same
 *      group entries; group 0 is always "default".
 *
 *      Consistency: every entry has its own seqlock (shm/seqlock.h); the
 *      writer stages a whole entry in its own memory and stores it word by
 *      word between write_begin and write_end, and readers copy it word by
 *      word and retry a bounded number of times (TG_SHM_EPCONF_TRIES).
 *      After a batch of writes admin bumps the table generation (release);
 *      a worker loads it once per request (acquire) and, when it moved,
 *      copies every entry again.  A reader that meets an entry that stays
 *      odd (a writer died mid-write) keeps its previous copy of that entry
 *      and tries again later; the next admin repairs the entry by writing
 *      it again (a full publish rewrites every torn entry).
 *
 *      Slot life: a slot is FREE (never used), LIVE, or GONE (deleted at
 *      <freed_ms>).  A GONE slot keeps its name so that a worker still
 *      finishing a request on it names the right endpoint, and is given
 *      to another endpoint only when no never-used slot is left and
 *      TG_SHM_EPCONF_GRACE_MS has passed since the delete, so no request
 *      admitted before the delete can still be running on it (longer than
 *      any configured total timeout by default; a stream that outlives it
 *      is counted under the new endpoint).
 *
 *      Secrets: the credential is stored opened, because every worker
 *      needs it to call the upstream.  The region is a memfd (no name in
 *      any filesystem, mode 0600, never written to disk: swap aside, it
 *      lives only in memory) mapped by tollgate's own processes, the same
 *      exposure as the credential in the configuration file the workers
 *      hold today.  Admin wipes a slot's credential when it is deleted.
 */
#ifndef TG_SHM_EPCONF_H
#define TG_SHM_EPCONF_H

#include "shm/layout.h"
#include "shm/seqlock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TG_SHM_EPCONF_MAX      256     /* endpoint slots at most (routing) */
#define TG_SHM_EPCONF_MODELS   16      /* model patterns of one endpoint */
#define TG_SHM_EPCONF_MAPS     16      /* model renames of one endpoint */
#define TG_SHM_EPCONF_TRIES    64      /* seqlock read attempts */
#define TG_SHM_EPCONF_GRACE_MS 3600000 /* before a GONE slot is reused */

/* tg_shm_epconf_ep_t.state and tg_shm_epconf_group_t.state */
enum {
    TG_SHM_EPCONF_FREE = 0, /* never used */
    TG_SHM_EPCONF_LIVE = 1, /* an endpoint (group) lives here */
    TG_SHM_EPCONF_GONE = 2  /* deleted at freed_ms; name kept */
};

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t generation; /* bumped after
                                                              each batch */
    uint32_t neps;    /* endpoint entries */
    uint32_t ngroups; /* group entries, after the endpoints */
    uint8_t pad[48];  /* one cache line */
} tg_shm_epconf_hdr_t;

typedef struct {
    char from[128]; /* model name the client sends */
    char to[128];   /* name the endpoint knows it by */
} tg_shm_epconf_map_t;

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* seqlock */
    uint32_t state;                                 /* TG_SHM_EPCONF_* */
    uint64_t generation;            /* table generation of the last write */
    uint64_t freed_ms;              /* wall clock of the delete (GONE) */
    uint64_t id;                    /* endpoints.endpoint_id, 0 = file */
    char name[64];                  /* unique, NUL-terminated */
    char url[512];                  /* base URL, no trailing / */
    char credential[512];           /* opened upstream key (see NOTES) */
    char proxy[512];                /* outbound proxy URL, "" = direct */
    char health_path[256];          /* GET probe path */
    uint32_t style;                 /* TG_STYLE_* (core/conf.h values) */
    uint32_t weight;                /* 1..1000 */
    uint32_t priority;              /* TG_PRIO_* */
    uint32_t group;                 /* index among the group entries */
    uint32_t enabled;               /* 0: never chosen */
    uint32_t price_milli;           /* price factor x 1000 */
    uint32_t connect_timeout_ms;    /* resolved (defaults applied) */
    uint32_t first_byte_timeout_ms; /* resolved */
    uint32_t read_timeout_ms;       /* resolved */
    uint32_t total_timeout_ms;      /* 0 = none */
    uint32_t tls_verify;            /* resolved, 0 or 1 */
    uint32_t health_interval_ms;    /* 0 = no active checks */
    uint32_t health_timeout_ms;     /* probe timeout */
    uint32_t quota_cooldown_ms;     /* spend-cap take-out */
    uint32_t nmodels;               /* patterns served, 0 = every model */
    uint32_t nmaps;                 /* model renames */
    char models[TG_SHM_EPCONF_MODELS][64];        /* '*' wildcard */
    tg_shm_epconf_map_t maps[TG_SHM_EPCONF_MAPS]; /* renames */
} tg_shm_epconf_ep_t;

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint32_t seq; /* seqlock */
    uint32_t state;                                 /* TG_SHM_EPCONF_* */
    uint64_t generation;           /* table generation of the last write */
    uint64_t freed_ms;             /* wall clock of the delete (GONE) */
    uint64_t id;                   /* endpoint_groups.group_id, 0 = file */
    char name[64];                 /* unique, NUL-terminated */
    uint32_t strategy;             /* TG_STRATEGY_* */
    uint32_t failure_threshold;    /* consecutive failures that open */
    uint32_t cooldown_ms;          /* open breaker wait */
    uint32_t max_retries;          /* other endpoints tried */
    uint32_t retry_deadline_ms;    /* no new attempt after */
    uint32_t sticky;               /* conversation affinity, 0 or 1 */
    uint32_t sticky_ttl_ms;        /* sticky entry lifetime */
    uint32_t explore_milli;        /* latency strategy exploration x 1000 */
    uint32_t wait_for_cooldown_ms; /* wait when every endpoint cools */
    uint32_t translate;            /* other-style endpoints serve too, 0/1 */
    uint8_t reserved[56];          /* pads the entry to three cache lines */
} tg_shm_epconf_group_t;

_Static_assert(sizeof(tg_shm_epconf_hdr_t) == 64, "epconf header line");
_Static_assert(sizeof(tg_shm_epconf_ep_t) == 7104, "tg_shm_epconf_ep_t");
_Static_assert(offsetof(tg_shm_epconf_ep_t, name) == 32, "ep name");
_Static_assert(offsetof(tg_shm_epconf_ep_t, style) == 1888, "ep numbers");
_Static_assert(offsetof(tg_shm_epconf_ep_t, models) == 1952, "ep models");
_Static_assert(sizeof(tg_shm_epconf_group_t) == 192, "tg_shm_epconf_group_t");
_Static_assert(offsetof(tg_shm_epconf_group_t, strategy) == 96, "group");
_Static_assert(offsetof(tg_shm_epconf_group_t, translate) == 132, "group");
_Static_assert(sizeof(tg_shm_epconf_ep_t) % 8 == 0 &&
                   sizeof(tg_shm_epconf_group_t) % 8 == 0,
               "entries are copied in 64-bit words");

/* Bytes of the table for <neps> endpoints and <ngroups> groups; 0 on
 * overflow. */
size_t tg_shm_epconf_size(uint32_t neps, uint32_t ngroups);

/* Master: write the header of the zeroed table at <base>.  Returns
 * <base>. */
tg_shm_epconf_hdr_t *tg_shm_epconf_init(void *base, uint32_t neps,
                                        uint32_t ngroups);

/* Endpoint entry <i> and group entry <i> of the table <h>; <i> must be
 * below the header's counts. */
tg_shm_epconf_ep_t *tg_shm_epconf_ep(tg_shm_epconf_hdr_t *h, uint32_t i);
tg_shm_epconf_group_t *tg_shm_epconf_group(tg_shm_epconf_hdr_t *h, uint32_t i);

/* Admin: store <src> (staged in private memory; its seq is ignored) into
 * <dst> under dst's seqlock, stamping <generation>. */
void tg_shm_epconf_ep_write(tg_shm_epconf_ep_t *dst,
                            const tg_shm_epconf_ep_t *src, uint64_t generation);
void tg_shm_epconf_group_write(tg_shm_epconf_group_t *dst,
                               const tg_shm_epconf_group_t *src,
                               uint64_t generation);

/* Any process: copy <src> into <dst> under src's seqlock.  TG_SHM_OK, or
 * TG_SHM_BUSY when it stayed odd or kept changing (dst then undefined).
 * Never blocks. */
int tg_shm_epconf_ep_read(const tg_shm_epconf_ep_t *src,
                          tg_shm_epconf_ep_t *dst);
int tg_shm_epconf_group_read(const tg_shm_epconf_group_t *src,
                             tg_shm_epconf_group_t *dst);

/* Admin: the generation a batch of writes will stamp (current + 1). */
static inline uint64_t
tg_shm_epconf_next(tg_shm_epconf_hdr_t *h)
{
    return atomic_load_explicit(&h->generation, memory_order_relaxed) + 1;
}


/* Admin: publish a batch of writes stamped <generation>. */
static inline void
tg_shm_epconf_bump(tg_shm_epconf_hdr_t *h, uint64_t generation)
{
    atomic_store_explicit(&h->generation, generation, memory_order_release);
}


/* Workers: the table generation, one acquire load. */
static inline uint64_t
tg_shm_epconf_generation(const tg_shm_epconf_hdr_t *h)
{
    return atomic_load_explicit(&((tg_shm_epconf_hdr_t *)h)->generation,
                                memory_order_acquire);
}


/* Admin: whether the entry with seqlock <seq> was left mid-write by a
 * writer that died (readers fail on it until it is written again; a full
 * publish rewrites every such entry). */
static inline bool
tg_shm_epconf_torn(const _Atomic uint32_t *seq)
{
    return (atomic_load_explicit((_Atomic uint32_t *)seq,
                                 memory_order_relaxed) &
            1u) != 0;
}

#endif /* TG_SHM_EPCONF_H */
