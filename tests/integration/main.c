/*
 * tests/integration/main.c
 *      Integration test runner: every test in its own process, under a hard
 *      timeout, with its own directory of logs; closing line
 *      "integration: N passed, M failed".
 *
 * NOTES
 *      libuv's runner model.  For each test the runner forks a child in its
 *      own process group whose stdout and stderr go to "<dir>/test.log",
 *      waits for it at most TG_IT_TIMEOUT seconds (default 60) and kills
 *      the group on expiry.  The helpers the test started are in their own
 *      groups and listed in "<dir>/pids"; the runner kills those groups
 *      afterwards, whatever happened.  The runner is a child subreaper, so
 *      orphaned helpers are reparented to it and reaped here.
 *
 *      A test also fails when a sanitizer report shows up in the output of
 *      any helper (the ".out" files), so an ASan build fails the suite on the
 *      first finding even when the request that triggered it succeeded.
 *
 *      On failure the test's own log, the tail of every "*.log" (tollgate's
 *      error log among them) and of every helper's output are printed, and
 *      the directory is kept.  TG_IT_KEEP=1 keeps every directory.
 *
 *      PostgreSQL: the first test that needs a database starts one server
 *      for the whole run in "<run dir>/pg" (harness.c); the runner stops it
 *      at the end, also after failures, timeouts, or an INT/TERM/HUP that
 *      ends the run early.  The run directory is made traversable (0755)
 *      so the server, running as the postgres user, can reach its own.
 *      $TOLLGATE_DATABASE is unset: tests without a "database" setting run
 *      in config-only mode.
 *
 *      Usage: integration-tests [-l] [NAME...]; a NAME selects the test of
 *      that exact name, or else every test whose name contains it.
 */
#include "core/core.h"
#include "tests/integration/harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TG_IT_MAX_TESTS 256

static const tg_it_test_t *const tg_it_tables[] = {
    tg_it_proxy_tests,         tg_it_limits_tests,    tg_it_master_tests,
    tg_it_load_tests,          tg_it_sdk_tests,       tg_it_auth_tests,
    tg_it_routing_tests,       tg_it_encoding_tests,  tg_it_store_tests,
    tg_it_endpoints_shm_tests, tg_it_admin_tests,     tg_it_tollctl_tests,
    tg_it_ends_tests,          tg_it_translate_tests, tg_it_hostile_tests,
    tg_it_quota_tests,         tg_it_usage_pg_tests,  tg_it_metrics_tests,
    tg_it_export_tests,        tg_it_responses_tests,
};

static const tg_it_test_t *tg_it_all[TG_IT_MAX_TESTS];
static size_t tg_it_nall;
static volatile sig_atomic_t tg_it_interrupted;


static void
tg_it_signal_handler(int signo)
{
    tg_it_interrupted = signo;
}


/* Stop the run's PostgreSQL if a test started one (harness.c). */
static void
tg_it_pg_shutdown(const char *root, const char *build)
{
    char dir[4200], pidfile[4300], cmd[8192], *text;
    const char *script = getenv("TG_PG_LOCAL");
    int n;

    (void)build;
    n = snprintf(dir, sizeof(dir), "%s/pg", root);
    snprintf(pidfile, sizeof(pidfile), "%s/data/postmaster.pid", dir);
    if (n < 0 || access(pidfile, F_OK) != 0) {
        return;
    }
    /* A test that stopped a server process (SIGSTOP) and failed before
     * resuming it would make the shutdown wait for it. */
    text = tg_it_file_read(pidfile, NULL);
    if (text != NULL && atoi(text) > 1) {
        pid_t kids[256];
        int i, k = tg_it_children((pid_t)atoi(text), "postgres", kids, 256);

        for (i = 0; i < k; i++) {
            kill(kids[i], SIGCONT);
        }
    }
    free(text);
    n = snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1",
                 script != NULL && script[0] ? script : "tools/pg-local.sh",
                 dir);
    if (n > 0 && (size_t)n < sizeof(cmd) && system(cmd) != 0) {
        fprintf(stderr, "integration: stopping PostgreSQL in %s failed\n", dir);
    }
}


