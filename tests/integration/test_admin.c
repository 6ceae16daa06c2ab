/*
 * tests/integration/test_admin.c
 *      The admin HTTP API against a real PostgreSQL: authentication,
 *      every route, hostile input, permissions, approvals, code login
 *      with lockout, and changes reaching the workers.
 *
 * NOTES
 *      Names are made unique per test process (the pid in a suffix), so
 *      the tests also pass against one shared database ($TG_IT_DATABASE).
 *      The login-code webhook is a tiny receiver forked here, which
 *      appends each body it gets to a file in the test directory.
 */
#include "tests/integration/test_admin.h"
#include "tests/integration/client.h"
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* See test_admin.h. */
void
tg_it_admin_prepare(tg_it_fixture_t *f, const char *webhook)
{
    char conninfo[4096], key[4096];
    bool have = false;
    size_t i;

    for (i = 0; i < f->conf.n; i++) {
        have |= strcmp(f->conf.items[i].name, "database") == 0;
    }
    if (!have) {
        tg_it_pg_db_create(conninfo, sizeof(conninfo));
        tg_it_conf_set(&f->conf, "database", "\"%s\"", conninfo);
    }
    tg_it_conf_set(&f->conf, "admin.secret_key", "\"%s\"",
                   tg_it_path(key, sizeof(key), "secret.key"));
    tg_it_conf_set(&f->conf, "admin.bootstrap_password",
                   "\"" TG_IT_ADMIN_PASSWORD "\"");
    if (webhook != NULL) {
        tg_it_conf_set(&f->conf, "admin.code_webhook", "\"%s\"", webhook);
    }
}


/* See test_admin.h. */
int
tg_it_admin_call(int port, const char *token, const char *method,
                 const char *path, const char *body, json_t **out)
{
    char headers[512];
    tg_it_resp_t resp;
    int status;

    snprintf(headers, sizeof(headers),
             "%s%s%scontent-type: application/json\r\n",
             token ? "authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "");
    tg_it_request(port, method, path, headers, body, &resp);
    status = resp.status;
    if (out != NULL) {
        *out = resp.body_len > 0 ? json_loadb(resp.body, resp.body_len, 0, NULL)
                                 : NULL;
        TG_IT_CHECKF(resp.body_len == 0 || *out != NULL,
                     "%s %s: %d answer is not JSON: %.200s", method, path,
                     status, resp.body);
    }
    tg_it_resp_fini(&resp);
    return status;
}


/* See test_admin.h. */
void
tg_it_admin_login(tg_it_fixture_t *f, char *token, size_t len)
{
    uint64_t deadline = tg_it_now_ms() + 30000;
    const char *state = "";
    json_t *j = NULL;
    int st;

    for (;;) {
        st = tg_it_admin_call(f->admin_port, NULL, "GET", "/healthz", NULL, &j);
        TG_IT_CHECK_INT(st, 200);
        state = tg_it_json_str(j, "database");
        if (state != NULL && strcmp(state, "ready") == 0) {
            json_decref(j);
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "the database is not ready after 30 s (%s)",
                     state ? state : "?");
        json_decref(j);
        tg_it_sleep_ms(100);
    }
    /* The bootstrap administrator appears shortly after. */
    for (;;) {
        st = tg_it_admin_call(
            f->admin_port, NULL, "POST", "/admin/api/auth/login",
            "{\"username\":\"admin\",\"password\":\"" TG_IT_ADMIN_PASSWORD
            "\"}",
            &j);
        if (st == 200) {
            break;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline, "admin login: %d", st);
        json_decref(j);
        tg_it_sleep_ms(100);
    }
    TG_IT_CHECK(tg_it_json_str(j, "token") != NULL);
    snprintf(token, len, "%s", tg_it_json_str(j, "token"));
    TG_IT_CHECK_STR(tg_it_json_str(j, "user.role"), "admin");
    json_decref(j);
}


/* A fixture with the admin API ready and the administrator's token. */
typedef struct {
    tg_it_fixture_t f;
    char admin[128];
    char sfx[32]; /* unique suffix for names */
    int port;     /* admin port */
} adm_t;


static void
adm_start(adm_t *t, const char *webhook)
{
    tg_it_fixture_init(&t->f);
    tg_it_admin_prepare(&t->f, webhook);
    tg_it_fixture_start(&t->f);
    t->port = t->f.admin_port;
    snprintf(t->sfx, sizeof(t->sfx), "%d", (int)getpid());
    tg_it_admin_login(&t->f, t->admin, sizeof(t->admin));
}


/* Call and check the status; returns the answer (caller decrefs). */
static json_t *
call(adm_t *t, const char *tok, const char *method, const char *path,
     const char *body, int want)
{
    json_t *j = NULL;
    int st = tg_it_admin_call(t->port, tok, method, path, body, &j);

    TG_IT_CHECKF(st == want, "%s %s: status %d, want %d: %s", method, path, st,
                 want, j ? json_dumps(j, JSON_COMPACT) : "(no body)");
    return j;
}


/* Whether the JSON text of <j> contains <needle>. */
static bool
jhas(json_t *j, const char *needle)
{
    char *s = json_dumps(j, JSON_COMPACT);
    bool found = s != NULL && strstr(s, needle) != NULL;

    free(s);
    return found;
}


static long long
jint(json_t *j, const char *path)
{
    json_t *v = tg_it_json_get(j, path);

    TG_IT_CHECKF(json_is_integer(v), "no integer at %s", path);
    return (long long)json_integer_value(v);
}


/* Create user <name> with <password>; returns the user id. */
static long long
user_create(adm_t *t, const char *name, const char *password)
{
    json_t *body = json_pack("{s:s,s:s,s:s}", "username", name, "password",
                             password, "role", "user");
    char *s = json_dumps(body, 0);
    json_t *j = call(t, t->admin, "POST", "/admin/api/users", s, 201);
    long long id = jint(j, "user_id");

    json_decref(j);
    json_decref(body);
    free(s);
    return id;
}


/* Log <name> in; the token into <tok>. */
static void
login(adm_t *t, const char *name, const char *password, char *tok, size_t len)
{
    json_t *body =
        json_pack("{s:s,s:s}", "username", name, "password", password);
    char *s = json_dumps(body, 0);
    json_t *j = call(t, NULL, "POST", "/admin/api/auth/login", s, 200);

    snprintf(tok, len, "%s", tg_it_json_str(j, "token"));
    json_decref(j);
    json_decref(body);
    free(s);
}


/* A Messages request through a worker with <key> for <model>; status. */
static int
proxy_status(adm_t *t, const char *key, const char *model)
{
    char headers[256], body[256];
    tg_it_resp_t resp;
    int st;

    snprintf(headers, sizeof(headers),
             "x-api-key: %s\r\nanthropic-version: 2023-06-01\r\n"
             "content-type: application/json\r\n",
             key);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"max_tokens\":8,\"messages\":"
             "[{\"role\":\"user\",\"content\":\"hi\"}]}",
             model);
    tg_it_request(t->f.port, "POST", "/v1/messages", headers, body, &resp);
    st = resp.status;
    tg_it_resp_fini(&resp);
    return st;
}


