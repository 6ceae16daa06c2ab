/*
 * admin/admin.h
 *      The admin process: admin HTTP API and control-plane work.
 *
 * NOTES
 *      One process with its own event loop.  It is the only writer of the
 *      shared tables (from the key-table issue on); for now it serves
 *      /healthz and /status, the latter read from the shared proc table.
 */
#ifndef TG_ADMIN_ADMIN_H
#define TG_ADMIN_ADMIN_H

#include "core/conf.h"
#include "shm/shm.h"

#include <stdint.h>

/* Run admin on <listen_fd>; never returns. */
void tg_admin_main(const tg_conf_t *conf, tg_shm_t *shm, uint32_t shm_idx,
                   int listen_fd) __attribute__((noreturn));

#endif /* TG_ADMIN_ADMIN_H */
