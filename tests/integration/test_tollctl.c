/*
 * tests/integration/test_tollctl.c
 *      tollctl against a real tollgate and PostgreSQL: the tour (login,
 *      a user, a key, an application, its approval, the key through a
 *      worker), every command's table and --json output, a wrong token,
 *      routes this server lacks, bad arguments and an unreachable server.
 *
 * NOTES
 *      Each database test gets a database of its own on the run's
 *      PostgreSQL (tg_it_pg_db_create), starts tollgate with "database"
 *      pointing at it, and waits until /healthz says the database is
 *      ready.
 *
 *      tollctl runs through /bin/sh with its environment set explicitly
 *      (HOME and XDG_CONFIG_HOME inside the test directory, one
 *      configuration directory per person, TOLLGATE_ADMIN_URL, NO_COLOR),
 *      stdin from a file the test writes, stdout and stderr to files the
 *      test reads back.
 */
#include "tests/integration/client.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_admin.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ADMIN_PW "tg-it-admin-password"
#define ALICE_PW "tg-it-alice-password"
#define CTL_OUT  65536

typedef struct {
    tg_it_fixture_t f;
    bool pg; /* with a database */
    char url[64];
} env_t;

typedef struct {
    int rc;
    char out[CTL_OUT];
    char err[8192];
    json_t *json; /* stdout parsed when it is JSON */
} run_t;


/* Append <pid> to the runner's clean-up list (it kills the process
 * group of every pid listed there when the test ends). */
static void
pid_record(const char *pid)
{
    char path[4096];
    FILE *f = fopen(tg_it_path(path, sizeof(path), "pids"), "a");

    if (f != NULL) {
        fprintf(f, "%d\n", atoi(pid));
        fclose(f);
    }
}


/* Give the config a database of its own on the run's PostgreSQL, a
 * secret key file and the bootstrap administrator's password. */
static void
pg_start(env_t *e)
{
    char conninfo[1024], path[4200];

    tg_it_pg_db_create(conninfo, sizeof(conninfo));
    e->pg = true;
    tg_it_conf_set(&e->f.conf, "database", "\"%s\"", conninfo);
    tg_it_path(path, sizeof(path), "secret.key");
    tg_it_conf_set(&e->f.conf, "admin.secret_key", "\"%s\"", path);
    tg_it_conf_set(&e->f.conf, "admin.bootstrap_password", "\"%s\"", ADMIN_PW);
}


/* Start the prepared fixture (and its PostgreSQL, when pg_start ran),
 * and wait until the database is ready. */
static void
env_start_prepared(env_t *e)
{
    uint64_t deadline;
    tg_it_resp_t resp;
    bool db = e->pg, ready = false;

    tg_it_fixture_start(&e->f);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", e->f.admin_port);
    deadline = tg_it_now_ms() + 40000;
    while (db && !ready && tg_it_now_ms() < deadline) {
        tg_it_request(e->f.admin_port, "GET", "/healthz", NULL, NULL, &resp);
        ready = resp.body != NULL &&
                strstr(resp.body, "\"database\":\"ready\"") != NULL;
        tg_it_resp_fini(&resp);
        if (!ready) {
            tg_it_sleep_ms(100);
        }
    }
    TG_IT_CHECKF(!db || ready, "the database did not become ready");
}


/* Start tollgate (with its own PostgreSQL when <db>), and wait until the
 * database is ready. */
static void
env_start(env_t *e, bool db)
{
    memset(e, 0, sizeof(*e));
    tg_it_fixture_init(&e->f);
    if (db) {
        pg_start(e);
    }
    env_start_prepared(e);
}


static void
env_stop(env_t *e)
{
    tg_it_fixture_stop(&e->f);
}


/*
 * Run tollctl as <who> (its own HOME and XDG_CONFIG_HOME; NULL: "admin")
 * with <in> on stdin (NULL: nothing), <envs> before it ("VAR=x ...", may
 * be NULL), and the printf-formatted shell words <fmt>.  Fills <r>.
 */
static void __attribute__((format(printf, 6, 7)))
ctl(env_t *e, run_t *r, const char *who, const char *in, const char *envs,
    const char *fmt, ...)
{
    char args[2048], cmd[40000], dir[4096], inp[4200], outp[4200], errp[4200];
    char bin[8300], cwd[4096];
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char *text;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    who = who != NULL ? who : "admin";
    if (tg_it_build()[0] == '/') {
        snprintf(bin, sizeof(bin), "%s/tollctl", tg_it_build());
    } else {
        TG_IT_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
        snprintf(bin, sizeof(bin), "%s/%s/tollctl", cwd, tg_it_build());
    }
    tg_it_path(dir, sizeof(dir), "");
    tg_it_path(inp, sizeof(inp), "ctl.in");
    tg_it_path(outp, sizeof(outp), "ctl.out");
    tg_it_path(errp, sizeof(errp), "ctl.err");
    tg_it_file_write(inp, in != NULL ? in : "");
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && unset TOLLGATE_TOKEN && HOME='%shome-%s' "
             "XDG_CONFIG_HOME='%scfg-%s' TOLLGATE_ADMIN_URL='%s' NO_COLOR=1 "
             "%s exec '%s' %s <'%s' >'%s' 2>'%s'",
             dir, dir, who, dir, who, e != NULL ? e->url : "http://127.0.0.1:1",
             envs != NULL ? envs : "", bin, args, inp, outp, errp);
    memset(r, 0, sizeof(*r));
    r->rc = tg_it_run(argv, NULL, 0, 30000);
    text = tg_it_file_read(outp, NULL);
    snprintf(r->out, sizeof(r->out), "%s", text != NULL ? text : "");
    free(text);
    text = tg_it_file_read(errp, NULL);
    snprintf(r->err, sizeof(r->err), "%s", text != NULL ? text : "");
    free(text);
    r->json = json_loads(r->out, JSON_DECODE_ANY, NULL);
    tg_it_note("tollctl %s -> %d\n%s%s", args, r->rc, r->out, r->err);
    /* A sanitizer build reports on stderr, which is ours, not a helper's
     * ".out" the runner scans. */
    TG_IT_CHECKF(strstr(r->err, "Sanitizer") == NULL &&
                     strstr(r->err, "runtime error:") == NULL,
                 "tollctl %s: sanitizer report: %s", args, r->err);
}


static void
run_fini(run_t *r)
{
    json_decref(r->json);
    r->json = NULL;
}


/* <r> ended with status <rc> and <needle> in stdout (or stderr when
 * <in_err>); on failure, both are printed. */