/* Poll until a request with <key> for <model> answers <want>, at most
 * <ms>; returns the time it took. */
static uint64_t
proxy_wait(adm_t *t, const char *key, const char *model, int want, int ms)
{
    uint64_t start = tg_it_now_ms(), deadline = start + (uint64_t)ms;
    int st;

    for (;;) {
        st = proxy_status(t, key, model);
        if (st == want) {
            return tg_it_now_ms() - start;
        }
        TG_IT_CHECKF(tg_it_now_ms() < deadline,
                     "key still answers %d after %d ms (want %d)", st, ms,
                     want);
        tg_it_sleep_ms(5);
    }
}


/* ---------------------------------------------------- webhook receiver */

/* Serve POSTs on <fd>: append each body and a newline to <file>. */
static void __attribute__((noreturn)) hook_serve(int fd, const char *file)
{
    static const char ok[] =
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    char buf[65536];

    for (;;) {
        int c = accept(fd, NULL, NULL);
        size_t n = 0, need = 0;
        char *end, *cl;
        FILE *out;

        if (c < 0) {
            continue;
        }
        for (;;) {
            ssize_t k = read(c, buf + n, sizeof(buf) - 1 - n);

            if (k <= 0) {
                break;
            }
            n += (size_t)k;
            buf[n] = '\0';
            end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                cl = strcasestr(buf, "content-length:");
                need =
                    (size_t)(end + 4 - buf) + (cl ? (size_t)atol(cl + 15) : 0);
                if (n >= need) {
                    break;
                }
            }
        }
        end = strstr(buf, "\r\n\r\n");
        out = fopen(file, "a");
        if (out != NULL && end != NULL) {
            fprintf(out, "%s\n", end + 4);
            fclose(out);
        }
        (void)!write(c, ok, sizeof(ok) - 1);
        close(c);
    }
}


/* Fork the receiver on a free port; its URL into <url>, the file it
 * writes into <file>.  Returns its pid. */
static pid_t
hook_start(char *url, size_t ulen, char *file, size_t flen)
{
    struct sockaddr_in sa;
    int fd, port = tg_it_port_free(), one = 1;
    char path[4096];
    pid_t pid;
    FILE *pids;

    tg_it_path(file, flen, "hook.jsonl");
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    TG_IT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    TG_IT_CHECK(listen(fd, 16) == 0);
    pid = fork();
    TG_IT_CHECK(pid != -1);
    if (pid == 0) {
        setpgid(0, 0);
        hook_serve(fd, file);
    }
    close(fd);
    setpgid(pid, pid);
    pids = fopen(tg_it_path(path, sizeof(path), "pids"), "a");
    if (pids != NULL) {
        fprintf(pids, "%d\n", (int)pid);
        fclose(pids);
    }
    snprintf(url, ulen, "http://127.0.0.1:%d/hook", port);
    return pid;
}


/* The last JSON body the receiver got, waiting at most 5 s for the
 * <n>th. */
static json_t *
hook_last(const char *file, int n)
{
    uint64_t deadline = tg_it_now_ms() + 5000;
    char *text, *line, *last = NULL, *save = NULL;
    json_t *j;
    int count;

    for (;;) {
        size_t len = 0;

        text = tg_it_file_read(file, &len);
        count = 0;
        for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            count++;
            last = line;
        }
        if (count >= n) {
            break;
        }
        free(text);
        TG_IT_CHECKF(tg_it_now_ms() < deadline, "the webhook got %d of %d",
                     count, n);
        tg_it_sleep_ms(20);
    }
    j = json_loads(last, 0, NULL);
    free(text);
    TG_IT_CHECK(j != NULL);
    return j;
}


/* -------------------------------------------------------------- tests */

static void
test_healthz(void)
{
    adm_t t;
    json_t *j;

    adm_start(&t, NULL);
    j = call(&t, NULL, "GET", "/healthz", NULL, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "ok");
    TG_IT_CHECK_STR(tg_it_json_str(j, "database"), "ready");
    json_decref(j);
    /* The old unauthenticated routes are gone. */
    json_decref(call(&t, NULL, "GET", "/status", NULL, 404));
    json_decref(call(&t, NULL, "GET", "/endpoints", NULL, 404));
    json_decref(
        call(&t, NULL, "POST", "/endpoints/anthropic/enable", NULL, 404));
    tg_it_fixture_stop(&t.f);
}


