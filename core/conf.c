/*
 * core/conf.c
 *      Configuration: load a libconfig file, validate every setting and
 *      fill a tg_conf_t.
 *
 * NOTES
 *      Runs in master (at start, on HUP and for `tollgate -t`), in the unit
 *      tests and in the fuzzer.  It never logs: the first problem found is
 *      written to the caller's buffer as "<file>:<line>: <message>", or as
 *      "<file>: <message>" when no line applies (the file cannot be opened,
 *      a required list is absent).
 *
 *      The schema is data.  Each group is a table of tg_conf_rule_t, one per
 *      setting, giving its type, where the value is stored and its range.
 *      The members of a group are walked in file order and looked up in the
 *      group's table, so an unknown setting is reported where it is written
 *      and the error reported is always the first one in the file.
 *
 *      libconfig 1.5, as shipped in Debian 12, reads an integer literal
 *      without the L suffix into a 32-bit int and silently wraps it
 *      (3000000000 reads as -1294967296, 4294968320 as 1024), and it
 *      saturates 64-bit literals.  The parsed tree keeps no trace of the
 *      text, so a range check alone cannot catch it.  After a successful
 *      parse, every file libconfig read (and the string, for
 *      tg_conf_create_from_string) is scanned once more by a small lexer
 *      that knows libconfig's comments, strings and names, and any integer
 *      literal that did not fit is an error (core/conf_lex.c).
 *
 *      The loader is split by phase: conf_lex.c (integer lexer),
 *      conf_values.c (value parsers, error reporting), conf_lists.c (the
 *      lists), and this file (top-level settings, the whole file).
 *
 *      @include paths, like every other path, are relative to the working
 *      directory.  libconfig 1.5 would join include_dir even to absolute
 *      paths, so it is left unset.
 *
 *      XXX: libconfig 1.5 leaks the buffer of a string token its parser
 *      throws away on some syntax errors (hyperrealm/libconfig#142, fixed
 *      upstream after 1.5), so a file rejected for its syntax can cost the
 *      master a few bytes per reload.  It is out of our reach; the fuzzer
 *      suppresses exactly that leak.
 */
#include "core/conf.h"
#include "core/conf_int.h"
#include "core/core.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(TG_LOG_ERR == 0 && TG_LOG_WARN == 1 && TG_LOG_NOTICE == 2 &&
                   TG_LOG_INFO == 3 && TG_LOG_DEBUG == 4,
               "tg_conf_levels is indexed by TG_LOG_*");

static const char *const tg_conf_levels[] = {"error", "warn",  "notice",
                                             "info",  "debug", NULL};

static const char *const tg_conf_disconnects[] = {"drain", "cancel", NULL};

/*
 * Whether <tz> names a time zone: "UTC", a file under /usr/share/zoneinfo
 * (an IANA name; no "..", no leading '/'), or a POSIX TZ string (three or
 * more letters, then an offset: "CET-1", "EST5EDT,M3.2.0,M11.1.0").
 */
static bool
tg_conf_timezone_ok(const char *tz)
{
    char path[128];
    size_t i = 0;
    int n;

    if (strcmp(tz, "UTC") == 0 || strcmp(tz, "GMT") == 0) {
        return true;
    }
    if (tz[0] == '/' || strstr(tz, "..") != NULL) {
        return false;
    }
    n = snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    if (n > 0 && (size_t)n < sizeof(path) && access(path, R_OK) == 0) {
        return true;
    }
    while (isalpha((unsigned char)tz[i])) {
        i++;
    }
    if (i < 3) {
        return false;
    }
    if (tz[i] == '+' || tz[i] == '-') {
        i++;
    }
    return isdigit((unsigned char)tz[i]);
}

static const tg_conf_rule_t tg_conf_listen_rules[] = {
    TG_CONF_TOP("address", TG_CONF_T_ADDR, listen_addr, 1, 63),
    TG_CONF_TOP("port", TG_CONF_T_INT, listen_port, 1, 65535),
    TG_CONF_END,
};

static int tg_conf_parse_old_keys(tg_conf_ctx_t *ctx, const config_setting_t *s,
                                  void *base);

