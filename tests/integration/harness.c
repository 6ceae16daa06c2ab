/*
 * tests/integration/harness.c
 *      Helper processes, ports, configuration files and the tollgate plus
 *      mock fixture of the integration tests.
 *
 * NOTES
 *      Runs in a test's own process (forked by main.c).  Everything blocks,
 *      and every wait is bounded: a client read gives up after its timeout,
 *      a process wait after its own, so a hung server fails the test
 *      instead of hanging it (the runner's hard timeout is the last line).
 */
#include "tests/integration/harness.h"
#include "core/core.h"
#include "tests/integration/client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *tg_it_test_dir = ".";
static const char *tg_it_build_dir = "build";
static int tg_it_run_seq;


/* ------------------------------------------------------------ checks */

/* See harness.h. */
void
tg_it_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    /* _exit: a failed test leaves allocations behind on purpose, and the
     * leak checker of a sanitizer build must not bury the message. */
    _exit(1);
}


/* See harness.h. */
void
tg_it_check_int(const char *file, int line, const char *expr, long long got,
                long long want)
{
    if (got != want) {
        tg_it_fail(file, line, "%s is %lld, expected %lld", expr, got, want);
    }
}


/* See harness.h. */
void
tg_it_check_str(const char *file, int line, const char *expr, const char *got,
                const char *want)
{
    if (got == NULL || want == NULL) {
        if (got != want) {
            tg_it_fail(file, line, "%s is %s%s%s, expected %s%s%s", expr,
                       got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
                       want ? "\"" : "", want ? want : "NULL",
                       want ? "\"" : "");
        }
        return;
    }
    if (strcmp(got, want) != 0) {
        tg_it_fail(file, line, "%s is \"%s\", expected \"%s\"", expr, got,
                   want);
    }
}


