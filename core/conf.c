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
 *      literal that did not fit is an error.
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
#include "core/core.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TG_CONF_MAX_WORKERS   64
#define TG_CONF_MAX_ENDPOINTS 256
#define TG_CONF_MAX_MODELS    1024
#define TG_CONF_MAX_KEYS      4096
#define TG_CONF_MAX_FILE      (16 * 1024 * 1024)
#define TG_CONF_MAX_DEPTH     16
#define TG_CONF_DAY_MS        86400000

/* Setting types, one parser each in tg_conf_parse_value. */
enum {
    TG_CONF_T_GROUP = 0, /* nested group; rule->group, same base object */
    TG_CONF_T_LIST,      /* list handled by rule->list */
    TG_CONF_T_INT,       /* int */
    TG_CONF_T_U32,       /* uint32_t */
    TG_CONF_T_I64,       /* int64_t */
    TG_CONF_T_SIZE,      /* size_t bytes: integer or "32k", "16m", "1g" */
    TG_CONF_T_DURATION,  /* uint32_t ms: seconds as integer or float */
    TG_CONF_T_BOOL,      /* bool */
    TG_CONF_T_STRING,    /* char[size]; min/max are lengths */
    TG_CONF_T_ADDR,      /* char[size] holding a numeric IPv4/IPv6 address */
    TG_CONF_T_ENUM,      /* int: index of the value in rule->words */
    TG_CONF_T_FACTOR     /* uint32_t thousandths: a plain number (0.8) */
};

#define TG_CONF_F_REQUIRED 0x01 /* the group must contain it */
#define TG_CONF_F_TOKEN    0x02 /* printable ASCII without spaces */
#define TG_CONF_F_NAME     0x04 /* only [A-Za-z0-9_.-] */

typedef struct {
    const char *name; /* file named in messages when libconfig has none */
    char *err;        /* caller's buffer, may be NULL */
    size_t errlen;
    tg_conf_t *conf; /* being filled */
    uint32_t user;   /* user that a "keys" list being parsed belongs to */
    bool default_group_set; /* the file configured group "default" */
} tg_conf_ctx_t;

typedef struct tg_conf_rule_s tg_conf_rule_t;

/* <base> is the object the enclosing group fills (tg_conf_t at the top). */
typedef int (*tg_conf_list_pt)(tg_conf_ctx_t *ctx, const config_setting_t *s,
                               void *base);

struct tg_conf_rule_s {
    const char *name;            /* setting name; NULL ends a table */
    int type;                    /* TG_CONF_T_* */
    unsigned flags;              /* TG_CONF_F_* */
    size_t offset;               /* of the field in the object filled */
    size_t size;                 /* strings: size of the char array */
    int64_t min;                 /* integers, sizes; durations in ms; */
    int64_t max;                 /* strings: length bounds */
    const tg_conf_rule_t *group; /* TG_CONF_T_GROUP */
    const char *const *words;    /* TG_CONF_T_ENUM, NULL-terminated */
    tg_conf_list_pt list;        /* TG_CONF_T_LIST */
};

#define TG_CONF_RULE(n, t, f, obj, field, lo, hi)                              \
    {                                                                          \
        .name = (n), .type = (t), .flags = (f),                                \
        .offset = offsetof(obj, field), .size = sizeof(((obj *)0)->field),     \
        .min = (lo), .max = (hi)                                               \
    }

#define TG_CONF_ENUM(n, f, obj, field, w)                                      \
    {                                                                          \
        .name = (n), .type = TG_CONF_T_ENUM, .flags = (f),                     \
        .offset = offsetof(obj, field), .words = (w)                           \
    }

#define TG_CONF_END                                                            \
    {                                                                          \
        .name = NULL                                                           \
    }

/* Shorthands for settings stored in tg_conf_t itself. */
#define TG_CONF_TOP(n, t, field, lo, hi)                                       \
    TG_CONF_RULE(n, t, 0, tg_conf_t, field, lo, hi)
#define TG_CONF_DURATION(n, field)                                             \
    TG_CONF_TOP(n, TG_CONF_T_DURATION, field, 1, TG_CONF_DAY_MS)

_Static_assert(TG_LOG_ERR == 0 && TG_LOG_WARN == 1 && TG_LOG_NOTICE == 2 &&
                   TG_LOG_INFO == 3 && TG_LOG_DEBUG == 4,
               "tg_conf_levels is indexed by TG_LOG_*");
_Static_assert(TG_STYLE_ANTHROPIC == 0 && TG_STYLE_OPENAI == 1,
               "tg_conf_styles is indexed by TG_STYLE_*");
_Static_assert(TG_PRIO_PRIMARY == 0 && TG_PRIO_SECONDARY == 1 &&
                   TG_PRIO_FALLBACK == 2,
               "tg_conf_prios is indexed by TG_PRIO_*");

static const char *const tg_conf_levels[] = {"error", "warn",  "notice",
                                             "info",  "debug", NULL};
static const char *const tg_conf_styles[] = {"anthropic", "openai", NULL};
static const char *const tg_conf_prios[] = {"primary", "secondary", "fallback",
                                            NULL};

static int tg_conf_parse_endpoints(tg_conf_ctx_t *ctx,
                                   const config_setting_t *s, void *base);
static int tg_conf_parse_models(tg_conf_ctx_t *ctx, const config_setting_t *s,
                                void *base);
static int tg_conf_parse_keys(tg_conf_ctx_t *ctx, const config_setting_t *s,
                              void *base);
static int tg_conf_parse_users(tg_conf_ctx_t *ctx, const config_setting_t *s,
                               void *base);
static int tg_conf_parse_key_models(tg_conf_ctx_t *ctx,
                                    const config_setting_t *s, void *base);
static int tg_conf_parse_ep_models(tg_conf_ctx_t *ctx,
                                   const config_setting_t *s, void *base);
static int tg_conf_parse_ep_maps(tg_conf_ctx_t *ctx, const config_setting_t *s,
                                 void *base);
static int tg_conf_parse_groups(tg_conf_ctx_t *ctx, const config_setting_t *s,
                                void *base);
static int tg_conf_parse_group(tg_conf_ctx_t *ctx, const config_setting_t *g,
                               const tg_conf_rule_t *rules, void *base);