#define CHECK_RUN(r, want_rc, needle, in_err)                                  \
    TG_IT_CHECKF((r)->rc == (want_rc) &&                                       \
                     strstr((in_err) ? (r)->err : (r)->out, (needle)),         \
                 "tollctl: status %d (wanted %d), wanted \"%s\" in %s; "       \
                 "stdout: %s stderr: %s",                                      \
                 (r)->rc, (want_rc), (needle), (in_err) ? "stderr" : "stdout", \
                 (r)->out, (r)->err)

/* A failure is exactly one line on stderr. */
#define CHECK_ONE_LINE(r)                                                      \
    TG_IT_CHECKF(strchr((r)->err, '\n') != NULL &&                             \
                     strchr((r)->err, '\n')[1] == '\0' &&                      \
                     strncmp((r)->err, "tollctl: ", 9) == 0,                   \
                 "not one \"tollctl: \" line: %s", (r)->err)


/* Lines of <err> that start with "tollctl: " (the error lines). */
static int
error_lines(const char *err)
{
    const char *p = err;
    int n = 0;

    while (p != NULL && *p != '\0') {
        n += strncmp(p, "tollctl: ", 9) == 0;
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return n;
}


/* Whether <out> shows a duration as tollctl prints one: a digit then
 * "us", "ms" or "s" ("898us", "12.5ms", "1.20s"). */
static bool
has_duration(const char *out)
{
    const char *p;

    for (p = out; *p != '\0'; p++) {
        if (p > out && isdigit((unsigned char)p[-1]) &&
            (p[0] == 's' || ((p[0] == 'u' || p[0] == 'm') && p[1] == 's'))) {
            return true;
        }
    }
    return false;
}


/* Integer at <path> of the run's JSON; fails the test when absent. */
static long long
json_id(run_t *r, const char *path)
{
    json_t *v = tg_it_json_get(r->json, path);

    TG_IT_CHECKF(json_is_integer(v), "no integer %s in: %s", path, r->out);
    return (long long)json_integer_value(v);
}


/* Status of one Messages call with <key> for <model> through a worker. */
static int
call_model(env_t *e, const char *key, const char *model)
{
    char headers[512], body[256];
    tg_it_resp_t resp;
    int status;

    snprintf(headers, sizeof(headers),
             "x-api-key: %s\r\nanthropic-version: 2023-06-01\r\n"
             "content-type: application/json\r\n",
             key);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"max_tokens\":16,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"Hello\"}]}",
             model);
    tg_it_request(e->f.port, "POST", "/v1/messages", headers, body, &resp);
    status = resp.status;
    tg_it_resp_fini(&resp);
    return status;
}


/* Wait (2 s at most: a change reaches the workers through NOTIFY) until
 * <key> gets <want> for <model>. */
static int
call_model_wait(env_t *e, const char *key, const char *model, int want)
{
    uint64_t deadline = tg_it_now_ms() + 2000;
    int status;

    while ((status = call_model(e, key, model)) != want &&
           tg_it_now_ms() < deadline) {
        tg_it_sleep_ms(25);
    }
    return status;
}


