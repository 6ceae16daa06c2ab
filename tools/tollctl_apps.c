/*
 * tools/tollctl_apps.c
 *      tollctl: the apps (applications), endpoints, groups and health
 *      command groups.
 *
 * NOTES
 *      apps apply builds one of the three application bodies
 *      ({"kind":"model_access","key_id","models"}, {"kind":
 *      "quota_increase","quota":{...}}, {"kind":"new_key","key":{...}})
 *      from flat options and refuses options that do not belong to the
 *      kind.  An endpoint credential is never an argument: it comes from
 *      stdin (--credential-stdin) or an environment variable
 *      (--credential-env NAME).
 *
 *      health status reads GET /admin/api/endpoints (the live state from
 *      shm is part of each endpoint) and falls back to the older
 *      unauthenticated GET /endpoints of servers without the API.
 */
#include "tools/tollctl.h"

#include <stdlib.h>
#include <string.h>

#define TG_CTL_END_OPT                                                         \
    {                                                                          \
        NULL, NULL, 0, 0, NULL, NULL                                           \
    }
#define TG_CTL_NO_CMD                                                          \
    {                                                                          \
        NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL                         \
    }
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

static const tg_ctl_opt_t tg_ctl_yes_opts[] = {
    {"yes", NULL, TG_CTL_T_FLAG, TG_CTL_O_LOCAL, NULL,
     "do not ask for confirmation"},
    TG_CTL_END_OPT,
};

/* -------------------------------------------------------------- apps */

