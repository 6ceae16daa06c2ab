/*
 * worker/worker.h
 *      The worker process: one thread, one epoll loop, many connections.
 *
 * NOTES
 *      tg_worker_t is the process-wide context every worker module reads
 *      (there is exactly one per worker process, created in tg_worker_main).
 *      Nothing in the worker blocks: client sockets, upstream transfers
 *      (libcurl multi) and timers all run on the same loop.
 */
#ifndef TG_WORKER_WORKER_H
#define TG_WORKER_WORKER_H

#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_conn_s tg_conn_t;
typedef struct tg_proxy_s tg_proxy_t;
typedef struct tg_route_s tg_route_t;

typedef struct tg_worker_s {
    tg_ev_loop_t *loop;
    const tg_conf_t *conf;
    tg_shm_t *shm;
    tg_shm_proc_t *proc; /* our counters in shared memory */
    int slot;            /* worker slot number */
    int32_t pid;         /* getpid(), read once: workers never fork */
    int listen_fd;       /* -1 once we stopped accepting */
    int signal_fd;
    tg_proxy_t *proxy;     /* libcurl multi state */
    tg_conn_t *flush_head; /* connections with output to write */
    tg_conn_t *free_conns; /* recycled connection structs */
    tg_conn_t *all_head;   /* every open connection (for shutdown) */
    /* Installed by worker.c: set up a newly accepted connection (TG_OK,
     * or TG_ERROR to close it), and end and close one (shutdown). */
    int (*conn_init)(tg_conn_t *c);
    void (*conn_fini)(tg_conn_t *c);
    uint32_t nconns; /* open client connections */
    uint32_t nfree;
    bool stopping;          /* graceful stop in progress */
    uint64_t stop_deadline; /* monotonic ms */
    uint64_t req_seq;       /* request id counter */
    tg_route_t *route;      /* endpoint choice state (worker/route.c) */
    char *models_json;      /* prebuilt GET /v1/models bodies, per group */
    size_t *models_off;     /* group g's: [models_off[g], models_off[g + 1]) */
    uint32_t shm_idx;       /* our proc entry */
    tg_shm_lease_t *leases; /* our concurrency leases in shm */
    uint32_t nleases;
    uint32_t *lease_free; /* stack of free lease indexes */
    uint32_t nlease_free;
    _Atomic uint32_t *ep_mine;   /* our in-flight count per endpoint */
    tg_shm_inflight_t *inflight; /* our in-flight request table in shm */
    uint32_t ninflight;
    uint32_t *inflight_free; /* stack of free in-flight entries */
    uint32_t ninflight_free;
    uint64_t spooled; /* usage records that went to the spool */
} tg_worker_t;

/*
 * Run a worker on <listen_fd> with <conf> and the region <shm>, using
 * shared proc entry <shm_idx>, as slot <slot>.  Never returns.
 */
void tg_worker_main(const tg_conf_t *conf, tg_shm_t *shm, uint32_t shm_idx,
                    int slot, int listen_fd) __attribute__((noreturn));

#endif /* TG_WORKER_WORKER_H */