/* "<nn>-<name as lower-case words joined by '-'>", at most <len> bytes. */
static void
tg_it_slug(char *buf, size_t len, size_t idx, const char *name)
{
    size_t n;
    bool dash = false;

    n = (size_t)snprintf(buf, len, "%02zu-", idx + 1);
    for (; *name != '\0' && n + 2 < len && n < 64; name++) {
        char ch = *name;

        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            if (dash) {
                buf[n++] = '-';
            }
            buf[n++] = ch;
            dash = false;
        } else if (ch >= 'A' && ch <= 'Z') {
            if (dash) {
                buf[n++] = '-';
            }
            buf[n++] = (char)(ch - 'A' + 'a');
            dash = false;
        } else {
            dash = n > 3;
        }
    }
    buf[n] = '\0';
}


static int
tg_it_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}


static void
tg_it_rm_tree(const char *dir)
{
    nftw(dir, tg_it_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}


/* Print the last <lines> lines of <path> with a header. */
static void
tg_it_print_tail(const char *path, int lines)
{
    size_t len;
    char *text = tg_it_file_read(path, &len), *p;
    int seen = 0;

    if (text == NULL || len == 0) {
        free(text);
        return;
    }
    p = text + len;
    if (p > text && p[-1] == '\n') {
        p--;
    }
    while (p > text) {
        if (p[-1] == '\n' && ++seen == lines) {
            break;
        }
        p--;
    }
    printf("---- %s%s\n", path, p > text ? " (tail)" : "");
    fputs(p, stdout);
    if (len > 0 && text[len - 1] != '\n') {
        putchar('\n');
    }
    free(text);
}


/* Files in <dir> whose names end in <suffix>, printed with <lines> of
 * tail each. */
static void
tg_it_print_files(const char *dir, const char *suffix, int lines)
{
    struct dirent **list;
    char path[4096];
    int n, i;
    size_t sl = strlen(suffix);

    n = scandir(dir, &list, NULL, alphasort);
    for (i = 0; i < n; i++) {
        size_t nl = strlen(list[i]->d_name);

        if (nl > sl && strcmp(list[i]->d_name + nl - sl, suffix) == 0 &&
            strcmp(list[i]->d_name, "test.log") != 0) {
            int k = snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);

            if (k > 0 && (size_t)k < sizeof(path)) {
                tg_it_print_tail(path, lines);
            }
        }
        free(list[i]);
    }
    free(list);
}


/* Print up to <lines> lines of <text> from the start of the line holding
 * <at>, under a header naming <path>. */
static void
tg_it_print_from(const char *path, const char *text, const char *at, int lines)
{
    const char *p = at, *end;
    int n = 0;

    while (p > text && p[-1] != '\n') {
        p--;
    }
    for (end = p; *end != '\0' && n < lines; end++) {
        n += *end == '\n';
    }
    printf("---- %s (sanitizer report)\n%.*s", path, (int)(end - p), p);
    if (end > p && end[-1] != '\n') {
        putchar('\n');
    }
}


/*
 * Look for a sanitizer report in the helpers' output files (".out") in
 * <dir>: describe the first one found in <buf> ("<marker> in <file>") and,
 * when <print>, print every report found.  False when there is none.
 */
static bool
tg_it_sanitizer_report(const char *dir, char *buf, size_t len, bool print)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer",
                                        "ERROR: LeakSanitizer",
                                        "runtime error:", NULL};
    struct dirent **list;
    bool found = false;
    int n, i;

    n = scandir(dir, &list, NULL, alphasort);
    for (i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t nl = strlen(name), k;
        char path[4096], *text = NULL, *at;
        int w;

        w = snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (nl >= 4 && strcmp(name + nl - 4, ".out") == 0 && w > 0 &&
            (size_t)w < sizeof(path)) {
            text = tg_it_file_read(path, NULL);
        }
        for (k = 0; text != NULL && marks[k] != NULL; k++) {
            at = strstr(text, marks[k]);
            if (at == NULL) {
                continue;
            }
            if (!found) {
                snprintf(buf, len, "%s in %.64s", marks[k], name);
                found = true;
            }
            if (print) {
                tg_it_print_from(path, text, at, 80);
            }
            break;
        }
        free(text);
        free(list[i]);
    }
    free(list);
    return found;
}