static const tg_ctl_col_t tg_ctl_app_cols[] = {
    {"ID", "application_id|id", TG_CTL_F_INT, 0},
    {"KIND", "kind", TG_CTL_F_TEXT, 0},
    {"USER", "username|user.username|user_id", TG_CTL_F_TEXT, 16},
    {"STATUS", "status", TG_CTL_F_STATE, 0},
    {"KEY", "payload.key_id|key_id", TG_CTL_F_INT, 0},
    {"MODELS", "payload.models|models", TG_CTL_F_LIST, 24},
    {"REASON", "reason", TG_CTL_F_TEXT, 30},
    {"CREATED", "created_at", TG_CTL_F_TIME, 0},
    {"DECIDED", "decided_at", TG_CTL_F_TIME, 0},
    {"COMMENT", "comment", TG_CTL_F_TEXT, 24},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_apps_list_opts[] = {
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "pending|approved|rejected",
     "only applications in this status"},
    {"kind", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY,
     "model_access|quota_increase|new_key", "only this kind"},
    {"user-id", "user_id", TG_CTL_T_ID, TG_CTL_O_QUERY, NULL,
     "only this user's applications"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_apps_apply_opts[] = {
    {"reason", NULL, TG_CTL_T_STR, 0, NULL, "why (shown to the reviewer)"},
    {"key-id", "key_id", TG_CTL_T_ID, 0, NULL,
     "model-access: the key that should reach the models"},
    {"models", NULL, TG_CTL_T_LIST, 0, NULL,
     "model-access and new-key: model patterns"},
    {"tokens-day", "quota.tokens_day", TG_CTL_T_INT, 0, NULL,
     "quota-increase: tokens per day"},
    {"tokens-month", "quota.tokens_month", TG_CTL_T_INT, 0, NULL,
     "quota-increase: tokens per month"},
    {"cost-day-usd", "quota.cost_day_usd", TG_CTL_T_MONEY, 0, NULL,
     "quota-increase: spend per day"},
    {"cost-month-usd", "quota.cost_month_usd", TG_CTL_T_MONEY, 0, NULL,
     "quota-increase: spend per month"},
    {"name", "key.name", TG_CTL_T_STR, 0, NULL, "new-key: the key's name"},
    {"expires", "key.expires_at", TG_CTL_T_TIME, 0, NULL,
     "new-key: expiry (2026-12-31, RFC 3339, +90d)"},
    {"rpm", "key.rpm", TG_CTL_T_INT, 0, NULL, "new-key: requests per minute"},
    {"tpm", "key.tpm", TG_CTL_T_INT, 0, NULL, "new-key: tokens per minute"},
    {"concurrency", "key.concurrency", TG_CTL_T_INT, 0, NULL,
     "new-key: requests in flight"},
    {"group", "key.group", TG_CTL_T_STR, 0, NULL, "new-key: endpoint group"},
    TG_CTL_SET_OPT,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_apps_decide_opts[] = {
    {"comment", NULL, TG_CTL_T_STR, 0, NULL, "shown to the applicant"},
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_apps_rt[TG_CTL_RT_N] = TG_CTL_RESOURCE(
    "/admin/api/applications", "application", tg_ctl_app_cols, "deleted");
/* An approved new key is in the answer, once. */
static const tg_ctl_route_t tg_ctl_apps_get_rt = {
    .method = "GET", .path = "/admin/api/applications/{id}", .secret = true};
static const tg_ctl_route_t tg_ctl_apps_approve_rt = {
    .method = "POST",
    .path = "/admin/api/applications/{id}/approve",
    .secret = true};
static const tg_ctl_route_t tg_ctl_apps_reject_rt = {
    .method = "POST", .path = "/admin/api/applications/{id}/reject"};


/* Usage error when <field> was given for an application of <kind>. */
static int
tg_ctl_apps_refuse(tg_ctl_t *ctl, const json_t *body, const char *field,
                   const char *opts, const char *kind)
{
    if (json_object_get(body, field) != NULL) {
        tg_ctl_errorf(ctl, "%s does not apply to a %s application", opts, kind);
        return TG_CTL_EXIT_USAGE;
    }
    return TG_CTL_EXIT_OK;
}


/* Shape the body for <kind> and check what the kind needs. */
static int
tg_ctl_apps_shape(tg_ctl_t *ctl, json_t *b, const char *kind)
{
    int rc = TG_CTL_EXIT_OK;

    if (strcmp(kind, "model_access") == 0) {
        if (json_object_get(b, "key_id") == NULL ||
            json_object_get(b, "models") == NULL) {
            tg_ctl_errorf(ctl, "a model-access application needs --key-id "
                               "and --models");
            return TG_CTL_EXIT_USAGE;
        }
        rc = tg_ctl_apps_refuse(ctl, b, "quota", "--tokens-*/--cost-*", kind);
        if (rc == TG_CTL_EXIT_OK) {
            rc = tg_ctl_apps_refuse(ctl, b, "key", "--name/--rpm/...", kind);
        }
    } else if (strcmp(kind, "quota_increase") == 0) {
        if (json_object_get(b, "quota") == NULL) {
            tg_ctl_errorf(ctl, "a quota-increase application needs at least "
                               "one of --tokens-day, --tokens-month, "
                               "--cost-day-usd, --cost-month-usd");
            return TG_CTL_EXIT_USAGE;
        }
        rc = tg_ctl_apps_refuse(ctl, b, "key_id", "--key-id", kind);
        if (rc == TG_CTL_EXIT_OK) {
            rc = tg_ctl_apps_refuse(ctl, b, "models", "--models", kind);
        }
        if (rc == TG_CTL_EXIT_OK) {
            rc = tg_ctl_apps_refuse(ctl, b, "key", "--name/--rpm/...", kind);
        }
    } else {
        json_t *key = json_object_get(b, "key"), *models;

        rc = tg_ctl_apps_refuse(ctl, b, "key_id", "--key-id", kind);
        if (rc == TG_CTL_EXIT_OK) {
            rc = tg_ctl_apps_refuse(ctl, b, "quota", "--tokens-*/--cost-*",
                                    kind);
        }
        if (rc == TG_CTL_EXIT_OK && key == NULL) {
            key = json_object();
            json_object_set_new(b, "key", key);
        }
        models = json_object_get(b, "models");
        if (rc == TG_CTL_EXIT_OK && models != NULL) {
            json_object_set(key, "models", models);
            json_object_del(b, "models");
        }
    }
    return rc;
}


/* apps apply KIND [options] */
static int
tg_ctl_apps_apply(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    static const char *const kinds[][2] = {
        {"model-access", "model_access"},
        {"model_access", "model_access"},
        {"quota-increase", "quota_increase"},
        {"quota_increase", "quota_increase"},
        {"quota", "quota_increase"},
        {"new-key", "new_key"},
        {"new_key", "new_key"},
        {"key", "new_key"},
        {"model", "model_access"},
    };
    const char *kind = NULL;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(a->pos[0], kinds[i][0]) == 0) {
            kind = kinds[i][1];
        }
    }
    if (kind == NULL) {
        tg_ctl_errorf(ctl,
                      "unknown kind '%.40s'; expected model-access, "
                      "quota-increase or new-key",
                      a->pos[0]);
        return TG_CTL_EXIT_USAGE;
    }
    rc = tg_ctl_apps_shape(ctl, a->body, kind);
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    json_object_set_new(a->body, "kind", json_string(kind));
    return tg_ctl_run_send(ctl, cmd, a);
}


const tg_ctl_cmd_t tg_ctl_apps_cmds[] = {
    {"apply", "KIND", 1, 1, "apply for model access, a quota or a new key",
     "KIND is model-access, quota-increase or new-key.  Examples:\n"
     "  tollctl apps apply model-access --key-id 3 --models "
     "'claude-sonnet-*' --reason 'code review bot'\n"
     "  tollctl apps apply quota-increase --tokens-month 20000000 --reason "
     "'launch week'\n"
     "  tollctl apps apply new-key --name laptop --models 'claude-*'\n"
     "An approved new key is shown once by `tollctl apps get ID`.",
     tg_ctl_apps_apply_opts, tg_ctl_apps_apply,
     &tg_ctl_apps_rt[TG_CTL_RT_CREATE]},
    {"list", "", 0, 0, "list applications", NULL, tg_ctl_apps_list_opts,
     tg_ctl_run_list, &tg_ctl_apps_rt[TG_CTL_RT_LIST]},
    {"get", "ID", 1, 1, "show an application (and, once, an approved key)",
     NULL, NULL, tg_ctl_run_get, &tg_ctl_apps_get_rt},
    {"approve", "ID", 1, 1, "approve an application: its change applies", NULL,
     tg_ctl_apps_decide_opts, tg_ctl_run_send, &tg_ctl_apps_approve_rt},
    {"reject", "ID", 1, 1, "reject an application", NULL,
     tg_ctl_apps_decide_opts, tg_ctl_run_send, &tg_ctl_apps_reject_rt},
    TG_CTL_NO_CMD,
};

/* --------------------------------------------------------- endpoints */

static const tg_ctl_col_t tg_ctl_ep_cols[] = {
    {"ID", "endpoint_id|id", TG_CTL_F_INT, 0},
    {"NAME", "name", TG_CTL_F_TEXT, 24},
    {"GROUP", "group|group_name", TG_CTL_F_TEXT, 16},
    {"STYLE", "style", TG_CTL_F_TEXT, 0},
    {"STATUS", "status", TG_CTL_F_STATE, 0},
    {"HEALTH", "live.health|health", TG_CTL_F_STATE, 0},
    {"WEIGHT", "weight", TG_CTL_F_INT, 0},
    {"PRIORITY", "priority", TG_CTL_F_TEXT, 0},
    {"URL", "url", TG_CTL_F_TEXT, 40},
    {"SOURCE", "managed_by", TG_CTL_F_TEXT, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_eps_list_opts[] = {
    {"group", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only endpoints of this group"},
    {"status", NULL, TG_CTL_T_ENUM, TG_CTL_O_QUERY, "enabled|disabled",
     "only endpoints in this status"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

#define TG_CTL_EP_FIELDS                                                       \
    {"group", NULL, TG_CTL_T_STR, 0, NULL, "endpoint group"},                  \
        {"style", NULL, TG_CTL_T_ENUM, 0, "anthropic|openai", "API style"},    \
        {"weight", NULL, TG_CTL_T_INT, 0, NULL, "share of traffic"},           \
        {"priority", NULL, TG_CTL_T_ENUM, 0, "primary|secondary|fallback",     \
         "tier"},                                                              \
        {"models", NULL, TG_CTL_T_LIST,                                        \
         0,        NULL, "model patterns served (\"\" = all)"},                \
        {"credential-stdin", NULL, TG_CTL_T_FLAG,                              \
         TG_CTL_O_LOCAL,     NULL, "read the upstream credential from stdin"}, \
        {"credential-env",                                                     \
         NULL,                                                                 \
         TG_CTL_T_STR,                                                         \
         TG_CTL_O_LOCAL,                                                       \
         NULL,                                                                 \
         "take the upstream credential from this environment variable"},       \
        TG_CTL_SET_OPT

static const tg_ctl_opt_t tg_ctl_eps_add_opts[] = {
    {"url", NULL, TG_CTL_T_STR, TG_CTL_O_REQUIRED, NULL, "upstream base URL"},
    TG_CTL_EP_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_eps_update_opts[] = {
    {"name", NULL, TG_CTL_T_STR, 0, NULL, "new name"},
    {"url", NULL, TG_CTL_T_STR, 0, NULL, "upstream base URL"},
    TG_CTL_EP_FIELDS,
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_eps_test_opts[] = {
    {"model", NULL, TG_CTL_T_STR, 0, NULL,
     "model to ask for (default: the endpoint's first)"},
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_eps_rt[TG_CTL_RT_N] = TG_CTL_RESOURCE(
    "/admin/api/endpoints", "endpoint", tg_ctl_ep_cols, "removed");
static const tg_ctl_route_t tg_ctl_eps_test_rt = {
    .method = "POST", .path = "/admin/api/endpoints/{id}/test"};


/* Put the credential from stdin or the environment into the body. */
static int
tg_ctl_eps_credential(tg_ctl_t *ctl, tg_ctl_args_t *a)
{
    const char *env = tg_ctl_local_str(a, "credential-env"), *val;
    bool piped = tg_ctl_local_flag(a, "credential-stdin");
    char cred[TG_CTL_SECRET_MAX];
    int rc;

    if (json_object_get(a->body, "credential") != NULL) {
        tg_ctl_errorf(ctl, "a credential is never given on the command line; "
                           "use --credential-stdin or --credential-env");
        return TG_CTL_EXIT_USAGE;
    }
    if (env != NULL && piped) {
        tg_ctl_errorf(ctl, "--credential-stdin and --credential-env exclude "
                           "each other");
        return TG_CTL_EXIT_USAGE;
    }
    if (env != NULL) {
        val = getenv(env);
        if (val == NULL || val[0] == '\0') {
            tg_ctl_errorf(ctl, "--credential-env: %.60s is not set", env);
            return TG_CTL_EXIT_USAGE;
        }
        json_object_set_new(a->body, "credential", json_string(val));
    } else if (piped) {
        rc = tg_ctl_read_secret(ctl, "credential", false, true, true, cred,
                                sizeof(cred));
        if (rc != TG_CTL_EXIT_OK) {
            return rc;
        }
        json_object_set_new(a->body, "credential", json_string(cred));
        explicit_bzero(cred, sizeof(cred));
    }
    return TG_CTL_EXIT_OK;
}


/* endpoints add NAME / endpoints update ID */
static int
tg_ctl_eps_send(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    int rc = tg_ctl_eps_credential(ctl, a);

    if (rc == TG_CTL_EXIT_OK && strcmp(cmd->name, "add") == 0) {
        json_object_set_new(a->body, "name", json_string(a->pos[0]));
        a->npos = 0; /* the route has no {id} */
    }
    if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_run_send(ctl, cmd, a);
    }
    tg_ctl_json_wipe(json_object_get(a->body, "credential"));
    return rc;
}


const tg_ctl_cmd_t tg_ctl_endpoints_cmds[] = {
    {"add", "NAME", 1, 1, "add an endpoint",
     "Example: tollctl endpoints add anthropic-2 --url "
     "https://api.anthropic.com --style anthropic --group default "
     "--credential-env ANTHROPIC_KEY",
     tg_ctl_eps_add_opts, tg_ctl_eps_send, &tg_ctl_eps_rt[TG_CTL_RT_CREATE]},
    {"list", "", 0, 0, "list endpoints", NULL, tg_ctl_eps_list_opts,
     tg_ctl_run_list, &tg_ctl_eps_rt[TG_CTL_RT_LIST]},
    {"get", "ID", 1, 1, "show an endpoint with its live state", NULL, NULL,
     tg_ctl_run_get, &tg_ctl_eps_rt[TG_CTL_RT_GET]},
    {"update", "ID", 1, 1, "change an endpoint's fields", NULL,
     tg_ctl_eps_update_opts, tg_ctl_eps_send, &tg_ctl_eps_rt[TG_CTL_RT_UPDATE]},
    {"remove", "ID", 1, 1, "remove an endpoint", NULL, tg_ctl_yes_opts,
     tg_ctl_run_send, &tg_ctl_eps_rt[TG_CTL_RT_DELETE]},
    {"enable", "ID", 1, 1, "enable an endpoint (also ends a cool-down)", NULL,
     NULL, tg_ctl_run_send, &tg_ctl_eps_rt[TG_CTL_RT_ENABLE]},
    {"disable", "ID", 1, 1, "take an endpoint out of routing", NULL, NULL,
     tg_ctl_run_send, &tg_ctl_eps_rt[TG_CTL_RT_DISABLE]},
    {"test", "ID", 1, 1, "send one minimal real request through it",
     "Reports the upstream status, latency and error.", tg_ctl_eps_test_opts,
     tg_ctl_run_send, &tg_ctl_eps_test_rt},
    TG_CTL_NO_CMD,
};

/* ------------------------------------------------------------ groups */

static const tg_ctl_col_t tg_ctl_group_cols[] = {
    {"ID", "group_id|id", TG_CTL_F_INT, 0},
    {"NAME", "name", TG_CTL_F_TEXT, 24},
    {"STRATEGY", "strategy", TG_CTL_F_TEXT, 0},
    {"TRANSLATE", "translate", TG_CTL_F_TEXT, 0},
    {"WAIT", "wait_for_cooldown_ms", TG_CTL_F_MS, 0},
    {"ENDPOINTS", "endpoints", TG_CTL_F_LIST, 40},
    {"SOURCE", "managed_by", TG_CTL_F_TEXT, 0},
    {"CREATED", "created_at", TG_CTL_F_TIME, 0},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_groups_list_opts[] = {
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};

/* "groups create" takes the fields after "name" (tg_ctl_group_opts + 1). */
static const tg_ctl_opt_t tg_ctl_group_opts[] = {
    {"name", NULL, TG_CTL_T_STR, 0, NULL, "new name"},
    {"strategy", NULL, TG_CTL_T_ENUM, 0,
     "round-robin|weighted|least-connections|latency|cost",
     "how an endpoint is chosen"},
    {"description", NULL, TG_CTL_T_STR, 0, NULL, "what the group is for"},
    {"failure-threshold", "failure_threshold", TG_CTL_T_INT, 0, NULL,
     "failures that open the breaker (1..1000)"},
    {"cooldown-ms", "cooldown_ms", TG_CTL_T_INT, 0, NULL,
     "how long an open breaker stays open, ms"},
    {"max-retries", "max_retries", TG_CTL_T_INT, 0, NULL,
     "other endpoints tried before giving up (0..16)"},
    {"retry-deadline-ms", "retry_deadline_ms", TG_CTL_T_INT, 0, NULL,
     "no new attempt starts after this long, ms"},
    {"sticky", NULL, TG_CTL_T_BOOL, 0, NULL,
     "keep a conversation on one endpoint"},
    {"sticky-ttl-ms", "sticky_ttl_ms", TG_CTL_T_INT, 0, NULL,
     "how long an unused conversation mapping lives, ms"},
    {"exploration", NULL, TG_CTL_T_DECIMAL, 0, NULL,
     "share the latency strategy sends to a random endpoint (0..0.5)"},
    {"translate", NULL, TG_CTL_T_BOOL, 0, NULL,
     "endpoints of the other API style serve requests, translated"},
    {"wait-for-cooldown-ms", "wait_for_cooldown_ms", TG_CTL_T_INT, 0, NULL,
     "wait when every endpoint cools down (0..60000 ms)"},
    TG_CTL_SET_OPT,
    TG_CTL_END_OPT,
};

static const tg_ctl_route_t tg_ctl_groups_rt[TG_CTL_RT_N] =
    TG_CTL_RESOURCE("/admin/api/groups", "group", tg_ctl_group_cols, "deleted");


/* groups create NAME */
static int
tg_ctl_groups_create(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_object_set_new(a->body, "name", json_string(a->pos[0]));
    a->npos = 0;
    return tg_ctl_run_send(ctl, cmd, a);
}


const tg_ctl_cmd_t tg_ctl_groups_cmds[] = {
    {"list", "", 0, 0, "list endpoint groups", NULL, tg_ctl_groups_list_opts,
     tg_ctl_run_list, &tg_ctl_groups_rt[TG_CTL_RT_LIST]},
    {"get", "ID", 1, 1, "show a group", NULL, NULL, tg_ctl_run_get,
     &tg_ctl_groups_rt[TG_CTL_RT_GET]},
    {"create", "NAME", 1, 1, "create a group", NULL, &tg_ctl_group_opts[1],
     tg_ctl_groups_create, &tg_ctl_groups_rt[TG_CTL_RT_CREATE]},
    {"update", "ID", 1, 1, "change a group's fields", NULL, tg_ctl_group_opts,
     tg_ctl_run_send, &tg_ctl_groups_rt[TG_CTL_RT_UPDATE]},
    {"delete", "ID", 1, 1, "delete a group", NULL, tg_ctl_yes_opts,
     tg_ctl_run_send, &tg_ctl_groups_rt[TG_CTL_RT_DELETE]},
    TG_CTL_NO_CMD,
};

/* ------------------------------------------------------------ health */

static const tg_ctl_col_t tg_ctl_health_cols[] = {
    {"ID", "endpoint_id|id|index", TG_CTL_F_INT, 0},
    {"NAME", "name", TG_CTL_F_TEXT, 24},
    {"STATUS", "status", TG_CTL_F_STATE, 0},
    {"AVAILABLE", "live.available|available", TG_CTL_F_STATE, 0},
    {"HEALTH", "live.health|health", TG_CTL_F_STATE, 0},
    {"BREAKER", "live.breaker|breaker", TG_CTL_F_STATE, 0},
    {"INFLIGHT", "live.inflight|inflight", TG_CTL_F_COUNT, 0},
    {"REQUESTS", "live.requests|requests", TG_CTL_F_COUNT, 0},
    {"SUCCESS", "_success", TG_CTL_F_PCT, 0},
    {"LATENCY", "_latency_us", TG_CTL_F_US, 0},
    {NULL, NULL, 0, 0},
};

/* Event times to the millisecond: transitions come seconds apart. */
static const tg_ctl_col_t tg_ctl_event_cols[] = {
    {"AT", "at", TG_CTL_F_TEXT, 0},
    {"HOST", "host", TG_CTL_F_TEXT, 16},
    {"EVENT", "type", TG_CTL_F_STATE, 0},
    {"FROM", "from_state", TG_CTL_F_STATE, 0},
    {"TO", "to_state", TG_CTL_F_STATE, 0},
    {"STATUS", "status", TG_CTL_F_INT, 0},
    {"FAILS", "consecutive", TG_CTL_F_INT, 0},
    {"SOURCE", "source", TG_CTL_F_TEXT, 0},
    {"REASON", "reason", TG_CTL_F_TEXT, 48},
    {NULL, NULL, 0, 0},
};

static const tg_ctl_opt_t tg_ctl_health_status_opts[] = {
    {"group", NULL, TG_CTL_T_STR, TG_CTL_O_QUERY, NULL,
     "only endpoints of this group"},
    TG_CTL_END_OPT,
};

static const tg_ctl_opt_t tg_ctl_health_history_opts[] = {
    {"since", NULL, TG_CTL_T_STR, TG_CTL_O_LOCAL, NULL,
     "events since this long ago or this time (24h, 7d, 2026-12-01)"},
    {"from", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL,
     "events from this time (2026-12-01, -24h)"},
    {"to", NULL, TG_CTL_T_TIME, TG_CTL_O_QUERY, NULL,
     "events before this time"},
    TG_CTL_LIST_OPTS,
    TG_CTL_END_OPT,
};


/* A number at <path> of <it>, or -1. */
static double
tg_ctl_health_num(const json_t *it, const char *path)
{
    const json_t *v = tg_ctl_json_path(it, path);

    return json_is_number(v) ? json_number_value(v) : -1;
}


/* Add "_success" (ratio) and "_latency_us" to each endpoint: the server's
 * own figures when it gives them, else derived from the counters. */
static void
tg_ctl_health_derive(json_t *items)
{
    size_t i;
    json_t *it;

    json_array_foreach(items, i, it)
    {
        double sr = tg_ctl_health_num(it, "live.success_rate|success_rate");
        double req = tg_ctl_health_num(it, "live.requests|requests");
        double fail = tg_ctl_health_num(it, "live.failures|failures");
        double ms = tg_ctl_health_num(it, "live.latency_ms|latency_ms");
        double us = tg_ctl_health_num(
            it, "live.latency_ewma_us|latency_ewma_us|live.latency_us|"
                "latency_us");

        if (!json_is_object(it)) {
            continue;
        }
        if (sr < 0 && req > 0 && fail >= 0 && fail <= req) {
            sr = (req - fail) / req;
        }
        if (sr >= 0) {
            json_object_set_new(it, "_success",
                                json_real(sr > 1 ? sr / 100 : sr));
        }
        if (us < 0 && ms >= 0) {
            us = ms * 1000;
        }
        if (us > 0) {
            json_object_set_new(it, "_latency_us", json_real(us));
        }
    }
}


/* health status: each endpoint's state, success rate and latency. */
static int
tg_ctl_health_status(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_t *items = NULL, *last = NULL;
    tg_ctl_resp_t r;
    bool all = ctl->all;
    int rc;

    (void)cmd;
    ctl->all = true;
    /* Probe the route first so a server without the API falls back to
     * the older GET /endpoints instead of failing. */
    rc = tg_ctl_request(ctl, "GET", "/admin/api/endpoints", NULL, NULL, &r,
                        NULL, false);
    if (rc == TG_CTL_EXIT_OK && r.status == 404) {
        rc = tg_ctl_fetch_list(ctl, "/endpoints", NULL, false, &items, &last);
    } else if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_fetch_list(ctl, "/admin/api/endpoints", a->query, false,
                               &items, &last);
    }
    tg_ctl_resp_fini(&r);
    ctl->all = all;
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    if (ctl->json) {
        json_t *o = json_pack("{s:O, s:n}", "items", items, "next_cursor");

        tg_ctl_print_json(ctl, o);
        json_decref(o);
    } else {
        tg_ctl_health_derive(items);
        tg_ctl_table(ctl, items, tg_ctl_health_cols);
    }
    json_decref(items);
    json_decref(last);
    return TG_CTL_EXIT_OK;
}


/*
 * The id of endpoint <ref> (an id, or a name looked up in the endpoint
 * list) into <id> of <len> bytes.  An exit code.
 */
static int
tg_ctl_health_endpoint(tg_ctl_t *ctl, const char *ref, char *id, size_t len)
{
    json_t *items = NULL, *last = NULL, *q, *it;
    bool all = ctl->all;
    size_t i;
    int rc;

    if (tg_ctl_id_valid(ref)) {
        snprintf(id, len, "%s", ref);
        return TG_CTL_EXIT_OK;
    }
    q = json_pack("{s:s}", "q", ref);
    if (q == NULL) {
        return TG_CTL_EXIT_FAILED;
    }
    ctl->all = true;
    rc =
        tg_ctl_fetch_list(ctl, "/admin/api/endpoints", q, false, &items, &last);
    ctl->all = all;
    json_decref(q);
    if (rc == TG_CTL_EXIT_OK) {
        rc = TG_CTL_EXIT_FAILED;
        json_array_foreach(items, i, it)
        {
            const char *name = json_string_value(json_object_get(it, "name"));
            json_t *eid = json_object_get(it, "endpoint_id");

            if (name != NULL && strcmp(name, ref) == 0 &&
                json_is_integer(eid)) {
                snprintf(id, len, "%lld", (long long)json_integer_value(eid));
                rc = TG_CTL_EXIT_OK;
                break;
            }
        }
        if (rc != TG_CTL_EXIT_OK) {
            tg_ctl_errorf(ctl, "no endpoint named '%.63s'", ref);
        }
    }
    json_decref(items);
    json_decref(last);
    return rc;
}


/* --since: a bare duration ("24h") means that long ago, else a time as
 * --from takes it; into the "from" query parameter.  An exit code. */
static int
tg_ctl_health_since(tg_ctl_t *ctl, tg_ctl_args_t *a)
{
    const char *since = tg_ctl_local_str(a, "since");
    char in[64], out[64];
    long long secs;

    if (since == NULL) {
        return TG_CTL_EXIT_OK;
    }
    snprintf(in, sizeof(in), "%s%.60s",
             tg_ctl_duration_parse(since, &secs) ? "-" : "", since);
    if (!tg_ctl_time_parse(in, time(NULL), out, sizeof(out))) {
        tg_ctl_errorf(ctl,
                      "--since: expected a duration like 24h or 7d, or a "
                      "time like 2026-12-01, got '%.40s'",
                      since);
        return TG_CTL_EXIT_USAGE;
    }
    if (json_object_set_new(a->query, "from", json_string(out)) != 0) {
        return TG_CTL_EXIT_FAILED;
    }
    return TG_CTL_EXIT_OK;
}


/* health history ENDPOINT: the endpoint's events, newest first. */
static int
tg_ctl_health_history(tg_ctl_t *ctl, const tg_ctl_cmd_t *cmd, tg_ctl_args_t *a)
{
    json_t *items = NULL, *last = NULL;
    char id[32], path[96];
    int rc;

    (void)cmd;
    rc = tg_ctl_health_since(ctl, a);
    if (rc == TG_CTL_EXIT_OK) {
        rc = tg_ctl_health_endpoint(ctl, a->pos[0], id, sizeof(id));
    }
    if (rc != TG_CTL_EXIT_OK) {
        return rc;
    }
    snprintf(path, sizeof(path), "/admin/api/endpoints/%s/events", id);
    rc = tg_ctl_fetch_list(ctl, path, a->query, false, &items, &last);
    if (rc == TG_CTL_EXIT_OK) {
        tg_ctl_print_list(ctl, items, last, tg_ctl_event_cols);
    }
    json_decref(items);
    json_decref(last);
    return rc;
}


const tg_ctl_cmd_t tg_ctl_health_cmds[] = {
    {"status", "", 0, 0, "each endpoint's state, success rate and latency",
     "Reads GET /admin/api/endpoints (every page); servers without the admin "
     "API answer on GET /endpoints.",
     tg_ctl_health_status_opts, tg_ctl_health_status, NULL},
    {"history", "ENDPOINT", 1, 1,
     "an endpoint's events (breaker, cool-down, health), newest first",
     "ENDPOINT is an id or a name.  Reads GET "
     "/admin/api/endpoints/ID/events.",
     tg_ctl_health_history_opts, tg_ctl_health_history, NULL},
    TG_CTL_NO_CMD,
};