static const tg_conf_rule_t tg_conf_listen_rules[] = {
    TG_CONF_TOP("address", TG_CONF_T_ADDR, listen_addr, 1, 63),
    TG_CONF_TOP("port", TG_CONF_T_INT, listen_port, 1, 65535),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_admin_rules[] = {
    TG_CONF_TOP("address", TG_CONF_T_ADDR, admin_addr, 1, 63),
    TG_CONF_TOP("port", TG_CONF_T_INT, admin_port, 0, 65535),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_log_rules[] = {
    TG_CONF_TOP("error", TG_CONF_T_STRING, error_log, 1, 4095),
    TG_CONF_TOP("access", TG_CONF_T_STRING, access_log, 1, 4095),
    TG_CONF_TOP("events", TG_CONF_T_STRING, events_log, 1, 4095),
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
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_shm_rules[] = {
    TG_CONF_TOP("max_keys", TG_CONF_T_U32, max_keys, 16, 100000000),
    TG_CONF_TOP("max_users", TG_CONF_T_U32, max_users, 1, 10000000),
    TG_CONF_TOP("max_endpoints", TG_CONF_T_U32, max_endpoints, 1, 65536),
    TG_CONF_TOP("max_sticky", TG_CONF_T_U32, max_sticky, 1024, 16777216),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_usage_rules[] = {
    TG_CONF_TOP("ring_slots", TG_CONF_T_U32, usage_ring, 64, 16777216),
    TG_CONF_TOP("spool_dir", TG_CONF_T_STRING, spool_dir, 1, 4000),
    TG_CONF_TOP("log", TG_CONF_T_STRING, usage_log, 1, 4095),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_rules[] = {
    {.name = "listen", .type = TG_CONF_T_GROUP, .group = tg_conf_listen_rules},
    TG_CONF_TOP("workers", TG_CONF_T_INT, workers, 1, TG_CONF_MAX_WORKERS),
    {.name = "admin", .type = TG_CONF_T_GROUP, .group = tg_conf_admin_rules},
    TG_CONF_TOP("pid_file", TG_CONF_T_STRING, pid_file, 1, 4095),
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

#define TG_CONF_EP(n, t, f, field, lo, hi)                                     \
    TG_CONF_RULE(n, t, f, tg_conf_endpoint_t, field, lo, hi)

static const tg_conf_rule_t tg_conf_endpoint_rules[] = {
    TG_CONF_EP("name", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_NAME,
               name, 1, 63),
    TG_CONF_EP("url", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN,
               url, 1, 511),
    TG_CONF_ENUM("style", TG_CONF_F_REQUIRED, tg_conf_endpoint_t, style,
                 tg_conf_styles),
    TG_CONF_EP("credential", TG_CONF_T_STRING, TG_CONF_F_REQUIRED, credential,
               1, 511),
    TG_CONF_EP("weight", TG_CONF_T_U32, 0, weight, 1, 1000),
    TG_CONF_ENUM("priority", 0, tg_conf_endpoint_t, priority, tg_conf_prios),
    TG_CONF_EP("group", TG_CONF_T_STRING, TG_CONF_F_NAME, group_name, 1, 63),
    TG_CONF_EP("enabled", TG_CONF_T_BOOL, 0, enabled, 0, 1),
    TG_CONF_EP("price_factor", TG_CONF_T_FACTOR, 0, price_milli, 1, 1000000),
    {.name = "models", .type = TG_CONF_T_LIST, .list = tg_conf_parse_ep_models},
    {.name = "model_map",
     .type = TG_CONF_T_LIST,
     .list = tg_conf_parse_ep_maps},
    TG_CONF_EP("proxy", TG_CONF_T_STRING, TG_CONF_F_TOKEN, proxy, 1, 511),
    TG_CONF_EP("connect_timeout", TG_CONF_T_DURATION, 0, connect_timeout_ms, 1,
               TG_CONF_DAY_MS),
    TG_CONF_EP("first_byte_timeout", TG_CONF_T_DURATION, 0,
               first_byte_timeout_ms, 1, TG_CONF_DAY_MS),
    TG_CONF_EP("read_timeout", TG_CONF_T_DURATION, 0, read_timeout_ms, 1,
               TG_CONF_DAY_MS),
    TG_CONF_EP("total_timeout", TG_CONF_T_DURATION, 0, total_timeout_ms, 1,
               TG_CONF_DAY_MS),
    TG_CONF_EP("tls_verify", TG_CONF_T_BOOL, 0, tls_verify, 0, 1),
    TG_CONF_EP("health_path", TG_CONF_T_STRING, TG_CONF_F_TOKEN, health_path, 1,
               255),
    /* 0 turns active health checks off for this endpoint. */
    TG_CONF_EP("health_interval", TG_CONF_T_DURATION, 0, health_interval_ms, 0,
               TG_CONF_DAY_MS),
    TG_CONF_EP("health_timeout", TG_CONF_T_DURATION, 0, health_timeout_ms, 1,
               TG_CONF_DAY_MS),
    TG_CONF_EP("quota_cooldown", TG_CONF_T_DURATION, 0, quota_cooldown_ms, 1,
               TG_CONF_DAY_MS * 31u),
    TG_CONF_END,
};

static const char *const tg_conf_strategies[] = {
    "round-robin", "weighted", "least-connections", "latency", "cost", NULL};

#define TG_CONF_GROUP(n, t, f, field, lo, hi)                                  \
    TG_CONF_RULE(n, t, f, tg_conf_group_t, field, lo, hi)

static const tg_conf_rule_t tg_conf_group_rules[] = {
    TG_CONF_GROUP("name", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_NAME,
                  name, 1, 63),
    TG_CONF_ENUM("strategy", 0, tg_conf_group_t, strategy, tg_conf_strategies),
    TG_CONF_GROUP("failure_threshold", TG_CONF_T_U32, 0, failure_threshold, 1,
                  1000),
    TG_CONF_GROUP("cooldown", TG_CONF_T_DURATION, 0, cooldown_ms, 1,
                  TG_CONF_DAY_MS),
    TG_CONF_GROUP("max_retries", TG_CONF_T_U32, 0, max_retries, 0, 16),
    TG_CONF_GROUP("retry_deadline", TG_CONF_T_DURATION, 0, retry_deadline_ms, 1,
                  TG_CONF_DAY_MS),
    TG_CONF_GROUP("sticky", TG_CONF_T_BOOL, 0, sticky, 0, 1),
    TG_CONF_GROUP("sticky_ttl", TG_CONF_T_DURATION, 0, sticky_ttl_ms, 1,
                  TG_CONF_DAY_MS * 7u),
    TG_CONF_GROUP("exploration", TG_CONF_T_FACTOR, 0, explore_milli, 0, 500),
    TG_CONF_END,
};

#define TG_CONF_MODEL(n, t, f, field, lo, hi)                                  \
    TG_CONF_RULE(n, t, f, tg_conf_model_t, field, lo, hi)

/* A model given as a plain string is its id. */
static const tg_conf_rule_t tg_conf_model_id_rule = TG_CONF_MODEL(
    "id", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN, id, 1, 127);

static const tg_conf_rule_t tg_conf_model_rules[] = {
    TG_CONF_MODEL("id", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN,
                  id, 1, 127),
    TG_CONF_MODEL("display_name", TG_CONF_T_STRING, 0, display_name, 1, 127),
    /* Up to 9999-12-31T23:59:59Z. */
    TG_CONF_MODEL("created", TG_CONF_T_I64, 0, created, 0,
                  INT64_C(253402300799)),
    TG_CONF_MODEL("owned_by", TG_CONF_T_STRING, TG_CONF_F_TOKEN, owned_by, 1,
                  63),
    TG_CONF_END,
};

static const tg_conf_rule_t tg_conf_key_rule = TG_CONF_RULE(
    "key", TG_CONF_T_STRING, TG_CONF_F_TOKEN, tg_conf_key_t, key, 16, 127);

#define TG_CONF_KEY(n, t, f, field, lo, hi)                                    \
    TG_CONF_RULE(n, t, f, tg_conf_key_t, field, lo, hi)

/* A key given as a group: the key and its limits. */
static const tg_conf_rule_t tg_conf_key_rules[] = {
    TG_CONF_KEY("key", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN,
                key, 16, 127),
    TG_CONF_KEY("disabled", TG_CONF_T_BOOL, 0, disabled, 0, 1),
    /* Up to 9999-12-31T23:59:59Z. */
    TG_CONF_KEY("expires", TG_CONF_T_I64, 0, expires, 0, INT64_C(253402300799)),
    TG_CONF_KEY("rpm", TG_CONF_T_U32, 0, rpm, 0, 100000000),
    TG_CONF_KEY("burst", TG_CONF_T_U32, 0, burst, 1, 100000000),
    TG_CONF_KEY("tpm", TG_CONF_T_U32, 0, tpm, 0, 4000000000u),
    TG_CONF_KEY("concurrency", TG_CONF_T_U32, 0, concurrency, 0, 1000000),
    TG_CONF_KEY("group", TG_CONF_T_STRING, TG_CONF_F_NAME, group_name, 1, 63),
    {.name = "models",
     .type = TG_CONF_T_LIST,
     .list = tg_conf_parse_key_models},
    TG_CONF_END,
};

static const char *const tg_conf_periods[] = {"none", "day", "month", NULL};

#define TG_CONF_USER(n, t, f, field, lo, hi)                                   \
    TG_CONF_RULE(n, t, f, tg_conf_user_t, field, lo, hi)

static const tg_conf_rule_t tg_conf_user_rules[] = {
    TG_CONF_USER("name", TG_CONF_T_STRING, TG_CONF_F_REQUIRED | TG_CONF_F_NAME,
                 name, 1, 63),
    TG_CONF_USER("disabled", TG_CONF_T_BOOL, 0, disabled, 0, 1),
    TG_CONF_USER("quota_tokens", TG_CONF_T_I64, 0, quota_tokens, 0, INT64_MAX),
    TG_CONF_ENUM("quota_period", 0, tg_conf_user_t, quota_period,
                 tg_conf_periods),
    {.name = "keys", .type = TG_CONF_T_LIST, .list = tg_conf_parse_keys},
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

/*
 * Error reporting.  Every message is lower case without a trailing period;
 * secrets (credentials, client keys) are never quoted back.
 */

static int tg_conf_verror(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                          const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int tg_conf_error_at(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int tg_conf_error(tg_conf_ctx_t *ctx, const config_setting_t *s,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg_conf_invalid(tg_conf_ctx_t *ctx, const config_setting_t *s,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
tg_conf_verror(tg_conf_ctx_t *ctx, const char *file, unsigned line,
               const char *fmt, va_list ap)
{
    char msg[1024];

    if (ctx->err == NULL || ctx->errlen == 0) {
        return TG_ERROR;
    }
    /* A message cut short by the buffer is still the right message. */
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0) {
        snprintf(ctx->err, ctx->errlen, "%s:%u: %s", file, line, msg);
    } else {
        snprintf(ctx->err, ctx->errlen, "%s: %s", file, msg);
    }
    return TG_ERROR;
}

/* Report "<file>:<line>: <message>"; always returns TG_ERROR. */
static int
tg_conf_error_at(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tg_conf_verror(ctx, file, line, fmt, ap);
    va_end(ap);
    return TG_ERROR;
}

/*
 * Report a problem with setting <s> at its file and line; <s> NULL means
 * the whole file.  Always returns TG_ERROR.
 */
static int
tg_conf_error(tg_conf_ctx_t *ctx, const config_setting_t *s, const char *fmt,
              ...)
{
    const char *file = ctx->name;
    unsigned line = 0;
    va_list ap;

    if (s != NULL) {
        if (config_setting_source_file(s) != NULL) {
            file = config_setting_source_file(s);
        }
        line = config_setting_source_line(s);
    }
    va_start(ap, fmt);
    tg_conf_verror(ctx, file, line, fmt, ap);
    va_end(ap);
    return TG_ERROR;
}

/*
 * Write the path of <s> ("limits.header_bytes", "endpoints[1].url") into
 * <buf>; the root is "".
 */
static void
tg_conf_path(const config_setting_t *s, char *buf, size_t size)
{
    const config_setting_t *chain[TG_CONF_MAX_DEPTH];
    size_t n = 0, len = 0;
    int r;

    while (s != NULL && !config_setting_is_root(s) && n < TG_CONF_MAX_DEPTH) {
        chain[n++] = s;
        s = config_setting_parent(s);
    }
    buf[0] = '\0';
    while (n-- > 0) {
        s = chain[n];
        if (config_setting_name(s) != NULL) {
            r = snprintf(buf + len, size - len, "%s%s", len ? "." : "",
                         config_setting_name(s));
        } else {
            r = snprintf(buf + len, size - len, "[%d]",
                         config_setting_index(s));
        }
        if (r < 0 || (size_t)r >= size - len) {
            break;
        }
        len += (size_t)r;
    }
}

/* Report "<file>:<line>: <path of s> <message>"; returns TG_ERROR. */
static int
tg_conf_invalid(tg_conf_ctx_t *ctx, const config_setting_t *s, const char *fmt,
                ...)
{
    char path[256], msg[768];
    va_list ap;

    tg_conf_path(s, path, sizeof(path));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tg_conf_error(ctx, s, "%s %s", path, msg);
}

/*
 * The integer scan (see NOTES).  It runs only on text libconfig accepted,
 * so it may be simple about malformed input; it must only never misread a
 * comment, a string or a name as a number.
 */

static bool
tg_conf_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool
tg_conf_is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
tg_conf_hex_value(int c)
{
    if (tg_conf_is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Skip a float's tail ("5.", ".25", "1e-3") from <p>; returns the end. */
static const char *
tg_conf_skip_float(const char *p, const char *end)
{
    while (p < end) {
        if (tg_conf_is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E') {
            p++;
        } else if ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E')) {
            p++;
        } else {
            break;
        }
    }
    return p;
}

/*
 * Read the number at *<pp> (sign, decimal or hex digits, L suffix, or a
 * float), advance *<pp> past it and report an integer that libconfig
 * could not have stored as written.
 */
static int
tg_conf_scan_number(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                    const char **pp, const char *end)
{
    const char *p = *pp, *start = *pp;
    uint64_t v = 0, limit, base = 10;
    bool neg = false, overflow = false, is64 = false;
    int d, n;

    if (*p == '-' || *p == '+') {
        neg = (*p == '-');
        p++;
    }
    if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        tg_conf_hex_value(p[2]) >= 0) {
        base = 16;
        p += 2;
    }
    for (; p < end; p++) {
        d = (base == 16) ? tg_conf_hex_value(*p)
                         : (tg_conf_is_digit(*p) ? *p - '0' : -1);
        if (d < 0) {
            break;
        }
        if (v > (UINT64_MAX - (uint64_t)d) / base) {
            overflow = true;
        } else {
            v = v * base + (uint64_t)d;
        }
    }
    if (base == 10 && p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        *pp = tg_conf_skip_float(p, end);
        return TG_OK;
    }
    if (p < end && *p == 'L') {
        is64 = true;
        p += (p + 1 < end && p[1] == 'L') ? 2 : 1;
    }
    *pp = p;
    limit = is64 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
    if (!overflow && v <= limit + (neg ? 1 : 0)) {
        return TG_OK;
    }
    n = (int)TG_MIN(p - start, 40);
    if (!is64 && !overflow && v <= (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return tg_conf_error_at(ctx, file, line,
                                "integer %.*s does not fit in 32 bits; write "
                                "%.*sL for a 64-bit integer",
                                n, start, n, start);
    }
    return tg_conf_error_at(ctx, file, line,
                            "integer %.*s does not fit in 64 bits", n, start);
}

/* Skip a string body after its opening quote; returns past the close. */
static const char *
tg_conf_skip_string(const char *p, const char *end, unsigned *line)
{
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            p++;
        }
        if (*p == '\n') {
            (*line)++;
        }
        p++;
    }
    return p < end ? p + 1 : end;
}

/* Skip a block comment after its opening "/" "*"; returns past the end. */
static const char *
tg_conf_skip_comment(const char *p, const char *end, unsigned *line)
{
    while (p < end && !(*p == '*' && p + 1 < end && p[1] == '/')) {
        if (*p == '\n') {
            (*line)++;
        }
        p++;
    }
    return p < end ? p + 2 : end;
}

/*
 * Scan <len> bytes of <text>, which libconfig read from <file>, for
 * integer literals that do not fit.  TG_OK or TG_ERROR.
 */
static int
tg_conf_scan_ints(tg_conf_ctx_t *ctx, const char *file, const char *text,
                  size_t len)
{
    const char *p = text, *end = text + len;
    unsigned line = 1;

    while (p < end) {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            p = tg_conf_skip_comment(p + 2, end, &line);
        } else if (*p == '"') {
            p = tg_conf_skip_string(p + 1, end, &line);
        } else if (tg_conf_is_alpha(*p) || *p == '*') {
            /* A name (or true/false); it may hold digits and '-'. */
            while (p < end && (tg_conf_is_alpha(*p) || tg_conf_is_digit(*p) ||
                               *p == '_' || *p == '-' || *p == '*')) {
                p++;
            }
        } else if (tg_conf_is_digit(*p) ||
                   ((*p == '-' || *p == '+' || *p == '.') && p + 1 < end &&
                    (tg_conf_is_digit(p[1]) || p[1] == '.'))) {
            if (tg_conf_scan_number(ctx, file, line, &p, end) != TG_OK) {
                return TG_ERROR;
            }
        } else {
            p++;
        }
    }
    return TG_OK;
}

/* Read <file> (which libconfig read just before) and scan it. */
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
    rc = tg_conf_scan_ints(ctx, file, text, len);

done:
    free(text);
    fclose(f);
    return rc;
}

/*
 * Value parsers.  Each checks the type and range of setting <s> against
 * <rule>, and returns TG_OK or TG_ERROR after reporting.
 */

static int
tg_conf_get_int(tg_conf_ctx_t *ctx, const config_setting_t *s,
                const tg_conf_rule_t *rule, int64_t *v)
{
    int type = config_setting_type(s);

    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
        return tg_conf_invalid(ctx, s, "must be an integer");
    }
    *v = config_setting_get_int64(s);
    if (*v < rule->min || *v > rule->max) {
        return tg_conf_invalid(ctx, s,
                               "must be between %" PRId64 " and %" PRId64,
                               rule->min, rule->max);
    }
    return TG_OK;
}

/* Parse "<digits>[kKmMgG]" (binary multiples); false when malformed. */
static bool
tg_conf_size_parse(const char *p, int64_t *v)
{
    int64_t n = 0, mult = 1;

    if (!tg_conf_is_digit(*p)) {
        return false;
    }
    for (; tg_conf_is_digit(*p); p++) {
        if (n > (INT64_MAX - (*p - '0')) / 10) {
            return false;
        }
        n = n * 10 + (*p - '0');
    }
    switch (*p) {
    case 'k':
    case 'K':
        mult = INT64_C(1) << 10;
        break;
    case 'm':
    case 'M':
        mult = INT64_C(1) << 20;
        break;
    case 'g':
    case 'G':
        mult = INT64_C(1) << 30;
        break;
    case '\0':
        break;
    default:
        return false;
    }
    if (*p != '\0' && p[1] != '\0') {
        return false;
    }
    if (n > INT64_MAX / mult) {
        return false;
    }
    *v = n * mult;
    return true;
}

static int
tg_conf_get_size(tg_conf_ctx_t *ctx, const config_setting_t *s,
                 const tg_conf_rule_t *rule, int64_t *v)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        *v = config_setting_get_int64(s);
        break;
    case CONFIG_TYPE_STRING:
        if (!tg_conf_size_parse(config_setting_get_string(s), v)) {
            return tg_conf_invalid(ctx, s,
                                   "must be a number of bytes, such as "
                                   "65536 or \"64k\"");
        }
        break;
    default:
        return tg_conf_invalid(ctx, s,
                               "must be a number of bytes, such as 65536 or "
                               "\"64k\"");
    }
    if (*v < rule->min || *v > rule->max) {
        return tg_conf_invalid(ctx, s,
                               "must be between %" PRId64 " and %" PRId64,
                               rule->min, rule->max);
    }
    return TG_OK;
}

/* Format <ms> as seconds without trailing zeros ("0.5", "86400"). */
static void
tg_conf_seconds(int64_t ms, char *buf, size_t size)
{
    size_t len;

    if (ms % 1000 == 0) {
        snprintf(buf, size, "%" PRId64, ms / 1000);
        return;
    }
    snprintf(buf, size, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    len = strlen(buf);
    while (len > 0 && buf[len - 1] == '0') {
        buf[--len] = '\0';
    }
}

static int
tg_conf_get_milli(tg_conf_ctx_t *ctx, const config_setting_t *s,
                  const tg_conf_rule_t *rule, uint32_t *ms, const char *unit)
{
    char lo[32], hi[32];
    int64_t v, n = -1;
    double d;

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        v = config_setting_get_int64(s);
        if (v >= 0 && v <= rule->max / 1000) {
            n = v * 1000;
        }
        break;
    case CONFIG_TYPE_FLOAT:
        /* Written so that NaN fails the test too. */
        d = config_setting_get_float(s);
        if (d >= 0.0 && d * 1000.0 <= (double)rule->max) {
            n = (int64_t)(d * 1000.0 + 0.5);
        }
        break;
    default:
        return tg_conf_invalid(ctx, s, "must be a number%s%s",
                               unit[0] ? " of " : "", unit);
    }
    if (n < rule->min || n > rule->max) {
        tg_conf_seconds(rule->min, lo, sizeof(lo));
        tg_conf_seconds(rule->max, hi, sizeof(hi));
        return tg_conf_invalid(ctx, s, "must be between %s and %s%s%s", lo, hi,
                               unit[0] ? " " : "", unit);
    }
    *ms = (uint32_t)n;
    return TG_OK;
}

/*
 * Check the string setting <s> against <rule> and copy it into <dst>
 * (rule->size bytes).
 */
static int
tg_conf_get_string(tg_conf_ctx_t *ctx, const config_setting_t *s,
                   const tg_conf_rule_t *rule, char *dst)
{
    const unsigned char *p;
    const char *v;
    size_t len, max;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        return tg_conf_invalid(ctx, s, "must be a string");
    }
    v = config_setting_get_string(s);
    len = strlen(v);
    max = TG_MIN((size_t)rule->max, rule->size - 1);
    if (len == 0 && rule->min > 0) {
        return tg_conf_invalid(ctx, s, "must not be empty");
    }
    if (len < (size_t)rule->min) {
        return tg_conf_invalid(
            ctx, s, "must be at least %" PRId64 " characters", rule->min);
    }
    if (len > max) {
        return tg_conf_invalid(ctx, s, "must be at most %zu characters", max);
    }
    for (p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((rule->flags & TG_CONF_F_NAME) && !tg_conf_is_alpha(*p) &&
            !tg_conf_is_digit(*p) && *p != '_' && *p != '.' && *p != '-') {
            return tg_conf_invalid(ctx, s,
                                   "must contain only letters, digits, \"_\", "
                                   "\".\" and \"-\"");
        }
        if ((rule->flags & TG_CONF_F_TOKEN) && (*p <= 0x20 || *p >= 0x7f)) {
            return tg_conf_invalid(ctx, s,
                                   "must contain only printable ASCII "
                                   "characters, without spaces");
        }
        if (*p < 0x20 || *p == 0x7f) {
            return tg_conf_invalid(ctx, s,
                                   "must not contain control characters");
        }
    }
    memcpy(dst, v, len + 1);
    return TG_OK;
}

static int
tg_conf_get_addr(tg_conf_ctx_t *ctx, const config_setting_t *s,
                 const tg_conf_rule_t *rule, char *dst)
{
    unsigned char bin[sizeof(struct in6_addr)];

    if (tg_conf_get_string(ctx, s, rule, dst) != TG_OK) {
        return TG_ERROR;
    }
    if (inet_pton(AF_INET, dst, bin) != 1 &&
        inet_pton(AF_INET6, dst, bin) != 1) {
        return tg_conf_invalid(ctx, s, "must be an IPv4 or IPv6 address");
    }
    return TG_OK;
}

static int
tg_conf_get_enum(tg_conf_ctx_t *ctx, const config_setting_t *s,
                 const tg_conf_rule_t *rule, int *v)
{
    char list[256];
    size_t i, len = 0;
    const char *word;
    int r;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        word = config_setting_get_string(s);
        for (i = 0; rule->words[i] != NULL; i++) {
            if (strcmp(word, rule->words[i]) == 0) {
                *v = (int)i;
                return TG_OK;
            }
        }
    }
    /* "a", "b" or "c" */
    list[0] = '\0';
    for (i = 0; rule->words[i] != NULL && len < sizeof(list); i++) {
        r = snprintf(list + len, sizeof(list) - len, "%s\"%s\"",
                     i == 0                       ? ""
                     : rule->words[i + 1] == NULL ? " or "
                                                  : ", ",
                     rule->words[i]);
        if (r < 0) {
            break;
        }
        len += (size_t)r;
    }
    return tg_conf_invalid(ctx, s, "must be %s", list);
}

/* Parse <s> per <rule> into the field of <base> that rule->offset names. */
static int
tg_conf_parse_value(tg_conf_ctx_t *ctx, const config_setting_t *s,
                    const tg_conf_rule_t *rule, void *base)
{
    char *field = (char *)base + rule->offset;
    int64_t v = 0;

    switch (rule->type) {
    case TG_CONF_T_GROUP:
        if (!config_setting_is_group(s)) {
            return tg_conf_invalid(ctx, s, "must be a group");
        }
        return tg_conf_parse_group(ctx, s, rule->group, base);
    case TG_CONF_T_LIST:
        return rule->list(ctx, s, base);
    case TG_CONF_T_INT:
    case TG_CONF_T_U32:
    case TG_CONF_T_I64:
        if (tg_conf_get_int(ctx, s, rule, &v) != TG_OK) {
            return TG_ERROR;
        }
        if (rule->type == TG_CONF_T_INT) {
            *(int *)(void *)field = (int)v;
        } else if (rule->type == TG_CONF_T_U32) {
            *(uint32_t *)(void *)field = (uint32_t)v;
        } else {
            *(int64_t *)(void *)field = v;
        }
        return TG_OK;
    case TG_CONF_T_SIZE:
        if (tg_conf_get_size(ctx, s, rule, &v) != TG_OK) {
            return TG_ERROR;
        }
        *(size_t *)(void *)field = (size_t)v;
        return TG_OK;
    case TG_CONF_T_DURATION:
        return tg_conf_get_milli(ctx, s, rule, (uint32_t *)(void *)field,
                                 "seconds");
    case TG_CONF_T_FACTOR:
        return tg_conf_get_milli(ctx, s, rule, (uint32_t *)(void *)field, "");
    case TG_CONF_T_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
            return tg_conf_invalid(ctx, s, "must be true or false");
        }
        *(bool *)(void *)field = config_setting_get_bool(s) != 0;
        return TG_OK;
    case TG_CONF_T_STRING:
        return tg_conf_get_string(ctx, s, rule, field);
    case TG_CONF_T_ADDR:
        return tg_conf_get_addr(ctx, s, rule, field);
    case TG_CONF_T_ENUM:
        return tg_conf_get_enum(ctx, s, rule, (int *)(void *)field);
    }
    TG_ASSERT(0);
    return TG_ERROR;
}

/*
 * Parse the members of group <g> in file order against the table <rules>,
 * storing into <base>; then check that every required member is present.
 */
static int
tg_conf_parse_group(tg_conf_ctx_t *ctx, const config_setting_t *g,
                    const tg_conf_rule_t *rules, void *base)
{
    const tg_conf_rule_t *rule;
    const config_setting_t *s;
    char path[256];
    int i, n;

    n = config_setting_length(g);
    for (i = 0; i < n; i++) {
        s = config_setting_get_elem(g, (unsigned)i);
        for (rule = rules; rule->name != NULL; rule++) {
            if (strcmp(rule->name, config_setting_name(s)) == 0) {
                break;
            }
        }
        if (rule->name == NULL) {
            tg_conf_path(s, path, sizeof(path));
            return tg_conf_error(ctx, s, "unknown setting \"%s\"", path);
        }
        if (tg_conf_parse_value(ctx, s, rule, base) != TG_OK) {
            return TG_ERROR;
        }
    }
    for (rule = rules; rule->name != NULL; rule++) {
        if ((rule->flags & TG_CONF_F_REQUIRED) &&
            config_setting_get_member(g, rule->name) == NULL) {
            return tg_conf_invalid(ctx, g, "has no \"%s\" setting", rule->name);
        }
    }
    return TG_OK;
}

/*
 * Check that <s> is a list or an array of <min>..<max> elements and store
 * its length in <n>.
 */
static int
tg_conf_get_list(tg_conf_ctx_t *ctx, const config_setting_t *s, int min,
                 int max, size_t *n)
{
    int len;

    if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
        return tg_conf_invalid(ctx, s, "must be a list");
    }
    len = config_setting_length(s);
    if (len < min) {
        return tg_conf_invalid(ctx, s, "must not be empty");
    }
    if (len > max) {
        return tg_conf_invalid(ctx, s, "must have at most %d entries", max);
    }
    *n = (size_t)len;
    return TG_OK;
}

