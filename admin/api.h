/*
 * admin/api.h
 *      The admin HTTP API: the admin listener's server, its routes and the
 *      bootstrap administrator.
 *
 * NOTES
 *      Admin only; runs on admin's event loop and never blocks: the
 *      database is reached through admin/pg.h, outbound requests through
 *      admin/webhook.h.  Every route but GET /healthz and the login routes
 *      needs "Authorization: Bearer <token>".  docs/admin-api.md is the
 *      reference of the routes.
 */
#ifndef TG_ADMIN_API_H
#define TG_ADMIN_API_H

#include "admin/pg.h"
#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the API needs besides the config; every pointer must outlive
 * tg_api_stop (they normally point into the config). */
typedef struct {
    tg_pg_t *pg; /* the database; NULL in config-only mode (routes that
                    need it answer 503) */
    /* True once the tg_api functions are in place (migrations done); NULL:
     * a READY connection is enough. */
    bool (*db_ready)(void *ctx);
    /* The database state word for /healthz ("ready", "starting", "down",
     * "none"); NULL: derived from tg_pg_state. */
    const char *(*db_state)(void *ctx);
    void *db_ctx;
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
 * and <shm> for the live endpoint and process views.  Loads the secret
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