static void
test_unauthenticated_refused(void)
{
    static const char *const routes[][2] = {
        {"GET", "/admin/api/status"},
        {"POST", "/admin/api/auth/logout"},
        {"GET", "/admin/api/tokens"},
        {"POST", "/admin/api/tokens"},
        {"DELETE", "/admin/api/tokens/1"},
        {"GET", "/admin/api/users"},
        {"POST", "/admin/api/users"},
        {"GET", "/admin/api/users/1"},
        {"PATCH", "/admin/api/users/1"},
        {"DELETE", "/admin/api/users/1"},
        {"POST", "/admin/api/users/1/disable"},
        {"POST", "/admin/api/users/1/enable"},
        {"GET", "/admin/api/keys"},
        {"POST", "/admin/api/keys"},
        {"GET", "/admin/api/keys/1"},
        {"PATCH", "/admin/api/keys/1"},
        {"DELETE", "/admin/api/keys/1"},
        {"POST", "/admin/api/keys/1/disable"},
        {"POST", "/admin/api/keys/1/enable"},
        {"POST", "/admin/api/keys/1/rotate"},
        {"GET", "/admin/api/applications"},
        {"POST", "/admin/api/applications"},
        {"GET", "/admin/api/applications/1"},
        {"POST", "/admin/api/applications/1/approve"},
        {"POST", "/admin/api/applications/1/reject"},
        {"GET", "/admin/api/endpoints"},
        {"POST", "/admin/api/endpoints"},
        {"GET", "/admin/api/endpoints/1"},
        {"PATCH", "/admin/api/endpoints/1"},
        {"DELETE", "/admin/api/endpoints/1"},
        {"POST", "/admin/api/endpoints/1/enable"},
        {"POST", "/admin/api/endpoints/1/disable"},
        {"POST", "/admin/api/endpoints/1/test"},
        {"GET", "/admin/api/groups"},
        {"POST", "/admin/api/groups"},
        {"GET", "/admin/api/groups/1"},
        {"PATCH", "/admin/api/groups/1"},
        {"DELETE", "/admin/api/groups/1"},
        {"GET", "/admin/api/audit"},
    };
    static const char *const bad[] = {
        NULL, "tgs_notarealtoken", "", "x\"y",
        "tgs_0000000000000000000000000000000000000000000"};
    adm_t t;
    size_t i, k;
    json_t *j;

    adm_start(&t, NULL);
    for (i = 0; i < TG_NELEMS(routes); i++) {
        for (k = 0; k < TG_NELEMS(bad); k++) {
            /* A bad JSON body must not get past authentication either. */
            j = call(&t, bad[k], routes[i][0], routes[i][1], "{bad", 401);
            TG_IT_CHECK_STR(tg_it_json_str(j, "error.code"), "unauthorized");
            json_decref(j);
        }
    }
    /* Nothing changed: the audit log holds no mutation by nobody. */
    j = call(&t, t.admin, "GET", "/admin/api/audit?action=user.delete", NULL,
             200);
    TG_IT_CHECK_INT(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


static void
test_login_logout(void)
{
    char name[64], tok[128], path[64];
    adm_t t;
    json_t *j;
    long long id;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "carol%s", t.sfx);
    id = user_create(&t, name, "carol-password");
    login(&t, name, "carol-password", tok, sizeof(tok));
    TG_IT_CHECK(strncmp(tok, "tgs_", 4) == 0);
    /* Wrong password and unknown user answer alike. */
    j = call(&t, NULL, "POST", "/admin/api/auth/login",
             "{\"username\":\"admin\",\"password\":\"nope\"}", 401);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.message"),
                    "invalid username or password");
    json_decref(j);
    j = call(&t, NULL, "POST", "/admin/api/auth/login",
             "{\"username\":\"nobody-at-all\",\"password\":\"nope\"}", 401);
    TG_IT_CHECK_STR(tg_it_json_str(j, "error.message"),
                    "invalid username or password");
    json_decref(j);
    /* A user is not an administrator. */
    json_decref(call(&t, tok, "GET", "/admin/api/users", NULL, 403));
    json_decref(call(&t, tok, "GET", "/admin/api/status", NULL, 403));
    json_decref(call(&t, tok, "GET", "/admin/api/keys", NULL, 200));
    /* A disabled user's session stops working. */
    snprintf(path, sizeof(path), "/admin/api/users/%lld/disable", id);
    json_decref(call(&t, t.admin, "POST", path, NULL, 200));
    json_decref(call(&t, tok, "GET", "/admin/api/keys", NULL, 401));
    snprintf(path, sizeof(path), "/admin/api/users/%lld/enable", id);
    json_decref(call(&t, t.admin, "POST", path, NULL, 200));
    json_decref(call(&t, tok, "GET", "/admin/api/keys", NULL, 200));
    json_decref(call(&t, tok, "POST", "/admin/api/auth/logout", NULL, 200));
    json_decref(call(&t, tok, "GET", "/admin/api/keys", NULL, 401));
    tg_it_fixture_stop(&t.f);
}