/* Kill the process groups listed in "<dir>/pids" and reap what the
 * subreaper inherited. */
static void
tg_it_cleanup(const char *dir)
{
    char path[4096], line[64];
    FILE *f = NULL;
    int i, n;

    n = snprintf(path, sizeof(path), "%s/pids", dir);
    if (n > 0 && (size_t)n < sizeof(path)) {
        f = fopen(path, "r");
    }
    if (f != NULL) {
        while (fgets(line, sizeof(line), f) != NULL) {
            pid_t pid = (pid_t)atoi(line);

            if (pid > 1) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
            }
        }
        fclose(f);
    }
    for (i = 0; i < 50; i++) {
        pid_t rc = waitpid(-1, NULL, WNOHANG);

        if (rc == -1) {
            break; /* no children left */
        }
        if (rc == 0) {
            usleep(10000);
        }
    }
}


/* Run test <t> (number <idx>) in its directory under <root>; true when it
 * passed. */
static bool
tg_it_run_one(const tg_it_test_t *t, size_t idx, const char *root,
              const char *build, int timeout_s, bool keep)
{
    char dir[4096], slug[96], logp[4200], why[256] = "", san[160];
    uint64_t start = tg_it_now_ms(), deadline;
    bool passed = false, timed_out = false;
    int st = 0, fd, n;
    pid_t pid, rc;

    tg_it_slug(slug, sizeof(slug), idx, t->name);
    n = snprintf(dir, sizeof(dir), "%s/%s", root, slug);
    if (n < 0 || (size_t)n >= sizeof(dir) || mkdir(dir, 0755) == -1) {
        printf("not ok %zu - %s (mkdir %s: %s)\n", idx + 1, t->name, dir,
               strerror(errno));
        return false;
    }
    snprintf(logp, sizeof(logp), "%s/test.log", dir);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == -1) {
        printf("not ok %zu - %s (fork: %s)\n", idx + 1, t->name,
               strerror(errno));
        return false;
    }
    if (pid == 0) {
        setpgid(0, 0);
        fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd != -1) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        tg_it_context_set(dir, build);
        printf("test: %s\ndir: %s\nbuild: %s\n", t->name, dir, build);
        t->fn();
        fflush(stdout);
        exit(0);
    }
    setpgid(pid, pid);
    deadline = start + (uint64_t)timeout_s * 1000;
    for (;;) {
        rc = waitpid(pid, &st, WNOHANG);
        if (rc == pid) {
            break;
        }
        if (tg_it_now_ms() >= deadline || tg_it_interrupted) {
            timed_out = true;
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(5000);
    }
    tg_it_cleanup(dir);

    if (timed_out) {
        snprintf(why, sizeof(why), "timed out after %d s", timeout_s);
    } else if (WIFSIGNALED(st)) {
        snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(st));
    } else if (WEXITSTATUS(st) != 0) {
        snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(st));
    } else {
        passed = true;
    }
    /* A helper's sanitizer report fails the test, passed or not. */
    if (tg_it_sanitizer_report(dir, san, sizeof(san), false)) {
        size_t wl = strlen(why);

        snprintf(why + wl, sizeof(why) - wl, "%s%s", wl ? "; " : "", san);
        passed = false;
    }
    if (passed) {
        printf("ok %zu - %s (%.2f s)\n", idx + 1, t->name,
               (double)(tg_it_now_ms() - start) / 1000.0);
        if (!keep) {
            tg_it_rm_tree(dir);
        }
        return true;
    }
    printf("not ok %zu - %s (%s; %.2f s)\n", idx + 1, t->name, why,
           (double)(tg_it_now_ms() - start) / 1000.0);
    tg_it_print_tail(logp, 60);
    tg_it_print_files(dir, ".log", 40);
    tg_it_print_files(dir, ".out", 20);
    tg_it_sanitizer_report(dir, san, sizeof(san), true);
    printf("---- logs kept in %s\n", dir);
    return false;
}