/*
 * Endpoints.
 */

static bool
tg_conf_is_host_char(int c)
{
    return tg_conf_is_alpha(c) || tg_conf_is_digit(c) || c == '-' || c == '.' ||
           c == '_';
}

/*
 * Check the authority of a URL, <p> up to <last>: a host name, IPv4
 * address or bracketed IPv6 address, and an optional port.
 */
static int
tg_conf_check_authority(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        const char *p, const char *last)
{
    const char *host, *q;
    long port = 0;

    if (memchr(p, '@', (size_t)(last - p)) != NULL) {
        return tg_conf_invalid(ctx, s,
                               "must not contain user information; use "
                               "credential");
    }
    if (*p == '[') {
        host = p + 1;
        q = memchr(host, ']', (size_t)(last - host));
        if (q == NULL) {
            return tg_conf_invalid(ctx, s, "has an invalid host");
        }
        for (p = host; p < q; p++) {
            if (tg_conf_hex_value(*p) < 0 && *p != ':' && *p != '.') {
                return tg_conf_invalid(ctx, s, "has an invalid host");
            }
        }
        p = q + 1;
    } else {
        host = p;
        for (q = p; q < last && *q != ':'; q++) {
            if (!tg_conf_is_host_char(*q)) {
                return tg_conf_invalid(ctx, s, "has an invalid host");
            }
        }
        p = q;
    }
    if (q == host) {
        return tg_conf_invalid(ctx, s, "has no host");
    }
    if (p == last) {
        return TG_OK;
    }
    if (*p != ':' || last - p < 2 || last - p > 6) {
        return tg_conf_invalid(ctx, s, "has an invalid port");
    }
    for (p++; p < last; p++) {
        if (!tg_conf_is_digit(*p)) {
            return tg_conf_invalid(ctx, s, "has an invalid port");
        }
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) {
        return tg_conf_invalid(ctx, s, "has an invalid port");
    }
    return TG_OK;
}

