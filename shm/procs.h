/*
 * shm/procs.h
 *      Per-process slots: one for each worker slot and one for admin.
 *
 * NOTES
 *      Written by: master (pid, generation and start time when it forks a
 *      child; zeroes the counters when it reaps one) and by the child itself
 *      (its counters).  Read by: admin (status, metrics) and master.
 *      Consistency: every field is an atomic written with relaxed order; the
 *      readers want counters, not snapshots.  A child that dies mid-update
 *      leaves at worst one counter off by one, and master resets the
 *      gauges (active connections, in-flight) of a slot when it reaps the
 *      child, so a crash never leaks a gauge.
 *      Each slot is one cache line: the workers bump their own counters on
 *      every request, and sharing a line between two workers would make
 *      those increments bounce it between cores.
 */
#ifndef TG_SHM_PROCS_H
#define TG_SHM_PROCS_H

#include "shm/layout.h"

#include <stdatomic.h>

typedef struct {
    alignas(TG_SHM_CACHELINE) _Atomic int32_t pid; /* 0 = no process */
    uint32_t slot;                /* index; admin is the last one */
    _Atomic uint64_t generation;  /* config generation it runs */
    _Atomic uint64_t started_ms;  /* wall clock at fork */
    _Atomic uint64_t requests;    /* requests finished (monotonic) */
    _Atomic uint64_t connections; /* accepted (monotonic) */
    _Atomic uint64_t active;      /* open client connections (gauge) */
    _Atomic uint64_t inflight;    /* upstream transfers (gauge) */
    _Atomic uint64_t errors;      /* requests answered >= 500 */
} tg_shm_proc_t;

_Static_assert(sizeof(tg_shm_proc_t) == 64, "tg_shm_proc_t is one line");
_Static_assert(offsetof(tg_shm_proc_t, requests) == 24, "proc layout");

#endif /* TG_SHM_PROCS_H */