/* See harness.h. */
void
tg_it_note(const char *fmt, ...)
{
    va_list ap;

    printf("note: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}


/* ---------------------------------------------------------- context */

/* See harness.h. */
void
tg_it_context_set(const char *dir, const char *build)
{
    tg_it_test_dir = dir;
    tg_it_build_dir = build;
}


/* See harness.h. */
const char *
tg_it_dir(void)
{
    return tg_it_test_dir;
}


/* See harness.h. */
const char *
tg_it_build(void)
{
    return tg_it_build_dir;
}


/* See harness.h. */
char *
tg_it_path(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", tg_it_test_dir, name);

    TG_IT_CHECKF(n > 0 && (size_t)n < len, "path \"%s/%s\" too long",
                 tg_it_test_dir, name);
    return buf;
}


/* See harness.h. */
uint64_t
tg_it_now_ms(void)
{
    return tg_time_mono_ms();
}


/* See harness.h. */
void
tg_it_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}


/* See harness.h. */
int
tg_it_port_free(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd, port;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TG_IT_CHECKF(fd != -1, "socket() failed: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TG_IT_CHECKF(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                 "bind(127.0.0.1:0) failed: %s", strerror(errno));
    TG_IT_CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}


/* See harness.h. */
bool
tg_it_port_wait(int port, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    tg_it_conn_t c;

    do {
        if (tg_it_conn_try_open(&c, port, 500) == TG_OK) {
            tg_it_conn_close(&c);
            return true;
        }
        tg_it_sleep_ms(20);
    } while (tg_it_now_ms() < deadline);
    return false;
}


/* ------------------------------------------------------- processes */

/* Append <pid> to "<dir>/pids" for the runner's clean-up. */
static void
tg_it_pid_record(pid_t pid)
{
    char path[4096];
    FILE *f;

    f = fopen(tg_it_path(path, sizeof(path), "pids"), "a");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}


/* In a freshly forked child: own process group, output to <out>, stdin
 * from /dev/null, default signal state. */
static void
tg_it_child_setup(const char *out)
{
    sigset_t none;
    int fd;

    setpgid(0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd != -1) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    fd = open("/dev/null", O_RDONLY);
    if (fd != -1) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
}


/* See harness.h. */
void
tg_it_proc_start(tg_it_proc_t *p, const char *name, char *const argv[])
{
    char file[64];
    pid_t pid;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(file, sizeof(file), "%s.out", name);
    tg_it_path(p->out, sizeof(p->out), file);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    TG_IT_CHECKF(pid != -1, "fork() failed: %s", strerror(errno));
    if (pid == 0) {
        tg_it_child_setup(p->out);
        execv(argv[0], argv);
        fprintf(stderr, "execv(\"%s\") failed: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* Both sides set the group, so it is in place whichever runs first. */
    setpgid(pid, pid);
    p->pid = pid;
    tg_it_pid_record(pid);
}


/* See harness.h. */
bool
tg_it_proc_wait(tg_it_proc_t *p, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    pid_t rc;

    if (p->reaped || p->pid == 0) {
        return true;
    }
    for (;;) {
        rc = waitpid(p->pid, &p->status, WNOHANG);
        if (rc == p->pid || (rc == -1 && errno == ECHILD)) {
            p->reaped = true;
            return true;
        }
        if (tg_it_now_ms() >= deadline) {
            return false;
        }
        tg_it_sleep_ms(10);
    }
}


/* See harness.h. */
void
tg_it_proc_signal(tg_it_proc_t *p, int signo)
{
    TG_IT_CHECKF(p->pid > 0 && !p->reaped, "%s is not running", p->name);
    TG_IT_CHECKF(kill(p->pid, signo) == 0, "kill(%d, %d) failed: %s",
                 (int)p->pid, signo, strerror(errno));
}


/* See harness.h. */
int
tg_it_proc_stop(tg_it_proc_t *p, int timeout_ms)
{
    int rc = -1;

    if (p->pid == 0) {
        return 0;
    }
    if (!p->reaped) {
        kill(p->pid, SIGTERM);
        if (!tg_it_proc_wait(p, timeout_ms)) {
            tg_it_note("%s (pid %d) did not stop within %d ms; killing it",
                       p->name, (int)p->pid, timeout_ms);
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            tg_it_proc_wait(p, 5000);
            rc = -1;
        } else {
            rc = p->status;
        }
    } else {
        rc = p->status;
    }
    /* Whatever is left of the group (workers of a master that died). */
    kill(-p->pid, SIGKILL);
    return rc;
}


/* See harness.h. */
int
tg_it_run(char *const argv[], char *out, size_t outlen, int timeout_ms)
{
    tg_it_proc_t p;
    char name[32], *text;
    size_t len;

    snprintf(name, sizeof(name), "run-%d", ++tg_it_run_seq);
    tg_it_proc_start(&p, name, argv);
    if (!tg_it_proc_wait(&p, timeout_ms)) {
        tg_it_proc_stop(&p, 100);
        return -1;
    }
    if (out != NULL && outlen > 0) {
        out[0] = '\0';
        text = tg_it_file_read(p.out, &len);
        if (text != NULL) {
            snprintf(out, outlen, "%s", text);
            free(text);
        }
    }
    return WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
}


/* See harness.h. */
char *
tg_it_file_read(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL, *t;
    size_t len = 0, cap = 0, n;

    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        if (cap - len < 4097) {
            cap = cap ? cap * 2 : 8192;
            t = realloc(buf, cap);
            if (t == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = t;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (lenp != NULL) {
        *lenp = len;
    }
    return buf;
}


/* See harness.h. */
void
tg_it_file_write(const char *path, const char *text)
{
    char tmp[4200];
    FILE *f;
    int n;

    /* Write and rename, so a process reading the file (tollgate on HUP)
     * never sees half of it. */
    n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    TG_IT_CHECK(n > 0 && (size_t)n < sizeof(tmp));
    f = fopen(tmp, "w");
    TG_IT_CHECKF(f != NULL, "fopen(\"%s\") failed: %s", tmp, strerror(errno));
    TG_IT_CHECK(fputs(text, f) >= 0);
    TG_IT_CHECK(fclose(f) == 0);
    TG_IT_CHECKF(rename(tmp, path) == 0, "rename(\"%s\") failed: %s", tmp,
                 strerror(errno));
}


/* See harness.h. */
bool
tg_it_file_wait(const char *path, const char *needle, int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    char *text;
    bool found;

    for (;;) {
        text = tg_it_file_read(path, NULL);
        found = text != NULL && strstr(text, needle) != NULL;
        free(text);
        if (found) {
            return true;
        }
        if (tg_it_now_ms() >= deadline) {
            return false;
        }
        tg_it_sleep_ms(20);
    }
}


/* See harness.h. */
int
tg_it_file_count(const char *path, const char *const needles[])
{
    char *text = tg_it_file_read(path, NULL), *line, *nl;
    int count = 0;
    size_t i;

    if (text == NULL) {
        return 0;
    }
    for (line = text; *line != '\0'; line = nl + 1) {
        bool all = true;

        nl = strchr(line, '\n');
        if (nl == NULL) {
            nl = line + strlen(line) - 1;
        } else {
            *nl = '\0';
        }
        for (i = 0; needles[i] != NULL && all; i++) {
            all = strstr(line, needles[i]) != NULL;
        }
        count += all;
    }
    free(text);
    return count;
}


/* See harness.h. */
int
tg_it_file_wait_count(const char *path, const char *const needles[], int want,
                      int timeout_ms)
{
    uint64_t deadline = tg_it_now_ms() + (uint64_t)timeout_ms;
    int n;

    for (;;) {
        n = tg_it_file_count(path, needles);
        if (n >= want || tg_it_now_ms() >= deadline) {
            return n;
        }
        tg_it_sleep_ms(20);
    }
}


/* Bit <signo> of the hex mask on the line starting with <field> in
 * /proc/<pid>/status. */
static bool
tg_it_sig_mask(pid_t pid, const char *field, int signo)
{
    char path[64], buf[4096], *p;
    unsigned long long mask;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return false;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    p = strstr(buf, field);
    if (p == NULL || sscanf(p + strlen(field), " %llx", &mask) != 1) {
        return false;
    }
    return (mask >> (signo - 1)) & 1;
}


/* See harness.h. */
bool
tg_it_sig_blocked(pid_t pid, int signo)
{
    return tg_it_sig_mask(pid, "SigBlk:", signo);
}


/* See harness.h. */
bool
tg_it_sig_caught(pid_t pid, int signo)
{
    return tg_it_sig_mask(pid, "SigCgt:", signo);
}


/* See harness.h. */
int
tg_it_children(pid_t parent, const char *prefix, pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;

    TG_IT_CHECK(d != NULL);
    while ((de = readdir(d)) != NULL && n < max) {
        char path[300], stat[1024], *rp;
        int ppid, fd;
        ssize_t len;
        char *lp;

        if (de->d_name[0] < '0' || de->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY);
        if (fd == -1) {
            continue;
        }
        len = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (len <= 0) {
            continue;
        }
        stat[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
        lp = strchr(stat, '(');
        rp = strrchr(stat, ')');
        if (lp == NULL || rp == NULL || rp < lp) {
            continue;
        }
        if (sscanf(rp + 2, "%*c %d", &ppid) != 1 || ppid != parent) {
            continue;
        }
        *rp = '\0';
        if (strncmp(lp + 1, prefix, strlen(prefix)) != 0 || rp[2] == 'Z') {
            continue;
        }
        pids[n++] = (pid_t)atoi(de->d_name);
    }
    closedir(d);
    return n;
}


/* ---------------------------------------------------- configuration */

/* See harness.h. */
void
tg_it_conf_init(tg_it_conf_t *c)
{
    memset(c, 0, sizeof(*c));
}


/* See harness.h. */
void
tg_it_conf_fini(tg_it_conf_t *c)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        free(c->items[i].value);
        c->items[i].value = NULL;
    }
    c->n = 0;
}


/* See harness.h. */
void
tg_it_conf_set(tg_it_conf_t *c, const char *name, const char *fmt, ...)
{
    va_list ap;
    char *v;
    size_t i;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&v, fmt, ap);
    va_end(ap);
    TG_IT_CHECK(n >= 0);
    TG_IT_CHECK(strlen(name) < sizeof(c->items[0].name));
    for (i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].name, name) == 0) {
            free(c->items[i].value);
            c->items[i].value = v;
            return;
        }
    }
    TG_IT_CHECK(c->n < TG_IT_CONF_MAX);
    snprintf(c->items[c->n].name, sizeof(c->items[c->n].name), "%s", name);
    c->items[c->n].value = v;
    c->n++;
}


/* See harness.h. */
void
tg_it_conf_unset(tg_it_conf_t *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].name, name) == 0) {
            free(c->items[i].value);
            memmove(&c->items[i], &c->items[i + 1],
                    (c->n - i - 1) * sizeof(c->items[0]));
            c->n--;
            return;
        }
    }
}


