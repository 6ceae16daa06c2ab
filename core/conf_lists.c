/*
 * core/conf_lists.c
 *      Configuration: the lists of the file (endpoints, groups, models,
 *      keys, users) and the checks that join them.
 *
 * NOTES
 *      Runs wherever core/conf.c runs, and never logs (see conf.c).
 */
#include "core/conf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(TG_STYLE_ANTHROPIC == 0 && TG_STYLE_OPENAI == 1,
               "tg_conf_styles is indexed by TG_STYLE_*");
_Static_assert(TG_PRIO_PRIMARY == 0 && TG_PRIO_SECONDARY == 1 &&
                   TG_PRIO_FALLBACK == 2,
               "tg_conf_prios is indexed by TG_PRIO_*");

static int tg_conf_parse_key_models(tg_conf_ctx_t *ctx,
                                    const config_setting_t *s, void *base);
static int tg_conf_parse_ep_models(tg_conf_ctx_t *ctx,
                                   const config_setting_t *s, void *base);
static int tg_conf_parse_ep_maps(tg_conf_ctx_t *ctx, const config_setting_t *s,
                                 void *base);

static const char *const tg_conf_styles[] = {"anthropic", "openai", NULL};
static const char *const tg_conf_prios[] = {"primary", "secondary", "fallback",
                                            NULL};

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
    TG_CONF_GROUP("wait_for_cooldown", TG_CONF_T_DURATION, 0,
                  wait_for_cooldown_ms, 0, 60000),
    TG_CONF_GROUP("sticky", TG_CONF_T_BOOL, 0, sticky, 0, 1),
    TG_CONF_GROUP("sticky_ttl", TG_CONF_T_DURATION, 0, sticky_ttl_ms, 1,
                  TG_CONF_DAY_MS * 7u),
    TG_CONF_GROUP("exploration", TG_CONF_T_FACTOR, 0, explore_milli, 0, 500),
    TG_CONF_GROUP("translate", TG_CONF_T_BOOL, 0, translate, 0, 1),
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
    return tg_conf_resolve_env(ctx, config_setting_get_member(e, "credential"),
                               ep->credential, sizeof(ep->credential));
}

int
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

int
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


void
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
    g->translate = true;
}


/* The "groups" list: endpoint pools with their strategy and breaker. */
int
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
            conf->default_group_declared = true;
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
int
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
int
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
int
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
int
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