static void
test_odd_strings_literal(void)
{
    static const char *const odd[] = {
        "o'brien\"; DROP TABLE users; --",
        "\xe2\x80\xae\x65vil\xe2\x80\xac", /* RLO ... PDF */
        "z\xe2\x80\x8bw\xe2\x80\x8dj",     /* zero-width */
        "\xf0\x9f\x98\x80\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
        "back\\slash $1 %s %n {} [] ::jsonb",
        "\xe6\xbc\xa2\xe5\xad\x97 \xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8",
    };
    char name[160], path[64], *s;
    adm_t t;
    json_t *j, *body;
    size_t i;
    long long id;

    adm_start(&t, NULL);
    for (i = 0; i < TG_NELEMS(odd); i++) {
        snprintf(name, sizeof(name), "%s%s", odd[i], t.sfx);
        id = user_create(&t, name, "a-long-password");
        snprintf(path, sizeof(path), "/admin/api/users/%lld", id);
        j = call(&t, t.admin, "GET", path, NULL, 200);
        TG_IT_CHECK_STR(tg_it_json_str(j, "username"), name);
        json_decref(j);
        /* Key names and application reasons are kept as given too. */
        body =
            json_pack("{s:I,s:s}", "user_id", (json_int_t)id, "name", odd[i]);
        s = json_dumps(body, 0);
        j = call(&t, t.admin, "POST", "/admin/api/keys", s, 201);
        TG_IT_CHECK_STR(tg_it_json_str(j, "name"), odd[i]);
        json_decref(j);
        json_decref(body);
        free(s);
    }
    /* The users table survived the injection attempt. */
    j = call(&t, t.admin, "GET", "/admin/api/users?limit=500", NULL, 200);
    TG_IT_CHECK(json_array_size(json_object_get(j, "items")) >=
                TG_NELEMS(odd) + 1);
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


static void
test_bad_input(void)
{
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *field;
    } cases[] = {
        {"POST", "/admin/api/users", "{bad", 400, NULL},
        {"POST", "/admin/api/users", "[1,2]", 400, NULL},
        {"POST", "/admin/api/users", "{\"username\":7}", 400, "username"},
        {"POST", "/admin/api/users", "{}", 400, "username"},
        {"POST", "/admin/api/users", "{\"username\":\"x\",\"role\":\"god\"}",
         400, "role"},
        {"POST", "/admin/api/users", "{\"username\":\"x\",\"extra\":1}", 400,
         "extra"},
        {"POST", "/admin/api/users",
         "{\"username\":\"x\",\"tokens_day\":\"lots\"}", 400, "tokens_day"},
        {"POST", "/admin/api/users",
         "{\"username\":\"x\",\"password\":\"short\"}", 400, "password"},
        {"POST", "/admin/api/keys", "{\"user_id\":\"1\"}", 400, "user_id"},
        {"POST", "/admin/api/keys", "{\"user_id\":1,\"rpm\":-5}", 400, "rpm"},
        {"POST", "/admin/api/keys", "{\"user_id\":1,\"models\":\"a\"}", 400,
         "models"},
        {"POST", "/admin/api/keys",
         "{\"user_id\":1,\"expires_at\":\"tomorrow\"}", 400, "expires_at"},
        {"POST", "/admin/api/applications",
         "{\"kind\":\"quota_increase\",\"quota\":{\"tokens_day\":true}}", 400,
         "quota.tokens_day"},
        {"POST", "/admin/api/endpoints",
         "{\"name\":\"e\",\"url\":\"http://x\",\"style\":\"soap\","
         "\"credential\":\"c\"}",
         400, "style"},
        {"POST", "/admin/api/groups", "{\"name\":\"g\",\"sticky\":\"yes\"}",
         400, "sticky"},
        {"PATCH", "/admin/api/users/1", "{}", 400, NULL},
        {"GET", "/admin/api/users?limit=0", NULL, 400, "limit"},
        {"GET", "/admin/api/users?limit=abc", NULL, 400, "limit"},
        {"GET", "/admin/api/users?sort=name", NULL, 400, "sort"},
        {"GET", "/admin/api/audit?from=yesterday", NULL, 400, "from"},
        {"GET", "/admin/api/users/0", NULL, 404, NULL},
        {"GET", "/admin/api/users/abc", NULL, 404, NULL},
        {"PUT", "/admin/api/users", "{}", 405, NULL},
        {"GET", "/admin/api/nothing", NULL, 404, NULL},
        {"GET", "/admin/api/users/999999999", NULL, 404, "user_id"},
    };
    adm_t t;
    json_t *j, *field;
    size_t i;

    adm_start(&t, NULL);
    for (i = 0; i < TG_NELEMS(cases); i++) {
        j = call(&t, t.admin, cases[i].method, cases[i].path, cases[i].body,
                 cases[i].status);
        TG_IT_CHECK(tg_it_json_str(j, "error.code") != NULL);
        TG_IT_CHECK(tg_it_json_str(j, "error.message") != NULL);
        field = tg_it_json_get(j, "error.field");
        if (cases[i].field != NULL) {
            TG_IT_CHECKF(
                json_is_string(field) &&
                    strcmp(json_string_value(field), cases[i].field) == 0,
                "%s %s: field %s, want %s", cases[i].method, cases[i].path,
                json_is_string(field) ? json_string_value(field) : "null",
                cases[i].field);
        }
        json_decref(j);
    }
    tg_it_fixture_stop(&t.f);
}


static void
test_other_users_key(void)
{
    static const char *const verbs[][2] = {
        {"GET", ""},          {"PATCH", ""},       {"DELETE", ""},
        {"POST", "/disable"}, {"POST", "/enable"}, {"POST", "/rotate"},
    };
    char a[64], b[64], tok_b[128], path[128], body[64];
    long long ua, key;
    adm_t t;
    json_t *j;
    size_t i;

    adm_start(&t, NULL);
    snprintf(a, sizeof(a), "ann%s", t.sfx);
    snprintf(b, sizeof(b), "ben%s", t.sfx);
    ua = user_create(&t, a, "ann-password");
    (void)user_create(&t, b, "ben-password");
    snprintf(body, sizeof(body), "{\"user_id\":%lld,\"name\":\"ann's\"}", ua);
    j = call(&t, t.admin, "POST", "/admin/api/keys", body, 201);
    key = jint(j, "key_id");
    json_decref(j);
    login(&t, b, "ben-password", tok_b, sizeof(tok_b));
    for (i = 0; i < TG_NELEMS(verbs); i++) {
        snprintf(path, sizeof(path), "/admin/api/keys/%lld%s", key,
                 verbs[i][1]);
        j = call(&t, tok_b, verbs[i][0], path,
                 strcmp(verbs[i][0], "PATCH") == 0 ? "{\"name\":\"mine\"}"
                                                   : NULL,
                 404);
        TG_IT_CHECK_STR(tg_it_json_str(j, "error.code"), "not_found");
        json_decref(j);
    }
    /* Nor does ben's list show it, and the key is untouched. */
    j = call(&t, tok_b, "GET", "/admin/api/keys", NULL, 200);
    TG_IT_CHECK_INT(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/keys/%lld", key);
    j = call(&t, t.admin, "GET", path, NULL, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "name"), "ann's");
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "active");
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