/* See harness.h.  Groups are written where their first member was set,
 * with all their members together. */
void
tg_it_conf_write(const tg_it_conf_t *c, const char *path)
{
    char *text = NULL;
    size_t size = 0, i, j;
    FILE *f = open_memstream(&text, &size);
    bool done[TG_IT_CONF_MAX] = {false};

    TG_IT_CHECK(f != NULL);
    fprintf(f, "# written by the integration test harness\n");
    for (i = 0; i < c->n; i++) {
        const char *dot = strchr(c->items[i].name, '.');
        size_t glen;

        if (done[i]) {
            continue;
        }
        if (dot == NULL) {
            fprintf(f, "%s = %s;\n", c->items[i].name, c->items[i].value);
            continue;
        }
        glen = (size_t)(dot - c->items[i].name);
        fprintf(f, "%.*s = {\n", (int)glen, c->items[i].name);
        for (j = i; j < c->n; j++) {
            if (strncmp(c->items[j].name, c->items[i].name, glen + 1) == 0) {
                fprintf(f, "    %s = %s;\n", c->items[j].name + glen + 1,
                        c->items[j].value);
                done[j] = true;
            }
        }
        fprintf(f, "};\n");
    }
    TG_IT_CHECK(fclose(f) == 0);
    tg_it_file_write(path, text);
    free(text);
}