static const tg_conf_rule_t tg_conf_admin_rules[] = {
    TG_CONF_TOP("address", TG_CONF_T_ADDR, admin_addr, 1, 63),
    TG_CONF_TOP("port", TG_CONF_T_INT, admin_port, 0, 65535),
    TG_CONF_TOP("secret_key", TG_CONF_T_STRING, secret_key, 1, 4095),
    {.name = "old_secret_keys",
     .type = TG_CONF_T_LIST,
     .list = tg_conf_parse_old_keys},
    TG_CONF_TOP("bootstrap_password", TG_CONF_T_STRING, bootstrap_password, 1,
                255),
    TG_CONF_RULE("code_webhook", TG_CONF_T_STRING, TG_CONF_F_TOKEN, tg_conf_t,
                 code_webhook, 1, 2047),
    TG_CONF_TOP("reconcile_interval", TG_CONF_T_DURATION, reconcile_interval_ms,
                1000, TG_CONF_DAY_MS),
    TG_CONF_TOP("session_ttl", TG_CONF_T_DURATION, session_ttl_ms, 60000,
                TG_CONF_DAY_MS * 30u),
    TG_CONF_RULE("host_name", TG_CONF_T_STRING, TG_CONF_F_TOKEN, tg_conf_t,
                 host_name, 1, 255),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_log_rules[] = {
    TG_CONF_TOP("error", TG_CONF_T_STRING, error_log, 1, 4095),
    TG_CONF_TOP("access", TG_CONF_T_STRING, access_log, 1, 4095),
    TG_CONF_TOP("events", TG_CONF_T_STRING, events_log, 1, 4095),
    TG_CONF_TOP("events_months", TG_CONF_T_U32, events_months, 0, 1200),
    TG_CONF_ENUM("level", 0, tg_conf_t, log_level, tg_conf_levels),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_limits_rules[] = {
    TG_CONF_TOP("header_bytes", TG_CONF_T_SIZE, header_bytes, 1024, 1048576),
    TG_CONF_TOP("body_bytes", TG_CONF_T_SIZE, body_bytes, 1024, 1073741824),
    TG_CONF_DURATION("header_timeout", header_timeout_ms),
    TG_CONF_DURATION("body_timeout", body_timeout_ms),
    TG_CONF_DURATION("idle_timeout", idle_timeout_ms),
    TG_CONF_DURATION("send_timeout", send_timeout_ms),
    TG_CONF_TOP("max_connections", TG_CONF_T_U32, max_connections, 1, 1000000),
    TG_CONF_TOP("stream_buffer", TG_CONF_T_SIZE, stream_buffer, 4096, 16777216),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_upstream_rules[] = {
    TG_CONF_DURATION("connect_timeout", connect_timeout_ms),
    TG_CONF_DURATION("first_byte_timeout", first_byte_timeout_ms),
    TG_CONF_DURATION("read_timeout", read_timeout_ms),
    TG_CONF_TOP("tls_verify", TG_CONF_T_BOOL, tls_verify, 0, 1),
    TG_CONF_TOP("buffer", TG_CONF_T_SIZE, upstream_buffer, 1024, 524288),
    TG_CONF_TOP("keepalive", TG_CONF_T_U32, upstream_keepalive, 1, 100000),
    TG_CONF_TOP("max_tokens", TG_CONF_T_U32, max_tokens, 1, 1000000),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_shm_rules[] = {
    TG_CONF_TOP("max_keys", TG_CONF_T_U32, max_keys, 16, 100000000),
    TG_CONF_TOP("max_users", TG_CONF_T_U32, max_users, 1, 10000000),
    TG_CONF_TOP("max_endpoints", TG_CONF_T_U32, max_endpoints, 1, 256),
    TG_CONF_TOP("max_groups", TG_CONF_T_U32, max_groups, 1, 4096),
    TG_CONF_TOP("max_sticky", TG_CONF_T_U32, max_sticky, 1024, 16777216),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_usage_rules[] = {
    TG_CONF_TOP("ring_slots", TG_CONF_T_U32, usage_ring, 64, 16777216),
    TG_CONF_TOP("spool_dir", TG_CONF_T_STRING, spool_dir, 1, 4000),
    TG_CONF_TOP("log", TG_CONF_T_STRING, usage_log, 1, 4095),
    TG_CONF_TOP("timezone", TG_CONF_T_STRING, usage_timezone, 1, 63),
    TG_CONF_ENUM("on_client_disconnect", 0, tg_conf_t, usage_disconnect,
                 tg_conf_disconnects),
    TG_CONF_DURATION("drain_timeout", drain_timeout_ms),
    TG_CONF_TOP("drain_bytes", TG_CONF_T_SIZE, drain_bytes, 1, 1073741824),
    TG_CONF_TOP("detail", TG_CONF_T_BOOL, usage_detail, 0, 1),
    TG_CONF_TOP("detail_months", TG_CONF_T_U32, usage_detail_months, 0, 1200),
    TG_CONF_TOP("sync_interval", TG_CONF_T_DURATION, usage_sync_interval_ms,
                100, 3600000),
    TG_CONF_TOP("batch_retention", TG_CONF_T_DURATION, usage_batch_retention_ms,
                3600000, TG_CONF_DAY_MS * 45u),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_rules[] = {
    {.name = "listen", .type = TG_CONF_T_GROUP, .group = tg_conf_listen_rules},
    TG_CONF_TOP("workers", TG_CONF_T_INT, workers, 1, TG_CONF_MAX_WORKERS),
    {.name = "admin", .type = TG_CONF_T_GROUP, .group = tg_conf_admin_rules},
    TG_CONF_TOP("pid_file", TG_CONF_T_STRING, pid_file, 1, 4095),
    TG_CONF_TOP("database", TG_CONF_T_STRING, database, 1, 4095),
    TG_CONF_TOP("database_start_timeout", TG_CONF_T_DURATION,
                database_start_timeout_ms, 100, 300000),
    TG_CONF_DURATION("shutdown_timeout", shutdown_timeout_ms),
    {.name = "log", .type = TG_CONF_T_GROUP, .group = tg_conf_log_rules},
    {.name = "limits", .type = TG_CONF_T_GROUP, .group = tg_conf_limits_rules},
    {.name = "upstream",
     .type = TG_CONF_T_GROUP,
     .group = tg_conf_upstream_rules},
    {.name = "endpoints",
     .type = TG_CONF_T_LIST,
     .list = tg_conf_parse_endpoints},
    {.name = "models", .type = TG_CONF_T_LIST, .list = tg_conf_parse_models},
    {.name = "keys", .type = TG_CONF_T_LIST, .list = tg_conf_parse_keys},
    {.name = "users", .type = TG_CONF_T_LIST, .list = tg_conf_parse_users},
    {.name = "groups", .type = TG_CONF_T_LIST, .list = tg_conf_parse_groups},
    {.name = "shm", .type = TG_CONF_T_GROUP, .group = tg_conf_shm_rules},
    {.name = "usage", .type = TG_CONF_T_GROUP, .group = tg_conf_usage_rules},
    TG_CONF_END,
};

/*
 * Served by GET /v1/models when the file has no "models" list; created is
 * the date of each model's snapshot.  Keep docs/configuration.md in step.
 */
static const tg_conf_model_t tg_conf_default_models[] = {
    {"claude-opus-4-1", "Claude Opus 4.1", 1754352000, "anthropic"},
    {"claude-sonnet-4-5", "Claude Sonnet 4.5", 1759104000, "anthropic"},
    {"claude-haiku-4-5", "Claude Haiku 4.5", 1759276800, "anthropic"},
};

static int
tg_conf_scan_file(tg_conf_ctx_t *ctx, const char *file)
{
    char *text = NULL, *p;
    size_t len = 0, cap = 0, n;
    int rc = TG_ERROR;
    FILE *f;

    f = fopen(file, "r");
    if (f == NULL) {
        return tg_conf_error_at(ctx, file, 0, "fopen() failed (%d: %s)", errno,
                                strerror(errno));
    }
    for (;;) {
        if (len == cap) {
            if (cap >= TG_CONF_MAX_FILE) {
                tg_conf_error_at(ctx, file, 0, "file is larger than %d bytes",
                                 TG_CONF_MAX_FILE);
                goto done;
            }
            cap = cap ? cap * 2 : 16384;
            p = realloc(text, cap);
            if (p == NULL) {
                tg_conf_error_at(ctx, file, 0, "out of memory");
                goto done;
            }
            text = p;
        }
        n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        tg_conf_error_at(ctx, file, 0, "fread() failed");
        goto done;
    }
    rc = tg_conf_lex_ints(file, text, len, ctx->err, ctx->errlen);

done:
    free(text);
    fclose(f);
    return rc;
}

/*
 * Database and admin settings.
 */

/* admin.old_secret_keys: key files or "env:NAME", for decryption only. */
static int
tg_conf_parse_old_keys(tg_conf_ctx_t *ctx, const config_setting_t *s,
                       void *base)
{
    static const tg_conf_rule_t rule = {
        .name = "",
        .type = TG_CONF_T_STRING,
        .size = sizeof(((tg_conf_t *)0)->old_secret_keys[0]),
        .min = 1,
        .max = 4095};
    tg_conf_t *conf = base;
    size_t n, i;

    if (tg_conf_get_list(ctx, s, 0, TG_CONF_OLD_SECRET_KEYS, &n) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (tg_conf_parse_value(ctx, config_setting_get_elem(s, (unsigned)i),
                                &rule, conf->old_secret_keys[i]) != TG_OK) {
            return TG_ERROR;
        }
    }
    conf->nold_secret_keys = (uint32_t)n;
    return TG_OK;
}


/*
 * A secret key written "env:NAME" must name a variable holding 64 hex
 * digits (32 bytes); it stays "env:NAME" here and admin reads it.  A path
 * is checked by admin, which creates the file at first start.
 */
static int
tg_conf_check_secret(tg_conf_ctx_t *ctx, const config_setting_t *s,
                     const char *value)
{
    char buf[80];
    size_t i;

    if (strncmp(value, "env:", 4) != 0) {
        return TG_OK;
    }
    if (strlen(value) >= sizeof(buf)) {
        return tg_conf_invalid(ctx, s, "names too long a variable");
    }
    memcpy(buf, value, strlen(value) + 1);
    if (tg_conf_resolve_env(ctx, s, buf, sizeof(buf)) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; buf[i] != '\0' && tg_conf_hex_value(buf[i]) >= 0; i++) {
    }
    explicit_bzero(buf, sizeof(buf));
    if (i != 64 || buf[i] != '\0') {
        return tg_conf_invalid(ctx, s,
                               "names environment variable %s, which does not "
                               "hold 64 hexadecimal digits",
                               value + 4);
    }
    return TG_OK;
}


/* The database (with its $TOLLGATE_DATABASE fallback) and admin.* (the
 * bootstrap password with its $TOLLGATE_ADMIN_PASSWORD fallback). */
static int
tg_conf_finish_admin(tg_conf_ctx_t *ctx, const config_t *cfg, tg_conf_t *conf)
{
    const config_setting_t *s;
    const char *env;
    uint32_t i;

    s = config_lookup(cfg, "database");
    if (s != NULL) {
        conf->database_source = TG_CONF_DB_FILE;
        if (tg_conf_resolve_env(ctx, s, conf->database,
                                sizeof(conf->database)) != TG_OK) {
            return TG_ERROR;
        }
    } else if ((env = getenv("TOLLGATE_DATABASE")) != NULL && env[0] != '\0') {
        if (strlen(env) >= sizeof(conf->database)) {
            return tg_conf_error(ctx, NULL,
                                 "$TOLLGATE_DATABASE is longer than %zu "
                                 "characters",
                                 sizeof(conf->database) - 1);
        }
        memcpy(conf->database, env, strlen(env) + 1);
        conf->database_source = TG_CONF_DB_ENV;
    }
    if (tg_conf_check_secret(ctx, config_lookup(cfg, "admin.secret_key"),
                             conf->secret_key) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < conf->nold_secret_keys; i++) {
        s = config_setting_get_elem(config_lookup(cfg, "admin.old_secret_keys"),
                                    i);
        if (tg_conf_check_secret(ctx, s, conf->old_secret_keys[i]) != TG_OK) {
            return TG_ERROR;
        }
    }
    s = config_lookup(cfg, "admin.bootstrap_password");
    if (s != NULL) {
        if (tg_conf_resolve_env(ctx, s, conf->bootstrap_password,
                                sizeof(conf->bootstrap_password)) != TG_OK) {
            return TG_ERROR;
        }
        if (strlen(conf->bootstrap_password) < 8) {
            return tg_conf_invalid(ctx, s, "must be at least 8 characters");
        }
    } else if ((env = getenv("TOLLGATE_ADMIN_PASSWORD")) != NULL &&
               env[0] != '\0') {
        /* `make run` hands its generated password over this way. */
        if (strlen(env) < 8 ||
            strlen(env) >= sizeof(conf->bootstrap_password)) {
            return tg_conf_error(ctx, NULL,
                                 "$TOLLGATE_ADMIN_PASSWORD must be 8 to %zu "
                                 "characters",
                                 sizeof(conf->bootstrap_password) - 1);
        }
        memcpy(conf->bootstrap_password, env, strlen(env) + 1);
    }
    if (conf->code_webhook[0] != '\0' &&
        strncmp(conf->code_webhook, "http://", 7) != 0 &&
        strncmp(conf->code_webhook, "https://", 8) != 0) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "admin.code_webhook"),
                               "must start with http:// or https://");
    }
    return TG_OK;
}

/*
 * The whole file.
 */

static void
tg_conf_defaults(tg_conf_t *conf)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    snprintf(conf->listen_addr, sizeof(conf->listen_addr), "127.0.0.1");
    conf->listen_port = 8080;
    conf->workers = (int)TG_MAX(1, TG_MIN(ncpu, TG_CONF_MAX_WORKERS));
    snprintf(conf->admin_addr, sizeof(conf->admin_addr), "127.0.0.1");
    conf->admin_port = 8081;
    snprintf(conf->pid_file, sizeof(conf->pid_file), "tollgate.pid");
    conf->shutdown_timeout_ms = 30000;
    snprintf(conf->error_log, sizeof(conf->error_log), "-");
    snprintf(conf->access_log, sizeof(conf->access_log), "-");
    snprintf(conf->events_log, sizeof(conf->events_log), "off");
    conf->events_months = 12;
    conf->log_level = TG_LOG_INFO;
    conf->header_bytes = 32768;
    conf->body_bytes = 33554432;
    conf->header_timeout_ms = 10000;
    conf->body_timeout_ms = 60000;
    conf->idle_timeout_ms = 75000;
    conf->send_timeout_ms = 120000;
    conf->max_connections = 10000;
    conf->stream_buffer = 65536;
    conf->connect_timeout_ms = 10000;
    conf->first_byte_timeout_ms = 300000;
    conf->read_timeout_ms = 300000;
    conf->tls_verify = true;
    conf->upstream_buffer = 16384;
    conf->upstream_keepalive = 256;
    conf->max_tokens = 4096;
    conf->max_keys = 1000000;
    conf->max_users = 100000;
    conf->max_endpoints = 256;
    conf->max_groups = 64;
    conf->max_sticky = 65536;
    conf->usage_ring = 16384;
    snprintf(conf->spool_dir, sizeof(conf->spool_dir), "spool");
    snprintf(conf->usage_log, sizeof(conf->usage_log), "off");
    snprintf(conf->usage_timezone, sizeof(conf->usage_timezone), "UTC");
    conf->usage_disconnect = TG_CONF_DISCONNECT_DRAIN;
    conf->drain_timeout_ms = 30000;
    conf->drain_bytes = 8u << 20;
    conf->usage_sync_interval_ms = 5000;
    conf->usage_batch_retention_ms = 7u * 86400000u;
    conf->database_start_timeout_ms = 5000;
    snprintf(conf->secret_key, sizeof(conf->secret_key), "run/secret.key");
    conf->reconcile_interval_ms = 30000;
    conf->session_ttl_ms = 12 * 3600 * 1000;
    if (gethostname(conf->host_name, sizeof(conf->host_name) - 1) != 0 ||
        conf->host_name[0] == '\0') {
        snprintf(conf->host_name, sizeof(conf->host_name), "localhost");
    }
}

static bool
tg_conf_is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
}

/* Checks across settings, and defaults that depend on the whole file. */
static int
tg_conf_finish(tg_conf_ctx_t *ctx, const config_t *cfg, tg_conf_t *conf)
{
    const config_setting_t *s;

    if (config_lookup(cfg, "endpoints") == NULL) {
        return tg_conf_error(ctx, NULL,
                             "no endpoints configured; add an \"endpoints\" "
                             "list");
    }
    if (conf->admin_port != 0 && conf->admin_port == conf->listen_port &&
        (strcmp(conf->admin_addr, conf->listen_addr) == 0 ||
         tg_conf_is_wildcard(conf->admin_addr) ||
         tg_conf_is_wildcard(conf->listen_addr))) {
        s = config_lookup(cfg, "admin.port");
        if (s != NULL) {
            return tg_conf_invalid(ctx, s, "must differ from listen.port (%d)",
                                   conf->listen_port);
        }
        return tg_conf_invalid(ctx, config_lookup(cfg, "listen.port"),
                               "must differ from admin.port (%d); set "
                               "admin.port, or 0 to disable admin",
                               conf->admin_port);
    }
    if (!tg_conf_timezone_ok(conf->usage_timezone)) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "usage.timezone"),
                               "\"%s\" is not a known time zone (an IANA "
                               "name such as \"Europe/Paris\", or a POSIX "
                               "TZ string such as \"CET-1\")",
                               conf->usage_timezone);
    }
    if ((conf->usage_ring & (conf->usage_ring - 1)) != 0) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "usage.ring_slots"),
                               "must be a power of two");
    }
    if ((conf->max_sticky & (conf->max_sticky - 1)) != 0) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "shm.max_sticky"),
                               "must be a power of two");
    }
    if (conf->nkeys > conf->max_keys) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "shm.max_keys"),
                               "is smaller than the %zu keys configured",
                               conf->nkeys);
    }
    if (conf->nusers > conf->max_users) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "shm.max_users"),
                               "is smaller than the %zu users configured",
                               conf->nusers);
    }
    if (conf->nendpoints > conf->max_endpoints) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "shm.max_endpoints"),
                               "is smaller than the %zu endpoints configured",
                               conf->nendpoints);
    }
    if (conf->ngroups > conf->max_groups) {
        return tg_conf_invalid(ctx, config_lookup(cfg, "shm.max_groups"),
                               "is smaller than the %zu groups configured",
                               conf->ngroups);
    }
    if (tg_conf_check_patterns(ctx, cfg, conf) != TG_OK ||
        tg_conf_finish_groups(ctx, cfg, conf) != TG_OK ||
        tg_conf_finish_admin(ctx, cfg, conf) != TG_OK) {
        return TG_ERROR;
    }
    if (conf->models == NULL) {
        conf->models = malloc(sizeof(tg_conf_default_models));
        if (conf->models == NULL) {
            return tg_conf_error(ctx, NULL, "out of memory");
        }
        memcpy(conf->models, tg_conf_default_models,
               sizeof(tg_conf_default_models));
        conf->nmodels = TG_NELEMS(tg_conf_default_models);
    }
    return TG_OK;
}

