/*
 * master/proc.c
 *      Process titles, listening sockets, pid file, daemonizing.
 *
 * NOTES
 *      Master only, before and between forks.  The process title overwrites
 *      the contiguous argv strings (the environment is left alone, so long
 *      titles are cut at the length of the original command line).
 */
#include "master/proc.h"
#include "core/core.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tg_proc_title_area;
static size_t tg_proc_title_len;


/* Record the argv area of <argc>/<argv> for later titles. */
void
tg_proc_title_init(int argc, char **argv)
{
    char *end;
    int i;

    if (argc <= 0 || argv[0] == NULL) {
        return;
    }
    end = argv[0] + strlen(argv[0]);
    for (i = 1; i < argc; i++) {
        if (argv[i] != end + 1) {
            break;
        }
        end = argv[i] + strlen(argv[i]);
    }
    tg_proc_title_area = argv[0];
    tg_proc_title_len = (size_t)(end - argv[0]);
}


/* Set the process title from <fmt>; cut to the original argv length. */
void
tg_proc_set_title(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    prctl(PR_SET_NAME, buf + (strncmp(buf, "tollgate: ", 10) == 0 ? 10 : 0));
    if (tg_proc_title_area == NULL) {
        return;
    }
    n = strlen(buf);
    if (n > tg_proc_title_len) {
        n = tg_proc_title_len;
    }
    memcpy(tg_proc_title_area, buf, n);
    memset(tg_proc_title_area + n, '\0', tg_proc_title_len - n + 1);
}


/*
 * Open a listening socket on <addr>:<port>; see proc.h.  IPv4 and IPv6
 * literals and host names are accepted (the first address is used).
 */
int
tg_proc_listen(const char *addr, int port, bool reuseport)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, on = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(addr, portstr, &hints, &res);
    if (rc != 0) {
        tg_log(TG_LOG_ERR, 0, "getaddrinfo(\"%s\") failed (%s)", addr,
               gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        tg_log(TG_LOG_ERR, errno, "socket() failed");
        goto failed;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
        tg_log(TG_LOG_ERR, errno, "setsockopt(SO_REUSEPORT) failed");
        goto failed;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) == -1) {
        tg_log(TG_LOG_ERR, errno, "bind(%s:%d) failed", addr, port);
        goto failed;
    }
    if (listen(fd, 4096) == -1) {
        tg_log(TG_LOG_ERR, errno, "listen(%s:%d) failed", addr, port);
        goto failed;
    }
    freeaddrinfo(res);
    return fd;

failed:
    if (fd != -1) {
        close(fd);
    }
    freeaddrinfo(res);
    return -1;
}


/* Read a pid from <path>; -1 when the file is absent or malformed. */
pid_t
tg_proc_pidfile_read(const char *path)
{
    char buf[32];
    ssize_t n;
    long pid;
    char *end;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0 || pid > 4194304) {
        return -1;
    }
    return (pid_t)pid;
}


static bool
tg_proc_is_tollgate(pid_t pid)
{
    char path[64], cmd[256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return false;
    }
    n = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    cmd[n] = '\0';
    return strstr(cmd, "tollgate") != NULL;
}


/*
 * Write our pid to <path>.  Two masters on one port would both accept
 * (SO_REUSEPORT lets the second bind), so a pid file naming a live
 * tollgate is refused rather than overwritten.
 */
int
tg_proc_pidfile_write(const char *path)
{
    char buf[32];
    pid_t old;
    int fd, n;

    old = tg_proc_pidfile_read(path);
    if (old > 0 && old != getpid() && kill(old, 0) == 0 &&
        tg_proc_is_tollgate(old)) {
        tg_log(TG_LOG_ERR, 0,
               "pid file \"%s\" names running process %d; is tollgate "
               "already running?",
               path, (int)old);
        return TG_ERROR;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        tg_log(TG_LOG_ERR, errno, "open(\"%s\") failed", path);
        return TG_ERROR;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        tg_log(TG_LOG_ERR, errno, "write(\"%s\") failed", path);
        close(fd);
        return TG_ERROR;
    }
    close(fd);
    return TG_OK;
}


/* Fork into the background, start a session, point stdio at /dev/null. */
int
tg_proc_daemonize(void)
{
    pid_t pid;
    int fd;

    pid = fork();
    if (pid == -1) {
        tg_log(TG_LOG_ERR, errno, "fork() failed");
        return TG_ERROR;
    }
    if (pid > 0) {
        _exit(0);
    }
    if (setsid() == -1) {
        tg_log(TG_LOG_ERR, errno, "setsid() failed");
        return TG_ERROR;
    }
    umask(022);
    fd = open("/dev/null", O_RDWR);
    if (fd == -1) {
        tg_log(TG_LOG_ERR, errno, "open(\"/dev/null\") failed");
        return TG_ERROR;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDOUT_FILENO) {
        close(fd);
    }
    return TG_OK;
}
