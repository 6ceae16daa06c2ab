/*
 * tools/tollctl_misc.c
 *      tollctl: login, logout, audit, status, usage, prices and export.
 *
 * NOTES
 *      login sends the password (or a verification code) once and keeps
 *      only the session token, in the credentials file (tollctl_http.c).
 *      With --json it prints the server's answer without the token.
 *
 *      usage, prices and the keys export come with later server versions;
 *      a server without them answers 404 and tollctl says so in one line.
 *
 *      export writes to a temporary file beside the target and renames it
 *      when the whole body arrived, so FILE is either complete or absent.
 */
#include "tools/tollctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TG_CTL_END_OPT                                                         \
    {                                                                          \
        NULL, NULL, 0, 0, NULL, NULL                                           \
    }
#define TG_CTL_LIST_OPTS                                                       \
    {"limit",        NULL, TG_CTL_T_INT,                                       \
     TG_CTL_O_QUERY, NULL, "rows per page (server default 50, at most 500)"},  \
    {                                                                          \
        "cursor", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,                    \
            "start after this cursor (from the previous page)"                 \
    }

/* ------------------------------------------------------------- login */

static const tg_ctl_opt_t tg_ctl_login_opts[] = {
    {"password-stdin", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,
     "read the password from the first line of stdin"},
    {"code", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,
     "log in with a verification code sent to you instead of a password"},
    {"code-stdin", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,
     "with --code: read the code from stdin instead of the terminal"},
    TG_CTL_END_OPT,
};


/* The username: the argument, or asked on the terminal. */
static int
tg_ctl_login_user(tg_ctl_t *ctl, tg_ctl_args_t *a, char *buf, size_t len)
{
    int rc;

    if (a->npos > 0) {
        snprintf(buf, len, "%s", a->pos[0]);
    } else if (!ctl->tty_in) {
        tg_ctl_errorf(ctl, "give the username: tollctl login USERNAME");
        return TG_CTL_EXIT_USAGE;
    } else {
        rc = tg_ctl_read_secret(ctl, "username", true, false, false, buf, len);
        if (rc != TG_CTL_EXIT_OK) {
            return rc;
        }
    }
    if (buf[0] == '\0') {
        tg_ctl_errorf(ctl, "the username is empty");
        return TG_CTL_EXIT_USAGE;
    }
    return TG_CTL_EXIT_OK;
}


/* --code: ask the server to send a code, then read it and verify it. */
static int
tg_ctl_login_code(tg_ctl_t *ctl, tg_ctl_args_t *a, const char *user,
                  json_t **out)
{
    json_t *body = json_pack("{s:s}", "username", user), *sent = NULL;
    char code[64];
    int rc;

    rc = tg_ctl_call(ctl, "POST", "/admin/api/auth/code", NULL, body, false,
                     &sent);
    json_decref(body);
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    if (!ctl->json || ctl->tty_in) {
        char when[96] = "";
        const char *exp =
            json_string_value(json_object_get(sent, "expires_at"));

        if (exp != NULL) {
            tg_ctl_fmt_time(when, sizeof(when), exp, ctl->now, false);
        }
        fprintf(ctl->err, "A verification code was sent%s%s.\n",
                when[0] ? "; it expires " : "", when);
    }
    json_decref(sent);
    rc = tg_ctl_read_secret(ctl, "code", false,
                            tg_ctl_local_flag(a, "code-stdin"), true, code,
                            sizeof(code));
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    body = json_pack("{s:s, s:s}", "username", user, "code", code);
    explicit_bzero(code, sizeof(code));
    rc = tg_ctl_call(ctl, "POST", "/admin/api/auth/code/verify", NULL, body,
                     false, out);
    tg_ctl_json_wipe(body);
    json_decref(body);
    return rc;
}