static void
test_key_disable_reaches_workers(void)
{
    char name[64], body[128], path[128], key[128], key2[128];
    long long uid, kid;
    uint64_t took;
    adm_t t;
    json_t *j;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "dora%s", t.sfx);
    uid = user_create(&t, name, "dora-password");
    snprintf(body, sizeof(body), "{\"user_id\":%lld}", uid);
    j = call(&t, t.admin, "POST", "/admin/api/keys", body, 201);
    kid = jint(j, "key_id");
    snprintf(key, sizeof(key), "%s", tg_it_json_str(j, "key"));
    TG_IT_CHECK(strncmp(key, "sk-tg-", 6) == 0 && strlen(key) == 49);
    TG_IT_CHECK(strncmp(tg_it_json_str(j, "prefix"), key, 10) == 0);
    json_decref(j);
    /* The key is shown once: never again. */
    snprintf(path, sizeof(path), "/admin/api/keys/%lld", kid);
    j = call(&t, t.admin, "GET", path, NULL, 200);
    TG_IT_CHECK(json_object_get(j, "key") == NULL);
    json_decref(j);
    (void)proxy_wait(&t, key, "claude-sonnet-4-5", 200, 2000);

    snprintf(path, sizeof(path), "/admin/api/keys/%lld/disable", kid);
    json_decref(call(&t, t.admin, "POST", path, NULL, 200));
    took = proxy_wait(&t, key, "claude-sonnet-4-5", 401, 1000);
    tg_it_note("a disabled key was refused %llu ms after the API call",
               (unsigned long long)took);
    TG_IT_CHECKF(took <= 100, "refused only after %llu ms",
                 (unsigned long long)took);

    snprintf(path, sizeof(path), "/admin/api/keys/%lld/enable", kid);
    json_decref(call(&t, t.admin, "POST", path, NULL, 200));
    (void)proxy_wait(&t, key, "claude-sonnet-4-5", 200, 1000);
    snprintf(path, sizeof(path), "/admin/api/keys/%lld/rotate", kid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    snprintf(key2, sizeof(key2), "%s", tg_it_json_str(j, "key"));
    json_decref(j);
    TG_IT_CHECK(strcmp(key, key2) != 0);
    (void)proxy_wait(&t, key2, "claude-sonnet-4-5", 200, 1000);
    (void)proxy_wait(&t, key, "claude-sonnet-4-5", 401, 1000);
    snprintf(path, sizeof(path), "/admin/api/keys/%lld", kid);
    json_decref(call(&t, t.admin, "DELETE", path, NULL, 200));
    json_decref(call(&t, t.admin, "GET", path, NULL, 404));
    (void)proxy_wait(&t, key2, "claude-sonnet-4-5", 401, 1000);
    tg_it_fixture_stop(&t.f);
}


static void
test_approval_applies(void)
{
    char name[64], tok[128], body[256], path[128], key[128];
    long long uid, kid, app;
    adm_t t;
    json_t *j;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "eve%s", t.sfx);
    uid = user_create(&t, name, "eve-password");
    snprintf(body, sizeof(body),
             "{\"user_id\":%lld,\"models\":[\"claude-haiku-*\"]}", uid);
    j = call(&t, t.admin, "POST", "/admin/api/keys", body, 201);
    kid = jint(j, "key_id");
    snprintf(key, sizeof(key), "%s", tg_it_json_str(j, "key"));
    json_decref(j);
    (void)proxy_wait(&t, key, "claude-haiku-4-5", 200, 2000);
    TG_IT_CHECK_INT(proxy_status(&t, key, "claude-sonnet-4-5"), 403);

    login(&t, name, "eve-password", tok, sizeof(tok));
    snprintf(body, sizeof(body),
             "{\"kind\":\"model_access\",\"key_id\":%lld,"
             "\"models\":[\"claude-sonnet-*\"],\"reason\":\"evals\"}",
             kid);
    j = call(&t, tok, "POST", "/admin/api/applications", body, 201);
    app = jint(j, "application_id");
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "pending");
    json_decref(j);
    /* The applicant cannot approve it. */
    snprintf(path, sizeof(path), "/admin/api/applications/%lld/approve", app);
    json_decref(call(&t, tok, "POST", path, "{}", 403));
    j = call(&t, t.admin, "GET", "/admin/api/applications?status=pending", NULL,
             200);
    TG_IT_CHECK(json_array_size(json_object_get(j, "items")) >= 1);
    json_decref(j);
    json_decref(
        call(&t, t.admin, "POST", path, "{\"comment\":\"granted\"}", 200));
    json_decref(call(&t, t.admin, "POST", path, "{}", 409));
    (void)proxy_wait(&t, key, "claude-sonnet-4-5", 200, 1000);
    snprintf(path, sizeof(path), "/admin/api/applications/%lld", app);
    j = call(&t, tok, "GET", path, NULL, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "approved");
    TG_IT_CHECK_STR(tg_it_json_str(j, "comment"), "granted");
    json_decref(j);

    /* A rejection changes nothing and says why. */
    snprintf(body, sizeof(body),
             "{\"kind\":\"quota_increase\",\"quota\":{\"tokens_day\":5}}");
    j = call(&t, tok, "POST", "/admin/api/applications", body, 201);
    app = jint(j, "application_id");
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/applications/%lld/reject", app);
    json_decref(call(&t, t.admin, "POST", path, "{\"comment\":\"no\"}", 200));
    snprintf(path, sizeof(path), "/admin/api/applications/%lld", app);
    j = call(&t, tok, "GET", path, NULL, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "rejected");
    TG_IT_CHECK_STR(tg_it_json_str(j, "comment"), "no");
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


