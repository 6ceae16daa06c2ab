-- sql/migrations/0001_init.sql
--      The system of record: users, API keys, endpoint groups, endpoints,
--      applications, sessions, login codes, lockouts and the audit log.
--
-- NOTES
--      Forward-only.  The runner wraps this file in one transaction and
--      records it in schema_migrations(version, name, applied_at); the file
--      has no BEGIN/COMMIT.  An applied migration is never edited: later
--      changes go into 0002_..., 0003_...
--
--      Secrets never appear here in clear: API keys and session tokens are
--      SHA-256 digests, passwords scrypt hashes, endpoint credentials and
--      one-shot secrets AES-256-GCM ciphertexts (12-byte nonce ||
--      ciphertext || 16-byte tag) with the id of the key that sealed them.
--
--      Group names are checked by the tg_api functions rather than by
--      foreign keys: the config file may declare keys and endpoints in
--      groups the database learns about in the same import, and a group
--      that disappears from the file must not make the import fail.
--
--      Every change to users, api_keys, endpoints and endpoint_groups sends
--      NOTIFY tollgate '<table>:<I|U|D>:<id>' when it commits, so admin
--      processes on every host reload the row and republish it to shared
--      memory.  Updates that only touch bookkeeping columns (updated_at,
--      last_used_at) send nothing.
--
--      Money is numeric(20,9): US dollars with nine decimals (see
--      docs/sql.md, "Money").  Durations are integer milliseconds (_ms).

-- Helpers used by CHECK constraints and triggers (schema public, so they
-- survive the tg_api re-creation at every start).