/* Whether any file under <dir> (recursively) contains <needle>. */
static bool
tree_contains(const char *dir, const char *needle)
{
    char path[4096];
    struct dirent *de;
    struct stat st;
    bool found = false;
    DIR *d = opendir(dir);

    while (d != NULL && !found && (de = readdir(d)) != NULL) {
        char *text;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            found = tree_contains(path, needle);
        } else if (S_ISREG(st.st_mode)) {
            text = tg_it_file_read(path, NULL);
            found = text != NULL && strstr(text, needle) != NULL;
            free(text);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}


/* The last line of <text> into <buf>. */
static void
last_line(const char *text, char *buf, size_t len)
{
    const char *end = text + strlen(text), *p;

    while (end > text && end[-1] == '\n') {
        end--;
    }
    p = end;
    while (p > text && p[-1] != '\n') {
        p--;
    }
    snprintf(buf, len, "%.*s", (int)(end - p), p);
}


/* Log in as the bootstrap administrator.  Admin creates it just after
 * the database is ready, so the first attempts may find no such user. */
static void
admin_login(env_t *e)
{
    uint64_t deadline = tg_it_now_ms() + 10000;
    run_t r;

    do {
        ctl(e, &r, NULL, ADMIN_PW "\n", NULL, "login admin --password-stdin");
        if (r.rc != 0) {
            tg_it_sleep_ms(100);
        }
    } while (r.rc != 0 && tg_it_now_ms() < deadline);
    CHECK_RUN(&r, 0, "as admin (admin)", false);
}


static void
test_tour(void)
{
    char key[128], path[8192], dir[4096];
    long long uid, kid, aid;
    struct stat st;
    env_t e;
    run_t r;

    env_start(&e, true);

    admin_login(&e);
    snprintf(path, sizeof(path), "%scfg-admin/tollgate/credentials",
             tg_it_path(dir, sizeof(dir), ""));
    TG_IT_CHECKF(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
                 "%s missing or not mode 0600", path);
    TG_IT_CHECK(!tree_contains(path, ADMIN_PW));

    ctl(&e, &r, NULL, ALICE_PW "\n", NULL,
        "users create --username alice --email alice@example.com "
        "--password-stdin --json");
    CHECK_RUN(&r, 0, "\"alice\"", false);
    uid = json_id(&r, "user_id");
    run_fini(&r);

    ctl(&e, &r, NULL, NULL, NULL,
        "keys create --user-id %lld --name laptop --models 'claude-haiku-*'",
        uid);
    CHECK_RUN(&r, 0, "shown only this once", true);
    last_line(r.out, key, sizeof(key));
    TG_IT_CHECKF(strncmp(key, "sk-tg-", 6) == 0 && strlen(key) == 49,
                 "no key on the last line: %s", r.out);
    ctl(&e, &r, NULL, NULL, NULL, "keys list --user-id %lld --json", uid);
    CHECK_RUN(&r, 0, "laptop", false);
    kid = json_id(&r, "items.0.key_id");
    run_fini(&r);

    TG_IT_CHECK_INT(call_model_wait(&e, key, "claude-haiku-4-5", 200), 200);
    TG_IT_CHECK_INT(call_model(&e, key, "claude-sonnet-4-5"), 403);

    ctl(&e, &r, "alice", ALICE_PW "\n", NULL, "login alice --password-stdin");
    CHECK_RUN(&r, 0, "as alice (user)", false);
    ctl(&e, &r, "alice", NULL, NULL,
        "apps apply model-access --key-id %lld --models 'claude-sonnet-*' "
        "--reason 'code review' --json",
        kid);
    CHECK_RUN(&r, 0, "\"pending\"", false);
    aid = json_id(&r, "application_id");
    run_fini(&r);

    ctl(&e, &r, NULL, NULL, NULL, "apps list --status pending");
    CHECK_RUN(&r, 0, "model_access", false);
    TG_IT_CHECK(strstr(r.out, "alice") != NULL);
    ctl(&e, &r, NULL, NULL, NULL, "apps approve %lld --comment 'enjoy'", aid);
    CHECK_RUN(&r, 0, "approved", false);

    TG_IT_CHECK_INT(call_model_wait(&e, key, "claude-sonnet-4-5", 200), 200);

    /* The endpoint served those calls: its success rate and latency. */
    ctl(&e, &r, NULL, NULL, NULL, "health status");
    CHECK_RUN(&r, 0, "mock-anthropic", false);
    TG_IT_CHECKF(strstr(r.out, "100.0%") != NULL && has_duration(r.out),
                 "no success rate or latency: %s", r.out);

    ctl(&e, &r, "alice", NULL, NULL, "apps get %lld", aid);
    CHECK_RUN(&r, 0, "enjoy", false);
    ctl(&e, &r, "alice", NULL, NULL, "logout");
    CHECK_RUN(&r, 0, "Logged out", false);
    ctl(&e, &r, "alice", NULL, NULL, "keys list");
    CHECK_RUN(&r, 1, "not logged in", true);
    CHECK_ONE_LINE(&r);

    /* The key was printed once and kept nowhere. */
    snprintf(path, sizeof(path), "%scfg-admin", dir);
    TG_IT_CHECK(!tree_contains(path, key));
    snprintf(path, sizeof(path), "%scfg-alice", dir);
    TG_IT_CHECK(!tree_contains(path, key));
    snprintf(path, sizeof(path), "%shome-admin", dir);
    TG_IT_CHECK(!tree_contains(path, key));
    env_stop(&e);
}


/*
 * The code webhook's receiver: a child process that accepts connections
 * on <port>, appends each request body as one line to "<dir>/hook.jsonl"
 * and answers 200.  Returns its pid (also listed for the runner).
 */
static pid_t
hook_start(int port)
{
    static const char hook_answer[] = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
                                      "connection: close\r\n\r\n";
    struct sockaddr_in sa;
    char path[4200], buf[16384];
    int lfd, one = 1;
    pid_t pid;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    TG_IT_CHECKF(lfd >= 0 &&
                     bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                     listen(lfd, 8) == 0,
                 "webhook receiver: cannot listen on %d", port);
    tg_it_path(path, sizeof(path), "hook.jsonl");
    pid = fork();
    TG_IT_CHECK(pid >= 0);
    if (pid > 0) {
        char text[32];

        close(lfd);
        snprintf(text, sizeof(text), "%d", (int)pid);
        pid_record(text);
        return pid;
    }
    setpgid(0, 0);
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        size_t n = 0;
        ssize_t k;
        char *body = NULL, *cl;
        FILE *f;

        if (cfd < 0) {
            continue;
        }
        /* Read the head, then content-length bytes of body. */
        while (n < sizeof(buf) - 1 &&
               (k = read(cfd, buf + n, sizeof(buf) - 1 - n)) > 0) {
            n += (size_t)k;
            buf[n] = '\0';
            body = strstr(buf, "\r\n\r\n");
            cl = strcasestr(buf, "content-length:");
            if (body != NULL && cl != NULL &&
                (size_t)(body + 4 - buf) + (size_t)atoi(cl + 15) <= n) {
                break;
            }
        }
        if (body != NULL && (f = fopen(path, "a")) != NULL) {
            fprintf(f, "%s\n", body + 4);
            fclose(f);
        }
        k = write(cfd, hook_answer, sizeof(hook_answer) - 1);
        (void)k;
        close(cfd);
    }
}


/*
 * `tollctl login <user> --code --code-stdin` as <who>: start it with its
 * stdin on a FIFO, wait for the code to reach the webhook, type it (or,
 * when <wrong>, other digits) and wait for tollctl to end.  Fills <r> and
 * <sent> (the code the webhook got).
 */
static void
login_code(env_t *e, run_t *r, const char *who, const char *user, bool wrong,
           char *sent, size_t sentlen)
{
    char cmd[40000], fifo[4200], outp[4200], errp[4200], hook[4200], dir[4096];
    char *argv[] = {"/bin/sh", "-c", cmd, NULL}, *text, *nl, bin[4200];
    char cwd[4096], line[64];
    const char *want[] = {user, NULL};
    tg_it_proc_t p;
    json_t *j;
    int wfd, before;

    tg_it_path(dir, sizeof(dir), "");
    tg_it_path(fifo, sizeof(fifo), "code.fifo");
    tg_it_path(outp, sizeof(outp), "ctl.out");
    tg_it_path(errp, sizeof(errp), "ctl.err");
    tg_it_path(hook, sizeof(hook), "hook.jsonl");
    TG_IT_CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(bin, sizeof(bin), "%s%s%s/tollctl",
             tg_it_build()[0] == '/' ? "" : cwd,
             tg_it_build()[0] == '/' ? "" : "/", tg_it_build());
    unlink(fifo);
    TG_IT_CHECK(mkfifo(fifo, 0600) == 0);
    /* Held open for reading and writing, so the shell's open of the FIFO
     * does not wait for a writer. */
    wfd = open(fifo, O_RDWR);
    TG_IT_CHECK(wfd >= 0);
    before = tg_it_file_count(hook, want);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && unset TOLLGATE_TOKEN && HOME='%shome-%s' "
             "XDG_CONFIG_HOME='%scfg-%s' TOLLGATE_ADMIN_URL='%s' NO_COLOR=1 "
             "exec '%s' login %s --code --code-stdin <'%s' >'%s' 2>'%s'",
             dir, dir, who, dir, who, e->url, bin, user, fifo, outp, errp);
    tg_it_proc_start(&p, "login-code", argv);
    TG_IT_CHECKF(tg_it_file_wait_count(hook, want, before + 1, 10000) > before,
                 "no code reached the webhook");
    text = tg_it_file_read(hook, NULL);
    TG_IT_CHECK(text != NULL);
    while ((nl = strrchr(text, '\n')) != NULL && nl[1] == '\0') {
        *nl = '\0';
    }
    j = json_loads(strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text, 0,
                   NULL);
    free(text);
    TG_IT_CHECKF(json_is_string(json_object_get(j, "code")),
                 "the webhook got no code");
    snprintf(sent, sentlen, "%s",
             json_string_value(json_object_get(j, "code")));
    json_decref(j);
    snprintf(line, sizeof(line), "%s\n", sent);
    if (wrong) {
        /* Another six digits than the ones sent. */
        line[0] = (char)('0' + (line[0] - '0' + 1) % 10);
    }
    TG_IT_CHECK(write(wfd, line, strlen(line)) == (ssize_t)strlen(line));
    close(wfd);
    TG_IT_CHECKF(tg_it_proc_wait(&p, 20000), "tollctl login --code hangs");
    memset(r, 0, sizeof(*r));
    r->rc = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
    text = tg_it_file_read(outp, NULL);
    snprintf(r->out, sizeof(r->out), "%s", text != NULL ? text : "");
    free(text);
    text = tg_it_file_read(errp, NULL);
    snprintf(r->err, sizeof(r->err), "%s", text != NULL ? text : "");
    free(text);
    tg_it_note("tollctl login %s --code -> %d\n%s%s", user, r->rc, r->out,
               r->err);
}


