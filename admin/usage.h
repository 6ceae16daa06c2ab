/*
 * admin/usage.h
 *      Prices and quotas from PostgreSQL into shared memory: the price
 *      seed, the prices in force, the quota sums of the current periods,
 *      and the detail table's partitions.
 *
 * NOTES
 *      Admin only, on admin's loop, on a connection of its own; nothing
 *      here blocks.  The routes of /admin/api/usage and /admin/api/prices
 *      are in admin/api_usage.c.
 */
#ifndef TG_ADMIN_USAGE_H
#define TG_ADMIN_USAGE_H

#include "core/conf.h"
#include "core/ev.h"
#include "shm/shm.h"

/* The shipped price list (conf/prices.json, embedded at build). */
extern const char tg_sql_prices_seed[];

/* Start the sync on <loop>: at once when the database is ready, then
 * every usage.sync_interval and on price notifications.  TG_OK, or
 * TG_ERROR (logged); config-only mode does nothing and returns TG_OK. */
int tg_usage_start(tg_ev_loop_t *loop, const tg_conf_t *conf, tg_shm_t *shm);

void tg_usage_stop(void);

#endif /* TG_ADMIN_USAGE_H */