CREATE FUNCTION tg_text_ok(s text, maxlen integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN s IS NOT NULL
       AND length(s) BETWEEN 1 AND maxlen
       AND s !~ '[\x01-\x1f\x7f]';

COMMENT ON FUNCTION tg_text_ok(text, integer) IS
    'true when s is 1..maxlen characters without control characters';

CREATE FUNCTION tg_text_array_ok(a text[], maxn integer, maxlen integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN a IS NOT NULL
       AND cardinality(a) <= maxn
       AND array_ndims(a) IS NOT DISTINCT FROM
           (CASE WHEN cardinality(a) = 0 THEN NULL ELSE 1 END)
       AND NOT EXISTS (SELECT 1 FROM unnest(a) AS e
                       WHERE NOT tg_text_ok(e, maxlen));

COMMENT ON FUNCTION tg_text_array_ok(text[], integer, integer) IS
    'true when a is a one-dimensional array of at most maxn elements, each '
    'non-NULL, 1..maxlen characters, without control characters';

CREATE FUNCTION tg_touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION tg_touch_updated_at() IS
    'BEFORE UPDATE trigger: sets updated_at to the transaction time';

-- NOTIFY tollgate '<table>:<I|U|D>:<id>'.  TG_ARGV[0] names the id column.
-- An UPDATE whose only changes are in updated_at or last_used_at notifies
-- nobody: those columns are not published to shared memory.
CREATE FUNCTION tg_notify_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    r jsonb;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (to_jsonb(NEW) - 'updated_at' - 'last_used_at')
           = (to_jsonb(OLD) - 'updated_at' - 'last_used_at') THEN
            RETURN NULL;
        END IF;
        r := to_jsonb(NEW);
    ELSIF TG_OP = 'INSERT' THEN
        r := to_jsonb(NEW);
    ELSE
        r := to_jsonb(OLD);
    END IF;
    PERFORM pg_notify('tollgate',
                      TG_TABLE_NAME || ':' || left(TG_OP, 1) || ':'
                      || (r ->> TG_ARGV[0]));
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tg_notify_change() IS
    'AFTER row trigger: pg_notify(''tollgate'', ''<table>:<I|U|D>:<id>''); '
    'TG_ARGV[0] is the id column';

-- users ---------------------------------------------------------------

CREATE TABLE users (
    user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL
                   CONSTRAINT users_username_check
                   CHECK (tg_text_ok(username, 64)),
    email          text
                   CONSTRAINT users_email_check
                   CHECK (email IS NULL OR (tg_text_ok(email, 254)
                                            AND email LIKE '%_@_%')),
    password_hash  text
                   CONSTRAINT users_password_hash_check
                   CHECK (password_hash IS NULL
                          OR (password_hash LIKE 'scrypt$%'
                              AND tg_text_ok(password_hash, 256))),
    role           text NOT NULL DEFAULT 'user'
                   CONSTRAINT users_role_check
                   CHECK (role IN ('admin', 'user')),
    status         text NOT NULL DEFAULT 'active'
                   CONSTRAINT users_status_check
                   CHECK (status IN ('active', 'disabled')),
    group_name     text NOT NULL DEFAULT 'default'
                   CONSTRAINT users_group_name_check
                   CHECK (group_name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    tokens_day     bigint CONSTRAINT users_tokens_day_check
                   CHECK (tokens_day >= 0),
    tokens_month   bigint CONSTRAINT users_tokens_month_check
                   CHECK (tokens_month >= 0),
    cost_day_usd   numeric(20, 9) CONSTRAINT users_cost_day_usd_check
                   CHECK (cost_day_usd >= 0),
    cost_month_usd numeric(20, 9) CONSTRAINT users_cost_month_usd_check
                   CHECK (cost_month_usd >= 0),
    managed_by     text NOT NULL DEFAULT 'api'
                   CONSTRAINT users_managed_by_check
                   CHECK (managed_by IN ('api', 'file')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_key ON users (username);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE INDEX users_status_idx ON users (status, user_id);
CREATE INDEX users_role_idx ON users (role, user_id);
CREATE INDEX users_group_name_idx ON users (group_name);

COMMENT ON TABLE users IS
    'People who use Tollgate: admins and users, their default endpoint '
    'group and their quotas';
COMMENT ON COLUMN users.user_id IS 'identity of the user';
COMMENT ON COLUMN users.username IS
    'login name, 1..64 characters without control characters; unique, '
    'also case-insensitively';
COMMENT ON COLUMN users.email IS
    'address login codes are sent to; NULL = none';
COMMENT ON COLUMN users.password_hash IS
    'scrypt$N$r$p$<salt base64>$<hash base64>; NULL = login by code only';
COMMENT ON COLUMN users.role IS
    '''admin'' (manages everything) or ''user'' (sees only their own keys, '
    'applications and usage)';
COMMENT ON COLUMN users.status IS
    '''active'' or ''disabled'' (cannot log in; every key of the user is '
    'refused)';
COMMENT ON COLUMN users.group_name IS
    'endpoint group the user''s keys use unless a key names its own '
    '(endpoint_groups.name)';
COMMENT ON COLUMN users.tokens_day IS
    'tokens the user may use per day; NULL = no limit';
COMMENT ON COLUMN users.tokens_month IS
    'tokens the user may use per month; NULL = no limit';
COMMENT ON COLUMN users.cost_day_usd IS
    'US dollars the user may spend per day; NULL = no limit';
COMMENT ON COLUMN users.cost_month_usd IS
    'US dollars the user may spend per month; NULL = no limit';
COMMENT ON COLUMN users.managed_by IS
    '''file'' = declared in the config file (users) and changed only '
    'there; ''api'' = created over the admin API';
COMMENT ON COLUMN users.created_at IS 'when the row was created';
COMMENT ON COLUMN users.updated_at IS 'when the row last changed';

CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();
CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tg_notify_change('user_id');

-- api_keys ------------------------------------------------------------

CREATE TABLE api_keys (
    key_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint REFERENCES users (user_id) ON DELETE CASCADE,
    name           text NOT NULL DEFAULT ''
                   CONSTRAINT api_keys_name_check
                   CHECK (name = '' OR tg_text_ok(name, 128)),
    digest         bytea NOT NULL
                   CONSTRAINT api_keys_digest_check
                   CHECK (octet_length(digest) = 32),
    prefix         text NOT NULL
                   CONSTRAINT api_keys_prefix_check
                   CHECK (tg_text_ok(prefix, 16)),
    last4          text NOT NULL
                   CONSTRAINT api_keys_last4_check
                   CHECK (length(last4) = 4 AND tg_text_ok(last4, 4)),
    status         text NOT NULL DEFAULT 'active'
                   CONSTRAINT api_keys_status_check
                   CHECK (status IN ('active', 'disabled')),
    expires_at     timestamptz,
    models         text[] NOT NULL DEFAULT '{}'
                   CONSTRAINT api_keys_models_check
                   CHECK (tg_text_array_ok(models, 16, 64)),
    rpm            integer NOT NULL DEFAULT 0
                   CONSTRAINT api_keys_rpm_check CHECK (rpm >= 0),
    burst          integer NOT NULL DEFAULT 0
                   CONSTRAINT api_keys_burst_check CHECK (burst >= 0),
    tpm            integer NOT NULL DEFAULT 0
                   CONSTRAINT api_keys_tpm_check CHECK (tpm >= 0),
    concurrency    integer NOT NULL DEFAULT 0
                   CONSTRAINT api_keys_concurrency_check
                   CHECK (concurrency >= 0),
    group_name     text
                   CONSTRAINT api_keys_group_name_check
                   CHECK (group_name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    tokens_day     bigint CONSTRAINT api_keys_tokens_day_check
                   CHECK (tokens_day >= 0),
    tokens_month   bigint CONSTRAINT api_keys_tokens_month_check
                   CHECK (tokens_month >= 0),
    cost_day_usd   numeric(20, 9) CONSTRAINT api_keys_cost_day_usd_check
                   CHECK (cost_day_usd >= 0),
    cost_month_usd numeric(20, 9) CONSTRAINT api_keys_cost_month_usd_check
                   CHECK (cost_month_usd >= 0),
    managed_by     text NOT NULL DEFAULT 'api'
                   CONSTRAINT api_keys_managed_by_check
                   CHECK (managed_by IN ('api', 'file')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    CONSTRAINT api_keys_owner_check
        CHECK (user_id IS NOT NULL OR managed_by = 'file')
);

CREATE UNIQUE INDEX api_keys_digest_key ON api_keys (digest);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, key_id);
CREATE INDEX api_keys_status_idx ON api_keys (status, key_id);
CREATE INDEX api_keys_group_name_idx ON api_keys (group_name)
    WHERE group_name IS NOT NULL;

COMMENT ON TABLE api_keys IS
    'Client API keys (sk-tg-...): only their SHA-256 digest is stored, '
    'with a display prefix and the last four characters';
COMMENT ON COLUMN api_keys.key_id IS
    'identity of the key; also its key_id in shared memory';
COMMENT ON COLUMN api_keys.user_id IS
    'owner (users.user_id); NULL only for config-file keys without a user';
COMMENT ON COLUMN api_keys.name IS
    'label chosen by its owner, up to 128 characters; '''' = none';
COMMENT ON COLUMN api_keys.digest IS
    'SHA-256 of the whole key (32 bytes); workers look keys up by it';
COMMENT ON COLUMN api_keys.prefix IS
    'first characters of the key for display, e.g. ''sk-tg-AbC1''';
COMMENT ON COLUMN api_keys.last4 IS 'last four characters of the key';
COMMENT ON COLUMN api_keys.status IS
    '''active'' or ''disabled'' (refused with 401)';
COMMENT ON COLUMN api_keys.expires_at IS
    'refused after this time; NULL = never expires';
COMMENT ON COLUMN api_keys.models IS
    'allow-list of model patterns (''*'' matches any run of characters), '
    'at most 16 of up to 64 characters; empty = every model';
COMMENT ON COLUMN api_keys.rpm IS 'requests per minute; 0 = unlimited';
COMMENT ON COLUMN api_keys.burst IS
    'requests allowed at once above the rpm pace; 0 = max(1, rpm / 10)';
COMMENT ON COLUMN api_keys.tpm IS 'tokens per minute; 0 = unlimited';
COMMENT ON COLUMN api_keys.concurrency IS
    'requests in flight at once; 0 = unlimited';
COMMENT ON COLUMN api_keys.group_name IS
    'endpoint group of the key (endpoint_groups.name); NULL = the owner''s '
    'group';
COMMENT ON COLUMN api_keys.tokens_day IS
    'tokens the key may use per day; NULL = no limit of its own';
COMMENT ON COLUMN api_keys.tokens_month IS
    'tokens the key may use per month; NULL = no limit of its own';
COMMENT ON COLUMN api_keys.cost_day_usd IS
    'US dollars the key may spend per day; NULL = no limit of its own';
COMMENT ON COLUMN api_keys.cost_month_usd IS
    'US dollars the key may spend per month; NULL = no limit of its own';
COMMENT ON COLUMN api_keys.managed_by IS
    '''file'' = declared in the config file (keys, users[].keys) and '
    'changed only there; ''api'' = created over the admin API';
COMMENT ON COLUMN api_keys.created_at IS 'when the key was created';
COMMENT ON COLUMN api_keys.updated_at IS 'when the row last changed';
COMMENT ON COLUMN api_keys.last_used_at IS
    'last request seen with the key (coarse, written by admin); NULL = '
    'never used';

CREATE TRIGGER api_keys_touch BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tg_notify_change('key_id');

-- endpoint_groups -----------------------------------------------------

CREATE TABLE endpoint_groups (
    group_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL
                      CONSTRAINT endpoint_groups_name_check
                      CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    description       text NOT NULL DEFAULT ''
                      CONSTRAINT endpoint_groups_description_check
                      CHECK (description = '' OR tg_text_ok(description, 512)),
    strategy          text NOT NULL DEFAULT 'weighted'
                      CONSTRAINT endpoint_groups_strategy_check
                      CHECK (strategy IN ('round-robin', 'weighted',
                                          'least-connections', 'latency',
                                          'cost')),
    failure_threshold integer NOT NULL DEFAULT 5
                      CONSTRAINT endpoint_groups_failure_threshold_check
                      CHECK (failure_threshold BETWEEN 1 AND 1000),
    cooldown_ms       integer NOT NULL DEFAULT 30000
                      CONSTRAINT endpoint_groups_cooldown_ms_check
                      CHECK (cooldown_ms BETWEEN 1 AND 86400000),
    max_retries       integer NOT NULL DEFAULT 2
                      CONSTRAINT endpoint_groups_max_retries_check
                      CHECK (max_retries BETWEEN 0 AND 16),
    retry_deadline_ms integer NOT NULL DEFAULT 60000
                      CONSTRAINT endpoint_groups_retry_deadline_ms_check
                      CHECK (retry_deadline_ms BETWEEN 1 AND 86400000),
    sticky            boolean NOT NULL DEFAULT true,
    sticky_ttl_ms     integer NOT NULL DEFAULT 3600000
                      CONSTRAINT endpoint_groups_sticky_ttl_ms_check
                      CHECK (sticky_ttl_ms BETWEEN 1 AND 604800000),
    exploration       numeric(4, 3) NOT NULL DEFAULT 0.05
                      CONSTRAINT endpoint_groups_exploration_check
                      CHECK (exploration BETWEEN 0 AND 0.5),
    managed_by        text NOT NULL DEFAULT 'api'
                      CONSTRAINT endpoint_groups_managed_by_check
                      CHECK (managed_by IN ('api', 'file')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX endpoint_groups_name_key ON endpoint_groups (name);

COMMENT ON TABLE endpoint_groups IS
    'Pools of upstream endpoints with their balancing, breaker, retry and '
    'sticky-session settings (config file: groups; docs/routing.md)';
COMMENT ON COLUMN endpoint_groups.group_id IS 'identity of the group';
COMMENT ON COLUMN endpoint_groups.name IS
    'unique name, [A-Za-z0-9_.-]{1,63}; keys, users and endpoints refer to '
    'it; ''default'' always exists';
COMMENT ON COLUMN endpoint_groups.description IS
    'free text for operators; '''' = none';
COMMENT ON COLUMN endpoint_groups.strategy IS
    'how an endpoint is chosen within a priority tier: round-robin, '
    'weighted, least-connections, latency or cost';
COMMENT ON COLUMN endpoint_groups.failure_threshold IS
    'consecutive failures that open an endpoint''s circuit breaker, 1..1000';
COMMENT ON COLUMN endpoint_groups.cooldown_ms IS
    'how long an open breaker stays open before one probe request, ms';
COMMENT ON COLUMN endpoint_groups.max_retries IS
    'other endpoints tried for one request before it fails, 0..16';
COMMENT ON COLUMN endpoint_groups.retry_deadline_ms IS
    'no new attempt starts after this much time on one request, ms';
COMMENT ON COLUMN endpoint_groups.sticky IS
    'keep a conversation on one endpoint while it is healthy';
COMMENT ON COLUMN endpoint_groups.sticky_ttl_ms IS
    'how long an unused conversation mapping lives, ms (up to 7 days)';
COMMENT ON COLUMN endpoint_groups.exploration IS
    'share of requests the latency strategy sends to a random healthy '
    'endpoint, 0..0.5';
COMMENT ON COLUMN endpoint_groups.managed_by IS
    '''file'' = declared in the config file (groups) and changed only '
    'there; ''api'' = created over the admin API';
COMMENT ON COLUMN endpoint_groups.created_at IS 'when the row was created';
COMMENT ON COLUMN endpoint_groups.updated_at IS 'when the row last changed';

CREATE TRIGGER endpoint_groups_touch BEFORE UPDATE ON endpoint_groups
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();
CREATE TRIGGER endpoint_groups_notify
    AFTER INSERT OR UPDATE OR DELETE ON endpoint_groups
    FOR EACH ROW EXECUTE FUNCTION tg_notify_change('group_id');

-- The group every user and key falls back to.  Its settings are the
-- defaults; a config file that declares "default" takes it over
-- (managed_by becomes 'file').
INSERT INTO endpoint_groups (name, description)
VALUES ('default', 'the group keys and users use unless they name another');

-- endpoints -----------------------------------------------------------

CREATE TABLE endpoints (
    endpoint_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  text NOT NULL
                          CONSTRAINT endpoints_name_check
                          CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    group_name            text NOT NULL DEFAULT 'default'
                          CONSTRAINT endpoints_group_name_check
                          CHECK (group_name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    url                   text NOT NULL
                          CONSTRAINT endpoints_url_check
                          CHECK (url ~ '^https?://[^/?#@[:space:]]+'
                                 AND url !~ '^https?://[^/]*@'
                                 AND url !~ '[?#[:space:]]'
                                 AND url !~ '/$'
                                 AND url ~ '^[\x21-\x7e]+$'
                                 AND length(url) <= 511),
    style                 text NOT NULL
                          CONSTRAINT endpoints_style_check
                          CHECK (style IN ('anthropic', 'openai')),
    credential_ciphertext bytea
                          CONSTRAINT endpoints_credential_ciphertext_check
                          CHECK (octet_length(credential_ciphertext)
                                 BETWEEN 29 AND 12 + 1024 + 16),
    credential_key_id     text
                          CONSTRAINT endpoints_credential_key_id_check
                          CHECK (credential_key_id ~ '^[0-9a-f]{8}$'),
    weight                integer NOT NULL DEFAULT 1
                          CONSTRAINT endpoints_weight_check
                          CHECK (weight BETWEEN 1 AND 1000),
    priority              text NOT NULL DEFAULT 'primary'
                          CONSTRAINT endpoints_priority_check
                          CHECK (priority IN ('primary', 'secondary',
                                              'fallback')),
    models                text[] NOT NULL DEFAULT '{}'
                          CONSTRAINT endpoints_models_check
                          CHECK (tg_text_array_ok(models, 16, 63)),
    model_map_from        text[] NOT NULL DEFAULT '{}'
                          CONSTRAINT endpoints_model_map_from_check
                          CHECK (tg_text_array_ok(model_map_from, 16, 127)),
    model_map_to          text[] NOT NULL DEFAULT '{}'
                          CONSTRAINT endpoints_model_map_to_check
                          CHECK (tg_text_array_ok(model_map_to, 16, 127)),
    proxy                 text
                          CONSTRAINT endpoints_proxy_check
                          CHECK (proxy ~ '^(https?|socks5h?)://[\x21-\x7e]+$'
                                 AND length(proxy) <= 511),
    connect_timeout_ms    integer
                          CONSTRAINT endpoints_connect_timeout_ms_check
                          CHECK (connect_timeout_ms BETWEEN 1 AND 86400000),
    first_byte_timeout_ms integer
                          CONSTRAINT endpoints_first_byte_timeout_ms_check
                          CHECK (first_byte_timeout_ms BETWEEN 1 AND 86400000),
    read_timeout_ms       integer
                          CONSTRAINT endpoints_read_timeout_ms_check
                          CHECK (read_timeout_ms BETWEEN 1 AND 86400000),
    total_timeout_ms      integer
                          CONSTRAINT endpoints_total_timeout_ms_check
                          CHECK (total_timeout_ms BETWEEN 1 AND 86400000),
    tls_verify            boolean,
    health_path           text NOT NULL DEFAULT '/v1/models'
                          CONSTRAINT endpoints_health_path_check
                          CHECK (health_path ~ '^/[\x21-\x7e]{0,254}$'),
    health_interval_ms    integer NOT NULL DEFAULT 30000
                          CONSTRAINT endpoints_health_interval_ms_check
                          CHECK (health_interval_ms BETWEEN 0 AND 86400000),
    health_timeout_ms     integer NOT NULL DEFAULT 5000
                          CONSTRAINT endpoints_health_timeout_ms_check
                          CHECK (health_timeout_ms BETWEEN 1 AND 86400000),
    quota_cooldown_ms     bigint NOT NULL DEFAULT 3600000
                          CONSTRAINT endpoints_quota_cooldown_ms_check
                          CHECK (quota_cooldown_ms BETWEEN 0 AND 2678400000),
    price_factor          numeric(7, 3) NOT NULL DEFAULT 1
                          CONSTRAINT endpoints_price_factor_check
                          CHECK (price_factor BETWEEN 0.001 AND 1000),
    status                text NOT NULL DEFAULT 'enabled'
                          CONSTRAINT endpoints_status_check
                          CHECK (status IN ('enabled', 'disabled')),
    managed_by            text NOT NULL DEFAULT 'api'
                          CONSTRAINT endpoints_managed_by_check
                          CHECK (managed_by IN ('api', 'file')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT endpoints_credential_pair_check
        CHECK ((credential_ciphertext IS NULL) = (credential_key_id IS NULL)),
    CONSTRAINT endpoints_credential_required_check
        CHECK (credential_ciphertext IS NOT NULL OR managed_by = 'file'),
    CONSTRAINT endpoints_model_map_check
        CHECK (cardinality(model_map_from) = cardinality(model_map_to))
);

CREATE UNIQUE INDEX endpoints_name_key ON endpoints (name);
CREATE INDEX endpoints_group_name_idx ON endpoints (group_name, endpoint_id);
CREATE INDEX endpoints_status_idx ON endpoints (status, endpoint_id);

COMMENT ON TABLE endpoints IS
    'Upstream endpoints (Anthropic or OpenAI style) with their encrypted '
    'credential and routing settings (config file: endpoints; '
    'docs/routing.md)';
COMMENT ON COLUMN endpoints.endpoint_id IS 'identity of the endpoint';
COMMENT ON COLUMN endpoints.name IS
    'unique name, [A-Za-z0-9_.-]{1,63}; never changes (it is part of the '
    'credential''s associated data)';
COMMENT ON COLUMN endpoints.group_name IS
    'group (pool) it belongs to (endpoint_groups.name)';
COMMENT ON COLUMN endpoints.url IS
    'base URL http(s)://host[:port][/prefix] without trailing slash, query '
    'or user information; the API path is appended';
COMMENT ON COLUMN endpoints.style IS
    'API it speaks: ''anthropic'' or ''openai''';
COMMENT ON COLUMN endpoints.credential_ciphertext IS
    'upstream API key sealed with AES-256-GCM: 12-byte nonce || ciphertext '
    '|| 16-byte tag, associated data ''endpoint:<name>''; NULL only for '
    'config-file endpoints whose credential stays in the file';
COMMENT ON COLUMN endpoints.credential_key_id IS
    'first 8 hex characters of SHA-256 of the AES key that sealed the '
    'credential, so keys can be rotated';
COMMENT ON COLUMN endpoints.weight IS
    'share of traffic among candidates of the same priority, 1..1000';
COMMENT ON COLUMN endpoints.priority IS
    'tier: ''primary'', ''secondary'' (used when no primary is available) '
    'or ''fallback'' (when neither is)';
COMMENT ON COLUMN endpoints.models IS
    'model patterns it serves (''*'' wildcard), at most 16; empty = every '
    'model';
COMMENT ON COLUMN endpoints.model_map_from IS
    'model renames: names clients send; model_map_to[i] is what this '
    'endpoint receives instead';
COMMENT ON COLUMN endpoints.model_map_to IS
    'model renames: the name sent upstream for model_map_from[i]';
COMMENT ON COLUMN endpoints.proxy IS
    'outbound proxy URL (http, https, socks5, socks5h); NULL = direct';
COMMENT ON COLUMN endpoints.connect_timeout_ms IS
    'TCP and TLS connect timeout, ms; NULL = upstream.connect_timeout';
COMMENT ON COLUMN endpoints.first_byte_timeout_ms IS
    'request sent to first response byte, ms; NULL = '
    'upstream.first_byte_timeout';
COMMENT ON COLUMN endpoints.read_timeout_ms IS
    'longest silence between two chunks, ms; NULL = upstream.read_timeout';
COMMENT ON COLUMN endpoints.total_timeout_ms IS
    'bound on one whole attempt, ms; NULL = none';
COMMENT ON COLUMN endpoints.tls_verify IS
    'verify certificate and host name; NULL = upstream.tls_verify';
COMMENT ON COLUMN endpoints.health_path IS
    'path the active health check GETs';
COMMENT ON COLUMN endpoints.health_interval_ms IS
    'health probe period, ms; 0 = no active checks';
COMMENT ON COLUMN endpoints.health_timeout_ms IS 'health probe timeout, ms';
COMMENT ON COLUMN endpoints.quota_cooldown_ms IS
    'how long a spend cap reported by the upstream takes the endpoint out, '
    'ms (up to 31 days)';
COMMENT ON COLUMN endpoints.price_factor IS
    'price relative to list price (a relay billing 0.8x is 0.8), '
    '0.001..1000; multiplies the cost of its requests';
COMMENT ON COLUMN endpoints.status IS
    '''enabled'' or ''disabled'' (configured but never chosen)';
COMMENT ON COLUMN endpoints.managed_by IS
    '''file'' = declared in the config file (endpoints) and changed only '
    'there; ''api'' = created over the admin API';
COMMENT ON COLUMN endpoints.created_at IS 'when the row was created';
COMMENT ON COLUMN endpoints.updated_at IS 'when the row last changed';

CREATE TRIGGER endpoints_touch BEFORE UPDATE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();
CREATE TRIGGER endpoints_notify AFTER INSERT OR UPDATE OR DELETE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION tg_notify_change('endpoint_id');

-- applications --------------------------------------------------------

CREATE TABLE applications (
    application_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           bigint NOT NULL
                      REFERENCES users (user_id) ON DELETE CASCADE,
    kind              text NOT NULL
                      CONSTRAINT applications_kind_check
                      CHECK (kind IN ('model_access', 'quota_increase',
                                      'new_key')),
    payload           jsonb NOT NULL
                      CONSTRAINT applications_payload_check
                      CHECK (jsonb_typeof(payload) = 'object'),
    reason            text NOT NULL DEFAULT ''
                      CONSTRAINT applications_reason_check
                      CHECK (length(reason) <= 2000),
    status            text NOT NULL DEFAULT 'pending'
                      CONSTRAINT applications_status_check
                      CHECK (status IN ('pending', 'approved', 'rejected')),
    decided_by        bigint REFERENCES users (user_id) ON DELETE SET NULL,
    decided_at        timestamptz,
    comment           text NOT NULL DEFAULT ''
                      CONSTRAINT applications_comment_check
                      CHECK (length(comment) <= 2000),
    result            jsonb,
    secret_ciphertext bytea
                      CONSTRAINT applications_secret_ciphertext_check
                      CHECK (octet_length(secret_ciphertext)
                             BETWEEN 29 AND 12 + 256 + 16),
    secret_key_id     text
                      CONSTRAINT applications_secret_key_id_check
                      CHECK (secret_key_id ~ '^[0-9a-f]{8}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT applications_decided_check
        CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT applications_secret_pair_check
        CHECK ((secret_ciphertext IS NULL) = (secret_key_id IS NULL))
);

CREATE INDEX applications_status_idx ON applications (status, application_id);
CREATE INDEX applications_user_idx ON applications (user_id, application_id);
CREATE INDEX applications_kind_idx ON applications (kind, application_id);

COMMENT ON TABLE applications IS
    'Requests by users for model access, a higher quota or a new key, and '
    'the admin''s decision; approval applies the change in the same '
    'transaction';
COMMENT ON COLUMN applications.application_id IS
    'identity of the application';
COMMENT ON COLUMN applications.user_id IS 'applicant (users.user_id)';
COMMENT ON COLUMN applications.kind IS
    '''model_access'' (models for one of the applicant''s keys), '
    '''quota_increase'' (the applicant''s quotas) or ''new_key''';
COMMENT ON COLUMN applications.payload IS
    'the request as validated: model_access {key_id, models}, '
    'quota_increase {quota: {tokens_day, tokens_month, cost_day_usd, '
    'cost_month_usd}}, new_key {key: {name, models, rpm, burst, tpm, '
    'concurrency, group, expires_at}}';
COMMENT ON COLUMN applications.reason IS
    'why the applicant asks, up to 2000 characters';
COMMENT ON COLUMN applications.status IS
    '''pending'', ''approved'' or ''rejected''';
COMMENT ON COLUMN applications.decided_by IS
    'admin who approved or rejected it (users.user_id); NULL while pending '
    'or after that admin was deleted';
COMMENT ON COLUMN applications.decided_at IS
    'when it was approved or rejected; NULL while pending';
COMMENT ON COLUMN applications.comment IS
    'the admin''s comment to the applicant, up to 2000 characters';
COMMENT ON COLUMN applications.result IS
    'what the approval did, e.g. {"key_id": 12, "models": [...]}; NULL '
    'until approved';
COMMENT ON COLUMN applications.secret_ciphertext IS
    'a new_key approval''s plaintext key sealed with AES-256-GCM (nonce || '
    'ciphertext || tag, associated data ''application:<id>''); set NULL '
    'once the applicant has read it';
COMMENT ON COLUMN applications.secret_key_id IS
    'id of the AES key that sealed secret_ciphertext; NULL with it';
COMMENT ON COLUMN applications.created_at IS 'when it was filed';
COMMENT ON COLUMN applications.updated_at IS 'when the row last changed';

CREATE TRIGGER applications_touch BEFORE UPDATE ON applications
    FOR EACH ROW EXECUTE FUNCTION tg_touch_updated_at();

-- sessions ------------------------------------------------------------

CREATE TABLE sessions (
    session_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    digest       bytea NOT NULL
                 CONSTRAINT sessions_digest_check
                 CHECK (octet_length(digest) = 32),
    kind         text NOT NULL
                 CONSTRAINT sessions_kind_check
                 CHECK (kind IN ('session', 'token')),
    name         text NOT NULL DEFAULT ''
                 CONSTRAINT sessions_name_check
                 CHECK (name = '' OR tg_text_ok(name, 128)),
    client_addr  text
                 CONSTRAINT sessions_client_addr_check
                 CHECK (client_addr IS NULL OR tg_text_ok(client_addr, 64)),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT sessions_expiry_check
        CHECK (kind = 'token' OR expires_at IS NOT NULL)
);

CREATE UNIQUE INDEX sessions_digest_key ON sessions (digest);
CREATE INDEX sessions_user_idx ON sessions (user_id, session_id);
CREATE INDEX sessions_kind_idx ON sessions (kind, session_id);

COMMENT ON TABLE sessions IS
    'Bearer tokens of the admin API: login sessions (tgs_...) and '
    'long-lived automation tokens (tgt_...), stored as SHA-256 digests';
COMMENT ON COLUMN sessions.session_id IS
    'identity of the session or token';
COMMENT ON COLUMN sessions.user_id IS 'whose it is (users.user_id)';
COMMENT ON COLUMN sessions.digest IS
    'SHA-256 of the bearer token (32 bytes)';
COMMENT ON COLUMN sessions.kind IS
    '''session'' (from a login, expires) or ''token'' (automation token '
    'created by an admin)';
COMMENT ON COLUMN sessions.name IS
    'label of an automation token; '''' for sessions';
COMMENT ON COLUMN sessions.client_addr IS
    'address the session or token was created from';
COMMENT ON COLUMN sessions.created_at IS 'when it was created';
COMMENT ON COLUMN sessions.expires_at IS
    'refused after this time; NULL only for tokens without expiry';
COMMENT ON COLUMN sessions.last_used_at IS
    'last authenticated request (updated at most once a minute)';
COMMENT ON COLUMN sessions.revoked_at IS
    'when it was logged out or deleted; NULL = live';

-- login_codes ---------------------------------------------------------

CREATE TABLE login_codes (
    code_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    digest      bytea NOT NULL
                CONSTRAINT login_codes_digest_check
                CHECK (octet_length(digest) = 32),
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0
                CONSTRAINT login_codes_attempts_check CHECK (attempts >= 0),
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    client_addr text
                CONSTRAINT login_codes_client_addr_check
                CHECK (client_addr IS NULL OR tg_text_ok(client_addr, 64))
);

CREATE INDEX login_codes_user_idx ON login_codes (user_id, created_at);
CREATE INDEX login_codes_addr_idx ON login_codes (client_addr, created_at);

COMMENT ON TABLE login_codes IS
    'Six-digit verification codes sent for code login, stored as digests; '
    'rows older than a day are purged';
COMMENT ON COLUMN login_codes.code_id IS 'identity of the code';
COMMENT ON COLUMN login_codes.user_id IS 'who may log in with it';
COMMENT ON COLUMN login_codes.digest IS
    'SHA-256 of ''<user_id>:<code>'' (32 bytes)';
COMMENT ON COLUMN login_codes.expires_at IS
    'refused after this time (5 minutes after creation)';
COMMENT ON COLUMN login_codes.attempts IS
    'wrong guesses against it; the code is burnt at 5';
COMMENT ON COLUMN login_codes.used_at IS
    'when it was used to log in; NULL = unused';
COMMENT ON COLUMN login_codes.created_at IS 'when it was sent';
COMMENT ON COLUMN login_codes.client_addr IS
    'address that asked for it (per-address rate limit)';

-- login_lockouts ------------------------------------------------------

CREATE TABLE login_lockouts (
    user_id                bigint PRIMARY KEY
                           REFERENCES users (user_id) ON DELETE CASCADE,
    password_failures      integer NOT NULL DEFAULT 0
                           CONSTRAINT login_lockouts_password_failures_check
                           CHECK (password_failures >= 0),
    password_locked_until  timestamptz,
    code_failures          integer NOT NULL DEFAULT 0
                           CONSTRAINT login_lockouts_code_failures_check
                           CHECK (code_failures >= 0),
    code_locked_until      timestamptz,
    last_failure_at        timestamptz,
    last_success_at        timestamptz
);

COMMENT ON TABLE login_lockouts IS
    'Per-user login failure counters and lockouts (kept apart from users '
    'so that failed logins do not republish the user)';
COMMENT ON COLUMN login_lockouts.user_id IS 'whose counters (users.user_id)';
COMMENT ON COLUMN login_lockouts.password_failures IS
    'consecutive wrong passwords since the last success or lockout; 5 lock '
    'password login for 15 minutes';
COMMENT ON COLUMN login_lockouts.password_locked_until IS
    'password login refused until then; NULL = not locked';
COMMENT ON COLUMN login_lockouts.code_failures IS
    'consecutive wrong codes since the last success or lockout; 10 lock '
    'code login for 15 minutes';
COMMENT ON COLUMN login_lockouts.code_locked_until IS
    'code login refused until then; NULL = not locked';
COMMENT ON COLUMN login_lockouts.last_failure_at IS 'last failed login';
COMMENT ON COLUMN login_lockouts.last_success_at IS 'last successful login';

-- audit_log -----------------------------------------------------------

CREATE TABLE audit_log (
    audit_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_user_id bigint,
    actor_name    text NOT NULL DEFAULT '',
    action        text NOT NULL
                  CONSTRAINT audit_log_action_check
                  CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type   text NOT NULL
                  CONSTRAINT audit_log_target_type_check
                  CHECK (target_type ~ '^[a-z_]+$'),
    target_id     bigint,
    before        jsonb,
    after         jsonb,
    client_addr   text,
    host          text
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, audit_id);
CREATE INDEX audit_log_action_idx ON audit_log (action, audit_id);
CREATE INDEX audit_log_target_idx
    ON audit_log (target_type, target_id, audit_id);

COMMENT ON TABLE audit_log IS
    'One row per change made through the admin API or a login, written in '
    'the same transaction as the change; append-only';
COMMENT ON COLUMN audit_log.audit_id IS
    'identity of the entry; increases with time';
COMMENT ON COLUMN audit_log.at IS 'when the change was committed';
COMMENT ON COLUMN audit_log.actor_user_id IS
    'who made it (users.user_id, kept after the user is deleted); NULL = '
    'Tollgate itself or an anonymous login attempt';
COMMENT ON COLUMN audit_log.actor_name IS
    'username of the actor at the time; ''system'' for Tollgate itself';
COMMENT ON COLUMN audit_log.action IS
    '<target>.<verb>, e.g. ''user.create'', ''key.disable'', '
    '''application.approve'', ''auth.login''';
COMMENT ON COLUMN audit_log.target_type IS
    'kind of row changed: user, key, token, session, application, '
    'endpoint, group';
COMMENT ON COLUMN audit_log.target_id IS 'id of the row changed';
COMMENT ON COLUMN audit_log.before IS
    'the row before the change as the API shows it (no password hash, '
    'digest or ciphertext); NULL for a creation';
COMMENT ON COLUMN audit_log.after IS
    'the row after the change, secrets removed as in before; NULL for a '
    'deletion';
COMMENT ON COLUMN audit_log.client_addr IS
    'address of the client that asked for the change';
COMMENT ON COLUMN audit_log.host IS
    'host name of the Tollgate that made the change';
