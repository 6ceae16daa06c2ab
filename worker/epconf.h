/*
 * worker/epconf.h
 *      The worker's copy of the endpoint and group configuration, kept in
 *      step with shared memory (shm/epconf.h).
 *
 * NOTES
 *      Worker only; never blocks.  At start the worker's configuration
 *      (w->conf) becomes a private copy of the file's whose endpoints and
 *      groups are the slots of the shared table, indexed as there: the
 *      endpoint index routing, proxying, usage records and the health
 *      counters (shm/ep.h) use is the slot.  tg_epconf_refresh, called
 *      once per request before anything reads them, loads the table
 *      generation (one atomic load) and, when it moved, copies every
 *      entry under its seqlock into the same arrays and rebuilds the
 *      route state.  The arrays never move, so a pointer into them stays
 *      valid; a slot whose endpoint was deleted keeps its name and is no
 *      longer enabled.
 */
#ifndef TG_WORKER_EPCONF_H
#define TG_WORKER_EPCONF_H

#include "worker/worker.h"

/* Replace w->conf with the copy backed by shared memory and fill it.
 * Startup only; TG_OK or TG_ERROR (logged). */
int tg_epconf_init(tg_worker_t *w);

/* Bring the copy up to date when the table generation moved.  One atomic
 * load when nothing changed. */
void tg_epconf_refresh(tg_worker_t *w);

/* Free the copy (w->conf goes back to the file's). */
void tg_epconf_fini(tg_worker_t *w);

#endif /* TG_WORKER_EPCONF_H */