/* tollctl prices: set, get, update and delete one price, in both forms. */
static void
check_prices(env_t *e)
{
    run_t r;
    long long id;

    ctl(e, &r, NULL, NULL, NULL,
        "prices set --pattern 'ctl-model-*' --input 1.5 --output 7 "
        "--cache-read 0.15 --cache-write-5m 1.875 --cache-write-1h 3 --json");
    CHECK_RUN(&r, 0, "\"price_id\"", false);
    id = json_integer_value(json_object_get(r.json, "price_id"));
    TG_IT_CHECK_STR(tg_it_json_str(r.json, "output_usd_per_mtok"), "7");
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices update %lld --output 8.25", id);
    CHECK_RUN(&r, 0, "8.25", false);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices list --model ctl-model-x");
    CHECK_RUN(&r, 0, "ctl-model-*", false);
    TG_IT_CHECK(strstr(r.out, "8.25") != NULL && strstr(r.out, "1.875"));
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices set --pattern x --input 1");
    CHECK_RUN(&r, 2, "--output is required", true);
    ctl(e, &r, NULL, NULL, NULL, "prices update %lld --input -3", id);
    CHECK_RUN(&r, 2, "--input: expected an amount", true);
    CHECK_ONE_LINE(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices update %lld --input 123456789", id);
    CHECK_RUN(&r, 1, "input_usd_per_mtok", true);
    CHECK_ONE_LINE(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices delete %lld --yes", id);
    CHECK_RUN(&r, 0, "deleted price", false);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices get %lld", id);
    CHECK_RUN(&r, 1, "404", true);
}

static void
test_login_code(void)
{
    char sent[64], sent2[64], path[8192], dir[4096];
    int hook_port = tg_it_port_free();
    pid_t hook;
    env_t e;
    run_t r;

    memset(&e, 0, sizeof(e));
    hook = hook_start(hook_port);
    tg_it_fixture_init(&e.f);
    pg_start(&e);
    tg_it_conf_set(&e.f.conf, "admin.code_webhook",
                   "\"http://127.0.0.1:%d/hook\"", hook_port);
    env_start_prepared(&e);

    admin_login(&e);
    ctl(&e, &r, NULL, NULL, NULL,
        "users create --username carol --email carol@example.com");
    CHECK_RUN(&r, 0, "carol", false);

    login_code(&e, &r, "carol", "carol", true, sent, sizeof(sent));
    CHECK_RUN(&r, 1, "POST /admin/api/auth/code/verify: 401", true);
    TG_IT_CHECKF(error_lines(r.err) == 1, "not one error line: %s", r.err);

    login_code(&e, &r, "carol", "carol", false, sent2, sizeof(sent2));
    CHECK_RUN(&r, 0, "as carol (user)", false);
    TG_IT_CHECK(strstr(r.out, sent2) == NULL && strstr(r.err, sent2) == NULL);
    ctl(&e, &r, "carol", NULL, NULL, "keys list");
    CHECK_RUN(&r, 0, "(none)", false);
    snprintf(path, sizeof(path), "%scfg-carol",
             tg_it_path(dir, sizeof(dir), ""));
    TG_IT_CHECK(!tree_contains(path, sent2));

    kill(hook, SIGKILL);
    waitpid(hook, NULL, 0);
    env_stop(&e);
}


/* <cmd> prints a table whose header holds <header>, and with --json an
 * object with "items". */
static void
check_list(env_t *e, const char *cmd, const char *header)
{
    run_t r;

    ctl(e, &r, NULL, NULL, NULL, "%s", cmd);
    CHECK_RUN(&r, 0, header, false);
    TG_IT_CHECKF(strncmp(r.out, "ID  ", 4) == 0 || strstr(r.out, "(none)"),
                 "%s: no table: %s", cmd, r.out);
    ctl(e, &r, NULL, NULL, NULL, "%s --json", cmd);
    CHECK_RUN(&r, 0, "\"items\"", false);
    TG_IT_CHECKF(json_is_array(tg_it_json_get(r.json, "items")),
                 "%s --json: no items array", cmd);
    run_fini(&r);
}


/* <cmd> shows "field  value" lines holding <line>, and with --json an
 * object with <field>. */
static void
check_show(env_t *e, const char *cmd, const char *line, const char *field)
{
    run_t r;

    ctl(e, &r, NULL, NULL, NULL, "%s", cmd);
    CHECK_RUN(&r, 0, line, false);
    ctl(e, &r, NULL, NULL, NULL, "%s --json", cmd);
    CHECK_RUN(&r, 0, "{", false);
    TG_IT_CHECKF(tg_it_json_get(r.json, field) != NULL,
                 "%s --json: no %s in %s", cmd, field, r.out);
    run_fini(&r);
}


/* Users, keys and tokens: every subcommand, table and JSON. */
static void
commands_people(env_t *e)
{
    long long uid, kid, tid;
    char cmd[256], key[128], key2[128], envs[256];
    run_t r;

    check_list(e, "users list", "USERNAME");
    ctl(e, &r, NULL, NULL, NULL,
        "users create --username bob --tokens-month 5000000 --json");
    CHECK_RUN(&r, 0, "\"bob\"", false);
    uid = json_id(&r, "user_id");
    run_fini(&r);
    snprintf(cmd, sizeof(cmd), "users get %lld", uid);
    check_show(e, cmd, "username", "user_id");

    /* One page, the next cursor named; then every page. */
    ctl(e, &r, NULL, NULL, NULL, "users list --limit 1");
    CHECK_RUN(&r, 0, "(more rows: --cursor ", true);
    ctl(e, &r, NULL, NULL, NULL, "users list --limit 1 --all --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    TG_IT_CHECKF(json_array_size(tg_it_json_get(r.json, "items")) >= 2 &&
                     json_is_null(tg_it_json_get(r.json, "next_cursor")),
                 "--all did not follow the cursor: %s", r.out);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "users update %lld --tokens-day 1000", uid);
    CHECK_RUN(&r, 0, "tokens_day", false);
    ctl(e, &r, NULL, NULL, NULL, "users disable %lld", uid);
    CHECK_RUN(&r, 0, "disabled user", false);
    ctl(e, &r, NULL, NULL, NULL, "users list --status disabled");
    CHECK_RUN(&r, 0, "bob", false);
    ctl(e, &r, NULL, NULL, NULL, "users enable %lld", uid);
    CHECK_RUN(&r, 0, "enabled user", false);
    ctl(e, &r, NULL, NULL, NULL, "users create --username bob");
    CHECK_RUN(&r, 1, "409", true);
    CHECK_ONE_LINE(&r);

    check_list(e, "keys list", "LAST4");
    ctl(e, &r, NULL, NULL, NULL,
        "keys create --user-id %lld --name ci --rpm 60 --expires +30d", uid);
    CHECK_RUN(&r, 0, "sk-tg-", false);
    last_line(r.out, key, sizeof(key));
    ctl(e, &r, NULL, NULL, NULL, "keys list --user-id %lld --json", uid);
    kid = json_id(&r, "items.0.key_id");
    run_fini(&r);
    snprintf(cmd, sizeof(cmd), "keys get %lld", kid);
    check_show(e, cmd, "prefix", "key_id");
    ctl(e, &r, NULL, NULL, NULL, "keys update %lld --models 'gpt-*,claude-*'",
        kid);
    CHECK_RUN(&r, 0, "gpt-*,claude-*", false);
    ctl(e, &r, NULL, NULL, NULL, "keys disable %lld", kid);
    CHECK_RUN(&r, 0, "disabled key", false);
    ctl(e, &r, NULL, NULL, NULL, "keys enable %lld", kid);
    CHECK_RUN(&r, 0, "enabled key", false);
    ctl(e, &r, NULL, NULL, NULL, "keys rotate %lld --yes", kid);
    CHECK_RUN(&r, 0, "sk-tg-", false);
    last_line(r.out, key2, sizeof(key2));
    TG_IT_CHECKF(strcmp(key, key2) != 0 && strncmp(key2, "sk-tg-", 6) == 0,
                 "rotate printed no new key: %s", r.out);
    ctl(e, &r, NULL, NULL, NULL, "keys delete %lld --yes", kid);
    CHECK_RUN(&r, 0, "deleted key", false);
    ctl(e, &r, NULL, NULL, NULL, "keys get %lld", kid);
    CHECK_RUN(&r, 1, "404", true);
    CHECK_ONE_LINE(&r);

    ctl(e, &r, NULL, NULL, NULL, "tokens create --name ci --ttl 1d --json");
    CHECK_RUN(&r, 0, "\"token\"", false);
    tid = json_id(&r, "token_id");
    snprintf(envs, sizeof(envs), "TOLLGATE_TOKEN='%s'",
             json_string_value(tg_it_json_get(r.json, "token")));
    run_fini(&r);
    ctl(e, &r, "nobody", NULL, envs, "users get %lld", uid);
    CHECK_RUN(&r, 0, "bob", false);
    check_list(e, "tokens list", "NAME");
    ctl(e, &r, NULL, NULL, NULL, "tokens delete %lld --yes", tid);
    CHECK_RUN(&r, 0, "revoked token", false);
    ctl(e, &r, "nobody", NULL, envs, "users get %lld", uid);
    CHECK_RUN(&r, 1, "401 unauthorized", true);
    CHECK_ONE_LINE(&r);

    ctl(e, &r, NULL, NULL, NULL, "users delete %lld --yes", uid);
    CHECK_RUN(&r, 0, "deleted user", false);
}


/* <r>'s JSON has <field> equal to the JSON text <want>. */
static void
check_field(run_t *r, const char *field, const char *want)
{
    json_t *v = tg_it_json_get(r->json, field);
    char *got = v != NULL
                    ? json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6))
                    : NULL;

    TG_IT_CHECKF(got != NULL && strcmp(got, want) == 0,
                 "%s is %s, wanted %s in: %s", field, got ? got : "missing",
                 want, r->out);
    free(got);
}


