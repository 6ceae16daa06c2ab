/*
 * core/log.c
 *      Error log and access log.
 *
 * NOTES
 *      Every process keeps its own fds; USR1 makes each one reopen its
 *      files.  Never called from a signal handler.
 */
#include "core/log.h"
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int tg_log_level = TG_LOG_INFO;
static int tg_log_fd = STDERR_FILENO;
static int tg_log_access_fd = -1;
static char tg_log_error_path[4096];
static char tg_log_access_path[4096];
static const char *tg_log_role = "master";
static int tg_log_slot = -1;

static const char *tg_log_names[] = {"error", "warn", "notice", "info",
                                     "debug"};


static int
tg_log_open_file(const char *path, int *fdp)
{
    int fd;

    if (path[0] == '\0' || strcmp(path, "-") == 0) {
        fd = STDERR_FILENO;
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            fprintf(stderr, "tollgate: open(\"%s\") failed (%d: %s)\n", path,
                    errno, strerror(errno));
            return TG_ERROR;
        }
    }
    if (*fdp > STDERR_FILENO) {
        close(*fdp);
    }
    *fdp = fd;
    return TG_OK;
}


/*
 * Open the error log at <error_path> and the access log at <access_path>
 * (NULL or "-" for stderr; an access path of "off" disables it) and set the
 * threshold <level>.  Returns TG_OK or TG_ERROR after printing to stderr.
 */
int
tg_log_open(const char *error_path, const char *access_path, int level)
{
    tg_log_level = level;
    snprintf(tg_log_error_path, sizeof(tg_log_error_path), "%s",
             error_path ? error_path : "-");
    snprintf(tg_log_access_path, sizeof(tg_log_access_path), "%s",
             access_path ? access_path : "-");
    return tg_log_reopen();
}


/*
 * Reopen both log files by path, e.g. after rotation.  The old fds are
 * closed only once the new ones are open.
 */
int
tg_log_reopen(void)
{
    int rc = TG_OK;

    if (tg_log_open_file(tg_log_error_path, &tg_log_fd) != TG_OK) {
        rc = TG_ERROR;
    }
    if (strcmp(tg_log_access_path, "off") == 0) {
        if (tg_log_access_fd > STDERR_FILENO) {
            close(tg_log_access_fd);
        }
        tg_log_access_fd = -1;
    } else if (tg_log_open_file(tg_log_access_path, &tg_log_access_fd) !=
               TG_OK) {
        rc = TG_ERROR;
    }
    return rc;
}


/*
 * Set the role shown in log lines; <slot> < 0 omits the "#slot" part.
 * <role> must be a string literal or otherwise outlive the process.
 */
void
tg_log_set_role(const char *role, int slot)
{
    tg_log_role = role;
    tg_log_slot = slot;
}


/* Map a level name to its number, or -1. */
int
tg_log_level_parse(const char *name)
{
    size_t i;

    for (i = 0; i < TG_NELEMS(tg_log_names); i++) {
        if (strcmp(name, tg_log_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcmp(name, "warning") == 0) {
        return TG_LOG_WARN;
    }
    return -1;
}


/* True when a message at <level> would be written. */
int
tg_log_enabled(int level)
{
    return level <= tg_log_level;
}


/* See log.h. */
int
tg_log_file_reopen(const char *path, int *fdp)
{
    int fd;

    if (strcmp(path, "off") == 0) {
        return TG_OK;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1) {
        tg_log(TG_LOG_ERR, errno, "open(\"%s\") failed", path);
        return TG_ERROR;
    }
    if (*fdp != -1) {
        close(*fdp);
    }
    *fdp = fd;
    return TG_OK;
}


/* True when access-log lines are written somewhere. */
int
tg_log_access_enabled(void)
{
    return tg_log_access_fd >= 0;
}


/*
 * Format and write one error-log line.  <err> is an errno value appended
 * as "(err: text)", or 0.  Lines longer than 2 KB are truncated.
 */
void
tg_log(int level, int err, const char *fmt, ...)
{
    char buf[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;
    ssize_t rc;

    if (level > tg_log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, sizeof(buf), "%Y/%m/%d %H:%M:%S", &tm);
    if (tg_log_slot >= 0) {
        k = snprintf(buf + n, sizeof(buf) - n,
                     ".%03ld [%s] %d %s#%d: ", ts.tv_nsec / 1000000,
                     tg_log_names[level], (int)getpid(), tg_log_role,
                     tg_log_slot);
    } else {
        k = snprintf(buf + n, sizeof(buf) - n,
                     ".%03ld [%s] %d %s: ", ts.tv_nsec / 1000000,
                     tg_log_names[level], (int)getpid(), tg_log_role);
    }
    n += (k > 0) ? (size_t)k : 0;
    va_start(ap, fmt);
    k = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
    va_end(ap);
    n += (k > 0) ? (size_t)k : 0;
    if (n > sizeof(buf) - 64) {
        n = sizeof(buf) - 64;
    }
    if (err != 0) {
        k = snprintf(buf + n, sizeof(buf) - n, " (%d: %s)", err, strerror(err));
        n += (k > 0) ? (size_t)k : 0;
        if (n > sizeof(buf) - 2) {
            n = sizeof(buf) - 2;
        }
    }
    buf[n++] = '\n';
    rc = write(tg_log_fd, buf, n);
    (void)rc;
}


/*
 * Append <line> of <len> bytes plus a newline to the access log with one
 * write(2).  Lines longer than 4 KB are truncated.
 */
void
tg_log_access(const char *line, size_t len)
{
    char buf[4096];
    ssize_t rc;

    if (tg_log_access_fd < 0) {
        return;
    }
    if (len > sizeof(buf) - 1) {
        len = sizeof(buf) - 1;
    }
    memcpy(buf, line, len);
    buf[len++] = '\n';
    rc = write(tg_log_access_fd, buf, len);
    (void)rc;
}
