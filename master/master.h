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

/*
 * Raise this process's descriptor limit (RLIMIT_NOFILE, inherited by the
 * workers and admin) to what <conf> needs: each worker holds up to
 * limits.max_connections client sockets and as many upstream ones, plus a
 * margin (TG_MASTER_NOFILE_MARGIN); admin holds its 256 connections.  The
 * soft limit goes up to the hard one; past that the hard limit too, when
 * the process may (CAP_SYS_RESOURCE).  Returns the soft limit now in
 * force; when it is still short of the need, or the system-wide
 * fs.file-max is below workers x the need, <warn> (<len> bytes) says so
 * (otherwise it is empty).
 */
int tg_master_nofile(const tg_conf_t *conf, char *warn, size_t len);

#define TG_MASTER_NOFILE_MARGIN 256

#endif /* TG_MASTER_MASTER_H */