static void
test_new_key_shown_once(void)
{
    char name[64], tok[128], path[128], key[128];
    long long app;
    adm_t t;
    json_t *j;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "fay%s", t.sfx);
    (void)user_create(&t, name, "fay-password");
    login(&t, name, "fay-password", tok, sizeof(tok));
    j = call(&t, tok, "POST", "/admin/api/applications",
             "{\"kind\":\"new_key\",\"key\":{\"name\":\"ci\","
             "\"models\":[\"claude-*\"]},\"reason\":\"ci\"}",
             201);
    app = jint(j, "application_id");
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/applications/%lld/approve", app);
    j = call(&t, t.admin, "POST", path, "{}", 200);
    /* The administrator never sees it. */
    TG_IT_CHECK(json_object_get(j, "key") == NULL);
    TG_IT_CHECK(json_object_get(j, "secret_ciphertext") == NULL);
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/applications/%lld", app);
    j = call(&t, t.admin, "GET", path, NULL, 200);
    TG_IT_CHECK(json_object_get(j, "key") == NULL);
    json_decref(j);
    j = call(&t, tok, "GET", path, NULL, 200);
    TG_IT_CHECK(tg_it_json_str(j, "key") != NULL);
    snprintf(key, sizeof(key), "%s", tg_it_json_str(j, "key"));
    TG_IT_CHECK(json_object_get(j, "secret_ciphertext") == NULL);
    json_decref(j);
    j = call(&t, tok, "GET", path, NULL, 200);
    TG_IT_CHECK(json_object_get(j, "key") == NULL);
    json_decref(j);
    (void)proxy_wait(&t, key, "claude-sonnet-4-5", 200, 2000);
    tg_it_fixture_stop(&t.f);
}


static void
test_code_login_and_lockout(void)
{
    char url[128], file[4096], name[64], body[256], email[96];
    const char *code;
    pid_t hook;
    adm_t t;
    json_t *j, *msg;
    int i, st;

    hook = hook_start(url, sizeof(url), file, sizeof(file));
    adm_start(&t, url);
    snprintf(name, sizeof(name), "gus%s", t.sfx);
    snprintf(email, sizeof(email), "gus%s@example.com", t.sfx);
    snprintf(body, sizeof(body),
             "{\"username\":\"%s\",\"email\":\"%s\",\"role\":\"user\"}", name,
             email);
    json_decref(call(&t, t.admin, "POST", "/admin/api/users", body, 201));

    snprintf(body, sizeof(body), "{\"username\":\"%s\"}", name);
    json_decref(call(&t, NULL, "POST", "/admin/api/auth/code", body, 202));
    msg = hook_last(file, 1);
    TG_IT_CHECK_STR(tg_it_json_str(msg, "username"), name);
    TG_IT_CHECK_STR(tg_it_json_str(msg, "email"), email);
    TG_IT_CHECK(tg_it_json_str(msg, "expires_at") != NULL);
    code = tg_it_json_str(msg, "code");
    TG_IT_CHECK(code != NULL && strlen(code) == 6);
    /* The code never reaches the error log. */
    TG_IT_CHECK(!tg_it_file_wait(t.f.error_log, code, 200));
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"code\":\"%s\"}", name,
             code);
    j = call(&t, NULL, "POST", "/admin/api/auth/code/verify", body, 200);
    TG_IT_CHECK(tg_it_json_str(j, "token") != NULL);
    json_decref(j);
    /* Used once. */
    json_decref(
        call(&t, NULL, "POST", "/admin/api/auth/code/verify", body, 401));
    json_decref(msg);

    /* Unknown users get the same answer and no webhook call. */
    json_decref(call(&t, NULL, "POST", "/admin/api/auth/code",
                     "{\"username\":\"nobody-here\"}", 202));

    /* Repeated bad codes lock code login, even for the right code. */
    snprintf(body, sizeof(body), "{\"username\":\"%s\"}", name);
    json_decref(call(&t, NULL, "POST", "/admin/api/auth/code", body, 202));
    msg = hook_last(file, 2);
    code = tg_it_json_str(msg, "code");
    for (i = 0, st = 401; i < 12 && st == 401; i++) {
        snprintf(body, sizeof(body), "{\"username\":\"%s\",\"code\":\"%06d\"}",
                 name, (atoi(code) + 1 + i) % 1000000);
        st = tg_it_admin_call(t.port, NULL, "POST",
                              "/admin/api/auth/code/verify", body, NULL);
    }
    TG_IT_CHECK_INT(st, 429);
    tg_it_note("code login locked after %d bad codes", i);
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"code\":\"%s\"}", name,
             code);
    json_decref(
        call(&t, NULL, "POST", "/admin/api/auth/code/verify", body, 429));
    json_decref(msg);
    json_decref(call(&t, NULL, "POST", "/admin/api/auth/code/verify",
                     "{\"username\":\"x\",\"code\":\"12a456\"}", 400));
    tg_it_fixture_stop(&t.f);
    kill(hook, SIGKILL);
    waitpid(hook, NULL, 0);
}