/*
 * Check the endpoint URL <url> (already a bounded token) of setting <s>
 * and strip its trailing slashes in place.
 */
static int
tg_conf_check_url(tg_conf_ctx_t *ctx, const config_setting_t *s, char *url)
{
    size_t len = strlen(url), plen;
    char *p, *last;

    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
    } else {
        return tg_conf_invalid(ctx, s, "must start with http:// or https://");
    }
    if (strpbrk(url, "?#") != NULL) {
        return tg_conf_invalid(ctx, s, "must not contain a query or fragment");
    }
    last = p + strcspn(p, "/");
    if (last == p) {
        return tg_conf_invalid(ctx, s, "has no host");
    }
    if (tg_conf_check_authority(ctx, s, p, last) != TG_OK) {
        return TG_ERROR;
    }
    plen = (size_t)(last - url);
    while (len > plen && url[len - 1] == '/') {
        url[--len] = '\0';
    }
    return TG_OK;
}

/*
 * Replace a credential written "env:NAME" by the value of $NAME.  The
 * value is never quoted in messages.
 */
static int
tg_conf_resolve_credential(tg_conf_ctx_t *ctx, const config_setting_t *s,
                           tg_conf_endpoint_t *ep)
{
    const char *name, *v, *p;
    size_t len;

    if (strncmp(ep->credential, "env:", 4) != 0) {
        return TG_OK;
    }
    name = ep->credential + 4;
    for (p = name; *p != '\0'; p++) {
        if (!tg_conf_is_alpha(*p) && *p != '_' &&
            (p == name || !tg_conf_is_digit(*p))) {
            break;
        }
    }
    if (p == name || *p != '\0') {
        return tg_conf_invalid(ctx, s,
                               "must name an environment variable after "
                               "\"env:\" (letters, digits and \"_\")");
    }
    v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        return tg_conf_invalid(ctx, s,
                               "names environment variable %s, which %s", name,
                               v == NULL ? "is not set" : "is empty");
    }
    len = strlen(v);
    if (len >= sizeof(ep->credential)) {
        return tg_conf_invalid(ctx, s,
                               "names environment variable %s, whose value is "
                               "longer than %zu characters",
                               name, sizeof(ep->credential) - 1);
    }
    for (p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return tg_conf_invalid(ctx, s,
                                   "names environment variable %s, whose "
                                   "value contains control characters",
                                   name);
        }
    }
    memcpy(ep->credential, v, len + 1);
    return TG_OK;
}

