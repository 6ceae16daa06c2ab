/*
 * core/log.h
 *      Error log and access log.
 *
 * NOTES
 *      Lines are "time [level] pid role#slot: message (errno: text)".  Each
 *      line is written with one write(2) on an O_APPEND fd, so lines from
 *      several processes never interleave.  The access log is a separate
 *      file, one line per request.
 */
#ifndef TG_CORE_LOG_H
#define TG_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum { TG_LOG_ERR = 0, TG_LOG_WARN, TG_LOG_NOTICE, TG_LOG_INFO, TG_LOG_DEBUG };

/* Open the logs; a NULL or "-" path means stderr.  TG_OK or TG_ERROR. */
int tg_log_open(const char *error_path, const char *access_path, int level);

/* Reopen both files (after USR1 and log rotation).  TG_OK or TG_ERROR. */
int tg_log_reopen(void);

/* Set the role word shown in each line ("master", "worker", "admin"). */
void tg_log_set_role(const char *role, int slot);

/* Parse "error", "warn", "notice", "info", "debug"; -1 when unknown. */
int tg_log_level_parse(const char *name);

/* Log at <level>; <err> is an errno value or 0. */
void tg_log(int level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write one preformatted line (without newline) to the access log. */
void tg_log_access(const char *line, size_t len);

/* True when <level> would be written. */
int tg_log_enabled(int level);

/*
 * (Re)open the append-only data log at <path> into *<fdp> (usage, events):
 * "off" leaves it closed.  The old fd is closed only once the new one is
 * open.  TG_OK, or TG_ERROR after logging.
 */
int tg_log_file_reopen(const char *path, int *fdp);

/* True when an access log is open (callers skip formatting otherwise). */
int tg_log_access_enabled(void);

#endif /* TG_CORE_LOG_H */