/* ---------------------------------------------------------- servers */

/* See harness.h. */
void
tg_it_endpoint(char *buf, size_t len, const char *name, int port,
               const char *style, const char *priority)
{
    int n = snprintf(buf, len,
                     "{ name = \"%s\"; url = \"http://127.0.0.1:%d\"; "
                     "style = \"%s\"; credential = \"" TG_IT_CRED "\"; "
                     "priority = \"%s\"; }",
                     name, port, style, priority);

    TG_IT_CHECK(n > 0 && (size_t)n < len);
}


/* See harness.h. */
void
tg_it_fixture_init(tg_it_fixture_t *f)
{
    char dir[4096], ea[512], eo[512];

    memset(f, 0, sizeof(*f));
    f->port = tg_it_port_free();
    do {
        f->admin_port = tg_it_port_free();
    } while (f->admin_port == f->port);
    do {
        f->mock_port = tg_it_port_free();
    } while (f->mock_port == f->port || f->mock_port == f->admin_port);
    tg_it_path(f->conf_path, sizeof(f->conf_path), "tollgate.conf");
    tg_it_path(f->error_log, sizeof(f->error_log), "error.log");
    tg_it_path(f->access_log, sizeof(f->access_log), "access.log");
    tg_it_path(f->ledger, sizeof(f->ledger), "ledger.jsonl");
    tg_it_path(dir, sizeof(dir), "tollgate.pid");

    tg_it_conf_init(&f->conf);
    tg_it_conf_set(&f->conf, "listen.address", "\"127.0.0.1\"");
    tg_it_conf_set(&f->conf, "listen.port", "%d", f->port);
    tg_it_conf_set(&f->conf, "workers", "2");
    tg_it_conf_set(&f->conf, "admin.address", "\"127.0.0.1\"");
    tg_it_conf_set(&f->conf, "admin.port", "%d", f->admin_port);
    tg_it_path(dir, sizeof(dir), "secret.key");
    tg_it_conf_set(&f->conf, "admin.secret_key", "\"%s\"", dir);
    tg_it_path(dir, sizeof(dir), "tollgate.pid");
    tg_it_conf_set(&f->conf, "pid_file", "\"%s\"", dir);
    /* Never the default "spool" in the working directory. */
    tg_it_path(dir, sizeof(dir), "spool");
    tg_it_conf_set(&f->conf, "usage.spool_dir", "\"%s\"", dir);
    tg_it_conf_set(&f->conf, "shutdown_timeout", "10");
    tg_it_conf_set(&f->conf, "log.error", "\"%s\"", f->error_log);
    tg_it_conf_set(&f->conf, "log.access", "\"%s\"", f->access_log);
    tg_it_conf_set(&f->conf, "log.level", "\"debug\"");
    tg_it_conf_set(&f->conf, "upstream.connect_timeout", "5");
    tg_it_conf_set(&f->conf, "upstream.first_byte_timeout", "30");
    tg_it_conf_set(&f->conf, "upstream.read_timeout", "30");
    tg_it_endpoint(ea, sizeof(ea), "mock-anthropic", f->mock_port, "anthropic",
                   "primary");
    tg_it_endpoint(eo, sizeof(eo), "mock-openai", f->mock_port, "openai",
                   "primary");
    tg_it_conf_set(&f->conf, "endpoints", "(\n    %s,\n    %s\n)", ea, eo);
    tg_it_conf_set(&f->conf, "keys", "( \"" TG_IT_KEY "\" )");
}


