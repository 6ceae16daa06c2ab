/*
 * core/conf_values.c
 *      Configuration: error reporting and the parsers of single values
 *      (integers, sizes, durations, strings, addresses, words) and groups.
 *
 * NOTES
 *      Runs wherever core/conf.c runs, and never logs (see conf.c).  Each
 *      parser checks the type and range of one setting against its rule
 *      and reports the first problem as "<file>:<line>: <path> <message>".
 */
#include "core/conf_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Error reporting.  Every message is lower case without a trailing period;
 * secrets (credentials, client keys) are never quoted back.
 */

static int tg_conf_verror(tg_conf_ctx_t *ctx, const char *file, unsigned line,
                          const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

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
int
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
int
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
void
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
int
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
        if (!tg_conf_lex_size(config_setting_get_string(s), v)) {
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
        tg_conf_lex_seconds(rule->min, lo, sizeof(lo));
        tg_conf_lex_seconds(rule->max, hi, sizeof(hi));
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
int
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
int
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
int
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


/* Whether <name> (up to NUL) is a plausible environment variable name. */
static bool
tg_conf_is_env_name(const char *name)
{
    const char *p;

    for (p = name; *p != '\0'; p++) {
        if (!tg_conf_is_alpha(*p) && *p != '_' &&
            (p == name || !tg_conf_is_digit(*p))) {
            return false;
        }
    }
    return p != name;
}


/*
 * If <buf> (<size> bytes, the value of setting <s>) reads "env:NAME",
 * replace it by the value of $NAME.  The value is never quoted in
 * messages: it is usually a secret.  TG_OK or TG_ERROR after reporting.
 */
int
tg_conf_resolve_env(tg_conf_ctx_t *ctx, const config_setting_t *s, char *buf,
                    size_t size)
{
    const char *name, *v, *p;
    size_t len;

    if (strncmp(buf, "env:", 4) != 0) {
        return TG_OK;
    }
    name = buf + 4;
    if (!tg_conf_is_env_name(name)) {
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
    if (len >= size) {
        return tg_conf_invalid(ctx, s,
                               "names environment variable %s, whose value is "
                               "longer than %zu characters",
                               name, size - 1);
    }
    for (p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return tg_conf_invalid(ctx, s,
                                   "names environment variable %s, whose "
                                   "value contains control characters",
                                   name);
        }
    }
    memmove(buf, v, len + 1);
    return TG_OK;
}
