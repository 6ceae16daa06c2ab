/*
 * admin/agg.h
 *      Usage records: drain the shared ring and the overflow spool.
 *
 * NOTES
 *      Admin only; it is the ring's single consumer.  Each record is
 *      written as one JSON line to usage.log (when set) and counted; the
 *      hourly aggregation into PostgreSQL builds on this drain.
 */
#ifndef TG_ADMIN_AGG_H
#define TG_ADMIN_AGG_H

#include "core/conf.h"
#include "shm/shm.h"

#include <stdint.h>

typedef struct {
    uint64_t records; /* records drained since start */
    uint64_t spooled; /* of which read from spool files */
    uint64_t skipped; /* ring slots skipped (dead producers) */
    uint64_t bad;     /* spool frames that failed their check */
} tg_agg_stats_t;

/* Open the usage log.  TG_OK or TG_ERROR (logged). */
int tg_agg_init(const tg_conf_t *conf, tg_shm_t *shm);
void tg_agg_fini(void);

/* Drain everything the ring holds now; returns the records drained. */
uint32_t tg_agg_drain(void);

/* Ingest the spool directory; returns the records read. */
uint32_t tg_agg_ingest(void);

/* Reopen the usage log (USR1). */
void tg_agg_reopen(void);

const tg_agg_stats_t *tg_agg_stats(void);

#endif /* TG_ADMIN_AGG_H */