/* Password login. */
static int
tg_ctl_login_password(tg_ctl_t *ctl, tg_ctl_args_t *a, const char *user,
                      json_t **out)
{
    char pw[TG_CTL_SECRET_MAX];
    json_t *body;
    int rc;

    rc = tg_ctl_read_secret(ctl, "password", false,
                            tg_ctl_local_flag(a, "password-stdin"), false, pw,
                            sizeof(pw));
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    body = json_pack("{s:s, s:s}", "username", user, "password", pw);
    explicit_bzero(pw, sizeof(pw));
    if (body == NULL) {
        tg_ctl_errorf(ctl, "the username or password is not valid UTF-8");
        return TG_CTL_EXIT_USAGE;
    }
    rc = tg_ctl_call(ctl, "POST", "/admin/api/auth/login", NULL, body, false,
                     out);
    tg_ctl_json_wipe(body);
    json_decref(body);
    return rc;
}


/* Store the session of answer <res> and say who is logged in. */
static int
tg_ctl_login_store(tg_ctl_t *ctl, json_t *res, const char *user)
{
    json_t *tok = json_object_get(res, "token"),
           *u = json_object_get(res, "user");
    const char *exp = json_string_value(json_object_get(res, "expires_at"));
    const char *role = json_string_value(json_object_get(u, "role"));
    char when[96] = "never", name[128];
    int rc;

    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        tg_ctl_errorf(ctl, "POST login: the answer holds no token");
        return TG_CTL_EXIT_FAILED;
    }
    rc = tg_ctl_cred_write(ctl, ctl->url, json_string_value(tok), u, exp);
    tg_ctl_json_wipe(tok);
    json_object_del(res, "token");
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    if (ctl->json) {
        json_object_set_new(res, "credentials", json_string(ctl->cred_path));
        tg_ctl_print_json(ctl, res);
        return TG_CTL_EXIT_OK;
    }
    if (exp != NULL) {
        tg_ctl_fmt_time(when, sizeof(when), exp, ctl->now, true);
    }
    tg_ctl_clean(name, sizeof(name), user, 64);
    fprintf(ctl->out, "Logged in to %s as %s%s%s%s; the session expires %s.\n",
            ctl->url, name, role ? " (" : "", role ? role : "", role ? ")" : "",
            when);
    fprintf(ctl->out, "Session stored in %s.\n", ctl->cred_path);
    return TG_CTL_EXIT_OK;
}


/* login [USERNAME] */
static int
tg_ctl_login(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    char user[256];
    json_t *res = NULL;
    int rc;

    (void)cmd;
    if (tg_ctl_local_flag(a, "password-stdin") &&
        tg_ctl_local_flag(a, "code")) {
        tg_ctl_errorf(ctl, "--password-stdin and --code exclude each other");
        return TG_CTL_EXIT_USAGE;
    }
    if (tg_ctl_local_flag(a, "code-stdin") && !tg_ctl_local_flag(a, "code")) {
        tg_ctl_errorf(ctl, "--code-stdin goes with --code");
        return TG_CTL_EXIT_USAGE;
    }
    rc = tg_ctl_login_user(ctl, a, user, sizeof(user));
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    /* An old session is not sent along with a login. */
    explicit_bzero(ctl->token, sizeof(ctl->token));
    if (tg_ctl_local_flag(a, "code")) {
        rc = tg_ctl_login_code(ctl, a, user, &res);
    } else {
        rc = tg_ctl_login_password(ctl, a, user, &res);
    }
    if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_login_store(ctl, res, user);
    }
    if (res != NULL) {
        tg_ctl_json_wipe(json_object_get(res, "token"));
    }
    json_decref(res);
    return rc;
}


