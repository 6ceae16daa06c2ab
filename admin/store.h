/*
 * admin/store.h
 *      PostgreSQL as the system of record: admin's start-up state machine,
 *      migrations, config-file import, LISTEN/NOTIFY and publishing the
 *      database into shared memory.
 *
 * NOTES
 *      Admin only; everything runs on admin's event loop and never blocks
 *      (admin/pg.c).  See store.c for the states.
 */
#ifndef TG_ADMIN_STORE_H
#define TG_ADMIN_STORE_H

#include "admin/crypto.h"
#include "admin/pg.h"
#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

#include <stdbool.h>
#include <stddef.h>

/* One embedded SQL file (build/gen/sql.c, made by tools/embed-sql.sh). */
typedef struct {
    int version;      /* migrations: NNNN of the name; else 0 */
    const char *name; /* file name without .sql; NULL ends a table */
    const char *sql;  /* the text (migrations: with their bookkeeping) */
} tg_sql_file_t;

extern const tg_sql_file_t tg_sql_migrations[]; /* version order */
extern const tg_sql_file_t tg_sql_functions[];  /* name order */
extern const tg_sql_file_t tg_sql_views[];      /* name order */

/* What /healthz reports as "database". */
typedef enum {
    TG_STORE_NONE = 0,       /* config-only mode: no database configured */
    TG_STORE_CONNECTING = 1, /* connecting, migrating, importing, loading */
    TG_STORE_READY = 2,      /* published from the database; listening */
    TG_STORE_DOWN = 3,       /* connection lost or refused; retrying */
    TG_STORE_REFUSED = 4     /* schema newer than this binary; not retried */
} tg_store_state_t;

/*
 * Start the store on <loop> for <conf> and <shm>, after admin took the
 * writer role.  Config-only mode (no database): publishes the file and
 * sets shm "published" at once.  With a database: publishes the file
 * first only when nothing was published yet (a first start), then
 * connects and runs the start-up in the background; "published" is set
 * when the database state is in shared memory, or after
 * conf->database_start_timeout_ms, whichever comes first.  TG_OK, or
 * TG_ERROR when out of memory (logged).
 */
int tg_store_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm);

/* Close the connection and free the store; admin is stopping. */
void tg_store_stop(void);

tg_store_state_t tg_store_state(void);

/* "none", "connecting", "ready", "down" or "refused", for /healthz. */
const char *tg_store_state_name(void);

/*
 * The database connection for admin routes, or NULL in config-only mode.
 * Queries fail (TG_ERROR) unless tg_pg_state() is TG_PG_READY; routes
 * should also check tg_store_state() == TG_STORE_READY, so nothing runs
 * against a schema that is not migrated yet.
 */
tg_pg_t *tg_store_pg(void);

/* <err>: the first error (for the log; names no secret), "" when ok. */
/* Called when a tg_store_ep_load ends: <ok>, or the error <err>. */
typedef void (*tg_store_ep_done_pt)(void *ctx, bool ok, const char *err);

/*
 * Load every endpoint group and endpoint from <pg>, open the credentials
 * with <kr> (NULL: none opens; config-file endpoints stored without one
 * take <conf>'s) and publish them into <shm> (admin/publish_ep.h), then
 * <done>(<ctx>, ...).  Admin only, never blocks.  TG_OK when the load is
 * under way (done will be called), TG_ERROR when it could not start.
 */
int tg_store_ep_load(tg_pg_t *pg, const tg_conf_t *conf,
                     const tg_crypto_keyring_t *kr, tg_shm_t *shm,
                     tg_store_ep_done_pt done, void *ctx);

typedef void (*tg_store_import_done_cb)(void *ctx, bool ok, const char *err);

/*
 * Import what <conf> declares into the database on <pg> (READY), in one
 * transaction (admin/store_import.c); endpoint credentials are sealed
 * with <kr> (NULL: stored as NULL).  <done>(<ctx>, ok, err) runs once
 * when it ended, possibly before this returns; the caller logs.  TG_OK, or
 * TG_ERROR (nothing queued, <done> not called) when out of memory or not READY.
 */
int tg_store_import(tg_pg_t *pg, const tg_conf_t *conf,
                    const tg_crypto_keyring_t *kr, tg_store_import_done_cb done,
                    void *ctx);

/* Embedded schema version (the highest migration). */
int tg_store_schema_version(void);

#endif /* TG_ADMIN_STORE_H */