/* Group <gid>: every field the API takes is set by groups update, the
 * list shows translate and wait_for_cooldown_ms, a bad value is a usage
 * error that sends nothing. */
static void
check_group_fields(env_t *e, long long gid)
{
    char *row, *end;
    run_t r;

    ctl(e, &r, NULL, NULL, NULL,
        "groups update %lld --failure-threshold 3 --cooldown-ms 1500 "
        "--max-retries 1 --retry-deadline-ms 9000 --sticky off "
        "--sticky-ttl-ms 60000 --exploration 0.2 --translate off "
        "--wait-for-cooldown-ms 250 --json",
        gid);
    CHECK_RUN(&r, 0, "\"translate\"", false);
    check_field(&r, "failure_threshold", "3");
    check_field(&r, "cooldown_ms", "1500");
    check_field(&r, "max_retries", "1");
    check_field(&r, "retry_deadline_ms", "9000");
    check_field(&r, "sticky", "false");
    check_field(&r, "sticky_ttl_ms", "60000");
    check_field(&r, "exploration", "0.2");
    check_field(&r, "translate", "false");
    check_field(&r, "wait_for_cooldown_ms", "250");
    run_fini(&r);

    ctl(e, &r, NULL, NULL, NULL, "groups list");
    CHECK_RUN(&r, 0, "TRANSLATE", false);
    row = strstr(r.out, "tg-it-g");
    end = row != NULL ? strchr(row, '\n') : NULL;
    TG_IT_CHECKF(end != NULL && strstr(r.out, "WAIT") != NULL,
                 "groups list: no row or WAIT column: %s", r.out);
    *end = '\0';
    TG_IT_CHECKF(strstr(row, " no ") != NULL && strstr(row, " 250ms ") != NULL,
                 "groups list: translate or wait not shown: %s", row);
    ctl(e, &r, NULL, NULL, NULL, "groups update %lld --translate maybe", gid);
    CHECK_RUN(&r, 2, "--translate: expected on or off, got 'maybe'", true);
    CHECK_ONE_LINE(&r);
    ctl(e, &r, NULL, NULL, NULL,
        "groups update %lld --translate on --sticky=true --json", gid);
    CHECK_RUN(&r, 0, "\"translate\"", false);
    check_field(&r, "translate", "true");
    check_field(&r, "sticky", "true");
    check_field(&r, "wait_for_cooldown_ms", "250");
    run_fini(&r);
}


