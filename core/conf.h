/*
 * core/conf.h
 *      Configuration: types and the libconfig loader/validator.
 *
 * NOTES
 *      The file is libconfig syntax.  Every setting is validated when the
 *      file is loaded (by master at start, on HUP and for `tollgate -t`), so
 *      the processes can trust a tg_conf_t.  Unknown settings are errors.
 *      Durations are seconds in the file (integer or float) and ms here.
 *      Errors read "<file>:<line>: <message>".
 */
#ifndef TG_CORE_CONF_H
#define TG_CORE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { TG_STYLE_ANTHROPIC = 0, TG_STYLE_OPENAI = 1 };

enum { TG_PRIO_PRIMARY = 0, TG_PRIO_SECONDARY = 1, TG_PRIO_FALLBACK = 2 };

#define TG_CONF_EP_MODELS 16 /* model patterns one endpoint serves */
#define TG_CONF_EP_MAPS   16 /* model renames one endpoint applies */

/* Balancing strategies of a group (tg_conf_group_t.strategy). */
enum {
    TG_STRATEGY_ROUND_ROBIN = 0,
    TG_STRATEGY_WEIGHTED = 1,
    TG_STRATEGY_LEAST_CONN = 2,
    TG_STRATEGY_LATENCY = 3,
    TG_STRATEGY_COST = 4
};

typedef struct {
    char from[128]; /* model name the client sends */
    char to[128];   /* name the endpoint knows it by */
} tg_conf_map_t;

typedef struct {
    char name[64];        /* unique, [A-Za-z0-9_.-]+ */
    char url[512];        /* http(s)://host[:port][/prefix], no trailing / */
    int style;            /* TG_STYLE_* */
    char credential[512]; /* upstream key; "env:NAME" is resolved at load */
    uint32_t weight;      /* 1..1000, default 1 */
    int priority;         /* TG_PRIO_*, default primary */
    char group_name[64];  /* group it belongs to, default "default" */
    uint32_t group;       /* index in conf->groups */
    bool enabled;         /* false: never chosen; default true */
    uint32_t price_milli; /* price factor x 1000 (0.8 -> 800), default 1000 */
    uint32_t nmodels;     /* patterns served; 0 = every model */
    char models[TG_CONF_EP_MODELS][64]; /* '*' wildcard */
    uint32_t nmaps; /* client model -> upstream model renames */
    tg_conf_map_t maps[TG_CONF_EP_MAPS];
    char proxy[512]; /* outbound proxy URL (http, https, socks5), "" */
    uint32_t connect_timeout_ms;    /* default upstream.connect_timeout */
    uint32_t first_byte_timeout_ms; /* default upstream.first_byte_timeout */
    uint32_t read_timeout_ms;       /* default upstream.read_timeout */
    uint32_t total_timeout_ms;      /* whole attempt; 0 = none */
    bool tls_verify;                /* default upstream.tls_verify */
    bool tls_verify_inherit;        /* the file did not set tls_verify */
    char health_path[256];          /* GET probe path, default /v1/models */
    uint32_t health_interval_ms;    /* 0 = no active checks (default 30 s) */
    uint32_t health_timeout_ms;     /* default 5 s */
    uint32_t quota_cooldown_ms;     /* out after a spend cap, default 1 h */
} tg_conf_endpoint_t;

typedef struct {
    char name[64];                 /* unique; "default" exists implicitly */
    int strategy;                  /* TG_STRATEGY_*, default weighted */
    uint32_t failure_threshold;    /* consecutive failures that open, 5 */
    uint32_t cooldown_ms;          /* open breaker wait, default 30 s */
    uint32_t max_retries;          /* other endpoints tried, default 2 */
    uint32_t retry_deadline_ms;    /* no new attempt after, default 60 s */
    uint32_t wait_for_cooldown_ms; /* wait when all cool, default 0 */
    bool sticky;                   /* conversation affinity, default true */
    uint32_t sticky_ttl_ms;        /* default 1 h */
    uint32_t explore_milli;        /* latency strategy exploration, 0.05 */
    bool translate; /* endpoints of the other API style serve too, true */
} tg_conf_group_t;