/*
 * Validate the parsed <cfg> into a new tg_conf_t.  <text> is the string
 * it was read from, or NULL when libconfig read a file.
 */
static tg_conf_t *
tg_conf_load(tg_conf_ctx_t *ctx, const config_t *cfg, const char *text)
{
    tg_conf_t *conf = NULL;
    unsigned i;

    if (strlen(ctx->name) >= sizeof(conf->path)) {
        tg_conf_error(ctx, NULL, "path is longer than %zu characters",
                      sizeof(conf->path) - 1);
        goto failed;
    }
    if (text != NULL && tg_conf_lex_ints(ctx->name, text, strlen(text),
                                         ctx->err, ctx->errlen) != TG_OK) {
        goto failed;
    }
    for (i = 0; i < cfg->num_filenames; i++) {
        if (tg_conf_scan_file(ctx, cfg->filenames[i]) != TG_OK) {
            goto failed;
        }
    }
    conf = calloc(1, sizeof(*conf));
    if (conf == NULL) {
        tg_conf_error(ctx, NULL, "out of memory");
        goto failed;
    }
    tg_conf_defaults(conf);
    conf->users = calloc(1, sizeof(tg_conf_user_t));
    if (conf->users == NULL) {
        tg_conf_error(ctx, NULL, "out of memory");
        goto failed;
    }
    snprintf(conf->users[0].name, sizeof(conf->users[0].name), "default");
    conf->groups = malloc(sizeof(tg_conf_group_t));
    if (conf->groups == NULL) {
        tg_conf_error(ctx, NULL, "out of memory");
        goto failed;
    }
    tg_conf_group_defaults(&conf->groups[0], "default");
    conf->ngroups = 1;
    conf->users[0].user_id = 1;
    conf->nusers = 1;
    ctx->conf = conf;
    ctx->user = 0;
    if (tg_conf_parse_group(ctx, config_root_setting(cfg), tg_conf_rules,
                            conf) != TG_OK ||
        tg_conf_finish(ctx, cfg, conf) != TG_OK) {
        goto failed;
    }
    memcpy(conf->path, ctx->name, strlen(ctx->name) + 1);
    return conf;

failed:
    tg_conf_destroy(conf);
    return NULL;
}