/* See harness.h. */
void
tg_it_mock_start(tg_it_proc_t *p, const char *name, int port,
                 const char *ledger, const char *const *args)
{
    char bin[4096], listen[64];
    char *argv[24];
    int n = 0;

    snprintf(bin, sizeof(bin), "%s/mock-upstream", tg_it_build());
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    argv[n++] = bin;
    argv[n++] = "-l";
    argv[n++] = listen;
    argv[n++] = "--require-key";
    argv[n++] = TG_IT_CRED;
    if (ledger != NULL) {
        argv[n++] = "--ledger";
        argv[n++] = (char *)ledger;
    }
    while (args != NULL && *args != NULL && n < 22) {
        argv[n++] = (char *)*args++;
    }
    argv[n] = NULL;
    tg_it_proc_start(p, name, argv);
    if (!tg_it_port_wait(port, 10000)) {
        tg_it_proc_wait(p, 0);
        tg_it_fail(__FILE__, __LINE__,
                   "%s does not accept connections on port %d%s", name, port,
                   p->reaped ? " (it exited)" : "");
    }
}


/* See harness.h. */
void
tg_it_fixture_start(tg_it_fixture_t *f)
{
    char bin[4096];
    char *argv[4];
    tg_it_resp_t resp;

    tg_it_conf_write(&f->conf, f->conf_path);
    if (!f->no_mock) {
        tg_it_mock_start(&f->mock, "mock", f->mock_port, f->ledger,
                         f->mock_args);
    }
    snprintf(bin, sizeof(bin), "%s/tollgate", tg_it_build());
    argv[0] = bin;
    argv[1] = "-c";
    argv[2] = f->conf_path;
    argv[3] = NULL;
    tg_it_proc_start(&f->tg, "tollgate", argv);
    if (!tg_it_port_wait(f->port, 10000)) {
        tg_it_proc_wait(&f->tg, 0);
        tg_it_fail(__FILE__, __LINE__,
                   "tollgate does not accept connections on port %d%s", f->port,
                   f->tg.reaped ? " (it exited)" : "");
    }
    /* The socket is open before the workers run: wait for an answer. */
    tg_it_request(f->port, "GET", "/healthz", NULL, NULL, &resp);
    TG_IT_CHECK_INT(resp.status, 200);
    tg_it_resp_fini(&resp);
    TG_IT_CHECKF(tg_it_port_wait(f->admin_port, 10000),
                 "admin does not accept connections on port %d", f->admin_port);
    tg_it_fixture_settle(f);
}


/* The value of top-level setting <name> in <c> as an int; <def> when
 * absent. */
static int
tg_it_conf_int(const tg_it_conf_t *c, const char *name, int def)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->items[i].name, name) == 0) {
            return atoi(c->items[i].value);
        }
    }
    return def;
}


/* See harness.h. */
void
tg_it_fixture_settle(tg_it_fixture_t *f)
{
    uint64_t deadline = tg_it_now_ms() + 5000;
    int want = tg_it_conf_int(&f->conf, "workers", 1) + 1, n, i, ready;
    pid_t pids[256];

    for (;;) {
        n = tg_it_children(f->tg.pid, "", pids, 256);
        for (i = 0, ready = 0; i < n; i++) {
            ready += tg_it_sig_blocked(pids[i], SIGTERM);
        }
        if (n >= want && ready == n) {
            return;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "tollgate did not settle: %d children, %d ready, %d "
                     "expected",
                     n, ready, want);
        tg_it_sleep_ms(5);
    }
}