static void
test_endpoints(void)
{
    char body[512], path[128], name[64];
    long long eid, bad;
    adm_t t;
    json_t *j, *item;
    size_t i;
    bool live = false;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "api-ep-%s", t.sfx);
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"url\":\"http://127.0.0.1:%d\","
             "\"style\":\"anthropic\",\"credential\":\"" TG_IT_CRED "\","
             "\"models\":[\"claude-haiku-4-5\"]}",
             name, t.f.mock_port);
    j = call(&t, t.admin, "POST", "/admin/api/endpoints", body, 201);
    eid = jint(j, "endpoint_id");
    TG_IT_CHECK(!jhas(j, TG_IT_CRED));
    json_decref(j);
    snprintf(body, sizeof(body),
             "{\"name\":\"%s-bad\",\"url\":\"http://127.0.0.1:%d\","
             "\"style\":\"openai\",\"credential\":\"wrong-credential\"}",
             name, t.f.mock_port);
    j = call(&t, t.admin, "POST", "/admin/api/endpoints", body, 201);
    bad = jint(j, "endpoint_id");
    json_decref(j);

    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/test", eid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECK(json_is_true(json_object_get(j, "ok")));
    TG_IT_CHECK_INT(jint(j, "status"), 200);
    TG_IT_CHECK(json_is_integer(json_object_get(j, "latency_ms")));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/test", bad);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECK(json_is_false(json_object_get(j, "ok")));
    TG_IT_CHECK_INT(jint(j, "status"), 401);
    TG_IT_CHECK(json_is_string(json_object_get(j, "error")));
    json_decref(j);

    /* Lists carry the live state of configured endpoints, never a
     * credential; the config-file endpoints are listed too. */
    j = call(&t, t.admin, "GET", "/admin/api/endpoints?limit=500", NULL, 200);
    TG_IT_CHECK(!jhas(j, TG_IT_CRED));
    TG_IT_CHECK(!jhas(j, "ciphertext"));
    json_array_foreach(json_object_get(j, "items"), i, item)
    {
        live |= json_is_object(json_object_get(item, "live"));
    }
    TG_IT_CHECK(live);
    json_decref(j);

    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/disable", eid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECK_STR(tg_it_json_str(j, "status"), "disabled");
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/enable", eid);
    json_decref(call(&t, t.admin, "POST", path, NULL, 200));
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld", eid);
    j = call(&t, t.admin, "PATCH", path,
             "{\"weight\":5,\"credential\":\"" TG_IT_CRED "\"}", 200);
    TG_IT_CHECK_INT(jint(j, "weight"), 5);
    json_decref(j);
    /* The credential is sealed to the name, which stays for life; the
     * new credential is the one the test uses. */
    snprintf(body, sizeof(body), "{\"name\":\"%s-renamed\"}", name);
    json_decref(call(&t, t.admin, "PATCH", path, body, 422));
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/test", eid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECK(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld", eid);
    json_decref(call(&t, t.admin, "DELETE", path, NULL, 200));
    json_decref(call(&t, t.admin, "GET", path, NULL, 404));

    /* A config-file endpoint is tested with the credential the import
     * sealed, and refuses changes. */
    j = call(&t, t.admin, "GET", "/admin/api/endpoints?limit=500", NULL, 200);
    eid = 0;
    json_array_foreach(json_object_get(j, "items"), i, item)
    {
        const char *mb = tg_it_json_str(item, "managed_by");

        if (eid == 0 && mb != NULL && strcmp(mb, "file") == 0) {
            eid = jint(item, "endpoint_id");
        }
    }
    json_decref(j);
    TG_IT_CHECK(eid != 0);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/test", eid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECKF(json_is_true(json_object_get(j, "ok")),
                 "the file endpoint's test failed: %s",
                 tg_it_json_str(j, "error") ? tg_it_json_str(j, "error") : "?");
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld", eid);
    json_decref(call(&t, t.admin, "PATCH", path, "{\"weight\":2}", 409));
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/disable", eid);
    json_decref(call(&t, t.admin, "POST", path, NULL, 409));
    /* Enabling it is the operator's re-enable in shared memory. */
    snprintf(path, sizeof(path), "/admin/api/endpoints/%lld/enable", eid);
    j = call(&t, t.admin, "POST", path, NULL, 200);
    TG_IT_CHECK(json_is_true(tg_it_json_get(j, "live.available")));
    json_decref(j);
    TG_IT_CHECK(tg_it_file_wait(t.f.error_log, "re-enabled", 2000));
    tg_it_fixture_stop(&t.f);
}