/* Groups and endpoints. */
static void
commands_routing(env_t *e)
{
    char cmd[256], envs[128];
    long long gid, eid;
    run_t r;

    check_list(e, "groups list", "STRATEGY");
    ctl(e, &r, NULL, NULL, NULL,
        "groups create tg-it-g --strategy weighted "
        "--json");
    CHECK_RUN(&r, 0, "weighted", false);
    gid = json_id(&r, "group_id");
    run_fini(&r);
    snprintf(cmd, sizeof(cmd), "groups get %lld", gid);
    check_show(e, cmd, "strategy", "group_id");
    ctl(e, &r, NULL, NULL, NULL, "groups update %lld --description 'test'",
        gid);
    CHECK_RUN(&r, 0, "test", false);
    check_group_fields(e, gid);

    check_list(e, "endpoints list", "STYLE");
    snprintf(envs, sizeof(envs), "TG_IT_CRED='%s'", TG_IT_CRED);
    ctl(e, &r, NULL, NULL, envs,
        "endpoints add tg-it-e --url http://127.0.0.1:%d --style anthropic "
        "--group tg-it-g --credential-env TG_IT_CRED --json",
        e->f.mock_port);
    CHECK_RUN(&r, 0, "tg-it-e", false);
    TG_IT_CHECKF(strstr(r.out, TG_IT_CRED) == NULL, "credential shown");
    eid = json_id(&r, "endpoint_id");
    run_fini(&r);
    snprintf(cmd, sizeof(cmd), "endpoints get %lld", eid);
    check_show(e, cmd, "url", "endpoint_id");
    ctl(e, &r, NULL, NULL, NULL, "endpoints update %lld --weight 5", eid);
    CHECK_RUN(&r, 0, "weight", false);
    ctl(e, &r, NULL, NULL, NULL, "endpoints disable %lld", eid);
    CHECK_RUN(&r, 0, "disabled endpoint", false);
    ctl(e, &r, NULL, NULL, NULL, "endpoints enable %lld", eid);
    CHECK_RUN(&r, 0, "enabled endpoint", false);
    ctl(e, &r, NULL, NULL, NULL, "endpoints test %lld --json", eid);
    TG_IT_CHECKF(r.rc == 0 && json_is_object(r.json),
                 "endpoints test: %d %s %s", r.rc, r.out, r.err);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "endpoints remove %lld --yes", eid);
    CHECK_RUN(&r, 0, "removed endpoint", false);
    ctl(e, &r, NULL, NULL, NULL, "groups delete %lld --yes", gid);
    CHECK_RUN(&r, 0, "deleted group", false);
}


/* Applications: every kind, list, get, reject, approve, and the new key
 * an approval creates, shown once to its applicant. */
static void
commands_apps(env_t *e)
{
    long long quota, newkey;
    char cmd[128], key[128];
    run_t r;

    ctl(e, &r, NULL, NULL, NULL,
        "apps apply quota-increase --tokens-month 9000000 --reason more "
        "--json");
    CHECK_RUN(&r, 0, "quota_increase", false);
    quota = json_id(&r, "application_id");
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL,
        "apps apply new-key --name from-app --models 'claude-*' --json");
    CHECK_RUN(&r, 0, "new_key", false);
    newkey = json_id(&r, "application_id");
    run_fini(&r);
    check_list(e, "apps list --status pending", "KIND");
    snprintf(cmd, sizeof(cmd), "apps get %lld", quota);
    check_show(e, cmd, "quota_increase", "application_id");

    ctl(e, &r, NULL, NULL, NULL, "apps reject %lld --comment 'not now'", quota);
    CHECK_RUN(&r, 0, "rejected", false);
    ctl(e, &r, NULL, NULL, NULL, "apps approve %lld", newkey);
    CHECK_RUN(&r, 0, "approved", false);
    ctl(e, &r, NULL, NULL, NULL, "apps get %lld", newkey);
    CHECK_RUN(&r, 0, "shown only this once", true);
    last_line(r.out, key, sizeof(key));
    TG_IT_CHECKF(strncmp(key, "sk-tg-", 6) == 0, "no new key: %s", r.out);
    ctl(e, &r, NULL, NULL, NULL, "apps get %lld", newkey);
    CHECK_RUN(&r, 0, "approved", false);
    TG_IT_CHECKF(strstr(r.out, key) == NULL && strstr(r.err, "shown") == NULL,
                 "the new key was shown twice: %s", r.out);
    TG_IT_CHECK_INT(call_model_wait(e, key, "claude-haiku-4-5", 200), 200);
}


