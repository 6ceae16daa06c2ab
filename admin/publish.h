/*
 * admin/publish.h
 *      Publish users, keys, model patterns and endpoints into shared
 *      memory.
 *
 * NOTES
 *      Admin only: it is the single writer of these tables.  The source of
 *      truth is the configuration file for now (the database later); every
 *      publish is a full reconciliation, so a restarted admin repairs
 *      whatever a crashed one left half-written.
 */
#ifndef TG_ADMIN_PUBLISH_H
#define TG_ADMIN_PUBLISH_H

#include "core/conf.h"
#include "shm/shm.h"

/*
 * Make the shared tables match <conf>: model patterns, users, keys (new
 * ones inserted with fresh rate-limit state, changed ones updated in
 * place, ones no longer configured deleted) and endpoint names.  Returns
 * TG_OK, or TG_ERROR after logging (a table full; what fitted is live).
 */
int tg_publish_all(const tg_conf_t *conf, tg_shm_t *shm);

#endif /* TG_ADMIN_PUBLISH_H */