static void
test_groups_tokens_audit(void)
{
    char body[256], path[128], name[64], tok[128];
    long long gid, tid;
    adm_t t;
    json_t *j;

    adm_start(&t, NULL);
    snprintf(name, sizeof(name), "grp-%s", t.sfx);
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"strategy\":\"latency\",\"max_retries\":3}",
             name);
    j = call(&t, t.admin, "POST", "/admin/api/groups", body, 201);
    gid = jint(j, "group_id");
    json_decref(j);
    json_decref(call(&t, t.admin, "POST", "/admin/api/groups", body, 409));
    snprintf(path, sizeof(path), "/admin/api/groups/%lld", gid);
    j = call(&t, t.admin, "PATCH", path, "{\"sticky\":false}", 200);
    TG_IT_CHECK(json_is_false(json_object_get(j, "sticky")));
    json_decref(j);
    json_decref(call(&t, t.admin, "GET", "/admin/api/groups", NULL, 200));
    json_decref(call(&t, t.admin, "DELETE", path, NULL, 200));

    j = call(&t, t.admin, "POST", "/admin/api/tokens",
             "{\"name\":\"ci\",\"ttl_seconds\":3600}", 201);
    snprintf(tok, sizeof(tok), "%s", tg_it_json_str(j, "token"));
    tid = jint(j, "token_id");
    TG_IT_CHECK(strncmp(tok, "tgt_", 4) == 0);
    json_decref(j);
    json_decref(call(&t, tok, "GET", "/admin/api/users", NULL, 200));
    j = call(&t, t.admin, "GET", "/admin/api/tokens", NULL, 200);
    TG_IT_CHECK(!jhas(j, tok));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/api/tokens/%lld", tid);
    json_decref(call(&t, t.admin, "DELETE", path, NULL, 200));
    json_decref(call(&t, tok, "GET", "/admin/api/users", NULL, 401));

    j = call(&t, t.admin, "GET", "/admin/api/audit?action=group.create&limit=5",
             NULL, 200);
    TG_IT_CHECK(json_array_size(json_object_get(j, "items")) >= 1);
    TG_IT_CHECK_STR(tg_it_json_str(j, "items.0.action"), "group.create");
    json_decref(j);
    j = call(&t, t.admin, "GET", "/admin/api/status", NULL, 200);
    TG_IT_CHECK(json_is_array(json_object_get(j, "processes")));
    TG_IT_CHECK(json_is_array(json_object_get(j, "endpoints")));
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


static void
test_bounds_and_leaving_clients(void)
{
    char *big;
    tg_it_resp_t resp;
    tg_it_conn_t c;
    size_t n = (1 << 20) + 16;
    adm_t t;
    json_t *j;
    int i;

    adm_start(&t, NULL);
    big = malloc(n + 1);
    TG_IT_CHECK(big != NULL);
    memset(big, ' ', n);
    big[n] = '\0';
    TG_IT_CHECK_INT(tg_it_admin_call(t.port, t.admin, "POST",
                                     "/admin/api/users", big, NULL),
                    413);
    free(big);
    big = malloc(20000);
    TG_IT_CHECK(big != NULL);
    memset(big, 'a', 19999);
    big[19999] = '\0';
    {
        char *hdrs = malloc(20100);

        TG_IT_CHECK(hdrs != NULL);
        snprintf(hdrs, 20100, "x-filler: %s\r\n", big);
        tg_it_request(t.port, "GET", "/healthz", hdrs, NULL, &resp);
        TG_IT_CHECK_INT(resp.status, 431);
        tg_it_resp_fini(&resp);
        free(hdrs);
    }
    free(big);

    /* A chunked body is read like any other. */
    {
        static const char login_body[] =
            "{\"username\":\"admin\",\"password\":\"" TG_IT_ADMIN_PASSWORD
            "\"}";
        char chunk[128];

        tg_it_conn_open(&c, t.port);
        TG_IT_CHECK(tg_it_conn_send_str(
                        &c,
                        "POST /admin/api/auth/login HTTP/1.1\r\n"
                        "host: x\r\ntransfer-encoding: chunked\r\n\r\n") == 0);
        snprintf(chunk, sizeof(chunk), "a\r\n%.10s\r\n", login_body);
        TG_IT_CHECK(tg_it_conn_send_str(&c, chunk) == 0);
        snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n0\r\n\r\n",
                 sizeof(login_body) - 1 - 10, login_body + 10);
        TG_IT_CHECK(tg_it_conn_send_str(&c, chunk) == 0);
        TG_IT_CHECK(tg_it_conn_read(&c, &resp, 10000) == 0);
        TG_IT_CHECK_INT(resp.status, 200);
        tg_it_resp_fini(&resp);
        tg_it_conn_close(&c);
    }

    /* Clients that leave while their statement runs: admin goes on. */
    for (i = 0; i < 20; i++) {
        char *req = tg_it_request_build(
            "POST", "/admin/api/auth/login", NULL,
            "{\"username\":\"admin\",\"password\":\"" TG_IT_ADMIN_PASSWORD
            "\"}");

        tg_it_conn_open(&c, t.port);
        TG_IT_CHECK(tg_it_conn_send_str(&c, req) == 0);
        tg_it_conn_close(&c);
        free(req);
    }
    j = call(&t, t.admin, "GET", "/admin/api/users", NULL, 200);
    json_decref(j);
    j = call(&t, NULL, "GET", "/healthz", NULL, 200);
    json_decref(j);
    tg_it_fixture_stop(&t.f);
}


const tg_it_test_t tg_it_admin_tests[] = {
    {"admin api answers /healthz without a token and reports the database",
     test_healthz},
    {"admin api refuses every route but healthz and login without a valid "
     "token",
     test_unauthenticated_refused},
    {"admin api logs in with a password, refuses a wrong one and revokes on "
     "logout",
     test_login_logout},
    {"admin api stores hostile and odd unicode strings literally",
     test_odd_strings_literal},
    {"admin api answers bad json and wrong types with 400 naming the field",
     test_bad_input},
    {"admin api answers 404 to a user reaching for another user's key",
     test_other_users_key},
    {"admin api: a disabled key is refused by the workers within 100 ms",
     test_key_disable_reaches_workers},
    {"admin api: an approval applies and the key then works for that model",
     test_approval_applies},
    {"admin api shows an approved new key once to its applicant",
     test_new_key_shown_once},
    {"admin api code login goes through the webhook and locks after bad "
     "codes",
     test_code_login_and_lockout},
    {"admin api endpoints keep credentials sealed and test reports status",
     test_endpoints},
    {"admin api groups, automation tokens, audit and status",
     test_groups_tokens_audit},
    {"admin api bounds heads and bodies and survives clients that leave",
     test_bounds_and_leaving_clients},
    {NULL, NULL},
};
