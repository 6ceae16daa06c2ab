/*
 * tools/tollctl_users.c
 *      tollctl: the users, keys and tokens command groups.
 *
 * NOTES
 *      /admin/api/users, /admin/api/keys and /admin/api/tokens.
 *      A password is never an argument: --password-prompt asks the terminal
 *      without echo, --password-stdin reads one line from stdin.  A new or
 *      rotated key and a new token are shown once (tollctl_cmd.c).
 */
#include "tools/tollctl.h"

#include <string.h>

#define TG_CTL_LIST_OPTS                                                       \
    {"limit",        NULL, TG_CTL_T_INT,                                       \
     TG_CTL_O_QUERY, NULL, "rows per page (server default 50, at most 500)"},  \
    {                                                                          \
        "cursor", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,                    \
            "start after this cursor (from the previous page)"                 \
    }

#define TG_CTL_SET_OPT                                                         \
    {                                                                          \
        "set", NULL, TG_CTL_T_JSON, 0, NULL,                                   \
            "any other field; the value is JSON or text (repeatable)"          \
    }

#define TG_CTL_YES_OPT                                                         \
    {                                                                          \
        "yes", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,                      \
            "do not ask for confirmation"                                      \
    }

#define TG_CTL_END_OPT                                                         \
    {                                                                          \
        NULL, NULL, 0, 0, NULL, NULL                                           \
    }

/* ------------------------------------------------------------- users */