static bool
tg_it_selected(const tg_it_test_t *t, int argc, char **argv, int first)
{
    int i;
    size_t j;

    if (first >= argc) {
        return true;
    }
    for (i = first; i < argc; i++) {
        bool exact = false;

        /* An exact name anywhere wins over a substring match. */
        for (j = 0; j < tg_it_nall; j++) {
            if (strcmp(tg_it_all[j]->name, argv[i]) == 0) {
                exact = true;
                break;
            }
        }
        if (exact ? strcmp(t->name, argv[i]) == 0
                  : strstr(t->name, argv[i]) != NULL) {
            return true;
        }
    }
    return false;
}


int
main(int argc, char **argv)
{
    const char *build = getenv("TG_BUILD"), *tmp = getenv("TMPDIR");
    const char *to = getenv("TG_IT_TIMEOUT"), *keepv = getenv("TG_IT_KEEP");
    char root[4096];
    size_t i, j, passed = 0, failed = 0, run = 0;
    int timeout_s = (to != NULL && atoi(to) > 0) ? atoi(to) : 60, first = 1;
    bool keep = keepv != NULL && keepv[0] != '\0' && keepv[0] != '0';
    uint64_t start = tg_it_now_ms();

    if (build == NULL || build[0] == '\0') {
        build = "build";
    }
    for (i = 0; i < TG_NELEMS(tg_it_tables); i++) {
        for (j = 0; tg_it_tables[i][j].name != NULL; j++) {
            if (tg_it_nall < TG_IT_MAX_TESTS) {
                tg_it_all[tg_it_nall++] = &tg_it_tables[i][j];
            }
        }
    }
    if (argc > 1 && strcmp(argv[1], "-l") == 0) {
        for (i = 0; i < tg_it_nall; i++) {
            printf("%s\n", tg_it_all[i]->name);
        }
        return 0;
    }
    /* The load test holds thousands of sockets across loadgen, tollgate
     * and the mock, which inherit the limit. */
    tg_nofile_raise();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, tg_it_signal_handler);
    signal(SIGTERM, tg_it_signal_handler);
    signal(SIGHUP, tg_it_signal_handler);
    unsetenv("TOLLGATE_DATABASE");
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(root, sizeof(root), "%s/tollgate-it.XXXXXX",
             (tmp != NULL && tmp[0] != '\0') ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "mkdtemp(%s) failed: %s\n", root, strerror(errno));
        return 1;
    }
    chmod(root, 0755);
    for (i = 0; i < tg_it_nall && !tg_it_interrupted; i++) {
        if (!tg_it_selected(tg_it_all[i], argc, argv, first)) {
            continue;
        }
        run++;
        if (tg_it_run_one(tg_it_all[i], i, root, build, timeout_s, keep)) {
            passed++;
        } else {
            failed++;
        }
    }
    tg_it_pg_shutdown(root, build);
    if (run == 0) {
        fprintf(stderr, "no test matches; -l lists them\n");
        rmdir(root);
        return 2;
    }
    if (tg_it_interrupted) {
        printf("integration: interrupted by signal %d\n",
               (int)tg_it_interrupted);
        failed++;
    }
    if (failed == 0 && !keep) {
        char pgdir[4200], info[4200];

        snprintf(pgdir, sizeof(pgdir), "%s/pg", root);
        snprintf(info, sizeof(info), "%s/pg.conninfo", root);
        tg_it_rm_tree(pgdir);
        unlink(info);
        rmdir(root);
    }
    printf("integration: ran %zu tests in %.1f s\n", run,
           (double)(tg_it_now_ms() - start) / 1000.0);
    printf("integration: %zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