/* See harness.h. */
void
tg_it_fixture_stop(tg_it_fixture_t *f)
{
    int st;

    if (!f->tg.reaped) {
        tg_it_fixture_settle(f);
    }
    st = tg_it_proc_stop(&f->tg, 10000);
    TG_IT_CHECKF(st != -1, "tollgate did not stop within 10 s of SIGTERM");
    TG_IT_CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                 "tollgate ended with wait status 0x%x, expected exit 0", st);
    if (!f->no_mock) {
        tg_it_proc_stop(&f->mock, 5000);
    }
    tg_it_conf_fini(&f->conf);
}


/* Relay one accepted connection <cfd> to <target_port>, appending the
 * client's bytes to <capture>.  Runs in its own forked process. */
static void
tg_it_tap_relay(int cfd, int target_port, const char *capture)
{
    struct sockaddr_in sa;
    struct pollfd pfd[2];
    char buf[16384];
    int ufd, cap, i;
    ssize_t n;

    cap = open(capture, O_WRONLY | O_CREAT | O_APPEND, 0644);
    ufd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)target_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (cap == -1 || ufd == -1 ||
        connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        fprintf(stderr, "tap: cannot reach port %d: %s\n", target_port,
                strerror(errno));
        _exit(1);
    }
    pfd[0].fd = cfd;
    pfd[1].fd = ufd;
    pfd[0].events = pfd[1].events = POLLIN;
    for (;;) {
        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        for (i = 0; i < 2; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            n = read(pfd[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                _exit(0);
            }
            if (i == 0 && write(cap, buf, (size_t)n) != n) {
                _exit(1);
            }
            if (send(pfd[1 - i].fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
                _exit(0);
            }
        }
    }
}


/* See harness.h. */
void
tg_it_tap_start(tg_it_proc_t *p, int port, int target_port, const char *capture)
{
    struct sockaddr_in sa;
    int lfd, cfd, on = 1;
    pid_t pid;

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "tap");
    tg_it_path(p->out, sizeof(p->out), "tap.out");
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TG_IT_CHECK(lfd != -1);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TG_IT_CHECKF(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                 "tap: bind(%d) failed: %s", port, strerror(errno));
    TG_IT_CHECK(listen(lfd, 128) == 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    TG_IT_CHECK(pid != -1);
    if (pid == 0) {
        tg_it_child_setup(p->out);
        signal(SIGCHLD, SIG_IGN); /* relays are reaped by the kernel */
        for (;;) {
            cfd = accept(lfd, NULL, NULL);
            if (cfd == -1) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                _exit(1);
            }
            if (fork() == 0) {
                close(lfd);
                tg_it_tap_relay(cfd, target_port, capture);
            }
            close(cfd);
        }
    }
    setpgid(pid, pid);
    close(lfd);
    p->pid = pid;
    tg_it_pid_record(pid);
}


/* -------------------------------------------------------- PostgreSQL */

static char tg_it_pg_info[512];
static int tg_it_pg_seq;


/* "<run root>/<name>": the directory above the test's own. */
static void
tg_it_pg_path(char *buf, size_t len, const char *name)
{
    const char *dir = tg_it_dir(), *slash = strrchr(dir, '/');
    int n;

    if (slash == NULL) {
        tg_it_fail(__FILE__, __LINE__, "test directory %s has no parent", dir);
    }
    n = snprintf(buf, len, "%.*s/%s", (int)(slash - dir), dir, name);
    if (n < 0 || (size_t)n >= len) {
        tg_it_fail(__FILE__, __LINE__, "path too long");
    }
}


static const char *
tg_it_pg_script(void)
{
    const char *s = getenv("TG_PG_LOCAL");

    return s != NULL && s[0] != '\0' ? s : "tools/pg-local.sh";
}


/* See harness.h. */
const char *
tg_it_pg_conninfo(void)
{
    char dir[4096], file[4096], port[16], out[4096], *text, *nl;
    char *argv[] = {(char *)tg_it_pg_script(), "start", dir, port, NULL};
    int rc;

    if (tg_it_pg_info[0] != '\0') {
        return tg_it_pg_info;
    }
    tg_it_pg_path(dir, sizeof(dir), "pg");
    tg_it_pg_path(file, sizeof(file), "pg.conninfo");
    text = tg_it_file_read(file, NULL);
    if (text == NULL) {
        /* The first test of the run that needs it starts the server; it
         * outlives the test (pg_ctl detaches it) and main.c stops it at
         * the end of the run. */
        snprintf(port, sizeof(port), "%d", tg_it_port_free());
        rc = tg_it_run(argv, out, sizeof(out), 120000);
        TG_IT_CHECKF(rc == 0, "%s start failed (%d): %s", argv[0], rc, out);
        nl = strstr(out, "host=");
        TG_IT_CHECKF(nl != NULL, "no conninfo from %s: %s", argv[0], out);
        nl[strcspn(nl, "\n")] = '\0';
        tg_it_file_write(file, nl);
        text = strdup(nl);
        TG_IT_CHECK(text != NULL);
    }
    snprintf(tg_it_pg_info, sizeof(tg_it_pg_info), "%s", text);
    free(text);
    return tg_it_pg_info;
}