/* Audit, status, health and the routes this server lacks. */
static void
commands_watch(env_t *e)
{
    char path[4096];
    run_t r;

    ctl(e, &r, NULL, NULL, NULL, "audit --action user.create");
    CHECK_RUN(&r, 0, "ACTION", false);
    TG_IT_CHECK(strstr(r.out, "user.create") != NULL);
    ctl(e, &r, NULL, NULL, NULL, "audit --all --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    TG_IT_CHECK(json_array_size(tg_it_json_get(r.json, "items")) > 5);
    run_fini(&r);

    ctl(e, &r, NULL, NULL, NULL, "status");
    CHECK_RUN(&r, 0, "healthz.database  ready", false);
    ctl(e, &r, NULL, NULL, NULL, "status --json");
    CHECK_RUN(&r, 0, "{", false);
    TG_IT_CHECK_STR(tg_it_json_str(r.json, "healthz.database"), "ready");
    run_fini(&r);

    ctl(e, &r, NULL, NULL, NULL, "health status");
    CHECK_RUN(&r, 0, "BREAKER", false);
    TG_IT_CHECK(strstr(r.out, "mock-anthropic") != NULL);
    ctl(e, &r, NULL, NULL, NULL, "health status --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "health history mock-anthropic");
    CHECK_RUN(&r, 0, "", false);
    ctl(e, &r, NULL, NULL, NULL, "health history mock-anthropic --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    run_fini(&r);

    /* The usage and prices routes exist now. */
    ctl(e, &r, NULL, NULL, NULL, "usage --from -7d --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "usage --from -7d --group-by day,model");
    TG_IT_CHECKF(r.rc == 0 && (strncmp(r.out, "DAY  ", 5) == 0 ||
                               strcmp(r.out, "(none)\n") == 0),
                 "usage table: %s", r.out);
    TG_IT_CHECK(strstr(r.out, "ENDPOINT") == NULL);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices list --model claude-sonnet-4-5");
    CHECK_RUN(&r, 0, "claude-sonnet-4-5*", false);
    TG_IT_CHECK(strstr(r.out, "CACHE READ") != NULL);
    run_fini(&r);
    ctl(e, &r, NULL, NULL, NULL, "prices list --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    run_fini(&r);
    check_prices(e);
    /* The keys export streams into its file, written atomically. */
    ctl(e, &r, NULL, NULL, NULL, "keys export -o keys.csv --mask email");
    CHECK_RUN(&r, 0, "wrote", true);
    run_fini(&r);
    {
        char *csv =
            tg_it_file_read(tg_it_path(path, sizeof(path), "keys.csv"), NULL);

        TG_IT_CHECK(csv != NULL &&
                    strncmp(csv, "key_id,user_id,username,email,", 30) == 0);
        free(csv);
    }
    ctl(e, &r, NULL, NULL, NULL, "export --format json -o keys.json");
    CHECK_RUN(&r, 0, "wrote", true);

    /* A wrong token, and a user reaching for an admin route. */
    ctl(e, &r, "nobody", NULL, "TOLLGATE_TOKEN=tgs_wrong", "users list");
    CHECK_RUN(&r, 1, "401 unauthorized", true);
    TG_IT_CHECK(strstr(r.err, "TOLLGATE_TOKEN") != NULL);
    CHECK_ONE_LINE(&r);
}


static void
test_every_command(void)
{
    env_t e;
    run_t r;

    env_start(&e, true);
    admin_login(&e);
    ctl(&e, &r, NULL, "wrong-password\n", NULL, "login admin --password-stdin");
    CHECK_RUN(&r, 1, "POST /admin/api/auth/login: 401", true);
    CHECK_ONE_LINE(&r);
    commands_people(&e);
    commands_apps(&e);
    commands_routing(&e);
    commands_watch(&e);
    ctl(&e, &r, NULL, NULL, NULL, "logout");
    CHECK_RUN(&r, 0, "Logged out", false);
    env_stop(&e);
}


/* `tollctl <words>` exits 2 with <msg> on one stderr line. */
static void
check_usage(const char *words, const char *msg)
{
    run_t r;

    ctl(NULL, &r, NULL, NULL, NULL, "%s", words);
    CHECK_RUN(&r, 2, msg, true);
}


static void
test_usage_and_transport(void)
{
    static const char *const groups[] = {
        "login",     "logout", "users",  "keys",   "apps",
        "endpoints", "groups", "tokens", "health", "audit",
        "status",    "usage",  "prices", "export", NULL};
    char cmd[256];
    size_t i;
    env_t e;
    run_t r;

    check_usage("", "usage: tollctl");
    check_usage("frobnicate", "unknown command 'frobnicate'");
    check_usage("users frob", "unknown subcommand 'frob'");
    check_usage("users get seven", "expected a positive integer id");
    check_usage("keys create --rpm many", "--rpm: expected an integer");
    check_usage("keys create --expires someday", "--expires: expected a time");
    check_usage("users create", "--username is required");
    check_usage("users list --bogus", "unknown option '--bogus'");
    check_usage("apps apply model-access --models x",
                "needs --key-id and --models");
    check_usage("users create --username a --set password=x",
                "never given on the command line");
    check_usage("login admin", "stdin is not a terminal");
    check_usage("users list --url ftp://x", "not an http:// or https:// URL");

    /* --help on every command and subcommand. */
    for (i = 0; groups[i] != NULL; i++) {
        char *p, *line;

        ctl(NULL, &r, NULL, NULL, NULL, "%s --help", groups[i]);
        CHECK_RUN(&r, 0, "usage: tollctl ", false);
        p = strstr(r.out, "Subcommands:\n");
        for (line = p ? strchr(p, '\n') + 1 : NULL;
             line != NULL && line[0] == ' ' && line[1] == ' ';
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            char sub[32];
            run_t s;

            if (sscanf(line + 2, "%31s", sub) != 1) {
                break;
            }
            ctl(NULL, &s, NULL, NULL, NULL, "%s %s --help", groups[i], sub);
            snprintf(cmd, sizeof(cmd), "usage: tollctl %s %s", groups[i], sub);
            CHECK_RUN(&s, 0, cmd, false);
        }
    }

    /* Nothing listens: one line naming the address. */
    ctl(NULL, &r, NULL, NULL, NULL, "users list");
    CHECK_RUN(&r, 1, "http://127.0.0.1:1/admin/api/users", true);
    TG_IT_CHECK(strstr(r.err, "is tollgate running there?") != NULL);
    CHECK_ONE_LINE(&r);

    /* Without a database, the routes that need one say so. */
    env_start(&e, false);
    ctl(&e, &r, NULL, NULL, "TOLLGATE_TOKEN=tgs_whatever", "users list");
    TG_IT_CHECKF(r.rc == 1 && (strstr(r.err, "503") || strstr(r.err, "401")),
                 "users list without a database: %d %s", r.rc, r.err);
    CHECK_ONE_LINE(&r);
    env_stop(&e);
}


/* Log in over the API as the bootstrap administrator: the token into
 * <tok> of <len> bytes. */
static void
api_login(env_t *e, char *tok, size_t len)
{
    json_t *j = NULL;
    int st;

    st = tg_it_admin_call(
        e->f.admin_port, NULL, "POST", "/admin/api/auth/login",
        "{\"username\":\"admin\",\"password\":\"" ADMIN_PW "\"}", &j);
    TG_IT_CHECK_INT(st, 200);
    snprintf(tok, len, "%s", tg_it_json_str(j, "token"));
    json_decref(j);
}


/* The first event of type <type> in the items of <page>, or NULL. */
static json_t *
event_find(json_t *page, const char *type)
{
    json_t *items = tg_it_json_get(page, "items"), *it;
    size_t i;

    json_array_foreach(items, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "type"));

        if (t != NULL && strcmp(t, type) == 0) {
            return it;
        }
    }
    return NULL;
}


/*
 * An endpoint nobody listens on, in a "default" group the file declares
 * (failure_threshold 1): the file's group is the database's row, so the
 * first failed request opens the breaker; the event reaches PostgreSQL
 * and shows over the API and in `tollctl health history`.
 */
static void
test_health_history(void)
{
    char ep[512], tok[256], path[128];
    json_t *j = NULL, *ev = NULL;
    long long eid;
    uint64_t deadline;
    env_t e;
    run_t r;
    int st;

    memset(&e, 0, sizeof(e));
    tg_it_fixture_init(&e.f);
    pg_start(&e);
    /* No health checks: the breaker event must come from a request. */
    snprintf(ep, sizeof(ep),
             "{ name = \"dead-relay\"; url = \"http://127.0.0.1:%d\"; "
             "style = \"anthropic\"; credential = \"" TG_IT_CRED "\"; "
             "health_interval = 0; }",
             tg_it_port_free());
    tg_it_conf_set(&e.f.conf, "endpoints", "( %s )", ep);
    tg_it_conf_set(&e.f.conf, "groups",
                   "( { name = \"default\"; failure_threshold = 1; "
                   "cooldown = 60; translate = false; } )");
    env_start_prepared(&e);
    admin_login(&e);
    api_login(&e, tok, sizeof(tok));

    /* The file's "default" is imported: its settings, file-managed. */
    st = tg_it_admin_call(e.f.admin_port, tok, "GET", "/admin/api/groups/1",
                          NULL, &j);
    TG_IT_CHECK_INT(st, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "name"), "default");
    TG_IT_CHECK_STR(tg_it_json_str(j, "managed_by"), "file");
    TG_IT_CHECK_INT(json_integer_value(tg_it_json_get(j, "failure_threshold")),
                    1);
    json_decref(j);
    st = tg_it_admin_call(e.f.admin_port, tok, "PATCH", "/admin/api/groups/1",
                          "{\"failure_threshold\":7}", NULL);
    TG_IT_CHECK_INT(st, 409);

    ctl(&e, &r, NULL, NULL, NULL, "endpoints list --json");
    CHECK_RUN(&r, 0, "dead-relay", false);
    eid = json_id(&r, "items.0.endpoint_id");
    run_fini(&r);

    /* One failed request opens the breaker (threshold 1). */
    TG_IT_CHECK(call_model(&e, TG_IT_KEY, "claude-haiku-4-5") >= 500);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/events", eid);
    deadline = tg_it_now_ms() + 10000;
    for (;;) {
        st = tg_it_admin_call(e.f.admin_port, tok, "GET", path, NULL, &j);
        TG_IT_CHECK_INT(st, 200);
        ev = event_find(j, "opened");
        if (ev != NULL || tg_it_now_ms() > deadline) {
            break;
        }
        json_decref(j);
        tg_it_sleep_ms(100);
    }
    TG_IT_CHECKF(ev != NULL, "no \"opened\" event of endpoint %lld", eid);
    TG_IT_CHECK_STR(tg_it_json_str(ev, "endpoint"), "dead-relay");
    TG_IT_CHECK_STR(tg_it_json_str(ev, "from_state"), "closed");
    TG_IT_CHECK_STR(tg_it_json_str(ev, "to_state"), "open");
    TG_IT_CHECK_STR(tg_it_json_str(ev, "source"), "worker");
    TG_IT_CHECK_INT(json_integer_value(json_object_get(ev, "status")), 1007);
    TG_IT_CHECK_INT(json_integer_value(json_object_get(ev, "endpoint_id")),
                    eid);
    TG_IT_CHECK(json_is_string(json_object_get(ev, "until")));
    json_decref(j);
    /* Administrators only; bounds are checked. */
    snprintf(path, sizeof(path),
             "/admin/api/endpoints/%lld/events?from=2000-01-01T00:00:00Z"
             "&to=2000-01-02T00:00:00Z",
             eid);
    st = tg_it_admin_call(e.f.admin_port, tok, "GET", path, NULL, &j);
    TG_IT_CHECK_INT(st, 200);
    TG_IT_CHECK_INT(json_array_size(tg_it_json_get(j, "items")), 0);
    json_decref(j);
    st = tg_it_admin_call(e.f.admin_port, tok, "GET",
                          "/admin/api/endpoints/999/events", NULL, NULL);
    TG_IT_CHECK_INT(st, 404);
    st = tg_it_admin_call(e.f.admin_port, NULL, "GET", path, NULL, NULL);
    TG_IT_CHECK_INT(st, 401);

    /* tollctl, by name: the table, and the JSON. */
    ctl(&e, &r, NULL, NULL, NULL, "health history dead-relay");
    CHECK_RUN(&r, 0, "EVENT", false);
    TG_IT_CHECK(strstr(r.out, "opened") != NULL);
    TG_IT_CHECK(strstr(r.out, "1007") != NULL);
    TG_IT_CHECK(strstr(r.out, "worker") != NULL);
    ctl(&e, &r, NULL, NULL, NULL,
        "health history dead-relay --since 1h --json");
    CHECK_RUN(&r, 0, "\"items\"", false);
    ev = event_find(r.json, "opened");
    TG_IT_CHECKF(ev != NULL, "no opened event in: %s", r.out);
    TG_IT_CHECK_STR(tg_it_json_str(ev, "endpoint"), "dead-relay");
    run_fini(&r);
    ctl(&e, &r, NULL, NULL, NULL, "health history %lld --json", eid);
    CHECK_RUN(&r, 0, "\"opened\"", false);
    run_fini(&r);
    ctl(&e, &r, NULL, NULL, NULL, "health history no-such-endpoint");
    CHECK_RUN(&r, 1, "no endpoint named 'no-such-endpoint'", true);
    CHECK_ONE_LINE(&r);
    ctl(&e, &r, NULL, NULL, NULL, "health history dead-relay --since soon");
    CHECK_RUN(&r, 2, "--since", true);

    /* /metrics counts what was stored. */
    {
        tg_it_resp_t resp;
        const char *m;

        tg_it_request(e.f.admin_port, "GET", "/metrics", NULL, NULL, &resp);
        m = resp.body != NULL
                ? strstr(resp.body,
                         "tollgate_endpoint_events_total{result=\"stored\"} ")
                : NULL;
        TG_IT_CHECKF(m != NULL && atoi(strchr(m, '}') + 2) >= 1,
                     "no stored events in /metrics");
        tg_it_resp_fini(&resp);
    }
    env_stop(&e);
}


const tg_it_test_t tg_it_tollctl_tests[] = {
    {"tollctl runs the tour: login, user, key, application, approval, the "
     "key through a worker",
     test_tour},
    {"tollctl prints every command's table and JSON, refuses a wrong token "
     "and names missing routes",
     test_every_command},
    {"tollctl logs in with a verification code sent through the webhook",
     test_login_code},
    {"an endpoint's breaker events reach PostgreSQL and show over the API "
     "and in tollctl health history; the file's default group is imported",
     test_health_history},
    {"tollctl refuses bad arguments with status 2 and names an unreachable "
     "server",
     test_usage_and_transport},
    {NULL, NULL},
};