const tg_ctl_cmd_t tg_ctl_login_cmds[] = {
    {"login", "[USERNAME]", 0, 1, "log in and store a session token",
     "Asks for the password on the terminal (no echo), or reads it from "
     "stdin with --password-stdin.  With --code, the server sends a "
     "verification code (by its code webhook) and tollctl asks for it.\n"
     "The session token goes to $XDG_CONFIG_HOME/tollgate/credentials (or "
     "~/.config/tollgate/credentials), mode 0600, with the URL; later "
     "commands use it for that URL.  TOLLGATE_TOKEN overrides it.",
     tg_ctl_login_opts, tg_ctl_login, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ logout */


/* logout: revoke the session on the server and forget it here. */
static int
tg_ctl_logout(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_t *res = NULL;
    tg_ctl_resp_t r;
    bool from_file = strcmp(ctl->token_from, ctl->cred_path) == 0;
    int rc = TG_CTL_EXIT_OK;

    (void)cmd;
    (void)a;
    if (ctl->token[0] == '\0') {
        fprintf(ctl->out, "Not logged in to %s.\n", ctl->url);
        return TG_CTL_EXIT_OK;
    }
    if (!from_file && strncmp(ctl->token, "tgt_", 4) == 0) {
        /* An automation token is revoked on purpose, not by logging out. */
        tg_ctl_errorf(ctl, "TOLLGATE_TOKEN holds an automation token; unset "
                           "it, or revoke it with `tollctl tokens delete`");
        return TG_CTL_EXIT_USAGE;
    }
    rc = tg_ctl_request(ctl, "POST", "/admin/api/auth/logout", NULL, NULL, &r,
                        NULL, false);
    if (rc == TG_CTL_EXIT_OK && r.status != 401 &&
        (r.status < 200 || r.status >= 300)) {
        tg_ctl_error_response(ctl, "POST /admin/api/auth/logout", r.status,
                              r.json, r.raw, r.len);
        rc = TG_CTL_EXIT_FAILED;
    }
    tg_ctl_resp_fini(&r);
    json_decref(res);
    /* The local copy goes whatever the server said: a session the
     * server no longer knows is useless, and one it could not revoke
     * should at least not stay on disk. */
    if (from_file && tg_ctl_cred_remove(ctl) != TG_CTL_EXIT_OK) {
        rc = TG_CTL_EXIT_FAILED;
    }
    if (rc == TG_CTL_EXIT_OK) {
        fprintf(ctl->out, "Logged out of %s%s.\n", ctl->url,
                from_file ? "" : " (the token came from TOLLGATE_TOKEN)");
    }
    return rc;
}


const tg_ctl_cmd_t tg_ctl_logout_cmds[] = {
    {"logout", "", 0, 0, "end the session and remove the stored token", NULL,
     NULL, tg_ctl_logout, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------- audit */

static const tg_ctl_col_t tg_ctl_audit_cols[] = {
    {"ID", "audit_id|id", TG_CTL_F_INT, 0},
    {"AT", "at", TG_CTL_F_TIME, 0},
    {"ACTOR", "actor_name|actor_user_id|actor", TG_CTL_F_TEXT, 16},
    {"ACTION", "action", TG_CTL_F_TEXT, 0},
    {"TARGET", "target_type", TG_CTL_F_TEXT, 0},
    {"TARGET ID", "target_id", TG_CTL_F_TEXT, 0},
    {"ADDRESS", "client_addr|addr", TG_CTL_F_TEXT, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_audit_opts[] = {
    {"actor", NULL, TG_CTL_T_ID, TG_CTL_O_QUERY, NULL,
     "only changes by this user id"},
    {"action", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only this action (user.create, key.disable, ...)"},
    {"target-type", "target_type", TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only this kind of target (user, key, ...)"},
    {"target-id", "target_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL,
     "only this target id"},
    {"from", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL,
     "from this time (2026-12-01, -24h)"},
    {"to", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL, "up to this time"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_audit_rt = {
    .method = "GET", .path = "/admin/api/audit", .cols = tg_ctl_audit_cols};

const tg_ctl_cmd_t tg_ctl_audit_cmds[] = {
    {"audit", "", 0, 0, "read the audit log (newest first)",
     "Example: tollctl audit --action key.disable --from -7d",
     tg_ctl_audit_opts, tg_ctl_run_list, &tg_ctl_audit_rt},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ status */


/* GET <path> into <*out>; a 404 falls back to <old> when not NULL. */
static int
tg_ctl_status_get(tg_ctl_t *ctl, const char *path, const char *old,
                  json_t **out)
{
    tg_ctl_resp_t r;
    int rc;

    rc = tg_ctl_request(ctl, "GET", path, NULL, NULL, &r, NULL, false);
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    if (r.status == 404 && old != NULL) {
        tg_ctl_resp_fini(&r);
        return tg_ctl_call(ctl, "GET", old, NULL, NULL, false, out);
    }
    tg_ctl_resp_fini(&r);
    return tg_ctl_call(ctl, "GET", path, NULL, NULL, false, out);
}


/* status: /healthz and the server status. */
static int
tg_ctl_status(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_t *hz = NULL, *st = NULL, *o;
    int rc;

    (void)cmd;
    (void)a;
    rc = tg_ctl_call(ctl, "GET", "/healthz", NULL, NULL, false, &hz);
    if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_status_get(ctl, "/admin/api/status", "/status", &st);
    }
    if (rc == TG_CTL_EXIT_OK) {
        if (ctl->json) {
            o = json_pack("{s:O, s:O}", "healthz", hz, "status", st);
            tg_ctl_print_json(ctl, o);
            json_decref(o);
        } else {
            o = json_pack("{s:s, s:O}", "server", ctl->url, "healthz", hz);
            /* The endpoint list is `tollctl health status`'s table. */
            json_object_del(st, "endpoints");
            if (o != NULL && json_is_object(st)) {
                json_object_update_missing(o, st);
            }
            tg_ctl_show(ctl, o != NULL ? o : st);
            json_decref(o);
        }
    }
    json_decref(hz);
    json_decref(st);
    return rc;
}


const tg_ctl_cmd_t tg_ctl_status_cmds[] = {
    {"status", "", 0, 0, "server status: health, database, counters",
     "Reads GET /healthz and GET /admin/api/status (GET /status on servers "
     "without the admin API).  `tollctl health status` lists endpoints.",
     NULL, tg_ctl_status, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------ usage, prices */

static const tg_ctl_opt_t tg_ctl_usage_opts[] = {
    {"from", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL,
     "from this time (2026-12-01, -7d)"},
    {"to", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL, "up to this time"},
    {"user-id", "user_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL, "one user"},
    {"key-id", "key_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL, "one key"},
    {"model", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL, "one model"},
    {"endpoint", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL, "one endpoint"},
    {"group-by", "group_by", TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "sum by these, comma-separated (user,key,model,endpoint,hour,day)"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_prices_opts[] = {
    {"model", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "the prices in force for this model"},
    {"all", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "true|false",
     "true: past and future prices too"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

/* The fields of a price; "set" requires every rate, "update" none. */
#define TG_CTL_PRICE_RATES(req)                                                 \
    {"input",        "input_usd_per_mtok",                                      \
     TG_CTL_T_MONEY, req,                                                       \
     NULL,           "USD per million input tokens (not from cache)"},          \
        {"output", "output_usd_per_mtok",          TG_CTL_T_MONEY, req,         \
         NULL,     "USD per million output tokens"},                            \
        {"cache-read", "cache_read_usd_per_mtok",          TG_CTL_T_MONEY, req, \
         NULL,         "USD per million cache-read tokens"},                    \
        {"cache-write-5m",                                                      \
         "cache_write_5m_usd_per_mtok",                                         \
         TG_CTL_T_MONEY,                                                        \
         req,                                                                   \
         NULL,                                                                  \
         "USD per million 5-minute cache-write tokens"},                        \
        {"cache-write-1h",                                                      \
         "cache_write_1h_usd_per_mtok",                                         \
         TG_CTL_T_MONEY,                                                        \
         req,                                                                   \
         NULL,                                                                  \
         "USD per million 1-hour cache-write tokens"},                          \
        {"effective-from",                                                      \
         "effective_from",                                                      \
         TG_CTL_T_TIME,                                                         \
         TG_CTL_O_NULLABLE,                                                     \
         NULL,                                                                  \
         "in force from this time (default: always)"},                          \
    {                                                                           \
        "comments", NULL, TG_CTL_T_STR, 0, NULL, "where the price comes from"   \
    }

static const tg_ctl_opt_t tg_ctl_prices_set_opts[] = {
    {"pattern", NULL, TG_CTL_T_STR, TG_CTL_O_REQUIRED, NULL,
     "model pattern, '*' matches any run (claude-sonnet-4-*)"},
    TG_CTL_PRICE_RATES(TG_CTL_O_REQUIRED),
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_prices_update_opts[] = {
    {"pattern", NULL, TG_CTL_T_STR, 0, NULL, "model pattern"},
    TG_CTL_PRICE_RATES(0),
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_prices_yes_opts[] = {
    {"yes", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,
     "do not ask for confirmation"},
    TG_CTL_END_OPT,
};

static const tg_ctl_col_t tg_ctl_price_cols[] = {
    {"ID", "price_id", TG_CTL_F_INT, 0},
    {"PATTERN", "pattern", TG_CTL_F_TEXT, 32},
    {"INPUT", "input_usd_per_mtok", TG_CTL_F_TEXT, 0},
    {"OUTPUT", "output_usd_per_mtok", TG_CTL_F_TEXT, 0},
    {"CACHE READ", "cache_read_usd_per_mtok", TG_CTL_F_TEXT, 0},
    {"WRITE 5M", "cache_write_5m_usd_per_mtok", TG_CTL_F_TEXT, 0},
    {"WRITE 1H", "cache_write_1h_usd_per_mtok", TG_CTL_F_TEXT, 0},
    {"FROM", "effective_from", TG_CTL_F_TIME, 0},
    {NULL, NULL, 0, 0},
};

/* The grouping columns come first (tg_ctl_usage_run keeps those asked
 * for), then the sums. */
#define TG_CTL_USAGE_GROUPS 7u
static const tg_ctl_col_t tg_ctl_usage_cols[] = {
    {"HOUR", "hour", TG_CTL_F_TEXT, 0},
    {"DAY", "day", TG_CTL_F_TEXT, 0},
    {"MONTH", "month", TG_CTL_F_TEXT, 0},
    {"USER", "username|user_id", TG_CTL_F_ID, 24},
    {"KEY", "key_id", TG_CTL_F_INT, 0},
    {"MODEL", "model", TG_CTL_F_TEXT, 32},
    {"ENDPOINT", "endpoint", TG_CTL_F_TEXT, 24},
    {"REQUESTS", "requests", TG_CTL_F_COUNT, 0},
    {"ERRORS", "errors", TG_CTL_F_COUNT, 0},
    {"INPUT", "input_tokens", TG_CTL_F_COUNT, 0},
    {"OUTPUT", "output_tokens", TG_CTL_F_COUNT, 0},
    {"CACHE READ", "cache_read_tokens", TG_CTL_F_COUNT, 0},
    {"WRITE 5M", "cache_write_5m_tokens", TG_CTL_F_COUNT, 0},
    {"WRITE 1H", "cache_write_1h_tokens", TG_CTL_F_COUNT, 0},
    {"REASONING", "reasoning_tokens", TG_CTL_F_COUNT, 0},
    {"COST USD", "cost_usd", TG_CTL_F_TEXT, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_route_t tg_ctl_usage_rt = {
    .method = "GET", .path = "/admin/api/usage", .optional = true};
static const tg_ctl_route_t tg_ctl_prices_rt = {.method = "GET",
                                                .path = "/admin/api/prices",
                                                .cols = tg_ctl_price_cols,
                                                .optional = true};
static const tg_ctl_route_t tg_ctl_prices_get_rt = {
    .method = "GET", .path = "/admin/api/prices/{id}"};
static const tg_ctl_route_t tg_ctl_prices_set_rt = {
    .method = "POST", .path = "/admin/api/prices"};
static const tg_ctl_route_t tg_ctl_prices_update_rt = {
    .method = "PATCH", .path = "/admin/api/prices/{id}"};
static const tg_ctl_route_t tg_ctl_prices_delete_rt = {
    .method = "DELETE",
    .path = "/admin/api/prices/{id}",
    .done = "deleted price {id}",
    .noun = "price",
    .confirm = true};

/* usage: the table shows the grouping columns of --group-by, in the
 * order of the table above, then every sum. */
static int
tg_ctl_usage_run(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    static const char *const words[TG_CTL_USAGE_GROUPS] = {
        "hour", "day", "month", "user", "key", "model", "endpoint"};
    tg_ctl_col_t cols[sizeof(tg_ctl_usage_cols) / sizeof(tg_ctl_col_t)];
    const char *by = json_string_value(json_object_get(a->query, "group_by"));
    tg_ctl_route_t rt = *cmd->route;
    tg_ctl_cmd_t c = *cmd;
    size_t i, n = 0, len;
    const char *p;

    for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        bool keep = i >= TG_CTL_USAGE_GROUPS;

        for (p = by; !keep && p != NULL && *p != '\0';
             p += len + (p[len] != 0)) {
            len = strcspn(p, ",");
            keep = len == strlen(words[i]) && strncmp(p, words[i], len) == 0;
        }
        if (keep) {
            cols[n++] = tg_ctl_usage_cols[i];
        }
    }
    rt.cols = cols;
    c.route = &rt;
    return tg_ctl_run_list(ctl, &c, a);
}


const tg_ctl_cmd_t tg_ctl_usage_cmds[] = {
    {"usage", "", 0, 0, "token and cost usage, summed as asked",
     "Example: tollctl usage --from -7d --group-by user,model",
     tg_ctl_usage_opts, tg_ctl_usage_run, &tg_ctl_usage_rt},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

const tg_ctl_cmd_t tg_ctl_prices_cmds[] = {
    {"list", "", 0, 0, "list the model prices in force",
     "Amounts are USD per million tokens.  The price of a model is the "
     "most specific pattern in force (see docs/admin-api.md).",
     tg_ctl_prices_opts, tg_ctl_run_list, &tg_ctl_prices_rt},
    {"get", "ID", 1, 1, "show one price", NULL, NULL, tg_ctl_run_get,
     &tg_ctl_prices_get_rt},
    {"set", "", 0, 0, "add a price for a model pattern",
     "Example: tollctl prices set --pattern 'claude-sonnet-4-*' --input 3 "
     "--output 15 --cache-read 0.30 --cache-write-5m 3.75 "
     "--cache-write-1h 6 --effective-from 2027-01-01",
     tg_ctl_prices_set_opts, tg_ctl_run_send, &tg_ctl_prices_set_rt},
    {"update", "ID", 1, 1, "change a price's fields",
     "Only the fields given change.", tg_ctl_prices_update_opts,
     tg_ctl_run_send, &tg_ctl_prices_update_rt},
    {"delete", "ID", 1, 1, "delete a price", NULL, tg_ctl_prices_yes_opts,
     tg_ctl_run_send, &tg_ctl_prices_delete_rt},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ export */

const tg_ctl_opt_t tg_ctl_export_opts[] = {
    {"output", NULL, TG_CTL_T_STR, TG_CTL_O_LOCAL | TG_CTL_O_REQUIRED, NULL,
     "write to this file (\"-\" = stdout); -o FILE"},
    {"format", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "csv|json",
     "file format (default csv)"},
    {"mask", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "email",
     "mask owners' e-mail addresses"},
    {"user-id", "user_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL,
     "only this user's keys"},
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "active|disabled",
     "only keys in this status"},
    {"group", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only keys of this group"},
    TG_CTL_END_OPT,
};


/* Print the error of a failed export answer <r>. */
static void
tg_ctl_export_error(tg_ctl_t *ctl, const char *what, const tg_ctl_resp_t *r)
{
    const json_t *e = json_object_get(r->json, "error");
    const char *field = json_string_value(json_object_get(e, "field"));

    /* A server without the export route reads "export" as a key id. */
    if (r->status == 404 ||
        (r->status == 400 && field != NULL && strcmp(field, "id") == 0)) {
        tg_ctl_errorf(ctl,
                      "this server has no such route (%ld %s); the keys "
                      "export comes with a newer Tollgate",
                      r->status, what);
    } else if (r->status == 401) {
        tg_ctl_errorf(ctl,
                      "%s: 401 unauthorized; run `tollctl login` or set "
                      "TOLLGATE_TOKEN",
                      what);
    } else {
        tg_ctl_error_response(ctl, what, r->status, r->json, r->raw, r->len);
    }
}


/* Open the output: stdout, or a temporary file beside <out> in <tmp>. */
static FILE *
tg_ctl_export_open(tg_ctl_t *ctl, const char *out, char *tmp, size_t len)
{
    FILE *f;
    int fd;

    if (strcmp(out, "-") == 0) {
        tmp[0] = '\0';
        return ctl->out;
    }
    if ((size_t)snprintf(tmp, len, "%s.tmp.XXXXXX", out) >= len) {
        tg_ctl_errorf(ctl, "the file name is too long");
        return NULL;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        tg_ctl_errorf(ctl, "mkstemp(%s) failed (%s)", tmp, strerror(errno));
        return NULL;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        tg_ctl_errorf(ctl, "fdopen(%s) failed (%s)", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    }
    return f;
}


/* Finish the output file: flush, sync and rename into place. */
static int
tg_ctl_export_close(tg_ctl_t *ctl, FILE *f, const char *tmp, const char *out,
                    bool ok)
{
    int rc = ok ? TG_CTL_EXIT_OK : TG_CTL_EXIT_FAILED;

    if (tmp[0] == '\0') {
        return fflush(f) == 0 ? rc : TG_CTL_EXIT_FAILED;
    }
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
        tg_ctl_errorf(ctl, "writing %s failed (%s)", tmp, strerror(errno));
        rc = TG_CTL_EXIT_FAILED;
    }
    if (fclose(f) != 0 && rc == TG_CTL_EXIT_OK) {
        tg_ctl_errorf(ctl, "closing %s failed (%s)", tmp, strerror(errno));
        rc = TG_CTL_EXIT_FAILED;
    }
    if (rc == TG_CTL_EXIT_OK && rename(tmp, out) != 0) {
        tg_ctl_errorf(ctl, "rename(%s, %s) failed (%s)", tmp, out,
                      strerror(errno));
        rc = TG_CTL_EXIT_FAILED;
    }
    if (rc != TG_CTL_EXIT_OK) {
        unlink(tmp);
    }
    return rc;
}


/* See tollctl.h. */
int
tg_ctl_run_export(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    static const char path[] = "/admin/api/keys/export";
    const char *out = tg_ctl_local_str(a, "output"), *fmt;
    char tmp[4200], what[64];
    tg_ctl_resp_t r;
    FILE *f;
    bool ok;
    int rc;

    (void)cmd;
    snprintf(what, sizeof(what), "GET %s", path);
    fmt = json_string_value(json_object_get(a->query, "format"));
    ctl->csv_rows = fmt == NULL || strcmp(fmt, "csv") == 0;
    f = tg_ctl_export_open(ctl, out, tmp, sizeof(tmp));
    if (f == NULL) {
        return TG_CTL_EXIT_FAILED;
    }
    rc = tg_ctl_request(ctl, "GET", path, a->query, NULL, &r, f,
                        tmp[0] != '\0' && isatty(STDERR_FILENO) == 1);
    ok = rc == TG_CTL_EXIT_OK && r.status >= 200 && r.status < 300;
    if (rc == TG_CTL_EXIT_OK && !ok) {
        tg_ctl_export_error(ctl, what, &r);
    }
    rc = tg_ctl_export_close(ctl, f, tmp, out, ok);
    if (rc == TG_CTL_EXIT_OK && tmp[0] != '\0' && !ctl->json) {
        fprintf(ctl->err, "wrote %s\n", out);
    }
    tg_ctl_resp_fini(&r);
    return rc;
}


const tg_ctl_cmd_t tg_ctl_export_cmds[] = {
    {"export", "", 0, 0, "export API keys to a file (same as keys export)",
     "Streams GET /admin/api/keys/export into FILE, written atomically; "
     "keys appear as prefix and last 4 only.\nExample: tollctl export "
     "--format csv --mask email -o keys.csv",
     tg_ctl_export_opts, tg_ctl_run_export, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
