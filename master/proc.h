/*
 * master/proc.h
 *      Process helpers for master: titles, listening sockets, pid file,
 *      daemonizing.
 *
 * NOTES
 *      Master only.  Children inherit what these set up across fork.
 */
#ifndef TG_MASTER_PROC_H
#define TG_MASTER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Remember the argv area so tg_proc_set_title can overwrite it. */
void tg_proc_title_init(int argc, char **argv);
/* Set the title shown by ps ("tollgate: worker 3") and the thread name. */
void tg_proc_set_title(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Open a non-blocking TCP listening socket on <addr>:<port> with
 * SO_REUSEADDR and, when <reuseport>, SO_REUSEPORT.  Returns the fd (owned
 * by the caller) or -1 after logging.
 */
int tg_proc_listen(const char *addr, int port, bool reuseport);

/*
 * Write our pid to <path>, refusing (TG_ERROR, logged) when it names a live
 * tollgate process.  TG_OK otherwise.
 */
int tg_proc_pidfile_write(const char *path);
/* Read the pid from <path>; -1 when absent or unreadable. */
pid_t tg_proc_pidfile_read(const char *path);

/* Detach from the terminal; returns in the daemon only. TG_OK/TG_ERROR. */
int tg_proc_daemonize(void);

#endif /* TG_MASTER_PROC_H */
