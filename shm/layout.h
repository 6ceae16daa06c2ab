/*
 * shm/layout.h
 *      The shared-memory region header and table directory.
 *
 * NOTES
 *      The region is created by master with memfd_create (mode 0600 by
 *      construction: it has no name) and mapped MAP_SHARED before fork, so
 *      every child maps it at the same address.  Even so, the region holds no
 *      pointers: tables are found through the header's {offset, capacity,
 *      entry_size} directory, so a region can be inspected or re-attached by
 *      a process that maps it elsewhere.
 *
 *      Any change to any struct in shm/ bumps TG_SHM_LAYOUT_VERSION and
 *      TG_SHM_MAGIC in the same commit.  Every shared struct carries
 *      _Static_asserts on its size and key offsets, so a layout change fails
 *      the build until it is deliberate.
 */
#ifndef TG_SHM_LAYOUT_H
#define TG_SHM_LAYOUT_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define TG_SHM_MAGIC          0x20261208u /* date of the layout below */
#define TG_SHM_LAYOUT_VERSION 13u
#define TG_SHM_CACHELINE      64

enum {
    TG_SHM_T_PROCS = 0,     /* tg_shm_proc_t, one per child process */
    TG_SHM_T_KEYS = 1,      /* tg_shm_key_t slots (shm/keys.h) */
    TG_SHM_T_RL = 2,        /* tg_shm_rl_t, same index as the key slot */
    TG_SHM_T_USERS = 3,     /* tg_shm_user_t (shm/users.h) */
    TG_SHM_T_MODELS = 4,    /* model patterns for allow-lists (shm/keys.h) */
    TG_SHM_T_EPS = 5,       /* tg_shm_ep_t endpoint health (shm/ep.h) */
    TG_SHM_T_RING = 6,      /* usage ring (shm/ring.h) */
    TG_SHM_T_LEASES = 7,    /* concurrency leases, per proc (shm/rl.h) */
    TG_SHM_T_EPMINE = 8,    /* per-proc in-flight counts per endpoint */
    TG_SHM_T_STICKY = 9,    /* sticky sessions (shm/sticky.h) */
    TG_SHM_T_EVENTS = 10,   /* endpoint events ring (shm/events.h) */
    TG_SHM_T_INFLIGHT = 11, /* requests in flight, per proc (inflight.h) */
    TG_SHM_T_PRICES = 12,   /* model prices (shm/prices.h) */
    TG_SHM_T_QUOTA = 13,    /* quota entries, users then keys (quota.h) */
    TG_SHM_T_QRES = 14,     /* quota reservations, per proc (quota.h) */
    TG_SHM_T_METRICS = 15,  /* per-proc request metrics (shm/metrics.h) */
    TG_SHM_T_EPCONF = 16,   /* endpoint and group config (epconf.h) */
    TG_SHM_NTABLES = 32     /* directory size; unused entries are zero */
};

/*
 * Results of shared-table operations.  shm/ includes only libc, so it has
 * its own small set, mirroring core's TG_OK / TG_DECLINED / TG_AGAIN.
 */
enum {
    TG_SHM_OK = 0,    /* done / found / allowed */
    TG_SHM_MISS = 1,  /* not found */
    TG_SHM_LIMIT = 2, /* refused by a limit */
    TG_SHM_FULL = 3,  /* no room */
    TG_SHM_BUSY = 4,  /* a seqlock stayed odd or kept changing: fail closed */
    TG_SHM_INVAL = 5  /* bad argument */
};

typedef struct {
    uint64_t offset;     /* from the start of the region, cache aligned */
    uint32_t capacity;   /* entries */
    uint32_t entry_size; /* bytes per entry */
} tg_shm_table_t;

typedef struct {
    uint32_t magic;              /* TG_SHM_MAGIC */
    uint32_t layout_version;     /* TG_SHM_LAYOUT_VERSION */
    uint64_t total_size;         /* bytes mapped */
    int32_t creator_pid;         /* master that created the region */
    uint32_t ntables;            /* TG_SHM_NTABLES */
    _Atomic uint64_t generation; /* bumped by master on every reload */
    uint64_t created_ms;         /* wall clock at creation */
    _Atomic int32_t admin_pid;   /* admin holding the writer role, 0 none */
    uint32_t leases_per_proc;    /* lease array length per proc entry */
    _Atomic uint32_t published;  /* admin finished its first publish */
    _Atomic uint32_t dirty;      /* an admin died holding the role: repair */
    uint8_t reserved[8];         /* pads the fixed part to one cache line */
    tg_shm_table_t tables[TG_SHM_NTABLES]; /* directory, TG_SHM_T_* */
} tg_shm_hdr_t;

_Static_assert(sizeof(tg_shm_hdr_t) == 64 + TG_SHM_NTABLES * 16,
               "tg_shm_hdr_t layout changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_hdr_t, tables) == 64, "header fixed part");
_Static_assert(offsetof(tg_shm_hdr_t, admin_pid) == 40, "header admin_pid");

#endif /* TG_SHM_LAYOUT_H */