/* Parse and check element <i> of the endpoints list <list>. */
static int
tg_conf_parse_endpoint(tg_conf_ctx_t *ctx, const config_setting_t *list,
                       unsigned i, tg_conf_t *conf)
{
    const config_setting_t *e = config_setting_get_elem(list, i), *o;
    tg_conf_endpoint_t *ep = &conf->endpoints[i];
    char path[256];
    unsigned j;

    if (!config_setting_is_group(e)) {
        return tg_conf_invalid(ctx, e, "must be a group");
    }
    ep->weight = 1;
    ep->priority = TG_PRIO_PRIMARY;
    ep->enabled = true;
    ep->price_milli = 1000;
    ep->health_interval_ms = 30000;
    ep->health_timeout_ms = 5000;
    ep->quota_cooldown_ms = 3600000;
    snprintf(ep->group_name, sizeof(ep->group_name), "default");
    snprintf(ep->health_path, sizeof(ep->health_path), "/v1/models");
    if (tg_conf_parse_group(ctx, e, tg_conf_endpoint_rules, ep) != TG_OK) {
        return TG_ERROR;
    }
    ep->tls_verify_inherit = config_setting_get_member(e, "tls_verify") == NULL;
    if (ep->health_path[0] != '/') {
        return tg_conf_invalid(ctx, config_setting_get_member(e, "health_path"),
                               "must start with /");
    }
    if (ep->proxy[0] != '\0' && strncmp(ep->proxy, "http://", 7) != 0 &&
        strncmp(ep->proxy, "https://", 8) != 0 &&
        strncmp(ep->proxy, "socks5://", 9) != 0 &&
        strncmp(ep->proxy, "socks5h://", 10) != 0) {
        return tg_conf_invalid(ctx, config_setting_get_member(e, "proxy"),
                               "must start with http://, https://, socks5:// "
                               "or socks5h://");
    }
    for (j = 0; j < i; j++) {
        if (strcmp(conf->endpoints[j].name, ep->name) == 0) {
            o = config_setting_get_elem(list, j);
            tg_conf_path(o, path, sizeof(path));
            return tg_conf_invalid(ctx, config_setting_get_member(e, "name"),
                                   "\"%s\" duplicates %s.name", ep->name, path);
        }
    }
    if (tg_conf_check_url(ctx, config_setting_get_member(e, "url"), ep->url) !=
        TG_OK) {
        return TG_ERROR;
    }
    return tg_conf_resolve_credential(
        ctx, config_setting_get_member(e, "credential"), ep);
}

