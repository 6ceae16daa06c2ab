/*
 * admin/publish_ep.h
 *      Publish endpoints and groups into shared memory (shm/epconf.h) and
 *      keep admin's own view of what is published.
 *
 * NOTES
 *      Admin only.  Rows come from the configuration file (config-only
 *      mode, and the first publish before the database answers) or from
 *      PostgreSQL (admin/store.c); both are tg_conf_endpoint_t and
 *      tg_conf_group_t rows whose group is named by group_name.  Every
 *      publish is a full one (the tables are small): slots are found by
 *      name in the shared table itself, so a restarted admin keeps every
 *      endpoint on its slot and its health counters; new names take a
 *      never-used slot first, then a slot deleted more than
 *      TG_SHM_EPCONF_GRACE_MS ago; names no longer published become GONE.
 *      Only entries that changed are written, and the table generation
 *      moves only when one did.
 *
 *      Admin's view (tg_publish_ep_conf) is a copy of the configuration
 *      whose endpoints and groups are the published slots, indexed as in
 *      shared memory: the health checker and the admin API's live state
 *      read it.  XXX: a restarted admin starts with an empty view and
 *      fills it at its first publish (the file's in config-only mode, the
 *      database's once it answers); until then the health checker has
 *      nothing to probe and the API lists no live state, while workers
 *      keep routing with the table.  Rebuilding the view from the table
 *      at start would close that gap.
 */
#ifndef TG_ADMIN_PUBLISH_EP_H
#define TG_ADMIN_PUBLISH_EP_H

#include "core/conf.h"
#include "shm/shm.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Set up admin's view for <conf> over the region <shm>, starting from
 * what the shared table already holds (a restarted admin).  Startup only;
 * TG_OK or TG_ERROR (logged, out of memory).
 */
int tg_publish_ep_init(const tg_conf_t *conf, tg_shm_t *shm);
void tg_publish_ep_fini(void);

/* Admin's view of the published configuration; the file's until
 * tg_publish_ep_init ran. */
const tg_conf_t *tg_publish_ep_conf(void);

/*
 * Make the shared table hold exactly the <ng> groups <groups> and the
 * <ne> endpoints <eps> (each eps[i].group_name names its group; ids[i],
 * may be NULL, is its database id).  A group named "default" always
 * takes slot 0 (one is made with default settings when absent).  An
 * endpoint whose group is not published, or that finds no free slot, is
 * left out and logged.  Returns the number of entries written (0: nothing
 * changed), or -1 when something was left out.
 */
int tg_publish_endpoints(tg_shm_t *shm, const tg_conf_group_t *groups,
                         size_t ng, const tg_conf_endpoint_t *eps, size_t ne,
                         const uint64_t *ids);

/* The group slot of <name>; 0 ("default") when it is not published. */
uint16_t tg_publish_group_index(const char *name);

#endif /* TG_ADMIN_PUBLISH_EP_H */