static const tg_ctl_col_t tg_ctl_user_cols[] = {
    {"ID", "user_id|id", TG_CTL_F_INT, 0},
    {"USERNAME", "username", TG_CTL_F_TEXT, 32},
    {"EMAIL", "email", TG_CTL_F_TEXT, 32},
    {"ROLE", "role", TG_CTL_F_TEXT, 0},
    {"STATUS", "status", TG_CTL_F_STATE, 0},
    {"GROUP", "group|group_name", TG_CTL_F_TEXT, 20},
    {"TOKENS/DAY", "tokens_day", TG_CTL_F_COUNT, 0},
    {"TOKENS/MONTH", "tokens_month", TG_CTL_F_COUNT, 0},
    {"SOURCE", "managed_by", TG_CTL_F_TEXT, 0},
    {"CREATED", "created_at", TG_CTL_F_TIME, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_users_list_opts[] = {
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "active|disabled",
     "only users in this status"},
    {"role", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "admin|user",
     "only users of this role"},
    {"group", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only users of this endpoint group"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

#define TG_CTL_USER_FIELDS                                                     \
    {"email", NULL, TG_CTL_T_STR, 0, NULL, "e-mail address"},                  \
        {"role", NULL, TG_CTL_T_ENUM, 0, "admin|user", "role"},                \
        {"group", NULL, TG_CTL_T_STR,                                          \
         0,       NULL, "endpoint group the user's keys use by default"},      \
        {"tokens-day",      "tokens_day", TG_CTL_T_INT,                        \
         TG_CTL_O_NULLABLE, NULL,         "tokens per day"},                   \
        {"tokens-month",    "tokens_month", TG_CTL_T_INT,                      \
         TG_CTL_O_NULLABLE, NULL,           "tokens per month"},               \
        {"cost-day-usd",    "cost_day_usd", TG_CTL_T_MONEY,                    \
         TG_CTL_O_NULLABLE, NULL,           "spend per day in USD"},           \
        {"cost-month-usd",                                                     \
         "cost_month_usd",                                                     \
         TG_CTL_T_MONEY,                                                       \
         TG_CTL_O_NULLABLE,                                                    \
         NULL,                                                                 \
         "spend per month in USD"},                                            \
        {"password-prompt",                                                    \
         NULL,                                                                 \
         TG_CTL_T_FLAG,                                                        \
         TG_CTL_O_LOCAL,                                                       \
         NULL,                                                                 \
         "ask for a password on the terminal (no echo)"},                      \
        {"password-stdin",                                                     \
         NULL,                                                                 \
         TG_CTL_T_FLAG,                                                        \
         TG_CTL_O_LOCAL,                                                       \
         NULL,                                                                 \
         "read the password from the first line of stdin"},                    \
        TG_CTL_SET_OPT

static const tg_ctl_opt_t tg_ctl_users_create_opts[] = {
    {"username", NULL, TG_CTL_T_STR, TG_CTL_O_REQUIRED, NULL, "login name"},
    TG_CTL_USER_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_users_update_opts[] = {
    {"username", NULL, TG_CTL_T_STR, 0, NULL, "login name"},
    TG_CTL_USER_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_yes_opts[] = {
    TG_CTL_YES_OPT,
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_users_rt[TG_CTL_RT_N] =
    TG_CTL_RESOURCE("/admin/api/users", "user", tg_ctl_user_cols, "deleted");


/* users create/update: read the password when asked, then send. */
static int
tg_ctl_users_send(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    bool prompt = tg_ctl_local_flag(a, "password-prompt");
    bool piped = tg_ctl_local_flag(a, "password-stdin");
    char pw[TG_CTL_SECRET_MAX];
    int rc;

    if (prompt && piped) {
        tg_ctl_errorf(ctl, "--password-prompt and --password-stdin exclude "
                           "each other");
        return TG_CTL_EXIT_USAGE;
    }
    if (json_object_get(a->body, "password") != NULL) {
        tg_ctl_errorf(ctl, "a password is never given on the command line; "
                           "use --password-prompt or --password-stdin");
        return TG_CTL_EXIT_USAGE;
    }
    if (prompt || piped) {
        rc = tg_ctl_read_secret(ctl, "password", false, piped, false, pw,
                                sizeof(pw));
        if (rc != TG_CTL_EXIT_OK) {
            return rc;
        }
        if (pw[0] == '\0') {
            tg_ctl_errorf(ctl, "the password is empty");
            return TG_CTL_EXIT_USAGE;
        }
        json_object_set_new(a->body, "password", json_string(pw));
        explicit_bzero(pw, sizeof(pw));
    }
    rc = tg_ctl_run_send(ctl, cmd, a);
    tg_ctl_json_wipe(json_object_get(a->body, "password"));
    return rc;
}


const tg_ctl_cmd_t tg_ctl_users_cmds[] = {
    {"list", "", 0, 0, "list users", NULL, tg_ctl_users_list_opts,
     tg_ctl_run_list, &tg_ctl_users_rt[TG_CTL_RT_LIST]},
    {"get", "ID", 1, 1, "show one user", NULL, NULL, tg_ctl_run_get,
     &tg_ctl_users_rt[TG_CTL_RT_GET]},
    {"create", "", 0, 0, "create a user",
     "A user without a password logs in with a verification code "
     "(tollctl login --code).\nExample: tollctl users create --username alice "
     "--email alice@example.com --tokens-month 5000000",
     tg_ctl_users_create_opts, tg_ctl_users_send,
     &tg_ctl_users_rt[TG_CTL_RT_CREATE]},
    {"update", "ID", 1, 1, "change a user's fields",
     "Only the fields given change; \"none\" removes a limit.",
     tg_ctl_users_update_opts, tg_ctl_users_send,
     &tg_ctl_users_rt[TG_CTL_RT_UPDATE]},
    {"delete", "ID", 1, 1, "delete a user", NULL, tg_ctl_yes_opts,
     tg_ctl_run_send, &tg_ctl_users_rt[TG_CTL_RT_DELETE]},
    {"disable", "ID", 1, 1, "disable a user (their keys stop working)", NULL,
     NULL, tg_ctl_run_send, &tg_ctl_users_rt[TG_CTL_RT_DISABLE]},
    {"enable", "ID", 1, 1, "enable a disabled user", NULL, NULL,
     tg_ctl_run_send, &tg_ctl_users_rt[TG_CTL_RT_ENABLE]},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* -------------------------------------------------------------- keys */

static const tg_ctl_col_t tg_ctl_key_cols[] = {
    {"ID", "key_id|id", TG_CTL_F_INT, 0},
    {"NAME", "name", TG_CTL_F_TEXT, 24},
    {"USER", "user_id", TG_CTL_F_INT, 0},
    {"KEY", "prefix", TG_CTL_F_TEXT, 0},
    {"LAST4", "last4", TG_CTL_F_TEXT, 0},
    {"STATUS", "status", TG_CTL_F_STATE, 0},
    {"MODELS", "models", TG_CTL_F_LIST, 30},
    {"RPM", "rpm", TG_CTL_F_LIMIT, 0},
    {"TPM", "tpm", TG_CTL_F_LIMIT, 0},
    {"GROUP", "group|group_name", TG_CTL_F_TEXT, 16},
    {"EXPIRES", "expires_at", TG_CTL_F_TIME, 0},
    {"LAST USED", "last_used_at", TG_CTL_F_TIME, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_keys_list_opts[] = {
    {"user-id", "user_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL,
     "only this user's keys"},
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "active|disabled",
     "only keys in this status"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

#define TG_CTL_KEY_FIELDS                                                      \
    {"name", NULL, TG_CTL_T_STR, 0, NULL, "a name to recognise the key by"},   \
        {"expires",     "expires_at",                                          \
         TG_CTL_T_TIME, TG_CTL_O_NULLABLE,                                     \
         NULL,          "expiry: 2026-12-31, an RFC 3339 time, or +90d"},      \
        {"models", NULL, TG_CTL_T_LIST,                                        \
         0,        NULL, "allowed model patterns (\"\" = all models)"},        \
        {"rpm",                                                                \
         NULL,                                                                 \
         TG_CTL_T_INT,                                                         \
         0,                                                                    \
         NULL,                                                                 \
         "requests per minute (0 = no "                                        \
         "limit)"},                                                            \
        {"burst",                                                              \
         NULL,                                                                 \
         TG_CTL_T_INT,                                                         \
         0,                                                                    \
         NULL,                                                                 \
         "requests above rpm allowed "                                         \
         "at once"},                                                           \
        {"tpm",                                                                \
         NULL,                                                                 \
         TG_CTL_T_INT,                                                         \
         0,                                                                    \
         NULL,                                                                 \
         "tokens per minute (0 = no "                                          \
         "limit)"},                                                            \
        {"concurrency", NULL,                                                  \
         TG_CTL_T_INT,  0,                                                     \
         NULL,          "requests in flight (0 = no limit)"},                  \
        {"group",           NULL, TG_CTL_T_STR,                                \
         TG_CTL_O_NULLABLE, NULL, "endpoint group (\"none\" = the user's)"},   \
        TG_CTL_SET_OPT

static const tg_ctl_opt_t tg_ctl_keys_create_opts[] = {
    {"user-id", "user_id", TG_CTL_T_ID, 0, NULL,
     "owner (admins; a user's key is their own)"},
    TG_CTL_KEY_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_keys_update_opts[] = {
    TG_CTL_KEY_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_keys_rt[TG_CTL_RT_N] =
    TG_CTL_RESOURCE("/admin/api/keys", "key", tg_ctl_key_cols, "deleted");
/* Unlike the table's create, the answer holds the key, shown once. */
static const tg_ctl_route_t tg_ctl_keys_create_rt = {
    .method = "POST", .path = "/admin/api/keys", .secret = true};
static const tg_ctl_route_t tg_ctl_keys_rotate_rt = {
    .method = "POST",
    .path = "/admin/api/keys/{id}/rotate",
    .noun = "key",
    .confirm = true,
    .secret = true};

const tg_ctl_cmd_t tg_ctl_keys_cmds[] = {
    {"list", "", 0, 0, "list API keys (prefix and last 4 only)", NULL,
     tg_ctl_keys_list_opts, tg_ctl_run_list, &tg_ctl_keys_rt[TG_CTL_RT_LIST]},
    {"get", "ID", 1, 1, "show one key", NULL, NULL, tg_ctl_run_get,
     &tg_ctl_keys_rt[TG_CTL_RT_GET]},
    {"create", "", 0, 0, "create a key; the key is printed once",
     "The key itself is printed on stdout once and cannot be shown again.\n"
     "Example: tollctl keys create --user-id 7 --name ci --models "
     "'claude-sonnet-*' --rpm 60 --expires +90d",
     tg_ctl_keys_create_opts, tg_ctl_run_send, &tg_ctl_keys_create_rt},
    {"update", "ID", 1, 1, "change a key's fields",
     "Only the fields given change.", tg_ctl_keys_update_opts, tg_ctl_run_send,
     &tg_ctl_keys_rt[TG_CTL_RT_UPDATE]},
    {"delete", "ID", 1, 1, "delete a key", NULL, tg_ctl_yes_opts,
     tg_ctl_run_send, &tg_ctl_keys_rt[TG_CTL_RT_DELETE]},
    {"disable", "ID", 1, 1, "disable a key", NULL, NULL, tg_ctl_run_send,
     &tg_ctl_keys_rt[TG_CTL_RT_DISABLE]},
    {"enable", "ID", 1, 1, "enable a disabled key", NULL, NULL, tg_ctl_run_send,
     &tg_ctl_keys_rt[TG_CTL_RT_ENABLE]},
    {"rotate", "ID", 1, 1,
     "replace a key's secret; the new key is printed "
     "once",
     "The old key stops working at once.", tg_ctl_yes_opts, tg_ctl_run_send,
     &tg_ctl_keys_rotate_rt},
    {"export", "", 0, 0, "export keys to a file (CSV or JSON)", NULL,
     tg_ctl_export_opts, tg_ctl_run_export, NULL},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ tokens */

static const tg_ctl_col_t tg_ctl_token_cols[] = {
    {"ID", "session_id|token_id|id", TG_CTL_F_INT, 0},
    {"NAME", "name", TG_CTL_F_TEXT, 32},
    {"USER", "user_id", TG_CTL_F_INT, 0},
    {"CREATED", "created_at", TG_CTL_F_TIME, 0},
    {"EXPIRES", "expires_at", TG_CTL_F_TIME, 0},
    {"LAST USED", "last_used_at", TG_CTL_F_TIME, 0},
    {"REVOKED", "revoked_at", TG_CTL_F_TIME, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_tokens_list_opts[] = {
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_tokens_create_opts[] = {
    {"name", NULL, TG_CTL_T_STR, TG_CTL_O_REQUIRED, NULL,
     "what the token is for"},
    {"ttl", "ttl_seconds", TG_CTL_T_DURATION, 0, NULL,
     "lifetime, e.g. 90d (default: no expiry)"},
    TG_CTL_SET_OPT,
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_tokens_list_rt = {
    .method = "GET", .path = "/admin/api/tokens", .cols = tg_ctl_token_cols};
static const tg_ctl_route_t tg_ctl_tokens_create_rt = {
    .method = "POST", .path = "/admin/api/tokens", .secret = true};
static const tg_ctl_route_t tg_ctl_tokens_delete_rt = {
    .method = "DELETE",
    .path = "/admin/api/tokens/{id}",
    .done = "revoked token {id}",
    .noun = "token",
    .confirm = true};

const tg_ctl_cmd_t tg_ctl_tokens_cmds[] = {
    {"list", "", 0, 0, "list automation tokens", NULL, tg_ctl_tokens_list_opts,
     tg_ctl_run_list, &tg_ctl_tokens_list_rt},
    {"create", "", 0, 0, "create an automation token; printed once",
     "Admins only.  Use it as TOLLGATE_TOKEN in scripts.",
     tg_ctl_tokens_create_opts, tg_ctl_run_send, &tg_ctl_tokens_create_rt},
    {"delete", "ID", 1, 1, "revoke a token", NULL, tg_ctl_yes_opts,
     tg_ctl_run_send, &tg_ctl_tokens_delete_rt},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