typedef struct {
    char id[128];           /* model id as clients send it */
    char display_name[128]; /* default: the id */
    int64_t created;        /* unix seconds, default 0 */
    char owned_by[64];      /* default: "anthropic", "openai" or "system" */
} tg_conf_model_t;

#define TG_CONF_KEY_MODELS     16 /* patterns in one key's allow-list */
#define TG_CONF_MODEL_PATTERNS 64 /* distinct patterns in the whole file */

enum { TG_QUOTA_NONE = 0, TG_QUOTA_DAY = 1, TG_QUOTA_MONTH = 2 };

/* usage.on_client_disconnect */
enum { TG_CONF_DISCONNECT_DRAIN = 0, TG_CONF_DISCONNECT_CANCEL = 1 };

/* Where tg_conf_t.database came from. */
enum {
    TG_CONF_DB_NONE = 0, /* no database: config-only mode */
    TG_CONF_DB_FILE = 1, /* the "database" setting */
    TG_CONF_DB_ENV = 2   /* $TOLLGATE_DATABASE, the setting being absent */
};

#define TG_CONF_OLD_SECRET_KEYS 7 /* admin.old_secret_keys entries */

typedef struct {
    char key[128];        /* client API key, plaintext (config phase) */
    uint32_t key_id;      /* 1-based position among all keys */
    uint32_t user;        /* index in conf->users */
    bool disabled;        /* refused with 401 */
    int64_t expires;      /* unix seconds; 0 = never */
    uint32_t rpm;         /* requests per minute; 0 = unlimited */
    uint32_t burst;       /* GCRA burst; default max(1, rpm / 10) */
    uint32_t tpm;         /* tokens per minute; 0 = unlimited */
    uint32_t concurrency; /* requests in flight; 0 = unlimited */
    uint32_t nmodels;     /* allow-list length; 0 = every model */
    char models[TG_CONF_KEY_MODELS][64]; /* patterns, '*' wildcard */
    char group_name[64];                 /* endpoint group, default "default" */
    uint32_t group;                      /* index in conf->groups */
    unsigned line; /* line of the key in the file, for messages */
} tg_conf_key_t;

typedef struct {
    char name[64];        /* unique; "default" is the implicit user 0 */
    uint32_t user_id;     /* index + 1 */
    bool disabled;        /* every key of the user gets 403 */
    int64_t quota_tokens; /* tokens per period; 0 = unlimited */
    int quota_period;     /* TG_QUOTA_* */
} tg_conf_user_t;

