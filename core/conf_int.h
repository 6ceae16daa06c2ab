/*
 * core/conf_int.h
 *      Configuration: what the parts of the loader share (private).
 *
 * NOTES
 *      Included only by core/conf*.c.  The loader is split by phase: the
 *      integer lexer (conf_lex.c), value and group parsers with error
 *      reporting (conf_values.c), the lists (conf_lists.c), and the whole
 *      file with its top-level settings (conf.c).
 */
#ifndef TG_CORE_CONF_INT_H
#define TG_CORE_CONF_INT_H

#include "core/conf.h"
#include "core/conf_lex.h"
#include "core/core.h"

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Report "<file>:<line>: <message>"; always returns TG_ERROR. */
int tg_conf_error_at(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Report a problem with setting <s> (NULL: the whole file); TG_ERROR. */
int tg_conf_error(tg_conf_ctx_t *ctx, const config_setting_t *s,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report "<file>:<line>: <path of s> <message>"; TG_ERROR. */
int tg_conf_invalid(tg_conf_ctx_t *ctx, const config_setting_t *s,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The path of <s> ("limits.header_bytes", "endpoints.[1].url"). */
void tg_conf_path(const config_setting_t *s, char *buf, size_t size);

/* Parse <s> per <rule> into <base>; TG_OK or TG_ERROR after reporting. */
int tg_conf_parse_value(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        const tg_conf_rule_t *rule, void *base);
/* Parse the members of group <g> against <rules> into <base>. */
int tg_conf_parse_group(tg_conf_ctx_t *ctx, const config_setting_t *g,
                        const tg_conf_rule_t *rules, void *base);
/* Check that <s> is a list of <min>..<max> elements; its length in <n>. */
int tg_conf_get_list(tg_conf_ctx_t *ctx, const config_setting_t *s, int min,
                     int max, size_t *n);

/* Replace "env:NAME" in <buf> (<size> bytes, from setting <s>) by $NAME. */
int tg_conf_resolve_env(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        char *buf, size_t size);

/* The lists (conf_lists.c); tg_conf_list_pt each. */
int tg_conf_parse_endpoints(tg_conf_ctx_t *ctx, const config_setting_t *s,
                            void *base);
int tg_conf_parse_models(tg_conf_ctx_t *ctx, const config_setting_t *s,
                         void *base);
int tg_conf_parse_keys(tg_conf_ctx_t *ctx, const config_setting_t *s,
                       void *base);
int tg_conf_parse_users(tg_conf_ctx_t *ctx, const config_setting_t *s,
                        void *base);
int tg_conf_parse_groups(tg_conf_ctx_t *ctx, const config_setting_t *s,
                         void *base);
/* Group <g> with the defaults and name <name>. */
void tg_conf_group_defaults(tg_conf_group_t *g, const char *name);
/* Resolve group names and inherited endpoint settings. */
int tg_conf_finish_groups(tg_conf_ctx_t *ctx, const config_t *cfg,
                          tg_conf_t *conf);
/* Distinct allow-list patterns must fit the shared pattern table. */
int tg_conf_check_patterns(tg_conf_ctx_t *ctx, const config_t *cfg,
                           const tg_conf_t *conf);

#endif /* TG_CORE_CONF_INT_H */