/* The psql command line running <sql> against <conninfo> into <argv>
 * (12 entries). */
static void
tg_it_psql_argv(char **argv, const char *conninfo, const char *sql)
{
    const char *psql = getenv("TG_PSQL");
    char *const args[] = {
        (char *)(psql != NULL && psql[0] ? psql : "/usr/bin/psql"),
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        (char *)conninfo,
        "-c",
        (char *)sql,
        NULL};

    memcpy(argv, args, sizeof(args));
}


/* See harness.h. */
void
tg_it_pg_start_query(tg_it_proc_t *p, const char *name, const char *conninfo,
                     const char *sql)
{
    char *argv[12];

    tg_it_psql_argv(argv, conninfo, sql);
    tg_it_proc_start(p, name, argv);
}


/* See harness.h. */
int
tg_it_pg_exec(const char *conninfo, const char *sql, char *out, size_t outlen)
{
    char *argv[12];
    char buf[8192];
    int rc;

    tg_it_psql_argv(argv, conninfo, sql);
    rc = tg_it_run(argv, buf, sizeof(buf), 30000);
    if (out != NULL && outlen > 0) {
        size_t len = strlen(buf);

        while (len > 0 && buf[len - 1] == '\n') {
            buf[--len] = '\0';
        }
        snprintf(out, outlen, "%s", buf);
    }
    return rc;
}


/* See harness.h. */
const char *
tg_it_pg_query(const char *conninfo, const char *sql)
{
    static char out[8192];

    TG_IT_CHECKF(tg_it_pg_exec(conninfo, sql, out, sizeof(out)) == 0,
                 "psql failed: %s\n  for: %s", out, sql);
    return out;
}


/* See harness.h. */
void
tg_it_pg_db_create(char *conninfo, size_t len)
{
    const char *base = tg_it_pg_conninfo(), *db;
    char sql[256], out[1024], name[64];
    int n;

    snprintf(name, sizeof(name), "tg_it_%d_%d", (int)getpid(), ++tg_it_pg_seq);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", name);
    TG_IT_CHECKF(tg_it_pg_exec(base, sql, out, sizeof(out)) == 0,
                 "CREATE DATABASE failed: %s", out);
    db = strstr(base, "dbname=");
    TG_IT_CHECK(db != NULL);
    n = snprintf(conninfo, len, "%.*sdbname=%s", (int)(db - base), base, name);
    TG_IT_CHECK(n > 0 && (size_t)n < len);
}


/* See harness.h. */
void
tg_it_pg_stop(void)
{
    char dir[4096], out[1024];
    char *argv[] = {(char *)tg_it_pg_script(), "stop", dir, NULL};
    int rc;

    tg_it_pg_path(dir, sizeof(dir), "pg");
    rc = tg_it_run(argv, out, sizeof(out), 90000);
    TG_IT_CHECKF(rc == 0, "%s stop failed (%d): %s", argv[0], rc, out);
}


/* See harness.h. */
void
tg_it_pg_start(void)
{
    char dir[4096], port[16], out[1024], *p;
    char *argv[] = {(char *)tg_it_pg_script(), "start", dir, port, NULL};
    int rc;

    tg_it_pg_path(dir, sizeof(dir), "pg");
    p = strstr(tg_it_pg_conninfo(), "port=");
    TG_IT_CHECK(p != NULL);
    snprintf(port, sizeof(port), "%d", atoi(p + 5));
    rc = tg_it_run(argv, out, sizeof(out), 120000);
    TG_IT_CHECKF(rc == 0, "%s start failed (%d): %s", argv[0], rc, out);
}
