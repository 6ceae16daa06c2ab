/*
 * shm/inflight.c
 *      Per-worker in-flight requests, and the records of a dead worker's.
 *
 * NOTES
 *      Workers open and close their own entries; master reaps a dead
 *      worker's.  See inflight.h for the protocol.
 */
#include "shm/inflight.h"
#include "shm/spool.h"

#include <string.h>
#include <time.h>


/* See inflight.h. */
size_t
tg_shm_inflight_size(uint32_t per_proc, uint32_t nprocs)
{
    size_t n;

    if (__builtin_mul_overflow((size_t)per_proc, (size_t)nprocs, &n) ||
        __builtin_mul_overflow(n, sizeof(tg_shm_inflight_t), &n)) {
        return 0;
    }
    return n;
}


/* See inflight.h. */
void
tg_shm_inflight_open(tg_shm_inflight_t *e, const tg_shm_inflight_t *init)
{
    memcpy((char *)e + sizeof(uint64_t), (const char *)init + sizeof(uint64_t),
           sizeof(*e) - sizeof(uint64_t));
    atomic_store_explicit(
        &e->request_id,
        atomic_load_explicit(&init->request_id, memory_order_relaxed),
        memory_order_release);
}


/* See inflight.h. */
void
tg_shm_inflight_close(tg_shm_inflight_t *e)
{
    atomic_store_explicit(&e->request_id, 0, memory_order_release);
}


/* See inflight.h. */
void
tg_shm_inflight_record(const tg_shm_inflight_t *e, int32_t pid, uint64_t now_ms,
                       uint64_t now_us, tg_usage_rec_t *rec)
{
    int i;

    memset(rec, 0, sizeof(*rec));
    rec->request_id =
        atomic_load_explicit(&e->request_id, memory_order_acquire);
    rec->time_ms = now_ms;
    rec->user = e->user;
    rec->key_id = e->key_id;
    rec->endpoint = e->endpoint;
    rec->status = e->status;
    rec->outcome = TG_USAGE_WORKER_CRASHED;
    /* What was seen before the crash is kept; unless the final usage had
     * been read, the counts are not facts. */
    rec->flags = (uint8_t)(e->flags | ((e->state & TG_SHM_INFLIGHT_KNOWN)
                                           ? 0
                                           : TG_USAGE_F_UNKNOWN));
    rec->attempts = e->attempts;
    rec->pid = pid;
    for (i = 0; i < TG_USAGE_NTOKENS; i++) {
        rec->tokens[i] = e->tokens[i];
    }
    rec->latency_us = now_us > e->start_us ? now_us - e->start_us : 0;
    rec->bytes_in = e->bytes_in;
    rec->bytes_out = e->bytes_out;
    memcpy(rec->model, e->model, strnlen(e->model, sizeof(e->model)));
}


static uint64_t
tg_shm_inflight_clock(clockid_t id, uint64_t div)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) / div;
}


/* See inflight.h. */
uint32_t
tg_shm_inflight_reap(tg_shm_inflight_t *e, uint32_t n, tg_shm_ring_t *ring,
                     const char *spool_dir, int32_t pid, uint32_t *lost)
{
    uint64_t now_ms = tg_shm_inflight_clock(CLOCK_REALTIME, 1000000);
    uint64_t now_us = tg_shm_inflight_clock(CLOCK_MONOTONIC, 1000);
    tg_usage_rec_t rec;
    uint32_t i, done = 0;

    *lost = 0;
    for (i = 0; i < n; i++) {
        if (atomic_load_explicit(&e[i].request_id, memory_order_acquire) == 0) {
            continue;
        }
        tg_shm_inflight_record(&e[i], pid, now_ms, now_us, &rec);
        if (tg_shm_ring_publish(ring, &rec) == TG_SHM_OK ||
            tg_shm_spool_append(spool_dir, pid, &rec) == TG_SHM_OK) {
            done++;
        } else {
            (*lost)++;
        }
        tg_shm_inflight_close(&e[i]);
    }
    return done;
}
