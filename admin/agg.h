/*
 * admin/agg.h
 *      Usage records: drain the shared ring and the overflow spool into
 *      admin's journal, and flush them to PostgreSQL as hourly aggregates.
 *
 * NOTES
 *      Admin only; it is the ring's single consumer.  See agg.c for the
 *      flow and agg_spool.c for why every record is counted exactly once.
 *      Each record is also written as one JSON line to usage.log (when
 *      set).
 */
#ifndef TG_ADMIN_AGG_H
#define TG_ADMIN_AGG_H

#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdint.h>

typedef struct {
    uint64_t records;      /* records drained since start */
    uint64_t spooled;      /* of which read from spool files */
    uint64_t skipped;      /* ring slots skipped (dead producers) */
    uint64_t bad;          /* spool frames that failed their check */
    uint64_t batches;      /* batches stored in PostgreSQL */
    uint64_t flush_errors; /* flushes that failed (and were retried) */
    uint64_t flushed_ms;   /* wall clock of the last batch stored, 0 none */
} tg_agg_stats_t;

/* Open the usage log and, with a database, the journal (recovering it).
 * TG_OK or TG_ERROR (logged). */
int tg_agg_init(const tg_conf_t *conf, tg_shm_t *shm);

/* Start flushing to PostgreSQL on <loop> (a connection of its own).
 * TG_OK or TG_ERROR (logged). */
int tg_agg_start(tg_ev_loop_t *loop);

/* Close the open batch and the connection; what is not flushed stays in
 * the journal for the next admin. */
void tg_agg_stop(void);

void tg_agg_fini(void);

#define TG_AGG_BATCH 4096 /* records one drain round takes at most */

/* Drain what the ring holds now (one round: at most TG_AGG_BATCH
 * records), close the batch when due and flush; returns the records
 * drained. */
uint32_t tg_agg_drain(void);

/* Ingest the spool directory; returns the records read. */
uint32_t tg_agg_ingest(void);

/* Reopen the usage log (USR1). */
void tg_agg_reopen(void);

const tg_agg_stats_t *tg_agg_stats(void);

/* Batches not yet stored in PostgreSQL (closed ones, plus the open one
 * when it holds records). */
uint64_t tg_agg_pending(void);

#endif /* TG_ADMIN_AGG_H */
