/*
 * master/master.h
 *      The supervising master process.
 *
 * NOTES
 *      Master never handles traffic: it owns the config, the shared region
 *      and the listening sockets, forks the workers and admin, and acts on
 *      signals (nginx semantics, except that QUIT is the immediate stop).
 */
#ifndef TG_MASTER_MASTER_H
#define TG_MASTER_MASTER_H

#include "core/conf.h"

#include <stdbool.h>

#define TG_MASTER_MAX_WORKERS 64

/*
 * Run master with <conf> (ownership passes to master) until stopped.
 * <daemonize> detaches first.  Returns the process exit status.
 */
int tg_master_run(tg_conf_t *conf, bool daemonize);

#endif /* TG_MASTER_MASTER_H */
