/*
 * shm/inflight.h
 *      Requests in flight, per worker: what a worker's usage record would
 *      say so far, so that a worker that dies still ends its requests.
 *
 * NOTES
 *      Written by: each worker, in its own array only (proc entry <idx>
 *      owns entries [idx * per_proc, (idx + 1) * per_proc)): an entry is
 *      opened when a request is admitted, updated as the response goes
 *      out (status, endpoint, bytes, tokens seen so far) and closed right
 *      after the request's usage record was published.  Read by: master,
 *      only after waitpid() reported that worker dead, so there is never a
 *      writer and a reader at the same time and no lock or seqlock is
 *      needed; request_id is stored last on open (release) and read first
 *      (acquire), so an entry that reads as open is fully written.
 *      Repair: master's tg_shm_inflight_reap() turns every open entry of
 *      a dead worker into one usage record with outcome worker_crashed and
 *      the usage known so far (flagged unknown unless it was final), then
 *      closes it, before it forks the replacement.  A worker that dies
 *      between publishing a record and closing its entry leaves a
 *      duplicate with the same request_id, which admin's import
 *      deduplicates (shm/ring.h).  Each entry is two cache lines, owned by
 *      one process.
 */
#ifndef TG_SHM_INFLIGHT_H
#define TG_SHM_INFLIGHT_H

#include "shm/layout.h"
#include "shm/ring.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* tg_shm_inflight_t.state bits. */
#define TG_SHM_INFLIGHT_KNOWN 0x01u /* the tokens so far are final */

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic uint64_t request_id; /* 0 = free */
    uint64_t start_ms;  /* wall clock when the request started */
    uint64_t start_us;  /* monotonic clock then (latency) */
    uint32_t user;      /* as in the usage record: user id, 0 none */
    uint32_t key_id;    /* API key id, 0 none */
    uint16_t endpoint;  /* endpoint index; UINT16_MAX none yet */
    uint16_t status;    /* status sent to the client, 0 none yet */
    uint8_t flags;      /* TG_USAGE_F_* so far */
    uint8_t attempts;   /* upstream attempts so far */
    uint8_t state;      /* TG_SHM_INFLIGHT_* */
    uint8_t reserved0;  /* zero */
    uint64_t bytes_in;  /* request bytes read */
    uint64_t bytes_out; /* response body bytes sent so far */
    uint32_t tokens[TG_USAGE_NTOKENS]; /* by TG_USAGE_TOK_*, so far */
    char model[48];                    /* model name, NUL-padded, truncated */
} tg_shm_inflight_t;

_Static_assert(sizeof(tg_shm_inflight_t) == 128,
               "tg_shm_inflight_t changed: bump TG_SHM_LAYOUT_VERSION");
_Static_assert(offsetof(tg_shm_inflight_t, endpoint) == 32, "inflight layout");
_Static_assert(offsetof(tg_shm_inflight_t, tokens) == 56, "inflight layout");
_Static_assert(offsetof(tg_shm_inflight_t, model) == 80, "inflight layout");

/* Bytes of the table for <per_proc> entries per proc and <nprocs> procs;
 * 0 on overflow. */
size_t tg_shm_inflight_size(uint32_t per_proc, uint32_t nprocs);

/* Proc entry <idx>'s array in <table> of <per_proc> entries each. */
static inline tg_shm_inflight_t *
tg_shm_inflight_of(void *table, uint32_t per_proc, uint32_t idx)
{
    return (tg_shm_inflight_t *)table + (size_t)idx * per_proc;
}

/* Open entry <e> as a copy of <init> (whose request_id is not 0). */
void tg_shm_inflight_open(tg_shm_inflight_t *e, const tg_shm_inflight_t *init);

/* Close entry <e>: its request's record is published. */
void tg_shm_inflight_close(tg_shm_inflight_t *e);

/* The usage record of crashed entry <e> at <now_ms>, <now_us>, as
 * published by process <pid>.  Pure. */
void tg_shm_inflight_record(const tg_shm_inflight_t *e, int32_t pid,
                            uint64_t now_ms, uint64_t now_us,
                            tg_usage_rec_t *rec);

/*
 * Master, after a worker died: for each of the <n> entries at <e> that
 * is open, publish its worker_crashed record to <ring> (or append it to
 * <spool_dir>'s spool of <pid> when the ring is full) and close it.
 * <pid> is the caller's.  Returns the records written; *<lost> counts
 * those neither the ring nor the spool took.
 */
uint32_t tg_shm_inflight_reap(tg_shm_inflight_t *e, uint32_t n,
                              tg_shm_ring_t *ring, const char *spool_dir,
                              int32_t pid, uint32_t *lost);

#endif /* TG_SHM_INFLIGHT_H */
