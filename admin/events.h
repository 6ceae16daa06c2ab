/*
 * admin/events.h
 *      Endpoint events: drain the shared events ring into the events log.
 *
 * NOTES
 *      Admin only; it is the events ring's single consumer
 *      (shm/events.h).  Each event becomes one JSON line in log.events,
 *      in ring order (docs/failover.md gives the format and the matching
 *      PostgreSQL columns).  The ring is drained whether or not the log
 *      is on, so producers never find it full because nobody reads it.
 */
#ifndef TG_ADMIN_EVENTS_H
#define TG_ADMIN_EVENTS_H

#include "core/conf.h"
#include "shm/shm.h"

#include <stdint.h>

/* Open the events log (when not "off").  TG_OK or TG_ERROR (logged). */
int tg_events_init(const tg_conf_t *conf, tg_shm_t *shm);
void tg_events_fini(void);

/* Write out every event the ring holds now; returns how many.  Never
 * blocks on anything but the log file's write(2). */
uint32_t tg_events_drain(void);

/* Reopen the events log (USR1). */
void tg_events_reopen(void);

/*
 * Format event <ev> with id <id> as one JSON line (with its newline) for
 * host <host> into <buf> of <cap> bytes.  Returns the length, or 0 when
 * it does not fit.  Pure; for the drain and for tests.
 */
size_t tg_events_format(char *buf, size_t cap, const tg_shm_event_t *ev,
                        uint64_t id, const char *host);

#endif /* TG_ADMIN_EVENTS_H */