typedef struct tg_conf_s {
    char path[4096]; /* file this was loaded from */

    /* top level */
    char listen_addr[64];         /* listen.address, default "127.0.0.1" */
    int listen_port;              /* listen.port, default 8080 */
    int workers;                  /* default: number of CPUs */
    char admin_addr[64];          /* admin.address, default "127.0.0.1" */
    int admin_port;               /* admin.port, default 8081; 0 = off */
    char pid_file[4096];          /* default "tollgate.pid" */
    uint32_t shutdown_timeout_ms; /* graceful stop deadline, default 30 s */

    /* log */
    char error_log[4096];   /* log.error, "-" = stderr */
    char access_log[4096];  /* log.access, "-" = stderr, "off" */
    char events_log[4096];  /* log.events: endpoint events, "off" */
    uint32_t events_months; /* endpoint_events partitions kept, 0 = all */
    int log_level;          /* TG_LOG_* */

    /* limits */
    size_t header_bytes;        /* default 32 KB; 431 past it */
    size_t body_bytes;          /* default 32 MB; 413 past it */
    uint32_t header_timeout_ms; /* default 10 s; 408 */
    uint32_t body_timeout_ms;   /* default 60 s between body reads; 408 */
    uint32_t idle_timeout_ms;   /* keep-alive idle, default 75 s */
    uint32_t send_timeout_ms;   /* client not reading, default 120 s */
    uint32_t max_connections;   /* per worker, default 10000 */
    size_t stream_buffer;       /* per-connection output bound, 64 KB */

    /* upstream transport defaults */
    uint32_t connect_timeout_ms;    /* default 10 s */
    uint32_t first_byte_timeout_ms; /* default 300 s */
    uint32_t read_timeout_ms;       /* idle between chunks, default 300 s */
    bool tls_verify;                /* default true */
    size_t upstream_buffer;         /* curl receive buffer, default 16 KB */
    uint32_t upstream_keepalive;    /* idle upstream connections per worker,
                                       default 256 */
    uint32_t max_tokens; /* Messages max_tokens of a translated request
                            that named none, default 4096 */

    tg_conf_endpoint_t *endpoints;
    size_t nendpoints;
    tg_conf_group_t *groups; /* groups[0] is "default" */
    size_t ngroups;
    bool default_group_declared; /* the file's groups declare "default" */
    tg_conf_model_t *models;
    size_t nmodels;
    tg_conf_key_t *keys; /* every key; top-level ones belong to user 0 */
    size_t nkeys;
    tg_conf_user_t *users; /* users[0] is the implicit "default" user */
    size_t nusers;

    /* shm: table capacities, fixed for the life of the master */
    uint32_t max_keys;      /* default 1,000,000 */
    uint32_t max_users;     /* default 100,000 */
    uint32_t max_endpoints; /* default 256, at most 256 */
    uint32_t max_groups;    /* endpoint groups, default 64 */
    uint32_t max_sticky;    /* sticky-session slots, a power of two, 65536 */

    /* usage */
    uint32_t usage_ring;     /* ring slots, a power of two, default 16384 */
    char spool_dir[4096];    /* overflow spool files, default "spool" */
    char usage_log[4096];    /* admin's JSON-lines sink, "off" = none */
    char usage_timezone[64]; /* quota periods: IANA name or POSIX TZ, UTC */
    bool usage_detail;       /* usage_requests rows, default false */
    uint32_t usage_detail_months;      /* detail partitions kept, 0 = all */
    uint32_t usage_sync_interval_ms;   /* quota sums and prices, 5 s */
    uint32_t usage_batch_retention_ms; /* usage_batches rows kept, 7 days */
    int usage_disconnect;              /* TG_CONF_DISCONNECT_*, default DRAIN */
    uint32_t drain_timeout_ms; /* drain deadline once the client left, 30 s */
    size_t drain_bytes;        /* drain byte cap once the client left, 8 MB */

    /* database: a libpq conninfo ("env:NAME" resolved at load); a secret
     * (it may hold a password), never logged */
    char database[4096];
    int database_source;                /* TG_CONF_DB_* */
    uint32_t database_start_timeout_ms; /* publish anyway after, 5 s */

    /* admin API (admin.*) */
    char secret_key[4096]; /* key file path, or "env:NAME" (64 hex
                              digits, checked at load); "run/secret.key" */
    char old_secret_keys[TG_CONF_OLD_SECRET_KEYS][4096]; /* decrypt only */
    uint32_t nold_secret_keys;
    char bootstrap_password[256];   /* resolved; "" = random, logged once */
    char code_webhook[2048];        /* login-code webhook URL, "" = none */
    uint32_t reconcile_interval_ms; /* full shm reconcile, default 30 s */
    uint32_t session_ttl_ms;        /* login sessions, default 12 h */
    char host_name[256];            /* audit and usage rows; gethostname */
} tg_conf_t;

/*
 * Load and validate <path>.  Returns a new config owned by the caller
 * (free with tg_conf_destroy), or NULL with "<file>:<line>: <message>"
 * in <err> (<errlen> bytes).
 */
tg_conf_t *tg_conf_create(const char *path, char *err, size_t errlen);

/*
 * Like tg_conf_create, from the NUL-terminated <text>; <name> (NULL for
 * "<string>") stands for the file name in messages and in conf->path.
 * For tests and the fuzzer.
 */
tg_conf_t *tg_conf_create_from_string(const char *text, const char *name,
                                      char *err, size_t errlen);

/* Free <conf> and all it owns, wiping credentials and keys; NULL is ok. */
void tg_conf_destroy(tg_conf_t *conf);

#endif /* TG_CORE_CONF_H */