/* Report the parse error libconfig recorded in <cfg>. */
static void
tg_conf_syntax_error(tg_conf_ctx_t *ctx, const config_t *cfg)
{
    const char *file = config_error_file(cfg), *text = config_error_text(cfg);

    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
        tg_conf_error_at(ctx, ctx->name, 0, "cannot read file");
        return;
    }
    tg_conf_error_at(ctx, file != NULL ? file : ctx->name,
                     (unsigned)TG_MAX(config_error_line(cfg), 0), "%s",
                     text != NULL ? text : "parse error");
}

/*
 * Load and validate the file at <path> (relative to the working
 * directory).  Returns a new config owned by the caller, to be freed with
 * tg_conf_destroy, or NULL with the first error as "<file>:<line>:
 * <message>" in <err> (truncated to <errlen> bytes; <err> may be NULL).
 * Credentials written "env:NAME" are resolved from the environment here.
 * Blocks on file I/O; master and tests only.
 */
tg_conf_t *
tg_conf_create(const char *path, char *err, size_t errlen)
{
    tg_conf_ctx_t ctx = {.name = path, .err = err, .errlen = errlen};
    tg_conf_t *conf = NULL;
    struct stat st;
    config_t cfg;
    FILE *f;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    /*
     * libconfig reports "file I/O error" without errno; open the file first
     * so the message can say why.
     */
    f = fopen(path, "r");
    if (f == NULL) {
        tg_conf_error_at(&ctx, path, 0, "fopen() failed (%d: %s)", errno,
                         strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        tg_conf_error_at(&ctx, path, 0, "is a directory");
        return NULL;
    }
    fclose(f);
    config_init(&cfg);
    if (config_read_file(&cfg, path) == CONFIG_TRUE) {
        conf = tg_conf_load(&ctx, &cfg, NULL);
    } else {
        tg_conf_syntax_error(&ctx, &cfg);
    }
    config_destroy(&cfg);
    return conf;
}

/*
 * Like tg_conf_create, from the NUL-terminated <text>; <name> (NULL for
 * "<string>") stands for the file in messages and in conf->path.  An
 * @include in <text> is still read from disk.  For tests and the fuzzer.
 */
tg_conf_t *
tg_conf_create_from_string(const char *text, const char *name, char *err,
                           size_t errlen)
{
    tg_conf_ctx_t ctx = {
        .name = name != NULL ? name : "<string>", .err = err, .errlen = errlen};
    tg_conf_t *conf = NULL;
    config_t cfg;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    config_init(&cfg);
    if (config_read_string(&cfg, text) == CONFIG_TRUE) {
        conf = tg_conf_load(&ctx, &cfg, text);
    } else {
        tg_conf_syntax_error(&ctx, &cfg);
    }
    config_destroy(&cfg);
    return conf;
}

/*
 * Free <conf> and everything it owns; NULL is allowed.  Upstream
 * credentials, client keys, the conninfo and the bootstrap password are
 * wiped first.
 */
void
tg_conf_destroy(tg_conf_t *conf)
{
    if (conf == NULL) {
        return;
    }
    if (conf->nendpoints > 0) {
        explicit_bzero(conf->endpoints,
                       conf->nendpoints * sizeof(tg_conf_endpoint_t));
    }
    if (conf->nkeys > 0) {
        explicit_bzero(conf->keys, conf->nkeys * sizeof(tg_conf_key_t));
    }
    explicit_bzero(conf->database, sizeof(conf->database));
    explicit_bzero(conf->bootstrap_password, sizeof(conf->bootstrap_password));
    free(conf->endpoints);
    conf->endpoints = NULL;
    free(conf->models);
    conf->models = NULL;
    free(conf->keys);
    conf->keys = NULL;
    free(conf->users);
    conf->users = NULL;
    free(conf->groups);
    conf->groups = NULL;
    free(conf);
}