static int
tg_conf_parse_endpoints(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        void *base)
{
    tg_conf_t *conf = base;
    size_t n, i;

    if (tg_conf_get_list(ctx, s, 1, TG_CONF_MAX_ENDPOINTS, &n) != TG_OK) {
        return TG_ERROR;
    }
    conf->endpoints = calloc(n, sizeof(tg_conf_endpoint_t));
    if (conf->endpoints == NULL) {
        return tg_conf_error(ctx, s, "out of memory");
    }
    conf->nendpoints = n;
    for (i = 0; i < n; i++) {
        if (tg_conf_parse_endpoint(ctx, s, (unsigned)i, conf) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

/*
 * Models.
 */

/* The default owned_by for model <id>. */
static const char *
tg_conf_model_owner(const char *id)
{
    static const char *const openai[] = {"gpt", "o1", "o3", "o4"};
    size_t i;

    if (strncmp(id, "claude", 6) == 0) {
        return "anthropic";
    }
    for (i = 0; i < TG_NELEMS(openai); i++) {
        if (strncmp(id, openai[i], strlen(openai[i])) == 0) {
            return "openai";
        }
    }
    return "system";
}

/* Parse element <i> of the models list <list>: a string or a group. */
static int
tg_conf_parse_model(tg_conf_ctx_t *ctx, const config_setting_t *list,
                    unsigned i, tg_conf_t *conf)
{
    const config_setting_t *e = config_setting_get_elem(list, i), *id, *o;
    tg_conf_model_t *m = &conf->models[i];
    char path[256];
    unsigned j;

    if (config_setting_type(e) == CONFIG_TYPE_STRING) {
        id = e;
        if (tg_conf_parse_value(ctx, e, &tg_conf_model_id_rule, m) != TG_OK) {
            return TG_ERROR;
        }
    } else if (config_setting_is_group(e)) {
        if (tg_conf_parse_group(ctx, e, tg_conf_model_rules, m) != TG_OK) {
            return TG_ERROR;
        }
        id = config_setting_get_member(e, "id");
    } else {
        return tg_conf_invalid(ctx, e, "must be a string or a group");
    }
    for (j = 0; j < i; j++) {
        if (strcmp(conf->models[j].id, m->id) == 0) {
            o = config_setting_get_elem(list, j);
            tg_conf_path(o, path, sizeof(path));
            return tg_conf_invalid(ctx, id, "\"%s\" duplicates %s", m->id,
                                   path);
        }
    }
    if (m->display_name[0] == '\0') {
        memcpy(m->display_name, m->id, sizeof(m->display_name));
    }
    if (m->owned_by[0] == '\0') {
        snprintf(m->owned_by, sizeof(m->owned_by), "%s",
                 tg_conf_model_owner(m->id));
    }
    return TG_OK;
}

static int
tg_conf_parse_models(tg_conf_ctx_t *ctx, const config_setting_t *s, void *base)
{
    tg_conf_t *conf = base;
    size_t n, i;

    if (tg_conf_get_list(ctx, s, 1, TG_CONF_MAX_MODELS, &n) != TG_OK) {
        return TG_ERROR;
    }
    conf->models = calloc(n, sizeof(tg_conf_model_t));
    if (conf->models == NULL) {
        return tg_conf_error(ctx, s, "out of memory");
    }
    conf->nmodels = n;
    for (i = 0; i < n; i++) {
        if (tg_conf_parse_model(ctx, s, (unsigned)i, conf) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}

/*
 * Client keys.  An empty list is allowed: the gateway then accepts only
 * keys published by admin.
 */
static bool
tg_conf_is_pattern_char(int c)
{
    return tg_conf_is_digit(c) || tg_conf_is_alpha(c) || c == '-' || c == '_' ||
           c == '.' || c == ':' || c == '/' || c == '@' || c == '*';
}


/*
 * A list of 1..<max> model patterns into <out> (64 bytes each) and <*n>:
 * letters, digits, "-_.:/@" and the wildcard "*".
 */
static int
tg_conf_get_patterns(tg_conf_ctx_t *ctx, const config_setting_t *s, size_t max,
                     char (*out)[64], uint32_t *n)
{
    const config_setting_t *e;
    const char *v;
    size_t len, i, j;

    if (tg_conf_get_list(ctx, s, 1, (int)max, &len) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < len; i++) {
        e = config_setting_get_elem(s, (unsigned)i);
        v = config_setting_get_string(e);
        if (v == NULL) {
            return tg_conf_invalid(ctx, e, "must be a string");
        }
        if (v[0] == '\0' || strlen(v) >= 64) {
            return tg_conf_invalid(ctx, e, "must be 1 to 63 characters");
        }
        for (j = 0; v[j] != '\0'; j++) {
            if (!tg_conf_is_pattern_char((unsigned char)v[j])) {
                return tg_conf_invalid(ctx, e,
                                       "may contain only letters, digits, "
                                       "\"-_.:/@\" and the wildcard \"*\"");
            }
        }
        memcpy(out[i], v, strlen(v) + 1);
    }
    *n = (uint32_t)len;
    return TG_OK;
}


/* A key's "models" allow-list. */
static int
tg_conf_parse_key_models(tg_conf_ctx_t *ctx, const config_setting_t *s,
                         void *base)
{
    tg_conf_key_t *k = base;

    return tg_conf_get_patterns(ctx, s, TG_CONF_KEY_MODELS, k->models,
                                &k->nmodels);
}


/* An endpoint's "models": patterns of the models it serves. */
static int
tg_conf_parse_ep_models(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        void *base)
{
    tg_conf_endpoint_t *ep = base;

    return tg_conf_get_patterns(ctx, s, TG_CONF_EP_MODELS, ep->models,
                                &ep->nmodels);
}


/* An endpoint's "model_map": ( { from = "..."; to = "..."; }, ... ). */
static int
tg_conf_parse_ep_maps(tg_conf_ctx_t *ctx, const config_setting_t *s, void *base)
{
    static const tg_conf_rule_t rules[] = {
        TG_CONF_RULE("from", TG_CONF_T_STRING,
                     TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN, tg_conf_map_t, from,
                     1, 127),
        TG_CONF_RULE("to", TG_CONF_T_STRING,
                     TG_CONF_F_REQUIRED | TG_CONF_F_TOKEN, tg_conf_map_t, to, 1,
                     127),
        TG_CONF_END,
    };
    tg_conf_endpoint_t *ep = base;
    const config_setting_t *e;
    size_t n, i, j;

    if (tg_conf_get_list(ctx, s, 1, TG_CONF_EP_MAPS, &n) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, (unsigned)i);
        if (!config_setting_is_group(e)) {
            return tg_conf_invalid(ctx, e, "must be a group with from and to");
        }
        if (tg_conf_parse_group(ctx, e, rules, &ep->maps[i]) != TG_OK) {
            return TG_ERROR;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(ep->maps[j].from, ep->maps[i].from) == 0) {
                return tg_conf_invalid(ctx, e, "maps \"%s\" a second time",
                                       ep->maps[i].from);
            }
        }
    }
    ep->nmaps = (uint32_t)n;
    return TG_OK;
}


static void
tg_conf_group_defaults(tg_conf_group_t *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->strategy = TG_STRATEGY_WEIGHTED;
    g->failure_threshold = 5;
    g->cooldown_ms = 30000;
    g->max_retries = 2;
    g->retry_deadline_ms = 60000;
    g->sticky = true;
    g->sticky_ttl_ms = 3600000;
    g->explore_milli = 50;
}


/* The "groups" list: endpoint pools with their strategy and breaker. */
static int
tg_conf_parse_groups(tg_conf_ctx_t *ctx, const config_setting_t *s, void *base)
{
    tg_conf_t *conf = base;
    const config_setting_t *e;
    tg_conf_group_t *groups, g;
    size_t n, i, j;

    if (tg_conf_get_list(ctx, s, 1, 256, &n) != TG_OK) {
        return TG_ERROR;
    }
    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, (unsigned)i);
        if (!config_setting_is_group(e)) {
            return tg_conf_invalid(ctx, e, "must be a group");
        }
        tg_conf_group_defaults(&g, "");
        if (tg_conf_parse_group(ctx, e, tg_conf_group_rules, &g) != TG_OK) {
            return TG_ERROR;
        }
        /* "default" may be configured once: it replaces the implicit one
         * (whose slot 0 it takes, so keys and endpoints find it there). */
        for (j = 0; j < conf->ngroups; j++) {
            if (strcmp(conf->groups[j].name, g.name) == 0) {
                break;
            }
        }
        if (j == 0 && !ctx->default_group_set) {
            conf->groups[0] = g;
            ctx->default_group_set = true;
            continue;
        }
        if (j < conf->ngroups) {
            return tg_conf_invalid(ctx, config_setting_get_member(e, "name"),
                                   "duplicates group \"%s\"", g.name);
        }
        groups = realloc(conf->groups, (conf->ngroups + 1) * sizeof(*groups));
        if (groups == NULL) {
            return tg_conf_error(ctx, s, "out of memory");
        }
        conf->groups = groups;
        conf->groups[conf->ngroups++] = g;
    }
    return TG_OK;
}


/* Index of group <name>, or -1. */
static int
tg_conf_group_find(const tg_conf_t *conf, const char *name)
{
    size_t i;

    for (i = 0; i < conf->ngroups; i++) {
        if (strcmp(conf->groups[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}


/* Resolve group names and inherited endpoint settings. */
static int
tg_conf_finish_groups(tg_conf_ctx_t *ctx, const config_t *cfg, tg_conf_t *conf)
{
    size_t i;
    int g;

    for (i = 0; i < conf->nendpoints; i++) {
        tg_conf_endpoint_t *ep = &conf->endpoints[i];

        g = tg_conf_group_find(conf, ep->group_name);
        if (g < 0) {
            char path[64];

            snprintf(path, sizeof(path), "endpoints.[%zu].group", i);
            return tg_conf_invalid(ctx, config_lookup(cfg, path),
                                   "names no group \"%s\"", ep->group_name);
        }
        ep->group = (uint32_t)g;
        if (ep->connect_timeout_ms == 0) {
            ep->connect_timeout_ms = conf->connect_timeout_ms;
        }
        if (ep->first_byte_timeout_ms == 0) {
            ep->first_byte_timeout_ms = conf->first_byte_timeout_ms;
        }
        if (ep->read_timeout_ms == 0) {
            ep->read_timeout_ms = conf->read_timeout_ms;
        }
        if (ep->tls_verify_inherit) {
            ep->tls_verify = conf->tls_verify;
        }
    }
    for (i = 0; i < conf->nkeys; i++) {
        tg_conf_key_t *k = &conf->keys[i];

        g = tg_conf_group_find(conf,
                               k->group_name[0] ? k->group_name : "default");
        if (g < 0) {
            const char *file =
                config_setting_source_file(config_root_setting(cfg));

            return tg_conf_error_at(ctx, file != NULL ? file : ctx->name,
                                    k->line, "key %u names no group \"%s\"",
                                    k->key_id, k->group_name);
        }
        k->group = (uint32_t)g;
    }
    return TG_OK;
}


/*
 * A "keys" list: at the top level its keys belong to the implicit user
 * "default"; inside a user, to that user (ctx->user).  An element is the
 * key itself or a group with its limits.  Keys from every list go to one
 * array, so duplicates are found across users.
 */
static int
tg_conf_parse_keys(tg_conf_ctx_t *ctx, const config_setting_t *s, void *base)
{
    tg_conf_t *conf = ctx->conf;
    const config_setting_t *e;
    tg_conf_key_t *keys, *k;
    size_t n, i, j, first;

    (void)base;
    if (tg_conf_get_list(ctx, s, 0, TG_CONF_MAX_KEYS, &n) != TG_OK) {
        return TG_ERROR;
    }
    if (n == 0) {
        return TG_OK;
    }
    if (conf->nkeys + n > TG_CONF_MAX_KEYS) {
        return tg_conf_invalid(ctx, s,
                               "makes more than %d keys in the file; keep "
                               "larger key sets in the database",
                               TG_CONF_MAX_KEYS);
    }
    keys = realloc(conf->keys, (conf->nkeys + n) * sizeof(tg_conf_key_t));
    if (keys == NULL) {
        return tg_conf_error(ctx, s, "out of memory");
    }
    conf->keys = keys;
    first = conf->nkeys;
    memset(keys + first, 0, n * sizeof(tg_conf_key_t));
    conf->nkeys += n;
    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, (unsigned)i);
        k = &keys[first + i];
        k->key_id = (uint32_t)(first + i + 1);
        k->user = ctx->user;
        k->line = (unsigned)config_setting_source_line(e);
        if (config_setting_is_group(e)) {
            if (tg_conf_parse_group(ctx, e, tg_conf_key_rules, k) != TG_OK) {
                return TG_ERROR;
            }
        } else if (tg_conf_parse_value(ctx, e, &tg_conf_key_rule, k) != TG_OK) {
            return TG_ERROR;
        }
        if (k->burst == 0) {
            k->burst = TG_MAX(1u, k->rpm / 10);
        }
        for (j = 0; j < first + i; j++) {
            if (strcmp(keys[j].key, k->key) == 0) {
                /* Never echo a key in a message: name the user instead. */
                return tg_conf_invalid(
                    ctx, e, "duplicates key %u of user \"%s\"", keys[j].key_id,
                    conf->users[keys[j].user].name);
            }
        }
    }
    return TG_OK;
}


/* The "users" list: each a group with a name, status, quota and keys. */
static int
tg_conf_parse_users(tg_conf_ctx_t *ctx, const config_setting_t *s, void *base)
{
    tg_conf_t *conf = base;
    const config_setting_t *e;
    tg_conf_user_t *users;
    size_t n, i, j;

    if (tg_conf_get_list(ctx, s, 0, TG_CONF_MAX_KEYS, &n) != TG_OK) {
        return TG_ERROR;
    }
    users = realloc(conf->users, (conf->nusers + n) * sizeof(tg_conf_user_t));
    if (users == NULL) {
        return tg_conf_error(ctx, s, "out of memory");
    }
    conf->users = users;
    for (i = 0; i < n; i++) {
        tg_conf_user_t *u = &users[conf->nusers];

        e = config_setting_get_elem(s, (unsigned)i);
        if (!config_setting_is_group(e)) {
            return tg_conf_invalid(ctx, e, "must be a group");
        }
        memset(u, 0, sizeof(*u));
        u->user_id = (uint32_t)conf->nusers + 1;
        ctx->user = (uint32_t)conf->nusers;
        conf->nusers++;
        if (tg_conf_parse_group(ctx, e, tg_conf_user_rules, u) != TG_OK) {
            return TG_ERROR;
        }
        for (j = 0; j + 1 < conf->nusers; j++) {
            if (strcmp(users[j].name, u->name) == 0) {
                return tg_conf_invalid(
                    ctx, config_setting_get_member(e, "name"),
                    "duplicates user \"%s\"%s", u->name,
                    j == 0 ? " (the implicit user of top-level keys)" : "");
            }
        }
        if (u->quota_tokens > 0 && u->quota_period == TG_QUOTA_NONE) {
            return tg_conf_invalid(ctx, e,
                                   "has quota_tokens but no quota_period; "
                                   "set \"day\" or \"month\"");
        }
    }
    ctx->user = 0;
    return TG_OK;
}

/* Distinct allow-list patterns must fit the shared pattern table. */
static int
tg_conf_check_patterns(tg_conf_ctx_t *ctx, const config_t *cfg,
                       const tg_conf_t *conf)
{
    const char *seen[TG_CONF_MODEL_PATTERNS];
    size_t nseen = 0, i, j, m;

    for (i = 0; i < conf->nkeys; i++) {
        for (m = 0; m < conf->keys[i].nmodels; m++) {
            const char *p = conf->keys[i].models[m];

            for (j = 0; j < nseen && strcmp(seen[j], p) != 0; j++) {
            }
            if (j < nseen) {
                continue;
            }
            if (nseen == TG_CONF_MODEL_PATTERNS) {
                return tg_conf_error(ctx, config_lookup(cfg, "users"),
                                     "more than %d distinct model patterns "
                                     "in key allow-lists",
                                     TG_CONF_MODEL_PATTERNS);
            }
            seen[nseen++] = p;
        }
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
    conf->max_keys = 1000000;
    conf->max_users = 100000;
    conf->max_endpoints = 256;
    conf->max_sticky = 65536;
    conf->usage_ring = 16384;
    snprintf(conf->spool_dir, sizeof(conf->spool_dir), "spool");
    snprintf(conf->usage_log, sizeof(conf->usage_log), "off");
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
    if (tg_conf_check_patterns(ctx, cfg, conf) != TG_OK ||
        tg_conf_finish_groups(ctx, cfg, conf) != TG_OK) {
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
    if (text != NULL &&
        tg_conf_scan_ints(ctx, ctx->name, text, strlen(text)) != TG_OK) {
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
 * credentials and client keys are wiped first.
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
