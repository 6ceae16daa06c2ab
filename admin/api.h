/*
 * admin/api.h
 *      The admin HTTP API: the admin listener's server, its routes and the
 *      bootstrap administrator.
 *
 * NOTES
 *      Admin only; runs on admin's event loop and never blocks: the
 *      database is the store's connection (admin/store.h, admin/pg.h),
 *      usable once the store is READY (migrated and published); outbound
 *      requests go through admin/webhook.h.  Every route but GET /healthz and
 * the login routes needs "Authorization: Bearer <token>".  docs/admin-api.md is
 * the reference of the routes.
 */
#ifndef TG_ADMIN_API_H
#define TG_ADMIN_API_H

#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the API needs besides the config; every pointer must outlive
 * tg_api_stop (they normally point into the config). */
typedef struct {
    const char *secret_key;             /* admin.secret_key; NULL:
                                           "run/secret.key" */
    const char *const *old_secret_keys; /* admin.old_secret_keys */
    size_t nold_secret_keys;
    const char *bootstrap_password; /* NULL or "": random, logged once */
    const char *code_webhook;       /* NULL or "": code login off */
    uint32_t session_ttl_s;         /* 0: 12 hours */
} tg_api_opts_t;

/*
 * Serve the admin API on <listen_fd> (-1: none) in <loop>, with <conf>
 * and <shm> for the live endpoint and process views; call after
 * tg_store_start.  Loads the secret
 * key (created at first start); without it the routes that seal or open
 * secrets answer 503 and the rest work.  Once the database is ready, an
 * administrator is created if none exists.  TG_OK, or TG_ERROR (logged)
 * when the listener cannot be watched.
 */
int tg_api_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm,
                 int listen_fd, const tg_api_opts_t *opts);

/* Close every connection and stop; pending statements are forgotten. */
void tg_api_stop(void);

#endif /* TG_ADMIN_API_H */
