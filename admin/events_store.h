/*
 * admin/events_store.h
 *      Endpoint events into PostgreSQL (table endpoint_events): a bounded
 *      buffer of events and batched inserts on the store's connection.
 *
 * NOTES
 *      Admin only, on admin's loop; nothing here blocks.  admin/events.c
 *      hands every event it drains from the ring to tg_events_store_add
 *      and calls tg_events_store_tick once per drain round.  While the
 *      database is down or not configured, events wait in the buffer (at
 *      most TG_EVENTS_STORE_MAX); beyond it new events are dropped and
 *      counted (tollgate_endpoint_events_total{result="dropped"}).  What
 *      waits is also in usage.spool_dir/events.journal, read back when
 *      admin starts again.  The events log, when on, still has them all.
 */
#ifndef TG_ADMIN_EVENTS_STORE_H
#define TG_ADMIN_EVENTS_STORE_H

#include "core/conf.h"

#include <stddef.h>
#include <stdint.h>

#define TG_EVENTS_STORE_MAX 8192 /* events buffered for PostgreSQL at most */

typedef struct {
    uint64_t stored;  /* events PostgreSQL accepted */
    uint64_t dropped; /* events lost: buffer full, or refused as bad */
    uint64_t failed;  /* insert statements that failed (retried or not) */
    uint32_t pending; /* events waiting in the buffer now */
} tg_events_store_stats_t;

/* Set up for <conf> (kept; events_months, database and spool_dir) and
 * read back the events the journal holds.  Config-only mode keeps
 * nothing.  TG_OK, or TG_ERROR when out of memory (logged). */
int tg_events_store_init(const tg_conf_t *conf);
void tg_events_store_fini(void);

/* Buffer the event <json> (one JSON object as log.events writes it, <len>
 * bytes, no newline) for PostgreSQL.  Never blocks. */
void tg_events_store_add(const char *json, size_t len);

/* Send what is buffered when the database is ready and no insert is in
 * flight (at most once per TG_EVENTS_STORE_FLUSH_MS unless the buffer
 * holds many), and keep the monthly partitions.  <now_ms> is monotonic. */
void tg_events_store_tick(uint64_t now_ms);

/* The counters for /metrics; never NULL. */
const tg_events_store_stats_t *tg_events_store_stats(void);

#endif /* TG_ADMIN_EVENTS_STORE_H */
